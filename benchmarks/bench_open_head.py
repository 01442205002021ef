"""Adding the open head: the foreach_set builder against per-vertex Python assignment."""
from benchmarks._blender import bpy, empty_scene
from benchmarks.timing import interleaved, median, timing_note
from eifer_blender.blender.rigs.openhead import build_open_head
from eifer_blender.core.heads.openhead import load_open_head


def _naive_shape_keys(obj, head):
    """What a straightforward script does: one Python assignment per vertex and key."""
    for name, delta in zip(head.shape_names, head.deltas_m):
        block = obj.shape_key_add(name=name, from_mix=False)
        block.value = 0.0
        for i, co in enumerate(head.vertices_m + delta):
            block.data[i].co = co


def rows():
    head = load_open_head()

    def naive():
        obj = build_open_head(bpy.context.scene.collection)
        obj.shape_key_clear()
        obj.shape_key_add(name="Basis", from_mix=False)
        _naive_shape_keys(obj, head)

    times = interleaved({"builder": lambda: build_open_head(bpy.context.scene.collection), "per-vertex": naive},
                        setup=empty_scene)
    fast, slow = median(times["builder"]), median(times["per-vertex"])
    return [{
        "measure": "add open head (4 777 vertices, 52 keys)",
        "value": fast * 1e3, "unit": "ms",
        "baseline": slow * 1e3, "ratio": slow / fast,
        "note": f"baseline: same head, keys set by a per-vertex Python loop; "
                f"{timing_note(times, 1e3, 'ms')}",
    }]
