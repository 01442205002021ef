"""Reading recordings as labs write them: CSV quirks, units, cut-short EDF/BDF, implausible levels.

Files are written here the way lab software writes them (FACTS §10: ``Time,EMG_zyg,EMG_cor`` at
2000 Hz in mV with a UTF-8 byte-order mark and runs of NULL cells, headerless tab exports with a
trailing tab, EDF with an empty physical dimension), plus the real third-party files of
``shared/data/real`` copied into the test's folder. MNE and edfio run for real, nothing is mocked.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import edfio
import numpy as np
import pybv
import pytest

from eifer_blender.core.errors import InputError
from eifer_blender.core.recording import csvparse, open_recording, read_recording
from tests.helpers import LAB_NULL_ROWS, LAB_RATE_HZ, REAL_DATA, lab_signal, needs_real_data, write_lab_csv

REAL = REAL_DATA
needs_real = needs_real_data
RATE_HZ = LAB_RATE_HZ
NULL_ROWS = LAB_NULL_ROWS


# ---- CSV as labs write it -------------------------------------------------------------------------


def test_lab_csv_with_bom_and_null_run_reads_in_microvolts_with_nan_at_the_null_cells(tmp_path):
    signal_uv = lab_signal(10.0)
    path = tmp_path / "lab.csv"
    written = write_lab_csv(path, signal_uv)
    source = open_recording(path, units="mV")
    assert source.channel_names == ["EMG_zyg", "EMG_cor"] and source.rate_hz == pytest.approx(RATE_HZ)
    assert source.meta["column_numbers"] == [2, 3]  # the time column is column 1
    assert source.meta["units_as_read"] == ["mV", "mV"] and source.meta["units"] == "uV"
    data = source.read()
    np.testing.assert_allclose(data, written, rtol=1e-12, equal_nan=True)
    assert np.isnan(data[0, NULL_ROWS]).all() and np.isnan(data).sum() == 300
    np.testing.assert_allclose(data[:, :16000], signal_uv[:, :16000], atol=1e-5)  # "%.9g" of mV
    # the whole-file reader keeps the gaps only when asked: the NaN policy decides later
    whole = read_recording(path, units="mV", allow_missing=True)
    np.testing.assert_array_equal(whole.data_uv, data)
    with pytest.raises(InputError, match=r"EMG_zyg.*8\.150 s"):
        read_recording(path, units="mV")


def test_rows_holding_text_are_the_only_ones_parsed_in_python(tmp_path, monkeypatch):
    path = tmp_path / "lab.csv"
    write_lab_csv(path, lab_signal(10.0))
    calls = []
    original = csvparse._clean_row
    monkeypatch.setattr(csvparse, "_clean_row", lambda *a, **k: calls.append(a[2]) or original(*a, **k))
    open_recording(path, units="mV")
    assert len(calls) == 300 and calls[0] == NULL_ROWS.start + 2  # the NULL rows, by line number


def test_a_raw_csv_without_units_is_refused_with_how_to_give_them(tmp_path):
    path = tmp_path / "lab.csv"
    write_lab_csv(path, lab_signal(2.0), null_rows=slice(0, 0))
    with pytest.raises(InputError) as err:
        open_recording(path)
    text = str(err.value)
    assert "lab.csv" in text and "EMG_zyg, EMG_cor" in text
    assert "units='mV'" in text and "--units mV" in text and "Units field" in text


@pytest.mark.parametrize("prefix, shift", [("", 0), ("# exported by the lab\n\n", 2)])
def test_a_bad_cell_names_its_line_and_column_as_an_editor_counts(tmp_path, prefix, shift):
    signal_uv = lab_signal(10.0)
    path = tmp_path / "rec.csv"
    write_lab_csv(path, signal_uv, prefix=prefix)
    lines = path.read_text(encoding="utf-8").split("\n")
    line = 16600 + shift  # 1-based, header (and comment and blank lines) counted
    cells = lines[line - 1].split(",")
    cells[2] = "abc"
    lines[line - 1] = ",".join(cells)
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(InputError, match=rf"rec\.csv: line {line}, column 3: 'abc' is not a number"):
        open_recording(path, units="mV")
    lines[line - 1] = ",".join(cells[:2])  # a row one cell short
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(InputError, match=rf"line {line}, column 3: the row has 2 columns, the header names 3"):
        open_recording(path, units="mV")


def test_headerless_tab_export_with_a_trailing_tab(tmp_path):
    rng = np.random.default_rng(3)
    values = rng.normal(0, 0.01, (500, 4)).round(6)
    path = tmp_path / "export.txt"
    path.write_bytes("".join("\t".join(f"{v:g}" for v in row) + "\t\r\n" for row in values).encode())
    source = open_recording(path, rate_hz=500, units="mV")
    assert source.channel_names == ["ch1", "ch2", "ch3", "ch4"] and source.n_samples == 500
    assert source.meta["column_numbers"] == [1, 2, 3, 4]
    np.testing.assert_allclose(source.read(), values.T * 1e3, rtol=1e-12)


def test_units_in_the_header_and_in_a_comment_line(tmp_path):
    body = "".join(f"{i / 1000},{0.01 * np.sin(i)},{10 * np.cos(i)}\n" for i in range(2000))
    path = tmp_path / "units.csv"
    path.write_text("time_s,EMG (mV),Corr li [µV]\n" + body, encoding="utf-8")
    source = open_recording(path)
    assert source.channel_names == ["EMG", "Corr li"] and source.meta["units_as_read"] == ["mV", "uV"]
    data = source.read()
    np.testing.assert_allclose(data[0, :3], [0.0, 10 * np.sin(1), 10 * np.sin(2)], rtol=1e-9, atol=1e-12)
    # a given unit that disagrees with the file's is ignored, with a warning naming the channel
    source = open_recording(path, units="uV")
    assert source.meta["units_as_read"] == ["mV", "uV"]
    assert any("units='uV' ignored" in w and "EMG" in w for w in source.meta["warnings"])
    np.testing.assert_allclose(source.read(), data)
    # "Zyg_L_mV" is no clear statement of units: asked for
    path.write_text("time_s,Zyg_L_mV\n" + "".join(f"{i / 1000},{np.sin(i)}\n" for i in range(2000)))
    with pytest.raises(InputError, match="Zyg_L_mV"):
        open_recording(path)
    path.write_text("# units=mV\ntime_s,Zyg_L\n" + "".join(f"{i / 1000},{np.sin(i) / 100}\n" for i in range(2000)))
    assert open_recording(path).meta["units_as_read"] == ["mV"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-8-sig"])
def test_byte_order_marks_and_european_semicolons(tmp_path, encoding):
    rows = "".join(f"{i / 1000:.3f};{np.sin(i):.6f}".replace(".", ",") + "\n" for i in range(1000))
    path = tmp_path / "bom.csv"
    text = "Time (s);Zyg li [µV]\n" + rows
    path.write_bytes(("\ufeff" + text).encode(encoding) if encoding == "utf-16-be" else text.encode(encoding))
    source = open_recording(path, rate_hz=1000)
    assert source.channel_names == ["Zyg li"] and source.meta["units_as_read"] == ["uV"]
    np.testing.assert_allclose(source.read()[0, :3], np.round(np.sin([0, 1, 2]), 6))


# ---- the real third-party files ---------------------------------------------------------------


@needs_real
def test_the_real_headerless_100_hz_export_reads_as_envelopes(tmp_path):
    path = shutil.copy(REAL / "nilsonne_FMOV_09_preprocessed.txt", tmp_path / "FMOV_09.txt")
    rec = read_recording(path, csv_kind="envelope", rate_hz=100)
    assert rec.n_channels == 8 and rec.rate_hz == 100.0 and rec.n_samples == 26523
    assert rec.meta["column_numbers"] == [1, 2, 3, 4, 5, 6, 7, 8]  # the trailing tab opens no column
    assert rec.meta["signal"] == "envelope" and rec.meta["units"] == "unknown"
    assert any("units" in w for w in rec.meta["warnings"])
    np.testing.assert_allclose(rec.data_uv[:, 0], [4.9115, -0.00516251, -0.00759589, 5.16251e-06,
                                                   7.59589e-06, 0, 0, 0])


@needs_real
@pytest.mark.parametrize("mirror", [False, True])
def test_the_real_two_channel_recording_smiles_on_its_zygomaticus_bursts(tmp_path, mirror):
    """The shipped model on a real one-sided Zyg + Corr recording (activity far below the simulator's
    over rest): its largest zygomaticus burst smiles on that side, rest stays still, and only the
    shapes the two sites move are driven (both sides with --mirror)."""
    from eifer_blender.core.pipeline import DriveSettings, emg_to_expression

    path = shutil.copy(REAL / "nilsonne_FMOV_09_preprocessed.txt", tmp_path / "FMOV_09.txt")
    source = open_recording(path, csv_kind="envelope", rate_hz=100)
    settings = DriveSettings(fps=30.0, channel_map=(("4", "Zyg_L"), ("5", "Corr_L")), mirror=mirror)
    result = emg_to_expression(source, settings)
    left = {"mouthSmileLeft", "browDownLeft"}
    right = {"mouthSmileRight", "browDownRight"}
    assert set(result.driven) == (left | right if mirror else left)
    assert len(result.driven) + len(result.left_alone) == 37
    smile = result.expression.select(["mouthSmileLeft"]).values[:, 0]
    zygomaticus = result.envelopes.select(["Zyg_L"]).values[:, 0]
    burst = int(np.argmax(zygomaticus))
    assert smile[max(burst - 15, 0):burst + 15].max() > 0.3
    assert np.median(smile) < 0.1


@needs_real
@pytest.mark.parametrize("name, n_channels, first", [("fridlund", 22, "DAO li"), ("kuramoto", 19, "E1")])
def test_the_real_jena_tables_read_with_their_names_and_row_labels(tmp_path, name, n_channels, first):
    path = shutil.copy(REAL / f"cvjena_electromyogram_{name}.csv", tmp_path / f"{name}.csv")
    lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line]
    header = lines[0].split(",")  # the Kuramoto table starts with an empty line
    rec = read_recording(path)
    assert rec.channel_names == header[1:] and rec.n_channels == n_channels and rec.channel_names[0] == first
    assert rec.meta["row_labels"] == ["angry", "suprised", "sad", "fearful", "happy", "distugusted"]
    assert rec.meta["column_numbers"] == list(range(2, n_channels + 2))
    assert rec.meta["signal"] == "envelope" and rec.n_samples == 6
    assert (rec.data_uv == 0).any()  # the exact zeros are kept
    expected = np.array([[float(cell) for cell in line.split(",")[1:]] for line in lines[1:]]).T
    np.testing.assert_array_equal(rec.data_uv, expected)


# ---- units of EDF, BDF and BrainVision -----------------------------------------------------------


def _edf(path: Path, signal_uv: np.ndarray, dimension: str, per_uv: float, *, bdf: bool = False,
         rate_hz: float = 1000.0) -> float:
    """Write ``signal_uv`` in a unit of ``per_uv`` file units per µV; returns the quantisation step in µV."""
    kind = edfio.BdfSignal if bdf else edfio.EdfSignal
    limit_uv = 250.0
    signals = [kind(row * per_uv, rate_hz, label=f"EMG {name}", physical_dimension=dimension,
                    physical_range=(-limit_uv * per_uv, limit_uv * per_uv))
               for row, name in zip(signal_uv, ("Zyg_L", "Corr_L"))]
    (edfio.Bdf if bdf else edfio.Edf)(signals).write(path)
    return 2 * limit_uv / (2 ** (24 if bdf else 16) - 1)


@pytest.mark.filterwarnings("ignore:Encountered unsupported voltage units")
def test_one_signal_in_four_unit_conventions_reads_as_the_same_microvolts(tmp_path):
    signal_uv = np.clip(lab_signal(4.0)[:, :4000], -240, 240)
    step = _edf(tmp_path / "empty.edf", signal_uv, "", 1.0)
    _edf(tmp_path / "mv.edf", signal_uv, "mV", 1e-3)
    _edf(tmp_path / "uv.edf", signal_uv, "uV", 1.0)
    pybv.write_brainvision(data=signal_uv * 1e-6, sfreq=1000.0, ch_names=["Zyg_L", "Corr_L"], fname_base="v",
                           folder_out=tmp_path, unit="V", fmt="binary_float32")
    cases = {"empty.edf": ({"units": "uV"}, ["uV", "uV"], step), "mv.edf": ({}, ["mV", "mV"], step),
             "uv.edf": ({}, ["uV", "uV"], step), "v.vhdr": ({}, ["V", "V"], 1e-4)}
    for name, (kwargs, as_read, tolerance) in cases.items():
        rec = read_recording(tmp_path / name, **kwargs)
        assert rec.meta["units_as_read"] == as_read and rec.meta["units"] == "uV", name
        assert rec.channel_names == ["Zyg_L", "Corr_L"], name
        np.testing.assert_allclose(rec.data_uv, signal_uv, atol=tolerance, err_msg=name)
        assert not any("facial sEMG" in w for w in rec.meta.get("warnings", ())), name


def test_an_edf_with_an_empty_dimension_is_unknown_never_volts(tmp_path):
    signal_uv = np.clip(lab_signal(2.0)[:, :2000], -240, 240)
    _edf(tmp_path / "empty.edf", signal_uv, "", 1.0)
    with pytest.raises(InputError) as err:
        read_recording(tmp_path / "empty.edf")
    assert "empty.edf" in str(err.value) and "Zyg_L, Corr_L" in str(err.value) and "units='mV'" in str(err.value)
    # the same numbers declared in mV come out 1000 times larger
    rec = read_recording(tmp_path / "empty.edf", units="mV")
    assert rec.meta["units_given"] == ["Zyg_L", "Corr_L"]
    np.testing.assert_allclose(rec.data_uv, signal_uv * 1e3, atol=1e3 * 500 / 65535)
    # units given for a file that states its own are ignored, with a warning
    _edf(tmp_path / "uv.edf", signal_uv, "uV", 1.0)
    rec = read_recording(tmp_path / "uv.edf", units="mV")
    np.testing.assert_allclose(rec.data_uv, signal_uv, atol=500 / 65535)
    assert any("units='mV' ignored" in w for w in rec.meta["warnings"])


# ---- files cut short -----------------------------------------------------------------------------


@pytest.mark.parametrize("bdf", [False, True], ids=["EDF", "BDF"])
def test_a_cut_short_edf_or_bdf_loads_what_is_there_and_says_how_much_is_missing(tmp_path, bdf):
    signal_uv = np.clip(lab_signal(6.0)[:, ::2][:, :6000], -240, 240)  # 6 s at 1000 Hz, 1 s records
    good = tmp_path / ("good.bdf" if bdf else "good.edf")
    step = _edf(good, signal_uv, "uV", 1.0, bdf=bdf)
    raw = good.read_bytes()
    header_bytes = int(raw[184:192])  # EDF spec: bytes 184-192 hold the header's size
    record_bytes = (len(raw) - header_bytes) // 6
    cut = tmp_path / ("cut.bdf" if bdf else "cut.edf")
    cut.write_bytes(raw[:header_bytes + 3 * record_bytes + record_bytes // 2])  # 3.5 records
    source = open_recording(cut)
    assert source.n_samples == 3000
    assert any("the header promises 6.0 s, the file holds 3.0 s: 3.0 s missing" in w
               for w in source.meta["warnings"])
    assert source.read(2990, 10_000).shape == (2, 10) and source.read(3000, 4000).shape == (2, 0)
    rec = read_recording(cut)
    np.testing.assert_allclose(rec.data_uv, signal_uv[:, :3000], atol=step)


# ---- implausible levels ------------------------------------------------------------------------


def test_millivolts_read_as_microvolts_are_flagged(tmp_path):
    path = tmp_path / "lab.csv"
    write_lab_csv(path, lab_signal(10.0), null_rows=slice(0, 0))
    wrong = open_recording(path, units="uV")
    notes = [w for w in wrong.meta["warnings"] if "facial sEMG" in w]
    assert len(notes) == 1 and "EMG_zyg" in notes[0] and "EMG_cor" in notes[0]
    assert "values look like mV read as µV: pass units='mV'" in notes[0]
    assert not open_recording(path, units="mV").meta.get("warnings")
    # the other way round: microvolts declared as millivolts
    signal_uv = np.clip(lab_signal(2.0)[:, :2000], -240, 240)
    _edf(tmp_path / "empty.edf", signal_uv, "", 1.0)
    notes = open_recording(tmp_path / "empty.edf", units="mV").meta["warnings"]
    assert any("values look like µV read as mV: pass units='uV'" in w for w in notes)
