"""Pulse (beat) detection in photoplethysmography: offline functions and a streaming detector.

The detector is a causal, streaming form of Elgendi's two-moving-average method
(Elgendi et al., PLoS ONE 8(10):e76585, 2013, the default of NeuroKit2's ``ppg_findpeaks``):

1. band-pass 0.5-8 Hz (Butterworth, causal, state carried between chunks);
2. keep the positive half and square it: ``y = max(f, 0) ** 2``;
3. two moving averages of ``y``: over a systolic peak (111 ms) and over a beat (667 ms);
4. "blocks of interest" are where the peak average exceeds the beat average plus a small
   offset (``beta`` times a slow running mean of ``y``); a block at least 111 ms wide holds
   one systolic peak, the maximum of ``f`` inside it.

Elgendi centres both averages; here they are trailing averages re-aligned by delaying the
comparison by half a beat window, so the detector is causal with a fixed look-ahead.  Every
step runs sample by sample with carried state (the band-pass and the running mean carry their
filter state; each moving average is summed over its window of kept samples), so the beats do
not depend on how the input is split into chunks.

Speed: the per-sample work (band-pass, moving averages, block scan, fiducials, template) runs
in compiled kernels (:mod:`adaptive._jit`): :func:`_front_filter` and :func:`_detect_block`.
They keep the arithmetic of the numpy/scipy form (``sosfilt`` and the running mean bit for
bit); the moving averages and the template correlation's dot product are summed in another
order than numpy's, which changes results by rounding only (~1e-16 relative).

Each beat gets two fiducials, refined between samples by parabolic interpolation (64 Hz
sampling alone quantises intervals to 15.6 ms, which would add about 6 ms of spurious RMSSD):
the systolic peak and the steepest rise before it (``upstroke_times``, the more precise one for
intervals: on BIDMC its jitter against the ECG R peak is 9-14 ms vs 8-50 ms for the rounded
peak).  The delay of the band-pass, measured once on a synthetic pulse train
(:func:`reference_pulse`), is subtracted so that the times approximate the raw signal's.

Polarity: raw reflectance counts (the Muse, the simulated patient) fall at systole, while
pulse-oximeter and Empatica BVP traces rise.  ``PulseConfig.polarity="auto"`` (default) runs
both polarities, chooses the one whose beats are more regular and template-consistent
(ties: the one whose mean cycle rises faster than it falls), and can switch later if the other
becomes clearly more regular.  Set ``"normal"``/``"inverted"`` when the sensor is known.

Each beat also carries a template correlation (shape similarity with the running mean pulse),
the basis of the clean-interval rule in :mod:`adaptive.cardiac` and of PPG quality.

Besides times, each beat carries what respiration estimators use: the pulse amplitude (peak
minus preceding foot of the band-passed pulse: respiratory-induced amplitude variation), the raw
signal at the peak and foot (respiratory-induced intensity variation) and, by differencing the
times, the intervals (respiratory-induced frequency variation).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from scipy.signal import sosfilt_zi

from ._checks import check_chunk, check_option, check_positive
from ._jit import kernel
from .filters import SosFilter, _sosfilt_rows, design_sos
from .quality import _pairwise_sum
from .types import Chunk, FloatArray, SignalKind

__all__ = [
    "Beats",
    "IntArray",
    "PulseConfig",
    "PulseDetector",
    "ppg_beats",
    "reference_pulse",
    "ppg_peaks",
]

logger = logging.getLogger(__name__)

IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class PulseConfig:
    """Settings of :class:`PulseDetector` (defaults follow Elgendi 2013).

    Parameters
    ----------
    l_freq, h_freq : float
        Band-pass edges in Hz (``h_freq`` is lowered to 0.45 * sfreq if needed).
    order : int
        Butterworth order of each band edge.
    peak_window_s : float
        Moving average over one systolic peak (W1 = 111 ms); also the minimum block width.
    beat_window_s : float
        Moving average over one beat (W2 = 667 ms); sets the look-ahead latency (W2 / 2).
    beta : float
        Threshold offset as a fraction of the running mean of the squared signal.
    offset_tau_s : float
        Time constant of that running mean (Elgendi uses the whole record; causal here).
    min_interval_s : float
        A peak closer than this to the previous one is dropped (0.3 s = 200 bpm).
    max_block_s : float
        A block wider than this is motion or a step, not a systolic peak, and is dropped.
    foot_search_s : float
        How far before a peak to look for its foot (stopping at the previous peak).
    bad_guard_s : float
        Beats whose foot is within this many seconds after a NaN sample are dropped (the
        filter's transient after a gap).
    polarity : {"auto", "normal", "inverted"}
        ``"inverted"`` negates the input first, for sensors whose counts fall as blood volume
        rises (raw reflectance counts, e.g. the Muse); ``"auto"`` runs both polarities for
        ``polarity_calib_s`` and keeps the one with more regular beats (ties: the one whose
        pulse template rises faster than it falls; see :meth:`PulseDetector._choose`).
    polarity_calib_s : float
        Calibration length for ``polarity="auto"`` (repeated while neither polarity finds a
        regular pulse, e.g. when the record starts flat).
    """

    l_freq: float = 0.5
    h_freq: float = 8.0
    order: int = 2
    peak_window_s: float = 0.111
    beat_window_s: float = 0.667
    beta: float = 0.02
    offset_tau_s: float = 10.0
    min_interval_s: float = 0.3
    max_block_s: float = 1.2
    foot_search_s: float = 1.0
    bad_guard_s: float = 1.0
    polarity: str = "auto"
    polarity_calib_s: float = 30.0

    def __post_init__(self) -> None:
        for name in (
            "l_freq",
            "h_freq",
            "peak_window_s",
            "beat_window_s",
            "offset_tau_s",
            "min_interval_s",
            "max_block_s",
            "foot_search_s",
            "polarity_calib_s",
        ):
            check_positive(name, getattr(self, name))
        if self.l_freq >= self.h_freq:
            raise ValueError(
                f"Invalid value for 'l_freq': expected l_freq < h_freq ({self.h_freq!r} Hz), "
                f"got {self.l_freq!r}."
            )
        if self.peak_window_s >= self.beat_window_s:
            raise ValueError(
                f"Invalid value for 'peak_window_s': expected less than beat_window_s "
                f"({self.beat_window_s!r} s), got {self.peak_window_s!r}."
            )
        check_option("polarity", self.polarity, ["auto", "normal", "inverted"])
        if int(self.order) < 1:
            raise ValueError(f"Invalid value for 'order': expected >= 1, got {self.order!r}.")
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise ValueError(f"Invalid value for 'beta': expected >= 0, got {self.beta!r}.")
        if not (math.isfinite(self.bad_guard_s) and self.bad_guard_s >= 0):
            raise ValueError(f"Invalid value for 'bad_guard_s': expected >= 0 s, got {self.bad_guard_s!r}.")


_FIELDS = (
    "peak_times",
    "peak_samples",
    "trough_times",
    "amplitudes",
    "peak_values",
    "trough_values",
    "detect_times",
    "template_corr",
    "upstroke_times",
)


@dataclass(frozen=True, slots=True, eq=False)
class Beats:
    """Detected beats, one entry per beat, in time order.

    Parameters
    ----------
    peak_times : array of shape (n_beats,)
        Systolic peak times in seconds (same clock as the input times), refined between
        samples, with the band-pass group delay removed.
    peak_samples : array of int of shape (n_beats,)
        Nearest input sample of each peak, counted from the detector's first sample.
    trough_times : array of shape (n_beats,)
        Time of the pulse foot (minimum of the band-passed pulse) before each peak, seconds,
        with the group delay removed.
    amplitudes : array of shape (n_beats,)
        Peak minus foot of the band-passed pulse, input units (amplitude modulation).
    peak_values, trough_values : array of shape (n_beats,)
        Raw input (NaN held) at the peak and foot samples, input units (intensity modulation).
    detect_times : array of shape (n_beats,)
        Time of the input sample at which each beat was emitted (peak time plus latency).
    template_corr : array of shape (n_beats,)
        Pearson correlation (-1..1) of the band-passed pulse around each peak (-0.3..+0.3 s)
        with a running template of the previous beats; NaN for the first beat.  Clean pulses
        give about 0.9-1; motion and noise give much less (Orphanidou et al. 2015 use 0.86).
    upstroke_times : array of shape (n_beats,)
        Time of the steepest rise between the foot and the peak, seconds, delay removed: the
        most precise fiducial for beat intervals (less jitter than the rounded systolic peak).
    """

    peak_times: FloatArray
    peak_samples: IntArray
    trough_times: FloatArray
    amplitudes: FloatArray
    peak_values: FloatArray
    trough_values: FloatArray
    detect_times: FloatArray
    template_corr: FloatArray
    upstroke_times: FloatArray

    def __post_init__(self) -> None:
        n = None
        for name in _FIELDS:
            dtype = np.int64 if name == "peak_samples" else np.float64
            arr = np.array(getattr(self, name), dtype=dtype, copy=True).reshape(-1)
            if n is None:
                n = arr.size
            elif arr.size != n:
                raise ValueError(f"Invalid value for {name!r}: expected {n} values, got {arr.size}.")
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return int(self.peak_times.size)

    @property
    def intervals_s(self) -> FloatArray:
        """Beat-to-beat intervals in seconds, shape (n_beats - 1,) (no artefact rejection)."""
        return np.diff(self.peak_times)

    @classmethod
    def empty(cls) -> Beats:
        """Return a record with no beats."""
        z = np.zeros(0)
        return cls(z, np.zeros(0, dtype=np.int64), z, z, z, z, z, z, z)

    @classmethod
    def _trusted(cls, *arrays: FloatArray | IntArray) -> Beats:
        """Build a record from fresh 1-D arrays in :data:`_FIELDS` order, skipping validation.

        Internal fast path: the caller guarantees equal lengths and dtypes (int64 for
        ``peak_samples``, float64 otherwise) and hands the arrays over (they are made
        read-only here, not copied).
        """
        self = object.__new__(cls)
        for set_field, arr in zip(_BEATS_SET, arrays, strict=True):
            arr.flags.writeable = False
            set_field(self, arr)
        return self

    @classmethod
    def _from_table(cls, table: FloatArray, peak_samples: IntArray) -> Beats:
        """Build a record from a fresh (9, n_beats) table in :data:`_FIELDS` order (no checks).

        As :meth:`_trusted` with the table's rows, but the table is made read-only once, so its
        row views are born read-only (one flag write instead of nine).
        """
        table.flags.writeable = False
        peak_samples.flags.writeable = False
        self = object.__new__(cls)
        # unrolled over _FIELDS (row 1 is replaced by the int64 samples)
        r0, _, r2, r3, r4, r5, r6, r7, r8 = table
        s0, s1, s2, s3, s4, s5, s6, s7, s8 = _BEATS_SET
        s0(self, r0)
        s1(self, peak_samples)
        s2(self, r2)
        s3(self, r3)
        s4(self, r4)
        s5(self, r5)
        s6(self, r6)
        s7(self, r7)
        s8(self, r8)
        return self

    @classmethod
    def concatenate(cls, parts: list[Beats]) -> Beats:
        """Join records in order (e.g. the outputs of successive :meth:`PulseDetector.update`).

        Records are immutable, so a single non-empty part is returned as is.
        """
        parts = [p for p in parts if len(p)]
        if not parts:
            return _EMPTY_BEATS
        if len(parts) == 1:
            return parts[0]
        return cls._trusted(*(np.concatenate([getattr(p, name) for p in parts]) for name in _FIELDS))


# Setters of the slots of Beats, for the trusted constructors: a slot's member descriptor
# stores the value exactly as ``object.__setattr__`` does on the frozen record, several times faster.
_BEATS_SET = tuple(getattr(Beats, name).__set__ for name in _FIELDS)


#: The record with no beats, shared (immutable) by every detector call that finds none.
_EMPTY_BEATS = Beats.empty()


def reference_pulse(phase_s: FloatArray) -> FloatArray:
    """A generic finger-PPG pulse shape: fast upstroke, systolic peak, diastolic wave, decay.

    Parameters
    ----------
    phase_s : array
        Time since the pulse onset in seconds.

    Returns
    -------
    pulse : array, same shape
        Pulse (peak about 1) whose steepest rise is near 0.15 s and systolic peak near 0.2 s;
        it decays to about 2 % by 1 s.
    """
    ph = np.asarray(phase_s, dtype=np.float64)
    up = np.exp(-0.5 * ((ph - 0.2) / 0.05) ** 2)  # fast systolic upstroke
    down = 0.5 * np.exp(-0.5 * ((ph - 0.2) / 0.1) ** 2) + 0.5 * np.exp(-np.maximum(ph - 0.2, 0.0) / 0.2)
    diastolic = 0.3 * np.exp(-0.5 * ((ph - 0.45) / 0.08) ** 2)
    return np.where(ph < 0.2, up, down) + diastolic


def _calibrate_delays(sos: FloatArray, sfreq: float) -> tuple[float, float]:
    """Delays (s) of the systolic peak and of the steepest rise through the band-pass filter.

    Measured on a synthetic 72-bpm pulse train (:func:`reference_pulse`); a real pulse of
    another shape or rate is shifted slightly differently (a few ms to tens of ms), which is a
    constant offset for beat intervals.
    """
    ibi = 60.0 / 72.0
    n = int(round(30.0 * sfreq))
    t = np.arange(n) / sfreq
    x = reference_pulse(t % ibi)
    f = SosFilter(sos).process(x[np.newaxis, :])[0]
    d_peak, d_up = [], []
    for k in range(20, 34):
        a, b = int(np.ceil(k * ibi * sfreq)), int(np.floor((k + 1) * ibi * sfreq))
        if b >= n:
            break
        i_raw = a + int(np.argmax(x[a:b]))
        i_f = a + int(np.argmax(f[a:b]))
        d_peak.append((i_f - i_raw) / sfreq)
        d_up.append((_steepest(f[a:b]) - _steepest(x[a:b])) / sfreq)
    return float(np.median(d_peak)), float(np.median(d_up))


@lru_cache(maxsize=32)
def _cached_delays(sos_bytes: bytes, n_sections: int, sfreq: float) -> tuple[float, float]:
    sos = np.frombuffer(sos_bytes, dtype=np.float64).reshape(n_sections, 6)
    return _calibrate_delays(sos, sfreq)


# -- compiled detector ---------------------------------------------------------------------------------------
# Rows of a detector's history buffer (see _SignedDetector._reserve): band-passed and raw
# signal, times, peak moving average, threshold (beat moving average plus offset), and the
# squared positive half ``y`` the moving averages are taken of.
_F, _X, _T, _TP, _THR, _Y = range(6)
_N_ROWS = 6

# Integer state of a _SignedDetector (its ``_ist`` array), shared with _detect_block: samples
# processed (internal index of the next one), first index any later look-back may read, index
# of the buffer's first column, buffer columns in use, next index whose block condition is
# evaluated, last non-finite input sample (-1: none yet), inside a block (0/1), start of that
# block, and flags: a last peak exists, the template exists, the cycle is tracked, it exists.
(_S_N, _S_H0, _S_B0, _S_LEN, _S_NEXT, _S_LAST_BAD, _S_IN_BLOCK, _S_BLOCK_START,
 _S_HAS_PEAK, _S_HAS_TPL, _S_TRACK, _S_HAS_CYCLE) = range(12)
_N_ISTATE = 12
# Float state (``_fst``): fractional index of the last peak, state of the offset's running mean.
_S_LAST_PEAK, _S_ZI_OFF = range(2)
# Integer settings (``_ip``) and float settings (``_fp``) of a detector, see _SignedDetector.__init__.
(_P_W1, _P_W2, _P_H1, _P_H2, _P_MAX_BLOCK, _P_FOOT, _P_GUARD, _P_TPL_BEFORE, _P_TPL_AFTER,
 _P_CYCLE_BEFORE, _P_KEEP) = range(11)
_P_SIGN, _P_BETA, _P_ALPHA, _P_MIN_INT, _P_SFREQ, _P_PEAK_DELAY, _P_UP_DELAY = range(7)

_RO1 = "Array(float64, 1, 'A', readonly=True)"
_RO_BOOL = "Array(boolean, 1, 'A', readonly=True)"
_NO_BAD = np.zeros(0, dtype=bool)  # _detect_block's mask argument when every sample is finite


@kernel("UniTuple(float64, 2)(float64, float64, float64)")
def _parabolic(ym, y0, yp):  # pragma: no cover - compiled
    """Offset in samples (-0.5..0.5) and value of the vertex through three samples."""
    denom = ym - 2.0 * y0 + yp
    if denom == 0.0 or not math.isfinite(denom):
        return 0.0, y0
    delta = 0.5 * (ym - yp) / denom
    delta = delta if delta > -0.5 else -0.5  # = min(0.5, max(-0.5, delta)) of Python floats
    delta = delta if delta < 0.5 else 0.5
    return delta, y0 - 0.25 * (ym - yp) * delta


@kernel(f"float64({_RO1})")
def _steepest(y):  # pragma: no cover - compiled
    """Fractional index of the steepest rise of ``y`` (first difference, parabolic)."""
    n_d = y.shape[0] - 1
    k = 0  # np.argmax of np.diff(y): the first maximum
    best = y[1] - y[0]
    for i in range(1, n_d):
        d = y[i + 1] - y[i]
        if d > best:
            best, k = d, i
    off = 0.0
    if 0 < k < n_d - 1:
        off, _ = _parabolic(y[k] - y[k - 1], y[k + 1] - y[k], y[k + 2] - y[k + 1])
    return k + 0.5 + off


@kernel(
    "float64(float64[:, :], int64, float64[:], float64[:], int64[:], float64[:], int64[:], float64[:])"
)
def _template_corr(buf, p, template, cycle, ist, fst, ip, fp):  # pragma: no cover - compiled
    """Correlate the pulse around sample ``p`` with the running template, then update it.

    The numpy form: z-score the segment ``f[p - 0.3 s : p + 0.3 s]`` (``(seg - seg.mean()) /
    seg.std()``), ``np.dot(z, tpl) / (n * tpl.std())`` clipped to -1..1, then
    ``tpl = (1 - w) * tpl + w * z`` re-centred; also the running mean cycle while tracked.
    """
    b0 = ist[_S_B0]
    cyc_before, before, after = ip[_P_CYCLE_BEFORE], ip[_P_TPL_BEFORE], ip[_P_TPL_AFTER]
    if p - cyc_before < ist[_S_H0]:
        return math.nan
    f = buf[_F]
    if ist[_S_TRACK]:
        lo = p - cyc_before - b0
        if ist[_S_HAS_CYCLE]:
            for i in range(cycle.shape[0]):
                cycle[i] = 0.9 * cycle[i] + 0.1 * f[lo + i]
        else:
            cycle[:] = f[lo : lo + cycle.shape[0]]
            ist[_S_HAS_CYCLE] = 1
    seg = f[p - before - b0 : p + after + 1 - b0]
    n = seg.shape[0]
    mean = _pairwise_sum(seg, 0, n) / n
    z = np.empty(n)
    sq = np.empty(n)
    for i in range(n):
        v = seg[i] - mean
        z[i] = v
        sq[i] = v * v
    sd = math.sqrt(_pairwise_sum(sq, 0, n) / n)
    if not sd > 0.0:
        return 0.0
    for i in range(n):
        z[i] /= sd
    if not ist[_S_HAS_TPL]:
        template[:] = z
        ist[_S_HAS_TPL] = 1
        return math.nan
    m_tpl = _pairwise_sum(template, 0, n) / n
    dot = 0.0
    for i in range(n):
        v = template[i] - m_tpl
        sq[i] = v * v
        dot += z[i] * template[i]  # np.dot: the same products, summed in another order
    sd_tpl = math.sqrt(_pairwise_sum(sq, 0, n) / n)
    corr = dot / (n * (1e-12 if 1e-12 > sd_tpl else sd_tpl))  # Python max(sd_tpl, 1e-12)
    corr = corr if corr > -1.0 else -1.0  # = min(1.0, max(-1.0, corr)) of Python floats
    corr = corr if corr < 1.0 else 1.0
    weight = 0.1 if corr > 0.5 else 0.02  # artefacts barely move the template
    for i in range(n):
        template[i] = (1.0 - weight) * template[i] + z[i] * weight
    m_tpl = _pairwise_sum(template, 0, n) / n
    for i in range(n):
        template[i] -= m_tpl
    return corr


@kernel(
    "boolean(float64[:, :], boolean[:], int64, int64, int64, float64[:], float64[:], int64[:],"
    " float64[:], int64[:], float64[:], float64[:])"
)
def _close_block(  # pragma: no cover - compiled
    buf, bad, start, end, n_skipped, template, cycle, ist, fst, ip, fp, row
):
    """Turn the block [start, end) into a beat (its 9 fields written to ``row``); False if it is not one."""
    width = end - start
    if width < ip[_P_W1] or width > ip[_P_MAX_BLOCK]:
        return False
    h0, b0, n_all = ist[_S_H0], ist[_S_B0], ist[_S_N]
    f = buf[_F]
    p = start  # np.argmax: the first maximum
    for i in range(start + 1, end):
        if f[i - b0] > f[p - b0]:
            p = i
    if p - 1 < h0:
        return False
    dp, peak_val = _parabolic(f[p - 1 - b0], f[p - b0], f[p + 1 - b0])
    p_frac = p + dp
    has_peak = ist[_S_HAS_PEAK] != 0
    last_peak = fst[_S_LAST_PEAK]
    if has_peak and p_frac - last_peak < fp[_P_MIN_INT]:
        return False
    lo = max(h0 + 1, p - ip[_P_FOOT])
    if has_peak:
        lo = max(lo, int(math.floor(last_peak)) + 1)
    if lo >= p:
        return False
    q = lo  # np.argmin: the first minimum
    for i in range(lo + 1, p):
        if f[i - b0] < f[q - b0]:
            q = i
    dq, foot_val = _parabolic(f[q - 1 - b0], f[q - b0], f[q + 1 - b0])
    up = q + _steepest(f[q - b0 : p + 2 - b0])
    g0 = max(h0, q - ip[_P_GUARD])
    ist[_S_HAS_PEAK] = 1
    fst[_S_LAST_PEAK] = p_frac
    if ist[_S_LAST_BAD] >= g0:
        for i in range(g0 - b0, end + 1 - b0):
            if bad[i]:
                return False
    corr = _template_corr(buf, p, template, cycle, ist, fst, ip, fp)
    sfreq, peak_delay = fp[_P_SFREQ], fp[_P_PEAK_DELAY]
    dt = 1.0 / sfreq
    shift = peak_delay * sfreq
    tt = buf[_T]
    xx = buf[_X]
    k_up = int(math.floor(up))
    # np.rint rounds half to even, as Python's round
    p_raw = int(min(max(np.rint(p_frac - shift), h0), n_all - 1))
    q_raw = int(min(max(np.rint(q + dq - shift), h0), n_all - 1))
    row[0] = tt[p - b0] + dp * dt - peak_delay
    row[1] = float(int(np.rint(p_frac - shift)) + n_skipped)
    row[2] = tt[q - b0] + dq * dt - peak_delay
    row[3] = peak_val - foot_val
    row[4] = xx[p_raw - b0]  # the raw row holds the input as given (see _detect_block)
    row[5] = xx[q_raw - b0]
    row[6] = tt[end + ip[_P_H2] - b0]
    row[7] = corr
    row[8] = tt[k_up - b0] + (up - k_up) * dt - fp[_P_UP_DELAY]
    return True


@kernel(
    f"int64(float64[:, :], boolean[:], {_RO1}, {_RO_BOOL}, {_RO1}, {_RO1}, int64, int64,"
    " int64[:], float64[:], float64[:], float64[:], int64[:], float64[:], float64[:, :])"
)
def _detect_block(  # pragma: no cover - compiled
    buf, bad_buf, x, bad, f, t, j, n_skipped, ist, fst, template, cycle, ip, fp, rows
):
    """One block of the front end's output through the detector: history, block scan, beats.

    Replaces the numpy form of ``_SignedDetector._feed`` (``y = max(f, 0) ** 2``, the moving
    averages and the offset's running mean with ``lfilter``), ``_scan`` (block condition and its
    changes), ``_close_block`` and ``_trim``.  Writes the block at column ``j`` of ``buf``
    (room made by the caller) and the beats it completes to the first columns of ``rows``
    (9, >= n_samples // 2 + 1), one field per row in ``_FIELDS`` order; returns their number.
    ``bad`` is the non-finite mask of the block, or empty if every sample was finite.
    """
    n = x.shape[0]
    w1, w2 = ip[_P_W1], ip[_P_W2]
    b1, b2 = 1.0 / w1, 1.0 / w2  # the moving averages' coefficients, as lfilter takes them
    sign, beta, alpha = fp[_P_SIGN], fp[_P_BETA], fp[_P_ALPHA]
    a1 = alpha - 1.0
    n0, b0 = ist[_S_N], ist[_S_B0]
    z_off = fst[_S_ZI_OFF]
    yy = buf[_Y]
    for i in range(n):
        c = j + i
        # the band-passed signal of this polarity (negation is exact); the raw row keeps the input
        fv = f[i] if sign > 0 else -f[i]
        buf[_F, c] = fv
        buf[_X, c] = x[i]
        buf[_T, c] = t[i]
        y = fv if fv > 0.0 else 0.0
        y = y * y
        yy[c] = y
        # moving averages of y over the last w1 and w2 samples (zero before the first sample),
        # the oldest first: lfilter's FIR, each output summed over its whole window (lfilter
        # with zi adds the part from earlier chunks separately: the same up to rounding)
        first = n0 + i - (w1 - 1)  # internal index of the oldest sample in the peak window
        tp = 0.0
        for k in range(max(first, 0) - b0, c + 1):
            tp += yy[k] * b1
        first = n0 + i - (w2 - 1)
        tb = 0.0
        for k in range(max(first, 0) - b0, c + 1):
            tb += yy[k] * b2
        # running mean of y: lfilter([alpha], [1, alpha - 1]) in scipy's transposed direct form
        mean_y = z_off + alpha * y
        z_off = y * 0.0 - mean_y * a1
        buf[_TP, c] = tp
        buf[_THR, c] = tb + mean_y * beta  # threshold: beat average plus the offset
        if bad.shape[0]:
            bad_buf[c] = bad[i]
            if bad[i]:
                ist[_S_LAST_BAD] = n0 + i
        else:
            bad_buf[c] = False
    fst[_S_ZI_OFF] = z_off
    ist[_S_LEN] = j + n
    n_all = n0 + n
    ist[_S_N] = n_all
    # scan: the block condition of every sample whose look-ahead is available; each change
    # starts or ends a block
    h1, h2 = ip[_P_H1], ip[_P_H2]
    last_ready = n_all - 1 - h2
    nxt = ist[_S_NEXT]
    n_rows = 0
    if last_ready >= nxt:  # (at most n samples: at most n // 2 + 1 blocks end)
        row = np.empty(9)
        tp_row, thr_row = buf[_TP], buf[_THR]
        for idx in range(nxt, last_ready + 1):
            a = idx - b0
            cond = tp_row[a + h1] > thr_row[a + h2]
            if cond != (ist[_S_IN_BLOCK] != 0):
                if cond:
                    ist[_S_IN_BLOCK] = 1
                    ist[_S_BLOCK_START] = idx
                else:
                    ist[_S_IN_BLOCK] = 0
                    if _close_block(buf, bad_buf, ist[_S_BLOCK_START], idx, n_skipped, template, cycle,
                                    ist, fst, ip, fp, row):
                        rows[:, n_rows] = row
                        n_rows += 1
        nxt = last_ready + 1
        ist[_S_NEXT] = nxt
        if ist[_S_IN_BLOCK] and nxt - ist[_S_BLOCK_START] > ip[_P_MAX_BLOCK] + ip[_P_KEEP]:
            # an endless block (motion, saturation): restart it so the history stays bounded
            ist[_S_BLOCK_START] = nxt - ip[_P_MAX_BLOCK] - 1
    # trim: advance the start of the history that a future beat can need
    keep_from = nxt - ip[_P_KEEP]
    if ist[_S_IN_BLOCK]:
        keep_from = min(keep_from, ist[_S_BLOCK_START] - ip[_P_FOOT] - ip[_P_GUARD] - 2)
    if keep_from > ist[_S_H0]:
        ist[_S_H0] = keep_from
    return n_rows


@kernel(f"int64(float64[:, :], float64[:, ::1], {_RO1}, float64[::1])")
def _front_filter(sos, zi, x, out):  # pragma: no cover - compiled
    """``out[:] = sosfilt(sos, x, zi=zi)`` with ``zi`` (n_sections, 2) updated, if ``x`` is all finite.

    The filtering is :func:`adaptive.filters._sosfilt_rows` (scipy's ``sosfilt`` loop: same
    bits) on ``out`` as one row.  Returns the number of non-finite samples of ``x``; if there
    are any, nothing is filtered (the caller holds them first).
    """
    n_bad = 0
    for i in range(x.shape[0]):
        if not math.isfinite(x[i]):
            n_bad += 1
    if n_bad:
        return n_bad
    out[:] = x
    _sosfilt_rows(sos, out.reshape((1, out.shape[0])), zi.reshape((1, zi.shape[0], 2)))
    return 0


class _FrontEnd:
    """Input stage shared by the detectors of both polarities.

    Skips leading non-finite samples, holds later ones at the last finite value and band-passes,
    always for the positive polarity: negation is exact in floating point (the hold, the
    steady-state start and every multiply-add of the filter commute with it), so the inverted
    detector uses ``-x`` and ``-f`` and gets bit for bit what filtering ``-x`` would give.
    The band-pass is :class:`adaptive.filters.SosFilter`'s (steady-state start at the first
    sample, state carried), computed by the compiled :func:`_front_filter`.
    """

    def __init__(self, sos: FloatArray) -> None:
        self._sos = np.array(sos, dtype=np.float64, order="C")
        self._zi_unit = sosfilt_zi(self._sos)  # (n_sections, 2): steady state per unit input
        self.reset()

    def reset(self) -> None:
        self._zi: FloatArray | None = None  # filter state (n_sections, 2), set by the first sample
        self.started = False
        self.n_skipped = 0  # leading non-finite samples before the first finite one
        self._last_x = math.nan

    def process(
        self, x: FloatArray, t: FloatArray
    ) -> tuple[FloatArray, BoolArray | None, FloatArray, FloatArray] | None:
        """Return (x held, non-finite mask or None if all finite, band-passed x, times), or None."""
        if not self.started:
            finite = np.flatnonzero(np.isfinite(x))
            if finite.size == 0:
                self.n_skipped += x.size
                return None
            self.n_skipped += int(finite[0])
            x, t = x[finite[0] :], t[finite[0] :]
            self.started = True
        if x.size == 0:
            return None
        if self._zi is None:
            self._zi = self._zi_unit * float(x[0])
        f = np.empty(x.shape[0])
        bad: BoolArray | None = None
        if _front_filter(self._sos, self._zi, x, f):  # some sample is not finite: hold it
            bad = ~np.isfinite(x)
            x = _hold(x, self._last_x)
            _front_filter(self._sos, self._zi, x, f)
        self._last_x = float(x[-1])
        return x, bad, f, t


class _SignedDetector:
    """The detector for one fixed polarity (``sign`` = +1 or -1); see :class:`PulseDetector`.

    It is fed by a :class:`_FrontEnd` (held input and band-passed signal of positive polarity).
    History (band-passed and raw signal, times, moving averages, threshold offset) lives in one
    preallocated buffer: ``_ist[_S_H0]`` is the first internal sample index still needed (the
    bounds of every look-back), ``_ist[_S_B0]`` the internal index of the buffer's first column
    (<= the former; the buffer is compacted only when full).  The per-sample work is done by
    the compiled :func:`_detect_block`, on state kept in small arrays (``_ist``, ``_fst``,
    ``_template``, ``_cycle_mean``).
    """

    def __init__(self, sfreq: float, config: PulseConfig, sign: float, front: _FrontEnd | None = None) -> None:
        self._sign = float(sign)
        self.sfreq = check_positive("sfreq", sfreq)
        self.config = config
        cfg = self.config
        if not isinstance(cfg, PulseConfig):
            raise TypeError(f"Invalid value for 'config': expected a PulseConfig, got {type(cfg).__name__}.")
        h_freq = min(cfg.h_freq, 0.45 * self.sfreq)
        if cfg.l_freq >= h_freq:
            raise ValueError(
                f"Invalid value for 'sfreq': expected a rate above {cfg.l_freq / 0.45:g} Hz for the "
                f"{cfg.l_freq:g} Hz high-pass, got {self.sfreq:g} Hz."
            )
        self._sos = design_sos(self.sfreq, l_freq=cfg.l_freq, h_freq=h_freq, order=int(cfg.order))
        #: Delays (s) of the systolic peak and of the steepest rise through the band-pass,
        #: subtracted from the reported times (see :func:`_calibrate_delays`).
        self.peak_delay_s, self.upstroke_delay_s = _cached_delays(
            self._sos.tobytes(), self._sos.shape[0], self.sfreq
        )
        fs = self.sfreq
        self._w1 = max(2, int(round(cfg.peak_window_s * fs)))
        self._w2 = max(self._w1 + 1, int(round(cfg.beat_window_s * fs)))
        self._h1 = (self._w1 - 1) // 2
        self._h2 = (self._w2 - 1) // 2
        self._alpha = 1.0 - math.exp(-1.0 / (cfg.offset_tau_s * fs))
        self._min_int_n = cfg.min_interval_s * fs
        self._max_block_n = int(round(cfg.max_block_s * fs))
        self._foot_n = max(2, int(round(cfg.foot_search_s * fs)))
        self._guard_n = int(round(cfg.bad_guard_s * fs))
        self._tpl_before = max(2, int(round(0.3 * fs)))
        self._tpl_after = max(1, min(int(round(0.3 * fs)), self._h2))
        self._cycle_before = max(2, int(round(0.6 * fs)))
        self._keep_n = max(self._foot_n + 2, self._cycle_before) + self._guard_n + self._w2 + 4
        self._beta = float(cfg.beta)
        self._cap0 = 4 * (self._keep_n + self._max_block_n) + 256
        # the settings as _detect_block reads them (see the _P_* indices)
        self._ip = np.array(
            [self._w1, self._w2, self._h1, self._h2, self._max_block_n, self._foot_n, self._guard_n,
             self._tpl_before, self._tpl_after, self._cycle_before, self._keep_n],
            dtype=np.int64,
        )
        self._fp = np.array(
            [self._sign, self._beta, self._alpha, self._min_int_n, self.sfreq, self.peak_delay_s,
             self.upstroke_delay_s]
        )
        self._own_front = front is None
        self._front = _FrontEnd(self._sos) if front is None else front
        self.reset()

    @property
    def latency_s(self) -> float:
        """Look-ahead of the block comparison in seconds (the minimum emission delay)."""
        return self._h2 / self.sfreq

    def reset(self) -> None:
        """Forget all state; the next sample is treated as the first."""
        if self._own_front:
            self._front.reset()
        # integer and float state, read and written by _detect_block (see the _S_* indices)
        self._ist = np.zeros(_N_ISTATE, dtype=np.int64)
        self._ist[_S_LAST_BAD] = -1  # no non-finite input sample yet
        self._fst = np.zeros(2)
        self._buf = np.empty((_N_ROWS, self._cap0))  # rows _F, _X, _T, _TP, _THR, _Y
        self._bad = np.zeros(self._cap0, dtype=bool)  # input was not finite
        self._rows = np.empty((len(_FIELDS), 64))  # beats found by a block (_detect_block)
        # running mean of z-scored pulses (valid once _S_HAS_TPL is set) and running mean over
        # most of a cycle (polarity evidence; valid once _S_HAS_CYCLE is set)
        self._template = np.zeros(self._tpl_before + self._tpl_after + 1)
        self._cycle_mean = np.zeros(self._cycle_before + self._tpl_after + 1)
        # the cycle is only read while "auto" calibrates (PulseDetector._choose): the owner
        # switches it off afterwards
        self._track_cycle = True

    @property
    def _track_cycle(self) -> bool:
        """Whether the running mean cycle is updated at each beat."""
        return bool(self._ist[_S_TRACK])

    @_track_cycle.setter
    def _track_cycle(self, on: bool) -> None:
        self._ist[_S_TRACK] = 1 if on else 0

    @property
    def _cycle(self) -> FloatArray | None:
        """The running mean cycle (a copy), or None before the first beat that updates it."""
        return self._cycle_mean.copy() if self._ist[_S_HAS_CYCLE] else None

    def push(self, samples: FloatArray, times: FloatArray) -> Beats:
        """Process raw samples with their times and return the beats completed by them.

        Parameters
        ----------
        samples : array of shape (n_times,)
            PPG samples of one channel (NaN for missing samples).
        times : array of shape (n_times,)
            Their times in seconds, increasing.

        Returns
        -------
        beats : Beats
            Beats whose detection completed within these samples (possibly none).
        """
        x = np.asarray(samples, dtype=np.float64).reshape(-1)
        t = np.asarray(times, dtype=np.float64).reshape(-1)
        if x.shape != t.shape:
            raise ValueError(
                f"Invalid value for 'times': expected {x.size} times to match the samples, got {t.size}."
            )
        front = self._front.process(x, t)
        return _EMPTY_BEATS if front is None else self._feed(front)

    def _feed(self, front: tuple[FloatArray, BoolArray | None, FloatArray, FloatArray]) -> Beats:
        """Process one block of the front end's output; return the beats it completes.

        The work (history, moving averages, block scan, beat fiducials, template) is done by
        the compiled :func:`_detect_block`.
        """
        x, bad, f, t = front
        n = x.shape[0]
        j = self._reserve(n)
        rows = self._rows
        if rows.shape[1] < n // 2 + 1:
            rows = self._rows = np.empty((len(_FIELDS), n // 2 + 1))
        n_beats = _detect_block(
            self._buf, self._bad, x, _NO_BAD if bad is None else bad, f, t, j, self._front.n_skipped,
            self._ist, self._fst, self._template, self._cycle_mean, self._ip, self._fp, rows,
        )  # fmt: skip
        if n_beats == 0:
            return _EMPTY_BEATS
        table = rows[:, :n_beats].copy()
        return Beats._from_table(table, table[1].astype(np.int64))

    # -- internals ---------------------------------------------------------------------------
    def _reserve(self, n: int) -> int:
        """Make room for ``n`` more columns; return the column of the first one.

        Columns before the first internal index any look-back may still read (``_S_H0``) are
        dropped when the buffer is full; it grows only if that is not enough.
        """
        ist = self._ist
        length = int(ist[_S_LEN])
        cap = self._buf.shape[1]
        if length + n <= cap:
            return length
        h0 = int(ist[_S_H0])
        drop = h0 - int(ist[_S_B0])  # columns no look-back can reach any more
        live = length - drop
        if live + n > cap:  # grow (a long first chunk, e.g. a whole record)
            new_cap = max(2 * cap, live + n + self._cap0)
            buf = np.empty((_N_ROWS, new_cap))
            bad = np.zeros(new_cap, dtype=bool)
            buf[:, :live] = self._buf[:, drop:length]
            bad[:live] = self._bad[drop:length]
            self._buf, self._bad = buf, bad
        elif drop:
            self._buf[:, :live] = self._buf[:, drop:length].copy()
            self._bad[:live] = self._bad[drop:length].copy()
        ist[_S_B0] = h0
        ist[_S_LEN] = live
        return live


_MAX_CALIB_ROUNDS = 4  # polarity="auto" decides after at most 4 calibration periods ...
_MIN_REGULAR_SHARE = 0.3  # ... or once one polarity has clean intervals over 30 % of the time
_TIE_SHARE = 0.15  # regular times within 15 % count as a tie, broken by the template asymmetry
_SWITCH_RATIO = 1.5  # later, the other polarity 1.5 times as regular for two periods in a row switches
_CATCH_UP_S = 2.0  # the inactive polarity is run every 2 s of samples, in one block


class PulseDetector:
    """Streaming systolic-peak detector for one PPG channel.

    Parameters
    ----------
    sfreq : float
        Sampling rate in Hz.
    config : PulseConfig or None
        Detector settings (defaults if None).

    Notes
    -----
    Latency: a beat is emitted about half a beat window (0.33 s) after its systolic block
    ends, i.e. roughly 0.4-0.7 s after the peak.  With ``polarity="auto"`` (default) the beats of
    the first ``polarity_calib_s`` (30 s) are held back until the polarity is chosen and are then
    emitted together, stamped with the decision time in ``detect_times``; while neither
    polarity shows clean regular beats over 30 % of the time the calibration is repeated, up to
    four periods (2 min), and ``"auto"`` still decides then (a wrong choice keeps the beat
    rate but makes the beat times less precise).  Both polarities keep running afterwards, and
    the detector switches when, in two periods of ``polarity_calib_s`` in a row, the other one
    finds 1.5 times as much regular beat time (e.g. after a noisy start); the interval across a
    switch is irregular.  After calibration the inactive polarity, which only serves that check,
    is run on blocks of 2 s of samples at fixed sample counts instead of on every input chunk
    (a fraction of the per-call cost).  Warm-up: the moving
    averages fill in 0.7 s and the threshold offset settles over ``offset_tau_s``; the first
    beats may be missed.  Leading NaN samples are skipped until the first finite sample (the
    filter starts there); later NaN samples are held at the last finite value and beats near
    them are dropped.  Any split of the input gives the same beats (the state is carried
    sample by sample and the polarity is decided at fixed sample counts).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(0, 40, 1 / 64)
    >>> ppg = reference_pulse(t % 0.8)
    >>> det = PulseDetector(64.0)
    >>> beats = det.push(ppg, t)
    >>> round(float(np.median(np.diff(beats.peak_times))), 3), det.polarity
    (0.8, 'normal')
    >>> det = PulseDetector(64.0)
    >>> beats = det.push(-ppg, t)
    >>> round(float(np.median(np.diff(beats.peak_times))), 3), det.polarity
    (0.8, 'inverted')
    """

    def __init__(self, sfreq: float, config: PulseConfig | None = None) -> None:
        self.config = config if config is not None else PulseConfig()
        if not isinstance(self.config, PulseConfig):
            raise TypeError(f"Invalid value for 'config': expected a PulseConfig, got {type(self.config).__name__}.")
        self.sfreq = check_positive("sfreq", sfreq)
        signs = {"normal": (1.0,), "inverted": (-1.0,), "auto": (1.0, -1.0)}[self.config.polarity]
        first = _SignedDetector(self.sfreq, self.config, signs[0])
        self._front = first._front  # one band-pass for both polarities (see _FrontEnd)
        self._dets = [first] + [_SignedDetector(self.sfreq, self.config, s, self._front) for s in signs[1:]]
        self._calib_n = max(1, int(round(self.config.polarity_calib_s * self.sfreq)))
        # after calibration the inactive polarity catches up in blocks of this many samples
        self._catch_n = max(1, int(round(_CATCH_UP_S * self.sfreq)))
        self.peak_delay_s = self._dets[0].peak_delay_s
        self.upstroke_delay_s = self._dets[0].upstroke_delay_s
        self.reset()

    @property
    def latency_s(self) -> float:
        """Look-ahead of the block comparison in seconds (the minimum emission delay)."""
        return self._dets[0].latency_s

    @property
    def polarity(self) -> str | None:
        """``"normal"`` or ``"inverted"``, or None while ``"auto"`` is still calibrating."""
        if self._k is None:
            return None
        return "normal" if self._dets[self._k]._sign > 0 else "inverted"

    def reset(self) -> None:
        """Forget all state; the next sample is treated as the first."""
        self._front.reset()
        for d in self._dets:
            d.reset()
        self._k: int | None = 0 if len(self._dets) == 1 else None  # active detector
        for d in self._dets:  # the mean cycles only serve the calibration's tie-break
            d._track_cycle = self._k is None
        # front-end output not yet seen by the inactive polarity (auto, after calibration): rows
        # x, f, t of the samples from internal count _def_n0 on, _def_len of them
        self._def_buf = np.empty((3, 4 * self._catch_n + 256))
        self._def_bad = np.zeros(self._def_buf.shape[1], dtype=bool)
        self._def_len = 0
        self._def_n0 = 0
        self._held: list[list[Beats]] = [[] for _ in self._dets]
        self._n = 0
        self._against = 0  # consecutive checks whose evidence favours the other polarity

    def update(self, chunk: Chunk) -> Beats:
        """Process one PPG chunk (first channel) and return the beats completed by it.

        Parameters
        ----------
        chunk : Chunk
            A PPG chunk at this detector's ``sfreq``.

        Returns
        -------
        beats : Beats
            Beats whose detection completed within this chunk (possibly none).

        Raises
        ------
        ValueError
            If the chunk is not PPG or has another sampling rate.
        """
        check_chunk(chunk, kind=SignalKind.PPG, sfreq=self.sfreq, owner="PulseDetector")
        return self.push(chunk.data[0], chunk.times)

    def push(self, samples: FloatArray, times: FloatArray) -> Beats:
        """Process raw samples with their times and return the beats completed by them.

        Parameters
        ----------
        samples : array of shape (n_times,)
            PPG samples of one channel (NaN for missing samples).
        times : array of shape (n_times,)
            Their times in seconds, increasing.

        Returns
        -------
        beats : Beats
            Beats whose detection completed within these samples (possibly none).

        Raises
        ------
        ValueError
            If ``times`` does not match ``samples``.
        """
        x = np.asarray(samples, dtype=np.float64).reshape(-1)
        t = np.asarray(times, dtype=np.float64).reshape(-1)
        if x.shape != t.shape:
            raise ValueError(
                f"Invalid value for 'times': expected {x.size} times to match the samples, got {t.size}."
            )
        if len(self._dets) == 1:
            front = self._front.process(x, t)
            return _EMPTY_BEATS if front is None else self._dets[0]._feed(front)
        out: list[Beats] = []
        start = 0
        while start < x.size:
            stop = min(x.size, start + self._calib_n - (self._n % self._calib_n))
            front = self._front.process(x[start:stop], t[start:stop])
            k_on = self._k
            if k_on is None:  # calibrating: both polarities run on every block
                for k, det in enumerate(self._dets):
                    b = _EMPTY_BEATS if front is None else det._feed(front)
                    if len(b):
                        self._held[k].append(b)
            else:
                b = _EMPTY_BEATS if front is None else self._dets[k_on]._feed(front)
                if len(b):
                    self._held[k_on].append(b)
                    out.append(b)
            n_before = self._n
            self._n += stop - start
            if k_on is not None and front is not None:  # the other polarity catches up later
                self._defer(front, n_before)
            if self._n % self._calib_n == 0:
                if self._k is None:
                    chosen = self._choose(float(t[stop - 1]))
                    if chosen is not None:
                        out.append(chosen)
                else:
                    self._catch_up()
                    self._recheck()
                    self._held = [[] for _ in self._dets]
            start = stop
        return Beats.concatenate(out)

    def _defer(self, front: tuple[FloatArray, BoolArray | None, FloatArray, FloatArray], n_before: int) -> None:
        """Keep a front-end block for the inactive polarity; catch up at every block boundary.

        Blocks are ``_catch_n`` samples counted from each period start (the last one ends at the
        period end), so the inactive detector always sees the same blocks whatever the chunking.
        The samples wait in one append-only buffer (``_def_buf``), fed as views.
        """
        x, bad, f, t = front
        m = x.shape[0]
        if self._def_len == 0:
            self._def_n0 = n_before
        j = self._def_len
        if j + m > self._def_buf.shape[1]:  # (only a chunk longer than a catch-up block)
            grown = np.empty((3, 2 * (j + m)))
            grown[:, :j] = self._def_buf[:, :j]
            grown_bad = np.zeros(grown.shape[1], dtype=bool)
            grown_bad[:j] = self._def_bad[:j]
            self._def_buf, self._def_bad = grown, grown_bad
        buf = self._def_buf
        buf[0, j : j + m] = x
        buf[1, j : j + m] = f
        buf[2, j : j + m] = t
        self._def_bad[j : j + m] = False if bad is None else bad
        self._def_len = j + m
        # every block boundary crossed inside the period: catch up to it (the period-end block is
        # caught up just before the check; a call never crosses a period end)
        period0 = n_before - n_before % self._calib_n
        b = period0 + ((n_before - period0) // self._catch_n + 1) * self._catch_n
        while b <= n_before + m and b - period0 < self._calib_n:
            self._catch_up(b)
            b += self._catch_n

    def _catch_up(self, upto: int | None = None) -> None:
        """Run the inactive polarity over the kept samples up to internal count ``upto`` (all if None)."""
        n = self._def_len if upto is None else upto - self._def_n0
        if n <= 0:
            return
        other = 1 - int(self._k or 0)
        buf, bad = self._def_buf, self._def_bad
        # (an all-False mask gives what None gives)
        b = self._dets[other]._feed((buf[0, :n], bad[:n], buf[1, :n], buf[2, :n]))
        rest = self._def_len - n
        if rest:  # (samples after the boundary, from the same input block)
            buf[:, :rest] = buf[:, n : self._def_len].copy()
            bad[:rest] = bad[n : self._def_len].copy()
        self._def_len = rest
        self._def_n0 += n
        if len(b):
            self._held[other].append(b)

    def _evidence(self) -> float:
        """Template asymmetry of the normal minus the inverted detector (> 0 favours normal)."""
        asym = [_template_asymmetry(d._cycle) for d in self._dets]
        return (asym[0] if math.isfinite(asym[0]) else 0.0) - (asym[1] if math.isfinite(asym[1]) else 0.0)

    def _recheck(self) -> None:
        """Switch polarity after two periods in a row where the other one is clearly more regular."""
        # = _polarity_scores(Beats.concatenate(h), self.config)[0], joining only the two fields it reads
        regular = [
            _regular_seconds(
                _join([b.upstroke_times for b in h]), _join([b.template_corr for b in h]), self.config.min_interval_s
            )
            for h in self._held
        ]
        other = 1 - int(self._k or 0)
        period_s = self._calib_n / self.sfreq
        clearly = regular[other] >= _SWITCH_RATIO * regular[self._k or 0] and regular[other] >= _MIN_REGULAR_SHARE * period_s
        self._against = self._against + 1 if clearly else 0
        if self._against >= 2:
            self._k = other
            self._against = 0
            logger.debug("PPG polarity switched to %s (regular s %s)", self.polarity, regular)

    def _choose(self, t_now: float) -> Beats | None:
        """Pick a polarity; None (calibrate again) if neither has found a steady pulse yet.

        The polarity whose beats are more regular (more seconds of plausible intervals between
        beats matching their template) wins.  When both are about as regular (within 15 %:
        a clean pulse is regular either way up), the pulse shape decides: a finger pulse rises
        faster than it falls, so ``log(steepest rise / steepest fall)`` of the running mean
        cycle (-0.6 to +0.3 s around each beat) of the normal detector minus that of the
        inverted one is positive for the normal polarity; if that is ambiguous too (below
        0.1), normal is kept.
        """
        held = [Beats.concatenate(h) for h in self._held]
        regular = [_regular_seconds(b.upstroke_times, b.template_corr, self.config.min_interval_s) for b in held]
        elapsed_s = self._n / self.sfreq
        final = self._n >= _MAX_CALIB_ROUNDS * self._calib_n
        if max(regular) <= 0.0 or (not final and max(regular) < _MIN_REGULAR_SHARE * elapsed_s):
            return None  # no steady pulse yet (noise, motion, flat start): keep calibrating
        if min(regular) >= (1.0 - _TIE_SHARE) * max(regular):
            evidence = self._evidence()
            k = 1 if evidence <= -0.1 else 0
        else:
            k = int(np.argmax(regular))
        logger.debug("PPG polarity %s chosen (regular s %s)", ("normal", "inverted")[k], regular)
        self._k = k
        for d in self._dets:
            d._track_cycle = False  # _choose, the only reader of the cycles, is done
        beats = held[k]
        self._held = [[] for _ in self._dets]
        return replace(beats, detect_times=np.full(len(beats), t_now))


def _template_asymmetry(template: FloatArray | None) -> float:
    """``log(steepest rise / steepest fall)`` of a mean pulse cycle (NaN without one)."""
    if template is None or template.size < 3:
        return math.nan
    d = np.diff(template)
    rise, fall = float(d.max()), float(-d.min())
    if not (rise > 0 and fall > 0):
        return math.nan
    return math.log(rise / fall)


def _polarity_scores(beats: Beats, config: PulseConfig) -> tuple[float, float]:
    """Regular seconds and median rise share of a polarity's beats.

    Regular seconds: summed plausible intervals (within 30 % of the median) between beats that
    match their template (correlation >= 0.85).  Rise share: median of (peak - foot) / interval
    over those beats; a true pulse rises in well under half the beat (about 0.1-0.35), an
    inverted one "rises" during the slow diastolic decline.
    """
    if len(beats) < 3:
        return 0.0, math.inf
    ibi = np.diff(beats.upstroke_times)
    ok = (ibi >= config.min_interval_s) & (ibi <= 2.0)
    if not ok.any():
        return 0.0, math.inf
    med = float(np.median(ibi[ok]))
    ok &= np.abs(ibi - med) <= 0.3 * med
    corr = np.nan_to_num(beats.template_corr, nan=0.0)
    ok &= (corr[1:] >= 0.85) & (corr[:-1] >= 0.85)
    if not ok.any():
        return 0.0, math.inf
    rise = (beats.peak_times[1:] - beats.trough_times[1:])[ok] / ibi[ok]
    return float(np.sum(ibi[ok])), float(np.median(rise))


def _regular_seconds(upstroke_times: FloatArray, template_corr: FloatArray, min_interval_s: float) -> float:
    """``_polarity_scores(beats, config)[0]`` from the two fields it uses (same number, fewer calls).

    The median is taken of Python floats (the intervals it sees are finite), as ``np.median``
    computes it; NaN correlations fail ``>= 0.85`` as the zeros ``np.nan_to_num`` makes of them do.
    """
    if upstroke_times.shape[0] < 3:
        return 0.0
    ibi = upstroke_times[1:] - upstroke_times[:-1]  # np.diff
    ok = ibi >= min_interval_s
    ok &= ibi <= 2.0
    vals = ibi[ok].tolist()
    if not vals:
        return 0.0
    vals.sort()
    h = len(vals) // 2
    med = vals[h] if len(vals) % 2 else (vals[h - 1] + vals[h]) / 2.0
    ok &= np.abs(ibi - med) <= 0.3 * med
    good = template_corr >= 0.85
    ok &= good[1:]
    ok &= good[:-1]
    kept = ibi[ok]
    return float(np.add.reduce(kept)) if kept.shape[0] else 0.0  # = np.sum


def _join(parts: list[FloatArray]) -> FloatArray:
    """``np.concatenate(parts)`` (an empty array for no parts)."""
    return np.concatenate(parts) if parts else np.zeros(0)


def _hold(x: FloatArray, last: float) -> FloatArray:
    """Replace non-finite samples by the previous finite sample (``last`` before the first)."""
    bad = ~np.isfinite(x)
    idx = np.where(~bad, np.arange(x.size), -1)
    np.maximum.accumulate(idx, out=idx)
    prev = last if math.isfinite(last) else 0.0
    return np.where(idx >= 0, x[np.clip(idx, 0, None)], prev)


def ppg_beats(
    ppg: FloatArray,
    sfreq: float,
    *,
    times: FloatArray | None = None,
    config: PulseConfig | None = None,
) -> Beats:
    """Detect beats in a whole PPG record (the offline twin of :class:`PulseDetector`).

    Parameters
    ----------
    ppg : array of shape (n_times,)
        One PPG channel; NaN marks missing samples.
    sfreq : float
        Sampling rate in Hz.
    times : array of shape (n_times,) or None
        Sample times in seconds; ``arange(n_times) / sfreq`` if None.
    config : PulseConfig or None
        Detector settings.

    Returns
    -------
    beats : Beats
        Every beat found, identical to feeding the record to :class:`PulseDetector` in any
        chunks.  Beats within the last ~0.5 s of the record cannot be confirmed and are absent.

    Raises
    ------
    ValueError
        If ``ppg`` is not 1-D or ``times`` does not match.
    """
    x = np.asarray(ppg, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"Invalid value for 'ppg': expected a 1-D array (n_times,), got shape {x.shape}.")
    sfreq = check_positive("sfreq", sfreq)
    t = np.arange(x.size) / sfreq if times is None else np.asarray(times, dtype=np.float64)
    return PulseDetector(sfreq, config).push(x, t)


def ppg_peaks(ppg: FloatArray, sfreq: float, *, config: PulseConfig | None = None) -> IntArray:
    """Return the sample indices of the systolic peaks of a PPG record.

    Parameters
    ----------
    ppg : array of shape (n_times,)
        One PPG channel.
    sfreq : float
        Sampling rate in Hz.
    config : PulseConfig or None
        Detector settings.

    Returns
    -------
    peaks : array of int of shape (n_beats,)
        Nearest sample of each systolic peak (see :func:`ppg_beats` for sub-sample times).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(0, 20, 1 / 64)
    >>> s = np.sin(2 * np.pi * 1.25 * t)
    >>> peaks = ppg_peaks(s**15 * (s > 0), 64.0)
    >>> bool(np.all(np.abs(np.diff(peaks) - 51.2) <= 1))
    True
    """
    return ppg_beats(ppg, sfreq, config=config).peak_samples
