"""Bind any mesh whose shape keys carry ARKit names, and key expression tracks on it."""
from __future__ import annotations

import bpy
import numpy as np

from ..core.errors import InputError
from ..core.spaces import ARKIT52, match_arkit_names
from ..core.tracks import ExpressionTrack
from . import keyframes


def _swap_side(name: str) -> str:
    if name.endswith("Left"):
        return name[:-4] + "Right"
    if name.endswith("Right"):
        return name[:-5] + "Left"
    return name


def arkit_binding(obj, *, swap_sides: bool = False, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """ARKit name -> shape-key name on ``obj``.

    Names match tolerantly (case, ``_L``/``Left``, prefixes such as ``A01_``); ``overrides`` (from
    the panel's mapping table) win; ``swap_sides`` exchanges Left and Right for rigs built mirrored.
    """
    keys = obj.data.shape_keys if obj is not None and obj.type == "MESH" else None
    if keys is None:
        raise InputError(f"{getattr(obj, 'name', 'nothing')} is not a mesh with shape keys")
    names = [kb.name for kb in keys.key_blocks[1:]]
    binding = match_arkit_names(names)
    for arkit, shape in (overrides or {}).items():
        if shape and shape in names:
            binding[arkit] = shape
    if swap_sides:
        binding = {_swap_side(arkit): shape for arkit, shape in binding.items()}
    return binding


def require_binding(obj, wanted_names, binding) -> None:
    """Raise naming the ARKit shapes a model needs that the rig lacks (all of them missing = error)."""
    bound = [n for n in wanted_names if n in binding]
    if not bound:
        missing = ", ".join(wanted_names[:8]) + (" …" if len(wanted_names) > 8 else "")
        raise InputError(f"{obj.name} has no shape keys with ARKit names (looked for {missing})")


def key_expression_track(obj, track: ExpressionTrack, binding: dict[str, str], *, start_frame: int,
                         action_name: str, keep=None):
    """Key ``track`` onto the bound shape keys in a new action; the previous action is stashed.

    Returns the new action. Columns without a bound shape key are skipped.
    """
    key = obj.data.shape_keys
    columns = [i for i, n in enumerate(track.names) if n in binding]
    paths = [f'key_blocks["{bpy.utils.escape_identifier(binding[track.names[i]])}"].value' for i in columns]
    keyframes.stash_assigned_action(key)
    action, bag = keyframes.new_action(key, action_name)
    frames = start_frame + np.arange(track.n_frames, dtype=np.float64)
    keyframes.write_curves(bag, paths, frames, track.values[:, columns],
                           keep=None if keep is None else keep[:, columns], group="ARKit")
    return action


def sample_shape_keys(obj, binding: dict[str, str], frames, scene=None) -> ExpressionTrack:
    """Evaluate the bound shape-key values frame by frame, whatever drives them (keys, drivers, NLA)."""
    scene = scene or bpy.context.scene
    key_blocks = obj.data.shape_keys.key_blocks
    index = {kb.name: i for i, kb in enumerate(key_blocks)}
    names = [n for n in ARKIT52 if n in binding]
    columns = np.array([index[binding[n]] for n in names], dtype=np.int64)
    frames = np.asarray(frames, dtype=np.int64)
    values = np.zeros((frames.size, len(names)))
    buffer = np.empty(len(key_blocks), dtype=np.float32)
    current = scene.frame_current
    try:
        for row, frame in enumerate(frames):
            scene.frame_set(int(frame))
            key_blocks.foreach_get("value", buffer)
            values[row] = buffer[columns]
    finally:
        scene.frame_set(current)
    return ExpressionTrack(values, names, fps=keyframes.scene_fps(scene), space="arkit52", units="1")
