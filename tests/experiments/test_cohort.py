"""``calmloop outcomes``: the cohort table over many session folders."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import statistics
from pathlib import Path

import pytest

from adaptive.errors import ConfigError
from experiments import cli_tools
from experiments.cli import main
from experiments.cohort import (
    find_sessions,
    format_cohort,
    read_cohort,
    read_sidecar,
    session_outcome,
    summarise_cohort,
    write_sessions_csv,
)


def _sidecar(
    folder: Path,
    pid: str,
    *,
    before: dict | None = None,
    after: dict | None = None,
    ready_s: float | None = None,
    replay: bool = False,
    complete: bool = True,
) -> Path:
    """A ``session.json`` laid out as ``SessionRecorder`` and ``calmloop session`` write it."""
    folder.mkdir(parents=True)
    blank = {"mood": None, "pain": None, "phq9_items": None, "phq9": None}
    data = {
        "format_version": 1,
        "patient_id": pid,
        "session_start_utc": "2025-03-04T09:30:00+00:00",
        "config": {"protocol": {"name": "predose"}, **({"replay_of": ["x.xdf"]} if replay else {})},
        "complete": complete,
        "summary": {
            "duration_s": 900.0,
            "time_to_calm_s": None if ready_s is None else ready_s - 60,
            "time_to_ready_s": ready_s,
        },
    }
    if before is not None or after is not None:
        data["outcomes"] = {"before": {**blank, **(before or {})}, "after": {**blank, **(after or {})}}
    (folder / "session.json").write_text(json.dumps(data))
    return folder


@pytest.fixture()
def cohort_dir(tmp_path: Path) -> Path:
    root = tmp_path / "sessions"
    _sidecar(
        root / "a" / "20250304T093000Z_P001",
        "P001",
        before={"mood": 6, "pain": 4},
        after={"mood": 4, "pain": 2},
        ready_s=600.0,
    )
    _sidecar(
        root / "a" / "20250311T093000Z_P001",
        "P001",
        before={"mood": 8, "pain": 0},
        after={"mood": 5, "pain": 1},
        ready_s=900.0,
    )
    _sidecar(
        root / "20250305T093000Z_P002",
        "P002",
        before={"mood": 5, "phq9": 14},
        after={"mood": 5, "phq9": 10},
        ready_s=None,
        complete=False,
    )
    _sidecar(root / "20250306T093000Z_P003", "P003", ready_s=720.0)  # no outcomes asked
    _sidecar(
        root / "20250306T100000Z_P003", "P003", before={"mood": 7}, after={}, ready_s=None
    )  # after missing
    _sidecar(
        root / "replays" / "20250307T093000Z_P001",
        "P001",
        before={"mood": 1},
        after={"mood": 9},
        ready_s=60.0,
        replay=True,
    )
    bad = root / "20250308T093000Z_P004"
    bad.mkdir()
    (bad / "session.json").write_text("{not json")
    return root


def test_cohort_means_exclude_missing_measures_and_say_n(cohort_dir: Path) -> None:
    summary = read_cohort(cohort_dir)
    assert len(summary.sessions) == 5  # the replay and the unreadable file are left out
    assert summary.n_patients == 3
    assert summary.n_incomplete == 1
    assert len(summary.skipped) == 2
    by = {m.measure: m for m in summary.measures}
    mood, pain, phq9 = by["mood"], by["pain"], by["phq9"]
    assert mood.n == 3  # P001 twice and P002; P003's sessions lack a before or an after
    assert mood.mean_before == pytest.approx((6 + 8 + 5) / 3)
    assert mood.mean_change == pytest.approx((-2 - 3 + 0) / 3)
    assert mood.sd_change == pytest.approx(statistics.stdev([-2, -3, 0]))
    assert mood.mean_percent_change == pytest.approx((-100 * 2 / 6 - 100 * 3 / 8 + 0) / 3)
    assert pain.n == 2 and pain.mean_change == pytest.approx(-0.5)
    assert pain.n_percent == 1 and pain.mean_percent_change == pytest.approx(
        -50.0
    )  # before 0: no percent change
    assert phq9.n == 1 and phq9.mean_change == -4 and math.isnan(phq9.sd_change)
    # readiness: 600, 900 and 720 s
    assert summary.n_ready == 3
    assert summary.median_time_to_ready_s == 720.0


def test_markdown_table(cohort_dir: Path) -> None:
    text = format_cohort(read_cohort(cohort_dir), per_session=True)
    lines = text.splitlines()
    assert lines[0] == (
        "5 sessions, 3 patients; ready for dosing in 3 of 5 sessions, median time to ready 12:00 "
        "(min:s); 1 incomplete recording"
    )
    assert "| mood (0-10) | 3 | 6.33 | 4.67 | -1.67 ± 1.53 | -23.6 | 3 |" in lines
    assert "| pain (0-10) | 2 | 2.00 | 1.50 | -0.50 ± 2.12 | -50.0 | 1 |" in lines
    assert "| PHQ-9 (0-27) | 1 | 14.00 | 10.00 | -4.00 | -28.6 | 1 |" in lines
    assert any(ln.startswith("| 20250306T093000Z_P003 | P003 | predose | yes | 12:00 |") for ln in lines)
    assert any("a replay" in ln for ln in lines) and any("unreadable" in ln for ln in lines)


def test_replays_are_counted_when_asked(cohort_dir: Path) -> None:
    summary = read_cohort(cohort_dir, include_replays=True)
    assert len(summary.sessions) == 6 and summary.n_ready == 4


def test_csv_has_one_row_per_session(cohort_dir: Path, tmp_path: Path) -> None:
    path = write_sessions_csv(read_cohort(cohort_dir), tmp_path / "out" / "cohort.csv")
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 5
    first = next(r for r in rows if r["folder"].endswith("20250304T093000Z_P001"))
    assert first["mood_change"] == "-2.0" and float(first["mood_percent_change"]) == pytest.approx(-100 / 3)
    assert first["phq9_before"] == "" and first["ready_for_dosing"] == "true"
    p2 = next(r for r in rows if r["patient_id"] == "P002")
    assert p2["complete"] == "false" and p2["time_to_ready_s"] == ""


def test_cli_outcomes_prints_the_table_and_writes_csv(cohort_dir: Path, tmp_path: Path) -> None:
    parser = argparse.ArgumentParser(prog="calmloop")
    cli_tools.register(parser.add_subparsers(dest="command"))
    out = io.StringIO()
    args = parser.parse_args(["outcomes", str(cohort_dir), "--csv", str(tmp_path / "c.csv")])
    assert cli_tools.dispatch(args, out) == 0
    text = out.getvalue()
    assert text.startswith(f"calmloop outcomes: {cohort_dir}\n")
    assert "| measure | n | before (mean) |" in text and f"written to {tmp_path / 'c.csv'}" in text
    empty = tmp_path / "empty"
    empty.mkdir()
    out = io.StringIO()
    assert cli_tools.dispatch(parser.parse_args(["outcomes", str(empty)]), out) == 1
    assert "no session folders" in out.getvalue()
    with pytest.raises(ConfigError, match="not a folder"):
        find_sessions(tmp_path / "c.csv")


def test_reads_what_calmloop_session_writes(tmp_path: Path) -> None:
    """One real (60-s) session: the recorder's sidecar gives the same row as the summary printed."""
    proto = tmp_path / "short.toml"
    proto.write_text("[session]\nmax_duration_s = 60\n[pacing]\ncalibration_s = 45\nmatching_s = 20\n")
    argv = [
        "session",
        "--speed",
        "max",
        "--headless",
        "--protocol",
        str(proto),
        "--patient-id",
        "P009",
        "--out",
        str(tmp_path / "s"),
        "--mood-before",
        "5",
        "--mood-after",
        "4",
    ]
    assert main(argv) == 0
    (folder,) = find_sessions(tmp_path / "s")
    row = session_outcome(folder)
    assert row.patient_id == "P009" and row.complete and not row.replay and row.protocol == "predose"
    assert row.change("mood") == -1.0 and row.percent_change("mood") == pytest.approx(-20.0)
    assert math.isnan(row.change("pain"))  # not entered
    assert not row.ready and row.duration_s == pytest.approx(60.0, abs=1.0)
    summary = summarise_cohort([row])
    assert summary.measures[0].n == 1 and summary.measures[1].n == 0
    assert read_sidecar(folder / "session.xdf")["patient_id"] == "P009"
