"""The ARKit rig: any mesh whose shape keys carry ARKit-52 names — bind, key a track, sample a track."""
from __future__ import annotations

from dataclasses import dataclass, field

import bpy
import numpy as np

from ...core.errors import InputError
from ...core.expression.spaces import ARKIT52, match_arkit_names
from ...core.tracks import ExpressionTrack
from ..anim import keyframes


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


@dataclass
class MeshBinding:
    """What one mesh of a face carries: ``matched`` ARKit name -> its shape key, ``unmatched`` the
    shape keys (Basis aside) that carry no ARKit name (visemes, vendor names: map them in the
    mapping table), ``keyed`` the ARKit names the last key wrote on it."""

    name: str
    matched: dict[str, str]
    unmatched: list[str]
    keyed: list[str] = field(default_factory=list)


def mesh_binding(obj, binding: dict[str, str]) -> MeshBinding:
    """The :class:`MeshBinding` of ``obj`` under ``binding`` (ARKit name -> shape key)."""
    keys = obj.data.shape_keys
    names = [kb.name for kb in keys.key_blocks[1:]] if keys is not None else []
    used = set(binding.values())
    return MeshBinding(obj.name, {n: binding[n] for n in ARKIT52 if n in binding},
                       [n for n in names if n not in used])


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


def _plain_keyframed(id_data) -> bool:
    """True when only the assigned action moves ``id_data`` (no drivers, live NLA or blending),
    so its F-curves can be evaluated directly instead of stepping the scene frame by frame."""
    anim = id_data.animation_data
    if anim is None:
        return True
    if len(anim.drivers) or any(not track.mute for track in anim.nla_tracks) or anim.use_tweak_mode:
        return False
    return anim.action is None or (anim.action_influence == 1.0 and anim.action_blend_type == "REPLACE"
                                   and anim.action_extrapolation == "HOLD")


def sample_shape_keys(obj, binding: dict[str, str], frames, scene=None) -> ExpressionTrack:
    """The bound shape-key values at ``frames`` as an ``arkit52`` track at the scene's fps.

    Keyframed-only shape keys are evaluated from their F-curves (:func:`sample_from_curves`, fast);
    anything else (drivers, NLA, blending) by stepping the scene through the frames
    (:func:`sample_by_stepping`), so the values are what Blender shows, whatever made them.
    """
    sample = sample_from_curves if _plain_keyframed(obj.data.shape_keys) else sample_by_stepping
    return sample(obj, binding, frames, scene)


def sample_from_curves(obj, binding: dict[str, str], frames, scene=None) -> ExpressionTrack:
    """The bound shape keys at ``frames`` from their F-curves (the assigned action only)."""
    scene = scene or bpy.context.scene
    key = obj.data.shape_keys
    frames = np.asarray(frames, dtype=np.int64)
    names = [n for n in ARKIT52 if n in binding]
    bag = keyframes.assigned_channelbag(key)
    values = np.empty((frames.size, len(names)))
    for column, name in enumerate(names):
        block = key.key_blocks[binding[name]]
        path = f'key_blocks["{bpy.utils.escape_identifier(block.name)}"].value'
        fcurve = bag.fcurves.find(path) if bag is not None else None
        if fcurve is None or fcurve.mute:
            values[:, column] = block.value
        else:
            values[:, column] = keyframes.sample_curve(fcurve, frames)
            # the animation system writes through RNA, which clamps to the slider range
            np.clip(values[:, column], block.slider_min, block.slider_max, out=values[:, column])
    return ExpressionTrack(values, names, fps=keyframes.scene_fps(scene), space="arkit52", units="1")


def sample_by_stepping(obj, binding: dict[str, str], frames, scene=None) -> ExpressionTrack:
    """The bound shape keys at ``frames`` as Blender evaluates them, frame by frame."""
    scene = scene or bpy.context.scene
    key_blocks = obj.data.shape_keys.key_blocks
    frames = np.asarray(frames, dtype=np.int64)
    names = [n for n in ARKIT52 if n in binding]
    index = {kb.name: i for i, kb in enumerate(key_blocks)}
    columns = np.array([index[binding[n]] for n in names], dtype=np.int64)
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


class ArkitRig:
    """A mesh with ARKit-named shape keys, behind the rig interface (bind, key, sample).

    ``swap_sides`` and ``mapping`` (ARKit name -> shape key, from the panel's table) are as for
    :func:`arkit_binding`.
    """

    space = "arkit52"

    def __init__(self, face, *, swap_sides: bool = False, mapping: dict[str, str] | None = None):
        self.face = face
        self.binding = arkit_binding(face, swap_sides=swap_sides, overrides=mapping)
        self._keyed: list[str] = []

    @property
    def meshes(self) -> list[MeshBinding]:
        """Each mesh the rig keys (here the one) with its matched and unmatched shapes."""
        report = mesh_binding(self.face, self.binding)
        report.keyed = list(self._keyed)
        return [report]

    @property
    def animated_ids(self) -> list:
        return [self.face, self.face.data.shape_keys]

    def bind(self, names) -> list[str]:
        """Check that some of ``names`` have a shape key; returns those that have none."""
        names = list(names)
        require_binding(self.face, names, self.binding)
        return [n for n in names if n not in self.binding]

    def key(self, track: ExpressionTrack, *, start_frame: int, action_name: str, keep=None):
        """Key ``track`` on the bound shape keys (the previous action is stashed); returns the action."""
        self._keyed = [n for n in track.names if n in self.binding]
        return key_expression_track(self.face, track, self.binding, start_frame=start_frame,
                                    action_name=action_name, keep=keep)

    def sample(self, frames, scene=None) -> ExpressionTrack:
        """The bound shapes at ``frames`` as an ``arkit52`` track (whatever animates them)."""
        return sample_shape_keys(self.face, self.binding, frames, scene)
