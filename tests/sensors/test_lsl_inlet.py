"""LslInletSource against LSL producers that follow muselsl, BlueMuse and Petal Metrics conventions.

The producers here are pylsl outlets built the way each program builds its own (names, types,
channel labels, units, source ids, as read in their sources or docs).  Everything runs on
loopback: tests/conftest.py points LSLAPICFG at sensors/lsl_api.cfg before pylsl loads.  Each
test uses uuid-suffixed names so parallel runs never see each other's streams, short resolve
timeouts, and bounded waits for the data that LSL delivers in real time.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from adaptive.errors import ConfigError, SensorError
from adaptive.types import Chunk, SignalKind, SourceStatus
from sensors.clocks import ManualClock, MonotonicClock
from sensors.lsl_inlet import (
    LslInletSource,
    LslStreamDescription,
    _pick,
    _Selector,
    list_lsl_streams,
    map_lsl_channels,
    unit_scale,
)
from sensors.lsl_scope import (
    LSL_SCOPES,
    apply_lsl_scope,
    check_lsl_config,
    current_lsl_scope,
    lsl_config_path,
)
from sensors.watchdog import WatchdogConfig

pylsl = pytest.importorskip("pylsl")

S = SignalKind
WAIT_S = 5.0  # upper bound for LSL delivery on loopback (typically a few ms)


# ---------------------------------------------------------------------------------------------
# Pure: units and channel conventions
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "unit", "factor", "known"),
    [
        (S.EEG, "microvolts", 1.0, True),  # muselsl, BlueMuse, calmloop
        (S.EEG, "uV", 1.0, True),
        (S.EEG, "µV", 1.0, True),
        (S.EEG, "millivolts", 1e3, True),
        (S.EEG, "volts", 1e6, True),
        (S.EEG, "0", 1e6, True),  # mne-lsl: FIFF exponent, data in volts
        (S.EEG, "-6", 1.0, True),  # mne-lsl: micro
        (S.EEG, None, 1.0, False),
        (S.EEG, "furlongs", 1.0, False),
        (S.ACCEL, "g", 1.0, True),
        (S.ACCEL, "mg", 1e-3, True),
        (S.ACCEL, "m/s^2", 1 / 9.80665, True),
        (S.GYRO, "dps", 1.0, True),  # muselsl / BlueMuse
        (S.GYRO, "deg/s", 1.0, True),
        (S.GYRO, "rad/s", 180 / math.pi, True),
        (S.PPG, "mmHg", 1.0, True),  # muselsl's label; the values are raw counts
        (S.PPG, None, 1.0, True),
    ],
)
def test_unit_scale(kind: SignalKind, unit: str | None, factor: float, known: bool) -> None:
    got, ok = unit_scale(kind, unit)
    assert got == pytest.approx(factor, rel=1e-12)
    assert ok is known


def test_map_muselsl_streams() -> None:
    eeg = map_lsl_channels(S.EEG, ["TP9", "AF7", "AF8", "TP10", "Right AUX"], ["microvolts"] * 5, 5)
    assert eeg.ch_names == ("TP9", "AF7", "AF8", "TP10", "Right AUX")
    assert eeg.rows == (0, 1, 2, 3, 4) and eeg.scales == (1.0,) * 5 and not eeg.assumed_units
    ppg = map_lsl_channels(S.PPG, ["PPG1", "PPG2", "PPG3"], ["mmHg"] * 3, 3)
    assert ppg.ch_names == ("ppg1", "ppg2", "ppg3")  # BrainFlow's names for the same Muse characteristics
    acc = map_lsl_channels(S.ACCEL, ["X", "Y", "Z"], ["g"] * 3, 3)
    assert acc.ch_names == ("accel_x", "accel_y", "accel_z")
    gyro = map_lsl_channels(S.GYRO, ["X", "Y", "Z"], ["dps"] * 3, 3)
    assert gyro.ch_names == ("gyro_x", "gyro_y", "gyro_z") and gyro.scales == (1.0, 1.0, 1.0)


def test_map_bluemuse_secondary_timestamps_are_dropped() -> None:
    labels = ["TP9", "AF7", "AF8", "TP10", "Secondary Timestamp (Base)", "Secondary Timestamp (Remainder)"]
    m = map_lsl_channels(S.EEG, labels, ["microvolts"] * 4 + ["", ""], 6)
    assert m.rows == (0, 1, 2, 3)
    assert m.ch_names == ("TP9", "AF7", "AF8", "TP10")
    assert m.dropped == tuple(labels[4:])


def test_map_petal_conventions() -> None:
    # older Petal Metrics: PetalStream_eeg without labels, 5 channels in Muse order
    assert map_lsl_channels(S.EEG, None, None, 5).ch_names == ("TP9", "AF7", "AF8", "TP10", "AUX")
    assert map_lsl_channels(S.EEG, None, None, 4).ch_names == ("TP9", "AF7", "AF8", "TP10")
    assert map_lsl_channels(S.EEG, None, None, 8).ch_names == tuple(f"ch{i}" for i in range(1, 9))
    # Petal PPG: ambient, ir, red (current app capitalises them)
    for labels in (["ambient", "ir", "red"], ["Ambient", "IR", "Red"]):
        assert map_lsl_channels(S.PPG, labels, None, 3).ch_names == ("PPG_AMBIENT", "PPG_IR", "PPG_RED")
    unl = map_lsl_channels(S.ACCEL, None, None, 3)
    assert unl.ch_names == ("accel_x", "accel_y", "accel_z") and unl.assumed_units == unl.ch_names


@pytest.mark.parametrize("labels", [["ACC_X", "ACC_Y", "ACC_Z"], ["accel_x", "accel_y", "accel_z"], ["x", "y", "z"],
                                    ["Accelerometer X", "Accelerometer Y", "Accelerometer Z"]])
def test_map_axis_spellings(labels: list[str]) -> None:
    assert map_lsl_channels(S.ACCEL, labels, None, 3).ch_names == ("accel_x", "accel_y", "accel_z")


def test_map_edge_cases() -> None:
    assert map_lsl_channels(S.EEG, ["Fz", "Fz"], None, 2).ch_names == ("Fz", "Fz_1")
    assert map_lsl_channels(S.EEG, ["Fz"], None, 2).ch_names == ("Fz", "ch2")  # short label list
    with pytest.raises(ValueError, match="timestamp"):
        map_lsl_channels(S.PPG, ["timestamp"], None, 1)
    with pytest.raises(ValueError, match="n_channels"):
        map_lsl_channels(S.PPG, None, None, 0)


def _desc(name: str, stype: str, source_id: str = "", uid: str | None = None) -> LslStreamDescription:
    return LslStreamDescription(name, stype, source_id, "host", 256.0, 4, "float32", uid or uuid.uuid4().hex)


def test_selector_parsing_and_matching() -> None:
    sel = _Selector.parse(S.EEG, "Muse")
    assert sel.field_ is None and sel.matches(_desc("muse", "PPG")) and sel.matches(_desc("X", "muse"))
    assert _Selector.parse(S.EEG, "source_id:Muse00:55").field_ == "source_id"
    assert _Selector.parse(S.EEG, "name:a:b").value == "a:b"
    assert _Selector.parse(S.EEG, "odd:thing").field_ is None  # unknown prefix: part of the name
    assert "translate(type," in sel.predicate() and "'muse'" in sel.predicate()
    assert _Selector.parse(S.EEG, "it's").predicate().endswith('"it\'s"')
    for bad in ("", "  ", "a'b\"c"):
        with pytest.raises(ValueError, match="'eeg'"):
            _Selector.parse(S.EEG, bad)


def test_pick_prefers_type_then_exact_name_and_reports_ambiguity() -> None:
    muse = [_desc("Muse", t, "Muse00:55") for t in ("EEG", "PPG", "ACC", "GYRO")]  # muselsl: one name
    assert _pick(_Selector.parse(S.PPG, "Muse"), muse).type == "PPG"  # type: ignore[union-attr]
    assert _pick(_Selector.parse(S.ACCEL, "muse"), muse).type == "ACC"  # type: ignore[union-attr]
    assert _pick(_Selector.parse(S.EEG, "nothing"), muse) is None
    two = [_desc("Muse", "EEG", "a"), _desc("Muse", "EEG", "b")]
    with pytest.raises(SensorError, match="matches 2 LSL streams.*source_id:a"):
        _pick(_Selector.parse(S.EEG, "Muse"), two)


def test_description_kind_guess() -> None:
    assert _desc("PetalStream_ppg", "").kind is S.PPG
    assert _desc("PetalStream_acceleration", "").kind is S.ACCEL
    assert _desc("PetalMetrics_Gyro", "Gyroscope").kind is S.GYRO
    assert _desc("Muse", "ACC").kind is S.ACCEL
    assert _desc("Muse", "Telemetry").kind is None


# ---------------------------------------------------------------------------------------------
# Pure: scope configuration
# ---------------------------------------------------------------------------------------------
def _cfg(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith((";", "#", "[")):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def test_scope_config_files() -> None:
    machine = _cfg(lsl_config_path("machine"))
    assert machine["ResolveScope"] == "machine"
    assert machine["Interfaces"] == "{127.0.0.1}" and machine["ListenAddress"] == "127.0.0.1"
    assert machine["IPv6"] == "disable" and machine["KnownPeers"] == "{127.0.0.1}"
    for scope in ("link", "site"):
        cfg = _cfg(lsl_config_path(scope))
        assert cfg["ResolveScope"] == scope
        assert "Interfaces" not in cfg and "ListenAddress" not in cfg  # no interface restriction
        assert "WARNING" in lsl_config_path(scope).read_text()
    assert LSL_SCOPES == ("machine", "link", "site")
    with pytest.raises(ConfigError, match="'scope'.*'machine'"):
        lsl_config_path("global")


def test_apply_lsl_scope_before_and_after_pylsl_loads(caplog: pytest.LogCaptureFixture) -> None:
    env: dict[str, str] = {}
    assert apply_lsl_scope("machine", environ=env, modules={}) == lsl_config_path("machine")
    assert env["LSLAPICFG"] == str(lsl_config_path("machine"))
    assert current_lsl_scope(env) == "machine"
    with caplog.at_level(logging.WARNING, logger="sensors.lsl_scope"):
        apply_lsl_scope("site", environ=env, modules={})
    assert current_lsl_scope(env) == "site"
    assert "no authentication" in caplog.text
    # pylsl already loaded with another file: refuse, naming both
    env = {"LSLAPICFG": str(lsl_config_path("machine"))}
    with pytest.raises(ConfigError, match="already imported.*apply_lsl_scope"):
        apply_lsl_scope("link", environ=env, modules={"pylsl": object()})
    assert env["LSLAPICFG"] == str(lsl_config_path("machine"))  # unchanged
    with pytest.raises(ConfigError, match="unset"):
        apply_lsl_scope("machine", environ={}, modules={"mne_lsl": object()})
    # same file: fine even after import (what conftest.py does for the tests)
    apply_lsl_scope("machine", environ=env, modules={"pylsl": object()})
    assert current_lsl_scope({"LSLAPICFG": "/etc/lsl_api/lsl_api.cfg"}) is None


def test_check_lsl_config(tmp_path: Path) -> None:
    with pytest.raises(SensorError, match="LSLAPICFG is not set.*every network interface"):
        check_lsl_config({})
    with pytest.raises(SensorError, match="does not exist"):
        check_lsl_config({"LSLAPICFG": str(tmp_path / "missing.cfg")})
    assert check_lsl_config({"LSLAPICFG": str(lsl_config_path())}) == lsl_config_path()


def test_source_refuses_without_lsl_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LSLAPICFG")
    with pytest.raises(SensorError, match="LSLAPICFG"):
        LslInletSource(eeg="EEG", timeout_s=0.1)
    with pytest.raises(SensorError, match="LSLAPICFG"):
        list_lsl_streams(0.1)


def test_source_argument_errors() -> None:
    with pytest.raises(ValueError, match="at least one stream"):
        LslInletSource()
    with pytest.raises(ValueError, match="'timeout_s'"):
        LslInletSource(eeg="EEG", timeout_s=0)


# ---------------------------------------------------------------------------------------------
# LSL producers (loopback)
# ---------------------------------------------------------------------------------------------
class Producer:
    """A pylsl outlet shaped like one stream of a Muse LSL program."""

    def __init__(
        self,
        name: str,
        stype: str,
        labels: Sequence[str] | None,
        unit: str | None,
        sfreq: float,
        source_id: str,
        fmt: int = pylsl.cf_float32,
        n_channels: int | None = None,
    ) -> None:
        n = n_channels if n_channels is not None else len(labels or ())
        info = pylsl.StreamInfo(name, stype, n, sfreq, fmt, source_id)
        if labels is not None:
            chans = info.desc().append_child("channels")
            for label in labels:
                ch = chans.append_child("channel")
                ch.append_child_value("label", label)
                if unit is not None:
                    ch.append_child_value("unit", unit)
                ch.append_child_value("type", stype)
        self.sfreq, self.n = sfreq, n
        self.outlet: pylsl.StreamOutlet | None = pylsl.StreamOutlet(info)
        self.k = 0  # next ramp value

    def push(self, n_samples: int, t_last: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Push a ramp (channel c = 1000 c + sample index), stamped on LSL time; return (data, stamps)."""
        assert self.outlet is not None
        idx = np.arange(self.k, self.k + n_samples, dtype=np.float64)
        data = idx[:, None] + 1000.0 * np.arange(self.n)[None, :]
        t_last = pylsl.local_clock() if t_last is None else t_last
        stamps = t_last - (n_samples - 1 - np.arange(n_samples)) / self.sfreq
        self.outlet.push_chunk(data.astype(np.float32), [float(t) for t in stamps])
        self.k += n_samples
        return data, stamps

    def close(self) -> None:
        self.outlet = None


@pytest.fixture
def uid() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def producers() -> Iterator[list[Producer]]:
    made: list[Producer] = []
    yield made
    for p in made:
        p.close()


def collect(
    src: LslInletSource,
    now: Callable[[], float],
    done: Callable[[dict[SignalKind, list[Chunk]]], bool],
    timeout_s: float = WAIT_S,
    tick: Callable[[], None] | None = None,
) -> dict[SignalKind, list[Chunk]]:
    """Poll until ``done(chunks)`` or the deadline; LSL delivers in real time, so this waits."""
    got: dict[SignalKind, list[Chunk]] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if tick is not None:
            tick()
        for c in src.poll(now()):
            got.setdefault(c.kind, []).append(c)
        if done(got):
            return got
        time.sleep(0.005)
    return got


def wait_listed(keys: set[str]) -> dict[str, LslStreamDescription]:
    """Wait (at most 2 WAIT_S) until every producer with these keys answers a listing.

    A key is ``"source_id/name"``.  New outlets answer discovery queries once their responder
    runs; on a loaded machine that can take longer than one short query, so tests that need
    all of them wait first.  Returns the descriptions by key.
    """
    deadline = time.monotonic() + 2 * WAIT_S
    seen: dict[str, LslStreamDescription] = {}
    while time.monotonic() < deadline:
        for d in list_lsl_streams(1.5):  # a short query misses answers that come late
            if f"{d.source_id}/{d.name}" in keys:
                seen[f"{d.source_id}/{d.name}"] = d
        if set(seen) == keys:
            return seen
    visible = sorted(f"{d.source_id}/{d.name}" for d in list_lsl_streams(1.5))
    raise AssertionError(
        f"LSL producers {sorted(keys - set(seen))} not listed within {2 * WAIT_S} s; visible: {visible}"
    )


def n_samples(chunks: Sequence[Chunk]) -> int:
    return sum(c.n_times for c in chunks)


def joined(chunks: Sequence[Chunk]) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([c.data for c in chunks], axis=1), np.concatenate([c.times for c in chunks])


@pytest.mark.lsl
def test_muselsl_producer(uid: str, producers: list[Producer]) -> None:
    """muselsl: four streams all named 'Muse', told apart by type; units microvolts / g / dps."""
    name, sid = f"Muse-{uid}", f"Muse00:55:DA:{uid}"
    eeg = Producer(name, "EEG", ["TP9", "AF7", "AF8", "TP10", "Right AUX"], "microvolts", 256, sid)
    ppg = Producer(name, "PPG", ["PPG1", "PPG2", "PPG3"], "mmHg", 64, sid)
    acc = Producer(name, "ACC", ["X", "Y", "Z"], "g", 52, sid)
    gyro = Producer(name, "GYRO", ["X", "Y", "Z"], "dps", 52, sid)
    producers += [eeg, ppg, acc, gyro]
    clock = MonotonicClock()
    src = LslInletSource(eeg=name, ppg=name, accel=name, gyro=name, timeout_s=3.0, clock=clock)
    specs = {s.kind: s for s in src.streams}
    assert [s.kind for s in src.streams] == [S.EEG, S.PPG, S.ACCEL, S.GYRO]
    assert specs[S.EEG].ch_names == ("TP9", "AF7", "AF8", "TP10", "Right AUX") and specs[S.EEG].sfreq == 256
    assert specs[S.PPG].ch_names == ("ppg1", "ppg2", "ppg3") and specs[S.PPG].sfreq == 64
    assert specs[S.ACCEL].ch_names == ("accel_x", "accel_y", "accel_z") and specs[S.ACCEL].sfreq == 52
    assert specs[S.GYRO].ch_names == ("gyro_x", "gyro_y", "gyro_z")
    assert src.status is SourceStatus.IDLE and src.poll(0.0) == []
    src.start()
    try:
        assert src.status is SourceStatus.STREAMING
        # muselsl pushes 12 EEG samples per packet, 6 PPG, 1 accel/gyro; send 1 s of each,
        # stamped as a real-time producer would (packet after packet, on LSL time)
        t0 = pylsl.local_clock()

        def packets(p: Producer, size: int, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
            return [p.push(size, t_last=t0 + (i + 1) * size / p.sfreq) for i in range(count)]

        pushed = {S.EEG: packets(eeg, 12, 21), S.PPG: packets(ppg, 6, 11),
                  S.ACCEL: packets(acc, 1, 52), S.GYRO: packets(gyro, 1, 52)}
        want = {k: sum(d.shape[0] for d, _ in v) for k, v in pushed.items()}
        got = collect(src, clock.now, lambda g: all(n_samples(g.get(k, [])) >= n for k, n in want.items()))
        offset = src.session_offset
        for kind, chunks in got.items():
            assert n_samples(chunks) == want[kind], kind  # nothing lost, nothing duplicated
            data, times = joined(chunks)
            sent = np.concatenate([d for d, _ in pushed[kind]])
            stamps = np.concatenate([t for _, t in pushed[kind]])
            np.testing.assert_array_equal(data, sent.T)  # float32 holds these integers exactly
            assert np.all(np.diff(times) > 0)
            # session time = LSL time - offset + clock correction; liblsl measures the correction
            # even on loopback, where it is tens of microseconds of probe noise: 1 ms tolerance
            np.testing.assert_allclose(times, stamps - offset, atol=1e-3, rtol=0)
            np.testing.assert_allclose(np.diff(times), np.diff(stamps), atol=1e-6)  # spacing exact
            assert all(c.sfreq == specs[kind].sfreq and c.ch_names == specs[kind].ch_names for c in chunks)
        assert all(v.n_samples == want[k] for k, v in src.stats().items())
    finally:
        src.stop()
    assert src.status is SourceStatus.STOPPED and src.poll(clock.now()) == []


@pytest.mark.lsl
def test_bluemuse_producer_unix_time_and_secondary_timestamps(
    uid: str, producers: list[Producer], caplog: pytest.LogCaptureFixture
) -> None:
    """BlueMuse: '<device> (<MAC>) EEG' names, type Accelerometer, source_id 'BlueMuse', optional
    secondary-timestamp channels and (a setting) Unix-time stamps."""
    dev = f"Muse-{uid} (00:55:DA:B0:{uid[:2]}:{uid[2:4]})"
    labels = ["TP9", "AF7", "AF8", "TP10", "Secondary Timestamp (Base)", "Secondary Timestamp (Remainder)"]
    eeg = Producer(f"{dev} EEG", "EEG", labels, "microvolts", 256, "BlueMuse")
    acc = Producer(f"{dev} Accelerometer", "Accelerometer", ["X", "Y", "Z"], "g", 52, "BlueMuse")
    producers += [eeg, acc]
    clock = MonotonicClock()
    src = LslInletSource(eeg=f"{dev} EEG", accel=f"name:{dev} accelerometer", timeout_s=3.0, clock=clock)
    assert src.streams[0].ch_names == ("TP9", "AF7", "AF8", "TP10")
    assert src.channel_maps[S.EEG].dropped == tuple(labels[4:])
    assert src.streams[0].extra["producer"] == "BlueMuse"
    src.start()
    try:
        unix = time.time()
        with caplog.at_level(logging.WARNING, logger="sensors.lsl_inlet"):
            d1, _ = eeg.push(12, t_last=unix)
            d2, _ = eeg.push(12, t_last=unix + 12 / 256)
            acc.push(3)
            got = collect(src, clock.now, lambda g: n_samples(g.get(S.EEG, [])) >= 24 and S.ACCEL in g)
        data, times = joined(got[S.EEG])
        np.testing.assert_array_equal(data, np.concatenate([d1, d2])[:, :4].T)
        assert "re-anchoring" in caplog.text
        # the Unix-stamped stream is re-anchored on its first sample: within a second of now
        assert abs(times[0] - clock.now()) < 1.0
        np.testing.assert_allclose(np.diff(times), 1 / 256, atol=1e-6)
    finally:
        src.stop()


@pytest.mark.lsl
def test_petal_producer_found_by_auto(uid: str, producers: list[Producer]) -> None:
    """Older Petal Metrics: PetalStream_* names, no channel metadata; found by name ending."""
    eeg = Producer("PetalStream_eeg", "EEG", None, None, 256, f"petal-{uid}", n_channels=5)
    ppg = Producer("PetalStream_ppg", "", ["ambient", "ir", "red"], None, 64, f"petal-{uid}")
    acc = Producer("PetalStream_acceleration", "", ["x", "y", "z"], None, 52, f"petal-{uid}")
    tele = Producer("PetalStream_telemetry", "", ["battery", "fuel", "temp"], None, 0.1, f"petal-{uid}")
    producers += [eeg, ppg, acc, tele]
    names = ("eeg", "ppg", "acceleration", "telemetry")
    wait_listed({f"petal-{uid}/PetalStream_{n}" for n in names})  # auto() takes what answers first
    src = LslInletSource.auto(timeout_s=3.0, accept=lambda d: d.source_id == f"petal-{uid}")
    kinds = {s.kind: s for s in src.streams}
    assert set(kinds) == {S.EEG, S.PPG, S.ACCEL}
    assert kinds[S.EEG].ch_names == ("TP9", "AF7", "AF8", "TP10", "AUX")
    assert kinds[S.PPG].ch_names == ("PPG_AMBIENT", "PPG_IR", "PPG_RED")
    assert kinds[S.ACCEL].ch_names == ("accel_x", "accel_y", "accel_z")
    assert kinds[S.PPG].extra["producer"] == "Petal Metrics"
    src.stop()


@pytest.mark.lsl
def test_units_are_converted(uid: str, producers: list[Producer]) -> None:
    eeg = Producer(f"volts-{uid}", "EEG", ["Fz", "Cz"], "volts", 100, f"v-{uid}", fmt=pylsl.cf_double64)
    acc = Producer(f"ms2-{uid}", "Accelerometer", ["X", "Y", "Z"], "m/s^2", 50, f"a-{uid}")
    producers += [eeg, acc]
    clock = MonotonicClock()
    src = LslInletSource(eeg=f"volts-{uid}", accel=f"ms2-{uid}", timeout_s=3.0, clock=clock)
    src.start()
    try:
        d_eeg, _ = eeg.push(10)
        d_acc, _ = acc.push(5)
        got = collect(src, clock.now, lambda g: n_samples(g.get(S.EEG, [])) >= 10 and n_samples(g.get(S.ACCEL, [])) >= 5)
        np.testing.assert_allclose(joined(got[S.EEG])[0], d_eeg.T * 1e6, rtol=1e-12)
        np.testing.assert_allclose(joined(got[S.ACCEL])[0], d_acc.T / 9.80665, rtol=1e-6)  # float32 stream
    finally:
        src.stop()


@pytest.mark.lsl
def test_not_found_error_names_search_timeout_and_checks(uid: str) -> None:
    t0 = time.monotonic()
    with pytest.raises(SensorError) as err:
        LslInletSource(eeg=f"absent-{uid}", ppg=f"type:absent-ppg-{uid}", timeout_s=0.2)
    assert time.monotonic() - t0 < 4.0  # 0.2 s resolve + 1 s listing of what is visible
    msg = str(err.value)
    for part in (f"eeg='absent-{uid}'", f"ppg='absent-ppg-{uid}' (type", "within 0.2 s", "running",
                 "--lsl-scope", "LSLAPICFG is", str(lsl_config_path())):
        assert part in msg


@pytest.mark.lsl
def test_ambiguous_string_and_irregular_streams_are_refused(uid: str, producers: list[Producer]) -> None:
    producers += [Producer(f"dup-{uid}", "EEG", ["Fz"], None, 100, f"a-{uid}"),
                  Producer(f"dup-{uid}", "EEG", ["Fz"], None, 100, f"b-{uid}"),
                  Producer(f"str-{uid}", "Markers", ["m"], None, 0, f"s-{uid}", fmt=pylsl.cf_string),
                  Producer(f"irr-{uid}", "EEG", ["Fz"], None, 0, f"i-{uid}")]
    pairs = (("a", "dup"), ("b", "dup"), ("s", "str"), ("i", "irr"))
    listed = wait_listed({f"{k}-{uid}/{n}-{uid}" for k, n in pairs})
    seen = {d.source_id: d for d in listed.values()}
    with pytest.raises(SensorError, match="matches 2 LSL streams"):  # two headbands: never guess
        LslInletSource(eeg=f"dup-{uid}", timeout_s=1.0)
    src = LslInletSource(eeg=seen[f"b-{uid}"], timeout_s=1.0)  # a description names exactly one
    assert src.descriptions[S.EEG].source_id == f"b-{uid}"
    src.stop()
    with pytest.raises(SensorError, match="string samples"):
        LslInletSource(ppg=seen[f"s-{uid}"], timeout_s=1.0)
    with pytest.raises(SensorError, match="irregular rate"):
        LslInletSource(eeg=seen[f"i-{uid}"], timeout_s=1.0)


@pytest.mark.lsl
def test_descriptions_from_list_lsl_streams(uid: str, producers: list[Producer]) -> None:
    producers.append(Producer(f"listed-{uid}", "PPG", ["PPG1"], None, 64, f"l-{uid}"))
    deadline = time.monotonic() + WAIT_S
    mine: list[LslStreamDescription] = []
    while not mine and time.monotonic() < deadline:
        mine = [d for d in list_lsl_streams(1.0) if d.name == f"listed-{uid}"]
    assert len(mine) == 1 and mine[0].kind is S.PPG and mine[0].sfreq == 64 and mine[0].n_channels == 1
    src = LslInletSource(ppg=mine[0], timeout_s=2.0)
    assert src.streams[0].ch_names == ("ppg1",)
    src.stop()


def _restart_case(uid: str, same_source_id: bool) -> None:
    """Producer stops, the source reports SIGNAL_LOST, the producer comes back, data resumes."""
    name = f"restart-{uid}"
    prod = Producer(name, "EEG", ["TP9", "AF7"], "microvolts", 100, f"dev-{uid}")
    clock = ManualClock()
    src = LslInletSource(eeg=name, timeout_s=2.0, clock=clock, reconnect_timeout_s=0.3,
                         watchdog=WatchdogConfig(stall_s=3.0, backoff_s=0.5, backoff_max_s=1.0))
    src.start()
    restarted: Producer | None = None
    try:
        prod.push(10)
        got = collect(src, clock.now, lambda g: n_samples(g.get(S.EEG, [])) >= 10, tick=lambda: clock.advance(0.01))
        assert n_samples(got[S.EEG]) == 10 and src.status is SourceStatus.STREAMING
        prod.close()
        clock.advance(3.5)  # more than stall_s of session time without samples
        assert src.poll(clock.now()) == []
        assert src.status is SourceStatus.SIGNAL_LOST
        assert src.watchdogs[S.EEG].n_losses == 1
        restarted = Producer(name, "EEG", ["TP9", "AF7"], "microvolts", 100,
                             f"dev-{uid}" if same_source_id else f"other-{uid}")
        restarted.k = 1000

        def tick() -> None:  # the producer keeps streaming; session time runs on
            clock.advance(0.02)
            assert restarted is not None
            restarted.push(2)

        got = collect(src, clock.now, lambda g: S.EEG in g, timeout_s=8.0, tick=tick)
        assert S.EEG in got, "no data after the producer restarted"
        data, times = joined(got[S.EEG])
        assert data[0, 0] >= 1000  # the restarted producer's ramp
        np.testing.assert_array_equal(np.diff(data[0]), 1.0)  # contiguous once connected
        assert np.all(np.diff(times) > 0)
        assert src.status is SourceStatus.STREAMING
        if not same_source_id:  # liblsl cannot recover this one: the watchdog's re-resolve did
            assert src.watchdogs[S.EEG].total_attempts >= 1
            assert src.descriptions[S.EEG].source_id == f"other-{uid}"
    finally:
        src.stop()
        prod.close()
        if restarted is not None:
            restarted.close()


@pytest.mark.lsl
def test_producer_restart_same_source_id_recovers(uid: str) -> None:
    _restart_case(uid, same_source_id=True)


@pytest.mark.lsl
def test_producer_restart_new_source_id_is_re_resolved(uid: str) -> None:
    _restart_case(uid, same_source_id=False)


@pytest.mark.lsl
def test_poll_never_blocks_while_reconnecting(uid: str) -> None:
    name = f"gone-{uid}"
    prod = Producer(name, "PPG", ["PPG1"], None, 64, f"g-{uid}")
    clock = ManualClock()
    src = LslInletSource(ppg=name, timeout_s=2.0, clock=clock, reconnect_timeout_s=1.0)
    src.start()
    try:
        prod.close()
        clock.advance(5.0)
        t0 = time.monotonic()
        for _ in range(5):  # the first poll starts a 1-s background re-resolve
            assert src.poll(clock.now()) == []
            clock.advance(0.1)
        # generous bound: poll returns at once, the re-resolve runs in the worker thread
        assert time.monotonic() - t0 < 0.5
        assert src.status is SourceStatus.SIGNAL_LOST
    finally:
        src.stop()
