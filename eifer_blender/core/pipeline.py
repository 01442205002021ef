"""The data path from a recording file to expression curves, and from expression curves to muscles.

Forward: file → Recording → envelopes at the scene's fps → EMG2Exp → expression track, conditioned
(smoothing, rest floor, gain/offset, key reduction) for keyframing; or, from envelopes already made
(the curves keyed in a .blend), envelopes → EMG2Exp → the same conditioning. Reverse: expression track → Exp2EMG →
muscle track. Blender only reads and writes at the ends (``blender/jobs/drive.py``, ``blender/jobs/infer.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .envelopes import CALIBRATIONS, marked_segments, process_recording
from .envelopes.selection import select_channels
from .errors import InputError, ModelMismatchError
from .expression import curves
from .network import Model, resolve_model
from .recording import Annotation, Recording, RecordingSource, open_recording
from .tracks import ExpressionTrack, MuscleTrack


# What real recordings need on top of the model's training chain: narrow notches on the mains
# harmonics (amplifiers pick them up above the resting EMG; FACTS: lab recordings) and a drift
# high-pass (electrode and movement baseline). Both leave a clean recording's envelopes as they were
# (the harmonics' notches take ~3 % of the band), so the model still reads its own envelopes.
ROBUST_CHAIN = {"notch_harmonics": True, "drift_highpass_hz": 10.0}


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
    ``calibration`` (models with an activity input) says what full activity is: ``"percentile"``
    (the recording's own 99th percentile per channel, the default), ``"calibration"`` (a block of
    posed maximal expressions: ``calibration_s`` ranges in recording seconds, else the events
    labelled ``calibration_label``) or ``"rest"`` (a fixed multiple of the rest level: trusts the
    amplitude); ``sensitivity`` multiplies the calibrated activity before the network (1 = as is).
    """

    fps: float
    start_frame: int = 1
    frame_range: tuple[int, int] | None = None
    smoothing_s: float = 0.0
    rest_floor: float = 0.0
    gain: float | dict = 1.0
    offset: float | dict = 0.0
    key_tolerance: float = 0.0
    notch_hz: tuple[float, ...] | str | None = None  # None: the model's training chain (50 Hz); "auto": found
    channel_map: tuple[tuple[str, str], ...] | None = None  # file channel (or column) -> site
    side: str | None = None  # "left"/"right": side of channels named without one
    mirror: bool = False  # a one-sided recording also feeds the other side
    units: str | None = None  # "uV", "mV" or "V" for files that do not say
    nan_policy: str = "raise"  # missing samples: "raise", "zero" or "interpolate"
    calibration: str | None = None  # None: the model's own ("percentile" for the shipped one)
    calibration_s: tuple[tuple[float, float], ...] | None = None
    calibration_label: str = "calibration"
    sensitivity: float = 1.0


@dataclass
class DriveResult:
    envelopes: MuscleTrack  # µV at the scene's fps, as imported
    expression: ExpressionTrack  # conditioned weights at the scene's fps
    keep: np.ndarray | None  # (frames, shapes) keys to write, None = every frame
    first_frame: int  # scene frame of row 0
    model: Model
    left_alone: tuple[str, ...] = ()  # model outputs that no recorded site moves: not keyed

    @property
    def driven(self) -> tuple[str, ...]:
        return self.expression.names


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


def drive_chain(model: Model, settings: DriveSettings, channels: tuple[str, ...] | None = None):
    """The ``ProcessingSettings`` that make a drive's envelopes: the model's training chain with
    :data:`ROBUST_CHAIN` on top and the reading options of ``settings`` (``notch_hz``, which may
    also be "auto", ``channel_map``, ``side``, ``mirror``, ``nan_policy``). Import EMG keys the same
    envelopes, so driving from the keyed curves equals driving from the file."""
    overrides = {"channel_map": settings.channel_map, "side": settings.side, "mirror": settings.mirror,
                 "nan_policy": settings.nan_policy, **ROBUST_CHAIN}
    if settings.notch_hz is not None:
        overrides["notch_hz"] = settings.notch_hz if isinstance(settings.notch_hz, str) else tuple(settings.notch_hz)
    if channels is not None:
        overrides["channels"] = tuple(channels)
    return model.processing_settings(**overrides)


def event_rows(source: RecordingSource) -> list[list]:
    """The recording's events as JSON-able ``[onset_s, duration_s, description]`` rows (kept with
    envelopes, so a calibration block marked by events is found without the file)."""
    return [[float(a.onset_s), float(a.duration_s), str(a.description)] for a in source.annotations]


def _drive_model(model, settings: DriveSettings, providers: str) -> Model:
    model = resolve_model(model, "emg2arkit", providers).require(direction="emg2exp", purpose="driving a face")
    if curves.check_rest_floor(settings.rest_floor) > 0 and model.metadata.output_space != "arkit52":
        raise ModelMismatchError(f"a rest floor applies to ARKit weights (0–1); {model.path.name} outputs "
                                 f"{model.metadata.output_space} coefficients, which are signed: set it to 0")
    return model


def _require_coverage(source: RecordingSource | None, model: Model, chain=None, covered=None,
                      name: str | None = None) -> tuple[str, ...]:
    """The model's sites that the recording (or the ``covered`` site names) covers, in model order;
    refuses a recording that lacks sites the model needs (all of them, or for a masked model at
    least one), naming them."""
    covered = select_channels(source, chain).names if covered is None else tuple(covered)
    name = name or getattr(source, "source", None) or "the recording"
    missing = [n for n in model.input_names if n not in covered]
    present = tuple(n for n in model.input_names if n in covered)
    if model.masked and present:
        return present
    if model.masked:
        raise ModelMismatchError(
            f"{name} covers none of the {len(model.input_names)} sites {model.path.name} reads (its "
            f"channels: {', '.join(covered) or 'none recognised'}). Map the channels to sites "
            f"(--map CHANNEL=SITE, e.g. EMG1=Zyg_L) and give the side of channels named without one "
            f"(--side left)")
    if missing:
        raise ModelMismatchError(
            f"{name} covers {len(covered)} site(s) ({', '.join(covered) or 'none'}); {model.path.name} needs "
            f"all {len(model.input_names)} of its input sites, {len(missing)} are missing "
            f"({', '.join(missing)}). Map the channels that record them (--map CHANNEL=SITE), mirror a "
            f"one-sided recording (--mirror), or use a model trained for this montage")
    return present


def emg_to_expression(recording: Recording | RecordingSource | str | Path, settings: DriveSettings,
                      model: Model | str | Path | None = None, *, providers: str = "auto") -> DriveResult:
    """Run the forward path: recording → envelopes at ``settings.fps`` → EMG2Exp → conditioned track.

    Raises
    ------
    InputError, ModelMismatchError
        Unreadable recording, channels the model needs but the recording lacks (named), a model
        of the wrong direction, an empty or non-overlapping frame range.
    """
    model = _drive_model(model, settings, providers)
    source = recording if isinstance(recording, RecordingSource) else (
        RecordingSource.from_recording(recording) if isinstance(recording, Recording)
        else open_recording(recording, units=settings.units))
    start_s, n_frames, first_frame = frame_window(source, settings)
    present = _require_coverage(source, model, drive_chain(model, settings))
    # the model's channels that the recording covers, in its order
    envelopes = process_recording(source, settings.fps, drive_chain(model, settings, present),
                                  start_s=start_s, n_frames=n_frames)
    envelopes.meta["events"] = event_rows(source)
    return _drive_result(envelopes, settings, model, first_frame, calibration_choice(source, settings, model),
                         str(source.source))


def envelopes_to_expression(envelopes: MuscleTrack, settings: DriveSettings, model: Model | str | Path | None = None,
                            *, providers: str = "auto") -> DriveResult:
    """Run the forward path from envelopes already made: envelopes → EMG2Exp → conditioned track.

    ``envelopes`` are what :func:`drive_chain` makes (µV at ``settings.fps``, ``meta`` with the
    "processing" they were made with and, for a calibration block marked by events, "events");
    ``envelopes.start_s`` is the recording time of row 0, which lands on scene frame
    ``settings.start_frame + start_s · fps``; ``settings.frame_range`` picks the rows to drive.
    The result equals :func:`emg_to_expression` on the recording the envelopes were made from.

    Raises
    ------
    InputError, ModelMismatchError
        Envelopes at another frame rate or in other units, made with another chain than the
        model's (named), lacking sites the model needs, or outside the frame range.
    """
    model = _drive_model(model, settings, providers)
    name = str(envelopes.meta.get("source") or "the EMG curves")
    fps = float(settings.fps)
    if abs(float(envelopes.fps) - fps) > 1e-9:
        raise InputError(f"{name}: the envelopes are at {envelopes.fps:g} fps and the scene runs at {fps:g} fps: "
                         f"make them again at {fps:g} fps (import the recording again, or re-read it)")
    if envelopes.units != "uV":
        raise InputError(f"{name}: the envelopes are in {envelopes.units!r}; {model.path.name} reads envelopes "
                         f"in µV as the chain makes them: import the recording again")
    try:
        model._check_processing(envelopes)
    except ModelMismatchError as exc:
        raise ModelMismatchError(f"{name}: the envelopes were made with another chain than {model.path.name}'s: "
                                 f"{str(exc).split(': ', 1)[-1].split('. Process')[0]}. Import the recording again "
                                 f"with this model (or re-read the recording file)") from exc
    present = _require_coverage(None, model, covered=envelopes.names, name=name)
    first_frame = settings.start_frame + int(round(float(envelopes.start_s) * fps))
    frames = first_frame + np.arange(envelopes.n_frames)
    rows = np.ones(envelopes.n_frames, dtype=bool)
    if settings.frame_range is not None:
        first, last = settings.frame_range
        if last < first:
            raise InputError(f"empty frame range {first}–{last}: the last frame comes before the first")
        rows = (frames >= first) & (frames <= last)
        if not rows.any():
            raise InputError(f"frames {first}–{last} do not overlap the EMG curves, which cover frames "
                             f"{first_frame}–{first_frame + envelopes.n_frames - 1}")
    index = np.flatnonzero(rows)
    columns = [envelopes.names.index(n) for n in present]
    window = MuscleTrack(np.asarray(envelopes.values, dtype=np.float64)[index][:, columns], present, fps,
                         envelopes.space, envelopes.units,
                         float(envelopes.start_s) + (index[0] if index.size else 0) / fps, dict(envelopes.meta))
    events = _Events(name, [Annotation(*row) for row in envelopes.meta.get("events", ())])
    return _drive_result(window, settings, model, int(frames[index[0]]) if index.size else first_frame,
                         calibration_choice(events, settings, model), name)


@dataclass
class _Events:  # what calibration_choice reads of a recording, for envelopes without their file
    source: str
    annotations: list


def _drive_result(envelopes: MuscleTrack, settings: DriveSettings, model: Model, first_frame: int,
                  calibration: dict | None, source_name: str) -> DriveResult:
    """EMG2Exp on ``envelopes`` and the conditioning for keyframing: smoothing, rest floor,
    gain/offset (clipped to 0–1 for ARKit weights), key reduction."""
    predicted = model.run(envelopes, calibration=calibration, sensitivity=settings.sensitivity)
    names = predicted.names
    values = predicted.values.astype(np.float64)
    if settings.smoothing_s > 0:
        values = curves.smooth(values, settings.fps, settings.smoothing_s)
    values = curves.apply_rest_floor(values, settings.rest_floor)
    values = curves.apply_gain_offset(values, _per_shape(settings.gain, names, 1.0),
                                      _per_shape(settings.offset, names, 0.0),
                                      clip=(0.0, 1.0) if predicted.space == "arkit52" else None)
    expression = ExpressionTrack(values, names, settings.fps, predicted.space, predicted.units,
                                 envelopes.start_s, {**predicted.meta, "source": source_name})
    keep = curves.reduce_keys(values, settings.key_tolerance) if settings.key_tolerance > 0 else None
    return DriveResult(envelopes, expression, keep, first_frame, model,
                       tuple(predicted.meta.get("left_alone", ())))


def calibration_choice(source: RecordingSource, settings: DriveSettings, model: Model) -> dict | None:
    """The normalisation override for ``model.run``: the calibration and, for a posed maximum, its block."""
    if settings.calibration is None and not settings.calibration_s:
        return None
    # a block given without a calibration means the posed-maximum calibration, as on the command line
    calibration = settings.calibration or ("calibration" if settings.calibration_s
                                           else model.metadata.input_normalisation.get("calibration", "percentile"))
    if calibration not in CALIBRATIONS:
        raise InputError(f"unknown calibration {calibration!r}; use one of {', '.join(CALIBRATIONS)}")
    if calibration != "calibration":
        return {"calibration": calibration}
    segments = marked_segments(source, settings.calibration_s, settings.calibration_label.strip())
    if not segments:
        raise InputError(f"{source.source or 'the recording'}: calibration by a posed maximum needs the "
                         f"block of maximal expressions: give its time range (--calibration START:STOP "
                         f"in seconds) or mark it with events labelled {settings.calibration_label!r}")
    return {"calibration": "calibration", "segments_s": segments}


def expression_to_muscles(expression: ExpressionTrack, model: Model | str | Path | None = None, *,
                          providers: str = "auto") -> MuscleTrack:
    """Run the reverse path: expression track → Exp2EMG → muscle track at the same frames."""
    model = resolve_model(model, "arkit2emg", providers).require(direction="exp2emg", purpose="inferring muscles")
    return model.run(expression)
