"""Curve conditioning before keyframing: smoothing, gain/offset, key reduction.

All functions work on ``values[frame, channel]`` arrays and are vectorised over channels.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import savgol_filter

from .errors import InputError


def smooth(values: np.ndarray, fps: float, window_s: float = 0.1, polyorder: int = 2) -> np.ndarray:
    """Savitzky–Golay smoothing along frames; ``window_s`` <= one frame returns the input.

    Savitzky–Golay keeps peaks and timing (no lag), which matters for the onsets of expressions.
    """
    values = np.asarray(values, dtype=np.float64)
    window = int(round(window_s * fps)) | 1  # odd number of frames
    if window <= polyorder + 1 or values.shape[0] < window:
        return values.copy()
    return savgol_filter(values, window, polyorder, axis=0, mode="interp")


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
