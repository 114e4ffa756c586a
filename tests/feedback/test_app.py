"""PatientWindow under SDL's dummy drivers: sink, keys, pacer, screenshots, and a closed-loop run."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pygame
import pytest

from adaptive.controller import PacingController, PacingDecision, PacingState
from adaptive.pipeline import DspPipeline
from adaptive.session import SessionEngine, TickResult, session_tick
from adaptive.types import Estimate, Metric
from feedback.app import Command, PatientWindow
from feedback.scene import PALETTES
from sensors.simulated import SimulatedPatient

FPS = 60.0
SIZE = (320, 200)


@pytest.fixture
def window() -> Iterator[PatientWindow]:
    w = PatientWindow(SIZE, sound="none")
    yield w
    w.close()


def decision(t: float, state: PacingState = PacingState.SLOWING, pace: float = 6.0, *,
             events: tuple[str, ...] = (), ready: bool = False) -> PacingDecision:
    return PacingDecision(t, state, pace, 0.4, ready, "test", events, pacer_visible=math.isfinite(pace),
                          following=0.8)


def feed(w: PatientWindow, d: PacingDecision, **values: float) -> None:
    est = tuple(Estimate(Metric(m), v, 0.9, d.time) for m, v in values.items())
    w.write(TickResult(estimates=est, decisions=(d,)))


def key(k: int) -> None:
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=k, mod=0, unicode="", scancode=0))


def test_sink_keeps_the_newest_decision_and_estimates(window: PatientWindow) -> None:
    feed(window, decision(10.0), hr_bpm=70.0)
    window.write(TickResult(estimates=(Estimate(Metric.HR_BPM, 99.0, 0.9, 5.0),)))  # older: ignored
    feed(window, decision(10.5, PacingState.ALERT, events=("alert:hr_high 134 bpm",)), hr_bpm=72.0)
    assert window.latest[Metric.HR_BPM].value == 72.0
    assert window.decision is not None and window.decision.state is PacingState.ALERT
    window.set_overlay(True)
    window.frame(10.5)
    assert window.scene is not None and window.scene.alert
    assert window.scene.overlay_alerts == ("0:10  hr_high 134 bpm",)
    assert window.scene.progress.label == "Slowing down"  # last stage kept during the alert


def test_frame_follows_the_pace_and_hides_during_calibration(window: PatientWindow) -> None:
    feed(window, decision(0.0, PacingState.CALIBRATING, math.nan))
    assert window.frame(0.0) == []
    assert window.breath is not None and not window.breath.visible
    assert window.scene is not None and window.scene.caption == "Settling in"
    feed(window, decision(90.0, PacingState.MATCHING, 6.0))
    for i in range(601):  # 60 s at 10 frames/s: the phase integrates any frame rate exactly
        window.frame(90.0 + i / 10)
    assert window.breath.visible and window.breath.cycles == pytest.approx(6.0, abs=1e-9)


def test_pause_mute_overlay_keys(window: PatientWindow) -> None:
    feed(window, decision(1.0))
    window.frame(1.0)
    key(pygame.K_p)
    assert window.frame(2.0) == [Command.PAUSE] and window.paused
    held = window.breath.cycles
    assert window.frame(5.0) == [] and window.breath.cycles == held  # paused: the guide holds
    assert window.scene.caption == "Paused"
    key(pygame.K_SPACE)
    assert window.frame(6.0) == [Command.RESUME]
    key(pygame.K_m)
    key(pygame.K_m)
    assert window.frame(6.1) == [Command.MUTE, Command.UNMUTE]
    key(pygame.K_TAB)
    assert window.frame(6.2) == [Command.OVERLAY] and window.overlay_visible and window.scene.overlay_rows
    key(pygame.K_o)
    window.frame(6.3)
    assert not window.overlay_visible
    vol = window.audio.volume
    key(pygame.K_MINUS)
    window.frame(6.4)
    assert window.audio.volume == pytest.approx(vol - 0.1)


@pytest.mark.parametrize("first", [pygame.K_ESCAPE, pygame.K_s])
def test_stop_needs_confirmation(window: PatientWindow, first: int) -> None:
    feed(window, decision(1.0))
    key(first)
    assert window.frame(1.0) == []
    assert window.scene.dialog == "End the session?"
    key(pygame.K_n)
    assert window.frame(1.1) == [] and window.scene.dialog == ""
    key(first)
    key(pygame.K_p)  # other keys do nothing while the question is open
    key(pygame.K_y)
    assert window.frame(1.2) == [Command.STOP]
    assert window.scene.caption == "Session ended" and not window.breath.visible
    key(pygame.K_ESCAPE)
    assert window.frame(1.3) == [] and window.scene.dialog == ""  # nothing left to stop


def test_closing_the_window_asks_too(window: PatientWindow) -> None:
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    assert window.frame(0.0) == []
    assert window.scene.dialog == "End the session?"
    key(pygame.K_ESCAPE)
    window.frame(0.1)
    assert window.scene.dialog == ""


def test_fullscreen_toggle_and_screenshot(window: PatientWindow, tmp_path: Path) -> None:
    feed(window, decision(1.0, PacingState.READY_FOR_DOSING, ready=True))
    window.set_overlay(True)
    window.frame(1.0)
    path = window.screenshot(tmp_path / "shots" / "ready.png")
    img = pygame.image.load(str(path))
    assert img.get_size() == SIZE
    ready = PALETTES["calm"].ready
    assert any(img.get_at((x, y))[:3] == ready for x in range(0, 130, 2) for y in range(20, 70, 2))
    key(pygame.K_F11)
    assert window.frame(1.1) == [Command.FULLSCREEN]
    key(pygame.K_f)
    assert window.frame(1.2) == [Command.FULLSCREEN]
    assert window.surface.get_size() == SIZE


def test_state_changes_ring_chimes_and_readiness_is_remembered() -> None:
    w = PatientWindow(SIZE, sound="tone", chimes="state")
    try:
        feed(w, decision(100.0, PacingState.CALM))
        feed(w, decision(160.0, PacingState.READY_FOR_DOSING, ready=True, events=("ready_for_dosing",)))
        assert w.audio.synth._pending == ["ready"]
        w.set_overlay(True)
        w.frame(160.0)
        assert any(r.label == "Ready at" and r.value == "2:40" for r in w.scene.overlay_rows)
    finally:
        w.close()


def test_window_rejects_bad_options_and_use_after_close() -> None:
    with pytest.raises(ValueError, match="'size'"):
        PatientWindow((10, 10))
    with pytest.raises(ValueError, match="'sound'"):
        PatientWindow(SIZE, sound="drums")
    with pytest.raises(ValueError, match="'palette'"):
        PatientWindow(SIZE, palette="neon")
    w = PatientWindow(SIZE, sound="none", palette="colorblind", low_motion=True)
    w.frame(0.0)
    w.close()
    w.close()
    with pytest.raises(RuntimeError, match="after close"):
        w.frame(1.0)


def test_closed_loop_with_the_simulated_patient() -> None:
    """The window is a Sink of session_tick: a few simulated seconds end to end."""
    src = SimulatedPatient("compliant", seed=0)
    src.start()
    engine = SessionEngine(DspPipeline(src.streams), PacingController())
    with PatientWindow(SIZE, sound="none", overlay_visible=True) as w:
        for i in range(1, int(6 * FPS)):
            now = i / FPS
            session_tick(src, engine, [w], now)
            w.frame(now)
        assert w.decision is not None and w.decision.state is PacingState.CALIBRATING
        assert w.scene.caption == "Settling in" and w.scene.overlay_rows[0].value == "0:05"
    src.stop()
