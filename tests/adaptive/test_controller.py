"""Pacing controller: scenarios on synthetic estimate streams, safety properties, determinism."""

from __future__ import annotations

import dataclasses
import logging
import math
import tomllib
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptive.controller import (
    PacingConfig,
    PacingController,
    PacingDecision,
    PacingState,
)
from adaptive.errors import ConfigError
from adaptive.following import FollowingConfig
from adaptive.types import Estimate, Metric

S = PacingState
Latest = dict[Metric, Estimate]
Modify = Callable[[float, Latest], Latest]


class Patient:
    """Synthetic estimate stream of a patient who does (or does not) follow the pacer.

    The breathing rate approaches the pace with a first-order lag (tau 10 s); arousal,
    EEG relaxation, HR and HR oscillation improve with the fraction of the way from the
    natural rate to 6 brpm, as they do with slow breathing.  Estimates are published once
    per second with quality 0.9, like the real estimators.
    """

    def __init__(
        self, follows: bool = True, natural: float = 15.0, seed: int = 0, osc_peak: float | None = None
    ) -> None:
        self.follows, self.natural, self.osc_peak = follows, natural, osc_peak
        self.rng = np.random.default_rng(seed)
        self.r = natural

    def advance(self, dt: float, pace: float) -> None:
        goal = pace if (self.follows and math.isfinite(pace)) else self.natural
        self.r += (goal - self.r) * (1.0 - math.exp(-dt / 10.0))

    def estimates(self, t: float) -> Latest:
        x = min(max((self.natural - self.r) / (self.natural - 6.0), 0.0), 1.0) if self.natural > 6 else 1.0
        n = self.rng.normal(size=4)
        osc = 3.0 + 9.0 * x if self.osc_peak is None else 12.0 - 8.0 * (self.r - self.osc_peak) ** 2
        values = {
            Metric.RESP_RATE_BRPM: self.r + 0.15 * n[0],  # brpm noise of a rate estimator
            Metric.HR_BPM: 72.0 - 4.0 * x + 0.5 * n[1],
            Metric.RMSSD_MS: 30.0 + 20.0 * x,
            Metric.HRV_COHERENCE: 0.2 + 0.6 * x,
            Metric.HR_OSC_BPM: osc + 0.3 * n[3],
            Metric.EEG_RELAXATION: 0.4 + 0.3 * x,
            Metric.AROUSAL: 0.2 - 1.0 * x + 0.05 * n[2],  # -1..1 index, as adaptive.arousal
            Metric.QUALITY_PPG: 0.9,
            Metric.QUALITY_EEG: 0.9,
            Metric.QUALITY_ACCEL: 0.9,
        }
        return {m: Estimate(m, float(v), 0.9, t) for m, v in values.items()}


def run(
    ctl: PacingController,
    patient: Patient,
    t_end: float,
    *,
    dt: float = 0.5,
    modify: Modify | None = None,
    t_start: float = 0.0,
    stop_at: float | None = None,
) -> list[PacingDecision]:
    """Step the controller every ``dt`` s of data time; new estimates arrive every second."""
    latest: Latest = {}
    out = []
    pace = math.nan
    for k in range(int(round((t_end - t_start) / dt)) + 1):
        t = t_start + k * dt
        patient.advance(dt, pace)
        if abs(t - round(t)) < 1e-9:
            latest = patient.estimates(t)
            if modify is not None:
                latest = modify(t, latest)
        if stop_at is not None and t >= stop_at and ctl.state is not S.STOPPED:
            ctl.stop("patient asked to end", by="patient")
        d = ctl.step(latest, t)
        pace = d.pace_brpm
        out.append(d)
    return out


def states(decisions: list[PacingDecision]) -> list[PacingState]:
    """Sequence of states without repeats."""
    seq: list[PacingState] = []
    for d in decisions:
        if not seq or seq[-1] is not d.state:
            seq.append(d.state)
    return seq


def first(decisions: list[PacingDecision], state: PacingState) -> PacingDecision:
    return next(d for d in decisions if d.state is state)


def events(decisions: list[PacingDecision]) -> list[str]:
    return [e for d in decisions for e in d.events]


def set_value(
    metric: Metric, value: float | None = None, quality: float | None = None
) -> Callable[[Latest], Latest]:
    def f(latest: Latest) -> Latest:
        e = latest[metric]
        out = dict(latest)
        out[metric] = dataclasses.replace(
            e, value=e.value if value is None else value, quality=e.quality if quality is None else quality
        )
        return out

    return f


def during(t0: float, t1: float, change: Callable[[Latest], Latest]) -> Modify:
    return lambda t, latest: change(latest) if t0 <= t < t1 else latest


# ------------------------------------------------------------------------- scenarios
@pytest.fixture(scope="module")
def follower_run() -> tuple[PacingController, list[PacingDecision]]:
    ctl = PacingController()
    return ctl, run(ctl, Patient(follows=True), 900.0)


Run = tuple[PacingController, list[PacingDecision]]


def test_follower_goes_all_the_way_to_ready(follower_run: Run) -> None:
    ctl, ds = follower_run
    assert states(ds) == [S.CALIBRATING, S.MATCHING, S.SLOWING, S.RESONANCE, S.CALM, S.READY_FOR_DOSING]
    cal = ctl.calibration
    assert cal is not None
    assert abs(cal.resp_rate_brpm - 15.0) < 0.1  # brpm: median of 91 estimates with 0.15 brpm noise
    assert cal.n_resp_estimates == 91 and cal.duration_s == pytest.approx(90.0)
    assert cal.hr_bpm == pytest.approx(72.0, abs=0.5) and cal.eeg_relaxation == pytest.approx(0.4)
    assert first(ds, S.MATCHING).time == pytest.approx(90.0)  # default calibration 90 s
    assert first(ds, S.MATCHING).pace_brpm == pytest.approx(0.95 * cal.resp_rate_brpm)
    slowing_at = 90.0 + ctl.config.matching_s  # after the matching time (default 30 s)
    assert first(ds, S.SLOWING).time == pytest.approx(slowing_at)
    # 14.25 -> 6 brpm at 1 brpm/min takes 495 s when the patient follows throughout
    descent_s = 60.0 * (0.95 * cal.resp_rate_brpm - 6.0)
    assert first(ds, S.RESONANCE).time == pytest.approx(slowing_at + descent_s, abs=1.0)
    assert first(ds, S.RESONANCE).pace_brpm == pytest.approx(6.0)
    ready = first(ds, S.READY_FOR_DOSING)
    assert ready.time - first(ds, S.CALM).time == pytest.approx(60.0)  # default calm_dwell_s
    assert "ready_for_dosing" in ready.events and ready.dose_ready
    assert events(ds).count("ready_for_dosing") == 1
    assert all(d.dose_ready == (d.state is S.READY_FOR_DOSING) for d in ds)
    assert not any("pace:hold" in e for e in events(ds))  # a follower is never held
    summary = ctl.summary()
    assert summary.time_to_ready_s == pytest.approx(ready.time)
    assert summary.min_pace_brpm == pytest.approx(6.0) and summary.n_alerts == 0
    assert summary.signal_lost_s == 0.0 and summary.final_state is S.READY_FOR_DOSING


def test_pacer_is_hidden_only_while_calibrating(follower_run: Run) -> None:
    _, ds = follower_run
    for d in ds:
        assert d.pacer_visible == (d.state is not S.CALIBRATING)
        assert math.isnan(d.pace_brpm) == (d.state is S.CALIBRATING)
        assert d.inhale_fraction == 0.4 and d.reason


def test_every_transition_has_a_reason_and_an_event(follower_run: Run) -> None:
    _, ds = follower_run
    for prev, d in zip(ds, ds[1:]):
        marks = [e for e in d.events if e.startswith("state:")]
        if d.state is not prev.state:
            assert marks == [f"state:{d.state} reason:{d.reason}"] and d.reason
        else:
            assert marks == []


def test_transitions_are_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="adaptive.controller"):
        run(PacingController(PacingConfig(calibration_s=20)), Patient(), 40.0, dt=1.0)
    msgs = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("calibrating -> matching" in m and "own rate" in m for m in msgs)


def test_non_follower_is_held_and_never_ready() -> None:
    ctl = PacingController()
    ds = run(ctl, Patient(follows=False), 1500.0, dt=1.0)
    assert set(states(ds)) == {S.CALIBRATING, S.MATCHING, S.SLOWING}
    assert not any(d.dose_ready for d in ds)
    paces = np.array([d.pace_brpm for d in ds if d.pacer_visible])
    # The pacer never leads the 15 brpm the patient keeps by more than max_lead_brpm (1.5),
    # give or take the 0.15 brpm noise of the rate estimates (3 sd: 0.45)
    assert paces.min() >= 15.0 - ctl.config.max_lead_brpm - 0.45
    assert paces.min() < 14.0  # ... but the controller did try to slow down
    evs = events(ds)
    assert any(e.startswith("pace:hold") for e in evs)


def test_patient_who_stops_following_at_the_target_is_stepped_back() -> None:
    patient = Patient(follows=True)
    keep_aroused = during(0.0, 1e9, set_value(Metric.AROUSAL, 0.3))  # never calm: stays in resonance
    ctl = PacingController()
    ds = run(ctl, patient, 700.0, modify=keep_aroused)
    assert ds[-1].state is S.RESONANCE
    patient.follows = False  # back to 15 brpm from now on
    ds2 = run(ctl, patient, 900.0, modify=keep_aroused, t_start=700.5)
    assert S.SLOWING in states(ds2)
    assert any(e.startswith("pace:step_back") for e in events(ds2))
    assert ds2[-1].pace_brpm > 6.5 and not any(d.dose_ready for d in ds2)


def test_low_quality_means_signal_lost_and_pace_holds() -> None:
    ctl = PacingController()
    bad_resp = during(300.0, 330.0, set_value(Metric.RESP_RATE_BRPM, quality=0.2))
    ds = run(ctl, Patient(), 900.0, modify=bad_resp)
    lost = [d for d in ds if d.state is S.SIGNAL_LOST]
    grace = ctl.config.signal_grace_s
    assert lost[0].time == 300.0 + grace and "resp_rate_brpm quality 0.20 < 0.50" in lost[0].reason
    graced = [d for d in ds if 300.0 <= d.time < 300.0 + grace]
    assert all(d.state is S.SLOWING and "holding: signal poor" in d.reason for d in graced)
    held = [d for d in ds if 300.0 <= d.time < 335.0]
    assert len({d.pace_brpm for d in held}) == 1  # the pace holds from the first bad estimate
    assert not any(d.dose_ready for d in held)
    back = next(d for d in ds if d.time > 300 + grace and d.state is not S.SIGNAL_LOST)
    assert back.state is S.SLOWING and back.time == pytest.approx(335.0)  # 5 s of usable signals
    assert "signals back" in back.reason
    assert ds[-1].state is S.READY_FOR_DOSING  # and the session goes on
    assert ctl.summary().signal_lost_s == pytest.approx(35.0 - grace)


def test_stale_estimates_mean_signal_lost_never_ready() -> None:
    frozen: Latest = {}

    def freeze(t: float, latest: Latest) -> Latest:  # the headband drops out at 660-720 s
        if t < 660.0:
            frozen.update(latest)
            return latest
        return dict(frozen) if t < 720.0 else latest

    ctl = PacingController()
    ds = run(ctl, Patient(), 900.0, modify=freeze)
    calm_at = first(ds, S.CALM).time
    assert calm_at < 660.0
    lost = [d for d in ds if d.state is S.SIGNAL_LOST]
    assert lost[0].time == pytest.approx(659.0 + 5.0 + 0.5)  # older than max_age_s = 5 s
    assert "stale" in lost[0].reason
    assert not any(d.dose_ready for d in ds if d.time < 720.0)
    # calm must be re-earned after the gap: back to resonance, then calm, then ready
    after = states([d for d in ds if d.time >= lost[0].time])
    assert after[:2] == [S.SIGNAL_LOST, S.RESONANCE]
    assert S.READY_FOR_DOSING in after
    ready = first(ds, S.READY_FOR_DOSING)
    assert ready.time >= 720.0 + 60.0


def test_poor_eeg_quality_blocks_readiness_immediately() -> None:
    ctl = PacingController()
    ds = run(ctl, Patient(), 900.0, modify=during(740.0, 800.0, set_value(Metric.QUALITY_EEG, value=0.3)))
    ready_at = first(ds, S.READY_FOR_DOSING).time
    assert ready_at < 740.0
    for d in ds:
        if 740.0 <= d.time < 800.0:
            assert not d.dose_ready and d.state is S.RESONANCE
    drop = next(d for d in ds if d.time >= 740.0)
    assert drop.state is S.RESONANCE and "quality_eeg quality 0.30" in drop.reason


def test_ready_is_announced_once_and_lapses_with_hysteresis() -> None:
    def arousal(t: float, latest: Latest) -> Latest:
        if 730.0 <= t < 735.0 or 760.0 <= t < 780.0:  # 5 s blip (tolerated), then 20 s (withdrawn)
            return set_value(Metric.AROUSAL, -0.3)(latest)  # not calm (> -0.5), no surge (< +0.8)
        return latest

    ctl = PacingController()
    ds = run(ctl, Patient(), 1000.0, modify=arousal)
    ready_at = first(ds, S.READY_FOR_DOSING).time
    assert ready_at < 730.0
    assert all(d.dose_ready for d in ds if ready_at <= d.time < 770.0)  # blip shorter than ready_lapse_s
    withdrawn = next(d for d in ds if d.time > ready_at and d.state is not S.READY_FOR_DOSING)
    assert withdrawn.time == pytest.approx(770.0) and withdrawn.state is S.RESONANCE
    assert "arousal" in withdrawn.reason
    seq = states([d for d in ds if d.time >= ready_at])
    assert seq == [S.READY_FOR_DOSING, S.RESONANCE, S.CALM, S.READY_FOR_DOSING]
    evs = events(ds)
    assert evs.count("ready_for_dosing") == 1  # the announcement is not repeated
    assert sum(e.startswith("state:ready_for_dosing") for e in evs) == 2
    assert ctl.dose_announced


def test_high_heart_rate_raises_an_alert_and_holds() -> None:
    ctl = PacingController()
    ds = run(ctl, Patient(), 900.0, modify=during(300.0, 320.0, set_value(Metric.HR_BPM, 140.0)))
    alert = [d for d in ds if d.state is S.ALERT]
    assert alert[0].time == 300.0
    assert "alert:hr_high 140 bpm" in alert[0].events
    assert events(ds).count("alert:hr_high 140 bpm") == 1
    assert len({d.pace_brpm for d in alert}) == 1 and not any(d.dose_ready for d in alert)
    back = next(d for d in ds if d.time > 300 and d.state is not S.ALERT)
    assert back.time == pytest.approx(350.0) and back.state is S.SLOWING  # 30 s back in range
    assert ctl.summary().n_alerts == 1 and ctl.summary().alert_s == pytest.approx(50.0)
    assert ds[-1].state is S.READY_FOR_DOSING


def test_alert_overrides_readiness() -> None:
    ctl = PacingController()
    ds = run(ctl, Patient(), 800.0, modify=during(750.0, 760.0, set_value(Metric.HR_BPM, 40.0)))
    assert first(ds, S.READY_FOR_DOSING).time < 750.0
    d = next(d for d in ds if d.time == 750.0)
    assert d.state is S.ALERT and not d.dose_ready and "alert:hr_low 40 bpm" in d.events
    # after the alert, calm has to be re-earned
    assert states([d for d in ds if d.time >= 750.0])[:2] == [S.ALERT, S.RESONANCE]


def test_arousal_surge_raises_an_alert() -> None:
    ctl = PacingController()
    ds = run(ctl, Patient(), 400.0, modify=during(300.0, 310.0, set_value(Metric.AROUSAL, 0.95)))
    d = next(d for d in ds if d.time == 300.0)
    assert d.state is S.ALERT and any(e.startswith("alert:arousal_surge +") for e in d.events)


def test_alert_during_calibration_pauses_it() -> None:
    ctl = PacingController()
    ds = run(ctl, Patient(), 200.0, modify=during(30.0, 40.0, set_value(Metric.HR_BPM, 135.0)))
    assert states(ds)[:4] == [S.CALIBRATING, S.ALERT, S.CALIBRATING, S.MATCHING]
    # calibration counts usable data outside the alert: 30 s + 60 s after returning at 70 s
    assert first(ds, S.MATCHING).time == pytest.approx(70.0 + 60.0)


def test_stop_is_terminal() -> None:
    ctl = PacingController()
    tachycardia = during(500.0, 510.0, set_value(Metric.HR_BPM, 150.0))
    ds = run(ctl, Patient(), 600.0, stop_at=400.0, modify=tachycardia)
    stopped = [d for d in ds if d.time >= 400.0]
    assert all(d.state is S.STOPPED and not d.dose_ready for d in stopped)
    assert "stop:patient reason:patient asked to end" in stopped[0].events
    assert stopped[0].reason == "stopped by patient: patient asked to end"
    assert len({d.pace_brpm for d in stopped}) == 1
    assert ctl.summary().stopped_by == "patient" and ctl.summary().final_state is S.STOPPED
    ctl.stop("again", by="clinician")  # ignored: already stopped
    assert ctl.step({}, 700.0).state is S.STOPPED


def test_stop_rejects_bad_arguments() -> None:
    ctl = PacingController()
    with pytest.raises(ValueError, match=r"'by': expected one of 'clinician', 'patient', got 'nurse'"):
        ctl.stop("x", by="nurse")
    with pytest.raises(ValueError, match="'reason'"):
        ctl.stop("  ")


def test_calibration_waits_for_the_estimators() -> None:
    ctl = PacingController()
    ds = run(ctl, Patient(), 200.0, modify=lambda t, latest: {} if t < 30.0 else latest)
    early = [d for d in ds if d.time < 30.0]
    assert all(d.state is S.CALIBRATING and "waiting for first usable estimates" in d.reason for d in early)
    assert first(ds, S.MATCHING).time == pytest.approx(30.0 + 90.0)


def test_slow_natural_breather_is_paced_at_the_floor() -> None:
    ctl = PacingController()
    ds = run(ctl, Patient(natural=4.0), 300.0, dt=1.0)
    visible = [d for d in ds if d.pacer_visible]
    assert all(d.pace_brpm == pytest.approx(4.5) for d in visible)  # floor, not above baseline (clamped)
    assert ctl.target_brpm == pytest.approx(4.5)


def test_resonance_tuning_finds_the_largest_hr_oscillation() -> None:
    cfg = PacingConfig(tune_resonance=True)
    ctl = PacingController(cfg)
    keep_aroused = during(0.0, 1e9, set_value(Metric.AROUSAL, 0.3))  # stay in resonance
    ds = run(ctl, Patient(osc_peak=5.5), 1500.0, dt=1.0, modify=keep_aroused)
    evs = events(ds)
    probes = [e for e in evs if e.startswith("resonance:probe")]
    assert probes[0].startswith("resonance:probe 5.75 brpm")
    assert any(e.startswith("resonance:tuned 5.50 brpm") for e in evs)
    assert ctl.target_brpm == pytest.approx(5.5) and ds[-1].pace_brpm == pytest.approx(5.5)


def test_phase_input_is_accepted() -> None:
    ctl = PacingController(PacingConfig(calibration_s=10, matching_s=5))
    latest = Patient().estimates(0.0)
    d = ctl.step(latest, 0.0, breath_onsets=[])
    for t in range(1, 30):
        latest = {m: dataclasses.replace(e, time=float(t)) for m, e in latest.items()}
        d = ctl.step(latest, float(t), breath_onsets=np.arange(0.0, t, 4.0))
    assert d.state is S.SLOWING and math.isfinite(d.following)


def test_data_time_never_goes_back() -> None:
    ctl = PacingController()
    latest = Patient().estimates(10.0)
    ctl.step(latest, 10.0)
    d = ctl.step(latest, 9.5)  # a chunk of another stream that ends slightly earlier
    assert d.time == 10.0


def test_bad_calls_raise() -> None:
    ctl = PacingController()
    with pytest.raises(ValueError, match="'now'"):
        ctl.step({}, math.nan)
    with pytest.raises(TypeError, match="'latest'"):
        ctl.step([], 0.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="PacingConfig"):
        PacingController({"target_brpm": 6})  # type: ignore[arg-type]


def _scenario_with_everything() -> list[PacingDecision]:
    def modify(t: float, latest: Latest) -> Latest:
        if 250.0 <= t < 270.0:
            latest = set_value(Metric.RESP_RATE_BRPM, quality=0.1)(latest)
        if 400.0 <= t < 410.0:
            latest = set_value(Metric.HR_BPM, 135.0)(latest)
        return latest

    return run(PacingController(), Patient(seed=5), 900.0, modify=modify)


def test_same_inputs_give_the_identical_decision_log() -> None:
    a, b = _scenario_with_everything(), _scenario_with_everything()
    assert len(a) == len(b)
    assert repr(a) == repr(b)  # repr: exact floats, and NaN compares equal as text
    assert {S.SIGNAL_LOST, S.ALERT, S.READY_FOR_DOSING} <= {d.state for d in a}


def test_reset_starts_a_new_session() -> None:
    ctl = PacingController(PacingConfig(calibration_s=10))
    run(ctl, Patient(), 60.0, dt=1.0)
    assert ctl.calibration is not None
    ctl.reset()
    assert ctl.state is S.CALIBRATING and ctl.calibration is None and math.isnan(ctl.pace_brpm)
    assert ctl.summary().duration_s == 0.0


# ------------------------------------------------------------------------- properties
FAST = PacingConfig(
    calibration_s=5.0,
    min_calibration_estimates=2,
    matching_s=3.0,
    max_slew_brpm_per_min=6.0,
    step_back_after_s=4.0,
    resume_after_s=2.0,
    calm_dwell_s=3.0,
    ready_lapse_s=2.0,
    signal_recover_s=1.0,
    alert_clear_s=3.0,
    surge_window_s=5.0,
    tune_resonance=True,
    tune_dwell_s=4.0,
    tune_settle_s=1.0,
    following=FollowingConfig(window_s=5.0, lag_s=1.0, min_estimates=2),
)
METRICS = (
    Metric.RESP_RATE_BRPM,
    Metric.HR_BPM,
    Metric.AROUSAL,
    Metric.EEG_RELAXATION,
    Metric.HR_OSC_BPM,
    Metric.QUALITY_PPG,
    Metric.QUALITY_EEG,
    Metric.QUALITY_ACCEL,
)
RANGES = {  # random values span the plausible and the implausible
    Metric.RESP_RATE_BRPM: (3.0, 25.0),
    Metric.HR_BPM: (30.0, 180.0),
    Metric.AROUSAL: (-4.0, 4.0),
    Metric.EEG_RELAXATION: (0.0, 1.0),
    Metric.HR_OSC_BPM: (0.0, 20.0),
    Metric.QUALITY_PPG: (0.0, 1.0),
    Metric.QUALITY_EEG: (0.0, 1.0),
    Metric.QUALITY_ACCEL: (0.0, 1.0),
}
CALM_VALUES: dict[Metric, object] = {
    Metric.RESP_RATE_BRPM: "pace",
    Metric.HR_BPM: 70.0,
    Metric.AROUSAL: -0.8,
    Metric.EEG_RELAXATION: 0.9,
    Metric.HR_OSC_BPM: 10.0,
    Metric.QUALITY_PPG: 0.9,
    Metric.QUALITY_EEG: 0.9,
    Metric.QUALITY_ACCEL: 0.9,
}
# Mostly calm, fresh, good steps (so that the random walks reach every state), mixed with
# steps where one metric disappears or gets a NaN / calm / random value with a random quality
# and age, and steps where nothing is updated (the estimates age).  Flat primitives keep data
# generation cheap.
STEP = st.tuples(
    st.sampled_from([0.0, 0.1, 0.5, 1.0, 1.0, 1.0, 2.0, 7.0]),  # dt, s
    st.sampled_from(["calm", "calm", "calm", "random", "random", "keep"]),
    st.sampled_from(METRICS),
    st.sampled_from(["missing", "nan", "calm", "random", "random", "random"]),
    st.floats(0.0, 1.0),  # where in the metric's range
    st.sampled_from([1.0, 0.9, 0.8, 0.6, 0.5, 0.49, 0.2, 0.0]),  # quality
    st.sampled_from([0.0, 0.0, 0.5, 2.0, 5.0, 5.5, 30.0]),  # age, s (max_age_s is 5)
)


def _usable(cfg: PacingConfig, latest: Latest, metric: Metric, now: float) -> bool:
    e = latest.get(metric)
    if e is None or not math.isfinite(e.value):
        return False
    level = min(e.quality, e.value) if metric.value.startswith("quality_") else e.quality
    return level >= cfg.min_quality and now - e.time <= cfg.max_age_s


@settings(max_examples=60)  # about 3 s; CI's derandomized profile runs the same 60
@given(st.lists(STEP, min_size=30, max_size=120))
def test_safety_invariants_hold_for_random_streams(
    steps: list[tuple[float, str, Metric, str, float, float, float]],
) -> None:
    cfg = FAST
    ctl = PacingController(cfg)
    latest: Latest = {}
    now = 0.0
    prev: PacingDecision | None = None
    for dt, kind, metric, how, u, quality, age in steps:
        now += dt
        spec: dict[Metric, tuple[object, float, float] | None] = {}
        if kind == "calm":
            spec = {m: (v, 0.9, 0.0) for m, v in CALM_VALUES.items()}
        elif kind == "random":
            lo, hi = RANGES[metric]
            special = {"missing": None, "nan": math.nan, "calm": CALM_VALUES[metric]}
            value = special.get(how, lo + u * (hi - lo))
            spec = {metric: None if value is None else (value, quality, age)}
        for m, s in spec.items():
            if s is None:
                latest.pop(m, None)
                continue
            value, q, a = s
            if value == "pace":  # a patient who follows whatever the pacer shows
                value = prev.pace_brpm if prev is not None and prev.pacer_visible else 7.0
            latest[m] = Estimate(m, float(value), q, now - a)  # type: ignore[arg-type]
        d = ctl.step(latest, now)
        assert isinstance(d.state, PacingState) and d.reason
        assert d.dose_ready == (d.state is S.READY_FOR_DOSING)
        if d.dose_ready:
            assert all(_usable(cfg, latest, m, now) for m in cfg.required_metrics)
            hr = latest[Metric.HR_BPM].value
            assert cfg.hr_low_bpm <= hr <= cfg.hr_high_bpm
        if _usable(cfg, latest, Metric.HR_BPM, now) and not (
            cfg.hr_low_bpm <= latest[Metric.HR_BPM].value <= cfg.hr_high_bpm
        ):
            assert d.state in (S.ALERT, S.STOPPED)
        if d.pacer_visible:
            cal = ctl.calibration
            assert cal is not None
            ceiling = max(cal.resp_rate_brpm, cfg.min_pace_brpm)
            assert cfg.min_pace_brpm - 1e-9 <= d.pace_brpm <= ceiling + 1e-9
        else:
            assert d.state in (S.CALIBRATING, S.ALERT, S.SIGNAL_LOST) and ctl.calibration is None
        if prev is not None:
            assert d.time >= prev.time
            if prev.pacer_visible:
                assert d.pacer_visible
                max_step = cfg.max_slew_brpm_per_min / 60.0 * (d.time - prev.time)
                assert abs(d.pace_brpm - prev.pace_brpm) <= max_step + 1e-9
            marks = [e for e in d.events if e.startswith("state:")]
            if d.state is not prev.state:
                assert len(marks) == 1 and marks[0].startswith(f"state:{d.state} reason:")
                assert len(marks[0]) > len(f"state:{d.state} reason:")
            else:
                assert not marks
        prev = d


# ------------------------------------------------------------------------- configuration
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target_brpm": 8.0}, r"'target_brpm': expected a number in \[4.5, 7.0\], got 8.0"),
        ({"min_pace_brpm": 6.5}, r"'min_pace_brpm': expected <= target_brpm \(6\), got 6.5"),
        ({"inhale_fraction": 0.9}, r"'inhale_fraction': expected a number in \[0.2, 0.6\]"),
        ({"match_fraction": 1.1}, r"'match_fraction'"),
        ({"max_slew_brpm_per_min": 0.0}, r"'max_slew_brpm_per_min'"),
        ({"calibration_s": -1.0}, r"'calibration_s': expected a positive number"),
        ({"arousal_reference": "zero"}, r"'arousal_reference': expected one of 'estimator', 'calibration'"),
        ({"use_eeg": "yes"}, r"'use_eeg': expected true or false"),
        ({"hr_low_bpm": 90.0, "hr_high_bpm": 85.0}, r"'hr_high_bpm': expected > hr_low_bpm"),
        ({"min_calibration_estimates": 0}, r"'min_calibration_estimates': expected an integer in \[1,"),
        ({"signal_metrics": ["hr_bpm"]}, r"'signal_metrics': expected a list containing 'resp_rate_brpm'"),
        ({"signal_metrics": ["resp_rate_brpm", "pulse"]}, r"'signal_metrics': expected metric names among"),
        ({"quality_metrics": ["hr_bpm"]}, r"'quality_metrics': expected metric names among quality_ppg"),
        ({"tune_settle_s": 100.0}, r"'tune_settle_s': expected < tune_dwell_s"),
    ],
)
def test_config_errors_name_the_key_and_the_allowed_values(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        PacingConfig(**kwargs)  # type: ignore[arg-type]


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        PacingConfig(target_brpm=3.0)


def test_from_mapping_rejects_unknown_keys_listing_the_allowed_ones() -> None:
    msg = r"Invalid key 'targt_brpm' for PacingConfig: expected one of .*target_brpm"
    with pytest.raises(ConfigError, match=msg):
        PacingConfig.from_mapping({"targt_brpm": 6.0})
    msg = r"Invalid key 'window' for FollowingConfig: expected one of window_s"
    with pytest.raises(ConfigError, match=msg):
        PacingConfig.from_mapping({"following": {"window": 30}})
    with pytest.raises(ConfigError, match="expected a mapping"):
        PacingConfig.from_mapping([("target_brpm", 6.0)])  # type: ignore[arg-type]


def test_from_mapping_reads_a_protocol_table() -> None:
    doc = tomllib.loads(
        """
        [pacing]
        calibration_s = 120
        target_brpm = 5.5
        inhale_fraction = 0.35
        tune_resonance = true
        signal_metrics = ["resp_rate_brpm", "hr_bpm"]
        quality_metrics = ["quality_ppg"]
        [pacing.following]
        window_s = 45
        """
    )
    cfg = PacingConfig.from_mapping(doc["pacing"])
    assert cfg.calibration_s == 120.0 and cfg.target_brpm == 5.5 and cfg.tune_resonance is True
    assert cfg.signal_metrics == (Metric.RESP_RATE_BRPM, Metric.HR_BPM)
    assert cfg.following.window_s == 45.0
    m = Metric
    assert cfg.required_metrics == (m.RESP_RATE_BRPM, m.HR_BPM, m.EEG_RELAXATION, m.QUALITY_PPG)
    assert PacingConfig(use_eeg=False).required_metrics == (
        Metric.RESP_RATE_BRPM,
        Metric.HR_BPM,
        Metric.AROUSAL,
        Metric.QUALITY_PPG,
        Metric.QUALITY_ACCEL,
    )
    assert PacingConfig.from_mapping({}) == PacingConfig()


class FloorPatient(Patient):
    """Follows the pacer, but cannot breathe slower than ``floor`` breaths/min."""

    def __init__(self, floor: float, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.floor = floor

    def advance(self, dt: float, pace: float) -> None:
        goal = max(pace, self.floor) if math.isfinite(pace) else self.natural
        self.r += (goal - self.r) * (1.0 - math.exp(-dt / 10.0))


def test_patient_with_a_floor_in_the_resonance_range_gets_a_personal_target() -> None:
    # 7 brpm is more than one following tolerance (0.72 brpm at 6) above the target of 6
    ctl = PacingController()
    ds = run(ctl, FloorPatient(7.0), 2400.0)
    adopted = [e for e in events(ds) if e.startswith("pace:personal_target")]
    assert len(adopted) == 1, events(ds)
    target = float(adopted[0].split()[1])
    assert ctl.config.target_brpm < target <= ctl.config.tune_max_brpm  # inside the resonance range
    ready = first(ds, S.READY_FOR_DOSING)
    assert ready.pace_brpm == pytest.approx(target)


def test_personal_target_can_be_switched_off() -> None:
    ctl = PacingController(PacingConfig(personal_target_after=0))
    ds = run(ctl, FloorPatient(7.0), 1800.0)
    assert not any(e.startswith("pace:personal_target") for e in events(ds))
    assert not any(d.dose_ready for d in ds)  # target 6 is never reached by this patient


def test_signals_never_usable_mean_signal_lost_after_warm_up() -> None:
    ctl = PacingController()
    bad = lambda t, latest: {m: dataclasses.replace(e, quality=0.1) for m, e in latest.items()}  # noqa: E731
    ds = run(ctl, Patient(), 300.0, modify=bad)
    lost = first(ds, S.SIGNAL_LOST)
    assert lost.time == pytest.approx(ctl.config.warmup_max_s)
    assert all(d.state is S.CALIBRATING for d in ds if d.time < lost.time)
    assert not any(d.dose_ready or d.pacer_visible for d in ds)
