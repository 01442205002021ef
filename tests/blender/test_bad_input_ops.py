"""Bad inputs through the sidebar's operators, as a user meets them: every one an operator error with
a message that names the problem (never a traceback), the scene and its animation unchanged and
no file written; a recording cut short imports with a warning instead."""
import re

import bpy
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from eifer_blender.core.network import shipped_model_path
from eifer_blender.core.recording import write_recording
from eifer_blender.core.simulator.session import simulate_session


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_ops")
    session = simulate_session("emotions", subject=4, duration_s=6.0, rate_hz=2048.0, fps=30.0, seed=2)
    good = folder / "good.edf"
    write_recording(session.recording, good)
    data = good.read_bytes()
    header = int(data[184:192].decode())
    (folder / "cut_short.edf").write_bytes(data[:header + (len(data) - header) // 2])
    (folder / "header_only.edf").write_bytes(data[:300])
    (folder / "empty.edf").write_bytes(b"")
    (folder / "garbage.edf").write_bytes(np.random.default_rng(0).bytes(4096))
    (folder / "notes.xyz").write_text("not a recording\n")
    (folder / "no_units.csv").write_text("time,Zyg_L,Corr_L\n" + "".join(
        f"{i / 2000:.4f},{np.sin(i):.3f},{np.cos(i):.3f}\n" for i in range(4000)))
    (folder / "huge.csv").write_text("time,Zyg_L (uV),Corr_L (uV)\n" + "".join(
        f"{i / 2000:.4f},{(-1) ** i * 1e200:g},{np.cos(i):.3f}\n" for i in range(4000)))
    (folder / "a_file").write_text("in the way\n")
    (folder / "model.onnx").write_bytes(b"\x08\x01garbage")
    for name, poison in (("nan_model.onnx", np.nan), ("huge_model.onnx", 1e30)):
        _poisoned(shipped_model_path("emg2arkit"), folder / name, poison)
    return folder


def _poisoned(source, target, poison):
    """The shipped model with ``poison`` added to its output: a damaged export."""
    model = onnx.load(str(source))
    output = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = [f"{name}_raw" if name == output else name for name in node.output]
    model.graph.initializer.append(numpy_helper.from_array(np.array(poison, dtype=np.float32), "poison"))
    model.graph.node.append(helper.make_node("Add", [f"{output}_raw", "poison"], [output]))
    onnx.save(model, str(target))


def _state():
    scene = bpy.context.scene
    curves = {a.name: sum(len(c.keyframe_points) for bag in _bags(a) for c in bag.fcurves)
              for a in bpy.data.actions}
    keys = {o.name: tuple(kb.value for kb in o.data.shape_keys.key_blocks)
            for o in bpy.data.objects if o.type == "MESH" and o.data.shape_keys}
    return (sorted(o.name for o in bpy.data.objects), curves, keys, (scene.frame_start, scene.frame_end),
            scene.eifer.recording and scene.eifer.recording.name)


def _bags(action):
    return [bag for layer in action.layers for strip in layer.strips for bag in strip.channelbags]


@pytest.fixture
def driven_scene(blender, inputs):
    """The open head as the sidebar's face, a good recording imported and driven once."""
    assert bpy.ops.eifer.add_open_head() == {"FINISHED"}
    bpy.context.scene.eifer.face = bpy.context.active_object
    assert bpy.ops.eifer.import_emg(filepath=str(inputs / "good.edf")) == {"FINISHED"}
    assert bpy.ops.eifer.drive_face() == {"FINISHED"}
    return bpy.context.scene.eifer


IMPORTS = [
    ("missing.edf", "not found"),
    ("empty.edf", "empty|not .* EDF|cannot|no data"),
    ("garbage.edf", "EDF|cannot|not"),
    ("header_only.edf", "EDF|cannot|truncated|cut"),
    ("notes.xyz", "format|\\.xyz"),
    ("no_units.csv", "units"),
    ("huge.csv", "huge.csv"),
]


@pytest.mark.parametrize("name, message", IMPORTS)
def test_import_emg_refuses_bad_files(driven_scene, inputs, name, message):
    _refused(lambda: bpy.ops.eifer.import_emg(filepath=str(inputs / name)), message, inputs)


@pytest.mark.parametrize("setting, value, message", [
    ("model_path", "missing.onnx", "not found"),
    ("model_path", "model.onnx", "model.onnx"),
    ("model_path", "nan_model.onnx", "nan_model.onnx.*NaN or infinite"),
    ("model_path", "huge_model.onnx", "huge_model.onnx.*far outside 0–1"),
    ("model_path", "good.edf", "good.edf"),
])
def test_drive_refuses_bad_models_and_matrices(driven_scene, inputs, setting, value, message):
    setattr(driven_scene, setting, str(inputs / value))
    _refused(lambda: bpy.ops.eifer.drive_face(), message, inputs)


@pytest.mark.parametrize("name, message", [("moved.edf", "not found"), ("garbage.edf", "garbage.edf")])
def test_rereading_a_recording_moved_or_damaged_since_import_is_refused(driven_scene, inputs, name, message):
    from eifer_blender.blender.anim import internal
    from eifer_blender.blender.anim.emg_object import SOURCE_KEY

    internal.put(driven_scene.recording, SOURCE_KEY, str(inputs / name))
    driven_scene.reread_recording = True
    _refused(lambda: bpy.ops.eifer.drive_face(), message, inputs)
    driven_scene.reread_recording = False  # the curves in the .blend drive without the file
    assert bpy.ops.eifer.drive_face() == {"FINISHED"}


@pytest.mark.parametrize("operator", ["export_envelopes", "export_muscles"])
@pytest.mark.parametrize("file_format", ["CSV", "EDF"])
def test_exports_below_a_file_are_refused(driven_scene, inputs, operator, file_format):
    bpy.context.view_layer.objects.active = driven_scene.recording
    suffix = ".csv" if file_format == "CSV" else ".edf"
    options = {"source": "RECORDING"} if operator == "export_muscles" else {}
    _refused(lambda: getattr(bpy.ops.eifer, operator)(filepath=str(inputs / "a_file" / f"out{suffix}"),
                                                       file_format=file_format, **options),
             "is a file, not a folder|a_file", inputs)


def test_a_recording_cut_short_imports_with_a_warning(driven_scene, inputs, capsys):
    assert bpy.ops.eifer.import_emg(filepath=str(inputs / "cut_short.edf")) == {"FINISHED"}
    assert "missing" in capsys.readouterr().out.lower()


def _refused(call, message, folder):
    before, files = _state(), sorted(folder.rglob("*"))
    with pytest.raises(RuntimeError) as error:
        call()
    text = str(error.value)
    assert "Traceback" not in text, text
    assert re.search(message, text, flags=re.I), text
    assert len(text.strip().splitlines()) == 1, text
    assert _state() == before
    assert sorted(folder.rglob("*")) == files
