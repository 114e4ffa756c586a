"""``calmloop session``: a whole pre-dosing session, from calibration to ready for dosing."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from adaptive.controller import PacingController, PacingDecision, PacingState, PacingSummary
from adaptive.errors import ConfigError
from adaptive.pipeline import DspPipeline
from adaptive.session import SessionEngine, TickResult, session_tick
from adaptive.types import Metric, Source
from sensors.clocks import ManualClock, MonotonicClock, ScaledClock

from .acquire import make_source
from .outcomes import Outcomes, OutcomeChange, parse_phq9, summarise_outcomes
from .protocol import Protocol, load_protocol

__all__ = ["SessionResult", "run_closed_loop", "run_session"]

logger = logging.getLogger(__name__)

MAX_SPEED_STEP_S = 0.1  # data seconds per iteration when running as fast as possible
STATUS_EVERY_WALL_S = 1.0


@dataclass
class EventLog:
    """Sink that keeps every marker event with its data time (the session's event log)."""

    events: list[tuple[float, str]] = field(default_factory=list)

    def write(self, result: TickResult) -> None:
        for d in result.decisions:
            for e in d.events:
                self.events.append((d.time, e))


@dataclass
class StatusLine:
    """Sink that prints one live status line per wall-clock interval."""

    out: TextIO | None
    every_s: float = STATUS_EVERY_WALL_S
    _next: float = 0.0
    last: PacingDecision | None = None

    def write(self, result: TickResult) -> None:
        if result.decision is not None:
            self.last = result.decision
        now = time.monotonic()
        if self.out is None or self.last is None or now < self._next:
            return
        self._next = now + self.every_s
        self.out.write(format_status(self.last, self.latest) + "\n")
        self.out.flush()

    latest: dict[Metric, Any] = field(default_factory=dict)


def _fmt(v: float, spec: str) -> str:
    return "  -  " if v is None or not math.isfinite(v) else format(v, spec)


def format_status(d: PacingDecision, latest: dict[Metric, Any]) -> str:
    """One line a clinician can read at a glance."""

    def val(m: Metric) -> float:
        e = latest.get(m)
        return math.nan if e is None else e.value

    return (
        f"{int(d.time // 60):3d}:{int(d.time % 60):02d}  {d.state.value:<16} "
        f"pace {_fmt(d.pace_brpm, '5.1f')}  breath {_fmt(val(Metric.RESP_RATE_BRPM), '5.1f')}/min  "
        f"HR {_fmt(val(Metric.HR_BPM), '5.1f')}  arousal {_fmt(val(Metric.AROUSAL), '+5.2f')}  "
        f"relax {_fmt(val(Metric.EEG_RELAXATION), '4.2f')}  follow {_fmt(d.following, '4.2f')}  | {d.reason}"
    )


@dataclass
class SessionResult:
    """Everything a session produced (what the summary and the session file show)."""

    protocol: Protocol
    summary: PacingSummary
    events: list[tuple[float, str]]
    decisions: list[PacingDecision]
    outcomes_before: Outcomes
    outcomes_after: Outcomes
    changes: list[OutcomeChange]
    end_reason: str


def run_closed_loop(
    source: Source,
    protocol: Protocol,
    clock: ManualClock | MonotonicClock | ScaledClock,
    *,
    max_speed: bool = False,
    status_out: TextIO | None = None,
    tick_s: float = 0.5,
) -> tuple[PacingController, SessionEngine, EventLog, str]:
    """Run source -> DSP -> controller until the protocol ends the session.

    Returns the controller, the engine (with every decision), the event log and why it ended.
    """
    pipeline = DspPipeline(source.streams)
    controller = PacingController(protocol.pacing)
    engine = SessionEngine(pipeline, controller, tick_s=tick_s)
    log = EventLog()
    status = StatusLine(status_out)
    sinks = [log, status]
    end_reason = ""
    ready_at = math.nan
    source.start()
    try:
        while True:
            if max_speed:
                assert isinstance(clock, ManualClock)
                now = clock.advance(MAX_SPEED_STEP_S)
            else:
                now = clock.now()
            try:
                result = session_tick(source, engine, sinks, now)
            except KeyboardInterrupt:
                controller.stop("interrupted at the console", by="clinician")
                raise
            status.latest = dict(pipeline.latest)
            d = result.decision
            if d is not None:
                if d.dose_ready and math.isnan(ready_at):
                    ready_at = d.time
                if d.state is PacingState.STOPPED:
                    end_reason = d.reason
                    break
                if d.time >= protocol.max_duration_s:
                    end_reason = f"protocol duration {protocol.max_duration_s:g} s reached"
                    break
                if math.isfinite(ready_at) and d.time - ready_at >= protocol.after_ready_s:
                    end_reason = f"{protocol.after_ready_s:g} s of guiding after ready for dosing"
                    break
            if not max_speed:
                time.sleep(0.01)
    except KeyboardInterrupt:
        end_reason = "stopped by the clinician (Ctrl-C)"
    finally:
        source.stop()
    return controller, engine, log, end_reason


def _outcomes(args: argparse.Namespace, when: str, ask: tuple[str, ...]) -> Outcomes:
    mood = getattr(args, f"mood_{when}")
    pain = getattr(args, f"pain_{when}")
    phq = getattr(args, f"phq9_{when}")
    return Outcomes(
        mood=mood if "mood" in ask else None,
        pain=pain if "pain" in ask else None,
        phq9_items=parse_phq9(phq) if phq is not None and "phq9" in ask else None,
    )


def _check_patient_id(pid: str) -> str:
    ok = pid and len(pid) <= 32 and all(c.isalnum() or c in "-_" for c in pid)
    if not ok:
        raise ConfigError(
            f"Invalid value for '--patient-id': expected a pseudonymous code of letters, digits, '-' or '_' "
            f"(at most 32), got {pid!r}. Never use the patient's name."
        )
    return pid


def write_session_files(result: SessionResult, folder: Path, extra: dict[str, Any]) -> Path:
    """Write ``session.json`` (protocol, summary, events, outcomes) into a private folder."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    path = folder / "session.json"
    data = {
        "format_version": 1,
        "protocol": result.protocol.to_dict(),
        "summary": asdict(result.summary),
        "end_reason": result.end_reason,
        "events": [{"time_s": t, "event": e} for t, e in result.events],
        "outcomes": {
            "before": result.outcomes_before.to_dict(),
            "after": result.outcomes_after.to_dict(),
            "changes": [
                {"measure": c.measure, "before": c.before, "after": c.after, "change": c.change,
                 "percent_change": None if math.isnan(c.percent_change) else c.percent_change}
                for c in result.changes
            ],
        },
        **extra,
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, default=str)
    return path


def format_summary(result: SessionResult) -> str:
    """The end-of-session summary a clinician reads."""
    s = result.summary
    cal = s.calibration

    def mmss(v: float) -> str:
        return "not reached" if not math.isfinite(v) else f"{int(v // 60)} min {int(v % 60):02d} s"

    lines = [
        "",
        "Session summary",
        "---------------",
        f"ended:               {result.end_reason}",
        f"duration:            {mmss(s.duration_s)}  (final state: {s.final_state.value})",
    ]
    if cal is not None:
        lines.append(
            f"patient's baseline:  breathing {cal.resp_rate_brpm:.1f}/min, HR {_fmt(cal.hr_bpm, '.0f')} bpm, "
            f"RMSSD {_fmt(cal.rmssd_ms, '.0f')} ms"
        )
    lines += [
        f"pace reached:        {_fmt(s.min_pace_brpm, '.1f')} breaths/min (final {_fmt(s.final_pace_brpm, '.1f')})",
        f"time to calm:        {mmss(s.time_to_calm_s)}",
        f"time to ready:       {mmss(s.time_to_ready_s)}",
        f"alerts:              {s.n_alerts} ({s.alert_s:.0f} s in alert)",
        f"signal lost:         {s.signal_lost_s:.0f} s",
    ]
    if result.changes:
        lines.append("outcomes (before -> after, change):")
        for c in result.changes:
            pct = "" if math.isnan(c.percent_change) else f", {c.percent_change:+.0f} %"
            lines.append(f"  {c.measure:<6} {c.before:g} -> {c.after:g}  ({c.change:+g}{pct})")
    lines.append("key events:")
    for t, e in result.events:
        if e.startswith(("state:", "alert:", "ready_for_dosing", "stop:")):
            lines.append(f"  {int(t // 60):3d}:{int(t % 60):02d}  {e}")
    return "\n".join(lines) + "\n"


def run_session(args: argparse.Namespace, out: TextIO) -> int:
    """``calmloop session``."""
    protocol = load_protocol(args.protocol)
    pid = _check_patient_id(args.patient_id)
    before = _outcomes(args, "before", protocol.ask)
    max_speed = args.speed == "max"
    speed = 1.0 if max_speed else float(args.speed)
    if args.source != "simulated" and (max_speed or speed != 1.0):
        raise ConfigError(
            f"Invalid value for '--speed': a live device runs in real time, got {args.speed!r} with "
            f"--source {args.source}. Use --speed only with --source simulated."
        )
    clock: ManualClock | MonotonicClock | ScaledClock
    if max_speed:
        clock = ManualClock()
    elif args.source == "simulated":
        clock = ScaledClock(speed)
    else:
        clock = MonotonicClock()
    ns = argparse.Namespace(**{**vars(args), "speed": 1.0})
    source = make_source(ns, clock if not isinstance(clock, ManualClock) else MonotonicClock())
    out.write(
        f"calmloop session: protocol {protocol.name!r}, source {args.source}"
        f"{' (' + args.profile + ')' if args.source == 'simulated' else ''}, "
        f"speed {args.speed}, patient {pid}\n"
    )
    controller, engine, log, end_reason = run_closed_loop(
        source, protocol, clock, max_speed=max_speed, status_out=out
    )
    after = _outcomes(args, "after", protocol.ask)
    result = SessionResult(
        protocol=protocol,
        summary=controller.summary(),
        events=log.events,
        decisions=engine.decisions,
        outcomes_before=before,
        outcomes_after=after,
        changes=summarise_outcomes(before, after),
        end_reason=end_reason,
    )
    out.write(format_summary(result))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder = Path(args.out) / f"{stamp}_{pid}"
    path = write_session_files(
        result,
        folder,
        {"patient_id": pid, "source": args.source, "profile": args.profile, "seed": args.seed, "speed": args.speed},
    )
    out.write(f"session file: {path}\n")
    return 0
