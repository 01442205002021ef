"""The FLAME rig in Blender against the numpy forward model, on synthetic FLAME-format files.

Every comparison evaluates the mesh through Blender's depsgraph (shape keys, simple-expression
drivers, Armature modifier) and checks it against ``core.heads.flame_file.flame_forward``.
"""
import importlib
import json
import struct
import sys

import bpy
import numpy as np
import pytest

from tests import flame_fixtures as ff
from tests.conftest import EXTENSION_MODULE
from tests.helpers import (
    FLAME_CORE,
    bone_joints,
    extension_modules,
)

TOLERANCE_M = 1e-5


def _module(name):
    return importlib.import_module(f"{EXTENSION_MODULE}.{name}")


@pytest.fixture
def flame(blender):
    return extension_modules(*FLAME_CORE)


@pytest.fixture(scope="module")
def small_path(tmp_path_factory):
    return ff.write_flame_npz(tmp_path_factory.mktemp("flame") / "small.npz",
                              ff.make_flame_arrays(**ff.SMALL, seed=5))


@pytest.fixture
def small_model(flame, small_path):
    return flame.load_flame_model(small_path)


def _random_parameters(rng, n_shape=300, n_expression=100, pose_scale=0.3):
    return (rng.normal(size=n_shape), rng.normal(size=n_expression),
            rng.normal(scale=pose_scale, size=15))


def _reference_blender_m(flame, model, shape=None, expression=None, pose=None):
    return flame.flame_to_blender(flame.flame_forward(model, shape, expression, pose).vertices_m)


def _handler_snapshot():
    handlers = bpy.app.handlers
    return {name: list(getattr(handlers, name)) for name in
            ("frame_change_pre", "frame_change_post", "depsgraph_update_pre",
             "depsgraph_update_post", "load_post")}


# ------------------------------------------------------------------------------- the rig


def test_rig_layout_names_and_rest_state(rf, flame, small_model):
    rig = rf.build_flame_rig(small_model, bpy.context.scene.collection, 12, 7)
    blocks = rig.key.key_blocks
    names = [b.name for b in blocks]
    assert names[:1 + 12 + 7] == (["Basis"] + [f"Shape{i:03d}" for i in range(1, 13)]
                                  + [f"Exp{i:03d}" for i in range(1, 8)])
    assert names[20:] == [rf.corrective_key_name(p) for p in range(36)]
    assert names[20] == "Pose_neck_00" and names[-1] == "Pose_eye_R_22"
    assert all(b.value == 0.0 for b in blocks)  # Blender 5 starts keys at 1.0
    deform = [b.name for b in rig.armature_obj.data.bones if b.use_deform]
    assert deform == list(rf.BONE_NAMES) == ["root", "neck", "jaw", "eye_L", "eye_R"]
    bones = rig.armature_obj.data.bones
    assert bones["jaw"].parent.parent.name == "neck" and bones["eye_L"].parent.parent.name == "neck"
    assert sorted(g.name for g in rig.mesh_obj.vertex_groups) == sorted(rf.BONE_NAMES)
    # every bone points up with roll 0: its rest orientation is FLAME_TO_BLENDER
    for bone in bones:
        np.testing.assert_allclose(np.array(bone.matrix_local)[:3, :3], flame.FLAME_TO_BLENDER,
                                   atol=1e-6)
    # skinning weights arrive intact as vertex groups
    weights = np.zeros((small_model.n_vertices, 5))
    for vertex in rig.mesh_obj.data.vertices:
        for element in vertex.groups:
            weights[vertex.index, element.group] = element.weight
    order = [rig.mesh_obj.vertex_groups[name].index for name in rf.BONE_NAMES]
    np.testing.assert_allclose(weights[:, order], small_model.weights, atol=1e-7)
    # at rest the mesh is the template and the bones sit on the regressed joints
    np.testing.assert_allclose(rf.evaluated_vertices_m(rig.mesh_obj),
                               flame.flame_to_blender(small_model.v_template_m), atol=1e-7)
    np.testing.assert_allclose(bone_joints(rig),
                               small_model.j_regressor @ small_model.v_template_m, atol=1e-7)


def test_random_shape_expression_jaw_neck_eye_match_forward_model(rf, flame, small_model):
    rig = rf.build_flame_rig(small_model, bpy.context.scene.collection, 300, 100)
    rng = np.random.default_rng(11)
    for _ in range(4):
        shape, expression, pose = _random_parameters(rng)
        rf.set_flame_parameters(rig, shape, expression, pose)
        rf.replace_joints(rig)
        blender_m = rf.evaluated_vertices_m(rig.mesh_obj)
        reference = _reference_blender_m(flame, small_model, shape, expression, pose)
        assert np.abs(blender_m - reference).max() < TOLERANCE_M
        # the test can fail: the pose moves vertices by far more than the tolerance
        assert np.abs(reference - _reference_blender_m(flame, small_model, shape, expression)).max() > 1e-3


def test_expression_moves_joints_as_flame_does(rf, flame, small_model):
    """With expression and jaw together, fixed bone heads would be off; the helper bones fix it."""
    rig = rf.build_flame_rig(small_model, bpy.context.scene.collection, 0, 50)
    rng = np.random.default_rng(3)
    expression = rng.normal(size=50)
    pose = np.zeros(15)
    pose[6:9] = [0.35, 0.05, -0.02]  # jaw open
    rf.set_flame_parameters(rig, expression=expression, pose=pose)
    reference = _reference_blender_m(flame, small_model, None, expression, pose)
    assert np.abs(rf.evaluated_vertices_m(rig.mesh_obj) - reference).max() < TOLERANCE_M
    # what a fixed-joint rig would give: rotate about the expression-free joints
    joints_moved = small_model.j_regressor @ flame.shape_vertices(small_model, None, expression)
    assert np.abs(joints_moved - small_model.j_regressor @ small_model.v_template_m).max() > 1e-3


def test_real_size_model_matches_forward_model(rf, flame, tmp_path):
    path = ff.write_flame_npz(tmp_path / "generic_model.npz",
                              ff.make_flame_arrays(**ff.REAL_SIZES, seed=8))
    model = flame.load_flame_model(path)
    rig = rf.build_flame_rig(model, bpy.context.scene.collection, 300, 100)
    assert len(rig.mesh_obj.data.vertices) == 5023 and len(rig.key.key_blocks) == 1 + 400 + 36
    shape, expression, pose = _random_parameters(np.random.default_rng(4))
    rf.set_flame_parameters(rig, shape, expression, pose)
    rf.replace_joints(rig)
    error = np.abs(rf.evaluated_vertices_m(rig.mesh_obj)
                   - _reference_blender_m(flame, model, shape, expression, pose)).max()
    assert error < TOLERANCE_M


def test_replace_joints_follows_identity_edits(rf, flame, small_model):
    rig = rf.build_flame_rig(small_model, bpy.context.scene.collection, 300, 10)
    shape = np.random.default_rng(2).normal(size=300)
    rf.set_flame_parameters(rig, shape=shape)
    wanted = flame.joint_locations(small_model, flame.shape_vertices(small_model, shape))
    assert np.abs(bone_joints(rig) - wanted).max() > 1e-3  # identity moved the joints
    rf.replace_joints(rig)
    np.testing.assert_allclose(bone_joints(rig), wanted, atol=1e-6)
    assert bpy.context.view_layer.objects.active is None  # the previous active object is back


def test_drivers_are_simple_expressions_and_cap_expression_length(rf, small_model):
    rig = rf.build_flame_rig(small_model, bpy.context.scene.collection, 0, 100)
    drivers = rf.rig_drivers(rig)
    assert len([d for d in drivers if d.data_path.startswith("key_blocks")]) == 36
    for fcurve in drivers:
        driver = fcurve.driver
        assert driver.is_valid and len(fcurve.keyframe_points) == 0
        assert driver.type == "SUM" or (driver.type == "SCRIPTED" and driver.is_simple_expression)
        assert len(driver.expression) <= 255


def test_correctives_follow_keyed_bones_frame_by_frame_without_handlers(rf, flame, fp, small_model):
    before = _handler_snapshot()
    rig = rf.build_flame_rig(small_model, bpy.context.scene.collection, 0, 50)
    rng = np.random.default_rng(9)
    n = 5
    params = fp.FlameParams(expression=rng.normal(size=(n, 50)), fps=24.0,
                            jaw_pose=rng.normal(scale=0.3, size=(n, 3)),
                            neck_pose=rng.normal(scale=0.3, size=(n, 3)),
                            eye_pose=rng.normal(scale=0.3, size=(n, 6)),
                            global_pose=rng.normal(scale=0.3, size=(n, 3)))
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    rf.key_flame_params(rig, params, start_frame=1, identity="keep")
    assert _handler_snapshot() == before
    pose = params.pose()
    depsgraph = bpy.context.evaluated_depsgraph_get()
    for index in (3, 0, 4, 1):  # out of order: nothing may lag one frame behind
        scene.frame_set(1 + index)
        blender_m = rf.evaluated_vertices_m(rig.mesh_obj, depsgraph)
        reference = _reference_blender_m(flame, small_model, None, params.expression[index],
                                         pose[index])
        assert np.abs(blender_m - reference).max() < TOLERANCE_M
        key = rig.key.evaluated_get(depsgraph)
        feature = flame.pose_feature(flame.rodrigues(pose[index].reshape(5, 3)))
        driven = [key.key_blocks[rf.corrective_key_name(p)].value for p in range(36)]
        np.testing.assert_allclose(driven, feature, atol=1e-5)


def test_saved_rig_evaluates_without_running_python(rf, flame, small_model, tmp_path):
    """Auto-run off stops Python drivers only; the rig must never call into Python at all.

    The bpy module always trusts files, so instead of switching auto-run off the test watches
    the interpreter: a Python driver runs as a code object named ``<bpy driver>``.
    """
    rig = rf.build_flame_rig(small_model, bpy.context.scene.collection, 0, 20)
    expression = np.random.default_rng(1).normal(size=20)
    jaw = rig.armature_obj.pose.bones["jaw"]
    angles = {1: 0.05, 4: 0.4}
    for frame, angle in angles.items():
        jaw.rotation_quaternion = (np.cos(angle / 2), np.sin(angle / 2), 0.0, 0.0)
        jaw.keyframe_insert("rotation_quaternion", frame=frame)
    rf.set_flame_parameters(rig, expression=expression)
    path = tmp_path / "flame_rig.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path), load_ui=False, use_scripts=False)
    mesh_obj = next(o for o in bpy.data.objects if _module("blender.anim.internal").get(o, rf.RIG_TAG) == rf.MESH_TAG_VALUE)
    python_driver_calls = []

    def watch(frame, event, _arg):
        if event == "call" and frame.f_code.co_filename == "<bpy driver>":
            python_driver_calls.append(frame.f_code.co_name)

    scene = bpy.context.scene
    sys.setprofile(watch)
    try:
        for frame, angle in angles.items():
            scene.frame_set(frame)
            pose = np.zeros(15)
            pose[6] = angle
            reference = _reference_blender_m(flame, small_model, None, expression, pose)
            assert np.abs(rf.evaluated_vertices_m(mesh_obj) - reference).max() < TOLERANCE_M
    finally:
        sys.setprofile(None)
    assert python_driver_calls == []


def test_bad_counts_and_excluded_collection_add_nothing(rf, small_model):
    errors = _module("core.errors")
    scene = bpy.context.scene
    with pytest.raises(errors.InputError, match="0–100"):
        rf.build_flame_rig(small_model, scene.collection, 10, 101)
    hidden = bpy.data.collections.new("hidden")
    scene.collection.children.link(hidden)
    bpy.context.view_layer.layer_collection.children["hidden"].exclude = True
    with pytest.raises(errors.InputError, match="not in the view layer"):
        rf.build_flame_rig(small_model, hidden, 10, 10)
    assert len(bpy.data.objects) == 0 and len(bpy.data.meshes) == 0
    assert len(bpy.data.armatures) == 0


def test_a_failure_midway_removes_everything_it_created(rf, small_model, monkeypatch):
    def fail(*_args):
        raise RuntimeError("injected failure after the mesh, keys and bones exist")

    monkeypatch.setattr(_module("blender.rigs.flame_build"), "_add_expression_joint_drivers", fail)
    with pytest.raises(RuntimeError, match="injected"):
        rf.build_flame_rig(small_model, bpy.context.scene.collection, 10, 10)
    for name in ("objects", "meshes", "armatures", "actions", "shape_keys"):
        assert len(getattr(bpy.data, name)) == 0, name


def test_bones_of_an_armature_disabled_in_viewports_cannot_be_placed(rf, small_model):
    errors = _module("core.errors")
    rig = rf.build_flame_rig(small_model, bpy.context.scene.collection, 10, 0)
    rig.armature_obj.hide_viewport = True
    with pytest.raises(errors.InputError, match="cannot edit the bones"):
        rf.replace_joints(rig)


# ------------------------------------------------------------------------------- parameters


def _params(fp, rng, n, n_expression=50, **groups):
    return fp.FlameParams(expression=rng.normal(size=(n, n_expression)), fps=30.0, **groups)


def _assert_same_params(read, written, names, atol=1e-5):
    for name in names:
        np.testing.assert_allclose(getattr(read, name), getattr(written, name), atol=atol,
                                   err_msg=name)


@pytest.mark.parametrize("layout, suffix", [("mmm", ".csv"), ("emoca", ".csv.gz"),
                                            ("mmm", ".npy")])
def test_table_layouts_round_trip_through_the_rig(rf, fp, small_model, tmp_path, layout, suffix):
    rng = np.random.default_rng(6)
    n = 12
    groups = {"jaw_pose": rng.normal(scale=0.3, size=(n, 3)),
              "global_pose": rng.normal(scale=0.3, size=(n, 3))}
    if layout == "mmm":
        identity = rng.normal(size=300)
        groups.update(shape=np.tile(identity, (n, 1)), eyelid=rng.random((n, 2)),
                      cam=rng.normal(size=(n, 3)))
    written = _params(fp, rng, n, **groups)
    path = fp.write_flame_params(written, tmp_path / f"clip{suffix}", layout=layout)
    rig = rf.build_flame_rig(small_model, bpy.context.scene.collection, 300, 50)
    bpy.context.scene.render.fps = 30
    result = rf.key_flame_params(rig, fp.read_flame_params(path), start_frame=1)
    assert result["frames"] == (1.0, float(n)) and not result["warnings"]
    exp_curve = rig.key.animation_data.action.layers[0].strips[0].channelbags[0].fcurves[0]
    assert len(exp_curve.keyframe_points) == n
    read = rf.sample_flame_params(rig, np.arange(1, n + 1))
    _assert_same_params(read, written, ["expression", *groups])
    if layout == "mmm":  # identity: the clip's mean, set and joints re-placed
        np.testing.assert_allclose(rf.current_shape(rig), identity, atol=1e-6)
    out = fp.write_flame_params(read, tmp_path / f"back{suffix}", layout=layout)
    np.testing.assert_allclose(fp.params_to_table(fp.read_flame_params(out), layout),
                               fp.params_to_table(written, layout), atol=1e-5)


def test_npz_with_all_groups_round_trips(rf, fp, small_model, tmp_path):
    rng = np.random.default_rng(7)
    n = 8
    written = _params(fp, rng, n, n_expression=100, jaw_pose=rng.normal(scale=0.3, size=(n, 3)),
                      neck_pose=rng.normal(scale=0.3, size=(n, 3)),
                      eye_pose=rng.normal(scale=0.3, size=(n, 6)),
                      global_pose=rng.normal(scale=0.3, size=(n, 3)),
                      translation_m=rng.normal(scale=0.01, size=(n, 3)),
                      shape=rng.normal(size=(n, 100)))
    path = tmp_path / "clip.npz"  # key names as trackers write them ("transl", as SMPL-X)
    np.savez(path, fps=30.0, transl=written.translation_m,
             **{k: v for k, v in written.groups().items() if k != "translation_m"})
    rig = rf.build_flame_rig(small_model, bpy.context.scene.collection, 100, 100)
    bpy.context.scene.render.fps = 30
    rf.key_flame_params(rig, fp.read_flame_params(path), identity="per_frame")
    read = rf.sample_flame_params(rig, np.arange(1, n + 1))
    _assert_same_params(read, written, ["expression", "jaw_pose", "neck_pose", "eye_pose",
                                        "global_pose", "translation_m", "shape"])


def test_import_retimes_warns_and_stashes_the_previous_action(rf, fp, small_model):
    rig = rf.build_flame_rig(small_model, bpy.context.scene.collection, 0, 20)
    block = rig.key.key_blocks["Exp001"]
    block.value = 0.5
    block.keyframe_insert("value", frame=1)
    hand_action = rig.key.animation_data.action
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 60, 1.0
    rng = np.random.default_rng(1)
    params = fp.FlameParams(expression=rng.normal(size=(4, 50)), fps=30.0)
    result = rf.key_flame_params(rig, params, start_frame=10)
    assert result["frames"] == (10.0, 16.0)  # 30 Hz rows in a 60 fps scene: every 2nd frame
    assert any("50 expression coefficients, the rig 20" in w for w in result["warnings"])
    assert hand_action.name in bpy.data.actions and hand_action.use_fake_user
    assert rig.key.animation_data.action != hand_action
    read = rf.sample_flame_params(rig, [10, 12, 14, 16])
    np.testing.assert_allclose(read.expression[:, :20], params.expression[:, :20], atol=1e-6)


def test_consecutive_quaternions_stay_in_one_hemisphere(rf, fp, small_model):
    rig = rf.build_flame_rig(small_model, bpy.context.scene.collection, 0, 0)
    angles = np.linspace(2.9, 3.4, 6)  # passes π: axis-angle flips, the quaternion must not
    jaw = np.zeros((6, 3))
    jaw[:, 0] = np.where(angles <= np.pi, angles, angles - 2 * np.pi)
    bpy.context.scene.render.fps = 30
    rf.key_flame_params(rig, fp.FlameParams(expression=np.zeros((6, 1)), fps=30.0, jaw_pose=jaw))
    bag = rig.armature_obj.animation_data.action.layers[0].strips[0].channelbags[0]
    quaternions = np.stack([[bag.fcurves.find('pose.bones["jaw"].rotation_quaternion', index=i)
                             .evaluate(f) for i in range(4)] for f in range(1, 7)])
    assert (np.einsum("fi,fi->f", quaternions[1:], quaternions[:-1]) > 0).all()


@pytest.mark.parametrize("mode", ["XYZ", "ZXY", "AXIS_ANGLE"])
def test_export_reads_bones_in_any_rotation_mode(rf, flame, small_model, mode):
    from mathutils import Euler, Quaternion

    rig = rf.build_flame_rig(small_model, bpy.context.scene.collection, 0, 5)
    jaw = rig.armature_obj.pose.bones["jaw"]
    jaw.rotation_mode = mode
    angles = {1: (0.3, -0.2, 0.1), 5: (-0.1, 0.4, 0.25)}
    for frame, xyz in angles.items():
        if mode == "AXIS_ANGLE":
            axis = np.array(xyz) / np.linalg.norm(xyz)
            jaw.rotation_axis_angle = (np.linalg.norm(xyz), *axis)
            jaw.keyframe_insert("rotation_axis_angle", frame=frame)
        else:
            jaw.rotation_euler = Euler(xyz, mode)
            jaw.keyframe_insert("rotation_euler", frame=frame)
    read = rf.sample_flame_params(rig, [1, 5])
    for row, (frame, xyz) in enumerate(angles.items()):
        if mode == "AXIS_ANGLE":
            wanted = np.array(Quaternion(np.array(xyz) / np.linalg.norm(xyz),
                                         np.linalg.norm(xyz)).to_matrix())
        else:
            wanted = np.array(Euler(xyz, mode).to_matrix())
        np.testing.assert_allclose(flame.rodrigues(read.jaw_pose[row]), wanted, atol=1e-6)


# ------------------------------------------------------------------------------- interop


def _glb_json(path):
    data = path.read_bytes()
    assert data[:4] == b"glTF"
    length, kind = struct.unpack_from("<I4s", data, 12)
    assert kind == b"JSON"
    return json.loads(data[20:20 + length])


def test_animated_rig_exports_through_gltf_and_fbx(rf, fp, small_model, tmp_path):
    rig = rf.build_flame_rig(small_model, bpy.context.scene.collection, 4, 6)
    rng = np.random.default_rng(0)
    n = 4
    params = fp.FlameParams(expression=rng.normal(size=(n, 6)), fps=24.0,
                            jaw_pose=rng.normal(scale=0.3, size=(n, 3)))
    scene = bpy.context.scene
    scene.render.fps, scene.frame_start, scene.frame_end = 24, 1, n
    rf.key_flame_params(rig, params)
    glb = tmp_path / "flame.glb"
    assert bpy.ops.export_scene.gltf(filepath=str(glb), export_format="GLB") == {"FINISHED"}
    document = _glb_json(glb)
    targets = [len(p.get("targets", [])) for m in document["meshes"] for p in m["primitives"]]
    assert targets and all(t == 4 + 6 + 36 for t in targets)
    assert document.get("animations") and document.get("skins")
    animated = {channel["target"]["path"] for animation in document["animations"]
                for channel in animation["channels"]}
    assert {"weights", "rotation", "translation"} <= animated  # morphs, bones, MCH pivots
    joint_names = {document["nodes"][j]["name"] for j in document["skins"][0]["joints"]}
    assert set(rf.BONE_NAMES) <= joint_names
    fbx = tmp_path / "flame.fbx"
    assert bpy.ops.export_scene.fbx(filepath=str(fbx)) == {"FINISHED"}
    assert fbx.stat().st_size > 10_000 and fbx.read_bytes()[:18] == b"Kaydara FBX Binary"
