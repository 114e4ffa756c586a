"""Tests of adaptive.quality: PPG and accelerometer quality fall with bad data and never raise."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from adaptive.ppg import reference_pulse
from adaptive.quality import (
    AccelQualityConfig,
    AccelQualityMonitor,
    PpgQualityMonitor,
    accel_quality,
    accel_window_quality,
    clip_share,
    combine_quality,
    flat_share,
    ppg_quality,
    ppg_window_quality,
)
from adaptive.types import Chunk, Estimate, Metric

SFREQ = 64.0
ACC_SFREQ = 52.0


def clean_ppg(duration_s: float = 70.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration_s * SFREQ)) / SFREQ
    onsets = 0.3 + np.cumsum(0.85 + 0.02 * rng.standard_normal(int(duration_s / 0.8) + 5))
    x = np.zeros_like(t)
    for o in onsets[onsets < duration_s]:
        m = (t >= o) & (t < o + 1.5)
        x[m] += reference_pulse(t[m] - o)
    return 30000.0 - 300.0 * x + 2.0 * rng.standard_normal(t.size), t  # raw counts, inverted


def still_accel(duration_s: float = 20.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration_s * ACC_SFREQ)) / ACC_SFREQ
    acc = np.vstack([0.02 + 0.003 * rng.standard_normal(t.size),
                     -0.05 + 0.003 * rng.standard_normal(t.size),
                     0.99 + 0.003 * rng.standard_normal(t.size)])
    acc[2] += 0.002 * np.sin(2 * np.pi * 0.25 * t)  # breathing tilt
    return acc, t


def _q(series: object) -> np.ndarray:
    return series.values[Metric.QUALITY_PPG]  # type: ignore[attr-defined]


# -- PPG ----------------------------------------------------------------------------------------------------
def test_clean_ppg_has_high_quality() -> None:
    x, t = clean_ppg()
    q = _q(ppg_quality(x, SFREQ))
    assert np.all(q[45:] > 0.8)  # after polarity calibration (30 s) and one window


@pytest.mark.parametrize(
    "damage",
    ["nan", "flat", "saturated", "noise", "motion"],
)
def test_bad_ppg_lowers_quality(damage: str) -> None:
    x, t = clean_ppg(seed=1)
    bad = x.copy()
    sl = slice(int(50 * SFREQ), int(58 * SFREQ))
    rng = np.random.default_rng(2)
    if damage == "nan":
        bad[sl] = np.nan
    elif damage == "flat":
        bad[sl] = bad[sl.start]
    elif damage == "saturated":
        bad[sl] = np.maximum(bad[sl], np.percentile(x, 90))  # optical front end pinned at a rail
    elif damage == "noise":
        bad[sl] = 30000.0 + 300.0 * rng.standard_normal(sl.stop - sl.start)
    else:  # motion: large slow swings of the optical coupling
        tt = t[sl]
        bad[sl] += 3000.0 * np.sin(2 * np.pi * 0.7 * tt) * np.sin(2 * np.pi * 0.13 * tt)
    q_clean, q_bad = _q(ppg_quality(x, SFREQ)), _q(ppg_quality(bad, SFREQ))
    during = slice(54, 58)  # hops whose 8 s window is mostly damaged
    assert np.all(q_bad[during] < 0.5), q_bad[during]
    # damage never raises quality while it is in the window (0.02: the running pulse template
    # and interval history differ slightly afterwards, moving coverage by a fraction of a beat)
    assert np.all(q_bad[:66] <= q_clean[:66] + 0.02)
    assert np.all(q_bad[66:] > 0.6)  # and it recovers once the window has left the damage


def test_window_scores_by_hand() -> None:
    x = np.arange(100.0)
    assert flat_share(x, 16) == 0.0
    x[10:40] = 5.0
    assert flat_share(x, 16) == pytest.approx(0.30)
    assert flat_share(x, 40) == 0.0
    y = np.sin(np.linspace(0, 20, 200))
    assert clip_share(y, 3) == 0.0
    assert clip_share(np.clip(y, -0.5, 0.5), 3) > 0.3
    assert combine_quality(0.5, 0.5) == 0.25
    assert combine_quality(0.9, float("nan")) == 0.0
    assert combine_quality(2.0, -1.0) == 0.0
    assert ppg_window_quality(np.full(50, np.nan), SFREQ, 1.0) == 0.0
    assert ppg_window_quality(np.zeros(0), SFREQ, 1.0) == 0.0


# -- accelerometer ------------------------------------------------------------------------------------------
def test_accel_still_is_clean_motion_is_not() -> None:
    acc, t = still_accel()
    q, motion = accel_window_quality(acc[:, :104], ACC_SFREQ)
    assert q == 1.0 and motion < 0.02
    moving = acc.copy()
    moving[0] += 0.3 * np.sin(2 * np.pi * 1.5 * t)  # nodding: 0.3 g swings
    q, motion = accel_window_quality(moving[:, :104], ACC_SFREQ)
    assert q == 0.0 and motion > 0.2
    moderate = acc.copy()
    moderate[1] += 0.1 * np.sin(2 * np.pi * 1.0 * t)  # 0.07 g rms: partly usable
    q, _ = accel_window_quality(moderate[:, :104], ACC_SFREQ)
    assert 0.3 < q < 0.9


@pytest.mark.parametrize("damage", ["nan", "flat", "clipped"])
def test_accel_bad_data_lowers_quality(damage: str) -> None:
    acc, t = still_accel()
    bad = acc.copy()
    sl = slice(0, 80)
    if damage == "nan":
        bad[:, sl] = np.nan
    elif damage == "flat":
        bad[:, :] = 0.0  # stuck sensor
    else:
        bad[2] = np.minimum(bad[2] + 1.5 * np.sin(2 * np.pi * 2 * t), 2.0)  # hits the +2 g rail
    q, _ = accel_window_quality(bad[:, :104], ACC_SFREQ)
    assert q < 0.5


def test_accel_monitor_streams_and_matches_offline() -> None:
    acc, t = still_accel(30.0)
    acc[:, 520:780] += 0.4 * np.sin(2 * np.pi * 2.0 * t[520:780])
    mon = AccelQualityMonitor(ACC_SFREQ)
    got = [e for a in range(0, t.size, 17) for e in mon.update(
        Chunk("accel", acc[:, a:a + 17], t[a:a + 17], ACC_SFREQ, ("x", "y", "z")))]
    off = accel_quality(acc, ACC_SFREQ)
    assert [e.time for e in got] == pytest.approx(list(off.times))
    assert_allclose([e.value for e in got], off.values[Metric.QUALITY_ACCEL], rtol=1e-12)
    q = off.values[Metric.QUALITY_ACCEL]
    assert q[0] < 1.0  # first window half empty (warm-up counts as missing)
    assert np.all(q[2:9] == 1.0) and np.all(q[11:14] < 0.2) and np.all(q[17:] == 1.0)


# -- streaming == offline ---------------------------------------------------------------------------------------
_X, _T = clean_ppg(60.0, seed=4)
_X[int(40 * SFREQ) : int(43 * SFREQ)] = np.nan


def _chunks(cuts: list[int]) -> list[Chunk]:
    edges = [0, *sorted(set(c for c in cuts if 0 < c < _X.size)), _X.size]
    return [Chunk("ppg", _X[np.newaxis, a:b], _T[a:b], SFREQ, ("ppg",)) for a, b in zip(edges[:-1], edges[1:])]


def _assert_same(a: list[Estimate], b: list[Estimate]) -> None:
    assert [e.time for e in a] == [e.time for e in b]
    assert_allclose([e.value for e in a], [e.value for e in b], rtol=1e-12)


@pytest.mark.parametrize("chunk", [6, 100, 5000])
def test_ppg_monitor_chunk_sizes(chunk: int) -> None:
    mon = PpgQualityMonitor(SFREQ)
    got = [e for c in _chunks(list(range(chunk, _X.size, chunk))) for e in mon.update(c)]
    _assert_same(got, ppg_quality(_X, SFREQ).estimates())


@settings(max_examples=10, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=_X.size - 1), max_size=30))
def test_ppg_monitor_random_splits(cuts: list[int]) -> None:
    mon = PpgQualityMonitor(SFREQ)
    _assert_same([e for c in _chunks(cuts) for e in mon.update(c)], ppg_quality(_X, SFREQ).estimates())


@settings(max_examples=10, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=30 * 52 - 1), max_size=30))
def test_accel_monitor_random_splits(cuts: list[int]) -> None:
    acc, t = still_accel(30.0, seed=3)
    acc[:, 400:500] = np.nan
    edges = [0, *sorted(set(cuts)), t.size]
    mon = AccelQualityMonitor(ACC_SFREQ)
    got = [e for a, b in zip(edges[:-1], edges[1:])
           for e in mon.update(Chunk("accel", acc[:, a:b], t[a:b], ACC_SFREQ, ("x", "y", "z")))]
    _assert_same(got, accel_quality(acc, ACC_SFREQ).estimates())


# -- wrong calls --------------------------------------------------------------------------------------------------
def test_wrong_calls_raise() -> None:
    t = np.arange(52) / ACC_SFREQ
    with pytest.raises(ValueError, match="'kind'"):
        PpgQualityMonitor(SFREQ).update(Chunk("accel", np.zeros((3, 52)), t, ACC_SFREQ, ("x", "y", "z")))
    with pytest.raises(ValueError, match="'sfreq'"):
        AccelQualityMonitor(ACC_SFREQ).update(Chunk("accel", np.zeros((3, 52)), t, 50.0, ("x", "y", "z")))
    with pytest.raises(ValueError, match="channels"):
        AccelQualityMonitor(ACC_SFREQ).update(Chunk("accel", np.zeros((2, 52)), t, ACC_SFREQ, ("x", "y")))
    with pytest.raises(ValueError, match="'still_g'"):
        AccelQualityConfig(still_g=0.5, moving_g=0.2)
    with pytest.raises(ValueError, match="'accel'"):
        accel_quality(np.zeros(52), ACC_SFREQ)
    with pytest.raises(ValueError, match="'window_s'"):
        PpgQualityMonitor(SFREQ, window_s=0.0)


# -- fast paths (speed work): same numbers as the plain forms --------------------------------------------
def _flat_share_by_hand(x: np.ndarray, min_run: int) -> float:
    """Share of samples in runs of >= min_run equal finite values, by walking the array."""
    total, i = 0, 0
    while i < x.size:
        j = i
        while j + 1 < x.size and np.isfinite(x[i]) and x[j + 1] == x[i]:
            j += 1
        if j - i + 1 >= min_run:
            total += j - i + 1
        i = j + 1
    return total / x.size


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=2, max_size=80), st.integers(2, 12))
def test_flat_share_matches_definition(levels: list[int], min_run: int) -> None:
    # quantised values give many short repeats: the early exit (too few repeats for one run)
    # must not change the share
    x = np.asarray(levels, dtype=float)
    x[::17] = np.nan
    assert flat_share(x, min_run) == _flat_share_by_hand(x, min_run)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 700), min_size=1, max_size=12))
def test_tail_equals_ring_buffer(sizes: list[int]) -> None:
    # the append-only window store hands out the same windows as RingBuffer.last, and windows
    # handed out earlier stay unchanged after later pushes (and after moving to a new array)
    from adaptive.quality import _Tail
    from adaptive.windows import RingBuffer

    rng = np.random.default_rng(len(sizes))
    tail, ring = _Tail((2,), 128), RingBuffer(2, 128)
    kept = []
    for m in sizes:
        x = rng.standard_normal((2, m))
        end = tail.push(x)
        ring.push(x, np.arange(m, dtype=float))
        win = tail.tail(end)
        assert not win.flags.writeable
        assert_allclose(win, ring.last(128)[0], rtol=0, atol=0)
        kept.append((win, win.copy()))
    for win, copy in kept:
        assert_allclose(win, copy, rtol=0, atol=0)


def test_ppg_window_quality_fast_path_matches_parts() -> None:
    # finite windows take a shortcut; its product must equal the documented factors
    rng = np.random.default_rng(3)
    x = np.round(rng.standard_normal(640) * 3.0)  # quantised: repeats and clipped extremes
    x[100:130] = x[100]  # one flat run (>= 0.25 s at 64 Hz)
    expected = combine_quality(1.0, 1.0 - flat_share(x, 16), 1.0 - clip_share(x, 3), 0.8)
    assert ppg_window_quality(x, 64.0, 0.8) == expected
