"""Face captures in reverse, in a real Blender: a Live Link Face or MediaPipe file keyed on the open
head at the scene's fps, then ``infer-muscles --capture`` (no rig) gives the muscles that inferring
from the keyed head gives. Bad captures are operator errors that change nothing."""
import re

import bpy
import numpy as np
import pytest

from eifer_blender.core.expression.spaces import ARKIT52
from eifer_blender.core.trackfiles import captures, read_track
from eifer_blender.core.tracks import ExpressionTrack
from tests.helpers import extension_module

FPS = 30


def _known_track(n_frames=60, fps=float(FPS), seed=5) -> ExpressionTrack:
    """Smooth ARKit weights in 0–1 (what a capture holds): a few slow sines per shape."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames)[:, None] / fps
    values = 0.5 + 0.45 * np.sin(2 * np.pi * rng.uniform(0.2, 1.5, 52) * t + rng.uniform(0, 6.3, 52))
    return ExpressionTrack(values, ARKIT52, fps, "arkit52", "1")


@pytest.fixture
def head(blender):
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = FPS, 1.0
    assert bpy.ops.eifer.add_open_head() == {"FINISHED"}
    scene.eifer.face = bpy.context.active_object
    return scene.eifer.face


def _keyed(face, names, frames):
    rigs = extension_module("blender.rigs.arkit")
    binding = rigs.arkit_binding(face)
    return rigs.sample_shape_keys(face, binding, frames).select(names)


@pytest.mark.parametrize("writer, name", [(captures.write_live_link_face_csv, "take.csv"),
                                          (captures.write_mediapipe_csv, "blendshapes.csv"),
                                          (captures.write_mediapipe_json, "blendshapes.json")])
def test_a_capture_keys_the_heads_shape_keys_frame_by_frame(head, tmp_path, writer, name):
    track = _known_track()
    path = writer(track, tmp_path / name)
    assert bpy.ops.eifer.import_capture(filepath=str(path), start_frame=11) == {"FINISHED"}
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end) == (11, 70)
    names = [n for n in ARKIT52 if name == "take.csv" or n != "tongueOut"]  # MediaPipe has no tongueOut
    keyed = _keyed(head, names, np.arange(11, 71))
    assert np.abs(keyed.values - track.select(names).values).max() <= 1e-6
    action = head.data.shape_keys.animation_data.action
    assert action.name.startswith("EIFER capture")
    assert len(action.layers[0].strips[0].channelbags[0].fcurves) == len(names)


def test_a_capture_in_another_fps_lands_on_the_scenes_frames(head, tmp_path):
    fast = _known_track(121, fps=60.0)
    path = captures.write_live_link_face_csv(fast, tmp_path / "take.csv", timecode_fps=60.0)
    report = extension_module("blender.jobs.capture").import_capture(head, path)
    assert (report.frame_start, report.frame_end) == (1, 61) and report.unmatched == []
    keyed = _keyed(head, ARKIT52, np.arange(1, 62))
    assert np.abs(keyed.values - fast.values[::2]).max() <= 1e-6


def test_infer_muscles_from_a_capture_equals_inferring_from_the_keyed_head(head, tmp_path):
    track = _known_track(90)
    path = captures.write_live_link_face_csv(track, tmp_path / "take.csv")
    cli = extension_module("cli")
    imported = extension_module("blender.jobs.capture").import_capture(head, path)
    from_head = extension_module("blender.jobs.infer").infer_muscles(
        head, frame_range=(imported.frame_start, imported.frame_end), providers="cpu")
    out = tmp_path / "muscles.csv"
    assert cli.main(["infer-muscles", "--capture", str(path), "--out", str(out), "--providers", "cpu"]) == 0
    from_capture = read_track(out)
    assert from_capture.names == from_head.muscles.names and from_capture.n_frames == 90
    assert from_capture.fps == FPS and from_capture.units == from_head.muscles.units
    assert np.abs(from_capture.values - from_head.muscles.values).max() <= 1e-5
    # a MediaPipe file of the same track: the same, but for tongueOut, which no muscle site sees
    mp = captures.write_mediapipe_json(track, tmp_path / "mp.json")
    out_mp = tmp_path / "mp_muscles.csv"
    assert cli.main(["infer-muscles", "--capture", str(mp), "--out", str(out_mp), "--providers", "cpu"]) == 0
    assert np.abs(read_track(out_mp).values - from_head.muscles.values).max() <= 1e-5


def _state():
    scene = bpy.context.scene
    curves = {a.name: sum(len(c.keyframe_points) for layer in a.layers for strip in layer.strips
                          for bag in strip.channelbags for c in bag.fcurves) for a in bpy.data.actions}
    keys = {o.name: tuple(kb.value for kb in o.data.shape_keys.key_blocks)
            for o in bpy.data.objects if o.type == "MESH" and o.data.shape_keys}
    return sorted(o.name for o in bpy.data.objects), curves, keys, (scene.frame_start, scene.frame_end)


def _bad_captures(folder):
    good = captures.write_live_link_face_csv(_known_track(8), folder / "good.csv").read_text().splitlines()
    rows = [line.split(",") for line in good[1:]]
    rows[3][0] = "00:00:00:01.000"
    files = {"empty.csv": "", "no_names.csv": "Timecode,Alpha\n00:00:00:00.000,1\n",
             "backwards.csv": "\n".join([good[0], *(",".join(r) for r in rows)]),
             "no_timecode.csv": "\n".join(["When" + good[0][len("Timecode"):], *good[1:]]),
             "notes.txt": "\n".join(good)}
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize("name, message", [("empty.csv", "empty"), ("no_names.csv", "no.*ARKit blendshape name"),
                                           ("backwards.csv", "goes backwards"),
                                           ("no_timecode.csv", "no Timecode column"),
                                           ("notes.txt", "not a face capture"), ("missing.csv", "not found")])
def test_bad_captures_are_operator_errors_that_change_nothing(head, tmp_path, name, message):
    folder = _bad_captures(tmp_path)
    assert bpy.ops.eifer.import_capture(filepath=str(folder / "good.csv")) == {"FINISHED"}  # an animation to keep
    before, files = _state(), sorted(folder.iterdir())
    with pytest.raises(RuntimeError) as error:
        bpy.ops.eifer.import_capture(filepath=str(folder / name), start_frame=5)
    text = str(error.value)
    assert "Traceback" not in text and re.search(message, text), text
    assert _state() == before
    # the command line: exit code 3, a message, nothing written
    out = tmp_path / "m.csv"
    assert extension_module("cli").main(["infer-muscles", "--capture", str(folder / name),
                                              "--out", str(out), "--providers", "cpu"]) == 3
    assert not out.exists() and sorted(folder.iterdir()) == files


def test_capture_options_that_need_a_scene_are_refused(head, tmp_path, capsys):
    path = captures.write_mediapipe_csv(_known_track(5), tmp_path / "mp.csv")
    cli = extension_module("cli")
    out = tmp_path / "m.csv"
    for extra in (["--blend", str(tmp_path / "x.blend")], ["--save", str(tmp_path / "x.blend")], ["--fps", "0"]):
        assert cli.main(["infer-muscles", "--capture", str(path), "--out", str(out), *extra]) == 3
    assert cli.main(["infer-muscles", "--out", str(out)]) == 3
    assert "--capture" in capsys.readouterr().err and not out.exists()


def test_a_face_without_arkit_keys_is_refused(blender, tmp_path):
    mesh = bpy.data.meshes.new("Plain")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 0, 1)], [], [(0, 1, 2)])
    plain = bpy.data.objects.new("Plain", mesh)
    bpy.context.scene.collection.objects.link(plain)
    plain.shape_key_add(name="Basis")
    plain.shape_key_add(name="Smile")
    bpy.context.scene.eifer.face = plain
    path = captures.write_live_link_face_csv(_known_track(5), tmp_path / "take.csv")
    with pytest.raises(RuntimeError, match="no shape keys with ARKit names"):
        bpy.ops.eifer.import_capture(filepath=str(path))
    assert plain.data.shape_keys.animation_data is None
