"""``calmloop session``: a whole pre-dosing session, from calibration to ready for dosing."""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Protocol as TypingProtocol, TextIO

from adaptive.controller import PacingController, PacingDecision, PacingState, PacingSummary
from adaptive.errors import ConfigError
from adaptive.pipeline import DspPipeline, PipelineConfig
from adaptive.records import check_patient_id
from adaptive.session import SessionEngine, Sink, TickResult, session_tick
from adaptive.types import Metric, Source, SourceStatus
from sensors.clocks import ManualClock, MonotonicClock, ScaledClock

from .acquire import make_source
from .outcomes import Outcomes, OutcomeChange, parse_phq9, summarise_outcomes
from .protocol import Protocol, load_protocol

__all__ = ["SessionResult", "run_closed_loop", "run_session"]

logger = logging.getLogger(__name__)

MAX_SPEED_STEP_S = 0.1  # data seconds per iteration when running as fast as possible
# A source that answers the pacer (the simulated patient) is stepped finely so that it hears each
# new pace promptly; a recording does not listen, so it is stepped one decision tick at a time
# (same estimates and decisions: the engine decides on a fixed grid of data time).
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


class Frontend(TypingProtocol):
    """What a session loop can drive besides sinks: a window that also returns user commands."""

    def write(self, result: TickResult) -> None: ...

    def frame(self, now_s: float) -> list[Any]: ...

    def close(self) -> None: ...


def run_closed_loop(
    source: Source,
    protocol: Protocol,
    clock: ManualClock | MonotonicClock | ScaledClock,
    *,
    max_speed: bool = False,
    status_out: TextIO | None = None,
    tick_s: float = 0.5,
    sinks: Sequence[Sink] = (),
    frontend: Frontend | None = None,
    pipeline_config: PipelineConfig | None = None,
    screenshots: Path | None = None,
) -> tuple[PacingController, SessionEngine, EventLog, str]:
    """Run source -> DSP -> controller -> sinks until the protocol (or the user) ends the session.

    Returns the controller, the engine (with every decision), the event log and why it ended.
    With a frontend (the patient window), it is drawn once per loop at up to 60 frames per
    second; ``screenshots`` saves a PNG of it at the first frame of each state, and one with
    the clinician overlay when the patient is ready for dosing.
    """
    pipeline = DspPipeline(source.streams, pipeline_config)
    shots_taken: set[str] = set()
    next_frame = 0.0
    controller = PacingController(protocol.pacing)
    engine = SessionEngine(pipeline, controller, tick_s=tick_s)
    log = EventLog()
    status = StatusLine(status_out)
    all_sinks: list[Sink] = [log, status, *sinks]
    if frontend is not None:
        all_sinks.append(frontend)
    end_reason = ""
    ready_at = math.nan
    paused_at = math.nan
    if not isinstance(clock, ManualClock):
        clock.restart()
    step_s = MAX_SPEED_STEP_S if hasattr(source, "set_pace") else tick_s
    # SIGTERM (a supervisor, the machine shutting down) ends the session at the end of the
    # current tick, never inside one: the recording gets its footers and the summary says why.
    # Signal handlers can only be set from the main thread.
    terminated: list[int] = []
    previous_term = None
    if threading.current_thread() is threading.main_thread():
        previous_term = signal.signal(signal.SIGTERM, lambda signum, frame: terminated.append(signum))
    source.start()
    try:
        while not terminated:
            if max_speed:
                assert isinstance(clock, ManualClock)
                now = clock.advance(step_s)
            else:
                now = clock.now()
            result = session_tick(source, engine, all_sinks, now)
            status.latest = dict(pipeline.latest)
            if frontend is not None:
                cmds = frontend.frame(now)
                if screenshots is not None and engine.decisions:
                    _screenshots(frontend, engine.decisions[-1], screenshots, shots_taken, now)
                for cmd in cmds:
                    name = getattr(cmd, "name", str(cmd)).upper()
                    if name == "STOP":
                        controller.stop("stop confirmed on screen", by="clinician")
                    elif name == "PAUSE" and math.isnan(paused_at):
                        paused_at = now
                        logger.info("paused by the clinician at %.1f s", now)
                    elif name == "RESUME" and not math.isnan(paused_at):
                        logger.info("resumed after %.1f s", now - paused_at)
                        paused_at = math.nan
            d = result.decision
            if d is not None:
                if math.isnan(ready_at):  # the first ready decision, even if not the tick's last
                    ready_at = next((x.time for x in result.decisions if x.dose_ready), math.nan)
                if d.state is PacingState.STOPPED:
                    end_reason = d.reason
                    break
                if d.time >= protocol.max_duration_s:
                    end_reason = f"protocol duration {protocol.max_duration_s:g} s reached"
                    break
                if math.isfinite(ready_at) and d.time - ready_at >= protocol.after_ready_s:
                    end_reason = f"{protocol.after_ready_s:g} s of guiding after ready for dosing"
                    break
            if source.status is SourceStatus.STOPPED:
                end_reason = "the recording ended"
                break
            if not max_speed:
                if frontend is not None:  # at most 60 frames per second
                    next_frame = max(next_frame + 1.0 / 60.0, time.monotonic())
                    time.sleep(max(0.0, next_frame - time.monotonic()))
                else:
                    time.sleep(0.01)
        else:
            end_reason = "terminated by the system (SIGTERM)"
            logger.warning("SIGTERM: the session ends and its recording is closed")
    except KeyboardInterrupt:
        end_reason = "stopped by the clinician (Ctrl-C)"
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
        source.stop()
        if frontend is not None:
            frontend.close()
    return controller, engine, log, end_reason


def _screenshots(frontend: Frontend, d: PacingDecision, folder: Path, taken: set[str], now: float) -> None:
    """Save the patient view at the first frame of each state, and the overlay when ready."""
    shot = getattr(frontend, "screenshot", None)
    if shot is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    name = d.state.value
    if name not in taken:
        taken.add(name)
        shot(folder / f"patient_{name}.png")
    if d.dose_ready and "overlay" not in taken:
        taken.add("overlay")
        set_overlay = getattr(frontend, "set_overlay", None)
        if set_overlay is not None:
            set_overlay(True)
            frontend.frame(now)
            shot(folder / "clinician_overlay_ready.png")
            set_overlay(False)


def _outcomes(args: argparse.Namespace, when: str, ask: tuple[str, ...]) -> Outcomes:
    mood = getattr(args, f"mood_{when}")
    pain = getattr(args, f"pain_{when}")
    phq = getattr(args, f"phq9_{when}")
    return Outcomes(
        mood=mood if "mood" in ask else None,
        pain=pain if "pain" in ask else None,
        phq9_items=parse_phq9(phq) if phq is not None and "phq9" in ask else None,
    )


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
    if not result.changes:
        lines.append(
            "outcomes:            not entered (pass --mood-before/--mood-after, --pain-..., --phq9-...)"
        )
    lines.append("key events:")
    for t, e in result.events:
        if e.startswith(("state:", "alert:", "ready_for_dosing", "stop:")):
            lines.append(f"  {int(t // 60):3d}:{int(t % 60):02d}  {e}")
    return "\n".join(lines) + "\n"


def _make_frontend(args: argparse.Namespace) -> Frontend | None:
    if getattr(args, "headless", True):
        return None
    from feedback.app import PatientWindow

    return PatientWindow(fullscreen=bool(getattr(args, "fullscreen", False)))  # type: ignore[return-value]


def run_session(args: argparse.Namespace, out: TextIO) -> int:
    """``calmloop session``: source, DSP, controller, feedback and recording, until the end."""
    protocol = load_protocol(args.protocol)
    pid = check_patient_id(args.patient_id)
    before = _outcomes(args, "before", protocol.ask)
    max_speed = args.speed == "max"
    speed = 1.0 if max_speed else float(args.speed)
    replaying = args.source == "replay"
    if args.source not in ("simulated", "replay") and (max_speed or speed != 1.0):
        raise ConfigError(
            f"Invalid value for '--speed': a live device runs in real time, got {args.speed!r} with "
            f"--source {args.source}. Use --speed only with --source simulated or replay."
        )
    if getattr(args, "lsl", False) or args.source == "lsl":
        from sensors.lsl_scope import apply_lsl_scope

        apply_lsl_scope(getattr(args, "lsl_scope", "machine"))
    clock: ManualClock | MonotonicClock | ScaledClock
    if max_speed:
        clock = ManualClock()
    elif args.source in ("simulated", "replay"):
        clock = ScaledClock(speed)
    else:
        clock = MonotonicClock()
    source = make_source(argparse.Namespace(**{**vars(args), "speed": 1.0}), clock)
    label = args.source + (f" ({args.profile})" if args.source == "simulated" else "")
    out.write(f"calmloop session: protocol {protocol.name!r}, source {label}, speed {args.speed}, patient {pid}\n")

    from feedback.recorder import SessionRecorder

    config = {
        "protocol": protocol.to_dict(),
        "source": args.source,
        "profile": args.profile if args.source == "simulated" else None,
        "seed": args.seed if args.source == "simulated" else None,
        "speed": args.speed,
        "files": [str(f) for f in getattr(args, "files", [])],
        "lsl": bool(getattr(args, "lsl", False)),
    }
    recorder = SessionRecorder.create(args.out, source.streams, patient_id=pid, config=config)
    sinks: list[Sink] = [recorder]
    outlets = None
    if getattr(args, "lsl", False):
        from feedback.lsl_outlet import LslOutlets

        outlets = LslOutlets(source.streams, clock=clock, source_id_prefix=f"calmloop-{args.source}")
        sinks.append(outlets)
    try:
        controller, engine, log, end_reason = run_closed_loop(
            source, protocol, clock, max_speed=max_speed, status_out=out, sinks=sinks,
            frontend=_make_frontend(args),
            screenshots=Path(args.screenshots) if getattr(args, "screenshots", None) else None,
        )
    finally:
        if outlets is not None:
            outlets.close()
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
    for c in result.changes:
        recorder.outcome(c.measure, c.before, c.after)
    recorder.write_sidecar({
        "patient_id": pid,
        "end_reason": end_reason,
        "events": [{"time_s": t, "event": e} for t, e in log.events],
        "outcomes": {
            "before": before.to_dict(),
            "after": after.to_dict(),
            "changes": [
                {"measure": c.measure, "before": c.before, "after": c.after, "change": c.change,
                 "percent_change": c.percent_change}
                for c in result.changes
            ],
        },
    })
    recorder.close(result.summary, end_reason=end_reason)
    out.write(format_summary(result))
    out.write(f"session folder: {recorder.folder}\n")
    return 0


def run_demo(args: argparse.Namespace, out: TextIO) -> int:
    """``calmloop demo``: a whole session on the simulated patient, about a minute long."""
    parser_defaults = {
        "source": "simulated", "files": [], "mac": None, "serial": None, "ppg_preset": "p50",
        "connect_timeout": 15.0, "seed": 0, "verbose_device": False, "protocol": None,
        "patient_id": "demo", "headless": not has_display(),
        **{f"{m}_{w}": None for m in ("mood", "pain", "phq9") for w in ("before", "after")},
    }
    ns = argparse.Namespace(**{**parser_defaults, **vars(args)})
    return run_session(ns, out)


def has_display() -> bool:
    """Whether a window can be opened (an X11/Wayland display, or not Linux)."""
    import sys

    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
