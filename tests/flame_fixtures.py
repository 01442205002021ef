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
