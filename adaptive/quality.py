"""Signal-quality scores (0 = unusable, 1 = clean) for PPG and accelerometer streams.

PPG quality of a window (:func:`ppg_window_quality`) is the product of

* ``1 - nan_share``: share of missing samples;
* ``1 - flat_share``: share of samples inside runs of identical values lasting at least
  ``flat_run_s`` (a stuck or disconnected sensor; real PPG never repeats exactly that long);
* ``1 - clip_share``: share of samples sitting on the window's maximum or minimum when that
  value occurs at least ``min_clip_samples`` times (a saturated ADC or optical front end);
* the *clean-beat coverage*: the summed duration of clean inter-beat intervals (plausible,
  no sudden jump, both beats correlating >= 0.85 with the running pulse template; see
  :mod:`adaptive.cardiac`) divided by the window length.  It captures noise, motion
  artefacts, arrhythmic detection and low perfusion (no detectable pulse).

Accelerometer quality (:func:`accel_window_quality`) measures motion: the total standard
deviation of the axes over the window (``sqrt(sum of per-axis variances)``, in g).  Up to
``still_g`` (0.02 g: breathing and small postural sway of a seated person) the quality is 1;
it falls linearly to 0 at ``moving_g`` (0.2 g: nodding, talking with gestures, walking).
Missing, flat (stuck) and clipped samples lower it as for PPG.  Heavy head or wrist motion
corrupts PPG and EEG, so consumers multiply their own quality by ``QUALITY_ACCEL``
(:func:`combine_quality`).

Bad data lowers quality and never raises; a wrong call (wrong kind, rate or channel count)
raises ``ValueError`` through :func:`adaptive._checks.check_chunk`.

Speed: windows without missing samples (the usual case) are scored by compiled kernels
(:mod:`adaptive._jit`: :func:`_ppg_quality_finite`, :func:`_accel_quality_kernel`) with the
numpy form's arithmetic (sums in numpy's pairwise order, :func:`_pairwise_sum`): the same
bits.  Windows with missing samples take the numpy form.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ._checks import check_chunk, check_positive
from ._jit import kernel
from .types import Chunk, Estimate, FloatArray, Metric, SignalKind

if TYPE_CHECKING:
    from .cardiac import CardiacConfig, EstimateSeries, Intervals

__all__ = [
    "AccelQualityConfig",
    "AccelQualityMonitor",
    "PpgQualityMonitor",
    "accel_quality",
    "accel_window_quality",
    "clip_share",
    "combine_quality",
    "flat_share",
    "ppg_quality",
    "ppg_window_quality",
]

logger = logging.getLogger(__name__)


# -- compiled kernels -------------------------------------------------------------------------------------
# Input arrays are declared read-only (any layout): writeable arrays match too, and the
# streaming windows are read-only views.
_RO1 = "Array(float64, 1, 'A', readonly=True)"
_RO2 = "Array(float64, 2, 'A', readonly=True)"

@kernel(f"float64({_RO1}, int64, int64)")
def _pairwise_sum(a, lo, n):  # pragma: no cover - compiled
    """``np.add.reduce(a[lo : lo + n])`` with numpy's own pairwise summation (same bits)."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    if n <= 128:  # numpy's PW_BLOCKSIZE: eight running sums, then the remainder
        r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
        r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
        i = 8
        m = n - n % 8
        while i < m:
            j = lo + i
            r0 += a[j]
            r1 += a[j + 1]
            r2 += a[j + 2]
            r3 += a[j + 3]
            r4 += a[j + 4]
            r5 += a[j + 5]
            r6 += a[j + 6]
            r7 += a[j + 7]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            res += a[lo + i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise_sum(a, lo, n2) + _pairwise_sum(a, lo + n2, n - n2)


@kernel(f"float64({_RO1}, int64)")
def _flat_samples(x, min_run):  # pragma: no cover - compiled
    """``flat_share(x, min_run) * x.size`` for finite ``x`` (n >= 2, min_run >= 2): samples in flat runs."""
    total = 0
    run = 0  # repeats in the current run of identical values
    for i in range(1, x.shape[0]):
        if x[i] == x[i - 1]:
            run += 1
        else:
            if run + 1 >= min_run:
                total += run + 1
            run = 0
    if run + 1 >= min_run and run > 0:
        total += run + 1
    return float(total)


@kernel(f"int64({_RO1}, int64)")
def _clip_count(x, min_count):  # pragma: no cover - compiled
    """``clip_share(x, min_count) * x.size`` for non-empty finite ``x``: samples on a repeated extreme."""
    hi = x[0]
    lo = x[0]
    for i in range(1, x.shape[0]):
        v = x[i]
        if v > hi:
            hi = v
        if v < lo:
            lo = v
    c_hi = 0
    c_lo = 0
    for i in range(x.shape[0]):
        if x[i] == hi:
            c_hi += 1
        if x[i] == lo:
            c_lo += 1
    total = c_hi if c_hi >= min_count else 0
    if hi != lo and c_lo >= min_count:
        total += c_lo
    return total


@kernel("float64(float64)")
def _unit(v):  # pragma: no cover - compiled
    """One factor of :func:`combine_quality`: ``0.0 if isnan(v) else min(1.0, max(0.0, v))``."""
    if v != v:
        return 0.0
    v = v if v > 0.0 else 0.0  # Python's max(0.0, v) keeps the first of equals
    return v if v < 1.0 else 1.0


@kernel(f"float64({_RO1}, int64, int64, float64)")
def _ppg_quality_finite(x, run, min_clip, coverage):  # pragma: no cover - compiled
    """:func:`ppg_window_quality` of a non-empty window; NaN if a sample is not finite (then use numpy)."""
    n = x.shape[0]
    for i in range(n):
        if not math.isfinite(x[i]):
            return math.nan
    flat = _flat_samples(x, run) / n if n >= 2 else 0.0
    clip = _clip_count(x, min_clip) / n
    # = combine_quality(1.0, 1.0 - flat, 1.0 - clip, coverage)
    return _unit(1.0 - flat) * _unit(1.0 - clip) * _unit(coverage)


@kernel(f"float64({_RO2}, int64, int64, float64, float64)")
def _accel_quality_kernel(x, run, min_clip, still_g, moving_g):  # pragma: no cover - compiled
    """Quality of :func:`_accel_quality_finite` of a window (n_rows, n >= 2); -1 if a sample is not finite."""
    n_rows, n = x.shape
    for r in range(n_rows):
        for i in range(n):
            if not math.isfinite(x[r, i]):
                return -1.0
    # np.var of each row as numpy computes it (pairwise sums), summed in row order
    var = 0.0
    d = np.empty(n)
    for r in range(n_rows):
        row = x[r]
        mean = _pairwise_sum(row, 0, n) / n
        for i in range(n):
            v = row[i] - mean
            d[i] = v * v
        var += _pairwise_sum(d, 0, n) / n
    motion = math.sqrt(var) if var == var else math.nan
    flat = 0.0
    clip = 0.0
    for r in range(n_rows):
        flat = max(flat, _flat_samples(x[r], run) / n)
        clip = max(clip, _clip_count(x[r], min_clip) / n)
    if motion != motion:
        return 0.0
    q_motion = _unit(1.0 - (motion - still_g) / (moving_g - still_g))
    return 1.0 * _unit(1.0 - flat) * _unit(1.0 - clip) * q_motion


def flat_share(x: FloatArray, min_run: int) -> float:
    """Share of samples of ``x`` (1-D) in runs of at least ``min_run`` identical finite values."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if x.size < 2 or min_run < 2:
        return 0.0
    same = x[1:] == x[:-1]
    # a qualifying run holds min_run - 1 repeats: fewer repeats in all means none (the usual
    # case: no or only short repeats; NaN never equals itself)
    if int(np.count_nonzero(same)) < min_run - 1:
        return 0.0
    same &= np.isfinite(x[1:])
    if not same.any():
        return 0.0
    # run lengths of consecutive True in `same`; a run of k True covers k + 1 samples
    padded = np.concatenate([[False], same, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    starts, stops = edges[::2], edges[1::2]
    lengths = stops - starts + 1
    return float(np.sum(lengths[lengths >= min_run])) / x.size


def clip_share(x: FloatArray, min_count: int) -> float:
    """Share of samples of ``x`` (1-D) on its maximum or minimum when either repeats ``min_count`` times."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    fin = x if _all_finite(x) else x[np.isfinite(x)]
    if fin.size == 0:
        return 0.0
    total = 0
    hi, lo = float(fin.max()), float(fin.min())
    for v in (hi, lo) if hi != lo else (hi,):
        c = int(np.count_nonzero(fin == v))
        if c >= min_count:
            total += c
    return total / x.size


def _all_finite(x: FloatArray) -> bool:
    """True if every sample is finite: a finite sum proves it (NaN and inf propagate)."""
    return math.isfinite(float(x.sum())) or bool(np.all(np.isfinite(x)))


def combine_quality(*qualities: float) -> float:
    """Combine independent quality factors (product; NaN counts as 0)."""
    q = 1.0
    for v in qualities:
        v = float(v)
        q *= 0.0 if math.isnan(v) else min(1.0, max(0.0, v))
    return q


def ppg_window_quality(
    window: FloatArray,
    sfreq: float,
    clean_coverage: float,
    *,
    flat_run_s: float = 0.25,
    min_clip_samples: int = 3,
) -> float:
    """Quality 0..1 of one PPG window.

    Parameters
    ----------
    window : array of shape (n_times,)
        Raw PPG samples (NaN where missing).
    sfreq : float
        Sampling rate in Hz.
    clean_coverage : float
        Clean-interval coverage of the window, 0..1 (see the module notes).
    flat_run_s : float
        Shortest run of identical values counted as flat.
    min_clip_samples : int
        Least number of samples on the extreme value counted as clipping.

    Returns
    -------
    quality : float
    """
    x = window
    if type(x) is not np.ndarray or x.ndim != 1 or x.dtype != np.float64:  # (the streaming windows are)
        x = np.asarray(window, dtype=np.float64).reshape(-1)
    n = x.shape[0]
    if n == 0:
        return 0.0
    run = max(2, int(round(flat_run_s * sfreq)))
    # every sample finite (the usual case): the shares in one compiled pass (NaN otherwise)
    q = _ppg_quality_finite(x, run, int(min_clip_samples), float(clean_coverage))
    if q == q:
        return q
    # some sample is missing
    nan_share = float(np.mean(~np.isfinite(x)))
    flat = flat_share(x, run)
    clip = clip_share(x, min_clip_samples)
    return combine_quality(1.0 - nan_share, 1.0 - flat, 1.0 - clip, clean_coverage)


_add_reduce = np.add.reduce
_max_reduce = np.maximum.reduce
_min_reduce = np.minimum.reduce


def accel_window_quality(
    window: FloatArray,
    sfreq: float,
    *,
    still_g: float = 0.02,
    moving_g: float = 0.2,
    flat_run_s: float = 0.5,
    min_clip_samples: int = 3,
) -> tuple[float, float]:
    """Quality 0..1 and motion (g) of one accelerometer window.

    Parameters
    ----------
    window : array of shape (n_channels, n_times)
        Accelerations in g (NaN where missing).
    sfreq : float
        Sampling rate in Hz.
    still_g, moving_g : float
        Motion (total SD in g) at which quality starts to fall and reaches 0.
    flat_run_s : float
        Shortest run of identical values counted as a stuck sensor.
    min_clip_samples : int
        Least number of samples on an axis' extreme value counted as clipping.

    Returns
    -------
    quality : float
    motion_g : float
        Total standard deviation of the axes (NaN if no finite samples).
    """
    x = np.asarray(window, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] == 0:
        return 0.0, math.nan
    if x.shape[1] >= 2 and _all_finite(x):
        return _accel_quality_finite(x, sfreq, still_g, moving_g, flat_run_s, min_clip_samples)
    finite = np.isfinite(x)
    nan_share = float(1.0 - np.mean(np.all(finite, axis=0)))
    var = 0.0
    for row, ok in zip(x, finite, strict=True):
        if ok.sum() >= 2:
            var += float(np.var(row[ok]))
    motion = math.sqrt(var) if finite.any() else math.nan
    run = max(2, int(round(flat_run_s * sfreq)))
    flat = max(flat_share(row, run) for row in x)
    clip = max(clip_share(row, min_clip_samples) for row in x)
    if math.isnan(motion):
        return 0.0, motion
    q_motion = min(1.0, max(0.0, 1.0 - (motion - still_g) / (moving_g - still_g)))
    return combine_quality(1.0 - nan_share, 1.0 - flat, 1.0 - clip, q_motion), motion


def _accel_quality_finite(
    x: FloatArray,
    sfreq: float,
    still_g: float,
    moving_g: float,
    flat_run_s: float,
    min_clip_samples: int,
    row_sums: FloatArray | None = None,
) -> tuple[float, float]:
    """:func:`accel_window_quality` of a window without missing samples (same numbers, row-vectorised).

    ``row_sums``, if given, is ``np.add.reduce(x, axis=1, keepdims=True)`` (a fresh array).
    """
    # np.var(x, axis=1) written out as numpy computes it (same bits, without the wrapper)
    n = x.shape[1]
    d = _add_reduce(x, axis=1, keepdims=True) if row_sums is None else row_sums
    d /= n
    d = x - d
    d *= d
    var = 0.0
    for v in (_add_reduce(d, axis=1) / n).tolist():  # summed in row order, as the general path does
        var += v
    motion = math.sqrt(var) if var == var else math.nan  # NaN only from overflowing finite values
    run = max(2, int(round(flat_run_s * sfreq)))
    flat = _max_flat_share(x, run)
    hi = _max_reduce(x, axis=1)
    lo = _min_reduce(x, axis=1)
    # np.count_nonzero(..., axis=1), without its wrapper
    n_hi = _add_reduce(x == hi[:, np.newaxis], axis=1, dtype=np.intp).tolist()
    n_lo = _add_reduce(x == lo[:, np.newaxis], axis=1, dtype=np.intp).tolist()
    clip = 0.0
    for h, l_, c_hi, c_lo in zip(hi.tolist(), lo.tolist(), n_hi, n_lo, strict=True):
        total = c_hi if c_hi >= min_clip_samples else 0
        if h != l_ and c_lo >= min_clip_samples:
            total += c_lo
        clip = max(clip, total / n)
    if math.isnan(motion):
        return 0.0, motion
    q_motion = min(1.0, max(0.0, 1.0 - (motion - still_g) / (moving_g - still_g)))
    return combine_quality(1.0, 1.0 - flat, 1.0 - clip, q_motion), motion


def _max_flat_share(x: FloatArray, min_run: int) -> float:
    """``max(flat_share(row, min_run) for row in x)`` for finite ``x`` (n_rows, n >= 2), all rows at once.

    Each row is padded with a False on both sides, so in the flattened mask every run of
    repeats starts and ends inside its own row; the run lengths are integers, summed exactly.
    """
    same = x[:, 1:] == x[:, :-1]
    # a run of min_run samples holds min_run - 1 repeats in one row: rows with fewer repeats in
    # all have none (the usual case, also for quantised signals with short repeats)
    if int(_max_reduce(_add_reduce(same, axis=1, dtype=np.intp))) < min_run - 1:
        return 0.0
    n_rows, n = x.shape
    padded = np.zeros((n_rows, n + 1), dtype=bool)
    padded[:, 1:-1] = same
    flat = padded.reshape(-1)
    edges = np.flatnonzero(flat[1:] != flat[:-1])
    starts, stops = edges[::2], edges[1::2]
    lengths = stops - starts + 1
    keep = lengths >= min_run
    if not keep.any():
        return 0.0
    per_row = np.bincount(starts[keep] // (n + 1), weights=lengths[keep], minlength=n_rows)
    return float(per_row.max()) / n


# -- PPG --------------------------------------------------------------------------------------------------
class PpgQualityMonitor:
    """Streaming PPG quality (``QUALITY_PPG``) on fixed hops.

    Parameters
    ----------
    sfreq : float
        PPG sampling rate in Hz.
    window_s : float
        Window of each score (8 s: several beats, short enough to follow motion).
    config : CardiacConfig or None
        Beat detection and interval rules (its ``hop_s`` sets the hop).

    Notes
    -----
    The first ``window_s`` counts missing samples as NaN, so quality starts low (warm-up).
    Output does not depend on chunking.  The estimate's ``value`` is the quality; its own
    ``quality`` field is 1.
    """

    def __init__(self, sfreq: float, window_s: float = 8.0, config: CardiacConfig | None = None) -> None:
        from .cardiac import CardiacConfig, _BeatHopper  # cardiac imports this module

        cfg = config if config is not None else CardiacConfig()
        self.window_s = check_positive("window_s", window_s)
        self._hopper = _BeatHopper(sfreq, cfg, self.window_s + 5.0, "PpgQualityMonitor", raw_window_s=self.window_s)
        self.sfreq = self._hopper.sfreq

    def reset(self) -> None:
        """Forget all state."""
        self._hopper.reset()

    def update(self, chunk: Chunk) -> list[Estimate]:
        """Process a PPG chunk; return one ``QUALITY_PPG`` estimate per completed hop.

        Raises
        ------
        ValueError
            If the chunk is not PPG or has another sampling rate.
        """
        from .cardiac import _window

        x, t = self._hopper._samples(chunk)
        out = []
        for t_hop, iv, raw in self._hopper._push_raw(x, t):
            q = _ppg_quality_value(raw, self.sfreq, _window(iv, t_hop, self.window_s), self.window_s)
            out.append(Estimate._trusted(Metric.QUALITY_PPG, q, 1.0, t_hop))
        return out


def _ppg_quality_value(raw: FloatArray, sfreq: float, iv_window: Intervals, window_s: float) -> float:
    """PPG quality of one window: signal penalties times the clean-interval coverage."""
    clean_ibi = iv_window.ibi_s[iv_window.clean]
    coverage = min(1.0, float(np.sum(clean_ibi)) / window_s)
    return ppg_window_quality(raw, sfreq, coverage)


def ppg_quality(
    ppg: FloatArray,
    sfreq: float,
    *,
    window_s: float = 8.0,
    times: FloatArray | None = None,
    config: CardiacConfig | None = None,
) -> EstimateSeries:
    """PPG quality of a whole record on the hop grid (offline twin of :class:`PpgQualityMonitor`).

    Parameters
    ----------
    ppg : array of shape (n_times,)
        One PPG channel.
    sfreq : float
        Sampling rate in Hz.
    window_s : float
        Window of each score.
    times : array of shape (n_times,) or None
        Sample times (``arange(n) / sfreq`` if None).
    config : CardiacConfig or None
        Beat detection and interval rules.

    Returns
    -------
    series : EstimateSeries
        ``QUALITY_PPG`` (value = quality) at every hop.
    """
    from .cardiac import CardiacConfig, EstimateSeries, _window, beat_intervals
    from .ppg import ppg_beats

    cfg = config if config is not None else CardiacConfig()
    x = np.asarray(ppg, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"Invalid value for 'ppg': expected a 1-D array (n_times,), got shape {x.shape}.")
    sfreq = check_positive("sfreq", sfreq)
    window_s = check_positive("window_s", window_s)
    t = np.arange(x.size) / sfreq if times is None else np.asarray(times, dtype=np.float64)
    iv = beat_intervals(ppg_beats(x, sfreq, times=t, config=cfg.pulse), config=cfg)
    hop_n = max(1, int(round(cfg.hop_s * sfreq)))
    win_n = max(1, int(round(window_s * sfreq)))
    ends = np.arange(hop_n - 1, x.size, hop_n)
    q = np.zeros(ends.size)
    for k, e in enumerate(ends):
        raw = _last_n(x, int(e), win_n)
        q[k] = _ppg_quality_value(raw, sfreq, _window(iv, float(t[e]), window_s), window_s)
    m = Metric.QUALITY_PPG
    return EstimateSeries(t[ends], {m: q}, {m: np.ones(ends.size)})


def _last_n(x: FloatArray, end: int, n: int) -> FloatArray:
    """``x[..., end - n + 1 : end + 1]`` padded with NaN in front (as a fresh RingBuffer)."""
    start = end - n + 1
    if start >= 0:
        return np.array(x[..., start : end + 1], dtype=np.float64)
    pad = np.full(x.shape[:-1] + (-start,), np.nan)
    return np.concatenate([pad, x[..., : end + 1]], axis=-1)


class _Tail:
    """The last ``n`` samples of a stream at any recent position (NaN before the first).

    An append-only array of shape ``lead + (capacity,)`` (no wrap-around): the window ending
    at a position is one slice, and a full array is replaced by a new one, so windows handed
    out earlier stay valid (read-only views that are never overwritten).  The same windows as
    :meth:`adaptive.windows.RingBuffer.last` of a ring buffer of ``n`` samples, without its
    double writes and copies.
    """

    def __init__(self, lead: tuple[int, ...], n: int) -> None:
        self._n = n
        self._cap = max(4 * n, n + 4096)
        self._buf = np.full(lead + (self._cap,), np.nan)
        self._len = n  # the first n positions are the NaN padding

    def push(self, x: FloatArray) -> int:
        """Append samples (shape ``lead + (m,)``); return the position after the last one."""
        m = x.shape[-1]
        if self._len + m > self._cap:
            keep = self._buf[..., self._len - self._n : self._len]
            self._cap = max(self._cap, 2 * (self._n + m))
            self._buf = np.empty(keep.shape[:-1] + (self._cap,))
            self._buf[..., : self._n] = keep
            self._len = self._n
        self._buf[..., self._len : self._len + m] = x
        self._len += m
        return self._len

    def tail(self, end: int) -> FloatArray:
        """The ``n`` samples before position ``end`` (a read-only view)."""
        v = self._buf[..., end - self._n : end]
        v.flags.writeable = False
        return v


# -- accelerometer ------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AccelQualityConfig:
    """Settings of :class:`AccelQualityMonitor` (see the module notes for the score)."""

    window_s: float = 2.0
    hop_s: float = 1.0
    still_g: float = 0.02
    moving_g: float = 0.2
    flat_run_s: float = 0.5

    def __post_init__(self) -> None:
        for name in ("window_s", "hop_s", "still_g", "moving_g", "flat_run_s"):
            check_positive(name, getattr(self, name))
        if self.still_g >= self.moving_g:
            raise ValueError(
                f"Invalid value for 'still_g': expected less than moving_g ({self.moving_g!r} g), got {self.still_g!r}."
            )


class AccelQualityMonitor:
    """Streaming motion quality (``QUALITY_ACCEL``) from a 3-axis accelerometer.

    Parameters
    ----------
    sfreq : float
        Accelerometer sampling rate in Hz (Muse: 52 Hz).
    n_channels : int
        Number of axes.
    config : AccelQualityConfig or None
        Window, hop and motion thresholds.

    Notes
    -----
    Each estimate's ``value`` is the quality; its ``quality`` field is 1 minus the share of
    missing samples.  Output does not depend on chunking.
    """

    def __init__(self, sfreq: float, n_channels: int = 3, config: AccelQualityConfig | None = None) -> None:
        self.sfreq = check_positive("sfreq", sfreq)
        if int(n_channels) < 1:
            raise ValueError(f"Invalid value for 'n_channels': expected >= 1, got {n_channels!r}.")
        self.n_channels = int(n_channels)
        self.config = config if config is not None else AccelQualityConfig()
        self._win_n = max(2, int(round(self.config.window_s * self.sfreq)))
        self._hop_n = max(1, int(round(self.config.hop_s * self.sfreq)))
        self._flat_run = max(2, int(round(self.config.flat_run_s * self.sfreq)))  # as accel_window_quality
        self.reset()

    def reset(self) -> None:
        """Forget all state."""
        self._buf = _Tail((self.n_channels,), self._win_n)
        self._n = 0  # samples pushed

    def update(self, chunk: Chunk) -> list[Estimate]:
        """Process an accelerometer chunk; return one ``QUALITY_ACCEL`` estimate per hop.

        Raises
        ------
        ValueError
            If the chunk is not ACCEL, or has another rate or channel count.
        """
        check_chunk(
            chunk, kind=SignalKind.ACCEL, sfreq=self.sfreq, n_channels=self.n_channels, owner="AccelQualityMonitor"
        )
        data, times = chunk.data, chunk.times
        n = times.shape[0]
        if n == 0:
            return []
        n0 = self._n
        self._n = n0 + n
        end0 = self._buf.push(data) - n  # buffer position just before the chunk
        hop = self._hop_n
        # one estimate at every hop end (every hop_n-th sample counted from the first)
        return [
            self._estimate(self._buf.tail(end0 + e + 1), float(times[e]))
            for e in range(hop - 1 - n0 % hop, n, hop)
        ]

    def _estimate(self, win: FloatArray, t: float) -> Estimate:
        cfg = self.config
        if win.shape[1] >= 2:
            # = accel_window_quality's fast path (every sample finite) in one compiled pass
            q = _accel_quality_kernel(win, self._flat_run, 3, cfg.still_g, cfg.moving_g)
            if q >= 0.0:
                return Estimate._trusted(Metric.QUALITY_ACCEL, q, 1.0, t)
        q, _ = accel_window_quality(
            win, self.sfreq, still_g=cfg.still_g, moving_g=cfg.moving_g, flat_run_s=cfg.flat_run_s
        )
        conf = 1.0 if _all_finite(win) else float(np.mean(np.all(np.isfinite(win), axis=0)))
        return Estimate._trusted(Metric.QUALITY_ACCEL, q, conf, t)


def accel_quality(
    accel: FloatArray,
    sfreq: float,
    *,
    times: FloatArray | None = None,
    config: AccelQualityConfig | None = None,
) -> EstimateSeries:
    """Motion quality of a whole record (offline twin of :class:`AccelQualityMonitor`).

    Parameters
    ----------
    accel : array of shape (n_channels, n_times)
        Accelerations in g.
    sfreq : float
        Sampling rate in Hz.
    times : array of shape (n_times,) or None
        Sample times (``arange(n) / sfreq`` if None).
    config : AccelQualityConfig or None
        Window, hop and thresholds.

    Returns
    -------
    series : EstimateSeries
        ``QUALITY_ACCEL`` at every hop.
    """
    from .cardiac import EstimateSeries

    x = np.asarray(accel, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"Invalid value for 'accel': expected shape (n_channels, n_times), got {x.shape}.")
    mon = AccelQualityMonitor(sfreq, x.shape[0], config)
    t = np.arange(x.shape[1]) / mon.sfreq if times is None else np.asarray(times, dtype=np.float64)
    ends = np.arange(mon._hop_n - 1, x.shape[1], mon._hop_n)
    q = np.zeros(ends.size)
    conf = np.zeros(ends.size)
    for k, e in enumerate(ends):
        est = mon._estimate(_last_n(x, int(e), mon._win_n), float(t[e]))
        q[k], conf[k] = est.value, est.quality
    m = Metric.QUALITY_ACCEL
    return EstimateSeries(t[ends], {m: q}, {m: conf})
