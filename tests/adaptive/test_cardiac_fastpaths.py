"""Reference checks of the fast paths in adaptive.cardiac, adaptive.ppg and adaptive.quality.

Each fast path must give exactly (bit for bit) what the obvious form it replaces gives, so
these tests compare with ``==`` / ``array_equal``, not with a tolerance.  The exceptions are the
compiled kernels that sum a dot product in another order than BLAS (template correlation, the
tachogram's detrend slope): there the tolerance is rounding (rtol 1e-12).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import adaptive.cardiac as cardiac
from adaptive.cardiac import CardiacEstimator, _IntervalStore, _periodogram, _spec_plan
from adaptive.ppg import _FIELDS, Beats, PulseConfig, _polarity_scores, _regular_seconds, reference_pulse
from adaptive.quality import flat_share, ppg_window_quality
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


# -- compiled kernels (adaptive._jit) against the numpy forms they replace ----------------------------------
def _nan_equal(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all((x == y) or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True))


def test_pairwise_sum_equals_add_reduce() -> None:
    from adaptive.quality import _pairwise_sum

    rng = np.random.default_rng(5)
    for n in [*range(0, 140), 255, 256, 257, 1000, 4097]:
        x = rng.standard_normal(n + 7) * 10 ** rng.uniform(-8, 8, n + 7)
        lo = int(rng.integers(0, 8))
        assert _pairwise_sum(x, lo, n) == np.add.reduce(x[lo : lo + n])
        ro = x[::2].copy()
        ro.flags.writeable = False  # read-only views (the streaming windows) are accepted
        assert _pairwise_sum(ro, 0, ro.size) == np.add.reduce(ro)


def test_accel_kernel_equals_numpy_form() -> None:
    from adaptive.quality import _accel_quality_finite, _accel_quality_kernel

    rng = np.random.default_rng(6)
    for _ in range(400):
        n = int(rng.integers(2, 160))
        x = 0.01 * rng.standard_normal((3, n)).cumsum(axis=1) * rng.uniform(0.1, 30.0)
        if rng.random() < 0.5:
            x = np.round(x, int(rng.integers(1, 4)))  # quantised: repeats, flat runs, clipping
        if rng.random() < 0.3:
            s = int(rng.integers(0, n))
            x[int(rng.integers(3)), s : s + int(rng.integers(2, 60))] = x[0, s]
        run = int(rng.integers(2, 40))
        got = _accel_quality_kernel(x, run, 3, 0.02, 0.2)
        flat_run_s = run / 52.0  # round(flat_run_s * 52) == run
        assert got == _accel_quality_finite(x, 52.0, 0.02, 0.2, flat_run_s, 3)[0]
    x[1, 3] = np.nan
    assert _accel_quality_kernel(x, 26, 3, 0.02, 0.2) == -1.0  # not finite: the numpy path decides


def test_front_filter_equals_sosfilter() -> None:
    from adaptive.filters import SosFilter, design_sos
    from adaptive.ppg import _front_filter
    from scipy.signal import sosfilt_zi

    rng = np.random.default_rng(7)
    sos = design_sos(SFREQ, l_freq=0.5, h_freq=8.0, order=2)
    x = 30000.0 + np.cumsum(rng.standard_normal(20000))
    ref = SosFilter(sos)
    zi = sosfilt_zi(sos) * x[0]
    pos = 0
    while pos < x.size:
        n = int(rng.integers(1, 300))
        part = x[pos : pos + n]
        out = np.empty(part.size)
        assert _front_filter(sos, zi, part, out) == 0
        assert_array_equal(out, ref.process_row(part))
        pos += n
    bad = x[:10].copy()
    bad[[2, 5]] = [np.nan, np.inf]
    zi_before = zi.copy()
    assert _front_filter(sos, zi, bad, np.empty(10)) == 2
    assert_array_equal(zi, zi_before)  # nothing filtered


def _random_intervals(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ibi = rng.uniform(0.6, 1.2, n) * (1.0 + 0.05 * np.sin(np.arange(n) / 3.0))
    times = 100.0 + np.cumsum(ibi)
    clean = rng.random(n) < rng.uniform(0.3, 1.0)
    return times, ibi, clean


def test_hr_stats_equals_hr_values() -> None:
    from adaptive.cardiac import _hr_stats, _hr_values

    rng = np.random.default_rng(8)
    for _ in range(2000):
        _, ibi, clean = _random_intervals(rng, int(rng.integers(0, 25)))
        if ibi.size and rng.random() < 0.1:
            ibi[rng.integers(ibi.size)] = rng.choice([np.nan, np.inf])
        window_s = float(rng.uniform(3.0, 15.0))
        assert _nan_equal(_hr_stats(ibi, clean, window_s), _hr_values(ibi[clean], window_s))


def test_hrv_kernels_equal_numpy_form() -> None:
    # _hrv_values (kernels + FFT) against RMSSD with numpy and _spectral_window (np.interp,
    # _periodogram): equal but for the order of the detrend's dot product (rounding)
    from adaptive.cardiac import CardiacConfig, _hrv_values, _spectral_window

    cfg = CardiacConfig()
    rng = np.random.default_rng(9)
    n_spec = 0
    for _ in range(300):
        times, ibi, clean = _random_intervals(rng, int(rng.integers(0, 90)))
        t_end = float(times[-1] + rng.uniform(0.0, 1.0)) if times.size else 170.0
        got = _hrv_values(times, ibi, clean, t_end, 64.0, cfg)
        pair = clean[1:] & clean[:-1]
        d = np.diff(ibi)[pair]
        rmssd = float(np.sqrt(np.sum(d * d) / d.size) * 1000.0) if d.size >= 3 else math.nan
        pair_cov = min(1.0, float(np.sum(ibi[1:][pair])) / 64.0) if ibi.size >= 2 else 0.0
        assert _nan_equal(got[0], (rmssd, pair_cov if math.isfinite(rmssd) else 0.0))
        coverage = min(1.0, float(np.sum(ibi[clean])) / 64.0)
        if coverage >= cfg.min_coverage and clean.sum() >= 8:
            n_spec += 1
            ref = _spectral_window(times[clean], ibi[clean], t_end - 64.0, t_end, cfg.resample_hz)
            np.testing.assert_allclose([v for v, _ in got[1:]], ref, rtol=1e-12, atol=0)
            assert [q for _, q in got[1:]] == [coverage if math.isfinite(v) else 0.0 for v in ref]
        else:
            assert all(math.isnan(v) and q == 0.0 for v, q in got[1:])
    assert n_spec > 50  # the test saw spectra


def test_interval_cleaner_equals_python_rules() -> None:
    from adaptive.cardiac import CardiacConfig, IntervalCleaner

    cfg = CardiacConfig()
    rng = np.random.default_rng(10)
    for _ in range(200):
        n = int(rng.integers(0, 40))
        t = np.cumsum(rng.uniform(0.2, 1.6, n))
        corr = rng.uniform(0.6, 1.0, n)
        corr[rng.random(n) < 0.1] = np.nan
        z = np.zeros(n)
        beats = Beats(t, np.zeros(n, dtype=np.int64), z, z, z, z, t + 0.5, corr, t)
        cleaner = IntervalCleaner(cfg)
        cut = int(rng.integers(0, n + 1))  # two calls: the state carries over
        parts = [cleaner.add(Beats(*(getattr(beats, f)[:cut] for f in _FIELDS))),
                 cleaner.add(Beats(*(getattr(beats, f)[cut:] for f in _FIELDS)))]
        # the rules as a plain loop (the form the kernel replaced)
        rows, recent, last_t, last_c = [], [], None, math.nan
        for ti, ci in zip(t.tolist(), corr.tolist(), strict=True):
            if last_t is not None:
                ibi = ti - last_t
                in_range = cfg.min_ibi_s <= ibi <= cfg.max_ibi_s
                valid = in_range
                if valid and recent:
                    ref = float(np.median(recent))
                    valid = abs(ibi - ref) <= cfg.max_jump * ref
                if in_range:
                    recent = (recent + [ibi])[-cfg.ref_n :]
                rows.append((ti, ibi, valid, valid and ci >= 0.85 and last_c >= 0.85, ti + 0.5))
            last_t, last_c = ti, ci
        got = [row for p in parts for row in zip(p.times.tolist(), p.ibi_s.tolist(), p.valid.tolist(),
                                                  p.clean.tolist(), p.detect_times.tolist(), strict=True)]
        assert got == rows


def test_nan_estimates_are_math_nan() -> None:
    # a NaN from a kernel is a new float object; estimates carry math.nan itself, as the numpy
    # form did, so that estimates (dataclasses compared field by field) compare equal
    x, t = _ppg(80.0, seed=3)
    est = CardiacEstimator(SFREQ)
    out = []
    for s in range(0, x.size, 32):
        out += est.update(Chunk("ppg", x[np.newaxis, s : s + 32], t[s : s + 32], SFREQ, ("ppg",)))
    nans = [e.value for e in out if math.isnan(e.value)]
    assert nans and all(v is math.nan for v in nans)
