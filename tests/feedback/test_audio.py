"""Breath sound: click-free block synthesis, an envelope that follows the pace, and the player."""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from feedback.audio import (
    CHIME_KINDS,
    REST_LEVEL,
    AudioPlayer,
    BreathEnvelope,
    BreathSynth,
    chime_block,
    tone_block,
)
from feedback.scene import BreathInfo, BreathPacer

ROOT = Path(__file__).resolve().parents[2]

SFREQ = 8000.0  # low rate keeps the tests fast; nothing depends on the rate


def blocks(fn, sizes):  # type: ignore[no-untyped-def]
    return np.concatenate([fn(n) for n in sizes])


# ----------------------------------------------------------------------------------------------- tone
@pytest.mark.parametrize("block", [1, 7, 64, 1000])
def test_tone_blocks_join_without_a_seam(block: int) -> None:
    whole, _ = tone_block(440.0, 4000, SFREQ)
    phase, parts = 0.0, []
    for i in range(0, 4000, block):
        b, phase = tone_block(440.0, min(block, 4000 - i), SFREQ, phase)
        parts.append(b)
    joined = np.concatenate(parts)
    assert_allclose(joined, whole, atol=1e-9)  # phase wrapped to 2 pi: rounding only
    # a sine of 440 Hz moves at most 2 pi f / sfreq per sample, joins included
    assert np.max(np.abs(np.diff(joined))) <= 2 * np.pi * 440.0 / SFREQ * (1 + 1e-6)


@given(st.lists(st.integers(min_value=0, max_value=3000), min_size=1, max_size=8))
def test_tone_any_split_equals_one_block(cuts: list[int]) -> None:
    n = 3000
    freq = 200.0 + 100.0 * np.sin(np.linspace(0, 3, n))  # a glide: per-sample frequency
    whole, end = tone_block(freq, n, SFREQ, 1.0)
    edges = sorted({0, n, *cuts})
    phase, parts = 1.0, []
    for a, b in zip(edges[:-1], edges[1:]):
        x, phase = tone_block(freq[a:b], b - a, SFREQ, phase)
        parts.append(x)
    assert_allclose(np.concatenate(parts), whole, atol=1e-9)
    assert math.isclose(phase, end, abs_tol=1e-9) or abs(abs(phase - end) - 2 * np.pi) < 1e-9


def test_tone_rejects_wrong_calls() -> None:
    with pytest.raises(ValueError, match="'n'"):
        tone_block(440.0, -1, SFREQ)
    with pytest.raises(ValueError, match="'freq'"):
        tone_block(np.ones(5), 4, SFREQ)


def test_chime_is_pure_in_its_age() -> None:
    ch = CHIME_KINDS["state"]
    whole = chime_block(ch, -100, 2000, SFREQ)
    parts = np.concatenate([chime_block(ch, -100 + i, 250, SFREQ) for i in range(0, 2000, 250)])
    assert_allclose(parts, whole, rtol=0, atol=1e-15)
    assert np.all(whole[:100] == 0) and np.max(np.abs(whole)) <= ch.gain
    assert abs(whole[100]) < 1e-12  # soft attack from zero: no click at the onset


# ----------------------------------------------------------------------------------------------- envelope
def _turns(levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample indices of the empty (minimum) and full (maximum) points of each breath."""
    d = np.diff(levels)
    mins = np.nonzero((d[:-1] < 0) & (d[1:] >= 0))[0] + 1
    maxs = np.nonzero((d[:-1] > 0) & (d[1:] <= 0))[0] + 1
    return mins, maxs


@pytest.mark.parametrize(("pace", "frac"), [(6.0, 0.4), (10.0, 0.5), (4.5, 0.3)])
def test_envelope_period_and_inhale_share_follow_the_pace(pace: float, frac: float) -> None:
    sfreq = 200.0
    env = BreathEnvelope(sfreq)
    period_s = 60.0 / pace
    n = int(3.5 * period_s * sfreq)
    levels = blocks(lambda k: env.render(k, pace, frac), [int(0.05 * sfreq)] * (n // int(0.05 * sfreq)))
    mins, maxs = _turns(levels)
    # period within one sample (5 ms at 200 Hz)
    assert_allclose(np.diff(mins) / sfreq, period_s, atol=1.0 / sfreq)
    # inhale = from an empty point to the next full point
    for m in mins:
        nxt = maxs[maxs > m]
        if nxt.size:
            assert abs((nxt[0] - m) / sfreq - frac * period_s) <= 1.0 / sfreq
    assert levels.min() == pytest.approx(0.0, abs=1e-3) and levels.max() == pytest.approx(1.0, abs=1e-3)


def test_envelope_any_split_and_hidden_and_pause() -> None:
    a, b = BreathEnvelope(SFREQ), BreathEnvelope(SFREQ)
    whole = a.render(20000, 6.0, 0.4)
    parts = blocks(lambda k: b.render(k, 6.0, 0.4), [333, 4000, 1, 15666])
    assert_allclose(parts, whole, atol=1e-9)
    assert_allclose(a.render(10, math.nan, 0.4), REST_LEVEL)  # hidden: a quiet steady level
    assert a.cycles == 0.0
    a.render(4000, 6.0, 0.4)
    held = a.render(100, 6.0, 0.4, running=False)
    assert np.ptp(held) == 0.0  # pause holds the breath


def test_envelope_lock_converges_and_resyncs() -> None:
    env = BreathEnvelope(SFREQ)
    env.render(1, 6.0, 0.4)
    visual = 0.05  # visual pacer 0.05 cycle ahead (0.5 s at 6/min)
    for _ in range(80):  # 80 blocks of 0.1 s = 8 s = 4 lock time constants
        env.lock(visual, 6.0)
        env.render(800, 6.0, 0.4)
        visual += 6.0 / 60 * 0.1
    assert abs(visual - env.cycles) < 0.05 * 0.1  # error shrank at least tenfold
    env.lock(env.cycles + 0.4, 6.0)  # a large error (e.g. after a pause) is corrected at once
    assert env.cycles == pytest.approx(visual - 0.01 + 0.4, abs=0.02)


def test_envelope_rejects_a_bad_ratio() -> None:
    with pytest.raises(ValueError, match="'inhale_fraction'"):
        BreathEnvelope(SFREQ).render(10, 6.0, 1.0)


# ----------------------------------------------------------------------------------------------- synth
@pytest.mark.parametrize("sound", ["tone", "noise"])
def test_synth_is_click_free_across_blocks(sound: str) -> None:
    a = BreathSynth(sound, SFREQ, chimes="state")
    b = BreathSynth(sound, SFREQ, chimes="state")
    kw = dict(pace_brpm=6.0, inhale_fraction=0.4, volume=1.0)
    sizes = [1000, 17, 983, 22000]
    whole = a.render(24000, **kw)
    parts = blocks(lambda k: b.render(k, **kw), sizes)
    assert_allclose(parts, whole, atol=1e-9)  # block joins are invisible
    jumps = np.abs(np.diff(parts))
    joins = np.cumsum(sizes)[:-1] - 1
    assert np.all(jumps[joins] <= np.percentile(jumps, 99.9))  # a join is an ordinary sample step
    if sound == "tone":
        # |dx/dt| <= 2 pi sum(a_i f_i): peak amplitude 0.42, partials (1, 1.0032, 1.5, 2) x 196 Hz x 1.012
        bound = 2 * np.pi * 196.0 * 1.012 / SFREQ * 0.42 * (0.55 + 0.35 * 1.0032 + 0.17 * 1.5 + 0.18 * 2.0)
        assert np.max(jumps) <= bound * 1.01
    assert np.max(np.abs(parts)) <= 1.0


def test_synth_swells_with_the_inhale() -> None:
    synth = BreathSynth("tone", SFREQ)
    x = synth.render(int(10 * SFREQ), pace_brpm=6.0, inhale_fraction=0.4, volume=1.0)

    def rms(t0: float, t1: float) -> float:
        return float(np.sqrt(np.mean(x[int(t0 * SFREQ) : int(t1 * SFREQ)] ** 2)))

    assert rms(3.6, 4.4) > 2.5 * rms(9.2, 10.0)  # full lungs (4 s) far louder than empty (10 s)


def test_mute_and_volume_glide_without_clicks() -> None:
    synth = BreathSynth("tone", SFREQ)
    on = synth.render(4000, pace_brpm=6.0, volume=1.0)
    off = synth.render(4000, pace_brpm=6.0, volume=1.0, muted=True)
    x = np.concatenate([on, off])
    assert np.max(np.abs(np.diff(x))) < 0.05  # no step at the mute
    assert np.max(np.abs(off[-400:])) < 1e-6  # silent once the 30 ms glide is over
    assert np.max(np.abs(on[:5])) < 0.01  # fades in from silence at the very start


def test_chimes_state_and_breath_turns() -> None:
    quiet = BreathSynth("none", SFREQ, chimes="state")
    quiet.render(100, pace_brpm=6.0, volume=1.0)
    quiet.chime("ready")
    x = quiet.render(4000, pace_brpm=6.0, volume=1.0)
    assert np.max(np.abs(x)) > 0.02  # the chime rings over silence
    off = BreathSynth("none", SFREQ, chimes="none")
    off.chime("state")
    assert np.max(np.abs(off.render(4000, pace_brpm=6.0, volume=1.0))) == 0.0
    turns = BreathSynth("none", SFREQ, chimes="all")
    y = turns.render(int(5 * SFREQ), pace_brpm=6.0, inhale_fraction=0.4, volume=1.0)
    onset = np.nonzero(np.abs(y) > 1e-9)[0][0]
    assert abs(onset / SFREQ - 4.0) < 2.0 / SFREQ  # the exhale chime starts at 4 s, to the sample
    with pytest.raises(ValueError, match="'kind'"):
        quiet.chime("gong")


# ----------------------------------------------------------------------------------------------- player
def _info(t: float, pacer: BreathPacer) -> BreathInfo:
    return pacer.advance(t, 6.0, 0.4)


def test_player_callback_only_copies_from_the_queue() -> None:
    player = AudioPlayer("tone", open_device=False, block=256, sfreq=8000)
    pacer = BreathPacer()
    data = player.render_block(_info(0.0, pacer))
    assert len(data) == 256 * 2 * 2  # int16 stereo
    player._queue.put_nowait(data)
    out = bytearray(len(data))
    player._callback(None, memoryview(out))
    assert bytes(out) == data and player.underruns == 0
    player._callback(None, memoryview(out))  # empty queue: silence, counted
    assert bytes(out) == bytes(len(out)) and player.underruns == 1
    # device buffers of another size are served across block boundaries
    player._queue.put_nowait(data)
    player._queue.put_nowait(data)
    small = bytearray(300)
    player._callback(None, memoryview(small))
    assert bytes(small) == data[:300]
    player._callback(None, memoryview(small))
    assert bytes(small) == (data + data)[300:600]


def test_player_controls() -> None:
    player = AudioPlayer("noise", open_device=False, volume=0.3)
    assert not player.enabled and player.update(BreathInfo(0.0, False)) == 0
    player.set_volume(1.7)
    assert player.volume == 1.0
    player.set_muted(True)
    assert player.muted
    player.close()
    player.close()
    with pytest.raises(ValueError, match="'sound'"):
        AudioPlayer("drums", open_device=False)


def test_player_under_the_dummy_driver_fills_its_queue() -> None:
    # half a second of queue: the dummy driver drains it in real time, so a pause of the test
    # process between update() and the check cannot empty it
    player = AudioPlayer("tone", latency_s=0.5)
    try:
        if player.enabled:  # SDL_AUDIODRIVER=dummy (conftest)
            made = player.update(_info(0.0, BreathPacer()))
            assert made >= 0 and player.queued_s > 0
        else:  # no SDL audio at all on this machine: the player said why and stays silent
            assert player.error
    finally:
        player.close()


def test_player_degrades_silently_without_a_device(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import pygame._sdl2.audio as sdl_audio

    def no_device(*args: object, **kwargs: object) -> None:
        raise sdl_audio.error("No such audio device")

    monkeypatch.setattr(sdl_audio, "AudioDevice", no_device)
    with caplog.at_level(logging.WARNING, logger="feedback.audio"):
        player = AudioPlayer("tone")
    assert not player.enabled and "No such audio device" in player.error
    assert "audio disabled" in caplog.text
    assert player.update(BreathInfo(0.0, False)) == 0
    player.close()


OPEN_CLOSE_CHILD = """
import sys
from feedback.audio import AudioPlayer
from feedback.scene import BreathInfo
enabled = False
for _ in range(int(sys.argv[1])):
    player = AudioPlayer("tone", latency_s=0.01, block=64)  # a callback every 1.5 ms
    enabled = player.enabled
    player.update(BreathInfo(time=0.0, visible=False))
    player.close()
from feedback import audio
print("closed", "ctypes" if audio._SDL2 is not None else "pygame", "enabled" if enabled else "silent")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the GIL-free pause finds SDL via /proc")
def test_close_never_deadlocks_with_the_audio_callback(tmp_path: Path) -> None:
    """Closing while SDL's audio thread is in the Python callback once hung the process.

    pygame's ``AudioDevice.pause`` waited for SDL's device lock holding the GIL, while the audio
    thread held that lock waiting for the GIL.  Before the fix about one run in three of 300
    open/close cycles hung; the child runs 300 and is killed (SIGKILL: SDL catches SIGTERM)
    if it does not finish in time.
    """
    script = tmp_path / "child.py"
    script.write_text(OPEN_CLOSE_CHILD)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SDL_AUDIODRIVER": "dummy"}
    try:
        done = subprocess.run([sys.executable, str(script), "300"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("AudioPlayer open/close cycles hung: the pause/close deadlock is back")
    assert done.returncode == 0, done.stderr
    if "silent" in done.stdout:  # no SDL audio on this machine: nothing was opened or paused
        pytest.skip("no SDL audio device here: " + done.stderr[-200:])
    assert "closed ctypes enabled" in done.stdout, done.stdout + done.stderr
