"""The simulator's face model: muscles -> FACS AUs -> ARKit weights, and the protocols."""
import numpy as np
import pytest

from eifer_blender.core.errors import InputError
from eifer_blender.core.expression.spaces import (
    ARKIT52,
    ARKIT52_INDEX,
    ARKIT_OBSERVABLE,
    ARKIT_UNOBSERVABLE,
)
from eifer_blender.core.recording.montage import FRIDLUND22
from eifer_blender.core.simulator import physiology as ph
from eifer_blender.core.simulator import protocols

NO_TONIC = np.zeros(len(ph.UNIT_NAMES))


def one_unit(name: str, level: float = 1.0) -> np.ndarray:
    activations = np.zeros((1, len(ph.UNIT_NAMES)))
    activations[0, ph.UNIT_INDEX[name]] = level
    return activations


def moved_shapes(activations: np.ndarray, threshold: float = 1e-6) -> dict[str, float]:
    weights = ph.activations_to_arkit(activations)[0]
    return {ARKIT52[i]: float(weights[i]) for i in np.flatnonzero(weights > threshold)}


def test_activation_names_start_with_the_fridlund_channels_and_keep_sides_apart():
    assert ph.UNIT_NAMES[:22] == FRIDLUND22
    assert len(ph.UNIT_NAMES) == 2 * len(ph.MUSCLE_UNITS) == len(set(ph.UNIT_NAMES))
    positions = ph.unit_positions_mm()
    right = [ph.UNIT_INDEX[f"{k}_R"] for k in ph.UNIT_KEYS]
    left = [ph.UNIT_INDEX[f"{k}_L"] for k in ph.UNIT_KEYS]
    assert np.all(positions[right, 0] < 0) and np.all(positions[left, 0] > 0)  # right = -x
    extra = {u.key for u in ph.MUSCLE_UNITS if not u.fridlund}
    # the expression muscles without a standard site that the issue names
    assert {"LevPalp", "Bucc", "Risor", "DLI", "JawOpen"} <= extra


# (unit key, ARKit stems it must move; sided stems get the unit's side)
ISOLATED = [
    ("Zyg", {"mouthSmile"}),
    ("Corr", {"browDown"}),
    ("medFront", {"browInnerUp"}),
    ("latFront", {"browOuterUp"}),
    ("DAO", {"mouthFrown"}),
    ("Ment", {"mouthShrugLower"}),
    ("OrbOc", {"cheekSquint", "eyeSquint"}),
    ("LLSup", {"noseSneer", "mouthUpperUp"}),
    ("OrbOr", {"mouthPucker", "mouthFunnel"}),
    ("LevPalp", {"eyeWide"}),
    ("Bucc", {"mouthDimple"}),
    ("Risor", {"mouthStretch"}),
    ("DLI", {"mouthLowerDown"}),
    ("JawOpen", {"jawOpen"}),
    ("OrbOcBlink", {"eyeBlink"}),
]


@pytest.mark.parametrize("key,stems", ISOLATED)
@pytest.mark.parametrize("side,arkit_side,other", [("L", "Left", "Right"), ("R", "Right", "Left")])
def test_an_isolated_muscle_moves_its_own_shapes_on_its_own_side_only(key, stems, side, arkit_side, other):
    moved = moved_shapes(one_unit(f"{key}_{side}"))
    expected = {f"{s}{arkit_side}" if f"{s}{arkit_side}" in ARKIT52_INDEX else s for s in stems}
    assert set(moved) == expected
    assert all(value >= 0.2 for value in moved.values()), moved
    assert not any(name.endswith(other) for name in moved)


def test_isolated_left_zygomaticus_smiles_left_only_and_scales_with_activation():
    half, full = (ph.activations_to_arkit(one_unit("Zyg_L", a))[0] for a in (0.5, 1.0))
    smile_left, smile_right = ARKIT52_INDEX["mouthSmileLeft"], ARKIT52_INDEX["mouthSmileRight"]
    assert full[smile_left] == pytest.approx(1.0) and half[smile_left] == pytest.approx(0.5)
    assert full[smile_right] == 0.0


def test_shapes_without_sides_need_both_sides_for_full_strength():
    both = one_unit("medFront_L") + one_unit("medFront_R")
    assert moved_shapes(both)["browInnerUp"] == pytest.approx(1.0)
    assert moved_shapes(one_unit("medFront_L"))["browInnerUp"] == pytest.approx(0.5)


def test_masseter_clench_moves_no_shape_and_weights_stay_in_range():
    assert moved_shapes(one_unit("Mass_L") + one_unit("Mass_R")) == {}
    everything = np.ones((1, len(ph.UNIT_NAMES)))
    weights = ph.activations_to_arkit(everything)
    assert weights.min() >= 0.0 and weights.max() <= 1.0
    moved = {ARKIT52[i] for i in np.flatnonzero(weights[0] > 0)}
    assert moved <= set(ARKIT_OBSERVABLE)  # no muscle moves gaze, tongue or cheekPuff


def test_au_table_documents_the_facts_mapping():
    m = ph.au_to_arkit_matrix()
    def row(au, side):
        return m[2 * ph.ACTION_UNITS.index(au) + ("R", "L").index(side)]
    assert row(12, "L")[ARKIT52_INDEX["mouthSmileLeft"]] == 1.0
    assert row(12, "L")[ARKIT52_INDEX["mouthSmileRight"]] == 0.0
    assert row(26, "R")[ARKIT52_INDEX["jawOpen"]] == 0.5  # one side of a one-sided shape
    assert row(45, "R")[ARKIT52_INDEX["eyeBlinkRight"]] == 1.0
    assert ph.unit_to_au_matrix().shape == (len(ph.UNIT_NAMES), len(ph.AU_CHANNELS))


@pytest.mark.parametrize("emotion", list(ph.EMOTION_AUS))
def test_each_emotion_prototype_produces_exactly_its_emfacs_aus(emotion):
    levels = protocols.emotion_unit_levels(emotion)
    activations = np.zeros((1, len(ph.UNIT_NAMES)))
    for key, level in levels.items():
        activations[0, [ph.UNIT_INDEX[f"{key}_R"], ph.UNIT_INDEX[f"{key}_L"]]] = level
    aus = ph.activations_to_aus(activations)[0].reshape(len(ph.ACTION_UNITS), 2)
    shown = {au for au, row in zip(ph.ACTION_UNITS, aus) if row.min() > 0.5}
    present = {au for au, row in zip(ph.ACTION_UNITS, aus) if row.max() > 0}
    assert shown == present == set(ph.EMOTION_AUS[emotion])


def au_column(au: int, side: str) -> int:
    return ph.AU_CHANNELS.index(f"AU{au:02d}_{side}")


def test_emotion_protocol_shows_each_emotion_with_its_aus_and_varied_intensity_and_asymmetry():
    result = protocols.generate_protocol("emotions", 90.0, 30.0, np.random.default_rng(5), tonic=NO_TONIC,
                                  blink_rate_per_min=0.0)
    aus = ph.activations_to_aus(result.activations)
    times = np.arange(len(aus)) / result.fps
    events = [a for a in result.annotations if a.description.startswith("emotion/")]
    assert {e.description.split("/")[1] for e in events} == set(ph.EMOTION_AUS)
    apex_smiles, left_right = [], []
    for event in events:
        emotion = event.description.split("/")[1]
        window = (times >= event.onset_s) & (times <= event.onset_s + event.duration_s + 0.2)
        peak = aus[window].max(axis=0)
        for au in ph.ACTION_UNITS:
            both = max(peak[au_column(au, "L")], peak[au_column(au, "R")])
            if au in ph.EMOTION_AUS[emotion]:
                assert both >= 0.1, (emotion, au, both)
            else:
                assert both == 0.0, (emotion, au, both)
        first_au = ph.EMOTION_AUS[emotion][0]
        left_right.append(peak[au_column(first_au, "L")] / max(peak[au_column(first_au, "R")], 1e-9))
        if emotion == "happiness":
            apex_smiles.append(max(peak[au_column(12, "L")], peak[au_column(12, "R")]))
    assert max(left_right) / min(left_right) > 1.3  # left/right asymmetry varies between events
    assert len(apex_smiles) >= 2 and max(apex_smiles) - min(apex_smiles) > 0.05  # intensity varies
    # the face follows onset -> apex -> offset: zero before the first event, zero again after it
    first = events[0]
    before = times < first.onset_s
    after = (times > first.onset_s + first.duration_s + 0.2) & (times < events[1].onset_s)
    assert aus[before].max() == 0.0 and aus[after].max() == 0.0


SCHAEDE_SHAPES = {
    "raise_eyebrows": ("browInnerUp", "browOuterUpLeft"),
    "close_eyes_gently": ("eyeBlinkLeft", "eyeBlinkRight"),
    "close_eyes_tightly": ("eyeBlinkLeft", "eyeSquintRight", "cheekSquintLeft"),
    "wrinkle_nose": ("noseSneerLeft", "noseSneerRight"),
    "smile_closed": ("mouthSmileLeft", "mouthSmileRight"),
    "smile_open": ("mouthSmileLeft", "jawOpen"),
    "purse_lips": ("mouthPucker",),
    "blow_cheeks": ("cheekPuff", "mouthPressLeft"),
    "snarl": ("mouthUpperUpLeft", "mouthUpperUpRight"),
    "depress_lower_lip": ("mouthLowerDownLeft", "mouthLowerDownRight"),
}


def test_schaede_protocol_runs_the_eleven_exercises_in_order_with_their_shapes():
    assert len(ph.SCHAEDE_EXERCISES) == 11
    result = protocols.generate_protocol("schaede", 75.0, 30.0, np.random.default_rng(1), tonic=NO_TONIC,
                                  blink_rate_per_min=0.0)
    arkit = np.clip(ph.activations_to_arkit(result.activations) + result.exogenous, 0, 1)
    gazeless = arkit.copy()
    gazeless[:, [ARKIT52_INDEX[n] for n in ARKIT52 if n.startswith("eyeLook")]] = 0
    times = np.arange(len(arkit)) / result.fps
    events = [a for a in result.annotations if a.description.startswith("exercise/")]
    names = [e.description.split("/")[1] for e in events]
    assert names[:11] == [e.name for e in ph.SCHAEDE_EXERCISES]
    for event, name in zip(events[:11], names):
        window = (times >= event.onset_s) & (times <= event.onset_s + event.duration_s)
        peak = gazeless[window].max(axis=0)
        if name == "rest":
            assert peak.max() == 0.0
            continue
        for shape in SCHAEDE_SHAPES[name]:
            assert peak[ARKIT52_INDEX[shape]] > 0.2, (name, shape, peak[ARKIT52_INDEX[shape]])


def test_mixed_protocol_mixes_many_muscles_one_and_two_sided():
    result = protocols.generate_protocol("mixed", 120.0, 30.0, np.random.default_rng(2), tonic=NO_TONIC,
                                  blink_rate_per_min=0.0)
    events = [a for a in result.annotations if a.description.startswith("mixed/")]
    assert len(events) > 40
    used = {key for e in events for key in e.description.split("/")[1].split("+")}
    assert len(used) >= 15
    sides = {e.description.split("/")[2] for e in events}
    assert sides == {"both", "L", "R"}
    assert any("+" in e.description for e in events)  # real mixtures, not one muscle at a time
    times = np.arange(len(result.activations)) / result.fps
    for event in events[:20]:
        keys, side = event.description.split("/")[1].split("+"), event.description.split("/")[2]
        window = (times >= event.onset_s) & (times <= event.onset_s + event.duration_s)
        for key in keys:
            for s in (("L", "R") if side == "both" else (side,)):
                assert result.activations[window, ph.UNIT_INDEX[f"{key}_{s}"]].max() > 0.1


def test_blinks_idle_activity_and_gaze():
    tonic = np.full(len(ph.UNIT_NAMES), 0.01)
    result = protocols.generate_protocol("mixed", 240.0, 60.0, np.random.default_rng(3), tonic=tonic,
                                  blink_rate_per_min=20.0)
    blinks = [a for a in result.annotations if a.description == "blink"]
    assert 50 <= len(blinks) <= 100  # ~20 a minute for 4 minutes (Poisson, ≥1 s apart)
    arkit = ph.activations_to_arkit(result.activations)
    frames = (np.array([b.onset_s + 0.1 for b in blinks]) * result.fps).astype(int)
    assert np.median(arkit[frames, ARKIT52_INDEX["eyeBlinkLeft"]]) > 0.7
    # idle: every unit keeps a small, fluctuating rest activity
    quiet = result.activations[:, ph.UNIT_INDEX["Mass_L"]]
    assert 0.002 < np.median(quiet) < 0.05 and quiet.std() > 0
    # exogenous part: gaze only (no muscle drives it), never an observable shape
    observable = [ARKIT52_INDEX[n] for n in ARKIT_OBSERVABLE]
    assert result.exogenous[:, observable].max() == 0.0
    gaze = [ARKIT52_INDEX[n] for n in ARKIT_UNOBSERVABLE if n.startswith("eyeLook")]
    assert result.exogenous[:, gaze].max() > 0.05
    assert result.exogenous.max() <= 1.0


def test_same_random_stream_same_protocol_and_different_stream_different():
    a = protocols.generate_protocol("emotions", 20.0, 60.0, np.random.default_rng(7))
    b = protocols.generate_protocol("emotions", 20.0, 60.0, np.random.default_rng(7))
    c = protocols.generate_protocol("emotions", 20.0, 60.0, np.random.default_rng(8))
    assert a.activations.tobytes() == b.activations.tobytes()
    assert a.annotations == b.annotations
    assert a.activations.tobytes() != c.activations.tobytes()
    assert a.activations.shape == (1200, len(ph.UNIT_NAMES)) and a.activations.dtype == np.float32


def test_bad_input_is_refused_with_a_readable_message():
    with pytest.raises(InputError, match="unknown protocol 'smiles'"):
        protocols.generate_protocol("smiles", 10.0, 60.0, np.random.default_rng(0))
    with pytest.raises(InputError, match="duration and fps must be positive"):
        protocols.generate_protocol("mixed", 0.0, 60.0, np.random.default_rng(0))
    with pytest.raises(InputError, match=r"\(frames, 40\)"):
        ph.activations_to_arkit(np.zeros((5, 22)))
    with pytest.raises(InputError, match="unknown emotion"):
        protocols.emotion_unit_levels("contempt")
