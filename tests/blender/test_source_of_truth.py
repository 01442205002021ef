"""The .blend is the source of truth: Drive runs on the EMG curves keyed in it (edits included),
paths are kept relative to the .blend, internals stay out of Custom Properties, and a file saved
by release 0.1.0 opens, upgrades and drives."""
import importlib
import shutil
from pathlib import Path

import bpy
import numpy as np
import pytest

from tests.conftest import EXTENSION_MODULE

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "release_0_1_0.blend"


def _ext(name):
    return importlib.import_module(f"{EXTENSION_MODULE}.{name}")


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """8 s of a held-out simulated subject showing emotions, as EDF (50 Hz mains hum)."""
    session = _ext("core.simulator.session").simulate_session("emotions", subject=7, duration_s=8.0,
                                                               rate_hz=2048.0, fps=60.0, seed=3)
    path = tmp_path_factory.mktemp("truth") / "subject7.edf"
    _ext("core.recording").write_recording(session.recording, path)
    return path


def _face():
    assert bpy.ops.eifer.add_open_head() == {"FINISHED"}
    return bpy.context.active_object


def _imported(path, *, fps=30, start_frame=1):
    scene = bpy.context.scene
    scene.render.fps = fps
    assert bpy.ops.eifer.import_emg(filepath=str(path), start_frame=start_frame) == {"FINISHED"}
    return scene.eifer.recording


def _curve(obj, site):
    bag = _ext("blender.anim.keyframes").assigned_channelbag(obj)
    return bag.fcurves.find(f'["emg:{site}"]')


def test_unedited_curves_drive_within_1e_6_of_driving_from_the_file(blender, recording):
    drive = _ext("blender.jobs.drive").drive
    face = _face()
    obj = _imported(recording, start_frame=5)
    from_curves = drive(face, obj)
    assert from_curves.emg_object == obj and from_curves.frame_start == 5
    from_file = drive(face, str(recording), start_frame=5)
    assert (from_file.frame_start, from_file.frame_end) == (from_curves.frame_start, from_curves.frame_end)
    assert from_file.result.expression.names == from_curves.result.expression.names
    np.testing.assert_allclose(from_curves.result.expression.values, from_file.result.expression.values, atol=1e-6)
    # and with a frame range, the same frames from either
    part = drive(face, obj, frame_range=(40, 150)).result.expression.values
    np.testing.assert_allclose(part, drive(face, str(recording), start_frame=5, frame_range=(40, 150))
                               .result.expression.values, atol=1e-6)


def test_an_edited_emg_curve_changes_the_drive(blender, recording):
    drive = _ext("blender.jobs.drive").drive
    face = _face()
    obj = _imported(recording)
    before = drive(face, obj).result.expression
    curve = _curve(obj, "Zyg_L")
    co = np.empty(2 * len(curve.keyframe_points), dtype=np.float32)
    curve.keyframe_points.foreach_get("co", co)
    values = co[1::2]  # a view: the animator adds a strong left smile over frames 150-190
    values[149:190] = 3.0 * values.max()
    curve.keyframe_points.foreach_set("co", co)
    curve.update()
    after = drive(face, obj).result.expression
    smile = before.names.index("mouthSmileLeft")
    assert np.max(after.values[149:190, smile] - before.values[149:190, smile]) > 0.1
    kept = np.empty_like(co)
    curve.keyframe_points.foreach_get("co", kept)
    np.testing.assert_array_equal(kept, co)  # the drive read the edit, it did not replace it


def test_a_chain_other_than_the_models_is_refused(blender, recording):
    emg_object, internal = _ext("blender.anim.emg_object"), _ext("blender.anim.internal")
    errors = _ext("core.errors")
    face, obj = _face(), _imported(recording)
    meta = internal.get(obj, "metadata")
    internal.put(obj, "metadata", meta.replace('"rms_window_s": 0.5', '"rms_window_s": 0.25'))
    with pytest.raises(errors.ModelMismatchError, match="another chain.*rms_window_s 0.25"):
        _ext("blender.jobs.drive").drive(face, obj)
    assert face.data.shape_keys.animation_data is None or face.data.shape_keys.animation_data.action is None
    assert emg_object.read_emg_object(obj).n_frames > 0


def test_an_fps_change_after_import_is_refused_until_the_file_is_re_read(blender, recording):
    drive = _ext("blender.jobs.drive").drive
    emg_object, errors = _ext("blender.anim.emg_object"), _ext("core.errors")
    face = _face()
    obj = _imported(recording, fps=24)
    keyed = emg_object.read_emg_object(obj).n_frames
    bpy.context.scene.render.fps = 30
    with pytest.raises(errors.InputError, match="keyed at 24 fps and the scene now runs at 30 fps.*Re-read"):
        drive(face, obj)
    anim = face.data.shape_keys.animation_data
    assert anim is None or anim.action is None  # refused before anything was keyed
    report = drive(face, obj, reread=True)
    assert report.emg_object == obj and emg_object.fps(obj) == 30
    again = emg_object.read_emg_object(obj).n_frames
    assert again == pytest.approx(keyed * 30 / 24, abs=2) and report.frame_end - report.frame_start + 1 == again
    assert drive(face, obj).frame_end == report.frame_end  # the re-timed curves drive at 30 fps


def test_relative_paths_survive_moving_the_folder(blender, recording, tmp_path):
    emg_object, internal = _ext("blender.anim.emg_object"), _ext("blender.anim.internal")
    drive = _ext("blender.jobs.drive").drive
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy(recording, folder / "take1.edf")
    face = _face()
    _imported(folder / "take1.edf")  # before the first save: stored absolute, made relative on save
    face_name = face.name
    assert bpy.ops.wm.save_as_mainfile(filepath=str(folder / "scene.blend")) == {"FINISHED"}
    obj = bpy.context.scene.eifer.recording
    assert emg_object.source(obj) == "//take1.edf"
    _imported(folder / "take1.edf")  # a saved file: stored relative at once, the same object
    assert emg_object.source(bpy.context.scene.eifer.recording) == "//take1.edf"
    assert len([o for o in bpy.data.objects if emg_object.kind(o) == "recording"]) == 1
    assert bpy.ops.wm.save_mainfile() == {"FINISHED"}

    moved = tmp_path / "elsewhere" / "project"
    moved.parent.mkdir()
    shutil.move(folder, moved)
    bpy.ops.wm.open_mainfile(filepath=str(moved / "scene.blend"))
    obj, face = bpy.context.scene.eifer.recording, bpy.data.objects[face_name]
    assert emg_object.source_path(obj) == moved / "take1.edf"
    from_curves = drive(face, obj)
    reread = drive(face, obj, reread=True)
    np.testing.assert_allclose(reread.result.expression.values, from_curves.result.expression.values, atol=1e-6)
    (moved / "sub").mkdir()
    assert bpy.ops.wm.save_as_mainfile(filepath=str(moved / "sub" / "copy.blend")) == {"FINISHED"}
    assert emg_object.source(obj) == "//../take1.edf"  # a Save As elsewhere re-bases the path
    assert internal.file_version(bpy.context.scene) == internal.addon_version()


def test_a_file_saved_by_release_0_1_0_opens_upgrades_and_drives(blender, tmp_path):
    emg_object, internal = _ext("blender.anim.emg_object"), _ext("blender.anim.internal")
    copy = tmp_path / FIXTURE.name
    shutil.copy(FIXTURE, copy)
    bpy.ops.wm.open_mainfile(filepath=str(copy))  # load_post upgrades it
    scene = bpy.context.scene
    assert internal.file_version(scene) == internal.addon_version()
    assert internal.get(scene, internal.UPGRADED_FROM_KEY) == "0.1.0"
    obj, face = bpy.data.objects["EMG release_emg"], bpy.data.objects["OpenHead"]
    assert not [k for k in obj.keys() if k.startswith("eifer_")]
    assert not [k for k in face.keys() if k.startswith("eifer_")]
    assert emg_object.kind(obj) == "recording" and len(emg_object.channel_names(obj)) == 22
    assert internal.get(face, "driven_by") == obj.name and internal.get(face, "rig") == "open_head"
    assert all(internal.get(a, "made") for a in bpy.data.actions)
    report = _ext("blender.jobs.drive").drive(face, obj)  # the curves drive, whether the recording is there or not
    assert (report.frame_start, report.frame_end) == (1, 120)  # 4 s at 30 fps, as 0.1.0 keyed them
    assert not report.result.left_alone and set(report.result.driven) == set(report.result.model.metadata.output_names)


def test_no_eifer_internals_in_custom_properties_after_a_drive(blender, recording):
    face = _face()
    scene = bpy.context.scene
    obj = _imported(recording)
    scene.eifer.face = face
    assert bpy.ops.eifer.drive_face() == {"FINISHED"}
    shown = {o.name: [k for k in o.keys() if not k.startswith("emg:")] for o in (obj, face, scene)}
    shown.update({a.name: list(a.keys()) for a in bpy.data.actions})
    shown[face.data.name] = list(face.data.keys())
    assert not any(keys for keys in shown.values()), shown
    channels = _ext("blender.anim.emg_object").channel_names(obj)
    assert sorted(obj.keys()) == sorted(f"emg:{n}" for n in channels)  # only the curves the user edits
    assert obj.animation_data.action.name == obj.name  # "EMG subject7", not "EMG EMG subject7"
    assert _ext("blender.anim.internal").file_version(scene) == _ext("blender.anim.internal").addon_version()


# What this change moved out of Custom Properties, by the names files saved before it hold.
MOVED_LATER = {f"eifer_heatmap_{k}" for k in ("source", "slots", "added_slot", "active_colour", "percentile")} | {
    f"eifer_flame_{k}" for k in ("n_shape", "n_expression", "version", "source", "eyelids",
                                 "joint_template_m", "joint_shape_dirs_m")} | {
    "eifer_capture", "eifer_previous_action", "eifer_previous_action_slot"}
SHOWN_DATA = ("objects", "meshes", "shape_keys", "actions", "scenes", "armatures", "materials", "node_groups")


def _everything(recording, tmp_path):
    """Import, a drive over the user's own key animation, the heatmap, a capture import and a FLAME
    head (with eyelid keys) built: every kind of thing the add-on stores on datablocks."""
    from tests import flame_fixtures as ff

    scene = bpy.context.scene
    face = _face()
    block = face.data.shape_keys.key_blocks[1]
    block.value = 0.5
    block.keyframe_insert("value", frame=1)  # the user's own animation: the drive stashes it
    obj = _imported(recording)
    scene.eifer.face = face
    assert bpy.ops.eifer.drive_face() == {"FINISHED"}
    _ext("blender.jobs.heatmap").enable_heatmap(face, obj)
    captures, tracks = _ext("core.trackfiles.captures"), _ext("core.tracks")
    names = _ext("core.expression.spaces").ARKIT52
    values = np.full((20, len(names)), 0.3)
    capture = captures.write_live_link_face_csv(tracks.ExpressionTrack(values, names, 30.0, "arkit52", "1"),
                                                tmp_path / "take.csv")
    assert bpy.ops.eifer.import_capture(filepath=str(capture), start_frame=1) == {"FINISHED"}
    arrays = ff.make_flame_arrays(**ff.SMALL, seed=5)
    rng = np.random.default_rng(2)
    arrays["l_eyelid"], arrays["r_eyelid"] = rng.normal(0.0, 1e-3, (2, *arrays["v_template"].shape))
    model = _ext("core.heads.flame_file").load_flame_model(ff.write_flame_npz(tmp_path / "small.npz", arrays))
    rig = _ext("blender.rigs.flame_build").build_flame_rig(model, scene.collection, 4, 6)
    assert rig.has_eyelids
    return face, obj, rig


def _eifer_custom_properties():
    flame = _ext("blender.rigs.flame")
    # eifer_bones is the user's; the FLAME armature's driven sums are written by drivers, which reach
    # custom properties only (see blender.anim.internal)
    allowed = {"eifer_bones", flame.EXPRESSION_PARTS_PROP, flame.EXPRESSION_OFFSET_PROP}
    return {f"{kind} {x.name}": sorted(k for k in x.keys() if k.startswith("eifer") and k not in allowed)
            for kind in SHOWN_DATA for x in getattr(bpy.data, kind)}


def test_no_eifer_internals_in_custom_properties_after_everything(blender, recording, tmp_path):
    face, obj, rig = _everything(recording, tmp_path)
    internal, keyframes = _ext("blender.anim.internal"), _ext("blender.anim.keyframes")
    shown = _eifer_custom_properties()
    assert not any(shown.values()), {k: v for k, v in shown.items() if v}
    heatmap = _ext("blender.jobs.heatmap")
    assert heatmap.heatmap_source(face) == obj and internal.get(face, heatmap.PERCENTILE_KEY) == 95.0
    assert keyframes.has_previous_action(face.data.shape_keys)
    assert internal.get(face, _ext("blender.jobs.capture").CAPTURE_KEY).endswith("take.csv")
    assert (rig.n_shape, rig.n_expression) == (4, 6)
    assert _ext("blender.rigs.flame").rest_joints(rig).shape == (5, 3)


def _plain(value):
    """An ID property's value as it compares across a save and a reload (a datablock: its name)."""
    if isinstance(value, bpy.types.ID):
        return "ID", value.name
    return value.to_list() if hasattr(value, "to_list") else value


def test_a_file_saved_before_the_internals_moved_opens_with_them_moved(blender, recording, tmp_path):
    face, obj, rig = _everything(recording, tmp_path)
    internal = _ext("blender.anim.internal")
    kept, written = {}, set()
    for kind, names in internal.LEGACY_KEYS.items():  # back to the custom properties they were
        for id_data in getattr(bpy.data, kind):
            for old, new in names.items():
                if old in MOVED_LATER and internal.has(id_data, new):
                    value = internal.pop(id_data, new)
                    id_data[old] = value
                    kept[kind, id_data.name, new] = _plain(value)
                    written.add(old)
    assert written == MOVED_LATER  # the file holds every name this change moved
    assert face["eifer_heatmap_source"] == obj and face.data.shape_keys["eifer_previous_action"]
    names = (face.name, obj.name, rig.mesh_obj.name, rig.armature_obj.name, face.data.shape_keys.name)
    assert bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "before.blend")) == {"FINISHED"}
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "before.blend"))  # load_post upgrades it

    shown = _eifer_custom_properties()
    assert not any(shown.values()), {k: v for k, v in shown.items() if v}
    for (kind, name, key), value in kept.items():  # nothing lost
        assert _plain(internal.get(getattr(bpy.data, kind)[name], key)) == value, (kind, name, key)
    face, obj = bpy.data.objects[names[0]], bpy.data.objects[names[1]]
    assert internal.get(bpy.context.scene, internal.UPGRADED_FROM_KEY) == internal.addon_version()
    heatmap, flame = _ext("blender.jobs.heatmap"), _ext("blender.rigs.flame")
    assert heatmap.heatmap_source(face) == obj
    assert heatmap.disable_heatmap(face) and not heatmap.is_enabled(face)
    rig = flame.find_flame_rig(bpy.data.objects[names[2]])
    assert rig.armature_obj.name == names[3] and (rig.n_shape, rig.n_expression) == (4, 6) and rig.has_eyelids
    assert flame.rest_joints(rig).shape == (5, 3)
    assert _ext("blender.anim.keyframes").restore_previous_action(bpy.data.shape_keys[names[4]])
