"""Back-end for the formats MNE reads: EDF/EDF+, BDF, GDF, BrainVision, EEGLAB, FIF, Neuroscan CNT.

In: a file path and its format name. Out: a :class:`RecordingSource` read lazily through
``mne.io.read_raw`` with samples in µV, ``meta["units_as_read"]`` (the unit each channel is stored
in, :data:`~.units.UNKNOWN` where the file does not say) and ``meta["warnings"]``.

EDF and BDF headers are also read here directly (EDF spec, https://www.edfplus.info/specs/edf.html),
for two things MNE does not report: a channel with an empty physical dimension has UNKNOWN units
(MNE reads such a channel as volts), and a file cut short (fewer data records than the header
promises) says how much is missing.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .container import Annotation, RecordingSource, short_error
from .units import UNKNOWN, canonical_unit, is_voltage, unit_scale

_VOLTAGE_UNIT_FIFF = 107  # FIFF_UNIT_V: MNE channels whose samples are voltages, scaled to µV here
_TAL_LABELS = ("EDF Annotations", "BDF Annotations")  # EDF+/BDF+ annotation signals; MNE drops them
_MNE_RECORDS_NOTE = "Number of records from the header does not match the file size"


@dataclass
class EdfLayout:
    """What an EDF/BDF header says, next to what the file holds.

    Fields follow the EDF spec's header record: ``n_records`` (bytes 236-244, -1 while still
    recording), ``record_s`` (244-252), ``labels``, ``dimensions`` (physical dimension, 8 bytes
    per signal) and ``samples_per_record`` (8 bytes per signal) for every signal, annotation
    signals included; ``file_records`` is the number of whole data records the file holds.
    """

    n_records: int
    record_s: float
    labels: list[str]
    dimensions: list[str]
    samples_per_record: list[int]
    file_records: int
    spare_bytes: int  # bytes after the last whole data record


def edf_layout(path: Path, fmt: str) -> EdfLayout | None:
    """Read an EDF/BDF header (EDF spec, https://www.edfplus.info/specs/edf.html); None if unreadable.

    The header record is 256 bytes (bytes 184-192: header size, 236-244: number of data records,
    244-252: record duration in s, 252-256: number of signals ``ns``) plus 256 bytes per signal,
    stored field by field: label 16, transducer 80, physical dimension 8, physical minimum 8,
    maximum 8, digital minimum 8, maximum 8, prefiltering 80, samples per record 8, reserved 32.
    A data record holds ``sum(samples per record)`` samples of 2 bytes (EDF) or 3 bytes (BDF).
    """
    try:
        with open(path, "rb") as f:
            head = f.read(256)
            ns = int(head[252:256].decode("latin-1").strip())
            fields = f.read(256 * ns)
        if len(head) < 256 or ns < 0 or len(fields) < 256 * ns:
            return None
        header_bytes = int(head[184:192].decode("latin-1").strip() or 256 * (ns + 1))
        n_records = int(head[236:244].decode("latin-1").strip())
        record_s = float(head[244:252].decode("latin-1").strip().replace(",", "."))

        def column(offset: int, width: int) -> list[str]:
            start = offset * ns
            return [fields[start + i * width:start + (i + 1) * width].decode("latin-1").strip()
                    for i in range(ns)]

        labels = column(0, 16)
        dimensions = column(96, 8)
        samples = [int(v) for v in column(216, 8)]
    except (OSError, ValueError):
        return None
    record_bytes = (3 if fmt == "BDF" else 2) * sum(samples)
    data_bytes = max(0, path.stat().st_size - header_bytes)
    file_records = data_bytes // record_bytes if record_bytes > 0 else 0
    return EdfLayout(n_records, record_s, labels, dimensions, samples, int(file_records),
                     int(data_bytes - file_records * record_bytes) if record_bytes > 0 else 0)


def _mne_edf_factor(dimension: str) -> float:
    # The factor MNE has applied to a channel's physical values: it scales "µV"/"μV"/"uV" by 1e-6
    # and "mV" by 1e-3 and reads every other dimension, the empty one included, as volts
    # (mne/io/edf/edf.py, _read_edf_header; checked against MNE 1.12 by the units tests).
    if dimension in ("\u03bcV", "\u00b5V", "\x83\xcaV", "uV"):
        return 1e-6
    return 1e-3 if dimension == "mV" else 1.0


def open_mne(path: Path, fmt: str) -> RecordingSource:
    """Open a file MNE reads; see the module docstring for what comes out."""
    import mne

    kwargs = {"infer_types": True} if fmt in ("EDF", "BDF") else {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            raw = mne.io.read_raw(path, preload=False, verbose="warning", **kwargs)
        except Exception as exc:
            raise InputError(f"{path}: not a readable {fmt} file ({short_error(exc)}); the header "
                             "may be truncated, or the extension may not match the content") from exc
    layout = edf_layout(path, fmt) if fmt in ("EDF", "BDF") else None
    notes = []
    for w in caught:  # MNE renames duplicate channels ("Zyg-0", "Zyg-1") with only a warning
        text = str(w.message)
        if "not unique" in text or "duplicate" in text.lower():
            found = re.findall(r"\{([^}]*)\}", text)
            detail = found[0].replace("'", "") if found else text
            raise InputError(f"{path}: duplicate channel names: {detail}")
        if layout is not None and _MNE_RECORDS_NOTE in text:
            continue  # said more precisely below
        notes.append(short_error(w.message))
    names = list(raw.ch_names)
    types = list(raw.get_channel_types())
    n_samples = int(raw.n_times)
    if layout is not None:
        scale, as_read = _edf_units(raw, layout, path)
        n_samples, note = _edf_length(layout, n_samples, path)
        if note:
            notes.append(note)
    else:
        scale, as_read = _mne_units(raw)
    other_units = [n for n, u, t in zip(names, as_read, types)
                   if u != UNKNOWN and not is_voltage(u) and t != "stim"]
    annotations = [
        Annotation(float(a["onset"]) - _first_time(raw), float(a["duration"]),
                   _clean_description(str(a["description"])))
        for a in raw.annotations
    ]

    def reader(start: int, stop: int) -> np.ndarray:
        return raw.get_data(start=start, stop=min(stop, n_samples)) * scale[:, None]

    meta = {"format": fmt, "n_samples": n_samples, "units_as_read": as_read}
    if notes:  # e.g. a file cut short: read what is there and say so
        meta["warnings"] = notes
    if other_units:
        meta["channels_not_in_volts"] = other_units  # left in the file's own units
    return RecordingSource(float(raw.info["sfreq"]), names, types, n_samples, reader,
                           annotations, str(path), meta)


def _edf_units(raw, layout: EdfLayout, path: Path) -> tuple[np.ndarray, list[str]]:
    """Per channel: factor from MNE's values to µV, and the unit the header states.

    An empty physical dimension is UNKNOWN: MNE returns its physical values unchanged (as
    "volts"), so the factor is 1 and ``open_recording`` applies the user's ``units``.
    """
    dims = [d for d, label in zip(layout.dimensions, layout.labels) if label not in _TAL_LABELS]
    if len(dims) != len(raw.ch_names):  # MNE kept other channels than expected: ask MNE
        orig = getattr(raw, "_orig_units", None) or {}
        dims = [str(orig.get(n, "")).replace("n/a", "") for n in raw.ch_names]
    scale, as_read = [], []
    for dim, ch, ch_type in zip(dims, raw.info["chs"], raw.get_channel_types()):
        unit = canonical_unit(dim)
        if ch_type == "stim":  # MNE keeps trigger channels' digital values as they are
            scale.append(1.0)
            as_read.append(dim or UNKNOWN)
        elif dim == "":
            scale.append(1.0)
            as_read.append(UNKNOWN)
        elif unit is not None and is_voltage(unit):
            scale.append(unit_scale(unit, 1.0, path) / _mne_edf_factor(dim))
            as_read.append(unit)
        else:  # another quantity (µS, %, degC): the physical values as stored
            scale.append(1.0 / _mne_edf_factor(dim))
            as_read.append(unit or dim)
    return np.asarray(scale), as_read


def _mne_units(raw) -> tuple[np.ndarray, list[str]]:
    """Per channel: factor from MNE's values to µV, and the unit the file states.

    MNE converts voltages to volts for every format it reads (FIFF unit V); the original unit is
    kept where the reader reports one (BrainVision: the ``.vhdr`` resolution unit).
    """
    orig = getattr(raw, "_orig_units", None) or {}
    scale, as_read = [], []
    for ch in raw.info["chs"]:
        volts = ch["unit"] == _VOLTAGE_UNIT_FIFF
        scale.append(1e6 if volts else 1.0)
        stated = canonical_unit(str(orig.get(ch["ch_name"], "")))
        as_read.append(stated if stated is not None and volts else "V" if volts else "as stored")
    return np.asarray(scale), as_read


def _edf_length(layout: EdfLayout, n_samples: int, path: Path) -> tuple[int, str]:
    """Samples really there, and a note when the file holds fewer (or more) data records than promised.

    MNE infers the number of records from the file size when it disagrees with the header
    (``mne/io/edf/edf.py``: "Inferring from the file size"); the note says how much is missing.
    """
    promised, held = layout.n_records, layout.file_records
    if promised < 0 or promised == held or held == 0:  # -1: still recording when written (EDF spec)
        return n_samples, ""
    per_record = n_samples / max(held, 1)
    if held > promised:  # bytes past the promised records are not part of the recording
        extra = held - promised
        return int(round(per_record * promised)), (
            f"{path}: the file holds {extra} data record{'s' if extra > 1 else ''} more than its "
            f"header promises ({promised}); read the {promised * layout.record_s:.1f} s the header promises")
    promised_s, held_s = promised * layout.record_s, held * layout.record_s
    return n_samples, (
        f"{path}: the file is cut short ({held} of {promised} data records): the header promises "
        f"{promised_s:.1f} s, the file holds {held_s:.1f} s: {promised_s - held_s:.1f} s missing; "
        "read what is there")


def _first_time(raw) -> float:
    # annotation onsets are relative to meas_date/orig_time; first_samp shifts FIF recordings
    return float(raw.first_samp / raw.info["sfreq"]) if raw.annotations.orig_time is not None else 0.0


def _clean_description(text: str) -> str:
    # BrainVision returns our free-text markers as "Comment/<label>" (MNE, ``read_raw_brainvision``:
    # the marker type is prefixed to the description)
    return text[len("Comment/"):] if text.startswith("Comment/") else text
