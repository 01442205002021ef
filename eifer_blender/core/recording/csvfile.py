"""Back-end for delimited text: CSV/TSV/TXT recordings and envelope tables, read and written.

Layout written here (and read by any spreadsheet)::

    # eifer recording
    # kind=raw            (or "envelope")
    # rate_hz=4096
    # units=uV
    time_s,Zyg_L,Zyg_R,...
    0.0,1.25,-3.5,...

A CSV without the comment lines is read as well: a time column (``time``, ``time_s``, ``t``,
``timestamp``, ``time_ms``) gives the rate, otherwise pass ``rate_hz``. Without a ``kind`` line, a
file whose values are all non-negative is taken for already-processed envelopes (the layout of the
"Mimics, Muscles, and Me" release: 22 columns at 30 Hz, µV), anything else for raw samples.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError
from .container import RecordingSource, short_error
from .units import unit_scale

_TIME_COLUMN = re.compile(r"^\s*(time|t|times|timestamp|seconds|sec|s)\s*([_ ]?\(?\[?(s|sec|seconds|ms)\]?\)?)?\s*$",
                          re.IGNORECASE)
_INDEX_COLUMN = re.compile(r"^\s*(|unnamed: ?0|index|idx|frame|frames|sample|samples|#)\s*$",
                           re.IGNORECASE)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def open_csv(path: Path, *, rate_hz: float | None, kind: str, channel_names, units) -> RecordingSource:
    if kind not in ("auto", "raw", "envelope"):
        raise InputError(f"csv kind must be auto, raw or envelope, not '{kind}'")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a text (CSV) file") from exc
    comments: dict[str, str] = {}
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            for key, value in re.findall(r"(\w+)\s*=\s*([^\s,;]+)", stripped):
                comments[key.lower()] = value
            continue
        lines.append(line)
    if not lines:
        raise InputError(f"{path}: the CSV file holds no rows")
    delimiter = next((d for d in (",", ";", "\t") if d in lines[0]), None)

    def split(line: str) -> list[str]:
        return [f.strip().strip('"') for f in (line.split(delimiter) if delimiter else line.split())]

    first = split(lines[0])
    has_header = not all(_is_number(f) for f in first if f != "")
    header = first if has_header else None
    body = lines[1:] if has_header else lines
    if not body:
        raise InputError(f"{path}: the CSV file has a header but no rows")
    try:
        values = np.loadtxt(body, delimiter=delimiter, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise InputError(f"{path}: could not parse the CSV rows ({short_error(exc)})") from exc
    n_cols = values.shape[1]
    if header is not None and len(header) != n_cols:
        raise InputError(f"{path}: header has {len(header)} columns but rows have {n_cols}")
    names = list(header) if header is not None else [f"ch{i + 1}" for i in range(n_cols)]

    keep = np.ones(n_cols, dtype=bool)
    time_s = None
    for i, name in enumerate(names):
        if header is None:
            break
        match = _TIME_COLUMN.match(name)
        if match and time_s is None:
            scale = 1e-3 if (match.group(3) or "").lower() == "ms" or name.lower().endswith("ms") else 1.0
            time_s = values[:, i] * scale
            keep[i] = False
        elif _INDEX_COLUMN.match(name) and i == 0:
            keep[i] = False
    data = values[:, keep].T
    names = [n for n, k in zip(names, keep) if k]
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
        if rate is None and key in comments and _is_number(comments[key]):
            rate = float(comments[key])
    if time_s is not None and len(time_s) > 1:
        steps = np.diff(time_s)
        step = float(np.median(steps))
        if not step > 0 or np.max(np.abs(steps - step)) > 0.01 * step:
            raise InputError(f"{path}: the time column is not evenly spaced; resample it first")
        if rate is None:
            rate = (len(time_s) - 1) / float(time_s[-1] - time_s[0])
    if rate_hz is not None:
        rate = float(rate_hz)
    meta = {"format": "CSV", "signal": kind}
    if rate is None:
        if kind == "envelope":
            rate = 30.0  # the MMM release's frame rate
            meta["rate_assumed"] = "no time column or rate given; 30 Hz assumed (MMM layout)"
        else:
            raise InputError(f"{path}: the CSV has no time column; give the sampling rate "
                             "(rate_hz=..., or --rate on the command line)")
    unit = units or comments.get("units") or comments.get("unit")
    scale = unit_scale(unit, 1.0, path)
    meta["units"] = unit or "uV"
    data_uv = np.ascontiguousarray(data * scale)
    start_s = float(time_s[0]) if time_s is not None else float(comments.get("start_s", 0) or 0)
    if start_s:
        meta["start_s"] = start_s
    types = ["emg"] * len(names)
    return RecordingSource(float(rate), names, types, data_uv.shape[1],
                           lambda a, b: data_uv[:, a:b], [], str(path), meta)


def write_csv(path: Path, data: np.ndarray, names: Sequence[str], rate_hz: float, *,
               kind: str, units: str, start_s: float = 0.0, extra: dict | None = None) -> None:
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
