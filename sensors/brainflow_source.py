"""Muse headbands, BrainFlow's synthetic board and BrainFlow playback files as a chunk source.

:class:`BrainFlowSource` implements the :class:`~adaptive.types.Source` protocol on top of
BrainFlow's ``BoardShim``.  It serves

* ``MUSE_2_BOARD``, ``MUSE_S_BOARD`` and, when the installed BrainFlow has it,
  ``MUSE_S_ATHENA_BOARD`` through BrainFlow's native Bluetooth LE drivers
  (:meth:`BrainFlowSource.muse`);
* ``SYNTHETIC_BOARD``, which needs no hardware (:meth:`BrainFlowSource.synthetic`);
* ``PLAYBACK_FILE_BOARD``, which replays one BrainFlow file per preset in real time
  (:meth:`BrainFlowSource.playback`).

Device quirks are data, not code: :data:`BOARD_MODELS` maps each signal kind to a BrainFlow
preset and to a *row role* of BrainFlow's board descriptor (``"eeg_channels"``,
``"accel_channels"``, ...).  Row numbers, sampling rates and EEG names are read from
``BoardShim.get_board_descr(board_id, preset)``; nothing here hard-codes a row index.

Muse layout (BrainFlow 5.23 descriptors of ``MUSE_2_BOARD`` / ``MUSE_S_BOARD``):

============  ===========  =======  ==================================  ======
kind          preset       rate     channels                            unit
============  ===========  =======  ==================================  ======
EEG           DEFAULT      256 Hz   TP9, AF7, AF8, TP10                 uV
ACCEL         AUXILIARY    52 Hz    accel_x, accel_y, accel_z           g
GYRO          AUXILIARY    52 Hz    gyro_x, gyro_y, gyro_z              deg/s
PPG           ANCILLARY    64 Hz    ppg1, ppg2, ppg3                    counts
============  ===========  =======  ==================================  ======

PPG is off unless a Muse preset command switches it on (``p50``/``p51``, and ``p61`` on the
Muse S): :meth:`BrainFlowSource.muse` passes the preset to BrainFlow (``other_info``, which
BrainFlow validates and re-applies on every ``prepare_session``) and sends it again with
``config_board`` before ``start_stream``.  Without a preset the PPG stream is not offered.

PPG row names are neutral (``ppg1..ppg3``) on purpose.  BrainFlow fills its three
``ppg_channels`` from the Muse GATT characteristics ``273e000f``, ``273e0010`` and
``273e0011`` (in that order, ``muse_constants.h``).  muse-lsl labels these characteristics
"ambient", "infrared" and "red", but that labelling is community reverse engineering, not
InteraXon documentation, reports say the Muse S carries a green LED, and in the Muse 2
recording in ``/work/shared/data/muse2_brainflow`` both ``ppg1`` and ``ppg2`` are pulsatile
while ``ppg3`` reads zero (BrainFlow's driver notes that only two of the three arrive).
Downstream code should pick the PPG row by signal quality, not by name.

The synthetic board maps the first four of its 16 EEG channels (``Fz, C3, Cz, C4`` at
250 Hz, DEFAULT preset) plus its two PPG rows and its accelerometer and gyroscope from the
AUXILIARY preset (also 250 Hz); its ANCILLARY preset does not exist.  Four EEG channels keep
the synthetic stream shaped like a Muse.

Time: BrainFlow stamps samples in Unix seconds.  At :meth:`BrainFlowSource.start` the source
measures ``offset = time.time() - clock.now()`` and emits ``session_time = unix_ts - offset``.
Samples whose session time does not increase (duplicates, steps back) are dropped and counted,
with a WARNING.  BrainFlow's playback board paces lines by the file's timestamps and, by
default, re-stamps each line with the wall clock as it is pushed (``new_timestamps``); this
source requests that mode explicitly, so replayed chunks are on the live session clock.  If
the first sample is more than a minute away from ``clock.now()`` (e.g. old timestamps), the
offset is re-anchored on that sample once, with a WARNING.

Loss of signal: BrainFlow's native Muse driver has no disconnect callback, so a
:class:`~sensors.watchdog.Watchdog` infers the loss from ``stall_s`` seconds without samples,
flips the status to ``SIGNAL_LOST`` and reconnects (release, prepare, configure, start) with
exponential back-off.  On live boards the reconnect runs in a worker thread, because
BrainFlow's Muse ``release_session``/``prepare_session`` block for several seconds; ``poll``
never blocks and never raises.
"""

from __future__ import annotations

import concurrent.futures
import copy
import logging
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

import numpy as np
from brainflow.board_shim import BoardIds, BoardShim, BrainFlowError, BrainFlowInputParams, BrainFlowPresets
from brainflow.exit_codes import BrainFlowExitCodes
from numpy.typing import NDArray

from adaptive.errors import SensorError
from adaptive.types import Chunk, Clock, FloatArray, SignalKind, SourceStatus, StreamSpec

from .clocks import MonotonicClock
from .stats import StreamStats, StreamSummary
from .watchdog import Watchdog, WatchdogConfig

__all__ = [
    "BOARD_MODELS",
    "BoardFactory",
    "BoardLike",
    "BoardModel",
    "BrainFlowSource",
    "StreamRole",
    "bluetooth_adapters",
    "describe_boards",
]

logger = logging.getLogger(__name__)

DEFAULT = int(BrainFlowPresets.DEFAULT_PRESET)
AUXILIARY = int(BrainFlowPresets.AUXILIARY_PRESET)
ANCILLARY = int(BrainFlowPresets.ANCILLARY_PRESET)
_PRESET_NAMES = {DEFAULT: "default", AUXILIARY: "auxiliary", ANCILLARY: "ancillary"}

#: Samples per preset held by BrainFlow's ring buffer: about 3 minutes of Muse EEG, far more
#: than the time between two polls even during a long reconnect.
_BUFFER_SAMPLES = 45_000
#: A first sample further than this from ``clock.now()`` means the timestamps are not live
#: (e.g. a playback file with old timestamps): re-anchor the offset on it.
_MAX_CLOCK_SKEW_S = 60.0


# ---------------------------------------------------------------------------------------------
# Device quirks as data
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StreamRole:
    """Where one signal kind lives in a BrainFlow board.

    Parameters
    ----------
    kind : SignalKind
        Signal kind of the stream.
    preset : int
        BrainFlow preset (``BrainFlowPresets``) whose table holds the rows.
    row_keys : tuple of str
        Keys of the board descriptor that list the rows, tried in order (the first present
        wins), e.g. ``("ppg_channels", "optical_channels")``.
    names : tuple of str
        Fixed channel names.  Empty: EEG rows take the descriptor's ``eeg_names``, other rows
        are named ``prefix + index`` (from 1).
    prefix : str
        Name prefix for generated names.
    max_channels : int or None
        Keep only the first rows (e.g. 4 of the synthetic board's 16 EEG channels).
    scale : float
        Factor from BrainFlow's values to the unit of :data:`adaptive.types.UNITS`.  BrainFlow
        already reports Muse EEG in uV, acceleration in g and rotation in deg/s, so it is 1.
    needs_device_preset : bool
        The rows only carry data after a device preset command (Muse PPG); the stream is
        offered only when such a preset is configured.
    """

    kind: SignalKind
    preset: int
    row_keys: tuple[str, ...]
    names: tuple[str, ...] = ()
    prefix: str = ""
    max_channels: int | None = None
    scale: float = 1.0
    needs_device_preset: bool = False


@dataclass(frozen=True, slots=True)
class BoardModel:
    """A supported board: its BrainFlow id, its streams and its device presets.

    Parameters
    ----------
    key : str
        Name used by the API and the CLI (``"muse-2"``).
    label : str
        Human-readable name.
    board_names : tuple of str
        ``BoardIds`` member names, tried in order (BrainFlow renamed Athena between releases).
    roles : tuple of StreamRole
        Streams in output order.
    device_presets : tuple of str
        Muse preset commands the user may select to switch PPG on.
    default_device_preset : str or None
        Preset used when the user does not choose.
    bluetooth : bool
        Connects through BrainFlow's native Bluetooth LE driver.
    preset_command : bool
        Also send the preset with ``config_board`` before ``start_stream`` (classic Muse
        firmware; Athena applies it inside ``prepare_session`` with its own command sequence).
    """

    key: str
    label: str
    board_names: tuple[str, ...]
    roles: tuple[StreamRole, ...]
    device_presets: tuple[str, ...] = ()
    default_device_preset: str | None = None
    bluetooth: bool = False
    preset_command: bool = False

    @property
    def board_id(self) -> int | None:
        """BrainFlow board id, or None if the installed BrainFlow does not know the board."""
        for name in self.board_names:
            member = getattr(BoardIds, name, None)
            if member is not None:
                return int(member)
        return None

    @property
    def board_name(self) -> str:
        """Name of the ``BoardIds`` member actually used (the first one found)."""
        for name in self.board_names:
            if getattr(BoardIds, name, None) is not None:
                return name
        return self.board_names[0]


_MOTION = (
    StreamRole(SignalKind.ACCEL, AUXILIARY, ("accel_channels",), names=("accel_x", "accel_y", "accel_z")),
    StreamRole(SignalKind.GYRO, AUXILIARY, ("gyro_channels",), names=("gyro_x", "gyro_y", "gyro_z")),
)
_MUSE_CLASSIC_ROLES = (
    StreamRole(SignalKind.EEG, DEFAULT, ("eeg_channels",)),
    *_MOTION,
    StreamRole(SignalKind.PPG, ANCILLARY, ("ppg_channels",), prefix="ppg", needs_device_preset=True),
)

#: Supported boards by key.  Athena is listed but only usable when BrainFlow knows it.
BOARD_MODELS: Mapping[str, BoardModel] = {
    "muse-2": BoardModel(
        key="muse-2",
        label="Muse 2",
        board_names=("MUSE_2_BOARD",),
        roles=_MUSE_CLASSIC_ROLES,
        # BrainFlow's option parser accepts p50/p51 on the Muse 2 (p60/p61 only on the Muse S).
        device_presets=("p50", "p51"),
        default_device_preset="p50",
        bluetooth=True,
        preset_command=True,
    ),
    "muse-s": BoardModel(
        key="muse-s",
        label="Muse S",
        board_names=("MUSE_S_BOARD",),
        roles=_MUSE_CLASSIC_ROLES,
        device_presets=("p50", "p51", "p61"),
        default_device_preset="p61",  # the preset BrainFlow's docs give for Muse S PPG
        bluetooth=True,
        preset_command=True,
    ),
    "muse-s-athena": BoardModel(
        key="muse-s-athena",
        label="Muse S Athena",
        board_names=("MUSE_S_ATHENA_BOARD", "MUSE_S_ANTHENA_BOARD"),
        roles=(
            StreamRole(SignalKind.EEG, DEFAULT, ("eeg_channels",)),
            *_MOTION,
            # Athena's ancillary preset has 16 raw optical rows and no "ppg_channels"; which
            # rows form a usable PPG depends on the preset and is not documented by BrainFlow.
            StreamRole(
                SignalKind.PPG,
                ANCILLARY,
                ("ppg_channels", "optical_channels"),
                prefix="optics",
                needs_device_preset=True,
            ),
        ),
        device_presets=("p1034", "p1035", "p1041", "p1042", "p1043", "p1044", "p1045", "p1046"),
        default_device_preset="p1041",  # BrainFlow's own default for Athena
        bluetooth=True,
        preset_command=False,
    ),
    "synthetic": BoardModel(
        key="synthetic",
        label="BrainFlow synthetic board",
        board_names=("SYNTHETIC_BOARD",),
        roles=(
            StreamRole(SignalKind.EEG, DEFAULT, ("eeg_channels",), max_channels=4),
            *_MOTION,  # AUXILIARY preset, like the Muse
            StreamRole(SignalKind.PPG, AUXILIARY, ("ppg_channels",), prefix="ppg"),
        ),
    ),
}

_MUSE_KEYS = ("muse-2", "muse-s", "muse-s-athena")
_PLAYBACK_MASTERS = ("muse-2", "muse-s")


@dataclass(frozen=True, slots=True)
class _Route:
    """One resolved stream: its spec, preset, descriptor rows and scale."""

    spec: StreamSpec
    preset: int
    rows: tuple[int, ...]
    scale: float


@dataclass(frozen=True, slots=True)
class _PresetTable:
    """Shape of one preset's table: row count and timestamp row."""

    num_rows: int
    timestamp_row: int


def _descriptor(board_id: int, preset: int) -> dict[str, object]:
    descr: dict[str, object] = BoardShim.get_board_descr(board_id, preset)
    return descr


def _int_list(value: object) -> list[int]:
    if not isinstance(value, list | tuple):
        raise TypeError(f"expected a list of rows in the board descriptor, got {value!r}")
    return [int(v) for v in value]


def _number(descr: Mapping[str, object], key: str) -> float:
    value = descr[key]
    if not isinstance(value, int | float):
        raise TypeError(f"expected a number for {key!r} in the board descriptor, got {value!r}")
    return float(value)


def _resolve(
    model: BoardModel,
    *,
    with_device_preset: bool,
    presets: Sequence[int] | None = None,
    device: str = "",
) -> tuple[tuple[_Route, ...], dict[int, _PresetTable]]:
    """Turn a model's roles into routes using BrainFlow's descriptors."""
    board_id = model.board_id
    if board_id is None:
        raise SensorError(
            f"The installed BrainFlow has no {' / '.join(model.board_names)}: the {model.label} is not "
            "supported by this BrainFlow version. Upgrade brainflow or choose another board."
        )
    routes: list[_Route] = []
    tables: dict[int, _PresetTable] = {}
    for role in model.roles:
        if presets is not None and role.preset not in presets:
            continue
        if role.needs_device_preset and not with_device_preset:
            continue
        descr = _descriptor(board_id, role.preset)
        key = next((k for k in role.row_keys if k in descr), None)
        if key is None:
            logger.debug("%s: no %s rows in preset %s", model.label, role.kind, _PRESET_NAMES[role.preset])
            continue
        rows = _int_list(descr[key])[: role.max_channels]
        eeg_names = descr.get("eeg_names")
        if role.names:
            names = role.names[: len(rows)]
        elif key == "eeg_channels" and isinstance(eeg_names, str):
            names = tuple(eeg_names.split(","))[: len(rows)]
        else:
            names = ()
        if len(names) != len(rows):  # generated names when none fit
            names = tuple(f"{role.prefix or role.kind.value}{i + 1}" for i in range(len(rows)))
        sfreq = _number(descr, "sampling_rate")
        extra = {
            "board": model.board_name,
            "preset": _PRESET_NAMES[role.preset],
            "rows": ",".join(str(r) for r in rows),
            "descriptor_key": key,
        }
        if role.needs_device_preset and model.device_presets:
            extra["needs"] = "device preset " + " | ".join(model.device_presets)
        spec = StreamSpec(role.kind, sfreq, names, device=device or model.label, extra=extra)
        routes.append(_Route(spec, role.preset, tuple(rows), float(role.scale)))
        if role.preset not in tables:
            tables[role.preset] = _PresetTable(
                num_rows=int(_number(descr, "num_rows")),
                timestamp_row=int(_number(descr, "timestamp_channel")),
            )
    return tuple(routes), tables


def describe_boards() -> dict[str, list[StreamSpec]]:
    """Streams of every supported board, from BrainFlow's board descriptions.

    Returns
    -------
    boards : dict of str to list of StreamSpec
        Keys are ``"muse-2"``, ``"muse-s"``, ``"muse-s-athena"`` (only when the installed
        BrainFlow has it) and ``"synthetic"``; each value lists kind, nominal rate and channel
        names per stream.  Streams that need a device preset (Muse PPG) say so in
        ``extra["needs"]``.  A playback source offers the streams of its master board
        (``"muse-2"`` or ``"muse-s"``) for the files it is given.

    Notes
    -----
    Needs BrainFlow's native library (to read the descriptors) but no device.
    """
    out: dict[str, list[StreamSpec]] = {}
    for key, model in BOARD_MODELS.items():
        if model.board_id is None:
            continue
        routes, _ = _resolve(model, with_device_preset=True)
        out[key] = [r.spec for r in routes]
    return out


def bluetooth_adapters() -> list[str] | None:
    """Bluetooth adapters the Linux kernel lists in ``/sys/class/bluetooth``.

    Returns
    -------
    adapters : list of str or None
        Adapter names such as ``["hci0"]``, an empty list if there is none, or None on other
        systems (where there is no cheap check).  Containers may hide the host's adapters.
    """
    if not sys.platform.startswith("linux"):
        return None
    root = Path("/sys/class/bluetooth")
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.name.startswith("hci"))


# ---------------------------------------------------------------------------------------------
# The board seam
# ---------------------------------------------------------------------------------------------
class BoardLike(Protocol):
    """The part of BrainFlow's ``BoardShim`` that :class:`BrainFlowSource` uses."""

    def prepare_session(self) -> None:
        """Connect to the device."""
        ...

    def config_board(self, config: str) -> object:
        """Send a configuration command."""
        ...

    def start_stream(self, num_samples: int = ..., streamer_params: str | None = ...) -> None:
        """Start filling the ring buffer."""
        ...

    def get_board_data_count(self, preset: int = ...) -> int:
        """Number of samples waiting in the ring buffer of ``preset``."""
        ...

    def get_board_data(self, num_samples: int | None = ..., preset: int = ...) -> NDArray[np.float64]:
        """Remove and return up to ``num_samples`` samples, shape (num_rows, n)."""
        ...

    def stop_stream(self) -> None:
        """Stop filling the ring buffer."""
        ...

    def release_session(self) -> None:
        """Disconnect and free the device."""
        ...


#: Builds a board from a BrainFlow board id and input parameters; ``BoardShim`` itself is one.
BoardFactory = Callable[[int, BrainFlowInputParams], BoardLike]


def _default_board_factory(board_id: int, params: BrainFlowInputParams) -> BoardLike:
    board: BoardLike = BoardShim(board_id, params)
    return board


def _quietly(action: Callable[[], object]) -> None:
    """Run a clean-up call whose failure does not matter (board already gone, not streaming)."""
    try:
        action()
    except Exception as exc:  # noqa: BLE001 - clean-up must not hide the real problem
        logger.debug("ignored during clean-up: %s", exc)


@dataclass(slots=True)
class _Attempt:
    """A reconnect attempt in flight."""

    number: int
    future: concurrent.futures.Future[None]
    started_at: float


# ---------------------------------------------------------------------------------------------
# The source
# ---------------------------------------------------------------------------------------------
class BrainFlowSource:
    """A BrainFlow board (Muse, synthetic or playback file) as a non-blocking chunk source.

    Prefer the factories :meth:`muse`, :meth:`synthetic` and :meth:`playback`.

    Parameters
    ----------
    model : str
        Key of :data:`BOARD_MODELS`: ``"muse-2"``, ``"muse-s"``, ``"muse-s-athena"`` or
        ``"synthetic"``.  For playback, the board that recorded the files.
    params : BrainFlowInputParams or None
        BrainFlow connection parameters (MAC address, timeout, playback files, ...).
    device_preset : str or None
        Muse preset command that switches PPG on (one of the model's ``device_presets``), or
        None to leave the device's default (no PPG stream).
    playback : bool
        Replay ``params.file`` / ``file_aux`` / ``file_anc`` with ``PLAYBACK_FILE_BOARD``;
        ``model`` is then the master board.
    loop : bool
        Playback only: start again at the end of the files (BrainFlow ``loopback_true``).
    clock : Clock or None
        Session clock, :class:`~sensors.clocks.MonotonicClock` by default.  BrainFlow delivers
        in real time, so the clock must run at real-time speed.
    watchdog : WatchdogConfig or None
        Stall time and reconnect back-off; by default 3 s and 1, 2, 4 ... 30 s, with
        reconnects on for live boards and off for playback.
    board_factory : callable or None
        ``(board_id, params) -> board`` with ``BoardShim``'s methods; ``BoardShim`` by default.
        Tests inject a double here.
    unix_time : callable
        Wall clock in Unix seconds, the time base of BrainFlow's timestamps (``time.time``).
    background_reconnect : bool
        Run reconnect attempts in a worker thread so that :meth:`poll` never blocks (BrainFlow's
        Muse driver blocks for seconds while releasing and scanning).  False runs them inline,
        which makes tests deterministic.
    verbose : bool
        Let BrainFlow's own (native, stderr) logger print at INFO level; it is silenced
        otherwise (``BoardShim.disable_board_logger``).  The setting is process-wide and is
        applied by :meth:`start`.

    Notes
    -----
    ``poll`` returns at most one chunk per signal kind, in the order of :attr:`streams`.
    It never raises: read errors are logged and count as "no data", which the watchdog turns
    into ``SIGNAL_LOST`` and reconnect attempts.

    Examples
    --------
    >>> clock = MonotonicClock()
    >>> with BrainFlowSource.synthetic(clock=clock) as source:  # doctest: +SKIP
    ...     while running:
    ...         for chunk in source.poll(clock.now()):
    ...             pipeline.update(chunk)
    """

    def __init__(
        self,
        model: str,
        *,
        params: BrainFlowInputParams | None = None,
        device_preset: str | None = None,
        playback: bool = False,
        loop: bool = False,
        clock: Clock | None = None,
        watchdog: WatchdogConfig | None = None,
        board_factory: BoardFactory | None = None,
        unix_time: Callable[[], float] = time.time,
        background_reconnect: bool = True,
        verbose: bool = False,
    ) -> None:
        allowed = _PLAYBACK_MASTERS if playback else tuple(BOARD_MODELS)
        if model not in allowed:
            raise ValueError(
                f"Invalid value for 'model': expected one of {', '.join(repr(k) for k in allowed)}, "
                f"got {model!r}."
                + (" Playback replays files recorded from a Muse 2 or Muse S." if playback else "")
            )
        self._model = BOARD_MODELS[model]
        if device_preset is not None and device_preset not in self._model.device_presets:
            options = ", ".join(repr(p) for p in self._model.device_presets) or "none"
            raise ValueError(
                f"Invalid value for 'device_preset': expected one of {options} or None for the "
                f"{self._model.label}, got {device_preset!r}."
            )
        if playback and device_preset is not None:
            raise ValueError(
                f"Invalid value for 'device_preset': expected None for playback, got {device_preset!r}. "
                "A file replays whatever the device recorded."
            )
        self._playback = bool(playback)
        self._loop = bool(loop)
        self._device_preset = device_preset
        # A copy: the source fills in master_board / other_info and must not touch the caller's.
        self._params = copy.copy(params) if params is not None else BrainFlowInputParams()
        self._clock: Clock = clock if clock is not None else MonotonicClock()
        self._board_factory: BoardFactory = board_factory or _default_board_factory
        self._unix_time = unix_time
        self._background = bool(background_reconnect)
        self._verbose = bool(verbose)

        board_id = self._model.board_id
        if board_id is None:
            raise SensorError(
                f"The installed BrainFlow has no {' / '.join(self._model.board_names)}: the "
                f"{self._model.label} is not supported by this BrainFlow version. Upgrade brainflow."
            )
        self._files: dict[int, Path] = {}
        if self._playback:
            self._board_id = int(BoardIds.PLAYBACK_FILE_BOARD)
            self._params.master_board = board_id
            for preset, name in ((DEFAULT, "file"), (AUXILIARY, "file_aux"), (ANCILLARY, "file_anc")):
                value = str(getattr(self._params, name) or "")
                if value:
                    self._files[preset] = Path(value)
            if not self._files:
                raise ValueError(
                    "Invalid value for 'params': expected at least one playback file "
                    "(file, file_aux or file_anc), got none."
                )
            presets: Sequence[int] | None = tuple(self._files)
            device = f"BrainFlow playback of {self._model.label} files"
        else:
            self._board_id = board_id
            presets = None
            device = f"{self._model.label} (BrainFlow {self._model.board_name})"
        if self._model.bluetooth and device_preset is not None:
            # BrainFlow >= 5.2x validates the preset and applies it inside prepare_session.
            self._params.other_info = device_preset
        self._routes, self._tables = _resolve(
            self._model,
            with_device_preset=self._playback or device_preset is not None,
            presets=presets,
            device=device,
        )
        if watchdog is None:
            watchdog = WatchdogConfig(reconnect=not self._playback)
        self._watchdog = Watchdog(watchdog, name=self.name)
        self._stats = {r.spec.kind: StreamStats(r.spec.kind, r.spec.sfreq) for r in self._routes}

        self._board: BoardLike | None = None
        self._status = SourceStatus.IDLE
        self._offset = math.nan
        self._anchored = False
        self._last_time: dict[int, float] = {}
        self._attempt: _Attempt | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._read_error_logged: set[int] = set()

    # -- factories ---------------------------------------------------------------------------
    @classmethod
    def muse(
        cls,
        model: str = "muse-2",
        *,
        mac: str | None = None,
        serial: str | None = None,
        ppg_preset: str | None = "auto",
        timeout_s: float = 10.0,
        clock: Clock | None = None,
        stall_s: float = 3.0,
        board_factory: BoardFactory | None = None,
        unix_time: Callable[[], float] = time.time,
        background_reconnect: bool = True,
        verbose: bool = False,
    ) -> BrainFlowSource:
        """A Muse headband over BrainFlow's native Bluetooth LE driver.

        Parameters
        ----------
        model : {"muse-2", "muse-s", "muse-s-athena"}
            Headband model (Athena only if the installed BrainFlow supports it).
        mac : str or None
            Bluetooth address to connect to (``--mac``); None takes the first Muse found.
        serial : str or None
            Advertised name such as ``"Muse-1A2B"`` (``--serial``); ignored when ``mac`` is set.
        ppg_preset : str or None
            Muse preset that switches PPG on: ``"p50"``/``"p51"`` (Muse 2 and S), ``"p61"``
            (Muse S), an Athena preset (``"p1041"`` ...).  ``"auto"`` picks p50 (Muse 2), p61
            (Muse S) or p1041 (Athena); None streams EEG and motion only.
        timeout_s : float
            How long BrainFlow scans for the headband.
        clock, stall_s, board_factory, unix_time, background_reconnect, verbose
            See :class:`BrainFlowSource`; ``stall_s`` is the watchdog's silence limit.

        Returns
        -------
        source : BrainFlowSource
            Not started yet.
        """
        if model not in _MUSE_KEYS:
            raise ValueError(
                f"Invalid value for 'model': expected one of {', '.join(repr(k) for k in _MUSE_KEYS)}, "
                f"got {model!r}."
            )
        spec = BOARD_MODELS[model]
        preset = spec.default_device_preset if ppg_preset == "auto" else ppg_preset
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(
                f"Invalid value for 'timeout_s': expected a positive number of seconds, got {timeout_s!r}."
            )
        params = BrainFlowInputParams()
        params.timeout = max(1, math.ceil(timeout_s))
        if mac:
            params.mac_address = str(mac).strip()
        if serial:
            params.serial_number = str(serial).strip()
        return cls(
            model,
            params=params,
            device_preset=preset,
            clock=clock,
            watchdog=WatchdogConfig(stall_s=stall_s, reconnect=True),
            board_factory=board_factory,
            unix_time=unix_time,
            background_reconnect=background_reconnect,
            verbose=verbose,
        )

    @classmethod
    def synthetic(
        cls,
        *,
        clock: Clock | None = None,
        stall_s: float = 3.0,
        board_factory: BoardFactory | None = None,
        unix_time: Callable[[], float] = time.time,
        background_reconnect: bool = True,
        verbose: bool = False,
    ) -> BrainFlowSource:
        """BrainFlow's synthetic board: EEG (Fz, C3, Cz, C4), motion and PPG at 250 Hz, no hardware."""
        return cls(
            "synthetic",
            clock=clock,
            watchdog=WatchdogConfig(stall_s=stall_s, reconnect=True),
            board_factory=board_factory,
            unix_time=unix_time,
            background_reconnect=background_reconnect,
            verbose=verbose,
        )

    @classmethod
    def playback(
        cls,
        default: str | Path | None,
        aux: str | Path | None = None,
        anc: str | Path | None = None,
        *,
        master: str = "muse-2",
        loop: bool = False,
        clock: Clock | None = None,
        stall_s: float = 3.0,
        board_factory: BoardFactory | None = None,
        unix_time: Callable[[], float] = time.time,
        verbose: bool = False,
    ) -> BrainFlowSource:
        """Replay BrainFlow files in real time with ``PLAYBACK_FILE_BOARD``.

        Parameters
        ----------
        default, aux, anc : path or None
            One file per preset, as written by BrainFlow (``DataFilter.write_file`` or a
            ``file://...`` streamer): EEG (DEFAULT), accelerometer and gyroscope (AUXILIARY),
            PPG (ANCILLARY).  At least one is needed; each given file becomes streams.
        master : {"muse-2", "muse-s"}
            Board that recorded the files; its descriptor gives the column meaning.
        loop : bool
            Start again at the end of the files.  Without it the stream stops at the end and
            the watchdog reports ``SIGNAL_LOST`` (it does not reconnect a playback).
        clock, stall_s, board_factory, unix_time, verbose
            See :class:`BrainFlowSource`.

        Notes
        -----
        BrainFlow paces the lines by the file's timestamps and re-stamps them with the wall
        clock, so replay runs in real time.  To analyse a file faster, read it directly.
        """
        params = BrainFlowInputParams()
        for name, value in (("file", default), ("file_aux", aux), ("file_anc", anc)):
            if value is not None:
                setattr(params, name, str(value))
        return cls(
            master,
            params=params,
            playback=True,
            loop=loop,
            clock=clock,
            watchdog=WatchdogConfig(stall_s=stall_s, reconnect=False),
            board_factory=board_factory,
            unix_time=unix_time,
            background_reconnect=False,
            verbose=verbose,
        )

    # -- Source protocol -----------------------------------------------------------------------
    @property
    def name(self) -> str:
        """Short name for logs, e.g. ``"muse-2"`` or ``"playback(muse-2)"``."""
        return f"playback({self._model.key})" if self._playback else self._model.key

    @property
    def streams(self) -> tuple[StreamSpec, ...]:
        """The streams this source delivers, in chunk order."""
        return tuple(r.spec for r in self._routes)

    @property
    def status(self) -> SourceStatus:
        """IDLE, STREAMING, SIGNAL_LOST or STOPPED."""
        return self._status

    @property
    def watchdog(self) -> Watchdog:
        """The stall detector (reconnect attempts, losses); read it, do not drive it."""
        return self._watchdog

    @property
    def board_id(self) -> int:
        """BrainFlow board id used to open the board (``PLAYBACK_FILE_BOARD`` for playback)."""
        return self._board_id

    def start(self) -> None:
        """Connect, configure and start streaming.

        Raises
        ------
        SensorError
            If BrainFlow cannot open the device or files.  For a Muse the message lists what
            to check (adapter, headband power, phone apps, ``--mac``/``--serial``); BrainFlow's
            exception stays in the chain (``__cause__``).
        RuntimeError
            If the source is already started.

        Notes
        -----
        Blocks while BrainFlow connects.  Without a Bluetooth adapter BrainFlow fails within
        milliseconds (measured 5-15 ms on Linux); with an adapter but no headband in reach it
        scans for ``timeout_s`` and then waits about 1 s more before failing.
        """
        if self._status in (SourceStatus.STREAMING, SourceStatus.SIGNAL_LOST):
            raise RuntimeError(f"{self.name}: already started; call stop() before starting again.")
        if self._verbose:
            BoardShim.enable_board_logger()
        else:
            BoardShim.disable_board_logger()
        if self._playback:
            self._check_playback_files()
        board: BoardLike | None = None
        t0 = time.perf_counter()
        try:
            board = self._board_factory(self._board_id, self._params)
            self._open(board)
        except BrainFlowError as exc:
            if board is not None:
                _quietly(board.release_session)
            elapsed = time.perf_counter() - t0
            logger.debug("%s: BrainFlow failed after %.3f s: %s", self.name, elapsed, exc)
            raise SensorError(self._open_error(exc)) from exc
        self._board = board
        self._offset = self._unix_time() - self._clock.now()
        self._anchored = False
        self._last_time = {preset: -math.inf for preset in self._tables}
        self._read_error_logged.clear()
        for stats in self._stats.values():
            stats.reset()
        self._watchdog.arm(self._clock.now())
        self._status = SourceStatus.STREAMING
        logger.info(
            "%s: streaming %s%s.",
            self.name,
            ", ".join(f"{r.spec.kind.value} {r.spec.sfreq:g} Hz" for r in self._routes),
            f" (device preset {self._device_preset})" if self._device_preset else "",
        )

    def poll(self, now: float) -> list[Chunk]:
        """Return what arrived since the last call: at most one chunk per signal kind.

        Parameters
        ----------
        now : float
            Current session time; drives the watchdog (stall detection and back-off).

        Returns
        -------
        chunks : list of Chunk
            Non-empty chunks in the order of :attr:`streams`, times on the session clock.

        Notes
        -----
        Never blocks and never raises.  While a background reconnect is in flight it returns
        an empty list.
        """
        if self._board is None or self._status not in (SourceStatus.STREAMING, SourceStatus.SIGNAL_LOST):
            return []
        if self._attempt is not None:
            if not self._attempt.future.done():
                return []
            self._finish_attempt(now)
        chunks, n_new = self._drain()
        self._status = self._watchdog.update(now, n_new)
        if self._attempt is None and self._watchdog.reconnect_due(now):
            self._begin_attempt(now)
        return chunks

    def stop(self) -> None:
        """Stop streaming and release the board (waits for a reconnect in flight)."""
        if self._attempt is not None:
            try:
                self._attempt.future.result()
            except Exception as exc:  # noqa: BLE001 - we are shutting down anyway
                logger.debug("%s: reconnect attempt ended with %s during stop", self.name, exc)
            self._attempt = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._board is not None:
            _quietly(self._board.stop_stream)
            _quietly(self._board.release_session)
            self._board = None
            logger.info(
                "%s: stopped (%s).",
                self.name,
                ", ".join(f"{s.kind.value} {s.n_samples} samples" for s in self.stats().values()),
            )
        self._watchdog.disarm()
        self._status = SourceStatus.STOPPED

    def __enter__(self) -> BrainFlowSource:
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
        """Per-stream reception statistics since :meth:`start`.

        Returns
        -------
        stats : dict of SignalKind to StreamSummary
            Samples received, first/last session time, measured rate, gaps (intervals over
            1.5 sample periods) and samples dropped for repeated or backward timestamps.
        """
        return {kind: s.summary() for kind, s in self._stats.items()}

    # -- internals ------------------------------------------------------------------------------
    def _config_commands(self) -> list[str]:
        if self._playback:
            # Re-stamp with the wall clock (BrainFlow's default, asked for explicitly so that a
            # future default change cannot put replayed samples years in the past).
            return ["new_timestamps"] + (["loopback_true"] if self._loop else [])
        if self._model.preset_command and self._device_preset is not None:
            return [self._device_preset]
        return []

    def _open(self, board: BoardLike) -> None:
        """prepare_session, device configuration and start_stream (raises BrainFlowError)."""
        board.prepare_session()
        for command in self._config_commands():
            board.config_board(command)
        board.start_stream(_BUFFER_SAMPLES)

    def _open_error(self, exc: BrainFlowError) -> str:
        code = int(getattr(exc, "exit_code", -1))
        brainflow = f"[BrainFlow: {exc}]"
        if self._playback:
            files = ", ".join(str(p) for p in self._files.values())
            return (
                f"Could not replay {files} as {self._model.label} data {brainflow}. Check that the files "
                f"exist, were written by BrainFlow, and that master={self._model.key!r} is the board "
                "that recorded them."
            )
        if not self._model.bluetooth:
            return f"Could not start the {self._model.label} {brainflow}."
        timeout = int(self._params.timeout or 0)
        reasons = {
            int(BrainFlowExitCodes.UNABLE_TO_OPEN_PORT_ERROR): "no Bluetooth adapter was found",
            int(BrainFlowExitCodes.BOARD_NOT_READY_ERROR): (
                f"no headband answered within {timeout} s, or the connection failed"
            ),
            int(BrainFlowExitCodes.INVALID_ARGUMENTS_ERROR): "BrainFlow rejected the settings",
        }
        reason = reasons.get(code, "BrainFlow could not open the headband")
        adapters = bluetooth_adapters()
        if adapters == []:
            reason += " (the kernel lists no adapter in /sys/class/bluetooth)"
        target = ""
        if self._params.mac_address:
            target = f" at {self._params.mac_address}"
        elif self._params.serial_number:
            target = f" named {self._params.serial_number}"
        return (
            f"Could not connect to the {self._model.label}{target}: {reason} {brainflow}. Check that: "
            "(1) this computer has a Bluetooth adapter and Bluetooth is switched on; "
            "(2) the headband is charged and powered on; "
            "(3) it is not connected to a phone or tablet app (Muse app, Mind Monitor): close the app "
            "or turn that device's Bluetooth off; "
            "(4) if several headbands are near or discovery fails, name yours with "
            "--mac XX:XX:XX:XX:XX:XX or --serial Muse-XXXX."
        )

    def _check_playback_files(self) -> None:
        for preset, path in self._files.items():
            arg = {DEFAULT: "default", AUXILIARY: "aux", ANCILLARY: "anc"}[preset]
            if not path.is_file():
                raise SensorError(
                    f"Invalid value for {arg!r}: expected a BrainFlow file, got {str(path)!r}, which does "
                    "not exist. Check the path."
                )
            with path.open("r", encoding="ascii", errors="replace") as fh:
                first = fh.readline()
            separator = "\t" if "\t" in first else ","
            n_columns = len([v for v in first.strip().split(separator) if v.strip()])
            expected = self._tables[preset].num_rows
            if n_columns != expected:
                raise SensorError(
                    f"Invalid value for {arg!r}: expected {expected} columns per line (the "
                    f"{_PRESET_NAMES[preset]} preset of the {self._model.label}), got {n_columns} in "
                    f"{path}. Is master={self._model.key!r} right, and is the file given for the "
                    "right preset (default = EEG, aux = accel/gyro, anc = PPG)?"
                )

    def _drain(self) -> tuple[list[Chunk], int]:
        """Read every preset once; return the chunks (stream order) and the kept sample count."""
        board = self._board
        assert board is not None
        out: dict[int, Chunk] = {}
        n_new = 0
        for preset, table_info in self._tables.items():
            try:
                count = int(board.get_board_data_count(preset))
                if count <= 0:
                    continue
                table = np.asarray(board.get_board_data(count, preset), dtype=np.float64)
                kept = self._chunks_from_table(preset, table_info, table, out)
            except Exception as exc:  # noqa: BLE001 - poll() must never raise (see class notes)
                if preset not in self._read_error_logged:
                    self._read_error_logged.add(preset)
                    level = logging.DEBUG if self._status is SourceStatus.SIGNAL_LOST else logging.WARNING
                    name = _PRESET_NAMES[preset]
                    logger.log(level, "%s: reading the %s preset failed: %s", self.name, name, exc)
                continue
            self._read_error_logged.discard(preset)
            n_new += kept
        chunks = [out[i] for i in sorted(out)]
        return chunks, n_new

    def _chunks_from_table(
        self, preset: int, info: _PresetTable, table: FloatArray, out: dict[int, Chunk]
    ) -> int:
        if table.ndim != 2 or table.shape[0] != info.num_rows:
            raise ValueError(
                f"expected a table of {info.num_rows} rows from the {_PRESET_NAMES[preset]} preset, "
                f"got shape {table.shape}"
            )
        if table.shape[1] == 0:
            return 0
        times, keep = self._session_times(preset, table[info.timestamp_row])
        n_keep = int(np.count_nonzero(keep))
        n_drop = int(keep.size - n_keep)
        if n_drop:
            logger.warning(
                "%s: dropped %d of %d %s-preset sample(s) with repeated or backward timestamps.",
                self.name,
                n_drop,
                keep.size,
                _PRESET_NAMES[preset],
            )
        if n_keep == 0:
            for route in self._routes:
                if route.preset == preset:
                    self._stats[route.spec.kind].add_dropped(n_drop)
            return 0
        kept_times = times[keep]
        self._last_time[preset] = float(kept_times[-1])
        for index, route in enumerate(self._routes):
            if route.preset != preset:
                continue
            data = table[list(route.rows)][:, keep]
            if route.scale != 1.0:
                data = data * route.scale
            chunk = Chunk(route.spec.kind, data, kept_times, route.spec.sfreq, route.spec.ch_names)
            stats = self._stats[route.spec.kind]
            stats.update(chunk)
            stats.add_dropped(n_drop)
            out[index] = chunk
        return n_keep

    def _session_times(self, preset: int, unix_ts: FloatArray) -> tuple[FloatArray, NDArray[np.bool_]]:
        """Map Unix timestamps to session time; mask of samples that keep times strictly increasing."""
        if not self._anchored:
            finite = unix_ts[np.isfinite(unix_ts)]
            if finite.size:
                now = self._clock.now()
                skew = float(finite[0]) - self._offset - now
                if abs(skew) > _MAX_CLOCK_SKEW_S:
                    logger.warning(
                        "%s: first timestamp is %.1f s away from the session clock (not live time); "
                        "re-anchoring it to now.",
                        self.name,
                        skew,
                    )
                    self._offset += skew
                self._anchored = True
        times = unix_ts - self._offset
        previous = np.concatenate(([self._last_time.get(preset, -math.inf)], times[:-1]))
        running_max = np.fmax.accumulate(previous)
        keep = np.isfinite(times) & (times > running_max)
        return times, keep

    def _reconnect_once(self) -> None:
        board = self._board
        assert board is not None
        _quietly(board.stop_stream)
        _quietly(board.release_session)
        self._open(board)

    def _begin_attempt(self, now: float) -> None:
        number = self._watchdog.attempts + 1
        logger.info("%s: reconnect attempt %d (release, prepare, configure, start).", self.name, number)
        future: concurrent.futures.Future[None]
        if self._background:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="calmloop-brainflow-reconnect"
                )
            future = self._executor.submit(self._reconnect_once)
        else:
            future = concurrent.futures.Future()
            try:
                self._reconnect_once()
            except Exception as exc:  # noqa: BLE001 - reported through the future
                future.set_exception(exc)
            else:
                future.set_result(None)
        self._attempt = _Attempt(number, future, float(now))
        if future.done():
            self._finish_attempt(now)

    def _finish_attempt(self, now: float) -> None:
        attempt = self._attempt
        assert attempt is not None
        self._attempt = None
        exc = attempt.future.exception()
        took = now - attempt.started_at
        if exc is None:
            # A fresh connection gets a full stall window before it is torn down again.
            delay = self._watchdog.record_attempt(now, min_delay_s=self._watchdog.config.stall_s)
            logger.info(
                "%s: reconnect attempt %d restarted the board after %.1f s; waiting for samples "
                "(next attempt in %.0f s if none arrive).",
                self.name,
                attempt.number,
                took,
                delay,
            )
            return
        delay = self._watchdog.record_attempt(now)
        logger.warning(
            "%s: reconnect attempt %d failed after %.1f s (%s); next attempt in %.0f s.",
            self.name,
            attempt.number,
            took,
            exc,
            delay,
        )
