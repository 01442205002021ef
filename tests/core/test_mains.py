"""Mains hum with harmonics: found in the spectrum and notched by default, so the face does not go still."""
from dataclasses import replace

import numpy as np
import pytest
from scipy import signal

from eifer_blender.core.envelopes import ProcessingSettings, process_recording
from eifer_blender.core.envelopes.mains import detect_mains_hz, mains_notches
from eifer_blender.core.recording import Recording

RATE_HZ = 2048.0
FPS = 30.0
NAMES = ("Zyg_L", "Corr_L", "OrbOc_L", "Zyg_R")


def _emg(seconds: float, seed: int) -> np.ndarray:
    """Band-limited Gaussian sEMG (20–400 Hz) at ~3 µV RMS rest with bursts to ~30 µV, per channel."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE_HZ)
    sos = signal.butter(4, (20.0, 400.0), btype="bandpass", fs=RATE_HZ, output="sos")
    carrier = signal.sosfilt(sos, rng.standard_normal((len(NAMES), n)), axis=-1)
    carrier /= carrier.std(axis=-1, keepdims=True)
    t = np.arange(n) / RATE_HZ
    level = np.full((len(NAMES), n), 3.0)
    for row in range(len(NAMES)):
        for onset in rng.uniform(2.0, seconds - 4.0, 4):
            level[row] += 27.0 * np.exp(-0.5 * ((t - onset - 1.0) / 0.4) ** 2)
    return carrier * level


def _hum(n: int, mains_hz: float, seed: int) -> np.ndarray:
    """300 µV mains plus harmonics (a lab's unshielded room), one phase per channel and harmonic."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / RATE_HZ
    amplitudes_uv = {1: 300.0, 2: 60.0, 3: 120.0, 4: 20.0, 5: 60.0, 7: 30.0, 9: 15.0}
    hum = np.zeros((len(NAMES), n))
    for k, amplitude in amplitudes_uv.items():
        if k * mains_hz < RATE_HZ / 2:
            hum += amplitude * np.sin(2 * np.pi * k * mains_hz * t + rng.uniform(0, 2 * np.pi, (len(NAMES), 1)))
    return hum


def _relative_error(settings: ProcessingSettings, mains_hz: float) -> float:
    """Median over channels of RMS(envelope − hum-free envelope) / RMS(hum-free envelope), both
    through the chain ``settings`` chose for the recording with hum."""
    clean = _emg(40.0, seed=int(mains_hz))
    noisy = clean + _hum(clean.shape[1], mains_hz, seed=7)
    track = process_recording(Recording(noisy, RATE_HZ, list(NAMES)), FPS, settings)
    env_noisy = track.values
    chosen = replace(settings, notch_hz=(track.meta["processing"]["notch_applied_hz"][0],))
    env_clean = process_recording(Recording(clean, RATE_HZ, list(NAMES)), FPS, chosen).values
    per_channel = np.sqrt(np.mean((env_noisy - env_clean) ** 2, axis=0)) / np.sqrt(np.mean(env_clean ** 2, axis=0))
    return float(np.median(per_channel))


@pytest.mark.parametrize("mains_hz", [50.0, 60.0])
def test_default_chain_removes_mains_and_its_harmonics(mains_hz):
    assert _relative_error(ProcessingSettings(), mains_hz) <= 0.05


def test_the_fundamental_alone_is_not_enough():
    """What the default is for: EIFER's single 50 Hz notch leaves the harmonics in the envelope."""
    assert _relative_error(ProcessingSettings.eifer(), 50.0) > 0.2


@pytest.mark.parametrize("mains_hz", [50.0, 60.0])
def test_mains_frequency_is_found_in_the_spectrum(mains_hz):
    noisy = _emg(20.0, seed=3) + _hum(int(20.0 * RATE_HZ), mains_hz, seed=1) / 10  # 30 µV: a quieter room
    found, note = detect_mains_hz(noisy, RATE_HZ)
    assert found == mains_hz and f"{mains_hz:g} Hz" in note
    track = process_recording(Recording(noisy, RATE_HZ, list(NAMES)), FPS, ProcessingSettings())
    assert track.meta["processing"]["notch_applied_hz"][0] == mains_hz
    assert f"{mains_hz:g} Hz" in track.meta["processing"]["mains"]


def test_a_clean_recording_gets_eifers_notch_and_says_so():
    found, _ = detect_mains_hz(_emg(20.0, seed=4), RATE_HZ)
    assert found is None
    track = process_recording(Recording(_emg(20.0, seed=4), RATE_HZ, list(NAMES)), FPS, ProcessingSettings())
    assert "no mains hum found" in track.meta["processing"]["mains"]
    assert track.meta["processing"]["notch_applied_hz"][0] == 50.0


def test_harmonic_notches_are_narrow_and_stop_at_the_band_edge():
    notches = mains_notches(4096.0, (50.0,), harmonics=True, q=2.0, harmonic_q=30.0, upper_hz=500.0)
    assert notches[0] == (50.0, 2.0)  # EIFER's notch for the fundamental
    assert [f for f, _ in notches] == [50.0 * k for k in range(1, 11)]
    assert all(q >= 30 and f / q == pytest.approx(50.0 / 30.0) for f, q in notches[1:])
    assert mains_notches(4096.0, (60.0,), harmonics=False, q=2.0, harmonic_q=30.0) == ((60.0, 2.0),)
    # a 250 Hz OpenBCI Cyton: the band ends at 112.5 Hz, so 100 Hz is notched and 150 Hz is not
    assert [f for f, _ in mains_notches(250.0, (50.0,), harmonics=True, q=2.0, harmonic_q=30.0,
                                        upper_hz=112.5)] == [50.0, 100.0]


def test_chunked_equals_whole_with_harmonic_notches():
    rec = Recording(_emg(40.0, seed=5) + _hum(int(40.0 * RATE_HZ), 50.0, seed=2), RATE_HZ, list(NAMES))
    whole = process_recording(rec, FPS, ProcessingSettings(chunk_s=None))
    chunked = process_recording(rec, FPS, ProcessingSettings(chunk_s=4.0))
    assert chunked.meta["processing"]["interior_pieces"] >= 2
    np.testing.assert_allclose(chunked.values, whole.values, rtol=1e-6)
