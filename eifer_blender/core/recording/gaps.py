"""Missing samples (NaN cells of a CSV export, dropped packets): bridged linearly, or refused with their times."""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .container import RecordingSource

_SCAN_SAMPLES = 1 << 20  # samples per channel read at a time while looking for gaps


def _runs(missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop (exclusive) indices of the runs of True in a 1-D mask."""
    edges = np.diff(np.concatenate([[False], missing, [False]]).astype(np.int8))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def fill_gaps(source: RecordingSource, max_gap_s: float = 0.5) -> RecordingSource:
    """The recording with every run of NaN/Inf samples up to ``max_gap_s`` interpolated linearly.

    A run at the start or end takes the nearest valid sample. A source without gaps is returned
    as it is (read once, in pieces, to look); one with gaps is read whole to be repaired.

    Raises
    ------
    InputError
        A gap longer than ``max_gap_s``, or a channel without any valid sample (named, with the
        gaps' times).
    """
    name = source.source or "recording"
    clean = all(np.isfinite(source.read(a, a + _SCAN_SAMPLES).sum())
                for a in range(0, source.n_samples, _SCAN_SAMPLES))
    if clean:
        return source
    data = source.read().copy()
    rate = source.rate_hz
    too_long = []
    for row, channel in enumerate(source.channel_names):
        missing = ~np.isfinite(data[row])
        if not missing.any():
            continue
        if missing.all():
            raise InputError(f"{name}: channel {channel} holds no valid sample")
        starts, stops = _runs(missing)
        long = (stops - starts) > max_gap_s * rate
        too_long += [(channel, a / rate, b / rate) for a, b in zip(starts[long], stops[long])]
        valid = np.flatnonzero(~missing)
        data[row, missing] = np.interp(np.flatnonzero(missing), valid, data[row, valid])
    if too_long:
        listed = "; ".join(f"{c} {a:.3f}–{b:.3f} s" for c, a, b in too_long[:5])
        more = f" and {len(too_long) - 5} more" if len(too_long) > 5 else ""
        raise InputError(f"{name}: gaps longer than {max_gap_s:g} s cannot be interpolated: {listed}{more}; "
                         f"cut them out of the file, or set missing samples to 0 (--nan zero)")
    meta = dict(source.meta, gaps_interpolated=True)
    filled = RecordingSource.from_array(data, rate, source.channel_names, source.channel_types, source.source)
    filled.annotations, filled.meta = list(source.annotations), meta
    return filled
