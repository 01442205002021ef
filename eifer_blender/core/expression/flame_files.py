"""FLAME parameter files, read and written in the layouts face trackers produce (see :mod:`.flame_params`).

CSV or CSV.gz tables (``mmm``, ``emoca``), ``.npy`` tables or saved dicts (through the restricted
unpickler: no code runs) and ``.npz`` named arrays.
"""
from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..atomic import atomic_file
from ..errors import InputError
from ..pickles import resolve_arrays, restricted_unpickle
from ..recording.csvparse import is_number
from .flame_params import (
    COMBINED_POSE_KEYS,
    DEFAULT_FPS,
    FPS_KEYS,
    KEY_ALIASES,
    LAYOUT_COLUMNS,
    LAYOUTS,
    FlameParams,
    layout_column_names,
    params_to_table,
)


def _open_text(path: Path):
    """Text of a plain or gzipped table; UTF-16 (spreadsheet exports) by its byte-order mark."""
    with open(path, "rb") as handle:
        magic = handle.read(2)
    binary = gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")
    head = binary.peek(2)[:2] if hasattr(binary, "peek") else b""
    encoding = "utf-16" if head in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    return io.TextIOWrapper(binary, encoding=encoding, errors="replace", newline="")


def _read_table(path: Path) -> tuple[np.ndarray, list[str] | None]:
    """Numbers of a CSV/TSV/whitespace table, optional header row and optional index column."""
    try:
        with _open_text(path) as text:
            first = text.readline()
            while first and not first.strip():
                first = text.readline()
            if not first:
                raise InputError(f"{path}: the file holds no rows.")
            delimiter = next((d for d in (",", ";", "\t") if d in first), None)
            cells = [c.strip().strip('"') for c in (first.split(delimiter) if delimiter
                                                    else first.split())]
            header = None if all(is_number(c) for c in cells) else cells
            body = text.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"{path}: cannot read the file (truncated or damaged?): {exc}") from None
    rows = body if header is not None else first + body
    try:
        table = np.loadtxt(io.StringIO(rows), delimiter=delimiter, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise InputError(f"{path}: a cell is not a number or a row has a different number of "
                         f"columns: {exc}") from None
    if table.size == 0:
        raise InputError(f"{path}: the file holds no parameter rows.")
    return table, header


def _drop_index_column(table: np.ndarray, header: list[str] | None) -> tuple[np.ndarray, bool]:
    """Drop a leading frame-index column (pandas' ``Unnamed: 0``, ``frame``…) if there is one."""
    if table.shape[1] - 1 not in LAYOUT_COLUMNS.values():
        return table, False
    named_index = header is not None and header[0].lower() in (
        "", "unnamed: 0", "index", "frame", "frame_id", "frame_idx", "frame_index", "idx")
    counts_frames = np.array_equal(table[:, 0], np.arange(table.shape[0])) or \
        np.array_equal(table[:, 0], np.arange(1, table.shape[0] + 1))
    if named_index or (header is None and counts_frames):
        return table[:, 1:], True
    return table, False


def _layout_for(n_columns: int, layout: str | None, path: Path) -> str:
    supported = ", ".join(f"{n} ({name})" for name, n in LAYOUT_COLUMNS.items())
    if layout is not None:
        if layout not in LAYOUTS:
            raise InputError(f"unknown FLAME parameter layout {layout!r}; known: "
                             f"{', '.join(LAYOUTS)}.")
        if LAYOUT_COLUMNS[layout] != n_columns:
            raise InputError(f"{path}: has {n_columns} columns, the {layout!r} layout has "
                             f"{LAYOUT_COLUMNS[layout]}.")
        return layout
    for name, count in LAYOUT_COLUMNS.items():
        if count == n_columns:
            return name
    raise InputError(f"{path}: has {n_columns} columns per frame; known FLAME parameter "
                     f"layouts have {supported}.")


def _split_layout(table: np.ndarray, layout: str) -> dict[str, np.ndarray]:
    groups, start = {}, 0
    for name, width in LAYOUTS[layout]:
        groups[name] = table[:, start:start + width]
        start += width
    return groups


def _params_from_table(table, layout, path, fps, extra_meta) -> FlameParams:
    layout = _layout_for(table.shape[1], layout, path)
    groups = _split_layout(table, layout)
    fps_value, assumed = (DEFAULT_FPS, True) if fps is None else (float(fps), False)
    meta = {"layout": layout, "fps_assumed": assumed, **extra_meta}
    return FlameParams(fps=fps_value, source=str(path), meta=meta, **groups)


def _read_npy(handle, source) -> Any:
    """One ``.npy`` stream; object arrays go through the restricted unpickler."""
    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            shape, fortran, dtype = np.lib.format._read_array_header(handle, version)
        if dtype.hasobject:
            loaded = resolve_arrays(
                restricted_unpickle(handle, source, what="a FLAME parameter file"), source)
            if isinstance(loaded, np.ndarray) and loaded.dtype.hasobject and loaded.ndim == 0:
                return loaded.item()
            return loaded
        count = int(np.prod(shape))
        data = handle.read(count * dtype.itemsize)
        if len(data) != count * dtype.itemsize:
            raise InputError(f"{source}: the array data ends early (truncated file?).")
        array = np.frombuffer(data, dtype=dtype)
        return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)
    except InputError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{source}: not a readable .npy (damaged?): {exc}") from None


def _read_npz_members(path: Path) -> dict:
    try:
        with zipfile.ZipFile(path) as archive:
            members = {}
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as member:
                    members[info.filename[:-4]] = _read_npy(
                        io.BufferedReader(member), f"{path}:{info.filename}")
            return members
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise InputError(f"{path}: not a readable .npz (truncated or damaged?): {exc}") from None


def _params_from_mapping(arrays: Mapping, path, fps) -> FlameParams:
    keys = {str(k).lower(): k for k in arrays}
    groups: dict[str, np.ndarray] = {}
    used = []
    for group, aliases in KEY_ALIASES.items():
        for alias in aliases:
            if alias in keys:
                groups[group] = np.asarray(arrays[keys[alias]])
                used.append(keys[alias])
                break
    for alias in COMBINED_POSE_KEYS:
        if alias not in keys:
            continue
        pose = np.asarray(arrays[keys[alias]], dtype=np.float64)
        pose = pose[None, :] if pose.ndim == 1 else pose
        width = pose.shape[-1]
        split = {3: (("global_pose", 0, 3),),
                 6: (("global_pose", 0, 3), ("jaw_pose", 3, 6)),
                 15: (("global_pose", 0, 3), ("neck_pose", 3, 6), ("jaw_pose", 6, 9),
                      ("eye_pose", 9, 15))}.get(width)
        if split is None or pose.ndim != 2:
            raise InputError(f"{path}: key {keys[alias]!r} has {width} values per frame; "
                             f"expected 3 (global), 6 (global + jaw) or 15 (full FLAME pose).")
        for group, start, stop in split:
            groups.setdefault(group, pose[:, start:stop])  # an explicit key wins
        used.append(keys[alias])
        break
    if "expression" not in groups:
        raise InputError(f"{path}: no expression coefficients found; looked for keys "
                         f"{', '.join(KEY_ALIASES['expression'])} (found: "
                         f"{', '.join(map(str, arrays)) or 'nothing'}).")
    file_fps = next((float(np.asarray(arrays[keys[k]])) for k in FPS_KEYS if k in keys), None)
    if fps is not None:
        fps_value, assumed = float(fps), False
    elif file_fps is not None:
        fps_value, assumed = file_fps, False
    else:
        fps_value, assumed = DEFAULT_FPS, True
    ignored = sorted(str(k) for k in arrays if k not in used and str(k).lower() not in FPS_KEYS)
    meta = {"layout": "npz", "fps_assumed": assumed, "file_fps": file_fps,
            "ignored_keys": ignored}
    return FlameParams(fps=fps_value, source=str(path), meta=meta, **groups)


def read_flame_params(path: str | Path, fps: float | None = None,
                      layout: str | None = None) -> FlameParams:
    """Read per-frame FLAME parameters from CSV(.gz), ``.npz`` or ``.npy``.

    Parameters
    ----------
    path : str or Path
        MMM/SMIRK 361-column or EMOCA/DECA 56-column table (comma, semicolon, tab or space
        separated; an optional header row and leading frame-index column are skipped; gzip
        detected by content), an ``.npz`` of named arrays, or an ``.npy`` (2-D table or a
        saved dict).
    fps : float, optional
        Frame rate. Default: the file's ``fps`` key, else 30 (MMM); ``meta["fps_assumed"]``
        says when it was assumed.
    layout : {"mmm", "emoca"}, optional
        Force a table layout instead of inferring it from the column count.

    Returns
    -------
    FlameParams

    Raises
    ------
    InputError
        Missing/empty/damaged file, unknown column count, non-numeric cells, NaN/Inf values,
        inconsistent frame counts, code-running pickles in ``.npy``/``.npz``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file.")
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if not magic:
        raise InputError(f"{path}: the file is empty.")
    if magic.startswith(b"PK"):
        return _params_from_mapping(_read_npz_members(path), path, fps)
    if magic.startswith(b"\x93NUMPY"):
        with open(path, "rb") as handle:
            loaded = _read_npy(handle, path)
        if isinstance(loaded, Mapping):
            return _params_from_mapping(loaded, path, fps)
        if isinstance(loaded, np.ndarray) and loaded.ndim == 2 and loaded.dtype.kind in "fiu":
            return _params_from_table(loaded.astype(np.float64), layout, path, fps, {})
        raise InputError(f"{path}: holds a {type(loaded).__name__} of shape "
                         f"{getattr(loaded, 'shape', '?')}; expected a (frames, 361 or 56) "
                         f"table or a dict of named arrays.")
    table, header = _read_table(path)
    table, dropped_index = _drop_index_column(table, header)
    return _params_from_table(table, layout, path, fps,
                              {"header": header, "dropped_index_column": dropped_index})




def write_flame_params(params: FlameParams, path: str | Path, layout: str | None = None,
                       header: bool = False, drop_unsupported: bool = False) -> Path:
    """Write ``params`` as CSV(.gz) (``mmm`` or ``emoca`` layout), ``.npy`` (table) or ``.npz``.

    Parameters
    ----------
    params : FlameParams
    path : str or Path
        ``.csv``, ``.csv.gz``, ``.npy`` or ``.npz``.
    layout : {"mmm", "emoca"}, optional
        Table layout for CSV/npy (default ``mmm``); ignored for ``.npz``.
    header : bool
        Write a header row of column names to CSV (readers here skip it either way).
    drop_unsupported : bool
        Allow leaving out non-zero groups the layout cannot carry.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".npz"):
        arrays = {k: v for k, v in params.groups().items()}
        with atomic_file(path) as temporary, open(temporary, "wb") as handle:
            np.savez(handle, fps=np.array(params.fps), **arrays)
        return path
    layout = layout or "mmm"
    table = params_to_table(params, layout, drop_unsupported)
    if name.endswith(".npy"):
        with atomic_file(path) as temporary, open(temporary, "wb") as handle:
            np.save(handle, table)
        return path
    if not (name.endswith(".csv") or name.endswith(".csv.gz")):
        raise InputError(f"{path}: write FLAME parameters to .csv, .csv.gz, .npy or .npz.")
    text = io.StringIO()
    np.savetxt(text, table, fmt="%.9g", delimiter=",",
               header=",".join(layout_column_names(layout)) if header else "", comments="")
    data = text.getvalue().encode("utf-8")
    if name.endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)  # gzip's own default; 9 is slower
    with atomic_file(path) as temporary:
        temporary.write_bytes(data)
    return path
