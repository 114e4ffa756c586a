"""Closed-loop pacing controller: a small explicit state machine driven by data time.

The session loop calls :meth:`PacingController.step` with the newest estimate of every
metric and the data time ``now``; the controller answers with a frozen
:class:`PacingDecision` (state, pace, inhale fraction, readiness, reason, marker events).
It never reads a clock, does no I/O and uses no randomness, so a replay of the same
estimates gives the same decisions.

States (:class:`PacingState`)
-----------------------------
``calibrating``
    The pacer is hidden (``pacer_visible`` False, ``pace_brpm`` NaN): a visible cue would
    bias the natural rate being measured.  Good-quality, fresh estimates are collected; the
    calibration clock runs only while every signal metric except arousal is usable (arousal is
    relative to a baseline that is itself measured during calibration).  After
    ``calibration_s`` of usable data and at least ``min_calibration_estimates`` distinct
    good breathing-rate estimates, the baseline (:class:`CalibrationResult`, medians) is
    fixed.  Until each signal metric has been usable once, missing or bad estimates count as
    estimator warm-up, not as ``signal_lost``, for at most ``warmup_max_s``.
``matching``
    The pacer appears at ``match_fraction`` x the baseline rate for ``matching_s``.
``slowing``
    The pace descends toward the target in steps of ``step_brpm`` (each after
    ``step_dwell_s`` at the previous step; 0 gives a continuous ramp), never faster than
    ``max_slew_brpm_per_min``, and only while the patient follows (breath-following score
    >= ``follow_threshold`` with quality >= ``min_quality``) and arousal stays below
    ``hold_arousal_above``.  Otherwise the pace *holds*; after ``step_back_after_s`` of
    trouble it *steps back* up toward the highest pace credited as followed during the
    last following window (at least one ``step_brpm`` up, never above the matching pace),
    then up by ``step_brpm`` again every ``step_back_after_s`` while trouble lasts.  Descent
    resumes after ``resume_after_s`` of good following.  The target is reached ->
    ``resonance``.
``resonance``
    The pace holds at the target.  With ``tune_resonance``, a grid hill-climb in steps of
    ``tune_step_brpm`` moves the target within [``tune_min_brpm``, ``tune_max_brpm``] toward
    the pace with the largest mean ``HR_OSC_BPM`` (each probe is held ``tune_dwell_s``, the
    first ``tune_settle_s`` of it not scored).  When the patient stops following for
    ``step_back_after_s`` -> back to ``slowing`` (stepping back).  All calm criteria hold
    -> ``calm``.
``calm``
    Calm criteria: arousal <= reference - ``calm_arousal_margin``; EEG relaxation >= its
    calibration median + ``relaxation_margin`` or >= ``relaxation_abs`` (when ``use_eeg``);
    once calm, both value thresholds are relaxed by ``calm_hysteresis``;
    following score >= ``follow_threshold``; every signal metric, the relaxation and every
    quality metric fresh and of quality >= ``min_quality``.  Any criterion failing ->
    ``resonance`` at once on a quality or staleness failure, after ``calm_lapse_s`` of a
    failing value criterion.  Holding for ``calm_dwell_s`` with every criterion met ->
    ``ready_for_dosing``.
``ready_for_dosing``
    ``dose_ready`` is True exactly while in this state.  The marker event
    ``"ready_for_dosing"`` is emitted once per session, on the first entry.  The pace keeps
    holding at the target.  A quality or staleness failure of any required input leaves the
    state at once (to ``resonance``); a value criterion (arousal, relaxation, following)
    that fails continuously for ``ready_lapse_s`` leaves it too.  Re-earning readiness takes
    the full path again (``resonance`` -> ``calm`` for ``calm_dwell_s`` ->
    ``ready_for_dosing``); the re-entry is marked by its ``state:`` event only.
``signal_lost``
    A signal metric (default resp rate, HR, arousal) is missing, NaN, older than
    ``max_age_s`` or of quality < ``min_quality`` (in ``calibrating``, ``matching``,
    ``slowing`` and ``resonance`` for longer than ``signal_grace_s``, during which the pace
    holds).  The pace
    holds and readiness is off.
    After ``signal_recover_s`` of usable signals the controller returns to the state it
    came from (``calm`` and ``ready_for_dosing`` return to ``resonance``: calm must be
    re-earned).
``alert``
    Heart rate (fresh, good quality) outside [``hr_low_bpm``, ``hr_high_bpm``], or arousal
    rising by >= ``surge_rise`` within ``surge_window_s``.  Marker ``"alert:<cause> ..."``
    for each new cause, pace holds, never ready.  Leaves after ``alert_clear_s`` with no
    cause and measurable HR and arousal, to the state it came from (``calm``/``ready`` ->
    ``resonance``).  Alert takes precedence over ``signal_lost``.
``stopped``
    After :meth:`PacingController.stop`: terminal, pace holds, never ready.

Timers: after ``signal_lost`` or ``alert`` the dwell of the state returned to starts again
(``matching`` runs its full ``matching_s``; ``calm`` its full ``calm_dwell_s``), whereas the
calibration clock keeps the usable time gathered before the interruption.

Safety invariants (property-tested): the pace is NaN (hidden) only in ``calibrating``, and
otherwise lies in [``min_pace_brpm``, max(baseline, ``min_pace_brpm``)]; between two steps
it changes by at most ``max_slew_brpm_per_min / 60 * dt``; ``dose_ready`` is never True
while a required input is stale or of low quality, nor in ``alert``.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from .errors import ConfigError
from .following import (
    BreathFollowingEstimator,
    FollowingConfig,
    _cfg_bool,
    _cfg_int,
    _cfg_positive,
    _cfg_range,
    _config_from_mapping,
)
from .types import Estimate, Metric

__all__ = [
    "CalibrationResult",
    "PacingConfig",
    "PacingController",
    "PacingDecision",
    "PacingState",
    "PacingSummary",
]

logger = logging.getLogger(__name__)

_EPS = 1e-9  # brpm: "pace reached" tolerance, far below any display resolution
_STOP_BY = ("clinician", "patient")
_AROUSAL_REFERENCES = ("estimator", "calibration")
_QUALITY_METRICS = (Metric.QUALITY_PPG, Metric.QUALITY_EEG, Metric.QUALITY_ACCEL)


class PacingState(StrEnum):
    """States of :class:`PacingController` (see the module docstring)."""

    CALIBRATING = "calibrating"
    MATCHING = "matching"
    SLOWING = "slowing"
    RESONANCE = "resonance"
    CALM = "calm"
    READY_FOR_DOSING = "ready_for_dosing"
    SIGNAL_LOST = "signal_lost"
    ALERT = "alert"
    STOPPED = "stopped"


_S = PacingState
#: States a signal loss or an alert returns to (calm and ready return to resonance).
_RESUMABLE = (_S.CALIBRATING, _S.MATCHING, _S.SLOWING, _S.RESONANCE)


def _metric_tuple(name: str, value: object, allowed: Iterable[Metric] | None = None) -> tuple[Metric, ...]:
    if isinstance(value, (str, Metric)) or not isinstance(value, Iterable):
        raise ConfigError(f"Invalid value for {name!r}: expected a list of metric names, got {value!r}.")
    options = list(allowed) if allowed is not None else list(Metric)
    out = []
    for v in value:
        try:
            m = Metric(v)
        except ValueError:
            m = None
        if m is None or m not in options:
            raise ConfigError(
                f"Invalid value for {name!r}: expected metric names among "
                f"{', '.join(o.value for o in options)}, got {v!r}."
            )
        out.append(m)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class PacingConfig:
    """Settings of :class:`PacingController`; validated on construction.

    Parameters
    ----------
    calibration_s : float
        Seconds of usable data to measure the baseline (default 90).
    min_calibration_estimates : int
        Fewest distinct good breathing-rate estimates for a baseline (default 10).
    warmup_max_s : float
        Seconds from the first step that estimators may take to deliver their first usable
        estimates; after that, unusable signals mean ``signal_lost`` (default 60).
    matching_s : float
        Seconds at the matching pace, for the patient to lock on (default 30).
    match_fraction : float
        Matching pace / baseline rate, 0.8..1 (default 0.95).
    target_brpm : float
        Resonance target, 4.5..7 breaths/min (default 6).
    min_pace_brpm : float
        Floor of the pace, 3..target (default 4.5).
    max_slew_brpm_per_min : float
        Largest pace change per minute of data time, either direction (default 1).
    step_brpm : float
        Size of one slowing step and of one step back (default 0.5).
    step_dwell_s : float
        Seconds a reached step is held before the next one (default 0: continuous ramp).
    inhale_fraction : float
        Inhale share of each pacer cycle, 0.2..0.6 (default 0.4: exhale longer).
    follow_threshold : float
        Breath-following score that counts as following, 0..1 (default 0.5).
    max_lead_brpm : float
        While slowing, the pace never descends more than this below the latest measured
        breathing rate (default 1.5; a follower lags a 1 brpm/min ramp by well under that).
    hold_arousal_above : float
        Arousal at or above which slowing holds (default 0.5; see Notes on the scale).
    step_back_after_s : float
        Seconds of not following before stepping back up (default 30).
    resume_after_s : float
        Seconds of following before descending again after a hold (default 20).
    personal_target_after : int
        After this many failures to follow at paces within the resonance range (at or below
        ``tune_max_brpm``), the target becomes one ``step_brpm`` above the lowest pace lost,
        capped at ``tune_max_brpm`` (default 1; 0 never adapts the target).
    tune_resonance : bool
        Fine-tune the target toward the largest HR oscillation (default False).
    tune_min_brpm, tune_max_brpm : float
        Tuning range, within 3..7 (defaults 4.5 and 7).
    tune_step_brpm : float
        Grid step of the tuning (default 0.25).
    tune_dwell_s : float
        Seconds each tuning probe is held (default 90).
    tune_settle_s : float
        Seconds at the start of each probe not scored (default 30).
    calm_arousal_margin : float
        Calm needs arousal <= reference - margin (default 0.5).
    arousal_reference : {"estimator", "calibration"}
        Reference of the calm margin: 0 (the arousal estimator's own baseline) or the
        median arousal measured during calibration (default "estimator").
    relaxation_margin : float
        Calm needs EEG relaxation >= calibration median + margin ... (default 0.1) ...
    relaxation_abs : float
        ... or >= this absolute level, 0..1 (default 0.7).
    use_eeg : bool
        Require EEG relaxation and EEG quality for calm (default True; False for PPG-only
        setups, which then ignore ``quality_eeg``).
    calm_hysteresis : float
        Once calm, the arousal and relaxation criteria are relaxed by this much (same units,
        default 0.15), so values hovering at a threshold do not toggle calm (0..1).
    calm_lapse_s : float
        Seconds a value criterion (arousal, relaxation, following) may fail while calm before
        calm is left (default 10); quality and staleness failures leave calm at once.
    calm_dwell_s : float
        Seconds all calm criteria must hold before readiness (default 60).
    ready_lapse_s : float
        Seconds a value criterion may fail before readiness is withdrawn (default 10; quality
        and staleness failures withdraw it at once).
    min_quality : float
        Quality below which an estimate is unusable, 0..1 (default 0.5).
    max_age_s : float
        Age (now - estimate time) above which an estimate is stale (default 5).
    signal_recover_s : float
        Seconds of usable signals before leaving ``signal_lost`` (default 5).
    signal_grace_s : float
        In ``calibrating`` (whose clock counts only usable time), ``matching``, ``slowing`` and
        ``resonance``, signals may be unusable this long
        (default 10 s) before ``signal_lost``; the pace holds meanwhile.  Calm and readiness
        get no grace.
    hr_low_bpm, hr_high_bpm : float
        Heart-rate alert limits (defaults 45 and 130).
    surge_rise : float
        Arousal rise that raises an alert (default 0.8) ...
    surge_window_s : float
        ... within this many seconds (default 30).
    alert_clear_s : float
        Seconds values must be back in range before leaving ``alert`` (default 30).
    signal_metrics : tuple of Metric
        Metrics whose loss means ``signal_lost`` (default resp rate, HR, arousal).
    quality_metrics : tuple of Metric
        Signal-quality metrics that calm requires (default PPG, EEG, accelerometer); their
        usable level is min(value, quality).
    following : FollowingConfig
        Settings of the breath-following score.

    Notes
    -----
    Arousal thresholds are in the units of ``Metric.AROUSAL``: baseline-relative, 0 = the
    patient's own baseline, higher = more aroused.  The defaults (calm below -0.5, hold at
    +0.5, surge +0.8 within 30 s) suit both a z-like index and the bounded index of
    :mod:`adaptive.arousal` (``tanh(s / 2)`` of a weighted z-score ``s``, in -1..1, where
    -0.5 means ``s`` about -1.1 and a rise of 0.8 from baseline means ``s`` about +2.2).
    """

    calibration_s: float = 90.0
    min_calibration_estimates: int = 10
    warmup_max_s: float = 60.0
    matching_s: float = 30.0
    match_fraction: float = 0.95
    target_brpm: float = 6.0
    min_pace_brpm: float = 4.5
    max_slew_brpm_per_min: float = 1.0
    step_brpm: float = 0.5
    step_dwell_s: float = 0.0
    inhale_fraction: float = 0.4
    follow_threshold: float = 0.5
    max_lead_brpm: float = 1.5
    hold_arousal_above: float = 0.5
    step_back_after_s: float = 30.0
    resume_after_s: float = 20.0
    personal_target_after: int = 1
    tune_resonance: bool = False
    tune_min_brpm: float = 4.5
    tune_max_brpm: float = 7.0
    tune_step_brpm: float = 0.25
    tune_dwell_s: float = 90.0
    tune_settle_s: float = 30.0
    calm_arousal_margin: float = 0.5
    arousal_reference: str = "estimator"
    relaxation_margin: float = 0.1
    relaxation_abs: float = 0.7
    use_eeg: bool = True
    calm_hysteresis: float = 0.15
    calm_lapse_s: float = 10.0
    calm_dwell_s: float = 60.0
    ready_lapse_s: float = 10.0
    min_quality: float = 0.5
    max_age_s: float = 5.0
    signal_recover_s: float = 5.0
    signal_grace_s: float = 10.0
    hr_low_bpm: float = 45.0
    hr_high_bpm: float = 130.0
    surge_rise: float = 0.8
    surge_window_s: float = 30.0
    alert_clear_s: float = 30.0
    signal_metrics: tuple[Metric, ...] = (Metric.RESP_RATE_BRPM, Metric.HR_BPM, Metric.AROUSAL)
    quality_metrics: tuple[Metric, ...] = _QUALITY_METRICS
    following: FollowingConfig = field(default_factory=FollowingConfig)

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "calibration_s", _cfg_positive("calibration_s", self.calibration_s))
        s(
            self,
            "min_calibration_estimates",
            _cfg_int("min_calibration_estimates", self.min_calibration_estimates, 1, 100_000),
        )
        s(self, "matching_s", _cfg_range("matching_s", self.matching_s, 0.0, 3600.0))
        s(
            self,
            "match_fraction",
            _cfg_range(
                "match_fraction", self.match_fraction, 0.8, 1.0, "Start at or slightly below the own rate."
            ),
        )
        s(
            self,
            "target_brpm",
            _cfg_range(
                "target_brpm", self.target_brpm, 4.5, 7.0, "Resonance breathing lies at 4.5-7 breaths/min."
            ),
        )
        s(self, "min_pace_brpm", _cfg_range("min_pace_brpm", self.min_pace_brpm, 3.0, 7.0))
        if self.min_pace_brpm > self.target_brpm:
            raise ConfigError(
                f"Invalid value for 'min_pace_brpm': expected <= target_brpm ({self.target_brpm:g}), "
                f"got {self.min_pace_brpm:g}. Lower the floor or raise the target."
            )
        s(
            self,
            "max_slew_brpm_per_min",
            _cfg_range("max_slew_brpm_per_min", self.max_slew_brpm_per_min, 0.01, 6.0),
        )
        s(self, "step_brpm", _cfg_range("step_brpm", self.step_brpm, 0.05, 3.0))
        s(self, "step_dwell_s", _cfg_range("step_dwell_s", self.step_dwell_s, 0.0, 600.0))
        s(
            self,
            "inhale_fraction",
            _cfg_range("inhale_fraction", self.inhale_fraction, 0.2, 0.6, "0.4 makes the exhale longer."),
        )
        s(self, "follow_threshold", _cfg_range("follow_threshold", self.follow_threshold, 0.0, 1.0))
        s(self, "hold_arousal_above", _cfg_range("hold_arousal_above", self.hold_arousal_above, -10.0, 10.0))
        s(self, "step_back_after_s", _cfg_range("step_back_after_s", self.step_back_after_s, 0.0, 3600.0))
        s(self, "resume_after_s", _cfg_range("resume_after_s", self.resume_after_s, 0.0, 3600.0))
        s(self, "tune_resonance", _cfg_bool("tune_resonance", self.tune_resonance))
        s(self, "tune_min_brpm", _cfg_range("tune_min_brpm", self.tune_min_brpm, 3.0, 7.0))
        s(self, "tune_max_brpm", _cfg_range("tune_max_brpm", self.tune_max_brpm, 3.0, 7.0))
        if self.tune_min_brpm >= self.tune_max_brpm:
            raise ConfigError(
                f"Invalid value for 'tune_max_brpm': expected > tune_min_brpm ({self.tune_min_brpm:g}), "
                f"got {self.tune_max_brpm:g}."
            )
        s(self, "tune_step_brpm", _cfg_range("tune_step_brpm", self.tune_step_brpm, 0.05, 1.0))
        s(self, "tune_dwell_s", _cfg_positive("tune_dwell_s", self.tune_dwell_s))
        s(self, "tune_settle_s", _cfg_range("tune_settle_s", self.tune_settle_s, 0.0, 3600.0))
        if self.tune_settle_s >= self.tune_dwell_s:
            raise ConfigError(
                f"Invalid value for 'tune_settle_s': expected < tune_dwell_s ({self.tune_dwell_s:g}), "
                f"got {self.tune_settle_s:g}. Leave time to measure each probe."
            )
        s(self, "calm_arousal_margin", _cfg_range("calm_arousal_margin", self.calm_arousal_margin, 0.0, 10.0))
        s(self, "calm_hysteresis", _cfg_range("calm_hysteresis", self.calm_hysteresis, 0.0, 1.0))
        s(self, "max_lead_brpm", _cfg_range("max_lead_brpm", self.max_lead_brpm, 0.1, 20.0))
        s(self, "warmup_max_s", _cfg_range("warmup_max_s", self.warmup_max_s, 0.0, 3600.0))
        s(self, "personal_target_after", _cfg_int("personal_target_after", self.personal_target_after, 0, 100))
        s(self, "calm_lapse_s", _cfg_range("calm_lapse_s", self.calm_lapse_s, 0.0, 600.0))
        s(self, "signal_grace_s", _cfg_range("signal_grace_s", self.signal_grace_s, 0.0, 600.0))
        if self.arousal_reference not in _AROUSAL_REFERENCES:
            raise ConfigError(
                f"Invalid value for 'arousal_reference': expected one of "
                f"{', '.join(repr(o) for o in _AROUSAL_REFERENCES)}, got {self.arousal_reference!r}."
            )
        s(self, "relaxation_margin", _cfg_range("relaxation_margin", self.relaxation_margin, 0.0, 1.0))
        s(self, "relaxation_abs", _cfg_range("relaxation_abs", self.relaxation_abs, 0.0, 1.0))
        s(self, "use_eeg", _cfg_bool("use_eeg", self.use_eeg))
        s(self, "calm_dwell_s", _cfg_range("calm_dwell_s", self.calm_dwell_s, 0.0, 3600.0))
        s(self, "ready_lapse_s", _cfg_range("ready_lapse_s", self.ready_lapse_s, 0.0, 600.0))
        s(self, "min_quality", _cfg_range("min_quality", self.min_quality, 0.0, 1.0))
        s(self, "max_age_s", _cfg_positive("max_age_s", self.max_age_s))
        s(self, "signal_recover_s", _cfg_range("signal_recover_s", self.signal_recover_s, 0.0, 600.0))
        s(self, "hr_low_bpm", _cfg_range("hr_low_bpm", self.hr_low_bpm, 20.0, 100.0))
        s(self, "hr_high_bpm", _cfg_range("hr_high_bpm", self.hr_high_bpm, 80.0, 250.0))
        if self.hr_low_bpm >= self.hr_high_bpm:
            raise ConfigError(
                f"Invalid value for 'hr_high_bpm': expected > hr_low_bpm ({self.hr_low_bpm:g}), "
                f"got {self.hr_high_bpm:g}."
            )
        s(self, "surge_rise", _cfg_positive("surge_rise", self.surge_rise))
        s(self, "surge_window_s", _cfg_positive("surge_window_s", self.surge_window_s))
        s(self, "alert_clear_s", _cfg_range("alert_clear_s", self.alert_clear_s, 0.0, 3600.0))
        s(self, "signal_metrics", _metric_tuple("signal_metrics", self.signal_metrics))
        if not self.signal_metrics:
            raise ConfigError(
                "Invalid value for 'signal_metrics': expected at least one metric, got an empty list. "
                "The controller needs resp_rate_brpm to follow the patient."
            )
        if Metric.RESP_RATE_BRPM not in self.signal_metrics:
            raise ConfigError(
                f"Invalid value for 'signal_metrics': expected a list containing 'resp_rate_brpm', got "
                f"{[m.value for m in self.signal_metrics]}. "
                "The baseline and following need the breathing rate."
            )
        s(self, "quality_metrics", _metric_tuple("quality_metrics", self.quality_metrics, _QUALITY_METRICS))
        if isinstance(self.following, Mapping):
            s(self, "following", FollowingConfig.from_mapping(self.following))
        if not isinstance(self.following, FollowingConfig):
            raise ConfigError(
                f"Invalid value for 'following': expected a FollowingConfig or a mapping, "
                f"got {type(self.following).__name__}."
            )

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, object]) -> PacingConfig:
        """Build from a mapping such as a protocol's ``[pacing]`` table.

        ``following`` may be a nested mapping (``[pacing.following]``); metric lists are
        lists of metric names.

        Raises
        ------
        ConfigError
            On an unknown key (the message lists the allowed keys) or an invalid value.

        Examples
        --------
        >>> PacingConfig.from_mapping({"target_brpm": 5.5, "following": {"window_s": 40}}).target_brpm
        5.5
        """
        return _config_from_mapping(cls, mapping, nested={"following": FollowingConfig})

    @property
    def required_metrics(self) -> tuple[Metric, ...]:
        """Every metric that must be fresh and of good quality for readiness."""
        out = list(self.signal_metrics)
        if self.use_eeg:
            out.append(Metric.EEG_RELAXATION)
        out += [m for m in self.quality_metrics if self.use_eeg or m is not Metric.QUALITY_EEG]
        return tuple(dict.fromkeys(out))


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    """The patient's own baseline, medians of good estimates during ``calibrating``.

    Parameters
    ----------
    resp_rate_brpm : float
        Natural breathing rate (median of distinct good estimates).
    hr_bpm, rmssd_ms, arousal, eeg_relaxation, hrv_coherence : float
        Medians of the other metrics (NaN when none was usable).
    n_resp_estimates : int
        Number of breathing-rate estimates behind the median.
    duration_s : float
        Seconds of usable data the calibration took.
    time : float
        Data time at which the calibration ended.
    """

    resp_rate_brpm: float
    hr_bpm: float
    rmssd_ms: float
    arousal: float
    eeg_relaxation: float
    hrv_coherence: float
    n_resp_estimates: int
    duration_s: float
    time: float


@dataclass(frozen=True, slots=True)
class PacingDecision:
    """What the controller decided at one data time.

    Parameters
    ----------
    time : float
        Data time of the step, seconds.
    state : PacingState
        State after this step.
    pace_brpm : float
        Pace to show, breaths/min; NaN while hidden (see ``pacer_visible``).
    inhale_fraction : float
        Inhale share of each pacer cycle.
    dose_ready : bool
        True exactly while ``state`` is ``ready_for_dosing``.
    reason : str
        Why the controller is in ``state`` (the transition reason on a transition).
    events : tuple of str
        Marker strings emitted at this step, e.g. ``"state:slowing reason:..."``,
        ``"alert:hr_high 134 bpm"``, ``"ready_for_dosing"``.
    pacer_visible : bool
        False while calibrating (no pace yet).
    following : float
        Latest breath-following score 0..1 (NaN when unknown).
    """

    time: float
    state: PacingState
    pace_brpm: float
    inhale_fraction: float
    dose_ready: bool
    reason: str
    events: tuple[str, ...] = ()
    pacer_visible: bool = True
    following: float = math.nan


@dataclass(frozen=True, slots=True)
class PacingSummary:
    """Compact outcome of a session (times from the first step, seconds).

    Parameters
    ----------
    duration_s : float
        Data time from the first to the last step.
    final_state : PacingState
        State after the last step.
    time_to_calm_s, time_to_ready_s : float
        First entry into ``calm`` / ``ready_for_dosing`` (NaN if never).
    min_pace_brpm, final_pace_brpm : float
        Lowest pace shown and the last pace (NaN if the pacer never appeared).
    n_alerts : int
        Number of entries into ``alert``.
    alert_s, signal_lost_s : float
        Time spent in ``alert`` / ``signal_lost``.
    n_transitions : int
        Number of state changes.
    stopped_by : str
        "clinician", "patient" or "" when not stopped.
    calibration : CalibrationResult or None
        The baseline, if calibration finished.
    """

    duration_s: float
    final_state: PacingState
    time_to_calm_s: float
    time_to_ready_s: float
    min_pace_brpm: float
    final_pace_brpm: float
    n_alerts: int
    alert_s: float
    signal_lost_s: float
    n_transitions: int
    stopped_by: str
    calibration: CalibrationResult | None


@dataclass(slots=True)  # not frozen: built at every step, and a frozen __init__ is slower
class _Inputs:
    """Everything ``_next_state`` looks at, derived from the estimates at one step."""

    now: float
    signals_ok: bool
    signal_problem: str
    warming_up: bool
    alert_causes: tuple[tuple[str, str], ...]  # (kind, text)
    alert_measurable: str  # "" when HR and arousal are usable, else the problem
    calm_problem: str  # "" when every calm criterion holds
    calm_quality_problem: bool  # a required input is stale / of low quality
    follow_ok: bool
    follow_text: str
    resp_rate: float = math.nan  # the latest usable breathing rate, NaN if none


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


class PacingController:
    """Closed-loop breathing pacer: explicit state machine on estimates and data time.

    Parameters
    ----------
    config : PacingConfig, optional
        Settings (defaults as documented in :class:`PacingConfig`).

    Notes
    -----
    ``step`` may be called far more often than estimates change (e.g. once per chunk of
    every stream): estimates are identified by their time and used once where it matters
    (calibration medians, surge history, tuning).  A ``now`` smaller than the previous one
    (chunks of different streams interleave) is treated as the previous one: data time
    never goes back inside the controller.

    Examples
    --------
    >>> from adaptive.types import Estimate, Metric
    >>> ctl = PacingController(PacingConfig(calibration_s=10))
    >>> for t in range(20):
    ...     latest = {m: Estimate(m, v, 0.9, float(t)) for m, v in
    ...               [(Metric.RESP_RATE_BRPM, 12.0), (Metric.HR_BPM, 70.0), (Metric.AROUSAL, 0.0)]}
    ...     d = ctl.step(latest, float(t))
    >>> d.state, round(d.pace_brpm, 2), d.pacer_visible
    (<PacingState.MATCHING: 'matching'>, 11.4, True)
    """

    def __init__(self, config: PacingConfig | None = None) -> None:
        if config is not None and not isinstance(config, PacingConfig):
            raise TypeError(
                f"Invalid value for 'config': expected a PacingConfig, got {type(config).__name__}."
            )
        self._cfg = cfg = config if config is not None else PacingConfig()
        # metric lists that depend only on the (frozen) config, computed once
        self._signals_calibrating = tuple(m for m in cfg.signal_metrics if m is not Metric.AROUSAL)
        self._required_metrics = cfg.required_metrics
        # what _ingest records, in order (duplicates dropped: a repeat could change nothing)
        self._ingest_metrics = tuple(dict.fromkeys((
            *cfg.signal_metrics, Metric.HR_BPM, Metric.AROUSAL, Metric.RMSSD_MS,
            Metric.EEG_RELAXATION, Metric.HRV_COHERENCE, Metric.HR_OSC_BPM,
        )))  # fmt: skip
        # every metric whose usability a step looks at
        self._watched = tuple(dict.fromkeys(
            (*self._ingest_metrics, *self._required_metrics, Metric.RESP_RATE_BRPM)
        ))  # fmt: skip
        self.reset()

    # ------------------------------------------------------------------ public API
    @property
    def config(self) -> PacingConfig:
        """The settings in use."""
        return self._cfg

    @property
    def state(self) -> PacingState:
        """Current state."""
        return self._state

    @property
    def pace_brpm(self) -> float:
        """Current pace (NaN while calibrating)."""
        return self._pace

    @property
    def target_brpm(self) -> float:
        """Current resonance target (clamped to the baseline, tuned); NaN before calibration."""
        return self._target

    @property
    def calibration(self) -> CalibrationResult | None:
        """The baseline once calibration is done, else None."""
        return self._calibration

    @property
    def dose_announced(self) -> bool:
        """Whether ``ready_for_dosing`` has been announced (once per session)."""
        return self._announced

    def reset(self) -> None:
        """Start a new session: calibrating, no history."""
        cfg = self._cfg
        self._state = _S.CALIBRATING
        self._resume_state = _S.CALIBRATING
        self._entered_at = math.nan
        self._t0 = math.nan
        self._last_now = math.nan
        self._pace = math.nan
        self._setpoint = math.nan
        self._target = math.nan
        self._match_pace = math.nan
        self._ceiling = math.nan
        self._calibration: CalibrationResult | None = None
        self._calib_good_s = 0.0
        self._prev_signals_ok = False
        self._calib: dict[Metric, list[float]] = {}
        self._seen_t: dict[Metric, float] = {}  # last time of a used estimate per metric
        self._usable_once: set[Metric] = set()
        self._arousal_hist: deque[tuple[float, float]] = deque()
        # the same window's running minimum: increasing values, front = min(_arousal_hist)
        self._arousal_min: deque[tuple[float, float]] = deque()
        # per metric, the last estimate judged and its problem apart from age (see _usable)
        self._judged: dict[Metric, tuple[Estimate, str]] = {}
        self._osc_hist: deque[tuple[float, float]] = deque()
        self._pace_hist: deque[tuple[float, float]] = deque()  # decreasing paces: front = window max
        self._following = BreathFollowingEstimator(cfg.following)
        self._follow_est: Estimate | None = None
        self._follow_good_since = math.nan
        self._follow_bad_since = math.nan
        self._signals_ok_since = math.nan
        self._signals_bad_since = math.nan
        self._alert_clear_since = math.nan
        self._calm_fail_since = math.nan
        self._active_alerts: set[str] = set()
        self._last_followed = math.nan
        self._mode = "descend"  # slowing sub-mode: descend | hold | step_back
        self._low_fails: list[float] = []  # paces within the resonance range that were lost
        self._mode_since = math.nan
        self._step_reached_at = math.nan
        self._probe_reached_at = math.nan
        self._tune_scores: dict[float, float] = {}
        self._tune_dir = -1
        self._tune_done = False
        self._stop_request: tuple[str, str] | None = None
        self._stopped_by = ""
        self._announced = False
        # summary bookkeeping
        self._first_entry: dict[PacingState, float] = {}
        self._time_in: dict[PacingState, float] = {s: 0.0 for s in PacingState}
        self._n_alerts = 0
        self._n_transitions = 0
        self._min_pace = math.inf

    def stop(self, reason: str, by: str = "clinician") -> None:
        """End the session; the next :meth:`step` enters the terminal ``stopped`` state.

        Parameters
        ----------
        reason : str
            Why (recorded in the transition reason and marker).
        by : {"clinician", "patient"}
            Who ended it.

        Raises
        ------
        ValueError
            If ``by`` is not one of the allowed values or ``reason`` is empty.
        """
        if by not in _STOP_BY:
            raise ValueError(
                f"Invalid value for 'by': expected one of {', '.join(repr(b) for b in _STOP_BY)}, got {by!r}."
            )
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"Invalid value for 'reason': expected a non-empty string, got {reason!r}.")
        if self._stop_request is None and self._state is not _S.STOPPED:
            self._stop_request = (by, reason.strip())

    def step(
        self,
        latest: Mapping[Metric, Estimate],
        now: float,
        *,
        breath_onsets: Iterable[float] | None = None,
    ) -> PacingDecision:
        """Advance the controller to data time ``now``.

        Parameters
        ----------
        latest : mapping of Metric to Estimate
            The newest estimate of each metric (missing metrics count as stale).
        now : float
            Data time in seconds (e.g. ``chunk.times[-1]``); never a wall clock.
        breath_onsets : iterable of float, optional
            Inhalation onset times of the patient, if a respiration waveform is available
            (adds the phase term to the breath-following score).

        Returns
        -------
        PacingDecision
            State, pace, readiness, reason and this step's marker events.

        Raises
        ------
        ValueError
            If ``now`` is not finite.
        TypeError
            If ``latest`` is not a mapping.
        """
        now = float(now)
        if not math.isfinite(now):
            raise ValueError(f"Invalid value for 'now': expected a finite data time in seconds, got {now!r}.")
        if not isinstance(latest, Mapping):
            raise TypeError(
                "Invalid value for 'latest': expected a mapping of Metric to Estimate, "
                f"got {type(latest).__name__}."
            )
        if math.isnan(self._t0):
            self._t0 = self._entered_at = self._last_now = now
        if now < self._last_now:
            logger.debug("data time %.3f s behind %.3f s: using the latter", now, self._last_now)
            now = self._last_now
        dt = now - self._last_now
        self._last_now = now
        self._time_in[self._state] += dt
        events: list[str] = []

        # usability of every watched metric, judged once per step (it depends only on
        # `latest` and `now`); _ingest and _inputs read this table
        usable = self._usable_table(latest, now)
        self._ingest(usable, now, dt)
        inp = self._inputs(usable, now)
        self._update_timers(inp, now)
        new_state, reason = self._next_state(inp)
        if not reason:  # every state and transition has a reason
            reason = str(new_state)
        if new_state is not self._state:
            self._apply_transition(new_state, reason, inp, now, events)
        elif self._state is _S.ALERT:
            for kind, text in inp.alert_causes:
                if kind not in self._active_alerts:
                    events.append(f"alert:{text}")
                    logger.warning("pacing alert at %.1f s: %s", now, text)
            self._active_alerts |= {k for k, _ in inp.alert_causes}
        self._control_pace(inp, now, dt, events)
        if math.isfinite(self._pace):
            self._min_pace = min(self._min_pace, self._pace)
            # running maximum of the paces shown during the following window (monotonic deque)
            while self._pace_hist and self._pace_hist[-1][1] <= self._pace:
                self._pace_hist.pop()
            self._pace_hist.append((now, self._pace))
            horizon = now - self._cfg.following.window_s - self._cfg.following.lag_s
            while len(self._pace_hist) > 1 and self._pace_hist[0][0] < horizon:
                self._pace_hist.popleft()
            self._follow_est = self._following.update(
                latest.get(Metric.RESP_RATE_BRPM), self._pace, now, breath_onsets
            )
        follow_value = self._follow_est.value if self._follow_est is not None else math.nan
        return PacingDecision(
            time=now,
            state=self._state,
            pace_brpm=self._pace,
            inhale_fraction=self._cfg.inhale_fraction,
            dose_ready=self._state is _S.READY_FOR_DOSING,
            reason=reason,
            events=tuple(events),
            pacer_visible=math.isfinite(self._pace),
            following=follow_value,
        )

    def summary(self) -> PacingSummary:
        """Outcome so far: times to calm and ready, pace reached, alerts, signal loss."""

        def since_start(state: PacingState) -> float:
            t = self._first_entry.get(state)
            return t - self._t0 if t is not None else math.nan

        return PacingSummary(
            duration_s=0.0 if math.isnan(self._t0) else self._last_now - self._t0,
            final_state=self._state,
            time_to_calm_s=since_start(_S.CALM),
            time_to_ready_s=since_start(_S.READY_FOR_DOSING),
            min_pace_brpm=self._min_pace if math.isfinite(self._min_pace) else math.nan,
            final_pace_brpm=self._pace,
            n_alerts=self._n_alerts,
            alert_s=self._time_in[_S.ALERT],
            signal_lost_s=self._time_in[_S.SIGNAL_LOST],
            n_transitions=self._n_transitions,
            stopped_by=self._stopped_by,
            calibration=self._calibration,
        )

    # ------------------------------------------------------------------ inputs
    def _usable(
        self, latest: Mapping[Metric, Estimate], metric: Metric, now: float
    ) -> tuple[Estimate | None, str]:
        """The estimate if fresh and of good quality, else None and the problem."""
        cfg = self._cfg
        est = latest.get(metric)
        if est is None:
            return None, f"{metric} missing"
        # An estimate is usually seen at many steps: its value and quality verdict (frozen
        # fields) is cached, only the age is checked again.
        judged = self._judged.get(metric)
        if judged is not None and judged[0] is est:
            if judged[1]:
                return None, judged[1]
            age = now - est.time
            if age > cfg.max_age_s:
                return None, f"{metric} stale {age:.1f} s > {cfg.max_age_s:g} s"
            return est, ""
        problem = self._judge(metric, est)
        self._judged[metric] = (est, problem)
        if problem:
            return None, problem
        age = now - est.time
        if age > cfg.max_age_s:
            return None, f"{metric} stale {age:.1f} s > {cfg.max_age_s:g} s"
        return est, ""

    def _usable_table(
        self, latest: Mapping[Metric, Estimate], now: float
    ) -> dict[Metric, tuple[Estimate | None, str]]:
        """:meth:`_usable` of every watched metric (the same verdicts, inlined for speed)."""
        judged = self._judged
        max_age = self._cfg.max_age_s
        out: dict[Metric, tuple[Estimate | None, str]] = {}
        for m in self._watched:
            est = latest.get(m)
            if est is None:
                out[m] = (None, f"{m} missing")
                continue
            j = judged.get(m)
            if j is None or j[0] is not est:
                j = judged[m] = (est, self._judge(m, est))
            if j[1]:
                out[m] = (None, j[1])
            elif now - est.time > max_age:
                out[m] = (None, f"{m} stale {now - est.time:.1f} s > {max_age:g} s")
            else:
                out[m] = (est, "")
        return out

    def _judge(self, metric: Metric, est: Estimate) -> str:
        """The problem of ``est`` apart from its age ("" if none)."""
        cfg = self._cfg
        level = est.quality
        if metric in _QUALITY_METRICS:
            level = min(level, est.value) if math.isfinite(est.value) else 0.0
        if not math.isfinite(est.value):
            return f"{metric} NaN"
        if level < cfg.min_quality:
            return f"{metric} quality {level:.2f} < {cfg.min_quality:.2f}"
        return ""

    def _ingest(self, usable: Mapping[Metric, tuple[Estimate | None, str]], now: float, dt: float) -> None:
        """Record new usable estimates (once each) for calibration, surge and tuning."""
        cfg = self._cfg
        signals_ok = True
        required = self._required_signals()
        calibrating = self._state is _S.CALIBRATING
        seen_t = self._seen_t
        for m in self._ingest_metrics:
            est = usable[m][0]
            if est is None:
                if m in required:
                    signals_ok = False
                continue
            self._usable_once.add(m)
            if est.time <= seen_t.get(m, -math.inf):
                continue
            seen_t[m] = est.time
            if calibrating:
                self._calib.setdefault(m, []).append(est.value)
            if m is Metric.AROUSAL:
                self._arousal_hist.append((est.time, est.value))
                lows = self._arousal_min
                while lows and lows[-1][1] >= est.value:
                    lows.pop()
                lows.append((est.time, est.value))
            elif m is Metric.HR_OSC_BPM:
                self._osc_hist.append((est.time, est.value))
        while self._arousal_hist and self._arousal_hist[0][0] < now - cfg.surge_window_s:
            self._arousal_hist.popleft()
        while self._arousal_min and self._arousal_min[0][0] < now - cfg.surge_window_s:
            self._arousal_min.popleft()
        while self._osc_hist and self._osc_hist[0][0] < now - cfg.tune_dwell_s:
            self._osc_hist.popleft()
        if self._state is _S.CALIBRATING and signals_ok and self._prev_signals_ok:
            self._calib_good_s += dt  # only intervals with usable signals at both ends
        self._prev_signals_ok = signals_ok

    def _required_signals(self) -> tuple[Metric, ...]:
        """Signal metrics needed now: arousal is relative to a baseline that is measured during
        calibration, so calibrating does not wait for it."""
        if self._state is _S.CALIBRATING:
            return self._signals_calibrating
        return self._cfg.signal_metrics

    def _inputs(self, usable: Mapping[Metric, tuple[Estimate | None, str]], now: float) -> _Inputs:
        cfg = self._cfg
        required = self._required_signals()
        problems = [p for m in required if (p := usable[m][1])]
        warming_up = any(m not in self._usable_once for m in required)
        # alerts
        causes: list[tuple[str, str]] = []
        hr, hr_problem = usable[Metric.HR_BPM]
        ar, ar_problem = usable[Metric.AROUSAL]
        if hr is not None and hr.value > cfg.hr_high_bpm:
            causes.append(("hr_high", f"hr_high {hr.value:.0f} bpm"))
        if hr is not None and hr.value < cfg.hr_low_bpm:
            causes.append(("hr_low", f"hr_low {hr.value:.0f} bpm"))
        if ar is not None and self._arousal_hist:
            rise = ar.value - self._arousal_min[0][1]  # min over the surge window
            if rise >= cfg.surge_rise:
                causes.append(("arousal_surge", f"arousal_surge +{rise:.1f} in {cfg.surge_window_s:g} s"))
        # recovery from an alert needs the alert inputs that are signal metrics (default both)
        measurable = "; ".join(
            p
            for m, p in ((Metric.HR_BPM, hr_problem), (Metric.AROUSAL, ar_problem))
            if p and m in cfg.signal_metrics
        )
        # following
        follow_ok, follow_text = self._following_status()
        # calm criteria
        calm: list[str] = []
        quality_problem = False
        for m in self._required_metrics:
            p = usable[m][1]
            if p:
                calm.append(p)
                quality_problem = True
        # once calm, the value criteria are relaxed by the hysteresis so that values hovering at
        # a threshold do not toggle calm on and off
        slack = cfg.calm_hysteresis if self._state in (_S.CALM, _S.READY_FOR_DOSING) else 0.0
        if ar is not None:
            ref = 0.0
            if cfg.arousal_reference == "calibration" and self._calibration is not None:
                ref = self._calibration.arousal if math.isfinite(self._calibration.arousal) else 0.0
            limit = ref - cfg.calm_arousal_margin + slack
            if ar.value > limit:
                calm.append(f"arousal {ar.value:.2f} > {limit:.2f}")
        if cfg.use_eeg:
            rel = usable[Metric.EEG_RELAXATION][0]
            if rel is not None:
                base = self._calibration.eeg_relaxation if self._calibration is not None else math.nan
                need = cfg.relaxation_abs
                if math.isfinite(base):  # above its own baseline by the margin, or above the level
                    need = min(base + cfg.relaxation_margin, cfg.relaxation_abs)
                need -= slack
                if rel.value < need:
                    calm.append(f"relaxation {rel.value:.2f} < {need:.2f}")
        fe = self._follow_est
        if fe is None or not math.isfinite(fe.value) or fe.quality < cfg.min_quality:
            calm.append("following not measurable")
        elif fe.value < cfg.follow_threshold:
            calm.append(f"following {fe.value:.3f} < {cfg.follow_threshold:.3f}")
        return _Inputs(
            now=now,
            signals_ok=not problems,
            signal_problem="; ".join(problems),
            warming_up=warming_up,
            alert_causes=tuple(causes),
            alert_measurable=measurable,
            calm_problem="; ".join(calm),
            calm_quality_problem=quality_problem,
            follow_ok=follow_ok,
            follow_text=follow_text,
            resp_rate=resp.value if (resp := usable[Metric.RESP_RATE_BRPM][0]) else math.nan,
        )

    def _following_status(self) -> tuple[bool, str]:
        """Whether the patient follows well enough to keep slowing, and why (not)."""
        cfg = self._cfg
        fe = self._follow_est
        if fe is None or not math.isfinite(fe.value):
            return False, "following not measurable yet"
        if fe.quality < cfg.min_quality:
            return False, f"following quality {fe.quality:.3f} < {cfg.min_quality:.3f}"
        if fe.value < cfg.follow_threshold:
            return False, f"following {fe.value:.3f} < {cfg.follow_threshold:.3f}"
        if self._arousal_hist:
            a = self._arousal_hist[-1][1]
            if a >= cfg.hold_arousal_above:
                return False, f"arousal {a:.2f} >= {cfg.hold_arousal_above:.2f}"
        return True, f"following {fe.value:.3f}"

    def _update_timers(self, inp: _Inputs, now: float) -> None:
        """Condition timers (how long something has held); they are not states."""
        if inp.signals_ok:
            if math.isnan(self._signals_ok_since):
                self._signals_ok_since = now
            self._signals_bad_since = math.nan
        else:
            self._signals_ok_since = math.nan
            if math.isnan(self._signals_bad_since):
                self._signals_bad_since = now
        if not inp.alert_causes and not inp.alert_measurable:
            if math.isnan(self._alert_clear_since):
                self._alert_clear_since = now
        else:
            self._alert_clear_since = math.nan
        if inp.calm_problem:
            if math.isnan(self._calm_fail_since):
                self._calm_fail_since = now
        else:
            self._calm_fail_since = math.nan
        if inp.follow_ok:
            self._follow_bad_since = math.nan
            if math.isnan(self._follow_good_since):
                self._follow_good_since = now
            if self._pace_hist:  # credit the highest pace shown during the following window
                self._last_followed = self._pace_hist[0][1]
        else:
            self._follow_good_since = math.nan
            if math.isnan(self._follow_bad_since):
                self._follow_bad_since = now

    # ------------------------------------------------------------------ the state machine
    def _next_state(self, inp: _Inputs) -> tuple[PacingState, str]:
        """The one place where the state changes: return (next state, reason)."""
        cfg, st, now = self._cfg, self._state, inp.now
        dwell = now - self._entered_at
        if st is _S.STOPPED:
            return st, f"stopped by {self._stopped_by}"
        if self._stop_request is not None:
            by, why = self._stop_request
            return _S.STOPPED, f"stopped by {by}: {why}"
        # alert first: it overrides everything, including signal loss
        causes = ", ".join(text for _, text in inp.alert_causes)
        if st is _S.ALERT:
            if causes:
                return st, f"alert: {causes}"
            if inp.alert_measurable:
                return st, f"alert: cannot confirm recovery ({inp.alert_measurable})"
            clear = now - self._alert_clear_since
            if clear >= cfg.alert_clear_s:
                return self._resume_state, f"values back in range for {clear:.0f} s"
            return st, f"alert: values in range for {clear:.0f} of {cfg.alert_clear_s:g} s"
        if causes:
            return _S.ALERT, causes
        # signals
        if st is _S.SIGNAL_LOST:
            if not inp.signals_ok:
                return st, f"signal lost: {inp.signal_problem}"
            ok = now - self._signals_ok_since
            if ok >= cfg.signal_recover_s:
                return self._resume_state, f"signals back for {ok:.0f} s"
            return st, f"signals back for {ok:.0f} of {cfg.signal_recover_s:g} s"
        if not inp.signals_ok:
            if st is _S.CALIBRATING and inp.warming_up and now - self._t0 < cfg.warmup_max_s:
                return st, f"calibrating: waiting for first usable estimates ({inp.signal_problem})"
            poor = now - self._signals_bad_since
            if st in (_S.CALIBRATING, _S.MATCHING, _S.SLOWING, _S.RESONANCE) and poor < cfg.signal_grace_s:
                # a brief artefact (a head movement, a swallow) holds the pace without leaving
                # the state; calm and readiness are never kept on bad signal
                return st, f"holding: signal poor for {poor:.0f} of {cfg.signal_grace_s:g} s ({inp.signal_problem})"
            return _S.SIGNAL_LOST, inp.signal_problem
        match st:
            case _S.CALIBRATING:
                n = len(self._calib.get(Metric.RESP_RATE_BRPM, []))
                if self._calib_good_s >= cfg.calibration_s:
                    if n >= cfg.min_calibration_estimates:
                        rate = _median(self._calib[Metric.RESP_RATE_BRPM])
                        return _S.MATCHING, (
                            f"calibrated over {self._calib_good_s:.0f} s: own rate {rate:.2f} brpm "
                            f"from {n} estimates"
                        )
                    return st, f"calibration extended: {n} of {cfg.min_calibration_estimates} resp estimates"
                return st, f"calibrating: {self._calib_good_s:.0f} of {cfg.calibration_s:g} s"
            case _S.MATCHING:
                if dwell >= cfg.matching_s:
                    return _S.SLOWING, f"matched {self._match_pace:.2f} brpm for {dwell:.0f} s"
                return st, f"matching {self._match_pace:.2f} brpm: {dwell:.0f} of {cfg.matching_s:g} s"
            case _S.SLOWING:
                if self._mode == "descend" and self._pace <= self._target + _EPS:
                    return _S.RESONANCE, f"target {self._target:.2f} brpm reached, {inp.follow_text}"
                return st, self._slowing_text(inp)
            case _S.RESONANCE:
                if not inp.calm_problem:
                    return _S.CALM, "calm criteria met"
                bad = now - self._follow_bad_since
                if not inp.follow_ok and bad >= cfg.step_back_after_s:
                    return _S.SLOWING, (
                        f"not following at {self._pace:.2f} brpm for {bad:.0f} s ({inp.follow_text})"
                    )
                return st, f"holding {self._pace:.2f} brpm, not calm: {inp.calm_problem}"
            case _S.CALM:
                if inp.calm_problem:
                    lapse = now - self._calm_fail_since
                    if inp.calm_quality_problem or lapse >= cfg.calm_lapse_s:
                        return _S.RESONANCE, f"calm lapsed: {inp.calm_problem}"
                    return st, f"calm, criteria lapsing {lapse:.0f} of {cfg.calm_lapse_s:g} s: {inp.calm_problem}"
                if dwell >= cfg.calm_dwell_s:
                    return _S.READY_FOR_DOSING, f"calm for {dwell:.0f} s"
                return st, f"calm for {dwell:.0f} of {cfg.calm_dwell_s:g} s"
            case _S.READY_FOR_DOSING:
                if inp.calm_problem:
                    if inp.calm_quality_problem:
                        return _S.RESONANCE, f"ready withdrawn: {inp.calm_problem}"
                    lapse = now - self._calm_fail_since
                    if lapse >= cfg.ready_lapse_s:
                        return _S.RESONANCE, f"ready withdrawn after {lapse:.0f} s: {inp.calm_problem}"
                    return st, (
                        f"ready, criteria lapsing {lapse:.0f} of {cfg.ready_lapse_s:g} s: {inp.calm_problem}"
                    )
                return st, "ready: calm criteria hold"
        return st, str(st)  # pragma: no cover - every state is handled above

    def _slowing_text(self, inp: _Inputs) -> str:
        if self._mode == "descend":
            return f"descending toward {self._target:.2f} brpm, {inp.follow_text}"
        if self._mode == "hold":
            return f"holding {self._pace:.2f} brpm, {inp.follow_text}"
        return f"stepping back to {self._setpoint:.2f} brpm, {inp.follow_text}"

    def _apply_transition(
        self, new: PacingState, reason: str, inp: _Inputs, now: float, events: list[str]
    ) -> None:
        cfg, old = self._cfg, self._state
        if new in (_S.SIGNAL_LOST, _S.ALERT):
            if old in _RESUMABLE:
                self._resume_state = old
            elif old in (_S.CALM, _S.READY_FOR_DOSING):
                self._resume_state = _S.RESONANCE
            # from alert to signal_lost (or back): keep the resume state
        if old is _S.CALIBRATING and new is _S.MATCHING:
            self._finish_calibration(now, events)
        self._state = new
        self._entered_at = now
        self._n_transitions += 1
        self._first_entry.setdefault(new, now)
        events.append(f"state:{new} reason:{reason}")
        logger.info("pacing %s -> %s at %.1f s: %s", old, new, now, reason)
        if new is _S.ALERT:
            self._n_alerts += 1
            self._active_alerts = {k for k, _ in inp.alert_causes}
            for _, text in inp.alert_causes:
                events.append(f"alert:{text}")
                logger.warning("pacing alert at %.1f s: %s", now, text)
        if new is _S.STOPPED and self._stop_request is not None:
            self._stopped_by = self._stop_request[0]
            events.append(f"stop:{self._stop_request[0]} reason:{self._stop_request[1]}")
        if new is _S.READY_FOR_DOSING and not self._announced:
            self._announced = True
            events.append("ready_for_dosing")
            logger.info("ready for dosing at %.1f s", now)
        if new is _S.SLOWING:
            self._step_reached_at = math.nan
            self._mode_since = now
            if old is _S.MATCHING:
                self._mode, self._setpoint = "descend", self._pace
            elif old is _S.RESONANCE:  # the patient stopped following at the target
                self._low_fails.append(self._pace)
                if not self._adopt_personal_target(events):
                    self._mode = "step_back"
                    self._setpoint = self._step_back_setpoint()
                    events.append(f"pace:step_back to {self._setpoint:.2f} brpm")
            else:  # resuming after signal loss / alert: confirm following first
                self._mode, self._setpoint = "hold", self._pace
        if new is _S.RESONANCE:
            self._probe_reached_at = math.nan
        if new is _S.MATCHING and old is not _S.CALIBRATING:
            self._setpoint = self._match_pace

    def _finish_calibration(self, now: float, events: list[str]) -> None:
        cfg = self._cfg
        c = self._calib
        result = CalibrationResult(
            resp_rate_brpm=_median(c.get(Metric.RESP_RATE_BRPM, [])),
            hr_bpm=_median(c.get(Metric.HR_BPM, [])),
            rmssd_ms=_median(c.get(Metric.RMSSD_MS, [])),
            arousal=_median(c.get(Metric.AROUSAL, [])),
            eeg_relaxation=_median(c.get(Metric.EEG_RELAXATION, [])),
            hrv_coherence=_median(c.get(Metric.HRV_COHERENCE, [])),
            n_resp_estimates=len(c.get(Metric.RESP_RATE_BRPM, [])),
            duration_s=self._calib_good_s,
            time=now,
        )
        self._calibration = result
        self._ceiling = max(result.resp_rate_brpm, cfg.min_pace_brpm)
        match = max(cfg.match_fraction * result.resp_rate_brpm, cfg.min_pace_brpm)
        self._match_pace = min(match, self._ceiling)
        self._target = min(cfg.target_brpm, self._match_pace)
        self._pace = self._setpoint = self._last_followed = self._match_pace
        if result.resp_rate_brpm < cfg.min_pace_brpm:
            logger.warning(
                "own breathing rate %.2f brpm is below the floor %.2f brpm: pacing at the floor",
                result.resp_rate_brpm,
                cfg.min_pace_brpm,
            )
        events.append(
            f"calibration:done resp_rate {result.resp_rate_brpm:.2f} brpm hr {result.hr_bpm:.1f} bpm "
            f"rmssd {result.rmssd_ms:.1f} ms arousal {result.arousal:.2f} "
            f"relaxation {result.eeg_relaxation:.2f}"
        )

    # ------------------------------------------------------------------ pace
    def _step_back_setpoint(self) -> float:
        """Toward the last pace credited as followed, at least one step up, at most the matching pace."""
        up = self._pace + self._cfg.step_brpm
        if math.isfinite(self._last_followed):
            up = max(up, self._last_followed)
        return min(up, self._match_pace)

    def _control_pace(self, inp: _Inputs, now: float, dt: float, events: list[str]) -> None:
        """Choose the setpoint for the current state, then slew-limit the pace toward it."""
        cfg, st = self._cfg, self._state
        if not math.isfinite(self._pace):
            return  # hidden while calibrating
        if not inp.signals_ok:  # signal lost or within its grace: hold where we are
            self._setpoint = self._pace
        elif st is _S.MATCHING:
            self._setpoint = self._match_pace
        elif st is _S.SLOWING:
            self._control_slowing(inp, now, events)
            # the pacer leads the measured breathing by at most max_lead_brpm: a patient who does
            # not follow is never led further away (the following score, a 30 s mean, is slower)
            lead_floor = inp.resp_rate - cfg.max_lead_brpm
            if math.isfinite(lead_floor) and self._setpoint < min(self._pace, lead_floor):
                self._setpoint = min(self._pace, lead_floor)  # descend no further (steps back pass)
        elif st is _S.RESONANCE:
            self._control_tuning(now, events)
            self._setpoint = self._target
        elif st in (_S.CALM, _S.READY_FOR_DOSING):
            self._setpoint = self._target
        else:  # signal_lost, alert, stopped: hold where we are
            self._setpoint = self._pace
        max_step = cfg.max_slew_brpm_per_min / 60.0 * dt
        delta = min(max(self._setpoint - self._pace, -max_step), max_step)
        self._pace = min(max(self._pace + delta, cfg.min_pace_brpm), self._ceiling)

    def _control_slowing(self, inp: _Inputs, now: float, events: list[str]) -> None:
        cfg = self._cfg
        reached = abs(self._pace - self._setpoint) <= _EPS
        if self._mode == "descend":
            if not inp.follow_ok:
                self._mode, self._mode_since, self._setpoint = "hold", now, self._pace
                events.append(f"pace:hold at {self._pace:.2f} brpm reason:{inp.follow_text}")
                return
            if reached:
                if math.isnan(self._step_reached_at):
                    self._step_reached_at = now
                if now - self._step_reached_at >= cfg.step_dwell_s and self._setpoint > self._target + _EPS:
                    self._setpoint = max(self._target, self._setpoint - cfg.step_brpm)
                    self._step_reached_at = math.nan
            return
        if self._mode == "hold":
            self._setpoint = self._pace
            if inp.follow_ok:
                if now - max(self._follow_good_since, self._mode_since) >= cfg.resume_after_s:
                    self._mode, self._mode_since = "descend", now
                    self._step_reached_at = math.nan
                    events.append(f"pace:descend from {self._pace:.2f} brpm reason:{inp.follow_text}")
            elif now - max(self._follow_bad_since, self._mode_since) >= cfg.step_back_after_s:
                if self._pace <= cfg.tune_max_brpm + _EPS:
                    self._low_fails.append(self._pace)
                if self._adopt_personal_target(events):
                    return
                self._mode, self._mode_since = "step_back", now
                self._setpoint = self._step_back_setpoint()
                events.append(f"pace:step_back to {self._setpoint:.2f} brpm reason:{inp.follow_text}")
            return
        # step_back
        if inp.follow_ok:
            self._mode, self._mode_since, self._setpoint = "hold", now, self._pace
            events.append(f"pace:hold at {self._pace:.2f} brpm reason:{inp.follow_text}")
        elif (
            reached
            and now - self._mode_since >= cfg.step_back_after_s
            and self._setpoint < self._match_pace - _EPS
        ):
            self._mode_since = now
            self._setpoint = min(self._pace + cfg.step_brpm, self._match_pace)
            events.append(f"pace:step_back to {self._setpoint:.2f} brpm reason:{inp.follow_text}")

    def _adopt_personal_target(self, events: list[str]) -> bool:
        """After repeated failures to follow inside the resonance range, hold there instead.

        Resonance frequencies differ between people (about 4.5 to 7 breaths/min): a patient who
        cannot follow below a pace in that range (``personal_target_after`` times) gets a
        personal target one step above the lowest pace they lost it at (capped at
        ``tune_max_brpm``), rather than being pushed again and again toward the default.
        """
        cfg = self._cfg
        if cfg.personal_target_after == 0 or len(self._low_fails) < cfg.personal_target_after:
            return False
        personal = min(min(self._low_fails) + cfg.step_brpm, cfg.tune_max_brpm)
        if personal <= self._target + _EPS:
            return False
        lowest = min(self._low_fails)
        self._target = personal
        # rise to the new target and descend again only once the patient follows there
        self._mode, self._setpoint = "step_back", personal
        events.append(
            f"pace:personal_target {personal:.2f} brpm reason:could not follow below "
            f"{lowest:.2f} brpm {len(self._low_fails)} times"
        )
        logger.info("personal target %.2f brpm (lost following at %.2f brpm %d times)",
                    personal, lowest, len(self._low_fails))
        return True

    def _control_tuning(self, now: float, events: list[str]) -> None:
        """Grid hill-climb of the target toward the largest HR oscillation (``tune_resonance``)."""
        cfg = self._cfg
        if not cfg.tune_resonance or self._tune_done:
            return
        if abs(self._pace - self._target) > _EPS:
            self._probe_reached_at = math.nan
            return
        if math.isnan(self._probe_reached_at):
            self._probe_reached_at = now
            return
        if now - self._probe_reached_at < cfg.tune_dwell_s:
            return
        vals = [v for t, v in self._osc_hist if t >= self._probe_reached_at + cfg.tune_settle_s]
        if len(vals) < 3:
            return  # keep holding until the oscillation is measured
        key = round(self._target, 6)
        self._tune_scores[key] = float(sum(vals) / len(vals))
        self._probe_reached_at = math.nan
        lo = max(cfg.tune_min_brpm, cfg.min_pace_brpm)
        hi = min(cfg.tune_max_brpm, self._ceiling)
        best = max(self._tune_scores, key=lambda p: self._tune_scores[p])  # first maximum: deterministic
        for d in (self._tune_dir, -self._tune_dir):
            cand = round(best + d * cfg.tune_step_brpm, 6)
            if lo - _EPS <= cand <= hi + _EPS and cand not in self._tune_scores:
                self._tune_dir = d
                self._target = cand
                events.append(
                    f"resonance:probe {cand:.2f} brpm "
                    f"(hr_osc {self._tune_scores[key]:.1f} bpm at {key:.2f} brpm)"
                )
                return
        self._tune_done = True
        self._target = best
        events.append(f"resonance:tuned {best:.2f} brpm (hr_osc {self._tune_scores[best]:.1f} bpm)")
        logger.info("resonance target tuned to %.2f brpm", best)
