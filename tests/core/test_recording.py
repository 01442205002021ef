"""Readers and writers: round trips through every writable format, and clear errors on bad files."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from eifer_blender.core.envelopes import process_recording
from eifer_blender.core.errors import InputError
from eifer_blender.core.recording import (
    Annotation,
    Recording,
    open_recording,
    read_recording,
    write_recording,
)
from eifer_blender.core.trackfiles import read_track, write_track
from eifer_blender.core.tracks import MuscleTrack

RATE_HZ = 2048.0
DURATION_S = 10.0
NAMES = ["Zyg_L", "Zyg_R", "Corr_L", "Corr_R"]
AMPLITUDES_UV = np.array([5.0, 20.0, 80.0, 150.0])  # RMS of each channel's carrier
FPS = 32.0


def shwedyk_carrier(n: int, rate_hz: float, rng: np.random.Generator, channels: int) -> np.ndarray:
    """Unit-RMS Gaussian noise with the Shwedyk sEMG spectrum (fl = 60 Hz, fh = 120 Hz; Shwedyk et al. 1977)."""
    f = np.fft.rfftfreq(n, 1 / rate_hz)
    psd = 120.0 ** 4 * f ** 2 / ((f ** 2 + 60.0 ** 2) * (f ** 2 + 120.0 ** 2) ** 2)
    x = np.fft.irfft(np.fft.rfft(rng.standard_normal((channels, n)), axis=-1) * np.sqrt(psd), n,
                     axis=-1)
    return x / x.std(axis=-1, keepdims=True)


def chain_gain(rate_hz: float) -> float:
    """RMS gain of EIFER's default filters on a Shwedyk carrier, from their frequency responses.

    Computed in the frequency domain with scipy's own designs, independently of the time-domain
    chain: notch applied forward and backward (|H|^4), FIR once (|H|^2).
    """
    taps = 2 * round(64 * rate_hz / 4096) + 1
    fir = signal.firwin(taps, [10, min(500, 0.45 * rate_hz)], pass_zero="bandpass",
                        window="hamming", fs=rate_hz)
    b, a = signal.iirnotch(50, 2, fs=rate_hz)
    f, h_notch = signal.freqz(b, a, worN=16384, fs=rate_hz)
    _, h_fir = signal.freqz(fir, worN=16384, fs=rate_hz)
    psd = 120.0 ** 4 * f ** 2 / ((f ** 2 + 60.0 ** 2) * (f ** 2 + 120.0 ** 2) ** 2)
    return float(np.sqrt(np.sum(psd * np.abs(h_notch) ** 4 * np.abs(h_fir) ** 2) / np.sum(psd)))


@pytest.fixture(scope="module")
def recording() -> Recording:
    rng = np.random.default_rng(7)
    n = int(RATE_HZ * DURATION_S)
    data = shwedyk_carrier(n, RATE_HZ, rng, len(NAMES)) * AMPLITUDES_UV[:, None]
    return Recording(data, RATE_HZ, NAMES, ["emg", "emg", "emg", "emg"],
                     [Annotation(1.5, 2.0, "smile"), Annotation(6.0, 1.0, "rest")], source="test")


# format -> (extension, absolute tolerance as a fraction of each channel's range, keeps emg type)
FORMATS = {
    "EDF": (".edf", 2.0 / 65535, True),  # 16-bit over the channel's range
    "BDF": (".bdf", 2.0 / 16777215, True),  # 24-bit
    "FIF": (".fif", 1e-6, True),  # float32
    "BrainVision": (".vhdr", 1e-6, False),  # float32, no channel types in the format
    "EEGLAB": (".set", 1e-6, True),  # float32 as MNE reads it
    "XDF": (".xdf", 1e-12, True),  # double64
    "CSV": (".csv", 1e-9, True),  # 10 significant digits
}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_round_trip_keeps_channels_rate_values_events_and_levels(fmt, recording, tmp_path):
    ext, tolerance, keeps_type = FORMATS[fmt]
    path = write_recording(recording, tmp_path / f"rec{ext}")
    back = read_recording(path)

    assert back.channel_names == NAMES
    assert back.rate_hz == pytest.approx(RATE_HZ, rel=1e-9)
    assert back.data_uv.shape == recording.data_uv.shape
    assert back.meta["format"] == fmt
    span = np.ptp(recording.data_uv, axis=1, keepdims=True)
    error = np.abs(back.data_uv - recording.data_uv) / span
    assert error.max() <= tolerance, f"{fmt}: worst error {error.max():.3g} of the range"
    if keeps_type:
        assert back.channel_types == ["emg"] * 4
    else:
        assert back.channel_types == ["eeg"] * 4  # documented: BrainVision has no types
    if fmt != "CSV":  # CSV holds samples only
        got = [(round(a.onset_s, 3), a.description) for a in back.annotations]
        assert got == [(1.5, "smile"), (6.0, "rest")]

    track = process_recording(back, FPS)
    level = np.sqrt(np.mean(track.values ** 2, axis=0))
    expected = dict(zip(NAMES, AMPLITUDES_UV * chain_gain(RATE_HZ)))
    for name in NAMES:
        assert level[track.names.index(name)] == pytest.approx(expected[name], rel=0.05), name


def test_open_reads_any_piece_like_the_whole(recording, tmp_path):
    path = write_recording(recording, tmp_path / "rec.bdf")
    source = open_recording(path)
    whole = read_recording(path).data_uv
    assert source.n_samples == whole.shape[1] and source.n_channels == 4
    np.testing.assert_array_equal(source.read(1000, 5000), whole[:, 1000:5000])
    np.testing.assert_array_equal(source.read(whole.shape[1] - 10, whole.shape[1] + 50), whole[:, -10:])


def test_edf_keeps_non_emg_types_and_file_units(tmp_path):
    rng = np.random.default_rng(0)
    rec = Recording(rng.normal(0, 30, (2, 2048)), 1024.0, ["Zyg_L", "Fz"], ["emg", "eeg"])
    back = read_recording(write_recording(rec, tmp_path / "mixed.edf"))
    assert back.channel_types == ["emg", "eeg"]
    np.testing.assert_allclose(back.data_uv, rec.data_uv, atol=np.ptp(rec.data_uv) / 30000)


def test_csv_with_time_column_and_no_header_comments(tmp_path):
    t = np.arange(3000) / 1000.0
    x = np.sin(2 * np.pi * 7 * t) * 40
    path = tmp_path / "plain.csv"
    path.write_text("time,Zyg li,Zyg re\n" + "\n".join(f"{a:.3f},{b:.6f},{-b:.6f}" for a, b in zip(t, x)))
    rec = read_recording(path, units="uV")  # the file does not say: no µV default any more
    assert rec.rate_hz == pytest.approx(1000.0)
    assert rec.channel_names == ["Zyg li", "Zyg re"]
    assert rec.meta["signal"] == "raw"
    assert rec.meta["units_as_read"] == ["uV", "uV"] and rec.meta["column_numbers"] == [2, 3]
    np.testing.assert_allclose(rec.data_uv[0], x, atol=1e-6)


def test_csv_in_millivolts_is_scaled_to_microvolts(tmp_path):
    path = tmp_path / "mv.csv"
    path.write_text("# units=mV\n# rate_hz=1000\nA,B\n" + "\n".join("0.5,-0.25" for _ in range(10)))
    rec = read_recording(path, csv_kind="raw")
    np.testing.assert_allclose(rec.data_uv[:, 0], [500.0, -250.0])


def test_mmm_style_envelope_csv_is_detected(tmp_path):
    rng = np.random.default_rng(1)
    values = rng.gamma(2.0, 5.0, size=(90, 22))
    path = tmp_path / "mmm.csv"
    np.savetxt(path, values, delimiter=",", fmt="%.6f")
    rec = read_recording(path)
    assert rec.meta["signal"] == "envelope"
    assert rec.rate_hz == 30.0 and "rate_assumed" in rec.meta
    # no units stated: read as they are, and said so (envelopes are normalised later)
    assert rec.meta["units"] == "unknown" and any("units" in w for w in rec.meta["warnings"])
    assert rec.n_channels == 22
    np.testing.assert_allclose(rec.data_uv.T, values, atol=1e-6)
    # the user can insist that it is raw data at a given rate
    raw = read_recording(path, csv_kind="raw", rate_hz=1000, units="uV")
    assert raw.meta["signal"] == "raw" and raw.rate_hz == 1000.0


@pytest.mark.parametrize("ext", [".csv", ".edf"])
def test_envelopes_round_trip_with_names(ext, tmp_path):
    rng = np.random.default_rng(2)
    values = rng.gamma(2.0, 8.0, size=(120, 3))
    names = ("Zyg_L", "Zyg_R", "Corr_L")
    track = MuscleTrack(values, names, 30.0, "fridlund22", "uV", 0.0)
    back = read_track(write_track(track, tmp_path / f"env{ext}"))
    assert back.names == names and back.fps == pytest.approx(30.0) and back.units == "uV"
    assert back.space == "fridlund22"
    atol = 1e-6 if ext == ".csv" else np.ptp(values) / 30000
    np.testing.assert_allclose(back.values, values, atol=atol)


def test_envelope_csv_header_states_fps_and_units(tmp_path):
    track = MuscleTrack(np.ones((5, 2)), ("Zyg_L", "Zyg_R"), 24.0, "fridlund22", "normalised", 1.5)
    text = write_track(track, tmp_path / "n.csv").read_text()
    assert "# fps=24.0" in text and "# units=normalised" in text
    back = read_track(tmp_path / "n.csv")
    assert back.units == "normalised" and back.start_s == pytest.approx(1.5)


# ---- bad input -------------------------------------------------------------------------------


def _message(excinfo) -> str:
    return str(excinfo.value)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.edf"
    path.write_bytes(b"")
    with pytest.raises(InputError) as err:
        read_recording(path)
    assert "empty.edf" in _message(err) and "empty" in _message(err)


def test_truncated_header(recording, tmp_path):
    good = write_recording(recording, tmp_path / "good.edf").read_bytes()
    path = tmp_path / "cut.edf"
    path.write_bytes(good[:300])  # inside the 256 + 4 x 256 byte header
    with pytest.raises(InputError) as err:
        read_recording(path)
    assert "cut.edf" in _message(err) and "EDF" in _message(err)


def test_file_cut_short_reads_what_is_there_and_says_so(recording, tmp_path):
    good = write_recording(recording, tmp_path / "good.bdf").read_bytes()
    path = tmp_path / "short.bdf"
    path.write_bytes(good[: len(good) // 2])  # a recording whose writer crashed mid-way
    rec = read_recording(path)
    assert 0 < rec.n_samples < recording.n_samples
    np.testing.assert_allclose(rec.data_uv, recording.data_uv[:, :rec.n_samples],
                               atol=np.ptp(recording.data_uv) / 2 ** 23)
    assert any("records" in note for note in rec.meta["warnings"])


def test_wrong_extension(tmp_path):
    path = tmp_path / "notes.edf"
    path.write_text("time,Zyg_L\n0,1\n0.001,2\n")
    with pytest.raises(InputError) as err:
        read_recording(path)
    assert "notes.edf" in _message(err) and "extension" in _message(err)


def test_unsupported_format(tmp_path):
    path = tmp_path / "rec.mat"
    path.write_bytes(b"MATLAB 5.0")
    with pytest.raises(InputError) as err:
        read_recording(path)
    assert "rec.mat" in _message(err) and ".edf" in _message(err)
    with pytest.raises(InputError):
        write_recording(Recording(np.zeros((1, 10)), 100.0, ["a"]), tmp_path / "x.gdf")


def test_missing_file(tmp_path):
    with pytest.raises(InputError) as err:
        read_recording(tmp_path / "nothere.edf")
    assert "nothere.edf" in _message(err) and "not found" in _message(err)


def test_zero_channels(tmp_path):
    path = tmp_path / "times.csv"
    path.write_text("time_s\n0\n0.001\n0.002\n")
    with pytest.raises(InputError) as err:
        read_recording(path)
    assert "times.csv" in _message(err) and "no signal channels" in _message(err)


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_nan_or_inf_samples_name_the_channel(bad, tmp_path):
    rows = ["time_s,Zyg_L,Zyg_R"] + [f"{i / 1000},{i % 7 - 3},{(i % 5) - 2}" for i in range(100)]
    rows[51] = f"0.05,1.0,{bad}"
    path = tmp_path / "holes.csv"
    path.write_text("\n".join(rows))
    with pytest.raises(InputError) as err:
        read_recording(path, units="uV")
    assert "holes.csv" in _message(err) and "Zyg_R" in _message(err) and "0.050 s" in _message(err)


def test_inf_in_xdf_is_refused_on_read_and_on_write(tmp_path):
    from eifer_blender.core.recording._xdf import write_xdf

    data = np.random.default_rng(0).normal(size=(2, 500))
    data[1, 250] = np.inf
    rec = Recording(data, 500.0, ["Zyg_L", "Mass_R"])
    path = tmp_path / "inf.xdf"
    write_xdf(rec, path)  # the raw writer, as another program might produce such a file
    with pytest.raises(InputError) as err:
        read_recording(path)
    assert "inf.xdf" in _message(err) and "Mass_R" in _message(err) and "0.500 s" in _message(err)
    with pytest.raises(InputError) as err:
        write_recording(rec, tmp_path / "again.edf")
    assert "Mass_R" in _message(err)


def test_duplicate_channel_names_csv(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("# rate_hz=1000\nZyg_L,Zyg_L\n" + "\n".join("1,-2" for _ in range(10)))
    with pytest.raises(InputError) as err:
        read_recording(path)
    assert "dup.csv" in _message(err) and "duplicate" in _message(err) and "Zyg_L" in _message(err)


def test_duplicate_channel_names_edf(tmp_path):
    import edfio

    signals = [edfio.EdfSignal(np.zeros(256), 256.0, label="Zyg li", physical_range=(-100, 100))
               for _ in range(2)]
    path = tmp_path / "dup.edf"
    edfio.Edf(signals).write(path)
    with pytest.raises(InputError) as err:
        read_recording(path)
    assert "dup.edf" in _message(err) and "Zyg li" in _message(err)


def test_raw_csv_without_rate_asks_for_it(tmp_path):
    path = tmp_path / "norate.csv"
    path.write_text("Zyg_L,Zyg_R\n" + "\n".join(f"{i % 3 - 1},{-(i % 3) + 1}" for i in range(20)))
    with pytest.raises(InputError) as err:
        read_recording(path)
    assert "norate.csv" in _message(err) and "rate" in _message(err)
    assert read_recording(path, rate_hz=500, units="uV").rate_hz == 500.0


def test_uneven_time_column(tmp_path):
    path = tmp_path / "jitter.csv"
    times = np.cumsum(np.r_[0, np.full(9, 0.001), 0.01, np.full(9, 0.001)])
    path.write_text("time,Zyg_L\n" + "\n".join(f"{t},{i % 2 - 0.5}" for i, t in enumerate(times)))
    with pytest.raises(InputError) as err:
        read_recording(path)
    assert "jitter.csv" in _message(err) and "evenly" in _message(err)
