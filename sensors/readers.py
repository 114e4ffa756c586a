"""Readers for recorded sessions and foreign recordings, detected by content.

:func:`read_recording` opens any of

* **calmloop session files** (``session.xdf``, see :mod:`adaptive.records`): raw streams back
  as they were acquired (bit for bit), estimates, decisions and markers;
* **other XDF files** (LabRecorder and friends), decoded with pyxdf (clock synchronisation,
  clock-reset handling and de-jittering with pyxdf's defaults).  Signal streams are recognised
  by their XDF type or, failing that, by the end of their name:

  ==========================  =============================  ==================================
  writer                      streams (name / type)          channel labels
  ==========================  =============================  ==================================
  muselsl ``stream``          ``Muse`` / ``EEG``, ``PPG``,   ``TP9 AF7 AF8 TP10 Right AUX``;
                              ``ACC``, ``GYRO``              ``PPG1-3``; ``X Y Z``
  BlueMuse                    type ``EEG``, ``PPG``,         ``TP9 AF7 AF8 TP10`` (+``Right
                              ``Accelerometer``,             AUX`` on the Muse 2016); ``PPG1-3``;
                              ``Gyroscope`` (``Telemetry``   ``X Y Z``
                              is skipped)
  Petal Metrics               ``PetalStream_eeg``,           assumed Muse order when the header
                              ``_ppg``, ``_acceleration``,   has no labels (``TP9 AF7 AF8 TP10``
                              ``_gyroscope``                 [+ ``Right AUX``], ``PPG1-3``, ``X Y Z``)
  ==========================  =============================  ==================================

  Units are read from ``desc/channels/channel/unit`` and converted to
  :data:`adaptive.types.UNITS` (volts and millivolts to microvolts, m/s^2 to g, rad/s to
  deg/s); a missing unit is assumed to be the Muse one.  muselsl and BlueMuse label PPG
  "mmHg": those are raw optical counts, kept as they are.  Streams of other types (EDA,
  indices, telemetry) are listed in ``metadata["skipped_streams"]`` with the reason; string
  streams become markers.  Stream names and layouts above come from the muselsl
  (``muselsl/stream.py``) and BlueMuse (``Misc/Constants.cs``) sources; Petal Metrics'
  layout is an assumption from its documented stream names.
* **BrainFlow files** (``DataFilter.write_file`` / ``add_streamer("file://...")``): tab- or
  comma-separated numbers without header, one file per preset.  The preset is recognised by
  the number of columns and rows are mapped with BrainFlow's board descriptor through
  :func:`sensors.brainflow_source.describe_boards` (Muse 2 by default; Muse S, Muse S Athena
  and the synthetic board are tried when the column count does not fit).
* **muselsl CSV files** (``muselsl record``): a header ``timestamps,TP9,AF7,AF8,TP10,Right
  AUX`` (EEG), ``timestamps,PPG1,PPG2,PPG3`` or ``timestamps,X,Y,Z`` (accelerometer or
  gyroscope: told apart by the file name, ``ACC_``/``GYRO_``, else by the magnitude).

Pass several paths to merge files of one session (three BrainFlow presets, muselsl's EEG and
PPG files): they must share a clock.

Timing: a stream whose time stamps are not finite and strictly increasing, or whose effective
rate differs from the nominal one by more than ``rate_tolerance`` (a glitched clock, e.g. 10572
Muse samples spanning 957 s), is re-timed as ``first stamp + sample_index / sfreq`` with a
WARNING that names the file.  Foreign times stay on the device clock
(``metadata["time_base"] == "device"``); :class:`sensors.replay.ReplaySource` shifts them to
start at 0.

Errors: an unsupported, empty, corrupt or too-short file raises :class:`SensorError` naming
the file, what was expected and what was found.  An XDF file cut short (a crash) is read up to
its last complete chunk with a WARNING (``strict=True`` raises instead); corrupt bytes inside
are skipped to the next Boundary chunk.
"""

from __future__ import annotations

import gzip
import io
import logging
import math
import re
import struct
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
from numpy.typing import NDArray
from brainflow.board_shim import BoardShim, BrainFlowPresets

from adaptive._jit import kernel
from adaptive.controller import PacingDecision
from adaptive.errors import SensorError
from adaptive.records import (
    ESTIMATES_STREAM,
    FORMAT_VERSION,
    MARKERS_STREAM,
    PACER_STREAM,
    TIME_BASE,
    XDF_FILENAME,
    Marker,
    RecordedStream,
    Recording,
    decisions_from_rows,
    estimates_from_rows,
)
from adaptive.types import Estimate, FloatArray, SignalKind, StreamSpec

from .brainflow_source import BOARD_MODELS, describe_boards

__all__ = [
    "detect_format",
    "read_brainflow",
    "read_muselsl_csv",
    "read_recording",
    "read_xdf",
    "repair_times",
]

logger = logging.getLogger(__name__)

_MAGIC = b"XDF:"
_BOUNDARY_UUID = bytes.fromhex("43A546DCCBF5410FB30ED5467383CBE4")
_NUMERIC = {
    "double64": np.dtype("<f8"),
    "float32": np.dtype("<f4"),
    "int64": np.dtype("<i8"),
    "int32": np.dtype("<i4"),
    "int16": np.dtype("<i2"),
    "int8": np.dtype("i1"),
}
_HEAD_BYTES = 65536

#: Muse rates of muselsl CSV streams (muselsl constants).
_MUSE_RATES: Mapping[SignalKind, float] = {
    SignalKind.EEG: 256.0,
    SignalKind.PPG: 64.0,
    SignalKind.ACCEL: 52.0,
    SignalKind.GYRO: 52.0,
}
#: Channel labels assumed when an XDF header has none (Muse order, as muselsl/BlueMuse write).
_DEFAULT_LABELS: Mapping[tuple[SignalKind, int], tuple[str, ...]] = {
    (SignalKind.EEG, 4): ("TP9", "AF7", "AF8", "TP10"),
    (SignalKind.EEG, 5): ("TP9", "AF7", "AF8", "TP10", "Right AUX"),
    (SignalKind.PPG, 3): ("PPG1", "PPG2", "PPG3"),
    (SignalKind.ACCEL, 3): ("X", "Y", "Z"),
    (SignalKind.GYRO, 3): ("X", "Y", "Z"),
}
#: XDF stream types (lower case) and name suffixes that mean a signal kind.
_KIND_WORDS: Mapping[str, SignalKind] = {
    "eeg": SignalKind.EEG,
    "ppg": SignalKind.PPG,
    "acc": SignalKind.ACCEL,
    "accel": SignalKind.ACCEL,
    "accelerometer": SignalKind.ACCEL,
    "acceleration": SignalKind.ACCEL,
    "gyro": SignalKind.GYRO,
    "gyroscope": SignalKind.GYRO,
}
#: Unit strings (lower case) and the factor to calmloop's units, per kind.
_UNIT_SCALES: Mapping[SignalKind, Mapping[str, float]] = {
    SignalKind.EEG: {
        "microvolts": 1.0, "microvolt": 1.0, "uv": 1.0, "µv": 1.0, "μv": 1.0,
        "volts": 1e6, "volt": 1e6, "v": 1e6, "millivolts": 1e3, "mv": 1e3, "nanovolts": 1e-3, "nv": 1e-3,
    },
    SignalKind.ACCEL: {
        "g": 1.0, "m/s^2": 1 / 9.80665, "m/s2": 1 / 9.80665, "m/s²": 1 / 9.80665,
        "meters per second squared": 1 / 9.80665,
    },
    SignalKind.GYRO: {
        "dps": 1.0, "deg/s": 1.0, "degrees/second": 1.0, "degrees per second": 1.0, "°/s": 1.0,
        "rad/s": 180.0 / math.pi, "radians per second": 180.0 / math.pi,
    },
    SignalKind.PPG: {},  # optical counts in any unit (muselsl/BlueMuse say "mmHg"): kept as they are
}
#: 10-20 electrode names (Fp1, AF7, TP10, Cz, ...).
_EEG_NAME = re.compile(r"^(?:FP|AF|F|FC|FT|C|CP|T|TP|P|PO|O|I)(?:\d+|Z)$", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------------------------
def detect_format(path: str | Path) -> str:
    """Recognise a file by its content.

    Returns
    -------
    format : {"xdf", "brainflow", "muselsl-csv"}
        ``"xdf"`` also covers gzip-compressed XDF and calmloop session files.

    Raises
    ------
    SensorError
        If the file is missing, empty or of an unsupported kind (the message says what was found).
    """
    p = Path(path)
    head = _head(p)
    if head.startswith(_MAGIC):
        return "xdf"
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(p, "rb") as f:
                inner = f.read(4)
        except OSError as exc:
            raise SensorError(
                f"{p}: a gzip file that cannot be decompressed ({exc}); expected XDF (.xdfz)."
            ) from exc
        if inner == _MAGIC:
            return "xdf"
        raise SensorError(
            f"{p}: a gzip file that does not hold XDF (starts with {inner!r}, expected b'XDF:')."
        )
    text = head.decode("utf-8", errors="replace")
    first = text.splitlines()[0] if text.strip() else ""
    if not first.strip():
        raise SensorError(f"{p}: empty file; expected XDF, a BrainFlow file or a muselsl CSV.")
    if "\x00" in text:
        raise SensorError(f"{p}: {_unsupported(head)}")
    cells = [c.strip() for c in re.split(r"[\t,]", first)]
    if all(_is_number(c) for c in cells if c):
        return "brainflow"
    if cells and cells[0].lower() in ("timestamps", "timestamp"):
        if len(cells) > 1 and any(c.upper().startswith(("RAW_", "DELTA_", "ALPHA_")) for c in cells):
            raise SensorError(
                f"{p}: a Mind Monitor CSV export (columns {', '.join(cells[:4])}, ...) is not supported; "
                "expected a muselsl CSV (timestamps,TP9,AF7,AF8,TP10,Right AUX), a BrainFlow file or XDF."
            )
        return "muselsl-csv"
    raise SensorError(f"{p}: {_unsupported(head)}")


def read_recording(
    paths: str | Path | Sequence[str | Path],
    *,
    board: str | None = None,
    strict: bool = False,
    rate_tolerance: float = 0.1,
) -> Recording:
    """Read one recording, or merge several files of one session, detecting each format.

    Parameters
    ----------
    paths : path or sequence of paths
        An XDF file (calmloop or foreign), a session folder (its ``session.xdf``), BrainFlow
        file(s) (one per preset) or muselsl CSV(s).
    board : str or None
        BrainFlow board key of :data:`sensors.brainflow_source.BOARD_MODELS` for BrainFlow files
        (None: Muse 2, else the first board whose preset tables fit the column count).
    strict : bool
        Raise on an XDF file cut short instead of reading up to its last complete chunk.
    rate_tolerance : float
        Relative difference between effective and nominal rate above which time stamps are
        replaced by ``sample_index / sfreq`` (default 0.1).

    Returns
    -------
    Recording
        Streams, markers, estimates, decisions and metadata (see :class:`adaptive.records.Recording`).

    Raises
    ------
    SensorError
        If a file is unsupported, corrupt, holds no usable stream, or two files hold the same
        signal kind.
    """
    items = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not items:
        raise ValueError("Invalid value for 'paths': expected at least one file, got none.")
    for i, item in enumerate(items):
        if item.is_dir():  # a session folder: its session.xdf
            if not (item / XDF_FILENAME).is_file():
                raise SensorError(
                    f"{item}: a folder without {XDF_FILENAME}; expected a session folder or a file."
                )
            items[i] = item / XDF_FILENAME
    formats = [detect_format(p) for p in items]
    parts: list[Recording] = []
    xdf = [p for p, f in zip(items, formats) if f == "xdf"]
    brainflow = [p for p, f in zip(items, formats) if f == "brainflow"]
    csv = [p for p, f in zip(items, formats) if f == "muselsl-csv"]
    for p in xdf:
        parts.append(read_xdf(p, strict=strict, rate_tolerance=rate_tolerance))
    if brainflow:
        parts.append(read_brainflow(brainflow, board=board, rate_tolerance=rate_tolerance))
    if csv:
        parts.append(read_muselsl_csv(csv, rate_tolerance=rate_tolerance))
    return parts[0] if len(parts) == 1 else _merge(parts, items)


def repair_times(
    times: FloatArray, sfreq: float, where: str, *, rate_tolerance: float = 0.1
) -> tuple[FloatArray, str]:
    """Return usable times: the given ones, or ``t0 + sample_index / sfreq`` if they are glitched.

    Parameters
    ----------
    times : array of shape (n,)
        Recorded time stamps, seconds.
    sfreq : float
        Nominal rate in Hz.
    where : str
        File and stream, for the warning.
    rate_tolerance : float
        Largest accepted relative difference between effective and nominal rate.

    Returns
    -------
    times : array of shape (n,)
        Strictly increasing, finite times.
    problem : str
        Why the stamps were replaced (empty when they were kept).
    """
    t = np.asarray(times, dtype=np.float64)
    n = t.shape[0]
    if n == 0:
        return t, ""
    finite = np.isfinite(t)
    problems: list[str] = []
    if not finite.all():
        problems.append(f"{int((~finite).sum())} non-finite time stamps")
    if n > 1:
        d = np.diff(t)
        bad = int(np.count_nonzero(~(d > 0)))
        if bad:
            problems.append(f"{bad} repeated or decreasing time stamps")
        span = float(t[finite][-1] - t[finite][0]) if finite.sum() > 1 else 0.0
        if span > 0:
            eff = (n - 1) / span
            if abs(eff / sfreq - 1.0) > rate_tolerance:
                problems.append(
                    f"{n} samples span {span:.1f} s (effective {eff:.3g} Hz, nominal {sfreq:g} Hz)"
                )
    if not problems:
        return t, ""
    t0 = float(t[finite][0]) if finite.any() else 0.0
    problem = "; ".join(problems)
    logger.warning("%s: %s; timing from sample_index / %g Hz instead.", where, problem, sfreq)
    return t0 + np.arange(n, dtype=np.float64) / sfreq, problem


# ---------------------------------------------------------------------------------------------
# XDF
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Chunks:
    """The whole chunks of a file, in file order, as parallel arrays (one entry per chunk)."""

    tag: NDArray[np.int64]
    start: NDArray[np.int64]  # first byte of the chunk (its NumLengthBytes)
    content: NDArray[np.int64]  # first byte after the tag
    end: NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.tag.shape[0])


@dataclass(slots=True)
class _XdfStream:
    sid: int
    name: str
    type: str
    channel_count: int
    srate: float
    fmt: str
    desc: ET.Element | None
    info: ET.Element
    times: list[FloatArray] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)
    strings: list[list[str]] = field(default_factory=list)
    last_time: float = 0.0
    clock_offsets: list[tuple[float, float]] = field(default_factory=list)
    # numeric samples decoded chunk by chunk (the slow path), keyed by chunk index, and the
    # index of the last such chunk; merged with the vectorised ones by _merge_samples
    slow: list[tuple[int, FloatArray, np.ndarray]] = field(default_factory=list)
    last_slow: int = -1

    def labels(self) -> list[str]:
        out: list[str] = []
        chans = self.desc.find("channels") if self.desc is not None else None
        if chans is not None:
            out = [(c.findtext("label") or "").strip() for c in chans.findall("channel")]
        return out if len(out) == self.channel_count and all(out) else []


@dataclass(frozen=True, slots=True)
class _FastSamples:
    """The Samples chunks of one numeric stream decoded at once (every sample stamped).

    ``index`` holds the chunk index of every such chunk with at least one sample, ``bounds``
    where its samples start and end (``bounds[k]:bounds[k + 1]``); ``times``/``values`` hold
    the samples in chunk order.
    """

    index: NDArray[np.int64]
    bounds: NDArray[np.int64]
    times: FloatArray
    values: np.ndarray

    def last_stamp_before(self, chunk: int) -> tuple[int, float]:
        """Chunk index and last stamp of the newest chunk before ``chunk`` (-1 if none)."""
        k = int(np.searchsorted(self.index, chunk))
        if k == 0:
            return -1, 0.0
        return int(self.index[k - 1]), float(self.times[int(self.bounds[k]) - 1])


class _Corrupt(Exception):
    """A chunk whose content does not decode."""


def read_xdf(path: str | Path, *, strict: bool = False, rate_tolerance: float = 0.1) -> Recording:
    """Read an XDF file: a calmloop session file exactly, any other through pyxdf.

    Parameters
    ----------
    path : path-like
        ``.xdf`` or gzip-compressed ``.xdfz`` file.
    strict : bool
        Raise :class:`SensorError` when the file is cut short (default: read up to the last
        complete chunk, with a WARNING).
    rate_tolerance : float
        See :func:`repair_times` (foreign files only).

    Returns
    -------
    Recording

    Raises
    ------
    SensorError
        If the file is not XDF, has no readable header, no stream, or (``strict``) is cut short.
    """
    p = Path(path)
    buf = _read_bytes(p)
    if not buf.startswith(_MAGIC):
        raise SensorError(f"{p}: not an XDF file: expected the magic code b'XDF:', found {buf[:4]!r}.")
    chunks, problems, truncated = _scan_chunks(buf)
    if truncated is not None:
        msg = (
            f"file cut short or corrupt at byte {truncated} of {len(buf)}: read up to the last "
            "complete chunk"
        )
        if strict:
            raise SensorError(f"{p}: {msg}; expected complete chunks (strict=True).")
        problems.append(msg)
    if not len(chunks) or chunks.tag[0] != 1:
        if len(chunks):
            found = f"a chunk with tag {chunks.tag[0]}"
        elif problems:
            found = f"{problems[0]} (starting {buf[4:12].hex(' ')})"
        else:
            found = f"{len(buf) - 4} bytes that do not form a chunk"
        raise SensorError(f"{p}: corrupt or truncated XDF: expected a FileHeader chunk after the magic code, "
                          f"found {found}.")
    header = _parse_xml(buf[chunks.content[0] : chunks.end[0]])
    if header is None:
        raise SensorError(f"{p}: corrupt XDF: expected an XML file header, found text that does not parse.")
    streams, kept = _decode_chunks(buf, chunks, problems)
    for problem in problems:
        logger.warning("%s: %s", p, problem)
    if not streams:
        raise SensorError(f"{p}: an XDF file without any stream header; expected at least one stream.")
    version = header.findtext("calmloop/format_version")
    if version is not None:
        return _calmloop_recording(p, header, streams, problems, truncated is not None, version)
    view = memoryview(buf)
    spans = zip(chunks.start[kept].tolist(), chunks.end[kept].tolist())
    clean = _MAGIC + b"".join(view[a:b] for a, b in spans)
    return _foreign_xdf_recording(p, header, clean, problems, truncated is not None, rate_tolerance)


def _read_bytes(p: Path) -> bytes:
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise SensorError(f"{p}: cannot read the file ({exc.strerror or exc}).") from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise SensorError(f"{p}: compressed XDF that does not decompress ({exc}).") from exc
    return raw


# Input bytes are declared read-only (np.frombuffer of the file's bytes), any layout.
_RO_BYTES = "Array(uint8, 1, 'A', readonly=True)"


@kernel(f"Tuple((int64[:, :], int64))({_RO_BYTES}, int64)")
def _whole_chunks(b, pos):  # pragma: no cover - compiled
    """The common step of the ``_scan_chunks`` loop, run from ``pos`` while it applies.

    Returns the ``(start, tag, end)`` of every consecutive chunk that is valid and complete
    (NumLengthBytes 1, 4 or 8, Length >= 2, tag 1..6, end within the file), and where the
    first byte that does not start such a chunk is (``len(b)`` when none).
    """
    n = b.shape[0]
    rows = np.empty((min((n - pos) // 4 + 1, 4096), 3), dtype=np.int64)  # doubled when full
    k = 0
    p = pos
    while p < n:
        nb = np.int64(b[p])
        if (nb != 1 and nb != 4 and nb != 8) or p + 3 + nb > n:
            break
        length = np.uint64(0)
        for j in range(nb):
            length |= np.uint64(b[p + 1 + j]) << np.uint64(8 * j)
        if length < np.uint64(2) or length > np.uint64(n):
            break
        end = p + 1 + nb + np.int64(length)
        tag = np.int64(b[p + 1 + nb]) | (np.int64(b[p + 2 + nb]) << 8)
        if tag < 1 or tag > 6 or end > n:
            break
        if k == rows.shape[0]:
            grown = np.empty((2 * k, 3), dtype=np.int64)
            grown[:k] = rows
            rows = grown
        rows[k, 0] = p
        rows[k, 1] = tag
        rows[k, 2] = end
        k += 1
        p = end
    return rows[:k].copy(), p


def _scan_chunks(buf: bytes) -> tuple[_Chunks, list[str], int | None]:
    """Split the file into whole chunks.

    Returns the chunks, the problems met, and the offset where the file stops making sense
    (a cut or a corrupt tail), or None.  Corrupt bytes followed by a Boundary chunk are skipped.
    """
    b = np.frombuffer(buf, dtype=np.uint8)
    runs: list[NDArray[np.int64]] = []
    problems: list[str] = []
    truncated: int | None = None
    pos, n = len(_MAGIC), len(buf)
    while pos < n:
        rows, pos = _whole_chunks(b, pos)  # every valid, complete chunk from pos on (compiled)
        runs.append(rows)
        if pos >= n:
            break
        nb = buf[pos]
        head = pos + 1 + nb
        length = int.from_bytes(buf[pos + 1 : head], "little") if nb in (1, 4, 8) and head <= n else -1
        end = head + length
        tag = int.from_bytes(buf[head : head + 2], "little") if head + 2 <= n else -1
        if nb in (1, 4, 8) and (head + 2 > n or (length >= 2 and tag in range(1, 7) and end > n)):
            if buf.find(_BOUNDARY_UUID, head) < 0:
                truncated = pos  # the last chunk is incomplete: a cut file
                break
        elif nb in (1, 4, 8) and length >= 2 and tag in range(1, 7):
            runs.append(np.array([[pos, tag, end]], dtype=np.int64))
            pos = end
            continue
        found = buf.find(_BOUNDARY_UUID, pos + 1)
        if found < 0:
            problems.append(f"corrupt data from byte {pos} to the end ({n - pos} bytes)")
            truncated = pos
            break
        problems.append(f"corrupt bytes {pos}..{found} skipped to the next boundary chunk")
        pos = found + len(_BOUNDARY_UUID)
    rows = np.concatenate(runs) if runs else np.zeros((0, 3), dtype=np.int64)
    start = np.ascontiguousarray(rows[:, 0])
    content = start + 3 + b[start].astype(np.int64)  # after NumLengthBytes, Length and tag
    chunks = _Chunks(np.ascontiguousarray(rows[:, 1]), start, content, np.ascontiguousarray(rows[:, 2]))
    return chunks, problems, truncated


def _parse_xml(raw: bytes) -> ET.Element | None:
    try:
        return ET.fromstring(raw.decode("utf-8", errors="replace"))
    except ET.ParseError:
        return None


def _decode_chunks(
    buf: bytes, chunks: _Chunks, problems: list[str]
) -> tuple[dict[int, _XdfStream], NDArray[np.bool_]]:
    """Decode headers and samples; return the streams and which chunks decoded (a mask).

    Samples chunks of numeric streams whose every sample is stamped (what calmloop and
    LabRecorder write) are decoded at once per stream by :func:`_fast_samples`; every other
    chunk goes through the chunk-by-chunk decoding below, in file order, and the two are
    merged in chunk order, so the result is that of decoding every chunk one by one.
    """
    n_chunks = len(chunks)
    kept = np.zeros(n_chunks, dtype=bool)
    sids = _stream_ids(buf, chunks)
    # stream headers first (they do not depend on other chunks): which one each stream keeps
    parsed: dict[int, _XdfStream | None] = {}
    declared: dict[int, tuple[int, _XdfStream]] = {}
    for i in np.flatnonzero((chunks.tag == 2) & (sids >= 0)).tolist():
        sid = int(sids[i])
        parsed[i] = stream = _stream_from_header(sid, buf[int(chunks.content[i]) + 4 : int(chunks.end[i])])
        if stream is not None and sid not in declared:
            declared[sid] = (i, stream)
    fast: dict[int, _FastSamples] = {}
    done = np.zeros(n_chunks, dtype=bool)  # decoded by _fast_samples
    for sid, (h, stream) in declared.items():
        if stream.fmt != "string":
            fast[sid] = _fast_samples(buf, chunks, sids, sid, h, stream, done)
    kept |= done
    streams: dict[int, _XdfStream] = {}
    view = memoryview(buf)
    for i in np.flatnonzero(~done).tolist():
        tag, start = int(chunks.tag[i]), int(chunks.start[i])
        if tag in (1, 5):
            kept[i] = True
            continue
        sid = int(sids[i])
        if sid < 0:
            problems.append(f"chunk at byte {start} (tag {tag}) too short for a stream id: skipped")
            continue
        if tag == 2:
            stream = parsed[i]
            if stream is None:
                problems.append(f"stream {sid}: invalid stream header at byte {start}: stream skipped")
                continue
            if sid in streams:
                problems.append(f"stream {sid}: a second header at byte {start} ignored")
                continue
            streams[sid] = stream
            kept[i] = True
            continue
        stream_or_none = streams.get(sid)
        if stream_or_none is None:
            problems.append(f"chunk at byte {start} (tag {tag}) for unknown stream {sid}: skipped")
            continue
        st = stream_or_none
        content = view[int(chunks.content[i]) : int(chunks.end[i])]
        try:
            if tag == 3:
                if st.fmt == "string":
                    _decode_strings(st, content[4:])
                else:
                    done_before = fast.get(sid)
                    if done_before is not None:  # the stamp before this chunk may come from a fast chunk
                        j, t = done_before.last_stamp_before(i)
                        if j > st.last_slow:
                            st.last_time = t
                    st.last_slow = i
                    times, values = _decode_samples(st, content[4:])
                    if times.shape[0]:
                        st.slow.append((i, times, values))
            elif tag == 4:
                if len(content) != 20:
                    raise _Corrupt(f"clock offset of {len(content)} bytes, expected 20")
                st.clock_offsets.append(cast(tuple[float, float], struct.unpack("<dd", content[4:20])))
        except (_Corrupt, ValueError, struct.error) as exc:
            problems.append(
                f"stream {sid} ({st.name}): chunk at byte {start} does not decode ({exc}): skipped"
            )
            continue
        kept[i] = True
    for sid, st in streams.items():
        if sid in fast:
            _merge_samples(st, fast[sid])
    return streams, kept


def _stream_ids(buf: bytes, chunks: _Chunks) -> NDArray[np.int64]:
    """The u32 stream id that starts each chunk's content (-1 if the content is shorter)."""
    sids = np.full(len(chunks), -1, dtype=np.int64)
    has_id = chunks.end - chunks.content >= 4
    if has_id.any():
        b = np.frombuffer(buf, dtype=np.uint8)
        at = chunks.content[has_id]
        sids[has_id] = _little_endian(b, at, 4)
    return sids


def _little_endian(b: NDArray[np.uint8], at: NDArray[np.int64], nbytes: int) -> NDArray[np.uint64]:
    """Unsigned little-endian integers of ``nbytes`` bytes at offsets ``at`` of ``b``."""
    out = np.zeros(at.shape[0], dtype=np.uint64)
    for k in range(nbytes):
        out |= b[at + k].astype(np.uint64) << np.uint64(8 * k)
    return out


def _fast_samples(
    buf: bytes,
    chunks: _Chunks,
    sids: NDArray[np.int64],
    sid: int,
    header_index: int,
    st: _XdfStream,
    done: NDArray[np.bool_],
) -> _FastSamples:
    """Decode at once the Samples chunks of a numeric stream that need no per-sample work.

    A chunk qualifies when it comes after the stream's header, its sample count is a valid
    varlen integer, its size is exactly that of the count of stamped samples, and every
    sample's TimeStampBytes is 8: what :func:`_decode_samples` would decode from the record
    layout in one call.  Those chunks are marked in ``done``; the others are left to the
    chunk-by-chunk decoding.
    """
    dtype = _NUMERIC[st.fmt]
    record = np.dtype([("tsb", "u1"), ("ts", "<f8"), ("v", dtype, (st.channel_count,))])
    size = record.itemsize
    b = np.frombuffer(buf, dtype=np.uint8)
    idx = np.flatnonzero((chunks.tag == 3) & (sids == sid))
    idx = idx[idx > header_index]
    at = chunks.content[idx] + 4  # the varlen sample count
    end = chunks.end[idx]
    ok = at < end
    nb = np.zeros(idx.shape[0], dtype=np.int64)
    nb[ok] = b[at[ok]]
    ok &= ((nb == 1) | (nb == 4) | (nb == 8)) & (at + 1 + nb <= end)
    count = np.zeros(idx.shape[0], dtype=np.uint64)
    for width in (1, 4, 8):
        sel = ok & (nb == width)
        count[sel] = _little_endian(b, at[sel] + 1, width)
    first = at + 1 + nb  # first byte of the samples
    payload = np.where(ok, end - first, 0)
    ok &= (payload % size == 0) & (count == (payload // size).astype(np.uint64))
    idx, first, end = idx[ok], first[ok], end[ok]
    counts = ((end - first) // size).astype(np.int64)
    filled = counts > 0
    idx_filled, counts_filled = idx[filled], counts[filled]
    bounds = np.concatenate(([0], np.cumsum(counts_filled)))
    # byte offset of every sample: chunk start + k * record size
    offsets = np.repeat(first[filled] - bounds[:-1] * size, counts_filled) + np.arange(bounds[-1]) * size
    # a record view starting at every byte of the file (records overlap: stride 1), from
    # which the samples are gathered by offset, field by field, in one call each
    n_records = max(len(buf) - size + 1, 0)
    records = np.ndarray((n_records,), dtype=record, buffer=buf, strides=(1,))
    unstamped = records["tsb"][offsets] != 8
    if unstamped.any():  # chunks with a sample not stamped: decoded one by one instead
        owner = np.repeat(np.arange(idx_filled.shape[0]), counts_filled)
        bad = np.zeros(idx_filled.shape[0], dtype=bool)
        bad[owner[unstamped]] = True
        offsets = offsets[~bad[owner]]
        idx = np.setdiff1d(idx, idx_filled[bad], assume_unique=True)
        idx_filled, counts_filled = idx_filled[~bad], counts_filled[~bad]
        bounds = np.concatenate(([0], np.cumsum(counts_filled)))
    done[idx] = True
    return _FastSamples(idx_filled, bounds, records["ts"][offsets], records["v"][offsets])


def _merge_samples(st: _XdfStream, fast: _FastSamples) -> None:
    """Put the fast and the chunk-by-chunk decoded samples of a stream into chunk order."""
    if not st.slow:
        if fast.index.shape[0]:
            st.times.append(fast.times)
            st.values.append(fast.values)
        return
    prev = 0
    for i, times, values in st.slow:
        cut = int(fast.bounds[np.searchsorted(fast.index, i)])
        if cut > prev:
            st.times.append(fast.times[prev:cut])
            st.values.append(fast.values[prev:cut])
        st.times.append(times)
        st.values.append(values)
        prev = cut
    if fast.times.shape[0] > prev:
        st.times.append(fast.times[prev:])
        st.values.append(fast.values[prev:])


def _stream_from_header(sid: int, raw: bytes) -> _XdfStream | None:
    info = _parse_xml(raw)
    if info is None:
        return None
    try:
        count = int(info.findtext("channel_count") or "")
        srate = float(info.findtext("nominal_srate") or "0")
    except ValueError:
        return None
    fmt = (info.findtext("channel_format") or "").strip()
    if count < 1 or fmt not in (*_NUMERIC, "string") or not math.isfinite(srate) or srate < 0:
        return None
    return _XdfStream(
        sid=sid,
        name=(info.findtext("name") or "").strip(),
        type=(info.findtext("type") or "").strip(),
        channel_count=count,
        srate=srate,
        fmt=fmt,
        desc=info.find("desc"),
        info=info,
    )


def _varlen(data: memoryview, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise _Corrupt("varlen integer past the end")
    nb = data[pos]
    if nb not in (1, 4, 8) or pos + 1 + nb > len(data):
        raise _Corrupt(f"invalid varlen integer ({nb} bytes)")
    return int.from_bytes(data[pos + 1 : pos + 1 + nb], "little"), pos + 1 + nb


def _decode_strings(st: _XdfStream, data: memoryview) -> None:
    """Decode one Samples chunk of a string stream (channels joined with ``|``)."""
    n, pos = _varlen(data, 0)
    step = 1.0 / st.srate if st.srate > 0 else 0.0
    times = np.empty(n)
    values: list[str] = []
    for k in range(n):
        pos, times[k] = _stamp(st, data, pos, step)
        chans = []
        for _ in range(st.channel_count):
            size, pos = _varlen(data, pos)
            if pos + size > len(data):
                raise _Corrupt("string past the end of the chunk")
            chans.append(bytes(data[pos : pos + size]).decode("utf-8", errors="replace"))
            pos += size
        values.append("|".join(chans))
    if pos != len(data):
        raise _Corrupt(f"{len(data) - pos} stray bytes after {n} samples")
    st.times.append(times)
    st.strings.append(values)


def _decode_samples(st: _XdfStream, data: memoryview) -> tuple[FloatArray, np.ndarray]:
    """Decode one Samples chunk of a numeric stream: times (n,) and values (n, n_channels)."""
    n, pos = _varlen(data, 0)
    step = 1.0 / st.srate if st.srate > 0 else 0.0
    dtype = _NUMERIC[st.fmt]
    width = st.channel_count * dtype.itemsize
    record = np.dtype([("tsb", "u1"), ("ts", "<f8"), ("v", dtype, (st.channel_count,))])
    if len(data) - pos == n * record.itemsize:  # every sample stamped: decode at once
        arr = np.frombuffer(data, dtype=record, count=n, offset=pos)
        if n == 0 or bool(np.all(arr["tsb"] == 8)):
            if n:
                st.last_time = float(arr["ts"][-1])
            return arr["ts"].astype(np.float64), np.array(arr["v"])
    times = np.empty(n)
    vals = np.empty((n, st.channel_count), dtype=dtype)
    for k in range(n):
        pos, times[k] = _stamp(st, data, pos, step)
        if pos + width > len(data):
            raise _Corrupt("sample values past the end of the chunk")
        vals[k] = np.frombuffer(data, dtype=dtype, count=st.channel_count, offset=pos)
        pos += width
    if pos != len(data):
        raise _Corrupt(f"{len(data) - pos} stray bytes after {n} samples")
    return times, vals


def _stamp(st: _XdfStream, data: memoryview, pos: int, step: float) -> tuple[int, float]:
    if pos >= len(data):
        raise _Corrupt("sample past the end of the chunk")
    flag = data[pos]
    if flag == 8:
        if pos + 9 > len(data):
            raise _Corrupt("time stamp past the end of the chunk")
        t = float(struct.unpack_from("<d", data, pos + 1)[0])
        pos += 9
    elif flag == 0:
        t = st.last_time + step
        pos += 1
    else:
        raise _Corrupt(f"invalid TimeStampBytes {flag}")
    st.last_time = t
    return pos, t


def _stream_arrays(st: _XdfStream) -> tuple[FloatArray, np.ndarray]:
    if not st.times:
        return np.zeros(0), np.zeros((0, st.channel_count))
    if len(st.times) == 1 and len(st.values) == 1:  # one piece (decoded at once): no copy needed
        return st.times[0], st.values[0]
    values = np.concatenate(st.values) if st.values else np.zeros((0, st.channel_count))
    return np.concatenate(st.times), values


def _entries(element: ET.Element | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if element is not None:
        for e in element.findall("entry"):
            out[(e.findtext("key") or "").strip()] = e.findtext("value") or ""
    return out


def _calmloop_recording(
    p: Path,
    header: ET.Element,
    streams: dict[int, _XdfStream],
    problems: list[str],
    truncated: bool,
    version: str,
) -> Recording:
    try:
        fv = int(version)
    except ValueError:
        fv = -1
    if not 1 <= fv <= FORMAT_VERSION:
        raise SensorError(
            f"{p}: calmloop session file of format version {version!r}; this reader supports "
            f"1..{FORMAT_VERSION}. Upgrade calmloop to read it."
        )
    recorded: list[RecordedStream] = []
    markers: list[Marker] = []
    estimates: list[Estimate] = []
    pacer: tuple[FloatArray, np.ndarray, list[str]] | None = None
    skipped: list[dict[str, str]] = []
    for st in streams.values():
        cal = st.desc.find("calmloop") if st.desc is not None else None
        kind_text = cal.findtext("kind") if cal is not None else None
        if st.fmt == "string":
            times = np.concatenate(st.times) if st.times else np.zeros(0)
            texts = [s for chunk in st.strings for s in chunk]
            markers += [Marker(float(t), s, st.name) for t, s in zip(times, texts)]
            continue
        times, values = _stream_arrays(st)
        if kind_text:
            assert cal is not None
            kind = SignalKind(kind_text)
            labels = st.labels()
            sfreq = float(cal.findtext("sfreq") or st.srate)
            device, extra = cal.findtext("device") or "", _entries(cal.find("extra"))
            spec = StreamSpec(kind, sfreq, tuple(labels), device=device, extra=extra)
            recorded.append(_recorded(spec, values.T.astype(np.float64), times, f"{p} [{st.name}]"))
        elif st.name == ESTIMATES_STREAM.name:
            estimates += estimates_from_rows(times, values.astype(np.float64), st.labels())
        elif st.name == PACER_STREAM.name:
            pacer = (times, values.astype(np.float64), st.labels())
        else:
            skipped.append({"name": st.name, "type": st.type, "reason": "not a calmloop stream"})
    markers.sort(key=lambda m: m.time)
    decisions: list[PacingDecision] = []
    if pacer is not None:
        try:
            decisions = decisions_from_rows(pacer[0], pacer[1], pacer[2], markers)
        except ValueError as exc:
            problems.append(f"pacer stream does not decode ({exc}): decisions skipped")
    meta: dict[str, object] = {
        "format": "calmloop-xdf",
        "format_version": fv,
        "paths": [str(p)],
        "time_base": header.findtext("calmloop/time_base") or TIME_BASE,
        "file_header": {e.tag: (e.text or "") for e in header.iter() if len(e) == 0},
        "truncated": truncated,
        "skipped_streams": skipped,
        "warnings": list(problems),
    }
    logger.info("%s: calmloop session, %d streams, %d estimates, %d decisions%s", p, len(recorded),
                len(estimates), len(decisions), " (cut short)" if truncated else "")
    return Recording(tuple(recorded), tuple(markers), tuple(estimates), tuple(decisions), meta)


def _recorded(spec: StreamSpec, data: FloatArray, times: FloatArray, where: str) -> RecordedStream:
    """A RecordedStream, dropping samples whose time does not increase (logged)."""
    if times.size > 1 and not np.all(np.diff(times) > 0):
        keep = np.isfinite(times) & (times > np.fmax.accumulate(np.concatenate(([-np.inf], times[:-1]))))
        logger.warning("%s: dropped %d samples with repeated or decreasing times", where, int((~keep).sum()))
        data, times = data[:, keep], times[keep]
    return RecordedStream(spec, data, times)


def _foreign_xdf_recording(
    p: Path, header: ET.Element, clean: bytes, problems: list[str], truncated: bool, rate_tolerance: float
) -> Recording:
    import pyxdf  # imported here: only foreign files need it

    try:
        raw_streams, _ = pyxdf.load_xdf(io.BytesIO(clean))
    except Exception as exc:  # noqa: BLE001 - pyxdf raises many types on odd files
        raise SensorError(f"{p}: pyxdf could not read this XDF file ({type(exc).__name__}: {exc}).") from exc
    candidates: dict[SignalKind, list[tuple[StreamSpec, FloatArray, FloatArray]]] = {}
    markers: list[Marker] = []
    skipped: list[dict[str, str]] = []
    for s in raw_streams:
        info = s["info"]
        name, stype = _first(info, "name"), _first(info, "type")
        fmt = _first(info, "channel_format")
        stamps = np.asarray(s["time_stamps"], dtype=np.float64)
        if fmt == "string":
            for t, sample in zip(stamps, s["time_series"]):
                markers.append(Marker(float(t), "|".join(str(v) for v in sample), name))
            continue
        kind = _kind_of(stype, name)
        if kind is None:
            reason = f"type {stype!r} is not a signal calmloop uses"
            skipped.append({"name": name, "type": stype, "reason": reason})
            continue
        if stamps.size == 0:
            skipped.append({"name": name, "type": stype, "reason": "no samples"})
            continue
        try:
            spec, data = _foreign_spec(p, s, kind)
        except _Corrupt as exc:
            skipped.append({"name": name, "type": stype, "reason": str(exc)})
            continue
        times, problem = repair_times(stamps, spec.sfreq, f"{p} [{name}]", rate_tolerance=rate_tolerance)
        if problem:
            problems.append(f"{name}: {problem}; timing from sample index")
        candidates.setdefault(kind, []).append((spec, data, times))
    recorded: list[RecordedStream] = []
    for kind, found in candidates.items():
        found.sort(key=lambda c: -c[2].size)
        spec, data, times = found[0]
        recorded.append(_recorded(spec, data, times, f"{p} [{spec.extra.get('stream_name', '')}]"))
        for other in found[1:]:
            extra = other[0].extra
            skipped.append({"name": extra.get("stream_name", ""), "type": extra.get("stream_type", ""),
                            "reason": f"a second {kind.value} stream (kept the longer one)"})
    markers.sort(key=lambda m: m.time)
    meta: dict[str, object] = {
        "format": "xdf",
        "paths": [str(p)],
        "time_base": "device",
        "file_header": {e.tag: (e.text or "") for e in header.iter() if len(e) == 0},
        "truncated": truncated,
        "skipped_streams": skipped,
        "warnings": list(problems),
    }
    if not recorded:
        reasons = "; ".join(f"{d['name']!r}: {d['reason']}" for d in skipped) or "no numeric stream"
        raise SensorError(
            f"{p}: no usable signal stream; expected an EEG, PPG, accelerometer or gyroscope stream, found "
            f"{reasons}."
        )
    for d in skipped:
        logger.info("%s: stream %r skipped: %s", p, d["name"], d["reason"])
    return Recording(tuple(recorded), tuple(markers), (), (), meta)


def _first(info: Mapping[str, object], key: str) -> str:
    value = info.get(key)
    if isinstance(value, list) and value:
        return str(value[0] or "").strip()
    return ""


def _kind_of(stype: str, name: str) -> SignalKind | None:
    kind = _KIND_WORDS.get(stype.strip().lower())
    if kind is None:
        suffix = re.split(r"[_\-\s]", name.strip().lower())[-1]
        kind = _KIND_WORDS.get(suffix)
    return kind


def _xml_channels(desc: object) -> tuple[list[str], list[str]]:
    labels: list[str] = []
    units: list[str] = []
    if isinstance(desc, list) and desc and isinstance(desc[0], Mapping):
        chans = desc[0].get("channels")
        if isinstance(chans, list) and chans and isinstance(chans[0], Mapping):
            for ch in chans[0].get("channel", []) or []:
                if isinstance(ch, Mapping):
                    labels.append(_first(ch, "label"))
                    units.append(_first(ch, "unit"))
    return labels, units


def _foreign_spec(p: Path, s: Mapping[str, object], kind: SignalKind) -> tuple[StreamSpec, FloatArray]:
    info = cast(Mapping[str, object], s["info"])
    name, stype = _first(info, "name"), _first(info, "type")
    n_ch = int(_first(info, "channel_count") or 0)
    srate = float(_first(info, "nominal_srate") or 0.0)
    if srate <= 0:
        eff = info.get("effective_srate")
        srate = float(eff) if isinstance(eff, (int, float)) and eff > 0 else 0.0
        if srate <= 0:
            raise _Corrupt("irregular rate (nominal_srate 0) for a signal stream")
    data = np.asarray(s["time_series"], dtype=np.float64).T
    labels, units = _xml_channels(info.get("desc"))
    notes: list[str] = []
    if len(labels) != n_ch or not all(labels) or len(set(labels)) != n_ch:
        default = _DEFAULT_LABELS.get((kind, n_ch))
        labels = list(default) if default else [f"{kind.value}{i + 1}" for i in range(n_ch)]
        notes.append("no channel labels in the header: " + ("Muse order assumed" if default else "numbered"))
    scales = np.ones((n_ch, 1))
    table = _UNIT_SCALES[kind]
    for i, unit in enumerate(units[:n_ch]):
        key = unit.strip().lower()
        if not key or not table:
            continue
        if key in table:
            scales[i, 0] = table[key]
        else:
            notes.append(f"unit {unit!r} of channel {labels[i]!r} not recognised: values kept")
    if np.any(scales != 1.0):
        data = data * scales
    manufacturer = ""
    desc = info.get("desc")
    if isinstance(desc, list) and desc and isinstance(desc[0], Mapping):
        manufacturer = _first(desc[0], "manufacturer")
    extra = {"stream_name": name, "stream_type": stype, "file": p.name}
    if notes:
        extra["notes"] = "; ".join(notes)
        for note in notes:
            logger.info("%s [%s]: %s", p, name, note)
    device = " ".join(x for x in (manufacturer, name) if x) or "XDF stream"
    return StreamSpec(kind, srate, tuple(labels), device=device, extra=extra), data


# ---------------------------------------------------------------------------------------------
# Text formats
# ---------------------------------------------------------------------------------------------
def _head(p: Path) -> bytes:
    try:
        with p.open("rb") as f:
            return f.read(_HEAD_BYTES)
    except FileNotFoundError as exc:
        raise SensorError(
            f"{p}: file not found; expected a recording (XDF, BrainFlow or muselsl CSV)."
        ) from exc
    except OSError as exc:
        raise SensorError(f"{p}: cannot read the file ({exc.strerror or exc}).") from exc


def _unsupported(head: bytes) -> str:
    text = head[:60].decode("utf-8", errors="replace").splitlines()
    shown = repr(text[0][:60]) if text else repr(head[:16])
    return (
        "unsupported file: expected XDF (starting with 'XDF:'), a BrainFlow file (numbers separated by tabs, "
        "no header) or a muselsl CSV (header 'timestamps,TP9,AF7,AF8,TP10,Right AUX'); found "
        f"{shown}."
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _load_table(p: Path, *, skip_header: bool, expect: str) -> tuple[np.ndarray, list[str], str]:
    """Numbers of a text table; a cut last line is dropped (WARNING); other bad lines raise."""
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise SensorError(f"{p}: cannot read the file ({exc.strerror or exc}).") from exc
    lines = text.splitlines()
    header = lines[0] if skip_header and lines else ""
    body = [ln for ln in (lines[1:] if skip_header else lines)]
    while body and not body[-1].strip():
        body.pop()
    sep = "\t" if "\t" in (body[0] if body else header) else ","
    if not body:
        raise SensorError(f"{p}: no data rows; expected {expect}.")
    rows: list[list[float]] = []
    width = -1
    warning = ""
    for i, line in enumerate(body):
        cells = [c for c in line.strip().split(sep)]
        try:
            row = [float(c) if c.strip() else math.nan for c in cells]
        except ValueError:
            row = []
        if width < 0 and row:
            width = len(row)
        if not row or len(row) != width:
            line_no = i + 1 + (1 if skip_header else 0)
            if i == len(body) - 1 and rows:
                warning = f"last line ({line_no}) is incomplete (a cut file?): dropped"
                logger.warning("%s: %s", p, warning)
                break
            raise SensorError(
                f"{p}: line {line_no} is not {width if width > 0 else 'a row of'} numbers separated by "
                f"{'tabs' if sep == chr(9) else 'commas'}: {line[:80]!r}; expected {expect}."
            )
        rows.append(row)
    columns = [c.strip() for c in header.split(sep)] if header else []
    return np.asarray(rows, dtype=np.float64), columns, warning


@dataclass(frozen=True, slots=True)
class _PresetLayout:
    board: str
    preset: str
    num_rows: int
    timestamp_row: int
    streams: tuple[tuple[StreamSpec, tuple[int, ...]], ...]


_PRESET_IDS = {
    "default": int(BrainFlowPresets.DEFAULT_PRESET),
    "auxiliary": int(BrainFlowPresets.AUXILIARY_PRESET),
    "ancillary": int(BrainFlowPresets.ANCILLARY_PRESET),
}


def _brainflow_layouts() -> list[_PresetLayout]:
    """Every preset table of every supported board (from BrainFlow's descriptors)."""
    out: list[_PresetLayout] = []
    for key, specs in describe_boards().items():
        board_id = BOARD_MODELS[key].board_id
        assert board_id is not None
        by_preset: dict[str, list[tuple[StreamSpec, tuple[int, ...]]]] = {}
        for spec in specs:
            rows = tuple(int(r) for r in spec.extra["rows"].split(","))
            by_preset.setdefault(spec.extra["preset"], []).append((spec, rows))
        for preset, streams in by_preset.items():
            descr = BoardShim.get_board_descr(board_id, _PRESET_IDS[preset])
            out.append(_PresetLayout(key, preset, int(descr["num_rows"]), int(descr["timestamp_channel"]),
                                     tuple(streams)))
    return out


def read_brainflow(
    paths: str | Path | Sequence[str | Path], *, board: str | None = None, rate_tolerance: float = 0.1
) -> Recording:
    """Read BrainFlow files (one per preset) of one session.

    Parameters
    ----------
    paths : path or sequence of paths
        Files written by BrainFlow (``DataFilter.write_file`` or a ``file://`` streamer).
    board : str or None
        Key of :data:`sensors.brainflow_source.BOARD_MODELS` that recorded them; None tries the
        Muse 2 first, then the other boards, by number of columns.
    rate_tolerance : float
        See :func:`repair_times`.

    Returns
    -------
    Recording
        ``time_base`` ``"device"`` (Unix seconds).

    Raises
    ------
    SensorError
        If a file's column count fits no preset of the board, or two files give the same kind.
    """
    items = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if board is not None and board not in BOARD_MODELS:
        raise ValueError(
            f"Invalid value for 'board': expected one of {', '.join(map(repr, BOARD_MODELS))} or None, "
            f"got {board!r}."
        )
    layouts = _brainflow_layouts()
    order = [board] if board is not None else ["muse-2", *[k for k in BOARD_MODELS if k != "muse-2"]]
    streams: list[RecordedStream] = []
    warnings: list[str] = []
    presets: dict[str, str] = {}
    for p in items:
        expect = "a BrainFlow file of the " + " / ".join(order) + " board"
        table, _, warning = _load_table(p, skip_header=False, expect=expect)
        if warning:
            warnings.append(f"{p.name}: {warning}")
        n_cols = table.shape[1]
        fits = [lay for key in order for lay in layouts if lay.board == key and lay.num_rows == n_cols]
        layout = fits[0] if fits else None
        if layout is None:
            counts = sorted({f"{x.num_rows} ({x.board} {x.preset})" for x in layouts if x.board in order})
            raise SensorError(
                f"{p}: {n_cols} columns fit no BrainFlow preset; expected one of {', '.join(counts)} "
                "columns. Is it a BrainFlow file, and is board= right?"
            )
        presets[p.name] = f"{layout.board} {layout.preset}"
        stamps = table[:, layout.timestamp_row]
        for spec, rows in layout.streams:
            extra = {**spec.extra, "file": p.name}
            device = f"{spec.device} (BrainFlow file)"
            new = StreamSpec(spec.kind, spec.sfreq, spec.ch_names, device=device, extra=extra)
            where = f"{p} [{spec.kind.value}]"
            times, problem = repair_times(stamps, spec.sfreq, where, rate_tolerance=rate_tolerance)
            if problem:
                warnings.append(f"{p.name} {spec.kind.value}: {problem}; timing from sample index")
            if any(s.kind == spec.kind for s in streams):
                raise SensorError(
                    f"{p}: a second {spec.kind.value} stream; expected one file per BrainFlow preset."
                )
            streams.append(RecordedStream(new, table[:, list(rows)].T, times))
    logger.info("BrainFlow files read: %s", ", ".join(f"{k} ({v})" for k, v in presets.items()))
    meta: dict[str, object] = {"format": "brainflow", "paths": [str(p) for p in items], "time_base": "device",
                               "presets": presets, "skipped_streams": [], "warnings": warnings}
    return Recording(tuple(streams), (), (), (), meta)


def _csv_kind(p: Path, channels: list[str], data: np.ndarray) -> SignalKind | None:
    upper = [c.upper() for c in channels]
    if upper and all(c.startswith("PPG") for c in upper):
        return SignalKind.PPG
    if upper and all(c in ("X", "Y", "Z") for c in upper):
        stem = p.name.upper()
        if "GYRO" in stem:
            return SignalKind.GYRO
        if "ACC" in stem:
            return SignalKind.ACCEL
        norm = float(np.nanmedian(np.sqrt(np.nansum(data**2, axis=1)))) if data.size else math.nan
        kind = SignalKind.ACCEL if 0.5 <= norm <= 2.0 else SignalKind.GYRO
        logger.warning("%s: X/Y/Z columns without ACC/GYRO in the file name; median magnitude %.2f -> %s",
                       p, norm, kind.value)
        return kind
    eeg_like = [c for c in channels if _EEG_NAME.match(c) or c.upper() in ("RIGHT AUX", "AUX", "LEFT AUX")]
    if channels and len(eeg_like) == len(channels):
        return SignalKind.EEG
    return None


def read_muselsl_csv(paths: str | Path | Sequence[str | Path], *, rate_tolerance: float = 0.1) -> Recording:
    """Read muselsl ``record`` CSV files (EEG, PPG, ACC or GYRO, one stream per file).

    Parameters
    ----------
    paths : path or sequence of paths
        CSV files with a ``timestamps`` column first.
    rate_tolerance : float
        See :func:`repair_times` (e.g. a file whose stamps jump by minutes is re-timed).

    Returns
    -------
    Recording
        ``time_base`` ``"device"`` (LSL/Unix seconds); numeric ``Marker*`` columns become markers.

    Raises
    ------
    SensorError
        If a header is not muselsl's or two files give the same kind.
    """
    items = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    streams: list[RecordedStream] = []
    markers: list[Marker] = []
    warnings: list[str] = []
    expect = "a muselsl CSV (timestamps,TP9,AF7,AF8,TP10,Right AUX / PPG1..3 / X,Y,Z)"
    for p in items:
        table, header, warning = _load_table(p, skip_header=True, expect=expect)
        if warning:
            warnings.append(f"{p.name}: {warning}")
        first = header[0].lower() if header else ""
        if first not in ("timestamps", "timestamp") or len(header) != table.shape[1]:
            raise SensorError(
                f"{p}: header {header[:6]!r} with {table.shape[1]} data columns; expected {expect}."
            )
        cols = header[1:]
        marker_cols = [i for i, c in enumerate(cols) if c.lower().startswith("marker")]
        chan_idx = [i for i in range(len(cols)) if i not in marker_cols]
        channels = [cols[i] for i in chan_idx]
        data = table[:, [1 + i for i in chan_idx]]
        kind = _csv_kind(p, channels, data)
        if kind is None:
            raise SensorError(f"{p}: columns {channels!r} are not a Muse stream; expected {expect}.")
        stamps = table[:, 0]
        sfreq = _MUSE_RATES[kind]
        finite = stamps[np.isfinite(stamps)]
        d = np.diff(finite)
        d = d[d > 0]
        if d.size > 10:
            measured = 1.0 / float(np.median(d))
            if abs(measured / sfreq - 1.0) > rate_tolerance:
                logger.warning("%s: median sample interval gives %.1f Hz, not the Muse %g Hz: using %.1f Hz",
                               p, measured, sfreq, measured)
                sfreq = round(measured, 1)
        times, problem = repair_times(stamps, sfreq, f"{p} [{kind.value}]", rate_tolerance=rate_tolerance)
        if problem:
            warnings.append(f"{p.name}: {problem}; timing from sample index")
        for i in marker_cols:
            for t, v in zip(times, table[:, 1 + i]):
                if np.isfinite(v) and v != 0:
                    markers.append(Marker(float(t), f"{v:g}", cols[i]))
        if any(s.kind == kind for s in streams):
            raise SensorError(f"{p}: a second {kind.value} stream; expected one muselsl file per kind.")
        spec = StreamSpec(kind, sfreq, tuple(channels), device="Muse (muselsl CSV)", extra={"file": p.name})
        streams.append(RecordedStream(spec, data.T, times))
    markers.sort(key=lambda m: m.time)
    meta: dict[str, object] = {"format": "muselsl-csv", "paths": [str(p) for p in items],
                               "time_base": "device", "skipped_streams": [], "warnings": warnings}
    return Recording(tuple(streams), tuple(markers), (), (), meta)


def _merge(parts: list[Recording], items: list[Path]) -> Recording:
    kinds: dict[SignalKind, str] = {}
    streams: list[RecordedStream] = []
    for rec in parts:
        for s in rec.streams:
            if s.kind in kinds:
                raise SensorError(
                    f"{s.spec.extra.get('file', '?')}: a second {s.kind.value} stream (also in "
                    f"{kinds[s.kind]}); expected one stream per kind across the files of a session."
                )
            kinds[s.kind] = str(s.spec.extra.get("file", rec.metadata.get("paths", "?")))
            streams.append(s)
    bases = {str(r.metadata.get("time_base")) for r in parts}
    meta: dict[str, object] = {
        "format": "+".join(str(r.metadata.get("format")) for r in parts),
        "paths": [str(p) for p in items],
        "time_base": bases.pop() if len(bases) == 1 else "device",
        "skipped_streams": [
            d for r in parts for d in cast(list[dict[str, str]], r.metadata.get("skipped_streams", []))
        ],
        "warnings": [w for r in parts for w in cast(list[str], r.metadata.get("warnings", []))],
    }
    markers = sorted((m for r in parts for m in r.markers), key=lambda m: m.time)
    estimates = tuple(e for r in parts for e in r.estimates)
    decisions = tuple(d for r in parts for d in r.decisions)
    return Recording(tuple(streams), tuple(markers), estimates, decisions, meta)
