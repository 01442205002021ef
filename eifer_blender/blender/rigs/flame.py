"""The FLAME head as a Blender rig: mesh, shape keys, armature, driven pose correctives.

The rig reproduces :func:`eifer_blender.core.heads.flame_model.flame_forward` (to float32 precision) with
Blender's own machinery only, so it plays back, renders and exports without Python running:

- Mesh "… Head": basis = ``v_template``; shape keys ``Shape001…`` (identity), ``Exp001…``
  (expression) and 36 pose correctives ``Pose_<bone>_<row><col>`` (9 per non-root joint, eyes
  included). Values are FLAME coefficients (slider range ±10, Blender's limit). Where the model
  file has eyelid blendshapes (SMIRK's ``l_eyelid``/``r_eyelid``), two more keys ``Eyelid_L``
  and ``Eyelid_R`` are driven by the armature's keyed ``flame_eyelid`` pair (the eyelid
  parameters of tracker files); like the expression keys they act before skinning.
- Armature with bones ``root, neck, jaw, eye_L, eye_R`` at the joints the J regressor gives for
  the current identity. Every bone points straight up (+Z) with roll 0, so its rest orientation is
  ``core.heads.flame_model.FLAME_TO_BLENDER`` and its local rotation *is* FLAME's joint rotation. The skinning
  weights are vertex groups used by an Armature modifier (linear blend skinning).
- Corrective keys are driven by simple-expression drivers reading each bone's local quaternion
  (``core.heads.flame_model.POSE_FEATURE_QUATERNION_EXPRESSIONS``); simple expressions need no Python, so
  they work with auto-run off and with no handler registered.
- FLAME's joints move with the expression (``J = J_regressor · v_shaped``), fixed bone heads do
  not. The exact fix: with expression offset ``d_j`` of joint ``j``, a translation
  ``t_j = (I − R_j) · d_j`` (in the bone's local frame, which is FLAME's frame) before the
  rotation makes Blender's deformation equal to FLAME's for every joint of the chain. It sits on
  a hidden, non-deforming parent ``MCH-<bone>`` with the same rest frame (a driver on the bone's
  own location reading its own rotation would be a dependency cycle). ``d_j`` is linear in the
  Exp keys; drivers sum it in chunks (a driver expression holds at most 255 characters) into
  scalar custom properties of the armature object. Identity edits move the rest joints
  instead: :func:`.flame_build.replace_joints` re-places the bones.

Parameter tracks (:class:`core.expression.flame_params.FlameParams`) are keyed with
:mod:`.flame_keys` and read back from the F-curves; :mod:`.flame_build` makes the rig.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import bpy
import numpy as np

from ...core.errors import InputError
from ...core.heads.flame_model import (
    matrix_to_axis_angle,
    quaternion_to_matrix,
)
from ..anim import internal

BONE_NAMES: tuple[str, ...] = ("root", "neck", "jaw", "eye_L", "eye_R")  # FLAME joint order
BONE_LENGTHS_M: tuple[float, ...] = (0.06, 0.04, 0.03, 0.012, 0.012)
MAX_SHAPE_KEYS = 300
MAX_EXPRESSION_KEYS = 100
DEFAULT_EXPRESSION_KEYS = 50
SLIDER_LIMIT = 10.0  # Blender clamps shape-key slider ranges to ±10
DRIVER_EXPRESSION_MAX_CHARS = 255  # ChannelDriver.expression is a char[256]

RIG_TAG = "rig"  # internal (blender.anim.internal): "flame" / "flame_armature" / "open_head"
MESH_TAG_VALUE = "flame"
ARMATURE_TAG_VALUE = "flame_armature"
# internal values (blender.anim.internal) of the head mesh and the armature object
N_SHAPE_KEY = "flame_n_shape"  # mesh: Shape keys
N_EXPRESSION_KEY = "flame_n_expression"  # mesh: Exp keys
VERSION_KEY = "flame_version"  # mesh: FLAME release of the model file ("2020", "2023", ...)
SOURCE_KEY = "flame_source"  # mesh: the model file the head was built from
EYELIDS_KEY = "flame_eyelids"  # mesh: the rig has driven eyelid keys
JOINT_TEMPLATE_KEY = "flame_joint_template_m"  # armature: (5·3,) regressed joints of v_template
JOINT_SHAPE_DIRS_KEY = "flame_joint_shape_dirs_m"  # armature: (5·3·n_shape,) per Shape key
# armature-object custom properties that drivers write (a driver reaches no internal value)
EXPRESSION_PARTS_PROP = "eifer_flame_expression_joint_parts_m"  # group: driven chunk sums
EXPRESSION_OFFSET_PROP = "eifer_flame_expression_joint_offset_m"  # group: driven d_j per axis
# keyed custom properties of the armature object for parameters beyond expression and pose (kept
# for round trips); ``flame_eyelid`` also drives the eyelid keys where the model file has them
EXTRA_PARAM_PROPS = {"eyelid": "flame_eyelid", "cam": "flame_cam",
                     "translation_m": "flame_translation_m"}
EYELID_KEY_NAMES: tuple[str, ...] = ("Eyelid_L", "Eyelid_R")  # SMIRK's [left, right] eyelid pair
POSE_GROUP_BONES = {"global_pose": ("root",), "neck_pose": ("neck",), "jaw_pose": ("jaw",),
                    "eye_pose": ("eye_L", "eye_R")}
IDENTITY_MODES = ("mean", "per_frame", "keep")
HELPER_PREFIX = "MCH-"  # Rigify's prefix for mechanism bones
HELPER_COLLECTION = "FLAME mechanism"
EYEBALL_ATTRIBUTE = "eifer_eyeball"  # point attribute: vertices that move rigidly with the eye bones


def helper_bone_name(bone_name: str) -> str:
    """The hidden mechanism bone between ``bone_name`` and its parent (carries ``t_j``)."""
    return f"{HELPER_PREFIX}{bone_name}"


def shape_key_name(index: int) -> str:
    """Identity key name for 0-based coefficient ``index``: ``Shape001`` …"""
    return f"Shape{index + 1:03d}"


def expression_key_name(index: int) -> str:
    """Expression key name for 0-based coefficient ``index``: ``Exp001`` …"""
    return f"Exp{index + 1:03d}"


def corrective_key_name(feature: int) -> str:
    """Pose-corrective key for pose-feature entry ``feature`` (0…35): ``Pose_jaw_12`` is
    ``(R_jaw − I)[1, 2]``."""
    joint, entry = divmod(feature, 9)
    row, col = divmod(entry, 3)
    return f"Pose_{BONE_NAMES[joint + 1]}_{row}{col}"


@dataclass
class FlameRig:
    """The two objects of a FLAME rig in the scene."""

    mesh_obj: bpy.types.Object
    armature_obj: bpy.types.Object
    meta: dict = field(default_factory=dict)

    @property
    def key(self) -> bpy.types.Key:
        return self.mesh_obj.data.shape_keys

    @property
    def n_shape(self) -> int:
        return int(internal.get(self.mesh_obj, N_SHAPE_KEY, 0))

    @property
    def n_expression(self) -> int:
        return int(internal.get(self.mesh_obj, N_EXPRESSION_KEY, 0))

    @property
    def shape_names(self) -> list[str]:
        return [shape_key_name(i) for i in range(self.n_shape)]

    @property
    def expression_names(self) -> list[str]:
        return [expression_key_name(i) for i in range(self.n_expression)]

    @property
    def has_eyelids(self) -> bool:
        """Whether the head has driven eyelid keys (its model file had eyelid blendshapes)."""
        return bool(internal.get(self.mesh_obj, EYELIDS_KEY, False))



# --------------------------------------------------------------------------------------------
# Finding a rig, identity and joints


def is_flame_rig(obj: bpy.types.Object | None) -> bool:
    """Whether ``obj`` is the head mesh or the armature of a FLAME rig built by EIFER."""
    return obj is not None and internal.get(obj, RIG_TAG) in (MESH_TAG_VALUE, ARMATURE_TAG_VALUE)


def find_flame_rig(obj: bpy.types.Object | None) -> FlameRig:
    """The FLAME rig ``obj`` belongs to (its head mesh or its armature).

    Raises
    ------
    InputError
        ``obj`` is not part of a FLAME rig built by EIFER.
    """
    if obj is not None and internal.get(obj, RIG_TAG) == MESH_TAG_VALUE:
        armature = obj.parent if obj.parent is not None and \
            internal.get(obj.parent, RIG_TAG) == ARMATURE_TAG_VALUE else None
        if armature is None:
            armature = next((m.object for m in obj.modifiers if m.type == "ARMATURE"
                             and m.object is not None), None)
        if armature is not None and obj.data.shape_keys is not None:
            return FlameRig(obj, armature)
    if obj is not None and internal.get(obj, RIG_TAG) == ARMATURE_TAG_VALUE:
        mesh_obj = next((child for child in obj.children
                         if internal.get(child, RIG_TAG) == MESH_TAG_VALUE), None)
        if mesh_obj is not None and mesh_obj.data.shape_keys is not None:
            return FlameRig(mesh_obj, obj)
    name = obj.name if obj is not None else "nothing"
    raise InputError(f"{name!r} is not a FLAME head made by EIFER; select the head or its "
                     f"armature (Add ▸ Mesh ▸ FLAME Head creates one).")


def current_shape(rig: FlameRig) -> np.ndarray:
    """The identity coefficients ``(n_shape,)`` now on the Shape keys."""
    blocks = rig.key.key_blocks
    return np.array([blocks[name].value for name in rig.shape_names], dtype=np.float64)


def rest_joints(rig: FlameRig, shape=None) -> np.ndarray:
    """Joints ``(5, 3)`` in FLAME's frame (metres, armature space) for ``shape`` (default: the
    current Shape key values), regressed as FLAME does: ``J_regressor · v_shaped``."""
    template = np.asarray(internal.get(rig.armature_obj, JOINT_TEMPLATE_KEY), dtype=np.float64).reshape(-1, 3)
    if rig.n_shape == 0:
        return template
    dirs = np.asarray(internal.get(rig.armature_obj, JOINT_SHAPE_DIRS_KEY), dtype=np.float64)
    dirs = dirs.reshape(len(template), 3, rig.n_shape)
    shape = current_shape(rig) if shape is None else np.asarray(shape, dtype=np.float64)
    return template + dirs @ shape





# --------------------------------------------------------------------------------------------
# Static parameters (scripts, tests) and evaluation


def axis_angle_to_quaternion(axis_angle: np.ndarray) -> np.ndarray:
    """``(..., 3)`` axis-angle (radians) -> ``(..., 4)`` unit quaternions ``(w, x, y, z)``."""
    v = np.asarray(axis_angle, dtype=np.float64)
    angle = np.linalg.norm(v, axis=-1, keepdims=True)
    half = 0.5 * angle
    # sin(θ/2)/θ → 1/2 as θ → 0
    scale = np.where(angle > 1e-8, np.sin(half) / np.where(angle > 1e-8, angle, 1.0), 0.5)
    return np.concatenate([np.cos(half), v * scale], axis=-1)


def quaternion_to_axis_angle(quaternion_wxyz: np.ndarray) -> np.ndarray:
    """``(..., 4)`` quaternions ``(w, x, y, z)`` -> ``(..., 3)`` axis-angle radians (angle ≤ π)."""
    return matrix_to_axis_angle(quaternion_to_matrix(quaternion_wxyz))


def set_flame_parameters(rig: FlameRig, shape=None, expression=None, pose=None) -> None:
    """Set the rig's current (unkeyed) values: Shape/Exp key values and bone rotations.

    ``shape`` / ``expression`` ``(n,)`` with n ≤ the rig's key counts (the rest become 0);
    ``pose`` ``(15,)`` FLAME axis-angle ``[root | neck | jaw | eye L | eye R]``. Identity edits
    do not move the bones: call :func:`replace_joints` afterwards.
    """
    blocks = rig.key.key_blocks
    for names, values, what in ((rig.shape_names, shape, "shape"),
                                (rig.expression_names, expression, "expression")):
        if values is None:
            continue
        values = np.asarray(values, dtype=np.float64).ravel()
        if values.size > len(names):
            raise InputError(f"{values.size} {what} coefficients, the rig has {len(names)} keys.")
        padded = np.zeros(len(names))
        padded[:values.size] = values
        for block_name, value in zip(names, padded):
            blocks[block_name].value = float(value)
    if pose is not None:
        pose = np.asarray(pose, dtype=np.float64).reshape(len(BONE_NAMES), 3)
        quaternions = axis_angle_to_quaternion(pose)
        for bone_name, quaternion in zip(BONE_NAMES, quaternions):
            pose_bone = rig.armature_obj.pose.bones[bone_name]
            pose_bone.rotation_mode = "QUATERNION"
            pose_bone.rotation_quaternion = quaternion


def evaluated_vertices_m(mesh_obj: bpy.types.Object, depsgraph=None) -> np.ndarray:
    """Vertex positions ``(V, 3)`` of the evaluated mesh (shape keys, drivers, armature) in the
    mesh object's local space, metres, Blender's frame."""
    depsgraph = depsgraph or bpy.context.evaluated_depsgraph_get()
    evaluated = mesh_obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    try:
        co = np.empty(3 * len(mesh.vertices), dtype=np.float32)
        mesh.vertices.foreach_get("co", co)
    finally:
        evaluated.to_mesh_clear()
    return co.reshape(-1, 3).astype(np.float64)
