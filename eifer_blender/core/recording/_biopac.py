"""Back-end for BIOPAC AcqKnowledge recordings (``.acq``), read with the ``bioread`` package.

In: an ``.acq`` file as AcqKnowledge 3.x to 5.x saves it, compressed or not. Out: a
:class:`RecordingSource` at the sampling rate of its EMG channels; channels in a voltage unit (V,
mV, µV, as the file states them) in µV, every other channel (skin conductance in µS, respiration,
heart rate, ...) typed "misc" in its own unit; the file's event markers as annotations.

AcqKnowledge stores every channel at the file's base rate divided by an integer ("variable sample
rate": BIOPAC Application Note 156, "AcqKnowledge File Format for PC with Windows",
https://www.biopac.com/wp-content/uploads/app156.pdf; bioread reads it as
``Channel.frequency_divider``). The EMG channels must share one rate: a file whose EMG channels
differ is refused rather than resampled, since resampling EMG would change its spectrum. Other
channels are put on the EMG channels' time base by sample and hold, the value AcqKnowledge shows
between two of their samples.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import InputError
from .container import Annotation, RecordingSource, short_error
from .units import unit_scale

# voltage channels whose name says they are not EMG (MNE channel types); the rest are "emg"
_NAMED_TYPES = (
    (re.compile(r"\b(ecg|ekg)", re.IGNORECASE), "ecg"),
    (re.compile(r"\beeg", re.IGNORECASE), "eeg"),
    (re.compile(r"\beog", re.IGNORECASE), "eog"),
    (re.compile(r"\b(stim|trigger|digital|marker|event)", re.IGNORECASE), "stim"),
)


def _voltage_scale_uv(unit: str, path: Path) -> float | None:
    """µV per unit of a voltage unit ("V", "Volts", "mV", "µV", ...); None for any other unit."""
    text = unit.strip()
    if "v" not in text.lower():  # microsiemens, BPM, mmHg, degC, %, "" ...
        return None
    try:
        return unit_scale(text, 1.0, path)
    except InputError:  # "kV" or other spellings unit_scale does not know: kept as they are
        return None


def _channel_type(name: str, is_voltage: bool) -> str:
    if not is_voltage:
        return "misc"
    for pattern, ch_type in _NAMED_TYPES:
        if pattern.search(name):
            return ch_type
    return "emg"


def open_biopac(path: Path) -> RecordingSource:
    """Open a BIOPAC AcqKnowledge ``.acq`` file.

    Parameters
    ----------
    path : Path
        The ``.acq`` file.

    Returns
    -------
    RecordingSource
        At the EMG channels' rate (the fastest channel's when no channel is a voltage); voltage
        channels in µV, other channels typed "misc" in the file's units (listed in
        ``meta["channels_not_in_volts"]``; ``meta["units_as_read"]`` holds every channel's unit
        as the file states it), event markers as annotations (onset in seconds from the first
        sample).

    Raises
    ------
    InputError
        ``bioread`` missing, a truncated or damaged file, or EMG channels at different rates.
    """
    try:
        import bioread
    except ImportError as exc:
        raise InputError(f"{path}: reading BIOPAC AcqKnowledge files needs the Python package "
                         "'bioread', which is not installed here: install it into this Python "
                         "(python -m pip install bioread==3.0.1), or save the recording from "
                         "AcqKnowledge as EDF") from exc
    try:
        datafile = bioread.read(str(path))  # bioread opens only a str path itself
    except Exception as exc:  # bioread raises struct.error, ValueError, IndexError, zlib.error ...
        raise InputError(f"{path}: not a readable BIOPAC AcqKnowledge file ({short_error(exc)}); "
                         "the file may be truncated or damaged") from exc
    every = list(datafile.channels)
    every_name = [c.name.strip() or f"ch{i + 1}" for i, c in enumerate(every)]
    kept = [i for i, c in enumerate(every) if c.raw_data is not None and len(c.raw_data)]
    empty = [n for i, n in enumerate(every_name) if i not in kept]
    channels = [every[i] for i in kept]
    names = [every_name[i] for i in kept]
    if not channels:
        raise InputError(f"{path}: the AcqKnowledge file holds no samples")
    base_rate_hz = float(datafile.samples_per_second)
    units = [str(c.units or "") for c in channels]
    scales = [_voltage_scale_uv(u, path) for u in units]
    types = [_channel_type(n, s is not None) for n, s in zip(names, scales)]
    dividers = [int(c.frequency_divider or 1) for c in channels]
    emg = [i for i, t in enumerate(types) if t == "emg"]
    emg_dividers = sorted({dividers[i] for i in emg})
    if len(emg_dividers) > 1:
        rates = ", ".join(f"{names[i]} {base_rate_hz / dividers[i]:g} Hz" for i in emg)
        raise InputError(f"{path}: the EMG channels are sampled at different rates ({rates}); "
                         "record them at one rate, or resample them in AcqKnowledge "
                         "(Transform > Resample) and save again")
    divider = emg_dividers[0] if emg_dividers else min(dividers)
    rate_hz = base_rate_hz / divider
    base = [i for i, d in enumerate(dividers) if d == divider]
    n_samples = min(len(channels[i].raw_data) for i in base)
    raw = [c.raw_data for c in channels]
    # bioread's Channel.data is raw * raw_scale_factor + raw_offset (1 and 0 for float channels)
    gains = [float(c.raw_scale_factor) * (s or 1.0) for c, s in zip(channels, scales)]
    offsets = [float(c.raw_offset) * (s or 1.0) for c, s in zip(channels, scales)]

    def reader(start: int, stop: int) -> np.ndarray:
        out = np.empty((len(channels), stop - start))
        samples = np.arange(start, stop)
        for i, data in enumerate(raw):
            if dividers[i] == divider:
                values = data[start:stop]
            else:  # sample and hold onto the EMG time base
                index = np.minimum(samples * divider // dividers[i], len(data) - 1)
                values = data[index]
            out[i] = values * gains[i] + offsets[i]
        return out

    annotations = []
    for marker in datafile.event_markers or []:
        text = (marker.text or "").strip()
        if not text:  # an unlabelled marker: its style ("Flag", "Stimulus Delivery", ...)
            text = (marker.type if getattr(marker, "type_code", None) else "") or "marker"
        annotations.append(Annotation(float(marker.sample_index) / base_rate_hz, 0.0, text))
    annotations.sort(key=lambda a: a.onset_s)
    meta = {"format": "BIOPAC", "units": "uV", "units_as_read": [u or "unknown" for u in units],
            "file_revision": getattr(datafile.graph_header, "file_revision", None)}
    not_volts = [n for n, s in zip(names, scales) if s is None]
    if not_volts:
        meta["channels_not_in_volts"] = not_volts  # left in the file's own units
    held = [f"{names[i]} ({base_rate_hz / dividers[i]:g} Hz)" for i, d in enumerate(dividers)
            if d != divider]
    if held:
        meta["resampled_channels"] = held  # sample and hold onto the EMG rate
    if empty:
        meta["warnings"] = [f"channel(s) {', '.join(empty)} hold no samples and were left out"]
    return RecordingSource(rate_hz, names, types, int(n_samples), reader, annotations, str(path),
                           meta)
