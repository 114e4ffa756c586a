"""``calmloop report SESSION``: one self-contained HTML page per session, for the clinical team.

The page holds

* a figure (PNG, embedded as base64 so the page is one file): breathing rate against the pace
  shown, heart rate, arousal and EEG relaxation, over the session, with the controller's states
  as coloured bands behind every panel and in a strip of their own, and the events (ready for
  dosing, alerts, stop) as vertical lines;
* a small before/after chart of the patient-reported outcomes, when there are any;
* a summary table from ``session.json``: patient, protocol, duration and why it ended, the
  baseline measured during calibration, time to calm and to ready, the pace reached, alerts,
  time without signal, and each outcome with its change and percent change;
* the list of key events.

Estimates of low quality (below the protocol's ``min_quality``, the threshold the controller
itself uses) are drawn as faint dots, the others as lines.  The page is written owner-only
(``0600``): it names the patient's pseudonymous id and holds health data.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import itertools
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from adaptive.controller import PacingDecision, PacingState
from adaptive.errors import ConfigError
from adaptive.records import XDF_FILENAME, Marker, Recording, parse_marker
from adaptive.types import FloatArray, Metric
from sensors.readers import read_recording

from .cohort import read_sidecar

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "STATE_COLOURS",
    "SessionSeries",
    "plot_outcomes",
    "plot_session",
    "report_html",
    "run_report",
    "session_series",
    "write_report",
]

logger = logging.getLogger(__name__)

#: Colour of each controller state (bands and strip), colour-blind-friendly where it matters.
STATE_COLOURS: Mapping[PacingState, str] = {
    PacingState.CALIBRATING: "#b9c4d0",
    PacingState.MATCHING: "#9ecae1",
    PacingState.SLOWING: "#4a90c8",
    PacingState.RESONANCE: "#66c2a4",
    PacingState.CALM: "#41ab5d",
    PacingState.READY_FOR_DOSING: "#006d2c",
    PacingState.SIGNAL_LOST: "#7f7f7f",
    PacingState.ALERT: "#d7301f",
    PacingState.STOPPED: "#252525",
}
_GAP_S = 5.0  # a line breaks where estimates are further apart than this (s)


@dataclass(frozen=True, slots=True)
class SessionSeries:
    """Time series of a session, ready to plot (times in seconds of session time).

    Parameters
    ----------
    estimates : mapping of Metric to (times, values, qualities)
        Arrays of shape (n,) per metric.
    decision_times, pace_brpm : array of shape (n_decisions,)
        Decision times and the pace shown (NaN while hidden).
    states : list of (start, end, PacingState)
        Constant-state segments.
    markers : tuple of Marker
        Every marker of the recording.
    t0 : float
        Session time of the first sample.
    """

    estimates: Mapping[Metric, tuple[FloatArray, FloatArray, FloatArray]]
    decision_times: FloatArray
    pace_brpm: FloatArray
    states: list[tuple[float, float, PacingState]]
    markers: tuple[Marker, ...]
    t0: float


def _state_segments(
    decisions: Sequence[PacingDecision], end: float
) -> list[tuple[float, float, PacingState]]:
    out: list[tuple[float, float, PacingState]] = []
    for d in decisions:
        if out and out[-1][2] is d.state:
            continue
        if out:
            out[-1] = (out[-1][0], d.time, out[-1][2])
        out.append((d.time, d.time, d.state))
    if out:
        out[-1] = (out[-1][0], max(end, out[-1][0]), out[-1][2])
    return out


def session_series(recording: Recording) -> SessionSeries:
    """Collect the estimates, pace, states and markers of a recording for plotting.

    Raises
    ------
    ConfigError
        If the recording holds neither estimates nor decisions (a foreign recording: replay it
        first with ``calmloop replay`` and report the replay's folder).
    """
    if not recording.estimates and not recording.decisions:
        raw_paths = recording.metadata.get("paths", "?")
        paths = ", ".join(map(str, raw_paths)) if isinstance(raw_paths, list) else str(raw_paths)
        raise ConfigError(
            f"Invalid value for 'SESSION': {paths} holds no estimates or decisions (a "
            f"{recording.metadata.get('format', '?')} recording). Replay it with 'calmloop replay FILE' and "
            "report the replay's session folder."
        )
    by_metric: dict[Metric, list[tuple[float, float, float]]] = {}
    for e in recording.estimates:
        by_metric.setdefault(e.metric, []).append((e.time, e.value, e.quality))
    estimates = {
        m: tuple(np.asarray(col, dtype=np.float64) for col in zip(*rows)) for m, rows in by_metric.items()
    }
    decisions = list(recording.decisions)
    times = np.asarray([d.time for d in decisions], dtype=np.float64)
    pace = np.asarray([d.pace_brpm if d.pacer_visible else math.nan for d in decisions], dtype=np.float64)
    end = recording.end_time
    if decisions and not math.isfinite(end):
        end = decisions[-1].time
    t0 = (
        recording.start_time
        if math.isfinite(recording.start_time)
        else (float(times[0]) if times.size else 0.0)
    )
    return SessionSeries(
        estimates=estimates,  # type: ignore[arg-type]
        decision_times=times,
        pace_brpm=pace,
        states=_state_segments(decisions, float(end) if math.isfinite(end) else 0.0),
        markers=tuple(recording.markers),
        t0=float(t0),
    )


def _broken(t: FloatArray, v: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Insert NaN where consecutive points are more than ``_GAP_S`` apart (no line across gaps)."""
    if t.size < 2:
        return t, v
    cut = np.flatnonzero(np.diff(t) > _GAP_S) + 1
    return np.insert(t, cut, np.nan), np.insert(v, cut, np.nan)


def _series(
    ax: object, s: SessionSeries, metric: Metric, min_quality: float, colour: str, label: str
) -> bool:
    """Good estimates as a line, poor ones as faint dots; False when the metric is absent."""
    item = s.estimates.get(metric)
    if item is None or item[0].size == 0:
        return False
    t, v, q = item
    good = (q >= min_quality) & np.isfinite(v)
    poor = (q < min_quality) & np.isfinite(v)
    tm = (t - s.t0) / 60.0
    if poor.any():
        ax.plot(
            tm[poor],
            v[poor],
            ".",
            ms=2,
            color=colour,
            alpha=0.25,  # type: ignore[attr-defined]
            label=f"{label} (quality < {min_quality:g})",
        )
    if good.any():
        x, y = _broken(tm[good], v[good])
        ax.plot(x, y, "-", lw=1.2, color=colour, label=label)  # type: ignore[attr-defined]
    return True


def _event_lines(s: SessionSeries) -> list[tuple[float, str, str]]:
    """(time in minutes, colour, label) of the events drawn as vertical lines."""
    out: list[tuple[float, str, str]] = []
    for m in s.markers:
        p = parse_marker(m.text)
        t = (m.time - s.t0) / 60.0
        if p.kind == "ready_for_dosing":
            out.append((t, STATE_COLOURS[PacingState.READY_FOR_DOSING], "ready for dosing"))
        elif p.kind == "alert":
            out.append((t, STATE_COLOURS[PacingState.ALERT], f"alert: {p.value.split(' ')[0]}"))
        elif p.kind == "stop":
            out.append((t, "#000000", f"stop ({p.value or 'clinician'})"))
    return out


def plot_session(
    recording: Recording,
    *,
    min_quality: float = 0.5,
    baseline: Mapping[str, object] | None = None,
    target_brpm: float | None = None,
    title: str = "",
) -> Figure:
    """The session figure: breathing vs pace, HR, arousal, EEG relaxation and the state strip.

    Parameters
    ----------
    recording : Recording
        A calmloop session (with estimates and decisions).
    min_quality : float
        Estimates below this quality are drawn as faint dots.
    baseline : mapping, optional
        The calibration result of ``session.json`` (``resp_rate_brpm``, ``hr_bpm``,
        ``arousal``, ``eeg_relaxation``), drawn as dashed lines.
    target_brpm : float, optional
        The protocol's target pace, drawn as a dotted line.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        A figure outside pyplot (no backend is selected, no display is needed, nothing to
        close); ``fig.savefig("x.png")`` renders it with Agg.

    Raises
    ------
    ConfigError
        If the recording holds no estimates or decisions.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    s = session_series(recording)
    base = dict(baseline or {})
    fig = Figure(figsize=(11, 9.5), dpi=90)
    axes = fig.subplots(5, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2, 2, 2, 0.6]})
    ax_br, ax_hr, ax_ar, ax_rx, ax_st = axes
    for ax in axes[:4]:
        for a, b, state in s.states:
            ax.axvspan((a - s.t0) / 60.0, (b - s.t0) / 60.0, color=STATE_COLOURS[state], alpha=0.13, lw=0)
        ax.grid(True, color="#dddddd", lw=0.5)
    # breathing vs pace
    _series(ax_br, s, Metric.RESP_RATE_BRPM, min_quality, "#1f4e79", "breathing rate")
    if s.decision_times.size:
        ax_br.step(
            (s.decision_times - s.t0) / 60.0,
            s.pace_brpm,
            where="post",
            color="#e6550d",
            lw=1.6,
            label="pace shown",
        )
    if isinstance(base.get("resp_rate_brpm"), (int, float)):
        ax_br.axhline(
            float(base["resp_rate_brpm"]),
            color="#1f4e79",
            ls="--",
            lw=0.8,  # type: ignore[arg-type]
            label="own rate at baseline",
        )
    if target_brpm is not None and math.isfinite(target_brpm):
        ax_br.axhline(target_brpm, color="#e6550d", ls=":", lw=0.8, label=f"target {target_brpm:g}/min")
    ax_br.set_ylabel("breaths/min")
    ax_br.set_title("Breathing rate and the pace shown", loc="left", fontsize=10)
    ax_br.legend(loc="lower left", fontsize=7, ncol=2, framealpha=0.85)
    for ax, metric, colour, label, unit, key in (
        (ax_hr, Metric.HR_BPM, "#a50f15", "heart rate", "beats/min", "hr_bpm"),
        (
            ax_ar,
            Metric.AROUSAL,
            "#6a51a3",
            "arousal (baseline-relative, higher = more aroused)",
            "arousal",
            "arousal",
        ),
        (
            ax_rx,
            Metric.EEG_RELAXATION,
            "#238b45",
            "EEG relaxation (0-1, higher = more relaxed)",
            "0-1",
            "eeg_relaxation",
        ),
    ):
        present = _series(ax, s, metric, min_quality, colour, label)
        if isinstance(base.get(key), (int, float)):
            ax.axhline(float(base[key]), color=colour, ls="--", lw=0.8, label="baseline")  # type: ignore[arg-type]
        ax.set_ylabel(unit)
        ax.set_title(
            label[:1].upper() + label[1:] + ("" if present else ": no estimates"), loc="left", fontsize=10
        )
    ax_rx.set_ylim(-0.02, 1.02)
    # state strip
    for a, b, state in s.states:
        ax_st.axvspan((a - s.t0) / 60.0, (b - s.t0) / 60.0, color=STATE_COLOURS[state], lw=0)
    ax_st.set_yticks([])
    ax_st.set_ylabel("state", rotation=0, ha="right", va="center")
    seen = list(dict.fromkeys(state for _, _, state in s.states))
    ax_st.legend(
        handles=[Patch(color=STATE_COLOURS[st], label=st.value.replace("_", " ")) for st in seen],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.9),
        ncol=min(len(seen), 5),
        fontsize=8,
        frameon=False,
    )
    # events
    for t, colour, label in _event_lines(s):
        for ax in axes:
            ax.axvline(t, color=colour, lw=1.2, ls="-" if "ready" in label else "--")
        ax_br.annotate(
            label,
            (t, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -10),
            textcoords="offset points",
            fontsize=7,
            color=colour,
            rotation=90,
            va="top",
        )
    ax_st.set_xlabel("session time (min)")
    end = max((b for _, b, _ in s.states), default=s.t0)
    ax_st.set_xlim(0, max((end - s.t0) / 60.0, 0.1))
    if title:
        fig.suptitle(title, x=0.01, ha="left", fontsize=11)
    fig.tight_layout(h_pad=0.6)
    return fig


def plot_outcomes(changes: Sequence[Mapping[str, object]]) -> Figure | None:
    """Before/after bars of the outcome changes stored in ``session.json`` (None when there are none)."""
    rows = [
        c
        for c in changes
        if isinstance(c.get("before"), (int, float)) and isinstance(c.get("after"), (int, float))
    ]
    if not rows:
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2, 2.4), dpi=90)
    ax = fig.subplots()
    x = np.arange(len(rows))
    before = [float(c["before"]) for c in rows]  # type: ignore[arg-type]
    after = [float(c["after"]) for c in rows]  # type: ignore[arg-type]
    ax.bar(x - 0.18, before, 0.36, color="#9ecae1", label="before")
    ax.bar(x + 0.18, after, 0.36, color="#3182bd", label="after")
    ax.set_xticks(x, [str(c.get("measure", "?")) for c in rows])
    ax.set_ylabel("score (lower is better)", fontsize=8)
    ax.legend(fontsize=8, frameon=False)
    ax.grid(True, axis="y", color="#dddddd", lw=0.5)
    fig.tight_layout()
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _mmss(v: object) -> str:
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        return "not reached"
    return f"{int(v // 60)} min {int(v % 60):02d} s"


def _num(v: object, spec: str, unit: str = "") -> str:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
        return "–"
    return format(v, spec) + (f" {unit}" if unit else "")


def _fallback_summary(decisions: Sequence[PacingDecision]) -> dict[str, object]:
    """What the summary holds, from the decisions (for a session file without its sidecar)."""
    if not decisions:
        return {}
    t0 = decisions[0].time
    first = {
        st: next((d.time - t0 for d in decisions if d.state is st), math.nan)
        for st in (PacingState.CALM, PacingState.READY_FOR_DOSING)
    }
    dt = np.diff([d.time for d in decisions], append=decisions[-1].time)
    lost = float(sum(x for x, d in zip(dt, decisions) if d.state is PacingState.SIGNAL_LOST))
    paces = [d.pace_brpm for d in decisions if d.pacer_visible and math.isfinite(d.pace_brpm)]
    alerts = sum(
        1 for a, b in itertools.pairwise(decisions) if b.state is PacingState.ALERT and a.state is not b.state
    )
    return {
        "duration_s": decisions[-1].time - t0,
        "final_state": decisions[-1].state.value,
        "time_to_calm_s": first[PacingState.CALM],
        "time_to_ready_s": first[PacingState.READY_FOR_DOSING],
        "min_pace_brpm": min(paces) if paces else math.nan,
        "final_pace_brpm": paces[-1] if paces else math.nan,
        "n_alerts": alerts,
        "alert_s": float(sum(x for x, d in zip(dt, decisions) if d.state is PacingState.ALERT)),
        "signal_lost_s": lost,
    }


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1040px;
color:#222}
h1{font-size:1.4em;margin-bottom:0}h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #ccc}
.sub{color:#666;margin-top:4px}table{border-collapse:collapse;font-size:.92em}
td,th{border-bottom:1px solid #e3e3e3;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f4f6f8}td.n{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:flex;gap:32px;flex-wrap:wrap}.ready{color:#006d2c;font-weight:600}.warn{color:#b30000}
img{max-width:100%}footer{margin-top:2em;color:#888;font-size:.8em}
"""


def report_html(recording: Recording, sidecar: Mapping[str, object], *, name: str = "") -> str:
    """The whole report page (figures embedded as base64 PNG).

    Parameters
    ----------
    recording : Recording
        The session (estimates, decisions, markers).
    sidecar : mapping
        Its ``session.json`` (may be empty: the summary is then computed from the decisions).
    name : str
        Session folder name for the title.

    Returns
    -------
    str
        A complete HTML document.

    Raises
    ------
    ConfigError
        If the recording has no estimates or decisions.
    """
    e = html.escape
    config = sidecar.get("config") if isinstance(sidecar.get("config"), dict) else {}
    assert isinstance(config, dict)
    protocol = config.get("protocol") if isinstance(config.get("protocol"), dict) else {}
    assert isinstance(protocol, dict)
    pacing = protocol.get("pacing") if isinstance(protocol.get("pacing"), dict) else {}
    assert isinstance(pacing, dict)
    summary = sidecar.get("summary") if isinstance(sidecar.get("summary"), dict) else None
    if summary is None:
        summary = _fallback_summary(recording.decisions)
    assert isinstance(summary, dict)
    calibration = summary.get("calibration") if isinstance(summary.get("calibration"), dict) else {}
    assert isinstance(calibration, dict)
    outcomes = sidecar.get("outcomes") if isinstance(sidecar.get("outcomes"), dict) else {}
    assert isinstance(outcomes, dict)
    changes = (
        [c for c in outcomes.get("changes", []) if isinstance(c, dict)]
        if isinstance(outcomes.get("changes"), list)
        else []
    )
    min_quality = (
        float(pacing.get("min_quality", 0.5)) if isinstance(pacing.get("min_quality"), (int, float)) else 0.5
    )
    target = pacing.get("target_brpm") if isinstance(pacing.get("target_brpm"), (int, float)) else None
    header = recording.metadata.get("file_header")
    pid = str(
        sidecar.get("patient_id") or (header.get("patient_id") if isinstance(header, dict) else "") or ""
    )
    start = str(sidecar.get("session_start_utc") or "")
    title = f"Session {name or pid}"
    fig = plot_session(
        recording,
        min_quality=min_quality,
        baseline=calibration,
        target_brpm=float(target) if target is not None else None,
    )
    main_png = base64.b64encode(_png(fig)).decode("ascii")
    out_fig = plot_outcomes(changes)
    out_png = base64.b64encode(_png(out_fig)).decode("ascii") if out_fig is not None else ""

    duration = summary.get("duration_s")
    lost = summary.get("signal_lost_s")
    lost_pct = (
        100.0 * float(lost) / float(duration)
        if isinstance(lost, (int, float)) and isinstance(duration, (int, float)) and duration > 0
        else math.nan
    )
    ready = isinstance(summary.get("time_to_ready_s"), (int, float)) and math.isfinite(
        float(summary["time_to_ready_s"])
    )  # type: ignore[arg-type]
    rows: list[tuple[str, str]] = [
        ("patient (pseudonymous id)", e(pid or "–")),
        ("session start (UTC)", e(start.replace("T", " ")[:19] or "–")),
        (
            "protocol",
            e(
                f"{protocol.get('name', '–')}"
                + (f" ({protocol.get('description')})" if protocol.get("description") else "")
            ),
        ),
        ("duration", e(_mmss(duration)) + e(f" (final state: {summary.get('final_state', '–')})")),
        ("ended", e(str(sidecar.get("end_reason") or "–"))),
        (
            "recording complete",
            "yes" if sidecar.get("complete") else '<span class="warn">no</span>' if sidecar else "–",
        ),
        ("baseline breathing", e(_num(calibration.get("resp_rate_brpm"), ".1f", "breaths/min"))),
        ("baseline heart rate", e(_num(calibration.get("hr_bpm"), ".0f", "bpm"))),
        ("baseline RMSSD", e(_num(calibration.get("rmssd_ms"), ".0f", "ms"))),
        (
            "baseline arousal / EEG relaxation",
            e(
                _num(calibration.get("arousal"), "+.2f")
                + " / "
                + _num(calibration.get("eeg_relaxation"), ".2f")
            ),
        ),
        ("time to calm", e(_mmss(summary.get("time_to_calm_s")))),
        (
            "time to ready for dosing",
            f'<span class="{"ready" if ready else "warn"}">'
            + e(_mmss(summary.get("time_to_ready_s")))
            + "</span>",
        ),
        (
            "pace reached (lowest)",
            e(_num(summary.get("min_pace_brpm"), ".1f", "breaths/min"))
            + e(f" (final {_num(summary.get('final_pace_brpm'), '.1f')})"),
        ),
        (
            "alerts",
            e(f"{summary.get('n_alerts', '–')} ({_num(summary.get('alert_s'), '.0f', 's')} in alert)"),
        ),
        (
            "signal lost",
            e(
                _num(lost, ".0f", "s")
                + (f" ({lost_pct:.1f} % of the session)" if math.isfinite(lost_pct) else "")
            ),
        ),
    ]
    table = "\n".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    if changes:
        orows = "\n".join(
            f"<tr><td>{e(str(c.get('measure', '?')))}</td><td class=n>{e(_num(c.get('before'), 'g'))}</td>"
            f"<td class=n>{e(_num(c.get('after'), 'g'))}</td>"
            f"<td class=n>{e(_num(c.get('change'), '+g'))}</td>"
            f"<td class=n>{e(_num(c.get('percent_change'), '+.0f', '%'))}</td></tr>"
            for c in changes
        )
        otable = (
            "<table><tr><th>measure</th><th>before</th><th>after</th><th>change</th><th>% change</th></tr>"
            f"{orows}</table><p class=sub>Lower is better for mood (0-10), pain (0-10) and PHQ-9 (0-27).</p>"
        )
    else:
        otable = "<p>No outcomes were entered before and after this session.</p>"
    t0 = recording.start_time if math.isfinite(recording.start_time) else 0.0
    key = [
        m
        for m in recording.markers
        if parse_marker(m.text).kind
        in ("state", "alert", "ready_for_dosing", "stop", "calibration", "outcome", "note")
    ]
    erows = "\n".join(
        f"<tr><td class=n>{int((m.time - t0) // 60)}:{int((m.time - t0) % 60):02d}</td>"
        f"<td>{e(m.text)}</td></tr>"
        for m in key
    )
    versions = sidecar.get("package_versions") if isinstance(sidecar.get("package_versions"), dict) else {}
    assert isinstance(versions, dict)
    outcome_img = (
        f'<img alt="outcomes before and after" src="data:image/png;base64,{out_png}">' if out_png else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>
<body>
<h1>{e(title)}</h1>
<p class=sub>calmloop session report &middot; patient {e(pid or "–")} &middot; {e(start[:10] or "–")}</p>
<img alt="breathing rate, pace, heart rate, arousal, EEG relaxation and states over the session"
 src="data:image/png;base64,{main_png}">
<p class=sub>Lines: estimates of good quality; faint dots: quality below {min_quality:g} (the controller
ignores them). Dashed: the patient's baseline from calibration. Coloured bands: the controller's state.</p>
<div class=grid>
<div><h2>Summary</h2><table>{table}</table></div>
<div><h2>Outcomes</h2>{otable}{outcome_img}</div>
</div>
<h2>Key events</h2>
<table><tr><th>min:s</th><th>event</th></tr>{erows}</table>
<footer>format version {e(str(sidecar.get("format_version", "–")))} &middot; calmloop
{e(str(versions.get("calmloop") or ""))} &middot; file {e(name)}</footer>
</body></html>
"""


def write_report(session: str | Path, out: str | Path | None = None) -> Path:
    """Write the HTML report of a session folder (or its ``session.xdf``).

    Parameters
    ----------
    session : path-like
        Session folder or ``session.xdf``.
    out : path-like or None
        HTML file (default: ``report.html`` in the session folder).

    Returns
    -------
    Path
        The file written (mode ``0600``).

    Raises
    ------
    ConfigError
        If the path does not exist or holds no calmloop session.
    """
    p = Path(session)
    if not p.exists():
        raise ConfigError(f"Invalid value for 'SESSION': {p} does not exist.")
    folder = p if p.is_dir() else p.parent
    xdf = p / XDF_FILENAME if p.is_dir() else p
    recording = read_recording(str(xdf))
    sidecar = read_sidecar(p)
    page = report_html(
        recording, sidecar, name=folder.name if p.is_dir() or p.name == XDF_FILENAME else p.stem
    )
    target = Path(out) if out is not None else folder / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(page)
    logger.info("report written to %s", target)
    return target


def add_report_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``calmloop report`` to the subcommands."""
    p = sub.add_parser("report", help="an HTML report of one session: plots, summary, outcomes, events")
    p.add_argument("session", metavar="SESSION", help="session folder or its session.xdf")
    p.add_argument("--out", metavar="FILE", help="HTML file to write (default: SESSION/report.html)")


def run_report(args: argparse.Namespace, out: TextIO) -> int:
    """``calmloop report SESSION [--out report.html]``."""
    path = write_report(args.session, getattr(args, "out", None))
    out.write(
        f"calmloop report: {args.session} -> {path} ({path.stat().st_size / 1024:.0f} KB, self-contained)\n"
    )
    return 0
