"""Every .blend the command line writes opens ready to use: reopened in a fresh Blender, the EIFER
sidebar holds the face, the recording and the settings the command used, Drive / Infer / Heatmap
can run, a camera sees the whole face, there are lights, and the render settings are the ones the
command rendered with.

The commands run as a user runs them (``python -m eifer_blender``, the extension not enabled), so
the sidebar's settings are registered by the command line itself. ``eifer demo`` writes its
.blend in tests/blender/test_demo.py, which checks it the same way.
"""
import subprocess
import sys

import bpy
import numpy as np
import pytest
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Vector

from tests import flame_fixtures as ff
from tests.conftest import REPO_ROOT
from tests.helpers import FLAME_PARAMS, extension_module, extension_modules


def _eifer(*argv):
    done = subprocess.run([sys.executable, "-m", "eifer_blender", *map(str, argv)], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def written(extension, tmp_path_factory):
    """{name: .blend} of each command that saves one, run on a short simulated recording."""
    folder = tmp_path_factory.mktemp("saved")
    rec = folder / "rec.edf"
    _eifer("simulate", "--protocol", "emotions", "--subject", "9", "--duration", "6", "--rate", "2048", "--out", rec)
    blends = {name: folder / f"{name}.blend" for name in ("drive", "drive_render", "drive_own", "infer", "flame")}
    _eifer("drive", "--emg", rec, "--out", blends["drive"], "--fps", "24", "--rest-floor", "0.05",
           "--tolerance", "0.002", "--mains", "60", "--sensitivity", "1.5")
    _eifer("drive", "--emg", rec, "--out", blends["drive_render"], "--render", folder / "clip.mp4",
           "--render-frames", "1:2", "--resolution", "48", "--engine", "cycles")
    _eifer("drive", "--emg", rec, "--blend", _own_scene(folder / "mine.blend"), "--object", "OpenHead",
           "--out", blends["drive_own"])
    _eifer("infer-muscles", "--blend", blends["drive"], "--object", "OpenHead", "--out", folder / "m.csv",
           "--save", blends["infer"], "--heatmap")
    arrays, _ = ff.make_face_flame_arrays(seed=0)
    flame = ff.write_flame_npz(folder / "my_flame.npz", arrays)
    fp = extension_modules(*FLAME_PARAMS)
    params = fp.write_flame_params(fp.FlameParams(expression=np.zeros((3, 50)), fps=30.0), folder / "rest.csv",
                                   layout="emoca")
    _eifer("flame-import", params, "--flame", flame, "--out", blends["flame"], "--shapes", "0", "--expressions", "10")
    return folder, blends


def _own_scene(path):
    """A user's .blend: the open head and a camera of their own."""
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    extension_module("blender.rigs.openhead").build_open_head(scene.collection)
    camera = bpy.data.objects.new("My Camera", bpy.data.cameras.new("My Camera"))
    camera.location = (0.3, -2.0, 1.6)
    scene.collection.objects.link(camera)
    scene.camera = camera
    scene.render.resolution_x, scene.render.resolution_y = 640, 360
    bpy.ops.wm.save_as_mainfile(filepath=str(path), copy=True)
    bpy.ops.wm.read_homefile(use_empty=True)
    return path


def _reopen(path):
    """``path`` opened in a fresh Blender session's empty file: its scene."""
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.wm.open_mainfile(filepath=str(path))
    return bpy.context.scene


def _camera_sees_the_face(scene, face) -> None:
    """Every vertex of the face in the camera's view, in front of it; the face's bounds (the box
    the stage frames) inside the view in the plane through their centre; two lights or more."""
    assert scene.camera is not None, "no camera"
    points = [face.matrix_world @ v.co for v in face.data.vertices]
    lo, hi = extension_module("blender.jobs.framing").face_bounds(face)
    y = (lo[1] + hi[1]) / 2
    points += [Vector((x, y, z)) for x in (lo[0], hi[0]) for z in (lo[2], hi[2])]
    seen = np.array([tuple(world_to_camera_view(scene, scene.camera, point)) for point in points])
    assert (seen[:, :2] > 0).all() and (seen[:, :2] < 1).all() and (seen[:, 2] > 0).all(), \
        f"the view spans {seen.min(axis=0)} to {seen.max(axis=0)}"
    assert len([o for o in scene.objects if o.type == "LIGHT"]) >= 2, "no lights"


def test_drive_saves_the_sidebar_a_camera_and_the_settings_it_used(blender, written):
    _, blends = written
    scene = _reopen(blends["drive"])
    settings = scene.eifer
    face, recording = settings.face, settings.recording
    assert face is not None and face.name == "OpenHead" and face.data.shape_keys.animation_data.action is not None
    assert extension_module("blender.anim.emg_object").kind(recording) == "recording"
    assert settings.heatmap_source == recording
    assert settings.mains_hz == "60" and settings.start_frame == 1 and settings.calibration == "PERCENTILE"
    assert settings.rest_floor == pytest.approx(0.05) and settings.key_tolerance == pytest.approx(0.002)
    assert settings.sensitivity == pytest.approx(1.5) and settings.model_path == ""
    assert bpy.ops.eifer.drive_face.poll() and bpy.ops.eifer.infer_muscles.poll()
    assert bpy.ops.eifer.toggle_heatmap.poll()
    _camera_sees_the_face(scene, face)
    render = scene.render
    assert render.fps / render.fps_base == 24 and (scene.frame_start, scene.frame_end) == (1, 6 * 24)
    # nothing rendered: the command's defaults, writing beside the file
    assert (render.resolution_x, render.resolution_y, render.resolution_percentage) == (512, 512, 100)
    assert render.engine == "BLENDER_WORKBENCH" and render.filepath == "//OpenHead.mp4"


def test_drive_with_render_saves_the_render_settings_it_rendered_with(blender, written):
    folder, blends = written
    assert (folder / "clip.mp4").is_file()
    scene = _reopen(blends["drive_render"])
    assert scene.eifer.face is not None and scene.eifer.recording is not None and scene.eifer.mains_hz == "50"
    assert bpy.ops.eifer.drive_face.poll()
    _camera_sees_the_face(scene, scene.eifer.face)
    render = scene.render
    assert (render.resolution_x, render.resolution_y) == (48, 48) and render.engine == "CYCLES"
    assert bpy.path.abspath(render.filepath) == str((folder / "clip.mp4").resolve())


def test_drive_on_a_users_blend_keeps_their_camera_and_fills_the_sidebar(blender, written):
    _, blends = written
    scene = _reopen(blends["drive_own"])
    assert scene.camera.name == "My Camera" and (scene.render.resolution_x, scene.render.resolution_y) == (640, 360)
    assert scene.eifer.face.name == "OpenHead" and scene.eifer.recording is not None
    assert bpy.ops.eifer.drive_face.poll()


def test_infer_muscles_saves_the_inferred_curves_in_the_sidebar(blender, written):
    _, blends = written
    scene = _reopen(blends["infer"])
    settings = scene.eifer
    assert settings.face is not None and settings.face.name == "OpenHead"
    assert settings.recording is not None  # what the driven file held is kept
    assert extension_module("blender.anim.emg_object").kind(settings.inferred) == "inferred"
    assert settings.heatmap_source == settings.inferred
    assert bpy.ops.eifer.drive_face.poll() and bpy.ops.eifer.infer_muscles.poll()
    assert bpy.ops.eifer.toggle_heatmap.poll() and bpy.ops.eifer.compare_emg.poll()
    _camera_sees_the_face(scene, settings.face)


def test_flame_import_saves_the_head_in_the_sidebar_with_a_camera(blender, written):
    _, blends = written
    scene = _reopen(blends["flame"])
    face = scene.eifer.face
    assert face is not None and face.type == "MESH"
    assert bpy.ops.eifer.infer_muscles.poll() and bpy.ops.eifer.toggle_heatmap.poll()
    assert not bpy.ops.eifer.drive_face.poll()  # no recording yet: Import EMG first
    _camera_sees_the_face(scene, face)
    assert scene.render.engine == "BLENDER_WORKBENCH" and scene.render.resolution_y == 512
