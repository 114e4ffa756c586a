"""The DSP pipeline: routes each chunk to the estimators of its signal kind.

Chunks are only buffered on arrival (:meth:`DspPipeline.update`).  The work happens in
:meth:`DspPipeline.advance`, which the session engine calls on a fixed grid of data time once
every stream has been received past the grid point:

1. every stream's samples up to that time go to the estimators of their kind, in a fixed order
   (EEG band powers and relaxation; PPG heart rate, HRV and breathing; accelerometer quality
   and breathing);
2. their estimates, sorted by time, go to the estimator that combines streams (arousal).

So what the estimators see, the pace hint included (set between two calls), depends only on
the samples and the grid, never on how the packets arrived: live runs, replays at any speed and
tests give identical estimates.

Speed: chunks are validated once, on arrival; the blocks cut from them for the estimators are
built with :meth:`Chunk._trusted` (read-only views and joined read-only arrays need no second
check).  Streams without estimators (gyro) are only tracked, never buffered.  Each buffered
stream copies its packets into one growing array on arrival, so a block is a view, not a join of
dozens of packets (see :class:`_StreamBuffer`).  :meth:`DspPipeline.latest_at` at or after the
newest released estimate (what the session engine asks for) is a copy of the newest estimates,
without scanning the history.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from .arousal import ArousalConfig, ArousalEstimator
from .cardiac import CardiacConfig, CardiacEstimator
from .eeg import EegConfig, EegEstimator
from .quality import AccelQualityMonitor
from .respiration import RespirationConfig, RespirationEstimator
from .types import Chunk, Estimate, Metric, SignalKind, StreamSpec

__all__ = ["PPG_CHANNEL_PREFERENCE", "STAGGERED_EEG", "STAGGERED_RESPIRATION", "DspPipeline", "PipelineConfig"]

logger = logging.getLogger(__name__)

#: PPG rows tried in this order (names from the Muse source and the simulated patient): the
#: infrared channel pulses most strongly on a forehead sensor.
PPG_CHANNEL_PREFERENCE: tuple[str, ...] = ("PPG_IR", "ppg2", "ppg1", "PPG_RED", "ppg3", "PPG", "ppg")

#: Breathing estimator settings of a pipeline by default.  The cardiac and quality hops end on
#: whole seconds of their streams, the EEG hop half a second later (decisions fall on both);
#: the accelerometer breathing hop ends a quarter second after the cardiac one and the PPG
#: breathing hop (the heaviest) three quarters after it, between decisions.  A real-time loop
#: that advances every quarter second (:class:`~adaptive.session.SessionEngine`) so spreads
#: one second's work over four ticks.
STAGGERED_RESPIRATION = RespirationConfig(ppg_offset_s=0.75, accel_offset_s=0.25)
#: EEG estimator settings of a pipeline by default (see :data:`STAGGERED_RESPIRATION`).
STAGGERED_EEG = EegConfig(hop_offset_s=0.5)

_UNKNOWN = object()  # `_buffers` has no entry: not one of the pipeline's streams
_STAMPS = itertools.count()  # source of `DspPipeline._stamp`


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """Settings of :class:`DspPipeline`.

    Parameters
    ----------
    ppg_channel : str or None
        PPG row to use; ``None`` takes the first of :data:`PPG_CHANNEL_PREFERENCE` present,
        else the first row.
    eeg, cardiac, arousal : config or None
        Settings passed to the estimators (``None``: their defaults; the EEG's with its hops
        staggered, :data:`STAGGERED_EEG`).  When the source has no
        EEG, arousal uses its PPG-only weights.
    respiration : RespirationConfig or None
        Settings of the breathing estimator; ``None``: its defaults with the hops staggered
        (:data:`STAGGERED_RESPIRATION`).
    history_s : float
        Seconds of estimates kept for :meth:`DspPipeline.latest_at`.
    """

    ppg_channel: str | None = None
    eeg: EegConfig | None = None
    cardiac: CardiacConfig | None = None
    arousal: ArousalConfig | None = None
    respiration: RespirationConfig | None = None
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
        self._cardiac: CardiacEstimator | None = None
        self._accel_q: AccelQualityMonitor | None = None
        self._ppg_row = 0
        eeg = self._specs.get(SignalKind.EEG)
        ppg = self._specs.get(SignalKind.PPG)
        accel = self._specs.get(SignalKind.ACCEL)
        if eeg is not None:
            self._eeg = EegEstimator(ch_names=eeg.ch_names, sfreq=eeg.sfreq,
                                     config=STAGGERED_EEG if cfg.eeg is None else cfg.eeg)
        if ppg is not None:
            self._ppg_row = _pick_ppg_row(ppg, cfg.ppg_channel)
            self._ppg_name = ppg.ch_names[self._ppg_row]
            self._cardiac = CardiacEstimator(ppg.sfreq, cfg.cardiac)
        if accel is not None:
            self._accel_q = AccelQualityMonitor(accel.sfreq, n_channels=len(accel.ch_names))
        self._resp: RespirationEstimator | None = None
        if ppg is not None or accel is not None:
            self._resp = RespirationEstimator(
                ppg_sfreq=None if ppg is None else ppg.sfreq,
                accel_sfreq=None if accel is None else accel.sfreq,
                accel_n_channels=3 if accel is None else len(accel.ch_names),
                config=STAGGERED_RESPIRATION if cfg.respiration is None else cfg.respiration,
            )
        arousal_cfg = cfg.arousal
        if arousal_cfg is None:
            arousal_cfg = ArousalConfig() if eeg is not None else ArousalConfig.ppg_only()
        self._arousal = ArousalEstimator(arousal_cfg)
        self._pending: list[Estimate] = []
        # kinds without estimators (gyro) are only tracked in `received_until`, never buffered:
        # their entry in `_buffers` is None
        used = {SignalKind.EEG: self._eeg, SignalKind.PPG: self._cardiac, SignalKind.ACCEL: self._accel_q}
        self._buffers: dict[SignalKind, _StreamBuffer | None] = {
            s.kind: (_StreamBuffer() if used.get(s.kind) is not None else None)
            for s in self._specs.values()
        }
        self._active = [b for b in self._buffers.values() if b is not None]
        self._history: dict[Metric, deque[Estimate]] = {}
        self._latest: dict[Metric, Estimate] = {}
        self._released_to = -math.inf  # newest time of any released estimate
        self._advanced_to = -np.inf
        self._received: dict[SignalKind, float] = {}
        self._received_view = MappingProxyType(self._received)
        # changes whenever `_received` does (unique across pipelines and resets): lets the
        # session engine skip recomputing its data horizon when nothing it depends on changed
        self._stamp = next(_STAMPS)

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
        if self._resp is None:
            return
        ok = pace_brpm is not None and math.isfinite(pace_brpm)  # a scalar: math is faster than numpy
        self._resp.pace_hint_brpm = float(pace_brpm) if ok else None  # type: ignore[arg-type]

    def reset(self) -> None:
        """Forget all state (a new session)."""
        self.__init__(tuple(self._specs.values()), self.config)  # type: ignore[misc]

    def update(self, chunk: Chunk) -> None:
        """Buffer a chunk until :meth:`advance` passes its samples to the estimators.

        Raises
        ------
        ValueError
            If the chunk's kind is not one of the pipeline's streams.
        """
        kind = chunk.kind
        buf = self._buffers.get(kind, _UNKNOWN)
        if buf is _UNKNOWN:
            raise ValueError(
                f"Invalid value for 'kind': expected one of {', '.join(repr(k.value) for k in self._buffers)}, "
                f"got {kind.value!r}. Build the pipeline with the source's streams."
            )
        times = chunk.times
        if len(times):
            if buf is not None:
                buf.push(chunk)
            self._received[kind] = float(times[-1])
            self._stamp = next(_STAMPS)

    @property
    def received_until(self) -> Mapping[SignalKind, float]:
        """Per stream, the time of the last sample received (a read-only live view)."""
        return self._received_view

    def _run(self, chunk: Chunk) -> list[Estimate]:
        out: list[Estimate] = []
        kind = chunk.kind
        if kind is SignalKind.EEG and self._eeg is not None:
            out += self._eeg.update(chunk)
        elif kind is SignalKind.PPG and self._cardiac is not None:
            # a row view of a validated chunk is itself valid (read-only): no need to re-check
            one = Chunk._trusted(
                kind, chunk.data[self._ppg_row : self._ppg_row + 1], chunk.times, chunk.sfreq, (self._ppg_name,)
            )
            out += self._cardiac.update(one)
            if self._resp is not None:
                out += self._resp.update(one)
        elif kind is SignalKind.ACCEL and self._accel_q is not None:
            out += self._accel_q.update(chunk)
            if self._resp is not None:
                out += self._resp.update(chunk)
        return out

    def advance(self, t: float) -> list[Estimate]:
        """Run the estimators on every buffered sample up to ``t``; release their estimates.

        Estimates with time <= ``t`` are released in time order (then by metric name) and fed
        to the arousal estimator; the arousal estimates follow them in the returned list.
        """
        if t <= self._advanced_to:
            return []
        self._advanced_to = t
        pending = self._pending
        for buf in self._active:
            block = buf.take_until(t)
            if block is not None:
                pending += self._run(block)
        if not pending:
            return []
        ready = [e for e in pending if e.time <= t]
        if not ready:
            return []
        self._pending = [e for e in pending if e.time > t] if len(ready) < len(pending) else []
        # time, then metric name (Metric is a StrEnum: members order as their names): a total
        # order independent of arrival order
        ready.sort(key=_release_key)
        released = ready + self._arousal.update(ready)
        history_s = self.config.history_s
        latest, history = self._latest, self._history
        newest = self._released_to
        for e in released:
            metric, time = e.metric, e.time
            latest[metric] = e
            h = history.get(metric)
            if h is None:
                h = history[metric] = deque()
            h.append(e)
            oldest = time - history_s
            while h[0].time < oldest:
                h.popleft()
            if time > newest:
                newest = time
        self._released_to = newest
        return released

    def latest_at(self, t: float) -> dict[Metric, Estimate]:
        """Newest released estimate of every metric with time <= ``t``."""
        if t >= self._released_to:
            # every kept estimate is at or before t, so the newest of each metric is the last
            # released one (`_latest` and `_history` gain their keys in the same order)
            return dict(self._latest)
        out = {}
        for m, h in self._history.items():
            for e in reversed(h):
                if e.time <= t:
                    out[m] = e
                    break
        return out


def _release_key(e: Estimate) -> tuple[float, Metric]:
    return (e.time, e.metric)


class _StreamBuffer:
    """Samples of one stream waiting for :meth:`DspPipeline.advance`.

    :meth:`take_until` is the plain form "join every waiting chunk, cut at ``t``", with the
    join done on arrival: each chunk is copied into a growing array, so a block is a read-only
    view of it, however many packets it spans.  (Joining at ``take_until`` costs a numpy call
    per packet and runs right after the heavy estimators, when the caches are cold; copying
    on arrival is two small copies in the packet loop.)  Samples once handed out are never
    written again: when the array is full the waiting samples move to a new one, so a block an
    estimator keeps stays as it was.  A chunk whose sampling rate or channel names differ from
    the waiting ones (never from a valid source) switches the buffer to joining chunk by chunk,
    which gives such blocks the first chunk's rate and names as before.

    Chunks are validated on arrival, so blocks are built with the trusted constructor (views
    of a read-only array are read-only).
    """

    __slots__ = (
        "parts", "_data", "_times", "_data_ro", "_times_ro", "_start", "_end", "_meta", "_sfreq", "_names",
    )

    def __init__(self) -> None:
        self.parts: list[Chunk] | None = None  # waiting chunks, once the buffer joins chunk by chunk
        self._data = self._data_ro = np.empty((0, 0))  # (n_channels, capacity), read-only alias
        self._times = self._times_ro = np.empty(0)  # (capacity,), read-only alias
        self._start = 0  # waiting samples: [_start, _end)
        self._end = 0
        self._meta: tuple[SignalKind, float, tuple[str, ...]] | None = None  # of the waiting samples
        self._sfreq = math.nan  # = _meta[1], _meta[2] (quick to reach)
        self._names: tuple[str, ...] = ()

    def push(self, chunk: Chunk) -> None:
        """Queue a non-empty chunk."""
        names = chunk.ch_names
        same = chunk.sfreq == self._sfreq and (names is self._names or names == self._names)
        if same and self.parts is None:
            times = chunk.times
            end = self._end
            stop = end + len(times)
            if stop <= len(self._times):
                self._data[:, end:stop] = chunk.data
                self._times[end:stop] = times
                self._end = stop
                return
        self._push(chunk)

    def _push(self, chunk: Chunk) -> None:
        """:meth:`push` when the arrays are full or the rate or names change (or are unknown)."""
        if self.parts is not None:
            self.parts.append(chunk)
            return
        meta = self._meta
        if meta is None or chunk.sfreq != meta[1] or chunk.ch_names != meta[2]:
            if self._start < self._end:  # other rate or names than the waiting samples
                self._to_parts()
                self.parts.append(chunk)  # type: ignore[union-attr]
                return
            meta = self._meta = (chunk.kind, chunk.sfreq, chunk.ch_names)
            self._sfreq, self._names = meta[1], meta[2]
            if self._data.shape[0] != len(meta[2]):
                self._allocate(0)
        times = chunk.times
        n = times.shape[0]
        end = self._end
        if end + n > self._times.shape[0]:
            self._allocate(n)
            end = self._end
        self._data[:, end : end + n] = chunk.data
        self._times[end : end + n] = times
        self._end = end + n

    def _allocate(self, n: int) -> None:
        """Move the waiting samples to new arrays with room for ``n`` more."""
        assert self._meta is not None
        start, end = self._start, self._end
        keep = end - start
        sfreq = self._meta[1]
        cap = max(256, int(16 * sfreq), 2 * (keep + n))  # a new array every ~16 s at most
        data = np.empty((len(self._meta[2]), cap))
        times = np.empty(cap)
        if keep:
            data[:, :keep] = self._data[:, start:end]
            times[:keep] = self._times[start:end]
        self._data, self._times = data, times
        self._data_ro, self._times_ro = data.view(), times.view()
        self._data_ro.flags.writeable = False
        self._times_ro.flags.writeable = False
        self._start, self._end = 0, keep

    def _to_parts(self) -> None:
        """Switch to joining chunk by chunk; the waiting samples become the first chunk."""
        kind, sfreq, names = self._meta  # type: ignore[misc]
        s, e = self._start, self._end
        self.parts = [Chunk._trusted(kind, self._data_ro[:, s:e], self._times_ro[s:e], sfreq, names)]
        self._start = self._end = 0

    def take_until(self, t: float) -> Chunk | None:
        """Remove and return the samples with time <= ``t`` as one chunk (None if none)."""
        if self.parts is not None:
            return self._take_parts(t)
        s, e = self._start, self._end
        if s == e:
            return None
        times = self._times_ro
        if times[s] > t:
            return None
        if times[e - 1] <= t:
            n = e
        else:
            n = s + int(times[s:e].searchsorted(t, "right"))
        self._start = n
        kind, sfreq, names = self._meta  # type: ignore[misc]
        return Chunk._trusted(kind, self._data_ro[:, s:n], times[s:n], sfreq, names)

    def _take_parts(self, t: float) -> Chunk | None:
        """:meth:`take_until` joining chunk by chunk."""
        parts = self.parts
        assert parts is not None
        if not parts or parts[0].times[0] > t:
            return None
        first = parts[0]
        if len(parts) == 1:
            data, times = first.data, first.times
        else:
            data = np.concatenate([c.data for c in parts], axis=1)
            times = np.concatenate([c.times for c in parts])
            data.flags.writeable = False
            times.flags.writeable = False
        if times[-1] <= t:
            self.parts = []
            if len(parts) == 1:
                return first
            return Chunk._trusted(first.kind, data, times, first.sfreq, first.ch_names)
        n = int(np.searchsorted(times, t, side="right"))
        self.parts = [Chunk._trusted(first.kind, data[:, n:], times[n:], first.sfreq, first.ch_names)]
        return Chunk._trusted(first.kind, data[:, :n], times[:n], first.sfreq, first.ch_names)
