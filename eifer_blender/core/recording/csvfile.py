"""Back-end for delimited text: CSV/TSV/TXT recordings and envelope tables, read and written.

In: a text file of samples, one row per sample. Out: a :class:`RecordingSource` in µV (NaN where
a cell is missing) with ``meta`` keys ``signal`` ("raw" or "envelope"), ``units`` (of the samples
delivered: "uV", "normalised" or "unknown"), ``units_as_read`` (per channel, as the file or the
``units`` argument states it), ``column_numbers`` (each channel's 1-based column in the file, the
time column counted), ``row_labels`` (a text first column), ``warnings``.

Layout written here (and read by any spreadsheet)::

    # eifer recording
    # kind=raw            (or "envelope")
    # rate_hz=4096
    # units=uV
    time_s,Zyg_L,Zyg_R,...
    0.0,1.25,-3.5,...

Read as well, as lab software writes it:

- separators: comma, semicolon, tab or white space; a separator at the end of every row (an empty
  last column) is no channel; with semicolons or tabs a decimal comma reads as a decimal point;
- a UTF-8, UTF-16 or UTF-32 byte-order mark; Windows or old Mac line ends;
- a header row or none; units in the header as ``name (unit)`` or ``name [unit]`` (``EMG (mV)``,
  ``Zyg li [µV]``), or in a ``# units=mV`` line; no unit is guessed;
- missing cells: empty, ``NULL``, ``NaN``, ``NA``, ``N/A``, ``#N/A`` (any case) become NaN; what
  happens to them is the processing stage's NaN policy;
- a time column (``time``, ``time_s``, ``t``, ``timestamp``, ``time_ms``, ``Time (s)``) gives the
  rate, otherwise pass ``rate_hz``; a first column with an empty or index-like header holds an
  index (numbers, dropped) or row labels (text, kept in ``meta["row_labels"]``).

Without a ``kind`` line, a file whose values are all non-negative is taken for already-processed
envelopes (the layout of the "Mimics, Muscles, and Me" release: 22 columns at 30 Hz, no units
stated), anything else for raw samples. Every parse error names the line as an editor counts it
(1-based, header and comment lines included) and the 1-based column.

Loading is vectorised: line and cell boundaries are found with numpy on the file's bytes, the
numbers are parsed by ``np.loadtxt``'s C reader, and only rows holding text (missing-value
tokens, quotes, labels) go through Python; one hour of 2 channels at 2 kHz loads in seconds.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError
from .container import RecordingSource
from .csvparse import INDEX_COLUMN, TIME_COLUMN, is_number, read_table
from .units import (
    UNKNOWN,
    canonical_unit,
    check_units_argument,
    resolve_units,
    sample_units,
    split_header_unit,
    unit_scale,
)


def open_csv(path: Path, *, rate_hz: float | None, kind: str, channel_names: Sequence[str] | None,
             units: str | None) -> RecordingSource:
    """Open a CSV/TSV/TXT recording or envelope table (see the module docstring).

    Parameters
    ----------
    path : Path
        The text file.
    rate_hz : float, optional
        Sampling (or frame) rate; overrides the file's own.
    kind : {"auto", "raw", "envelope"}
        What the file holds; "auto" reads a ``# kind=`` line, else looks at the values' signs.
    channel_names : sequence of str, optional
        Names replacing the file's (one per channel column).
    units : {"uV", "mV", "V"}, optional
        Units of the channels whose file does not state them.

    Returns
    -------
    RecordingSource
        Samples in µV held in memory (NaN for missing cells), ``meta`` as the module docstring
        lists. Channels of unknown units are left as they are, ``meta["units_as_read"]`` saying
        "unknown": :func:`~.read.open_recording` refuses raw samples in unknown units.

    Raises
    ------
    InputError
        Unparseable file (naming line and column), no channels, no rate for raw samples,
        an uneven time column, a unit this package does not know.
    """
    if kind not in ("auto", "raw", "envelope"):
        raise InputError(f"csv kind must be auto, raw or envelope, not '{kind}'")
    given = check_units_argument(units)
    table = read_table(path)
    values, comments, header = table.values, table.comments, table.header
    n_rows, n_cols = values.shape
    file_names = [header[c - 1] for c in table.column_numbers] if header else [None] * n_cols
    keep = np.ones(n_cols, dtype=bool)
    time_s = None
    for j, name in enumerate(file_names):
        if name is None:
            break
        match = TIME_COLUMN.match(name)
        if match and time_s is None:
            scale = 1e-3 if (match.group(3) or "").lower() == "ms" or name.lower().endswith("ms") else 1.0
            time_s = values[:, j] * scale
            keep[j] = False
        elif j == 0 and table.row_labels is None and INDEX_COLUMN.match(name):
            keep[j] = False  # a numbered index (pandas writes one with an empty header)
    last = n_cols - 1
    if (n_cols > 1 and keep[last] and not file_names[last] and n_rows
            and np.isnan(values[:, last]).all()):
        keep[last] = False  # an all-empty last column (separators closing some rows) is no channel
    data = values[:, keep].T
    numbers = [c for c, k in zip(table.column_numbers, keep) if k]
    names, header_units = [], []
    for c, name in zip(numbers, (n for n, k in zip(file_names, keep) if k)):
        clean, unit = split_header_unit(name) if name else (None, None)
        names.append(clean or f"ch{c}")
        header_units.append(unit)
    if channel_names is not None:
        if len(channel_names) != len(names):
            raise InputError(f"{path}: {len(channel_names)} channel names given for "
                             f"{len(names)} columns")
        names = list(channel_names)
    if data.shape[0] == 0:
        raise InputError(f"{path}: the file holds no signal channels (only time/index columns)")

    file_kind = comments.get("kind", "").lower()
    if kind == "auto":
        if file_kind in ("raw", "envelope"):
            kind = file_kind
        else:
            finite = data[np.isfinite(data)]
            kind = "envelope" if finite.size and finite.min() >= 0 else "raw"

    rate = None
    for key in ("rate_hz", "fps", "srate", "sfreq"):  # our own header states the exact rate
        if rate is None and key in comments and is_number(comments[key]):
            rate = float(comments[key])
    if time_s is not None and len(time_s) > 1:
        steps = np.diff(time_s)
        steps = steps[np.isfinite(steps)]  # a missing time cell leaves a gap, not an error
        step = float(np.median(steps)) if steps.size else float("nan")
        if not step > 0 or np.max(np.abs(steps - step)) > 0.01 * step:
            raise InputError(f"{path}: the time column is not evenly spaced; resample it first")
        if rate is None:
            rate = 1.0 / step
            finite_t = np.flatnonzero(np.isfinite(time_s))
            if len(finite_t) > 1:
                span = float(time_s[finite_t[-1]] - time_s[finite_t[0]])
                rate = (finite_t[-1] - finite_t[0]) / span
    if rate_hz is not None:
        rate = float(rate_hz)
    meta: dict = {"format": "CSV", "signal": kind, "column_numbers": numbers}
    if table.row_labels is not None:
        meta["row_labels"] = table.row_labels
    if rate is None:
        if kind == "envelope":
            rate = 30.0  # the MMM release's frame rate
            meta["rate_assumed"] = "no time column or rate given; 30 Hz assumed (MMM layout)"
        else:
            raise InputError(f"{path}: the CSV has no time column; give the sampling rate "
                             "(rate_hz=..., or --rate on the command line)")

    comment_unit = comments.get("units") or comments.get("unit")
    if comment_unit is not None and comment_unit.lower() == UNKNOWN:
        comment_unit = None  # written back from a table whose units nobody knew
    elif comment_unit is not None:
        if canonical_unit(comment_unit) is None:
            raise InputError(f"{path}: unknown unit '{comment_unit}' in the '# units=' line; "
                             "use uV, mV or V")
        comment_unit = canonical_unit(comment_unit)
    stated = [u or comment_unit for u in header_units]
    as_read, given_for, notes = resolve_units(stated, given, names, path)
    scale = np.array([unit_scale(u, 1.0, path) if u != UNKNOWN else 1.0 for u in as_read])
    meta["units_as_read"] = as_read
    meta["units_given"] = given_for
    meta["units"] = sample_units(as_read, ["emg"] * len(names))
    if notes:
        meta["warnings"] = notes
    data_uv = np.ascontiguousarray(data * scale[:, None]) if np.any(scale != 1.0) else np.ascontiguousarray(data)
    start_s = float(time_s[0]) if time_s is not None and np.isfinite(time_s[0]) else float(
        comments.get("start_s", 0) or 0)
    if start_s:
        meta["start_s"] = start_s
    types = ["emg"] * len(names)
    return RecordingSource(float(rate), names, types, data_uv.shape[1],
                           lambda a, b: data_uv[:, a:b], [], str(path), meta)


def write_csv(path: Path, data: np.ndarray, names: Sequence[str], rate_hz: float, *,
               kind: str, units: str, start_s: float = 0.0, extra: dict | None = None) -> None:
    """Write channels as a CSV in the layout above (``time_s`` column, ``#`` header lines).

    Parameters
    ----------
    path : Path
        The file to write.
    data : ndarray
        (channels, samples) in ``units``.
    names : sequence of str
        Channel names (no commas, quotes or '#').
    rate_hz : float
        Sampling (or frame) rate.
    kind : {"raw", "envelope"}
        Written as the ``# kind=`` line.
    units : str
        Written as the ``# units=`` line ("uV" for recordings).
    start_s : float
        Time of the first sample.
    extra : dict, optional
        More ``# key=value`` lines.
    """
    bad = [n for n in names if any(c in n for c in ",\n\"#")]
    if bad:
        raise InputError(f"{path}: channel names with commas, quotes or '#' cannot go into CSV: "
                         f"{', '.join(bad)}")
    n = data.shape[1]
    time_s = start_s + np.arange(n) / rate_hz
    lines = [f"# eifer {'envelopes' if kind == 'envelope' else 'recording'}", f"# kind={kind}",
             f"# rate_hz={rate_hz!r}", f"# units={units}"]
    for key, value in (extra or {}).items():
        lines.append(f"# {key}={value}")
    header = ",".join(["time_s", *names])
    table = np.column_stack([time_s, np.asarray(data, dtype=np.float64).T])
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
        np.savetxt(f, table, delimiter=",", fmt=["%.12g"] + ["%.10g"] * len(names), header=header,
                   comments="")
