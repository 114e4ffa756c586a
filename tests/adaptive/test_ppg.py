"""Tests of adaptive.ppg: beat detection on synthetic pulses with known beat times, real data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from adaptive.ppg import Beats, PulseConfig, PulseDetector, ppg_beats, ppg_peaks, reference_pulse
from adaptive.types import Chunk

SFREQ = 64.0
# Steepest rise of reference_pulse relative to its onset (found numerically below, 0.15 s).
_PH = np.arange(0, 0.5, 1e-4)
UPSTROKE_S = float(_PH[np.argmax(np.diff(reference_pulse(_PH)))])
PEAK_S = float(_PH[np.argmax(reference_pulse(_PH))])


def synth_ppg(
    onsets: np.ndarray, duration_s: float, sfreq: float = SFREQ, noise: float = 0.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """PPG made of reference pulses starting at ``onsets`` (each pulse spans 1.5 s), plus noise."""
    t = np.arange(int(round(duration_s * sfreq))) / sfreq
    x = np.zeros_like(t)
    for o in onsets:
        m = (t >= o) & (t < o + 1.5)
        x[m] += reference_pulse(t[m] - o)
    x += noise * np.random.default_rng(seed).standard_normal(t.size)
    return x, t


def onsets_from_ibis(ibis: np.ndarray, start: float = 0.5) -> np.ndarray:
    return start + np.concatenate([[0.0], np.cumsum(ibis)])


def jittered_onsets(duration_s: float, hr_bpm: float = 70.0, jitter_s: float = 0.03, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(duration_s * hr_bpm / 60.0) + 2
    return onsets_from_ibis(60.0 / hr_bpm + jitter_s * rng.standard_normal(n))


def _chunks(x: np.ndarray, t: np.ndarray, cuts: list[int]) -> list[Chunk]:
    edges = [0, *sorted(set(c for c in cuts if 0 < c < x.size)), x.size]
    return [Chunk("ppg", x[np.newaxis, a:b], t[a:b], SFREQ, ("ppg",)) for a, b in zip(edges[:-1], edges[1:])]


def _feed(det: PulseDetector, chunks: list[Chunk]) -> Beats:
    return Beats.concatenate([det.update(c) for c in chunks])


def _assert_beats_equal(a: Beats, b: Beats) -> None:
    assert len(a) == len(b)
    for name in ("peak_times", "trough_times", "amplitudes", "peak_values", "trough_values", "detect_times",
                 "upstroke_times", "template_corr"):
        assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12, equal_nan=True)
    assert_array_equal(a.peak_samples, b.peak_samples)


# -- accuracy ---------------------------------------------------------------------------------------------
def test_beats_match_known_onsets() -> None:
    onsets = jittered_onsets(120.0)
    x, t = synth_ppg(onsets, 120.0, noise=0.02)
    beats = ppg_beats(x, SFREQ)
    truth = onsets[(onsets > 32.0) & (onsets < 118.0)]  # after the 30 s polarity calibration
    detected = beats.upstroke_times
    err = np.array([np.min(np.abs(detected - (o + UPSTROKE_S))) for o in truth])
    # Every beat found, and the steepest rise within 20 ms (1.3 samples at 64 Hz; the band-pass
    # delay is calibrated on the same pulse shape).
    assert np.all(err < 0.02), err.max()
    # Intervals: parabolic interpolation keeps the error far below the 15.6 ms sample step.
    m = (onsets[1:] > 32.0) & (onsets[1:] < 118.0)
    true_ibi = np.diff(onsets)[m]
    ibi = np.diff(detected)
    got = np.array([ibi[np.argmin(np.abs(detected[1:] - (o + UPSTROKE_S)))] for o in onsets[1:][m]])
    assert np.median(np.abs(got - true_ibi)) < 0.004  # s
    peak_err = np.array([np.min(np.abs(beats.peak_times - (o + PEAK_S))) for o in truth])
    assert np.median(peak_err) < 0.03  # s: the rounded peak is a less precise fiducial


def test_ppg_peaks_are_sample_indices_of_peaks() -> None:
    onsets = onsets_from_ibis(np.full(60, 0.8))
    x, t = synth_ppg(onsets, 50.0)
    peaks = ppg_peaks(x, SFREQ)
    assert peaks.dtype == np.int64
    assert np.all(np.abs(np.diff(peaks) - 0.8 * SFREQ) <= 1)
    # each index is within one sample of the true systolic peak
    assert np.all(np.min(np.abs(peaks[:, None] / SFREQ - (onsets[None, :] + PEAK_S)), axis=1) <= 1.5 / SFREQ)


def test_inverted_pulse_gives_same_beats() -> None:
    onsets = jittered_onsets(90.0, seed=3)
    x, t = synth_ppg(onsets, 90.0, noise=0.02)
    det_up, det_down = PulseDetector(SFREQ), PulseDetector(SFREQ)
    up, down = det_up.push(x, t), det_down.push(30000.0 - 500.0 * x, t)  # raw counts fall at systole
    assert det_up.polarity == "normal" and det_down.polarity == "inverted"
    assert len(up) == len(down)
    assert_allclose(up.upstroke_times, down.upstroke_times, atol=1e-9)
    # raw values are reported in the input's own units
    assert np.all(down.peak_values < 30000.0)


def test_fixed_polarity_skips_calibration() -> None:
    onsets = onsets_from_ibis(np.full(30, 0.9))
    x, t = synth_ppg(onsets, 25.0)
    beats = PulseDetector(SFREQ, PulseConfig(polarity="normal")).push(x, t)
    # without auto calibration the beats come out about half a second after the peak
    lag = beats.detect_times - beats.peak_times
    assert np.all((lag > 0.2) & (lag < 1.0)), lag


def test_beat_amplitude_follows_pulse_amplitude() -> None:
    onsets = onsets_from_ibis(np.full(80, 0.8))
    t = np.arange(int(66 * SFREQ)) / SFREQ
    x = np.zeros_like(t)
    for k, o in enumerate(onsets):
        m = (t >= o) & (t < o + 1.5)
        x[m] += (1.0 + 0.3 * math.sin(2 * math.pi * 0.25 * o)) * reference_pulse(t[m] - o)
    beats = ppg_beats(x, SFREQ)
    late = beats.peak_times > 35
    expected = 1.0 + 0.3 * np.sin(2 * np.pi * 0.25 * (beats.upstroke_times[late] - UPSTROKE_S))
    # amplitude modulation (respiratory-induced amplitude variation) is tracked: r > 0.9
    assert np.corrcoef(beats.amplitudes[late], expected)[0, 1] > 0.9


def test_template_correlation_high_for_clean_low_for_noise() -> None:
    onsets = jittered_onsets(80.0)
    x, t = synth_ppg(onsets, 80.0, noise=0.01)
    clean = ppg_beats(x, SFREQ, config=PulseConfig(polarity="normal"))
    assert np.nanmedian(clean.template_corr) > 0.95
    noise = np.random.default_rng(5).standard_normal(t.size)
    noisy = ppg_beats(noise, SFREQ, config=PulseConfig(polarity="normal"))
    assert len(noisy) == 0 or np.nanmedian(noisy.template_corr) < 0.85


# -- bad data --------------------------------------------------------------------------------------------
def test_nan_gap_drops_nearby_beats_and_recovers() -> None:
    onsets = onsets_from_ibis(np.full(120, 0.8))
    x, t = synth_ppg(onsets, 95.0)
    x[int(50 * SFREQ) : int(55 * SFREQ)] = np.nan
    beats = ppg_beats(x, SFREQ)
    assert not np.any((beats.peak_times > 50.0) & (beats.peak_times < 55.5))
    after = beats.peak_times[beats.peak_times > 58.0]
    assert after.size >= int((94.0 - 58.0) / 0.8) - 2
    assert np.all(np.isfinite(beats.peak_times))


def test_leading_nan_counts_in_sample_indices() -> None:
    onsets = onsets_from_ibis(np.full(60, 0.8), start=3.5)
    x, t = synth_ppg(onsets, 45.0)
    x[: int(3 * SFREQ)] = np.nan
    peaks = ppg_peaks(x, SFREQ)
    assert peaks.size > 0
    assert np.all(np.min(np.abs(peaks[:, None] / SFREQ - (onsets[None, :] + PEAK_S)), axis=1) <= 1.5 / SFREQ)


@pytest.mark.parametrize(
    "signal",
    [
        np.zeros(int(60 * SFREQ)),
        np.full(int(60 * SFREQ), np.nan),
        np.full(int(60 * SFREQ), 2.0**24 - 1),
    ],
    ids=["flat", "all-nan", "saturated"],
)
def test_dead_signals_give_no_beats(signal: np.ndarray) -> None:
    assert len(ppg_beats(signal, SFREQ)) == 0


@pytest.mark.parametrize(
    "signal",
    [
        np.where(np.arange(int(60 * SFREQ)) % 200 < 100, 1e9, -1e9),
        np.random.default_rng(0).standard_normal(int(60 * SFREQ)) * 1e12,
        np.where(np.random.default_rng(1).random(int(60 * SFREQ)) < 0.5, np.nan, 1.0),
        np.concatenate([np.full(1000, np.inf), np.zeros(int(60 * SFREQ) - 1000)]),
    ],
    ids=["square", "huge-noise", "half-nan", "inf"],
)
def test_garbage_never_raises(signal: np.ndarray) -> None:
    beats = ppg_beats(signal, SFREQ)
    # whatever is found (a square wave does look like a slow pulse) has finite times in order
    assert np.all(np.isfinite(beats.peak_times))
    assert np.all(np.diff(beats.peak_times) > 0)


# -- streaming ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("chunk", [3, 7, 64, 1000])
def test_chunk_invariance_sizes(chunk: int) -> None:
    onsets = jittered_onsets(70.0, seed=7)
    x, t = synth_ppg(onsets, 70.0, noise=0.05)
    x[int(40 * SFREQ) : int(41 * SFREQ)] = np.nan
    whole = PulseDetector(SFREQ).push(x, t)
    parts = _feed(PulseDetector(SFREQ), _chunks(x, t, list(range(chunk, x.size, chunk))))
    _assert_beats_equal(whole, parts)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=int(70 * SFREQ) - 1), max_size=40))
def test_chunk_invariance_random_splits(cuts: list[int]) -> None:
    onsets = jittered_onsets(70.0, seed=11)
    x, t = synth_ppg(onsets, 70.0, noise=0.05)
    whole = ppg_beats(x, SFREQ, times=t)
    _assert_beats_equal(whole, _feed(PulseDetector(SFREQ), _chunks(x, t, cuts)))


def test_reset_starts_afresh() -> None:
    onsets = jittered_onsets(50.0)
    x, t = synth_ppg(onsets, 50.0)
    det = PulseDetector(SFREQ)
    first = det.push(x, t)
    det.reset()
    _assert_beats_equal(first, det.push(x, t))


def test_polarity_switch_resumes_the_other_polarity_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    """After calibration the inactive polarity runs once per period (see PulseDetector notes).

    A lowered switch ratio makes the detector switch on a clean pulse; every beat emitted
    afterwards must be a beat of a detector that ran the active polarity over the whole record,
    so the caught-up detector is in exactly the state it would have had running block by block.
    """
    import adaptive.ppg as ppg_module

    monkeypatch.setattr(ppg_module, "_SWITCH_RATIO", 0.75)
    t = np.arange(0, 200, 1 / SFREQ)
    rng = np.random.default_rng(0)
    x = -reference_pulse(t % 0.85) + 0.05 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * 0.1 * t)
    fixed = {
        pol: ppg_beats(x, SFREQ, times=t, config=PulseConfig(polarity=pol)) for pol in ("normal", "inverted")
    }
    det = PulseDetector(SFREQ)
    switches = 0
    for i in range(0, t.size, 32):
        before = det.polarity
        got = det.push(x[i : i + 32], t[i : i + 32])
        after = det.polarity
        if before is None:
            continue  # calibration beats are released together at the decision
        switches += before != after
        for k in range(len(got)):
            ok = [
                bool(np.any(np.isclose(fixed[p].peak_times, got.peak_times[k], rtol=0, atol=1e-9)))
                for p in {before, after} if p is not None
            ]
            assert any(ok), (t[i], got.peak_times[k], before, after)
    assert switches >= 2
    whole = PulseDetector(SFREQ).push(x, t)
    _assert_beats_equal(whole, _feed(PulseDetector(SFREQ), _chunks(x, t, list(range(13, x.size, 13)))))


# -- wrong calls ---------------------------------------------------------------------------------------------
def test_wrong_calls_raise() -> None:
    det = PulseDetector(SFREQ)
    t = np.arange(64) / SFREQ
    with pytest.raises(ValueError, match="'kind'"):
        det.update(Chunk("eeg", np.zeros((1, 64)), t, SFREQ, ("TP9",)))
    with pytest.raises(ValueError, match="'sfreq'"):
        det.update(Chunk("ppg", np.zeros((1, 64)), t, 128.0, ("ppg",)))
    with pytest.raises(TypeError):
        det.update(np.zeros(64))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'times'"):
        det.push(np.zeros(64), np.zeros(10))
    with pytest.raises(ValueError, match="'ppg'"):
        ppg_beats(np.zeros((2, 64)), SFREQ)
    with pytest.raises(ValueError, match="'sfreq'"):
        PulseDetector(0.0)
    with pytest.raises(ValueError, match="'polarity'"):
        PulseConfig(polarity="up")
    with pytest.raises(ValueError, match="'l_freq'"):
        PulseConfig(l_freq=9.0)


# -- simulated patient and real recordings -------------------------------------------------------------------
def test_simulated_patient_beats() -> None:
    simulated = pytest.importorskip("sensors.simulated")
    sim = simulated.SimulatedPatient("compliant", seed=3)
    sim.start()
    chunks = [c for now in np.arange(1.0, 121.0, 1.0) for c in sim.poll(float(now)) if c.kind == "ppg"]
    det = PulseDetector(chunks[0].sfreq)
    beats = Beats.concatenate([det.update(c) for c in chunks])
    assert det.polarity == "inverted"  # raw Muse-like counts fall at systole
    truth = sim.beat_times
    truth = truth[(truth > 40.0) & (truth < 110.0)]
    got = beats.upstroke_times
    nearest = np.array([got[np.argmin(np.abs(got - (b + 0.25)))] for b in truth])
    delay = np.median(nearest - truth)  # pulse arrival delay of the model plus the upstroke
    err = np.abs(nearest - truth - delay)
    # every true beat has a detected beat within 50 ms of its expected place (a few ms of
    # beat-to-beat variation in the modelled pulse transit and the 64 Hz sampling)
    assert np.mean(err < 0.05) > 0.97, np.sort(err)[-5:]
    in_span = got[(got > truth[0] + delay - 0.3) & (got < truth[-1] + delay + 0.3)]
    assert in_span.size <= truth.size + 2  # no spurious extra beats
    ibi_err = np.diff(nearest) - np.diff(truth)
    assert np.median(np.abs(ibi_err)) < 0.01  # s


@pytest.mark.shared_data
def test_neurokit_resting_beat_count_matches_ecg(shared_data) -> None:  # type: ignore[no-untyped-def]
    pd = pytest.importorskip("pandas")
    d = pd.read_csv(shared_data / "neurokit_resting" / "bio_resting_5min_100hz.csv")
    beats = ppg_beats(d["PPG"].to_numpy(float), 100.0)
    # README: median HR about 87 bpm over 5 min -> about 430 beats; we lose only the
    # polarity-calibration beats (none: they are emitted late) and edge beats.
    hr = 60.0 / np.median(np.diff(beats.upstroke_times))
    assert abs(hr - 87.0) < 2.0
    assert 420 <= len(beats) <= 440
