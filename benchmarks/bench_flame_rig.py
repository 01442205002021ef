"""Speed of the FLAME rig in Blender, on a synthetic model with FLAME's real sizes.

Row 1: building the rig with 300 identity + 100 expression keys, 36 driven correctives, skinning
groups, bones and the expression-joint drivers; goal ≤ 2 s. Baseline, same run: the floor any
builder pays, a mesh with the same 437 shape keys written by ``foreach_set`` and nothing else.
Row 2: one frame of the rig through Blender's depsgraph (frame change, drivers, shape keys,
skinning) against the numpy forward model for the same parameters.
Row 3: keying one minute (1800 frames at 30 fps) of MMM-layout parameters on the rig, against
reading that CSV file.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.timing import interleaved, median, timing_note

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _floor_mesh(bpy, model, n_keys: int) -> None:
    """Mesh + basis + ``n_keys`` shape keys, coordinates by foreach_set: the builder's floor."""
    mesh = bpy.data.meshes.new("floor")
    mesh.vertices.add(model.n_vertices)
    co = model.v_template_m.astype(np.float32).ravel()
    mesh.vertices.foreach_set("co", co)
    obj = bpy.data.objects.new("floor", mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.shape_key_add(name="Basis", from_mix=False)
    for index in range(n_keys):
        block = obj.shape_key_add(name=f"k{index}", from_mix=False)
        block.points.foreach_set("co", co)
        block.value = 0.0


def rows() -> list[dict]:
    import bpy

    from eifer_blender.blender.rigs import flame as rig_flame
    from eifer_blender.blender.rigs import flame_build
    from eifer_blender.blender.rigs import flame_keys
    from eifer_blender.core.expression.flame_files import (
        read_flame_params,
        write_flame_params,
    )
    from eifer_blender.core.expression.flame_params import FlameParams
    from eifer_blender.core.heads.flame_file import flame_model_from_arrays
    from eifer_blender.core.heads.flame_model import flame_forward
    from tests.flame_fixtures import REAL_SIZES, make_flame_arrays

    arrays = make_flame_arrays(**REAL_SIZES, seed=0)
    arrays["J_regressor"] = arrays["J_regressor"].toarray()  # as an .npz model holds it
    model = flame_model_from_arrays(arrays, "synthetic")
    n_keys = model.n_shape + model.n_expression + 9 * (model.n_joints - 1)
    built = {}
    build_times = interleaved(
        {"floor": lambda: _floor_mesh(bpy, model, n_keys),
         "builder": lambda: built.update(rig=flame_build.build_flame_rig(
             model, bpy.context.scene.collection, n_shape=300, n_expression=100))},
        setup=lambda: bpy.ops.wm.read_homefile(use_empty=True))
    bpy.ops.wm.read_homefile(use_empty=True)
    rig = flame_build.build_flame_rig(model, bpy.context.scene.collection, n_shape=300, n_expression=100)
    build_s, floor_s = median(build_times["builder"]), median(build_times["floor"])
    n_drivers = len(flame_build.rig_drivers(rig))

    rng = np.random.default_rng(0)
    n_frames = 1800
    params = FlameParams(expression=rng.normal(size=(n_frames, 50)), fps=30.0,
                         shape=np.tile(rng.normal(size=300), (n_frames, 1)),
                         jaw_pose=rng.normal(scale=0.2, size=(n_frames, 3)),
                         global_pose=rng.normal(scale=0.2, size=(n_frames, 3)),
                         eyelid=rng.random((n_frames, 2)), cam=rng.normal(size=(n_frames, 3)))
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    with tempfile.TemporaryDirectory() as folder:
        csv = write_flame_params(params, Path(folder) / "clip.csv", layout="mmm")
        read_back = read_flame_params(csv)
        key_times = interleaved({"keying": lambda: flame_keys.key_flame_params(rig, read_back),
                                 "reading": lambda: read_flame_params(csv)})
    key_s, read_s = median(key_times["keying"]), median(key_times["reading"])

    frames = iter(range(2, 2 + 20))

    def one_frame():
        scene.frame_set(next(frames))
        return rig_flame.evaluated_vertices_m(rig.mesh_obj)

    one_frame()  # first evaluation builds the depsgraph
    pose = params.pose()
    frame_times = interleaved({"depsgraph": one_frame, "numpy": lambda: flame_forward(
        model, params.shape[5], params.expression[5], pose[5])}, repeats=10)
    frame_s, numpy_s = median(frame_times["depsgraph"]), median(frame_times["numpy"])
    bpy.ops.wm.read_homefile(use_empty=True)
    return [
        {"measure": "build FLAME rig, 5023 v, 300 shape + 100 exp + 36 driven correctives",
         "value": build_s, "unit": "s", "baseline": floor_s, "ratio": build_s / floor_s,
         "note": f"goal <= 2 s; {n_drivers} drivers; baseline = mesh + {n_keys} shape keys "
                 f"by foreach_set only; {timing_note(build_times)}"},
        {"measure": f"one frame through the depsgraph (drivers, {n_keys} keys, skinning)",
         "value": frame_s * 1e3, "unit": "ms", "baseline": numpy_s * 1e3,
         "ratio": frame_s / numpy_s,
         "note": f"baseline = numpy flame_forward, one frame; {timing_note(frame_times, 1e3, 'ms')}"},
        {"measure": f"key {n_frames} frames of MMM parameters on the rig",
         "value": key_s, "unit": "s", "baseline": read_s, "ratio": key_s / read_s,
         "note": f"includes re-placing joints for the clip's identity; baseline = reading "
                 f"the 361-column CSV; {timing_note(key_times)}"},
    ]
