"""Frame windows and frame-rate conversion shared by training (models/) and the runtime (network.py).

A model sees, for each output frame ``t``, a window of ``window`` input frames:

* ``"centred"``: frames ``t - window//2 .. t + window//2`` (window must be odd), offline use;
* ``"causal"``: frames ``t - window + 1 .. t``, usable live.

Frames outside the track repeat the first / last frame (edge padding), in training and at runtime.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..tracks import frame_times_s

ALIGNMENTS = ("centred", "causal")


def window_offsets(window: int, alignment: str) -> np.ndarray:
    """Frame offsets, relative to the output frame, of the input frames in one window."""
    if window < 1:
        raise ValueError(f"window must be at least 1 frame, got {window}")
    if alignment == "centred":
        if window % 2 == 0:
            raise ValueError(f"a centred window needs an odd length, got {window}")
        half = window // 2
        return np.arange(-half, half + 1)
    if alignment == "causal":
        return np.arange(-(window - 1), 1)
    raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {alignment!r}")


def make_windows(values: np.ndarray, window: int, alignment: str) -> np.ndarray:
    """All windows of a track, edge padded: (frames, channels) -> (frames, window, channels).

    Returns a read-only strided view into one padded copy (no per-window copies).
    """
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"values must be (frames, channels), got shape {values.shape}")
    offsets = window_offsets(window, alignment)
    before, after = -int(offsets[0]), int(offsets[-1])
    padded = np.pad(values, ((before, after), (0, 0)), mode="edge")
    # sliding_window_view puts the window axis last: (frames, channels, window)
    return sliding_window_view(padded, window, axis=0).transpose(0, 2, 1)


def resample_frames(values: np.ndarray, fps_in: float, times_out_s: np.ndarray,
                    start_in_s: float = 0.0) -> np.ndarray:
    """Values of a (frames, channels) track at other times, by linear interpolation.

    When the output is sparser than the input, a triangular average reaching ``fps_in / fps_out``
    input frames to each side is applied first (anti-aliasing: no input frame goes unseen and
    detail the output rate cannot carry is removed rather than folded back). Times before the first / after
    the last input frame take the edge value.

    Parameters
    ----------
    values : array (frames, channels)
    fps_in : float
        Frame rate of ``values``.
    times_out_s : array (n,)
        Times, in seconds, of the wanted frames; must be evenly spaced when more than one.
    start_in_s : float
        Time of the first input frame.
    """
    values = np.asarray(values, dtype=np.float64)
    times_out_s = np.asarray(times_out_s, dtype=np.float64)
    n_in = values.shape[0]
    if n_in == 0:
        raise ValueError("cannot resample an empty track")
    if times_out_s.size == 0:
        return np.zeros((0, values.shape[1]))
    if times_out_s.size > 1:
        fps_out = 1.0 / float(times_out_s[1] - times_out_s[0])
        ratio = fps_in / fps_out
        if ratio > 1.0 + 1e-9:
            reach = int(np.ceil(ratio)) - 1
            kernel = np.maximum(0.0, 1.0 - np.abs(np.arange(-reach, reach + 1)) / ratio)
            # imported here: the model contract imports this module when Blender starts
            from scipy.ndimage import convolve1d

            values = convolve1d(values, kernel / kernel.sum(), axis=0, mode="nearest")
    position = np.clip((times_out_s - start_in_s) * fps_in, 0.0, n_in - 1)
    lower = np.minimum(np.floor(position).astype(np.int64), n_in - 1)
    upper = np.minimum(lower + 1, n_in - 1)
    weight = (position - lower)[:, None]
    return values[lower] * (1.0 - weight) + values[upper] * weight


def resample_to_fps(values: np.ndarray, fps_in: float, fps_out: float,
                    start_s: float = 0.0) -> tuple[np.ndarray, float]:
    """Resample a track covering the same time span to ``fps_out``; returns (values, start_s).

    The output has ``round(frames * fps_out / fps_in)`` frames (at least one), starting at the
    same time as the input.
    """
    values = np.asarray(values)
    if float(fps_in) == float(fps_out):
        return values, start_s
    n_out = max(1, int(round(values.shape[0] * float(fps_out) / float(fps_in))))
    times = frame_times_s(n_out, fps_out, start_s)
    return resample_frames(values, fps_in, times, start_s), start_s
