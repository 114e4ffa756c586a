"""Tests of adaptive.arousal: baseline-relative arousal from estimates and from PPG alone."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from adaptive.arousal import ArousalConfig, ArousalEstimator, ArousalSeries, PpgArousalEstimator, arousal_from_ppg
from adaptive.ppg import reference_pulse
from adaptive.types import Chunk, Estimate, Metric

SFREQ = 64.0


def _est(metric: Metric, values: list[float] | np.ndarray, t0: float = 0.0, q: float = 1.0) -> list[Estimate]:
    return [Estimate(metric, float(v), q, t0 + k) for k, v in enumerate(values)]


def _interleave(*streams: list[Estimate]) -> list[Estimate]:
    return sorted((e for s in streams for e in s), key=lambda e: e.time)


def _ppg_phases(phases: list[tuple[float, float, float, float]], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """PPG whose phases are (duration_s, hr_bpm, rsa_bpm at 0.1 Hz, jitter_s) in a row."""
    rng = np.random.default_rng(seed)
    onsets, t_now = [], 0.3
    for dur, hr, rsa, jitter in phases:
        end = t_now + dur
        while t_now < end:
            inst = hr + 0.5 * rsa * math.sin(2 * math.pi * 0.1 * t_now)
            onsets.append(t_now)
            t_now += 60.0 / inst + jitter * rng.standard_normal()
    total = sum(p[0] for p in phases)
    t = np.arange(int(total * SFREQ)) / SFREQ
    x = np.zeros_like(t)
    for o in onsets:
        m = (t >= o) & (t < o + 1.5)
        x[m] += reference_pulse(t[m] - o)
    return 1000.0 * x + 5.0 * rng.standard_normal(t.size), t


# -- estimate-driven index ----------------------------------------------------------------------------------
def test_arousal_rises_with_hr_up_and_rmssd_down() -> None:
    est = ArousalEstimator(ArousalConfig.ppg_only(baseline_s=60.0, min_evidence_s=10.0))
    rng = np.random.default_rng(0)
    base = _interleave(_est(Metric.HR_BPM, 65 + rng.normal(0, 1, 90)), _est(Metric.RMSSD_MS, 45 + rng.normal(0, 3, 90)))
    out = est.update(base)
    assert all(math.isnan(e.value) and e.quality == 0.0 for e in out if e.time < 60.0)  # baseline being taken
    assert est.baseline is not None and est.baseline[Metric.HR_BPM][0] == pytest.approx(65.0, abs=1.0)
    calm_again = [e.value for e in out if e.time > 61.0]
    assert np.all(np.abs(calm_again) < 0.3)  # back at baseline: near 0
    stress = est.update(_interleave(_est(Metric.HR_BPM, np.full(30, 80.0), 90.0), _est(Metric.RMSSD_MS, np.full(30, 20.0), 90.0)))
    relax = est.update(_interleave(_est(Metric.HR_BPM, np.full(30, 58.0), 120.0), _est(Metric.RMSSD_MS, np.full(30, 80.0), 120.0)))
    assert min(e.value for e in stress) > 0.8  # +15 bpm = 3 spreads and RMSSD halved
    assert max(e.value for e in relax) < -0.4
    assert all(-1.0 <= e.value <= 1.0 and e.quality == pytest.approx(1.0) for e in stress + relax)
    hr_only = est.update(_est(Metric.HR_BPM, np.full(5, 80.0), 200.0))
    # HR alone moves the index less (RMSSD's weight is missing) and lowers the quality
    assert 0.0 < hr_only[-1].value < stress[-1].value
    assert hr_only[-1].quality == pytest.approx(0.7)


def test_each_input_direction() -> None:
    cfg = ArousalConfig(baseline_s=20.0, min_evidence_s=0.0)
    base = {Metric.HR_BPM: 70.0, Metric.RMSSD_MS: 40.0, Metric.RESP_RATE_BRPM: 12.0, Metric.EEG_RELAXATION: 0.5}
    up = {Metric.HR_BPM: 80.0, Metric.RMSSD_MS: 20.0, Metric.RESP_RATE_BRPM: 18.0, Metric.EEG_RELAXATION: 0.2}
    for metric in base:
        est = ArousalEstimator(cfg)
        streams = [_est(m, np.full(25, v)) for m, v in base.items()]
        est.update(_interleave(*streams))
        changed = [_est(m, np.full(3, up[m] if m == metric else base[m]), 25.0) for m in base]
        out = est.update(_interleave(*changed))
        assert out[-1].value > 0.1, metric  # each input, moved in its aroused direction, raises it
        assert out[-1].quality == pytest.approx(1.0)


def test_quality_combines_inputs_motion_and_staleness() -> None:
    est = ArousalEstimator(ArousalConfig.ppg_only(baseline_s=10.0, min_evidence_s=0.0, max_age_s=5.0))
    est.update(_interleave(_est(Metric.HR_BPM, np.full(12, 60.0)), _est(Metric.RMSSD_MS, np.full(12, 50.0))))
    low = est.update(_interleave(_est(Metric.HR_BPM, [70.0], 12.0, q=0.5), _est(Metric.RMSSD_MS, [50.0], 12.0, q=0.2)))
    assert low[-1].quality == pytest.approx(0.7 * 0.5 + 0.3 * 0.2)
    # low-quality evidence is shrunk towards the baseline: half the move of a clean estimate
    clean = est.update(_est(Metric.HR_BPM, [70.0], 13.0))
    assert low[-1].value < clean[-1].value
    moving = est.update([Estimate(Metric.QUALITY_ACCEL, 0.25, 1.0, 14.0), *_est(Metric.HR_BPM, [70.0], 14.0)])
    assert moving[-1].quality == pytest.approx(0.25 * (0.7 + 0.3 * 0.2))  # RMSSD (2 s old) still counts
    stale = est.update(_est(Metric.HR_BPM, [70.0], 30.0))
    assert stale[-1].quality == pytest.approx(0.7)  # RMSSD and motion older than max_age_s are dropped


def test_bad_values_lower_quality_never_raise() -> None:
    est = ArousalEstimator(ArousalConfig.ppg_only(baseline_s=5.0, min_evidence_s=0.0))
    est.update(_est(Metric.HR_BPM, [60.0, math.nan, 62.0, 61.0, 60.0, 61.0, 60.0]))
    out = est.update([Estimate(Metric.HR_BPM, math.nan, 0.0, 7.0), Estimate(Metric.RMSSD_MS, -5.0, 1.0, 7.0),
                      Estimate(Metric.HR_BPM, math.inf, 1.0, 8.0)])
    assert all(e.quality == 0.0 and e.value == 0.0 for e in out)
    ignored = est.update([Estimate(Metric.EEG_ALPHA_REL, 0.3, 1.0, 9.0)])
    assert ignored == []


def test_no_baseline_evidence_extends_baseline() -> None:
    cfg = ArousalConfig.ppg_only(baseline_s=30.0, max_baseline_s=60.0, min_evidence_s=20.0)
    est = ArousalEstimator(cfg)
    out = est.update(_est(Metric.HR_BPM, np.full(45, 60.0), q=0.1))  # 0.1 x 44 s = 4.4 s evidence
    assert all(math.isnan(e.value) for e in out)
    out = est.update(_est(Metric.HR_BPM, np.full(20, 60.0), 45.0, q=0.1))  # max_baseline_s reached
    assert math.isnan(out[0].value) and not math.isnan(out[-1].value)


def test_equal_time_inputs_order_does_not_matter() -> None:
    hr = _est(Metric.HR_BPM, 60 + np.arange(40.0) * 0.5)
    rm = _est(Metric.RMSSD_MS, 50 - np.arange(40.0) * 0.5)
    cfg = ArousalConfig.ppg_only(baseline_s=10.0, min_evidence_s=0.0)
    a = ArousalEstimator(cfg).update(hr + rm)  # all HR first
    b = ArousalEstimator(cfg).update(_interleave(rm, hr))
    c_est = ArousalEstimator(cfg)
    c = [e for k in range(40) for e in c_est.update([rm[k], hr[k]])]
    for other in (b, c):
        assert_allclose([e.value for e in a], [e.value for e in other], rtol=1e-12, equal_nan=True)


def test_wrong_calls_raise() -> None:
    with pytest.raises(TypeError):
        ArousalEstimator().update([1.0])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="'weights'"):
        ArousalConfig(weights={Metric.EEG_ALPHA_REL: 1.0})
    with pytest.raises(ValueError, match="'weights"):
        ArousalConfig(weights={Metric.HR_BPM: -1.0})
    with pytest.raises(ValueError, match="'driver'"):
        ArousalConfig(weights={Metric.RMSSD_MS: 1.0})
    with pytest.raises(ValueError, match="'max_baseline_s'"):
        ArousalConfig(baseline_s=100.0, max_baseline_s=50.0)
    with pytest.raises(ValueError, match="'kind'"):
        PpgArousalEstimator(SFREQ).update(Chunk("eeg", np.zeros((1, 10)), np.arange(10.0), SFREQ, ("TP9",)))
    with pytest.raises(ValueError, match="'ppg'"):
        arousal_from_ppg(np.zeros((2, 100)), SFREQ)
    with pytest.raises(ValueError, match="'step_s'"):
        arousal_from_ppg(np.zeros(100), SFREQ, step_s=0.0)


# -- PPG path ---------------------------------------------------------------------------------------------------
_CALM = (150.0, 62.0, 10.0, 0.03)  # duration, HR, RSA swing at 0.1 Hz, beat jitter
_STRESS = (120.0, 84.0, 2.0, 0.006)
_X, _T = _ppg_phases([_CALM, _STRESS])


def test_arousal_from_ppg_rises_under_stress() -> None:
    res = arousal_from_ppg(_X, SFREQ)
    assert isinstance(res, ArousalSeries)
    assert dataclasses.is_dataclass(res)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.value = res.value  # type: ignore[misc]
    assert_allclose(np.diff(res.times_s), 5.0)
    assert res.times_s[0] == pytest.approx(5.0 - 1 / SFREQ)
    assert np.all((res.quality >= 0) & (res.quality <= 1))
    calm = (res.times_s > 100) & (res.times_s < 150)
    stress = res.times_s > 215  # the 60 s window is inside the stress phase
    assert np.all(np.isnan(res.value[res.times_s < 89]))  # baseline (90 s) being taken
    assert np.all(np.abs(res.value[calm]) < 0.3)
    assert np.all(res.value[stress] > 0.6)  # +22 bpm and far lower RMSSD
    assert np.all(res.quality[calm | stress] > 0.7)


def _stream(cuts: list[int]) -> list[Estimate]:
    edges = [0, *sorted(set(c for c in cuts if 0 < c < _X.size)), _X.size]
    est = PpgArousalEstimator(SFREQ)
    return [e for a, b in zip(edges[:-1], edges[1:])
            for e in est.update(Chunk("ppg", _X[np.newaxis, a:b], _T[a:b], SFREQ, ("ppg",)))]


def _assert_matches_offline(out: list[Estimate]) -> None:
    res = arousal_from_ppg(_X, SFREQ)
    assert all(e.metric == Metric.AROUSAL for e in out)
    assert_allclose([e.time for e in out], res.times_s, rtol=1e-12)
    assert_allclose([e.value for e in out], res.value, rtol=1e-12, equal_nan=True)
    assert_allclose([e.quality for e in out], res.quality, rtol=1e-12)


@pytest.mark.parametrize("chunk", [16, 640, 100000])
def test_streaming_equals_offline(chunk: int) -> None:
    _assert_matches_offline(_stream(list(range(chunk, _X.size, chunk))))


@settings(max_examples=5, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=_X.size - 1), max_size=25))
def test_streaming_equals_offline_random_splits(cuts: list[int]) -> None:
    _assert_matches_offline(_stream(cuts))


def test_nan_and_flat_ppg_lower_quality() -> None:
    bad = _X.copy()
    bad[int(160 * SFREQ) : int(200 * SFREQ)] = np.nan
    bad[int(200 * SFREQ) : int(215 * SFREQ)] = 0.0
    good, poor = arousal_from_ppg(_X, SFREQ), arousal_from_ppg(bad, SFREQ)
    m = (good.times_s > 200) & (good.times_s < 260)
    assert np.all(poor.quality[m] < good.quality[m] - 0.2)
    assert np.all(np.isfinite(poor.value[good.times_s > 95]))


@pytest.mark.shared_data
def test_stress_predict_subject_runs(shared_data) -> None:  # type: ignore[no-untyped-def]
    raw = np.loadtxt(shared_data / "stress_predict_e4" / "S03" / "BVP.csv", delimiter=",")
    res = arousal_from_ppg(raw[2 : 2 + int(15 * 60 * 64)], float(raw[1]))
    assert res.value.size == 180
    assert np.all((res.quality >= 0) & (res.quality <= 1))
    assert np.nanmax(np.abs(res.value)) <= 1.0
