"""Causal filters whose state survives chunk boundaries."""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfilt, sosfilt_zi

from ._checks import check_option, check_positive
from .types import FloatArray

__all__ = ["SosFilter", "design_sos"]


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
    as feeding it whole.

    Parameters
    ----------
    sos : array of shape (n_sections, 6)
        Filter from :func:`design_sos` or :func:`scipy.signal.butter`.
    """

    def __init__(self, sos: FloatArray) -> None:
        self._sos = np.asarray(sos, dtype=np.float64)
        self._zi_unit = sosfilt_zi(self._sos)[:, np.newaxis, :]  # (n_sections, 1, 2)
        self._zi: FloatArray | None = None

    def reset(self) -> None:
        """Forget the state; the next chunk starts afresh."""
        self._zi = None

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
        if not np.all(np.isfinite(x)):
            x = _hold_last_finite(x, self._last)
        if self._zi is None:
            self._zi = self._zi_unit * x[np.newaxis, :, :1]
        y, self._zi = sosfilt(self._sos, x, axis=-1, zi=self._zi)
        self._last = x[:, -1].copy()
        return np.asarray(y, dtype=np.float64)

    _last: FloatArray | None = None


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
