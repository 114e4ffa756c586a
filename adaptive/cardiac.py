"""Heart rate and heart-rate variability from PPG beats: offline functions and streaming estimators.

Pipeline
--------
1. :mod:`adaptive.ppg` detects beats (causal, chunk-invariant).
2. :class:`IntervalCleaner` turns beats into inter-beat intervals (IBIs) and flags artefacts:

   * *valid*: 0.3 s <= IBI <= 2.0 s (30-200 bpm) and within 30 % of the median of the previous
     five in-range intervals (a missed or extra beat changes the interval by far more);
   * *clean*: valid, and both beats match the running pulse template with a correlation of at
     least 0.85 (Orphanidou et al. 2015 use 0.86 for the same signal-quality index).

3. Window statistics on the clean intervals ending in the window ``(t - window_s, t]`` that were
   detected by ``t``:

   * ``HR_BPM`` = 60 / median clean IBI (needs 3 clean intervals);
   * ``IBI_MS`` = the latest clean interval;
   * ``RMSSD_MS`` = root mean square of differences between successive clean intervals;
   * ``LF_POWER_MS2``, ``HF_POWER_MS2``, ``LF_HF_RATIO``: power of the tachogram (clean IBIs in
     ms, linearly interpolated at 4 Hz, linear trend removed, Hann window) in 0.04-0.15 Hz and
     0.15-0.40 Hz;
   * ``HRV_COHERENCE`` (HeartMath-style peak-to-total ratio, 0..1): the highest spectral peak in
     0.04-0.26 Hz, its power in a 0.030 Hz band centred on it, divided by the total power in
     0.0033-0.40 Hz.  (HeartMath's published "coherence ratio" divides by total minus peak; we
     keep peak / total so the value stays in 0..1.)
   * ``HR_OSC_BPM``: peak-to-trough swing of the instantaneous heart rate per breath, measured
     as ``2 * sqrt(2) * sigma`` where ``sigma`` is the standard deviation of the heart rate
     (60000 / IBI, 4 Hz) band-limited to 0.04-0.40 Hz: exactly the swing of a sinusoidal
     oscillation, and a robust stand-in for breath-by-breath max minus min.  It is largest at
     resonance breathing (about 6 breaths/min).

   The quality of a window estimate is its clean coverage: the summed duration of the clean
   intervals (or clean successive pairs, for RMSSD) divided by the window length, capped at 1.
   NaN, flat, saturated or motion-corrupted stretches give no clean intervals, so quality
   falls; it never raises.

Streaming estimators emit on fixed hops (every ``hop_s`` of samples, counted from the first
sample), so their output does not depend on chunking; the offline twins :func:`ppg_hr` and
:func:`ppg_hrv` compute the same windows from the whole record.

Speed: everything that depends only on the window length (Hann window, FFT length, band-edge
bins, detrending basis) is computed once per length (:func:`_spec_plan`); both tachograms of a
window (intervals and heart rate) share one grid and one FFT call and only the bins below
0.4 Hz are used; the detrend is the closed-form least-squares line (equal to ``np.polyfit``
to rounding, ~1e-13 relative).  Interval records and estimates are built with internal
constructors that skip re-validating arrays the estimator made itself.  The streaming
estimators feed the beat detector once per hop (with every sample up to the hop end), keep
intervals and raw samples in append-only stores whose windows are read-only views, and
:class:`CardiacEstimator` selects both windows as slices (binary search) while the stored
intervals are in time order (else with masks).  The per-hop work runs in compiled kernels
(:mod:`adaptive._jit`): the interval rules (:func:`_clean_beats`), both windows' statistics,
the PPG quality and the tachograms up to the FFT (:func:`_cardiac_hop`, :func:`_hrv_prepare`)
and the band powers (:func:`_spectral_values`); the FFT is numpy's pocketfft, called without
its wrapper.  The kernels keep the numpy forms' arithmetic (sums in numpy's pairwise order,
``np.interp``'s formula); only the detrend's dot product is summed in another order than
BLAS, which changes the spectral values by rounding (~1e-16 relative).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
import scipy.fft
from numpy.typing import NDArray

from ._checks import check_chunk, check_option, check_positive, check_range
from ._jit import kernel
from ._kernels import _interp_nb
from .ppg import Beats, PulseConfig, PulseDetector, ppg_beats, ppg_peaks
from .quality import _last_n, _pairwise_sum, _ppg_quality_finite, _Tail, ppg_window_quality
from .types import Chunk, Estimate, FloatArray, Metric, SignalKind

try:  # compiled kernels behind np.interp and scipy.fft.rfft, called without their wrappers
    from numpy._core.multiarray import interp as _interp
except ImportError:  # pragma: no cover - another numpy layout

    def _interp(x: FloatArray, xp: FloatArray, fp: FloatArray, left: None, right: None) -> FloatArray:
        return np.interp(x, xp, fp)


try:
    from scipy.fft._pocketfft.pypocketfft import r2c as _r2c
except ImportError:  # pragma: no cover - another scipy layout

    def _r2c(a: FloatArray, axes: tuple[int], forward: bool, inorm: int, out: None, nthreads: int) -> NDArray:
        return scipy.fft.rfft(a, axis=axes[0])

__all__ = [
    "BoolArray",
    "CardiacConfig",
    "EstimateSeries",
    "CardiacEstimator",
    "HeartRateEstimator",
    "HrvEstimator",
    "HrvSpectrum",
    "IntervalCleaner",
    "Intervals",
    "beat_intervals",
    "hr_from_peaks",
    "hr_oscillation",
    "hrv_rmssd",
    "hrv_spectrum",
    "ppg_hr",
    "ppg_hrv",
    "ppg_peaks",
]

logger = logging.getLogger(__name__)

BoolArray = NDArray[np.bool_]

# kernel argument types: input arrays read-only (writeable ones match too), any layout
_RO1 = "Array(float64, 1, 'A', readonly=True)"
_RO_BOOL = "Array(boolean, 1, 'A', readonly=True)"
_RO_C2 = "Array(complex128, 2, 'A', readonly=True)"

LF_BAND = (0.04, 0.15)
HF_BAND = (0.15, 0.40)
COHERENCE_PEAK_RANGE = (0.04, 0.26)
COHERENCE_PEAK_WIDTH = 0.030
TOTAL_BAND = (0.0033, 0.40)
OSC_BAND = (0.04, 0.40)

HR_METRICS = (Metric.HR_BPM, Metric.IBI_MS, Metric.QUALITY_PPG)
HRV_METRICS = (
    Metric.RMSSD_MS,
    Metric.LF_POWER_MS2,
    Metric.HF_POWER_MS2,
    Metric.LF_HF_RATIO,
    Metric.HRV_COHERENCE,
    Metric.HR_OSC_BPM,
)


@dataclass(frozen=True, slots=True)
class CardiacConfig:
    """Settings shared by :class:`HeartRateEstimator` and :class:`HrvEstimator`.

    Parameters
    ----------
    hr_window_s : float
        Window of the heart-rate estimate.
    hrv_window_s : float
        Window of RMSSD, the spectrum, coherence and HR oscillation (64 s as in HeartMath-style
        biofeedback: 2.5 cycles of the slowest LF component).
    hop_s : float
        Output every ``hop_s`` seconds of samples.
    min_ibi_s, max_ibi_s : float
        Plausible interval range (0.3-2.0 s: 30-200 bpm).
    max_jump : float
        Largest relative change from the median of the previous ``ref_n`` in-range intervals.
    ref_n : int
        Number of previous intervals in that reference.
    min_template_corr : float
        Template correlation both beats of a clean interval need.
    fiducial : {"upstroke", "peak"}
        Beat time used for intervals: the steepest rise (default, less jitter) or the peak.
    resample_hz : float
        Tachogram sampling rate for the spectrum.
    min_coverage : float
        Spectral metrics need clean intervals covering at least this share of the window.
    pulse : PulseConfig
        Beat detector settings.
    """

    hr_window_s: float = 10.0
    hrv_window_s: float = 64.0
    hop_s: float = 1.0
    min_ibi_s: float = 0.3
    max_ibi_s: float = 2.0
    max_jump: float = 0.3
    ref_n: int = 5
    min_template_corr: float = 0.85
    fiducial: str = "upstroke"
    resample_hz: float = 4.0
    min_coverage: float = 0.5
    pulse: PulseConfig = field(default_factory=PulseConfig)

    def __post_init__(self) -> None:
        for name in ("hr_window_s", "hrv_window_s", "hop_s", "min_ibi_s", "max_ibi_s", "max_jump", "resample_hz"):
            check_positive(name, getattr(self, name))
        if self.min_ibi_s >= self.max_ibi_s:
            raise ValueError(
                f"Invalid value for 'min_ibi_s': expected less than max_ibi_s ({self.max_ibi_s!r}), "
                f"got {self.min_ibi_s!r}."
            )
        if int(self.ref_n) < 1:
            raise ValueError(f"Invalid value for 'ref_n': expected >= 1, got {self.ref_n!r}.")
        check_range("min_template_corr", self.min_template_corr, -1.0, 1.0)
        check_range("min_coverage", self.min_coverage, 0.0, 1.0)
        check_option("fiducial", self.fiducial, ["upstroke", "peak"])
        if self.resample_hz <= 2 * TOTAL_BAND[1]:
            raise ValueError(
                f"Invalid value for 'resample_hz': expected more than {2 * TOTAL_BAND[1]:g} Hz "
                f"(twice the HF band edge), got {self.resample_hz!r}."
            )
        if not isinstance(self.pulse, PulseConfig):
            raise TypeError(f"Invalid value for 'pulse': expected a PulseConfig, got {type(self.pulse).__name__}.")


# -- intervals ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, eq=False)
class Intervals:
    """Inter-beat intervals with artefact flags.

    Parameters
    ----------
    times : array of shape (n_intervals,)
        Time of the beat that ends each interval, seconds.
    ibi_s : array of shape (n_intervals,)
        Interval durations in seconds.
    valid : array of bool of shape (n_intervals,)
        Plausible: in range and no sudden jump.
    clean : array of bool of shape (n_intervals,)
        Valid, and both beats match the pulse template.
    detect_times : array of shape (n_intervals,)
        Time at which the ending beat was detected (for causal selection).
    """

    times: FloatArray
    ibi_s: FloatArray
    valid: BoolArray
    clean: BoolArray
    detect_times: FloatArray

    def __post_init__(self) -> None:
        n = np.asarray(self.times).size
        for name in ("times", "ibi_s", "valid", "clean", "detect_times"):
            dtype = np.bool_ if name in ("valid", "clean") else np.float64
            arr = np.array(getattr(self, name), dtype=dtype, copy=True).reshape(-1)
            if arr.size != n:
                raise ValueError(f"Invalid value for {name!r}: expected {n} values, got {arr.size}.")
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return int(self.times.size)

    @classmethod
    def _trusted(
        cls, times: FloatArray, ibi_s: FloatArray, valid: BoolArray, clean: BoolArray, detect_times: FloatArray
    ) -> Intervals:
        """Build a record from fresh 1-D arrays of equal length and the right dtypes (no checks).

        Internal fast path: the arrays are handed over (made read-only here, not copied).
        """
        self = object.__new__(cls)
        for name, arr in zip(_IV_FIELDS, (times, ibi_s, valid, clean, detect_times), strict=True):
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)
        return self

    @classmethod
    def _views(
        cls, times: FloatArray, ibi_s: FloatArray, valid: BoolArray, clean: BoolArray, detect_times: FloatArray
    ) -> Intervals:
        """Build a record from read-only 1-D views of equal length (no checks, no copies)."""
        self = object.__new__(cls)
        # the slots' own setters: what object.__setattr__ does on the frozen record, faster
        set_times, set_ibi, set_valid, set_clean, set_detect = _IV_SET
        set_times(self, times)
        set_ibi(self, ibi_s)
        set_valid(self, valid)
        set_clean(self, clean)
        set_detect(self, detect_times)
        return self

    def select(self, mask: BoolArray) -> Intervals:
        """Return the intervals where ``mask`` is True (the record itself when all are)."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape == self.times.shape and mask.all():
            return self  # immutable: no copy needed
        return Intervals._trusted(
            self.times[mask], self.ibi_s[mask], self.valid[mask], self.clean[mask], self.detect_times[mask]
        )

    @classmethod
    def concatenate(cls, parts: list[Intervals]) -> Intervals:
        """Join records in order (a single non-empty part is returned as is: records are immutable)."""
        nonempty = [p for p in parts if len(p)]
        if len(nonempty) == 1:
            return nonempty[0]
        if not nonempty:
            z = np.zeros(0)
            return cls._trusted(z, z.copy(), z.astype(bool), z.astype(bool), z.copy())
        return cls._trusted(*(np.concatenate([getattr(p, n) for p in nonempty]) for n in _IV_FIELDS))


_IV_FIELDS = ("times", "ibi_s", "valid", "clean", "detect_times")
_IV_SET = tuple(getattr(Intervals, name).__set__ for name in _IV_FIELDS)


class IntervalCleaner:
    """Turn a stream of beats into flagged intervals (causal: each flag uses past beats only).

    Parameters
    ----------
    config : CardiacConfig or None
        Uses ``min_ibi_s``, ``max_ibi_s``, ``max_jump``, ``ref_n``, ``min_template_corr`` and
        ``fiducial``.
    """

    def __init__(self, config: CardiacConfig | None = None) -> None:
        self.config = config if config is not None else CardiacConfig()
        self.reset()

    def reset(self) -> None:
        """Forget all beats."""
        # state read and written by _clean_beats: time and correlation of the last beat, whether
        # there is one; the last ref_n in-range intervals (a ring) with their count and next slot
        self._last = np.array([math.nan, math.nan, 0.0])
        self._recent = np.zeros(max(1, int(self.config.ref_n)))
        self._ring = np.zeros(2, dtype=np.int64)
        cfg = self.config
        self._params = np.array([cfg.min_ibi_s, cfg.max_ibi_s, cfg.max_jump, cfg.min_template_corr])

    def add(self, beats: Beats) -> Intervals:
        """Add beats (in time order) and return the intervals they complete."""
        n = len(beats)
        t, ibi, det = np.empty(n), np.empty(n), np.empty(n)
        valid, clean = np.empty(n, dtype=bool), np.empty(n, dtype=bool)
        m, *_ = self._write(beats, t, ibi, valid, clean, det, 0, -math.inf, -math.inf)
        m = int(m)
        return Intervals._trusted(t[:m], ibi[:m], valid[:m], clean[:m], det[:m])

    def _write(
        self,
        beats: Beats,
        a_time: FloatArray,
        a_ibi: FloatArray,
        a_valid: BoolArray,
        a_clean: BoolArray,
        a_det: FloatArray,
        j0: int,
        last_time: float,
        max_det: float,
    ) -> tuple[float, float, float, float]:
        """Add beats; write the intervals they complete to the arrays from row ``j0`` on.

        Returns the number of rows written and, for :class:`_IntervalStore`, the first row of
        the time-ordered tail, the last row's time and the latest detection time (see
        :func:`_clean_beats`), given ``last_time`` and ``max_det`` before them.
        """
        times = beats.upstroke_times if self.config.fiducial == "upstroke" else beats.peak_times
        return _clean_beats(  # type: ignore[no-any-return]
            times, beats.template_corr, beats.detect_times, self._params, self._last, self._recent,
            self._ring, a_time, a_ibi, a_valid, a_clean, a_det, j0, last_time, max_det,
        )  # fmt: skip


@kernel(
    f"UniTuple(float64, 4)({_RO1}, {_RO1}, {_RO1}, {_RO1}, float64[:], float64[:], int64[:],"
    " float64[:], float64[:], boolean[:], boolean[:], float64[:], int64, float64, float64)"
)
def _clean_beats(  # pragma: no cover - compiled
    times, corrs, dets, params, last, recent, ring,
    a_time, a_ibi, a_valid, a_clean, a_det, j0, last_time, max_det,
):
    """The rules of :class:`IntervalCleaner` over a run of beats, rows written from ``j0`` on.

    Replaces a Python loop: each interval is valid if in ``[min_ibi, max_ibi]`` and within
    ``max_jump`` of the median of the previous ``ref_n`` in-range intervals (``np.median``
    arithmetic), clean if valid and both beats correlate >= the threshold (NaN fails).
    ``last`` = (time, correlation, has a last beat); ``recent``/``ring`` = the in-range ring
    and (count, next slot).  Also tracks, for :class:`_IntervalStore`, the first row of the
    time-ordered tail (-1: unchanged), the last row's time and the latest detection time (inf
    after a NaN one).  Returns (rows written, that row, last time, latest detection).
    """
    min_ibi, max_ibi, max_jump, thr = params[0], params[1], params[2], params[3]
    ref_n = recent.shape[0]
    sorted_from = -1.0
    j = j0
    srt = np.empty(ref_n)
    for k in range(times.shape[0]):
        t, corr, det = times[k], corrs[k], dets[k]
        if last[2] != 0.0:
            ibi = t - last[0]
            in_range = min_ibi <= ibi <= max_ibi
            valid = in_range
            count = ring[0]
            if valid and count:
                for i in range(count):
                    srt[i] = recent[i]
                s = np.sort(srt[:count])
                h = count // 2
                ref = s[h] if count % 2 else (s[h - 1] + s[h]) / 2.0
                valid = abs(ibi - ref) <= max_jump * ref
            if in_range:  # the ring keeps the last ref_n (a deque with maxlen)
                recent[ring[1]] = ibi
                ring[1] = (ring[1] + 1) % ref_n
                if count < ref_n:
                    ring[0] = count + 1
            a_time[j] = t
            a_ibi[j] = ibi
            a_valid[j] = valid
            a_clean[j] = valid and corr >= thr and last[1] >= thr
            a_det[j] = det
            if not t >= last_time:  # out of order, or NaN (which no sorted range may hold)
                sorted_from = j if t == t else j + 1
            last_time = t
            if det > max_det:
                max_det = det
            elif det != det:
                max_det = math.inf
            j += 1
        last[0] = t
        last[1] = corr
        last[2] = 1.0
    return float(j - j0), sorted_from, last_time, max_det


class _IntervalStore:
    """Append-only interval history of a streaming estimator, handed out as :class:`Intervals` views.

    Rows are written into preallocated arrays; a snapshot is a record of read-only views of
    the live rows (made from read-only aliases, so no flag is set per snapshot).  Written rows
    never change and a full store moves to new arrays, so earlier snapshots stay valid.

    The store also tracks whether the live rows are in time order and the latest detection
    time, so a streaming estimator can select its windows by slicing (:meth:`ordered_by`).
    """

    def __init__(self, capacity: int = 512) -> None:
        self._cap = capacity
        self._arrays = [np.zeros(capacity), np.zeros(capacity), np.zeros(capacity, dtype=bool),
                        np.zeros(capacity, dtype=bool), np.zeros(capacity)]
        self._aliases = [_read_only_alias(a) for a in self._arrays]
        self.start = 0  # first live row
        self.stop = 0  # one past the last row
        self._sorted_from = 0  # rows [_sorted_from, stop) have finite, non-decreasing times
        self._last_time = -math.inf  # time of the last row
        self._max_detect = -math.inf  # latest detection time of any row (inf after a NaN one)

    def _room(self, m: int) -> None:
        """Make room for ``m`` more rows (moving the live rows to new arrays if needed)."""
        if self.stop + m > self._cap:
            live = self.stop - self.start
            cap = max(self._cap, 2 * (live + m))
            arrays = [np.zeros(cap, dtype=a.dtype) for a in self._arrays]
            for new, old in zip(arrays, self._arrays, strict=True):
                new[:live] = old[self.start : self.stop]
            self._arrays, self._cap = arrays, cap
            self._aliases = [_read_only_alias(a) for a in arrays]
            self._sorted_from = max(0, self._sorted_from - self.start)
            self.start, self.stop = 0, live

    def append(self, rows: list[tuple[float, float, bool, bool, float]]) -> None:
        """Add rows of (time, ibi, valid, clean, detect time)."""
        m = len(rows)
        self._room(m)
        a_time, a_ibi, a_valid, a_clean, a_det = self._arrays
        last, max_det = self._last_time, self._max_detect
        for j, (t, ibi, valid, clean, det) in enumerate(rows, start=self.stop):
            a_time[j] = t
            a_ibi[j] = ibi
            a_valid[j] = valid
            a_clean[j] = clean
            a_det[j] = det
            if not t >= last:  # out of order, or NaN (which no sorted range may hold)
                self._sorted_from = j if t == t else j + 1
            last = t
            if det > max_det:
                max_det = det
            elif det != det:
                max_det = math.inf
        self._last_time, self._max_detect = last, max_det
        self.stop += m

    def append_beats(self, cleaner: IntervalCleaner, beats: Beats) -> None:
        """Add the intervals that ``beats`` complete (through ``cleaner``): as :meth:`append` of its rows."""
        self._room(len(beats))
        j = self.stop
        n_rows, sorted_from, self._last_time, self._max_detect = cleaner._write(
            beats, *self._arrays, j, self._last_time, self._max_detect
        )
        if sorted_from >= 0:
            self._sorted_from = int(sorted_from)
        self.stop = j + int(n_rows)

    def ordered_by(self, t_end: float) -> bool:
        """True if the live rows are in time order and were all detected by ``t_end``.

        Then the rows of a window ``t_end - w < times <= t_end`` that were detected by
        ``t_end`` are exactly a slice, found with ``searchsorted``.
        """
        return self.start >= self._sorted_from and self._max_detect <= t_end

    @property
    def first_time(self) -> float:
        return float(self._arrays[0][self.start])

    def drop_until(self, t_min: float) -> None:
        """Forget the rows, from the start, whose time is <= ``t_min`` (as far as they are in order).

        Equal to keeping ``times > t_min`` when the times increase; otherwise a few older rows
        stay, which no window (all end well inside the history) selects.
        """
        times = self._arrays[0]
        while self.start < self.stop and times[self.start] <= t_min:
            self.start += 1

    def snapshot(self) -> Intervals:
        a, b = self.start, self.stop
        times, ibi, valid, clean, det = self._aliases
        return Intervals._views(times[a:b], ibi[a:b], valid[a:b], clean[a:b], det[a:b])


def _read_only_alias(a: FloatArray | BoolArray) -> FloatArray | BoolArray:
    v = a.view()
    v.flags.writeable = False
    return v


def beat_intervals(beats: Beats, *, config: CardiacConfig | None = None) -> Intervals:
    """Flagged inter-beat intervals of a whole record (offline twin of :class:`IntervalCleaner`).

    Parameters
    ----------
    beats : Beats
        Output of :func:`adaptive.ppg.ppg_beats`.
    config : CardiacConfig or None
        Artefact rules.

    Returns
    -------
    intervals : Intervals
    """
    return IntervalCleaner(config).add(beats)


# -- window statistics (pure) ------------------------------------------------------------------------
def hr_from_peaks(
    peak_times: FloatArray,
    *,
    template_corr: FloatArray | None = None,
    config: CardiacConfig | None = None,
) -> float:
    """Heart rate in bpm of a set of beats: 60 / median of the clean intervals.

    Parameters
    ----------
    peak_times : array of shape (n_beats,)
        Beat times in seconds, increasing.
    template_corr : array of shape (n_beats,) or None
        Template correlation of each beat; None treats every beat as clean-shaped.
    config : CardiacConfig or None
        Artefact rules.

    Returns
    -------
    hr_bpm : float
        NaN when fewer than 3 clean intervals remain.
    """
    t = np.asarray(peak_times, dtype=np.float64).reshape(-1)
    corr = np.ones_like(t) if template_corr is None else np.asarray(template_corr, dtype=np.float64).reshape(-1)
    z = np.zeros_like(t)
    beats = Beats(t, np.zeros(t.size, dtype=np.int64), z, z, z, z, t, corr, t)
    cfg = replace(config if config is not None else CardiacConfig(), fiducial="upstroke")
    iv = IntervalCleaner(cfg).add(beats)
    return _hr_value(iv.ibi_s[iv.clean])


def _hr_value(clean_ibi_s: FloatArray) -> float:
    if clean_ibi_s.size < 3:
        return math.nan
    s = np.sort(clean_ibi_s)
    if math.isnan(s[-1]):  # np.sort puts NaN last; np.median would return NaN
        return math.nan
    h = s.size // 2
    med = float(s[h]) if s.size % 2 else (float(s[h - 1]) + float(s[h])) / 2.0  # as np.median
    return 60.0 / med


def hrv_rmssd(ibi_s: FloatArray, valid: BoolArray | None = None) -> float:
    """Root mean square of successive differences of intervals, in ms.

    Parameters
    ----------
    ibi_s : array of shape (n_intervals,)
        Consecutive inter-beat intervals in seconds.
    valid : array of bool of shape (n_intervals,) or None
        Only differences between two consecutive valid intervals count.

    Returns
    -------
    rmssd_ms : float
        NaN when fewer than 3 differences remain.
    """
    ibi = np.asarray(ibi_s, dtype=np.float64).reshape(-1)
    ok = np.ones(ibi.size, dtype=bool) if valid is None else np.asarray(valid, dtype=bool).reshape(-1)
    if ibi.size < 2:
        return math.nan
    pair = ok[1:] & ok[:-1]
    d = np.diff(ibi)[pair]
    if d.size < 3:
        return math.nan
    return float(np.sqrt(np.mean(d * d)) * 1000.0)


@dataclass(frozen=True, slots=True, eq=False)
class HrvSpectrum:
    """Spectral HRV of one window.

    Parameters
    ----------
    freqs : array of shape (n_freqs,)
        Frequencies in Hz.
    psd : array of shape (n_freqs,)
        Power spectral density of the tachogram, ms^2/Hz.
    lf_ms2, hf_ms2 : float
        Power in 0.04-0.15 Hz and 0.15-0.40 Hz, ms^2.
    lf_hf : float
        ``lf_ms2 / hf_ms2``.
    coherence : float
        Peak-to-total ratio (see the module notes), 0..1.
    peak_hz : float
        Frequency of the highest peak in 0.04-0.26 Hz.
    """

    freqs: FloatArray
    psd: FloatArray
    lf_ms2: float
    hf_ms2: float
    lf_hf: float
    coherence: float
    peak_hz: float


@dataclass(frozen=True, eq=False)
class _SpecPlan:
    """Everything about an ``n``-sample tachogram at ``fs`` that can be computed once.

    Band edges are turned into bin ranges ``[i0, i1)`` with ``searchsorted`` on the sorted
    frequencies, which selects exactly the bins of the masks ``lo <= f < hi``.
    """

    n: int
    fs: float
    offsets: FloatArray  # (n,) seconds before the window end of each grid point
    tc: FloatArray  # (n,) centred sample index (mean and slope decouple)
    tt: float  # tc @ tc
    window: FloatArray  # (n,) Hann
    denom: float  # fs * sum(window ** 2): periodogram normalisation
    nfft: int
    freqs: FloatArray  # (nfft // 2 + 1,)
    df: float
    lf: tuple[int, int]
    hf: tuple[int, int]
    total: tuple[int, int]
    osc: tuple[int, int]
    peak_range: tuple[int, int]  # COHERENCE_PEAK_RANGE, both edges included
    n_bins: int  # bins any metric needs (all below TOTAL_BAND[1])
    bin_denoms: FloatArray  # (n_bins,): denom for bin 0, denom / 2 for the others
    peak_bands: tuple[tuple[int, int], ...] = ()  # per bin of peak_range: its coherence band
    # the same bins for _spectral_values: lf, hf, total, osc and peak_range edges, flattened,
    # and peak_bands as an (n_peak_bins, 2) array
    bin_edges: NDArray[np.int64] = field(default_factory=lambda: np.zeros(10, dtype=np.int64))
    peak_band_edges: NDArray[np.int64] = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))


@lru_cache(maxsize=16)
def _spec_plan(n: int, fs: float) -> _SpecPlan:
    nfft = max(1024, 1 << int(math.ceil(math.log2(4 * n))))
    freqs = np.fft.rfftfreq(nfft, 1.0 / fs)
    freqs.flags.writeable = False

    def bins(lo: float, hi: float) -> tuple[int, int]:
        return int(np.searchsorted(freqs, lo, "left")), int(np.searchsorted(freqs, hi, "left"))

    w = np.hanning(n)
    tc = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    offsets = np.arange(n - 1, -1, -1) / fs
    for a in (w, tc, offsets):
        a.flags.writeable = False
    lf, hf, total, osc = bins(*LF_BAND), bins(*HF_BAND), bins(*TOTAL_BAND), bins(*OSC_BAND)
    peak_range = (
        int(np.searchsorted(freqs, COHERENCE_PEAK_RANGE[0], "left")),
        int(np.searchsorted(freqs, COHERENCE_PEAK_RANGE[1], "right")),
    )
    half = COHERENCE_PEAK_WIDTH / 2.0
    # the coherence band of every possible peak bin, as _spectral_summary searched it
    peak_bands = tuple(
        (
            int(np.searchsorted(freqs, float(freqs[i]) - half, "left")),
            int(np.searchsorted(freqs, float(freqs[i]) + half, "left")),
        )
        for i in range(peak_range[0], peak_range[1])
    )
    denom = fs * float(np.sum(w * w))
    n_bins = max(lf[1], hf[1], total[1], osc[1], peak_range[1]) + 2
    bin_denoms = np.full(n_bins, denom / 2.0)
    bin_denoms[0] = denom
    bin_denoms.flags.writeable = False
    return _SpecPlan(
        n=n,
        fs=fs,
        offsets=offsets,
        tc=tc,
        tt=float(np.dot(tc, tc)) or 1.0,
        window=w,
        denom=denom,
        nfft=nfft,
        freqs=freqs,
        df=float(freqs[1] - freqs[0]),
        lf=lf,
        hf=hf,
        total=total,
        osc=osc,
        peak_range=peak_range,
        n_bins=n_bins,
        peak_bands=peak_bands,
        bin_denoms=bin_denoms,
        bin_edges=np.array([*lf, *hf, *total, *osc, *peak_range], dtype=np.int64),
        peak_band_edges=np.array(peak_bands, dtype=np.int64).reshape(-1, 2),
    )


def _grid_n(t_start: float, t_end: float, resample_hz: float) -> int:
    return max(2, int(math.floor((t_end - t_start) * resample_hz)) + 1)


def _periodogram(x: FloatArray, plan: _SpecPlan, n_bins: int | None = None) -> FloatArray:
    """One-sided periodogram of each row of ``x`` (n_rows, n): linear detrend, Hann, zero-padded.

    Units^2/Hz.  Only the first ``n_bins`` bins when given (the Nyquist bin is then excluded).

    Notes
    -----
    Written with fewer, direct calls than the obvious form (``x.mean(axis=-1)``,
    ``scipy.fft.rfft(xd * window, n=nfft)``), with the same arithmetic in the same order, so
    the same bits: the mean is the reduction divided by ``n`` (what ``mean`` does), and the
    windowed rows are written into a zero-padded array handed to scipy's compiled real FFT
    (what ``scipy.fft.rfft`` does after padding).
    """
    n = x.shape[-1]
    mean = np.add.reduce(x, axis=-1, keepdims=True)
    mean /= n
    xc = x - mean
    slope = (xc @ plan.tc) / plan.tt
    xd = xc - slope[..., np.newaxis] * plan.tc  # least-squares line removed
    padded = np.zeros(x.shape[:-1] + (plan.nfft,))
    np.multiply(xd, plan.window, out=padded[..., :n])
    spec = _r2c(padded, (padded.ndim - 1,), True, 0, None, 1)  # = scipy.fft.rfft, forward, no scaling
    if n_bins is not None and n_bins <= plan.n_bins:
        # the first bins only: one division by ``denom`` (bin 0) or ``denom / 2`` (the others)
        # gives the same bits as dividing by ``denom`` and doubling (scaling by 2 is exact)
        spec = spec[..., :n_bins]
        re, im = spec.real, spec.imag
        psd = re * re
        psd += im * im
        psd /= plan.bin_denoms[:n_bins]
        return psd
    if n_bins is not None:
        spec = spec[..., :n_bins]
    re, im = spec.real, spec.imag
    psd = re * re
    psd += im * im
    psd /= plan.denom
    psd[..., 1:] *= 2.0
    if n_bins is None and plan.nfft % 2 == 0:
        psd[..., -1] /= 2.0
    return psd


def _bin_power(psd: FloatArray, bins: tuple[int, int], df: float) -> float:
    return float(_add_reduce(psd[bins[0] : bins[1]]) * df)  # = np.sum(...) * df


_add_reduce = np.add.reduce


def _spectral_summary(psd: FloatArray, plan: _SpecPlan) -> tuple[float, float, float, float, float]:
    """LF, HF, LF/HF, coherence and peak frequency from a tachogram periodogram (ms^2/Hz)."""
    df, freqs = plan.df, plan.freqs
    lf = _bin_power(psd, plan.lf, df)
    hf = _bin_power(psd, plan.hf, df)
    total = _bin_power(psd, plan.total, df)
    i0, i1 = plan.peak_range
    k = int(psd[i0:i1].argmax())
    peak_hz = float(freqs[i0 + k])
    peak = _bin_power(psd, plan.peak_bands[k], df)  # the bins within COHERENCE_PEAK_WIDTH / 2
    coherence = min(1.0, peak / total) if total > 0 else math.nan
    lf_hf = lf / hf if hf > 0 else math.nan
    return lf, hf, lf_hf, coherence, peak_hz


def _osc_value(psd_hr: FloatArray, plan: _SpecPlan) -> float:
    # The Hann window keeps the power of a stationary sinusoid (psd is normalised by sum(w^2)).
    var = _bin_power(psd_hr, plan.osc, plan.df)
    return float(2.0 * math.sqrt(2.0 * max(var, 0.0)))


def hrv_spectrum(
    times: FloatArray,
    ibi_s: FloatArray,
    valid: BoolArray | None = None,
    *,
    t_start: float | None = None,
    t_end: float | None = None,
    resample_hz: float = 4.0,
) -> HrvSpectrum:
    """Power spectrum of the beat intervals, LF/HF powers and the coherence ratio.

    Parameters
    ----------
    times : array of shape (n_intervals,)
        Time of the beat ending each interval, seconds.
    ibi_s : array of shape (n_intervals,)
        Interval durations, seconds.
    valid : array of bool or None
        Intervals to use (others are bridged by interpolation).
    t_start, t_end : float or None
        Window to resample over (default: first and last valid interval).
    resample_hz : float
        Tachogram rate.

    Returns
    -------
    spectrum : HrvSpectrum
        All NaN when fewer than 4 valid intervals are given.
    """
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    ibi = np.asarray(ibi_s, dtype=np.float64).reshape(-1)
    ok = np.ones(t.size, dtype=bool) if valid is None else np.asarray(valid, dtype=bool).reshape(-1)
    t, ibi = t[ok], ibi[ok]
    if t.size < 4:
        nan = math.nan
        return HrvSpectrum(np.zeros(0), np.zeros(0), nan, nan, nan, nan, nan)
    t0 = float(t[0]) if t_start is None else float(t_start)
    t1 = float(t[-1]) if t_end is None else float(t_end)
    plan = _spec_plan(_grid_n(t0, t1, resample_hz), float(resample_hz))
    x = np.interp(t1 - plan.offsets, t, ibi * 1000.0)
    psd = _periodogram(x, plan)
    lf, hf, lf_hf, coherence, peak_hz = _spectral_summary(psd, plan)
    return HrvSpectrum(plan.freqs.copy(), psd, lf, hf, lf_hf, coherence, peak_hz)


def hr_oscillation(
    times: FloatArray,
    ibi_s: FloatArray,
    valid: BoolArray | None = None,
    *,
    t_start: float | None = None,
    t_end: float | None = None,
    resample_hz: float = 4.0,
) -> float:
    """Peak-to-trough heart-rate swing per breath, bpm (``2 * sqrt(2) * sigma`` in 0.04-0.4 Hz).

    Parameters
    ----------
    times, ibi_s, valid, t_start, t_end, resample_hz
        As in :func:`hrv_spectrum`.

    Returns
    -------
    hr_osc_bpm : float
        Swing of a sinusoid with the heart-rate variance of the respiratory band; NaN when fewer
        than 4 valid intervals are given.
    """
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    ibi = np.asarray(ibi_s, dtype=np.float64).reshape(-1)
    ok = np.ones(t.size, dtype=bool) if valid is None else np.asarray(valid, dtype=bool).reshape(-1)
    t, ibi = t[ok], ibi[ok]
    if t.size < 4:
        return math.nan
    t0 = float(t[0]) if t_start is None else float(t_start)
    t1 = float(t[-1]) if t_end is None else float(t_end)
    plan = _spec_plan(_grid_n(t0, t1, resample_hz), float(resample_hz))
    hr = np.interp(t1 - plan.offsets, t, 60.0 / ibi)
    return _osc_value(_periodogram(hr, plan, plan.n_bins), plan)


def _spectral_window(
    times: FloatArray, ibi_s: FloatArray, t_start: float, t_end: float, resample_hz: float
) -> tuple[float, float, float, float, float]:
    """LF, HF, LF/HF, coherence and HR oscillation of one window of clean intervals.

    The same numbers as :func:`hrv_spectrum` and :func:`hr_oscillation` (given the clean
    intervals and the window), with both tachograms on one grid and in one FFT call, and only
    the bins below 0.4 Hz evaluated.
    """
    plan = _spec_plan(_grid_n(t_start, t_end, resample_hz), float(resample_hz))
    grid = t_end - plan.offsets
    x = np.array(  # = np.interp of each tachogram, without the wrapper
        (_interp(grid, times, ibi_s * 1000.0, None, None), _interp(grid, times, 60.0 / ibi_s, None, None))
    )
    psd = _periodogram(x, plan, plan.n_bins)
    lf, hf, lf_hf, coherence, _ = _spectral_summary(psd[0], plan)
    return lf, hf, lf_hf, coherence, _osc_value(psd[1], plan)


# -- compiled kernels ---------------------------------------------------------------------------------------


@kernel(
    f"UniTuple(float64, 4)({_RO1}, {_RO1}, {_RO_BOOL}, float64, float64, float64, int64, {_RO1}, {_RO1},"
    f" float64, {_RO1}, float64[:, :])"
)
def _hrv_prepare(  # pragma: no cover - compiled
    times, ibi_s, clean, t_end, window_s, min_coverage, min_clean, offsets, tc, tt, window, padded
):
    """RMSSD, its pair coverage, the clean coverage and the spectral status of one window.

    The numpy form is the non-spectral part of :func:`_hrv_values` (``np.diff``, masks,
    ``np.add.reduce``) and, when the window qualifies for the spectrum (status 1), the
    tachograms of :func:`_spectral_window` up to the FFT: ``np.interp`` of the clean intervals
    (ms) and heart rate (bpm) on the grid, mean and least-squares line removed, times the
    Hann window, written to ``padded[:, :n]`` (the rest zeroed).  Status 0: no spectrum;
    -1: the clean times are not strictly increasing (the caller uses the numpy form).
    """
    n = ibi_s.shape[0]
    rmssd = math.nan
    pair_cov = 0.0
    tmp = np.empty(max(n, 1))
    if n >= 2:
        # RMSSD over successive clean pairs, coverage by the later interval of each pair
        n_d = 0
        for i in range(1, n):
            if clean[i] and clean[i - 1]:
                tmp[n_d] = ibi_s[i]
                n_d += 1
        s = _pairwise_sum(tmp, 0, n_d) / window_s
        pair_cov = s if s < 1.0 else 1.0  # Python min(1.0, s)
        if n_d >= 3:
            n_d = 0
            for i in range(1, n):
                if clean[i] and clean[i - 1]:
                    d = ibi_s[i] - ibi_s[i - 1]
                    tmp[n_d] = d * d
                    n_d += 1
            rmssd = math.sqrt(_pairwise_sum(tmp, 0, n_d) / n_d) * 1000.0
    n_c = 0
    for i in range(n):
        if clean[i]:
            tmp[n_c] = ibi_s[i]
            n_c += 1
    s = _pairwise_sum(tmp, 0, n_c) / window_s
    coverage = s if s < 1.0 else 1.0
    if not (coverage >= min_coverage and n_c >= min_clean):
        return rmssd, pair_cov, coverage, 0.0
    xp = np.empty(n_c)
    k = 0
    for i in range(n):
        if clean[i]:
            xp[k] = times[i]
            if k and not xp[k] > xp[k - 1]:
                return rmssd, pair_cov, coverage, -1.0
            k += 1
    ibi_c = tmp[:n_c]
    m = offsets.shape[0]
    grid = np.empty(m)
    for i in range(m):
        grid[i] = t_end - offsets[i]
    rows = np.empty((2, m))
    rows[0] = _interp_nb(grid, xp, ibi_c * 1000.0)
    rows[1] = _interp_nb(grid, xp, 60.0 / ibi_c)
    # = _periodogram's detrend and window: mean (pairwise sum / n), least-squares slope
    # (xc @ tc / tt, summed in another order than BLAS), xd * window
    for r in range(2):
        row = rows[r]
        mean = _pairwise_sum(row, 0, m) / m
        dot = 0.0
        for i in range(m):
            row[i] = row[i] - mean
            dot += row[i] * tc[i]
        slope = dot / tt
        out = padded[r]
        for i in range(m):
            out[i] = (row[i] - slope * tc[i]) * window[i]
        out[m:] = 0.0
    return rmssd, pair_cov, coverage, 1.0


@kernel(f"UniTuple(float64, 5)({_RO_C2}, {_RO1}, int64[:], int64[:, :], float64)")
def _spectral_values(spec, bin_denoms, bins, peak_bands, df):  # pragma: no cover - compiled
    """LF, HF, LF/HF, coherence and HR oscillation from the FFT rows of the two tachograms.

    The numpy form: ``_periodogram``'s first ``n_bins`` (``|X|^2 / bin_denoms``), then
    ``_spectral_summary`` of row 0 and ``_osc_value`` of row 1 (band sums as ``np.sum`` makes
    them, the first maximum as ``np.argmax``).  ``bins``: the ``[lo, hi)`` bins of the LF, HF,
    total, oscillation bands and the coherence peak range, flattened.
    """
    n_bins = bin_denoms.shape[0]
    psd = np.empty((2, n_bins))
    for r in range(2):
        for i in range(n_bins):
            re = spec[r, i].real
            im = spec[r, i].imag
            psd[r, i] = (re * re + im * im) / bin_denoms[i]
    p0 = psd[0]
    lf = _pairwise_sum(p0, bins[0], bins[1] - bins[0]) * df
    hf = _pairwise_sum(p0, bins[2], bins[3] - bins[2]) * df
    total = _pairwise_sum(p0, bins[4], bins[5] - bins[4]) * df
    i0, i1 = bins[8], bins[9]
    k = 0  # np.argmax: the first maximum, or the first NaN
    for i in range(i0, i1):
        v = p0[i]
        if v != v:
            k = i - i0
            break
        if v > p0[i0 + k]:
            k = i - i0
    peak = _pairwise_sum(p0, peak_bands[k, 0], peak_bands[k, 1] - peak_bands[k, 0]) * df
    coherence = math.nan
    if total > 0:
        c = peak / total
        coherence = c if c < 1.0 else 1.0  # Python min(1.0, c)
    lf_hf = lf / hf if hf > 0 else math.nan
    var = _pairwise_sum(psd[1], bins[6], bins[7] - bins[6]) * df
    osc = 2.0 * math.sqrt(2.0 * (0.0 if 0.0 > var else var))  # Python max(var, 0.0)
    return lf, hf, lf_hf, coherence, osc


@kernel(f"UniTuple(float64, 5)({_RO1}, {_RO_BOOL}, float64)")
def _hr_stats(ibi_s, clean, window_s):  # pragma: no cover - compiled
    """:func:`_hr_values` of ``ibi_s[clean]``: coverage, HR_BPM (value, quality), IBI_MS (value, quality)."""
    n_all = ibi_s.shape[0]
    c = np.empty(n_all)
    n = 0
    has_nan = False
    for i in range(n_all):
        if clean[i]:
            c[n] = ibi_s[i]
            has_nan |= ibi_s[i] != ibi_s[i]
            n += 1
    total = _pairwise_sum(c, 0, n)
    s = total / window_s
    coverage = s if s < 1.0 else 1.0  # Python min(1.0, s)
    hr = math.nan
    if n >= 3 and not has_nan:  # (np.sort puts NaN last, and np.median then gives NaN)
        last = c[n - 1]
        srt = np.sort(c[:n])
        h = n // 2
        hr = 60.0 / (srt[h] if n % 2 else (srt[h - 1] + srt[h]) / 2.0)  # as np.median
    else:
        last = c[n - 1] if n else math.nan
    last_ibi = last * 1000.0 if n else math.nan
    q = coverage if math.isfinite(hr) else 0.0
    return coverage, hr, q, last_ibi, q if n else 0.0


@kernel("int64(" + _RO1 + ", float64)")
def _search_right(a, v):  # pragma: no cover - compiled
    """``np.searchsorted(a, v, "right")`` for sorted ``a``: the first index whose value exceeds ``v``."""
    lo, hi = 0, a.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if v < a[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


@kernel(
    f"UniTuple(float64, 10)({_RO1}, {_RO1}, {_RO_BOOL}, {_RO1}, int64, float64, float64, float64,"
    f" float64, int64, {_RO1}, {_RO1}, float64, {_RO1}, float64[:, :])"
)
def _cardiac_hop(  # pragma: no cover - compiled
    times, ibi_s, clean, raw, flat_run, t_hop, w_hr, w_hrv,
    min_coverage, min_clean, offsets, tc, tt, window, padded,
):
    """The statistics of one :class:`CardiacEstimator` hop, for time-ordered intervals all detected by it.

    The numpy form: both windows selected by ``searchsorted`` (right) of ``t_hop``, ``t_hop -
    w_hr`` and ``t_hop - w_hrv``, then :func:`_hr_stats` of the HR window (5 values), the
    PPG quality of the raw window with the HR window's coverage (``ppg_window_quality``; NaN
    if a raw sample is missing: the caller uses the numpy form) and :func:`_hrv_prepare` of
    the HRV window (4 values), in that order.
    """
    i1 = _search_right(times, t_hop)
    i0 = _search_right(times, t_hop - w_hr)
    coverage, hr, q_hr, last_ibi, q_ibi = _hr_stats(ibi_s[i0:i1], clean[i0:i1], w_hr)
    q_ppg = _ppg_quality_finite(raw, flat_run, 3, coverage) if raw.shape[0] else 0.0
    i0 = _search_right(times, t_hop - w_hrv)
    rmssd, pair_cov, cov_hrv, status = _hrv_prepare(
        times[i0:i1], ibi_s[i0:i1], clean[i0:i1], t_hop, w_hrv, min_coverage, min_clean,
        offsets, tc, tt, window, padded,
    )  # fmt: skip
    return coverage, hr, q_hr, last_ibi, q_ibi, q_ppg, rmssd, pair_cov, cov_hrv, status


def _hr_values(clean_ibi: FloatArray, window_s: float) -> tuple[float, float, float, float, float]:
    """Coverage, HR_BPM (value, quality) and IBI_MS (value, quality) of a window's clean intervals."""
    total = float(_add_reduce(clean_ibi))
    coverage = min(1.0, total / window_s)
    n = clean_ibi.shape[0]
    if n >= 3 and math.isfinite(total):  # no NaN (or inf): Python's sort orders as np.sort
        s = sorted(clean_ibi.tolist())
        h = n // 2
        hr = 60.0 / (s[h] if n % 2 else (s[h - 1] + s[h]) / 2.0)  # as _hr_value
    else:
        hr = _hr_value(clean_ibi)
    last_ibi = float(clean_ibi[n - 1]) * 1000.0 if n else math.nan
    q = coverage if math.isfinite(hr) else 0.0
    return coverage, hr, q, last_ibi, q if n else 0.0


def _hr_window(iv: Intervals, window_s: float, raw: FloatArray, sfreq: float) -> dict[Metric, tuple[float, float]]:
    """HR_BPM, IBI_MS and QUALITY_PPG of one window of intervals and raw samples."""
    coverage, hr, q_hr, last_ibi, q_ibi = _hr_values(iv.ibi_s[iv.clean], window_s)
    return {
        Metric.HR_BPM: (hr, q_hr),
        Metric.IBI_MS: (last_ibi, q_ibi),
        Metric.QUALITY_PPG: (ppg_window_quality(raw, sfreq, coverage), 1.0),
    }


def _hrv_values(
    times: FloatArray, ibi_s: FloatArray, clean: BoolArray, t_end: float, window_s: float, cfg: CardiacConfig
) -> list[tuple[float, float]]:
    """(value, quality) of the :data:`HRV_METRICS`, in order, from one window of intervals.

    RMSSD (as :func:`hrv_rmssd` of the clean pairs), the coverages and the tachograms are
    computed by the compiled :func:`_hrv_prepare`, the FFT by numpy's pocketfft, the band
    powers by :func:`_spectral_values`: the same numbers as :func:`hrv_spectrum` and
    :func:`hr_oscillation` of the clean intervals (to rounding).
    """
    plan = _hrv_plan(t_end, window_s, cfg)
    padded = np.empty((2, plan.nfft))
    prep = _hrv_prepare(
        times, ibi_s, clean, t_end, window_s, cfg.min_coverage, 8,
        plan.offsets, plan.tc, plan.tt, plan.window, padded,
    )  # fmt: skip
    return _hrv_finish(prep, plan, padded, times, ibi_s, clean, t_end, window_s, cfg)


def _hrv_plan(t_end: float, window_s: float, cfg: CardiacConfig) -> _SpecPlan:
    """The spectrum plan of the HRV window ending at ``t_end``."""
    return _spec_plan(_grid_n(t_end - window_s, t_end, cfg.resample_hz), float(cfg.resample_hz))


def _hrv_finish(
    prep: tuple[float, float, float, float],
    plan: _SpecPlan,
    padded: FloatArray,
    times: FloatArray,
    ibi_s: FloatArray,
    clean: BoolArray,
    t_end: float,
    window_s: float,
    cfg: CardiacConfig,
) -> list[tuple[float, float]]:
    """:func:`_hrv_values` from :func:`_hrv_prepare`'s output (the intervals serve the numpy form)."""
    rmssd, pair_cov, coverage, status = prep
    # a kernel's NaN is a new float object: give math.nan, as the numpy form does (estimates
    # holding it then compare equal, NaN being identical to itself)
    rmssd = rmssd if rmssd == rmssd else math.nan
    out = [(rmssd, pair_cov if math.isfinite(rmssd) else 0.0)]
    if status == 0.0:  # too little clean coverage (or fewer than 8 clean intervals): no spectrum
        out += [(math.nan, 0.0)] * 5
        return out
    if status > 0.0:
        spec = _r2c(padded, (1,), True, 0, None, 1)  # = scipy.fft.rfft of each row, no scaling
        vals = [
            v if v == v else math.nan
            for v in _spectral_values(spec, plan.bin_denoms, plan.bin_edges, plan.peak_band_edges, plan.df)
        ]
    else:  # clean times out of order: the numpy form
        vals = _spectral_window(times[clean], ibi_s[clean], t_end - window_s, t_end, cfg.resample_hz)
    out += [(v, coverage if math.isfinite(v) else 0.0) for v in vals]
    return out


def _hrv_window(iv: Intervals, t_end: float, window_s: float, cfg: CardiacConfig) -> dict[Metric, tuple[float, float]]:
    """RMSSD, spectral metrics and HR oscillation of one window of intervals."""
    vals = _hrv_values(iv.times, iv.ibi_s, iv.clean, t_end, window_s, cfg)
    return dict(zip(HRV_METRICS, vals, strict=True))


# -- streaming ------------------------------------------------------------------------------------------
_EMPTY = np.zeros(0)


def _frozen(a: FloatArray) -> FloatArray:
    """``a`` itself if read-only (chunk arrays are), else a copy: kept samples must not change."""
    return a if not a.flags.writeable else a.copy()
_EMPTY.flags.writeable = False


class _BeatHopper:
    """Beats -> flagged intervals, with a fixed-hop schedule counted in samples."""

    def __init__(
        self,
        sfreq: float,
        config: CardiacConfig,
        history_s: float,
        owner: str,
        raw_window_s: float | None = None,
    ) -> None:
        self.sfreq = check_positive("sfreq", sfreq)
        self._raw_n = None if raw_window_s is None else max(1, int(round(raw_window_s * self.sfreq)))
        if not isinstance(config, CardiacConfig):
            raise TypeError(f"Invalid value for 'config': expected a CardiacConfig, got {type(config).__name__}.")
        self.config = config
        self._owner = owner
        self._hop_n = max(1, int(round(config.hop_s * self.sfreq)))
        self._history_s = history_s
        self._detector = PulseDetector(self.sfreq, config.pulse)
        self._cleaner = IntervalCleaner(config)
        self.reset()

    def reset(self) -> None:
        """Forget all state."""
        self._detector.reset()
        self._cleaner.reset()
        self._n = 0
        self._store = _IntervalStore()
        self._raw = None if self._raw_n is None else _Tail((), self._raw_n)
        self._pending: list[tuple[FloatArray, FloatArray]] = []  # samples after the last hop

    def _push(self, x: FloatArray, t: FloatArray) -> list[tuple[float, Intervals]]:
        """Feed samples; return (hop time, intervals known so far) at each hop boundary."""
        return [(t_hop, iv) for t_hop, iv, _ in self._push_raw(x, t)]

    def _push_raw(self, x: FloatArray, t: FloatArray) -> list[tuple[float, Intervals, FloatArray]]:
        """As :meth:`_push`, plus the last ``raw_window_s`` of raw samples at each hop.

        The beat detector is fed once per hop, with all samples up to the hop's end (samples
        after the last hop wait for the next one): hop outputs only use beats detected by the
        hop, and the detector gives the same beats for any split of its input, so fewer,
        longer calls change nothing but the per-call overhead.
        """
        return [(t_hop, iv, raw) for t_hop, iv, raw, _ in self._push_hops(x, t)]

    def _push_hops(self, x: FloatArray, t: FloatArray) -> list[tuple[float, Intervals, FloatArray, bool]]:
        """As :meth:`_push_raw`, with a flag per hop: :meth:`_IntervalStore.ordered_by` the hop time."""
        n = x.shape[0]
        if n == 0:
            return []
        n0 = self._n
        self._n = n0 + n
        raw = self._raw
        end0 = 0
        if raw is not None:
            end0 = raw.push(x) - n  # buffer position just before x[0]
        hop = self._hop_n
        first = hop - 1 - n0 % hop  # index in x of the first hop end
        if first >= n:
            self._pending.append((_frozen(x), _frozen(t)))
            return []
        out: list[tuple[float, Intervals, FloatArray, bool]] = []
        history_s = self._history_s
        start = 0
        for e in range(first, n, hop):
            xs, ts = x[start : e + 1], t[start : e + 1]
            if self._pending:
                xs = np.concatenate([p[0] for p in self._pending] + [xs])
                ts = np.concatenate([p[1] for p in self._pending] + [ts])
                self._pending = []
            beats = self._detector.push(xs, ts)
            store = self._store
            if len(beats):
                store.append_beats(self._cleaner, beats)
            t_hop = float(t[e])
            store.drop_until(t_hop - history_s)
            out.append(
                (t_hop, store.snapshot(), _EMPTY if raw is None else raw.tail(end0 + e + 1), store.ordered_by(t_hop))
            )
            start = e + 1
        if start < n:
            self._pending.append((_frozen(x[start:]), _frozen(t[start:])))
        return out

    def _samples(self, chunk: Chunk) -> tuple[FloatArray, FloatArray]:
        check_chunk(chunk, kind=SignalKind.PPG, sfreq=self.sfreq, owner=self._owner)
        return chunk.data[0], chunk.times


def _window(iv: Intervals, t_end: float, window_s: float) -> Intervals:
    mask = iv.times > t_end - window_s
    mask &= iv.times <= t_end
    mask &= iv.detect_times <= t_end
    return iv.select(mask)


class HeartRateEstimator(_BeatHopper):
    """Streaming heart rate from one PPG channel.

    Parameters
    ----------
    sfreq : float
        PPG sampling rate in Hz.
    config : CardiacConfig or None
        Settings (window ``hr_window_s``, hop ``hop_s``).

    Notes
    -----
    Emits ``HR_BPM``, ``IBI_MS`` and ``QUALITY_PPG`` (clean-interval coverage of the window;
    its own quality is 1) every ``hop_s`` seconds of samples.  Latency: beats are known about
    0.5 s after the peak, so the newest beat is missing from a hop for that long.  Warm-up: the
    first window fills after ``hr_window_s``; earlier estimates have low quality.

    Examples
    --------
    >>> import numpy as np
    >>> from adaptive.ppg import reference_pulse
    >>> from adaptive.types import Chunk
    >>> t = np.arange(0, 30, 1 / 64)
    >>> est = HeartRateEstimator(64.0)
    >>> out = est.update(Chunk("ppg", reference_pulse(t % 0.8)[np.newaxis], t, 64.0, ("ppg",)))
    >>> round([e.value for e in out if e.metric == "hr_bpm"][-1], 1)
    75.0
    """

    def __init__(self, sfreq: float, config: CardiacConfig | None = None) -> None:
        cfg = config if config is not None else CardiacConfig()
        super().__init__(sfreq, cfg, cfg.hr_window_s + 5.0, "HeartRateEstimator", raw_window_s=cfg.hr_window_s)

    def update(self, chunk: Chunk) -> list[Estimate]:
        """Process a PPG chunk; return the estimates of every hop it completes.

        Raises
        ------
        ValueError
            If the chunk is not PPG or has another sampling rate.
        """
        x, t = self._samples(chunk)
        out: list[Estimate] = []
        w = self.config.hr_window_s
        for t_hop, iv, raw in self._push_raw(x, t):
            for metric, (v, q) in _hr_window(_window(iv, t_hop, w), w, raw, self.sfreq).items():
                out.append(Estimate._trusted(metric, v, q, t_hop))
        return out


class HrvEstimator(_BeatHopper):
    """Streaming HRV (RMSSD, LF/HF, coherence, HR oscillation) from one PPG channel.

    Parameters
    ----------
    sfreq : float
        PPG sampling rate in Hz.
    config : CardiacConfig or None
        Settings (window ``hrv_window_s``, hop ``hop_s``).

    Notes
    -----
    Emits ``RMSSD_MS``, ``LF_POWER_MS2``, ``HF_POWER_MS2``, ``LF_HF_RATIO``, ``HRV_COHERENCE``
    and ``HR_OSC_BPM`` every ``hop_s``.  Spectral metrics are NaN (quality 0) until clean
    intervals cover ``min_coverage`` of the window, i.e. for at least half a window after the
    start or after a dropout.
    """

    def __init__(self, sfreq: float, config: CardiacConfig | None = None) -> None:
        cfg = config if config is not None else CardiacConfig()
        super().__init__(sfreq, cfg, cfg.hrv_window_s + 5.0, "HrvEstimator")

    def update(self, chunk: Chunk) -> list[Estimate]:
        """Process a PPG chunk; return the estimates of every hop it completes.

        Raises
        ------
        ValueError
            If the chunk is not PPG or has another sampling rate.
        """
        x, t = self._samples(chunk)
        out: list[Estimate] = []
        w = self.config.hrv_window_s
        for t_hop, iv in self._push(x, t):
            for metric, (v, q) in _hrv_window(_window(iv, t_hop, w), t_hop, w, self.config).items():
                out.append(Estimate._trusted(metric, v, q, t_hop))
        return out


class CardiacEstimator(_BeatHopper):
    """Heart rate and HRV from one shared beat detector.

    Emits, every ``hop_s``, exactly what :class:`HeartRateEstimator` and :class:`HrvEstimator`
    emit together (same values, same order: heart-rate metrics first), but detects the beats
    once instead of twice: the pipeline's choice.

    Parameters
    ----------
    sfreq : float
        PPG sampling rate in Hz.
    config : CardiacConfig or None
        Settings.
    """

    def __init__(self, sfreq: float, config: CardiacConfig | None = None) -> None:
        cfg = config if config is not None else CardiacConfig()
        history = max(cfg.hr_window_s, cfg.hrv_window_s) + 5.0
        super().__init__(sfreq, cfg, history, "CardiacEstimator", raw_window_s=cfg.hr_window_s)
        self._flat_run = max(2, int(round(0.25 * self.sfreq)))  # ppg_window_quality's default flat_run_s

    def update(self, chunk: Chunk) -> list[Estimate]:
        """Process a PPG chunk; return the estimates of every hop it completes.

        Raises
        ------
        ValueError
            If the chunk is not PPG or has another sampling rate.
        """
        x, t = self._samples(chunk)
        out: list[Estimate] = []
        cfg = self.config
        w_hr, w_hrv = cfg.hr_window_s, cfg.hrv_window_s
        trusted = Estimate._trusted
        for t_hop, iv, raw, ordered in self._push_hops(x, t):
            # = _hr_window(_window(iv, t_hop, w_hr), ...) and _hrv_window(_window(iv, t_hop,
            # w_hrv), ...), without building window records
            times, ibi, clean = iv.times, iv.ibi_s, iv.clean
            if ordered:
                # the usual case (times in order, all detected by the hop): the windows'
                # masks select slices, found by binary search (the same rows), and both
                # windows' statistics come from one compiled call
                plan = _hrv_plan(t_hop, w_hrv, cfg)
                padded = np.empty((2, plan.nfft))
                stats = _cardiac_hop(
                    times, ibi, clean, raw, self._flat_run, t_hop, w_hr, w_hrv, cfg.min_coverage, 8,
                    plan.offsets, plan.tc, plan.tt, plan.window, padded,
                )  # fmt: skip
                coverage, hr, q_hr, last_ibi, q_ibi, q_ppg = stats[:6]
                prep = stats[6:]  # _hrv_prepare's (rmssd, pair coverage, coverage, status)
                if q_ppg != q_ppg:  # (a missing raw sample: the numpy form)
                    q_ppg = ppg_window_quality(raw, self.sfreq, coverage)
                # NaN as the math.nan object, as the numpy form gives it (estimates compare equal)
                hr = hr if hr == hr else math.nan
                last_ibi = last_ibi if last_ibi == last_ibi else math.nan
                if prep[3] < 0.0:  # (clean times out of order: the numpy form needs the window)
                    i0, i1 = times.searchsorted(t_hop - w_hrv, "right"), times.searchsorted(t_hop, "right")
                    times, ibi, clean = times[i0:i1], ibi[i0:i1], clean[i0:i1]
                hrv = _hrv_finish(  # type: ignore[arg-type]
                    prep, plan, padded, times, ibi, clean, t_hop, w_hrv, cfg
                )
            else:  # the masks, sharing the common part
                upto = times <= t_hop
                upto &= iv.detect_times <= t_hop
                m_hr = times > t_hop - w_hr
                m_hr &= upto
                m_hr &= clean
                coverage, hr, q_hr, last_ibi, q_ibi = _hr_values(ibi[m_hr], w_hr)
                q_ppg = ppg_window_quality(raw, self.sfreq, coverage)
                m = times > t_hop - w_hrv
                m &= upto
                hrv = _hrv_values(times[m], ibi[m], clean[m], t_hop, w_hrv, cfg)
            out.append(trusted(Metric.HR_BPM, hr, q_hr, t_hop))
            out.append(trusted(Metric.IBI_MS, last_ibi, q_ibi, t_hop))
            out.append(trusted(Metric.QUALITY_PPG, q_ppg, 1.0, t_hop))
            for metric, (v, q) in zip(HRV_METRICS, hrv, strict=True):
                out.append(trusted(metric, v, q, t_hop))
        return out


# -- offline twins ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, eq=False)
class EstimateSeries:
    """Estimates of several metrics on a common time grid (offline twin output).

    Parameters
    ----------
    times : array of shape (n_hops,)
        Hop times, seconds.
    values, quality : dict of Metric to array of shape (n_hops,)
        Value and quality of each metric.
    """

    times: FloatArray
    values: dict[Metric, FloatArray]
    quality: dict[Metric, FloatArray]

    def estimates(self) -> list[Estimate]:
        """The same numbers as a list of :class:`Estimate`, hop by hop, metric by metric."""
        out = []
        for k, t in enumerate(self.times):
            for m in self.values:
                out.append(Estimate(m, float(self.values[m][k]), float(self.quality[m][k]), float(t)))
        return out


def _series(
    ppg: FloatArray,
    sfreq: float,
    times: FloatArray | None,
    cfg: CardiacConfig,
    fn: object,
    metrics: tuple[Metric, ...],
) -> EstimateSeries:
    x = np.asarray(ppg, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"Invalid value for 'ppg': expected a 1-D array (n_times,), got shape {x.shape}.")
    sfreq = check_positive("sfreq", sfreq)
    t = np.arange(x.size) / sfreq if times is None else np.asarray(times, dtype=np.float64)
    iv = beat_intervals(ppg_beats(x, sfreq, times=t, config=cfg.pulse), config=cfg)
    hop_n = max(1, int(round(cfg.hop_s * sfreq)))
    ends = np.arange(hop_n - 1, x.size, hop_n)
    hops = t[ends]
    vals = {m: np.full(hops.size, np.nan) for m in metrics}
    qual = {m: np.zeros(hops.size) for m in metrics}
    for k, (e, t_hop) in enumerate(zip(ends, hops, strict=True)):
        res = fn(iv, float(t_hop), x, int(e))  # type: ignore[operator]
        for m in metrics:
            vals[m][k], qual[m][k] = res[m]
    return EstimateSeries(hops, vals, qual)


def ppg_hr(
    ppg: FloatArray,
    sfreq: float,
    *,
    times: FloatArray | None = None,
    config: CardiacConfig | None = None,
) -> EstimateSeries:
    """Heart rate of a whole record on the hop grid (offline twin of :class:`HeartRateEstimator`).

    Parameters
    ----------
    ppg : array of shape (n_times,)
        One PPG channel.
    sfreq : float
        Sampling rate in Hz.
    times : array of shape (n_times,) or None
        Sample times (``arange(n) / sfreq`` if None).
    config : CardiacConfig or None
        Settings.

    Returns
    -------
    series : EstimateSeries
        ``HR_BPM``, ``IBI_MS`` and ``QUALITY_PPG`` at every hop, equal to the streaming output.
    """
    cfg = config if config is not None else CardiacConfig()
    w = cfg.hr_window_s
    raw_n = max(1, int(round(w * float(sfreq))))
    return _series(
        ppg,
        sfreq,
        times,
        cfg,
        lambda iv, t, x, e: _hr_window(_window(iv, t, w), w, _last_n(x, e, raw_n), float(sfreq)),
        HR_METRICS,
    )


def ppg_hrv(
    ppg: FloatArray,
    sfreq: float,
    *,
    times: FloatArray | None = None,
    config: CardiacConfig | None = None,
) -> EstimateSeries:
    """HRV of a whole record on the hop grid (offline twin of :class:`HrvEstimator`).

    Parameters
    ----------
    ppg : array of shape (n_times,)
        One PPG channel.
    sfreq : float
        Sampling rate in Hz.
    times : array of shape (n_times,) or None
        Sample times (``arange(n) / sfreq`` if None).
    config : CardiacConfig or None
        Settings.

    Returns
    -------
    series : EstimateSeries
        The six HRV metrics at every hop, equal to the streaming output.
    """
    cfg = config if config is not None else CardiacConfig()
    w = cfg.hrv_window_s
    return _series(ppg, sfreq, times, cfg, lambda iv, t, x, e: _hrv_window(_window(iv, t, w), t, w, cfg), HRV_METRICS)
