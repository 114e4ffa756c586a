"""Tests of the replay source, the golden record-and-replay round trip, and every shared recording."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from adaptive.controller import PacingController, PacingDecision
from adaptive.errors import SensorError
from adaptive.pipeline import DspPipeline
from adaptive.records import Marker, RecordedStream, Recording
from adaptive.session import SessionEngine, TickResult, session_tick
from adaptive.types import Chunk, Estimate, PaceFollower, SignalKind, Source, SourceStatus, StreamSpec
from feedback.recorder import SessionRecorder
from sensors.clocks import ManualClock, ScaledClock
from sensors.readers import read_recording
from sensors.replay import ReplaySource
from sensors.simulated import SimulatedPatient

FORMATS = Path(__file__).resolve().parents[1] / "data" / "formats"
SESSION = FORMATS / "session_complete.xdf"


def small_recording(gap: tuple[float, float] | None = None, base: str = "session") -> Recording:
    """EEG at 8 Hz and PPG at 4 Hz for 10 s (optionally with a gap), times on the session clock."""
    streams = []
    for kind, sfreq in ((SignalKind.EEG, 8.0), (SignalKind.PPG, 4.0)):
        t = np.arange(int(10 * sfreq)) / sfreq
        if gap is not None:
            t = t[(t < gap[0]) | (t >= gap[1])]
        data = np.vstack([t * 10, -t])
        streams.append(RecordedStream(StreamSpec(kind, sfreq, ("a", "b")), data, t))
    return Recording(tuple(streams), (Marker(2.5, "note:x"),), metadata={"time_base": base})


# -- the Source protocol ----------------------------------------------------------------------
def test_is_a_source_but_not_a_pace_follower():
    src = ReplaySource(small_recording())
    assert isinstance(src, Source) and not isinstance(src, PaceFollower)
    assert [s.kind for s in src.streams] == [SignalKind.EEG, SignalKind.PPG]
    assert src.end_time == pytest.approx(9.875) and src.status is SourceStatus.IDLE


def test_wrong_calls_raise():
    src = ReplaySource(small_recording())
    with pytest.raises(SensorError, match="call start"):
        src.poll(1.0)
    src.start()
    src.poll(2.0)
    with pytest.raises(ValueError, match="never goes back"):
        src.poll(1.0)
    with pytest.raises(ValueError, match="finite"):
        src.poll(math.nan)
    src.stop()
    with pytest.raises(SensorError):
        src.poll(3.0)
    with pytest.raises(SensorError, match="cannot restart"):
        src.start()
    with pytest.raises(ValueError, match="chunk_s"):
        ReplaySource(small_recording(), chunk_s=0.0)
    with pytest.raises(SensorError, match="nothing to replay"):
        ReplaySource(Recording(()))


def test_poll_returns_samples_up_to_now_one_chunk_per_kind():
    src = ReplaySource(small_recording())
    src.start()
    chunks = src.poll(1.0)
    got = [(c.kind, c.n_times, c.times[-1]) for c in chunks]
    assert got == [(SignalKind.EEG, 9, 1.0), (SignalKind.PPG, 5, 1.0)]
    for c in chunks:  # built without Chunk's re-validation: the same guarantees must hold
        assert isinstance(c, Chunk) and c.data.dtype == np.float64 and c.data.flags.c_contiguous
        assert not c.data.flags.writeable and not c.times.flags.writeable
        assert c.ch_names == ("a", "b") and c.sfreq == (8.0 if c.kind is SignalKind.EEG else 4.0)
    assert src.poll(1.1) == []  # no sample in (1.0, 1.1]
    assert [c.kind for c in src.poll(1.125)] == [SignalKind.EEG]
    assert src.status is SourceStatus.STREAMING and not src.finished
    src.poll(100.0)
    assert src.finished and src.status is SourceStatus.STOPPED and src.poll(101.0) == []


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(st.floats(0.001, 3.0), min_size=1, max_size=40))
def test_any_poll_schedule_re_emits_every_sample_once_in_order(steps):
    rec = small_recording(gap=(4.0, 6.5))
    src = ReplaySource(rec)
    src.start()
    now, got = 0.0, {k: [] for k in (SignalKind.EEG, SignalKind.PPG)}
    for step in [*steps, 20.0]:
        now += step
        chunks = src.poll(now)
        assert len({c.kind for c in chunks}) == len(chunks)
        for c in chunks:
            assert c.times[-1] <= now
            got[c.kind].append(c)
    for s in rec.streams:
        assert_array_equal(np.hstack([c.data for c in got[s.kind]]), s.data)
        assert_array_equal(np.concatenate([c.times for c in got[s.kind]]), s.times)


def test_signal_lost_during_a_recorded_gap():
    src = ReplaySource(small_recording(gap=(4.0, 7.5)), stall_s=2.0)
    src.start()
    src.poll(5.0)
    assert src.status is SourceStatus.STREAMING  # 1.1 s since the last sample
    src.poll(6.5)
    assert src.status is SourceStatus.SIGNAL_LOST  # 2.6 s without samples
    src.poll(7.6)
    assert src.status is SourceStatus.STREAMING


def test_chunk_s_bounds_chunks_and_the_source_catches_up():
    src = ReplaySource(small_recording(), chunk_s=0.5)
    src.start()
    (eeg, ppg) = src.poll(5.0)
    assert eeg.times[-1] - eeg.times[0] <= 0.5 and ppg.times[-1] <= 0.5
    assert src.lag_s == pytest.approx(5.0 - 0.625)  # the next EEG sample is at 0.625 s
    polls = 1
    while not src.finished:
        for c in src.poll(20.0):
            assert c.times[-1] - c.times[0] <= 0.5
        polls += 1
    assert polls == 16 and src.lag_s == 0.0  # 80 EEG samples at 8 Hz, 5 per 0.5-s chunk


def test_foreign_recordings_start_at_zero_session_files_keep_their_times():
    foreign = ReplaySource(small_recording(base="device"), time_origin=None)
    assert foreign.time_origin == 0.0  # earliest sample already at 0
    csv = ReplaySource(FORMATS / "EEG_recording_muselsl.csv")
    assert csv.time_origin == pytest.approx(1_700_000_000.25)
    csv.start()
    (eeg,) = csv.poll(0.0)
    assert eeg.times[0] == 0.0
    lab = ReplaySource(FORMATS / "muselsl_labrecorder.xdf")
    assert [m.time for m in lab.markers()] == pytest.approx([1.5004, 3.5004])  # shifted like the samples
    session = ReplaySource(SESSION)
    assert session.time_origin == 0.0 and session.recording.metadata["format"] == "calmloop-xdf"
    assert ReplaySource(small_recording(), time_origin=-2.0).end_time == pytest.approx(11.875)


def test_replays_on_a_scaled_clock():
    """``--speed N``: the source follows whatever the clock says (here 10^4 x, no sleeping)."""
    src = ReplaySource(SESSION)
    clock = ScaledClock(1e4)  # 6 s of data in about 0.6 ms of wall time
    src.start()
    got = {s.kind: 0 for s in src.streams}
    while src.status is not SourceStatus.STOPPED:
        for c in src.poll(clock.now()):
            got[c.kind] += c.n_times
    assert got == {s.kind: s.n_times for s in src.recording.streams}


def test_merged_brainflow_files_replay_together(caplog):
    caplog.set_level(logging.ERROR)
    src = ReplaySource([FORMATS / "brainflow_default.csv", FORMATS / "brainflow_aux.csv",
                        FORMATS / "brainflow_anc.csv"])
    assert {s.kind for s in src.streams} == set(SignalKind)
    src.start()
    assert len(src.poll(1.0)) == 4


# -- golden round trip --------------------------------------------------------------------------
class Keep:
    def __init__(self) -> None:
        self.estimates: list[Estimate] = []
        self.decisions: list[PacingDecision] = []

    def write(self, result: TickResult) -> None:
        self.estimates += result.estimates
        self.decisions += result.decisions


def run_session(source: Source, step: float, until: float, sinks: list = ()) -> Keep:
    engine = SessionEngine(DspPipeline(source.streams), PacingController())
    keep, clock = Keep(), ManualClock()
    source.start()
    while clock.now() < until:
        session_tick(source, engine, [*sinks, keep], clock.advance(step))
    return keep


def assert_same_estimates(got: list[Estimate], want: list[Estimate]) -> None:
    def key(e: Estimate) -> tuple:
        return (e.time, e.metric.value)

    got, want = sorted(got, key=key), sorted(want, key=key)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert (a.metric, a.time, a.quality) == (b.metric, b.time, b.quality)
        assert a.value == b.value or (math.isnan(a.value) and math.isnan(b.value)), (a, b)  # bit for bit


def assert_same_decisions(got: list[PacingDecision], want: list[PacingDecision]) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert (a.time, a.state, a.events, a.dose_ready, a.inhale_fraction) == (
            b.time, b.state, b.events, b.dose_ready, b.inhale_fraction), (a, b)
        assert a.pace_brpm == b.pace_brpm or (math.isnan(a.pace_brpm) and math.isnan(b.pace_brpm))


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    """4 simulated minutes (calibration, matching, slowing) recorded at ManualClock steps of 0.1 s."""
    folder = tmp_path_factory.mktemp("golden") / "session"
    src = SimulatedPatient("compliant", seed=1)
    with SessionRecorder(folder, src.streams, patient_id="GOLD01") as rec:
        live = run_session(src, 0.1, 240.0, [rec])
    return folder / "session.xdf", live


@pytest.mark.slow
def test_golden_file_holds_what_the_session_produced(golden):
    path, live = golden
    back = read_recording(path)
    assert_same_estimates(list(back.estimates), live.estimates)
    assert_same_decisions(list(back.decisions), live.decisions)
    states = {d.state.value for d in live.decisions}
    assert {"calibrating", "matching", "slowing"} <= states  # the run covers the pacing path


@pytest.mark.slow
@pytest.mark.parametrize("step", [0.1, 0.37])
def test_golden_replay_gives_identical_estimates_and_decisions(golden, step):
    """Replay at the recording's step and at another one: the engine decides on a fixed data-time grid."""
    path, live = golden
    replay = run_session(ReplaySource(path), step, 240.0)
    assert_same_estimates(replay.estimates, live.estimates)
    assert_same_decisions(replay.decisions, live.decisions)


# -- every real recording -------------------------------------------------------------------------
@pytest.mark.shared_data
def test_every_shared_recording_replays_or_is_refused_with_a_reason(shared_data, caplog):
    caplog.set_level(logging.ERROR)
    files = sorted(
        p for folder in ("xdf_samples", "muse2_brainflow", "muse_mental_state_bird")
        for p in (shared_data / folder).iterdir() if p.suffix in (".xdf", ".csv")
    )
    assert len(files) == 19
    outcome: dict[str, str] = {}
    for path in files:
        try:
            src = ReplaySource(path)
        except SensorError as exc:
            assert path.name in str(exc) and "expected" in str(exc)
            outcome[path.name] = "refused: " + str(exc).split(": ", 1)[1][:40]
            continue
        src.start()
        n = {s.kind: 0 for s in src.streams}
        try:
            engine = SessionEngine(DspPipeline(src.streams), PacingController())
        except ValueError as exc:  # the DSP refuses the stream (e.g. a 10-Hz "EEG"): the source still replays
            assert "expected" in str(exc)
            engine, outcome[path.name] = None, "dsp refused: " + str(exc)[:40]
        clock = ManualClock()
        while src.status is not SourceStatus.STOPPED:
            chunks = src.poll(clock.advance(1.0)) if engine is None else session_tick(
                src, engine, [], clock.advance(1.0)).chunks
            for c in chunks:
                n[c.kind] += c.n_times
        assert n == {s.kind: s.n_times for s in src.recording.streams}  # every sample, once
        outcome.setdefault(path.name, "replayed")
    assert outcome["empty_streams.xdf"].startswith("refused: no usable signal stream")
    assert outcome["minimal.xdf"].startswith("dsp refused")
    assert sum(v == "replayed" for v in outcome.values()) == 17
