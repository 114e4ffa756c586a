"""``calmloop replay``: a recorded session through the same pipeline, and a check against it."""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from adaptive.controller import PacingDecision
from adaptive.errors import ConfigError
from adaptive.records import Recording
from adaptive.types import Estimate, Metric
from sensors.clocks import ManualClock, ScaledClock
from sensors.readers import read_recording
from sensors.replay import ReplaySource

from .protocol import Protocol, load_protocol, protocol_from_dict
from .session import format_status, run_closed_loop

__all__ = ["compare_runs", "run_replay"]

logger = logging.getLogger(__name__)


def _sidecar(paths: list[Path]) -> dict[str, object]:
    """The ``session.json`` beside a calmloop recording, if there is one."""
    for p in paths:
        folder = p if p.is_dir() else p.parent
        f = folder / "session.json"
        if f.is_file():
            try:
                data = json.loads(f.read_text("utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                logger.warning("could not read %s (%s): using the default protocol", f, exc)
                return {}
            return data if isinstance(data, dict) else {}
    return {}


def _protocol(args: argparse.Namespace, sidecar: dict[str, object]) -> Protocol:
    if args.protocol is not None:
        return load_protocol(args.protocol)
    cfg = sidecar.get("config")
    recorded = cfg.get("protocol") if isinstance(cfg, dict) else None
    if isinstance(recorded, dict):
        return protocol_from_dict(recorded)
    return load_protocol(None)


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _same_estimates(rec: dict[tuple[Metric, float], Estimate], rep: dict[tuple[Metric, float], Estimate],
                    cut: float) -> bool:
    """Whether both runs hold the same (metric, time) keys up to ``cut``, with the same values.

    True exactly when :func:`compare_runs` finds no difference between the estimates.
    """
    isnan = math.isnan
    matched = 0
    for key, a in rec.items():
        if key[1] > cut:
            continue
        b = rep.get(key)
        if b is None:
            return False
        av, bv, aq, bq = a.value, b.value, a.quality, b.quality
        if not ((av == bv or (isnan(av) and isnan(bv))) and (aq == bq or (isnan(aq) and isnan(bq)))):
            return False
        matched += 1
    # every compared key of the recording is in the replay: the replay has no other one
    return matched == sum(1 for key in rep if not key[1] > cut)


def compare_runs(
    recorded: tuple[Estimate, ...] | list[Estimate],
    replayed: list[Estimate],
    recorded_decisions: tuple[PacingDecision, ...] | list[PacingDecision],
    replayed_decisions: list[PacingDecision],
) -> list[str]:
    """Differences between a recorded and a replayed run (empty when identical).

    Estimates are compared by (metric, time) on value and quality, bit for bit; decisions by
    time, state, pace and readiness, over the span both runs cover.
    """
    problems: list[str] = []
    rec = {(e.metric, e.time): e for e in recorded}
    rep = {(e.metric, e.time): e for e in replayed}
    end = min(max((e.time for e in recorded), default=0.0), max((e.time for e in replayed), default=0.0))
    # the last second may still have been pending in either run: estimates after `cut` are not compared
    cut = end - 1.0
    # a replay usually matches: check that in one unordered pass, and list the differences in
    # time order only when there are some
    keys: list[tuple[Metric, float]] = []
    if not _same_estimates(rec, rep, cut):
        keys = sorted(set(rec) | set(rep), key=lambda k: (k[1], k[0].value))
    for key in keys:
        if key[1] > cut:
            continue
        a, b = rec.get(key), rep.get(key)
        if a is None or b is None:
            problems.append(f"{key[0].value} at {key[1]:.3f} s only in the {'replay' if a is None else 'recording'}")
        elif not (_same(a.value, b.value) and _same(a.quality, b.quality)):
            problems.append(f"{key[0].value} at {key[1]:.3f} s: recorded {a.value!r}, replayed {b.value!r}")
        if len(problems) >= 10:
            return problems
    rd = {d.time: d for d in recorded_decisions}
    for d in replayed_decisions:
        r = rd.get(d.time)
        if r is None or d.time > end - 1.0:
            continue
        if (r.state, r.dose_ready) != (d.state, d.dose_ready) or not _same(r.pace_brpm, d.pace_brpm):
            problems.append(
                f"decision at {d.time:.1f} s: recorded {r.state.value} {r.pace_brpm:.3f}, "
                f"replayed {d.state.value} {d.pace_brpm:.3f}"
            )
            if len(problems) >= 10:
                break
    return problems


class _Estimates:
    """Sink that keeps every estimate released during the replay."""

    def __init__(self) -> None:
        self.items: list[Estimate] = []

    def write(self, result: object) -> None:
        self.items.extend(getattr(result, "estimates", ()))


@contextlib.contextmanager
def _frozen_heap() -> Iterator[None]:
    """Keep the objects alive on entry out of the cyclic garbage collector's passes until exit.

    The recording (~10^5 objects), the modules and, after the loop, the replayed estimates all
    live until the end: scanning them in every full collection costs about 0.3 s CPU per hour
    of data (``gc.freeze``; nothing is collected differently, only later).
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def run_replay(args: argparse.Namespace, out: TextIO) -> int:
    """``calmloop replay FILE...``."""
    paths = [Path(f) for f in args.files]
    for p in paths:
        if not p.exists():
            raise ConfigError(f"Invalid value for 'FILE': {p} does not exist.")
    r0, rc0 = time.perf_counter(), time.process_time()
    recording: Recording = read_recording([str(p) for p in paths] if len(paths) > 1 else str(paths[0]))
    read_wall, read_cpu = time.perf_counter() - r0, time.process_time() - rc0
    sidecar = _sidecar(paths)
    protocol = _protocol(args, sidecar)
    # a replay runs to the end of the recording, whatever the protocol's duration
    protocol = Protocol(**{**{f: getattr(protocol, f) for f in protocol.__dataclass_fields__},
                           "max_duration_s": math.inf, "after_ready_s": math.inf})
    max_speed = args.speed == "max"
    clock = ManualClock() if max_speed else ScaledClock(float(args.speed))
    source = ReplaySource(recording)
    kinds = ", ".join(f"{s.kind.value} {s.sfreq:g} Hz" for s in recording.specs)
    out.write(f"calmloop replay: {', '.join(map(str, paths))} ({recording.metadata.get('format')}: {kinds}), "
              f"{source.end_time:.0f} s of data, speed {args.speed}\n")
    from feedback.recorder import SessionRecorder

    pid = args.patient_id or str(sidecar.get("patient_id") or "replay")
    recorder = SessionRecorder.create(
        args.out, source.streams, patient_id=pid,
        config={"replay_of": [str(p) for p in paths], "protocol": protocol.to_dict(), "speed": args.speed},
    )
    kept = _Estimates()
    frontend = None
    if not args.headless:
        from feedback.app import PatientWindow

        frontend = PatientWindow()
    t0, c0 = time.perf_counter(), time.process_time()
    with _frozen_heap():
        controller, engine, log, end_reason = run_closed_loop(
            source, protocol, clock, max_speed=max_speed, status_out=None if max_speed else out,
            sinks=[recorder, kept], frontend=frontend,
        )
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    recorder.write_sidecar({"end_reason": end_reason, "events": [{"time_s": t, "event": e} for t, e in log.events]})
    recorder.close(controller.summary(), end_reason=end_reason)
    if engine.decisions:
        out.write(format_status(engine.decisions[-1], dict(engine.pipeline.latest)) + "\n")
    data_s = source.end_time
    out.write(f"replayed {data_s:.0f} s of data in {wall:.1f} s wall, {cpu:.1f} s CPU: "
              f"{data_s / max(wall, 1e-9):.0f}x real time ({data_s / max(cpu, 1e-9):.0f}x per CPU second)\n")
    all_wall, all_cpu = wall + read_wall, cpu + read_cpu
    out.write(f"with reading the file ({read_wall:.1f} s wall): {all_wall:.1f} s wall, {all_cpu:.1f} s CPU: "
              f"{data_s / max(all_wall, 1e-9):.0f}x real time "
              f"({data_s / max(all_cpu, 1e-9):.0f}x per CPU second)\n")
    out.write(f"{len(kept.items)} estimates, {len(engine.decisions)} decisions, "
              f"{len(log.events)} events written to {recorder.folder}\n")
    if recording.estimates or recording.decisions:
        with _frozen_heap():
            problems = compare_runs(recording.estimates, kept.items, recording.decisions, engine.decisions)
        if problems:
            out.write("differs from the recorded run:\n" + "".join(f"  {p}\n" for p in problems))
            return 1
        out.write(f"identical to the recorded run ({len(recording.estimates)} estimates, "
                  f"{len(recording.decisions)} decisions compared)\n")
    return 0
