"""Closed loop against the simulated patient profiles: the issue's acceptance, in simulated time.

Each test runs the whole stack (simulated patient, DSP pipeline, controller) as
``calmloop session --speed max`` does, with the shipped protocol, and checks what the clinician
would see: when the patient is ready for dosing, and that nothing is declared on bad signal.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from adaptive.controller import PacingDecision, PacingState
from experiments.protocol import load_protocol
from experiments.session import run_closed_loop
from sensors.clocks import ManualClock
from sensors.simulated import SimulatedPatient

S = PacingState


def _run(profile: str, minutes: float, seed: int = 0) -> tuple[list[PacingDecision], list[tuple[float, str]], SimulatedPatient]:
    protocol = replace(load_protocol(), max_duration_s=60.0 * minutes, after_ready_s=math.inf)
    patient = SimulatedPatient(profile, seed=seed)
    _, engine, log, _ = run_closed_loop(patient, protocol, ManualClock(), max_speed=True)
    return engine.decisions, log.events, patient


def _ready_at(decisions: list[PacingDecision]) -> float:
    return next((d.time for d in decisions if d.dose_ready), math.inf)


@pytest.fixture(scope="module")
def compliant() -> list[PacingDecision]:
    return _run("compliant", 12.5)[0]


def test_compliant_patient_is_ready_within_12_minutes(compliant: list[PacingDecision]) -> None:
    ready = _ready_at(compliant)
    assert ready <= 12 * 60.0
    path = [d.state for d in compliant if d.time <= ready]
    for state in (S.CALIBRATING, S.MATCHING, S.SLOWING, S.CALM, S.READY_FOR_DOSING):
        assert state in path
    assert min(d.pace_brpm for d in compliant if d.pacer_visible) == pytest.approx(6.0, abs=0.05)


def test_anxious_patient_is_ready_later_but_within_25_minutes(compliant: list[PacingDecision]) -> None:
    decisions, _, _ = _run("anxious", 25.0)
    ready = _ready_at(decisions)
    assert _ready_at(compliant) < ready <= 25 * 60.0


def test_non_follower_keeps_its_pace_and_is_never_ready() -> None:
    decisions, _, patient = _run("non-follower", 20.0)
    assert not any(d.dose_ready for d in decisions)
    truth = patient.truth_log()
    own = truth.resp_rate_brpm[truth.time > 120.0]
    window = 30 * 64  # truth is logged at 64 Hz: 30-s running means of the patient's own rate
    slowest_own = float(np.convolve(own, np.ones(window) / window, mode="valid").min())
    shown = [d.pace_brpm for d in decisions if d.pacer_visible]
    # never led below what it follows: the pace stays above the slowest half-minute of the
    # patient's own breathing, far from resonance
    assert min(shown) >= slowest_own
    assert min(shown) > 10.0


def test_noisy_signal_goes_to_signal_lost_and_is_never_ready() -> None:
    decisions, events, _ = _run("noisy-signal", 10.0)
    assert any(d.state is S.SIGNAL_LOST for d in decisions)
    assert any(e.startswith("state:signal_lost") for _, e in events)
    assert not any(d.dose_ready or d.state in (S.CALM, S.READY_FOR_DOSING) for d in decisions)


def test_tachycardic_patient_raises_an_alert() -> None:
    decisions, events, _ = _run("tachycardic", 5.0)
    alerts = [e for _, e in events if e.startswith("alert:hr_high")]
    assert alerts, events
    assert not any(d.dose_ready for d in decisions if d.state is S.ALERT)
