"""Reference checks of the fast paths inside adaptive.eeg's per-window step.

``_features`` sums band powers over only the spectrum bins some band uses, takes the blink
detector's 0.1 s block means from the detrended window, skips the TP9/TP10 common-deflection
test when either channel stays below the threshold, and detects gaps and rail contact from
per-channel max/min. Each is compared here with a plain numpy version of the documented
definition.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from adaptive.eeg import MUSE_CH_NAMES, ArtefactFlag, EegConfig, eeg_features, eeg_psd

NAMES = MUSE_CH_NAMES  # TP9, AF7, AF8, TP10


def noisy_window(rng: np.random.Generator, sfreq: float, n: int) -> np.ndarray:
    """White noise plus alpha, mains and EMG-band sines and a drift: every band has power."""
    t = np.arange(n) / sfreq
    x = 5.0 * rng.standard_normal((len(NAMES), n))
    for f, a in ((10.0, 20.0), (50.0, 15.0), (60.0, 10.0), (75.0, 6.0)):
        x += a * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi, (len(NAMES), 1)))
    return x + 30.0 * t / t[-1] + 100.0


def reference_powers(x: np.ndarray, sfreq: float, cfg: EegConfig) -> dict[str, np.ndarray]:
    """Band powers and RMS from the full multitaper PSD, with the masks written out."""
    freqs, psd = eeg_psd(x, sfreq, taper_nw=cfg.taper_nw)
    df = freqs[1] - freqs[0]

    def band(lo: float, hi: float) -> np.ndarray:
        return (freqs >= lo) & (freqs < hi)

    line = np.zeros(freqs.size, dtype=bool)
    near = np.zeros(freqs.size, dtype=bool)
    for f0 in cfg.line_freqs:
        line |= band(f0 - 2, f0 + 2)
        near |= band(f0 - 2, f0 + 2) | band(2 * f0 - 2, 2 * f0 + 2)
    emg = band(30.0, min(100.0, sfreq / 2 - 2)) & ~near
    bands = [(1, 4), (4, 8), (8, 13), (13, 30), (30, 45)]
    absolute = np.stack([psd[:, band(lo, hi)].sum(axis=1) * df for lo, hi in bands], axis=1)
    return {
        "abs": absolute,
        "rel": absolute / absolute.sum(axis=1, keepdims=True),
        "broad": np.sqrt(psd[:, band(*cfg.broad_band)].sum(axis=1) * df),
        "line": np.sqrt(psd[:, line].sum(axis=1) * df),
        "emg": np.sqrt(psd[:, emg].sum(axis=1) * df),
    }


@pytest.mark.parametrize(("sfreq", "window_s"), [(256.0, 4.0), (250.0, 4.0), (500.0, 2.0), (128.0, 8.0)])
def test_band_powers_over_used_bins_equal_full_spectrum(sfreq: float, window_s: float) -> None:
    cfg = EegConfig(window_s=window_s)
    n = int(round(window_s * sfreq))
    x = noisy_window(np.random.default_rng(int(sfreq)), sfreq, n)
    feat = eeg_features(x, sfreq, config=cfg)
    ref = reference_powers(x, sfreq, cfg)
    # Only rounding differs (other summation order, other detrend arithmetic): 1e-9 is far
    # below any physiological resolution and far above double-precision rounding.
    assert_allclose(feat.abs_power_uv2, ref["abs"], rtol=1e-9)
    assert_allclose(feat.rel_power, ref["rel"], rtol=1e-9)
    assert_allclose(feat.broad_rms_uv, ref["broad"], rtol=1e-9)
    assert_allclose(feat.line_noise_uv, ref["line"], rtol=1e-9)
    assert_allclose(feat.emg_uv, ref["emg"], rtol=1e-9)


def block_peaks(x: np.ndarray, sfreq: float) -> np.ndarray:
    """Reference blink statistic: 0.1 s block means (tiling the end) of the detrended window."""
    n = x.shape[1]
    t = np.arange(n)
    xd = x - np.array([np.polyval(np.polyfit(t, row, 1), t) for row in x])
    box = int(round(0.1 * sfreq))
    k = n // box
    return xd[:, n - k * box :].reshape(x.shape[0], k, box).mean(axis=2)


def blink(n: int, center: int, width: int) -> np.ndarray:
    """A raised-cosine deflection of unit height (an eye blink's shape)."""
    out = np.zeros(n)
    i = np.arange(width)
    out[center - width // 2 : center - width // 2 + width] = 0.5 * (1 - np.cos(2 * np.pi * i / width))
    return out


def test_frontal_and_common_blinks_match_reference_near_threshold() -> None:
    sfreq, n = 256.0, 1024
    cfg = EegConfig()
    shape = blink(n, 600, 77)
    amp0 = cfg.blink_uv / np.abs(block_peaks(shape[np.newaxis], sfreq)).max()
    # 0.01 uV of noise moves the block means by ~0.002 uV, well inside the +-0.1 % (0.07 uV)
    # sweep of amplitudes around the threshold: both outcomes occur
    x = 0.01 * np.random.default_rng(3).standard_normal((4, n))
    seen = set()
    for amp in amp0 * (1.0 + np.linspace(-1e-3, 1e-3, 9)):
        frontal = x.copy()
        frontal[1] += amp * shape
        ref = (np.abs(block_peaks(frontal, sfreq)).max(axis=1) >= cfg.blink_uv).tolist()
        feat = eeg_features(frontal, sfreq, config=cfg)
        # frontal channels: their own peak; TP9/TP10 only through a common deflection (none)
        assert [ArtefactFlag.BLINK in f for f in feat.flags] == [False, ref[1], ref[2], False]
        # Fpz reference: the same blink on TP9 and TP10 (same sign), TP10 a little stronger
        both = x.copy()
        both[0] += amp * shape
        both[3] += amp * 1.02 * shape
        s = block_peaks(both, sfreq)
        common = bool(max(np.minimum(s[0], s[3]).max(), -np.maximum(s[0], s[3]).min()) >= cfg.blink_uv)
        feat = eeg_features(both, sfreq, config=cfg)
        assert (ArtefactFlag.BLINK in feat.flags[0]) == common
        assert (ArtefactFlag.BLINK in feat.flags[3]) == common
        seen.add((ref[1], common))
    assert seen == {(False, False), (True, True)}
    # opposite signs on TP9 and TP10 (a horizontal saccade) are not a blink
    sacc = x.copy()
    sacc[0] += 2 * amp0 * shape
    sacc[3] -= 2 * amp0 * shape
    feat = eeg_features(sacc, sfreq, config=cfg)
    assert ArtefactFlag.BLINK not in feat.flags[0] and ArtefactFlag.BLINK not in feat.flags[3]


@pytest.mark.parametrize(
    ("value", "railed"), [(990.0, True), (-990.0, True), (989.99, False), (-989.99, False)]
)
def test_rail_detection_from_channel_extremes(value: float, railed: bool) -> None:
    x = np.random.default_rng(5).standard_normal((4, 1024)) * 10
    x[2, 500] = value
    feat = eeg_features(x, 256.0)
    assert [ArtefactFlag.RAILED in f for f in feat.flags] == [False, False, railed, False]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_gaps(bad: float) -> None:
    x = np.random.default_rng(6).standard_normal((4, 1024)) * 10
    clean = eeg_features(x, 256.0)
    x[1, 100:110] = bad
    feat = eeg_features(x, 256.0)
    assert ArtefactFlag.MISSING in feat.flags[1]
    assert feat.channel_quality[1] == pytest.approx(1 - 10 / 1024)
    # the other channels are untouched (identical arithmetic on identical rows)
    for i in (0, 2, 3):
        assert feat.flags[i] == clean.flags[i]
        assert_allclose(feat.abs_power_uv2[i], clean.abs_power_uv2[i], rtol=1e-12)
