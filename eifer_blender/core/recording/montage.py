"""Electrode montages: canonical channel names, aliases and 2-D site coordinates.

Coordinates are in millimetres in the face frame of the ``electromyogram`` package (cvjena, MIT,
``electromyogram/schemes.py``): x = 0 on the facial midline, y = 0 on the Frankfort plane, y up.
The subject's right side has negative x, so it is Blender's -X for a head facing -Y.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import InputError


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


# ----------------------------------------------------------------------------------------------
# Kuramoto et al. (2019): an EEG-like grid of 19 sites. Coordinates and the left/right pairs are
# those of the `electromyogram` package (cvjena, MIT, electromyogram/schemes.py, class Kuramoto),
# copied as data rather than imported because that package pulls in OpenCV. Its data files name
# the sites E1..E24; the package calls them K1..K24. K16 sits at x = 59 mm (K15 at -58 mm) there.

KURAMOTO_SITES_MM: dict[str, tuple[float, float]] = {
    "K1": (-20.0, 66.0), "K2": (20.0, 66.0), "K3": (-32.0, 56.0), "K4": (32.0, 56.0),
    "K5": (-44.0, 13.0), "K6": (44.0, 13.0), "K7": (-25.0, -9.0), "K8": (25.0, -9.0),
    "K9": (-20.0, -67.0), "K10": (20.0, -67.0), "K13": (-63.0, 40.0), "K14": (63.0, 40.0),
    "K15": (-58.0, 6.0), "K16": (59.0, 6.0), "K17": (-72.0, -50.0), "K18": (72.0, -50.0),
    "K19": (0.0, 47.0), "K20": (0.0, -26.0), "K24": (0.0, 26.0),
}
#: Canonical Kuramoto-19 channel names, odd numbers on the subject's right (x < 0)
KURAMOTO19: tuple[str, ...] = tuple(KURAMOTO_SITES_MM)
#: (left, right) site pairs; K19, K20 and K24 lie on the midline and mirror onto themselves
KURAMOTO_PAIRS: tuple[tuple[str, str], ...] = (
    ("K2", "K1"), ("K4", "K3"), ("K6", "K5"), ("K8", "K7"), ("K10", "K9"),
    ("K14", "K13"), ("K16", "K15"), ("K18", "K17"),
)
KURAMOTO_MIDLINE: tuple[str, ...] = ("K19", "K20", "K24")

#: montage name -> canonical channel names in the montage's own order
MONTAGES: dict[str, tuple[str, ...]] = {"fridlund22": FRIDLUND22, "kuramoto19": KURAMOTO19}

# Monopolar electrodes of one bipolar site carry the site's name plus a suffix 1 or 2 after a
# separator ("Zyg_L_1"/"Zyg_L_2", "Zyg li 1"/"Zyg li 2", "F20-1"/"F20-2", "Zyg_L_a"/"Zyg_L_b").
# The bipolar channel is electrode 1 minus electrode 2.
_ELECTRODE_SUFFIX = re.compile(r"^(?P<site>.*?\S)[\s_.\-](?P<electrode>[12ab])$", re.IGNORECASE)
_EMG_PREFIX = re.compile(r"^(emg|semg|exg)[\s_\-:.]+", re.IGNORECASE)


def kuramoto_sites_mm() -> np.ndarray:
    """Site coordinates (19, 2) in mm, rows in ``KURAMOTO19`` order."""
    return np.asarray([KURAMOTO_SITES_MM[n] for n in KURAMOTO19], dtype=np.float64)


def sites_mm(montage: str = "fridlund22") -> np.ndarray:
    """Site coordinates (channels, 2) in mm for ``montage``, rows in canonical order."""
    montage = check_montage(montage)
    return fridlund_sites_mm() if montage == "fridlund22" else kuramoto_sites_mm()


def _key(name: str) -> str:
    """Comparable form of a channel label: no EMG prefix, lower case, letters and digits only."""
    return re.sub(r"[^0-9a-z]", "", _EMG_PREFIX.sub("", name.strip()).lower())


def _build_aliases() -> dict[str, dict[str, str]]:
    fridlund: dict[str, str] = {}
    for m in FRIDLUND_MUSCLES:
        for offset, side in enumerate(SIDES):  # R first: F-number of R is odd
            canonical = f"{m.key}_{side}"
            words = ("re", "r", "right", "rechts") if side == "R" else ("li", "l", "left", "links")
            forms = [canonical, f"F{m.fridlund_right + offset}"]
            for stem in {m.key, m.jena}:
                forms += [f"{stem} {w}" for w in words] + [f"{w} {stem}" for w in words]
            for form in forms:
                key = _key(form)
                if fridlund.get(key, canonical) != canonical:
                    raise AssertionError(f"alias clash: {form}")
                fridlund[key] = canonical
    kuramoto: dict[str, str] = {}
    for name in KURAMOTO19:
        number = name[1:]
        for form in (name, f"E{number}"):
            kuramoto[_key(form)] = name
    return {"fridlund22": fridlund, "kuramoto19": kuramoto}


_ALIASES = _build_aliases()


def check_montage(montage: str) -> str:
    if montage not in MONTAGES:
        raise InputError(f"unknown montage '{montage}'; choose one of {', '.join(MONTAGES)}")
    return montage


def canonical_name(name: str, montage: str = "fridlund22") -> str | None:
    """Canonical montage name of a channel label, or None if it is not a site of ``montage``.

    Accepts the canonical names, Jena names (``"Zyg li"``, ``"Corr re"``), F-numbers
    (``"F20"``), Kuramoto ``K``/``E`` numbers, an ``EMG`` prefix (``"EMG Zyg_L"``), any case and
    any separators.

    >>> canonical_name("EMG zyg li")
    'Zyg_L'
    """
    return _ALIASES[check_montage(montage)].get(_key(name))


def split_electrode(name: str) -> tuple[str, int] | None:
    """Split a monopolar electrode label into (site label, electrode 1 or 2), else None.

    >>> split_electrode("Zyg li 2")
    ('Zyg li', 2)
    """
    match = _ELECTRODE_SUFFIX.match(name.strip())
    if not match:
        return None
    electrode = match.group("electrode").lower()
    return match.group("site"), 1 if electrode in ("1", "a") else 2


def resolve_space(names: Sequence[str]) -> str:
    """The space a set of channel names lives in: a montage if all are canonical, else "emg"."""
    for montage, canonical in MONTAGES.items():
        if names and all(n in canonical for n in names):
            return montage
    return "emg"


def mirror_channel(name: str, montage: str = "fridlund22") -> str:
    """The same site on the other side of the face (midline sites map onto themselves)."""
    montage = check_montage(montage)
    if montage == "fridlund22":
        return mirror_name(name)
    for left, right in KURAMOTO_PAIRS:
        if name == left:
            return right
        if name == right:
            return left
    if name in KURAMOTO_MIDLINE:
        return name
    raise KeyError(f"{name} is not a Kuramoto-19 site")


def mirror_values(values: np.ndarray, names: Sequence[str], montage: str = "fridlund22") -> np.ndarray:
    """Swap left and right columns of ``values[..., channels]`` (a subject seen in a mirror).

    Channels whose partner is absent stay where they are.
    """
    names = list(names)
    index = {n: i for i, n in enumerate(names)}
    order = [index.get(mirror_channel(n, montage), i) for i, n in enumerate(names)]
    return np.asarray(values)[..., order]


def pair_indices(names: Sequence[str], montage: str = "fridlund22") -> list[tuple[int, int]]:
    """(left, right) column index pairs present in ``names``, for symmetry checks and mirroring."""
    names = list(names)
    out = []
    for i, n in enumerate(names):
        partner = mirror_channel(n, montage)
        if partner != n and partner in names:
            j = names.index(partner)
            left, right = (i, j) if (n.endswith("_L") or (montage == "kuramoto19"
                                                           and int(n[1:]) % 2 == 0)) else (j, i)
            if (left, right) not in out:
                out.append((left, right))
    return out
