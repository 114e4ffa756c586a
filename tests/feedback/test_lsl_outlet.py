"""LslOutlets: metadata, time mapping and content of every outlet, read back with pylsl inlets.

Everything runs on loopback (tests/conftest.py sets LSLAPICFG to sensors/lsl_api.cfg before
pylsl loads), with uuid-suffixed names and bounded waits.  Clients written by others (mne-lsl,
LabRecorder) read the same outlets in tests/experiments/test_lsl_clients.py.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from adaptive.controller import PacingDecision, PacingState
from adaptive.errors import ConfigError
from adaptive.session import TickResult
from adaptive.types import Chunk, Estimate, Metric, SignalKind, StreamSpec
from feedback.lsl_outlet import (
    PACER_CHANNELS,
    STATE_CODES,
    LslOutlets,
    PacerPhase,
    estimate_channels,
    estimate_samples,
    metric_unit,
)
from sensors.clocks import ManualClock

pylsl = pytest.importorskip("pylsl")

S = SignalKind
EEG = StreamSpec(S.EEG, 256.0, ("TP9", "AF7", "AF8", "TP10"), device="Muse 2")
PPG = StreamSpec(S.PPG, 64.0, ("ppg1", "ppg2", "ppg3"))
WAIT_S = 5.0  # bound for LSL delivery on loopback (typically milliseconds)


def decision(t: float, state: PacingState = PacingState.MATCHING, pace: float = 6.0, *, events: tuple[str, ...] = (),
             visible: bool = True, ready: bool = False, following: float = 0.5) -> PacingDecision:
    return PacingDecision(t, state, pace, 0.4, ready, "test", events, visible, following)


# ---------------------------------------------------------------------------------------------
# Pure helpers
# ---------------------------------------------------------------------------------------------
def test_metric_units_and_estimate_layout() -> None:
    assert metric_unit(Metric.RESP_RATE_BRPM) == "breaths/min"
    assert metric_unit(Metric.HR_BPM) == metric_unit(Metric.HR_OSC_BPM) == "beats/min"
    assert metric_unit(Metric.RMSSD_MS) == metric_unit(Metric.IBI_MS) == "ms"
    assert metric_unit(Metric.LF_POWER_MS2) == "ms^2"
    assert metric_unit(Metric.AROUSAL) == metric_unit(Metric.QUALITY_PPG) == "au"
    chans = estimate_channels([Metric.HR_BPM, Metric.AROUSAL])
    assert chans == [("hr_bpm", "beats/min", "Estimate"), ("hr_bpm_quality", "score", "Quality"),
                     ("arousal", "au", "Estimate"), ("arousal_quality", "score", "Quality")]
    assert len(estimate_channels(tuple(Metric))) == 2 * len(Metric)


def test_estimate_samples_group_by_time_with_nan_for_absent_metrics() -> None:
    metrics = [Metric.HR_BPM, Metric.RESP_RATE_BRPM, Metric.AROUSAL]
    ests = [
        Estimate(Metric.RESP_RATE_BRPM, 6.1, 0.9, 11.0),
        Estimate(Metric.HR_BPM, 70.0, 0.8, 10.0),
        Estimate(Metric.HR_BPM, 71.0, 0.7, 11.0),
        Estimate(Metric.HR_BPM, 72.0, 0.6, 11.0),  # same metric, same time: the later wins
        Estimate(Metric.RMSSD_MS, 40.0, 1.0, 10.0),  # not published: ignored
    ]
    times, values = estimate_samples(ests, metrics)
    np.testing.assert_array_equal(times, [10.0, 11.0])
    nan = math.nan
    np.testing.assert_array_equal(values, [[70.0, 0.8, nan, nan, nan, nan], [72.0, 0.6, 6.1, 0.9, nan, nan]])
    t0, v0 = estimate_samples([], metrics)
    assert t0.shape == (0,) and v0.shape == (0, 6)


def test_pacer_phase() -> None:
    p = PacerPhase()
    assert all(math.isnan(x) for x in p.update(decision(0.0, PacingState.CALIBRATING, math.nan, visible=False)))
    assert p.update(decision(1.0)) == (0.0, 1.0)  # appears at the start of an inhale
    phase, inhaling = p.update(decision(4.0))  # 6 brpm = 0.1 cycle/s
    assert phase == pytest.approx(0.3, abs=1e-12) and inhaling == 1.0
    phase, inhaling = p.update(decision(6.0, pace=3.0))  # the interval ran at the shown 6 brpm
    assert phase == pytest.approx(0.5, abs=1e-12) and inhaling == 0.0  # inhale_fraction 0.4
    phase, _ = p.update(decision(16.0, pace=3.0))  # 10 s at 3 brpm: half a cycle more
    assert phase == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(p.update(decision(17.0, pace=math.nan))[0])  # hidden again: reset
    assert p.update(decision(18.0)) == (0.0, 1.0)


def test_state_codes_are_unique_and_complete() -> None:
    assert set(STATE_CODES) == set(PacingState)
    assert sorted(STATE_CODES.values()) == list(range(len(PacingState)))
    assert [c[0] for c in PACER_CHANNELS][:5] == ["pace_brpm", "phase", "inhaling", "state_code", "dose_ready"]


def test_refuses_without_lsl_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LSLAPICFG")
    with pytest.raises(ConfigError, match="LSLAPICFG.*every network interface.*apply_lsl_scope"):
        LslOutlets([EEG])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"raw_format": "int16"}, "raw_format"),
        ({"publish": ("raw", "video")}, "publish"),
        ({"name_prefix": ""}, "name_prefix"),
        ({"pacer_sfreq": -1.0}, "pacer_sfreq"),
        ({"session_offset": math.inf}, "session_offset"),
        ({"metrics": (Metric.HR_BPM, Metric.HR_BPM)}, "metrics"),
    ],
)
def test_argument_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        LslOutlets([EEG], **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="one stream per kind"):
        LslOutlets([EEG, EEG])


# ---------------------------------------------------------------------------------------------
# Over LSL (loopback)
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def outlets(prefix: str) -> Iterator[LslOutlets]:
    out = LslOutlets([EEG, PPG], name_prefix=prefix, clock=ManualClock(100.0), pacer_sfreq=2.0)
    yield out
    out.close()


def inlet_for(source_id: str, **kwargs: object) -> pylsl.StreamInlet:
    infos = pylsl.resolve_byprop("source_id", source_id, 1, WAIT_S)
    assert infos, f"outlet {source_id} not found"
    inlet = pylsl.StreamInlet(infos[0], **kwargs)
    inlet.open_stream(WAIT_S)
    return inlet


def pull_all(inlet: pylsl.StreamInlet, n: int) -> tuple[list[list[object]], list[float]]:
    """Pull until ``n`` samples arrived (bounded wait: LSL delivers in real time)."""
    samples: list[list[object]] = []
    stamps: list[float] = []
    deadline = time.monotonic() + WAIT_S
    while len(stamps) < n and time.monotonic() < deadline:
        s, t = inlet.pull_chunk(timeout=0.05, max_samples=4096)
        samples += s
        stamps += t
    return samples, stamps


def channels(info: pylsl.StreamInfo) -> list[tuple[str, str, str]]:
    ch = info.desc().child("channels").child("channel")
    out = []
    while not ch.empty():
        out.append((ch.child_value("label"), ch.child_value("unit"), ch.child_value("type")))
        ch = ch.next_sibling("channel")
    return out


@pytest.mark.lsl
def test_stream_metadata(outlets: LslOutlets, prefix: str) -> None:
    assert set(outlets.stream_names) == {"eeg", "ppg", "estimates", "pacer", "markers"}
    assert outlets.source_ids["eeg"] == f"{prefix}-eeg"
    expect = {  # kind: (type, rate, channel count, format)
        "eeg": ("EEG", 256.0, 4, pylsl.cf_float32),
        "ppg": ("PPG", 64.0, 3, pylsl.cf_float32),
        "estimates": ("Estimates", 0.0, 2 * len(Metric), pylsl.cf_double64),
        "pacer": ("Pacer", 2.0, len(PACER_CHANNELS), pylsl.cf_double64),
        "markers": ("Markers", 0.0, 1, pylsl.cf_string),
    }
    for kind, (stype, rate, n, fmt) in expect.items():
        info = inlet_for(outlets.source_ids[kind]).info(WAIT_S)
        assert (info.name(), info.type(), info.nominal_srate(), info.channel_count(), info.channel_format()) == (
            f"{prefix}-{kind}", stype, rate, n, fmt), kind
        desc = info.desc()
        assert desc.child("acquisition").child_value("manufacturer") == "calmloop"
        assert float(desc.child("calmloop").child_value("session_offset_s")) == outlets.session_offset
        assert len(channels(info)) == n
        if kind == "eeg":
            assert channels(info) == [(c, "microvolts", "EEG") for c in EEG.ch_names]
            assert desc.child("acquisition").child_value("model") == "Muse 2"
        if kind == "ppg":
            assert channels(info)[0] == ("ppg1", "au", "PPG")
        if kind == "estimates":
            assert channels(info)[:2] == [("resp_rate_brpm", "breaths/min", "Estimate"),
                                          ("resp_rate_brpm_quality", "score", "Quality")]
        if kind == "pacer":
            assert [c[0] for c in channels(info)] == [c[0] for c in PACER_CHANNELS]
            state = desc.child("calmloop").child("states").child("state")
            names = {}
            while not state.empty():
                names[int(state.child_value("code"))] = state.child_value("name")
                state = state.next_sibling("state")
            assert names == {code: s.value for s, code in STATE_CODES.items()}


@pytest.mark.lsl
def test_samples_and_timestamps(outlets: LslOutlets) -> None:
    # the offset was taken against a ManualClock at 100 s
    assert outlets.session_offset == pytest.approx(pylsl.local_clock() - 100.0, abs=5.0)
    inlets = {k: inlet_for(outlets.source_ids[k]) for k in ("eeg", "estimates", "pacer", "markers")}
    times = 100.0 + np.arange(24) / 256.0
    ramp = np.arange(4 * 24, dtype=np.float64).reshape(4, 24)
    eeg = Chunk(S.EEG, ramp, times, 256.0, EEG.ch_names)
    ests = (Estimate(Metric.HR_BPM, 65.5, 0.9, 99.5), Estimate(Metric.AROUSAL, -0.25, 0.7, 100.0),
            Estimate(Metric.HR_BPM, 66.0, 0.8, 100.0))
    decs = (decision(99.5, PacingState.CALIBRATING, math.nan, visible=False),
            decision(100.0, PacingState.MATCHING, 6.0, events=("state:matching reason:calibrated", "pace:x")),
            decision(100.5, PacingState.READY_FOR_DOSING, 6.0, events=("ready_for_dosing",), ready=True))
    outlets.write(TickResult((eeg,), ests, decs))
    off = outlets.session_offset

    data, stamps = pull_all(inlets["eeg"], 24)
    np.testing.assert_array_equal(np.asarray(data), ramp.T)  # float32 holds these integers exactly
    # raw inlet stamps (no post-processing): what was pushed, to LSL's double precision
    np.testing.assert_allclose(stamps, times + off, rtol=0, atol=1e-9)

    data, stamps = pull_all(inlets["estimates"], 2)
    values = np.asarray(data)
    np.testing.assert_allclose(stamps, [99.5 + off, 100.0 + off], rtol=0, atol=1e-9)
    hr, ar = 2 * list(Metric).index(Metric.HR_BPM), 2 * list(Metric).index(Metric.AROUSAL)
    np.testing.assert_array_equal(values[:, hr:hr + 2], [[65.5, 0.9], [66.0, 0.8]])
    np.testing.assert_array_equal(values[:, ar:ar + 2], [[np.nan, np.nan], [-0.25, 0.7]])
    assert np.isnan(values[:, 0]).all()  # resp rate: absent

    data, stamps = pull_all(inlets["pacer"], 3)
    pacer = np.asarray(data)
    np.testing.assert_allclose(stamps, np.array([99.5, 100.0, 100.5]) + off, rtol=0, atol=1e-9)
    assert np.isnan(pacer[0, :3]).all()  # hidden while calibrating: pace, phase, inhaling
    np.testing.assert_array_equal(pacer[1:, 0], [6.0, 6.0])
    np.testing.assert_allclose(pacer[1:, 1], [0.0, 0.05])  # 6 brpm for 0.5 s = 0.05 cycle
    np.testing.assert_array_equal(pacer[:, 3], [STATE_CODES[d.state] for d in decs])
    np.testing.assert_array_equal(pacer[:, 4], [0, 0, 1])
    np.testing.assert_array_equal(pacer[:, 6], [0.5, 0.5, 0.5])

    data, stamps = pull_all(inlets["markers"], 3)
    assert [s[0] for s in data] == ["state:matching reason:calibrated", "pace:x", "ready_for_dosing"]
    np.testing.assert_allclose(stamps, np.array([100.0, 100.0, 100.5]) + off, rtol=0, atol=1e-9)
    assert outlets.n_pushed == {"eeg": 24, "ppg": 0, "estimates": 2, "pacer": 3, "markers": 3}


@pytest.mark.lsl
def test_wrong_chunk_raises_and_push_failures_are_contained(
    outlets: LslOutlets, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = Chunk(S.EEG, np.zeros((2, 3)), np.arange(3.0), 256.0, ("TP9", "AF7"))
    with pytest.raises(ValueError, match="expected eeg channels"):
        outlets.write(TickResult((bad,)))
    gyro = Chunk(S.GYRO, np.zeros((3, 2)), np.arange(2.0), 52.0, ("x", "y", "z"))
    outlets.write(TickResult((gyro,)))  # no gyro outlet: ignored

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("network stack gone")

    monkeypatch.setattr(outlets._outlets["markers"].outlet, "push_chunk", broken)
    with caplog.at_level(logging.DEBUG, logger="feedback.lsl_outlet"):
        for t in (1.0, 2.0):
            outlets.write(TickResult(decisions=(decision(t, events=("alert:hr_high",)),)))
    assert outlets.n_errors["markers"] == 2 and outlets.n_pushed["pacer"] == 2
    assert [r.levelno for r in caplog.records if "push failed" in r.message] == [logging.WARNING, logging.DEBUG]


@pytest.mark.lsl
def test_close_and_stable_source_id_lets_inlets_recover(prefix: str) -> None:
    first = LslOutlets([], name_prefix=prefix, publish=("pacer",), session_offset=0.0)
    inlet = inlet_for(first.source_ids["pacer"])  # recover=True by default
    first.write(TickResult(decisions=(decision(1.0),)))
    assert len(pull_all(inlet, 1)[1]) == 1
    first.close()
    first.close()  # idempotent
    assert first.closed and first.n_pushed == {"pacer": 1}
    first.write(TickResult(decisions=(decision(2.0),)))  # after close: ignored
    # calmloop restarts with the same prefix: the same source_id, so the inlet re-connects
    second = LslOutlets([], name_prefix=prefix, publish=("pacer",), session_offset=0.0)
    try:
        assert second.source_ids == {"pacer": f"{prefix}-pacer"}
        deadline = time.monotonic() + WAIT_S
        got: list[float] = []
        t = 3.0
        while not got and time.monotonic() < deadline:
            second.write(TickResult(decisions=(decision(t),)))
            t += 0.5
            got = inlet.pull_chunk(timeout=0.1)[1]
        assert got, "the inlet did not recover after the outlet restarted"
        assert got[0] >= 3.0
    finally:
        second.close()
