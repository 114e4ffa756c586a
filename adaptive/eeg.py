"""EEG band powers, artefact flags and a relaxation index (4-channel Muse first).

Every ``hop_s`` (1 s) the last ``window_s`` (4 s) of EEG are analysed once:

1. Each channel is linearly detrended and its PSD estimated with a multitaper estimate
   (``K = 2 NW - 1`` DPSS tapers, ``NW = 3``: 0.75 Hz half-bandwidth over 4 s, precomputed),
   which has about 1/K the variance of a single Hann periodogram and costs K small ``rfft``.
2. Band powers (uV^2) per channel: delta 1-4, theta 4-8, alpha 8-13, beta 13-30 and gamma
   30-45 Hz, absolute and relative to their sum (1-45 Hz).
3. Artefact flags per channel (:class:`ArtefactFlag`), from fixed, physiologically motivated
   thresholds in microvolts (:class:`EegConfig` documents each one).
4. The relaxation index, from posterior relative alpha (below).

Relaxation index
----------------
Posterior (occipito-parietal) alpha rises when a person relaxes, closes the eyes or stops
attending to the outside world, and is suppressed by visual attention and mental effort
(Berger's alpha blocking; Klimesch 1999, Brain Res Rev 29:169). On the Muse the electrodes
closest to the alpha generators are TP9/TP10, so the index uses

``alpha_rel = sum_ch P_alpha(8-13 Hz) / sum_ch P_broad(2-40 Hz)`` over the clean posterior
channels (power-weighted pooling), and maps it with a Hill (log-logistic) function::

    relaxation = alpha_rel**n / (alpha_rel**n + a50**n),   a50 = 0.15, n = 2

which is the logistic ``1 / (1 + exp(-n (ln alpha_rel - ln a50)))``. Why these constants:

* ``a50 = 0.15``: an EEG with *no* alpha peak, just the aperiodic ``1/f^chi`` background with
  the adult exponent ``chi = 1..2``, puts 0.10-0.16 of its 2-40 Hz power in 8-13 Hz. The index
  crosses 0.5 where an alpha peak starts to stand out of that background.
* ``n = 2``: each doubling of relative alpha multiplies the odds by 4, so the typical task /
  eyes-open level (0.03-0.06, alpha blocked and eye movements adding slow power) maps to
  0.04-0.14 and the typical relaxed / eyes-closed level (0.3-0.5) to 0.80-0.92. The index is
  bounded, monotonic and needs no calibration; the constants come from these textbook ranges,
  not from fitting files, and the rank-based benchmark does not depend on them at all.
* The broad band starts at 2 Hz, not 1 Hz: below 2 Hz a dry-electrode wearable records mostly
  eye movements, blinks, sweat and electrode motion, not brain.
* Multitaper and power-weighted pooling over TP9+TP10 reduce the variance of a 4 s estimate.

Optional session refinements (off by default): ``baseline_s`` replaces ``a50`` by the median
relative alpha of the first clean ``baseline_s`` seconds (then 0.5 means "as relaxed as at the
start", see :meth:`EegEstimator.set_baseline`), and ``smoothing_s`` applies a causal
exponential moving average to ``ln alpha_rel`` before the mapping (latency ~ ``smoothing_s``).

Muse specifics
--------------
The Muse references every channel to Fpz, just above the eyes. A blink therefore appears with
inverted sign on *both* TP9 and TP10 (the reference moves), and only weakly on AF7/AF8 (close to
the reference). Blinks are flagged on a frontal channel with a large slow deflection, and on
both TP9/TP10 when both deflect with the same sign by more than the threshold at the same time
(horizontal saccades move TP9 and TP10 in opposite directions and are not blinks). The Muse
ADC saturates near +-1000 uV.

Validation (``experiments/bench/eeg.py``, 4 s windows every 1 s, within-subject AUC on
``muse_mental_state_bird``): relaxed vs concentrating 0.955, relaxed vs neutral 0.970 per
window. Cost: one 5-taper spectrum of 4 x 1024 samples per hop, about 0.17 ms on the 2-core CI
machine, half of it numpy's batched ``rfft`` of the 20 tapered rows; the rest is three compiled
kernels (``adaptive._jit``) and building the result. Updates that complete no window only copy.

Channel roles are chosen by name (:func:`eeg_channel_roles`): channels whose name contains
``AUX`` are ignored; posterior = TP9/TP10, else 10-20 names O*, PO*, P*, TP*, else every
channel; frontal = AF7/AF8, else Fp*, AF*, F* (digit or z), else none (no frontal blink check).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from enum import IntFlag
from functools import lru_cache

import numpy as np
from scipy.signal.windows import dpss

from ._checks import check_chunk
from ._jit import kernel
from .errors import ConfigError
from .types import Chunk, Estimate, FloatArray, Metric, SignalKind

__all__ = [
    "BANDS",
    "MUSE_CH_NAMES",
    "ArtefactFlag",
    "EegChannelRoles",
    "EegConfig",
    "EegEstimator",
    "EegFeatures",
    "RelaxationIndex",
    "eeg_band_power",
    "eeg_channel_roles",
    "eeg_features",
    "eeg_psd",
    "relaxation_from_alpha_rel",
    "relaxation_index",
]

logger = logging.getLogger(__name__)

#: Channel order of the Muse 2 / Muse S EEG stream (muselsl, BrainFlow), without Right AUX.
MUSE_CH_NAMES: tuple[str, ...] = ("TP9", "AF7", "AF8", "TP10")

#: Reported EEG bands in Hz, [low, high). Contiguous, so relative powers sum to 1 over 1-45 Hz.
BANDS: tuple[tuple[str, float, float], ...] = (
    ("delta", 1.0, 4.0),
    ("theta", 4.0, 8.0),
    ("alpha", 8.0, 13.0),
    ("beta", 13.0, 30.0),
    ("gamma", 30.0, 45.0),
)


class ArtefactFlag(IntFlag):
    """What is wrong with one channel in one window (combine with ``|``, test with ``in``).

    ``MISSING``, ``FLAT``, ``RAILED`` and ``POOR_CONTACT`` make the channel unusable (quality
    0; ``MISSING`` only above ``max_missing``); ``MUSCLE`` halves its quality and removes it
    from the relaxation index when a clean posterior channel is left; ``BLINK`` costs 20 %.
    """

    NONE = 0
    MISSING = 1  # NaN samples (dropped packets)
    FLAT = 2  # no signal: disconnected amplifier, stuck values
    RAILED = 4  # saturated ADC (Muse: near +-1000 uV)
    POOR_CONTACT = 8  # large line noise, very high variance or DC drift
    MUSCLE = 16  # high-frequency (EMG) power: jaw, forehead, neck tension
    BLINK = 32  # large slow deflection from the eyes


_UNUSABLE = ArtefactFlag.MISSING | ArtefactFlag.FLAT | ArtefactFlag.RAILED | ArtefactFlag.POOR_CONTACT


def _config_error(name: str, expected: str, got: object, fix: str = "") -> ConfigError:
    return ConfigError(f"Invalid value for {name!r}: expected {expected}, got {got!r}. {fix}".strip())


@dataclass(frozen=True, slots=True)
class EegConfig:
    """Settings of :class:`EegEstimator` and :func:`relaxation_index` (frozen, validated).

    Parameters
    ----------
    window_s, hop_s : float
        Analysis window and hop in seconds (4 s every 1 s: 0.25 Hz bins, 1 estimate/s).
    hop_offset_s : float
        Phase of the hops within ``hop_s`` (``0 <= hop_offset_s < hop_s``): a window ends at
        the sample whose 1-based index minus ``round(hop_offset_s * sfreq)`` is a multiple of
        the hop.  :class:`~adaptive.pipeline.DspPipeline` uses it to keep the EEG's work out of
        the ticks that carry the other estimators' work.
    taper_nw : float
        Multitaper time-half-bandwidth product; ``K = 2 NW - 1`` tapers. 3 gives a 0.75 Hz
        half-bandwidth over 4 s (narrow enough for the 5 Hz alpha band) and 5 tapers.
    alpha_band, broad_band : tuple of float
        Bands of the index's relative alpha, ``P(alpha_band) / P(broad_band)`` in Hz.
    alpha_rel_half : float
        Relative alpha at which the absolute index is 0.5 (aperiodic-background level).
    relaxation_exponent : float
        Hill exponent ``n``: odds multiply by ``2**n`` per doubling of relative alpha.
    smoothing_s : float
        Time constant of a causal EMA on ``ln(alpha_rel)`` before the mapping; 0 disables.
    baseline_s : float
        If > 0, the median relative alpha of the first ``baseline_s`` seconds of windows with
        relaxation quality >= ``min_baseline_quality`` replaces ``alpha_rel_half``.
    min_baseline_quality : float
        Quality a window needs to count towards the baseline.
    rail_uv : float or None
        A sample with ``|x| >= rail_uv`` is saturated (Muse: 12-bit ADC, +-1000 uV full scale,
        so 990 uV is within 20 LSB of the rail). None disables the check (devices with a DC
        offset, e.g. Emotiv).
    flat_uv : float
        1-45 Hz RMS below this means a flat channel (Muse LSB is 0.49 uV; scalp EEG has an RMS
        of 5-50 uV there).
    max_rms_uv : float
        2-40 Hz RMS above this is not EEG (poor contact or movement; awake EEG is < 50 uV).
    line_uv : float
        RMS within +-2 Hz of 50/60 Hz above this means poor contact (dry electrodes with good
        contact show < 20 uV; a lifted electrode hundreds).
    drift_uv : float
        Linear-trend excursion across the window above this means a drifting electrode.
    muscle_uv : float
        RMS of 30-100 Hz (line harmonics excluded, capped below Nyquist) above this is EMG:
        clean scalp EEG has 1-4 uV there, muscle tension adds tens.
    blink_uv : float
        A 0.1 s block mean of the detrended window beyond +-this is a blink: blinks are
        50-300 uV near the eyes, and awake EEG's slow waves rarely exceed 40 uV.
    max_missing : float
        Fraction of NaN samples above which a channel is unusable.
    line_freqs : tuple of float
        Mains frequencies whose +-2 Hz (and first harmonic) are measured, not used for EMG.
    """

    window_s: float = 4.0
    hop_s: float = 1.0
    hop_offset_s: float = 0.0
    taper_nw: float = 3.0
    alpha_band: tuple[float, float] = (8.0, 13.0)
    broad_band: tuple[float, float] = (2.0, 40.0)
    alpha_rel_half: float = 0.15
    relaxation_exponent: float = 2.0
    smoothing_s: float = 0.0
    baseline_s: float = 0.0
    min_baseline_quality: float = 0.5
    rail_uv: float | None = 990.0
    flat_uv: float = 0.5
    max_rms_uv: float = 100.0
    line_uv: float = 50.0
    drift_uv: float = 200.0
    muscle_uv: float = 8.0
    blink_uv: float = 70.0
    max_missing: float = 0.25
    line_freqs: tuple[float, ...] = (50.0, 60.0)

    def __post_init__(self) -> None:
        for name in ("alpha_band", "broad_band", "line_freqs"):  # lists from TOML -> hashable tuples
            try:
                object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
            except (TypeError, ValueError):
                raise _config_error(name, "a sequence of frequencies in Hz", getattr(self, name)) from None
        positive = (
            "window_s", "hop_s", "alpha_rel_half", "relaxation_exponent", "flat_uv", "max_rms_uv",
            "line_uv", "drift_uv", "muscle_uv", "blink_uv",
        )  # fmt: skip
        for name in positive:
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise _config_error(name, "a positive number", v)
        for name in ("smoothing_s", "baseline_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise _config_error(name, "a number >= 0 (0 disables)", v)
        if not (isinstance(self.taper_nw, (int, float)) and 1.0 <= self.taper_nw <= 8.0):
            raise _config_error("taper_nw", "a number in [1, 8]", self.taper_nw)
        if self.hop_s > self.window_s:
            raise _config_error(
                "hop_s", f"at most window_s={self.window_s}", self.hop_s, "Windows would leave gaps."
            )
        off = self.hop_offset_s
        if not (isinstance(off, (int, float)) and 0.0 <= off < self.hop_s):
            raise _config_error("hop_offset_s", f"a number in [0, hop_s={self.hop_s})", off)
        for name in ("min_baseline_quality", "max_missing"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
                raise _config_error(name, "a number in [0, 1]", v)
        if self.alpha_rel_half >= 1.0:
            raise _config_error("alpha_rel_half", "a fraction in (0, 1)", self.alpha_rel_half)
        for name in ("alpha_band", "broad_band"):
            band = getattr(self, name)
            if len(band) != 2 or not (0 <= band[0] < band[1]):
                raise _config_error(name, "(low_hz, high_hz) with 0 <= low < high", band)
        if not (self.broad_band[0] <= self.alpha_band[0] and self.alpha_band[1] <= self.broad_band[1]):
            raise _config_error("alpha_band", f"a band inside broad_band={self.broad_band}", self.alpha_band)
        if self.rail_uv is not None and not (math.isfinite(self.rail_uv) and self.rail_uv > 0):
            raise _config_error("rail_uv", "a positive number or None", self.rail_uv)
        if any(not (math.isfinite(f) and f > 0) for f in self.line_freqs):
            raise _config_error("line_freqs", "positive mains frequencies in Hz", self.line_freqs)


# --------------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _tapers(n: int, nw: float) -> FloatArray:
    k = max(1, int(round(2 * nw)) - 1)
    tap = np.atleast_2d(np.asarray(dpss(n, nw, k), dtype=np.float64))
    tap /= np.sqrt(np.sum(tap**2, axis=1, keepdims=True))  # unit energy: PSD scale is 2/fs
    tap.flags.writeable = False
    return tap


def eeg_psd(window: FloatArray, sfreq: float, *, taper_nw: float = 3.0) -> tuple[FloatArray, FloatArray]:
    """Multitaper power spectral density of each channel (mean and linear trend removed).

    Parameters
    ----------
    window : array of shape (n_channels, n_times)
        EEG in microvolts. NaN propagates (use :func:`eeg_features` for data with gaps).
    sfreq : float
        Sampling rate in Hz.
    taper_nw : float
        Time-half-bandwidth product of the DPSS tapers (``2 NW - 1`` tapers).

    Returns
    -------
    freqs : array of shape (n_freqs,)
        ``rfftfreq(n_times, 1 / sfreq)`` in Hz.
    psd : array of shape (n_channels, n_freqs)
        One-sided PSD in uV^2/Hz; ``psd.sum(-1) * sfreq / n_times`` is the signal variance.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(1024) / 256
    >>> f, p = eeg_psd(np.sin(2 * np.pi * 10 * t)[np.newaxis], 256.0)
    >>> float(f[p[0].argmax()])
    10.0
    """
    x = np.atleast_2d(np.asarray(window, dtype=np.float64))
    n = x.shape[-1]
    sfreq = float(sfreq)
    xd = _detrend(x)[0]
    return np.fft.rfftfreq(n, 1.0 / sfreq), _mt_psd(xd, sfreq, taper_nw)


def _mt_psd(xd: FloatArray, sfreq: float, nw: float) -> FloatArray:
    tap = _tapers(xd.shape[-1], float(nw))
    spec = np.fft.rfft(xd[:, np.newaxis, :] * tap[np.newaxis], axis=-1)
    psd = (spec.real**2 + spec.imag**2).mean(axis=1) * (2.0 / sfreq)
    psd[:, 0] *= 0.5
    if xd.shape[-1] % 2 == 0:
        psd[:, -1] *= 0.5
    return np.asarray(psd, dtype=np.float64)


def _detrend(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Remove each row's least-squares line; return (residual, slope per sample)."""
    n = x.shape[-1]
    t = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    tt = float(np.dot(t, t)) or 1.0
    mean = x.mean(axis=-1, keepdims=True)
    slope = (x - mean) @ t / tt
    return x - mean - slope[:, np.newaxis] * t, slope


def _band_sum(psd: FloatArray, freqs: FloatArray, lo: float, hi: float) -> FloatArray:
    df = float(freqs[1] - freqs[0]) if freqs.size > 1 else 1.0
    mask = (freqs >= lo) & (freqs < hi)
    return np.asarray(psd[..., mask].sum(axis=-1) * df, dtype=np.float64)


def eeg_band_power(
    window: FloatArray,
    sfreq: float,
    *,
    bands: Sequence[tuple[str, float, float]] = BANDS,
    taper_nw: float = 3.0,
) -> tuple[FloatArray, FloatArray]:
    """Absolute and relative band powers of each channel of one window (NeuroKit style).

    Parameters
    ----------
    window : array of shape (n_channels, n_times)
        EEG in microvolts.
    sfreq : float
        Sampling rate in Hz.
    bands : sequence of (name, low_hz, high_hz)
        Bands, [low, high). Default :data:`BANDS` (delta 1-4 ... gamma 30-45 Hz).
    taper_nw : float
        Multitaper time-half-bandwidth product.

    Returns
    -------
    absolute : array of shape (n_channels, n_bands)
        Band power in uV^2 (integral of the PSD over the band).
    relative : array of shape (n_channels, n_bands)
        ``absolute`` divided by its sum over the given bands.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(1024) / 256
    >>> absolute, rel = eeg_band_power(20 * np.sin(2 * np.pi * 10 * t)[np.newaxis], 256.0)
    >>> round(float(absolute[0, 2])), round(float(rel[0, 2]), 2)  # 20 uV sine: 200 uV^2 of alpha
    (200, 1.0)
    """
    freqs, psd = eeg_psd(window, sfreq, taper_nw=taper_nw)
    absolute = np.stack([_band_sum(psd, freqs, lo, hi) for _, lo, hi in bands], axis=-1)
    total = absolute.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.where(total > 0, absolute / np.where(total > 0, total, 1.0), np.nan)
    return absolute, relative


def relaxation_from_alpha_rel(
    alpha_rel: float | FloatArray,
    *,
    alpha_rel_half: float = 0.15,
    exponent: float = 2.0,
) -> float | FloatArray:
    """Map relative alpha to a 0..1 relaxation index: ``a**n / (a**n + a50**n)``.

    Parameters
    ----------
    alpha_rel : float or array
        Posterior relative alpha (8-13 Hz over 2-40 Hz power), 0..1. NaN gives NaN.
    alpha_rel_half : float
        ``a50``, the relative alpha that maps to 0.5 (see the module notes for why 0.15).
    exponent : float
        Hill exponent ``n`` (2: the odds quadruple per doubling of relative alpha).

    Returns
    -------
    relaxation : float or array
        0 (alpha absent) to 1 (alpha dominates), monotonic in ``alpha_rel``.

    Examples
    --------
    >>> round(relaxation_from_alpha_rel(0.15), 2), round(relaxation_from_alpha_rel(0.4), 2)
    (0.5, 0.88)
    """
    a = np.clip(np.asarray(alpha_rel, dtype=np.float64), 1e-9, 1.0)
    out = 1.0 / (1.0 + np.exp(-exponent * (np.log(a) - math.log(alpha_rel_half))))
    out = np.where(np.isnan(np.asarray(alpha_rel, dtype=np.float64)), np.nan, out)
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True, slots=True)
class EegChannelRoles:
    """Which rows of a chunk are analysed, posterior (alpha) and frontal (blinks).

    Indices refer to the chunk's rows; ``posterior`` and ``frontal`` are subsets of
    ``analysed``. ``muse_reference`` is True for the Muse montage (TP9 and TP10 present), where
    the Fpz reference copies blinks onto TP9/TP10.
    """

    analysed: tuple[int, ...]
    posterior: tuple[int, ...]
    frontal: tuple[int, ...]
    muse_reference: bool


_POSTERIOR_RE = re.compile(r"^(O|PO|P|TP)(\d+|Z)$")
_FRONTAL_RE = re.compile(r"^(FP|AF|F)(\d+|Z)$")


@lru_cache(maxsize=64)
def eeg_channel_roles(ch_names: tuple[str, ...]) -> EegChannelRoles:
    """Assign channel roles by name (documented fallback for montages other than the Muse).

    Parameters
    ----------
    ch_names : tuple of str
        One name per row of the data.

    Returns
    -------
    roles : EegChannelRoles

    Raises
    ------
    ValueError
        If names repeat or every channel is an auxiliary channel.

    Notes
    -----
    * Ignored: names containing ``AUX`` (Muse ``Right AUX``), case-insensitive.
    * Posterior: ``TP9``/``TP10`` if present; else 10-20 names ``O*``, ``PO*``, ``P*``, ``TP*``
      followed by a number or ``z``; else every analysed channel.
    * Frontal: ``AF7``/``AF8`` if present; else ``Fp*``, ``AF*``, ``F*`` followed by a number
      or ``z``; else none.
    """
    names = tuple(str(n) for n in ch_names)
    if len(set(names)) != len(names):
        raise ValueError(f"Invalid value for 'ch_names': expected unique names, got {names!r}.")
    upper = [n.strip().upper() for n in names]
    analysed = tuple(i for i, n in enumerate(upper) if "AUX" not in n)
    if not analysed:
        raise ValueError(
            f"Invalid value for 'ch_names': expected at least one EEG channel, got only auxiliary "
            f"channels {names!r}. Pass the EEG channel names."
        )
    muse_post = tuple(i for i in analysed if upper[i] in ("TP9", "TP10"))
    posterior = muse_post or tuple(i for i in analysed if _POSTERIOR_RE.match(upper[i])) or analysed
    muse_front = tuple(i for i in analysed if upper[i] in ("AF7", "AF8"))
    frontal = muse_front or tuple(i for i in analysed if _FRONTAL_RE.match(upper[i]))
    return EegChannelRoles(analysed, posterior, frontal, muse_reference=len(muse_post) == 2)


@dataclass(frozen=True, slots=True, eq=False)
class EegFeatures:
    """Everything measured on one window (arrays are read-only).

    Attributes
    ----------
    time : float
        Session time (s) of the window's last sample.
    ch_names : tuple of str
        Analysed channels (auxiliary channels dropped), the rows of the arrays below.
    band_names : tuple of str
        Columns of the band arrays (delta, theta, alpha, beta, gamma).
    abs_power_uv2 : array of shape (n_channels, n_bands)
        Absolute band power in uV^2 (NaN for channels with too many missing samples).
    rel_power : array of shape (n_channels, n_bands)
        Band power relative to the 1-45 Hz total.
    flags : tuple of ArtefactFlag
        Artefacts per channel.
    channel_quality : array of shape (n_channels,)
        0 (unusable) to 1 (clean) per channel.
    line_noise_uv, emg_uv, broad_rms_uv : array of shape (n_channels,)
        RMS near the mains frequencies, in 30-100 Hz without them, and in 2-40 Hz.
    alpha_rel : float
        Pooled posterior relative alpha used by the index (NaN if no usable channel).
    relaxation_channels : tuple of str
        Channels pooled into ``alpha_rel``.
    relaxation : float
        Relaxation index 0..1 emitted for this window (includes smoothing and baseline).
    relaxation_quality : float
        Mean channel quality over the posterior channels.
    quality : float
        Mean channel quality over all analysed channels (:attr:`Metric.QUALITY_EEG`).
    """

    time: float
    ch_names: tuple[str, ...]
    band_names: tuple[str, ...]
    abs_power_uv2: FloatArray
    rel_power: FloatArray
    flags: tuple[ArtefactFlag, ...]
    channel_quality: FloatArray
    line_noise_uv: FloatArray
    emg_uv: FloatArray
    broad_rms_uv: FloatArray
    alpha_rel: float
    relaxation_channels: tuple[str, ...]
    relaxation: float
    relaxation_quality: float
    quality: float

    def band(self, name: str) -> FloatArray:
        """Absolute power (uV^2) of band ``name`` for every channel."""
        if name not in self.band_names:
            raise ValueError(f"Invalid value for 'name': expected one of {self.band_names}, got {name!r}.")
        return self.abs_power_uv2[:, self.band_names.index(name)]

    def flagged(self, flag: ArtefactFlag) -> tuple[str, ...]:
        """Names of the channels carrying ``flag``."""
        return tuple(n for n, f in zip(self.ch_names, self.flags) if flag & f)


# Columns of _Plan.weights after the reported bands.
_ALPHA, _BROAD, _LINE, _EMG = len(BANDS), len(BANDS) + 1, len(BANDS) + 2, len(BANDS) + 3


@dataclass(frozen=True)
class _Plan:
    """Everything about one (n_times, sfreq, config) that can be computed once."""

    n: int
    tapers: FloatArray  # (n_tapers, n) unit-energy DPSS, C order
    bin0: int  # first spectrum bin any band uses (1 Hz)
    weights: FloatArray  # (n_used_bins, n_bands + 4): sum_k |X_k|^2 of bin bin0 + b -> power in uV^2
    runs: np.ndarray  # (n_runs, 3) int64: (column, first, end) runs of used bins a column sums
    scale: float  # the weights' non-zero value (one-sided PSD, taper mean and df)
    lines: FloatArray  # (2, n): t (centred sample index) and t / (t @ t); line = mean + slope * t
    proj: FloatArray  # (n, 8): x @ proj = (mean, slope per sample, 6 zero columns)
    basis: FloatArray  # (2, n): (mean, slope) @ basis = the least-squares line
    box: int  # samples per 0.1 s blink-detector block
    block_start: int  # first sample of the blocks tiling the end of the window


@lru_cache(maxsize=16)
def _plan(n: int, sfreq: float, cfg: EegConfig) -> _Plan:
    freqs = np.fft.rfftfreq(n, 1.0 / sfreq)
    nyq = sfreq / 2.0

    def mask(lo: float, hi: float) -> np.ndarray:
        return (freqs >= lo) & (freqs < hi)

    line = np.zeros_like(freqs, dtype=bool)
    near_line = np.zeros_like(freqs, dtype=bool)
    for f0 in cfg.line_freqs:
        line |= mask(f0 - 2.0, f0 + 2.0)
        for k in (1, 2):
            near_line |= mask(k * f0 - 2.0, k * f0 + 2.0)
    emg = mask(30.0, min(100.0, nyq - 2.0)) & ~near_line
    extra = [mask(*cfg.alpha_band), mask(*cfg.broad_band), line, emg]
    cols = np.stack([mask(lo, hi) for _, lo, hi in BANDS] + extra, axis=1)
    tapers = np.ascontiguousarray(_tapers(n, float(cfg.taper_nw)))  # C order for _taper_blocks
    # One-sided PSD = 2 |X|^2 / sfreq (unit-energy tapers), averaged over tapers, times df.
    # No band contains DC or Nyquist, so no bin needs the one-sided halving.
    scale = 2.0 / sfreq / tapers.shape[0] * (sfreq / n)
    # only the bins some band uses (1-100 Hz at 256 Hz) enter the band sums
    nz = np.flatnonzero(cols.any(axis=1))
    bin0 = int(nz[0])
    cols = cols[bin0 : int(nz[-1]) + 1]
    weights = np.ascontiguousarray(cols * scale)
    runs = []
    for j in range(cols.shape[1]):
        edges = np.diff(np.concatenate([[0], cols[:, j].astype(np.int64), [0]]))
        runs += [(j, int(a), int(b)) for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))]
    runs_arr = np.array(runs, dtype=np.int64).reshape(-1, 3)
    t = np.arange(n, dtype=np.float64) - (n - 1) / 2.0  # centred: mean and slope decouple
    lines = np.stack([t, t / (float(np.dot(t, t)) or 1.0)])
    basis = np.stack([np.ones(n), t])
    # For _detrend_blas (windows with a constant channel): mean and slope, padded with zero
    # columns. Measured with this OpenBLAS: a product with 2-4 columns rounds the mean and slope
    # differently from the earlier 41-column (mean, slope, 39 block means) product, one with
    # 5 or more bit for bit the same, which keeps a constant channel's detrended residual (and
    # so its zero or rounding-noise spectrum) as it was.
    proj = np.zeros((n, 8))
    proj[:, 0] = 1.0 / n
    proj[:, 1] = lines[1]
    # blink detector: means of 0.1 s blocks tiling the end of the window
    box = max(1, int(round(0.1 * sfreq)))
    for a in (tapers, weights, runs_arr, lines, basis, proj):
        a.flags.writeable = False
    return _Plan(
        n=n, tapers=tapers, bin0=bin0, weights=weights, runs=runs_arr, scale=scale, lines=lines, proj=proj,
        basis=basis, box=box, block_start=n % box,
    )  # fmt: skip


class _HopFeed:
    """Fixed-hop windows of one stream, placed exactly as :class:`~adaptive.windows.FixedHopWindows`.

    A window of ``window_n`` samples ends at every sample whose 1-based index (minus
    ``offset_n``) is a multiple of ``hop_n``, once ``window_n`` samples have arrived. Specialised for the EEG estimator: the
    samples go into one linear buffer (shifted back only when it is full), a chunk that
    completes no window costs one slice copy, and windows are handed out as *views*, valid
    until the next :meth:`push` (:func:`_features` copies what it changes).

    Parameters
    ----------
    n_channels, window_n, hop_n : int
        Rows, window length and hop in samples.
    offset_n : int
        Phase of the boundaries in samples (as ``FixedHopWindows``'s ``offset_s``).
    """

    def __init__(self, n_channels: int, window_n: int, hop_n: int, offset_n: int = 0) -> None:
        self.window_n = window_n
        self.hop_n = hop_n
        self._size = 2 * window_n + 8 * hop_n  # a shift (copy of one window) every 8+ hops
        self._buf = np.empty((n_channels, self._size))
        self._pos = 0  # next write index
        self._n_total = 0  # samples pushed
        # samples until the next hop boundary (boundaries at n_total = offset_n (mod hop_n))
        self._to_boundary = offset_n % hop_n or hop_n

    def append(self, data: FloatArray) -> bool:
        """Add samples that reach no hop boundary and fit the buffer; False (nothing done) otherwise.

        The fast path of :meth:`push` for most chunks (no generator, no loop).
        """
        n = data.shape[1]
        pos = self._pos
        if n >= self._to_boundary or pos + n > self._size:
            return False
        self._buf[:, pos : pos + n] = data
        self._pos = pos + n
        self._n_total += n
        self._to_boundary -= n
        return True

    def push(self, data: FloatArray, times: FloatArray) -> Iterator[tuple[FloatArray, float]]:
        """Add samples; yield ``(window view, time of its last sample)`` for each window completed."""
        n = data.shape[1]
        start = 0
        while start < n:
            k = min(n - start, self._to_boundary)
            pos = self._pos
            if pos + k > self._size:  # keep the last window's samples, drop the rest
                keep = min(pos, self.window_n)
                self._buf[:, :keep] = self._buf[:, pos - keep : pos]
                pos = keep
            self._buf[:, pos : pos + k] = data[:, start : start + k]
            pos += k
            self._pos = pos
            self._n_total += k
            start += k
            self._to_boundary -= k
            if self._to_boundary == 0:
                self._to_boundary = self.hop_n
                if self._n_total >= self.window_n:
                    yield self._buf[:, pos - self.window_n : pos], float(times[start - 1])


class _Workspace:
    """Buffers and constants of one (window length, rate, config, montage), built once.

    The estimator and its offline twin build one and pass it to every :func:`_features` call,
    which then needs no cache look-ups (hashing the config and roles costs microseconds) and
    no large temporaries per window.
    """

    def __init__(self, plan: _Plan, names: tuple[str, ...], roles: EegChannelRoles, cfg: EegConfig) -> None:
        k, n = plan.tapers.shape
        n_ch = len(roles.analysed)
        self.plan = plan
        self.n = n
        self.rows = list(roles.analysed)
        self.select = len(self.rows) != len(names)  # drop auxiliary rows (a copy)
        self.out_names = tuple(names[r] for r in roles.analysed)
        self.post, self.front = _positions(roles)
        self.rows_arr = np.array(self.rows, dtype=np.int64)
        self.post_arr = np.array(self.post, dtype=np.int64)
        self.front_arr = np.array(self.front, dtype=np.int64)
        # the two posterior channels whose common deflection is a blink (Muse, Fpz reference)
        p0, p1 = (self.post[0], self.post[1]) if roles.muse_reference else (-1, -1)
        self.tapered = np.empty((n_ch, k, n))  # taper 0's rows first hold the detrended window
        self.spec = np.empty((n_ch, k, n // 2 + 1), dtype=np.complex128)
        self.stats = np.empty((n_ch, 5))  # per channel: max, min, missing fraction, slope, blink peak
        self.bits = np.empty(n_ch, dtype=np.int64)  # ArtefactFlag bits (+ _POOLED)
        # one block per window holds every array of the result: abs, rel, (broad, line, emg), quality
        n_b = len(BANDS)
        self.block_n = n_ch * (2 * n_b + 4)
        self.cuts = (n_ch * n_b, 2 * n_ch * n_b, 2 * n_ch * n_b + 3 * n_ch)
        # _bands_flags's bits per channel -> (flags, names of the pooled channels)
        self.labels: dict[tuple[int, ...], tuple[tuple[ArtefactFlag, ...], tuple[str, ...]]] = {}
        # the kernels' constants (layouts: _G_* and _C_*)
        self.geom = np.array([plan.block_start, plan.box, p0, p1, plan.bin0, n_b], dtype=np.int64)
        rail = math.inf if cfg.rail_uv is None else cfg.rail_uv
        self.consts = np.array([
            plan.scale, cfg.flat_uv, rail, cfg.line_uv, cfg.max_rms_uv, cfg.drift_uv, cfg.muscle_uv,
            cfg.blink_uv, cfg.max_missing, n - 1,
        ], dtype=np.float64)  # fmt: skip
        for a in (self.rows_arr, self.post_arr, self.front_arr, self.geom, self.consts):
            a.flags.writeable = False


def _check_sfreq(sfreq: float, cfg: EegConfig) -> float:
    try:
        sfreq = float(sfreq)
    except (TypeError, ValueError):
        raise ValueError(
            f"Invalid value for 'sfreq': expected a positive rate in Hz, got {sfreq!r}."
        ) from None
    need = 2.0 * max(BANDS[-1][2], cfg.broad_band[1])
    if not (math.isfinite(sfreq) and sfreq > need):
        raise ValueError(
            f"Invalid value for 'sfreq': expected more than {need:g} Hz (Nyquist above the "
            f"{need / 2:g} Hz gamma band edge), got {sfreq!r}. EEG needs at least 128 Hz."
        )
    if int(round(cfg.window_s * sfreq)) < 64:
        raise ValueError(
            f"Invalid value for 'window_s': expected at least 64 samples per window, got "
            f"{cfg.window_s} s at {sfreq:g} Hz. Use window_s >= 2."
        )
    return sfreq


def eeg_features(
    window: FloatArray,
    sfreq: float,
    *,
    ch_names: Sequence[str] = MUSE_CH_NAMES,
    config: EegConfig | None = None,
    time: float = math.nan,
) -> EegFeatures:
    """Band powers, artefact flags, qualities and posterior relative alpha of one window.

    This is the pure per-window step of :class:`EegEstimator`; ``relaxation`` in the result
    is the absolute mapping (no smoothing, no baseline).

    Parameters
    ----------
    window : array of shape (n_channels, n_times)
        EEG in microvolts; NaN marks missing samples. Bad data never raises.
    sfreq : float
        Sampling rate in Hz (> 90 Hz).
    ch_names : sequence of str
        One name per row; roles from :func:`eeg_channel_roles`.
    config : EegConfig or None
        Thresholds and index constants; default :class:`EegConfig()`.
    time : float
        Session time of the last sample, copied into the result.

    Returns
    -------
    features : EegFeatures

    Raises
    ------
    ValueError
        If the shape does not match ``ch_names`` or ``sfreq`` is too low (wrong call).
    """
    cfg = EegConfig() if config is None else config
    sfreq = _check_sfreq(sfreq, cfg)
    names = tuple(str(n) for n in ch_names)
    x_all = np.asarray(window, dtype=np.float64)
    if x_all.ndim != 2 or x_all.shape[0] != len(names):
        raise ValueError(
            f"Invalid value for 'window': expected shape ({len(names)}, n_times) for channels "
            f"{names}, got {x_all.shape}. Pass ch_names matching the rows."
        )
    if x_all.shape[1] < 64:
        raise ValueError(f"Invalid value for 'window': expected at least 64 samples, got {x_all.shape[1]}.")
    roles = eeg_channel_roles(names)
    return _features(x_all, sfreq, names, roles, cfg, float(time))


@lru_cache(maxsize=64)
def _positions(roles: EegChannelRoles) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Posterior and frontal channels as positions among the analysed rows."""
    pos_of = {r: i for i, r in enumerate(roles.analysed)}
    return tuple(pos_of[r] for r in roles.posterior), tuple(pos_of[r] for r in roles.frontal)


_UNUSABLE_BITS = int(_UNUSABLE & ~ArtefactFlag.MISSING)
_MISSING, _FLAT, _RAILED = int(ArtefactFlag.MISSING), int(ArtefactFlag.FLAT), int(ArtefactFlag.RAILED)
_POOR, _MUSCLE, _BLINK = int(ArtefactFlag.POOR_CONTACT), int(ArtefactFlag.MUSCLE), int(ArtefactFlag.BLINK)
_FLAG_OF: tuple[ArtefactFlag, ...] = tuple(ArtefactFlag(i) for i in range(2 ** len(ArtefactFlag)))
_FLAG_MASK = 2 ** len(ArtefactFlag) - 1
_POOLED = 2 ** len(ArtefactFlag)  # extra bit in _bands_flags's output: channel pooled into alpha_rel

# Kernel argument types: read-only views of any layout (the window may be a caller's array);
# the workspace's own buffers are C-contiguous ("C"), which lets the compiler vectorise.
_RO2 = "Array(float64, 2, 'A', readonly=True)"
_RC1 = "Array(float64, 1, 'C', readonly=True)"
_RC2 = "Array(float64, 2, 'C', readonly=True)"
_RZ3 = "Array(complex128, 3, 'C', readonly=True)"
_RI1 = "Array(int64, 1, 'C', readonly=True)"
_RI2 = "Array(int64, 2, 'C', readonly=True)"
# Layout of _Workspace.geom (int64) and _Workspace.consts (float64), the kernels' constants.
_G_BLOCK_START, _G_BOX, _G_P0, _G_P1, _G_BIN0, _G_N_BANDS = range(6)
_C_SCALE, _C_FLAT, _C_RAIL, _C_LINE, _C_MAX_RMS, _C_DRIFT_UV = range(6)
_C_MUSCLE, _C_BLINK, _C_MAX_MISSING, _C_DRIFT_N = range(6, 10)
# Columns of _Workspace.stats: per-channel results of _prepare used by _bands_flags.
_S_HI, _S_LO, _S_MISSING, _S_SLOPE, _S_PEAK = range(5)


@kernel(f"int64({_RO2}, {_RI1}, {_RC2}, float64[:, :, ::1], float64[:, ::1])")
def _fill_detrend(x, rows, lines, tapered, stats):  # pragma: no cover - compiled
    """Gap filling, extremes and least-squares detrending of the analysed rows (see _detrend_blas).

    Replaces ``np.where(finite, x, row mean of the finite samples)``, ``max``/``min``,
    ``1 - finite.mean()`` and ``x - (mean + slope * t)`` with ``(mean, slope) = x @ (1 / n,
    slope_w)``, where ``lines = (t, slope_w)``; writes the residual into ``tapered[:, 0]`` and
    the extremes, missing fraction and slope into ``stats``. Returns 1, leaving the work
    unfinished, if the finite samples of a row are all equal: such a row's residual is zero
    or rounding noise, which only the BLAS form reproduces.
    """
    n = x.shape[1]
    t = lines[0]
    slope_w = lines[1]
    w_mean = 1.0 / n
    n4 = n - n % 4
    for c in range(rows.shape[0]):
        r = rows[c]
        # usual case first: every sample finite (four running sums each: short dependency chains)
        hi = x[r, 0]
        lo = x[r, 0]
        m0 = m1 = m2 = m3 = 0.0
        s0 = s1 = s2 = s3 = 0.0
        for j in range(0, n4, 4):
            v0, v1, v2, v3 = x[r, j], x[r, j + 1], x[r, j + 2], x[r, j + 3]
            m0 += v0 * w_mean
            m1 += v1 * w_mean
            m2 += v2 * w_mean
            m3 += v3 * w_mean
            s0 += v0 * slope_w[j]
            s1 += v1 * slope_w[j + 1]
            s2 += v2 * slope_w[j + 2]
            s3 += v3 * slope_w[j + 3]
            hi = max(hi, max(max(v0, v1), max(v2, v3)))
            lo = min(lo, min(min(v0, v1), min(v2, v3)))
        for j in range(n4, n):
            v = x[r, j]
            m0 += v * w_mean
            s0 += v * slope_w[j]
            hi = max(hi, v)
            lo = min(lo, v)
        mean = (m0 + m1) + (m2 + m3)
        slope = (s0 + s1) + (s2 + s3)
        count = n
        fill = 0.0
        if not math.isfinite(mean + slope):  # a NaN or inf sample (or an overflow): fill the gaps
            count = 0
            total = 0.0
            hi = -math.inf
            lo = math.inf
            for j in range(n):
                v = x[r, j]
                if math.isfinite(v):
                    count += 1
                    total += v
                    hi = max(hi, v)
                    lo = min(lo, v)
            if count == 0:  # all missing: a zero row
                hi = 0.0
                lo = 0.0
            fill = total / max(count, 1)  # lies between lo and hi unless all are equal
            mean = 0.0
            slope = 0.0
            for j in range(n):
                v = x[r, j]
                if not math.isfinite(v):
                    v = fill
                mean += v * w_mean
                slope += v * slope_w[j]
        if hi == lo and count > 0:
            return 1
        xd = tapered[c, 0]
        if count == n:
            for j in range(n):
                xd[j] = x[r, j] - (mean + slope * t[j])
        else:
            for j in range(n):
                v = x[r, j]
                if not math.isfinite(v):
                    v = fill
                xd[j] = v - (mean + slope * t[j])
        stats[c, _S_HI] = hi
        stats[c, _S_LO] = lo
        stats[c, _S_MISSING] = 1.0 - count / n
        stats[c, _S_SLOPE] = slope
    return 0


def _detrend_blas(x_all: FloatArray, work: _Workspace) -> None:
    """:func:`_fill_detrend` in numpy, used when a channel is constant.

    A constant channel's least-squares residual is exact zeros or rounding noise depending on
    how the mean and slope were rounded; this form (OpenBLAS products, see ``_Plan.proj``)
    keeps the noise, and so the channel's relative band powers, as they always were.
    """
    plan, stats = work.plan, work.stats
    x = x_all[work.rows] if work.select else x_all  # never written to below
    # per-channel max and min propagate NaN and see +-inf: both detect gaps
    hi, lo = x.max(axis=1), x.min(axis=1)
    if not math.isfinite(float(hi.sum()) - float(lo.sum())):  # (also true on overflow: then a no-op)
        finite = np.isfinite(x)
        stats[:, _S_MISSING] = 1.0 - finite.mean(axis=1)
        means = np.where(finite, x, 0.0).sum(axis=1) / np.maximum(finite.sum(axis=1), 1)
        x = np.where(finite, x, means[:, np.newaxis])
        hi, lo = x.max(axis=1), x.min(axis=1)
    else:
        stats[:, _S_MISSING] = 0.0
    stats[:, _S_HI] = hi
    stats[:, _S_LO] = lo
    g = x @ plan.proj
    np.subtract(x, g[:, :2] @ plan.basis, out=work.tapered[:, 0])
    stats[:, _S_SLOPE] = g[:, 1]


@kernel(f"float64(float64[:, :, ::1], {_RC2}, {_RI1}, float64[:, ::1])")
def _taper_blocks(tapered, tapers, geom, stats):  # pragma: no cover - compiled
    """Blink statistics of the residual in ``tapered[:, 0]``, then ``tapered = residual * tapers``.

    Replaces ``slow = xd[:, block_start:].reshape(n_ch, -1, box) @ full(box, 1 / box)`` (means
    of the 0.1 s blocks tiling the end of the window), ``peak = abs(slow).max(axis=1)`` (into
    ``stats``) and the broadcast product with the tapers. Returns the common deflection of
    rows ``p0`` and ``p1``, ``max(minimum(a, b).max(), -maximum(a, b).min())`` (NaN if ``p0 < 0``).
    """
    n_ch, k, n = tapered.shape
    block_start, box, p0, p1 = geom[_G_BLOCK_START], geom[_G_BOX], geom[_G_P0], geom[_G_P1]
    n_blocks = (n - block_start) // box
    w = 1.0 / box
    slow = np.zeros((n_ch, n_blocks))
    xd = np.empty(n)
    for c in range(n_ch):
        xd[:] = tapered[c, 0]
        sc = slow[c]
        for i in range(box):  # all blocks at once: each block's sum still runs in sample order
            for b in range(n_blocks):
                sc[b] += xd[block_start + b * box + i] * w
        pk = -math.inf
        for b in range(n_blocks):
            a = abs(sc[b])
            if a > pk or a != a:  # NaN propagates, as in numpy's max
                pk = a
        stats[c, _S_PEAK] = pk
        for kk in range(k):
            row = tapered[c, kk]
            tap = tapers[kk]
            for j in range(n):
                row[j] = xd[j] * tap[j]
    common = math.nan
    if p0 >= 0:
        hi_min = -math.inf  # max over blocks of min(a, b)
        lo_max = math.inf  # min over blocks of max(a, b)
        for b in range(n_blocks):
            a = slow[p0, b]
            v = slow[p1, b]
            hi_min = max(hi_min, min(a, v))
            lo_max = min(lo_max, max(a, v))
        common = max(hi_min, -lo_max)
    return common


@kernel(f"UniTuple(float64, 2)({_RO2}, {_RI1}, {_RC2}, {_RC2}, {_RI1}, float64[:, :, ::1], float64[:, ::1])")
def _prepare(x, rows, lines, tapers, geom, tapered, stats):  # pragma: no cover - compiled
    """:func:`_fill_detrend` then :func:`_taper_blocks` in one call: (1, NaN) if the first gave up."""
    if _fill_detrend(x, rows, lines, tapered, stats):
        return 1.0, math.nan
    return 0.0, _taper_blocks(tapered, tapers, geom, stats)


@kernel(
    f"UniTuple(float64, 3)({_RZ3}, {_RC2}, {_RI2}, {_RI1}, {_RC1}, {_RI1}, {_RI1}, {_RC2}, float64, "
    "float64[::1], int64[::1])"
)
def _bands_flags(  # pragma: no cover - compiled
    spec, weights, runs, geom, consts, post, front, stats, common, out, bits
):
    """Band powers, artefact flags, qualities and pooled posterior relative alpha of one window.

    Replaces ``powers = (spec.real**2 + spec.imag**2).sum(1) @ masks`` (band power = scale
    times the sum of ``sum_k |X_k|^2`` over the band's ``runs`` of bins; the dense per-bin
    ``weights`` when a power is not finite, where ``inf * 0`` spreads NaN as in the product),
    ``rel = abs / maximum(abs.sum(1), 1e-300)``, ``sqrt`` of the broad, line and EMG powers and
    the per-channel flag and quality rules (thresholds in ``consts``). Writes abs, rel,
    (broad, line, emg) RMS and quality into ``out`` and the flag bits (plus ``_POOLED``) into
    ``bits``; returns (alpha_rel, relaxation quality, mean channel quality).
    """
    n_ch, k = spec.shape[0], spec.shape[1]
    n_bins, n_cols = weights.shape
    bin0, n_bands, p0, p1 = geom[_G_BIN0], geom[_G_N_BANDS], geom[_G_P0], geom[_G_P1]
    scale, flat_uv, rail, line_uv = consts[_C_SCALE], consts[_C_FLAT], consts[_C_RAIL], consts[_C_LINE]
    max_rms, drift_uv, muscle_uv = consts[_C_MAX_RMS], consts[_C_DRIFT_UV], consts[_C_MUSCLE]
    blink_uv, max_missing, drift = consts[_C_BLINK], consts[_C_MAX_MISSING], consts[_C_DRIFT_N]
    o_rel = n_ch * n_bands
    o_rms = 2 * n_ch * n_bands
    o_q = o_rms + 3 * n_ch
    powers = np.zeros((n_ch, n_cols))
    p = np.empty(n_bins)  # sum over tapers of |X|^2 per bin
    for c in range(n_ch):
        p[:] = 0.0
        for kk in range(k):
            row = spec[c, kk, bin0 : bin0 + n_bins]
            for b in range(n_bins):
                z = row[b]
                p[b] += z.real * z.real + z.imag * z.imag
        a0 = a1 = a2 = a3 = 0.0
        n4 = n_bins - n_bins % 4
        for b in range(0, n4, 4):
            a0 += p[b]
            a1 += p[b + 1]
            a2 += p[b + 2]
            a3 += p[b + 3]
        for b in range(n4, n_bins):
            a0 += p[b]
        if math.isfinite((a0 + a1) + (a2 + a3)):
            for r in range(runs.shape[0]):
                lo, hi = runs[r, 1], runs[r, 2]
                a0 = a1 = a2 = a3 = 0.0
                for b in range(lo, hi - 3, 4):
                    a0 += p[b]
                    a1 += p[b + 1]
                    a2 += p[b + 2]
                    a3 += p[b + 3]
                for b in range(hi - (hi - lo) % 4, hi):
                    a0 += p[b]
                powers[c, runs[r, 0]] += (a0 + a1) + (a2 + a3)
            for j in range(n_cols):
                powers[c, j] *= scale
        else:  # an inf or NaN power: the dense product, where inf * 0 gives NaN as in numpy's
            for b in range(n_bins):
                for j in range(n_cols):
                    powers[c, j] += p[b] * weights[b, j]

    # blinks: slow deflection on a frontal channel, or same-sign on TP9 and TP10 (Fpz ref)
    blink = np.zeros(n_ch, dtype=np.bool_)
    for i in front:
        blink[i] = stats[i, _S_PEAK] >= blink_uv
    if p0 >= 0 and stats[p0, _S_PEAK] >= blink_uv and stats[p1, _S_PEAK] >= blink_uv and common >= blink_uv:
        blink[p0] = True
        blink[p1] = True

    quality = np.empty(n_ch)
    for i in range(n_ch):
        total = 0.0
        for j in range(n_bands):
            total += powers[i, j]
        den = total if (total > 1e-300 or total != total) else 1e-300  # np.maximum keeps NaN
        for j in range(n_bands):
            out[i * n_bands + j] = powers[i, j]
            out[o_rel + i * n_bands + j] = powers[i, j] / den
        broad = math.sqrt(powers[i, n_bands + 1])
        line = math.sqrt(powers[i, n_bands + 2])
        emg = math.sqrt(powers[i, n_bands + 3])
        out[o_rms + i] = broad
        out[o_rms + n_ch + i] = line
        out[o_rms + 2 * n_ch + i] = emg
        m = stats[i, _S_MISSING]
        q = 0.0
        if m >= 1.0:  # nothing else can be said about an empty channel
            f = _MISSING
        else:
            f = _MISSING if m > 0 else 0
            if math.sqrt(total) < flat_uv:
                f |= _FLAT
            if stats[i, _S_HI] >= rail or stats[i, _S_LO] <= -rail:
                f |= _RAILED
            if line > line_uv or broad > max_rms or abs(stats[i, _S_SLOPE]) * drift > drift_uv:
                f |= _POOR
            if emg > muscle_uv:
                f |= _MUSCLE
            if blink[i]:
                f |= _BLINK
            if not (f & _UNUSABLE_BITS or m > max_missing):
                q = (1.0 - m) * (0.5 if f & _MUSCLE else 1.0) * (0.8 if f & _BLINK else 1.0)
        if m > max_missing:
            for j in range(n_bands):
                out[i * n_bands + j] = math.nan
                out[o_rel + i * n_bands + j] = math.nan
        bits[i] = f
        quality[i] = q
        out[o_q + i] = q

    # relaxation: pool the usable posterior channels, muscle-free ones if any
    clean = False
    for i in post:
        if quality[i] > 0 and not bits[i] & _MUSCLE:
            clean = True
    num = 0.0
    den = 0.0
    pooled = False
    for i in post:
        if quality[i] > 0 and not (clean and bits[i] & _MUSCLE):
            bits[i] |= _POOLED
            pooled = True
            den += powers[i, n_bands + 1]
            num += powers[i, n_bands]
    alpha_rel = math.nan
    if pooled and den > 0:
        alpha_rel = num / den
    relax_q = 0.0
    if alpha_rel == alpha_rel:
        for i in post:
            relax_q += quality[i]
        relax_q /= post.shape[0]
    q_mean = 0.0
    for i in range(n_ch):
        q_mean += quality[i]
    return alpha_rel, relax_q, q_mean / n_ch


def _features(
    x_all: FloatArray,
    sfreq: float,
    names: tuple[str, ...],
    roles: EegChannelRoles,
    cfg: EegConfig,
    time: float,
    work: _Workspace | None = None,
    state: _IndexState | None = None,
) -> EegFeatures:
    """One window: spectrum, band powers, flags, qualities, relative alpha and the index.

    ``work`` must have been built for this window length, ``sfreq``, ``cfg``, ``names`` and
    ``roles`` (the estimator and the offline twin build it once); without it one is built here.
    ``state`` (smoothing, baseline) advances by one window when given; without it the index is
    the absolute mapping of this window alone.

    Three compiled kernels around one batched ``rfft``: gap filling and detrending
    (:func:`_fill_detrend`, or :func:`_detrend_blas` when a channel is constant), blink
    statistics and tapering (:func:`_taper_blocks`), band powers, flags and pooling
    (:func:`_bands_flags`).
    """
    if work is None or work.n != x_all.shape[-1]:
        work = _Workspace(_plan(x_all.shape[-1], sfreq, cfg), names, roles, cfg)
    plan = work.plan
    # --- missing samples filled with the channel mean (the spectrum stays finite), extremes
    # (rail check), the least-squares line removed; the residual goes into taper 0's rows
    stats = work.stats
    gave_up, common = _prepare(x_all, work.rows_arr, plan.lines, plan.tapers, work.geom, work.tapered, stats)
    if gave_up:
        _detrend_blas(x_all, work)
        common = _taper_blocks(work.tapered, plan.tapers, work.geom, stats)
    # --- multitaper spectrum: one rfft call for all channels x tapers
    np.fft.rfft(work.tapered, axis=-1, out=work.spec)
    # --- band powers, flags, qualities, pooled relative alpha; the result's arrays in one block
    block = np.empty(work.block_n)
    bits = work.bits
    alpha_rel, relax_q, quality = _bands_flags(
        work.spec, plan.weights, plan.runs, work.geom, work.consts, work.post_arr, work.front_arr, stats,
        common, block, bits,
    )  # fmt: skip
    block.flags.writeable = False  # before slicing: the views inherit it
    key = tuple(bits.tolist())
    labels = work.labels.get(key)
    if labels is None:  # (flags, pooled channel names) of this combination of bits
        labels = work.labels[key] = (
            tuple(_FLAG_OF[b & _FLAG_MASK] for b in key),
            tuple(work.out_names[i] for i in work.post if key[i] & _POOLED),
        )
    n_ch = len(key)
    c_rel, c_rms, c_q = work.cuts
    rms = block[c_rms:c_q].reshape(3, n_ch)
    if state is None:
        relaxation = _hill(alpha_rel, cfg.alpha_rel_half, cfg.relaxation_exponent)
    else:
        relaxation = state.step(alpha_rel, relax_q)
    return EegFeatures(
        time=time,
        ch_names=work.out_names,
        band_names=_BAND_NAMES,
        abs_power_uv2=block[:c_rel].reshape(n_ch, -1),
        rel_power=block[c_rel:c_rms].reshape(n_ch, -1),
        flags=labels[0],
        channel_quality=block[c_q:],
        line_noise_uv=rms[1],
        emg_uv=rms[2],
        broad_rms_uv=rms[0],
        alpha_rel=alpha_rel,
        relaxation_channels=labels[1],
        relaxation=relaxation,
        relaxation_quality=relax_q,
        quality=quality,
    )


_BAND_NAMES: tuple[str, ...] = tuple(b[0] for b in BANDS)


def _hill(alpha_rel: float, half: float, exponent: float) -> float:
    """Scalar :func:`relaxation_from_alpha_rel` (same formula, no numpy overhead)."""
    if math.isnan(alpha_rel):
        return math.nan
    z = math.log(min(max(alpha_rel, 1e-9), 1.0))
    return _logistic(exponent * (z - math.log(half)))


def _logistic(u: float) -> float:
    """``1 / (1 + exp(-u))`` without overflow for any finite ``u``."""
    if u >= 0:
        return 1.0 / (1.0 + math.exp(-u))
    e = math.exp(u)
    return e / (1.0 + e)


# --------------------------------------------------------------------------------------------
# State shared by the streaming estimator and its offline twin
# --------------------------------------------------------------------------------------------


class _IndexState:
    """Smoothing and baseline of the relaxation index, advanced once per window."""

    def __init__(self, cfg: EegConfig) -> None:
        self._cfg = cfg
        self._k = 1.0 - math.exp(-cfg.hop_s / cfg.smoothing_s) if cfg.smoothing_s > 0 else 1.0
        self._n_base = max(1, int(round(cfg.baseline_s / cfg.hop_s))) if cfg.baseline_s > 0 else 0
        self.reset()

    def reset(self) -> None:
        self._z: float | None = None
        self._base_z: float | None = None
        self._collected: list[float] = []

    @property
    def baseline_alpha_rel(self) -> float | None:
        return None if self._base_z is None else math.exp(self._base_z)

    def set_baseline(self, alpha_rel: float) -> None:
        self._base_z = math.log(alpha_rel)
        self._collected = []

    def step(self, alpha_rel: float, quality: float) -> float:
        cfg = self._cfg
        if math.isnan(alpha_rel) or quality <= 0:
            return math.nan
        z = math.log(min(max(alpha_rel, 1e-9), 1.0))
        if self._n_base and self._base_z is None and quality >= cfg.min_baseline_quality:
            self._collected.append(z)
            if len(self._collected) >= self._n_base:
                self._base_z = float(np.median(self._collected))
                self._collected = []
        self._z = z if self._z is None else self._z + self._k * (z - self._z)
        ref = math.log(cfg.alpha_rel_half) if self._base_z is None else self._base_z
        return _logistic(cfg.relaxation_exponent * (self._z - ref))


def _emit(feat: EegFeatures) -> list[Estimate]:
    q = feat.relaxation_quality
    return [
        Estimate._trusted(Metric.EEG_ALPHA_REL, feat.alpha_rel, q, feat.time),
        Estimate._trusted(Metric.EEG_RELAXATION, feat.relaxation, q, feat.time),
        Estimate._trusted(Metric.QUALITY_EEG, feat.quality, 1.0, feat.time),
    ]


class EegEstimator:
    """Streaming band powers, artefact flags, EEG quality and relaxation index.

    Every ``hop_s`` (once at least ``window_s`` of data has arrived) it emits, at the time of
    the window's last sample: :attr:`Metric.EEG_ALPHA_REL` (pooled posterior relative alpha),
    :attr:`Metric.EEG_RELAXATION` (0..1, higher is more relaxed; quality = posterior channel
    quality) and :attr:`Metric.QUALITY_EEG` (value = mean channel quality, quality 1). The full
    per-window result is in :attr:`latest` / :attr:`last_features`.

    Parameters
    ----------
    ch_names : sequence of str
        The stream's channel names, e.g. ``("TP9", "AF7", "AF8", "TP10", "Right AUX")``.
    sfreq : float
        Nominal sampling rate in Hz (Muse: 256).
    config : EegConfig or None
        Settings; default :class:`EegConfig()`.

    Raises
    ------
    ValueError
        Bad names or a rate too low for the bands.

    Notes
    -----
    Latency: the first estimate comes ``window_s`` after the first sample, then one per
    ``hop_s``; a change in state shows fully after ``window_s`` (plus ``smoothing_s``).
    Spectra are computed only at hop boundaries, so most ``update`` calls only buffer.
    The output does not depend on how the input is chunked.

    Examples
    --------
    >>> import numpy as np
    >>> from adaptive.types import Chunk, SignalKind
    >>> est = EegEstimator(sfreq=256.0)
    >>> rng = np.random.default_rng(0)
    >>> t = np.arange(5 * 256) / 256
    >>> eeg = 10 * rng.standard_normal((4, t.size)) + 30 * np.sin(2 * np.pi * 10 * t)
    >>> out = est.update(Chunk(SignalKind.EEG, eeg, t, 256.0, ("TP9", "AF7", "AF8", "TP10")))
    >>> [e.metric.value for e in out][:3], len(out)
    (['eeg_alpha_rel', 'eeg_relaxation', 'quality_eeg'], 6)
    >>> est.latest.relaxation > 0.5
    True
    """

    def __init__(
        self,
        ch_names: Sequence[str] = MUSE_CH_NAMES,
        sfreq: float = 256.0,
        config: EegConfig | None = None,
    ) -> None:
        self._cfg = EegConfig() if config is None else config
        if not isinstance(self._cfg, EegConfig):
            raise TypeError(f"Invalid value for 'config': expected EegConfig, got {type(config).__name__}.")
        self._sfreq = _check_sfreq(sfreq, self._cfg)
        if isinstance(ch_names, str):
            raise ValueError(f"Invalid value for 'ch_names': expected a sequence of names, got {ch_names!r}.")
        self._names = tuple(str(n) for n in ch_names)
        self._roles = eeg_channel_roles(self._names)
        # window placement as FixedHopWindows (same rounding to whole samples)
        self._window_n = max(1, int(round(self._cfg.window_s * self._sfreq)))
        self._hop_n = max(1, int(round(self._cfg.hop_s * self._sfreq)))
        self._feed = _HopFeed(len(self._names), self._window_n, self._hop_n,
                              int(round(self._cfg.hop_offset_s * self._sfreq)))
        plan = _plan(self._window_n, self._sfreq, self._cfg)
        self._work = _Workspace(plan, self._names, self._roles, self._cfg)
        self._state = _IndexState(self._cfg)
        self._latest: EegFeatures | None = None
        self._last: tuple[EegFeatures, ...] = ()
        logger.debug("EegEstimator on %s at %g Hz, roles %s", self._names, self._sfreq, self._roles)

    @property
    def ch_names(self) -> tuple[str, ...]:
        """Channel names the estimator was built for."""
        return self._names

    @property
    def sfreq(self) -> float:
        """Nominal sampling rate in Hz."""
        return self._sfreq

    @property
    def config(self) -> EegConfig:
        """Settings in use."""
        return self._cfg

    @property
    def roles(self) -> EegChannelRoles:
        """Analysed, posterior and frontal channel indices."""
        return self._roles

    @property
    def latest(self) -> EegFeatures | None:
        """Features of the most recent window (None before the first window)."""
        return self._latest

    @property
    def last_features(self) -> tuple[EegFeatures, ...]:
        """Features of every window completed by the last :meth:`update` call."""
        return self._last

    @property
    def baseline_alpha_rel(self) -> float | None:
        """Relative alpha that maps to 0.5 when a baseline is set (None: absolute mapping)."""
        return self._state.baseline_alpha_rel

    def set_baseline(self, alpha_rel: float) -> None:
        """Make the index baseline-relative: ``alpha_rel`` (e.g. a resting median) maps to 0.5.

        Parameters
        ----------
        alpha_rel : float
            Posterior relative alpha of the baseline, in (0, 1].

        Raises
        ------
        ValueError
            If ``alpha_rel`` is not in (0, 1].
        """
        try:
            a = float(alpha_rel)
        except (TypeError, ValueError):
            a = math.nan
        if not (0.0 < a <= 1.0):
            raise ValueError(
                f"Invalid value for 'alpha_rel': expected a relative power in (0, 1], got {alpha_rel!r}. "
                "Use the median EegFeatures.alpha_rel of a resting period."
            )
        self._state.set_baseline(a)

    def reset(self) -> None:
        """Forget all data, smoothing and baseline (including one from :meth:`set_baseline`)."""
        self._feed = _HopFeed(len(self._names), self._window_n, self._hop_n,
                              int(round(self._cfg.hop_offset_s * self._sfreq)))
        self._state.reset()
        self._latest = None
        self._last = ()

    def update(self, chunk: Chunk) -> list[Estimate]:
        """Add one EEG chunk; return the estimates of every window it completes.

        Parameters
        ----------
        chunk : Chunk
            EEG in microvolts with this estimator's rate and channels.

        Returns
        -------
        estimates : list of Estimate
            Three per completed window (alpha_rel, relaxation, quality_eeg), in time order.

        Raises
        ------
        ValueError, TypeError
            Wrong kind, rate, channel count or channel names.
        """
        # The usual chunk (the stream this estimator was built for) passes these identity and
        # equality tests; anything else gets the full check and its error message.
        if not (
            type(chunk) is Chunk
            and chunk.kind is SignalKind.EEG
            and chunk.sfreq == self._sfreq
            and (chunk.ch_names is self._names or chunk.ch_names == self._names)
            and chunk.data.shape[0] == len(self._names)
        ):
            check_chunk(
                chunk, kind=SignalKind.EEG, sfreq=self._sfreq, n_channels=len(self._names), owner="EegEstimator"
            )
            if chunk.ch_names != self._names:
                raise ValueError(
                    f"Invalid value for 'ch_names': expected {self._names}, got {chunk.ch_names}. "
                    "Build EegEstimator with the stream's channel names."
                )
        if self._feed.append(chunk.data):  # most chunks complete no window
            return []
        out: list[Estimate] = []
        feats: list[EegFeatures] = []
        for window, t_end in self._feed.push(chunk.data, chunk.times):
            feat = _features(
                window, self._sfreq, self._names, self._roles, self._cfg, t_end, self._work, self._state
            )
            feats.append(feat)
            out.extend(_emit(feat))
        if feats:
            self._last = tuple(feats)
            self._latest = feats[-1]
        return out


# --------------------------------------------------------------------------------------------
# Offline twin
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class RelaxationIndex:
    """Result of :func:`relaxation_index` (arrays of shape (n_windows,), read-only).

    Attributes
    ----------
    times_s : array
        Window end times: seconds from the first sample to the window's last sample.
    value : array
        Relaxation index 0..1, higher is more relaxed (NaN when no usable channel).
    quality : array
        0..1, quality of the posterior channels.
    alpha_rel : array
        Pooled posterior relative alpha (8-13 / 2-40 Hz).
    eeg_quality : array
        Mean quality over all analysed channels.
    features : tuple of EegFeatures
        The full per-window results.
    """

    times_s: FloatArray
    value: FloatArray
    quality: FloatArray
    alpha_rel: FloatArray
    eeg_quality: FloatArray
    features: tuple[EegFeatures, ...]


def relaxation_index(
    eeg: FloatArray,
    fs: float,
    *,
    window_s: float = 4.0,
    step_s: float = 1.0,
    ch_names: Sequence[str] = MUSE_CH_NAMES,
    config: EegConfig | None = None,
) -> RelaxationIndex:
    """Relaxation index of a whole recording; identical to :class:`EegEstimator` fed the same samples.

    Parameters
    ----------
    eeg : array of shape (n_channels, n_samples)
        EEG in microvolts; NaN marks missing samples.
    fs : float
        Sampling rate in Hz.
    window_s, step_s : float
        Window and hop in seconds (override ``config.window_s`` / ``config.hop_s``).
    ch_names : sequence of str
        One name per row (default Muse order TP9, AF7, AF8, TP10).
    config : EegConfig or None
        Other settings (thresholds, smoothing, baseline).

    Returns
    -------
    result : RelaxationIndex
        ``times_s``, ``value``, ``quality`` (and ``alpha_rel``, ``eeg_quality``, ``features``).
        Empty arrays if the recording is shorter than one window.

    Raises
    ------
    ValueError
        If ``eeg`` is not 2-D, does not match ``ch_names`` or ``fs`` is too low.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> t = np.arange(10 * 256) / 256
    >>> eeg = 10 * rng.standard_normal((4, t.size)) + 30 * np.sin(2 * np.pi * 10 * t)
    >>> res = relaxation_index(eeg, 256.0)
    >>> res.times_s[:2], bool(np.all(res.value > 0.5))
    (array([3.99609375, 4.99609375]), True)
    """
    cfg = EegConfig() if config is None else config
    cfg = replace(cfg, window_s=float(window_s), hop_s=float(step_s))
    fs = _check_sfreq(fs, cfg)
    if isinstance(ch_names, str):
        raise ValueError(f"Invalid value for 'ch_names': expected a sequence of names, got {ch_names!r}.")
    names = tuple(str(n) for n in ch_names)
    x = np.asarray(eeg, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(names):
        raise ValueError(
            f"Invalid value for 'eeg': expected shape ({len(names)}, n_samples) for channels {names}, "
            f"got {x.shape}. Transpose (n_samples, n_channels) data or pass matching ch_names."
        )
    roles = eeg_channel_roles(names)
    # Same window placement as FixedHopWindows: ends at multiples of the hop, once full.
    win_n = max(1, int(round(cfg.window_s * fs)))
    hop_n = max(1, int(round(cfg.hop_s * fs)))
    first = -(-win_n // hop_n) * hop_n
    state = _IndexState(cfg)
    work = _Workspace(_plan(win_n, fs, cfg), names, roles, cfg)
    feats: list[EegFeatures] = []
    values: list[float] = []
    for end in range(first, x.shape[1] + 1, hop_n):
        feat = _features(x[:, end - win_n : end], fs, names, roles, cfg, (end - 1) / fs, work, state)
        feats.append(feat)
        values.append(feat.relaxation)

    def arr(v: list[float]) -> FloatArray:
        a = np.asarray(v, dtype=np.float64)
        a.flags.writeable = False
        return a

    return RelaxationIndex(
        times_s=arr([f.time for f in feats]),
        value=arr(values),
        quality=arr([f.relaxation_quality for f in feats]),
        alpha_rel=arr([f.alpha_rel for f in feats]),
        eeg_quality=arr([f.quality for f in feats]),
        features=tuple(feats),
    )
