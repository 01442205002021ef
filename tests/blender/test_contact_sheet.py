"""The demo's contact sheet: rest and the six basic emotions of the bundled example, driven by the
shipped model, and each emotion reads around the brows and eyes, not only at the mouth.

Renders are small (Workbench, 96 px). The brow and eye region is found by projecting the open
head's own brow and lid-line vertices through the render camera, so the check follows the data.
"""
import bpy
import numpy as np
import pytest

from tests.helpers import extension_module

SIZE = 96
CHANGED = 0.05  # a pixel has changed when a channel moves by more than this (display values 0–1)
MIN_CHANGED_FRACTION = 0.02  # of the brow and eye region's pixels: well above a quiet frame's 0
EMOTIONS = ("happiness", "sadness", "anger", "fear", "surprise", "disgust")


@pytest.fixture(scope="module")
def driven(extension, tmp_path_factory):
    """(scene, face, rest frame, {emotion: frame}, {name: image}, brow/eye window, events): the example
    driven at 24 fps, and its rest, a second quiet frame and each emotion rendered."""
    demo = extension_module("cli.demo")
    sheet = extension_module("blender.jobs.contact_sheet")
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    face = extension_module("blender.rigs.openhead").build_open_head(scene.collection)
    report = extension_module("blender.jobs.drive").drive(face, str(demo.EXAMPLE), scene=scene, start_frame=1,
                                                          notch_hz=(demo.MAINS_HZ,))
    events = demo.recording_events(demo.EXAMPLE)
    expression, first = report.result.expression, report.result.first_frame
    rest, frames = sheet.emotion_frames(expression, first, events)
    extension_module("blender.jobs.render").setup_stage(scene, face, resolution_px=SIZE)
    folder = tmp_path_factory.mktemp("sheet")
    images = {}
    for name, frame in {"rest": rest, "quiet": _quiet_frame(expression, first, events, rest), **frames}.items():
        scene.frame_set(frame)
        images[name] = sheet.render_image(scene, folder / f"{name}.png")[..., :3]
    yield scene, face, rest, frames, images, _brow_and_eye_window(scene, face), events, report
    bpy.ops.wm.read_homefile(use_empty=True)


def _quiet_frame(expression, first, events, rest) -> int:
    """A second frame at rest, away from every event and from the rest frame: the noise a rest
    frame shows (idle tone, gaze) against the one the sheet uses."""
    times = expression.start_s + np.arange(expression.n_frames) / expression.fps
    quiet = np.ones(expression.n_frames, dtype=bool)
    for onset, duration, _ in events:
        quiet &= ~((times >= onset - 0.5) & (times <= onset + duration + 0.5))
    quiet &= np.abs(np.arange(expression.n_frames) + first - rest) > 2 * expression.fps
    amount = expression.values.sum(axis=1)
    candidates = np.flatnonzero(quiet)
    return int(first + candidates[np.argsort(amount[candidates])[len(candidates) // 2]])


def _brow_and_eye_window(scene, face) -> tuple[slice, slice]:
    """Rows and columns (top row first) of the render around the brows and both lid lines."""
    core = extension_module("core.heads.openhead")
    head = core.load_open_head()
    points = np.concatenate([head.vertices_m[core.brow_density(head) > 0.5],
                             head.vertices_m[head.lid_line_L], head.vertices_m[head.lid_line_R]])
    bpy.context.view_layer.update()
    render, camera = scene.render, scene.camera
    projection = np.array(camera.calc_matrix_camera(bpy.context.evaluated_depsgraph_get(),
                                                    x=render.resolution_x, y=render.resolution_y))
    to_camera = np.array(camera.matrix_world.inverted()) @ np.array(face.matrix_world)
    clip = np.concatenate([points, np.ones((len(points), 1))], axis=1) @ (projection @ to_camera).T
    ndc = clip[:, :2] / clip[:, 3:4]
    cols = ((ndc[:, 0] + 1.0) * 0.5 * render.resolution_x).astype(int)
    rows = ((1.0 - ndc[:, 1]) * 0.5 * render.resolution_y).astype(int)
    pad = 3
    return slice(max(rows.min() - pad, 0), rows.max() + pad + 1), slice(max(cols.min() - pad, 0), cols.max() + pad + 1)


def _changed_fraction(image, rest, window) -> float:
    return float((np.abs(image[window] - rest[window]).max(axis=2) > CHANGED).mean())


def test_each_emotion_is_picked_inside_its_own_event(driven):
    _, _, rest, frames, _, _, events, report = driven
    sheet = extension_module("blender.jobs.contact_sheet")
    assert tuple(frames) == EMOTIONS  # all six, in the sheet's order
    fps, start_s = report.result.expression.fps, report.result.expression.start_s
    first = report.result.first_frame

    def time_s(frame):
        return start_s + (frame - first) / fps

    for emotion, frame in frames.items():
        spans = [(onset, onset + duration) for onset, duration, label in events if sheet.emotion_of(label) == emotion]
        assert any(a - 1e-9 <= time_s(frame) <= b + 1e-9 for a, b in spans), emotion
    assert not any(onset - 0.5 <= time_s(rest) <= onset + duration + 0.5 for onset, duration, _ in events)


def test_every_emotion_differs_from_rest_around_the_brows_and_eyes(driven):
    _, _, _, frames, images, window, _, _ = driven
    rows, cols = window
    assert rows.stop <= 0.6 * SIZE, "the brow and eye window reaches the mouth"
    quiet = _changed_fraction(images["quiet"], images["rest"], window)
    assert quiet < MIN_CHANGED_FRACTION / 4, f"a quiet frame already changes {quiet:.1%} of the brows and eyes"
    measured = {emotion: _changed_fraction(images[emotion], images["rest"], window) for emotion in frames}
    weak = {emotion: f"{fraction:.1%}" for emotion, fraction in measured.items() if fraction < MIN_CHANGED_FRACTION}
    assert not weak, f"changed pixels around the brows and eyes: {weak} (all: {measured})"


def test_the_sheet_tiles_rest_and_the_six_emotions_with_labels(driven, tmp_path):
    scene, face, _, _, _, _, events, report = driven
    sheet = extension_module("blender.jobs.contact_sheet")
    path, shown = sheet.emotion_sheet(scene, report.result.expression, report.result.first_frame, events,
                                      tmp_path / "emotions.png")
    assert [label.split()[0] for label in shown] == ["rest", *EMOTIONS]
    image = sheet.read_png(path)
    assert image.shape[:2] == (2 * (SIZE + sheet.LABEL_PX), 4 * SIZE)  # 4 a row, the 8th tile padded
    label_strip = image[SIZE:SIZE + sheet.LABEL_PX, :SIZE, :3]
    assert (label_strip > 0.5).any() and np.median(label_strip) == pytest.approx(sheet.BACKGROUND, abs=0.02)
    assert np.allclose(image[-SIZE:, -SIZE:, :3], sheet.BACKGROUND, atol=0.01)  # the padding
    assert bpy.data.scenes.get("EIFER contact sheet labels") is None and "EIFER label" not in bpy.data.objects
