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
step runs sample by sample with carried state (``sosfilt``/``lfilter`` with ``zi``), so the beats
do not depend on how the input is split into chunks.

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

from ._checks import check_chunk, check_option, check_positive
from .filters import SosFilter, _fir_zi, _iir_zi, design_sos
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

_add_reduce = np.add.reduce

#: The record with no beats, shared (immutable) by every detector call that finds none.
_EMPTY_BEATS = Beats.empty()


def _parabolic(ym: float, y0: float, yp: float) -> tuple[float, float]:
    """Offset in samples (-0.5..0.5) and value of the vertex through three samples."""
    denom = ym - 2.0 * y0 + yp
    if denom == 0.0 or not math.isfinite(denom):
        return 0.0, y0
    delta = 0.5 * (ym - yp) / denom
    delta = min(0.5, max(-0.5, delta))
    return delta, y0 - 0.25 * (ym - yp) * delta


def _steepest(y: FloatArray) -> float:
    """Fractional index of the steepest rise of ``y`` (first difference, parabolic)."""
    d = y[1:] - y[:-1]  # np.diff
    k = int(d.argmax())
    if 0 < k < d.size - 1:
        off, _ = _parabolic(*d[k - 1 : k + 2].tolist())
    else:
        off = 0.0
    return k + 0.5 + off


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


# Rows of a detector's history buffer (see _SignedDetector._reserve): band-passed and raw
# signal, times, peak moving average, and the threshold (beat moving average plus offset).
_F, _X, _T, _TP, _THR = range(5)
_N_ROWS = 5


class _FrontEnd:
    """Input stage shared by the detectors of both polarities.

    Skips leading non-finite samples, holds later ones at the last finite value and band-passes,
    always for the positive polarity: negation is exact in floating point (the hold, the
    steady-state start and every multiply-add of the filter commute with it), so the inverted
    detector uses ``-x`` and ``-f`` and gets bit for bit what filtering ``-x`` would give.
    """

    def __init__(self, sos: FloatArray) -> None:
        self._sos = sos
        self.reset()

    def reset(self) -> None:
        self._filter = SosFilter(self._sos)
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
        bad: BoolArray | None = None
        if not math.isfinite(float(_add_reduce(x))):  # a finite sum proves every sample finite
            mask = ~np.isfinite(x)
            if mask.any():
                bad = mask
                x = _hold(x, self._last_x)
        self._last_x = float(x[-1])
        return x, bad, self._filter.process_row(x), t


class _SignedDetector:
    """The detector for one fixed polarity (``sign`` = +1 or -1); see :class:`PulseDetector`.

    It is fed by a :class:`_FrontEnd` (held input and band-passed signal of positive polarity).
    History (band-passed and raw signal, times, moving averages, threshold offset) lives in one
    preallocated buffer: ``_h0`` is the first internal sample index still needed (the bounds
    of every look-back), ``_b0`` the internal index of the buffer's first column (<= ``_h0``;
    the buffer is compacted only when full).
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
        # filter coefficients exactly as scipy.signal.lfilter would use them
        self._b1 = np.full(self._w1, 1.0 / self._w1)
        self._b2 = np.full(self._w2, 1.0 / self._w2)
        self._b1_rev = self._b1[::-1].copy()
        self._b2_rev = self._b2[::-1].copy()
        self._beta = float(cfg.beta)
        self._b_off = np.array([self._alpha])
        self._a_off = np.array([1.0, self._alpha - 1.0])
        self._cap0 = 4 * (self._keep_n + self._max_block_n) + 256
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
        self._zi1 = np.zeros(self._w1 - 1)
        self._zi2 = np.zeros(self._w2 - 1)
        self._zi_off = np.zeros(1)
        self._n = 0  # samples processed since the start (internal index)
        self._h0 = 0  # first internal index that any later look-back may read
        self._b0 = 0  # internal index of the buffer's first column
        self._len = 0  # buffer columns in use
        self._buf = np.empty((_N_ROWS, self._cap0))  # rows _F, _X, _T, _TP, _THR
        self._bad = np.zeros(self._cap0, dtype=bool)  # input was not finite
        self._next = 0  # next internal index whose block condition is evaluated
        self._last_bad = -1  # internal index of the last non-finite input sample (-1: none yet)
        self._in_block = False
        self._block_start = 0
        self._last_peak: float | None = None  # fractional internal index of the last peak
        self._template: FloatArray | None = None  # running mean of z-scored pulses
        self._cycle: FloatArray | None = None  # running mean over most of a cycle (polarity)
        # the cycle is only read while "auto" calibrates (PulseDetector._choose): the owner
        # switches it off afterwards
        self._track_cycle = True

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
        """Process one block of the front end's output; return the beats it completes."""
        x, bad, f, t = front
        n = x.shape[0]
        j = self._reserve(n)
        k = j + n
        buf = self._buf
        # the band-passed signal of this polarity goes straight into the history (negated on
        # the way for the inverted one: one call instead of negating and copying); the raw row
        # keeps the input's own polarity (the obvious form stored -x and multiplied the two
        # samples read per beat by the sign again: the same numbers, negation being exact)
        f_row = buf[_F, j:k]
        if self._sign < 0:
            np.negative(f, out=f_row)
        else:
            f_row[...] = f
        y = np.maximum(f_row, 0.0)
        y *= y
        tp, self._zi1 = _fir_zi(self._b1, y, self._zi1, self._b1_rev)
        tb, self._zi2 = _fir_zi(self._b2, y, self._zi2, self._b2_rev)
        mean_y, self._zi_off = _iir_zi(self._b_off, self._a_off, y, self._zi_off)
        buf[_X, j:k] = x
        buf[_T, j:k] = t
        buf[_TP, j:k] = tp
        # threshold = beat average + beta * running mean (the same sum the scan used to form)
        mean_y *= self._beta
        np.add(tb, mean_y, out=buf[_THR, j:k])
        if bad is None:
            self._bad[j:k] = False
        else:
            self._bad[j:k] = bad
            hits = bad.nonzero()[0]
            if hits.size:
                self._last_bad = self._n + int(hits[-1])  # internal index of the last one
        self._len = k
        self._n += n
        beats = self._scan()
        self._trim()
        return beats

    # -- internals ---------------------------------------------------------------------------
    def _reserve(self, n: int) -> int:
        """Make room for ``n`` more columns; return the column of the first one."""
        cap = self._buf.shape[1]
        if self._len + n <= cap:
            return self._len
        drop = self._h0 - self._b0  # columns no look-back can reach any more
        live = self._len - drop
        if live + n > cap:  # grow (a long first chunk, e.g. a whole record)
            new_cap = max(2 * cap, live + n + self._cap0)
            buf = np.empty((_N_ROWS, new_cap))
            bad = np.zeros(new_cap, dtype=bool)
            buf[:, :live] = self._buf[:, drop : self._len]
            bad[:live] = self._bad[drop : self._len]
            self._buf, self._bad = buf, bad
        elif drop:
            self._buf[:, :live] = self._buf[:, drop : self._len].copy()
            self._bad[:live] = self._bad[drop : self._len].copy()
        self._b0 = self._h0
        self._len = live
        return live

    def _scan(self) -> Beats:
        """Evaluate the block condition on every sample whose look-ahead is available."""
        last_ready = self._n - 1 - self._h2
        nxt = self._next
        if last_ready < nxt:
            return _EMPTY_BEATS
        m = last_ready + 1 - nxt
        a = nxt - self._b0
        buf = self._buf
        lo, hi = a + self._h2, a + self._h2 + m
        cond = buf[_TP, a + self._h1 : a + self._h1 + m] > buf[_THR, lo:hi]
        # every change of the condition starts or ends a block; blocks alternate
        rows: list[tuple[float, ...]] = []
        # no event when the condition stays as it was (the usual case: between systolic blocks)
        if (not cond.all()) if self._in_block else cond.any():
            events = [i + 1 for i in (cond[1:] != cond[:-1]).nonzero()[0].tolist()]  # np.flatnonzero
            if bool(cond[0]) != self._in_block:
                events.insert(0, 0)
            for i in events:
                n = nxt + i
                if not self._in_block:
                    self._in_block = True
                    self._block_start = n
                else:
                    self._in_block = False
                    row = self._close_block(self._block_start, n)
                    if row is not None:
                        rows.append(row)
        self._next = last_ready + 1
        if self._in_block and self._next - self._block_start > self._max_block_n + self._keep_n:
            # an endless block (motion, saturation): restart it so the history stays bounded
            self._block_start = self._next - self._max_block_n - 1
        if not rows:
            return _EMPTY_BEATS
        table = np.array(list(zip(*rows)), dtype=np.float64)  # (9, n_beats), one row per field
        samples = table[1].astype(np.int64)
        return Beats._from_table(table, samples)

    def _close_block(self, start: int, end: int) -> tuple[float, ...] | None:
        """Turn the block [start, end) into a beat row, or None if it is not a beat."""
        width = end - start
        if width < self._w1 or width > self._max_block_n:
            return None
        h0, b0 = self._h0, self._b0
        f = self._buf[_F]
        p = start + int(f[start - b0 : end - b0].argmax())
        if p - 1 < h0:
            return None
        dp, peak_val = _parabolic(*f[p - 1 - b0 : p + 2 - b0].tolist())  # Python floats: same bits, faster
        p_frac = p + dp
        if self._last_peak is not None and p_frac - self._last_peak < self._min_int_n:
            return None
        lo = max(h0 + 1, p - self._foot_n)
        if self._last_peak is not None:
            lo = max(lo, int(math.floor(self._last_peak)) + 1)
        if lo >= p:
            return None
        q = lo + int(f[lo - b0 : p - b0].argmin())
        dq, foot_val = _parabolic(*f[q - 1 - b0 : q + 2 - b0].tolist())
        up = q + _steepest(f[q - b0 : p + 2 - b0])
        g0 = max(h0, q - self._guard_n)
        # the slice is only read when a non-finite sample was seen that late (rare)
        if self._last_bad >= g0 and self._bad[g0 - b0 : end + 1 - b0].any():
            self._last_peak = p_frac
            return None
        self._last_peak = p_frac
        corr = self._template_corr(p)
        dt = 1.0 / self.sfreq
        shift = self.peak_delay_s * self.sfreq
        tt = self._buf[_T]
        peak_time = float(tt[p - b0]) + dp * dt - self.peak_delay_s
        foot_time = float(tt[q - b0]) + dq * dt - self.peak_delay_s
        k_up = int(math.floor(up))
        up_time = float(tt[k_up - b0]) + (up - k_up) * dt - self.upstroke_delay_s
        p_raw = int(min(max(round(p_frac - shift), h0), self._n - 1))
        q_raw = int(min(max(round(q + dq - shift), h0), self._n - 1))
        detect_time = tt[end + self._h2 - b0]
        xx = self._buf[_X]
        return (
            float(peak_time),
            float(int(round(p_frac - shift)) + self._front.n_skipped),
            float(foot_time),
            float(peak_val - foot_val),
            float(xx[p_raw - b0]),  # the raw row holds the input as given (see _feed)
            float(xx[q_raw - b0]),
            float(detect_time),
            corr,
            float(up_time),
        )

    def _template_corr(self, p: int) -> float:
        """Correlate the pulse around sample ``p`` with the running template, then update it."""
        if p - self._cycle_before < self._h0:
            return math.nan
        b0 = self._b0
        f = self._buf[_F]
        if self._track_cycle:
            cyc = f[p - self._cycle_before - b0 : p + self._tpl_after + 1 - b0]
            self._cycle = cyc.copy() if self._cycle is None else 0.9 * self._cycle + 0.1 * cyc
        seg = f[p - self._tpl_before - b0 : p + self._tpl_after + 1 - b0]
        # (seg - mean) / sd with numpy's mean and std arithmetic (same bits), sharing seg - mean
        n = seg.shape[0]
        z = seg - np.add.reduce(seg) / n
        sq = z * z
        sd = math.sqrt(np.add.reduce(sq) / n)
        if not sd > 0.0:
            return 0.0
        z /= sd
        if self._template is None:
            self._template = z
            return math.nan
        tpl = self._template
        d = tpl - np.add.reduce(tpl) / n  # tpl.std(), as numpy computes it (same bits)
        d *= d
        sd_tpl = math.sqrt(np.add.reduce(d) / n)
        corr = float(np.dot(z, tpl) / (z.size * max(sd_tpl, 1e-12)))
        corr = min(1.0, max(-1.0, corr))
        weight = 0.1 if corr > 0.5 else 0.02  # artefacts barely move the template
        tpl = (1.0 - weight) * self._template
        z *= weight
        tpl += z
        tpl -= np.add.reduce(tpl) / tpl.shape[0]  # = tpl.mean(), same bits
        self._template = tpl
        return corr

    def _trim(self) -> None:
        """Advance the start of the history that a future beat can need."""
        keep_from = self._next - self._keep_n
        if self._in_block:
            keep_from = min(keep_from, self._block_start - self._foot_n - self._guard_n - 2)
        if keep_from > self._h0:
            self._h0 = keep_from


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
    (a fraction of the per-call cost; its beats can differ from chunk-by-chunk processing only
    by floating-point rounding of the moving averages).  Warm-up: the moving
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
        # front-end blocks not yet seen by the inactive polarity (auto, after calibration)
        self._deferred: list[tuple[FloatArray, BoolArray | None, FloatArray, FloatArray]] = []
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
        """Queue a front-end block for the inactive polarity; catch up at every block boundary.

        Blocks are ``_catch_n`` samples counted from each period start (the last one ends at the
        period end), so the inactive detector always sees the same blocks whatever the chunking.
        """
        x, bad, f, t = front
        pos, n = 0, n_before
        while pos < x.size:
            in_period = n % self._calib_n
            take = min(x.size - pos, self._catch_n - in_period % self._catch_n, self._calib_n - in_period)
            part = slice(pos, pos + take)
            self._deferred.append((_kept(x[part]), None if bad is None else bad[part].copy(), f[part], _kept(t[part])))
            pos += take
            n += take
            if (n % self._calib_n) % self._catch_n == 0 and n % self._calib_n != 0:
                self._catch_up()  # the period-end block is caught up just before the check

    def _catch_up(self) -> None:
        """Run the inactive polarity over the deferred blocks (a few seconds of samples)."""
        if not self._deferred:
            return
        other = 1 - int(self._k or 0)
        b = self._dets[other]._feed(_join_fronts(self._deferred))
        self._deferred = []
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


def _kept(a: FloatArray) -> FloatArray:
    """``a`` to keep for later: itself if read-only (views of a chunk's frozen arrays), else a copy."""
    return a if not a.flags.writeable else a.copy()


def _join_fronts(
    fronts: list[tuple[FloatArray, BoolArray | None, FloatArray, FloatArray]],
) -> tuple[FloatArray, BoolArray | None, FloatArray, FloatArray]:
    """Concatenate front-end blocks in order."""
    if len(fronts) == 1:
        return fronts[0]
    xs, bads, fs, ts = zip(*fronts, strict=True)
    bad = None
    if any(b is not None for b in bads):
        bad = np.concatenate([np.zeros(x.size, dtype=bool) if b is None else b for x, b in zip(xs, bads, strict=True)])
    return np.concatenate(xs), bad, np.concatenate(fs), np.concatenate(ts)


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
