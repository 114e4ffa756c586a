"""Latency benchmarks of adaptive.eeg, and checks of the benchmark module's helpers.

By default pytest runs with ``--benchmark-disable``, so each benchmark runs once as a test. For
numbers: ``pytest tests/benchmarks/test_bench_eeg.py --benchmark-enable --benchmark-only``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pytest

from adaptive.eeg import MUSE_CH_NAMES, EegEstimator, eeg_features
from adaptive.types import Chunk, SignalKind
from experiments.bench.eeg import auc, ema, to_markdown, window_ends

SFREQ = 256.0
PACKET = 12  # samples per Muse EEG packet


def muse_chunks(seconds: float = 30.0, seed: int = 0) -> Iterator[Chunk]:
    """Endless 12-sample chunks of noisy 10 Hz EEG, pre-built so that only update() is timed.

    The list is cycled, so times jump back after ``seconds``; the estimator's output does not
    depend on times, only on the sample count, so the cost per update is unaffected.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * SFREQ) // PACKET * PACKET
    t = np.arange(n) / SFREQ
    x = 10.0 * rng.standard_normal((4, n)) + 20.0 * np.sin(2 * np.pi * 10.0 * t)
    chunks = [
        Chunk(SignalKind.EEG, x[:, i : i + PACKET], t[i : i + PACKET], SFREQ, MUSE_CH_NAMES)
        for i in range(0, n, PACKET)
    ]
    return itertools.cycle(chunks)


def test_bench_eeg_update_per_packet(benchmark) -> None:  # type: ignore[no-untyped-def]
    est = EegEstimator(MUSE_CH_NAMES, SFREQ)
    chunks = muse_chunks()
    for _ in range(100):  # past the first 4 s window: steady state, one spectrum every ~21 packets
        est.update(next(chunks))
    benchmark(lambda: est.update(next(chunks)))
    assert est.latest is not None


def test_bench_eeg_features_per_window(benchmark) -> None:  # type: ignore[no-untyped-def]
    window = 10.0 * np.random.default_rng(1).standard_normal((4, 1024))
    feat = benchmark(lambda: eeg_features(window, SFREQ))
    assert feat.quality == 1.0


def test_auc_and_windows_helpers() -> None:
    assert auc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0
    assert auc(np.array([1.0]), np.array([1.0])) == 0.5  # ties count half
    assert auc(np.array([0.0, np.nan]), np.array([1.0])) == 0.0  # NaN dropped
    ends = window_ends(10 * 256, SFREQ)
    assert ends[0] == 1024 and ends[-1] == 2560 and np.all(np.diff(ends) == 256)
    smoothed = ema(np.array([0.0, 1.0, np.nan, 1.0]), 1.0)
    assert smoothed[0] == 0.0 and smoothed[2] == smoothed[1] and 0 < smoothed[3] < 1


def test_to_markdown_renders_a_result() -> None:
    row = {f"{s}:relaxed_vs_{o}": 0.9 for s in ("subjecta", "subjectb") for o in ("concentrating", "neutral")}
    row |= {"mean:relaxed_vs_concentrating": 0.9, "mean:relaxed_vs_neutral": 0.9}
    subjects = ("subjecta", "subjectb")
    result = {
        "window_s": 4.0,
        "step_s": 1.0,
        "bird": {
            "subjects": ["subjecta", "subjectb"],
            "auc": {"per_window": {"calmloop": row}, "ema_8s": {"calmloop": row}},
            "n_windows": {s: {"relaxed": 1, "neutral": 1, "concentrating": 1} for s in subjects},
            "mean_calmloop_index": {
                s: {"relaxed": 0.8, "neutral": 0.2, "concentrating": 0.3} for s in subjects
            },
            "quality": {"a-relaxed-1": {"relaxation_quality": 1.0, "eeg_quality": 1.0, "n_nan": 0}},
        },
        "mindmonitor": {"skipped": "absent"},
        "uci": {"skipped": "absent"},
        "elapsed_s": 1.0,
    }
    md = to_markdown(result)
    assert "| calmloop | 0.900 |" in md and "skipped (absent)" in md


@pytest.mark.shared_data
def test_bench_run_on_bird_subject_a(shared_data, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The benchmark's Bird path on a small copy (one relaxed and one concentrating file)."""
    from experiments.bench.eeg import _Restfulness, run_bird
    from adaptive.eeg import EegConfig

    folder = shared_data / "muse_mental_state_bird"
    for state in ("relaxed", "concentrating", "neutral"):
        src = folder / f"subjecta-{state}-1.csv"
        lines = src.read_text().splitlines()[: 1 + 12 * 256]  # first 12 s: 9 windows
        (tmp_path / src.name).write_text("\n".join(lines) + "\n")
    rest = _Restfulness()
    try:
        res = run_bird(tmp_path, rest, EegConfig())
    finally:
        rest.close()
    row = res["auc"]["per_window"]["calmloop"]
    assert res["n_windows"]["subjecta"]["relaxed"] == 9
    assert row["subjecta:relaxed_vs_concentrating"] > 0.8  # 0.99 on the full files
