"""Session clocks: monotonic for live sessions, manual for tests and replay."""

from __future__ import annotations

import time

__all__ = ["ManualClock", "MonotonicClock", "ScaledClock"]


class MonotonicClock:
    """Seconds since construction, from :func:`time.monotonic` (never jumps back)."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def now(self) -> float:
        """Return seconds since the clock was created (or restarted)."""
        return time.monotonic() - self._t0

    def restart(self) -> None:
        """Make now 0 again: call it right before the source starts, after slow set-up."""
        self._t0 = time.monotonic()


class ScaledClock:
    """Monotonic time run ``speed`` times faster than real time (simulated and replayed sources).

    Parameters
    ----------
    speed : float
        Session seconds per wall-clock second, > 0.
    """

    def __init__(self, speed: float = 1.0) -> None:
        if not (speed > 0 and speed != float("inf")):
            raise ValueError(
                f"Invalid value for 'speed': expected a finite factor > 0, got {speed!r}. "
                "Use 1 for real time, 10 for ten times faster."
            )
        self._speed = float(speed)
        self._t0 = time.monotonic()

    @property
    def speed(self) -> float:
        """Session seconds per wall-clock second."""
        return self._speed

    def now(self) -> float:
        """Return scaled seconds since the clock was created (or restarted)."""
        return (time.monotonic() - self._t0) * self._speed

    def restart(self) -> None:
        """Make now 0 again: call it right before the source starts, after slow set-up."""
        self._t0 = time.monotonic()


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
