"""Causal filters whose state survives chunk boundaries.

Speed
-----
Streaming stages filter a few dozen samples at a time, so scipy's argument handling (axis
moves, shape checks, copies: about 100 us per call) costs far more than the filtering itself.
:class:`SosFilter` and the private helpers :func:`_fir_zi` and :func:`_iir_zi` therefore call
the compiled kernels that :func:`scipy.signal.sosfilt` and :func:`scipy.signal.lfilter` use
(``scipy.signal._sosfilt._sosfilt`` and ``scipy.signal._sigtools._linear_filter``) with
arguments prepared exactly as scipy prepares them, so the output is bit-identical to the public
functions (``tests/adaptive/test_filters.py`` checks this).  Those kernels are private to scipy:
if a scipy release moves them, the imports below fail over to the public functions (same
numbers, slower).

Compiled code that filters inside its own loops (the pulse detector's front end, the
respiration windows) uses :func:`_sosfilt_rows`, the same ``sosfilt`` loop as a numba kernel
(:mod:`adaptive._jit`), bit for bit.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy.signal import butter, lfilter, sosfilt, sosfilt_zi

from ._checks import check_option, check_positive
from ._jit import kernel
from .types import FloatArray

try:  # compiled kernels behind scipy.signal.sosfilt / lfilter (see the module notes)
    from scipy.signal._sigtools import _linear_filter
    from scipy.signal._sosfilt import _sosfilt
except ImportError:  # pragma: no cover - depends on the scipy release
    _sosfilt = None
    _linear_filter = None

try:  # the compiled kernel behind np.convolve, called without the wrapper
    from numpy._core.multiarray import correlate as _correlate
except ImportError:  # pragma: no cover - another numpy layout

    def _correlate(a: FloatArray, v: FloatArray, mode: str) -> FloatArray:
        return np.correlate(a, v, mode)

__all__ = ["SosFilter", "design_sos"]

logger = logging.getLogger(__name__)


def design_sos(
    sfreq: float,
    *,
    l_freq: float | None = None,
    h_freq: float | None = None,
    order: int = 4,
) -> FloatArray:
    """Design a Butterworth filter as second-order sections.

    Parameters
    ----------
    sfreq : float
        Sampling rate in Hz.
    l_freq, h_freq : float or None
        Pass band edges in Hz: both for band-pass, ``l_freq`` only for high-pass,
        ``h_freq`` only for low-pass (MNE's convention).
    order : int
        Butterworth order.

    Returns
    -------
    sos : array of shape (n_sections, 6)
    """
    sfreq = check_positive("sfreq", sfreq)
    nyq = sfreq / 2.0
    for name, f in (("l_freq", l_freq), ("h_freq", h_freq)):
        if f is not None and not 0 < f < nyq:
            raise ValueError(f"Invalid value for {name!r}: expected 0 < {name} < {nyq:g} Hz (Nyquist), got {f!r}.")
    if l_freq is not None and h_freq is not None:
        if l_freq >= h_freq:
            raise ValueError(f"Invalid band: expected l_freq < h_freq, got {l_freq!r} >= {h_freq!r}.")
        sos = butter(order, [l_freq, h_freq], btype="bandpass", fs=sfreq, output="sos")
    elif l_freq is not None:
        sos = butter(order, l_freq, btype="highpass", fs=sfreq, output="sos")
    elif h_freq is not None:
        sos = butter(order, h_freq, btype="lowpass", fs=sfreq, output="sos")
    else:
        check_option("l_freq/h_freq", None, ["at least one band edge"])
        raise AssertionError  # unreachable
    return np.asarray(sos, dtype=np.float64)


class SosFilter:
    """Causal IIR filter (second-order sections) that carries its state between chunks.

    The first chunk initialises the state at steady state for its first sample, so a DC
    offset gives no start-up transient.  Feeding a signal in any split gives the same output
    as feeding it whole (bit for bit: the state is carried exactly).

    Parameters
    ----------
    sos : array of shape (n_sections, 6)
        Filter from :func:`design_sos` or :func:`scipy.signal.butter`.
    """

    def __init__(self, sos: FloatArray) -> None:
        self._sos = np.array(sos, dtype=np.float64, order="C")  # own, writable copy (the kernel needs one)
        # steady-state state per unit input, laid out as the compiled kernel wants it:
        # (n_channels, n_sections, 2), here with one channel to broadcast
        self._zi_unit = np.ascontiguousarray(sosfilt_zi(self._sos)[np.newaxis, :, :])
        self._zi: FloatArray | None = None  # (n_channels, n_sections, 2), C order
        self._last: FloatArray | None = None

    def reset(self) -> None:
        """Forget the state; the next chunk starts afresh."""
        self._zi = None
        self._last = None

    def process(self, x: FloatArray) -> FloatArray:
        """Filter ``x`` of shape (n_channels, n_times) and return the output of the same shape.

        NaN samples are replaced by the channel's last finite input before filtering, so one
        dropout does not poison the state forever; callers mark such stretches low quality.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"Invalid value for 'x': expected shape (n_channels, n_times), got {x.shape}.")
        if x.shape[1] == 0:
            return x.copy()
        # a finite sum proves every sample finite (NaN and inf propagate): one reduction
        if not math.isfinite(float(x.sum())) and not np.all(np.isfinite(x)):
            x = _hold_last_finite(x, self._last)
        if self._zi is None:
            self._zi = self._zi_unit * x[:, :1, np.newaxis]  # (n_channels, n_sections, 2)
        elif self._zi.shape[0] != x.shape[0]:
            raise ValueError(
                f"Invalid value for 'x': expected {self._zi.shape[0]} channels (as in the first "
                f"chunk), got {x.shape[0]}. Use one SosFilter per stream."
            )
        self._last = x[:, -1].copy()
        return _sosfilt_inplace(self._sos, np.array(x, dtype=np.float64, order="C"), self._zi)

    def process_row(self, x: FloatArray) -> FloatArray:
        """Filter one channel ``x`` of shape (n_times,) of finite samples (fast path).

        The same as ``process(x[np.newaxis])[0]`` for a single-channel filter whose input is
        already finite (callers hold missing samples themselves).
        """
        if x.shape[0] == 0:
            return np.array(x, dtype=np.float64)
        if self._zi is None:
            self._zi = self._zi_unit * float(x[0])
        self._last = x[-1:].copy()
        return _sosfilt_inplace(self._sos, np.array(x, dtype=np.float64, order="C", ndmin=2), self._zi)[0]


def _sosfilt_inplace(sos: FloatArray, x: FloatArray, zi: FloatArray) -> FloatArray:
    """Filter ``x`` (n_channels, n_times), C order, in place; update ``zi`` (n_channels, n_sections, 2).

    Bit-identical to ``scipy.signal.sosfilt(sos, x, axis=-1, zi=zi.transpose(1, 0, 2))``.
    """
    if _sosfilt is not None:
        _sosfilt(sos, x, zi)
        return x
    y, zf = sosfilt(sos, x, axis=-1, zi=np.moveaxis(zi, 0, 1))  # pragma: no cover
    zi[...] = np.moveaxis(zf, 1, 0)  # pragma: no cover
    return np.asarray(y, dtype=np.float64)  # pragma: no cover


@kernel("void(float64[:, :], float64[:, :], float64[:, :, :])")
def _sosfilt_rows(sos, x, zi):  # pragma: no cover - compiled
    """Filter the rows of ``x`` in place, updating ``zi`` (n_rows, n_sections, 2).

    The loop of scipy's compiled ``sosfilt`` (transposed direct form II), the same operations
    in the same order: ``scipy.signal.sosfilt(sos, x, zi=...)`` bit for bit.  Two sections
    (every filter here) keep their coefficients and state in registers.
    """
    n_sections = sos.shape[0]
    for r in range(x.shape[0]):
        if n_sections == 2:
            b00, b01, b02, a01, a02 = sos[0, 0], sos[0, 1], sos[0, 2], sos[0, 4], sos[0, 5]
            b10, b11, b12, a11, a12 = sos[1, 0], sos[1, 1], sos[1, 2], sos[1, 4], sos[1, 5]
            z00, z01, z10, z11 = zi[r, 0, 0], zi[r, 0, 1], zi[r, 1, 0], zi[r, 1, 1]
            for i in range(x.shape[1]):
                x_cur = x[r, i]
                x_new = b00 * x_cur + z00
                z00 = b01 * x_cur - a01 * x_new + z01
                z01 = b02 * x_cur - a02 * x_new
                x_cur = x_new
                x_new = b10 * x_cur + z10
                z10 = b11 * x_cur - a11 * x_new + z11
                z11 = b12 * x_cur - a12 * x_new
                x[r, i] = x_new
            zi[r, 0, 0], zi[r, 0, 1], zi[r, 1, 0], zi[r, 1, 1] = z00, z01, z10, z11
            continue
        for i in range(x.shape[1]):
            x_cur = x[r, i]
            for s in range(n_sections):
                x_new = sos[s, 0] * x_cur + zi[r, s, 0]
                zi[r, s, 0] = sos[s, 1] * x_cur - sos[s, 4] * x_new + zi[r, s, 1]
                zi[r, s, 1] = sos[s, 2] * x_cur - sos[s, 5] * x_new
                x_cur = x_new
            x[r, i] = x_cur


def _fir_zi(
    b: FloatArray, x: FloatArray, zi: FloatArray, b_rev: FloatArray | None = None
) -> tuple[FloatArray, FloatArray]:
    """``lfilter(b, [1.0], x, zi=zi)`` for 1-D float64 ``x`` and ``b``, bit-identical, faster.

    scipy computes an FIR filter with state as ``convolve(b, x)`` plus the state added to the
    first ``len(b) - 1`` outputs; so does this, without the argument handling.  ``np.convolve``
    is the compiled ``correlate`` of the longer argument with the reversed shorter one, called
    here directly; hot callers pass ``b_rev = b[::-1]`` precomputed.
    """
    n = x.shape[0]
    if n > b.shape[0]:  # np.convolve's own choice of which argument slides
        full = _correlate(x, b[::-1] if b_rev is None else b_rev, "full")
    else:
        full = _correlate(b, x[::-1], "full")
    full[: zi.shape[0]] += zi
    return full[:n], full[n:]


def _iir_zi(b: FloatArray, a: FloatArray, x: FloatArray, zi: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``lfilter(b, a, x, zi=zi)`` for 1-D float64 arrays and ``len(a) > 1``, bit-identical, faster."""
    if _linear_filter is not None:
        y, zf = _linear_filter(b, a, x, -1, zi)
        return y, zf
    y, zf = lfilter(b, a, x, zi=zi)  # pragma: no cover
    return np.asarray(y, dtype=np.float64), np.asarray(zf, dtype=np.float64)  # pragma: no cover


def _hold_last_finite(x: FloatArray, last: FloatArray | None) -> FloatArray:
    """Replace non-finite samples by the previous finite sample of the same channel."""
    out = x.copy()
    for ch in range(out.shape[0]):
        row = out[ch]
        bad = ~np.isfinite(row)
        if not bad.any():
            continue
        idx = np.where(~bad, np.arange(row.size), -1)
        np.maximum.accumulate(idx, out=idx)
        prev = 0.0 if last is None or not np.isfinite(last[ch]) else float(last[ch])
        row[:] = np.where(idx >= 0, row[np.clip(idx, 0, None)], prev)
    return out
