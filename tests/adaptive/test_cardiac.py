"""Tests of adaptive.cardiac: heart rate, intervals, RMSSD, spectrum, coherence, HR oscillation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from adaptive.cardiac import (
    CardiacConfig,
    CardiacEstimator,
    HeartRateEstimator,
    HrvEstimator,
    beat_intervals,
    hr_from_peaks,
    hr_oscillation,
    hrv_rmssd,
    hrv_spectrum,
    ppg_hr,
    ppg_hrv,
)
from adaptive.ppg import Beats, ppg_beats, reference_pulse
from adaptive.types import Chunk, Estimate, Metric

SFREQ = 64.0


def synth_ppg(onsets: np.ndarray, duration_s: float, noise: float = 0.01, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """PPG of reference pulses starting at ``onsets`` plus white noise (own generator)."""
    t = np.arange(int(round(duration_s * SFREQ))) / SFREQ
    x = np.zeros_like(t)
    for o in onsets:
        m = (t >= o) & (t < o + 1.5)
        x[m] += reference_pulse(t[m] - o)
    return x + noise * np.random.default_rng(seed).standard_normal(t.size), t


def onsets_modulated(
    duration_s: float, hr_bpm: float, mod_bpm: float = 0.0, mod_hz: float = 0.1, jitter_s: float = 0.0, seed: int = 0
) -> np.ndarray:
    """Beat onsets by integral pulse frequency modulation: HR(t) = hr + mod/2 * sin(2 pi f t)."""
    dt = 1e-3
    tt = np.arange(0.0, duration_s + 2.0, dt)
    hr = hr_bpm + 0.5 * mod_bpm * np.sin(2 * np.pi * mod_hz * tt)
    phase = np.cumsum(hr / 60.0) * dt
    beats = tt[np.searchsorted(phase, np.arange(1, int(phase[-1])))] + 0.3
    if jitter_s:
        beats = beats + jitter_s * np.random.default_rng(seed).standard_normal(beats.size)
    return np.sort(beats)


def _values(est: list[Estimate], metric: Metric) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sel = [e for e in est if e.metric == metric]
    return (np.array([e.time for e in sel]), np.array([e.value for e in sel]), np.array([e.quality for e in sel]))


def _chunks(x: np.ndarray, t: np.ndarray, cuts: list[int]) -> list[Chunk]:
    edges = [0, *sorted(set(c for c in cuts if 0 < c < x.size)), x.size]
    return [Chunk("ppg", x[np.newaxis, a:b], t[a:b], SFREQ, ("ppg",)) for a, b in zip(edges[:-1], edges[1:])]


def _assert_same(a: list[Estimate], b: list[Estimate]) -> None:
    assert [(e.metric, e.time) for e in a] == [(e.metric, e.time) for e in b]
    assert_allclose([e.value for e in a], [e.value for e in b], rtol=1e-12, equal_nan=True)
    assert_allclose([e.quality for e in a], [e.quality for e in b], rtol=1e-12)


# -- heart rate ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("hr_bpm", [50.0, 72.0, 110.0])
def test_heart_rate_matches_known_rate(hr_bpm: float) -> None:
    onsets = onsets_modulated(90.0, hr_bpm, jitter_s=0.01)
    x, t = synth_ppg(onsets, 90.0)
    s = ppg_hr(x, SFREQ)
    late = s.times > 45.0
    true = 60.0 / np.median(np.diff(onsets))
    # within 2 %: the median of the 8-18 intervals of a 10 s window, each with 10 ms jitter
    # (1-2 % of an interval), scatters by about 0.5 %
    assert np.all(np.abs(s.values[Metric.HR_BPM][late] - true) < 0.02 * true)
    assert np.all(s.quality[Metric.HR_BPM][late] > 0.8)
    ibi = s.values[Metric.IBI_MS][late]
    assert np.all(np.abs(ibi - 60000.0 / hr_bpm) < 60.0)  # ms: one jittered interval


def test_hr_from_peaks_and_artefact_rejection() -> None:
    peaks = np.arange(0.0, 60.0, 0.8)
    assert hr_from_peaks(peaks) == pytest.approx(75.0)
    # a missed beat (interval doubles) and an extra beat (splits an interval) are rejected
    damaged = np.sort(np.concatenate([np.delete(peaks, 30), [peaks[50] + 0.3]]))
    iv = beat_intervals(Beats(damaged, np.zeros(damaged.size, dtype=np.int64), damaged, damaged, damaged,
                              damaged, damaged, np.ones(damaged.size), damaged))
    assert np.sum(~iv.valid) == 3  # the 1.6 s interval and both halves of the split one
    assert hr_from_peaks(damaged) == pytest.approx(75.0)
    # implausible rates never count
    assert math.isnan(hr_from_peaks(np.arange(0.0, 10.0, 0.1)))  # 600 bpm
    assert math.isnan(hr_from_peaks(np.array([0.0, 5.0, 10.0, 15.0])))  # 12 bpm


def test_template_mismatch_makes_intervals_unclean() -> None:
    peaks = np.arange(0.0, 30.0, 0.8)
    corr = np.ones(peaks.size)
    corr[10] = 0.3
    beats = Beats(peaks, np.zeros(peaks.size, dtype=np.int64), peaks, peaks, peaks, peaks, peaks, corr, peaks)
    iv = beat_intervals(beats)
    assert iv.valid.all()
    assert np.flatnonzero(~iv.clean).tolist() == [9, 10]  # the two intervals touching beat 10


# -- HRV -------------------------------------------------------------------------------------------------------
def test_rmssd_matches_truth() -> None:
    onsets = onsets_modulated(130.0, 65.0, jitter_s=0.025, seed=4)
    x, t = synth_ppg(onsets, 130.0)
    s = ppg_hrv(x, SFREQ)
    k = int(np.argmin(np.abs(s.times - 125.0)))
    window = (onsets > s.times[k] - 64.0) & (onsets <= s.times[k])
    truth = hrv_rmssd(np.diff(onsets[window]))
    got = s.values[Metric.RMSSD_MS][k]
    # within 10 %: interval error after parabolic interpolation is ~2 ms rms, which adds little
    # to a ~50 ms RMSSD in quadrature
    assert abs(got - truth) < 0.1 * truth, (got, truth)
    assert s.quality[Metric.RMSSD_MS][k] > 0.8


def test_hrv_rmssd_by_hand() -> None:
    ibi = np.array([0.80, 0.82, 0.79, 0.81, 0.80])
    d = np.diff(ibi) * 1000
    assert hrv_rmssd(ibi) == pytest.approx(math.sqrt(np.mean(d**2)))
    valid = np.array([True, True, False, True, True])
    assert math.isnan(hrv_rmssd(ibi, valid))  # only 2 successive valid pairs remain


def test_spectrum_of_pure_oscillation() -> None:
    t = np.arange(0.0, 64.0, 0.8)
    ibi = 0.8 + 0.05 * np.sin(2 * np.pi * 0.1 * t)
    spec = hrv_spectrum(t, ibi, t_start=0.0, t_end=64.0)
    assert spec.peak_hz == pytest.approx(0.1, abs=0.01)
    assert spec.lf_ms2 > 20 * spec.hf_ms2
    # power of a 50 ms sinusoid is 50^2 / 2 = 1250 ms^2 (within 20 %: Hann leakage out of the band)
    assert spec.lf_ms2 == pytest.approx(1250.0, rel=0.2)
    assert spec.coherence > 0.8
    hf = hrv_spectrum(t, 0.8 + 0.05 * np.sin(2 * np.pi * 0.3 * t), t_start=0.0, t_end=64.0)
    assert hf.hf_ms2 > 20 * hf.lf_ms2


def test_coherence_higher_for_resonant_oscillation_than_random() -> None:
    slow = onsets_modulated(140.0, 65.0, mod_bpm=12.0, mod_hz=0.1, jitter_s=0.005, seed=1)
    rng = np.random.default_rng(2)
    random_onsets = 0.3 + np.cumsum(0.92 + 0.06 * rng.standard_normal(160))
    random_onsets = random_onsets[random_onsets < 140.0]
    c_slow = ppg_hrv(synth_ppg(slow, 140.0)[0], SFREQ).values[Metric.HRV_COHERENCE][-30:]
    c_rand = ppg_hrv(synth_ppg(random_onsets, 140.0)[0], SFREQ).values[Metric.HRV_COHERENCE][-30:]
    # a 0.1 Hz sinusoid concentrates its power in one peak (> 0.6), white variability does not
    assert np.nanmin(c_slow) > 0.6
    assert np.nanmedian(c_rand) < 0.35
    assert np.nanmin(c_slow) > np.nanmax(c_rand)


def test_hr_oscillation_larger_at_resonance() -> None:
    # Resonance breathing (6 brpm) drives a larger heart-rate swing than 15 brpm (the
    # baroreflex resonance): model 12 bpm peak-to-trough at 0.1 Hz vs 4 bpm at 0.25 Hz.
    at6 = onsets_modulated(140.0, 65.0, mod_bpm=12.0, mod_hz=0.1, seed=1)
    at15 = onsets_modulated(140.0, 65.0, mod_bpm=4.0, mod_hz=0.25, seed=1)
    osc6 = ppg_hrv(synth_ppg(at6, 140.0)[0], SFREQ).values[Metric.HR_OSC_BPM][-30:]
    osc15 = ppg_hrv(synth_ppg(at15, 140.0)[0], SFREQ).values[Metric.HR_OSC_BPM][-30:]
    assert np.nanmin(osc6) > 2 * np.nanmax(osc15)
    # the swing itself within 25 % of the modelled one (beat sampling of a 4 Hz tachogram)
    assert np.nanmedian(osc6) == pytest.approx(12.0, rel=0.25)
    assert np.nanmedian(osc15) == pytest.approx(4.0, rel=0.25)
    t = np.arange(0.0, 64.0, 0.25)
    ibi = 60.0 / (65.0 + 6.0 * np.sin(2 * np.pi * 0.1 * t))
    assert hr_oscillation(t, ibi, t_start=0.0, t_end=64.0) == pytest.approx(12.0, rel=0.05)


# -- quality and bad data ----------------------------------------------------------------------------------------
def test_quality_falls_with_nan_flat_and_noise() -> None:
    onsets = onsets_modulated(100.0, 70.0, jitter_s=0.01)
    x, t = synth_ppg(onsets, 100.0)
    bad = x.copy()
    bad[int(60 * SFREQ) : int(66 * SFREQ)] = np.nan
    bad[int(75 * SFREQ) : int(81 * SFREQ)] = bad[int(75 * SFREQ)]
    bad[int(88 * SFREQ) :] = np.random.default_rng(0).standard_normal(bad.size - int(88 * SFREQ))
    clean, dirty = ppg_hr(x, SFREQ), ppg_hr(bad, SFREQ)
    for lo, hi in [(64.0, 67.0), (79.0, 82.0), (97.0, 100.0)]:
        m = (clean.times > lo) & (clean.times < hi)
        for metric in (Metric.HR_BPM, Metric.QUALITY_PPG):
            assert np.all(dirty.quality[metric][m] <= clean.quality[metric][m])
            assert np.all(dirty.values[Metric.QUALITY_PPG][m] < clean.values[Metric.QUALITY_PPG][m] - 0.2)
    assert np.all(np.isfinite(dirty.values[Metric.QUALITY_PPG]))


def test_all_nan_gives_nan_with_zero_quality() -> None:
    x = np.full(int(40 * SFREQ), np.nan)
    est = HeartRateEstimator(SFREQ).update(Chunk("ppg", x[np.newaxis], np.arange(x.size) / SFREQ, SFREQ, ("ppg",)))
    est += HrvEstimator(SFREQ).update(Chunk("ppg", x[np.newaxis], np.arange(x.size) / SFREQ, SFREQ, ("ppg",)))
    assert est and all(e.quality == 0.0 for e in est if e.metric != Metric.QUALITY_PPG)
    assert all(e.value == 0.0 for e in est if e.metric == Metric.QUALITY_PPG)
    assert all(math.isnan(e.value) for e in est if e.metric in (Metric.HR_BPM, Metric.RMSSD_MS))


# -- streaming == offline, chunk invariance ------------------------------------------------------------------------
_ONSETS = onsets_modulated(80.0, 68.0, mod_bpm=6.0, mod_hz=0.1, jitter_s=0.02, seed=9)
_X, _T = synth_ppg(_ONSETS, 80.0, noise=0.03)
_X[int(50 * SFREQ) : int(52 * SFREQ)] = np.nan


@pytest.mark.parametrize("chunk", [6, 64, 777])
@pytest.mark.parametrize("cls,offline", [(HeartRateEstimator, ppg_hr), (HrvEstimator, ppg_hrv)])
def test_streaming_equals_offline(chunk: int, cls: type, offline: object) -> None:
    est = cls(SFREQ)
    got = [e for c in _chunks(_X, _T, list(range(chunk, _X.size, chunk))) for e in est.update(c)]
    _assert_same(got, offline(_X, SFREQ).estimates())  # type: ignore[operator]


@settings(max_examples=8, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=_X.size - 1), max_size=30))
def test_chunk_invariance_random_splits(cuts: list[int]) -> None:
    for cls, offline in ((HeartRateEstimator, ppg_hr), (HrvEstimator, ppg_hrv)):
        est = cls(SFREQ)
        got = [e for c in _chunks(_X, _T, cuts) for e in est.update(c)]
        _assert_same(got, offline(_X, SFREQ).estimates())


@settings(max_examples=8, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=_X.size - 1), max_size=30))
def test_cardiac_estimator_equals_hr_and_hrv(cuts: list[int]) -> None:
    # CardiacEstimator computes both windows in one pass (shared masks, no window records): it
    # must emit exactly what the two single estimators emit, hop by hop, for any split
    both, hr, hrv = CardiacEstimator(SFREQ), HeartRateEstimator(SFREQ), HrvEstimator(SFREQ)
    a: list[Estimate] = []
    b: list[Estimate] = []
    for c in _chunks(_X, _T, cuts):
        a += both.update(c)
        b += hr.update(c) + hrv.update(c)
    # per hop: heart-rate metrics first, then HRV (a chunk of several hops gives the single
    # estimators' outputs hop-major per estimator, so order b by hop time, stably)
    _assert_same(a, sorted(b, key=lambda e: e.time))


def test_interval_store_snapshots_stay_valid() -> None:
    # snapshots are views of an append-only store: later appends, drops and moves to a larger
    # array must not change a snapshot handed out earlier
    from adaptive.cardiac import _IntervalStore

    store = _IntervalStore(capacity=4)
    snaps = []
    for k in range(40):
        store.append([(float(k), 0.8, True, k % 3 != 0, float(k) + 0.5)])
        store.drop_until(k - 10.0)
        snap = store.snapshot()
        assert not snap.times.flags.writeable
        snaps.append((snap, snap.times.copy(), snap.clean.copy()))
    for snap, times, clean in snaps:
        assert_allclose(snap.times, times, rtol=0, atol=0)
        assert np.array_equal(snap.clean, clean)
    last = snaps[-1][0]
    assert_allclose(last.times, np.arange(30.0, 40.0), rtol=0, atol=0)  # times > 39 - 10 kept


def test_fixed_one_second_hops_and_reset() -> None:
    est = HeartRateEstimator(SFREQ)
    first = est.update(Chunk("ppg", _X[np.newaxis], _T, SFREQ, ("ppg",)))
    times = np.unique([e.time for e in first])
    assert_allclose(np.diff(times), 1.0)
    est.reset()
    _assert_same(first, est.update(Chunk("ppg", _X[np.newaxis], _T, SFREQ, ("ppg",))))


# -- wrong calls ---------------------------------------------------------------------------------------------------
def test_wrong_calls_raise() -> None:
    t = np.arange(64) / SFREQ
    for cls in (HeartRateEstimator, HrvEstimator):
        est = cls(SFREQ)
        with pytest.raises(ValueError, match="'kind'"):
            est.update(Chunk("accel", np.zeros((3, 64)), t, SFREQ, ("x", "y", "z")))
        with pytest.raises(ValueError, match="'sfreq'"):
            est.update(Chunk("ppg", np.zeros((1, 64)), t, 100.0, ("ppg",)))
        with pytest.raises(TypeError):
            est.update(np.zeros((1, 64)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'fiducial'"):
        CardiacConfig(fiducial="foot")
    with pytest.raises(ValueError, match="'min_ibi_s'"):
        CardiacConfig(min_ibi_s=2.5)
    with pytest.raises(ValueError, match="'ppg'"):
        ppg_hr(np.zeros((2, 100)), SFREQ)
    with pytest.raises(ValueError, match="'resample_hz'"):
        CardiacConfig(resample_hz=0.5)


# -- simulated patient and real data ---------------------------------------------------------------------------------
def _simulate(pace_brpm: float, duration_s: float = 150.0) -> tuple[list[Estimate], object]:
    simulated = pytest.importorskip("sensors.simulated")
    sim = simulated.SimulatedPatient("compliant", seed=5)
    sim.start()
    sim.set_pace(pace_brpm)
    hr, hrv = HeartRateEstimator(SFREQ), HrvEstimator(SFREQ)
    out: list[Estimate] = []
    for now in np.arange(1.0, duration_s + 1.0, 1.0):
        for c in sim.poll(float(now)):
            if c.kind == "ppg":
                out += hr.update(c) + hrv.update(c)
    return out, sim


def test_simulated_patient_hr_and_resonance() -> None:
    at6, sim6 = _simulate(6.0)
    at15, _ = _simulate(15.0)
    t, hr, q = _values(at6, Metric.HR_BPM)
    m = (t > 60.0) & (q > 0.5)
    assert m.sum() > 60
    truth = np.array([np.mean(sim6.truth(np.linspace(tt - 10.0, tt, 41)).hr_bpm) for tt in t[m]])  # type: ignore[attr-defined]
    # 10 s windows: median interval vs mean instantaneous HR differ by the RSA skew, ~2 bpm
    assert np.median(np.abs(hr[m] - truth)) < 2.0
    _, osc6, q6 = _values(at6, Metric.HR_OSC_BPM)
    _, osc15, q15 = _values(at15, Metric.HR_OSC_BPM)
    # the simulator's RSA follows a resonance curve peaking near 6 brpm
    assert np.nanmedian(osc6[-30:]) > 1.5 * np.nanmedian(osc15[-30:])
    _, coh6, _ = _values(at6, Metric.HRV_COHERENCE)
    _, coh15, _ = _values(at15, Metric.HRV_COHERENCE)
    assert np.nanmedian(coh6[-30:]) > np.nanmedian(coh15[-30:])


@pytest.mark.shared_data
def test_neurokit_resting_hr_against_ecg(shared_data) -> None:  # type: ignore[no-untyped-def]
    pd = pytest.importorskip("pandas")
    nk = pytest.importorskip("neurokit2")
    d = pd.read_csv(shared_data / "neurokit_resting" / "bio_resting_5min_100hz.csv")
    s = ppg_hr(d["PPG"].to_numpy(float), 100.0)
    r = np.asarray(nk.ecg_peaks(d["ECG"].to_numpy(float), sampling_rate=100)[1]["ECG_R_Peaks"]) / 100.0
    ref = np.array([60.0 / np.median(np.diff(r[(r > te - 10.0) & (r <= te)])) for te in s.times[s.times > 40]])
    err = np.abs(s.values[Metric.HR_BPM][s.times > 40] - ref)
    # finger PPG vs ECG at rest: pulse transit time varies little, so HR agrees within ~1 bpm
    assert np.nanmean(err) < 2.0
    beats = ppg_beats(d["PPG"].to_numpy(float), 100.0)
    assert len(beats) > 400
