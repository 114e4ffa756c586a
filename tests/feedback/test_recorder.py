"""Tests of the session recorder: files, privacy, sidecar, failures, and a kill -9 mid-session."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timezone
from pathlib import Path

import mne
import numpy as np
import pytest
import pyxdf
from numpy.testing import assert_array_equal

from adaptive.controller import PacingController, PacingDecision, PacingState
from adaptive.errors import ConfigError
from adaptive.pipeline import DspPipeline
from adaptive.records import STATE_CODES, note_marker, parse_marker, session_folder_name
from adaptive.session import SessionEngine, TickResult, session_tick
from adaptive.types import Chunk, Estimate, Metric, SignalKind, StreamSpec
from feedback.recorder import PACKAGES, SessionRecorder
from sensors.clocks import ManualClock
from sensors.readers import read_recording
from sensors.simulated import SimulatedPatient

ROOT = Path(__file__).resolve().parents[2]
STARTED = datetime(2025, 3, 4, 9, 30, tzinfo=timezone.utc)


class Keep:
    """Sink that keeps what the engine produced, to compare with the file."""

    def __init__(self) -> None:
        self.chunks: list[Chunk] = []
        self.estimates: list[Estimate] = []
        self.decisions: list[PacingDecision] = []

    def write(self, result: TickResult) -> None:
        self.chunks += result.chunks
        self.estimates += result.estimates
        self.decisions += result.decisions


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """A 40-s simulated session recorded through session_tick (ManualClock steps of 0.1 s)."""
    root = tmp_path_factory.mktemp("sessions")
    src = SimulatedPatient("compliant", seed=3)
    engine = SessionEngine(DspPipeline(src.streams), PacingController())
    keep, clock = Keep(), ManualClock()
    src.start()
    rec = SessionRecorder.create(root, src.streams, patient_id="P017", started_at=STARTED,
                                 config={"protocol": "predose", "seed": 3, "speed": "max"})
    with rec:
        while clock.now() < 40.0:
            session_tick(src, engine, [rec, keep], clock.advance(0.1))
        rec.mark(note_marker("patient asked for a blanket"), 12.0)
        rec.outcome("mood", 4, 7)
        rec.write_sidecar({"events": [[1.0, "x"]], "seed": 3})
        rec.close(engine.controller.summary(), end_reason="test over")
    return rec, keep


def test_folder_and_files_are_private_and_named_by_date_and_pseudonym(session):
    rec, _ = session
    assert rec.folder.name == "20250304T093000Z_P017" == session_folder_name("P017", STARTED)
    assert rec.folder.stat().st_mode & 0o777 == 0o700
    for f in (rec.xdf_path, rec.sidecar_path):
        assert f.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in rec.folder.iterdir()) == ["session.json", "session.xdf"]


@pytest.mark.parametrize("bad", ["Jane Doe", "", "x" * 33, "P01/../..", "Müller"])
def test_names_are_refused_as_patient_id(tmp_path, bad):
    with pytest.raises(ConfigError, match="pseudonymous"):
        SessionRecorder(tmp_path / "s", (), patient_id=bad)


def test_raw_streams_come_back_bit_for_bit(session):
    rec, keep = session
    back = read_recording(rec.xdf_path)
    for kind in SignalKind:
        chunks = [c for c in keep.chunks if c.kind is kind]
        stream = back.stream(kind)
        assert stream is not None
        assert_array_equal(stream.data, np.hstack([c.data for c in chunks]))
        assert_array_equal(stream.times, np.concatenate([c.times for c in chunks]))
        assert stream.spec.ch_names == chunks[0].ch_names and stream.spec.sfreq == chunks[0].sfreq


def test_estimates_decisions_and_markers_come_back(session):
    rec, keep = session
    back = read_recording(rec.xdf_path)

    def key(e: Estimate) -> tuple:
        return (e.time, e.metric.value)

    got, want = sorted(back.estimates, key=key), sorted(keep.estimates, key=key)
    assert [(e.metric, e.time, e.quality) for e in got] == [(e.metric, e.time, e.quality) for e in want]
    assert all(a.value == b.value or (math.isnan(a.value) and math.isnan(b.value)) for a, b in zip(got, want))
    assert len(back.decisions) == len(keep.decisions) > 0
    for a, b in zip(back.decisions, keep.decisions):
        assert (a.time, a.state, a.dose_ready, a.events, a.pacer_visible) == (
            b.time, b.state, b.dose_ready, b.events, b.pacer_visible)
        assert a.pace_brpm == b.pace_brpm or (math.isnan(a.pace_brpm) and math.isnan(b.pace_brpm))
    texts = [m.text for m in back.markers]
    assert texts[0] == "session:start" and texts[-1] == "session:end reason:test over"
    assert "note:patient asked for a blanket" in texts and "outcome:mood before:4 after:7" in texts
    assert parse_marker(texts[-1]).fields["reason"] == "test over"


def test_sidecar_merges_config_versions_summary(session):
    rec, _ = session
    data = json.loads(rec.sidecar_path.read_text())
    assert data["format_version"] == 1 and data["complete"] is True and data["patient_id"] == "P017"
    assert data["config"] == {"protocol": "predose", "seed": 3, "speed": "max"}
    versions = data["package_versions"]
    assert set(versions) == set(PACKAGES) and versions["numpy"] == np.__version__
    assert data["summary"]["final_state"] in {s.value for s in PacingState}
    assert data["events"] == [[1.0, "x"]] and data["end_reason"] == "test over"
    assert data["recording"]["samples"]["eeg"] == 40 * 256 + 1 and data["recording"]["error"] is None
    assert "NaN" not in rec.sidecar_path.read_text()  # strict JSON: NaN became null


def test_pyxdf_and_mne_open_the_file(session):
    """Researchers' route: pyxdf.load_xdf, then mne.io.RawArray (MNE has no XDF reader of its own)."""
    rec, keep = session
    streams, header = pyxdf.load_xdf(str(rec.xdf_path))
    names = {s["info"]["name"][0]: s for s in streams}
    assert set(names) == {"calmloop-eeg", "calmloop-ppg", "calmloop-accel", "calmloop-gyro",
                          "calmloop-estimates", "calmloop-pacer", "calmloop-markers"}
    assert header["info"]["calmloop"][0]["time_base"] == ["session"]
    eeg = names["calmloop-eeg"]
    labels = [c["label"][0] for c in eeg["info"]["desc"][0]["channels"][0]["channel"]]
    units = {c["unit"][0] for c in eeg["info"]["desc"][0]["channels"][0]["channel"]}
    assert units == {"microvolts"}
    info = mne.create_info(labels, float(eeg["info"]["nominal_srate"][0]), ch_types="eeg")
    raw = mne.io.RawArray(eeg["time_series"].T * 1e-6, info, verbose="error")  # MNE wants volts
    assert raw.n_times == 40 * 256 + 1 and raw.ch_names == ["TP9", "AF7", "AF8", "TP10"]
    est = names["calmloop-estimates"]
    est_labels = [c["label"][0] for c in est["info"]["desc"][0]["channels"][0]["channel"]]
    assert est_labels[:2] == ["resp_rate_brpm", "resp_rate_brpm_quality"]
    assert est["info"]["nominal_srate"] == ["0.0"]  # irregular
    hr = est["time_series"][:, est_labels.index("hr_bpm")]
    assert np.isfinite(hr).any() and np.isnan(hr).any()  # NaN where a row holds other metrics
    pacer = names["calmloop-pacer"]
    codes = pacer["time_series"][:, 2]
    assert set(codes.astype(int)) <= set(STATE_CODES.values())
    assert names["calmloop-markers"]["time_series"][0] == ["session:start"]


# -- wrong calls and failures ---------------------------------------------------------------------
def specs() -> tuple[StreamSpec, ...]:
    return (StreamSpec(SignalKind.EEG, 256.0, ("TP9", "AF7")),)


def test_wrong_calls_raise(tmp_path):
    rec = SessionRecorder(tmp_path / "s", specs(), patient_id="P1")
    ppg = Chunk(SignalKind.PPG, np.zeros((1, 3)), np.arange(3) / 64, 64.0, ("ppg",))
    with pytest.raises(ValueError, match="a ppg chunk, but the recorder was created for"):
        rec.write(TickResult((ppg,)))
    three = Chunk(SignalKind.EEG, np.zeros((3, 2)), [0.0, 0.1], 256.0, ("a", "b", "c"))
    with pytest.raises(ValueError, match="3 channels, expected 2"):
        rec.write(TickResult((three,)))
    with pytest.raises(ValueError, match="single line"):
        rec.mark("two\nlines")
    with pytest.raises(ValueError, match="belongs to the recorder"):
        rec.write_sidecar({"format_version": 2})
    with pytest.raises(ValueError, match="patient_id"):
        rec.write_sidecar({"patient_id": "P2"})
    rec.close()
    with pytest.raises(ValueError, match="closed"):
        rec.write(TickResult())
    with pytest.raises(FileExistsError):
        SessionRecorder(tmp_path / "s", specs(), patient_id="P1")
    with pytest.raises(ValueError, match="one stream per signal kind"):
        SessionRecorder(tmp_path / "t", specs() * 2, patient_id="P1")


def test_disk_errors_do_not_stop_the_session(tmp_path, monkeypatch, caplog):
    rec = SessionRecorder(tmp_path / "s", specs(), patient_id="P1", max_buffer_bytes=64)
    chunk = Chunk(SignalKind.EEG, np.zeros((2, 12)), np.arange(12) / 256, 256.0, ("TP9", "AF7"))

    def full_disk(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(os, "write", full_disk)
        rec.write(TickResult((chunk,)))  # logged, not raised
        rec.write(TickResult((chunk,)))
    assert isinstance(rec.error, OSError) and "No space left" in caplog.text
    rec.close()
    data = json.loads(rec.sidecar_path.read_text())
    assert data["complete"] is False and "No space left" in data["recording"]["error"]
    assert data["recording"]["dropped_ticks"] == 1


def test_context_manager_marks_an_aborted_session(tmp_path):
    with pytest.raises(RuntimeError):
        with SessionRecorder(tmp_path / "s", specs(), patient_id="P1") as rec:
            raise RuntimeError("boom")
    data = json.loads(rec.sidecar_path.read_text())
    assert data["end_reason"] == "aborted: RuntimeError" and rec.closed
    assert read_recording(rec.xdf_path).markers[-1].text == "session:end reason:aborted: RuntimeError"


# -- kill -9 -------------------------------------------------------------------------------------
CHILD = textwrap.dedent(
    """
    import sys, time
    from adaptive.controller import PacingController
    from adaptive.pipeline import DspPipeline
    from adaptive.session import SessionEngine, session_tick
    from feedback.recorder import SessionRecorder
    from sensors.clocks import MonotonicClock
    from sensors.simulated import SimulatedPatient

    src = SimulatedPatient("compliant", seed=5)
    engine = SessionEngine(DspPipeline(src.streams), PacingController())
    rec = SessionRecorder(sys.argv[1], src.streams, patient_id="KILL01")
    src.start()
    clock = MonotonicClock()  # real time: the recorder flushes on wall time
    while True:
        now = clock.now()
        session_tick(src, engine, [rec], now)
        print(f"{now:.4f}", flush=True)  # data time written so far (maybe still buffered)
        time.sleep(0.02)  # the child paces itself; the test does not sleep
    """
)


@pytest.mark.slow
def test_kill_9_mid_session_leaves_a_readable_file(tmp_path, caplog):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    folder = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script), str(folder)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed_at = math.nan
    guard = threading.Timer(120.0, proc.kill)  # a hung child ends the test, not the suite
    guard.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # blocks on the pipe: about 3 s of the child's wall time
            killed_at = float(line)
            if killed_at >= 3.0:
                proc.send_signal(signal.SIGKILL)
                break
        # the child may have run a few ticks more before the signal landed: its last line counts
        reached = [float(x) for x in proc.stdout.read().split()] if proc.stdout else []
        killed_at = max([killed_at, *reached])
    finally:
        guard.cancel()
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    xdf = folder / "session.xdf"
    # pyxdf reads the file as it was left (no footers)
    streams, _ = pyxdf.load_xdf(str(xdf), dejitter_timestamps=False)
    eeg = next(s for s in streams if s["info"]["name"][0] == "calmloop-eeg")
    assert "footer" not in eeg
    last_pyxdf = float(eeg["time_stamps"][-1])
    # ... and so does ours, with every sample as written
    caplog.set_level(logging.WARNING, logger="sensors.readers")
    back = read_recording(xdf)
    last = float(back.stream(SignalKind.EEG).times[-1])
    assert last == last_pyxdf
    # at most the last second of wall time (plus one tick) is lost: flush_interval_s = 1.  The
    # killed tick may have been written (and flushed) before its line was printed: + 0.5 s.
    assert killed_at - 1.5 <= last <= killed_at + 0.5, (killed_at, last)
    assert json.loads((folder / "session.json").read_text())["complete"] is False


# -- the layout helpers of adaptive.records ----------------------------------------------------------
def test_estimate_rows_group_same_time_and_round_trip():
    from adaptive.records import estimate_channels, estimate_rows, estimates_from_rows

    ests = [Estimate(Metric.HR_BPM, 61.0, 0.9, 1.0), Estimate(Metric.RMSSD_MS, math.nan, 0.0, 1.0),
            Estimate(Metric.HR_BPM, 62.0, 0.8, 1.0),  # same metric again: a new row
            Estimate(Metric.AROUSAL, -0.2, 1.0, 1.5)]
    times, rows = estimate_rows(ests)
    assert list(times) == [1.0, 1.0, 1.5] and rows.shape == (3, 2 * len(Metric))
    labels = [c.label for c in estimate_channels()]
    back = estimates_from_rows(times, rows, labels + ["a_future_metric"])
    key = lambda e: (e.time, e.metric.value, e.quality)  # noqa: E731
    assert sorted(map(key, back)) == sorted(map(key, ests))
    assert math.isnan(next(e for e in back if e.metric is Metric.RMSSD_MS).value)  # NaN value, present


def test_estimate_rows_follow_each_layout_and_refuse_unknown_metrics():
    from adaptive.records import estimate_rows

    ests = [Estimate(Metric.HR_BPM, 61.0, 0.9, 1.0), Estimate(Metric.AROUSAL, 0.5, 0.7, 1.0)]
    full = estimate_rows(ests)[1]
    small = (Metric.AROUSAL, Metric.HR_BPM)  # another layout (the column map is cached per layout)
    times, rows = estimate_rows(ests, small)
    assert list(times) == [1.0] and rows.tolist() == [[0.5, 0.7, 61.0, 0.9]]
    assert estimate_rows(ests)[1].tobytes() == full.tobytes()  # back to the default layout
    with pytest.raises(ValueError, match="not in the layout"):
        estimate_rows(ests, (Metric.HR_BPM,))
    times, rows = estimate_rows([])
    assert times.shape == (0,) and rows.shape == (0, 2 * len(Metric))


def test_estimates_and_decisions_from_rows_edge_cases():
    from adaptive.records import PACER_CHANNELS, decisions_from_rows, estimates_from_rows

    labels = ["hr_bpm", "hr_bpm_quality", "arousal", "arousal_quality"]
    rows = np.array([[60.0, 1.5, np.nan, np.nan], [61.0, np.nan, 0.1, -0.2], [62.0, 0.5, 0.2, 0.3]])
    # qualities clipped to 0..1, NaN quality = absent, rows beyond the times are left out
    got = [(e.metric, e.value, e.quality, e.time) for e in estimates_from_rows([1.0, 2.0], rows, labels)]
    assert got == [(Metric.HR_BPM, 60.0, 1.0, 1.0), (Metric.AROUSAL, 0.1, 0.0, 2.0)]
    pacer = [c.label for c in PACER_CHANNELS]
    row = [5.5, 0.4, float(STATE_CODES[PacingState.CALM]), 1.0, 0.0, 0.75]
    (d,) = decisions_from_rows(np.array([3.0]), np.array([row]), pacer)
    assert (d.time, d.state, d.pace_brpm, d.dose_ready, d.pacer_visible, d.following) == (
        3.0, PacingState.CALM, 5.5, True, False, 0.75)
    assert type(d.pace_brpm) is float and type(d.time) is float
    with pytest.raises(ValueError, match=r"state_code.*got np\.float64\(42\.0\)"):
        decisions_from_rows(np.array([3.0]), np.array([[*row[:2], 42.0, *row[3:]]]), pacer)


@pytest.mark.parametrize("text, kind, value, fields", [
    ("state:slowing reason:matched 5.70 brpm", "state", "slowing", {"reason": "matched 5.70 brpm"}),
    ("alert:hr_high 134 bpm", "alert", "hr_high 134 bpm", {}),
    ("ready_for_dosing", "ready_for_dosing", "", {}),
    ("pace:hold at 5.50 brpm reason:following", "pace", "hold at 5.50 brpm", {"reason": "following"}),
    ("outcome:phq9 before:NA after:12", "outcome", "phq9", {"before": "NA", "after": "12"}),
    ("session:end reason:by: clinician", "session", "end", {"reason": "by: clinician"}),
])
def test_parse_marker(text, kind, value, fields):
    m = parse_marker(text)
    assert (m.kind, m.value, dict(m.fields), m.text) == (kind, value, fields, text)


def test_session_folder_name_needs_an_aware_datetime():
    with pytest.raises(ValueError, match="timezone-aware"):
        session_folder_name("P1", datetime(2025, 1, 1))
    assert session_folder_name("P1", datetime(2025, 1, 1, 12, tzinfo=timezone.utc)) == "20250101T120000Z_P1"
