"""Latency benchmark of DspPipeline on Muse packets, and checks of experiments.bench.speed.

By default pytest runs with ``--benchmark-disable``, so the benchmark runs once as a test. For
numbers: ``pytest tests/benchmarks/test_bench_speed.py --benchmark-enable --benchmark-only``.
No assertion here is about speed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from adaptive.pipeline import DspPipeline
from adaptive.types import Chunk, SignalKind
from experiments.bench.speed import PACKET_SAMPLES, generate, muse_packets, run, to_markdown

WARMUP_S = 66.0  # past the 64 s HRV window: every estimator in its steady state
DATA_S = 80.0
GRID_S = 0.5  # the session engine's decision period


@pytest.fixture(scope="module")
def session_packets() -> tuple[tuple, list[Chunk]]:
    streams, chunks, _ = generate(DATA_S, seed=1)
    return streams, muse_packets(chunks)


def _eeg_packet_steps(streams: tuple, packets: list[Chunk]) -> tuple[DspPipeline, Callable[[], int]]:
    """A warmed-up pipeline and a step that feeds the packets up to the next EEG packet.

    Each step hands the pipeline everything that arrived up to and including the next 12-sample
    EEG packet (about 47 ms of data: the EEG packet plus the PPG and IMU packets in between) and
    advances it on the 0.5 s grid as far as every stream has been received, as SessionEngine does.
    """
    pipe = DspPipeline(streams)
    state = {"i": 0, "next_t": GRID_S}

    def step() -> int:
        i = state["i"]
        while i < len(packets):
            p = packets[i]
            pipe.update(p)
            i += 1
            if p.kind is SignalKind.EEG:
                break
        state["i"] = i
        done = pipe.received_until
        horizon = min(done.values()) if len(done) == len(streams) else -math.inf
        n = 0
        while state["next_t"] <= horizon:
            n += len(pipe.advance(state["next_t"]))
            state["next_t"] += GRID_S
        return n

    while packets[state["i"]].times[-1] < WARMUP_S:
        step()
    return pipe, step


def test_bench_pipeline_update_advance_per_eeg_packet(benchmark, session_packets) -> None:  # type: ignore[no-untyped-def]
    streams, packets = session_packets
    pipe, step = _eeg_packet_steps(streams, packets)
    eeg_left = sum(1 for p in packets if p.kind is SignalKind.EEG and p.times[-1] >= WARMUP_S)
    # a fixed number of rounds, so the data cannot run out however fast the machine is
    benchmark.pedantic(step, rounds=max(1, eeg_left - 2), iterations=1)
    latest = pipe.latest_at(float(packets[-1].times[-1]))
    assert {"hr_bpm", "eeg_relaxation", "quality_accel"} <= {m.value for m in latest}


def test_muse_packets_keep_every_sample_in_time_order(session_packets) -> None:  # type: ignore[no-untyped-def]
    _, packets = session_packets
    for kind, size in PACKET_SAMPLES.items():
        mine = [p for p in packets if p.kind is kind]
        assert mine and all(p.n_times == size for p in mine[:-1]) and mine[-1].n_times <= size
        times = np.concatenate([p.times for p in mine])
        assert np.all(np.diff(times) > 0)
        assert times.size == int(DATA_S * mine[0].sfreq) + 1  # samples 0 .. DATA_S * sfreq
    ends = [float(p.times[-1]) for p in packets]
    assert ends == sorted(ends)


def test_run_and_report_on_a_short_session() -> None:
    res = run(duration_s=12.0, seed=2, profile_s=4.0)
    assert res["n_packets"] == sum(res["n_packets_by_kind"].values())
    assert res["n_decisions"] >= res["n_decision_ticks"] > 0
    assert res["engine"]["x_realtime_cpu"] > 0 and res["pipeline"]["x_realtime_cpu"] > 0
    shares = sum(c["share"] for c in res["components"].values())
    assert shares == pytest.approx(1.0, abs=1e-6)  # the components add up to the whole pass
    assert res["profile_rows"]
    md = to_markdown(res)
    assert "| whole engine" in md and "decision ticks, CPU" in md and "respiration" in md
