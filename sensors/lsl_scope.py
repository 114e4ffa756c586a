"""How far calmloop's LSL streams reach: the machine (default), the link or the site.

liblsl reads its configuration once, from the file named by the ``LSLAPICFG`` environment
variable, the first time a stream is created or resolved.  Its built-in default announces
streams by multicast and broadcast on every network interface.  Patient physiology is health
data and LSL has no authentication or encryption, so calmloop ships three files and picks one
*before* liblsl starts:

=========  =================================  =============================================
scope      file                               reach
=========  =================================  =============================================
machine    ``sensors/lsl_api.cfg``            loopback only (``ResolveScope = machine``,
                                              multicast interface and listen address
                                              127.0.0.1, IPv6 off); the default
link       ``sensors/lsl_configs/link.cfg``   the local network segment (TTL 1)
site       ``sensors/lsl_configs/site.cfg``   the routed site network (TTL 24)
=========  =================================  =============================================

Call :func:`apply_lsl_scope` at the start of the program, before anything loads ``pylsl`` or
``mne_lsl``.  ``feedback.lsl_outlet`` and ``sensors.lsl_inlet`` load pylsl lazily and refuse
to run while ``LSLAPICFG`` is unset.

Notes
-----
Even the machine scope does not make the outlets unreachable: liblsl binds each outlet's
TCP data server and UDP service port (16572-16604) to all interfaces, and only the discovery
traffic is kept on loopback.  A computer that already knows this machine's address could
query it directly.  Clinic workstations should add a host firewall rule that drops inbound
TCP/UDP 16571-16604 on every interface but ``lo``.

Examples
--------
>>> lsl_config_path("machine").name
'lsl_api.cfg'
>>> lsl_config_path("link").relative_to(lsl_config_path("machine").parent).as_posix()
'lsl_configs/link.cfg'
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from adaptive.errors import ConfigError, SensorError

__all__ = [
    "LSL_SCOPES",
    "apply_lsl_scope",
    "check_lsl_config",
    "current_lsl_scope",
    "lsl_config_path",
]

logger = logging.getLogger(__name__)

#: The scopes calmloop knows, narrowest first.
LSL_SCOPES: tuple[str, ...] = ("machine", "link", "site")

_HERE = Path(__file__).resolve().parent
_FILES: dict[str, Path] = {
    "machine": _HERE / "lsl_api.cfg",
    "link": _HERE / "lsl_configs" / "link.cfg",
    "site": _HERE / "lsl_configs" / "site.cfg",
}
#: Modules that load liblsl (and so read LSLAPICFG) when first used.
_LSL_MODULES: tuple[str, ...] = ("pylsl", "mne_lsl")

_EXPOSURE = (
    "LSL has no authentication and no encryption: every computer on the {scope} network can "
    "list and record the patient's EEG, PPG, motion, estimates, pacer and markers."
)


def lsl_config_path(scope: str = "machine") -> Path:
    """Return the shipped liblsl configuration file of ``scope``.

    Parameters
    ----------
    scope : {"machine", "link", "site"}
        How far streams reach (see the module docstring).

    Returns
    -------
    path : Path
        Absolute path of the configuration file.

    Raises
    ------
    ConfigError
        If ``scope`` is unknown or its file is missing from the installation.
    """
    if scope not in _FILES:
        raise ConfigError(
            f"Invalid value for 'scope': expected one of {', '.join(repr(s) for s in LSL_SCOPES)}, "
            f"got {scope!r}. 'machine' keeps LSL on this computer."
        )
    path = _FILES[scope]
    if not path.is_file():
        raise ConfigError(
            f"Invalid value for 'scope': the configuration file of {scope!r} is missing ({path}). "
            "Reinstall calmloop; the package data must include sensors/lsl_api.cfg and "
            "sensors/lsl_configs/*.cfg."
        )
    return path


def _same_file(a: str | os.PathLike[str], b: Path) -> bool:
    try:
        return Path(a).resolve() == b.resolve()
    except OSError:
        return False


def current_lsl_scope(environ: Mapping[str, str] | None = None) -> str | None:
    """Which shipped scope ``LSLAPICFG`` points at, or None (unset or another file)."""
    env = os.environ if environ is None else environ
    current = env.get("LSLAPICFG")
    if not current:
        return None
    for scope, path in _FILES.items():
        if _same_file(current, path):
            return scope
    return None


def apply_lsl_scope(
    scope: str = "machine",
    *,
    environ: MutableMapping[str, str] | None = None,
    modules: Mapping[str, object] | None = None,
) -> Path:
    """Point ``LSLAPICFG`` at the configuration of ``scope`` before liblsl loads.

    Parameters
    ----------
    scope : {"machine", "link", "site"}
        ``"machine"`` (default) keeps LSL on loopback; ``"link"`` and ``"site"`` expose the
        streams to the lab network on purpose (logged at WARNING).
    environ : mutable mapping or None
        Environment to change (``os.environ`` by default; tests pass a dict).
    modules : mapping or None
        Loaded modules (``sys.modules`` by default; tests pass a dict).

    Returns
    -------
    path : Path
        The configuration file now named by ``LSLAPICFG``.

    Raises
    ------
    ConfigError
        If ``scope`` is unknown, or if pylsl / mne_lsl is already imported while
        ``LSLAPICFG`` names another file: liblsl may already have read its configuration, so
        changing the variable now could silently have no effect.

    Notes
    -----
    A ``LSLAPICFG`` set by the user beforehand is replaced (logged at INFO).  Child processes
    inherit the variable.
    """
    env = os.environ if environ is None else environ
    mods = sys.modules if modules is None else modules
    path = lsl_config_path(scope)
    current = env.get("LSLAPICFG")
    loaded = [m for m in _LSL_MODULES if m in mods]
    if loaded and not (current and _same_file(current, path)):
        raise ConfigError(
            f"Invalid value for 'scope': {scope!r} needs LSLAPICFG={path} before LSL loads, but "
            f"{' and '.join(loaded)} is already imported with LSLAPICFG="
            f"{current or 'unset (liblsl default: announce on every interface)'}. Call "
            "sensors.lsl_scope.apply_lsl_scope() at the start of the program, before anything "
            "imports pylsl or mne_lsl, or set LSLAPICFG in the environment."
        )
    if current and not _same_file(current, path):
        logger.info("LSLAPICFG was %s; using the %s-scope configuration %s instead.", current, scope, path)
    env["LSLAPICFG"] = str(path)
    if scope == "machine":
        logger.debug("LSL scope machine: %s (loopback only).", path)
    else:
        logger.warning("LSL scope %s (%s). %s", scope, path, _EXPOSURE.format(scope=scope))
    return path


def check_lsl_config(environ: Mapping[str, str] | None = None) -> Path:
    """Return the file ``LSLAPICFG`` names; raise unless it is set and readable.

    Raises
    ------
    SensorError
        If ``LSLAPICFG`` is unset (liblsl would fall back to its default configuration, which
        announces streams on every network interface) or names a missing file (liblsl would
        log an error and fall back to the default too).
    """
    env = os.environ if environ is None else environ
    current = env.get("LSLAPICFG")
    if not current:
        raise SensorError(
            "LSLAPICFG is not set, so liblsl would use its default configuration and announce "
            "patient streams on every network interface. Call "
            "sensors.lsl_scope.apply_lsl_scope('machine') before using LSL (the calmloop CLI does), "
            f"or set LSLAPICFG={_FILES['machine']}."
        )
    path = Path(current)
    if not path.is_file():
        raise SensorError(
            f"LSLAPICFG names {current}, which does not exist; liblsl would fall back to its "
            "default configuration (every network interface). Fix the path or call "
            "sensors.lsl_scope.apply_lsl_scope('machine')."
        )
    return path
