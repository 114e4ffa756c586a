"""The compiled kernels of adaptive.eeg's per-window step against the numpy forms they replace.

``_features`` runs three kernels around one batched ``rfft``: ``_fill_detrend`` (gap filling,
extremes, least-squares detrending; it gives up on a constant channel, whose residual only
the BLAS form ``_detrend_blas`` reproduces), ``_taper_blocks`` (blink block means, common
deflection, tapering) and ``_bands_flags`` (band powers from the spectrum). Each is compared
here with the numpy expression it replaces, on random windows and on edge cases (gaps,
infinities, an all-missing channel, an auxiliary row, an overflowing spectrum).
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from adaptive.eeg import (
    MUSE_CH_NAMES,
    ArtefactFlag,
    EegConfig,
    _bands_flags,
    _detrend_blas,
    _fill_detrend,
    _plan,
    _taper_blocks,
    _Workspace,
    eeg_channel_roles,
    eeg_features,
)


def workspace(names: tuple[str, ...], n: int = 1024, sfreq: float = 256.0) -> _Workspace:
    cfg = EegConfig()
    return _Workspace(_plan(n, sfreq, cfg), names, eeg_channel_roles(names), cfg)


def random_window(rng: np.random.Generator, n_ch: int, n: int) -> np.ndarray:
    """EEG-like rows (uV): noise, a 10 Hz rhythm, a DC offset and a drift per row."""
    t = np.arange(n) / 256.0
    x = 10.0 * rng.standard_normal((n_ch, n)) + 25.0 * np.sin(2 * np.pi * 10.0 * t)
    return x + rng.uniform(-300, 300, (n_ch, 1)) + rng.uniform(-40, 40, (n_ch, 1)) * t / t[-1]


def with_edges(x: np.ndarray) -> np.ndarray:
    """Gaps (NaN), infinities and a whole missing row."""
    y = x.copy()
    y[0, 100:180] = np.nan
    y[1, 7] = np.inf
    y[1, 900:901] = -np.inf
    y[2] = np.nan
    return y


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("edges", [False, True])
@pytest.mark.parametrize("names", [MUSE_CH_NAMES, (*MUSE_CH_NAMES, "Right AUX")])
def test_fill_detrend_equals_numpy_form(seed: int, edges: bool, names: tuple[str, ...]) -> None:
    rng = np.random.default_rng(seed)
    x = random_window(rng, len(names), 1024)
    if edges:
        x = with_edges(x)
    ref, work = workspace(names), workspace(names)
    _detrend_blas(x, ref)
    assert _fill_detrend(x, work.rows_arr, work.plan.lines, work.tapered, work.stats) == 0
    # extremes and missing fractions are exact; mean and slope differ only by summation order
    assert_array_equal(work.stats[:, :3], ref.stats[:, :3])
    assert_allclose(work.stats[:, 3], ref.stats[:, 3], rtol=1e-12, atol=1e-15)
    # residual: rounding of a few-hundred-uV offset, far below the ADC's 0.49 uV step
    assert_allclose(work.tapered[:, 0], ref.tapered[:, 0], rtol=0, atol=1e-10)


def test_fill_detrend_gives_up_on_a_constant_channel() -> None:
    rng = np.random.default_rng(5)
    x = random_window(rng, 4, 1024)
    x[3] = 990.0  # railed
    work = workspace(MUSE_CH_NAMES)
    assert _fill_detrend(x, work.rows_arr, work.plan.lines, work.tapered, work.stats) == 1
    x[3, 10:20] = np.nan  # constant apart from gaps: still constant once filled
    assert _fill_detrend(x, work.rows_arr, work.plan.lines, work.tapered, work.stats) == 1
    feat = eeg_features(x, 256.0)
    assert ArtefactFlag.FLAT in feat.flags[3] and ArtefactFlag.RAILED in feat.flags[3]
    assert feat.channel_quality[3] == 0.0


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    ("names", "n", "sfreq"), [(MUSE_CH_NAMES, 1024, 256.0), (("O1", "Fz", "Cz"), 1000, 250.0)]
)
def test_taper_blocks_equals_numpy_form(seed: int, names: tuple[str, ...], n: int, sfreq: float) -> None:
    rng = np.random.default_rng(seed)
    work = workspace(names, n, sfreq)
    plan = work.plan
    xd = random_window(rng, len(names), n)
    xd[0, -300:-200] += 150.0  # a blink-sized deflection
    work.tapered[:, 0] = xd
    common = _taper_blocks(work.tapered, plan.tapers, work.geom, work.stats)
    slow = xd[:, plan.block_start :].reshape(len(names), -1, plan.box) @ np.full(plan.box, 1.0 / plan.box)
    assert_allclose(work.stats[:, 4], np.abs(slow).max(axis=1), rtol=1e-13)
    assert_array_equal(work.tapered, xd[:, np.newaxis, :] * plan.tapers)  # same products, same bits
    p0, p1 = work.geom[2], work.geom[3]
    if p0 < 0:  # no TP9/TP10 pair
        assert np.isnan(common)
    else:
        a, b = slow[p0], slow[p1]
        expected = max(float(np.minimum(a, b).max()), -float(np.maximum(a, b).min()))
        assert_allclose(common, expected, rtol=1e-13)


@pytest.mark.parametrize("seed", range(3))
def test_band_powers_equal_dense_product(seed: int) -> None:
    rng = np.random.default_rng(seed)
    work = workspace(MUSE_CH_NAMES)
    plan = work.plan
    x = random_window(rng, 4, 1024)
    _fill_detrend(x, work.rows_arr, plan.lines, work.tapered, work.stats)
    common = _taper_blocks(work.tapered, plan.tapers, work.geom, work.stats)
    np.fft.rfft(work.tapered, axis=-1, out=work.spec)
    work.spec[1, 2, plan.bin0 + 3] = np.inf  # an overflowing bin: inf * 0 spreads NaN, as numpy's
    out = np.empty(work.block_n)
    _bands_flags(
        work.spec, plan.weights, plan.runs, work.geom, work.consts, work.post_arr, work.front_arr, work.stats,
        common, out, work.bits,
    )  # fmt: skip
    used = work.spec[:, :, plan.bin0 : plan.bin0 + plan.weights.shape[0]]
    with np.errstate(invalid="ignore"):
        powers = (used.real**2 + used.imag**2).sum(axis=1) @ plan.weights
    absolute = out[:20].reshape(4, 5)
    assert_allclose(absolute, powers[:, :5], rtol=1e-12)  # NaN in the same places
    rms = out[40:52].reshape(3, 4)
    assert_allclose(rms, np.sqrt(powers[:, 6:]).T, rtol=1e-12)
    assert not np.isfinite(absolute[1]).any()  # inf in its own band, NaN in the others
