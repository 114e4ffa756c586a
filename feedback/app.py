"""The patient window: a session sink that shows the breathing guide and plays its sound.

:class:`PatientWindow` is a :class:`~adaptive.session.Sink` (``write(result)`` keeps the newest
decision and estimates) and owns the pygame display.  The session loop calls
:meth:`PatientWindow.frame` once per iteration (about 60 times a second) with the session
time; ``frame`` pumps events, advances the pacer, tops up the audio queue, draws and flips,
and returns what the user asked for as :class:`Command` values.  The window never stops or
pauses the session itself: the loop decides what a command means.

Keys
----
P or Space   pause / resume            M          mute / unmute
Tab or O     clinician overlay         F or F11   full screen
+ / -        volume                    Esc or S   stop, then Y to confirm (N or Esc: continue)

Closing the window asks for the same confirmation as Esc.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import deque
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path

import pygame

from adaptive._checks import check_option, check_range
from adaptive.controller import PacingDecision, PacingState
from adaptive.session import TickResult
from adaptive.types import Estimate, Metric

from .audio import CHIMES, SOUNDS, AudioPlayer
from .pygame_view import SceneRenderer
from .scene import (
    BreathInfo,
    BreathPacer,
    Scene,
    SceneOptions,
    ViewStatus,
    arousal_warmth,
    compose_scene,
    format_clock,
    smooth_toward,
)

__all__ = ["Command", "PatientWindow"]

logger = logging.getLogger(__name__)

WARMTH_TAU_S = 4.0  # colour follows arousal over seconds, never flickers with each estimate
VOLUME_STEP = 0.1
MAX_ALERTS = 5


class Command(StrEnum):
    """What the user asked for in the window (returned by :meth:`PatientWindow.frame`)."""

    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"  # only after the Y confirmation
    MUTE = "mute"
    UNMUTE = "unmute"
    OVERLAY = "overlay"  # overlay toggled (handled by the window; for logging)
    FULLSCREEN = "fullscreen"  # full screen toggled (handled by the window; for logging)


class PatientWindow:
    """Breathing guide window, sound and clinician overlay; a session :class:`Sink`.

    Parameters
    ----------
    size : (int, int)
        Window size in pixels (windowed mode).
    fullscreen : bool
        Start full screen (desktop resolution).
    palette : {"calm", "colorblind"}
        Colour set.
    low_motion : bool
        Smaller breathing travel and no background motion.
    sound : {"tone", "noise", "none"}
        Breath sound.
    volume : float
        0..1.
    overlay_visible : bool
        Start with the clinician overlay shown.
    chimes : {"none", "state", "all"}
        Soft chimes at state changes, also at each breath turn, or never.
    target_brpm : float
        Resonance target of the protocol (progress display only).
    show_fps : bool
        Show the measured frame rate in the overlay footer.
    ready_hint : bool
        Show a small "Ready" mark on the patient view when the overlay is hidden (the overlay
        always shows READY FOR DOSING).
    title : str
        Window title.
    audio_latency_s : float
        Audio queued ahead of the device (see :class:`~feedback.audio.AudioPlayer`).

    Notes
    -----
    Initialises only pygame's display and font modules (and SDL audio through
    :class:`~feedback.audio.AudioPlayer`), so it coexists with other pygame users.  Under
    ``SDL_VIDEODRIVER=dummy`` everything works off-screen.  ``frame`` allocates no large
    surfaces: fonts, strings, the background and sprites are cached in a
    :class:`~feedback.pygame_view.SceneRenderer`.
    """

    def __init__(
        self,
        size: tuple[int, int] = (1024, 640),
        *,
        fullscreen: bool = False,
        palette: str = "calm",
        low_motion: bool = False,
        sound: str = "tone",
        volume: float = 0.5,
        overlay_visible: bool = False,
        chimes: str = "state",
        target_brpm: float = 6.0,
        ready_hint: bool = True,
        show_fps: bool = True,
        title: str = "calmloop",
        audio_latency_s: float = 0.25,
    ) -> None:
        w, h = (int(v) for v in size)
        if w < 160 or h < 100:
            raise ValueError(f"Invalid value for 'size': expected at least (160, 100) pixels, got {size!r}.")
        check_option("sound", sound, SOUNDS)
        check_option("chimes", chimes, CHIMES)
        check_range("volume", volume, 0.0, 1.0)
        self._options = SceneOptions(
            palette=palette, low_motion=low_motion, target_brpm=target_brpm, ready_hint=ready_hint
        )
        self._size = (w, h)
        self._show_fps = bool(show_fps)
        self._fullscreen = bool(fullscreen)
        self._title = title
        # SDL turns SIGINT/SIGTERM into a window-close request (which waits for a confirmation
        # on screen) when no handler is set yet; the session loop handles both itself, whatever
        # the order in which the window and the loop start.
        os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")
        pygame.display.init()
        pygame.font.init()
        pygame.display.set_caption(title)
        self._screen = self._set_mode()
        self._renderer = SceneRenderer()
        self._pacer = BreathPacer()
        self._audio = AudioPlayer(sound, volume=volume, chimes=chimes, latency_s=audio_latency_s)
        self._sound = sound
        # sink state
        self._decision: PacingDecision | None = None
        self._latest: dict[Metric, Estimate] = {}
        self._alerts: deque[str] = deque(maxlen=MAX_ALERTS)
        self._ready_since = math.nan
        self._last_stage: PacingState | None = None
        self._start_pace = math.nan
        # view state
        self._overlay = bool(overlay_visible)
        self._paused = False
        self._confirm = False
        self._ended = False
        self._warmth = math.nan
        self._last_now = math.nan
        self._frame_times: deque[float] = deque(maxlen=61)
        self._fps_shown = math.nan  # refreshed once a second so the overlay is not repainted every frame
        self._fps_at = -math.inf
        self._breath: BreathInfo | None = None
        self._scene: Scene | None = None
        self._closed = False
        logger.info(
            "patient window %dx%d%s, palette %s%s, sound %s (%s)",
            *self._screen.get_size(), " full screen" if self._fullscreen else "", palette,
            ", low motion" if low_motion else "", sound,
            "on" if self._audio.enabled else ("off" if sound == "none" else "no device"),
        )

    # ------------------------------------------------------------------------------------ display
    def _set_mode(self) -> pygame.Surface:
        if self._fullscreen:
            return pygame.display.set_mode((0, 0), pygame.FULLSCREEN)
        return pygame.display.set_mode(self._size)

    def toggle_fullscreen(self) -> None:
        """Switch between full screen and the windowed size."""
        self._fullscreen = not self._fullscreen
        self._screen = self._set_mode()
        logger.info("patient window %s", "full screen" if self._fullscreen else "windowed")

    # ------------------------------------------------------------------------------------ sink
    def write(self, result: TickResult) -> None:
        """Keep the newest decision and estimates of one session tick (the Sink protocol)."""
        for est in result.estimates:
            old = self._latest.get(est.metric)
            if old is None or est.time >= old.time:
                self._latest[est.metric] = est
        for d in result.decisions:
            self._take_decision(d)

    def _take_decision(self, d: PacingDecision) -> None:
        prev = self._decision
        if prev is not None and d.state is not prev.state:
            if d.state is PacingState.READY_FOR_DOSING:
                self._audio.chime("ready")
            elif d.state not in (PacingState.SIGNAL_LOST, PacingState.ALERT, PacingState.STOPPED):
                self._audio.chime("state")
        for event in d.events:
            if event.startswith("alert:"):
                self._alerts.append(f"{format_clock(d.time)}  {event.removeprefix('alert:')}")
            elif event == "ready_for_dosing" and math.isnan(self._ready_since):
                self._ready_since = d.time
        if d.state is PacingState.MATCHING and d.pacer_visible:
            self._start_pace = d.pace_brpm
        elif d.pacer_visible and math.isnan(self._start_pace):
            self._start_pace = d.pace_brpm
        if d.state in (
            PacingState.CALIBRATING, PacingState.MATCHING, PacingState.SLOWING,
            PacingState.RESONANCE, PacingState.CALM, PacingState.READY_FOR_DOSING,
        ):
            self._last_stage = d.state
        self._decision = d

    # ------------------------------------------------------------------------------------ state
    @property
    def decision(self) -> PacingDecision | None:
        """Newest decision received."""
        return self._decision

    @property
    def latest(self) -> Mapping[Metric, Estimate]:
        """Newest estimate of each metric received."""
        return self._latest

    @property
    def breath(self) -> BreathInfo | None:
        """The pacer after the last frame."""
        return self._breath

    @property
    def scene(self) -> Scene | None:
        """The scene drawn by the last frame."""
        return self._scene

    @property
    def paused(self) -> bool:
        """Paused from the window (P / Space)."""
        return self._paused

    @property
    def overlay_visible(self) -> bool:
        """Clinician overlay shown."""
        return self._overlay

    @property
    def audio(self) -> AudioPlayer:
        """The sound player (``audio.enabled`` is False without a device)."""
        return self._audio

    @property
    def surface(self) -> pygame.Surface:
        """The display surface."""
        return self._screen

    def set_overlay(self, visible: bool) -> None:
        """Show or hide the clinician overlay."""
        self._overlay = bool(visible)

    def set_paused(self, paused: bool) -> None:
        """Pause or resume the guide (the loop decides what else a pause means)."""
        self._paused = bool(paused)

    def set_volume(self, volume: float) -> None:
        """Set the volume 0..1 (clamped)."""
        self._audio.set_volume(volume)

    def set_muted(self, muted: bool) -> None:
        """Mute or unmute."""
        self._audio.set_muted(muted)

    # ------------------------------------------------------------------------------------ events
    def _handle_key(self, key: int, commands: list[Command]) -> None:
        if self._confirm:
            if key == pygame.K_y:
                self._confirm = False
                self._ended = True
                commands.append(Command.STOP)
                logger.info("stop confirmed in the patient window")
            elif key in (pygame.K_n, pygame.K_ESCAPE):
                self._confirm = False
            return
        if key in (pygame.K_ESCAPE, pygame.K_s):
            if not self._ended:
                self._confirm = True
        elif key in (pygame.K_p, pygame.K_SPACE):
            self._paused = not self._paused
            commands.append(Command.PAUSE if self._paused else Command.RESUME)
        elif key == pygame.K_m:
            self._audio.set_muted(not self._audio.muted)
            commands.append(Command.MUTE if self._audio.muted else Command.UNMUTE)
        elif key in (pygame.K_TAB, pygame.K_o):
            self._overlay = not self._overlay
            commands.append(Command.OVERLAY)
        elif key in (pygame.K_f, pygame.K_F11):
            self.toggle_fullscreen()
            commands.append(Command.FULLSCREEN)
        elif key in (pygame.K_PLUS, pygame.K_EQUALS, pygame.K_KP_PLUS, pygame.K_UP):
            self._audio.set_volume(self._audio.volume + VOLUME_STEP)
        elif key in (pygame.K_MINUS, pygame.K_KP_MINUS, pygame.K_DOWN):
            self._audio.set_volume(self._audio.volume - VOLUME_STEP)

    def _pump(self) -> list[Command]:
        commands: list[Command] = []
        for event in pygame.event.get():
            if event.type == pygame.KEYDOWN:
                self._handle_key(event.key, commands)
            elif event.type == pygame.QUIT and not self._ended:
                self._confirm = True
        return commands

    # ------------------------------------------------------------------------------------ frame
    def frame(self, now_s: float) -> list[Command]:
        """Handle input, advance the pacer, play, draw and flip one frame.

        Parameters
        ----------
        now_s : float
            Session time in seconds (the pacer phase is integrated over its increments).

        Returns
        -------
        commands : list of Command
            What the user asked for since the previous frame, in order.

        Raises
        ------
        RuntimeError
            If the window was closed.
        """
        if self._closed:
            raise RuntimeError("PatientWindow.frame() called after close(). Create a new window.")
        commands = self._pump()
        now = float(now_s)
        dt = 0.0 if math.isnan(self._last_now) else max(now - self._last_now, 0.0)
        self._last_now = now if math.isnan(self._last_now) else max(now, self._last_now)
        wall = time.perf_counter()
        self._frame_times.append(wall)
        if self._show_fps and wall - self._fps_at >= 1.0:
            self._fps_shown, self._fps_at = self._fps(), wall

        d = self._decision
        pace = d.pace_brpm if d is not None and d.pacer_visible and not self._ended else math.nan
        frac = d.inhale_fraction if d is not None else 0.4
        if d is not None and d.state is PacingState.STOPPED:
            pace = math.nan
        running = not self._paused
        self._breath = self._pacer.advance(now, pace, frac, running=running)
        self._audio.update(self._breath, running=running)

        arousal = self._latest.get(Metric.AROUSAL)
        target = arousal_warmth(arousal.value if arousal is not None else math.nan)
        self._warmth = smooth_toward(self._warmth, target, dt, WARMTH_TAU_S)

        status = ViewStatus(
            paused=self._paused,
            muted=self._audio.muted,
            volume=self._audio.volume,
            sound=self._sound if (self._audio.enabled or self._sound == "none") else "no audio device",
            confirm_stop=self._confirm,
            ended=self._ended,
            overlay_visible=self._overlay,
            warmth=self._warmth,
            last_stage=self._last_stage,
            start_pace_brpm=self._start_pace,
            alerts=tuple(self._alerts),
            ready_since=self._ready_since,
            fps=self._fps_shown,
        )
        self._scene = compose_scene(d, self._latest, now, self._options, breath=self._breath, status=status)
        self._renderer.draw(self._screen, self._scene)
        pygame.display.flip()
        return commands

    def _fps(self) -> float:
        if len(self._frame_times) < 2:
            return math.nan
        span = self._frame_times[-1] - self._frame_times[0]
        return (len(self._frame_times) - 1) / span if span > 0 else math.nan

    def screenshot(self, path: str | os.PathLike[str]) -> Path:
        """Save the last drawn frame (PNG by extension) and return its path."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        pygame.image.save(self._screen, str(out))
        return out

    def close(self) -> None:
        """Release the audio device and close the window (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._audio.close()
        pygame.display.quit()
        logger.info("patient window closed")

    def __enter__(self) -> PatientWindow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
