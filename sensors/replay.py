"""Replay a recording as a live source: the recorded samples, in time order, as fast as the clock says.

:class:`ReplaySource` implements :class:`~adaptive.types.Source` on top of a
:class:`~adaptive.records.Recording` (or any file :func:`sensors.readers.read_recording`
opens).  ``poll(now)`` returns, for each stream, the samples with session time in
``(previous now, now]`` as one chunk.  The clock decides the speed:

* ``--speed max``: a :class:`~sensors.clocks.ManualClock` advanced by a fixed step per
  iteration (``clock.advance(0.1)``) replays as fast as the pipeline runs;
* ``--speed N``: a :class:`~sensors.clocks.ScaledClock` replays N times faster than real time.

Because every estimator is chunk-invariant and the session engine decides on a fixed grid of
data time, a replay of a calmloop session file gives the recorded estimates and decisions
whatever the poll step (see the golden test in ``tests/sensors/test_replay.py``).

Session time: calmloop files are already on the session clock (``time_base == "session"``) and
are replayed unchanged, so a replay is bit-identical.  Foreign recordings (Unix or LSL clock)
are shifted so that their earliest sample is at 0.  ``time_origin`` overrides both.

The replay does not hear the pacer (it is not a :class:`~adaptive.types.PaceFollower`): the
patient's breathing is what was recorded.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from adaptive.errors import SensorError
from adaptive.records import Marker, Recording
from adaptive.types import Chunk, FloatArray, SignalKind, SourceStatus, StreamSpec

from .readers import read_recording

__all__ = ["ReplaySource"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Cursor:
    spec: StreamSpec
    data: FloatArray
    times: FloatArray
    trusted: bool
    next: int = 0
    next_time: float = math.inf
    sfreq: float = 0.0  # float(spec.sfreq), once


#: Chunk without re-validation (its caller guarantees what ``Chunk.__init__`` checks).
_trusted_chunk = Chunk._trusted


def _chunk(c: _Cursor, lo: int, hi: int) -> Chunk:
    """A chunk of samples ``lo:hi`` of a validated stream.

    ``Chunk.__init__`` copies and re-checks its arrays (about 70 us per chunk, most of the cost
    of a replay at 0.1-s steps).  The recorded arrays were checked once by ``RecordedStream``
    (float64, finite strictly increasing times, shapes), so the chunk is built by
    ``Chunk._trusted`` from a read-only contiguous copy of the data and a read-only view of the
    times.
    """
    spec = c.spec
    if not c.trusted:
        return Chunk(spec.kind, c.data[:, lo:hi], c.times[lo:hi], spec.sfreq, spec.ch_names)
    data = np.ascontiguousarray(c.data[:, lo:hi])
    data.flags.writeable = False
    return _trusted_chunk(spec.kind, data, c.times[lo:hi], c.sfreq, spec.ch_names)


class ReplaySource:
    """A recorded session (or foreign recording) as a non-blocking chunk source.

    Parameters
    ----------
    recording : Recording or path-like or sequence of path-like
        What to replay; paths are read with :func:`sensors.readers.read_recording`.
    chunk_s : float or None
        Longest chunk, in seconds of data, per stream and poll.  None (default) returns
        everything up to ``now``.  With a limit, a poll far ahead of the data returns only the
        next ``chunk_s`` seconds and the source lags behind ``now`` (see :attr:`lag_s`) until
        later polls catch up: it bounds the work of one poll when a scaled clock jumps.
    time_origin : float or None
        Recording time that becomes session time 0.  None: 0 for calmloop session files, the
        earliest sample otherwise.
    stall_s : float
        Seconds without any sample before the end after which :attr:`status` reports
        ``SIGNAL_LOST`` (a gap in the recording), default 2.

    Raises
    ------
    SensorError
        If a path cannot be read (see :func:`read_recording`) or the recording has no samples.

    Notes
    -----
    :attr:`status` is ``IDLE`` before :meth:`start`, ``STREAMING`` while data remain,
    ``SIGNAL_LOST`` during a recorded gap longer than ``stall_s``, and ``STOPPED`` once every
    sample has been returned or after :meth:`stop`.

    Examples
    --------
    >>> source = ReplaySource("sessions/20250101T093000Z_P017/session.xdf")  # doctest: +SKIP
    >>> clock = ManualClock()  # doctest: +SKIP
    >>> source.start()  # doctest: +SKIP
    >>> while source.status is not SourceStatus.STOPPED:  # doctest: +SKIP
    ...     session_tick(source, engine, sinks, clock.advance(0.1))
    """

    def __init__(
        self,
        recording: Recording | str | Path | list[str | Path] | tuple[str | Path, ...],
        *,
        chunk_s: float | None = None,
        time_origin: float | None = None,
        stall_s: float = 2.0,
    ) -> None:
        rec = recording if isinstance(recording, Recording) else read_recording(recording)
        if chunk_s is not None and not (math.isfinite(chunk_s) and chunk_s > 0):
            raise ValueError(
                f"Invalid value for 'chunk_s': expected positive seconds or None, got {chunk_s!r}."
            )
        if not (math.isfinite(stall_s) and stall_s > 0):
            raise ValueError(f"Invalid value for 'stall_s': expected positive seconds, got {stall_s!r}.")
        streams = [s for s in rec.streams if s.n_times > 0]
        if not streams:
            paths = rec.metadata.get("paths", "the recording")
            raise SensorError(f"{paths}: nothing to replay; expected at least one stream with samples.")
        if time_origin is None:
            time_origin = 0.0 if rec.metadata.get("time_base") == "session" else rec.start_time
        if not math.isfinite(time_origin):
            raise ValueError(f"Invalid value for 'time_origin': expected a finite time, got {time_origin!r}.")
        self._recording = rec
        self._origin = float(time_origin)
        self._chunk_s = chunk_s
        self._stall_s = float(stall_s)
        self._cursors: list[_Cursor] = []
        for s in streams:
            times = s.times - self._origin if self._origin != 0.0 else s.times
            times.flags.writeable = False
            trusted = (
                bool(np.all(np.diff(times) > 0))
                and len(s.spec.ch_names) == s.data.shape[0]
                and isinstance(s.spec.ch_names, tuple)
                and isinstance(s.spec.kind, SignalKind)
                and s.data.dtype == np.float64
                and not s.data.flags.writeable
            )
            cursor = _Cursor(s.spec, s.data, times, trusted, 0, float(times[0]), float(s.spec.sfreq))
            self._cursors.append(cursor)
        self._n_exhausted = 0  # cursors whose every sample has been returned
        self._end = max(float(c.times[-1]) for c in self._cursors)
        self._start_time = min(float(c.times[0]) for c in self._cursors)
        self._status = SourceStatus.IDLE
        self._last_now = -math.inf
        self._emitted_to = -math.inf  # newest sample time returned over all streams

    # -- Source protocol ------------------------------------------------------------------------
    @property
    def streams(self) -> tuple[StreamSpec, ...]:
        """Specs of the replayed streams, in recording order."""
        return tuple(c.spec for c in self._cursors)

    @property
    def status(self) -> SourceStatus:
        """IDLE, STREAMING, SIGNAL_LOST (recorded gap) or STOPPED (all data returned, or stopped)."""
        if self._status is not SourceStatus.STREAMING:
            return self._status
        if self._n_exhausted == len(self._cursors):  # self.finished, kept up to date by poll()
            return SourceStatus.STOPPED
        if math.isfinite(self._last_now) and self._last_now > self._start_time:
            newest = self._emitted_to if math.isfinite(self._emitted_to) else self._start_time
            if self._last_now - newest > self._stall_s and self.lag_s == 0.0:
                return SourceStatus.SIGNAL_LOST
        return SourceStatus.STREAMING

    def start(self) -> None:
        """Start (or resume) the replay.

        Raises
        ------
        SensorError
            After :meth:`stop` (create a new source to replay again).
        """
        if self._status is SourceStatus.STOPPED:
            raise SensorError("ReplaySource: cannot restart a stopped replay; create a new ReplaySource.")
        if self._status is SourceStatus.IDLE:
            logger.info(
                "replaying %s: %s, %.1f s",
                self._recording.metadata.get("paths", "a recording"),
                ", ".join(f"{c.spec.kind.value} {c.times.size} samples" for c in self._cursors),
                self._end - min(0.0, self._start_time),
            )
        self._status = SourceStatus.STREAMING

    def poll(self, now: float) -> list[Chunk]:
        """Return the recorded samples with times in ``(previous now, now]``: one chunk per stream.

        Parameters
        ----------
        now : float
            Session time in seconds, never smaller than at the previous call.

        Returns
        -------
        chunks : list of Chunk
            In the order of :attr:`streams`; a stream without samples in the interval is left out.

        Raises
        ------
        SensorError
            Before :meth:`start` or after :meth:`stop`.
        ValueError
            If ``now`` is not finite or goes back in time.
        """
        if self._status is not SourceStatus.STREAMING:
            raise SensorError(f"ReplaySource: poll() while {self._status.value}; call start() first.")
        now = float(now)
        if not math.isfinite(now) or now < self._last_now:
            raise ValueError(
                f"Invalid value for 'now': expected a finite time >= {self._last_now!r} s (the previous "
                f"poll), got {now!r}. Session time never goes back."
            )
        self._last_now = now
        out: list[Chunk] = []
        chunk_s = self._chunk_s
        for c in self._cursors:
            if c.next_time > now:  # nothing due (or the stream is exhausted: next_time = inf)
                continue
            times = c.times
            limit = now if chunk_s is None else min(now, c.next_time + chunk_s)
            hi = int(times.searchsorted(limit, "right"))
            out.append(_chunk(c, c.next, hi))
            last = float(times[hi - 1])
            if last > self._emitted_to:  # max(self._emitted_to, last)
                self._emitted_to = last
            c.next = hi
            if hi < times.shape[0]:
                c.next_time = float(times[hi])
            else:
                c.next_time = math.inf
                self._n_exhausted += 1
        return out

    def stop(self) -> None:
        """Stop the replay; later polls raise."""
        if self._status is not SourceStatus.STOPPED:
            logger.info("replay stopped at %.3f s of %.3f s", max(self._emitted_to, 0.0), self._end)
        self._status = SourceStatus.STOPPED

    def __enter__(self) -> ReplaySource:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- replay-specific ------------------------------------------------------------------------
    @property
    def recording(self) -> Recording:
        """The recording being replayed (estimates, decisions, markers, metadata)."""
        return self._recording

    @property
    def time_origin(self) -> float:
        """Recording time that is session time 0."""
        return self._origin

    @property
    def end_time(self) -> float:
        """Session time of the last recorded sample (over all streams)."""
        return self._end

    @property
    def finished(self) -> bool:
        """True once every sample has been returned."""
        return all(c.next >= c.times.size for c in self._cursors)

    @property
    def lag_s(self) -> float:
        """How far the replay is behind the last ``now`` because of ``chunk_s`` (0 when caught up)."""
        pending = [float(c.times[c.next]) for c in self._cursors if c.next < c.times.size]
        if not pending or not math.isfinite(self._last_now):
            return 0.0
        return max(0.0, self._last_now - min(pending))

    def markers(self, start: float = -math.inf, stop: float = math.inf) -> list[Marker]:
        """Recorded markers with session time in ``(start, stop]``, shifted like the samples."""
        out = []
        for m in self._recording.markers:
            t = m.time - self._origin
            if start < t <= stop:
                out.append(Marker(t, m.text, m.stream))
        return out
