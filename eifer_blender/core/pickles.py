"""Restricted unpickling of user pickles (FLAME models, tracker parameter files): no code runs.

The official FLAME pickles are Python-2 pickles that reference ``chumpy`` classes and
``scipy.sparse`` matrices. A pickle can run any code while it loads (Python docs, ``pickle``:
"Warning: The pickle module is not secure"; https://docs.python.org/3/library/pickle.html), so
this package never calls ``pickle.load`` on a user file: :func:`restricted_unpickle` allows only
the numpy and scipy.sparse reconstruction globals, maps the chumpy classes to inert stand-ins
that keep their pickled state, and refuses everything else *before* it could run
(the ``find_class`` hook of "Restricting Globals" in the same page).
"""
from __future__ import annotations

import importlib
import pickle
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FlameModelError, UnsafePickleError


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


# Budgets sized from the real files: FLAME 2020 and 2023 pickles are 50-300 MB, their dense arrays
# (shapedirs 5023 x 3 x 400 float64 = 48 MB the largest) a few hundred MB together.
MAX_PICKLE_BYTES = 1 << 30  # 1 GiB: more than three times the largest FLAME file
MAX_ARRAY_BYTES = 768 << 20  # dense arrays made while resolving (sparse -> dense, chumpy selections)
MAX_DEPTH = 64  # nested containers; a FLAME file nests dicts of arrays two or three deep


class _Bounded:
    """A binary file whose reads never ask for more than it holds (a hostile length prefix cannot
    make the unpickler allocate gigabytes for a 200-byte file)."""

    def __init__(self, file, size: int):
        self.file, self.left = file, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.file.read(n)
        self.left -= len(data)
        return data

    def readinto(self, buffer) -> int:
        view = memoryview(buffer)[:self.left]
        count = self.file.readinto(view)
        self.left -= count
        return count

    def readline(self, limit: int = -1) -> bytes:
        line = self.file.readline(self.left if limit is None or limit < 0 else min(limit, self.left))
        self.left -= len(line)
        return line


def _stream_size(file, source) -> int:
    try:
        start = file.tell()
        size = file.seek(0, 2) - start
        file.seek(start)
    except (AttributeError, OSError):
        return MAX_PICKLE_BYTES
    if size > MAX_PICKLE_BYTES:
        raise FlameModelError(f"{source}: {size / 2 ** 20:.0f} MB is far larger than any FLAME file "
                              f"(50-300 MB); refused")
    return size


class _RestrictedUnpickler(pickle._Unpickler):
    """The pure-Python unpickler (its memo is a dict, so a hostile memo index cannot allocate a
    huge table as the C one's array would), resolving only an allow-list of globals."""
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
        The stream is truncated, damaged or larger than ``MAX_PICKLE_BYTES``.
    """
    try:
        return _RestrictedUnpickler(_Bounded(file, _stream_size(file, source)), encoding="latin1").load()
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


def _sparse_to_dense(value: _SparseStandIn, source, key, budget: list[int] | None = None) -> np.ndarray:
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
    dense_bytes = 8 * int(np.prod(shape, dtype=object)) if all(n >= 0 for n in shape) else 0
    if budget is not None:
        if dense_bytes > budget[0]:
            raise FlameModelError(f"{source}: key {key!r} is a sparse matrix of shape {shape}, "
                                  f"{dense_bytes / 2 ** 20:.0f} MB dense: far more than a FLAME model holds; refused")
        budget[0] -= dense_bytes
    import scipy.sparse

    build = scipy.sparse.csc_matrix if value.sparse_format == "csc" else scipy.sparse.csr_matrix
    try:
        matrix = build((data, indices, indptr), shape=shape)
        matrix.check_format(full_check=True)
    except (ValueError, TypeError, IndexError) as exc:
        raise FlameModelError(f"{source}: key {key!r} is a damaged sparse matrix: {exc}") from None
    return matrix.toarray()


def resolve_arrays(value, source: str | Path, key: str = "value"):
    """Replace chumpy and sparse stand-ins (also inside dicts/lists) with dense ndarrays.

    Shared references are resolved once and stay shared (a pickle can reference one list from
    many places: walked per path, 60 levels of pairs would take 2^60 steps); containers nested
    deeper than ``MAX_DEPTH``, a container that holds itself, and dense results beyond
    ``MAX_ARRAY_BYTES`` are refused with a :class:`FlameModelError`.
    """
    return _Resolver(source).resolve(value, key, 0)


class _Resolver:
    def __init__(self, source):
        self.source, self.done, self.active, self.budget = source, {}, set(), [MAX_ARRAY_BYTES]

    def resolve(self, value, key: str, depth: int):
        if isinstance(value, (np.ndarray, str, bytes, int, float, bool, type(None))):
            return value
        ident = id(value)
        if ident in self.done:
            return self.done[ident]
        if ident in self.active:
            raise FlameModelError(f"{self.source}: {key!r} contains itself; no FLAME file does (damaged or "
                                  f"crafted file)")
        if depth > MAX_DEPTH:
            raise FlameModelError(f"{self.source}: {key!r} nests containers more than {MAX_DEPTH} deep; "
                                  f"no FLAME file does (damaged or crafted file)")
        self.active.add(ident)
        if isinstance(value, _ChumpyStandIn):
            out = _evaluate_chumpy(value, self.source, key)
        elif isinstance(value, _SparseStandIn):
            out = _sparse_to_dense(value, self.source, key, self.budget)
        elif isinstance(value, dict):
            out = {k: self.resolve(v, f"{key}.{k}" if key != "value" else str(k), depth + 1)
                   for k, v in value.items()}
        elif isinstance(value, (list, tuple)):
            out = type(value)(self.resolve(v, key, depth + 1) for v in value)
        else:
            out = value
        self.active.discard(ident)
        self.done[ident] = out
        return out
