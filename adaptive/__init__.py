"""calmloop's real-time DSP core: pure processors, no device, file, network or clock access."""

from .errors import ConfigError, EngineError, SensorError
from .types import Chunk, Estimate, Metric, SignalKind

__all__ = ["Chunk", "ConfigError", "EngineError", "Estimate", "Metric", "SensorError", "SignalKind"]
