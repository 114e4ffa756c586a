"""Arousal index: heart rate, HRV, breathing and EEG relaxation relative to a session baseline.

Formula
-------
For each input metric ``m`` with weight ``w_m`` (defaults: heart rate 0.4, RMSSD 0.2, breathing
rate 0.2, EEG relaxation 0.2; PPG-only: heart rate 0.7, RMSSD 0.3)::

    x_m = f_m(value)                 f = identity, except log for RMSSD (it is log-normal)
    z_m = sign_m * (x_m - mu_m) / max(scale_m, sd_m)
    s   = sum_m w_m * q_m * z_m / sum_m w_m
    arousal = tanh(s / 2)            in -1..1; 0 = baseline, higher = more aroused
    quality = (sum_m w_m * q_m / sum_m w_m) * q_motion

* ``sign``: +1 for heart rate and breathing rate, -1 for RMSSD and EEG relaxation.
* ``mu_m``, ``sd_m``: quality-weighted mean and standard deviation of ``x_m`` over the
  baseline (the first ``baseline_s`` seconds of the session, extended up to
  ``max_baseline_s`` until the driving metric has ``min_evidence_s`` of quality-weighted
  time).  ``scale_m`` is a physiological spread floor (5 bpm; 0.3 in ln(ms), about a 35 %
  change of RMSSD; 2 breaths/min; 0.15 relaxation units), so a quiet baseline does not blow up
  the z-scores.
* ``q_m`` is the quality of the latest estimate of ``m`` (0 if it is missing, older than
  ``max_age_s`` or NaN).  Multiplying by ``q_m`` *shrinks* an uncertain input towards the
  baseline: with little clean evidence the index stays near 0 instead of following artefacts
  (a quality-weighted, Bayesian-style shrinkage).  Missing inputs lower both the value's
  weight and the quality.
* ``q_motion``: the latest ``QUALITY_ACCEL`` value, if an accelerometer is present (1 if
  not), because heavy motion corrupts the PPG and EEG inputs.

Before the baseline is complete the index is NaN with quality 0.

Validation
----------
``experiments/bench/arousal.py`` (Stress-Predict, wrist BVP, 3 subjects, stress tasks vs rest)
gives a mean within-subject AUC of about 0.73 with the PPG-only weights, above heart rate or
RMSSD alone.  Alternatives checked there gave no robust gain and were not adopted: other
HR/RMSSD weights, adding PPG-derived breathing rate, spread floors without the baseline SD,
Bayesian ``q / (q + q0)`` shrinkage, a hard quality gate, a Kalman (mean-reverting) smoother,
a slowly drifting baseline, pulse amplitude and a robust HRV (median absolute successive
difference).  Weight choice by leave-one-subject-out cross-validation scored below the fixed
a-priori weights.  Pulse amplitude is also a poor marker at the forehead, whose skin vessels
are little constricted by sympathetic drive.

Streaming
---------
:class:`ArousalEstimator` consumes estimates, not chunks: one ``AROUSAL`` estimate is emitted
for each estimate of the driving metric (``HR_BPM`` by default), combining the latest other
inputs with a time at or before it.  Within one call estimates are processed in time order,
the driver last at equal times, so pass each poll's estimates together.
:class:`PpgArousalEstimator` is the PPG-only path (PPG chunks in, ``AROUSAL`` out), and
:func:`arousal_from_ppg` its offline twin.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ._checks import check_chunk, check_positive
from .cardiac import CardiacConfig, _BeatHopper, _hr_window, _hrv_window, _window, ppg_hr, ppg_hrv
from .types import Chunk, Estimate, FloatArray, Metric, SignalKind

__all__ = [
    "AROUSAL_INPUTS",
    "ArousalConfig",
    "ArousalEstimator",
    "ArousalSeries",
    "PpgArousalEstimator",
    "arousal_from_ppg",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Input:
    sign: float
    scale: float
    log: bool


#: Inputs the index understands: direction, spread floor and transform.
AROUSAL_INPUTS: dict[Metric, _Input] = {
    Metric.HR_BPM: _Input(+1.0, 5.0, False),
    Metric.RMSSD_MS: _Input(-1.0, 0.3, True),
    Metric.RESP_RATE_BRPM: _Input(+1.0, 2.0, False),
    Metric.EEG_RELAXATION: _Input(-1.0, 0.15, False),
}

_DEFAULT_WEIGHTS = {
    Metric.HR_BPM: 0.4,
    Metric.RMSSD_MS: 0.2,
    Metric.RESP_RATE_BRPM: 0.2,
    Metric.EEG_RELAXATION: 0.2,
}

_PPG_WEIGHTS = {Metric.HR_BPM: 0.7, Metric.RMSSD_MS: 0.3}

_QUALITY_ACCEL = Metric.QUALITY_ACCEL


@dataclass(frozen=True, slots=True)
class ArousalConfig:
    """Settings of :class:`ArousalEstimator`.

    Parameters
    ----------
    weights : mapping of Metric to float
        Weight of each input (keys from :data:`AROUSAL_INPUTS`).
    scales : mapping of Metric to float
        Spread floors overriding :data:`AROUSAL_INPUTS` (same units as ``x_m``).
    baseline_s : float
        Nominal baseline duration from the first driver estimate.
    max_baseline_s : float
        Longest baseline when the signal is poor.
    min_evidence_s : float
        Quality-weighted seconds of the driver the baseline needs (sum of quality times the
        time since the previous estimate).
    max_age_s : float
        Inputs older than this (relative to the driver) count as missing.
    driver : Metric
        The metric whose estimates trigger an output.
    """

    weights: Mapping[Metric, float] = field(default_factory=lambda: dict(_DEFAULT_WEIGHTS))
    scales: Mapping[Metric, float] = field(default_factory=dict)
    baseline_s: float = 90.0
    max_baseline_s: float = 300.0
    min_evidence_s: float = 30.0
    max_age_s: float = 15.0
    driver: Metric = Metric.HR_BPM

    def __post_init__(self) -> None:
        weights = {Metric(k): float(v) for k, v in dict(self.weights).items()}
        if not weights:
            raise ValueError("Invalid value for 'weights': expected at least one input, got none.")
        for m, w in weights.items():
            if m not in AROUSAL_INPUTS:
                raise ValueError(
                    f"Invalid value for 'weights': expected keys among "
                    f"{', '.join(repr(k.value) for k in AROUSAL_INPUTS)}, got {m.value!r}."
                )
            if not (math.isfinite(w) and w > 0):
                raise ValueError(f"Invalid value for 'weights[{m.value}]': expected a positive number, got {w!r}.")
        scales = {Metric(k): check_positive(f"scales[{Metric(k).value}]", v) for k, v in dict(self.scales).items()}
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "scales", scales)
        for name in ("baseline_s", "max_baseline_s", "max_age_s"):
            check_positive(name, getattr(self, name))
        if not (math.isfinite(self.min_evidence_s) and self.min_evidence_s >= 0):
            raise ValueError(f"Invalid value for 'min_evidence_s': expected >= 0 s, got {self.min_evidence_s!r}.")
        if self.max_baseline_s < self.baseline_s:
            raise ValueError(
                f"Invalid value for 'max_baseline_s': expected >= baseline_s ({self.baseline_s!r} s), "
                f"got {self.max_baseline_s!r}."
            )
        object.__setattr__(self, "driver", Metric(self.driver))
        if self.driver not in weights:
            raise ValueError(
                f"Invalid value for 'driver': expected one of the weighted inputs "
                f"({', '.join(m.value for m in weights)}), got {self.driver.value!r}."
            )

    @classmethod
    def ppg_only(cls, **kwargs: float) -> ArousalConfig:
        """Config for PPG alone: heart rate 0.7, RMSSD 0.3."""
        return cls(weights=dict(_PPG_WEIGHTS), **kwargs)  # type: ignore[arg-type]

    def scale(self, metric: Metric) -> float:
        """Spread floor of ``metric``."""
        return float(self.scales.get(metric, AROUSAL_INPUTS[metric].scale))


class _Baseline:
    """Quality-weighted mean and SD of one transformed input."""

    def __init__(self) -> None:
        self.sw = 0.0
        self.swx = 0.0
        self.swxx = 0.0
        self.evidence_s = 0.0
        self.last_t: float | None = None

    def add(self, x: float, q: float, t: float) -> None:
        dt = 0.0 if self.last_t is None else max(0.0, t - self.last_t)
        self.last_t = t
        if not (math.isfinite(x) and q > 0):
            return
        self.sw += q
        self.swx += q * x
        self.swxx += q * x * x
        self.evidence_s += q * dt

    def stats(self) -> tuple[float, float]:
        if self.sw <= 0:
            return math.nan, math.nan
        mu = self.swx / self.sw
        var = max(0.0, self.swxx / self.sw - mu * mu)
        return mu, math.sqrt(var)


class ArousalEstimator:
    """Baseline-relative arousal from other estimators' outputs.

    Parameters
    ----------
    config : ArousalConfig or None
        Inputs, weights and baseline (defaults: HR, RMSSD, breathing rate, EEG relaxation).

    Notes
    -----
    See the module docstring for the formula.  ``update`` never raises on bad values (NaN or
    low quality only lower the output quality); it raises ``TypeError`` for anything that is
    not an :class:`Estimate`.

    Examples
    --------
    >>> from adaptive.types import Estimate, Metric
    >>> est = ArousalEstimator(ArousalConfig.ppg_only(baseline_s=10.0, min_evidence_s=0.0))
    >>> calm = [Estimate(Metric.HR_BPM, 60.0, 1.0, float(t)) for t in range(12)]
    >>> out = est.update(calm + [Estimate(Metric.HR_BPM, 75.0, 1.0, 12.0)])
    >>> round(out[-1].value, 2), round(out[-1].quality, 2)
    (0.78, 0.7)
    """

    def __init__(self, config: ArousalConfig | None = None) -> None:
        self.config = config if config is not None else ArousalConfig()
        if not isinstance(self.config, ArousalConfig):
            raise TypeError(f"Invalid value for 'config': expected an ArousalConfig, got {type(self.config).__name__}.")
        self._wsum = float(sum(self.config.weights.values()))
        # what update() looks at, and per input (metric, weight, sign, log transform), built once
        self._used = frozenset(self.config.weights) | {Metric.QUALITY_ACCEL}
        self._terms = tuple(
            (m, w, AROUSAL_INPUTS[m].sign, AROUSAL_INPUTS[m].log) for m, w in self.config.weights.items()
        )
        self.reset()

    def reset(self) -> None:
        """Forget the baseline and all inputs."""
        self._t0: float | None = None
        self._baseline = {m: _Baseline() for m in self.config.weights}
        self._ref: dict[Metric, tuple[float, float]] | None = None  # (mu, spread) once taken
        self._latest: dict[Metric, Estimate] = {}
        self._motion: Estimate | None = None

    @property
    def baseline(self) -> dict[Metric, tuple[float, float]] | None:
        """Per input ``(mean, spread)`` of the transformed value, or None while it is being taken."""
        return None if self._ref is None else dict(self._ref)

    def update(self, estimates: Sequence[Estimate]) -> list[Estimate]:
        """Consume estimates; return one ``AROUSAL`` estimate per driver estimate.

        Parameters
        ----------
        estimates : sequence of Estimate
            Any estimates; those not used by the index are ignored.

        Returns
        -------
        arousal : list of Estimate
        """
        used = self._used
        items: list[Estimate] = []
        for e in estimates:
            if not isinstance(e, Estimate):
                raise TypeError(f"Invalid value for 'estimates': expected Estimate items, got {type(e).__name__}.")
            if e.metric in used:  # the others are ignored
                items.append(e)
        if not items:
            return []
        driver = self.config.driver
        if len(items) > 1:  # time order, the driver last at equal times (a stable sort: else input order)
            items.sort(key=lambda e: (e.time, e.metric == driver))
        out: list[Estimate] = []
        latest = self._latest
        for e in items:
            metric = e.metric
            if metric == _QUALITY_ACCEL:
                self._motion = e
                continue
            latest[metric] = e
            if self._ref is None:
                self._baseline[metric].add(self._transform(metric, e.value), e.quality, e.time)
            if metric == driver:
                out.append(self._emit(e.time))
        return out

    @staticmethod
    def _transform(metric: Metric, value: float) -> float:
        if AROUSAL_INPUTS[metric].log:
            return math.log(value) if value > 0 else math.nan
        return value

    def _maybe_close_baseline(self, t: float) -> None:
        cfg = self.config
        if self._t0 is None:
            self._t0 = t
        elapsed = t - self._t0
        if elapsed < cfg.baseline_s:
            return
        if self._baseline[cfg.driver].evidence_s < cfg.min_evidence_s and elapsed < cfg.max_baseline_s:
            return
        ref = {}
        for m, b in self._baseline.items():
            mu, sd = b.stats()
            if math.isfinite(mu):
                ref[m] = (mu, max(cfg.scale(m), sd))
        self._ref = ref
        logger.debug("arousal baseline taken at t=%.1f s over %.1f s: %s", t, elapsed, ref)

    def _emit(self, t: float) -> Estimate:
        if self._ref is None:
            self._maybe_close_baseline(t)
            if self._ref is None:
                return Estimate._trusted(Metric.AROUSAL, math.nan, 0.0, t)
        cfg = self.config
        ref, latest, max_age = self._ref, self._latest, cfg.max_age_s
        s = 0.0
        wq = 0.0
        for m, w, sign, log in self._terms:
            e = latest.get(m)
            if e is None or m not in ref or t - e.time > max_age:
                continue
            x = e.value
            if log:
                x = math.log(x) if x > 0 else math.nan
            if not math.isfinite(x) or e.quality <= 0:
                continue
            mu, spread = ref[m]
            z = sign * (x - mu) / spread
            s += w * e.quality * z
            wq += w * e.quality
        s /= self._wsum
        q = wq / self._wsum
        motion = self._motion
        if motion is not None and t - motion.time <= max_age:
            v = motion.value  # q *= min(1.0, max(0.0, v)), or 0 if v is not finite
            q *= (1.0 if v >= 1.0 else v if v > 0.0 else 0.0) if math.isfinite(v) else 0.0
        return Estimate._trusted(Metric.AROUSAL, math.tanh(s / 2.0), min(1.0, max(0.0, q)), t)


# -- PPG-only path -----------------------------------------------------------------------------------------
def _ppg_cardiac_config(window_s: float, step_s: float, cardiac: CardiacConfig | None) -> CardiacConfig:
    base = cardiac if cardiac is not None else CardiacConfig()
    fields = {name: getattr(base, name) for name in base.__dataclass_fields__}
    fields.update(hr_window_s=window_s, hrv_window_s=window_s, hop_s=step_s)
    return CardiacConfig(**fields)


class PpgArousalEstimator:
    """Arousal from a PPG stream alone (heart rate and RMSSD relative to the session start).

    Parameters
    ----------
    sfreq : float
        PPG sampling rate in Hz.
    window_s : float
        Window of the heart-rate and RMSSD estimates.
    step_s : float
        Output every ``step_s`` seconds of samples.
    config : ArousalConfig or None
        Index settings (default :meth:`ArousalConfig.ppg_only`).
    cardiac : CardiacConfig or None
        Beat and interval settings (its window and hop are replaced by ``window_s``/``step_s``).

    Notes
    -----
    Latency: each value uses the samples up to its time; beats need about 0.5 s to be
    confirmed, so the newest beat is missing from a window.  Output does not depend on
    chunking and equals :func:`arousal_from_ppg`.
    """

    def __init__(
        self,
        sfreq: float,
        window_s: float = 60.0,
        step_s: float = 5.0,
        config: ArousalConfig | None = None,
        cardiac: CardiacConfig | None = None,
    ) -> None:
        self.sfreq = check_positive("sfreq", sfreq)
        self._window_s = check_positive("window_s", window_s)
        cfg = _ppg_cardiac_config(self._window_s, check_positive("step_s", step_s), cardiac)
        self._cfg = cfg
        # one beat detector feeds both the HR and the HRV windows (as HeartRateEstimator and
        # HrvEstimator would, each with its own)
        self._beats = _BeatHopper(self.sfreq, cfg, self._window_s + 5.0, "PpgArousalEstimator", raw_window_s=self._window_s)
        self._arousal = ArousalEstimator(config if config is not None else ArousalConfig.ppg_only())

    def reset(self) -> None:
        """Forget all state, including the baseline."""
        self._beats.reset()
        self._arousal.reset()

    def update(self, chunk: Chunk) -> list[Estimate]:
        """Process a PPG chunk; return the ``AROUSAL`` estimates of the hops it completes.

        Raises
        ------
        ValueError
            If the chunk is not PPG or has another sampling rate.
        """
        check_chunk(chunk, kind=SignalKind.PPG, sfreq=self.sfreq, owner="PpgArousalEstimator")
        w = self._window_s
        estimates: list[Estimate] = []
        for t_hop, iv, raw in self._beats._push_raw(chunk.data[0], chunk.times):
            win = _window(iv, t_hop, w)
            for metric, (v, q) in _hr_window(win, w, raw, self.sfreq).items():
                estimates.append(Estimate._trusted(metric, v, q, t_hop))
            for metric, (v, q) in _hrv_window(win, t_hop, w, self._cfg).items():
                estimates.append(Estimate._trusted(metric, v, q, t_hop))
        return self._arousal.update(estimates)


@dataclass(frozen=True, slots=True, eq=False)
class ArousalSeries:
    """Offline arousal index.

    Parameters
    ----------
    times_s : array of shape (n_windows,)
        Window end times (time of the last sample) in seconds from the first sample.
    value : array of shape (n_windows,)
        Arousal, -1..1, higher is more aroused; NaN until the baseline is taken.
    quality : array of shape (n_windows,)
        0 to 1.
    """

    times_s: FloatArray
    value: FloatArray
    quality: FloatArray

    def __post_init__(self) -> None:
        for name in ("times_s", "value", "quality"):
            arr = np.array(getattr(self, name), dtype=np.float64, copy=True).reshape(-1)
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)


def arousal_from_ppg(
    ppg: FloatArray,
    fs: float,
    *,
    window_s: float = 60.0,
    step_s: float = 5.0,
) -> ArousalSeries:
    """Arousal index of a PPG record relative to its start (offline twin of :class:`PpgArousalEstimator`).

    Parameters
    ----------
    ppg : array of shape (n_times,)
        One PPG channel (NaN where missing), any units.
    fs : float
        Sampling rate in Hz.
    window_s : float
        Window of the heart-rate and RMSSD estimates, seconds.
    step_s : float
        Step between windows, seconds.

    Returns
    -------
    series : ArousalSeries
        ``times_s``, ``value`` and ``quality`` per window; the baseline is the start of the
        record (90 s by default, longer if the signal is poor).

    Raises
    ------
    ValueError
        If ``ppg`` is not 1-D or a parameter is not positive.

    Notes
    -----
    Heart rate (weight 0.7) and ln RMSSD (weight 0.3, sign reversed) over each window are
    z-scored against the baseline, weighted by their quality and squashed with ``tanh(s / 2)``;
    see :mod:`adaptive.arousal`.
    """
    x = np.asarray(ppg, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"Invalid value for 'ppg': expected a 1-D array (n_times,), got shape {x.shape}.")
    fs = check_positive("fs", fs)
    cfg = _ppg_cardiac_config(check_positive("window_s", window_s), check_positive("step_s", step_s), None)
    t = np.arange(x.size) / fs
    hr = ppg_hr(x, fs, times=t, config=cfg).estimates()
    hrv = ppg_hrv(x, fs, times=t, config=cfg).estimates()
    out = ArousalEstimator(ArousalConfig.ppg_only()).update(hr + hrv)
    return ArousalSeries(
        np.array([e.time for e in out]),
        np.array([e.value for e in out]),
        np.array([e.quality for e in out]),
    )
