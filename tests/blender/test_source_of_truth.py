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
