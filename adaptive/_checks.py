"""Argument checks whose messages name the parameter, the expectation, the value and a fix."""

from __future__ import annotations

import math
from collections.abc import Iterable

from .types import Chunk, SignalKind

__all__ = ["check_chunk", "check_option", "check_positive", "check_range"]


def check_option(name: str, value: object, allowed: Iterable[object], hint: str = "") -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``."""
    options = list(allowed)
    if value not in options:
        msg = f"Invalid value for {name!r}: expected one of {', '.join(repr(o) for o in options)}, got {value!r}."
        raise ValueError(f"{msg} {hint}".strip())


def check_positive(name: str, value: float, hint: str = "") -> float:
    """Return ``value`` as float, or raise ``ValueError`` unless it is finite and > 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"Invalid value for {name!r}: expected a positive number, got {value!r}. {hint}".strip()) from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"Invalid value for {name!r}: expected a positive number, got {value!r}. {hint}".strip())
    return v


def check_range(name: str, value: float, low: float, high: float, hint: str = "") -> float:
    """Return ``value`` as float, or raise ``ValueError`` unless ``low <= value <= high``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"Invalid value for {name!r}: expected a number in [{low}, {high}], got {value!r}. {hint}".strip()) from None
    if not (math.isfinite(v) and low <= v <= high):
        raise ValueError(f"Invalid value for {name!r}: expected a number in [{low}, {high}], got {value!r}. {hint}".strip())
    return v


def check_chunk(
    chunk: Chunk,
    *,
    kind: SignalKind,
    sfreq: float | None = None,
    n_channels: int | None = None,
    owner: str = "this estimator",
) -> None:
    """Raise ``ValueError`` if ``chunk`` is not what a processor was built for.

    Wrong calls raise; bad *data* inside a well-formed chunk never does.
    """
    if not isinstance(chunk, Chunk):
        raise TypeError(f"Invalid value for 'chunk': expected a Chunk, got {type(chunk).__name__}.")
    if chunk.kind != kind:
        raise ValueError(
            f"Invalid value for 'kind': expected {kind.value!r}, got {chunk.kind.value!r}. "
            f"Did you route the {chunk.kind.value.upper()} stream into {owner}?"
        )
    if sfreq is not None and not math.isclose(chunk.sfreq, sfreq, rel_tol=1e-9):
        raise ValueError(
            f"Invalid value for 'sfreq': expected {sfreq:g} Hz, got {chunk.sfreq:g} Hz. "
            f"Build {owner} with the stream's nominal rate."
        )
    if n_channels is not None and chunk.n_channels != n_channels:
        raise ValueError(
            f"Invalid value for 'data': expected {n_channels} channels, got {chunk.n_channels} "
            f"({', '.join(chunk.ch_names)}). Build {owner} with the stream's channel count."
        )
