"""Units of the samples a file holds, converted to the microvolts used everywhere in the package."""
from __future__ import annotations

from pathlib import Path

from ..errors import InputError

_UNIT_SCALE_TO_UV = {
    "uv": 1.0, "µv": 1.0, "μv": 1.0, "microvolt": 1.0, "microvolts": 1.0,
    "mv": 1e3, "millivolt": 1e3, "millivolts": 1e3,
    "v": 1e6, "volt": 1e6, "volts": 1e6,
    # dimensionless envelopes (normalised to a per-channel reference) are left as they are
    "normalised": 1.0, "normalized": 1.0, "1": 1.0, "au": 1.0, "a.u.": 1.0,
}


def unit_scale(unit: str | None, default: float, path: Path) -> float:
    if unit is None or str(unit).strip() == "":
        return default
    key = str(unit).strip().lower()
    if key not in _UNIT_SCALE_TO_UV:
        raise InputError(f"{path}: unknown unit '{unit}'; use uV, mV or V")
    return _UNIT_SCALE_TO_UV[key]
