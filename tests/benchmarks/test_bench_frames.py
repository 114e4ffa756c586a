"""Patient-window frame benchmark: the module runs, reports, and the screenshot script works.

Not a timed test (speed is never asserted here).  For the figures run
``python -m experiments.bench.frames --duration 120 --profile 30`` (SDL dummy video) or under
``xvfb-run -s "-screen 0 1280x800x24"`` for a real X display; ``--screenshots docs/img``
regenerates the documentation screenshots.  With ``--benchmark-enable`` the draw benchmark
below times one frame of the patient window.
"""

from __future__ import annotations

import math
from pathlib import Path

import pygame

from adaptive.controller import PacingState
from adaptive.session import TickResult
from experiments.bench.frames import run, save_screenshots, synthetic_session, to_markdown
from feedback.app import PatientWindow


def test_run_reports_frame_time_statistics() -> None:
    result = run(duration_s=1.5, sound="none", size=(320, 200))
    assert result["n_frames"] == 90
    for key in ("total", "tick", "frame"):
        s = result[key]
        assert 0 < s["median"] <= s["p99"] <= s["max"]
    assert result["video_driver"] == "dummy"
    md = to_markdown(result)
    assert "| full frame |" in md and "p99" in md and "States first seen" in md


def test_synthetic_session_walks_to_readiness() -> None:
    states = [synthetic_session(t)[0].state for t in range(0, 700, 5)]
    order = [PacingState.CALIBRATING, PacingState.MATCHING, PacingState.SLOWING, PacingState.RESONANCE,
             PacingState.CALM, PacingState.READY_FOR_DOSING]
    seen = list(dict.fromkeys(states))
    assert seen == order
    d, est = synthetic_session(45.0)
    assert not d.pacer_visible and math.isnan(d.pace_brpm) and len(est) == 8
    ready, _ = synthetic_session(620.0)
    assert ready.dose_ready and "ready_for_dosing" in ready.events


def test_screenshots_are_written(tmp_path: Path) -> None:
    paths = save_screenshots(tmp_path, size=(320, 200))
    names = sorted(p.name for p in paths)
    expected = ["calibrating.png", "clinician_overlay.png", "patient_view.png", "patient_view_exhale.png"]
    assert names == expected
    for p in paths:
        assert pygame.image.load(str(p)).get_size() == (320, 200)


def test_bench_frame_draw(benchmark) -> None:  # type: ignore[no-untyped-def]
    with PatientWindow((1024, 640), sound="none", overlay_visible=True) as w:
        d, est = synthetic_session(300.0)
        w.write(TickResult(estimates=tuple(est), decisions=(d,)))
        clock = iter(300.0 + i / 60 for i in range(10**7))
        w.frame(next(clock))
        benchmark(lambda: w.frame(next(clock)))
        assert w.scene is not None and w.scene.caption in ("Breathe in", "Breathe out")
