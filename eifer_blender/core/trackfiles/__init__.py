"""Stage ⑤, track files: frame-rate tracks (envelopes, inferred muscles) in and out of files.

In: a :class:`~eifer_blender.core.tracks.Track`; out: CSV, EDF+ or BDF+ files, or a BIDS-EMG
folder — and back. :func:`write_track` and :func:`read_track` are the one dispatch on the file's
suffix, so no caller branches on it. Face captures (Live Link Face CSV, MediaPipe blendshapes) read as
expression tracks through :func:`read_capture`, which tells their formats apart (:mod:`.captures`).
"""
from __future__ import annotations

from pathlib import Path

from ..atomic import atomic_file
from ..errors import InputError
from ..tracks import MuscleTrack, Track
from .bids import BidsFiles, bids_basename, read_channels_tsv, write_bids_emg
from .captures import CAPTURE_FORMATS, capture_format, read_capture
from .edf import read_track_edf, write_track_edf
from .table import read_track_csv, write_track_csv

#: suffix -> (writer, reader) of a track file
TRACK_FORMATS = {".csv": (write_track_csv, read_track_csv), ".edf": (write_track_edf, read_track_edf),
                 ".bdf": (write_track_edf, read_track_edf)}


def _format(path: Path, verb: str):
    entry = TRACK_FORMATS.get(path.suffix.lower())
    if entry is None:
        raise InputError(f"{path}: cannot {verb} curves as {path.suffix or 'a file without extension'}; "
                         f"use {', '.join(TRACK_FORMATS)}")
    return entry


def write_track(track: Track, path: str | Path) -> Path:
    """Write a track as CSV, EDF+ or BDF+, by the suffix of ``path``; returns the path."""
    path = Path(path)
    writer, _ = _format(path, "write")
    with atomic_file(path) as temporary:  # whole or not at all: a failure leaves ``path`` as it was
        writer(track, temporary)
    return path


def read_track(path: str | Path, *, fps: float | None = None) -> MuscleTrack:
    """Read a track file written by :func:`write_track` (or an MMM-style CSV).

    ``fps`` gives the frame rate of a CSV without an ``fps`` line; EDF/BDF files carry theirs.
    """
    path = Path(path)
    _, reader = _format(path, "read")
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    return reader(path, fps=fps) if reader is read_track_csv else reader(path)


__all__ = ["TRACK_FORMATS", "write_track", "read_track", "write_track_csv", "read_track_csv",
           "write_track_edf", "read_track_edf", "write_bids_emg", "read_channels_tsv", "bids_basename",
           "BidsFiles", "CAPTURE_FORMATS", "capture_format", "read_capture"]
