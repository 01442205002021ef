"""Face captures as expression tracks: Live Link Face CSV and MediaPipe face-blendshape exports.

In: a capture file — Epic's Live Link Face CSV (``Timecode``, ``BlendShapeCount``, the 52 ARKit
names in PascalCase, head and eye rotations) or MediaPipe FaceLandmarker blendshape scores (the
52 categories in camelCase, ``_neutral`` first and no ``tongueOut``; a CSV with a time column and
one column per category, or JSON frames of ``{categoryName, score}`` lists). Out: an ``arkit52``
:class:`~eifer_blender.core.tracks.ExpressionTrack` at a requested frame rate, the capture's
times resampled by linear interpolation onto the frame grid ``k / fps`` from its first row.

:func:`read_capture` is the one dispatch (:func:`capture_format` tells the formats apart by the
suffix and the header); the writers make files of each format from a track (tests, and a track
for Unreal's Live Link Face importer).

Parameters shared by the readers
--------------------------------
fps : float
    Frame rate of the track to return (the scene's fps): row ``k`` is at ``k / fps`` seconds
    after the capture's first row.
timecode_fps : float, optional
    Frame rate of a Live Link Face timecode (``HH:MM:SS:FF.fff``, ``FF`` frames of it, ``.fff`` a
    fraction of one). Default: the smallest common rate (24, 25, 30, 48, 50, 60, 100, 120) above
    every ``FF`` in the file — at least 30, with a warning, when the capture ends within the second
    it starts in; the track's ``meta["timecode_fps"]`` says which was used.
"""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np

from ..atomic import atomic_file
from ..errors import InputError
from ..expression.spaces import ARKIT52
from ..tracks import ExpressionTrack

#: Live Link Face's 52 blendshape columns in the order the app writes them (ARKit's, PascalCase)
LIVE_LINK_FACE_NAMES: tuple[str, ...] = (
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft",
    "EyeSquintLeft", "EyeWideLeft", "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight",
    "EyeLookOutRight", "EyeLookUpRight", "EyeSquintRight", "EyeWideRight", "JawForward", "JawRight",
    "JawLeft", "JawOpen", "MouthClose", "MouthFunnel", "MouthPucker", "MouthRight", "MouthLeft",
    "MouthSmileLeft", "MouthSmileRight", "MouthFrownLeft", "MouthFrownRight", "MouthDimpleLeft",
    "MouthDimpleRight", "MouthStretchLeft", "MouthStretchRight", "MouthRollLower", "MouthRollUpper",
    "MouthShrugLower", "MouthShrugUpper", "MouthPressLeft", "MouthPressRight", "MouthLowerDownLeft",
    "MouthLowerDownRight", "MouthUpperUpLeft", "MouthUpperUpRight", "BrowDownLeft", "BrowDownRight",
    "BrowInnerUp", "BrowOuterUpLeft", "BrowOuterUpRight", "CheekPuff", "CheekSquintLeft",
    "CheekSquintRight", "NoseSneerLeft", "NoseSneerRight", "TongueOut",
)
#: Live Link Face's rotation columns after the blendshapes (read, not keyed on shape keys)
LIVE_LINK_FACE_ROTATIONS: tuple[str, ...] = (
    "HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
    "RightEyeYaw", "RightEyePitch", "RightEyeRoll",
)
#: MediaPipe FaceLandmarker's 52 blendshape categories, in its index order
MEDIAPIPE_NAMES: tuple[str, ...] = ("_neutral", *(n for n in ARKIT52 if n != "tongueOut"))

TIMECODE_RATES = (24.0, 25.0, 30.0, 48.0, 50.0, 60.0, 100.0, 120.0)
_ARKIT_LOOKUP = {name.lower(): name for name in ARKIT52}
_KNOWN_OTHERS = {n.lower() for n in ("Timecode", "BlendShapeCount", "_neutral", *LIVE_LINK_FACE_ROTATIONS)}
_LIVE_LINK_FACE_MARKS = {n.lower() for n in ("Timecode", "BlendShapeCount", *LIVE_LINK_FACE_ROTATIONS)}
_TIMECODE = re.compile(r"\s*(\d+):(\d{1,2}):(\d{1,2})[:;.](\d+)(?:\.(\d+))?\s*")
# MediaPipe time columns / JSON keys, lower case -> seconds per unit (None: ms unless steps < 1)
_TIME_KEYS = {"timestamp_ms": 1e-3, "time_ms": 1e-3, "frame_timestamp_ms": 1e-3, "timestampms": 1e-3,
              "time_s": 1.0, "timestamp_s": 1.0, "time": 1.0, "seconds": 1.0, "timestamp": None}

LIVE_LINK_FACE, MEDIAPIPE_CSV, MEDIAPIPE_JSON = "livelinkface", "mediapipe-csv", "mediapipe-json"


# ---------------------------------------------------------------------------------------------
# The dispatch


def capture_format(path: str | Path) -> str:
    """Which capture ``path`` holds: ``"livelinkface"``, ``"mediapipe-csv"`` or ``"mediapipe-json"``.

    A ``.json`` file is a MediaPipe export; a ``.csv`` file is Live Link Face's when its header has a
    ``Timecode``, ``BlendShapeCount`` or head/eye rotation column, else MediaPipe's. Raises
    :class:`InputError` for other suffixes.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return MEDIAPIPE_JSON
    if suffix != ".csv":
        raise InputError(f"{path}: not a face capture this add-on reads ({path.suffix or 'no extension'}); "
                         f"give a Live Link Face .csv or a MediaPipe blendshape .csv or .json")
    header = {h.lower() for h in _header(_text(path), path)}
    return LIVE_LINK_FACE if header & _LIVE_LINK_FACE_MARKS else MEDIAPIPE_CSV


def read_capture(path: str | Path, fps: float, *, timecode_fps: float | None = None) -> ExpressionTrack:
    """Read a Live Link Face or MediaPipe capture as an ``arkit52`` track at ``fps`` (see the module).

    Returns
    -------
    ExpressionTrack
        The ARKit shapes the file carries (others are left out and named in ``meta["missing"]``),
        in ARKit-52 order, units ``"1"``, ``start_s`` 0; ``meta`` holds ``source``, ``format``,
        ``capture_rate_hz`` (rows per second, median), ``duration_s``, ``ignored`` columns and
        ``warnings``; a Live Link Face file adds ``timecode_start``, ``timecode_fps`` and
        ``timecode_fps_given``.

    Raises
    ------
    InputError
        A missing or empty file, no time column, no ARKit names, times that go backwards, cells
        that are not numbers, a ``fps`` that is not positive.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    if not (np.isfinite(fps) and fps > 0):
        raise InputError(f"the frame rate to read {path.name} at must be a positive number, got {fps}")
    if timecode_fps is not None and not (np.isfinite(timecode_fps) and timecode_fps > 0):
        raise InputError(f"the timecode rate must be a positive number, got {timecode_fps}")
    reader = CAPTURE_FORMATS[capture_format(path)][0]
    return reader(path, float(fps), timecode_fps=timecode_fps)


# ---------------------------------------------------------------------------------------------
# Reading


def _text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file (a capture is a UTF-8 .csv or .json)") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not text.strip():
        raise InputError(f"{path}: the file is empty")
    return text


def _header(text: str, path: Path) -> list[str]:
    first = next(csv.reader(io.StringIO(text)), [])
    return [cell.strip() for cell in first]


def _table(text: str, path: Path) -> tuple[list[str], np.ndarray]:
    """The header and the cells (rows × columns, str) of a CSV text; trailing empty columns dropped."""
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    header = [cell.strip() for cell in rows[0]]
    while header and not header[-1]:
        header.pop()
    body = rows[1:]
    if not body:
        raise InputError(f"{path}: a header and no rows: the capture holds no frames")
    width = len(header)
    short = [i for i, row in enumerate(body) if len(row) < width
             or any(cell.strip() for cell in row[width:])]
    if short:
        row = short[0]
        raise InputError(f"{path}: row {row + 2} has {len(body[row])} cells, the header {width} "
                         f"columns; the file is cut short or not one table")
    return header, np.array([row[:width] for row in body], dtype=object)


def _numbers(cells: np.ndarray, columns: list[str], path: Path, first_line: int = 2) -> np.ndarray:
    """Cells (rows × columns) as float64; an error names the first cell that is not a finite number."""
    try:
        values = np.array(cells, dtype=np.float64)
    except (TypeError, ValueError):
        values = None
    if values is None or not np.isfinite(values).all():
        for row, column in np.ndindex(cells.shape):  # the error path only: find the cell to name
            cell = cells[row, column]
            try:
                ok = np.isfinite(float(cell))
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise InputError(f"{path}: line {row + first_line}, column {columns[column]}: "
                                 f"{str(cell).strip() or 'an empty cell'!r} is not a number")
    return values


def _arkit_columns(header: list[str]) -> tuple[list[int], list[str], list[str]]:
    """(column indices, ARKit names, ignored columns) of a header; ARKit names match in any case."""
    indices, names, ignored = [], [], []
    for i, column in enumerate(header):
        name = _ARKIT_LOOKUP.get(column.lower())
        if name is not None and name not in names:
            indices.append(i)
            names.append(name)
        elif column.lower() not in _KNOWN_OTHERS:
            ignored.append(column)
    return indices, names, ignored


def _no_names(path: Path, header, what: str) -> InputError:
    shown = ", ".join(h for h in header[:8] if h) + (" …" if len(header) > 8 else "")
    return InputError(f"{path}: none of its {what} is an ARKit blendshape name (found: {shown or 'nothing'}); "
                      f"a capture needs columns such as EyeBlinkLeft (Live Link Face) or eyeBlinkLeft (MediaPipe)")


def _track(times_s: np.ndarray, values: np.ndarray, names: list[str], fps: float, path: Path,
           meta: dict) -> ExpressionTrack:
    """Resample (rows at ``times_s``) onto ``k / fps`` from the first row; the track in ARKit order."""
    times_s = np.asarray(times_s, dtype=np.float64)
    step = np.diff(times_s)
    back = np.flatnonzero(step < 0)
    if back.size:
        row = int(back[0]) + 1
        labels = meta.get("_labels", times_s)
        raise InputError(f"{path}: the time goes backwards at row {row + 1} of the data ({labels[row]} "
                         f"after {labels[row - 1]}); a capture's rows must be in time order")
    meta.pop("_labels", None)
    warnings = meta.setdefault("warnings", [])
    same = np.flatnonzero(step == 0)
    if same.size:  # a row at the time of the one before: the later one wins
        keep = np.ones(times_s.size, dtype=bool)
        keep[same] = False
        times_s, values = times_s[keep], values[keep]
        warnings.append(f"{same.size} rows at the same time as the row before them; the later ones are used")
    relative = times_s - times_s[0]
    duration = float(relative[-1])
    n_frames = int(np.floor(duration * fps + 1e-6)) + 1
    grid = np.arange(n_frames) / fps
    if times_s.size == 1:
        resampled = np.repeat(values[:1], n_frames, axis=0)
    else:
        left = np.clip(np.searchsorted(relative, grid, side="right") - 1, 0, relative.size - 2)
        weight = np.clip((grid - relative[left]) / (relative[left + 1] - relative[left]), 0.0, 1.0)[:, None]
        resampled = values[left] * (1.0 - weight) + values[left + 1] * weight
    order = np.argsort([ARKIT52.index(n) for n in names], kind="stable")
    names = [names[i] for i in order]
    meta.update({"source": str(path), "missing": [n for n in ARKIT52 if n not in names],
                 "capture_rate_hz": float(1.0 / np.median(np.diff(times_s))) if times_s.size > 1 else None,
                 "duration_s": duration})
    return ExpressionTrack(resampled[:, order], names, fps, "arkit52", "1", 0.0, meta)


def _timecode_seconds(labels: np.ndarray, path: Path, timecode_fps: float | None,
                      warnings: list) -> tuple[np.ndarray, float, bool]:
    """Live Link Face timecodes as seconds; returns (seconds, timecode fps, whether it was given).

    Without ``timecode_fps`` the rate is the smallest common one above every frame number (at least
    30 when no second ends within the capture, and then ``warnings`` says it is a guess)."""
    parsed = [_TIMECODE.fullmatch(str(label)) for label in labels]
    bad = next((i for i, m in enumerate(parsed) if m is None), None)
    if bad is not None:
        raise InputError(f"{path}: line {bad + 2}: Timecode {str(labels[bad]).strip() or '(empty)'!r} is not "
                         f"HH:MM:SS:FF or HH:MM:SS:FF.fff")
    parts = np.array([[int(m[1]), int(m[2]), int(m[3]), int(m[4])] for m in parsed], dtype=np.int64)
    fraction = np.array([float("0." + m[5]) if m[5] else 0.0 for m in parsed])
    given = timecode_fps is not None
    whole = parts[:, 0] * 3600 + parts[:, 1] * 60 + parts[:, 2]
    if not given:
        top = int(parts[:, 3].max())
        rolls = bool(np.any(np.diff(whole)))  # a second ends within the capture: its last frame is seen
        timecode_fps = next((rate for rate in TIMECODE_RATES if rate > top and (rolls or rate >= 30)), None)
        if timecode_fps is None:
            raise InputError(f"{path}: timecode frames go up to {top}, above every common rate; "
                             f"give the timecode's frame rate")
        if not rolls:
            warnings.append(f"the capture ends within the second it starts in, so its timecode rate "
                            f"({timecode_fps:g} fps) is a guess; give the rate if it is another")
    elif parts[:, 3].max() >= timecode_fps:
        raise InputError(f"{path}: timecode frames go up to {int(parts[:, 3].max())}, which a "
                         f"{timecode_fps:g} fps timecode does not have; give the rate the capture was made at")
    frames = (whole - whole[0]) * timecode_fps + (parts[:, 3] - parts[0, 3]) + (fraction - fraction[0])
    return frames / timecode_fps, float(timecode_fps), given


def read_live_link_face_csv(path: str | Path, fps: float, *, timecode_fps: float | None = None) -> ExpressionTrack:
    """A Live Link Face CSV as an ``arkit52`` track at ``fps`` (see :func:`read_capture`)."""
    path = Path(path)
    header, cells = _table(_text(path), path)
    lower = [h.lower() for h in header]
    if "timecode" not in lower:
        raise InputError(f"{path}: no Timecode column; a Live Link Face CSV starts with Timecode, "
                         f"BlendShapeCount and the 52 ARKit names")
    indices, names, ignored = _arkit_columns(header)
    if not indices:
        raise _no_names(path, header, "columns")
    labels = cells[:, lower.index("timecode")]
    values = _numbers(cells[:, indices], [header[i] for i in indices], path)
    warnings: list[str] = []
    times, rate, given = _timecode_seconds(labels, path, timecode_fps, warnings)
    meta = {"format": LIVE_LINK_FACE, "ignored": ignored, "timecode_start": str(labels[0]).strip(),
            "warnings": warnings,
            "timecode_fps": rate, "timecode_fps_given": given, "_labels": [str(s).strip() for s in labels]}
    return _track(times, values, names, fps, path, meta)


def _time_unit(key: str, times: np.ndarray) -> tuple[float, str]:
    """Seconds per unit of a MediaPipe time column, and how it was read (for the report)."""
    scale = _TIME_KEYS[key.lower()]
    if scale is not None:
        return scale, f"{key} ({'ms' if scale == 1e-3 else 's'})"
    steps = np.diff(times)
    if steps.size and np.median(steps) < 1.0:  # steps under 1 ms would be over 1000 frames a second
        return 1.0, f"{key} (read as seconds: its steps are under 1)"
    return 1e-3, f"{key} (read as ms, MediaPipe's unit)"


def _time_key(keys, path: Path, where: str) -> str:
    found = [k for k in keys if str(k).lower() in _TIME_KEYS]
    if not found:
        raise InputError(f"{path}: no time {where} (looked for timestamp_ms, time_ms, timestamp, time_s, "
                         f"time, seconds); a MediaPipe "
                         f"blendshape export needs one, in ms (timestamp_ms) or seconds (time_s)")
    return found[0]


def read_mediapipe_csv(path: str | Path, fps: float, *, timecode_fps: float | None = None) -> ExpressionTrack:
    """A MediaPipe blendshape CSV (a time column, one column per category) as an ``arkit52`` track."""
    path = Path(path)
    header, cells = _table(_text(path), path)
    key = _time_key(header, path, "column")
    indices, names, ignored = _arkit_columns(header)
    ignored = [c for c in ignored if c != key]
    if not indices:
        raise _no_names(path, header, "columns")
    column = header.index(key)
    times = _numbers(cells[:, [column]], [key], path)[:, 0]
    values = _numbers(cells[:, indices], [header[i] for i in indices], path)
    scale, reading = _time_unit(key, times)
    meta = {"format": MEDIAPIPE_CSV, "ignored": ignored, "time_column": reading,
            "_labels": [str(s).strip() for s in cells[:, column]]}
    return _track(times * scale, values, names, fps, path, meta)


def _categories(frame):
    """A JSON frame's list of {categoryName, score} (the first face's, when it lists faces), or None."""
    key = next((k for k in ("blendshapes", "categories", "faceBlendshapes", "face_blendshapes") if k in frame), None)
    found = frame.get(key) if key else None
    if isinstance(found, list) and found and isinstance(found[0], list):  # a list per face
        found = found[0]
    elif isinstance(found, list) and found and isinstance(found[0], dict) and "categories" in found[0]:
        found = found[0]["categories"]  # MediaPipe's per-face {categories: [...]}
    return found if isinstance(found, list) else None


def read_mediapipe_json(path: str | Path, fps: float, *, timecode_fps: float | None = None) -> ExpressionTrack:
    """A MediaPipe blendshape JSON export as an ``arkit52`` track.

    The file is a list of frames (or ``{"frames": [...]}``); each frame has a time
    (``timestamp_ms``, ``time_s``, …) and ``blendshapes`` (or ``categories``, or MediaPipe's
    per-face ``faceBlendshapes`` — the first face is read): a list of
    ``{"categoryName": ..., "score": ...}`` (``category_name`` also). Frames without a face (an
    empty list) are left out and counted in ``meta["warnings"]``.
    """
    path = Path(path)
    try:
        data = json.loads(_text(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    frames = data.get("frames") if isinstance(data, dict) else data
    if not isinstance(frames, list) or not frames:
        raise InputError(f"{path}: no frames; a MediaPipe JSON export is a list of frames, each with "
                         f"a timestamp and a list of {{categoryName, score}}")
    if not all(isinstance(f, dict) for f in frames):
        raise InputError(f"{path}: each frame must be an object with a timestamp and its blendshapes")
    key = _time_key(frames[0].keys(), path, "key in the first frame")
    lists = [_categories(f) for f in frames]
    bad = next((i for i, c in enumerate(lists) if c is None), None)
    if bad is not None:
        raise InputError(f"{path}: frame {bad + 1} has no blendshapes (a list of {{categoryName, score}})")
    faced = [i for i, c in enumerate(lists) if c]
    if not faced:
        raise InputError(f"{path}: no frame has blendshape scores (no face was found in the capture)")
    pairs = []
    for i in faced:  # one (category, score) table per frame: the JSON holds objects, not arrays
        try:
            pairs.append({str(c.get("categoryName", c.get("category_name"))): c["score"] for c in lists[i]})
        except (AttributeError, KeyError, TypeError):
            raise InputError(f"{path}: frame {i + 1}: each blendshape needs a categoryName and a score") from None
    header = list(dict.fromkeys(name for frame in pairs for name in frame))
    indices, names, ignored = _arkit_columns(header)
    if not indices:
        raise _no_names(path, header, "category names")
    columns = [header[i] for i in indices]
    missing_key = next((i for i in faced if key not in frames[i]), None)
    if missing_key is not None:
        raise InputError(f"{path}: frame {missing_key + 1} has no {key}")
    cells = np.array([[frames[i][key]] + [frame.get(c) for c in columns] for i, frame in zip(faced, pairs)],
                     dtype=object)
    numbers = _numbers(cells, [key, *columns], path, first_line=1)  # "line" = frame number here
    times = numbers[:, 0]
    scale, reading = _time_unit(key, times)
    meta = {"format": MEDIAPIPE_JSON, "ignored": ignored, "time_column": reading,
            "_labels": [str(frames[i][key]) for i in faced]}
    if len(faced) < len(frames):
        meta["warnings"] = [f"{len(frames) - len(faced)} frames without a face are left out (bridged linearly)"]
    return _track(times * scale, numbers[:, 1:], names, fps, path, meta)


# ---------------------------------------------------------------------------------------------
# Writing


def _arkit_values(track: ExpressionTrack, names) -> np.ndarray:
    """The track's values for ARKit ``names`` (camelCase), 0 where it has none."""
    if track.space != "arkit52":
        raise InputError(f"a capture holds ARKit weights; this track is in the {track.space!r} space")
    return track.with_names(names)[0].values


def _fmt(values: np.ndarray) -> list[list[str]]:
    return [[repr(float(v)) for v in row] for row in values]


def write_live_link_face_csv(track: ExpressionTrack, path: str | Path, *, timecode_fps: float | None = None,
                             start: str = "00:00:00:00") -> Path:
    """Write an ``arkit52`` track as a Live Link Face CSV (rotations 0); returns the path.

    Frame ``k`` gets the timecode ``start + k / fps`` at ``timecode_fps`` (default the track's fps,
    rounded), with the fraction of a timecode frame after the dot.
    """
    path = Path(path)
    rate = float(timecode_fps or round(track.fps))
    match = _TIMECODE.fullmatch(start)
    if match is None:
        raise InputError(f"start timecode {start!r} is not HH:MM:SS:FF")
    h, m, s, f = (int(match[i]) for i in range(1, 5))
    at = ((h * 3600 + m * 60 + s) * rate + f) + track.times_s * rate
    whole = np.floor(at + 1e-9)
    fraction = np.clip(at - whole, 0.0, 0.999)
    frames, seconds = whole % rate, whole // rate
    labels = [f"{int(t // 3600):02d}:{int(t // 60 % 60):02d}:{int(t % 60):02d}:{int(ff):02d}.{round(fr * 1000):03d}"
              for t, ff, fr in zip(seconds, frames, fraction)]
    values = _arkit_values(track, [_ARKIT_LOOKUP[n.lower()] for n in LIVE_LINK_FACE_NAMES])
    rows = [[label, str(len(LIVE_LINK_FACE_NAMES) + len(LIVE_LINK_FACE_ROTATIONS)), *cells,
             *["0.0"] * len(LIVE_LINK_FACE_ROTATIONS)] for label, cells in zip(labels, _fmt(values))]
    return _write_rows(path, ["Timecode", "BlendShapeCount", *LIVE_LINK_FACE_NAMES, *LIVE_LINK_FACE_ROTATIONS], rows)


def write_mediapipe_csv(track: ExpressionTrack, path: str | Path) -> Path:
    """Write an ``arkit52`` track as a MediaPipe blendshape CSV (``timestamp_ms`` + 52 categories)."""
    values = _arkit_values(track, [n for n in MEDIAPIPE_NAMES if n != "_neutral"])
    values = np.column_stack([np.zeros(track.n_frames), values])
    rows = [[repr(float(t)), *cells] for t, cells in zip(track.times_s * 1000.0, _fmt(values))]
    return _write_rows(Path(path), ["timestamp_ms", *MEDIAPIPE_NAMES], rows)


def write_mediapipe_json(track: ExpressionTrack, path: str | Path) -> Path:
    """Write an ``arkit52`` track as MediaPipe-style JSON frames (``timestamp_ms``, ``blendshapes``)."""
    path = Path(path)
    values = np.column_stack([np.zeros(track.n_frames),
                              _arkit_values(track, [n for n in MEDIAPIPE_NAMES if n != "_neutral"])])
    frames = [{"timestamp_ms": float(t),
               "blendshapes": [{"index": i, "categoryName": n, "score": float(v)}
                               for i, (n, v) in enumerate(zip(MEDIAPIPE_NAMES, row))]}
              for t, row in zip(track.times_s * 1000.0, values.tolist())]
    with atomic_file(path) as temporary:
        temporary.write_text(json.dumps(frames), encoding="utf-8")
    return path


def _write_rows(path: Path, header: list[str], rows) -> Path:
    with atomic_file(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


#: format -> (reader, writer)
CAPTURE_FORMATS = {LIVE_LINK_FACE: (read_live_link_face_csv, write_live_link_face_csv),
                   MEDIAPIPE_CSV: (read_mediapipe_csv, write_mediapipe_csv),
                   MEDIAPIPE_JSON: (read_mediapipe_json, write_mediapipe_json)}
CAPTURE_SUFFIXES = (".csv", ".json")
