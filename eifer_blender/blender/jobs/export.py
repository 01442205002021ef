"""Export the curves of an EMG object (recorded envelopes or inferred muscles): CSV, EDF+, BDF+ or BIDS-EMG."""
from __future__ import annotations

from pathlib import Path

from ...core.errors import InputError
from ...core.trackfiles import write_bids_emg, write_track
from ...core.tracks import MuscleTrack
from ..anim import emg_object

#: export format -> file suffix ("" for a BIDS folder)
EXPORT_SUFFIXES = {"CSV": ".csv", "EDF": ".edf", "BDF": ".bdf", "BIDS": ""}


def muscle_track_of(obj) -> MuscleTrack:
    """The muscle track keyed on an EMG object."""
    if not emg_object.is_emg_object(obj):
        raise InputError(f"{getattr(obj, 'name', 'nothing')} is not an EMG object")
    try:
        return emg_object.read_emg_object(obj)
    except ValueError as exc:
        raise InputError(str(exc)) from exc


def export_curves(obj, path, file_format: str = "CSV", *, subject: str = "01", session: str | None = None,
                  task: str = "face", power_line_hz: float | str = "n/a") -> Path:
    """Write the EMG object's curves to ``path`` in ``file_format`` (CSV, EDF, BDF or BIDS).

    The suffix of ``path`` is set to the format's; for BIDS, ``path`` (without suffix) is the data
    set's folder and the subject, session and task labels name the files. Returns the written data file.
    """
    if file_format not in EXPORT_SUFFIXES:
        raise InputError(f"unknown export format {file_format!r}; use {', '.join(EXPORT_SUFFIXES)}")
    track = muscle_track_of(obj)
    path = Path(path)
    if file_format == "BIDS":
        root = path.with_suffix("") if path.suffix else path
        inferred = emg_object.kind(obj) == "inferred"
        files = write_bids_emg(track, root, subject=subject, session=session or None, task=task,
                               acquisition="inferred" if inferred else None, power_line_hz=power_line_hz)
        return files.data
    return write_track(track, path.with_suffix(EXPORT_SUFFIXES[file_format]))
