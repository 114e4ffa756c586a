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
    advance_s : float
        Period of the finer grid on which the pipeline is advanced (released estimates), a
        whole fraction of ``tick_s``.  Decisions fall on every ``tick_s / advance_s``-th point.
        Advancing more often than deciding lets estimators whose hops are staggered
        (:data:`~adaptive.pipeline.STAGGERED_RESPIRATION`) work in different ticks, so that
        no single tick of a real-time loop carries a whole second's work.
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
    advance_s: float = 0.25
    _next_tick: float = math.nan  # time of the next point of the advance grid
    _next_k: int = field(default=0, init=False, repr=False, compare=False)  # its index on that grid
    _per_tick: int = field(default=1, init=False, repr=False, compare=False)  # advance points per decision
    decisions: list[PacingDecision] = field(default_factory=list)
    # what the data horizon was last computed from (see `process`)
    _stamp_seen: int = field(default=-1, init=False, repr=False, compare=False)
    _max_wait_seen: float = field(default=math.nan, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (self.tick_s > 0 and self.max_wait_s > 0):
            raise ValueError(
                f"Invalid value for 'tick_s'/'max_wait_s': expected positive seconds, got "
                f"{self.tick_s!r}/{self.max_wait_s!r}."
            )
        per_tick = round(self.tick_s / self.advance_s) if self.advance_s > 0 else 0
        if per_tick < 1 or abs(per_tick * self.advance_s - self.tick_s) > 1e-9 * self.tick_s:
            raise ValueError(
                f"Invalid value for 'advance_s': expected tick_s ({self.tick_s!r} s) divided by a whole "
                f"number, got {self.advance_s!r}. Use e.g. advance_s=tick_s/2."
            )
        self._per_tick = per_tick

    def _grid_time(self, k: int) -> float:
        """Time of point ``k`` of the advance grid (decision points exactly ``n * tick_s``)."""
        n, r = divmod(k, self._per_tick)
        return n * self.tick_s + r * self.advance_s  # r = 0 adds exactly 0.0

    def _data_horizon(self) -> float:
        """Latest time up to which every live stream has been received."""
        done = self.pipeline.received_until
        if not done:
            return -math.inf
        newest = max(done.values())
        live = [t for t in done.values() if newest - t <= self.max_wait_s]
        return min(live)

    def process(self, chunks: Sequence[Chunk]) -> TickResult:
        """Feed chunks; take every decision whose grid time the data has passed.

        Notes
        -----
        Speed: most calls (one Bluetooth packet each) complete no grid point, and are told
        apart without computing the data horizon.  After a call the horizon is below the next
        grid point.  A chunk whose last sample is before that point, and not before the last
        sample received of its stream, cannot lift the horizon to it: if its stream stays live
        the horizon is at most that sample; if not, no stream's liveness or time changed
        otherwise.  So the horizon is computed only when a chunk reaches the next grid point,
        a stream goes back in time, or the pipeline's received times or ``max_wait_s`` changed
        outside this method.
        """
        pipeline = self.pipeline
        update = pipeline.update
        received = pipeline._received
        next_tick = self._next_tick
        check = pipeline._stamp != self._stamp_seen or self.max_wait_s != self._max_wait_seen
        for chunk in chunks:
            times = chunk.times
            if not len(times):
                continue
            if next_tick != next_tick:  # NaN: the grid starts at the first sample of the session
                self._next_k = math.ceil(float(times[0]) / self.advance_s)
                next_tick = self._next_tick = self._grid_time(self._next_k)
            if not check:
                t_last = times[-1]
                if t_last >= next_tick:
                    check = True
                else:
                    prev = received.get(chunk.kind)
                    check = prev is not None and t_last < prev
            update(chunk)
        if not check:
            self._stamp_seen = pipeline._stamp
            result = _new_tick_result(TickResult)
            _set_chunks(result, chunks if type(chunks) is tuple else tuple(chunks))
            _set_estimates(result, ())
            _set_decisions(result, ())
            return result
        estimates: list[Estimate] = []
        decisions: list[PacingDecision] = []
        horizon = self._data_horizon()
        while math.isfinite(horizon) and self._next_tick <= horizon:
            t, k = self._next_tick, self._next_k
            estimates += pipeline.advance(t)
            if k % self._per_tick == 0:
                decision = self.controller.step(pipeline.latest_at(t), now=t)
                decisions.append(decision)
                pipeline.set_pace_hint(decision.pace_brpm if decision.pacer_visible else None)
            self._next_k = k + 1
            self._next_tick = self._grid_time(k + 1)
        self._stamp_seen = pipeline._stamp
        self._max_wait_seen = self.max_wait_s
        self.decisions += decisions
        return TickResult(tuple(chunks), tuple(estimates), tuple(decisions))


# TickResult without the frozen dataclass's __init__ (same object, about twice as fast): the
# engine returns one per packet, mostly empty
_new_tick_result = object.__new__
_set_chunks = TickResult.chunks.__set__  # type: ignore[attr-defined]
_set_estimates = TickResult.estimates.__set__  # type: ignore[attr-defined]
_set_decisions = TickResult.decisions.__set__  # type: ignore[attr-defined]


def session_tick(source: Source, engine: SessionEngine, sinks: Sequence[Sink], now: float) -> TickResult:
    """Poll the source once, run the engine, hand the result to every sink.

    When the source can hear the pacer (the simulated patient), the newest pace is sent back
    to it, closing the loop.
    """
    result = engine.process(source.poll(now))
    decision = result.decision
    # a source without `set_pace` is no PaceFollower: skip the protocol check (~15 us) for it
    if (
        decision is not None
        and getattr(source, "set_pace", None) is not None
        and isinstance(source, PaceFollower)
    ):
        pace = decision.pace_brpm if decision.pacer_visible and math.isfinite(decision.pace_brpm) else None
        source.set_pace(pace, decision.inhale_fraction)
    for sink in sinks:
        sink.write(result)
    return result
