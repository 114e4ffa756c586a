"""Fixed-hop windows do not depend on how the stream is chunked."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from adaptive.windows import FixedHopWindows, RingBuffer

X = np.random.default_rng(1).normal(size=(2, 1000))
T = np.arange(1000) / 10.0


def _windows(edges: list[int]) -> list[tuple[np.ndarray, float]]:
    w = FixedHopWindows(2, sfreq=10.0, window_s=8.0, hop_s=1.0)
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        out += w.push(X[:, a:b], T[a:b])
    return out


def test_window_schedule() -> None:
    out = _windows([0, 1000])
    # first window once 80 samples arrived, then one per 10 samples
    assert len(out) == (1000 - 80) // 10 + 1
    win, t_end = out[0]
    assert t_end == T[79]
    assert_array_equal(win, X[:, :80])
    assert_array_equal(out[-1][0], X[:, -80:])


@given(st.lists(st.integers(min_value=1, max_value=999), max_size=30))
def test_random_splits_give_identical_windows(cuts: list[int]) -> None:
    ref = _windows([0, 1000])
    got = _windows([0, *sorted(set(cuts)), 1000])
    assert [t for _, t in got] == [t for _, t in ref]
    for (a, _), (b, _) in zip(got, ref):
        assert_array_equal(a, b)


@given(st.integers(1, 60), st.lists(st.integers(1, 90), min_size=1, max_size=40))
def test_ring_buffer_keeps_the_last_samples(capacity: int, sizes: list[int]) -> None:
    rb = RingBuffer(2, capacity)
    pos = 0
    for k in sizes:
        k = min(k, 1000 - pos)
        rb.push(X[:, pos : pos + k], T[pos : pos + k])
        pos += k
        n = min(capacity, pos)
        if n:
            d, t = rb.last(n)
            assert_array_equal(d, X[:, pos - n : pos])
            assert_array_equal(t, T[pos - n : pos])
    assert rb.n_total == pos


def test_ring_buffer_rejects_bad_calls() -> None:
    with pytest.raises(ValueError, match="capacity"):
        RingBuffer(1, 0)
    with pytest.raises(ValueError, match="'n'"):
        RingBuffer(1, 5).last(6)


@pytest.mark.parametrize("offset_s", [0.0, 0.3, 0.75])
def test_offset_shifts_window_ends_and_keeps_chunk_invariance(offset_s: float) -> None:
    def ends(edges: list[int]) -> list[float]:
        w = FixedHopWindows(2, sfreq=10.0, window_s=2.0, hop_s=1.0, offset_s=offset_s)
        out: list[float] = []
        for a, b in zip(edges[:-1], edges[1:]):
            out += [t for _, t in w.push(X[:, a:b], T[a:b])]
        return out

    ref = ends([0, 1000])
    offset_n = round(offset_s * 10)
    # a window ends at the sample whose 1-based index minus the offset is a multiple of 10,
    # once 20 samples have arrived
    expected = [T[i - 1] for i in range(20, 1001) if (i - offset_n) % 10 == 0]
    assert ref == expected
    assert ends([0, 3, 17, 18, 500, 999, 1000]) == ref


def test_offset_must_lie_within_a_hop() -> None:
    with pytest.raises(ValueError, match="'offset_s'"):
        FixedHopWindows(1, sfreq=10.0, window_s=2.0, hop_s=1.0, offset_s=1.0)


@given(st.lists(st.integers(min_value=1, max_value=999), max_size=30))
def test_push_ends_gives_the_windows_ends_and_history_views(cuts: list[int]) -> None:
    # push_ends: push's end times without the window copies; the window is then the last
    # window_n samples, read as a read-only view
    ref = _windows([0, 1000])
    w = FixedHopWindows(2, sfreq=10.0, window_s=8.0, hop_s=1.0)
    edges = [0, *sorted(set(cuts)), 1000]
    got = []
    for a, b in zip(edges[:-1], edges[1:]):
        while a < b:  # up to each window end, as a caller reading every window does
            stop = min(b, a + w.to_boundary())
            ends = w.push_ends(X[:, a:stop], T[a:stop])
            assert len(ends) <= 1
            for t_end in ends:
                win, times = w.history(w.window_n, copy=False)
                assert not win.flags.writeable and not times.flags.writeable
                assert times[-1] == t_end
                got.append((win.copy(), t_end))
            a = stop
    assert [t for _, t in got] == [t for _, t in ref]
    for (a, _), (b, _) in zip(got, ref):
        assert_array_equal(a, b)
    # several window ends in one push: all their times
    w = FixedHopWindows(2, sfreq=10.0, window_s=8.0, hop_s=1.0)
    assert w.push_ends(X, T) == [t for _, t in ref]


def test_last_without_copy_is_a_read_only_view() -> None:
    rb = RingBuffer(2, 50)
    rb.push(X[:, :30], T[:30])
    d, t = rb.last(20, copy=False)
    assert_array_equal(d, X[:, 10:30])
    assert_array_equal(t, T[10:30])
    with pytest.raises(ValueError):
        d[0, 0] = 1.0
    d2, t2 = rb.last(20)
    assert d2.flags.writeable and t2.flags.writeable
    d2[0, 0] = 1.0  # a copy: the buffer is untouched
    assert_array_equal(rb.last(20, copy=False)[0], X[:, 10:30])
