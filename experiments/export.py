"""``calmloop export``: a recording as MNE-Python data, in FIF, EDF/BDF or a BIDS dataset.

Researchers open calmloop sessions in MNE, EEGLAB or any EDF viewer.  :func:`recording_to_raw`
turns any recording :func:`sensors.readers.read_recording` opens (a session folder, a
``session.xdf``, LabRecorder XDF, BrainFlow files, muselsl CSVs) into one
:class:`mne.io.RawArray`, and :func:`export_recording` writes it.

Layout of the Raw: one file, on the EEG's time grid
---------------------------------------------------
MNE's Raw holds one sampling rate, and the signals arrive at 256 Hz (EEG), 64 Hz (PPG) and
52 Hz (accelerometer, gyroscope).  The export keeps one file per recording, sampled like the
EEG, and adds the slower streams as extra channels interpolated linearly (``np.interp``) at the
time of each EEG sample: a single file keeps every signal aligned with the annotations, which is
what a researcher opening a session needs (one ``raw.plot()``, one ``events.tsv``).  Upsampling
by linear interpolation adds no information and no aliasing; the PPG pulse (about 1 Hz) and head
motion (below 10 Hz) are far below the 26-32 Hz Nyquist frequency of the original streams, so
their shape is kept.  The exact samples remain in ``session.xdf``.

* Raw sample ``i`` is the ``i``-th EEG sample (the EEG is the reference stream; without EEG, the
  fastest stream is).  When the recorded EEG times stray from ``t0 + i / sfreq`` by more than
  :data:`MAX_GRID_ERROR_S` (dropped Bluetooth packets, clock drift), every stream, EEG included,
  is interpolated onto the regular grid and each EEG gap longer than :data:`GAP_S` is annotated
  ``BAD_ACQ_SKIP`` (MNE's name for acquisition skips: epochs there are rejected).
* Where a slower stream has a gap or has not started yet, its channels are interpolated across
  (or hold their edge value) and the span is annotated ``gap/<kind>`` (not ``BAD``: the EEG is
  fine there).

Channel types and units
-----------------------
==========  ===========  =========================================================================
stream      MNE type     unit
==========  ===========  =========================================================================
EEG         ``eeg``      volts in the Raw (calmloop records microvolts: multiplied by 1e-6); EDF
                         and BIDS files store microvolts, as MNE writes them
PPG         ``misc``     optical counts ("au"): MNE's ``bio`` type means volts (its EDF writer
                         would scale it by 1e6 and label it uV), and MNE has no PPG type
accel       ``misc``     g, as recorded (MNE has no accelerometer type)
gyro        ``misc``     deg/s, as recorded
==========  ===========  =========================================================================

FIF has no code for g, deg/s or optical counts, so ``misc`` channels carry FIFF's "no unit" and
the units are listed in ``raw.info["description"]``.  EDF/BDF files carry them in each signal's
physical dimension (``"g"``, ``"deg/s"``, ``"au"``; MNE reads them back unscaled and keeps them
in ``raw._orig_units``), with the type in the label (``"MISC ACC_X"``: read with
``mne.io.read_raw_edf(f, infer_types=True)``).  BIDS datasets list them in
``*_channels.tsv`` (type ``MISC``, the BIDS name of MNE's ``misc``; ``units`` and a
``description`` column say what each channel is).  Channel names that collide across streams
(muselsl's ``X Y Z`` for both accelerometer and gyroscope) get a kind prefix (``ACCEL_X``).

Annotations
-----------
Every marker becomes an :class:`mne.Annotations` entry with its onset relative to the first EEG
sample (``marker.time - t0``) and a short, hierarchical description (MNE's ``"a/b"`` tags, so
``epochs["state"]`` selects all state changes): ``state/<state>`` (with the duration of the
state, up to the next state change or the end of the data), ``alert/<cause>``,
``ready_for_dosing``, ``stop/<by>``, ``pace/<what>``, ``calibration/done``,
``resonance/<what>``, ``session/start``, ``session/end``, ``outcome/<measure>`` and ``note``.
The full marker text is kept in the annotation ``extras`` (``marker`` key, MNE >= 1.10: saved in
FIF and as the ``marker`` column of BIDS ``events.tsv``; EDF has no room for it).  Foreign markers keep
their text.

Formats
-------
``fif``: ``<name>_raw.fif`` (MNE's own format, lossless float32).  ``edf`` / ``bdf``:
``<name>.edf`` / ``.bdf`` through :func:`mne.export.export_raw` (needs the ``edfio`` package;
16-bit EDF or 24-bit BDF with a physical range per channel).  ``bids``: a BIDS-EEG dataset
under ``--out`` through mne-bids (EDF data), ``sub-<patient>/ses-<UTC start>/eeg/``, with
``events.tsv`` from the annotations.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import logging
import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from adaptive.errors import ConfigError
from adaptive.records import XDF_FILENAME, Marker, Recording, check_patient_id, parse_marker
from adaptive.types import UNITS, FloatArray, SignalKind
from sensors.readers import read_recording

if TYPE_CHECKING:  # mne is imported lazily: it takes a second
    import mne

__all__ = [
    "EXPORT_FORMATS",
    "GAP_S",
    "MAX_GRID_ERROR_S",
    "ExportResult",
    "annotation_description",
    "channel_kinds",
    "export_recording",
    "marker_annotations",
    "recording_name",
    "recording_to_raw",
    "run_export",
]

logger = logging.getLogger(__name__)

EXPORT_FORMATS: tuple[str, ...] = ("fif", "edf", "bdf", "bids")
#: Largest distance (s) between the recorded EEG times and ``t0 + i / sfreq`` kept as is.
MAX_GRID_ERROR_S = 0.1
#: A pause between two samples of a stream longer than this (s) is a gap, annotated.
GAP_S = 0.25

_CH_TYPES: dict[SignalKind, str] = {
    SignalKind.EEG: "eeg",
    SignalKind.PPG: "misc",
    SignalKind.ACCEL: "misc",
    SignalKind.GYRO: "misc",
}
_DESCRIPTIONS: dict[SignalKind, str] = {
    SignalKind.EEG: "EEG",
    SignalKind.PPG: "PPG optical counts (no physical unit)",
    SignalKind.ACCEL: "accelerometer (1 g = 9.80665 m/s^2)",
    SignalKind.GYRO: "gyroscope",
}


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What :func:`export_recording` wrote.

    Parameters
    ----------
    path : Path
        The file written (for BIDS, the data file inside the dataset).
    root : Path
        The file itself, or the BIDS root.
    format : str
        One of :data:`EXPORT_FORMATS`.
    sfreq : float
        Sampling rate of the file, Hz.
    duration_s : float
        Length of the data, seconds.
    ch_types : dict of str to int
        Number of channels per MNE type.
    n_annotations : int
        Number of annotations written.
    notes : tuple of str
        What the export had to do (interpolation onto a grid, gaps, warnings from the writers).
    """

    path: Path
    root: Path
    format: str
    sfreq: float
    duration_s: float
    ch_types: dict[str, int]
    n_annotations: int
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Recording -> Raw
# ---------------------------------------------------------------------------------------------
def annotation_description(text: str) -> str:
    """Short annotation description of a marker: ``"state:calm reason:..."`` -> ``"state/calm"``.

    Parameters
    ----------
    text : str
        Marker text (see :mod:`adaptive.records`).

    Returns
    -------
    description : str
        ``<kind>/<first word of the value>``, ``<kind>`` when there is no value (and for
        ``note``), or the text itself for a marker that is not ``kind:value`` (foreign files).

    Examples
    --------
    >>> annotation_description("alert:hr_high 134 bpm")
    'alert/hr_high'
    >>> annotation_description("ready_for_dosing")
    'ready_for_dosing'
    """
    text = " ".join(str(text).split())
    if ":" not in text.partition(" ")[0]:
        return text
    parsed = parse_marker(text)
    word = parsed.value.split(" ", 1)[0] if parsed.value else ""
    if parsed.kind == "note" or not word:
        return parsed.kind
    return f"{parsed.kind}/{word}"


def marker_annotations(
    markers: Sequence[Marker], t0: float, t_end: float, extra: Sequence[tuple[float, float, str]] = ()
) -> mne.Annotations:
    """Annotations of the markers, with onsets relative to ``t0``.

    Parameters
    ----------
    markers : sequence of Marker
        Sorted by time (times on the recording's clock).
    t0 : float
        Time of the first Raw sample on the same clock.
    t_end : float
        Time of the last Raw sample (a state lasts until the next state change or this).
    extra : sequence of (onset, duration, description)
        More annotations, onsets already relative to ``t0`` (gaps).

    Returns
    -------
    mne.Annotations
        ``orig_time=None`` (relative to the first sample); markers before ``t0`` or after
        ``t_end`` are clipped to the data; the full marker text is in ``extras["marker"]``.
    """
    import mne

    onsets: list[float] = []
    durations: list[float] = []
    descriptions: list[str] = []
    extras: list[dict[str, str]] = []
    state_times = [m.time for m in markers if m.text.startswith("state:")]
    for m in markers:
        desc = annotation_description(m.text)
        if not desc:
            continue
        onset = min(max(m.time, t0), t_end) - t0
        duration = 0.0
        if m.text.startswith("state:"):
            later = [t for t in state_times if t > m.time]
            end = min(later[0] if later else t_end, t_end)
            duration = max(0.0, end - max(m.time, t0))
        onsets.append(onset)
        durations.append(duration)
        descriptions.append(desc)
        extras.append({"marker": " ".join(m.text.split())})
    for onset, duration, desc in extra:
        onsets.append(onset)
        durations.append(duration)
        descriptions.append(desc)
        extras.append({"marker": desc})
    order = np.argsort(np.asarray(onsets, dtype=np.float64), kind="stable")
    kwargs: dict[str, object] = {}
    if "extras" in inspect.signature(mne.Annotations).parameters:  # MNE >= 1.10
        kwargs["extras"] = [extras[i] for i in order]
    return mne.Annotations(
        onset=[onsets[i] for i in order],
        duration=[durations[i] for i in order],
        description=[descriptions[i] for i in order],
        orig_time=None,
        **kwargs,
    )


def _gaps(times: FloatArray, grid: FloatArray, gap_s: float) -> list[tuple[float, float]]:
    """Spans of ``grid`` (absolute times) not covered by ``times``: before, inside, after."""
    out: list[tuple[float, float]] = []
    if times.size == 0:
        return [(float(grid[0]), float(grid[-1]))]
    if times[0] - grid[0] > gap_s:
        out.append((float(grid[0]), float(times[0])))
    d = np.diff(times)
    for k in np.flatnonzero(d > gap_s):
        out.append((float(times[k]), float(times[k + 1])))
    if grid[-1] - times[-1] > gap_s:
        out.append((float(times[-1]), float(grid[-1])))
    return out


def _meas_date(recording: Recording, t0: float) -> datetime | None:
    header = recording.metadata.get("file_header")
    if recording.metadata.get("time_base") == "session" and isinstance(header, dict):
        start = header.get("session_start_utc") or header.get("datetime")
        if isinstance(start, str):
            try:
                when = datetime.fromisoformat(start)
            except ValueError:
                return None
            if when.tzinfo is not None:
                return datetime.fromtimestamp(when.timestamp() + t0, UTC)
        return None
    fmt = str(recording.metadata.get("format", ""))
    if "brainflow" in fmt and 1e9 < t0 < 1e10:  # BrainFlow stamps are Unix seconds
        return datetime.fromtimestamp(t0, UTC)
    return None


def _ordered(recording: Recording) -> Recording:
    """The recording with its streams in :class:`SignalKind` order (EEG first)."""
    order = {k: i for i, k in enumerate(SignalKind)}
    return dataclasses.replace(
        recording, streams=tuple(sorted(recording.streams, key=lambda s: order[s.kind]))
    )


def channel_kinds(recording: Recording) -> dict[str, SignalKind]:
    """Signal kind of every channel of :func:`recording_to_raw`'s Raw, by channel name."""
    rec = _ordered(recording)
    return {
        name: s.kind
        for s, group in zip(rec.streams, _channel_names(rec), strict=True)
        if s.n_times >= 2
        for name in group
    }


def _channel_names(recording: Recording) -> list[list[str]]:
    names = [list(s.spec.ch_names) for s in recording.streams]
    flat = [n for group in names for n in group]
    dup = {n for n in flat if flat.count(n) > 1}
    out: list[list[str]] = []
    for s, group in zip(recording.streams, names):
        if s.kind is SignalKind.EEG:
            out.append(group)
        else:
            out.append([f"{s.kind.value.upper()}_{n}" if n in dup else n for n in group])
    return out


def recording_to_raw(
    recording: Recording, *, subject: str | None = None
) -> tuple[mne.io.RawArray, list[str]]:
    """One Raw with every signal stream of a recording, on the EEG's time grid.

    Parameters
    ----------
    recording : Recording
        What :func:`sensors.readers.read_recording` returned.
    subject : str or None
        Pseudonymous subject code for ``info["subject_info"]["his_id"]`` (never a name).

    Returns
    -------
    raw : mne.io.RawArray
        EEG in volts (type ``eeg``), other streams interpolated onto the EEG samples (type
        ``misc``, units in ``raw.info["description"]``), markers and gaps as annotations.
    notes : list of str
        What was done to fit the data into one grid (for the user).

    Raises
    ------
    ValueError
        If the recording has no samples.

    Notes
    -----
    See the module docstring for the layout, types, units and annotation names.
    """
    import mne

    recording = _ordered(recording)
    streams = [s for s in recording.streams if s.n_times >= 2]
    if not streams:
        raise ValueError(
            "Invalid value for 'recording': expected at least one stream with two samples or more, got "
            f"{[(s.kind.value, s.n_times) for s in recording.streams]}."
        )
    ref = next((s for s in streams if s.kind is SignalKind.EEG), max(streams, key=lambda s: s.spec.sfreq))
    sfreq = float(ref.spec.sfreq)
    t0 = float(ref.times[0])
    n = ref.n_times
    regular = t0 + np.arange(n, dtype=np.float64) / sfreq
    error = float(np.max(np.abs(ref.times - regular)))
    notes: list[str] = []
    gaps: list[tuple[float, float, str]] = []
    if error <= MAX_GRID_ERROR_S:
        grid = ref.times  # sample i of the Raw is the i-th reference sample
        ref_data = ref.data
    else:
        t_last = float(ref.times[-1])
        grid = t0 + np.arange(math.floor((t_last - t0) * sfreq) + 1, dtype=np.float64) / sfreq
        ref_data = np.vstack([np.interp(grid, ref.times, row) for row in ref.data])
        notes.append(
            f"{ref.kind.value} time stamps stray up to {error:.3f} s from a regular {sfreq:g} Hz grid: every "
            "stream interpolated onto the regular grid"
        )
        for a, b in _gaps(ref.times, grid, GAP_S):
            gaps.append((a - t0, b - a, "BAD_ACQ_SKIP"))
    names = _channel_names(recording)
    data: list[FloatArray] = []
    ch_names: list[str] = []
    ch_types: list[str] = []
    units: list[str] = []
    for s, group in zip(recording.streams, names):
        if s.n_times < 2:
            notes.append(f"{s.kind.value}: {s.n_times} sample(s), left out")
            continue
        if s is ref:
            values = ref_data
        else:
            values = np.vstack([np.interp(grid, s.times, row) for row in s.data])
            spans = _gaps(s.times, grid, GAP_S)
            for a, b in spans:
                gaps.append((a - t0, b - a, f"gap/{s.kind.value}"))
            if s.spec.sfreq != sfreq:
                notes.append(
                    f"{s.kind.value} {s.spec.sfreq:g} Hz interpolated linearly onto the {sfreq:g} Hz grid"
                )
        if s.kind is SignalKind.EEG:
            values = values * 1e-6  # calmloop records microvolts, MNE holds volts
        data.append(values)
        ch_names += group
        ch_types += [_CH_TYPES[s.kind]] * len(group)
        units += ["V" if s.kind is SignalKind.EEG else UNITS[s.kind]] * len(group)
    info = mne.create_info(ch_names, sfreq, ch_types)
    misc_units = ", ".join(f"{c}={u}" for c, u, t in zip(ch_names, units, ch_types) if t == "misc")
    kinds = ", ".join(f"{s.kind.value} {s.spec.sfreq:g} Hz ({s.spec.device})" for s in recording.streams)
    info["description"] = (
        f"calmloop export of a {recording.metadata.get('format', '?')} recording: {kinds}. EEG in V; "
        f"misc channel units: {misc_units or 'none'}. Streams slower than {sfreq:g} Hz interpolated "
        "linearly onto the EEG samples."
    )
    if subject:
        info["subject_info"] = {"his_id": subject}
    from mne._fiff.constants import FIFF

    with info._unlock():
        for ch, t in zip(info["chs"], ch_types):
            if t == "misc":
                ch["unit"] = FIFF.FIFF_UNIT_NONE
    raw = mne.io.RawArray(np.vstack(data), info, verbose="error")
    when = _meas_date(recording, t0)
    if when is not None:
        raw.set_meas_date(when)
    t_end = t0 + (raw.n_times - 1) / sfreq
    merged = _merge_gaps(gaps)
    raw.set_annotations(marker_annotations(recording.markers, t0, t_end, merged), verbose="error")
    for onset, duration, desc in merged:
        if duration > 0:
            notes.append(f"{desc} at {onset:.1f} s for {duration:.1f} s")
    return raw, notes


def _merge_gaps(gaps: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Merge overlapping gap annotations with the same description (accel and gyro share stamps)."""
    out: list[tuple[float, float, str]] = []
    for onset, duration, desc in sorted(gaps, key=lambda g: (g[2], g[0])):
        if out and out[-1][2] == desc and onset <= out[-1][0] + out[-1][1]:
            o, d, _ = out[-1]
            out[-1] = (o, max(o + d, onset + duration) - o, desc)
        else:
            out.append((onset, duration, desc))
    return sorted(out, key=lambda g: g[0])


# ---------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------
def recording_name(paths: Sequence[Path]) -> str:
    """A file stem for the export: the session folder's name, else the first file's stem."""
    p = paths[0]
    if p.is_dir():
        return p.name
    if p.name == XDF_FILENAME:
        return p.parent.name
    return p.stem


def _misc_units(kinds: dict[str, SignalKind]) -> dict[str, str]:
    """Unit of every non-EEG channel (calmloop's units: au, g, deg/s)."""
    return {name: UNITS[k] for name, k in kinds.items() if k is not SignalKind.EEG}


def _set_edf_units(path: Path, units: dict[str, str]) -> None:
    """Write the units of the misc channels into an EDF/BDF header (MNE leaves them empty)."""
    import edfio

    reader = edfio.read_bdf if path.suffix.lower() == ".bdf" else edfio.read_edf
    edf = reader(path)
    changed = False
    for sig in edf.signals:
        label = sig.label
        name = label.split(" ", 1)[1] if label.upper().startswith("MISC ") else label
        unit = units.get(name)
        if unit and not sig.physical_dimension:
            sig.physical_dimension = unit
            changed = True
    if changed:
        edf.write(path)


def _bids_label(text: str, fallback: str) -> str:
    label = re.sub(r"[^A-Za-z0-9]", "", text)
    return label or fallback


def _write_bids(
    raw: mne.io.BaseRaw,
    kinds: dict[str, SignalKind],
    root: Path,
    subject: str,
    session: str,
    task: str,
    overwrite: bool,
) -> Path:
    try:
        import mne_bids
    except ImportError as exc:
        raise ConfigError(
            "Invalid value for '--to': 'bids' needs the mne-bids package (and edfio), which is not "
            "installed. "
            "Install calmloop's export extra: pip install 'calmloop[export]'."
        ) from exc
    bids_path = mne_bids.BIDSPath(subject=subject, session=session, task=task, datatype="eeg", root=root)
    mne_bids.write_raw_bids(
        raw, bids_path, allow_preload=True, format="EDF", overwrite=overwrite, verbose="error"
    )
    data = bids_path.copy().update(suffix="eeg", extension=".edf")
    _set_edf_units(Path(data.fpath), _misc_units(kinds))
    channels = bids_path.copy().update(suffix="channels", extension=".tsv")
    _fix_channels_tsv(Path(channels.fpath), kinds)
    return Path(data.fpath)


def _fix_channels_tsv(path: Path, kinds: dict[str, SignalKind]) -> None:
    """Give the non-EEG channels their units, and every channel a description, in ``*_channels.tsv``."""
    units = _misc_units(kinds)
    lines = path.read_text("utf-8").splitlines()
    header = lines[0].split("\t")
    if "description" not in header:
        header.append("description")
        lines = [lines[0] + "\tdescription"] + [ln + "\tn/a" for ln in lines[1:]]
    col = {c: i for i, c in enumerate(header)}
    out = ["\t".join(header)]
    for ln in lines[1:]:
        cells = ln.split("\t")
        name = cells[col["name"]]
        if name in units and "units" in col:
            cells[col["units"]] = units[name]
        if name in kinds:
            cells[col["description"]] = _DESCRIPTIONS[kinds[name]]
        out.append("\t".join(cells))
    path.write_text("\n".join(out) + "\n", "utf-8")


def export_recording(
    paths: str | Path | Sequence[str | Path],
    to: str,
    out_dir: str | Path = ".",
    *,
    overwrite: bool = False,
    line_freq: float | None = None,
    subject: str | None = None,
) -> ExportResult:
    """Read a recording and write it as FIF, EDF, BDF or a BIDS dataset.

    Parameters
    ----------
    paths : path or sequence of paths
        A session folder, a ``session.xdf``, or any file(s) :func:`read_recording` opens (several
        files of one session are merged).
    to : {"fif", "edf", "bdf", "bids"}
        Output format.
    out_dir : path-like
        Folder for the file (``<name>_raw.fif``, ``<name>.edf``, ``<name>.bdf``) or the BIDS
        root (created if needed).
    overwrite : bool
        Replace an existing file.
    line_freq : float or None
        Mains frequency (50 or 60 Hz) for ``info["line_freq"]`` and the BIDS sidecar (None:
        unknown, "n/a" in BIDS).
    subject : str or None
        Pseudonymous subject code (default: the patient id recorded in a calmloop session, else
        none; BIDS then uses the file name).

    Returns
    -------
    ExportResult

    Raises
    ------
    ConfigError
        If ``to`` is unknown, the output exists and ``overwrite`` is False, or a writer's
        package (edfio, mne-bids) is missing.
    SensorError
        If the recording cannot be read.
    """
    if to not in EXPORT_FORMATS:
        raise ConfigError(f"Invalid value for 'to': expected one of {', '.join(EXPORT_FORMATS)}, got {to!r}.")
    items = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not items:
        raise ConfigError("Invalid value for 'FILE': expected at least one recording, got none.")
    if subject is not None:
        check_patient_id(subject)
    for p in items:
        if not p.exists():
            raise ConfigError(f"Invalid value for 'FILE': {p} does not exist.")
    import mne

    recording = read_recording([str(p) for p in items] if len(items) > 1 else str(items[0]))
    header = recording.metadata.get("file_header")
    pid = subject or (header.get("patient_id") if isinstance(header, dict) else None)
    raw, notes = recording_to_raw(recording, subject=str(pid) if pid else None)
    if line_freq is not None:
        raw.info["line_freq"] = float(line_freq)
    name = recording_name(items)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if to == "fif":
            path = out / f"{name}_raw.fif"
            _check_free(path, overwrite)
            raw.save(path, overwrite=overwrite, verbose="error")
            root = path
        elif to in ("edf", "bdf"):
            path = out / f"{name}.{to}"
            _check_free(path, overwrite)
            _require_edfio()
            mne.export.export_raw(
                path,
                raw,
                fmt=to,
                physical_range="channelwise",
                add_ch_type=True,
                overwrite=overwrite,
                verbose="error",
            )
            _set_edf_units(path, _misc_units(channel_kinds(recording)))
            root = path
            pad = math.ceil(raw.n_times / raw.info["sfreq"]) * raw.info["sfreq"] - raw.n_times
            if pad > 0:
                notes.append(
                    f"{to.upper()} holds whole 1-s records: {pad / raw.info['sfreq']:.3g} s of edge "
                    "values appended at the end, annotated BAD_ACQ_SKIP in the file"
                )
        else:
            _require_edfio()
            subject = _bids_label(str(pid or name), "01")
            when = raw.info["meas_date"]
            session = when.strftime("%Y%m%dT%H%M%S") if when is not None else _bids_label(name, "01")
            task = "calmloop"
            root = out
            path = _write_bids(raw, channel_kinds(recording), out, subject, session, task, overwrite)
    for w in caught:
        text = " ".join(str(w.message).split())
        logger.info("%s export: %s", to, text)
        notes.append(text)
    types = {t: raw.get_channel_types().count(t) for t in dict.fromkeys(raw.get_channel_types())}
    return ExportResult(
        path=path,
        root=root,
        format=to,
        sfreq=float(raw.info["sfreq"]),
        duration_s=raw.n_times / float(raw.info["sfreq"]),
        ch_types=types,
        n_annotations=len(raw.annotations),
        notes=tuple(notes),
    )


def _check_free(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise ConfigError(
            f"Invalid value for '--out': {path} already exists. Pass --overwrite to replace it."
        )


def _require_edfio() -> None:
    try:
        import edfio  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            "Invalid value for '--to': EDF/BDF export needs the edfio package, which is not installed. "
            "Install calmloop's export extra: pip install 'calmloop[export]'."
        ) from exc


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------
def add_export_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``calmloop export`` to the subcommands."""
    p = sub.add_parser(
        "export", help="write a recording as FIF, EDF/BDF or BIDS (for MNE, EEGLAB, EDF viewers)"
    )
    p.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="session folder, session.xdf, or any recording (several files of one session merge)",
    )
    p.add_argument("--to", required=True, choices=EXPORT_FORMATS, help="output format")
    p.add_argument("--out", default=".", metavar="DIR", help="output folder, or the BIDS root (default: .)")
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    p.add_argument(
        "--line-freq",
        type=float,
        choices=(50.0, 60.0),
        default=None,
        metavar="{50,60}",
        help="mains frequency for the metadata (default: unknown)",
    )
    p.add_argument("--subject", help="pseudonymous subject code (default: the recorded patient id)")


def run_export(args: argparse.Namespace, out: TextIO) -> int:
    """``calmloop export FILE... --to fif|edf|bdf|bids [--out DIR]``."""
    result = export_recording(
        args.files,
        args.to,
        args.out,
        overwrite=bool(getattr(args, "overwrite", False)),
        line_freq=getattr(args, "line_freq", None),
        subject=getattr(args, "subject", None),
    )
    types = ", ".join(f"{n} {t}" for t, n in result.ch_types.items())
    out.write(f"calmloop export: {', '.join(map(str, args.files))} -> {result.path}\n")
    out.write(
        f"{result.format}: {types} channels at {result.sfreq:g} Hz, {result.duration_s:.1f} s, "
        f"{result.n_annotations} annotations\n"
    )
    if result.format == "bids":
        out.write(f"BIDS root: {result.root}\n")
    out.writelines(f"  note: {note}\n" for note in result.notes)
    return 0
