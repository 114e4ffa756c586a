"""``calmloop export``: recordings opened in MNE with the right channel types, units and annotations."""

from __future__ import annotations

import argparse
import io
import itertools
from collections.abc import Callable
from pathlib import Path

import mne
import numpy as np
import pytest
from numpy.testing import assert_allclose

from adaptive.errors import ConfigError
from adaptive.records import Marker, RecordedStream, Recording
from adaptive.types import SignalKind, StreamSpec
from experiments import cli_tools
from experiments.export import (
    annotation_description,
    export_recording,
    marker_annotations,
    recording_to_raw,
)
from sensors.readers import read_recording



@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory, record_short_session: Callable[..., Path]) -> Path:
    """A 120-s session of the simulated patient, recorded by ``calmloop session`` (about 4 s)."""
    return record_short_session(tmp_path_factory.mktemp("sessions"), "P_01", "--mood-before", "6", "--mood-after", "4")


@pytest.fixture(scope="module")
def recording(session: Path) -> Recording:
    return read_recording(session)


def _spec(kind: SignalKind, sfreq: float, names: tuple[str, ...]) -> StreamSpec:
    return StreamSpec(kind, sfreq, names, device="test")


def _stream(kind: SignalKind, sfreq: float, names: tuple[str, ...], times: np.ndarray) -> RecordedStream:
    rng = np.random.default_rng(3)
    data = rng.normal(size=(len(names), times.size)) + np.arange(len(names))[:, None]
    return RecordedStream(_spec(kind, sfreq, names), data, times)


# ---------------------------------------------------------------------------------------------
# Recording -> Raw
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("state:slowing reason:matched 5.70 brpm", "state/slowing"),
        ("alert:hr_high 134 bpm", "alert/hr_high"),
        ("ready_for_dosing", "ready_for_dosing"),
        ("stop:clinician reason:stop confirmed", "stop/clinician"),
        ("pace:hold arousal 0.62 > 0.5", "pace/hold"),
        ("outcome:mood before:6 after:4", "outcome/mood"),
        ("note:patient moved", "note"),
        ("session:end reason:ready + 5 min", "session/end"),
        ("42", "42"),  # a foreign marker keeps its text
    ],
)
def test_annotation_descriptions_are_short_hierarchical_tags(text: str, expected: str) -> None:
    assert annotation_description(text) == expected


def test_session_becomes_one_raw_on_the_eeg_grid(recording: Recording) -> None:
    raw, notes = recording_to_raw(recording, subject="P_01")
    eeg = recording.stream(SignalKind.EEG)
    ppg = recording.stream(SignalKind.PPG)
    assert eeg is not None and ppg is not None
    assert raw.info["sfreq"] == 256.0 and raw.n_times == eeg.n_times
    assert raw.get_channel_types() == ["eeg"] * 4 + ["misc"] * 9
    assert raw.ch_names[:4] == ["TP9", "AF7", "AF8", "TP10"] and "PPG_IR" in raw.ch_names
    # EEG: calmloop's microvolts are volts in MNE, sample for sample
    assert_allclose(raw.get_data(picks="eeg"), eeg.data * 1e-6, rtol=1e-12)
    # PPG: linear interpolation at the EEG sample times, in optical counts (no scaling)
    ppg_ir = raw.get_data(picks=["PPG_IR"])[0]
    assert_allclose(ppg_ir, np.interp(eeg.times, ppg.times, ppg.data[0]), rtol=1e-12)
    assert "PPG_IR=au" in raw.info["description"] and "ACC_X=g" in raw.info["description"]
    assert "GYRO_X=deg/s" in raw.info["description"]
    assert raw.info["subject_info"]["his_id"] == "P_01"
    assert raw.info["meas_date"] is not None
    assert any("ppg 64 Hz interpolated" in n for n in notes)


def test_markers_become_annotations_relative_to_the_eeg_start(recording: Recording) -> None:
    raw, _ = recording_to_raw(recording)
    t0 = recording.stream(SignalKind.EEG).times[0]  # type: ignore[union-attr]
    ann = raw.annotations
    texts = [m.text for m in recording.markers]
    assert len(ann) == len(texts)
    assert list(ann.description).count("session/start") == 1
    for m in recording.markers:
        k = next(i for i, x in enumerate(ann.extras) if x["marker"] == " ".join(m.text.split()))
        assert ann.onset[k] == pytest.approx(m.time - t0, abs=1e-6)  # s: MNE keeps onsets to the microsecond
    states = [i for i, d in enumerate(ann.description) if d.startswith("state/")]
    assert states, "the short session changes state at least once"
    # a state lasts until the next state change (the last one until the end of the data)
    for a, b in itertools.pairwise(states):
        assert ann.onset[a] + ann.duration[a] == pytest.approx(ann.onset[b])
    assert ann.onset[states[-1]] + ann.duration[states[-1]] == pytest.approx(raw.times[-1])


def test_alerts_and_ready_for_dosing_become_annotations() -> None:
    t = np.arange(0, 20 * 256) / 256.0 + 100.0  # EEG starts at 100 s on the recording's clock
    rec = Recording(
        (_stream(SignalKind.EEG, 256.0, ("TP9", "AF7"), t),),
        markers=(
            Marker(102.0, "state:calm reason:calm criteria met"),
            Marker(104.5, "alert:hr_high 134 bpm"),
            Marker(106.0, "state:ready_for_dosing reason:calm for 60 s"),
            Marker(106.0, "ready_for_dosing"),
        ),
    )
    raw, _ = recording_to_raw(rec)
    ann = {
        d: (o, dur)
        for o, dur, d in zip(raw.annotations.onset, raw.annotations.duration, raw.annotations.description)
    }
    assert ann["alert/hr_high"] == (pytest.approx(4.5), 0.0)
    assert ann["ready_for_dosing"] == (pytest.approx(6.0), 0.0)
    assert ann["state/calm"] == (pytest.approx(2.0), pytest.approx(4.0))
    assert ann["state/ready_for_dosing"][1] == pytest.approx(raw.times[-1] - 6.0)


def test_gaps_and_late_streams_are_annotated_and_the_grid_stays_regular() -> None:
    # EEG loses 1 s at 5 s (a Bluetooth drop); PPG starts 2 s late
    t_eeg = np.arange(0, 10 * 256) / 256.0
    t_eeg = t_eeg[(t_eeg < 5.0) | (t_eeg >= 6.0)]
    t_ppg = np.arange(2 * 64, 10 * 64) / 64.0
    rec = Recording(
        (_stream(SignalKind.EEG, 256.0, ("TP9",), t_eeg), _stream(SignalKind.PPG, 64.0, ("PPG1",), t_ppg))
    )
    raw, notes = recording_to_raw(rec)
    assert raw.n_times == 10 * 256  # regular grid from 0 to the last sample (9.996 s), gap filled
    assert_allclose(raw.times[1], 1 / 256)
    desc = list(raw.annotations.description)
    skip = desc.index("BAD_ACQ_SKIP")
    assert raw.annotations.onset[skip] == pytest.approx(5.0 - 1 / 256)
    assert raw.annotations.duration[skip] == pytest.approx(1.0 + 1 / 256)
    late = desc.index("gap/ppg")
    assert raw.annotations.onset[late] == pytest.approx(0.0)
    assert raw.annotations.duration[late] == pytest.approx(2.0)
    assert any("interpolated onto the regular grid" in n for n in notes)


def test_colliding_channel_names_get_a_kind_prefix(test_data: Path) -> None:
    rec = read_recording(test_data / "formats" / "bluemuse.xdf")  # X Y Z for both accel and gyro
    raw, _ = recording_to_raw(rec)
    assert {"ACCEL_X", "ACCEL_Z", "GYRO_X", "GYRO_Z", "PPG1"} <= set(raw.ch_names)
    assert len(set(raw.ch_names)) == len(raw.ch_names)


def test_marker_annotations_clip_markers_outside_the_data() -> None:
    ann = marker_annotations([Marker(-1.0, "session:start"), Marker(50.0, "session:end")], 0.0, 10.0)
    assert list(ann.onset) == [0.0, 10.0]


# ---------------------------------------------------------------------------------------------
# Files opened in MNE
# ---------------------------------------------------------------------------------------------
def test_fif_opens_in_mne_with_types_units_and_annotations(
    session: Path, recording: Recording, tmp_path: Path
) -> None:
    result = export_recording(session, "fif", tmp_path)
    assert result.path == tmp_path / f"{session.name}_raw.fif"
    raw = mne.io.read_raw_fif(result.path, preload=True, verbose="error")
    assert raw.get_channel_types() == ["eeg"] * 4 + ["misc"] * 9
    eeg = recording.stream(SignalKind.EEG)
    assert eeg is not None
    # FIF stores float32: relative error below 2**-24 of the value
    assert_allclose(raw.get_data(picks="eeg"), eeg.data * 1e-6, rtol=1e-6, atol=1e-12)
    assert [ch["unit"] for ch in raw.info["chs"]][:4] == [mne.io.constants.FIFF.FIFF_UNIT_V] * 4
    assert "ACC_X=g" in raw.info["description"]
    descs = set(raw.annotations.description)
    assert {"session/start", "state/matching", "session/end", "outcome/mood"} <= descs
    assert any(x["marker"].startswith("state:") for x in raw.annotations.extras)
    assert result.n_annotations == len(raw.annotations)


def test_edf_opens_in_mne_with_types_units_and_annotations(
    session: Path, recording: Recording, tmp_path: Path
) -> None:
    import edfio

    result = export_recording([session / "session.xdf"], "edf", tmp_path)
    assert result.path.suffix == ".edf"
    raw = mne.io.read_raw_edf(result.path, infer_types=True, preload=True, verbose="error")
    assert raw.get_channel_types()[:13] == ["eeg"] * 4 + ["misc"] * 9
    eeg = recording.stream(SignalKind.EEG)
    assert eeg is not None
    data = raw.get_data(picks="eeg")[:, : eeg.n_times]
    # 16-bit EDF with a physical range per channel: error at most one step of (max - min) / 65535
    step = (eeg.data.max(axis=1) - eeg.data.min(axis=1)) * 1e-6 / 65535
    assert np.all(np.abs(data - eeg.data * 1e-6).max(axis=1) <= step)
    units = {s.label: s.physical_dimension for s in edfio.read_edf(result.path).signals}
    assert units["EEG TP9"] == "uV" and units["MISC ACC_X"] == "g"
    assert units["MISC GYRO_X"] == "deg/s" and units["MISC PPG_IR"] == "au"
    descs = list(raw.annotations.description)
    assert {"session/start", "state/matching", "session/end"} <= set(descs)
    start = descs.index("state/matching")
    assert raw.annotations.onset[start] == pytest.approx(
        next(m.time for m in recording.markers if m.text.startswith("state:matching")), abs=1 / 256
    )


def test_bids_dataset_opens_with_mne_bids(session: Path, tmp_path: Path) -> None:
    mne_bids = pytest.importorskip("mne_bids")
    result = export_recording(session, "bids", tmp_path / "bids", line_freq=50.0)
    assert result.root == tmp_path / "bids"
    assert (tmp_path / "bids" / "dataset_description.json").is_file()
    path = mne_bids.get_bids_path_from_fname(result.path)
    raw = mne_bids.read_raw_bids(path, verbose="error")
    assert path.subject == "P01"  # BIDS labels are alphanumeric
    assert raw.get_channel_types()[:13] == ["eeg"] * 4 + ["misc"] * 9
    assert raw.info["line_freq"] == 50.0
    assert {"session/start", "state/matching", "session/end"} <= set(raw.annotations.description)
    channels = next(result.path.parent.glob("*_channels.tsv")).read_text().splitlines()
    acc = next(ln for ln in channels if ln.startswith("ACC_X\t")).split("\t")
    assert acc[1] == "MISC" and acc[2] == "g" and "accelerometer" in channels[0] + "\t".join(acc)
    events = next(result.path.parent.glob("*_events.tsv")).read_text()
    assert "state:matching" in events  # the full marker text in the marker column


def test_multi_file_brainflow_recording_exports(shared_data: Path, tmp_path: Path) -> None:
    files = sorted((shared_data / "muse2_brainflow").glob("*_from_streamer.csv"))
    result = export_recording(files, "fif", tmp_path)
    raw = mne.io.read_raw_fif(result.path, verbose="error")
    assert raw.get_channel_types() == ["eeg"] * 4 + ["misc"] * 9
    assert raw.info["meas_date"].year == 2025  # BrainFlow stamps are Unix seconds
    assert 9.5 < raw.times[-1] < 10.0  # s: the README's 9.8-s session
    # the README: EEG within +-1000 uV (saturating), accel z about 0.85..1.10 g
    assert np.abs(raw.get_data(picks="eeg")).max() <= 1000e-6 * 1.001
    z = raw.get_data(picks=["accel_z"])[0]
    assert 0.8 < np.median(z) < 1.15


# ---------------------------------------------------------------------------------------------
# Command line and errors
# ---------------------------------------------------------------------------------------------
def test_cli_export_prints_what_it_wrote(session: Path, tmp_path: Path) -> None:
    parser = argparse.ArgumentParser(prog="calmloop")
    cli_tools.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", str(session), "--to", "fif", "--out", str(tmp_path)])
    out = io.StringIO()
    assert cli_tools.dispatch(args, out) == 0
    text = out.getvalue()
    assert f"-> {tmp_path / (session.name + '_raw.fif')}" in text
    assert "fif: 4 eeg, 9 misc channels at 256 Hz" in text
    with pytest.raises(ConfigError, match="already exists.*--overwrite"):
        cli_tools.dispatch(args, out)
    assert cli_tools.dispatch(argparse.Namespace(command="session"), out) is None


def test_bad_calls_raise_clear_errors(tmp_path: Path, test_data: Path) -> None:
    with pytest.raises(ConfigError, match="'to'.*fif, edf, bdf, bids"):
        export_recording(test_data / "formats" / "session_complete.xdf", "gdf", tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        export_recording(tmp_path / "nothing.xdf", "fif", tmp_path)
    with pytest.raises(ConfigError, match="patient_id"):
        export_recording(test_data / "formats" / "session_complete.xdf", "fif", tmp_path, subject="Jane Doe")
    with pytest.raises(ValueError, match="recording"):
        recording_to_raw(Recording(()))
