"""Speed of the whole DSP pipeline and controller on Muse-like packets (one core, no sleeping).

What is measured
----------------
1. **Data.**  ``duration_s`` of the simulated patient (``SimulatedPatient("compliant", seed)``,
   pacer at ``pace_brpm``) polled once per second; the generation time is reported on its own.
2. **Packets.**  The samples are re-cut into Muse-sized packets (EEG 12 samples, PPG 6,
   accelerometer and gyroscope 3: :data:`PACKET_SAMPLES`) and interleaved by the time of their
   last sample, as a Muse delivers them over Bluetooth.  The chunks are built before timing.
3. **Engine.**  ``SessionEngine(DspPipeline(streams), PacingController())`` gets one packet per
   :meth:`~adaptive.session.SessionEngine.process` call (a *tick*); decisions fall every 0.5 s of
   data.  Reported: throughput as a multiple of real time (data seconds per CPU second from
   :func:`time.process_time`, and per wall second from :func:`time.perf_counter`), and per-tick
   latency median / p99 / max in ms, over all ticks and over the ticks that took a decision
   (CPU time of the process, so other users of a shared machine inflate it less than wall time;
   the per-tick clocks add about 1 us per tick).
4. **Components.**  A second pass wraps each estimator's ``update`` (and the controller's
   ``step``) with CPU-time counters: EEG, cardiac (beats, HR, HRV, PPG quality), respiration,
   accelerometer quality, arousal, the pipeline's own work (buffering, routing, release order,
   history), the controller and the engine's own loop.  The pipeline's throughput counts
   ``DspPipeline.update``, ``advance`` and ``latest_at``.  Optionally a cProfile pass over the
   first ``profile_s`` seconds lists the functions with the most own time.

Targets (the brief of the speed work): pipeline >= 1000x real time, tick p99 <= 2 ms, whole
engine (what a replay runs) >= 500x real time.

Run ``python -m experiments.bench.speed [--duration 3600] [--seed 0] [--profile 300]
[--out report.md]``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import math
import os
import platform
import pstats
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adaptive.types import Chunk, SignalKind, StreamSpec

logger = logging.getLogger(__name__)

__all__ = ["PACKET_SAMPLES", "TARGETS", "generate", "main", "muse_packets", "run", "to_markdown"]

#: Samples per packet of each stream, as the Muse sends them over Bluetooth.
PACKET_SAMPLES: dict[SignalKind, int] = {
    SignalKind.EEG: 12,
    SignalKind.PPG: 6,
    SignalKind.ACCEL: 3,
    SignalKind.GYRO: 3,
}

#: What the speed work aims at.
TARGETS: dict[str, float] = {"pipeline_x": 1000.0, "tick_p99_ms": 2.0, "engine_x": 500.0}

_ORDER = {kind: i for i, kind in enumerate(PACKET_SAMPLES)}


def generate(
    duration_s: float, *, seed: int = 0, profile: str = "compliant", pace_brpm: float | None = 6.0
) -> tuple[tuple[StreamSpec, ...], list[Chunk], dict[str, float]]:
    """Simulate ``duration_s`` seconds of the patient, polled once per second.

    Parameters
    ----------
    duration_s : float
        Seconds of data.
    seed : int
        Seed of the simulated patient.
    profile : str
        Patient profile.
    pace_brpm : float or None
        Pacer heard by the patient for the whole run (open loop: the engine under test does not
        steer it, so every run of the benchmark sees the same data).

    Returns
    -------
    streams : tuple of StreamSpec
    chunks : list of Chunk
        One chunk per stream and poll, in poll order.
    timing : dict
        ``cpu_s`` and ``wall_s`` of the generation.
    """
    from sensors.simulated import SimulatedPatient

    src = SimulatedPatient(profile, seed=seed)
    src.start()
    if pace_brpm is not None:
        src.set_pace(pace_brpm)
    chunks: list[Chunk] = []
    c0, w0 = time.process_time(), time.perf_counter()
    n = int(math.ceil(duration_s))
    for k in range(1, n + 1):
        chunks += src.poll(float(min(k, duration_s)))
    timing = {"cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - w0}
    src.stop()
    return src.streams, chunks, timing


def muse_packets(chunks: Sequence[Chunk], sizes: dict[SignalKind, int] | None = None) -> list[Chunk]:
    """Re-cut chunks into device-sized packets, interleaved by the time of their last sample.

    Parameters
    ----------
    chunks : sequence of Chunk
        Any chunking of one or more streams (each stream's chunks in time order).
    sizes : dict of SignalKind to int or None
        Samples per packet (default :data:`PACKET_SAMPLES`); the last packet of a stream may be
        shorter.

    Returns
    -------
    packets : list of Chunk
        Sorted by last sample time, then by stream (EEG, PPG, accelerometer, gyroscope).
    """
    sizes = dict(PACKET_SAMPLES if sizes is None else sizes)
    by_kind: dict[SignalKind, list[Chunk]] = {}
    for c in chunks:
        if c.n_times:
            by_kind.setdefault(c.kind, []).append(c)
    packets: list[Chunk] = []
    for kind, cs in by_kind.items():
        data = np.concatenate([c.data for c in cs], axis=1)
        times = np.concatenate([c.times for c in cs])
        n = int(sizes.get(kind, 1))
        for i in range(0, times.size, n):
            packets.append(Chunk(kind, data[:, i : i + n], times[i : i + n], cs[0].sfreq, cs[0].ch_names))
    packets.sort(key=lambda c: (float(c.times[-1]), _ORDER.get(c.kind, len(_ORDER))))
    return packets


def _stats(ms: np.ndarray) -> dict[str, float]:
    if ms.size == 0:
        return {k: math.nan for k in ("median", "p99", "max", "mean")}
    return {
        "median": float(np.median(ms)),
        "p99": float(np.percentile(ms, 99)),
        "max": float(np.max(ms)),
        "mean": float(np.mean(ms)),
    }


def _engine(streams: Sequence[StreamSpec]) -> Any:
    from adaptive.controller import PacingController
    from adaptive.pipeline import DspPipeline
    from adaptive.session import SessionEngine

    return SessionEngine(DspPipeline(streams), PacingController())


def _timed_pass(streams: Sequence[StreamSpec], packets: Sequence[Chunk]) -> dict[str, Any]:
    """One packet per tick; CPU and wall time of every tick."""
    engine = _engine(streams)
    n = len(packets)
    cpu = np.empty(n)
    wall = np.empty(n)
    decided = np.zeros(n, dtype=bool)
    pc, pf = time.process_time, time.perf_counter
    process = engine.process
    c_start, w_start = pc(), pf()
    for i, packet in enumerate(packets):
        c0, w0 = pc(), pf()
        result = process((packet,))
        w1, c1 = pf(), pc()
        cpu[i] = c1 - c0
        wall[i] = w1 - w0
        if result.decisions:
            decided[i] = True
    cpu_s, wall_s = pc() - c_start, pf() - w_start
    states: dict[str, float] = {}
    for d in engine.decisions:
        states.setdefault(d.state.value, d.time)
    return {
        "cpu_s": cpu_s,
        "wall_s": wall_s,
        "tick_cpu_ms": cpu * 1e3,
        "tick_wall_ms": wall * 1e3,
        "decided": decided,
        "n_decisions": len(engine.decisions),
        "states_first_seen_s": states,
    }


_COMPONENTS: tuple[tuple[str, str, str], ...] = (
    # (label, attribute of the pipeline, method)
    ("EEG (band powers, artefacts, relaxation)", "_eeg", "update"),
    ("cardiac (beats, HR, HRV, PPG quality)", "_cardiac", "update"),
    ("respiration (PPG + accelerometer)", "_resp", "update"),
    ("accelerometer quality", "_accel_q", "update"),
    ("arousal", "_arousal", "update"),
)


_RESP_LABEL = "respiration (PPG + accelerometer)"


def _component_pass(streams: Sequence[StreamSpec], packets: Sequence[Chunk]) -> dict[str, Any]:
    """CPU seconds per component (wrapped methods); the rest is the pipeline's and engine's own.

    Also the CPU time of every tick with and without the respiration estimator's share, so
    the report can say what the tick latency would be without it.
    """
    engine = _engine(streams)
    pipe, ctl = engine.pipeline, engine.controller
    acc: dict[str, float] = {}
    pc = time.process_time

    def wrap(obj: object, method: str, label: str) -> None:
        fn: Callable[..., Any] = getattr(obj, method)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = pc()
            try:
                return fn(*args, **kwargs)
            finally:
                acc[label] = acc.get(label, 0.0) + pc() - t0

        setattr(obj, method, timed)

    for label, attr, method in _COMPONENTS:
        obj = getattr(pipe, attr, None)
        if obj is not None:
            wrap(obj, method, label)
            acc[label] = 0.0
    for method in ("update", "advance", "latest_at"):
        wrap(pipe, method, f"pipeline.{method}")
    wrap(ctl, "step", "controller")
    tick = np.empty(len(packets))
    tick_resp = np.empty(len(packets))
    decided = np.zeros(len(packets), dtype=bool)
    for i, packet in enumerate(packets):
        r0 = acc.get(_RESP_LABEL, 0.0)
        t0 = pc()
        decided[i] = bool(engine.process((packet,)).decisions)
        tick[i] = pc() - t0
        tick_resp[i] = acc.get(_RESP_LABEL, 0.0) - r0
    total = float(tick.sum())  # inside process() only: the per-tick bookkeeping here is not the engine's
    estimators = sum(acc.get(label, 0.0) for label, _, _ in _COMPONENTS)
    pipeline = acc["pipeline.update"] + acc["pipeline.advance"] + acc["pipeline.latest_at"]
    out = {label: acc[label] for label, _, _ in _COMPONENTS if label in acc}
    out["pipeline own (buffering, routing, release, history)"] = pipeline - estimators
    out["controller"] = acc["controller"]
    out["session engine own"] = total - pipeline - acc["controller"]
    out["_pipeline_total"] = pipeline
    out["_total"] = total
    out["_tick_ms"] = tick * 1e3
    out["_tick_without_resp_ms"] = (tick - tick_resp) * 1e3
    out["_decided"] = decided
    return out


def _profile_pass(
    streams: Sequence[StreamSpec], packets: Sequence[Chunk], top: int = 20
) -> list[dict[str, Any]]:
    engine = _engine(streams)
    prof = cProfile.Profile()
    prof.enable()
    for packet in packets:
        engine.process((packet,))
    prof.disable()
    st = pstats.Stats(prof, stream=io.StringIO())
    entries = st.stats.items()  # type: ignore[attr-defined]
    total = sum(v[2] for _, v in entries)
    rows = []
    for (file, line, func), v in sorted(entries, key=lambda kv: kv[1][2], reverse=True)[:top]:
        where = os.path.join(os.path.basename(os.path.dirname(file)), os.path.basename(file))
        rows.append({
            "name": f"{where}:{line}({func})", "calls": int(v[1]), "own_s": float(v[2]),
            "cum_s": float(v[3]), "share": float(v[2] / total) if total else math.nan,
        })
    return rows


def run(
    duration_s: float = 3600.0,
    seed: int = 0,
    *,
    profile: str = "compliant",
    pace_brpm: float | None = 6.0,
    components: bool = True,
    profile_s: float = 0.0,
) -> dict[str, Any]:
    """Generate the data, then time the engine over it.

    Parameters
    ----------
    duration_s : float
        Seconds of simulated data.
    seed : int
        Seed of the simulated patient.
    profile : str
        Patient profile.
    pace_brpm : float or None
        Pacer heard by the patient (see :func:`generate`).
    components : bool
        Run the second pass that splits the CPU time by component.
    profile_s : float
        If > 0, a cProfile pass over the first ``profile_s`` seconds of packets (its times are
        inflated by profiling and are not the benchmark's).

    Returns
    -------
    result : dict
        See :func:`to_markdown` for the fields; all times in seconds or milliseconds.
    """
    streams, chunks, gen = generate(duration_s, seed=seed, profile=profile, pace_brpm=pace_brpm)
    packets = muse_packets(chunks)
    data_s = max(float(c.times[-1]) for c in packets) - min(float(c.times[0]) for c in packets)
    timed = _timed_pass(streams, packets)
    cpu, wall, decided = timed["tick_cpu_ms"], timed["tick_wall_ms"], timed["decided"]
    out: dict[str, Any] = {
        "duration_s": float(duration_s),
        "data_s": data_s,
        "seed": int(seed),
        "profile": profile,
        "pace_brpm": pace_brpm,
        "n_packets": len(packets),
        "n_packets_by_kind": {k.value: sum(1 for c in packets if c.kind is k) for k in PACKET_SAMPLES},
        "n_decisions": timed["n_decisions"],
        "n_decision_ticks": int(decided.sum()),
        "generation": {**gen, "x_realtime_cpu": data_s / gen["cpu_s"] if gen["cpu_s"] > 0 else math.inf},
        "engine": {
            "cpu_s": timed["cpu_s"],
            "wall_s": timed["wall_s"],
            "x_realtime_cpu": data_s / timed["cpu_s"],
            "x_realtime_wall": data_s / timed["wall_s"],
        },
        "tick_cpu_ms": _stats(cpu),
        "tick_wall_ms": _stats(wall),
        "decision_tick_cpu_ms": _stats(cpu[decided]),
        "decision_tick_wall_ms": _stats(wall[decided]),
        "other_tick_cpu_ms": _stats(cpu[~decided]),
        "states_first_seen_s": timed["states_first_seen_s"],
        "targets": dict(TARGETS),
        "environment": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": _version("scipy"),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else [],
        },
    }
    if components:
        comp = _component_pass(streams, packets)
        total = comp.pop("_total")
        pipeline = comp.pop("_pipeline_total")
        tick, tick_nr, dec = comp.pop("_tick_ms"), comp.pop("_tick_without_resp_ms"), comp.pop("_decided")
        out["component_pass_tick_cpu_ms"] = {
            "all": _stats(tick), "all_without_respiration": _stats(tick_nr),
            "decision": _stats(tick[dec]), "decision_without_respiration": _stats(tick_nr[dec]),
        }
        out["components"] = {
            name: {"cpu_s": v, "share": v / total if total else math.nan, "ms_per_data_s": 1e3 * v / data_s}
            for name, v in comp.items()
        }
        out["components_total_cpu_s"] = total
        out["pipeline"] = {"cpu_s": pipeline, "x_realtime_cpu": data_s / pipeline if pipeline else math.inf}
    if profile_s > 0:
        t_end = min(float(c.times[0]) for c in packets) + profile_s
        out["profile_s"] = float(profile_s)
        out["profile_rows"] = _profile_pass(streams, [c for c in packets if float(c.times[-1]) <= t_end])
    return out


def _version(module: str) -> str:
    try:
        return str(__import__(module).__version__)
    except (ImportError, AttributeError):  # pragma: no cover
        return ""


def _f(v: float, digits: int = 2) -> str:
    return "-" if not math.isfinite(v) else f"{v:.{digits}f}"


def to_markdown(result: dict[str, Any]) -> str:
    """The benchmark as a Markdown report."""
    r = result
    env = r["environment"]
    tg = r["targets"]
    eng = r["engine"]
    lines = [
        "# DSP pipeline and controller speed (simulated Muse packets, one core)",
        "",
        f"{r['data_s']:.0f} s of `SimulatedPatient({r['profile']!r}, seed={r['seed']})`"
        f" (pacer {r['pace_brpm']} brpm), {r['n_packets']} packets "
        f"({', '.join(f'{k} {v}' for k, v in r['n_packets_by_kind'].items())}), one packet per "
        f"`SessionEngine.process` call; {r['n_decisions']} decisions.  Python {env['python']}, numpy "
        f"{env['numpy']}, scipy {env['scipy']}, {env['cpu_count']} CPUs, load average "
        f"{', '.join(f'{x:.1f}' for x in env['loadavg'])} (a shared machine: CPU time is the "
        "reliable figure).",
        "",
        f"Data generation (not part of the engine): {r['generation']['cpu_s']:.2f} s CPU "
        f"({_f(r['generation']['x_realtime_cpu'], 0)}x real time).",
        "",
        "| throughput (x real time) | CPU | wall | target |",
        "|---|---:|---:|---:|",
        f"| whole engine (pipeline + controller + loop) | {eng['x_realtime_cpu']:.0f} | "
        f"{eng['x_realtime_wall']:.0f} | >= {tg['engine_x']:g} |",
    ]
    if "pipeline" in r:
        lines.append(
            f"| DspPipeline (update + advance + latest_at) | {r['pipeline']['x_realtime_cpu']:.0f} | - | "
            f">= {tg['pipeline_x']:g} |"
        )
    lines += [
        "",
        "| per-tick latency, ms | ticks | median | p99 | max | mean |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    n_all, n_dec = r["n_packets"], r["n_decision_ticks"]
    for key, label, n in (
        ("tick_cpu_ms", "all ticks, CPU", n_all),
        ("tick_wall_ms", "all ticks, wall", n_all),
        ("decision_tick_cpu_ms", "decision ticks, CPU", n_dec),
        ("decision_tick_wall_ms", "decision ticks, wall", n_dec),
        ("other_tick_cpu_ms", "ticks without a decision, CPU", n_all - n_dec),
    ):
        s = r[key]
        lines.append(
            f"| {label} | {n} | {_f(s['median'], 3)} | {_f(s['p99'], 3)} | {_f(s['max'], 3)} | {_f(s['mean'], 3)} |"
        )
    p99 = r["tick_cpu_ms"]["p99"]
    lines += [
        "",
        f"Targets: engine >= {tg['engine_x']:g}x: **{'met' if eng['x_realtime_cpu'] >= tg['engine_x'] else 'not met'}**; "
        f"tick p99 <= {tg['tick_p99_ms']:g} ms (CPU): **{'met' if p99 <= tg['tick_p99_ms'] else 'not met'}**"
        + (
            f"; pipeline >= {tg['pipeline_x']:g}x: "
            f"**{'met' if r['pipeline']['x_realtime_cpu'] >= tg['pipeline_x'] else 'not met'}**."
            if "pipeline" in r else "."
        ),
    ]
    comps = r.get("components")
    if comps:
        lines += [
            "",
            "## Where the time goes (CPU, wrapped calls)",
            "",
            "| component | CPU s | ms per s of data | share |",
            "|---|---:|---:|---:|",
        ]
        for name, c in sorted(comps.items(), key=lambda kv: -kv[1]["cpu_s"]):
            lines.append(f"| {name} | {c['cpu_s']:.2f} | {c['ms_per_data_s']:.3f} | {c['share'] * 100:.1f} % |")
        resp = comps.get(_RESP_LABEL)
        if resp is not None and "pipeline" in r:
            without = r["pipeline"]["cpu_s"] - resp["cpu_s"]
            lines += [
                "",
                f"Without respiration the pipeline would run at {r['data_s'] / without:.0f}x real time "
                f"(CPU) and the engine at {r['data_s'] / (r['components_total_cpu_s'] - resp['cpu_s']):.0f}x.",
            ]
        ticks = r.get("component_pass_tick_cpu_ms")
        if ticks:
            lines += [
                "",
                "| tick CPU ms (component pass) | median | p99 | max |",
                "|---|---:|---:|---:|",
            ]
            for key, label in (
                ("all", "all ticks"), ("all_without_respiration", "all ticks, respiration's share removed"),
                ("decision", "decision ticks"),
                ("decision_without_respiration", "decision ticks, respiration's share removed"),
            ):
                s_ = ticks[key]
                lines.append(f"| {label} | {_f(s_['median'], 3)} | {_f(s_['p99'], 3)} | {_f(s_['max'], 3)} |")
    rows = r.get("profile_rows")
    if rows:
        lines += [
            "",
            f"## Functions with the most own time (cProfile, first {r['profile_s']:g} s)",
            "",
            "| function | calls | own s | cumulative s | share |",
            "|---|---:|---:|---:|---:|",
        ]
        for row in rows:
            lines.append(
                f"| `{row['name']}` | {row['calls']} | {row['own_s']:.3f} | {row['cum_s']:.3f} | "
                f"{row['share'] * 100:.1f} % |"
            )
    states = r.get("states_first_seen_s") or {}
    if states:
        lines += ["", "States first seen (s): " + ", ".join(f"{k} {v:.0f}" for k, v in states.items())]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds of data (default 3600)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated patient")
    parser.add_argument("--profile", type=float, default=0.0, metavar="SECONDS",
                        help="add a cProfile pass over the first SECONDS of data")
    parser.add_argument("--no-components", action="store_true", help="skip the per-component pass")
    parser.add_argument("--out", type=Path, help="write the Markdown report here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    result = run(args.duration, args.seed, components=not args.no_components, profile_s=args.profile)
    report = to_markdown(result)
    if args.out is not None:
        args.out.write_text(report, encoding="utf-8")
    sys.stdout.write(report)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
