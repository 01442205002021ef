"""FLAME operators, panel, menu entry and the ``flame-import`` command, in a real Blender.

Malformed model files must leave the scene exactly as it was: no objects, meshes, armatures,
actions or shape keys added.
"""
import importlib
import pickle

import bpy
import numpy as np
import pytest

from tests import flame_fixtures as ff
from tests.conftest import EXTENSION_MODULE
from tests.helpers import bone_joints


def _module(name):
    return importlib.import_module(f"{EXTENSION_MODULE}.{name}")


@pytest.fixture
def ops(blender):
    return _module("blender.ui.flame_ops")


@pytest.fixture(scope="module")
def arrays():
    return ff.make_flame_arrays(**ff.SMALL, seed=4)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory, arrays):
    return ff.write_flame2020_pkl(tmp_path_factory.mktemp("flame") / "generic_model.pkl", arrays)


@pytest.fixture
def preferences(blender):
    prefs = _module("blender.ui.preferences").get_preferences()
    saved = prefs.flame_model_path
    yield prefs
    prefs.flame_model_path = saved


def _scene_snapshot():
    data = bpy.data
    return {name: sorted(i.name for i in getattr(data, name))
            for name in ("objects", "meshes", "armatures", "actions", "shape_keys", "collections")}


def _activate(obj):
    bpy.context.view_layer.objects.active = obj


# ------------------------------------------------------------------------------- Add FLAME Head


def test_add_flame_head_from_preferences(ops, rf, preferences, model_path):
    preferences.flame_model_path = str(model_path)
    bpy.context.scene.cursor.location = (0.5, 0.0, 0.2)
    assert bpy.ops.eifer.add_flame_head(shape_count=20, expression_count=10) == {"FINISHED"}
    rig = rf.find_flame_rig(bpy.context.active_object)
    assert bpy.context.active_object == rig.mesh_obj == bpy.context.scene.eifer.face
    assert (rig.n_shape, rig.n_expression) == (20, 10)
    assert len(rig.key.key_blocks) == 1 + 20 + 10 + 36
    assert tuple(rig.armature_obj.location) == pytest.approx((0.5, 0.0, 0.2))
    version = _module("blender.anim.internal").get(rig.mesh_obj, rf.VERSION_KEY)
    assert version == "2020"  # told from the official file name


def test_filepath_overrides_preferences(ops, rf, preferences, model_path, tmp_path):
    preferences.flame_model_path = str(tmp_path / "missing.pkl")
    assert bpy.ops.eifer.add_flame_head(filepath=str(model_path), shape_count=0,
                                        expression_count=0) == {"FINISHED"}
    assert len(rf.find_flame_rig(bpy.context.active_object).key.key_blocks) == 1 + 36


def test_no_model_path_says_where_to_set_it_and_where_to_get_flame(ops, preferences):
    preferences.flame_model_path = ""
    before = _scene_snapshot()
    with pytest.raises(RuntimeError) as raised:
        bpy.ops.eifer.add_flame_head()
    message = str(raised.value)
    assert "Preferences" in message and "https://flame.is.tue.mpg.de" in message
    assert _scene_snapshot() == before


def _missing_key(arrays, path):
    broken = dict(arrays)
    del broken["posedirs"]
    return ff.write_flame_npz(path.with_suffix(".npz"), broken), "missing key"


def _wrong_shape(arrays, path):
    broken = dict(arrays, weights=arrays["weights"][:, :4])
    return ff.write_flame_npz(path.with_suffix(".npz"), broken), "'weights' has shape"


def _nan(arrays, path):
    template = arrays["v_template"].copy()
    template[3, 1] = np.nan
    return ff.write_flame2020_pkl(path, dict(arrays, v_template=template)), "NaN"


def _truncated(arrays, path):
    whole = ff.write_flame2020_pkl(path.with_name("whole.pkl"), arrays)
    return ff.truncate_file(whole, path, 0.6), "truncated"


def _not_flame(arrays, path):
    with open(path, "wb") as handle:
        pickle.dump({"hello": np.zeros(3)}, handle, protocol=2)
    return path, "missing key"


def _empty(arrays, path):
    path.write_bytes(b"")
    return path, "empty"


@pytest.mark.parametrize("make_broken", [_missing_key, _wrong_shape, _nan, _truncated,
                                         _not_flame, _empty])
def test_malformed_models_report_errors_and_add_nothing(ops, arrays, tmp_path, make_broken):
    path, problem = make_broken(arrays, tmp_path / "generic_model.pkl")
    before = _scene_snapshot()
    with pytest.raises(RuntimeError) as raised:
        bpy.ops.eifer.add_flame_head(filepath=str(path))
    assert problem in str(raised.value) and path.name in str(raised.value)
    assert _scene_snapshot() == before


def test_code_running_pickle_is_refused_and_never_runs(ops, tmp_path):
    target = tmp_path / "pwned"
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(ff.malicious_pickle_bytes(target, "os.system", inside_model=True))
    before = _scene_snapshot()
    with pytest.raises(RuntimeError, match="refused"):
        bpy.ops.eifer.add_flame_head(filepath=str(path))
    assert not target.exists()
    assert _scene_snapshot() == before


# ------------------------------------------------------------------------------- other operators


@pytest.fixture
def rig(ops, rf, model_path):
    bpy.ops.eifer.add_flame_head(filepath=str(model_path), shape_count=300, expression_count=50)
    return rf.find_flame_rig(bpy.context.active_object)


def test_operators_need_a_flame_head(ops, rig):
    _activate(None)
    assert not bpy.ops.eifer.replace_flame_joints.poll()
    assert not bpy.ops.eifer.import_flame_params.poll()
    assert not bpy.ops.eifer.export_flame_params.poll()
    _activate(rig.armature_obj)  # the armature works as well as the head
    assert bpy.ops.eifer.export_flame_params.poll()


def test_replace_joints_operator(rig, rf):
    shape = np.random.default_rng(0).normal(size=300)
    rf.set_flame_parameters(rig, shape=shape)
    wanted = rf.rest_joints(rig)
    assert np.abs(bone_joints(rig) - wanted).max() > 1e-3
    _activate(rig.mesh_obj)
    assert bpy.ops.eifer.replace_flame_joints() == {"FINISHED"}
    np.testing.assert_allclose(bone_joints(rig), wanted, atol=1e-6)


def test_import_then_export_operators_round_trip_the_mmm_layout(rig, rf, fp, tmp_path):
    rng = np.random.default_rng(2)
    n = 10
    written = fp.FlameParams(expression=rng.normal(size=(n, 50)), fps=30.0,
                             shape=np.tile(rng.normal(size=300), (n, 1)),
                             jaw_pose=rng.normal(scale=0.2, size=(n, 3)),
                             global_pose=rng.normal(scale=0.2, size=(n, 3)),
                             eyelid=rng.random((n, 2)), cam=rng.normal(size=(n, 3)))
    clip = fp.write_flame_params(written, tmp_path / "clip.csv.gz", layout="mmm", header=True)
    scene = bpy.context.scene
    scene.render.fps = 30
    _activate(rig.mesh_obj)
    assert bpy.ops.eifer.import_flame_params(filepath=str(clip), start_frame=5) == {"FINISHED"}
    assert (scene.frame_start, scene.frame_end) == (5, 5 + n - 1)
    out = tmp_path / "back.csv"
    assert bpy.ops.eifer.export_flame_params(filepath=str(out), layout="mmm") == {"FINISHED"}
    np.testing.assert_allclose(fp.params_to_table(fp.read_flame_params(out), "mmm"),
                               fp.params_to_table(written, "mmm"), atol=1e-5)
    npz = tmp_path / "back.npz"
    assert bpy.ops.eifer.export_flame_params(filepath=str(npz)) == {"FINISHED"}
    np.testing.assert_allclose(fp.read_flame_params(npz).jaw_pose, written.jaw_pose, atol=1e-5)


def test_export_refuses_what_the_layout_cannot_hold_unless_told(rig, rf, tmp_path):
    rf.set_flame_parameters(rig, pose=np.r_[np.zeros(3), 0.2, 0.0, 0.0, np.zeros(9)])  # neck
    _activate(rig.mesh_obj)
    out = tmp_path / "clip.csv"
    with pytest.raises(RuntimeError, match="neck_pose"):
        bpy.ops.eifer.export_flame_params(filepath=str(out), layout="emoca")
    assert not out.exists()
    assert bpy.ops.eifer.export_flame_params(filepath=str(out), layout="emoca",
                                             drop_unsupported=True) == {"FINISHED"}
    assert np.loadtxt(out, delimiter=",", ndmin=2).shape[1] == 56


def test_import_of_a_bad_parameter_file_reports_and_keys_nothing(rig, tmp_path):
    bad = tmp_path / "clip.csv"
    bad.write_text("1,2,3\n4,5,6\n")
    _activate(rig.mesh_obj)
    before = _scene_snapshot()
    with pytest.raises(RuntimeError, match="3 columns"):
        bpy.ops.eifer.import_flame_params(filepath=str(bad))
    assert _scene_snapshot() == before


def test_panel_and_add_menu_entry_are_registered(ops):
    panel = bpy.types.EIFER_PT_flame
    assert (panel.bl_space_type, panel.bl_region_type, panel.bl_category) == ("VIEW_3D", "UI",
                                                                              "EIFER")
    menu_functions = bpy.types.VIEW3D_MT_mesh_add._dyn_ui_initialize()
    assert any(getattr(f, "__qualname__", "") == "draw_add_menu"
               and getattr(f, "__module__", "") == ops.__name__ for f in menu_functions)


# ------------------------------------------------------------------------------- CLI


def test_flame_import_command_builds_keys_and_saves(blender, rf, fp, model_path, tmp_path):
    cli = _module("cli")
    assert cli.COMMANDS["flame-import"] == "flame_import"
    rng = np.random.default_rng(5)
    n = 6
    clip = fp.write_flame_params(
        fp.FlameParams(expression=rng.normal(size=(n, 50)), fps=25.0,
                       jaw_pose=rng.normal(scale=0.2, size=(n, 3)),
                       global_pose=rng.normal(scale=0.2, size=(n, 3))),
        tmp_path / "clip.csv", layout="emoca")
    out = tmp_path / "out" / "flame.blend"
    code = cli.main(["flame-import", str(clip), "--flame", str(model_path), "--out", str(out),
                     "--fps", "25", "--expressions", "50", "--shapes", "10"])
    assert code == 0 and out.is_file()
    bpy.ops.wm.open_mainfile(filepath=str(out), load_ui=False)
    mesh_obj = next(o for o in bpy.data.objects if _module("blender.anim.internal").get(o, rf.RIG_TAG) == rf.MESH_TAG_VALUE)
    rig = rf.find_flame_rig(mesh_obj)
    scene = bpy.context.scene
    assert rf.scene_fps(scene) == pytest.approx(25.0) and (scene.frame_start, scene.frame_end) == (1, n)
    read = rf.sample_flame_params(rig, np.arange(1, n + 1))
    np.testing.assert_allclose(read.jaw_pose, fp.read_flame_params(clip).jaw_pose, atol=1e-5)
    # keying the saved head again needs no model; a scene without a head and no model is an error
    again = tmp_path / "again.blend"
    assert cli.main(["flame-import", str(clip), "--blend", str(out), "--out", str(again)]) == 0
    assert cli.main(["flame-import", str(clip), "--out", str(tmp_path / "x.blend")]) == 3
    assert cli.main(["flame-import", str(clip), "--flame", str(model_path),
                     "--out", str(tmp_path / "x.glb")]) == 3
