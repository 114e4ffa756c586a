"""The session engine decides on a grid of data time: packet sizes change no decision."""

from __future__ import annotations

import numpy as np
import pytest

from adaptive.controller import PacingConfig, PacingController, PacingDecision
from adaptive.pipeline import DspPipeline
from adaptive.session import SessionEngine, TickResult, session_tick
from adaptive.types import Chunk, Metric
from sensors.clocks import ManualClock
from sensors.simulated import SimulatedPatient

DURATION_S = 240.0
FAST = PacingConfig(calibration_s=45.0, matching_s=20.0)  # reach pacing within the test's data


def _chunks(step_s: float) -> list[Chunk]:
    src = SimulatedPatient("compliant", seed=5)
    src.start()
    out: list[Chunk] = []
    for now in np.arange(step_s, DURATION_S + 1e-9, step_s):
        out += src.poll(float(now))
    return out


def _decide(chunks: list[Chunk], per_call: int) -> list[PacingDecision]:
    streams = SimulatedPatient("compliant", seed=5).streams
    engine = SessionEngine(DspPipeline(streams), PacingController(FAST))
    for i in range(0, len(chunks), per_call):
        engine.process(chunks[i : i + per_call])
    return engine.decisions


@pytest.fixture(scope="module")
def reference() -> list[PacingDecision]:
    return _decide(_chunks(0.05), 1)


def test_decisions_on_a_fixed_grid(reference: list[PacingDecision]) -> None:
    times = [d.time for d in reference]
    assert times == sorted(times)
    assert np.allclose(np.diff(times), 0.5)
    assert reference[-1].time > DURATION_S - 3.0  # decisions keep up with the data
    assert any(d.pacer_visible for d in reference)  # calibration ended within the data


@pytest.mark.parametrize(("step_s", "per_call"), [(0.05, 7), (0.37, 1), (1.3, 3)])
def test_poll_schedule_changes_no_decision(
    reference: list[PacingDecision], step_s: float, per_call: int
) -> None:
    got = _decide(_chunks(step_s), per_call)
    n = min(len(got), len(reference))
    # the data of a coarse schedule ends up to one poll earlier (240 s is not a multiple of it)
    assert n >= len(reference) - int(np.ceil(step_s / 0.5)) - 1
    assert got[:n] == reference[:n]


class _Recorder:
    def __init__(self) -> None:
        self.results: list[TickResult] = []

    def write(self, result: TickResult) -> None:
        self.results.append(result)


def test_session_tick_closes_the_loop_and_feeds_sinks() -> None:
    src = SimulatedPatient("compliant", seed=2)
    src.start()
    engine = SessionEngine(DspPipeline(src.streams), PacingController(FAST))
    sink = _Recorder()
    clock = ManualClock()
    while clock.now() < 120.0:
        session_tick(src, engine, [sink], clock.advance(0.1))
    shown = [d for d in engine.decisions if d.pacer_visible]
    assert shown, "calibration should end within 120 s with calibration_s=45"
    assert src.pace_brpm == pytest.approx(shown[-1].pace_brpm)  # the patient hears the pacer
    assert sum(len(r.decisions) for r in sink.results) == len(engine.decisions)
    assert sum(len(r.chunks) for r in sink.results) > 1000


def test_advance_grid_keeps_decision_times_and_checks_its_period() -> None:
    chunks = _chunks(0.05)
    streams = SimulatedPatient("compliant", seed=5).streams
    times, stage1 = {}, {}
    for advance_s in (0.5, 0.25, 0.125):
        engine = SessionEngine(DspPipeline(streams), PacingController(FAST), advance_s=advance_s)
        released = []
        for c in chunks[:4000]:
            released += engine.process([c]).estimates
        times[advance_s] = [d.time for d in engine.decisions]
        # the estimators' own outputs (arousal combines what each advance releases)
        stage1[advance_s] = sorted((e for e in released if e.metric is not Metric.AROUSAL),
                                   key=lambda e: (e.time, e.metric))
    # a finer advance grid releases estimates sooner: the same estimates, the same decision times
    assert times[0.25] == times[0.5] == times[0.125]
    assert len(times[0.5]) > 100
    assert stage1[0.25] == stage1[0.5] == stage1[0.125]
    for bad in (0.3, 0.0, 1.0):
        with pytest.raises(ValueError, match="'advance_s'"):
            SessionEngine(DspPipeline(streams), PacingController(FAST), advance_s=bad)
