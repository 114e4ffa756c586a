"""Any LSL headband stream (muselsl, BlueMuse, Petal Metrics, mne-lsl, calmloop) as a chunk source.

:class:`LslInletSource` implements the :class:`~adaptive.types.Source` protocol on LSL inlets.
Each signal kind comes from one LSL stream chosen by *name or type* (case-insensitive), or
explicitly with a ``name:``, ``type:`` or ``source_id:`` prefix, or from a description returned
by :func:`list_lsl_streams`; :meth:`LslInletSource.auto` picks one stream per kind by the
producers' conventions.

Producer conventions (read in each producer's source or documentation)
----------------------------------------------------------------------
==============  ===================================  ==========================================
producer        streams (name / type / channels)     units
==============  ===================================  ==========================================
muselsl         all named ``Muse``; types ``EEG``    EEG microvolts; ACC g (raw / 16384);
                (TP9 AF7 AF8 TP10 "Right AUX",       GYRO "dps" (raw x 0.0074768); PPG labelled
                256 Hz), ``PPG`` (PPG1..3, 64 Hz),   "mmHg" but raw optical counts
                ``ACC`` (X Y Z, 52 Hz), ``GYRO``
                (X Y Z, 52 Hz); source_id
                ``Muse<MAC>``
BlueMuse        ``<device> (<MAC>) EEG`` etc.; types same scale factors as muselsl; optional
                ``EEG``, ``Accelerometer``,          "secondary timestamp" channels appended
                ``Gyroscope``, ``PPG``; EEG with or  (dropped here); primary timestamps may be
                without "Right AUX"; source_id       Unix time instead of LSL time (re-anchored
                ``BlueMuse``                         here, see *Time*)
Petal Metrics   current app: ``PetalMetrics_EEG``    EEG microvolts; motion assumed g and deg/s
                (EEG, TP9 AF7 AF8 TP10),             (the Muse native units; Petal's docs do not
                ``_Accel`` (Accelerometer), ``_Gyro`` say); PPG raw
                (Gyroscope), ``_PPG`` (PPG: Ambient
                IR Red); older app: ``PetalStream_
                eeg`` (5 ch: TP9 AF7 AF8 TP10 aux),
                ``_acceleration``, ``_gyroscope``,
                ``_ppg`` (ambient ir red)
mne-lsl         ``PlayerLSL`` name, type = MNE       EEG in volts with unit "0" (mne-lsl writes
PlayerLSL       channel type (``eeg``, ``misc``)     the FIFF unit exponent): scaled to uV
==============  ===================================  ==========================================

Mapping to calmloop chunks (:func:`map_lsl_channels`): EEG labels are kept (missing labels take
the Muse order TP9, AF7, AF8, TP10, AUX; AUX channels are ignored by the EEG estimator); PPG
``PPG1..3`` become ``ppg1..ppg3`` (BrainFlow's names for the same Muse characteristics) and
``ambient``/``ir``/``red`` become ``PPG_AMBIENT``/``PPG_IR``/``PPG_RED``; motion axes become
``accel_x..z`` / ``gyro_x..z``.  Units named in the stream's ``desc`` are converted to
calmloop's (EEG uV, accel g, gyro deg/s); unnamed or unknown units are assumed to be
calmloop's already (logged at INFO).  Channels labelled as timestamps are dropped.

Time
----
Inlets use liblsl's clock synchronisation (``proc_clocksync``), so timestamps are on this
machine's ``local_clock`` even for a producer on another computer.  At :meth:`start` the source
measures ``offset = local_clock() - clock.now()`` and emits ``session_time = lsl_time - offset``.
A stream whose first sample is more than 60 s away from ``now`` (e.g. BlueMuse sending Unix
time) is re-anchored once on that sample; a later step back of more than 1 s (a producer that
restarted with another clock) re-anchors the stream to continue one sample period after its
last time (WARNING).  Smaller disorder (Bluetooth producers stamp packets on arrival, and
consecutive packets can overlap by a few ms) is straightened by nudging a sample to 1/100 of a
sample period after its predecessor, so no sample is dropped and gaps are kept.  liblsl's own
dejitter (``dejitter=True``) is off by default because its recursive fit hides gaps for tens
of seconds.

Loss and recovery
-----------------
liblsl re-connects an inlet by itself when a producer with the same ``source_id`` comes back.
On top of that, one :class:`~sensors.watchdog.Watchdog` per stream flips the status to
``SIGNAL_LOST`` after ``stall_s`` seconds of session time without samples and then re-resolves
the stream with back-off (in a worker thread: :meth:`poll` never blocks), which also finds a
producer that came back with a *different* source_id.  ``poll`` never raises.

Streams stay on this machine unless the program widened the LSL scope on purpose
(``sensors/lsl_scope.py``); this module refuses to load pylsl while ``LSLAPICFG`` is unset.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import numpy as np

from adaptive.errors import SensorError
from adaptive.lsl_names import MANUFACTURER, TYPE_ALIASES, kind_from_type
from adaptive.types import UNITS, Chunk, Clock, FloatArray, SignalKind, SourceStatus, StreamSpec

from .clocks import MonotonicClock
from .lsl_scope import check_lsl_config
from .stats import StreamStats, StreamSummary
from .watchdog import Watchdog, WatchdogConfig

__all__ = [
    "ChannelMap",
    "LslInletSource",
    "LslStreamDescription",
    "list_lsl_streams",
    "map_lsl_channels",
    "unit_scale",
]

logger = logging.getLogger(__name__)

#: Order in which streams are polled and chunks returned.
_KIND_ORDER: tuple[SignalKind, ...] = (SignalKind.EEG, SignalKind.PPG, SignalKind.ACCEL, SignalKind.GYRO)
#: A first sample further than this from ``now`` is not on LSL's clock: re-anchor it.
_MAX_CLOCK_SKEW_S = 60.0
#: A timestamp step back larger than this is a producer restart with another clock: re-anchor.
_RESYNC_BACKSTEP_S = 1.0
#: Minimum spacing (in sample periods) enforced between consecutive samples.
_MIN_SPACING_PERIODS = 0.01
#: Seconds of data an inlet buffers while calmloop is busy (liblsl ``max_buflen``).
_MAX_BUFLEN_S = 60
_G = 9.80665  # m/s^2 per g
#: Resolve times.  On the machine scope the "multicast" address is 127.0.0.1, a unicast
#: address, so a query reaches one outlet's socket only; liblsl finds the others through its
#: unicast wave to KnownPeers (127.0.0.1, ports 16572-16604) about 0.5 s into a resolve, and
#: returns as soon as the first answer is in.  Listening must therefore outlast that wave.
#: Never exactly 0.5 s: a wait equal to MulticastMinRTT sometimes stalls for UnicastMaxRTT
#: (5 s) in liblsl 1.18 (measured here).
_LIST_WAIT_S = 1.0
#: Extra listening after every stream was found, to notice a second match (two headbands).
#: Half a second past the unicast wave, so a loaded machine still hears its answers.
_AMBIGUITY_WAIT_S = 1.0

_MUSE_EEG_ORDER: tuple[str, ...] = ("TP9", "AF7", "AF8", "TP10", "AUX")
_PPG_ALIASES: dict[str, str] = {
    "ppg1": "ppg1",
    "ppg2": "ppg2",
    "ppg3": "ppg3",
    "ambient": "PPG_AMBIENT",
    "ppg_ambient": "PPG_AMBIENT",
    "ir": "PPG_IR",
    "infrared": "PPG_IR",
    "ppg_ir": "PPG_IR",
    "red": "PPG_RED",
    "ppg_red": "PPG_RED",
}
_AXIS_RE = re.compile(
    r"(?:acc(?:el(?:eration|erometer)?)?|gyr(?:o(?:scope)?)?)?[\s_.\-]*([xyz])(?:[\s_.\-]*axis)?"
)
_AXIS_PREFIX: dict[SignalKind, str] = {SignalKind.ACCEL: "accel", SignalKind.GYRO: "gyro"}
#: Stream-name endings of producers that do not set a useful type (Petal Metrics).
_NAME_SUFFIXES: dict[SignalKind, tuple[str, ...]] = {
    SignalKind.EEG: ("_eeg", " eeg"),
    SignalKind.PPG: ("_ppg", " ppg"),
    SignalKind.ACCEL: ("_acc", "_accel", "_acceleration", "_accelerometer", " accelerometer"),
    SignalKind.GYRO: ("_gyro", "_gyroscope", " gyroscope"),
}
_UNIT_SCALES: dict[SignalKind, dict[str, float]] = {
    SignalKind.EEG: {
        "microvolts": 1.0, "microvolt": 1.0, "uv": 1.0, "µv": 1.0, "μv": 1.0,
        "millivolts": 1e3, "millivolt": 1e3, "mv": 1e3,
        "volts": 1e6, "volt": 1e6, "v": 1e6,
        "nanovolts": 1e-3, "nanovolt": 1e-3, "nv": 1e-3,
    },
    SignalKind.ACCEL: {
        "g": 1.0, "gs": 1.0, "mg": 1e-3,
        "m/s^2": 1 / _G, "m/s2": 1 / _G, "m/s²": 1 / _G, "ms-2": 1 / _G, "ms^-2": 1 / _G, "m*s^-2": 1 / _G,
    },
    SignalKind.GYRO: {
        "dps": 1.0, "deg/s": 1.0, "°/s": 1.0, "degree/s": 1.0, "degrees/s": 1.0, "degrees per second": 1.0,
        "mdps": 1e-3, "rad/s": 180.0 / math.pi, "rads": 180.0 / math.pi, "radians/s": 180.0 / math.pi,
    },
    SignalKind.PPG: {},
}
_SELECTOR_FIELDS = ("name", "type", "source_id")
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = "abcdefghijklmnopqrstuvwxyz"


# ---------------------------------------------------------------------------------------------
# Pure helpers: channel conventions and units (tested without LSL)
# ---------------------------------------------------------------------------------------------
def unit_scale(kind: SignalKind, unit: str | None) -> tuple[float, bool]:
    """Factor that converts a stream's unit to calmloop's unit for ``kind``.

    Parameters
    ----------
    kind : SignalKind
        Signal kind of the channel.
    unit : str or None
        The ``unit`` of the channel in the stream's ``desc``.  A bare integer is mne-lsl's
        FIFF multiplier exponent (``"0"``: SI units, i.e. volts for EEG; ``"-6"``: micro).

    Returns
    -------
    factor : float
        Multiply the samples by this.  PPG is always 1 (raw optical counts, whatever the label:
        muselsl and BlueMuse write "mmHg").
    recognised : bool
        False when the unit is missing or unknown and calmloop's unit was assumed.

    Examples
    --------
    >>> unit_scale(SignalKind.EEG, "microvolts"), unit_scale(SignalKind.EEG, "0")
    ((1.0, True), (1000000.0, True))
    >>> round(unit_scale(SignalKind.ACCEL, "m/s^2")[0] * 9.80665, 12)
    1.0
    """
    kind = SignalKind(kind)
    if kind is SignalKind.PPG:
        return 1.0, True
    u = (unit or "").strip()
    if not u:
        return 1.0, False
    if re.fullmatch(r"[+-]?\d+", u):
        exponent = int(u)
        if kind is SignalKind.EEG:
            return float(10.0 ** (exponent + 6)), True
        return float(10.0**exponent), True
    factor = _UNIT_SCALES[kind].get(u.lower())
    if factor is None:
        return 1.0, False
    return float(factor), True


@dataclass(frozen=True, slots=True)
class ChannelMap:
    """How the channels of one LSL stream become the rows of calmloop chunks.

    Parameters
    ----------
    kind : SignalKind
        Signal kind of the chunks.
    rows : tuple of int
        LSL channel index of each kept row.
    ch_names : tuple of str
        calmloop name of each kept row.
    scales : tuple of float
        Unit factor of each kept row.
    dropped : tuple of str
        Labels of the LSL channels that were dropped (timestamps).
    assumed_units : tuple of str
        Names of rows whose unit was missing or unknown (calmloop's unit assumed).
    """

    kind: SignalKind
    rows: tuple[int, ...]
    ch_names: tuple[str, ...]
    scales: tuple[float, ...]
    dropped: tuple[str, ...] = ()
    assumed_units: tuple[str, ...] = ()


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        if n in seen:
            seen[n] += 1
            out.append(f"{n}_{seen[n]}")
        else:
            seen[n] = 0
            out.append(n)
    return out


def map_lsl_channels(
    kind: SignalKind,
    labels: Sequence[str | None] | None,
    units: Sequence[str | None] | None,
    n_channels: int,
) -> ChannelMap:
    """Map the channels of an LSL stream to calmloop's names and units.

    Parameters
    ----------
    kind : SignalKind
        What the stream carries.
    labels, units : sequence of (str or None), or None
        ``desc/channels/channel/label`` and ``.../unit`` of each channel (None when absent).
    n_channels : int
        Channel count of the stream.

    Returns
    -------
    channel_map : ChannelMap
        Rows to keep, their names and unit factors.

    Raises
    ------
    ValueError
        If no channel is left (every channel is a timestamp) or ``n_channels`` < 1.

    Examples
    --------
    >>> m = map_lsl_channels(SignalKind.ACCEL, ["X", "Y", "Z"], ["g"] * 3, 3)
    >>> m.ch_names, m.scales
    (('accel_x', 'accel_y', 'accel_z'), (1.0, 1.0, 1.0))
    >>> map_lsl_channels(SignalKind.PPG, ["ambient", "ir", "red"], None, 3).ch_names
    ('PPG_AMBIENT', 'PPG_IR', 'PPG_RED')
    >>> map_lsl_channels(SignalKind.EEG, None, None, 5).ch_names
    ('TP9', 'AF7', 'AF8', 'TP10', 'AUX')
    """
    kind = SignalKind(kind)
    n = int(n_channels)
    if n < 1:
        raise ValueError(f"Invalid value for 'n_channels': expected >= 1, got {n_channels!r}.")
    labs: list[str | None] = list(labels) if labels is not None else [None] * n
    uns: list[str | None] = list(units) if units is not None else [None] * n
    if len(labs) != n:
        labs = (labs + [None] * n)[:n]
    if len(uns) != n:
        uns = (uns + [None] * n)[:n]
    labs = [(lab.strip() or None) if isinstance(lab, str) else None for lab in labs]
    dropped = tuple(lab for lab in labs if lab and "timestamp" in lab.lower())
    rows = [i for i, lab in enumerate(labs) if not (lab and "timestamp" in lab.lower())]
    if not rows:
        raise ValueError(
            f"Invalid value for 'labels': every channel of the {kind.value} stream is a timestamp "
            f"({list(dropped)}); no signal left."
        )
    kept = [labs[i] for i in rows]
    names: list[str] = []
    if kind is SignalKind.EEG:
        unlabelled = all(lab is None for lab in kept)
        for pos, lab in enumerate(kept):
            if lab is not None:
                names.append(lab)
            elif unlabelled and len(kept) <= len(_MUSE_EEG_ORDER):
                names.append(_MUSE_EEG_ORDER[pos])
            else:
                names.append(f"ch{rows[pos] + 1}")
    elif kind is SignalKind.PPG:
        for pos, lab in enumerate(kept):
            if lab is None:
                names.append(f"ppg{pos + 1}")
            else:
                names.append(_PPG_ALIASES.get(re.sub(r"[\s\-]+", "_", lab.lower()), lab))
    else:
        prefix = _AXIS_PREFIX[kind]
        axes = []
        for lab in kept:
            m = _AXIS_RE.fullmatch(lab.lower()) if lab is not None else None
            axes.append(m.group(1) if m else None)
        if all(a is None for a in axes) and all(lab is None for lab in kept) and len(kept) == 3:
            axes = ["x", "y", "z"]
        for pos, (lab, axis) in enumerate(zip(kept, axes, strict=True)):
            if axis is not None:
                names.append(f"{prefix}_{axis}")
            else:
                names.append(lab if lab is not None else f"{prefix}_{pos + 1}")
    names = _unique(names)
    scales, assumed = [], []
    for name, i in zip(names, rows, strict=True):
        factor, ok = unit_scale(kind, uns[i])
        scales.append(factor)
        if not ok:
            assumed.append(name)
    return ChannelMap(kind, tuple(rows), tuple(names), tuple(scales), dropped, tuple(assumed))


def _guess_kind(name: str, stream_type: str) -> SignalKind | None:
    """Signal kind of a stream from its type, else from its name (Petal's ``PetalStream_ppg``)."""
    kind = kind_from_type(stream_type)
    if kind is not None:
        return kind
    lower = name.strip().lower()
    for k, suffixes in _NAME_SUFFIXES.items():
        if lower.endswith(suffixes):
            return k
    return None


def _producer(name: str, source_id: str, manufacturer: str) -> str:
    if manufacturer.lower() == MANUFACTURER:
        return "calmloop"
    if source_id == "BlueMuse":
        return "BlueMuse"
    if name.startswith(("PetalStream_", "PetalMetrics_")):
        return "Petal Metrics"
    if name == "Muse" and source_id.startswith("Muse"):
        return "muselsl"
    if source_id.startswith("MNE-LSL") or manufacturer.lower().startswith("mne"):
        return "mne-lsl"
    return "unknown"


# ---------------------------------------------------------------------------------------------
# Descriptions and resolution
# ---------------------------------------------------------------------------------------------
_FORMAT_NAMES = {1: "float32", 2: "double64", 3: "string", 4: "int32", 5: "int16", 6: "int8", 7: "int64"}
_FORMAT_DTYPES: dict[int, type[np.generic]] = {
    1: np.float32, 2: np.float64, 4: np.int32, 5: np.int16, 6: np.int8, 7: np.int64,
}


@dataclass(frozen=True, slots=True)
class LslStreamDescription:
    """What the LSL resolver knows about one stream (no connection needed).

    Parameters
    ----------
    name, type, source_id, hostname : str
        The stream's identity as announced.
    sfreq : float
        Nominal rate in Hz (0 for irregular streams).
    n_channels : int
        Channel count.
    channel_format : str
        ``"float32"``, ``"double64"``, ``"int16"``, ``"string"``...
    uid : str
        Unique id of this outlet instance (changes when the producer restarts).
    info : object
        The underlying ``pylsl.StreamInfo`` (not compared, not shown).
    """

    name: str
    type: str
    source_id: str
    hostname: str
    sfreq: float
    n_channels: int
    channel_format: str
    uid: str
    info: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def from_info(cls, info: Any) -> LslStreamDescription:
        """Build from a ``pylsl.StreamInfo``."""
        return cls(
            name=info.name(),
            type=info.type(),
            source_id=info.source_id(),
            hostname=info.hostname(),
            sfreq=float(info.nominal_srate()),
            n_channels=int(info.channel_count()),
            channel_format=_FORMAT_NAMES.get(int(info.channel_format()), str(info.channel_format())),
            uid=info.uid(),
            info=info,
        )

    @property
    def kind(self) -> SignalKind | None:
        """Signal kind suggested by the type (or the name, for Petal Metrics), None if unknown."""
        return _guess_kind(self.name, self.type)

    def label(self) -> str:
        """Short human description for messages."""
        rate = f"{self.sfreq:g} Hz" if self.sfreq > 0 else "irregular"
        return (
            f"{self.name!r} (type {self.type!r}, source_id {self.source_id!r}, {self.n_channels} ch, "
            f"{rate}, host {self.hostname})"
        )


def _pylsl() -> Any:
    """Import pylsl, refusing to while LSLAPICFG would leave liblsl on its default config."""
    check_lsl_config()
    import pylsl

    return pylsl


def list_lsl_streams(timeout_s: float = 1.0) -> list[LslStreamDescription]:
    """Every LSL stream visible within ``timeout_s`` (in the current LSL scope).

    Raises
    ------
    SensorError
        If ``LSLAPICFG`` is unset or names a missing file.
    """
    pylsl = _pylsl()
    infos = pylsl.resolve_streams(wait_time=float(timeout_s))
    return sorted((LslStreamDescription.from_info(i) for i in infos), key=lambda d: (d.name, d.type, d.uid))


@dataclass(frozen=True, slots=True)
class _Selector:
    """Which stream to use for one kind: a field (None: name or type) and a value."""

    kind: SignalKind
    field_: str | None
    value: str

    @classmethod
    def parse(cls, kind: SignalKind, text: str) -> _Selector:
        arg = kind.value
        if not isinstance(text, str) or not text.strip():
            raise ValueError(
                f"Invalid value for {arg!r}: expected a stream name or type (e.g. 'Muse' or 'EEG'), "
                f"got {text!r}."
            )
        field_: str | None = None
        value = text.strip()
        head, sep, rest = value.partition(":")
        if sep and head.strip().lower() in _SELECTOR_FIELDS and rest.strip():
            field_, value = head.strip().lower(), rest.strip()
        if "'" in value and '"' in value:
            raise ValueError(
                f"Invalid value for {arg!r}: a stream name cannot contain both ' and \", got {text!r}."
            )
        return cls(kind, field_, value)

    def describe(self) -> str:
        how = "name or type" if self.field_ is None else self.field_
        return f"{self.kind.value}={self.value!r} ({how}, case-insensitive)"

    def predicate(self) -> str:
        """XPath 1.0 predicate for liblsl's resolver (case-insensitive equality)."""
        quote = "'" if "'" not in self.value else '"'
        value = f"{quote}{self.value.lower()}{quote}"
        fields = ("name", "type") if self.field_ is None else (self.field_,)
        return " or ".join(f"translate({f},'{_UPPER}','{_LOWER}')={value}" for f in fields)

    def matches(self, d: LslStreamDescription) -> bool:
        v = self.value.lower()
        if self.field_ is None:
            return d.name.lower() == v or d.type.lower() == v
        return str(getattr(d, self.field_)).lower() == v


def _pick(sel: _Selector, candidates: Sequence[LslStreamDescription]) -> LslStreamDescription | None:
    """Best match for one selector; raise SensorError when several remain (ambiguous)."""
    found = {d.uid: d for d in candidates if sel.matches(d)}
    matches = list(found.values())
    if len(matches) > 1:  # muselsl names every stream "Muse": keep the right type
        typed = [d for d in matches if d.kind is sel.kind]
        matches = typed or matches
    if len(matches) > 1:  # an exact (case-sensitive) name beats a type match
        exact = [d for d in matches if d.name == sel.value]
        matches = exact or matches
    if len(matches) > 1:
        listing = "; ".join(d.label() for d in matches)
        raise SensorError(
            f"Invalid value for {sel.kind.value!r}: {sel.describe()} matches {len(matches)} LSL streams: "
            f"{listing}. Two headbands or producers? Name one by its source_id, e.g. "
            f"{sel.kind.value}='source_id:{matches[0].source_id}'."
        )
    return matches[0] if matches else None


def _not_found_message(
    missing: Sequence[_Selector],
    found: Mapping[SignalKind, LslStreamDescription],
    visible: Sequence[LslStreamDescription],
    timeout_s: float,
    cfg: str,
) -> str:
    searched = ", ".join(s.describe() for s in missing)
    got = "; ".join(f"{k.value}: {d.label()}" for k, d in found.items()) or "nothing"
    seen = "; ".join(d.label() for d in visible[:10]) or "none"
    if len(visible) > 10:
        seen += f"; and {len(visible) - 10} more"
    return (
        f"No LSL stream found for {searched} within {timeout_s:g} s (found {got}). Streams visible: "
        f"{seen}. Check that: (1) the producer (muselsl stream, BlueMuse, Petal Metrics, an mne-lsl "
        "player) is running and streaming; (2) it runs on this computer: calmloop keeps LSL on "
        "loopback by default, so a producer on another computer needs --lsl-scope link or site here "
        "and a matching configuration there; (3) both sides use the same LSL configuration: "
        f"LSLAPICFG is {cfg}; (4) the name or type is right (matched exactly, ignoring case; use "
        "name:, type: or source_id: to be explicit)."
    )


# ---------------------------------------------------------------------------------------------
# The source
# ---------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Stream:
    """One LSL stream feeding one signal kind, and its per-stream state."""

    selector: _Selector | None  # None: given as a description; re-resolve by name and type
    description: LslStreamDescription
    channel_map: ChannelMap
    spec: StreamSpec
    dtype: type[np.generic]
    watchdog: Watchdog
    stats: StreamStats
    inlet: Any = None
    buffer: np.ndarray | None = None
    shift: float = 0.0
    last_time: float = -math.inf
    anchored: bool = False
    n_resyncs: int = 0
    n_nudged: int = 0
    attempt: concurrent.futures.Future[tuple[Any, LslStreamDescription]] | None = None
    error_logged: bool = False


class LslInletSource:
    """EEG, PPG and motion from any LSL producer, as a non-blocking chunk source.

    Parameters
    ----------
    eeg, ppg, accel, gyro : str or LslStreamDescription or None
        The stream of each signal kind: a name or type (``"Muse"``, ``"EEG"``,
        ``"PetalStream_ppg"``; compared case-insensitively), ``"name:..."``, ``"type:..."`` or
        ``"source_id:..."``, or a description from :func:`list_lsl_streams`.  None: not used.
        At least one is required.
    timeout_s : float
        Seconds to wait for the streams while constructing (resolution and metadata).
    clock : Clock or None
        Session clock (:class:`~sensors.clocks.MonotonicClock` by default).  LSL delivers in
        real time, so it must run at real-time speed.
    watchdog : WatchdogConfig or None
        Stall time and reconnect back-off of each stream (default 3 s; 1, 2, 4 ... 30 s).
    background_reconnect : bool
        Re-resolve lost streams in a worker thread (default), so :meth:`poll` never blocks;
        False runs the attempt inline (deterministic tests).
    reconnect_timeout_s : float
        Resolution time of one reconnect attempt.
    dejitter : bool
        Let liblsl smooth timestamps (``proc_dejitter``).  Off by default: see *Time* in the
        module docstring.

    Raises
    ------
    SensorError
        If a stream is not found within ``timeout_s`` (the message names what was searched, the
        timeout, what is visible and what to check), is ambiguous, is a string or irregular
        stream, or if ``LSLAPICFG`` is unset.
    ValueError
        If no stream is requested or a selector is malformed.

    Notes
    -----
    Construction resolves the streams and reads their metadata, because :attr:`streams` must be
    known before :meth:`start` (the DSP pipeline is built from it).  It blocks until every
    stream is found (at most ``timeout_s``), then listens 0.65 s more for a second stream with
    the same name or type (two headbands: refused rather than guessed).  :meth:`start` opens the
    data connections and estimates the clock offsets (about 0.65 s, in parallel).  Chunks come
    in the order EEG, PPG, accel, gyro, at most one per kind and poll.

    Examples
    --------
    >>> src = LslInletSource(eeg="Muse", ppg="PPG", timeout_s=5)   # doctest: +SKIP
    >>> src.start(); chunks = src.poll(clock.now())                # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        eeg: str | LslStreamDescription | None = None,
        ppg: str | LslStreamDescription | None = None,
        accel: str | LslStreamDescription | None = None,
        gyro: str | LslStreamDescription | None = None,
        timeout_s: float = 5.0,
        clock: Clock | None = None,
        watchdog: WatchdogConfig | None = None,
        background_reconnect: bool = True,
        reconnect_timeout_s: float = 2.0,
        dejitter: bool = False,
    ) -> None:
        requested = {SignalKind.EEG: eeg, SignalKind.PPG: ppg, SignalKind.ACCEL: accel, SignalKind.GYRO: gyro}
        requested = {k: v for k, v in requested.items() if v is not None}
        if not requested:
            raise ValueError(
                "Invalid value for 'eeg'/'ppg'/'accel'/'gyro': expected at least one stream, got none. "
                "Example: LslInletSource(eeg='EEG', ppg='PPG'), or LslInletSource.auto()."
            )
        for name, value in (("timeout_s", timeout_s), ("reconnect_timeout_s", reconnect_timeout_s)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"Invalid value for {name!r}: expected seconds > 0, got {value!r}.")
        self._pylsl = _pylsl()
        self._clock: Clock = clock if clock is not None else MonotonicClock()
        self._wd_config = watchdog if watchdog is not None else WatchdogConfig()
        self._background = bool(background_reconnect)
        self._reconnect_timeout = float(reconnect_timeout_s)
        self._timeout = float(timeout_s)
        self._flags = int(self._pylsl.proc_clocksync) | (int(self._pylsl.proc_dejitter) if dejitter else 0)
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._status = SourceStatus.IDLE
        self._offset = math.nan

        deadline = time.monotonic() + self._timeout
        selectors = {k: _Selector.parse(k, v) for k, v in requested.items() if isinstance(v, str)}
        descriptions: dict[SignalKind, LslStreamDescription] = {}
        for k, v in requested.items():
            if isinstance(v, LslStreamDescription):
                descriptions[k] = v
            elif not isinstance(v, str):
                raise TypeError(
                    f"Invalid value for {k.value!r}: expected a name, type or LslStreamDescription, got {v!r}."
                )
        descriptions.update(self._resolve(list(selectors.values()), deadline))
        self._streams: dict[SignalKind, _Stream] = {}
        try:
            for kind in _KIND_ORDER:
                if kind in descriptions:
                    self._streams[kind] = self._prepare(kind, selectors.get(kind), descriptions[kind], deadline)
        except Exception:
            self._drop_inlets()
            raise
        logger.info(
            "LSL source: %s.",
            "; ".join(
                f"{k.value} <- {s.description.label()} [{s.spec.extra.get('producer', '?')}]"
                for k, s in self._streams.items()
            ),
        )

    # ------------------------------------------------------------------ factories
    @classmethod
    def auto(
        cls,
        timeout_s: float = 5.0,
        *,
        kinds: Sequence[SignalKind] = _KIND_ORDER,
        exclude_source_id_prefix: str | None = "calmloop-",
        accept: Callable[[LslStreamDescription], bool] | None = None,
        **kwargs: Any,
    ) -> LslInletSource:
        """Use every headband stream in sight: one per kind, by the producers' conventions.

        A stream counts as EEG/PPG/accel/gyro by its type (``EEG``, ``PPG``, ``ACC``/
        ``Accelerometer``, ``GYRO``/``Gyroscope``) or, failing that, its name ending
        (``PetalStream_ppg``).  Streams whose source_id starts with
        ``exclude_source_id_prefix`` (calmloop's own outlets) are ignored, and so are streams
        for which ``accept(description)`` is False (e.g. to keep one host's streams).  Other
        keyword arguments go to the constructor.  It queries until two queries in a row find the
        same kinds (about 2 s) or ``timeout_s`` passes.

        Raises
        ------
        SensorError
            If neither an EEG nor a PPG stream appears within ``timeout_s``, or a kind is
            ambiguous (two headbands: name the streams explicitly).
        """
        pylsl = _pylsl()
        wanted = tuple(SignalKind(k) for k in kinds)
        deadline = time.monotonic() + float(timeout_s)
        chosen: dict[SignalKind, LslStreamDescription] = {}
        visible: list[LslStreamDescription] = []
        previous: set[SignalKind] | None = None
        while True:
            left = deadline - time.monotonic()
            infos = pylsl.resolve_streams(wait_time=max(min(1.0, left), 0.05))
            visible = [LslStreamDescription.from_info(i) for i in infos]
            by_kind: dict[SignalKind, list[LslStreamDescription]] = {}
            for d in visible:
                if exclude_source_id_prefix and d.source_id.startswith(exclude_source_id_prefix):
                    continue
                if accept is not None and not accept(d):
                    continue
                if d.kind in wanted and d.channel_format != "string" and d.sfreq > 0:
                    by_kind.setdefault(d.kind, []).append(d)
            for k, ds in by_kind.items():
                uniq = {d.uid: d for d in ds}
                if len(uniq) > 1:
                    listing = "; ".join(d.label() for d in uniq.values())
                    raise SensorError(
                        f"Several LSL {k.value} streams are visible: {listing}. Name the one to use, "
                        f"e.g. {k.value}='source_id:{next(iter(uniq.values())).source_id}'."
                    )
                chosen[k] = next(iter(uniq.values()))
            # Stop once EEG or PPG is in sight and a second query finds the same kinds: answers
            # to one query come in waves, and on the loopback scope a short query hears only
            # some producers, so one query alone could miss the accelerometer.
            settled = set(chosen) == previous
            previous = set(chosen)
            headband = SignalKind.EEG in chosen or SignalKind.PPG in chosen
            if (settled and headband) or time.monotonic() >= deadline:
                break
        if not (SignalKind.EEG in chosen or SignalKind.PPG in chosen):
            missing = [_Selector(k, "type", TYPE_ALIASES[k][0]) for k in (SignalKind.EEG, SignalKind.PPG)]
            cfg = str(check_lsl_config())
            raise SensorError(_not_found_message(missing, chosen, visible, float(timeout_s), cfg))
        args: dict[str, Any] = {k.value: d for k, d in chosen.items()}
        return cls(**args, timeout_s=timeout_s, **kwargs)

    # ------------------------------------------------------------------ Source protocol
    @property
    def streams(self) -> tuple[StreamSpec, ...]:
        """The streams this source delivers, in chunk order."""
        return tuple(s.spec for s in self._streams.values())

    @property
    def status(self) -> SourceStatus:
        """IDLE, STREAMING (every stream delivers), SIGNAL_LOST (any stream stalled) or STOPPED."""
        if self._status in (SourceStatus.IDLE, SourceStatus.STOPPED):
            return self._status
        lost = any(s.watchdog.status is SourceStatus.SIGNAL_LOST for s in self._streams.values())
        return SourceStatus.SIGNAL_LOST if lost else SourceStatus.STREAMING

    @property
    def descriptions(self) -> dict[SignalKind, LslStreamDescription]:
        """The LSL stream behind each signal kind."""
        return {k: s.description for k, s in self._streams.items()}

    @property
    def channel_maps(self) -> dict[SignalKind, ChannelMap]:
        """How each LSL stream's channels were mapped (names, units, dropped channels)."""
        return {k: s.channel_map for k, s in self._streams.items()}

    @property
    def watchdogs(self) -> dict[SignalKind, Watchdog]:
        """The stall detector of each stream (read it, do not drive it)."""
        return {k: s.watchdog for k, s in self._streams.items()}

    @property
    def session_offset(self) -> float:
        """``lsl_time - session_time`` measured at :meth:`start` (NaN before)."""
        return self._offset

    def start(self) -> None:
        """Open the data connections and start the session-time mapping.

        Raises
        ------
        SensorError
            If a stream cannot be opened within ``timeout_s`` (the producer went away).
        RuntimeError
            If the source is already started.
        """
        if self._status is SourceStatus.STREAMING:
            raise RuntimeError("LSL source: already started; call stop() before starting again.")
        for s in self._streams.values():
            if s.inlet is None:
                s.inlet = self._new_inlet(s.description)
        # Opening and the first clock-offset estimate (8 probes, about 0.65 s) run in parallel:
        # liblsl's calls release the GIL.
        with concurrent.futures.ThreadPoolExecutor(
            max_workers=len(self._streams), thread_name_prefix="calmloop-lsl-open"
        ) as pool:
            futures = {k: pool.submit(self._open_inlet, s.inlet, self._timeout) for k, s in self._streams.items()}
        for kind, future in futures.items():
            exc = future.exception()
            if exc is not None:
                self._drop_inlets()
                d = self._streams[kind].description
                raise SensorError(
                    f"LSL {kind.value} stream {d.label()} could not be opened within {self._timeout:g} s "
                    f"({exc}). Is the producer still running?"
                ) from exc
        now = self._clock.now()
        self._offset = float(self._pylsl.local_clock()) - now
        for s in self._streams.values():
            s.shift, s.last_time, s.anchored = 0.0, -math.inf, False
            s.stats.reset()
            s.watchdog.arm(now)
        self._status = SourceStatus.STREAMING
        logger.info(
            "LSL source streaming %s (session offset %.3f s).",
            ", ".join(f"{s.spec.kind.value} {s.spec.sfreq:g} Hz" for s in self._streams.values()),
            self._offset,
        )

    def poll(self, now: float) -> list[Chunk]:
        """Return what arrived since the last call: at most one chunk per signal kind.

        Parameters
        ----------
        now : float
            Current session time; drives the watchdogs and anchors the first samples.

        Returns
        -------
        chunks : list of Chunk
            Non-empty chunks in the order of :attr:`streams`, times on the session clock.

        Notes
        -----
        Never blocks (pulls with a zero timeout; reconnects run in a worker thread) and never
        raises: read errors are logged and count as "no data".
        """
        if self._status is not SourceStatus.STREAMING:
            return []
        out: list[Chunk] = []
        for s in self._streams.values():
            n_new = 0
            try:
                self._finish_attempt(s, now)
                chunk = self._read(s, now)
                if chunk is not None:
                    out.append(chunk)
                    n_new = chunk.n_times
            except Exception as exc:  # noqa: BLE001 - poll() must never raise
                self._read_failed(s, exc)
            before = s.watchdog.status
            status = s.watchdog.update(now, n_new)
            if status is SourceStatus.STREAMING and before is SourceStatus.SIGNAL_LOST:
                s.error_logged = False
            if s.attempt is None and s.watchdog.reconnect_due(now):
                self._begin_attempt(s, now)
        return out

    def stop(self) -> None:
        """Close the inlets and stop (waits for a reconnect attempt in flight)."""
        for s in self._streams.values():
            if s.attempt is not None:
                try:
                    inlet, _ = s.attempt.result()
                    del inlet
                except Exception as exc:  # noqa: BLE001 - shutting down anyway
                    logger.debug("LSL %s: reconnect attempt ended with %s during stop", s.spec.kind.value, exc)
                s.attempt = None
            s.watchdog.disarm()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        was_running = self._status is SourceStatus.STREAMING
        self._drop_inlets()
        self._status = SourceStatus.STOPPED
        if was_running:
            logger.info(
                "LSL source stopped (%s).",
                ", ".join(f"{k.value} {v.n_samples} samples" for k, v in self.stats().items()),
            )

    def __enter__(self) -> LslInletSource:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stats(self) -> dict[SignalKind, StreamSummary]:
        """Per-stream reception statistics since :meth:`start` (samples, rate, gaps)."""
        return {k: s.stats.summary() for k, s in self._streams.items()}

    def resyncs(self) -> dict[SignalKind, int]:
        """How many times each stream's timestamps were re-anchored (clock jumps)."""
        return {k: s.n_resyncs for k, s in self._streams.items()}

    # ------------------------------------------------------------------ construction helpers
    def _resolve(self, selectors: list[_Selector], deadline: float) -> dict[SignalKind, LslStreamDescription]:
        if not selectors:
            return {}
        pylsl = self._pylsl
        predicate = " or ".join(f"({s.predicate()})" for s in selectors)
        found: dict[SignalKind, LslStreamDescription] = {}
        candidates: dict[str, LslStreamDescription] = {}
        minimum = len(selectors)
        while True:
            left = deadline - time.monotonic()
            infos = pylsl.resolve_bypred(predicate, minimum, max(left, 0.0))
            for info in infos:
                d = LslStreamDescription.from_info(info)
                candidates.setdefault(d.uid, d)
            for sel in selectors:
                pick = _pick(sel, list(candidates.values()))
                if pick is not None:
                    found[sel.kind] = pick
            if len(found) == len(selectors):
                # liblsl returns at the first answers; listen a moment longer for a second
                # stream with the same name or type (two headbands: refuse to guess)
                for info in pylsl.resolve_bypred(predicate, len(candidates) + 1, _AMBIGUITY_WAIT_S):
                    d = LslStreamDescription.from_info(info)
                    candidates.setdefault(d.uid, d)
                for sel in selectors:
                    found[sel.kind] = _pick(sel, list(candidates.values()))  # type: ignore[assignment]
                break
            if time.monotonic() >= deadline:
                break
            minimum = len(candidates) + 1  # something matched twice: wait for more
        missing = [s for s in selectors if s.kind not in found]
        if missing:
            visible = [LslStreamDescription.from_info(i) for i in pylsl.resolve_streams(wait_time=_LIST_WAIT_S)]
            cfg = str(check_lsl_config())
            raise SensorError(_not_found_message(missing, found, visible, self._timeout, cfg))
        return found

    def _new_inlet(self, d: LslStreamDescription) -> Any:
        return self._pylsl.StreamInlet(
            d.info, max_buflen=_MAX_BUFLEN_S, max_chunklen=0, recover=True, processing_flags=self._flags
        )

    def _open_inlet(self, inlet: Any, timeout_s: float) -> None:
        inlet.open_stream(timeout=timeout_s)
        try:  # the first estimate takes a few probes; later ones are instant
            correction = inlet.time_correction(timeout=timeout_s)
            logger.debug("LSL time correction %.3f ms", 1e3 * correction)
        except Exception as exc:  # noqa: BLE001 - a local producer needs no correction
            logger.warning("LSL: no clock-offset estimate yet (%s); timestamps may be off at first.", exc)

    def _prepare(
        self, kind: SignalKind, selector: _Selector | None, d: LslStreamDescription, deadline: float
    ) -> _Stream:
        if d.info is None:
            raise ValueError(f"Invalid value for {kind.value!r}: the description has no stream info.")
        if d.channel_format == "string" or int(d.info.channel_format()) not in _FORMAT_DTYPES:
            raise SensorError(
                f"LSL stream {d.label()} carries {d.channel_format} samples, not a {kind.value} signal "
                "(a marker stream?). Choose a numeric stream."
            )
        if not d.sfreq > 0:
            raise SensorError(
                f"LSL stream {d.label()} has an irregular rate; a {kind.value} signal needs its nominal "
                "rate. Choose the raw signal stream."
            )
        inlet = self._new_inlet(d)
        try:
            full = inlet.info(timeout=max(deadline - time.monotonic(), 0.5))
        except Exception as exc:
            raise SensorError(
                f"LSL stream {d.label()} did not send its metadata within {self._timeout:g} s ({exc}). "
                "Is the producer still running?"
            ) from exc
        labels, units, manufacturer = _read_desc(full, d.n_channels)
        try:
            cmap = map_lsl_channels(kind, labels, units, d.n_channels)
        except ValueError as exc:
            raise SensorError(f"LSL stream {d.label()}: {exc}") from exc
        if cmap.dropped:
            logger.info("LSL %s: dropping channels %s (timestamps).", kind.value, list(cmap.dropped))
        if cmap.assumed_units:
            logger.info(
                "LSL %s: no known unit for %s; assuming calmloop's %s.", kind.value, list(cmap.assumed_units), UNITS[kind]
            )
        producer = _producer(d.name, d.source_id, manufacturer)
        spec = StreamSpec(
            kind=kind,
            sfreq=d.sfreq,
            ch_names=cmap.ch_names,
            device=f"LSL {d.name!r} ({d.type}) from {d.hostname}",
            extra={
                "lsl_name": d.name,
                "lsl_type": d.type,
                "lsl_source_id": d.source_id,
                "lsl_hostname": d.hostname,
                "manufacturer": manufacturer,
                "producer": producer,
            },
        )
        dtype = _FORMAT_DTYPES[int(d.info.channel_format())]
        cap = max(1024, math.ceil(2 * d.sfreq))
        return _Stream(
            selector=selector,
            description=d,
            channel_map=cmap,
            spec=spec,
            dtype=dtype,
            watchdog=Watchdog(self._wd_config, name=f"LSL {kind.value} {d.name!r}"),
            stats=StreamStats(kind, d.sfreq),
            inlet=inlet,
            buffer=np.empty((cap, d.n_channels), dtype=dtype),
        )

    def _drop_inlets(self) -> None:
        for s in self._streams.values() if hasattr(self, "_streams") else ():
            inlet, s.inlet = s.inlet, None
            if inlet is not None:
                try:
                    inlet.close_stream()
                except Exception as exc:  # noqa: BLE001 - closing anyway
                    logger.debug("LSL: close_stream failed: %s", exc)
                del inlet  # pylsl destroys the liblsl inlet with the last reference

    # ------------------------------------------------------------------ reading
    def _read(self, s: _Stream, now: float) -> Chunk | None:
        inlet, buf = s.inlet, s.buffer
        if inlet is None or buf is None:
            return None
        blocks: list[np.ndarray] = []
        stamps: list[np.ndarray] = []
        cap = buf.shape[0]
        for _ in range(64):  # bound the work of one poll (64 full buffers: minutes of data)
            _, ts = inlet.pull_chunk(timeout=0.0, max_samples=cap, dest_obj=buf)
            n = len(ts)
            if n == 0:
                break
            blocks.append(buf[:n].copy())
            stamps.append(np.asarray(ts, dtype=np.float64))
            if n < cap:
                break
        if not blocks:
            return None
        raw = np.concatenate(blocks, axis=0)
        ts_all = np.concatenate(stamps)
        finite = np.isfinite(ts_all)
        if not finite.all():
            s.stats.add_dropped(int((~finite).sum()))
            raw, ts_all = raw[finite], ts_all[finite]
            if ts_all.size == 0:
                return None
        times = self._session_times(s, ts_all, now)
        cmap = s.channel_map
        data = raw[:, list(cmap.rows)].T.astype(np.float64)
        scales = np.asarray(cmap.scales)
        if np.any(scales != 1.0):
            data *= scales[:, np.newaxis]
        chunk = Chunk(s.spec.kind, data, times, s.spec.sfreq, s.spec.ch_names)
        s.stats.update(chunk)
        return chunk

    def _session_times(self, s: _Stream, lsl_times: FloatArray, now: float) -> FloatArray:
        period = 1.0 / s.spec.sfreq
        t = lsl_times - self._offset + s.shift
        if not s.anchored:
            s.anchored = True
            skew = float(t[0]) - now
            if abs(skew) > _MAX_CLOCK_SKEW_S:
                logger.warning(
                    "LSL %s: first timestamp is %.1f s away from the session clock (not LSL time? "
                    "BlueMuse can send Unix time); re-anchoring it to now.",
                    s.spec.kind.value,
                    skew,
                )
                s.shift -= skew
                t = t - skew
        elif float(t[0]) < s.last_time - _RESYNC_BACKSTEP_S:
            step = s.last_time + period - float(t[0])
            s.shift += step
            t = t + step
            s.n_resyncs += 1
            logger.warning(
                "LSL %s: timestamps stepped back %.2f s (producer restarted with another clock?); "
                "re-anchored to continue after the last sample.",
                s.spec.kind.value,
                step - period,
            )
        gap = _MIN_SPACING_PERIODS * period
        k = np.arange(t.size, dtype=np.float64)
        floor = s.last_time + gap if math.isfinite(s.last_time) else -math.inf
        fixed = np.maximum.accumulate(np.maximum(t - k * gap, floor)) + k * gap
        nudged = int(np.count_nonzero(fixed != t))
        if nudged:
            s.n_nudged += nudged
            logger.debug("LSL %s: %d timestamp(s) nudged to keep times increasing.", s.spec.kind.value, nudged)
        s.last_time = float(fixed[-1])
        return fixed

    def _read_failed(self, s: _Stream, exc: Exception) -> None:
        lost = type(exc).__name__ == "LostError"
        if lost:  # the producer is gone for good (no source_id to recover by): drop the inlet
            inlet, s.inlet = s.inlet, None
            del inlet
        if not s.error_logged:
            s.error_logged = True
            logger.warning(
                "LSL %s: reading %s failed (%s)%s.",
                s.spec.kind.value,
                s.description.name,
                exc,
                "; will re-resolve the stream" if lost else "",
            )

    # ------------------------------------------------------------------ reconnecting
    def _reconnect_once(self, s: _Stream) -> tuple[Any, LslStreamDescription]:
        """Resolve the stream again and open a fresh inlet (runs in the worker thread)."""
        pylsl = self._pylsl
        d0 = s.description
        if s.selector is not None:
            sel = s.selector
        else:
            sel = _Selector(s.spec.kind, "name", d0.name)
        infos = pylsl.resolve_bypred(sel.predicate(), 1, self._reconnect_timeout)
        candidates = [LslStreamDescription.from_info(i) for i in infos]
        if s.selector is None:  # given as a description: also keep its type
            candidates = [c for c in candidates if c.type.lower() == d0.type.lower()] or candidates
        d = _pick(sel, candidates)
        if d is None:
            raise SensorError(f"{sel.describe()} not visible")
        if d.n_channels != d0.n_channels or d.sfreq != d0.sfreq or d.channel_format != d0.channel_format:
            raise SensorError(
                f"the stream came back with another layout ({d.n_channels} ch, {d.sfreq:g} Hz, "
                f"{d.channel_format}; was {d0.n_channels} ch, {d0.sfreq:g} Hz, {d0.channel_format})"
            )
        inlet = self._new_inlet(d)
        self._open_inlet(inlet, self._reconnect_timeout)
        return inlet, d

    def _begin_attempt(self, s: _Stream, now: float) -> None:
        number = s.watchdog.attempts + 1
        logger.info("LSL %s: reconnect attempt %d (re-resolving %s).", s.spec.kind.value, number, s.description.name)
        if self._background:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=2, thread_name_prefix="calmloop-lsl-reconnect"
                )
            s.attempt = self._executor.submit(self._reconnect_once, s)
        else:
            future: concurrent.futures.Future[tuple[Any, LslStreamDescription]] = concurrent.futures.Future()
            try:
                future.set_result(self._reconnect_once(s))
            except Exception as exc:  # noqa: BLE001 - reported through the future
                future.set_exception(exc)
            s.attempt = future
        self._finish_attempt(s, now)

    def _finish_attempt(self, s: _Stream, now: float) -> None:
        attempt = s.attempt
        if attempt is None or not attempt.done():
            return
        s.attempt = None
        exc = attempt.exception()
        if exc is not None:
            delay = s.watchdog.record_attempt(now)
            logger.warning(
                "LSL %s: reconnect failed (%s); next attempt in %.0f s.", s.spec.kind.value, exc, delay
            )
            return
        inlet, d = attempt.result()
        if s.watchdog.status is SourceStatus.STREAMING:
            del inlet  # liblsl recovered the old inlet meanwhile: keep it
            return
        old, s.inlet = s.inlet, inlet
        del old
        if d.uid != s.description.uid:
            s.description = d
        delay = s.watchdog.record_attempt(now, min_delay_s=s.watchdog.config.stall_s)
        logger.info(
            "LSL %s: re-connected to %s; waiting for samples (next attempt in %.0f s if none arrive).",
            s.spec.kind.value,
            d.label(),
            delay,
        )


def _read_desc(info: Any, n_channels: int) -> tuple[list[str | None] | None, list[str | None] | None, str]:
    """Channel labels and units from ``desc/channels``, and the manufacturer, of a full StreamInfo."""
    desc = info.desc()
    manufacturer = desc.child_value("manufacturer") or desc.child("acquisition").child_value("manufacturer")
    channels = desc.child("channels")
    if channels.empty():
        return None, None, manufacturer
    labels: list[str | None] = []
    units: list[str | None] = []
    ch = channels.child("channel")
    while not ch.empty() and len(labels) < n_channels:
        labels.append(ch.child_value("label") or ch.child_value("name") or None)
        units.append(ch.child_value("unit") or None)
        ch = ch.next_sibling("channel")
    return labels, units, manufacturer
