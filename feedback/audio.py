"""Breath sound synthesised at run time: a soft tone or filtered noise that swells with the inhale.

Layers, from pure to device:

* :func:`tone_block` - sine block synthesis that carries its phase between blocks, the way a
  filter carries ``zi``: concatenated blocks equal one long block.
* :class:`BreathEnvelope` - the pacer's lung volume at audio rate, its phase integrated from
  the pace (``phase += pace / 60 / sfreq`` per sample) with the same easing as the visual
  pacer (:func:`feedback.scene.breath_level`), gently phase-locked to the visual pacer.
* :class:`BreathSynth` - envelope, voice ("tone" or "noise"), soft chimes and smoothed
  volume/mute gains; ``render(n, ...)`` returns the next ``n`` mono samples.  No I/O.
* :class:`AudioPlayer` - the device side: the window's frame loop renders blocks into a
  ``queue.Queue`` and the SDL audio callback only copies bytes out of it (silence on
  underrun).  When no audio device can be opened, the player logs once and stays silent.

Click-free by construction: oscillator phases, filter states and chime ages run on across
blocks, and every gain (breath level, volume, mute) passes through a one-pole smoother whose
state is carried too.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import queue
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from adaptive._checks import check_option, check_positive, check_range
from adaptive.filters import SosFilter, design_sos
from adaptive.types import FloatArray

from .scene import BreathInfo, breath_level

__all__ = [
    "CHIMES",
    "CHIME_KINDS",
    "SOUNDS",
    "AudioPlayer",
    "BreathEnvelope",
    "BreathSynth",
    "Chime",
    "chime_block",
    "tone_block",
]

logger = logging.getLogger(__name__)

TWO_PI = 2.0 * math.pi
SOUNDS = ("tone", "noise", "none")
#: Which chimes sound: none, state changes only, or also each inhale/exhale turn.
CHIMES = ("none", "state", "all")

REST_LEVEL = 0.35  # sound level while the pacer is hidden: a quiet steady presence
LOCK_TAU_S = 2.0  # time constant of the phase lock to the visual pacer
LOCK_MAX_RATE = 0.15  # the lock changes the audio pace by at most 15 %
RESYNC_CYCLES = 0.2  # phase errors above this are corrected at once (the gain smoother hides the step)


# ---------------------------------------------------------------------------------------------- blocks
def tone_block(
    freq: float | FloatArray, n: int, sfreq: float, phase: float = 0.0
) -> tuple[FloatArray, float]:
    """A block of a unit sine, continuing from ``phase``.

    Parameters
    ----------
    freq : float or array of shape (n,)
        Frequency in Hz, constant or per sample (a glide).
    n : int
        Number of samples.
    sfreq : float
        Sampling rate in Hz.
    phase : float
        Phase in radians at the first sample (the value returned by the previous call).

    Returns
    -------
    block : array of shape (n,)
        ``sin`` of the running phase.
    phase : float
        Phase for the first sample of the next block, wrapped to [0, 2 pi).

    Examples
    --------
    >>> a, ph = tone_block(440.0, 100, 8000.0)
    >>> b, _ = tone_block(440.0, 100, 8000.0, ph)
    >>> whole, _ = tone_block(440.0, 200, 8000.0)
    >>> bool(np.allclose(np.concatenate([a, b]), whole, atol=1e-9))
    True
    """
    n = int(n)
    if n < 0:
        raise ValueError(f"Invalid value for 'n': expected a non-negative sample count, got {n!r}.")
    step = TWO_PI * np.asarray(freq, dtype=np.float64) / float(sfreq)
    if step.ndim == 0:
        phases = phase + step * np.arange(n, dtype=np.float64)
        end = phase + float(step) * n
    else:
        if step.shape != (n,):
            raise ValueError(
                f"Invalid value for 'freq': expected a scalar or shape ({n},), got {step.shape}."
            )
        csum = np.cumsum(step)
        phases = phase + np.concatenate(([0.0], csum[:-1])) if n else np.zeros(0)
        end = phase + (float(csum[-1]) if n else 0.0)
    return np.sin(phases), float(end % TWO_PI)


@dataclass(frozen=True, slots=True)
class Chime:
    """A soft bell: inharmonic partials with exponential decays.

    Parameters
    ----------
    freq_hz : float
        Fundamental frequency.
    gain : float
        Peak amplitude (before the master volume).
    decay_s : float
        Decay time constant of the fundamental; higher partials decay faster.
    """

    freq_hz: float
    gain: float
    decay_s: float = 1.4

    @property
    def duration_s(self) -> float:
        """After this the chime is below -70 dB and stops."""
        return 8.0 * self.decay_s


_PARTIALS = ((1.0, 1.0, 1.0), (2.76, 0.32, 0.45), (5.4, 0.1, 0.22))  # (ratio, gain, decay factor)
ATTACK_S = 0.008


def chime_block(chime: Chime, start: int, n: int, sfreq: float) -> FloatArray:
    """Samples ``start .. start + n`` of a chime (sample 0 is its onset; negative = silence).

    Pure in the chime's age, so any split into blocks gives the same samples.
    """
    k = np.arange(start, start + n, dtype=np.float64)
    t = k / sfreq
    out = np.zeros(n)
    on = t >= 0
    if not np.any(on):
        return out
    tt = t[on]
    attack = np.where(tt < ATTACK_S, 0.5 - 0.5 * np.cos(np.pi * tt / ATTACK_S), 1.0)
    y = np.zeros_like(tt)
    for ratio, g, dk in _PARTIALS:
        f = chime.freq_hz * ratio
        if f < sfreq / 2:
            y += g * np.exp(-tt / (chime.decay_s * dk)) * np.sin(TWO_PI * f * tt)
    out[on] = chime.gain * attack * y / sum(g for _, g, _ in _PARTIALS)
    return out


#: The chimes the synthesiser knows (soft, pentatonic-friendly pitches).
CHIME_KINDS: dict[str, Chime] = {
    "inhale": Chime(659.26, 0.10, 0.9),  # E5
    "exhale": Chime(493.88, 0.09, 1.1),  # B4
    "state": Chime(587.33, 0.16, 1.6),  # D5
    "ready": Chime(783.99, 0.18, 2.2),  # G5
}


# ---------------------------------------------------------------------------------------------- envelope
class BreathEnvelope:
    """Lung volume 0..1 at audio rate, integrated from the pace.

    Parameters
    ----------
    sfreq : float
        Sampling rate in Hz.

    Notes
    -----
    Per sample, ``phase += rate * pace_brpm / 60 / sfreq``; the level is
    :func:`feedback.scene.breath_level` of the phase, with the inhale fraction latched at each
    cycle start, exactly as :class:`feedback.scene.BreathPacer` does per frame.  ``rate`` is 1
    unless :meth:`lock` nudges the envelope toward the visual pacer.  While the pace is
    hidden (NaN) the phase rests at 0.
    """

    def __init__(self, sfreq: float) -> None:
        self._sfreq = check_positive("sfreq", sfreq)
        self.reset()

    def reset(self) -> None:
        """Back to the start of an inhale, pacer hidden."""
        self._cycles = 0.0  # total phase in cycles
        self._frac = math.nan
        self._rate = 1.0

    @property
    def cycles(self) -> float:
        """Total phase in cycles (``cycle + phase``)."""
        return self._cycles

    def lock(self, target_cycles: float, pace_brpm: float) -> None:
        """Steer toward the visual pacer's phase (in cycles) for the next blocks.

        Small errors are corrected by changing the envelope's rate by at most
        ``LOCK_MAX_RATE`` (time constant ``LOCK_TAU_S``); errors above ``RESYNC_CYCLES`` by a
        jump, which :class:`BreathSynth`'s gain smoother makes click-free.
        """
        if not (math.isfinite(target_cycles) and math.isfinite(pace_brpm) and pace_brpm > 0):
            self._rate = 1.0
            return
        err = target_cycles - self._cycles
        if abs(err) > RESYNC_CYCLES:
            frac_changes = math.floor(target_cycles) != math.floor(self._cycles)
            self._cycles = float(target_cycles)
            if frac_changes:
                self._frac = math.nan  # re-latch at the next block
            self._rate = 1.0
            return
        extra = err / LOCK_TAU_S / (pace_brpm / 60.0)
        self._rate = 1.0 + min(max(extra, -LOCK_MAX_RATE), LOCK_MAX_RATE)

    def render(self, n: int, pace_brpm: float, inhale_fraction: float, *, running: bool = True) -> FloatArray:
        """The next ``n`` levels.

        Parameters
        ----------
        n : int
            Number of samples.
        pace_brpm : float
            Pace; NaN (or <= 0) hides the pacer (constant rest level, phase reset).
        inhale_fraction : float
            Inhale share, used from the next cycle start (at once on the first visible block).
        running : bool
            False holds the phase (pause).

        Returns
        -------
        levels : array of shape (n,)
        """
        if not (math.isfinite(pace_brpm) and pace_brpm > 0):
            self._cycles, self._frac = 0.0, math.nan
            return np.full(n, REST_LEVEL)
        if not (0.0 < inhale_fraction < 1.0):
            raise ValueError(
                f"Invalid value for 'inhale_fraction': expected a number in (0, 1), got {inhale_fraction!r}."
            )
        if math.isnan(self._frac):
            self._frac = float(inhale_fraction)
        step = self._rate * pace_brpm / 60.0 / self._sfreq if running else 0.0
        cycles = self._cycles + step * np.arange(n, dtype=np.float64)
        start = math.floor(self._cycles)
        frac = np.where(np.floor(cycles) > start, float(inhale_fraction), self._frac)
        levels = breath_level(cycles - np.floor(cycles), frac)
        end = self._cycles + step * n
        if math.floor(end) > start:
            self._frac = float(inhale_fraction)
        self._cycles = end
        return levels

    def turns(self, n: int, pace_brpm: float, inhale_fraction: float) -> list[tuple[int, str]]:
        """Where the next ``n`` samples would start an inhale or an exhale (without advancing).

        Returns ``(sample_index, "inhale" | "exhale")`` pairs, for chimes at the exact sample.
        """
        if not (math.isfinite(pace_brpm) and pace_brpm > 0):
            return []
        current = inhale_fraction if math.isnan(self._frac) else self._frac  # what render() will latch
        step = self._rate * pace_brpm / 60.0 / self._sfreq
        c0, c1 = self._cycles, self._cycles + step * n
        out: list[tuple[int, str]] = []
        k = math.floor(c0)
        while k <= c1:
            frac = current if k == math.floor(c0) else inhale_fraction
            for edge, name in ((k + 0.0, "inhale"), (k + frac, "exhale")):
                if c0 < edge <= c1 and step > 0:
                    out.append((min(int(math.ceil((edge - c0) / step)), n - 1), name))
            k += 1
        return sorted(out)


# ---------------------------------------------------------------------------------------------- synth
def _one_pole(tau_s: float, sfreq: float) -> tuple[FloatArray, FloatArray]:
    a = math.exp(-1.0 / (tau_s * sfreq))
    return np.array([1.0 - a]), np.array([1.0, -a])


class BreathSynth:
    """Mono breath sound, rendered block by block with every state carried.

    Parameters
    ----------
    sound : {"tone", "noise", "none"}
        A warm tone whose brightness and loudness swell with the inhale, filtered noise like
        a slow wave, or silence.
    sfreq : float
        Sampling rate in Hz.
    chimes : {"none", "state", "all"}
        Soft chimes on state changes (``"state"``), also on each inhale and exhale
        (``"all"``), or never.
    base_hz : float
        Pitch of the tone (default G3).
    seed : int
        Seed of the noise.
    """

    def __init__(
        self, sound: str = "tone", sfreq: float = 44100.0, *, chimes: str = "state",
        base_hz: float = 196.0, seed: int = 0,
    ) -> None:
        check_option("sound", sound, SOUNDS)
        check_option("chimes", chimes, CHIMES)
        self._sound = sound
        self._sfreq = check_positive("sfreq", sfreq)
        self._chimes = chimes
        self._base_hz = check_range("base_hz", base_hz, 40.0, 2000.0)
        self._seed = int(seed)
        self._gain_b, self._gain_a = _one_pole(0.03, self._sfreq)  # volume / mute
        self._level_b, self._level_a = _one_pole(0.08, self._sfreq)  # breath swell
        self._dark_sos = design_sos(self._sfreq, h_freq=350.0, order=2)
        self._bright_sos = design_sos(self._sfreq, h_freq=1400.0, order=2)
        self.envelope = BreathEnvelope(self._sfreq)
        self.reset()

    @property
    def sound(self) -> str:
        """The voice in use."""
        return self._sound

    @property
    def sfreq(self) -> float:
        """Sampling rate in Hz."""
        return self._sfreq

    def reset(self) -> None:
        """Silence, all phases and filter states back to the start."""
        self.envelope.reset()
        self._phases = [0.0, 0.0, 0.0, 0.0]
        self._gain_zi: FloatArray | None = None
        self._level_zi: FloatArray | None = None
        self._rng = np.random.default_rng(self._seed)
        self._dark = SosFilter(self._dark_sos)
        self._bright = SosFilter(self._bright_sos)
        self._voices: list[tuple[Chime, int]] = []  # (chime, age in samples at the next block)
        self._pending: list[str] = []

    def chime(self, kind: str) -> None:
        """Ring a chime at the start of the next block (``"state"``, ``"ready"``, ...).

        Ignored when chimes are off.  ``"inhale"``/``"exhale"`` chimes are rung by the
        envelope itself (``chimes="all"``).
        """
        check_option("kind", kind, list(CHIME_KINDS))
        if self._chimes != "none":
            self._pending.append(kind)

    def _smooth(
        self, x: FloatArray, b: FloatArray, a: FloatArray, zi: FloatArray | None
    ) -> tuple[FloatArray, FloatArray]:
        if zi is None:
            zi = np.array([x[0] * -a[1]]) if x.size else np.zeros(1)  # start at steady state
        y, zf = lfilter(b, a, x, zi=zi)
        return np.asarray(y, dtype=np.float64), np.asarray(zf, dtype=np.float64)

    def render(
        self,
        n: int,
        *,
        pace_brpm: float,
        inhale_fraction: float = 0.4,
        running: bool = True,
        volume: float = 0.5,
        muted: bool = False,
    ) -> FloatArray:
        """The next ``n`` samples, mono, within -1..1.

        Parameters
        ----------
        n : int
            Block length in samples.
        pace_brpm, inhale_fraction : float
            The pacer (NaN pace: hidden, a quiet steady sound).
        running : bool
            False holds the breath (pause).
        volume : float
            0..1; changes glide over about 30 ms.
        muted : bool
            Mute (also glides: no click).

        Returns
        -------
        block : array of shape (n,)
        """
        n = int(n)
        turns: list[tuple[int, str]] = []
        if running and self._chimes == "all":
            turns = self.envelope.turns(n, pace_brpm, inhale_fraction)
        level_raw = self.envelope.render(n, pace_brpm, inhale_fraction, running=running)
        level, self._level_zi = self._smooth(level_raw, self._level_b, self._level_a, self._level_zi)
        target = np.full(n, 0.0 if muted else min(max(float(volume), 0.0), 1.0))
        if self._gain_zi is None:
            self._gain_zi = np.zeros(1)  # fade in from silence: no click at the start
        gain, self._gain_zi = self._smooth(target, self._gain_b, self._gain_a, self._gain_zi)

        if self._sound == "tone":
            voice = self._tone(level)
        elif self._sound == "noise":
            voice = self._noise(level)
        else:
            voice = np.zeros(n)

        bells = np.zeros(n)
        for kind in self._pending:
            self._voices.append((CHIME_KINDS[kind], 0))
        self._pending.clear()
        for at, kind in turns:
            self._voices.append((CHIME_KINDS[kind], -at))
        alive = []
        for ch, age in self._voices:
            bells += chime_block(ch, age, n, self._sfreq)
            if (age + n) / self._sfreq < ch.duration_s:
                alive.append((ch, age + n))
        self._voices = alive
        return np.clip(gain * (voice + bells), -1.0, 1.0)

    def _tone(self, level: FloatArray) -> FloatArray:
        n = level.size
        f0 = self._base_hz * (1.0 + 0.012 * level)  # a hint of rise on the inhale
        amp = 0.08 + 0.34 * level
        out = np.zeros(n)
        # fundamental, slightly detuned twin (slow chorus), fifth and octave opening with the breath
        partials = ((1.0, 0.55 * amp), (1.0032, 0.35 * amp), (1.5, (0.05 + 0.12 * level) * amp),
                    (2.0, (0.04 + 0.14 * level) * amp))
        for i, (ratio, g) in enumerate(partials):
            s, self._phases[i] = tone_block(f0 * ratio, n, self._sfreq, self._phases[i])
            out += g * s
        return out

    def _noise(self, level: FloatArray) -> FloatArray:
        n = level.size
        white = self._rng.standard_normal(n)[np.newaxis, :]
        dark = self._dark.process(white)[0] / math.sqrt(2 * 350.0 / self._sfreq)
        bright = self._bright.process(white)[0] / math.sqrt(2 * 1400.0 / self._sfreq)
        amp = 0.02 + 0.16 * level
        return amp * ((1.0 - level) * dark + level * bright)


# ---------------------------------------------------------------------------------------------- device
class AudioPlayer:
    """Plays :class:`BreathSynth` blocks through SDL; silent (with one log line) without a device.

    Parameters
    ----------
    sound : {"tone", "noise", "none"}
        Voice; ``"none"`` opens no device (chimes are off too).
    volume : float
        0..1.
    muted : bool
        Start muted.
    chimes : {"none", "state", "all"}
        See :class:`BreathSynth`.
    sfreq : int
        Device rate in Hz.
    block : int
        Samples per block (and per device callback).
    latency_s : float
        Audio kept queued ahead of the device (default 0.25 s: rides out slow frames).  The
        breath swell stays in step with the picture whatever the latency, because each block is
        locked to the pacer phase extrapolated to the time it will be heard; only chimes and
        volume/mute changes arrive this much later.
    open_device : bool
        False builds the player without touching SDL (tests).

    Notes
    -----
    ``update()`` runs on the window's thread once per frame: it tops the queue up to
    ``latency_s`` with rendered blocks.  The SDL callback runs on the audio thread and only
    copies the next block out of the queue (silence and an underrun count when empty), in the
    spirit of sounddevice's ``play_long_file.py``.  Uses pygame's SDL2 audio device
    (``pygame._sdl2.audio``, experimental in pygame-ce) because ``pygame.mixer`` has no
    user callback.
    """

    def __init__(
        self, sound: str = "tone", *, volume: float = 0.5, muted: bool = False, chimes: str = "state",
        sfreq: int = 44100, block: int = 1024, latency_s: float = 0.25, open_device: bool = True,
    ) -> None:
        check_option("sound", sound, SOUNDS)
        self._volume = check_range("volume", volume, 0.0, 1.0)
        self._muted = bool(muted)
        self._block = int(block)
        if self._block < 64:
            raise ValueError(f"Invalid value for 'block': expected at least 64 samples, got {block!r}.")
        self._sfreq = int(check_positive("sfreq", sfreq))
        latency = check_positive("latency_s", latency_s)
        self._target_blocks = max(2, int(math.ceil(latency * self._sfreq / self._block)))
        self.synth = BreathSynth(sound, float(self._sfreq), chimes=chimes if sound != "none" else "none")
        self._queue: queue.Queue[bytes] = queue.Queue(maxsize=self._target_blocks + 2)
        self._silence = bytes(self._block * 2 * 2)  # int16 stereo
        self._carry = b""
        self._underruns = 0
        self._blocks_played = 0
        self._device: object | None = None
        self._error = ""
        if sound != "none" and open_device:
            self._open()

    # ------------------------------------------------------------------------------------ device
    def _open(self) -> None:
        try:
            import pygame._sdl2.audio as sdl_audio
            import pygame._sdl2.sdl2 as sdl2

            sdl2.init_subsystem(sdl2.INIT_AUDIO)
            dev = sdl_audio.AudioDevice(
                None, False, self._sfreq, sdl_audio.AUDIO_S16, 2, self._block, 0, self._callback
            )
            self._device = dev
            self.update(BreathInfo(time=0.0, visible=False))  # prime the queue before starting
            dev.pause(0)
            logger.info("audio: %s at %d Hz, %d-sample blocks", self.synth.sound, self._sfreq, self._block)
        except Exception as exc:  # no device, no driver, no _sdl2: degrade to silence
            self._device = None
            self._error = f"{type(exc).__name__}: {exc}"
            logger.warning("audio disabled (%s); the session continues without sound", self._error)

    def _callback(self, device: object, out: memoryview) -> None:
        """Audio thread: copy queued bytes into ``out``; nothing else happens here."""
        need = len(out)
        buf = self._carry
        while len(buf) < need:
            try:
                buf += self._queue.get_nowait()
            except queue.Empty:
                self._underruns += 1
                buf += bytes(need - len(buf))
                break
        out[:] = buf[:need]
        self._carry = buf[need:]
        self._blocks_played += 1

    # ------------------------------------------------------------------------------------ control
    @property
    def enabled(self) -> bool:
        """True when a device is playing."""
        return self._device is not None

    @property
    def error(self) -> str:
        """Why the device could not be opened ("" when it was, or was not asked for)."""
        return self._error

    @property
    def underruns(self) -> int:
        """Device callbacks that found the queue empty (each one a short gap)."""
        return self._underruns

    @property
    def volume(self) -> float:
        """Volume 0..1."""
        return self._volume

    @property
    def muted(self) -> bool:
        """Mute state."""
        return self._muted

    @property
    def queued_s(self) -> float:
        """Seconds of audio waiting in the queue."""
        return self._queue.qsize() * self._block / self._sfreq

    def set_volume(self, volume: float) -> None:
        """Set the volume (0..1, clamped); the change glides over about 30 ms."""
        self._volume = min(max(float(volume), 0.0), 1.0)

    def set_muted(self, muted: bool) -> None:
        """Mute or unmute (gliding, no click)."""
        self._muted = bool(muted)

    def chime(self, kind: str) -> None:
        """Ring a chime (``"state"`` or ``"ready"``) with the next block."""
        self.synth.chime(kind)

    def render_block(self, breath: BreathInfo, *, running: bool = True, ahead_s: float = 0.0) -> bytes:
        """Render one block as interleaved int16 stereo bytes, locked to the visual pacer.

        ``ahead_s`` is how long before the block is heard (the queued audio): the envelope is
        steered toward the pacer's phase extrapolated that far.
        """
        pace = breath.pace_brpm if breath.visible else math.nan
        if breath.visible and running:
            self.synth.envelope.lock(breath.cycles + pace / 60.0 * ahead_s, pace)
        elif breath.visible:
            self.synth.envelope.lock(breath.cycles, pace)
        frac = breath.inhale_fraction if breath.visible else 0.4
        mono = self.synth.render(
            self._block, pace_brpm=pace, inhale_fraction=frac, running=running,
            volume=self._volume, muted=self._muted,
        )
        pcm = np.round(mono * 32767.0).astype(np.int16)
        return np.repeat(pcm, 2).tobytes()

    def update(self, breath: BreathInfo, *, running: bool = True) -> int:
        """Top the queue up to the latency target; returns the number of blocks rendered."""
        if self._device is None:
            return 0
        made = 0
        while self._queue.qsize() < self._target_blocks:
            ahead = self.queued_s + self._block / self._sfreq  # queue plus the device's own buffer
            try:
                self._queue.put_nowait(self.render_block(breath, running=running, ahead_s=ahead))
            except queue.Full:  # pragma: no cover - the loop condition prevents it
                break
            made += 1
        return made

    def close(self) -> None:
        """Stop and release the device (idempotent).

        The device is paused with the GIL released (see :func:`_pause_device_releasing_gil`);
        once paused, SDL no longer calls back into Python, so closing it cannot deadlock.
        """
        dev, self._device = self._device, None
        if dev is not None:
            try:
                if not _pause_device_releasing_gil(int(dev.deviceid)):  # type: ignore[attr-defined]
                    dev.pause(1)  # type: ignore[attr-defined]
                dev.close()  # type: ignore[attr-defined]
            except Exception as exc:  # pragma: no cover - shutting down anyway
                logger.debug("audio close: %s", exc)
            if self._underruns:
                logger.info("audio: %d underruns over %d callbacks", self._underruns, self._blocks_played)


def _loaded_sdl2_path() -> str | None:
    """Path of the SDL2 library this process has loaded (Linux: from /proc/self/maps)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                path = line.rsplit(" ", 1)[-1].strip()
                name = os.path.basename(path)
                if name.startswith("libSDL2") and ".so" in name and not any(
                    part in name for part in ("_mixer", "_image", "_ttf", "_net")
                ):
                    return path
    except OSError:
        return None
    return None


_SDL2: ctypes.CDLL | None = None


def _pause_device_releasing_gil(device_id: int) -> bool:
    """Pause an SDL audio device through ctypes, which releases the GIL during the call.

    pygame's ``AudioDevice.pause`` keeps the GIL while SDL waits for the device lock, and SDL's
    audio thread holds that lock while pygame's callback wrapper waits for the GIL: the two
    threads then wait on each other for ever (seen as a hung ``close``).  Calling
    ``SDL_PauseAudioDevice`` of the same, already loaded library through ctypes lets the audio
    thread finish its callback first.  Returns False where the library cannot be found (not
    Linux), so the caller falls back to pygame's own call.
    """
    global _SDL2
    if _SDL2 is None:
        path = _loaded_sdl2_path()
        if path is None:
            return False
        try:
            lib = ctypes.CDLL(path)  # already loaded by pygame: the same instance and state
            lib.SDL_PauseAudioDevice.argtypes = [ctypes.c_uint32, ctypes.c_int]
            lib.SDL_PauseAudioDevice.restype = None
        except (OSError, AttributeError) as exc:
            logger.debug("audio: SDL2 at %s not usable through ctypes (%s)", path, exc)
            return False
        _SDL2 = lib
    _SDL2.SDL_PauseAudioDevice(ctypes.c_uint32(device_id), 1)
    return True
