"""draw_scene on off-screen surfaces (SDL dummy drivers from conftest): a few pixels, no hashes."""

from __future__ import annotations

import math

import numpy as np
import pygame
import pytest

from adaptive.controller import PacingDecision, PacingState
from adaptive.types import Estimate, Metric
from feedback.pygame_view import SceneRenderer, draw_scene
from feedback.scene import (
    CENTER,
    PALETTES,
    BreathPacer,
    Scene,
    SceneOptions,
    ViewStatus,
    compose_scene,
)

W, H = 200, 100
U = min(W, H)


@pytest.fixture(scope="module", autouse=True)
def _pygame_font() -> None:
    pygame.font.init()


def decision(state: PacingState = PacingState.SLOWING, *, ready: bool = False) -> PacingDecision:
    reason = "ready: calm criteria hold" if ready else "descending"
    return PacingDecision(100.0, state, 6.0, 0.4, ready, reason, following=0.8)


def latest(arousal: float = 0.0) -> dict[Metric, Estimate]:
    values = {Metric.AROUSAL: arousal, Metric.HR_BPM: 72.0, Metric.RESP_RATE_BRPM: 6.2,
              Metric.QUALITY_PPG: 0.9, Metric.QUALITY_EEG: 0.8, Metric.QUALITY_ACCEL: 0.95}
    return {m: Estimate(m, v, 0.9, 99.5) for m, v in values.items()}


def breath_at(phase: float):
    pacer = BreathPacer()
    pacer.advance(0.0, 6.0, 0.4)
    return pacer.advance(phase * 10.0, 6.0, 0.4)


def render(scene: Scene, size: tuple[int, int] = (W, H)) -> pygame.Surface:
    surface = pygame.Surface(size)
    draw_scene(surface, scene, SceneRenderer())
    return surface


def brightness(surface: pygame.Surface, x: float, y: float) -> int:
    c = surface.get_at((int(round(x)), int(round(y))))
    return c.r + c.g + c.b


def test_shape_pixel_at_a_radius_follows_the_breath() -> None:
    d = decision()
    full = compose_scene(d, latest(), 100.0, SceneOptions(low_motion=True), breath=breath_at(0.399))
    empty = compose_scene(d, latest(), 100.0, SceneOptions(low_motion=True), breath=breath_at(0.999))
    assert full.shape_radius > empty.shape_radius
    cx, cy = CENTER[0] * W, CENTER[1] * H
    probe = (full.shape_radius + empty.shape_radius) / 2 * U  # between the two edges
    body = sum(full.shape_color) * 0.78  # the body is drawn at 78 % of the shape colour
    sf, se = render(full), render(empty)
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        x, y = cx + dx * probe, cy + dy * probe
        assert brightness(sf, x, y) > 0.8 * body  # inside the shape at full lungs
        assert brightness(se, x, y) < 0.5 * body  # only background and faint glow when empty
    # the centre is the shape in both
    assert brightness(se, cx, cy) > 0.8 * sum(empty.shape_color) * 0.78


@pytest.mark.parametrize("palette", list(PALETTES))
def test_shape_colour_follows_arousal(palette: str) -> None:
    opts = SceneOptions(palette=palette, low_motion=True)
    cx, cy = CENTER[0] * W, CENTER[1] * H
    centre = (int(cx), int(cy))
    warm = render(compose_scene(decision(), latest(+1.0), 100.0, opts, breath=breath_at(0.3))).get_at(centre)
    cool = render(compose_scene(decision(), latest(-1.0), 100.0, opts, breath=breath_at(0.3))).get_at(centre)
    assert warm.r > warm.b + 40
    assert cool.b > cool.r + 40


def _region(surface: pygame.Surface, rect: pygame.Rect) -> np.ndarray:
    return pygame.surfarray.array3d(surface)[rect.left : rect.right, rect.top : rect.bottom].astype(int)


def test_overlay_draws_a_panel_with_text() -> None:
    size = (640, 400)
    st = dict(overlay_visible=True)
    on = compose_scene(decision(), latest(), 100.0, SceneOptions(low_motion=True), breath=breath_at(0.2),
                       status=ViewStatus(**st))
    off = compose_scene(decision(), latest(), 100.0, SceneOptions(low_motion=True), breath=breath_at(0.2))
    panel = pygame.Rect(20, 20, 200, 360)
    a, b = _region(render(on, size), panel), _region(render(off, size), panel)
    assert np.mean(np.abs(a - b)) > 1.0  # the panel changes the region
    bright = (a.sum(axis=2) > 300).sum()  # light text on the dark panel
    assert bright > 500
    assert not (b.sum(axis=2) > 300).any()  # nothing bright there without the overlay
    # the shape moves right to make room
    assert on.center[0] > off.center[0]


def _count_color(surface: pygame.Surface, color: tuple[int, int, int]) -> int:
    arr = pygame.surfarray.array3d(surface).astype(int)
    return int(np.all(np.abs(arr - np.array(color)) <= 2, axis=2).sum())


@pytest.mark.parametrize("overlay", [True, False])
def test_ready_cue_appears_only_when_ready(overlay: bool) -> None:
    size = (640, 400)
    pal = PALETTES["calm"]
    st = ViewStatus(overlay_visible=overlay)
    ready = compose_scene(decision(PacingState.READY_FOR_DOSING, ready=True), latest(-0.8), 700.0,
                          SceneOptions(low_motion=True), breath=breath_at(0.2), status=st)
    calm = compose_scene(decision(PacingState.CALM), latest(-0.8), 700.0, SceneOptions(low_motion=True),
                         breath=breath_at(0.2), status=st)
    n_ready = _count_color(render(ready, size), pal.ready)
    n_calm = _count_color(render(calm, size), pal.ready)
    assert n_calm == 0
    # banner (overlay) or pill (hidden overlay) in the ready colour
    assert n_ready > (5000 if overlay else 400)


def test_caption_is_text_not_a_box_on_repeated_frames() -> None:
    """A caption faded in with surface alpha must keep its per-pixel alpha on later frames."""
    renderer = SceneRenderer()
    surface = pygame.Surface((400, 250))
    scene = compose_scene(decision(), latest(), 100.0, SceneOptions(low_motion=True), breath=breath_at(0.01))
    assert scene.caption_alpha < 1.0
    full = compose_scene(decision(), latest(), 100.0, SceneOptions(low_motion=True), breath=breath_at(0.3))
    for s in (scene, full, full):
        draw_scene(surface, s, renderer)
    band = _region(surface, pygame.Rect(100, 190, 200, 40)).sum(axis=2)
    bright = band > 500
    assert bright.sum() > 50  # text strokes
    xs, ys = np.nonzero(bright)
    box = bright[xs.min() : xs.max() + 1, ys.min() : ys.max() + 1]
    assert box.mean() < 0.6  # strokes with dark gaps inside the text's bounding box, not a filled box


def test_progress_dialog_and_marks_draw() -> None:
    size = (640, 400)
    dialog = compose_scene(decision(), latest(), 100.0, breath=breath_at(0.2),
                           status=ViewStatus(confirm_stop=True, muted=True))
    surface = render(dialog, size)
    centre = _region(surface, pygame.Rect(220, 170, 200, 60))
    assert (centre.sum(axis=2) > 500).sum() > 100  # "End the session?" in light text
    top = _region(surface, pygame.Rect(270, 10, 100, 30))
    assert (top.sum(axis=2) > 300).sum() > 10  # progress dots


def test_every_state_draws_at_odd_sizes() -> None:
    renderer = SceneRenderer()
    for size in ((160, 100), (333, 777), (1024, 640)):
        surface = pygame.Surface(size)
        for state in PacingState:
            pace = math.nan if state is PacingState.CALIBRATING else 6.0
            d = PacingDecision(50.0, state, pace, 0.4, state is PacingState.READY_FOR_DOSING, "x" * 300,
                               pacer_visible=math.isfinite(pace))
            pacer = BreathPacer()
            scene = compose_scene(d, latest(), 50.0, breath=pacer.advance(50.0, pace, 0.4),
                                  status=ViewStatus(overlay_visible=True, alerts=("a " * 80,)))
            draw_scene(surface, scene, renderer)
    draw_scene(pygame.Surface((W, H)), compose_scene(None, {}, 0.0))  # default renderer
