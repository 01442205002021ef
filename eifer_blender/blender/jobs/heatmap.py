"""Muscle activity as a heatmap on the face that animates with the EMG curves, without Python.

How it works (nothing runs at frame change, so it plays in the viewport and renders headless):

1. Each electrode site of the montage (2-D, mm, ``core.recording.montage``) is placed in a face frame
   built from landmarks of the mesh (eye centres, mouth corners) and projected along the face's
   forward axis onto the front-most skin vertex.
2. Every channel gets a float point attribute ``eifer_heat_<channel>`` on the mesh: a Gaussian
   falloff (σ = 12 mm on the face) around its projected site, the weights of overlapping sites
   scaled to sum to at most 1.
3. A material sums ``attribute × activity`` over the channels. Each channel's activity is a Value
   node driven by the EMG object's ``["emg:<channel>"]`` property (an AVERAGE driver: no
   expression, no Python, works with auto-run off), times ``1 / p95`` (the channel's 95th
   percentile over the clip), so every muscle reaches the top of the colour map. A colour ramp
   turns the sum into colour: grey at rest, then viridis (purple → teal → green → yellow);
   yellow = the channel's 95th percentile.

Turning the heatmap on overrides the face's material slots with object-linked slots holding the
heatmap material; the mesh's own materials are untouched and come back when it is turned off.
Shown in Material Preview / Rendered shading (Cycles, EEVEE); Workbench shows the flat grey
viewport colour.

Face frames (an approximation: the sites are nominal, not measured on a person): the open head
uses its eye pivots and mouth-corner landmarks; a FLAME head uses its eye joints, up = its
armature's up, and the vertical scale of the lateral one (no mouth landmark ships with FLAME's
model file); any other mesh is assumed to face −Y with +Z up and the eyes at 55 % of its height,
40 % of its width apart (fits head-only meshes; pass ``landmarks`` for anything else).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import bpy
import numpy as np
from mathutils import Vector
from mathutils.bvhtree import BVHTree

from ...core.errors import InputError
from ...core.heads.electrodes import (
    SIGMA_MM,
    FaceFrame,
    bounding_box_frame,
    frame_from_landmarks,
    montage_sites,
    site_weights,
)
from ...core.heads.openhead import load_open_head
from ..anim import emg_object
from ..rigs.flame import EYEBALL_ATTRIBUTE, find_flame_rig

ATTRIBUTE_PREFIX = "eifer_heat_"
MATERIAL_PREFIX = "EIFER Heatmap"
SOURCE_KEY = "eifer_heatmap_source"  # the EMG object (an ID property) the face's heatmap shows
SLOTS_KEY = "eifer_heatmap_slots"  # JSON: the slots' link and object material before the heatmap
ADDED_SLOT_KEY = "eifer_heatmap_added_slot"
PERCENTILE = 95.0
EMISSION_STRENGTH = 0.35  # the heat stays readable under dim lights
COLOUR_MAP = "grey = rest → viridis purple, teal, green → yellow = the muscle's 95th percentile in the clip"
# sRGB viridis at 0, 0.25, 0.5, 0.75, 1 (matplotlib), placed above the grey rest colour
_VIRIDIS_SRGB = ((0.267, 0.005, 0.329), (0.229, 0.322, 0.546), (0.128, 0.567, 0.551),
                 (0.369, 0.789, 0.383), (0.993, 0.906, 0.144))
_RAMP_POSITIONS = (0.12, 0.35, 0.6, 0.8, 1.0)
_REST_GREY = 0.45


def project_sites(vertices: np.ndarray, triangles: np.ndarray, frame: FaceFrame, sites_mm: np.ndarray,
                  mask=None) -> np.ndarray:
    """Where each site meets the face: ``(n_sites, 3)`` points on the front-most surface.

    A ray from in front of the face travels along ``-forward`` through each site's plane point;
    its first hit on the ``triangles`` ``(T, 3)`` whose vertices are all in ``mask`` (e.g. skin)
    is the site. A ray that misses (a site beyond the mesh's edge) takes the masked vertex
    nearest its line.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    keep = np.ones(len(vertices), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    triangles = np.asarray(triangles, dtype=np.int64).reshape(-1, 3)
    triangles = triangles[keep[triangles].all(axis=1)]
    if not len(triangles):
        raise InputError("the mesh has no faces to place electrode sites on")
    tree = BVHTree.FromPolygons(vertices.tolist(), triangles.tolist())
    points = frame.plane_points(sites_mm)
    reach = float(np.ptp(vertices, axis=0).max()) * 4.0 + 1.0  # start far outside the mesh
    direction = Vector(-frame.forward)
    hits = np.empty_like(points)
    candidates = np.flatnonzero(keep)
    for row, point in enumerate(points):
        location, _, _, _ = tree.ray_cast(Vector(point + frame.forward * reach), direction, 2.0 * reach)
        if location is not None:
            hits[row] = np.array(location)
            continue
        offsets = vertices[candidates] - point
        across = np.linalg.norm(offsets - np.outer(offsets @ frame.forward, frame.forward), axis=1)
        hits[row] = vertices[candidates[np.argmin(across)]]
    return hits



# ---------------------------------------------------------------------------------------------
# Faces


def _mesh_vertices(face) -> np.ndarray:
    mesh = face.data
    co = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
    mesh.vertices.foreach_get("co", co)
    return co.reshape(-1, 3).astype(np.float64)


def mesh_triangles(mesh) -> np.ndarray:
    """(T, 3) vertex indices of the mesh's triangulation."""
    mesh.calc_loop_triangles()
    corners = np.empty(len(mesh.loop_triangles) * 3, dtype=np.int32)
    mesh.loop_triangles.foreach_get("vertices", corners)
    return corners.reshape(-1, 3)


def _open_head_frame(face, n_vertices: int):
    head = load_open_head()
    if head.n_vertices != n_vertices:
        return None, None
    vertices = head.vertices_m.astype(np.float64)
    frame = frame_from_landmarks(head.pivots_m["eye_L"], head.pivots_m["eye_R"],
                                 vertices[head.landmarks["mouth_corner_L"]],
                                 vertices[head.landmarks["mouth_corner_R"]], up_hint=(0.0, 0.0, 1.0),
                                 method="open head landmarks")
    return frame, head.part_mask("skin")


def _flame_frame(face, n_vertices: int):
    rig = find_flame_rig(face)
    to_mesh = face.matrix_world.inverted() @ rig.armature_obj.matrix_world
    bones = rig.armature_obj.data.bones
    eyes = [np.array(to_mesh @ bones[name].head_local) for name in ("eye_L", "eye_R")]
    up = np.array(to_mesh.to_3x3() @ Vector((0.0, 0.0, 1.0)))
    frame = frame_from_landmarks(eyes[0], eyes[1], up_hint=up, method="FLAME eye joints (mouth by proportion)")
    return frame, ~_eye_vertices(face, n_vertices)




def _eye_vertices(face, n_vertices: int) -> np.ndarray:
    """Vertices that move rigidly with the eye bones (FLAME's eyeballs, which carry no muscle), as
    the FLAME rig marks them in its ``EYEBALL_ATTRIBUTE``; none for meshes without the mark."""
    attribute = face.data.attributes.get(EYEBALL_ATTRIBUTE)
    eyes = np.zeros(n_vertices, dtype=bool)
    if attribute is not None and attribute.domain == "POINT" and attribute.data_type == "BOOLEAN":
        attribute.data.foreach_get("value", eyes)
    return eyes


def face_frame_for(face, landmarks: dict | None = None) -> tuple[FaceFrame, np.ndarray]:
    """The face frame and the skin mask (vertices that may carry heat) of ``face``.

    ``landmarks`` (mesh-local points ``eye_L``, ``eye_R`` and optionally ``mouth_corner_L``,
    ``mouth_corner_R`` and an ``up`` direction; L = the subject's left) override the automatic
    choice.
    """
    n_vertices = len(face.data.vertices)
    if landmarks:
        try:
            frame = frame_from_landmarks(landmarks["eye_L"], landmarks["eye_R"], landmarks.get("mouth_corner_L"),
                                         landmarks.get("mouth_corner_R"), up_hint=landmarks.get("up"),
                                         method="given landmarks")
        except KeyError as exc:
            raise InputError(f"face landmarks need 'eye_L' and 'eye_R' (got {', '.join(landmarks)})") from exc
        return frame, np.ones(n_vertices, dtype=bool)
    rig = face.get("eifer_rig")
    if rig == "open_head":
        frame, mask = _open_head_frame(face, n_vertices)
        if frame is not None:
            return frame, mask
    if rig in ("flame", "flame_armature"):
        return _flame_frame(face, n_vertices)
    return bounding_box_frame(_mesh_vertices(face)), np.ones(n_vertices, dtype=bool)




# ---------------------------------------------------------------------------------------------
# The material


def _srgb_to_linear(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _material_name(face) -> str:
    return f"{MATERIAL_PREFIX} {face.name}"


def _build_material(face, emg_obj, channels: list[str], scales: np.ndarray) -> bpy.types.Material:
    name = _material_name(face)
    material = bpy.data.materials.get(name) or bpy.data.materials.new(name)
    if bpy.app.version < (5, 0, 0):
        material.use_nodes = True
    material.diffuse_color = (_REST_GREY, _REST_GREY, _REST_GREY, 1.0)
    tree = material.node_tree
    tree.animation_data_clear()  # drivers of an earlier build
    tree.nodes.clear()
    nodes, links = tree.nodes, tree.links
    output = nodes.new("ShaderNodeOutputMaterial")
    output.location = (900, 0)
    bsdf = nodes.new("ShaderNodeBsdfPrincipled")
    bsdf.location = (600, 0)
    bsdf.inputs["Roughness"].default_value = 0.6
    if "Emission Strength" in bsdf.inputs:
        bsdf.inputs["Emission Strength"].default_value = EMISSION_STRENGTH
    ramp = nodes.new("ShaderNodeValToRGB")
    ramp.name = ramp.label = "Heat colour"
    ramp.location = (300, 0)
    stops = ramp.color_ramp.elements
    grey = _srgb_to_linear(_REST_GREY)
    stops[0].position, stops[0].color = 0.0, (grey, grey, grey, 1.0)
    stops[1].position = _RAMP_POSITIONS[-1]
    stops[1].color = (*map(_srgb_to_linear, _VIRIDIS_SRGB[-1]), 1.0)
    for position, colour in zip(_RAMP_POSITIONS[:-1], _VIRIDIS_SRGB[:-1]):
        stops.new(position).color = (*map(_srgb_to_linear, colour), 1.0)
    links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    if "Emission Color" in bsdf.inputs:
        links.new(ramp.outputs["Color"], bsdf.inputs["Emission Color"])
    links.new(bsdf.outputs[0], output.inputs["Surface"])

    total = None  # running sum: attribute_c * activity_c / p95_c
    for row, (channel, scale) in enumerate(zip(channels, scales)):
        y = -220 * row
        attribute = nodes.new("ShaderNodeAttribute")
        attribute.attribute_type = "GEOMETRY"
        attribute.attribute_name = ATTRIBUTE_PREFIX + channel
        attribute.name = attribute.label = f"weight {channel}"
        attribute.location = (-900, y)
        value = nodes.new("ShaderNodeValue")
        value.name = value.label = f"emg {channel}"
        value.location = (-900, y - 120)
        normalise = nodes.new("ShaderNodeMath")
        normalise.operation = "MULTIPLY"
        normalise.name = normalise.label = f"÷p95 {channel}"
        normalise.inputs[1].default_value = float(scale)
        normalise.location = (-650, y - 120)
        links.new(value.outputs[0], normalise.inputs[0])
        accumulate = nodes.new("ShaderNodeMath")
        accumulate.operation = "MULTIPLY_ADD"
        accumulate.location = (-400, y)
        links.new(attribute.outputs[2], accumulate.inputs[0])  # "Fac"/"Factor"
        links.new(normalise.outputs[0], accumulate.inputs[1])
        if total is None:
            accumulate.inputs[2].default_value = 0.0
        else:
            links.new(total.outputs[0], accumulate.inputs[2])
        total = accumulate
        fcurve = tree.driver_add(f'nodes["{bpy.utils.escape_identifier(value.name)}"].outputs[0].default_value')
        driver = fcurve.driver
        driver.type = "AVERAGE"  # no expression: evaluated without Python
        variable = driver.variables.new()
        variable.name = "activity"
        variable.type = "SINGLE_PROP"
        variable.targets[0].id_type = "OBJECT"
        variable.targets[0].id = emg_obj
        variable.targets[0].data_path = f'["{bpy.utils.escape_identifier("emg:" + channel)}"]'
    if total is not None:
        links.new(total.outputs[0], ramp.inputs["Fac"])
    return material


# ---------------------------------------------------------------------------------------------
# Turning it on and off


@dataclass
class HeatmapInfo:
    """What :func:`enable_heatmap` set up."""

    face: bpy.types.Object
    emg_object: bpy.types.Object
    material: bpy.types.Material
    channels: list[str]
    p95: np.ndarray  # per channel, in the EMG object's units
    site_points: np.ndarray  # (channels, 3) projected sites, mesh-local
    frame: FaceFrame
    colour_map: str = COLOUR_MAP


def _remove_weight_attributes(mesh) -> None:
    # by name, one at a time: removing one attribute invalidates references to the others
    for name in [a.name for a in mesh.attributes if a.name.startswith(ATTRIBUTE_PREFIX)]:
        mesh.attributes.remove(mesh.attributes[name])


def heatmap_source(face):
    """The EMG object whose heatmap ``face`` shows, or None when the heatmap is off."""
    if face is None or SOURCE_KEY not in face:
        return None
    source = face[SOURCE_KEY]
    return source if isinstance(source, bpy.types.Object) else None


def is_enabled(face) -> bool:
    return face is not None and SOURCE_KEY in face


def _slot_state(face) -> list[dict]:
    state = []
    for slot in face.material_slots:
        link = slot.link
        slot.link = "OBJECT"
        own = slot.material
        slot.link = link
        state.append({"link": link, "object_material": own.name if own else ""})
    return state


def enable_heatmap(face, emg_obj, *, sigma_mm: float = SIGMA_MM, percentile: float = PERCENTILE,
                   landmarks: dict | None = None) -> HeatmapInfo:
    """Show ``emg_obj``'s muscle activity as a heatmap on ``face`` (see the module docstring).

    Calling it again (e.g. after re-inferring) rebuilds weights, scales and drivers and keeps the
    face's original materials saved.

    Raises
    ------
    InputError
        ``face`` is not a mesh, ``emg_obj`` is not an EMG object or has no channel with a known
        electrode site. Nothing is changed then.
    """
    if face is None or face.type != "MESH":
        raise InputError(f"{getattr(face, 'name', 'nothing')} is not a mesh: the heatmap is drawn on a face mesh")
    if emg_obj is None or emg_object.CHANNELS_KEY not in emg_obj:
        raise InputError(f"{getattr(emg_obj, 'name', 'nothing')} is not an EMG object (import a recording "
                         f"or infer muscles first)")
    track = emg_object.read_emg_object(emg_obj)
    channels, sites_mm = montage_sites(track.names)
    if not channels:
        raise InputError(f"{emg_obj.name} has no channel with a known electrode site (Fridlund-22 or "
                         f"Kuramoto-19 names such as Zyg_L): {', '.join(track.names[:6])}")
    frame, mask = face_frame_for(face, landmarks)
    vertices = _mesh_vertices(face)
    site_points = project_sites(vertices, mesh_triangles(face.data), frame, sites_mm, mask)
    weights = site_weights(vertices, site_points, sigma_mm * frame.mean_per_mm, mask)
    values = track.select(channels).values
    levels = np.percentile(values, percentile, axis=0)
    # a muscle active in under 5 % of the clip has p95 = 0: its peak sets the top of the map instead
    levels = np.where(levels > 1e-12, levels, values.max(axis=0))
    scales = np.where(levels > 1e-12, 1.0 / np.where(levels > 1e-12, levels, 1.0), 0.0)

    # computed and checked; from here on, Blender is written
    mesh = face.data
    _remove_weight_attributes(mesh)
    for column, channel in enumerate(channels):
        attribute = mesh.attributes.new(ATTRIBUTE_PREFIX + channel, "FLOAT", "POINT")
        attribute.data.foreach_set("value", weights[:, column])
    material = _build_material(face, emg_obj, channels, scales)
    if not is_enabled(face):
        face[SLOTS_KEY] = json.dumps(_slot_state(face))
        face[ADDED_SLOT_KEY] = len(face.material_slots) == 0
        if len(face.material_slots) == 0:
            mesh.materials.append(None)
    for slot in face.material_slots:
        slot.link = "OBJECT"
        slot.material = material
    face[SOURCE_KEY] = emg_obj
    face["eifer_heatmap_percentile"] = float(percentile)
    mesh.update()
    return HeatmapInfo(face, emg_obj, material, channels, levels, site_points, frame)


def disable_heatmap(face) -> bool:
    """Turn the heatmap off: the face's materials, slots and attributes as before. False if it was off."""
    if not is_enabled(face):
        return False
    state = json.loads(face.get(SLOTS_KEY, "[]"))
    material = bpy.data.materials.get(_material_name(face))
    mesh = face.data
    for slot, saved in zip(face.material_slots, state):
        slot.link = "OBJECT"
        slot.material = bpy.data.materials.get(saved["object_material"]) if saved["object_material"] else None
        slot.link = saved["link"]
    if face.get(ADDED_SLOT_KEY):
        mesh.materials.clear()  # the mesh had none; clear() also drops the object's slot, pop() does not
    _remove_weight_attributes(mesh)
    for key in (SOURCE_KEY, SLOTS_KEY, ADDED_SLOT_KEY, "eifer_heatmap_percentile"):
        face.pop(key, None)
    if material is not None and material.users == 0:
        bpy.data.materials.remove(material)
    mesh.update()
    return True


def refresh_heatmaps(emg_obj) -> int:
    """Rebuild the heatmaps that show ``emg_obj`` (after its curves changed); returns how many."""
    count = 0
    for obj in bpy.data.objects:
        if obj.type == "MESH" and heatmap_source(obj) == emg_obj:
            enable_heatmap(obj, emg_obj, percentile=float(obj.get("eifer_heatmap_percentile", PERCENTILE)))
            count += 1
    return count
