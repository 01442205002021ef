"""Per-channel normalisation of envelopes: to rest, to a posed maximum (calibration), or percentiles.

MVC normalisation is impractical for the face; facial EMG labs normalise to rest and to a maximal
posed expression (van Boxtel 2001, Psychophysiology 38:22-34, doi:10.1111/1469-8986.3810022).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import InputError
from ..recording import RecordingSource
from .settings import NORMALISATION_METHODS, ProcessingSettings


def normalise_envelopes(values: np.ndarray, spec: dict, *, times_s: np.ndarray | None = None,
                        segments_s: Sequence[tuple[float, float]] | None = None) -> np.ndarray:
    """Normalise envelopes ``values[frames, channels]`` per channel as ``spec`` says.

    ``spec`` is ``{"method": ...}`` plus either fixed references ``"offset"``/``"scale"``
    (lists, one per channel, as stored in a track's ``meta["normalisation"]``) or the
    parameters to compute them (see :func:`normalisation_references`).
    Result: ``(values - offset) / scale``.
    """
    values = np.asarray(values, dtype=np.float64)
    if spec.get("method", "none") == "none":
        return values
    if "offset" in spec and "scale" in spec:
        offset = np.asarray(spec["offset"], dtype=np.float64)
        scale = np.asarray(spec["scale"], dtype=np.float64)
        if offset.shape != (values.shape[1],) or scale.shape != (values.shape[1],):
            raise InputError(f"normalisation references are for {offset.size} channels, the "
                             f"envelopes have {values.shape[1]}")
    else:
        refs = normalisation_references(values, spec, times_s=times_s, segments_s=segments_s)
        offset, scale = np.asarray(refs["offset"]), np.asarray(refs["scale"])
    return (values - offset) / scale


def _segment_mask(times_s: np.ndarray | None, segments_s: Sequence[tuple[float, float]], n_frames: int,
                 what: str, where: str = "") -> np.ndarray:
    """The frames whose times lie in any of ``segments_s`` (inclusive spans, seconds); a span set
    that holds no frame is refused, naming ``what`` it marks."""
    if times_s is None:
        raise ValueError("segments_s needs times_s")
    mask = np.zeros(n_frames, dtype=bool)
    for a, b in segments_s:
        mask |= (times_s >= a) & (times_s <= b)
    if not mask.any():
        raise InputError(f"{where}the {what} {list(segments_s)} contain no frame")
    return mask


def normalisation_references(values: np.ndarray, spec: dict, *, times_s: np.ndarray | None = None,
                             segments_s: Sequence[tuple[float, float]] | None = None,
                             names: Sequence[str] | None = None, source: str = "") -> dict:
    """Per-channel references ``{"method", "offset", "scale", ...}`` for :func:`normalise_envelopes`.

    Methods
    -------
    rest
        scale = median envelope over the rest segments (value 1 = rest level); without
        segments, the ``rest_percentile`` (default 10) of the whole track.
    calibration
        scale = maximum envelope over the calibration segments (1 = maximal posed expression);
        without segments, the ``max_percentile`` (default 99) of the whole track.
    percentile
        offset = ``low`` percentile (default 5), scale = ``high`` (95) - ``low`` percentile.
    activity
        The channel-flexible networks' input (see :func:`activity_references`): 0 at rest, 1 at
        the reference level that ``calibration`` names.
    """
    values = np.asarray(values, dtype=np.float64)
    method = spec.get("method", "none")
    where = f"{source}: " if source else ""
    n_ch = values.shape[1]
    if method == "none":
        return {"method": "none"}
    if method == "activity":
        return activity_references(values, spec, times_s=times_s, segments_s=segments_s, names=names,
                                   source=source)
    mask = np.ones(values.shape[0], dtype=bool)
    used_segments = None
    if segments_s:
        mask = _segment_mask(times_s, segments_s, values.shape[0], f"{method} segment(s)", where)
        used_segments = [list(map(float, s)) for s in segments_s]
    sel = values[mask]
    out: dict = {"method": method}
    if method in ("rest", "calibration"):
        # over marked segments: the median at rest, the maximum of the posed expressions; else a percentile
        segment_level, key, default = ((np.median, "rest_percentile", 10.0) if method == "rest"
                                       else (np.max, "max_percentile", 99.0))
        if used_segments:
            scale = segment_level(sel, axis=0)
        else:
            out[key] = float(spec.get(key, default))
            scale = np.percentile(sel, out[key], axis=0)
        offset = np.zeros(n_ch)
    elif method == "percentile":
        low, high = float(spec.get("low", 5.0)), float(spec.get("high", 95.0))
        offset = np.percentile(sel, low, axis=0)
        scale = np.percentile(sel, high, axis=0) - offset
        out.update(low=low, high=high)
    else:
        raise InputError(f"unknown normalisation method {method!r}; use one of "
                         f"{', '.join(NORMALISATION_METHODS)}")
    flat = np.flatnonzero(~(np.abs(scale) > 1e-12))
    if flat.size:
        labels = [names[i] if names else str(i) for i in flat]
        raise InputError(f"{where}cannot normalise ({method}): reference is zero for channel(s) "
                         f"{', '.join(labels)} (flat or disconnected?)")
    out["offset"] = offset.tolist()
    out["scale"] = scale.tolist()
    if used_segments:
        out["segments_s"] = used_segments
    if names is not None:
        out["channels"] = list(names)
    return out



CALIBRATIONS = ("rest", "calibration", "percentile")
CALIBRATION_LABELS = {"rest": "rest only", "calibration": "rest + posed maximum",
                      "percentile": "per-session percentile"}
ACTIVITY_DEFAULTS = {"calibration": "percentile", "rest_percentile": 10.0, "reference_percentile": 99.0,
                     "rest_ratio": 20.0, "min_ratio": 3.0}


def activity_references(values: np.ndarray, spec: dict, *, times_s: np.ndarray | None = None,
                        segments_s: Sequence[tuple[float, float]] | None = None,
                        names: Sequence[str] | None = None, source: str = "") -> dict:
    """References that read envelopes as activity: 0 at the channel's rest, 1 at its reference.

    offset = the ``rest_percentile`` (10) of the whole recording; the reference is chosen by
    ``calibration``, the way facial-EMG labs calibrate (van Boxtel 2001, doi:10.1111/1469-8986.3810022):

    - ``rest``: ``rest_ratio`` × rest: trusts the amplitude (the training recordings' typical
      maximum over rest);
    - ``calibration``: the ``reference_percentile`` over a posed-maximum block (``segments_s``:
      "maximal smile, maximal frown, ..."), which the caller must give;
    - ``percentile``: the ``reference_percentile`` (99) of the whole recording.

    The reference never comes closer to rest than ``min_ratio`` × rest, so a channel that only
    rests is not stretched to full scale. Amplifier gain cancels in every choice but ``rest``.
    """
    spec = {**ACTIVITY_DEFAULTS, **{k: v for k, v in spec.items() if k in ACTIVITY_DEFAULTS}}
    calibration = spec["calibration"]
    where = f"{source}: " if source else ""
    if calibration not in CALIBRATIONS:
        raise InputError(f"unknown calibration {calibration!r}; use one of {', '.join(CALIBRATIONS)}")
    values = np.asarray(values, dtype=np.float64)
    rest = np.percentile(values, spec["rest_percentile"], axis=0)
    flat = np.flatnonzero(~(rest > 1e-12))
    if flat.size:
        labels = [names[i] if names else str(i) for i in flat]
        raise InputError(f"{where}cannot calibrate: the rest level is zero for channel(s) "
                         f"{', '.join(labels)} (flat or disconnected?)")
    out = {"method": "activity", **spec}
    if calibration == "rest":
        reference = rest * float(spec["rest_ratio"])
    elif calibration == "percentile":
        reference = np.percentile(values, spec["reference_percentile"], axis=0)
    else:
        if not segments_s:
            raise InputError(f"{where}calibration by a posed maximum needs the block where the "
                             f"maximal expressions were posed: give its time range (--calibration "
                             f"START:STOP) or mark it with events labelled 'calibration'")
        inside = _segment_mask(times_s, segments_s, values.shape[0], "calibration block(s)", where)
        reference = np.percentile(values[inside], spec["reference_percentile"], axis=0)
        out["segments_s"] = [list(map(float, s)) for s in segments_s]
    reference = np.maximum(reference, rest * float(spec["min_ratio"]))
    out["offset"] = rest.tolist()
    out["scale"] = (reference - rest).tolist()
    if names is not None:
        out["channels"] = list(names)
    return out


def normalisation_segments(source: RecordingSource, settings: ProcessingSettings, name: str):
    method = settings.normalise
    if method == "rest":
        spans, label = settings.rest_s, settings.rest_label
    elif method == "calibration":
        spans, label = settings.calibration_s, settings.calibration_label
    else:
        return None
    return marked_segments(source, spans, label)


def marked_segments(source: RecordingSource, spans, label: str):
    """``spans`` (start_s, stop_s) as given, else the recording's events labelled ``label`` (any case,
    with a duration); None when there are neither."""
    if spans:
        return [tuple(map(float, s)) for s in spans]
    marked = [(a.onset_s, a.onset_s + a.duration_s) for a in source.annotations
              if a.description.strip().lower() == label.lower() and a.duration_s > 0]
    return marked or None


# ----------------------------------------------------------------------------------------------
