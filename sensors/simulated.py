"""A simulated Muse wearer whose physiology answers the breathing pacer, with ground truth.

:class:`SimulatedPatient` is a :class:`~adaptive.types.Source` (EEG, PPG, accelerometer and
gyroscope chunks at Muse rates and channel names) and a :class:`~adaptive.types.PaceFollower`
(:meth:`SimulatedPatient.set_pace`).  It is the default source when no headband is present and
the ground truth for the tests of the DSP core and of the pacing controller:
:meth:`SimulatedPatient.truth` gives, at any sample time already generated, the breathing rate
and phase, lung volume, heart rate, arousal, pacer phase and artefact flags, and
:attr:`SimulatedPatient.beat_times` / :attr:`SimulatedPatient.breath_onset_times` the events.

Model in short (parameters and sources in :class:`PatientProfile`):

* Breathing: an intrinsic rate that wanders around the profile's rate; when paced it moves
  (first-order lag) a ``compliance`` fraction of the way to the pace, never below the slowest
  rate the patient can follow, and its phase is pulled towards the pacer's phase (integrated
  from the commanded pace in data time, starting with an inhale), so a follower inhales when the
  pacer says inhale.  Raised-cosine inhale/exhale with the pacer's inspiratory fraction, per-breath
  depth variability, deeper breaths when slower, occasional sighs.
* Heart: baseline rate raised by arousal, respiratory sinus arrhythmia whose amplitude follows a
  baroreflex resonance curve peaking at about 6 breaths/min, slow non-respiratory wander, beats
  by integral pulse frequency modulation with beat-to-beat jitter.
* PPG: an inverted reflectance pulse per beat (systolic upstroke, dicrotic notch, diastolic
  wave) with the three respiratory modulations (baseline, amplitude, interval), drift and noise.
* Accelerometer/gyroscope: gravity projected through a head orientation that tilts with every
  breath, ballistocardiographic jolts, sway, noise; gyroscope is the derivative of orientation.
* EEG: 1/f background, alpha that grows as arousal falls (mostly TP9/TP10), beta that grows
  with arousal, blinks (AF7/AF8), muscle bursts (TP9/TP10), mains hum, 12-bit quantisation and
  the Muse's +-1000 uV rails.
* Arousal: falls over minutes while breathing slowly near resonance (more when following the
  pacer), returns to baseline otherwise, jumps on startles.
* Events: :meth:`SimulatedPatient.schedule` (``startle``, ``motion``, ``saturation``,
  ``dropout`` = gap, ``nan`` = NaN samples, ``blink_burst``, ``tachycardia``) plus spontaneous
  ones from the profile.

Determinism and poll-schedule independence
------------------------------------------
Samples are on the exact grid ``k / sfreq + offset``.  All random numbers come from generators
keyed by (seed, stream, block/breath/beat index); noise is synthesised in fixed 8-s blocks per
stream in order; physiology is integrated on a fixed 1/64 s step.  Hence the samples depend only
on the profile, the seed, the scheduled events and the pace commands with the data time at
which each takes effect, not on how often :meth:`~SimulatedPatient.poll` is called: polling
every 10 ms or every second gives bit-identical samples.  A pace command takes effect at the
first 1/64 s step boundary at or after the last ``now`` passed to ``poll`` (step 0 before the
first poll), so two schedules that poll at the same time before a command agree.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from numpy.typing import NDArray
from scipy.signal import bilinear_zpk, butter, sosfilt, sosfreqz, tf2sos, zpk2sos

from adaptive._checks import check_option, check_range
from adaptive.errors import SensorError
from adaptive.types import Chunk, FloatArray, SignalKind, SourceStatus, StreamSpec

from ._physiology import (
    EVENT_DEFAULTS,
    PROFILES,
    PULSE_SUPPORT,
    STEP_HZ,
    TAG_EEG,
    TAG_IMU,
    TAG_INIT,
    TAG_PPG,
    EventLog,
    PatientProfile,
    Physiology,
    SimEvent,
    blink_shape,
    breath_shape,
    keyed_rng,
    ppg_pulse_shape,
    rsa_resonance_gain,
    slow_breathing_benefit,
)

logger = logging.getLogger(__name__)

__all__ = [
    "ACCEL_CH_NAMES",
    "EEG_CH_NAMES",
    "EEG_LSB_UV",
    "EEG_RAIL_UV",
    "EVENT_DEFAULTS",
    "GYRO_CH_NAMES",
    "PPG_CH_NAMES",
    "PPG_FULL_SCALE_COUNTS",
    "PPG_OPTICS",
    "PROFILES",
    "SFREQ",
    "GroundTruth",
    "PatientProfile",
    "PpgOptics",
    "SimEvent",
    "SimulatedPatient",
    "breath_shape",
    "ppg_pulse_shape",
    "rsa_resonance_gain",
    "slow_breathing_benefit",
]

BoolArray = NDArray[np.bool_]

#: EEG channels of the Muse 2 / Muse S (BrainFlow's ``eeg_names`` order).
EEG_CH_NAMES: tuple[str, ...] = ("TP9", "AF7", "AF8", "TP10")
#: Optical channels of the ancillary (PPG) preset.  BrainFlow gives no names for them; change
#: this constant (and :data:`PPG_OPTICS`) to match the BrainFlow source's names.
PPG_CH_NAMES: tuple[str, ...] = ("PPG_IR", "PPG_RED", "PPG_AMBIENT")
ACCEL_CH_NAMES: tuple[str, ...] = ("ACC_X", "ACC_Y", "ACC_Z")
GYRO_CH_NAMES: tuple[str, ...] = ("GYRO_X", "GYRO_Y", "GYRO_Z")

#: Nominal Muse rates in Hz (EEG default preset, PPG ancillary, accelerometer+gyro auxiliary).
SFREQ: Mapping[SignalKind, float] = MappingProxyType(
    {SignalKind.EEG: 256.0, SignalKind.PPG: 64.0, SignalKind.ACCEL: 52.0, SignalKind.GYRO: 52.0}
)

_CH_NAMES: Mapping[SignalKind, tuple[str, ...]] = MappingProxyType(
    {SignalKind.EEG: EEG_CH_NAMES, SignalKind.PPG: PPG_CH_NAMES,
     SignalKind.ACCEL: ACCEL_CH_NAMES, SignalKind.GYRO: GYRO_CH_NAMES}
)

#: Muse EEG: 12-bit samples, ``(raw - 2048) * 1000 / 2048`` uV: step and rails.
EEG_LSB_UV = 1000.0 / 2048.0
EEG_RAIL_UV: tuple[float, float] = (-2048 * EEG_LSB_UV, 2047 * EEG_LSB_UV)
#: PPG samples are unsigned 24-bit counts (as decoded by muse-lsl); saturation sits here.
PPG_FULL_SCALE_COUNTS = float(2**24 - 1)
#: Muse accelerometer and gyroscope resolution (muse-lsl scale factors).
ACCEL_LSB_G = 1.0 / 16384.0
GYRO_LSB_DPS = 0.0074768


@dataclass(frozen=True, slots=True)
class PpgOptics:
    """How one optical channel sees the blood-volume signal.

    Parameters
    ----------
    dc_counts : float
        Mean level in raw counts.
    pulse_gain : float
        Pulse, respiratory modulation and drift relative to the profile's values (0 for an
        ambient-light channel).
    noise_gain : float
        Sensor noise relative to the profile's ``ppg_noise_counts``.
    """

    dc_counts: float
    pulse_gain: float
    noise_gain: float


#: Optical levels per PPG channel name, modelled on the two live channels of a real Muse 2
#: BrainFlow recording (about 30 000 and 243 000 counts, pulses of a few hundred counts, faster
#: edge downwards).  Which LED each of those channels is has not been documented, so the
#: IR/red attribution is an assumption; the third channel of that recording was all zeros, here
#: it is a low ambient-light level without pulse.  Unknown names get the ``PPG_IR`` optics.
PPG_OPTICS: Mapping[str, PpgOptics] = MappingProxyType(
    {
        "PPG_IR": PpgOptics(30000.0, 1.0, 1.0),
        "PPG_RED": PpgOptics(240000.0, 0.8, 1.3),
        "PPG_AMBIENT": PpgOptics(800.0, 0.0, 0.5),
    }
)

_TEMPORAL = ("TP9", "TP10")
_MOTION_EEG_UV = 150.0  # slow electrode swings during head movement
_MOTION_PPG_FRACTION = 0.05  # optical coupling change during head movement, of the DC level
_MOTION_ANGLE_RAD = 0.1  # head rotation during movement (SD about 6 degrees)
_MOTION_LINEAR_G = 0.08
_RAMP_S = 0.2  # motion envelope ramps
_MUSCLE_RAMP_S = 0.1


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """What the simulated patient was doing at the requested times.

    Parameters
    ----------
    time : array of shape (n_times,)
        Session times in s.
    resp_rate_brpm : array of shape (n_times,)
        Instantaneous breathing frequency (60 times the rate of change of breath phase), which
        is what the signals carry.  Average it over a window to compare with a windowed estimate.
    resp_phase : array of shape (n_times,)
        Breath phase, 0..1, 0 = start of inhale; inhale lasts until the breath's inspiratory
        fraction.
    breath_volume : array of shape (n_times,)
        Lung volume above end-expiration, in units of a resting tidal breath.
    hr_bpm : array of shape (n_times,)
        Instantaneous heart rate (beats are the integral of it).
    arousal : array of shape (n_times,)
        Arousal, 0..1 (0 deeply relaxed, 0.5 neutral, 1 panic).
    pace_brpm : array of shape (n_times,)
        Commanded pace (NaN: no pacer).
    pacer_phase : array of shape (n_times,)
        Pacer phase 0..1 (0 = the pacer says "inhale"; NaN: no pacer).
    rsa_amplitude_bpm : array of shape (n_times,)
        Peak-to-trough respiratory heart-rate swing the model applies.
    following : array of shape (n_times,)
        Smoothed phase coherence with the pacer, 0..1 (20 s time constant).
    intrinsic_rate_brpm : array of shape (n_times,)
        The rate the patient is aiming at before phase locking.
    artifact_eeg, artifact_ppg, artifact_accel : bool arrays of shape (n_times,)
        An artefact (movement, saturation, dropout, NaN; for EEG also blinks and muscle bursts)
        affects that stream (accelerometer flag covers the gyroscope too).
    signal_lost : bool array of shape (n_times,)
        A dropout of both EEG and PPG is under way.
    """

    time: FloatArray
    resp_rate_brpm: FloatArray
    resp_phase: FloatArray
    breath_volume: FloatArray
    hr_bpm: FloatArray
    arousal: FloatArray
    pace_brpm: FloatArray
    pacer_phase: FloatArray
    rsa_amplitude_bpm: FloatArray
    following: FloatArray
    intrinsic_rate_brpm: FloatArray
    artifact_eeg: BoolArray
    artifact_ppg: BoolArray
    artifact_accel: BoolArray
    signal_lost: BoolArray


# --------------------------------------------------------------------------------------------
# Noise banks: physiology-independent noise in fixed 1-s blocks, generated in order
# --------------------------------------------------------------------------------------------


def _pink_sos(sfreq: float, exponent: float, f_lo: float = 0.2) -> FloatArray:
    """IIR filter whose power response falls as ``1 / f**exponent`` above ``f_lo``."""
    ratio = 10.0 ** (1.0 / 3.0)  # three pole-zero pairs per decade: ripple well under 1 dB
    f_hi = 0.45 * sfreq
    n = int(math.ceil(math.log(f_hi / f_lo) / math.log(ratio)))
    poles = f_lo * ratio ** np.arange(n)
    zeros = poles * ratio ** (exponent / 2.0)
    z, p, k = bilinear_zpk(-2 * np.pi * zeros, -2 * np.pi * poles, 1.0, sfreq)
    return np.asarray(zpk2sos(z, p, k), dtype=np.float64)


def _ar1_sos(sfreq: float, tau_s: float) -> FloatArray:
    a = math.exp(-1.0 / (sfreq * tau_s))
    return np.asarray(tf2sos([math.sqrt(1.0 - a * a)], [1.0, -a]), dtype=np.float64)


def _slowest_tau_s(sos: FloatArray, sfreq: float) -> float:
    radius = 0.0
    for sec in sos:
        roots = np.roots(sec[3:])
        if roots.size:
            radius = max(radius, float(np.max(np.abs(roots))))
    if radius <= 0.0:
        return 0.0
    return -1.0 / (sfreq * math.log(radius))


_BANK_BLOCK_S = 8  # noise is synthesised 8 s at a time (fewer filter calls; any poll schedule)


class _NoiseBank:
    """Filtered unit-variance noise of one stream, synthesised in 8-s blocks in block order.

    Block ``b`` uses white noise from a generator keyed by ``(seed, tag, 0, b)`` and the filter
    states left by block ``b - 1``, so its content does not depend on when it is requested.
    Filters start in a stationary state (a keyed warm-up run of five slowest time constants).
    """

    def __init__(self, seed: int, tag: int, sfreq: float,
                 components: list[tuple[str, int, FloatArray | None]]) -> None:
        self._seed, self._tag = seed, tag
        self._len = int(round(sfreq)) * _BANK_BLOCK_S
        self._components: list[tuple[str, int, FloatArray | None]] = []
        self._zi: list[FloatArray | None] = []
        self._n_rows = 0
        for ci, (name, rows, sos) in enumerate(components):
            self._n_rows += rows
            if sos is None:
                self._components.append((name, rows, None))
                self._zi.append(None)
                continue
            tau = _slowest_tau_s(sos, sfreq)
            n_imp = int(10 * tau * sfreq) + 4096
            imp = np.zeros(n_imp)
            imp[0] = 1.0
            norm = math.sqrt(float(np.sum(sosfilt(sos, imp) ** 2)))
            sos = sos.copy()
            sos[0, :3] /= norm
            n_warm = int(5 * tau * sfreq) + self._len
            warm = keyed_rng(seed, tag, 1, ci).standard_normal((rows, n_warm))
            zi0 = np.zeros((sos.shape[0], rows, 2))
            _, zi = sosfilt(sos, warm, axis=-1, zi=zi0)
            self._components.append((name, rows, sos))
            self._zi.append(np.asarray(zi))
        self._blocks: dict[int, dict[str, FloatArray]] = {}
        self._next = 0

    def sos(self, name: str) -> FloatArray:
        """The unit-variance (normalised) filter of component ``name``."""
        for comp, _, sos in self._components:
            if comp == name and sos is not None:
                return sos
        raise KeyError(name)

    def _generate(self) -> None:
        b = self._next
        white = keyed_rng(self._seed, self._tag, 0, b).standard_normal((self._n_rows, self._len))
        out: dict[str, FloatArray] = {}
        row = 0
        for ci, (name, rows, sos) in enumerate(self._components):
            x = white[row: row + rows]
            row += rows
            if sos is None:
                out[name] = x
            else:
                y, zi = sosfilt(sos, x, axis=-1, zi=self._zi[ci])
                self._zi[ci] = np.asarray(zi)
                out[name] = np.asarray(y)
        self._blocks[b] = out
        self._next += 1

    def get(self, i0: int, i1: int) -> dict[str, FloatArray]:
        """Return every component for sample indices ``[i0, i1)`` (``i0 >= 0``)."""
        b0, b1 = i0 // self._len, (i1 - 1) // self._len
        while self._next <= b1:
            self._generate()
        for old in [b for b in self._blocks if b < b0 - 1]:
            del self._blocks[old]
        out: dict[str, FloatArray] = {}
        for name, _, _ in self._components:
            parts = [self._blocks[b][name] for b in range(b0, b1 + 1)]
            cat = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
            start = i0 - b0 * self._len
            out[name] = cat[:, start: start + (i1 - i0)]
        return out


# --------------------------------------------------------------------------------------------
# The simulated patient
# --------------------------------------------------------------------------------------------


def _last_index(now: float, sfreq: float, offset: float) -> int:
    """Largest sample index whose time ``k / sfreq + offset`` (as computed) is <= ``now``."""
    k = int(math.floor((now - offset) * sfreq))
    while (k + 1) / sfreq + offset <= now:
        k += 1
    while k >= 0 and k / sfreq + offset > now:
        k -= 1
    return k


def _smoothstep(x: FloatArray) -> FloatArray:
    x = np.minimum(np.maximum(x, 0.0), 1.0)
    return np.asarray(x * x * (3.0 - 2.0 * x))


def _bcg_shape(tau_s: FloatArray) -> FloatArray:
    """Biphasic head jolt 0.25 s after the beat, peak magnitude 1."""
    x = (tau_s - 0.25) / 0.04
    return np.asarray(np.where((tau_s > 0.0) & (tau_s < 0.5), -x * np.exp(0.5 - 0.5 * x * x), 0.0))


class SimulatedPatient:
    """Simulated Muse wearer: a Source of EEG/PPG/ACCEL/GYRO chunks and a PaceFollower.

    Parameters
    ----------
    profile : str or PatientProfile
        A key of :data:`PROFILES` (``"compliant"``, ``"anxious"``, ``"non-follower"``,
        ``"noisy-signal"``, ``"tachycardic"``) or a profile instance.
    seed : int
        Seed of every random number (non-negative).  Same seed, profile, events and pace
        commands (at the same data times) give bit-identical samples.
    stream_offsets_s : mapping of SignalKind to float or None
        Constant offset of each stream's sample grid, ``0 <= offset < 1 / sfreq`` (default 0:
        sample ``k`` of a stream is at ``k / sfreq``).

    Notes
    -----
    Streams: EEG 256 Hz ``TP9, AF7, AF8, TP10`` in uV (12-bit steps of 0.488 uV, rails at
    -1000 / +999.5 uV); PPG 64 Hz :data:`PPG_CH_NAMES` in raw counts (integers; a reflectance
    sensor, so the counts *drop* at each systole: the pulse is inverted with respect to blood
    volume, as in raw Muse PPG); accelerometer 52 Hz in g (+Z up when the head is upright);
    gyroscope 52 Hz in deg/s (X roll, Y pitch, Z yaw rates).

    The patient keeps the full ground-truth history at 64 Hz (11 floats per step: about 20 MB
    per hour) plus beat, breath and blink times.

    Examples
    --------
    >>> sim = SimulatedPatient("compliant", seed=0)
    >>> sim.start()
    >>> sim.set_pace(6.0)
    >>> chunks = sim.poll(1.0)
    >>> [(c.kind.value, c.n_times) for c in chunks]
    [('eeg', 257), ('ppg', 65), ('accel', 53), ('gyro', 53)]
    >>> float(sim.truth([1.0]).pace_brpm[0])
    6.0
    """

    def __init__(
        self,
        profile: str | PatientProfile = "compliant",
        seed: int = 0,
        *,
        stream_offsets_s: Mapping[SignalKind, float] | None = None,
    ) -> None:
        if isinstance(profile, str):
            check_option("profile", profile, list(PROFILES), "Or pass a PatientProfile instance.")
            profile = PROFILES[profile]
        elif not isinstance(profile, PatientProfile):
            raise TypeError(
                f"Invalid value for 'profile': expected a name or a PatientProfile, got {profile!r}."
            )
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"Invalid value for 'seed': expected a non-negative integer, got {seed!r}.")
        self._profile = profile
        self._seed = int(seed)
        offsets = dict(stream_offsets_s or {})
        self._offsets: dict[SignalKind, float] = {}
        for kind, sfreq in SFREQ.items():
            off = float(offsets.pop(kind, 0.0))
            self._offsets[kind] = check_range(
                f"stream_offsets_s[{kind.value!r}]", off, 0.0, math.nextafter(1.0 / sfreq, 0.0),
                "Offsets shift a stream's grid by less than one sample."
            )
        if offsets:
            raise ValueError(f"Invalid value for 'stream_offsets_s': unknown kinds {list(offsets)!r}.")
        self._status = SourceStatus.IDLE
        self._last_now = -math.inf
        self._next_idx: dict[SignalKind, int] = {kind: 0 for kind in SFREQ}
        self._pace: float | None = None
        self._events = EventLog(profile, self._seed, EEG_CH_NAMES)
        self._phys = Physiology(profile, self._seed, self._events)
        self._imu_cache: tuple[tuple[int, int], FloatArray, FloatArray, FloatArray] | None = None
        self._build_sensors()

    # ---------------------------------------------------------------- construction helpers
    def _build_sensors(self) -> None:
        p = self._profile
        fs_eeg = SFREQ[SignalKind.EEG]
        pink = _pink_sos(fs_eeg, p.eeg_exponent)
        self._eeg_bank = _NoiseBank(self._seed, TAG_EEG, fs_eeg, [
            ("pink", 5, pink),
            ("alpha", 5, np.asarray(butter(2, [p.alpha_hz - 1.5, p.alpha_hz + 1.5], "bandpass", fs=fs_eeg,
                                           output="sos"))),
            ("beta", 4, np.asarray(butter(2, [14.0, 28.0], "bandpass", fs=fs_eeg, output="sos"))),
            ("muscle", 4, np.asarray(butter(2, [20.0, 100.0], "bandpass", fs=fs_eeg, output="sos"))),
            ("motion", 4, np.asarray(butter(2, 2.0, "lowpass", fs=fs_eeg, output="sos"))),
            ("white", 4, None),
        ])
        # scale the unit-variance pink noise to the profile's PSD at 10 Hz
        _, h = sosfreqz(self._eeg_bank.sos("pink"), worN=[10.0], fs=fs_eeg)
        psd_unit_10 = float(np.abs(h[0]) ** 2) * 2.0 / fs_eeg
        self._pink_uv = math.sqrt(p.eeg_psd_1hz / 10.0**p.eeg_exponent / psd_unit_10)
        self._floor_uv = math.sqrt(p.eeg_floor_psd * fs_eeg / 2.0) * p.contact_noise
        temporal = np.array([name in _TEMPORAL for name in EEG_CH_NAMES])
        self._w_alpha = np.where(temporal, 1.0, p.frontal_alpha_ratio)[:, None]
        self._w_muscle = np.where(temporal, 1.0, 0.4)[:, None]
        self._w_blink = np.where(temporal, 0.05, 1.0)[:, None]
        init = keyed_rng(self._seed, TAG_INIT, 1)
        self._eeg_offset = init.uniform(-20.0, 20.0, (len(EEG_CH_NAMES), 1))
        self._line_phase = init.uniform(0.0, 2 * np.pi, (len(EEG_CH_NAMES), 1))
        self._gyro_bias = init.uniform(-3.0, 3.0, (3, 1))

        fs_ppg = SFREQ[SignalKind.PPG]
        self._ppg_bank = _NoiseBank(self._seed, TAG_PPG, fs_ppg, [
            ("white", len(PPG_CH_NAMES), None),
            ("drift", 1, _ar1_sos(fs_ppg, 40.0)),
            ("motion", 1, np.asarray(butter(2, 1.5, "lowpass", fs=fs_ppg, output="sos"))),
        ])
        optics = [PPG_OPTICS.get(name, PPG_OPTICS["PPG_IR"]) for name in PPG_CH_NAMES]
        self._ppg_dc = np.array([o.dc_counts for o in optics])[:, None]
        self._ppg_gain = np.array([o.pulse_gain for o in optics])[:, None]
        self._ppg_noise = np.array([o.noise_gain for o in optics])[:, None]

        fs_imu = SFREQ[SignalKind.ACCEL]
        self._imu_bank = _NoiseBank(self._seed, TAG_IMU, fs_imu, [
            ("acc_white", 3, None),
            ("gyro_white", 3, None),
            ("sway", 2, _ar1_sos(fs_imu, 20.0)),
            ("motion", 6, np.asarray(butter(2, 1.0, "lowpass", fs=fs_imu, output="sos"))),
        ])

    # ---------------------------------------------------------------- Source protocol
    @property
    def streams(self) -> tuple[StreamSpec, ...]:
        """EEG, PPG, accelerometer and gyroscope streams (Muse rates and channel names)."""
        extra = {"profile": self._profile.name, "seed": str(self._seed), "simulated": "true"}
        return tuple(
            StreamSpec(kind, sfreq, _CH_NAMES[kind], device=f"SimulatedPatient({self._profile.name})",
                       extra=dict(extra))
            for kind, sfreq in SFREQ.items()
        )

    @property
    def status(self) -> SourceStatus:
        """IDLE before :meth:`start`, STREAMING, SIGNAL_LOST during an EEG+PPG dropout, STOPPED."""
        if self._status == SourceStatus.STREAMING and math.isfinite(self._last_now):
            if self._signal_lost(np.array([self._last_now]))[0]:
                return SourceStatus.SIGNAL_LOST
        return self._status

    def start(self) -> None:
        """Start streaming (session time 0 is the first sample of every stream).

        Raises
        ------
        SensorError
            If the patient was stopped (create a new one).
        """
        if self._status == SourceStatus.STOPPED:
            raise SensorError(
                "SimulatedPatient: cannot restart a stopped source; create a new SimulatedPatient."
            )
        if self._status == SourceStatus.IDLE:
            logger.info("SimulatedPatient(%s, seed=%d): streaming", self._profile.name, self._seed)
        self._status = SourceStatus.STREAMING

    def stop(self) -> None:
        """Stop streaming; later polls raise."""
        if self._status != SourceStatus.STOPPED:
            logger.info("SimulatedPatient(%s, seed=%d): stopped at %.3f s", self._profile.name, self._seed,
                        self._last_now)
        self._status = SourceStatus.STOPPED

    def poll(self, now: float) -> list[Chunk]:
        """Return the samples with times in ``(last now, now]``: at most one chunk per kind.

        Parameters
        ----------
        now : float
            Session time in s; never smaller than the previous call's.

        Returns
        -------
        chunks : list of Chunk
            In the order EEG, PPG, ACCEL, GYRO; a kind is missing when it has no sample in the
            interval (too short, or a dropout).

        Raises
        ------
        SensorError
            Before :meth:`start` or after :meth:`stop`.
        ValueError
            If ``now`` is not finite or goes back in time.
        """
        if self._status != SourceStatus.STREAMING:
            raise SensorError(f"SimulatedPatient: poll() while {self._status.value}; call start() first "
                              "(a stopped patient cannot stream again).")
        now = float(now)
        if not math.isfinite(now) or now < self._last_now:
            raise ValueError(f"Invalid value for 'now': expected a finite time >= {self._last_now!r} s "
                             f"(the previous poll), got {now!r}. Session time never goes back.")
        if now < 0.0:
            self._last_now = now
            return []
        self._advance(now)
        chunks: list[Chunk] = []
        for kind, sfreq in SFREQ.items():
            off = self._offsets[kind]
            i_lo = self._next_idx[kind]
            i_hi = _last_index(now, sfreq, off)
            if i_hi < i_lo:
                continue
            self._next_idx[kind] = i_hi + 1
            idx = np.arange(i_lo, i_hi + 1, dtype=np.int64)
            t = idx / sfreq + off
            keep = ~self._active_mask(t, ("dropout",), kind.value)
            if not keep.any():
                continue
            data = self._synthesise(kind, idx, t)
            nan = self._active_mask(t, ("nan",), kind.value)
            if nan.any():
                data[:, nan] = np.nan
            if not keep.all():
                data, t = data[:, keep], t[keep]
            chunks.append(Chunk(kind, data, t, sfreq, _CH_NAMES[kind]))
        self._last_now = now
        return chunks

    def fast_forward(self, now: float) -> None:
        """Advance the session to ``now`` without delivering the samples in between.

        The physiology (and so the ground truth) is integrated as by :meth:`poll`, and later
        polls return exactly the samples they would have returned had every sample been
        polled, but the skipped samples are never synthesised.  Tests of the physiology and
        of the pacing controller use it to cover minutes quickly.

        Parameters
        ----------
        now : float
            Session time in s; never smaller than the last polled time.

        Raises
        ------
        SensorError
            Before :meth:`start` or after :meth:`stop`.
        ValueError
            If ``now`` is not finite or goes back in time.
        """
        if self._status != SourceStatus.STREAMING:
            raise SensorError(
                f"SimulatedPatient: fast_forward() while {self._status.value}; call start() first."
            )
        now = float(now)
        if not math.isfinite(now) or now < self._last_now:
            raise ValueError(
                f"Invalid value for 'now': expected a finite time >= {self._last_now!r} s, got {now!r}."
            )
        if now >= 0.0:
            self._advance(now)
            for kind, sfreq in SFREQ.items():
                i_hi = _last_index(now, sfreq, self._offsets[kind])
                self._next_idx[kind] = max(self._next_idx[kind], i_hi + 1)
        self._last_now = now

    def _advance(self, now: float) -> None:
        k = int(math.ceil(now * STEP_HZ))
        while k / STEP_HZ < now:
            k += 1
        self._phys.integrate(k)
        self._events.ensure(now + 1.0)

    # ---------------------------------------------------------------- PaceFollower protocol
    def set_pace(self, pace_brpm: float | None, inhale_fraction: float = 0.4) -> None:
        """Command a breathing pace in breaths/min (``None``: pacer off).

        The command takes effect at the first 1/64 s step boundary at or after the last polled
        time; the pacer's phase starts with an inhale when a pace is first set and then runs on
        continuously through pace changes.

        Parameters
        ----------
        pace_brpm : float or None
            Pace, 1..60 breaths/min.
        inhale_fraction : float
            Fraction of each paced breath spent inhaling, 0.1..0.9.

        Raises
        ------
        ValueError
            If a value is out of range.
        """
        if pace_brpm is not None:
            pace_brpm = check_range("pace_brpm", pace_brpm, 1.0, 60.0, "Use None to switch the pacer off.")
        inhale_fraction = check_range("inhale_fraction", inhale_fraction, 0.1, 0.9)
        if pace_brpm != self._pace:
            logger.info("SimulatedPatient: pace %s brpm (inhale %.2f) from %.3f s",
                        "off" if pace_brpm is None else f"{pace_brpm:.2f}", inhale_fraction,
                        self._phys.n_steps / STEP_HZ)
        self._pace = pace_brpm
        self._phys.command(pace_brpm, inhale_fraction)

    @property
    def pace_brpm(self) -> float | None:
        """The last commanded pace (``None``: no pacer)."""
        return self._pace

    # ---------------------------------------------------------------- events
    def schedule(self, kind: str, at_s: float, duration_s: float = 0.0, **params: object) -> SimEvent:
        """Schedule an event.

        Parameters
        ----------
        kind : str
            ``"startle"``, ``"motion"``, ``"saturation"``, ``"dropout"`` (no samples: a time gap),
            ``"nan"`` (NaN samples), ``"blink_burst"`` or ``"tachycardia"``.
        at_s : float
            Session time of the start; later than the last polled time.
        duration_s : float
            Duration in s (ignored for ``startle``).
        **params
            Parameters of the kind, see :data:`EVENT_DEFAULTS`, e.g.
            ``schedule("dropout", 30, 5, streams=("ppg",))``.

        Returns
        -------
        event : SimEvent

        Raises
        ------
        ValueError
            Unknown kind or parameter, bad value, or a start time already polled.
        """
        if float(at_s) <= self._last_now:
            raise ValueError(
                f"Invalid value for 'at_s': expected a time after the last poll ({self._last_now:.3f} s), "
                f"got {at_s!r}. Schedule events before polling past them."
            )
        return self._events.add_scheduled(kind, float(at_s), float(duration_s), params)

    @property
    def events(self) -> tuple[SimEvent, ...]:
        """Scheduled and spontaneous events so far (spontaneous ones are drawn 8 s at a time, ahead)."""
        return tuple(self._events.events)

    # ---------------------------------------------------------------- ground truth
    @property
    def profile(self) -> PatientProfile:
        """The patient's profile."""
        return self._profile

    @property
    def seed(self) -> int:
        """The patient's seed."""
        return self._seed

    @property
    def simulated_until(self) -> float:
        """Latest session time at which the ground truth exists."""
        return self._phys.n_steps / STEP_HZ

    @property
    def beat_times(self) -> FloatArray:
        """Times of the heart beats so far (the R-wave equivalents), s.

        The PPG pulse foot follows each beat by the profile's ``pulse_delay_s``.
        """
        return self._phys.beat_times.view.copy()

    @property
    def breath_onset_times(self) -> FloatArray:
        """Times at which each breath's inhale started, s."""
        return self._phys.breath_onsets.view.copy()

    @property
    def blink_times(self) -> FloatArray:
        """Onsets of the blinks so far (spontaneous, startle and blink bursts), s."""
        t, _, _, _, keep = self._blinks(0.0, self.simulated_until)
        return t[keep]

    def truth(self, times: FloatArray | list[float] | float) -> GroundTruth:
        """Ground truth at session times already simulated.

        Parameters
        ----------
        times : array of shape (n_times,)
            Session times between 0 and :attr:`simulated_until`.

        Returns
        -------
        truth : GroundTruth

        Raises
        ------
        ValueError
            If a time is outside the simulated range (poll further first).
        """
        t = np.atleast_1d(np.asarray(times, dtype=np.float64))
        if t.ndim != 1:
            raise ValueError(f"Invalid value for 'times': expected a 1-D array, got shape {t.shape}.")
        hi = self.simulated_until
        if t.size and (not np.all(np.isfinite(t)) or t.min() < 0.0 or t.max() > hi):
            raise ValueError(
                f"Invalid value for 'times': expected times in [0, {hi:.3f}] s (simulated so far), got "
                f"[{t.min() if t.size else 0:.3f}, {t.max() if t.size else 0:.3f}]. Poll further first."
            )
        ph = self._phys
        x = t * STEP_HZ
        k_prev = np.clip(np.floor(x).astype(np.int64), 0, ph.n_steps)
        pace = ph.records["pace_brpm"].view[k_prev]
        pacer = ph.interp("pacer_phase", t)
        pacer = np.where(np.isfinite(pacer), np.mod(pacer, 1.0), np.nan)
        motion = self._motion_env(t) > 0.0
        eeg = (motion | self._active_mask(t, ("saturation", "dropout", "nan"), "eeg")
               | (self._blink_sum(t) > 0.0) | (self._muscle_env(t) > 0.0))
        ppg = motion | self._active_mask(t, ("saturation", "dropout", "nan"), "ppg")
        acc = (motion | self._active_mask(t, ("dropout", "nan"), "accel")
               | self._active_mask(t, ("dropout", "nan"), "gyro"))
        return GroundTruth(
            time=t,
            resp_rate_brpm=ph.interp("resp_rate_brpm", t),
            resp_phase=np.mod(ph.interp("breath_phase", t), 1.0),
            breath_volume=ph.interp("breath_volume", t),
            hr_bpm=ph.interp("hr_bpm", t),
            arousal=ph.interp("arousal", t),
            pace_brpm=np.asarray(pace, dtype=np.float64),
            pacer_phase=np.asarray(pacer),
            rsa_amplitude_bpm=ph.interp("rsa_amplitude_bpm", t),
            following=ph.interp("following", t),
            intrinsic_rate_brpm=ph.interp("intrinsic_rate_brpm", t),
            artifact_eeg=np.asarray(eeg),
            artifact_ppg=np.asarray(ppg),
            artifact_accel=np.asarray(acc),
            signal_lost=self._signal_lost(t),
        )

    def truth_log(self) -> GroundTruth:
        """Ground truth at every internal step (64 Hz) simulated so far."""
        return self.truth(np.arange(self._phys.n_steps + 1) / STEP_HZ)

    # ---------------------------------------------------------------- event envelopes
    def _active_mask(self, t: FloatArray, kinds: tuple[str, ...], stream: str) -> BoolArray:
        mask = np.zeros(t.shape, dtype=bool)
        if t.size == 0:
            return mask
        for ev in self._events.overlapping(float(t[0]), float(t[-1]), kinds):
            if stream in ev.streams():
                mask |= (t >= ev.start_s) & (t < ev.end_s)
        return mask

    def _signal_lost(self, t: FloatArray) -> BoolArray:
        eeg = self._active_mask(t, ("dropout",), "eeg")
        return np.asarray(eeg & self._active_mask(t, ("dropout",), "ppg"))

    def _motion_env(self, t: FloatArray) -> FloatArray:
        env = np.zeros(t.shape)
        if t.size == 0:
            return env
        for ev in self._events.overlapping(float(t.min()), float(t.max()), ("motion",)):
            ramp = min(_RAMP_S, ev.duration_s / 2.0) or 1e-3
            up = _smoothstep((t - ev.start_s) / ramp)
            down = _smoothstep((ev.end_s - t) / ramp)
            inside = (t >= ev.start_s) & (t < ev.end_s)
            env += np.where(inside, ev.param("strength") * up * down + 1e-12, 0.0)
        return env

    def _saturation(self, t: FloatArray, stream: str, ch_names: tuple[str, ...]) -> FloatArray:
        """Per channel and sample: +1 high rail, -1 low rail, 0 none."""
        out = np.zeros((len(ch_names), t.size))
        for ev in self._events.overlapping(float(t[0]), float(t[-1]), ("saturation",)):
            if stream not in ev.streams():
                continue
            chans = ev.params.get("channels")
            rows = [i for i, name in enumerate(ch_names) if chans is None or name in chans]
            inside = (t >= ev.start_s) & (t < ev.end_s)
            out[np.ix_(rows, np.flatnonzero(inside))] = 1.0 if ev.params.get("level") == "high" else -1.0
        return out

    def _blinks(
        self, t0: float, t1: float
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, BoolArray]:
        times, durs, amps, u = self._events.candidates("blink")
        lo = int(np.searchsorted(times, t0 - 0.41))
        hi = int(np.searchsorted(times, t1, side="right"))
        times, durs, amps, u = times[lo:hi], durs[lo:hi], amps[lo:hi], u[lo:hi]
        tc = np.clip(times, 0.0, self.simulated_until)
        keep = (u < 0.0) | (u < (0.5 + self._phys.interp("arousal", tc)) / 1.5)
        return times, durs, amps, u, np.asarray(keep)

    def _blink_sum(self, t: FloatArray) -> FloatArray:
        out = np.zeros(t.shape)
        if t.size == 0:
            return out
        times, durs, amps, _, keep = self._blinks(float(t.min()), float(t.max()))
        for tb, d, a in zip(times[keep], durs[keep], amps[keep], strict=True):
            i0, i1 = np.searchsorted(t, [tb, tb + d])
            if i1 > i0:
                out[i0:i1] += a * blink_shape((t[i0:i1] - tb) / d)
        return out

    def _muscle_env(self, t: FloatArray) -> FloatArray:
        out = np.zeros(t.shape)
        if t.size == 0:
            return out
        times, durs, amps, u = self._events.candidates("muscle")
        lo = int(np.searchsorted(times, float(t.min()) - 2.01))
        hi = int(np.searchsorted(times, float(t.max()), side="right"))
        for tm, d, a, uu in zip(times[lo:hi], durs[lo:hi], amps[lo:hi], u[lo:hi], strict=True):
            arousal = float(self._phys.interp("arousal", np.array([min(tm, self.simulated_until)]))[0])
            if uu >= (0.5 + arousal) / 1.5:
                continue
            i0, i1 = np.searchsorted(t, [tm, tm + d])
            if i1 > i0:
                seg = t[i0:i1]
                env = _smoothstep((seg - tm) / _MUSCLE_RAMP_S) * _smoothstep((tm + d - seg) / _MUSCLE_RAMP_S)
                out[i0:i1] += a * env + 1e-12
        return out

    # ---------------------------------------------------------------- synthesis
    def _synthesise(self, kind: SignalKind, idx: NDArray[np.int64], t: FloatArray) -> FloatArray:
        if kind == SignalKind.EEG:
            return self._eeg(idx, t)
        if kind == SignalKind.PPG:
            return self._ppg(idx, t)
        key = (int(idx[0]), int(idx[-1]))
        if self._imu_cache is None or self._imu_cache[0] != key or self._imu_cache[1].shape != t.shape \
                or not np.array_equal(self._imu_cache[1], t):
            self._imu_cache = (key, t, *self._imu(idx, t))
        return self._imu_cache[2] if kind == SignalKind.ACCEL else self._imu_cache[3]

    def _eeg(self, idx: NDArray[np.int64], t: FloatArray) -> FloatArray:
        p = self._profile
        nb = self._eeg_bank.get(int(idx[0]), int(idx[-1]) + 1)
        arousal = self._phys.interp("arousal", t)
        pink = 0.8 * nb["pink"][:4] + 0.6 * nb["pink"][4:5]
        alpha = 0.8 * nb["alpha"][:4] + 0.6 * nb["alpha"][4:5]
        x = self._pink_uv * pink + self._floor_uv * nb["white"] + self._eeg_offset
        x = x + (p.alpha_uv * (1.0 - arousal) ** 1.5) * self._w_alpha * alpha
        x = x + (p.beta_uv * arousal**1.5) * nb["beta"]
        muscle = self._muscle_env(t)
        if muscle.any():
            x = x + muscle * self._w_muscle * nb["muscle"]
        blinks = self._blink_sum(t)
        if blinks.any():
            x = x - blinks * self._w_blink  # AF7/AF8 dip: the Fpz reference sits nearer the eyes
        motion = self._motion_env(t)
        if motion.any():
            x = x + _MOTION_EEG_UV * motion * nb["motion"]
        if p.line_noise_uv > 0:
            x = x + p.line_noise_uv * np.sin(2 * np.pi * p.line_hz * t + self._line_phase)
        x = np.round(x / EEG_LSB_UV) * EEG_LSB_UV
        sat = self._saturation(t, "eeg", EEG_CH_NAMES)
        x = np.where(sat > 0, EEG_RAIL_UV[1], np.where(sat < 0, EEG_RAIL_UV[0], x))
        return np.asarray(np.minimum(np.maximum(x, EEG_RAIL_UV[0]), EEG_RAIL_UV[1]))

    def _pulses(self, t: FloatArray, delay_s: float) -> FloatArray:
        """Sum of beat pulses (relative amplitudes) at the sorted times ``t``.

        Each beat's pulse is added on the samples it covers, beats in increasing order, so a
        sample's value does not depend on the chunk it is computed in.
        """
        ph = self._phys
        feet = ph.beat_times.view + delay_s
        out = np.zeros(t.shape)
        if feet.size == 0 or t.size == 0:
            return out
        lo_s, hi_s = PULSE_SUPPORT[0] * 1.4, PULSE_SUPPORT[1] * 1.4  # widest possible support
        j0 = int(np.searchsorted(feet, t[0] - hi_s))
        j1 = int(np.searchsorted(feet, t[-1] - lo_s, side="right"))
        periods, amps = ph.beat_periods.view, ph.beat_amps.view
        for j in range(j0, j1):
            scale = min(max(math.sqrt(periods[j] / 0.857), 0.55), 1.4)
            edges = [feet[j] + PULSE_SUPPORT[0] * scale, feet[j] + PULSE_SUPPORT[1] * scale]
            i0, i1 = np.searchsorted(t, edges)
            if i1 > i0:
                out[i0:i1] += amps[j] * ppg_pulse_shape(t[i0:i1] - feet[j], np.float64(scale))
        return out

    def _ppg(self, idx: NDArray[np.int64], t: FloatArray) -> FloatArray:
        p = self._profile
        nb = self._ppg_bank.get(int(idx[0]), int(idx[-1]) + 1)
        volume = self._phys.interp("breath_volume", t)
        pulses = self._pulses(t, p.pulse_delay_s)
        blood = (p.ppg_riiv_counts * (volume - 0.5) + p.ppg_drift_counts * nb["drift"]
                 - p.ppg_pulse_counts * pulses)
        x = self._ppg_dc + self._ppg_gain * blood
        x = x + self._ppg_noise * (p.ppg_noise_counts * p.contact_noise) * nb["white"]
        motion = self._motion_env(t)
        if motion.any():
            x = x + _MOTION_PPG_FRACTION * self._ppg_dc * motion * nb["motion"]
        x = np.round(x)
        sat = self._saturation(t, "ppg", PPG_CH_NAMES)
        x = np.where(sat > 0, PPG_FULL_SCALE_COUNTS, np.where(sat < 0, 0.0, x))
        return np.asarray(np.minimum(np.maximum(x, 0.0), PPG_FULL_SCALE_COUNTS))

    def _imu(self, idx: NDArray[np.int64], t: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Accelerometer (g) and gyroscope (deg/s) at the samples ``idx`` (same grid for both)."""
        p = self._profile
        fs = SFREQ[SignalKind.ACCEL]
        off = self._offsets[SignalKind.ACCEL]
        i0 = int(idx[0])
        lo = max(i0 - 1, 0)
        nb = self._imu_bank.get(lo, int(idx[-1]) + 1)
        t_ext = np.arange(lo, int(idx[-1]) + 1) / fs + off
        volume = self._phys.interp("breath_volume", t_ext)
        motion = self._motion_env(t_ext)
        tilt = p.breath_tilt_mg / 1000.0
        sway = p.sway_mrad / 1000.0 * nb["sway"]
        mot = _MOTION_ANGLE_RAD * motion * nb["motion"]
        pitch = math.radians(p.head_pitch_deg) - tilt * (volume - 0.5) + sway[0] + mot[0]
        roll = math.radians(p.head_roll_deg) + sway[1] + mot[1]
        yaw = mot[2]
        angles = np.vstack([roll, pitch, yaw])  # rotation about X, Y, Z
        rates = np.degrees(np.diff(angles, axis=1) * fs)
        if i0 == 0:
            rates = np.hstack([np.zeros((3, 1)), rates])
        else:
            angles = angles[:, 1:]
            pitch, roll = pitch[1:], roll[1:]
            motion = motion[1:]
            nb = {k: v[:, 1:] for k, v in nb.items()}
        acc = np.vstack([np.sin(pitch), np.cos(pitch) * np.sin(roll), np.cos(pitch) * np.cos(roll)])
        bcg = self._bcg(t)
        acc[2] += p.bcg_mg / 1000.0 * bcg
        acc[0] += 0.5 * p.bcg_mg / 1000.0 * bcg
        if motion.any():
            acc = acc + _MOTION_LINEAR_G * motion * nb["motion"][3:6]
        acc = acc + p.accel_noise_mg / 1000.0 * nb["acc_white"]
        gyro = rates + self._gyro_bias + p.gyro_noise_dps * nb["gyro_white"]
        acc = np.round(acc / ACCEL_LSB_G) * ACCEL_LSB_G
        gyro = np.round(gyro / GYRO_LSB_DPS) * GYRO_LSB_DPS
        return np.asarray(acc), np.asarray(gyro)

    def _bcg(self, t: FloatArray) -> FloatArray:
        """Sum of ballistocardiographic jolts at the sorted times ``t`` (beats in order)."""
        beats = self._phys.beat_times.view
        out = np.zeros(t.shape)
        if beats.size == 0 or t.size == 0:
            return out
        j0 = int(np.searchsorted(beats, t[0] - 0.5))
        j1 = int(np.searchsorted(beats, t[-1], side="right"))
        for j in range(j0, j1):
            i0, i1 = np.searchsorted(t, [beats[j], beats[j] + 0.5])
            if i1 > i0:
                out[i0:i1] += _bcg_shape(t[i0:i1] - beats[j])
        return out
