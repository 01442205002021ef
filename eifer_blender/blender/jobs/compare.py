"""Compare two EMG objects (recorded and inferred) with EIFER's metrics, writing a CSV and a PNG."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from ...core.analysis.compare import Comparison, compare_tracks, write_metrics_csv
from ...core.analysis.plots import plot_comparison
from ...core.errors import InputError
from ...core.tracks import MuscleTrack
from ..anim import emg_object, keyframes


@dataclass
class CompareReport:
    """What :func:`compare_emg` computed and wrote."""

    comparison: Comparison
    recorded: bpy.types.Object
    inferred: bpy.types.Object
    frame_start: int
    frame_end: int
    csv_path: Path | None
    png_path: Path | None


def _keyed_span(obj) -> tuple[int, int]:
    if not emg_object.is_emg_object(obj):
        raise InputError(f"{obj.name} is not an EMG object (import a recording or infer muscles first)")
    bag = keyframes.assigned_channelbag(obj)
    names = emg_object.channel_names(obj)
    curve = bag.fcurves.find(f'["{bpy.utils.escape_identifier(emg_object.CURVE_PREFIX + names[0])}"]') if bag and names else None
    if curve is None or len(curve.keyframe_points) == 0:
        raise InputError(f"{obj.name} has no EMG curves")
    frames, _ = keyframes.read_keys(curve)
    return int(np.ceil(frames.min())), int(np.floor(frames.max()))


def compare_emg(recorded, inferred, *, frame_range=None, scaling: str = "auto", csv_path=None,
                png_path=None, scene=None) -> CompareReport:
    """EIFER's metrics (MSE, RMSE, SMAPE, Spearman ρ) per channel between two EMG objects.

    Both objects are evaluated at the scene frames they both cover (within ``frame_range`` when
    given); channels both carry are scored. ``scaling`` is explained in ``core.analysis.compare``.
    ``csv_path`` / ``png_path`` (optional) receive the table and a recorded-vs-inferred plot.

    Raises
    ------
    InputError
        An object that is not an EMG object, different frame rates, no common frames or channels.
    """
    scene = scene or bpy.context.scene
    if recorded is None or inferred is None:
        raise InputError("pick both a recorded and an inferred EMG object to compare")
    spans = [_keyed_span(recorded), _keyed_span(inferred)]
    first, last = max(s[0] for s in spans), min(s[1] for s in spans)
    if frame_range is not None:
        first, last = max(first, int(frame_range[0])), min(last, int(frame_range[1]))
    if last < first:
        raise InputError(f"{recorded.name} (frames {spans[0][0]}–{spans[0][1]}) and {inferred.name} "
                         f"(frames {spans[1][0]}–{spans[1][1]}) share no frame"
                         + (f" within {frame_range[0]}–{frame_range[1]}" if frame_range else ""))
    rates = emg_object.fps(recorded), emg_object.fps(inferred)
    if abs(rates[0] - rates[1]) > 1e-6:
        raise InputError(f"{recorded.name} was keyed at {rates[0]:g} fps and {inferred.name} at "
                         f"{rates[1]:g} fps; re-import or re-infer at one frame rate")
    frames = np.arange(first, last + 1, dtype=np.float64)
    tracks = []
    for obj in (recorded, inferred):
        track = emg_object.read_emg_object(obj, frames)
        # both on the scene's clock, so frame i of one is frame i of the other
        tracks.append(MuscleTrack(track.values, track.names, track.fps, track.space, track.units,
                                  (first - scene.frame_start) / track.fps, track.meta))
    comparison = compare_tracks(tracks[0], tracks[1], scaling=scaling)
    csv_out = png_out = None
    if csv_path:
        csv_out = write_metrics_csv(comparison, csv_path, recorded_label=recorded.name,
                                    inferred_label=inferred.name)
    if png_path:
        title = (f"{recorded.name} vs {inferred.name}, frames {first}–{last}"
                 + (" (each channel scaled to its 5th–95th percentile)" if comparison.scaling == "percentile" else ""))
        png_out = plot_comparison(comparison.recorded, comparison.inferred, png_path, title=title)
    return CompareReport(comparison, recorded, inferred, first, last, csv_out, png_out)
