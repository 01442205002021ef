"""The frozen test simulator (models.testsim): its API and each way it differs from the training one.

Every check is measured on seeded sessions; the file runs in well under 20 s.
"""
import re
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt, welch

from eifer_blender.core import envelopes
from eifer_blender.core.expression.spaces import ARKIT52
from eifer_blender.core.recording.montage import FRIDLUND22
from models.testsim import TEST_PROTOCOLS, TestSession, probe_session, simulate_test_session, source_hash
from models.testsim import face, signal

FPS = 30.0
RATE = 2048.0


def _envelope(session: TestSession, settings=None):
    return envelopes.process_recording(session.recording, FPS, settings or envelopes.ProcessingSettings())


def _frames(annotation, margin_s=0.0):
    return slice(int((annotation.onset_s + margin_s) * FPS),
                 int((annotation.onset_s + annotation.duration_s - margin_s) * FPS))


def _events(session, description):
    return [a for a in session.annotations if a.description == description]


def _quiet(session):
    return session.activations.values.max(axis=1) < 0.005


@pytest.fixture(scope="module")
def emotions():
    return simulate_test_session("emotions", 1, duration_s=60.0, gain=1.0, seed=0)


@pytest.fixture(scope="module")
def emotions_envelope(emotions):
    return _envelope(emotions)


@pytest.fixture(scope="module")
def posed():
    return simulate_test_session("posed", 2, duration_s=40.0, seed=0, clean=True)


@pytest.fixture(scope="module")
def mixed():
    return simulate_test_session("mixed", 2, duration_s=60.0, gain=1.0, seed=0)


# ---------------------------------------------------------------------------------------------
# The API


def test_api_shapes_names_units(emotions):
    assert TEST_PROTOCOLS == ("emotions", "posed", "mixed")
    rec = emotions.recording
    assert rec.channel_names == list(FRIDLUND22)
    assert rec.rate_hz == RATE and rec.data_uv.shape == (22, int(60 * RATE))
    assert np.isfinite(rec.data_uv).all()
    arkit = emotions.arkit
    assert arkit.names == ARKIT52 and arkit.space == "arkit52" and arkit.units == "1"
    assert arkit.fps == FPS and arkit.n_frames == 60 * FPS
    assert arkit.values.min() >= 0.0 and arkit.values.max() <= 1.0
    assert emotions.activations.names == face.SOURCE_NAMES and emotions.activations.n_frames == arkit.n_frames
    assert emotions.gain == 1.0 == emotions.meta["gain"]
    assert emotions.meta["test_only"] is True and emotions.meta["source_hash"] == source_hash()
    descriptions = {a.description for a in emotions.annotations}
    assert {"blink", "artefact/motion"} <= descriptions
    assert {d for d in descriptions if d.startswith("emotion/")} == {
        f"emotion/{e}" for e in ("happy", "sad", "angry", "disgust", "surprise", "fear", "neutral")}
    # the recording carries the protocol's events, not the truth-only blinks and artefacts
    assert {a.description for a in rec.annotations} == {d for d in descriptions if d.startswith("emotion/")}


def test_protocol_annotations_and_determinism(posed, mixed):
    assert all(re.fullmatch(r"au/\d+|blink", a.description) for a in posed.annotations)  # clean: no artefacts
    assert {"speech", "chewing"} <= {a.description for a in mixed.annotations}
    again = simulate_test_session("posed", 2, duration_s=40.0, seed=0, clean=True)
    np.testing.assert_array_equal(again.recording.data_uv, posed.recording.data_uv)
    other = simulate_test_session("posed", 2, duration_s=40.0, seed=1, clean=True)
    assert not np.allclose(other.recording.data_uv, posed.recording.data_uv)
    with pytest.raises(ValueError, match="available"):
        simulate_test_session("schaede", 1)
    with pytest.raises(ValueError, match="available"):
        probe_session("buccinator", "L")


def test_arkit_is_the_face_of_the_activations(posed):
    values = face.from_columns(posed.activations.values.astype(np.float64))
    np.testing.assert_allclose(posed.arkit.values, face.face_arkit(values, FPS), atol=1e-5)
    smile = posed.arkit.column("mouthSmileLeft")
    for event in _events(posed, "au/12"):
        assert smile[_frames(event)].max() > 0.2
    assert smile[_quiet(posed)].max() < 0.03  # only the lagging tail of a movement


def test_source_hash_and_independence():
    digest = source_hash()
    assert re.fullmatch(r"[0-9a-f]{16}", digest) and digest == source_hash()
    package = Path(face.__file__).parent
    for path in package.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        imports = [line for line in text.splitlines() if re.match(r"\s*(from|import)\s", line)]
        assert not [line for line in imports if "simulator" in line], path
        assert "test-only" in text.lower() or "testing models only" in text.lower(), path


def test_speed_and_vectorised():
    simulate_test_session("mixed", 3, duration_s=5.0)  # warm-up
    start = time.perf_counter()
    simulate_test_session("mixed", 3, duration_s=60.0, rate_hz=2048.0)
    assert time.perf_counter() - start < 4.0  # ~1 s on a quiet machine; generous under load


# ---------------------------------------------------------------------------------------------
# 1. synergies


def test_synergies_coactivate_partners(posed):
    act = posed.activations
    pairs = (("au/12", "zygomaticus_L", "orbicularis_oculi_L"), ("au/1", "frontalis_medial_R", "frontalis_lateral_R"))
    for description, driver, partner in pairs:
        for event in _events(posed, description):
            span = _frames(event)
            apex = span.start + int(np.argmax(act.column(driver)[span]))
            share = act.column(partner)[apex] / act.column(driver)[apex]
            assert 0.2 <= share <= 0.4, (description, share)
    # both brow lowerers pull each other along
    s = np.array(posed.meta["synergies"])
    i, j = face.MUSCLE_INDEX["corrugator"], face.MUSCLE_INDEX["depressor_supercilii"]
    assert 0.2 <= s[i, j] <= 0.4 and 0.2 <= s[j, i] <= 0.4
    # and the partner's electrode sees it: OrbOc rises during a posed smile
    env = _envelope(posed)
    orboc, rest = env.column("OrbOc_L"), np.median(env.column("OrbOc_L")[_quiet(posed)])
    assert all(np.median(orboc[_frames(e, 0.7)]) > 1.3 * rest for e in _events(posed, "au/12"))


# ---------------------------------------------------------------------------------------------
# 2. anisotropic crosstalk


def test_crosstalk_depends_on_direction_not_distance_alone():
    start, end = np.array([0.0, 0.0]), np.array([20.0, 0.0])  # fibres along x, half-width 3 mm
    def weight(point, axis=0.0):
        return float(signal.crosstalk_weight(np.array(point), axis, start, end, 3.0, 1.0, 4.75))
    over = weight((10.0, 0.0))
    for d, factor in ((4.0, 1.3), (8.0, 2.0), (15.0, 4.0)):
        along, across = weight((20.0 + d, 0.0)), weight((10.0, 3.0 + d))
        assert along > factor * across, d  # the same distance, more along the fibres
    assert weight((24.0, 0.0)) > 0.5 * over and weight((35.0, 0.0)) > 0.1 * over  # reaches 4-15 mm along
    assert weight((10.0, 7.0)) > 0.3 * over and weight((10.0, 18.0)) < 0.08 * over  # across: 4 mm yes, 15 mm hardly
    # a pair across the fibres sees less of the same muscle at the same place
    assert weight((10.0, 0.0), np.pi / 2) < 0.4 * over
    # in the face: the mixing matrix is not a function of centre distance
    w = signal.mixing_matrix(np.zeros((22, 2)), 4.75)
    assert w.shape == (22, len(face.SOURCE_NAMES))
    assert w[FRIDLUND22.index("DepSup_L"), face.SOURCE_NAMES.index("corrugator_L")] > 0.1
    assert w[FRIDLUND22.index("Zyg_L"), face.SOURCE_NAMES.index("masseter_L")] > 0.1


def test_probe_crosstalk_reaches_neighbours_only():
    probe = probe_session("corrugator", "L", duration_s=15.0, seed=0, subject=0, clean=True)
    others = [n for n in face.SOURCE_NAMES if n != "corrugator_L"]
    assert probe.activations.select(others).values.max() == 0.0
    assert {a.description for a in probe.annotations} == {"probe/corrugator_L"}
    env = _envelope(probe)
    bursts = np.zeros(env.n_frames, bool)
    for a in probe.annotations:
        bursts[_frames(a, 0.5)] = True
    rise = {c: np.median(env.column(c)[bursts]) / np.median(env.column(c)[~bursts & _quiet(probe)])
            for c in FRIDLUND22}
    assert rise["Corr_L"] > 3.0
    assert rise["DepSup_L"] > 1.2  # a neighbour 13 mm away
    assert rise["Zyg_L"] < 1.1 and rise["Corr_R"] < 1.1 and rise["Ment_L"] < 1.1


# ---------------------------------------------------------------------------------------------
# 3. speech and chewing leak onto zygomaticus


def test_speech_and_chewing_crosstalk_onto_zygomaticus(mixed):
    env = _envelope(mixed)
    zyg_true = np.maximum(mixed.activations.column("zygomaticus_L"), mixed.activations.column("zygomaticus_R"))
    quiet = _quiet(mixed)
    for description, least in (("speech", 1.2), ("chewing", 1.5)):
        events = _events(mixed, description)
        assert events
        ratios = []
        for channel in ("Zyg_L", "Zyg_R"):
            rest = np.median(env.column(channel)[quiet])
            for event in events:
                span = _frames(event, 0.5)
                assert zyg_true[span].max() == 0.0  # the zygomaticus itself does nothing
                ratios.append(np.median(env.column(channel)[span]) / rest)
        assert np.mean(ratios) > least, (description, ratios)
    masseter = mixed.activations.column("masseter_L")
    assert max(masseter[_frames(e)].max() for e in _events(mixed, "chewing")) > 0.3


# ---------------------------------------------------------------------------------------------
# 4. saturating non-linear activation -> AU -> ARKit


def test_activation_to_face_is_saturating_and_nonlinear():
    x = np.linspace(0, 1, 101)
    y = face.hill(x, 1.8, 0.4)
    assert y[0] == 0.0 and abs(y[-1] - 1.0) < 1e-12 and np.all(np.diff(y) >= 0)
    n, k = face.HILL_DEFAULT
    assert face.hill(0.1, n, k) < 0.1 and face.hill(0.5, n, k) > 0.6  # sigmoidal, then saturating
    assert face.hill(3.0, n, k) == 1.0
    peaks = {}
    for level in (0.1, 0.3, 0.9):
        probe = probe_session("zygomaticus", "L", duration_s=8.0, level=level, clean=True)
        peaks[level] = probe.arkit.column("mouthSmileLeft").max()
        assert probe.arkit.column("mouthSmileRight").max() < 1e-6
        assert probe.arkit.values.max() <= 1.0
    # linear would be 3x and 3x: a covert smile barely moves the face, a strong one saturates
    assert peaks[0.1] < 0.08
    assert peaks[0.3] / peaks[0.1] > 4.5
    assert peaks[0.9] / peaks[0.3] < 2.5
    # its own AU -> ARKit table: AU6 also narrows the eye, AU12 lifts the cheek a little
    aus = np.zeros((1, len(face.ACTION_UNITS), 2))
    aus[0, face.AU_INDEX[6], 1] = 1.0
    arkit = face.aus_to_arkit(aus)[0]
    assert arkit[ARKIT52.index("cheekSquintLeft")] > 0.8 and 0.3 < arkit[ARKIT52.index("eyeSquintLeft")] < 0.7


# ---------------------------------------------------------------------------------------------
# 5. electrode shifts up to 10 mm


def test_electrode_shifts_change_the_mixing():
    subjects = [signal.make_signal_subject(i) for i in range(8)]
    norms = np.array([np.linalg.norm(s.shifts_mm, axis=1) for s in subjects])
    assert norms.max() <= 10.0 + 1e-9 and norms.max() > 7.0 and np.median(norms) > 2.0
    c, k = FRIDLUND22.index("Zyg_L"), face.SOURCE_NAMES.index("zygomaticus_L")
    own = np.array([s.mixing()[c, k] for s in subjects])
    assert own.max() / own.min() > 1.15
    nominal = signal.mixing_matrix(np.zeros((22, 2)), subjects[0].spread_mm)
    assert np.abs(subjects[0].mixing() - nominal).max() > 0.1
    session = simulate_test_session("posed", 4, duration_s=3.0, clean=True)
    np.testing.assert_allclose(np.array(session.meta["electrode_shift_mm"]), signal.make_signal_subject(4).shifts_mm)


# ---------------------------------------------------------------------------------------------
# 6. spectra


def test_corrugator_spectrum_peaks_at_31_with_a_hump_near_93():
    probe = probe_session("corrugator", "L", duration_s=15.0, clean=True)
    f, p = welch(probe.recording.data_uv[FRIDLUND22.index("Corr_L")], RATE, nperseg=2048)
    band = (f > 10) & (f < 400)
    assert 27.0 <= f[band][np.argmax(p[band])] <= 35.0
    def mean(lo, hi):
        return p[(f >= lo) & (f <= hi)].mean()
    assert mean(85, 100) > 4 * mean(60, 70)  # second hump above the trough
    assert mean(85, 100) > 2 * mean(130, 160)
    # the others are broad with a peak at 50-150 Hz
    for muscle, channel in (("zygomaticus", "Zyg_L"), ("masseter", "Mass_L"), ("orbicularis_oris", "OrbOr_L")):
        probe = probe_session(muscle, "L", duration_s=10.0, clean=True)
        f, p = welch(probe.recording.data_uv[FRIDLUND22.index(channel)], RATE, nperseg=1024)
        smooth = np.convolve(p, np.ones(5) / 5, mode="same")
        peak = f[band := (f > 10) & (f < 400)][np.argmax(smooth[band])]
        assert 45.0 <= peak <= 150.0, (muscle, peak)
        assert p[(f > 150) & (f < 250)].mean() > 0.1 * p.max()  # broad


# ---------------------------------------------------------------------------------------------
# 7. blinks


def test_blinks_are_large_on_orbicularis_oculi():
    session = simulate_test_session("emotions", 2, duration_s=40.0, gain=1.0, seed=0, clean=True)
    sos = butter(4, (20.0, 450.0), btype="bandpass", fs=RATE, output="sos")
    x = sosfiltfilt(sos, session.recording.data_uv, axis=1)
    eye = [face.SOURCE_NAMES.index(f"{m}_{s}") for m in ("orbicularis_oculi_pretarsal", "orbicularis_oculi")
           for s in "RL"]
    others = np.delete(session.activations.values, eye, axis=1).max(axis=1) < 0.005
    quiet = np.repeat(_quiet(session), int(RATE / FPS) + 1)[:x.shape[1]]
    alone = np.repeat(others, int(RATE / FPS) + 1)[:x.shape[1]]
    blinks = [b for b in _events(session, "blink") if others[_frames(b)].all()]
    assert len(blinks) >= 4
    during = np.zeros(x.shape[1], bool)
    for b in blinks:
        during[int(b.onset_s * RATE):int((b.onset_s + b.duration_s) * RATE)] = True
    during &= alone
    ratio = {c: np.sqrt(np.mean(x[i, during] ** 2) / np.mean(x[i, quiet & ~during] ** 2))
             for i, c in enumerate(FRIDLUND22)}
    for side in "LR":
        assert ratio[f"OrbOc_{side}"] > 4.0, ratio
    far = [ratio[f"{stem}_{side}"] for stem in ("Corr", "Zyg", "OrbOr", "DAO", "Ment", "Mass", "medFront")
           for side in "LR"]
    assert max(ratio["OrbOc_L"], ratio["OrbOc_R"]) > 3 * max(far), ratio
    blink = session.arkit.column("eyeBlinkLeft")
    assert np.mean([blink[_frames(b)].max() for b in blinks]) > 0.6


# ---------------------------------------------------------------------------------------------
# 8. low activity / rest ratios


def test_expressions_rise_only_2_to_10_times_rest(emotions, emotions_envelope):
    env, act = emotions_envelope, emotions.activations
    quiet = _quiet(emotions)
    drivers = {"happy": ("Zyg", "zygomaticus"), "angry": ("Corr", "corrugator"),
               "surprise": ("medFront", "frontalis_medial"), "sad": ("DAO", "dao")}
    strong, mild, every = [], [], []
    for emotion, (stem, muscle) in drivers.items():
        for event in _events(emotions, f"emotion/{emotion}"):
            span = _frames(event, 0.8)
            for side in "LR":
                level = act.column(f"{muscle}_{side}")[span].max()
                channel = env.column(f"{stem}_{side}")
                ratio = np.median(channel[span]) / np.median(channel[quiet])
                every.append(ratio)
                (strong if level >= 0.3 else mild if level < 0.15 else []).append(ratio)
    assert strong and mild
    assert 2.0 <= np.median(strong) <= 10.0, strong
    assert max(every) < 12.0  # nothing like the training simulator's 30-40x
    assert np.median(mild) < 2.5, mild  # covert and mild expressions: barely above rest


# ---------------------------------------------------------------------------------------------
# 9. amplifier gain


def test_gain_scales_the_muscle_signal_only():
    low = simulate_test_session("emotions", 5, duration_s=5.0, gain=0.3, clean=True)
    high = simulate_test_session("emotions", 5, duration_s=5.0, gain=3.0, clean=True)
    np.testing.assert_allclose(high.recording.data_uv, 10.0 * low.recording.data_uv, rtol=1e-9, atol=1e-9)
    unit = simulate_test_session("emotions", 5, duration_s=5.0, gain=1.0, clean=True)
    noisy_low = simulate_test_session("emotions", 5, duration_s=5.0, gain=0.3)
    noisy_high = simulate_test_session("emotions", 5, duration_s=5.0, gain=3.0)
    np.testing.assert_allclose(noisy_high.recording.data_uv - noisy_low.recording.data_uv,
                               2.7 * unit.recording.data_uv, atol=1e-8)  # noise, mains, artefacts stay
    np.testing.assert_array_equal(low.arkit.values, high.arkit.values)
    gains = [simulate_test_session("posed", s, duration_s=1.0, clean=True).gain for s in range(12)]
    assert min(gains) >= 0.3 and max(gains) <= 3.0 and max(gains) / min(gains) > 2.5


# ---------------------------------------------------------------------------------------------
# 10. mains with harmonics


@pytest.mark.parametrize("mains_hz", [50.0, 60.0])
def test_mains_with_harmonics(mains_hz):
    session = simulate_test_session("posed", 3, duration_s=8.0, mains_hz=mains_hz)
    f, p = welch(session.recording.data_uv[FRIDLUND22.index("Zyg_L")], RATE, nperseg=4096)
    for h in (1, 2, 3, 5):
        at = p[np.argmin(np.abs(f - h * mains_hz))]
        near = np.median(p[(np.abs(f - h * mains_hz) > 3) & (np.abs(f - h * mains_hz) < 15)])
        assert at > 20 * near, (mains_hz, h)
    clean = simulate_test_session("posed", 3, duration_s=8.0, clean=True)
    f, p = welch(clean.recording.data_uv[FRIDLUND22.index("Zyg_L")], RATE, nperseg=4096)
    assert p[np.argmin(np.abs(f - mains_hz))] < 5 * np.median(p[(f > 30) & (f < 80)])


# ---------------------------------------------------------------------------------------------
# 11. motion artefacts


def test_motion_artefacts_are_marked_low_frequency_transients(emotions):
    artefacts = _events(emotions, "artefact/motion")
    assert artefacts
    sos = butter(2, (0.8, 6.0), btype="bandpass", fs=RATE, output="sos")
    low = np.abs(sosfiltfilt(sos, emotions.recording.data_uv, axis=1))
    inside = np.zeros(low.shape[1], bool)
    for a in artefacts:
        inside[int(a.onset_s * RATE):int((a.onset_s + a.duration_s + 0.5) * RATE)] = True
    for a in artefacts:
        span = slice(int(a.onset_s * RATE), int((a.onset_s + a.duration_s) * RATE))
        best = int(np.argmax(low[:, span].max(axis=1)))
        assert low[best, span].max() > 3 * np.percentile(low[best, ~inside], 99)
    clean = simulate_test_session("emotions", 1, duration_s=20.0, clean=True)
    assert not _events(clean, "artefact/motion")
