"""The ``calmloop`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from adaptive.errors import EngineError

logger = logging.getLogger(__name__)

SOURCE_CHOICES = ("simulated", "synthetic", "muse-2", "muse-s", "muse-s-athena", "playback", "replay", "lsl")


def _speed(text: str) -> float | str:
    if text == "max":
        return text
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not (v > 0 and v != float("inf")):
        raise argparse.ArgumentTypeError(f"expected 'max' or a positive factor such as 10, got {text!r}")
    return v


def _add_source_options(p: argparse.ArgumentParser, *, allow_max: bool = False) -> None:
    g = p.add_argument_group("source")
    g.add_argument(
        "--source",
        choices=SOURCE_CHOICES,
        default="simulated",
        help="where the data comes from (default: the simulated patient)",
    )
    g.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="with --source playback: BrainFlow files, one per preset, in the order "
        "default (EEG) [auxiliary (motion) [ancillary (PPG)]]; with --source replay: a recording "
        "(calmloop session.xdf or folder, LabRecorder XDF, BrainFlow files, muselsl CSV)",
    )
    g.add_argument("--lsl-eeg", help="--source lsl: EEG stream name or type (default: find Muse-like streams)")
    g.add_argument("--lsl-ppg", help="--source lsl: PPG stream name or type")
    g.add_argument("--lsl-accel", help="--source lsl: accelerometer stream name or type")
    g.add_argument("--lsl-gyro", help="--source lsl: gyroscope stream name or type")
    g.add_argument("--lsl-timeout", type=float, default=5.0, help="--source lsl: seconds to look for streams")
    g.add_argument("--mac", help="Muse: Bluetooth MAC address of the headband (else: first found)")
    g.add_argument("--serial", help="Muse: device name/serial, e.g. 'Muse-1A2B' (else: first found)")
    g.add_argument(
        "--ppg-preset",
        default="p50",
        choices=("p50", "p51", "p61", "none"),
        help="Muse preset command that switches PPG on (default p50; 'none' leaves PPG off)",
    )
    g.add_argument("--connect-timeout", type=float, default=15.0, help="Muse: seconds to search (default 15)")
    g.add_argument("--profile", default="compliant", help="simulated patient profile (default compliant)")
    g.add_argument("--seed", type=int, default=0, help="simulated patient seed (default 0)")
    g.add_argument(
        "--speed",
        type=_speed if allow_max else float,
        default=1.0,
        help="simulated source only: run N times faster than real time"
        + (" or 'max' (as fast as the machine can)" if allow_max else "")
        + " (default 1)",
    )
    g.add_argument("--verbose-device", action="store_true", help="let BrainFlow's own logger speak")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``calmloop`` command."""
    parser = argparse.ArgumentParser(
        prog="calmloop",
        description="Biofeedback-adaptive breathing meditation before ketamine dosing.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("devices", help="list supported sources with their channels and rates")

    p = sub.add_parser("acquire", help="stream a source and show live per-sensor figures")
    _add_source_options(p)
    p.add_argument("--duration", type=float, default=30.0, help="session seconds to acquire (default 30)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between status lines (default 1)")

    p = sub.add_parser("session", help="a whole pre-dosing session: calibrate, pace, ready for dosing")
    _add_source_options(p, allow_max=True)
    p.add_argument("--protocol", help="protocol TOML file (default: the shipped predose.toml)")
    p.add_argument("--patient-id", default="anon", help="pseudonymous patient code (never a name)")
    p.add_argument("--headless", action="store_true", help="no window: status lines on the terminal")
    p.add_argument("--fullscreen", action="store_true", help="patient view full-screen (F toggles)")
    p.add_argument("--screenshots", metavar="DIR", help="save the window at each new state and when ready")
    p.add_argument("--lsl", action="store_true", help="publish raw streams, estimates, pacer and markers over LSL")
    p.add_argument(
        "--lsl-scope",
        choices=("machine", "link", "site"),
        default="machine",
        help="how far LSL reaches (default machine: this computer only; see README before widening)",
    )
    p.add_argument("--out", default="sessions", help="folder for session folders (default ./sessions)")
    for when in ("before", "after"):
        p.add_argument(f"--mood-{when}", type=float, help=f"mood {when} the session, 0 (no depression) to 10 (worst ever)")
        p.add_argument(f"--pain-{when}", type=float, help=f"pain {when} the session, 0 (none) to 10 (worst)")
        p.add_argument(f"--phq9-{when}", help=f"PHQ-9 item scores {when} the session: nine numbers 0-3, comma-separated")

    p = sub.add_parser("replay", help="run a recorded session through the same pipeline, as fast as asked")
    p.add_argument("files", nargs="+", metavar="FILE", help="recording: session.xdf or its folder, XDF, BrainFlow, CSV")
    p.add_argument("--speed", type=_speed, default="max", help="'max' (default), 1 for real time, or a factor")
    p.add_argument("--headless", action="store_true", help="no window")
    p.add_argument("--protocol", help="protocol TOML (default: the one recorded with the session, else predose)")
    p.add_argument("--out", default="sessions", help="folder for the replay's session folder (default ./sessions)")
    p.add_argument("--patient-id", default=None, help="pseudonymous id for the replay folder (default: recorded id)")

    p = sub.add_parser("bench", help="benchmarks against recorded references (needs the 'bench' extra)")
    bsub = p.add_subparsers(dest="bench", required=True, metavar="BENCH")
    b = bsub.add_parser("dsp", help="breathing, EEG, arousal accuracy and pipeline speed")
    b.add_argument("--data", help="folder of the recorded data (default ../shared/data)")
    b.add_argument("--only", nargs="+", choices=("respiration", "eeg", "arousal", "speed"), help="run only these parts")
    b.add_argument("--out", default="bench_results/dsp.json", help="JSON results (default bench_results/dsp.json)")
    b.add_argument("--speed-duration", type=float, default=3600.0, help="simulated seconds for the speed part")

    from . import cli_tools

    cli_tools.register(sub)

    p = sub.add_parser(
        "demo",
        help="the main job: a whole session on the simulated patient, about a minute, "
        "headless when there is no display",
    )
    p.add_argument("--speed", type=_speed, default=15.0, help="times faster than real time (default 15)")
    p.add_argument("--profile", default="compliant", help="simulated patient profile (default compliant)")
    p.add_argument("--out", default="sessions", help="folder for session folders (default ./sessions)")
    return parser


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``calmloop`` command; return the process exit code."""
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    from . import acquire, cli_tools  # deferred: keeps start-up fast

    try:
        if args.command == "devices":
            return acquire.run_devices(sys.stdout)
        if args.command == "acquire":
            return acquire.run_acquire(args, sys.stdout)
        if args.command == "session":
            from .session import run_session

            return run_session(args, sys.stdout)
        if args.command == "replay":
            from .replay import run_replay

            return run_replay(args, sys.stdout)
        code = cli_tools.dispatch(args, sys.stdout)
        if code is not None:
            return code
        if args.command == "bench":
            from .bench.dsp import run_bench

            return run_bench(args, sys.stdout)
        if args.command == "demo":
            from .session import run_demo

            return run_demo(args, sys.stdout)
    except EngineError as exc:
        print(f"calmloop: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("calmloop: interrupted", file=sys.stderr)
        return 130
    raise AssertionError(f"unhandled command {args.command!r}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
