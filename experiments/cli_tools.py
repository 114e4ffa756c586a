"""Research commands of ``calmloop``: ``export``, ``report``, ``outcomes`` and ``analyze``.

``experiments/cli.py`` adds them with two calls::

    from . import cli_tools
    cli_tools.register(sub)                      # in build_parser(), after the other subcommands
    ...
    code = cli_tools.dispatch(args, sys.stdout)  # in main(), inside the try block
    if code is not None:
        return code

Errors are raised as :class:`~adaptive.errors.EngineError` (``ConfigError``, ``SensorError``)
so that ``main`` prints them as one ``calmloop: error: ...`` line.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

__all__ = ["COMMANDS", "dispatch", "register"]

#: The subcommands this module adds.
COMMANDS: tuple[str, ...] = ("export", "report", "outcomes", "analyze")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``export``, ``report``, ``outcomes`` and ``analyze`` subparsers.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``parser.add_subparsers(dest="command")`` returned.
    """
    from .analyze import add_analyze_parser
    from .cohort import add_outcomes_parser
    from .export import add_export_parser
    from .report import add_report_parser

    add_export_parser(sub)
    add_report_parser(sub)
    add_outcomes_parser(sub)
    add_analyze_parser(sub)


def dispatch(args: argparse.Namespace, out: TextIO) -> int | None:
    """Run the command if it is one of :data:`COMMANDS`, else return None.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments (``args.command`` names the subcommand).
    out : text stream
        Where the command prints its result (progress of ``analyze`` goes to stderr).

    Returns
    -------
    int or None
        The exit code, or None when the command is not one of these.
    """
    command = getattr(args, "command", None)
    if command == "export":
        from .export import run_export

        return run_export(args, out)
    if command == "report":
        from .report import run_report

        return run_report(args, out)
    if command == "outcomes":
        from .cohort import run_outcomes

        return run_outcomes(args, out)
    if command == "analyze":
        from .analyze import run_analyze

        return run_analyze(args, out, sys.stderr)
    return None
