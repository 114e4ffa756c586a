"""Breathing rate from PPG modulations and head motion (adaptive.respiration)."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from adaptive.respiration import (
    RespirationConfig,
    RespirationEstimator,
    RespirationRate,
    rate_from_accel,
    rate_from_ppg,
)
from adaptive.types import Chunk, Estimate, Metric, SignalKind

PPG_FS = 64.0  # Muse PPG
ACC_FS = 52.0  # Muse accelerometer
RESP_METRICS = (Metric.RESP_RATE_BRPM, Metric.RESP_RATE_PPG_BRPM, Metric.RESP_RATE_ACCEL_BRPM)


# --------------------------------------------------------------------------- synthetic signals
def synth_ppg(rate_brpm: float, dur_s: float = 120.0, fs: float = PPG_FS, hr_bpm: float = 70.0,
              seed: int = 0, noise: float = 0.02, inverted: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Pulses carrying the three respiratory modulations at ``rate_brpm`` (times, samples).

    Baseline +-0.3, pulse amplitude +-15 % and heart rate +-4 % (respiratory sinus arrhythmia)
    follow a sinusoidal breath; unit pulse height, white noise.  ``inverted`` mimics the raw
    Muse reflectance PPG, whose counts drop at each systole.
    """
    rng = np.random.default_rng(seed)
    n = int(round(dur_s * fs))
    t = np.arange(n) / fs
    resp = np.sin(2 * np.pi * rate_brpm / 60.0 * t + rng.uniform(0, 2 * np.pi))
    phase = np.cumsum(hr_bpm / 60.0 * (1.0 + 0.04 * resp)) / fs
    pulse = (0.5 - 0.5 * np.cos(2 * np.pi * phase)) ** 3
    x = 1.0 + 0.3 * resp + (1.0 + 0.15 * resp) * pulse + noise * rng.standard_normal(n)
    return t, (2.0 - x if inverted else x)


def synth_accel(rate_brpm: float, dur_s: float = 120.0, fs: float = ACC_FS, seed: int = 0,
                tilt_mg: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Gravity through a head that pitches with every breath (``tilt_mg`` per breath), in g."""
    rng = np.random.default_rng(seed)
    n = int(round(dur_s * fs))
    t = np.arange(n) / fs
    pitch = 0.2 + tilt_mg / 1000.0 * np.sin(2 * np.pi * rate_brpm / 60.0 * t)
    roll = 0.05 + 0.002 * np.cumsum(rng.standard_normal(n)) / np.sqrt(fs * 60.0)  # slow sway
    acc = np.vstack([np.sin(pitch), np.cos(pitch) * np.sin(roll), np.cos(pitch) * np.cos(roll)])
    acc[2] += 0.002 * np.sin(2 * np.pi * 1.2 * t)  # ballistocardiogram at 72 beats/min
    return t, acc + 0.0015 * rng.standard_normal(acc.shape)


def ppg_chunk(t: np.ndarray, x: np.ndarray) -> Chunk:
    return Chunk(SignalKind.PPG, x[np.newaxis], t, PPG_FS, ("PPG_IR",))


def acc_chunk(t: np.ndarray, a: np.ndarray) -> Chunk:
    return Chunk(SignalKind.ACCEL, a, t, ACC_FS, ("ACC_X", "ACC_Y", "ACC_Z"))


def feed(est: RespirationEstimator, chunks: list[Chunk]) -> list[Estimate]:
    out: list[Estimate] = []
    for c in chunks:
        out.extend(est.update(c))
    return out


def split(t: np.ndarray, x: np.ndarray, edges: list[int],
          maker: Callable[[np.ndarray, np.ndarray], Chunk]) -> list[Chunk]:
    bounds = [0, *sorted(set(e for e in edges if 0 < e < t.size)), t.size]
    return [maker(t[a:b], x[..., a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def interleave(ppg: list[Chunk], acc: list[Chunk]) -> list[Chunk]:
    """Chunks of both streams in the order a device would deliver them (by last sample time)."""
    return sorted([*ppg, *acc], key=lambda c: (float(c.times[-1]), c.kind.value))


def by_metric(out: list[Estimate], metric: Metric) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sel = [e for e in out if e.metric == metric]
    return (np.array([e.time for e in sel]), np.array([e.value for e in sel]),
            np.array([e.quality for e in sel]))


def assert_same_estimates(a: list[Estimate], b: list[Estimate]) -> None:
    assert [(e.metric, e.time) for e in a] == [(e.metric, e.time) for e in b]
    assert_allclose([e.value for e in a], [e.value for e in b], rtol=1e-12, equal_nan=True)
    assert_allclose([e.quality for e in a], [e.quality for e in b], rtol=1e-12)


# --------------------------------------------------------------------------- ground truth
@pytest.mark.parametrize(
    ("rate", "hr", "tol"),
    [
        # Within 4-40 breaths/min; the tolerance is a fraction of a 64 s window's 0.94 breaths/min
        # spectral resolution (the tracker interpolates between bins), wider at the range edges
        # where half of the spectral lobe lies outside the searched band.
        (4.0, 70.0, 0.6),
        (4.5, 70.0, 0.3),
        (6.0, 70.0, 0.3),
        (12.0, 70.0, 0.3),
        (20.0, 80.0, 0.3),
        (30.0, 90.0, 0.3),
        # 40 breaths/min with a heart rate of 100: beat-sampled modulations need the heart rate
        # above twice the breathing rate (tachypnoea comes with tachycardia).
        (40.0, 100.0, 0.6),
    ],
)
def test_synthetic_rates_are_recovered(rate: float, hr: float, tol: float) -> None:
    t, x = synth_ppg(rate, dur_s=110.0, hr_bpm=hr, seed=int(rate))
    est = RespirationEstimator(ppg_sfreq=PPG_FS, accel_sfreq=None)
    times, values, quality = by_metric(feed(est, [ppg_chunk(t, x)]), Metric.RESP_RATE_BRPM)
    late = times >= 80.0
    assert np.all(np.isfinite(values[late]))
    assert np.max(np.abs(values[late] - rate)) < tol
    assert np.min(quality[late]) > 0.3  # clean signal: confident


def test_inverted_polarity_is_handled() -> None:
    """Raw Muse PPG drops at systole; the rate must not depend on polarity."""
    t, x = synth_ppg(9.0, dur_s=90.0, inverted=True)
    r = rate_from_ppg(x, PPG_FS)
    assert abs(np.nanmedian(r.rate_bpm[r.times_s >= 60]) - 9.0) < 0.3  # brpm: as above


def test_accel_rate_is_recovered() -> None:
    t, a = synth_accel(7.0, dur_s=100.0)
    r = rate_from_accel(a, ACC_FS)
    late = r.times_s >= 70
    # 0.3 breaths/min: a sixth of the 32 s window's spectral resolution (1.9 breaths/min)
    assert np.max(np.abs(r.rate_bpm[late] - 7.0)) < 0.3


def test_fusion_of_ppg_and_accel() -> None:
    t, x = synth_ppg(11.0, dur_s=90.0)
    ta, a = synth_accel(11.0, dur_s=90.0)
    est = RespirationEstimator(PPG_FS, ACC_FS, config=RespirationConfig(window_s=32.0))
    out = feed(est, interleave(split(t, x, list(range(0, t.size, 64)), ppg_chunk),
                               split(ta, a, list(range(0, ta.size, 52)), acc_chunk)))
    for metric in RESP_METRICS:
        times, values, _ = by_metric(out, metric)
        assert np.all(np.diff(times) > 0.99)  # one estimate per hop of 1 s
        assert np.max(np.abs(values[times >= 60] - 11.0)) < 0.3  # brpm, as above
    # fused estimates ride on the PPG hops; the last may wait for accelerometer data of its time
    fused_t, ppg_t = by_metric(out, Metric.RESP_RATE_BRPM)[0], by_metric(out, Metric.RESP_RATE_PPG_BRPM)[0]
    assert 0 <= ppg_t.size - fused_t.size <= 1
    assert_array_equal(fused_t, ppg_t[: fused_t.size])


def test_without_accel_fused_equals_ppg() -> None:
    t, x = synth_ppg(14.0, dur_s=60.0)
    out = feed(RespirationEstimator(PPG_FS, ACC_FS), [ppg_chunk(t, x)])
    fused, ppg = by_metric(out, Metric.RESP_RATE_BRPM), by_metric(out, Metric.RESP_RATE_PPG_BRPM)
    for a, b in zip(fused, ppg):
        assert_array_equal(a, b)
    assert not by_metric(out, Metric.RESP_RATE_ACCEL_BRPM)[0].size


def test_accel_only_feeds_the_fused_track() -> None:
    ta, a = synth_accel(8.0, dur_s=70.0)
    est = RespirationEstimator(None, ACC_FS, config=RespirationConfig(window_s=32.0))
    out = feed(est, [acc_chunk(ta, a)])
    fused, acc = by_metric(out, Metric.RESP_RATE_BRPM), by_metric(out, Metric.RESP_RATE_ACCEL_BRPM)
    for u, v in zip(fused, acc):
        assert_array_equal(u, v)


def test_window_grows_when_breathing_is_slow() -> None:
    cfg = RespirationConfig(window_s=64.0, min_window_s=24.0, cycles_per_window=8.0)
    lengths = {}
    for rate in (5.0, 25.0):
        t, x = synth_ppg(rate, dur_s=100.0, hr_bpm=90.0)
        est = RespirationEstimator(PPG_FS, None, config=cfg)
        est.update(ppg_chunk(t, x))
        lengths[rate] = est.current_window_s[SignalKind.PPG]
    assert lengths[5.0] == pytest.approx(64.0)  # 8 breaths at 5/min would need 96 s: capped
    assert lengths[25.0] == pytest.approx(24.0)  # 8 breaths at 25/min = 19 s: floored at 24 s


def test_estimate_times_are_window_ends_on_fixed_hops() -> None:
    t, x = synth_ppg(12.0, dur_s=50.0)
    t = t + 100.0  # session clock does not start at 0
    out = feed(RespirationEstimator(PPG_FS, None, config=RespirationConfig(window_s=32.0)), [ppg_chunk(t, x)])
    times, _, _ = by_metric(out, Metric.RESP_RATE_PPG_BRPM)
    hop = int(PPG_FS)  # 1 s; the first window ends after min_window_s = 16 s of samples
    assert_array_equal(times, t[np.arange(16 * hop, t.size + 1, hop) - 1])


# --------------------------------------------------------------------------- offline twins
def test_rate_from_ppg_matches_streaming_with_random_chunks() -> None:
    t, x = synth_ppg(10.0, dur_s=70.0, seed=3)
    off = rate_from_ppg(x, PPG_FS, window_s=32.0, step_s=1.0)
    assert isinstance(off, RespirationRate)
    with pytest.raises(AttributeError):
        off.rate_bpm = off.rate_bpm  # type: ignore[misc]  # frozen
    cuts = np.random.default_rng(7).integers(1, t.size, 40).tolist()
    est = RespirationEstimator(PPG_FS, None, config=RespirationConfig(window_s=32.0, hop_s=1.0))
    times, values, quality = by_metric(feed(est, split(t, x, cuts, ppg_chunk)), Metric.RESP_RATE_PPG_BRPM)
    assert_allclose(off.times_s, times, rtol=1e-12)
    assert_allclose(off.rate_bpm, values, rtol=1e-12, equal_nan=True)
    assert_allclose(off.quality, quality, rtol=1e-12)
    # causal: the values up to t do not change when later samples are cut off
    short = rate_from_ppg(x[: 50 * 64], PPG_FS)
    assert_allclose(short.rate_bpm, off.rate_bpm[: short.rate_bpm.size], rtol=1e-12, equal_nan=True)


def test_rate_from_accel_matches_streaming() -> None:
    ta, a = synth_accel(9.0, dur_s=50.0)
    off = rate_from_accel(a, ACC_FS)
    est = RespirationEstimator(None, ACC_FS, config=RespirationConfig(window_s=32.0))
    out = feed(est, split(ta, a, [100, 777, 2000], acc_chunk))
    times, values, _ = by_metric(out, Metric.RESP_RATE_ACCEL_BRPM)
    assert_allclose(off.times_s, times - ta[0], rtol=1e-12)
    assert_allclose(off.rate_bpm, values, rtol=1e-12, equal_nan=True)


# --------------------------------------------------------------------------- chunk invariance
_T, _X = synth_ppg(13.0, dur_s=45.0, seed=5)
_TA, _A = synth_accel(13.0, dur_s=45.0, seed=5)
_CFG = RespirationConfig(window_s=24.0, min_window_s=12.0)


def _run_split(ppg_cuts: list[int], acc_cuts: list[int] | None = None) -> list[Estimate]:
    est = RespirationEstimator(PPG_FS, ACC_FS if acc_cuts is not None else None, config=_CFG)
    chunks = split(_T, _X, ppg_cuts, ppg_chunk)
    if acc_cuts is not None:
        chunks = interleave(chunks, split(_TA, _A, acc_cuts, acc_chunk))
    return feed(est, chunks)


_REF_PPG = _run_split([])
_REF_BOTH = _run_split(list(range(0, _T.size, 64)), list(range(0, _TA.size, 52)))


@pytest.mark.parametrize("size", [1, 5, 10, 50, 333])
def test_chunk_sizes_give_identical_estimates(size: int) -> None:
    assert_same_estimates(_run_split(list(range(0, _T.size, size))), _REF_PPG)


@pytest.mark.parametrize(("ppg_size", "acc_size"), [(6, 12), (64, 52), (100, 7)])
def test_chunk_sizes_give_identical_fused_estimates(ppg_size: int, acc_size: int) -> None:
    got = _run_split(list(range(0, _T.size, ppg_size)), list(range(0, _TA.size, acc_size)))
    key = lambda e: (e.metric.value, e.time)  # noqa: E731  (streams interleave differently)
    assert_same_estimates(sorted(got, key=key), sorted(_REF_BOTH, key=key))


@settings(max_examples=12, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=_T.size - 1), max_size=25))
def test_random_split_points_give_identical_estimates(cuts: list[int]) -> None:
    assert_same_estimates(_run_split(cuts), _REF_PPG)


def test_reset_forgets_everything() -> None:
    est = RespirationEstimator(PPG_FS, None, config=_CFG)
    first = feed(est, [ppg_chunk(_T, _X)])
    est.reset()
    assert_same_estimates(feed(est, [ppg_chunk(_T, _X)]), first)


# --------------------------------------------------------------------------- pace hint
def test_pace_hint_does_not_make_the_estimate_echo_the_pacer() -> None:
    """Truth 15 breaths/min, pacer at 6: the estimate must follow the breathing, not the pacer."""
    t, x = synth_ppg(15.0, dur_s=100.0, seed=11)
    est = RespirationEstimator(PPG_FS, None)
    est.pace_hint_brpm = 6.0
    assert est.pace_hint_brpm == 6.0
    times, values, _ = by_metric(feed(est, [ppg_chunk(t, x)]), Metric.RESP_RATE_BRPM)
    late = times >= 60
    assert np.max(np.abs(values[late] - 15.0)) < 0.3  # brpm: as without a hint
    # a hint right next to the truth does not pull the clean estimate either
    est2 = RespirationEstimator(PPG_FS, None)
    est2.pace_hint_brpm = 16.0
    _, v2, _ = by_metric(feed(est2, [ppg_chunk(t, x)]), Metric.RESP_RATE_BRPM)
    assert np.max(np.abs(v2[late] - 15.0)) < 0.4  # brpm: hint 1 brpm away moves it < 0.4


def test_pace_hint_cannot_create_a_rate_from_no_data() -> None:
    t = np.arange(int(80 * PPG_FS)) / PPG_FS
    est = RespirationEstimator(PPG_FS, None)
    est.pace_hint_brpm = 6.0
    _, values, quality = by_metric(feed(est, [ppg_chunk(t, np.full(t.size, 1000.0))]), Metric.RESP_RATE_BRPM)
    assert np.all(np.isnan(values)) and np.all(quality == 0.0)
    est.pace_hint_brpm = None
    assert est.pace_hint_brpm is None


def test_pace_hint_with_simulated_non_follower() -> None:
    """A patient who ignores the pacer (6/min) keeps breathing at their own rate."""
    sim_mod = pytest.importorskip("sensors.simulated")
    sim = sim_mod.SimulatedPatient("non-follower", seed=3)
    sim.start()
    sim.set_pace(6.0)
    est = RespirationEstimator(64.0, 52.0, config=RespirationConfig(window_s=32.0))
    est.pace_hint_brpm = 6.0
    out: list[Estimate] = []
    for k in range(1, 25):
        for ch in sim.poll(5.0 * k):
            if ch.kind in (SignalKind.PPG, SignalKind.ACCEL):
                out.extend(est.update(ch))
    times, values, _ = by_metric(out, Metric.RESP_RATE_BRPM)
    late = times >= 80
    truth = np.array([np.mean(sim.truth(np.arange(te - 32.0, te, 0.25)).resp_rate_brpm)
                      for te in times[late]])
    assert np.min(truth) > 9.0  # the patient really is not following the pacer
    # 1.5 breaths/min: the simulated breath-to-breath variability (CV 0.1-0.2) within a 32 s window
    assert np.max(np.abs(values[late] - truth)) < 1.5
    assert np.all(np.abs(values[late] - 6.0) > 3.0)


# --------------------------------------------------------------------------- slow breathing
@pytest.mark.parametrize("pace", [5.0, 6.0, 7.0])
def test_slow_paced_breathing_on_simulated_patient(pace: float) -> None:
    sim_mod = pytest.importorskip("sensors.simulated")
    sim = sim_mod.SimulatedPatient("compliant", seed=0)
    sim.start()
    sim.set_pace(pace)
    est = RespirationEstimator(64.0, 52.0)  # default: windows up to 64 s for slow rates
    sim.fast_forward(50.0)  # the patient settles on the pace; no samples synthesised
    out: list[Estimate] = []
    for k in range(11, 33):
        for ch in sim.poll(5.0 * k):
            if ch.kind in (SignalKind.PPG, SignalKind.ACCEL):
                out.extend(est.update(ch))
    for metric in (Metric.RESP_RATE_BRPM, Metric.RESP_RATE_PPG_BRPM):
        times, values, _ = by_metric(out, metric)
        keep = times >= 130.0  # the patient has settled on the pace and a full window has passed
        window = est.current_window_s[SignalKind.PPG]
        truth = np.array([np.mean(sim.truth(np.arange(te - window, te, 0.25)).resp_rate_brpm)
                          for te in times[keep]])
        # the project's slow-breathing target: within 0.5 breaths/min of the true mean rate
        assert np.mean(np.abs(values[keep] - truth)) <= 0.5
        assert np.max(np.abs(values[keep] - truth)) <= 1.0


# --------------------------------------------------------------------------- bad data
def _quality_during(x: np.ndarray, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    r = rate_from_ppg(x, PPG_FS)
    m = (r.times_s >= a) & (r.times_s <= b)
    return r.quality[m], r.rate_bpm[m]


_T_BAD, _X_BAD = synth_ppg(12.0, dur_s=85.0, seed=2)
_Q_CLEAN = _quality_during(_X_BAD, 50.0, 80.0)[0]


@pytest.mark.parametrize("kind", ["nan", "flat", "saturated", "motion", "noise"])
def test_bad_data_lowers_quality_and_never_raises(kind: str) -> None:
    x, q_clean = _X_BAD, _Q_CLEAN
    y = x.copy()
    sl = slice(int(50 * PPG_FS), int(65 * PPG_FS))
    rng = np.random.default_rng(4)
    if kind == "nan":
        y[sl] = np.nan
    elif kind == "flat":
        y[sl] = 1.0
    elif kind == "saturated":  # an offset jump drives the optical front end into its rail
        y[sl] = np.minimum(y[sl] + 1.0, np.max(x) + 0.3)
    elif kind == "motion":  # baseline wander 5x the pulse height
        y[sl] += 5.0 * np.cumsum(rng.standard_normal(y[sl].size)) / np.sqrt(PPG_FS)
    else:
        y[sl] += 3.0 * rng.standard_normal(y[sl].size)
    q_bad, values = _quality_during(y, 50.0, 80.0)
    assert np.mean(q_bad) < 0.6 * np.mean(q_clean)
    assert np.all(np.isnan(values) | (np.abs(values - 12.0) < 2.0))  # no wild value


def test_motion_burst_lowers_accel_quality() -> None:
    ta, a = synth_accel(10.0, dur_s=100.0)
    clean = rate_from_accel(a, ACC_FS)
    b = a.copy()
    sl = slice(int(60 * ACC_FS), int(70 * ACC_FS))
    b[:, sl] += 0.1 * np.sin(2 * np.pi * 0.7 * ta[sl])  # nodding: 100 mg swings
    bad = rate_from_accel(b, ACC_FS)
    m = (clean.times_s >= 62) & (clean.times_s <= 90)
    assert np.mean(bad.quality[m]) < 0.6 * np.mean(clean.quality[m])


def test_all_missing_or_flat_gives_nan_with_zero_quality() -> None:
    t = np.arange(int(50 * PPG_FS)) / PPG_FS
    for x in (np.full(t.size, np.nan), np.zeros(t.size)):
        r = rate_from_ppg(x, PPG_FS)
        assert r.rate_bpm.size and np.all(np.isnan(r.rate_bpm)) and np.all(r.quality == 0.0)
    assert rate_from_ppg(np.zeros(0), PPG_FS).rate_bpm.size == 0


def test_a_gap_in_time_does_not_raise() -> None:
    t, x = synth_ppg(12.0, dur_s=100.0)
    keep = (t < 40.0) | (t >= 52.0)  # a 12 s dropout: samples simply missing
    out = feed(RespirationEstimator(PPG_FS, None, config=RespirationConfig(window_s=32.0)),
               [ppg_chunk(t[keep], x[keep])])
    times, values, quality = by_metric(out, Metric.RESP_RATE_PPG_BRPM)
    assert np.all((quality >= 0) & (quality <= 1))
    assert abs(values[-1] - 12.0) < 0.5  # brpm: recovered after a full window of data


# --------------------------------------------------------------------------- wrong calls
def test_wrong_calls_raise() -> None:
    est = RespirationEstimator(PPG_FS, ACC_FS)
    t = np.arange(10) / PPG_FS
    with pytest.raises(TypeError, match="Chunk"):
        est.update(np.zeros((1, 10)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'kind'"):
        est.update(Chunk(SignalKind.EEG, np.zeros((4, 10)), t, 256.0, ("a", "b", "c", "d")))
    with pytest.raises(ValueError, match="'sfreq'"):
        est.update(Chunk(SignalKind.PPG, np.zeros((1, 10)), t, 128.0, ("p",)))
    with pytest.raises(ValueError, match="channels"):
        est.update(Chunk(SignalKind.ACCEL, np.zeros((2, 10)), t, ACC_FS, ("x", "y")))
    with pytest.raises(ValueError, match="ppg_channel"):
        RespirationEstimator(PPG_FS, None, ppg_channel=2).update(ppg_chunk(t, np.zeros(10)))
    with pytest.raises(ValueError, match="'kind'"):
        RespirationEstimator(PPG_FS, None).update(acc_chunk(t, np.zeros((3, 10))))
    with pytest.raises(ValueError, match="pace_hint_brpm"):
        est.pace_hint_brpm = -3.0
    with pytest.raises(ValueError, match="ppg_sfreq"):
        RespirationEstimator(None, None)
    with pytest.raises(ValueError, match="ppg_sfreq"):
        RespirationEstimator(0.0, None)
    with pytest.raises(ValueError, match="ppg_channel"):
        RespirationEstimator(PPG_FS, None, ppg_channel=-1)
    with pytest.raises(ValueError, match="'ppg'"):
        rate_from_ppg(np.zeros((2, 100)), PPG_FS)
    with pytest.raises(ValueError, match="'accel'"):
        rate_from_accel(np.zeros(100), ACC_FS)
    with pytest.raises(ValueError, match="'fs'"):
        rate_from_ppg(np.zeros(100), -1.0)


@pytest.mark.parametrize(
    "kwargs",
    [{"window_s": 2.0}, {"window_s": 32.0, "min_window_s": 40.0}, {"hop_s": 0.0},
     {"rate_min_brpm": 10.0, "rate_max_brpm": 9.0}, {"modulations": ("riiv", "xyz")},
     {"modulations": ()}, {"min_quality": 1.5}, {"evidence_per_s": -1.0}],
)
def test_invalid_config_raises(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="Invalid value"):
        RespirationConfig(**kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- real data
BIDMC_RECORDS = ("05", "32", "53")


def _bidmc(test_data: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(test_data / "bidmc" / f"bidmc_{name}.npz") as f:
        return f["pleth"].astype(np.float64), f["ann1"].astype(np.float64)


def _reference(ann1: np.ndarray, times_s: np.ndarray, window_s: float, fs: float = 125.0) -> np.ndarray:
    """60 / mean interval of annotator 1's breaths in each window (the BIDMC README's reference)."""
    out = []
    for te in times_s:
        end = round(te * fs) + 1
        inside = ann1[(ann1 >= end - window_s * fs) & (ann1 < end)]
        out.append(60.0 * fs / np.mean(np.diff(inside)) if inside.size >= 2 else np.nan)
    return np.array(out)


def _expected(test_data: Path) -> dict[str, list[tuple[float, float, float]]]:
    rows: dict[str, list[tuple[float, float, float]]] = {}
    with open(test_data / "bidmc" / "expected_rate_32s.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            rows.setdefault(row["record"], []).append(
                (float(row["time_s"]), float(row["rate_bpm"]), float(row["quality"])))
    return rows


@pytest.mark.parametrize("name", BIDMC_RECORDS)
def test_bidmc_regression(test_data: Path, name: str) -> None:
    ppg, ann1 = _bidmc(test_data, name)
    r = rate_from_ppg(ppg, 125.0, window_s=32.0, step_s=1.0)
    full = r.times_s >= 32.0 - 1.0 / 125.0  # the benchmark's windows: a full 32 s of data
    ref = _reference(ann1, r.times_s[full], 32.0)
    est = r.rate_bpm[full]
    ok = np.isfinite(ref) & np.isfinite(est)
    # Coverage: the project's target is 90 % pooled over the 21 records (95 % measured).  05 and
    # 32 reach it alone (98 %); in the first 5 min of 53 the modulations often disagree (the two
    # annotators differ there by 0.7 breaths/min, 7 times more than on 05/32), and windows whose
    # quality falls below min_quality are declared not estimable (68 % covered): >= 60 %.
    assert ok.sum() >= (0.6 if name == "53" else 0.9) * np.isfinite(ref).sum()
    mae = float(np.mean(np.abs(est[ok] - ref[ok])))
    # MAE: 2.0 breaths/min is the project's BIDMC target (pooled); each of these records
    # (05 slow ~6/min, 32 fast ~25/min, 53 weak modulations) meets it alone (0.74, 0.31, 1.52).
    assert mae < 2.0
    # and the output has not drifted from the stored run (0.05 breaths/min: FFT round-off)
    exp = np.array(_expected(test_data)[name])
    assert_allclose(r.times_s, exp[:, 0], atol=1e-9)
    assert_allclose(r.rate_bpm, exp[:, 1], atol=0.05, equal_nan=True)
    assert_allclose(r.quality, exp[:, 2], atol=0.02)
    assert math.isfinite(mae)


# --------------------------------------------------------------------------- compiled kernels
# Each kernel must equal the numpy/scipy form it replaces on random and edge input.


def _peak_inputs(rng: np.random.Generator, n_cases: int):
    """Random, integer-valued (plateaus and equal heights) and step-like test signals."""
    for i in range(n_cases):
        n = int(rng.integers(1, 200))
        kind = i % 4
        if kind == 0:
            x = rng.normal(size=n)
        elif kind == 1:
            x = np.round(rng.normal(size=n) * 2) / 2  # plateaus, ties between peaks
        elif kind == 2:
            x = np.cumsum(rng.normal(size=n))
        else:
            x = np.repeat(rng.normal(size=n // 3 + 1), rng.integers(1, 4))[:n]
        yield x, int(rng.integers(1, 20)), float(rng.uniform(0.0, 2.0))


def test_find_peaks_kernel_equals_scipy() -> None:
    from scipy.signal import find_peaks

    from adaptive.respiration import _BEATS_TIES, _NO_PEAKS, _find_peaks_nb

    ties = 0
    for x, dist, prom in _peak_inputs(np.random.default_rng(0), 3000):
        ref = find_peaks(x, distance=dist, prominence=prom)[0]
        status, got = _find_peaks_nb(x, dist, prom, False, _NO_PEAKS)
        if status == _BEATS_TIES:  # the caller's fallback: scipy's distance selection
            ties += 1
            selected = find_peaks(x, distance=dist)[0].astype(np.int64)
            status, got = _find_peaks_nb(x, dist, prom, True, selected)
        assert_array_equal(got, ref)
    assert ties > 0  # the fallback was exercised


def test_order_statistic_kernels_equal_numpy() -> None:
    from adaptive.respiration import _median_nb, _percentile_nb

    rng = np.random.default_rng(1)
    for i in range(2000):
        v = rng.normal(size=int(rng.integers(1, 60)))
        if i % 3 == 0:
            v = np.round(v)  # repeated values
        assert _median_nb(v.copy()) == np.median(v)
        for q in (5.0, 50.0, 95.0):
            # the module's form of numpy's linear interpolation: equal to the last bit or one
            assert _percentile_nb(v.copy(), q) == pytest.approx(np.percentile(v, q), rel=1e-15, abs=1e-15)
    assert math.isnan(_median_nb(np.array([1.0, np.nan, 2.0])))
    assert math.isnan(_median_nb(np.zeros(0)))


def test_paired_zero_phase_filters_equal_the_single_kernel() -> None:
    # the PPG window's cardiac-band and baseline filters run interleaved in one kernel: each
    # output must be the single-filter kernel's, bit for bit, at every window length
    from adaptive.respiration import _filtfilt_pair, _Grid, _PpgAnalyzer

    an = _PpgAnalyzer(64.0, _Grid(4.0, 41.0), RespirationConfig())
    assert an._pair is not None
    rng = np.random.default_rng(5)
    for n in (1, 2, 15, 16, 17, 31, 500, 2048):
        x = np.cumsum(rng.normal(size=n))
        card, base = _filtfilt_pair(an._pair[0], an._pair[1], x, min(an._card._pad, n - 1))
        assert_array_equal(card, an._card.apply(x))
        assert_array_equal(base, an._base.apply(x))
    x = rng.normal(size=300)
    assert all(np.array_equal(a, b) for a, b in zip(an._filtered(x), (an._card.apply(x), an._base.apply(x))))
    an_no_riiv = _PpgAnalyzer(64.0, _Grid(4.0, 41.0), RespirationConfig(modulations=("am", "fm")))
    card, base = an_no_riiv._filtered(x)
    assert base is None and np.array_equal(card, an._card.apply(x))


def test_sosfilt_and_interp_kernels_equal_scipy_numpy() -> None:
    from scipy.signal import butter, sosfilt, sosfiltfilt

    from adaptive._kernels import _interp_nb
    from adaptive.filters import _sosfilt_rows
    from adaptive.respiration import _filtfilt

    rng = np.random.default_rng(2)
    for order in (1, 2, 4, 8):  # 2 sections take the register path
        sos = butter(order, [0.1, 0.3], "band", output="sos")
        x = rng.normal(size=(3, 500))
        zi = rng.normal(size=(sos.shape[0], 3, 2))
        y, zf = sosfilt(sos, x, zi=zi)
        got, z = x.copy(), np.ascontiguousarray(zi.transpose(1, 0, 2))
        _sosfilt_rows(sos, got, z)
        assert_array_equal(got, y)
        assert_array_equal(z, zf.transpose(1, 0, 2))
    from scipy.signal import sosfilt_zi

    sos = butter(4, 0.2, output="sos")
    x = rng.normal(size=300)
    pad = 3 * (2 * sos.shape[0] + 1)
    zi_unit = np.ascontiguousarray(sosfilt_zi(sos)[np.newaxis])
    # sosfiltfilt's odd padding and initial conditions: equal to rounding (its own loop order)
    assert_allclose(_filtfilt(sos, zi_unit, x, pad), sosfiltfilt(sos, x, padlen=pad), rtol=1e-12, atol=1e-12)
    for i in range(1000):
        m, n = int(rng.integers(1, 40)), int(rng.integers(1, 60))
        xp = np.sort(rng.normal(size=m))
        fp = rng.normal(size=m)
        if i % 5 == 0:
            fp[rng.integers(0, m)] = np.inf  # numpy's rules for non-finite neighbours
        xs = np.sort(np.concatenate([rng.normal(size=n) * 2, xp[: n % (m + 1)]]))  # incl. exact hits
        assert_array_equal(_interp_nb(xs, xp, fp), np.interp(xs, xp, fp))
