"""Session clocks."""

from __future__ import annotations

import pytest

from sensors.clocks import ManualClock, MonotonicClock


def test_manual_clock_moves_only_when_told() -> None:
    c = ManualClock(1.5)
    assert c.now() == 1.5
    assert c.advance(0.25) == 1.75 == c.now()
    with pytest.raises(ValueError, match="'dt'"):
        c.advance(-1.0)


def test_monotonic_clock_starts_near_zero_and_never_goes_back() -> None:
    c = MonotonicClock()
    a, b = c.now(), c.now()
    assert 0.0 <= a <= b < 5.0


def test_scaled_clock_validates_speed() -> None:
    from sensors.clocks import ScaledClock

    assert ScaledClock(10.0).speed == 10.0
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="'speed'"):
            ScaledClock(bad)


def test_restart_makes_now_zero_again() -> None:
    from sensors.clocks import ScaledClock

    for c in (MonotonicClock(), ScaledClock(10.0)):  # < 5 s of session time = 0.5 s of wall at 10x
        c.restart()
        assert 0.0 <= c.now() < 5.0
