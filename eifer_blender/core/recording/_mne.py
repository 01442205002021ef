"""Back-end for the formats MNE reads: EDF/EDF+, BDF, GDF, BrainVision, EEGLAB, FIF, Neuroscan CNT."""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from ..errors import InputError
from .container import Annotation, RecordingSource, short_error

_VOLTAGE_UNIT_FIFF = 107  # FIFF_UNIT_V: MNE channels whose samples are voltages, scaled to µV here


def open_mne(path: Path, fmt: str) -> RecordingSource:
    import mne

    kwargs = {"infer_types": True} if fmt in ("EDF", "BDF") else {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            raw = mne.io.read_raw(path, preload=False, verbose="warning", **kwargs)
        except Exception as exc:
            raise InputError(f"{path}: not a readable {fmt} file ({short_error(exc)}); the header "
                             "may be truncated, or the extension may not match the content") from exc
    notes = []
    for w in caught:  # MNE renames duplicate channels ("Zyg-0", "Zyg-1") with only a warning
        text = str(w.message)
        if "not unique" in text or "duplicate" in text.lower():
            found = re.findall(r"\{([^}]*)\}", text)
            detail = found[0].replace("'", "") if found else text
            raise InputError(f"{path}: duplicate channel names: {detail}")
        notes.append(short_error(w.message))
    names = list(raw.ch_names)
    types = list(raw.get_channel_types())
    scale = np.array([1e6 if ch["unit"] == _VOLTAGE_UNIT_FIFF else 1.0 for ch in raw.info["chs"]])
    other_units = [n for n, s in zip(names, scale) if s == 1.0]
    annotations = [
        Annotation(float(a["onset"]) - _first_time(raw), float(a["duration"]),
                   _clean_description(str(a["description"])))
        for a in raw.annotations
    ]

    def reader(start: int, stop: int) -> np.ndarray:
        return raw.get_data(start=start, stop=stop) * scale[:, None]

    meta = {"format": fmt, "n_samples": raw.n_times}
    if notes:  # e.g. a file cut short: MNE reads what is there and says so
        meta["warnings"] = notes
    if other_units:
        meta["channels_not_in_volts"] = other_units  # left in the file's own units
    return RecordingSource(float(raw.info["sfreq"]), names, types, int(raw.n_times), reader,
                           annotations, str(path), meta)


def _first_time(raw) -> float:
    # annotation onsets are relative to meas_date/orig_time; first_samp shifts FIF recordings
    return float(raw.first_samp / raw.info["sfreq"]) if raw.annotations.orig_time is not None else 0.0


def _clean_description(text: str) -> str:
    # BrainVision returns our free-text markers as "Comment/<label>" (MNE, ``read_raw_brainvision``:
    # the marker type is prefixed to the description)
    return text[len("Comment/"):] if text.startswith("Comment/") else text
