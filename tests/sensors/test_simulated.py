"""Tests of the simulated patient: chunks, determinism, physiology against independent checks.

Everything here checks the simulator with plain numpy/scipy (periodograms, beat intervals,
Welch band powers), never with calmloop's own estimators, because the simulator is the ground
truth those estimators are tested against.  No test sleeps: time moves only through ``poll``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from scipy.signal import butter, hilbert, periodogram, sosfiltfilt, welch

from adaptive.errors import SensorError
from adaptive.types import Chunk, PaceFollower, SignalKind, Source, SourceStatus
from sensors.simulated import (
    EEG_CH_NAMES,
    EEG_RAIL_UV,
    PPG_CH_NAMES,
    PPG_FULL_SCALE_COUNTS,
    PROFILES,
    SFREQ,
    PatientProfile,
    SimulatedPatient,
    rsa_resonance_gain,
)

KINDS = (SignalKind.EEG, SignalKind.PPG, SignalKind.ACCEL, SignalKind.GYRO)
# compliant patient without sighs or spontaneous head movements: a sigh (one slow, deep breath)
# legitimately smears a 64-s spectrum and a movement swamps the PPG; the spectral checks are about
# what clean signals carry (artefacts have their own tests).
STEADY = dataclasses.replace(PROFILES["compliant"], sighs_per_hour=0.0, motion_per_min=0.0)


Signals = dict[SignalKind, tuple[np.ndarray, np.ndarray]]


def _run(sim: SimulatedPatient, t_end: float, step: float = 10.0) -> Signals:
    """Poll from the last polled time to ``t_end`` and concatenate the chunks per kind."""
    parts: dict[SignalKind, list[Chunk]] = {}
    t = max(sim._last_now, 0.0)  # noqa: SLF001 - test helper resumes where the last poll stopped
    while t < t_end - 1e-12:
        t = min(t + step, t_end)
        for chunk in sim.poll(t):
            parts.setdefault(chunk.kind, []).append(chunk)
    return {
        kind: (np.hstack([c.data for c in chunks]), np.concatenate([c.times for c in chunks]))
        for kind, chunks in parts.items()
    }


def _started(profile: str | PatientProfile = "compliant", seed: int = 0) -> SimulatedPatient:
    sim = SimulatedPatient(profile, seed=seed)
    sim.start()
    return sim


# --------------------------------------------------------------------------------------------
# protocol, chunks, errors
# --------------------------------------------------------------------------------------------


def test_protocols_and_stream_specs() -> None:
    sim = SimulatedPatient()
    assert isinstance(sim, Source)
    assert isinstance(sim, PaceFollower)
    specs = {s.kind: s for s in sim.streams}
    expected = {
        SignalKind.EEG: (256.0, ("TP9", "AF7", "AF8", "TP10")),
        SignalKind.PPG: (64.0, PPG_CH_NAMES),
        SignalKind.ACCEL: (52.0, ("ACC_X", "ACC_Y", "ACC_Z")),
        SignalKind.GYRO: (52.0, ("GYRO_X", "GYRO_Y", "GYRO_Z")),
    }
    assert {kind: (s.sfreq, s.ch_names) for kind, s in specs.items()} == expected
    assert specs[SignalKind.EEG].unit == "uV"
    assert sim.status == SourceStatus.IDLE
    sim.start()
    assert sim.status == SourceStatus.STREAMING
    sim.stop()
    assert sim.status == SourceStatus.STOPPED


def test_chunks_valid_and_contiguous() -> None:
    sim = _started(seed=3)
    last: dict[SignalKind, float] = {}
    dt = 0.1
    for k in range(1, 101):
        now = k * dt
        chunks = sim.poll(now)
        kinds = [c.kind for c in chunks]
        assert len(kinds) == len(set(kinds))  # at most one chunk per kind per poll
        for c in chunks:
            fs = SFREQ[c.kind]
            assert c.sfreq == fs
            assert c.data.shape == (len(c.ch_names), c.n_times)
            assert np.all(np.diff(c.times) > 0)
            assert c.times[-1] <= now and c.times[0] > last.get(c.kind, -1.0)
            assert_array_equal(c.times, np.round(c.times * fs) / fs)  # exact sample grid k / sfreq
            if c.kind in last:  # no sample dropped between polls
                assert math.isclose(c.times[0] - last[c.kind], 1.0 / fs, rel_tol=1e-9)
            assert abs(c.n_times - fs * dt) <= 1.0
            assert np.all(np.isfinite(c.data))
            last[c.kind] = float(c.times[-1])
    data = _run(sim, 20.0, 1.0)
    eeg, _ = data[SignalKind.EEG]
    assert eeg.min() >= EEG_RAIL_UV[0] and eeg.max() <= EEG_RAIL_UV[1]
    ppg, _ = data[SignalKind.PPG]
    assert_array_equal(ppg, np.round(ppg))  # raw integer counts
    assert 25_000 < np.median(ppg[0]) < 35_000  # tens of thousands of counts
    acc, _ = data[SignalKind.ACCEL]
    norm = np.linalg.norm(acc, axis=0)
    assert abs(np.median(norm) - 1.0) < 0.01  # gravity: 1 g, head still (+- 10 mg)
    assert np.median(acc[2]) > 0.9  # upright head: gravity mostly on Z


def test_first_poll_and_stream_offsets() -> None:
    sim = SimulatedPatient("compliant", seed=0, stream_offsets_s={SignalKind.PPG: 0.005})
    sim.start()
    chunks = {c.kind: c for c in sim.poll(1.0)}
    assert chunks[SignalKind.EEG].times[0] == 0.0 and chunks[SignalKind.EEG].n_times == 257
    assert chunks[SignalKind.PPG].times[0] == 0.005 and chunks[SignalKind.PPG].n_times == 64
    assert sim.poll(1.0) == []  # nothing new
    assert sim.poll(1.001) == []  # shorter than one sample of every stream
    with pytest.raises(ValueError, match="stream_offsets_s"):
        SimulatedPatient(stream_offsets_s={SignalKind.EEG: 0.01})  # more than one sample


def test_wrong_calls_raise() -> None:
    sim = SimulatedPatient()
    with pytest.raises(SensorError, match="start"):
        sim.poll(1.0)
    sim.start()
    sim.poll(2.0)
    with pytest.raises(ValueError, match="now"):
        sim.poll(1.0)
    with pytest.raises(ValueError, match="pace_brpm"):
        sim.set_pace(0.0)
    with pytest.raises(ValueError, match="inhale_fraction"):
        sim.set_pace(6.0, inhale_fraction=0.95)
    with pytest.raises(ValueError, match="at_s"):
        sim.schedule("startle", 1.5)  # already polled
    with pytest.raises(ValueError, match="kind"):
        sim.schedule("earthquake", 10.0)
    with pytest.raises(ValueError, match="parameter"):
        sim.schedule("dropout", 10.0, 1.0, stream="ppg")  # typo: 'streams'
    with pytest.raises(ValueError, match="streams"):
        sim.schedule("dropout", 10.0, 1.0, streams=("ecg",))
    with pytest.raises(ValueError, match="truth|times"):
        sim.truth([5.0])  # not simulated yet
    with pytest.raises(ValueError, match="profile"):
        SimulatedPatient("zen-master")
    with pytest.raises(ValueError, match="seed"):
        SimulatedPatient(seed=-1)
    with pytest.raises(ValueError, match="compliance"):
        dataclasses.replace(PROFILES["compliant"], compliance=1.5)
    sim.stop()
    with pytest.raises(SensorError):
        sim.poll(3.0)
    with pytest.raises(SensorError):
        sim.start()


def test_profiles() -> None:
    assert {"compliant", "anxious", "non-follower", "noisy-signal", "tachycardic"} <= set(PROFILES)
    for name, profile in PROFILES.items():
        assert profile.name == name
        with pytest.raises(dataclasses.FrozenInstanceError):
            profile.hr_bpm = 50.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        PROFILES["custom"] = PROFILES["compliant"]  # type: ignore[index]


# --------------------------------------------------------------------------------------------
# determinism
# --------------------------------------------------------------------------------------------


def _scripted(poll_times: np.ndarray, seed: int = 5) -> tuple[Signals, SimulatedPatient]:
    """Same events and pace commands (issued right after the polls at 3 s and 7 s)."""
    sim = _started("compliant", seed)
    sim.schedule("startle", 4.5)
    sim.schedule("motion", 5.0, 1.5)
    sim.schedule("blink_burst", 1.0, 2.0)
    sim.schedule("nan", 8.0, 0.3, streams=("ppg",))
    sim.schedule("dropout", 8.5, 0.4, streams=("eeg",))
    parts: dict[SignalKind, list[Chunk]] = {}
    for now in poll_times:
        for chunk in sim.poll(float(now)):
            parts.setdefault(chunk.kind, []).append(chunk)
        if now == 3.0:
            sim.set_pace(6.0, inhale_fraction=0.35)
        if now == 7.0:
            sim.set_pace(None)
    out = {k: (np.hstack([c.data for c in v]), np.concatenate([c.times for c in v]))
           for k, v in parts.items()}
    return out, sim


def test_same_seed_identical_different_seed_differs() -> None:
    grid = np.arange(1, 11) * 1.0
    a, _ = _scripted(grid, seed=5)
    b, _ = _scripted(grid, seed=5)
    c, _ = _scripted(grid, seed=6)
    for kind in KINDS:
        assert_array_equal(a[kind][0], b[kind][0])
        assert_array_equal(a[kind][1], b[kind][1])
        assert not np.array_equal(a[kind][0], c[kind][0])
    assert np.isnan(a[SignalKind.PPG][0]).any()


def test_samples_independent_of_poll_schedule() -> None:
    """Polling every 10 ms, every 1 s or at random times gives bit-identical samples and truth."""
    fine = np.arange(1, 1001) / 100.0  # 10 ms polls up to 10 s (k / 100 hits 3.0 and 7.0 exactly)
    coarse = np.arange(1, 11) * 1.0
    rng = np.random.default_rng(42)
    ragged = np.unique(np.concatenate([np.cumsum(rng.uniform(0.0005, 0.8, 40)), [3.0, 7.0, 10.0]]))
    ragged = ragged[ragged <= 10.0]
    ref, ref_sim = _scripted(fine)
    for schedule in (coarse, ragged):
        got, sim = _scripted(schedule)
        for kind in KINDS:
            assert_array_equal(got[kind][1], ref[kind][1])
            assert_array_equal(got[kind][0], ref[kind][0])
        assert_array_equal(sim.beat_times, ref_sim.beat_times)
        t_ref, t_got = ref_sim.truth_log(), sim.truth_log()
        for name in ("arousal", "hr_bpm", "resp_phase", "pacer_phase"):
            assert_array_equal(getattr(t_got, name), getattr(t_ref, name))


def test_fast_forward_skips_samples_without_changing_later_ones() -> None:
    a, b = _started("compliant", 22), _started("compliant", 22)
    ref = _run(a, 40.0, 5.0)
    b.fast_forward(31.3)
    got = _run(b, 40.0, 5.0)
    for kind in KINDS:
        keep = ref[kind][1] > 31.3
        assert got[kind][1][0] > 31.3
        assert_array_equal(got[kind][1], ref[kind][1][keep])
        assert_array_equal(got[kind][0], ref[kind][0][:, keep])
    assert_array_equal(b.beat_times, a.beat_times)


# --------------------------------------------------------------------------------------------
# breathing in the PPG (independent spectral check)
# --------------------------------------------------------------------------------------------

_FS_PPG = 64.0
_LOWPASS = butter(4, 0.6, "lowpass", fs=_FS_PPG, output="sos")  # below any heart rate here (> 55 bpm)
_HIGHPASS = butter(2, 0.05, "highpass", fs=_FS_PPG, output="sos")  # slow drift out, 5 brpm (0.083 Hz) kept
_CARDIAC = butter(3, [0.6, 4.0], "bandpass", fs=_FS_PPG, output="sos")


def _resp_peak_brpm(x: np.ndarray) -> float:
    """Frequency of the largest periodogram peak between 3.6 and 33 breaths/min."""
    y = sosfiltfilt(_HIGHPASS, sosfiltfilt(_LOWPASS, x))
    f, p = periodogram(y, _FS_PPG, window="hann", nfft=8 * y.size)  # zero-padded: fine peak location
    band = (f >= 0.06) & (f <= 0.55)
    return float(f[band][np.argmax(p[band])] * 60.0)


@pytest.mark.parametrize("rate_brpm", [5.0, 6.0, 8.0, 12.0, 18.0, 25.0])
def test_ppg_carries_the_reported_breathing_rate(rate_brpm: float) -> None:
    sim = _started(STEADY, seed=1)
    sim.set_pace(rate_brpm)
    _run(sim, 60.0, 60.0)  # settle: 10 s rate lag and phase locking
    x, t = _run(sim, 124.0, 64.0)[SignalKind.PPG]
    truth = float(np.mean(sim.truth(t).resp_rate_brpm))
    assert abs(truth - rate_brpm) < 0.3  # the compliant patient does follow (locked to the pacer)
    ir = x[PPG_CH_NAMES.index("PPG_IR")]
    riiv = _resp_peak_brpm(ir)  # baseline wander (respiratory-induced intensity variation)
    am = _resp_peak_brpm(np.abs(hilbert(sosfiltfilt(_CARDIAC, ir))))  # pulse-amplitude envelope
    # brpm: half the 0.94-brpm bin of a 64-s window; a steady rate peaks well inside it
    assert abs(riiv - truth) <= 0.47
    assert abs(am - truth) <= 0.47


def test_accelerometer_carries_breathing() -> None:
    sim = _started(STEADY, seed=2)
    sim.set_pace(6.0)
    _run(sim, 60.0, 60.0)
    x, t = _run(sim, 124.0, 64.0)[SignalKind.ACCEL]
    truth = float(np.mean(sim.truth(t).resp_rate_brpm))
    y = sosfiltfilt(butter(2, [0.05, 0.7], "bandpass", fs=52.0, output="sos"), x[0])  # pitch tilts X
    f, p = periodogram(y, 52.0, window="hann", nfft=8 * y.size)
    band = (f >= 0.06) & (f <= 0.55)
    assert abs(f[band][np.argmax(p[band])] * 60.0 - truth) <= 0.47  # brpm: half a 64-s bin


# --------------------------------------------------------------------------------------------
# heart
# --------------------------------------------------------------------------------------------


def test_beat_times_match_truth_heart_rate() -> None:
    sim = _started("compliant", seed=4)
    _run(sim, 120.0, 30.0)
    beats = sim.beat_times
    assert beats.size > 100
    hr_from_beats = 60.0 / np.diff(beats)
    # the model's mean instantaneous HR over each beat interval
    fine = np.arange(0.0, 120.0, 1.0 / 256.0)
    hr = sim.truth(fine).hr_bpm
    cum = np.concatenate([[0.0], np.cumsum(hr) / 256.0])
    idx = np.searchsorted(fine, beats)
    mean_hr = (cum[idx[1:]] - cum[idx[:-1]]) / np.diff(fine[np.minimum(idx, fine.size - 1)])
    err = np.abs(hr_from_beats - mean_hr)[1:-1]
    # bpm: beat jitter is 0.8 % of the interval (0.55 bpm SD at 68 bpm) plus 4-ms grid rounding
    assert np.median(err) < 0.6
    assert np.percentile(err, 95) < 1.6
    assert 50 < np.median(hr_from_beats) < 90


def _rsa_peak_to_trough(rate_brpm: float, seed: int = 0) -> float:
    sim = _started(STEADY, seed)
    sim.set_pace(rate_brpm)
    sim.fast_forward(180.0)
    beats = sim.beat_times
    beats = beats[beats > 60.0]
    hr = 60.0 / np.diff(beats)
    mid = 0.5 * (beats[1:] + beats[:-1])
    onsets = sim.breath_onset_times
    onsets = onsets[onsets > 60.0]
    swings = [np.ptp(hr[(mid >= a) & (mid < b)]) for a, b in zip(onsets[:-1], onsets[1:], strict=True)
              if np.sum((mid >= a) & (mid < b)) >= 2]
    return float(np.median(swings))


def test_rsa_larger_at_resonance_than_at_15_brpm() -> None:
    slow, fast = _rsa_peak_to_trough(6.0), _rsa_peak_to_trough(15.0)
    # measured from beat intervals only: about 13 bpm vs 3.6 bpm with this seed
    assert slow > 8.0
    assert slow > 2.5 * fast
    gain = rsa_resonance_gain(np.array([3.0, 5.5, 6.0, 6.5, 15.0, 25.0]))
    assert np.argmax(gain) == 2 and gain[2] == pytest.approx(1.0, abs=1e-3)
    assert gain[2] > 2.5 * gain[4] > gain[5]


# --------------------------------------------------------------------------------------------
# following the pacer, arousal
# --------------------------------------------------------------------------------------------


def test_follower_inhales_with_the_pacer() -> None:
    sim = _started(STEADY, seed=7)
    sim.set_pace(6.0, inhale_fraction=0.3)
    _run(sim, 150.0, 50.0)
    tr = sim.truth(np.arange(90.0, 150.0, 1.0 / 16.0))
    lag = np.angle(np.mean(np.exp(2j * np.pi * (tr.resp_phase - tr.pacer_phase)))) / (2 * np.pi)
    # cycles: a locked follower whose own rate is faster runs ahead of the pacer by
    # asin((1 - c) * (own - pace) / 60 / (c * K)) / 2 pi, about 0.04 cycles (0.4 s at 6 brpm)
    # here; within 0.06 cycles (0.6 s) it inhales when the pacer says inhale
    assert abs(lag) < 0.06
    assert np.mean(tr.following) > 0.9
    rising = np.diff(tr.breath_volume) > 0
    # inspiratory fraction goes 95 % of the way from its own 0.42 to the commanded 0.30
    assert np.mean(rising) == pytest.approx(0.42 + 0.95 * (0.3 - 0.42), abs=0.03)


def test_slow_breathing_lowers_arousal() -> None:
    paced, free = _started("compliant", 8), _started("compliant", 8)
    paced.set_pace(6.0)
    paced.fast_forward(600.0)
    free.fast_forward(600.0)
    tp, tf = paced.truth_log(), free.truth_log()
    last = tp.time >= 540.0
    first = tp.time < 30.0
    # arousal units (0..1): relax_depth 0.3 with a 4-min time constant; noise SD 0.03
    assert np.mean(tp.arousal[last]) < np.mean(tp.arousal[first]) - 0.1
    assert np.mean(tp.arousal[last]) < np.mean(tf.arousal[last]) - 0.1
    assert np.mean(tp.hr_bpm[last]) < np.mean(tf.hr_bpm[last])  # calmer heart too


def test_non_follower_keeps_its_own_rate() -> None:
    sim = _started("non-follower", 9)
    sim.set_pace(6.0)
    sim.fast_forward(116.0)
    x, t = _run(sim, 180.0, 64.0)[SignalKind.PPG]
    tr = sim.truth_log()
    last = tr.time >= 60.0
    own = PROFILES["non-follower"].resp_rate_brpm
    # brpm: own-rate wander has a 10 % SD (1.5 brpm); the pace is 9 brpm away
    assert abs(np.mean(tr.resp_rate_brpm[last]) - own) < 2.5
    assert np.mean(tr.following[last]) < 0.3
    riiv = _resp_peak_brpm(x[0])
    assert abs(riiv - 6.0) > 4.0  # its PPG shows its own rate, not the pace


def _time_to_follow(profile: str, pace: float = 7.0, limit_s: float = 300.0) -> float:
    sim = _started(profile, 10)
    sim.fast_forward(30.0)
    sim.set_pace(pace)
    sim.fast_forward(30.0 + limit_s)
    tr = sim.truth_log()
    # 10-s running mean of the breathing rate, within 1 brpm of the pace
    k = 640
    smooth = np.convolve(tr.resp_rate_brpm, np.ones(k) / k, mode="valid")
    times = tr.time[k - 1:]
    ok = (times > 30.0) & (np.abs(smooth - pace) < 1.0)
    return float(times[np.argmax(ok)] - 30.0) if ok.any() else math.inf


def test_anxious_patient_follows_more_slowly_than_compliant() -> None:
    compliant, anxious = _time_to_follow("compliant"), _time_to_follow("anxious")
    # s: compliant 10-31 s over seeds 0-7 (10 s lag), anxious 68-294 s (45 s lag, and its
    # slowest followable rate starts at 10 brpm and relaxes over 5 min of pacing)
    assert compliant < 60.0
    assert anxious > 2.0 * compliant and anxious > compliant + 30.0


def test_anxious_cannot_go_below_its_slowest_followable_rate() -> None:
    sim = _started("anxious", 11)
    sim.set_pace(4.0)
    sim.fast_forward(300.0)
    tr = sim.truth_log()
    assert np.min(tr.intrinsic_rate_brpm) >= PROFILES["anxious"].min_followable_brpm - 1e-9
    slow = tr.time > 200.0
    assert np.mean(tr.resp_rate_brpm[slow]) > PROFILES["anxious"].min_followable_brpm


# --------------------------------------------------------------------------------------------
# EEG
# --------------------------------------------------------------------------------------------


def _alpha_power(arousal: float) -> np.ndarray:
    profile = dataclasses.replace(PROFILES["compliant"], arousal=arousal)
    sim = _started(profile, 12)
    x, _ = _run(sim, 60.0, 60.0)[SignalKind.EEG]
    f, p = welch(x, 256.0, nperseg=512)
    band = (f >= 8.0) & (f <= 12.0)
    return np.asarray(np.sum(p[:, band], axis=1))


def test_alpha_at_tp9_tp10_rises_as_arousal_falls() -> None:
    low, high = _alpha_power(0.15), _alpha_power(0.8)
    tp = [EEG_CH_NAMES.index("TP9"), EEG_CH_NAMES.index("TP10")]
    af = [EEG_CH_NAMES.index("AF7"), EEG_CH_NAMES.index("AF8")]
    # alpha itself changes (0.85/0.2)**3 = 77x; the 1/f background, blinks and muscle bursts in
    # the band dilute that to 3-7x over seeds 0-7
    assert np.all(low[tp] > 2.5 * high[tp])
    assert np.all(low[tp] > 2.0 * low[af])  # alpha is temporal-posterior on the Muse


def test_background_eeg_amplitude_is_realistic() -> None:
    x, _ = _run(_started("compliant", 13), 30.0, 30.0)[SignalKind.EEG]
    tp9 = x[EEG_CH_NAMES.index("TP9")]
    sd = np.std(tp9 - np.mean(tp9))
    assert 5.0 < sd < 40.0  # uV: tens of microvolts, as in Muse recordings


# --------------------------------------------------------------------------------------------
# events
# --------------------------------------------------------------------------------------------


def test_dropout_is_a_gap_in_time() -> None:
    sim = _started("compliant", 14)
    sim.schedule("dropout", 10.0, 2.0, streams=("ppg",))
    sim.schedule("dropout", 15.0, 1.0)  # all streams
    data = {}
    status_mid = None
    for k in range(1, 41):
        for c in sim.poll(k * 0.5):
            data.setdefault(c.kind, []).append(c.times)
        if k * 0.5 == 15.5:
            status_mid = sim.status
    assert status_mid == SourceStatus.SIGNAL_LOST
    assert sim.status == SourceStatus.STREAMING
    t_ppg = np.concatenate(data[SignalKind.PPG])
    gaps = np.diff(t_ppg)
    big = gaps > 1.5 / 64.0
    assert big.sum() == 2
    assert np.sort(gaps[big]) == pytest.approx([1.0 + 1 / 64, 2.0 + 1 / 64], abs=1e-9)
    t_eeg = np.concatenate(data[SignalKind.EEG])
    assert np.sum(np.diff(t_eeg) > 1.5 / 256.0) == 1  # EEG only misses the all-streams dropout
    tr = sim.truth(np.array([11.0, 15.5, 17.0]))
    assert_array_equal(tr.artifact_ppg, [True, True, False])
    assert_array_equal(tr.signal_lost, [False, True, False])


def test_nan_event_gives_nan_samples_without_gap() -> None:
    sim = _started("compliant", 15)
    sim.schedule("nan", 5.0, 1.0, streams=("eeg",))
    x, t = _run(sim, 10.0, 0.7)[SignalKind.EEG]
    assert np.all(np.diff(t) == pytest.approx(1 / 256.0))
    bad = np.any(np.isnan(x), axis=0)
    assert_array_equal(bad, (t >= 5.0) & (t < 6.0))


def test_saturation_rails() -> None:
    sim = _started("compliant", 16)
    sim.schedule("saturation", 5.0, 2.0)
    sim.schedule("saturation", 8.0, 1.0, streams=("eeg",), channels=("AF7",), level="low")
    data = _run(sim, 10.0, 1.0)
    x, t = data[SignalKind.EEG]
    on = (t >= 5.0) & (t < 7.0)
    assert np.all(x[:, on] == EEG_RAIL_UV[1]) and not np.any(x[:, ~on] == EEG_RAIL_UV[1])
    low = (t >= 8.0) & (t < 9.0)
    af7 = EEG_CH_NAMES.index("AF7")
    assert np.all(x[af7, low] == EEG_RAIL_UV[0])
    assert not np.any(x[EEG_CH_NAMES.index("TP9"), low] == EEG_RAIL_UV[0])
    p, tp = data[SignalKind.PPG]
    assert np.all(p[:, (tp >= 5.0) & (tp < 7.0)] == PPG_FULL_SCALE_COUNTS)
    assert np.all(p[:, tp >= 7.0] < PPG_FULL_SCALE_COUNTS)
    assert sim.truth(np.array([6.0])).artifact_ppg[0]


def test_startle_raises_arousal_and_heart_rate() -> None:
    sim = _started("compliant", 17)
    sim.schedule("startle", 40.0, amount=0.4)
    sim.fast_forward(100.0)
    tr = sim.truth(np.array([39.0, 41.0, 100.0]))
    assert tr.arousal[1] > tr.arousal[0] + 0.3  # jump of 0.4, clipped at 1
    assert tr.arousal[2] < tr.arousal[1] - 0.2  # recovers with a 45-s time constant
    hr = sim.truth(np.arange(30.0, 50.0, 0.25)).hr_bpm
    assert np.mean(hr[-20:]) > np.mean(hr[:20]) + 6.0  # 30 bpm per unit arousal


def test_scheduled_tachycardia_raises_heart_rate() -> None:
    sim = _started("compliant", 23)
    ev = sim.schedule("tachycardia", 30.0, 60.0, delta_bpm=40.0)
    assert ev in sim.events and ev.end_s == 90.0
    sim.fast_forward(150.0)
    hr = sim.truth(np.array([25.0, 80.0, 150.0])).hr_bpm
    assert hr[1] > hr[0] + 30.0  # bpm: +40 approached with a 10-s time constant
    assert abs(hr[2] - hr[0]) < 10.0  # back to baseline (RSA and wander: a few bpm)


def test_motion_event_shakes_every_sensor() -> None:
    sim = _started("compliant", 18)
    sim.schedule("motion", 20.0, 3.0)
    data = _run(sim, 30.0, 5.0)
    acc, ta = data[SignalKind.ACCEL]
    gyro, _ = data[SignalKind.GYRO]
    during, before = (ta >= 20.5) & (ta < 22.5), (ta >= 10.0) & (ta < 19.0)
    assert np.std(acc[0, during]) > 5 * np.std(acc[0, before])
    assert np.max(np.abs(gyro[:, during])) > 10.0  # deg/s: head movement
    tr = sim.truth(np.array([21.0, 29.0]))
    assert_array_equal(tr.artifact_accel, [True, False])
    assert tr.artifact_eeg[0] and tr.artifact_ppg[0]


def test_blink_burst_deflects_frontal_channels() -> None:
    sim = _started("compliant", 19)
    sim.schedule("blink_burst", 10.0, 5.0, rate_hz=2.0)
    x, t = _run(sim, 20.0, 2.0)[SignalKind.EEG]
    blinks = sim.blink_times
    assert np.sum((blinks >= 10.0) & (blinks < 15.0)) >= 4
    af7 = x[EEG_CH_NAMES.index("AF7")]
    burst = (t >= 10.0) & (t < 15.3)
    assert np.min(af7[burst]) < np.median(af7) - 80.0  # uV: blinks are 100-200 uV frontally


def test_tachycardic_profile_exceeds_130_bpm() -> None:
    sim = _started("tachycardic", 20)
    sim.fast_forward(240.0)
    tr = sim.truth_log()
    assert np.mean(tr.hr_bpm > 130.0) > 0.2  # an episode from 60 s for at least 60 s
    hr_beats = 60.0 / np.diff(sim.beat_times)
    assert np.mean(hr_beats > 130.0) > 0.2


def test_noisy_signal_is_flagged_much_of_the_time() -> None:
    sim = _started("noisy-signal", 21)
    x, t = _run(sim, 240.0, 60.0)[SignalKind.EEG]
    tr = sim.truth(t[::16])
    # shares over seeds 0-9: EEG flagged 0.47-0.64, PPG 0.26-0.46, EEG at a rail 0.12-0.27
    assert np.mean(tr.artifact_eeg) > 0.4
    assert np.mean(tr.artifact_ppg) > 0.2
    railed = np.mean(np.any((x == EEG_RAIL_UV[0]) | (x == EEG_RAIL_UV[1]), axis=0))
    assert railed > 0.08
    clean = _started("compliant", 21)
    clean.fast_forward(240.0)
    assert np.mean(clean.truth(t[::16]).artifact_eeg) < 0.15
