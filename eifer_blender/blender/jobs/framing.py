"""What a headless render of a face frames and leaves out.

``face_bounds``: the world box the camera frames — the bounds of every mesh of the face's character
that carries bound ARKit shapes (head, teeth, eyes), a body mesh narrowed to the vertices its face
shapes move. ``left_out_of_render``: the objects that would spoil the picture — hidden in the
viewport but renderable, in an importer's helper collection (the glTF importer's
``glTF_not_exported``), or drawn as bone shapes — which ``leave_out`` hides from the render for a
block and shows again afterwards.
"""
from __future__ import annotations

import contextlib

import bpy
import numpy as np

from ...core.errors import InputError
from ..rigs import rig_for

#: collections importers fill with helpers that are not part of the character
HELPER_COLLECTIONS = ("glTF_not_exported",)
#: a mesh this many times taller than what its face shapes move is a body: frame the moving part
BODY_RATIO = 3.0
_MOVED_M = 1e-5
_RENDERED_TYPES = {"MESH", "CURVE", "CURVES", "SURFACE", "META", "FONT", "VOLUME", "POINTCLOUD",
                   "GPENCIL", "GREASEPENCIL"}


def _bound_meshes(face) -> list[tuple[object, dict]]:
    """``(mesh, binding)`` for each mesh a rig of ``face`` binds; ``[(face, {})]`` for anything else
    (a FLAME head, an object that is no face)."""
    try:
        rig = rig_for(face)
    except InputError:
        return [(face, {})]
    if rig.space != "arkit52":
        return [(face, {})]
    return [(part.face, part.binding) for part in getattr(rig, "parts", [rig])]


def face_meshes(face) -> list:
    """The meshes of ``face``'s character that a rig binds (``[face]`` for anything else)."""
    return [obj for obj, _ in _bound_meshes(face)]


def _box(obj, local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    matrix = np.array(obj.matrix_world, dtype=np.float64)
    world = local @ matrix[:3, :3].T + matrix[:3, 3]
    return world.min(axis=0), world.max(axis=0)


def world_box(obj) -> tuple[np.ndarray, np.ndarray]:
    """World ``(lo, hi)`` corners of ``obj``'s bounding box."""
    return _box(obj, np.array([tuple(c) for c in obj.bound_box], dtype=np.float64))


def _moved_vertices(obj, shape_names) -> np.ndarray | None:
    """Rest positions (local) of the vertices that any of ``shape_names`` moves, or None."""
    keys = obj.data.shape_keys
    if keys is None or not shape_names:
        return None
    n = len(obj.data.vertices)
    basis = np.empty(3 * n, dtype=np.float32)
    keys.reference_key.data.foreach_get("co", basis)
    moved = np.zeros(n, dtype=bool)
    shape = np.empty(3 * n, dtype=np.float32)
    for name in shape_names:
        keys.key_blocks[name].data.foreach_get("co", shape)
        moved |= (np.abs(shape - basis).reshape(n, 3) > _MOVED_M).any(axis=1)
    return basis.reshape(n, 3)[moved].astype(np.float64) if moved.any() else None


def face_bounds(face) -> tuple[np.ndarray, np.ndarray]:
    """World ``(lo, hi)`` corners of the face to frame: every bound mesh of its character; where a
    mesh is more than :data:`BODY_RATIO` times taller than the vertices its face shapes move (one
    mesh for the whole body), those vertices with a quarter of their size as margin."""
    boxes = []
    for obj, binding in _bound_meshes(face):
        lo, hi = world_box(obj)
        moved = _moved_vertices(obj, sorted(set(binding.values()))) if binding else None
        if moved is not None:
            m_lo, m_hi = _box(obj, moved)
            if hi[2] - lo[2] > BODY_RATIO * max(m_hi[2] - m_lo[2], 1e-9):
                margin = 0.25 * (m_hi - m_lo)
                lo, hi = m_lo - margin, m_hi + margin
        boxes.append((lo, hi))
    return np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)


def _layer_collections(layer, out: dict) -> dict:
    out[layer.collection.name] = layer
    for child in layer.children:
        _layer_collections(child, out)
    return out


def left_out_of_render(scene, face) -> list:
    """Objects a render of ``face`` leaves out: renderable but hidden in the viewport (the object,
    its collection or its view-layer collection), in an importer helper collection
    (:data:`HELPER_COLLECTIONS`), or used as a bone's custom shape. The face's own meshes stay."""
    view_layer = bpy.context.view_layer if bpy.context.view_layer in scene.view_layers[:] else scene.view_layers[0]
    layers = _layer_collections(view_layer.layer_collection, {})
    shapes = {pb.custom_shape for o in scene.objects if o.type == "ARMATURE" for pb in o.pose.bones if pb.custom_shape}
    keep = set(face_meshes(face)) | {face}
    out = []
    for obj in scene.objects:
        if obj in keep or obj.type not in _RENDERED_TYPES or obj.hide_render or obj.name not in view_layer.objects:
            continue  # the face, nothing to draw, or left out already (an excluded collection too)
        collections = obj.users_collection
        if collections and all(c.hide_render for c in collections if c != scene.collection) \
                and scene.collection not in collections:
            continue  # not rendered as it is
        hidden = obj.hide_viewport or obj.hide_get(view_layer=view_layer) or any(
            c.hide_viewport or (c.name in layers and layers[c.name].hide_viewport) for c in collections)
        helper = obj in shapes or any(c.name.startswith(HELPER_COLLECTIONS) for c in collections)
        if hidden or helper:
            out.append(obj)
    return out


@contextlib.contextmanager
def leave_out(objects):
    """Hide ``objects`` from the render inside the block; their render visibility comes back after."""
    objects = list(objects)
    before = [obj.hide_render for obj in objects]
    try:
        for obj in objects:
            obj.hide_render = True
        yield objects
    finally:
        for obj, hidden in zip(objects, before):
            obj.hide_render = hidden
