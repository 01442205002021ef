"""Back-end for OpenBCI GUI recordings (``OpenBCI-RAW-*.txt``, Cyton, Ganglion, Daisy boards).

In: the text file the OpenBCI GUI writes: ``%`` comment lines (``%OpenBCI Raw EXG Data``,
``%Number of channels = 8``, ``%Sample Rate = 250 Hz``, ``%Board = ...``), a column header
``Sample Index, EXG Channel 0, ..., Accel Channel 0, ..., Timestamp, Marker Channel, Timestamp
(Formatted)`` and comma-separated rows (OpenBCI GUI 5, ``OpenBCI_GUI/DataWriterODF.pde`` in
https://github.com/OpenBCI/OpenBCI_GUI). Out: a :class:`RecordingSource` with the EXG channels
as "emg" in µV (the GUI writes them in microvolts, as the header of its older files says: "Other
Columns = EEG data in microvolts"), accelerometer, analog and digital columns as "misc" in their
own units, and non-zero values of the marker column as annotations. The sample index, the
timestamps and the unnamed "Other"/"Not Used" columns are not channels.

Older GUI files (``%OpenBCI Raw EEG Data`` without a column header) are read when their header
states the number of channels: the EXG channels only, which follow the sample index.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import InputError
from ._opensignals import read_numeric_rows
from .container import Annotation, RecordingSource, short_error
from .csvparse import is_number

_RATE = re.compile(r"sample\s*rate\s*=\s*([0-9]*\.?[0-9]+)\s*hz", re.IGNORECASE)
_CHANNEL_COUNT = re.compile(r"number\s+of\s+channels\s*=\s*(\d+)", re.IGNORECASE)
_BOARD = re.compile(r"board\s*=\s*(.+)", re.IGNORECASE)
_EXG = re.compile(r"^(exg|eeg|emg)\s*channel\s*\d+$", re.IGNORECASE)
_NOT_CHANNELS = {"sample index", "timestamp", "timestamp (formatted)", "other", "not used", ""}
_MARKER = "marker channel"


def open_openbci(path: Path) -> RecordingSource:
    """Open an OpenBCI GUI recording.

    Parameters
    ----------
    path : Path
        The ``OpenBCI-RAW-*.txt`` file (or a ``.csv`` with the same content).

    Returns
    -------
    RecordingSource
        EXG channels typed "emg" in µV, other named columns "misc" in their own units (listed in
        ``meta["channels_not_in_volts"]``), marker-column events as annotations, ``meta["board"]``
        as the header states it.

    Raises
    ------
    InputError
        No sample rate in the header, an older file without a channel count, no channels, or a
        row that does not parse (naming its line).
    """
    try:
        lines = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file ({short_error(exc)})") from exc
    start = 0
    comments = []
    while start < len(lines) and (not lines[start].strip() or lines[start].lstrip().startswith("%")):
        comments.append(lines[start].lstrip()[1:].strip())
        start += 1
    header_text = "\n".join(comments)
    rate = _RATE.search(header_text)
    if rate is None or float(rate.group(1)) <= 0:
        raise InputError(f"{path}: the OpenBCI header has no 'Sample Rate = ... Hz' line; the "
                         "file may be truncated or damaged")
    rate_hz = float(rate.group(1))
    if start == len(lines):
        raise InputError(f"{path}: the OpenBCI file holds a header but no samples")
    fields = [f.strip() for f in lines[start].split(",")]
    if not is_number(fields[0]):  # GUI 5: a column header line
        columns, body_start = fields, start + 1
    else:  # older GUIs: index, the EXG channels, then accelerometer/aux and a time of day
        count = _CHANNEL_COUNT.search(header_text)
        if count is None:
            raise InputError(f"{path}: this older OpenBCI file has no column header and does not "
                             "say how many channels it holds ('%Number of channels = ...'); "
                             "convert it with a recent OpenBCI GUI (Playback) or as CSV")
        columns = ["Sample Index"] + [f"EXG Channel {k}" for k in range(int(count.group(1)))]
        body_start = start
    names, types, cols = [], [], []
    marker_col = None
    for col, name in enumerate(columns):
        key = name.lower()
        if key == _MARKER:
            marker_col = col
        elif key not in _NOT_CHANNELS:
            names.append(name)
            types.append("emg" if _EXG.match(name) else "misc")
            cols.append(col)
    if not names:
        raise InputError(f"{path}: the OpenBCI file names no channel columns "
                         f"({', '.join(columns)})")
    usecols = cols + ([marker_col] if marker_col is not None else [])
    values, warnings = read_numeric_rows(lines[body_start:], body_start + 1, ",", usecols,
                                         len(columns), path, "OpenBCI")
    data = np.ascontiguousarray(values[:, :len(cols)].T)
    annotations = []
    if marker_col is not None:
        markers = values[:, -1]
        for row in np.flatnonzero(np.nan_to_num(markers) != 0):
            annotations.append(Annotation(row / rate_hz, 0.0, f"{markers[row]:g}"))
    board = _BOARD.search(header_text)
    as_read = ["uV" if t == "emg" else "g" if n.lower().startswith("accel") else
               "0/1" if n.lower().startswith("digital") else "ADC counts" for n, t in zip(names, types)]
    meta = {"format": "OpenBCI", "units": "uV", "units_as_read": as_read}
    if board:
        meta["board"] = board.group(1).strip()
    not_volts = [n for n, t in zip(names, types) if t != "emg"]
    if not_volts:
        meta["channels_not_in_volts"] = not_volts  # accelerometer (g), analog and digital pins
    if warnings:
        meta["warnings"] = warnings
    return RecordingSource(rate_hz, names, types, data.shape[1], lambda a, b: data[:, a:b],
                           annotations, str(path), meta)
