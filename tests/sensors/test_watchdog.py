"""Watchdog: stall detection and reconnect back-off on caller-supplied session time."""

from __future__ import annotations

import logging
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adaptive.types import SourceStatus
from sensors.watchdog import Watchdog, WatchdogConfig

S = SourceStatus


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"stall_s": 0.0}, "stall_s"),
        ({"stall_s": math.nan}, "stall_s"),
        ({"backoff_s": -1.0}, "backoff_s"),
        ({"backoff_factor": 0.5}, "backoff_factor"),
        ({"backoff_s": 10.0, "backoff_max_s": 5.0}, "backoff_max_s"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        WatchdogConfig(**kwargs)


def test_backoff_doubles_and_caps() -> None:
    cfg = WatchdogConfig()
    assert [cfg.delay_after(k) for k in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert cfg.delay_after(10_000) == 30  # no overflow after a very long outage
    assert WatchdogConfig(backoff_factor=1.0).delay_after(50) == 1.0
    with pytest.raises(ValueError, match="attempt"):
        cfg.delay_after(-1)


def test_idle_until_armed_and_stopped_after_disarm() -> None:
    wd = Watchdog()
    assert wd.status is S.IDLE
    assert wd.update(100.0, 0) is S.IDLE
    assert not wd.reconnect_due(100.0)
    wd.arm(0.0)
    assert wd.status is S.STREAMING
    wd.disarm()
    assert wd.update(100.0, 0) is S.STOPPED
    assert not wd.reconnect_due(100.0)


def test_stall_boundary() -> None:
    wd = Watchdog(WatchdogConfig(stall_s=3.0))
    wd.arm(10.0)
    assert wd.update(12.75, 0) is S.STREAMING  # 2.75 s of silence
    assert wd.update(13.0, 0) is S.SIGNAL_LOST  # exactly stall_s
    assert wd.lost_since == 13.0
    assert wd.n_losses == 1


def test_samples_postpone_the_stall() -> None:
    wd = Watchdog(WatchdogConfig(stall_s=3.0))
    wd.arm(0.0)
    for t in (1.0, 3.5, 6.0, 8.5):
        assert wd.update(t, 5) is S.STREAMING
    assert wd.update(11.0, 0) is S.STREAMING
    assert wd.update(11.5, 0) is S.SIGNAL_LOST
    assert wd.last_sample_at == 8.5


def test_reconnect_schedule_and_recovery(caplog: pytest.LogCaptureFixture) -> None:
    wd = Watchdog(WatchdogConfig(stall_s=3.0), name="headband")
    wd.arm(0.0)
    caplog.set_level(logging.INFO, logger="sensors.watchdog")
    attempts: list[float] = []
    t = 0.0
    while t <= 70.0:
        wd.update(t, 0)
        if wd.reconnect_due(t):
            attempts.append(t)
            wd.record_attempt(t)
        t += 0.25
    # Lost at 3.0, first attempt at once, then after 1, 2, 4, 8, 16, 30, 30 s.
    assert attempts == [3.0, 4.0, 6.0, 10.0, 18.0, 34.0, 64.0]
    assert wd.attempts == 7
    lost = [r for r in caplog.records if "signal lost" in r.getMessage()]
    assert len(lost) == 1 and lost[0].levelno == logging.WARNING
    assert "headband" in lost[0].getMessage()

    assert wd.update(70.25, 12) is S.STREAMING
    back = [r for r in caplog.records if "back" in r.getMessage()]
    assert len(back) == 1 and back[0].levelno == logging.INFO
    assert "7 reconnect attempt" in back[0].getMessage()
    assert wd.attempts == 0 and wd.total_attempts == 7
    assert math.isnan(wd.next_attempt_at) and math.isnan(wd.lost_since)

    # A second loss starts the back-off from the beginning again.
    wd.update(73.25, 0)
    assert wd.status is S.SIGNAL_LOST and wd.reconnect_due(73.25)
    assert wd.record_attempt(73.25) == 1.0
    assert wd.n_losses == 2


def test_no_reconnect_when_disabled(caplog: pytest.LogCaptureFixture) -> None:
    wd = Watchdog(WatchdogConfig(stall_s=1.0, reconnect=False), name="file")
    wd.arm(0.0)
    caplog.set_level(logging.WARNING, logger="sensors.watchdog")
    assert wd.update(1.0, 0) is S.SIGNAL_LOST
    assert not any(wd.reconnect_due(t) for t in (1.0, 10.0, 1000.0))
    assert "reconnect" not in caplog.records[0].getMessage()


def test_min_delay_gives_a_fresh_connection_time() -> None:
    wd = Watchdog(WatchdogConfig(stall_s=3.0))
    wd.arm(0.0)
    wd.update(3.0, 0)
    assert wd.record_attempt(3.0, min_delay_s=3.0) == 3.0  # back-off alone would say 1 s
    assert not wd.reconnect_due(5.0)
    assert wd.reconnect_due(6.0)
    assert wd.record_attempt(6.0, min_delay_s=3.0) == 3.0  # 2 s < 3 s
    assert wd.record_attempt(9.0, min_delay_s=3.0) == 4.0  # 4 s > 3 s


@given(
    steps=st.lists(
        st.tuples(st.floats(0.0, 2.0, allow_nan=False), st.integers(0, 3)), min_size=1, max_size=60
    ),
    stall_s=st.floats(0.1, 5.0),
)
def test_status_matches_silence_duration(steps: list[tuple[float, int]], stall_s: float) -> None:
    """Lost iff no sample for >= stall_s since the last one, and back with the next sample."""
    wd = Watchdog(WatchdogConfig(stall_s=stall_s))
    wd.arm(0.0)
    t, last, lost = 0.0, 0.0, False
    for dt, n in steps:
        t += dt
        status = wd.update(t, n)
        if n > 0:
            last, lost = t, False
        elif t - last >= stall_s:
            lost = True
        assert status is (S.SIGNAL_LOST if lost else S.STREAMING)
