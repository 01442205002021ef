"""Adding the open head: the foreach_set builder against per-vertex Python assignment."""
import time

from benchmarks._blender import bpy, empty_scene
from eifer_blender.blender.rigs.openhead import build_open_head
from eifer_blender.core.heads.openhead import load_open_head


def _naive_shape_keys(obj, head):
    """What a straightforward script does: one Python assignment per vertex and key."""
    for name, delta in zip(head.shape_names, head.deltas_m):
        block = obj.shape_key_add(name=name, from_mix=False)
        block.value = 0.0
        for i, co in enumerate(head.vertices_m + delta):
            block.data[i].co = co


def _best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        empty_scene()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def rows():
    head = load_open_head()
    fast = _best_of(lambda: build_open_head(bpy.context.scene.collection), 5)

    def naive():
        obj = build_open_head(bpy.context.scene.collection)
        obj.shape_key_clear()
        obj.shape_key_add(name="Basis", from_mix=False)
        _naive_shape_keys(obj, head)

    naive_time = _best_of(naive, 1)
    return [{
        "measure": "add open head (4 777 vertices, 52 keys)",
        "value": fast * 1e3, "unit": "ms",
        "baseline": naive_time * 1e3, "ratio": naive_time / fast,
        "note": "baseline: same head, keys set by a per-vertex Python loop",
    }]
