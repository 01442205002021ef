"""Inferring muscles from a 10-minute ARKit animation on the open head (30 fps, 18 000 frames).

Reading the animation from its F-curves is compared with stepping the scene frame by frame
(what a handler or ``frame_set`` loop does); the stepping baseline is timed on the first
900 frames and scaled to the whole clip. The end-to-end row (read + Exp2EMG + keying 22 curves
on the EMG object) uses the shipped ``arkit2emg`` model when it is built, else a linear ONNX
model of the same input/output size.
"""
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._blender import bpy, empty_scene
from benchmarks.timing import interleaved, median, timing_note
from eifer_blender.blender.jobs import infer
from eifer_blender.blender.rigs import arkit as rig_arkit
from eifer_blender.blender.rigs.openhead import build_open_head
from eifer_blender.core.expression.spaces import ARKIT52, ARKIT_OBSERVABLE
from eifer_blender.core.network import shipped_model_path
from eifer_blender.core.tracks import ExpressionTrack

FPS = 30
DURATION_S = 600.0
BASELINE_FRAMES = 900


def _linear_model(folder: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from eifer_blender.core.network import ModelMetadata
    from eifer_blender.core.recording.montage import FRIDLUND22

    rng = np.random.default_rng(0)
    n_in = len(ARKIT_OBSERVABLE)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["params"], ["flat"], axis=1),
         helper.make_node("Gemm", ["flat", "W", "b"], ["output"], transB=1)], "linear",
        [helper.make_tensor_value_info("params", TensorProto.FLOAT, ["batch", 1, n_in])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 22])],
        initializer=[numpy_helper.from_array(rng.random((22, n_in)).astype(np.float32), "W"),
                     numpy_helper.from_array(np.zeros(22, np.float32), "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    helper.set_model_props(model, ModelMetadata(
        "exp2emg", "params", "arkit52", ARKIT_OBSERVABLE, "1", {"method": "none"}, "fridlund22", FRIDLUND22,
        "normalised", "linear", float(FPS), 1, "centred", "benchmark", "0").to_props())
    path = folder / "linear.onnx"
    onnx.save_model(model, str(path))
    return path


def _animated_head(n_frames: int):
    scene = empty_scene()
    scene.render.fps, scene.render.fps_base = FPS, 1.0
    scene.frame_start, scene.frame_end = 1, n_frames
    head = build_open_head(scene.collection)
    t = np.arange(n_frames) / FPS
    rng = np.random.default_rng(1)
    values = 0.5 + 0.5 * np.sin(2 * np.pi * t[:, None] * rng.uniform(0.05, 0.5, 52) + rng.uniform(0, 6, 52))
    track = ExpressionTrack(values, ARKIT52, FPS, "arkit52", "1")
    rig_arkit.key_expression_track(head, track, rig_arkit.arkit_binding(head), start_frame=1, action_name="bench")
    return scene, head


def rows():
    n_frames = int(DURATION_S * FPS)
    scene, head = _animated_head(n_frames)
    binding = rig_arkit.arkit_binding(head)
    frames = np.arange(1, n_frames + 1)
    read_times = interleaved({
        "curves": lambda: rig_arkit.sample_from_curves(head, binding, frames, scene),
        f"stepping {BASELINE_FRAMES} frames": lambda: rig_arkit.sample_by_stepping(
            head, binding, frames[:BASELINE_FRAMES], scene)})
    fast = median(read_times["curves"])
    stepping = median(read_times[f"stepping {BASELINE_FRAMES} frames"]) * n_frames / BASELINE_FRAMES

    shipped = shipped_model_path("arkit2emg")
    with tempfile.TemporaryDirectory() as folder:
        model = shipped if shipped.is_file() else _linear_model(Path(folder))
        started = time.perf_counter()
        report = infer.infer_muscles(head, scene=scene, model=model, providers="cpu")
        total = time.perf_counter() - started
    bpy.ops.wm.read_homefile(use_empty=True)
    which = "shipped arkit2emg" if shipped.is_file() else "linear stand-in model (arkit2emg not built)"
    return [
        {"measure": "read 10-min ARKit animation (18 000 frames x 52 keys)", "value": fast, "unit": "s",
         "baseline": stepping, "ratio": stepping / fast,
         "note": f"baseline: scene.frame_set per frame, timed on {BASELINE_FRAMES} frames and scaled; "
                 f"{timing_note(read_times)}"},
        {"measure": "infer muscles end to end, 10-min animation", "value": total, "unit": "s",
         "baseline": stepping + (total - fast), "ratio": (stepping + total - fast) / total,
         "note": f"read + {which} + key 22 curves x {report.muscles.n_frames} frames; "
                 "baseline: the same with frame stepping"},
    ]
