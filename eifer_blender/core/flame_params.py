"""Per-frame FLAME parameters: read and write the layouts face trackers produce.

Layouts
-------
``mmm``  (MMM / SMIRK / EIFER release, FACTS §1): 361 columns per frame,
         shape 300 | expression 50 | eyelid 2 | jaw 3 | global pose 3 | cam 3. CSV or CSV.gz.
``emoca`` (EMOCA / DECA): 56 columns, expression 50 | pose 6 (global 3, jaw 3).
``npz``  named arrays (``expression``/``exp``, ``jaw_pose``, ``shape``, ``global_pose``, ``pose``
         (3, 6 or 15 wide), ``neck_pose``, ``eye_pose``, ``eyelid``, ``cam``, ``fps`` …); ``.npy``
         holds either one 2-D array in the ``mmm``/``emoca`` layout or a saved dict, which is
         read through the restricted unpickler (no code runs).

Reading gives a :class:`FlameParams` (frames × parameters per group, ``fps``); writing takes one
back to any layout. :meth:`FlameParams.to_expression_track` gives the ``flame`` space of the
networks (``spaces.FLAME_EXPRESSION_NAMES``: exp001…exp050, jaw, eyelids).
"""
from __future__ import annotations

import gzip
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .errors import InputError
from .flame import assemble_pose, resolve_arrays, restricted_unpickle
from .spaces import FLAME_EXPRESSION_NAMES, FLAME_EXP
from .tracks import ExpressionTrack

DEFAULT_FPS = 30.0  # the MMM release: one parameter row per 30 Hz video frame

# group name -> width; the order inside each layout is the column order
LAYOUTS: dict[str, tuple[tuple[str, int], ...]] = {
    "mmm": (("shape", 300), ("expression", 50), ("eyelid", 2), ("jaw_pose", 3),
            ("global_pose", 3), ("cam", 3)),
    "emoca": (("expression", 50), ("global_pose", 3), ("jaw_pose", 3)),
}
LAYOUT_COLUMNS = {name: sum(w for _, w in groups) for name, groups in LAYOUTS.items()}

_MAX_WIDTH = {"shape": 300, "expression": 100, "jaw_pose": 3, "global_pose": 3, "neck_pose": 3,
              "eye_pose": 6, "eyelid": 2, "cam": 3, "translation_m": 3}
_EXACT_WIDTH = {"jaw_pose", "global_pose", "neck_pose", "eye_pose", "eyelid", "cam",
                "translation_m"}

# npz/npy dict key -> group; first match wins
_KEY_ALIASES: dict[str, tuple[str, ...]] = {
    "expression": ("expression", "expression_params", "exp", "exp_params", "expr"),
    "shape": ("shape", "shape_params", "betas", "identity"),
    "jaw_pose": ("jaw_pose", "jaw", "jaw_params"),
    "global_pose": ("global_pose", "global_orient", "global_rotation", "rotation", "root_pose",
                    "head_pose"),
    "neck_pose": ("neck_pose", "neck"),
    "eye_pose": ("eye_pose", "eye_poses", "eyes", "eye_params"),
    "eyelid": ("eyelid", "eyelids", "eyelid_params"),
    "cam": ("cam", "camera", "cam_params"),
    "translation_m": ("translation_m", "translation", "transl", "trans"),
}
_COMBINED_POSE_KEYS = ("pose", "pose_params", "full_pose")
_FPS_KEYS = ("fps", "frame_rate", "framerate")


@dataclass
class FlameParams:
    """FLAME parameters per frame. Every array is ``(frames, width)`` float64; None = absent.

    Poses are axis-angle radians in FLAME's frame; ``eye_pose`` is ``[left 3 | right 3]``;
    ``eyelid`` is SMIRK's ``[left, right]`` eyelid-closure pair; ``cam`` SMIRK/DECA's
    orthographic ``[scale, tx, ty]``.
    """

    expression: np.ndarray  # (frames, ≤100)
    fps: float
    shape: np.ndarray | None = None  # (frames, ≤300)
    jaw_pose: np.ndarray | None = None  # (frames, 3)
    global_pose: np.ndarray | None = None  # (frames, 3)
    neck_pose: np.ndarray | None = None  # (frames, 3)
    eye_pose: np.ndarray | None = None  # (frames, 6)
    eyelid: np.ndarray | None = None  # (frames, 2)
    cam: np.ndarray | None = None  # (frames, 3)
    translation_m: np.ndarray | None = None  # (frames, 3)
    source: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = self.source or "FLAME parameters"
        self.expression = _as_frames(self.expression, "expression", where, None)
        n_frames = self.expression.shape[0]
        for name in _MAX_WIDTH:
            if name != "expression" and getattr(self, name) is not None:
                setattr(self, name, _as_frames(getattr(self, name), name, where, n_frames))
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise InputError(f"{where}: fps must be a positive number, got {self.fps}.")
        self.fps = float(self.fps)

    @property
    def n_frames(self) -> int:
        return self.expression.shape[0]

    def groups(self) -> dict[str, np.ndarray]:
        """The present parameter groups by name."""
        return {name: getattr(self, name) for name in _MAX_WIDTH if getattr(self, name) is not None}

    def pose(self) -> np.ndarray:
        """FLAME's full pose ``(frames, 15)``: root, neck, jaw, eye L, eye R (zeros if absent)."""
        return assemble_pose(self.global_pose, self.neck_pose, self.jaw_pose, self.eye_pose,
                             n_frames=self.n_frames)

    def to_expression_track(self, start_s: float = 0.0) -> ExpressionTrack:
        """The ``flame`` space track: exp001…exp050, jaw_x/y/z, eyelid_l/r (absent → 0).

        Expression coefficients beyond the 50th are not part of the space and are left out
        (``meta["dropped_expression"]`` counts them); zero-padded when fewer.
        """
        values = np.zeros((self.n_frames, len(FLAME_EXPRESSION_NAMES)))
        n_exp = min(FLAME_EXP, self.expression.shape[1])
        values[:, :n_exp] = self.expression[:, :n_exp]
        if self.jaw_pose is not None:
            values[:, FLAME_EXP:FLAME_EXP + 3] = self.jaw_pose
        if self.eyelid is not None:
            values[:, FLAME_EXP + 3:FLAME_EXP + 5] = self.eyelid
        meta = {"source": self.source, "layout": self.meta.get("layout"),
                "dropped_expression": max(0, self.expression.shape[1] - FLAME_EXP),
                "absent": [n for n in ("jaw_pose", "eyelid") if getattr(self, n) is None]}
        return ExpressionTrack(values, FLAME_EXPRESSION_NAMES, self.fps, "flame", "1",
                               start_s, meta)

    @classmethod
    def from_expression_track(cls, track, base: "FlameParams | None" = None) -> "FlameParams":
        """Parameters from a ``flame``-space track (e.g. read back from a rig's F-curves).

        Missing track columns are zero. ``base`` supplies the groups the space lacks (shape,
        global/neck/eye pose, cam); it must have the same frame count.
        """
        if track.space != "flame":
            raise InputError(f"expected a track in the 'flame' space, got {track.space!r}.")
        index = {name: i for i, name in enumerate(track.names)}

        def columns(names):
            out = np.zeros((track.n_frames, len(names)))
            for j, name in enumerate(names):
                if name in index:
                    out[:, j] = track.values[:, index[name]]
            return out

        names = FLAME_EXPRESSION_NAMES
        extra = {}
        if base is not None:
            if base.n_frames != track.n_frames:
                raise InputError(f"base parameters have {base.n_frames} frames, the track "
                                 f"{track.n_frames}.")
            extra = {n: getattr(base, n) for n in ("shape", "global_pose", "neck_pose",
                                                   "eye_pose", "cam", "translation_m")}
        return cls(expression=columns(names[:FLAME_EXP]), fps=track.fps,
                   jaw_pose=columns(names[FLAME_EXP:FLAME_EXP + 3]),
                   eyelid=columns(names[FLAME_EXP + 3:FLAME_EXP + 5]),
                   source=str(track.meta.get("source", "")), meta={"layout": "track"}, **extra)


def _as_frames(value, name: str, where: str, n_frames: int | None) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{where}: {name!r} is not numeric.") from None
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise InputError(f"{where}: {name!r} has shape {array.shape}, expected (frames, width).")
    width = array.shape[1]
    limit = _MAX_WIDTH[name]
    if (name in _EXACT_WIDTH and width != limit) or not 0 < width <= limit:
        wanted = f"{limit}" if name in _EXACT_WIDTH else f"1..{limit}"
        raise InputError(f"{where}: {name!r} has {width} values per frame, expected {wanted}.")
    if n_frames is not None and array.shape[0] != n_frames:
        if name == "shape" and array.shape[0] == 1:  # one identity for the whole clip
            array = np.repeat(array, n_frames, axis=0)
        else:
            raise InputError(f"{where}: {name!r} has {array.shape[0]} frames but 'expression' "
                             f"has {n_frames}.")
    bad = ~np.isfinite(array)
    if bad.any():
        frame, column = (int(i) for i in np.argwhere(bad)[0])
        raise InputError(f"{where}: {name!r} has {int(bad.sum())} NaN/Inf value(s), first at "
                         f"frame {frame}, value {column}; fill or cut those frames first.")
    return np.ascontiguousarray(array)


# --------------------------------------------------------------------------------------------
# Reading


def _open_text(path: Path):
    """Text of a plain or gzipped table; UTF-16 (spreadsheet exports) by its byte-order mark."""
    with open(path, "rb") as handle:
        magic = handle.read(2)
    binary = gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")
    head = binary.peek(2)[:2] if hasattr(binary, "peek") else b""
    encoding = "utf-16" if head in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    return io.TextIOWrapper(binary, encoding=encoding, errors="replace", newline="")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


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
            header = None if all(_is_number(c) for c in cells) else cells
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
    for group, aliases in _KEY_ALIASES.items():
        for alias in aliases:
            if alias in keys:
                groups[group] = np.asarray(arrays[keys[alias]])
                used.append(keys[alias])
                break
    for alias in _COMBINED_POSE_KEYS:
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
                         f"{', '.join(_KEY_ALIASES['expression'])} (found: "
                         f"{', '.join(map(str, arrays)) or 'nothing'}).")
    file_fps = next((float(np.asarray(arrays[keys[k]])) for k in _FPS_KEYS if k in keys), None)
    if fps is not None:
        fps_value, assumed = float(fps), False
    elif file_fps is not None:
        fps_value, assumed = file_fps, False
    else:
        fps_value, assumed = DEFAULT_FPS, True
    ignored = sorted(str(k) for k in arrays if k not in used and str(k).lower() not in _FPS_KEYS)
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


# --------------------------------------------------------------------------------------------
# Writing


def layout_column_names(layout: str) -> list[str]:
    """Column names used in a header row for ``layout``."""
    suffixes = {"jaw_pose": ("jaw_x", "jaw_y", "jaw_z"),
                "global_pose": ("pose_x", "pose_y", "pose_z"),
                "eyelid": ("eyelid_l", "eyelid_r"), "cam": ("cam_s", "cam_tx", "cam_ty")}
    names = []
    for group, width in LAYOUTS[layout]:
        if group in suffixes:
            names += suffixes[group]
        else:
            stem = "exp" if group == "expression" else group
            names += [f"{stem}{i:03d}" for i in range(1, width + 1)]
    return names


def params_to_table(params: FlameParams, layout: str, drop_unsupported: bool = False) -> np.ndarray:
    """``(frames, columns)`` table of ``params`` in ``layout``; absent groups are written as 0.

    Raises
    ------
    InputError
        ``params`` holds non-zero values the layout cannot carry (e.g. expression 51–100 in a
        50-coefficient layout, eye pose in ``mmm``), unless ``drop_unsupported``.
    """
    if layout not in LAYOUTS:
        raise InputError(f"unknown FLAME parameter layout {layout!r}; known: {', '.join(LAYOUTS)}.")
    widths = dict(LAYOUTS[layout])
    lost = []
    for name, values in params.groups().items():
        carried = widths.get(name, 0)
        if np.any(values[:, carried:] != 0):
            lost.append(name if carried == 0 else f"{name}[{carried}:]")
    if lost and not drop_unsupported:
        raise InputError(f"the {layout!r} layout cannot hold {', '.join(lost)} (non-zero here); "
                         f"pick another layout or allow dropping them.")
    table = np.zeros((params.n_frames, LAYOUT_COLUMNS[layout]))
    start = 0
    for name, width in LAYOUTS[layout]:
        values = getattr(params, name)
        if values is not None:
            n = min(width, values.shape[1])
            table[:, start:start + n] = values[:, :n]
        start += width
    return table


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
        np.savez(path, fps=np.array(params.fps), **arrays)
        return path
    layout = layout or "mmm"
    table = params_to_table(params, layout, drop_unsupported)
    if name.endswith(".npy"):
        np.save(path, table)
        return path
    if not (name.endswith(".csv") or name.endswith(".csv.gz")):
        raise InputError(f"{path}: write FLAME parameters to .csv, .csv.gz, .npy or .npz.")
    text = io.StringIO()
    np.savetxt(text, table, fmt="%.9g", delimiter=",",
               header=",".join(layout_column_names(layout)) if header else "", comments="")
    data = text.getvalue().encode("utf-8")
    if name.endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)  # gzip's own default; 9 is slower
    path.write_bytes(data)
    return path


__all__ = [
    "FlameParams", "LAYOUTS", "LAYOUT_COLUMNS", "DEFAULT_FPS", "read_flame_params",
    "write_flame_params", "params_to_table", "layout_column_names",
]
