"""Reading recordings: one dispatch from a file's extension to its format family's back-end.

:func:`read_recording` loads a whole file into a :class:`Recording`; :func:`open_recording` opens
it for reading in pieces (a :class:`RecordingSource`), which the chunked envelope engine uses so
that hour-long files never sit in memory at once. EDF/EDF+, BDF, GDF, BrainVision, EEGLAB, FIF and
Neuroscan CNT go through ``mne.io.read_raw``; XDF through ``pyxdf``; CSV through numpy.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError
from ._mne import open_mne
from ._xdf import open_xdf
from .container import Recording, RecordingSource, check_finite, short_error
from .csvfile import open_csv

#: extension -> format name, for reading
READ_FORMATS: dict[str, str] = {
    ".edf": "EDF", ".bdf": "BDF", ".gdf": "GDF", ".vhdr": "BrainVision", ".set": "EEGLAB",
    ".fif": "FIF", ".fif.gz": "FIF", ".cnt": "CNT", ".xdf": "XDF", ".xdfz": "XDF",
    ".csv": "CSV", ".tsv": "CSV", ".txt": "CSV",
}
#: extension -> format name, for writing
WRITE_FORMATS: dict[str, str] = {
    ".edf": "EDF", ".bdf": "BDF", ".fif": "FIF", ".fif.gz": "FIF", ".vhdr": "BrainVision",
    ".set": "EEGLAB", ".xdf": "XDF", ".csv": "CSV",
}

_MNE_FORMATS = {"EDF", "BDF", "GDF", "BrainVision", "EEGLAB", "FIF", "CNT"}


def file_format(path: str | Path, *, for_writing: bool = False) -> str:
    """Name of the file format for ``path`` from its extension ("EDF", "XDF", ...).

    Raises
    ------
    InputError
        If the extension is not a supported format (the message lists the supported ones).
    """
    name = Path(path).name.lower()
    table = WRITE_FORMATS if for_writing else READ_FORMATS
    for ext in sorted(table, key=len, reverse=True):  # ".fif.gz" before ".gz"-less matches
        if name.endswith(ext):
            return table[ext]
    verb = "write" if for_writing else "read"
    raise InputError(
        f"{path}: cannot {verb} this file type ({Path(path).suffix or 'no extension'}); "
        f"supported: {', '.join(sorted(table))}"
    )



def open_recording(path: str | Path, *, rate_hz: float | None = None, csv_kind: str = "auto",
                   channel_names: Sequence[str] | None = None, units: str | None = None,
                   xdf_stream: str | None = None) -> RecordingSource:
    """Open a recording file for reading in pieces.

    Parameters
    ----------
    path : str or Path
        EDF/EDF+, BDF, GDF, BrainVision (.vhdr), EEGLAB (.set), FIF, CNT, XDF or CSV.
    rate_hz : float, optional
        Sampling rate for a CSV without a time column (ignored for other formats).
    csv_kind : {"auto", "raw", "envelope"}
        What a CSV holds: raw samples, or already-processed envelopes at frame rate.
    channel_names : sequence of str, optional
        Names for a CSV without a header row.
    units : {"uV", "mV", "V"}, optional
        Units of a CSV or XDF whose file does not say (default µV).
    xdf_stream : str, optional
        Name of the XDF stream to read (default: the EMG-typed stream, else the largest one).

    Returns
    -------
    RecordingSource
        Header fields plus ``read(start, stop)`` in µV. MNE formats are read lazily from disk;
        CSV and XDF are held in memory.

    Raises
    ------
    InputError
        Missing, empty, truncated or mislabelled file, unsupported format, no channels,
        duplicate channel names.
    """
    path = Path(path)
    fmt = file_format(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a recording file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    if fmt in _MNE_FORMATS:
        src = open_mne(path, fmt)
    elif fmt == "XDF":
        src = open_xdf(path, units=units, stream_name=xdf_stream)
    else:
        src = open_csv(path, rate_hz=rate_hz, kind=csv_kind, channel_names=channel_names,
                        units=units)
    _check_header(src, path)
    src.meta.setdefault("format", fmt)
    src.meta.setdefault("signal", "raw")
    return src


def read_recording(path: str | Path, **kwargs) -> Recording:
    """Read a whole recording file into a :class:`Recording` (samples in µV).

    Takes the same keyword arguments as :func:`open_recording`. ``meta["signal"]`` is ``"raw"``
    for samples and ``"envelope"`` for an already-processed envelope CSV (its ``rate_hz`` is
    then the frame rate).

    Raises
    ------
    InputError
        As :func:`open_recording`, and for NaN or infinite samples (naming the channels).
    """
    src = open_recording(path, **kwargs)
    try:
        rec = src.load()
    except InputError:
        raise
    except Exception as exc:  # a header that promises more data than the file holds
        raise InputError(f"{path}: could not read the samples ({short_error(exc)}); "
                         "the file may be truncated or damaged") from exc
    check_finite(rec.data_uv, rec.channel_names, rec.rate_hz, str(path))
    return rec



def _check_header(src: RecordingSource, path: Path) -> None:
    if src.n_channels == 0:
        raise InputError(f"{path}: the file holds no signal channels")
    if src.n_samples == 0:
        raise InputError(f"{path}: the file holds no samples")
    if not (np.isfinite(src.rate_hz) and src.rate_hz > 0):
        raise InputError(f"{path}: invalid sampling rate {src.rate_hz}")
    dupes = sorted({n for n in src.channel_names if src.channel_names.count(n) > 1})
    if dupes:
        raise InputError(f"{path}: duplicate channel names: {', '.join(dupes)}")
