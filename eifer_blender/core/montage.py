"""Electrode montages: canonical channel names, aliases and 2-D site coordinates.

Coordinates are in millimetres in the face frame of the ``electromyogram`` package (cvjena, MIT,
``electromyogram/schemes.py``): x = 0 on the facial midline, y = 0 on the Frankfort plane, y up.
The subject's right side has negative x, so it is Blender's -X for a head facing -Y.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Muscle:
    """A Fridlund & Cacioppo (1986) recording site, one per side."""

    key: str  # short name, the stem of the canonical channel names
    muscle: str  # anatomical name
    jena: str  # the name the Jena data uses ("Zyg" in "Zyg li")
    fridlund_right: int  # F-number of the right-side site; the left one is this + 1
    site_mm: tuple[float, float]  # position of the subject's LEFT site (x > 0)


FRIDLUND_MUSCLES: tuple[Muscle, ...] = (
    Muscle("medFront", "frontalis, pars medialis", "med Front", 1, (10.0, 65.0)),
    Muscle("latFront", "frontalis, pars lateralis", "lat Front", 3, (32.0, 60.0)),
    Muscle("Corr", "corrugator supercilii", "Corr", 5, (22.0, 52.0)),
    Muscle("DepSup", "depressor supercilii / procerus", "Deprsup", 7, (9.0, 49.0)),
    Muscle("LLSup", "levator labii superioris alaeque nasi", "Llsup", 9, (28.0, -12.0)),
    Muscle("OrbOr", "orbicularis oris", "OrbOr", 11, (21.0, -52.0)),
    Muscle("DAO", "depressor anguli oris", "DAO", 13, (26.0, -69.0)),
    Muscle("Ment", "mentalis", "Ment", 15, (6.0, -65.0)),
    Muscle("OrbOc", "orbicularis oculi", "OrbOc", 17, (42.0, 10.0)),
    Muscle("Zyg", "zygomaticus major", "Zyg", 19, (53.0, -23.0)),
    Muscle("Mass", "masseter", "Mass", 21, (70.0, -50.0)),
)

SIDES = ("R", "L")  # F-numbers run right (odd) then left (even)

# Canonical Fridlund-22 channel names in F1..F22 order: "medFront_R", "medFront_L", ...
FRIDLUND22: tuple[str, ...] = tuple(f"{m.key}_{s}" for m in FRIDLUND_MUSCLES for s in SIDES)


def fridlund_sites_mm() -> np.ndarray:
    """Site coordinates (22, 2) in mm, rows in ``FRIDLUND22`` order."""
    rows = []
    for m in FRIDLUND_MUSCLES:
        x, y = m.site_mm
        rows += [(-x, y), (x, y)]  # right side is -x
    return np.asarray(rows, dtype=np.float64)


def mirror_name(channel: str) -> str:
    """The same muscle on the other side: ``Zyg_L`` -> ``Zyg_R``."""
    stem, side = channel.rsplit("_", 1)
    return f"{stem}_{'L' if side == 'R' else 'R'}"
