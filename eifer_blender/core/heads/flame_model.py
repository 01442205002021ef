"""The FLAME forward model in numpy, and FLAME's frame converted to Blender's.

The SMPL-style reference used by FLAME_PyTorch/DECA/SMIRK, vectorised over frames, in float64
metres in FLAME's frame (Y up, face looking +Z)::

    v_shaped = v_template + shapedirs · [shape ‖ expression]
    joints   = J_regressor · v_shaped
    R_j      = rodrigues(pose_j)                         (5 joints: root, neck, jaw, eye L, eye R)
    v_posed  = v_shaped + posedirs · (R[1:] − I).ravel()   (pose correctives; root drives none)
    vertices = Σ_j weights_j · A_j · v_posed                (linear blend skinning)

(Loper et al., "SMPL", SIGGRAPH Asia 2015; Li et al., "FLAME", SIGGRAPH Asia 2017.)
:func:`flame_to_blender` converts points (and axis-angle vectors) to Blender's frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..expression.flame_params import FLAME_POSE_SIZE
from .flame_file import FlameModel


def rodrigues(axis_angle: np.ndarray) -> np.ndarray:
    """Rotation matrices from axis-angle vectors (radians), ``(..., 3) -> (..., 3, 3)``.

    ``R = I + a·K + b·K²`` with ``K`` the cross-product matrix of the (unnormalised) vector,
    ``a = sin θ / θ``, ``b = (1 − cos θ) / θ²``; Taylor series near θ = 0 keep it exact.
    """
    v = np.asarray(axis_angle, dtype=np.float64)
    theta_sq = np.sum(v * v, axis=-1)
    theta = np.sqrt(theta_sq)
    small = theta < 1e-4
    safe_theta = np.where(small, 1.0, theta)
    a = np.where(small, 1.0 - theta_sq / 6.0, np.sin(safe_theta) / safe_theta)
    b = np.where(small, 0.5 - theta_sq / 24.0, (1.0 - np.cos(safe_theta)) / safe_theta**2)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(v.shape[:-1] + (3, 3))
    return np.eye(3) + a[..., None, None] * k + b[..., None, None] * (k @ k)


def matrix_to_axis_angle(rotation: np.ndarray) -> np.ndarray:
    """Axis-angle vectors (radians) from rotation matrices, ``(..., 3, 3) -> (..., 3)``."""
    r = np.asarray(rotation, dtype=np.float64)
    # Via the quaternion: stable for all angles including π.
    quaternion = _matrix_to_quaternion(r)
    w = np.clip(quaternion[..., 0], -1.0, 1.0)
    xyz = quaternion[..., 1:]
    sin_half = np.linalg.norm(xyz, axis=-1)
    angle = 2.0 * np.arctan2(sin_half, w)
    scale = np.where(sin_half < 1e-12, 2.0, angle / np.where(sin_half < 1e-12, 1.0, sin_half))
    return xyz * scale[..., None]


def _matrix_to_quaternion(r: np.ndarray) -> np.ndarray:
    m00, m11, m22 = r[..., 0, 0], r[..., 1, 1], r[..., 2, 2]
    candidates = np.stack([
        np.stack([1 + m00 + m11 + m22, r[..., 2, 1] - r[..., 1, 2],
                  r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] - r[..., 0, 1]], -1),
        np.stack([r[..., 2, 1] - r[..., 1, 2], 1 + m00 - m11 - m22,
                  r[..., 1, 0] + r[..., 0, 1], r[..., 0, 2] + r[..., 2, 0]], -1),
        np.stack([r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] + r[..., 0, 1],
                  1 - m00 + m11 - m22, r[..., 2, 1] + r[..., 1, 2]], -1),
        np.stack([r[..., 1, 0] - r[..., 0, 1], r[..., 0, 2] + r[..., 2, 0],
                  r[..., 2, 1] + r[..., 1, 2], 1 - m00 - m11 + m22], -1),
    ], axis=-2)  # (..., 4, 4): row i is 4·q_i·q for the i-th largest-component choice
    diagonal = np.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22,
                         1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    best = np.argmax(diagonal, axis=-1)
    chosen = np.take_along_axis(candidates, best[..., None, None], axis=-2)[..., 0, :]
    quaternion = chosen / np.linalg.norm(chosen, axis=-1, keepdims=True)
    return quaternion * np.where(quaternion[..., :1] < 0, -1.0, 1.0)


def quaternion_to_matrix(quaternion_wxyz: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` from ``(w, x, y, z)`` quaternions ``(..., 4)`` (Blender order).

    Each entry is a polynomial in w, x, y, z, so the same formulas work as Blender
    simple-expression drivers on a pose bone's ``rotation_quaternion``.
    """
    q = np.asarray(quaternion_wxyz, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], axis=-1).reshape(q.shape[:-1] + (3, 3))


# Driver expressions for (R − I)[row, col] from quaternion variables w, x, y, z, row-major; the
# pose feature of joint j is these nine for R_j. Blender evaluates them without Python.
POSE_FEATURE_QUATERNION_EXPRESSIONS: tuple[str, ...] = (
    "-2*(y*y+z*z)", "2*(x*y-w*z)", "2*(x*z+w*y)",
    "2*(x*y+w*z)", "-2*(x*x+z*z)", "2*(y*z-w*x)",
    "2*(x*z-w*y)", "2*(y*z+w*x)", "-2*(x*x+y*y)",
)



def _coefficients(values, count: int, name: str, batch: tuple) -> np.ndarray:
    """Zero-padded ``(*batch, count)`` coefficients from ``(n,)`` or ``(*batch, n)``."""
    if values is None:
        return np.zeros(batch + (count,))
    array = np.asarray(values, dtype=np.float64)
    if array.shape[-1] > count:
        raise ValueError(f"{name} has {array.shape[-1]} coefficients; this model has {count}")
    padded = np.zeros(array.shape[:-1] + (count,))
    padded[..., : array.shape[-1]] = array
    return np.broadcast_to(padded, batch + (count,)) if padded.ndim == 1 and batch else padded


def shape_vertices(flame: FlameModel, shape=None, expression=None) -> np.ndarray:
    """``v_template + shapedirs · [shape ‖ expression]`` in metres.

    ``shape`` ``(n,)`` or ``(frames, n)`` with n ≤ ``flame.n_shape``; ``expression`` likewise
    with n ≤ ``flame.n_expression`` (e.g. the first 50 as SMIRK/EMOCA/DECA use). Returns
    ``(V, 3)`` or ``(frames, V, 3)``.
    """
    batch = _batch_shape(shape, expression)
    betas = np.concatenate([
        _coefficients(shape, flame.n_shape, "shape", batch),
        _coefficients(expression, flame.n_expression, "expression", batch)], axis=-1)
    return flame.v_template_m + _apply_basis(flame.shapedirs, betas)


def _apply_basis(basis: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """``(V, 3, K)`` basis times ``(..., K)`` coefficients -> ``(..., V, 3)``, one BLAS matmul."""
    n_vertices, _, n_components = basis.shape
    flat = coefficients.reshape(-1, n_components) @ basis.reshape(n_vertices * 3, n_components).T
    return flat.reshape(coefficients.shape[:-1] + (n_vertices, 3))


def _batch_shape(*values) -> tuple:
    batch: tuple = ()
    for value in values:
        if value is not None:
            array = np.asarray(value)
            if array.ndim > 1:
                if batch and array.shape[:-1] != batch:
                    raise ValueError(f"frame counts differ: {batch} vs {array.shape[:-1]}")
                batch = array.shape[:-1]
    return batch


def joint_locations(flame: FlameModel, vertices_m: np.ndarray) -> np.ndarray:
    """Joints regressed from shaped vertices: ``(..., V, 3) -> (..., J, 3)`` metres."""
    return flame.j_regressor @ np.asarray(vertices_m, dtype=np.float64)




def pose_feature(rotations: np.ndarray) -> np.ndarray:
    """Corrective drivers ``(R[1:] − I)``, row-major: ``(..., J, 3, 3) -> (..., 9(J−1))``."""
    r = np.asarray(rotations, dtype=np.float64)
    return (r[..., 1:, :, :] - np.eye(3)).reshape(r.shape[:-3] + (9 * (r.shape[-3] - 1),))


def corrective_basis(flame: FlameModel) -> np.ndarray:
    """Pose-corrective shape offsets ``(9(J−1), V, 3)`` metres: entry p moves vertices by
    ``basis[p] · pose_feature[p]``. Shape key p for a driven rig (FLAME frame; convert with
    :func:`flame_to_blender`)."""
    return np.moveaxis(flame.posedirs, -1, 0)


def pose_correctives(flame: FlameModel, rotations: np.ndarray) -> np.ndarray:
    """Vertex offsets ``(..., V, 3)`` from joint rotations ``(..., J, 3, 3)``."""
    return _apply_basis(flame.posedirs, pose_feature(rotations))


def global_transforms(rotations: np.ndarray, joints_m: np.ndarray,
                      parents: np.ndarray) -> np.ndarray:
    """World transforms of the posed joints ``(..., J, 4, 4)``; translation = posed joint position.

    ``rotations`` ``(..., J, 3, 3)`` local to each joint, ``joints_m`` rest positions
    ``(..., J, 3)``; ``parents[j] < j``, ``parents[0] = -1``.
    """
    rotations = np.asarray(rotations, dtype=np.float64)
    joints = np.asarray(joints_m, dtype=np.float64)
    batch = np.broadcast_shapes(rotations.shape[:-3], joints.shape[:-2])
    n_joints = len(parents)
    offsets = joints.copy()
    offsets[..., 1:, :] -= joints[..., parents[1:], :]
    local = np.zeros(batch + (n_joints, 4, 4))
    local[..., :3, :3] = rotations
    local[..., :3, 3] = offsets
    local[..., 3, 3] = 1.0
    chain = [local[..., 0, :, :]]
    for j in range(1, n_joints):  # 5 joints: a loop over the chain, not over vertices
        chain.append(chain[parents[j]] @ local[..., j, :, :])
    return np.stack(chain, axis=-3)


def skinning_transforms(rotations: np.ndarray, joints_m: np.ndarray,
                        parents: np.ndarray) -> np.ndarray:
    """Rest-to-posed joint transforms ``A_j = G_j · [I | −J_j]`` ``(..., J, 4, 4)`` for LBS."""
    world = global_transforms(rotations, joints_m, parents)
    relative = world.copy()
    relative[..., :3, 3] -= np.einsum("...jab,...jb->...ja", world[..., :3, :3], joints_m)
    return relative


def linear_blend_skinning(vertices_m: np.ndarray, weights: np.ndarray,
                          transforms: np.ndarray) -> np.ndarray:
    """``Σ_j w_vj · A_j · v``: ``(..., V, 3)``, ``(V, J)``, ``(..., J, 4, 4)`` → ``(..., V, 3)``.
    """
    transforms = np.asarray(transforms, dtype=np.float64)
    rows = transforms[..., :3, :].reshape(transforms.shape[:-2] + (12,))  # (..., J, 12)
    blended = (weights @ rows).reshape(rows.shape[:-2] + (weights.shape[0], 3, 4))  # BLAS
    vertices = np.asarray(vertices_m, dtype=np.float64)
    return (blended[..., :3] * vertices[..., None, :]).sum(axis=-1) + blended[..., 3]


@dataclass
class FlameOutput:
    """Result of :func:`flame_forward`, metres, FLAME frame."""

    vertices_m: np.ndarray  # (V, 3) or (frames, V, 3)
    joints_m: np.ndarray  # posed joints (J, 3) or (frames, J, 3)
    rest_joints_m: np.ndarray  # joints of the shaped mesh before posing


def flame_forward(flame: FlameModel, shape=None, expression=None, pose=None,
                  translation_m=None) -> FlameOutput:
    """The FLAME reference: shape, expression, pose correctives and linear blend skinning.

    Parameters
    ----------
    flame : FlameModel
    shape : array ``(n,)`` or ``(frames, n)``, optional
        Identity coefficients, n ≤ ``flame.n_shape`` (missing ones are zero).
    expression : array ``(n,)`` or ``(frames, n)``, optional
        Expression coefficients, n ≤ ``flame.n_expression``.
    pose : array ``(15,)`` or ``(frames, 15)``, optional
        Axis-angle radians, ``[root | neck | jaw | eye L | eye R]`` (see :func:`assemble_pose`).
    translation_m : array ``(3,)`` or ``(frames, 3)``, optional
        Added to every vertex and joint.

    Returns
    -------
    FlameOutput
        float64 metres in FLAME's frame; batched over frames when any input is.
    """
    v_shaped = shape_vertices(flame, shape, expression)
    rest_joints = joint_locations(flame, v_shaped)
    pose_array = np.zeros(FLAME_POSE_SIZE) if pose is None else np.asarray(pose, dtype=np.float64)
    if pose_array.shape[-1] != 3 * flame.n_joints:
        raise ValueError(f"pose must have {3 * flame.n_joints} values per frame, "
                         f"got shape {pose_array.shape}")
    rotations = rodrigues(pose_array.reshape(pose_array.shape[:-1] + (flame.n_joints, 3)))
    batch = np.broadcast_shapes(v_shaped.shape[:-2], rotations.shape[:-3])
    v_shaped = np.broadcast_to(v_shaped, batch + v_shaped.shape[-2:])
    rest_joints = np.broadcast_to(rest_joints, batch + rest_joints.shape[-2:])
    rotations = np.broadcast_to(rotations, batch + rotations.shape[-3:])
    v_posed = v_shaped + pose_correctives(flame, rotations)
    transforms = skinning_transforms(rotations, rest_joints, flame.parents)
    vertices = linear_blend_skinning(v_posed, flame.weights, transforms)
    joints = global_transforms(rotations, rest_joints, flame.parents)[..., :3, 3]
    if translation_m is not None:
        offset = np.asarray(translation_m, dtype=np.float64)[..., None, :]
        vertices, joints = vertices + offset, joints + offset
    return FlameOutput(vertices_m=vertices, joints_m=joints, rest_joints_m=np.array(rest_joints))


# --------------------------------------------------------------------------------------------
# FLAME frame -> Blender frame

# FLAME: X = subject's left, Y up, face looks +Z. Blender: Z up, front view looks along +Y so a
# face looks −Y. The map is a +90° rotation about X: (x, y, z) -> (x, −z, y). It is a proper
# rotation (det +1), so axis-angle vectors and normals transform the same way as points.
# A Blender bone pointing straight up (+Z) with roll 0 has exactly this rest orientation, so its
# local pose rotation *is* FLAME's joint rotation: FLAME axis-angles can be set on such bones
# unchanged, and POSE_FEATURE_QUATERNION_EXPRESSIONS read its quaternion directly (checked with
# bpy 5.0.1: matrix_local[:3, :3] == FLAME_TO_BLENDER, matrix_basis[:3, :3] == rodrigues(aa)).
FLAME_TO_BLENDER: np.ndarray = np.array([[1.0, 0.0, 0.0],
                                         [0.0, 0.0, -1.0],
                                         [0.0, 1.0, 0.0]])
FLAME_TO_BLENDER.setflags(write=False)


def flame_to_blender(vectors: np.ndarray) -> np.ndarray:
    """Points, offsets or axis-angle vectors ``(..., 3)`` from FLAME's frame (Y up, face +Z)
    to Blender's (Z up, face −Y): ``(x, y, z) -> (x, −z, y)``. Units are unchanged (metres).

    Rotation matrices convert as ``M · R · Mᵀ`` with ``M = FLAME_TO_BLENDER``.
    """
    return np.asarray(vectors) @ FLAME_TO_BLENDER.T


def blender_to_flame(vectors: np.ndarray) -> np.ndarray:
    """Inverse of :func:`flame_to_blender`: ``(x, y, z) -> (x, z, −y)``."""
    return np.asarray(vectors) @ FLAME_TO_BLENDER
