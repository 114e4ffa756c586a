"""Tests of the file readers: detection by content, every format, damaged and foreign files."""

from __future__ import annotations

import json
import logging
import math
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from adaptive.errors import SensorError
from adaptive.records import Recording
from adaptive.types import SignalKind
from feedback.xdf_writer import XdfChannel, XdfStreamInfo, XdfWriter
from sensors.readers import detect_format, read_brainflow, read_recording, read_xdf, repair_times

FORMATS = Path(__file__).resolve().parents[1] / "data" / "formats"
EXPECTED: dict[str, dict] = json.loads((FORMATS / "expected.json").read_text())
READABLE = sorted(name for name, e in EXPECTED.items() if "error" not in e)
BROKEN = sorted(name for name, e in EXPECTED.items() if "error" in e)


def streams_of(rec: Recording) -> dict[str, list]:
    return {s.kind.value: [len(s.spec.ch_names), s.n_times, s.spec.sfreq] for s in rec.streams}


@pytest.fixture(autouse=True)
def _quiet_pyxdf(caplog):
    caplog.set_level(logging.ERROR, logger="pyxdf")


# -- every fixture ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", READABLE)
def test_fixture_reads_as_expected(name):
    exp = EXPECTED[name]
    rec = read_recording(FORMATS / name)
    assert rec.metadata["format"] == exp["format"]
    if "streams" in exp:
        assert streams_of(rec) == exp["streams"]
    if "markers" in exp:
        assert len(rec.markers) == exp["markers"]
    for s in rec.streams:
        assert np.all(np.diff(s.times) > 0) and s.data.dtype == np.float64
    assert detect_format(FORMATS / name) == ("xdf" if exp["format"].endswith("xdf") else exp["format"])


@pytest.mark.parametrize("name", BROKEN)
def test_broken_fixture_raises_naming_file_expectation_and_finding(name):
    with pytest.raises(SensorError) as info:
        read_recording(FORMATS / name)
    msg = str(info.value)
    assert name in msg and "expected" in msg and EXPECTED[name]["error"] in msg


def test_unsupported_and_missing_files(tmp_path):
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "notes.gz").write_bytes(b"\x1f\x8bnot really gzip")
    for name, found in (("blob.bin", "unsupported file"), ("empty.csv", "empty file"), ("notes.gz", "gzip"),
                        ("missing.xdf", "not found")):
        with pytest.raises(SensorError, match=found) as info:
            read_recording(tmp_path / name)
        assert name in str(info.value)


# -- muselsl CSV -------------------------------------------------------------------------------
def test_muselsl_csv_keeps_stamps_and_channels():
    rec = read_recording(FORMATS / "EEG_recording_muselsl.csv")
    (eeg,) = rec.streams
    assert eeg.spec.ch_names == ("TP9", "AF7", "AF8", "TP10", "Right AUX")
    assert rec.metadata["time_base"] == "device" and eeg.times[0] == pytest.approx(1_700_000_000.25)
    # muselsl writes 3 decimals: stamps are within 0.5 ms of the 256 Hz grid
    assert_allclose(eeg.times - eeg.times[0], np.arange(eeg.n_times) / 256.0, atol=5.1e-4)


def test_glitched_stamps_fall_back_to_sample_index_with_a_warning(caplog):
    caplog.set_level(logging.WARNING, logger="sensors.readers")
    rec = read_recording(FORMATS / "EEG_recording_glitch.csv")
    (eeg,) = rec.streams
    assert_allclose(eeg.times - eeg.times[0], np.arange(eeg.n_times) / 256.0, rtol=0, atol=1e-6)
    messages = [r.getMessage() for r in caplog.records]
    assert any("EEG_recording_glitch.csv" in m and "sample_index" in m for m in messages)
    assert rec.metadata["warnings"]


def test_repair_times_rules():
    t = np.arange(100) / 256.0
    kept, problem = repair_times(t, 256.0, "x")
    assert problem == "" and np.array_equal(kept, t)
    back = t.copy()
    back[50] = back[49]
    fixed, problem = repair_times(back, 256.0, "x")
    assert "repeated" in problem and np.all(np.diff(fixed) > 0)
    nan = t.copy()
    nan[0] = np.nan
    fixed, problem = repair_times(nan, 256.0, "x")
    assert "non-finite" in problem and fixed[0] == t[1] and np.all(np.isfinite(fixed))
    slow = np.arange(100) / 200.0  # 22 % slower than nominal
    assert repair_times(slow, 256.0, "x")[1] and not repair_times(slow, 256.0, "x", rate_tolerance=0.3)[1]


def test_muselsl_files_merge_and_kinds_from_names(tmp_path):
    rec = read_recording([FORMATS / "EEG_recording_muselsl.csv", FORMATS / "PPG_recording_muselsl.csv",
                          FORMATS / "ACC_recording_muselsl.csv"])
    assert [s.kind for s in rec.streams] == [SignalKind.EEG, SignalKind.PPG, SignalKind.ACCEL]
    # without ACC/GYRO in the name, the magnitude decides (about 1 g: accelerometer)
    shutil.copy(FORMATS / "ACC_recording_muselsl.csv", tmp_path / "xyz.csv")
    assert read_recording(tmp_path / "xyz.csv").streams[0].kind is SignalKind.ACCEL
    with pytest.raises(SensorError, match="a second eeg stream"):
        read_recording([FORMATS / "EEG_recording_muselsl.csv", FORMATS / "brainflow_default.csv"])


def test_cut_last_line_is_dropped_other_bad_lines_raise(tmp_path, caplog):
    lines = (FORMATS / "EEG_recording_muselsl.csv").read_text().splitlines()
    (tmp_path / "cut.csv").write_text("\n".join(lines[:100]) + "\n" + lines[100][:12])
    caplog.set_level(logging.WARNING, logger="sensors.readers")
    assert read_recording(tmp_path / "cut.csv").streams[0].n_times == 99
    assert "incomplete" in caplog.text
    lines[50] = "1700000000.4,abc,1,2,3,4"
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(SensorError, match=r"bad.csv: line 51 is not"):
        read_recording(tmp_path / "bad.csv")


# -- BrainFlow ---------------------------------------------------------------------------------
def test_brainflow_rows_follow_the_board_descriptor():
    rec = read_recording([FORMATS / "brainflow_default.csv", FORMATS / "brainflow_aux.csv",
                          FORMATS / "brainflow_anc.csv"])
    assert rec.metadata["format"] == "brainflow"
    raw = np.loadtxt(FORMATS / "brainflow_aux.csv", delimiter="\t")
    acc, gyro = rec.stream(SignalKind.ACCEL), rec.stream(SignalKind.GYRO)
    assert acc is not None and gyro is not None
    assert_array_equal(acc.data, raw[:, 1:4].T)  # descriptor accel_channels 1..3
    assert_array_equal(gyro.data, raw[:, 4:7].T)  # gyro_channels 4..6
    assert_array_equal(acc.times, raw[:, 7])  # timestamp_channel 7
    eeg = rec.stream(SignalKind.EEG)
    assert eeg is not None and eeg.spec.ch_names == ("TP9", "AF7", "AF8", "TP10")
    assert eeg.spec.extra["board"] == "MUSE_2_BOARD" and eeg.spec.extra["preset"] == "default"
    with pytest.raises(ValueError, match="board"):
        read_brainflow(FORMATS / "brainflow_aux.csv", board="muse-3")


# -- XDF: foreign files ------------------------------------------------------------------------
def test_muselsl_xdf_units_labels_and_clock_offsets():
    rec = read_recording(FORMATS / "muselsl_labrecorder.xdf")
    eeg, ppg = rec.stream(SignalKind.EEG), rec.stream(SignalKind.PPG)
    assert eeg is not None and ppg is not None
    assert eeg.spec.ch_names == ("TP9", "AF7", "AF8", "TP10", "Right AUX")
    assert eeg.spec.device == "Muse Muse"  # manufacturer + stream name
    # the -0.4 ms clock offset is applied by pyxdf's synchronisation
    assert eeg.times[0] == pytest.approx(5123.4567 - 0.0004, abs=1e-6)
    assert [m.text for m in rec.markers] == ["block 1", "block 3"]
    assert rec.metadata["time_base"] == "device"


def test_bluemuse_telemetry_is_skipped_with_a_reason():
    rec = read_recording(FORMATS / "bluemuse.xdf")
    (skipped,) = rec.metadata["skipped_streams"]
    assert skipped["name"] == "Muse-ABCD (Telemetry)" and "Telemetry" in skipped["reason"]


def test_petal_streams_by_name_with_assumed_muse_labels():
    rec = read_recording(FORMATS / "petal.xdf")
    eeg = rec.stream(SignalKind.EEG)
    assert eeg is not None and eeg.spec.ch_names == ("TP9", "AF7", "AF8", "TP10", "Right AUX")
    assert "Muse order assumed" in eeg.spec.extra["notes"]


def test_clock_reset_gives_continuous_times():
    (eeg,) = read_recording(FORMATS / "clock_reset.xdf").streams
    steps = np.diff(eeg.times)
    assert_allclose(steps, 1 / 256.0, rtol=1e-6)  # s: the 3-s reset is undone, no gap, no step back


def test_units_are_converted(tmp_path):
    path = tmp_path / "volts.xdf"
    with XdfWriter(path) as w:
        eeg = w.add_stream(XdfStreamInfo("amp", "EEG", "double64", 100.0, (XdfChannel("Cz", "volts"),)))
        gyro = w.add_stream(XdfStreamInfo("imu", "Gyroscope", "double64", 50.0, tuple(
            XdfChannel(x, "rad/s") for x in "XYZ")))
        acc = w.add_stream(XdfStreamInfo("acc", "ACC", "double64", 50.0,
                                         tuple(XdfChannel(x, "m/s^2") for x in "XYZ")))
        w.write_numeric(eeg, np.full((10, 1), 1e-5), np.arange(10) / 100)
        w.write_numeric(gyro, np.full((5, 3), math.pi), np.arange(5) / 50)
        w.write_numeric(acc, np.full((5, 3), 9.80665), np.arange(5) / 50)
    rec = read_recording(path)
    assert_allclose(rec.stream(SignalKind.EEG).data, 10.0)  # uV
    assert_allclose(rec.stream(SignalKind.GYRO).data, 180.0)  # deg/s
    assert_allclose(rec.stream(SignalKind.ACCEL).data, 1.0)  # g


def test_foreign_file_without_signal_streams_is_refused(tmp_path):
    path = tmp_path / "eda.xdf"
    with XdfWriter(path) as w:
        sid = w.add_stream(XdfStreamInfo("OpenSignals", "EDA", "float32", 10.0, (XdfChannel("EDA0", "uS"),)))
        w.write_numeric(sid, np.ones((10, 1)), np.arange(10) / 10)
    with pytest.raises(SensorError, match=r"no usable signal stream.*'OpenSignals': type 'EDA'"):
        read_recording(path)


# -- XDF: calmloop files, damaged files -----------------------------------------------------------
def test_session_file_round_trip_metadata():
    rec = read_recording(FORMATS / "session_complete.xdf")
    assert rec.metadata["format"] == "calmloop-xdf" and rec.metadata["time_base"] == "session"
    assert rec.metadata["file_header"]["patient_id"] == "FIXTURE01"
    assert rec.metadata["truncated"] is False
    assert rec.streams[0].times[0] == 0.0 and rec.estimates and rec.decisions
    assert [m.text for m in rec.markers][0] == "session:start"
    assert rec.markers[-1].text.startswith("session:end")


def test_truncated_session_reads_its_prefix_or_raises_when_strict(caplog):
    caplog.set_level(logging.WARNING, logger="sensors.readers")
    full = read_recording(FORMATS / "session_complete.xdf")
    cut = read_recording(FORMATS / "session_truncated.xdf")
    assert cut.metadata["truncated"] is True and "cut short" in caplog.text
    for s in cut.streams:
        ref = full.stream(s.kind)
        assert ref is not None and 0 < s.n_times < ref.n_times
        assert_array_equal(s.data, ref.data[:, : s.n_times])
        assert_array_equal(s.times, ref.times[: s.n_times])
    with pytest.raises(SensorError, match="strict=True"):
        read_xdf(FORMATS / "session_truncated.xdf", strict=True)


def test_any_cut_of_a_session_file_reads_as_an_exact_prefix(tmp_path):
    """A file cut at *any* byte (partial write, power cut) never crashes the reader."""
    raw = (FORMATS / "session_complete.xdf").read_bytes()
    full = read_recording(FORMATS / "session_complete.xdf")
    path = tmp_path / "cut.xdf"
    starts, pos = [], 4
    while pos < len(raw):  # chunk starts, by the specification
        starts.append(pos)
        nb = raw[pos]
        pos += 1 + nb + int.from_bytes(raw[pos + 1 : pos + 1 + nb], "little")
    # every byte of the first 60 chunk headers (length and tag: where readers stumble), the last
    # byte of each chunk, and 150 random cuts anywhere
    cuts = {a + d for a in starts[:60] for d in range(8)} | {b - 1 for b in starts[1:]}
    cuts |= set(np.random.default_rng(0).integers(5, len(raw), 150).tolist())
    ok = failed = 0
    logging.getLogger("sensors.readers").disabled = True  # one warning per cut otherwise
    try:
        for cut in sorted(c for c in cuts if 4 < c < len(raw)):
            path.write_bytes(raw[:cut])
            try:
                rec = read_xdf(path)
            except SensorError as exc:
                assert "expected" in str(exc)
                failed += 1
                continue
            ok += 1
            for s in rec.streams:
                ref = full.stream(s.kind)
                assert ref is not None
                assert_array_equal(s.data, ref.data[:, : s.n_times])
                assert_array_equal(s.times, ref.times[: s.n_times])
    finally:
        logging.getLogger("sensors.readers").disabled = False
    assert ok > 5 * failed  # only cuts inside the first headers fail (no stream header yet)


def test_corrupt_bytes_are_skipped_to_the_next_boundary(tmp_path, caplog):
    path = tmp_path / "a.xdf"
    wall = [0.0]
    with XdfWriter(path, wall_clock=lambda: wall[0], boundary_interval_s=1.0, flush_interval_s=0.5) as w:
        sid = w.add_stream(XdfStreamInfo("x", "EEG", "double64", 10.0, (XdfChannel("Cz"),)))
        for k in range(6):
            wall[0] += 1.0
            w.write_numeric(sid, np.full((10, 1), float(k)), k + np.arange(10) / 10)
    raw = bytearray(path.read_bytes())
    first_samples = raw.index(b"\x03\x00", 300) - 1  # somewhere in the first samples chunks
    raw[first_samples : first_samples + 40] = b"\xff" * 40
    path.write_bytes(bytes(raw))
    caplog.set_level(logging.WARNING, logger="sensors.readers")
    (eeg,) = read_recording(path).streams
    assert "skipped to the next boundary" in caplog.text
    assert 0 < eeg.n_times < 60 and eeg.data[0, -1] == 5.0  # the end of the file survives


@pytest.mark.parametrize("fmt", ["int16", "float32", "double64"])
def test_samples_chunks_with_and_without_stamps_decode_in_file_order(tmp_path, fmt, caplog):
    """Whole-stamped chunks (decoded at once) and chunks with unstamped samples (one by one) mix.

    An unstamped sample is ``previous stamp + 1 / srate`` (XDF specification), the previous
    stamp possibly in an earlier chunk; a Samples chunk before its stream header is skipped.
    """
    from feedback.xdf_writer import TAG_SAMPLES, TAG_STREAM_HEADER, encode_chunk, encode_varlen, header_xml

    dtype = {"int16": "<i2", "float32": "<f4", "double64": "<f8"}[fmt]
    cal = (("calmloop", (("kind", "eeg"), ("sfreq", "4.0"))),)
    info = XdfStreamInfo("calmloop-eeg", "EEG", fmt, 4.0, (XdfChannel("TP9"), XdfChannel("AF7")), desc=cal)

    def samples(values: np.ndarray, stamps: list[float | None]) -> bytes:
        body = [struct.pack("<I", 1), encode_varlen(len(stamps))]
        for row, t in zip(values, stamps):
            body.append(b"\x00" if t is None else b"\x08" + struct.pack("<d", t))
            body.append(row.astype(dtype).tobytes())
        return encode_chunk(TAG_SAMPLES, b"".join(body))

    path = tmp_path / "mixed.xdf"
    XdfWriter(path, header=(("calmloop", (("format_version", "1"),)),)).close()  # magic + FileHeader
    rng = np.random.default_rng(3)
    rows = [rng.integers(-300, 300, size=(n, 2)).astype(np.float64) for n in (3, 2, 4, 300, 2, 1)]
    with path.open("ab") as f:
        f.write(samples(rows[0], [0.0, 0.25, 0.5]))  # before the stream header: skipped
        f.write(encode_chunk(TAG_STREAM_HEADER, struct.pack("<I", 1) + header_xml(info)))
        f.write(samples(rows[1], [1.0, 1.25]))  # every sample stamped
        f.write(samples(rows[2], [None, 1.75, None, None]))  # 1.5, 1.75, 2.0, 2.25
        f.write(samples(rows[3], [2.5 + k / 4 for k in range(300)]))  # a 4-byte varlen count
        f.write(samples(rows[4], [None, None]))  # after a whole-stamped chunk: 77.5, 77.75
        f.write(samples(rows[5], [80.0]))
    caplog.set_level(logging.WARNING, logger="sensors.readers")
    (eeg,) = read_recording(path).streams
    times = np.concatenate(([1.0, 1.25, 1.5, 1.75, 2.0, 2.25], 2.5 + np.arange(300) / 4, [77.5, 77.75, 80.0]))
    assert_array_equal(eeg.times, times)
    assert_array_equal(eeg.data, np.concatenate([r.astype(dtype) for r in rows[1:]]).astype(np.float64).T)
    assert "unknown stream 1" in caplog.text


def test_newer_format_version_is_refused(tmp_path):
    path = tmp_path / "future.xdf"
    with XdfWriter(path, header=(("calmloop", (("format_version", "99"),)),)) as w:
        w.add_stream(XdfStreamInfo("calmloop-markers", "Markers", "string", 0.0, (XdfChannel("m"),)))
    with pytest.raises(SensorError, match="format version '99'.*Upgrade"):
        read_recording(path)


def test_gzip_compressed_xdf(tmp_path):
    import gzip

    (tmp_path / "a.xdfz").write_bytes(gzip.compress((FORMATS / "session_complete.xdf").read_bytes()))
    rec = read_recording(tmp_path / "a.xdfz")
    assert rec.metadata["format"] == "calmloop-xdf" and len(rec.streams) == 4


def test_a_session_folder_reads_its_xdf(tmp_path):
    shutil.copy(FORMATS / "session_complete.xdf", tmp_path / "session.xdf")
    assert read_recording(tmp_path).metadata["format"] == "calmloop-xdf"
    with pytest.raises(SensorError, match="a folder without session.xdf"):
        read_recording(tmp_path / "..")
