"""Generate the small format fixtures of this folder (deterministic; run from the repository root).

    .venv/bin/python tests/data/formats/make_fixtures.py

Every file is synthetic: samples come from ``SimulatedPatient("compliant", seed=7)`` and the
layouts imitate what muselsl, BlueMuse, Petal Metrics, LabRecorder and BrainFlow write (see
README.md).  No real recording is copied.  ``expected.json`` lists what the readers must find.
"""

from __future__ import annotations

import json
import math
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))

from adaptive.types import SignalKind  # noqa: E402
from feedback.recorder import SessionRecorder  # noqa: E402
from feedback.xdf_writer import XdfChannel, XdfStreamInfo, XdfWriter  # noqa: E402
from sensors.simulated import SimulatedPatient  # noqa: E402

DURATION_S = 4.0
UNIX_T0 = 1_700_000_000.25  # a Unix time (BrainFlow, muselsl CSV)
LSL_T0 = 5123.4567  # an LSL local_clock time (XDF)


def simulate() -> dict[SignalKind, tuple[np.ndarray, np.ndarray]]:
    sim = SimulatedPatient("compliant", seed=7)
    sim.start()
    chunks = sim.poll(DURATION_S - 1e-9)
    return {c.kind: (np.array(c.data), np.array(c.times)) for c in chunks}


def write_text(name: str, lines: list[str]) -> None:
    (HERE / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def muselsl_csvs(sig: dict[SignalKind, tuple[np.ndarray, np.ndarray]], expected: dict[str, object]) -> None:
    rng = np.random.default_rng(7)
    eeg, t = sig[SignalKind.EEG]
    aux = rng.normal(0.0, 20.0, t.size)
    rows = np.vstack([UNIX_T0 + t, eeg, aux]).T
    write_text("EEG_recording_muselsl.csv", ["timestamps,TP9,AF7,AF8,TP10,Right AUX"]
               + [",".join(f"{v:.3f}" for v in r) for r in rows])
    expected["EEG_recording_muselsl.csv"] = {"format": "muselsl-csv", "streams": {"eeg": [5, t.size, 256.0]}}
    # a glitched clock, as in the Bird et al. file: the stamps jump by minutes between blocks
    glitch = UNIX_T0 + t + np.repeat(np.arange(6) * 117.0, math.ceil(t.size / 6))[: t.size]
    rows = np.vstack([glitch, eeg, aux]).T
    write_text("EEG_recording_glitch.csv", ["timestamps,TP9,AF7,AF8,TP10,Right AUX"]
               + [",".join(f"{v:.3f}" for v in r) for r in rows])
    expected["EEG_recording_glitch.csv"] = {"format": "muselsl-csv", "streams": {"eeg": [5, t.size, 256.0]},
                                            "retimed": True}
    ppg, tp = sig[SignalKind.PPG]
    rows = np.vstack([UNIX_T0 + tp, ppg]).T
    write_text("PPG_recording_muselsl.csv", ["timestamps,PPG1,PPG2,PPG3"]
               + [",".join(f"{v:.3f}" for v in r) for r in rows])
    expected["PPG_recording_muselsl.csv"] = {"format": "muselsl-csv", "streams": {"ppg": [3, tp.size, 64.0]}}
    acc, ta = sig[SignalKind.ACCEL]
    rows = np.vstack([UNIX_T0 + ta, acc]).T
    write_text("ACC_recording_muselsl.csv", ["timestamps,X,Y,Z"] + [",".join(f"{v:.5f}" for v in r) for r in rows])
    expected["ACC_recording_muselsl.csv"] = {"format": "muselsl-csv", "streams": {"accel": [3, ta.size, 52.0]}}


def brainflow_files(sig: dict[SignalKind, tuple[np.ndarray, np.ndarray]], expected: dict[str, object]) -> None:
    def table(cols: list[np.ndarray]) -> list[str]:
        return ["\t".join(f"{v:.6f}" for v in row) for row in np.vstack(cols).T]

    eeg, t = sig[SignalKind.EEG]
    n = t.size
    pkg = (np.arange(n) // 12).astype(float)
    write_text("brainflow_default.csv", table([pkg, *eeg, np.zeros(n), UNIX_T0 + t, np.zeros(n)]))
    acc, ta = sig[SignalKind.ACCEL]
    gyro, _ = sig[SignalKind.GYRO]
    m = ta.size
    write_text("brainflow_aux.csv", table([np.arange(m, dtype=float), *acc, *gyro, UNIX_T0 + ta, np.zeros(m)]))
    ppg, tp = sig[SignalKind.PPG]
    k = tp.size
    write_text("brainflow_anc.csv", table([np.arange(k, dtype=float), ppg[0], ppg[1], np.zeros(k), UNIX_T0 + tp,
                                           np.zeros(k)]))
    expected["brainflow_default.csv"] = {"format": "brainflow", "streams": {"eeg": [4, n, 256.0]}}
    expected["brainflow_aux.csv"] = {"format": "brainflow", "streams": {"accel": [3, m, 52.0], "gyro": [3, m, 52.0]}}
    expected["brainflow_anc.csv"] = {"format": "brainflow", "streams": {"ppg": [3, k, 64.0]}}


def lab_xdf(name: str, layout: list[tuple[str, str, float, tuple[XdfChannel, ...], str, np.ndarray | None]],
            *, markers: bool = True, clock_reset: bool = False) -> None:
    """An XDF file as LabRecorder writes it: float32 streams on an LSL clock, clock offsets, footers."""
    path = HERE / name
    path.unlink(missing_ok=True)
    with XdfWriter(path, header=(("datetime", "2024-01-01T10:00:00+0000"),)) as w:
        ids = []
        for sname, stype, srate, chans, manufacturer, _ in layout:
            fmt = "string" if srate == 0 and stype == "Markers" else "float32"
            ids.append(w.add_stream(XdfStreamInfo(sname, stype, fmt, srate, chans, source_id=f"fixture-{sname}",
                                                  manufacturer=manufacturer)))
        if markers:
            mid = w.add_stream(XdfStreamInfo("Markers", "Markers", "string", 0.0, (XdfChannel("marker"),),
                                             source_id="fixture-markers"))
        for block in range(int(DURATION_S)):
            for sid, (_, _, srate, _, _, data) in zip(ids, layout):
                if data is None:
                    continue
                lo, hi = int(block * srate), int((block + 1) * srate)
                t = LSL_T0 + np.arange(lo, hi) / srate
                if clock_reset and block >= 3:  # the stream's computer restarted: its clock starts again near 0
                    t = t - LSL_T0 + 2.0
                w.write_numeric(sid, data[:, lo:hi].T.astype(np.float32), t)
                base = LSL_T0 + block
                if clock_reset and block >= 3:
                    w.write_clock_offset(sid, base - LSL_T0 + 2.0, LSL_T0 - 2.0 - 0.0004)
                else:
                    w.write_clock_offset(sid, base, -0.0004)
            if markers and block in (1, 3):
                w.write_strings(mid, [f"block {block}"], [LSL_T0 + block + 0.5])


def xdf_files(sig: dict[SignalKind, tuple[np.ndarray, np.ndarray]], expected: dict[str, object]) -> None:
    eeg, t = sig[SignalKind.EEG]
    aux = np.random.default_rng(8).normal(0.0, 20.0, (1, t.size))
    ppg, _ = sig[SignalKind.PPG]
    acc, _ = sig[SignalKind.ACCEL]
    gyro, _ = sig[SignalKind.GYRO]
    chans = lambda labels, unit, typ: tuple(XdfChannel(x, unit, typ) for x in labels)  # noqa: E731
    eeg5 = np.vstack([eeg, aux])
    lab_xdf("muselsl_labrecorder.xdf", [
        ("Muse", "EEG", 256.0, chans(("TP9", "AF7", "AF8", "TP10", "Right AUX"), "microvolts", "EEG"), "Muse", eeg5),
        ("Muse", "PPG", 64.0, chans(("PPG1", "PPG2", "PPG3"), "mmHg", "PPG"), "Muse", ppg),
        ("Muse", "ACC", 52.0, chans(("X", "Y", "Z"), "g", "accelerometer"), "Muse", acc),
        ("Muse", "GYRO", 52.0, chans(("X", "Y", "Z"), "dps", "gyroscope"), "Muse", gyro),
    ])
    n6 = {k: int(DURATION_S * r) for k, r in ((SignalKind.EEG, 256), (SignalKind.PPG, 64), (SignalKind.ACCEL, 52))}
    expected["muselsl_labrecorder.xdf"] = {"format": "xdf", "markers": 2, "streams": {
        "eeg": [5, n6[SignalKind.EEG], 256.0], "ppg": [3, n6[SignalKind.PPG], 64.0],
        "accel": [3, n6[SignalKind.ACCEL], 52.0], "gyro": [3, n6[SignalKind.ACCEL], 52.0]}}
    lab_xdf("bluemuse.xdf", [
        ("Muse-ABCD (EEG)", "EEG", 256.0, chans(("TP9", "AF7", "AF8", "TP10"), "microvolts", "EEG"), "Interaxon", eeg),
        ("Muse-ABCD (Accelerometer)", "Accelerometer", 52.0, chans(("X", "Y", "Z"), "g", "Accelerometer"),
         "Interaxon", acc),
        ("Muse-ABCD (Gyroscope)", "Gyroscope", 52.0, chans(("X", "Y", "Z"), "dps", "Gyroscope"), "Interaxon", gyro),
        ("Muse-ABCD (PPG)", "PPG", 64.0, chans(("PPG1", "PPG2", "PPG3"), "mmHg", "PPG"), "Interaxon", ppg),
        ("Muse-ABCD (Telemetry)", "Telemetry", 0.1, chans(("Battery", "Unknown (fuel?)", "ADC Voltage", "Temperature"),
                                                           "Various", "Telemetry"), "Interaxon", None),
    ], markers=False)
    expected["bluemuse.xdf"] = {"format": "xdf", "markers": 0, "streams": {
        "eeg": [4, n6[SignalKind.EEG], 256.0], "ppg": [3, n6[SignalKind.PPG], 64.0],
        "accel": [3, n6[SignalKind.ACCEL], 52.0], "gyro": [3, n6[SignalKind.ACCEL], 52.0]},
        "skipped": ["Muse-ABCD (Telemetry)"]}
    # Petal Metrics: stream names only, no type and no channel labels in the header
    unlabelled = lambda k: tuple(XdfChannel("") for _ in range(k))  # noqa: E731
    lab_xdf("petal.xdf", [
        ("PetalStream_eeg", "", 256.0, unlabelled(5), "", eeg5),
        ("PetalStream_ppg", "", 64.0, unlabelled(3), "", ppg),
        ("PetalStream_acceleration", "", 52.0, unlabelled(3), "", acc),
        ("PetalStream_gyroscope", "", 52.0, unlabelled(3), "", gyro),
    ], markers=False)
    expected["petal.xdf"] = {"format": "xdf", "markers": 0, "streams": {
        "eeg": [5, n6[SignalKind.EEG], 256.0], "ppg": [3, n6[SignalKind.PPG], 64.0],
        "accel": [3, n6[SignalKind.ACCEL], 52.0], "gyro": [3, n6[SignalKind.ACCEL], 52.0]}}
    lab_xdf("clock_reset.xdf", [
        ("Muse", "EEG", 256.0, chans(("TP9", "AF7", "AF8", "TP10"), "microvolts", "EEG"), "Muse", eeg),
    ], markers=False, clock_reset=True)
    expected["clock_reset.xdf"] = {"format": "xdf", "markers": 0, "streams": {"eeg": [4, n6[SignalKind.EEG], 256.0]}}


def session_files(expected: dict[str, object]) -> None:
    """A calmloop session file cut in the middle of a Samples chunk (as after a power cut)."""
    import shutil
    import tempfile

    from adaptive.controller import PacingController
    from adaptive.pipeline import DspPipeline
    from adaptive.session import SessionEngine, session_tick
    from sensors.clocks import ManualClock

    tmp = Path(tempfile.mkdtemp())
    try:
        sim = SimulatedPatient("compliant", seed=7)
        engine = SessionEngine(DspPipeline(sim.streams), PacingController())
        clock = ManualClock()
        sim.start()
        started = datetime(2024, 1, 1, 10, 0, tzinfo=timezone.utc)
        with SessionRecorder(tmp / "s", sim.streams, patient_id="FIXTURE01", config={"seed": 7},
                             started_at=started) as rec:
            while clock.now() < DURATION_S:
                session_tick(sim, engine, [rec], clock.advance(0.25))
        raw = (tmp / "s" / "session.xdf").read_bytes()
    finally:
        shutil.rmtree(tmp)
    (HERE / "session_complete.xdf").write_bytes(raw)
    cut = int(len(raw) * 0.6)
    (HERE / "session_truncated.xdf").write_bytes(raw[:cut])
    n = {k: int(DURATION_S * r) + 1 for k, r in (("eeg", 256), ("ppg", 64), ("accel", 52), ("gyro", 52))}
    expected["session_complete.xdf"] = {"format": "calmloop-xdf", "streams": {
        "eeg": [4, n["eeg"], 256.0], "ppg": [3, n["ppg"], 64.0], "accel": [3, n["accel"], 52.0],
        "gyro": [3, n["gyro"], 52.0]}}
    expected["session_truncated.xdf"] = {"format": "calmloop-xdf", "truncated": True}


def bad_files(expected: dict[str, object]) -> None:
    (HERE / "corrupt.xdf").write_bytes(b"XDF:" + bytes(range(7, 250)) * 3)
    write_text("not_a_recording.csv", ["subject,condition,score", "s1,relaxed,3", "s2,neutral,4"])
    write_text("brainflow_wrong_columns.csv", ["1.0\t2.0\t3.0", "4.0\t5.0\t6.5"])
    expected["corrupt.xdf"] = {"error": "FileHeader"}
    expected["not_a_recording.csv"] = {"error": "unsupported file"}
    expected["brainflow_wrong_columns.csv"] = {"error": "fit no BrainFlow preset"}


def main() -> None:
    sig = simulate()
    expected: dict[str, object] = {}
    muselsl_csvs(sig, expected)
    brainflow_files(sig, expected)
    xdf_files(sig, expected)
    session_files(expected)
    bad_files(expected)
    for p in HERE.iterdir():
        if p.is_file():
            p.chmod(0o644)
    (HERE / "expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    total = sum(p.stat().st_size for p in HERE.iterdir() if p.is_file())
    print(f"wrote {len(expected)} fixtures, {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
