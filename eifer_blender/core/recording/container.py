"""The Recording container: raw sEMG samples in microvolts with their names, rate and events.

A :class:`Recording` holds every sample in memory; a :class:`RecordingSource` is the same header
with a ``read(start, stop)`` callback, so hour-long files are processed in pieces.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..errors import InputError


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



def short_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
