"""RingBuffer and FixedHopWindows against plain reference forms (every sample kept, cut by hand)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from adaptive.windows import FixedHopWindows, RingBuffer

X = np.random.default_rng(3).normal(size=(2, 4000))
T = np.arange(4000) / 16.0


def _last_ref(pos: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The last ``n`` of the first ``pos`` samples, NaN in front where fewer were pushed."""
    d = np.full((2, n), np.nan)
    t = np.full(n, np.nan)
    k = min(n, pos)
    if k:
        d[:, n - k :] = X[:, pos - k : pos]
        t[n - k :] = T[pos - k : pos]
    return d, t


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 50), st.lists(st.integers(0, 120), min_size=1, max_size=60), st.integers(1, 50))
def test_last_equals_the_plain_form(capacity: int, sizes: list[int], n_read: int) -> None:
    rb = RingBuffer(2, capacity)
    pos = 0
    for k in sizes:
        k = min(k, 4000 - pos)
        rb.push(X[:, pos : pos + k], T[pos : pos + k])
        pos += k
        n = min(n_read, capacity)
        d, t = rb.last(n)
        ref_d, ref_t = _last_ref(pos, n)
        assert_array_equal(d, ref_d)  # NaN where never filled, as the plain form
        assert_array_equal(t, ref_t)
        assert d.flags.c_contiguous and d.flags.writeable  # copies the caller may change
    assert rb.n_total == pos


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 3999), max_size=80), st.integers(1, 40), st.integers(1, 90))
def test_windows_equal_the_plain_form(cuts: list[int], hop: int, window: int) -> None:
    w = FixedHopWindows(2, sfreq=16.0, window_s=window / 16.0, hop_s=hop / 16.0, capacity_s=200 / 16.0)
    got = []
    edges = [0, *sorted(set(cuts)), 4000]
    for a, b in zip(edges[:-1], edges[1:]):
        got += w.push(X[:, a:b], T[a:b])
    ends = [i for i in range(1, 4001) if i % hop == 0 and i >= window]
    assert [t for _, t in got] == [float(T[i - 1]) for i in ends]
    for (win, _), i in zip(got, ends):
        assert_array_equal(win, X[:, i - window : i])
    d, t = w.history(150)
    assert_array_equal(d, X[:, -150:])
    assert_array_equal(t, T[-150:])
