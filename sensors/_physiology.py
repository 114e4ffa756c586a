"""Physiology of the simulated patient: profiles, events and the fixed-step integrator.

This private module holds everything of :class:`sensors.simulated.SimulatedPatient` that does
not depend on a sensor: the patient profiles (:class:`PatientProfile`, :data:`PROFILES`), the
event records (:class:`SimEvent`), the deterministic keyed random streams, the physiological
curves (baroreflex resonance, slow-breathing benefit, breath and pulse shapes) and
:class:`Physiology`, which integrates breathing, arousal and heart on a fixed 1/64 s step and
records the ground truth.

Determinism
-----------
Every random number is drawn from a generator keyed by ``(seed, stream tag, index)`` where the
index is a 1-s block, a breath number or a beat number, never from a shared sequential stream.
The integrator advances one fixed step at a time with plain Python floats, so its output does
not depend on how often it is asked to advance.

Arousal scale
-------------
``arousal`` is a unitless state from 0 to 1: 0 deeply relaxed (drowsy, eyes-closed meditation),
0.25 calm rest, 0.5 neutral and alert, 0.75 anxious, 1 panic or the peak of a startle.  It
raises heart rate, lowers heart-rate variability (RSA and slow HR wander), lowers EEG alpha,
raises EEG beta, blink and muscle-burst rates, and constricts skin vessels (smaller PPG pulses).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import numpy as np

from adaptive._checks import check_option, check_positive, check_range
from adaptive.types import FloatArray

logger = logging.getLogger(__name__)

__all__ = [
    "EVENT_DEFAULTS",
    "PROFILES",
    "STEP_HZ",
    "EventLog",
    "PatientProfile",
    "Physiology",
    "SimEvent",
    "blink_shape",
    "breath_shape",
    "keyed_rng",
    "ppg_pulse_shape",
    "rsa_resonance_gain",
    "slow_breathing_benefit",
]

#: Internal physiology step rate (Hz): states are integrated on a grid of 1/64 s.
STEP_HZ = 64
_DT = 1.0 / STEP_HZ
_TWO_PI = 2.0 * math.pi

# Tags that separate the keyed random streams.
TAG_PHYS, TAG_BREATH, TAG_BEAT, TAG_EVENTS, TAG_EEG, TAG_PPG, TAG_IMU, TAG_INIT, TAG_SCHED = range(1, 10)

_PHYS_BLOCK = 512  # per-step random numbers are drawn 512 steps (8 s) at a time
_EVENT_BLOCK_S = 8  # spontaneous events are drawn per 8-s block
_BREATHS_PER_KEY = 64  # per-breath random numbers are drawn 64 breaths at a time
_BEATS_PER_KEY = 256  # per-beat random numbers are drawn 256 beats at a time


def keyed_rng(seed: int, *key: int) -> np.random.Generator:
    """Return a generator that depends only on ``seed`` and ``key``.

    Parameters
    ----------
    seed : int
        The patient's seed (non-negative).
    *key : int
        Non-negative integers naming the stream and the block, breath or beat index.

    Returns
    -------
    rng : numpy.random.Generator
    """
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


# --------------------------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PatientProfile:
    """Physiological and sensor-contact parameters of one simulated patient.

    Defaults describe a healthy, compliant adult at rest; the named variants are in
    :data:`PROFILES`.  Build a variant with :func:`dataclasses.replace`.

    Parameters
    ----------
    name : str
        Short name, shown in stream metadata.
    description : str
        One line about the patient.
    resp_rate_brpm : float
        Spontaneous breathing rate in breaths/min (healthy adults at rest: 12-20).
    resp_rate_per_arousal_brpm : float
        Rise of the spontaneous rate per unit of arousal above baseline (breathing quickens
        with anxiety and slows as the patient calms, so calming carries over after pacing).
    resp_rate_cv : float
        Breath-to-breath variability: standard deviation of the intrinsic rate relative to its
        mean (spontaneous breathing: about 0.1-0.2 coefficient of variation of breath
        duration).  A follower's variability shrinks by ``1 - compliance`` while paced.
    resp_rate_tau_s : float
        Correlation time of that wander in s (about one to two breaths).
    inhale_fraction : float
        Own inspiratory fraction Ti/Ttot (about 0.4 at rest).
    sighs_per_hour : float
        Spontaneous sighs per hour (adults at rest: about 10-15).  A sigh is one breath with
        ``sigh_depth`` times the tidal volume that lasts 1/0.6 times as long.
    sigh_depth : float
        Tidal volume of a sigh relative to the breath it replaces (about 2-3).
    compliance : float
        0..1: fraction of the way from its own rate to the commanded pace that the intrinsic
        rate goes, scale of its inspiratory fraction following, and strength of its phase
        locking to the pacer.  0 ignores the pacer.
    follow_lag_s : float
        First-order time constant in s of the rate moving towards its target.
    min_followable_brpm : float
        Slowest rate the patient can breathe when paced, after adaptation.  The breathing
        frequency is never pushed below it by the pacer: a slower pace is aimed at (the rate
        goes towards this minimum) but the phase does not lock to it.
    min_followable_start_brpm : float or None
        Slowest followable rate at the start of pacing (``None``: same as
        ``min_followable_brpm``).  It relaxes to ``min_followable_brpm`` with
        ``min_followable_adapt_s`` over the time spent paced (anxious patients start high).
    min_followable_adapt_s : float
        Time constant of that adaptation in s of paced time.
    phase_lock_hz : float
        Phase-locking strength in Hz at compliance 1: the breathing frequency is pulled by
        ``compliance * phase_lock_hz * sin(2 pi (pacer phase - breath phase))``.  The rate
        locks to the pace when the intrinsic rate is within that many Hz (x60 brpm) of it.
    hr_bpm : float
        Heart rate at baseline arousal, without respiratory modulation.
    hr_per_arousal_bpm : float
        Heart-rate change for an arousal change of 1.
    rsa_resonance_bpm : float
        Peak-to-trough respiratory sinus arrhythmia at the resonance rate and arousal 0 (young
        healthy adults breathing at resonance: 10-25 bpm; lower in depression and with age).
        It falls with arousal as ``1 - 0.6 * arousal`` (vagal withdrawal).
    resonance_brpm : float
        Baroreflex resonance rate (about 6 breaths/min, 0.1 Hz; Vaschillo et al. 2002).
    resonance_q : float
        Sharpness of the resonance (see :func:`rsa_resonance_gain`).
    hr_lf_bpm : float
        Standard deviation of slow, non-respiratory heart-rate wander at arousal 0 (halved at
        arousal 1), correlation time 8 s.
    beat_jitter : float
        Standard deviation of the integral pulse frequency modulation threshold: beat-to-beat
        noise as a fraction of the interval.
    tachy_per_hour : float
        Spontaneous tachycardia episodes per hour.
    tachy_delta_bpm : float
        Heart-rate rise during an episode (approached with a 10 s time constant).
    tachy_duration_s : tuple of float
        Range of episode durations in s (uniform).
    tachy_first_s : float or None
        Session time of a first episode, so that a short session shows one (``None``: only
        random episodes).
    arousal : float
        Baseline arousal, 0..1 (see the module notes for the scale).
    arousal_tau_s : float
        Time constant in s of slow arousal changes (minutes): towards the relaxed target while
        breathing slowly, back to baseline otherwise.
    relax_depth : float
        How far below baseline the arousal target goes when breathing at resonance, fully
        phase-locked to the pacer (60 % of it for the same breathing without a pacer).
    arousal_sd : float
        Standard deviation of spontaneous arousal fluctuations (correlation time 60 s).
    startle_recovery_s : float
        Time constant in s of the decay of a startle's arousal jump.
    ppg_pulse_counts : float
        Systolic pulse amplitude on the reference optical channel in raw counts.
    ppg_noise_counts : float
        White sensor noise in counts (standard deviation), before quantisation to integers.
    ppg_riiv_counts : float
        Respiration-induced intensity variation: baseline change per tidal volume in counts.
    ppg_am_depth : float
        Respiration-induced amplitude variation: the pulse amplitude is scaled by
        ``1 - am_depth * (2 * breath shape - 1)``, smallest at end-inspiration.
    ppg_drift_counts : float
        Standard deviation of slow baseline drift (correlation time 40 s).
    ppg_vasoconstriction : float
        Relative pulse-amplitude drop per unit of arousal above baseline.
    pulse_delay_s : float
        Pulse arrival time from heart beat to the foot of the PPG pulse at the forehead.
        Must be at least 0.18 s (the pulse template starts 0.17 s before its foot at most).
    head_pitch_deg, head_roll_deg : float
        Mean head orientation; sets how gravity (1 g) splits over the accelerometer axes.
    breath_tilt_mg : float
        Head pitch per tidal volume, expressed as the accelerometer change it causes in mg.
    bcg_mg : float
        Ballistocardiographic head acceleration per beat in mg (biphasic, 0.25 s after the beat).
    sway_mrad : float
        Standard deviation of slow postural sway in pitch and roll in mrad (20 s correlation).
    accel_noise_mg : float
        Accelerometer white noise in mg.
    gyro_noise_dps : float
        Gyroscope white noise in deg/s.
    eeg_psd_1hz : float
        Background EEG power spectral density at 1 Hz in uV^2/Hz; the background falls as
        ``1 / f**eeg_exponent`` (fitted to Muse recordings: about 20 uV^2/Hz at 1 Hz, 1.0 at
        10 Hz, 0.15 at 40 Hz for a relaxed wearer).
    eeg_exponent : float
        Spectral exponent of the background (pink noise: 1).
    eeg_floor_psd : float
        White amplifier and contact noise floor in uV^2/Hz.
    alpha_hz : float
        Individual alpha peak frequency (8-12 Hz, typically about 10).
    alpha_uv : float
        Alpha RMS at TP9/TP10 at arousal 0; it scales as ``(1 - arousal) ** 1.5``.
    frontal_alpha_ratio : float
        Alpha amplitude at AF7/AF8 relative to TP9/TP10.
    beta_uv : float
        Beta (14-28 Hz) RMS at arousal 1 on every channel; it scales as ``arousal ** 1.5``.
    blinks_per_min : float
        Blink rate at arousal 0.5; it scales with ``0.5 + arousal``.
    blink_uv : tuple of float
        Range of blink amplitudes at AF7/AF8 in uV.
    muscle_per_min : float
        Muscle bursts per minute at arousal 0.5; scales with ``0.5 + arousal``.
    muscle_uv : tuple of float
        Range of burst RMS at TP9/TP10 in uV (40 % of it at AF7/AF8), 20-100 Hz.
    line_noise_uv : float
        Amplitude of mains interference.
    line_hz : float
        Mains frequency.
    motion_per_min : float
        Spontaneous head movements per minute.
    motion_duration_s : tuple of float
        Range of their durations in s.
    rail_per_min : float
        Spontaneous EEG saturation (lost contact) episodes per minute, on one or two random
        channels each.
    rail_duration_s : tuple of float
        Range of their durations in s.
    contact_noise : float
        Multiplier on the EEG noise floor and the PPG sensor noise (poor contact: > 1).
    """

    name: str = "custom"
    description: str = ""
    # breathing
    resp_rate_brpm: float = 14.0
    resp_rate_per_arousal_brpm: float = 6.0
    resp_rate_cv: float = 0.1
    resp_rate_tau_s: float = 8.0
    inhale_fraction: float = 0.42
    sighs_per_hour: float = 12.0
    sigh_depth: float = 2.5
    compliance: float = 0.95
    follow_lag_s: float = 10.0
    min_followable_brpm: float = 4.5
    min_followable_start_brpm: float | None = None
    min_followable_adapt_s: float = 180.0
    phase_lock_hz: float = 0.03
    # heart
    hr_bpm: float = 68.0
    hr_per_arousal_bpm: float = 30.0
    rsa_resonance_bpm: float = 16.0
    resonance_brpm: float = 6.0
    resonance_q: float = 1.5
    hr_lf_bpm: float = 1.5
    beat_jitter: float = 0.008
    tachy_per_hour: float = 0.0
    tachy_delta_bpm: float = 25.0
    tachy_duration_s: tuple[float, float] = (60.0, 180.0)
    tachy_first_s: float | None = None
    # arousal
    arousal: float = 0.45
    arousal_tau_s: float = 240.0
    relax_depth: float = 0.3
    arousal_sd: float = 0.03
    startle_recovery_s: float = 45.0
    # PPG
    ppg_pulse_counts: float = 400.0
    ppg_noise_counts: float = 10.0
    ppg_riiv_counts: float = 120.0
    ppg_am_depth: float = 0.12
    ppg_drift_counts: float = 100.0
    ppg_vasoconstriction: float = 0.4
    pulse_delay_s: float = 0.2
    # IMU
    head_pitch_deg: float = 15.0
    head_roll_deg: float = -4.0
    breath_tilt_mg: float = 3.0
    bcg_mg: float = 1.0
    sway_mrad: float = 3.0
    accel_noise_mg: float = 1.5
    gyro_noise_dps: float = 0.6
    # EEG
    eeg_psd_1hz: float = 20.0
    eeg_exponent: float = 1.3
    eeg_floor_psd: float = 0.02
    alpha_hz: float = 10.0
    alpha_uv: float = 7.0
    frontal_alpha_ratio: float = 0.35
    beta_uv: float = 3.0
    blinks_per_min: float = 12.0
    blink_uv: tuple[float, float] = (100.0, 200.0)
    muscle_per_min: float = 0.5
    muscle_uv: tuple[float, float] = (10.0, 40.0)
    line_noise_uv: float = 0.5
    line_hz: float = 50.0
    # spontaneous artefacts
    motion_per_min: float = 0.1
    motion_duration_s: tuple[float, float] = (1.0, 4.0)
    rail_per_min: float = 0.0
    rail_duration_s: tuple[float, float] = (2.0, 10.0)
    contact_noise: float = 1.0

    def __post_init__(self) -> None:
        fix = "Build profiles with dataclasses.replace(PROFILES['compliant'], ...)."
        fractions = ("compliance", "inhale_fraction", "arousal", "ppg_am_depth", "frontal_alpha_ratio")
        for name in fractions:
            check_range(name, getattr(self, name), 0.0, 1.0, fix)
        check_range("inhale_fraction", self.inhale_fraction, 0.1, 0.9, fix)
        check_range("resp_rate_brpm", self.resp_rate_brpm, 2.0, 60.0, fix)
        check_range("min_followable_brpm", self.min_followable_brpm, 1.0, 60.0, fix)
        if self.min_followable_start_brpm is not None:
            check_range("min_followable_start_brpm", self.min_followable_start_brpm, 1.0, 60.0, fix)
        check_range("hr_bpm", self.hr_bpm, 25.0, 220.0, fix)
        check_range("alpha_hz", self.alpha_hz, 7.0, 13.0, fix)
        check_range("resonance_brpm", self.resonance_brpm, 3.0, 12.0, fix)
        check_range("pulse_delay_s", self.pulse_delay_s, 0.18, 0.5, "The PPG pulse template needs it.")
        check_range("line_hz", self.line_hz, 40.0, 70.0, fix)
        check_range("eeg_exponent", self.eeg_exponent, 0.0, 2.5, fix)
        for name in (
            "resp_rate_tau_s", "sigh_depth", "follow_lag_s", "min_followable_adapt_s", "resonance_q",
            "arousal_tau_s", "startle_recovery_s", "contact_noise", "eeg_psd_1hz",
        ):
            check_positive(name, getattr(self, name), fix)
        non_negative = (
            "resp_rate_per_arousal_brpm", "resp_rate_cv", "sighs_per_hour", "phase_lock_hz",
            "hr_per_arousal_bpm", "rsa_resonance_bpm",
            "hr_lf_bpm", "beat_jitter", "tachy_per_hour", "tachy_delta_bpm", "relax_depth", "arousal_sd",
            "ppg_pulse_counts", "ppg_noise_counts", "ppg_riiv_counts", "ppg_drift_counts",
            "ppg_vasoconstriction", "breath_tilt_mg", "bcg_mg", "sway_mrad", "accel_noise_mg",
            "gyro_noise_dps", "eeg_floor_psd", "alpha_uv", "beta_uv", "blinks_per_min", "muscle_per_min",
            "line_noise_uv", "motion_per_min", "rail_per_min",
        )
        for name in non_negative:
            check_range(name, getattr(self, name), 0.0, math.inf, fix)
        check_range("resp_rate_cv", self.resp_rate_cv, 0.0, 0.5, fix)
        check_range("beat_jitter", self.beat_jitter, 0.0, 0.1, fix)
        for name in ("tachy_duration_s", "blink_uv", "muscle_uv", "motion_duration_s", "rail_duration_s"):
            lo, hi = getattr(self, name)
            if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
                raise ValueError(
                    f"Invalid value for {name!r}: expected a (low, high) range with 0 < low <= high, "
                    f"got {(lo, hi)!r}. {fix}"
                )
        if self.tachy_first_s is not None:
            check_range("tachy_first_s", self.tachy_first_s, 0.0, math.inf, fix)

    @property
    def min_followable_start(self) -> float:
        """Slowest followable rate at the start of pacing in brpm."""
        if self.min_followable_start_brpm is None:
            return self.min_followable_brpm
        return max(self.min_followable_start_brpm, self.min_followable_brpm)


def _make_profiles() -> Mapping[str, PatientProfile]:
    base = PatientProfile()
    profiles = {
        "compliant": replace(
            base, name="compliant", description="Healthy adult, follows the pacer closely, modest arousal."
        ),
        "anxious": replace(
            base,
            name="anxious",
            description="High arousal and heart rate; fast shallow breathing; follows slowly and "
            "cannot breathe slowly at first.",
            resp_rate_brpm=18.0,
            resp_rate_cv=0.15,
            sighs_per_hour=20.0,
            compliance=0.9,
            follow_lag_s=45.0,
            min_followable_brpm=6.5,
            min_followable_start_brpm=10.0,
            min_followable_adapt_s=300.0,
            hr_bpm=92.0,
            rsa_resonance_bpm=10.0,
            arousal=0.75,
            relax_depth=0.25,
            arousal_sd=0.04,
            blinks_per_min=22.0,
            muscle_per_min=2.0,
            ppg_pulse_counts=300.0,
        ),
        "non-follower": replace(
            base,
            name="non-follower",
            description="Ignores the pacer and keeps breathing at its own rate.",
            resp_rate_brpm=15.0,
            compliance=0.0,
            arousal=0.5,
            hr_bpm=72.0,
        ),
        "noisy-signal": replace(
            base,
            name="noisy-signal",
            description="Poor contact: frequent head movement, EEG railing, weak and noisy PPG.",
            compliance=0.7,
            follow_lag_s=20.0,
            hr_bpm=74.0,
            ppg_pulse_counts=150.0,
            ppg_noise_counts=40.0,
            ppg_drift_counts=300.0,
            muscle_per_min=4.0,
            blinks_per_min=20.0,
            motion_per_min=5.0,
            motion_duration_s=(2.0, 8.0),
            rail_per_min=2.0,
            rail_duration_s=(3.0, 10.0),
            contact_noise=4.0,
            line_noise_uv=5.0,
            accel_noise_mg=3.0,
        ),
        "tachycardic": replace(
            base,
            name="tachycardic",
            description="Resting heart rate about 120 bpm with episodes above 140 bpm (first at 60 s).",
            compliance=0.85,
            follow_lag_s=15.0,
            hr_bpm=122.0,
            rsa_resonance_bpm=6.0,
            hr_lf_bpm=1.0,
            arousal=0.65,
            tachy_per_hour=10.0,
            tachy_delta_bpm=25.0,
            tachy_duration_s=(60.0, 180.0),
            tachy_first_s=60.0,
            ppg_pulse_counts=300.0,
        ),
    }
    return MappingProxyType(profiles)


#: Named patient profiles (read-only): ``compliant``, ``anxious``, ``non-follower``,
#: ``noisy-signal`` and ``tachycardic``.
PROFILES: Mapping[str, PatientProfile] = _make_profiles()


# --------------------------------------------------------------------------------------------
# Physiological curves
# --------------------------------------------------------------------------------------------


def rsa_resonance_gain(
    rate_brpm: float | FloatArray, resonance_brpm: float = 6.0, q: float = 1.5
) -> FloatArray:
    """Relative RSA amplitude versus breathing rate, 1 at the resonance peak.

    A band-pass resonance of the baroreflex loop (peak exactly at ``resonance_brpm``) plus a
    25 % vagal component that falls off above 10 breaths/min.  With the defaults the gain is
    1.0 at 6, 0.57 at 3, 0.56 at 10, 0.33 at 15 and 0.17 at 25 breaths/min: the heart-rate
    swing at 6/min is about 3 times the swing at 15/min, as in resonance-breathing studies
    (Vaschillo et al. 2002; Lehrer et al. 2000).

    Parameters
    ----------
    rate_brpm : float or array
        Breathing rate in breaths/min.
    resonance_brpm : float
        Resonance rate.
    q : float
        Quality factor of the band-pass term.

    Returns
    -------
    gain : array
        Same shape as ``rate_brpm``.
    """
    r = np.asarray(rate_brpm, dtype=np.float64)
    return np.asarray(_rsa_gain_raw(r, resonance_brpm, q) / _rsa_gain_peak(resonance_brpm, q))


def _rsa_gain_raw(r: FloatArray | float, res: float, q: float) -> FloatArray:
    x = np.maximum(np.asarray(r, dtype=np.float64), 0.1) / res
    band = (x / q) / np.sqrt((1.0 - x * x) ** 2 + (x / q) ** 2)
    vagal = 1.0 / (1.0 + (np.asarray(r) / 10.0) ** 2)
    return np.asarray(0.75 * band + 0.25 * vagal)


_PEAK_CACHE: dict[tuple[float, float], float] = {}


def _rsa_gain_peak(res: float, q: float) -> float:
    key = (res, q)
    if key not in _PEAK_CACHE:
        grid = np.linspace(1.0, 40.0, 3901)
        _PEAK_CACHE[key] = float(np.max(_rsa_gain_raw(grid, res, q)))
    return _PEAK_CACHE[key]


def slow_breathing_benefit(rate_brpm: float, resonance_brpm: float = 6.0) -> float:
    """How much breathing at ``rate_brpm`` calms, 0..1 (1 at resonance).

    A log-Gaussian around the resonance rate: 0.66 at 8, 0.44 at 4, 0.09 at 12 and 0.02 at
    15 breaths/min.  Slow breathing near 0.1 Hz is what lowers arousal in heart-rate-variability
    biofeedback.

    Parameters
    ----------
    rate_brpm : float
        Smoothed breathing rate.
    resonance_brpm : float
        Resonance rate.

    Returns
    -------
    benefit : float
    """
    z = math.log(max(rate_brpm, 0.1) / resonance_brpm) / 0.45
    return math.exp(-z * z)


def breath_shape(u: float, inhale_fraction: float) -> float:
    """Normalised lung volume, 0 at the start of inhale, 1 at end-inspiration.

    Raised-cosine inhale over ``[0, inhale_fraction)`` and raised-cosine exhale after it.

    Parameters
    ----------
    u : float
        Breath phase, 0..1.
    inhale_fraction : float
        Ti/Ttot of the breath.

    Returns
    -------
    shape : float
    """
    if u < inhale_fraction:
        return 0.5 - 0.5 * math.cos(math.pi * u / inhale_fraction)
    return 0.5 + 0.5 * math.cos(math.pi * (u - inhale_fraction) / (1.0 - inhale_fraction))


def _asym_gauss(x: FloatArray, mu: float, sd_left: float, sd_right: float) -> FloatArray:
    sd = np.where(x < mu, sd_left, sd_right)
    return np.asarray(np.exp(-0.5 * ((x - mu) / sd) ** 2))


#: Support of the pulse template relative to its foot, in units of the template scale.
PULSE_SUPPORT = (-0.12, 0.95)


def ppg_pulse_shape(tau_s: FloatArray, scale: FloatArray) -> FloatArray:
    """Blood-volume pulse template, peak about 1, as a function of time since the pulse foot.

    Systolic wave (fast upstroke, 0.13 s to peak), dicrotic notch at about 0.30 s and a
    diastolic (reflected) wave at 0.38 s with 45 % of the systolic height, then decay to zero by
    about 0.8 s.  All times are multiplied by ``scale`` (``sqrt(IBI / 0.857 s)`` clipped to
    0.55..1.4: the pulse narrows less than the beat interval at high heart rate).

    Parameters
    ----------
    tau_s : array
        Time since the pulse foot in s.
    scale : array
        Time scale, broadcastable to ``tau_s``.

    Returns
    -------
    pulse : array
        Same shape as ``tau_s``; zero outside the support.
    """
    x = np.asarray(tau_s) / np.asarray(scale)
    inside = (x > PULSE_SUPPORT[0]) & (x < PULSE_SUPPORT[1])
    shape = _asym_gauss(x, 0.13, 0.05, 0.08) + 0.45 * _asym_gauss(x, 0.38, 0.07, 0.13)
    return np.asarray(np.where(inside, shape, 0.0))


def blink_shape(x: FloatArray) -> FloatArray:
    """Blink potential over its duration, ``x`` from 0 to 1; peak 1 at ``x = 0.35``.

    Parameters
    ----------
    x : array
        Time since blink onset divided by the blink duration.

    Returns
    -------
    shape : array
        Zero outside ``[0, 1]``.
    """
    x = np.asarray(x, dtype=np.float64)
    rise = 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 0.35) / 0.35)
    fall = 0.5 + 0.5 * np.cos(np.pi * np.clip(x - 0.35, 0.0, 0.65) / 0.65)
    out = np.where(x < 0.35, rise, fall)
    return np.asarray(np.where((x >= 0.0) & (x <= 1.0), out, 0.0))


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------

EventParam = float | str | tuple[str, ...] | None

_ALL_KINDS = ("eeg", "ppg", "accel", "gyro")

#: Event kinds and their parameters with defaults.
#:
#: * ``startle``: arousal jumps by ``amount`` (decays with the profile's ``startle_recovery_s``;
#:   a quarter of it lingers in the slow arousal), with a reflex blink and a 0.6 s head jerk.
#: * ``motion``: head movement: large accelerometer/gyroscope swings, PPG baseline shifts of
#:   about 5 % of the optical level and slow EEG swings of about 150 uV, times ``strength``.
#: * ``saturation``: the listed ``streams`` sit at a rail (``level`` ``"high"`` or ``"low"``);
#:   ``channels`` (names) restricts it, ``None`` means every channel.
#: * ``dropout``: the listed ``streams`` deliver no samples at all (a gap in time, like a lost
#:   Bluetooth link).
#: * ``nan``: the listed ``streams`` deliver NaN samples.
#: * ``blink_burst``: blinks at ``rate_hz``.
#: * ``tachycardia``: heart rate rises by ``delta_bpm``.
EVENT_DEFAULTS: Mapping[str, Mapping[str, EventParam]] = MappingProxyType(
    {
        "startle": MappingProxyType({"amount": 0.4}),
        "motion": MappingProxyType({"strength": 1.0}),
        "saturation": MappingProxyType({"streams": ("eeg", "ppg"), "level": "high", "channels": None}),
        "dropout": MappingProxyType({"streams": _ALL_KINDS}),
        "nan": MappingProxyType({"streams": _ALL_KINDS}),
        "blink_burst": MappingProxyType({"rate_hz": 1.0}),
        "tachycardia": MappingProxyType({"delta_bpm": 25.0}),
    }
)


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One event in the simulated session.

    Parameters
    ----------
    kind : str
        One of :data:`EVENT_DEFAULTS`.
    start_s : float
        Session time of the start in s.
    duration_s : float
        Duration in s (0 for a startle).
    params : mapping
        Parameters, defaults filled in.
    origin : str
        ``"scheduled"`` (by :meth:`SimulatedPatient.schedule`) or ``"profile"`` (spontaneous).
    serial : int
        Order of creation among scheduled events (keys the event's random numbers).
    """

    kind: str
    start_s: float
    duration_s: float
    params: Mapping[str, EventParam] = field(default_factory=dict)
    origin: str = "scheduled"
    serial: int = 0

    @property
    def end_s(self) -> float:
        """Session time of the end in s."""
        return self.start_s + self.duration_s

    def streams(self) -> tuple[str, ...]:
        """Signal kinds the event touches (all four unless it has a ``streams`` parameter)."""
        s = self.params.get("streams")
        return tuple(s) if isinstance(s, tuple) else _ALL_KINDS

    def param(self, name: str) -> float:
        """Return numeric parameter ``name``."""
        value = self.params[name]
        assert isinstance(value, (int, float))
        return float(value)


def make_event(kind: str, start_s: float, duration_s: float, params: Mapping[str, object],
               origin: str = "scheduled", serial: int = 0) -> SimEvent:
    """Validate and build a :class:`SimEvent` (defaults filled in).

    Raises
    ------
    ValueError
        Unknown kind or parameter, or a parameter of the wrong type or range.
    """
    check_option("kind", kind, list(EVENT_DEFAULTS), "See sensors.simulated.EVENT_DEFAULTS.")
    check_range("at_s", start_s, 0.0, math.inf, "Event times are session seconds from 0.")
    check_range("duration_s", duration_s, 0.0, 86400.0, "Give the duration in seconds.")
    defaults = EVENT_DEFAULTS[kind]
    out: dict[str, EventParam] = dict(defaults)
    for name, value in params.items():
        check_option(
            f"{kind} parameter", name, list(defaults), f"Parameters of {kind!r}: {', '.join(defaults)}."
        )
        if name == "streams":
            if isinstance(value, str):
                value = (value,)
            if not isinstance(value, (tuple, list)) or not value:
                raise ValueError(
                    f"Invalid value for 'streams': expected a non-empty tuple of kinds, got {value!r}."
                )
            for s in value:
                check_option("streams", str(s), _ALL_KINDS)
            out[name] = tuple(str(s) for s in value)
        elif name == "channels":
            if value is None:
                out[name] = None
            else:
                if isinstance(value, str):
                    value = (value,)
                if not isinstance(value, (tuple, list)):
                    raise ValueError(f"Invalid value for 'channels': expected channel names, got {value!r}.")
                out[name] = tuple(str(c) for c in value)
        elif name == "level":
            check_option("level", value, ["high", "low"])
            out[name] = str(value)
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"Invalid value for {name!r}: expected a number, got {value!r}.")
            out[name] = check_range(name, float(value), 0.0, 1000.0)
    if kind == "startle":
        duration_s = 0.0
    return SimEvent(kind, float(start_s), float(duration_s), MappingProxyType(out), origin, serial)


class EventLog:
    """Scheduled and spontaneous events, generated lazily per 8-s block.

    Spontaneous events (head movements, EEG railing, tachycardia episodes from the profile)
    and blink / muscle-burst candidates are drawn per block from generators keyed by the block
    index, so they do not depend on when they are asked for.  Blink and muscle candidates are
    drawn at the highest possible rate and kept with probability ``(0.5 + arousal) / 1.5``
    (thinning), which the caller decides once the arousal at the candidate time is known.

    Parameters
    ----------
    profile : PatientProfile
    seed : int
    eeg_ch_names : tuple of str
        EEG channel names (railing picks channels among them).
    """

    def __init__(self, profile: PatientProfile, seed: int, eeg_ch_names: tuple[str, ...]) -> None:
        self._p = profile
        self._seed = seed
        self._eeg_names = eeg_ch_names
        self.events: list[SimEvent] = []
        self._n_blocks = 0  # blocks [0, n_blocks) generated
        self._n_scheduled = 0
        # candidates: times, durations, amplitudes, acceptance uniforms
        self._blink: list[list[float]] = [[], [], [], []]
        self._muscle: list[list[float]] = [[], [], [], []]
        self._arr_cache: dict[str, tuple[int, tuple[FloatArray, ...]]] = {}
        if profile.tachy_first_s is not None:
            rng = keyed_rng(seed, TAG_EVENTS, 10**9)
            dur = float(rng.uniform(*profile.tachy_duration_s))
            self.events.append(
                make_event("tachycardia", profile.tachy_first_s, dur,
                           {"delta_bpm": profile.tachy_delta_bpm}, origin="profile")
            )

    @property
    def max_duration_s(self) -> float:
        """Longest event so far (bounds look-back searches)."""
        return max((e.duration_s for e in self.events), default=0.0)

    def add_scheduled(
        self, kind: str, start_s: float, duration_s: float, params: Mapping[str, object]
    ) -> SimEvent:
        """Validate, store and return a scheduled event (plus its startle companions)."""
        ev = make_event(kind, start_s, duration_s, params, "scheduled", self._n_scheduled)
        self._n_scheduled += 1
        self.events.append(ev)
        if kind == "startle":
            self.events.append(make_event("motion", start_s, 0.6, {"strength": 0.3}, "startle", ev.serial))
            self._add_blink(start_s + 0.06, 0.3, 180.0, accept=True)
        elif kind == "blink_burst" and duration_s > 0:
            rng = keyed_rng(self._seed, TAG_SCHED, ev.serial)
            rate = ev.param("rate_hz")
            n = int(rng.poisson(rate * duration_s))
            times = np.sort(rng.uniform(start_s, start_s + duration_s, n))
            lo, hi = self._p.blink_uv
            for t in times:
                dur, amp = float(rng.uniform(0.25, 0.4)), float(rng.uniform(lo, hi))
                self._add_blink(float(t), dur, amp, accept=True)
        logger.info("SimulatedPatient: scheduled %s at %.3f s for %.3f s %s", kind, start_s, duration_s,
                    dict(ev.params))
        return ev

    def _add_blink(self, t: float, dur: float, amp: float, accept: bool) -> None:
        # Scheduled blinks go into the same lists; the lists are re-sorted when read.
        for lst, v in zip(self._blink, (t, dur, amp, -1.0 if accept else 2.0), strict=True):
            lst.append(v)
        self._arr_cache.pop("blink", None)

    def ensure(self, t_end: float) -> None:
        """Generate the spontaneous events of every block that starts before ``t_end``."""
        last = int(math.floor(t_end / _EVENT_BLOCK_S)) + 1
        p = self._p
        L = float(_EVENT_BLOCK_S)
        while self._n_blocks < last:
            b = self._n_blocks
            rng = keyed_rng(self._seed, TAG_EVENTS, b)
            t0 = b * L
            # spontaneous head movements
            for _ in range(int(rng.poisson(L * p.motion_per_min / 60.0))):
                self.events.append(make_event(
                    "motion", t0 + L * float(rng.uniform()), float(rng.uniform(*p.motion_duration_s)),
                    {"strength": float(rng.uniform(0.5, 1.5))}, "profile"))
            for _ in range(int(rng.poisson(L * p.rail_per_min / 60.0))):
                n_ch = 1 + int(rng.uniform() < 0.4)
                chans = tuple(str(c) for c in rng.choice(self._eeg_names, size=n_ch, replace=False))
                self.events.append(make_event(
                    "saturation", t0 + L * float(rng.uniform()), float(rng.uniform(*p.rail_duration_s)),
                    {"streams": ("eeg",), "channels": chans,
                     "level": "high" if rng.uniform() < 0.5 else "low"},
                    "profile"))
            for _ in range(int(rng.poisson(L * p.tachy_per_hour / 3600.0))):
                self.events.append(make_event(
                    "tachycardia", t0 + L * float(rng.uniform()), float(rng.uniform(*p.tachy_duration_s)),
                    {"delta_bpm": p.tachy_delta_bpm}, "profile"))
            # blink and muscle candidates at 1.5 times the nominal rate (thinned later)
            n = int(rng.poisson(L * 1.5 * p.blinks_per_min / 60.0))
            for _ in range(n):
                self._blink[0].append(t0 + L * float(rng.uniform()))
                self._blink[1].append(float(rng.uniform(0.25, 0.4)))
                self._blink[2].append(float(rng.uniform(*p.blink_uv)))
                self._blink[3].append(float(rng.uniform()))
            n = int(rng.poisson(L * 1.5 * p.muscle_per_min / 60.0))
            for _ in range(n):
                self._muscle[0].append(t0 + L * float(rng.uniform()))
                self._muscle[1].append(float(rng.uniform(0.5, 2.0)))
                self._muscle[2].append(float(rng.uniform(*p.muscle_uv)))
                self._muscle[3].append(float(rng.uniform()))
            self._arr_cache.clear()
            self._n_blocks += 1

    def candidates(self, which: str) -> tuple[FloatArray, ...]:
        """Return (times, durations, amplitudes, acceptance uniforms) sorted by time.

        An acceptance value below 0 means "always kept" (scheduled blinks).
        """
        lists = self._blink if which == "blink" else self._muscle
        cached = self._arr_cache.get(which)
        if cached is not None and cached[0] == len(lists[0]):
            return cached[1]
        arrs = tuple(np.asarray(x, dtype=np.float64) for x in lists)
        order = np.argsort(arrs[0], kind="stable")
        out = tuple(a[order] for a in arrs)
        self._arr_cache[which] = (len(lists[0]), out)
        return out

    def overlapping(self, t0: float, t1: float, kinds: tuple[str, ...]) -> list[SimEvent]:
        """Events of ``kinds`` overlapping ``[t0, t1]``."""
        return [e for e in self.events if e.kind in kinds and e.start_s <= t1 and e.end_s >= t0]


# --------------------------------------------------------------------------------------------
# The integrator
# --------------------------------------------------------------------------------------------

#: Fields recorded at every physiology step (time ``k / STEP_HZ``).
RECORD_FIELDS = (
    "arousal", "breath_phase", "resp_rate_brpm", "breath_volume", "breath_shape", "hr_bpm", "pace_brpm",
    "pacer_phase", "rsa_amplitude_bpm", "following", "intrinsic_rate_brpm",
)


class _Growable:
    """A float64 vector that grows by doubling."""

    def __init__(self, capacity: int = 4096) -> None:
        self._a = np.empty(capacity)
        self.n = 0

    def extend(self, values: list[float]) -> None:
        m = len(values)
        if self.n + m > self._a.size:
            new = np.empty(max(2 * self._a.size, self.n + m))
            new[: self.n] = self._a[: self.n]
            self._a = new
        self._a[self.n: self.n + m] = values
        self.n += m

    @property
    def view(self) -> FloatArray:
        return self._a[: self.n]


@dataclass(slots=True)
class _PaceCommand:
    step: int
    pace_brpm: float  # NaN: no pacer
    inhale_fraction: float


class Physiology:
    """Breathing, arousal and heart of one patient, integrated on a fixed 1/64 s step.

    Parameters
    ----------
    profile : PatientProfile
    seed : int
    events : EventLog

    Notes
    -----
    ``records[name].view[k]`` is the state at session time ``k / 64`` s.  A pace command
    stored with :meth:`command` at step ``k`` governs the transition from step ``k`` to
    ``k + 1`` and later ones.
    """

    def __init__(self, profile: PatientProfile, seed: int, events: EventLog) -> None:
        self.p = profile
        self._seed = seed
        self._events = events
        self.records: dict[str, _Growable] = {name: _Growable() for name in RECORD_FIELDS}
        self.beat_times = _Growable(1024)
        self.beat_periods = _Growable(1024)  # 60 / HR at the beat, s
        self.beat_amps = _Growable(1024)  # relative pulse amplitude
        self.breath_onsets = _Growable(256)
        self._commands: list[_PaceCommand] = []
        self._k = 0  # records exist for steps [0, k]
        self._noise_block = -1
        self._noise: list[list[float]] = []
        self._breath_key = -1
        self._breath_rand: list[list[float]] = []
        self._beat_key = -1
        self._beat_rand: list[list[float]] = []
        p = profile
        rng = keyed_rng(seed, TAG_INIT)
        init = rng.standard_normal(3)
        s: dict[str, float] = {}
        s["xr"], s["xa"], s["xh"] = (float(v) for v in init)
        s["phase_b"] = float(rng.uniform())
        s["theta"] = float(rng.uniform())
        s["phase_p"] = math.nan
        s["pace"] = math.nan
        s["cmd_ie"] = 0.4
        s["t_paced"] = 0.0
        s["r"] = p.resp_rate_brpm * (1.0 + p.resp_rate_cv * s["xr"])
        s["rate_s"] = p.resp_rate_brpm
        s["L"] = 0.0
        s["a_slow"] = p.arousal
        s["a_st"] = 0.0
        s["tach"] = 0.0
        s["depth"] = 1.0
        s["ie"] = p.inhale_fraction
        s["sigh"] = 0.0
        s["n_breath"] = 0.0
        s["n_beat"] = 0.0
        s["thr"] = 1.0
        self._s = s
        a0 = min(max(p.arousal + p.arousal_sd * s["xa"], 0.0), 1.0)
        s["a"] = a0
        shape = breath_shape(s["phase_b"], s["ie"])
        rsa = self._rsa_amp(a0, s["rate_s"])
        hr = p.hr_bpm + p.hr_per_arousal_bpm * (a0 - p.arousal) + rsa * (shape - 0.5)
        first = {
            "arousal": a0, "breath_phase": s["phase_b"], "resp_rate_brpm": s["r"], "breath_volume": shape,
            "breath_shape": shape, "hr_bpm": hr, "pace_brpm": math.nan, "pacer_phase": math.nan,
            "rsa_amplitude_bpm": rsa, "following": 0.0, "intrinsic_rate_brpm": s["r"],
        }
        for name in RECORD_FIELDS:
            self.records[name].extend([first[name]])

    @property
    def n_steps(self) -> int:
        """Index of the last recorded step."""
        return self._k

    def command(self, pace_brpm: float | None, inhale_fraction: float) -> int:
        """Store a pace command effective from the current last step; return that step."""
        pace = math.nan if pace_brpm is None else float(pace_brpm)
        self._commands.append(_PaceCommand(self._k, pace, float(inhale_fraction)))
        return self._k

    def _rsa_amp(self, arousal: float, rate_s: float) -> float:
        p = self.p
        gain = float(rsa_resonance_gain(rate_s, p.resonance_brpm, p.resonance_q))
        return p.rsa_resonance_bpm * (1.0 - 0.6 * arousal) * gain

    def _phys_noise(self, block: int) -> list[list[float]]:
        if block != self._noise_block:
            self._noise = keyed_rng(self._seed, TAG_PHYS, block).standard_normal((3, _PHYS_BLOCK)).tolist()
            self._noise_block = block
        return self._noise

    def _breath_random(self, n: int) -> tuple[float, float]:
        key = n // _BREATHS_PER_KEY
        if key != self._breath_key:
            rng = keyed_rng(self._seed, TAG_BREATH, key)
            self._breath_rand = [rng.standard_normal(_BREATHS_PER_KEY).tolist(),
                                 rng.uniform(size=_BREATHS_PER_KEY).tolist()]
            self._breath_key = key
        i = n % _BREATHS_PER_KEY
        return self._breath_rand[0][i], self._breath_rand[1][i]

    def _beat_random(self, n: int) -> tuple[float, float]:
        key = n // _BEATS_PER_KEY
        if key != self._beat_key:
            rng = keyed_rng(self._seed, TAG_BEAT, key)
            self._beat_rand = rng.standard_normal((2, _BEATS_PER_KEY)).tolist()
            self._beat_key = key
        i = n % _BEATS_PER_KEY
        return self._beat_rand[0][i], self._beat_rand[1][i]

    def integrate(self, k_end: int) -> None:  # noqa: C901, PLR0915 - one flat loop is the fast form
        """Advance the state so that records exist for every step up to ``k_end``."""
        k0 = self._k
        if k_end <= k0:
            return
        p = self.p
        dt = _DT
        self._events.ensure((k_end + 1) * dt)
        # events that act on the physiology, by step
        startles = sorted(
            (max(math.ceil(e.start_s * STEP_HZ - 1e-9), 0), e.param("amount"))
            for e in self._events.overlapping(k0 * dt - 1.0, k_end * dt, ("startle",))
        )
        startles = [s for s in startles if k0 <= s[0] < k_end]
        tachy = [
            (e.start_s, e.end_s, e.param("delta_bpm"))
            for e in self._events.overlapping(k0 * dt, k_end * dt, ("tachycardia",))
        ]
        cmds = sorted((c for c in self._commands if c.step < k_end), key=lambda c: c.step)
        ci = 0
        si = 0
        s = self._s
        # state to locals
        xr, xa, xh = s["xr"], s["xa"], s["xh"]
        phase_b, theta, phase_p = s["phase_b"], s["theta"], s["phase_p"]
        pace, cmd_ie, t_paced = s["pace"], s["cmd_ie"], s["t_paced"]
        r, rate_s, follow = s["r"], s["rate_s"], s["L"]
        a_slow, a_st, tach = s["a_slow"], s["a_st"], s["tach"]
        depth, ie, sigh = s["depth"], s["ie"], s["sigh"]
        n_breath, n_beat, thr = int(s["n_breath"]), int(s["n_beat"]), s["thr"]
        a = s["a"]
        # constants
        rate0 = p.resp_rate_brpm
        rpa = p.resp_rate_per_arousal_brpm
        cv = p.resp_rate_cv
        er = math.exp(-dt / p.resp_rate_tau_s)
        sr = math.sqrt(1.0 - er * er)
        ea = math.exp(-dt / 60.0)
        sa = math.sqrt(1.0 - ea * ea)
        eh = math.exp(-dt / 8.0)
        sh = math.sqrt(1.0 - eh * eh)
        comp = p.compliance
        lock = comp * p.phase_lock_hz
        g_lag = 1.0 - math.exp(-dt / p.follow_lag_s)
        g_follow = 1.0 - math.exp(-dt / 20.0)
        g_rate = 1.0 - math.exp(-dt / 10.0)
        g_arousal = 1.0 - math.exp(-dt / p.arousal_tau_s)
        decay_st = math.exp(-dt / p.startle_recovery_s)
        g_tach = 1.0 - math.exp(-dt / 10.0)
        mf, mf0, mf_tau = p.min_followable_brpm, p.min_followable_start, p.min_followable_adapt_s
        own_ie = p.inhale_fraction
        a0 = p.arousal
        res = p.resonance_brpm
        rsa0 = p.rsa_resonance_bpm
        q = p.resonance_q
        peak = _rsa_gain_peak(res, q)
        hr0, hpa, lf = p.hr_bpm, p.hr_per_arousal_bpm, p.hr_lf_bpm
        bj = p.beat_jitter
        am = p.ppg_am_depth
        vaso = p.ppg_vasoconstriction
        sigh_per_min = p.sighs_per_hour / 60.0
        sigh_depth = p.sigh_depth
        relax = p.relax_depth
        asd = p.arousal_sd
        two_pi = _TWO_PI
        sin, cos, exp, log, sqrt = math.sin, math.cos, math.exp, math.log, math.sqrt
        # outputs
        out: dict[str, list[float]] = {name: [] for name in RECORD_FIELDS}
        o_ar, o_ph, o_rr = out["arousal"], out["breath_phase"], out["resp_rate_brpm"]
        o_vol, o_sh, o_hr = out["breath_volume"], out["breath_shape"], out["hr_bpm"]
        o_pace, o_pp, o_rsa = out["pace_brpm"], out["pacer_phase"], out["rsa_amplitude_bpm"]
        o_fol, o_int = out["following"], out["intrinsic_rate_brpm"]
        beats_t: list[float] = []
        beats_T: list[float] = []
        beats_a: list[float] = []
        onsets: list[float] = []
        noise = self._phys_noise(k0 >> 9)
        cur_block = k0 >> 9
        for k in range(k0, k_end):
            t = k * dt
            blk = k >> 9
            if blk != cur_block:
                noise = self._phys_noise(blk)
                cur_block = blk
            j = k & 511
            while ci < len(cmds) and cmds[ci].step <= k:
                c = cmds[ci]
                if c.pace_brpm == c.pace_brpm and pace != pace:
                    phase_p = 0.0  # the pacer starts with an inhale
                elif c.pace_brpm != c.pace_brpm:
                    phase_p = math.nan
                pace, cmd_ie = c.pace_brpm, c.inhale_fraction
                ci += 1
            while si < len(startles) and startles[si][0] <= k:
                a_st += startles[si][1]
                a_slow += 0.25 * startles[si][1]
                si += 1
            # Ornstein-Uhlenbeck wanders (unit variance, exact discretisation)
            xr = xr * er + sr * noise[0][j]
            xa = xa * ea + sa * noise[1][j]
            xh = xh * eh + sh * noise[2][j]
            own = (rate0 + rpa * (a - a0)) * (1.0 + cv * xr)
            if own < 2.0:
                own = 2.0
            paced = pace == pace
            lockable = False
            if paced:
                t_paced += dt
                minf = mf + (mf0 - mf) * exp(-t_paced / mf_tau)
                # a pace below the slowest followable rate is aimed at but cannot be locked to
                lockable = pace >= minf
                target = own + comp * ((pace if lockable else minf) - own)
                floor_rate = minf if minf < own else own
                if target < floor_rate:
                    target = floor_rate
            else:
                floor_rate = 0.0
                target = own
            r += (target - r) * g_lag
            f = r / 60.0
            if paced:
                d = phase_p - phase_b
                if lockable:
                    f += lock * sin(two_pi * d)
                    if f < floor_rate / 60.0:
                        f = floor_rate / 60.0
                phase_p += pace / 60.0 * dt
                follow += (cos(two_pi * d) - follow) * g_follow
            else:
                follow -= follow * g_follow
            if sigh:
                f *= 0.6
            if f < 0.01:
                f = 0.01
            new_phase = phase_b + f * dt
            if new_phase >= n_breath + 1:
                onsets.append(t + (n_breath + 1 - phase_b) / f)
                n_breath += 1
                z, u = self._breath_random(n_breath)
                depth = sqrt(rate0 / max(rate_s, 1.0))
                depth = min(max(depth, 0.5), 2.5) * (1.0 + 0.1 * z)
                sigh = 1.0 if u < sigh_per_min / max(rate_s, 1.0) else 0.0
                if sigh:
                    depth *= sigh_depth
                ie = own_ie + comp * (cmd_ie - own_ie) if paced else own_ie
            phase_b = new_phase
            u_b = phase_b - n_breath
            if u_b < ie:
                shape = 0.5 - 0.5 * cos(3.141592653589793 * u_b / ie)
            else:
                shape = 0.5 + 0.5 * cos(3.141592653589793 * (u_b - ie) / (1.0 - ie))
            rate_inst = 60.0 * f
            rate_s += (rate_inst - rate_s) * g_rate
            # arousal
            z = log(max(rate_s, 0.1) / res) / 0.45
            fol = follow if follow > 0.0 else 0.0
            benefit = exp(-z * z) * (0.6 + 0.4 * fol)
            a_slow += (a0 - relax * benefit - a_slow) * g_arousal
            a_st *= decay_st
            a = a_slow + a_st + asd * xa
            a = 0.0 if a < 0.0 else (1.0 if a > 1.0 else a)
            # heart
            tt = 0.0
            for t_on, t_off, delta in tachy:
                if t_on <= t < t_off:
                    tt += delta
            tach += (tt - tach) * g_tach
            x = (rate_s if rate_s > 0.1 else 0.1) / res
            band = (x / q) / sqrt((1.0 - x * x) ** 2 + (x / q) ** 2)
            gain = (0.75 * band + 0.25 / (1.0 + (rate_s / 10.0) ** 2)) / peak
            rsa = rsa0 * (1.0 - 0.6 * a) * gain
            hr = hr0 + hpa * (a - a0) + rsa * (shape - 0.5) + lf * (1.0 - 0.5 * a) * xh + tach
            hr = 25.0 if hr < 25.0 else (230.0 if hr > 230.0 else hr)
            dtheta = hr / 60.0 * dt
            if theta + dtheta >= thr:
                tb = t + (thr - theta) / (hr / 60.0)
                n_beat += 1
                zb, za = self._beat_random(n_beat)
                amp = (1.0 - am * (2.0 * shape - 1.0)) * (1.0 - vaso * (a - a0)) * (1.0 + 0.03 * za)
                beats_t.append(tb)
                beats_T.append(60.0 / hr)
                beats_a.append(amp if amp > 0.1 else 0.1)
                theta = theta + dtheta - thr
                thr = 1.0 + bj * zb
                if thr < 0.5:
                    thr = 0.5
            else:
                theta += dtheta
            o_ar.append(a)
            o_ph.append(phase_b)
            o_rr.append(rate_inst)
            o_vol.append(depth * shape)
            o_sh.append(shape)
            o_hr.append(hr)
            o_pace.append(pace)
            o_pp.append(phase_p)
            o_rsa.append(rsa)
            o_fol.append(fol)
            o_int.append(r)
        # store state
        s.update(xr=xr, xa=xa, xh=xh, phase_b=phase_b, theta=theta, phase_p=phase_p, pace=pace, cmd_ie=cmd_ie,
                 t_paced=t_paced, r=r, rate_s=rate_s, L=follow, a_slow=a_slow, a_st=a_st, tach=tach,
                 depth=depth, ie=ie, sigh=sigh, n_breath=float(n_breath), n_beat=float(n_beat), thr=thr, a=a)
        for name in RECORD_FIELDS:
            self.records[name].extend(out[name])
        self.beat_times.extend(beats_t)
        self.beat_periods.extend(beats_T)
        self.beat_amps.extend(beats_a)
        self.breath_onsets.extend(onsets)
        self._commands = [c for c in self._commands if c.step >= k_end]
        self._k = k_end

    def interp(self, name: str, t: FloatArray) -> FloatArray:
        """Linearly interpolate record ``name`` at session times ``t`` (within the recorded range)."""
        y = self.records[name].view
        x = np.asarray(t, dtype=np.float64) * STEP_HZ
        if self._k == 0:
            return np.full(x.shape, y[0])
        k = np.floor(x).astype(np.int64)
        np.minimum(k, self._k - 1, out=k)
        np.maximum(k, 0, out=k)
        w = x - k
        return np.asarray(y[k] * (1.0 - w) + y[k + 1] * w)
