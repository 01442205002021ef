"""Build the CC0 open head in Blender: one mesh object with the 52 ARKit shape keys at 0.

Brows, the lash line, lips, irises and pupils are painted per vertex in the colour attribute
``COLOUR_ATTRIBUTE`` (the active and render colour), so they move with the shape keys and show in
every engine: Workbench with the "Attribute" colour type (``WORKBENCH_COLOUR_TYPE``), EEVEE and
Cycles through the materials, whose base colour reads the attribute (the eyes draw their iris
from the ``EyeProjection`` UVs, sharper than the eyeball's few vertices allow).
"""
from __future__ import annotations

import bpy
import numpy as np

from ...core.heads.openhead import (
    COLOUR_ATTRIBUTE,
    IRIS_RADIUS,
    IRIS_RGB,
    MATERIAL_NAMES,
    MOUTH_RGB,
    PUPIL_RADIUS,
    PUPIL_RGB,
    SCLERA_RGB,
    SKIN_RGB,
    TEETH_RGB,
    OpenHead,
    eye_projection,
    load_open_head,
    vertex_colours,
)
from ..anim import internal

# Material name per slot; an existing material of the same name is reused, never duplicated.
MATERIAL_DATA_NAMES: dict[str, str] = {
    "skin": "EIFER Open Head Skin",
    "eyes": "EIFER Open Head Eyes",
    "teeth": "EIFER Open Head Teeth",
    "mouth": "EIFER Open Head Mouth",
}
EYE_UV_NAME = "EyeProjection"
# Workbench shows the painted colours with this colour type ("Attribute"); "MATERIAL" shows
# only the flat viewport colour of each material (no brows, blank eyes).
WORKBENCH_COLOUR_TYPE = "VERTEX"


def build_open_head(collection: bpy.types.Collection, name: str = "OpenHead",
                    head: OpenHead | None = None) -> bpy.types.Object:
    """Create the open head mesh object in ``collection``.

    Parameters
    ----------
    collection : collection the new object is linked to (nothing else in the scene changes,
        except that missing "EIFER Open Head *" materials are created).
    name : object and mesh name (Blender adds ".001" if taken).
    head : the data to build from; defaults to the shipped asset.

    Returns
    -------
    bpy.types.Object
        Quad mesh with UVs, the painted colour attribute ``COLOUR_ATTRIBUTE``, smooth shading,
        material slots (skin, eyes, teeth, mouth), a "Basis" key and the 52 ARKit keys in
        ``spaces.ARKIT52`` order, all at value 0.
    """
    head = head if head is not None else load_open_head()
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(head.n_vertices)
    mesh.vertices.foreach_set("co", head.vertices_m.ravel())
    mesh.loops.add(head.faces.size)
    mesh.loops.foreach_set("vertex_index", head.loop_vertex_indices)
    mesh.polygons.add(head.n_faces)
    mesh.polygons.foreach_set("loop_start", head.poly_loop_starts)
    mesh.polygons.foreach_set("use_smooth", np.ones(head.n_faces, dtype=bool))
    mesh.polygons.foreach_set("material_index", head.face_material_index())

    uv_layer = mesh.uv_layers.new(name="UVMap")
    uv_layer.uv.foreach_set("vector", head.loop_uvs.ravel())
    eye_uv = mesh.uv_layers.new(name=EYE_UV_NAME)
    eye_uv.uv.foreach_set("vector", eye_projection(head)[head.loop_vertex_indices].ravel())
    mesh.uv_layers.active = uv_layer
    uv_layer.active_render = True
    colours = mesh.color_attributes.new(COLOUR_ATTRIBUTE, "FLOAT_COLOR", "POINT")
    colours.data.foreach_set("color", vertex_colours(head).ravel())
    mesh.color_attributes.active_color = colours
    mesh.color_attributes.render_color_index = mesh.color_attributes.active_color_index
    mesh.update()

    for key in MATERIAL_NAMES:
        mesh.materials.append(_material(key))

    obj = bpy.data.objects.new(name, mesh)
    collection.objects.link(obj)
    internal.put(obj, "rig", "open_head")

    basis = obj.shape_key_add(name="Basis", from_mix=False)
    basis.value = 0.0
    base = head.vertices_m.astype(np.float32)
    for index, shape_name in enumerate(head.shape_names):
        key_block = obj.shape_key_add(name=shape_name, from_mix=False)
        points = key_block.points if hasattr(key_block, "points") else key_block.data
        points.foreach_set("co", (base + head.deltas_m[index]).ravel())
        key_block.value = 0.0  # Blender 5.0 starts new keys at 1.0
    obj.data.shape_keys.use_relative = True
    return obj


def use_painted_colours(scene) -> None:
    """Make Workbench renders of ``scene`` show the painted colours (brows, irises, heatmap).

    Workbench's "Material" colour type shows each material's flat viewport colour; the
    "Attribute" type shows the active colour attribute, which the open head and the heatmap
    fill. Other engines read the attribute through the materials and need nothing.
    """
    scene.display.shading.color_type = WORKBENCH_COLOUR_TYPE


def _material(key: str) -> bpy.types.Material:
    name = MATERIAL_DATA_NAMES[key]
    existing = bpy.data.materials.get(name)
    if existing is not None:
        return existing
    material = bpy.data.materials.new(name)
    if bpy.app.version < (5, 0, 0):  # 5.0 materials always have nodes and deprecate the switch
        material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    flat = {"skin": SKIN_RGB, "teeth": TEETH_RGB, "mouth": MOUTH_RGB, "eyes": SCLERA_RGB}
    material.diffuse_color = (*flat[key], 1.0)  # Workbench's "Material" colour type
    if key in ("skin", "teeth", "mouth"):
        roughness = {"skin": 0.55, "teeth": 0.3, "mouth": 0.4}[key]
        _set_inputs(bsdf, {"Base Color": (*flat[key], 1.0), "Roughness": roughness})
        if key == "skin":
            _set_inputs(bsdf, {"Subsurface Weight": 0.15, "Subsurface Radius": (1.0, 0.35, 0.2)})
        painted = nodes.new("ShaderNodeVertexColor")  # brows, lash line, lips; mouth and tongue
        painted.layer_name = COLOUR_ATTRIBUTE
        painted.location = (bsdf.location[0] - 300, bsdf.location[1])
        links.new(painted.outputs["Color"], bsdf.inputs["Base Color"])
    elif key == "eyes":
        _set_inputs(bsdf, {"Roughness": 0.15})
        uv_node = nodes.new("ShaderNodeUVMap")
        uv_node.uv_map = EYE_UV_NAME
        length = nodes.new("ShaderNodeVectorMath")
        length.operation = "LENGTH"
        ramp = nodes.new("ShaderNodeValToRGB")
        ramp.color_ramp.interpolation = "LINEAR"
        stops = ramp.color_ramp.elements
        stops[0].position, stops[0].color = PUPIL_RADIUS - 0.02, (*PUPIL_RGB, 1.0)
        stops[1].position, stops[1].color = IRIS_RADIUS + 0.03, (*SCLERA_RGB, 1.0)
        stops.new(PUPIL_RADIUS + 0.01).color = tuple(0.75 * c for c in IRIS_RGB) + (1.0,)
        stops.new(IRIS_RADIUS - 0.01).color = (*IRIS_RGB, 1.0)
        links.new(uv_node.outputs["UV"], length.inputs[0])
        links.new(length.outputs["Value"], ramp.inputs["Fac"])
        links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    else:  # pragma: no cover - MATERIAL_NAMES and this function are kept in step
        raise ValueError(f"no material recipe for {key!r}")
    return material


def _set_inputs(node: bpy.types.Node, values: dict) -> None:
    # Input names differ across Blender versions; set the ones this version has.
    for input_name, value in values.items():
        socket = node.inputs.get(input_name)
        if socket is not None:
            socket.default_value = value
