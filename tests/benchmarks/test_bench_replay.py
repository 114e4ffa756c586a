"""Shortened replay benchmark: record 40 s of a simulated session, replay it, compare.

No assertion here is about speed: the figures are the benchmark's (``python -m
experiments.bench.replay``); this checks that the benchmark measures what it says.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.bench.replay import main, run, to_markdown


def test_replay_benchmark_records_replays_and_compares(tmp_path: Path) -> None:
    r = run(40.0 / 60.0, seed=2, folder=tmp_path)
    # the replay covers the whole recording: 40 s of data, to one EEG sample period
    assert r["data_s"] == pytest.approx(40.0, abs=0.5)
    assert r["identical"] is True
    assert r["n_decisions"] == 81  # one per 0.5 s of data from 0 to 40 s
    assert r["n_estimates"] > 0
    rp = r["replay"]
    # the whole command includes reading the file and processing it
    assert rp["command_wall_s"] >= rp["loop_wall_s"] + rp["read_wall_s"] - 0.05
    assert rp["x_command_cpu"] == pytest.approx(r["data_s"] / rp["command_cpu_s"])
    assert (tmp_path / "recorded").is_dir() and (tmp_path / "replayed").is_dir()
    text = to_markdown(r)
    assert "| whole command |" in text and "Identical to the recorded run: yes" in text


def test_replay_benchmark_cli_writes_report_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "replay.md"
    assert main(["--minutes", "0.25", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == capsys.readouterr().out
    data = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert data["identical"] is True and data["data_s"] == pytest.approx(15.0, abs=0.5)


def test_replay_benchmark_refuses_a_bad_length() -> None:
    with pytest.raises(ValueError, match="minutes"):
        run(0.0)
