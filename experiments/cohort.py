"""``calmloop outcomes DIR``: patient-reported outcomes and readiness over many sessions.

Every ``session.json`` under a folder (at any depth) is one session.  The cohort table gives,
per measure (mood, pain, PHQ-9), how many sessions answered it before *and* after (``n``), the
mean before and after, the mean change (after - before; negative is better for all three) and
the mean percent change (relative to the value before; sessions that started at 0 have no
percent change and are left out of that mean, so it has its own ``n``).  Sessions without a
measure are counted in the session total but left out of that measure's means.  It also counts
the sessions that reached ``ready_for_dosing`` and gives the median time to get there.

Replays (``calmloop replay`` writes a session folder whose config has ``replay_of``) re-run a
session that is already counted, so they are skipped unless asked for.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from adaptive.errors import ConfigError
from adaptive.records import SIDECAR_FILENAME

__all__ = [
    "MEASURES",
    "CohortSummary",
    "MeasureSummary",
    "SessionOutcome",
    "find_sessions",
    "format_cohort",
    "read_cohort",
    "read_sidecar",
    "run_outcomes",
    "session_outcome",
    "summarise_cohort",
    "write_sessions_csv",
]

logger = logging.getLogger(__name__)

#: Outcome measures of the cohort table, in order, with their display names.
MEASURES: tuple[tuple[str, str], ...] = (
    ("mood", "mood (0-10)"),
    ("pain", "pain (0-10)"),
    ("phq9", "PHQ-9 (0-27)"),
)


def read_sidecar(path: str | Path) -> dict[str, object]:
    """The ``session.json`` of a session folder (or beside a ``session.xdf``).

    Parameters
    ----------
    path : path-like
        A session folder, its ``session.xdf`` or the ``session.json`` itself.

    Returns
    -------
    dict
        The parsed sidecar; empty when there is none.

    Raises
    ------
    ConfigError
        If the file exists but is not a JSON object.
    """
    p = Path(path)
    if p.is_dir():
        f = p / SIDECAR_FILENAME
    elif p.name == SIDECAR_FILENAME:
        f = p
    else:
        f = p.parent / SIDECAR_FILENAME
    if not f.is_file():
        return {}
    try:
        data = json.loads(f.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"Invalid session file {f}: expected a JSON object ({exc}).") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"Invalid session file {f}: expected a JSON object, got {type(data).__name__}.")
    return data


def find_sessions(root: str | Path) -> list[Path]:
    """Session folders under ``root`` (folders holding a ``session.json``), sorted by path.

    Raises
    ------
    ConfigError
        If ``root`` is not a folder.
    """
    r = Path(root)
    if not r.is_dir():
        raise ConfigError(
            f"Invalid value for 'DIR': {r} is not a folder; expected a folder of session folders."
        )
    return sorted(p.parent for p in r.rglob(SIDECAR_FILENAME) if p.is_file())


def _num(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


@dataclass(frozen=True, slots=True)
class SessionOutcome:
    """One session's row: who, when, readiness and each measure before and after.

    Parameters
    ----------
    folder : Path
        The session folder.
    patient_id : str
        Pseudonymous id.
    start_utc : str
        ISO start time (empty if unknown).
    protocol : str
        Protocol name.
    complete : bool
        Whether the recording was closed properly.
    replay : bool
        Whether the folder is the replay of another recording.
    duration_s, time_to_calm_s, time_to_ready_s : float
        From the controller's summary (NaN if never reached or unknown).
    before, after : mapping of str to float
        Per measure (``mood``, ``pain``, ``phq9``) the score, NaN when not answered.
    """

    folder: Path
    patient_id: str
    start_utc: str
    protocol: str
    complete: bool
    replay: bool
    duration_s: float
    time_to_calm_s: float
    time_to_ready_s: float
    before: Mapping[str, float] = field(default_factory=dict)
    after: Mapping[str, float] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        """Whether the session reached ready for dosing."""
        return math.isfinite(self.time_to_ready_s)

    def change(self, measure: str) -> float:
        """After minus before (NaN if either is missing)."""
        return self.after.get(measure, math.nan) - self.before.get(measure, math.nan)

    def percent_change(self, measure: str) -> float:
        """Change relative to the value before, percent (NaN if missing or the value before was 0)."""
        b = self.before.get(measure, math.nan)
        return math.nan if not b else 100.0 * self.change(measure) / b


def session_outcome(folder: str | Path, sidecar: Mapping[str, object] | None = None) -> SessionOutcome:
    """Read one session's row from its sidecar.

    Parameters
    ----------
    folder : path-like
        Session folder.
    sidecar : mapping, optional
        The parsed ``session.json`` (read from the folder when None).

    Returns
    -------
    SessionOutcome
        Missing values are NaN; a measure counts only when it is a number before and after.
    """
    f = Path(folder)
    data = dict(sidecar) if sidecar is not None else read_sidecar(f)
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    assert isinstance(config, dict)
    protocol = config.get("protocol") if isinstance(config.get("protocol"), dict) else {}
    assert isinstance(protocol, dict)
    summary = data.get("summary") if isinstance(data.get("summary"), dict) else {}
    assert isinstance(summary, dict)
    outcomes = data.get("outcomes") if isinstance(data.get("outcomes"), dict) else {}
    assert isinstance(outcomes, dict)
    before_raw = outcomes.get("before") if isinstance(outcomes.get("before"), dict) else {}
    after_raw = outcomes.get("after") if isinstance(outcomes.get("after"), dict) else {}
    assert isinstance(before_raw, dict) and isinstance(after_raw, dict)
    before = {m: _num(before_raw.get(m)) for m, _ in MEASURES}
    after = {m: _num(after_raw.get(m)) for m, _ in MEASURES}
    return SessionOutcome(
        folder=f,
        patient_id=str(data.get("patient_id") or "?"),
        start_utc=str(data.get("session_start_utc") or ""),
        protocol=str(protocol.get("name") or ""),
        complete=bool(data.get("complete", False)),
        replay=bool(config.get("replay_of")),
        duration_s=_num(summary.get("duration_s")),
        time_to_calm_s=_num(summary.get("time_to_calm_s")),
        time_to_ready_s=_num(summary.get("time_to_ready_s")),
        before=before,
        after=after,
    )


@dataclass(frozen=True, slots=True)
class MeasureSummary:
    """One row of the cohort table.

    Parameters
    ----------
    measure : str
        ``mood``, ``pain`` or ``phq9``.
    n : int
        Sessions with the measure before and after.
    mean_before, mean_after, mean_change, sd_change : float
        Over those ``n`` sessions (NaN when ``n`` is 0; the SD needs 2).
    n_percent : int
        Sessions with a percent change (value before not 0).
    mean_percent_change : float
        Mean over those ``n_percent`` sessions.
    """

    measure: str
    n: int
    mean_before: float
    mean_after: float
    mean_change: float
    sd_change: float
    n_percent: int
    mean_percent_change: float


@dataclass(frozen=True, slots=True)
class CohortSummary:
    """The cohort table and its counts.

    Parameters
    ----------
    sessions : tuple of SessionOutcome
        The sessions counted.
    measures : tuple of MeasureSummary
        One row per measure of :data:`MEASURES`.
    n_patients : int
        Distinct patient ids.
    n_ready : int
        Sessions that reached ready for dosing.
    median_time_to_ready_s : float
        Median over those (NaN if none).
    n_incomplete : int
        Sessions whose recording was not closed properly (counted).
    skipped : tuple of str
        Folders left out and why (replays, unreadable sidecars).
    """

    sessions: tuple[SessionOutcome, ...]
    measures: tuple[MeasureSummary, ...]
    n_patients: int
    n_ready: int
    median_time_to_ready_s: float
    n_incomplete: int
    skipped: tuple[str, ...] = ()


def _mean(values: Sequence[float]) -> float:
    return float(statistics.fmean(values)) if values else math.nan


def summarise_cohort(sessions: Iterable[SessionOutcome], skipped: Sequence[str] = ()) -> CohortSummary:
    """Means per measure, readiness counts and the median time to ready.

    Parameters
    ----------
    sessions : iterable of SessionOutcome
        Sessions to count (see :func:`session_outcome`).
    skipped : sequence of str
        Folders left out, kept for the report.

    Returns
    -------
    CohortSummary
    """
    rows = tuple(sessions)
    measures: list[MeasureSummary] = []
    for m, _ in MEASURES:
        have = [s for s in rows if math.isfinite(s.change(m))]
        changes = [s.change(m) for s in have]
        pct = [s.percent_change(m) for s in have if math.isfinite(s.percent_change(m))]
        measures.append(
            MeasureSummary(
                measure=m,
                n=len(have),
                mean_before=_mean([s.before[m] for s in have]),
                mean_after=_mean([s.after[m] for s in have]),
                mean_change=_mean(changes),
                sd_change=float(statistics.stdev(changes)) if len(changes) >= 2 else math.nan,
                n_percent=len(pct),
                mean_percent_change=_mean(pct),
            )
        )
    ready = [s.time_to_ready_s for s in rows if s.ready]
    return CohortSummary(
        sessions=rows,
        measures=tuple(measures),
        n_patients=len({s.patient_id for s in rows}),
        n_ready=len(ready),
        median_time_to_ready_s=float(statistics.median(ready)) if ready else math.nan,
        n_incomplete=sum(1 for s in rows if not s.complete),
        skipped=tuple(skipped),
    )


def _f(v: float, spec: str) -> str:
    return "-" if not math.isfinite(v) else format(v, spec)


def _mmss(v: float) -> str:
    return "-" if not math.isfinite(v) else f"{int(v // 60)}:{round(v % 60):02d}"


def format_cohort(summary: CohortSummary, *, per_session: bool = False) -> str:
    """The cohort as markdown: counts, the table per measure, and optionally one row per session."""
    s = summary
    n = len(s.sessions)
    lines = [
        f"{n} sessions, {s.n_patients} patients; ready for dosing in {s.n_ready} of {n} sessions"
        + (f", median time to ready {_mmss(s.median_time_to_ready_s)} (min:s)" if s.n_ready else "")
        + (
            f"; {s.n_incomplete} incomplete recording{'s' if s.n_incomplete > 1 else ''}"
            if s.n_incomplete
            else ""
        ),
        "",
        "| measure | n | before (mean) | after (mean) | change (mean ± SD) | % change (mean) | n for % |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    names = dict(MEASURES)
    for m in s.measures:
        sd = f" ± {m.sd_change:.2f}" if math.isfinite(m.sd_change) else ""
        lines.append(
            f"| {names[m.measure]} | {m.n} | {_f(m.mean_before, '.2f')} | {_f(m.mean_after, '.2f')} | "
            f"{_f(m.mean_change, '+.2f')}{sd} | {_f(m.mean_percent_change, '+.1f')} | {m.n_percent} |"
        )
    lines.append("")
    lines.append(
        "Change = after - before: negative is better for all three measures. Sessions without a "
        "measure before and after are left out of its row (n)."
    )
    if per_session:
        lines += [
            "",
            "| session | patient | protocol | ready | time to ready | "
            + " | ".join(f"{m} before→after" for m, _ in MEASURES)
            + " |",
            "|---|---|---|---|---:|" + "---|" * len(MEASURES),
        ]
        for r in s.sessions:
            cells = [f"{_f(r.before[m], 'g')}→{_f(r.after[m], 'g')}" for m, _ in MEASURES]
            lines.append(
                f"| {r.folder.name} | {r.patient_id} | {r.protocol} | {'yes' if r.ready else 'no'} | "
                f"{_mmss(r.time_to_ready_s)} | " + " | ".join(cells) + " |"
            )
    for why in s.skipped:
        lines.append(f"skipped: {why}")
    return "\n".join(lines) + "\n"


#: Columns of the per-session CSV.
CSV_COLUMNS: tuple[str, ...] = (
    "folder",
    "patient_id",
    "start_utc",
    "protocol",
    "complete",
    "ready_for_dosing",
    "duration_s",
    "time_to_calm_s",
    "time_to_ready_s",
    *(f"{m}_{what}" for m, _ in MEASURES for what in ("before", "after", "change", "percent_change")),
)


def write_sessions_csv(summary: CohortSummary, path: str | Path) -> Path:
    """Write one row per session (the data behind the table); empty cells are missing values."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)

    def cell(v: float) -> str:
        return "" if not math.isfinite(v) else repr(float(v))

    with p.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for s in summary.sessions:
            row: list[str] = [
                str(s.folder),
                s.patient_id,
                s.start_utc,
                s.protocol,
                str(s.complete).lower(),
                str(s.ready).lower(),
                cell(s.duration_s),
                cell(s.time_to_calm_s),
                cell(s.time_to_ready_s),
            ]
            for m, _ in MEASURES:
                row += [cell(s.before[m]), cell(s.after[m]), cell(s.change(m)), cell(s.percent_change(m))]
            w.writerow(row)
    return p


def read_cohort(root: str | Path, *, include_replays: bool = False) -> CohortSummary:
    """Read every session under ``root`` and summarise them (see :func:`summarise_cohort`)."""
    rows: list[SessionOutcome] = []
    skipped: list[str] = []
    for folder in find_sessions(root):
        try:
            row = session_outcome(folder)
        except ConfigError as exc:
            logger.warning("%s", exc)
            skipped.append(f"{folder}: unreadable session.json")
            continue
        if row.replay and not include_replays:
            skipped.append(f"{folder}: a replay (--include-replays counts it)")
            continue
        rows.append(row)
    return summarise_cohort(rows, skipped)


def add_outcomes_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``calmloop outcomes`` to the subcommands."""
    p = sub.add_parser(
        "outcomes", help="cohort table of mood, pain, PHQ-9 and readiness over session folders"
    )
    p.add_argument("dir", metavar="DIR", help="folder holding session folders (searched at any depth)")
    p.add_argument("--csv", metavar="FILE", help="also write one row per session to this CSV file")
    p.add_argument("--per-session", action="store_true", help="also print one row per session")
    p.add_argument("--include-replays", action="store_true", help="count replay folders as sessions too")


def run_outcomes(args: argparse.Namespace, out: TextIO) -> int:
    """``calmloop outcomes DIR [--csv FILE]``."""
    summary = read_cohort(args.dir, include_replays=bool(getattr(args, "include_replays", False)))
    if not summary.sessions:
        out.write(f"calmloop outcomes: no session folders (with session.json) under {args.dir}\n")
        out.writelines(f"skipped: {why}\n" for why in summary.skipped)
        return 1
    out.write(f"calmloop outcomes: {args.dir}\n\n")
    out.write(format_cohort(summary, per_session=bool(getattr(args, "per_session", False))))
    if getattr(args, "csv", None):
        p = write_sessions_csv(summary, args.csv)
        out.write(f"one row per session written to {p}\n")
    return 0
