"""Reading the user's own FLAME model file into a validated :class:`FlameModel` (no FLAME ships).

The user points the extension at their copy of FLAME 2020 (``generic_model.pkl``), FLAME 2023
(``flame2023.pkl``, ``flame2023_no_jaw.pkl``) or FLAME 2023 Open (``flame2023_Open.pkl``), or at an
``.npz`` with the same keys (Li et al., "Learning a model of facial shape and expression from 4D
scans", SIGGRAPH Asia 2017; https://flame.is.tue.mpg.de). Pickles go through the restricted
unpickler of :mod:`eifer_blender.core.pickles`.
"""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import FlameModelError
from ..pickles import resolve_arrays, restricted_unpickle

FLAME_REQUIRED_KEYS: tuple[str, ...] = (
    "v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table",
)
FLAME_N_EXPRESSION_TOTAL = 100

_WEIGHT_SUM_TOLERANCE = 1e-3


@dataclass
class FlameModel:
    """A validated FLAME model, float64, metres, FLAME frame (Y up, face looking +Z).

    ``shapedirs[..., :n_shape]`` is identity, ``shapedirs[..., n_shape:]`` expression.
    ``parents[0] == -1``; every other joint's parent has a smaller index. ``eyelid_dirs``
    (V, 3, 2) [left, right]: eyelid-closure blendshapes where the file has them (SMIRK's
    ``l_eyelid``/``r_eyelid``, or ``eyelid_dirs``), else None; they act on the rest mesh, before
    skinning, like the expression basis.
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
    eyelid_dirs: np.ndarray | None = None  # (V, 3, 2) [left, right], metres per unit

    @property
    def has_eyelids(self) -> bool:
        return self.eyelid_dirs is not None

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
    eyelid_dirs = _eyelid_dirs(arrays, n_vertices, source)
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
        eyelid_dirs=eyelid_dirs,
    )


def _eyelid_dirs(arrays: Mapping[str, Any], n_vertices: int, source) -> np.ndarray | None:
    """Eyelid blendshapes (V, 3, 2) from ``eyelid_dirs`` (V, 3, 2) or SMIRK's ``l_eyelid`` and
    ``r_eyelid`` ((V, 3) each); None when the file has neither. Present but malformed is an error:
    the user expects the eyelids to move."""
    if "eyelid_dirs" in arrays:
        keys, parts = ("eyelid_dirs",), [_numeric(resolve_arrays(arrays["eyelid_dirs"], source,
                                                                  "eyelid_dirs"), "eyelid_dirs", source)]
        expected = [(n_vertices, 3, 2)]
    elif "l_eyelid" in arrays and "r_eyelid" in arrays:
        keys = ("l_eyelid", "r_eyelid")
        parts = [_numeric(resolve_arrays(arrays[k], source, k), k, source) for k in keys]
        expected = [(n_vertices, 3)] * 2
    else:
        return None
    for key, part, shape in zip(keys, parts, expected):
        _expect_shape(part, shape, key, source, "eyelid blendshape: vertices × xyz")
        if not np.all(np.isfinite(part)):
            raise FlameModelError(f"{source}: key {key!r} contains NaN/Inf values; the file is damaged.")
    dirs = parts[0] if len(parts) == 1 else np.stack(parts, axis=-1)
    return dirs.astype(np.float64)


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


def save_flame_npz(flame: FlameModel, path: str | Path) -> Path:
    """Write ``flame`` as an ``.npz`` of plain arrays (fast to load, no pickle).

    The result stays under the FLAME licence of the source file: never commit or ship it.
    """
    path = Path(path)
    kintree = np.stack([np.where(flame.parents < 0, 4294967295, flame.parents),
                        np.arange(flame.n_joints)]).astype(np.int64)
    extra = {}
    if flame.eyelid_dirs is not None:
        extra["eyelid_dirs"] = flame.eyelid_dirs
    if "supr_expression_metadata" in flame.meta:
        extra["supr_expression_metadata"] = np.array(
            json.dumps(flame.meta["supr_expression_metadata"], default=str))
    np.savez(path, v_template=flame.v_template_m, f=flame.faces, shapedirs=flame.shapedirs,
             posedirs=flame.posedirs, J_regressor=flame.j_regressor, weights=flame.weights,
             kintree_table=kintree, n_expression=np.array(flame.n_expression),
             flame_version=np.array(flame.version), **extra)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")
