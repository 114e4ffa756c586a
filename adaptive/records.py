"""What a session file holds: stream names, channel layouts, marker formats and ``FORMAT_VERSION``.

A calmloop session is one folder, private to the user, named ``<UTC date>T<time>Z_<patient id>``
(:func:`session_folder_name`), holding

``session.xdf`` (:data:`XDF_FILENAME`)
    One XDF 1.0 file (the Lab Streaming Layer's format, read by pyxdf, MNE via pyxdf, EEGLAB and
    MATLAB's ``load_xdf``), written append-only by ``feedback.recorder.SessionRecorder``:

    * ``calmloop-eeg`` / ``-ppg`` / ``-accel`` / ``-gyro``: types ``EEG``, ``PPG``, ``ACC``,
      ``GYRO`` (:data:`SIGNAL_STREAM_TYPES`), double64 at the nominal rate, the source's
      channels in microvolts, arbitrary units, g and deg/s;
    * ``calmloop-estimates`` (type ``Estimates``, irregular): per :class:`Metric` a value
      channel and a ``<metric>_quality`` channel (:func:`estimate_channels`); NaN in both means
      "no estimate of that metric at that time";
    * ``calmloop-pacer`` (type ``Pacer``, irregular): :data:`PACER_CHANNELS`, one sample per
      decision, states coded by :data:`STATE_CODES` (the table is also in the stream header);
    * ``calmloop-markers`` (type ``Markers``, irregular, one string channel): controller events
      and session markers (formats below).

    Every time stamp is *session time* in seconds (the ``Chunk.times`` of the source, the
    ``Estimate.time`` and ``PacingDecision.time``), not LSL ``local_clock``; the file header says
    so (``<calmloop><time_base>session</time_base>``) and gives the UTC start.  Each stream has
    one ClockOffset chunk of 0 s (its clock *is* the session clock), so pyxdf's clock
    synchronisation leaves the stamps untouched (and does not warn).  Raw samples are stored as
    double so that a replay is bit-identical.  Signal streams carry ``desc/calmloop`` (kind,
    exact ``sfreq``, unit, device, ``extra`` entries) so that the ``StreamSpec`` comes back.

``session.json`` (:data:`SIDECAR_FILENAME`)
    The sidecar: ``format_version``, patient id (pseudonymous), protocol, resolved config,
    seed, package versions, outcomes, summary, and whether the recording completed.

Marker formats (one string per sample of ``calmloop-markers``)
---------------------------------------------------------------
Controller events, exactly as in ``PacingDecision.events`` (see :mod:`adaptive.controller`):
``state:<state> reason:<text>``, ``alert:<cause> <text>``, ``ready_for_dosing``,
``stop:<by> reason:<text>``, ``pace:<hold|descend|step_back> ...``, ``calibration:done ...``,
``resonance:<probe|tuned> ...``.  Session markers written by the recorder itself:
``session:start``, ``session:end reason:<text>``, ``outcome:<measure> before:<v> after:<v>``,
``note:<text>``.  :func:`parse_marker` splits any of them into kind, value and fields.

This module is pure (no I/O): ``feedback/`` writes with it and ``sensors/`` reads with it, so
the two never import each other.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from .controller import PacingDecision, PacingState
from .errors import ConfigError
from .types import UNITS, Estimate, FloatArray, Metric, SignalKind, StreamSpec

__all__ = [
    "ESTIMATES_STREAM",
    "FORMAT_VERSION",
    "MARKERS_STREAM",
    "PACER_CHANNELS",
    "PACER_STREAM",
    "QUALITY_SUFFIX",
    "SESSION_MARKER_KINDS",
    "SIDECAR_FILENAME",
    "SIGNAL_STREAM_TYPES",
    "STATE_CODES",
    "TIME_BASE",
    "XDF_FILENAME",
    "XDF_UNITS",
    "ChannelDesc",
    "Marker",
    "ParsedMarker",
    "RecordedStream",
    "Recording",
    "StreamName",
    "check_patient_id",
    "decision_row",
    "decisions_from_rows",
    "estimate_channels",
    "estimate_rows",
    "estimates_from_rows",
    "metric_unit",
    "note_marker",
    "outcome_marker",
    "parse_marker",
    "session_folder_name",
    "session_marker",
    "signal_channels",
    "signal_stream_name",
]

#: Version of the session-file layout described here; bump it when a reader must change.
FORMAT_VERSION = 1
XDF_FILENAME = "session.xdf"
SIDECAR_FILENAME = "session.json"
#: What the XDF time stamps of a calmloop file count: seconds on the session clock.
TIME_BASE = "session"


@dataclass(frozen=True, slots=True)
class StreamName:
    """Name and XDF content type of one stream of the session file."""

    name: str
    type: str


#: XDF content type of each raw signal stream (muselsl's names, which MNE/pyxdf users know).
SIGNAL_STREAM_TYPES: Mapping[SignalKind, str] = {
    SignalKind.EEG: "EEG",
    SignalKind.PPG: "PPG",
    SignalKind.ACCEL: "ACC",
    SignalKind.GYRO: "GYRO",
}
#: Unit strings written in the XDF channel metadata (LSL meta-data conventions where they exist).
XDF_UNITS: Mapping[SignalKind, str] = {
    SignalKind.EEG: "microvolts",
    SignalKind.PPG: UNITS[SignalKind.PPG],
    SignalKind.ACCEL: UNITS[SignalKind.ACCEL],
    SignalKind.GYRO: UNITS[SignalKind.GYRO],
}
ESTIMATES_STREAM = StreamName("calmloop-estimates", "Estimates")
PACER_STREAM = StreamName("calmloop-pacer", "Pacer")
MARKERS_STREAM = StreamName("calmloop-markers", "Markers")
QUALITY_SUFFIX = "_quality"

#: Stable integer code of each controller state in the pacer stream (never renumber).
STATE_CODES: Mapping[PacingState, int] = {
    PacingState.CALIBRATING: 0,
    PacingState.MATCHING: 1,
    PacingState.SLOWING: 2,
    PacingState.RESONANCE: 3,
    PacingState.CALM: 4,
    PacingState.READY_FOR_DOSING: 5,
    PacingState.SIGNAL_LOST: 6,
    PacingState.ALERT: 7,
    PacingState.STOPPED: 8,
}
_STATES_BY_CODE: Mapping[int, PacingState] = {v: k for k, v in STATE_CODES.items()}

#: Kinds of the markers written by the recorder (everything else comes from the controller).
SESSION_MARKER_KINDS: tuple[str, ...] = ("session", "outcome", "note")


@dataclass(frozen=True, slots=True)
class ChannelDesc:
    """One channel as described in an XDF stream header (``desc/channels/channel``)."""

    label: str
    unit: str
    type: str


#: Channels of the pacer stream, one sample per :class:`PacingDecision`.
PACER_CHANNELS: tuple[ChannelDesc, ...] = (
    ChannelDesc("pace_brpm", "breaths/min", "pace"),  # NaN while the pacer is hidden
    ChannelDesc("inhale_fraction", "ratio", "pace"),
    ChannelDesc("state_code", "code", "state"),  # see STATE_CODES (also in the header)
    ChannelDesc("dose_ready", "bool", "state"),
    ChannelDesc("pacer_visible", "bool", "state"),
    ChannelDesc("following", "ratio", "score"),
)


def signal_stream_name(kind: SignalKind) -> str:
    """Name of the XDF stream that holds the raw samples of ``kind`` (``"calmloop-eeg"``)."""
    return f"calmloop-{SignalKind(kind).value}"


def signal_channels(spec: StreamSpec) -> tuple[ChannelDesc, ...]:
    """Channel metadata of a raw signal stream: labels, the XDF unit and the content type."""
    unit, ctype = XDF_UNITS[spec.kind], SIGNAL_STREAM_TYPES[spec.kind]
    return tuple(ChannelDesc(name, unit, ctype) for name in spec.ch_names)


def metric_unit(metric: Metric) -> str:
    """Unit of a metric's value, from the suffix of its name (``"hr_bpm"`` -> ``"beats/min"``)."""
    name = Metric(metric).value
    for suffix, unit in (("_brpm", "breaths/min"), ("_bpm", "beats/min"), ("_ms2", "ms^2"), ("_ms", "ms")):
        if name.endswith(suffix):
            return unit
    return "au"


def estimate_channels(metrics: Sequence[Metric] = tuple(Metric)) -> tuple[ChannelDesc, ...]:
    """Channels of the estimates stream: per metric its value then its quality (0..1)."""
    out: list[ChannelDesc] = []
    for m in metrics:
        out.append(ChannelDesc(m.value, metric_unit(m), "estimate"))
        out.append(ChannelDesc(m.value + QUALITY_SUFFIX, "ratio", "quality"))
    return tuple(out)


def estimate_rows(
    estimates: Sequence[Estimate], metrics: Sequence[Metric] = tuple(Metric)
) -> tuple[FloatArray, FloatArray]:
    """Pack estimates into rows of the estimates stream.

    Consecutive estimates with the same time and different metrics share one row; every
    other estimate starts a new row.  Absent metrics are NaN in both channels.

    Parameters
    ----------
    estimates : sequence of Estimate
        In the order they were produced.
    metrics : sequence of Metric
        The metrics of the layout (:func:`estimate_channels`).

    Returns
    -------
    times : array of shape (n_rows,)
        Time of each row.
    rows : array of shape (n_rows, 2 * n_metrics)
        Value and quality of each metric (NaN when absent).

    Raises
    ------
    ValueError
        If an estimate's metric is not in ``metrics``.
    """
    col = _columns(metrics)
    width = 2 * len(metrics)
    # rows as lists of Python floats (np.array converts them exactly as item assignment into a
    # float64 array does); a row's quality cell is NaN until an estimate of its metric fills it
    empty = [math.nan] * width
    times: list[float] = []
    rows: list[list[float]] = []
    current: list[float] | None = None
    isnan = math.isnan
    for e in estimates:
        j = col.get(e.metric)
        if j is None:
            raise ValueError(
                f"Invalid value for 'estimates': metric {e.metric.value!r} is not in the layout "
                f"({len(metrics)} metrics). Pass the metrics the stream was created with."
            )
        t = e.time
        if current is None or times[-1] != t or not isnan(current[j + 1]):
            current = empty.copy()
            rows.append(current)
            times.append(t)
        current[j] = e.value
        current[j + 1] = e.quality
    if not rows:
        return np.zeros(0), np.zeros((0, width))
    return np.asarray(times, dtype=np.float64), np.array(rows, dtype=np.float64)


#: The last layout seen by :func:`estimate_rows` and its metric -> value column map (a
#: recorder passes the same tuple on every tick).
_last_columns: tuple[Sequence[Metric], dict[Metric, int]] = ((), {})


def _columns(metrics: Sequence[Metric]) -> dict[Metric, int]:
    """Value column of each metric of a layout (quality at +1), cached for the last layout."""
    global _last_columns
    last, col = _last_columns
    if metrics is not last:
        col = {m: 2 * i for i, m in enumerate(metrics)}
        if isinstance(metrics, tuple):  # immutable: safe to reuse while it is the same object
            _last_columns = (metrics, col)
    return col


def estimates_from_rows(times: FloatArray, rows: FloatArray, labels: Sequence[str]) -> list[Estimate]:
    """Unpack rows of an estimates stream (inverse of :func:`estimate_rows`).

    Parameters
    ----------
    times : array of shape (n_rows,)
        Row times.
    rows : array of shape (n_rows, n_channels)
        Values and qualities.
    labels : sequence of str
        Channel labels from the stream header; labels that are not a known metric or its
        quality are ignored (a newer file may hold more metrics).

    Returns
    -------
    estimates : list of Estimate
        Row by row, within a row in channel order; a metric is present when its quality is
        not NaN.
    """
    pairs: list[tuple[Metric, int, int]] = []
    index = {label: i for i, label in enumerate(labels)}
    for label, i in index.items():
        if label.endswith(QUALITY_SUFFIX):
            continue
        try:
            metric = Metric(label)
        except ValueError:
            continue
        q = index.get(label + QUALITY_SUFFIX)
        if q is not None:
            pairs.append((metric, i, q))
    out: list[Estimate] = []
    values = np.asarray(rows, dtype=np.float64)
    if not pairs or values.shape[0] == 0:
        return out
    # the present cells (quality not NaN), row by row and within a row in channel order, as
    # Python floats (an hour holds ~60 000 estimates); the quality is clipped to 0..1, so the
    # trusted constructor builds the same Estimate as the validating one
    row_times = np.asarray(times, dtype=np.float64)
    values = values[: row_times.shape[0]]  # rows without a time are left out
    vals = values[:, [i for _, i, _ in pairs]]
    quals = np.clip(values[:, [q for _, _, q in pairs]], 0.0, 1.0)
    present = ~np.isnan(quals)
    row_of, pair_of = np.nonzero(present)
    metrics = [m for m, _, _ in pairs]
    trusted = Estimate._trusted
    return [
        trusted(metrics[k], v, q, t)
        for k, v, q, t in zip(
            pair_of.tolist(), vals[present].tolist(), quals[present].tolist(), row_times[row_of].tolist()
        )
    ]


def decision_row(decision: PacingDecision) -> list[float]:
    """One sample of the pacer stream (order of :data:`PACER_CHANNELS`)."""
    return [
        float(decision.pace_brpm),
        float(decision.inhale_fraction),
        float(STATE_CODES[decision.state]),
        1.0 if decision.dose_ready else 0.0,
        1.0 if decision.pacer_visible else 0.0,
        float(decision.following),
    ]


def decisions_from_rows(
    times: FloatArray,
    rows: FloatArray,
    labels: Sequence[str],
    markers: Sequence[Marker] = (),
) -> list[PacingDecision]:
    """Rebuild decisions from the pacer stream and the controller markers at the same times.

    Parameters
    ----------
    times : array of shape (n_rows,)
        Decision times.
    rows : array of shape (n_rows, n_channels)
        Pacer samples.
    labels : sequence of str
        Channel labels of the pacer stream (columns are found by label).
    markers : sequence of Marker
        Markers of the session; the controller events whose time equals a decision's time
        become its ``events`` (session markers are left out).

    Returns
    -------
    decisions : list of PacingDecision
        ``reason`` is the reason of the decision's ``state:`` event when it has one (a
        transition), else empty: per-step reasons are not stored.

    Raises
    ------
    ValueError
        If a required channel is missing or a state code is unknown.
    """
    index = {label: i for i, label in enumerate(labels)}
    missing = [c.label for c in PACER_CHANNELS if c.label not in index]
    if missing:
        raise ValueError(
            f"Invalid value for 'labels': expected the pacer channels {[c.label for c in PACER_CHANNELS]}, "
            f"missing {missing}."
        )
    by_time: dict[float, list[str]] = {}
    for m in markers:
        if parse_marker(m.text).kind not in SESSION_MARKER_KINDS:
            by_time.setdefault(m.time, []).append(m.text)
    values = np.asarray(rows, dtype=np.float64)
    out: list[PacingDecision] = []
    if values.shape[0] == 0:
        return out
    names = ("pace_brpm", "inhale_fraction", "state_code", "dose_ready", "pacer_visible", "following")
    # the columns as Python floats, one row per decision (float() of the numpy items, faster)
    table = values[:, [index[n] for n in names]].tolist()
    decision_times = np.asarray(times, dtype=np.float64)[: values.shape[0]].tolist()
    isfinite = math.isfinite
    for k, (pace, inhale, code, dose, visible, following) in enumerate(table):
        if not isfinite(code) or int(code) not in _STATES_BY_CODE:
            code_item = values[k, index["state_code"]]  # the numpy scalar, as the message shows it
            raise ValueError(
                f"Invalid value for 'state_code': expected one of {sorted(_STATES_BY_CODE)}, "
                f"got {code_item!r}."
            )
        t = decision_times[k]
        events = tuple(by_time.get(t, ()))
        reason = ""
        for e in events:
            parsed = parse_marker(e)
            if parsed.kind == "state":
                reason = parsed.fields.get("reason", "")
        out.append(
            PacingDecision(
                time=t,
                state=_STATES_BY_CODE[int(code)],
                pace_brpm=pace,
                inhale_fraction=inhale,
                dose_ready=dose > 0.5,
                reason=reason,
                events=events,
                pacer_visible=visible > 0.5,
                following=following,
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# Markers
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Marker:
    """One marker: a time (seconds on the recording's clock), its text and the stream it came from."""

    time: float
    text: str
    stream: str = ""


@dataclass(frozen=True, slots=True)
class ParsedMarker:
    """A marker split into ``kind:value`` and ``key:value`` fields (see :func:`parse_marker`)."""

    kind: str
    value: str
    fields: Mapping[str, str] = field(default_factory=dict)
    text: str = ""


_FIELD = re.compile(r"(?:^|\s)(reason|before|after|by):")


def parse_marker(text: str) -> ParsedMarker:
    """Split a marker into kind, value and fields.

    ``"state:slowing reason:matched 5.70 brpm"`` gives kind ``"state"``, value ``"slowing"`` and
    fields ``{"reason": "matched 5.70 brpm"}``; ``"ready_for_dosing"`` gives kind
    ``"ready_for_dosing"`` and an empty value.  Fields are ``reason:``, ``before:``, ``after:``
    and ``by:``; ``reason:`` takes the rest of the text.

    Examples
    --------
    >>> m = parse_marker("outcome:mood before:4 after:7")
    >>> (m.kind, m.value, dict(m.fields))
    ('outcome', 'mood', {'before': '4', 'after': '7'})
    """
    text = str(text)
    head, _, rest = text.partition(" ")
    kind, _, value = head.partition(":")
    fields: dict[str, str] = {}
    matches = list(_FIELD.finditer(" " + rest))
    for i, m in enumerate(matches):
        key = m.group(1)
        end = len(rest) + 1 if key == "reason" or i + 1 == len(matches) else matches[i + 1].start()
        fields[key] = (" " + rest)[m.end() : end].strip()
        if key == "reason":
            break
    lead = (" " + rest)[: matches[0].start()].strip() if matches else rest.strip()
    if lead:
        value = f"{value} {lead}".strip()
    return ParsedMarker(kind=kind, value=value, fields=fields, text=text)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def session_marker(what: str, reason: str = "") -> str:
    """``session:<what>`` with an optional ``reason:`` (``"session:end reason:ready + 5 min"``)."""
    out = f"session:{_one_line(what)}"
    return f"{out} reason:{_one_line(reason)}" if reason else out


def outcome_marker(measure: str, before: float | None, after: float | None) -> str:
    """``outcome:<measure> before:<v> after:<v>`` (``NA`` when not asked)."""

    def fmt(v: float | None) -> str:
        return "NA" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:g}"

    return f"outcome:{_one_line(measure)} before:{fmt(before)} after:{fmt(after)}"


def note_marker(text: str) -> str:
    """``note:<text>`` on one line (a clinician's note; never put names in it)."""
    return f"note:{_one_line(text)}"


# ---------------------------------------------------------------------------------------------
# Session folders
# ---------------------------------------------------------------------------------------------
_PATIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def check_patient_id(patient_id: str) -> str:
    """Return ``patient_id`` if it is a pseudonymous code, else raise :class:`ConfigError`.

    A code is 1-32 letters, digits, ``-`` or ``_``: no spaces, so a name such as
    ``"Jane Doe"`` is refused (it would end up in a folder name).
    """
    if not isinstance(patient_id, str) or not _PATIENT_ID.match(patient_id):
        raise ConfigError(
            f"Invalid value for 'patient_id': expected a pseudonymous code of letters, digits, '-' or '_' "
            f"(at most 32), got {patient_id!r}. Never use the patient's name."
        )
    return patient_id


def session_folder_name(patient_id: str, started_at: datetime) -> str:
    """Folder name of a session: UTC start and pseudonymous id, ``20250101T093000Z_P017``.

    Parameters
    ----------
    patient_id : str
        Pseudonymous code (checked by :func:`check_patient_id`).
    started_at : datetime
        Start of the session; must be timezone-aware (converted to UTC).

    Raises
    ------
    ConfigError
        If the id is not a pseudonymous code.
    ValueError
        If ``started_at`` is naive.
    """
    check_patient_id(patient_id)
    if started_at.tzinfo is None:
        raise ValueError(
            "Invalid value for 'started_at': expected a timezone-aware datetime, got a naive one. "
            "Use datetime.now(timezone.utc)."
        )
    return f"{started_at.astimezone(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}_{patient_id}"


# ---------------------------------------------------------------------------------------------
# A recording read back
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, eq=False)
class RecordedStream:
    """One recorded signal stream: its spec, all samples and their times.

    Unpacks as ``spec, data, times = stream``.

    Parameters
    ----------
    spec : StreamSpec
        Kind, nominal rate, channel names, device.
    data : array of shape (n_channels, n_times)
        Samples in the units of :data:`adaptive.types.UNITS`.
    times : array of shape (n_times,)
        Strictly increasing, finite times in seconds (the recording's clock).
    """

    spec: StreamSpec
    data: FloatArray
    times: FloatArray

    def __post_init__(self) -> None:
        data = np.array(self.data, dtype=np.float64, copy=True)
        times = np.array(self.times, dtype=np.float64, copy=True)
        if data.ndim != 2 or times.ndim != 1 or data.shape[1] != times.shape[0]:
            raise ValueError(
                f"Invalid value for 'data'/'times': expected shapes (n_channels, n) and (n,), got "
                f"{data.shape} and {times.shape}."
            )
        if data.shape[0] != len(self.spec.ch_names):
            raise ValueError(
                f"Invalid value for 'data': expected {len(self.spec.ch_names)} rows for channels "
                f"{self.spec.ch_names}, got {data.shape[0]}."
            )
        if times.size and not (np.all(np.isfinite(times)) and np.all(np.diff(times) > 0)):
            raise ValueError(
                "Invalid value for 'times': expected finite, strictly increasing times. Readers repair "
                "glitched time stamps before building a RecordedStream."
            )
        data.flags.writeable = False
        times.flags.writeable = False
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "times", times)

    def __iter__(self) -> Iterator[object]:
        return iter((self.spec, self.data, self.times))

    @property
    def kind(self) -> SignalKind:
        """Signal kind of the stream."""
        return self.spec.kind

    @property
    def n_times(self) -> int:
        """Number of samples."""
        return int(self.times.shape[0])


@dataclass(frozen=True, slots=True)
class Recording:
    """Everything read from a session file or a foreign recording.

    Parameters
    ----------
    streams : tuple of RecordedStream
        Raw signal streams, at most one per :class:`SignalKind`.
    markers : tuple of Marker
        Markers sorted by time (controller events, session markers, foreign marker streams).
    estimates : tuple of Estimate
        Recorded estimates (calmloop files only), in file order.
    decisions : tuple of PacingDecision
        Recorded decisions (calmloop files only).
    metadata : mapping of str to object
        ``format`` (``"calmloop-xdf"``, ``"xdf"``, ``"brainflow"``, ``"muselsl-csv"``), ``paths``,
        ``time_base`` (``"session"`` when times are session seconds, else ``"device"``),
        ``skipped_streams``, ``warnings`` and format-specific entries.
    """

    streams: tuple[RecordedStream, ...]
    markers: tuple[Marker, ...] = ()
    estimates: tuple[Estimate, ...] = ()
    decisions: tuple[PacingDecision, ...] = ()
    metadata: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        kinds = [s.kind for s in self.streams]
        if len(set(kinds)) != len(kinds):
            raise ValueError(
                "Invalid value for 'streams': expected at most one stream per kind, got "
                f"{[k.value for k in kinds]}."
            )

    @property
    def specs(self) -> tuple[StreamSpec, ...]:
        """Specs of the signal streams (what a replay source offers)."""
        return tuple(s.spec for s in self.streams)

    def stream(self, kind: SignalKind) -> RecordedStream | None:
        """The stream of ``kind``, or None."""
        for s in self.streams:
            if s.kind == SignalKind(kind):
                return s
        return None

    @property
    def start_time(self) -> float:
        """Earliest sample time over all streams (NaN if there is none)."""
        firsts = [float(s.times[0]) for s in self.streams if s.n_times]
        return min(firsts) if firsts else math.nan

    @property
    def end_time(self) -> float:
        """Latest sample time over all streams (NaN if there is none)."""
        lasts = [float(s.times[-1]) for s in self.streams if s.n_times]
        return max(lasts) if lasts else math.nan
