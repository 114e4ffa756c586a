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
0.55 ms per PPG hop and 0.22 ms per accelerometer hop with 64 s windows, 1.5 ms per second of
Muse data in all.  The per-window steps run as compiled kernels (:mod:`adaptive._jit`), each
equal to the numpy/scipy form it replaces up to rounding (``find_peaks``, ``sosfilt``,
``np.interp`` and the order statistics exactly); the FFT stays numpy's.
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

from ._checks import check_chunk, check_positive, check_range
from ._jit import kernel
from ._kernels import _interp_nb
from .filters import _hold_last_finite, _sosfilt_rows, design_sos
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


@kernel("Tuple((float64[:, :], float64[:, :], boolean[:]))"
        "(float64[:, :], boolean[:], float64[:], float64[:], float64[:], float64, float64)")
def _compensate_rows(power, fitted, brpm, log_brpm, log_centered, log_mean, log_ss):  # pragma: no cover
    """(background-compensated, raw) spectra of periodogram rows, each of unit sum; usable rows.

    Replaces, per row ``p``: ``raw = p / p.sum()``; the background ``p * brpm`` (1/f drift) or,
    where ``fitted``, a power law fitted in log-log coordinates (``log(p / p.max() + 1e-12)``
    regressed on the centred log rate); the compensated spectrum divided by its sum.  A row
    without finite positive power or compensated sum is not usable.
    """
    n_rows, n = power.shape
    comp = np.zeros((n_rows, n))
    raw = np.zeros((n_rows, n))
    ok = np.zeros(n_rows, dtype=np.bool_)
    log_p = np.empty(n)
    for r in range(n_rows):
        p = power[r]
        peak = p[0]
        total = 0.0
        for j in range(n):
            if p[j] > peak or math.isnan(p[j]):
                peak = p[j]
            total += p[j]
        if not (math.isfinite(peak) and peak > 0.0):
            continue
        for j in range(n):
            raw[r, j] = p[j] / total
        if fitted[r]:
            dot = 0.0
            sum_log = 0.0
            for j in range(n):
                log_p[j] = math.log(p[j] / peak + 1e-12)
                dot += log_centered[j] * log_p[j]
                sum_log += log_p[j]
            slope = dot / log_ss
            intercept = sum_log / n - slope * log_mean
            for j in range(n):
                comp[r, j] = p[j] / math.exp(intercept + slope * log_brpm[j])
        else:
            for j in range(n):
                comp[r, j] = p[j] * brpm[j]
        total = 0.0
        for j in range(n):
            total += comp[r, j]
        if not (math.isfinite(total) and total > 0.0):
            continue
        for j in range(n):
            comp[r, j] /= total
        ok[r] = True
    return comp, raw, ok


@kernel("float64(float64[:], float64[:])")
def _peak_nb(p, brpm):  # pragma: no cover - compiled
    """``_Grid.peak``: rate at the maximum of ``p`` (parabolic interpolation)."""
    n = p.size
    i = np.argmax(p)
    if 0 < i < n - 1:
        a, b, c = p[i - 1], p[i], p[i + 1]
        den = a - 2.0 * b + c
        off = 0.5 * (a - c) / den if den < 0 else 0.0
        off = off if off > -0.5 else -0.5  # = min(0.5, max(-0.5, off)), Python's rules for NaN
        off = off if off < 0.5 else 0.5
        return brpm[i] + off * _GRID_STEP_BRPM
    return brpm[i]


@kernel("float64(float64[:], int64, float64)")
def _concentration_nb(p, half, flat):  # pragma: no cover - compiled
    """``_Grid.concentration``: share of ``p`` within ``half`` bins of its maximum, rescaled."""
    n = p.size
    i = np.argmax(p)
    near = 0.0
    total = 0.0
    for j in range(n):
        total += p[j]
        if i - half <= j <= i + half:
            near += p[j]
    c = (near / total - flat) / (1.0 - flat)
    return c if c > 0.0 else 0.0


@kernel("Tuple((float64[:], float64[:], float64[:], float64[:], boolean[:], float64))"
        "(float64[:, :], float64[:, :], boolean[:], int64[:], boolean[:], float64[:], float64, int64, "
        "float64)")
def _fuse_modulations(comp, raw, usable, order, beat, brpm, hr_half, conc_half, flat):  # pragma: no cover
    """Spectral fusion of the PPG modulations (rows ``order``; -1: absent).

    Replaces, per modulation: ``p * nyq`` (beat-sampled rows: nothing above half the heart
    rate), the renormalisations, ``_Grid.peak`` and ``_Grid.concentration``; then
    ``np.mean`` of the spectra (rows added in order), its peak and the modulations' agreement
    (mean of ``exp(-d^2 / 2)``).  Returns (fused, fused raw, rate per modulation,
    concentration per modulation, used per modulation, agreement).
    """
    n = comp.shape[1]
    m = order.size
    rates = np.full(m, np.nan)
    concs = np.full(m, np.nan)
    used = np.zeros(m, dtype=np.bool_)
    fused = np.zeros(n)
    raw_fused = np.zeros(n)
    p = np.empty(n)
    rp = np.empty(n)
    count = 0
    for q in range(m):
        r = order[q]
        if r < 0 or not usable[r]:
            continue
        tot = 0.0
        tot_raw = 0.0
        for j in range(n):
            w = 0.0 if beat[r] and not brpm[j] <= hr_half else 1.0
            p[j] = comp[r, j] * w
            rp[j] = raw[r, j] * w
            tot += p[j]
            tot_raw += rp[j]
        if tot <= 0.0 or tot_raw <= 0.0:
            continue
        for j in range(n):
            p[j] /= tot
        rates[q] = _peak_nb(p, brpm)
        concs[q] = _concentration_nb(p, conc_half, flat)
        used[q] = True
        for j in range(n):
            if count == 0:
                fused[j] = p[j]
                raw_fused[j] = rp[j] / tot_raw
            else:
                fused[j] += p[j]
                raw_fused[j] += rp[j] / tot_raw
        count += 1
    if count == 0:
        return fused, raw_fused, rates, concs, used, np.nan
    for j in range(n):
        fused[j] /= count
        raw_fused[j] /= count
    agree = 1.0
    if count > 1:
        r_f = _peak_nb(fused, brpm)
        total = 0.0
        for q in range(m):
            if used[q]:
                d = (rates[q] - r_f) / _AGREE_WIDTH_BRPM
                total += math.exp(-0.5 * (d * d))
        agree = total / count
    return fused, raw_fused, rates, concs, used, agree


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
        comp, raw, ok = self.spectra_rows(groups)
        out: list[list[tuple[FloatArray, FloatArray] | None]] = []
        r = 0
        for series, _ in groups:
            k = series.shape[0]
            out.append([(comp[i], raw[i]) if ok[i] else None for i in range(r, r + k)])
            r += k
        return out

    def spectra_rows(
        self, groups: list[tuple[FloatArray, tuple[bool, ...]]]
    ) -> tuple[FloatArray, FloatArray, BoolArray]:
        """The spectra of :meth:`spectra_groups` as arrays: (compensated, raw, usable) per row.

        Rows in the order of the groups and their series; the row of an unusable series (fewer
        than 8 samples, or no power) has ``usable`` False.
        """
        n_rows = sum(series.shape[0] for series, _ in groups)
        fitted = np.zeros(n_rows, dtype=bool)
        use = np.zeros(n_rows, dtype=bool)
        buf = np.zeros((n_rows, _NFFT))
        r = 0
        for series, fit in groups:
            k, n = series.shape
            if n >= 8:
                t, tt, hann = self._plan(n)
                _taper_rows(buf[r : r + k], series, t, tt, hann)  # linear detrend, Hann taper
                fitted[r : r + k] = fit
                use[r : r + k] = True
            r += k
        if not use.any():
            empty = np.zeros((n_rows, self.n))
            return empty, empty.copy(), use
        # the grid's bins are contiguous: a slice, not a gather
        power = np.abs(np.fft.rfft(buf, axis=1)[:, self.bins[0] : self.bins[-1] + 1]) ** 2
        comp, raw, ok = _compensate_rows(power, fitted, self.brpm, self.log_brpm, self._log_centered,
                                         self._log_mean, self._log_ss)
        ok &= use
        return comp, raw, ok

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


@kernel("float64[:](float64[:], float64[:], float64, float64[:], boolean)")
def _track_step(post, kern, jump, log_like, has_evidence):  # pragma: no cover - compiled
    """One step of the rate track: diffusion, jump mixing and (``has_evidence``) evidence.

    Replaces ``prior = np.convolve(post, kern, "same")`` (``kern`` of odd length, not longer
    than ``post``), ``prior = (1 - jump) * prior / prior.sum() + jump / n`` and
    ``post = prior * np.exp(log_like - log_like.max()); post /= post.sum()``.
    """
    n = post.size
    m = kern.size
    h = (m - 1) // 2
    prior = np.zeros(n)
    for tap in range(m):  # prior[i] = sum over taps of post[i + h - tap] * kern[tap]
        w = kern[tap]
        shift = h - tap
        for i in range(max(0, -shift), min(n, n - shift)):  # a loop the compiler vectorises
            prior[i] += post[i + shift] * w
    total = 0.0
    for i in range(n):
        total += prior[i]
    for i in range(n):
        prior[i] = (1.0 - jump) * prior[i] / total + jump / n
    if has_evidence:
        top = log_like[0]
        for i in range(n):
            if log_like[i] > top or math.isnan(log_like[i]):
                top = log_like[i]
        total = 0.0
        for i in range(n):
            prior[i] *= math.exp(log_like[i] - top)
            total += prior[i]
        for i in range(n):
            prior[i] /= total
    return prior


@kernel("int64(float64)")
def _round_nb(x):  # pragma: no cover - compiled
    """Python's ``round(x)`` of a float (ties to even)."""
    r = math.floor(x)
    d = x - r  # exact for the values here
    if d > 0.5 or (d == 0.5 and r % 2 != 0):
        r += 1.0
    return int(r)


@kernel("float64(float64[:], float64[:], float64, float64)")
def _local_peak_nb(p, brpm, rate, half_width):  # pragma: no cover - compiled
    """Local maximum of ``p`` within ``half_width`` of ``rate`` (parabolic), or NaN.

    A maximum on the edge of that neighbourhood is no local peak (NaN).
    """
    n = p.size
    i0 = max(0, _round_nb((rate - half_width - brpm[0]) / _GRID_STEP_BRPM))
    i1 = min(n, _round_nb((rate + half_width - brpm[0]) / _GRID_STEP_BRPM) + 1)
    if i1 - i0 < 3:
        return np.nan
    i = i0 + np.argmax(p[i0:i1])
    if i <= i0 or i >= i1 - 1:
        return np.nan
    a, b, c = p[i - 1], p[i], p[i + 1]
    den = a - 2.0 * b + c
    off = 0.5 * (a - c) / den if den < 0 else 0.0
    off = off if off > -0.5 else -0.5  # = min(0.5, max(-0.5, off)), Python's rules for NaN
    off = off if off < 0.5 else 0.5
    return brpm[i] + off * _GRID_STEP_BRPM


@kernel("float64(float64[:], float64[:], float64[:], boolean, float64[:], float64[:], boolean)")
def _read_rate(post, brpm, weight, weighted, comp, raw, has_shapes):  # pragma: no cover - compiled
    """Read-out rate of a posterior: centroid near its maximum plus the compensation's shift.

    ``post * weight`` when ``weighted`` (the pace hint); the centroid over a symmetric
    neighbourhood of 1 breath/min around the maximum (narrower at the grid edges: no edge
    bias).  Multiplying a spectral lobe by a rising background correction moves its maximum
    up by about (lobe width)^2 / rate: 0.3-0.7 breaths/min at 5 breaths/min in a 32 s window.
    The raw and compensated spectra of the last window (``has_shapes``) locate the same lobe
    near the centroid; their difference (clipped to 1 breath/min; 0 when either has no local
    maximum there) is added back.
    """
    n = post.size
    w = post * weight if weighted else post
    i = np.argmax(w)
    h = min(_round_nb(1.0 / _GRID_STEP_BRPM), i, n - 1 - i)
    num = 0.0
    den = 0.0
    for j in range(i - h, i + h + 1):
        num += w[j] * brpm[j]
        den += w[j]
    rate = num / den
    if has_shapes:
        p_comp = _local_peak_nb(comp, brpm, rate, _CONC_HALF_WIDTH_BRPM)
        p_raw = _local_peak_nb(raw, brpm, rate, _CONC_HALF_WIDTH_BRPM)
        if not (math.isnan(p_comp) or math.isnan(p_raw)):
            d = p_raw - p_comp
            d = d if d > -_MAX_SHIFT_BRPM else -_MAX_SHIFT_BRPM
            rate += d if d < _MAX_SHIFT_BRPM else _MAX_SHIFT_BRPM
    return rate


def _times_evidence(prior: FloatArray, log_like: FloatArray) -> FloatArray:
    """``prior * exp(log_like)``, normalised (the log-likelihood shifted to a maximum of 0)."""
    post = prior * np.exp(log_like - log_like.max())
    post /= post.sum()
    return post


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
            post = _times_evidence(np.full(n, 1.0 / n), log_like)
        else:
            k = self._kernel(dt)
            # Mass diffusing beyond the range edges is lost (absorbing edges, then renormalised):
            # a mild preference for the interior, where under 4 breaths/min drift would otherwise
            # capture the track.
            jump = 1.0 - (1.0 - self._cfg.track_jump_per_s) ** max(dt, 0.0)
            if k.size <= n:  # the usual case: diffusion, jumps and evidence in one kernel
                has = log_like is not None
                post = _track_step(self.post, k, jump, log_like if has else self.post, has)
            else:  # pragma: no cover - a gap of minutes: np.convolve's own length rules
                prior = np.convolve(self.post, k, mode="same")
                prior = (1.0 - jump) * prior / prior.sum() + jump / n
                post = prior if log_like is None else _times_evidence(prior, log_like)
        if log_like is not None:
            self.last_evidence_time = time
            self.last_quality = quality
            self._shapes = shapes
        else:
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
        quality = grid.concentration(self.post) * self.last_quality
        weighted = hint is not None and cfg.hint_gain > 0
        if weighted and (self._hint_weight is None or self._hint_weight[0] != hint):  # rare change
            near = np.exp(-0.5 * ((grid.brpm - hint) / cfg.hint_width_brpm) ** 2)
            self._hint_weight = (hint, 1.0 + cfg.hint_gain * near)
        weight = self._hint_weight[1] if weighted and self._hint_weight is not None else self.post
        comp, raw = self._shapes if self._shapes is not None else (self.post, self.post)
        # centroid near the maximum, plus the shift the background compensation gave the lobe
        rate = float(_read_rate(self.post, grid.brpm, weight, weighted, comp, raw, self._shapes is not None))
        rate = min(cfg.rate_max_brpm, max(cfg.rate_min_brpm, rate))
        quality = min(1.0, max(0.0, quality))
        if quality < cfg.min_quality:
            return math.nan, quality
        return rate, quality

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


@kernel("float64[:](float64[:], float64)")
def _log_like_nb(s, beta):  # pragma: no cover - compiled
    """``beta * np.log((s + floor) / (s.max() + floor))`` with ``floor = 1e-3 * s.max()``."""
    peak = s[0]
    for j in range(s.size):
        if s[j] > peak or math.isnan(s[j]):
            peak = s[j]
    floor = 1e-3 * peak
    out = np.empty(s.size)
    for j in range(s.size):
        out[j] = beta * math.log((s[j] + floor) / (peak + floor))
    return out


def _evidence_log_like(ev: _Evidence, cfg: RespirationConfig) -> FloatArray | None:
    if ev.log_like is not None:  # the stream's track and the fused track use the same evidence
        return ev.log_like
    if ev.spectrum is None or ev.quality <= 0.0:
        return None
    beta = cfg.evidence_per_s * cfg.hop_s * ev.quality
    ev.log_like = _log_like_nb(ev.spectrum, beta)
    return ev.log_like


# ---------------------------------------------------------------------------------------------
# Window analysis
# ---------------------------------------------------------------------------------------------


# read-only arrays (Chunk data, the window views of FixedHopWindows.history); writable arrays match too
_READONLY_1D = "Array(float64, 1, 'A', readonly=True)"
_READONLY_2D = "Array(float64, 2, 'A', readonly=True)"
_BEATS_NONE, _BEATS_OK, _BEATS_TIES = 0, 1, 2  # status of _find_peaks_nb and _beat_series
_NO_PEAKS = np.zeros(0, dtype=np.int64)


_STACK_ARGS = "float64[:, :], float64[:, :, :], float64[:, :, :], float64[:], boolean, boolean"


@kernel(f"boolean(float64[:, :], {_READONLY_2D}, {_STACK_ARGS})")  # chunk data: read-only (any array)
def _stack_chunk(sos, raw, out, zi, zi_unit, last, init, ppg):  # pragma: no cover - compiled
    """Buffer rows of a chunk: the filtered rows, (PPG) the raw row, the valid flag 1.

    Replaces ``SosFilter.process`` on finite samples (state started at steady state for the
    first sample when ``init``, then sosfilt with carried state; ``last`` receives each row's
    last sample) and the row copies.  Returns False, touching nothing, when a sample is not
    finite: the caller holds the last finite sample first.
    """
    k, n = raw.shape
    if n == 0:
        return True
    for r in range(k):
        for i in range(n):
            if not math.isfinite(raw[r, i]):
                return False
    for r in range(k):
        if init:
            for s in range(zi.shape[1]):
                zi[r, s, 0] = zi_unit[0, s, 0] * raw[r, 0]
                zi[r, s, 1] = zi_unit[0, s, 1] * raw[r, 0]
        last[r] = raw[r, n - 1]
        for i in range(n):
            out[r, i] = raw[r, i]
    _sosfilt_rows(sos, out[:k], zi)
    if ppg:
        for i in range(n):
            out[1, i] = raw[0, i]
    for i in range(n):
        out[out.shape[0] - 1, i] = 1.0
    return True


@kernel("float64[:](float64[:, :], float64[:, :, :], float64[:], int64)")
def _filtfilt(sos, zi_unit, x, pad):  # pragma: no cover - compiled
    """Zero-phase filtering of ``x`` with odd extension by ``pad`` samples (sosfiltfilt's way).

    Replaces ``ext = np.concatenate([2 * x[0] - x[pad:0:-1], x, 2 * x[-1] -
    x[-2:-pad - 2:-1]])``, ``sosfilt`` forward from ``zi_unit * ext[0]``, ``sosfilt`` of the
    reversed output from ``zi_unit * y[-1]``, reversed and cut back to ``x``'s samples.
    """
    n = x.size
    m = n + 2 * pad
    ext = np.empty((1, m))
    for j in range(1, pad + 1):
        ext[0, pad - j] = 2 * x[0] - x[j]
        ext[0, pad + n - 1 + j] = 2 * x[n - 1] - x[n - 1 - j]
    for i in range(n):
        ext[0, pad + i] = x[i]
    zi = zi_unit * ext[0, 0]
    _sosfilt_rows(sos, ext, zi)
    rev = np.empty((1, m))
    for i in range(m):
        rev[0, i] = ext[0, m - 1 - i]
    zi = zi_unit * rev[0, 0]
    _sosfilt_rows(sos, rev, zi)
    out = np.empty(n)
    for i in range(n):
        out[i] = rev[0, m - 1 - pad - i]
    return out


@kernel("void(float64[:, :], float64[:, :], float64[:], float64[:], float64, float64, boolean)")
def _sos2_pair_pass(sos_a, sos_b, xa, xb, init_a, init_b, reverse):  # pragma: no cover - compiled
    """One pass of two 2-section filters over ``xa`` and ``xb`` (in place), interleaved.

    Per filter, :func:`_sosfilt_rows`'s two-section loop (the same operations in the same
    order, so bit for bit) from the state ``zi_unit * init``, where ``zi_unit`` is in
    ``sos[:, 6:8]`` (see :func:`_filtfilt_pair`); ``reverse`` runs from the last sample to
    the first.  The two recursions are independent: one loop lets the processor overlap
    their latency chains (a single IIR recursion leaves it mostly waiting).
    """
    a00, a01, a02, a04, a05 = sos_a[0, 0], sos_a[0, 1], sos_a[0, 2], sos_a[0, 4], sos_a[0, 5]
    a10, a11, a12, a14, a15 = sos_a[1, 0], sos_a[1, 1], sos_a[1, 2], sos_a[1, 4], sos_a[1, 5]
    b00, b01, b02, b04, b05 = sos_b[0, 0], sos_b[0, 1], sos_b[0, 2], sos_b[0, 4], sos_b[0, 5]
    b10, b11, b12, b14, b15 = sos_b[1, 0], sos_b[1, 1], sos_b[1, 2], sos_b[1, 4], sos_b[1, 5]
    za00, za01 = sos_a[0, 6] * init_a, sos_a[0, 7] * init_a
    za10, za11 = sos_a[1, 6] * init_a, sos_a[1, 7] * init_a
    zb00, zb01 = sos_b[0, 6] * init_b, sos_b[0, 7] * init_b
    zb10, zb11 = sos_b[1, 6] * init_b, sos_b[1, 7] * init_b
    m = xa.size
    for k in range(m):
        i = m - 1 - k if reverse else k
        # filter a
        x_cur = xa[i]
        x_new = a00 * x_cur + za00
        za00 = a01 * x_cur - a04 * x_new + za01
        za01 = a02 * x_cur - a05 * x_new
        x_cur = x_new
        x_new = a10 * x_cur + za10
        za10 = a11 * x_cur - a14 * x_new + za11
        za11 = a12 * x_cur - a15 * x_new
        xa[i] = x_new
        # filter b
        x_cur = xb[i]
        x_new = b00 * x_cur + zb00
        zb00 = b01 * x_cur - b04 * x_new + zb01
        zb01 = b02 * x_cur - b05 * x_new
        x_cur = x_new
        x_new = b10 * x_cur + zb10
        zb10 = b11 * x_cur - b14 * x_new + zb11
        zb11 = b12 * x_cur - b15 * x_new
        xb[i] = x_new


@kernel("UniTuple(float64[:], 2)(float64[:, :], float64[:, :], float64[:], int64)")
def _filtfilt_pair(sos_a, sos_b, x, pad):  # pragma: no cover - compiled
    """:func:`_filtfilt` of ``x`` with two two-section filters at once (the same ``pad``).

    ``sos_a`` and ``sos_b`` are (2, 8): each section's six coefficients followed by its
    ``zi_unit`` (``sosfilt_zi``) pair.  Returns the two filtered copies, each equal bit for
    bit to ``_filtfilt(sos, zi_unit, x, pad)``: the same extension, the forward pass from
    ``zi_unit * ext[0]``, the backward pass from ``zi_unit`` times the forward output's last
    sample (run from the end instead of on a reversed copy: the same numbers).
    """
    n = x.size
    m = n + 2 * pad
    ya = np.empty(m)
    for j in range(1, pad + 1):
        ya[pad - j] = 2 * x[0] - x[j]
        ya[pad + n - 1 + j] = 2 * x[n - 1] - x[n - 1 - j]
    for i in range(n):
        ya[pad + i] = x[i]
    yb = ya.copy()
    _sos2_pair_pass(sos_a, sos_b, ya, yb, ya[0], yb[0], False)
    _sos2_pair_pass(sos_a, sos_b, ya, yb, ya[m - 1], yb[m - 1], True)
    return ya[pad : pad + n].copy(), yb[pad : pad + n].copy()


@kernel("void(float64[:, :], float64[:, :], float64[:], float64, float64[:])")
def _taper_rows(out, series, t, tt, hann):  # pragma: no cover - compiled
    """Detrended, Hann-tapered ``series`` rows into ``out[:, :n]`` (``out`` zero beyond).

    Replaces ``y = series - series.sum(axis=1, keepdims=True) / n``, per row
    ``row -= t * (np.dot(t, row) / tt)``, and ``y *= hann`` (``t``: centred sample index,
    ``tt``: its sum of squares).
    """
    k, n = series.shape
    for r in range(k):
        total = 0.0
        for i in range(n):
            total += series[r, i]
        mean = total / n
        dot = 0.0
        for i in range(n):
            out[r, i] = series[r, i] - mean
            dot += t[i] * out[r, i]
        slope = dot / tt
        for i in range(n):
            out[r, i] = (out[r, i] - t[i] * slope) * hann[i]


@kernel("float64(float64[:], int64)")
def _select(v, k):  # pragma: no cover - compiled
    """``np.partition(v, k)[k]`` (k-th smallest of NaN-free ``v``); reorders ``v`` in place."""
    lo, hi = 0, v.size - 1
    while hi > lo:
        mid = (lo + hi) // 2  # median of three as pivot
        a, b, c = v[lo], v[mid], v[hi]
        if a < b:
            pivot = b if b < c else (c if a < c else a)
        else:
            pivot = a if a < c else (c if b < c else b)
        i, j = lo, hi
        while i <= j:
            while v[i] < pivot:
                i += 1
            while v[j] > pivot:
                j -= 1
            if i <= j:
                v[i], v[j] = v[j], v[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return v[k]
    return v[k]


@kernel("float64(float64[:])")
def _median_nb(v):  # pragma: no cover - compiled
    """``np.median(v)`` of a 1-D array (NaN if empty or any NaN); reorders ``v`` in place."""
    n = v.size
    if n == 0:
        return np.nan
    for i in range(n):
        if math.isnan(v[i]):
            return np.nan
    h = n // 2
    if n % 2:
        return _select(v, h)
    hi = _select(v, h)
    lo = v[0]
    for i in range(1, h):  # after the selection, v[:h] holds the h smallest
        if v[i] > lo:
            lo = v[i]
    return (lo + hi) / 2.0  # numpy: mean of the two middle values


@kernel("float64(float64[:], float64)")
def _percentile_nb(v, q):  # pragma: no cover - compiled
    """``np.percentile(v, q)`` (linear method) of a NaN-free 1-D array; reorders ``v`` in place."""
    n = v.size
    pos = (n - 1) * (q / 100.0)
    i = min(int(math.floor(pos)), n - 1)
    a = _select(v, i)
    b = a
    if i + 1 <= n - 1:  # the next order statistic: the minimum of what lies above
        b = v[i + 1]
        for j in range(i + 2, n):
            if v[j] < b:
                b = v[j]
    g = pos - i
    d = b - a  # numpy's _lerp: from the nearer end
    return b - d * (1.0 - g) if g >= 0.5 else a + d * g


@kernel("Tuple((int64, int64[:]))(float64[:], int64, float64, boolean, int64[:])")
def _find_peaks_nb(c, distance, prominence, use_selected, selected):  # pragma: no cover
    """``find_peaks(c, distance=distance, prominence=prominence)[0]`` of a NaN-free ``c``.

    scipy's steps: local maxima (a plateau gives its middle sample), selection by distance
    (highest peak first), then by prominence (``wlen``: the whole signal; the bases' scans
    stop as soon as the threshold is decided).  Returns (status,
    peaks); status ``_BEATS_TIES`` (no peaks) when two local maxima have equal heights, whose
    order in the distance selection is that of numpy's unstable argsort: the caller then
    passes ``use_selected`` and the peaks that ``find_peaks(c, distance=distance)`` keeps.
    """
    n = c.size
    if use_selected:
        cand = selected.copy()
        m = cand.size
        keep = np.ones(m, dtype=np.bool_)
    else:
        cand = np.empty(n // 2 + 1, dtype=np.int64)
        m = 0
        i = 1
        while i < n - 1:
            if c[i - 1] < c[i]:
                ahead = i + 1
                while ahead < n - 1 and c[ahead] == c[i]:
                    ahead += 1
                if c[ahead] < c[i]:
                    cand[m] = (i + ahead - 1) // 2
                    m += 1
                    i = ahead
            i += 1
        heights = np.empty(m)
        for j in range(m):
            heights[j] = c[cand[j]]
        order = np.argsort(heights, kind="mergesort")
        for j in range(m - 1):
            if heights[order[j]] == heights[order[j + 1]]:
                return (_BEATS_TIES, np.zeros(0, dtype=np.int64))
        keep = np.ones(m, dtype=np.bool_)
        for r in range(m - 1, -1, -1):
            j = order[r]
            if not keep[j]:
                continue
            k = j - 1
            while k >= 0 and cand[j] - cand[k] < distance:
                keep[k] = False
                k -= 1
            k = j + 1
            while k < m and cand[k] - cand[j] < distance:
                keep[k] = False
                k += 1
    # prominence = top - max(left base, right base), each base the minimum of c between the
    # peak and the nearest higher sample on that side.  Only ``prominence <= top - base`` is
    # needed: as rounding is monotone, it holds iff on each side some sample v before the
    # higher one has ``prominence <= top - v``, so each scan stops at the first such sample.
    pk = np.empty(m, dtype=np.int64)
    n_pk = 0
    for j in range(m):
        if not keep[j]:
            continue
        p = cand[j]
        top = c[p]
        left = False
        i = p
        while i >= 0 and c[i] <= top:
            if prominence <= top - c[i]:
                left = True
                break
            i -= 1
        if not left:
            continue
        right = False
        i = p
        while i <= n - 1 and c[i] <= top:
            if prominence <= top - c[i]:
                right = True
                break
            i += 1
        if right:
            pk[n_pk] = p
            n_pk += 1
    return (_BEATS_OK, pk[:n_pk].copy())


@kernel(
    "Tuple((int64, float64[:], float64[:], float64[:], float64[:], boolean[:], float64))"
    f"(float64[:], {_READONLY_1D}, boolean[:], boolean, float64, float64, int64, int64, boolean, int64[:])"
)  # x: a view of the window (read-only)
def _beat_series(c, x, bad, clean, fw, t0, distance, half, use_selected, selected):  # pragma: no cover
    """Beats of one PPG window, from its cardiac-band copy ``c`` and working signal ``x``.

    Replaces the numpy chain: 5th/95th percentiles of ``c`` (good samples), ``find_peaks(c,
    distance=, prominence=0.3 * amplitude)`` (:func:`_find_peaks_nb`), peaks on bad samples
    dropped, feet (``np.minimum.reduceat(x, pk[:-1])``), tops (maximum of ``x`` within
    ``half`` samples), parabolic refinement of the peak times on ``c``, the interval, bad-span,
    amplitude-outlier and baseline-step masks with their medians.  Returns (status, beat
    times, intervals, amplitudes, baselines, ok mask, median interval of the ok beats); status
    ``_BEATS_NONE``: no usable beats; ``_BEATS_TIES``: see :func:`_find_peaks_nb`.
    """
    n = c.size
    empty = np.empty(0)
    none = (_BEATS_NONE, empty, empty, empty, empty, np.zeros(0, dtype=np.bool_), np.nan)
    # amplitude: 5th to 95th percentile of the good samples (np.percentile, linear)
    if clean:
        v = c.copy()
    else:
        v = c[~bad]
    if v.size == 0:
        return none
    for i in range(v.size):
        if math.isnan(v[i]):
            return none  # np.percentile gives NaN: no amplitude
    hi_q = _percentile_nb(v, 95.0)
    lo_q = _percentile_nb(v, 5.0)
    amp = hi_q - lo_q
    if not amp > 0.0:
        return none
    status, pk = _find_peaks_nb(c, distance, 0.3 * amp, use_selected, selected)
    if status == _BEATS_TIES:
        return (_BEATS_TIES, empty, empty, empty, empty, np.zeros(0, dtype=np.bool_), np.nan)
    n_pk = 0
    for j in range(pk.size):  # peaks on bad samples are no beats
        if clean or not bad[pk[j]]:
            pk[n_pk] = pk[j]
            n_pk += 1
    if n_pk < 4:
        return none
    nb = n_pk - 1  # beats: from one peak to the next
    nx = x.size
    t_b = np.empty(nb)
    ibi = np.empty(nb)
    am = np.empty(nb)
    bw = np.empty(nb)
    ok = np.empty(nb, dtype=np.bool_)
    prev_t = 0.0
    for j in range(n_pk):
        # peak time: parabolic refinement on c, s since the window's first sample
        p = min(max(pk[j], 1), n - 2)
        a, b, cc = c[p - 1], c[p], c[p + 1]
        den = a - 2.0 * b + cc
        off = 0.5 * (a - cc) / den if den < 0 else 0.0
        if off < -0.5:
            off = -0.5
        elif off > 0.5:
            off = 0.5
        pk_t = t0 + (off + p) / fw
        if j > 0:
            k = j - 1
            # foot: minimum of x from the previous peak (to the end for the last foot, as
            # np.minimum.reduceat(x, pk[:-1]) gives); a bad sample in that span drops the beat
            stop = pk[j] if j < nb else nx
            foot = x[pk[k]]
            gap = False
            for i in range(pk[k], stop):
                if x[i] < foot or math.isnan(x[i]):
                    foot = x[i]
                if not clean and bad[i]:
                    gap = True
            top = x[min(max(pk[j] - half, 0), nx - 1)]
            for d in range(-half + 1, half + 1):
                val = x[min(max(pk[j] + d, 0), nx - 1)]
                if val > top or math.isnan(val):
                    top = val
            t_b[k] = pk_t
            ibi[k] = pk_t - prev_t
            am[k] = top - foot
            bw[k] = 0.5 * (top + foot)
            ok[k] = ibi[k] >= _MIN_IBI_S and ibi[k] <= _MAX_IBI_S and am[k] > 0 and not gap
        prev_t = pk_t
    # clean beats: interval near the median, no amplitude outlier, no baseline step
    n_ok = 0
    for k in range(nb):
        n_ok += ok[k]
    if n_ok >= 4:
        med_ibi = _median_nb(ibi[ok])
        n_ok = 0
        for k in range(nb):
            ok[k] = ok[k] and abs(ibi[k] - med_ibi) <= 0.4 * med_ibi
            n_ok += ok[k]
    if n_ok >= 4:
        idx = np.flatnonzero(ok)
        v = np.log(am[idx])
        med = _median_nb(v.copy())
        dev = np.abs(v - med)
        mad = 1.4826 * _median_nb(dev.copy())
        if mad > 0.0:
            for r in range(idx.size):
                if dev[r] > 4.0 * mad:
                    ok[idx[r]] = False
        med_amp = _median_nb(am[ok])
        for k in range(nb):
            step = abs(bw[k] - bw[k - 1]) if k > 0 else 0.0
            ok[k] = ok[k] and step <= med_amp  # a baseline step larger than a pulse: motion
        n_ok = 0
        for k in range(nb):
            n_ok += ok[k]
    if n_ok < 4:
        return none
    return (_BEATS_OK, t_b, ibi, am, bw, ok, _median_nb(ibi[ok]))


_BEAT_SERIES = ("bw", "am", "fm")  # the series of _beat_rows, by code


@kernel("float64[:, :](float64[:], float64[:], boolean[:], float64[:], float64[:], float64[:], int64[:])")
def _beat_rows(grid_t, t_b, ok, bw, am, ibi, codes):  # pragma: no cover - compiled
    """Beat series (``codes``: 0 baseline, 1 amplitude, 2 interval) of the ok beats at 4 Hz.

    Replaces ``tb = t_b[ok]``, ``gi = grid_t[(grid_t >= tb[0]) & (grid_t <= tb[-1])]`` and per
    series ``np.interp(gi, tb, series[ok])`` (:func:`_interp_nb`); rows of ``gi``'s length.
    """
    tb = t_b[ok]
    gi = grid_t[(grid_t >= tb[0]) & (grid_t <= tb[-1])]
    out = np.empty((codes.size, gi.size))
    for r in range(codes.size):
        if codes[r] == 0:
            vals = bw[ok]
        elif codes[r] == 1:
            vals = am[ok]
        else:
            vals = ibi[ok]
        out[r] = _interp_nb(gi, tb, vals)
    return out


@kernel("Tuple((float64[:, :], float64[:], float64))"
        f"({_READONLY_2D}, {_READONLY_1D}, float64[:], float64[:], float64, int64)")  # window views
def _accel_series(filt, valid, rel_t, grid_rel, max_slope, half):  # pragma: no cover - compiled
    """Accelerometer axes on the 4 Hz grid, motion bridged; (series, axis weights, good share).

    Replaces: ``np.interp`` of each axis (and of the invalid flags, ``> 0``) at ``grid_rel``
    (:func:`_interp_nb`);
    the motion mask (``sqrt(sum(diff ** 2))`` over axes times 4 Hz above ``max_slope``) dilated
    by ``half`` samples (``maximum_filter1d``); the good share; ``_fill_invalid`` of each axis;
    the weights, each axis's variance over its good samples.  A good share below 0.5 returns
    at once (series and weights then unset).
    """
    k, n_t = filt.shape
    n = grid_rel.size
    xs = np.empty((k, n))
    for r in range(k):
        xs[r] = _interp_nb(grid_rel, rel_t, filt[r])
    bad = np.zeros(n, dtype=np.bool_)
    all_valid = True
    n_ok = 0
    for i in range(n_t):
        if valid[i] > 0.5:
            n_ok += 1
        else:
            all_valid = False
    if not all_valid:
        share = n_ok / n_t
        if share < 0.5:
            return xs, np.zeros(k), share
        flags = np.empty(n_t)
        for i in range(n_t):
            flags[i] = 0.0 if valid[i] > 0.5 else 1.0
        bad = _interp_nb(grid_rel, rel_t, flags) > 0.0
    # gross head motion: the low-passed orientation changes faster than breathing can tilt it
    for i in range(1, n):
        total = 0.0
        for r in range(k):
            d = xs[r, i] - xs[r, i - 1]
            total += d * d
        if math.sqrt(total) * _SERIES_SFREQ > max_slope:
            bad[i] = True
    dil = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        if bad[i]:
            for j in range(max(0, i - half), min(n, i + half + 1)):
                dil[j] = True
    n_bad = 0
    for i in range(n):
        n_bad += dil[i]
    good_frac = 1.0 - n_bad / n
    weights = np.zeros(k)
    if good_frac < 0.5:
        return xs, weights, good_frac
    n_good = n - n_bad
    for r in range(k):  # the variance of each axis over its good samples
        total = 0.0
        for i in range(n):
            if not dil[i]:
                total += xs[r, i]
        mean = total / n_good
        total = 0.0
        for i in range(n):
            if not dil[i]:
                d = xs[r, i] - mean
                total += d * d
        weights[r] = total / n_good
    if n_bad:  # bridge the bad samples (linear interpolation, edges held)
        good = np.flatnonzero(~dil)
        good_t = good.astype(np.float64)
        idx = np.arange(n).astype(np.float64)
        vals = np.empty(good.size)
        for r in range(k):
            for j in range(good.size):
                vals[j] = xs[r, good[j]]
            xs[r] = _interp_nb(idx, good_t, vals)
    return xs, weights, good_frac


@kernel("Tuple((float64[:], float64[:], float64))(float64[:, :], float64[:, :], boolean[:], float64[:])")
def _weighted_spectra(comp, raw, usable, weights):  # pragma: no cover - compiled
    """Weighted sums of the usable rows (added in order), each normalised; the first's total.

    Replaces ``p_sum += pair[0] * w`` (and ``raw_sum``) over the axes and the two
    normalisations (not done when the total is not positive).
    """
    n = comp.shape[1]
    p_sum = np.zeros(n)
    raw_sum = np.zeros(n)
    for r in range(comp.shape[0]):
        if usable[r]:
            for j in range(n):
                p_sum[j] += comp[r, j] * weights[r]
                raw_sum[j] += raw[r, j] * weights[r]
    tot = 0.0
    tot_raw = 0.0
    for j in range(n):
        tot += p_sum[j]
        tot_raw += raw_sum[j]
    if not tot > 0.0:
        return p_sum, raw_sum, tot
    for j in range(n):
        p_sum[j] /= tot
        raw_sum[j] /= tot_raw
    return p_sum, raw_sum, tot


class _ZeroPhase:
    """Forward-backward filtering of one window (as scipy's sosfiltfilt, odd padding).

    Only the window's own samples are used, so the result stays causal with respect to the
    window end; the initial conditions are precomputed once.  Both passes run the loop of
    :func:`scipy.signal.sosfilt` in one kernel (bit-identical).
    """

    def __init__(self, sos: FloatArray) -> None:
        self._sos = np.array(sos, dtype=np.float64, order="C")
        self._zi = np.ascontiguousarray(sosfilt_zi(self._sos)[np.newaxis])  # (1, n_sections, 2)
        self._pad = 3 * (2 * sos.shape[0] + 1)

    def apply(self, x: FloatArray) -> FloatArray:
        return _filtfilt(self._sos, self._zi, x, min(self._pad, x.size - 1))

    def packed(self) -> FloatArray | None:
        """Coefficients and ``zi_unit`` per section, (2, 8), for :func:`_filtfilt_pair`.

        None unless the filter has two sections.
        """
        if self._sos.shape[0] != 2:
            return None
        return np.ascontiguousarray(np.hstack([self._sos, self._zi[0]]))


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


class _PpgAnalyzer:
    """Respiratory modulations of one PPG window."""

    def __init__(self, sfreq: float, grid: _Grid, cfg: RespirationConfig) -> None:
        self.sfreq = sfreq
        self.decim = max(1, int(sfreq // _PPG_WORK_SFREQ))
        self.work_sfreq = sfreq / self.decim
        hi = min(_CARDIAC_BAND_HZ[1], 0.45 * self.work_sfreq)
        self._card = _ZeroPhase(design_sos(self.work_sfreq, l_freq=_CARDIAC_BAND_HZ[0], h_freq=hi, order=2))
        self._base = _ZeroPhase(design_sos(self.work_sfreq, h_freq=_BASELINE_LOWPASS_HZ, order=4))
        self._riiv = "riiv" in cfg.modulations
        # both zero-phase filters of a window in one kernel, where their shapes allow it
        card, base = self._card.packed(), self._base.packed()
        same_pad = self._card._pad == self._base._pad
        self._pair = (card, base) if card is not None and base is not None and same_pad else None
        self._grid = grid
        self._cfg = cfg
        self._beat_names = [m for m in cfg.modulations if m != "riiv"]  # rows of _beat_rows
        self._beat_codes = np.array([_BEAT_SERIES.index(m) for m in self._beat_names], dtype=np.int64)
        self._beat_fitted = tuple(m in _FITTED_BACKGROUND for m in self._beat_names)

    def _filtered(self, xc: FloatArray) -> tuple[FloatArray, FloatArray | None]:
        """The cardiac-band and (RIIV in use, else None) baseline copies of a window."""
        if not self._riiv:
            return self._card.apply(xc), None
        if self._pair is not None:  # the two recursions interleaved: about the time of one
            return _filtfilt_pair(self._pair[0], self._pair[1], xc, min(self._card._pad, xc.size - 1))
        return self._card.apply(xc), self._base.apply(xc)

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
        c, base = self._filtered(xc)
        # the beats (percentiles, find_peaks, feet/tops, refinement, masks, medians): one kernel
        dist = max(1, int(_MIN_IBI_S * fw))
        half = max(1, int(round(0.12 * fw)))
        t0 = float(tw[0])
        status, t_b, ibi, am, bw, ok, med_ibi = _beat_series(c, x, bad, clean, fw, t0, dist, half,
                                                             False, _NO_PEAKS)
        if status == _BEATS_TIES:  # equal peak heights: scipy's own selection order
            selected = np.asarray(find_peaks(c, distance=dist)[0], dtype=np.int64)
            status, t_b, ibi, am, bw, ok, med_ibi = _beat_series(c, x, bad, clean, fw, t0, dist,
                                                                 half, True, selected)
        if status != _BEATS_OK:
            return _Evidence(t_end, None, 0.0, {"good": good_frac})
        n_ok = int(np.count_nonzero(ok))
        hr_bpm = 60.0 / med_ibi
        span = float(tw[-1] - tw[0]) + 1.0 / fw
        expected = max(1.0, good_frac * span / med_ibi)
        beat_frac = min(1.0, n_ok / expected)
        quality = good_frac * beat_frac
        # respiratory series at 4 Hz on a grid ending at the window end
        n_grid = int(math.floor(span * _SERIES_SFREQ))
        grid_t = t_end - np.arange(n_grid - 1, -1, -1) / _SERIES_SFREQ
        details = {"good": good_frac, "beats": beat_frac, "hr_bpm": hr_bpm}
        min_len = int(0.5 * cfg.min_window_s * _SERIES_SFREQ)
        # the series: the baseline on the whole grid, the beat series inside the beats' span
        # (one length); all their spectra come from one FFT call
        names: list[str] = []
        groups: list[tuple[FloatArray, tuple[bool, ...]]] = []
        if base is not None:  # "riiv" in cfg.modulations
            s_riiv = _interp_nb(grid_t, tw, base)
            if s_riiv.size >= min_len:
                names.append("riiv")
                groups.append((s_riiv[np.newaxis], (False,)))
        if self._beat_names:
            stack = _beat_rows(grid_t, t_b, ok, bw, am, ibi, self._beat_codes)
            if stack.shape[1] >= min_len:
                names += self._beat_names
                groups.append((stack, self._beat_fitted))
        # spectra of all series, then per modulation (in cfg order): the beat-sampled ones cut
        # at half the heart rate, renormalised, their peaks; fused = their mean (one kernel)
        comp, raw_s, usable = grid.spectra_rows(groups)
        row_of = {name: i for i, name in enumerate(names)}
        order = np.array([row_of.get(m, -1) for m in cfg.modulations], dtype=np.int64)
        beat = np.array([name != "riiv" for name in names], dtype=bool)
        fused, raw_fused, rates, concs, used, agree = _fuse_modulations(
            comp, raw_s, usable, order, beat, grid.brpm, hr_bpm / 2.0, grid._conc_half, grid.flat_conc)
        for q, name in enumerate(cfg.modulations):
            if used[q]:
                details[f"{name}_brpm"] = float(rates[q])
                details[f"{name}_conc"] = float(concs[q])
        if not used.any():
            return _Evidence(t_end, None, 0.0, details)
        details["agree"] = agree
        quality *= agree  # modulations that disagree: weak evidence (Karlen's smart fusion, softened)
        return _Evidence(t_end, fused, quality, details, raw_fused)


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
        # resampling, motion mask, bridging and axis weights: one kernel
        filled, weights, good_frac = _accel_series(filt, valid, times - t_end, grid_rel,
                                                   _MOTION_G_PER_S, int(round(1.0 * _SERIES_SFREQ)))
        if good_frac < 0.5:
            return _Evidence(t_end, None, 0.0, {"good": good_frac})
        comp, raw, ok = grid.spectra_rows([(filled, (False,) * filled.shape[0])])
        p_sum, raw_sum, tot = _weighted_spectra(comp, raw, ok, weights)
        if not tot > 0.0:
            return _Evidence(t_end, None, 0.0, {"good": good_frac})
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
        self._sos_c = np.array(self._sos, dtype=np.float64, order="C")
        # steady-state filter state per unit input (as SosFilter), (1, n_sections, 2)
        self._zi_unit = np.ascontiguousarray(sosfilt_zi(self._sos_c)[np.newaxis])
        self.tracker = _Tracker(grid, cfg)
        self.reset()

    def reset(self) -> None:
        cfg = self._cfg
        assert cfg.min_window_s is not None
        # the causal filter's state (SosFilter's, kept here for the compiled chunk path)
        self._zi = np.zeros((self._n_buf - 1 if self._ppg is None else 1, self._sos_c.shape[0], 2))
        self._last = np.zeros(self._zi.shape[0])  # each row's last (held) input sample
        self._started = False
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
        # buffer rows: filtered channel(s), the raw PPG (clipping check), valid flag (finite)
        stacked = np.empty((self._n_buf, raw.shape[1]))
        init = not self._started
        if not _stack_chunk(self._sos_c, raw, stacked, self._zi, self._zi_unit, self._last, init, ppg):
            # a non-finite sample: SosFilter's rule, the row's last finite input is held
            held = _hold_last_finite(np.asarray(raw, dtype=np.float64), self._last if self._started else None)
            _stack_chunk(self._sos_c, held, stacked, self._zi, self._zi_unit, self._last, init, ppg)
            if ppg:
                stacked[1] = raw[0]
            stacked[-1] = np.all(np.isfinite(raw), axis=0)
        self._started = self._started or raw.shape[1] > 0
        out: list[tuple[_Evidence, float, float]] = []
        windows, times = self._windows, chunk.times
        n, start = stacked.shape[1], 0
        while start < n:
            # push up to the next hop boundary, so the buffer holds exactly that hop's history
            stop = min(n, start + windows.to_boundary())
            if start == 0 and stop == n:  # most chunks: no hop boundary inside
                done = windows.push_ends(stacked, times)
            else:
                done = windows.push_ends(stacked[:, start:stop], times[start:stop])
            start = stop
            for t_end in done:
                ev = self._analyze(t_end)
                ev.readout = self.tracker.read(hint)
                out.append((ev, *ev.readout))
        self.last_time = float(chunk.times[-1])
        return out

    def _analyze(self, t_end: float) -> _Evidence:
        n = min(self.window_n(), self._windows.n_total)
        self.last_window_s = n / self.sfreq
        win, times = self._windows.history(n, copy=False)  # read-only views until the next push
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
