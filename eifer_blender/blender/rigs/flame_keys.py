"""Keying FLAME parameter tracks on the rig (one ``foreach_set`` pass per curve) and reading them back."""
from __future__ import annotations

import bpy
import numpy as np

from ...core.errors import InputError
from ...core.expression.flame_params import FlameParams
from ...core.expression.spaces import FLAME_EXP
from ...core.heads.flame_model import matrix_to_axis_angle
from ...core.tracks import ExpressionTrack
from ..anim import keyframes
from ..anim.keyframes import scene_fps
from .flame import (
    BONE_NAMES,
    EXTRA_PARAM_PROPS,
    IDENTITY_MODES,
    POSE_GROUP_BONES,
    SLIDER_LIMIT,
    FlameRig,
    axis_angle_to_quaternion,
    quaternion_to_axis_angle,
    set_flame_parameters,
    shape_key_name,
)
from .flame_build import replace_joints

# --------------------------------------------------------------------------------------------
# Parameter tracks -> keys


def _continuous_quaternions(quaternions: np.ndarray) -> np.ndarray:
    """Flip signs so consecutive quaternions lie in one hemisphere (no interpolation spins)."""
    q = np.array(quaternions, dtype=np.float64)
    if len(q) > 1:
        dots = np.einsum("fi,fi->f", q[1:], q[:-1])
        flips = np.cumprod(np.where(dots < 0, -1.0, 1.0))
        q[1:] *= flips[:, None]
    return q


def _ensure_array_prop(id_data, prop_name: str, width: int) -> None:
    value = id_data.get(prop_name)
    if value is None or len(value) != width:
        id_data[prop_name] = [0.0] * width


def key_flame_params(rig: FlameRig, params: FlameParams, start_frame: float = 1.0,
                     identity: str = "mean", fps: float | None = None,
                     action_name: str | None = None) -> dict:
    """Key ``params`` on the rig (fast path: one ``foreach_set`` pass per curve).

    Expression → all ``Exp`` keys (coefficients beyond the file's are keyed 0); global / neck /
    jaw / eye poses → quaternion keys on root / neck / jaw / eye_L / eye_R (only the groups the
    file has); eyelid, cam, translation → keyed custom properties ``flame_eyelid``, ``flame_cam``,
    ``flame_translation_m`` on the armature object (kept so an export gives them back). The
    eyelid pair moves the eyelids where the model file had eyelid blendshapes (``Eyelid_L/R``
    keys driven by ``flame_eyelid``); elsewhere it is kept only, with a warning. The actions
    the rig had are stashed, not deleted.

    Parameters
    ----------
    rig : FlameRig
    params : FlameParams
    start_frame : float
        Frame of the first parameter row.
    identity : {"mean", "per_frame", "keep"}
        ``mean``: the clip's mean shape becomes the (unkeyed) identity and the joints are
        re-placed. ``per_frame``: Shape keys are keyed per frame too (joints placed for the
        mean; per-frame identity changes do not move the bones). ``keep``: shape is ignored.
    fps : float, optional
        Scene frame rate to key at (default: the scene's). Rows are placed by time, so a 30 Hz
        file in a 24 fps scene lands on fractional frames.
    action_name : str, optional
        Base name of the two new actions.

    Returns
    -------
    dict
        ``frames`` (first, last), ``n_frames``, ``keyed`` (curve names), ``warnings`` (list of
        str, e.g. coefficients the rig has no key for, values beyond ±10 that Blender clamps),
        ``notes`` (list of str: eyelid parameters on a head without eyelid blendshapes).
    """
    if identity not in IDENTITY_MODES:
        raise InputError(f"identity must be one of {', '.join(IDENTITY_MODES)}, got {identity!r}.")
    scene = bpy.context.scene
    fps = scene_fps(scene) if fps is None else float(fps)
    frames = start_frame + np.arange(params.n_frames) * (fps / params.fps)
    warnings: list[str] = []
    where = params.source or "the parameters"

    expression = np.zeros((params.n_frames, rig.n_expression))
    n_exp = min(rig.n_expression, params.expression.shape[1])
    expression[:, :n_exp] = params.expression[:, :n_exp]
    if np.any(params.expression[:, n_exp:] != 0):
        warnings.append(f"{where}: has {params.expression.shape[1]} expression coefficients, the "
                        f"rig {rig.n_expression}; the rest were left out (add a head with more "
                        f"expression keys to keep them).")
    shape = params.shape
    if shape is not None and identity != "keep":
        n_sh = min(rig.n_shape, shape.shape[1])
        if np.any(shape[:, n_sh:] != 0):
            warnings.append(f"{where}: has {shape.shape[1]} identity coefficients, the rig "
                            f"{rig.n_shape}; the rest were left out.")
        shape = shape[:, :n_sh]
    notes: list[str] = []
    if params.eyelid is not None and np.any(params.eyelid != 0) and not rig.has_eyelids:
        notes.append(f"{where}: its eyelid parameters are kept (flame_eyelid) but move nothing: the "
                     f"head's FLAME model file has no eyelid blendshapes.")
    for values, what in ((expression, "expression"), (shape, "identity")):
        if values is not None and np.abs(values).max(initial=0.0) > SLIDER_LIMIT:
            warnings.append(f"{where}: {what} values beyond ±{SLIDER_LIMIT:g} were clamped "
                            f"(Blender's shape-key limit).")

    base = action_name or f"{rig.armature_obj.name} FLAME"
    key = rig.key
    keyframes.stash_assigned_action(key)
    _, key_bag = keyframes.new_action(key, f"{base} keys")
    paths = [f'key_blocks["{name}"].value' for name in rig.expression_names]
    columns = [expression]
    if shape is not None and identity == "per_frame" and shape.shape[1]:
        paths += [f'key_blocks["{shape_key_name(i)}"].value' for i in range(shape.shape[1])]
        columns.append(shape)
    if paths:
        keyframes.write_curves(key_bag, paths, frames,
                               np.clip(np.concatenate(columns, axis=1), -SLIDER_LIMIT, SLIDER_LIMIT),
                               group="FLAME")
    keyed = list(paths)

    armature_obj = rig.armature_obj
    keyframes.stash_assigned_action(armature_obj)
    _, armature_bag = keyframes.new_action(armature_obj, f"{base} pose")
    for group, bone_names in POSE_GROUP_BONES.items():
        values = getattr(params, group)
        if values is None:
            continue
        for slot, bone_name in enumerate(bone_names):
            quaternions = _continuous_quaternions(
                axis_angle_to_quaternion(values[:, 3 * slot:3 * slot + 3]))
            armature_obj.pose.bones[bone_name].rotation_mode = "QUATERNION"
            bone_paths = [(f'pose.bones["{bone_name}"].rotation_quaternion', i) for i in range(4)]
            keyframes.write_curves(armature_bag, bone_paths, frames, quaternions, group=bone_name)
            keyed.append(f"{bone_name} rotation")
    for group, prop_name in EXTRA_PARAM_PROPS.items():
        values = getattr(params, group)
        if values is None:
            continue
        _ensure_array_prop(armature_obj, prop_name, values.shape[1])
        keyframes.write_curves(armature_bag, [(f'["{prop_name}"]', i) for i in range(values.shape[1])],
                               frames, values, group="FLAME extras")
        keyed.append(prop_name)

    if shape is not None and identity in ("mean", "per_frame") and shape.shape[1]:
        mean_shape = np.clip(shape.mean(axis=0), -SLIDER_LIMIT, SLIDER_LIMIT)
        if identity == "mean":
            set_flame_parameters(rig, shape=mean_shape)
        replace_joints(rig, np.pad(mean_shape, (0, rig.n_shape - mean_shape.size)))
    return {"frames": (float(frames[0]), float(frames[-1])), "n_frames": params.n_frames,
            "keyed": keyed, "warnings": warnings, "notes": notes}


# --------------------------------------------------------------------------------------------
# Keys -> parameter tracks


def _curve_values(id_data, data_path: str, index: int, frames: np.ndarray, static: float,
                  channelbag) -> np.ndarray:
    curve = channelbag.fcurves.find(data_path, index=index) if channelbag is not None else None
    if curve is None:
        return np.full(frames.size, float(static))
    return keyframes.sample_curve(curve, frames)


def _bone_axis_angles(rig: FlameRig, bone_name: str, frames: np.ndarray, channelbag) -> np.ndarray:
    pose_bone = rig.armature_obj.pose.bones[bone_name]
    stem = f'pose.bones["{bone_name}"].'
    mode = pose_bone.rotation_mode
    if mode == "QUATERNION":
        q = np.stack([_curve_values(rig.armature_obj, stem + "rotation_quaternion", i, frames,
                                    pose_bone.rotation_quaternion[i], channelbag)
                      for i in range(4)], axis=-1)
        return quaternion_to_axis_angle(q)
    if mode == "AXIS_ANGLE":
        angle_axis = np.stack([_curve_values(rig.armature_obj, stem + "rotation_axis_angle", i,
                                             frames, pose_bone.rotation_axis_angle[i], channelbag)
                               for i in range(4)], axis=-1)
        axis = angle_axis[:, 1:]
        norm = np.linalg.norm(axis, axis=-1, keepdims=True)
        return np.where(norm > 0, axis / np.where(norm > 0, norm, 1.0), 0.0) * angle_axis[:, :1]
    from scipy.spatial.transform import Rotation

    euler = np.stack([_curve_values(rig.armature_obj, stem + "rotation_euler", i, frames,
                                    pose_bone.rotation_euler[i], channelbag)
                      for i in range(3)], axis=-1)
    # Blender's "XYZ" applies X first: the extrinsic sequence "xyz" in scipy
    matrices = Rotation.from_euler(mode.lower(), euler[:, ["XYZ".index(c) for c in mode]]).as_matrix()
    return matrix_to_axis_angle(matrices)


def sample_flame_params(rig: FlameRig, frames, fps: float | None = None) -> FlameParams:
    """Read the rig's animation at ``frames`` back into FLAME parameters.

    Reads the assigned actions' F-curves (static values where a channel has none): Exp and
    Shape keys, bone rotations in any rotation mode, and the ``flame_eyelid`` / ``flame_cam`` /
    ``flame_translation_m`` properties when present. ``fps`` defaults to the scene's.
    """
    frames = np.asarray(frames, dtype=np.float64).ravel()
    if frames.size == 0:
        raise InputError("no frames to export (the frame range is empty).")
    fps = scene_fps(bpy.context.scene) if fps is None else float(fps)
    key_bag = keyframes.assigned_channelbag(rig.key)
    blocks = rig.key.key_blocks

    def key_values(names):
        return np.stack([_curve_values(rig.key, f'key_blocks["{n}"].value', 0, frames,
                                       blocks[n].value, key_bag) for n in names], axis=-1)

    n_exp = rig.n_expression
    expression = np.zeros((frames.size, max(n_exp, FLAME_EXP)))
    if n_exp:
        expression[:, :n_exp] = key_values(rig.expression_names)
    shape = key_values(rig.shape_names) if rig.n_shape else None
    armature_bag = keyframes.assigned_channelbag(rig.armature_obj)
    rotations = {name: _bone_axis_angles(rig, name, frames, armature_bag) for name in BONE_NAMES}
    extras = {}
    for group, prop_name in EXTRA_PARAM_PROPS.items():
        static = rig.armature_obj.get(prop_name)
        if static is None:
            continue
        extras[group] = np.stack([_curve_values(rig.armature_obj, f'["{prop_name}"]', i, frames,
                                                static[i], armature_bag)
                                  for i in range(len(static))], axis=-1)
    return FlameParams(
        expression=expression, fps=fps, shape=shape,
        global_pose=rotations["root"], neck_pose=rotations["neck"], jaw_pose=rotations["jaw"],
        eye_pose=np.concatenate([rotations["eye_L"], rotations["eye_R"]], axis=-1),
        source=rig.mesh_obj.name, meta={"layout": "rig", "first_frame": float(frames[0])}, **extras)


class FlameHeadRig:
    """A FLAME head built by EIFER, behind the rig interface (bind, key, sample) in the ``flame`` space."""

    space = "flame"

    def __init__(self, rig: FlameRig):
        self.rig = rig
        self.face = rig.mesh_obj

    @property
    def animated_ids(self) -> list:
        return [self.rig.mesh_obj, self.rig.key, self.rig.armature_obj]

    def bind(self, names) -> list[str]:
        """Every ``flame`` track name has a place on the rig: nothing is missing."""
        return []

    def key(self, track: ExpressionTrack, *, start_frame: int, action_name: str, keep=None):
        """Key a ``flame`` track (expression, jaw, eyelids) on the rig; returns the head's shape-key action.

        The identity stays as it is; ``keep`` (key reduction) does not apply to FLAME curves.
        """
        key_flame_params(self.rig, FlameParams.from_expression_track(track), start_frame=start_frame,
                         identity="keep", action_name=action_name)
        return self.rig.key.animation_data.action

    def sample(self, frames, scene=None) -> ExpressionTrack:
        """The rig's animation at ``frames`` as a ``flame`` track at the scene's fps."""
        scene = scene or bpy.context.scene
        fps = scene_fps(scene)
        start_s = (float(frames[0]) - scene.frame_start) / fps
        return sample_flame_params(self.rig, frames, fps).to_expression_track(start_s)
