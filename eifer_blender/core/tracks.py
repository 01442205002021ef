"""Frame-rate tracks that move between the steps of the data path.

A track is ``values[frame, channel]`` sampled at ``fps`` starting at ``start_s`` seconds, with the
channel names and the space they live in. Units are explicit: ``"uV"`` for envelopes in
microvolts, ``"normalised"`` for envelopes divided by a per-channel reference, ``"1"`` for
dimensionless expression weights.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def frame_times_s(n_frames: int, fps: float, start_s: float = 0.0) -> np.ndarray:
    """Times in seconds of ``n_frames`` frames at ``fps`` starting at ``start_s``: ``start_s + k / fps``."""
    return start_s + np.arange(n_frames) / float(fps)


@dataclass
class Track:
    values: np.ndarray  # (frames, channels)
    names: tuple[str, ...]
    fps: float
    space: str  # "arkit52", "flame", "fridlund22", ...
    units: str
    start_s: float = 0.0
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values)
        self.names = tuple(self.names)
        if self.values.ndim != 2:
            raise ValueError(f"track values must be 2-D (frames, channels), got shape {self.values.shape}")
        if self.values.shape[1] != len(self.names):
            raise ValueError(
                f"track has {self.values.shape[1]} columns but {len(self.names)} names"
            )
        if len(set(self.names)) != len(self.names):
            raise ValueError("track channel names must be unique")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")

    @property
    def n_frames(self) -> int:
        return self.values.shape[0]

    @property
    def times_s(self) -> np.ndarray:
        return frame_times_s(self.n_frames, self.fps, self.start_s)

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.names.index(name)]

    def select(self, names) -> "Track":
        """A copy with only ``names``, in that order; raises naming what is missing."""
        missing = [n for n in names if n not in self.names]
        if missing:
            raise KeyError(f"track lacks channels: {', '.join(missing)}")
        idx = [self.names.index(n) for n in names]
        return type(self)(self.values[:, idx], tuple(names), self.fps, self.space, self.units,
                          self.start_s, dict(self.meta))

    def slice_frames(self, first: int, stop: int) -> "Track":
        """A copy of frames ``first`` up to ``stop`` (indices, ``stop`` excluded), its start time moved with it."""
        if not 0 <= first < stop <= self.n_frames:
            raise ValueError(f"frames {first}:{stop} are not inside the track's {self.n_frames}")
        return type(self)(self.values[first:stop], self.names, self.fps, self.space, self.units,
                          self.start_s + first / self.fps, dict(self.meta))

    def with_names(self, names) -> "tuple[Track, list[str]]":
        """A copy with exactly ``names`` (e.g. a model's inputs), those it lacks as 0; returns
        ``(track, missing)``."""
        names = tuple(names)
        index = {n: i for i, n in enumerate(self.names)}
        missing = [n for n in names if n not in index]
        present = [i for i, n in enumerate(names) if n in index]
        values = np.zeros((self.n_frames, len(names)))
        values[:, present] = self.values[:, [index[names[i]] for i in present]]
        return type(self)(values, names, self.fps, self.space, self.units, self.start_s, dict(self.meta)), missing


class ExpressionTrack(Track):
    """Expression parameters per frame (ARKit weights or FLAME coefficients)."""


class MuscleTrack(Track):
    """Muscle activity per frame: envelopes measured from sEMG or inferred by Exp2EMG."""
