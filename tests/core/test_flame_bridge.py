"""The ARKit ↔ FLAME bridge computed from a FLAME file, on a known-answer face made here.

The test model is the open head remeshed (another vertex count and other triangles), warped
(longer face, wider jaw), tilted and scaled, with its ARKit targets carried over and packed into
a 100-component expression basis by a known random matrix, plus a jaw joint for jawOpen
(``tests.flame_fixtures.make_face_flame_arrays``). No real FLAME file is used.
"""
import numpy as np
import pytest

from eifer_blender.core.errors import InputError
from eifer_blender.core.expression.flame_params import FlameParams
from eifer_blender.core.expression.spaces import ARKIT52, ARKIT_OBSERVABLE, FLAME_EXPRESSION_NAMES
from eifer_blender.core.heads import bridge as bridge_module
from eifer_blender.core.heads.flame_file import load_flame_model
from eifer_blender.core.heads.flame_model import flame_forward
from eifer_blender.core.heads.openhead import load_open_head
from eifer_blender.core.tracks import ExpressionTrack
from tests import flame_fixtures as ff

OBSERVABLE = [ARKIT52.index(n) for n in ARKIT_OBSERVABLE]


@pytest.fixture(scope="module")
def face(tmp_path_factory):
    """(FLAME file, answer, bridge, cache folder): the bridge built once through the cache."""
    arrays, answer = ff.make_face_flame_arrays(seed=0)
    folder = tmp_path_factory.mktemp("bridge")
    path = ff.write_flame_npz(folder / "face_model.npz", arrays)
    cache = folder / "user_cache"
    calls = []
    built = bridge_module.load_or_build_bridge(path, cache, progress=lambda f, m: calls.append((f, m)))
    return path, answer, built, cache, calls


def _bridged_mesh(model, params):
    """FLAME vertices for bridge parameter rows (k, P): expression 1..50 and jaw."""
    params = np.atleast_2d(params)
    expression = np.zeros((len(params), model.n_expression))
    expression[:, :50] = params[:, :50]
    pose = np.zeros((len(params), 15))
    pose[:, 6:9] = params[:, 50:53]
    return flame_forward(model, expression=expression, pose=pose).vertices_m


def test_the_test_model_is_another_topology_and_another_face(face):
    path, answer, _, _, _ = face
    model = load_flame_model(path)
    head = load_open_head()
    assert model.n_vertices == 5023 != head.n_vertices
    assert model.faces.shape[1] == 3 and len(model.faces) != 2 * head.n_faces
    before, after = answer["proportions"]["before"], answer["proportions"]["after"]
    assert after["face_length_m"] / before["face_length_m"] >= 1.10
    assert after["jaw_width_m"] / before["jaw_width_m"] >= 1.10
    assert model.n_expression == 100


def test_driving_flame_through_the_bridge_reproduces_each_driven_shape(face):
    """Acceptance: each shape the network drives, within 10 % of its own displacement (RMS
    over the face region), through FLAME's full forward model (jaw skinning included)."""
    path, answer, built, _, _ = face
    model = load_flame_model(path)
    mask = answer["face_mask"]
    rest = flame_forward(model).vertices_m
    moved = _bridged_mesh(model, built.arkit_to_flame[OBSERVABLE]) - rest
    targets = answer["targets_m"][OBSERVABLE]
    error = np.sqrt(np.sum((moved - targets)[:, mask] ** 2, axis=(1, 2)))
    size = np.sqrt(np.sum(targets[:, mask] ** 2, axis=(1, 2)))
    relative = dict(zip(ARKIT_OBSERVABLE, error / size))
    worst = max(relative, key=relative.get)
    assert relative[worst] < 0.10, f"{worst}: {relative[worst]:.1%} (all: {relative})"
    # the bridge's own residuals say the same, shape by shape
    own = built.residuals[OBSERVABLE]
    assert np.all(np.isfinite(own)) and np.all(own < 0.15)


def test_jaw_open_is_a_jaw_rotation(face):
    _, answer, built, _, _ = face
    jaw = built.arkit_to_flame[ARKIT52.index("jawOpen"), 50:53]
    assert jaw[0] == pytest.approx(answer["jaw_angle"], abs=0.03)
    assert np.abs(jaw[1:]).max() < 0.05
    # non-jaw shapes do not use the jaw
    others = [ARKIT52.index(n) for n in ARKIT52 if n not in bridge_module.JAW_SHAPES]
    assert np.abs(built.arkit_to_flame[others, 50:53]).max() == 0.0


def test_arkit_track_round_trips_through_flame(face):
    """Acceptance: ARKit → bridge → FLAME → reverse bridge → ARKit within 0.05."""
    _, _, built, _, _ = face
    rng = np.random.default_rng(3)
    n_frames = 300
    weights = np.zeros((n_frames, 52))
    active = rng.random((n_frames, len(OBSERVABLE))) < 0.3
    weights[:, OBSERVABLE] = rng.random((n_frames, len(OBSERVABLE))) * active
    weights[:50, OBSERVABLE] = np.linspace(0, 1, 50)[:, None]  # everything at once, too
    track = ExpressionTrack(weights, ARKIT52, 30.0, "arkit52", "1", 1.5, {"source": "test"})
    flame_track = built.forward_track(track)
    assert flame_track.space == "flame" and flame_track.names == FLAME_EXPRESSION_NAMES
    assert flame_track.start_s == 1.5 and flame_track.fps == 30.0
    # through the FLAME parameter container a tracker file or the FLAME rig gives
    params = FlameParams.from_expression_track(flame_track)
    back = built.reverse_track(params.to_expression_track(start_s=1.5))
    assert back.space == "arkit52" and back.names == ARKIT52
    assert np.abs(back.values - weights).max() <= 0.05
    assert back.values.min() >= 0.0 and back.values.max() <= 1.0
    assert "bridge" in back.meta and built.sha256 == back.meta["bridge"]


def test_reverse_ignores_what_it_cannot_see_and_clips(face):
    _, _, built, _, _ = face
    names = FLAME_EXPRESSION_NAMES[:50]  # a tracker track without jaw or eyelids
    values = np.random.default_rng(0).normal(scale=3.0, size=(20, 50))
    weights = built.reverse_track(ExpressionTrack(values, names, 25.0, "flame", "1")).values
    assert weights.min() >= 0.0 and weights.max() <= 1.0
    unobservable = [ARKIT52.index(n) for n in ARKIT52 if n not in ARKIT_OBSERVABLE]
    assert np.all(weights[:, unobservable] == 0.0)
    with pytest.raises(InputError, match="arkit52"):
        built.forward_track(ExpressionTrack(values, names, 25.0, "flame", "1"))


def test_bridge_reports_its_fit(face):
    _, _, built, _, calls = face
    assert built.registration_residual_m < 0.002 and built.registration_relative < 0.05
    text = built.summary()
    assert "residual" in text and built.sha256[:12] in text
    assert np.isnan(built.residual("tongueOut"))  # FLAME has no tongue
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(calls) > 5


def test_cache_hit_loads_without_rebuilding(face, monkeypatch):
    path, _, built, cache, _ = face
    files = sorted(p.name for p in cache.glob("flame_bridge_*.npz"))
    assert files == [bridge_module.bridge_cache_path(cache, built.sha256).name]
    assert built.sha256 == bridge_module.file_sha256(path)
    calls = []
    monkeypatch.setattr(bridge_module, "build_bridge", lambda *a, **k: calls.append(1))
    monkeypatch.setattr(bridge_module, "file_sha256", lambda *a: calls.append("hash"))
    again = bridge_module.load_or_build_bridge(path, cache)
    assert calls == []  # neither rebuilt nor re-hashed (the index remembers size and mtime)
    assert again.meta["cached"].endswith(files[0])
    np.testing.assert_array_equal(again.arkit_to_flame, built.arkit_to_flame)
    np.testing.assert_array_equal(again.flame_to_arkit, built.flame_to_arkit)
    np.testing.assert_array_equal(again.residuals, built.residuals)
    assert again.parameter_names == built.parameter_names


def test_a_damaged_cache_is_rebuilt(face, tmp_path, monkeypatch):
    path, _, built, cache, _ = face
    folder = tmp_path / "cache"
    folder.mkdir()
    for item in cache.iterdir():
        (folder / item.name).write_bytes(item.read_bytes())
    target = bridge_module.bridge_cache_path(folder, built.sha256)
    target.write_bytes(b"not a bridge")
    calls = []
    monkeypatch.setattr(bridge_module, "build_bridge", lambda *a, **k: calls.append(1) or built)
    assert bridge_module.load_or_build_bridge(path, folder) is built
    assert calls == [1]


def test_a_template_that_is_not_a_face_is_refused_and_nothing_cached(tmp_path):
    arrays = ff.make_flame_arrays(n_vertices=2000, n_faces=4000, seed=5)
    path = ff.write_flame_npz(tmp_path / "random.npz", arrays)
    cache = tmp_path / "cache"
    with pytest.raises(InputError, match=r"not look like a face.*residual of \d+\.\d+ mm"):
        bridge_module.load_or_build_bridge(path, cache)
    assert not list(cache.glob("flame_bridge_*.npz"))


def test_eyelid_blendshapes_are_used_where_the_file_has_them(tmp_path):
    arrays, answer = ff.make_face_flame_arrays(seed=1, eyelids=True)
    path = ff.write_flame_npz(tmp_path / "with_eyelids.npz", arrays)
    built = bridge_module.load_or_build_bridge(path, tmp_path / "cache")
    assert built.has_eyelids
    lid = built.parameter_names.index("eyelid_l")
    left, right = ARKIT52.index("eyeBlinkLeft"), ARKIT52.index("eyeBlinkRight")
    assert built.arkit_to_flame[left, lid] == pytest.approx(1.0, abs=0.1)
    assert abs(built.arkit_to_flame[right, lid]) < 0.1
    assert built.arkit_to_flame[right, lid + 1] == pytest.approx(1.0, abs=0.1)
    assert built.residual("eyeBlinkLeft") < 0.10
    # shapes that are not about the eyes leave the eyelids alone
    assert built.arkit_to_flame[ARKIT52.index("mouthSmileLeft"), lid] == 0.0


def test_bridge_as_a_retarget_matrix(face):
    _, _, built, _, _ = face
    retarget = built.as_retarget()
    weights = np.random.default_rng(1).random((5, 52))
    track = ExpressionTrack(weights, ARKIT52, 30.0, "arkit52", "1")
    np.testing.assert_allclose(retarget.apply(track).values, built.forward_track(track).values)


def test_residual_table_names_what_each_shape_uses(face):
    _, _, built, _, _ = face
    table = {name: (residual, groups) for name, residual, groups in built.residual_table()}
    assert set(table) == set(ARKIT52)
    assert "jaw" in table["jawOpen"][1] and "jaw" not in table["mouthSmileLeft"][1]
    assert table["mouthSmileLeft"][0] == pytest.approx(built.residual("mouthSmileLeft"))
