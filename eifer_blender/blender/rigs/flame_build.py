"""Building the FLAME rig in Blender: mesh, shape keys, armature and the drivers that make it exact.

See :mod:`.flame` for what the rig is; this module makes it from a :class:`FlameModel` and
re-places its bones after identity edits.
"""
from __future__ import annotations

from contextlib import contextmanager

import bpy
import numpy as np

from ...core.errors import FlameModelError, InputError
from ...core.heads.flame_file import FlameModel
from ...core.heads.flame_model import (
    FLAME_TO_BLENDER,
    POSE_FEATURE_QUATERNION_EXPRESSIONS,
    corrective_basis,
    flame_to_blender,
)
from ..anim import internal
from .flame import (
    ARMATURE_TAG_VALUE,
    BONE_LENGTHS_M,
    BONE_NAMES,
    DEFAULT_EXPRESSION_KEYS,
    DRIVER_EXPRESSION_MAX_CHARS,
    EXPRESSION_OFFSET_PROP,
    EXPRESSION_PARTS_PROP,
    EXTRA_PARAM_PROPS,
    EYEBALL_ATTRIBUTE,
    EYELID_KEY_NAMES,
    EYELIDS_KEY,
    HELPER_COLLECTION,
    JOINT_SHAPE_DIRS_KEY,
    JOINT_TEMPLATE_KEY,
    MAX_EXPRESSION_KEYS,
    MAX_SHAPE_KEYS,
    MESH_TAG_VALUE,
    N_EXPRESSION_KEY,
    N_SHAPE_KEY,
    RIG_TAG,
    SLIDER_LIMIT,
    SOURCE_KEY,
    VERSION_KEY,
    FlameRig,
    corrective_key_name,
    expression_key_name,
    helper_bone_name,
    rest_joints,
    shape_key_name,
)

# --------------------------------------------------------------------------------------------
# Building


def _to_blender_dirs(dirs: np.ndarray) -> np.ndarray:
    """``(V, 3, K)`` FLAME-frame offsets -> ``(K, V, 3)`` Blender-frame float64."""
    return np.einsum("ab,vbk->kva", FLAME_TO_BLENDER, dirs)


def build_flame_rig(flame: FlameModel, collection: bpy.types.Collection, n_shape: int = MAX_SHAPE_KEYS,
                    n_expression: int = DEFAULT_EXPRESSION_KEYS, name: str = "FLAME") -> FlameRig:
    """Build the FLAME rig (armature object + child mesh) in ``collection``.

    Parameters
    ----------
    flame : FlameModel
        A validated FLAME model (``core.heads.flame_file.load_flame_model``).
    collection : bpy.types.Collection
        Where both objects go; it must be in the current view layer (bones are placed in edit
        mode).
    n_shape, n_expression : int
        Identity (0–300) and expression (0–100) shape keys; capped at what the FLAME file has.
    name : str
        Armature object name; the mesh is ``"<name> Head"``.

    Returns
    -------
    FlameRig
        ``meta`` holds the counts actually built and the FLAME version.

    Raises
    ------
    InputError
        Counts out of range, a FLAME file without FLAME's five joints, a collection not in the view
        layer. Whatever was created before the error is removed again.
    """
    if not 0 <= n_shape <= MAX_SHAPE_KEYS:
        raise InputError(f"identity shape keys must be 0–{MAX_SHAPE_KEYS}, got {n_shape}.")
    if not 0 <= n_expression <= MAX_EXPRESSION_KEYS:
        raise InputError(f"expression shape keys must be 0–{MAX_EXPRESSION_KEYS}, got {n_expression}.")
    if flame.n_joints != len(BONE_NAMES) or list(flame.parents) != [-1, 0, 1, 1, 1]:
        raise FlameModelError(
            f"{flame.source}: has {flame.n_joints} joints with parents {list(flame.parents)}; "
            f"FLAME has 5 (root, neck, jaw, eye L, eye R) with parents [-1, 0, 1, 1, 1].")
    view_layer = bpy.context.view_layer
    if not _collection_in_view_layer(collection, view_layer):
        raise InputError(f"collection {collection.name!r} is not in the view layer "
                         f"{view_layer.name!r} (excluded?); pick a visible collection.")
    n_shape = min(n_shape, flame.n_shape)
    n_expression = min(n_expression, flame.n_expression)
    created: list[bpy.types.ID] = []
    try:
        rig = _build(flame, collection, n_shape, n_expression, name, created)
    except BaseException:
        _remove_ids(created)
        raise
    rig.meta.update({"n_shape": n_shape, "n_expression": n_expression,
                     "n_correctives": 9 * (flame.n_joints - 1), "flame_version": flame.version})
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


def _build(flame, collection, n_shape, n_expression, name, created) -> FlameRig:
    base_m = flame_to_blender(flame.v_template_m)
    mesh = bpy.data.meshes.new(f"{name} Head")
    created.append(mesh)
    faces = flame.faces
    mesh.vertices.add(flame.n_vertices)
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
    internal.put(armature_obj, RIG_TAG, ARMATURE_TAG_VALUE)
    internal.put(mesh_obj, RIG_TAG, MESH_TAG_VALUE)
    internal.put(mesh_obj, N_SHAPE_KEY, n_shape)
    internal.put(mesh_obj, N_EXPRESSION_KEY, n_expression)
    internal.put(mesh_obj, VERSION_KEY, flame.version)
    internal.put(mesh_obj, SOURCE_KEY, str(flame.source))

    _add_vertex_groups(mesh_obj, flame.weights)
    eyes = [BONE_NAMES.index("eye_L"), BONE_NAMES.index("eye_R")]
    eyeball = mesh.attributes.new(EYEBALL_ATTRIBUTE, "BOOLEAN", "POINT")
    eyeball.data.foreach_set("value", flame.weights[:, eyes].sum(axis=1) > 0.999)
    modifier = mesh_obj.modifiers.new("FLAME skinning", "ARMATURE")
    modifier.object = armature_obj
    modifier.use_vertex_groups = True
    modifier.use_bone_envelopes = False
    modifier.use_deform_preserve_volume = False  # FLAME is plain linear blend skinning

    shape_dirs = flame.shape_dirs[..., :n_shape]
    expression_dirs = flame.expression_dirs[..., :n_expression]
    keys = ([(shape_key_name(i), d) for i, d in enumerate(_to_blender_dirs(shape_dirs))]
            + [(expression_key_name(i), d) for i, d in enumerate(_to_blender_dirs(expression_dirs))])
    correctives = [(corrective_key_name(p), flame_to_blender(d))
                   for p, d in enumerate(corrective_basis(flame))]
    basis = mesh_obj.shape_key_add(name="Basis", from_mix=False)
    basis.value = 0.0
    for key_name, offsets in keys:
        _add_shape_key(mesh_obj, key_name, base_m + offsets, -SLIDER_LIMIT, SLIDER_LIMIT)
    for key_name, offsets in correctives:  # (R − I) entries lie in [−2, 2]
        _add_shape_key(mesh_obj, key_name, base_m + offsets, -2.0, 2.0)
    if flame.eyelid_dirs is not None:
        for key_name, offsets in zip(EYELID_KEY_NAMES, _to_blender_dirs(flame.eyelid_dirs)):
            _add_shape_key(mesh_obj, key_name, base_m + offsets, -SLIDER_LIMIT, SLIDER_LIMIT)
        internal.put(mesh_obj, EYELIDS_KEY, True)
    mesh.shape_keys.use_relative = True
    mesh.shape_keys.name = f"{name} Head Keys"

    # joints: template + identity directions stored so re-placing needs no FLAME file
    joint_template = flame.j_regressor @ flame.v_template_m  # (5, 3) FLAME frame
    joint_shape_dirs = np.einsum("jv,vak->jak", flame.j_regressor, shape_dirs)  # (5, 3, n_shape)
    internal.put(armature_obj, JOINT_TEMPLATE_KEY, joint_template.ravel().tolist())
    if n_shape:
        internal.put(armature_obj, JOINT_SHAPE_DIRS_KEY, joint_shape_dirs.ravel().tolist())
    rig = FlameRig(mesh_obj, armature_obj)
    with _edit_bones(armature_obj) as edit_bones:
        for index, bone_name in enumerate(BONE_NAMES):
            helper = edit_bones.new(helper_bone_name(bone_name))
            bone = edit_bones.new(bone_name)
            bone.parent = helper
            helper.use_deform = False
            if flame.parents[index] >= 0:
                helper.parent = edit_bones[BONE_NAMES[flame.parents[index]]]
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
    if flame.eyelid_dirs is not None:
        _add_eyelid_drivers(rig)
    joint_expression_dirs = np.einsum("jv,vak->jak", flame.j_regressor, expression_dirs)
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


def _add_eyelid_drivers(rig: FlameRig) -> None:
    """``Eyelid_L/R`` follow the armature's ``flame_eyelid`` pair (keyed from tracker files);
    an averaging driver of one property needs no Python."""
    prop_name = EXTRA_PARAM_PROPS["eyelid"]
    rig.armature_obj[prop_name] = [0.0, 0.0]
    for index, key_name in enumerate(EYELID_KEY_NAMES):
        driver = _new_driver(rig.key, f'key_blocks["{key_name}"].value')
        driver.type = "AVERAGE"
        variable = driver.variables.new()
        variable.name = "eyelid"
        variable.type = "SINGLE_PROP"
        variable.targets[0].id = rig.armature_obj
        variable.targets[0].data_path = f'["{prop_name}"][{index}]'


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
