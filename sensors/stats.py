"""Per-stream reception statistics that any source can keep and the CLI can show.

:class:`StreamStats` watches the chunks of one stream and counts samples, measures the
sampling rate from the chunk times, and counts gaps (an inter-sample interval longer than
``gap_factor / sfreq``, 1.5 sample periods by default), including gaps across chunk
boundaries.  Sources also report the samples they had to drop (duplicate or backward
timestamps) with :meth:`StreamStats.add_dropped`.

Examples
--------
>>> import numpy as np
>>> from adaptive.types import Chunk, SignalKind
>>> stats = StreamStats(SignalKind.PPG, sfreq=64.0)
>>> t = np.arange(128) / 64.0
>>> stats.update(Chunk(SignalKind.PPG, np.zeros((1, 64)), t[:64], 64.0, ("ppg1",)))
>>> stats.update(Chunk(SignalKind.PPG, np.zeros((1, 60)), t[68:], 64.0, ("ppg1",)))  # 4 missing
>>> s = stats.summary()
>>> s.n_samples, s.n_gaps, round(s.max_gap_s * 64)
(124, 1, 5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from adaptive.types import Chunk, SignalKind

__all__ = ["StreamStats", "StreamSummary"]


@dataclass(frozen=True, slots=True)
class StreamSummary:
    """What one stream has delivered so far.

    Parameters
    ----------
    kind : SignalKind
        Signal kind of the stream.
    sfreq : float
        Nominal sampling rate in Hz.
    n_samples : int
        Samples received (after dropping).
    n_chunks : int
        Non-empty chunks received.
    first_time, last_time : float
        Session times of the first and last sample, NaN before any sample.
    measured_sfreq : float
        ``(n_samples - 1) / (last_time - first_time)`` in Hz: the average rate since the first
        sample, gaps included.  NaN with fewer than two samples.
    n_gaps : int
        Inter-sample intervals longer than ``gap_factor / sfreq``.
    max_gap_s : float
        Longest inter-sample interval in seconds, NaN with fewer than two samples.
    n_dropped : int
        Samples the source discarded (duplicate or backward timestamps).
    """

    kind: SignalKind
    sfreq: float
    n_samples: int
    n_chunks: int
    first_time: float
    last_time: float
    measured_sfreq: float
    n_gaps: int
    max_gap_s: float
    n_dropped: int

    @property
    def rate_error(self) -> float:
        """Relative deviation of the measured from the nominal rate (0.02 is 2 % fast)."""
        return self.measured_sfreq / self.sfreq - 1.0


class StreamStats:
    """Running counts, measured rate and gaps of one stream.

    Parameters
    ----------
    kind : SignalKind
        Signal kind of the stream; :meth:`update` rejects chunks of another kind.
    sfreq : float
        Nominal sampling rate in Hz.
    gap_factor : float
        An interval longer than ``gap_factor`` sample periods counts as a gap (> 1).

    Notes
    -----
    Constant memory and O(n) per chunk; reads no clock, so it works the same live and in replay.
    """

    def __init__(self, kind: SignalKind, sfreq: float, gap_factor: float = 1.5) -> None:
        self._kind = SignalKind(kind)
        if not (math.isfinite(sfreq) and sfreq > 0):
            raise ValueError(f"Invalid value for 'sfreq': expected a positive rate in Hz, got {sfreq!r}.")
        if not (math.isfinite(gap_factor) and gap_factor > 1):
            raise ValueError(
                "Invalid value for 'gap_factor': expected a number of sample periods > 1, "
                f"got {gap_factor!r}."
            )
        self._sfreq = float(sfreq)
        self._gap_s = float(gap_factor) / self._sfreq
        self.reset()

    @property
    def kind(self) -> SignalKind:
        """Signal kind of the stream."""
        return self._kind

    @property
    def sfreq(self) -> float:
        """Nominal sampling rate in Hz."""
        return self._sfreq

    def reset(self) -> None:
        """Forget everything received so far."""
        self._n_samples = 0
        self._n_chunks = 0
        self._first = math.nan
        self._last = math.nan
        self._n_gaps = 0
        self._max_gap = math.nan
        self._n_dropped = 0

    def update(self, chunk: Chunk) -> None:
        """Account for one chunk of this stream.

        Raises
        ------
        ValueError
            If the chunk is of another signal kind.
        """
        if chunk.kind != self._kind:
            raise ValueError(
                f"Invalid value for 'kind': expected {self._kind.value!r}, got {chunk.kind.value!r}. "
                "Keep one StreamStats per stream."
            )
        if chunk.n_times == 0:
            return
        times = chunk.times
        if math.isnan(self._last):
            self._first = float(times[0])
            intervals = np.diff(times)
        else:
            intervals = np.diff(times, prepend=self._last)
        if intervals.size:
            self._n_gaps += int(np.count_nonzero(intervals > self._gap_s))
            biggest = float(intervals.max())
            self._max_gap = biggest if math.isnan(self._max_gap) else max(self._max_gap, biggest)
        self._last = float(times[-1])
        self._n_samples += chunk.n_times
        self._n_chunks += 1

    def add_dropped(self, n: int) -> None:
        """Count ``n`` samples that the source discarded before building a chunk."""
        if n < 0:
            raise ValueError(f"Invalid value for 'n': expected a count >= 0, got {n!r}.")
        self._n_dropped += int(n)

    def summary(self) -> StreamSummary:
        """Return the statistics so far as a frozen record."""
        span = self._last - self._first
        measured = (self._n_samples - 1) / span if self._n_samples > 1 and span > 0 else math.nan
        return StreamSummary(
            kind=self._kind,
            sfreq=self._sfreq,
            n_samples=self._n_samples,
            n_chunks=self._n_chunks,
            first_time=self._first,
            last_time=self._last,
            measured_sfreq=measured,
            n_gaps=self._n_gaps,
            max_gap_s=self._max_gap,
            n_dropped=self._n_dropped,
        )
