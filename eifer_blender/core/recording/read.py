"""Reading recordings: one dispatch from a file's extension to its format family's back-end.

:func:`read_recording` loads a whole file into a :class:`Recording`; :func:`open_recording` opens
it for reading in pieces (a :class:`RecordingSource`), which the chunked envelope engine uses so
that hour-long files never sit in memory at once. EDF/EDF+, BDF, GDF, BrainVision, EEGLAB, FIF and
Neuroscan CNT go through ``mne.io.read_raw``; XDF through ``pyxdf``; CSV through numpy.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError
from ._mne import open_mne
from ._xdf import open_xdf
from .container import Recording, RecordingSource, check_finite, short_error
from .csvfile import open_csv
from .units import (
    UNKNOWN,
    VOLTAGE_UNITS,
    check_units_argument,
    is_voltage,
    missing_units_message,
    resolve_units,
    sample_units,
    unit_scale,
)

#: extension -> format name, for reading
READ_FORMATS: dict[str, str] = {
    ".edf": "EDF", ".bdf": "BDF", ".gdf": "GDF", ".vhdr": "BrainVision", ".set": "EEGLAB",
    ".fif": "FIF", ".fif.gz": "FIF", ".cnt": "CNT", ".xdf": "XDF", ".xdfz": "XDF",
    ".acq": "BIOPAC", ".h5": "OpenSignals HDF5", ".hdf5": "OpenSignals HDF5",
    ".csv": "CSV", ".tsv": "CSV", ".txt": "CSV",
}
#: first characters of a text file -> format name, for the lab formats that share .txt/.csv with CSV
READ_SIGNATURES: dict[str, str] = {
    "# OpenSignals Text File Format": "OpenSignals",  # PLUX OpenSignals text export
    "%OpenBCI Raw": "OpenBCI",                         # OpenBCI GUI recording (EXG / EEG Data)
}
#: extension -> format name, for writing
WRITE_FORMATS: dict[str, str] = {
    ".edf": "EDF", ".bdf": "BDF", ".fif": "FIF", ".fif.gz": "FIF", ".vhdr": "BrainVision",
    ".set": "EEGLAB", ".xdf": "XDF", ".csv": "CSV",
}

_MNE_FORMATS = {"EDF", "BDF", "GDF", "BrainVision", "EEGLAB", "FIF", "CNT"}


def file_format(path: str | Path, *, for_writing: bool = False) -> str:
    """Name of the file format for ``path`` from its extension ("EDF", "XDF", ...).

    For reading, a text file (``.csv``, ``.tsv``, ``.txt``) that exists is also recognised by
    its first line: an OpenSignals text export is "OpenSignals", an OpenBCI GUI recording
    "OpenBCI" (:data:`READ_SIGNATURES`); any other is "CSV".

    Raises
    ------
    InputError
        If the extension is not a supported format (the message lists the supported ones).
    """
    name = Path(path).name.lower()
    table = WRITE_FORMATS if for_writing else READ_FORMATS
    for ext in sorted(table, key=len, reverse=True):  # ".fif.gz" before ".gz"-less matches
        if name.endswith(ext):
            if table[ext] == "CSV" and not for_writing and Path(path).is_file():
                try:
                    with open(path, "rb") as fh:
                        head = fh.read(64).decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
                except OSError:
                    head = ""  # unreadable: open_csv says so
                for signature, fmt in READ_SIGNATURES.items():
                    if head.startswith(signature):
                        return fmt
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
        Units of the channels whose file does not say: a CSV without units in its header, an
        EDF/BDF channel with an empty physical dimension, an XDF channel without a unit.
        Never guessed: raw samples of unknown units are refused. Ignored, with a warning in
        ``meta["warnings"]``, for channels whose file states other units.
    xdf_stream : str, optional
        Name of the XDF stream to read (default: the EMG-typed stream, else the largest one).

    Returns
    -------
    RecordingSource
        Header fields plus ``read(start, stop)`` in µV. MNE formats are read lazily from disk;
        CSV and XDF are held in memory. ``meta["units_as_read"]`` gives each channel's unit as
        the file (or ``units``) states it, ``meta["units"]`` that of the samples delivered
        ("uV"; "normalised" or "unknown" for envelope tables), ``meta["warnings"]`` what the
        user should know: a file cut short, ignored ``units``, levels implausible for
        facial sEMG (see :func:`check_plausible_levels`).

    Raises
    ------
    InputError
        Missing, empty, truncated or mislabelled file, unsupported format, no channels,
        duplicate channel names, raw samples whose units neither the file nor ``units`` states.
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
        src = open_xdf(path, stream_name=xdf_stream)
    elif fmt == "BIOPAC":
        from ._biopac import open_biopac
        src = open_biopac(path)
    elif fmt == "OpenSignals":
        from ._opensignals import open_opensignals_txt
        src = open_opensignals_txt(path)
    elif fmt == "OpenSignals HDF5":
        from ._opensignals import open_opensignals_h5
        src = open_opensignals_h5(path)
    elif fmt == "OpenBCI":
        from ._openbci import open_openbci
        src = open_openbci(path)
    else:
        src = open_csv(path, rate_hz=rate_hz, kind=csv_kind, channel_names=channel_names,
                        units=units)
    _check_header(src, path)
    src.meta.setdefault("format", fmt)
    src.meta.setdefault("signal", "raw")
    _settle_units(src, path, units)
    check_plausible_levels(src, path)
    return src


def read_recording(path: str | Path, *, allow_missing: bool = False, **kwargs) -> Recording:
    """Read a whole recording file into a :class:`Recording` (samples in µV).

    Takes the same keyword arguments as :func:`open_recording`. ``meta["signal"]`` is ``"raw"``
    for samples and ``"envelope"`` for an already-processed envelope CSV (its ``rate_hz`` is
    then the frame rate). ``allow_missing=True`` keeps missing samples (a CSV's empty or
    ``NULL`` cells) as NaN for the processing stage's NaN policy; infinite samples are refused
    either way.

    Raises
    ------
    InputError
        As :func:`open_recording`, and for NaN (unless ``allow_missing``) or infinite samples,
        naming the channels.
    """
    src = open_recording(path, **kwargs)
    try:
        rec = src.load()
    except InputError:
        raise
    except Exception as exc:  # a header that promises more data than the file holds
        raise InputError(f"{path}: could not read the samples ({short_error(exc)}); "
                         "the file may be truncated or damaged") from exc
    if allow_missing:  # only the infinite samples are errors
        infinite = np.isinf(rec.data_uv)
        if infinite.any():
            check_finite(np.where(infinite, np.inf, 0.0), rec.channel_names, rec.rate_hz, str(path))
    else:
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


def _add_warnings(src: RecordingSource, notes) -> None:
    if notes:
        src.meta.setdefault("warnings", []).extend(notes)


def _settle_units(src: RecordingSource, path: Path, units: str | None) -> None:
    """Apply ``units`` to the channels whose file does not state theirs; refuse unknown raw units.

    A back-end reports ``meta["units_as_read"]`` (UNKNOWN where the file is silent) and, if it
    applied ``units`` itself (CSV), ``meta["units_given"]``; for the others (MNE formats) the
    given unit is applied here. Raw samples still of unknown units raise; envelope tables are
    read as they are (``meta["units"] = "unknown"``, with a warning: they are normalised later).
    """
    as_read = src.meta.get("units_as_read")
    if as_read is None:
        return
    names, types = list(src.channel_names), list(src.channel_types)
    if "units_given" not in src.meta:
        given = check_units_argument(units)
        stated = [None if u == UNKNOWN else u for u in as_read]
        applicable = [t != "stim" for t in types]  # trigger channels carry codes, not volts
        as_read, given_for, notes = resolve_units(stated, given, names, path, applicable)
        if given_for:
            factor = np.array([unit_scale(given, 1.0, path) if s is None and ok else 1.0
                               for s, ok in zip(stated, applicable)])
            reader = src.reader
            src.reader = lambda a, b: reader(a, b) * factor[:, None]
        src.meta["units_as_read"] = as_read
        src.meta["units_given"] = given_for
        _add_warnings(src, notes)
    unknown = [n for n, u, t in zip(names, as_read, types) if u == UNKNOWN and t not in ("stim", "misc")]
    if unknown and src.meta.get("signal") != "envelope":
        raise InputError(missing_units_message(path, unknown))
    src.meta["units"] = sample_units(as_read, types)
    if unknown:
        _add_warnings(src, [f"{path}: the file does not say in which units channel(s) "
                            f"{', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''} are; "
                            "read as envelopes of unknown units (normalise them, or pass units='uV')"])


#: resting RMS of facial sEMG, µV: a few µV at rest (FACTS §3, §10), mains hum ~20 µV on top; a
#: resting level outside this span points at samples read in the wrong unit
PLAUSIBLE_REST_UV = (0.3, 300.0)
_PRETTY_UNIT = {"uV": "µV"}


def check_plausible_levels(src: RecordingSource, path: str | Path, *, window_s: float = 0.5,
                           span_s: float = 60.0, percentile: float = 10.0) -> list[str]:
    """Warn when a raw EMG/EEG channel's resting level is implausible for facial sEMG.

    The resting level is the ``percentile``-th percentile of the RMS (mean removed) of
    ``window_s`` windows over at most the first ``span_s`` seconds, read through ``src.read``.
    Outside :data:`PLAUSIBLE_REST_UV` it adds a warning to ``src.meta["warnings"]`` naming the
    channels and the unit that would bring them into range ("values look like mV read as µV:
    pass units='mV'"). Never raises for the levels themselves.

    Parameters
    ----------
    src : RecordingSource
        An opened recording (samples in µV); envelope tables are not checked.
    path : str or Path
        The file, for the warning.
    window_s, span_s, percentile : float
        Window length, how much of the start to look at, and which percentile of the window
        RMS counts as rest.

    Returns
    -------
    list of str
        The warnings added.
    """
    if src.meta.get("signal", "raw") != "raw" or src.n_samples == 0:
        return []
    as_read = src.meta.get("units_as_read") or ["uV"] * src.n_channels
    picks = [i for i, (t, u) in enumerate(zip(src.channel_types, as_read))
             if t in ("emg", "eeg") and is_voltage(u)]
    if not picks:
        return []
    n = min(src.n_samples, max(1, int(round(span_s * src.rate_hz))))
    w = min(n, max(1, int(round(window_s * src.rate_hz))))
    x = src.read(0, n)[picks]
    windows = x[:, :(n // w) * w].reshape(len(picks), n // w, w)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-missing windows or channels
        rms = np.nanstd(windows, axis=2)
        level = np.nanpercentile(rms, percentile, axis=1)
    lo, hi = PLAUSIBLE_REST_UV
    given = set(src.meta.get("units_given", ()))
    groups: dict[tuple, list[str]] = {}
    for i, value in zip(picks, level):
        if not np.isfinite(value) or lo <= value <= hi:
            continue
        name, unit = src.channel_names[i], str(as_read[i])
        groups.setdefault((unit, _likely_unit(value, unit), value <= 0, name in given
                           or "units_as_read" not in src.meta), []).append(f"{name} ({value:.3g} µV)")
    notes = []
    for (unit, likely, flat, from_user), chans in groups.items():
        text = (f"{path}: channel(s) {', '.join(chans[:10])}{' ...' if len(chans) > 10 else ''} rest at "
                f"a level outside the {lo:g}–{hi:g} µV of facial sEMG")
        shown = _PRETTY_UNIT.get(unit, unit)
        if flat:
            text += " (no signal: a disconnected electrode or an empty channel?)"
        elif likely is not None:
            text += f": values look like {_PRETTY_UNIT.get(likely, likely)} read as {shown}: "
            text += (f"pass units='{likely}'" if from_user else
                     f"the file states {shown}, check how the recording was exported")
        notes.append(text)
    _add_warnings(src, notes)
    return notes


def _likely_unit(level_uv: float, unit: str) -> str | None:
    """The voltage unit that brings a resting level read in ``unit`` closest to ~10 µV, if in range."""
    if not level_uv > 0:
        return None
    lo, hi = PLAUSIBLE_REST_UV
    here = unit_scale(unit, 1.0, Path("."))
    best = None
    for candidate in VOLTAGE_UNITS:
        rescaled = level_uv / here * unit_scale(candidate, 1.0, Path("."))
        if candidate != unit and lo <= rescaled <= hi:
            score = abs(np.log10(rescaled / 10.0))
            if best is None or score < best[0]:
                best = (score, candidate)
    return best[1] if best else None
