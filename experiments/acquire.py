"""``calmloop devices``, ``calmloop acquire`` and (for now) ``calmloop demo``."""

from __future__ import annotations

import argparse
import logging
import math
import time
from pathlib import Path
from typing import TextIO

from adaptive.errors import ConfigError
from adaptive.types import Source, StreamSpec
from sensors.clocks import MonotonicClock, ScaledClock
from sensors.stats import StreamStats, StreamSummary

logger = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.02  # wall seconds between polls: well under one Muse EEG packet (47 ms)


def make_source(args: argparse.Namespace, clock: MonotonicClock | ScaledClock) -> Source:
    """Build the source the command line asks for.

    Raises
    ------
    ConfigError
        If the options do not fit the source (files without playback, speed with a device).
    SensorError
        If the device cannot be reached.
    """
    name = args.source
    files = [Path(f) for f in getattr(args, "files", [])]
    if files and name not in ("playback", "replay"):
        raise ConfigError(
            f"Invalid arguments: FILE given with --source {name}. Files are read only by "
            "'--source playback FILE [FILE [FILE]]' and '--source replay FILE...'."
        )
    if name not in ("simulated", "replay") and getattr(args, "speed", 1.0) != 1.0:
        raise ConfigError(
            f"Invalid value for '--speed': a live device runs in real time, got {args.speed!r} with "
            f"--source {name}. Use --speed only with --source simulated."
        )
    if name == "simulated":
        from sensors.simulated import PROFILES, SimulatedPatient

        if args.profile not in PROFILES:
            raise ConfigError(
                f"Invalid value for '--profile': expected one of {', '.join(sorted(PROFILES))}, "
                f"got {args.profile!r}."
            )
        return SimulatedPatient(profile=args.profile, seed=args.seed)

    if name == "replay":
        if not files:
            raise ConfigError(
                "Invalid value for 'FILE': expected a recording (session.xdf or its folder, a LabRecorder "
                "XDF, BrainFlow files or a muselsl CSV), got none. Example: --source replay session.xdf"
            )
        for f in files:
            if not f.exists():
                raise ConfigError(f"Invalid value for 'FILE': {f} does not exist.")
        from sensors.replay import ReplaySource

        return ReplaySource([str(f) for f in files] if len(files) > 1 else str(files[0]))
    if name == "lsl":
        from sensors.lsl_inlet import LslInletSource

        wanted = {k: getattr(args, f"lsl_{k}", None) for k in ("eeg", "ppg", "accel", "gyro")}
        timeout = float(getattr(args, "lsl_timeout", 5.0))
        if not any(wanted.values()):
            return LslInletSource.auto(timeout_s=timeout, clock=clock)
        return LslInletSource(**wanted, timeout_s=timeout, clock=clock)

    from sensors.brainflow_source import BrainFlowSource

    verbose = bool(getattr(args, "verbose_device", False))
    if name == "synthetic":
        return BrainFlowSource.synthetic(clock=clock, verbose=verbose)
    if name == "playback":
        if not 1 <= len(files) <= 3:
            raise ConfigError(
                f"Invalid value for 'FILE': expected 1 to 3 BrainFlow files (default, auxiliary, "
                f"ancillary preset), got {len(files)}. Example: calmloop acquire --source playback "
                "default.csv aux.csv anc.csv"
            )
        for f in files:
            if not f.is_file():
                raise ConfigError(f"Invalid value for 'FILE': {f} does not exist or is not a file.")
        return BrainFlowSource.playback(
            default=files[0],
            aux=files[1] if len(files) > 1 else None,
            anc=files[2] if len(files) > 2 else None,
            clock=clock,
            verbose=verbose,
        )
    ppg = None if args.ppg_preset == "none" else args.ppg_preset
    return BrainFlowSource.muse(
        model=name,
        mac=args.mac,
        serial=args.serial,
        ppg_preset=ppg,
        timeout_s=args.connect_timeout,
        clock=clock,
        verbose=verbose,
    )


def run_devices(out: TextIO) -> int:
    """Print every supported source with its streams, channels and rates."""
    from sensors.brainflow_source import describe_boards
    from sensors.simulated import PROFILES, SimulatedPatient

    sources: dict[str, tuple[StreamSpec, ...]] = {
        "simulated": tuple(SimulatedPatient(profile="compliant", seed=0).streams)
    }
    sources.update({k: tuple(v) for k, v in describe_boards().items()})
    out.write("Supported sources (--source NAME):\n")
    for name, streams in sources.items():
        out.write(f"\n  {name}\n")
        for s in streams:
            out.write(f"    {s.kind.value:<6} {s.sfreq:7.1f} Hz  {s.unit:<6} {', '.join(s.ch_names)}\n")
    out.write(f"\n  simulated profiles: {', '.join(PROFILES)}\n")
    out.write("  playback takes BrainFlow files, one per preset: default (EEG), auxiliary, ancillary\n")
    return 0


def _format_line(t: float, status: str, summaries: list[StreamSummary]) -> str:
    parts = [f"t={t:7.1f} s  {status:<11}"]
    for s in summaries:
        rate = "   -  " if math.isnan(s.measured_sfreq) else f"{s.measured_sfreq:6.1f}"
        parts.append(f"{s.kind.value} {s.n_samples:>8} smp {rate} Hz {s.n_gaps:>3} gaps")
    return " | ".join(parts)


def acquire(
    source: Source,
    clock: MonotonicClock | ScaledClock,
    duration_s: float,
    interval_s: float,
    out: TextIO,
) -> list[StreamSummary]:
    """Stream ``source`` for ``duration_s`` session seconds, writing a status line per interval.

    Returns the final per-stream summaries.
    """
    stats = {s.kind: StreamStats(s.kind, s.sfreq) for s in source.streams}
    clock.restart()
    source.start()
    try:
        # Session time starts with the clock (the simulated patient's first sample is at 0),
        # so the duration counts session seconds, whatever start-up took.
        next_line = interval_s
        while True:
            now = clock.now()
            for chunk in source.poll(now):
                if chunk.kind not in stats:
                    stats[chunk.kind] = StreamStats(chunk.kind, chunk.sfreq)
                stats[chunk.kind].update(chunk)
            done = now >= duration_s
            if now >= next_line or done:
                out.write(_format_line(now, source.status.value, [s.summary() for s in stats.values()]) + "\n")
                out.flush()
                while next_line <= now:
                    next_line += interval_s
            if done:
                break
            time.sleep(POLL_INTERVAL_S)
    finally:
        source.stop()
    return [s.summary() for s in stats.values()]


def _write_summary(out: TextIO, summaries: list[StreamSummary]) -> None:
    out.write("\nstream   nominal Hz  measured Hz   samples  gaps  longest gap s  dropped\n")
    for s in summaries:
        gap = "-" if math.isnan(s.max_gap_s) else f"{s.max_gap_s:.3f}"
        meas = "-" if math.isnan(s.measured_sfreq) else f"{s.measured_sfreq:.2f}"
        out.write(
            f"{s.kind.value:<8} {s.sfreq:>10.1f}  {meas:>11}  {s.n_samples:>8}  {s.n_gaps:>4}  "
            f"{gap:>13}  {s.n_dropped:>7}\n"
        )


def run_acquire(args: argparse.Namespace, out: TextIO) -> int:
    """``calmloop acquire``: live per-sensor figures from any source."""
    if not args.duration > 0 or not args.interval > 0:
        raise ConfigError(
            f"Invalid value for '--duration'/'--interval': expected positive seconds, got "
            f"{args.duration!r}/{args.interval!r}."
        )
    clock: MonotonicClock | ScaledClock = (
        ScaledClock(args.speed) if args.source == "simulated" else MonotonicClock()
    )
    source = make_source(args, clock)
    out.write(f"Acquiring from {args.source} for {args.duration:g} s (Ctrl-C stops)\n")
    summaries = acquire(source, clock, args.duration, args.interval, out)
    _write_summary(out, summaries)
    return 0
