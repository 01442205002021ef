"""Build the CC0 open head in Blender: one mesh object with the 52 ARKit shape keys at 0."""
from __future__ import annotations

import bpy
import numpy as np

from ...core.heads.openhead import MATERIAL_NAMES, OpenHead, load_open_head

# Material name per slot; an existing material of the same name is reused, never duplicated.
MATERIAL_DATA_NAMES: dict[str, str] = {
    "skin": "EIFER Open Head Skin",
    "eyes": "EIFER Open Head Eyes",
    "teeth": "EIFER Open Head Teeth",
    "mouth": "EIFER Open Head Mouth",
}
EYE_UV_NAME = "EyeProjection"
# Iris and pupil radii as a fraction of the eyeball radius (front projection of the eye).
PUPIL_RADIUS = 0.2
IRIS_RADIUS = 0.45


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
        Quad mesh with UVs, smooth shading, material slots (skin, eyes, teeth, mouth), a
        "Basis" key and the 52 ARKit keys in ``spaces.ARKIT52`` order, all at value 0.
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
    eye_uv.uv.foreach_set("vector", _eye_projection_uvs(head).ravel())
    mesh.uv_layers.active = uv_layer
    uv_layer.active_render = True
    mesh.update()

    for key in MATERIAL_NAMES:
        mesh.materials.append(_material(key))

    obj = bpy.data.objects.new(name, mesh)
    collection.objects.link(obj)
    obj["eifer_rig"] = "open_head"

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


def _eye_projection_uvs(head: OpenHead) -> np.ndarray:
    """Per-loop UVs projecting each eyeball along its gaze (-Y), in eyeball radii.

    The UVs travel with the eye when the eyeLook keys rotate it, so the iris drawn from them
    follows the gaze. Non-eye corners get a far-away UV (they use other materials anyway).
    """
    uv = np.full((head.n_vertices, 2), 10.0, dtype=np.float32)
    for part in ("eye_L", "eye_R"):
        mask = head.part_mask(part)
        centre = head.vertices_m[mask].mean(axis=0)
        radius = np.linalg.norm(head.vertices_m[mask] - centre, axis=1).max()
        offset = head.vertices_m[mask] - centre
        uv[mask] = offset[:, [0, 2]] / radius
    return uv[head.loop_vertex_indices]


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
    if key == "skin":
        _set_inputs(bsdf, {"Base Color": (0.62, 0.40, 0.31, 1.0), "Roughness": 0.55,
                           "Subsurface Weight": 0.15, "Subsurface Radius": (1.0, 0.35, 0.2)})
        material.diffuse_color = (0.62, 0.40, 0.31, 1.0)
    elif key == "teeth":
        _set_inputs(bsdf, {"Base Color": (0.88, 0.85, 0.76, 1.0), "Roughness": 0.3})
        material.diffuse_color = (0.88, 0.85, 0.76, 1.0)
    elif key == "mouth":
        _set_inputs(bsdf, {"Base Color": (0.42, 0.09, 0.09, 1.0), "Roughness": 0.4})
        material.diffuse_color = (0.42, 0.09, 0.09, 1.0)
    elif key == "eyes":
        _set_inputs(bsdf, {"Roughness": 0.15})
        material.diffuse_color = (0.9, 0.9, 0.9, 1.0)
        uv_node = nodes.new("ShaderNodeUVMap")
        uv_node.uv_map = EYE_UV_NAME
        length = nodes.new("ShaderNodeVectorMath")
        length.operation = "LENGTH"
        ramp = nodes.new("ShaderNodeValToRGB")
        ramp.color_ramp.interpolation = "LINEAR"
        stops = ramp.color_ramp.elements
        stops[0].position, stops[0].color = PUPIL_RADIUS - 0.02, (0.01, 0.01, 0.01, 1.0)
        stops[1].position, stops[1].color = IRIS_RADIUS + 0.03, (0.92, 0.92, 0.9, 1.0)
        stops.new(PUPIL_RADIUS + 0.01).color = (0.12, 0.22, 0.30, 1.0)
        stops.new(IRIS_RADIUS - 0.01).color = (0.20, 0.34, 0.42, 1.0)
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
