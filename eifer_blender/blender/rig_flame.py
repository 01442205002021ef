"""The FLAME head as a Blender rig: mesh, shape keys, armature, driven pose correctives.

The rig reproduces :func:`eifer_blender.core.flame.flame_forward` (to float32 precision) with
Blender's own machinery only, so it plays back, renders and exports without Python running:

- Mesh "… Head": basis = ``v_template``; shape keys ``Shape001…`` (identity), ``Exp001…``
  (expression) and 36 pose correctives ``Pose_<bone>_<row><col>`` (9 per non-root joint, eyes
  included). Values are FLAME coefficients (slider range ±10, Blender's limit).
- Armature with bones ``root, neck, jaw, eye_L, eye_R`` at the joints the J regressor gives for
  the current identity. Every bone points straight up (+Z) with roll 0, so its rest orientation is
  ``core.flame.FLAME_TO_BLENDER`` and its local rotation *is* FLAME's joint rotation. The skinning
  weights are vertex groups used by an Armature modifier (linear blend skinning).
- Corrective keys are driven by simple-expression drivers reading each bone's local quaternion
  (``core.flame.POSE_FEATURE_QUATERNION_EXPRESSIONS``); simple expressions need no Python, so
  they work with auto-run off and with no handler registered.
- FLAME's joints move with the expression (``J = J_regressor · v_shaped``), fixed bone heads do
  not. The exact fix: with expression offset ``d_j`` of joint ``j``, a translation
  ``t_j = (I − R_j) · d_j`` (in the bone's local frame, which is FLAME's frame) before the
  rotation makes Blender's deformation equal to FLAME's for every joint of the chain. It sits on
  a hidden, non-deforming parent ``MCH-<bone>`` with the same rest frame (a driver on the bone's
  own location reading its own rotation would be a dependency cycle). ``d_j`` is linear in the
  Exp keys; drivers sum it in chunks (a driver expression holds at most 255 characters) into
  scalar custom properties of the armature object. Identity edits move the rest joints
  instead: :func:`replace_joints` re-places the bones.

Parameter tracks (:class:`core.flame_params.FlameParams`) are keyed with
:mod:`.keyframes` (one ``foreach_set`` pass per curve) and read back from the F-curves.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import bpy
import numpy as np

from ..core.errors import InputError
from ..core.flame import (
    FLAME_TO_BLENDER,
    POSE_FEATURE_QUATERNION_EXPRESSIONS,
    FlameModel,
    FlameModelError,
    blender_to_flame,
    corrective_basis,
    flame_to_blender,
    matrix_to_axis_angle,
    quaternion_to_matrix,
)
from ..core.flame_params import FlameParams
from ..core.spaces import FLAME_EXP
from . import keyframes
from .keyframes import scene_fps

BONE_NAMES: tuple[str, ...] = ("root", "neck", "jaw", "eye_L", "eye_R")  # FLAME joint order
BONE_LENGTHS_M: tuple[float, ...] = (0.06, 0.04, 0.03, 0.012, 0.012)
MAX_SHAPE_KEYS = 300
MAX_EXPRESSION_KEYS = 100
DEFAULT_EXPRESSION_KEYS = 50
SLIDER_LIMIT = 10.0  # Blender clamps shape-key slider ranges to ±10
DRIVER_EXPRESSION_MAX_CHARS = 255  # ChannelDriver.expression is a char[256]

RIG_TAG = "eifer_rig"
MESH_TAG_VALUE = "flame"
ARMATURE_TAG_VALUE = "flame_armature"
# armature-object custom properties
JOINT_TEMPLATE_PROP = "eifer_flame_joint_template_m"  # (5·3,) regressed joints of v_template
JOINT_SHAPE_DIRS_PROP = "eifer_flame_joint_shape_dirs_m"  # (5·3·n_shape,) per Shape key
EXPRESSION_PARTS_PROP = "eifer_flame_expression_joint_parts_m"  # group: driven chunk sums
EXPRESSION_OFFSET_PROP = "eifer_flame_expression_joint_offset_m"  # group: driven d_j per axis
# keyed custom properties for parameters the FLAME geometry does not use (kept for round trips)
EXTRA_PARAM_PROPS = {"eyelid": "flame_eyelid", "cam": "flame_cam",
                     "translation_m": "flame_translation_m"}
POSE_GROUP_BONES = {"global_pose": ("root",), "neck_pose": ("neck",), "jaw_pose": ("jaw",),
                    "eye_pose": ("eye_L", "eye_R")}
IDENTITY_MODES = ("mean", "per_frame", "keep")
HELPER_PREFIX = "MCH-"  # Rigify's prefix for mechanism bones
HELPER_COLLECTION = "FLAME mechanism"


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
        return int(self.mesh_obj.get("eifer_flame_n_shape", 0))

    @property
    def n_expression(self) -> int:
        return int(self.mesh_obj.get("eifer_flame_n_expression", 0))

    @property
    def shape_names(self) -> list[str]:
        return [shape_key_name(i) for i in range(self.n_shape)]

    @property
    def expression_names(self) -> list[str]:
        return [expression_key_name(i) for i in range(self.n_expression)]


# --------------------------------------------------------------------------------------------
# Building


def _to_blender_dirs(dirs: np.ndarray) -> np.ndarray:
    """``(V, 3, K)`` FLAME-frame offsets -> ``(K, V, 3)`` Blender-frame float64."""
    return np.einsum("ab,vbk->kva", FLAME_TO_BLENDER, dirs)


def build_flame_rig(model: FlameModel, collection: bpy.types.Collection, n_shape: int = MAX_SHAPE_KEYS,
                    n_expression: int = DEFAULT_EXPRESSION_KEYS, name: str = "FLAME") -> FlameRig:
    """Build the FLAME rig (armature object + child mesh) in ``collection``.

    Parameters
    ----------
    model : FlameModel
        A validated model (``core.flame.load_flame_model``).
    collection : bpy.types.Collection
        Where both objects go; it must be in the current view layer (bones are placed in edit
        mode).
    n_shape, n_expression : int
        Identity (0–300) and expression (0–100) shape keys; capped at what the model has.
    name : str
        Armature object name; the mesh is ``"<name> Head"``.

    Returns
    -------
    FlameRig
        ``meta`` holds the counts actually built and the model description.

    Raises
    ------
    InputError
        Counts out of range, a model without FLAME's five joints, a collection not in the view
        layer. Whatever was created before the error is removed again.
    """
    if not 0 <= n_shape <= MAX_SHAPE_KEYS:
        raise InputError(f"identity shape keys must be 0–{MAX_SHAPE_KEYS}, got {n_shape}.")
    if not 0 <= n_expression <= MAX_EXPRESSION_KEYS:
        raise InputError(f"expression shape keys must be 0–{MAX_EXPRESSION_KEYS}, got {n_expression}.")
    if model.n_joints != len(BONE_NAMES) or list(model.parents) != [-1, 0, 1, 1, 1]:
        raise FlameModelError(
            f"{model.source}: has {model.n_joints} joints with parents {list(model.parents)}; "
            f"FLAME has 5 (root, neck, jaw, eye L, eye R) with parents [-1, 0, 1, 1, 1].")
    view_layer = bpy.context.view_layer
    if not _collection_in_view_layer(collection, view_layer):
        raise InputError(f"collection {collection.name!r} is not in the view layer "
                         f"{view_layer.name!r} (excluded?); pick a visible collection.")
    n_shape = min(n_shape, model.n_shape)
    n_expression = min(n_expression, model.n_expression)
    created: list[bpy.types.ID] = []
    try:
        rig = _build(model, collection, n_shape, n_expression, name, created)
    except BaseException:
        _remove_ids(created)
        raise
    rig.meta.update({"n_shape": n_shape, "n_expression": n_expression,
                     "n_correctives": 9 * (model.n_joints - 1), "model": model.version})
    return rig


def _collection_in_view_layer(collection, view_layer) -> bool:
    def walk(layer_collection):
        if layer_collection.collection == collection:
            return not layer_collection.exclude
        return any(walk(child) for child in layer_collection.children)
    return walk(view_layer.layer_collection)


def _remove_ids(ids) -> None:
    for id_data in reversed(ids):
        try:
            collection = {bpy.types.Object: bpy.data.objects, bpy.types.Mesh: bpy.data.meshes,
                          bpy.types.Armature: bpy.data.armatures,
                          bpy.types.Action: bpy.data.actions}[type(id_data)]
            collection.remove(id_data)
        except (KeyError, ReferenceError, RuntimeError):
            pass


def _build(model, collection, n_shape, n_expression, name, created) -> FlameRig:
    base_m = flame_to_blender(model.v_template_m)
    mesh = bpy.data.meshes.new(f"{name} Head")
    created.append(mesh)
    faces = model.faces
    mesh.vertices.add(model.n_vertices)
    mesh.vertices.foreach_set("co", base_m.astype(np.float32).ravel())
    mesh.loops.add(faces.size)
    mesh.loops.foreach_set("vertex_index", faces.astype(np.int32).ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    mesh.polygons.foreach_set("use_smooth", np.ones(len(faces), dtype=bool))
    mesh.update(calc_edges=True)

    armature = bpy.data.armatures.new(name)
    created.append(armature)
    armature_obj = bpy.data.objects.new(name, armature)
    created.append(armature_obj)
    mesh_obj = bpy.data.objects.new(f"{name} Head", mesh)
    created.append(mesh_obj)
    collection.objects.link(armature_obj)
    collection.objects.link(mesh_obj)
    mesh_obj.parent = armature_obj
    armature_obj[RIG_TAG] = ARMATURE_TAG_VALUE
    mesh_obj[RIG_TAG] = MESH_TAG_VALUE
    mesh_obj["eifer_flame_n_shape"] = n_shape
    mesh_obj["eifer_flame_n_expression"] = n_expression
    mesh_obj["eifer_flame_version"] = model.version
    mesh_obj["eifer_flame_source"] = str(model.source)

    _add_vertex_groups(mesh_obj, model.weights)
    modifier = mesh_obj.modifiers.new("FLAME skinning", "ARMATURE")
    modifier.object = armature_obj
    modifier.use_vertex_groups = True
    modifier.use_bone_envelopes = False
    modifier.use_deform_preserve_volume = False  # FLAME is plain linear blend skinning

    shape_dirs = model.shape_dirs[..., :n_shape]
    expression_dirs = model.expression_dirs[..., :n_expression]
    keys = ([(shape_key_name(i), d) for i, d in enumerate(_to_blender_dirs(shape_dirs))]
            + [(expression_key_name(i), d) for i, d in enumerate(_to_blender_dirs(expression_dirs))])
    correctives = [(corrective_key_name(p), flame_to_blender(d))
                   for p, d in enumerate(corrective_basis(model))]
    basis = mesh_obj.shape_key_add(name="Basis", from_mix=False)
    basis.value = 0.0
    for key_name, offsets in keys:
        _add_shape_key(mesh_obj, key_name, base_m + offsets, -SLIDER_LIMIT, SLIDER_LIMIT)
    for key_name, offsets in correctives:  # (R − I) entries lie in [−2, 2]
        _add_shape_key(mesh_obj, key_name, base_m + offsets, -2.0, 2.0)
    mesh.shape_keys.use_relative = True
    mesh.shape_keys.name = f"{name} Head Keys"

    # joints: template + identity directions stored so re-placing needs no model file
    joint_template = model.j_regressor @ model.v_template_m  # (5, 3) FLAME frame
    joint_shape_dirs = np.einsum("jv,vak->jak", model.j_regressor, shape_dirs)  # (5, 3, n_shape)
    armature_obj[JOINT_TEMPLATE_PROP] = joint_template.ravel().tolist()
    if n_shape:
        armature_obj[JOINT_SHAPE_DIRS_PROP] = joint_shape_dirs.ravel().tolist()
    rig = FlameRig(mesh_obj, armature_obj)
    with _edit_bones(armature_obj) as edit_bones:
        for index, bone_name in enumerate(BONE_NAMES):
            helper = edit_bones.new(helper_bone_name(bone_name))
            bone = edit_bones.new(bone_name)
            bone.parent = helper
            helper.use_deform = False
            if model.parents[index] >= 0:
                helper.parent = edit_bones[BONE_NAMES[model.parents[index]]]
            for edit_bone in (helper, bone):
                edit_bone.use_connect = False
                edit_bone.head = (0.0, 0.0, 0.0)
                edit_bone.tail = (0.0, 0.0, BONE_LENGTHS_M[index])
        _place_bones(edit_bones, joint_template)
    mechanism = armature.collections.new(HELPER_COLLECTION)
    mechanism.is_visible = False
    for bone_name in BONE_NAMES:
        mechanism.assign(armature.bones[helper_bone_name(bone_name)])
    for pose_bone in armature_obj.pose.bones:
        pose_bone.rotation_mode = "QUATERNION"

    _add_corrective_drivers(rig)
    joint_expression_dirs = np.einsum("jv,vak->jak", model.j_regressor, expression_dirs)
    _add_expression_joint_drivers(rig, joint_expression_dirs)
    return rig


def _add_shape_key(obj, key_name, co_m, slider_min, slider_max):
    block = obj.shape_key_add(name=key_name, from_mix=False)
    points = block.points if hasattr(block, "points") else block.data
    points.foreach_set("co", co_m.astype(np.float32).ravel())
    block.slider_min, block.slider_max = slider_min, slider_max
    block.value = 0.0  # Blender 5.0 starts new keys at 1.0
    return block


def _add_vertex_groups(mesh_obj, weights: np.ndarray) -> None:
    """One vertex group per bone; one ``add`` call per distinct float32 weight value."""
    weights32 = weights.astype(np.float32)
    for joint, bone_name in enumerate(BONE_NAMES):
        group = mesh_obj.vertex_groups.new(name=bone_name)
        column = weights32[:, joint]
        vertices = np.flatnonzero(column > 0)
        values, inverse = np.unique(column[vertices], return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(values) + 1))
        for k, value in enumerate(values):
            group.add(vertices[order[bounds[k]:bounds[k + 1]]].tolist(), float(value), "REPLACE")


@contextmanager
def _edit_bones(armature_obj):
    """Armature edit mode on ``armature_obj``; the previous active object and mode come back."""
    view_layer = bpy.context.view_layer
    view_layer.update()  # objects linked a moment ago join the view layer here
    if view_layer.objects.get(armature_obj.name) != armature_obj:
        raise InputError(f"{armature_obj.name!r} is not in the view layer {view_layer.name!r}; "
                         f"its bones can only be placed where it is visible.")
    previous = view_layer.objects.active
    if previous is not None and previous.mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")
    hidden = armature_obj.hide_get()
    armature_obj.hide_set(False)
    view_layer.objects.active = armature_obj
    try:
        bpy.ops.object.mode_set(mode="EDIT")
    except RuntimeError as exc:  # e.g. disabled in viewports, linked from a library
        armature_obj.hide_set(hidden)
        view_layer.objects.active = previous
        raise InputError(f"cannot edit the bones of {armature_obj.name!r}: "
                         f"{str(exc).removeprefix('Error: ').strip()}") from None
    try:
        yield armature_obj.data.edit_bones
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        armature_obj.hide_set(hidden)
        view_layer.objects.active = previous


def _place_bones(edit_bones, joints_flame_m: np.ndarray) -> None:
    heads = flame_to_blender(joints_flame_m)
    for index, bone_name in enumerate(BONE_NAMES):
        for edit_bone in (edit_bones[helper_bone_name(bone_name)], edit_bones[bone_name]):
            edit_bone.head = heads[index]
            edit_bone.tail = heads[index] + np.array([0.0, 0.0, BONE_LENGTHS_M[index]])
            edit_bone.roll = 0.0


# --------------------------------------------------------------------------------------------
# Drivers (simple expressions only: they run without Python)


def _new_driver(id_data, data_path: str, index: int = -1):
    """A driver whose F-curve passes the driver's value through unchanged.

    ``driver_add`` gives the curve two Bézier keys (0, 0) and (1, 1) with flat end handles,
    which would bend small values and flatten negative ones; they are removed.
    """
    fcurve = id_data.driver_add(data_path, index) if index >= 0 else id_data.driver_add(data_path)
    fcurve.keyframe_points.clear()
    for modifier in list(fcurve.modifiers):
        fcurve.modifiers.remove(modifier)
    return fcurve.driver


def _add_corrective_drivers(rig: FlameRig) -> None:
    key = rig.key
    for feature in range(9 * (len(BONE_NAMES) - 1)):
        bone_name = BONE_NAMES[feature // 9 + 1]
        driver = _new_driver(key, f'key_blocks["{corrective_key_name(feature)}"].value')
        driver.type = "SCRIPTED"
        for variable_name, channel in (("w", "ROT_W"), ("x", "ROT_X"), ("y", "ROT_Y"),
                                       ("z", "ROT_Z")):
            variable = driver.variables.new()
            variable.name = variable_name
            variable.type = "TRANSFORMS"
            target = variable.targets[0]
            target.id = rig.armature_obj
            target.bone_target = bone_name
            target.transform_type = channel
            target.rotation_mode = "QUATERNION"
            target.transform_space = "LOCAL_SPACE"
        driver.expression = POSE_FEATURE_QUATERNION_EXPRESSIONS[feature % 9]


_COMPONENT_NAMES = [f"{bone}_{axis}" for bone in BONE_NAMES for axis in "xyz"]
_VARIABLE_NAMES = [chr(c) for c in range(ord("a"), ord("z") + 1)] + \
    [chr(c) for c in range(ord("A"), ord("Z") + 1)]


def _weighted_sum_chunks(coefficients: np.ndarray) -> list[list[tuple[int, str]]]:
    """Split ``Σ c_k · e_k`` into driver expressions of at most 255 characters.

    Returns chunks of ``(key index, term text)``; zero coefficients are left out.
    """
    chunks, current, length = [], [], 0
    for index in np.flatnonzero(coefficients):
        variable = _VARIABLE_NAMES[len(current)] if len(current) < len(_VARIABLE_NAMES) else None
        term = f"{coefficients[index]:+.8e}*{variable}" if variable else ""
        if variable is None or length + len(term) > DRIVER_EXPRESSION_MAX_CHARS:
            chunks.append(current)
            current, length = [], 0
            variable = _VARIABLE_NAMES[0]
            term = f"{coefficients[index]:+.8e}*{variable}"
        current.append((int(index), term))
        length += len(term)
    if current:
        chunks.append(current)
    return chunks


def _add_expression_joint_drivers(rig: FlameRig, joint_expression_dirs: np.ndarray) -> None:
    """Drivers for ``t_j = (I − R_j) · d_j`` with ``d_j = Σ_k dirs[j, :, k] · Exp_k``.

    Intermediate sums are scalar members of two property groups on the armature object (one
    per stage): drivers writing elements of one array would race, since Blender writes the
    whole array back for every element.
    """
    armature_obj, key = rig.armature_obj, rig.key
    n_joints = joint_expression_dirs.shape[0]
    per_component = [_weighted_sum_chunks(joint_expression_dirs[j, a])
                     for j in range(n_joints) for a in range(3)]
    if not any(per_component):
        return
    # leaf names stay unique across both groups: the depsgraph keys property nodes by leaf name
    part_names = [[f"{_COMPONENT_NAMES[c]}_{i}" for i in range(len(chunks))]
                  for c, chunks in enumerate(per_component)]
    armature_obj[EXPRESSION_PARTS_PROP] = {name: 0.0 for names in part_names for name in names}
    armature_obj[EXPRESSION_OFFSET_PROP] = {name: 0.0 for name in _COMPONENT_NAMES}
    for component, chunks in enumerate(per_component):
        for chunk, part_name in zip(chunks, part_names[component]):
            driver = _new_driver(armature_obj, f'["{EXPRESSION_PARTS_PROP}"]["{part_name}"]')
            driver.type = "SCRIPTED"
            for slot, (index, _) in enumerate(chunk):
                variable = driver.variables.new()
                variable.name = _VARIABLE_NAMES[slot]
                variable.type = "SINGLE_PROP"
                target = variable.targets[0]
                target.id_type = "KEY"
                target.id = key
                target.data_path = f'key_blocks["{expression_key_name(index)}"].value'
            driver.expression = "".join(term for _, term in chunk)
        driver = _new_driver(armature_obj,
                             f'["{EXPRESSION_OFFSET_PROP}"]["{_COMPONENT_NAMES[component]}"]')
        driver.type = "SUM"
        for slot, part_name in enumerate(part_names[component]):
            variable = driver.variables.new()
            variable.name = f"part{slot}"
            variable.type = "SINGLE_PROP"
            variable.targets[0].id = armature_obj
            variable.targets[0].data_path = f'["{EXPRESSION_PARTS_PROP}"]["{part_name}"]'
    # t_j = (I − R_j)·d_j goes on the helper parent of bone j (same rest frame): a driver on the
    # bone's own location that reads its rotation would make the bone depend on itself. R_j comes
    # from the bone's (normalised) quaternion property, which depends on nothing downstream.
    for joint, bone_name in enumerate(BONE_NAMES[:n_joints]):
        rows = [POSE_FEATURE_QUATERNION_EXPRESSIONS[3 * a:3 * a + 3] for a in range(3)]
        helper = helper_bone_name(bone_name)
        for axis in range(3):
            driver = _new_driver(armature_obj, f'pose.bones["{helper}"].location', axis)
            driver.type = "SCRIPTED"
            for variable_name, index in (("w", 0), ("x", 1), ("y", 2), ("z", 3)):
                variable = driver.variables.new()
                variable.name = variable_name
                variable.type = "SINGLE_PROP"
                variable.targets[0].id = armature_obj
                variable.targets[0].data_path = f'pose.bones["{bone_name}"].rotation_quaternion[{index}]'
            for variable_name, b in zip("pqr", range(3)):
                variable = driver.variables.new()
                variable.name = variable_name
                variable.type = "SINGLE_PROP"
                variable.targets[0].id = armature_obj
                variable.targets[0].data_path = (f'["{EXPRESSION_OFFSET_PROP}"]'
                                                 f'["{_COMPONENT_NAMES[3 * joint + b]}"]')
            terms = "+".join(f"({entry})*{d}" for entry, d in zip(rows[axis], "pqr"))
            driver.expression = f"-({terms})/(w*w+x*x+y*y+z*z)"


def rig_drivers(rig: FlameRig) -> list:
    """All drivers of the rig (shape-key correctives and joint tracking)."""
    drivers = []
    for id_data in (rig.key, rig.armature_obj):
        if id_data.animation_data is not None:
            drivers.extend(id_data.animation_data.drivers)
    return drivers


# --------------------------------------------------------------------------------------------
# Finding a rig, identity and joints


def is_flame_rig(obj: bpy.types.Object | None) -> bool:
    """Whether ``obj`` is the head mesh or the armature of a FLAME rig built by EIFER."""
    return obj is not None and obj.get(RIG_TAG) in (MESH_TAG_VALUE, ARMATURE_TAG_VALUE)


def find_flame_rig(obj: bpy.types.Object | None) -> FlameRig:
    """The FLAME rig ``obj`` belongs to (its head mesh or its armature).

    Raises
    ------
    InputError
        ``obj`` is not part of a FLAME rig built by EIFER.
    """
    if obj is not None and obj.get(RIG_TAG) == MESH_TAG_VALUE:
        armature = obj.parent if obj.parent is not None and \
            obj.parent.get(RIG_TAG) == ARMATURE_TAG_VALUE else None
        if armature is None:
            armature = next((m.object for m in obj.modifiers if m.type == "ARMATURE"
                             and m.object is not None), None)
        if armature is not None and obj.data.shape_keys is not None:
            return FlameRig(obj, armature)
    if obj is not None and obj.get(RIG_TAG) == ARMATURE_TAG_VALUE:
        mesh_obj = next((child for child in obj.children
                         if child.get(RIG_TAG) == MESH_TAG_VALUE), None)
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
    template = np.asarray(rig.armature_obj[JOINT_TEMPLATE_PROP], dtype=np.float64).reshape(-1, 3)
    if rig.n_shape == 0:
        return template
    dirs = np.asarray(rig.armature_obj[JOINT_SHAPE_DIRS_PROP], dtype=np.float64)
    dirs = dirs.reshape(len(template), 3, rig.n_shape)
    shape = current_shape(rig) if shape is None else np.asarray(shape, dtype=np.float64)
    return template + dirs @ shape


def replace_joints(rig: FlameRig, shape=None) -> np.ndarray:
    """Move the bones to the joints of the current identity (after Shape key edits).

    Returns the joints ``(5, 3)`` in FLAME's frame. Pose and animation are kept: only the rest
    positions change, as FLAME regresses them.
    """
    joints = rest_joints(rig, shape)
    with _edit_bones(rig.armature_obj) as edit_bones:
        missing = [n for n in BONE_NAMES + tuple(map(helper_bone_name, BONE_NAMES))
                   if n not in edit_bones]
        if missing:
            raise InputError(f"{rig.armature_obj.name!r} lacks the FLAME bone(s) "
                             f"{', '.join(missing)}; rebuild the head.")
        _place_bones(edit_bones, joints)
    return joints


def bone_joints(rig: FlameRig) -> np.ndarray:
    """Rest bone heads ``(5, 3)`` converted to FLAME's frame (armature space)."""
    bones = rig.armature_obj.data.bones
    return blender_to_flame(np.array([bones[n].head_local for n in BONE_NAMES], dtype=np.float64))


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
    ``flame_translation_m`` on the armature object (FLAME's geometry does not use them; they are
    kept so an export gives them back). The actions the rig had are stashed, not deleted.

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
        str, e.g. coefficients the rig has no key for, values beyond ±10 that Blender clamps).
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
            "keyed": keyed, "warnings": warnings}


# --------------------------------------------------------------------------------------------
# Keys -> parameter tracks


def _curve_values(id_data, data_path: str, index: int, frames: np.ndarray, static: float,
                  channelbag) -> np.ndarray:
    curve = channelbag.fcurves.find(data_path, index=index) if channelbag is not None else None
    if curve is None:
        return np.full(frames.size, float(static))
    return np.array([curve.evaluate(float(f)) for f in frames], dtype=np.float64)


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


__all__ = [
    "BONE_NAMES", "FlameRig", "build_flame_rig", "find_flame_rig", "replace_joints",
    "rest_joints", "bone_joints", "set_flame_parameters", "evaluated_vertices_m",
    "key_flame_params", "sample_flame_params", "shape_key_name", "expression_key_name",
    "corrective_key_name", "rig_drivers", "axis_angle_to_quaternion", "quaternion_to_axis_angle",
    "scene_fps", "current_shape", "IDENTITY_MODES",
]
