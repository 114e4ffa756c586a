"""LSL load test: every calmloop outlet at N times real speed, read by a separate process.

The producer (this process) publishes the four raw streams of a Muse (EEG 4 ch at 256 Hz, PPG
3 ch at 64 Hz, accelerometer and gyroscope 3 ch at 52 Hz), the estimates (every metric on a
0.5-s grid), the pacer (one decision per 0.5 s) and markers (one event every 5 s) through
:class:`feedback.lsl_outlet.LslOutlets`, ``speed`` times faster than real time, in ticks of
10 ms of wall time like the session loop.  A consumer in a child process (plain pylsl inlets, no
post-processing) pulls every stream continuously and records, for each sample, its LSL
timestamp and the ``local_clock()`` at which it was pulled.  Both processes share the
machine's monotonic clock, so the latency of a sample is its pull time minus the time its tick
was pushed.  Samples are matched by timestamp (every sample's stamp is unique); the EEG also
carries a sample-index ramp on its first channel, checked end to end.

Everything stays on 127.0.0.1: the run applies the loopback-only ``sensors/lsl_api.cfg``
(refusing if LSL was already loaded with another configuration) and hands ``LSLAPICFG`` to the
child.  The run is bounded: the child stops when it has everything or at its deadline, and the
producer kills it (by its pid) if it outlives that.

Run ``python -m experiments.bench.lsl [--speed 10] [--minutes 10] [--out report.md]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import select
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adaptive.controller import PacingDecision, PacingState
from adaptive.session import TickResult
from adaptive.types import Chunk, Estimate, Metric, SignalKind, StreamSpec
from sensors.lsl_scope import apply_lsl_scope

logger = logging.getLogger(__name__)

__all__ = ["SPECS", "main", "run", "to_markdown"]

SPECS: tuple[StreamSpec, ...] = (
    StreamSpec(SignalKind.EEG, 256.0, ("TP9", "AF7", "AF8", "TP10"), device="bench"),
    StreamSpec(SignalKind.PPG, 64.0, ("ppg1", "ppg2", "ppg3"), device="bench"),
    StreamSpec(SignalKind.ACCEL, 52.0, ("accel_x", "accel_y", "accel_z"), device="bench"),
    StreamSpec(SignalKind.GYRO, 52.0, ("gyro_x", "gyro_y", "gyro_z"), device="bench"),
)
KINDS: tuple[str, ...] = ("eeg", "ppg", "accel", "gyro", "estimates", "pacer", "markers")
GRID_S = 0.5  # decision / estimate grid, seconds of data
EVENT_EVERY = 10  # one marker every 10 decisions (5 s of data)
TICK_WALL_S = 0.01  # the session loop's period
END_EVENT = "bench:end"
READY_TIMEOUT_S = 30.0


# ---------------------------------------------------------------------------------------------
# Producer
# ---------------------------------------------------------------------------------------------
def _chunk(spec: StreamSpec, i0: int, i1: int) -> Chunk:
    idx = np.arange(i0, i1, dtype=np.float64)
    t = idx / spec.sfreq
    data = np.empty((len(spec.ch_names), idx.size))
    data[0] = idx  # the ramp: any lost, repeated or reordered sample shows
    for c in range(1, len(spec.ch_names)):
        data[c] = np.sin(2 * np.pi * (c + 1) * t)
    return Chunk(spec.kind, data, t, spec.sfreq, spec.ch_names)


def _tick(done: dict[SignalKind, int], grid_done: int, data_t: float, end: bool) -> tuple[TickResult, int]:
    chunks = []
    for spec in SPECS:
        upto = math.floor(data_t * spec.sfreq + 1e-9)
        if upto > done[spec.kind]:
            chunks.append(_chunk(spec, done[spec.kind], upto))
            done[spec.kind] = upto
    estimates: list[Estimate] = []
    decisions: list[PacingDecision] = []
    g_upto = math.floor(data_t / GRID_S + 1e-9)
    for g in range(grid_done + 1, g_upto + 1):
        t = g * GRID_S
        estimates += [Estimate(m, float(g), 1.0, t) for m in Metric]
        last = end and g == g_upto
        events: tuple[str, ...] = (f"bench:tick {g}",) if g % EVENT_EVERY == 0 else ()
        if last:
            events += (END_EVENT,)
        decisions.append(PacingDecision(t, PacingState.RESONANCE, 6.0, 0.4, False, "bench", events))
    return TickResult(tuple(chunks), tuple(estimates), tuple(decisions)), g_upto


def _wait_ready(proc: subprocess.Popen[str], timeout_s: float) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline()
            if line.strip() == "READY":
                return
            if not line:
                break
        if proc.poll() is not None:
            break
    raise RuntimeError(f"the LSL bench consumer did not connect within {timeout_s:g} s (exit code {proc.poll()})")


def _stats(values_ms: np.ndarray) -> dict[str, float]:
    if values_ms.size == 0:
        return {"median": math.nan, "p99": math.nan, "max": math.nan}
    return {
        "median": float(np.median(values_ms)),
        "p99": float(np.percentile(values_ms, 99)),
        "max": float(values_ms.max()),
    }


def run(
    speed: float = 10.0,
    minutes: float = 10.0,
    *,
    name_prefix: str | None = None,
    tick_wall_s: float = TICK_WALL_S,
) -> dict[str, Any]:
    """Publish ``minutes`` of a session at ``speed`` x real time and measure delivery.

    Parameters
    ----------
    speed : float
        Data seconds per wall second (10: ten minutes of session in one minute).
    minutes : float
        Minutes of session data to publish.
    name_prefix : str or None
        Stream name and source_id prefix (default: a fresh ``calmloop-bench-<uuid>``).
    tick_wall_s : float
        Wall seconds between two writes (the session loop's period).

    Returns
    -------
    result : dict
        ``streams``: per outlet ``pushed``, ``received``, ``lost``, ``duplicated``,
        ``latency_ms`` (median, p99, max); ``all``: the same over every sample; ``ramp_ok``
        (the EEG index ramp arrived complete and in order); ``wall_s``,
        ``max_tick_gap_s`` (longest wall time between two producer ticks), configuration and
        versions.

    Raises
    ------
    ConfigError
        If LSL was already loaded with a configuration other than the loopback-only one.
    RuntimeError
        If the consumer process cannot connect.
    """
    if not (speed > 0 and minutes > 0 and tick_wall_s > 0):
        raise ValueError(
            f"Invalid value for 'speed'/'minutes'/'tick_wall_s': expected positive numbers, got "
            f"{speed!r}/{minutes!r}/{tick_wall_s!r}."
        )
    cfg = apply_lsl_scope("machine")  # loopback only; refuses if LSL runs with another config
    import pylsl

    from feedback.lsl_outlet import LslOutlets

    prefix = name_prefix or f"calmloop-bench-{uuid.uuid4().hex[:10]}"
    total_s = 60.0 * minutes
    wall_total = total_s / speed
    deadline_s = wall_total + 30.0
    outlets = LslOutlets(SPECS, name_prefix=prefix, session_offset=float(pylsl.local_clock()))
    expected = {
        **{s.kind.value: math.floor(total_s * s.sfreq + 1e-9) for s in SPECS},
        "estimates": math.floor(total_s / GRID_S + 1e-9),
        "pacer": math.floor(total_s / GRID_S + 1e-9),
    }
    expected["markers"] = expected["pacer"] // EVENT_EVERY + 1
    with tempfile.TemporaryDirectory(prefix="calmloop-lsl-bench-") as tmp:
        out_file = Path(tmp) / "consumer.npz"
        root = Path(__file__).resolve().parents[2]
        env = {**os.environ, "LSLAPICFG": str(cfg), "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
        cmd = [sys.executable, "-m", "experiments.bench.lsl", "--consume", prefix, "--expect", json.dumps(expected),
               "--deadline", f"{deadline_s:.1f}", "--result", str(out_file)]
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            _wait_ready(proc, READY_TIMEOUT_S)
            push_log: dict[str, list[tuple[float, float]]] = {k: [] for k in KINDS}  # (last stamp, push time)
            done = {s.kind: 0 for s in SPECS}
            grid_done = 0
            max_gap = 0.0  # longest wall interval between two ticks of the producer loop
            cpu0 = time.process_time()
            t0 = last = time.monotonic()
            data_t = 0.0
            while data_t < total_s:
                now = time.monotonic()
                max_gap, last = max(max_gap, now - last), now
                target = min(speed * (now - t0), total_s)
                if target > data_t:
                    tick, grid_done = _tick(done, grid_done, target, end=target >= total_s)
                    data_t = target
                    pushed_at = float(pylsl.local_clock())
                    outlets.write(tick)
                    for c in tick.chunks:
                        push_log[c.kind.value].append((float(c.times[-1]), pushed_at))
                    if tick.estimates:
                        push_log["estimates"].append((max(e.time for e in tick.estimates), pushed_at))
                    if tick.decisions:
                        push_log["pacer"].append((tick.decisions[-1].time, pushed_at))
                        ev = [d.time for d in tick.decisions if d.events]
                        if ev:
                            push_log["markers"].append((ev[-1], pushed_at))
                next_wall = now + tick_wall_s
                delay = next_wall - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            wall = time.monotonic() - t0
            cpu = time.process_time() - cpu0
            try:
                proc.wait(timeout=deadline_s + 10.0)
            except subprocess.TimeoutExpired:
                logger.warning("LSL bench consumer still running after its deadline: killing pid %d", proc.pid)
                proc.kill()
                proc.wait(timeout=10.0)
            pushed = outlets.n_pushed
            got = dict(np.load(out_file)) if out_file.exists() else {}
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10.0)
            outlets.close()
    offset = outlets.session_offset
    streams: dict[str, dict[str, Any]] = {}
    all_lat: list[np.ndarray] = []
    for k in KINDS:
        ts = got.get(f"{k}_ts", np.empty(0))
        pull = got.get(f"{k}_pull", np.empty(0))
        if k == "markers":  # several events can share a time: a sample is (time, text)
            texts = got.get("markers_values", np.empty(0, dtype=str))
            uniq = np.unique(np.array([f"{t!r}|{v}" for t, v in zip(ts, texts, strict=False)], dtype=str))
        else:
            uniq = np.unique(ts)
        log = np.asarray(push_log[k]) if push_log[k] else np.empty((0, 2))
        lat = np.empty(0)
        if ts.size and log.size:
            idx = np.searchsorted(log[:, 0] + offset, ts - 1e-7, side="left")
            ok = idx < len(log)
            lat = (pull[ok] - log[idx[ok], 1]) * 1e3
            all_lat.append(lat)
        streams[k] = {
            "pushed": int(pushed.get(k, 0)),
            "received": int(ts.size),
            "lost": int(pushed.get(k, 0)) - int(uniq.size),
            "duplicated": int(ts.size - uniq.size),
            "latency_ms": _stats(lat),
        }
    ramp = got.get("eeg_ramp", np.empty(0))
    ramp_ok = bool(ramp.size == pushed.get("eeg", -1) and np.array_equal(ramp, np.arange(ramp.size)))
    return {
        "speed": float(speed),
        "minutes": float(minutes),
        "data_s": total_s,
        "wall_s": float(wall),
        "producer_cpu_s": float(cpu),
        "max_tick_gap_s": float(max_gap),
        "streams": streams,
        "all": {
            "pushed": sum(s["pushed"] for s in streams.values()),
            "received": sum(s["received"] for s in streams.values()),
            "lost": sum(s["lost"] for s in streams.values()),
            "duplicated": sum(s["duplicated"] for s in streams.values()),
            "latency_ms": _stats(np.concatenate(all_lat) if all_lat else np.empty(0)),
        },
        "ramp_ok": ramp_ok,
        "consumer_complete": bool(got.get("complete", np.array(False))),
        "lsl_config": str(cfg),
        "liblsl": int(pylsl.library_version()),
        "pylsl": str(pylsl.__version__),
    }


def to_markdown(result: dict[str, Any]) -> str:
    """The result of :func:`run` as a Markdown report."""
    lines = [
        f"# LSL load test: {result['minutes']:g} min of session at {result['speed']:g}x real time",
        "",
        f"Wall time {result['wall_s']:.1f} s, producer CPU {result['producer_cpu_s']:.1f} s, longest gap "
        f"between producer ticks {1e3 * result['max_tick_gap_s']:.0f} ms (period {1e3 * TICK_WALL_S:.0f} ms). "
        "Consumer: pylsl inlets in a separate process, pulling every ~1 ms. "
        f"liblsl {result['liblsl']}, pylsl {result['pylsl']}, config {result['lsl_config']} (loopback only).",
        "",
        "| stream | pushed | received | lost | duplicated | latency median (ms) | p99 (ms) | max (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = list(result["streams"].items()) + [("all", result["all"])]
    for name, s in rows:
        lat = s["latency_ms"]
        lines.append(
            f"| {name} | {s['pushed']} | {s['received']} | {s['lost']} | {s['duplicated']} | "
            f"{lat['median']:.2f} | {lat['p99']:.2f} | {lat['max']:.2f} |"
        )
    lines += ["", f"EEG sample-index ramp complete and in order: {'yes' if result['ramp_ok'] else 'NO'}."]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Consumer (child process)
# ---------------------------------------------------------------------------------------------
def _consume(prefix: str, expected: dict[str, int], deadline_s: float, result: Path) -> int:
    if not os.environ.get("LSLAPICFG"):
        print("LSLAPICFG is not set: refusing to load liblsl with its default configuration", file=sys.stderr)
        return 2
    import pylsl

    t_end = time.monotonic() + deadline_s
    pred = f"starts-with(source_id,'{prefix}-')"
    infos = pylsl.resolve_bypred(pred, len(KINDS), 10.0)
    by_kind = {i.source_id()[len(prefix) + 1:]: i for i in infos}
    if set(by_kind) != set(KINDS):
        print(f"found {sorted(by_kind)}, expected {list(KINDS)}", file=sys.stderr)
        return 3
    inlets = {}
    for k, info in by_kind.items():
        inlet = pylsl.StreamInlet(info, max_buflen=360, recover=False)
        inlet.open_stream(10.0)
        inlets[k] = inlet
    bufs = {k: np.empty((8192, inlets[k].channel_count), dtype=np.float64 if k in ("estimates", "pacer") else np.float32)
            for k in KINDS if k != "markers"}
    ts: dict[str, list[np.ndarray]] = {k: [] for k in KINDS}
    pulls: dict[str, list[np.ndarray]] = {k: [] for k in KINDS}
    ramp: list[np.ndarray] = []
    marks: list[str] = []
    counts = dict.fromkeys(KINDS, 0)
    ended = False
    print("READY", flush=True)
    while time.monotonic() < t_end:
        for k, inlet in inlets.items():
            if k == "markers":
                values, stamps = inlet.pull_chunk(timeout=0.0, max_samples=1024)
                marks += [v[0] for v in values]
                if values and any(v[0] == END_EVENT for v in values):
                    ended = True
            else:
                _, stamps = inlet.pull_chunk(timeout=0.0, max_samples=8192, dest_obj=bufs[k])
                if stamps and k == "eeg":
                    ramp.append(bufs[k][: len(stamps), 0].astype(np.float64))
            if stamps:
                now = pylsl.local_clock()
                arr = np.asarray(stamps, dtype=np.float64)
                ts[k].append(arr)
                pulls[k].append(np.full(arr.size, now))
                counts[k] += arr.size
        if ended and all(counts[k] >= expected.get(k, 0) for k in KINDS):
            break
        time.sleep(0.001)
    complete = ended and all(counts[k] >= expected.get(k, 0) for k in KINDS)
    out = {f"{k}_ts": np.concatenate(v) if v else np.empty(0) for k, v in ts.items()}
    out.update({f"{k}_pull": np.concatenate(v) if v else np.empty(0) for k, v in pulls.items()})
    out["eeg_ramp"] = np.concatenate(ramp) if ramp else np.empty(0)
    out["markers_values"] = np.array(marks, dtype=str)
    out["complete"] = np.array(complete)
    np.savez(result, **out)  # type: ignore[arg-type]
    print("DONE", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run the load test and print (or write) the Markdown report."""
    p = argparse.ArgumentParser(prog="python -m experiments.bench.lsl", description=__doc__.splitlines()[0])
    p.add_argument("--speed", type=float, default=10.0, help="times real time (default 10)")
    p.add_argument("--minutes", type=float, default=10.0, help="minutes of session data (default 10)")
    p.add_argument("--out", help="write the Markdown report here (default: print it)")
    p.add_argument("--json", help="also write the raw result as JSON here")
    p.add_argument("--consume", help=argparse.SUPPRESS)
    p.add_argument("--expect", help=argparse.SUPPRESS)
    p.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.consume:
        return _consume(args.consume, json.loads(args.expect), float(args.deadline), Path(args.result))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result = run(args.speed, args.minutes)
    report = to_markdown(result)
    if args.out:
        Path(args.out).write_text(report)
    else:
        sys.stdout.write(report)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0 if result["all"]["lost"] == 0 and result["ramp_ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
