"""Lab hardware formats: BIOPAC AcqKnowledge, PLUX OpenSignals (text, HDF5), OpenBCI GUI.

Every file here is written by the test in its format's real layout: the ``.acq`` from bioread's
own header definitions (``bioread/headers.py``, revision 132 = AcqKnowledge 5), the OpenSignals
files from PLUX's "OpenSignals Sensor File Specifications (.TXT Format)" and the HDF5 layout PLUX's
biosignalsnotebooks reads, the OpenBCI file from the GUI's writer (``DataWriterODF.pde``). Values
read back are compared with the values written, after each format's documented conversion.
"""
from __future__ import annotations

import io
import json
import re
import struct
import sys

import numpy as np
import pytest

from eifer_blender.core.errors import InputError
from eifer_blender.core.recording import file_format, open_recording, read_recording

# ---- BIOPAC AcqKnowledge (.acq) ----------------------------------------------------------------
# Field layouts of bioread's headers.py for a post-4 file (revision >= V_400B = 61); fields added
# in later revisions are listed with the revision that adds them.
ACQ_REVISION = 132  # V_501, AcqKnowledge 5
GRAPH_HEADER = [
    ("nItemHeaderLen", "h"), ("lVersion", "l"), ("lExtItemHeaderLen", "l"), ("nChannels", "h"),
    ("nHorizAxisType", "h"), ("nCurChannel", "h"), ("dSampleTime", "d"), ("dTimeOffset", "d"),
    ("dTimeScale", "d"), ("dTimeCursor1", "d"), ("dTimeCursor2", "d"), ("rcWindow", "4h"),
    ("nMeasurement", "6h"), ("fHilite", "h"), ("dFirstTimeOffset", "d"), ("nRescale", "h"),
    ("szHorizUnits1", "40s"), ("szHorizUnits2", "10s"), ("nInMemory", "h"), ("fGrid", "h"),
    ("fMarkers", "h"), ("nPlotDraft", "h"), ("nDispMode", "h"), ("rRReserved", "h"),
    ("Unknown", "822B"), ("bCompressed", "l"), ("Unknown2", "1422B"),
    ("hExpectedPaddings", "h"),  # V_430
]
CHANNEL_HEADER = [
    ("lChanHeaderLen", "l"), ("nNum", "h"), ("szCommentText", "40s"), ("notColor", "4B"),
    ("nDispChan", "h"), ("dVoltOffset", "d"), ("dVoltScale", "d"), ("szUnitsText", "20s"),
    ("lBufLength", "l"), ("dAmplScale", "d"), ("dAmplOffset", "d"), ("nChanOrder", "h"),
    ("nDispSize", "h"), ("unknown", "40s"), ("nVarSampleDivider", "h"),
]
MARKER_HEADER = [
    ("lLength", "l"), ("lMarkersExtra", "l"), ("lMarkers", "l"), ("Unknown", "6B"),
    ("szDefl", "5s"), ("Unknown2", "h"), ("Unknown3", "8B"),  # V_42x
    ("Unknown4", "8B"),  # V_440
]
MARKER_ITEM = [
    ("lSample", "l"), ("Unknown", "4B"), ("nChannel", "h"), ("sMarkerStyle", "4s"),
    ("llDateCreated", "Q"),  # V_440
    ("Unknown3", "8B"),  # V_42x
    ("nTextLength", "h"),
]
ACQ_DTYPE_CODES = {"<i2": (2, 2), "<f8": (8, 1)}  # ChannelDTypeHeader: (nSize, nType)


def _size(fields) -> int:
    return struct.calcsize("<" + "".join(code for _, code in fields))


def _pack(fields, **values) -> bytes:
    """One header, little-endian; fields not given are zero."""
    out = b""
    for name, code in fields:
        if name in values:
            value = values[name]
            out += struct.pack("<" + code, *(value if isinstance(value, tuple) else (value,)))
        else:
            out += bytes(struct.calcsize("<" + code))
    return out


def write_acq(path, rate_hz, channels, markers=()) -> None:
    """An uncompressed AcqKnowledge file.

    ``channels``: dicts with ``name``, ``units``, ``raw`` (int16 counts or float64 values),
    ``scale``/``offset`` (value = raw * scale + offset, integer channels only) and ``divider``
    (the channel runs at ``rate_hz / divider``). ``markers``: (base-rate sample, text, style).
    """
    dividers = [c["divider"] for c in channels]
    base_len = int(np.lcm.reduce(dividers))
    # the interleaved data: per base sample, every channel whose divider divides it, in order
    # (bioread/reader.py, sample_pattern)
    fields, sources = [], []
    for slot in range(base_len):
        for ci, c in enumerate(channels):
            if slot % c["divider"] == 0:
                fields.append((f"c{ci}s{slot}", c["raw"].dtype.str))
                sources.append((ci, slot // c["divider"]))
    blocks = len(channels[0]["raw"]) * dividers[0] // base_len
    rows = np.zeros(blocks, dtype=fields)
    for (ci, k), (field, _) in zip(sources, fields):
        rows[field] = channels[ci]["raw"].reshape(blocks, base_len // dividers[ci])[:, k]

    out = _pack(GRAPH_HEADER, nItemHeaderLen=_size(GRAPH_HEADER), lVersion=ACQ_REVISION,
                lExtItemHeaderLen=_size(GRAPH_HEADER), nChannels=len(channels),
                dSampleTime=1000.0 / rate_hz, bCompressed=0, hExpectedPaddings=0)
    for i, c in enumerate(channels):
        out += _pack(CHANNEL_HEADER, lChanHeaderLen=_size(CHANNEL_HEADER), nNum=i + 1,
                     szCommentText=c["name"].encode(), szUnitsText=c["units"].encode(),
                     lBufLength=len(c["raw"]), dAmplScale=c.get("scale", 1.0),
                     dAmplOffset=c.get("offset", 0.0), nChanOrder=i, nVarSampleDivider=c["divider"])
    out += struct.pack("<l", 8) + bytes(4)  # foreign data header: its length, then its content
    for c in channels:
        out += struct.pack("<hh", *ACQ_DTYPE_CODES[c["raw"].dtype.str])
    out += rows.tobytes()
    items = b""
    for sample, text, style in markers:
        encoded = text.encode() + b"\0"  # nTextLength counts the trailing NUL
        items += _pack(MARKER_ITEM, lSample=sample, nChannel=-1, sMarkerStyle=style,
                       llDateCreated=1_700_000_000_000, nTextLength=len(encoded)) + encoded
    out += _pack(MARKER_HEADER, lLength=_size(MARKER_HEADER) + len(items),
                 lMarkersExtra=len(markers) + 1, lMarkers=len(markers), szDefl=b"defl") + items
    out += struct.pack("<l", 4)  # journal length header: no journal
    path.write_bytes(out)


@pytest.fixture
def acq_channels():
    rng = np.random.default_rng(3)
    n = 4000
    return [
        {"name": "EMG Zygomaticus L", "units": "mV", "divider": 1,
         "raw": rng.integers(-3000, 3000, n).astype("<i2"), "scale": 0.000_61, "offset": 0.002},
        {"name": "EMG Corrugator L", "units": "Volts", "divider": 1,
         "raw": rng.normal(0.0, 30e-6, n).astype("<f8")},
        {"name": "EDA", "units": "microsiemens", "divider": 4,
         "raw": rng.integers(400, 700, n // 4).astype("<i2"), "scale": 0.01, "offset": 1.0},
    ]


def test_biopac_channels_rate_units_and_markers(acq_channels, tmp_path):
    path = tmp_path / "session.acq"
    write_acq(path, 2000.0, acq_channels, [(1000, "smile", b"flag"), (3000, "", b"stim")])
    assert file_format(path) == "BIOPAC"
    rec = read_recording(path)
    zyg, cor, eda = acq_channels
    assert rec.rate_hz == 2000.0 and rec.n_samples == 4000
    assert rec.channel_names == ["EMG Zygomaticus L", "EMG Corrugator L", "EDA"]
    assert rec.channel_types == ["emg", "emg", "misc"]
    np.testing.assert_allclose(rec.data_uv[0], (zyg["raw"] * 0.000_61 + 0.002) * 1e3, rtol=1e-12)
    np.testing.assert_allclose(rec.data_uv[1], cor["raw"] * 1e6, rtol=1e-12)
    # skin conductance keeps its µS, held over the four EMG samples of each of its samples
    np.testing.assert_allclose(rec.data_uv[2], np.repeat(eda["raw"] * 0.01 + 1.0, 4), rtol=1e-12)
    assert rec.meta["units_as_read"] == ["mV", "Volts", "microsiemens"]
    assert rec.meta["channels_not_in_volts"] == ["EDA"]
    assert [(a.onset_s, a.description) for a in rec.annotations] == [
        (0.5, "smile"), (1.5, "Stimulus Delivery")]  # an unlabelled marker is named by its style


def test_biopac_read_in_pieces_matches_the_whole(acq_channels, tmp_path):
    path = tmp_path / "session.acq"
    write_acq(path, 2000.0, acq_channels)
    src = open_recording(path)
    whole = src.read()
    pieces = np.concatenate([src.read(a, a + 333) for a in range(0, src.n_samples, 333)], axis=1)
    np.testing.assert_array_equal(pieces, whole)


def test_biopac_refuses_emg_channels_at_different_rates(acq_channels, tmp_path):
    rng = np.random.default_rng(4)
    acq_channels[1] = {"name": "EMG Corrugator L", "units": "mV", "divider": 2,
                       "raw": rng.integers(-100, 100, 2000).astype("<i2"), "scale": 0.001}
    path = tmp_path / "two_rates.acq"
    write_acq(path, 2000.0, acq_channels)
    with pytest.raises(InputError, match=r"different rates .*2000 Hz.*1000 Hz") as err:
        read_recording(path)
    assert path.name in str(err.value)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_biopac_damaged_file(damage, acq_channels, tmp_path):
    path = tmp_path / "damaged.acq"
    write_acq(path, 2000.0, acq_channels, [(1000, "smile", b"flag")])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\x13\x37" * 600)
    with pytest.raises(InputError, match=re.escape(str(path))):
        read_recording(path)


def test_biopac_without_bioread_says_what_to_install(acq_channels, tmp_path, monkeypatch):
    path = tmp_path / "session.acq"
    write_acq(path, 2000.0, acq_channels)
    monkeypatch.setitem(sys.modules, "bioread", None)  # as in a Blender without the package
    with pytest.raises(InputError, match=r"session\.acq.*'bioread'.*pip install"):
        read_recording(path)


# ---- PLUX OpenSignals -------------------------------------------------------------------------
MAC = "00:07:80:79:6F:DB"


def emg_uv(adc, bits, vcc_v, gain):
    """The EMG data sheet's transfer function, EMG = (ADC / 2^n - 1/2) * VCC / G_EMG, in µV."""
    return (adc / 2.0 ** bits - 0.5) * vcc_v / gain * 1e6


def opensignals_settings(device, labels, sensors, bits, rate_hz, columns):
    return {"sensor": sensors, "device name": MAC, "column": columns, "sync interval": 2,
            "time": "10:29:43.249", "comments": "", "device connection": "BTH" + MAC,
            "channels": list(range(1, len(labels) + 1)), "keywords": "", "convertedValues": 0,
            "mode": 0, "digital IO": [0, 1], "firmware version": 773, "device": device,
            "position": 0, "sampling rate": rate_hz, "label": labels, "resolution": bits,
            "date": "2018-7-5", "special": [{} for _ in labels]}


def device_columns(settings, adc) -> np.ndarray:
    """One device's columns: ``nSeq``, the digital ones (``DI`` or ``I1 I2 O1 O2``), the analog ones."""
    n = len(adc)
    leading = len(settings["column"]) - adc.shape[1]
    return np.column_stack([np.arange(n) % 16, np.zeros((n, leading - 1), dtype=int), adc])


def write_opensignals_txt(path, settings, adc, more_devices=()) -> None:
    """Header lines as PLUX's specification shows them; tab-separated rows with a trailing tab.

    ``more_devices``: (MAC, settings, adc) of further devices, whose columns follow in the rows.
    """
    devices = {MAC: settings, **{mac: s for mac, s, _ in more_devices}}
    table = np.column_stack([device_columns(settings, adc)]
                            + [device_columns(s, a) for _, s, a in more_devices])
    body = io.StringIO()
    np.savetxt(body, table, fmt="%d", delimiter="\t", newline="\t\n")
    path.write_text("# OpenSignals Text File Format\n# " + json.dumps(devices)
                    + "\n# EndOfHeader\n" + body.getvalue())


@pytest.fixture
def plux_adc():
    rng = np.random.default_rng(5)
    emg = rng.integers(30_000, 35_000, 1500)  # 16 bit, around mid-scale
    eda = rng.integers(20_000, 21_000, 1500)
    return np.column_stack([emg, eda])


def test_opensignals_text_biosignalsplux(plux_adc, tmp_path):
    path = tmp_path / "opensignals_000780796FDB_2018-07-05.txt"
    settings = opensignals_settings("biosignalsplux", ["CH1", "CH2"], ["EMG", "EDA"], [16, 16],
                                    1000, ["nSeq", "DI", "CH1", "CH2"])
    write_opensignals_txt(path, settings, plux_adc)
    assert file_format(path) == "OpenSignals"
    rec = read_recording(path)
    assert rec.rate_hz == 1000.0 and rec.n_samples == 1500
    assert rec.channel_names == ["CH1", "CH2"] and rec.channel_types == ["emg", "misc"]
    # biosignalsplux EMG: VCC = 3 V, G_EMG = 1000, range ±1.5 mV
    np.testing.assert_allclose(rec.data_uv[0], emg_uv(plux_adc[:, 0], 16, 3.0, 1000.0), rtol=1e-12)
    np.testing.assert_array_equal(rec.data_uv[1], plux_adc[:, 1])  # EDA stays in ADC units
    assert rec.meta["channels_not_in_volts"] == ["CH2"]


def test_opensignals_text_bitalino_uses_its_own_sensor_constants(tmp_path):
    rng = np.random.default_rng(6)
    adc = rng.integers(0, 1024, (400, 2))  # 10 bit
    path = tmp_path / "bitalino.txt"
    settings = opensignals_settings("bitalino_rev", ["A1", "A2"], ["EMG", "EMG"], [10, 10], 100,
                                    ["nSeq", "I1", "I2", "O1", "O2", "A1", "A2"])
    write_opensignals_txt(path, settings, adc)
    rec = read_recording(path)
    assert rec.channel_names == ["A1", "A2"] and rec.rate_hz == 100.0
    # BITalino (r)evolution EMG: VCC = 3.3 V, G_EMG = 1009, range ±1.64 mV
    np.testing.assert_allclose(rec.data_uv, emg_uv(adc.T, 10, 3.3, 1009.0), rtol=1e-12)


def test_opensignals_text_two_devices_follow_each_other(plux_adc, tmp_path):
    path = tmp_path / "two_hubs.txt"
    first = opensignals_settings("biosignalsplux", ["CH1"], ["EMG"], [16], 1000, ["nSeq", "DI", "CH1"])
    second = opensignals_settings("biosignalsplux", ["CH1", "CH2"], ["EDA", "EMG"], [16, 12], 1000,
                                  ["nSeq", "DI", "CH1", "CH2"])
    other = np.column_stack([plux_adc[:, 1], plux_adc[:, 0] // 16])  # EDA, 12-bit EMG
    write_opensignals_txt(path, first, plux_adc[:, :1], [("00:07:80:3B:46:61", second, other)])
    rec = read_recording(path)
    # the same label on two devices: each prefixed with its device
    assert rec.channel_names == [f"{MAC} CH1", "00:07:80:3B:46:61 CH1", "00:07:80:3B:46:61 CH2"]
    assert rec.channel_types == ["emg", "misc", "emg"]
    np.testing.assert_allclose(rec.data_uv[0], emg_uv(plux_adc[:, 0], 16, 3.0, 1000.0), rtol=1e-12)
    np.testing.assert_array_equal(rec.data_uv[1], other[:, 0])
    np.testing.assert_allclose(rec.data_uv[2], emg_uv(other[:, 1], 12, 3.0, 1000.0), rtol=1e-12)


def test_opensignals_text_truncated_header(plux_adc, tmp_path):
    path = tmp_path / "cut.txt"
    settings = opensignals_settings("biosignalsplux", ["CH1", "CH2"], ["EMG", "EDA"], [16, 16],
                                    1000, ["nSeq", "DI", "CH1", "CH2"])
    write_opensignals_txt(path, settings, plux_adc)
    path.write_text(path.read_text()[:300])  # cut inside the JSON settings line
    with pytest.raises(InputError, match=re.escape(str(path)) + r".*(JSON|ends early)"):
        read_recording(path)


def test_opensignals_text_garbage_row_names_its_line(plux_adc, tmp_path):
    path = tmp_path / "garbage.txt"
    settings = opensignals_settings("biosignalsplux", ["CH1", "CH2"], ["EMG", "EDA"], [16, 16],
                                    1000, ["nSeq", "DI", "CH1", "CH2"])
    write_opensignals_txt(path, settings, plux_adc)
    lines = path.read_text().splitlines()
    lines[3 + 41] = "9\t0\t3#2!1\t20500\t"  # the 42nd sample: line 45 of the file
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=re.escape(str(path)) + r": line 45: .*'3#2!1'"):
        read_recording(path)


def test_opensignals_text_last_row_cut_short_is_left_out_and_said(plux_adc, tmp_path):
    path = tmp_path / "stopped.txt"
    settings = opensignals_settings("biosignalsplux", ["CH1", "CH2"], ["EMG", "EDA"], [16, 16],
                                    1000, ["nSeq", "DI", "CH1", "CH2"])
    write_opensignals_txt(path, settings, plux_adc)
    path.write_text(path.read_text()[:-9])  # the writer stopped inside the last row
    rec = read_recording(path)
    assert rec.n_samples == 1499
    assert any("incomplete" in w for w in rec.meta["warnings"])


def write_opensignals_h5(path, adc, sensors, bits, rate_hz=1000, device="biosignalsplux") -> None:
    """A device group with the settings as attributes and ``raw/channel_N`` (samples x 1)."""
    import h5py

    with h5py.File(path, "w") as f:
        group = f.create_group(MAC)
        group.attrs["sampling rate"] = rate_hz
        group.attrs["resolution"] = np.array(bits)
        group.attrs["channels"] = np.arange(1, adc.shape[1] + 1)
        group.attrs["device"] = device
        group.attrs["nsamples"] = len(adc)
        raw = group.create_group("raw")
        raw.create_dataset("nSeq", data=(np.arange(len(adc)) % 16)[:, None].astype(np.uint16))
        for k, sensor in enumerate(sensors):
            dataset = raw.create_dataset(f"channel_{k + 1}", data=adc[:, k:k + 1].astype(np.uint16))
            dataset.attrs["sensor"] = np.bytes_(sensor.encode())


def test_opensignals_hdf5(plux_adc, tmp_path):
    path = tmp_path / "opensignals.h5"
    write_opensignals_h5(path, plux_adc, ["EMG", "EDA"], [16, 16])
    assert file_format(path) == "OpenSignals HDF5"
    src = open_recording(path)
    assert src.rate_hz == 1000.0 and src.n_samples == 1500
    assert src.channel_names == ["CH1", "CH2"] and src.channel_types == ["emg", "misc"]
    np.testing.assert_allclose(src.read(100, 700)[0], emg_uv(plux_adc[100:700, 0], 16, 3.0, 1000.0),
                               rtol=1e-12)
    np.testing.assert_array_equal(src.read()[1], plux_adc[:, 1])


def test_opensignals_hdf5_truncated(plux_adc, tmp_path):
    path = tmp_path / "cut.h5"
    write_opensignals_h5(path, plux_adc, ["EMG", "EDA"], [16, 16])
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(InputError, match=re.escape(str(path))):
        read_recording(path)


def test_hdf5_that_is_not_opensignals(tmp_path):
    import h5py

    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=np.zeros((3, 10)))
    with pytest.raises(InputError, match=r"other\.h5: no OpenSignals device"):
        read_recording(path)


# ---- OpenBCI GUI ------------------------------------------------------------------------------
# Cyton layout of OpenBCI GUI 5 (DataWriterODF.pde writes the board's channel names, then
# "Timestamp (Formatted)")
OPENBCI_COLUMNS = (["Sample Index"] + [f"EXG Channel {k}" for k in range(8)]
                   + ["Accel Channel 0", "Accel Channel 1", "Accel Channel 2", "Not Used",
                      "Digital Channel 0 (D11)", "Digital Channel 1 (D12)", "Digital Channel 2 (D13)",
                      "Digital Channel 3 (D17)", "Not Used", "Digital Channel 4 (D18)",
                      "Analog Channel 0", "Analog Channel 1", "Analog Channel 2", "Timestamp",
                      "Marker Channel", "Timestamp (Formatted)"])
OPENBCI_HEADER = ["%OpenBCI Raw EXG Data", "%Number of channels = 8", "%Sample Rate = 250 Hz",
                  "%Board = OpenBCI_GUI$BoardCytonSerial"]


@pytest.fixture
def openbci_table():
    rng = np.random.default_rng(8)
    n = 500
    table = np.zeros((n, len(OPENBCI_COLUMNS) - 1))
    table[:, 0] = np.arange(n) % 256
    table[:, 1:9] = rng.normal(0.0, 40.0, (n, 8))                 # EXG, µV
    table[:, 9:12] = rng.normal(0.0, 0.05, (n, 3))                # accelerometer, g
    table[:, 13:17] = rng.integers(0, 2, (n, 4))                  # digital pins
    table[:, 18] = rng.integers(0, 2, n)
    table[:, 19:22] = rng.integers(0, 1024, (n, 3))               # analog pins
    table[:, 22] = 1_557_936_889.064 + np.arange(n) / 250.0       # Unix time, s
    table[[100, 300], 23] = [1, 2]                                # marker channel
    return table


def write_openbci(path, table, header=OPENBCI_HEADER) -> None:
    """Java's Double.toString style: ``0.0``, ``-12.345678``, ``1.557936889064E9``."""
    body = io.StringIO()
    numbers = table[:, :22]
    np.savetxt(body, numbers, fmt=["%.1f"] + ["%.6f"] * 21, delimiter=", ")
    stamps = np.char.replace(np.char.mod("%.12E", table[:, 22]), "E+0", "E")
    rows = np.char.add(np.array(body.getvalue().splitlines()), ", ")
    rows = np.char.add(np.char.add(np.char.add(rows, stamps), ", "), np.char.mod("%.1f", table[:, 23]))
    rows = np.char.add(rows, ", 2019-05-15 16:14:49.064")
    path.write_text("\n".join([*header, ", ".join(OPENBCI_COLUMNS), *rows]) + "\n")


def test_openbci_gui_recording(openbci_table, tmp_path):
    path = tmp_path / "OpenBCI-RAW-2019-05-15_16-14-49.txt"
    write_openbci(path, openbci_table)
    assert file_format(path) == "OpenBCI"
    rec = read_recording(path)
    assert rec.rate_hz == 250.0 and rec.n_samples == 500
    exg = [f"EXG Channel {k}" for k in range(8)]
    others = ["Accel Channel 0", "Accel Channel 1", "Accel Channel 2", "Digital Channel 0 (D11)",
              "Digital Channel 1 (D12)", "Digital Channel 2 (D13)", "Digital Channel 3 (D17)",
              "Digital Channel 4 (D18)", "Analog Channel 0", "Analog Channel 1", "Analog Channel 2"]
    assert rec.channel_names == exg + others  # no index, timestamps, "Not Used" or marker column
    assert rec.channel_types == ["emg"] * 8 + ["misc"] * 11
    np.testing.assert_allclose(rec.data_uv[:8], openbci_table[:, 1:9].T, atol=5e-7)  # already µV
    kept = [9, 10, 11, 13, 14, 15, 16, 18, 19, 20, 21]
    np.testing.assert_allclose(rec.data_uv[8:], openbci_table[:, kept].T, atol=5e-7)
    assert [(a.onset_s, a.description) for a in rec.annotations] == [(0.4, "1"), (1.2, "2")]
    assert rec.meta["board"] == "OpenBCI_GUI$BoardCytonSerial"


def test_openbci_csv_extension_is_sniffed_too(openbci_table, tmp_path):
    path = tmp_path / "OpenBCI-RAW-export.csv"
    write_openbci(path, openbci_table)
    assert file_format(path) == "OpenBCI"
    plain = tmp_path / "plain.csv"
    plain.write_text("time_s,Zyg_L\n0.0,1.5\n0.001,2.5\n")
    assert file_format(plain) == "CSV"


def test_openbci_older_gui_without_column_header(tmp_path):
    rng = np.random.default_rng(9)
    exg = rng.normal(0.0, 25.0, (300, 4))
    path = tmp_path / "OpenBCI-RAW-2017-11-09_14-58-55.txt"
    rows = [f"{k % 256}, " + ", ".join(f"{v:.2f}" for v in exg[k]) + ", 0.000, 0.000, 0.000, "
            f"14:58:55.{k % 1000:03d}, {1510239535000 + 5 * k}" for k in range(len(exg))]
    header = ["%OpenBCI Raw EEG Data", "%Number of channels = 4", "%Sample Rate = 200.0 Hz",
              "%First Column = SampleIndex", "%Last Column = Timestamp",
              "%Other = SamplingRate, NumChannels, Accel"]
    path.write_text("\n".join(header + rows) + "\n")
    rec = read_recording(path)
    assert rec.rate_hz == 200.0
    assert rec.channel_names == [f"EXG Channel {k}" for k in range(4)]
    np.testing.assert_allclose(rec.data_uv, exg.T, atol=5e-3)


def test_openbci_garbage_row_names_its_line(openbci_table, tmp_path):
    path = tmp_path / "OpenBCI-RAW-garbage.txt"
    write_openbci(path, openbci_table)
    lines = path.read_text().splitlines()
    fields = lines[5 + 200].split(", ")
    fields[3] = "ERR"
    lines[5 + 200] = ", ".join(fields)  # the 201st sample: line 206 (4 comments, 1 column header)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=re.escape(str(path)) + r": line 206: .*'ERR'"):
        read_recording(path)


@pytest.mark.parametrize("cut", ["in the header", "before the samples"])
def test_openbci_truncated(cut, openbci_table, tmp_path):
    path = tmp_path / "OpenBCI-RAW-cut.txt"
    write_openbci(path, openbci_table)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:1] if cut == "in the header" else lines[:5]) + "\n")
    with pytest.raises(InputError, match=re.escape(str(path)) + r".*(Sample Rate|no samples)"):
        read_recording(path)
