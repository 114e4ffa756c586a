"""The session engine's quick "no grid point reached" path decides exactly as the plain loop.

The plain loop computes the data horizon after every call; the engine skips it when no chunk
can have lifted the horizon to the next grid point.  Both must give the same decisions and
tick results call by call, also when streams stop, step back in time, are fed to the pipeline
behind the engine's back, or ``max_wait_s`` changes between calls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from adaptive.controller import PacingConfig, PacingController, PacingDecision
from adaptive.pipeline import DspPipeline
from adaptive.session import SessionEngine, TickResult
from adaptive.types import Chunk, Estimate, SignalKind, StreamSpec

FAST = PacingConfig(calibration_s=10.0, matching_s=5.0)
SPECS = (
    StreamSpec(SignalKind.PPG, 64.0, ("ppg1",)),
    StreamSpec(SignalKind.ACCEL, 52.0, ("x", "y", "z")),
    StreamSpec(SignalKind.GYRO, 52.0, ("x", "y", "z")),
)
DURATION_S = 30.0


class _PlainEngine(SessionEngine):
    """The engine's loop in its plain form: the horizon computed after every call."""

    def process(self, chunks: Sequence[Chunk]) -> TickResult:
        estimates: list[Estimate] = []
        for chunk in chunks:
            if chunk.n_times == 0:
                continue
            if math.isnan(self._next_tick):
                self._next_k = math.ceil(float(chunk.times[0]) / self.advance_s)
                self._next_tick = self._grid_time(self._next_k)
            self.pipeline.update(chunk)
        decisions: list[PacingDecision] = []
        horizon = self._data_horizon()
        while math.isfinite(horizon) and self._next_tick <= horizon:
            t = self._next_tick
            estimates += self.pipeline.advance(t)
            if self._next_k % self._per_tick == 0:
                decision = self.controller.step(self.pipeline.latest_at(t), now=t)
                decisions.append(decision)
                self.pipeline.set_pace_hint(decision.pace_brpm if decision.pacer_visible else None)
            self._next_k += 1
            self._next_tick = self._grid_time(self._next_k)
        self.decisions += decisions
        return TickResult(tuple(chunks), tuple(estimates), tuple(decisions))


def _stream(spec: StreamSpec, t0: float, t1: float, packet: int) -> list[Chunk]:
    rng = np.random.default_rng(int(spec.sfreq))
    times = np.arange(math.ceil(t0 * spec.sfreq), math.floor(t1 * spec.sfreq)) / spec.sfreq
    t = times[np.newaxis]
    data = np.sin(2 * np.pi * 1.1 * t) + 0.1 * rng.normal(size=(len(spec.ch_names), times.size))
    if spec.kind is SignalKind.ACCEL:
        data = 0.02 * data + np.array([[0.0], [0.0], [1.0]])
    return [Chunk(spec.kind, data[:, i : i + packet], times[i : i + packet], spec.sfreq, spec.ch_names)
            for i in range(0, times.size, packet)]


def _packets(stop: dict[SignalKind, float] | None = None) -> list[Chunk]:
    stop = stop or {}
    out: list[Chunk] = []
    for spec, n in zip(SPECS, (6, 3, 3)):
        out += _stream(spec, 0.0, stop.get(spec.kind, DURATION_S), n)
    out.sort(key=lambda c: float(c.times[-1]))
    return out


def _key(r: TickResult) -> tuple:
    return (len(r.chunks), r.estimates, r.decisions)


def _both(calls: list[tuple[Chunk, ...]], make_between=None) -> tuple[list[tuple], list[tuple]]:
    """Tick results of both engines, call by call (``make_between()``: a hook run before each)."""
    results = []
    for cls in (SessionEngine, _PlainEngine):
        eng = cls(DspPipeline(SPECS), PacingController(FAST))
        between = None if make_between is None else make_between()
        out = []
        for i, call in enumerate(calls):
            if between is not None:
                between(i, eng)
            out.append(_key(eng.process(call)))
        assert out[-1] is not None
        results.append((out, eng.decisions))
    (a, da), (b, db) = results
    assert da == db and len(da) > 0
    return a, b


@pytest.mark.parametrize("per_call", [1, 4])
def test_same_ticks_as_the_plain_loop(per_call: int) -> None:
    packets = _packets()
    calls = [tuple(packets[i : i + per_call]) for i in range(0, len(packets), per_call)]
    a, b = _both(calls)
    assert a == b


def test_a_stream_that_stops() -> None:
    # the accelerometer stops at 12 s: after max_wait_s it no longer holds decisions back
    a, b = _both([(p,) for p in _packets({SignalKind.ACCEL: 12.0})])
    assert a == b


def test_a_stream_that_steps_back_in_time() -> None:
    packets = _packets()
    k = len(packets) // 2
    late = [c for c in packets[:k] if c.kind is SignalKind.GYRO][-40:]  # gyro samples again, late
    calls = [(p,) for p in packets[:k]] + [(c,) for c in late] + [(p,) for p in packets[k:]]
    a, b = _both(calls)
    assert a == b


def test_chunks_fed_to_the_pipeline_directly_and_max_wait_changes() -> None:
    packets = _packets({SignalKind.PPG: 14.0})
    gyro = [c for c in packets if c.kind is SignalKind.GYRO]
    calls = [(p,) for p in packets if p.kind is not SignalKind.GYRO]

    def make_between():
        fed = iter(gyro)

        def between(i: int, eng: SessionEngine) -> None:
            if i % 3 == 0:  # gyro packets reach the pipeline outside the engine
                for c in (next(fed, None), next(fed, None)):
                    if c is not None:
                        eng.pipeline.update(c)
            if i == len(calls) // 2:
                eng.max_wait_s = 2.0

        return between

    a, b = _both(calls, make_between)
    assert a == b


def test_a_call_without_chunks_takes_the_decisions_due() -> None:
    packets = _packets()
    k = len(packets) // 3

    def make_between():
        def between(i: int, eng: SessionEngine) -> None:
            if i == k:  # the next packets reach the pipeline directly; an empty call follows
                for c in packets[k : k + 50]:
                    eng.pipeline.update(c)
        return between

    calls = [(p,) for p in packets[:k]] + [()] + [(p,) for p in packets[k + 50 :]]
    a, b = _both(calls, make_between)
    assert a == b
    assert a[k][2]  # the empty call decided


def test_a_lagging_stream_stepping_back_releases_the_others() -> None:
    # gyro lags 4 s (live: it holds decisions back); then it steps back to 10 s, more than
    # max_wait_s behind: it no longer holds them, and the decisions up to 20 s are due at once
    packets = [c for c in _packets({SignalKind.GYRO: 16.0}) if float(c.times[-1]) < 20.0]
    back = next(c for c in packets if c.kind is SignalKind.GYRO and float(c.times[0]) >= 10.0)
    a, b = _both([(p,) for p in packets] + [(back,)])
    assert a == b
    assert len(a[-1][2]) >= 5


def test_a_shorter_max_wait_releases_the_others() -> None:
    # gyro lags 4 s (live with max_wait_s 5); with max_wait_s 3 it no longer holds decisions,
    # although its last packet (before the next grid point, 16 s) changes nothing else
    packets = [c for c in _packets({SignalKind.GYRO: 16.0}) if float(c.times[-1]) < 20.0]
    last = packets.pop(max(i for i, c in enumerate(packets) if c.kind is SignalKind.GYRO))

    def make_between():
        def between(i: int, eng: SessionEngine) -> None:
            if i == len(packets):
                eng.max_wait_s = 3.0
        return between

    a, b = _both([(p,) for p in packets] + [(last,)], make_between)
    assert a == b
    assert len(a[-1][2]) >= 5
