"""One session iteration, identical live and offline: poll, estimate, decide, write.

The caller owns the loop and the clock: the live app calls :func:`session_tick` once per frame
with monotonic time, replay and tests call it in a tight loop with a manual clock.  Decisions
are taken on a fixed grid of *data* time (every ``tick_s`` seconds), each from the estimates
up to that grid point, once every stream has been received past it.  So the same samples give the
same decisions whatever the poll schedule or replay speed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .controller import PacingController, PacingDecision
from .pipeline import DspPipeline
from .types import Chunk, Estimate, PaceFollower, Source

__all__ = ["SessionEngine", "Sink", "TickResult", "session_tick"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TickResult:
    """What one :func:`session_tick` produced."""

    chunks: tuple[Chunk, ...] = ()
    estimates: tuple[Estimate, ...] = ()
    decisions: tuple[PacingDecision, ...] = ()

    @property
    def decision(self) -> PacingDecision | None:
        """The newest decision of the tick, if any."""
        return self.decisions[-1] if self.decisions else None


class Sink(Protocol):
    """Anything that consumes a session's data (recorder, LSL outlets, view, status line)."""

    def write(self, result: TickResult) -> None:
        """Consume one tick's chunks, estimates and decisions."""
        ...


@dataclass
class SessionEngine:
    """Pipeline plus controller, stepped on a fixed grid of data time.

    Parameters
    ----------
    pipeline : DspPipeline
        The estimators.
    controller : PacingController
        The pacing state machine.
    tick_s : float
        Decision period in seconds of data time.
    max_wait_s : float
        A stream that lags the newest data by more than this no longer holds decisions back
        (it has stopped: the controller must see it to declare ``signal_lost``).  Decisions
        are identical for any delivery whose streams stay within this of each other (live
        Bluetooth packets interleave within a second; replay delivers in time order).
    """

    pipeline: DspPipeline
    controller: PacingController
    tick_s: float = 0.5
    max_wait_s: float = 5.0
    _next_tick: float = math.nan
    decisions: list[PacingDecision] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not (self.tick_s > 0 and self.max_wait_s > 0):
            raise ValueError(
                f"Invalid value for 'tick_s'/'max_wait_s': expected positive seconds, got "
                f"{self.tick_s!r}/{self.max_wait_s!r}."
            )

    def _data_horizon(self) -> float:
        """Latest time up to which every live stream has been received."""
        done = self.pipeline.received_until
        if not done:
            return -math.inf
        newest = max(done.values())
        live = [t for t in done.values() if newest - t <= self.max_wait_s]
        return min(live)

    def process(self, chunks: Sequence[Chunk]) -> TickResult:
        """Feed chunks; take every decision whose grid time the data has passed."""
        estimates: list[Estimate] = []
        for chunk in chunks:
            if chunk.n_times == 0:
                continue
            if math.isnan(self._next_tick):  # the grid starts at the first sample of the session
                self._next_tick = math.ceil(float(chunk.times[0]) / self.tick_s) * self.tick_s
            self.pipeline.update(chunk)
        decisions: list[PacingDecision] = []
        horizon = self._data_horizon()
        while math.isfinite(horizon) and self._next_tick <= horizon:
            t = self._next_tick
            estimates += self.pipeline.advance(t)
            decision = self.controller.step(self.pipeline.latest_at(t), now=t)
            decisions.append(decision)
            self.pipeline.set_pace_hint(decision.pace_brpm if decision.pacer_visible else None)
            self._next_tick = round((t + self.tick_s) / self.tick_s) * self.tick_s
        self.decisions += decisions
        return TickResult(tuple(chunks), tuple(estimates), tuple(decisions))


def session_tick(source: Source, engine: SessionEngine, sinks: Sequence[Sink], now: float) -> TickResult:
    """Poll the source once, run the engine, hand the result to every sink.

    When the source can hear the pacer (the simulated patient), the newest pace is sent back
    to it, closing the loop.
    """
    result = engine.process(source.poll(now))
    decision = result.decision
    if decision is not None and isinstance(source, PaceFollower):
        pace = decision.pace_brpm if decision.pacer_visible and math.isfinite(decision.pace_brpm) else None
        source.set_pace(pace, decision.inhale_fraction)
    for sink in sinks:
        sink.write(result)
    return result
