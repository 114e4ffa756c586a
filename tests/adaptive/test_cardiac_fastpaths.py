"""Reference checks of the fast paths in adaptive.cardiac, adaptive.ppg and adaptive.quality.

Each fast path must give exactly (bit for bit) what the obvious form it replaces gives, so
these tests compare with ``==`` / ``array_equal``, not with a tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import adaptive.cardiac as cardiac
from adaptive.cardiac import CardiacEstimator, _IntervalStore, _periodogram, _spec_plan
from adaptive.ppg import Beats, PulseConfig, _polarity_scores, _regular_seconds, reference_pulse
from adaptive.quality import _has_true_run, flat_share, ppg_window_quality
from adaptive.types import Chunk

SFREQ = 64.0


def _ppg(duration_s: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Inverted reference pulses (as raw Muse counts) with a drifting rate, noise and a NaN gap."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration_s * SFREQ)) / SFREQ
    phase = np.cumsum(1.1 + 0.15 * np.sin(2 * np.pi * 0.1 * t)) / SFREQ
    x = -reference_pulse((phase % 1.0) / 1.1) + 0.02 * rng.standard_normal(t.size)
    x[int(50 * SFREQ) : int(51 * SFREQ)] = np.nan
    return x, t


def _run(est: CardiacEstimator, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    out = []
    for s in range(0, x.size, 32):
        out += est.update(Chunk("ppg", x[np.newaxis, s : s + 32], t[s : s + 32], SFREQ, ("ppg",)))
    return np.array([(e.value, e.quality, e.time) for e in out])


def test_window_slices_equal_masks(monkeypatch: pytest.MonkeyPatch) -> None:
    # the sliced windows (intervals in order) and the masked ones (the general path) give
    # the same estimates, bit for bit
    x, t = _ppg(150.0, seed=1)
    fast = _run(CardiacEstimator(SFREQ), x, t)
    monkeypatch.setattr(cardiac._IntervalStore, "ordered_by", lambda self, t_end: False)
    masked = _run(CardiacEstimator(SFREQ), x, t)
    assert_array_equal(fast, masked)
    assert np.isfinite(fast[:, 0]).sum() > 0.5 * fast.shape[0]  # the test saw real estimates


def test_store_ordered_by() -> None:
    store = _IntervalStore(capacity=4)
    store.append([(1.0, 0.8, True, True, 1.5), (2.0, 0.8, True, True, 2.5)])
    assert store.ordered_by(2.5) and not store.ordered_by(2.4)  # detected after 2.4
    store.append([(1.5, 0.8, True, True, 3.0)])  # out of order
    assert not store.ordered_by(10.0)
    store.drop_until(1.0)  # drops the row at 1.0 only: 2.0, 1.5 remain
    assert not store.ordered_by(10.0)
    store.append([(3.0, 0.8, True, True, 3.5), (4.0, 0.8, True, True, 4.5)])  # moves to new arrays
    assert not store.ordered_by(10.0)  # 2.0, 1.5, 3.0, 4.0
    store.drop_until(1.9)  # 2.0 > 1.9 stops the drop
    assert not store.ordered_by(10.0)
    store.drop_until(2.0)  # drops 2.0 and 1.5: 3.0, 4.0 are in order
    assert store.ordered_by(10.0)
    store.append([(math.nan, 0.8, True, True, 5.0)])
    assert not store.ordered_by(10.0)
    store.append([(6.0, 0.8, True, True, math.nan)])
    assert not store.ordered_by(math.inf)  # a NaN detection time never counts as detected


def test_periodogram_first_bins_equal_full() -> None:
    # dividing the first bins by denom / 2 equals dividing by denom and doubling
    rng = np.random.default_rng(0)
    for n in (257, 64, 17):
        plan = _spec_plan(n, 4.0)
        for _ in range(200):
            x = rng.standard_normal((2, n)) * 10 ** rng.uniform(-6, 6)
            assert_array_equal(_periodogram(x, plan, plan.n_bins), _periodogram(x, plan)[:, : plan.n_bins])


def test_regular_seconds_equal_polarity_scores() -> None:
    cfg = PulseConfig()
    rng = np.random.default_rng(2)
    for _ in range(2000):
        n = int(rng.integers(0, 30))
        up = np.cumsum(rng.uniform(0.1, 2.5, n))
        corr = rng.uniform(0.6, 1.0, n)
        corr[rng.random(n) < 0.1] = np.nan
        if n and rng.random() < 0.1:
            up[rng.integers(n)] = np.nan
        z = np.zeros(n)
        beats = Beats(up, np.zeros(n, dtype=np.int64), z, z, z, z, z, corr, up)
        assert _regular_seconds(beats.upstroke_times, beats.template_corr, cfg.min_interval_s) == _polarity_scores(beats, cfg)[0]


def test_has_true_run() -> None:
    rng = np.random.default_rng(3)
    for _ in range(3000):
        mask = rng.random(int(rng.integers(0, 50))) < rng.random()
        k = int(rng.integers(1, 20))
        longest = run = 0
        for v in mask:
            run = run + 1 if v else 0
            longest = max(longest, run)
        assert _has_true_run(mask, k) == (longest >= k)


def test_ppg_window_quality_flat_runs() -> None:
    # quantised windows with and without flat runs: the finite path equals the general one
    rng = np.random.default_rng(4)
    for _ in range(300):
        x = np.round(rng.standard_normal(640).cumsum() * rng.uniform(0.05, 2.0))
        if rng.random() < 0.5:
            s = int(rng.integers(0, 600))
            x[s : s + int(rng.integers(5, 40))] = x[s]
        run = 16  # 0.25 s at 64 Hz
        flat = flat_share(x, run)
        from adaptive.quality import clip_share, combine_quality

        expected = combine_quality(1.0, 1.0 - flat, 1.0 - clip_share(x, 3), 0.7)
        assert ppg_window_quality(x, SFREQ, 0.7) == expected
