"""The DSP pipeline: routes each chunk to the estimators of its signal kind.

Two stages keep the output independent of how the data arrives:

1. :meth:`DspPipeline.update` runs the chunk-invariant estimators of one signal kind
   (EEG band powers and relaxation; PPG heart rate, HRV, quality and breathing; accelerometer
   quality and breathing).  Each emits estimates on fixed hops of its own stream.
2. :meth:`DspPipeline.advance` feeds the estimates up to a data time, sorted by time, to the
   estimators that combine streams (arousal).  The session engine calls it on a fixed grid of
   data time once every stream has passed the grid point, so the combination does not depend
   on which stream's chunk happened to arrive first.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .arousal import ArousalConfig, ArousalEstimator
from .cardiac import CardiacConfig, HeartRateEstimator, HrvEstimator
from .eeg import EegConfig, EegEstimator
from .quality import AccelQualityMonitor
from .respiration import RespirationEstimator
from .types import Chunk, Estimate, Metric, SignalKind, StreamSpec

__all__ = ["PPG_CHANNEL_PREFERENCE", "DspPipeline", "PipelineConfig"]

logger = logging.getLogger(__name__)

#: PPG rows tried in this order (names from the Muse source and the simulated patient): the
#: infrared channel pulses most strongly on a forehead sensor.
PPG_CHANNEL_PREFERENCE: tuple[str, ...] = ("PPG_IR", "ppg2", "ppg1", "PPG_RED", "ppg3", "PPG", "ppg")


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """Settings of :class:`DspPipeline`.

    Parameters
    ----------
    ppg_channel : str or None
        PPG row to use; ``None`` takes the first of :data:`PPG_CHANNEL_PREFERENCE` present,
        else the first row.
    eeg, cardiac, arousal : config or None
        Settings passed to the estimators (``None``: their defaults).  When the source has no
        EEG, arousal uses its PPG-only weights.
    history_s : float
        Seconds of estimates kept for :meth:`DspPipeline.latest_at`.
    """

    ppg_channel: str | None = None
    eeg: EegConfig | None = None
    cardiac: CardiacConfig | None = None
    arousal: ArousalConfig | None = None
    history_s: float = 30.0
    extra: Mapping[str, object] = field(default_factory=dict)


def _pick_ppg_row(spec: StreamSpec, wanted: str | None) -> int:
    names = list(spec.ch_names)
    if wanted is not None:
        if wanted not in names:
            raise ValueError(
                f"Invalid value for 'ppg_channel': expected one of {', '.join(names)}, got {wanted!r}."
            )
        return names.index(wanted)
    for name in PPG_CHANNEL_PREFERENCE:
        if name in names:
            return names.index(name)
    return 0


class DspPipeline:
    """Every estimator of a session, fed by chunks, with the newest estimate per metric.

    Parameters
    ----------
    streams : sequence of StreamSpec
        What the source delivers (``source.streams``); kinds without estimators (gyro) are
        accepted and ignored.
    config : PipelineConfig or None
        Settings.

    Notes
    -----
    ``update`` does no I/O and reads no clock.  Output of stage 1 is chunk-invariant because
    every estimator is; stage 2 (:meth:`advance`) is deterministic given the grid of times it
    is called with.
    """

    def __init__(self, streams: Sequence[StreamSpec], config: PipelineConfig | None = None) -> None:
        self.config = config if config is not None else PipelineConfig()
        self._specs = {s.kind: s for s in streams}
        cfg = self.config
        self._eeg: EegEstimator | None = None
        self._hr: HeartRateEstimator | None = None
        self._hrv: HrvEstimator | None = None
        self._accel_q: AccelQualityMonitor | None = None
        self._ppg_row = 0
        eeg = self._specs.get(SignalKind.EEG)
        ppg = self._specs.get(SignalKind.PPG)
        accel = self._specs.get(SignalKind.ACCEL)
        if eeg is not None:
            self._eeg = EegEstimator(ch_names=eeg.ch_names, sfreq=eeg.sfreq, config=cfg.eeg)
        if ppg is not None:
            self._ppg_row = _pick_ppg_row(ppg, cfg.ppg_channel)
            self._ppg_name = ppg.ch_names[self._ppg_row]
            self._hr = HeartRateEstimator(ppg.sfreq, cfg.cardiac)
            self._hrv = HrvEstimator(ppg.sfreq, cfg.cardiac)
        if accel is not None:
            self._accel_q = AccelQualityMonitor(accel.sfreq, n_channels=len(accel.ch_names))
        self._resp = RespirationEstimator(
            ppg_sfreq=None if ppg is None else ppg.sfreq,
            accel_sfreq=None if accel is None else accel.sfreq,
            accel_n_channels=3 if accel is None else len(accel.ch_names),
        )
        arousal_cfg = cfg.arousal
        if arousal_cfg is None:
            arousal_cfg = ArousalConfig() if eeg is not None else ArousalConfig.ppg_only()
        self._arousal = ArousalEstimator(arousal_cfg)
        self._pending: list[Estimate] = []
        self._history: dict[Metric, deque[Estimate]] = {}
        self._latest: dict[Metric, Estimate] = {}
        self._advanced_to = -np.inf

    @property
    def streams(self) -> tuple[StreamSpec, ...]:
        """The streams the pipeline was built for."""
        return tuple(self._specs.values())

    @property
    def latest(self) -> Mapping[Metric, Estimate]:
        """Newest estimate of every metric released by :meth:`advance`."""
        return dict(self._latest)

    def set_pace_hint(self, pace_brpm: float | None) -> None:
        """Tell the breathing estimator the pacer's rate (a hint, never a substitute)."""
        ok = pace_brpm is not None and np.isfinite(pace_brpm)
        self._resp.pace_hint_brpm = float(pace_brpm) if ok else None  # type: ignore[arg-type]

    def reset(self) -> None:
        """Forget all state (a new session)."""
        self.__init__(tuple(self._specs.values()), self.config)  # type: ignore[misc]

    def update(self, chunk: Chunk) -> list[Estimate]:
        """Run the estimators of ``chunk``'s kind; return their new estimates.

        The estimates are also queued for :meth:`advance`.
        """
        out: list[Estimate] = []
        kind = chunk.kind
        if kind is SignalKind.EEG and self._eeg is not None:
            out += self._eeg.update(chunk)
        elif kind is SignalKind.PPG and self._hr is not None and self._hrv is not None:
            one = Chunk(kind, chunk.data[self._ppg_row : self._ppg_row + 1], chunk.times, chunk.sfreq, (self._ppg_name,))
            out += self._hr.update(one)
            out += self._hrv.update(one)
            out += self._resp.update(one)
        elif kind is SignalKind.ACCEL and self._accel_q is not None:
            out += self._accel_q.update(chunk)
            out += self._resp.update(chunk)
        self._pending += out
        return out

    def advance(self, t: float) -> list[Estimate]:
        """Release every queued estimate with time <= ``t``, in time order, and run arousal.

        Returns the released estimates plus the arousal estimates they produced.
        """
        if t < self._advanced_to:
            return []
        self._advanced_to = t
        ready = [e for e in self._pending if e.time <= t]
        if not ready:
            return []
        self._pending = [e for e in self._pending if e.time > t]
        # time, then metric name: a total order independent of arrival order
        ready.sort(key=lambda e: (e.time, e.metric.value))
        released = ready + self._arousal.update(ready)
        for e in released:
            self._latest[e.metric] = e
            h = self._history.setdefault(e.metric, deque())
            h.append(e)
            while h and h[0].time < e.time - self.config.history_s:
                h.popleft()
        return released

    def latest_at(self, t: float) -> dict[Metric, Estimate]:
        """Newest released estimate of every metric with time <= ``t``."""
        out = {}
        for m, h in self._history.items():
            for e in reversed(h):
                if e.time <= t:
                    out[m] = e
                    break
        return out
