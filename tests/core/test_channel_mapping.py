"""Recordings from real labs: any channel names, any subset of muscles, any units (the recording side).

Test files are written the way labs write them (FACTS: 2 channels, mV, a byte-order mark, runs of
NULL cells, headerless tab exports with a trailing tab, 100 Hz exports of processed signals).
"""
import shutil

import edfio
import numpy as np
import pybv
import pytest

from eifer_blender.cli import main as cli_main
from eifer_blender.core.envelopes import ProcessingSettings, process_recording
from eifer_blender.core.errors import InputError
from eifer_blender.core.recording import RecordingSource, open_recording, read_recording
from eifer_blender.core.recording.channel_map import (
    guess_montage,
    guess_site,
    parse_map_items,
    read_map_file,
    resolve_channels,
)
from eifer_blender.core.recording.montage import FRIDLUND22
from eifer_blender.core.trackfiles import read_track
from tests.helpers import LAB_RATE_HZ as RATE_HZ, REAL_DATA, lab_signal, needs_real_data, write_lab_csv

REAL = REAL_DATA


# ---- guessing and mapping ----------------------------------------------------------------------


@pytest.mark.parametrize("label, side, site", [
    ("EMG_zyg", "L", "Zyg_L"), ("EMG_cor", "R", "Corr_R"), ("Corrugator L", None, "Corr_L"),
    ("Zygomaticus_R", None, "Zyg_R"), ("med Front li", None, "medFront_L"), ("lat Front re", None, "latFront_R"),
    ("Deprsup re", None, "DepSup_R"), ("depsup L", None, "DepSup_L"), ("Llsup", "L", "LLSup_L"),
    ("DAO li", None, "DAO_L"), ("OrbOc li", None, "OrbOc_L"), ("orbOr R", None, "OrbOr_R"),
    ("Mass li", None, "Mass_L"), ("mentalis right", None, "Ment_R"), ("frontalis medialis left", None, "medFront_L"),
    ("levator labii L", None, "LLSup_L"), ("orbicularis oculi R", None, "OrbOc_R"),
])
def test_sites_are_guessed_from_the_words_in_a_label(label, side, site):
    assert guess_site(label, side)[0] == site


@pytest.mark.parametrize("label", ["CH2", "SCL", "Marker", "Time", "EDA", "Trigger", "Fz"])
def test_labels_without_a_muscle_map_to_nothing(label):
    assert guess_site(label, "L") == (None, None)


@needs_real_data
def test_the_jena_named_table_maps_all_22_sites_automatically(tmp_path):
    table = shutil.copy(REAL / "cvjena_electromyogram_fridlund.csv", tmp_path / "fridlund.csv")
    names = read_recording(table, csv_kind="envelope", rate_hz=1.0).channel_names
    cmap = resolve_channels(names, "auto")
    assert cmap.montage == "fridlund22" and set(cmap.canonical) == set(FRIDLUND22) and not cmap.unknown


def test_map_names_labels_or_columns_and_wins_over_guesses():
    names = ["SC", "raw zyg", "raw cor", "ch4", "ch5"]
    cmap = resolve_channels(names, "fridlund22", mapping={"4": "Zyg_L", "5": "Corr li", "raw zyg": "none",
                                                          "raw cor": "none"}, side="left")
    assert cmap.direct == {"Zyg_L": "ch4", "Corr_L": "ch5"} and cmap.how["Corr_L"] == "map"
    assert cmap.unknown == ("SC",) and set(cmap.left_out) == {"raw zyg", "raw cor"}
    assert "left out" in cmap.describe() and "ch4 → Zyg_L (map)" in cmap.describe()
    by_column = resolve_channels(["a", "b"], mapping={"3": "Zyg_L"}, column_numbers=[2, 3])
    assert by_column.direct == {"Zyg_L": "b"}
    pair = resolve_channels(["Zyg li 1", "Zyg li 2"], mapping={"Zyg li 1": "Zyg_L", "Zyg li 2": "Zyg_L"})
    assert pair.bipolar == {"Zyg_L": ("Zyg li 1", "Zyg li 2")}
    assert guess_montage(["EMG_zyg", "EMG_cor", "Time"]) == "fridlund22"


@pytest.mark.parametrize("mapping, side, message", [
    ({"EMG_zyg": "Zyg_X"}, "left", "unknown site 'Zyg_X'"),
    ({"EMG_foo": "Zyg_L"}, "left", "lacks"),
    ({"EMG_zyg": "Zyg_L", "EMG_cor": "Zyg_L"}, "left", "are both Zyg_L"),
    ({"9": "Zyg_L"}, "left", "column 9"),
    (None, None, "no side"),
])
def test_bad_maps_say_what_is_wrong(mapping, side, message):
    with pytest.raises(InputError, match=message):
        resolve_channels(["EMG_zyg", "EMG_cor"], mapping=mapping, side=side, source="lab.csv")


def test_map_items_and_map_files(tmp_path):
    assert parse_map_items(["EMG_zyg=Zyg_L", "3=Corr_L"]) == {"EMG_zyg": "Zyg_L", "3": "Corr_L"}
    with pytest.raises(InputError, match="CHANNEL=SITE"):
        parse_map_items(["Zyg_L"])
    path = tmp_path / "map.tsv"
    path.write_text("# our lab's montage\nchannel\tsite\nEMG_zyg\tZyg_L\n2\tCorr_L\n")
    assert read_map_file(path) == {"EMG_zyg": "Zyg_L", "2": "Corr_L"}
    path.write_text("EMG_zyg\n")
    with pytest.raises(InputError, match="line 1"):
        read_map_file(path)


# ---- partial montages, mirror, gaps ------------------------------------------------------------


def test_a_partial_montage_is_processed_and_can_be_mirrored():
    data = lab_signal(12.0)
    rec = RecordingSource.from_array(data, RATE_HZ, ["EMG_zyg", "EMG_cor"])
    track = process_recording(rec, 30.0, ProcessingSettings(side="left"))
    assert track.names == ("Corr_L", "Zyg_L") and track.space == "fridlund22"
    assert "EMG_zyg → Zyg_L (guess)" in track.meta["channel_map"]
    mirrored = process_recording(rec, 30.0, ProcessingSettings(side="left", mirror=True))
    assert mirrored.names == ("Corr_R", "Corr_L", "Zyg_R", "Zyg_L") and mirrored.meta["mirrored"] == ["Corr_R", "Zyg_R"]
    np.testing.assert_array_equal(mirrored.column("Zyg_R"), mirrored.column("Zyg_L"))
    assert "mirrored to the other side" in mirrored.meta["channel_map"]


def test_missing_samples_are_interpolated_or_refused_with_their_times():
    data = lab_signal(10.0)
    holed = data.copy()
    holed[0, 4000:4300] = np.nan  # 0.15 s
    filled = process_recording(RecordingSource.from_array(holed, RATE_HZ, ["Zyg_L", "Corr_L"]), 30.0,
                               ProcessingSettings(nan_policy="interpolate"))
    assert np.isfinite(filled.values).all()
    holed[1, 10000:12000] = np.nan  # 1 s: too long to bridge
    with pytest.raises(InputError, match=r"Corr_L 5\.000–6\.000 s"):
        process_recording(RecordingSource.from_array(holed, RATE_HZ, ["Zyg_L", "Corr_L"], source="lab.csv"), 30.0,
                          ProcessingSettings(nan_policy="interpolate"))


def test_low_rates_cap_the_band_with_a_warning_and_raw_below_200_hz_is_refused():
    rng = np.random.default_rng(1)
    cyton = RecordingSource.from_array(rng.standard_normal((2, 250 * 20)) * 5, 250.0, ["Zyg_L", "Corr_L"], source="cyton.txt")
    track = process_recording(cyton, 30.0)
    assert track.meta["processing"]["band_applied_hz"] == [10.0, 112.5]
    assert any("10–112.5 Hz" in w for w in track.meta["warnings"])
    slow = RecordingSource.from_array(rng.standard_normal((2, 100 * 20)), 100.0, ["Zyg_L", "Corr_L"], source="slow.csv")
    with pytest.raises(InputError, match="100 Hz is too low for raw sEMG.*--csv-kind envelope"):
        process_recording(slow, 30.0)


# ---- the command line on lab files -------------------------------------------------------------


def _process(*argv) -> int:
    return cli_main(["process", "--fps", "30", *map(str, argv)])


def test_a_two_channel_lab_csv_in_mv_gives_the_envelopes_of_the_same_signal_in_uv(tmp_path, capsys):
    signal_uv = lab_signal(20.0)
    lab = tmp_path / "lab.csv"
    write_lab_csv(lab, signal_uv)
    same = tmp_path / "canonical.csv"
    write_lab_csv(same, signal_uv, names=("Zyg_L", "Corr_L"), scale=1.0)
    assert _process("--emg", lab, "--out", tmp_path / "lab_env.csv", "--map", "EMG_zyg=Zyg_L",
                    "--map", "EMG_cor=Corr_L", "--units", "mV", "--nan", "interpolate") == 0
    assert _process("--emg", same, "--out", tmp_path / "ref_env.csv", "--units", "uV", "--nan", "interpolate") == 0
    lab_env, ref_env = read_track(tmp_path / "lab_env.csv"), read_track(tmp_path / "ref_env.csv")
    assert lab_env.names == ref_env.names == ("Corr_L", "Zyg_L")
    np.testing.assert_allclose(lab_env.values, ref_env.values, rtol=1e-6)
    capsys.readouterr()
    assert _process("--emg", lab, "--out", tmp_path / "guessed.csv", "--side", "left", "--units", "mV",
                    "--nan", "interpolate") == 0
    report = capsys.readouterr().out
    assert "EMG_zyg → Zyg_L (guess)" in report and "EMG_cor → Corr_L (guess)" in report
    np.testing.assert_allclose(read_track(tmp_path / "guessed.csv").values, lab_env.values, rtol=1e-12)
    assert _process("--emg", lab, "--out", tmp_path / "sideless.csv", "--units", "mV", "--nan", "interpolate") == 3
    assert "no side" in capsys.readouterr().err and not (tmp_path / "sideless.csv").exists()


@needs_real_data
def test_the_real_headerless_100_hz_export_loads_as_envelopes_with_a_map(tmp_path, capsys):
    export = shutil.copy(REAL / "nilsonne_FMOV_09_preprocessed.txt", tmp_path / "FMOV_09.txt")
    out = tmp_path / "env.csv"
    assert _process("--emg", export, "--out", out, "--map", "4=Zyg_L", "--map", "5=Corr_L",
                    "--csv-kind", "envelope", "--rate", "100") == 0
    report = capsys.readouterr().out
    track = read_track(out)
    assert track.names == ("Corr_L", "Zyg_L") and track.n_frames == pytest.approx(265 * 30, abs=30)
    assert "left out (no site)" in report
    for column in (1, 2, 3, 6, 7, 8):  # skin conductance, the raw signals, three stimulus markers
        assert f"ch{column}" in report.split("left out (no site)")[1]
    # read as raw sEMG it is refused: 100 Hz holds no EMG band
    assert _process("--emg", export, "--out", tmp_path / "raw.csv", "--map", "4=Zyg_L", "--csv-kind", "raw",
                    "--rate", "100", "--units", "mV") == 3
    assert "--csv-kind envelope" in capsys.readouterr().err and not (tmp_path / "raw.csv").exists()


@pytest.mark.parametrize("extra, message", [
    (["--map", "EMG_zyg=Zyg_X"], "unknown site"),
    (["--map", "EMG_foo=Zyg_L"], "lacks"),
    (["--map", "EMG_zyg=Zyg_L", "--map", "EMG_cor=Zyg_L"], "are both Zyg_L"),
    (["--map", "EMG_zyg=none", "--map", "EMG_cor=none"], "no channel maps"),
    (["--map", "EMG_zyg"], "CHANNEL=SITE"),
])
def test_bad_maps_exit_3_and_write_nothing(tmp_path, capsys, extra, message):
    lab = tmp_path / "lab.csv"
    write_lab_csv(lab, lab_signal(8.0), null_rows=slice(0, 0))
    out = tmp_path / "env.csv"
    assert _process("--emg", lab, "--out", out, "--units", "mV", *extra) == 3
    assert message in capsys.readouterr().err and not out.exists()


def test_an_unknown_unit_in_the_file_exits_3(tmp_path, capsys):
    path = tmp_path / "furlongs.csv"
    path.write_text("# units=furlongs\ntime,Zyg_L\n" + "".join(f"{i / 1000},{np.sin(i)}\n" for i in range(3000)))
    assert _process("--emg", path, "--out", tmp_path / "env.csv") == 3
    assert "unit" in capsys.readouterr().err and not (tmp_path / "env.csv").exists()


@pytest.mark.filterwarnings("ignore:Encountered unsupported voltage units")
def test_one_signal_in_four_unit_conventions_gives_the_same_envelopes(tmp_path):
    signal_uv = lab_signal(10.0)[:, :20000]
    names = ["Zyg_L", "Corr_L"]

    def edf(path, scale, dimension):
        signals = [edfio.EdfSignal(row * scale, RATE_HZ, label=f"EMG {n}", physical_dimension=dimension,
                                   physical_range=(-400 * scale, 400 * scale)) for row, n in zip(signal_uv, names)]
        edfio.Edf(signals).write(path)
        return path

    files = {"empty": edf(tmp_path / "empty.edf", 1.0, ""), "mV": edf(tmp_path / "mv.edf", 1e-3, "mV"),
             "uV": edf(tmp_path / "uv.edf", 1.0, "uV")}
    pybv.write_brainvision(data=signal_uv * 1e-6, sfreq=RATE_HZ, ch_names=names, fname_base="volts",
                           folder_out=tmp_path, unit="V", overwrite=True)
    files["V"] = tmp_path / "volts.vhdr"
    tracks = {}
    for kind, path in files.items():
        source = open_recording(path, units="uV" if kind == "empty" else None)
        tracks[kind] = process_recording(source, 30.0).values
    with pytest.raises(InputError, match="units"):
        open_recording(files["empty"])  # an empty physical dimension is unknown, never volts
    for kind in ("mV", "uV", "V"):
        np.testing.assert_allclose(tracks[kind], tracks["empty"], rtol=2e-3)  # 16-bit EDF quantisation
