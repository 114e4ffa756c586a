"""Pure view model of the patient window: breath pacer, colours, captions and clinician rows.

Nothing here touches pygame, a clock or a device.  The window keeps a :class:`BreathPacer`
(the one place where the pacer phase lives), advances it once per frame with the session
time, and hands its :class:`BreathInfo`, the newest
:class:`~adaptive.controller.PacingDecision` and the newest estimates to
:func:`compose_scene`, which returns a :class:`Scene`: every size, colour and string that
:func:`feedback.pygame_view.draw_scene` draws, as plain data that tests can read.

Phase rule
----------
The pacer phase is *integrated* from the pace, ``phase += pace_brpm / 60 * dt``, never
computed as ``t * pace / 60``: a pace change then bends the breath smoothly instead of
jumping to another point of the cycle.  The inhale fraction is latched at the start of each
cycle, so a new inhale:exhale ratio also takes effect without a jump.

Geometry
--------
Lengths in a :class:`Scene` are fractions of the shorter side of the surface and positions
are fractions of its width and height, so the same scene draws at any window size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import overload

import numpy as np

from adaptive._checks import check_option, check_positive, check_range
from adaptive.controller import PacingDecision, PacingState
from adaptive.types import Estimate, FloatArray, Metric

__all__ = [
    "PALETTES",
    "STAGES",
    "AmbientBlob",
    "BreathInfo",
    "BreathPacer",
    "OverlayRow",
    "Palette",
    "ProgressView",
    "RGB",
    "Scene",
    "SceneOptions",
    "ViewStatus",
    "advance_phase",
    "arousal_warmth",
    "breath_level",
    "breath_phase",
    "calm_progress",
    "compose_scene",
    "ease_in_out",
    "format_clock",
    "mix_rgb",
    "overlay_rows",
    "shape_rgb",
    "smooth_toward",
]

RGB = tuple[int, int, int]

#: Radius of the breathing shape (fraction of the shorter side) at empty and full lungs.
RADIUS_RANGE = (0.12, 0.29)
#: The same in low-motion mode: a quarter of the normal travel.
LOW_MOTION_RADIUS_RANGE = (0.19, 0.235)
#: Radius of the resting shape while the pacer is hidden (calibration, end of session).
REST_RADIUS = 0.2
#: Centre of the shape, as fractions of the width and height.
CENTER = (0.5, 0.45)
#: Centre when the clinician overlay covers the left of the window.
CENTER_WITH_OVERLAY = (0.69, 0.45)
#: Width of the clinician panel, fraction of the window width.
OVERLAY_WIDTH = 0.38

#: Quality at or above which a signal reads "good", and the controller's usable floor.
QUALITY_GOOD = 0.7
QUALITY_USABLE = 0.5

#: (controller state, label shown to the patient), in the order a session moves through them.
STAGES: tuple[tuple[PacingState, str], ...] = (
    (PacingState.CALIBRATING, "Settling in"),
    (PacingState.MATCHING, "Finding your rhythm"),
    (PacingState.SLOWING, "Slowing down"),
    (PacingState.RESONANCE, "Steady rhythm"),
    (PacingState.CALM, "Calm"),
    (PacingState.READY_FOR_DOSING, "Ready"),
)
_STAGE_INDEX = {state: i for i, (state, _) in enumerate(STAGES)}


# ---------------------------------------------------------------------------------------------- colour
@dataclass(frozen=True, slots=True)
class Palette:
    """Colours of one look of the window (all RGB 0..255).

    ``*_cool`` colours are shown at low arousal and ``*_warm`` ones at high arousal; the
    scene mixes them (the shape through ``shape_mid``, so the mix never turns muddy grey:
    a sunset path coral - lavender - teal, or orange - neutral - blue for colour-blind use).
    Status colours are never the only carrier of meaning: every status also has a word
    ("good", "poor", "READY FOR DOSING").
    """

    name: str
    bg_top_cool: RGB
    bg_bottom_cool: RGB
    bg_top_warm: RGB
    bg_bottom_warm: RGB
    shape_cool: RGB
    shape_mid: RGB
    shape_warm: RGB
    text: RGB
    text_dim: RGB
    accent: RGB
    ready: RGB
    ready_text: RGB
    alert: RGB
    ok: RGB
    warn: RGB
    bad: RGB
    panel: RGB


PALETTES: dict[str, Palette] = {
    # Deep night blue, coral when aroused, soft teal when calm.
    "calm": Palette(
        name="calm",
        bg_top_cool=(7, 14, 26),
        bg_bottom_cool=(10, 34, 46),
        bg_top_warm=(22, 12, 22),
        bg_bottom_warm=(46, 24, 28),
        shape_cool=(92, 188, 204),
        shape_mid=(176, 152, 210),
        shape_warm=(238, 148, 106),
        text=(226, 234, 240),
        text_dim=(140, 158, 172),
        accent=(150, 210, 214),
        ready=(74, 222, 128),
        ready_text=(6, 28, 14),
        alert=(250, 176, 60),
        ok=(120, 214, 150),
        warn=(240, 196, 90),
        bad=(244, 112, 96),
        panel=(6, 10, 18),
    ),
    # Colour-blind safe: blue (calm) to orange (aroused) from the Okabe-Ito set; status
    # colours blue / yellow / vermillion, readiness in bluish green with a word.
    "colorblind": Palette(
        name="colorblind",
        bg_top_cool=(6, 14, 30),
        bg_bottom_cool=(8, 30, 56),
        bg_top_warm=(20, 14, 14),
        bg_bottom_warm=(44, 30, 14),
        shape_cool=(86, 160, 233),
        shape_mid=(196, 190, 182),
        shape_warm=(230, 159, 0),
        text=(232, 236, 240),
        text_dim=(150, 160, 172),
        accent=(120, 180, 233),
        ready=(0, 180, 140),
        ready_text=(0, 18, 12),
        alert=(240, 228, 66),
        ok=(86, 180, 233),
        warn=(240, 228, 66),
        bad=(213, 94, 0),
        panel=(4, 8, 16),
    ),
}


def mix_rgb(a: RGB, b: RGB, w: float) -> RGB:
    """Mix two colours: ``a`` at ``w = 0``, ``b`` at ``w = 1`` (``w`` is clamped)."""
    w = min(max(float(w), 0.0), 1.0)
    return (
        int(round(a[0] + (b[0] - a[0]) * w)),
        int(round(a[1] + (b[1] - a[1]) * w)),
        int(round(a[2] + (b[2] - a[2]) * w)),
    )


def shape_rgb(palette: Palette, warmth: float) -> RGB:
    """Colour of the breathing shape at ``warmth`` 0 (cool) .. 1 (warm), through the palette's mid colour."""
    w = min(max(float(warmth), 0.0), 1.0)
    if w < 0.5:
        return mix_rgb(palette.shape_cool, palette.shape_mid, 2.0 * w)
    return mix_rgb(palette.shape_mid, palette.shape_warm, 2.0 * w - 1.0)


def _scale_rgb(c: RGB, k: float) -> RGB:
    return (min(int(round(c[0] * k)), 255), min(int(round(c[1] * k)), 255), min(int(round(c[2] * k)), 255))


def arousal_warmth(arousal: float) -> float:
    """Map arousal (about -1..1, 0 = the patient's baseline) to warmth 0 (cool)..1 (warm).

    Values are clamped; a missing (NaN) arousal gives the neutral 0.5.
    """
    a = float(arousal)
    if not math.isfinite(a):
        return 0.5
    return min(max((a + 1.0) / 2.0, 0.0), 1.0)


def smooth_toward(current: float, target: float, dt_s: float, tau_s: float) -> float:
    """One step of an exponential smoother: move ``current`` toward ``target``.

    ``dt_s`` is the time since the previous step and ``tau_s`` the time constant; a NaN
    ``current`` starts at ``target`` and a NaN ``target`` keeps ``current``.
    """
    if not math.isfinite(target):
        return current
    if not math.isfinite(current) or tau_s <= 0:
        return float(target)
    k = 1.0 - math.exp(-max(dt_s, 0.0) / tau_s)
    return float(current + (target - current) * k)


# ---------------------------------------------------------------------------------------------- breath
def ease_in_out(x: float) -> float:
    """Cosine ease 0..1 with zero slope at both ends (``x`` clamped to 0..1)."""
    x = min(max(float(x), 0.0), 1.0)
    return 0.5 - 0.5 * math.cos(math.pi * x)


def advance_phase(phase: float, dt_s: float, pace_brpm: float) -> float:
    """Integrate the pacer phase (in cycles) over ``dt_s`` seconds at ``pace_brpm``.

    The one rule of the pacer: ``phase + pace_brpm / 60 * dt_s``; the result is not wrapped.
    """
    return float(phase + pace_brpm / 60.0 * dt_s)


def breath_phase(phase: float, inhale_fraction: float) -> tuple[bool, float]:
    """Where in the breath a cycle phase falls.

    Parameters
    ----------
    phase : float
        Position in the cycle in cycles; only the fractional part is used (0 = start of
        the inhale).
    inhale_fraction : float
        Inhale share of the cycle, strictly between 0 and 1.

    Returns
    -------
    inhaling : bool
        True during the inhale.
    progress : float
        0..1 through the current half (inhale or exhale).
    """
    p = float(phase) % 1.0
    f = float(inhale_fraction)
    if p < f:
        return True, p / f
    return False, (p - f) / (1.0 - f)


@overload
def breath_level(phase: float, inhale_fraction: float) -> float: ...
@overload
def breath_level(phase: FloatArray, inhale_fraction: float | FloatArray) -> FloatArray: ...
def breath_level(phase: float | FloatArray, inhale_fraction: float | FloatArray) -> float | FloatArray:
    """Eased lung volume 0 (empty) .. 1 (full) at a cycle phase.

    Rises with :func:`ease_in_out` over the inhale and falls over the exhale, so the level
    and the speed of the shape are continuous, with gentle turns at full and empty.

    Parameters
    ----------
    phase : float or array of shape (n,)
        Cycle phase in cycles (fractional part used).
    inhale_fraction : float or array of shape (n,)
        Inhale share of the cycle, strictly between 0 and 1.

    Returns
    -------
    level : float or array of shape (n,)
    """
    p = np.mod(np.asarray(phase, dtype=np.float64), 1.0)
    f = np.asarray(inhale_fraction, dtype=np.float64)
    inhaling = p < f
    x = np.where(inhaling, p / f, (p - f) / (1.0 - f))
    e = 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))
    level = np.where(inhaling, e, 1.0 - e)
    if level.ndim == 0:
        return float(level)
    return level.astype(np.float64)


@dataclass(frozen=True, slots=True)
class BreathInfo:
    """State of the pacer after one :meth:`BreathPacer.advance`.

    Parameters
    ----------
    time : float
        Session time of the step, seconds.
    visible : bool
        False while the controller hides the pacer (calibration, stopped).
    cycle : int
        Number of whole cycles completed since the pacer (re)appeared.
    phase : float
        Position in the current cycle, 0..1 (0 = start of the inhale).
    inhaling : bool
        True during the inhale.
    progress : float
        0..1 through the current half.
    level : float
        Eased lung volume 0..1 (what the shape's size and the sound's swell follow).
    pace_brpm : float
        Pace in breaths/min (NaN while hidden).
    inhale_fraction : float
        Inhale share of the current cycle (latched at its start).
    seconds_left : float
        Seconds to the end of the current half at the current pace.
    changed : str or None
        ``"inhale"`` or ``"exhale"`` when that half began during this step, else None.
    """

    time: float
    visible: bool
    cycle: int = 0
    phase: float = 0.0
    inhaling: bool = True
    progress: float = 0.0
    level: float = 0.0
    pace_brpm: float = math.nan
    inhale_fraction: float = math.nan
    seconds_left: float = math.nan
    changed: str | None = None

    @property
    def cycles(self) -> float:
        """Total phase in cycles (``cycle + phase``)."""
        return self.cycle + self.phase


class BreathPacer:
    """The breathing guide's phase, integrated from the pace in session time.

    Notes
    -----
    ``advance`` integrates ``phase += pace_brpm / 60 * dt`` with ``dt`` the session time
    since the previous call, so a pace change never makes the shape jump.  Time never goes
    back (an earlier ``t`` counts as no time).  While the pace is hidden (NaN), the phase
    rests at 0, so the first breath after calibration starts as an inhale from empty.  The
    inhale fraction is latched at the start of each cycle.  With ``running=False`` (paused)
    time passes but the phase holds.

    Examples
    --------
    >>> pacer = BreathPacer()
    >>> info = pacer.advance(0.0, 6.0, 0.4)          # appears: start of an inhale
    >>> info = pacer.advance(4.0, 6.0, 0.4)          # 4 s at 6/min = 0.4 cycle: end of inhale
    >>> round(info.phase, 6), info.inhaling, info.changed
    (0.4, False, 'exhale')
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the phase and the time: the next visible step starts an inhale."""
        self._t = math.nan
        self._phase = 0.0
        self._cycle = 0
        self._frac = math.nan
        self._visible = False

    @property
    def cycles(self) -> float:
        """Total phase in cycles since the pacer appeared."""
        return self._cycle + self._phase

    def advance(
        self, t: float, pace_brpm: float, inhale_fraction: float, *, running: bool = True
    ) -> BreathInfo:
        """Advance the pacer to session time ``t``.

        Parameters
        ----------
        t : float
            Session time in seconds (finite).
        pace_brpm : float
            Pace in breaths/min; NaN (or <= 0) hides the pacer.
        inhale_fraction : float
            Inhale share of each cycle, strictly between 0 and 1 (used from the next cycle
            start).
        running : bool
            False holds the phase (pause).

        Returns
        -------
        info : BreathInfo

        Raises
        ------
        ValueError
            If ``t`` is not finite, or the pacer is visible and ``inhale_fraction`` is not in
            (0, 1).
        """
        t = float(t)
        if not math.isfinite(t):
            raise ValueError(f"Invalid value for 't': expected a finite session time, got {t!r}.")
        dt = 0.0 if math.isnan(self._t) else max(t - self._t, 0.0)
        self._t = t if math.isnan(self._t) else max(t, self._t)
        pace = float(pace_brpm)
        if not (math.isfinite(pace) and pace > 0):
            self._phase, self._cycle, self._frac, self._visible = 0.0, 0, math.nan, False
            return BreathInfo(time=self._t, visible=False, level=0.0)
        frac = float(inhale_fraction)
        if not (0.0 < frac < 1.0):
            raise ValueError(
                f"Invalid value for 'inhale_fraction': expected a number in (0, 1), got {inhale_fraction!r}. "
                "Pass PacingDecision.inhale_fraction."
            )
        changed: str | None = None
        if not self._visible:
            self._visible, self._phase, self._cycle, self._frac = True, 0.0, 0, frac
            changed = "inhale"
        elif running and dt > 0:
            was_inhaling = self._phase < self._frac
            new = advance_phase(self._phase, dt, pace)
            wraps = int(math.floor(new))
            if wraps > 0:
                self._cycle += wraps
                new -= wraps
                self._frac = frac
                changed = "exhale" if new >= frac else "inhale"
            elif was_inhaling and new >= self._frac:
                changed = "exhale"
            self._phase = min(max(new, 0.0), math.nextafter(1.0, 0.0))
        inhaling, progress = breath_phase(self._phase, self._frac)
        half_s = (self._frac if inhaling else 1.0 - self._frac) * 60.0 / pace
        return BreathInfo(
            time=self._t,
            visible=True,
            cycle=self._cycle,
            phase=self._phase,
            inhaling=inhaling,
            progress=progress,
            level=breath_level(self._phase, self._frac),
            pace_brpm=pace,
            inhale_fraction=self._frac,
            seconds_left=(1.0 - progress) * half_s,
            changed=changed,
        )


# ---------------------------------------------------------------------------------------------- options
@dataclass(frozen=True, slots=True)
class SceneOptions:
    """What a clinic chooses once per session.

    Parameters
    ----------
    palette : {"calm", "colorblind"}
        Colour set (see :data:`PALETTES`).
    low_motion : bool
        Smaller breathing travel and no background motion.
    target_brpm : float
        Resonance target, used to show progress while slowing (default 6).
    stale_s : float
        Age after which an estimate shows as stale in the overlay (default 5 s, the
        controller's ``max_age_s``).
    ready_hint : bool
        Show a small "Ready" mark when the overlay is hidden and the patient is ready.
    """

    palette: str = "calm"
    low_motion: bool = False
    target_brpm: float = 6.0
    stale_s: float = 5.0
    ready_hint: bool = True

    def __post_init__(self) -> None:
        check_option("palette", self.palette, list(PALETTES))
        check_range("target_brpm", self.target_brpm, 3.0, 30.0)
        check_positive("stale_s", self.stale_s)


@dataclass(frozen=True, slots=True)
class ViewStatus:
    """What changes while the window runs (keys, smoothing, remembered context).

    Parameters
    ----------
    paused, muted : bool
        Pause and mute state.
    volume : float
        Audio volume 0..1 (shown in the overlay).
    sound : str
        Sound choice shown in the overlay ("tone", "noise", "none", "off" when no device).
    confirm_stop : bool
        The stop confirmation is on screen.
    ended : bool
        The session was stopped from the window.
    overlay_visible : bool
        The clinician overlay is shown.
    warmth : float
        Smoothed warmth 0..1; NaN computes it from the newest arousal.
    last_stage : PacingState or None
        Last progress stage seen (shown during ``signal_lost`` / ``alert``).
    start_pace_brpm : float
        Pace at which slowing began (for slowing progress).
    alerts : tuple of str
        Recent alerts, newest last, already formatted.
    ready_since : float
        Session time readiness was first announced (NaN if never).
    fps : float
        Measured frames per second (NaN unknown).
    """

    paused: bool = False
    muted: bool = False
    volume: float = 0.5
    sound: str = "tone"
    confirm_stop: bool = False
    ended: bool = False
    overlay_visible: bool = False
    warmth: float = math.nan
    last_stage: PacingState | None = None
    start_pace_brpm: float = math.nan
    alerts: tuple[str, ...] = ()
    ready_since: float = math.nan
    fps: float = math.nan


# ---------------------------------------------------------------------------------------------- scene
@dataclass(frozen=True, slots=True)
class AmbientBlob:
    """A large faint light drifting in the background (fractions of width/height/short side)."""

    x: float
    y: float
    radius: float
    color: RGB


@dataclass(frozen=True, slots=True)
class ProgressView:
    """The gentle sign of progress: stage dots and a label."""

    labels: tuple[str, ...]
    index: int
    within: float
    fraction: float
    label: str


@dataclass(frozen=True, slots=True)
class OverlayRow:
    """One line of the clinician overlay.

    ``level`` is one of ``"ok"``, ``"warn"``, ``"bad"`` or ``"none"`` (no judgement).
    """

    label: str
    value: str
    detail: str = ""
    level: str = "none"


@dataclass(frozen=True, slots=True)
class Scene:
    """Everything one frame shows, as plain data (see the module docstring for units)."""

    time: float
    palette: Palette
    warmth: float
    background_top: RGB
    background_bottom: RGB
    ambient: tuple[AmbientBlob, ...]
    center: tuple[float, float]
    shape_radius: float
    shape_color: RGB
    glow_color: RGB
    glow_strength: float
    guide_radii: tuple[float, ...]
    caption: str
    caption_alpha: float
    subcaption: str
    progress: ProgressView
    ready: bool
    alert: bool
    overlay_visible: bool
    overlay_rows: tuple[OverlayRow, ...] = ()
    overlay_reason: str = ""
    overlay_alerts: tuple[str, ...] = ()
    overlay_footer: str = ""
    dialog: str = ""
    dialog_hint: str = ""
    status_marks: tuple[tuple[str, RGB], ...] = field(default_factory=tuple)


def format_clock(t: float) -> str:
    """Session time as ``m:ss`` (``h:mm:ss`` past an hour); ``-`` when not finite."""
    if not math.isfinite(t):
        return "-"
    s = int(max(t, 0.0))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def calm_progress(
    state: PacingState, pace_brpm: float, start_pace_brpm: float, target_brpm: float
) -> tuple[int, float]:
    """Stage index in :data:`STAGES` and progress 0..1 within it.

    Within ``slowing`` the progress is the share of the way from the starting pace to the
    target already covered; other stages report 0 (their progress is time, which the
    decision does not carry).  States outside :data:`STAGES` give index -1.
    """
    idx = _STAGE_INDEX.get(state, -1)
    within = 0.0
    if state is PacingState.SLOWING and math.isfinite(pace_brpm) and math.isfinite(start_pace_brpm):
        span = start_pace_brpm - target_brpm
        within = 1.0 if span <= 1e-9 else (start_pace_brpm - pace_brpm) / span
        within = min(max(within, 0.0), 1.0)
    return idx, within


def _value(latest: Mapping[Metric, Estimate], metric: Metric) -> Estimate | None:
    est = latest.get(metric)
    if est is None or not math.isfinite(est.value):
        return None
    return est


def _estimate_row(
    label: str, est: Estimate | None, fmt: str, unit: str, t: float, stale_s: float
) -> OverlayRow:
    if est is None:
        return OverlayRow(label, "-", "waiting", "none")
    value = format(est.value, fmt) + (f" {unit}" if unit else "")
    age = t - est.time
    if age > stale_s:
        return OverlayRow(label, value, f"stale {age:.0f} s", "warn")
    level = "ok" if est.quality >= QUALITY_USABLE else "warn"
    return OverlayRow(label, value, f"q {est.quality:.2f}", level)


def _quality_row(label: str, est: Estimate | None, t: float, stale_s: float) -> OverlayRow:
    if est is None:
        return OverlayRow(label, "-", "no signal", "bad")
    usable = min(est.value, est.quality)
    age = t - est.time
    if age > stale_s:
        return OverlayRow(label, f"{usable:.2f}", f"stale {age:.0f} s", "bad")
    if usable >= QUALITY_GOOD:
        return OverlayRow(label, f"{usable:.2f}", "good", "ok")
    if usable >= QUALITY_USABLE:
        return OverlayRow(label, f"{usable:.2f}", "fair", "warn")
    return OverlayRow(label, f"{usable:.2f}", "poor", "bad")


_STATE_LEVEL = {
    PacingState.READY_FOR_DOSING: "ok",
    PacingState.CALM: "ok",
    PacingState.SIGNAL_LOST: "warn",
    PacingState.ALERT: "bad",
    PacingState.STOPPED: "warn",
}


def overlay_rows(
    decision: PacingDecision | None,
    latest: Mapping[Metric, Estimate],
    t: float,
    *,
    stale_s: float = 5.0,
) -> tuple[OverlayRow, ...]:
    """The clinician's figures, formatted.

    Parameters
    ----------
    decision : PacingDecision or None
        Newest controller decision.
    latest : mapping of Metric to Estimate
        Newest estimate of each metric.
    t : float
        Session time now (for the elapsed time and estimate ages).
    stale_s : float
        Age beyond which an estimate is flagged stale.

    Returns
    -------
    rows : tuple of OverlayRow
        Elapsed, state, pace, breathing, heart rate, arousal, EEG relaxation, following and
        the three signal qualities, in that order.
    """
    rows = [OverlayRow("Elapsed", format_clock(t))]
    if decision is None:
        rows.append(OverlayRow("State", "starting", "no decision yet", "none"))
        rows.append(OverlayRow("Pace", "-"))
    else:
        state = decision.state
        rows.append(OverlayRow("State", state.value.replace("_", " "), "", _STATE_LEVEL.get(state, "none")))
        if decision.pacer_visible and math.isfinite(decision.pace_brpm):
            rows.append(
                OverlayRow(
                    "Pace", f"{decision.pace_brpm:.1f} /min", f"inhale {decision.inhale_fraction * 100:.0f} %"
                )
            )
        else:
            why = "calibrating" if state is PacingState.CALIBRATING else ""
            rows.append(OverlayRow("Pace", "hidden", why))
    rows.append(_estimate_row("Breathing", _value(latest, Metric.RESP_RATE_BRPM), ".1f", "/min", t, stale_s))
    rows.append(_estimate_row("Heart rate", _value(latest, Metric.HR_BPM), ".0f", "bpm", t, stale_s))
    rows.append(_estimate_row("Arousal", _value(latest, Metric.AROUSAL), "+.2f", "", t, stale_s))
    rows.append(_estimate_row("EEG relax", _value(latest, Metric.EEG_RELAXATION), ".2f", "", t, stale_s))
    follow = math.nan if decision is None else decision.following
    if math.isfinite(follow):
        rows.append(
            OverlayRow("Following", f"{follow:.2f}", "", "ok" if follow >= QUALITY_USABLE else "warn")
        )
    else:
        follow_est = _value(latest, Metric.BREATH_FOLLOWING)
        rows.append(_estimate_row("Following", follow_est, ".2f", "", t, stale_s))
    rows.append(_quality_row("Signal PPG", latest.get(Metric.QUALITY_PPG), t, stale_s))
    rows.append(_quality_row("Signal EEG", latest.get(Metric.QUALITY_EEG), t, stale_s))
    rows.append(_quality_row("Signal motion", latest.get(Metric.QUALITY_ACCEL), t, stale_s))
    return tuple(rows)


def _ambient(t: float, palette: Palette, warmth: float, glow: RGB) -> tuple[AmbientBlob, ...]:
    """Two large faint lights on slow, incommensurate orbits (periods of minutes)."""
    base = mix_rgb(mix_rgb(palette.bg_bottom_cool, palette.bg_bottom_warm, warmth), glow, 0.35)
    blobs = []
    for k, (px, py, r) in enumerate(((173.0, 241.0, 0.55), (211.0, 157.0, 0.45))):
        ax = 2.0 * math.pi * t / px + 2.1 * k
        ay = 2.0 * math.pi * t / py + 1.3 * k + 0.7
        x = 0.5 + (0.32 if k == 0 else -0.3) * math.sin(ax)
        y = 0.5 + 0.22 * math.sin(ay)
        blobs.append(AmbientBlob(x, y, r, _scale_rgb(base, 0.45 if k == 0 else 0.35)))
    return tuple(blobs)


def compose_scene(
    decision: PacingDecision | None,
    latest: Mapping[Metric, Estimate],
    t: float,
    options: SceneOptions | None = None,
    *,
    breath: BreathInfo | None = None,
    status: ViewStatus | None = None,
) -> Scene:
    """Compose one frame of the patient window.

    Parameters
    ----------
    decision : PacingDecision or None
        Newest controller decision (None before the first one: a settling scene).
    latest : mapping of Metric to Estimate
        Newest estimate of each metric (arousal colours the scene; the overlay shows the rest).
    t : float
        Session time of the frame, seconds (elapsed time, ambient motion, estimate ages).
    options : SceneOptions, optional
        Palette, low-motion mode, target pace.
    breath : BreathInfo, optional
        The pacer's state from :meth:`BreathPacer.advance`; the shape only breathes when
        this is given and visible.
    status : ViewStatus, optional
        Pause/mute/overlay state and smoothed warmth.

    Returns
    -------
    scene : Scene
    """
    opts = options if options is not None else SceneOptions()
    st = status if status is not None else ViewStatus()
    pal = PALETTES[opts.palette]
    if math.isfinite(st.warmth):
        warmth = min(max(st.warmth, 0.0), 1.0)
    else:
        est = latest.get(Metric.AROUSAL)
        warmth = arousal_warmth(est.value if est is not None else math.nan)

    stopped = st.ended or (decision is not None and decision.state is PacingState.STOPPED)
    guiding = (
        not stopped
        and breath is not None
        and breath.visible
        and decision is not None
        and decision.pacer_visible
    )
    lo, hi = LOW_MOTION_RADIUS_RANGE if opts.low_motion else RADIUS_RANGE
    level = breath.level if guiding and breath is not None else 0.0
    radius = lo + (hi - lo) * level if guiding else REST_RADIUS

    shape = shape_rgb(pal, warmth)
    shape = _scale_rgb(shape, 0.82 + 0.18 * level) if guiding else _scale_rgb(shape, 0.85)
    glow = shape_rgb(pal, warmth)
    glow_strength = 0.5 + 0.4 * level if guiding else 0.5

    # captions
    caption, subcaption, caption_alpha = "", "", 1.0
    if stopped:
        caption, subcaption = "Session ended", "Thank you. Rest for a moment."
    elif st.paused:
        caption, subcaption = "Paused", "Rest and breathe as you like"
    elif guiding and breath is not None:
        caption = "Breathe in" if breath.inhaling else "Breathe out"
        caption_alpha = 0.35 + 0.65 * ease_in_out(min(breath.progress / 0.15, 1.0))
        if decision is not None and decision.state is PacingState.SIGNAL_LOST:
            subcaption = "Keep following the light"
    else:
        caption, subcaption = "Settling in", "Breathe naturally"

    # progress
    stage_state = decision.state if decision is not None else PacingState.CALIBRATING
    if stage_state not in _STAGE_INDEX:
        stage_state = st.last_stage if st.last_stage is not None else PacingState.CALIBRATING
    idx, within = calm_progress(
        stage_state,
        decision.pace_brpm if decision is not None else math.nan,
        st.start_pace_brpm,
        opts.target_brpm,
    )
    labels = tuple(label for _, label in STAGES)
    progress = ProgressView(
        labels=labels,
        index=idx,
        within=within,
        fraction=(idx + within) / (len(labels) - 1),
        label=labels[idx],
    )

    ready = bool(decision is not None and decision.dose_ready and not stopped)
    alert = bool(decision is not None and decision.state is PacingState.ALERT)
    center = CENTER_WITH_OVERLAY if st.overlay_visible else CENTER
    ambient = () if opts.low_motion else _ambient(t, pal, warmth, glow)

    rows: tuple[OverlayRow, ...] = ()
    reason, footer = "", ""
    alerts: tuple[str, ...] = ()
    if st.overlay_visible:
        rows = overlay_rows(decision, latest, t, stale_s=opts.stale_s)
        if math.isfinite(st.ready_since):
            ready_row = OverlayRow("Ready at", format_clock(st.ready_since), "announced", "ok")
            rows = rows[:2] + (ready_row,) + rows[2:]
        reason = decision.reason if decision is not None else ""
        alerts = st.alerts[-3:]
        if decision is not None and decision.state is PacingState.ALERT and not alerts:
            alerts = (f"{format_clock(decision.time)}  {decision.reason}",)
        if st.muted:
            sound = "muted"
        elif st.sound in ("tone", "noise"):
            sound = f"{st.sound} {st.volume * 100:.0f} %"
        else:
            sound = st.sound
        fps = f"  {st.fps:.0f} fps" if math.isfinite(st.fps) else ""
        footer = f"Sound: {sound}{fps}"

    marks: list[tuple[str, RGB]] = []
    if not st.overlay_visible:
        if ready and opts.ready_hint:
            marks.append(("Ready", pal.ready))
        if alert:
            marks.append(("Alert: press Tab", pal.alert))
    if st.muted:
        marks.append(("Sound off", pal.text_dim))

    dialog, dialog_hint = "", ""
    if st.confirm_stop:
        dialog, dialog_hint = "End the session?", "Y  end        N  continue"

    return Scene(
        time=float(t),
        palette=pal,
        warmth=warmth,
        background_top=mix_rgb(pal.bg_top_cool, pal.bg_top_warm, warmth),
        background_bottom=mix_rgb(pal.bg_bottom_cool, pal.bg_bottom_warm, warmth),
        ambient=ambient,
        center=center,
        shape_radius=radius,
        shape_color=shape,
        glow_color=glow,
        glow_strength=glow_strength,
        guide_radii=(hi,) if guiding else (),
        caption=caption,
        caption_alpha=caption_alpha,
        subcaption=subcaption,
        progress=progress,
        ready=ready,
        alert=alert,
        overlay_visible=st.overlay_visible,
        overlay_rows=rows,
        overlay_reason=reason,
        overlay_alerts=alerts,
        overlay_footer=footer,
        dialog=dialog,
        dialog_hint=dialog_hint,
        status_marks=tuple(marks),
    )
