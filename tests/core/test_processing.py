"""EIFER's processing chain: against an independent scipy implementation, chunked vs whole,
envelope levels, frame timing, normalisation, channel handling, errors and the CLI."""
from __future__ import annotations

import tracemalloc
from dataclasses import replace

import numpy as np
import pytest
from scipy import signal

from eifer_blender.cli import main as cli_main
from eifer_blender.core.envelopes import (
    ProcessingSettings,
    bandpass_filter,
    design_bandpass,
    effective_band,
    frame_times_within,
    normalisation_references,
    normalise_envelopes,
    notch_filter,
    notch_frequencies,
    process_recording,
    process_source,
    remove_mean,
    rms_at,
)
from eifer_blender.core.errors import InputError
from eifer_blender.core.recording import (
    Annotation,
    Recording,
    RecordingSource,
    write_recording,
)
from eifer_blender.core.trackfiles import read_track


def shwedyk_carrier(n: int, rate_hz: float, rng: np.random.Generator, channels: int) -> np.ndarray:
    """Unit-RMS Gaussian noise with the Shwedyk sEMG spectrum (fl = 60 Hz, fh = 120 Hz; Shwedyk et al. 1977)."""
    f = np.fft.rfftfreq(n, 1 / rate_hz)
    psd = 120.0 ** 4 * f ** 2 / ((f ** 2 + 60.0 ** 2) * (f ** 2 + 120.0 ** 2) ** 2)
    x = np.fft.irfft(np.fft.rfft(rng.standard_normal((channels, n)), axis=-1) * np.sqrt(psd), n,
                     axis=-1)
    return x / x.std(axis=-1, keepdims=True)


def bursty(rate_hz=2048.0, seconds=12.0, seed=3, names=("Zyg_L", "Zyg_R", "Corr_L")):
    """Carriers with 2 µV rest and bursts up to 300 µV (a wide dynamic range), plus mains hum."""
    rng = np.random.default_rng(seed)
    n = int(rate_hz * seconds)
    t = np.arange(n) / rate_hz
    level = np.full((len(names), n), 2.0)
    for ch in range(len(names)):
        for start in rng.uniform(0.5, seconds - 2, size=3):
            level[ch, (t >= start) & (t < start + rng.uniform(0.3, 1.2))] = rng.uniform(30, 300)
    data = shwedyk_carrier(n, rate_hz, rng, len(names)) * level
    data += 25.0 * np.sin(2 * np.pi * 50.0 * t) + 40.0  # hum and an electrode offset
    return Recording(data, rate_hz, list(names), source="bursty")


def reference_chain(x, rate_hz, frame_samples, window_samples, taps, notch_hz=50.0, q=2.0):
    """The same steps written directly with numpy/scipy, one obvious call each (no chunking)."""
    x = x - x.mean(axis=1, keepdims=True)
    b, a = signal.iirnotch(notch_hz, q, fs=rate_hz)
    x = signal.filtfilt(b, a, x, axis=-1)
    half = (len(taps) - 1) // 2
    padded = np.pad(x, ((0, 0), (half, half)), mode="reflect", reflect_type="odd")
    x = np.stack([np.convolve(row, taps, mode="valid") for row in padded])
    # RMS over `window_samples` centred on each sample: W-1 full samples and two half samples
    kernel = np.ones(window_samples + 1)
    kernel[[0, -1]] = 0.5
    power = np.stack([np.convolve(row ** 2, kernel, mode="same") for row in x])
    weight = np.convolve(np.ones(x.shape[1]), kernel, mode="same")  # clipped windows at the ends
    return np.sqrt(power / weight)[:, frame_samples].T


def test_chain_matches_an_independent_scipy_implementation():
    rec = bursty()
    fps = 32.0  # 2048 / 32 = 64 samples per frame: frame times fall on samples
    track = process_recording(rec, fps, ProcessingSettings.eifer(montage=None, chunk_s=None))
    taps = signal.firwin(65, [10, 500], pass_zero="bandpass", window="hamming", fs=rec.rate_hz)
    frames = np.arange(track.n_frames) * 64
    expected = reference_chain(rec.data_uv, rec.rate_hz, frames, 1024, taps)
    assert track.names == tuple(rec.channel_names)
    np.testing.assert_allclose(track.values, expected, rtol=1e-6)
    assert track.meta["processing"]["fir_taps"] == 65  # 129 at 4096 Hz scaled to 2048 Hz


def test_chunked_equals_whole_for_the_default_chain():
    rec = bursty()
    whole = process_recording(rec, 30.0, ProcessingSettings.eifer(chunk_s=None))
    assert whole.meta["processing"]["pieces"] == 1
    for chunk_s in (2.0, 3.3):
        chunked = process_recording(rec, 30.0, ProcessingSettings.eifer(chunk_s=chunk_s))
        assert chunked.meta["processing"]["interior_pieces"] >= 2  # the FFT path is exercised
        np.testing.assert_allclose(chunked.values, whole.values, rtol=1e-6)


@pytest.mark.parametrize("settings", [
    ProcessingSettings.eifer(notch_hz=(50.0, 60.0), notch_harmonics=True, notch_q=4.0),
    ProcessingSettings.eifer(envelope="rectify"),
    ProcessingSettings.eifer(band_taps="mne", rms_window_s=0.1),
    ProcessingSettings.eifer(band_hz=None, notch_hz=()),
], ids=["harmonics", "rectify", "mne-fir", "rms-only"])
def test_chunked_equals_whole_for_variants(settings):
    rec = bursty(seconds=20.0)
    whole = process_recording(rec, 24.0, replace(settings, chunk_s=None), start_s=0.37)
    chunked = process_recording(rec, 24.0, replace(settings, chunk_s=2.5), start_s=0.37)
    assert chunked.start_s == pytest.approx(0.37)
    assert chunked.meta["processing"]["interior_pieces"] >= 1
    np.testing.assert_allclose(chunked.values, whole.values, rtol=1e-6)


def test_steps_compose_to_the_chain():
    rec = bursty(seconds=6.0)
    fps = 30.0  # frame times between samples: fractional window edges
    track = process_recording(rec, fps, ProcessingSettings.eifer(montage=None, chunk_s=None))
    x = notch_filter(remove_mean(rec.data_uv), rec.rate_hz, (50.0,), q=2.0)
    x = bandpass_filter(x, rec.rate_hz, (10.0, 500.0))
    times = frame_times_within(rec.n_samples, rec.rate_hz, fps)
    np.testing.assert_allclose(track.values, rms_at(x, rec.rate_hz, times, 0.5), rtol=1e-12)


def test_rms_with_fractional_edges_is_the_integral_of_the_held_samples():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 500))
    rate = 100.0
    times = np.array([0.0, 1.234, 2.5001, 4.99])
    got = rms_at(x, rate, times, window_s=0.173)
    # independent: integrate the piecewise-constant x^2 (sample j over [j-0.5, j+0.5)) exactly
    knots = np.arange(x.shape[1] + 1) - 0.5
    for ch in range(2):
        cumulative = np.concatenate([[0.0], np.cumsum(x[ch] ** 2)])
        lo = np.clip(times * rate - 8.65, -0.5, x.shape[1] - 0.5)
        hi = np.clip(times * rate + 8.65, -0.5, x.shape[1] - 0.5)
        integral = np.interp(hi, knots, cumulative) - np.interp(lo, knots, cumulative)
        np.testing.assert_allclose(got[:, ch], np.sqrt(integral / (hi - lo)), rtol=1e-12)


def test_envelope_level_matches_known_amplitude():
    rate = 4096.0
    rng = np.random.default_rng(11)
    amplitude = np.array([3.0, 30.0, 300.0])
    n = int(rate * 8)
    rec = Recording(shwedyk_carrier(n, rate, rng, 3) * amplitude[:, None], rate, ["a", "b", "c"])
    # EIFER's filters take part of a Shwedyk carrier's power: the expected level is the
    # amplitude times the filters' RMS gain on that spectrum, from their frequency responses
    taps = signal.firwin(129, [10, 500], pass_zero="bandpass", window="hamming", fs=rate)
    b, a = signal.iirnotch(50, 2, fs=rate)
    f, h_notch = signal.freqz(b, a, worN=16384, fs=rate)
    _, h_fir = signal.freqz(taps, worN=16384, fs=rate)
    psd = 120.0 ** 4 * f ** 2 / ((f ** 2 + 60.0 ** 2) * (f ** 2 + 120.0 ** 2) ** 2)
    gain = np.sqrt(np.sum(psd * np.abs(h_notch) ** 4 * np.abs(h_fir) ** 2) / np.sum(psd))
    for envelope in ("rms", "rectify"):
        track = process_recording(rec, 30.0, ProcessingSettings.eifer(envelope=envelope, montage=None))
        level = np.sqrt(np.mean(track.values ** 2, axis=0))
        np.testing.assert_allclose(level, amplitude * gain, rtol=0.05, err_msg=envelope)
    # and with no filters at all the level is the amplitude itself
    bare = process_recording(rec, 30.0, ProcessingSettings.eifer(notch_hz=(), band_hz=None, montage=None))
    np.testing.assert_allclose(np.sqrt(np.mean(bare.values ** 2, axis=0)), amplitude, rtol=0.05)


def test_notch_removes_mains_hum_on_emg_channels():
    rate = 2048.0
    t = np.arange(int(rate * 4)) / rate
    hum = 100.0 * np.sin(2 * np.pi * 50.0 * t)
    rec = Recording(np.stack([hum, hum]), rate, ["Zyg_L", "Zyg_R"], ["emg", "emg"])
    plain = process_recording(rec, 30.0, ProcessingSettings.eifer(notch_hz=()))
    notched = process_recording(rec, 30.0, ProcessingSettings.eifer())
    inner = slice(15, -15)  # away from the ends, where zero-phase filters settle
    assert np.median(plain.values[inner]) > 30.0  # the band-pass alone keeps the hum
    assert np.max(notched.values[inner]) < 1e-3 * np.median(plain.values[inner])


def test_frames_follow_start_offset_and_burst_timing():
    rate, fps = 2048.0, 25.0
    n = int(rate * 6)
    t = np.arange(n) / rate
    rng = np.random.default_rng(5)
    level = np.where((t >= 3.0) & (t < 4.0), 100.0, 1.0)
    rec = Recording(shwedyk_carrier(n, rate, rng, 1) * level, rate, ["Zyg_L"])
    settings = ProcessingSettings.eifer(rms_window_s=0.1)
    track = process_recording(rec, fps, settings, start_s=1.0, n_frames=100)
    assert track.n_frames == 100 and track.start_s == 1.0
    np.testing.assert_allclose(track.times_s, 1.0 + np.arange(100) / fps)
    onset_frame = int(np.argmax(track.values[:, 0] > 0.5 * track.values[:, 0].max()))
    # the 0.1 s window is centred: the envelope crosses half height within a frame of t = 3 s
    assert abs(track.times_s[onset_frame] - 3.0) <= 1 / fps + 1e-9
    with pytest.raises(InputError):
        process_recording(rec, fps, settings, start_s=1.0, n_frames=200)  # past the end
    with pytest.raises(InputError):
        process_recording(rec, fps, settings, start_s=-0.5)


def test_band_is_capped_below_nyquist_and_low_rates_are_refused():
    assert effective_band(800.0, (10.0, 500.0)) == (10.0, 360.0)
    assert effective_band(4096.0, (10.0, 500.0)) == (10.0, 500.0)
    taps = design_bandpass(800.0, (10.0, 500.0))
    assert len(taps) % 2 == 1
    rec = Recording(np.random.default_rng(0).normal(size=(1, 800 * 3)), 800.0, ["Zyg_L"])
    track = process_recording(rec, 30.0, ProcessingSettings.eifer())
    assert track.meta["processing"]["band_applied_hz"] == [10.0, 360.0]
    slow = Recording(np.random.default_rng(0).normal(size=(1, 2000)), 20.0, ["Zyg_L"], source="slow.csv")
    with pytest.raises(InputError) as err:
        process_recording(slow, 10.0, ProcessingSettings.eifer())
    assert "slow.csv" in str(err.value) and "too low" in str(err.value)


def test_notch_frequencies_below_nyquist():
    assert notch_frequencies(4096.0, (50.0,)) == (50.0,)
    harmonics = notch_frequencies(400.0, (50.0, 60.0), harmonics=True, q=2.0)
    # a Q = 2 notch at f spans up to 1.25 f: 180 Hz would reach past Nyquist (200 Hz)
    assert set(harmonics) == {50.0, 100.0, 150.0, 60.0, 120.0}
    assert set(notch_frequencies(400.0, (60.0,), harmonics=True, q=30.0)) == {60.0, 120.0, 180.0}
    assert notch_frequencies(100.0, (60.0,)) == ()  # 60 Hz is above Nyquist at 100 Hz


def test_less_data_than_one_window():
    rec = Recording(np.random.default_rng(0).normal(size=(2, 1000)), 2048.0, ["Zyg_L", "Zyg_R"],
                    source="short.edf")
    with pytest.raises(InputError) as err:
        process_recording(rec, 30.0, ProcessingSettings.eifer())
    assert "short.edf" in str(err.value) and "RMS window" in str(err.value)


def test_nan_samples_raise_or_become_zero():
    rec = bursty(seconds=4.0)
    rec.data_uv[1, 4000:4010] = np.nan
    with pytest.raises(InputError) as err:
        process_recording(rec, 30.0, ProcessingSettings.eifer(chunk_s=1.0))
    assert "bursty" in str(err.value) and "Zyg_R" in str(err.value) and "1.953 s" in str(err.value)
    track = process_recording(rec, 30.0, ProcessingSettings.eifer(nan_policy="zero", chunk_s=1.0))
    assert np.isfinite(track.values).all()
    whole = process_recording(rec, 30.0, ProcessingSettings.eifer(nan_policy="zero", chunk_s=None))
    np.testing.assert_allclose(track.values, whole.values, rtol=1e-6)


def test_monopolar_pairs_become_canonical_bipolar_channels():
    base = bursty(seconds=4.0, names=("a", "b", "c", "d"))
    names = ["Zyg li 1", "Zyg li 2", "Corr re 1", "Corr re 2"]
    mono = Recording(base.data_uv, base.rate_hz, names, source="mono.bdf")
    track = process_recording(mono, 30.0, ProcessingSettings.eifer())
    assert track.names == ("Corr_R", "Zyg_L") and track.space == "fridlund22"
    assert track.meta["channel_sources"]["Zyg_L"] == "Zyg li 1 - Zyg li 2"
    diff = Recording(np.stack([base.data_uv[2] - base.data_uv[3], base.data_uv[0] - base.data_uv[1]]),
                     base.rate_hz, ["Corr_R", "Zyg_L"])
    np.testing.assert_allclose(track.values, process_recording(diff, 30.0, ProcessingSettings.eifer()).values, rtol=1e-9)


def test_channel_selection_and_errors():
    rec = bursty(seconds=3.0, names=("Zyg li", "Zyg re", "Trigger"))
    rec.channel_types = ["emg", "emg", "emg"]
    track = process_recording(rec, 30.0, ProcessingSettings.eifer())
    assert track.names == ("Zyg_R", "Zyg_L") and track.meta["dropped_channels"] == ["Trigger"]
    picked = process_recording(rec, 30.0, ProcessingSettings.eifer(channels=("Zyg_L",)))
    assert picked.names == ("Zyg_L",)
    np.testing.assert_allclose(picked.values[:, 0], track.column("Zyg_L"))
    with pytest.raises(InputError) as err:
        process_recording(rec, 30.0, ProcessingSettings.eifer(channels=("Zyg_L", "Corr_L", "Mass_R")))
    assert "bursty" in str(err.value) and "Corr_L, Mass_R" in str(err.value)
    kept = process_recording(rec, 30.0, ProcessingSettings.eifer(montage=None))
    assert kept.names == ("Zyg li", "Zyg re", "Trigger") and kept.space == "emg"
    dup = Recording(rec.data_uv[:2], rec.rate_hz, ["Zyg li", "F20"], source="dup.edf")
    with pytest.raises(InputError) as err:
        process_recording(dup, 30.0, ProcessingSettings.eifer())
    assert "dup.edf" in str(err.value) and "Zyg_L" in str(err.value)
    with pytest.raises(InputError) as err:
        process_recording(rec, 30.0, ProcessingSettings.eifer(montage="kuramoto19"))
    assert "kuramoto19" in str(err.value) and "Trigger" in str(err.value)


def test_only_emg_typed_channels_are_processed_when_there_are_some():
    rec = bursty(seconds=3.0, names=("Zyg_L", "Fz", "Zyg_R"))
    rec.channel_types = ["emg", "eeg", "emg"]
    assert process_recording(rec, 30.0, ProcessingSettings.eifer()).names == ("Zyg_R", "Zyg_L")
    rec.channel_types = ["eeg", "eeg", "eeg"]  # BrainVision: no EMG type in the file
    assert process_recording(rec, 30.0, ProcessingSettings.eifer(montage=None)).names == ("Zyg_L", "Fz", "Zyg_R")


def test_normalisation_methods_store_their_references():
    rec = bursty(seconds=12.0)
    rec.annotations = [Annotation(0.0, 0.4, "rest")]
    raw = process_recording(rec, 30.0, ProcessingSettings.eifer())
    times = raw.times_s

    rest = process_recording(rec, 30.0, ProcessingSettings.eifer(normalise="rest"))
    refs = rest.meta["normalisation"]
    assert rest.units == "normalised" and refs["method"] == "rest"
    assert refs["segments_s"] == [[0.0, 0.4]] and refs["channels"] == list(raw.names)
    in_rest = times <= 0.4
    np.testing.assert_allclose(refs["scale"], np.median(raw.values[in_rest], axis=0))
    np.testing.assert_allclose(rest.values, raw.values / np.array(refs["scale"]), rtol=1e-12)

    cal = process_recording(rec, 30.0, ProcessingSettings.eifer(normalise="calibration",
                                                          calibration_s=((2.0, 9.0),)))
    in_cal = (times >= 2.0) & (times <= 9.0)
    np.testing.assert_allclose(cal.meta["normalisation"]["scale"], raw.values[in_cal].max(axis=0))
    assert cal.values[in_cal].max() == pytest.approx(1.0)

    pct = process_recording(rec, 30.0, ProcessingSettings.eifer(normalise="percentile", percentiles=(10, 90)))
    lo, hi = np.percentile(raw.values, [10, 90], axis=0)
    np.testing.assert_allclose(pct.values, (raw.values - lo) / (hi - lo), rtol=1e-9)
    # stored references re-apply to the raw envelopes (what a model does at run time)
    np.testing.assert_allclose(normalise_envelopes(raw.values, pct.meta["normalisation"]),
                               pct.values, rtol=1e-12)


def test_normalisation_errors():
    rec = bursty(seconds=4.0)
    with pytest.raises(InputError) as err:
        process_recording(rec, 30.0, ProcessingSettings.eifer(normalise="rest", rest_s=((50.0, 60.0),)))
    assert "contain no frame" in str(err.value)
    flat = np.ones((10, 2))
    flat[:, 1] = np.arange(10)
    with pytest.raises(InputError) as err:
        normalisation_references(flat, {"method": "percentile"}, names=["Zyg_L", "Zyg_R"])
    assert "Zyg_L" in str(err.value) and "Zyg_R" not in str(err.value)
    # without segments, rest falls back to a low percentile of the track
    refs = normalisation_references(flat[:, 1:] + 1, {"method": "rest"})
    assert refs["scale"] == [pytest.approx(np.percentile(np.arange(10) + 1, 10))]


def test_envelope_input_is_resampled_not_filtered():
    values = np.abs(np.random.default_rng(0).normal(size=(2, 300))) * 10
    rec = Recording(values, 30.0, ["Zyg_R", "Zyg_L"], meta={"signal": "envelope"})  # montage order
    same = process_recording(rec, 30.0, ProcessingSettings.eifer())
    np.testing.assert_allclose(same.values, values.T)
    assert same.meta["processing"]["input"] == "envelope"
    doubled = process_recording(rec, 60.0, ProcessingSettings.eifer())
    np.testing.assert_allclose(doubled.values[::2], values.T)
    np.testing.assert_allclose(doubled.values[1::2], (values.T[:-1] + values.T[1:]) / 2)


def test_settings_validate_and_round_trip():
    settings = ProcessingSettings.eifer(notch_hz=(60.0,), rest_s=((0.0, 1.0),), channels=("Zyg_L",))
    assert ProcessingSettings.from_dict(settings.to_dict()) == settings
    for bad in (dict(envelope="hilbert"), dict(rms_window_s=0), dict(band_hz=(500.0, 10.0)),
                dict(band_taps=128), dict(normalise="zscore"), dict(montage="10-20")):
        with pytest.raises(InputError):
            ProcessingSettings(**bad)
    with pytest.raises(InputError):
        ProcessingSettings.from_dict({"window": 1})


def test_chunked_memory_does_not_grow_with_length():
    """A generator source (nothing materialised): peak allocation is set by the chunk, not the length."""
    rate = 4096.0
    rng = np.random.default_rng(0)
    bank = rng.normal(0, 10, size=(8, int(rate * 3)))
    names = [f"{m}_{i}" for m in ("Zyg_L", "Zyg_R", "Corr_L", "Corr_R") for i in (1, 2)]

    def source(seconds):
        n = int(rate * seconds)
        period = bank.shape[1]

        def read(a, b):
            idx = np.arange(a, b) % period
            return bank[:, idx]
        return RecordingSource(rate, names, ["emg"] * 8, n, read, source="generated")

    settings = ProcessingSettings.eifer(chunk_s=5.0)
    peaks = []
    for seconds in (40.0, 160.0):
        src = source(seconds)
        tracemalloc.start()
        track = process_source(src, 30.0, settings)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert track.values.shape == (int((seconds - 1 / rate) * 30) + 1, 4)
    whole_input_bytes = 8 * 8 * rate * 160.0
    assert peaks[1] < 1.3 * peaks[0] + 1e6  # 4x the data, about the same peak
    assert peaks[1] < whole_input_bytes / 4


# ---- CLI -------------------------------------------------------------------------------------


def test_cli_process_writes_csv_and_edf(tmp_path, capsys):
    rec = bursty(seconds=5.0, names=("Zyg li", "Zyg re", "Corr li"))
    path = write_recording(rec, tmp_path / "rec.edf")
    out_csv = tmp_path / "env.csv"
    assert cli_main(["process", "--emg", str(path), "--fps", "30", "--out", str(out_csv)]) == 0
    assert "150 frames x 3 channels" in capsys.readouterr().out
    track = read_track(out_csv)
    assert track.names == ("Corr_L", "Zyg_R", "Zyg_L") and track.fps == 30.0 and track.units == "uV"
    direct = process_recording(rec, 30.0, ProcessingSettings())  # the CLI's defaults are the library's
    np.testing.assert_allclose(track.values, direct.values, rtol=2e-3)  # EDF is 16 bit
    out_edf = tmp_path / "env.edf"
    code = cli_main(["process", "--emg", str(path), "--fps", "24", "--out", str(out_edf),
                     "--normalise", "percentile", "--envelope", "rectify", "--notch", "off", "--chunk", "1"])
    assert code == 0
    assert read_track(out_edf).names == ("Corr_L", "Zyg_R", "Zyg_L")


def test_cli_bad_input_exits_3_with_the_file_named(tmp_path, capsys):
    bad = tmp_path / "broken.edf"
    bad.write_bytes(b"0       garbage")
    assert cli_main(["process", "--emg", str(bad), "--fps", "30", "--out", str(tmp_path / "x.csv")]) == 3
    assert "broken.edf" in capsys.readouterr().err
    assert cli_main(["process", "--emg", str(bad), "--fps", "30"]) == 2  # usage: no --out
    rec = bursty(seconds=3.0)
    path = write_recording(rec, tmp_path / "ok.csv")
    assert cli_main(["process", "--emg", str(path), "--fps", "30", "--out", str(tmp_path / "x.json")]) == 3
    assert "x.json" in capsys.readouterr().err
