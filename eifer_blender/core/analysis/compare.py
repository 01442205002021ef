"""Recorded vs inferred muscle activity: align two tracks and score them with EIFER's metrics.

The tracks are aligned on the frames both cover (same frame rate, same frame grid) and the
channels both carry. Recorded envelopes are in µV while Exp2EMG outputs are normalised, so
"auto" scaling puts both on one footing first: each channel of each track is mapped to
``(v - p5) / (p95 - p5)`` (its own 5th and 95th percentile over the compared frames), the
normalisation the shipped models are trained with. Spearman ρ does not depend on the scaling;
MSE, RMSE and SMAPE do, so the scaling used is written next to every result.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_file
from ..errors import InputError
from ..tracks import MuscleTrack, Track
from .metrics import METRIC_NAMES, MetricTable, score

SCALINGS = ("auto", "none", "percentile")
PERCENTILES = (5.0, 95.0)
_GRID_TOLERANCE_FRAMES = 1e-3


@dataclass
class Comparison:
    """Two tracks on common frames and channels (as scored) and their per-channel metrics."""

    recorded: MuscleTrack
    inferred: MuscleTrack
    table: MetricTable
    scaling: str  # "none" or "percentile": what was applied before scoring

    @property
    def names(self) -> tuple[str, ...]:
        return self.table.names

    def summary(self) -> dict[str, float]:
        """Median of each metric over the channels (NaNs left out)."""
        return self.table.summary()


def align_tracks(recorded: Track, inferred: Track, names=None) -> tuple[Track, Track]:
    """Both tracks cut to the frames they share, with the channels they share (in ``recorded`` order).

    Raises
    ------
    InputError
        Different frame rates, frames that do not fall on one grid, no common frame or channel.
    """
    if abs(float(recorded.fps) - float(inferred.fps)) > 1e-9 * float(recorded.fps):
        raise InputError(f"the recorded track runs at {recorded.fps:g} fps and the inferred one at "
                         f"{inferred.fps:g} fps; compare curves at the same frame rate")
    wanted = list(names) if names is not None else list(recorded.names)
    common = [n for n in wanted if n in recorded.names and n in inferred.names]
    if not common:
        raise InputError(f"the tracks share no channel (recorded: {', '.join(recorded.names[:6])} …; "
                         f"inferred: {', '.join(inferred.names[:6])} …)")
    fps = float(recorded.fps)
    offset = (float(inferred.start_s) - float(recorded.start_s)) * fps  # inferred frame 0 in recorded frames
    shift = int(round(offset))
    if abs(offset - shift) > _GRID_TOLERANCE_FRAMES:
        raise InputError(f"the tracks' frames are {offset - np.floor(offset):.2f} frames apart; "
                         f"they must fall on the same frames to be compared")
    first = max(0, shift)
    last = min(recorded.n_frames, shift + inferred.n_frames)  # exclusive, in recorded frames
    if last <= first:
        raise InputError(
            f"the tracks do not overlap: recorded covers {recorded.start_s:g}–"
            f"{recorded.start_s + recorded.n_frames / fps:g} s, inferred {inferred.start_s:g}–"
            f"{inferred.start_s + inferred.n_frames / fps:g} s")
    rec = recorded.select(common)
    inf = inferred.select(common)
    start_s = float(recorded.start_s) + first / fps
    cut = lambda track, a, b: MuscleTrack(track.values[a:b], track.names, track.fps, track.space,  # noqa: E731
                                           track.units, start_s, dict(track.meta))
    return cut(rec, first, last), cut(inf, first - shift, last - shift)


def percentile_scaled(values: np.ndarray, percentiles=PERCENTILES) -> np.ndarray:
    """Each column mapped to ``(v - p_low) / (p_high - p_low)``; a flat column becomes 0."""
    values = np.asarray(values, dtype=np.float64)
    low, high = np.percentile(values, percentiles, axis=0)
    spread = high - low
    safe = np.where(spread > 1e-12, spread, 1.0)
    return np.where(spread > 1e-12, (values - low) / safe, 0.0)


def compare_tracks(recorded: Track, inferred: Track, *, scaling: str = "auto", names=None) -> Comparison:
    """EIFER's metrics (MSE, RMSE, SMAPE, Spearman ρ) per channel of ``inferred`` against ``recorded``.

    Parameters
    ----------
    recorded, inferred : Track
        Muscle tracks at the same fps; only shared frames and channels are scored.
    scaling : {"auto", "none", "percentile"}
        "auto" = "none" when both tracks have the same units, else "percentile" (see module).
    names : optional channel subset.
    """
    if scaling not in SCALINGS:
        raise InputError(f"scaling must be one of {', '.join(SCALINGS)}, got {scaling!r}")
    rec, inf = align_tracks(recorded, inferred, names)
    if scaling == "auto":
        scaling = "none" if rec.units == inf.units else "percentile"
    rec_values, inf_values = rec.values.astype(np.float64), inf.values.astype(np.float64)
    units = rec.units
    if scaling == "percentile":
        rec_values, inf_values = percentile_scaled(rec_values), percentile_scaled(inf_values)
        units = "p5-p95"
    table = score(inf_values, rec_values, rec.names)
    as_track = lambda t, v: MuscleTrack(v, t.names, t.fps, t.space, units, t.start_s, dict(t.meta))  # noqa: E731
    return Comparison(as_track(rec, rec_values), as_track(inf, inf_values), table, scaling)


def write_metrics_csv(comparison: Comparison, path: str | Path, *, recorded_label: str = "recorded",
                      inferred_label: str = "inferred") -> Path:
    """Write one row per channel (``channel,mse,rmse,smape,spearman``) and a final ``median`` row.

    ``#`` lines above the header name the tracks, the frames compared, fps and scaling.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rec = comparison.recorded
    lines = [
        f"# recorded: {recorded_label}",
        f"# inferred: {inferred_label}",
        f"# fps: {rec.fps:g}",
        f"# frames: {rec.n_frames} from {rec.start_s:.6g} s",
        f"# scaling: {comparison.scaling}"
        + (" (each channel (v - p5) / (p95 - p5) before scoring)" if comparison.scaling == "percentile" else ""),
        "# smape in percent (0-200); spearman is Spearman's rank correlation",
        "channel," + ",".join(METRIC_NAMES),
    ]
    for name in comparison.names:
        row = comparison.table.row(name)
        lines.append(name + "," + ",".join(_number(row[m]) for m in METRIC_NAMES))
    summary = comparison.summary()
    lines.append("median," + ",".join(_number(summary[m]) for m in METRIC_NAMES))
    with atomic_file(path) as temporary:
        temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_metrics_csv(path: str | Path) -> dict[str, dict[str, float]]:
    """Rows of a file written by :func:`write_metrics_csv`: ``{channel: {metric: value}}``."""
    rows: dict[str, dict[str, float]] = {}
    header = None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        cells = line.split(",")
        if header is None:
            header = cells
            continue
        rows[cells[0]] = {k: float(v) for k, v in zip(header[1:], cells[1:])}
    return rows


def _number(value: float) -> str:
    return "nan" if not np.isfinite(value) else f"{value:.6g}"
