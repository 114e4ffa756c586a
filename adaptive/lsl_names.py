"""Names shared by calmloop's LSL outlets (``feedback/``) and LSL inlets (``sensors/``).

Pure constants and string helpers: this module imports no LSL library, opens no socket and
reads no environment variable, so ``adaptive`` stays free of I/O.  ``feedback`` and ``sensors``
never import each other; both read the naming contract from here.

Stream types follow the conventions of the Muse LSL producers (checked in their sources):

==========  ===========================  ===========================  =========================
kind        calmloop outlets (and        muselsl                      Petal Metrics (current /
            BlueMuse)                                                  older ``PetalStream_*``)
==========  ===========================  ===========================  =========================
EEG         ``EEG``                      ``EEG``                      ``EEG`` / name ``_eeg``
PPG         ``PPG``                      ``PPG``                      ``PPG`` / name ``_ppg``
accel       ``Accelerometer``            ``ACC``                      ``Accelerometer`` /
                                                                      name ``_acceleration``
gyro        ``Gyroscope``                ``GYRO``                     ``Gyroscope`` /
                                                                      name ``_gyroscope``
==========  ===========================  ===========================  =========================
"""

from __future__ import annotations

from .types import SignalKind

__all__ = [
    "ESTIMATES_TYPE",
    "MANUFACTURER",
    "MARKERS_TYPE",
    "OUTLET_KINDS",
    "PACER_TYPE",
    "STREAM_TYPES",
    "TYPE_ALIASES",
    "kind_from_type",
    "outlet_name",
    "outlet_source_id",
]

#: ``desc/acquisition/manufacturer`` of every calmloop outlet.
MANUFACTURER = "calmloop"

#: LSL ``type`` of calmloop's raw-signal outlets (the BlueMuse / Petal Metrics spelling).
STREAM_TYPES: dict[SignalKind, str] = {
    SignalKind.EEG: "EEG",
    SignalKind.PPG: "PPG",
    SignalKind.ACCEL: "Accelerometer",
    SignalKind.GYRO: "Gyroscope",
}

#: Stream types (lower case) that mean the same signal kind, across producers.
TYPE_ALIASES: dict[SignalKind, tuple[str, ...]] = {
    SignalKind.EEG: ("eeg",),
    SignalKind.PPG: ("ppg",),
    SignalKind.ACCEL: ("accelerometer", "acc", "accel", "acceleration"),
    SignalKind.GYRO: ("gyroscope", "gyro"),
}

#: LSL ``type`` of the estimates, pacer and marker outlets ("Markers" is what LabRecorder,
#: pyxdf and MNE treat as event streams).
ESTIMATES_TYPE = "Estimates"
PACER_TYPE = "Pacer"
MARKERS_TYPE = "Markers"

#: Short names of every outlet calmloop can publish, in publication order.
OUTLET_KINDS: tuple[str, ...] = ("eeg", "ppg", "accel", "gyro", "estimates", "pacer", "markers")


def outlet_name(prefix: str, kind: str) -> str:
    """LSL stream name of one calmloop outlet, e.g. ``"calmloop-eeg"``."""
    return f"{prefix}-{kind}"


def outlet_source_id(prefix: str, kind: str) -> str:
    """Stable LSL ``source_id`` of one calmloop outlet, e.g. ``"calmloop-muse2-eeg"``.

    The same prefix must be used after a restart so that inlets recover by themselves.
    """
    return f"{prefix}-{kind}"


def kind_from_type(stream_type: str) -> SignalKind | None:
    """Signal kind whose aliases include ``stream_type`` (case-insensitive), else None."""
    t = stream_type.strip().lower()
    for kind, aliases in TYPE_ALIASES.items():
        if t in aliases:
            return kind
    return None
