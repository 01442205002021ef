"""Back-end for PLUX OpenSignals recordings (biosignalsplux, BITalino): text and HDF5 exports.

In: an OpenSignals text export (``.txt``: three ``#`` header lines, the second a JSON object keyed
by device MAC address with "sampling rate", "resolution", "sensor", "label" and "column"; then
tab-separated rows ``nSeq, DI (or I1 I2 O1 O2), A1 ... An`` in raw ADC units), or an OpenSignals
HDF5 file (``.h5``: one group per device MAC address, its settings as attributes, the samples in
``raw/channel_N``). Out: a :class:`RecordingSource`; EMG channels in µV through PLUX's EMG
transfer function, every other sensor ("EDA", "ECG", "ACC", "RAW", ...) typed "misc" in raw ADC
units.

Layouts: PLUX, "OpenSignals Sensor File Specifications (.TXT Format)",
https://support.pluxbiosignals.com/knowledge-base/opensignals-sensor-file-specifications-txt-format/
(several devices in one file: their columns follow each other in the header's order); the HDF5
layout as PLUX's own reader opens it (biosignalsnotebooks, ``biosignalsnotebooks/load.py``,
``read_header`` and ``_load_h5``, https://github.com/pluxbiosignals/biosignalsnotebooks).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError
from .container import RecordingSource, short_error

# EMG(V) = (ADC / 2**n - 1/2) * VCC / G_EMG, with n the channel's resolution in bits and VCC in
# volts (x 1000 for the data sheets' mV: +-1.5 mV full range for biosignalsplux):
# - biosignalsplux: VCC = 3 V, G_EMG = 1000 (PLUX, "Electromyography (EMG) Sensor Data Sheet",
#   transfer function on page 2, http://www.biosignalsplux.com/datasheets/EMG_Sensor_Datasheet.pdf;
#   PLUX's notebook "EMG Sensor - Unit Conversion" applies it the same way,
#   http://notebooks.pluxbiosignals.com/notebooks/Categories/Pre-Process/unit_conversion_emg_rev.html)
# - BITalino (r)evolution: VCC = 3.3 V, G_EMG = 1009 (PLUX, "BITalino (r)evolution EMG Sensor Data
#   Sheet", http://bitalino.com/datasheets/REVOLUTION_EMG_Sensor_Datasheet.pdf)
_EMG_VCC_V_GAIN = {"biosignalsplux": (3.0, 1000.0), "bitalino": (3.3, 1009.0)}
_H5_CHANNEL = re.compile(r"channel_(\d+)$")


@dataclass
class _Channel:
    name: str
    ch_type: str
    scale: float      # µV (EMG) or raw units (others) per ADC count
    offset: float
    source: object    # column index (text) or dataset path (HDF5)


def _emg_transfer(device: str, bits: int) -> tuple[float, float]:
    """``(scale, offset)`` of the EMG transfer function in µV: ``uV = adc * scale + offset``."""
    family = "bitalino" if "bitalino" in device.lower() else "biosignalsplux"
    vcc_v, gain = _EMG_VCC_V_GAIN[family]
    full_scale_uv = vcc_v / gain * 1e6
    return full_scale_uv / 2.0 ** bits, -0.5 * full_scale_uv


def _channel(name: str, sensor: str, device: str, bits, source, path: Path) -> _Channel:
    if sensor.strip().upper().startswith("EMG"):
        try:
            bits = int(bits)
        except (TypeError, ValueError):
            raise InputError(f"{path}: EMG channel {name} has no valid resolution ({bits!r}); "
                             "the transfer function to µV needs it") from None
        scale, offset = _emg_transfer(device, bits)
        return _Channel(name, "emg", scale, offset, source)
    return _Channel(name, "misc", 1.0, 0.0, source)


def _text(value) -> str:
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _meta(channels: list[_Channel], devices: list[str], fmt: str, warnings: list[str]) -> dict:
    # EMG channels come out in µV through the transfer function; the others stay ADC counts
    meta = {"format": fmt, "devices": devices, "units": "uV",
            "units_as_read": ["uV" if c.ch_type == "emg" else "ADC counts" for c in channels]}
    raw = [c.name for c in channels if c.ch_type != "emg"]
    if raw:
        meta["channels_not_in_volts"] = raw  # raw ADC units
    if warnings:
        meta["warnings"] = warnings
    return meta


# ---- text ------------------------------------------------------------------------------------


def _split(line: str, delimiter: str | None) -> list[str]:
    stripped = line.strip()
    return stripped.split(delimiter) if stripped else []


def _bad_field(line: str, delimiter: str | None, usecols: Sequence[int], n_fields: int) -> str | None:
    """Why ``line`` does not parse (None when it does)."""
    fields = _split(line, delimiter)
    if not fields:
        return None
    if len(fields) < n_fields:
        return f"it has {len(fields)} values, the header promises {n_fields}"
    for col in usecols:
        try:
            float(fields[col])
        except ValueError:
            return f"could not read {fields[col].strip()!r} as a number (column {col + 1})"
    return None


def read_numeric_rows(lines: list[str], first_line: int, delimiter: str | None,
                      usecols: Sequence[int], n_fields: int, path: Path,
                      what: str) -> tuple[np.ndarray, list[str]]:
    """Parse the data rows of a text recording into float64 ``(rows, len(usecols))``.

    Parameters
    ----------
    lines : list of str
        The file's lines after its header.
    first_line : int
        1-based line number of ``lines[0]`` in the file, for messages.
    delimiter : str or None
        Field separator (None: any whitespace).
    usecols : sequence of int
        Columns to read.
    n_fields : int
        Values a complete row holds.
    path : Path
        The file, for messages.
    what : str
        The format's name, for messages.

    Returns
    -------
    (ndarray, list of str)
        The values, and warnings: a last row with fewer values (a recording cut short while it
        was written) is left out and said so.

    Raises
    ------
    InputError
        A row that does not parse (naming its 1-based line), or no rows at all.
    """
    warnings = []
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    lines = lines[:end]
    if lines and len(_split(lines[-1], delimiter)) < n_fields:
        warnings.append(f"the last line ({first_line + len(lines) - 1}) is incomplete, as in a "
                        "recording cut short, and was left out")
        lines = lines[:-1]
    if not lines:
        raise InputError(f"{path}: the {what} file holds a header but no samples")
    try:
        values = np.loadtxt(lines, delimiter=delimiter, usecols=list(usecols), dtype=np.float64,
                            ndmin=2, comments=None)
    except ValueError as exc:
        # numpy names a row (0- or 1-based depending on the error): look there first, then scan
        hint = re.search(r"row (\d+)", str(exc))
        candidates = []
        if hint:
            row = int(hint.group(1))
            candidates = [r for r in (row, row - 1, row + 1) if 0 <= r < len(lines)]
        for index in [*candidates, *range(len(lines))]:
            reason = _bad_field(lines[index], delimiter, usecols, n_fields)
            if reason:
                raise InputError(f"{path}: line {first_line + index}: {reason}; the {what} file "
                                 "is damaged there") from exc
        raise InputError(f"{path}: could not read the {what} rows ({short_error(exc)})") from exc
    return values, warnings


def open_opensignals_txt(path: Path) -> RecordingSource:
    """Open an OpenSignals text export (``.txt``).

    Parameters
    ----------
    path : Path
        The export, starting with ``# OpenSignals Text File Format``.

    Returns
    -------
    RecordingSource
        EMG channels in µV (PLUX's EMG transfer function with each channel's resolution), other
        sensors typed "misc" in raw ADC units; channels named by the header's "label" (prefixed
        with the device's MAC address where two devices use the same label).

    Raises
    ------
    InputError
        A truncated or damaged header, devices at different rates, already converted values,
        or a row that does not parse (naming its line).
    """
    try:
        lines = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file ({short_error(exc)})") from exc
    end = next((i for i, line in enumerate(lines) if line.strip().lower() == "# endofheader"), None)
    json_line = next((i for i, line in enumerate(lines[:end]) if line.lstrip("# ").startswith("{")),
                     None)
    if end is None or json_line is None:
        raise InputError(f"{path}: the OpenSignals header ends early (no settings line or no "
                         "'# EndOfHeader' line); the file is truncated or damaged")
    try:
        header = json.loads(lines[json_line].lstrip("# "))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: line {json_line + 1}: the OpenSignals settings are not valid "
                         f"JSON ({exc.msg}); the file is truncated or damaged") from exc
    if not isinstance(header, dict) or not header:
        raise InputError(f"{path}: line {json_line + 1}: the OpenSignals settings name no device")

    channels: list[_Channel] = []
    rates = {}
    offset = 0
    for mac, device in header.items():
        try:
            columns = list(device["column"])
            labels = list(device["label"])
            rates[mac] = float(device["sampling rate"])
            resolution = device.get("resolution", [])
            sensors = list(device.get("sensor") or ["RAW"] * len(labels))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}: the OpenSignals settings of device {mac} lack "
                             f"{short_error(exc)}") from exc
        if device.get("convertedValues"):
            raise InputError(f"{path}: device {mac} was exported with converted values, whose "
                             "units the file does not state; export the raw values from "
                             "OpenSignals instead")
        bits = list(resolution) if isinstance(resolution, list) else [resolution] * len(labels)
        if len(sensors) != len(labels) or len(bits) != len(labels):
            raise InputError(f"{path}: the OpenSignals settings of device {mac} list "
                             f"{len(labels)} labels but {len(sensors)} sensors and "
                             f"{len(bits)} resolutions")
        kind = str(device.get("device", ""))
        for label, sensor, n_bits in zip(labels, sensors, bits):
            if label not in columns:
                raise InputError(f"{path}: channel {label} of device {mac} is not among its "
                                 f"columns ({', '.join(map(str, columns))})")
            channels.append(_channel(str(label), str(sensor), kind, n_bits,
                                     offset + columns.index(label), path))
        offset += len(columns)
    if len(set(rates.values())) > 1:
        listed = ", ".join(f"{mac} {rate:g} Hz" for mac, rate in rates.items())
        raise InputError(f"{path}: the devices were recorded at different rates ({listed})")
    if not channels:
        raise InputError(f"{path}: the OpenSignals settings list no analog channel")
    names = [c.name for c in channels]
    if len(header) > 1 and len(set(names)) < len(names):
        device_of = [mac for mac, device in header.items() for _ in device["label"]]
        for c, mac in zip(channels, device_of):
            c.name = f"{mac} {c.name}"

    sample = next((line for line in lines[end + 1:] if line.strip()), "")
    delimiter = "\t" if "\t" in sample else None
    values, warnings = read_numeric_rows(lines[end + 1:], end + 2, delimiter,
                                         [c.source for c in channels], offset, path,
                                         "OpenSignals")
    scale = np.array([c.scale for c in channels])
    shift = np.array([c.offset for c in channels])
    data = np.ascontiguousarray((values * scale + shift).T)
    meta = _meta(channels, list(header), "OpenSignals", warnings)
    return RecordingSource(next(iter(rates.values())), [c.name for c in channels],
                           [c.ch_type for c in channels], data.shape[1],
                           lambda a, b: data[:, a:b], [], str(path), meta)


# ---- HDF5 ------------------------------------------------------------------------------------


def open_opensignals_h5(path: Path) -> RecordingSource:
    """Open an OpenSignals HDF5 recording (``.h5``), reading its samples lazily.

    Parameters
    ----------
    path : Path
        The file: a group per device MAC address, with "sampling rate", "resolution" and
        "channels" attributes and a ``raw`` group of ``channel_N`` datasets (each with a
        "sensor" attribute).

    Returns
    -------
    RecordingSource
        As :func:`open_opensignals_txt`; channels named by their dataset's "label" attribute,
        else ``CH<N>``. Every ``read`` opens the file again, so no handle stays open.

    Raises
    ------
    InputError
        ``h5py`` missing, not an HDF5 file, truncated, no OpenSignals device group, devices at
        different rates.
    """
    try:
        import h5py
    except ImportError as exc:
        raise InputError(f"{path}: reading OpenSignals .h5 files needs the Python package "
                         "'h5py', which is not installed here: install it into this Python "
                         "(python -m pip install h5py), or export the recording from "
                         "OpenSignals as text") from exc
    channels: list[_Channel] = []
    rates = {}
    lengths = []
    try:
        with h5py.File(path, "r") as f:
            devices = [key for key, group in f.items()
                       if isinstance(group, h5py.Group) and isinstance(group.get("raw"), h5py.Group)]
            if not devices:
                raise InputError(f"{path}: no OpenSignals device in this HDF5 file (a group per "
                                 "device MAC address holding a 'raw' group)")
            for mac in devices:
                group = f[mac]
                attrs = group.attrs
                if "sampling rate" not in attrs:
                    raise InputError(f"{path}: device {mac} has no 'sampling rate' attribute")
                rates[mac] = float(np.asarray(attrs["sampling rate"]).reshape(-1)[0])
                if attrs.get("convertedValues") is not None and np.any(attrs["convertedValues"]):
                    raise InputError(f"{path}: device {mac} was saved with converted values, "
                                     "whose units the file does not state; save the raw values")
                numbers = [int(m.group(1)) for m in map(_H5_CHANNEL.match, group["raw"].keys()) if m]
                listed = [int(n) for n in np.asarray(attrs.get("channels", numbers)).reshape(-1)]
                bits_of = dict(zip(listed, np.asarray(attrs.get("resolution", [])).reshape(-1)))
                kind = _text(attrs.get("device", ""))
                for number in sorted(numbers):
                    dataset = group["raw"][f"channel_{number}"]
                    name = _text(dataset.attrs.get("label", "")) or f"CH{number}"
                    sensor = _text(dataset.attrs.get("sensor", "RAW"))
                    channels.append(_channel(name, sensor, kind, bits_of.get(number), dataset.name,
                                             path))
                    lengths.append(int(dataset.shape[0]) if dataset.ndim else 0)
                    if lengths[-1]:
                        dataset[lengths[-1] - 1]  # the last sample is there: the file is whole
    except InputError:
        raise
    except Exception as exc:  # OSError "truncated file", "file signature not found" ...
        raise InputError(f"{path}: not a readable OpenSignals HDF5 file ({short_error(exc)}); "
                         "the file may be truncated or damaged") from exc
    if not channels:
        raise InputError(f"{path}: the OpenSignals file holds no raw/channel_N dataset")
    if len(set(rates.values())) > 1:
        listed = ", ".join(f"{mac} {rate:g} Hz" for mac, rate in rates.items())
        raise InputError(f"{path}: the devices were recorded at different rates ({listed})")
    names = [c.name for c in channels]
    if len(devices) > 1 and len(set(names)) < len(names):
        for c in channels:
            c.name = f"{c.source.split('/')[1]} {c.name}"
    n_samples = min(lengths)
    warnings = []
    if max(lengths) != n_samples:
        warnings.append(f"channels hold {n_samples} to {max(lengths)} samples; read to the "
                        "shortest")

    def reader(start: int, stop: int) -> np.ndarray:
        out = np.empty((len(channels), stop - start))
        with h5py.File(path, "r") as f:
            for i, c in enumerate(channels):
                values = np.asarray(f[c.source][start:stop], dtype=np.float64).reshape(stop - start, -1)
                out[i] = values[:, 0] * c.scale + c.offset
        return out

    meta = _meta(channels, devices, "OpenSignals HDF5", warnings)
    return RecordingSource(next(iter(rates.values())), [c.name for c in channels],
                           [c.ch_type for c in channels], n_samples, reader, [], str(path), meta)
