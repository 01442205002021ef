"""`eifer demo` on a short clip: a quiet log, a video of the face beside the EMG panel, and a .blend
that opens ready to use (sidebar, camera, lights, render settings, the EMG object)."""
import subprocess
import sys

import bpy
import numpy as np
import pytest
from bpy_extras.object_utils import world_to_camera_view

from tests.conftest import REPO_ROOT
from tests.helpers import extension_module

SECONDS, FPS, STEP, HEIGHT = 3, 24, 2, 160
SHEET = 48  # tile size of the emotions' contact sheet
FACE_W, PANEL_W = 120, 360  # 3/4 of the height; 3/2 of it, at least 360


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    done = subprocess.run([sys.executable, "-m", "eifer_blender", "demo", "--out", str(out), "--seconds", str(SECONDS),
                           "--resolution", str(HEIGHT), "--still-resolution", "48", "--sheet-size", str(SHEET)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT, timeout=300)
    assert done.returncode == 0, done.stdout
    return out, done.stdout.splitlines()


def _frame(video, frame: int) -> np.ndarray:
    """Frame ``frame`` (1-based) of a video as rows top to bottom of RGB, read through Blender's sequencer."""
    scene, window = bpy.data.scenes.new("probe"), bpy.context.window
    shown, window.scene = window.scene, scene
    try:
        clip = bpy.data.movieclips.load(str(video))
        width, height = clip.size
        scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = width, height, 100
        scene.view_settings.view_transform = "Standard"
        scene.sequence_editor_create().strips.new_movie("video", str(video), 1, 1)
        scene.frame_start = scene.frame_end = frame
        scene.frame_set(frame)
        scene.render.image_settings.file_format = "PNG"
        scene.render.filepath = str(video.with_name(f"probe_{frame}.png"))
        bpy.ops.render.render(write_still=True, scene=scene.name)
        image = bpy.data.images.load(scene.render.filepath)
        pixels = np.empty(width * height * 4, dtype=np.float32)
        image.pixels.foreach_get(pixels)
        return pixels.reshape(height, width, 4)[::-1, :, :3]
    finally:
        window.scene = shown
        bpy.data.scenes.remove(scene)


def _red(image) -> np.ndarray:
    """Where the envelopes' red-orange is."""
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    return (r > 0.45) & (r > 2.0 * b) & (g < 0.6 * r)


def _cursor_x(image) -> float:
    """The column of the time cursor: a yellow line a third of the frame high or more."""
    yellow = (image[..., 0] > 0.8) & (image[..., 1] > 0.75) & (image[..., 2] < 0.8 * image[..., 1])
    columns = np.flatnonzero(yellow.sum(axis=0) > HEIGHT // 3)
    assert columns.size, "no cursor"
    return float(columns.mean())


def test_the_demo_log_is_one_line_a_stage(demo):
    _, lines = demo
    assert len(lines) <= 50, "\n".join(lines)
    text = "\n".join(lines)
    for noise in ("Fra:", "Append frame", "Saved:", "EGL", "Read blend"):
        assert noise not in text, text
    assert any(line.startswith("video: demo.mp4") for line in lines), text
    assert "s CPU in all" in text and lines[-1].startswith("demo written to")


def test_the_video_shows_the_face_beside_the_emg_with_a_moving_cursor(blender, demo):
    out, _ = demo
    video = out / "demo.mp4"
    clip = bpy.data.movieclips.load(str(video))
    assert clip.frame_duration == SECONDS * FPS // STEP
    assert tuple(clip.size) == (FACE_W + PANEL_W, HEIGHT)
    assert clip.fps == pytest.approx(FPS / STEP)
    first, late = _frame(video, 1), _frame(video, clip.frame_duration)
    face, panel = first[:, :FACE_W], first[:, FACE_W:]
    backdrop = np.median(first[2:6, FACE_W // 2 - 4:FACE_W // 2 + 4], axis=(0, 1))  # above the face
    assert np.abs(face[HEIGHT // 2, FACE_W // 2] - backdrop).max() > 0.2, "no face in the middle of its half"
    # the envelopes: saturated red-orange strokes in the panel, hardly any in the face's half
    assert _red(panel).sum() > 500 and _red(face).sum() < 0.2 * _red(panel).sum()
    # the time cursor starts at the plot's left and ends at its right
    assert FACE_W < _cursor_x(first) < FACE_W + PANEL_W / 3 < FACE_W + 2 * PANEL_W / 3 < _cursor_x(late)
    assert (out / "demo_frame.png").stat().st_size > 1000 and (out / "demo_emg_vs_curves.png").is_file()


def test_the_saved_blend_opens_ready_to_use(blender, demo):
    out, _ = demo
    bpy.ops.wm.open_mainfile(filepath=str(out / "demo.blend"))
    scene = bpy.context.scene
    settings = scene.eifer
    face, recording = settings.face, settings.recording
    assert face is not None and face.name == "OpenHead" and face.data.shape_keys.animation_data.action is not None
    assert extension_module("blender.anim.emg_object").kind(recording) == "recording"
    assert settings.heatmap_source == recording and settings.mains_hz == "50" and settings.start_frame == 1
    curves = [c for layer in recording.animation_data.action.layers for strip in layer.strips
              for bag in strip.channelbags for c in bag.fcurves]
    assert len(curves) == 22  # the example's Fridlund montage
    assert bpy.ops.eifer.drive_face.poll() and bpy.ops.eifer.infer_muscles.poll()
    assert bpy.ops.eifer.toggle_heatmap.poll()
    # render settings: what the video used, at the recording's drive
    render = scene.render
    assert render.fps / render.fps_base == FPS
    assert (scene.frame_start, scene.frame_end) == (1, 45 * FPS)  # the keyed range: the whole example
    assert (render.resolution_x, render.resolution_y, render.resolution_percentage) == (FACE_W, HEIGHT, 100)
    assert render.engine == "BLENDER_WORKBENCH" and render.filepath.startswith("//")
    assert render.image_settings.file_format == "FFMPEG"
    # a camera that sees the whole face, and lights
    assert scene.camera is not None
    points = [face.matrix_world @ v.co for v in list(face.data.vertices)[::10]]
    seen = np.array([tuple(world_to_camera_view(scene, scene.camera, p)) for p in points])
    assert (seen[:, :2] > 0).all() and (seen[:, :2] < 1).all() and (seen[:, 2] > 0).all()
    assert len([o for o in scene.objects if o.type == "LIGHT"]) >= 2


def test_the_contact_sheet_shows_rest_and_the_six_emotions(blender, demo):
    """demo_emotions.png: rest and the six emotions of the whole example, four tiles a row, labelled
    (tests/blender/test_contact_sheet.py checks what each tile shows)."""
    out, lines = demo
    sheet = extension_module("blender.jobs.contact_sheet")
    line = next(line for line in lines if line.startswith("contact sheet: demo_emotions.png"))
    for label in ("rest", "happiness", "sadness", "anger", "fear", "surprise", "disgust"):
        assert label in line, line
    image = sheet.read_png(out / "demo_emotions.png")
    assert image.shape[:2] == (2 * (SHEET + sheet.LABEL_PX), 4 * SHEET)
