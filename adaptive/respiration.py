"""Breathing rate without a chest belt: PPG respiratory modulations and head motion.

Breathing modulates the photoplethysmogram in three ways (Charlton et al., Physiol. Meas.
37:610, 2016; Pimentel et al., IEEE TBME 64:1914, 2017):

* **baseline (intensity)**: venous return and intrathoracic pressure shift the pulse baseline
  (respiratory-induced intensity variation).  Two series carry it: ``riiv``, the PPG low-passed
  at 0.7 Hz (no beat detection needed), and ``bw``, the mean of each beat's peak and foot;
* **pulse amplitude**: stroke volume falls during inspiration (``am``, peak minus foot);
* **beat interval**: respiratory sinus arrhythmia shortens beats during inspiration (``fm``).

A head-worn sensor (Muse) also tilts with every breath, which the accelerometer sees as a slow
change of the gravity projection on its axes.

Method, for every hop of ``hop_s`` seconds of data of one stream (PPG or accelerometer):

1. **Window.**  The analysis window spans ``cycles_per_window`` breaths at the stream's
   currently tracked rate, clipped to ``[min_window_s, window_s]``: longer when breathing is
   slow, so slow (resonance) breathing at 4.5-7 breaths/min still gets enough cycles, and
   shorter when it is fast, so the estimate follows changes sooner.  Only samples up to the
   window end are used (causal); a gap in the sample times cuts the window.
2. **Respiratory series.**  PPG: causal anti-alias low-pass (8 Hz) and decimation to about
   25 Hz; beats are the peaks of a 0.5-5 Hz band-passed copy of the window (zero-phase within
   the window); beats on missing, clipped or artefactual stretches (implausible interval,
   amplitude outlier, baseline step larger than a pulse: motion) are dropped.  Accelerometer:
   causal low-pass 0.8 Hz of the three axes; stretches whose orientation changes faster than
   breathing can tilt the head (gross motion) are bridged and count as bad.  Every series is
   linearly resampled at 4 Hz on a grid that ends at the window end.  The private beat detector
   here works on each window's buffer; :mod:`adaptive.ppg` is not needed.
3. **Spectra.**  Each series is linearly detrended, Hann-tapered and zero-padded to 0.1
   breath/min bins, and its periodogram is divided by a background model, so that the
   respiratory peak and not the drift decides: the baseline series (``riiv``, ``bw``) sit on the
   1/f background of vasomotor and thermoregulatory drift (periodogram times frequency), while
   for ``am`` and ``fm`` (white beat-detection noise mixed with 1/f variability, in proportions
   that vary) a power law is fitted to each window's periodogram.  Beat-sampled series are only
   trusted below half the heart rate (their Nyquist rate).  There is no 0.1 Hz high-pass: the
   band starts at ``rate_min_brpm`` (4 breaths/min = 0.067 Hz).  The PPG spectrum is the mean of
   its modulations' normalised spectra (spectral fusion: a rate present in several modulations
   adds up, an artefact in one is diluted); the accelerometer spectrum is the variance-weighted
   sum over axes.
4. **Quality of a window** (0..1): share of usable samples, times share of expected beats
   found, times the agreement of the modulations (mean of ``exp(-d^2 / 2)`` over modulations,
   ``d`` = distance of each modulation's peak from the fused peak in units of 1.5 breaths/min:
   a softened form of Karlen's smart-fusion rule, which drops windows whose modulations
   disagree).  Accelerometer: squared share of motion-free samples.
5. **Tracking.**  A causal grid filter (hidden Markov model forward pass) over 4-40 breaths/min
   in 0.1 steps turns the spectra into a rate track: the prior is the previous posterior
   diffused by a Gaussian random walk (``track_sigma_brpm`` per square-root second) plus a small
   probability of a jump anywhere (``track_jump_per_s``); a window's evidence is its spectrum
   raised to ``evidence_per_s * hop_s * window quality`` (overlapping windows share most of
   their data, so each hop adds only a hop's worth of evidence, and bad data adds little).
   Isolated wrong spectral peaks (harmonics, drift) are outvoted by the history, while a
   sustained change of rate moves the track within about one window.
6. **Fusion.**  A third track multiplies the PPG and accelerometer evidence of the same data
   time (independent sensors: their likelihoods multiply, each already weighted by its window
   quality).  With only one sensor the fused track is that sensor's track.
7. **Read-out.**  Rate = centroid of the posterior within 1 breath/min of its maximum, plus the
   shift that the background compensation gave the last window's spectral lobe (measured as the
   distance between the lobe's maxima with and without compensation; up to 0.7 breaths/min at
   5 breaths/min in 32 s windows).  Quality = posterior mass within 1.5 breaths/min of the
   maximum (rescaled so that a flat posterior gives 0) times the last window's quality.  The
   rate is NaN before the first evidence, after ``max_hold_s`` without a usable window, and when
   the quality is below ``min_quality`` (not estimable).

The pacer's rate (:attr:`RespirationEstimator.pace_hint_brpm`) only re-weights the *read-out*
of the posterior, by at most a factor ``1 + hint_gain`` near the hint; it never enters the
recursion, so it can choose between two rates the data already support but cannot create or
sustain a rate the data do not show.

Chunk invariance: windows are cut at fixed sample counts (:class:`FixedHopWindows`), the causal
filters carry their state, and each window is analysed from the buffer alone, so any split of
a stream gives identical estimates.  The fused track needs both streams up to a data time: a
PPG hop waits until the accelerometer has reached its time, or until the PPG is ``max_lag_s``
ahead; fused estimates are therefore identical for any chunking as long as the two streams are
fed interleaved in time within ``max_lag_s`` of each other (as a device delivers them).

Latency: the first estimate after ``min_window_s`` of data; a step change of rate shows fully
after about one window.  Cost on one core (``python -m experiments.bench.speed``): about
1.3 ms per PPG hop and 0.4 ms per accelerometer hop with 64 s windows, 2.7 ms per second of
Muse data in all.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import maximum_filter1d
from scipy.signal import find_peaks, sosfilt_zi

try:  # the compiled steps of scipy.signal.find_peaks, without its argument handling (hot path)
    from scipy.signal._peak_finding_utils import (
        _local_maxima_1d,
        _peak_prominences,
        _select_by_peak_distance,
    )
except ImportError:  # pragma: no cover - another scipy layout: the public function
    _local_maxima_1d = None

from ._checks import check_chunk, check_positive, check_range
from .filters import SosFilter, _sosfilt_inplace, design_sos
from .types import Chunk, Estimate, FloatArray, Metric, SignalKind
from .windows import FixedHopWindows

__all__ = [
    "MODULATIONS",
    "RATE_MAX_BRPM",
    "RATE_MIN_BRPM",
    "RespirationConfig",
    "RespirationEstimator",
    "RespirationRate",
    "rate_from_accel",
    "rate_from_ppg",
]

logger = logging.getLogger(__name__)

BoolArray = NDArray[np.bool_]

#: Physiological range covered, in breaths/min (slow paced breathing to tachypnoea).
RATE_MIN_BRPM = 4.0
RATE_MAX_BRPM = 40.0
#: PPG respiratory modulations: baseline (intensity), pulse amplitude, beat interval.
MODULATIONS = ("riiv", "bw", "am", "fm")

_SERIES_SFREQ = 4.0  # Hz: respiratory series resampled here (Nyquist 120 breaths/min)
_GRID_STEP_BRPM = 0.1
_NFFT = int(round(_SERIES_SFREQ * 60.0 / _GRID_STEP_BRPM))  # 2400 points -> 0.1 brpm bins
_PPG_WORK_SFREQ = 25.0  # Hz: PPG decimated to at least this for beat detection
_PPG_LOWPASS_HZ = 8.0
_CARDIAC_BAND_HZ = (0.5, 5.0)
#: Modulations whose background is fitted per window (beat-detection noise is white, HRV and
#: vasomotion are 1/f-like, and their mix varies); the baseline ones have a 1/f background.
_FITTED_BACKGROUND = frozenset({"am", "fm"})
_BASELINE_LOWPASS_HZ = 0.7  # continuous PPG baseline (RIIV): above 40 breaths/min
_ACCEL_LOWPASS_HZ = 0.8  # above 40 breaths/min, below most heart rates (ballistocardiogram)
_MIN_IBI_S, _MAX_IBI_S = 0.3, 2.0  # 30-200 beats/min
_CONC_HALF_WIDTH_BRPM = 1.5  # posterior mass this close to its maximum is the track's confidence
_AGREE_WIDTH_BRPM = 1.5  # modulations agree when their peaks are within about this
_MAX_SHIFT_BRPM = 1.0  # largest read-out correction of the compensation's peak shift
_EDGE_MARGIN_BRPM = 1.0  # grid beyond rate_max_brpm, so that a lobe at the top edge is whole
_MOTION_G_PER_S = 0.05  # slope of the 0.8 Hz low-passed accelerometer: breathing tilt is ~0.01 g/s


@dataclass(frozen=True, slots=True)
class RespirationConfig:
    """Settings of :class:`RespirationEstimator` and its offline twins.

    Parameters
    ----------
    window_s : float
        Longest analysis window in s (the window used at slow rates).
    min_window_s : float or None
        Shortest analysis window in s (used at fast rates; first estimate after this much
        data).  ``None``: half of ``window_s``.
    cycles_per_window : float
        The window spans this many breaths at the tracked rate, within the two limits above.
    hop_s : float
        Time between estimates, in s of data.
    rate_min_brpm, rate_max_brpm : float
        Rate range searched, breaths/min (default 4-40).
    modulations : tuple of str
        PPG modulations fused, a subset of :data:`MODULATIONS`.
    track_sigma_brpm : float
        Random-walk standard deviation of the rate track, breaths/min per square-root second.
    track_jump_per_s : float
        Probability per second that the rate jumps anywhere in the range.
    evidence_per_s : float
        Exponent of a window's spectrum per second of new data (0 would ignore the data).
    max_hold_s : float or None
        Rate is NaN after this long without a usable window (``None``: ``window_s``).
    min_quality : float
        Rate is NaN when the quality is below this.
    hint_gain : float
        The pace hint multiplies the read-out posterior near the hint by at most
        ``1 + hint_gain``.
    hint_width_brpm : float
        Standard deviation of that re-weighting around the hint, breaths/min.
    max_lag_s : float
        How long (in PPG data time) fused estimates wait for a lagging accelerometer stream.
    ppg_offset_s, accel_offset_s : float
        Phase of each stream's hops within ``hop_s`` (0 <= offset < hop_s): a PPG hop ends at
        the sample whose 1-based index minus ``round(ppg_offset_s * sfreq)`` is a multiple of
        the hop.  The offline twins use 0; :class:`~adaptive.pipeline.DspPipeline` staggers the
        two streams' hops from the other estimators' so that one real-time tick does not carry
        every estimator's work.
    """

    window_s: float = 64.0
    min_window_s: float | None = None
    cycles_per_window: float = 8.0
    hop_s: float = 1.0
    rate_min_brpm: float = RATE_MIN_BRPM
    rate_max_brpm: float = RATE_MAX_BRPM
    modulations: tuple[str, ...] = MODULATIONS
    track_sigma_brpm: float = 0.3
    track_jump_per_s: float = 0.005
    evidence_per_s: float = 0.15
    max_hold_s: float | None = None
    min_quality: float = 0.05
    hint_gain: float = 1.0
    hint_width_brpm: float = 1.0
    max_lag_s: float = 5.0
    ppg_offset_s: float = 0.0
    accel_offset_s: float = 0.0

    def __post_init__(self) -> None:
        fix = "See RespirationConfig's docstring for the valid ranges."
        check_range("window_s", self.window_s, 8.0, 600.0, fix)
        if self.min_window_s is None:
            object.__setattr__(self, "min_window_s", self.window_s / 2.0)
        check_range("min_window_s", self.min_window_s, 4.0, self.window_s,
                    "The shortest window must not be longer than window_s.")
        check_positive("cycles_per_window", self.cycles_per_window, fix)
        check_range("hop_s", self.hop_s, 0.05, self.min_window_s, "Use a hop shorter than the window.")
        check_range("rate_min_brpm", self.rate_min_brpm, 1.0, 60.0, fix)
        check_range("rate_max_brpm", self.rate_max_brpm, self.rate_min_brpm + 1.0, 100.0,
                    "rate_max_brpm must exceed rate_min_brpm by at least 1 breath/min.")
        mods = tuple(self.modulations)
        if not mods or any(m not in MODULATIONS for m in mods) or len(set(mods)) != len(mods):
            raise ValueError(
                f"Invalid value for 'modulations': expected a non-empty subset of {MODULATIONS!r}, "
                f"got {self.modulations!r}."
            )
        object.__setattr__(self, "modulations", mods)
        check_range("track_sigma_brpm", self.track_sigma_brpm, 0.0, 10.0, fix)
        check_range("track_jump_per_s", self.track_jump_per_s, 0.0, 1.0, fix)
        check_range("evidence_per_s", self.evidence_per_s, 0.0, 10.0, fix)
        if self.max_hold_s is None:
            object.__setattr__(self, "max_hold_s", self.window_s)
        check_positive("max_hold_s", self.max_hold_s, fix)
        check_range("min_quality", self.min_quality, 0.0, 1.0, fix)
        check_range("hint_gain", self.hint_gain, 0.0, 10.0, fix)
        check_positive("hint_width_brpm", self.hint_width_brpm, fix)
        for name in ("ppg_offset_s", "accel_offset_s"):
            value = getattr(self, name)
            if not 0.0 <= value < self.hop_s:
                raise ValueError(
                    f"Invalid value for {name!r}: expected 0 <= {name} < hop_s ({self.hop_s!r} s), got "
                    f"{value!r}. Give the hop's phase in seconds."
                )
        check_positive("max_lag_s", self.max_lag_s, fix)


# ---------------------------------------------------------------------------------------------
# Spectra on the common rate grid
# ---------------------------------------------------------------------------------------------


class _Grid:
    """Rate grid (breaths/min) and the FFT bins that land on it."""

    def __init__(self, lo: float, hi: float) -> None:
        k0 = int(math.ceil(lo / _GRID_STEP_BRPM - 1e-9))
        k1 = int(math.floor(hi / _GRID_STEP_BRPM + 1e-9))
        self.bins = np.arange(k0, k1 + 1)
        self.brpm: FloatArray = self.bins * _GRID_STEP_BRPM
        self.log_brpm: FloatArray = np.log(self.brpm)
        self._log_mean = float(self.log_brpm.mean())
        self._log_centered = self.log_brpm - self._log_mean
        self._log_ss = float(np.dot(self._log_centered, self._log_centered))
        self.n = int(self.brpm.size)
        self._plans: dict[int, tuple[FloatArray, float, FloatArray]] = {}
        self._brpm: list[float] = self.brpm.tolist()  # Python floats for scalar read-outs
        self._conc_half = int(round(_CONC_HALF_WIDTH_BRPM / _GRID_STEP_BRPM))
        self.flat_conc = min(1.0, (2 * _CONC_HALF_WIDTH_BRPM / _GRID_STEP_BRPM + 1) / self.n)

    def spectra(
        self, series: FloatArray, fitted: tuple[bool, ...]
    ) -> list[tuple[FloatArray, FloatArray] | None]:
        """Background-compensated and raw periodograms of 4 Hz series on the grid.

        ``series`` has shape (n_series, n) (series of one length, analysed in one FFT).  The
        background is either the 1/f of vasomotor drift (periodogram times frequency) or, where
        ``fitted[i]``, a power law fitted to that periodogram (a line in log-log coordinates),
        whatever its slope.  Both are normalised to unit sum; None for a series of fewer than
        8 samples or without power.
        """
        return self.spectra_groups([(series, fitted)])[0]

    def spectra_groups(
        self, groups: list[tuple[FloatArray, tuple[bool, ...]]]
    ) -> list[list[tuple[FloatArray, FloatArray] | None]]:
        """:meth:`spectra` of several groups of series (one length per group) in one FFT call.

        Each row is detrended and tapered for its own length and zero-padded to the FFT length,
        exactly as ``np.fft.rfft(row, n)`` pads it, so the result equals one call per group.
        """
        rows = sum(series.shape[0] for series, _ in groups if series.shape[1] >= 8)
        if rows == 0:
            return [[None] * series.shape[0] for series, _ in groups]
        buf = np.zeros((rows, _NFFT))
        r = 0
        for series, _ in groups:
            k, n = series.shape
            if n < 8:
                continue
            t, tt, hann = self._plan(n)
            y = buf[r : r + k, :n]
            np.subtract(series, series.sum(axis=1, keepdims=True) / n, out=y)  # = mean, less overhead
            for row in y:  # linear detrend, row by row (np.dot, as for a single series)
                row -= t * (np.dot(t, row) / tt)
            y *= hann
            r += k
        # the grid's bins are contiguous: a slice, not a gather
        power = np.abs(np.fft.rfft(buf, axis=1)[:, self.bins[0] : self.bins[-1] + 1]) ** 2
        out: list[list[tuple[FloatArray, FloatArray] | None]] = []
        r = 0
        for series, fitted in groups:
            k, n = series.shape
            if n < 8:
                out.append([None] * k)
                continue
            out.append([self._compensate(p, fit) for p, fit in zip(power[r : r + k], fitted)])
            r += k
        return out

    def _compensate(self, p: FloatArray, fit: bool) -> tuple[FloatArray, FloatArray] | None:
        """(background-compensated, raw) spectra of one periodogram, each of unit sum, or None."""
        peak = float(p.max())
        if not (math.isfinite(peak) and peak > 0.0):
            return None
        raw = p / float(p.sum())
        if fit:
            log_p = np.log(p / peak + 1e-12)
            slope = float(np.dot(self._log_centered, log_p)) / self._log_ss
            intercept = float(log_p.sum()) / log_p.size - slope * self._log_mean
            p = p / np.exp(intercept + slope * self.log_brpm)
        else:
            p = p * self.brpm
        total = float(p.sum())
        if not (math.isfinite(total) and total > 0.0):
            return None
        return (p / total, raw)

    def _plan(self, n: int) -> tuple[FloatArray, float, FloatArray]:
        """Centred sample index, its sum of squares and the Hann taper for ``n`` points.

        Cached: window lengths repeat from hop to hop.
        """
        plan = self._plans.get(n)
        if plan is None:
            t = np.arange(n, dtype=np.float64)
            t -= t.mean()
            plan = (t, float(np.dot(t, t)), np.hanning(n))
            if len(self._plans) < 256:
                self._plans[n] = plan
        return plan

    def peak(self, p: FloatArray) -> float:
        """Rate at the maximum of ``p`` (parabolic interpolation), breaths/min."""
        i = int(p.argmax())
        if 0 < i < self.n - 1:
            a, b, c = float(p[i - 1]), float(p[i]), float(p[i + 1])
            den = a - 2.0 * b + c
            off = 0.5 * (a - c) / den if den < 0 else 0.0
            return self._brpm[i] + min(0.5, max(-0.5, off)) * _GRID_STEP_BRPM
        return self._brpm[i]

    def local_peak(self, p: FloatArray, rate: float, half_width: float) -> float | None:
        """Local maximum of ``p`` within ``half_width`` of ``rate``, or None.

        A maximum on the edge of that neighbourhood is no local peak (None).
        """
        i0 = max(0, int(round((rate - half_width - self._brpm[0]) / _GRID_STEP_BRPM)))
        i1 = min(self.n, int(round((rate + half_width - self._brpm[0]) / _GRID_STEP_BRPM)) + 1)
        if i1 - i0 < 3:
            return None
        i = i0 + int(p[i0:i1].argmax())
        if i <= i0 or i >= i1 - 1:
            return None
        a, b, c = float(p[i - 1]), float(p[i]), float(p[i + 1])
        den = a - 2.0 * b + c
        off = 0.5 * (a - c) / den if den < 0 else 0.0
        return self._brpm[i] + min(0.5, max(-0.5, off)) * _GRID_STEP_BRPM

    def concentration(self, p: FloatArray) -> float:
        """Share of ``p`` within 1.5 breaths/min of its maximum, rescaled so flat gives 0."""
        i = int(p.argmax())
        h = self._conc_half
        c = float(p[max(0, i - h) : i + h + 1].sum() / p.sum())
        return max(0.0, (c - self.flat_conc) / (1.0 - self.flat_conc))


@dataclass(slots=True)
class _Evidence:
    """What one window says: a spectrum on the grid (None: nothing) and its signal quality."""

    time: float
    spectrum: FloatArray | None
    quality: float
    details: dict[str, float] = field(default_factory=dict)
    raw: FloatArray | None = None  # the same spectrum without background compensation
    readout: tuple[float, float] = (math.nan, 0.0)  # the stream track's (rate, quality) after it
    log_like: FloatArray | None = None  # _evidence_log_like of it, once computed (stream and fusion)


class _Tracker:
    """Causal grid filter (HMM forward pass) of the breathing rate."""

    def __init__(self, grid: _Grid, cfg: RespirationConfig) -> None:
        self._grid = grid
        self._cfg = cfg
        self._kernels: dict[float, FloatArray] = {}
        self._hint_weight: tuple[float, FloatArray] | None = None  # (hint, read-out weights)
        self.reset()

    def reset(self) -> None:
        self.post: FloatArray | None = None
        self.time: float | None = None
        self.last_evidence_time: float | None = None
        self.last_quality = 0.0
        self._shapes: tuple[FloatArray, FloatArray] | None = None

    def _kernel(self, dt: float) -> FloatArray:
        key = round(dt, 9)
        k = self._kernels.get(key)
        if k is None:
            sig = self._cfg.track_sigma_brpm * math.sqrt(max(dt, 0.0)) / _GRID_STEP_BRPM
            if sig < 1e-3:
                k = np.ones(1)
            else:
                half = int(math.ceil(4.0 * sig))
                x = np.arange(-half, half + 1, dtype=np.float64)
                k = np.exp(-0.5 * (x / sig) ** 2)
                k /= k.sum()
            if len(self._kernels) < 64:
                self._kernels[key] = k
        return k

    def step(self, time: float, log_like: FloatArray | None, dt: float, quality: float,
             shapes: tuple[FloatArray, FloatArray] | None = None) -> None:
        """Diffuse over ``dt`` s, then multiply by ``exp(log_like)`` (None: no evidence).

        ``shapes`` are the window's compensated and raw spectra, kept for the read-out's
        correction of the peak shift that the background compensation causes.
        """
        n = self._grid.n
        if self.post is None:
            if log_like is None:
                self.time = time
                return
            prior = np.full(n, 1.0 / n)
        else:
            k = self._kernel(dt)
            # Mass diffusing beyond the range edges is lost (absorbing edges, then renormalised):
            # a mild preference for the interior, where under 4 breaths/min drift would otherwise
            # capture the track.
            prior = np.convolve(self.post, k, mode="same") if k.size > 1 else self.post.copy()
            jump = 1.0 - (1.0 - self._cfg.track_jump_per_s) ** max(dt, 0.0)
            prior = (1.0 - jump) * prior / prior.sum() + jump / n
        if log_like is not None:
            post = prior * np.exp(log_like - log_like.max())
            post /= post.sum()
            self.last_evidence_time = time
            self.last_quality = quality
            self._shapes = shapes
        else:
            post = prior
            self.last_quality = 0.0
        self.post = post
        self.time = time

    def read(self, hint: float | None) -> tuple[float, float]:
        """Return (rate in breaths/min or NaN, quality 0..1) at the current time."""
        cfg, grid = self._cfg, self._grid
        if self.post is None or self.last_evidence_time is None or self.time is None:
            return math.nan, 0.0
        if self.time - self.last_evidence_time > cfg.max_hold_s + 1e-9:
            return math.nan, 0.0
        post = self.post
        quality = grid.concentration(post) * self.last_quality
        if hint is not None and cfg.hint_gain > 0:
            if self._hint_weight is None or self._hint_weight[0] != hint:  # the pace changes rarely
                near = np.exp(-0.5 * ((grid.brpm - hint) / cfg.hint_width_brpm) ** 2)
                self._hint_weight = (hint, 1.0 + cfg.hint_gain * near)
            post = post * self._hint_weight[1]
        i = int(np.argmax(post))
        # centroid over a symmetric neighbourhood (narrower at the grid edges: no edge bias)
        h = min(int(round(1.0 / _GRID_STEP_BRPM)), i, grid.n - 1 - i)
        sl = slice(i - h, i + h + 1)
        rate = float(np.dot(post[sl], grid.brpm[sl]) / post[sl].sum())
        rate += self._compensation_shift(rate)
        rate = min(cfg.rate_max_brpm, max(cfg.rate_min_brpm, rate))
        quality = min(1.0, max(0.0, quality))
        if quality < cfg.min_quality:
            return math.nan, quality
        return rate, quality

    def _compensation_shift(self, rate: float) -> float:
        """Shift of the last window's spectral peak near ``rate`` caused by the compensation.

        Multiplying a spectral lobe by a rising background correction moves its maximum up by
        about (lobe width)^2 / rate: 0.3-0.7 breaths/min at 5 breaths/min in a 32 s window.  The
        raw and compensated spectra of the last window locate the same lobe; their difference
        is added back (0 when either has no clear local maximum near ``rate``).
        """
        if self._shapes is None:
            return 0.0
        grid = self._grid
        peaks = [grid.local_peak(p, rate, _CONC_HALF_WIDTH_BRPM) for p in self._shapes]
        if peaks[0] is None or peaks[1] is None:
            return 0.0
        return min(_MAX_SHIFT_BRPM, max(-_MAX_SHIFT_BRPM, peaks[1] - peaks[0]))

    def rate(self) -> float | None:
        """Current maximum-posterior rate (no hint), or None."""
        if self.post is None or self.last_evidence_time is None:
            return None
        return float(self._grid.brpm[int(np.argmax(self.post))])


def _shapes(*evidence: _Evidence) -> tuple[FloatArray, FloatArray] | None:
    """Quality-weighted compensated and raw spectra of some windows (None: none usable)."""
    use = [e for e in evidence if e.spectrum is not None and e.raw is not None and e.quality > 0.0]
    if not use:
        return None
    comp = use[0].quality * use[0].spectrum
    raw = use[0].quality * use[0].raw
    for e in use[1:]:  # in order, as np.sum over axis 0 adds them
        comp = comp + e.quality * e.spectrum
        raw = raw + e.quality * e.raw
    return np.asarray(comp, dtype=np.float64), np.asarray(raw, dtype=np.float64)


def _evidence_log_like(ev: _Evidence, cfg: RespirationConfig) -> FloatArray | None:
    if ev.log_like is not None:  # the stream's track and the fused track use the same evidence
        return ev.log_like
    if ev.spectrum is None or ev.quality <= 0.0:
        return None
    beta = cfg.evidence_per_s * cfg.hop_s * ev.quality
    s = ev.spectrum
    peak = float(s.max())
    floor = 1e-3 * peak
    ev.log_like = np.asarray(beta * np.log((s + floor) / (peak + floor)), dtype=np.float64)
    return ev.log_like


# ---------------------------------------------------------------------------------------------
# Window analysis
# ---------------------------------------------------------------------------------------------


class _ZeroPhase:
    """Forward-backward filtering of one window (as scipy's sosfiltfilt, odd padding).

    Only the window's own samples are used, so the result stays causal with respect to the
    window end; the initial conditions are precomputed once.  Both passes run the compiled
    kernel behind :func:`scipy.signal.sosfilt` (bit-identical, without its argument handling).
    """

    def __init__(self, sos: FloatArray) -> None:
        self._sos = np.array(sos, dtype=np.float64, order="C")
        self._zi = np.ascontiguousarray(sosfilt_zi(self._sos)[np.newaxis])  # (1, n_sections, 2)
        self._pad = 3 * (2 * sos.shape[0] + 1)

    def apply(self, x: FloatArray) -> FloatArray:
        pad = min(self._pad, x.size - 1)
        ext = np.concatenate([2 * x[0] - x[pad:0:-1], x, 2 * x[-1] - x[-2 : -pad - 2 : -1]])
        y = _sosfilt_inplace(self._sos, ext[np.newaxis], self._zi * ext[0])
        y = np.ascontiguousarray(y[:, ::-1])
        y = _sosfilt_inplace(self._sos, y, self._zi * y[0, 0])
        return np.asarray(y[0, ::-1][pad : pad + x.size], dtype=np.float64)


def _peaks(x: FloatArray, distance: int, prominence: float) -> NDArray[np.intp]:
    """``find_peaks(x, distance=distance, prominence=prominence)[0]``, bit for bit.

    The same compiled steps in the same order (local maxima, selection by distance, then by
    prominence), without the wrapper's argument handling and property bookkeeping.
    """
    if _local_maxima_1d is None:  # pragma: no cover
        return find_peaks(x, distance=distance, prominence=prominence)[0]
    x = np.ascontiguousarray(x, dtype=np.float64)
    peaks = _local_maxima_1d(x)[0]
    peaks = peaks[_select_by_peak_distance(peaks, x[peaks], float(distance))]
    prom = _peak_prominences(x, peaks, -1)[0]
    return peaks[prominence <= prom]


def _median(x: FloatArray) -> float:
    """``np.median`` of a 1-D array, bit for bit, without its overhead (hot path)."""
    n = x.size
    if n == 0 or not math.isfinite(float(x.sum())):
        return float(np.median(x))  # empty or non-finite: numpy's own rules (NaN)
    h = n // 2
    if n % 2:
        return float(np.partition(x, h)[h])
    part = np.partition(x, (h - 1, h))
    return (float(part[h - 1]) + float(part[h])) / 2.0  # numpy: mean of the two middle values


def _percentiles(x: FloatArray, qs: tuple[float, ...]) -> list[float]:
    """``np.percentile(x, qs)`` (linear method) of a finite 1-D array, bit for bit, faster."""
    n = x.size
    if n == 0 or not math.isfinite(float(x.sum())):
        return [float(v) for v in np.percentile(x, qs)]
    pos = [(n - 1) * (q / 100.0) for q in qs]
    lo = [min(int(math.floor(v)), n - 1) for v in pos]
    kth = sorted({k for i in lo for k in (i, min(i + 1, n - 1))})
    part = np.partition(x, kth)
    out = []
    for v, i in zip(pos, lo):
        a, b = float(part[i]), float(part[min(i + 1, n - 1)])
        g = v - i
        d = b - a  # numpy's _lerp: from the nearer end
        out.append(b - d * (1.0 - g) if g >= 0.5 else a + d * g)
    return out


def _contiguous_tail(times: FloatArray, sfreq: float) -> int:
    """Index of the first sample after the last gap (> 1.5 sample periods) in ``times``."""
    if times.size > 1 and float((times[1:] - times[:-1]).max()) <= 1.5 / sfreq:  # no gap (NaN: slow path)
        return 0
    finite = np.isfinite(times)
    if not finite.all():
        start = int(np.flatnonzero(~finite)[-1]) + 1
    else:
        start = 0
    d = np.diff(times[start:])
    gaps = np.flatnonzero(d > 1.5 / sfreq)
    return start + (int(gaps[-1]) + 1 if gaps.size else 0)


def _dilate(mask: BoolArray, half: int) -> BoolArray:
    if half <= 0 or not mask.any():
        return mask
    return np.asarray(maximum_filter1d(mask.astype(np.uint8), size=2 * half + 1) > 0)


def _fill_invalid(x: FloatArray, bad: BoolArray) -> FloatArray:
    """Linear interpolation over ``bad`` samples (edges held)."""
    if not bad.any():
        return x
    good = ~bad
    if not good.any():
        return np.zeros_like(x)
    idx = np.arange(x.size)
    return np.interp(idx, idx[good], x[good])


def _clipped(raw: FloatArray, min_count: int) -> BoolArray:
    """Samples sitting on the window's extreme values when those repeat (saturated sensor)."""
    hi, lo = float(raw.max()), float(raw.min())
    if math.isfinite(hi) and math.isfinite(lo):  # every sample finite (NaN and inf propagate)
        if hi == lo:
            return np.ones(raw.shape, dtype=bool)
        out = np.zeros(raw.shape, dtype=bool)
        for v in (hi, lo):
            m = raw == v
            if int(np.count_nonzero(m)) >= min_count:
                out |= m
        return out
    fin = np.isfinite(raw)
    out = np.zeros(raw.shape, dtype=bool)
    if not fin.any():
        return out
    vals = raw[fin]
    hi, lo = float(vals.max()), float(vals.min())
    if hi == lo:
        return fin
    for v in (hi, lo):
        m = raw == v
        if int(m.sum()) >= min_count:
            out |= m
    return out


def _robust_outliers(v: FloatArray, k: float) -> BoolArray:
    med = _median(v)
    mad = 1.4826 * _median(np.abs(v - med))
    if mad <= 0.0:
        return np.zeros(v.shape, dtype=bool)
    return np.asarray(np.abs(v - med) > k * mad)


class _PpgAnalyzer:
    """Respiratory modulations of one PPG window."""

    def __init__(self, sfreq: float, grid: _Grid, cfg: RespirationConfig) -> None:
        self.sfreq = sfreq
        self.decim = max(1, int(sfreq // _PPG_WORK_SFREQ))
        self.work_sfreq = sfreq / self.decim
        hi = min(_CARDIAC_BAND_HZ[1], 0.45 * self.work_sfreq)
        self._card = _ZeroPhase(design_sos(self.work_sfreq, l_freq=_CARDIAC_BAND_HZ[0], h_freq=hi, order=2))
        self._base = _ZeroPhase(design_sos(self.work_sfreq, h_freq=_BASELINE_LOWPASS_HZ, order=4))
        self._grid = grid
        self._cfg = cfg

    def analyze(self, filt: FloatArray, raw: FloatArray, valid: FloatArray, times: FloatArray) -> _Evidence:
        cfg, grid, fw = self._cfg, self._grid, self.work_sfreq
        t_end = float(times[-1])
        start = _contiguous_tail(times, self.sfreq)
        min_n = int(0.75 * cfg.min_window_s * self.sfreq)
        if times.size - start < min_n:
            return _Evidence(t_end, None, 0.0)
        if start:
            filt, raw, valid, times = filt[start:], raw[start:], valid[start:], times[start:]
        d = self.decim
        # decimate, aligned so that the last working sample is the window end
        sl = slice((filt.size - 1) % d, None, d)
        x, tw = filt[sl], times[sl]
        bad_raw = _clipped(raw, max(3, int(0.05 * self.sfreq)))
        if float(valid.min()) < 0.5:
            bad_raw |= valid < 0.5
        # the common case, a clean window, skips the masking (same numbers: nothing is masked)
        clean = not bad_raw.any()
        if clean:
            bad = np.zeros(x.size, dtype=bool)
            good_frac = 1.0
            xf = x
            if float(xf.max()) - float(xf.min()) <= 0.0:
                return _Evidence(t_end, None, 0.0, {"good": good_frac})
        else:
            bad = np.asarray(maximum_filter1d(bad_raw.astype(np.uint8), size=d)[sl] > 0)
            bad = _dilate(bad, int(round(0.5 * fw)))
            good_frac = 1.0 - float(bad.mean())
            if good_frac < 0.5:
                return _Evidence(t_end, None, 0.0, {"good": good_frac})
            xf = _fill_invalid(x, bad)
            if float(np.ptp(xf[~bad])) <= 0.0:
                return _Evidence(t_end, None, 0.0, {"good": good_frac})
        xc = xf - float(xf.sum()) / xf.size
        c = self._card.apply(xc)
        lo_q, hi_q = _percentiles(c if clean else c[~bad], (5.0, 95.0))
        amp = float(hi_q - lo_q)
        if not amp > 0.0:
            return _Evidence(t_end, None, 0.0, {"good": good_frac})
        pk = _peaks(c, max(1, int(_MIN_IBI_S * fw)), 0.3 * amp)
        if not clean:
            pk = pk[~bad[pk]]
        if pk.size < 4:
            return _Evidence(t_end, None, 0.0, {"good": good_frac})
        # per beat: foot = minimum since the previous peak, peak = local maximum of x
        feet = np.minimum.reduceat(x, pk[:-1])
        half = max(1, int(round(0.12 * fw)))
        # = maximum_filter1d(x, 2 * half + 1)[pk[1:]]: only at the peaks (window clipped at the
        # edges, which holds the same samples as the filter's reflected border)
        nbr = np.minimum(np.maximum(pk[1:, np.newaxis] + np.arange(-half, half + 1), 0), x.size - 1)
        tops = x[nbr].max(axis=1)
        pk_t = float(tw[0]) + self._refine(c, pk)  # session times of the peaks
        t_b = pk_t[1:]
        ibi = pk_t[1:] - pk_t[:-1]
        am = tops - feet
        bw = 0.5 * (tops + feet)
        # clean beats: plausible interval, no bad sample in between, no amplitude/baseline outlier
        ok = (ibi >= _MIN_IBI_S) & (ibi <= _MAX_IBI_S) & (am > 0)
        if not clean:
            ok &= ~(np.maximum.reduceat(bad.astype(np.uint8), pk[:-1]) > 0)
        n_ok = int(np.count_nonzero(ok))
        if n_ok >= 4:
            med_ibi = _median(ibi[ok])
            ok &= np.abs(ibi - med_ibi) <= 0.4 * med_ibi
            n_ok = int(np.count_nonzero(ok))
        if n_ok >= 4:
            idx = np.flatnonzero(ok)
            ok[idx[_robust_outliers(np.log(am[idx]), 4.0)]] = False
            med_amp = _median(am[ok])
            dbw = np.empty_like(bw)  # = |np.diff(bw, prepend=bw[0])|, without the concatenation
            dbw[0] = 0.0
            np.subtract(bw[1:], bw[:-1], out=dbw[1:])
            np.abs(dbw, out=dbw)
            ok &= dbw <= med_amp  # a baseline step larger than a pulse: motion, not breathing
        n_ok = int(ok.sum())
        if n_ok < 4:
            return _Evidence(t_end, None, 0.0, {"good": good_frac})
        med_ibi = _median(ibi[ok])
        hr_bpm = 60.0 / med_ibi
        span = float(tw[-1] - tw[0]) + 1.0 / fw
        expected = max(1.0, good_frac * span / med_ibi)
        beat_frac = min(1.0, n_ok / expected)
        quality = good_frac * beat_frac
        # respiratory series at 4 Hz on a grid ending at the window end
        n_grid = int(math.floor(span * _SERIES_SFREQ))
        grid_t = t_end - np.arange(n_grid - 1, -1, -1) / _SERIES_SFREQ
        series = {"bw": bw, "am": am, "fm": ibi}
        nyq = grid.brpm <= hr_bpm / 2.0
        specs: list[FloatArray] = []
        raws: list[FloatArray] = []
        details = {"good": good_frac, "beats": beat_frac, "hr_bpm": hr_bpm}
        min_len = int(0.5 * cfg.min_window_s * _SERIES_SFREQ)
        # the series: the baseline on the whole grid, the beat series inside the beats' span
        # (one length); all their spectra come from one FFT call
        names: list[str] = []
        groups: list[tuple[FloatArray, tuple[bool, ...]]] = []
        if "riiv" in cfg.modulations:
            s_riiv = np.interp(grid_t, tw, self._base.apply(xc))
            if s_riiv.size >= min_len:
                names.append("riiv")
                groups.append((s_riiv[np.newaxis], (False,)))
        beat_names = [m for m in cfg.modulations if m != "riiv"]
        if beat_names:
            tb = t_b[ok]
            gi = grid_t[(grid_t >= tb[0]) & (grid_t <= tb[-1])]
            if gi.size >= min_len:
                stack = np.empty((len(beat_names), gi.size))
                for row, m in zip(stack, beat_names):
                    row[:] = np.interp(gi, tb, series[m][ok])
                names += beat_names
                groups.append((stack, tuple(m in _FITTED_BACKGROUND for m in beat_names)))
        pairs = dict(zip(names, (pair for group in grid.spectra_groups(groups) for pair in group)))
        for name in cfg.modulations:
            pair = pairs.get(name)
            if pair is None:
                continue
            p, raw_p = pair
            if name != "riiv":  # beat-sampled: nothing above half the heart rate
                p, raw_p = p * nyq, raw_p * nyq
            tot, tot_raw = float(p.sum()), float(raw_p.sum())
            if tot <= 0.0 or tot_raw <= 0.0:
                continue
            p /= tot
            details[f"{name}_brpm"] = grid.peak(p)
            details[f"{name}_conc"] = grid.concentration(p)
            specs.append(p)
            raws.append(raw_p / tot_raw)
        if not specs:
            return _Evidence(t_end, None, 0.0, details)
        fused = np.mean(specs, axis=0)
        r_f = grid.peak(fused)
        rates = np.array([grid.peak(p) for p in specs])
        agree = 1.0
        if len(specs) > 1:
            agree = float(np.mean(np.exp(-0.5 * ((rates - r_f) / _AGREE_WIDTH_BRPM) ** 2)))
        details["agree"] = agree
        quality *= agree  # modulations that disagree: weak evidence (Karlen's smart fusion, softened)
        return _Evidence(t_end, np.asarray(fused, dtype=np.float64), quality, details,
                         np.asarray(np.mean(raws, axis=0), dtype=np.float64))

    def _refine(self, c: FloatArray, pk: NDArray[np.intp]) -> FloatArray:
        """Peak times (s from the window's first working sample) by parabolic interpolation."""
        i = np.clip(pk, 1, c.size - 2)
        a, b, cc = c[i - 1], c[i], c[i + 1]
        den = a - 2.0 * b + cc
        curved = den < 0
        if curved.all():  # strict maxima (the usual case): no plateau to guard
            off = 0.5 * (a - cc) / den
        else:
            off = np.where(curved, 0.5 * (a - cc) / np.where(curved, den, -1.0), 0.0)
        np.clip(off, -0.5, 0.5, out=off)
        off += i
        off /= self.work_sfreq
        return off


class _AccelAnalyzer:
    """Breathing tilt of the head in one accelerometer window."""

    def __init__(self, sfreq: float, grid: _Grid, cfg: RespirationConfig) -> None:
        self.sfreq = sfreq
        self._grid = grid
        self._cfg = cfg
        self._grids: dict[int, FloatArray] = {}

    def _grid_rel(self, n: int) -> FloatArray:
        """Times of an ``n``-point 4 Hz grid ending at 0 (cached: lengths repeat)."""
        g = self._grids.get(n)
        if g is None:
            g = -np.arange(n - 1, -1, -1) / _SERIES_SFREQ
            if len(self._grids) < 256:
                self._grids[n] = g
        return g

    def analyze(self, filt: FloatArray, valid: FloatArray, times: FloatArray) -> _Evidence:
        cfg, grid = self._cfg, self._grid
        t_end = float(times[-1])
        start = _contiguous_tail(times, self.sfreq)
        min_n = int(0.75 * cfg.min_window_s * self.sfreq)
        if times.size - start < min_n:
            return _Evidence(t_end, None, 0.0)
        if start:
            filt, valid, times = filt[:, start:], valid[start:], times[start:]
        span = float(times[-1] - times[0])
        n_grid = int(math.floor(span * _SERIES_SFREQ)) + 1
        grid_rel = self._grid_rel(n_grid)  # 4 Hz grid ending at the window end, relative to it
        rel_t = times - t_end
        xs = np.empty((filt.shape[0], n_grid))
        for out, row in zip(xs, filt):
            out[:] = np.interp(grid_rel, rel_t, row)
        if float(valid.min()) > 0.5:  # every sample valid (the common case)
            bad = np.zeros(n_grid, dtype=bool)
        else:
            ok = valid > 0.5
            if ok.mean() < 0.5:
                return _Evidence(t_end, None, 0.0, {"good": float(ok.mean())})
            bad = np.interp(grid_rel, rel_t, (~ok).astype(np.float64)) > 0.0
        # gross head motion: the low-passed orientation changes faster than breathing can tilt it
        step = xs[:, 1:] - xs[:, :-1]
        slope = np.sqrt(np.sum(step * step, axis=0)) * _SERIES_SFREQ
        bad[1:] |= slope > _MOTION_G_PER_S
        bad = _dilate(bad, int(round(1.0 * _SERIES_SFREQ)))
        good_frac = 1.0 - float(np.count_nonzero(bad)) / bad.size
        if good_frac < 0.5:
            return _Evidence(t_end, None, 0.0, {"good": good_frac})
        p_sum = np.zeros(grid.n)
        raw_sum = np.zeros(grid.n)
        if good_frac == 1.0:
            filled = kept = xs
        else:
            filled = np.vstack([_fill_invalid(row, bad) for row in xs])
            kept = xs[:, ~bad]
        for row, pair in zip(kept, grid.spectra(filled, (False,) * len(xs))):
            if pair is None:
                continue
            dev = row - float(row.sum()) / row.size
            w = float((dev * dev).sum()) / row.size  # variance: axes weighted by it
            p_sum += pair[0] * w
            raw_sum += pair[1] * w
        tot = float(p_sum.sum())
        if not tot > 0.0:
            return _Evidence(t_end, None, 0.0, {"good": good_frac})
        p_sum /= tot
        raw_sum /= float(raw_sum.sum())
        details = {"good": good_frac, "accel_brpm": grid.peak(p_sum), "accel_conc": grid.concentration(p_sum)}
        return _Evidence(t_end, p_sum, good_frac**2, details, raw_sum)


# ---------------------------------------------------------------------------------------------
# Streaming estimator
# ---------------------------------------------------------------------------------------------


class _StreamPath:
    """Filter, windows, analyzer and tracker of one stream (PPG or accelerometer)."""

    def __init__(self, kind: SignalKind, sfreq: float, n_channels: int, grid: _Grid,
                 cfg: RespirationConfig, channel: int = 0) -> None:
        self.kind = kind
        self.sfreq = sfreq
        self.n_channels = n_channels
        self.channel = channel
        self._cfg = cfg
        self._grid = grid
        if kind == SignalKind.PPG:
            self._ppg: _PpgAnalyzer | None = _PpgAnalyzer(sfreq, grid, cfg)
            self._acc: _AccelAnalyzer | None = None
            lp = min(_PPG_LOWPASS_HZ, 0.4 * self._ppg.work_sfreq)
            self._sos = design_sos(sfreq, h_freq=lp, order=4)
            n_buf = 3  # filtered, raw, valid
        else:
            self._ppg = None
            self._acc = _AccelAnalyzer(sfreq, grid, cfg)
            self._sos = design_sos(sfreq, h_freq=min(_ACCEL_LOWPASS_HZ, 0.4 * sfreq), order=4)
            n_buf = n_channels + 1  # filtered axes, valid
        self._n_buf = n_buf
        self.tracker = _Tracker(grid, cfg)
        self.reset()

    def reset(self) -> None:
        cfg = self._cfg
        assert cfg.min_window_s is not None
        self._filter = SosFilter(self._sos)
        offset = cfg.ppg_offset_s if self.kind == SignalKind.PPG else cfg.accel_offset_s
        self._windows = FixedHopWindows(self._n_buf, self.sfreq, cfg.min_window_s, cfg.hop_s,
                                        capacity_s=cfg.window_s, offset_s=offset)
        self.tracker.reset()
        self.last_time: float | None = None
        self.last_evidence: _Evidence | None = None
        self.last_window_s: float | None = None

    def window_n(self) -> int:
        cfg = self._cfg
        assert cfg.min_window_s is not None
        rate = self.tracker.rate()
        length = cfg.window_s if rate is None else cfg.cycles_per_window * 60.0 / rate
        length = min(cfg.window_s, max(cfg.min_window_s, length))
        return int(round(length * self.sfreq))

    def push(self, chunk: Chunk, hint: float | None) -> list[tuple[_Evidence, float, float]]:
        """Feed a chunk; return (evidence, rate, quality) for every hop it completes."""
        ppg = self.kind == SignalKind.PPG
        raw = chunk.data[self.channel : self.channel + 1] if ppg else chunk.data
        k = raw.shape[0]
        # buffer rows: filtered channel(s), the raw PPG (clipping check), valid flag (finite)
        stacked = np.empty((self._n_buf, raw.shape[1]))
        with np.errstate(over="ignore", invalid="ignore"):  # absurd samples: bad data, no warning
            stacked[:k] = self._filter.process(raw)
        if ppg:
            stacked[1] = raw[0]
        if math.isfinite(float(raw.sum())):  # NaN and inf propagate: every sample finite
            stacked[-1] = 1.0
        else:
            stacked[-1] = np.all(np.isfinite(raw), axis=0)
        out: list[tuple[_Evidence, float, float]] = []
        n, start = stacked.shape[1], 0
        while start < n:
            # push up to the next hop boundary, so the buffer holds exactly that hop's history
            stop = min(n, start + self._windows.to_boundary())
            done = self._windows.push(stacked[:, start:stop], chunk.times[start:stop])
            start = stop
            for _, t_end in done:
                ev = self._analyze(t_end)
                ev.readout = self.tracker.read(hint)
                out.append((ev, *ev.readout))
        self.last_time = float(chunk.times[-1])
        return out

    def _analyze(self, t_end: float) -> _Evidence:
        n = min(self.window_n(), self._windows.n_total)
        self.last_window_s = n / self.sfreq
        win, times = self._windows.history(n)
        # absurd samples (overflowing powers) are bad data: they end as "no evidence", silently
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            if self._ppg is not None:
                ev = self._ppg.analyze(win[0], win[1], win[2], times)
            else:
                assert self._acc is not None
                ev = self._acc.analyze(win[:-1], win[-1], times)
        if ev.spectrum is not None and not (np.all(np.isfinite(ev.spectrum)) and math.isfinite(ev.quality)):
            ev = _Evidence(ev.time, None, 0.0, ev.details)
        dt = self._cfg.hop_s if self.tracker.time is None else t_end - self.tracker.time
        self.tracker.step(t_end, _evidence_log_like(ev, self._cfg), dt, ev.quality, _shapes(ev))
        self.last_evidence = ev
        return ev


class RespirationEstimator:
    """Streaming breathing rate from PPG modulations and head motion, fused with quality.

    Parameters
    ----------
    ppg_sfreq : float or None
        Nominal PPG rate in Hz (Muse: 64), or None if no PPG will be fed.
    accel_sfreq : float or None
        Nominal accelerometer rate in Hz (Muse: 52), or None if no accelerometer will be fed.
    config : RespirationConfig or None
        Settings (None: defaults).
    ppg_channel : int
        Row of the PPG chunks that carries the pulse (Muse: the infrared channel).
    accel_n_channels : int
        Number of accelerometer axes per chunk.

    Raises
    ------
    ValueError
        If both rates are None, a rate is not positive, or a channel setting is invalid.

    Notes
    -----
    Defaults (:class:`RespirationConfig`): windows of 32-64 s spanning 8 breaths (so 64 s below
    7.5 breaths/min, 32 s above 15), 1 s hops, 4-40 breaths/min.  Set
    :attr:`pace_hint_brpm` to the pacer's rate when a pacer runs (see the module notes: it can
    break ties between rates the data support, never replace the measurement).

    ``update`` returns, for every completed hop of PPG data, one
    :attr:`Metric.RESP_RATE_PPG_BRPM` estimate and (when the accelerometer is not lagging)
    one fused :attr:`Metric.RESP_RATE_BRPM`; for every hop of accelerometer data one
    :attr:`Metric.RESP_RATE_ACCEL_BRPM` (and fused estimates of PPG hops that waited for it).
    Without PPG the fused estimates follow the accelerometer hops.  Each estimate's time is the
    data time of its window end.  The first estimate comes after ``min_window_s`` of data; the
    track needs a few windows to settle (quality rises as it does).

    Examples
    --------
    >>> import numpy as np
    >>> from adaptive.types import Chunk, SignalKind
    >>> fs = 64.0
    >>> t = np.arange(int(60 * fs)) / fs
    >>> beat = np.sin(2 * np.pi * 1.1 * t) ** 8             # pulses at 66 beats/min
    >>> ppg = (1 + 0.2 * np.sin(2 * np.pi * 0.25 * t)) * beat  # amplitude breathing at 15/min
    >>> est = RespirationEstimator(ppg_sfreq=fs, accel_sfreq=None)
    >>> out = est.update(Chunk(SignalKind.PPG, ppg[np.newaxis], t, fs, ("PPG",)))
    >>> last = [e for e in out if e.metric == Metric.RESP_RATE_BRPM][-1]
    >>> round(last.value)
    15
    """

    def __init__(
        self,
        ppg_sfreq: float | None = 64.0,
        accel_sfreq: float | None = 52.0,
        *,
        config: RespirationConfig | None = None,
        ppg_channel: int = 0,
        accel_n_channels: int = 3,
    ) -> None:
        self._cfg = config if config is not None else RespirationConfig()
        if ppg_sfreq is None and accel_sfreq is None:
            raise ValueError(
                "Invalid value for 'ppg_sfreq'/'accel_sfreq': expected at least one stream rate, "
                "got None for both. Pass ppg_sfreq=64.0 for a Muse PPG stream."
            )
        if isinstance(ppg_channel, bool) or not isinstance(ppg_channel, (int, np.integer)) or ppg_channel < 0:
            raise ValueError(
                f"Invalid value for 'ppg_channel': expected a row index >= 0, got {ppg_channel!r}."
            )
        if (isinstance(accel_n_channels, bool) or not isinstance(accel_n_channels, (int, np.integer))
                or accel_n_channels < 1):
            raise ValueError(
                "Invalid value for 'accel_n_channels': expected a positive integer, "
                f"got {accel_n_channels!r}."
            )
        # The grid extends a little above the range, so that a lobe at 40 breaths/min is whole;
        # not below it: under 4 breaths/min vasomotor drift dominates and would capture the track.
        self._grid = _Grid(self._cfg.rate_min_brpm, self._cfg.rate_max_brpm + _EDGE_MARGIN_BRPM)
        self._ppg: _StreamPath | None = None
        self._acc: _StreamPath | None = None
        if ppg_sfreq is not None:
            fs = check_positive("ppg_sfreq", ppg_sfreq, "Use the PPG stream's nominal rate (Muse: 64 Hz).")
            check_range("ppg_sfreq", fs, 10.0, 10000.0, "PPG needs at least 10 Hz for beat detection.")
            self._ppg = _StreamPath(SignalKind.PPG, fs, 1, self._grid, self._cfg, int(ppg_channel))
        if accel_sfreq is not None:
            fs = check_positive("accel_sfreq", accel_sfreq,
                                "Use the accelerometer's nominal rate (Muse: 52 Hz).")
            check_range("accel_sfreq", fs, 2.0, 10000.0, "The accelerometer needs at least 2 Hz.")
            self._acc = _StreamPath(SignalKind.ACCEL, fs, int(accel_n_channels), self._grid, self._cfg)
        # with a single stream the fused track *is* that stream's track (same evidence)
        single = self._ppg if self._acc is None else self._acc if self._ppg is None else None
        self._fused = single.tracker if single is not None else _Tracker(self._grid, self._cfg)
        self._hint: float | None = None
        self.reset()

    # ------------------------------------------------------------------ public API
    @property
    def config(self) -> RespirationConfig:
        """The settings in use."""
        return self._cfg

    @property
    def current_window_s(self) -> dict[SignalKind, float]:
        """Length in s of the window analysed at each stream's latest hop (adaptive)."""
        return {p.kind: p.last_window_s for p in (self._ppg, self._acc)
                if p is not None and p.last_window_s is not None}

    @property
    def pace_hint_brpm(self) -> float | None:
        """The pacer's current rate in breaths/min, or None (no pacer)."""
        return self._hint

    @pace_hint_brpm.setter
    def pace_hint_brpm(self, value: float | None) -> None:
        if value is None:
            self._hint = None
            return
        self._hint = check_range("pace_hint_brpm", value, 1.0, 100.0,
                                 "Pass the pacer's rate in breaths/min, or None without a pacer.")

    def reset(self) -> None:
        """Forget all data (filters, windows, tracks); the pace hint is kept."""
        for path in (self._ppg, self._acc):
            if path is not None:
                path.reset()
        self._fused.reset()
        self._pending: deque[_Evidence] = deque()
        self._acc_queue: deque[_Evidence] = deque(maxlen=int(4.0 * self._cfg.max_lag_s / self._cfg.hop_s) + 8)
        self._ppg_seen = False

    def update(self, chunk: Chunk) -> list[Estimate]:
        """Feed one PPG or accelerometer chunk; return the estimates of the hops it completes.

        Parameters
        ----------
        chunk : Chunk
            A PPG chunk (rate ``ppg_sfreq``, at least ``ppg_channel + 1`` rows) or an
            accelerometer chunk (rate ``accel_sfreq``, ``accel_n_channels`` rows).

        Returns
        -------
        estimates : list of Estimate
            See the class notes.

        Raises
        ------
        TypeError
            If ``chunk`` is not a :class:`Chunk`.
        ValueError
            If its kind, rate or channel count does not match the estimator.
        """
        if not isinstance(chunk, Chunk):
            raise TypeError(f"Invalid value for 'chunk': expected a Chunk, got {type(chunk).__name__}.")
        owner = "RespirationEstimator"
        if chunk.kind == SignalKind.PPG and self._ppg is not None:
            check_chunk(chunk, kind=SignalKind.PPG, sfreq=self._ppg.sfreq, owner=owner)
            if chunk.n_channels <= self._ppg.channel:
                raise ValueError(
                    f"Invalid value for 'ppg_channel': expected a row of the {chunk.n_channels}-channel "
                    f"PPG chunk ({', '.join(chunk.ch_names)}), got {self._ppg.channel}. "
                    "Build RespirationEstimator with the pulse channel's row."
                )
            return self._update_ppg(chunk)
        if chunk.kind == SignalKind.ACCEL and self._acc is not None:
            check_chunk(chunk, kind=SignalKind.ACCEL, sfreq=self._acc.sfreq,
                        n_channels=self._acc.n_channels, owner=owner)
            return self._update_accel(chunk)
        expected = [p.kind.value for p in (self._ppg, self._acc) if p is not None]
        raise ValueError(
            f"Invalid value for 'kind': expected {' or '.join(repr(e) for e in expected)}, got "
            f"{chunk.kind.value!r}. Did you route the {chunk.kind.value.upper()} stream into {owner}? "
            "(Pass ppg_sfreq/accel_sfreq to enable a stream.)"
        )

    # ------------------------------------------------------------------ internals
    def _update_ppg(self, chunk: Chunk) -> list[Estimate]:
        assert self._ppg is not None
        self._ppg_seen = True
        out: list[Estimate] = []
        for ev, rate, q in self._ppg.push(chunk, self._hint):
            out.append(Estimate(Metric.RESP_RATE_PPG_BRPM, rate, q, ev.time))
            self._pending.append(ev)
            out.extend(self._flush())  # per hop: the output order does not depend on chunking
        return out

    def _update_accel(self, chunk: Chunk) -> list[Estimate]:
        assert self._acc is not None
        out: list[Estimate] = []
        for ev, rate, q in self._acc.push(chunk, self._hint):
            out.append(Estimate(Metric.RESP_RATE_ACCEL_BRPM, rate, q, ev.time))
            if self._ppg is None:  # accelerometer only: the fused track is its track
                out.append(Estimate(Metric.RESP_RATE_BRPM, rate, q, ev.time))
            elif self._ppg_seen:
                self._acc_queue.append(ev)
            else:  # no PPG yet: the fused track follows the accelerometer hops
                self._fuse(ev.time, [ev])
                out.append(self._fused_estimate(ev.time))
        out.extend(self._flush())
        return out

    def _flush(self) -> list[Estimate]:
        """Fuse the PPG hops whose accelerometer evidence is complete (or not coming)."""
        out: list[Estimate] = []
        acc = self._acc
        while self._pending:
            ev = self._pending[0]
            if acc is not None and acc.last_time is not None and self._ppg is not None:
                ppg_time = self._ppg.last_time if self._ppg.last_time is not None else ev.time
                waiting = acc.last_time < ev.time and ppg_time - ev.time <= self._cfg.max_lag_s
                if waiting:
                    break
            self._pending.popleft()
            if acc is None:  # PPG only: the fused track is the PPG track, read at this hop
                out.append(Estimate(Metric.RESP_RATE_BRPM, *ev.readout, ev.time))
                continue
            evidence = [ev]
            while self._acc_queue and self._acc_queue[0].time <= ev.time:
                a = self._acc_queue.popleft()
                if ev.time - a.time <= 2.0 * self._cfg.hop_s:
                    evidence.append(a)
            self._fuse(ev.time, evidence)
            out.append(self._fused_estimate(ev.time))
        return out

    def _fuse(self, time: float, evidence: list[_Evidence]) -> None:
        parts = [ll for ll in (_evidence_log_like(e, self._cfg) for e in evidence) if ll is not None]
        log_like = None if not parts else np.sum(parts, axis=0)
        quality = max((e.quality for e in evidence), default=0.0)
        if len(parts) > 1:
            quality = 1.0 - float(np.prod([1.0 - e.quality for e in evidence]))
        dt = self._cfg.hop_s if self._fused.time is None else time - self._fused.time
        self._fused.step(time, log_like, dt, quality, _shapes(*evidence))

    def _fused_estimate(self, time: float) -> Estimate:
        rate, q = self._fused.read(self._hint)
        return Estimate(Metric.RESP_RATE_BRPM, rate, q, time)


# ---------------------------------------------------------------------------------------------
# Offline twins
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RespirationRate:
    """Breathing-rate track of a recording.

    Parameters
    ----------
    times_s : array of shape (n_windows,)
        Window end times in s from the first sample (each value uses samples up to it only).
    rate_bpm : array of shape (n_windows,)
        Breaths per minute, NaN where not estimable.
    quality : array of shape (n_windows,)
        0..1.
    """

    times_s: FloatArray
    rate_bpm: FloatArray
    quality: FloatArray


def _offline(kind: SignalKind, data: FloatArray, fs: float, window_s: float, step_s: float,
             metric: Metric) -> RespirationRate:
    fs = check_positive("fs", fs, "Pass the sampling rate in Hz.")
    config = RespirationConfig(window_s=window_s, hop_s=step_s)
    n = data.shape[1]
    if n == 0:
        empty = np.zeros(0)
        return RespirationRate(empty, empty.copy(), empty.copy())
    times = np.arange(n, dtype=np.float64) / fs
    if kind == SignalKind.PPG:
        est = RespirationEstimator(ppg_sfreq=fs, accel_sfreq=None, config=config)
        names: tuple[str, ...] = ("ppg",)
    else:
        est = RespirationEstimator(ppg_sfreq=None, accel_sfreq=fs, config=config,
                                   accel_n_channels=data.shape[0])
        names = tuple(f"acc{i}" for i in range(data.shape[0]))
    out = [e for e in est.update(Chunk(kind, data, times, fs, names)) if e.metric == metric]
    return RespirationRate(
        times_s=np.array([e.time for e in out], dtype=np.float64),
        rate_bpm=np.array([e.value for e in out], dtype=np.float64),
        quality=np.array([e.quality for e in out], dtype=np.float64),
    )


def rate_from_ppg(
    ppg: FloatArray, fs: float, *, window_s: float = 32.0, step_s: float = 1.0
) -> RespirationRate:
    """Breathing rate of a PPG recording (offline twin of :class:`RespirationEstimator`).

    Parameters
    ----------
    ppg : array of shape (n_times,)
        PPG samples (any polarity and unit; NaN where missing).
    fs : float
        Sampling rate in Hz.
    window_s : float
        Longest analysis window in s (``RespirationConfig.window_s``; the shortest is half).
    step_s : float
        Time between estimates in s (``RespirationConfig.hop_s``).

    Returns
    -------
    rate : RespirationRate
        ``times_s`` (window ends, s from the first sample), ``rate_bpm`` (NaN where not
        estimable) and ``quality`` per window: exactly the ``RESP_RATE_PPG_BRPM`` estimates of
        ``RespirationEstimator(fs, None, config=RespirationConfig(window_s=window_s,
        hop_s=step_s))`` fed the same samples (sample ``i`` at time ``i / fs``) in any chunks.

    Raises
    ------
    ValueError
        If ``ppg`` is not 1-D, or ``fs``, ``window_s`` or ``step_s`` is invalid.

    Notes
    -----
    Causal: the value at ``times_s[k]`` uses samples up to that time only (the rate track
    carries information from earlier windows, never from later samples).  The first estimate
    comes after ``window_s / 2`` of data.

    Examples
    --------
    >>> import numpy as np
    >>> fs = 125.0
    >>> t = np.arange(int(90 * fs)) / fs
    >>> ppg = (1 + 0.3 * np.sin(2 * np.pi * 0.1 * t)) + np.sin(2 * np.pi * 1.2 * t) ** 8
    >>> r = rate_from_ppg(ppg, fs)
    >>> round(float(r.rate_bpm[-1]), 1)  # baseline breathing at 0.1 Hz
    6.0
    """
    x = np.asarray(ppg, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"Invalid value for 'ppg': expected a 1-D array of samples, got shape {x.shape}.")
    return _offline(SignalKind.PPG, x[np.newaxis], fs, window_s, step_s, Metric.RESP_RATE_PPG_BRPM)


def rate_from_accel(
    accel: FloatArray, fs: float, *, window_s: float = 32.0, step_s: float = 1.0
) -> RespirationRate:
    """Breathing rate from head motion (offline twin of the accelerometer path).

    Parameters
    ----------
    accel : array of shape (n_axes, n_times)
        Accelerometer samples in g (NaN where missing).
    fs : float
        Sampling rate in Hz.
    window_s, step_s : float
        As for :func:`rate_from_ppg`.

    Returns
    -------
    rate : RespirationRate
        Exactly the ``RESP_RATE_ACCEL_BRPM`` estimates of the streaming estimator fed the same
        samples.

    Raises
    ------
    ValueError
        If ``accel`` is not 2-D, or ``fs``, ``window_s`` or ``step_s`` is invalid.
    """
    x = np.asarray(accel, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(
            f"Invalid value for 'accel': expected shape (n_axes, n_times), got {x.shape}. "
            "Pass accel[np.newaxis] for a single axis."
        )
    return _offline(SignalKind.ACCEL, x, fs, window_s, step_s, Metric.RESP_RATE_ACCEL_BRPM)
