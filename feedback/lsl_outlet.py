"""Publish everything a session produces as Lab Streaming Layer (LSL) streams.

:class:`LslOutlets` is a session sink (``write(result: TickResult)``) that owns one LSL outlet
per stream:

============  ===================  ============  ============================================
outlet        LSL type             rate          channels
============  ===================  ============  ============================================
``eeg`` ...   ``EEG``, ``PPG``,    the stream's  one per ``StreamSpec`` channel, in the
              ``Accelerometer``,   nominal rate  source's units (EEG in microvolts)
              ``Gyroscope``
``estimates`` ``Estimates``        irregular     two per metric: ``<metric>`` (value, NaN
                                                 when that metric has no estimate at this
                                                 time) and ``<metric>_quality`` (0..1, NaN
                                                 likewise); one sample per distinct
                                                 estimate time
``pacer``     ``Pacer``            irregular     ``pace_brpm``, ``phase``, ``inhaling``,
                                   (or           ``state_code``, ``dose_ready``,
                                   ``pacer_      ``inhale_fraction``, ``following``; one
                                   sfreq``)      sample per controller decision
``markers``   ``Markers``          irregular     one string channel: every
                                                 ``PacingDecision.events`` entry (state
                                                 changes with reasons, alerts, stops,
                                                 ``ready_for_dosing``, pace steps)
============  ===================  ============  ============================================

Every outlet carries XDF-style metadata in ``desc`` (``channels/channel`` with ``label``,
``unit``, ``type``; ``acquisition`` with ``manufacturer`` "calmloop", ``model`` (the device)
and ``software``; a ``calmloop`` node with the session offset) and a stable ``source_id``
``f"{source_id_prefix}-{kind}"``, so that an inlet (LabRecorder, mne-lsl, another calmloop)
recovers by itself when calmloop restarts with the same prefix.

Time: samples are stamped ``lsl_time = session_time + session_offset`` where
``session_offset = pylsl.local_clock() - clock.now()`` is measured once, at construction.
All outlets share the offset, so the streams stay aligned in an XDF recording, and the
offset is written into each ``desc`` (``calmloop/session_offset_s``) to map LSL time back to
session time.  In a replay faster than real time the stamps run ahead of ``local_clock()``;
they stay consistent with each other.

Pacer phase: ``phase`` is the pacer's position in its breathing cycle, 0..1 (0 = start of an
inhale), integrated from the decided pace over data time; ``inhaling`` is 1 while ``phase <
inhale_fraction``.  Both are NaN while the pacer is hidden (calibrating).  The view may draw
its own phase; this one is what the decisions imply.

Using it (``calmloop session --lsl``)::

    from sensors.lsl_scope import apply_lsl_scope
    apply_lsl_scope(args.lsl_scope)          # before anything loads pylsl; default "machine"
    from feedback.lsl_outlet import LslOutlets
    outlets = LslOutlets(source.streams, clock=clock, source_id_prefix="calmloop-muse2")
    sinks.append(outlets)
    ...                                      # session_tick(source, engine, sinks, now)
    outlets.close()

LSL stays on this machine unless the program chose a wider scope on purpose (see
``sensors/lsl_scope.py``).  The outlets refuse to start while ``LSLAPICFG`` is unset,
because liblsl's default configuration announces streams on every network interface.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

from adaptive.controller import PacingDecision, PacingState
from adaptive.errors import ConfigError
from adaptive.lsl_names import (
    ESTIMATES_TYPE,
    MANUFACTURER,
    MARKERS_TYPE,
    PACER_TYPE,
    STREAM_TYPES,
    outlet_name,
    outlet_source_id,
)
from adaptive.session import TickResult
from adaptive.types import UNITS, Chunk, Clock, Estimate, FloatArray, Metric, SignalKind, StreamSpec

if TYPE_CHECKING:  # pragma: no cover - typing only; pylsl is loaded lazily
    import pylsl

__all__ = [
    "PACER_CHANNELS",
    "STATE_CODES",
    "LslOutlets",
    "PacerPhase",
    "estimate_channels",
    "estimate_samples",
    "metric_unit",
]

logger = logging.getLogger(__name__)

#: Integer code of every pacing state in the pacer outlet's ``state_code`` channel.
STATE_CODES: dict[PacingState, int] = {state: code for code, state in enumerate(PacingState)}

#: Pacer outlet channels: (label, unit, type).
PACER_CHANNELS: tuple[tuple[str, str, str], ...] = (
    ("pace_brpm", "breaths/min", "Pacer"),
    ("phase", "cycles", "Pacer"),
    ("inhaling", "bool", "Pacer"),
    ("state_code", "code", "State"),
    ("dose_ready", "bool", "State"),
    ("inhale_fraction", "ratio", "Pacer"),
    ("following", "score", "Estimate"),
)

#: Units written for each signal kind's channels (EEG in the XDF spelling, which mne-lsl
#: reads as a micro-volt multiplier).
_RAW_UNITS: dict[SignalKind, str] = {**UNITS, SignalKind.EEG: "microvolts"}
_FORMATS = ("float32", "double64")
_SOFTWARE = "calmloop"


def metric_unit(metric: Metric) -> str:
    """Return the unit of a metric, read from the suffix of its name (``hr_bpm``: beats/min)."""
    v = metric.value
    for suffix, unit in (("_brpm", "breaths/min"), ("_bpm", "beats/min"), ("_ms2", "ms^2"), ("_ms", "ms")):
        if v.endswith(suffix):
            return unit
    return "au"


def estimate_channels(metrics: Sequence[Metric]) -> list[tuple[str, str, str]]:
    """Channels of the estimates outlet: value then quality for each metric, (label, unit, type)."""
    out: list[tuple[str, str, str]] = []
    for m in metrics:
        out.append((m.value, metric_unit(m), "Estimate"))
        out.append((f"{m.value}_quality", "score", "Quality"))
    return out


def estimate_samples(
    estimates: Iterable[Estimate], metrics: Sequence[Metric]
) -> tuple[FloatArray, FloatArray]:
    """Group estimates by time into estimates-outlet samples.

    Parameters
    ----------
    estimates : iterable of Estimate
        Estimates of one tick (any order; metrics outside ``metrics`` are ignored).
    metrics : sequence of Metric
        Channel order of the outlet.

    Returns
    -------
    times : array of shape (n_samples,)
        Distinct estimate times, increasing (session seconds).
    values : array of shape (n_samples, 2 * len(metrics))
        ``[value, quality]`` per metric; NaN where a metric has no estimate at that time.
        When one metric has two estimates at the same time the later one wins.
    """
    index = {m: i for i, m in enumerate(metrics)}
    kept = [e for e in estimates if e.metric in index]
    times = np.array(sorted({e.time for e in kept}), dtype=np.float64)
    values = np.full((times.size, 2 * len(metrics)), np.nan)
    rows = {t: r for r, t in enumerate(times.tolist())}
    for e in kept:
        r, c = rows[e.time], 2 * index[e.metric]
        values[r, c] = e.value
        values[r, c + 1] = e.quality
    return times, values


class PacerPhase:
    """Breathing-cycle phase of the pacer, integrated from the decided pace over data time.

    ``update(decision)`` returns ``(phase, inhaling)``: phase in [0, 1) cycles (0 = start of an
    inhale), inhaling 1.0 while ``phase < inhale_fraction``; both NaN while the pacer is hidden.
    Between two decisions the phase advances by ``pace / 60 * dt`` using the pace that was shown
    during that interval (the earlier decision's).

    Examples
    --------
    >>> from adaptive.controller import PacingDecision, PacingState
    >>> p = PacerPhase()
    >>> d = lambda t: PacingDecision(t, PacingState.MATCHING, 6.0, 0.4, False, "")
    >>> p.update(d(0.0)), p.update(d(5.0))      # 6 brpm: half a cycle in 5 s
    ((0.0, 1.0), (0.5, 0.0))
    """

    def __init__(self) -> None:
        self._phase = math.nan
        self._time = math.nan
        self._pace = math.nan

    def update(self, decision: PacingDecision) -> tuple[float, float]:
        """Advance to ``decision.time``; return (phase, inhaling)."""
        pace = decision.pace_brpm
        if not (decision.pacer_visible and math.isfinite(pace) and pace > 0):
            self._phase = self._time = self._pace = math.nan
            return math.nan, math.nan
        if math.isnan(self._phase):
            self._phase = 0.0
        else:
            dt = max(decision.time - self._time, 0.0)
            self._phase = (self._phase + self._pace / 60.0 * dt) % 1.0
        self._time, self._pace = decision.time, pace
        return self._phase, 1.0 if self._phase < decision.inhale_fraction else 0.0


def _require_lsl_config() -> Path:
    """Return the file LSLAPICFG names; raise before pylsl would load with liblsl's defaults."""
    current = os.environ.get("LSLAPICFG")
    if not current or not Path(current).is_file():
        got = "unset" if not current else f"{current!r}, which does not exist"
        raise ConfigError(
            f"Invalid value for 'LSLAPICFG': expected the path of an LSL configuration file, got "
            f"{got}. Without it liblsl announces the patient's streams on every network interface. "
            "Call sensors.lsl_scope.apply_lsl_scope('machine') before creating LslOutlets (the "
            "calmloop CLI does this for --lsl)."
        )
    return Path(current)


def _import_pylsl() -> Any:
    _require_lsl_config()
    import pylsl

    return pylsl


@dataclass(slots=True)
class _Outlet:
    """One LSL outlet and its bookkeeping."""

    key: str
    outlet: Any  # pylsl.StreamOutlet
    name: str
    source_id: str
    n_channels: int
    dtype: type[np.generic] | None  # None: string stream
    n_pushed: int = 0
    n_errors: int = 0


class LslOutlets:
    """Session sink that publishes raw streams, estimates, pacer and markers over LSL.

    Parameters
    ----------
    streams : sequence of StreamSpec
        The source's streams (``source.streams``); one outlet each.  Pass ``()`` to publish
        only estimates, pacer and markers.
    name_prefix : str
        Stream names are ``f"{name_prefix}-{kind}"`` (``calmloop-eeg``, ``calmloop-markers``).
    source_id_prefix : str or None
        Source ids are ``f"{source_id_prefix}-{kind}"``; default ``name_prefix``.  Keep it
        stable across restarts (e.g. ``"calmloop-muse2-<device serial>"``) so inlets recover;
        never put a patient identifier in it (LSL metadata is visible to every listener).
    clock : Clock or None
        Session clock; the offset to LSL time is ``local_clock() - clock.now()`` at
        construction.  Without a clock (and without ``session_offset``) session time 0 is the
        construction time.
    session_offset : float or None
        Explicit ``lsl_time - session_time`` in seconds (overrides ``clock``).
    metrics : sequence of Metric
        Metrics of the estimates outlet, in channel order (default: every metric).
    raw_format : {"float32", "double64"}
        Sample format of the raw outlets (float32 is what Muse producers use; its 24-bit
        mantissa keeps EEG to better than 0.001 uV).
    device : str
        ``desc/acquisition/model`` of the raw outlets (default: each StreamSpec's device).
    pacer_sfreq : float
        Nominal rate of the pacer outlet: 0 (irregular, default) or the decision rate
        (``1 / tick_s``) when every decision is on the engine's fixed grid.
    publish : sequence of str
        Which groups to publish, among ``"raw"``, ``"estimates"``, ``"pacer"``, ``"markers"``.
    max_buffered_s : float
        Seconds of data each outlet keeps for a slow consumer (LSL's ``max_buffered``).

    Raises
    ------
    ConfigError
        If ``LSLAPICFG`` is unset or names a missing file, or a parameter is invalid.

    Notes
    -----
    :meth:`write` never raises on an LSL failure: the error is logged (first time at
    WARNING, then at DEBUG) and counted in :attr:`n_errors`, so that a broken network stack
    cannot stop a clinical session.  A chunk whose channels do not match its StreamSpec is a
    wrong call and raises ``ValueError``.
    """

    def __init__(
        self,
        streams: Sequence[StreamSpec],
        *,
        name_prefix: str = "calmloop",
        source_id_prefix: str | None = None,
        clock: Clock | None = None,
        session_offset: float | None = None,
        metrics: Sequence[Metric] = tuple(Metric),
        raw_format: str = "float32",
        device: str = "",
        pacer_sfreq: float = 0.0,
        publish: Sequence[str] = ("raw", "estimates", "pacer", "markers"),
        max_buffered_s: float = 60.0,
    ) -> None:
        for name, value in (("name_prefix", name_prefix), ("source_id_prefix", source_id_prefix)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigError(f"Invalid value for {name!r}: expected a non-empty string, got {value!r}.")
        if raw_format not in _FORMATS:
            raise ConfigError(
                f"Invalid value for 'raw_format': expected one of {', '.join(map(repr, _FORMATS))}, "
                f"got {raw_format!r}."
            )
        groups = ("raw", "estimates", "pacer", "markers")
        unknown = [g for g in publish if g not in groups]
        if unknown:
            raise ConfigError(
                f"Invalid value for 'publish': expected names among {', '.join(map(repr, groups))}, "
                f"got {unknown!r}."
            )
        if not (math.isfinite(pacer_sfreq) and pacer_sfreq >= 0):
            raise ConfigError(
                f"Invalid value for 'pacer_sfreq': expected 0 (irregular) or a rate in Hz, got {pacer_sfreq!r}."
            )
        if not (math.isfinite(max_buffered_s) and max_buffered_s > 0):
            raise ConfigError(f"Invalid value for 'max_buffered_s': expected seconds > 0, got {max_buffered_s!r}.")
        specs = tuple(streams)
        kinds = [s.kind for s in specs]
        if len(set(kinds)) != len(kinds):
            raise ConfigError(
                f"Invalid value for 'streams': expected at most one stream per kind, got {[k.value for k in kinds]}."
            )
        self._metrics = tuple(Metric(m) for m in metrics)
        if len(set(self._metrics)) != len(self._metrics):
            raise ConfigError("Invalid value for 'metrics': expected distinct metrics, got duplicates.")

        self._pylsl = _import_pylsl()
        self._name_prefix = name_prefix
        self._sid_prefix = source_id_prefix or name_prefix
        if session_offset is not None:
            if not math.isfinite(session_offset):
                raise ConfigError(f"Invalid value for 'session_offset': expected finite seconds, got {session_offset!r}.")
            self._offset = float(session_offset)
        else:
            now = clock.now() if clock is not None else 0.0
            self._offset = float(self._pylsl.local_clock()) - float(now)
        self._specs = {s.kind: s for s in specs}
        self._raw_dtype: type[np.generic] = np.float32 if raw_format == "float32" else np.float64
        self._raw_format = raw_format
        self._device = device
        self._pacer_sfreq = float(pacer_sfreq)
        self._max_buffered = float(max_buffered_s)
        self._phase = PacerPhase()
        self._closed = False
        self._outlets: dict[str, _Outlet] = {}
        try:
            if "raw" in publish:
                for spec in specs:
                    self._outlets[spec.kind.value] = self._make_raw(spec)
            if "estimates" in publish:
                self._outlets["estimates"] = self._make_estimates()
            if "pacer" in publish:
                self._outlets["pacer"] = self._make_pacer()
            if "markers" in publish:
                self._outlets["markers"] = self._make_markers()
        except Exception:
            self.close()
            raise
        logger.info(
            "LSL outlets open: %s (source ids %s-*, session offset %.3f s).",
            ", ".join(o.name for o in self._outlets.values()),
            self._sid_prefix,
            self._offset,
        )

    # ------------------------------------------------------------------ properties
    @property
    def session_offset(self) -> float:
        """``lsl_time - session_time`` in seconds."""
        return self._offset

    @property
    def stream_names(self) -> dict[str, str]:
        """LSL name of each open outlet, keyed by outlet kind (``"eeg"``, ``"markers"``...)."""
        return {k: o.name for k, o in self._outlets.items()}

    @property
    def source_ids(self) -> dict[str, str]:
        """LSL source_id of each open outlet, keyed by outlet kind."""
        return {k: o.source_id for k, o in self._outlets.items()}

    @property
    def n_pushed(self) -> dict[str, int]:
        """Samples pushed so far per outlet kind."""
        return {k: o.n_pushed for k, o in self._outlets.items()}

    @property
    def n_errors(self) -> dict[str, int]:
        """Failed pushes so far per outlet kind."""
        return {k: o.n_errors for k, o in self._outlets.items()}

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def lsl_time(self, session_time: float | FloatArray) -> float | FloatArray:
        """Map session seconds to LSL seconds (``session_time + session_offset``)."""
        return session_time + self._offset

    def have_consumers(self) -> dict[str, bool]:
        """Whether any inlet is connected to each outlet (all False once closed)."""
        return {k: o.outlet is not None and bool(o.outlet.have_consumers()) for k, o in self._outlets.items()}

    def wait_for_consumers(self, timeout_s: float) -> bool:
        """Wait until every outlet has a consumer (at most ``timeout_s`` in total)."""
        if self._closed:
            return False
        deadline = self._pylsl.local_clock() + float(timeout_s)
        for o in self._outlets.values():
            left = deadline - self._pylsl.local_clock()
            if left <= 0 or not o.outlet.wait_for_consumers(left):
                return False
        return True

    # ------------------------------------------------------------------ sink
    def write(self, result: TickResult) -> None:
        """Publish one tick: raw chunks, estimates, one pacer sample per decision, markers."""
        if self._closed:
            return
        for chunk in result.chunks:
            self._write_chunk(chunk)
        if result.estimates and "estimates" in self._outlets:
            times, values = estimate_samples(result.estimates, self._metrics)
            if times.size:
                self._push("estimates", values, times + self._offset)
        if result.decisions:
            self._write_decisions(result.decisions)

    def close(self) -> None:
        """Destroy every outlet (inlets see the streams disappear).  Idempotent.

        The counters (:attr:`n_pushed`, :attr:`n_errors`) stay readable afterwards.
        """
        if self._closed:
            return
        self._closed = True
        for o in self._outlets.values():
            o.outlet = None  # the last reference: pylsl destroys the liblsl outlet now
        if self._outlets:
            logger.info(
                "LSL outlets closed (%s).",
                ", ".join(f"{o.key} {o.n_pushed} samples" for o in self._outlets.values()),
            )

    def __enter__(self) -> LslOutlets:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _write_chunk(self, chunk: Chunk) -> None:
        key = chunk.kind.value
        if key not in self._outlets:
            return
        spec = self._specs[chunk.kind]
        if chunk.ch_names != spec.ch_names:
            raise ValueError(
                f"Invalid value for 'chunk': expected {chunk.kind.value} channels {spec.ch_names}, got "
                f"{chunk.ch_names}. LslOutlets must be built from the same source.streams."
            )
        if chunk.n_times:
            self._push(key, chunk.data.T, chunk.times + self._offset)

    def _write_decisions(self, decisions: Sequence[PacingDecision]) -> None:
        rows = np.empty((len(decisions), len(PACER_CHANNELS)))
        times = np.empty(len(decisions))
        events: list[str] = []
        event_times: list[float] = []
        for i, d in enumerate(decisions):
            phase, inhaling = self._phase.update(d)
            rows[i] = (
                d.pace_brpm if d.pacer_visible else math.nan,
                phase,
                inhaling,
                STATE_CODES[d.state],
                1.0 if d.dose_ready else 0.0,
                d.inhale_fraction,
                d.following,
            )
            times[i] = d.time
            for e in d.events:
                events.append(e)
                event_times.append(d.time)
        if "pacer" in self._outlets:
            self._push("pacer", rows, times + self._offset)
        if events and "markers" in self._outlets:
            self._push_strings("markers", events, np.asarray(event_times) + self._offset)

    def _push(self, key: str, samples: FloatArray, stamps: FloatArray) -> None:
        o = self._outlets[key]
        data = np.ascontiguousarray(samples, dtype=o.dtype)
        if data.ndim != 2 or data.shape[1] != o.n_channels:
            raise ValueError(
                f"Invalid value for 'samples': expected shape (n, {o.n_channels}) for {o.name}, got {data.shape}."
            )
        try:
            o.outlet.push_chunk(data, [float(t) for t in stamps])
        except Exception as exc:  # noqa: BLE001 - a sink must not stop the session
            self._failed(o, exc)
            return
        o.n_pushed += data.shape[0]

    def _push_strings(self, key: str, values: list[str], stamps: FloatArray) -> None:
        o = self._outlets[key]
        try:
            o.outlet.push_chunk([[v] for v in values], [float(t) for t in stamps])
        except Exception as exc:  # noqa: BLE001 - a sink must not stop the session
            self._failed(o, exc)
            return
        o.n_pushed += len(values)

    def _failed(self, o: _Outlet, exc: Exception) -> None:
        o.n_errors += 1
        level = logging.WARNING if o.n_errors == 1 else logging.DEBUG
        logger.log(level, "LSL outlet %s: push failed (%s); %d failure(s) so far.", o.name, exc, o.n_errors)

    def _info(
        self,
        kind: str,
        stream_type: str,
        channels: Sequence[tuple[str, str, str]],
        sfreq: float,
        fmt: int,
        model: str,
    ) -> tuple[pylsl.StreamInfo, Any]:
        """StreamInfo with the XDF-style desc; also returns the ``desc/calmloop`` node."""
        pylsl = self._pylsl
        name = outlet_name(self._name_prefix, kind)
        sid = outlet_source_id(self._sid_prefix, kind)
        info = pylsl.StreamInfo(name, stream_type, len(channels), float(sfreq), fmt, sid)
        desc = info.desc()
        desc.append_child_value("manufacturer", MANUFACTURER)
        chans = desc.append_child("channels")
        for label, unit, ch_type in channels:
            ch = chans.append_child("channel")
            ch.append_child_value("label", label)
            ch.append_child_value("unit", unit)
            ch.append_child_value("type", ch_type)
        acq = desc.append_child("acquisition")
        acq.append_child_value("manufacturer", MANUFACTURER)
        acq.append_child_value("model", model)
        acq.append_child_value("software", _SOFTWARE)
        cal = desc.append_child("calmloop")
        cal.append_child_value("kind", kind)
        cal.append_child_value("session_offset_s", repr(self._offset))
        cal.append_child_value("time_base", "lsl_time = session_time + session_offset_s")
        return info, cal

    def _open(self, key: str, info: Any, n_channels: int, dtype: type[np.generic] | None) -> _Outlet:
        pylsl = self._pylsl
        # max_buffered is seconds for regular streams and hundreds of samples for irregular ones
        max_buffered = max(1, math.ceil(self._max_buffered))
        outlet = pylsl.StreamOutlet(info, 0, max_buffered)
        return _Outlet(key, outlet, info.name(), info.source_id(), n_channels, dtype)

    def _make_raw(self, spec: StreamSpec) -> _Outlet:
        pylsl = self._pylsl
        kind = spec.kind.value
        ch_type = STREAM_TYPES[spec.kind]
        unit = _RAW_UNITS[spec.kind]
        channels = [(n, unit, ch_type) for n in spec.ch_names]
        fmt = pylsl.cf_float32 if self._raw_format == "float32" else pylsl.cf_double64
        info, cal = self._info(kind, STREAM_TYPES[spec.kind], channels, spec.sfreq, fmt, self._device or spec.device or "unknown")
        cal.append_child_value("unit", UNITS[spec.kind])
        return self._open(kind, info, len(channels), self._raw_dtype)

    def _make_estimates(self) -> _Outlet:
        pylsl = self._pylsl
        channels = estimate_channels(self._metrics)
        info, cal = self._info(
            "estimates", ESTIMATES_TYPE, channels, pylsl.IRREGULAR_RATE, pylsl.cf_double64, "calmloop estimators"
        )
        cal.append_child_value("layout", "value and quality per metric; NaN when the metric has no estimate at this time")
        return self._open("estimates", info, len(channels), np.float64)

    def _make_pacer(self) -> _Outlet:
        pylsl = self._pylsl
        sfreq = self._pacer_sfreq if self._pacer_sfreq > 0 else pylsl.IRREGULAR_RATE
        info, cal = self._info("pacer", PACER_TYPE, PACER_CHANNELS, sfreq, pylsl.cf_double64, "calmloop controller")
        states = cal.append_child("states")
        for state, code in STATE_CODES.items():
            s = states.append_child("state")
            s.append_child_value("code", str(code))
            s.append_child_value("name", state.value)
        return self._open("pacer", info, len(PACER_CHANNELS), np.float64)

    def _make_markers(self) -> _Outlet:
        pylsl = self._pylsl
        info, cal = self._info(
            "markers", MARKERS_TYPE, [("event", "none", "Marker")], pylsl.IRREGULAR_RATE, pylsl.cf_string,
            "calmloop controller",
        )
        cal.append_child_value(
            "events", "state:<state> reason:<why> | alert:<cause> | stop:<by> | ready_for_dosing | pace:... | calibration:..."
        )
        return self._open("markers", info, 1, None)
