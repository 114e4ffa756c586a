"""Frame-time benchmark of the patient window with the whole closed loop running, and screenshots.

Benchmark
---------
A simulated session (``SimulatedPatient`` -> ``DspPipeline`` -> ``PacingController`` through
``session_tick``) drives a :class:`feedback.app.PatientWindow`; simulated time advances 1/60 s
per frame, and the wall time of every full frame (``session_tick`` + ``window.frame``: pacer,
audio top-up, compose, draw, flip) is measured without sleeping.  The clinician overlay is
toggled every 30 s so both views are timed.  Reported: median, p90, p99 and max of the full
frame and of its two halves, over the whole run and after the first 10 s (DSP warm-up), the
CPU time of the frame's thread (``time.thread_time``: what the frame costs, without the waits
for the CPU that a loaded machine adds to wall time),
the share of frames over the 60 fps budget (16.7 ms), and optionally a cProfile pass showing
where the time goes.

Screenshots
-----------
:func:`save_screenshots` opens the window with a synthetic decision stream (a 12-minute session
from calibration to ready for dosing) and saves ``calibrating.png``, ``patient_view.png``
(end of an inhale), ``patient_view_exhale.png`` (end of an exhale) and
``clinician_overlay.png`` (overlay with the READY FOR DOSING cue).

Run ``python -m experiments.bench.frames [--duration 120] [--out report.md]
[--screenshots docs/img] [--profile]``; for a real X display use
``xvfb-run -s "-screen 0 1280x800x24" python -m experiments.bench.frames ...``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import math
import os
import pstats
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["main", "run", "save_screenshots", "synthetic_session", "to_markdown"]

FPS = 60.0
BUDGET_MS = 1000.0 / FPS
TARGET_P99_MS = 20.0
WARMUP_S = 10.0
OVERLAY_TOGGLE_S = 30.0


def _stats(ms: np.ndarray) -> dict[str, float]:
    if ms.size == 0:
        return {k: math.nan for k in ("median", "p90", "p99", "max", "mean")}
    return {
        "median": float(np.median(ms)),
        "p90": float(np.percentile(ms, 90)),
        "p99": float(np.percentile(ms, 99)),
        "max": float(np.max(ms)),
        "mean": float(np.mean(ms)),
    }


def _drivers() -> dict[str, str]:
    import pygame

    return {
        "video_driver": pygame.display.get_driver() if pygame.display.get_init() else "",
        "audio_driver": os.environ.get("SDL_AUDIODRIVER", "(default)"),
        "display": os.environ.get("DISPLAY", ""),
        "pygame": pygame.version.ver,
        "sdl": ".".join(str(v) for v in pygame.get_sdl_version()),
    }


def run(
    duration_s: float = 120.0,
    *,
    profile: str = "compliant",
    seed: int = 0,
    size: tuple[int, int] = (1024, 640),
    sound: str = "tone",
    profile_s: float = 0.0,
) -> dict[str, Any]:
    """Time every frame of a simulated session.

    Parameters
    ----------
    duration_s : float
        Simulated session seconds (frames = ``duration_s * 60``).
    profile : str
        SimulatedPatient profile.
    seed : int
        Seed of the simulated patient.
    size : (int, int)
        Window size.
    sound : {"tone", "noise", "none"}
        Sound of the window (audio synthesis is part of the frame).
    profile_s : float
        If > 0, a second, cProfiled run of this many simulated seconds reports where the
        time goes (profiling slows it, so its times are not the benchmark's).

    Returns
    -------
    result : dict
        Frame-time statistics in ms (``total``, ``tick``, ``frame``; ``*_after_warmup``),
        share of frames over budget, drivers, final state, and ``profile`` rows when asked.
    """
    from adaptive.controller import PacingController
    from adaptive.pipeline import DspPipeline
    from adaptive.session import SessionEngine, session_tick
    from feedback.app import PatientWindow
    from sensors.simulated import SimulatedPatient

    n = int(round(duration_s * FPS))
    src = SimulatedPatient(profile, seed=seed)
    src.start()
    engine = SessionEngine(DspPipeline(src.streams), PacingController())
    window = PatientWindow(size, sound=sound, overlay_visible=False)
    tick_ms = np.empty(n)
    frame_ms = np.empty(n)
    cpu_ms = np.empty(n)
    states: dict[str, float] = {}
    try:
        drivers = _drivers()
        audio_on = window.audio.enabled
        for i in range(n):
            now = (i + 1) / FPS
            if i and i % int(OVERLAY_TOGGLE_S * FPS) == 0:
                window.set_overlay(not window.overlay_visible)
            c0 = time.thread_time()
            t0 = time.perf_counter()
            result = session_tick(src, engine, [window], now)
            t1 = time.perf_counter()
            window.frame(now)
            t2 = time.perf_counter()
            cpu_ms[i] = (time.thread_time() - c0) * 1e3
            tick_ms[i] = (t1 - t0) * 1e3
            frame_ms[i] = (t2 - t1) * 1e3
            d = result.decision
            if d is not None:
                states.setdefault(d.state.value, d.time)
        underruns = window.audio.underruns
    finally:
        window.close()
        src.stop()
    total = tick_ms + frame_ms
    w = int(WARMUP_S * FPS)
    out: dict[str, Any] = {
        "duration_s": duration_s,
        "n_frames": n,
        "size": list(size),
        "sound": sound,
        "audio_enabled": audio_on,
        "audio_underruns": underruns,
        "profile": profile,
        "seed": seed,
        **drivers,
        "cpu_count": os.cpu_count(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else [],
        "total": _stats(total),
        "tick": _stats(tick_ms),
        "frame": _stats(frame_ms),
        "cpu": _stats(cpu_ms),
        "total_after_warmup": _stats(total[w:]),
        "tick_after_warmup": _stats(tick_ms[w:]),
        "frame_after_warmup": _stats(frame_ms[w:]),
        "over_budget_share": float(np.mean(total > BUDGET_MS)),
        "frame_over_budget_share": float(np.mean(frame_ms > BUDGET_MS)),
        "worst_frames": [
            {"time_s": (int(i) + 1) / FPS, "total_ms": float(total[i]), "tick_ms": float(tick_ms[i]),
             "frame_ms": float(frame_ms[i])}
            for i in np.argsort(total)[::-1][:5]
        ],
        "states_first_seen_s": states,
        "target_p99_ms": TARGET_P99_MS,
        "meets_target": bool(np.percentile(total, 99) <= TARGET_P99_MS),
    }
    if profile_s > 0:
        out["profile_rows"] = _profile(profile_s, profile=profile, seed=seed, size=size, sound=sound)
    return out


def _profile(
    duration_s: float, *, profile: str, seed: int, size: tuple[int, int], sound: str
) -> list[dict[str, Any]]:
    """cProfile a shorter run; return the top functions by own time and the main entry points."""
    from adaptive.controller import PacingController
    from adaptive.pipeline import DspPipeline
    from adaptive.session import SessionEngine, session_tick
    from feedback.app import PatientWindow
    from sensors.simulated import SimulatedPatient

    src = SimulatedPatient(profile, seed=seed)
    src.start()
    engine = SessionEngine(DspPipeline(src.streams), PacingController())
    window = PatientWindow(size, sound=sound)
    prof = cProfile.Profile()
    try:
        n = int(round(duration_s * FPS))
        prof.enable()
        for i in range(n):
            now = (i + 1) / FPS
            if i and i % int(OVERLAY_TOGGLE_S * FPS) == 0:
                window.set_overlay(not window.overlay_visible)
            session_tick(src, engine, [window], now)
            window.frame(now)
        prof.disable()
    finally:
        window.close()
        src.stop()
    st = pstats.Stats(prof, stream=io.StringIO())
    total = sum(v[2] for v in st.stats.values())  # type: ignore[attr-defined]
    rows: list[dict[str, Any]] = []
    entry = {
        ("simulated.py", "poll"): "source.poll (simulated patient)",
        ("session.py", "process"): "SessionEngine.process (DSP + controller)",
        ("pipeline.py", "update"): "DspPipeline.update",
        ("pipeline.py", "advance"): "DspPipeline.advance",
        ("controller.py", "step"): "PacingController.step",
        ("app.py", "frame"): "PatientWindow.frame (all)",
        ("pygame_view.py", "draw"): "  draw_scene",
        ("audio.py", "update"): "  audio top-up",
        ("scene.py", "compose_scene"): "  compose_scene",
    }
    for (file, _line, func), v in st.stats.items():  # type: ignore[attr-defined]
        name = entry.get((os.path.basename(file), func))
        if name is not None:
            share = v[3] / total if total else math.nan
            rows.append({"kind": "entry", "name": name, "cum_s": v[3], "share": share})
    stats = st.stats.items()  # type: ignore[attr-defined]
    by_own = sorted(stats, key=lambda kv: kv[1][2], reverse=True)[:15]
    for (file, line, func), v in by_own:
        rows.append({
            "kind": "own", "name": f"{os.path.basename(file)}:{line}({func})", "own_s": v[2],
            "share": v[2] / total if total else math.nan, "calls": v[1],
        })
    return rows


def _f(v: float) -> str:
    return "-" if not math.isfinite(v) else f"{v:.2f}"


def to_markdown(result: dict[str, Any]) -> str:
    """The benchmark as a Markdown report."""
    r = result
    lines = [
        "# Patient window frame times (closed loop on the simulated patient)",
        "",
        f"{r['n_frames']} frames = {r['duration_s']:g} s of simulated session at {FPS:g} fps, "
        f"window {r['size'][0]}x{r['size'][1]}, sound {r['sound']} "
        f"(device {'on' if r['audio_enabled'] else 'off'}, "
        f"{r['audio_underruns']} underruns), video driver `{r['video_driver']}`, audio driver "
        f"`{r['audio_driver']}`, pygame-ce {r['pygame']} (SDL {r['sdl']}), {r['cpu_count']} CPUs, "
        f"load average {', '.join(f'{x:.1f}' for x in r['loadavg'])}.",
        "Full frame = `session_tick` (poll + DSP + controller + sinks) + `PatientWindow.frame` "
        "(events, pacer, audio top-up, compose, draw, flip); no sleeping.",
        "",
        "| ms | median | p90 | p99 | max | mean |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, label in (
        ("total", "full frame"), ("tick", "  session_tick"), ("frame", "  window.frame"),
        ("cpu", "full frame, CPU time of the thread"),
        ("total_after_warmup", f"full frame after {WARMUP_S:g} s"),
        ("tick_after_warmup", f"  session_tick after {WARMUP_S:g} s"),
        ("frame_after_warmup", f"  window.frame after {WARMUP_S:g} s"),
    ):
        s = r[key]
        cells = " | ".join(_f(s[k]) for k in ("median", "p90", "p99", "max", "mean"))
        lines.append(f"| {label} | {cells} |")
    lines += [
        "",
        f"Frames over the {BUDGET_MS:.1f} ms budget: {r['over_budget_share'] * 100:.1f} % "
        f"(window.frame alone: {r['frame_over_budget_share'] * 100:.2f} %).  "
        f"Target p99 <= {r['target_p99_ms']:g} ms: **{'met' if r['meets_target'] else 'not met'}**.",
        "",
        "Worst frames: " + "; ".join(
            f"{w['time_s']:.1f} s: {w['total_ms']:.1f} ms "
            f"(tick {w['tick_ms']:.1f}, frame {w['frame_ms']:.1f})"
            for w in r["worst_frames"]
        ),
        "",
        "States first seen (s): " + ", ".join(f"{k} {v:.0f}" for k, v in r["states_first_seen_s"].items()),
    ]
    rows = r.get("profile_rows")
    if rows:
        lines += ["", "## Where the time goes (cProfile pass)", ""]
        lines += ["| entry point | cumulative s | share |", "|---|---:|---:|"]
        for row in sorted((x for x in rows if x["kind"] == "entry"), key=lambda x: -x["cum_s"]):
            lines.append(f"| {row['name']} | {row['cum_s']:.2f} | {row['share'] * 100:.1f} % |")
        lines += ["", "| function (own time) | calls | own s | share |", "|---|---:|---:|---:|"]
        for row in (x for x in rows if x["kind"] == "own"):
            share = f"{row['share'] * 100:.1f} %"
            lines.append(f"| `{row['name']}` | {row['calls']} | {row['own_s']:.2f} | {share} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------- screenshots
def synthetic_session(t: float) -> tuple[Any, list[Any]]:
    """A plausible decision and estimates at session time ``t`` of a 12-minute session.

    Calibration 0-90 s, matching 11.4/min to 150 s, slowing to 6/min by 470 s, resonance to
    560 s, calm to 620 s, then ready for dosing; arousal falls from +0.45 to -0.7.
    """
    from adaptive.controller import PacingDecision, PacingState
    from adaptive.types import Estimate, Metric

    S = PacingState
    if t < 90:
        state, pace, reason = S.CALIBRATING, math.nan, f"calibrating: {t:.0f} of 90 s"
    elif t < 150:
        state, pace, reason = S.MATCHING, 11.4, f"matching 11.40 brpm: {t - 90:.0f} of 60 s"
    elif t < 470:
        pace = 11.4 - (11.4 - 6.0) * (t - 150) / 320
        state, reason = S.SLOWING, "descending toward 6.00 brpm, following 0.78"
    elif t < 560:
        state, pace, reason = S.RESONANCE, 6.0, "holding 6.00 brpm, not calm: arousal -0.38 > -0.50"
    elif t < 620:
        state, pace, reason = S.CALM, 6.0, f"calm for {t - 560:.0f} of 60 s"
    else:
        state, pace, reason = S.READY_FOR_DOSING, 6.0, "ready: calm criteria hold"
    events: tuple[str, ...] = ()
    if 620 <= t < 620.5:
        events = ("state:ready_for_dosing reason:calm for 60 s", "ready_for_dosing")
    if 330 <= t < 330.5:
        events = ("alert:surge arousal +0.82 in 30 s",)
    x = min(max(t / 620.0, 0.0), 1.0)
    arousal = 0.45 - 1.15 * x
    resp = 12.0 if math.isnan(pace) else pace + 0.3
    values = {
        Metric.RESP_RATE_BRPM: resp,
        Metric.HR_BPM: 79.0 - 12.0 * x,
        Metric.AROUSAL: arousal,
        Metric.EEG_RELAXATION: 0.42 + 0.34 * x,
        Metric.BREATH_FOLLOWING: 0.55 + 0.3 * x,
        Metric.QUALITY_PPG: 0.93,
        Metric.QUALITY_EEG: 0.78,
        Metric.QUALITY_ACCEL: 0.97,
    }
    estimates = [Estimate(m, v, 0.9, t - 0.4) for m, v in values.items()]
    decision = PacingDecision(
        time=t, state=state, pace_brpm=pace, inhale_fraction=0.4,
        dose_ready=state is S.READY_FOR_DOSING, reason=reason, events=events,
        pacer_visible=not math.isnan(pace), following=math.nan if math.isnan(pace) else 0.55 + 0.3 * x,
    )
    return decision, estimates


def _optimise_png(path: Path) -> None:
    """Re-save with maximum zlib compression when Pillow is available (keeps every pixel)."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        return
    with Image.open(path) as img:
        img.load()
        img.save(path, optimize=True, compress_level=9)


def save_screenshots(folder: str | os.PathLike[str], size: tuple[int, int] = (960, 600)) -> list[Path]:
    """Open the window on a synthetic session and save the documentation screenshots.

    Returns the paths written: ``calibrating.png``, ``patient_view.png`` (end of an inhale),
    ``patient_view_exhale.png`` (end of an exhale), ``clinician_overlay.png`` (READY cue).
    """
    from adaptive.session import TickResult
    from feedback.app import PatientWindow

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    window = PatientWindow(size, sound="none", show_fps=False)  # fast-forwarded: fps would mislead

    def play(t_from: float, t_to: float, fps: float = FPS) -> float:
        """Feed the decision stream every 0.5 s and draw frames at ``fps`` from ``t_from`` to ``t_to``.

        Fast-forwarding at a low ``fps`` is exact for the pacer: its phase integrates any step.
        """
        t = t_from
        next_tick = math.ceil(t_from * 2) / 2
        while t < t_to:
            t = min(round(t + 1 / fps, 9), t_to)
            while next_tick <= t:
                d, est = synthetic_session(next_tick)
                window.write(TickResult(estimates=tuple(est), decisions=(d,)))
                next_tick += 0.5
            window.frame(t)
        return t

    def until(t: float, want: str) -> float:
        """Fast-forward to just before the end of an inhale / exhale, then draw the last 0.5 s at 60 fps."""
        for _ in range(20):
            b = window.breath
            if b is not None and b.visible:
                if want == "inhale" and b.inhaling and b.progress > 0.93:
                    break
                if want == "exhale" and not b.inhaling and b.progress > 0.9:
                    break
                f = b.inhale_fraction
                goal = 0.96 * f if want == "inhale" else f + 0.94 * (1 - f)
                wait = ((goal - b.phase) % 1.0) * 60.0 / b.pace_brpm
                if wait > 0.6:
                    t = play(t, t + wait - 0.5, fps=1.0)
                t = play(t, t + min(wait, 0.5) + 1e-3)
            else:
                t = play(t, t + 0.5)
        return t

    try:
        t = play(0.0, 42.0, fps=1.0)
        t = play(t, 45.0)
        written.append(window.screenshot(out / "calibrating.png"))
        t = play(t, 295.0, fps=1.0)
        t = play(t, 300.0)
        t = until(t, "inhale")
        written.append(window.screenshot(out / "patient_view.png"))
        t = until(t, "exhale")
        written.append(window.screenshot(out / "patient_view_exhale.png"))
        t = play(t, 638.0, fps=1.0)  # passes the surge alert at 330 s and the ready event at 620 s
        window.set_overlay(True)
        t = play(t, 640.0)
        t = until(t, "inhale")
        written.append(window.screenshot(out / "clinician_overlay.png"))
    finally:
        window.close()
    for p in written:
        _optimise_png(p)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=120.0, help="simulated seconds (default 120)")
    parser.add_argument("--out", type=Path, help="write the Markdown report here")
    parser.add_argument("--screenshots", type=Path,
                        help="save screenshots into this folder and skip the benchmark")
    parser.add_argument("--profile", type=float, default=0.0, metavar="SECONDS",
                        help="add a cProfile pass of this many simulated seconds")
    parser.add_argument("--sound", default="tone", choices=("tone", "noise", "none"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.screenshots is not None:
        for p in save_screenshots(args.screenshots):
            print(f"{p}  {p.stat().st_size / 1024:.0f} KB")
        return 0
    result = run(args.duration, sound=args.sound, profile_s=args.profile)
    report = to_markdown(result)
    if args.out is not None:
        args.out.write_text(report, encoding="utf-8")
    sys.stdout.write(report)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
