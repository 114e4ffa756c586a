"""Session protocols: TOML files turned into validated, frozen settings."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from adaptive.controller import PacingConfig
from adaptive.errors import ConfigError

__all__ = ["OUTCOME_MEASURES", "Protocol", "load_protocol"]

OUTCOME_MEASURES = ("mood", "pain", "phq9")
_TABLES = ("session", "outcomes", "pacing")
_SESSION_KEYS = {"name": str, "description": str, "max_duration_s": float, "after_ready_s": float}


@dataclass(frozen=True, slots=True)
class Protocol:
    """A session protocol.

    Parameters
    ----------
    name, description : str
        Shown to the clinician and stored with the session.
    max_duration_s : float
        The session ends after this many seconds of data.
    after_ready_s : float
        Seconds of guiding after ``ready_for_dosing`` before the session ends by itself.
    ask : tuple of str
        Outcome measures asked before and after (``mood``, ``pain``, ``phq9``).
    pacing : PacingConfig
        Controller settings.
    source : str
        Where the protocol was read from.
    """

    name: str = "predose"
    description: str = ""
    max_duration_s: float = 1800.0
    after_ready_s: float = 120.0
    ask: tuple[str, ...] = ("mood", "pain")
    pacing: PacingConfig = field(default_factory=PacingConfig)
    source: str = "<defaults>"

    def to_dict(self) -> dict[str, Any]:
        """Resolved settings as plain data (stored with every session)."""
        from dataclasses import asdict

        d = asdict(self)
        d["ask"] = list(self.ask)
        return d


def _bad(where: str, key: str, expected: str, got: object) -> ConfigError:
    return ConfigError(f"Invalid value for '{key}' in {where}: expected {expected}, got {got!r}.")


def protocol_from_mapping(data: Mapping[str, Any], where: str = "protocol") -> Protocol:
    """Build a :class:`Protocol` from parsed TOML.

    Raises
    ------
    ConfigError
        Naming the table and key, and the allowed keys or values.
    """
    unknown = sorted(set(data) - set(_TABLES))
    if unknown:
        raise ConfigError(
            f"Invalid table {unknown[0]!r} in {where}: expected only the tables "
            f"{', '.join(f'[{t}]' for t in _TABLES)}."
        )
    kw: dict[str, Any] = {"source": where}
    session = data.get("session", {})
    for key, value in session.items():
        if key not in _SESSION_KEYS:
            raise ConfigError(
                f"Invalid key 'session.{key}' in {where}: expected one of "
                f"{', '.join(sorted(_SESSION_KEYS))}."
            )
        typ = _SESSION_KEYS[key]
        if typ is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise _bad(where, f"session.{key}", "a positive number of seconds", value)
            value = float(value)
        elif not isinstance(value, str):
            raise _bad(where, f"session.{key}", "a string", value)
        kw[key] = value
    outcomes = data.get("outcomes", {})
    for key in outcomes:
        if key != "ask":
            raise ConfigError(f"Invalid key 'outcomes.{key}' in {where}: expected only 'ask'.")
    if "ask" in outcomes:
        ask = outcomes["ask"]
        if not isinstance(ask, list) or any(a not in OUTCOME_MEASURES for a in ask):
            raise _bad(where, "outcomes.ask", f"a list of {', '.join(map(repr, OUTCOME_MEASURES))}", ask)
        kw["ask"] = tuple(dict.fromkeys(ask))
    try:
        kw["pacing"] = PacingConfig.from_mapping(data.get("pacing", {}))
    except ConfigError as exc:
        raise ConfigError(f"{exc} (in [pacing] of {where})") from exc
    return Protocol(**kw)


def load_protocol(path: str | Path | None = None) -> Protocol:
    """Read a protocol file; ``None`` reads the shipped default ``predose.toml``.

    Raises
    ------
    ConfigError
        If the file is missing, is not valid TOML, or holds an invalid key or value.
    """
    if path is None:
        text = resources.files("experiments.protocols").joinpath("predose.toml").read_text("utf-8")
        where = "predose.toml (default)"
    else:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"Invalid value for '--protocol': {p} does not exist or is not a file.")
        text, where = p.read_text("utf-8"), str(p)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Invalid protocol file {where}: not valid TOML ({exc}).") from exc
    return protocol_from_mapping(data, where)


def protocol_from_dict(d: Mapping[str, Any], where: str = "recorded session") -> Protocol:
    """Inverse of :meth:`Protocol.to_dict` (what a session's ``session.json`` stores)."""
    session = {k: d[k] for k in _SESSION_KEYS if k in d and d[k] is not None}
    tables: dict[str, Any] = {"session": session, "pacing": dict(d.get("pacing", {}))}
    if "ask" in d:
        tables["outcomes"] = {"ask": list(d["ask"])}
    return protocol_from_mapping(tables, where)
