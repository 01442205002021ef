"""Infer muscle activity from a face's animation (EIFER's reverse direction).

``infer_muscles``: the face's animation over a frame range, evaluated whatever made it (keys,
drivers, NLA, mocap imports) → an expression track in the model's space → Exp2EMG → muscle curves
on an "EMG (inferred)" object with the structure of imported recordings (``anim.emg_object``).

Everything is computed and checked before the scene is written, so an error changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import bpy
import numpy as np

from ...core.errors import InputError, ModelMismatchError
from ...core.network import Model, resolve_model
from ...core.network.windows import window_offsets
from ...core.pipeline import expression_to_muscles
from ...core.tracks import ExpressionTrack, MuscleTrack
from ..anim import emg_object, internal
from ..anim.keyframes import scene_fps
from ..rigs import rig_for
from . import heatmap

if TYPE_CHECKING:
    from ...core.heads.bridge import Bridge

INFERRED_KIND = "inferred"
SOURCE_PREFIX = "face:"


@dataclass
class InferReport:
    """What :func:`infer_muscles` did."""

    face: bpy.types.Object
    emg_object: bpy.types.Object
    expression: ExpressionTrack  # the face over the frames, in the model's space, one row per frame
    muscles: MuscleTrack  # what it inferred, keyed on ``emg_object``
    frame_start: int
    frame_end: int
    missing_shapes: list[str]  # model inputs the rig lacks (read as 0)
    model: Model
    heatmaps_refreshed: int = 0
    bridge: Bridge | None = None  # the computed FLAME→ARKit bridge, when one was used

    @property
    def provider(self) -> str:
        return self.model.provider

    @property
    def bridge_note(self) -> str:
        """'' or one line: a computed bridge was used, and its fit residual."""
        from ..rigs.bridge_cache import bridge_note

        return bridge_note(self.bridge) if self.bridge is not None else ""


def _frames(scene, frame_range) -> np.ndarray:
    first, last = frame_range if frame_range is not None else (scene.frame_start, scene.frame_end)
    first, last = int(first), int(last)
    if last < first:
        raise InputError(f"empty frame range {first}–{last}: the last frame comes before the first")
    return np.arange(first, last + 1, dtype=np.int64)


def _frames_with_context(scene, frames: np.ndarray, model: Model) -> np.ndarray:
    """``frames`` and the frames the model's window reads beyond each end, as far as the scene's
    range holds them: a part of an animation is read with its surroundings, as the whole would be.

    The context covers the window (``window_offsets``) plus what the resampling to the model's
    rate and back reaches (anti-alias averages, interpolation). Its first frame lies on the model's
    frame grid as counted from the scene's first frame (every 4 frames at 24 fps, 2 at 60, 5 at
    25), so the part is resampled at the times the whole is and its curves are the whole's; at
    rates with no short common period (29.97 fps) they differ by the resampling's interpolation.
    """
    meta = model.metadata
    offsets = window_offsets(meta.window, meta.alignment)
    scene_rate, model_rate = scene_fps(scene), float(meta.fps)
    resampling_s = 3.0 / model_rate + np.ceil(model_rate / scene_rate) / model_rate \
        + np.ceil(scene_rate / model_rate) / scene_rate
    before, after = (int(np.ceil((reach / model_rate + resampling_s) * scene_rate)) + 1
                     for reach in (-offsets[0], offsets[-1]))
    first, last = int(frames[0]), int(frames[-1])
    start, end = scene.frame_start, scene.frame_end
    if start < first <= end + 1:  # context only from frames inside the scene's range
        first = max(first - before, start)
        period = _grid_period(scene_rate, model_rate)
        if period:
            first = start + (first - start) // period * period
    if start - 1 <= last < end:
        last = min(last + after, end)
    return np.arange(first, last + 1, dtype=np.int64)


def _grid_period(scene_rate: float, model_rate: float, longest: int = 100) -> int:
    """The fewest scene frames that span a whole number of model frames (0: none up to ``longest``)."""
    for frames in range(1, longest + 1):
        span = frames * model_rate / scene_rate
        if abs(span - round(span)) < 1e-9:
            return frames
    return 0


def face_expression(face, model: Model, frames, *, scene=None, swap_sides: bool = False,
                    mapping: dict[str, str] | None = None,
                    progress=None) -> tuple[ExpressionTrack, list[str]]:
    """The face's animation at ``frames`` as the expression track ``model`` reads.

    Returns ``(track, missing)``: inputs without a place on the rig (an ARKit model's shapes the
    mesh has no shape key for) are filled with 0 and listed in ``missing``. A FLAME head read by
    an ARKit model goes through the FLAME→ARKit bridge computed from the head's FLAME file
    (cached; built on first use, reporting to ``progress(fraction, message)``).

    Raises
    ------
    InputError, ModelMismatchError
        No usable shape keys, a FLAME head whose FLAME file is gone or is not a face, an ARKit
        head with a FLAME model, a model space the add-on cannot sample.
    """
    track, missing, _ = _face_expression(face, model, frames, scene=scene, swap_sides=swap_sides,
                                         mapping=mapping, progress=progress)
    return track, missing


def _face_expression(face, model: Model, frames, *, scene=None, swap_sides: bool = False,
                     mapping: dict[str, str] | None = None, progress=None):
    """:func:`face_expression`, and the bridge it used (or None)."""
    scene = scene or bpy.context.scene
    space = model.metadata.input_space
    if space not in ("arkit52", "flame"):
        raise ModelMismatchError(f"{model.path.name} reads the {space!r} space; faces can be read as "
                                 f"'arkit52' (shape keys) or 'flame' (FLAME rigs)")
    rig = rig_for(face, swap_sides=swap_sides, mapping=mapping)
    bridge = None
    if rig.space != space and not (rig.space == "flame" and space == "arkit52"):
        raise ModelMismatchError(
            f"{model.path.name} reads FLAME parameters, and {face.name} is not a FLAME head made by "
            f"EIFER; use an ARKit Exp2EMG model for shape-key rigs")
    wanted = list(model.input_names)
    missing = rig.bind(wanted)
    sampled = rig.sample(frames, scene)
    if rig.space == "flame" and space == "arkit52":
        from ..rigs.bridge_cache import bridge_for_head  # the bridge stack loads only when needed

        bridge = bridge_for_head(rig.rig, progress, otherwise=(
            f"Use an Exp2EMG model for the 'flame' space instead of {model.path.name}"))
        sampled = bridge.reverse_track(sampled)
    fps = scene_fps(scene)
    start_s = (float(frames[0]) - scene.frame_start) / fps
    values = np.zeros((sampled.n_frames, len(wanted)))
    for column, name in enumerate(wanted):
        if name in sampled.names:
            values[:, column] = sampled.column(name)
    meta = {"source": face.name}
    if rig.space == "arkit52":
        meta["binding"] = {n: rig.binding[n] for n in wanted if n in rig.binding}
    if bridge is not None:
        meta.update(bridge=bridge.sha256, bridge_summary=bridge.summary())
    return ExpressionTrack(values, wanted, fps, space, sampled.units, start_s, meta), missing, bridge


def _animated(rig) -> bool:
    return any(i is not None and i.animation_data is not None
               and (i.animation_data.action is not None or len(i.animation_data.drivers)
                    or len(i.animation_data.nla_tracks)) for i in rig.animated_ids)


# ---------------------------------------------------------------------------------------------
# Inference


def infer_muscles(face, *, scene=None, model=None, frame_range=None, providers: str = "auto",
                  swap_sides: bool = False, mapping: dict[str, str] | None = None,
                  name: str | None = None, progress=None) -> InferReport:
    """Infer muscle activity from ``face``'s animation and key it on an "EMG (inferred)" object.

    Parameters
    ----------
    face : the face object (a mesh with ARKit shape keys, or a FLAME head / armature).
    scene : default the context scene.
    model : an Exp2EMG :class:`Model`, a path, or None for the shipped "arkit2emg".
    frame_range : (first, last) inclusive scene frames; default the scene's range. The model's
        window also reads the frames around them (within the scene's range), as a run over
        the whole animation would.
    providers : "auto", "cpu" or "cuda".
    swap_sides, mapping : as for driving (Left/Right exchange, ARKit name -> shape key).
    name : the EMG object's name (default "EMG (inferred) <face>").
    progress : ``(fraction, message)`` callback while a FLAME head's bridge is built (first use).

    Returns
    -------
    InferReport
        The EMG object (re-inferring the same face replaces its data), both tracks, the frames
        and the model inputs the rig lacked.

    Raises
    ------
    InputError, ModelMismatchError
        No face, no animation over the frames, no matching shape keys, a model of the wrong
        direction or space. The scene is left unchanged.
    """
    scene = scene or bpy.context.scene
    if face is None:
        raise InputError("no face given: pick the animated face (a mesh with ARKit shape keys or a FLAME head)")
    frames = _frames(scene, frame_range)
    model = resolve_model(model, "arkit2emg", providers).require(direction="exp2emg", purpose="inferring muscles")
    read = _frames_with_context(scene, frames, model)
    around, missing, bridge = _face_expression(face, model, read, scene=scene, swap_sides=swap_sides,
                                               mapping=mapping, progress=progress)
    offset = int(frames[0] - read[0])
    inside = (offset, offset + frames.size)
    expression = around.slice_frames(*inside)
    moves = frames.size > 1 and np.ptp(expression.values, axis=0).max() > 0
    if not moves and (frames.size > 1 or not _animated(rig_for(face, swap_sides=swap_sides, mapping=mapping))):
        raise InputError(
            f"{face.name} has no animation over frames {frames[0]}–{frames[-1]}: its "
            f"{'shape keys' if expression.space == 'arkit52' else 'FLAME parameters'} do not change. "
            f"Key, drive or import an animation first, or pick the frames where it moves")
    muscles = expression_to_muscles(around, model).slice_frames(*inside)
    muscles.meta.update({"face": face.name, "first_frame": int(frames[0]), "missing_shapes": missing,
                         "input_space": expression.space})
    if bridge is not None:
        muscles.meta.update(bridge=bridge.sha256, bridge_residual_median=float(np.nanmedian(
            [bridge.residual(n) for n in bridge.reverse_shapes])))

    # Nothing above changed the scene; from here on, Blender is written.
    obj = emg_object.write_emg_object(scene, muscles, name=name or f"EMG (inferred) {face.name}",
                                      kind=INFERRED_KIND, source=SOURCE_PREFIX + face.name,
                                      start_frame=int(frames[0]))
    internal.put(face, "inferred", obj.name)
    refreshed = heatmap.refresh_heatmaps(obj)
    return InferReport(face, obj, expression, muscles, int(frames[0]), int(frames[-1]), missing, model,
                       refreshed, bridge)
