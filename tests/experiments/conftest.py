"""Fixtures shared by the command-line tests: short recorded sessions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from experiments.cli import main

#: 120 s of session with a short calibration and matching, so the states after them appear.
SHORT_PROTOCOL = "[session]\nmax_duration_s = 120\n[pacing]\ncalibration_s = 45\nmatching_s = 20\n"

RecordSession = Callable[..., Path]


@pytest.fixture(scope="session")
def record_short_session() -> RecordSession:
    """Return ``record(root, patient_id, *extra_args)``: a 120-s simulated session recorded by
    ``calmloop session --speed max --headless`` under ``root``; returns its folder (about 4 s)."""

    def record(root: Path, patient_id: str, *extra: str) -> Path:
        proto = root / "short.toml"
        proto.write_text(SHORT_PROTOCOL)
        argv = ["session", "--speed", "max", "--headless", "--protocol", str(proto),
                "--patient-id", patient_id, "--out", str(root / "s"), *extra]
        assert main(argv) == 0
        (folder,) = (root / "s").iterdir()
        return folder

    return record
