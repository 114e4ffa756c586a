"""The calmloop command line, run in-process as a user would type it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from experiments.cli import main


def test_devices_lists_muse_channels_and_rates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    for name in ("simulated", "muse-2", "muse-s", "synthetic"):
        assert f"\n  {name}\n" in out
    assert "TP9, AF7, AF8, TP10" in out
    assert "256.0 Hz" in out and "52.0 Hz" in out and "64.0 Hz" in out
    assert "non-follower" in out  # simulated profiles are listed


def test_acquire_simulated_prints_live_figures(capsys: pytest.CaptureFixture[str]) -> None:
    # 6 simulated seconds at 50x real time: about 0.12 s of wall time.  How many interim lines
    # appear depends on wall-clock scheduling (a slow poll coalesces skipped intervals), so this
    # checks the final line and the summary; the line schedule is checked on a stepped clock below.
    assert main(["acquire", "--source", "simulated", "--duration", "6", "--speed", "50", "--interval", "2"]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith("t=")]
    assert lines and float(lines[-1].split()[1]) >= 6.0  # "t=    6.0 s ..."
    assert "eeg" in lines[-1] and "ppg" in lines[-1] and "accel" in lines[-1]
    summary = out.split("stream   nominal Hz")[1].splitlines()
    eeg = next(ln for ln in summary if ln.startswith("eeg")).split()
    assert float(eeg[1]) == 256.0
    assert abs(float(eeg[2]) - 256.0) < 256.0 * 0.02  # measured rate within 2 % of nominal
    assert int(eeg[3]) >= 5 * 256  # at least five seconds of samples
    assert int(eeg[4]) == 0  # the simulated patient has no gaps unless told to


class _SteppedClock:
    """Session clock that moves 0.25 s per reading: polls at known data times, no wall time."""

    def __init__(self) -> None:
        self.t = -0.25

    def restart(self) -> None:
        self.t = -0.25

    def now(self) -> float:
        self.t += 0.25
        return self.t


def test_acquire_writes_one_line_per_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from experiments import acquire as acq
    from sensors.simulated import SimulatedPatient

    monkeypatch.setattr(acq.time, "sleep", lambda s: None)
    clock = _SteppedClock()
    out = io.StringIO()
    summaries = acq.acquire(SimulatedPatient(seed=0), clock, 6.0, 2.0, out)
    times = [float(ln.split()[1]) for ln in out.getvalue().splitlines() if ln.startswith("t=")]
    assert times == [2.0, 4.0, 6.0]
    eeg = next(s for s in summaries if s.kind.value == "eeg")
    assert eeg.n_samples == 6 * 256 + 1  # samples at 0, 1/256, ..., 6 s


def test_muse_without_adapter_fails_fast_with_what_to_check(capsys: pytest.CaptureFixture[str]) -> None:
    from sensors.brainflow_source import bluetooth_adapters

    if bluetooth_adapters():
        pytest.skip("this machine has a Bluetooth adapter")
    import brainflow.board_shim  # noqa: F401 - imports are not part of "fast"
    import experiments.acquire  # noqa: F401

    t0 = time.monotonic()
    assert main(["acquire", "--source", "muse-2", "--duration", "2"]) == 2
    # fast = without waiting for a connection attempt (--connect-timeout, 15 s by default);
    # a healthy run takes well under a second, the bound leaves room for a loaded machine
    assert time.monotonic() - t0 < 8.0
    err = capsys.readouterr().err
    assert err.startswith("calmloop: error:")
    assert "Bluetooth" in err and "--mac" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["acquire", "--source", "playback"], "1 to 3 BrainFlow files"),
        (["acquire", "--source", "playback", "/nonexistent/default.csv"], "does not exist"),
        (["acquire", "--source", "simulated", "x.csv"], "FILE given with --source simulated"),
        (["acquire", "--source", "synthetic", "--speed", "5"], "--speed"),
        (["acquire", "--source", "simulated", "--profile", "sleepy"], "'--profile'"),
        (["acquire", "--duration", "0"], "'--duration'"),
    ],
)
def test_bad_options_give_one_clear_error(argv: list[str], match: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert match in capsys.readouterr().err


def test_session_records_and_replays_identically(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A short session on the simulated patient, recorded, then replayed with the same result."""
    proto = tmp_path / "short.toml"
    proto.write_text("[session]\nmax_duration_s = 150\n[pacing]\ncalibration_s = 45\nmatching_s = 20\n")
    argv = ["session", "--speed", "max", "--headless", "--protocol", str(proto), "--patient-id", "P017",
            "--out", str(tmp_path / "s"), "--mood-before", "6", "--mood-after", "4"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Session summary" in out and "protocol duration 150 s reached" in out
    assert "mood   6 -> 4  (-2, -33 %)" in out
    (folder,) = (tmp_path / "s").iterdir()
    assert folder.name.endswith("_P017") and oct(folder.stat().st_mode & 0o777) == "0o700"
    data = json.loads((folder / "session.json").read_text())
    assert data["patient_id"] == "P017" and data["outcomes"]["changes"][0]["change"] == -2
    assert any(e["event"].startswith("state:matching") for e in data["events"])
    assert main(["replay", str(folder), "--headless", "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "identical to the recorded run" in out


def test_session_refuses_a_name_as_patient_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["session", "--headless", "--patient-id", "Jane Doe", "--out", str(tmp_path)]) == 2
    assert "pseudonymous" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_compare_runs_lists_differences_in_time_order() -> None:
    from adaptive.types import Estimate, Metric
    from experiments.replay import compare_runs

    rec = [Estimate(Metric.HR_BPM, 60.0, 1.0, t) for t in (1.0, 2.0, 3.0, 9.0)]
    rec.append(Estimate(Metric.AROUSAL, float("nan"), 0.5, 2.0))
    same = [rec[4], *rec[:4]]  # another order, the same estimates (NaN == NaN here)
    assert compare_runs(rec, same, [], []) == []
    changed = [
        Estimate(Metric.HR_BPM, 60.5, 1.0, 3.0), rec[0], Estimate(Metric.IBI_MS, 1.0, 1.0, 1.0), rec[3],
    ]
    assert compare_runs(rec, changed, [], []) == [
        "ibi_ms at 1.000 s only in the replay",
        "arousal at 2.000 s only in the recording",
        "hr_bpm at 2.000 s only in the recording",
        "hr_bpm at 3.000 s: recorded 60.0, replayed 60.5",
    ]
    # the last second of the shorter run is not compared
    assert compare_runs(rec, [*rec[:3], rec[4]], [], []) == []  # 3.0 and 9.0: past the cut
