"""Session clocks: monotonic for live sessions, manual for tests and replay."""

from __future__ import annotations

import time

__all__ = ["MonotonicClock", "ManualClock"]


class MonotonicClock:
    """Seconds since construction, from :func:`time.monotonic` (never jumps back)."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def now(self) -> float:
        """Return seconds since the clock was created."""
        return time.monotonic() - self._t0


class ManualClock:
    """A clock that moves only when told to; drives tests and replay without sleeping.

    Parameters
    ----------
    start : float
        Initial session time in seconds.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._t = float(start)

    def now(self) -> float:
        """Return the current time."""
        return self._t

    def advance(self, dt: float) -> float:
        """Move time forward by ``dt`` seconds and return the new time."""
        if not dt >= 0:
            raise ValueError(f"Invalid value for 'dt': expected a non-negative step in seconds, got {dt!r}.")
        self._t += float(dt)
        return self._t
