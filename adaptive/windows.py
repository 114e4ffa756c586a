"""Fixed-hop sliding windows: output that does not depend on how input is chunked."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ._checks import check_positive
from .types import FloatArray

__all__ = ["FixedHopWindows", "RingBuffer"]


class RingBuffer:
    """The most recent ``capacity`` samples of ``n_channels`` channels, with their times.

    Parameters
    ----------
    n_channels : int
        Number of channels.
    capacity : int
        Number of samples kept.
    """

    def __init__(self, n_channels: int, capacity: int) -> None:
        if int(capacity) < 1:
            raise ValueError(f"Invalid value for 'capacity': expected >= 1 sample, got {capacity!r}.")
        self._cap = int(capacity)
        # Samples are written one after the other into arrays of twice the capacity; when a
        # push would pass the end, the last `capacity` samples first move to the front.  So the
        # last n samples are always one contiguous slice (O(n) reads), and a push is one copy
        # per array (plus one move of `capacity` samples every `capacity` or so samples).
        # The first `capacity` slots start as NaN: what `last` returns for never-filled samples.
        self._data = np.full((int(n_channels), 2 * self._cap), np.nan)
        self._times = np.full(2 * self._cap, np.nan)
        self._end = self._cap  # index after the newest sample, capacity..2*capacity
        self._n_total = 0  # samples ever pushed

    @property
    def n_total(self) -> int:
        """Number of samples pushed since creation."""
        return self._n_total

    @property
    def capacity(self) -> int:
        """Number of samples kept."""
        return self._cap

    def push(self, data: FloatArray, times: FloatArray) -> None:
        """Append ``data`` of shape (n_channels, n) with ``times`` of shape (n,)."""
        n = data.shape[1]
        if n == 0:
            return
        cap = self._cap
        if n > cap:
            data, times = data[:, -cap:], times[-cap:]
            self._n_total += n - cap
            n = cap
        end = self._end
        if end + n > 2 * cap:  # move the last `capacity` samples to the front
            self._data[:, :cap] = self._data[:, end - cap : end]
            self._times[:cap] = self._times[end - cap : end]
            end = cap
        self._data[:, end : end + n] = data
        self._times[end : end + n] = times
        self._end = end + n
        self._n_total += n

    def last(self, n: int, *, copy: bool = True) -> tuple[FloatArray, FloatArray]:
        """Return the last ``n`` samples and times (NaN where never filled).

        Parameters
        ----------
        n : int
            Number of samples, 1..``capacity``.
        copy : bool
            True: fresh arrays.  False: read-only views into the buffer, without the copy;
            they are valid until the next :meth:`push` (which may overwrite them).

        Returns
        -------
        data : array of shape (n_channels, n)
            The samples, oldest first.
        times : array of shape (n,)
            Their times.

        Raises
        ------
        ValueError
            If ``n`` is not within 1..``capacity``.
        """
        if not 0 < n <= self._cap:
            raise ValueError(f"Invalid value for 'n': expected 1..{self._cap}, got {n!r}.")
        end = self._end
        data, times = self._data[:, end - n : end], self._times[end - n : end]
        if copy:
            return data.copy(), times.copy()
        data.flags.writeable = False  # views: the caller must not write into the buffer
        times.flags.writeable = False
        return data, times


class FixedHopWindows:
    """Cut a stream into windows of ``window_n`` samples every ``hop_n`` samples.

    A window ends at every sample whose 1-based index is a multiple of ``hop_n`` (shifted by
    ``offset_s``) and once at least ``window_n`` samples have arrived, whatever the chunk
    sizes, so estimates computed on the windows are chunk-invariant.

    Parameters
    ----------
    n_channels : int
        Number of channels.
    sfreq : float
        Sampling rate in Hz.
    window_s, hop_s : float
        Window length and hop in seconds (rounded to whole samples).
    capacity_s : float or None
        Seconds of history to keep (at least ``window_s``); longer lets a caller read a
        longer window with :meth:`history` for adaptive window lengths.
    offset_s : float
        Phase of the window ends within a hop, in seconds (``0 <= offset_s < hop_s``): windows
        end at samples whose 1-based index minus ``round(offset_s * sfreq)`` is a multiple of
        ``hop_n``.  Estimators with different offsets do their work at different times, which
        spreads a real-time loop's load.

    Examples
    --------
    >>> import numpy as np
    >>> w = FixedHopWindows(1, sfreq=4.0, window_s=2.0, hop_s=1.0)
    >>> x = np.arange(12.0)[np.newaxis]
    >>> [t for _, t in w.push(x, np.arange(12) / 4.0)]
    [1.75, 2.75]
    """

    def __init__(
        self,
        n_channels: int,
        sfreq: float,
        window_s: float,
        hop_s: float,
        capacity_s: float | None = None,
        offset_s: float = 0.0,
    ) -> None:
        sfreq = check_positive("sfreq", sfreq)
        self.window_n = max(1, int(round(check_positive("window_s", window_s) * sfreq)))
        self.hop_n = max(1, int(round(check_positive("hop_s", hop_s) * sfreq)))
        if not 0.0 <= offset_s < hop_s:
            raise ValueError(
                f"Invalid value for 'offset_s': expected 0 <= offset_s < hop_s ({hop_s!r} s), got {offset_s!r}."
            )
        #: windows end at samples whose 1-based index minus this is a multiple of ``hop_n``
        self.offset_n = int(round(offset_s * sfreq)) % self.hop_n
        cap = self.window_n if capacity_s is None else max(self.window_n, int(round(capacity_s * sfreq)))
        self._buf = RingBuffer(n_channels, cap)

    @property
    def n_total(self) -> int:
        """Samples pushed so far."""
        return self._buf.n_total

    def to_boundary(self) -> int:
        """Samples still to push until the next window end (1..``hop_n``)."""
        return self.hop_n - (self._buf.n_total - self.offset_n) % self.hop_n

    def history(self, n: int, *, copy: bool = True) -> tuple[FloatArray, FloatArray]:
        """Return the last ``n`` samples (up to the capacity) and their times.

        ``copy=False`` returns read-only views, valid until the next push (see
        :meth:`RingBuffer.last`).
        """
        return self._buf.last(min(n, self._buf.capacity), copy=copy)

    def push(self, data: FloatArray, times: FloatArray) -> list[tuple[FloatArray, float]]:
        """Add samples; return ``(window, t_end)`` for every window completed by them."""
        if data.shape[1] < self.to_boundary():  # no window end in the chunk: one push
            self._buf.push(data, times)
            return []
        # each window is copied at its end, before the next piece is pushed
        return [(self._buf.last(self.window_n)[0], t_end) for t_end in self._pieces(data, times)]

    def push_ends(self, data: FloatArray, times: FloatArray) -> list[float]:
        """Add samples; return the end time of every window completed by them.

        :meth:`push` without copies of the windows, for a caller that reads its window (or a
        longer history) itself: push up to the next window end (:meth:`to_boundary`
        samples), then read it with :meth:`history` (``copy=False``: a view).

        Parameters
        ----------
        data : array of shape (n_channels, n)
            The samples.
        times : array of shape (n,)
            Their times.

        Returns
        -------
        t_ends : list of float
            Time of the last sample of each window completed, in order.
        """
        if data.shape[1] < self.to_boundary():  # no window end in the chunk: one push
            self._buf.push(data, times)
            return []
        return list(self._pieces(data, times))

    def _pieces(self, data: FloatArray, times: FloatArray) -> Iterator[float]:
        """Push ``data`` up to each window end in turn and yield that end's time.

        At each yield the buffer ends with the completed window (read it before resuming).
        """
        n = data.shape[1]
        buf, hop_n, window_n, offset_n = self._buf, self.hop_n, self.window_n, self.offset_n
        start = 0
        while start < n:
            stop = min(n, start + self.to_boundary())
            buf.push(data[:, start:stop], times[start:stop])
            start = stop
            total = buf.n_total
            if (total - offset_n) % hop_n == 0 and total >= window_n:
                yield float(buf.last(1, copy=False)[1][0])
