"""Records passed between stages, and the protocols that stages implement.

Everything that flows through calmloop is one of a few frozen records:

* :class:`Chunk` – a block of samples of one signal kind, on the session clock.
* :class:`Estimate` – one value of one :class:`Metric`, with a quality from 0 to 1.

Sources produce chunks (``sensors/``), processors in ``adaptive/`` turn chunks into
estimates, and sinks (``feedback/``) consume both.  Array order follows MNE:
``(n_channels, n_times)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

__all__ = [
    "UNITS",
    "Chunk",
    "Clock",
    "Estimate",
    "FloatArray",
    "Metric",
    "PaceFollower",
    "SignalKind",
    "Source",
    "SourceStatus",
    "StreamSpec",
]


class SignalKind(StrEnum):
    """Kind of a sampled signal; one :class:`Chunk` carries exactly one kind."""

    EEG = "eeg"
    PPG = "ppg"
    ACCEL = "accel"
    GYRO = "gyro"


#: Physical unit of each signal kind after conversion in ``sensors/``.
UNITS: dict[SignalKind, str] = {
    SignalKind.EEG: "uV",
    SignalKind.PPG: "au",  # optical counts: no physical unit
    SignalKind.ACCEL: "g",
    SignalKind.GYRO: "deg/s",
}


class Metric(StrEnum):
    """What an :class:`Estimate` measures; the value carries the unit."""

    RESP_RATE_BRPM = "resp_rate_brpm"  # fused breathing rate
    RESP_RATE_PPG_BRPM = "resp_rate_ppg_brpm"  # from PPG modulations only
    RESP_RATE_ACCEL_BRPM = "resp_rate_accel_brpm"  # from head motion only
    HR_BPM = "hr_bpm"
    IBI_MS = "ibi_ms"
    RMSSD_MS = "rmssd_ms"
    LF_POWER_MS2 = "lf_power_ms2"
    HF_POWER_MS2 = "hf_power_ms2"
    LF_HF_RATIO = "lf_hf_ratio"
    HRV_COHERENCE = "hrv_coherence"  # peak-to-total power ratio, 0..1
    HR_OSC_BPM = "hr_osc_bpm"  # peak-to-trough heart-rate swing per breath
    EEG_ALPHA_REL = "eeg_alpha_rel"
    EEG_RELAXATION = "eeg_relaxation"  # 0..1, higher is more relaxed
    AROUSAL = "arousal"  # baseline-relative, higher is more aroused
    BREATH_FOLLOWING = "breath_following"  # 0..1
    QUALITY_EEG = "quality_eeg"
    QUALITY_PPG = "quality_ppg"
    QUALITY_ACCEL = "quality_accel"


def _frozen_float_array(name: str, value: object, ndim: int) -> FloatArray:
    arr = np.array(value, dtype=np.float64, copy=True)
    if arr.ndim != ndim:
        raise ValueError(
            f"Invalid value for {name!r}: expected a {ndim}-D array, got shape {arr.shape}."
        )
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, slots=True, eq=False)
class Chunk:
    """A block of samples of one signal kind.

    Parameters
    ----------
    kind : SignalKind
        What the samples are.
    data : array of shape (n_channels, n_times)
        Samples in physical units (see :data:`UNITS`), float64.  Missing samples are NaN.
    times : array of shape (n_times,)
        Seconds on the session clock, strictly increasing.
    sfreq : float
        Nominal sampling rate in Hz.
    ch_names : tuple of str
        One name per row of ``data``.

    Notes
    -----
    The arrays are copied and made read-only, so a chunk can be shared by every stage.
    """

    kind: SignalKind
    data: FloatArray
    times: FloatArray
    sfreq: float
    ch_names: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", SignalKind(self.kind))
        data = _frozen_float_array("data", self.data, 2)
        times = _frozen_float_array("times", self.times, 1)
        if data.shape[1] != times.shape[0]:
            raise ValueError(
                f"Invalid value for 'times': expected {data.shape[1]} timestamps to match "
                f"data of shape {data.shape}, got {times.shape[0]}."
            )
        if times.size > 1 and not np.all(np.diff(times) > 0):
            raise ValueError(
                "Invalid value for 'times': expected strictly increasing session times, "
                "got repeated or decreasing values. Sources must drop duplicates."
            )
        if not np.all(np.isfinite(times)):
            raise ValueError("Invalid value for 'times': expected finite values, got NaN/inf.")
        if not (math.isfinite(self.sfreq) and self.sfreq > 0):
            raise ValueError(f"Invalid value for 'sfreq': expected a positive rate in Hz, got {self.sfreq!r}.")
        names = tuple(str(n) for n in self.ch_names)
        if len(names) != data.shape[0]:
            raise ValueError(
                f"Invalid value for 'ch_names': expected {data.shape[0]} names for data of shape "
                f"{data.shape}, got {len(names)}."
            )
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "sfreq", float(self.sfreq))
        object.__setattr__(self, "ch_names", names)

    @classmethod
    def _trusted(
        cls,
        kind: SignalKind,
        data: FloatArray,
        times: FloatArray,
        sfreq: float,
        ch_names: tuple[str, ...],
    ) -> Chunk:
        """Build a chunk from parts that are already valid, skipping validation and copies.

        Internal fast path for stages that slice or join chunks they received (the pipeline
        does so hundreds of times per second).  The caller guarantees what the public
        constructor checks: ``kind`` a :class:`SignalKind`, ``data`` a read-only float64 array
        of shape (len(ch_names), n_times), ``times`` a read-only, finite, strictly increasing
        float64 array, ``sfreq`` a positive float and ``ch_names`` a tuple of str.  Views of a
        valid chunk's arrays (read-only) and freshly joined arrays marked read-only qualify.
        """
        # the slots' own setters (see `_CHUNK_SET` below): what object.__setattr__ does for a
        # frozen dataclass, about twice as fast
        self = object.__new__(cls)
        set_kind, set_data, set_times, set_sfreq, set_ch_names = _CHUNK_SET
        set_kind(self, kind)
        set_data(self, data)
        set_times(self, times)
        set_sfreq(self, sfreq)
        set_ch_names(self, ch_names)
        return self

    @property
    def n_times(self) -> int:
        """Number of samples in the chunk."""
        return int(self.times.shape[0])

    @property
    def n_channels(self) -> int:
        """Number of channels in the chunk."""
        return int(self.data.shape[0])

    @property
    def unit(self) -> str:
        """Physical unit of ``data``."""
        return UNITS[self.kind]


@dataclass(frozen=True, slots=True)
class Estimate:
    """One value of one metric at one session time.

    Parameters
    ----------
    metric : Metric
        What is measured; the unit is part of the metric's name.
    value : float
        The value, NaN when not computable.
    quality : float
        Confidence from 0 (unusable) to 1 (clean); bad signal lowers it.
    time : float
        Session time in seconds of the last sample that the value depends on.
    """

    metric: Metric
    value: float
    quality: float
    time: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "metric", Metric(self.metric))
        q = float(self.quality)
        if not (0.0 <= q <= 1.0) and not math.isnan(q):
            raise ValueError(f"Invalid value for 'quality': expected 0..1, got {q!r}.")
        object.__setattr__(self, "quality", 0.0 if math.isnan(q) else q)
        object.__setattr__(self, "value", float(self.value))
        object.__setattr__(self, "time", float(self.time))

    @classmethod
    def _trusted(cls, metric: Metric, value: float, quality: float, time: float) -> Estimate:
        """Build an estimate of a known :class:`Metric` member with little checking.

        Internal fast path for estimators that emit many estimates per second: the metric is
        not converted (the caller passes a :class:`Metric` member); the numbers are converted
        with ``float`` and a quality outside 0..1 or NaN goes through the validating
        constructor (so it raises or maps NaN to 0 exactly as ``Estimate(...)`` does).
        """
        q = float(quality)
        if not 0.0 <= q <= 1.0:
            return cls(metric, value, quality, time)
        self = object.__new__(cls)
        set_metric, set_value, set_quality, set_time = _ESTIMATE_SET  # slot setters, as in Chunk._trusted
        set_metric(self, metric)
        set_value(self, float(value))
        set_quality(self, q)
        set_time(self, float(time))
        return self


# Setters of the slots of the frozen records, for the trusted constructors: a slot's member
# descriptor stores the value exactly as ``object.__setattr__`` does, without looking it up.
_CHUNK_SET = tuple(getattr(Chunk, f).__set__ for f in ("kind", "data", "times", "sfreq", "ch_names"))
_ESTIMATE_SET = tuple(getattr(Estimate, f).__set__ for f in ("metric", "value", "quality", "time"))


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """What one stream of a source delivers: kind, nominal rate and channels."""

    kind: SignalKind
    sfreq: float
    ch_names: tuple[str, ...]
    device: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def unit(self) -> str:
        """Physical unit of the stream."""
        return UNITS[self.kind]


class SourceStatus(StrEnum):
    """Life cycle of a :class:`Source`."""

    IDLE = "idle"
    STREAMING = "streaming"
    SIGNAL_LOST = "signal_lost"
    STOPPED = "stopped"


class Clock(Protocol):
    """Session clock: seconds since the session started."""

    def now(self) -> float:
        """Return the current session time in seconds."""
        ...


@runtime_checkable
class Source(Protocol):
    """Anything that produces chunks.

    ``poll(now)`` never blocks: it returns whatever arrived since the last call, at most
    one chunk per signal kind, with times on the session clock.
    """

    @property
    def streams(self) -> tuple[StreamSpec, ...]:
        """The streams this source delivers."""
        ...

    @property
    def status(self) -> SourceStatus:
        """Current status."""
        ...

    def start(self) -> None:
        """Connect and start streaming."""
        ...

    def poll(self, now: float) -> list[Chunk]:
        """Return the chunks that arrived up to session time ``now``."""
        ...

    def stop(self) -> None:
        """Stop streaming and release the device."""
        ...


@runtime_checkable
class PaceFollower(Protocol):
    """A source whose physiology can hear the pacer (the simulated patient)."""

    def set_pace(self, pace_brpm: float | None, inhale_fraction: float = 0.4) -> None:
        """Command a breathing pace in breaths/min (``None``: no pacer)."""
        ...
