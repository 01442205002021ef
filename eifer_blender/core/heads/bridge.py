"""The ARKit-52 ↔ FLAME bridge, computed on the user's machine from the user's own FLAME file.

No FLAME-derived data ships (FLAME's licence); the open head's 52 ARKit targets (CC0) do. The
bridge carries those targets onto the user's FLAME template and fits FLAME parameters to them:

1. **Registration** of the open head's skin to FLAME's neutral template, no manual landmarks.
   Both heads declare a canonical frame (the open head Blender's: Z up, face −Y; FLAME: Y up,
   face +Z), so after :func:`~.flame_model.blender_to_flame` they agree up to a similarity.
   Rigid: centroids and RMS radii, rotation candidates (the canonical identity, and the
   principal axes of both point sets with the sign of each axis chosen closest to the canonical
   frame), each refined by symmetric, trimmed ICP with a similarity transform (Besl & McKay 1992;
   Umeyama 1991); the best candidate wins. Then a global affine ICP, then non-rigid: per-vertex
   displacements regularised by the cotangent bi-Laplacian (thin-plate energy, which leaves
   affine fields free), fitted to symmetric closest-point correspondences that are trimmed by
   distance and normal agreement, with the stiffness lowered over a schedule — the stiffness
   schedule of non-rigid ICP (Amberg, Romdhani & Vetter, CVPR 2007), in a displacement
   formulation that needs one sparse 3-RHS solve per step (Botsch & Sorkine, TVCG 2008).
2. **Transfer**: each target's displacement is mapped through the local Jacobian of the
   registration (deformation transfer, Sumner & Popović, SIGGRAPH 2004; the Jacobian is a
   regularised local affine fit of the deformation over each vertex's neighbourhood), then read
   at every FLAME vertex by closest point and barycentric interpolation on the registered open
   head surface.
3. **Fit**: per ARKit shape, ridge least squares over the face region for the first N
   expression coefficients, plus the jaw rotation for jaw shapes (linearised by a central finite
   difference through the forward model, then refined by Gauss–Newton through it) and the eyelid
   blendshapes for eye shapes where the file has them. The reverse map (FLAME → ARKit) is the
   ridge least-squares inverse in the metric of the FLAME mesh: the ARKit weights whose bridged
   FLAME mesh is closest to the given parameters' mesh.

Per-shape residual: RMS over the face region of (FLAME mesh through the bridge − transferred
target), divided by the target's own RMS there. Cached per FLAME file (sha256) by
:func:`load_or_build_bridge` in a folder the caller gives (Blender's user folder; never the
repository).
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
from scipy.spatial import cKDTree

from ..atomic import atomic_file
from ..errors import InputError
from ..expression.spaces import ARKIT52, ARKIT_OBSERVABLE, FLAME_EXPRESSION_NAMES
from ..tracks import ExpressionTrack
from .flame_file import FlameModel, load_flame_model
from .flame_model import blender_to_flame, flame_forward, rodrigues, skinning_transforms
from .openhead import OpenHead, load_open_head

BRIDGE_VERSION = 1  # bump when the method changes: old caches are then rebuilt
Progress = Callable[[float, str], None]

JAW_SHAPES: tuple[str, ...] = ("jawOpen", "jawForward", "jawLeft", "jawRight")
EYELID_SHAPES: tuple[str, ...] = tuple(
    f"{stem}{side}" for stem in ("eyeBlink", "eyeSquint", "eyeWide") for side in ("Left", "Right"))
# The open head parts that FLAME has: skin (with the mouth and eye sockets it joins) and eyeballs.
# Teeth and tongue have no FLAME counterpart.
_REGISTER_PARTS = ("skin",)
_DEFORM_PARTS = ("skin", "mouth_inside", "eye_socket_L", "eye_socket_R")
_EYE_PARTS = ("eye_L", "eye_R")
# Below this share of closest-point pairs (both ways, after the non-rigid step) with a trusted
# counterpart — normals agreeing, closer than a tenth of the eye distance — the template is not
# taken for a face. The synthetic faces of the tests give 0.95–0.99, random FLAME-layout arrays
# 0.13–0.24; a real FLAME head loses a few per cent where its neck or mouth extend past the
# open head's.
MIN_COVERAGE = 0.5
_STIFFNESS_SCHEDULE = (1000.0, 300.0, 100.0, 30.0, 10.0)
_STEPS_PER_STIFFNESS = 8
_JAW_STEP_RAD = 1e-3
_GAUSS_NEWTON_STEPS = 4


# --------------------------------------------------------------------------------------------
# mesh geometry (vectorised)


def _triangles(faces: np.ndarray) -> np.ndarray:
    """Triangles from triangles or quads (split along 0–2)."""
    faces = np.asarray(faces, dtype=np.int64)
    if faces.shape[1] == 3:
        return faces
    return np.concatenate([faces[:, [0, 1, 2]], faces[:, [0, 2, 3]]])


def _vertex_normals(vertices: np.ndarray, tris: np.ndarray) -> np.ndarray:
    a, b, c = (vertices[tris[:, i]] for i in range(3))
    face_n = np.cross(b - a, c - a)  # area-weighted
    normals = np.zeros_like(vertices)
    for i in range(3):
        np.add.at(normals, tris[:, i], face_n)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.where(length > 0, length, 1.0)


def _cotangent_laplacian(vertices: np.ndarray, tris: np.ndarray):
    """Cotangent Laplacian L (positive semi-definite, n × n csr) and lumped areas (n,)."""
    n = len(vertices)
    rows, cols, vals = [], [], []
    area = np.zeros(n)
    a, b, c = (vertices[tris[:, i]] for i in range(3))
    double_area = np.linalg.norm(np.cross(b - a, c - a), axis=1)
    safe = np.maximum(double_area, 1e-20)
    for i, j, k in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):  # the angle at k faces edge i–j
        u = vertices[tris[:, i]] - vertices[tris[:, k]]
        v = vertices[tris[:, j]] - vertices[tris[:, k]]
        cot = np.clip(np.einsum("ij,ij->i", u, v) / safe, -1e3, 1e3)
        rows += [tris[:, i], tris[:, j]]
        cols += [tris[:, j], tris[:, i]]
        vals += [-0.5 * cot, -0.5 * cot]
    for i in range(3):
        np.add.at(area, tris[:, i], double_area / 6.0)
    off = scipy.sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                  shape=(n, n))
    laplacian = scipy.sparse.diags(-np.asarray(off.sum(axis=1)).ravel()) + off
    return laplacian.tocsr(), np.maximum(area, 1e-12)


def _closest_on_triangles(points, a, b, c):
    """Exact closest points of ``points`` (..., 3) on triangles (a, b, c) (..., 3) (Ericson,
    *Real-Time Collision Detection*, 5.1.5), vectorised. Returns (closest, barycentric (..., 3))."""
    ab, ac, ap = b - a, c - a, points - a
    d1, d2 = np.einsum("...i,...i->...", ab, ap), np.einsum("...i,...i->...", ac, ap)
    bp = points - b
    d3, d4 = np.einsum("...i,...i->...", ab, bp), np.einsum("...i,...i->...", ac, bp)
    cp = points - c
    d5, d6 = np.einsum("...i,...i->...", ab, cp), np.einsum("...i,...i->...", ac, cp)
    vc, vb, va = d1 * d4 - d3 * d2, d5 * d2 - d1 * d6, d3 * d6 - d5 * d4
    eps = 1e-30

    def ratio(num, den):
        return num / np.where(np.abs(den) > eps, den, eps)

    denom = va + vb + vc
    v_in, w_in = ratio(vb, denom), ratio(vc, denom)
    v_ab = ratio(d1, d1 - d3)
    w_ac = ratio(d2, d2 - d6)
    w_bc = ratio(d4 - d3, (d4 - d3) + (d5 - d6))
    zero, one = np.zeros_like(d1), np.ones_like(d1)
    conditions = [
        (d1 <= 0) & (d2 <= 0),
        (d3 >= 0) & (d4 <= d3),
        (vc <= 0) & (d1 >= 0) & (d3 <= 0),
        (d6 >= 0) & (d5 <= d6),
        (vb <= 0) & (d2 >= 0) & (d6 <= 0),
        (va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0),
    ]
    bary_v = np.select(conditions, [zero, one, v_ab, zero, zero, 1 - w_bc], v_in)
    bary_w = np.select(conditions, [zero, zero, zero, one, w_ac, w_bc], w_in)
    bary = np.stack([1 - bary_v - bary_w, bary_v, bary_w], axis=-1)
    closest = a * bary[..., :1] + b * bary[..., 1:2] + c * bary[..., 2:]
    return closest, bary


@dataclass
class _Surface:
    """A triangle mesh with a k-d tree on its triangle centroids for closest-point queries."""

    vertices: np.ndarray
    tris: np.ndarray
    tree: cKDTree = field(init=False)

    def __post_init__(self):
        self.tree = cKDTree(self.vertices[self.tris].mean(axis=1))

    def closest(self, points: np.ndarray, candidates: int = 8):
        """(closest points, distances, triangle index, barycentric) for each point."""
        k = min(candidates, len(self.tris))
        _, near = self.tree.query(points, k=k)
        near = near.reshape(len(points), k)
        corners = self.vertices[self.tris[near]]  # (n, k, 3 corners, 3)
        closest, bary = _closest_on_triangles(points[:, None, :], corners[:, :, 0],
                                              corners[:, :, 1], corners[:, :, 2])
        distance = np.linalg.norm(closest - points[:, None, :], axis=-1)
        best = np.argmin(distance, axis=1)
        rows = np.arange(len(points))
        return (closest[rows, best], distance[rows, best], near[rows, best], bary[rows, best])


def _connected_components(n: int, tris: np.ndarray) -> np.ndarray:
    from scipy.sparse.csgraph import connected_components

    edges = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    graph = scipy.sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


# --------------------------------------------------------------------------------------------
# registration


def _similarity(src, dst, weights):
    """Weighted least-squares similarity ``dst ≈ s·R·src + t`` (Umeyama 1991)."""
    w = weights / weights.sum()
    mu_s, mu_d = w @ src, w @ dst
    x, y = src - mu_s, dst - mu_d
    cov = (y * w[:, None]).T @ x
    u, sing, vt = np.linalg.svd(cov)
    d = np.ones(3)
    d[2] = np.sign(np.linalg.det(u @ vt)) or 1.0
    rotation = (u * d) @ vt
    scale = float((sing * d).sum() / max(w @ np.sum(x * x, axis=1), 1e-30))
    return scale, rotation, mu_d - scale * rotation @ mu_s


def _affine(src, dst, weights, anchor: float = 1e-3):
    """Weighted least-squares affine ``dst ≈ A·src + t`` with a small pull toward A = I·s."""
    w = weights / weights.sum()
    mu_s, mu_d = w @ src, w @ dst
    x, y = src - mu_s, dst - mu_d
    sxx = (x * w[:, None]).T @ x
    syx = (y * w[:, None]).T @ x
    reg = anchor * np.trace(sxx) / 3.0
    linear = np.linalg.solve((sxx + reg * np.eye(3)).T, (syx + reg * np.eye(3)).T).T
    return linear, mu_d - linear @ mu_s


def _principal_axes(points):
    centred = points - points.mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred)
    return vectors[:, ::-1]  # columns: major first


def _pca_rotation(source, target):
    """Rotation taking the source's principal axes onto the target's. The axes' order and signs
    are ambiguous (a head's three extents are alike), so of the 24 proper signed permutations
    the one keeping the rotation closest to the canonical frames' agreement (identity) wins."""
    import itertools

    us, ut = _principal_axes(source), _principal_axes(target)
    best, best_trace = np.eye(3), -np.inf
    for order in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            mapping = np.eye(3)[:, order] * np.array(signs)
            rotation = ut @ mapping @ us.T
            if np.linalg.det(rotation) > 0 and np.trace(rotation) > best_trace:
                best, best_trace = rotation, np.trace(rotation)
    return best


def _correspondences(moved, moved_normals, target_tree, target_points, target_normals):
    """Symmetric nearest-point pairs (trimmed by 2.5 × median distance and normal agreement)."""
    dist, index = target_tree.query(moved)
    keep = (dist <= 2.5 * np.median(dist)) & (
        np.einsum("ij,ij->i", moved_normals, target_normals[index]) > 0.3)
    src_pairs, dst_pairs = [np.flatnonzero(keep)], [target_points[index[keep]]]
    back_dist, back_index = cKDTree(moved).query(target_points)
    back_keep = (back_dist <= 2.5 * np.median(back_dist)) & (
        np.einsum("ij,ij->i", moved_normals[back_index], target_normals) > 0.3)
    src_pairs.append(back_index[back_keep])
    dst_pairs.append(target_points[back_keep])
    return np.concatenate(src_pairs), np.concatenate(dst_pairs), dist


def _rigid_icp(source, source_normals, target, target_normals, iterations: int = 30):
    """Similarity ICP from several rotation candidates; returns (scale, R, t, RMS distance)."""
    tree = cKDTree(target)
    radius = lambda p: np.sqrt(np.mean(np.sum((p - p.mean(axis=0)) ** 2, axis=1)))  # noqa: E731
    scale0 = radius(target) / max(radius(source), 1e-12)
    results = []
    starts = [np.eye(3)]
    pca = _pca_rotation(source, target)
    if np.degrees(np.arccos(np.clip((np.trace(pca) - 1) / 2, -1, 1))) > 5.0:
        starts.append(pca)  # a second start only where the principal axes disagree
    for start in starts:
        scale, rotation = scale0, start
        shift = target.mean(axis=0) - scale * rotation @ source.mean(axis=0)
        for _ in range(iterations):
            moved = scale * source @ rotation.T + shift
            src, dst, _ = _correspondences(moved, source_normals @ rotation.T, tree, target,
                                           target_normals)
            new = _similarity(source[src], dst, np.ones(len(src)))
            change = abs(new[0] - scale) / scale + np.abs(new[1] - rotation).max()
            scale, rotation, shift = new
            if change < 1e-5:
                break
        moved = scale * source @ rotation.T + shift
        rms = float(np.sqrt(np.mean(np.minimum(tree.query(moved)[0], 0.05 * radius(target)) ** 2)))
        results.append((rms, scale, rotation, shift))
    rms, scale, rotation, shift = min(results, key=lambda r: r[0])
    return scale, rotation, shift, rms


@dataclass
class Registration:
    """The open head registered onto a FLAME template (FLAME's frame, metres).

    ``scale``, ``rotation``, ``translation``: the similarity from the open head (converted to
    FLAME's frame) onto the template. ``deformed_m``: every open-head vertex after the
    non-rigid step; ``jacobians``: (V, 3, 3) local Jacobian of the whole map at each vertex (a
    displacement ``d`` of the open head becomes ``J·d``). Residuals in metres (RMS):
    ``residual_m`` over all closest-point pairs both ways, a pair without a trusted
    counterpart (normals disagree, or farther than a tenth of the eye distance) counted at
    that tenth; ``accuracy_m`` over the trusted pairs only.
    """

    scale: float
    rotation: np.ndarray
    translation: np.ndarray
    deformed_m: np.ndarray
    jacobians: np.ndarray
    rigid_residual_m: float
    residual_m: float
    eye_distance_m: float
    coverage: float = 1.0  # share of closest-point pairs (both ways) with a trusted counterpart
    accuracy_m: float = 0.0  # RMS distance over the trusted pairs

    @property
    def relative_residual(self) -> float:
        return self.residual_m / self.eye_distance_m


def _bilaplacian(vertices, tris):
    laplacian, area = _cotangent_laplacian(vertices, tris)
    mean_area = float(area.mean())
    return (laplacian.T @ scipy.sparse.diags(mean_area / area) @ laplacian).tocsc()


def _local_jacobians(rest, deformed, linear, neighbours: int = 48, anchor: float = 0.3):
    """Regularised local affine fit of ``rest → deformed`` over each vertex's neighbourhood:
    ``J_i = argmin Σ_k g_k |J (x_k − x_i) − (y_k − y_i)|² + λ |J − linear|²``."""
    k = min(neighbours, len(rest))
    dist, near = cKDTree(rest).query(rest, k=k)
    dx = rest[near] - rest[:, None, :]
    dy = deformed[near] - deformed[:, None, :]
    sigma = np.maximum(np.median(dist[:, -1]), 1e-9)
    g = np.exp(-0.5 * (dist / sigma) ** 2)
    sxx = np.einsum("nk,nka,nkb->nab", g, dx, dx)
    syx = np.einsum("nk,nka,nkb->nab", g, dy, dx)
    reg = anchor * np.trace(sxx, axis1=1, axis2=2)[:, None, None] / 3.0 + 1e-30
    lhs = sxx + reg * np.eye(3)
    rhs = syx + reg * linear
    # J · lhs = rhs  ->  lhsᵀ Jᵀ = rhsᵀ (lhs symmetric)
    return np.swapaxes(np.linalg.solve(lhs, np.swapaxes(rhs, 1, 2)), 1, 2)


def _pairs(current, skin_index, skin_tris, target_surface, template_normals, triangle_normals,
           deform_tris, template_rows):
    """Closest-point pairs both ways between the open head's skin (``current``) and the
    template's main surface (``template_rows``; ``triangle_normals`` of its triangles): forward
    (closest, distance, normals agree) for each skin vertex, back (closest, distance, triangle,
    barycentric, agree) for each template row."""
    template = target_surface.vertices
    normals = _vertex_normals(current, deform_tris)
    closest, dist, tri, _ = target_surface.closest(current[skin_index])
    agree = np.einsum("ij,ij->i", normals[skin_index], triangle_normals[tri]) > 0.5
    back_closest, back_dist, back_tri, back_bary = _Surface(current, skin_tris).closest(
        template[template_rows])
    back_normals = np.einsum("nk,nkc->nc", back_bary, normals[skin_tris[back_tri]])
    back_agree = np.einsum("ij,ij->i", back_normals, template_normals[template_rows]) > 0.5
    return (closest, dist, agree), (back_closest, back_dist, back_tri, back_bary, back_agree)


def _pull_targets(current, forward, back, skin_index, skin_tris, template_points, reach_m):
    """Where each open-head vertex should go: the mean of its own closest template point and of
    the template vertices whose closest open-head triangle it spans (the triangle moved by their
    offset), each trusted within ``reach_m`` and with agreeing normals; a vertex with neither
    stays where it is."""
    closest, dist, agree = forward
    back_closest, back_dist, back_tri, back_bary, back_agree = back
    ok = (dist <= max(3.0 * np.median(dist), reach_m)) & agree
    back_ok = (back_dist <= max(3.0 * np.median(back_dist), reach_m)) & back_agree
    corners = skin_tris[back_tri]
    n = len(current)
    weight = ok.sum() / max(int(back_ok.sum()), 1)  # both directions count alike
    total_w = np.zeros(n)
    total = np.zeros((n, 3))
    total_w[skin_index[ok]] += 1.0
    total[skin_index[ok]] += closest[ok]
    offset = (template_points - back_closest)[back_ok]
    for c in range(3):
        w = weight * back_bary[back_ok, c]
        vertex = corners[back_ok, c]
        np.add.at(total_w, vertex, w)
        np.add.at(total, vertex, w[:, None] * (current[vertex] + offset))
    has = total_w > 0
    target = current.copy()
    target[has] = total[has] / total_w[has, None]
    return target


def register_open_head(head: OpenHead, flame: FlameModel,
                       progress: Progress | None = None) -> Registration:
    """Register the open head onto ``flame``'s neutral template (no landmarks).

    See the module notes for the method. Returns a :class:`Registration`; it does not judge
    whether the template is a face (``build_bridge`` does, from ``coverage``).
    """
    report = progress or (lambda fraction, message: None)
    parts = np.asarray(head.vertex_part)
    code = {name: i for i, name in enumerate(head.part_names)}
    rest_all = blender_to_flame(np.asarray(head.vertices_m, dtype=np.float64))
    open_tris = _triangles(head.faces)
    face_part = np.repeat(np.asarray(head.face_part), len(open_tris) // len(head.faces))
    deform_faces = open_tris[np.isin(face_part, [code[p] for p in _DEFORM_PARTS])]
    deform_vertices = np.unique(deform_faces)
    local = np.full(len(parts), -1)
    local[deform_vertices] = np.arange(len(deform_vertices))
    deform_tris = local[deform_faces]
    skin_tris = local[open_tris[face_part == code["skin"]]]
    source = rest_all[deform_vertices]
    is_skin = parts[deform_vertices] == code["skin"]

    template = flame.v_template_m
    all_tris = np.asarray(flame.faces, dtype=np.int64)
    template_normals = _vertex_normals(template, all_tris)
    # the template's main surface: its largest connected part (FLAME's eyeballs are apart)
    labels = _connected_components(len(template), all_tris)
    main_label = np.argmax(np.bincount(labels))
    main_rows = np.flatnonzero(labels == main_label)
    flame_tris = all_tris[labels[all_tris[:, 0]] == main_label]
    # denser targets for the affine step: vertices and triangle centroids
    centroids = template[flame_tris].mean(axis=1)
    centroid_normals = np.cross(template[flame_tris[:, 1]] - template[flame_tris[:, 0]],
                                template[flame_tris[:, 2]] - template[flame_tris[:, 0]])
    centroid_normals /= np.maximum(np.linalg.norm(centroid_normals, axis=1, keepdims=True), 1e-30)
    dense = np.concatenate([template[main_rows], centroids])
    dense_normals = np.concatenate([template_normals[main_rows], centroid_normals])

    source_normals = _vertex_normals(source, deform_tris)
    report(0.05, "registering the open head to the FLAME template (rigid)")
    sub = np.flatnonzero(is_skin)[::3]  # ~1 100 points are plenty for 7 degrees of freedom
    scale, rotation, shift, rigid_rms = _rigid_icp(source[sub], source_normals[sub],
                                                   template[main_rows], template_normals[main_rows])
    aligned = scale * source @ rotation.T + shift

    # global affine ICP: proportions
    tree = cKDTree(dense)
    linear, offset = np.eye(3), np.zeros(3)
    for _ in range(10):
        moved = aligned @ linear.T + offset
        normals = _vertex_normals(moved, deform_tris)
        src, dst, _ = _correspondences(moved[sub], normals[sub], tree, dense, dense_normals)
        linear, offset = _affine(aligned[sub][src], dst, np.ones(len(src)))
    affine_pos = aligned @ linear.T + offset

    report(0.15, "registering the open head to the FLAME template (non-rigid)")
    target_surface = _Surface(template, flame_tris)
    bilaplacian = _bilaplacian(affine_pos, deform_tris)
    skin_index = np.flatnonzero(is_skin)
    data_w = is_skin.astype(np.float64)
    current = affine_pos.copy()
    # correspondences are trusted up to a tenth of the eye distance (normals reject the rest)
    eyes = blender_to_flame(np.stack([np.asarray(head.pivots_m[k], dtype=np.float64)
                                      for k in ("eye_L", "eye_R")]))
    eyes = (scale * eyes @ rotation.T + shift) @ linear.T + offset
    reach = 0.1 * float(np.linalg.norm(eyes[0] - eyes[1]))
    steps = len(_STIFFNESS_SCHEDULE) * _STEPS_PER_STIFFNESS
    step = 0
    for stiffness in _STIFFNESS_SCHEDULE:
        # one factorisation per stiffness: every skin vertex has a data term (a vertex without a
        # trusted correspondence is held where it is), so the matrix only changes with stiffness
        solve = scipy.sparse.linalg.splu(
            (scipy.sparse.diags(data_w + 1e-6) + stiffness * bilaplacian).tocsc(),
            permc_spec="MMD_ATA").solve
        for _ in range(_STEPS_PER_STIFFNESS):
            step += 1
            report(0.15 + 0.35 * step / steps, "registering the open head (non-rigid)")
            forward, back = _pairs(current, skin_index, skin_tris, target_surface,
                                   template_normals, centroid_normals, deform_tris, main_rows)
            target_pos = _pull_targets(current, forward, back, skin_index, skin_tris,
                                       template[main_rows], reach)
            current = affine_pos + solve(data_w[:, None] * (target_pos - affine_pos))

    # residual: symmetric closest-surface distances; a pair whose normals disagree or that is
    # farther than the reach counts as the reach (a face has a counterpart nearly everywhere,
    # a non-face does not)
    forward, back = _pairs(current, skin_index, skin_tris, target_surface, template_normals,
                           centroid_normals, deform_tris, main_rows)
    distances = np.concatenate([forward[1], back[1]])
    trusted = np.concatenate([forward[2], back[4]]) & (distances <= reach)
    capped = np.where(trusted, distances, reach)
    residual = float(np.sqrt(np.mean(capped ** 2)))
    coverage = float(trusted.mean())
    accuracy = float(np.sqrt(np.mean(distances[trusted] ** 2))) if trusted.any() else float("inf")

    # every open-head vertex: the deformable parts as fitted, the others (eyes, teeth, tongue)
    # follow the displacement of their nearest deformable vertices
    aligned_all = scale * rest_all @ rotation.T + shift
    affine_all = aligned_all @ linear.T + offset
    deformed_all = affine_all.copy()
    deformed_all[deform_vertices] = current
    others = np.setdiff1d(np.arange(len(parts)), deform_vertices)
    if len(others):
        d, near = cKDTree(affine_pos).query(affine_all[others], k=8)
        w = 1.0 / np.maximum(d, 1e-9)
        w /= w.sum(axis=1, keepdims=True)
        moved_by = np.einsum("nk,nkc->nc", w, current[near] - affine_pos[near])
        deformed_all[others] = affine_all[others] + moved_by
    jacobians = _local_jacobians(aligned_all, deformed_all, linear) * scale
    jacobians = jacobians @ rotation  # a displacement d (open head, FLAME frame) → J · d
    eye_l, eye_r = (blender_to_flame(np.asarray(head.pivots_m[k], dtype=np.float64))
                    for k in ("eye_L", "eye_R"))
    eye_distance = float(np.linalg.norm((eye_l - eye_r) @ (linear @ rotation).T * scale))
    return Registration(scale=float(scale), rotation=rotation, translation=shift,
                        deformed_m=deformed_all, jacobians=jacobians,
                        rigid_residual_m=float(rigid_rms), residual_m=residual,
                        eye_distance_m=eye_distance, coverage=coverage, accuracy_m=accuracy)


# --------------------------------------------------------------------------------------------
# transfer


@dataclass
class Transfer:
    """ARKit targets carried onto the FLAME template (FLAME's frame, metres).

    ``targets_m`` (52, V, 3); ``fit_weight`` (V,) 1 on the skin (targets zero where the open
    head has no counterpart), 0 on FLAME's eyeballs; ``face`` (V,) the fitted vertices some
    target moves by more than 0.1 mm: the region the residuals are measured over.
    """

    targets_m: np.ndarray
    fit_weight: np.ndarray
    face: np.ndarray
    matched: np.ndarray


def transfer_targets(head: OpenHead, flame: FlameModel, registration: Registration) -> Transfer:
    """Each ARKit target's displacement, mapped through the registration's local Jacobians and
    read at every FLAME vertex by closest point + barycentric interpolation on the registered
    open head (its skin, mouth, eye sockets and eyeballs; not teeth or tongue)."""
    code = {name: i for i, name in enumerate(head.part_names)}
    open_tris = _triangles(head.faces)
    face_part = np.repeat(np.asarray(head.face_part), len(open_tris) // len(head.faces))
    keep = np.isin(face_part, [code[p] for p in _DEFORM_PARTS + _EYE_PARTS])
    tris, tri_part = open_tris[keep], face_part[keep]
    surface = _Surface(registration.deformed_m, tris)
    template = flame.v_template_m
    _, dist, tri, bary = surface.closest(template)
    open_normals = _vertex_normals(registration.deformed_m, tris)
    normal_at = np.einsum("nk,nkc->nc", bary, open_normals[tris[tri]])
    agree = np.einsum("ij,ij->i", normal_at, _vertex_normals(template, flame.faces)) > 0.0
    limit = max(4.0 * float(np.median(dist)), 0.05 * registration.eye_distance_m)
    matched = (dist <= limit) & agree
    on_eye = np.isin(tri_part[tri], [code[p] for p in _EYE_PARTS])
    deltas = blender_to_flame(np.asarray(head.deltas_m, dtype=np.float64))  # (52, V_open, 3)
    carried = np.einsum("vab,kvb->kva", registration.jacobians, deltas)
    corners = tris[tri]  # (V, 3)
    targets = np.einsum("vc,kvcd->kvd", bary, carried[:, corners])
    targets[:, ~(matched & ~on_eye)] = 0.0
    fit_weight = np.where(matched & on_eye, 0.0, 1.0)
    moved = np.linalg.norm(targets, axis=2).max(axis=0) > 1e-4
    return Transfer(targets_m=targets, fit_weight=fit_weight, face=moved & (fit_weight > 0),
                    matched=matched)


# --------------------------------------------------------------------------------------------
# fit


def parameter_names(n_expression: int) -> tuple[str, ...]:
    """``exp001 … expN, jaw_x, jaw_y, jaw_z, eyelid_l, eyelid_r`` (the ``flame`` space for N=50)."""
    return tuple(f"exp{i:03d}" for i in range(1, n_expression + 1)) + FLAME_EXPRESSION_NAMES[-5:]


def _forward(flame, params, n_expression, eyelid_dirs):
    """FLAME vertices (frames, V, 3) for bridge parameter rows (frames, P)."""
    params = np.atleast_2d(params)
    pose = np.zeros((len(params), 15))
    pose[:, 6:9] = params[:, n_expression:n_expression + 3]
    out = flame_forward(flame, expression=params[:, :n_expression], pose=pose).vertices_m
    if eyelid_dirs is not None:
        # eyelid blendshapes act on the rest mesh; with no pose on the eyes they add directly
        out = out + np.einsum("vcj,fj->fvc", eyelid_dirs, params[:, n_expression + 3:])
    return out


def _ridge(basis, targets, ridge):
    """``argmin |basis·x − t|² + ridge·|D x|²`` per target column, D the column norms (so the
    penalty is on each parameter's own displacement). basis (R, P), targets (R, K)."""
    norms = np.maximum(np.linalg.norm(basis, axis=0), 1e-30)
    scaled = basis / norms
    gram = scaled.T @ scaled
    lhs = gram + ridge * np.eye(len(norms))
    return np.linalg.solve(lhs, scaled.T @ targets) / norms[:, None]


def fit_parameters(flame: FlameModel, transfer: Transfer, n_expression: int,
                   eyelid_dirs: np.ndarray | None = None, ridge: float = 1e-4,
                   progress: Progress | None = None):
    """FLAME parameters (52, P) for the 52 transferred targets, and the per-shape residuals.

    Expression coefficients for every shape; the jaw rotation too for :data:`JAW_SHAPES`
    (linearised by central differences, then ``_GAUSS_NEWTON_STEPS`` Gauss–Newton steps
    through the forward model); the eyelid blendshapes too for :data:`EYELID_SHAPES` when
    given. Returns (params, residuals, metric) with ``metric`` (P, P) = GᵀWG of the
    linearised model (metres², the reverse bridge's metric).
    """
    report = progress or (lambda fraction, message: None)
    n_params = n_expression + 5
    weight = np.sqrt(transfer.fit_weight)
    rows = weight > 0
    rest = flame.v_template_m
    columns = [flame.expression_dirs[:, :, :n_expression]]
    steps = np.zeros((6, n_params))
    for axis in range(3):
        steps[2 * axis, n_expression + axis] = _JAW_STEP_RAD
        steps[2 * axis + 1, n_expression + axis] = -_JAW_STEP_RAD
    jaw_out = _forward(flame, steps, n_expression, None)
    columns.append(np.stack([(jaw_out[2 * a] - jaw_out[2 * a + 1]) / (2 * _JAW_STEP_RAD)
                             for a in range(3)], axis=-1))
    columns.append(np.zeros(rest.shape + (2,)) if eyelid_dirs is None else eyelid_dirs)
    basis_full = np.concatenate(columns, axis=-1)  # (V, 3, P)
    basis = (basis_full[rows] * weight[rows, None, None]).reshape(-1, n_params)
    targets = (transfer.targets_m[:, rows] * weight[None, rows, None]).reshape(len(ARKIT52), -1).T

    params = np.zeros((len(ARKIT52), n_params))
    expression = np.arange(n_expression)
    groups = {"plain": (expression, [n for n in ARKIT52 if n not in JAW_SHAPES + EYELID_SHAPES]),
              "jaw": (np.r_[expression, n_expression + np.arange(3)], list(JAW_SHAPES)),
              "eyelid": (np.r_[expression, n_expression + 3 + np.arange(2)] if eyelid_dirs is not None
                         else expression, list(EYELID_SHAPES))}
    for columns_used, names in groups.values():
        index = [ARKIT52.index(n) for n in names]
        params[np.ix_(index, columns_used)] = _ridge(basis[:, columns_used], targets[:, index], ridge).T
    report(0.7, "fitting the jaw shapes through the FLAME forward model")

    # Gauss–Newton on the jaw shapes: the jaw is a rotation, not a blendshape
    jaw_index = [ARKIT52.index(n) for n in JAW_SHAPES]
    used = np.r_[expression, n_expression + np.arange(3)]
    goal = rest[None] + transfer.targets_m[jaw_index]
    for _ in range(_GAUSS_NEWTON_STEPS):
        current = params[jaw_index]
        probes = np.concatenate([current] + [current + s for s in steps])
        out = _forward(flame, probes, n_expression, eyelid_dirs)
        k = len(jaw_index)
        value, plus_minus = out[:k], out[k:].reshape(6, k, -1, 3)
        jaw_jac = np.stack([(plus_minus[2 * a] - plus_minus[2 * a + 1]) / (2 * _JAW_STEP_RAD)
                            for a in range(3)], axis=-1)  # (k, V, 3, 3)
        blended = _blended_rotations(flame, current, n_expression)  # (k, V, 3, 3)
        exp_jac = np.einsum("kvab,vbe->kvae", blended, flame.expression_dirs[:, :, :n_expression])
        for i, shape in enumerate(jaw_index):
            jac = np.concatenate([exp_jac[i], jaw_jac[i]], axis=-1)[rows] * weight[rows, None, None]
            residual = ((goal[i] - value[i])[rows] * weight[rows, None]).reshape(-1, 1)
            # ridge on the whole parameter vector, solved for the step
            norms = np.maximum(np.linalg.norm(jac.reshape(-1, len(used)), axis=0), 1e-30)
            scaled = jac.reshape(-1, len(used)) / norms
            lhs = scaled.T @ scaled + ridge * np.eye(len(used))
            rhs = scaled.T @ residual[:, 0] - ridge * current[i, used] * norms
            params[shape, used] = current[i, used] + np.linalg.solve(lhs, rhs) / norms

    # residuals through the full forward model, over the face region
    out = _forward(flame, params, n_expression, eyelid_dirs) - rest[None]
    face = transfer.face
    error = np.sqrt(np.sum((out[:, face] - transfer.targets_m[:, face]) ** 2, axis=(1, 2)))
    size = np.sqrt(np.sum(transfer.targets_m[:, face] ** 2, axis=(1, 2)))
    residuals = np.where(size > 1e-9 * max(face.sum(), 1) ** 0.5, error / np.maximum(size, 1e-30), np.nan)
    metric = basis.T @ basis
    return params, residuals, metric


def _blended_rotations(flame, params, n_expression):
    """Per-vertex blended linear part of the skinning transforms (k, V, 3, 3) at the rest
    joints of the shaped mesh, for parameter rows ``params`` (k, P)."""
    pose = np.zeros((len(params), flame.n_joints, 3))
    pose[:, 2] = params[:, n_expression:n_expression + 3]
    shaped = flame.v_template_m + np.einsum("vce,ke->kvc", flame.expression_dirs[:, :, :n_expression],
                                            params[:, :n_expression])
    joints = flame.j_regressor @ shaped  # (k, J, 3)
    transforms = skinning_transforms(rodrigues(pose), joints, flame.parents)
    return np.einsum("vj,kjab->kvab", flame.weights, transforms[:, :, :3, :3])


def reverse_matrix(arkit_to_flame: np.ndarray, metric: np.ndarray, shapes=ARKIT_OBSERVABLE,
                   ridge: float = 1e-4) -> np.ndarray:
    """The FLAME → ARKit map (P, 52): for parameters p, the weights w minimising
    ``|G(Bw − p)|² + μ|w|²`` — the ARKit weights whose bridged FLAME mesh is nearest p's mesh
    (G the linearised FLAME model over the face region, ``metric = GᵀG``; μ = ``ridge`` × the
    mean diagonal of BᵀGᵀGB). Only ``shapes`` are solved for; the other rows are zero."""
    index = [ARKIT52.index(n) for n in shapes]
    b = arkit_to_flame[index].T  # (P, S)
    gram = b.T @ metric @ b
    mu = ridge * np.trace(gram) / len(index)
    solved = np.linalg.solve(gram + mu * np.eye(len(index)), b.T @ metric)  # (S, P)
    out = np.zeros((arkit_to_flame.shape[1], len(ARKIT52)))
    out[:, index] = solved.T
    return out


# --------------------------------------------------------------------------------------------
# the bridge


@dataclass(frozen=True)
class Bridge:
    """ARKit-52 ↔ FLAME parameters, computed from one FLAME file.

    ``arkit_to_flame`` (52, P): row k is the FLAME parameters of ARKit shape k at weight 1, so
    ``params = weights @ arkit_to_flame`` (the ``arkit @ matrix`` convention of known bridges).
    ``flame_to_arkit`` (P, 52): ``weights = clip(params @ flame_to_arkit, 0, 1)``; non-zero
    only for ``reverse_shapes``. Parameters are ``parameter_names``: expression 1..N, jaw
    axis-angle (radians, FLAME's frame), eyelids (zero columns when the file has none).
    ``residuals`` (52,): relative RMS misfit per shape over the face region (NaN where a shape
    moves nothing on FLAME, e.g. tongueOut). Registration residuals in metres (RMS).
    """

    arkit_to_flame: np.ndarray
    flame_to_arkit: np.ndarray
    parameter_names: tuple[str, ...]
    residuals: np.ndarray
    registration_residual_m: float
    registration_relative: float
    rigid_residual_m: float
    sha256: str
    n_expression: int
    has_eyelids: bool
    reverse_shapes: tuple[str, ...] = ARKIT_OBSERVABLE
    shape_names: tuple[str, ...] = ARKIT52
    meta: dict = field(default_factory=dict)

    def residual(self, shape: str) -> float:
        return float(self.residuals[self.shape_names.index(shape)])

    def worst_residual(self, shapes=ARKIT_OBSERVABLE) -> tuple[str, float]:
        """(shape, residual) of the worst-fitting of ``shapes``."""
        values = {s: self.residual(s) for s in shapes if np.isfinite(self.residual(s))}
        name = max(values, key=values.get)
        return name, values[name]

    def summary(self, shapes=ARKIT_OBSERVABLE) -> str:
        """One line for the user: which bridge, how well it fits."""
        name, worst = self.worst_residual(shapes)
        fitted = self.residuals[[self.shape_names.index(s) for s in shapes]]
        return (f"computed ARKit→FLAME bridge (FLAME file sha256 {self.sha256[:12]}…): fit residual "
                f"median {np.nanmedian(fitted):.1%}, worst {worst:.1%} ({name}) over "
                f"{len(shapes)} shapes; registration residual "
                f"{self.registration_residual_m * 1e3:.2f} mm")

    def residual_table(self) -> list[tuple[str, float, tuple[str, ...]]]:
        """Per ARKit shape: (name, residual, the parameter groups it uses) for a report."""
        rows = []
        for k, name in enumerate(self.shape_names):
            row = self.arkit_to_flame[k]
            n = self.n_expression
            parts = (("expression", row[:n]), ("jaw", row[n:n + 3]), ("eyelids", row[n + 3:]))
            groups = tuple(group for group, part in parts if np.any(part != 0))
            rows.append((name, float(self.residuals[k]), groups))
        return rows

    def to_flame(self, weights: np.ndarray) -> np.ndarray:
        """FLAME parameters (frames, P) from ARKit weights (frames, 52)."""
        return np.asarray(weights, dtype=np.float64) @ self.arkit_to_flame

    def to_arkit(self, params: np.ndarray) -> np.ndarray:
        """ARKit weights (frames, 52) in [0, 1] from FLAME parameters (frames, P)."""
        return np.clip(np.asarray(params, dtype=np.float64) @ self.flame_to_arkit, 0.0, 1.0)

    def _columns(self, track: ExpressionTrack, names, space: str) -> np.ndarray:
        if track.space != space:
            raise InputError(f"the bridge maps the {space!r} space here; the track is in "
                             f"{track.space!r}")
        filled, missing = track.with_names(names)
        if len(missing) == len(names):
            raise InputError(f"none of the track's names are {space} names the bridge knows")
        return filled.values

    def _meta(self, track: ExpressionTrack) -> dict:
        return {**track.meta, "bridge": self.sha256, "bridge_summary": self.summary()}

    def forward_track(self, track: ExpressionTrack) -> ExpressionTrack:
        """An ``arkit52`` track as a ``flame`` track (missing ARKit names count as 0)."""
        params = self.to_flame(self._columns(track, self.shape_names, "arkit52"))
        return ExpressionTrack(params, self.parameter_names, track.fps, "flame", "1",
                               track.start_s, self._meta(track))

    def reverse_track(self, track: ExpressionTrack) -> ExpressionTrack:
        """A ``flame`` track (e.g. from a tracker or a FLAME rig) as an ``arkit52`` track in
        [0, 1]; parameters the track lacks count as 0."""
        weights = self.to_arkit(self._columns(track, self.parameter_names, "flame"))
        return ExpressionTrack(weights, self.shape_names, track.fps, "arkit52", "1",
                               track.start_s, self._meta(track))

    def save(self, path: str | Path) -> Path:
        """Write the bridge as an ``.npz`` (atomically). It derives from the FLAME file:
        keep it in the user's folders, never in the repository or a package."""
        path = Path(path)
        with atomic_file(path) as temporary:
            with open(temporary, "wb") as handle:
                np.savez(handle, arkit_to_flame=self.arkit_to_flame,
                         flame_to_arkit=self.flame_to_arkit,
                         parameter_names=np.array(self.parameter_names),
                         shape_names=np.array(self.shape_names),
                         reverse_shapes=np.array(self.reverse_shapes),
                         residuals=self.residuals,
                         registration=np.array([self.registration_residual_m,
                                                self.registration_relative, self.rigid_residual_m]),
                         sha256=np.array(self.sha256), n_expression=np.array(self.n_expression),
                         has_eyelids=np.array(self.has_eyelids), version=np.array(BRIDGE_VERSION),
                         meta_json=np.array(json.dumps(self.meta, default=str)))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Bridge":
        """Read a bridge written by :meth:`save`; raises InputError if it is not one (or an
        older version)."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                if int(data["version"]) != BRIDGE_VERSION:
                    raise InputError(f"{path}: a bridge of version {int(data['version'])}, "
                                     f"this is version {BRIDGE_VERSION}")
                registration = data["registration"]
                return cls(arkit_to_flame=data["arkit_to_flame"],
                           flame_to_arkit=data["flame_to_arkit"],
                           parameter_names=tuple(str(s) for s in data["parameter_names"]),
                           residuals=data["residuals"],
                           registration_residual_m=float(registration[0]),
                           registration_relative=float(registration[1]),
                           rigid_residual_m=float(registration[2]),
                           sha256=str(data["sha256"]), n_expression=int(data["n_expression"]),
                           has_eyelids=bool(data["has_eyelids"]),
                           reverse_shapes=tuple(str(s) for s in data["reverse_shapes"]),
                           shape_names=tuple(str(s) for s in data["shape_names"]),
                           meta={**json.loads(str(data["meta_json"])), "cached": str(path)})
        except (OSError, KeyError, ValueError, EOFError) as exc:
            raise InputError(f"{path}: not a readable bridge file ({exc})") from None

    def as_retarget(self):
        """The forward map as a :class:`~eifer_blender.core.expression.retarget.Retarget`
        (for code paths that take a user's matrix)."""
        from ..expression.retarget import Retarget

        return Retarget(self.arkit_to_flame.T.copy(), self.shape_names, self.parameter_names,
                        "arkit52", "flame", None, f"computed bridge sha256:{self.sha256}")


def build_bridge(flame: FlameModel, head: OpenHead | None = None, n_expression: int = 50,
                 eyelid_dirs: np.ndarray | None = None, sha256: str = "", ridge: float = 1e-4,
                 reverse_ridge: float = 1e-4, progress: Progress | None = None) -> Bridge:
    """Compute the ARKit ↔ FLAME bridge for ``flame`` (see the module notes).

    Parameters
    ----------
    flame : FlameModel
        The user's model (:func:`~.flame_file.load_flame_model`).
    head : OpenHead, optional
        The ARKit source (default: the shipped open head).
    n_expression : int
        How many expression coefficients the bridge uses (default 50, the ``flame`` space).
    eyelid_dirs : (V, 3, 2) array, optional
        Eyelid blendshapes [left, right] where the file has them.
    progress : callable ``(fraction, message)``, optional

    Raises
    ------
    InputError
        The template is not a face: the open head does not register onto it (the message
        gives the registration residual).
    """
    report = progress or (lambda fraction, message: None)
    started = time.perf_counter()
    head = head or load_open_head()
    n_expression = int(n_expression)
    if not 1 <= n_expression <= flame.n_expression:
        raise InputError(f"the bridge can use 1..{flame.n_expression} expression coefficients of "
                         f"this FLAME model, not {n_expression}")
    registration = register_open_head(head, flame, report)
    name = Path(flame.source).name or "the FLAME model"
    if not registration.coverage >= MIN_COVERAGE:
        raise InputError(
            f"{name}: its template does not look like a face: registering the open head onto "
            f"it leaves a residual of {registration.residual_m * 1e3:.2f} mm RMS "
            f"({registration.relative_residual:.1%} of the eye distance; a face gives about "
            f"1–3 %), and only {registration.coverage:.0%} of the surface found a counterpart "
            f"(a face: over {MIN_COVERAGE:.0%}). Check that this is a FLAME model file; no "
            f"bridge was made.")
    report(0.55, "carrying the ARKit targets onto the FLAME template")
    transfer = transfer_targets(head, flame, registration)
    report(0.6, "fitting FLAME parameters to each ARKit shape")
    params, residuals, metric = fit_parameters(flame, transfer, n_expression, eyelid_dirs, ridge,
                                               report)
    report(0.95, "computing the reverse bridge")
    reverse = reverse_matrix(params, metric, ARKIT_OBSERVABLE, reverse_ridge)
    report(1.0, "bridge ready")
    return Bridge(
        arkit_to_flame=params, flame_to_arkit=reverse, parameter_names=parameter_names(n_expression),
        residuals=residuals, registration_residual_m=registration.residual_m,
        registration_relative=registration.relative_residual,
        rigid_residual_m=registration.rigid_residual_m, sha256=sha256, n_expression=n_expression,
        has_eyelids=eyelid_dirs is not None,
        meta={"flame_version": flame.version, "flame_source": str(flame.source),
              "face_vertices": int(transfer.face.sum()), "build_s": time.perf_counter() - started,
              "similarity_scale": registration.scale, "ridge": ridge,
              "reverse_ridge": reverse_ridge, "bridge_version": BRIDGE_VERSION})


# --------------------------------------------------------------------------------------------
# cache


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_INDEX_NAME = "flame_bridge_index.json"


def _known_sha256(path: Path, cache_dir: Path) -> tuple[str, bool]:
    """(the file's sha256, whether the cache folder's index already knew it): the hash is
    remembered per (path, size, mtime) so a cache hit does not re-read a large FLAME file."""
    stat = path.stat()
    stamp = [stat.st_size, stat.st_mtime_ns]
    try:
        index = json.loads((cache_dir / _INDEX_NAME).read_text())
    except (OSError, ValueError):
        index = {}
    entry = index.get(str(path.resolve())) if isinstance(index, dict) else None
    if isinstance(entry, dict) and entry.get("stamp") == stamp and isinstance(entry.get("sha256"), str):
        return entry["sha256"], True
    return file_sha256(path), False


def _remember_sha256(path: Path, cache_dir: Path, sha: str) -> None:
    """Add the file's hash to the cache folder's index (only once a bridge is cached for it)."""
    stat = path.stat()
    index_path = cache_dir / _INDEX_NAME
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError):
        index = {}
    index = index if isinstance(index, dict) else {}
    index[str(path.resolve())] = {"stamp": [stat.st_size, stat.st_mtime_ns], "sha256": sha}
    try:
        with atomic_file(index_path) as temporary:
            temporary.write_text(json.dumps(index, indent=1))
    except (OSError, InputError):
        pass  # the index only saves time


def bridge_cache_path(cache_dir: str | Path, sha256: str, n_expression: int = 50) -> Path:
    return Path(cache_dir) / f"flame_bridge_{sha256[:24]}_exp{n_expression}_v{BRIDGE_VERSION}.npz"


def load_or_build_bridge(flame_path: str | Path, cache_dir: str | Path,
                         progress: Progress | None = None, n_expression: int = 50,
                         head: OpenHead | None = None) -> Bridge:
    """The bridge for the user's FLAME file: from the cache if built before, else built (a few
    seconds) and cached.

    Parameters
    ----------
    flame_path : the user's FLAME ``.pkl``/``.npz`` (read by the restricted loader).
    cache_dir : the folder for the cache, e.g. Blender's ``extension_path_user`` — never the
        repository or the extension package (the bridge derives from FLAME).
    progress : callable ``(fraction, message)``, optional.
    n_expression : expression coefficients to use (default 50, the ``flame`` space; fewer if
        the file has fewer).

    Returns
    -------
    Bridge
        ``meta["cached"]`` names the cache file when it came from there.

    Raises
    ------
    FlameModelError
        The file is not a readable FLAME model.
    InputError
        Its template is not a face (nothing is cached).
    """
    flame_path, cache_dir = Path(flame_path), Path(cache_dir)
    report = progress or (lambda fraction, message: None)
    if not flame_path.is_file():
        raise InputError(f"{flame_path}: no such FLAME model file")
    sha, known = _known_sha256(flame_path, cache_dir)
    cached = bridge_cache_path(cache_dir, sha, n_expression)
    if cached.is_file():
        try:
            bridge = Bridge.load(cached)
            if bridge.sha256 == sha and bridge.meta.get("requested_expression") == n_expression:
                if not known:
                    _remember_sha256(flame_path, cache_dir, sha)
                report(1.0, "bridge loaded from the cache")
                return bridge
        except InputError:
            pass  # damaged or old: rebuild over it
    report(0.0, f"reading {flame_path.name}")
    flame = load_flame_model(flame_path)  # (its eyelid blendshapes checked and kept, when the file has them)
    bridge = build_bridge(flame, head=head, n_expression=min(n_expression, flame.n_expression),
                          eyelid_dirs=flame.eyelid_dirs, sha256=sha,
                          progress=report)
    bridge.meta["requested_expression"] = n_expression
    # only a bridge that was made touches the cache folder (a file that is not a face leaves none)
    cache_dir.mkdir(parents=True, exist_ok=True)
    bridge.save(cached)
    _remember_sha256(flame_path, cache_dir, sha)
    return bridge
