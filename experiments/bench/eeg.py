"""EEG relaxation benchmark: calmloop's index beside BrainFlow RESTFULNESS and relative alpha.

Every method scores the *same* windows (4 s, step 1 s, ending at multiples of 1 s from the
first sample) and is judged by the within-subject ROC AUC, P(score of a relaxed window >
score of an other window), ties counted half:

* ``calmloop``: :func:`adaptive.eeg.relaxation_index` (default :class:`~adaptive.eeg.EegConfig`).
* ``restfulness``: BrainFlow's ``MLModel(RESTFULNESS, DEFAULT_CLASSIFIER)`` fed
  ``DataFilter.get_avg_band_powers(window, all EEG channels, sfreq, apply_filter=True)[0]``.
* ``rel_alpha``: plain relative alpha, Welch (2 s Hann segments, 50 % overlap) power in
  8-13 Hz over 1-45 Hz, averaged over TP9 and TP10 (O1/O2 for the Emotiv file).

Datasets (read their READMEs): ``muse_mental_state_bird`` (target: relaxed vs concentrating
and relaxed vs neutral, per subject), plus, reported without target, ``muse_mindmonitor``
(meditation vs phone scrolling, from the Muse app's per-second band powers, since those files
hold no continuous raw EEG) and ``eeg_eye_state_uci`` (eyes closed vs open, Emotiv, 128 Hz).

Diagnostic rows show RESTFULNESS fed only some channels, and a second table applies the same
causal exponential smoothing (tau = 8 s) to every method's window scores.

Run ``python -m experiments.bench.eeg [DATA_DIR] [--out report.md]``.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import welch
from scipy.stats import rankdata

from adaptive.eeg import MUSE_CH_NAMES, EegConfig, relaxation_from_alpha_rel, relaxation_index

logger = logging.getLogger(__name__)

__all__ = ["run", "to_markdown", "main"]

SFREQ_MUSE = 256.0
WINDOW_S = 4.0
STEP_S = 1.0
SMOOTH_TAU_S = 8.0
BIRD_COMPARISONS = (("relaxed", "concentrating"), ("relaxed", "neutral"))
METHODS = ("calmloop", "restfulness", "rel_alpha")
DIAGNOSTICS = {  # RESTFULNESS fed a subset of the Muse channels (indices into TP9, AF7, AF8, TP10)
    "restfulness_tp9_tp10": (0, 3),
    "restfulness_without_af8": (0, 1, 3),
    "restfulness_af8_only": (2,),
}
UCI_NAMES = ("AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8", "T8", "FC6", "F4", "F8", "AF4")


# ---------------------------------------------------------------------------------------------
# Scores


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """ROC AUC = P(pos > neg) + P(pos == neg) / 2, NaN scores dropped."""
    pos = np.asarray(pos, dtype=float)
    neg = np.asarray(neg, dtype=float)
    pos, neg = pos[np.isfinite(pos)], neg[np.isfinite(neg)]
    if pos.size == 0 or neg.size == 0:
        return math.nan
    ranks = rankdata(np.concatenate([pos, neg]))
    return float((ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size))


def window_ends(n_samples: int, sfreq: float) -> np.ndarray:
    """End indices (exclusive) of the windows, as in :class:`adaptive.windows.FixedHopWindows`."""
    win, hop = int(round(WINDOW_S * sfreq)), int(round(STEP_S * sfreq))
    first = -(-win // hop) * hop
    return np.arange(first, n_samples + 1, hop)


class _Restfulness:
    """BrainFlow's RESTFULNESS model on avg band powers (loaded once)."""

    def __init__(self) -> None:
        from brainflow.data_filter import DataFilter
        from brainflow.ml_model import BrainFlowClassifiers, BrainFlowMetrics, BrainFlowModelParams, MLModel

        MLModel.disable_ml_logger()
        DataFilter.disable_data_logger()
        self._df = DataFilter
        params = BrainFlowModelParams(
            BrainFlowMetrics.RESTFULNESS.value, BrainFlowClassifiers.DEFAULT_CLASSIFIER.value
        )
        self._model = MLModel(params)
        self._model.prepare()

    def window(self, window: np.ndarray, channels: Sequence[int], sfreq: float) -> float:
        data = np.ascontiguousarray(window, dtype=np.float64).copy()  # apply_filter works in place
        avgs, _ = self._df.get_avg_band_powers(data, list(channels), int(round(sfreq)), True)
        return float(np.ravel(self._model.predict(avgs))[0])

    def band_vector(self, vector: np.ndarray) -> float:
        return float(np.ravel(self._model.predict(np.ascontiguousarray(vector, dtype=np.float64)))[0])

    def close(self) -> None:
        self._model.release()


def rel_alpha_welch(window: np.ndarray, sfreq: float, channels: Sequence[int]) -> float:
    """Mean over ``channels`` of Welch power 8-13 Hz / 1-45 Hz (2 s Hann segments, 50 % overlap)."""
    freqs, psd = welch(window[list(channels)], fs=sfreq, nperseg=int(round(2 * sfreq)), axis=-1)
    alpha = psd[:, (freqs >= 8) & (freqs <= 13)].sum(axis=1)
    total = psd[:, (freqs >= 1) & (freqs <= 45)].sum(axis=1)
    return float(np.mean(alpha / total))


def ema(values: np.ndarray, tau_windows: float) -> np.ndarray:
    """Causal exponential moving average (NaN windows hold the previous value)."""
    k = 1.0 - math.exp(-1.0 / tau_windows)
    out = np.empty_like(values, dtype=float)
    acc = math.nan
    for i, v in enumerate(values):
        if math.isfinite(v):
            acc = v if math.isnan(acc) else acc + k * (v - acc)
        out[i] = acc
    return out


def score_recording(
    eeg: np.ndarray,
    sfreq: float,
    ch_names: Sequence[str],
    posterior: Sequence[int],
    rest: _Restfulness,
    config: EegConfig,
    diagnostics: dict[str, tuple[int, ...]] | None = None,
) -> dict[str, np.ndarray]:
    """Score every window of one recording with every method (same windows for all)."""
    res = relaxation_index(eeg, sfreq, window_s=WINDOW_S, step_s=STEP_S, ch_names=ch_names, config=config)
    ends = window_ends(eeg.shape[1], sfreq)
    win = int(round(WINDOW_S * sfreq))
    assert ends.size == res.value.size
    eeg_rows = [i for i, n in enumerate(ch_names) if "AUX" not in n.upper()]
    scores: dict[str, list[float]] = {"restfulness": [], "rel_alpha": []}
    for name in diagnostics or {}:
        scores[name] = []
    for end in ends:
        w = eeg[:, end - win : end]
        scores["restfulness"].append(rest.window(w, eeg_rows, sfreq))
        scores["rel_alpha"].append(rel_alpha_welch(w, sfreq, posterior))
        for name, chans in (diagnostics or {}).items():
            scores[name].append(rest.window(w, chans, sfreq))
    out = {k: np.asarray(v) for k, v in scores.items()}
    out["calmloop"] = np.asarray(res.value)
    out["calmloop_quality"] = np.asarray(res.quality)
    out["eeg_quality"] = np.asarray(res.eeg_quality)
    return out


# ---------------------------------------------------------------------------------------------
# Datasets


def _find(data_dir: Path, folder: str, probe: str) -> Path | None:
    for cand in (data_dir / folder, data_dir):
        if list(cand.glob(probe)):
            return cand
    return None


def _load_muselsl(path: Path) -> np.ndarray:
    import pandas as pd

    frame = pd.read_csv(path)
    return frame[list(MUSE_CH_NAMES)].to_numpy(dtype=np.float64).T.copy()  # time = sample index / 256


def run_bird(folder: Path, rest: _Restfulness, config: EegConfig) -> dict[str, Any]:
    """Per-subject AUCs on muse_mental_state_bird (relaxed vs concentrating / neutral)."""
    per_file: dict[str, dict[str, np.ndarray]] = {}
    for path in sorted(folder.glob("subject*-*-*.csv")):
        eeg = _load_muselsl(path)
        per_file[path.stem] = score_recording(
            eeg, SFREQ_MUSE, MUSE_CH_NAMES, (0, 3), rest, config, DIAGNOSTICS
        )
    subjects = sorted({stem.split("-")[0] for stem in per_file})
    methods = (*METHODS, *DIAGNOSTICS)
    table: dict[str, dict[str, dict[str, float]]] = {"per_window": {}, f"ema_{SMOOTH_TAU_S:g}s": {}}
    n_windows: dict[str, dict[str, int]] = {}
    mean_index: dict[str, dict[str, float]] = {}
    for smooth_key, smooth in (("per_window", None), (f"ema_{SMOOTH_TAU_S:g}s", SMOOTH_TAU_S / STEP_S)):
        for method in methods:
            row: dict[str, float] = {}
            for subject in subjects:
                def pooled(state: str) -> np.ndarray:
                    prefix = f"{subject}-{state}-"
                    parts = [v[method] for stem, v in per_file.items() if stem.startswith(prefix)]
                    if smooth is not None:
                        parts = [ema(p, smooth) for p in parts]
                    return np.concatenate(parts)

                for pos, neg in BIRD_COMPARISONS:
                    row[f"{subject}:{pos}_vs_{neg}"] = auc(pooled(pos), pooled(neg))
            for pos, neg in BIRD_COMPARISONS:
                row[f"mean:{pos}_vs_{neg}"] = float(np.mean([row[f"{s}:{pos}_vs_{neg}"] for s in subjects]))
            table[smooth_key][method] = row
    for subject in subjects:
        n_windows[subject] = {}
        mean_index[subject] = {}
        for state in ("relaxed", "neutral", "concentrating"):
            vals = [v for stem, v in per_file.items() if stem.startswith(f"{subject}-{state}-")]
            n_windows[subject][state] = int(sum(v["calmloop"].size for v in vals))
            mean_index[subject][state] = float(np.nanmean(np.concatenate([v["calmloop"] for v in vals])))
    quality = {
        stem: {
            "relaxation_quality": float(np.mean(v["calmloop_quality"])),
            "eeg_quality": float(np.mean(v["eeg_quality"])),
            "n_nan": int(np.isnan(v["calmloop"]).sum()),
        }
        for stem, v in per_file.items()
    }
    return {
        "subjects": subjects,
        "auc": table,
        "n_windows": n_windows,
        "mean_calmloop_index": mean_index,
        "quality": quality,
    }


def run_mindmonitor(folder: Path, rest: _Restfulness) -> dict[str, Any]:
    """Meditation vs scrolling from Mind Monitor's per-second Muse band powers (1 row = 1 s)."""
    import pandas as pd

    bands = ("Delta", "Theta", "Alpha", "Beta", "Gamma")
    scores: dict[str, dict[str, np.ndarray]] = {}
    for label, pattern in (("meditation", "*_meditation.csv"), ("scrolling", "*_scrolling.csv")):
        paths = sorted(folder.glob(pattern))
        if not paths:
            return {"skipped": f"no {pattern} in {folder}"}
        frame = pd.read_csv(paths[0])
        cols = [f"{b}_{ch}" for b in bands for ch in MUSE_CH_NAMES]
        frame = frame.dropna(subset=cols)
        logp = frame[cols].to_numpy(dtype=np.float64).reshape(-1, len(bands), len(MUSE_CH_NAMES))
        power = 10.0**logp  # Muse "absolute band power" is log10 of the band's summed PSD
        rel = power / power.sum(axis=1, keepdims=True)  # (rows, bands, channels)
        post = [0, 3]
        alpha_pooled = power[:, 2, post].sum(axis=1) / power[:, :, post].sum(axis=(1, 2))
        scores[label] = {
            # calmloop's mapping on the pooled posterior relative alpha (Muse bands: 1-44 Hz total)
            "calmloop": np.asarray(relaxation_from_alpha_rel(alpha_pooled)),
            "restfulness": np.array([rest.band_vector(r.mean(axis=1)) for r in rel]),
            "rel_alpha": rel[:, 2, post].mean(axis=1),
        }
    return {
        "n_rows": {k: int(v["calmloop"].size) for k, v in scores.items()},
        "auc": {m: auc(scores["meditation"][m], scores["scrolling"][m]) for m in METHODS},
        "note": "Muse app band powers (Muse's own bands and smoothing), not calmloop's raw-EEG pipeline",
    }


def run_uci(folder: Path, rest: _Restfulness) -> dict[str, Any]:
    """Eyes closed vs open on the UCI Emotiv recording (128 Hz), windows of one label only."""
    path = folder / "EEG Eye State.arff"
    if not path.is_file():
        return {"skipped": f"{path} not found"}
    rows = []
    started = False
    for line in path.read_text().splitlines():
        line = line.strip()
        if started and line and not line.startswith("%"):
            rows.append([float(v) for v in line.split(",")])
        elif line.upper().startswith("@DATA"):
            started = True
    data = np.asarray(rows)
    eeg, label = data[:, :14].T.copy(), data[:, 14].astype(int)
    med = np.median(eeg, axis=1, keepdims=True)
    outliers = np.abs(eeg - med) > 500.0  # the README's 4 outlier rows (thousands of uV off)
    eeg = np.where(outliers, med, eeg)
    sfreq = 128.0
    config = EegConfig(rail_uv=None)  # Emotiv data carry a ~4000 uV DC offset: no rail check
    posterior = (UCI_NAMES.index("O1"), UCI_NAMES.index("O2"))
    s = score_recording(eeg, sfreq, UCI_NAMES, posterior, rest, config)
    ends = window_ends(eeg.shape[1], sfreq)
    win = int(round(WINDOW_S * sfreq))
    pure = np.array([label[e - win : e].min() == label[e - win : e].max() for e in ends])
    closed = pure & np.array([label[e - 1] == 1 for e in ends])
    opened = pure & np.array([label[e - 1] == 0 for e in ends])
    return {
        "n_windows": {"closed": int(closed.sum()), "open": int(opened.sum())},
        "auc": {m: auc(s[m][closed], s[m][opened]) for m in METHODS},
        "mean_quality": float(np.mean(s["calmloop_quality"])),
        "note": "4 s windows entirely inside one eye-state segment; outliers replaced by the median",
    }


# ---------------------------------------------------------------------------------------------
# Entry points


def run(data_dir: Path) -> dict[str, Any]:
    """Run the benchmark on the shared data folder (or the Bird folder itself).

    Parameters
    ----------
    data_dir : Path
        ``/work/shared/data`` (holding ``muse_mental_state_bird`` etc.) or the Bird folder.

    Returns
    -------
    result : dict
        ``bird`` (per-subject and mean AUCs per method and comparison, per window and smoothed;
        window counts; mean calmloop index per state; quality), ``mindmonitor``, ``uci``,
        ``config`` and ``elapsed_s``.
    """
    t0 = time.perf_counter()
    data_dir = Path(data_dir)
    config = EegConfig()
    rest = _Restfulness()
    result: dict[str, Any] = {"config": asdict(config), "window_s": WINDOW_S, "step_s": STEP_S}
    try:
        bird = _find(data_dir, "muse_mental_state_bird", "subject*-*-*.csv")
        result["bird"] = run_bird(bird, rest, config) if bird else {"skipped": f"no Bird data in {data_dir}"}
        mind = _find(data_dir, "muse_mindmonitor", "*_meditation.csv")
        result["mindmonitor"] = run_mindmonitor(mind, rest) if mind else {"skipped": "no Mind Monitor data"}
        uci = _find(data_dir, "eeg_eye_state_uci", "*.arff")
        result["uci"] = run_uci(uci, rest) if uci else {"skipped": "no UCI eye-state data"}
    finally:
        rest.close()
    result["elapsed_s"] = time.perf_counter() - t0
    return result


def _fmt(v: float) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.3f}"


def to_markdown(result: dict[str, Any]) -> str:
    """Render :func:`run`'s result as Markdown tables."""
    lines = ["# EEG relaxation benchmark", ""]
    lines.append(
        f"Windows {result['window_s']:g} s, step {result['step_s']:g} s, identical for every method. "
        "AUC = P(relaxed window scores higher), within subject, both files of a state pooled."
    )
    bird = result.get("bird", {})
    if "skipped" in bird:
        lines += ["", f"muse_mental_state_bird: skipped ({bird['skipped']})."]
    elif bird:
        subjects = bird["subjects"]
        cols = [f"{s}:{p}_vs_{n}" for p, n in BIRD_COMPARISONS for s in subjects]
        cols += [f"mean:{p}_vs_{n}" for p, n in BIRD_COMPARISONS]
        head = [c.replace("subject", "").replace("_vs_", " vs ").replace("relaxed", "rel")
                .replace("concentrating", "conc").replace("neutral", "neut") for c in cols]  # fmt: skip
        for key, title in (("per_window", "per window"), (f"ema_{SMOOTH_TAU_S:g}s", "causal EMA")):
            label = title
            if key != "per_window":
                label = f"{title}, tau {SMOOTH_TAU_S:g} s, applied to every method"
            lines += ["", f"## muse_mental_state_bird, {label}", ""]
            lines.append("| method | " + " | ".join(head) + " |")
            lines.append("|---" * (len(head) + 1) + "|")
            for method, row in bird["auc"][key].items():
                if key != "per_window" and method in DIAGNOSTICS:
                    continue
                lines.append(f"| {method} | " + " | ".join(_fmt(row[c]) for c in cols) + " |")
        lines += ["", "Windows per state and mean calmloop index:", ""]
        lines.append("| subject | relaxed | neutral | concentrating |")
        lines.append("|---|---|---|---|")
        for s in subjects:
            n, m = bird["n_windows"][s], bird["mean_calmloop_index"][s]
            cells = [f"{n[k]} ({m[k]:.2f})" for k in ("relaxed", "neutral", "concentrating")]
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
        lines += ["", "calmloop quality per file (relaxation / all-channel EEG):", ""]
        qualities = bird["quality"].items()
        cells = [f"{k} {q['relaxation_quality']:.2f}/{q['eeg_quality']:.2f}" for k, q in qualities]
        lines.append(", ".join(cells))
    for key, title, pos, neg in (
        ("mindmonitor", "muse_mindmonitor (meditation vs scrolling, per-second Muse band powers)",
         "meditation", "scrolling"),
        ("uci", "eeg_eye_state_uci (eyes closed vs open, Emotiv 128 Hz)", "closed", "open"),
    ):
        sec = result.get(key, {})
        lines += ["", f"## {title}", ""]
        if "skipped" in sec or not sec:
            lines.append(f"skipped ({sec.get('skipped', 'not run')}).")
            continue
        counts = sec.get("n_rows") or sec.get("n_windows")
        lines.append(f"n: {pos} {counts[pos]}, {neg} {counts[neg]}. {sec.get('note', '')}")
        lines += ["", "| method | AUC |", "|---|---|"]
        lines += [f"| {m} | {_fmt(sec['auc'][m])} |" for m in METHODS]
    lines += ["", f"Run time {result.get('elapsed_s', math.nan):.1f} s.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m experiments.bench.eeg [DATA_DIR] [--out FILE]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    parser.add_argument("data_dir", nargs="?", type=Path, default=default)
    parser.add_argument("--out", type=Path, default=None, help="also write the Markdown here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    md = to_markdown(run(args.data_dir))
    sys.stdout.write(md)
    if args.out is not None:
        args.out.write_text(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
