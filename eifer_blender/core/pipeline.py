"""The data path from a recording file to expression curves, and from expression curves to muscles.

Forward: file → Recording → envelopes at the scene's fps → EMG2Exp → expression track, conditioned
(smoothing, rest floor, gain/offset, key reduction) for keyframing. Reverse: expression track → Exp2EMG →
muscle track. Blender only reads and writes at the ends (``blender/jobs/drive.py``, ``blender/jobs/infer.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .envelopes import process_recording
from .envelopes.selection import select_channels
from .errors import InputError, ModelMismatchError
from .expression import curves
from .network import Model, resolve_model
from .recording import Recording, RecordingSource, open_recording
from .tracks import ExpressionTrack, MuscleTrack


@dataclass
class DriveSettings:
    """How a recording drives a face.

    ``start_frame`` is the scene frame at which the recording's time 0 lands; ``frame_range``
    (first, last) limits the frames keyed (default: the whole recording). ``smoothing_s`` is the
    Savitzky–Golay window (0 = off); ``rest_floor`` (ARKit weights only) maps weights up to it
    to 0 and stretches the rest back to [0, 1] (:func:`curves.apply_rest_floor`, 0 = off);
    ``gain``/``offset`` are scalars or ``{shape: value}``;
    ``key_tolerance`` > 0 drops keys that linear interpolation reproduces within it.
    ``channel_map``, ``side``, ``mirror``, ``units`` and ``nan_policy`` say how to read the
    recording (see :class:`~eifer_blender.core.envelopes.ProcessingSettings`).
    """

    fps: float
    start_frame: int = 1
    frame_range: tuple[int, int] | None = None
    smoothing_s: float = 0.0
    rest_floor: float = 0.0
    gain: float | dict = 1.0
    offset: float | dict = 0.0
    key_tolerance: float = 0.0
    notch_hz: tuple[float, ...] | None = None  # None: the model's training chain (50 Hz)
    channel_map: tuple[tuple[str, str], ...] | None = None  # file channel (or column) -> site
    side: str | None = None  # "left"/"right": side of channels named without one
    mirror: bool = False  # a one-sided recording also feeds the other side
    units: str | None = None  # "uV", "mV" or "V" for files that do not say
    nan_policy: str = "raise"  # missing samples: "raise", "zero" or "interpolate"


@dataclass
class DriveResult:
    envelopes: MuscleTrack  # µV at the scene's fps, as imported
    expression: ExpressionTrack  # conditioned weights at the scene's fps
    keep: np.ndarray | None  # (frames, shapes) keys to write, None = every frame
    first_frame: int  # scene frame of row 0
    model: Model


def _per_shape(value, names, default: float) -> np.ndarray:
    """One value per output shape from a scalar or a ``{shape: value}`` dict (others: default)."""
    if isinstance(value, dict):
        return np.array([float(value.get(n, default)) for n in names])
    return np.full(len(names), float(value))


def frame_window(source: RecordingSource, settings: DriveSettings) -> tuple[float, int | None, int]:
    """(start_s, n_frames, first_frame) of the frames to key, checked against the recording."""
    fps, start_frame = settings.fps, settings.start_frame
    if settings.frame_range is None:
        return 0.0, None, start_frame
    first, last = settings.frame_range
    if last < first:
        raise InputError(f"empty frame range {first}–{last}: the last frame comes before the first")
    first = max(first, start_frame)
    end_frame = start_frame + int(np.floor(source.duration_s * fps)) - 1
    if first > min(last, end_frame):
        raise InputError(
            f"frames {settings.frame_range[0]}–{last} do not overlap the recording, which covers "
            f"frames {start_frame}–{end_frame} at {fps:g} fps from start frame {start_frame}")
    return (first - start_frame) / fps, min(last, end_frame) - first + 1, first


def _require_coverage(source: RecordingSource, model: Model, chain) -> None:
    """Refuse a recording that lacks sites the model needs, naming what it covers and what is missing."""
    covered = select_channels(source, chain).names
    missing = [n for n in model.input_names if n not in covered]
    if missing:
        name = source.source or "the recording"
        raise ModelMismatchError(
            f"{name} covers {len(covered)} site(s) ({', '.join(covered) or 'none'}); {model.path.name} needs "
            f"all {len(model.input_names)} of its input sites, {len(missing)} are missing "
            f"({', '.join(missing)}). Map the channels that record them (--map CHANNEL=SITE), mirror a "
            f"one-sided recording (--mirror), or use a model trained for this montage")


def emg_to_expression(recording: Recording | RecordingSource | str | Path, settings: DriveSettings,
                      model: Model | str | Path | None = None, *, providers: str = "auto") -> DriveResult:
    """Run the forward path: recording → envelopes at ``settings.fps`` → EMG2Exp → conditioned track.

    Raises
    ------
    InputError, ModelMismatchError
        Unreadable recording, channels the model needs but the recording lacks (named), a model
        of the wrong direction, an empty or non-overlapping frame range.
    """
    model = resolve_model(model, "emg2arkit", providers).require(direction="emg2exp", purpose="driving a face")
    if curves.check_rest_floor(settings.rest_floor) > 0 and model.metadata.output_space != "arkit52":
        raise ModelMismatchError(f"a rest floor applies to ARKit weights (0–1); {model.path.name} outputs "
                                 f"{model.metadata.output_space} coefficients, which are signed: set it to 0")
    source = recording if isinstance(recording, RecordingSource) else (
        RecordingSource.from_recording(recording) if isinstance(recording, Recording)
        else open_recording(recording, units=settings.units))
    start_s, n_frames, first_frame = frame_window(source, settings)
    overrides = {"channel_map": settings.channel_map, "side": settings.side, "mirror": settings.mirror,
                 "nan_policy": settings.nan_policy}
    if settings.notch_hz is not None:
        overrides["notch_hz"] = tuple(settings.notch_hz)
    _require_coverage(source, model, model.processing_settings(**overrides))
    # the model's channels, in its order
    envelopes = process_recording(source, settings.fps,
                                  model.processing_settings(channels=tuple(model.input_names), **overrides),
                                  start_s=start_s, n_frames=n_frames)
    predicted = model.run(envelopes)
    names = predicted.names
    values = predicted.values.astype(np.float64)
    if settings.smoothing_s > 0:
        values = curves.smooth(values, settings.fps, settings.smoothing_s)
    values = curves.apply_rest_floor(values, settings.rest_floor)
    values = curves.apply_gain_offset(values, _per_shape(settings.gain, names, 1.0),
                                      _per_shape(settings.offset, names, 0.0),
                                      clip=(0.0, 1.0) if predicted.space == "arkit52" else None)
    expression = ExpressionTrack(values, names, settings.fps, predicted.space, predicted.units,
                                 envelopes.start_s, {**predicted.meta, "source": str(source.source)})
    keep = curves.reduce_keys(values, settings.key_tolerance) if settings.key_tolerance > 0 else None
    return DriveResult(envelopes, expression, keep, first_frame, model)


def expression_to_muscles(expression: ExpressionTrack, model: Model | str | Path | None = None, *,
                          providers: str = "auto") -> MuscleTrack:
    """Run the reverse path: expression track → Exp2EMG → muscle track at the same frames."""
    model = resolve_model(model, "arkit2emg", providers).require(direction="exp2emg", purpose="inferring muscles")
    return model.run(expression)
