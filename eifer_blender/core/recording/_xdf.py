"""Back-end for XDF (Lab Streaming Layer's file format): read with ``pyxdf``, a minimal writer.

The writer follows the XDF 1.0 specification (https://github.com/sccn/xdf/wiki/Specifications):
one double64 stream plus a string marker stream.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..errors import InputError
from .container import Annotation, Recording, RecordingSource, short_error
from .units import UNKNOWN, canonical_unit, unit_scale


def _xdf_text(node, key: str, default: str = "") -> str:
    try:
        value = node[key][0]
    except (KeyError, IndexError, TypeError):
        return default
    return value if isinstance(value, str) else default


def open_xdf(path: Path, *, stream_name: str | None) -> RecordingSource:
    import pyxdf

    try:
        streams, _header = pyxdf.load_xdf(str(path), verbose=False)
    except Exception as exc:
        raise InputError(f"{path}: not a readable XDF file ({short_error(exc)})") from exc
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
    names, types, scales, as_read = [], [], [], []
    for i in range(n_ch):
        ch = channels[i] if i < len(channels) else {}
        names.append(_xdf_text(ch, "label") or f"ch{i + 1}")
        ch_type = (_xdf_text(ch, "type") or stream_type or "emg").lower()
        types.append(ch_type if ch_type in ("emg", "eeg", "ecg", "eog", "misc", "stim", "resp")
                     else "misc")
        stated = _xdf_text(ch, "unit")  # unknown where the stream is silent: open_recording asks
        scales.append(unit_scale(stated, 1.0, path))
        as_read.append(canonical_unit(stated) if stated else UNKNOWN)
    data_uv = (data * np.asarray(scales)[None, :]).T.copy()
    t0 = float(stream["time_stamps"][0]) if len(stream["time_stamps"]) else 0.0
    annotations = []
    for m in markers:
        for ts, value in zip(m["time_stamps"], m["time_series"]):
            text = value[0] if isinstance(value, (list, tuple, np.ndarray)) else value
            annotations.append(Annotation(float(ts) - t0, 0.0, str(text)))
    annotations.sort(key=lambda a: a.onset_s)
    meta = {"format": "XDF", "stream": _xdf_text(info, "name"), "first_timestamp_s": t0,
            "units_as_read": as_read}
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


def write_xdf(recording: Recording, path: Path) -> None:
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
