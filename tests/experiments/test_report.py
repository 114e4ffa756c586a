"""``calmloop report``: a self-contained HTML page with the session's plots and summary."""

from __future__ import annotations

import argparse
import base64
import io
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from adaptive.controller import PacingDecision, PacingState
from adaptive.errors import ConfigError
from adaptive.records import Marker, RecordedStream, Recording
from adaptive.types import Estimate, Metric, SignalKind, StreamSpec
from experiments import cli_tools
from experiments.report import STATE_COLOURS, plot_session, report_html, session_series, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory, record_short_session: Callable[..., Path]) -> Path:
    """A 120-s session of the simulated patient with mood and pain, recorded by ``calmloop session``."""
    return record_short_session(tmp_path_factory.mktemp("sessions"), "P017", "--mood-before", "6", "--mood-after", "4", "--pain-before", "5", "--pain-after", "5")


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def _synthetic() -> Recording:
    """Two minutes of a session that gets calm, ready, then raises an alert (every 0.5 s)."""
    t = np.arange(0.0, 120.0, 0.5)
    states = [
        PacingState.CALIBRATING
        if x < 30
        else PacingState.SLOWING
        if x < 60
        else PacingState.CALM
        if x < 80
        else PacingState.READY_FOR_DOSING
        if x < 100
        else PacingState.ALERT
        for x in t
    ]
    decisions = tuple(
        PacingDecision(
            float(x),
            s,
            6.0 if x >= 30 else float("nan"),
            0.4,
            s is PacingState.READY_FOR_DOSING,
            "",
            pacer_visible=x >= 30,
        )
        for x, s in zip(t, states)
    )
    estimates = tuple(
        e
        for x in t
        for e in (
            Estimate(Metric.RESP_RATE_BRPM, 12.0 - x / 20.0, 0.9 if x > 10 else 0.2, float(x)),
            Estimate(Metric.HR_BPM, 70.0, 0.9, float(x)),
            Estimate(Metric.AROUSAL, -x / 120.0, 0.9, float(x)),
            Estimate(Metric.EEG_RELAXATION, 0.6, 0.9, float(x)),
        )
    )
    markers = (
        Marker(0.0, "session:start"),
        Marker(80.0, "state:ready_for_dosing reason:calm for 20 s"),
        Marker(80.0, "ready_for_dosing"),
        Marker(100.0, "alert:hr_high 134 bpm"),
        Marker(110.0, "note:<script>alert(1)</script>"),
    )
    eeg = RecordedStream(
        StreamSpec(SignalKind.EEG, 256.0, ("TP9",)), np.zeros((1, 120 * 256)), np.arange(120 * 256) / 256.0
    )
    return Recording((eeg,), markers, estimates, decisions, {"format": "calmloop-xdf"})


def test_session_series_splits_states_into_segments() -> None:
    s = session_series(_synthetic())
    assert [seg[2] for seg in s.states] == [
        PacingState.CALIBRATING,
        PacingState.SLOWING,
        PacingState.CALM,
        PacingState.READY_FOR_DOSING,
        PacingState.ALERT,
    ]
    assert s.states[1][:2] == (30.0, 60.0)
    assert s.states[-1][1] == pytest.approx(120.0 - 1 / 256)  # the last state lasts to the end of the data
    assert np.isnan(s.pace_brpm[0]) and s.pace_brpm[-1] == 6.0


def test_plot_has_the_four_signals_and_a_state_strip() -> None:
    from matplotlib.colors import to_rgb

    fig = plot_session(_synthetic(), baseline={"resp_rate_brpm": 12.0, "hr_bpm": 70.0}, target_brpm=6.0)
    axes = fig.get_axes()
    assert len(axes) == 5
    titles = [a.get_title(loc="left") for a in axes[:4]]
    assert titles[0].startswith("Breathing rate") and titles[1].startswith("Heart rate")
    assert titles[2].startswith("Arousal") and titles[3].startswith("EEG relaxation")
    legend = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert {"pace shown", "breathing rate", "breathing rate (quality < 0.5)", "target 6/min"} <= set(legend)
    colours = {tuple(np.round(p.get_facecolor()[:3], 3)) for p in axes[4].patches}
    assert tuple(np.round(to_rgb(STATE_COLOURS[PacingState.READY_FOR_DOSING]), 3)) in colours
    assert axes[4].get_xlim()[1] == pytest.approx(2.0, abs=0.01)  # minutes


def test_html_escapes_text_and_embeds_pngs() -> None:
    page = report_html(_synthetic(), {}, name="x")
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    images = _images(page)
    assert len(images) == 1 and images[0].startswith(PNG_MAGIC)  # no outcomes: no outcome chart
    # without session.json the summary comes from the decisions
    assert "1 min 00 s" in page  # time to calm: 60 s after the first decision
    assert "1 min 20 s" in page  # time to ready


def test_report_of_a_recorded_session(session: Path, tmp_path: Path) -> None:
    """``calmloop report FOLDER/session.xdf`` writes FOLDER/report.html with the plots and the summary."""
    copy = tmp_path / session.name
    shutil.copytree(session, copy)
    parser = argparse.ArgumentParser(prog="calmloop")
    cli_tools.register(parser.add_subparsers(dest="command"))
    out = io.StringIO()
    assert cli_tools.dispatch(parser.parse_args(["report", str(copy / "session.xdf")]), out) == 0
    path = copy / "report.html"
    assert f"-> {path}" in out.getvalue() and "self-contained" in out.getvalue()
    assert path.stat().st_mode & 0o777 == 0o600  # health data: owner only
    page = path.read_text("utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert 'src="http' not in page and "<link" not in page  # self-contained
    images = _images(page)
    assert len(images) == 2 and all(i.startswith(PNG_MAGIC) for i in images)
    sidecar = json.loads((session / "session.json").read_text())
    assert "P017" in page and "predose" in page
    assert sidecar["end_reason"] in page
    cal = sidecar["summary"]["calibration"]
    assert f"{cal['resp_rate_brpm']:.1f} breaths/min" in page
    assert "not reached" in page  # 120 s is too short to be ready
    lost = sidecar["summary"]["signal_lost_s"] / sidecar["summary"]["duration_s"] * 100
    assert f"{lost:.1f} % of the session" in page
    # outcomes with change and percent change
    assert re.search(
        r"<td>mood</td><td class=n>6</td><td class=n>4</td><td class=n>-2</td><td class=n>-33 %</td>", page
    )
    assert re.search(
        r"<td>pain</td><td class=n>5</td><td class=n>5</td><td class=n>\+0</td><td class=n>\+0 %</td>", page
    )
    assert "state:matching" in page or "state:calibrating" in page  # key events listed


def test_foreign_recordings_and_missing_paths_are_refused(test_data: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="calmloop replay"):
        write_report(test_data / "formats" / "bluemuse.xdf", tmp_path / "r.html")
    with pytest.raises(ConfigError, match="does not exist"):
        write_report(tmp_path / "missing", tmp_path / "r.html")
