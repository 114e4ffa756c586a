"""Breath following: how closely the patient's breathing tracks the pacer (score 0..1).

Two pieces of evidence are combined:

* **Rate** (always): every breathing-rate estimate (``Metric.RESP_RATE_BRPM``) is compared
  with the paces the pacer showed during the ``lag_s`` seconds before it.  The deviation
  ``d`` is the distance from the measured rate to the range ``[min, max]`` of those paces
  (zero inside the range), so the latency of the rate estimator and of the patient does not
  count as "not following" while the pace is slewing.  Each estimate scores
  ``2 ** -(d / tol) ** 2`` with ``tol = max(rel_tolerance * pace, abs_tolerance_brpm)``:
  1 on the pace, 0.5 one tolerance away, 0.06 two tolerances away.  The rate score is the
  quality-weighted mean over the last ``window_s`` seconds.
* **Phase** (optional): when the caller passes the patient's inhalation onset times, the
  pacer's phase at each onset is taken from the pace history (phase = integral of
  pace / 60, in cycles, so a phase-continuous pacer is assumed; a constant offset between
  this phase and the displayed one does not matter).  The phase score is the phase-locking
  value of the onsets in the last ``phase_window_s`` seconds, bias-corrected for the small
  number of breaths (``sqrt`` of the unbiased estimate of PLV**2, i.e. of the pairwise phase
  consistency), so random phases score near 0 even with 4-6 breaths.  With at least
  ``min_onsets`` onsets the score is ``rate ** (1 - phase_weight) * phase ** phase_weight``.

Notes
-----
**Near the patient's own rate.**  While the pace equals, or nearly equals, the patient's
natural rate (the ``matching`` phase and the first minute of ``slowing``), the rate score
cannot tell following from coincidence: it is high for everybody, follower or not.  This is
by design and documented rather than hidden:

* without any data the score is NaN and the quality 0, so "not enough data" is never
  read as "following"; the quality grows with the number of estimates in the window;
* the controller (:mod:`adaptive.controller`) does not use the score to leave ``matching``;
  it relies on it in ``slowing`` (and as one calm criterion), where the pace moves away from
  the natural rate no faster than the slew limit.  Because the score is high only while the
  measured rate lies within about one tolerance of the pace, a coincidental high score can
  only let the pace descend to about one tolerance (plus the smoothing lag) below what the
  patient actually breathes; the pace then holds and steps back up;
* with breath onsets, the phase term discriminates even near the natural rate: a patient
  breathing at 15 brpm under a 14.25 brpm pacer drifts by 0.75 cycle per minute, so the
  onsets spread over most of the cycle within a 60 s window and the phase score is low.

Latency: a change in following shows fully after ``window_s`` (30 s by default) plus the
rate estimator's own latency.
"""

from __future__ import annotations

import logging
import math
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from itertools import islice
from typing import TypeVar

import numpy as np

from ._checks import check_positive, check_range
from .errors import ConfigError
from .types import Estimate, FloatArray, Metric

__all__ = ["BreathFollowingEstimator", "FollowingConfig", "breath_following"]

logger = logging.getLogger(__name__)

#: Metrics accepted as the measured breathing rate.
RESP_METRICS = (Metric.RESP_RATE_BRPM, Metric.RESP_RATE_PPG_BRPM, Metric.RESP_RATE_ACCEL_BRPM)

_C = TypeVar("_C")


# --------------------------------------------------------------------------- config helpers
def _cfg_range(name: str, value: float, low: float, high: float, hint: str = "") -> float:
    try:
        return check_range(name, value, low, high, hint)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _cfg_positive(name: str, value: float, hint: str = "") -> float:
    try:
        return check_positive(name, value, hint)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _cfg_int(name: str, value: object, low: int, high: int, hint: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= int(value) <= high:
        raise ConfigError(
            f"Invalid value for {name!r}: expected an integer in [{low}, {high}], "
            f"got {value!r}. {hint}".strip()
        )
    return int(value)


def _cfg_bool(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"Invalid value for {name!r}: expected true or false, got {value!r}.")
    return bool(value)


def _config_from_mapping(
    cls: type[_C], mapping: Mapping[str, object], nested: Mapping[str, type] | None = None
) -> _C:
    """Build the frozen config ``cls`` from a mapping (e.g. a TOML table), rejecting unknown keys."""
    if not isinstance(mapping, Mapping):
        raise ConfigError(
            f"Invalid value for {cls.__name__}: expected a mapping of option names to values, "
            f"got {type(mapping).__name__}."
        )
    allowed = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    unknown = [k for k in mapping if k not in allowed]
    if unknown:
        raise ConfigError(
            f"Invalid key {unknown[0]!r} for {cls.__name__}: expected one of {', '.join(allowed)}. "
            "Check the spelling in the protocol file."
        )
    kwargs = dict(mapping)
    for key, sub in (nested or {}).items():
        if key in kwargs and isinstance(kwargs[key], Mapping):
            kwargs[key] = sub.from_mapping(kwargs[key])  # type: ignore[attr-defined]
    return cls(**kwargs)


@dataclass(frozen=True, slots=True)
class FollowingConfig:
    """Settings of :class:`BreathFollowingEstimator` and :func:`breath_following`.

    Parameters
    ----------
    window_s : float
        Smoothing window of the rate score, seconds (default 30).
    lag_s : float
        Each rate estimate is compared with the paces shown during the ``lag_s`` seconds
        before it (latency of the rate estimator and of the patient), default 20 s.
    rel_tolerance : float
        Deviation, relative to the pace, that halves the per-estimate score (default 0.12,
        i.e. 0.72 brpm at 6 brpm, 1.8 brpm at 15 brpm).
    abs_tolerance_brpm : float
        Smallest tolerance in breaths/min, for the resolution of rate estimators at slow
        paces (default 0.6).
    min_estimates : int
        Number of usable rate estimates in the window that gives full quality (default 10).
    phase_window_s : float
        Window of the phase-locking value, seconds (default 60).
    min_onsets : int
        Fewest breath onsets in ``phase_window_s`` to use the phase term (default 4).
    phase_weight : float
        Weight of the phase term in the geometric mean, 0..1 (default 0.5).
    """

    window_s: float = 30.0
    lag_s: float = 20.0
    rel_tolerance: float = 0.12
    abs_tolerance_brpm: float = 0.6
    min_estimates: int = 10
    phase_window_s: float = 60.0
    min_onsets: int = 4
    phase_weight: float = 0.5

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "window_s", _cfg_range("window_s", self.window_s, 5.0, 600.0))
        s(self, "lag_s", _cfg_range("lag_s", self.lag_s, 0.5, 300.0))
        s(self, "rel_tolerance", _cfg_range("rel_tolerance", self.rel_tolerance, 0.01, 1.0))
        s(self, "abs_tolerance_brpm", _cfg_range("abs_tolerance_brpm", self.abs_tolerance_brpm, 0.05, 5.0))
        s(self, "min_estimates", _cfg_int("min_estimates", self.min_estimates, 1, 10_000))
        s(self, "phase_window_s", _cfg_range("phase_window_s", self.phase_window_s, 10.0, 600.0))
        s(
            self,
            "min_onsets",
            _cfg_int("min_onsets", self.min_onsets, 3, 1000, "The bias-corrected PLV needs 3+."),
        )
        s(self, "phase_weight", _cfg_range("phase_weight", self.phase_weight, 0.0, 1.0))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, object]) -> FollowingConfig:
        """Build from a mapping such as a protocol's ``[pacing.following]`` table.

        Raises
        ------
        ConfigError
            On an unknown key (the message lists the allowed keys) or an invalid value.
        """
        return _config_from_mapping(cls, mapping)

    @property
    def retention_s(self) -> float:
        """How much pace history the streaming estimator keeps, seconds."""
        return max(self.window_s + self.lag_s, self.phase_window_s) + 1.0


# --------------------------------------------------------------------------- shared maths
def _rate_sample_score(rate: float, lo: float, hi: float, cfg: FollowingConfig) -> float:
    """Score of one rate estimate against the pace range ``[lo, hi]`` shown before it."""
    if not math.isfinite(rate):
        return math.nan
    d = max(lo - rate, rate - hi, 0.0)
    tol = max(cfg.rel_tolerance * 0.5 * (lo + hi), cfg.abs_tolerance_brpm)
    return float(2.0 ** (-((d / tol) ** 2)))


def _combine(
    scores: Sequence[float], weights: Sequence[float], thetas: Sequence[float], cfg: FollowingConfig
) -> tuple[float, float, float, float]:
    """Return (score, quality, rate_score, phase_score) from the samples in the windows."""
    n_total = len(scores)
    num = den = 0.0
    n_valid = 0
    for s, q in zip(scores, weights):
        if math.isfinite(s) and q > 0.0:
            num += q * s
            den += q
            n_valid += 1
    if n_valid == 0:
        return math.nan, 0.0, math.nan, math.nan
    rate_score = num / den
    quality = (den / n_total) * min(1.0, n_valid / cfg.min_estimates)
    phase_score = math.nan
    n = len(thetas)
    if n >= cfg.min_onsets:
        re = sum(math.cos(t) for t in thetas)
        im = sum(math.sin(t) for t in thetas)
        plv2 = (re * re + im * im - n) / (n * (n - 1))  # unbiased estimate of PLV**2
        phase_score = math.sqrt(min(1.0, max(0.0, plv2)))
    if math.isfinite(phase_score) and cfg.phase_weight > 0:
        w = cfg.phase_weight
        score = rate_score ** (1.0 - w) * phase_score**w
    else:
        score = rate_score
    return float(score), float(min(1.0, quality)), float(rate_score), float(phase_score)


# --------------------------------------------------------------------------- streaming
class BreathFollowingEstimator:
    """Streaming breath-following score from rate estimates and the pace history.

    Parameters
    ----------
    config : FollowingConfig, optional
        Windows and tolerances; the defaults suit 1-Hz rate estimates.

    Notes
    -----
    Call :meth:`update` whenever the controller steps (it may be called much more often than
    rate estimates arrive: an estimate is used once, identified by its time).  ``pace_brpm``
    is the pace shown *from* ``now`` on, so an estimate at time ``t`` is compared with the
    paces shown strictly before ``t``.  See the module docstring for how the score behaves
    when the pace is close to the patient's natural rate.

    Examples
    --------
    >>> from adaptive.types import Estimate, Metric
    >>> est = BreathFollowingEstimator()
    >>> for t in range(60):
    ...     out = est.update(Estimate(Metric.RESP_RATE_BRPM, 10.0, 0.9, float(t)), 10.0, float(t))
    >>> round(out.value, 2), round(out.quality, 2)
    (1.0, 0.9)
    >>> for t in range(60, 120):
    ...     out = est.update(Estimate(Metric.RESP_RATE_BRPM, 15.0, 0.9, float(t)), 10.0, float(t))
    >>> out.value < 0.01
    True
    """

    def __init__(self, config: FollowingConfig | None = None) -> None:
        if config is not None and not isinstance(config, FollowingConfig):
            raise TypeError(
                f"Invalid value for 'config': expected a FollowingConfig, got {type(config).__name__}."
            )
        self._cfg = config if config is not None else FollowingConfig()
        self.reset()

    @property
    def config(self) -> FollowingConfig:
        """The settings in use."""
        return self._cfg

    @property
    def rate_score(self) -> float:
        """Rate part of the last score (NaN without data)."""
        return self._rate_score

    @property
    def phase_score(self) -> float:
        """Phase part of the last score (NaN without enough onsets)."""
        return self._phase_score

    @property
    def latest(self) -> Estimate | None:
        """The last estimate returned by :meth:`update`, or None."""
        return self._latest

    def reset(self) -> None:
        """Forget all history."""
        self._pace_t: deque[float] = deque()
        self._pace_v: deque[float] = deque()
        self._pace_c: deque[float] = deque()  # pacer cycles at each entry (cumulative)
        self._pending: deque[tuple[float, float, float]] = deque()  # (t, rate, quality)
        self._scored: deque[tuple[float, float, float]] = deque()  # (t, score, quality)
        self._pending_onsets: deque[float] = deque()
        self._onsets: deque[tuple[float, float]] = deque()  # (t, pacer phase in rad)
        self._last_resp_t = -math.inf
        self._last_onset_t = -math.inf
        self._last_now = -math.inf
        self._rate_score = math.nan
        self._phase_score = math.nan
        self._latest: Estimate | None = None
        # (score, quality) of the scored samples and onsets as last combined; None after any
        # change to either window (the combination is recomputed only then)
        self._combined: tuple[float, float] | None = None

    def update(
        self,
        resp_estimate: Estimate | None,
        pace_brpm: float,
        now: float,
        breath_onsets: Iterable[float] | None = None,
    ) -> Estimate:
        """Add the newest rate estimate and the pace shown from ``now`` on; return the score.

        Parameters
        ----------
        resp_estimate : Estimate or None
            The newest breathing-rate estimate (``RESP_RATE_BRPM`` or one of its single-sensor
            variants).  Repeated estimates (same or older time) are ignored; None adds none.
        pace_brpm : float
            Pace shown from ``now`` on, breaths/min.
        now : float
            Data time in seconds, non-decreasing between calls.
        breath_onsets : iterable of float, optional
            Session times of the patient's inhalation onsets; onsets not newer than the
            newest one already given are ignored, so the caller may pass all of them.

        Returns
        -------
        Estimate
            ``Metric.BREATH_FOLLOWING`` at time ``now``: value 0..1 (NaN before any usable
            rate estimate), quality = mean input quality x min(1, usable estimates /
            ``min_estimates``).

        Raises
        ------
        ValueError
            If ``pace_brpm`` is not a positive number, ``now`` is not finite or goes back in
            time, or ``resp_estimate`` is not a breathing-rate estimate.
        """
        now = float(now)
        if not math.isfinite(now):
            raise ValueError(f"Invalid value for 'now': expected a finite data time in seconds, got {now!r}.")
        if now < self._last_now:
            raise ValueError(
                f"Invalid value for 'now': expected >= {self._last_now!r} (data time never goes back), "
                f"got {now!r}. Pass the newest data time seen so far."
            )
        pace = float(pace_brpm)
        if not (math.isfinite(pace) and pace > 0):
            raise ValueError(
                f"Invalid value for 'pace_brpm': expected a positive pace in breaths/min, got {pace_brpm!r}. "
                "Do not update the following score while the pacer is hidden."
            )
        if resp_estimate is not None and resp_estimate.metric not in RESP_METRICS:
            raise ValueError(
                "Invalid value for 'resp_estimate': expected one of "
                f"{', '.join(m.value for m in RESP_METRICS)}, got {resp_estimate.metric.value!r}."
            )
        cfg = self._cfg
        self._last_now = now
        # 1. pace history: the entry at `now` starts a new constant-pace segment
        if self._pace_t and self._pace_t[-1] == now:
            self._pace_v[-1] = pace  # same instant: the later command wins
        elif self._pace_v and self._pace_v[-1] == pace:
            pass  # the current segment goes on: nothing to record (and no rounding added)
        else:
            if self._pace_t:
                c = self._pace_c[-1] + (self._pace_v[-1] / 60.0) * (now - self._pace_t[-1])
            else:
                c = 0.0
            self._pace_t.append(now)
            self._pace_v.append(pace)
            self._pace_c.append(c)
        # 2. new inputs (deduplicated by time)
        if resp_estimate is not None and resp_estimate.time > self._last_resp_t:
            self._last_resp_t = resp_estimate.time
            self._pending.append((resp_estimate.time, resp_estimate.value, resp_estimate.quality))
        if breath_onsets is not None:
            for o in sorted(float(x) for x in breath_onsets):
                if math.isfinite(o) and o > self._last_onset_t:
                    self._last_onset_t = o
                    self._pending_onsets.append(o)
        # 3. score everything whose past is complete (time <= now)
        scored, onsets = self._scored, self._onsets
        n_before = (len(scored), len(onsets))
        while self._pending and self._pending[0][0] <= now:
            t, rate, q = self._pending.popleft()
            rng = self._pace_range(t)
            if rng is not None:
                scored.append((t, _rate_sample_score(rate, rng[0], rng[1], cfg), q))
        while self._pending_onsets and self._pending_onsets[0] <= now:
            o = self._pending_onsets.popleft()
            theta = self._pacer_phase(o)
            if theta is not None:
                onsets.append((o, theta))
        # 4. forget what no window needs any more
        changed = n_before != (len(scored), len(onsets))  # appended only: the lengths tell
        t_old = now - cfg.window_s
        while scored and scored[0][0] <= t_old:
            scored.popleft()
            changed = True
        t_old = now - cfg.phase_window_s
        while onsets and onsets[0][0] <= t_old:
            onsets.popleft()
            changed = True
        horizon = now - cfg.retention_s
        while len(self._pace_t) > 1 and self._pace_t[1] <= horizon:
            self._pace_t.popleft()
            self._pace_v.popleft()
            self._pace_c.popleft()
        # 5. combine, only when a window changed: the same samples give the same numbers, and
        # most steps (several per second) see no new rate estimate or onset
        if changed or self._combined is None:
            score, quality, self._rate_score, self._phase_score = _combine(
                [s for _, s, _ in scored],
                [q for _, _, q in scored],
                [th for _, th in onsets],
                cfg,
            )
            self._combined = (score, quality)
        else:
            score, quality = self._combined
        self._latest = Estimate._trusted(Metric.BREATH_FOLLOWING, score, quality, now)
        return self._latest

    def _pace_range(self, t: float) -> tuple[float, float] | None:
        """Min and max pace shown during [t - lag_s, t); None if no pace was shown before t."""
        pace_t = self._pace_t
        # segments j started before t (pace_t[j] < t) that did not end by the window's start
        # (the next segment starts after t - lag_s; the last one never ends): found by
        # bisection, as the segment start times increase
        j_hi = bisect_left(pace_t, t)
        j_lo = max(bisect_right(pace_t, t - self._cfg.lag_s) - 1, 0)
        if j_lo >= j_hi:
            return None
        if j_hi - j_lo == 1:
            v = self._pace_v[j_lo]
            return v, v
        seg = list(islice(self._pace_v, j_lo, j_hi))
        return min(seg), max(seg)

    def _pacer_phase(self, t: float) -> float | None:
        """Pacer phase in radians at time t (cycles of the integrated pace), None before the pacer."""
        idx = None
        for j in range(len(self._pace_t) - 1, -1, -1):
            if self._pace_t[j] <= t:
                idx = j
                break
        if idx is None:
            return None
        cycles = self._pace_c[idx] + (self._pace_v[idx] / 60.0) * (t - self._pace_t[idx])
        return 2.0 * math.pi * (cycles % 1.0)


# --------------------------------------------------------------------------- offline twin
def breath_following(
    resp_rate: FloatArray | Sequence[float],
    pace: FloatArray | Sequence[float],
    times: FloatArray | Sequence[float],
    *,
    quality: FloatArray | Sequence[float] | None = None,
    breath_onsets: FloatArray | Sequence[float] | None = None,
    config: FollowingConfig | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Breath-following score of a whole recording (offline twin of the streaming class).

    Parameters
    ----------
    resp_rate : array of shape (n_times,)
        Measured breathing rate in breaths/min at ``times`` (NaN: not computable).
    pace : array of shape (n_times,)
        Pace shown from ``times[i]`` until ``times[i + 1]``, breaths/min (positive).
    times : array of shape (n_times,)
        Data times in seconds, strictly increasing.
    quality : array of shape (n_times,), optional
        Quality 0..1 of each rate estimate (default 1).
    breath_onsets : array of shape (n_onsets,), optional
        Inhalation onset times of the patient, seconds.
    config : FollowingConfig, optional
        Windows and tolerances.

    Returns
    -------
    score : array of shape (n_times,)
        Following score 0..1 at each time (NaN before any usable estimate).
    score_quality : array of shape (n_times,)
        Its quality 0..1.

    Raises
    ------
    ValueError
        If the arrays differ in length, times are not strictly increasing or a pace is not
        positive.

    Notes
    -----
    Equals :class:`BreathFollowingEstimator` fed with ``update(Estimate(rate_i, q_i, t_i),
    pace_i, t_i)`` for each ``i`` (to floating-point rounding).
    """
    cfg = config if config is not None else FollowingConfig()
    r = np.asarray(resp_rate, dtype=np.float64)
    p = np.asarray(pace, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    q = np.ones_like(t) if quality is None else np.asarray(quality, dtype=np.float64)
    if not (r.ndim == p.ndim == t.ndim == q.ndim == 1 and r.size == p.size == t.size == q.size):
        raise ValueError(
            "Invalid value for 'resp_rate', 'pace', 'times', 'quality': expected 1-D arrays of one length, "
            f"got shapes {r.shape}, {p.shape}, {t.shape}, {q.shape}."
        )
    if t.size > 1 and not np.all(np.diff(t) > 0):
        raise ValueError("Invalid value for 'times': expected strictly increasing data times.")
    if not np.all(np.isfinite(t)):
        raise ValueError("Invalid value for 'times': expected finite values, got NaN/inf.")
    if not np.all(np.isfinite(p) & (p > 0)):
        raise ValueError("Invalid value for 'pace': expected positive paces in breaths/min, got NaN or <= 0.")
    q = np.where(np.isnan(q), 0.0, np.clip(q, 0.0, 1.0))
    n = t.size
    # per-estimate rate scores against the paces shown during [t_i - lag, t_i)
    sample = np.full(n, np.nan)
    usable = np.zeros(n, dtype=bool)
    # constant-pace segments: a repeated pace continues the current segment
    starts = np.concatenate([[True], p[1:] != p[:-1]]) if n else np.zeros(0, dtype=bool)
    seg_t, seg_p = t[starts], p[starts]
    for i in range(1, n):
        j1 = int(np.searchsorted(seg_t, t[i], side="left"))  # segments started before t_i
        j0 = min(max(int(np.searchsorted(seg_t, t[i] - cfg.lag_s, side="right")) - 1, 0), j1 - 1)
        seg = seg_p[j0:j1]
        sample[i] = _rate_sample_score(float(r[i]), float(seg.min()), float(seg.max()), cfg)
        usable[i] = True
    # pacer phase at each onset: cumulative cycles of the piecewise-constant pace
    cycles = np.concatenate([[0.0], np.cumsum((seg_p[:-1] / 60.0) * np.diff(seg_t))]) if n else np.zeros(0)
    on_t = np.zeros(0) if breath_onsets is None else np.unique(np.asarray(breath_onsets, dtype=np.float64))
    on_t = on_t[np.isfinite(on_t)]
    on_theta = np.full(on_t.size, np.nan)
    for k, o in enumerate(on_t):
        j = int(np.searchsorted(seg_t, o, side="right")) - 1
        if j >= 0:
            on_theta[k] = 2.0 * math.pi * ((cycles[j] + (seg_p[j] / 60.0) * (o - seg_t[j])) % 1.0)
    keep = np.isfinite(on_theta)
    on_t, on_theta = on_t[keep], on_theta[keep]
    score = np.full(n, np.nan)
    score_q = np.zeros(n)
    for i in range(n):
        win = usable & (t > t[i] - cfg.window_s) & (t <= t[i])
        ph = (on_t > t[i] - cfg.phase_window_s) & (on_t <= t[i])
        s, sq, _, _ = _combine(list(sample[win]), list(q[win]), list(on_theta[ph]), cfg)
        score[i], score_q[i] = s, sq
    return score, score_q
