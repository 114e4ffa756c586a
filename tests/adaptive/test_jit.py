"""The compiled-kernel decorator: explicit signatures, numpy error semantics, no lazy compiles."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adaptive._jit import kernel


@kernel("float64(float64[:])", "float64(float64[:, :])")
def _mean_of_ratios(x):  # type: ignore[no-untyped-def]
    """Mean of x / x[0] (a division by zero on purpose when x[0] == 0)."""
    flat = x.ravel()
    total = 0.0
    for v in flat:
        total += v / flat[0]
    return total / flat.size


def test_kernel_computes_for_each_declared_signature() -> None:
    x = np.array([2.0, 4.0, 6.0])
    assert _mean_of_ratios(x) == pytest.approx(2.0)
    assert _mean_of_ratios(np.array([[2.0, 4.0], [6.0, 8.0]])) == pytest.approx(2.5)
    # a strided view matches the any-layout signature (no copy needed at the call site)
    assert _mean_of_ratios(np.arange(1.0, 9.0)[::2]) == pytest.approx(np.mean(np.arange(1.0, 9.0)[::2]))


def test_division_by_zero_follows_numpy_not_python() -> None:
    # error_model="numpy": bad data must lower quality, never raise ZeroDivisionError
    assert math.isnan(_mean_of_ratios(np.array([0.0, 1.0])))


def test_other_argument_types_raise_instead_of_compiling() -> None:
    with pytest.raises(TypeError):
        _mean_of_ratios(np.array([1, 2, 3], dtype=np.int32))
    assert len(_mean_of_ratios.signatures) == 2  # nothing compiled at run time


def test_kernel_without_signature_is_refused() -> None:
    with pytest.raises(ValueError, match="signatures"):
        kernel()
