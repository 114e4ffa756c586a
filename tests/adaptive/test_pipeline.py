"""The DSP pipeline: packet sizes, the advance grid and release order change no estimate."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from adaptive.cardiac import CardiacEstimator, HeartRateEstimator, HrvEstimator
from adaptive.pipeline import DspPipeline, PipelineConfig
from adaptive.types import Chunk, Estimate, Metric, SignalKind
from sensors.simulated import SimulatedPatient

DURATION_S = 100.0


@pytest.fixture(scope="module")
def chunks() -> list[Chunk]:
    """100 s of the simulated patient in Muse-like packets (polled every 50 ms)."""
    src = SimulatedPatient("compliant", seed=3)
    src.start()
    out: list[Chunk] = []
    for now in np.arange(0.05, DURATION_S + 1e-9, 0.05):
        out += src.poll(float(now))
    return out


def _run(chunks: list[Chunk], config: PipelineConfig, regroup: float | None = None,
         grid_s: float | None = None) -> list[Estimate]:
    streams = SimulatedPatient("compliant", seed=3).streams
    pipe = DspPipeline(streams, config)
    if regroup is not None:  # the same samples in blocks of `regroup` seconds per stream
        merged = []
        for kind in {c.kind for c in chunks}:
            cs = [c for c in chunks if c.kind == kind]
            data = np.concatenate([c.data for c in cs], axis=1)
            times = np.concatenate([c.times for c in cs])
            n = max(1, int(regroup * cs[0].sfreq))
            merged += [Chunk(kind, data[:, i : i + n], times[i : i + n], cs[0].sfreq, cs[0].ch_names)
                       for i in range(0, times.size, n)]
        chunks = sorted(merged, key=lambda c: float(c.times[-1]))
    out: list[Estimate] = []
    for c in chunks:
        pipe.update(c)
        if grid_s is not None:  # advance on a grid, behind the slowest stream, as the engine does
            done = pipe.received_until
            if len(done) == len(streams):
                out += pipe.advance(np.floor(min(done.values()) / grid_s) * grid_s)
    return out + pipe.advance(DURATION_S)


def _as_table(estimates: list[Estimate]) -> dict[tuple[str, float], tuple[float, float]]:
    return {(e.metric.value, e.time): (e.value, e.quality) for e in estimates}


def _assert_same(a: list[Estimate], b: list[Estimate]) -> None:
    ta, tb = _as_table(a), _as_table(b)
    assert ta.keys() == tb.keys()
    keys = sorted(ta)
    assert_allclose([ta[k] for k in keys], [tb[k] for k in keys], rtol=1e-9, atol=1e-12, equal_nan=True)


def test_pipeline_emits_every_metric_the_controller_needs(chunks: list[Chunk]) -> None:
    got = {e.metric for e in _run(chunks, PipelineConfig())}
    for m in (Metric.RESP_RATE_BRPM, Metric.HR_BPM, Metric.RMSSD_MS, Metric.EEG_RELAXATION,
              Metric.AROUSAL, Metric.QUALITY_PPG, Metric.QUALITY_EEG, Metric.QUALITY_ACCEL):
        assert m in got, m


def test_advance_grid_changes_no_single_stream_estimate(chunks: list[Chunk]) -> None:
    # Estimates of one stream depend on its samples only.  The fused breathing rate and the
    # arousal combine streams in release order, so they are identical for a given grid (next
    # test), not across grids.
    combined = {Metric.AROUSAL, Metric.RESP_RATE_BRPM}
    whole = [e for e in _run(chunks, PipelineConfig()) if e.metric not in combined]
    for grid in (0.5, 1.7):
        _assert_same([e for e in _run(chunks, PipelineConfig(), grid_s=grid) if e.metric not in combined], whole)


def test_packet_size_changes_no_estimate_on_a_grid(chunks: list[Chunk]) -> None:
    _assert_same(_run(chunks, PipelineConfig(), grid_s=0.5), _run(chunks, PipelineConfig(), regroup=2.7, grid_s=0.5))


def test_packet_size_changes_no_estimate(chunks: list[Chunk]) -> None:
    _assert_same(_run(chunks, PipelineConfig()), _run(chunks, PipelineConfig(), regroup=2.7))


def test_released_in_time_order_and_never_ahead(chunks: list[Chunk]) -> None:
    streams = SimulatedPatient("compliant", seed=3).streams
    pipe = DspPipeline(streams)
    released: list[Estimate] = []
    for i, c in enumerate(chunks):
        pipe.update(c)
        done = pipe.received_until
        if i % 7 == 0 and len(done) == len(streams):
            t = min(done.values())  # what the session engine does: only up to the horizon
            out = pipe.advance(t)
            assert all(e.time <= t for e in out)
            released += out
    times = [e.time for e in released if e.metric is not Metric.AROUSAL]
    assert times == sorted(times)


def test_wrong_stream_is_refused(chunks: list[Chunk]) -> None:
    eeg_only = [s for s in SimulatedPatient("compliant", seed=3).streams if s.kind is SignalKind.EEG]
    pipe = DspPipeline(eeg_only)
    ppg = next(c for c in chunks if c.kind is SignalKind.PPG)
    with pytest.raises(ValueError, match="'kind'.*'eeg'.*got 'ppg'"):
        pipe.update(ppg)


def test_shared_beat_detector_equals_separate_estimators(chunks: list[Chunk]) -> None:
    ppg = [c for c in chunks if c.kind is SignalKind.PPG]
    one = [Chunk(c.kind, c.data[:1], c.times, c.sfreq, c.ch_names[:1]) for c in ppg]
    both, hr, hrv = CardiacEstimator(64.0), HeartRateEstimator(64.0), HrvEstimator(64.0)
    a: list[Estimate] = []
    b: list[Estimate] = []
    for c in one:
        a += both.update(c)
        b += hr.update(c) + hrv.update(c)
    _assert_same(a, b)
