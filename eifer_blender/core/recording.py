"""sEMG recordings: the Recording container and the readers/writers that produce it."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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
