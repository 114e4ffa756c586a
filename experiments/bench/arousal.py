"""Arousal and heart-rate benchmark: calmloop beside NeuroKit2 on recorded PPG.

Stress vs rest (``stress_predict_e4``: Empatica E4 wrist BVP, 64 Hz, subjects S01-S03)
------------------------------------------------------------------------------------------
Phases come from the wristband tags (precise, on the data clock) and the phase order of
``Time_logs.xlsx``: the first tag is matched to the logged phase starting nearest to it, and
the following tag intervals take the following logged phases in order.  Stress = Stroop Test,
Interview, Hyperventilation; rest = Relax and Relax/Baseline; other phases (consent,
questionnaires) are left out.  Windows are 60 s long every 5 s, ending at the times of
:func:`adaptive.arousal.arousal_from_ppg` (last sample of the window, from the first sample);
a window is labelled only if it lies entirely inside one labelled phase.  Every method scores
the same windows, and the score is the within-subject ROC AUC, P(stress window > rest
window), ties counted half, averaged over subjects:

* ``calmloop arousal``: :func:`adaptive.arousal.arousal_from_ppg` (NaN during the baseline
  scored as 0 = baseline level);
* ``calmloop HR``: :func:`adaptive.cardiac.ppg_hr` with a 60 s window and 5 s hop;
* ``NeuroKit2 HR``: mean of ``nk.ppg_process(...)["PPG_Rate"]`` over the window;
* ``NeuroKit2 -RMSSD``: minus the RMSSD (``nk.hrv_time``'s ``HRV_RMSSD`` formula, computed
  directly) of the ``nk.ppg_process`` peaks in the window;
* ``E4 device HR`` (extra reference): mean of the wristband's own ``HR.csv`` over the window;
* ``calmloop quality alone`` (confound check, not a method): the arousal *quality* used as the
  score.  The index shrinks low-quality inputs towards the baseline, so when the wrist signal is
  cleaner in one condition than the other (still hands during the Stroop test, moving hands while
  relaxing) part of the index's AUC can come from quality rather than physiology; an AUC far from
  0.5 here says so.

NaN scores of a peer are replaced by that subject's median score.  A second AUC restricted to
windows where calmloop's quality is at least 0.5 shows how the index does when it trusts itself.

Heart-rate accuracy (MAE, bpm)
------------------------------
* ``neurokit_resting`` (100 Hz finger PPG + ECG, 5 min): HR over 10 s windows every 1 s from
  :func:`adaptive.cardiac.ppg_hr` vs 60 / median RR of ``nk.ecg_peaks`` R peaks in the same
  window; NeuroKit2's PPG rate on the same windows for comparison.
* ``bidmc`` (125 Hz ICU finger PPG, 8 min per record): the same 10 s windows vs the
  bedside monitor's ECG heart rate (``Numerics.csv`` HR, 1 Hz, mean over the window) and vs
  ECG lead II R peaks (``nk.ecg_peaks``).  The monitor HR is the primary reference: lead II
  peak detection fails on some records (e.g. 13).

Run ``python -m experiments.bench.arousal [DATA_DIR] [--out report.md]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata

from adaptive.arousal import arousal_from_ppg
from adaptive.cardiac import CardiacConfig, ppg_hr

logger = logging.getLogger(__name__)

__all__ = ["main", "run", "to_markdown"]

WINDOW_S = 60.0
STEP_S = 5.0
HR_WINDOW_S = 10.0
STRESS = ("Stroop Test", "Interview", "Hyperventilation")
REST = ("Relax", "Relax/Baseline")
SUBJECTS = ("S01", "S02", "S03")
QUALITY_CHECK = "calmloop quality alone (confound check)"
METHODS = ("calmloop arousal", "calmloop HR", "NeuroKit2 HR", "NeuroKit2 -RMSSD", "E4 device HR", QUALITY_CHECK)
TARGET_AUC = 0.75


# -- helpers ---------------------------------------------------------------------------------------------
def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC P(score | label 1 > score | label 0), ties half (Mann-Whitney)."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return math.nan
    r = rankdata(s)
    return float((r[y].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def _neurokit() -> Any:
    try:
        import neurokit2 as nk
    except ImportError:
        return None
    return nk


def _fill(x: np.ndarray, value: float | None = None) -> np.ndarray:
    x = np.asarray(x, dtype=float).copy()
    bad = ~np.isfinite(x)
    if bad.any():
        x[bad] = (np.nanmedian(x) if np.isfinite(x).any() else 0.0) if value is None else value
    return x


# -- stress_predict_e4 ------------------------------------------------------------------------------------
def load_e4(data_dir: Path, subject: str) -> tuple[np.ndarray, float, float, list[tuple[float, float, str]]]:
    """BVP samples, rate, session start (Unix s) and labelled phases (start_s, end_s, name)."""
    import pandas as pd

    root = data_dir / "stress_predict_e4"
    raw = np.loadtxt(root / subject / "BVP.csv", delimiter=",")
    t0, fs, bvp = float(raw[0]), float(raw[1]), raw[2:].astype(float)
    tags = np.atleast_1d(np.loadtxt(root / subject / f"tags_{subject}.csv", delimiter=","))
    log = pd.read_excel(root / "Time_logs.xlsx", header=None)
    header = log.iloc[0]
    row = log[log[0] == subject].iloc[0]
    date_col = next(c for c in log.columns if str(header[c]).strip() == "Date")
    date = pd.Timestamp(row[date_col]).date()
    phases = []
    for c in log.columns:
        name = str(header[c]).strip()
        if str(log.iloc[1][c]).strip() != "Start" or name in ("nan", "Start Time"):
            continue
        start = dt.datetime.combine(date, row[c]).replace(tzinfo=dt.timezone.utc).timestamp()
        phases.append((start, name.replace("Questionniare", "Questionnaire")))
    phases.sort()
    k0 = int(np.argmin([abs(p[0] - tags[0]) for p in phases]))
    if len(phases) - k0 < len(tags) - 1:
        raise ValueError(f"{subject}: {len(tags)} tags but only {len(phases) - k0} logged phases after the first tag")
    segs = [(float(a - t0), float(b - t0), phases[k0 + i][1]) for i, (a, b) in enumerate(zip(tags[:-1], tags[1:]))]
    return bvp, fs, t0, segs


def _labels(ends: np.ndarray, segs: list[tuple[float, float, str]], window_s: float) -> np.ndarray:
    lab = np.full(ends.size, -1)
    for a, b, name in segs:
        inside = (ends - window_s >= a) & (ends <= b)
        if name in STRESS:
            lab[inside] = 1
        elif name in REST:
            lab[inside] = 0
    return lab


def _nk_scores(nk: Any, bvp: np.ndarray, fs: float, ends: np.ndarray, window_s: float) -> dict[str, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signals, info = nk.ppg_process(bvp, sampling_rate=int(round(fs)))
        rate = np.asarray(signals["PPG_Rate"], dtype=float)
        peaks = np.asarray(info["PPG_Peaks"], dtype=int)
        hr = np.full(ends.size, np.nan)
        rmssd = np.full(ends.size, np.nan)
        for k, te in enumerate(ends):
            i0, i1 = int(round((te - window_s) * fs)) + 1, int(round(te * fs)) + 1
            hr[k] = float(np.mean(rate[max(i0, 0) : i1]))
            p = peaks[(peaks >= i0) & (peaks < i1)]
            if p.size >= 4:  # HRV_RMSSD of nk.hrv_time, computed directly (it is 30x faster)
                rr_ms = np.diff(p) / fs * 1000.0
                rmssd[k] = float(np.sqrt(np.mean(np.diff(rr_ms) ** 2)))
    return {"NeuroKit2 HR": hr, "NeuroKit2 -RMSSD": -rmssd}


def run_stress(data_dir: Path, window_s: float = WINDOW_S, step_s: float = STEP_S) -> dict[str, Any]:
    """Within-subject AUC of stress vs rest windows for every method."""
    nk = _neurokit()
    out: dict[str, Any] = {"subjects": {}, "neurokit2": getattr(nk, "__version__", None)}
    for subject in SUBJECTS:
        t_start = time.perf_counter()
        bvp, fs, _, segs = load_e4(data_dir, subject)
        ar = arousal_from_ppg(bvp, fs, window_s=window_s, step_s=step_s)
        ends = ar.times_s
        lab = _labels(ends, segs, window_s)
        cfg = CardiacConfig(hr_window_s=window_s, hop_s=step_s)
        hr = ppg_hr(bvp, fs, config=cfg)
        if not np.allclose(hr.times, ends):
            raise AssertionError("calmloop HR and arousal windows differ")
        scores: dict[str, np.ndarray] = {
            "calmloop arousal": _fill(ar.value, 0.0),
            "calmloop HR": _fill(hr.values["hr_bpm"]),
        }
        if nk is not None:
            scores.update({k: _fill(v) for k, v in _nk_scores(nk, bvp, fs, ends, window_s).items()})
        e4_hr_file = data_dir / "stress_predict_e4" / subject / "HR.csv"
        if e4_hr_file.exists():
            e4 = np.loadtxt(e4_hr_file, delimiter=",")
            e4_t0, e4_hr = 10.0, e4[2:]  # HR.csv starts 10 s after the session start (README)
            e4_t = e4_t0 + np.arange(e4_hr.size)
            e4_scores = np.full(ends.size, np.nan)
            for k, te in enumerate(ends):
                m = (e4_t > te - window_s) & (e4_t <= te)
                if m.any():
                    e4_scores[k] = float(np.mean(e4_hr[m]))
            scores["E4 device HR"] = _fill(e4_scores)
        scores[QUALITY_CHECK] = ar.quality.copy()
        use = lab >= 0
        good = use & (ar.quality >= 0.5)
        res = {
            "n_stress": int(np.sum(lab == 1)),
            "n_rest": int(np.sum(lab == 0)),
            "auc": {m: auc(s[use], lab[use] == 1) for m, s in scores.items()},
            "n_good_stress": int(np.sum(good & (lab == 1))),
            "n_good_rest": int(np.sum(good & (lab == 0))),
            "auc_good": {m: auc(s[good], lab[good] == 1) for m, s in scores.items()},
            "mean_quality": {
                "stress": float(np.mean(ar.quality[lab == 1])),
                "rest": float(np.mean(ar.quality[lab == 0])),
            },
            "seconds": time.perf_counter() - t_start,
        }
        out["subjects"][subject] = res
        logger.info("%s: %s", subject, {k: round(v, 3) for k, v in res["auc"].items()})
    methods = [m for m in METHODS if all(m in r["auc"] for r in out["subjects"].values())]
    out["mean_auc"] = {m: float(np.nanmean([r["auc"][m] for r in out["subjects"].values()])) for m in methods}
    out["mean_auc_good"] = {
        m: float(np.nanmean([r["auc_good"][m] for r in out["subjects"].values()])) for m in methods
    }
    return out


# -- heart-rate accuracy ------------------------------------------------------------------------------------
def _hr_windows_from_peaks(peak_s: np.ndarray, ends: np.ndarray, window_s: float) -> np.ndarray:
    out = np.full(ends.size, np.nan)
    for k, te in enumerate(ends):
        p = peak_s[(peak_s > te - window_s) & (peak_s <= te)]
        if p.size >= 3:
            out[k] = 60.0 / float(np.median(np.diff(p)))
    return out


def _mae(est: np.ndarray, ref: np.ndarray) -> tuple[float, int]:
    m = np.isfinite(est) & np.isfinite(ref)
    return (float(np.mean(np.abs(est[m] - ref[m]))) if m.any() else math.nan), int(m.sum())


def run_hr_accuracy(data_dir: Path) -> dict[str, Any]:
    """HR MAE of calmloop (and NeuroKit2) PPG heart rate against ECG references."""
    import pandas as pd

    nk = _neurokit()
    cfg = CardiacConfig(hr_window_s=HR_WINDOW_S, hop_s=1.0)
    out: dict[str, Any] = {}
    f = data_dir / "neurokit_resting" / "bio_resting_5min_100hz.csv"
    if f.exists() and nk is not None:
        d = pd.read_csv(f)
        fs = 100.0
        hr = ppg_hr(d["PPG"].to_numpy(float), fs, config=cfg)
        ends = hr.times
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = np.asarray(nk.ecg_peaks(d["ECG"].to_numpy(float), sampling_rate=100)[1]["ECG_R_Peaks"]) / fs
            p = np.asarray(nk.ppg_findpeaks(nk.ppg_clean(d["PPG"].to_numpy(float), sampling_rate=100), sampling_rate=100)["PPG_Peaks"]) / fs
        ref = _hr_windows_from_peaks(r, ends, HR_WINDOW_S)
        est = hr.values["hr_bpm"]
        q = hr.quality["hr_bpm"]
        mae, n = _mae(est, ref)
        mae_q, n_q = _mae(np.where(q >= 0.5, est, np.nan), ref)
        mae_nk, n_nk = _mae(_hr_windows_from_peaks(p, ends, HR_WINDOW_S), ref)
        out["neurokit_resting"] = {
            "calmloop": mae, "n": n, "calmloop_q05": mae_q, "n_q05": n_q, "neurokit2": mae_nk, "n_nk": n_nk,
        }
    root = data_dir / "bidmc" / "records"
    if root.is_dir():
        rows = {}
        for sig in sorted(root.glob("bidmc_*_Signals.csv.gz")):
            rec = sig.name.split("_")[1]
            s = pd.read_csv(sig)
            s.columns = [str(c).strip() for c in s.columns]
            num = pd.read_csv(root / f"bidmc_{rec}_Numerics.csv")
            num.columns = [str(c).strip() for c in num.columns]
            fs = 125.0
            ppg = s["PLETH"].to_numpy(float)
            hr = ppg_hr(ppg, fs, config=cfg)
            ends = hr.times
            mon_t = num["Time [s]"].to_numpy(float)
            mon_hr = num["HR"].to_numpy(float)
            mon = np.array([np.nanmean(np.where((mon_t > te - HR_WINDOW_S) & (mon_t <= te), mon_hr, np.nan)) for te in ends])
            est, q = hr.values["hr_bpm"], hr.quality["hr_bpm"]
            row: dict[str, float] = {}
            row["calmloop_vs_monitor"], _ = _mae(est, mon)
            row["calmloop_q05_vs_monitor"], _ = _mae(np.where(q >= 0.5, est, np.nan), mon)
            row["coverage_q05"] = float(np.mean(q >= 0.5))
            if nk is not None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        r = np.asarray(nk.ecg_peaks(s["II"].to_numpy(float), sampling_rate=125)[1]["ECG_R_Peaks"]) / fs
                        ecg = _hr_windows_from_peaks(r, ends, HR_WINDOW_S)
                    except Exception:  # noqa: BLE001 - a failing peer on one record is reported as NaN
                        ecg = np.full(ends.size, np.nan)
                    p = np.asarray(nk.ppg_findpeaks(nk.ppg_clean(ppg, sampling_rate=125), sampling_rate=125)["PPG_Peaks"]) / fs
                row["calmloop_vs_ecg"], _ = _mae(est, ecg)
                row["neurokit2_vs_monitor"], _ = _mae(_hr_windows_from_peaks(p, ends, HR_WINDOW_S), mon)
            rows[rec] = row
        keys = sorted({k for r in rows.values() for k in r})
        out["bidmc"] = {
            "records": rows,
            "median": {k: float(np.nanmedian([r.get(k, np.nan) for r in rows.values()])) for k in keys},
            "mean": {k: float(np.nanmean([r.get(k, np.nan) for r in rows.values()])) for k in keys},
        }
    return out


def run(data_dir: Path) -> dict[str, Any]:
    """Run the whole benchmark on ``data_dir`` (the shared data folder) and return the numbers."""
    data_dir = Path(data_dir)
    t = time.perf_counter()
    result: dict[str, Any] = {"window_s": WINDOW_S, "step_s": STEP_S, "target_auc": TARGET_AUC}
    if (data_dir / "stress_predict_e4").is_dir():
        result["stress"] = run_stress(data_dir)
    result["hr_accuracy"] = run_hr_accuracy(data_dir)
    result["seconds"] = time.perf_counter() - t
    return result


# -- report ------------------------------------------------------------------------------------------------
def _f(v: float, digits: int = 3) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def to_markdown(result: dict[str, Any]) -> str:
    """Format :func:`run`'s result as Markdown tables."""
    lines = ["# Arousal and heart-rate benchmark", ""]
    stress = result.get("stress")
    if stress:
        subs = list(stress["subjects"])
        lines += [
            f"## Stress vs rest, Stress-Predict E4 (windows {result['window_s']:g} s, step {result['step_s']:g} s)",
            "",
            "Within-subject ROC AUC (stress > rest); target for calmloop arousal: "
            f">= {result['target_auc']:.2f} and above every peer.",
            "",
            "| method | " + " | ".join(subs) + " | mean |",
            "|---|" + "---|" * (len(subs) + 1),
        ]
        for m in stress["mean_auc"]:
            vals = [_f(stress["subjects"][s]["auc"].get(m, math.nan)) for s in subs]
            lines.append(f"| {m} | " + " | ".join(vals) + f" | **{_f(stress['mean_auc'][m])}** |")
        if stress.get("neurokit2") is None:
            lines.append("| NeuroKit2 HR / -RMSSD | not installed | | | |")
        counts = ", ".join(
            f"{s}: {stress['subjects'][s]['n_stress']} stress / {stress['subjects'][s]['n_rest']} rest" for s in subs
        )
        lines += ["", f"Windows: {counts}.", ""]
        lines += [
            "Same AUC on the windows where calmloop's arousal quality >= 0.5:",
            "",
            "| method | " + " | ".join(subs) + " | mean |",
            "|---|" + "---|" * (len(subs) + 1),
        ]
        for m in stress["mean_auc_good"]:
            vals = [_f(stress["subjects"][s]["auc_good"].get(m, math.nan)) for s in subs]
            lines.append(f"| {m} | " + " | ".join(vals) + f" | {_f(stress['mean_auc_good'][m])} |")
        counts = ", ".join(
            f"{s}: {stress['subjects'][s]['n_good_stress']} / {stress['subjects'][s]['n_good_rest']}" for s in subs
        )
        qual = ", ".join(
            f"{s}: {stress['subjects'][s]['mean_quality']['stress']:.2f} / {stress['subjects'][s]['mean_quality']['rest']:.2f}"
            for s in subs
        )
        lines += ["", f"Windows with quality >= 0.5 (stress / rest): {counts}.",
                  f"Mean arousal quality (stress / rest): {qual}.", ""]
    hr = result.get("hr_accuracy", {})
    if hr:
        lines += ["## Heart-rate accuracy (10 s windows, 1 s hop), MAE in bpm", ""]
        nkr = hr.get("neurokit_resting")
        if nkr:
            lines += [
                "| neurokit_resting (PPG vs ECG R peaks) | MAE | windows |",
                "|---|---|---|",
                f"| calmloop ppg_hr | {_f(nkr['calmloop'], 2)} | {nkr['n']} |",
                f"| calmloop ppg_hr, quality >= 0.5 | {_f(nkr['calmloop_q05'], 2)} | {nkr['n_q05']} |",
                f"| NeuroKit2 ppg_findpeaks | {_f(nkr['neurokit2'], 2)} | {nkr['n_nk']} |",
                "",
            ]
        b = hr.get("bidmc")
        if b:
            keys = [k for k in ("calmloop_vs_monitor", "calmloop_q05_vs_monitor", "calmloop_vs_ecg",
                                "neurokit2_vs_monitor", "coverage_q05") if k in b["median"]]
            lines += [
                f"BIDMC ({len(b['records'])} records; reference = monitor ECG HR or lead II R peaks; "
                "coverage_q05 = share of windows with quality >= 0.5):",
                "",
                "| statistic over records | " + " | ".join(keys) + " |",
                "|---|" + "---|" * len(keys),
                "| median | " + " | ".join(_f(b["median"][k], 2) for k in keys) + " |",
                "| mean | " + " | ".join(_f(b["mean"][k], 2) for k in keys) + " |",
                "",
            ]
    lines.append(f"Run time: {result.get('seconds', math.nan):.0f} s.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m experiments.bench.arousal [DATA_DIR] [--out FILE]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[3] / "shared" / "data"
    parser.add_argument("data_dir", nargs="?", type=Path, default=default)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    md = to_markdown(run(args.data_dir))
    if args.out:
        args.out.write_text(md)
    sys.stdout.write(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
