"""Property tests of adaptive.arousal: direction of each input and the role of quality.

Ground truth is synthetic: a flat, clean baseline, then one probe estimate per input.  The
properties are the physiological contract of the index (issue #3): a higher heart rate (or a
lower RMSSD) relative to the baseline raises arousal, and less trustworthy evidence can lower the
output quality and pull the value towards the baseline, never the reverse.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptive.arousal import ArousalConfig, ArousalEstimator
from adaptive.types import Estimate, Metric

_BASE_S = 10  # baseline length in estimates (1 per second)
_CFG = ArousalConfig.ppg_only(baseline_s=float(_BASE_S), min_evidence_s=0.0)


def _after_baseline(hr_base: float, rmssd_base: float, probe: list[Estimate], motion: float | None = None) -> Estimate:
    """Arousal at the probe time after a flat, clean baseline."""
    est = ArousalEstimator(_CFG)
    base = []
    for k in range(_BASE_S + 1):
        base += [Estimate(Metric.RMSSD_MS, rmssd_base, 1.0, float(k)), Estimate(Metric.HR_BPM, hr_base, 1.0, float(k))]
    est.update(base)
    extra = [] if motion is None else [Estimate(Metric.QUALITY_ACCEL, motion, 1.0, float(_BASE_S + 1))]
    return est.update(extra + probe)[-1]


def _probe(hr: float, rmssd: float, q_hr: float = 1.0, q_rmssd: float = 1.0) -> list[Estimate]:
    t = float(_BASE_S + 1)
    return [Estimate(Metric.RMSSD_MS, rmssd, q_rmssd, t), Estimate(Metric.HR_BPM, hr, q_hr, t)]


hr_base = st.floats(50.0, 90.0)
rmssd_base = st.floats(15.0, 120.0)
quality = st.floats(0.0, 1.0)


@settings(max_examples=40, deadline=None)
@given(hr_base, rmssd_base, st.floats(-30.0, 60.0), st.floats(1.0, 30.0))
def test_higher_hr_than_baseline_raises_arousal(base: float, rm: float, d_hr: float, step: float) -> None:
    # RMSSD held at its baseline: only the heart rate moves, by at least 1 bpm between probes
    low = _after_baseline(base, rm, _probe(base + d_hr, rm))
    high = _after_baseline(base, rm, _probe(base + d_hr + step, rm))
    assert high.value > low.value
    assert (high.value > 0) == (d_hr + step > 0)  # above baseline = positive arousal
    assert -1.0 <= low.value <= 1.0 and -1.0 <= high.value <= 1.0


@settings(max_examples=40, deadline=None)
@given(hr_base, rmssd_base, st.floats(0.2, 0.9))
def test_lower_rmssd_than_baseline_raises_arousal(base: float, rm: float, ratio: float) -> None:
    calm = _after_baseline(base, rm, _probe(base, rm))
    vagal_withdrawal = _after_baseline(base, rm, _probe(base, rm * ratio))
    assert calm.value == pytest.approx(0.0, abs=1e-12)  # at baseline: exactly 0
    assert vagal_withdrawal.value > 0.0


@settings(max_examples=60, deadline=None)
@given(hr_base, rmssd_base, st.floats(30.0, 180.0), st.floats(5.0, 250.0), quality, quality, quality, st.booleans())
def test_lower_input_quality_never_raises_quality(
    base: float, rm: float, hr: float, rmssd: float, q_hr: float, q_rm: float, drop: float, which: bool
) -> None:
    before = _after_baseline(base, rm, _probe(hr, rmssd, q_hr, q_rm))
    lowered = (q_hr * drop, q_rm) if which else (q_hr, q_rm * drop)
    after = _after_baseline(base, rm, _probe(hr, rmssd, *lowered))
    assert after.quality <= before.quality + 1e-12
    assert 0.0 <= after.quality <= 1.0


@settings(max_examples=40, deadline=None)
@given(hr_base, st.floats(30.0, 180.0), quality, quality)
def test_single_input_low_quality_shrinks_towards_baseline(base: float, hr: float, q: float, drop: float) -> None:
    # with one input the value can only move towards the baseline (0) when its evidence weakens
    cfg = ArousalConfig(weights={Metric.HR_BPM: 1.0}, baseline_s=float(_BASE_S), min_evidence_s=0.0)
    outs = []
    for qq in (q, q * drop):
        est = ArousalEstimator(cfg)
        est.update([Estimate(Metric.HR_BPM, base, 1.0, float(k)) for k in range(_BASE_S + 1)])
        outs.append(est.update([Estimate(Metric.HR_BPM, hr, qq, float(_BASE_S + 1))])[-1])
    assert abs(outs[1].value) <= abs(outs[0].value) + 1e-12
    assert math.copysign(1.0, outs[1].value) == math.copysign(1.0, outs[0].value) or outs[1].value == 0.0
    assert outs[1].quality <= outs[0].quality + 1e-12


@settings(max_examples=30, deadline=None)
@given(hr_base, rmssd_base, st.floats(30.0, 180.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_motion_lowers_quality_never_value_direction(base: float, rm: float, hr: float, m1: float, m2: float) -> None:
    lo, hi = sorted((m1, m2))
    still = _after_baseline(base, rm, _probe(hr, rm), motion=hi)
    moving = _after_baseline(base, rm, _probe(hr, rm), motion=lo)
    assert moving.quality <= still.quality + 1e-12
    assert moving.value == still.value  # motion is a quality gate only: it does not bend the value


def test_no_evidence_reads_as_baseline_with_zero_quality() -> None:
    out = _after_baseline(70.0, 40.0, _probe(110.0, 10.0, 0.0, 0.0))
    assert out.value == 0.0 and out.quality == 0.0  # no trusted input: baseline level, untrusted
