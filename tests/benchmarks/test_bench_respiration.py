"""Latency benchmarks of adaptive.respiration, and checks of the benchmark module's helpers.

By default pytest runs with ``--benchmark-disable``, so each benchmark runs once as a test. For
numbers: ``pytest tests/benchmarks/test_bench_respiration.py --benchmark-enable --benchmark-only``.
The accuracy benchmark against BIDMC and the peers is ``python -m experiments.bench.respiration``.
"""

from __future__ import annotations

import gzip
import itertools
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from adaptive.respiration import RespirationEstimator, rate_from_ppg
from adaptive.types import Chunk, SignalKind
from experiments.bench.respiration import (
    agreement,
    belt_breaths,
    interval_rate,
    load_bidmc,
    run,
    to_markdown,
    window_ends,
)

PPG_FS, ACC_FS = 64.0, 52.0
PPG_PACKET, ACC_PACKET = 6, 3  # samples per Muse PPG / accelerometer packet


def _ppg(n: int, fs: float, rate_brpm: float = 12.0) -> np.ndarray:
    t = np.arange(n) / fs
    resp = np.sin(2 * np.pi * rate_brpm / 60.0 * t)
    pulse = (0.5 - 0.5 * np.cos(2 * np.pi * np.cumsum(1.2 * (1 + 0.04 * resp)) / fs)) ** 3
    return 1.0 + 0.3 * resp + (1.0 + 0.15 * resp) * pulse


def muse_chunks(seconds: float = 600.0) -> Iterator[Chunk]:
    """Endless PPG and accelerometer packets in time order (pre-built: only update() is timed).

    The list is cycled after ``seconds``; the jump back in time is rare and only cuts a window.
    """
    n_p, n_a = int(seconds * PPG_FS), int(seconds * ACC_FS)
    tp, ta = np.arange(n_p) / PPG_FS, np.arange(n_a) / ACC_FS
    ppg = _ppg(n_p, PPG_FS)
    acc = np.vstack([0.2 + 0.004 * np.sin(2 * np.pi * 0.2 * ta), 0.05 + 0 * ta, 0.98 + 0 * ta])
    chunks = [Chunk(SignalKind.PPG, ppg[np.newaxis, i : i + PPG_PACKET], tp[i : i + PPG_PACKET], PPG_FS,
                    ("PPG_IR",)) for i in range(0, n_p - PPG_PACKET + 1, PPG_PACKET)]
    chunks += [Chunk(SignalKind.ACCEL, acc[:, i : i + ACC_PACKET], ta[i : i + ACC_PACKET], ACC_FS,
                     ("ACC_X", "ACC_Y", "ACC_Z")) for i in range(0, n_a - ACC_PACKET + 1, ACC_PACKET)]
    chunks.sort(key=lambda c: float(c.times[-1]))
    return itertools.cycle(chunks)


def test_bench_respiration_update_per_packet(benchmark) -> None:  # type: ignore[no-untyped-def]
    """Mean cost of one update() on Muse-sized packets (PPG and accelerometer interleaved)."""
    chunks = muse_chunks()
    est = RespirationEstimator(PPG_FS, ACC_FS)
    for _ in range(int(70 * (PPG_FS / PPG_PACKET + ACC_FS / ACC_PACKET))):  # warm up past the first window
        est.update(next(chunks))
    out = benchmark(lambda: est.update(next(chunks)))
    assert isinstance(out, list)


def test_bench_rate_from_ppg_two_minutes(benchmark) -> None:  # type: ignore[no-untyped-def]
    x = _ppg(int(120 * 125), 125.0)
    r = benchmark(rate_from_ppg, x, 125.0)
    assert abs(np.nanmedian(r.rate_bpm[r.times_s > 60]) - 12.0) < 0.3


# ------------------------------------------------------------------ benchmark-module helpers
def test_window_ends_and_interval_rate() -> None:
    ends = window_ends(125 * 40, 125.0, 32.0)
    assert ends[0] == 125 * 32 and np.all(np.diff(ends) == 125) and ends[-1] == 125 * 40
    breaths = np.arange(0, 125 * 60, 125 * 4)  # every 4 s: 15 breaths/min
    assert interval_rate(breaths, 0, 125 * 32, 125.0) == pytest.approx(15.0)
    assert math.isnan(interval_rate(breaths, 0, 125 * 3, 125.0))  # fewer than two breaths


def test_agreement_statistics() -> None:
    ref = np.array([10.0, 12.0, np.nan, 14.0, 16.0])
    est = np.array([11.0, 11.0, 5.0, np.nan, 19.0])
    a = agreement(est, ref)
    assert a["n_windows"] == 4 and a["coverage"] == pytest.approx(0.75)
    assert a["mae"] == pytest.approx(5.0 / 3.0) and a["within_2"] == pytest.approx(2.0 / 3.0)
    assert a["bias"] == pytest.approx(1.0)
    assert a["loa_high"] - a["bias"] == pytest.approx(a["bias"] - a["loa_low"])


def test_belt_breaths_counts_a_clean_belt() -> None:
    fs = 100.0
    t = np.arange(int(120 * fs)) / fs
    belt = np.sin(2 * np.pi * 0.25 * t) + 0.05 * np.random.default_rng(0).standard_normal(t.size)
    assert belt_breaths(belt, fs).size == pytest.approx(30, abs=1)  # 15/min for 2 min


def _write_bidmc(folder: Path, name: str, index_column: bool, gz: bool, seconds: float = 70.0) -> None:
    fs = 125.0
    n = int(seconds * fs)
    ppg = _ppg(n, fs, rate_brpm=15.0)
    resp = np.sin(2 * np.pi * 0.25 * np.arange(n) / fs)
    header = ["Time [s]", " RESP", " PLETH", " II"]
    rows = [[f"{i / fs:.5g}", f"{resp[i]:.5f}", f"{ppg[i]:.5f}", "0.5"] for i in range(n)]
    if index_column:
        header = ["", *header]
        rows = [[str(i), *r] for i, r in enumerate(rows)]
    text = "\n".join(",".join(r) for r in [header, *rows]) + "\n"
    sig = folder / f"bidmc_{name}_Signals.csv{'.gz' if gz else ''}"
    sig.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    breaths = np.arange(60, n, int(4 * fs))
    bh = ["breaths ann1 [signal sample no]", " breaths ann2 [signal sample no]"]
    brows = [[str(b), str(b + 2) if k < breaths.size - 1 else ""] for k, b in enumerate(breaths)]
    if index_column:
        bh = ["", *bh]
        brows = [[str(i), *r] for i, r in enumerate(brows)]
    (folder / f"bidmc_{name}_Breaths.csv").write_text("\n".join(",".join(r) for r in [bh, *brows]) + "\n")


def test_load_bidmc_accepts_both_layouts(tmp_path: Path) -> None:
    folder = tmp_path / "bidmc" / "records"
    folder.mkdir(parents=True)
    _write_bidmc(folder, "01", index_column=True, gz=True)
    _write_bidmc(folder, "02", index_column=False, gz=False)
    recs = load_bidmc(tmp_path)
    assert [r.name for r in recs] == ["01", "02"]
    np.testing.assert_allclose(recs[0].ppg, recs[1].ppg)
    assert recs[0].ann1.size == recs[1].ann1.size and recs[0].ann2.size == recs[0].ann1.size - 1


def test_run_and_markdown_on_a_tiny_folder(tmp_path: Path) -> None:
    folder = tmp_path / "bidmc" / "records"
    folder.mkdir(parents=True)
    _write_bidmc(folder, "01", index_column=True, gz=True, seconds=80.0)
    result = run(tmp_path, (32.0,), peers=False, workers=1, simulated=False)
    row = result["bidmc"]["32"]["methods"]["calmloop"]
    assert row["coverage"] > 0.9 and row["mae"] < 1.0  # 15 breaths/min, clean synthetic pulse
    md = to_markdown(result)
    assert "| calmloop" in md and "32 s windows" in md
