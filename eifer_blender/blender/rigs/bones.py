"""Jaw and eye bones: ARKit weights turned into bone rotations, for characters that open the jaw or
turn the eyes with bones instead of shape keys.

Off unless the user maps them: ``{"jawOpen": ("jaw", "X", 25.0), "eyeLookUpLeft": ("LeftEye", "X",
-15.0), …}`` — an ARKit name, the pose bone it turns, the bone's local axis and the angle in
degrees at weight 1. Weights are clipped to 0–1 first, so a bone never turns past the angles it is
mapped to (those are its limits); names on the same bone and axis add (eyeLookUp and eyeLookDown
on one eye's X). The rotation is relative to the bone's rest pose, keyed in one pass per curve in
the bone's own rotation mode (quaternion, Euler or axis-angle) on a new action of the armature
(the previous one is stashed, as for shape keys).

The mapping comes as a dict argument, from ``--bone ARKIT=BONE:AXIS:DEGREES`` on the command line,
or from the armature's custom property ``eifer_bones`` (:data:`BONES_PROPERTY`), entries in the
same syntax separated by ``;`` — saved with the .blend, so the sidebar's Drive uses it too.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from ...core.errors import InputError
from ...core.expression.spaces import ARKIT52
from ...core.tracks import ExpressionTrack
from ..anim import keyframes

AXES = "XYZ"
BONES_PROPERTY = "eifer_bones"
MAX_DEGREES = 180.0


@dataclass(frozen=True)
class BoneMap:
    """One mapped ARKit name: it turns ``bone`` about its local ``axis`` by ``degrees`` at weight 1."""

    arkit: str
    bone: str
    axis: str
    degrees: float


def parse_bone_option(text: str) -> tuple[str, tuple[str, str, float]]:
    """``ARKIT=BONE:AXIS:DEGREES`` (the command line's ``--bone``) -> ``(arkit, (bone, axis, degrees))``.

    >>> parse_bone_option("jawOpen=jaw:X:25")
    ('jawOpen', ('jaw', 'X', 25.0))
    """
    match = re.fullmatch(r"\s*([^=\s]+)\s*=\s*(.+):([^:]+):([^:]+)\s*", text)
    if match is None:
        raise InputError(f"bone mapping {text!r}: write ARKIT=BONE:AXIS:DEGREES, e.g. jawOpen=jaw:X:25")
    arkit, bone, axis, degrees = match.groups()
    try:
        value = float(degrees)
    except ValueError:
        raise InputError(f"bone mapping {text!r}: {degrees!r} is not a number of degrees") from None
    return arkit, (bone.strip(), axis.strip(), value)


def bones_on_rig(obj) -> dict | None:
    """The bone mapping stored on ``obj``'s armature (its ``eifer_bones`` property), or None."""
    armature = armature_of(obj)
    text = armature.get(BONES_PROPERTY) if armature is not None else None
    if not text:
        return None
    if not isinstance(text, str):
        raise InputError(f"{armature.name}[{BONES_PROPERTY!r}]: write the bone mapping as text, "
                         f"e.g. 'jawOpen=jaw:X:25; eyeLookUpLeft=LeftEye:X:-15'")
    return dict(parse_bone_option(entry) for entry in re.split(r"[;\n]", text) if entry.strip())


def bone_maps(bones: dict, armature) -> list[BoneMap]:
    """Check a user's bone mapping against ``armature`` (every check before anything is keyed).

    Raises
    ------
    InputError
        An unknown ARKit name, a bone the armature lacks, an axis other than X/Y/Z, an angle that
        is not a finite number of degrees within ±180, or no armature to turn.
    """
    if not bones:
        return []
    if armature is None or armature.type != "ARMATURE":
        raise InputError(f"a bone mapping ({', '.join(bones)}) needs the character's armature; this face has "
                         f"none (its meshes are not parented to or deformed by one)")
    lookup = {n.lower(): n for n in ARKIT52}
    maps = []
    for arkit, target in bones.items():
        name = lookup.get(str(arkit).lower())
        if name is None:
            raise InputError(f"bone mapping: {arkit!r} is not an ARKit shape name (e.g. jawOpen, eyeLookUpLeft)")
        try:
            bone, axis, degrees = target
            degrees = float(degrees)
        except (TypeError, ValueError):
            raise InputError(f"bone mapping for {name}: give (bone, axis, degrees), got {target!r}") from None
        if bone not in armature.pose.bones:
            known = ", ".join(b.name for b in armature.pose.bones[:20])
            raise InputError(f"bone mapping for {name}: {armature.name} has no bone {bone!r} (its bones: {known}"
                             f"{' …' if len(armature.pose.bones) > 20 else ''})")
        axis = str(axis).upper()
        if axis not in AXES or len(axis) != 1:
            raise InputError(f"bone mapping for {name}: axis {target[1]!r} is not X, Y or Z")
        if not math.isfinite(degrees) or abs(degrees) > MAX_DEGREES:
            raise InputError(f"bone mapping for {name}: {target[2]!r} degrees; give an angle within ±{MAX_DEGREES:g}")
        maps.append(BoneMap(name, bone, axis, degrees))
    return maps


def bone_angles(track: ExpressionTrack, maps: list[BoneMap]) -> dict[str, np.ndarray]:
    """Per bone, its rotation about X, Y, Z in radians, ``(frames, 3)``, from ``track``'s weights
    (clipped to 0–1; names the track lacks turn nothing)."""
    angles: dict[str, np.ndarray] = {}
    for m in maps:
        rotation = angles.setdefault(m.bone, np.zeros((track.n_frames, 3)))
        if m.arkit in track.names:
            weight = np.clip(np.nan_to_num(track.column(m.arkit)), 0.0, 1.0)
            rotation[:, AXES.index(m.axis)] += np.radians(m.degrees) * weight
    return angles


def _quaternions_xyz(angles: np.ndarray) -> np.ndarray:
    """(frames, 3) XYZ Euler angles -> (frames, 4) quaternions w, x, y, z (Blender's XYZ order)."""
    half = angles / 2.0
    cx, cy, cz = np.cos(half).T
    sx, sy, sz = np.sin(half).T
    return np.stack([cx * cy * cz + sx * sy * sz, sx * cy * cz - cx * sy * sz,
                     cx * sy * cz + sx * cy * sz, cx * cy * sz - sx * sy * cz], axis=1)


def _curves_for(pose_bone, rotation: np.ndarray, used_axes: set[int]):
    """The data paths and (frames, n) values that give ``pose_bone`` ``rotation`` in its rotation mode."""
    path = pose_bone.path_from_id
    mode = pose_bone.rotation_mode
    if mode == "QUATERNION":
        return [(path("rotation_quaternion"), i) for i in range(4)], _quaternions_xyz(rotation)
    if mode == "AXIS_ANGLE":
        quaternion = _quaternions_xyz(rotation)
        angle = 2.0 * np.arccos(np.clip(quaternion[:, 0], -1.0, 1.0))
        sine = np.sqrt(np.maximum(1.0 - quaternion[:, 0] ** 2, 0.0))
        axis = np.where(sine[:, None] > 1e-9, quaternion[:, 1:] / np.maximum(sine, 1e-9)[:, None], [0.0, 1.0, 0.0])
        return [(path("rotation_axis_angle"), i) for i in range(4)], np.column_stack([angle, axis])
    axes = sorted(used_axes)  # Euler: only the mapped axes are keyed; the others keep what they have
    return [(path("rotation_euler"), i) for i in axes], rotation[:, axes]


def key_bones(armature, track: ExpressionTrack, maps: list[BoneMap], *, start_frame: int, action_name: str):
    """Key the mapped bones of ``armature`` from ``track`` on a new action (the previous one is
    stashed); returns the action, or None when the track carries none of the mapped names."""
    maps = [m for m in maps if m.arkit in track.names]
    if not maps:
        return None
    angles = bone_angles(track, maps)
    paths, columns = [], []
    for bone, rotation in angles.items():
        bone_paths, values = _curves_for(armature.pose.bones[bone], rotation,
                                         {AXES.index(m.axis) for m in maps if m.bone == bone})
        paths += bone_paths
        columns.append(values)
    keyframes.stash_assigned_action(armature)
    action, bag = keyframes.new_action(armature, action_name)
    frames = start_frame + np.arange(track.n_frames, dtype=np.float64)
    keyframes.write_curves(bag, paths, frames, np.column_stack(columns), group="EIFER bones")
    return action


def armature_of(obj):
    """The armature that deforms or carries ``obj`` (an Armature modifier's, else the nearest
    armature parent), or None."""
    if obj is None:
        return None
    if obj.type == "ARMATURE":
        return obj
    for modifier in getattr(obj, "modifiers", ()):
        if modifier.type == "ARMATURE" and modifier.object is not None:
            return modifier.object
    parent = obj.parent
    while parent is not None:
        if parent.type == "ARMATURE":
            return parent
        parent = parent.parent
    return None


__all__ = ["BONES_PROPERTY", "BoneMap", "armature_of", "bone_angles", "bone_maps", "bones_on_rig", "key_bones",
           "parse_bone_option"]
