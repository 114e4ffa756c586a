"""Compiled numeric helpers shared by the estimators (numba kernels, see :mod:`adaptive._jit`)."""

from __future__ import annotations

import math

import numpy as np

from ._jit import kernel

# read-only arrays (chunk data, window views); writable arrays match this form too
_RO1 = "Array(float64, 1, 'A', readonly=True)"


@kernel(f"float64[:]({_RO1}, {_RO1}, {_RO1})")  # window views too
def _interp_nb(x, xp, fp):  # pragma: no cover - compiled
    """``np.interp(x, xp, fp)`` for ascending ``x`` and ``xp`` (numpy's formula and edge rules)."""
    n, m = x.size, xp.size
    out = np.empty(n)
    j = 0  # the last index with xp[j] <= x (walks forward: x ascending)
    for i in range(n):
        v = x[i]
        if math.isnan(v):
            out[i] = v
            continue
        while j + 1 < m and xp[j + 1] <= v:
            j += 1
        if v < xp[0]:
            out[i] = fp[0]
        elif j >= m - 1 or xp[j] == v:
            out[i] = fp[j]
        else:
            slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
            y = slope * (v - xp[j]) + fp[j]
            if math.isnan(y):  # numpy: try from the other end
                y = slope * (v - xp[j + 1]) + fp[j + 1]
                if math.isnan(y) and fp[j] == fp[j + 1]:
                    y = fp[j]
            out[i] = y
    return out
