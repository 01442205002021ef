"""Frame-rate tracks as CSV tables: frames × channels with a ``time_s`` column and ``#`` header lines.

The layout is :mod:`eifer_blender.core.recording.csvfile`'s with ``kind=envelope`` and the track's
fps, units, start and space in the header, so the table opens in any spreadsheet and reads back
exactly. An MMM-style CSV (22 columns at 30 Hz in µV, no header lines) reads as well.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..recording import check_finite, read_recording
from ..recording.csvfile import write_csv
from ..recording.montage import resolve_space
from ..tracks import MuscleTrack, Track


def write_track_csv(track: Track, path: str | Path) -> Path:
    """Write ``track`` as a CSV table (the fps, units, start and space in ``#`` lines)."""
    path = Path(path)
    values = np.asarray(track.values, dtype=np.float64)
    check_finite(values.T, list(track.names), track.fps, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_csv(path, values.T, list(track.names), float(track.fps), kind="envelope",
              units=track.units, start_s=float(track.start_s),
              extra={"fps": repr(float(track.fps)), "space": track.space})
    return path


def read_track_csv(path: str | Path, *, fps: float | None = None) -> MuscleTrack:
    """Read a CSV table written by :func:`write_track_csv` (or an MMM-style CSV) as a MuscleTrack.

    ``fps`` gives the frame rate of a CSV without an ``fps`` line.
    """
    rec = read_recording(path, csv_kind="envelope", rate_hz=fps)
    return MuscleTrack(rec.data_uv.T, rec.channel_names, rec.rate_hz,
                       resolve_space(rec.channel_names), rec.meta.get("units", "uV"),
                       float(rec.meta.get("start_s", 0.0)), {"source": str(path)})
