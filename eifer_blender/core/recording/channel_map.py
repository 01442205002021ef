"""Which file channel is which montage site: the user's map, name aliases, monopolar pairs, guesses.

In: a file's channel labels (and, for headerless files, their 1-based column numbers), an optional
explicit map ``{label or column number: site}`` and the side of a one-sided set-up; out: a
:class:`ChannelMap` saying which label feeds which canonical site (Fridlund-22 or Kuramoto-19),
how (given, by alias, as a monopolar pair, or guessed from the words in the label), and which
labels map to no site (skin conductance, markers), which are left out and listed.

The word guesses follow the muscle names of Fridlund & Cacioppo (1986, Psychophysiology
23:567-589) and their usual lab abbreviations (``EMG_zyg``, ``Corrugator L``, ``Deprsup re``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import InputError
from .montage import MONTAGES, canonical_name, check_montage, split_electrode

#: words for the subject's side in channel labels (German lab exports use li/re, links/rechts)
SIDE_WORDS = {"l": "L", "li": "L", "lt": "L", "left": "L", "links": "L",
              "r": "R", "re": "R", "rt": "R", "right": "R", "rechts": "R"}
SIDES_GIVEN = {"left": "L", "l": "L", "right": "R", "r": "R"}
#: a map value that leaves a channel out on purpose
LEAVE_OUT = ("none", "-", "")


def _tokens(label: str) -> list[str]:
    """Lower-case word tokens of a label, camelCase split: ``"EMG_zygL"`` -> ``["emg", "zyg", "l"]``."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])", " ", label)
    return [t for t in re.split(r"[^0-9a-z]+", spaced.lower()) if t]


def _muscle_of(words: list[str]) -> str | None:
    """The Fridlund muscle key the words name, or None."""
    joined = "".join(words)
    if any(w.startswith(("deprsup", "depsup", "procerus")) for w in words) or "depressorsup" in joined:
        return "DepSup"
    if "dao" in words or "depressorang" in joined or "triangularis" in joined:
        return "DAO"
    if any(w.startswith("zyg") for w in words):
        return "Zyg"
    if "cor" in words or any(w.startswith("corr") for w in words):
        return "Corr"
    if "orboc" in joined or "oculi" in joined or any(w.startswith("orbicularisoc") for w in words):
        return "OrbOc"
    if "orbor" in joined or "oris" in words or "orbicularisor" in joined:
        return "OrbOr"
    if any(w.startswith(("llsup", "lls", "levator")) for w in words):
        return "LLSup"
    if any(w.startswith("ment") for w in words):
        return "Ment"
    if any(w.startswith("mass") for w in words):
        return "Mass"
    if any(w.startswith("front") for w in words) or "front" in joined:
        lateral = any(w in ("lat", "lateral", "lateralis") for w in words) or "latfront" in joined
        return "latFront" if lateral else "medFront"  # the medial site is the classic one (AU1)
    return None


def guess_site(label: str, side: str | None = None) -> tuple[str | None, str | None]:
    """Guess the Fridlund-22 site of a label from its words: ``(site, muscle)``.

    ``side`` ("L"/"R") is used when the label names none. Returns ``(None, None)`` when the label
    names no muscle, ``(None, muscle key)`` when it names a muscle but no side and none is given.

    >>> guess_site("EMG_zyg", "L")
    ('Zyg_L', 'Zyg')
    >>> guess_site("Corrugator R")
    ('Corr_R', 'Corr')
    """
    words = _tokens(label)
    sides = {SIDE_WORDS[w] for w in words if w in SIDE_WORDS}
    muscle = _muscle_of([w for w in words if w not in SIDE_WORDS and w not in ("emg", "semg", "exg")])
    if muscle is None:
        return None, None
    if len(sides) == 1:
        return f"{muscle}_{sides.pop()}", muscle
    return (f"{muscle}_{side}", muscle) if side in ("L", "R") else (None, muscle)


@dataclass(frozen=True)
class ChannelMap:
    """How a file's channels become canonical montage channels.

    ``direct`` maps a canonical name to the file channel that already holds it (bipolar or
    single-ended); ``bipolar`` maps a canonical name to the two monopolar file channels
    (electrode 1, electrode 2) whose difference gives it. ``unknown`` lists file channels that
    are no site of the montage (left out). ``how`` says for each resolved site how it was found:
    "map" (given by the user), "name" (a canonical name or alias), "pair" or "guess".
    """

    montage: str
    direct: dict[str, str]
    bipolar: dict[str, tuple[str, str]]
    unknown: tuple[str, ...]
    how: dict[str, str] = field(default_factory=dict)
    left_out: tuple[str, ...] = ()  # mapped to "none" by the user

    @property
    def canonical(self) -> tuple[str, ...]:
        """Resolved canonical names, in the montage's order."""
        found = set(self.direct) | set(self.bipolar)
        return tuple(n for n in MONTAGES[self.montage] if n in found)

    @property
    def by_label(self) -> dict[str, str]:
        """File label -> canonical name; both electrodes of a monopolar pair map to their site."""
        out = {label: site for site, label in self.direct.items()}
        for site, (first, second) in self.bipolar.items():
            out[first] = out[second] = site
        return out

    def missing(self) -> tuple[str, ...]:
        """Canonical montage channels the file does not provide."""
        found = set(self.direct) | set(self.bipolar)
        return tuple(n for n in MONTAGES[self.montage] if n not in found)

    def sources(self) -> dict[str, str]:
        """Canonical name -> human-readable origin ("Zyg li 1 - Zyg li 2" or "Zyg li")."""
        out = {n: self.direct[n] for n in self.direct}
        out.update({n: f"{a} - {b}" for n, (a, b) in self.bipolar.items()})
        return {n: out[n] for n in self.canonical}

    def describe(self) -> str:
        """One line for reports: which label feeds which site and how, what was left out."""
        sources = self.sources()
        parts = [s if sources[s] == s else f"{sources[s]} → {s}" + (
            "" if self.how.get(s, "name") == "name" else f" ({self.how[s]})") for s in self.canonical]
        text = f"{len(parts)} of {len(MONTAGES[self.montage])} {self.montage} sites"
        text += ", named as such" if parts == list(self.canonical) else ": " + ", ".join(parts)
        skipped = list(self.unknown) + list(self.left_out)
        return text + (f"; left out (no site): {', '.join(skipped)}" if skipped else "")


def guess_montage(names: Sequence[str]) -> str | None:
    """The montage whose sites most of ``names`` name (aliases, monopolar pairs, muscle words), or None."""
    best, best_count = None, 0
    for montage in MONTAGES:
        count = 0
        for name in names:
            site = canonical_name(name, montage)
            if site is None and (parts := split_electrode(name)):
                site = canonical_name(parts[0], montage)
            if site is None and montage == "fridlund22":
                site = guess_site(name, "L")[0]
            count += site is not None
        if count > best_count:
            best, best_count = montage, count
    return best


def _check_side(side: str | None) -> str | None:
    if side is None or side == "":
        return None
    letter = SIDES_GIVEN.get(str(side).strip().lower())
    if letter is None:
        raise InputError(f"side must be 'left' or 'right', not {side!r}")
    return letter


def _site_of(value: str, montage: str, where: str) -> str | None:
    """The canonical site a map value names (None = leave the channel out)."""
    if value.strip().lower() in LEAVE_OUT:
        return None
    site = value.strip() if value.strip() in MONTAGES[montage] else canonical_name(value, montage)
    if site is None:
        raise InputError(f"{where}the map names an unknown site {value!r}; {montage} sites are "
                         f"{', '.join(MONTAGES[montage])} (or 'none' to leave a channel out)")
    return site


def _label_of(key: str, names: Sequence[str], column_numbers: Sequence[int] | None, where: str) -> str:
    """The file channel a map key names: its label, or its 1-based column number in the file."""
    if key in names:
        return key
    if key.strip().isdigit():
        number = int(key)
        numbers = list(column_numbers) if column_numbers is not None else list(range(1, len(names) + 1))
        if number in numbers:
            return names[numbers.index(number)]
        raise InputError(f"{where}the map names column {number}, which holds no channel (channel "
                         f"columns: {', '.join(map(str, numbers))})")
    raise InputError(f"{where}the map names channel {key!r}, which the file lacks; its channels: "
                     f"{', '.join(names)}")


def resolve_channels(names: Sequence[str], montage: str = "fridlund22", *,
                     mapping: Mapping[str, str] | None = None, side: str | None = None,
                     column_numbers: Sequence[int] | None = None,
                     required: Sequence[str] | str | None = None, source: str = "") -> ChannelMap:
    """Map a file's channel labels onto canonical montage names.

    Parameters
    ----------
    names : sequence of str
        Channel labels as the file has them.
    montage : {"fridlund22", "kuramoto19", "auto"}
        Montage to resolve against; "auto" picks the one most labels belong to.
    mapping : mapping of str to str, optional
        The user's map, ``{label or 1-based file column: site}``; a site may be any alias
        (``"Zyg li"``) or ``"none"`` to leave the channel out. It wins over every guess.
    side : {"left", "right"}, optional
        Side of labels that name a muscle but no side (``"EMG_zyg"``).
    column_numbers : sequence of int, optional
        1-based file column of each label (headerless files); default 1..n.
    required : sequence of str or "all", optional
        Canonical channels that must be found; "all" means the whole montage.
    source : str
        File name for error messages.

    Returns
    -------
    ChannelMap
        Direct and monopolar-pair (bipolar) mappings, how each was found, the unknown labels.

    Raises
    ------
    InputError
        A map naming a channel the file lacks or an unknown site, two labels on one site, a
        monopolar electrode without its partner, a muscle label without a side when none is
        given, or required sites missing (listed by name).
    """
    where = f"{source}: " if source else ""
    names = list(names)
    letter = _check_side(side)
    if montage == "auto":
        montage = guess_montage(names) or "fridlund22"
    montage = check_montage(montage)
    direct: dict[str, str] = {}
    how: dict[str, str] = {}
    left_out: list[str] = []

    def claim(site: str, label: str, way: str) -> None:
        if site in direct:
            raise InputError(f"{where}channels '{direct[site]}' and '{label}' are both {site}"
                             + ("; correct the map" if way == "map" or how.get(site) == "map" else ""))
        direct[site], how[site] = label, way

    given = {}
    for key, value in (mapping or {}).items():
        given[_label_of(str(key), names, column_numbers, where)] = _site_of(str(value), montage, where)
    electrodes: dict[str, dict[int, str]] = {}
    for site in dict.fromkeys(given.values()):
        labels = [label for label, s in given.items() if s == site]
        if site is None:
            left_out += labels
            continue
        pair = [split_electrode(label) for label in labels]
        if len(labels) == 2 and all(pair) and {p[1] for p in pair} == {1, 2}:  # both electrodes of one site
            electrodes[site] = {p[1]: label for p, label in zip(pair, labels)}
            continue
        for label in labels:
            claim(site, label, "map")
    unknown: list[str] = []
    sideless: list[tuple[str, str]] = []
    for label in (n for n in names if n not in given):
        site = canonical_name(label, montage)
        if site is not None:
            claim(site, label, "name")
            continue
        parts = split_electrode(label)
        site = canonical_name(parts[0], montage) if parts else None
        if site is not None:
            slot = electrodes.setdefault(site, {})
            if parts[1] in slot:
                raise InputError(f"{where}channels '{slot[parts[1]]}' and '{label}' are both "
                                 f"electrode {parts[1]} of {site}")
            slot[parts[1]] = label
            continue
        guessed, muscle = guess_site(label, letter) if montage == "fridlund22" else (None, None)
        if guessed is not None:
            claim(guessed, label, "guess")
        elif muscle is not None:
            sideless.append((label, muscle))
        else:
            unknown.append(label)
    if sideless:
        label, muscle = sideless[0]
        raise InputError(f"{where}channel(s) {', '.join(l for l, _ in sideless)} name a muscle but no "
                         f"side: give the side (side='left' or 'right'; --side on the command line, "
                         f"'Side' in the EMG Recording panel) or map them (e.g. --map '{label}={muscle}_L')")
    bipolar: dict[str, tuple[str, str]] = {}
    for site, slot in electrodes.items():
        if site in direct:
            raise InputError(f"{where}{site} is given both as channel '{direct[site]}' and as "
                             f"monopolar electrode(s) {', '.join(slot.values())}")
        if len(slot) != 2:
            have = next(iter(slot.values()))
            raise InputError(f"{where}{site}: found electrode '{have}' but not its partner; a "
                             "bipolar site needs both electrodes (suffix 1 and 2)")
        bipolar[site], how[site] = (slot[1], slot[2]), ("map" if slot[1] in given else "pair")
    result = ChannelMap(montage, direct, bipolar, tuple(unknown), how, tuple(left_out))
    if required is not None:
        wanted = MONTAGES[montage] if isinstance(required, str) and required == "all" else required
        lacking = [n for n in wanted if n not in result.direct and n not in result.bipolar]
        if lacking:
            raise InputError(f"{where}missing channels for the {montage} montage: "
                             f"{', '.join(lacking)}")
    return result


def bipolar_matrix(names: Sequence[str], channel_map: ChannelMap) -> tuple[np.ndarray, tuple[str, ...]]:
    """Matrix (canonical channels, file channels) that turns file channels into canonical ones.

    Rows hold +1 for the direct channel, or +1/-1 for electrode 1/electrode 2 of a bipolar site.
    """
    index = {n: i for i, n in enumerate(names)}
    out = channel_map.canonical
    matrix = np.zeros((len(out), len(names)))
    for row, site in enumerate(out):
        if site in channel_map.direct:
            matrix[row, index[channel_map.direct[site]]] = 1.0
        else:
            a, b = channel_map.bipolar[site]
            matrix[row, index[a]] = 1.0
            matrix[row, index[b]] = -1.0
    return matrix, out


def parse_map_items(items: Sequence[str], where: str = "--map") -> dict[str, str]:
    """``["EMG_zyg=Zyg_L", "3=Corr_L"]`` -> ``{"EMG_zyg": "Zyg_L", "3": "Corr_L"}``."""
    out: dict[str, str] = {}
    for item in items:
        label, sep, site = str(item).rpartition("=")
        if not sep or not label.strip():
            raise InputError(f"{where} {item!r}: write CHANNEL=SITE, e.g. EMG_zyg=Zyg_L or 3=Corr_L")
        if label.strip() in out:
            raise InputError(f"{where}: channel {label.strip()!r} is mapped twice")
        out[label.strip()] = site.strip()
    return out


def read_map_file(path: str | Path) -> dict[str, str]:
    """A channel map file: two tab- or comma-separated columns, channel and site; ``#`` comments.

    A first row ``channel<TAB>site`` is a header. The channel may be a label or a 1-based column.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: map file not found")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file (a map file has two columns: channel, site)") from None
    items = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        cells = [c.strip() for c in re.split(r"\t|,", text)]
        cells = [c for c in cells if c] if len(cells) > 2 else cells
        if len(cells) != 2:
            raise InputError(f"{path}: line {number}: expected two columns (channel, site), got {line!r}")
        if (cells[0].lower(), cells[1].lower()) == ("channel", "site"):
            continue
        items.append(f"{cells[0]}={cells[1]}")
    if not items:
        raise InputError(f"{path}: the map file maps no channel")
    return parse_map_items(items, where=str(path))
