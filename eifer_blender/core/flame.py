"""FLAME head model: safe loading of the user's own model file and a numpy forward model.

FLAME cannot be shipped (FACTS §5), so the user points the extension at their copy of FLAME 2020
(``generic_model.pkl``), FLAME 2023 (``flame2023.pkl``, ``flame2023_no_jaw.pkl``) or FLAME 2023
Open (``flame2023_Open.pkl``), or at an ``.npz`` with the same keys.

The official pickles are Python-2 pickles that reference ``chumpy`` classes and
``scipy.sparse`` matrices. A pickle can run any code while it loads, so this module never calls
``pickle.load`` on a user file: :func:`restricted_unpickle` allows only the numpy and
scipy.sparse reconstruction globals, maps the chumpy classes to inert stand-ins that keep their
pickled state, and refuses everything else *before* it could run.

The forward model is the SMPL-style reference used by FLAME_PyTorch/DECA/SMIRK, vectorised over
frames, in float64 metres in FLAME's frame (Y up, face looking +Z)::

    v_shaped = v_template + shapedirs · [shape ‖ expression]
    joints   = J_regressor · v_shaped
    R_j      = rodrigues(pose_j)                         (5 joints: root, neck, jaw, eye L, eye R)
    v_posed  = v_shaped + posedirs · (R[1:] − I).ravel()   (pose correctives; root drives none)
    vertices = Σ_j weights_j · A_j · v_posed                (linear blend skinning)

:func:`flame_to_blender` converts points (and axis-angle vectors) to Blender's frame.
"""
from __future__ import annotations

import importlib
import io
import json
import pickle
import re
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .errors import InputError

# --------------------------------------------------------------------------------------------
# Layout constants (FACTS §5)

FLAME_REQUIRED_KEYS: tuple[str, ...] = (
    "v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table",
)
FLAME_JOINT_NAMES: tuple[str, ...] = ("root", "neck", "jaw", "eye_left", "eye_right")
FLAME_N_VERTICES = 5023
FLAME_N_FACES = 9976
FLAME_N_EXPRESSION_TOTAL = 100
FLAME_POSE_SIZE = 3 * len(FLAME_JOINT_NAMES)  # 15: five axis-angle rotations

_WEIGHT_SUM_TOLERANCE = 1e-3


class FlameModelError(InputError):
    """A FLAME model file is missing, damaged, malformed or not a FLAME model."""


class UnsafePickleError(FlameModelError):
    """A pickle asked to run something a FLAME model never needs; nothing of it was run."""


# --------------------------------------------------------------------------------------------
# Restricted unpickling


class _ChumpyStandIn:
    """Inert stand-in for a chumpy object: keeps the pickled state, runs nothing."""

    chumpy_name = "chumpy.ch.Ch"

    def __new__(cls, *args, **kwargs):  # NEWOBJ passes the class' __getnewargs__, ignore them
        instance = object.__new__(cls)
        instance.state = {}
        return instance

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {"_state": state}


class _SparseStandIn:
    """Inert stand-in for a pickled scipy.sparse matrix; rebuilt from its arrays afterwards."""

    sparse_format = "csc"

    def __new__(cls, *args, **kwargs):
        instance = object.__new__(cls)
        instance.state = {}
        return instance

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {"_state": state}


class _RefusedGlobal(pickle.UnpicklingError):
    def __init__(self, qualified_name: str):
        super().__init__(qualified_name)
        self.qualified_name = qualified_name


def _numpy_internal(submodule: str, name: str):
    """``numpy._core.<sub>.<name>`` (numpy 2) or ``numpy.core.<sub>.<name>`` (numpy 1)."""
    for package in ("numpy._core", "numpy.core"):
        try:
            module = importlib.import_module(f"{package}.{submodule}")
        except ImportError:
            continue
        if hasattr(module, name):
            return getattr(module, name)
    raise _RefusedGlobal(f"numpy.core.{submodule}.{name}")


def _safe_reconstructor(cls, base, state):
    """``copyreg._reconstructor`` limited to plain ``object`` bases (protocol 0/1 pickles)."""
    if base is not object or state is not None:
        raise _RefusedGlobal("copyreg._reconstructor with a base class other than object")
    return cls.__new__(cls)


def _latin1_encode(text, encoding="latin1"):
    """``_codecs.encode`` as Python 3 writes bytes into protocol-2 pickles; latin-1 only."""
    if str(encoding).lower().replace("_", "-") not in ("latin1", "latin-1", "iso-8859-1"):
        raise _RefusedGlobal(f"_codecs.encode with encoding {encoding!r}")
    return str(text).encode("latin1")


_SPARSE_CLASS_NAMES = {
    "csc_matrix": "csc", "csr_matrix": "csr", "csc_array": "csc", "csr_array": "csr",
}
_CHUMPY_MODULES = ("chumpy.ch", "chumpy.reordering", "chumpy.ch_ops")
_NUMPY_INTERNALS = {
    ("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only an allow-list of globals; see :func:`restricted_unpickle`."""

    def __init__(self, file, **kwargs):
        super().__init__(file, **kwargs)
        self._chumpy_classes: dict[str, type] = {}

    def find_class(self, module: str, name: str):  # noqa: C901 - one flat allow-list
        qualified = f"{module}.{name}"
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise _RefusedGlobal(qualified)
        for package in ("numpy.core.", "numpy._core."):
            if module.startswith(package) and (module[len(package):], name) in _NUMPY_INTERNALS:
                return _numpy_internal(module[len(package):], name)
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if module == "numpy.dtypes" and name.endswith("DType"):
            dtypes = importlib.import_module("numpy.dtypes")
            if hasattr(dtypes, name):
                return getattr(dtypes, name)
        if (module == "scipy.sparse" or module.startswith("scipy.sparse.")) \
                and name in _SPARSE_CLASS_NAMES:
            return type(name, (_SparseStandIn,), {"sparse_format": _SPARSE_CLASS_NAMES[name]})
        if module in _CHUMPY_MODULES:
            if qualified not in self._chumpy_classes:
                self._chumpy_classes[qualified] = type(
                    name, (_ChumpyStandIn,), {"chumpy_name": qualified})
            return self._chumpy_classes[qualified]
        if module in ("__builtin__", "builtins") and name in ("set", "frozenset", "object"):
            return {"set": set, "frozenset": frozenset, "object": object}[name]
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            return _safe_reconstructor
        if module == "_codecs" and name == "encode":
            return _latin1_encode
        if module == "collections" and name == "OrderedDict":
            import collections
            return collections.OrderedDict
        raise _RefusedGlobal(qualified)


def restricted_unpickle(file, source: str | Path, what: str = "a FLAME model") -> Any:
    """Unpickle ``file`` allowing only what FLAME model and parameter pickles contain.

    Allowed: numpy array/dtype/scalar reconstruction (numpy 1 and 2 names), scipy.sparse
    csc/csr matrices (returned as inert stand-ins, see :func:`resolve_arrays`), chumpy
    ``chumpy.ch`` / ``chumpy.reordering`` / ``chumpy.ch_ops`` objects (inert stand-ins), sets.
    Python 2 strings are read as latin-1, as the official FLAME files need.

    Parameters
    ----------
    file : binary file object
        Positioned at the start of the pickle stream.
    source : str or Path
        The file's name, used in error messages.
    what : str
        What the file should hold, for the refusal message.

    Returns
    -------
    object
        The unpickled object; chumpy and sparse values are still stand-ins.

    Raises
    ------
    UnsafePickleError
        The stream references any other global; it is refused before that global is resolved,
        so nothing it asked for runs.
    FlameModelError
        The stream is truncated or damaged.
    """
    try:
        return _RestrictedUnpickler(file, encoding="latin1").load()
    except _RefusedGlobal as exc:
        raise UnsafePickleError(
            f"{source}: refused: the file asks to run {exc.qualified_name}, which {what} "
            f"never needs. Nothing in it was run. Use the file as its tool wrote it, or a .npz "
            f"with plain arrays."
        ) from None
    except EOFError:
        raise FlameModelError(
            f"{source}: the file ends early (truncated download or copy?); download it again."
        ) from None
    except MemoryError:
        raise FlameModelError(f"{source}: the file asks for more memory than is available; "
                              f"it is damaged or not a FLAME file.") from None
    except (pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            struct.error, UnicodeError, OverflowError, RecursionError) as exc:
        raise FlameModelError(
            f"{source}: not a readable pickle (damaged or truncated file?): {exc}"
        ) from None


# --------------------------------------------------------------------------------------------
# Turning stand-ins into arrays

_MAX_CHUMPY_DEPTH = 32


def _evaluate_chumpy(value, source, key, depth=0) -> np.ndarray:
    """Evaluate a chumpy stand-in to the ndarray chumpy would compute."""
    if depth > _MAX_CHUMPY_DEPTH:
        raise FlameModelError(f"{source}: key {key!r} nests chumpy objects too deeply.")
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (int, float, list, tuple)) and not isinstance(value, bool):
        return np.asarray(value)
    if not isinstance(value, _ChumpyStandIn):
        raise FlameModelError(
            f"{source}: key {key!r} holds a {type(value).__name__} inside a chumpy object, "
            f"expected an array.")
    state, kind = value.state, value.chumpy_name.rsplit(".", 1)[1]
    operand = next((state[k] for k in ("x", "a") if k in state), None)
    if operand is None:
        raise FlameModelError(
            f"{source}: key {key!r} is a chumpy {value.chumpy_name} without an array "
            f"(state keys: {sorted(map(str, state))}).")
    array = _evaluate_chumpy(operand, source, key, depth + 1)
    if kind == "Ch":
        return array
    if kind == "Select":  # chumpy: a.r.ravel()[idxs].reshape(preferred_shape)
        selected = array.ravel()[np.asarray(state["idxs"], dtype=np.int64)]
        shape = state.get("preferred_shape")
        return selected.reshape(shape) if shape is not None else selected
    if kind == "Reshape":
        return array.reshape(state["newshape"])
    if kind == "transpose":
        return np.transpose(array, state.get("axes"))
    raise FlameModelError(
        f"{source}: key {key!r} is a chumpy {value.chumpy_name} expression, which this loader "
        f"does not evaluate (only Ch, Select, Reshape, transpose). Convert the model to .npz "
        f"where chumpy is installed.")


def _sparse_to_dense(value: _SparseStandIn, source, key) -> np.ndarray:
    state = value.state
    try:
        data = np.asarray(state["data"], dtype=np.float64)
        indices = np.asarray(state["indices"], dtype=np.int64)
        indptr = np.asarray(state["indptr"], dtype=np.int64)
        shape = tuple(int(n) for n in (state["_shape"] if "_shape" in state else state["shape"]))
    except (KeyError, TypeError, ValueError):
        raise FlameModelError(
            f"{source}: key {key!r} is a damaged sparse matrix (state keys: "
            f"{sorted(map(str, state))}).") from None
    import scipy.sparse

    build = scipy.sparse.csc_matrix if value.sparse_format == "csc" else scipy.sparse.csr_matrix
    try:
        matrix = build((data, indices, indptr), shape=shape)
        matrix.check_format(full_check=True)
    except (ValueError, TypeError, IndexError) as exc:
        raise FlameModelError(f"{source}: key {key!r} is a damaged sparse matrix: {exc}") from None
    return matrix.toarray()


def resolve_arrays(value, source: str | Path, key: str = "value"):
    """Replace chumpy and sparse stand-ins (also inside dicts/lists) with dense ndarrays."""
    if isinstance(value, _ChumpyStandIn):
        return _evaluate_chumpy(value, source, key)
    if isinstance(value, _SparseStandIn):
        return _sparse_to_dense(value, source, key)
    if isinstance(value, dict):
        return {k: resolve_arrays(v, source, f"{key}.{k}" if key != "value" else str(k))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(resolve_arrays(v, source, key) for v in value)
    return value


# --------------------------------------------------------------------------------------------
# The model


@dataclass
class FlameModel:
    """A validated FLAME model, float64, metres, FLAME frame (Y up, face looking +Z).

    ``shapedirs[..., :n_shape]`` is identity, ``shapedirs[..., n_shape:]`` expression.
    ``parents[0] == -1``; every other joint's parent has a smaller index.
    """

    v_template_m: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3) int64
    shapedirs: np.ndarray  # (V, 3, n_shape + n_expression), metres per unit coefficient
    posedirs: np.ndarray  # (V, 3, 9 * (J - 1)), metres per unit pose-feature entry
    j_regressor: np.ndarray  # (J, V) dense
    weights: np.ndarray  # (V, J)
    parents: np.ndarray  # (J,) int64
    n_shape: int
    n_expression: int
    version: str  # "2020", "2023", "2023 (no jaw)", "2023 Open" or "2020 or 2023"
    version_basis: str  # what the version was read from
    source: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def n_vertices(self) -> int:
        return self.v_template_m.shape[0]

    @property
    def n_joints(self) -> int:
        return self.parents.shape[0]

    @property
    def shape_dirs(self) -> np.ndarray:
        """Identity basis (V, 3, n_shape)."""
        return self.shapedirs[..., : self.n_shape]

    @property
    def expression_dirs(self) -> np.ndarray:
        """Expression basis (V, 3, n_expression)."""
        return self.shapedirs[..., self.n_shape:]


def detect_flame_version(arrays: Mapping[str, Any], source: str | Path = "") -> tuple[str, str]:
    """Tell FLAME 2020, 2023 and 2023 Open apart.

    2023 Open carries ``supr_expression_metadata``. FLAME 2020 and 2023 files have the same keys
    and shapes, so without that key only the official file name can tell them apart; a renamed
    file is reported honestly as ``"2020 or 2023"``.

    Returns
    -------
    (version, basis) : tuple of str
        ``basis`` is ``"supr_expression_metadata key"``, ``"file name"`` or ``"none"``.
    """
    if "supr_expression_metadata" in arrays:
        return "2023 Open", "supr_expression_metadata key"
    name = Path(str(source)).name.lower()
    if "2023" in name and "open" in name:
        # renamed Open model stripped of its metadata: say what is known, not more
        return "2023 Open", "file name"
    if "flame2023" in name or "flame_2023" in name:
        return ("2023 (no jaw)" if "no_jaw" in name else "2023"), "file name"
    if name.startswith(("generic_model", "male_model", "female_model")) or "2020" in name:
        return "2020", "file name"
    return "2020 or 2023", "none"


def _expect_shape(array: np.ndarray, expected: tuple, key: str, source, meaning: str) -> None:
    """Raise naming the key when ``array.shape`` does not match (``None`` = any size)."""
    ok = array.ndim == len(expected) and all(
        e is None or e == g for e, g in zip(expected, array.shape))
    if not ok:
        shown = "(" + ", ".join("any" if e is None else str(e) for e in expected) + ")"
        raise FlameModelError(
            f"{source}: key {key!r} has shape {tuple(array.shape)}, expected {shown} "
            f"({meaning}).")


def _numeric(value, key: str, source) -> np.ndarray:
    try:
        array = np.asarray(value)
    except Exception:  # noqa: BLE001 - any failure means "not an array"
        array = None
    if array is None or array.dtype.kind not in "fiub":
        kind = type(value).__name__ if array is None else f"{array.dtype} array"
        raise FlameModelError(f"{source}: key {key!r} holds a {kind}, expected numbers.")
    return array


def _parents_from_kintree(kintree: np.ndarray, source) -> np.ndarray:
    """SMPL convention: row 1 = joint ids, row 0 = parent ids (root's parent is ignored)."""
    ids = [int(i) for i in kintree[1]]
    column_of = {joint_id: column for column, joint_id in enumerate(ids)}
    if len(column_of) != len(ids):
        raise FlameModelError(f"{source}: key 'kintree_table' lists a joint twice: {ids}.")
    parents = np.full(len(ids), -1, dtype=np.int64)
    for column in range(1, len(ids)):
        parent_id = int(kintree[0, column])
        if parent_id not in column_of or column_of[parent_id] >= column:
            raise FlameModelError(
                f"{source}: key 'kintree_table' gives joint {column} the parent {parent_id}, "
                f"which is not an earlier joint; the joint tree is broken.")
        parents[column] = column_of[parent_id]
    return parents


def flame_model_from_arrays(arrays: Mapping[str, Any],
                            source: str | Path = "<arrays>") -> FlameModel:
    """Validate FLAME arrays (from a pickle or npz) and build a :class:`FlameModel`.

    Raises
    ------
    FlameModelError
        Naming the file and the key: missing keys, wrong shapes (expected vs got), non-numeric
        values, NaN/Inf, face indices out of range, broken joint tree, skinning weights that do
        not sum to 1, unsupported skinning style.
    """
    if not isinstance(arrays, Mapping):
        raise FlameModelError(
            f"{source}: holds a {type(arrays).__name__}, not a FLAME model (a dict of arrays).")
    missing = [k for k in FLAME_REQUIRED_KEYS if k not in arrays]
    if missing:
        found = ", ".join(sorted(map(str, arrays))) or "nothing"
        raise FlameModelError(
            f"{source}: not a complete FLAME model, missing key(s) {', '.join(missing)} "
            f"(found: {found}).")
    resolved = {k: resolve_arrays(arrays[k], source, k) for k in FLAME_REQUIRED_KEYS}
    a = {k: _numeric(v, k, source) for k, v in resolved.items()}

    v_template = a["v_template"]
    if v_template.ndim != 2 or v_template.shape[1] != 3 or v_template.shape[0] < 1:
        _expect_shape(v_template, (None, 3), "v_template", source, "vertices × xyz")
    n_vertices = v_template.shape[0]
    kintree = a["kintree_table"]
    if kintree.ndim != 2 or kintree.shape[0] != 2 or kintree.shape[1] < 1:
        _expect_shape(kintree, (2, None), "kintree_table", source, "parent ids / joint ids")
    n_joints = kintree.shape[1]
    _expect_shape(a["weights"], (n_vertices, n_joints), "weights", source, "vertices × joints")
    _expect_shape(a["J_regressor"], (n_joints, n_vertices), "J_regressor", source,
                  "joints × vertices")
    _expect_shape(a["posedirs"], (n_vertices, 3, 9 * (n_joints - 1)), "posedirs", source,
                  "vertices × xyz × 9 per non-root joint")
    _expect_shape(a["shapedirs"], (n_vertices, 3, None), "shapedirs", source,
                  "vertices × xyz × (identity + expression)")
    _expect_shape(a["f"], (None, 3), "f", source, "triangles × 3 vertex indices")

    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights"):
        finite = np.isfinite(a[key])
        if not finite.all():
            raise FlameModelError(
                f"{source}: key {key!r} contains {int((~finite).sum())} NaN/Inf value(s); "
                f"the file is damaged.")

    faces = a["f"]
    if faces.dtype.kind == "f":
        if not np.array_equal(faces, np.round(faces)):
            raise FlameModelError(f"{source}: key 'f' holds fractional vertex indices.")
    faces = faces.astype(np.int64)
    out_of_range = faces[(faces < 0) | (faces >= n_vertices)]
    if out_of_range.size:
        raise FlameModelError(
            f"{source}: key 'f' refers to vertex {int(out_of_range[0])}, but the model has "
            f"vertices 0..{n_vertices - 1}.")

    weights = a["weights"].astype(np.float64)
    weight_sums = weights.sum(axis=1)
    worst = int(np.argmax(np.abs(weight_sums - 1.0)))
    if (weights < 0).any() or abs(weight_sums[worst] - 1.0) > _WEIGHT_SUM_TOLERANCE:
        raise FlameModelError(
            f"{source}: key 'weights' is not a skinning-weight table (each vertex's weights "
            f"must be ≥ 0 and sum to 1; vertex {worst} sums to {weight_sums[worst]:.6g}).")

    parents = _parents_from_kintree(kintree, source)

    metadata = arrays.get("supr_expression_metadata")
    n_total = a["shapedirs"].shape[2]
    n_expression = FLAME_N_EXPRESSION_TOTAL
    try:
        if isinstance(metadata, np.ndarray) and metadata.dtype.kind in "US" and metadata.ndim == 0:
            metadata = json.loads(str(metadata))  # npz written by save_flame_npz
        if isinstance(metadata, Mapping) and "n_expr" in metadata:
            n_expression = int(metadata["n_expr"])
        if "n_expression" in arrays:
            n_expression = int(np.asarray(arrays["n_expression"]))
    except (TypeError, ValueError):
        raise FlameModelError(f"{source}: the expression count in 'supr_expression_metadata' "
                              f"or 'n_expression' is not a number.") from None
    if not 0 < n_expression < n_total:
        raise FlameModelError(
            f"{source}: key 'shapedirs' has {n_total} columns; a FLAME model has identity "
            f"columns followed by {n_expression} expression columns (300 + 100 = 400).")

    for key, wanted in (("bs_style", "lbs"), ("bs_type", "lrotmin")):
        value = arrays.get(key)
        if value is not None:
            text = value.decode("latin1") if isinstance(value, bytes) else str(np.asarray(value))
            if text != wanted:
                raise FlameModelError(
                    f"{source}: key {key!r} is {text!r}; only {wanted!r} models (linear blend "
                    f"skinning with rotation-matrix correctives) are supported.")

    version, basis = detect_flame_version(arrays, source)
    if "flame_version" in arrays and basis == "none":  # npz written by save_flame_npz
        version, basis = str(np.asarray(arrays["flame_version"])), "flame_version key"
    meta: dict = {}
    if isinstance(metadata, Mapping):
        meta["supr_expression_metadata"] = dict(metadata)
    for key in ("bs_style", "bs_type"):
        if key in arrays:
            meta[key] = str(np.asarray(arrays[key]))
    if arrays.get("_skipped_keys"):
        meta["skipped_keys"] = list(arrays["_skipped_keys"])
    return FlameModel(
        v_template_m=v_template.astype(np.float64),
        faces=faces,
        shapedirs=a["shapedirs"].astype(np.float64),
        posedirs=a["posedirs"].astype(np.float64),
        j_regressor=a["J_regressor"].astype(np.float64),
        weights=weights,
        parents=parents,
        n_shape=n_total - n_expression,
        n_expression=n_expression,
        version=version,
        version_basis=basis,
        source=str(source),
        meta=meta,
    )


_PICKLE_SUFFIXES = (".pkl", ".pickle", ".p")


def _sniff(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(8)
    if not head:
        raise FlameModelError(f"{path}: the file is empty.")
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "npz"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head[:1] == b"\x80" and 2 <= head[1] <= 5:
        return "pickle"
    if path.suffix.lower() in _PICKLE_SUFFIXES and head[:1] in (b"(", b"}", b"c", b"]"):
        return "pickle"  # protocol 0/1
    return "unknown"


def _read_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise FlameModelError(
                f"{path}: an array in this .npz stores Python objects; these are refused "
                f"because loading them could run code. Save plain numeric arrays.") from None
        raise FlameModelError(f"{path}: not a readable .npz (damaged?): {exc}") from None
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as exc:
        raise FlameModelError(
            f"{path}: not a readable .npz (truncated or damaged file?): {exc}") from None


def read_flame_file(path: str | Path) -> dict:
    """Read a FLAME ``.pkl`` (restricted unpickler) or ``.npz`` into a dict of plain values.

    Chumpy and sparse values come back as dense ndarrays; nothing is validated yet (see
    :func:`flame_model_from_arrays`).
    """
    path = Path(path)
    if not path.is_file():
        raise FlameModelError(f"{path}: no such file (set the FLAME model path in the "
                              f"preferences to your own generic_model.pkl / flame2023*.pkl).")
    kind = _sniff(path)
    if kind == "npz":
        return _read_npz(path)
    if kind == "pickle":
        with open(path, "rb") as handle:
            loaded = restricted_unpickle(io.BufferedReader(handle, buffer_size=1 << 20), path)
        if not isinstance(loaded, dict):
            raise FlameModelError(
                f"{path}: holds a {type(loaded).__name__}, not a FLAME model (a dict of arrays).")
        arrays, skipped = {}, []
        for key, value in loaded.items():
            key = str(key)
            try:
                arrays[key] = resolve_arrays(value, path, key)
            except FlameModelError:
                if key in FLAME_REQUIRED_KEYS:
                    raise
                skipped.append(key)  # an extra the model does not need: leave it out
        if skipped:
            arrays["_skipped_keys"] = skipped
        return arrays
    raise FlameModelError(
        f"{path}: not a FLAME model file; expected a FLAME .pkl (Python pickle) or a .npz.")


def load_flame_model(path: str | Path) -> FlameModel:
    """Load and validate the user's FLAME 2020 / 2023 / 2023 Open model (``.pkl`` or ``.npz``).

    Parameters
    ----------
    path : str or Path
        ``generic_model.pkl``, ``flame2023.pkl``, ``flame2023_no_jaw.pkl``, ``flame2023_Open.pkl``
        or an ``.npz`` with the same keys (``J_regressor`` dense).

    Returns
    -------
    FlameModel

    Raises
    ------
    UnsafePickleError
        The pickle references code a FLAME model never needs (nothing is run).
    FlameModelError
        Missing, truncated, malformed or non-FLAME file; the message names file and key.
    """
    return flame_model_from_arrays(read_flame_file(path), Path(path))


def save_flame_npz(model: FlameModel, path: str | Path) -> Path:
    """Write ``model`` as an ``.npz`` of plain arrays (fast to load, no pickle).

    The result stays under the FLAME licence of the source file: never commit or ship it.
    """
    path = Path(path)
    kintree = np.stack([np.where(model.parents < 0, 4294967295, model.parents),
                        np.arange(model.n_joints)]).astype(np.int64)
    extra = {}
    if "supr_expression_metadata" in model.meta:
        extra["supr_expression_metadata"] = np.array(
            json.dumps(model.meta["supr_expression_metadata"], default=str))
    np.savez(path, v_template=model.v_template_m, f=model.faces, shapedirs=model.shapedirs,
             posedirs=model.posedirs, J_regressor=model.j_regressor, weights=model.weights,
             kintree_table=kintree, n_expression=np.array(model.n_expression),
             flame_version=np.array(model.version), **extra)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


# --------------------------------------------------------------------------------------------
# Forward model


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


def assemble_pose(global_pose=None, neck_pose=None, jaw_pose=None, eye_pose=None,
                  n_frames: int | None = None) -> np.ndarray:
    """FLAME's 15-value pose ``[root 3 | neck 3 | jaw 3 | eye L 3 | eye R 3]`` (axis-angle, rad).

    Each part is ``(3,)`` / ``(frames, 3)`` (``eye_pose`` 6); missing parts are zero. Returns
    ``(15,)`` when every part is a single vector and ``n_frames`` is None, else ``(frames, 15)``.
    """
    parts = [(global_pose, 3, "global_pose"), (neck_pose, 3, "neck_pose"),
             (jaw_pose, 3, "jaw_pose"), (eye_pose, 6, "eye_pose")]
    arrays = []
    batched = n_frames is not None
    for value, width, name in parts:
        if value is None:
            arrays.append(None)
            continue
        array = np.asarray(value, dtype=np.float64)
        if array.shape[-1] != width or array.ndim > 2:
            raise ValueError(f"{name} must have shape ({width},) or (frames, {width}), "
                             f"got {array.shape}")
        if array.ndim == 2:
            batched = True
            if n_frames is None:
                n_frames = array.shape[0]
            elif array.shape[0] != n_frames:
                raise ValueError(f"{name} has {array.shape[0]} frames, expected {n_frames}")
        arrays.append(array)
    frames = n_frames if batched else 1
    pose = np.zeros((frames, FLAME_POSE_SIZE))
    offsets = (0, 3, 6, 9)
    for array, (_, width, _), start in zip(arrays, parts, offsets):
        if array is not None:
            pose[:, start:start + width] = array
    return pose if batched else pose[0]


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


def shape_vertices(model: FlameModel, shape=None, expression=None) -> np.ndarray:
    """``v_template + shapedirs · [shape ‖ expression]`` in metres.

    ``shape`` ``(n,)`` or ``(frames, n)`` with n ≤ ``model.n_shape``; ``expression`` likewise
    with n ≤ ``model.n_expression`` (e.g. the first 50 as SMIRK/EMOCA/DECA use). Returns
    ``(V, 3)`` or ``(frames, V, 3)``.
    """
    batch = _batch_shape(shape, expression)
    betas = np.concatenate([
        _coefficients(shape, model.n_shape, "shape", batch),
        _coefficients(expression, model.n_expression, "expression", batch)], axis=-1)
    return model.v_template_m + _apply_basis(model.shapedirs, betas)


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


def joint_locations(model: FlameModel, vertices_m: np.ndarray) -> np.ndarray:
    """Joints regressed from shaped vertices: ``(..., V, 3) -> (..., J, 3)`` metres."""
    return model.j_regressor @ np.asarray(vertices_m, dtype=np.float64)


def identity_joints(model: FlameModel, shape=None, expression=None) -> np.ndarray:
    """Rest joint locations ``(J, 3)`` for an identity (and expression, which moves them too)."""
    return joint_locations(model, shape_vertices(model, shape, expression))


def pose_feature(rotations: np.ndarray) -> np.ndarray:
    """Corrective drivers ``(R[1:] − I)``, row-major: ``(..., J, 3, 3) -> (..., 9(J−1))``."""
    r = np.asarray(rotations, dtype=np.float64)
    return (r[..., 1:, :, :] - np.eye(3)).reshape(r.shape[:-3] + (9 * (r.shape[-3] - 1),))


def corrective_basis(model: FlameModel) -> np.ndarray:
    """Pose-corrective shape offsets ``(9(J−1), V, 3)`` metres: entry p moves vertices by
    ``basis[p] · pose_feature[p]``. Shape key p for a driven rig (FLAME frame; convert with
    :func:`flame_to_blender`)."""
    return np.moveaxis(model.posedirs, -1, 0)


def pose_correctives(model: FlameModel, rotations: np.ndarray) -> np.ndarray:
    """Vertex offsets ``(..., V, 3)`` from joint rotations ``(..., J, 3, 3)``."""
    return _apply_basis(model.posedirs, pose_feature(rotations))


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


def flame_forward(model: FlameModel, shape=None, expression=None, pose=None,
                  translation_m=None) -> FlameOutput:
    """The FLAME reference: shape, expression, pose correctives and linear blend skinning.

    Parameters
    ----------
    model : FlameModel
    shape : array ``(n,)`` or ``(frames, n)``, optional
        Identity coefficients, n ≤ ``model.n_shape`` (missing ones are zero).
    expression : array ``(n,)`` or ``(frames, n)``, optional
        Expression coefficients, n ≤ ``model.n_expression``.
    pose : array ``(15,)`` or ``(frames, 15)``, optional
        Axis-angle radians, ``[root | neck | jaw | eye L | eye R]`` (see :func:`assemble_pose`).
    translation_m : array ``(3,)`` or ``(frames, 3)``, optional
        Added to every vertex and joint.

    Returns
    -------
    FlameOutput
        float64 metres in FLAME's frame; batched over frames when any input is.
    """
    v_shaped = shape_vertices(model, shape, expression)
    rest_joints = joint_locations(model, v_shaped)
    pose_array = np.zeros(FLAME_POSE_SIZE) if pose is None else np.asarray(pose, dtype=np.float64)
    if pose_array.shape[-1] != 3 * model.n_joints:
        raise ValueError(f"pose must have {3 * model.n_joints} values per frame, "
                         f"got shape {pose_array.shape}")
    rotations = rodrigues(pose_array.reshape(pose_array.shape[:-1] + (model.n_joints, 3)))
    batch = np.broadcast_shapes(v_shaped.shape[:-2], rotations.shape[:-3])
    v_shaped = np.broadcast_to(v_shaped, batch + v_shaped.shape[-2:])
    rest_joints = np.broadcast_to(rest_joints, batch + rest_joints.shape[-2:])
    rotations = np.broadcast_to(rotations, batch + rotations.shape[-3:])
    v_posed = v_shaped + pose_correctives(model, rotations)
    transforms = skinning_transforms(rotations, rest_joints, model.parents)
    vertices = linear_blend_skinning(v_posed, model.weights, transforms)
    joints = global_transforms(rotations, rest_joints, model.parents)[..., :3, 3]
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


def describe_flame_model(model: FlameModel) -> str:
    """One line for logs and the UI: version, sizes, source."""
    return (f"FLAME {model.version} ({model.n_vertices} vertices, {len(model.faces)} faces, "
            f"{model.n_shape} identity + {model.n_expression} expression components, "
            f"{model.n_joints} joints) from {Path(model.source).name or model.source}")
