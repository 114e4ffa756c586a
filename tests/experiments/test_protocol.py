"""Protocol files: the shipped default loads; invalid files name the key and allowed values."""

from __future__ import annotations

from pathlib import Path

import pytest

from adaptive.errors import ConfigError
from experiments.protocol import load_protocol


def test_default_protocol_loads() -> None:
    p = load_protocol()
    assert p.name == "predose"
    assert p.pacing.target_brpm == 6.0 and p.pacing.calibration_s == 90
    assert p.pacing.hr_high_bpm == 130 and p.pacing.hr_low_bpm == 45
    assert p.ask == ("mood", "pain")
    assert p.to_dict()["pacing"]["inhale_fraction"] == 0.4


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[pacing]\ntarget_brpm = 12\n", "target_brpm"),
        ("[pacing]\ntarget_bpm = 6\n", "target_bpm"),
        ("[sesion]\nname='x'\n", r"\[session\], \[outcomes\], \[pacing\]"),
        ("[session]\nmax_duration_s = -5\n", "session.max_duration_s"),
        ("[session]\ncolour = 'blue'\n", "after_ready_s"),
        ("[outcomes]\nask = ['mood', 'anxiety']\n", "'phq9'"),
        ("[pacing\n", "not valid TOML"),
    ],
)
def test_invalid_protocols_name_the_key(tmp_path: Path, text: str, match: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_protocol(f)


def test_missing_protocol_file() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_protocol("/nonexistent/protocol.toml")
