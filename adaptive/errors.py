"""Exception hierarchy shared by every calmloop package."""

from __future__ import annotations

__all__ = ["ConfigError", "EngineError", "SensorError"]


class EngineError(Exception):
    """Base class of every error that calmloop raises on purpose."""


class SensorError(EngineError):
    """A device, stream or file could not deliver data (what to check is in the message)."""


class ConfigError(EngineError, ValueError):
    """A configuration value or protocol file is invalid."""
