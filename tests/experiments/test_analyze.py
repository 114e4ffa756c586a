"""``calmloop analyze``: many recordings replayed in parallel into one table."""

from __future__ import annotations

import argparse
import csv
import io
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from adaptive.errors import ConfigError
from experiments import cli_tools
from experiments.analyze import (
    COLUMNS,
    AnalysisRow,
    analyze_many,
    analyze_recording,
    format_table,
    parse_items,
)
from experiments.cohort import read_sidecar



@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory, record_short_session: Callable[..., Path]) -> Path:
    """A 120-s session of the simulated patient, recorded by ``calmloop session`` (about 4 s)."""
    return record_short_session(tmp_path_factory.mktemp("sessions"), "P001")


@pytest.fixture(scope="module")
def items(session: Path, test_data: Path, tmp_path_factory: pytest.TempPathFactory) -> list[list[Path]]:
    """Two calmloop sessions (one a 4-s fixture file), a file that is not a recording, a missing file."""
    formats = test_data / "formats"
    missing = tmp_path_factory.mktemp("none") / "missing.xdf"
    return [[session], [formats / "session_complete.xdf"], [formats / "not_a_recording.csv"], [missing]]


@pytest.fixture(scope="module")
def parallel(items: list[list[Path]]) -> tuple[list[AnalysisRow], str]:
    progress = io.StringIO()
    rows = analyze_many(items, jobs=2, progress=progress)
    return rows, progress.getvalue()


def test_parallel_replays_give_one_row_each_in_order(
    items: list[list[Path]], parallel: tuple[list[AnalysisRow], str]
) -> None:
    rows, progress = parallel
    assert [r.file for r in rows] == [str(it[0]) for it in items]
    lines = progress.splitlines()
    assert len(lines) == 4 and lines[-1].startswith("analyze: 4/4 done")
    r = rows[0]
    sidecar = read_sidecar(r.file)
    assert r.error == ""
    assert r.format == "calmloop-xdf"
    assert r.streams == "eeg 256 Hz, ppg 64 Hz, accel 52 Hz, gyro 52 Hz"
    assert r.duration_s == pytest.approx(120.0, abs=0.2)  # s: the protocol's duration
    assert r.replay_check == "identical"  # the replay decides exactly as the session did
    summary = sidecar["summary"]
    assert r.signal_lost_pct == pytest.approx(100 * summary["signal_lost_s"] / summary["duration_s"])
    assert math.isnan(r.time_to_ready_s) and summary["time_to_ready_s"] is None
    assert r.min_pace_brpm == pytest.approx(summary["min_pace_brpm"], nan_ok=True)
    # physiological ranges of the simulated compliant patient
    assert 50 < r.mean_hr_bpm < 90  # bpm
    assert 10 < r.mean_resp_rate_brpm < 16  # breaths/min: calibrating at its own rate (about 13.5)
    assert 0 <= r.mean_relaxation <= 1
    assert rows[1].error == "" and rows[1].replay_check == "identical"
    assert rows[1].duration_s == pytest.approx(4.0, abs=0.1)  # s: the fixture file is 4 s long
    assert "unsupported file" in rows[2].error and math.isnan(rows[2].duration_s)
    assert "does not exist" in rows[3].error
    table = format_table(rows)
    assert table.splitlines()[0].startswith("| file | format | duration s |")
    assert f"| {Path(r.file).name} | calmloop-xdf | {r.duration_s:.1f} |" in table
    assert "| session_complete.xdf | calmloop-xdf | 4.0 |" in table


def test_in_process_run_gives_the_same_row_and_writes_nothing(
    items: list[list[Path]], parallel: tuple[list[AnalysisRow], str], tmp_path: Path
) -> None:
    fixture = items[1][0]
    before = sorted(p.name for p in fixture.parent.iterdir())
    (row,) = analyze_many([[fixture]], jobs=1)
    assert sorted(p.name for p in fixture.parent.iterdir()) == before  # no session folder written
    other = parallel[0][1]
    fields = (
        "duration_s",
        "time_to_calm_s",
        "min_pace_brpm",
        "signal_lost_pct",
        "mean_hr_bpm",
        "mean_resp_rate_brpm",
        "mean_relaxation",
    )
    assert [getattr(row, f) for f in fields] == pytest.approx(
        [getattr(other, f) for f in fields], nan_ok=True
    )
    again = analyze_recording([fixture], sessions_dir=str(tmp_path / "replays"))
    assert again.error == ""
    (folder,) = (tmp_path / "replays").iterdir()
    assert folder.name.endswith("_FIXTURE01")
    assert read_sidecar(folder)["config"]["replay_of"] == [str(fixture)]


def test_brainflow_files_as_one_recording(shared_data: Path) -> None:
    files = sorted((shared_data / "muse2_brainflow").glob("*_from_streamer.csv"))
    (item,) = parse_items(["+".join(str(f) for f in files)])
    assert item == files
    row = analyze_recording(item)
    assert row.error == "" and row.format == "brainflow"
    assert set(row.streams.split(", ")) == {"eeg 256 Hz", "ppg 64 Hz", "accel 52 Hz", "gyro 52 Hz"}
    assert row.duration_s == pytest.approx(9.8, abs=0.1)  # s: the README's 10-s session
    assert row.replay_check == ""  # nothing recorded to compare with
    assert math.isnan(row.time_to_ready_s)  # 10 s is still calibration


def test_parse_items_never_splits_an_existing_path(tmp_path: Path) -> None:
    odd = tmp_path / "a+b.xdf"
    odd.write_text("x")
    assert parse_items([str(odd), "x.csv+y.csv", "z.xdf"]) == [
        [odd],
        [Path("x.csv"), Path("y.csv")],
        [Path("z.xdf")],
    ]


def test_cli_analyze_writes_csv_and_fails_when_a_row_failed(
    tmp_path: Path, test_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="calmloop")
    cli_tools.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "analyze",
            str(test_data / "formats" / "session_complete.xdf"),
            str(test_data / "formats" / "corrupt.xdf"),
            "--jobs",
            "1",
            "--out",
            str(tmp_path / "t.csv"),
        ]
    )
    out = io.StringIO()
    assert cli_tools.dispatch(args, out) == 1  # one file refused
    text = out.getvalue()
    assert text.startswith("calmloop analyze: 2 recordings") and "(1 refused)" in text
    assert "2/2 done" in capsys.readouterr().err
    rows = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert tuple(rows[0]) == COLUMNS
    assert rows[0]["error"] == "" and rows[0]["replay_check"] == "identical"
    assert rows[1]["error"] and rows[1]["duration_s"] == ""


def test_bad_calls() -> None:
    with pytest.raises(ConfigError, match="--jobs"):
        analyze_many([["x.xdf"]], jobs=0)
    with pytest.raises(ConfigError, match="FILES"):
        analyze_many([])
    assert math.isnan(AnalysisRow("x").mean_hr_bpm)
