"""BIDS-EMG export and EDF/BDF muscle-curve files, re-read with MNE."""
import json

import mne
import numpy as np
import pytest

from eifer_blender.core.errors import InputError
from eifer_blender.core.recording.montage import FRIDLUND22, fridlund_sites_mm
from eifer_blender.core.trackfiles import (
    bids_basename,
    read_channels_tsv,
    read_track,
    read_track_edf,
    write_bids_emg,
    write_track,
    write_track_edf,
)
from eifer_blender.core.tracks import MuscleTrack


def _track(units="uV", n_frames=95, fps=30.0, seed=0, names=FRIDLUND22, space="fridlund22"):
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames) / fps
    values = 5 + 40 * rng.random(len(names)) * (1 + np.sin(2 * np.pi * t[:, None] * rng.uniform(0.2, 2, len(names))))
    if units != "uV":
        values = values / 80.0
    return MuscleTrack(values, names, fps, space, units, 0.0,
                       {"model": "arkit2emg.onnx", "model_version": "1.0.0"})


def _read(path):
    reader = mne.io.read_raw_bdf if str(path).endswith(".bdf") else mne.io.read_raw_edf
    return reader(path, infer_types=True, preload=True, verbose="error")


@pytest.mark.parametrize("suffix, levels", [(".edf", 65535), (".bdf", 16777215)])
@pytest.mark.parametrize("units", ["uV", "normalised"])
def test_edf_and_bdf_reread_by_mne_give_names_types_and_values(tmp_path, suffix, levels, units):
    track = _track(units)
    raw = _read(write_track_edf(track, tmp_path / f"m{suffix}"))
    assert raw.ch_names == list(FRIDLUND22)
    assert set(raw.get_channel_types()) == {"emg" if units == "uV" else "misc"}
    assert raw.info["sfreq"] == track.fps
    data = raw.get_data(units="uV") if units == "uV" else raw.get_data()
    n = track.n_frames
    quantum = np.ptp(track.values, axis=0) / levels  # one step of the file's integer range
    assert np.all(np.abs(data[:, :n].T - track.values) <= quantum + 1e-9)
    # the padding to a whole data record is marked, and holds edge values
    assert list(raw.annotations.description) == ["BAD_ACQ_SKIP"]  # start_s 0: no start annotation
    assert raw.annotations.onset[0] == pytest.approx(n / track.fps, abs=1e-6)
    assert np.allclose(data[:, n:].T, track.values[-1], atol=2 * quantum.max() + 1e-9)
    back = read_track_edf(tmp_path / f"m{suffix}")  # the add-on's own reader drops the padding
    assert back.names == FRIDLUND22 and back.units == units and back.n_frames == n
    assert np.all(np.abs(back.values - track.values) <= quantum + 1e-9)


def test_a_start_time_survives_the_edf_round_trip(tmp_path):
    track = _track("normalised", n_frames=30)
    track.start_s = 2 / 30
    back = read_track_edf(write_track_edf(track, tmp_path / "late.edf"))
    assert back.start_s == pytest.approx(2 / 30) and back.n_frames == 30


def test_bids_folder_has_the_required_files_and_fields(tmp_path):
    track = _track()
    files = write_bids_emg(track, tmp_path / "bids", subject="07", task="smile", session="2",
                           run=1, power_line_hz=50, data_format="bdf")
    base = "sub-07_ses-2_task-smile_run-01"
    assert files.data == tmp_path / "bids" / "sub-07" / "ses-2" / "emg" / f"{base}_emg.bdf"
    assert files.sidecar.name == f"{base}_emg.json" and files.channels.name == f"{base}_channels.tsv"
    assert files.electrodes.name == "sub-07_ses-2_electrodes.tsv"
    sidecar = json.loads(files.sidecar.read_text())
    for key in ("EMGChannelCount", "EMGReference", "EMGGround", "EMGPlacementScheme", "PowerLineFrequency",
                "SamplingFrequency", "HardwareFilters", "SoftwareFilters", "TaskName"):
        assert key in sidecar, key
    assert sidecar["EMGChannelCount"] == 22 and sidecar["SamplingFrequency"] == 30.0
    assert sidecar["PowerLineFrequency"] == 50 and sidecar["TaskName"] == "smile"
    assert sidecar["RecordingDuration"] == pytest.approx(track.n_frames / track.fps)
    assert sidecar["SoftwareFilters"]["EIFERInference"]["Model"] == "arkit2emg.onnx"
    rows = read_channels_tsv(files.channels)
    assert [r["name"] for r in rows] == list(FRIDLUND22)
    assert {r["type"] for r in rows} == {"EMG"} and {r["units"] for r in rows} == {"uV"}
    assert rows[FRIDLUND22.index("Zyg_L")]["target_muscle"] == "zygomaticus major, left"
    sites = read_channels_tsv(files.electrodes)
    zyg = sites[FRIDLUND22.index("Zyg_R")]
    assert (float(zyg["x"]), float(zyg["y"])) == tuple(fridlund_sites_mm()[FRIDLUND22.index("Zyg_R")])
    coords = json.loads(files.coordsystem.read_text())
    assert coords["FaceFrontal"]["EMGCoordinateUnits"] == "mm"
    description = json.loads(files.dataset_description.read_text())
    assert description["BIDSVersion"].startswith("1.11") and description["DatasetType"] == "derivative"
    raw = _read(files.data)
    assert raw.ch_names == [r["name"] for r in rows]


def test_bids_keeps_an_existing_dataset_description_and_marks_normalised_units(tmp_path):
    (tmp_path / "dataset_description.json").write_text('{"Name": "mine", "BIDSVersion": "1.11.0"}')
    names = ("Zyg_L", "EXTRA")
    files = write_bids_emg(_track("normalised", names=names, space="emg"), tmp_path)
    assert json.loads(files.dataset_description.read_text())["Name"] == "mine"
    rows = read_channels_tsv(files.channels)
    assert [r["units"] for r in rows] == ["n/a", "n/a"]
    assert files.electrodes is None  # not a montage: no nominal positions to give
    raw = _read(files.data)
    assert raw.ch_names == list(names)


def test_bad_labels_and_formats_are_refused_before_writing(tmp_path):
    with pytest.raises(InputError, match="letters and digits"):
        write_bids_emg(_track(), tmp_path, subject="0_1")
    with pytest.raises(InputError, match="EDF or BDF"):
        write_bids_emg(_track(), tmp_path, data_format="fif")
    with pytest.raises(InputError, match="whole number of frames per data record"):
        write_track_edf(_track(fps=24.5), tmp_path / "x.edf")
    assert not (tmp_path / "x.edf").exists()
    bad = _track()
    bad.values[3, 2] = np.nan
    with pytest.raises(InputError, match="NaN"):
        write_bids_emg(bad, tmp_path)
    assert not any(tmp_path.iterdir())
    assert bids_basename("01", "face", acquisition="inferred", run=3) == "sub-01_task-face_acq-inferred_run-03"


@pytest.mark.parametrize("fps", [30.0, 24.0, 30000 / 1001, 60000 / 1001])
@pytest.mark.parametrize("units", ["uV", "normalised"])
def test_every_edf_writer_and_reader_of_envelopes_agree(tmp_path, fps, units):
    """write_track / write_track_edf and read_track / read_track_edf are one format:
    values, units, frame count and rate come back whichever pair is used (NTSC rates too)."""
    track = _track(units, n_frames=50, fps=fps)
    quantum = np.ptp(track.values, axis=0) / 65535
    for writer in (write_track, write_track_edf):
        path = writer(track, tmp_path / f"{writer.__name__}.edf")
        for reader in (read_track, read_track_edf):
            back = reader(path)
            assert (back.units, back.n_frames, back.names) == (units, 50, FRIDLUND22), (writer, reader)
            assert back.fps == pytest.approx(fps, rel=1e-12)
            assert np.all(np.abs(back.values - track.values) <= quantum + 1e-9), (writer, reader)


def test_csv_export_keeps_fps_units_and_values(tmp_path):
    track = _track("normalised")
    path = write_track(track, tmp_path / "m.csv")
    header = [line for line in path.read_text().splitlines() if line.startswith("#")]
    assert any("30.0" in line and "fps" in line for line in header)
    assert any("units=normalised" in line for line in header)
    back = read_track(path)
    assert back.names == FRIDLUND22 and back.fps == 30.0 and back.units == "normalised"
    assert np.allclose(back.values, track.values, rtol=1e-9, atol=1e-12)
