"""The session recorder: every raw stream, estimate, decision and marker into ``session.xdf``.

:class:`SessionRecorder` is a :class:`~adaptive.session.Sink`.  Hand it to ``session_tick``
with the other sinks; it writes the layout of :mod:`adaptive.records` with
:class:`~feedback.xdf_writer.XdfWriter`, append-only and flushed at least once per second of
wall time, so that a crash (``kill -9``, power cut after the page cache reached the disk)
loses at most the last second.  It also keeps the JSON sidecar ``session.json`` (written at
start with ``"complete": false``, merged by :meth:`SessionRecorder.write_sidecar`, finished by
:meth:`SessionRecorder.close`).

Privacy: the session folder is created ``0700`` and both files ``0600`` (owner only).  Files
hold the pseudonymous patient id (checked by :func:`adaptive.records.check_patient_id`) and
never a name; the host name is not recorded.

A failing disk (``OSError``) does not stop the session: the recorder logs an ERROR, keeps the
exception in :attr:`SessionRecorder.error` and drops further data (the sidecar says
``"complete": false``).  Wrong calls (a chunk of a kind not declared, a closed recorder) raise.

Examples
--------
>>> folder = root / session_folder_name("P017", datetime.now(timezone.utc))  # doctest: +SKIP
>>> with SessionRecorder(folder, source.streams, patient_id="P017", config=cfg) as rec:  # doctest: +SKIP
...     while running:
...         session_tick(source, engine, [rec, view], clock.now())
...     rec.close(controller.summary(), end_reason="ready for dosing + 5 min")
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from types import TracebackType

import numpy as np

from adaptive.records import (
    ESTIMATES_STREAM,
    FORMAT_VERSION,
    MARKERS_STREAM,
    PACER_CHANNELS,
    PACER_STREAM,
    SIDECAR_FILENAME,
    SIGNAL_STREAM_TYPES,
    STATE_CODES,
    TIME_BASE,
    XDF_FILENAME,
    check_patient_id,
    decision_row,
    estimate_channels,
    estimate_rows,
    outcome_marker,
    session_folder_name,
    session_marker,
    signal_channels,
    signal_stream_name,
)
from adaptive.session import TickResult
from adaptive.types import Chunk, Metric, SignalKind, StreamSpec

from .xdf_writer import XdfChannel, XdfStreamInfo, XdfWriter, XmlNode

__all__ = ["PACKAGES", "SessionRecorder", "package_versions"]

logger = logging.getLogger(__name__)

#: Distributions whose versions go into the sidecar.
PACKAGES: tuple[str, ...] = ("calmloop", "numpy", "scipy", "brainflow", "mne", "pylsl", "pyxdf", "pygame-ce")
#: Sidecar keys that belong to the recorder (write_sidecar may not change them).
_RESERVED = ("format_version", "files", "time_base", "streams", "complete", "recording")

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (None when it is not installed)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _jsonable(obj: object) -> JsonValue:
    """Plain JSON: dataclasses as dicts, enums as values, NaN/inf as null, paths as strings."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, Enum):
        return _jsonable(obj.value)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k.value if isinstance(k, Enum) else k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return [_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def _entries(mapping: Mapping[str, str]) -> tuple[XmlNode, ...]:
    return tuple(("entry", (("key", str(k)), ("value", str(v)))) for k, v in mapping.items())


class SessionRecorder:
    """Sink that records a session into a private folder: ``session.xdf`` + ``session.json``.

    Parameters
    ----------
    folder : path-like
        The session folder (created ``0700``; see :meth:`create` to name it from the date and
        the patient id).  It must not already hold a ``session.xdf``.
    streams : sequence of StreamSpec
        The source's streams (``source.streams``), at most one per signal kind: one XDF stream
        each, double precision, at the nominal rate, stamped with the chunk times.
    patient_id : str
        Pseudonymous code (letters, digits, ``-``, ``_``; never a name).
    config : mapping, optional
        Resolved configuration (protocol, settings, seed, source...) for the sidecar.
    started_at : datetime, optional
        UTC start of the session (now by default); recorded in both files.
    flush_interval_s : float
        Wall-clock seconds between writes to the operating system (default 1).
    max_buffer_bytes : int
        Buffered bytes that force a write (default 1 MiB: at ``--speed max`` this bounds memory).
    wall_clock : callable
        Monotonic wall clock for the flush timer (``time.monotonic``).

    Raises
    ------
    ConfigError
        If ``patient_id`` is not a pseudonymous code.
    ValueError
        If two streams have the same kind.
    FileExistsError
        If the folder already holds a recording.

    Notes
    -----
    Times in the XDF file are session seconds (see :mod:`adaptive.records`).  The estimates
    stream has one row per group of estimates with the same time, NaN for metrics without an
    estimate; the pacer stream one row per decision; the markers stream one string per
    controller event (``PacingDecision.events``) plus ``session:start`` / ``session:end``,
    :meth:`mark` and :meth:`outcome` markers.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        streams: Sequence[StreamSpec],
        *,
        patient_id: str,
        config: Mapping[str, object] | None = None,
        started_at: datetime | None = None,
        flush_interval_s: float = 1.0,
        max_buffer_bytes: int = 1 << 20,
        wall_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._patient_id = check_patient_id(patient_id)
        specs = tuple(streams)
        kinds = [SignalKind(s.kind) for s in specs]
        if len(set(kinds)) != len(kinds):
            raise ValueError(
                f"Invalid value for 'streams': expected at most one stream per signal kind, got "
                f"{[k.value for k in kinds]}."
            )
        started = started_at if started_at is not None else datetime.now(timezone.utc)
        if started.tzinfo is None:
            raise ValueError(
                "Invalid value for 'started_at': expected a timezone-aware datetime, got a naive one."
            )
        self._started = started.astimezone(timezone.utc)
        self._folder = Path(folder)
        self._folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self._folder, 0o700)
        self._metrics: tuple[Metric, ...] = tuple(Metric)
        # stable per session (LSL source_id convention), reproducible for the same start and patient
        self._uid = hashlib.sha256(f"{self._patient_id}/{self._started.isoformat()}".encode()).hexdigest()[:12]
        self._error: OSError | None = None
        self._dropped = 0
        self._closed = False
        self._last_time = 0.0
        versions = package_versions()
        self._writer = XdfWriter(
            self._folder / XDF_FILENAME,
            header=(
                ("datetime", self._started.isoformat()),
                ("calmloop", (
                    ("format_version", str(FORMAT_VERSION)),
                    ("time_base", TIME_BASE),
                    ("session_start_utc", self._started.isoformat()),
                    ("patient_id", self._patient_id),
                    ("writer", f"calmloop {versions.get('calmloop') or 'dev'}"),
                )),
            ),
            flush_interval_s=flush_interval_s,
            max_buffer_bytes=max_buffer_bytes,
            wall_clock=wall_clock,
        )
        self._signal_ids: dict[SignalKind, tuple[int, StreamSpec]] = {}
        self._signal_columns: dict[SignalKind, tuple[int, int]] = {}  # kind -> (stream id, channels)
        described: list[dict[str, object]] = []
        for spec in specs:
            sid = self._writer.add_stream(self._signal_info(spec))
            self._signal_ids[SignalKind(spec.kind)] = (sid, spec)
            self._signal_columns[SignalKind(spec.kind)] = (sid, len(spec.ch_names))
            described.append({"name": signal_stream_name(spec.kind), "type": SIGNAL_STREAM_TYPES[spec.kind],
                              "kind": spec.kind.value, "sfreq": spec.sfreq, "channels": list(spec.ch_names),
                              "unit": spec.unit, "device": spec.device})
        self._est_id = self._writer.add_stream(XdfStreamInfo(
            ESTIMATES_STREAM.name, ESTIMATES_STREAM.type, "double64", 0.0,
            tuple(XdfChannel(c.label, c.unit, c.type) for c in estimate_channels(self._metrics)),
            source_id=f"calmloop-{self._uid}-estimates", manufacturer="calmloop",
            desc=(("calmloop", (("absent", "value and quality NaN: no estimate of the metric then"),)),),
        ))
        self._pacer_id = self._writer.add_stream(XdfStreamInfo(
            PACER_STREAM.name, PACER_STREAM.type, "double64", 0.0,
            tuple(XdfChannel(c.label, c.unit, c.type) for c in PACER_CHANNELS),
            source_id=f"calmloop-{self._uid}-pacer", manufacturer="calmloop",
            desc=(("calmloop", (("state_codes", tuple(
                ("state", (("code", str(code)), ("name", state.value))) for state, code in STATE_CODES.items()
            )),)),),
        ))
        self._marker_id = self._writer.add_stream(XdfStreamInfo(
            MARKERS_STREAM.name, MARKERS_STREAM.type, "string", 0.0, (XdfChannel("marker", "", "Marker"),),
            source_id=f"calmloop-{self._uid}-markers", manufacturer="calmloop",
        ))
        described += [
            {"name": ESTIMATES_STREAM.name, "type": ESTIMATES_STREAM.type,
             "metrics": [m.value for m in self._metrics]},
            {"name": PACER_STREAM.name, "type": PACER_STREAM.type,
             "channels": [c.label for c in PACER_CHANNELS],
             "state_codes": {s.value: c for s, c in STATE_CODES.items()}},
            {"name": MARKERS_STREAM.name, "type": MARKERS_STREAM.type},
        ]
        self._sidecar: dict[str, JsonValue] = {
            "format_version": FORMAT_VERSION,
            "patient_id": self._patient_id,
            "session_start_utc": self._started.isoformat(),
            "time_base": TIME_BASE,
            "files": {"xdf": XDF_FILENAME, "sidecar": SIDECAR_FILENAME},
            "streams": _jsonable(described),
            "config": _jsonable(dict(config or {})),
            "package_versions": _jsonable(versions),
            "complete": False,
        }
        ids = [i for i, _ in self._signal_ids.values()] + [self._est_id, self._pacer_id, self._marker_id]
        for sid in ids:
            # stream clock == session clock: one zero offset keeps pyxdf's synchronisation a no-op
            self._writer.write_clock_offset(sid, 0.0, 0.0)
        self._write_json()
        self._writer.write_strings(self._marker_id, [session_marker("start")], [0.0])
        logger.info("recording session %s to %s", self._patient_id, self._folder)

    @classmethod
    def create(
        cls,
        root: str | os.PathLike[str],
        streams: Sequence[StreamSpec],
        *,
        patient_id: str,
        config: Mapping[str, object] | None = None,
        started_at: datetime | None = None,
        flush_interval_s: float = 1.0,
        max_buffer_bytes: int = 1 << 20,
        wall_clock: Callable[[], float] = time.monotonic,
    ) -> SessionRecorder:
        """Record into ``root / session_folder_name(patient_id, started_at)``.

        Parameters are those of :class:`SessionRecorder`, with ``root`` the folder that holds
        every session (e.g. ``sessions/``): the session folder is named
        ``<UTC start>_<patient id>``, e.g. ``20250304T093000Z_P017``.
        """
        started = started_at if started_at is not None else datetime.now(timezone.utc)
        folder = Path(root) / session_folder_name(patient_id, started)
        return cls(
            folder, streams, patient_id=patient_id, config=config, started_at=started,
            flush_interval_s=flush_interval_s, max_buffer_bytes=max_buffer_bytes, wall_clock=wall_clock,
        )

    # -- properties -----------------------------------------------------------------------------
    @property
    def folder(self) -> Path:
        """The session folder."""
        return self._folder

    @property
    def xdf_path(self) -> Path:
        """``folder / "session.xdf"``."""
        return self._folder / XDF_FILENAME

    @property
    def sidecar_path(self) -> Path:
        """``folder / "session.json"``."""
        return self._folder / SIDECAR_FILENAME

    @property
    def error(self) -> OSError | None:
        """The write error that stopped the recording, if any."""
        return self._error

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    # -- Sink -----------------------------------------------------------------------------------
    def write(self, result: TickResult) -> None:
        """Record one tick: its chunks, estimates, decisions and their marker events.

        Raises
        ------
        ValueError
            If the recorder is closed, or a chunk's kind or channel count was not declared.
        """
        if self._closed:
            self._check_open()
        chunks = result.chunks
        columns = self._signal_columns
        for chunk in chunks:
            entry = columns.get(chunk.kind)
            if entry is None or chunk.data.shape[0] != entry[1]:
                self._reject(chunk)
        if self._error is not None:
            self._dropped += 1
            return
        try:
            write_numeric = self._writer.write_numeric
            for chunk in chunks:
                times = chunk.times
                if times.shape[0]:
                    write_numeric(columns[chunk.kind][0], chunk.data.T, times)
                    last = float(times[-1])
                    if last > self._last_time:  # max(self._last_time, last)
                        self._last_time = last
            estimates = result.estimates
            if estimates:
                times, rows = estimate_rows(estimates, self._metrics)
                write_numeric(self._est_id, rows, times)
            decisions = result.decisions
            if decisions:
                # np.asarray (in write_numeric) of the rows gives what np.array of them gives
                rows = [decision_row(d) for d in decisions]
                write_numeric(self._pacer_id, rows, [d.time for d in decisions])
                texts = [e for d in decisions for e in d.events]
                if texts:
                    stamps = [d.time for d in decisions for _ in d.events]
                    self._writer.write_strings(self._marker_id, texts, stamps)
        except OSError as exc:
            self._fail(exc)

    def _reject(self, chunk: Chunk) -> None:
        """Raise the error that says why ``chunk`` cannot be recorded (kind or channel count)."""
        entry = self._signal_ids.get(chunk.kind)
        if entry is None:
            raise ValueError(
                f"Invalid value for 'result': a {chunk.kind.value} chunk, but the recorder was created "
                f"for {[k.value for k in self._signal_ids]}. Create it with source.streams."
            )
        raise ValueError(
            f"Invalid value for 'result': a {chunk.kind.value} chunk with {chunk.n_channels} "
            f"channels, expected {len(entry[1].ch_names)} ({', '.join(entry[1].ch_names)})."
        )

    # -- markers and sidecar --------------------------------------------------------------------
    def mark(self, text: str, time: float | None = None) -> None:
        """Record a marker (e.g. :func:`adaptive.records.note_marker`) at session ``time``.

        Parameters
        ----------
        text : str
            One line; no names or other identifying data.
        time : float or None
            Session time in seconds; None uses the newest data time recorded.
        """
        self._check_open()
        if not isinstance(text, str) or not text.strip() or "\n" in text:
            raise ValueError(f"Invalid value for 'text': expected a non-empty single line, got {text!r}.")
        t = self._last_time if time is None else float(time)
        if not math.isfinite(t):
            raise ValueError(f"Invalid value for 'time': expected a finite session time, got {time!r}.")
        if self._error is not None:
            return
        try:
            self._writer.write_strings(self._marker_id, [text], [t])
        except OSError as exc:
            self._fail(exc)

    def outcome(
        self, measure: str, before: float | None, after: float | None, time: float | None = None
    ) -> None:
        """Record a patient-reported outcome as ``outcome:<measure> before:<v> after:<v>``."""
        self.mark(outcome_marker(measure, before, after), time)

    def write_sidecar(self, data: Mapping[str, object]) -> None:
        """Merge ``data`` into ``session.json`` (top-level keys replace) and rewrite it atomically.

        Parameters
        ----------
        data : mapping
            E.g. ``{"protocol": ..., "seed": 1, "outcomes": ..., "summary": ..., "events": ...}``.
            Dataclasses, enums and NaN are converted (NaN to null).

        Raises
        ------
        ValueError
            If ``data`` changes a key the recorder owns (``format_version``, ``files``,
            ``time_base``, ``streams``, ``complete``, ``recording``).
        """
        clean = _jsonable(dict(data))
        assert isinstance(clean, dict)
        for key in _RESERVED:
            if key in clean and clean[key] != self._sidecar.get(key):
                raise ValueError(
                    f"Invalid value for 'data': the key {key!r} belongs to the recorder "
                    f"(has {self._sidecar.get(key)!r}, got {clean[key]!r}). Drop it from the data."
                )
        if "patient_id" in clean and clean["patient_id"] != self._patient_id:
            raise ValueError(
                f"Invalid value for 'data': patient_id {clean['patient_id']!r} differs from the recorder's "
                f"{self._patient_id!r}."
            )
        self._sidecar.update(clean)
        self._write_json()

    def close(self, summary: object = None, *, end_reason: str = "") -> None:
        """End the recording: ``session:end`` marker, stream footers, fsync, final sidecar.

        Parameters
        ----------
        summary : PacingSummary, mapping or None
            Stored as ``summary`` in the sidecar (dataclasses become dicts).
        end_reason : str
            Why the session ended (marker and sidecar).

        Notes
        -----
        Calling it again does nothing.
        """
        if self._closed:
            return
        if self._error is None:
            try:
                end = session_marker("end", end_reason)
                self._writer.write_strings(self._marker_id, [end], [self._last_time])
                self._writer.close()
            except OSError as exc:
                self._fail(exc)
        self._closed = True
        if self._error is not None and not self._writer.closed:
            try:
                self._writer.close(footers=False)
            except OSError:
                pass
        recording: dict[str, object] = {
            "ended_utc": datetime.now(timezone.utc).isoformat(),
            "end_reason": end_reason,
            "last_data_time_s": self._last_time,
            "bytes": self._writer.bytes_written,
            "samples": {k.value: self._writer.n_samples(sid) for k, (sid, _) in self._signal_ids.items()},
            "estimate_rows": self._writer.n_samples(self._est_id),
            "decisions": self._writer.n_samples(self._pacer_id),
            "markers": self._writer.n_samples(self._marker_id),
            "error": None if self._error is None else f"{type(self._error).__name__}: {self._error}",
            "dropped_ticks": self._dropped,
        }
        self._sidecar["recording"] = _jsonable(recording)
        if summary is not None:
            self._sidecar["summary"] = _jsonable(summary)
        if end_reason:
            self._sidecar.setdefault("end_reason", end_reason)
        self._sidecar["complete"] = self._error is None
        try:
            self._write_json()
        except OSError as exc:
            logger.error("could not write %s: %s", self.sidecar_path, exc)
        logger.info("session file closed: %s (%d bytes)", self.xdf_path, self._writer.bytes_written)

    def __enter__(self) -> SessionRecorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None and not self._closed:
            self.close(end_reason=f"aborted: {exc_type.__name__}")
        else:
            self.close()

    # -- internals ------------------------------------------------------------------------------
    def _signal_info(self, spec: StreamSpec) -> XdfStreamInfo:
        kind = SignalKind(spec.kind)
        cal: tuple[XmlNode, ...] = (
            ("kind", kind.value),
            ("sfreq", repr(float(spec.sfreq))),
            ("unit", spec.unit),
            ("device", spec.device),
            ("extra", _entries(spec.extra)),
        )
        return XdfStreamInfo(
            signal_stream_name(kind),
            SIGNAL_STREAM_TYPES[kind],
            "double64",
            float(spec.sfreq),
            tuple(XdfChannel(c.label, c.unit, c.type) for c in signal_channels(spec)),
            source_id=f"calmloop-{self._uid}-{kind.value}",
            manufacturer=spec.device,
            desc=(("calmloop", cal),),
        )

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"{self._folder}: the recorder is closed; create a new SessionRecorder.")

    def _fail(self, exc: OSError) -> None:
        self._error = exc
        logger.error("recording to %s failed (%s): the session goes on unrecorded", self.xdf_path, exc)

    def _write_json(self) -> None:
        tmp = self._folder / f".{SIDECAR_FILENAME}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                fd = -1
                json.dump(self._sidecar, f, indent=2, allow_nan=False)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
        finally:
            if fd >= 0:
                os.close(fd)
        os.replace(tmp, self.sidecar_path)
