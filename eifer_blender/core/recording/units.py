"""Units of the samples a file holds, converted to the microvolts used everywhere in the package.

In: a unit as a file header or the user states it ("uV", "µV", "mV", "V", "microvolts", "a.u.",
"EMG_zyg [mV]", ...). Out: the factor to µV (:func:`unit_scale`), one spelling per unit
(:func:`canonical_unit`: "uV", "mV", "V", "nV", "normalised"), a channel name split from the unit
in its brackets (:func:`split_header_unit`), and the one message that asks for missing units
(:func:`missing_units_message`). Units are never guessed: a unit nobody stated is
:data:`UNKNOWN`.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from ..errors import InputError

#: units of channels whose file does not say (and the user did not either)
UNKNOWN = "unknown"

_CANONICAL = {
    "uv": "uV", "µv": "uV", "μv": "uV", "microvolt": "uV", "microvolts": "uV",
    # UTF-8 µ / μ decoded as Latin-1 (EDF headers are ASCII; some writers put UTF-8 there)
    "\xc2\xb5v": "uV", "\xce\xbcv": "uV",
    "mv": "mV", "millivolt": "mV", "millivolts": "mV",
    "v": "V", "volt": "V", "volts": "V",
    "nv": "nV", "nanovolt": "nV", "nanovolts": "nV",
    # dimensionless envelopes (normalised to a per-channel reference) are left as they are
    "normalised": "normalised", "normalized": "normalised", "1": "normalised", "au": "normalised",
    "a.u.": "normalised", "a.u": "normalised", "arb. units": "normalised",
}
_SCALE_TO_UV = {"uV": 1.0, "mV": 1e3, "V": 1e6, "nV": 1e-3, "normalised": 1.0}
VOLTAGE_UNITS = ("nV", "uV", "mV", "V")

# "EMG_zyg (mV)", "Zyg li [µV]": a name, then a unit in round or square brackets at the end
_BRACKETED = re.compile(r"^(?P<name>.*?\S)\s*(?:\((?P<round>[^()]*)\)|\[(?P<square>[^\[\]]*)\])\s*$")


def canonical_unit(unit: str | None) -> str | None:
    """One spelling per unit ("uV", "mV", "V", "nV", "normalised"), or None if not a known unit."""
    if unit is None:
        return None
    return _CANONICAL.get(str(unit).strip().lower())


def is_voltage(unit: str | None) -> bool:
    """Whether ``unit`` is a voltage this package converts to µV."""
    return canonical_unit(unit) in VOLTAGE_UNITS


def unit_scale(unit: str | None, default: float, path: Path) -> float:
    """Factor that turns samples in ``unit`` into µV (``default`` if ``unit`` is empty).

    Raises
    ------
    InputError
        If ``unit`` is not a unit this package knows.
    """
    if unit is None or str(unit).strip() == "":
        return default
    key = canonical_unit(unit)
    if key is None:
        raise InputError(f"{path}: unknown unit '{unit}'; use uV, mV or V")
    return _SCALE_TO_UV[key]


def check_units_argument(units: str | None) -> str | None:
    """The canonical spelling of a ``units=`` argument (None stays None).

    Raises
    ------
    InputError
        If ``units`` is not a voltage (or "normalised").
    """
    if units is None:
        return None
    key = canonical_unit(units)
    if key is None:
        raise InputError(f"units must be 'uV', 'mV' or 'V', not {units!r}")
    return key


def split_header_unit(name: str) -> tuple[str, str | None]:
    """Split a CSV header name such as ``"EMG_zyg [mV]"`` into ``("EMG_zyg", "mV")``.

    Only a known unit in round or square brackets at the end counts; anything else
    (``"Zyg (left)"``, ``"Zyg_L_mV"``) is returned unchanged with None.
    """
    match = _BRACKETED.match(name)
    if not match:
        return name, None
    unit = canonical_unit(match.group("round") if match.group("round") is not None
                          else match.group("square"))
    if unit is None:
        return name, None
    return match.group("name"), unit


def missing_units_message(path, channels: Sequence[str]) -> str:
    """The message that asks for the units of ``channels`` (the file does not state them)."""
    names = ", ".join(channels[:10]) + (f" and {len(channels) - 10} more" if len(channels) > 10 else "")
    return (f"{path}: the file does not say in which units channel(s) {names} were recorded; "
            "pass units='mV' (on the command line --units mV, in Blender the Units field of the "
            "EMG Recording panel), or 'uV' / 'V', whichever the recording system used")


def resolve_units(stated: Sequence[str | None], given: str | None, names: Sequence[str],
                  source, applicable: Sequence[bool] | None = None
                  ) -> tuple[list[str], list[str], list[str]]:
    """Settle each channel's unit from what the file states and the user's ``units`` argument.

    Parameters
    ----------
    stated : sequence of str or None
        Per channel, the unit the file states (None: the file does not say).
    given : str or None
        The ``units=`` argument, canonical (see :func:`check_units_argument`).
    names : sequence of str
        Channel names, for the warnings.
    source : str or Path
        The file, for the warnings.
    applicable : sequence of bool, optional
        Channels ``given`` may apply to (default all; trigger channels have no unit).

    Returns
    -------
    units_as_read : list of str
        Per channel: the stated unit, else ``given``, else :data:`UNKNOWN`.
    given_for : list of str
        Channels whose unit is ``given``.
    warnings : list of str
        One line per unit the file states that disagrees with ``given`` (``given`` is ignored
        for those channels: the file's own statement wins).
    """
    applicable = [True] * len(names) if applicable is None else list(applicable)
    as_read, given_for, disagree = [], [], {}
    for name, unit, ok in zip(names, stated, applicable):
        if unit is not None and unit != UNKNOWN:
            as_read.append(unit)
            if given is not None and ok and canonical_unit(unit) not in (None, given):
                disagree.setdefault(unit, []).append(name)
        elif given is not None and ok:
            as_read.append(given)
            given_for.append(name)
        else:
            as_read.append(UNKNOWN)
    notes = [f"{source}: units='{given}' ignored for channel(s) {', '.join(chs)}: the file states {unit}"
             for unit, chs in disagree.items()]
    return as_read, given_for, notes


def sample_units(units_as_read: Sequence[str], channel_types: Sequence[str]) -> str:
    """What the samples of a recording are after reading: "uV", "normalised", "unknown" or "mixed".

    Trigger and misc channels do not count; a recording of nothing else is "unknown" (never µV
    without a statement).
    """
    counted = [canonical_unit(u) if u != UNKNOWN else UNKNOWN
               for u, t in zip(units_as_read, channel_types) if t not in ("stim", "misc")]
    if UNKNOWN in counted:
        return UNKNOWN
    if counted and all(u in VOLTAGE_UNITS for u in counted):
        return "uV"
    if counted and all(u == "normalised" for u in counted):
        return "normalised"
    return UNKNOWN if not counted else "mixed"
