"""Causal filters: exact across chunk boundaries, no start-up step, NaN-safe."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.signal import lfilter, sosfilt, sosfilt_zi

from adaptive.filters import SosFilter, _fir_zi, _iir_zi, design_sos

RNG = np.random.default_rng(42)
X = RNG.normal(size=(3, 2000)) + 50.0  # DC offset exercises steady-state start
SOS = design_sos(256.0, l_freq=1.0, h_freq=40.0)


def _whole() -> np.ndarray:
    return SosFilter(SOS).process(X)


def test_matches_scipy_with_steady_state_start() -> None:
    zi = sosfilt_zi(SOS)[:, np.newaxis, :] * X[np.newaxis, :, :1]
    expected, _ = sosfilt(SOS, X, axis=-1, zi=zi)
    assert_allclose(_whole(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("size", [1, 5, 12, 50, 333])
def test_chunk_invariant_fixed_sizes(size: int) -> None:
    f = SosFilter(SOS)
    out = np.concatenate([f.process(X[:, i : i + size]) for i in range(0, X.shape[1], size)], axis=1)
    assert_allclose(out, _whole(), rtol=1e-12, atol=1e-12)


@given(st.lists(st.integers(min_value=1, max_value=1999), max_size=20))
def test_chunk_invariant_random_splits(cuts: list[int]) -> None:
    edges = [0, *sorted(set(cuts)), X.shape[1]]
    f = SosFilter(SOS)
    out = np.concatenate([f.process(X[:, a:b]) for a, b in zip(edges[:-1], edges[1:])], axis=1)
    assert_allclose(out, _whole(), rtol=1e-12, atol=1e-12)


def test_lowpass_passes_dc_without_transient() -> None:
    f = SosFilter(design_sos(64.0, h_freq=2.0))
    y = f.process(np.full((1, 256), 3.0))
    assert_allclose(y, 3.0, atol=1e-9)  # steady-state start: no step response


def test_nan_held_and_state_stays_finite() -> None:
    x = np.sin(np.arange(512) / 10.0)[np.newaxis].copy()
    x[0, 100:150] = np.nan
    y = SosFilter(design_sos(64.0, h_freq=5.0)).process(x)
    assert np.all(np.isfinite(y))


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"l_freq": 200.0}, "Nyquist"),
        ({"l_freq": 10.0, "h_freq": 5.0}, "l_freq < h_freq"),
        ({}, "l_freq/h_freq"),
    ],
)
def test_design_rejects_bad_bands(kw: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        design_sos(256.0, **kw)


def test_fast_paths_are_bit_identical_to_scipy() -> None:
    """The compiled-kernel fast paths give exactly scipy's public results (see the module notes)."""
    zi = sosfilt_zi(SOS)[:, np.newaxis, :] * X[np.newaxis, :, :1]
    expected, zf = sosfilt(SOS, X, axis=-1, zi=zi)
    f = SosFilter(SOS)
    out = np.concatenate([f.process(X[:, i : i + 37]) for i in range(0, X.shape[1], 37)], axis=1)
    np.testing.assert_array_equal(out, expected)
    row = SosFilter(SOS)
    out_row = np.concatenate([row.process_row(X[1, i : i + 37]) for i in range(0, X.shape[1], 37)])
    np.testing.assert_array_equal(out_row, expected[1])
    y = X[0] - 50.0
    b = np.full(43, 1.0 / 43)
    z_ref, z_fast = np.zeros(42), np.zeros(42)
    alpha = 0.0015
    b1, a1 = np.array([alpha]), np.array([1.0, alpha - 1.0])
    zo_ref, zo_fast = np.zeros(1), np.zeros(1)
    for i in range(0, y.size, 32):
        ref, z_ref = lfilter(b, [1.0], y[i : i + 32], zi=z_ref)
        fast, z_fast = _fir_zi(b, y[i : i + 32], z_fast)
        np.testing.assert_array_equal(fast, ref)
        ref, zo_ref = lfilter([alpha], [1.0, alpha - 1.0], y[i : i + 32], zi=zo_ref)
        fast, zo_fast = _iir_zi(b1, a1, y[i : i + 32], zo_fast)
        np.testing.assert_array_equal(fast, ref)
    np.testing.assert_array_equal(z_fast, z_ref)


def test_channel_count_is_fixed_after_the_first_chunk() -> None:
    f = SosFilter(SOS)
    f.process(X[:, :10])
    with pytest.raises(ValueError, match="channels"):
        f.process(X[:2, 10:20])
    f.reset()
    assert f.process(X[:2, 10:20]).shape == (2, 10)
