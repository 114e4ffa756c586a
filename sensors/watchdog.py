"""Stall detection and reconnect back-off for live sources, driven by the caller's clock.

A device driver does not always say when the link drops: BrainFlow's native Muse driver has no
disconnect callback, and an LSL inlet simply stops receiving.  :class:`Watchdog` therefore
infers the loss from the data: when no new sample has arrived for ``stall_s`` seconds of
*session* time (the ``now`` the caller passes in), the status flips to
:attr:`~adaptive.types.SourceStatus.SIGNAL_LOST` and reconnect attempts become due with
exponential back-off (1, 2, 4, ... s, capped).  As soon as samples arrive again the status
returns to :attr:`~adaptive.types.SourceStatus.STREAMING`.

The watchdog itself performs no I/O, reads no clock and starts no thread: the source asks
:meth:`Watchdog.reconnect_due` and carries out the attempt its own way (synchronously or in
a worker thread), then reports it with :meth:`Watchdog.record_attempt`.  This keeps it usable
by any source and testable with :class:`~sensors.clocks.ManualClock`, without sleeping.

Examples
--------
>>> wd = Watchdog(WatchdogConfig(stall_s=3.0), name="demo")
>>> wd.arm(0.0)
>>> wd.update(1.0, n_new=12).value
'streaming'
>>> wd.update(4.5, n_new=0).value       # 3.5 s without samples
'signal_lost'
>>> wd.reconnect_due(4.5), wd.record_attempt(4.5)   # first attempt at once, next in 1 s
(True, 1.0)
>>> wd.reconnect_due(5.0)
False
>>> wd.update(5.2, n_new=3).value
'streaming'
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from adaptive.types import SourceStatus

__all__ = ["Watchdog", "WatchdogConfig"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WatchdogConfig:
    """How long a silence means a lost signal, and how reconnects back off.

    Parameters
    ----------
    stall_s : float
        Seconds of session time without a new sample after which the signal is declared lost.
        Muse packets arrive about every 47 ms (12 EEG samples at 256 Hz), so 3 s is dozens of
        missed packets, not jitter.
    backoff_s : float
        Delay between the first and the second reconnect attempt.  The first attempt is due
        as soon as the loss is detected.
    backoff_factor : float
        Each further delay is the previous one times this factor (>= 1).
    backoff_max_s : float
        Upper bound of the delay between two attempts.
    reconnect : bool
        If False the watchdog only reports the loss and never asks for a reconnect (e.g. a
        playback file that reached its end).
    """

    stall_s: float = 3.0
    backoff_s: float = 1.0
    backoff_factor: float = 2.0
    backoff_max_s: float = 30.0
    reconnect: bool = True

    def __post_init__(self) -> None:
        for name in ("stall_s", "backoff_s", "backoff_max_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(
                    f"Invalid value for {name!r}: expected a positive number of seconds, got {value!r}."
                )
        if not (math.isfinite(self.backoff_factor) and self.backoff_factor >= 1):
            raise ValueError(
                f"Invalid value for 'backoff_factor': expected a number >= 1, got {self.backoff_factor!r}. "
                "Use 2 to double the delay after each failed attempt."
            )
        if self.backoff_max_s < self.backoff_s:
            raise ValueError(
                f"Invalid value for 'backoff_max_s': expected at least backoff_s={self.backoff_s!r}, "
                f"got {self.backoff_max_s!r}."
            )

    def delay_after(self, attempt: int) -> float:
        """Return the delay in seconds after reconnect attempt number ``attempt`` (0-based)."""
        if attempt < 0:
            raise ValueError(f"Invalid value for 'attempt': expected a count >= 0, got {attempt!r}.")
        # Compare exponents instead of computing factor**attempt, which overflows for long outages.
        if self.backoff_factor > 1 and attempt * math.log(self.backoff_factor) >= math.log(
            self.backoff_max_s / self.backoff_s
        ):
            return float(self.backoff_max_s)
        return float(min(self.backoff_s * self.backoff_factor**attempt, self.backoff_max_s))


class Watchdog:
    """Infer a lost signal from silence and schedule reconnect attempts with back-off.

    Parameters
    ----------
    config : WatchdogConfig
        Stall time and back-off schedule.
    name : str
        Name of the watched source, used in log messages.

    Notes
    -----
    State changes are logged: the loss at WARNING, the recovery at INFO.  All times are
    session seconds supplied by the caller; nothing here reads a clock.
    """

    def __init__(self, config: WatchdogConfig | None = None, name: str = "source") -> None:
        self._config = config if config is not None else WatchdogConfig()
        self._name = str(name)
        self._status = SourceStatus.IDLE
        self._last_sample_at = math.nan
        self._lost_since = math.nan
        self._next_attempt_at = math.nan
        self._attempts = 0
        self._total_attempts = 0
        self._n_losses = 0

    # -- read-only state -------------------------------------------------------------------
    @property
    def config(self) -> WatchdogConfig:
        """The stall and back-off settings."""
        return self._config

    @property
    def status(self) -> SourceStatus:
        """IDLE before :meth:`arm`, then STREAMING or SIGNAL_LOST, STOPPED after :meth:`disarm`."""
        return self._status

    @property
    def last_sample_at(self) -> float:
        """Session time of the last update that brought samples (or of :meth:`arm`)."""
        return self._last_sample_at

    @property
    def lost_since(self) -> float:
        """Session time at which the current loss was detected, NaN while streaming."""
        return self._lost_since

    @property
    def next_attempt_at(self) -> float:
        """Session time at which the next reconnect attempt is due, NaN if none is scheduled."""
        return self._next_attempt_at

    @property
    def attempts(self) -> int:
        """Reconnect attempts made during the current loss (0 while streaming)."""
        return self._attempts

    @property
    def total_attempts(self) -> int:
        """Reconnect attempts made since construction."""
        return self._total_attempts

    @property
    def n_losses(self) -> int:
        """How many times the signal was declared lost since construction."""
        return self._n_losses

    # -- transitions -----------------------------------------------------------------------
    def arm(self, now: float) -> None:
        """Start watching at session time ``now`` (the stream just started)."""
        self._status = SourceStatus.STREAMING
        self._last_sample_at = float(now)
        self._lost_since = math.nan
        self._next_attempt_at = math.nan
        self._attempts = 0

    def disarm(self) -> None:
        """Stop watching (the source was stopped); status becomes STOPPED."""
        self._status = SourceStatus.STOPPED
        self._next_attempt_at = math.nan

    def update(self, now: float, n_new: int) -> SourceStatus:
        """Feed the number of new samples seen at session time ``now``; return the status.

        Parameters
        ----------
        now : float
            Current session time in seconds.
        n_new : int
            Samples that arrived since the previous update (any stream of the source).

        Returns
        -------
        status : SourceStatus
            The status after this update.
        """
        if self._status not in (SourceStatus.STREAMING, SourceStatus.SIGNAL_LOST):
            return self._status
        now = float(now)
        if n_new > 0:
            if self._status is SourceStatus.SIGNAL_LOST:
                logger.info(
                    "%s: samples are back after %.1f s without data and %d reconnect attempt(s); "
                    "streaming again.",
                    self._name,
                    now - self._last_sample_at,
                    self._attempts,
                )
            self._status = SourceStatus.STREAMING
            self._last_sample_at = now
            self._lost_since = math.nan
            self._next_attempt_at = math.nan
            self._attempts = 0
        elif self._status is SourceStatus.STREAMING and now - self._last_sample_at >= self._config.stall_s:
            self._status = SourceStatus.SIGNAL_LOST
            self._lost_since = now
            self._n_losses += 1
            self._next_attempt_at = now if self._config.reconnect else math.nan
            logger.warning(
                "%s: no new samples for %.1f s (stall_s=%.1f): signal lost%s.",
                self._name,
                now - self._last_sample_at,
                self._config.stall_s,
                "; will try to reconnect" if self._config.reconnect else "",
            )
        return self._status

    def reconnect_due(self, now: float) -> bool:
        """Return True if the signal is lost and the next reconnect attempt is due at ``now``."""
        return (
            self._status is SourceStatus.SIGNAL_LOST
            and self._config.reconnect
            and not math.isnan(self._next_attempt_at)
            and float(now) >= self._next_attempt_at
        )

    def record_attempt(self, now: float, min_delay_s: float = 0.0) -> float:
        """Record a reconnect attempt made at ``now``; return the delay to the next one.

        Parameters
        ----------
        now : float
            Session time at which the attempt ended (or started, for an instant attempt).
        min_delay_s : float
            Lower bound of the delay, e.g. ``stall_s`` after an attempt that restarted the
            device, so that a fresh connection gets a full stall window to deliver.

        Returns
        -------
        delay : float
            ``max(min(backoff_s * backoff_factor**k, backoff_max_s), min_delay_s)`` for the k-th
            attempt (k = 0, 1, ...) of the current loss.  The next attempt is due at
            ``now + delay`` unless samples arrive before.
        """
        delay = max(self._config.delay_after(self._attempts), float(min_delay_s))
        self._attempts += 1
        self._total_attempts += 1
        self._next_attempt_at = float(now) + delay
        return delay
