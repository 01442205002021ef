"""Curve conditioning before keyframing: smoothing, rest floor, gain/offset, key reduction.

All functions work on ``values[frame, channel]`` arrays and are vectorised over channels.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import savgol_filter

from ..errors import InputError


def smooth(values: np.ndarray, fps: float, window_s: float = 0.1, polyorder: int = 2) -> np.ndarray:
    """Savitzky–Golay smoothing along frames; ``window_s`` <= one frame returns the input.

    Savitzky–Golay keeps peaks and timing (no lag), which matters for the onsets of expressions.
    """
    values = np.asarray(values, dtype=np.float64)
    window = int(round(window_s * fps)) | 1  # odd number of frames
    if window <= polyorder + 1 or values.shape[0] < window:
        return values.copy()
    return savgol_filter(values, window, polyorder, axis=0, mode="interp")


def check_rest_floor(floor: float) -> float:
    """``floor`` as a float, or an InputError unless 0 <= floor < 1."""
    if not 0.0 <= floor < 1.0:
        raise InputError(f"rest floor must be at least 0 and below 1, got {floor}")
    return float(floor)


def apply_rest_floor(values: np.ndarray, floor: float) -> np.ndarray:
    """``max(0, v − floor) / (1 − floor)``: weights up to ``floor`` become 0, 1 stays 1.

    A noise gate for a face at rest: a network's output hovers a few hundredths above zero when
    the muscles are silent, which makes a resting face twitch. The map is continuous (nothing
    jumps at the floor) and keeps the order of the weights above it.
    """
    floor = check_rest_floor(floor)
    values = np.asarray(values, dtype=np.float64)
    if floor == 0.0:
        return values.copy()
    return np.maximum(values - floor, 0.0) / (1.0 - floor)


def apply_gain_offset(values: np.ndarray, gain=1.0, offset=0.0, clip=(0.0, 1.0)) -> np.ndarray:
    """``values * gain + offset`` per channel (scalars or one per column), then clipped."""
    out = np.asarray(values, dtype=np.float64) * np.asarray(gain) + np.asarray(offset)
    if clip is not None:
        out = np.clip(out, *clip)
    return out


def reduce_keys(values: np.ndarray, tolerance: float) -> np.ndarray:
    """Which frames to key so that linear interpolation between them stays within ``tolerance``.

    Returns a boolean mask (frames, channels); the first and last frame are always kept. Works like
    Ramer–Douglas–Peucker on the frame axis, refining every segment of every channel at once: each
    pass keys the worst frame of each segment still off by more than the tolerance.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if tolerance < 0:
        raise InputError(f"key reduction tolerance must be >= 0, got {tolerance}")
    n_frames, n_channels = values.shape
    keep = np.zeros((n_frames, n_channels), dtype=bool)
    if n_frames == 0:
        return keep
    keep[[0, -1]] = True
    frames = np.arange(n_frames)
    for c in range(n_channels):  # loop over curves only; each pass below is vectorised over frames
        column, kept = values[:, c], keep[:, c]
        while True:
            idx = np.flatnonzero(kept)
            error = np.abs(np.interp(frames, idx, column[idx]) - column)
            segment = np.searchsorted(idx, frames, side="right") - 1  # segment each frame lies in
            worst = np.zeros(idx.size, dtype=np.float64)
            np.maximum.at(worst, segment, error)
            bad_segments = np.flatnonzero(worst > tolerance)
            if bad_segments.size == 0:
                break
            # worst frame of each bad segment: highest error per segment, via a stable sort
            in_bad = np.isin(segment, bad_segments) & (error > tolerance)
            candidates = np.flatnonzero(in_bad)
            order = np.lexsort((-error[candidates], segment[candidates]))
            ranked = candidates[order]
            first_of_segment = np.r_[True, np.diff(segment[ranked]) != 0]
            kept[ranked[first_of_segment]] = True
    return keep
