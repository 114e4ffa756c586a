"""Regenerate this folder's files from the shared BIDMC copy (see README.md).

Run from the repository root: ``python tests/data/bidmc/make_files.py [SHARED_DATA_DIR]``.
``--expected-only`` recomputes only ``expected_rate_32s.csv`` (after a deliberate change of the
estimator; say why in the commit).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from adaptive.respiration import rate_from_ppg
from experiments.bench.respiration import load_bidmc

HERE = Path(__file__).resolve().parent
RECORDS = ("05", "32", "53")
SECONDS = 300.0  # the first 5 of the 8 minutes: small files, quick tests


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data_dir", nargs="?", type=Path, default=HERE.parents[3] / "shared" / "data")
    parser.add_argument("--expected-only", action="store_true")
    args = parser.parse_args()
    if not args.expected_only:
        for rec in load_bidmc(args.data_dir):
            if rec.name in RECORDS:
                n = int(SECONDS * rec.sfreq)
                keep1, keep2 = rec.ann1[rec.ann1 < n], rec.ann2[rec.ann2 < n]
                np.savez_compressed(HERE / f"bidmc_{rec.name}.npz", pleth=rec.ppg[:n].astype(np.float32),
                                    ann1=keep1.astype(np.int32), ann2=keep2.astype(np.int32))
    with open(HERE / "expected_rate_32s.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["record", "time_s", "rate_bpm", "quality"])
        for name in RECORDS:
            with np.load(HERE / f"bidmc_{name}.npz") as f:
                ppg = f["pleth"].astype(np.float64)
            r = rate_from_ppg(ppg, 125.0, window_s=32.0, step_s=1.0)
            for t, v, q in zip(r.times_s, r.rate_bpm, r.quality):
                writer.writerow([name, f"{t:.3f}", "nan" if np.isnan(v) else f"{v:.4f}", f"{q:.4f}"])


if __name__ == "__main__":
    main()
