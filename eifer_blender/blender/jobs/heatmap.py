"""Muscle activity as a heatmap on the face that animates with the EMG curves, without Python.

How it works (nothing runs at frame change, so it plays in the viewport and renders headless):

1. Each electrode site of the montage (2-D, mm, ``core.recording.montage``) is placed in a face frame
   built from landmarks of the mesh (eye centres, mouth corners) and projected along the face's
   forward axis onto the front-most skin vertex.
2. Every channel gets a float point attribute ``eifer_heat_<channel>`` on the mesh: a Gaussian
   falloff (σ = 12 mm on the face) around its projected site, the weights of overlapping sites
   scaled to sum to at most 1.
3. A Geometry Nodes modifier (last in the stack) sums ``attribute × activity / p95`` over the
   channels and writes the colour per vertex into the colour attribute ``HEAT_COLOUR_ATTRIBUTE``
   (``core.heads.electrodes.HEAT_STOPS``/``HEAT_FADE``: the face's own colour at rest, viridis purple → teal →
   green → yellow = the channel's 95th percentile over the clip). Each channel's activity is a
   Value node driven by the EMG object's ``["emg:<channel>"]`` property (an AVERAGE driver: no
   expression, no Python, works with auto-run off).
4. Every engine shows that attribute: Workbench with the "Attribute" colour type (the attribute is
   the mesh's active colour), EEVEE and Cycles through the heatmap material, which replaces only
   the material slots of faces that carry heat (the open head's skin); the eyes, teeth and mouth
   keep their materials. The mesh's own materials are untouched and come back when it is off.

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
    COLOUR_MAP,
    HEAT_FADE,
    HEAT_STOPS,
    REST_GREY_SRGB,
    SIGMA_MM,
    VIRIDIS_SRGB,
    FaceFrame,
    bounding_box_frame,
    frame_from_landmarks,
    montage_sites,
    site_weights,
    srgb_to_linear,
)
from ...core.heads.openhead import COLOUR_ATTRIBUTE, load_open_head
from ..anim import emg_object, internal
from ..rigs.flame import EYEBALL_ATTRIBUTE, find_flame_rig

ATTRIBUTE_PREFIX = "eifer_heat_"
HEAT_COLOUR_ATTRIBUTE = "eifer_heatmap_colour"  # not under ATTRIBUTE_PREFIX: that marks channel weights
MATERIAL_PREFIX = "EIFER Heatmap"  # the material and the node group, "EIFER Heatmap <face>"
MODIFIER_NAME = "EIFER Heatmap"
# the face's internal values (blender.anim.internal) while its heatmap is on
SOURCE_KEY = "heatmap_source"  # the EMG object (an ID property) the face's heatmap shows
SLOTS_KEY = "heatmap_slots"  # JSON: the slots' link and object material before the heatmap
ADDED_SLOT_KEY = "heatmap_added_slot"
ACTIVE_COLOUR_KEY = "heatmap_active_colour"  # the mesh's active colour attribute before
PERCENTILE_KEY = "heatmap_percentile"
PERCENTILE = 95.0
EMISSION_STRENGTH = 0.15  # the heat stays readable under dim lights


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
    rig = internal.get(face, "rig")
    if rig == "open_head":
        frame, mask = _open_head_frame(face, n_vertices)
        if frame is not None:
            return frame, mask
    if rig in ("flame", "flame_armature"):
        return _flame_frame(face, n_vertices)
    return bounding_box_frame(_mesh_vertices(face)), np.ones(n_vertices, dtype=bool)




# ---------------------------------------------------------------------------------------------
# The node group (colours per vertex) and the material (shows them in EEVEE and Cycles)


def _material_name(face) -> str:
    return f"{MATERIAL_PREFIX} {face.name}"


def _socket(sockets, name: str, kind: str | None = None):
    """The socket called ``name`` (of type ``kind`` where a node has one per type)."""
    return next(s for s in sockets if s.name == name and (kind is None or s.type == kind))


def _build_node_group(face, emg_obj, channels: list[str], scales: np.ndarray) -> bpy.types.NodeTree:
    name = _material_name(face)
    group = bpy.data.node_groups.get(name)
    if group is None or group.bl_idname != "GeometryNodeTree":
        group = bpy.data.node_groups.new(name, "GeometryNodeTree")
        group.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
        group.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    group.animation_data_clear()  # drivers of an earlier build
    group.nodes.clear()
    nodes, links = group.nodes, group.links
    group_in, group_out = nodes.new("NodeGroupInput"), nodes.new("NodeGroupOutput")
    group_in.location, group_out.location = (-1200, 300), (1200, 300)

    total = None  # running sum: attribute_c * activity_c / p95_c
    for row, (channel, scale) in enumerate(zip(channels, scales)):
        y = -220 * row
        attribute = nodes.new("GeometryNodeInputNamedAttribute")
        attribute.data_type = "FLOAT"
        attribute.inputs["Name"].default_value = ATTRIBUTE_PREFIX + channel
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
        links.new(_socket(attribute.outputs, "Attribute"), accumulate.inputs[0])
        links.new(normalise.outputs[0], accumulate.inputs[1])
        if total is None:
            accumulate.inputs[2].default_value = 0.0
        else:
            links.new(total.outputs[0], accumulate.inputs[2])
        total = accumulate
        _drive(group, value, emg_obj, channel)

    ramp = nodes.new("ShaderNodeValToRGB")
    ramp.name = ramp.label = "Heat colour"
    ramp.location = (0, 200)
    stops = ramp.color_ramp.elements
    linear = srgb_to_linear(VIRIDIS_SRGB)
    stops[0].position, stops[0].color = HEAT_STOPS[0], (*linear[0], 1.0)
    stops[1].position, stops[1].color = HEAT_STOPS[-1], (*linear[-1], 1.0)
    for position, colour in zip(HEAT_STOPS[1:-1], linear[1:-1]):
        stops.new(position).color = (*colour, 1.0)
    fade = nodes.new("ShaderNodeMapRange")
    fade.name = fade.label = "Heat fade"
    fade.interpolation_type = "SMOOTHSTEP"
    fade.location = (0, -100)
    fade.inputs["From Min"].default_value, fade.inputs["From Max"].default_value = HEAT_FADE
    if face.data.color_attributes.get(COLOUR_ATTRIBUTE) is not None:  # the open head's painted colours
        base = nodes.new("GeometryNodeInputNamedAttribute")
        base.data_type = "FLOAT_COLOR"
        base.inputs["Name"].default_value = COLOUR_ATTRIBUTE
        base_colour = _socket(base.outputs, "Attribute")
    else:
        base = nodes.new("FunctionNodeInputColor")
        grey = float(srgb_to_linear(REST_GREY_SRGB))
        name = "value" if hasattr(base, "value") else "color"  # 5.0 calls it "value", 4.5 "color"
        setattr(base, name, (grey, grey, grey, 1.0)[:len(getattr(base, name))])
        base_colour = base.outputs[0]
    base.name = base.label = "Base colour"
    base.location = (0, 450)
    mix = nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    mix.location = (400, 200)
    store = nodes.new("GeometryNodeStoreNamedAttribute")
    store.data_type, store.domain = "FLOAT_COLOR", "POINT"
    store.inputs["Name"].default_value = HEAT_COLOUR_ATTRIBUTE
    store.location = (800, 300)
    if total is not None:
        links.new(total.outputs[0], ramp.inputs["Fac"])
        links.new(total.outputs[0], fade.inputs["Value"])
    links.new(_socket(fade.outputs, "Result", "VALUE"), _socket(mix.inputs, "Factor", "VALUE"))
    links.new(base_colour, _socket(mix.inputs, "A", "RGBA"))
    links.new(ramp.outputs["Color"], _socket(mix.inputs, "B", "RGBA"))
    links.new(group_in.outputs[0], store.inputs["Geometry"])
    links.new(_socket(mix.outputs, "Result", "RGBA"), _socket(store.inputs, "Value", "RGBA"))
    links.new(store.outputs["Geometry"], group_out.inputs[0])
    return group


def _drive(tree, value_node, emg_obj, channel: str) -> None:
    fcurve = tree.driver_add(f'nodes["{bpy.utils.escape_identifier(value_node.name)}"].outputs[0].default_value')
    driver = fcurve.driver
    driver.type = "AVERAGE"  # no expression: evaluated without Python
    variable = driver.variables.new()
    variable.name = "activity"
    variable.type = "SINGLE_PROP"
    variable.targets[0].id_type = "OBJECT"
    variable.targets[0].id = emg_obj
    variable.targets[0].data_path = f'["{bpy.utils.escape_identifier("emg:" + channel)}"]'


def _build_material(face) -> bpy.types.Material:
    """The material of the heated slots: base colour (and a little emission) from the heat colours."""
    name = _material_name(face)
    material = bpy.data.materials.get(name) or bpy.data.materials.new(name)
    if bpy.app.version < (5, 0, 0):
        material.use_nodes = True
    grey = float(srgb_to_linear(REST_GREY_SRGB))
    material.diffuse_color = (grey, grey, grey, 1.0)
    tree = material.node_tree
    tree.nodes.clear()
    nodes, links = tree.nodes, tree.links
    output = nodes.new("ShaderNodeOutputMaterial")
    output.location = (600, 0)
    bsdf = nodes.new("ShaderNodeBsdfPrincipled")
    bsdf.location = (300, 0)
    bsdf.inputs["Roughness"].default_value = 0.55
    if "Emission Strength" in bsdf.inputs:
        bsdf.inputs["Emission Strength"].default_value = EMISSION_STRENGTH
    colour = nodes.new("ShaderNodeAttribute")
    colour.attribute_type = "GEOMETRY"
    colour.attribute_name = HEAT_COLOUR_ATTRIBUTE
    colour.name = colour.label = "Heat colour"
    colour.location = (0, 0)
    links.new(colour.outputs["Color"], bsdf.inputs["Base Color"])
    if "Emission Color" in bsdf.inputs:
        links.new(colour.outputs["Color"], bsdf.inputs["Emission Color"])
    links.new(bsdf.outputs[0], output.inputs["Surface"])
    return material


def _heated_slots(mesh, weights: np.ndarray) -> np.ndarray:
    """Indices of the material slots of the faces whose corners all carry heat (slot 0 if no faces)."""
    heated = weights.sum(axis=1) > 0.0
    loops = np.empty(len(mesh.loops), dtype=np.int32)
    mesh.loops.foreach_get("vertex_index", loops)
    starts = np.empty(len(mesh.polygons), dtype=np.int32)
    mesh.polygons.foreach_get("loop_start", starts)
    slot = np.empty(len(mesh.polygons), dtype=np.int32)
    mesh.polygons.foreach_get("material_index", slot)
    if not len(starts):
        return np.zeros(1, dtype=np.int32)
    face_heated = np.logical_and.reduceat(heated[loops], starts)  # every corner heated: not the mouth bag at the lips
    return np.unique(np.clip(slot[face_heated], 0, max(len(mesh.materials) - 1, 0)))


# ---------------------------------------------------------------------------------------------
# Turning it on and off


@dataclass
class HeatmapInfo:
    """What :func:`enable_heatmap` set up."""

    face: bpy.types.Object
    emg_object: bpy.types.Object
    material: bpy.types.Material
    node_group: bpy.types.NodeTree  # the Geometry Nodes group that writes HEAT_COLOUR_ATTRIBUTE
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
    source = None if face is None else internal.get(face, SOURCE_KEY)
    return source if isinstance(source, bpy.types.Object) else None


def is_enabled(face) -> bool:
    return face is not None and internal.has(face, SOURCE_KEY)


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
    if not emg_object.is_emg_object(emg_obj):
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
    group = _build_node_group(face, emg_obj, channels, scales)
    material = _build_material(face)
    if not is_enabled(face):
        internal.put(face, SLOTS_KEY, json.dumps(_slot_state(face)))
        internal.put(face, ADDED_SLOT_KEY, len(face.material_slots) == 0)
        active = mesh.color_attributes.active_color
        internal.put(face, ACTIVE_COLOUR_KEY, active.name if active is not None else "")
        if len(face.material_slots) == 0:
            mesh.materials.append(None)
    heated = set(_heated_slots(mesh, weights).tolist())
    saved = json.loads(internal.get(face, SLOTS_KEY, "[]"))
    for index, slot in enumerate(face.material_slots):
        if index in heated:
            slot.link = "OBJECT"
            slot.material = material
        elif index < len(saved) and slot.link == "OBJECT" and slot.material == material:
            _restore_slot(slot, saved[index])  # heated in an earlier build (or an earlier version)
    _show_heat_colours(face, group)
    internal.put(face, SOURCE_KEY, emg_obj)
    internal.put(face, PERCENTILE_KEY, float(percentile))
    mesh.update()
    return HeatmapInfo(face, emg_obj, material, group, channels, levels, site_points, frame)


def _show_heat_colours(face, group) -> None:
    """The modifier that writes the heat colours, last in the stack, and their attribute as the
    mesh's active colour (Workbench's "Attribute" colour type shows the active one)."""
    mesh = face.data
    colours = mesh.color_attributes.get(HEAT_COLOUR_ATTRIBUTE)
    if colours is None:  # the original mesh holds the name; the modifier fills the values
        colours = mesh.color_attributes.new(HEAT_COLOUR_ATTRIBUTE, "FLOAT_COLOR", "POINT")
        grey = float(srgb_to_linear(REST_GREY_SRGB))
        colours.data.foreach_set("color", np.tile(np.float32((grey, grey, grey, 1.0)), len(mesh.vertices)))
    mesh.color_attributes.active_color = colours
    mesh.color_attributes.render_color_index = mesh.color_attributes.active_color_index
    modifier = face.modifiers.get(MODIFIER_NAME)
    if modifier is None or modifier.type != "NODES":
        modifier = face.modifiers.new(MODIFIER_NAME, "NODES")
    modifier.node_group = group
    last = len(face.modifiers) - 1
    if list(face.modifiers).index(modifier) != last:
        face.modifiers.move(list(face.modifiers).index(modifier), last)


def _restore_slot(slot, saved: dict) -> None:
    slot.link = "OBJECT"
    slot.material = bpy.data.materials.get(saved["object_material"]) if saved["object_material"] else None
    slot.link = saved["link"]


def workbench_colour_type(face) -> str:
    """The Workbench colour type that shows ``face`` as painted: "VERTEX" ("Attribute") while the
    heatmap is on or for the open head's painted colours, else "MATERIAL"."""
    if face is None or face.type != "MESH":
        return "MATERIAL"
    active = face.data.color_attributes.active_color
    painted = active is not None and active.name in (COLOUR_ATTRIBUTE, HEAT_COLOUR_ATTRIBUTE)
    return "VERTEX" if is_enabled(face) or painted else "MATERIAL"


def disable_heatmap(face) -> bool:
    """Turn the heatmap off: the face's materials, slots, modifiers and attributes as before. False if it was off."""
    if not is_enabled(face):
        return False
    state = json.loads(internal.get(face, SLOTS_KEY, "[]"))
    name = _material_name(face)
    material = bpy.data.materials.get(name)
    mesh = face.data
    for slot, saved in zip(face.material_slots, state):
        _restore_slot(slot, saved)
    if internal.get(face, ADDED_SLOT_KEY):
        mesh.materials.clear()  # the mesh had none; clear() also drops the object's slot, pop() does not
    modifier = face.modifiers.get(MODIFIER_NAME)
    if modifier is not None:
        face.modifiers.remove(modifier)
    colours = mesh.color_attributes.get(HEAT_COLOUR_ATTRIBUTE)
    if colours is not None:
        mesh.color_attributes.remove(colours)
    previous = mesh.color_attributes.get(internal.get(face, ACTIVE_COLOUR_KEY, "") or "")
    if previous is not None:
        mesh.color_attributes.active_color = previous
        mesh.color_attributes.render_color_index = mesh.color_attributes.active_color_index
    _remove_weight_attributes(mesh)
    for key in (SOURCE_KEY, SLOTS_KEY, ADDED_SLOT_KEY, ACTIVE_COLOUR_KEY, PERCENTILE_KEY):
        internal.pop(face, key)
    if material is not None and material.users == 0:
        bpy.data.materials.remove(material)
    group = bpy.data.node_groups.get(name)
    if group is not None and group.users == 0:
        bpy.data.node_groups.remove(group)
    mesh.update()
    return True


def refresh_heatmaps(emg_obj) -> int:
    """Rebuild the heatmaps that show ``emg_obj`` (after its curves changed); returns how many."""
    count = 0
    for obj in bpy.data.objects:
        if obj.type == "MESH" and heatmap_source(obj) == emg_obj:
            enable_heatmap(obj, emg_obj, percentile=float(internal.get(obj, PERCENTILE_KEY, PERCENTILE)))
            count += 1
    return count
