import numpy as np
import pytest

from eifer_blender.core.errors import InputError
from eifer_blender.core.expression.retarget import load_retarget
from eifer_blender.core.expression.spaces import ARKIT52
from eifer_blender.core.tracks import ExpressionTrack


def test_npy_inputs_by_outputs_maps_arkit_to_flame_exp_and_jaw(tmp_path):
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(52, 53))  # arkit @ matrix -> 50 exp + 3 jaw
    np.save(tmp_path / "bridge.npy", matrix)
    retarget = load_retarget(tmp_path / "bridge.npy")
    assert retarget.output_names[:2] == ("exp001", "exp002") and retarget.output_names[-3:] == ("jaw_x", "jaw_y", "jaw_z")
    weights = rng.random((5, 52))
    out = retarget.apply(ExpressionTrack(weights, ARKIT52, 30, "arkit52", "1"))
    np.testing.assert_allclose(out.values, weights @ matrix)
    assert out.space == "flame"


def test_npz_with_names_and_partial_rig(tmp_path):
    np.savez(tmp_path / "m.npz", matrix=np.array([[2.0, 0.0], [0.0, 1.0]]), input_names=["jawOpen", "mouthSmileLeft"],
             output_names=["jaw_x", "exp001"], bias=np.array([0.0, 0.5]))
    retarget = load_retarget(tmp_path / "m.npz")
    track = ExpressionTrack(np.array([[0.5], [1.0]]), ["jawOpen"], 30, "arkit52", "1")  # no smile key on this rig
    np.testing.assert_allclose(retarget.apply(track).values, [[1.0, 0.5], [2.0, 0.5]])


@pytest.mark.parametrize("content, message", [
    (np.zeros((10, 10)), "no side of 51 or 52"),
    (np.full((52, 53), np.nan), "NaN"),
    (np.zeros(5), "2-D"),
])
def test_bad_matrices_are_refused(tmp_path, content, message):
    np.save(tmp_path / "bad.npy", content)
    with pytest.raises(InputError, match=message):
        load_retarget(tmp_path / "bad.npy")


def test_pickled_npy_is_refused_without_loading(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="not a readable"):
        load_retarget(tmp_path / "obj.npy")
