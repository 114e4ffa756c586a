"""Breath-following score: low for a patient who ignores the pacer, high for one who follows."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from adaptive.errors import ConfigError
from adaptive.following import BreathFollowingEstimator, FollowingConfig, breath_following
from adaptive.types import Estimate, Metric

RNG = np.random.default_rng(7)
T = np.arange(0.0, 300.0, 1.0)  # 1-Hz rate estimates, as the respiration estimator publishes
PACE = np.clip(15.0 - (T - 60.0) / 60.0, 6.0, 14.25)  # 60 s matching, then 1 brpm/min down
PACE[T < 60.0] = 14.25


def _lagged(pace: np.ndarray, tau_s: float = 10.0) -> np.ndarray:
    """Breathing that follows the pace with a first-order lag (patient plus estimator latency)."""
    out = np.empty_like(pace)
    r = 15.0
    for i, p in enumerate(pace):
        r += (p - r) * (1.0 - math.exp(-1.0 / tau_s))
        out[i] = r
    return out


FOLLOWER = _lagged(PACE) + RNG.normal(0.0, 0.15, T.size)  # brpm: typical rate-estimator noise
NON_FOLLOWER = 15.0 + RNG.normal(0.0, 0.15, T.size)


def _stream(
    rate: np.ndarray, pace: np.ndarray, quality: np.ndarray | None = None, **kw: object
) -> list[Estimate]:
    est = BreathFollowingEstimator(FollowingConfig(**kw))  # type: ignore[arg-type]
    q = np.full(T.size, 0.9) if quality is None else quality
    return [
        est.update(Estimate(Metric.RESP_RATE_BRPM, r, qq, t), p, t) for r, p, qq, t in zip(rate, pace, q, T)
    ]


def test_follower_scores_high_non_follower_low() -> None:
    fol = np.array([e.value for e in _stream(FOLLOWER, PACE)])
    non = np.array([e.value for e in _stream(NON_FOLLOWER, PACE)])
    late = T >= 200
    assert np.all(fol[late] > 0.9)
    # tolerance at 12-13 brpm is 0.12 x pace = 1.5 brpm; 30-s smoothing adds ~0.5 brpm of lag
    assert np.all(non[T >= 210] < 0.5)  # pace <= 12.5 brpm: 2.5 brpm below the patient's 15
    assert np.all(non[T >= 260] < 0.1)  # pace <= 11.7 brpm: over two tolerances below
    # slowing is at most 1 brpm/min: the 20-s lag range absorbs the follower's latency
    assert np.all(fol[T >= 40] > 0.8)


def test_near_the_natural_rate_the_rate_score_is_high_for_everybody() -> None:
    # Documented behaviour: during matching (pace 14.25 vs own 15) the rate score cannot
    # tell following from coincidence; the controller does not rely on it there.
    non = np.array([e.value for e in _stream(NON_FOLLOWER, PACE)])
    assert np.all(non[(T > 30) & (T < 60)] > 0.7)


def test_no_data_means_nan_and_zero_quality() -> None:
    est = BreathFollowingEstimator()
    out = est.update(None, 10.0, 0.0)
    assert math.isnan(out.value) and out.quality == 0.0 and out.metric is Metric.BREATH_FOLLOWING
    # an estimate made before the pacer appeared cannot be compared with any pace
    out = est.update(Estimate(Metric.RESP_RATE_BRPM, 10.0, 1.0, 0.0), 10.0, 0.5)
    assert math.isnan(out.value)


def test_quality_grows_with_data_and_scales_with_input_quality() -> None:
    out = _stream(FOLLOWER, PACE, quality=np.full(T.size, 0.8), min_estimates=10)
    qs = np.array([e.quality for e in out])
    assert_allclose(qs[1:11], 0.8 * np.arange(1, 11) / 10, rtol=1e-12)  # 1..10 usable estimates
    assert_allclose(qs[20:], 0.8, rtol=1e-12)
    # unusable (quality 0 or NaN) estimates lower the quality, not the score
    q = np.where(np.arange(T.size) % 2 == 0, 0.0, 1.0)
    out = _stream(FOLLOWER, PACE, quality=q)
    assert out[-1].quality == pytest.approx(0.5, abs=0.04)  # half the window unusable
    assert out[-1].value > 0.9


def test_stale_rate_empties_the_window() -> None:
    est = BreathFollowingEstimator()
    for t in range(40):
        est.update(Estimate(Metric.RESP_RATE_BRPM, 10.0, 1.0, float(t)), 10.0, float(t))
    old = Estimate(Metric.RESP_RATE_BRPM, 10.0, 1.0, 39.0)
    for t in range(40, 80):
        out = est.update(old, 10.0, float(t))  # the same estimate again: used once
    assert math.isnan(out.value) and out.quality == 0.0


def test_repeated_calls_between_estimates_do_not_change_the_result() -> None:
    ref = _stream(FOLLOWER, PACE)
    est = BreathFollowingEstimator()
    got = []
    for r, p, t in zip(FOLLOWER, PACE, T):
        e = Estimate(Metric.RESP_RATE_BRPM, r, 0.9, t)
        got.append(est.update(e, p, t))
        est.update(e, p, t + 0.25)  # more controller steps than estimates, same pace
        est.update(e, p, t + 0.5)
    assert_allclose([g.value for g in got], [r.value for r in ref], rtol=1e-12)


def _onsets(rate_brpm: float, t_end: float, phase0: float = 0.3) -> np.ndarray:
    return np.arange(phase0 * 60.0 / rate_brpm, t_end, 60.0 / rate_brpm)


def test_phase_term_discriminates_near_the_natural_rate() -> None:
    # pace 14.25 brpm, patient at 15 brpm: 0.75 cycle of drift per minute
    t = np.arange(0.0, 180.0, 1.0)
    pace = np.full(t.size, 14.25)
    rate = np.full(t.size, 15.0)
    non_s, _ = breath_following(rate, pace, t, breath_onsets=_onsets(15.0, 180.0))
    rate_only, _ = breath_following(rate, pace, t)
    # a follower inhales at each pacer cycle (pacer phase 0 at t=0), 0.4 s late, with jitter
    fol_on = np.arange(0.0, 180.0, 60.0 / 14.25) + 0.4 + RNG.normal(0.0, 0.2, 43)
    fol_s, _ = breath_following(np.full(t.size, 14.3), pace, t, breath_onsets=fol_on)
    assert np.all(rate_only[90:] > 0.8)  # rate alone: high for both
    assert np.all(non_s[90:] < 0.5)  # onsets spread over the cycle
    assert np.all(fol_s[90:] > 0.9)


@pytest.mark.parametrize("rate", [15.0, 6.0])
def test_unbiased_plv_is_near_zero_for_random_onsets(rate: float) -> None:
    t = np.arange(0.0, 600.0, 1.0)
    rng = np.random.default_rng(3)
    onsets = np.sort(rng.uniform(0.0, 600.0, int(600 * rate / 60)))
    est = BreathFollowingEstimator()
    phases = []
    for tt in t:
        e = Estimate(Metric.RESP_RATE_BRPM, rate, 1.0, tt)
        est.update(e, rate, tt, breath_onsets=onsets[onsets <= tt])
        if tt > 60:
            phases.append(est.phase_score)
    # bias-corrected: the mean over many windows stays low although each has only 6-15 onsets
    assert np.nanmean(phases) < 0.35


def test_streaming_equals_offline_with_onsets() -> None:
    q = RNG.uniform(0.3, 1.0, T.size)
    rate = FOLLOWER.copy()
    rate[50:55] = np.nan  # not computable for a few seconds
    onsets = _onsets(12.0, 300.0)
    score, quality = breath_following(rate, PACE, T, quality=q, breath_onsets=onsets)
    est = BreathFollowingEstimator()
    got = [
        est.update(Estimate(Metric.RESP_RATE_BRPM, r, qq, t), p, t, breath_onsets=onsets[onsets <= t])
        for r, p, qq, t in zip(rate, PACE, q, T)
    ]
    assert_allclose([g.value for g in got], score, rtol=1e-12)
    assert_allclose([g.quality for g in got], quality, rtol=1e-12)


ONSETS = np.sort(np.random.default_rng(11).uniform(0.0, 300.0, 60))


@functools.cache
def _offline_reference() -> tuple[np.ndarray, np.ndarray]:
    return breath_following(FOLLOWER, PACE, T, breath_onsets=ONSETS, quality=np.full(T.size, 0.9))


@settings(max_examples=40)
@given(st.lists(st.integers(0, T.size - 1), max_size=40), st.floats(0.01, 0.99))
def test_streaming_equals_offline_for_random_extra_steps(extra: list[int], frac: float) -> None:
    """Extra controller steps (same pace, same estimate) at random times change nothing."""
    score, quality = _offline_reference()
    est = BreathFollowingEstimator()
    extra_set = set(extra)
    got = []
    for i, (r, p, t) in enumerate(zip(FOLLOWER, PACE, T)):
        e = Estimate(Metric.RESP_RATE_BRPM, r, 0.9, t)
        got.append(est.update(e, p, t, breath_onsets=ONSETS[ONSETS <= t]))
        if i in extra_set:
            est.update(e, p, t + frac, breath_onsets=ONSETS[ONSETS <= t + frac])
    assert_allclose([g.value for g in got], score, rtol=1e-12)
    assert_allclose([g.quality for g in got], quality, rtol=1e-12)


@given(
    st.lists(
        st.tuples(
            st.floats(0.0, 5.0),  # dt
            st.one_of(st.none(), st.floats(0.0, 40.0), st.just(math.nan)),  # rate
            st.floats(0.0, 1.0),  # quality
            st.floats(3.0, 20.0),  # pace
        ),
        max_size=80,
    )
)
def test_score_and_quality_stay_in_range(steps: list[tuple[float, float | None, float, float]]) -> None:
    est = BreathFollowingEstimator()
    t = 0.0
    for dt, rate, q, pace in steps:
        t += dt
        e = None if rate is None else Estimate(Metric.RESP_RATE_BRPM, rate, q, t - 0.5)
        out = est.update(e, pace, t)
        assert math.isnan(out.value) or 0.0 <= out.value <= 1.0
        assert 0.0 <= out.quality <= 1.0
        assert out.time == t


def test_bad_calls_raise() -> None:
    est = BreathFollowingEstimator()
    with pytest.raises(ValueError, match="'pace_brpm'"):
        est.update(None, math.nan, 0.0)
    with pytest.raises(ValueError, match="'pace_brpm'"):
        est.update(None, 0.0, 0.0)
    with pytest.raises(ValueError, match="'now'"):
        est.update(None, 6.0, math.inf)
    est.update(None, 6.0, 10.0)
    with pytest.raises(ValueError, match="never goes back"):
        est.update(None, 6.0, 9.0)
    with pytest.raises(ValueError, match="'resp_estimate'.*hr_bpm"):
        est.update(Estimate(Metric.HR_BPM, 60.0, 1.0, 10.0), 6.0, 10.0)
    with pytest.raises(ValueError, match="strictly increasing"):
        breath_following([1.0, 2.0], [6.0, 6.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="one length"):
        breath_following([1.0, 2.0], [6.0], [1.0, 2.0])
    with pytest.raises(TypeError, match="FollowingConfig"):
        BreathFollowingEstimator({"window_s": 10})  # type: ignore[arg-type]


def test_reset_forgets_everything() -> None:
    est = BreathFollowingEstimator()
    for t in range(30):
        est.update(Estimate(Metric.RESP_RATE_BRPM, 10.0, 1.0, float(t)), 10.0, float(t))
    est.reset()
    assert est.latest is None
    out = est.update(None, 10.0, 0.0)  # time may start again after a reset
    assert math.isnan(out.value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window_s": 1.0}, r"'window_s': expected a number in \[5.0, 600.0\], got 1.0"),
        ({"rel_tolerance": 0.0}, r"'rel_tolerance'"),
        ({"min_onsets": 2}, r"'min_onsets': expected an integer in \[3, 1000\]"),
        ({"min_estimates": 2.5}, r"'min_estimates': expected an integer"),
        ({"phase_weight": 1.5}, r"'phase_weight'"),
    ],
)
def test_config_errors_name_the_key(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        FollowingConfig(**kwargs)  # type: ignore[arg-type]


def test_config_from_mapping_rejects_unknown_keys() -> None:
    with pytest.raises(ConfigError, match=r"'windw_s'.*expected one of window_s, lag_s"):
        FollowingConfig.from_mapping({"windw_s": 30})
    assert FollowingConfig.from_mapping({"window_s": 40}).window_s == 40.0
