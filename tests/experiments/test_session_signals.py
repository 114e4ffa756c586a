"""SIGTERM ends a running session cleanly: the recording is closed and says why.

A supervisor or a machine shutting down sends SIGTERM.  The session ends at the end of the tick
in progress (never inside one), the XDF gets its footers and ``session.json`` records the
reason.  With the patient window (SDL's dummy video driver here) the signal must end the
session too, not become a window-close request waiting for a confirmation on screen.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pyxdf

ROOT = Path(__file__).resolve().parents[2]
START_S = 60.0  # bound for the child to start recording (imports, window, first flush)
END_S = 60.0  # bound for it to end after the signal (a healthy one takes well under a second)


def _wait_for_recording(out: Path, proc: subprocess.Popen[str]) -> Path:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        found = list(out.glob("*/session.xdf"))
        if found and found[0].stat().st_size > 100_000:  # streams are being written
            return found[0].parent
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"no recording under {out} within {START_S} s")


@pytest.mark.slow
@pytest.mark.parametrize("headless", [True, False], ids=["headless", "window"])
def test_sigterm_ends_the_session_and_closes_the_recording(tmp_path: Path, headless: bool) -> None:
    out = tmp_path / "sessions"
    argv = [sys.executable, "-m", "experiments.cli", "session", "--speed", "20", "--patient-id", "P-TERM",
            "--out", str(out)] + (["--headless"] if headless else [])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    env.pop("SDL_NO_SIGNAL_HANDLERS", None)  # the window must set it itself
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        folder = _wait_for_recording(out, proc)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=END_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, stderr[-2000:]
    assert "terminated by the system (SIGTERM)" in stdout
    meta = json.loads((folder / "session.json").read_text())
    assert meta["complete"] is True
    assert meta["end_reason"] == "terminated by the system (SIGTERM)"
    streams, _ = pyxdf.load_xdf(str(folder / "session.xdf"), dejitter_timestamps=False)
    eeg = next(s for s in streams if s["info"]["name"][0] == "calmloop-eeg")
    assert "footer" in eeg  # closed, not cut off
    assert float(eeg["time_stamps"][-1]) > 1.0
