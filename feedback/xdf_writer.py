"""A minimal append-only XDF 1.0 writer, crash-safe up to the last flush.

Written from the XDF 1.0 specification (github.com/sccn/xdf, wiki page "Specifications") and
checked against pyxdf's reader.  The layout, all integers little-endian:

* the magic code ``XDF:``, then a sequence of *chunks*;
* a chunk is ``[NumLengthBytes: u8 = 1, 4 or 8] [Length: that many bytes] [Tag: u16]
  [Content]``, where ``Length`` counts the tag and the content;
* tags: 1 FileHeader (XML), 2 StreamHeader (``[StreamId: u32]`` + XML), 3 Samples,
  4 ClockOffset (``[StreamId] [CollectionTime: f64] [OffsetValue: f64]``), 5 Boundary (a fixed
  16-byte UUID that lets a reader re-synchronise after corruption), 6 StreamFooter
  (``[StreamId]`` + XML);
* Samples content: ``[StreamId: u32] [NumSamples: varlen]`` then per sample
  ``[TimeStampBytes: u8 = 0 or 8] [TimeStamp: f64, if 8] [values]``; numeric values are the
  channels packed in the stream's format, each string value is ``[varlen length] [utf-8]``.
  A *varlen* integer is ``[NumBytes: u8 = 1, 4 or 8] [value: that many bytes]``.

Crash safety
------------
Chunks are self-delimiting, so a file cut anywhere still holds every chunk before the cut.
This writer keeps whole chunks in its own buffer and hands them to the operating system with
unbuffered ``os.write`` calls, at least every ``flush_interval_s`` seconds of wall time (and
whenever ``max_buffer_bytes`` are waiting).  After ``kill -9`` the file therefore ends on a chunk
boundary (a write interrupted inside the kernel could still leave a partial chunk; a power cut
can lose what the page cache held, unless :meth:`XdfWriter.flush` is called with
``fsync=True``).  Stream headers are flushed at once; StreamFooter chunks are only written by
:meth:`XdfWriter.close`.  pyxdf reads a file without footers, and ignores an incomplete last
Samples chunk, but it raises ``struct.error`` when the cut falls inside the 2-byte tag of a
chunk (its tag read is not guarded): ``sensors.readers`` reads any cut.

A Boundary chunk is written at most every ``boundary_interval_s`` (LabRecorder writes one
every 10 s), so that a reader can skip a corrupted region.
"""

from __future__ import annotations

import logging
import math
import os
import struct
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "BOUNDARY_UUID",
    "CHANNEL_FORMATS",
    "TAG_BOUNDARY",
    "TAG_CLOCK_OFFSET",
    "TAG_FILE_HEADER",
    "TAG_SAMPLES",
    "TAG_STREAM_FOOTER",
    "TAG_STREAM_HEADER",
    "XdfChannel",
    "XdfStreamInfo",
    "XdfWriter",
    "XmlNode",
    "encode_chunk",
    "encode_varlen",
]

logger = logging.getLogger(__name__)

MAGIC = b"XDF:"
TAG_FILE_HEADER = 1
TAG_STREAM_HEADER = 2
TAG_SAMPLES = 3
TAG_CLOCK_OFFSET = 4
TAG_BOUNDARY = 5
TAG_STREAM_FOOTER = 6
#: Content of every Boundary chunk (the UUID fixed by the XDF specification).
BOUNDARY_UUID = bytes.fromhex("43A546DCCBF5410FB30ED5467383CBE4")

#: XDF channel formats and their little-endian numpy types (None: strings).
CHANNEL_FORMATS: Mapping[str, np.dtype[np.generic] | None] = {
    "double64": np.dtype("<f8"),
    "float32": np.dtype("<f4"),
    "int64": np.dtype("<i8"),
    "int32": np.dtype("<i4"),
    "int16": np.dtype("<i2"),
    "int8": np.dtype("i1"),
    "string": None,
}

#: An XML element without attributes: ``(tag, text)`` or ``(tag, (children...))``.  pyxdf drops
#: attributes, so metadata is written as nested elements only.
XmlNode = tuple[str, Union[str, "tuple[XmlNode, ...]"]]


@dataclass(frozen=True, slots=True)
class XdfChannel:
    """One channel of a stream header: ``desc/channels/channel`` with label, unit and type."""

    label: str
    unit: str = ""
    type: str = ""


@dataclass(frozen=True, slots=True)
class XdfStreamInfo:
    """What a StreamHeader chunk declares.

    Parameters
    ----------
    name, type : str
        Stream name and content type (``"EEG"``, ``"Markers"``...).
    channel_format : str
        One of :data:`CHANNEL_FORMATS` (``"double64"``, ``"float32"``, ``"string"``, ...).
    nominal_srate : float
        Nominal rate in Hz; 0 for irregular streams.
    channels : tuple of XdfChannel
        One entry per channel (sets ``channel_count``).
    source_id : str
        Stable id of the source.
    manufacturer : str
        ``desc/manufacturer``, when known.
    desc : tuple of XmlNode
        More elements under ``desc`` (after ``manufacturer`` and ``channels``).
    """

    name: str
    type: str
    channel_format: str
    nominal_srate: float
    channels: tuple[XdfChannel, ...]
    source_id: str = ""
    manufacturer: str = ""
    desc: tuple[XmlNode, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.channel_format not in CHANNEL_FORMATS:
            raise ValueError(
                f"Invalid value for 'channel_format': expected one of {', '.join(CHANNEL_FORMATS)}, got "
                f"{self.channel_format!r}."
            )
        if not self.channels:
            raise ValueError("Invalid value for 'channels': expected at least one channel, got none.")
        srate = float(self.nominal_srate)
        if not (math.isfinite(srate) and srate >= 0):
            raise ValueError(
                f"Invalid value for 'nominal_srate': expected a rate >= 0 Hz (0 = irregular), got {srate!r}."
            )
        object.__setattr__(self, "nominal_srate", srate)

    @property
    def channel_count(self) -> int:
        """Number of channels."""
        return len(self.channels)


def encode_varlen(value: int) -> bytes:
    """XDF variable-length integer: 1, 4 or 8 value bytes after a byte that says how many."""
    if value < 0:
        raise ValueError(f"Invalid value for 'value': expected a non-negative integer, got {value!r}.")
    if value <= 0xFF:
        return b"\x01" + value.to_bytes(1, "little")
    if value <= 0xFFFFFFFF:
        return b"\x04" + value.to_bytes(4, "little")
    return b"\x08" + value.to_bytes(8, "little")


def encode_chunk(tag: int, content: bytes) -> bytes:
    """One chunk: varlen length (of tag + content), the u16 tag and the content."""
    return encode_varlen(len(content) + 2) + struct.pack("<H", tag) + content


def _append(parent: ET.Element, node: XmlNode) -> None:
    tag, value = node
    child = ET.SubElement(parent, tag)
    if isinstance(value, str):
        child.text = value
    else:
        for sub in value:
            _append(child, sub)


def _xml_bytes(root: ET.Element) -> bytes:
    return b'<?xml version="1.0"?>' + ET.tostring(root, encoding="utf-8", xml_declaration=False)


def _number(value: float) -> str:
    """A float as XML text that parses back to the same double (``repr``)."""
    return repr(float(value))


def header_xml(info: XdfStreamInfo) -> bytes:
    """The StreamHeader XML of ``info`` (``<info>`` with the fields LSL writes)."""
    root = ET.Element("info")
    for tag, text in (
        ("name", info.name),
        ("type", info.type),
        ("channel_count", str(info.channel_count)),
        ("nominal_srate", _number(info.nominal_srate)),
        ("channel_format", info.channel_format),
        ("source_id", info.source_id),
        ("created_at", "0"),
    ):
        ET.SubElement(root, tag).text = text
    desc = ET.SubElement(root, "desc")
    if info.manufacturer:
        ET.SubElement(desc, "manufacturer").text = info.manufacturer
    channels = ET.SubElement(desc, "channels")
    for ch in info.channels:
        c = ET.SubElement(channels, "channel")
        ET.SubElement(c, "label").text = ch.label
        if ch.unit:
            ET.SubElement(c, "unit").text = ch.unit
        if ch.type:
            ET.SubElement(c, "type").text = ch.type
    for node in info.desc:
        _append(desc, node)
    return _xml_bytes(root)


#: Heads of Samples chunks: [NumLengthBytes][Length][tag 3][StreamId][NumBytes][NumSamples], by
#: the widths of Length and NumSamples (see :func:`encode_varlen`).
_SAMPLES_HEADS = {
    (w_len, w_n): struct.Struct(
        "<B" + {1: "B", 4: "I", 8: "Q"}[w_len] + "HIB" + {1: "B", 4: "I", 8: "Q"}[w_n]
    )
    for w_len in (1, 4, 8)
    for w_n in (1, 4, 8)
}


@dataclass(slots=True)
class _StreamState:
    info: XdfStreamInfo
    dtype: np.dtype[np.generic] | None
    record: np.dtype[np.void] | None
    n_samples: int = 0
    first_time: float = math.nan
    last_time: float = math.nan
    n_channels: int = 0
    # numeric streams: a reused record array whose TimeStampBytes are all 8, as its time and
    # value fields and its bytes (replaced by a larger one when a chunk holds more samples)
    capacity: int = 0
    scratch_ts: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    scratch_v: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    scratch_bytes: memoryview = field(default_factory=lambda: memoryview(b""))

    def grow(self, n: int) -> None:
        """Make room for ``n`` samples in the scratch record array."""
        assert self.record is not None
        scratch = np.empty(max(n, 64), dtype=self.record)  # as large as the largest chunk written
        scratch["tsb"] = 8
        self.capacity = scratch.shape[0]
        self.scratch_ts, self.scratch_v = scratch["ts"], scratch["v"]
        self.scratch_bytes = memoryview(scratch.view(np.uint8))


class XdfWriter:
    """Append-only XDF file writer with bounded data loss on a crash.

    Parameters
    ----------
    path : path-like
        File to create; it must not exist (a recording is never overwritten).
    header : tuple of XmlNode
        Elements of the FileHeader after ``<version>1.0</version>``.
    flush_interval_s : float
        Wall-clock seconds after which buffered chunks are written out (default 1).
    max_buffer_bytes : int
        Buffered bytes that force a write at once (default 1 MiB).
    boundary_interval_s : float
        Wall-clock seconds between Boundary chunks (default 10).
    wall_clock : callable
        Monotonic wall clock in seconds (``time.monotonic``); tests inject a fake one.
    mode : int
        Permissions of the new file (default 0o600: owner only).

    Raises
    ------
    FileExistsError
        If ``path`` exists.
    OSError
        If the file cannot be created.

    Notes
    -----
    Data written by :meth:`write_numeric` / :meth:`write_strings` reaches the operating system
    at the next flush: after a crash the file holds everything up to the last flush.  Time
    stamps are written for every sample (8 bytes each), so they come back bit for bit.

    Examples
    --------
    >>> with XdfWriter(path) as w:  # doctest: +SKIP
    ...     sid = w.add_stream(XdfStreamInfo("eeg", "EEG", "double64", 256.0, (XdfChannel("TP9"),)))
    ...     w.write_numeric(sid, np.zeros((12, 1)), np.arange(12) / 256)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        header: Sequence[XmlNode] = (),
        flush_interval_s: float = 1.0,
        max_buffer_bytes: int = 1 << 20,
        boundary_interval_s: float = 10.0,
        wall_clock: Callable[[], float] = time.monotonic,
        mode: int = 0o600,
    ) -> None:
        if not (flush_interval_s >= 0 and math.isfinite(flush_interval_s)):
            raise ValueError(
                f"Invalid value for 'flush_interval_s': expected seconds >= 0, got {flush_interval_s!r}."
            )
        if not (isinstance(max_buffer_bytes, int) and max_buffer_bytes > 0):
            raise ValueError(
                f"Invalid value for 'max_buffer_bytes': expected a positive int, got {max_buffer_bytes!r}."
            )
        self._path = Path(path)
        self._flush_interval_s = float(flush_interval_s)
        self._max_buffer = int(max_buffer_bytes)
        self._boundary_interval_s = float(boundary_interval_s)
        self._wall = wall_clock
        self._streams: dict[int, _StreamState] = {}
        self._buffer = bytearray()
        self._bytes_written = 0
        self._closed = False
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        self._fd = os.open(self._path, flags, mode)
        try:
            os.fchmod(self._fd, mode)  # the umask may only have narrowed it; make it exact
        except (AttributeError, OSError):  # pragma: no cover - not on every platform
            pass
        root = ET.Element("info")
        ET.SubElement(root, "version").text = "1.0"
        for node in header:
            _append(root, node)
        self._buffer += MAGIC + encode_chunk(TAG_FILE_HEADER, _xml_bytes(root))
        now = self._wall()
        self._last_flush = now
        self._last_boundary = now
        self.flush()

    # -- properties -----------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        """The file being written."""
        return self._path

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    @property
    def bytes_written(self) -> int:
        """Bytes handed to the operating system so far."""
        return self._bytes_written

    @property
    def buffered_bytes(self) -> int:
        """Bytes waiting for the next flush."""
        return len(self._buffer)

    def n_samples(self, stream_id: int) -> int:
        """Samples written to a stream so far."""
        return self._state(stream_id).n_samples

    # -- writing --------------------------------------------------------------------------------
    def add_stream(self, info: XdfStreamInfo) -> int:
        """Declare a stream; its header is written out at once.

        Returns
        -------
        stream_id : int
            Id to pass to the write methods (1, 2, ...).
        """
        self._check_open()
        stream_id = len(self._streams) + 1
        dtype = CHANNEL_FORMATS[info.channel_format]
        record: np.dtype[np.void] | None = None
        if dtype is not None:
            record = np.dtype([("tsb", "u1"), ("ts", "<f8"), ("v", dtype, (info.channel_count,))])
        self._streams[stream_id] = _StreamState(info, dtype, record, n_channels=info.channel_count)
        self._buffer += encode_chunk(TAG_STREAM_HEADER, struct.pack("<I", stream_id) + header_xml(info))
        self.flush()
        return stream_id

    def write_numeric(self, stream_id: int, values: ArrayLike, times: ArrayLike) -> None:
        """Append samples of a numeric stream as one Samples chunk.

        Parameters
        ----------
        stream_id : int
            From :meth:`add_stream`.
        values : array of shape (n_samples, n_channels)
            Sample-major, as in LSL and pyxdf; cast to the stream's format.
        times : array of shape (n_samples,)
            Time stamp of each sample, seconds.

        Raises
        ------
        ValueError
            If the shapes do not match the stream or the stream holds strings.
        """
        if self._closed:
            self._check_open()
        st = self._streams.get(stream_id) or self._state(stream_id)
        record = st.record
        if record is None:
            raise ValueError(
                f"Invalid value for 'stream_id': stream {stream_id} ({st.info.name!r}) holds strings; "
                "use write_strings()."
            )
        v = np.asarray(values)
        t = np.asarray(times, dtype=np.float64)
        shape = t.shape
        n = shape[0] if len(shape) == 1 else -1
        if n < 0 or v.shape != (n, st.n_channels):
            raise ValueError(
                f"Invalid value for 'values': expected shape (n_samples, {st.n_channels}) with "
                f"times of shape (n_samples,), got {v.shape} and {t.shape}. Pass chunk.data.T."
            )
        if n == 0:
            return
        # the bytes of encode_chunk(TAG_SAMPLES, StreamId + encode_varlen(n) + samples), built
        # without intermediate byte strings: the samples in a reused record array (stamps
        # flagged once), the chunk head packed in one call
        if n > st.capacity:
            st.grow(n)
        st.scratch_ts[:n] = t
        st.scratch_v[:n] = v
        size = n * record.itemsize
        w_n = 1 if n <= 0xFF else 4 if n <= 0xFFFFFFFF else 8
        length = 7 + w_n + size  # tag, StreamId, varlen n, samples
        w_len = 1 if length <= 0xFF else 4 if length <= 0xFFFFFFFF else 8
        buffer = self._buffer
        buffer += _SAMPLES_HEADS[w_len, w_n].pack(w_len, length, TAG_SAMPLES, stream_id, w_n, n)
        buffer += st.scratch_bytes[:size]
        if st.n_samples == 0:
            st.first_time = float(t[0])
        st.last_time = float(t[-1])
        st.n_samples += n
        now = self._wall()  # self._maybe_flush(), inline
        if len(buffer) >= self._max_buffer or now - self._last_flush >= self._flush_interval_s:
            self._flush_due(now)

    def write_strings(
        self, stream_id: int, values: Sequence[str] | Sequence[Sequence[str]], times: ArrayLike
    ) -> None:
        """Append samples of a string stream as one Samples chunk.

        Parameters
        ----------
        stream_id : int
            From :meth:`add_stream`.
        values : sequence of str, or sequence of sequences of str
            One string per sample (one-channel streams) or one sequence per sample.
        times : array of shape (n_samples,)
            Time stamps, seconds.
        """
        self._check_open()
        st = self._state(stream_id)
        if st.record is not None:
            raise ValueError(
                f"Invalid value for 'stream_id': stream {stream_id} ({st.info.name!r}) is numeric; "
                "use write_numeric()."
            )
        t = np.asarray(times, dtype=np.float64)
        if t.ndim != 1 or t.shape[0] != len(values):
            raise ValueError(
                f"Invalid value for 'times': expected one time per sample ({len(values)}), got shape "
                f"{t.shape}."
            )
        if t.shape[0] == 0:
            return
        parts = [struct.pack("<I", stream_id), encode_varlen(t.shape[0])]
        for k, sample in enumerate(values):
            chans = (sample,) if isinstance(sample, str) else tuple(sample)
            if len(chans) != st.info.channel_count:
                raise ValueError(
                    f"Invalid value for 'values': expected {st.info.channel_count} strings per sample, "
                    f"got {len(chans)} in sample {k}."
                )
            parts.append(b"\x08" + struct.pack("<d", t[k]))
            for text in chans:
                raw = str(text).encode("utf-8")
                parts.append(encode_varlen(len(raw)) + raw)
        self._buffer += encode_chunk(TAG_SAMPLES, b"".join(parts))
        self._count(st, t)
        self._maybe_flush()

    def write_clock_offset(self, stream_id: int, collection_time: float, offset: float) -> None:
        """Append a ClockOffset chunk (``stream time + offset = recorder time``)."""
        self._check_open()
        self._state(stream_id)
        content = struct.pack("<Idd", stream_id, float(collection_time), float(offset))
        self._buffer += encode_chunk(TAG_CLOCK_OFFSET, content)
        self._maybe_flush()

    def write_boundary(self) -> None:
        """Append a Boundary chunk (a re-synchronisation point for readers)."""
        self._check_open()
        self._buffer += encode_chunk(TAG_BOUNDARY, BOUNDARY_UUID)
        self._last_boundary = self._wall()

    def flush(self, *, fsync: bool = False) -> None:
        """Hand every buffered chunk to the operating system (and to the disk with ``fsync``)."""
        if self._closed:
            return
        if self._buffer:
            view = memoryview(bytes(self._buffer))
            self._buffer.clear()
            while view:
                n = os.write(self._fd, view)
                self._bytes_written += n
                view = view[n:]
        if fsync:
            os.fsync(self._fd)
        self._last_flush = self._wall()

    def close(self, *, footers: bool = True) -> None:
        """Write the StreamFooter chunks (first/last stamp, sample count), flush, fsync, close."""
        if self._closed:
            return
        try:
            if footers:
                for stream_id, st in self._streams.items():
                    root = ET.Element("info")
                    first = _number(st.first_time) if st.n_samples else ""
                    last = _number(st.last_time) if st.n_samples else ""
                    ET.SubElement(root, "first_timestamp").text = first
                    ET.SubElement(root, "last_timestamp").text = last
                    ET.SubElement(root, "sample_count").text = str(st.n_samples)
                    ET.SubElement(root, "clock_offsets")
                    content = struct.pack("<I", stream_id) + _xml_bytes(root)
                    self._buffer += encode_chunk(TAG_STREAM_FOOTER, content)
            self.flush(fsync=True)
        finally:
            self._closed = True
            os.close(self._fd)
        logger.debug("XDF file %s closed (%d bytes)", self._path, self._bytes_written)

    def __enter__(self) -> XdfWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"{self._path}: the XDF writer is closed; open a new file to record again.")

    def _state(self, stream_id: int) -> _StreamState:
        st = self._streams.get(stream_id)
        if st is None:
            raise ValueError(
                f"Invalid value for 'stream_id': expected one of {sorted(self._streams)}, got {stream_id!r}. "
                "Call add_stream() first."
            )
        return st

    @staticmethod
    def _count(st: _StreamState, t: NDArray[np.float64]) -> None:
        if st.n_samples == 0:
            st.first_time = float(t[0])
        st.last_time = float(t[-1])
        st.n_samples += int(t.shape[0])

    def _maybe_flush(self) -> None:
        now = self._wall()
        if len(self._buffer) >= self._max_buffer or now - self._last_flush >= self._flush_interval_s:
            self._flush_due(now)

    def _flush_due(self, now: float) -> None:
        """Flush (after a Boundary chunk when one is due): the buffer is full or old at ``now``."""
        if now - self._last_boundary >= self._boundary_interval_s:
            self.write_boundary()
        self.flush()
