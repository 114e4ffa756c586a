"""Pure view model: pacer phase integration, breath shape, colours, captions, overlay rows."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adaptive.controller import PacingDecision, PacingState
from adaptive.types import Estimate, Metric
from feedback.scene import (
    LOW_MOTION_RADIUS_RANGE,
    PALETTES,
    RADIUS_RANGE,
    REST_RADIUS,
    STAGES,
    BreathPacer,
    SceneOptions,
    ViewStatus,
    advance_phase,
    arousal_warmth,
    breath_level,
    breath_phase,
    calm_progress,
    compose_scene,
    ease_in_out,
    format_clock,
    mix_rgb,
    overlay_rows,
    shape_rgb,
    smooth_toward,
)

FPS = 60.0


def decision(
    state: PacingState = PacingState.SLOWING, pace: float = 6.0, *, frac: float = 0.4, t: float = 100.0,
    ready: bool = False, reason: str = "descending", following: float = 0.8, events: tuple[str, ...] = (),
) -> PacingDecision:
    return PacingDecision(
        time=t, state=state, pace_brpm=pace, inhale_fraction=frac, dose_ready=ready, reason=reason,
        events=events, pacer_visible=math.isfinite(pace), following=following,
    )


def estimates(t: float = 100.0, arousal: float = 0.0, quality: float = 0.9) -> dict[Metric, Estimate]:
    values = {
        Metric.RESP_RATE_BRPM: 6.4, Metric.HR_BPM: 72.0, Metric.AROUSAL: arousal, Metric.EEG_RELAXATION: 0.63,
        Metric.QUALITY_PPG: 0.92, Metric.QUALITY_EEG: 0.6, Metric.QUALITY_ACCEL: 0.3,
    }
    return {m: Estimate(m, v, quality, t - 0.5) for m, v in values.items()}


def run_pacer(pacer: BreathPacer, t0: float, t1: float, pace: float, frac: float = 0.4):
    """Advance at 60 fps from t0 (exclusive) to t1; return the infos."""
    n = int(round((t1 - t0) * FPS))
    return [pacer.advance(t0 + (i + 1) / FPS, pace, frac) for i in range(n)]


# ----------------------------------------------------------------------------------------------- breath
def test_breath_phase_and_level_shape() -> None:
    assert breath_phase(0.0, 0.4) == (True, 0.0)
    inhaling, progress = breath_phase(0.2, 0.4)
    assert inhaling and progress == pytest.approx(0.5)
    inhaling, progress = breath_phase(0.7, 0.4)
    assert not inhaling and progress == pytest.approx(0.5)
    assert breath_phase(1.2, 0.4) == (True, pytest.approx(0.5))  # only the fractional part counts
    assert breath_level(0.0, 0.4) == pytest.approx(0.0)
    assert breath_level(0.4, 0.4) == pytest.approx(1.0)
    assert breath_level(0.2, 0.4) == pytest.approx(0.5)  # half-way through the inhale
    assert breath_level(0.7, 0.4) == pytest.approx(0.5)  # half-way through the exhale
    ph = np.linspace(0, 1, 2001)
    lv = breath_level(ph, 0.4)
    assert np.all(np.diff(lv[ph <= 0.4]) >= 0) and np.all(np.diff(lv[ph >= 0.4]) <= 0)
    # continuous, with gentle turns: the largest step on a 1/2000-cycle grid is the eased peak slope
    assert np.max(np.abs(np.diff(lv))) < np.pi / 2 / 0.4 / 2000 * 1.01
    assert ease_in_out(-1) == 0.0 and ease_in_out(2) == 1.0


def test_pacer_period_and_inhale_fraction_follow_the_pace() -> None:
    pacer = BreathPacer()
    pacer.advance(0.0, 6.0, 0.4)
    infos = run_pacer(pacer, 0.0, 60.0, 6.0)
    assert pacer.cycles == pytest.approx(6.0, abs=1e-9)  # 6 breaths in 60 s at 6/min
    inhales = [i.time for i in infos if i.changed == "inhale"]
    exhales = [i.time for i in infos if i.changed == "exhale"]
    # breath turns land on the first frame at or after the exact time: within one frame
    assert np.allclose(np.diff(inhales), 10.0, atol=1 / FPS + 1e-9)
    assert np.allclose(np.array(exhales[: len(inhales)]) - np.array([0.0] + inhales[: len(exhales) - 1]), 4.0,
                       atol=1 / FPS + 1e-9)  # inhale = 0.4 x 10 s


def test_pace_change_bends_the_breath_without_a_jump() -> None:
    pacer = BreathPacer()
    pacer.advance(0.0, 6.0, 0.4)
    before = run_pacer(pacer, 0.0, 13.0, 6.0)
    after = run_pacer(pacer, 13.0, 20.0, 10.0)
    cyc = np.array([i.cycles for i in before + after])
    steps = np.diff(cyc)
    # phase increments are pace/60*dt, before and after the change: no jump at 13 s
    assert np.allclose(steps[: len(before) - 1], 6.0 / 60 / FPS)
    assert np.allclose(steps[len(before) - 1 :], 10.0 / 60 / FPS)
    levels = np.array([i.level for i in before + after])
    max_slope = np.pi / 2 / 0.4 * 10.0 / 60  # eased inhale peak slope at 10/min, per second
    assert np.max(np.abs(np.diff(levels))) <= max_slope / FPS * 1.01
    # the rejected formula t * pace / 60 would have jumped by 13 s * 4/60 = 0.87 cycle
    assert abs((13.0 * 10.0 / 60) % 1 - cyc[len(before) - 1] % 1) > 0.1


@given(st.lists(st.floats(min_value=1e-3, max_value=2.0), min_size=1, max_size=40),
       st.floats(min_value=3.0, max_value=20.0))
def test_phase_is_independent_of_the_frame_times(dts: list[float], pace: float) -> None:
    pacer = BreathPacer()
    pacer.advance(0.0, pace, 0.4)
    t = 0.0
    for dt in dts:
        t += dt
        info = pacer.advance(t, pace, 0.4)
    assert pacer.cycles == pytest.approx(pace / 60 * t, abs=1e-9)
    assert info.level == pytest.approx(breath_level(pace / 60 * t, 0.4), abs=1e-6)


def test_inhale_fraction_is_latched_at_the_cycle_start() -> None:
    pacer = BreathPacer()
    pacer.advance(0.0, 6.0, 0.4)
    info = pacer.advance(3.0, 6.0, 0.6)  # mid-inhale change: this cycle keeps 0.4
    assert info.inhale_fraction == 0.4 and info.inhaling
    info = pacer.advance(5.0, 6.0, 0.6)
    assert not info.inhaling  # 0.5 cycle > 0.4: exhaling although 0.6 would still say inhale
    info = pacer.advance(10.5, 6.0, 0.6)  # next cycle: the new ratio applies
    assert info.inhale_fraction == 0.6 and info.inhaling and info.changed == "inhale"


def test_hidden_pacer_rests_and_restarts_with_an_inhale() -> None:
    pacer = BreathPacer()
    info = pacer.advance(0.0, math.nan, 0.4)
    assert not info.visible and info.level == 0.0
    info = pacer.advance(30.0, 6.0, 0.4)
    assert info.visible and info.changed == "inhale" and info.phase == 0.0 and info.level == 0.0
    info = pacer.advance(32.0, 6.0, 0.4)
    assert info.phase == pytest.approx(0.2) and info.seconds_left == pytest.approx(2.0)
    assert not pacer.advance(33.0, math.nan, 0.4).visible
    assert pacer.advance(34.0, 6.0, 0.4).phase == 0.0


def test_pause_holds_and_time_never_goes_back() -> None:
    pacer = BreathPacer()
    pacer.advance(0.0, 6.0, 0.4)
    pacer.advance(1.0, 6.0, 0.4)
    held = pacer.advance(5.0, 6.0, 0.4, running=False)
    assert held.cycles == pytest.approx(0.1)
    assert pacer.advance(4.0, 6.0, 0.4).cycles == pytest.approx(0.1)  # earlier t: no time
    assert pacer.advance(6.0, 6.0, 0.4).cycles == pytest.approx(0.2)  # 1 s after the pause


def test_pacer_rejects_wrong_calls() -> None:
    pacer = BreathPacer()
    with pytest.raises(ValueError, match="'t'"):
        pacer.advance(math.nan, 6.0, 0.4)
    with pytest.raises(ValueError, match="'inhale_fraction'.*got 1.2"):
        pacer.advance(0.0, 6.0, 1.2)
    assert advance_phase(0.5, 10.0, 6.0) == pytest.approx(1.5)


# ----------------------------------------------------------------------------------------------- colour
def test_warmth_mapping_clamps_and_smooths() -> None:
    assert arousal_warmth(0.0) == 0.5
    assert arousal_warmth(1.0) == 1.0 and arousal_warmth(3.0) == 1.0
    assert arousal_warmth(-1.0) == 0.0 and arousal_warmth(-5.0) == 0.0
    assert arousal_warmth(math.nan) == 0.5
    assert smooth_toward(math.nan, 0.7, 0.1, 4.0) == 0.7
    assert smooth_toward(0.0, 1.0, 4.0, 4.0) == pytest.approx(1 - math.exp(-1))
    assert smooth_toward(0.3, math.nan, 1.0, 4.0) == 0.3
    assert mix_rgb((0, 0, 0), (200, 100, 50), 0.5) == (100, 50, 25)


@pytest.mark.parametrize("palette", list(PALETTES))
def test_shape_colour_is_warm_when_aroused_and_cool_when_calm(palette: str) -> None:
    pal = PALETTES[palette]
    warm, cool = shape_rgb(pal, 1.0), shape_rgb(pal, 0.0)
    assert warm[0] > warm[2] and cool[2] > cool[0]
    d = decision()
    hot = compose_scene(d, estimates(arousal=1.0), 100.0, SceneOptions(palette=palette))
    calm = compose_scene(d, estimates(arousal=-1.0), 100.0, SceneOptions(palette=palette))
    assert hot.shape_color[0] > hot.shape_color[2]
    assert calm.shape_color[2] > calm.shape_color[0]
    assert calm.background_bottom[2] > hot.background_bottom[2]
    beyond = compose_scene(d, estimates(arousal=4.0), 100.0, SceneOptions(palette=palette))
    assert beyond.shape_color == hot.shape_color  # clamped


# ----------------------------------------------------------------------------------------------- scene
def _breath_at(phase: float, pace: float = 6.0, frac: float = 0.4):
    pacer = BreathPacer()
    pacer.advance(0.0, pace, frac)
    return pacer.advance(phase * 60.0 / pace, pace, frac)


def test_shape_size_follows_the_breath() -> None:
    d = decision()
    full = compose_scene(d, {}, 100.0, breath=_breath_at(0.4 - 1e-9))
    empty = compose_scene(d, {}, 100.0, breath=_breath_at(0.999))
    assert full.shape_radius == pytest.approx(RADIUS_RANGE[1], abs=1e-6)
    assert empty.shape_radius == pytest.approx(RADIUS_RANGE[0], abs=1e-3)
    assert full.caption == "Breathe in" and empty.caption == "Breathe out"
    assert full.guide_radii == (RADIUS_RANGE[1],)
    low = SceneOptions(low_motion=True)
    lf = compose_scene(d, {}, 100.0, low, breath=_breath_at(0.4 - 1e-9))
    le = compose_scene(d, {}, 100.0, low, breath=_breath_at(0.999))
    assert lf.shape_radius - le.shape_radius < (full.shape_radius - empty.shape_radius) / 2
    assert lf.shape_radius == pytest.approx(LOW_MOTION_RADIUS_RANGE[1], abs=1e-6)
    assert lf.ambient == () and len(full.ambient) > 0  # no background motion in low-motion mode


def test_calibration_hides_the_pacer() -> None:
    d = decision(PacingState.CALIBRATING, math.nan, reason="calibrating: 30 of 90 s")
    pacer = BreathPacer()
    scene = compose_scene(d, {}, 30.0, breath=pacer.advance(30.0, d.pace_brpm, 0.4))
    assert scene.caption == "Settling in" and scene.subcaption == "Breathe naturally"
    assert scene.shape_radius == REST_RADIUS and scene.guide_radii == ()
    assert scene.progress.index == 0 and scene.progress.label == STAGES[0][1]
    # no decision yet: the same calm scene
    assert compose_scene(None, {}, 0.0).caption == "Settling in"


def test_ambient_light_moves_slowly() -> None:
    a = compose_scene(decision(), {}, 100.0).ambient
    b = compose_scene(decision(), {}, 100.0 + 1 / FPS).ambient
    assert a != b
    assert max(abs(p.x - q.x) for p, q in zip(a, b)) < 1e-3  # under 1 px per frame at 1024 px


def test_progress_stages_and_slowing_progress() -> None:
    assert calm_progress(PacingState.SLOWING, 8.0, 10.0, 6.0) == (2, pytest.approx(0.5))
    assert calm_progress(PacingState.READY_FOR_DOSING, 6.0, 10.0, 6.0) == (5, 0.0)
    assert calm_progress(PacingState.ALERT, 6.0, 10.0, 6.0)[0] == -1
    scene = compose_scene(decision(PacingState.SLOWING, 8.0), {}, 100.0,
                          status=ViewStatus(start_pace_brpm=10.0))
    assert scene.progress.label == "Slowing down" and scene.progress.fraction == pytest.approx(2.5 / 5)
    # signal loss keeps the last stage on screen
    lost = compose_scene(decision(PacingState.SIGNAL_LOST, 6.0), {}, 100.0,
                         status=ViewStatus(last_stage=PacingState.RESONANCE))
    assert lost.progress.label == "Steady rhythm"


def test_pause_stop_and_dialog_captions() -> None:
    b = _breath_at(0.2)
    assert compose_scene(decision(), {}, 1.0, breath=b, status=ViewStatus(paused=True)).caption == "Paused"
    ended = compose_scene(decision(PacingState.STOPPED, 6.0), {}, 1.0, breath=b)
    assert ended.caption == "Session ended" and ended.guide_radii == ()
    dialog = compose_scene(decision(), {}, 1.0, breath=b, status=ViewStatus(confirm_stop=True))
    assert dialog.dialog == "End the session?" and "Y" in dialog.dialog_hint


# ----------------------------------------------------------------------------------------------- overlay
def test_overlay_rows_show_formatted_figures() -> None:
    rows = overlay_rows(decision(PacingState.SLOWING, 6.4), estimates(t=125.0, arousal=-0.42), 125.0)
    by = {r.label: r for r in rows}
    assert by["Elapsed"].value == "2:05"
    assert by["State"].value == "slowing"
    assert by["Pace"].value == "6.4 /min" and by["Pace"].detail == "inhale 40 %"
    assert by["Breathing"].value == "6.4 /min" and by["Breathing"].detail == "q 0.90"
    assert by["Heart rate"].value == "72 bpm"
    assert by["Arousal"].value == "-0.42"
    assert by["EEG relax"].value == "0.63"
    assert by["Following"].value == "0.80"
    assert (by["Signal PPG"].detail, by["Signal PPG"].level) == ("good", "ok")
    assert (by["Signal EEG"].detail, by["Signal EEG"].level) == ("fair", "warn")
    assert (by["Signal motion"].value, by["Signal motion"].level) == ("0.30", "bad")


def test_overlay_flags_missing_and_stale_estimates() -> None:
    rows = {r.label: r for r in overlay_rows(decision(), estimates(t=100.0), 110.0)}
    assert rows["Heart rate"].detail == "stale 10 s" and rows["Heart rate"].level == "warn"
    empty = {r.label: r for r in overlay_rows(None, {}, 5.0)}
    assert empty["Heart rate"].value == "-" and empty["Signal PPG"].detail == "no signal"
    assert empty["State"].value == "starting"
    hidden = {r.label: r for r in overlay_rows(decision(PacingState.CALIBRATING, math.nan), {}, 5.0)}
    assert hidden["Pace"].value == "hidden"


def test_ready_and_alert_cues() -> None:
    ready = decision(PacingState.READY_FOR_DOSING, 6.0, ready=True, reason="ready: calm criteria hold")
    status = ViewStatus(overlay_visible=True, ready_since=640.0)
    shown = compose_scene(ready, estimates(), 700.0, status=status)
    assert shown.ready and shown.overlay_visible and shown.status_marks == ()
    assert any(r.label == "Ready at" and r.value == "10:40" for r in shown.overlay_rows)
    hidden = compose_scene(ready, estimates(), 700.0)
    assert hidden.ready and hidden.status_marks[0][0] == "Ready"
    assert not compose_scene(decision(PacingState.CALM, 6.0), {}, 700.0).ready
    alert = compose_scene(decision(PacingState.ALERT, 6.0, t=700.0, reason="hr_high 134 bpm"), {}, 700.0,
                          status=ViewStatus(overlay_visible=True))
    assert alert.alert and not alert.ready and alert.overlay_alerts == ("11:40  hr_high 134 bpm",)
    hidden_alert = compose_scene(decision(PacingState.ALERT, 6.0), {}, 700.0)
    assert hidden_alert.status_marks[0][0].startswith("Alert")


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="'palette'.*got 'neon'"):
        SceneOptions(palette="neon")
    with pytest.raises(ValueError, match="'target_brpm'"):
        SceneOptions(target_brpm=0.0)
    assert format_clock(3725.0) == "1:02:05" and format_clock(math.nan) == "-"
