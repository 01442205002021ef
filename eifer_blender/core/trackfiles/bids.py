"""BIDS-EMG-style export of muscle tracks (BIDS ≥ 1.11, "Electromyography").

Layout written under ``root``::

    dataset_description.json                 (written when missing; DatasetType "derivative")
    sub-<s>/[ses-<x>/]emg/
        sub-<s>[_ses-<x>]_task-<t>[_acq-<a>][_run-<r>]_emg.edf|.bdf
        sub-<s>[_ses-<x>]_task-<t>[_acq-<a>][_run-<r>]_emg.json
        sub-<s>[_ses-<x>]_task-<t>[_acq-<a>][_run-<r>]_channels.tsv
        sub-<s>[_ses-<x>][_acq-<a>]_electrodes.tsv + _coordsystem.json   (montage channels only)

The tracks this add-on exports are envelopes at the animation's frame rate (recorded and
processed, or inferred from a face), not raw sEMG, so the data set is marked as a derivative
and ``SoftwareFilters`` says how the envelopes were made. Electrode rows are the montage's
nominal bipolar sites (Fridlund & Cacioppo 1986 in the ``electromyogram`` face frame), not
measured positions: ``*_coordsystem.json`` says so.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_folder
from ..errors import InputError
from ..recording.montage import (
    FRIDLUND22,
    FRIDLUND_MUSCLES,
    KURAMOTO19,
    fridlund_sites_mm,
    kuramoto_sites_mm,
)
from ..tracks import Track
from .edf import write_track_edf

BIDS_VERSION = "1.11.0"
DATA_FORMATS = ("edf", "bdf")
_LABEL = re.compile(r"^[A-Za-z0-9]+$")
_FRIDLUND_DESCRIPTION = (
    "Fridlund & Cacioppo (1986) facial sEMG guidelines: 11 muscles x 2 sides, one bipolar "
    "electrode pair per muscle site (channel names <muscle>_<R|L>, R = subject's right)")
_COORDINATE_DESCRIPTION = (
    "2-D frontal face frame of the 'electromyogram' package (cvjena): x from the facial midline "
    "toward the subject's left (subject's right is negative), y up from the Frankfort "
    "horizontal plane. Nominal montage positions, not measured on this subject.")


@dataclass
class BidsFiles:
    """Paths written by :func:`write_bids_emg`."""

    root: Path
    data: Path
    sidecar: Path
    channels: Path
    electrodes: Path | None
    coordsystem: Path | None
    dataset_description: Path

    def all(self) -> list[Path]:
        return [p for p in (self.dataset_description, self.data, self.sidecar, self.channels,
                            self.electrodes, self.coordsystem) if p is not None]


def _check_label(entity: str, value) -> str | None:
    if value is None or value == "":
        return None
    value = str(value)
    if not _LABEL.match(value):
        raise InputError(f"BIDS {entity} label {value!r} may hold only letters and digits "
                         f"(no spaces, '-' or '_')")
    return value


def bids_basename(subject: str, task: str, *, session=None, acquisition=None, run=None) -> str:
    """``sub-<s>[_ses-<x>]_task-<t>[_acq-<a>][_run-<r>]`` with every label checked."""
    parts = [f"sub-{_check_label('subject', subject)}"]
    if _check_label("session", session):
        parts.append(f"ses-{session}")
    if not _check_label("task", task):
        raise InputError("a BIDS task label is required (e.g. 'face')")
    parts.append(f"task-{task}")
    if _check_label("acquisition", acquisition):
        parts.append(f"acq-{acquisition}")
    if run is not None:
        if not str(run).isdigit():
            raise InputError(f"BIDS run must be a non-negative whole number, got {run!r}")
        parts.append(f"run-{int(run):02d}")
    return "_".join(parts)


def _muscle_of(name: str) -> str:
    if name in FRIDLUND22:
        key, side = name.rsplit("_", 1)
        muscle = next(m for m in FRIDLUND_MUSCLES if m.key == key)
        return f"{muscle.muscle}, {'right' if side == 'R' else 'left'}"
    return "n/a"


def _software_filters(track: Track) -> dict | str:
    meta = track.meta or {}
    chain = meta.get("processing")
    described = {}
    if chain:
        described["EIFERProcessing"] = chain
    if meta.get("model"):
        described["EIFERInference"] = {
            "Description": "muscle activity inferred from facial animation by an Exp2EMG network",
            "Model": meta.get("model"), "ModelVersion": meta.get("model_version", "n/a")}
    if meta.get("normalisation"):
        described["Normalisation"] = meta["normalisation"]
    return described or "n/a"


def _tsv(path: Path, header: list[str], rows: list[list]) -> Path:
    def cell(value) -> str:
        if value is None:
            return "n/a"
        if isinstance(value, float):
            return "n/a" if not np.isfinite(value) else f"{value:g}"
        return str(value).replace("\t", " ").replace("\n", " ")

    lines = ["\t".join(header)] + ["\t".join(cell(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path



def write_bids_emg(track: Track, root: str | Path, *, subject: str = "01", task: str = "face",
                   session: str | None = None, acquisition: str | None = None, run: int | None = None,
                   data_format: str = "edf", power_line_hz: float | str = "n/a",
                   reference: str = "bipolar: each channel is the difference of its own electrode pair",
                   ground: str = "n/a", hardware_filters: dict | str = "n/a",
                   task_description: str = "", dataset_name: str = "EIFER muscle activity",
                   extra_sidecar: dict | None = None) -> BidsFiles:
    """Write ``track`` as a BIDS-EMG-style recording under ``root``.

    Parameters
    ----------
    track : MuscleTrack
        Envelopes (frames × channels) at ``track.fps``; units "uV" or normalised.
    root : folder of the data set (created).
    subject, task, session, acquisition, run : BIDS entities (letters and digits only).
    data_format : "edf" (EDF+, 16 bit) or "bdf" (BDF+, 24 bit; BIDS recommends it), see
        :func:`write_track_edf`.
    power_line_hz : mains frequency of the original recording (50/60), "n/a" when unknown
        (e.g. muscle activity inferred from an animation).
    reference, ground, hardware_filters, task_description : sidecar text.
    extra_sidecar : more ``*_emg.json`` fields (override the defaults).

    Returns
    -------
    BidsFiles
        Existing files of the same recording are replaced; an existing
        ``dataset_description.json`` is kept.
    """
    data_format = data_format.lower().lstrip(".")
    if data_format not in DATA_FORMATS:
        raise InputError(f"BIDS-EMG data must be EDF or BDF, got {data_format!r}")
    values = np.asarray(track.values, dtype=np.float64)
    if track.n_frames == 0 or values.shape[1] == 0:
        raise InputError(f"{track.meta.get('source', 'the track')}: nothing to export (no frames or channels)")
    if not np.isfinite(values).all():
        raise InputError("the muscle curves hold NaN or infinite values; they cannot be written as EDF/BDF")
    root = Path(root)
    base = bids_basename(subject, task, session=session, acquisition=acquisition, run=run)
    relative = Path(f"sub-{subject}") / (f"ses-{session}" if session else "") / "emg"
    with atomic_folder(root) as staging:  # every file of the data set, or none
        files = _write_files(track, staging, staging / relative, base, values, task, task_description, reference,
                             ground, power_line_hz, hardware_filters, dataset_name, extra_sidecar,
                             data_format, describe=not (root / "dataset_description.json").exists())
    moved = {k: (root / Path(v).relative_to(staging) if v is not None else None) for k, v in vars(files).items()}
    moved["dataset_description"] = root / "dataset_description.json"
    return BidsFiles(**{**moved, "root": root})


def _write_files(track, root, folder, base, values, task, task_description, reference, ground, power_line_hz,
                 hardware_filters, dataset_name, extra_sidecar, data_format, describe) -> BidsFiles:
    folder.mkdir(parents=True, exist_ok=True)

    units_cell = "uV" if track.units == "uV" else "n/a"  # normalised envelopes are dimensionless
    data_path = write_track_edf(track, folder / f"{base}_emg.{data_format}")

    montage = track.space if track.space in ("fridlund22", "kuramoto19") else None
    scheme_description = _FRIDLUND_DESCRIPTION if montage == "fridlund22" else (
        "Kuramoto et al. (2019) grid of 19 facial sites" if montage == "kuramoto19" else "n/a")
    sidecar = {
        "TaskName": task,
        "TaskDescription": task_description or "n/a",
        "EMGChannelCount": int(values.shape[1]),
        "EMGReference": reference,
        "EMGGround": ground,
        "EMGPlacementScheme": "Other",
        "EMGPlacementSchemeDescription": scheme_description,
        "SamplingFrequency": float(track.fps),
        "PowerLineFrequency": power_line_hz,
        "HardwareFilters": hardware_filters,
        "SoftwareFilters": _software_filters(track),
        "RecordingDuration": float(track.n_frames / float(track.fps)),
        "RecordingType": "continuous",
        "EIFERUnits": track.units,
        "EIFERSpace": track.space,
        "EIFERStartTime": float(track.start_s),
    }
    sidecar.update(extra_sidecar or {})
    sidecar_path = folder / f"{base}_emg.json"
    sidecar_path.write_text(json.dumps(sidecar, indent=2, default=str) + "\n", encoding="utf-8")

    rows = []
    for name in track.names:
        is_site = montage is not None and name in (FRIDLUND22 if montage == "fridlund22" else KURAMOTO19)
        rows.append([name, "EMG", units_cell,
                     "normalised envelope" if units_cell == "n/a" else "sEMG envelope",
                     float(track.fps), name if is_site else "n/a", _muscle_of(name),
                     "Other" if is_site else "n/a"])
    channels_path = _tsv(folder / f"{base}_channels.tsv",
                         ["name", "type", "units", "description", "sampling_frequency",
                          "signal_electrode", "target_muscle", "placement_scheme"], rows)

    electrodes_path = coordsystem_path = None
    if montage is not None:
        names = FRIDLUND22 if montage == "fridlund22" else KURAMOTO19
        sites = fridlund_sites_mm() if montage == "fridlund22" else kuramoto_sites_mm()
        site_rows = [[n, float(sites[names.index(n)][0]), float(sites[names.index(n)][1]), "FaceFrontal",
                      "bipolar pair site"] for n in track.names if n in names]
        # electrodes are shared by all tasks and runs of a session (BIDS inheritance)
        stem = "_".join(p for p in base.split("_") if p.startswith(("sub-", "ses-", "acq-")))
        electrodes_path = _tsv(folder / f"{stem}_electrodes.tsv",
                               ["name", "x", "y", "coordinate_system", "type"], site_rows)
        coordsystem_path = folder / f"{stem}_coordsystem.json"
        coordsystem_path.write_text(json.dumps({"FaceFrontal": {
            "EMGCoordinateSystem": "Other", "EMGCoordinateUnits": "mm",
            "EMGCoordinateSystemDescription": _COORDINATE_DESCRIPTION}}, indent=2) + "\n", encoding="utf-8")

    description_path = root / "dataset_description.json"
    if describe:
        description_path.write_text(json.dumps({
            "Name": dataset_name, "BIDSVersion": BIDS_VERSION, "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "EIFER for Blender",
                             "Description": "facial sEMG envelopes and muscle activity inferred by EIFER networks"}],
        }, indent=2) + "\n", encoding="utf-8")
    return BidsFiles(root, data_path, sidecar_path, channels_path, electrodes_path, coordsystem_path,
                     description_path)


def read_channels_tsv(path: str | Path) -> list[dict[str, str]]:
    """Rows of a ``*_channels.tsv`` (or any BIDS TSV) as dicts of strings."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:] if line]
