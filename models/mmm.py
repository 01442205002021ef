"""Reader for the public "Mimics, Muscles, and Me" (MMM) layout (Zenodo 16636409, CC BY-NC 4.0).

Layout (paths relative to the data set root)::

    MMM.csv                                        clip index, one row per clip
    emg/{pid}_{rec}/{index}.csv                    unnamed frame index + 22 envelopes, 30 Hz
    video_noelec_params/{method}/{pid}_{rec}/{index}_params.csv.gz   one row per video frame

``MMM.csv`` columns used: ``index`` (clip id), ``pid`` (a zero-padded string), ``rec``, ``mode``,
``task`` and ``emg`` (relative path, empty for clips without sEMG). The EMG columns are named from
the recording protocol, partly German (``Medialer Frontalis``, ``Depressor Ang. Oris`` ...), with
``_l`` / ``_r`` suffixes; they are mapped to the canonical Fridlund-22 names. Envelopes are
µV-scale RMS with a 0.5 s window (2048 samples at 4096 Hz), not normalised; the Fourier resample
rings slightly negative at clip edges, so values are clamped at 0.

Expression spaces: ``flame`` from SMIRK / EIFER (exp 50, eyelid 2, jaw 3) or DECA / EMOCAv2 (exp
50, jaw = pose[3:6], no eyelids); ``arkit52`` from MediaPipe (52 named ARKit scores).
"""
from __future__ import annotations

import csv
import gzip
import re
from pathlib import Path

import numpy as np

from eifer_blender.core.errors import InputError
from eifer_blender.core.expression.spaces import (
    ARKIT52,
    FLAME_EXP,
    FLAME_EXPRESSION_NAMES,
    match_arkit_names,
)
from eifer_blender.core.recording.montage import FRIDLUND22, FRIDLUND_MUSCLES
from eifer_blender.core.tracks import ExpressionTrack, MuscleTrack

from .data import Clip

MMM_FPS = 30.0
MMM_ENVELOPE = ("MMM release: 50 Hz IIR notch (Q 2), 10-500 Hz FIR band-pass, sliding RMS over "
                "2048 samples (0.5 s at 4096 Hz), Fourier resample to 30 Hz")

# MMM column stem (lower case, letters only) -> montage key
_MMM_MUSCLES = {
    "corrugatorsupercilii": "Corr",
    "depressorangoris": "DAO",
    "depressorangulioris": "DAO",
    "depressorsuperciliiprocerus": "DepSup",
    "lateralerfrontalis": "latFront",
    "levatorlabiisuperioris": "LLSup",
    "masseter": "Mass",
    "medialerfrontalis": "medFront",
    "mentalis": "Ment",
    "orbicularisoculi": "OrbOc",
    "orbicularisoris": "OrbOr",
    "zygomaticus": "Zyg",
}
for _m in FRIDLUND_MUSCLES:  # also accept canonical keys and Jena short names
    _MMM_MUSCLES.setdefault(re.sub(r"[^a-z]", "", _m.key.lower()), _m.key)
    _MMM_MUSCLES.setdefault(re.sub(r"[^a-z]", "", _m.jena.lower()), _m.key)
_SIDES = {"l": "L", "li": "L", "left": "L", "links": "L", "r": "R", "re": "R", "right": "R", "rechts": "R"}

# per-frame column layout of the parameter files, as (group, count) in file order
_LAYOUTS = {
    "SMIRK": (("idt", 300), ("exp", 50), ("eyelid", 2), ("jaw", 3), ("pose", 3), ("cam", 3)),
    "EIFER": (("idt", 300), ("exp", 50), ("eyelid", 2), ("jaw", 3), ("pose", 3), ("cam", 3)),
    "DECA": (("idt", 100), ("exp", 50), ("pose", 6), ("cam", 3), ("light", 27), ("tex", 50)),
    "EMOCAv2": (("idt", 100), ("exp", 50), ("pose", 6), ("cam", 3), ("light", 27), ("tex", 50)),
}
FLAME_METHODS = tuple(_LAYOUTS)
ARKIT_METHODS = ("MediaPipe",)


def canonical_emg_name(column: str) -> str | None:
    """Canonical Fridlund-22 name for an MMM EMG column (``"Zygomaticus_l"`` -> ``"Zyg_L"``)."""
    match = re.match(r"^(.*?)[ _\-.]+([A-Za-z]+)$", column.strip())
    if not match or match.group(2).lower() not in _SIDES:
        return None
    stem = re.sub(r"[^a-z]", "", match.group(1).lower())
    key = _MMM_MUSCLES.get(stem)
    return f"{key}_{_SIDES[match.group(2).lower()]}" if key else None


def _read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from exc
    if len(rows) < 2:
        raise InputError(f"{path}: no data rows")
    header, body = rows[0], rows[1:]
    try:
        values = np.array([[float(v) if v.strip() else np.nan for v in r] for r in body], dtype=np.float64)
    except ValueError as exc:
        raise InputError(f"{path}: a value is not a number ({exc})") from exc
    if values.ndim != 2 or values.shape[1] != len(header):
        raise InputError(f"{path}: rows do not all have {len(header)} columns")
    return header, values


def read_mmm_emg(path) -> MuscleTrack:
    """One MMM envelope file -> MuscleTrack (Fridlund-22 canonical order, µV, 30 fps)."""
    path = Path(path)
    header, values = _read_csv(path)
    names = {}
    for i, column in enumerate(header):
        canonical = canonical_emg_name(column)
        if canonical is not None:
            names[canonical] = i
    missing = [n for n in FRIDLUND22 if n not in names]
    if missing:
        raise InputError(f"{path}: EMG columns for {', '.join(missing)} not found "
                         f"(columns: {', '.join(header)})")
    data = np.nan_to_num(values[:, [names[n] for n in FRIDLUND22]], nan=0.0)
    return MuscleTrack(np.maximum(data, 0.0), FRIDLUND22, MMM_FPS, "fridlund22", "uV",
                       meta={"source": str(path), "envelope": MMM_ENVELOPE})


def _group_columns(header: list[str], group: str) -> list[int] | None:
    """Indices of columns named ``<group><sep><number>`` in numeric order, if the header has them."""
    found = []
    for i, name in enumerate(header):
        m = re.fullmatch(rf"{group}[ _\-.]?(\d+)", name.strip(), flags=re.IGNORECASE)
        if m:
            found.append((int(m.group(1)), i))
    return [i for _, i in sorted(found)] or None


def _layout_columns(method: str, group: str, n_columns: int, path: Path) -> list[int]:
    layout = _LAYOUTS[method]
    expected = sum(n for _, n in layout)
    if n_columns != expected:
        raise InputError(f"{path}: {method} parameter files have {expected} columns, this one has {n_columns}")
    start = 0
    for name, count in layout:
        if name == group:
            return list(range(start, start + count))
        start += count
    raise InputError(f"{path}: {method} files have no {group!r} parameters")


def read_mmm_params(path, method: str = "SMIRK", include_jaw: bool = True,
                    include_eyelids: bool = True) -> ExpressionTrack:
    """One MMM 3DMM parameter file -> ExpressionTrack.

    ``method`` in FLAME_METHODS gives space ``flame`` (exp001..exp050, then jaw_x/y/z and
    eyelid_l/r when asked for); ``"MediaPipe"`` gives ``arkit52`` (all 52 names).
    """
    path = Path(path)
    header, values = _read_csv(path)
    values = np.nan_to_num(values, nan=0.0)
    if method in ARKIT_METHODS:
        matched = match_arkit_names(header)
        missing = [n for n in ARKIT52 if n not in matched]
        if missing:
            raise InputError(f"{path}: MediaPipe columns lack ARKit shapes {', '.join(missing)}")
        idx = [header.index(matched[n]) for n in ARKIT52]
        return ExpressionTrack(np.clip(values[:, idx], 0.0, 1.0), ARKIT52, MMM_FPS, "arkit52", "1",
                               meta={"source": str(path), "method": method})
    if method not in _LAYOUTS:
        raise InputError(f"{path}: unknown 3DMM method {method!r}; "
                         f"use one of {', '.join(FLAME_METHODS + ARKIT_METHODS)}")

    def columns(group: str) -> list[int]:
        return _group_columns(header, group) or _layout_columns(method, group, len(header), path)

    parts, names = [values[:, columns("exp")[:FLAME_EXP]]], list(FLAME_EXPRESSION_NAMES[:FLAME_EXP])
    if include_jaw:
        if method in ("DECA", "EMOCAv2"):
            pose = columns("pose")
            parts.append(values[:, pose[3:6]])  # DECA pose = global rotation (3) + jaw (3)
        else:
            parts.append(values[:, columns("jaw")[:3]])
        names += ["jaw_x", "jaw_y", "jaw_z"]
    if include_eyelids:
        if method in ("DECA", "EMOCAv2"):
            raise InputError(f"{path}: {method} has no eyelid parameters; set include_eyelids = false")
        parts.append(values[:, columns("eyelid")[:2]])
        names += ["eyelid_l", "eyelid_r"]
    return ExpressionTrack(np.concatenate(parts, axis=1), names, MMM_FPS, "flame", "1",
                           meta={"source": str(path), "method": method})


def read_index(root) -> list[dict]:
    """Rows of ``MMM.csv`` as dicts of strings (``pid`` stays a zero-padded string)."""
    index = Path(root) / "MMM.csv"
    if not index.is_file():
        raise InputError(f"{root}: not an MMM folder (no MMM.csv)")
    with open(index, newline="") as f:
        rows = list(csv.DictReader(f))
    needed = {"index", "pid", "rec", "emg"}
    if rows and not needed <= set(rows[0]):
        raise InputError(f"{index}: columns {', '.join(sorted(needed - set(rows[0])))} missing")
    return rows


def read_mmm(root, method: str = "SMIRK", include_jaw: bool = True,
             include_eyelids: bool = True) -> list[Clip]:
    """All clips with sEMG from an MMM folder, paired with ``method``'s parameters.

    Envelopes stay in µV (:func:`mmm_dataset` normalises them per session for training).
    ``Clip.subject`` is the participant id and
    ``Clip.protocol`` the session (``{pid}_{rec}``); frames beyond the shorter of the two files
    are dropped.
    """
    root = Path(root)
    clips = []
    for row in read_index(root):
        if not (row.get("emg") or "").strip():
            continue
        session = f"{row['pid']}_{row['rec']}"
        emg = read_mmm_emg(root / row["emg"].strip())
        params_path = root / "video_noelec_params" / method / session / f"{row['index']}_params.csv.gz"
        if not params_path.is_file():
            raise InputError(f"{params_path}: {method} parameters for clip {row['index']} not found")
        expression = read_mmm_params(params_path, method, include_jaw, include_eyelids)
        n = min(emg.n_frames, expression.n_frames)
        emg = MuscleTrack(emg.values[:n], emg.names, emg.fps, emg.space, emg.units, meta=emg.meta)
        expression = ExpressionTrack(expression.values[:n], expression.names, expression.fps,
                                     expression.space, expression.units, meta=expression.meta)
        clips.append(Clip(emg, expression, subject=row["pid"], protocol=session, key=row["index"]))
    if not clips:
        raise InputError(f"{root}/MMM.csv lists no clip with sEMG")
    return clips


MMM_DEFAULTS = {
    "root": "",
    "method": "SMIRK",
    "include_jaw": True,
    "include_eyelids": True,
    "split": [0.7, 0.15, 0.15],
    "seed": 0,
    "normalisation": {"method": "percentile", "low": 5.0, "high": 95.0},
}


def mmm_dataset(data: dict):
    """The ``[data] source = "mmm"`` data set: clips normalised per session, split by subject.

    MMM has one participant, so its clips are split clip-wise (stated in the model's metadata);
    a folder in the same layout with three or more participants is split subject-wise.
    The envelopes are the release's (EIFER's chain, which ``ProcessingSettings.eifer()``
    reproduces by default), normalised per session with ``processing.normalise_envelopes``.
    """
    from eifer_blender.core.envelopes import ProcessingSettings, normalisation_references, normalise_envelopes

    from .data import DataSet, subject_split

    settings = {**MMM_DEFAULTS, **{k: v for k, v in data.items() if k != "source"}}
    unknown = sorted(set(settings) - set(MMM_DEFAULTS))
    if unknown:
        raise InputError(f"unknown [data] keys for MMM data: {', '.join(unknown)}")
    if not settings["root"]:
        raise InputError("[data] root must name the MMM folder (the one holding MMM.csv)")
    clips = read_mmm(settings["root"], settings["method"], settings["include_jaw"],
                     settings["include_eyelids"])
    spec = dict(settings["normalisation"])
    sessions: dict[str, list[Clip]] = {}
    for clip in clips:
        sessions.setdefault(f"{clip.subject}/{clip.protocol}", []).append(clip)
    for members in sessions.values():
        stacked = np.concatenate([c.emg.values for c in members])
        refs = normalisation_references(stacked, spec, names=FRIDLUND22)
        for c in members:
            c.emg = MuscleTrack(normalise_envelopes(c.emg.values, refs), c.emg.names, c.emg.fps,
                                c.emg.space, "normalised" if spec["method"] != "none" else "uV",
                                meta={**c.emg.meta, "normalisation": refs})
    subjects = sorted({c.subject for c in clips})
    split_by = "subject" if len(subjects) >= 3 else "clip"
    groups = subjects if split_by == "subject" else [c.key for c in clips]
    split = subject_split(groups, tuple(settings["split"]), int(settings["seed"]))
    frames = sum(c.n_frames for c in clips)
    description = (f"MMM layout at {settings['root']}: {len(clips)} clips with sEMG, {len(subjects)} "
                   f"participant(s), {frames / MMM_FPS / 60:.1f} min; expression {settings['method']} "
                   f"({clips[0].expression.space}); envelopes of the release ({MMM_ENVELOPE}), "
                   f"normalised per session ({spec['method']})")
    processing = {**ProcessingSettings.eifer().to_dict(), "fps": MMM_FPS}
    return DataSet(clips, description, spec, split, split_by, processing=processing)
