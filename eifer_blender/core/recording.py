"""sEMG recordings: the Recording container and the readers/writers that produce it.

Reading
    :func:`read_recording` loads a whole file into a :class:`Recording`; :func:`open_recording`
    opens it for reading in pieces (a :class:`RecordingSource`), which is what the chunked
    processing in :mod:`eifer_blender.core.processing` uses so that hour-long files never sit in
    memory at once. EDF/EDF+, BDF, GDF, BrainVision, EEGLAB, FIF and Neuroscan CNT go through
    ``mne.io.read_raw``; XDF through ``pyxdf``; CSV through numpy.

Writing
    :func:`write_recording` writes EDF (``mne.export``), BDF (``edfio``), FIF, BrainVision
    (``pybv``), EEGLAB (``eeglabio``), XDF (a minimal writer following the XDF 1.0 spec) and CSV.
    :func:`write_envelopes` / :func:`read_envelopes` do the same for frame-rate envelopes.

Units: samples are microvolts everywhere in this package (``data_uv``). Channel types use MNE's
vocabulary; EMG channels keep the ``emg`` type in FIF, EDF/BDF (``EMG `` label prefix, as
``mne.export.export_raw(add_ch_type=True)`` writes it), EEGLAB (``chanlocs.type``), XDF and CSV.
BrainVision cannot store a type: its channels come back as ``eeg``.

CSV layout written here (and read by any spreadsheet)::

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
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .errors import InputError


@dataclass
class Annotation:
    onset_s: float
    duration_s: float
    description: str


@dataclass
class Recording:
    """Raw sEMG samples as read from a file.

    ``data_uv`` is (channels, samples) in microvolts, ``rate_hz`` the sampling rate.
    ``channel_types`` uses MNE's vocabulary ("emg", "eeg", "misc", ...).
    """

    data_uv: np.ndarray
    rate_hz: float
    channel_names: list[str]
    channel_types: list[str] | None = None
    annotations: list[Annotation] = field(default_factory=list)
    source: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.channel_names = list(self.channel_names)
        if self.channel_types is None:
            self.channel_types = ["emg"] * len(self.channel_names)

    @property
    def n_channels(self) -> int:
        return self.data_uv.shape[0]

    @property
    def n_samples(self) -> int:
        return self.data_uv.shape[1]

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.rate_hz


# ----------------------------------------------------------------------------------------------
# Formats

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
# MNE channel types whose samples are voltages and so are scaled to µV here
_VOLTAGE_UNIT_FIFF = 107  # FIFF_UNIT_V


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


# ----------------------------------------------------------------------------------------------
# Opening a recording for reading in pieces


@dataclass
class RecordingSource:
    """A recording opened for reading in pieces.

    Header fields are like :class:`Recording`'s; samples come from :meth:`read`, so a file
    larger than memory can be processed chunk by chunk.
    """

    rate_hz: float
    channel_names: list[str]
    channel_types: list[str]
    n_samples: int
    reader: Callable[[int, int], np.ndarray]  # (start, stop) -> (channels, stop-start) µV
    annotations: list[Annotation] = field(default_factory=list)
    source: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def n_channels(self) -> int:
        return len(self.channel_names)

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.rate_hz

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Samples ``[start, stop)`` of every channel, float64 µV, shape (channels, stop-start)."""
        stop = self.n_samples if stop is None else stop
        start, stop = max(0, int(start)), min(self.n_samples, int(stop))
        if stop <= start:
            return np.zeros((self.n_channels, 0))
        return np.asarray(self.reader(start, stop), dtype=np.float64)

    def load(self) -> Recording:
        """Read every sample into a :class:`Recording`."""
        return Recording(self.read(), self.rate_hz, list(self.channel_names),
                         list(self.channel_types), list(self.annotations), self.source,
                         dict(self.meta))

    @classmethod
    def from_recording(cls, recording: Recording) -> "RecordingSource":
        """Wrap an in-memory :class:`Recording` (its array may be a ``np.memmap``)."""
        data = recording.data_uv
        return cls(float(recording.rate_hz), list(recording.channel_names),
                   list(recording.channel_types), int(data.shape[1]),
                   lambda a, b: data[:, a:b], list(recording.annotations), recording.source,
                   dict(recording.meta))

    @classmethod
    def from_array(cls, data_uv, rate_hz: float, channel_names: Sequence[str],
                   channel_types: Sequence[str] | None = None, source: str = "array") -> "RecordingSource":
        """Wrap an array-like (channels, samples) in µV: ndarray, ``np.memmap``, h5py dataset."""
        names = list(channel_names)
        types = list(channel_types) if channel_types is not None else ["emg"] * len(names)
        return cls(float(rate_hz), names, types, int(data_uv.shape[1]),
                   lambda a, b: data_uv[:, a:b], [], source, {})


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
        src = _open_mne(path, fmt)
    elif fmt == "XDF":
        src = _open_xdf(path, units=units, stream_name=xdf_stream)
    else:
        src = _open_csv(path, rate_hz=rate_hz, kind=csv_kind, channel_names=channel_names,
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
        raise InputError(f"{path}: could not read the samples ({_short(exc)}); "
                         "the file may be truncated or damaged") from exc
    check_finite(rec.data_uv, rec.channel_names, rec.rate_hz, str(path))
    return rec


def check_finite(data_uv: np.ndarray, channel_names: Sequence[str], rate_hz: float,
                 source: str, offset_samples: int = 0) -> None:
    """Raise :class:`InputError` naming the channels that hold NaN or infinite samples."""
    bad = ~np.isfinite(data_uv)
    if not bad.any():
        return
    rows = np.flatnonzero(bad.any(axis=1))
    first = offset_samples + int(np.argmax(bad.any(axis=0)))
    names = ", ".join(channel_names[i] for i in rows[:10]) + (" ..." if len(rows) > 10 else "")
    raise InputError(f"{source}: NaN or infinite samples in channel(s) {names} "
                     f"(first at {first / rate_hz:.3f} s); repair or cut the file first")


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


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


# ---- MNE formats ------------------------------------------------------------------------------


def _open_mne(path: Path, fmt: str) -> RecordingSource:
    import mne

    kwargs = {"infer_types": True} if fmt in ("EDF", "BDF") else {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            raw = mne.io.read_raw(path, preload=False, verbose="warning", **kwargs)
        except Exception as exc:
            raise InputError(f"{path}: not a readable {fmt} file ({_short(exc)}); the header "
                             "may be truncated, or the extension may not match the content") from exc
    notes = []
    for w in caught:  # MNE renames duplicate channels ("Zyg-0", "Zyg-1") with only a warning
        text = str(w.message)
        if "not unique" in text or "duplicate" in text.lower():
            found = re.findall(r"\{([^}]*)\}", text)
            detail = found[0].replace("'", "") if found else text
            raise InputError(f"{path}: duplicate channel names: {detail}")
        notes.append(_short(w.message))
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
    # BrainVision returns our free-text markers as "Comment/<label>" (FACTS §4)
    return text[len("Comment/"):] if text.startswith("Comment/") else text


# ---- XDF ---------------------------------------------------------------------------------------

_UNIT_SCALE_TO_UV = {
    "uv": 1.0, "µv": 1.0, "μv": 1.0, "microvolt": 1.0, "microvolts": 1.0,
    "mv": 1e3, "millivolt": 1e3, "millivolts": 1e3,
    "v": 1e6, "volt": 1e6, "volts": 1e6,
    # dimensionless envelopes (normalised to a per-channel reference) are left as they are
    "normalised": 1.0, "normalized": 1.0, "1": 1.0, "au": 1.0, "a.u.": 1.0,
}


def _unit_scale(unit: str | None, default: float, path: Path) -> float:
    if unit is None or str(unit).strip() == "":
        return default
    key = str(unit).strip().lower()
    if key not in _UNIT_SCALE_TO_UV:
        raise InputError(f"{path}: unknown unit '{unit}'; use uV, mV or V")
    return _UNIT_SCALE_TO_UV[key]


def _xdf_text(node, key: str, default: str = "") -> str:
    try:
        value = node[key][0]
    except (KeyError, IndexError, TypeError):
        return default
    return value if isinstance(value, str) else default


def _open_xdf(path: Path, *, units: str | None, stream_name: str | None) -> RecordingSource:
    import pyxdf

    try:
        streams, _header = pyxdf.load_xdf(str(path), verbose=False)
    except Exception as exc:
        raise InputError(f"{path}: not a readable XDF file ({_short(exc)})") from exc
    numeric = []
    markers = []
    for s in streams:
        info = s["info"]
        fmt = _xdf_text(info, "channel_format")
        if fmt == "string":
            markers.append(s)
        elif float(_xdf_text(info, "nominal_srate", "0") or 0) > 0:
            numeric.append(s)
    if stream_name is not None:
        numeric = [s for s in numeric if _xdf_text(s["info"], "name") == stream_name]
        if not numeric:
            raise InputError(f"{path}: no regularly sampled stream named '{stream_name}'")
    if not numeric:
        raise InputError(f"{path}: the XDF file holds no regularly sampled signal stream")
    emg = [s for s in numeric if _xdf_text(s["info"], "type").lower() == "emg"]
    stream = (emg or sorted(numeric, key=lambda s: -int(_xdf_text(s["info"], "channel_count", "0"))))[0]
    info = stream["info"]
    data = np.asarray(stream["time_series"], dtype=np.float64)
    if data.ndim != 2:
        data = data.reshape(len(data), -1)
    n_ch = data.shape[1]
    rate = float(_xdf_text(info, "nominal_srate"))
    stream_type = _xdf_text(info, "type").lower()
    channels = []
    try:
        channels = info["desc"][0]["channels"][0]["channel"]
    except (KeyError, IndexError, TypeError):
        channels = []
    names, types, scales = [], [], []
    default_scale = _unit_scale(units, 1.0, path)
    for i in range(n_ch):
        ch = channels[i] if i < len(channels) else {}
        names.append(_xdf_text(ch, "label") or f"ch{i + 1}")
        ch_type = (_xdf_text(ch, "type") or stream_type or "emg").lower()
        types.append(ch_type if ch_type in ("emg", "eeg", "ecg", "eog", "misc", "stim", "resp")
                     else "misc")
        scales.append(_unit_scale(_xdf_text(ch, "unit") or units, default_scale, path))
    data_uv = (data * np.asarray(scales)[None, :]).T.copy()
    t0 = float(stream["time_stamps"][0]) if len(stream["time_stamps"]) else 0.0
    annotations = []
    for m in markers:
        for ts, value in zip(m["time_stamps"], m["time_series"]):
            text = value[0] if isinstance(value, (list, tuple, np.ndarray)) else value
            annotations.append(Annotation(float(ts) - t0, 0.0, str(text)))
    annotations.sort(key=lambda a: a.onset_s)
    meta = {"format": "XDF", "stream": _xdf_text(info, "name"), "first_timestamp_s": t0}
    return RecordingSource(rate, names, types, data_uv.shape[1], lambda a, b: data_uv[:, a:b],
                           annotations, str(path), meta)


def _xml_escape(text: str) -> str:
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _xdf_chunk(tag: int, content: bytes) -> bytes:
    length = len(content) + 2  # the tag's two bytes count
    return struct.pack("<BQ", 8, length) + struct.pack("<H", tag) + content


def _xdf_varlen(n: int) -> bytes:
    return struct.pack("<BQ", 8, n)


def _write_xdf(recording: Recording, path: Path) -> None:
    """Minimal XDF 1.0 writer: one double64 stream plus a string marker stream."""
    rate = float(recording.rate_hz)
    n_ch, n = recording.data_uv.shape
    ch_xml = "".join(
        f"<channel><label>{_xml_escape(name)}</label><unit>microvolts</unit>"
        f"<type>{_xml_escape(t.upper())}</type></channel>"
        for name, t in zip(recording.channel_names, recording.channel_types)
    )
    header = ('<?xml version="1.0"?><info><name>EMG</name><type>EMG</type>'
              f"<channel_count>{n_ch}</channel_count><nominal_srate>{rate!r}</nominal_srate>"
              "<channel_format>double64</channel_format><source_id>eifer</source_id>"
              f"<created_at>0</created_at><desc><channels>{ch_xml}</channels></desc></info>")
    out = bytearray(b"XDF:")
    out += _xdf_chunk(1, b'<?xml version="1.0"?><info><version>1.0</version></info>')
    out += _xdf_chunk(2, struct.pack("<I", 1) + header.encode("utf-8"))
    times = np.arange(n) / rate
    block = 4096
    for a in range(0, n, block):
        b = min(n, a + block)
        rows = np.empty(b - a, dtype=[("tsb", "u1"), ("ts", "<f8"), ("v", "<f8", (n_ch,))])
        rows["tsb"] = 8
        rows["ts"] = times[a:b]
        rows["v"] = recording.data_uv[:, a:b].T
        out += _xdf_chunk(3, struct.pack("<I", 1) + _xdf_varlen(b - a) + rows.tobytes())
    if recording.annotations:
        marker_header = ('<?xml version="1.0"?><info><name>Markers</name><type>Markers</type>'
                         "<channel_count>1</channel_count><nominal_srate>0</nominal_srate>"
                         "<channel_format>string</channel_format><source_id>eifer-m</source_id>"
                         "<created_at>0</created_at></info>")
        out += _xdf_chunk(2, struct.pack("<I", 2) + marker_header.encode("utf-8"))
        body = bytearray(struct.pack("<I", 2) + _xdf_varlen(len(recording.annotations)))
        for ann in recording.annotations:
            text = ann.description.encode("utf-8")
            body += struct.pack("<Bd", 8, ann.onset_s) + _xdf_varlen(len(text)) + text
        out += _xdf_chunk(3, bytes(body))
    footer = ('<?xml version="1.0"?><info><first_timestamp>0</first_timestamp>'
              f"<last_timestamp>{times[-1]!r}</last_timestamp><sample_count>{n}</sample_count>"
              "</info>")
    out += _xdf_chunk(6, struct.pack("<I", 1) + footer.encode("utf-8"))
    path.write_bytes(bytes(out))


# ---- CSV ---------------------------------------------------------------------------------------

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


def _open_csv(path: Path, *, rate_hz: float | None, kind: str, channel_names, units) -> RecordingSource:
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
        raise InputError(f"{path}: could not parse the CSV rows ({_short(exc)})") from exc
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
    scale = _unit_scale(unit, 1.0, path)
    meta["units"] = unit or "uV"
    data_uv = np.ascontiguousarray(data * scale)
    start_s = float(time_s[0]) if time_s is not None else float(comments.get("start_s", 0) or 0)
    if start_s:
        meta["start_s"] = start_s
    types = ["emg"] * len(names)
    return RecordingSource(float(rate), names, types, data_uv.shape[1],
                           lambda a, b: data_uv[:, a:b], [], str(path), meta)


def _write_csv(path: Path, data: np.ndarray, names: Sequence[str], rate_hz: float, *,
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


# ----------------------------------------------------------------------------------------------
# Writing


def _to_raw(recording: Recording):
    import mne

    info = mne.create_info(list(recording.channel_names), float(recording.rate_hz),
                           list(recording.channel_types))
    raw = mne.io.RawArray(np.asarray(recording.data_uv, dtype=np.float64) * 1e-6, info,
                          verbose="error")
    if recording.annotations:
        raw.set_annotations(mne.Annotations(
            [a.onset_s for a in recording.annotations], [a.duration_s for a in recording.annotations],
            [a.description for a in recording.annotations]))
    return raw


def write_recording(recording: Recording, path: str | Path, *, overwrite: bool = True) -> Path:
    """Write a recording; the extension picks the format.

    Parameters
    ----------
    recording : Recording
        Samples in µV; names, types and annotations are written where the format allows.
    path : str or Path
        ``.edf`` (EDF+, 16 bit), ``.bdf`` (BDF+, 24 bit), ``.fif``, ``.vhdr`` (BrainVision,
        float32), ``.set`` (EEGLAB, float64), ``.xdf`` (float64) or ``.csv``.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
        The written file (for BrainVision, the ``.vhdr`` header).
    """
    import mne

    path = Path(path)
    fmt = file_format(path, for_writing=True)
    if path.exists() and not overwrite:
        raise InputError(f"{path}: file exists (pass overwrite=True to replace it)")
    if recording.n_channels == 0:
        raise InputError(f"{path}: nothing to write, the recording has no channels")
    check_finite(recording.data_uv, recording.channel_names, recording.rate_hz,
                 recording.source or str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "EDF":
        # per-channel physical ranges: a quiet channel keeps its resolution beside a loud one
        mne.export.export_raw(path, _to_raw(recording), fmt="edf", add_ch_type=True,
                              physical_range="channelwise", overwrite=True, verbose="error")
    elif fmt == "BDF":
        _write_bdf(recording, path)
    elif fmt == "FIF":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MNE's naming-convention warning (*_raw.fif)
            _to_raw(recording).save(path, overwrite=True, verbose="error")
    elif fmt == "BrainVision":
        mne.export.export_raw(path, _to_raw(recording), fmt="brainvision", overwrite=True,
                              verbose="error")
    elif fmt == "EEGLAB":
        import eeglabio.raw

        ann = recording.annotations
        eeglabio.raw.export_set(
            str(path), np.asarray(recording.data_uv, dtype=np.float64) * 1e-6,
            float(recording.rate_hz), list(recording.channel_names),
            annotations=([a.description for a in ann], np.array([a.onset_s for a in ann]),
                         np.array([a.duration_s for a in ann])) if ann else None,
            ch_types=[t.upper() for t in recording.channel_types], precision="double")
    elif fmt == "XDF":
        _write_xdf(recording, path)
    else:
        _write_csv(path, recording.data_uv, recording.channel_names, recording.rate_hz,
                   kind="raw", units="uV")
    return path


def _write_bdf(recording: Recording, path: Path) -> None:
    # MNE cannot export BDF (FACTS §4); edfio can. Labels carry the type like MNE's EDF export.
    import edfio

    signals = []
    for row, name, ch_type in zip(recording.data_uv, recording.channel_names,
                                  recording.channel_types):
        row = np.asarray(row, dtype=np.float64)
        lo, hi = float(row.min()), float(row.max())
        if hi - lo < 1e-9:
            lo, hi = lo - 1.0, hi + 1.0
        signals.append(edfio.BdfSignal(row, float(recording.rate_hz),
                                       label=f"{ch_type.upper()} {name}", physical_dimension="uV",
                                       physical_range=(lo, hi)))
    annotations = [edfio.EdfAnnotation(a.onset_s, a.duration_s or None, a.description)
                   for a in recording.annotations]
    duration = recording.n_samples / recording.rate_hz
    record_s = 1.0 if float(recording.rate_hz).is_integer() and float(duration).is_integer() else duration
    edfio.Bdf(signals, data_record_duration=record_s, annotations=annotations).write(path)


# ----------------------------------------------------------------------------------------------
# Envelopes (frame-rate tracks)


def write_envelopes(track, path: str | Path) -> Path:
    """Write a :class:`~eifer_blender.core.tracks.MuscleTrack` as CSV, EDF or BDF.

    CSV: frames × channels with a ``time_s`` column and ``#`` lines giving fps, units, start
    and space. EDF/BDF: one signal per channel at the frame rate, physical dimension ``uV``
    (none when normalised), by :func:`eifer_blender.core.bids.write_track_edf`.
    """
    path = Path(path)
    fmt = file_format(path, for_writing=True)
    values = np.asarray(track.values, dtype=np.float64)
    check_finite(values.T, list(track.names), track.fps, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "CSV":
        _write_csv(path, values.T, list(track.names), float(track.fps), kind="envelope",
                   units=track.units, start_s=float(track.start_s),
                   extra={"fps": repr(float(track.fps)), "space": track.space})
    elif fmt in ("EDF", "BDF"):
        from .bids import write_track_edf

        write_track_edf(track, path)
    else:
        raise InputError(f"{path}: envelopes can be written as .csv, .edf or .bdf")
    return path


def read_envelopes(path: str | Path, *, fps: float | None = None):
    """Read envelopes written by :func:`write_envelopes` (or an MMM-style CSV) as a MuscleTrack.

    ``fps`` gives the frame rate of a CSV without an ``fps`` line; EDF/BDF files carry theirs.
    """
    from .montage import resolve_space
    from .tracks import MuscleTrack

    if Path(path).suffix.lower() in (".edf", ".bdf"):
        from .bids import read_track_edf

        return read_track_edf(path)
    rec = read_recording(path, csv_kind="envelope", rate_hz=fps)
    if rec.meta.get("format") == "CSV":
        units = rec.meta.get("units", "uV")
    else:
        units = "normalised" if any(t == "misc" for t in rec.channel_types) else "uV"
    return MuscleTrack(rec.data_uv.T, rec.channel_names, rec.rate_hz,
                       resolve_space(rec.channel_names), units,
                       float(rec.meta.get("start_s", 0.0)), {"source": str(path)})
