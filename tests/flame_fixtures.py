"""Synthetic FLAME-format files for tests (the real FLAME model may never enter the repo).

Arrays are random but well formed and have the real layout: ``v_template`` (V, 3) metres,
``f`` (F, 3) uint32, ``shapedirs`` (V, 3, 300 + 100), ``posedirs`` (V, 3, 36), ``J_regressor``
(5, V) scipy csc, ``weights`` (V, 5) rows summing to 1, ``kintree_table`` (2, 5) with the root's
parent stored as 4294967295, ``J`` (5, 3), ``bs_style``/``bs_type``.

Writers:

- :func:`write_flame2020_pkl`: a Python-2-style protocol-2 pickle as the official
  ``generic_model.pkl``: strings as py2 ``str`` (BINSTRING), ``shapedirs`` a ``chumpy.ch.Ch``
  object (GLOBAL ``chumpy.ch Ch``, NEWOBJ, BUILD with chumpy's ``__getstate__`` dict),
  ``J_regressor`` a ``scipy.sparse.csc csc_matrix``. chumpy need not be installed: the stream
  is written opcode by opcode.
- :func:`write_flame2023_open_pkl`: plain numpy arrays pickled by Python 3 with
  ``supr_expression_metadata``, as ``flame2023_Open.pkl``.
- :func:`write_flame_npz`, plus malformed variants and code-running payloads.

``SMALL`` gives a small-vertex model for fast (Blender) tests; the defaults are the real sizes.
"""
from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path

import numpy as np
import scipy.sparse

REAL_SIZES = dict(n_vertices=5023, n_faces=9976, n_shape=300, n_expression=100)
SMALL = dict(n_vertices=60, n_faces=96, n_shape=300, n_expression=100)
OPEN_METADATA = {"expr_source": "SUPR", "supr_gender": "neutral",
                 "expr_components": "last_100", "n_expr": 100}
N_JOINTS = 5
ROOT_PARENT = 4294967295  # how the official files store "no parent"


def make_flame_arrays(n_vertices: int = 5023, n_faces: int = 9976, n_shape: int = 300,
                      n_expression: int = 100, seed: int = 0, dtype=np.float64) -> dict:
    """Random, well-formed FLAME arrays of the given sizes (``J_regressor`` as scipy csc)."""
    rng = np.random.default_rng(seed)
    # a head-sized ellipsoid of points, metres
    directions = rng.normal(size=(n_vertices, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    v_template = directions * np.array([0.08, 0.11, 0.10]) + np.array([0.0, 0.02, 0.0])

    # triangles with three distinct vertices each
    first = rng.integers(0, n_vertices, n_faces)
    step1 = rng.integers(1, n_vertices, n_faces)
    step2 = rng.integers(1, n_vertices - 1, n_faces)
    step2 = np.where(step2 >= step1, step2 + 1, step2)
    faces = np.stack([first, (first + step1) % n_vertices, (first + step2) % n_vertices], 1)

    n_joints = N_JOINTS
    shapedirs = rng.normal(scale=1e-3, size=(n_vertices, 3, n_shape + n_expression))
    posedirs = rng.normal(scale=5e-3, size=(n_vertices, 3, 9 * (n_joints - 1)))

    weights = rng.random((n_vertices, n_joints)) ** 4  # mostly one dominant joint per vertex
    weights /= weights.sum(axis=1, keepdims=True)

    per_joint = min(12, n_vertices)
    rows = np.repeat(np.arange(n_joints), per_joint)
    cols = np.concatenate([rng.choice(n_vertices, per_joint, replace=False)
                           for _ in range(n_joints)])
    values = rng.random(n_joints * per_joint) + 0.1
    values /= np.bincount(rows, weights=values)[rows]  # each joint a convex combination
    j_regressor = scipy.sparse.csc_matrix((values, (rows, cols)), shape=(n_joints, n_vertices))

    kintree = np.array([[ROOT_PARENT, 0, 1, 1, 1], np.arange(n_joints)], dtype=np.int64)
    return {
        "v_template": v_template.astype(dtype),
        "f": faces.astype(np.uint32),
        "shapedirs": shapedirs.astype(dtype),
        "posedirs": posedirs.astype(dtype),
        "J_regressor": j_regressor.astype(dtype),
        "weights": weights.astype(dtype),
        "kintree_table": kintree,
        "J": np.asarray(j_regressor @ v_template).astype(dtype),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }


# --------------------------------------------------------------------------------------------
# Python-2-style pickle writer


class PickledAs:
    """An object to be written as an instance of ``module.name`` with ``state`` (NEWOBJ+BUILD)."""

    def __init__(self, module: str, name: str, state: dict):
        self.module, self.name, self.state = module, name, state


def chumpy_ch(array: np.ndarray) -> PickledAs:
    """A ``chumpy.ch.Ch`` holding ``array``, with the state dict chumpy's ``__getstate__`` gives
    (``__dict__`` minus ``_parents`` and ``_cache``)."""
    return PickledAs("chumpy.ch", "Ch", {
        "_dirty_vars": set(), "_itr": None, "_depends_on_deps": {},
        "_make_dense": False, "_make_sparse": False, "x": np.asarray(array),
    })


def chumpy_select(base: PickledAs, idxs: np.ndarray, preferred_shape) -> PickledAs:
    """A ``chumpy.reordering.Select`` over ``base`` (how MANO slices its shapedirs)."""
    return PickledAs("chumpy.reordering", "Select", {
        "_dirty_vars": set(), "_itr": None, "_depends_on_deps": {},
        "_make_dense": False, "_make_sparse": False,
        "a": base, "idxs": np.asarray(idxs), "preferred_shape": tuple(preferred_shape),
    })


def old_scipy_csc(matrix) -> PickledAs:
    """A csc matrix as pre-1.8 scipy pickled it (module ``scipy.sparse.csc``)."""
    matrix = scipy.sparse.csc_matrix(matrix)
    return PickledAs("scipy.sparse.csc", "csc_matrix", {
        "_shape": matrix.shape, "maxprint": 50, "format": "csc",
        "data": matrix.data, "indices": matrix.indices.astype(np.int32),
        "indptr": matrix.indptr.astype(np.int32),
    })


class _Py2StylePickler(pickle._Pickler):  # the pure-Python pickler lets us write raw opcodes
    dispatch = pickle._Pickler.dispatch.copy()

    def __init__(self, file):
        super().__init__(file, protocol=2, fix_imports=True)

    def _write_binstring(self, data: bytes) -> None:
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)

    def save_py2_str(self, obj: str) -> None:  # Python 2 `str` -> BINSTRING
        if not obj.isascii():
            return pickle._Pickler.save_str(self, obj)
        self._write_binstring(obj.encode("ascii"))
        self.memoize(obj)

    def save_py2_bytes(self, obj: bytes) -> None:  # array buffers were py2 `str` too
        self._write_binstring(obj)
        self.memoize(obj)

    def save_pickled_as(self, obj: PickledAs) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("ascii"))
        self.write(pickle.EMPTY_TUPLE + pickle.NEWOBJ)
        self.memoize(obj)
        self.save(obj.state)
        self.write(pickle.BUILD)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_bytes
    dispatch[PickledAs] = save_pickled_as


def py2_pickle_bytes(obj) -> bytes:
    """Protocol-2 pickle of ``obj`` laid out as Python 2 wrote FLAME's files."""
    buffer = io.BytesIO()
    _Py2StylePickler(buffer).dump(obj)
    return buffer.getvalue()


def write_flame2020_pkl(path, arrays: dict | None = None, chumpy_keys=("shapedirs",),
                        **sizes) -> Path:
    """FLAME-2020-style ``generic_model.pkl`` (py2 pickle, chumpy ``shapedirs``, old csc)."""
    arrays = dict(arrays if arrays is not None else make_flame_arrays(**sizes))
    for key in chumpy_keys:
        arrays[key] = chumpy_ch(arrays[key])
    if scipy.sparse.issparse(arrays.get("J_regressor")):
        arrays["J_regressor"] = old_scipy_csc(arrays["J_regressor"])
    path = Path(path)
    path.write_bytes(py2_pickle_bytes(arrays))
    return path


def write_flame2023_open_pkl(path, arrays: dict | None = None, metadata: dict | None = None,
                             **sizes) -> Path:
    """FLAME-2023-Open-style pickle: plain arrays, modern csc, ``supr_expression_metadata``."""
    arrays = dict(arrays if arrays is not None else make_flame_arrays(**sizes))
    arrays["supr_expression_metadata"] = dict(OPEN_METADATA if metadata is None else metadata)
    path = Path(path)
    with open(path, "wb") as handle:
        pickle.dump(arrays, handle, protocol=2)
    return path


def write_flame_npz(path, arrays: dict | None = None, **sizes) -> Path:
    """``.npz`` with the model keys; ``J_regressor`` dense."""
    arrays = dict(arrays if arrays is not None else make_flame_arrays(**sizes))
    if scipy.sparse.issparse(arrays["J_regressor"]):
        arrays["J_regressor"] = arrays["J_regressor"].toarray()
    path = Path(path)
    np.savez(path, **arrays)
    return path


# --------------------------------------------------------------------------------------------
# Hostile and broken files


class _OpensFile:
    """Unpickling this calls ``builtins.open(target, "w")`` — creates the file."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


class _RunsShell:
    """Unpickling this calls ``os.system("touch target")``."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        import os
        return (os.system, (f"touch '{self.target}'",))


def malicious_pickle_bytes(target, kind: str = "open", inside_model: bool = False,
                           **sizes) -> bytes:
    """A pickle whose loading would create ``target`` (``kind`` "open", "os.system", "eval" or
    "subprocess"); ``inside_model`` hides the payload after the real FLAME keys."""
    target = str(target)
    if kind == "open":
        payload = _OpensFile(target)
    elif kind == "os.system":
        payload = _RunsShell(target)
    elif kind == "eval":
        payload = _Eval(f"open({target!r}, 'w')")
    elif kind == "subprocess":
        payload = _Subprocess(target)
    else:
        raise ValueError(kind)
    if not inside_model:
        return pickle.dumps(payload, protocol=2)
    arrays = make_flame_arrays(**(sizes or SMALL))
    arrays["J_regressor"] = arrays["J_regressor"].toarray()
    arrays["zz_payload"] = payload  # dicts keep insertion order: written after the arrays
    return pickle.dumps(arrays, protocol=2)


class _Eval:
    def __init__(self, source):
        self.source = source

    def __reduce__(self):
        return (eval, (self.source,))


class _Subprocess:
    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        import subprocess
        return (subprocess.call, (["touch", self.target],))


def truncate_file(source, destination, keep_fraction: float = 0.5) -> Path:
    """Copy the first ``keep_fraction`` of ``source`` to ``destination`` (a cut-off download)."""
    data = Path(source).read_bytes()
    destination = Path(destination)
    destination.write_bytes(data[: int(len(data) * keep_fraction)])
    return destination


# --------------------------------------------------------------------------------------------
# A FLAME-format *face* with a known ARKit answer (for the ARKit ↔ FLAME bridge)

FACE_KEEP_PARTS = ("skin", "mouth_inside", "eye_socket_L", "eye_socket_R", "eye_L", "eye_R")


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def face_warp(points_m, eye_centre_m, unit_m, jaw_widening: float = 0.18,
              face_lengthening: float = 0.14):
    """A smooth non-rigid warp in FLAME's frame (Y up): the face below the eyes is stretched
    down by ``face_lengthening`` and the jaw below the mouth widened by up to ``jaw_widening``.
    ``unit_m`` is the eye distance, the length scale of the blends."""
    rel = (np.asarray(points_m, dtype=np.float64) - eye_centre_m) / unit_m
    up = rel[..., 1]
    out = rel.copy()
    out[..., 0] *= 1.0 + jaw_widening * _sigmoid((-1.2 - up) / 0.3)
    out[..., 1] += face_lengthening * up * _sigmoid(-up / 0.3)
    return eye_centre_m + out * unit_m


def _rotation_xyz(degrees):
    from scipy.spatial.transform import Rotation
    return Rotation.from_euler("xyz", degrees, degrees=True).as_matrix()


def _remesh(head, n_vertices: int, rng):
    """The kept parts of the open head on a new topology: quads split along random diagonals,
    every vertex slid to a random point of one of its triangles, and ``n_vertices − kept``
    triangles split at their centroid. Returns (S (n_vertices × V_open) csr barycentric map,
    triangles, open-head part code per new vertex)."""
    keep = [head.part_names.index(p) for p in FACE_KEEP_PARTS]
    quads = head.faces[np.isin(head.face_part, keep)].astype(np.int64)
    used = np.unique(quads)
    remap = np.full(head.n_vertices, -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    quads = remap[quads]
    n_kept = len(used)
    flip = rng.random(len(quads)) < 0.5
    tris = np.concatenate([np.where(flip[:, None], quads[:, [0, 1, 2]], quads[:, [1, 2, 3]]),
                           np.where(flip[:, None], quads[:, [0, 2, 3]], quads[:, [1, 3, 0]])])
    # slide each vertex into one of its triangles (weight ≥ 0.7 on itself)
    owner = np.zeros(n_kept, dtype=np.int64)
    corner = np.zeros(n_kept, dtype=np.int64)
    owner[tris.ravel()] = np.repeat(np.arange(len(tris)), 3)
    corner[tris.ravel()] = np.tile(np.arange(3), len(tris))
    own_tri = tris[owner]
    others = np.stack([own_tri[np.arange(n_kept), (corner + 1) % 3],
                       own_tri[np.arange(n_kept), (corner + 2) % 3]], 1)
    self_w = 1.0 - rng.uniform(0.0, 0.3, n_kept)
    split = rng.random(n_kept)
    cols = np.concatenate([np.arange(n_kept)[:, None], others], 1)
    vals = np.stack([self_w, (1 - self_w) * split, (1 - self_w) * (1 - split)], 1)
    rows = np.repeat(np.arange(n_kept), 3)
    jitter = scipy.sparse.csr_matrix((vals.ravel(), (rows, cols.ravel())), shape=(n_kept, n_kept))
    n_split = n_vertices - n_kept
    if n_split < 1:
        raise ValueError(f"the kept open head has {n_kept} vertices; ask for more than that")
    chosen = rng.choice(len(tris), n_split, replace=False)
    centre_rows = np.repeat(np.arange(n_split), 3)
    centres = scipy.sparse.csr_matrix((np.full(3 * n_split, 1 / 3), (centre_rows, tris[chosen].ravel())),
                                      shape=(n_split, n_kept)) @ jitter
    new = n_kept + np.arange(n_split)
    a, b, c = tris[chosen].T
    kept_tris = np.delete(tris, chosen, axis=0)
    tris = np.concatenate([kept_tris, np.stack([a, b, new], 1), np.stack([b, c, new], 1),
                           np.stack([c, a, new], 1)])
    to_open = scipy.sparse.csr_matrix((np.ones(n_kept), (np.arange(n_kept), used)),
                                      shape=(n_kept, head.n_vertices))
    s_map = scipy.sparse.vstack([jitter, centres]).tocsr() @ to_open
    part = np.concatenate([head.vertex_part[used], head.vertex_part[used][tris[chosen][:, 0]]])
    return s_map.tocsr(), tris, part


def _affine_weights(vertices, point, k: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-norm weights on the ``k`` vertices nearest ``point`` that sum to 1 and
    reproduce it exactly (a J_regressor row)."""
    nearest = np.argsort(np.linalg.norm(vertices - point, axis=1))[:k]
    system = np.vstack([vertices[nearest].T, np.ones(k)])
    weights = np.linalg.lstsq(system, np.append(point, 1.0), rcond=None)[0]
    return nearest, weights


def make_face_flame_arrays(n_vertices: int = 5023, seed: int = 0, jaw_widening: float = 0.18,
                           face_lengthening: float = 0.14, scale: float = 0.95,
                           tilt_deg=(6.0, -4.0, 2.0), eyelids: bool = False,
                           n_expression: int = 100, n_packed_max: int = 50):
    """A FLAME-format face with a known ARKit answer, made from the open head.

    The open head's skin, mouth, eye sockets and eyeballs are remeshed (:func:`_remesh`: another
    vertex count and other triangles), put into FLAME's frame (Y up, face +Z), warped
    non-rigidly by :func:`face_warp` (longer face, wider jaw), scaled, tilted and moved. Each
    ARKit target is carried through the same map (``M(p + d) − M(p)``). The expression basis
    packs the observable targets (``spaces.ARKIT_OBSERVABLE``; for jawOpen, what a jaw rotation
    leaves) into ``n_expression`` components by a known random matrix Q: shape k is exactly
    ``expression = pinv(Q[:, :50])·e_k`` (plus the jaw angle for jawOpen). Joints: root, neck,
    jaw (at the open head's jaw pivot), eyes; skinning weights put the lower face on the jaw.
    With ``eyelids`` the two eyeBlink targets become ``l_eyelid``/``r_eyelid`` blendshapes
    (SMIRK's layout, (V, 3) each) instead of being packed.

    Returns
    -------
    arrays : dict
        FLAME keys (``J_regressor`` dense), ready for :func:`write_flame_npz`.
    answer : dict
        ``targets_m`` (52, V, 3) carried-over targets; ``face_mask`` (V,) skin vertices some
        observable target moves; ``expression`` (52, 50) and ``jaw_pose`` (52, 3) of the known
        answer (NaN rows for shapes not packed); ``proportions`` measured before/after.
    """
    from eifer_blender.core.expression.spaces import ARKIT52, ARKIT_OBSERVABLE
    from eifer_blender.core.heads import flame_model
    from eifer_blender.core.heads.openhead import load_open_head

    rng = np.random.default_rng(seed)
    head = load_open_head()
    s_map, tris, part = _remesh(head, n_vertices, rng)
    to_flame = flame_model.blender_to_flame
    rest_open = to_flame(head.vertices_m.astype(np.float64))
    deltas_open = to_flame(head.deltas_m.astype(np.float64))
    eye_l, eye_r = (to_flame(head.pivots_m[n].astype(np.float64)) for n in ("eye_L", "eye_R"))
    eye_centre, unit = 0.5 * (eye_l + eye_r), float(np.linalg.norm(eye_l - eye_r))
    origin = to_flame(head.pivots_m["head"].astype(np.float64))
    rotation = _rotation_xyz(tilt_deg)
    offset = np.array([0.004, -0.03, 0.012])

    def place(points):
        warped = face_warp(points, eye_centre, unit, jaw_widening, face_lengthening)
        return scale * (warped - origin) @ rotation.T + offset

    rest = s_map @ rest_open
    template = place(rest)
    targets = np.stack([place(rest + s_map @ d) - template for d in deltas_open])

    # joints and their regressor
    pivots = {"root": origin, "neck": origin + np.array([0.0, -0.07, -0.01]),
              "jaw": to_flame(head.pivots_m["jaw"].astype(np.float64)),
              "eye_L": eye_l, "eye_R": eye_r}
    joints = np.stack([place(pivots[n]) for n in ("root", "neck", "jaw", "eye_L", "eye_R")])
    j_regressor = np.zeros((N_JOINTS, n_vertices))
    for j, point in enumerate(joints):
        nearest, w = _affine_weights(template, point)
        j_regressor[j, nearest] = w

    jaw_index = ARKIT52.index("jawOpen")
    is_eye = np.isin(part, [head.part_names.index("eye_L"), head.part_names.index("eye_R")])
    jaw_w = np.clip(np.linalg.norm(targets[jaw_index], axis=1) / (0.4 * np.linalg.norm(
        targets[jaw_index], axis=1).max()), 0.0, 1.0) * ~is_eye
    weights = np.zeros((n_vertices, N_JOINTS))
    weights[:, 2] = jaw_w
    weights[:, 0] = 1.0 - jaw_w
    weights[part == head.part_names.index("eye_L")] = np.eye(N_JOINTS)[3]
    weights[part == head.part_names.index("eye_R")] = np.eye(N_JOINTS)[4]
    parents = np.array([-1, 0, 1, 1, 1])
    kintree = np.array([[ROOT_PARENT, 0, 1, 1, 1], np.arange(N_JOINTS)], dtype=np.int64)

    def skin(theta_x):
        pose = np.zeros((N_JOINTS, 3))
        pose[2, 0] = theta_x
        transforms = flame_model.skinning_transforms(flame_model.rodrigues(pose), joints, parents)
        return np.einsum("vj,jab->vab", weights, transforms[:, :3, :])  # (V, 3, 4)

    # the jaw angle that explains most of jawOpen; the rest goes into the expression basis
    angles = np.linspace(0.0, 0.6, 61)
    errors = []
    for theta in angles:
        blended = skin(theta)
        posed = np.einsum("vab,vb->va", blended[..., :3], template) + blended[..., 3]
        errors.append(np.sum((posed - template - targets[jaw_index]) ** 2))
    theta0 = float(angles[int(np.argmin(errors))])
    blended = skin(theta0)
    wanted = template + targets[jaw_index] - blended[..., 3]
    jaw_rest = np.linalg.solve(blended[..., :3], wanted[..., None])[..., 0] - template

    eyelid_names = ("eyeBlinkLeft", "eyeBlinkRight") if eyelids else ()
    packed_names = [n for n in ARKIT_OBSERVABLE if n not in eyelid_names][:n_packed_max]
    packed = np.stack([jaw_rest if n == "jawOpen" else targets[ARKIT52.index(n)]
                       for n in packed_names])
    mixing = rng.normal(size=(len(packed_names), n_expression))
    expression_dirs = np.einsum("kvc,ke->vce", packed, mixing)
    known = np.full((len(ARKIT52), 50), np.nan)
    inverse = np.linalg.pinv(mixing[:, :50])  # (50, m): Q50 · inverse = I
    for k, name in enumerate(packed_names):
        known[ARKIT52.index(name)] = inverse[:, k]
    jaw_pose = np.zeros((len(ARKIT52), 3))
    jaw_pose[jaw_index, 0] = theta0

    observable = [ARKIT52.index(n) for n in ARKIT_OBSERVABLE]
    moved = np.linalg.norm(targets[observable], axis=2).max(axis=0) > 1e-4
    face_mask = moved & ~is_eye

    chin = np.argmin(rest[:, 1])
    before = {"face_length_m": float(eye_centre[1] - rest[chin, 1])}
    after = {"face_length_m": float(np.linalg.norm(
        place(eye_centre[None])[0] - template[chin]) / scale)}
    low = (rest[:, 1] < eye_centre[1] - 1.5 * unit) & ~is_eye
    before["jaw_width_m"] = float(np.ptp(rest[low, 0]))
    after["jaw_width_m"] = float(np.ptp(face_warp(rest[low], eye_centre, unit, jaw_widening,
                                                 face_lengthening)[:, 0]))
    arrays = {
        "v_template": template,
        "f": tris.astype(np.uint32),
        "shapedirs": np.concatenate([np.zeros((n_vertices, 3, 300)), expression_dirs], axis=2),
        "posedirs": np.zeros((n_vertices, 3, 9 * (N_JOINTS - 1))),
        "J_regressor": j_regressor,
        "weights": weights,
        "kintree_table": kintree,
        "J": joints,
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }
    if eyelids:
        arrays["l_eyelid"] = targets[ARKIT52.index("eyeBlinkLeft")]
        arrays["r_eyelid"] = targets[ARKIT52.index("eyeBlinkRight")]
    answer = {"targets_m": targets, "face_mask": face_mask, "expression": known,
              "jaw_pose": jaw_pose, "packed": tuple(packed_names), "jaw_angle": theta0,
              "proportions": {"before": before, "after": after}, "part": part}
    return arrays, answer
