"""The "Add Open Head" operator adds one head and changes nothing else in the scene."""
import bpy
import numpy as np


def _scene_fingerprint():
    """Names, transforms, data and shape-key values of everything already in the file."""
    objects = {}
    for obj in bpy.data.objects:
        entry = [tuple(obj.matrix_world.col[3]), obj.data.name if obj.data else None, obj.parent]
        if obj.type == "MESH":
            co = np.empty(len(obj.data.vertices) * 3)
            obj.data.vertices.foreach_get("co", co)
            entry.append(co.round(9).tobytes())
            entry.append(tuple(s.material.name if s.material else None for s in obj.material_slots))
            if obj.data.shape_keys:
                entry.append(tuple((kb.name, kb.value) for kb in obj.data.shape_keys.key_blocks))
        objects[obj.name] = entry
    return {
        "objects": objects,
        "collections": {c.name: sorted(o.name for o in c.objects) for c in bpy.data.collections},
        "scene_objects": sorted(o.name for o in bpy.context.scene.collection.objects),
        "materials": {m.name: tuple(m.diffuse_color) for m in bpy.data.materials},
        "frame": bpy.context.scene.frame_current,
        "actions": sorted(a.name for a in bpy.data.actions),
    }


def test_add_open_head_twice_to_a_populated_scene_changes_nothing_else(blender):
    bpy.ops.mesh.primitive_cube_add(location=(1, 2, 3))
    cube = bpy.context.active_object
    cube.keyframe_insert("location", frame=1)
    other_material = bpy.data.materials.new("Custom")
    cube.data.materials.append(other_material)

    before = _scene_fingerprint()
    assert bpy.ops.eifer.add_open_head() == {"FINISHED"}
    first = bpy.context.active_object
    after_first = _scene_fingerprint()
    assert bpy.ops.eifer.add_open_head() == {"FINISHED"}
    second = bpy.context.active_object
    after_second = _scene_fingerprint()

    assert first != second and first.name in bpy.data.objects
    for name, entry in before["objects"].items():
        assert after_second["objects"][name] == entry
    assert after_first["objects"][first.name] == after_second["objects"][first.name]
    assert set(after_second["objects"]) - set(before["objects"]) == {first.name, second.name}
    assert after_second["actions"] == before["actions"]
    assert after_second["frame"] == before["frame"]
    # materials are shared between the two heads, not duplicated
    new_materials = set(after_second["materials"]) - set(before["materials"])
    assert new_materials == set(after_first["materials"]) - set(before["materials"])
    assert bpy.context.scene.eifer.face == second
    keys = second.data.shape_keys.key_blocks
    assert len(keys) == 53 and all(kb.value == 0.0 for kb in keys[1:])
    assert second.select_get() and not cube.select_get()
