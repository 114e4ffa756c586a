"""BrainFlowSource: Muse / synthetic / playback boards as chunk sources.

Fast tests drive the source with a board double and a ManualClock (no native streaming, no
sleeping).  Tests marked ``slow`` run BrainFlow's own synthetic and playback boards, which
deliver in real time, so they wait for data with short sleeps between polls.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from brainflow.board_shim import BoardIds, BoardShim, BrainFlowError, BrainFlowInputParams
from brainflow.data_filter import DataFilter
from brainflow.exit_codes import BrainFlowExitCodes
from numpy.typing import NDArray

from adaptive.errors import SensorError
from adaptive.types import UNITS, Chunk, SignalKind, Source, SourceStatus
from sensors.brainflow_source import (
    ANCILLARY,
    AUXILIARY,
    BOARD_MODELS,
    DEFAULT,
    BrainFlowSource,
    bluetooth_adapters,
    describe_boards,
)
from sensors.clocks import ManualClock, MonotonicClock

K = SignalKind
S = SourceStatus
MUSE2 = int(BoardIds.MUSE_2_BOARD)
WALL0 = 1.7e9  # Unix seconds at session time 0 in the fake world
NOT_READY = int(BrainFlowExitCodes.BOARD_NOT_READY_ERROR)
MUSE_FILES = ("default_from_streamer.csv", "aux_from_streamer.csv", "anc_from_streamer.csv")


# ---------------------------------------------------------------------------------------------
# A BoardShim double: Muse 2 tables at the nominal rates, stamped from a ManualClock
# ---------------------------------------------------------------------------------------------
class FakeMuse:
    """Implements the BoardShim methods BrainFlowSource uses.

    ``in_range`` False makes prepare_session fail like a headband out of reach;
    ``delivering`` False makes a connected headband go silent (samples are lost, not queued).
    """

    def __init__(self, clock: ManualClock, board_id: int = MUSE2) -> None:
        self.clock = clock
        self.descr = {p: BoardShim.get_board_descr(board_id, p) for p in (DEFAULT, AUXILIARY, ANCILLARY)}
        self.in_range = True
        self.delivering = True
        self.prepare_error: Exception | None = None
        self.prepared = False
        self.streaming = False
        self.calls: list[tuple[str, float]] = []
        self.configs: list[str] = []
        self.gate: threading.Event | None = None  # blocks prepare_session while set and not fired
        self.started = threading.Event()
        self._k0: dict[int, float] = {}
        self._k: dict[int, int] = {}

    def unix(self) -> float:
        return WALL0 + self.clock.now()

    def _sfreq(self, preset: int) -> float:
        return float(self.descr[preset]["sampling_rate"])

    # -- BoardShim API -------------------------------------------------------------------------
    def prepare_session(self) -> None:
        self.calls.append(("prepare_session", self.clock.now()))
        if self.gate is not None:
            assert self.gate.wait(10), "test gate never opened"
        if self.prepare_error is not None:
            raise self.prepare_error
        if not self.in_range:
            raise BrainFlowError("unable to prepare streaming session", NOT_READY)
        self.prepared = True

    def config_board(self, config: str) -> str:
        self.configs.append(config)
        return ""

    def start_stream(self, num_samples: int = 450000, streamer_params: str | None = None) -> None:
        self.calls.append(("start_stream", self.clock.now()))
        if not self.prepared:
            raise BrainFlowError("board not prepared", int(BrainFlowExitCodes.BOARD_NOT_CREATED_ERROR))
        self.streaming = True
        for p in self.descr:
            self._k0[p] = self.unix()
            self._k[p] = 1
        self.started.set()

    def stop_stream(self) -> None:
        self.calls.append(("stop_stream", self.clock.now()))
        self.streaming = False

    def release_session(self) -> None:
        self.calls.append(("release_session", self.clock.now()))
        self.streaming = False
        self.prepared = False

    def _pending(self, preset: int) -> int:
        if not self.prepared:
            raise BrainFlowError("board not prepared", int(BrainFlowExitCodes.BOARD_NOT_CREATED_ERROR))
        if not self.streaming:
            return 0
        sfreq = self._sfreq(preset)
        due = int(math.floor((self.unix() - self._k0[preset]) * sfreq + 1e-9))
        if not self.delivering:  # samples of a silent headband are lost, not queued
            self._k[preset] = max(self._k[preset], due + 1)
            return 0
        return max(0, due - self._k[preset] + 1)

    def get_board_data_count(self, preset: int = DEFAULT) -> int:
        return self._pending(preset)

    def get_board_data(self, num_samples: int | None = None, preset: int = DEFAULT) -> NDArray[np.float64]:
        n = self._pending(preset)
        if num_samples is not None:
            n = min(n, num_samples)
        d = self.descr[preset]
        k = self._k[preset] + np.arange(n)
        t = self._k0[preset] + k / self._sfreq(preset)
        table = np.zeros((int(d["num_rows"]), n))
        table[int(d["package_num_channel"])] = k
        table[int(d["timestamp_channel"])] = t
        bases = {"eeg_channels": 10.0, "accel_channels": 0.1, "gyro_channels": 1.0, "ppg_channels": 1e5}
        for key, base in bases.items():
            for i, row in enumerate(d.get(key, [])):
                table[row] = base * (i + 1) + np.sin(2 * np.pi * 1.0 * (t - WALL0))
        self._k[preset] += n
        return table


def _fake_source(
    clock: ManualClock, fake: FakeMuse, *, background: bool = False, stall_s: float = 3.0
) -> BrainFlowSource:
    return BrainFlowSource.muse(
        "muse-2",
        clock=clock,
        stall_s=stall_s,
        board_factory=lambda board_id, params: fake,
        unix_time=fake.unix,
        background_reconnect=background,
    )


def _assert_valid(chunk: Chunk, source: BrainFlowSource) -> None:
    spec = {s.kind: s for s in source.streams}[chunk.kind]
    assert chunk.ch_names == spec.ch_names
    assert chunk.sfreq == spec.sfreq
    assert chunk.unit == UNITS[chunk.kind]
    assert chunk.data.shape == (len(spec.ch_names), chunk.n_times) and chunk.data.dtype == np.float64
    assert chunk.n_times > 0 and np.all(np.diff(chunk.times) > 0) and np.all(np.isfinite(chunk.times))
    assert not chunk.data.flags.writeable


def _collect(
    source: BrainFlowSource,
    clock: MonotonicClock,
    seconds: float,
    until: Callable[[], bool] | None = None,
) -> list[Chunk]:
    """Poll a real-time board for ``seconds`` (or until ``until()`` holds, at most ``seconds``).

    BrainFlow delivers in real time, so this waits.
    """
    chunks: list[Chunk] = []
    end = clock.now() + seconds
    while clock.now() < end:
        chunks += source.poll(clock.now())
        if until is not None and until():
            break
        time.sleep(0.05)
    return chunks + source.poll(clock.now())


def _concat(chunks: list[Chunk], kind: SignalKind) -> tuple[np.ndarray, np.ndarray]:
    mine = [c for c in chunks if c.kind == kind]
    return np.concatenate([c.data for c in mine], axis=1), np.concatenate([c.times for c in mine])


# ---------------------------------------------------------------------------------------------
# Layout from descriptors
# ---------------------------------------------------------------------------------------------
def test_describe_boards_from_descriptors() -> None:
    boards = describe_boards()
    assert {"muse-2", "muse-s", "synthetic"} <= set(boards)
    if getattr(BoardIds, "MUSE_S_ATHENA_BOARD", None) is not None:
        assert "muse-s-athena" in boards
    for key in ("muse-2", "muse-s"):
        specs = {s.kind: s for s in boards[key]}
        assert list(specs) == [K.EEG, K.ACCEL, K.GYRO, K.PPG]
        assert specs[K.EEG].ch_names == ("TP9", "AF7", "AF8", "TP10") and specs[K.EEG].sfreq == 256
        assert specs[K.ACCEL].ch_names == ("accel_x", "accel_y", "accel_z") and specs[K.ACCEL].sfreq == 52
        assert specs[K.GYRO].ch_names == ("gyro_x", "gyro_y", "gyro_z") and specs[K.GYRO].sfreq == 52
        assert specs[K.PPG].ch_names == ("ppg1", "ppg2", "ppg3") and specs[K.PPG].sfreq == 64
        assert specs[K.PPG].extra["preset"] == "ancillary" and "p50" in specs[K.PPG].extra["needs"]
        # Rows come from BrainFlow's descriptor, not from this project.
        descr = BoardShim.get_board_descr(int(getattr(BoardIds, BOARD_MODELS[key].board_name)), AUXILIARY)
        assert specs[K.GYRO].extra["rows"] == ",".join(map(str, descr["gyro_channels"]))
    synthetic = {s.kind: s for s in boards["synthetic"]}
    assert synthetic[K.EEG].ch_names == ("Fz", "C3", "Cz", "C4") and synthetic[K.EEG].sfreq == 250
    assert len(synthetic[K.PPG].ch_names) == 2


def test_streams_follow_ppg_preset() -> None:
    with_ppg = BrainFlowSource.muse("muse-2", board_factory=lambda b, p: FakeMuse(ManualClock()))
    assert [s.kind for s in with_ppg.streams] == [K.EEG, K.ACCEL, K.GYRO, K.PPG]
    no_ppg = BrainFlowSource.muse("muse-2", ppg_preset=None)
    assert [s.kind for s in no_ppg.streams] == [K.EEG, K.ACCEL, K.GYRO]
    assert isinstance(with_ppg, Source)
    assert with_ppg.status is S.IDLE and with_ppg.poll(0.0) == []


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: BrainFlowSource.muse("muse-3"), "'model'"),
        (lambda: BrainFlowSource.muse("muse-2", ppg_preset="p61"), "'device_preset'"),  # Muse S only
        (lambda: BrainFlowSource.muse("muse-2", timeout_s=0), "'timeout_s'"),
        (lambda: BrainFlowSource.playback("x.csv", master="synthetic"), "'model'"),
        (lambda: BrainFlowSource.muse("muse-2", stall_s=-1), "'stall_s'"),
    ],
)
def test_bad_arguments_raise(call: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_muse_params_and_preset_commands() -> None:
    clock = ManualClock()
    fake = FakeMuse(clock)
    seen: list[tuple[int, BrainFlowInputParams]] = []

    def factory(board_id: int, params: BrainFlowInputParams) -> FakeMuse:
        seen.append((board_id, params))
        return fake

    source = BrainFlowSource.muse(
        "muse-s",
        mac="00:55:DA:B0:00:01",
        timeout_s=2.5,
        board_factory=factory,
        clock=clock,
        unix_time=fake.unix,
    )
    source.start()
    board_id, params = seen[0]
    assert board_id == int(BoardIds.MUSE_S_BOARD)
    assert params.mac_address == "00:55:DA:B0:00:01" and params.timeout == 3
    assert params.other_info == "p61"  # BrainFlow validates and applies it in prepare_session
    assert fake.configs == ["p61"]  # and it is sent again before start_stream
    assert [c for c, _ in fake.calls] == ["prepare_session", "start_stream"]
    source.stop()
    assert source.status is S.STOPPED and not fake.prepared


# ---------------------------------------------------------------------------------------------
# Chunks, session time, duplicates
# ---------------------------------------------------------------------------------------------
def test_chunks_from_fake_muse_are_valid() -> None:
    clock = ManualClock()
    fake = FakeMuse(clock)
    source = _fake_source(clock, fake)
    with source:
        seen: dict[SignalKind, list[Chunk]] = {k: [] for k in K}
        for _ in range(40):
            clock.advance(0.05)
            chunks = source.poll(clock.now())
            kinds = [c.kind for c in chunks]
            assert len(kinds) == len(set(kinds))  # one chunk per kind per poll
            assert kinds == [k for k in (K.EEG, K.ACCEL, K.GYRO, K.PPG) if k in kinds]  # stream order
            for c in chunks:
                _assert_valid(c, source)
                seen[c.kind].append(c)
    for kind, rate in ((K.EEG, 256), (K.ACCEL, 52), (K.GYRO, 52), (K.PPG, 64)):
        times = np.concatenate([c.times for c in seen[kind]])
        assert np.all(np.diff(times) > 0)
        # Session time = Unix time - (unix_time() - clock.now()) at start: exact here.
        np.testing.assert_allclose(np.diff(times), 1 / rate, atol=1e-6)  # Unix-second float64 grain: 0.24 us
        assert 0 < times[0] <= 1 / rate + 1e-6 and times[-1] <= 2.0 + 1e-9
    # Each stream reads its own descriptor rows (the fake writes base * (i + 1) + sine).
    first = {kind: seen[kind][0] for kind in seen}
    s0 = np.sin(2 * np.pi * first[K.EEG].times[0])
    np.testing.assert_allclose(first[K.EEG].data[:, 0], [10 + s0, 20 + s0, 30 + s0, 40 + s0], rtol=1e-9)
    assert first[K.GYRO].data[0, 0] == pytest.approx(1.0 + np.sin(2 * np.pi * first[K.GYRO].times[0]))
    stats = source.stats()
    assert stats[K.EEG].n_samples == sum(c.n_times for c in seen[K.EEG])
    assert stats[K.EEG].measured_sfreq == pytest.approx(256, rel=1e-6) and stats[K.EEG].n_gaps == 0


class ScriptedBoard:
    """Returns pre-scripted DEFAULT-preset timestamp tables, one per poll."""

    def __init__(self, scripts: list[list[float]]) -> None:
        self.descr = BoardShim.get_board_descr(MUSE2, DEFAULT)
        self.scripts = scripts

    def prepare_session(self) -> None: ...
    def config_board(self, config: str) -> str:
        return ""

    def start_stream(self, num_samples: int = 0, streamer_params: str | None = None) -> None: ...
    def stop_stream(self) -> None: ...
    def release_session(self) -> None: ...

    def get_board_data_count(self, preset: int = DEFAULT) -> int:
        return len(self.scripts[0]) if preset == DEFAULT and self.scripts else 0

    def get_board_data(self, num_samples: int | None = None, preset: int = DEFAULT) -> NDArray[np.float64]:
        ts = np.asarray(self.scripts.pop(0), dtype=float)
        table = np.zeros((int(self.descr["num_rows"]), ts.size))
        table[int(self.descr["timestamp_channel"])] = ts
        table[self.descr["eeg_channels"]] = np.arange(ts.size)
        return table


def _scripted_source(clock: ManualClock, scripts: list[list[float]]) -> BrainFlowSource:
    board = ScriptedBoard(scripts)
    return BrainFlowSource.muse(
        "muse-2",
        ppg_preset=None,
        clock=clock,
        board_factory=lambda b, p: board,
        unix_time=lambda: 1000.0 + clock.now(),
        background_reconnect=False,
    )


def test_duplicate_and_backward_samples_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock(10.0)  # offset = 1000 + 10 - 10: session time = unix - 1000
    source = _scripted_source(
        clock, [[1010.0, 1010.1, 1010.1, 1010.2], [1010.2, 1010.15, 1010.3, float("nan"), 1010.4, 1010.35]]
    )
    source.start()
    caplog.set_level(logging.WARNING, logger="sensors.brainflow_source")
    (a,) = source.poll(clock.advance(0.5))
    np.testing.assert_allclose(a.times, [10.0, 10.1, 10.2])
    np.testing.assert_array_equal(a.data[0], [0, 1, 3])  # the second 10.1 was dropped
    (b,) = source.poll(clock.advance(0.5))
    np.testing.assert_allclose(b.times, [10.3, 10.4])
    np.testing.assert_array_equal(b.data[0], [2, 4])
    drops = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(drops) == 2 and "dropped 1 of 4" in drops[0] and "dropped 4 of 6" in drops[1]
    assert source.stats()[K.EEG].n_dropped == 5 and source.stats()[K.ACCEL].n_dropped == 0
    source.stop()


def test_far_timestamps_are_reanchored(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock(5.0)
    source = _scripted_source(clock, [[1.0e6, 1.0e6 + 0.5]])  # e.g. a file with old timestamps
    source.start()
    caplog.set_level(logging.WARNING, logger="sensors.brainflow_source")
    (chunk,) = source.poll(clock.now())
    np.testing.assert_allclose(chunk.times, [5.0, 5.5])
    assert any("re-anchoring" in r.getMessage() for r in caplog.records)
    source.stop()


# ---------------------------------------------------------------------------------------------
# Watchdog: stall -> SIGNAL_LOST -> reconnect with back-off -> STREAMING
# ---------------------------------------------------------------------------------------------
def test_stall_reconnect_backoff_and_recovery(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    fake = FakeMuse(clock)
    source = _fake_source(clock, fake, stall_s=3.0)
    caplog.set_level(logging.INFO)
    source.start()
    statuses: dict[float, SourceStatus] = {}
    chunks: list[Chunk] = []
    while clock.now() < 80.0:
        t = clock.advance(0.25)  # exact in binary floating point
        chunks += source.poll(t)  # never raises
        statuses[t] = source.status
        if t == 2.0:  # walk out of range: silent, and prepare_session fails from now on
            fake.delivering, fake.in_range = False, False
        if t == 40.0:  # back in range; the next scheduled attempt reconnects
            fake.delivering, fake.in_range = True, True

    assert statuses[4.75] is S.STREAMING  # last sample at 2.0: 2.75 s of silence
    assert statuses[5.0] is S.SIGNAL_LOST
    prepares = [t for name, t in fake.calls if name == "prepare_session"]
    # start at 0, then attempts at loss (5.0) and after 1, 2, 4, 8, 16 and 30 s (capped).
    assert prepares == [0.0, 5.0, 6.0, 8.0, 12.0, 20.0, 36.0, 66.0]
    assert all(statuses[t] is S.SIGNAL_LOST for t in statuses if 5.0 <= t <= 66.0)
    assert statuses[66.25] is S.STREAMING and statuses[80.0] is S.STREAMING
    assert source.watchdog.total_attempts == 7 and source.watchdog.attempts == 0

    eeg_times = np.concatenate([c.times for c in chunks if c.kind == K.EEG])
    assert np.all(np.diff(eeg_times) > 0)
    assert eeg_times[eeg_times < 40].max() <= 2.0 and eeg_times[eeg_times > 40].min() >= 66.0
    assert source.stats()[K.EEG].n_gaps == 1 and source.stats()[K.EEG].max_gap_s >= 64.0

    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert any(level == logging.WARNING and "signal lost" in m for level, m in messages)
    failed = [m for level, m in messages if level == logging.WARNING and "failed" in m]
    assert len(failed) == 6 and "BOARD_NOT_READY" in failed[0]
    assert any(level == logging.INFO and "streaming again" in m for level, m in messages)
    source.stop()


def test_poll_survives_any_board_exception() -> None:
    clock = ManualClock()
    fake = FakeMuse(clock)
    source = _fake_source(clock, fake, stall_s=1.0)
    source.start()
    fake.delivering = False
    fake.prepare_error = RuntimeError("driver exploded")
    for _ in range(40):
        assert source.poll(clock.advance(0.25)) == []
    assert source.status is S.SIGNAL_LOST and source.watchdog.total_attempts >= 3
    source.stop()


def test_restarted_but_silent_board_gets_a_full_stall_window() -> None:
    clock = ManualClock()
    fake = FakeMuse(clock)
    source = _fake_source(clock, fake, stall_s=3.0)
    source.start()
    fake.delivering = False  # connects fine, never sends
    while clock.now() < 20.0:
        source.poll(clock.advance(0.25))
    prepares = [t for name, t in fake.calls if name == "prepare_session"]
    # Lost at 3.0; each successful restart waits max(back-off, stall_s) = 3, 3, 4, 8 s.
    assert prepares == [0.0, 3.0, 6.0, 9.0, 13.0]
    source.stop()


def test_background_reconnect_does_not_block_poll() -> None:
    clock = ManualClock()
    fake = FakeMuse(clock)
    source = _fake_source(clock, fake, background=True, stall_s=1.0)
    source.start()
    fake.delivering = False
    fake.gate = threading.Event()  # prepare_session now blocks like a Bluetooth scan
    fake.started.clear()
    t0 = time.perf_counter()
    while source.status is S.STREAMING:  # lost at 1.0 s; the first attempt starts in that poll
        assert source.poll(clock.advance(0.25)) == []
        assert clock.now() < 10
    for _ in range(5):  # attempt in flight: poll returns at once
        assert source.poll(clock.advance(0.25)) == []
    assert time.perf_counter() - t0 < 5.0  # generous: only to fail loudly if poll ever blocked
    assert source.status is S.SIGNAL_LOST
    fake.delivering = True
    fake.gate.set()
    assert fake.started.wait(10)
    deadline = time.monotonic() + 10
    chunks: list[Chunk] = []
    while source.status is not S.STREAMING and time.monotonic() < deadline:
        chunks += source.poll(clock.advance(0.25))
    assert source.status is S.STREAMING and chunks
    source.stop()


# ---------------------------------------------------------------------------------------------
# Errors: no adapter / no headband
# ---------------------------------------------------------------------------------------------
def test_connect_failure_is_one_clear_sensor_error() -> None:
    def no_adapter(board_id: int, params: BrainFlowInputParams) -> FakeMuse:
        fake = FakeMuse(ManualClock())
        fake.prepare_error = BrainFlowError(
            "unable to prepare streaming session", int(BrainFlowExitCodes.UNABLE_TO_OPEN_PORT_ERROR)
        )
        return fake

    source = BrainFlowSource.muse("muse-2", serial="Muse-1A2B", board_factory=no_adapter)
    with pytest.raises(SensorError) as info:
        source.start()
    message = str(info.value)
    assert "Muse 2 named Muse-1A2B" in message and "no Bluetooth adapter" in message
    checklist = ("switched on", "charged and powered on", "phone", "--mac", "--serial", "UNABLE_TO_OPEN_PORT")
    for needle in checklist:
        assert needle in message
    assert isinstance(info.value.__cause__, BrainFlowError)
    assert source.status is S.IDLE


def test_real_muse_without_adapter_fails_fast() -> None:
    """This machine has no Bluetooth: BrainFlow's native driver gives up in milliseconds."""
    adapters = bluetooth_adapters()
    if adapters != []:
        pytest.skip(f"Bluetooth adapters present or unknown ({adapters}); a headband might answer")
    source = BrainFlowSource.muse("muse-2", timeout_s=1)
    t0 = time.perf_counter()
    with pytest.raises(SensorError, match="no Bluetooth adapter was found") as info:
        source.start()
    elapsed = time.perf_counter() - t0
    assert elapsed < 2.0, f"took {elapsed:.2f} s"  # measured about 0.01 s here
    assert "/sys/class/bluetooth" in str(info.value) and "--mac" in str(info.value)
    assert info.value.__cause__ is not None


# ---------------------------------------------------------------------------------------------
# Playback files
# ---------------------------------------------------------------------------------------------
def _write_muse_files(folder: Path, seconds: float, t0: float) -> dict[int, Path]:
    """Tiny Muse 2 recording in BrainFlow's playback format (DataFilter.write_file)."""
    paths = {}
    for preset, name in ((DEFAULT, "default.csv"), (AUXILIARY, "aux.csv"), (ANCILLARY, "anc.csv")):
        d = BoardShim.get_board_descr(MUSE2, preset)
        sfreq = float(d["sampling_rate"])
        n = int(seconds * sfreq)
        table = np.zeros((int(d["num_rows"]), n))
        table[int(d["timestamp_channel"])] = t0 + np.arange(n) / sfreq
        table[int(d["package_num_channel"])] = np.arange(n) % 65536
        for key in ("eeg_channels", "accel_channels", "gyro_channels", "ppg_channels"):
            for i, row in enumerate(d.get(key, [])):
                table[row] = 100.0 * (i + 1) + np.arange(n) % 7
        paths[preset] = folder / name
        DataFilter.write_file(table, str(paths[preset]), "w")
    return paths


def test_playback_file_checks(tmp_path: Path) -> None:
    paths = _write_muse_files(tmp_path, 0.1, 1.7e9)
    missing = BrainFlowSource.playback(tmp_path / "nope.csv")
    with pytest.raises(SensorError, match="does not exist"):
        missing.start()
    swapped = BrainFlowSource.playback(paths[DEFAULT], aux=paths[ANCILLARY])  # 6 columns, aux needs 9
    with pytest.raises(SensorError, match="expected 9 columns") as info:
        swapped.start()
    assert "aux = accel/gyro" in str(info.value)
    assert [s.kind for s in BrainFlowSource.playback(paths[DEFAULT]).streams] == [K.EEG]


@pytest.mark.slow
def test_playback_of_written_files_replays_values_and_stops(tmp_path: Path) -> None:
    paths = _write_muse_files(tmp_path, 1.0, 1.6e9)  # old timestamps: playback re-stamps them
    clock = MonotonicClock()
    source = BrainFlowSource.playback(
        paths[DEFAULT], paths[AUXILIARY], paths[ANCILLARY], clock=clock, stall_s=0.5
    )
    with source:
        # 1 s of file plus the 0.5 s stall: poll until the end of file is reported (about 1.5 s
        # on a quiet machine; the bound leaves room for a loaded one)
        chunks = _collect(source, clock, 10.0, until=lambda: source.status is S.SIGNAL_LOST)
        status = source.status
        stats = source.stats()
    for c in chunks:
        _assert_valid(c, source)
    assert status is S.SIGNAL_LOST  # end of file, no loop: reported, not reconnected
    assert source.watchdog.total_attempts == 0
    for kind, n_file in ((K.EEG, 256), (K.ACCEL, 52), (K.GYRO, 52), (K.PPG, 64)):
        data, times = _concat(chunks, kind)
        assert data.shape[1] + stats[kind].n_dropped == n_file  # every line came back
        np.testing.assert_array_equal(data[:, :7] - data[:, :1], np.tile(np.arange(7), (data.shape[0], 1)))
        assert abs(times[0] - 0.0) < 1.0  # live session clock, not the file's 2020 timestamps
    eeg, _ = _concat(chunks, K.EEG)
    np.testing.assert_array_equal(eeg[:, 0], [100.0, 200.0, 300.0, 400.0])


# ---------------------------------------------------------------------------------------------
# BrainFlow's own boards in real time (slow)
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_synthetic_board_streams_chunks() -> None:
    clock = MonotonicClock()
    with BrainFlowSource.synthetic(clock=clock) as source:
        chunks = _collect(source, clock, 1.2)
        assert source.status is S.STREAMING
        stats = source.stats()
    assert source.status is S.STOPPED
    assert {c.kind for c in chunks} == {K.EEG, K.ACCEL, K.GYRO, K.PPG}
    for c in chunks:
        _assert_valid(c, source)
    eeg, times = _concat(chunks, K.EEG)
    assert eeg.shape[0] == 4 and np.all(np.diff(times) > 0)
    # Real-time delivery at 250 Hz; 5 % allows for start-up and the 1.2 s window's edges.
    assert stats[K.EEG].measured_sfreq == pytest.approx(250, rel=0.05)
    assert stats[K.EEG].n_samples > 200


@pytest.mark.slow
def test_real_muse2_files_replay_through_playback_board(shared_data: Path) -> None:
    folder = shared_data / "muse2_brainflow"
    files = [folder / name for name in MUSE_FILES]
    clock = MonotonicClock()
    source = BrainFlowSource.playback(*files, master="muse-2", clock=clock)
    specs = {s.kind: s for s in source.streams}
    # Nominal rates from BrainFlow's MUSE_2_BOARD descriptor (the 2 % criterion: exact here).
    for kind, rate in ((K.EEG, 256), (K.ACCEL, 52), (K.GYRO, 52), (K.PPG, 64)):
        assert specs[kind].sfreq == pytest.approx(rate, rel=0.02)
    with source:
        chunks = _collect(source, clock, 2.5)
        stats = source.stats()
    for c in chunks:
        _assert_valid(c, source)
    assert specs[K.EEG].ch_names == ("TP9", "AF7", "AF8", "TP10")
    tables = {p: np.loadtxt(f) for p, f in zip((DEFAULT, AUXILIARY, ANCILLARY), files, strict=True)}
    ts_col = {p: int(BoardShim.get_board_descr(MUSE2, p)["timestamp_channel"]) for p in tables}
    report = []
    for kind, preset, cols in (
        (K.EEG, DEFAULT, [1, 2, 3, 4]),
        (K.ACCEL, AUXILIARY, [1, 2, 3]),
        (K.GYRO, AUXILIARY, [4, 5, 6]),
        (K.PPG, ANCILLARY, [1, 2, 3]),
    ):
        data, times = _concat(chunks, kind)
        n = data.shape[1]
        assert stats[kind].n_dropped == 0
        # Values pass through unchanged, row by row, in file order.
        np.testing.assert_array_equal(data, tables[preset][:n, cols].T)
        file_ts = tables[preset][:n, ts_col[preset]]
        file_rate = (n - 1) / (file_ts[-1] - file_ts[0])
        measured = stats[kind].measured_sfreq
        nominal = specs[kind].sfreq
        report.append(f"{kind.value}: {measured:.1f} Hz (file {file_rate:.1f}, nominal {nominal:g})")
        # Playback paces by the file's own timestamps and re-stamps with the wall clock: on a
        # quiet machine the replayed rate is the file's to within 2 % (see the log line).  Under
        # load BrainFlow's playback thread can fall behind and never catch up, which lowers the
        # wall-clock rate; that is the machine, not the data path, so the test only requires
        # pacing (never faster than the file, not stalled) and leaves the figure to the log.
        assert file_rate * 0.85 <= measured <= file_rate * 1.02, report
        # Not compared with 52 Hz for accel/gyro: the recording itself runs fast, 54.2 Hz over
        # its first 2.5 s and 53.5 Hz over the whole file (README).
    logging.getLogger(__name__).info("measured playback rates: %s", "; ".join(report))
