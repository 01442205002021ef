"""Which output channels a recording gives: montage sites (mapped, aliased, paired, guessed) or file channels.

In: a RecordingSource and the settings' montage, map, side, mirror and channel list; out: a
:class:`Selection`, the rows of the file each output channel is read from (one row, or electrode 1
minus electrode 2 of a monopolar pair), with a report of what feeds what and what was left out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..recording import RecordingSource
from ..recording.channel_map import bipolar_matrix, guess_montage, resolve_channels
from ..recording.montage import MONTAGES, mirror_channel
from .settings import ProcessingSettings


@dataclass
class Selection:
    names: tuple[str, ...]
    plus: np.ndarray  # input row per output channel
    minus: np.ndarray  # input row subtracted, -1 for none
    sources: dict[str, str]
    dropped: tuple[str, ...] = ()
    report: str = ""  # which file channel feeds which site, and what was left out
    mirrored: tuple[str, ...] = ()

    def derive(self, block: np.ndarray, mean: np.ndarray | None = None) -> np.ndarray:
        """Output channels from input rows: one row copy or difference each, minus ``mean``."""
        out = np.empty((len(self.plus), block.shape[-1]))
        for row, (p, m) in enumerate(zip(self.plus, self.minus)):  # rows, not samples
            if m >= 0:
                np.subtract(block[p], block[m], out=out[row])
            else:
                out[row] = block[p]
            if mean is not None:
                out[row] -= mean[row]
        return out

    def derive_sums(self, row_sums: np.ndarray) -> np.ndarray:
        """Sums of the output channels from sums of the input rows."""
        out = row_sums[self.plus].copy()
        has_minus = self.minus >= 0
        out[has_minus] -= row_sums[self.minus[has_minus]]
        return out


def select_channels(source: RecordingSource, settings: ProcessingSettings) -> Selection:
    name = source.source or "recording"
    types = list(source.channel_types)
    names = list(source.channel_names)
    emg = [i for i, t in enumerate(types) if t == "emg"]
    # formats that cannot store the EMG type (BrainVision, CNT, ...) say "eeg" or "misc"
    candidates = emg or [i for i, t in enumerate(types) if t in ("eeg", "misc", "emg")]
    if not candidates:
        raise InputError(f"{name}: no EMG channels (channel types: {', '.join(sorted(set(types)))})")
    cand_names = [names[i] for i in candidates]
    mapping = dict(settings.channel_map) if settings.channel_map else None
    montage = settings.montage
    if montage == "auto":
        montage = "fridlund22" if mapping else guess_montage(cand_names)
    if montage is not None:
        numbers = source.meta.get("column_numbers")
        cmap = resolve_channels(cand_names, montage, mapping=mapping, side=settings.side, source=name,
                                column_numbers=[numbers[i] for i in candidates] if numbers else None)
        if not cmap.canonical:
            raise InputError(f"{name}: no channel maps to a {montage} site (channels: "
                             f"{', '.join(cand_names)}); say which channel is which muscle with a map "
                             f"(--map CHANNEL=SITE, e.g. --map {cand_names[0]}=Zyg_L)")
        matrix, out = bipolar_matrix(cand_names, cmap)
        plus = np.array([candidates[int(np.flatnonzero(row > 0)[0])] for row in matrix])
        minus = np.array([candidates[int(np.flatnonzero(row < 0)[0])] if (row < 0).any() else -1
                          for row in matrix])
        sel = Selection(tuple(out), plus, minus, cmap.sources(), cmap.unknown + cmap.left_out,
                         cmap.describe())
        if settings.mirror:
            sel = _mirrored(sel, montage)
    else:
        sel = Selection(tuple(cand_names), np.array(candidates), -np.ones(len(candidates), int),
                         {n: n for n in cand_names}, report=f"{len(cand_names)} channels, no montage")
    if settings.channels is not None:
        wanted = list(settings.channels)
        lookup = {n: i for i, n in enumerate(sel.names)}
        for i, n in enumerate(sel.names):  # also accept the file's own labels
            lookup.setdefault(sel.sources.get(n, n), i)
        missing = [w for w in wanted if w not in lookup]
        if missing:
            raise InputError(f"{name}: missing channels: {', '.join(missing)} (the file has "
                             f"{', '.join(sel.names)})")
        rows = [lookup[w] for w in wanted]
        out_names = tuple(sel.names[r] for r in rows)
        if len(set(out_names)) != len(out_names):
            raise InputError(f"{name}: channels requested twice: {', '.join(wanted)}")
        sel = Selection(out_names, sel.plus[rows], sel.minus[rows],
                         {n: sel.sources[n] for n in out_names},
                         tuple(n for n in sel.names if n not in out_names) + sel.dropped, sel.report,
                         tuple(n for n in sel.mirrored if n in out_names))
    return sel


def _mirrored(sel: Selection, montage: str) -> Selection:
    """Each site without its other-side partner also feeds the partner (a one-sided set-up)."""
    partners = {mirror_channel(n, montage): i for i, n in enumerate(sel.names)}
    added = [p for p in partners if p not in sel.names]
    if not added:
        return sel
    order = [n for n in MONTAGES[montage] if n in sel.names or n in added]
    index = {n: i for i, n in enumerate(sel.names)}
    rows = [index[n] if n in index else partners[n] for n in order]
    sources = {n: sel.sources[n] if n in index else f"{sel.sources[sel.names[partners[n]]]} (mirrored)"
               for n in order}
    report = sel.report + "; mirrored to the other side: " + ", ".join(added)
    return Selection(tuple(order), sel.plus[rows], sel.minus[rows], sources, sel.dropped, report, tuple(added))
