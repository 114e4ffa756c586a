"""Breathing-rate benchmark: calmloop's PPG estimator beside peer methods on the same windows.

Every method estimates one rate per window (length ``window_s``, step 1 s, windows ending at
whole seconds of data) and is compared with a reference rate of the *same* window:

* **BIDMC** (``bidmc/``, 21 ICU records, PPG at 125 Hz): reference = 60 / mean interval of
  annotator 1's breaths inside the window (the dataset README's definition; Pimentel et al.
  2017).  Annotator 2 on the same windows is listed as the human-agreement row.
* **NeuroKit resting** (``neurokit_resting/``, one healthy adult, PPG and belt at 100 Hz):
  reference from the respiration belt: the whole belt signal is band-passed 0.1-0.7 Hz
  (zero-phase Butterworth, order 2; the reference may look ahead), breath peaks are maxima at
  least 1.5 s apart with a prominence of at least 0.3 times the belt's interquartile range,
  and the window's reference is 60 / mean interval of the peaks inside it.
* **Simulated slow breathing** (when :mod:`sensors.simulated` is importable): the compliant
  simulated patient paced at 5, 6 and 7 breaths/min; reference = the simulator's true
  instantaneous rate averaged over the window; evaluated from 120 s on (after the patient has
  settled on the pace).

Methods (each causal: a value at window end ``t`` uses samples up to ``t`` only):

* ``calmloop``: :func:`adaptive.respiration.rate_from_ppg` (``window_s`` as the benchmark's
  window, step 1 s).  It tracks the rate across windows, so its value at ``t`` also depends on
  earlier windows (never on later samples).
* ``neurokit2_riiv``: NeuroKit2's intensity-variation path on the window's samples only:
  ``nk.ecg_rsp(raw PPG)`` (van Gent 2019 band-pass 0.1-0.4 Hz of the PPG itself: the baseline)
  then ``nk.rsp_rate`` (trough method), averaged over the window.
* ``neurokit2_ibi``: NeuroKit2's beat-interval path: ``nk.ppg_clean`` -> ``nk.ppg_peaks`` ->
  ``nk.signal_rate`` (exactly what ``nk.ppg_process`` computes for ``PPG_Rate``, without its
  quality column, which neither path uses and which takes 90 % of its run time) ->
  ``nk.ecg_rsp`` -> ``nk.rsp_rate``, averaged over the window.
* ``heartpy``: ``hp.process(window, fs)["breathingrate"]`` (Welch spectrum of the beat
  intervals, HeartPy defaults), times 60.
* ``spectral_baseline``: plain spectral peak of the PPG baseline: zero-phase low-pass 1 Hz
  (Butterworth order 4) of the window, resampled at 4 Hz, linear detrend, Hann taper,
  periodogram maximum in 4-40 breaths/min.

A method that fails on a window (an exception, too few peaks) gives NaN there; coverage is the
share of windows with a reference and a finite estimate.  Metrics: MAE, median absolute error,
RMSE, share within 2 breaths/min, bias with 95 % limits of agreement (bias +- 1.96 SD), coverage,
and the MAE on the windows that *every* method covers (the fairest side-by-side column).

NeuroKit2 and HeartPy are the optional ``bench`` extra; when missing their rows say "not
installed".  Peers run in worker processes (one task per record and window length).

Run ``python -m experiments.bench.respiration [DATA_DIR] [--out report.md]``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import importlib.metadata
import io
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import butter, find_peaks, sosfiltfilt

from adaptive.respiration import RATE_MAX_BRPM, RATE_MIN_BRPM, rate_from_ppg

logger = logging.getLogger(__name__)

__all__ = ["BidmcRecord", "load_bidmc", "load_neurokit_resting", "main", "run", "to_markdown"]

STEP_S = 1.0
PEERS = ("neurokit2_riiv", "neurokit2_ibi", "heartpy", "spectral_baseline")
METHODS = ("calmloop", *PEERS)
SIM_PACES_BRPM = (5.0, 6.0, 7.0)
SIM_DURATION_S = 240.0
SIM_EVAL_FROM_S = 120.0
SIM_SEEDS = (0, 1)
QUALITY_BANDS = ((0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.01))


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BidmcRecord:
    """One BIDMC record: PPG and breath annotations (sample indices at ``sfreq``)."""

    name: str
    sfreq: float
    ppg: np.ndarray
    ann1: np.ndarray
    ann2: np.ndarray


def _read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    """Header (stripped names) and float table of a CSV or CSV.GZ file (empty cells -> NaN)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", newline="") as fh:  # type: ignore[operator]
        header = [h.strip() for h in next(csv.reader(fh))]
        body = fh.read()
    try:  # fast path: numpy's C parser (no empty cells)
        table = np.loadtxt(io.StringIO(body), delimiter=",", ndmin=2)
    except ValueError:  # empty cells (the annotation columns have different lengths)
        reader = csv.reader(io.StringIO(body))
        rows = [[float(v) if v.strip() else math.nan for v in row] for row in reader if row]
        table = np.asarray(rows, dtype=np.float64)
    return header, table.reshape(-1, len(header))


def _column(header: list[str], table: np.ndarray, *keys: str) -> np.ndarray:
    """The first column whose stripped, lower-cased name contains all ``keys``."""
    for i, name in enumerate(header):
        low = name.lower()
        if all(k.lower() in low for k in keys):
            return table[:, i]
    raise KeyError(f"no column with {keys!r} in {header!r}")


def _bidmc_dir(data_dir: Path) -> Path:
    data_dir = Path(data_dir)
    for cand in (data_dir / "bidmc" / "records", data_dir / "records", data_dir / "bidmc", data_dir):
        if cand.is_dir() and any(cand.glob("bidmc_*_Signals.csv*")):
            return cand
    raise FileNotFoundError(f"no bidmc_*_Signals.csv(.gz) files under {data_dir}")


def load_bidmc(data_dir: Path, sfreq: float = 125.0) -> list[BidmcRecord]:
    """Load every BIDMC record found under ``data_dir`` (either CSV layout, gzipped or not).

    Columns are selected by stripped name (``PLETH``; ``ann1``/``ann2``), so the extra pandas
    index column of the repository copy and the varying column order do not matter; timing is
    ``sample_index / sfreq`` (the ``Time [s]`` column has only 5 significant digits).
    """
    folder = _bidmc_dir(data_dir)
    records = []
    for sig_path in sorted(folder.glob("bidmc_*_Signals.csv*")):
        name = sig_path.name.split("_")[1]
        breaths = [p for p in folder.glob(f"bidmc_{name}_Breaths.csv*")]
        if not breaths:
            logger.warning("BIDMC %s: no breath annotations, skipped", name)
            continue
        header, table = _read_csv(sig_path)
        ppg = _column(header, table, "pleth")
        bh, bt = _read_csv(breaths[0])
        ann1 = _column(bh, bt, "ann1")
        ann2 = _column(bh, bt, "ann2")
        records.append(BidmcRecord(name, sfreq, ppg, ann1[np.isfinite(ann1)], ann2[np.isfinite(ann2)]))
    return records


def load_neurokit_resting(data_dir: Path) -> tuple[float, np.ndarray, np.ndarray] | None:
    """(sfreq, PPG, belt) of the NeuroKit resting record, or None when absent."""
    data_dir = Path(data_dir)
    for cand in (data_dir / "neurokit_resting", data_dir):
        path = cand / "bio_resting_5min_100hz.csv"
        if path.is_file():
            header, table = _read_csv(path)
            return 100.0, _column(header, table, "ppg"), _column(header, table, "rsp")
    return None


# ---------------------------------------------------------------------------------------------
# Windows, references, peers
# ---------------------------------------------------------------------------------------------


def window_ends(n_samples: int, sfreq: float, window_s: float) -> np.ndarray:
    """Exclusive end sample of every window (ends at whole seconds, full windows only)."""
    wn, hn = int(round(window_s * sfreq)), int(round(STEP_S * sfreq))
    ends = np.arange(hn, n_samples + 1, hn)
    return ends[ends >= wn]


def interval_rate(events: np.ndarray, start: float, stop: float, sfreq: float) -> float:
    """60 / mean interval (breaths/min) of the events (sample indices) in ``[start, stop)``."""
    inside = events[(events >= start) & (events < stop)]
    if inside.size < 2:
        return math.nan
    return float(60.0 * sfreq / np.mean(np.diff(inside)))


def belt_breaths(belt: np.ndarray, sfreq: float) -> np.ndarray:
    """Breath peaks (sample indices) of a respiration belt (see the module notes)."""
    sos = butter(2, [0.1, 0.7], btype="bandpass", fs=sfreq, output="sos")
    x = sosfiltfilt(sos, belt - np.mean(belt))
    iqr = float(np.subtract(*np.percentile(x, [75, 25])))
    peaks, _ = find_peaks(x, distance=int(1.5 * sfreq), prominence=0.3 * iqr)
    return peaks.astype(np.float64)


def _peer_versions() -> dict[str, str]:
    """Installed versions of the optional peers (package metadata: no slow import)."""
    out = {}
    for dist in ("neurokit2", "heartpy"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _spectral_baseline(win: np.ndarray, sfreq: float) -> float:
    sos = butter(4, 1.0, btype="lowpass", fs=sfreq, output="sos")
    base = sosfiltfilt(sos, win - np.mean(win))
    t = np.arange(win.size) / sfreq
    g = np.arange(0.0, t[-1], 0.25)
    y = np.interp(g, t, base)
    y = y - np.polyval(np.polyfit(g, y, 1), g)
    n_fft = 4096
    p = np.abs(np.fft.rfft(y * np.hanning(y.size), n_fft)) ** 2
    f = np.fft.rfftfreq(n_fft, 0.25) * 60.0
    band = (f >= RATE_MIN_BRPM) & (f <= RATE_MAX_BRPM)
    return float(f[band][np.argmax(p[band])])


def _make_peers() -> dict[str, Callable[[np.ndarray, float], float]]:
    peers: dict[str, Callable[[np.ndarray, float], float]] = {"spectral_baseline": _spectral_baseline}
    try:
        import neurokit2 as nk
    except ImportError:
        nk = None
    if nk is not None:
        def nk_rate(edr: np.ndarray, sfreq: float) -> float:
            rate = nk.rsp_rate(edr, sampling_rate=sfreq)
            rate = np.asarray(rate, dtype=np.float64)
            return float(np.nanmean(rate)) if np.isfinite(rate).any() else math.nan

        def nk_riiv(win: np.ndarray, sfreq: float) -> float:
            return nk_rate(np.asarray(nk.ecg_rsp(win, sampling_rate=sfreq)), sfreq)

        def nk_ibi(win: np.ndarray, sfreq: float) -> float:
            clean = nk.ppg_clean(win, sampling_rate=sfreq)
            _, info = nk.ppg_peaks(clean, sampling_rate=sfreq)
            hr = nk.signal_rate(info["PPG_Peaks"], sampling_rate=sfreq, desired_length=win.size)
            return nk_rate(np.asarray(nk.ecg_rsp(hr, sampling_rate=sfreq)), sfreq)

        peers["neurokit2_riiv"] = nk_riiv
        peers["neurokit2_ibi"] = nk_ibi
    try:
        import heartpy as hp
    except ImportError:
        hp = None
    if hp is not None:
        def heartpy_rate(win: np.ndarray, sfreq: float) -> float:
            _, m = hp.process(win, sfreq)
            return float(m["breathingrate"]) * 60.0

        peers["heartpy"] = heartpy_rate
    return peers


def _safe(fn: Callable[[np.ndarray, float], float], win: np.ndarray, sfreq: float) -> float:
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            v = float(fn(win, sfreq))
    except Exception:  # a peer failing on a window is a missing estimate, as it would be live
        return math.nan
    return v if math.isfinite(v) and v > 0 else math.nan


def _evaluate_signal(ppg: np.ndarray, sfreq: float, window_s: float, ref: Callable[[int, int], float],
                     peers: bool) -> dict[str, np.ndarray]:
    """Reference and every method's estimate on every window of one signal."""
    ends = window_ends(ppg.size, sfreq, window_s)
    wn = int(round(window_s * sfreq))
    out: dict[str, np.ndarray] = {"ref": np.array([ref(int(e) - wn, int(e)) for e in ends])}
    ours = rate_from_ppg(ppg, sfreq, window_s=window_s, step_s=STEP_S)
    ours_end = np.round(ours.times_s * sfreq).astype(np.int64) + 1
    lookup = dict(zip(ours_end.tolist(), zip(ours.rate_bpm.tolist(), ours.quality.tolist())))
    out["calmloop"] = np.array([lookup.get(int(e), (math.nan, 0.0))[0] for e in ends])
    out["calmloop_quality"] = np.array([lookup.get(int(e), (math.nan, 0.0))[1] for e in ends])
    if peers:
        fns = _make_peers()
        for name in PEERS:
            fn = fns.get(name)
            if fn is None:
                continue
            # windows without a reference are not scored: skip them (peers are slow)
            out[name] = np.array([_safe(fn, ppg[int(e) - wn : int(e)], sfreq) if np.isfinite(r) else math.nan
                                  for e, r in zip(ends, out["ref"])])
    return out


def _bidmc_task(args: tuple[BidmcRecord, float, bool]) -> tuple[str, float, dict[str, np.ndarray]]:
    rec, window_s, peers = args
    res = _evaluate_signal(rec.ppg, rec.sfreq, window_s,
                           lambda a, b: interval_rate(rec.ann1, a, b, rec.sfreq), peers)
    ends = window_ends(rec.ppg.size, rec.sfreq, window_s)
    wn = int(round(window_s * rec.sfreq))
    res["annotator_2"] = np.array([interval_rate(rec.ann2, int(e) - wn, int(e), rec.sfreq) for e in ends])
    return rec.name, window_s, res


def _nk_task(
    args: tuple[float, np.ndarray, np.ndarray, float, bool],
) -> tuple[str, float, dict[str, np.ndarray]]:
    sfreq, ppg, belt, window_s, peers = args
    breaths = belt_breaths(belt, sfreq)
    res = _evaluate_signal(ppg, sfreq, window_s, lambda a, b: interval_rate(breaths, a, b, sfreq), peers)
    return "neurokit_resting", window_s, res


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


def agreement(est: np.ndarray, ref: np.ndarray, common: np.ndarray | None = None) -> dict[str, float]:
    """Error statistics of ``est`` against ``ref`` over windows with a finite reference."""
    est, ref = np.asarray(est, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    has_ref = np.isfinite(ref)
    ok = has_ref & np.isfinite(est)
    d = est[ok] - ref[ok]
    n_ref = int(has_ref.sum())
    out: dict[str, float] = {"n_windows": float(n_ref),
                             "coverage": float(ok.sum() / n_ref) if n_ref else math.nan}
    if d.size == 0:
        out.update(mae=math.nan, median_ae=math.nan, rmse=math.nan, within_2=math.nan, bias=math.nan,
                   loa_low=math.nan, loa_high=math.nan)
    else:
        sd = float(np.std(d, ddof=1)) if d.size > 1 else 0.0
        bias = float(np.mean(d))
        out.update(mae=float(np.mean(np.abs(d))), median_ae=float(np.median(np.abs(d))),
                   rmse=float(np.sqrt(np.mean(d**2))), within_2=float(np.mean(np.abs(d) <= 2.0)),
                   bias=bias, loa_low=bias - 1.96 * sd, loa_high=bias + 1.96 * sd)
    if common is not None:
        c = common & has_ref
        out["mae_common"] = float(np.mean(np.abs(est[c] - ref[c]))) if c.any() else math.nan
    return out


def _summarise(per_record: dict[str, dict[str, np.ndarray]], methods: Sequence[str]) -> dict[str, Any]:
    names = sorted(per_record)
    ref = np.concatenate([per_record[r]["ref"] for r in names])
    cols = {m: np.concatenate([per_record[r][m] for r in names])
            for m in methods if m in per_record[names[0]]}
    common = np.all([np.isfinite(v) for k, v in cols.items() if k != "annotator_2"], axis=0)
    table = {m: agreement(v, ref, common) for m, v in cols.items()}
    per_rec_mae = {r: float(np.nanmean(np.abs(per_record[r]["calmloop"] - per_record[r]["ref"])))
                   for r in names}
    # is calmloop's quality informative?  MAE per quality band
    q = np.concatenate([per_record[r]["calmloop_quality"] for r in names])
    err = np.abs(cols["calmloop"] - ref)
    bands = {}
    for lo, hi in QUALITY_BANDS:
        m = np.isfinite(err) & (q >= lo) & (q < hi)
        bands[f"{lo:g}-{min(hi, 1.0):g}"] = (int(m.sum()), float(np.mean(err[m])) if m.any() else math.nan)
    return {"methods": table, "n_common": int(np.sum(common & np.isfinite(ref))),
            "calmloop_mae_per_record": per_rec_mae, "calmloop_mae_by_quality": bands}


# ---------------------------------------------------------------------------------------------
# Simulated slow breathing
# ---------------------------------------------------------------------------------------------


def _sim_task(args: tuple[float, int, tuple[float, ...]]) -> dict[str, list[float]]:
    """Errors (estimate - truth) of one simulated paced session, per window length and path."""
    pace, seed, window_s_list = args
    from sensors.simulated import SimulatedPatient

    from adaptive.respiration import RespirationConfig, RespirationEstimator
    from adaptive.types import Metric, SignalKind

    sim = SimulatedPatient("compliant", seed=seed)
    sim.start()
    sim.set_pace(pace)
    chunks = []
    t = 0.0
    while t < SIM_DURATION_S:
        t += 5.0
        chunks += [c for c in sim.poll(t) if c.kind in (SignalKind.PPG, SignalKind.ACCEL)]
    ppg = np.concatenate([c.data[0] for c in chunks if c.kind == SignalKind.PPG])
    errors: dict[str, list[float]] = {}
    for window_s in window_s_list:
        offline = rate_from_ppg(ppg, 64.0, window_s=window_s, step_s=STEP_S)
        est = RespirationEstimator(64.0, 52.0, config=RespirationConfig(window_s=window_s, hop_s=STEP_S))
        fused = [e for c in chunks for e in est.update(c) if e.metric == Metric.RESP_RATE_BRPM]
        for key, times, values in (
            ("ppg", offline.times_s, offline.rate_bpm),
            ("fused", np.array([e.time for e in fused]), np.array([e.value for e in fused])),
        ):
            keep = times >= SIM_EVAL_FROM_S
            truth = np.array([np.mean(sim.truth(np.arange(te - window_s, te, 0.25)).resp_rate_brpm)
                              for te in times[keep]])
            errors[f"{pace:g}|{window_s:g}|{key}"] = (values[keep] - truth).tolist()
    return errors


def _sim_rows(parts: list[dict[str, list[float]]]) -> dict[str, Any]:
    merged: dict[str, list[float]] = {}
    for part in parts:
        for key, e in part.items():
            merged.setdefault(key, []).extend(e)
    rows: dict[str, Any] = {}
    for key in sorted(merged, key=lambda k: (float(k.split("|")[0]), float(k.split("|")[1]), k)):
        pace, window_s, path = key.split("|")
        arr = np.asarray(merged[key])
        fin = arr[np.isfinite(arr)]
        rows[key] = {
            "pace_brpm": float(pace), "window_s": float(window_s), "path": path,
            "mae": float(np.mean(np.abs(fin))) if fin.size else math.nan,
            "max_abs": float(np.max(np.abs(fin))) if fin.size else math.nan,
            "bias": float(np.mean(fin)) if fin.size else math.nan,
            "coverage": float(fin.size / arr.size) if arr.size else math.nan,
        }
    return rows


def _simulator_available() -> bool:
    try:
        import sensors.simulated  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------


def run(data_dir: Path, window_s_list: Sequence[float] = (32.0, 64.0), *, peers: bool = True,
        workers: int | None = None, simulated: bool = True) -> dict[str, Any]:
    """Run the benchmark; return a nested dict of results (see :func:`to_markdown`).

    Parameters
    ----------
    data_dir : Path
        The shared data folder (holding ``bidmc/`` and ``neurokit_resting/``), or a folder of
        BIDMC files.
    window_s_list : sequence of float
        Window lengths in s.
    peers : bool
        Also run the peer methods (slow: about 30 ms per window).
    workers : int or None
        Worker processes (None: ``min(2, cpu count)``).
    simulated : bool
        Also run the simulated slow-breathing check when the simulator is importable.
    """
    t0 = time.perf_counter()
    data_dir = Path(data_dir)
    records = load_bidmc(data_dir)
    nk_rec = load_neurokit_resting(data_dir)
    tasks_b = [(rec, float(w), peers) for w in window_s_list for rec in records]
    tasks_n = [(nk_rec[0], nk_rec[1], nk_rec[2], float(w), peers) for w in window_s_list] if nk_rec else []
    tasks_s = ([(pace, seed, tuple(float(w) for w in window_s_list)) for pace in SIM_PACES_BRPM
                for seed in SIM_SEEDS] if simulated and _simulator_available() else [])
    n_workers = workers if workers is not None else max(1, min(2, os.cpu_count() or 1))
    if n_workers > 1:
        with ProcessPoolExecutor(n_workers) as pool:
            fut_s = pool.map(_sim_task, tasks_s, chunksize=1)
            fut_b = pool.map(_bidmc_task, tasks_b, chunksize=1)
            fut_n = pool.map(_nk_task, tasks_n, chunksize=1)
            results_s, results_b, results_n = list(fut_s), list(fut_b), list(fut_n)
    else:
        results_s = [_sim_task(t) for t in tasks_s]
        results_b = [_bidmc_task(t) for t in tasks_b]
        results_n = [_nk_task(t) for t in tasks_n]
    methods = (*METHODS, "annotator_2")
    out: dict[str, Any] = {"peers": _peer_versions(), "bidmc": {}, "neurokit_resting": {},
                           "records": [r.name for r in records], "step_s": STEP_S}
    for w in window_s_list:
        per = {name: res for name, ww, res in results_b if ww == float(w)}
        if per:
            out["bidmc"][f"{w:g}"] = _summarise(per, methods)
        per_n = {name: res for name, ww, res in results_n if ww == float(w)}
        if per_n:
            out["neurokit_resting"][f"{w:g}"] = _summarise(per_n, METHODS)
    out["simulated"] = (_sim_rows(results_s) if tasks_s else None) if simulated else "skipped"
    out["runtime_s"] = time.perf_counter() - t0
    return out


_LABELS = {
    "calmloop": "calmloop (rate_from_ppg)",
    "neurokit2_riiv": "NeuroKit2 intensity (ecg_rsp on PPG -> rsp_rate)",
    "neurokit2_ibi": "NeuroKit2 beat intervals (PPG_Rate -> ecg_rsp -> rsp_rate)",
    "heartpy": "HeartPy breathingrate",
    "spectral_baseline": "spectral peak of PPG baseline",
    "annotator_2": "annotator 2 (human agreement)",
}


def _fmt(v: float, digits: int = 2) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def _table(section: dict[str, Any], peers: dict[str, str]) -> list[str]:
    lines = [
        "| method | MAE | median AE | RMSE | within 2 | bias [95% LoA] | coverage | MAE on common windows |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in (*METHODS, "annotator_2"):
        row = section["methods"].get(m)
        label = _LABELS.get(m, m)
        if row is None:
            lib = "neurokit2" if m.startswith("neurokit2") else "heartpy" if m == "heartpy" else None
            if lib is not None and peers.get(lib) == "not installed":
                lines.append(f"| {label} | not installed | | | | | | |")
            continue
        lines.append(
            f"| {label} | {_fmt(row['mae'])} | {_fmt(row['median_ae'])} | {_fmt(row['rmse'])} | "
            f"{_fmt(100 * row['within_2'], 0)} % | {_fmt(row['bias'])} [{_fmt(row['loa_low'])}, "
            f"{_fmt(row['loa_high'])}] | {_fmt(100 * row['coverage'], 1)} % | "
            f"{_fmt(row.get('mae_common', math.nan))} |"
        )
    return lines


def to_markdown(result: dict[str, Any]) -> str:
    """Render :func:`run`'s result as markdown tables (breaths/min)."""
    peers = result.get("peers", {})
    lines = [
        "# Breathing rate from PPG: calmloop vs peers (breaths/min)",
        "",
        f"Peers: neurokit2 {peers.get('neurokit2', '?')}, heartpy {peers.get('heartpy', '?')}. "
        f"Step {result.get('step_s', STEP_S):g} s, causal windows; errors in breaths/min; "
        "'MAE on common windows' uses the windows every method covers. "
        f"Run time {result.get('runtime_s', 0):.0f} s.",
    ]
    for w, section in result.get("bidmc", {}).items():
        lines += ["", f"## BIDMC ({len(result.get('records', []))} records), {w} s windows "
                      f"({int(section['methods']['calmloop']['n_windows'])} windows with a reference, "
                      f"{section['n_common']} covered by all)", ""]
        lines += _table(section, peers)
        per = section.get("calmloop_mae_per_record", {})
        if per:
            lines += ["", "calmloop MAE per record: "
                      + ", ".join(f"{k} {_fmt(v, 1)}" for k, v in per.items())]
        bands = section.get("calmloop_mae_by_quality", {})
        if bands:
            lines += ["", "calmloop MAE by its quality: " + ", ".join(
                f"q {k}: {_fmt(v[1])} (n={v[0]})" for k, v in bands.items())]
    for w, section in result.get("neurokit_resting", {}).items():
        lines += ["", f"## NeuroKit resting record (belt reference), {w} s windows "
                      f"({int(section['methods']['calmloop']['n_windows'])} windows)", ""]
        lines += _table(section, peers)
    sim = result.get("simulated")
    if isinstance(sim, dict):
        lines += ["", "## Simulated slow breathing (SimulatedPatient 'compliant', paced; from 120 s)", "",
                  "| pace | window | path | MAE | max abs error | bias | coverage |",
                  "|---|---|---|---|---|---|---|"]
        for row in sim.values():
            lines.append(f"| {row['pace_brpm']:g} | {row['window_s']:g} s | {row['path']} | "
                         f"{_fmt(row['mae'])} | {_fmt(row['max_abs'])} | {_fmt(row['bias'])} | "
                         f"{_fmt(100 * row['coverage'], 0)} % |")
    elif sim is None:
        lines += ["", "Simulated slow breathing: sensors.simulated not importable (skipped)."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: run the benchmark and print (or write) the markdown report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = Path(__file__).resolve().parents[3] / "shared" / "data"
    parser.add_argument("data_dir", nargs="?", type=Path, default=default)
    parser.add_argument("--windows", type=float, nargs="+", default=[32.0, 64.0])
    parser.add_argument("--no-peers", action="store_true", help="calmloop only (fast)")
    parser.add_argument("--no-sim", action="store_true", help="skip the simulated slow-breathing check")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result = run(args.data_dir, tuple(args.windows), peers=not args.no_peers, workers=args.workers,
                 simulated=not args.no_sim)
    report = to_markdown(result)
    sys.stdout.write(report)
    if args.out is not None:
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
