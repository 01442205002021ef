"""FLAME loader and forward model, on synthetic FLAME-format files the tests build.

No real FLAME file is used (it may not enter the repo). The 2020-style pickle is written the way
Python 2 + chumpy wrote ``generic_model.pkl``; chumpy itself is not installed.
"""
import importlib.util
import pickle

import numpy as np
import pytest
import scipy.sparse
import torch
from scipy.spatial.transform import Rotation

from eifer_blender.core.errors import InputError, UnsafePickleError
from eifer_blender.core.expression import flame_params
from eifer_blender.core.heads import flame_file as flame
from eifer_blender.core.heads import flame_model
from eifer_blender.core.heads.flame_file import FlameModelError
from tests import flame_fixtures as ff


@pytest.fixture(scope="module")
def real_2020(tmp_path_factory):
    """Real-size (5023 × 3 × 400) FLAME-2020-style pickle, built once for this module."""
    arrays = ff.make_flame_arrays(**ff.REAL_SIZES, seed=1)
    path = ff.write_flame2020_pkl(tmp_path_factory.mktemp("flame") / "generic_model.pkl", arrays)
    return path, arrays


@pytest.fixture(scope="module")
def real_model(real_2020):
    return flame.load_flame_model(real_2020[0])


@pytest.fixture
def small_arrays():
    return ff.make_flame_arrays(**ff.SMALL, seed=2)


@pytest.fixture
def small_model(small_arrays, tmp_path):
    return flame.load_flame_model(ff.write_flame2020_pkl(tmp_path / "generic_model.pkl",
                                                         small_arrays))


# ------------------------------------------------------------------------------- loading


def test_fixture_pickle_references_chumpy_exactly_as_official_files(real_2020):
    data = real_2020[0].read_bytes()
    assert data[:2] == b"\x80\x02"  # protocol 2
    assert b"cchumpy.ch\nCh\n" in data  # GLOBAL chumpy.ch Ch
    assert b"cscipy.sparse.csc\ncsc_matrix\n" in data
    assert b"c__builtin__\nset\n" in data  # chumpy's _dirty_vars, as Python 2 wrote it
    assert b"U\nv_template" in data  # Python 2 str keys (SHORT_BINSTRING)
    if importlib.util.find_spec("chumpy") is None:
        with pytest.raises(ModuleNotFoundError, match="chumpy"):
            pickle.loads(data, encoding="latin1")


def test_real_size_2020_pickle_loads_to_plain_float64_arrays(real_2020, real_model):
    _, arrays = real_2020
    m = real_model
    assert m.v_template_m.shape == (5023, 3) and m.faces.shape == (9976, 3)
    assert m.shapedirs.shape == (5023, 3, 400) and m.posedirs.shape == (5023, 3, 36)
    assert m.j_regressor.shape == (5, 5023) and m.weights.shape == (5023, 5)
    assert (m.n_shape, m.n_expression) == (300, 100)
    assert m.shapedirs.dtype == np.float64 and isinstance(m.shapedirs, np.ndarray)
    np.testing.assert_array_equal(m.shapedirs, arrays["shapedirs"])
    np.testing.assert_array_equal(m.v_template_m, arrays["v_template"])
    np.testing.assert_array_equal(m.j_regressor, arrays["J_regressor"].toarray())
    np.testing.assert_array_equal(m.faces, arrays["f"].astype(np.int64))
    np.testing.assert_array_equal(m.parents, [-1, 0, 1, 1, 1])
    np.testing.assert_array_equal(m.expression_dirs, arrays["shapedirs"][..., 300:])
    assert m.version == "2020" and m.version_basis == "file name"
    assert m.meta["bs_type"] == "lrotmin"


def test_2023_open_is_detected_by_its_metadata_whatever_the_file_name(small_arrays, tmp_path):
    path = ff.write_flame2023_open_pkl(tmp_path / "my_head.pkl", small_arrays)
    m = flame.load_flame_model(path)
    assert m.version == "2023 Open" and m.version_basis == "supr_expression_metadata key"
    assert m.meta["supr_expression_metadata"]["n_expr"] == 100
    np.testing.assert_array_equal(m.shapedirs, small_arrays["shapedirs"])


def test_open_metadata_sets_the_expression_count(tmp_path):
    arrays = ff.make_flame_arrays(n_vertices=40, n_faces=30, n_shape=20, n_expression=10)
    path = ff.write_flame2023_open_pkl(tmp_path / "open.pkl", arrays,
                                       metadata={"n_expr": 10, "expr_components": "last_10"})
    m = flame.load_flame_model(path)
    assert (m.n_shape, m.n_expression) == (20, 10)


@pytest.mark.parametrize("name, version, basis", [
    ("generic_model.pkl", "2020", "file name"),
    ("flame2023.pkl", "2023", "file name"),
    ("flame2023_no_jaw.pkl", "2023 (no jaw)", "file name"),
    ("head.pkl", "2020 or 2023", "none"),
])
def test_2020_and_2023_share_a_layout_so_only_the_name_tells_them_apart(
        small_arrays, tmp_path, name, version, basis):
    m = flame.load_flame_model(ff.write_flame2020_pkl(tmp_path / name, small_arrays))
    assert (m.version, m.version_basis) == (version, basis)


def test_npz_and_pickle_give_the_same_model(small_arrays, tmp_path):
    from_pkl = flame.load_flame_model(ff.write_flame2020_pkl(tmp_path / "a.pkl", small_arrays))
    from_npz = flame.load_flame_model(ff.write_flame_npz(tmp_path / "a.npz", small_arrays))
    for key in ("v_template_m", "faces", "shapedirs", "posedirs", "j_regressor", "weights",
                "parents"):
        np.testing.assert_array_equal(getattr(from_pkl, key), getattr(from_npz, key))


def test_save_flame_npz_round_trips_model_and_version(small_arrays, tmp_path):
    original = flame.load_flame_model(
        ff.write_flame2023_open_pkl(tmp_path / "o.pkl", small_arrays))
    again = flame.load_flame_model(flame.save_flame_npz(original, tmp_path / "converted.npz"))
    assert again.version == "2023 Open"
    assert again.meta["supr_expression_metadata"]["expr_components"] == "last_100"
    np.testing.assert_array_equal(again.shapedirs, original.shapedirs)
    np.testing.assert_array_equal(again.parents, original.parents)


def test_chumpy_select_is_evaluated_like_chumpy(small_arrays, tmp_path):
    """MANO-style ``chumpy.reordering.Select`` over a Ch: a.ravel()[idxs].reshape(shape)."""
    wider = np.concatenate([small_arrays["shapedirs"], np.ones((60, 3, 7))], axis=2)
    idxs = np.arange(wider.size).reshape(wider.shape)[..., :400].ravel()
    arrays = dict(small_arrays)
    arrays["shapedirs"] = ff.chumpy_select(ff.chumpy_ch(wider), idxs, (60, 3, 400))
    path = ff.write_flame2020_pkl(tmp_path / "sel.pkl", arrays, chumpy_keys=())
    np.testing.assert_array_equal(flame.load_flame_model(path).shapedirs,
                                  small_arrays["shapedirs"])


def test_chumpy_operation_it_cannot_evaluate_is_named(small_arrays, tmp_path):
    arrays = dict(small_arrays)
    arrays["shapedirs"] = ff.PickledAs("chumpy.ch_ops", "add", {
        "a": ff.chumpy_ch(small_arrays["shapedirs"]), "b": ff.chumpy_ch(small_arrays["shapedirs"])})
    path = ff.write_flame2020_pkl(tmp_path / "op.pkl", arrays, chumpy_keys=())
    with pytest.raises(FlameModelError, match=r"op\.pkl.*'shapedirs'.*chumpy\.ch_ops\.add"):
        flame.load_flame_model(path)


# ------------------------------------------------------------------------------- safety


@pytest.mark.parametrize("kind, named", [
    ("open", r"\bopen\b"), ("os.system", r"\.system\b"), ("eval", r"\beval\b"),
    ("subprocess", r"\.call\b"),
])
@pytest.mark.parametrize("inside_model", [False, True])
def test_pickle_that_would_run_code_is_refused_without_running_it(
        tmp_path, kind, named, inside_model):
    target = tmp_path / "created_by_payload"
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(ff.malicious_pickle_bytes(target, kind, inside_model=inside_model))
    with pytest.raises(UnsafePickleError, match=named) as info:
        flame.load_flame_model(path)
    assert str(path) in str(info.value) and "never needs" in str(info.value)
    assert isinstance(info.value, InputError)
    assert not target.exists()


def test_the_open_payload_is_live_so_the_refusal_test_can_fail(tmp_path):
    target = tmp_path / "created_by_plain_pickle"
    pickle.loads(ff.malicious_pickle_bytes(target, "open"))  # what plain pickle.load would do
    assert target.exists()


def test_global_outside_allow_list_is_refused_even_if_harmless(small_arrays, tmp_path):
    arrays = dict(small_arrays, J_regressor=small_arrays["J_regressor"].toarray())
    arrays["extra"] = ff.PickledAs("collections", "Counter", {})
    path = ff.write_flame2020_pkl(tmp_path / "x.pkl", arrays, chumpy_keys=())
    with pytest.raises(UnsafePickleError, match=r"collections\.Counter"):
        flame.load_flame_model(path)


# ------------------------------------------------------------------------------- malformed


def _write(tmp_path, arrays, name="generic_model.pkl"):
    return ff.write_flame2020_pkl(tmp_path / name, arrays)


def test_missing_keys_are_listed(small_arrays, tmp_path):
    del small_arrays["posedirs"], small_arrays["weights"]
    path = _write(tmp_path, small_arrays)
    with pytest.raises(FlameModelError, match=r"generic_model\.pkl.*missing key\(s\) posedirs, "
                                              r"weights"):
        flame.load_flame_model(path)


@pytest.mark.parametrize("key, bad, expected", [
    ("posedirs", np.zeros((60, 3, 27)),
     r"'posedirs' has shape \(60, 3, 27\), expected \(60, 3, 36\)"),
    ("weights", np.full((59, 5), 0.2), r"'weights' has shape \(59, 5\), expected \(60, 5\)"),
    ("v_template", np.zeros((60, 2)), r"'v_template' has shape \(60, 2\), expected \(any, 3\)"),
    ("f", np.zeros((10, 4), np.uint32), r"'f' has shape \(10, 4\), expected \(any, 3\)"),
    ("J_regressor", np.zeros((4, 60)), r"'J_regressor' has shape \(4, 60\), expected \(5, 60\)"),
    ("shapedirs", np.zeros((60, 3, 50)), r"'shapedirs' has 50 columns"),
])
def test_wrong_shapes_name_key_expected_and_got(small_arrays, tmp_path, key, bad, expected):
    small_arrays[key] = bad
    with pytest.raises(FlameModelError, match=expected):
        flame.load_flame_model(_write(tmp_path, small_arrays))


def test_nan_in_model_is_reported(small_arrays, tmp_path):
    small_arrays["shapedirs"][3, 1, 7] = np.nan
    small_arrays["shapedirs"][4, 0, 0] = np.inf
    with pytest.raises(FlameModelError, match=r"'shapedirs' contains 2 NaN/Inf"):
        flame.load_flame_model(_write(tmp_path, small_arrays))


@pytest.mark.parametrize("fraction", [0.999, 0.5, 0.01])
def test_truncated_pickle_is_reported(real_2020, tmp_path, fraction):
    cut = ff.truncate_file(real_2020[0], tmp_path / "generic_model.pkl", fraction)
    with pytest.raises(FlameModelError, match=r"generic_model\.pkl.*(ends early|damaged)"):
        flame.load_flame_model(cut)


def test_truncated_npz_is_reported(small_arrays, tmp_path):
    good = ff.write_flame_npz(tmp_path / "good.npz", small_arrays)
    cut = ff.truncate_file(good, tmp_path / "cut.npz", 0.6)
    with pytest.raises(FlameModelError, match=r"cut\.npz.*(truncated|damaged)"):
        flame.load_flame_model(cut)


def test_npz_with_pickled_objects_is_refused(small_arrays, tmp_path):
    arrays = dict(small_arrays, J_regressor=small_arrays["J_regressor"].toarray())
    arrays["shapedirs"] = np.array([arrays["shapedirs"], "x"], dtype=object)
    path = tmp_path / "obj.npz"
    np.savez(path, **arrays)
    with pytest.raises(FlameModelError, match=r"obj\.npz.*Python objects"):
        flame.load_flame_model(path)


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"v 0 0 0\nf 1 2 3\n", "not a FLAME model file"),
    (b"\x89PNG\r\n\x1a\n" + bytes(100), "not a FLAME model file"),
])
def test_files_that_are_not_models(tmp_path, content, message):
    path = tmp_path / "model.pkl"
    path.write_bytes(content)
    with pytest.raises(FlameModelError, match=message):
        flame.load_flame_model(path)


def test_missing_file(tmp_path):
    with pytest.raises(FlameModelError, match="no such file"):
        flame.load_flame_model(tmp_path / "nope.pkl")


def test_pickle_of_something_else_is_not_a_model(tmp_path):
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([np.zeros(3)], protocol=2))
    with pytest.raises(FlameModelError, match="holds a list, not a FLAME model"):
        flame.load_flame_model(path)


def test_face_index_out_of_range(small_arrays, tmp_path):
    small_arrays["f"][5, 2] = 60
    with pytest.raises(FlameModelError, match=r"'f' refers to vertex 60.*0\.\.59"):
        flame.load_flame_model(_write(tmp_path, small_arrays))


def test_weights_that_do_not_sum_to_one(small_arrays, tmp_path):
    small_arrays["weights"][7] *= 2
    with pytest.raises(FlameModelError, match=r"'weights'.*vertex 7 sums to 2"):
        flame.load_flame_model(_write(tmp_path, small_arrays))


def test_broken_joint_tree(small_arrays, tmp_path):
    small_arrays["kintree_table"][0, 2] = 3  # jaw's parent is a later joint
    with pytest.raises(FlameModelError, match=r"'kintree_table'.*joint 2.*broken"):
        flame.load_flame_model(_write(tmp_path, small_arrays))


def test_unsupported_skinning_style(small_arrays, tmp_path):
    small_arrays["bs_style"] = "dqs"
    with pytest.raises(FlameModelError, match=r"'bs_style' is 'dqs'"):
        flame.load_flame_model(_write(tmp_path, small_arrays))


def test_string_where_numbers_belong(small_arrays, tmp_path):
    small_arrays["weights"] = "oops"
    with pytest.raises(FlameModelError, match=r"'weights' holds a .*expected numbers"):
        flame.load_flame_model(_write(tmp_path, small_arrays))


# ------------------------------------------------------------------------------- rotations


def test_rodrigues_matches_scipy_including_tiny_and_large_angles():
    rng = np.random.default_rng(3)
    vectors = np.concatenate([rng.normal(size=(50, 3)), rng.normal(size=(5, 3)) * 1e-7,
                              np.zeros((1, 3)), [[np.pi, 0, 0], [0, 0, 3.1]]])
    np.testing.assert_allclose(flame_model.rodrigues(vectors),
                               Rotation.from_rotvec(vectors).as_matrix(), atol=1e-13)
    np.testing.assert_allclose(flame_model.rodrigues(vectors.reshape(-1, 1, 3))[:, 0],
                               flame_model.rodrigues(vectors), atol=0)


def test_matrix_to_axis_angle_inverts_rodrigues():
    rng = np.random.default_rng(4)
    directions = rng.normal(size=(40, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    angles = np.concatenate([rng.uniform(1e-6, np.pi - 1e-3, 38), [0.0, np.pi - 1e-9]])
    vectors = directions * angles[:, None]
    back = flame_model.matrix_to_axis_angle(flame_model.rodrigues(vectors))
    np.testing.assert_allclose(flame_model.rodrigues(back), flame_model.rodrigues(vectors), atol=1e-12)
    np.testing.assert_allclose(back[:38], vectors[:38], atol=1e-9)


def test_quaternion_matrix_and_driver_expressions_agree_with_scipy():
    quaternions = np.random.default_rng(5).normal(size=(20, 4))
    quaternions /= np.linalg.norm(quaternions, axis=1, keepdims=True)
    expected = Rotation.from_quat(quaternions[:, [1, 2, 3, 0]]).as_matrix()  # scipy is xyzw
    np.testing.assert_allclose(flame_model.quaternion_to_matrix(quaternions), expected, atol=1e-13)
    for (w, x, y, z), matrix in zip(quaternions, expected):
        values = [eval(e, {}, dict(w=w, x=x, y=y, z=z))  # noqa: S307 - our own constants
                  for e in flame_model.POSE_FEATURE_QUATERNION_EXPRESSIONS]
        np.testing.assert_allclose(np.reshape(values, (3, 3)), matrix - np.eye(3), atol=1e-13)


# ------------------------------------------------------------------------------- forward


def _torch_flame(m: flame.FlameModel, betas, pose):
    """Independent reference in torch (FLAME_PyTorch structure; rotations via matrix_exp)."""
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)  # noqa: E731
    betas, pose = t(betas), t(pose)
    batch, n_joints = betas.shape[0], m.n_joints
    v_shaped = t(m.v_template_m) + torch.einsum("bl,mkl->bmk", betas, t(m.shapedirs))
    joints = torch.einsum("bik,ji->bjk", v_shaped, t(m.j_regressor))
    axis = pose.reshape(batch * n_joints, 3)
    skew = torch.zeros(batch * n_joints, 3, 3, dtype=torch.float64)
    skew[:, 0, 1], skew[:, 0, 2], skew[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    skew = skew - skew.transpose(1, 2)
    rot = torch.linalg.matrix_exp(skew).reshape(batch, n_joints, 3, 3)
    feature = (rot[:, 1:] - torch.eye(3, dtype=torch.float64)).reshape(batch, -1)
    n_pose = m.posedirs.shape[2]
    v_posed = v_shaped + (feature @ t(m.posedirs).reshape(-1, n_pose).T).reshape(batch, -1, 3)
    parents = m.parents
    rel = joints.clone()
    rel[:, 1:] -= joints[:, parents[1:]]
    local = torch.zeros(batch, n_joints, 4, 4, dtype=torch.float64)
    local[..., :3, :3], local[..., :3, 3], local[..., 3, 3] = rot, rel, 1
    chain = [local[:, 0]]
    for i in range(1, n_joints):
        chain.append(chain[parents[i]] @ local[:, i])
    world = torch.stack(chain, dim=1)
    homogeneous = torch.nn.functional.pad(joints, [0, 1]).unsqueeze(-1)
    relative = world - torch.nn.functional.pad(world @ homogeneous, [3, 0])
    skin = (t(m.weights) @ relative.reshape(batch, n_joints, 16)).reshape(batch, -1, 4, 4)
    v_h = torch.nn.functional.pad(v_posed, [0, 1], value=1.0).unsqueeze(-1)
    return (skin @ v_h)[:, :, :3, 0].numpy(), world[:, :, :3, 3].numpy()


def test_forward_matches_independent_torch_reference_on_real_size_model(real_model):
    rng = np.random.default_rng(6)
    frames = 3
    shape, expression = rng.normal(size=(frames, 300)), rng.normal(size=(frames, 100))
    pose = rng.normal(scale=0.4, size=(frames, 15))
    out = flame_model.flame_forward(real_model, shape, expression, pose)
    vertices, joints = _torch_flame(real_model, np.concatenate([shape, expression], 1), pose)
    assert out.vertices_m.shape == (frames, 5023, 3)
    np.testing.assert_allclose(out.vertices_m, vertices, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out.joints_m, joints, rtol=0, atol=1e-12)


def test_zero_pose_is_the_linear_shape_model(small_model):
    rng = np.random.default_rng(7)
    shape, expression = rng.normal(size=100), rng.normal(size=50)  # first 100 / 50 as DECA
    out = flame_model.flame_forward(small_model, shape, expression)
    betas = np.zeros(400)
    betas[:100], betas[300:350] = shape, expression
    expected = small_model.v_template_m + small_model.shapedirs @ betas
    np.testing.assert_allclose(out.vertices_m, expected, atol=1e-15)
    np.testing.assert_allclose(out.rest_joints_m, small_model.j_regressor @ expected, atol=1e-15)
    np.testing.assert_allclose(flame_model.joint_locations(small_model, flame_model.shape_vertices(small_model, shape, expression)),
                               out.rest_joints_m, atol=0)


def test_root_rotation_turns_the_whole_head_rigidly_about_the_root_joint(small_model):
    rng = np.random.default_rng(8)
    expression = rng.normal(size=50)
    rest = flame_model.flame_forward(small_model, expression=expression)
    root = np.array([0.1, -0.5, 0.3])
    posed = flame_model.flame_forward(small_model, expression=expression,
                                pose=flame_params.assemble_pose(global_pose=root),
                                translation_m=[0.0, 0.0, 1.5])
    rotation = Rotation.from_rotvec(root).as_matrix()
    pivot = rest.rest_joints_m[0]
    expected = (rest.vertices_m - pivot) @ rotation.T + pivot + [0.0, 0.0, 1.5]
    np.testing.assert_allclose(posed.vertices_m, expected, atol=1e-14)


def test_jaw_moves_only_jaw_weighted_vertices_and_eye_rotates_about_its_joint(small_arrays,
                                                                              tmp_path):
    arrays = dict(small_arrays)
    arrays["weights"] = arrays["weights"].copy()
    arrays["posedirs"] = arrays["posedirs"].copy()
    arrays["weights"][:10] = np.eye(5)[1]  # vertices 0-9: neck only
    arrays["weights"][10:20] = np.eye(5)[3]  # vertices 10-19: left eye only
    arrays["posedirs"][:20] = 0.0
    m = flame.load_flame_model(ff.write_flame_npz(tmp_path / "m.npz", arrays))
    rest = flame_model.flame_forward(m)
    jaw = flame_model.flame_forward(m, pose=flame_params.assemble_pose(jaw_pose=[0.3, 0.0, 0.0]))
    np.testing.assert_allclose(jaw.vertices_m[:20], rest.vertices_m[:20], atol=1e-15)
    assert np.abs(jaw.vertices_m[20:] - rest.vertices_m[20:]).max() > 1e-3
    eye_rotation = np.array([0.0, 0.4, 0.1])
    eye = flame_model.flame_forward(m, pose=flame_params.assemble_pose(eye_pose=np.r_[eye_rotation, 0, 0, 0]))
    pivot = rest.rest_joints_m[3]
    expected = (rest.vertices_m[10:20] - pivot) @ Rotation.from_rotvec(eye_rotation).as_matrix().T
    np.testing.assert_allclose(eye.vertices_m[10:20], expected + pivot, atol=1e-15)


def test_corrective_basis_and_pose_feature_rebuild_the_correctives(small_model):
    pose = np.random.default_rng(9).normal(scale=0.3, size=15)
    rotations = flame_model.rodrigues(pose.reshape(5, 3))
    feature = flame_model.pose_feature(rotations)
    assert feature.shape == (36,)
    np.testing.assert_allclose(feature[:9], (rotations[1] - np.eye(3)).ravel())
    offsets = np.tensordot(feature, flame_model.corrective_basis(small_model), axes=1)
    np.testing.assert_allclose(offsets, flame_model.pose_correctives(small_model, rotations), atol=1e-15)
    root_only = flame_model.rodrigues(np.r_[1.0, 2.0, 3.0, np.zeros(12)].reshape(5, 3))
    assert not flame_model.pose_correctives(small_model, root_only).any()  # the root drives none


def test_batched_frames_equal_frame_by_frame(small_model):
    rng = np.random.default_rng(10)
    expression, pose = rng.normal(size=(4, 50)), rng.normal(scale=0.3, size=(4, 15))
    shape = rng.normal(size=300)  # one identity for all frames
    batch = flame_model.flame_forward(small_model, shape, expression, pose)
    for i in range(4):
        single = flame_model.flame_forward(small_model, shape, expression[i], pose[i])
        np.testing.assert_allclose(batch.vertices_m[i], single.vertices_m, atol=1e-15)
        np.testing.assert_allclose(batch.joints_m[i], single.joints_m, atol=1e-15)


def test_assemble_pose_places_each_part():
    pose = flame_params.assemble_pose(global_pose=[1, 2, 3], jaw_pose=[[7, 8, 9]] * 2,
                               eye_pose=[[10, 11, 12, 13, 14, 15]] * 2)
    np.testing.assert_array_equal(pose[1], [1, 2, 3, 0, 0, 0, 7, 8, 9, 10, 11, 12, 13, 14, 15])
    assert pose.shape == (2, 15)
    with pytest.raises(ValueError, match="jaw_pose"):
        flame_params.assemble_pose(jaw_pose=[1, 2])


def test_too_many_coefficients_are_rejected(small_model):
    with pytest.raises(ValueError, match="expression has 101"):
        flame_model.flame_forward(small_model, expression=np.zeros(101))


# ------------------------------------------------------------------------------- frames


def test_flame_to_blender_turns_face_forward_to_minus_y_and_up_to_z():
    forward_flame, up_flame = np.array([0, 0, 1.0]), np.array([0, 1.0, 0])
    np.testing.assert_array_equal(flame_model.flame_to_blender(forward_flame), [0, -1, 0])
    np.testing.assert_array_equal(flame_model.flame_to_blender(up_flame), [0, 0, 1])
    np.testing.assert_array_equal(flame_model.flame_to_blender([1.0, 0, 0]), [1, 0, 0])
    assert np.linalg.det(flame_model.FLAME_TO_BLENDER) == pytest.approx(1.0)
    points = np.random.default_rng(11).normal(size=(7, 3))
    np.testing.assert_allclose(flame_model.blender_to_flame(flame_model.flame_to_blender(points)), points)


def test_posing_commutes_with_the_frame_change(small_model):
    """Rig in Blender's frame == FLAME result converted: rotations convert as vectors."""
    rng = np.random.default_rng(12)
    pose = rng.normal(scale=0.3, size=15)
    out = flame_model.flame_forward(small_model, expression=rng.normal(size=50), pose=pose)
    rotations_flame = flame_model.rodrigues(pose.reshape(5, 3))
    rotations_blender = flame_model.rodrigues(flame_model.flame_to_blender(pose.reshape(5, 3)))
    m = flame_model.FLAME_TO_BLENDER
    np.testing.assert_allclose(rotations_blender, m @ rotations_flame @ m.T, atol=1e-14)
    converted = flame_model.flame_to_blender(out.vertices_m)
    assert converted.shape == out.vertices_m.shape
    np.testing.assert_allclose(flame_model.blender_to_flame(converted), out.vertices_m, atol=1e-15)


def test_sparse_matrix_inside_any_value_is_densified(tmp_path):
    matrix = scipy.sparse.random(4, 6, density=0.5, random_state=1, format="csr")
    path = tmp_path / "sparse.pkl"
    path.write_bytes(pickle.dumps({"m": matrix}, protocol=4))
    with open(path, "rb") as handle:
        loaded = flame.resolve_arrays(flame.restricted_unpickle(handle, path), path)
    np.testing.assert_array_equal(loaded["m"], matrix.toarray())


def test_unevaluable_chumpy_value_in_a_key_the_model_does_not_need_is_left_out(small_arrays,
                                                                               tmp_path):
    arrays = dict(small_arrays)
    arrays["extra_regressor"] = ff.PickledAs("chumpy.ch_ops", "multiply", {
        "a": ff.chumpy_ch(np.ones(3)), "b": ff.chumpy_ch(np.ones(3))})
    model = flame.load_flame_model(ff.write_flame2020_pkl(tmp_path / "x.pkl", arrays))
    assert model.meta["skipped_keys"] == ["extra_regressor"]
    np.testing.assert_array_equal(model.shapedirs, small_arrays["shapedirs"])
