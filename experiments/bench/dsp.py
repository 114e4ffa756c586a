"""``calmloop bench dsp``: every DSP benchmark against the recorded references, in one report.

Parts (each also runs alone as ``python -m experiments.bench.<part>``):

* ``respiration``: BIDMC breathing rate against annotated breaths (32 s and 64 s windows, step
  1 s, causal) beside NeuroKit2, HeartPy and a plain spectral peak on the same windows; the
  NeuroKit resting record against its belt; simulated slow breathing.
* ``eeg``: relaxed vs concentrating / neutral AUC on Muse EEG beside BrainFlow's RESTFULNESS and
  relative alpha.
* ``arousal``: stress vs rest AUC on wrist PPG beside heart rate alone; heart-rate accuracy.
* ``speed``: the whole pipeline and controller on simulated Muse data: multiple of real time
  and per-tick latency.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import time
from pathlib import Path
from typing import Any, TextIO

logger = logging.getLogger(__name__)

PARTS = ("respiration", "eeg", "arousal", "speed")
NEEDS_DATA = {"respiration", "eeg", "arousal"}


def default_data_dir() -> Path:
    """``../shared/data`` beside the project (or beside the working directory)."""
    here = Path(__file__).resolve().parents[2]
    for base in (Path.cwd(), here):
        cand = base.parent / "shared" / "data"
        if cand.is_dir():
            return cand
    return here.parent / "shared" / "data"


def run_bench(args: argparse.Namespace, out: TextIO) -> int:
    """Run the selected parts, print markdown, save JSON."""
    data = Path(args.data) if args.data else default_data_dir()
    parts = args.only or list(PARTS)
    results: dict[str, Any] = {"data_dir": str(data)}
    for part in parts:
        mod = importlib.import_module(f"experiments.bench.{part}")
        if part in NEEDS_DATA and not data.is_dir():
            out.write(f"\n## {part}\n\nskipped: recordings not found at {data} (use --data DIR)\n")
            results[part] = {"skipped": f"no data at {data}"}
            continue
        t0 = time.perf_counter()
        if part == "speed":
            res = mod.run(duration_s=args.speed_duration)
        else:
            res = mod.run(data)
        res_time = time.perf_counter() - t0
        out.write(f"\n## {part}  ({res_time:.0f} s)\n\n{mod.to_markdown(res)}\n")
        out.flush()
        results[part] = res
    dest = Path(args.out)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(results, indent=2, default=_plain), encoding="utf-8")
    out.write(f"\nresults saved to {dest}\n")
    return 0


def _plain(obj: object) -> object:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(obj)
