"""Fast F-curve writing and reading on slotted actions (Blender 4.4+ API; 4.5 LTS and 5.x).

Keys are written in one pass per curve with ``keyframe_points.add`` + ``foreach_set`` (about 3 M
keys/s measured with bpy 5.0.1; Blender Python API, ``FCurveKeyframePoints.add`` and
``bpy_prop_collection.foreach_set``) instead of ``keyframe_insert`` (about 6 k keys/s). Actions that a drive replaces
are stashed, never deleted, so one click brings them back.
"""
from __future__ import annotations

import bpy
import numpy as np

from . import internal

_INTERPOLATION = {"CONSTANT": 0, "LINEAR": 1, "BEZIER": 2}
_AUTO_CLAMPED = 4
PREVIOUS_ACTION_KEY = "previous_action"  # internal, on the ID whose action was stashed
PREVIOUS_SLOT_KEY = "previous_action_slot"
STASH_TRACK_NAME = "[EIFER previous]"
MADE_BY_EIFER_KEY = "made"  # internal (see .internal), on actions this add-on wrote (drives, imports)


def scene_fps(scene) -> float:
    """The scene's frame rate in frames per second (``fps / fps_base``)."""
    return scene.render.fps / scene.render.fps_base


def new_action(id_data: bpy.types.ID, name: str):
    """Create an action with one slot and one keyframe strip, assign it to ``id_data``.

    Returns ``(action, channelbag)``; the channelbag's ``fcurves`` receive the curves.
    """
    action = bpy.data.actions.new(name)
    internal.put(action, MADE_BY_EIFER_KEY, True)
    slot = action.slots.new(id_type=id_data.id_type, name=id_data.name)
    layer = action.layers.new("EIFER")
    strip = layer.strips.new(type="KEYFRAME")
    channelbag = strip.channelbag(slot, ensure=True)
    anim = id_data.animation_data or id_data.animation_data_create()
    anim.action = action
    anim.action_slot = slot
    return action, channelbag


def assigned_channelbag(id_data: bpy.types.ID):
    """The channelbag of the action and slot assigned to ``id_data``, or None."""
    anim = id_data.animation_data
    if anim is None or anim.action is None or anim.action_slot is None:
        return None
    for layer in anim.action.layers:
        for strip in layer.strips:
            bag = strip.channelbag(anim.action_slot)
            if bag is not None:
                return bag
    return None


def write_curves(channelbag, data_paths, frames, values, *, keep=None, interpolation: str = "LINEAR",
                 group: str | None = None):
    """Write one F-curve per column of ``values`` (frames x curves) in one pass each.

    ``data_paths`` holds a ``data_path`` string or ``(data_path, array_index)`` per column.
    ``keep`` (frames x curves, bool), e.g. from ``core.expression.curves.reduce_keys``, keys only those frames.
    Existing curves with the same path are replaced. Returns the F-curves in column order.
    """
    frames = np.asarray(frames, dtype=np.float32)
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2 or values.shape != (frames.size, len(data_paths)):
        raise ValueError(f"values must be (frames={frames.size}, curves={len(data_paths)}), got {values.shape}")
    if keep is not None and np.shape(keep) != values.shape:
        raise ValueError(f"keep must have the shape of values {values.shape}, got {np.shape(keep)}")
    interp_code = _INTERPOLATION[interpolation]
    # LINEAR keys in frame order evaluate from their co alone: no sort, no handles to compute, so
    # ``fcurve.update()`` (a sort and a handle pass, most of the cost) is skipped for them
    in_order = frames.size < 2 or bool(np.all(np.diff(frames) > 0))
    settle = interpolation != "LINEAR" or not in_order
    # uint8, the width of BezTriple's ``ipo`` and handle types: foreach_set then copies the bytes
    # (RNA's raw-array path) instead of setting an enum per key, ~12x faster for interpolation
    interp = np.full(frames.size, interp_code, dtype=np.uint8)
    action_group = None
    if group:
        action_group = channelbag.groups.get(group) or channelbag.groups.new(group)
    curves = []
    for column, path in enumerate(data_paths):
        path, index = (path, 0) if isinstance(path, str) else path
        old = channelbag.fcurves.find(path, index=index)
        if old is not None:
            channelbag.fcurves.remove(old)
        fcurve = channelbag.fcurves.new(path, index=index)
        if action_group is not None:
            fcurve.group = action_group
        rows = slice(None) if keep is None else np.asarray(keep[:, column], dtype=bool)
        column_frames, column_values = frames[rows], values[rows, column]
        n = column_frames.size
        co = np.empty(2 * n, dtype=np.float32)
        co[0::2], co[1::2] = column_frames, column_values
        points = fcurve.keyframe_points
        points.add(n)
        points.foreach_set("co", co)
        points.foreach_set("interpolation", interp[:n])
        if settle:
            points.foreach_set("handle_left_type", np.full(n, _AUTO_CLAMPED, dtype=np.uint8))
            points.foreach_set("handle_right_type", np.full(n, _AUTO_CLAMPED, dtype=np.uint8))
            fcurve.update()
        curves.append(fcurve)
    return curves


def read_keys(fcurve) -> tuple[np.ndarray, np.ndarray]:
    """The raw keys of one F-curve as (frames, values) float32 arrays."""
    n = len(fcurve.keyframe_points)
    co = np.empty(2 * n, dtype=np.float32)
    fcurve.keyframe_points.foreach_get("co", co)
    return co[0::2].copy(), co[1::2].copy()


def _linear_float32(keyed_frames: np.ndarray, keyed_values: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Blender's LINEAR segment in its own float32 arithmetic (``fcurve_eval_keyframes_interpolate``:
    ``y0 + (t - x0) / (x1 - x0) * (y1 - y0)``), held at the first and last key."""
    t = frames.astype(np.float32)
    if keyed_frames.size == 1:
        return np.full(frames.shape, float(keyed_values[0]))
    right = np.clip(np.searchsorted(keyed_frames, t, side="right"), 1, keyed_frames.size - 1)
    x0, x1 = keyed_frames[right - 1], keyed_frames[right]
    y0, y1 = keyed_values[right - 1], keyed_values[right]
    y = y0 + (t - x0) / (x1 - x0) * (y1 - y0)
    y = np.where(t <= keyed_frames[0], keyed_values[0], np.where(t >= keyed_frames[-1], keyed_values[-1], y))
    return y.astype(np.float64)


def sample_curve(fcurve, frames) -> np.ndarray:
    """The F-curve's values at ``frames``, as ``fcurve.evaluate`` gives them, float64.

    A curve of LINEAR keys in frame order, without modifiers and with constant extrapolation, is
    read once with ``foreach_get`` and interpolated by numpy in Blender's float32 arithmetic (the
    same straight lines, held at the ends); any other curve is evaluated by Blender frame by frame.
    """
    frames = np.asarray(frames, dtype=np.float64)
    n = len(fcurve.keyframe_points)
    if n and not len(fcurve.modifiers) and fcurve.extrapolation == "CONSTANT":
        interpolation = np.empty(n, dtype=np.uint8)  # raw bytes, as in write_curves
        fcurve.keyframe_points.foreach_get("interpolation", interpolation)
        keyed_frames, keyed_values = read_keys(fcurve)
        if (n == 1 or (interpolation[:-1] == _INTERPOLATION["LINEAR"]).all()) and (
                np.diff(keyed_frames) > 0).all():
            return _linear_float32(keyed_frames, keyed_values, frames)
    return np.array([fcurve.evaluate(float(f)) for f in frames], dtype=np.float64)


def stash_assigned_action(id_data: bpy.types.ID) -> str | None:
    """Keep the action now on ``id_data`` safe before a new one is assigned.

    The action gets a fake user and a muted NLA track (Blender's own "stash" convention), and its
    name is remembered on ``id_data`` so :func:`restore_previous_action` can bring it back.
    """
    anim = id_data.animation_data
    if anim is None or anim.action is None:
        return None
    action, slot = anim.action, anim.action_slot
    if internal.get(action, MADE_BY_EIFER_KEY):
        # a drive replaces an earlier drive: the user's own action stays the one to restore, and the
        # superseded drive (the add-on's output, made again on any drive) goes unless used elsewhere
        anim.action = None
        if action.users == 0:
            bpy.data.actions.remove(action)
        return internal.get(id_data, PREVIOUS_ACTION_KEY)
    action.use_fake_user = True
    track = anim.nla_tracks.new()
    track.name = STASH_TRACK_NAME
    strip = track.strips.new(action.name, int(action.frame_range[0]), action)
    if slot is not None and hasattr(strip, "action_slot"):
        strip.action_slot = slot
    track.mute = True
    internal.put(id_data, PREVIOUS_ACTION_KEY, action.name)
    if slot is not None:
        internal.put(id_data, PREVIOUS_SLOT_KEY, slot.identifier)
    return action.name


def restore_previous_action(id_data: bpy.types.ID) -> bool:
    """Re-assign the action stashed by :func:`stash_assigned_action`; False when there is none."""
    name = internal.get(id_data, PREVIOUS_ACTION_KEY)
    action = bpy.data.actions.get(name) if name else None
    if action is None:
        return False
    anim = id_data.animation_data or id_data.animation_data_create()
    replaced = anim.action
    anim.action = action
    if replaced is not None and replaced != action and replaced.users == 0:
        replaced.use_fake_user = True  # the drive being undone stays in the file, never lost on save
    slot_id = internal.get(id_data, PREVIOUS_SLOT_KEY)
    slot = action.slots.get(slot_id) if slot_id else None
    if slot is not None:
        anim.action_slot = slot
    for track in list(anim.nla_tracks):
        if track.name.startswith(STASH_TRACK_NAME) and any(s.action == action for s in track.strips):
            anim.nla_tracks.remove(track)
    internal.pop(id_data, PREVIOUS_ACTION_KEY)
    internal.pop(id_data, PREVIOUS_SLOT_KEY)
    return True


def has_previous_action(id_data) -> bool:
    """Whether ``id_data`` has an action stashed by :func:`stash_assigned_action` to restore."""
    return id_data is not None and internal.has(id_data, PREVIOUS_ACTION_KEY)
