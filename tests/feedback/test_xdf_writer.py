"""Tests of the append-only XDF writer: bytes by the specification, pyxdf round trips, crash safety."""

from __future__ import annotations

import io
import logging
import os
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import pyxdf
from numpy.testing import assert_array_equal

from feedback.xdf_writer import (
    BOUNDARY_UUID,
    TAG_BOUNDARY,
    TAG_SAMPLES,
    TAG_STREAM_FOOTER,
    XdfChannel,
    XdfStreamInfo,
    XdfWriter,
    encode_chunk,
    encode_varlen,
)

EEG = XdfStreamInfo(
    "test-eeg", "EEG", "double64", 256.0,
    (XdfChannel("TP9", "microvolts", "EEG"), XdfChannel("AF7", "microvolts", "EEG")),
    source_id="test-1", manufacturer="Muse", desc=(("calmloop", (("kind", "eeg"), ("note", "a & b < c"))),),
)
MARKERS = XdfStreamInfo("test-markers", "Markers", "string", 0.0, (XdfChannel("marker"),))


class FakeWall:
    """A wall clock that moves only when told to (no sleeping in tests)."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def chunks_of(raw: bytes) -> list[tuple[int, int, int]]:
    """(start, tag, end) of every chunk, parsed by hand from the specification."""
    out, pos = [], 4
    while pos < len(raw):
        nb = raw[pos]
        length = int.from_bytes(raw[pos + 1 : pos + 1 + nb], "little")
        tag = struct.unpack_from("<H", raw, pos + 1 + nb)[0]
        out.append((pos, tag, pos + 1 + nb + length))
        pos += 1 + nb + length
    return out


def load(path_or_bytes: Path | bytes, **kw: object) -> list[dict]:
    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    streams, _ = pyxdf.load_xdf(src, **kw)
    return streams


def by_name(streams: list[dict], name: str) -> dict:
    return next(s for s in streams if s["info"]["name"][0] == name)


# -- encoding by the specification ------------------------------------------------------------
def test_varlen_uses_1_4_or_8_bytes():
    assert encode_varlen(0) == b"\x01\x00"
    assert encode_varlen(255) == b"\x01\xff"
    assert encode_varlen(256) == b"\x04" + (256).to_bytes(4, "little")
    assert encode_varlen(2**32) == b"\x08" + (2**32).to_bytes(8, "little")
    with pytest.raises(ValueError, match="non-negative"):
        encode_varlen(-1)


def test_chunk_length_counts_tag_and_content():
    assert encode_chunk(TAG_BOUNDARY, BOUNDARY_UUID) == b"\x01\x12" + b"\x05\x00" + BOUNDARY_UUID
    big = encode_chunk(TAG_SAMPLES, b"x" * 300)
    assert big[:5] == b"\x04" + (302).to_bytes(4, "little") and big[5:7] == b"\x03\x00"


@pytest.mark.parametrize("fmt", ["double64", "float32", "int64", "int32", "int16", "int8"])
def test_samples_chunks_are_the_specified_bytes(tmp_path, fmt):
    """Each write_numeric call is one Samples chunk: StreamId, varlen count, stamped samples.

    Chunk sizes go up and down (1- and 4-byte varlen counts and lengths) so that the writer's
    reused sample buffer is grown and partly reused; values are cast to the stream's format.
    """
    dtype = np.dtype({"double64": "<f8", "float32": "<f4", "int64": "<i8", "int32": "<i4", "int16": "<i2",
                      "int8": "i1"}[fmt])
    info = XdfStreamInfo("x", "misc", fmt, 10.0, (XdfChannel("a"), XdfChannel("b"), XdfChannel("c")))
    rng = np.random.default_rng(1)
    path = tmp_path / "a.xdf"
    expected = []
    with XdfWriter(path, wall_clock=FakeWall()) as w:
        sid = w.add_stream(info)
        for n in (1, 2, 300, 255, 256, 5, 1000, 3):
            values = np.clip(rng.normal(0, 40, (3, n)), -120, 120).T  # transposed, as the recorder passes it
            times = np.sort(rng.random(n)) + n
            w.write_numeric(sid, values, times)
            body = b"".join(
                b"\x08" + struct.pack("<d", t) + row.astype(dtype).tobytes() for t, row in zip(times, values)
            )
            expected.append(encode_chunk(TAG_SAMPLES, struct.pack("<I", sid) + encode_varlen(n) + body))
    raw = path.read_bytes()
    samples = [raw[a:b] for a, tag, b in chunks_of(raw) if tag == TAG_SAMPLES]
    assert samples == expected


def test_file_starts_with_magic_and_header_xml(tmp_path):
    path = tmp_path / "a.xdf"
    with XdfWriter(path, header=(("calmloop", (("format_version", "1"),)),)):
        pass
    raw = path.read_bytes()
    assert raw[:4] == b"XDF:"
    start, tag, end = chunks_of(raw)[0]
    assert tag == 1
    root = ET.fromstring(raw[start + 4 : end])  # 1 + 1 length bytes + 2 tag bytes
    assert root.findtext("version") == "1.0" and root.findtext("calmloop/format_version") == "1"


# -- round trips through pyxdf ----------------------------------------------------------------
def test_pyxdf_reads_values_and_stamps_bit_for_bit(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.normal(0, 50, (300, 2))
    times = np.arange(300) / 256.0 + 1e-7 * rng.random(300)  # jittered: stamps must not be deduced
    path = tmp_path / "a.xdf"
    with XdfWriter(path) as w:
        sid = w.add_stream(EEG)
        mid = w.add_stream(MARKERS)
        for lo in range(0, 300, 37):
            w.write_numeric(sid, values[lo : lo + 37], times[lo : lo + 37])
        w.write_strings(mid, ["start", "ünïcode, with spaces"], [0.5, 1.0])
    streams = load(path, dejitter_timestamps=False)
    eeg = by_name(streams, "test-eeg")
    assert_array_equal(eeg["time_series"], values)
    assert_array_equal(eeg["time_stamps"], times)
    assert by_name(streams, "test-markers")["time_series"] == [["start"], ["ünïcode, with spaces"]]
    desc = eeg["info"]["desc"][0]
    assert desc["manufacturer"] == ["Muse"]
    assert [c["label"][0] for c in desc["channels"][0]["channel"]] == ["TP9", "AF7"]
    assert desc["channels"][0]["channel"][0]["unit"] == ["microvolts"]
    assert desc["calmloop"][0]["note"] == ["a & b < c"]  # XML-escaped on the way out
    assert float(eeg["info"]["nominal_srate"][0]) == 256.0
    footer = eeg["footer"]["info"]
    assert footer["sample_count"] == ["300"] and float(footer["last_timestamp"][0]) == times[-1]


@pytest.mark.parametrize("fmt, dtype", [("float32", np.float32), ("int32", np.int32), ("int16", np.int16)])
def test_other_numeric_formats(tmp_path, fmt, dtype):
    info = XdfStreamInfo("x", "misc", fmt, 10.0, (XdfChannel("a"), XdfChannel("b"), XdfChannel("c")))
    values = (np.arange(30).reshape(10, 3) * 3 - 40).astype(dtype)
    with XdfWriter(tmp_path / "a.xdf") as w:
        w.write_numeric(w.add_stream(info), values, np.arange(10) / 10.0)
    (s,) = load(tmp_path / "a.xdf")
    assert s["time_series"].dtype == dtype
    assert_array_equal(s["time_series"], values)


def test_stream_without_samples_and_no_footers_still_loads(tmp_path):
    path = tmp_path / "a.xdf"
    w = XdfWriter(path)
    w.add_stream(EEG)
    w.flush()
    raw = path.read_bytes()  # as after a crash: headers only, no footer
    (s,) = load(raw)
    assert s["time_series"].shape == (0, 2) and "footer" not in s
    w.close()


def test_wrong_calls_raise(tmp_path):
    with XdfWriter(tmp_path / "a.xdf") as w:
        sid, mid = w.add_stream(EEG), w.add_stream(MARKERS)
        with pytest.raises(ValueError, match=r"expected shape \(n_samples, 2\)"):
            w.write_numeric(sid, np.zeros((2, 5)), np.arange(5.0))
        with pytest.raises(ValueError, match="holds strings"):
            w.write_numeric(mid, np.zeros((1, 1)), [0.0])
        with pytest.raises(ValueError, match="is numeric"):
            w.write_strings(sid, ["a"], [0.0])
        with pytest.raises(ValueError, match="Call add_stream"):
            w.write_numeric(99, np.zeros((1, 2)), [0.0])
    with pytest.raises(ValueError, match="closed"):
        w.write_numeric(sid, np.zeros((1, 2)), [0.0])
    with pytest.raises(ValueError, match="channel_format"):
        XdfStreamInfo("x", "y", "float16", 1.0, (XdfChannel("a"),))
    with pytest.raises(ValueError, match="nominal_srate"):
        XdfStreamInfo("x", "y", "float32", -1.0, (XdfChannel("a"),))


def test_never_overwrites_and_is_private(tmp_path):
    path = tmp_path / "a.xdf"
    XdfWriter(path).close()
    assert (path.stat().st_mode & 0o777) == 0o600
    with pytest.raises(FileExistsError):
        XdfWriter(path)


# -- flushing and crash safety ----------------------------------------------------------------
def test_data_reaches_the_file_within_the_flush_interval(tmp_path):
    wall = FakeWall()
    path = tmp_path / "a.xdf"
    w = XdfWriter(path, wall_clock=wall, flush_interval_s=1.0)
    sid = w.add_stream(EEG)
    headers = path.stat().st_size  # stream headers are written at once
    w.write_numeric(sid, np.zeros((12, 2)), np.arange(12) / 256)
    wall.t += 0.5
    w.write_numeric(sid, np.zeros((12, 2)), (12 + np.arange(12)) / 256)
    assert path.stat().st_size == headers and w.buffered_bytes > 0  # held back for 0.5 s
    wall.t += 0.6
    w.write_numeric(sid, np.zeros((12, 2)), (24 + np.arange(12)) / 256)
    assert path.stat().st_size > headers and w.buffered_bytes == 0  # flushed after 1.1 s
    (s,) = load(path.read_bytes())  # readable while still open, without footers
    assert s["time_series"].shape == (36, 2)
    w.close()


def test_large_buffers_are_written_at_once(tmp_path):
    wall = FakeWall()
    w = XdfWriter(tmp_path / "a.xdf", wall_clock=wall, max_buffer_bytes=4096)
    sid = w.add_stream(EEG)
    w.write_numeric(sid, np.zeros((256, 2)), np.arange(256) / 256)  # 256 * 25 bytes > 4096
    assert w.buffered_bytes == 0
    w.close()


def test_boundary_chunks_every_interval(tmp_path):
    wall = FakeWall()
    path = tmp_path / "a.xdf"
    with XdfWriter(path, wall_clock=wall, flush_interval_s=1.0, boundary_interval_s=10.0) as w:
        sid = w.add_stream(EEG)
        for k in range(25):
            wall.t += 1.0
            w.write_numeric(sid, np.zeros((1, 2)), [k / 256])
    tags = [tag for _, tag, _ in chunks_of(path.read_bytes())]
    assert tags.count(TAG_BOUNDARY) == 2  # after 10 s and 20 s of wall time
    assert tags.count(TAG_STREAM_FOOTER) == 1 and tags[-1] == TAG_STREAM_FOOTER


def test_pyxdf_reads_every_cut_at_a_chunk_boundary(tmp_path):
    """The writer's files end on chunk boundaries after a kill: pyxdf keeps every whole chunk."""
    path = tmp_path / "a.xdf"
    values = np.arange(60, dtype=float).reshape(30, 2)
    with XdfWriter(path) as w:
        sid, mid = w.add_stream(EEG), w.add_stream(MARKERS)
        for k in range(3):
            w.write_numeric(sid, values[10 * k : 10 * k + 10], np.arange(10 * k, 10 * k + 10) / 256)
            w.write_strings(mid, [f"m{k}"], [k / 10])
    raw = path.read_bytes()
    for start, tag, _ in chunks_of(raw)[3:]:
        streams = load(raw[:start], dejitter_timestamps=False)
        eeg = by_name(streams, "test-eeg")
        n = eeg["time_series"].shape[0]
        assert_array_equal(eeg["time_series"], values[:n])


def test_pyxdf_limits_on_arbitrary_cuts(tmp_path, caplog):
    """Documents pyxdf 1.17 on a file cut *anywhere* (a partial write, a power cut).

    pyxdf raises only when the cut falls inside the 2-byte tag of a chunk (its tag read is not
    guarded); a cut inside the values of the last sample returns that sample with stale bytes.
    ``sensors.readers`` handles both (see tests/sensors/test_readers.py).
    """
    path = tmp_path / "a.xdf"
    with XdfWriter(path) as w:
        sid = w.add_stream(EEG)
        for k in range(3):
            w.write_numeric(sid, np.full((4, 2), float(k)), np.arange(4 * k, 4 * k + 4) / 256)
    raw = path.read_bytes()
    chunks = chunks_of(raw)
    tag_bytes = set()
    for start, _, _ in chunks:
        nb = raw[start]
        tag_bytes |= {start + 1 + nb, start + 2 + nb}  # cut right before or inside the tag
    caplog.set_level(logging.CRITICAL, logger="pyxdf")
    failing = set()
    for cut in range(chunks[2][0], len(raw)):  # after the stream header
        try:
            load(raw[:cut])
        except struct.error:
            failing.add(cut)
    assert failing <= tag_bytes


def test_flush_with_fsync_and_close_are_idempotent(tmp_path):
    w = XdfWriter(tmp_path / "a.xdf")
    w.flush(fsync=True)
    w.close()
    w.close()
    w.flush()
    assert w.closed and w.bytes_written == os.path.getsize(tmp_path / "a.xdf")
