"""Infer Muscles / Compare EMG / Toggle Heatmap / Export Muscles operators, panels, and the
``infer-muscles`` and ``compare`` commands, in a real Blender with real ONNX models."""
import importlib
from pathlib import Path

import bpy
import mne
import numpy as np
import pytest

from tests.blender.test_infer import _key, _recording_object, linear_model
from tests.conftest import EXTENSION_MODULE


def _module(name):
    return importlib.import_module(f"{EXTENSION_MODULE}.{name}")


@pytest.fixture
def scene(blender):
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    scene.frame_start, scene.frame_end = 1, 30
    return scene


@pytest.fixture
def animated_head(scene):
    head = _module("blender.rigs.openhead").build_open_head(scene.collection)
    t = np.linspace(0, 1, 30)
    _key(head, {"mouthSmileLeft": np.sin(np.pi * t) ** 2, "mouthSmileRight": 0.8 * np.sin(np.pi * t) ** 2,
                "browDownLeft": t, "jawOpen": 1 - t})
    scene.eifer.face = head
    return head


@pytest.fixture
def model(tmp_path):
    return linear_model(tmp_path / "exp2emg.onnx", _module("core.expression.spaces").ARKIT_OBSERVABLE)[0]


def test_operators_and_panels_are_registered(blender):
    infer_ops = _module("blender.ui.infer_ops")
    for cls in infer_ops.CLASSES:
        assert getattr(bpy.types, cls.__name__, None) is not None, cls.__name__
    for idname in ("infer_muscles", "compare_emg", "toggle_heatmap", "export_muscles"):
        assert hasattr(bpy.ops.eifer, idname)
    assert bpy.types.EIFER_PT_muscles.bl_category == "EIFER" and bpy.types.EIFER_PT_compare.bl_category == "EIFER"


def test_infer_operator_keys_the_scene_range_and_reports_errors_without_changes(scene, animated_head, model):
    settings = scene.eifer
    settings.inverse_model_path = str(model)
    assert bpy.ops.eifer.infer_muscles() == {"FINISHED"}
    inferred = settings.inferred
    assert inferred is not None and _module("blender.anim.emg_object").kind(inferred) == "inferred"
    track = _module("blender.anim.emg_object").read_emg_object(inferred)
    assert track.n_frames == 30 and track.names == _module("core.recording.montage").FRIDLUND22
    # the preview range limits the frames
    scene.use_preview_range = True
    scene.frame_preview_start, scene.frame_preview_end = 5, 12
    assert bpy.ops.eifer.infer_muscles() == {"FINISHED"}
    assert _module("blender.anim.emg_object").read_emg_object(inferred).n_frames == 8
    # a still face: the operator reports the error (raised in scripts) and nothing changes
    still = _module("blender.rigs.openhead").build_open_head(scene.collection, name="Still")
    settings.face = still
    objects_before = sorted(o.name for o in bpy.data.objects)
    with pytest.raises(RuntimeError, match="no animation"):
        bpy.ops.eifer.infer_muscles()
    assert sorted(o.name for o in bpy.data.objects) == objects_before and settings.inferred == inferred


def test_heatmap_toggle_turns_on_and_off_without_handlers(scene, animated_head, model):
    heatmap = _module("blender.jobs.heatmap")
    handlers = (list(bpy.app.handlers.frame_change_pre), list(bpy.app.handlers.frame_change_post))
    scene.eifer.inverse_model_path = str(model)
    with pytest.raises(RuntimeError, match="no EMG object"):
        bpy.ops.eifer.toggle_heatmap()
    bpy.ops.eifer.infer_muscles()
    assert bpy.ops.eifer.toggle_heatmap() == {"FINISHED"}
    assert heatmap.heatmap_source(animated_head) == scene.eifer.inferred == scene.eifer.heatmap_source
    assert animated_head.material_slots[0].link == "OBJECT"
    assert bpy.ops.eifer.toggle_heatmap() == {"FINISHED"}
    assert not heatmap.is_enabled(animated_head) and animated_head.material_slots[0].link == "DATA"
    assert (list(bpy.app.handlers.frame_change_pre), list(bpy.app.handlers.frame_change_post)) == handlers


def test_compare_operator_fills_the_table_and_writes_files(scene, animated_head, model, tmp_path):
    settings = scene.eifer
    settings.inverse_model_path = str(model)
    bpy.ops.eifer.infer_muscles()
    rng = np.random.default_rng(0)
    settings.recording = _recording_object(5 + 10 * rng.random((30, 22)), start_frame=1)
    settings.compare_output = str(tmp_path / "cmp")
    assert bpy.ops.eifer.compare_emg() == {"FINISHED"}
    assert len(settings.compare_rows) == 22 and settings.compare_rows[0].name == "medFront_R"
    assert "median ρ" in settings.compare_summary and "frames 1–30" in settings.compare_summary
    rows = _module("core.analysis.compare").read_metrics_csv(settings.compare_csv)
    assert rows["Zyg_L"]["spearman"] == pytest.approx(
        next(r.spearman for r in settings.compare_rows if r.name == "Zyg_L"), rel=1e-4)
    assert (tmp_path / "cmp").is_dir() and settings.compare_png.endswith(".png")
    # the default (empty) is next to the .blend; in a file never saved it is refused, nothing changed
    settings.compare_output = ""
    written = settings.compare_csv
    with pytest.raises(RuntimeError, match="not saved yet.*Output Folder") as error:
        bpy.ops.eifer.compare_emg()
    assert "Traceback" not in str(error.value)
    assert settings.compare_csv == written
    (tmp_path / "saved").mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "saved" / "scene.blend"))
    assert bpy.ops.eifer.compare_emg() == {"FINISHED"}
    assert Path(settings.compare_csv).parent == tmp_path / "saved" and Path(settings.compare_csv).is_file()


@pytest.mark.parametrize("file_format", ["CSV", "EDF", "BDF", "BIDS"])
def test_export_operator_writes_each_format(scene, animated_head, model, tmp_path, file_format):
    scene.eifer.inverse_model_path = str(model)
    bpy.ops.eifer.infer_muscles()
    expected = _module("blender.anim.emg_object").read_emg_object(scene.eifer.inferred)
    target = tmp_path / ("muscles" + {"CSV": ".csv", "EDF": ".edf", "BDF": ".bdf", "BIDS": ""}[file_format])
    assert bpy.ops.eifer.export_muscles(filepath=str(target), file_format=file_format, subject="07") == {"FINISHED"}
    if file_format == "CSV":
        back = _module("core.trackfiles").read_track(target)
        assert np.allclose(back.values, expected.values, atol=1e-6) and back.fps == 30.0
        return
    if file_format == "BIDS":
        target = target / "sub-07" / "emg" / "sub-07_task-face_acq-inferred_emg.edf"
    reader = mne.io.read_raw_bdf if file_format == "BDF" else mne.io.read_raw_edf
    raw = reader(target, infer_types=True, preload=True, verbose="error")
    assert raw.ch_names == list(expected.names)
    levels = 16777215 if file_format == "BDF" else 65535
    quantum = np.ptp(expected.values, axis=0) / levels
    assert np.all(np.abs(raw.get_data()[:, :30].T - expected.values) <= quantum + 1e-9)


def test_infer_muscles_command_writes_every_output_and_refuses_bad_input(scene, animated_head, model, tmp_path):
    cli = _module("cli")
    assert cli.COMMANDS["infer-muscles"] == "infer_muscles"
    animated_head.name = "Face"
    blend = tmp_path / "in.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    out = tmp_path / "muscles.csv"
    code = cli.main(["infer-muscles", "--blend", str(blend), "--object", "Face", "--out", str(out),
                     "--edf", str(tmp_path / "m.edf"), "--bids", str(tmp_path / "bids"), "--model", str(model),
                     "--providers", "cpu", "--frames", "3:20", "--save", str(tmp_path / "out.blend"), "--heatmap"])
    assert code == 0
    csv = _module("core.trackfiles").read_track(out)
    assert csv.n_frames == 18 and csv.names == _module("core.recording.montage").FRIDLUND22
    raw = mne.io.read_raw_edf(tmp_path / "m.edf", infer_types=True, preload=True, verbose="error")
    quantum = np.ptp(csv.values, axis=0) / 65535
    assert raw.ch_names == list(csv.names) and np.all(np.abs(raw.get_data()[:, :18].T - csv.values) <= quantum + 1e-9)
    assert (tmp_path / "bids" / "sub-01" / "emg" / "sub-01_task-face_acq-inferred_channels.tsv").is_file()
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "out.blend"), load_ui=False)
    saved = bpy.data.objects["Face"]
    assert _module("blender.jobs.heatmap").is_enabled(saved) and _module("blender.anim.internal").get(saved, "inferred") in bpy.data.objects
    # the compare command scores the written files against themselves: perfect agreement
    code = cli.main(["compare", "--recorded", str(out), "--inferred", str(tmp_path / "m.edf"),
                     "--csv", str(tmp_path / "cmp.csv"), "--png", str(tmp_path / "cmp.png")])
    assert code == 0
    rows = _module("core.analysis.compare").read_metrics_csv(tmp_path / "cmp.csv")
    assert rows["median"]["spearman"] > 0.999 and rows["median"]["rmse"] < 1e-3
    # input errors: exit code 3 and a message
    bad = [["--object", "Nobody"], ["--object", "Face", "--frames", "40:50"],
           ["--object", "Face", "--model", str(tmp_path / "missing.onnx")]]
    for extra in bad:
        assert cli.main(["infer-muscles", "--blend", str(blend), "--out", str(tmp_path / "x.csv"),
                         "--providers", "cpu", *extra] + ([] if "--model" in extra else ["--model", str(model)])) == 3
    assert cli.main(["infer-muscles", "--blend", str(blend), "--object", "Face", "--out", str(tmp_path / "x.txt"),
                     "--model", str(model)]) == 3
    assert not (tmp_path / "x.csv").exists()
