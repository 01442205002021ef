"""Training data: paired envelope / expression clips, subject-wise splits and window batches.

A data set is a list of :class:`Clip` objects: one session of one subject, with sEMG envelopes
(a :class:`MuscleTrack`, normalised exactly as the runtime normalises them) and the expression
that went with them (an :class:`ExpressionTrack`), both at the model's fps and frame aligned.
Sources: the simulator (:mod:`models.simdata`) and the public MMM layout (:mod:`models.mmm`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from eifer_blender.core.envelopes import normalise_envelopes
from eifer_blender.core.network.windows import window_offsets
from eifer_blender.core.tracks import ExpressionTrack, MuscleTrack

SPLITS = ("train", "val", "test")


@dataclass
class Clip:
    """One frame-aligned recording: envelopes and the expression that went with them."""

    emg: MuscleTrack
    expression: ExpressionTrack
    subject: str
    protocol: str = ""
    key: str = ""

    def __post_init__(self) -> None:
        if self.emg.n_frames != self.expression.n_frames:
            raise ValueError(f"clip {self.key}: {self.emg.n_frames} envelope frames but "
                             f"{self.expression.n_frames} expression frames")
        if float(self.emg.fps) != float(self.expression.fps):
            raise ValueError(f"clip {self.key}: envelopes at {self.emg.fps} fps, expression at "
                             f"{self.expression.fps} fps")

    @property
    def n_frames(self) -> int:
        return self.emg.n_frames

    def tracks(self, direction: str):
        """(input track, target track) for ``"emg2exp"`` or ``"exp2emg"``."""
        if direction == "emg2exp":
            return self.emg, self.expression
        if direction == "exp2emg":
            return self.expression, self.emg
        raise ValueError(f"unknown direction {direction!r}")


@dataclass
class DataSet:
    """Clips plus how they were made, and their subject-wise split."""

    clips: list[Clip]
    description: str
    emg_normalisation: dict
    split: dict[str, list[str]] = field(default_factory=dict)  # split name -> groups
    split_by: str = "subject"  # "subject", or "clip" when there are too few subjects (MMM)
    processing: dict = field(default_factory=dict)  # the feature chain's settings

    def group_of(self, clip: Clip) -> str:
        return clip.subject if self.split_by == "subject" else clip.key

    def groups(self) -> list[str]:
        return sorted({self.group_of(c) for c in self.clips})

    def clips_of(self, split: str) -> list[Clip]:
        members = set(self.split[split])
        return [c for c in self.clips if self.group_of(c) in members]


def subject_split(subjects, fractions=(0.7, 0.15, 0.15), seed: int = 0) -> dict[str, list[str]]:
    """Assign whole subjects to train / val / test (no subject appears in two splits).

    The order is a seeded shuffle; val and test get at least one subject each when there are
    three or more subjects.
    """
    subjects = sorted(set(subjects))
    if len(subjects) < 3:
        raise ValueError(f"a subject-wise split needs at least 3 subjects (or clips), got {len(subjects)}")
    order = [subjects[i] for i in np.random.default_rng(seed).permutation(len(subjects))]
    n = len(order)
    n_val = max(1, int(round(fractions[1] * n)))
    n_test = max(1, int(round(fractions[2] * n)))
    n_train = n - n_val - n_test
    if n_train < 1:
        raise ValueError(f"{n} subjects are too few for fractions {fractions}")
    return {"train": sorted(order[:n_train]), "val": sorted(order[n_train:n_train + n_val]),
            "test": sorted(order[n_train + n_val:])}


class WindowBank:
    """All windows of a set of clips without materialising them.

    Each clip is stored once, edge padded by the window's reach on both sides, in one
    contiguous array; a window is gathered by index when a batch is drawn. Windows never cross
    clip boundaries and are padded exactly as :func:`eifer_blender.core.network.windows.make_windows`
    pads them at runtime. Envelopes in µV are normalised per clip with ``emg_normalisation``
    through ``processing.normalise_envelopes``, the runtime's function.
    """

    def __init__(self, clips, direction: str, input_names, output_names, window: int, alignment: str,
                 emg_normalisation: dict | None = None, augment: dict | None = None, seed: int = 0):
        self.offsets = window_offsets(window, alignment)
        before, after = -int(self.offsets[0]), int(self.offsets[-1])
        xs, ys, centres, start = [], [], [], 0
        rng = np.random.default_rng(seed)
        copies = int(augment.get("copies", 1)) if augment else 1
        for copy in range(copies):
            for clip in clips:
                source, target = clip.tracks(direction)
                if augment and direction == "emg2exp" and copy > 0:
                    x = _augmented(source, input_names, emg_normalisation, augment, rng)
                else:
                    x = _values(source, input_names, emg_normalisation)
                xs.append(np.pad(x, ((before, after), (0, 0)), mode="edge"))
                ys.append(_values(target, output_names, emg_normalisation))
                centres.append(start + before + np.arange(x.shape[0]))
                start += x.shape[0] + before + after
        if not xs:
            raise ValueError("no clips to take windows from")
        self.x = torch.from_numpy(np.concatenate(xs))
        self.y = torch.from_numpy(np.concatenate(ys))
        self.centres = torch.from_numpy(np.concatenate(centres))
        self._offsets_t = torch.from_numpy(self.offsets)

    def __len__(self) -> int:
        return int(self.centres.shape[0])

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows (n, window, channels) and targets (n, outputs) of the frames at ``index``."""
        rows = self.centres[index][:, None] + self._offsets_t[None, :]
        return self.x[rows], self.y[index]

    def all_windows(self) -> np.ndarray:
        """Every window as one array (n, window, channels); for evaluation-sized sets."""
        return self.batch(torch.arange(len(self)))[0].numpy()

    def targets(self) -> np.ndarray:
        return self.y.numpy()

    def input_frames(self) -> np.ndarray:
        """The unpadded input frames (n, channels), in window order."""
        return self.x[self.centres].numpy()


def _augmented(track, names, spec: dict, augment: dict, rng) -> np.ndarray:
    """The clip's envelopes as another amplifier and another calibration would give them.

    Muscle signal × a gain drawn log-uniformly from ``augment["gain"]`` (per recording, jittered
    per channel by ``channel_jitter``) against unchanged noise: power adds, so with the noise
    floor ``n`` (the 2nd percentile) an envelope ``e`` becomes ``sqrt(g² (e² - n²) + n²)``. Then
    the normalisation with a calibration drawn from ``augment["calibrations"]`` (weights) and
    a reference percentile jittered within ``reference_percentiles``.
    """
    envelopes = track.select(names).values.astype(np.float64)
    low, high = augment.get("gain", (0.3, 3.0))
    jitter = float(augment.get("channel_jitter", 1.4))
    gain = np.exp(rng.uniform(np.log(low), np.log(high))
                  + rng.uniform(-np.log(jitter), np.log(jitter), envelopes.shape[1]))
    noise = np.percentile(envelopes, 2.0, axis=0)
    envelopes = np.sqrt(gain ** 2 * np.maximum(envelopes ** 2 - noise ** 2, 0.0) + noise ** 2)
    if spec.get("method") != "activity":
        return np.asarray(normalise_envelopes(envelopes, spec), dtype=np.float32)
    choices = augment.get("calibrations", {"percentile": 1.0})
    names_c, weights = list(choices), np.asarray(list(choices.values()), dtype=np.float64)
    calibration = names_c[int(rng.choice(len(names_c), p=weights / weights.sum()))]
    a, b = augment.get("reference_percentiles", (98.0, 99.7))
    drawn = {**spec, "calibration": "percentile" if calibration == "calibration" else calibration,
             "reference_percentile": float(rng.uniform(a, b))}
    return np.asarray(normalise_envelopes(envelopes, drawn), dtype=np.float32)


def montage_masks(n: int, input_names, rng, standard: dict | None = None, full_share: float = 0.3,
                  standard_share: float = 0.3) -> np.ndarray:
    """Channel-dropout masks (n, channels) float32: all channels, a standard montage, or a random subset.

    Random subsets have 1 to all-but-one channels (size uniform), so one and two channels are
    as common as twenty; every mask keeps at least one channel.
    """
    k = len(input_names)
    masks = np.ones((n, k), dtype=np.float32)
    kind = rng.random(n)
    standard = list((standard or {}).values())
    use_standard = (kind >= full_share) & (kind < full_share + standard_share) if standard else np.zeros(n, bool)
    use_random = kind >= full_share + (standard_share if standard else 0.0)
    index = {name: i for i, name in enumerate(input_names)}
    for row in np.flatnonzero(use_standard):
        chosen = standard[int(rng.integers(len(standard)))]
        masks[row] = 0.0
        masks[row, [index[c] for c in chosen if c in index]] = 1.0
    rows = np.flatnonzero(use_random)
    if rows.size:
        sizes = rng.integers(1, k, rows.size)
        order = np.argsort(rng.random((rows.size, k)), axis=1)
        masks[rows] = (np.argsort(order, axis=1) < sizes[:, None]).astype(np.float32)
    return masks


def site_incidence(input_names, output_names, output_sites: dict) -> np.ndarray:
    """(channels, outputs) 1 where the channel moves the output (``output_sites``)."""
    incidence = np.zeros((len(input_names), len(output_names)), dtype=np.float32)
    for j, name in enumerate(output_names):
        for site in output_sites.get(name, ()):
            if site in input_names:
                incidence[list(input_names).index(site), j] = 1.0
    return incidence


def _values(track, names, emg_normalisation: dict | None) -> np.ndarray:
    """Track columns ``names`` as float32; µV envelopes normalised per recording."""
    values = track.select(names).values
    if isinstance(track, MuscleTrack) and track.units == "uV" and emg_normalisation:
        values = normalise_envelopes(values, emg_normalisation)
    return np.asarray(values, dtype=np.float32)
