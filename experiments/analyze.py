"""``calmloop analyze FILES...``: replay many recordings in parallel and tabulate what happened.

Each recording goes through exactly the pipeline of ``calmloop replay`` at ``--speed max``
without a window: :class:`sensors.replay.ReplaySource` -> :func:`experiments.session.run_closed_loop`
with a :class:`~sensors.clocks.ManualClock`, the protocol recorded with the session (or
``--protocol``, else the shipped default), run to the end of the data.  Nothing is written unless
``--sessions DIR`` asks for a session folder per replay.

Jobs run in a :class:`concurrent.futures.ProcessPoolExecutor` (``--jobs``, default: the number of
CPUs; ``--jobs 1`` runs in this process).  A file that cannot be read or replayed gives a row with
the reason in ``error`` instead of stopping the run.  Progress goes to stderr as plain text
(``analyze: 12/30 done``).

One row per recording (:data:`COLUMNS`): the file, its format, data duration, streams, time to
calm and to ready for dosing (from the first decision), the lowest pace shown, the share of time
in ``signal_lost``, the mean heart rate, breathing rate and EEG relaxation over the estimates of
usable quality (at least the protocol's ``min_quality``, the controller's own threshold), and for
calmloop session files whether the replay gave the recorded estimates and decisions again.

Several files of one recording (BrainFlow presets, muselsl's EEG and PPG files) are given as one
argument joined with ``+``: ``default.csv+aux.csv+anc.csv``.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import csv
import dataclasses
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from adaptive.errors import ConfigError, EngineError
from adaptive.types import Estimate, Metric

__all__ = [
    "COLUMNS",
    "AnalysisRow",
    "analyze_many",
    "analyze_recording",
    "format_table",
    "parse_items",
    "run_analyze",
    "write_csv",
]

logger = logging.getLogger(__name__)

#: Columns of the table, in order (CSV header; the markdown table uses the same order).
COLUMNS: tuple[str, ...] = (
    "file",
    "format",
    "duration_s",
    "streams",
    "time_to_calm_s",
    "time_to_ready_s",
    "min_pace_brpm",
    "signal_lost_pct",
    "mean_hr_bpm",
    "mean_resp_rate_brpm",
    "mean_relaxation",
    "replay_check",
    "error",
)


@dataclass(frozen=True, slots=True)
class AnalysisRow:
    """What the replay of one recording gave (see :data:`COLUMNS`; NaN when not reached or unknown).

    Parameters
    ----------
    file : str
        The recording as given (files joined with ``+``).
    format : str
        Reader's format (``calmloop-xdf``, ``xdf``, ``brainflow``, ``muselsl-csv``, joined with ``+``).
    duration_s : float
        Seconds of data.
    streams : str
        ``"eeg 256 Hz, ppg 64 Hz, ..."``.
    time_to_calm_s, time_to_ready_s : float
        From the first decision to the first ``calm`` / ``ready_for_dosing``.
    min_pace_brpm : float
        Lowest pace shown.
    signal_lost_pct : float
        Share of the decided time spent in ``signal_lost``, percent.
    mean_hr_bpm, mean_resp_rate_brpm, mean_relaxation : float
        Means of the estimates of usable quality.
    replay_check : str
        ``"identical"``, ``"N differences"`` or ``""`` (nothing recorded to compare with).
    error : str
        Why the recording was refused (empty when it was analysed).
    wall_s : float
        Wall-clock seconds of the job (not in the table).
    """

    file: str
    format: str = ""
    duration_s: float = math.nan
    streams: str = ""
    time_to_calm_s: float = math.nan
    time_to_ready_s: float = math.nan
    min_pace_brpm: float = math.nan
    signal_lost_pct: float = math.nan
    mean_hr_bpm: float = math.nan
    mean_resp_rate_brpm: float = math.nan
    mean_relaxation: float = math.nan
    replay_check: str = ""
    error: str = ""
    wall_s: float = math.nan


class _Kept:
    """Sink that keeps every estimate released during the replay."""

    def __init__(self) -> None:
        self.items: list[Estimate] = []

    def write(self, result: object) -> None:
        self.items.extend(getattr(result, "estimates", ()))


def _mean_good(estimates: Sequence[Estimate], metric: Metric, min_quality: float) -> float:
    v = [
        e.value
        for e in estimates
        if e.metric is metric and e.quality >= min_quality and math.isfinite(e.value)
    ]
    return float(np.mean(v)) if v else math.nan


def parse_items(args: Sequence[str]) -> list[list[Path]]:
    """Split the FILES arguments into recordings: ``a+b+c`` is one recording of three files.

    An argument that exists as a path is never split (a file name may hold ``+``).
    """
    out: list[list[Path]] = []
    for a in args:
        if Path(a).exists() or "+" not in a:
            out.append([Path(a)])
        else:
            out.append([Path(x) for x in a.split("+") if x])
    return out


def analyze_recording(
    paths: Sequence[str | Path],
    protocol_path: str | None = None,
    sessions_dir: str | None = None,
) -> AnalysisRow:
    """Replay one recording headless at maximum speed and summarise it (never raises on bad data).

    Parameters
    ----------
    paths : sequence of path-like
        The files of one recording (a session folder, ``session.xdf``, XDF, BrainFlow or muselsl
        files).
    protocol_path : str or None
        Protocol TOML for every replay (None: the one recorded with the session, else the default).
    sessions_dir : str or None
        Record the replay as a session folder under this folder (None: write nothing).

    Returns
    -------
    AnalysisRow
        With ``error`` set, and the other fields NaN, when the recording could not be replayed.
    """
    from feedback.recorder import SessionRecorder
    from sensors.clocks import ManualClock
    from sensors.readers import read_recording
    from sensors.replay import ReplaySource

    from .cohort import read_sidecar
    from .protocol import Protocol, load_protocol, protocol_from_dict
    from .replay import compare_runs
    from .session import run_closed_loop

    items = [Path(p) for p in paths]
    name = "+".join(str(p) for p in items)
    t_start = time.perf_counter()
    try:
        for p in items:
            if not p.exists():
                raise ConfigError(f"{p} does not exist")
        recording = read_recording([str(p) for p in items] if len(items) > 1 else str(items[0]))
        sidecar = {}
        for p in items:
            try:
                sidecar = read_sidecar(p)
            except ConfigError as exc:
                logger.warning("%s", exc)
            if sidecar:
                break
        if protocol_path is not None:
            protocol = load_protocol(protocol_path)
        else:
            config = sidecar.get("config")
            recorded = config.get("protocol") if isinstance(config, dict) else None
            protocol = protocol_from_dict(recorded) if isinstance(recorded, dict) else load_protocol(None)
        # a replay runs to the end of the recording, whatever the protocol's duration (as calmloop replay)
        protocol = dataclasses.replace(protocol, max_duration_s=math.inf, after_ready_s=math.inf)
        assert isinstance(protocol, Protocol)
        source = ReplaySource(recording)
        kept = _Kept()
        sinks: list[object] = [kept]
        recorder = None
        if sessions_dir is not None:
            header = recording.metadata.get("file_header")
            pid = str(
                sidecar.get("patient_id")
                or (header.get("patient_id") if isinstance(header, dict) else None)
                or "replay"
            )
            recorder = SessionRecorder.create(
                sessions_dir,
                source.streams,
                patient_id=pid,
                config={"replay_of": [str(p) for p in items], "protocol": protocol.to_dict(), "speed": "max"},
            )
            sinks.append(recorder)
        controller, engine, log, end_reason = run_closed_loop(
            source,
            protocol,
            ManualClock(),
            max_speed=True,
            status_out=None,
            sinks=sinks,  # type: ignore[arg-type]
        )
        summary = controller.summary()
        if recorder is not None:
            recorder.write_sidecar(
                {"end_reason": end_reason, "events": [{"time_s": t, "event": e} for t, e in log.events]}
            )
            recorder.close(summary, end_reason=end_reason)
        check = ""
        if recording.estimates or recording.decisions:
            problems = compare_runs(recording.estimates, kept.items, recording.decisions, engine.decisions)
            check = (
                "identical"
                if not problems
                else f"{len(problems)}{'+' if len(problems) >= 10 else ''} differences"
            )
        min_q = float(protocol.pacing.min_quality)
        duration = summary.duration_s
        lost = 100.0 * summary.signal_lost_s / duration if duration > 0 else math.nan
        return AnalysisRow(
            file=name,
            format=str(recording.metadata.get("format", "")),
            duration_s=float(source.end_time),
            streams=", ".join(f"{s.kind.value} {s.sfreq:g} Hz" for s in recording.specs),
            time_to_calm_s=summary.time_to_calm_s,
            time_to_ready_s=summary.time_to_ready_s,
            min_pace_brpm=summary.min_pace_brpm,
            signal_lost_pct=lost,
            mean_hr_bpm=_mean_good(kept.items, Metric.HR_BPM, min_q),
            mean_resp_rate_brpm=_mean_good(kept.items, Metric.RESP_RATE_BRPM, min_q),
            mean_relaxation=_mean_good(kept.items, Metric.EEG_RELAXATION, min_q),
            replay_check=check,
            wall_s=time.perf_counter() - t_start,
        )
    except KeyboardInterrupt:
        raise
    except (EngineError, ValueError, OSError) as exc:
        return AnalysisRow(file=name, error=" ".join(str(exc).split()), wall_s=time.perf_counter() - t_start)
    except Exception as exc:  # a bug must not lose the other rows: reported in the row
        logger.exception("%s: replay failed", name)
        return AnalysisRow(
            file=name,
            error=f"internal error {type(exc).__name__}: {exc}",
            wall_s=time.perf_counter() - t_start,
        )


class _Progress:
    """Plain-text progress on a stream: ``analyze: 3/10 done``, in place on a terminal."""

    def __init__(self, total: int, stream: TextIO | None) -> None:
        self.total, self.done, self.stream = total, 0, stream
        self.tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())

    def step(self, row: AnalysisRow) -> None:
        self.done += 1
        if self.stream is None:
            return
        name = Path(row.file.split("+")[0]).name
        status = f"failed: {row.error[:60]}" if row.error else f"{row.wall_s:.1f} s"
        text = f"analyze: {self.done}/{self.total} done ({name}: {status})"
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if self.done == self.total else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def analyze_many(
    items: Sequence[Sequence[str | Path]],
    *,
    jobs: int | None = None,
    protocol_path: str | None = None,
    sessions_dir: str | None = None,
    progress: TextIO | None = None,
    worker: Callable[..., AnalysisRow] = analyze_recording,
) -> list[AnalysisRow]:
    """Replay every recording, ``jobs`` at a time, and return the rows in the order given.

    Parameters
    ----------
    items : sequence of sequence of path-like
        One entry per recording (its files).
    jobs : int or None
        Worker processes (None: the number of CPUs; 1: in this process, no pool).
    protocol_path, sessions_dir : str or None
        See :func:`analyze_recording`.
    progress : text stream or None
        Where to report progress (e.g. ``sys.stderr``).
    worker : callable
        The job (a module-level function, so that it can be sent to a process).

    Returns
    -------
    list of AnalysisRow

    Raises
    ------
    ConfigError
        If ``jobs`` is not a positive integer or there is nothing to analyse.
    """
    if not items:
        raise ConfigError("Invalid value for 'FILES': expected at least one recording, got none.")
    n_jobs = (os.cpu_count() or 1) if jobs is None else jobs
    if not isinstance(n_jobs, int) or n_jobs < 1:
        raise ConfigError(f"Invalid value for '--jobs': expected a positive integer, got {jobs!r}.")
    n_jobs = min(n_jobs, len(items))
    bar = _Progress(len(items), progress)
    rows: list[AnalysisRow | None] = [None] * len(items)
    args = [([str(p) for p in it], protocol_path, sessions_dir) for it in items]
    if n_jobs == 1:
        for i, a in enumerate(args):
            rows[i] = worker(*a)
            bar.step(rows[i])  # type: ignore[arg-type]
        return [r for r in rows if r is not None]
    with cf.ProcessPoolExecutor(max_workers=n_jobs) as pool:
        futures = {pool.submit(worker, *a): i for i, a in enumerate(args)}
        for fut in cf.as_completed(futures):
            i = futures[fut]
            try:
                row = fut.result()
            except cf.process.BrokenProcessPool as exc:  # a worker died (out of memory, killed)
                row = AnalysisRow(file="+".join(args[i][0]), error=f"worker process died: {exc}")
            rows[i] = row
            bar.step(row)
    return [r for r in rows if r is not None]


def _cell(v: object, spec: str = ".1f") -> str:
    if isinstance(v, float):
        return "" if not math.isfinite(v) else format(v, spec)
    return str(v)


_SPECS = {
    "duration_s": ".1f",
    "time_to_calm_s": ".1f",
    "time_to_ready_s": ".1f",
    "min_pace_brpm": ".2f",
    "signal_lost_pct": ".1f",
    "mean_hr_bpm": ".1f",
    "mean_resp_rate_brpm": ".2f",
    "mean_relaxation": ".3f",
}


def write_csv(rows: Sequence[AnalysisRow], path: str | Path) -> Path:
    """Write the table as CSV (full precision; empty cells for NaN)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow(
                [
                    ("" if not math.isfinite(v) else repr(v)) if isinstance(v := getattr(r, c), float) else v
                    for c in COLUMNS
                ]
            )
    return p


def format_table(rows: Sequence[AnalysisRow]) -> str:
    """The table as markdown (times in seconds, NaN shown as "-")."""
    head = [
        "file",
        "format",
        "duration s",
        "streams",
        "calm s",
        "ready s",
        "min pace",
        "lost %",
        "HR bpm",
        "breath /min",
        "relax",
        "replay",
        "error",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = []
        for c in COLUMNS:
            v = getattr(r, c)
            text = _cell(v, _SPECS.get(c, ".1f")) if isinstance(v, float) else str(v)
            if c == "error" and len(text) > 120:
                text = text[:117] + "..."
            if c == "file":
                text = Path(text.split("+")[0]).name + (f" (+{text.count('+')})" if "+" in text else "")
                if text == "session.xdf":
                    text = Path(r.file).parent.name
            cells.append((text or "-").replace("|", "/"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def add_analyze_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``calmloop analyze`` to the subcommands."""
    p = sub.add_parser(
        "analyze", help="replay many recordings in parallel and tabulate calm, readiness and signals"
    )
    p.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="recordings (session folders, XDF, BrainFlow, muselsl CSV); join the files of one "
        "recording with '+'",
    )
    p.add_argument("--jobs", type=int, default=None, help="parallel processes (default: number of CPUs)")
    p.add_argument("--out", metavar="CSV", help="also write the table to this CSV file")
    p.add_argument("--protocol", help="protocol TOML for every replay (default: each session's recorded one)")
    p.add_argument("--sessions", metavar="DIR", help="also record each replay as a session folder under DIR")


def run_analyze(args: argparse.Namespace, out: TextIO, err: TextIO | None = None) -> int:
    """``calmloop analyze FILES... [--jobs N] [--out table.csv]``; exit code 1 if any row failed."""
    items = parse_items(args.files)
    jobs = getattr(args, "jobs", None)
    t0 = time.perf_counter()
    rows = analyze_many(
        items,
        jobs=jobs,
        protocol_path=getattr(args, "protocol", None),
        sessions_dir=getattr(args, "sessions", None),
        progress=sys.stderr if err is None else err,
    )
    wall = time.perf_counter() - t0
    failed = sum(1 for r in rows if r.error)
    data_s = sum(r.duration_s for r in rows if math.isfinite(r.duration_s))
    out.write(
        f"calmloop analyze: {len(rows)} recordings, {data_s / 60:.1f} min of data replayed in {wall:.1f} s "
        f"({failed} refused)\n\n"
    )
    out.write(format_table(rows))
    if getattr(args, "out", None):
        p = write_csv(rows, args.out)
        out.write(f"\ntable written to {p}\n")
    return 1 if failed else 0
