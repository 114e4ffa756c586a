"""StreamStats: per-stream counts, measured rate, gaps and dropped samples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adaptive.types import Chunk, SignalKind
from sensors.stats import StreamStats

SFREQ = 64.0


def _chunk(times: np.ndarray) -> Chunk:
    return Chunk(SignalKind.PPG, np.zeros((2, times.size)), times, SFREQ, ("ppg1", "ppg2"))


def _times_with_holes() -> np.ndarray:
    t = np.arange(640) / SFREQ  # 10 s
    missing = np.r_[100:104, 300:301, 500:520]  # 3 holes: 4, 1 and 20 samples long
    return np.delete(t, missing)


def test_empty_summary() -> None:
    s = StreamStats(SignalKind.PPG, SFREQ).summary()
    assert (s.n_samples, s.n_chunks, s.n_gaps, s.n_dropped) == (0, 0, 0, 0)
    assert math.isnan(s.first_time) and math.isnan(s.measured_sfreq) and math.isnan(s.max_gap_s)


def test_counts_rate_and_gaps() -> None:
    t = _times_with_holes()
    stats = StreamStats(SignalKind.PPG, SFREQ)
    stats.update(_chunk(t))
    stats.add_dropped(3)
    s = stats.summary()
    assert s.n_samples == t.size and s.n_chunks == 1
    assert s.first_time == 0.0 and s.last_time == pytest.approx(639 / SFREQ)
    assert s.n_gaps == 3
    assert s.max_gap_s == pytest.approx(21 / SFREQ)
    # (n - 1) / span: 615 samples over 639 periods, holes included.
    assert s.measured_sfreq == pytest.approx((t.size - 1) / (639 / SFREQ))
    assert s.rate_error == pytest.approx(s.measured_sfreq / SFREQ - 1)
    assert s.n_dropped == 3


def test_gap_across_chunk_boundary_is_counted() -> None:
    t = np.arange(20) / SFREQ
    stats = StreamStats(SignalKind.PPG, SFREQ)
    stats.update(_chunk(t[:10]))
    stats.update(_chunk(t[12:]))  # two samples missing between the chunks
    assert stats.summary().n_gaps == 1


def test_jitter_below_threshold_is_not_a_gap() -> None:
    t = np.arange(100) / SFREQ
    t[1::2] += 0.4 / SFREQ  # intervals of 1.4 and 0.6 periods
    stats = StreamStats(SignalKind.PPG, SFREQ)
    stats.update(_chunk(t))
    assert stats.summary().n_gaps == 0


def test_wrong_kind_and_bad_arguments() -> None:
    stats = StreamStats(SignalKind.EEG, 256.0)
    with pytest.raises(ValueError, match="'kind'"):
        stats.update(_chunk(np.arange(3) / SFREQ))
    with pytest.raises(ValueError, match="'n'"):
        stats.add_dropped(-1)
    with pytest.raises(ValueError, match="'sfreq'"):
        StreamStats(SignalKind.EEG, 0.0)
    with pytest.raises(ValueError, match="'gap_factor'"):
        StreamStats(SignalKind.EEG, 256.0, gap_factor=1.0)


def test_reset() -> None:
    stats = StreamStats(SignalKind.PPG, SFREQ)
    stats.update(_chunk(np.arange(10) / SFREQ))
    stats.add_dropped(2)
    stats.reset()
    assert stats.summary().n_samples == 0 and stats.summary().n_dropped == 0


@given(st.lists(st.integers(1, 614), max_size=8))
def test_summary_does_not_depend_on_chunking(cuts: list[int]) -> None:
    t = _times_with_holes()
    whole = StreamStats(SignalKind.PPG, SFREQ)
    whole.update(_chunk(t))
    split = StreamStats(SignalKind.PPG, SFREQ)
    for part in np.split(t, sorted(set(cuts))):
        if part.size:
            split.update(_chunk(part))
    a, b = whole.summary(), split.summary()
    for name in ("n_samples", "n_gaps", "first_time", "last_time", "max_gap_s"):
        assert getattr(a, name) == getattr(b, name)
    assert a.measured_sfreq == pytest.approx(b.measured_sfreq, rel=1e-12)
