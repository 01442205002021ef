"""What every operator shares: input errors as Blender reports, progress, the user's preferences."""
from __future__ import annotations

import functools
from pathlib import Path

import bpy

from ...core.errors import EiferError
from .preferences import get_preferences


def reports_input_errors(execute):
    """Turn an :class:`EiferError` raised by ``execute`` into Blender's error report and CANCELLED.

    Operators compute and check before they write to the scene, so a cancelled operator has
    changed nothing.
    """

    @functools.wraps(execute)
    def wrapper(self, context):
        try:
            return execute(self, context)
        except EiferError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}

    return wrapper


class NeedsFace:
    """Mixin for operators that act on the sidebar's Face."""

    @classmethod
    def poll(cls, context):
        return context.scene.eifer.face is not None


class Progress:
    """Blender's progress indicator, and a console line when running headless."""

    def __init__(self, context, label: str):
        self.wm, self.label = context.window_manager, label

    def __enter__(self):
        self.wm.progress_begin(0, 100)
        return self

    def step(self, percent: int, what: str):
        self.wm.progress_update(percent)
        if bpy.app.background:
            print(f"EIFER {self.label}: {what}", flush=True)

    def __exit__(self, *exc):
        self.wm.progress_end()


def provider_preference(context) -> str:
    return get_preferences(context).execution_provider.lower()


def shape_mapping(settings) -> dict[str, str] | None:
    """The panel's mapping table as ARKit name -> shape key (None when the table is empty)."""
    return {row.arkit: row.shape for row in settings.mapping if row.arkit} or None


def recording_options(settings, path) -> dict:
    """How the sidebar says to read the recording at ``path``: the channel table (when it is that
    file's), units, side, mirror, missing samples."""
    own = bpy.path.abspath(settings.channel_sites_file) == str(path)
    rows = [(row.channel, row.site.strip() or "none") for row in settings.channel_sites if row.channel and own]
    return {"channel_map": tuple(rows) or None, "units": None if settings.units == "FILE" else settings.units,
            "side": None if settings.side == "NONE" else settings.side.lower(), "mirror": settings.mirror,
            "nan_policy": settings.nan_policy.lower()}


def calibration_options(settings) -> dict:
    """The Drive panel's Calibration and Sensitivity as ``drive`` arguments (a block start = end:
    the recording's 'calibration' events)."""
    block = (settings.calibration_start_s, settings.calibration_end_s)
    use_block = settings.calibration == "CALIBRATION" and block[1] > block[0]
    # percentile is the shipped model's own reading: None keeps models without the choice usable
    chosen = None if settings.calibration == "PERCENTILE" else settings.calibration.lower()
    return {"calibration": chosen, "calibration_s": (block,) if use_block else None,
            "sensitivity": settings.sensitivity}


def mains_setting(settings, *, driving: bool):
    """The Mains field as a notch: "auto" (found in the spectrum) when importing; when driving, the
    shipped model's 50 Hz unless the user chose 60 (the model was trained on a 50 Hz chain)."""
    if settings.mains_hz == "AUTO":
        return (50.0,) if driving else "auto"
    return (float(settings.mains_hz),)


def match_format_suffix(operator, suffixes: dict[str, str]) -> bool:
    """File-browser ``check``: give ``operator.filepath`` the suffix of its ``file_format`` (a
    ``.csv`` name becomes ``.edf`` when EDF is chosen, not ``.csv.edf``); True when it changed."""
    path = Path(operator.filepath)
    known = {suffix for suffix in suffixes.values() if suffix}
    stem = str(path.with_suffix("")) if path.suffix.lower() in known else operator.filepath
    wanted = stem + suffixes[operator.file_format]
    if wanted == operator.filepath:
        return False
    operator.filepath = wanted
    return True
