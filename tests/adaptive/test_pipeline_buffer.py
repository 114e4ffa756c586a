"""The pipeline's stream buffer and history: the fast forms give exactly what the plain forms give.

The buffer copies chunks on arrival and hands out read-only views; the plain form joins every
waiting chunk at :meth:`take_until` and cuts at ``t``.  Blocks must match sample for sample (and
in rate and channel names), whatever the chunking, the order or the metadata of the chunks.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from adaptive.pipeline import DspPipeline, _StreamBuffer
from adaptive.types import Chunk, Estimate, Metric, SignalKind, StreamSpec

NAMES = ("a", "b", "c")
X = np.random.default_rng(7).normal(size=(3, 3000))
T = np.arange(3000) / 64.0


class _Plain:
    """The plain form: join every waiting chunk, cut at ``t``."""

    def __init__(self) -> None:
        self.parts: list[Chunk] = []

    def push(self, chunk: Chunk) -> None:
        self.parts.append(chunk)

    def take_until(self, t: float) -> Chunk | None:
        parts = self.parts
        if not parts or parts[0].times[0] > t:
            return None
        first = parts[0]
        data = np.concatenate([c.data for c in parts], axis=1)
        times = np.concatenate([c.times for c in parts])
        if times[-1] <= t:
            self.parts = []
            return Chunk._trusted(first.kind, data, times, first.sfreq, first.ch_names)
        n = int(np.searchsorted(times, t, side="right"))
        self.parts = [Chunk._trusted(first.kind, data[:, n:], times[n:], first.sfreq, first.ch_names)]
        return Chunk._trusted(first.kind, data[:, :n], times[:n], first.sfreq, first.ch_names)


def _same_block(got: Chunk | None, ref: Chunk | None) -> None:
    if ref is None:
        assert got is None
        return
    assert got is not None
    assert (got.kind, got.sfreq, got.ch_names) == (ref.kind, ref.sfreq, ref.ch_names)
    assert_array_equal(got.times, ref.times)
    assert_array_equal(got.data, ref.data)
    assert not got.data.flags.writeable and not got.times.flags.writeable


def _replay(chunks: list[Chunk], takes: list[float], every: int) -> None:
    """Push the chunks, taking at the next of ``takes`` after every ``every`` chunks."""
    buf, ref = _StreamBuffer(), _Plain()
    handed: list[tuple[Chunk, np.ndarray, np.ndarray]] = []
    it = iter(takes)
    for i, c in enumerate(chunks):
        buf.push(c)
        ref.push(c)
        if (i + 1) % every == 0:
            t = next(it, None)
            if t is None:
                break
            got = buf.take_until(t)
            _same_block(got, ref.take_until(t))
            if got is not None:
                handed.append((got, got.data.copy(), got.times.copy()))
    _same_block(buf.take_until(np.inf), ref.take_until(np.inf))
    # blocks handed out earlier never change (the buffer never writes over them)
    for block, data, times in handed:
        assert_array_equal(block.data, data)
        assert_array_equal(block.times, times)


def _cut(edges: list[int], sfreq: float = 64.0, names: tuple[str, ...] = NAMES) -> list[Chunk]:
    return [Chunk(SignalKind.PPG, X[: len(names), a:b], T[a:b], sfreq, names)
            for a, b in zip(edges[:-1], edges[1:])]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 2999), max_size=60),
    st.lists(st.floats(-1.0, 50.0, allow_nan=False), max_size=40),
    st.integers(1, 5),
)
def test_blocks_equal_the_plain_form(cuts: list[int], takes: list[float], every: int) -> None:
    _replay(_cut([0, *sorted(set(cuts)), 3000]), sorted(takes), every)


def test_blocks_across_many_reallocations() -> None:
    # 3000 samples at 64 Hz in packets of 6, taken every 0.5 s: the arrays fill several times
    chunks = _cut(list(range(0, 3000, 6)) + [3000])
    _replay(chunks, [k * 0.5 for k in range(1, 200)], 5)


def test_unsorted_takes_and_repeated_times() -> None:
    chunks = _cut(list(range(0, 600, 7)) + [600])
    _replay(chunks, [1.0, 0.5, 0.5, 2.0, 1.9, 9.0, 3.0], 4)


def test_overlapping_chunks_cut_as_the_plain_form() -> None:
    # a stream that steps back in time (never from a valid source): same blocks as the plain form
    a = Chunk(SignalKind.PPG, X[:, :40], T[:40], 64.0, NAMES)
    b = Chunk(SignalKind.PPG, X[:, 40:80], T[20:60], 64.0, NAMES)
    c = Chunk(SignalKind.PPG, X[:, 80:90], T[80:90], 64.0, NAMES)
    _replay([a, b, c, a], [0.4, 0.5, 0.9, 0.3, 2.0], 1)


@pytest.mark.parametrize("change", ["sfreq", "names", "n_channels"])
def test_changed_rate_or_names_give_the_first_chunks_metadata(change: str) -> None:
    first = _cut([0, 10, 20])
    if change == "sfreq":
        other = _cut([20, 30, 40], sfreq=128.0)
    elif change == "names":
        other = _cut([20, 30, 40], names=("x", "y", "z"))
    else:
        other = _cut([20, 30, 40], names=("x", "y"))
    chunks = first + other + _cut([40, 50])
    if change == "n_channels":  # the plain form cannot join 3 and 2 rows: neither can the buffer
        buf, ref = _StreamBuffer(), _Plain()
        for c in chunks:
            buf.push(c)
            ref.push(c)
        with pytest.raises(ValueError):
            ref.take_until(np.inf)
        with pytest.raises(ValueError):
            buf.take_until(np.inf)
        return
    _replay(chunks, [0.1, 0.2, 0.5, 0.7, 5.0], 1)
    # metadata changing while nothing waits starts afresh with the new chunk's metadata
    _replay(first + other, [T[19], 5.0], 2)


def _est(metric: Metric, t: float, v: float = 1.0) -> Estimate:
    return Estimate(metric, v, 1.0, t)


def test_latest_at_equals_the_history_scan() -> None:
    pipe = DspPipeline((StreamSpec(SignalKind.GYRO, 52.0, ("x", "y", "z")),))
    # estimates handed in by hand (what the estimators would release), out of time order
    for k in range(1, 40):
        pipe._pending += [_est(Metric.HR_BPM, k * 0.25, k), _est(Metric.RMSSD_MS, k * 0.25 - 0.1, k)]
        if k % 3 == 0:
            pipe._pending.append(_est(Metric.QUALITY_PPG, k * 0.25 + 0.3, k))  # released next time
        released = pipe.advance(k * 0.25)
        assert all(e.time <= k * 0.25 for e in released)
        for t in (k * 0.25, k * 0.25 - 0.05, k * 0.25 - 0.2, k * 0.25 - 3.0, -1.0, 1e9):
            ref = {}
            for m, h in pipe._history.items():
                for e in reversed(h):
                    if e.time <= t:
                        ref[m] = e
                        break
            got = pipe.latest_at(t)
            assert got == ref
            assert list(got) == list(ref)  # same key order
