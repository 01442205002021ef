"""The open head built in real Blender: quads, UVs, 52 ARKit keys at 0, and keys that deform as the data says."""
import importlib

import bpy
import numpy as np
import pytest

from tests.conftest import EXTENSION_MODULE


@pytest.fixture
def rig(blender):
    return importlib.import_module(f"{EXTENSION_MODULE}.blender.rigs.openhead")


@pytest.fixture
def head(blender):
    return importlib.import_module(f"{EXTENSION_MODULE}.core.heads.openhead").load_open_head()


def evaluated_positions(obj) -> np.ndarray:
    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    try:
        co = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
        mesh.vertices.foreach_get("co", co)
    finally:
        evaluated.to_mesh_clear()
    return co.reshape(-1, 3)


def test_build_makes_a_quad_mesh_with_52_keys_at_zero(rig, head):
    obj = rig.build_open_head(bpy.context.scene.collection)
    mesh = obj.data
    assert obj.name in bpy.context.scene.collection.objects
    assert len(mesh.vertices) == head.n_vertices and len(mesh.polygons) == head.n_faces
    totals = np.empty(len(mesh.polygons), dtype=np.int32)
    mesh.polygons.foreach_get("loop_total", totals)
    assert (totals == 4).all()
    loops = np.empty(len(mesh.loops), dtype=np.int32)
    mesh.loops.foreach_get("vertex_index", loops)
    assert np.array_equal(loops, head.loop_vertex_indices)
    smooth = np.empty(len(mesh.polygons), dtype=bool)
    mesh.polygons.foreach_get("use_smooth", smooth)
    assert smooth.all()
    uvs = np.empty(len(mesh.loops) * 2, dtype=np.float32)
    mesh.uv_layers["UVMap"].uv.foreach_get("vector", uvs)
    assert np.allclose(uvs.reshape(-1, 2), head.loop_uvs)
    assert mesh.validate(verbose=False) is False  # nothing to fix

    blocks = mesh.shape_keys.key_blocks
    assert [kb.name for kb in blocks] == ["Basis", *head.shape_names]
    assert head.shape_names == importlib.import_module(f"{EXTENSION_MODULE}.core.expression.spaces").ARKIT52
    assert all(kb.value == 0.0 for kb in blocks)
    assert mesh.shape_keys.use_relative
    assert [slot.material.name for slot in obj.material_slots] == list(rig.MATERIAL_DATA_NAMES.values())
    index = np.empty(len(mesh.polygons), dtype=np.int32)
    mesh.polygons.foreach_get("material_index", index)
    assert np.array_equal(index, head.face_material_index())
    assert set(np.unique(index)) == set(range(len(obj.material_slots)))


def test_painted_colours_are_the_active_colour_attribute_and_the_materials_read_them(rig, head):
    core = importlib.import_module(f"{EXTENSION_MODULE}.core.heads.openhead")
    obj = rig.build_open_head(bpy.context.scene.collection)
    colours = obj.data.color_attributes.active_color
    assert colours.name == core.COLOUR_ATTRIBUTE and colours.domain == "POINT" and colours.data_type == "FLOAT_COLOR"
    assert obj.data.color_attributes[obj.data.color_attributes.render_color_index].name == core.COLOUR_ATTRIBUTE
    values = np.empty(len(obj.data.vertices) * 4, dtype=np.float32)
    colours.data.foreach_get("color", values)
    assert np.allclose(values.reshape(-1, 4), core.vertex_colours(head))
    # skin, teeth and mouth take their base colour from the attribute in EEVEE and Cycles
    for key in ("skin", "teeth", "mouth"):
        tree = bpy.data.materials[rig.MATERIAL_DATA_NAMES[key]].node_tree
        bsdf = next(n for n in tree.nodes if n.type == "BSDF_PRINCIPLED")
        source = bsdf.inputs["Base Color"].links[0].from_node
        assert source.type == "VERTEX_COLOR" and source.layer_name == core.COLOUR_ATTRIBUTE, key
    # brows: skin only, over both eyes, darker than the skin; irises and pupils on the front of the eyes
    brows = core.brow_density(head)
    coords = core.face_coordinates(head)
    painted = brows > 0.5
    assert painted.sum() >= 20 and head.part_mask("skin")[brows > 0].all()
    assert (coords[painted, 0] > 0).sum() == pytest.approx((coords[painted, 0] < 0).sum(), rel=0.2)
    assert coords[painted, 1].min() > 0.15  # above the eye centres
    rgb = values.reshape(-1, 4)[:, :3]
    assert rgb[painted].mean() < 0.4 * rgb[head.part_mask("skin") & (brows == 0)].mean()
    for side in ("L", "R"):
        eye = head.part_mask(f"eye_{side}")
        front = eye & (head.vertices_m[:, 1] < head.pivots_m[f"eye_{side}"][1] - 0.014)
        assert front.any() and rgb[front].mean() < 0.2 < rgb[eye & ~front].mean()


def test_rest_pose_is_the_base_mesh(rig, head):
    obj = rig.build_open_head(bpy.context.scene.collection)
    assert np.allclose(evaluated_positions(obj), head.vertices_m, atol=1e-7)


@pytest.mark.parametrize("key", ["jawOpen", "mouthSmileLeft", "eyeBlinkRight", "tongueOut"])
def test_a_key_at_one_deforms_the_evaluated_mesh_by_its_delta(rig, head, key):
    obj = rig.build_open_head(bpy.context.scene.collection)
    obj.data.shape_keys.key_blocks[key].value = 1.0
    expected = head.vertices_m + head.delta(key)
    moved = np.linalg.norm(head.delta(key), axis=1) > 0
    assert moved.any()
    assert np.allclose(evaluated_positions(obj), expected, atol=1e-6)


def test_keys_blend_linearly(rig, head):
    obj = rig.build_open_head(bpy.context.scene.collection)
    weights = {"jawOpen": 0.4, "mouthSmileLeft": 0.7, "mouthSmileRight": 0.7, "browInnerUp": 1.0}
    for name, value in weights.items():
        obj.data.shape_keys.key_blocks[name].value = value
    assert np.allclose(evaluated_positions(obj), head.posed(weights), atol=1e-6)


def test_building_twice_reuses_materials_and_leaves_the_first_head_alone(rig, head):
    collection = bpy.context.scene.collection
    first = rig.build_open_head(collection)
    materials_before = len(bpy.data.materials)
    first.data.shape_keys.key_blocks["jawOpen"].value = 0.5
    second = rig.build_open_head(collection)
    assert second.name != first.name and second.data is not first.data
    assert len(bpy.data.materials) == materials_before
    assert [s.material for s in second.material_slots] == [s.material for s in first.material_slots]
    assert first.data.shape_keys.key_blocks["jawOpen"].value == 0.5
    assert all(kb.value == 0.0 for kb in second.data.shape_keys.key_blocks)
