"""Shortened LSL load test: one simulated minute of every outlet at 10x real time (6 s of wall time).

The full run (10 simulated minutes, 60 s of wall time) is ``python -m experiments.bench.lsl``.
Loopback only (sensors/lsl_api.cfg, applied by the benchmark and by tests/conftest.py); the
consumer is a child process that stops by itself.  No assertion on speed: latencies are
reported, losses are checked.
"""

from __future__ import annotations

import math

import pytest

pytest.importorskip("pylsl")

from experiments.bench.lsl import KINDS, run, to_markdown  # noqa: E402


@pytest.mark.lsl
def test_every_outlet_at_10x_for_one_minute_loses_nothing() -> None:
    result = run(speed=10.0, minutes=1.0)
    assert result["consumer_complete"], result
    for kind in KINDS:
        s = result["streams"][kind]
        assert s["pushed"] > 0, kind
        assert (s["received"], s["lost"], s["duplicated"]) == (s["pushed"], 0, 0), (kind, s)
        assert math.isfinite(s["latency_ms"]["median"]) and math.isfinite(s["latency_ms"]["p99"])
    # one minute of a Muse: 256 Hz EEG, 64 Hz PPG, 52 Hz motion; a decision every 0.5 s
    assert [result["streams"][k]["pushed"] for k in ("eeg", "ppg", "accel", "gyro", "pacer")] == [
        15360, 3840, 3120, 3120, 120]
    assert result["ramp_ok"]
    report = to_markdown(result)
    assert "| eeg | 15360 | 15360 | 0 | 0 |" in report
