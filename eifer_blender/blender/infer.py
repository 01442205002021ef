"""Infer muscle activity from a face's animation (EIFER's reverse direction), and compare EMG objects.

``infer_muscles``: the face's animation over a frame range, evaluated whatever made it (keys,
drivers, NLA, mocap imports) → an expression track in the model's space → Exp2EMG → muscle curves
on an "EMG (inferred)" object with the structure of imported recordings (``emg_object``).
``compare_emg``: EIFER's metrics between a recorded and an inferred EMG object over their common
frames, with a CSV and a PNG.

Everything is computed and checked before the scene is written, so an error changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from ..core.compare import Comparison, compare_tracks, write_metrics_csv
from ..core.errors import InputError, ModelMismatchError
from ..core.network import Model
from ..core.pipeline import expression_to_muscles, resolve_model
from ..core.spaces import ARKIT52
from ..core.tracks import ExpressionTrack, MuscleTrack
from . import emg_object, keyframes, rig_arkit
from .keyframes import scene_fps

INFERRED_KIND = "inferred"
SOURCE_PREFIX = "face:"


@dataclass
class InferReport:
    """What :func:`infer_muscles` did."""

    face: bpy.types.Object
    emg_object: bpy.types.Object
    expression: ExpressionTrack  # what the model read, in its space, one row per frame
    muscles: MuscleTrack  # what it inferred, keyed on ``emg_object``
    frame_start: int
    frame_end: int
    missing_shapes: list[str]  # model inputs the rig lacks (read as 0)
    model: Model
    heatmaps_refreshed: int = 0

    @property
    def provider(self) -> str:
        return self.model.provider


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


def _frames(scene, frame_range) -> np.ndarray:
    first, last = frame_range if frame_range is not None else (scene.frame_start, scene.frame_end)
    first, last = int(first), int(last)
    if last < first:
        raise InputError(f"empty frame range {first}–{last}: the last frame comes before the first")
    return np.arange(first, last + 1, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# Reading the face


def _plain_keyframed(id_data) -> bool:
    """True when only the assigned action moves ``id_data`` (no drivers, live NLA or blending),
    so its F-curves can be evaluated directly instead of stepping the scene frame by frame."""
    anim = id_data.animation_data
    if anim is None:
        return True
    if len(anim.drivers) or any(not track.mute for track in anim.nla_tracks) or anim.use_tweak_mode:
        return False
    return anim.action is None or (anim.action_influence == 1.0 and anim.action_blend_type == "REPLACE"
                                   and anim.action_extrapolation == "HOLD")


def sample_arkit_shapes(face, binding: dict[str, str], frames, scene=None) -> ExpressionTrack:
    """The bound shape-key values at ``frames`` as an ``arkit52`` track at the scene's fps.

    Keyframed-only shape keys are evaluated from their F-curves (fast); anything else (drivers,
    NLA, blending) is evaluated by stepping the scene through the frames, so the values are
    what Blender shows, whatever made them.
    """
    scene = scene or bpy.context.scene
    key = face.data.shape_keys
    frames = np.asarray(frames, dtype=np.int64)
    if not _plain_keyframed(key):
        return rig_arkit.sample_shape_keys(face, binding, frames, scene)
    names = [n for n in ARKIT52 if n in binding]
    bag = keyframes.assigned_channelbag(key)
    values = np.empty((frames.size, len(names)))
    for column, name in enumerate(names):
        block = key.key_blocks[binding[name]]
        path = f'key_blocks["{bpy.utils.escape_identifier(block.name)}"].value'
        fcurve = bag.fcurves.find(path) if bag is not None else None
        if fcurve is None or fcurve.mute:
            values[:, column] = block.value
        else:
            values[:, column] = [fcurve.evaluate(float(f)) for f in frames]
            # the animation system writes through RNA, which clamps to the slider range
            np.clip(values[:, column], block.slider_min, block.slider_max, out=values[:, column])
    return ExpressionTrack(values, names, fps=scene_fps(scene), space="arkit52", units="1")


def _is_flame_rig(obj) -> bool:
    from .rig_flame import is_flame_rig  # rig_flame loads the FLAME core: only when asked

    return is_flame_rig(obj)


def face_expression(face, model: Model, frames, *, scene=None, swap_sides: bool = False,
                    mapping: dict[str, str] | None = None) -> tuple[ExpressionTrack, list[str]]:
    """The face's animation at ``frames`` as the expression track ``model`` reads.

    Returns ``(track, missing)``: for an ARKit model, inputs without a shape key on the rig are
    filled with 0 and listed in ``missing``.

    Raises
    ------
    InputError, ModelMismatchError
        No usable shape keys, a rig the model's space cannot read (e.g. a FLAME head with an
        ARKit model), a model space the add-on cannot sample.
    """
    scene = scene or bpy.context.scene
    space = model.metadata.input_space
    wanted = list(model.input_names)
    fps = scene_fps(scene)
    start_s = (float(frames[0]) - scene.frame_start) / fps
    if space == "arkit52":
        if face is None or face.type != "MESH" or face.data.shape_keys is None:
            if _is_flame_rig(face):
                raise ModelMismatchError(
                    f"{face.name} is a FLAME rig without ARKit shape keys, and {model.path.name} reads "
                    f"ARKit-52 shape keys; use an Exp2EMG model for the 'flame' space")
            raise InputError(f"{getattr(face, 'name', 'nothing')} is not a mesh with shape keys")
        binding = rig_arkit.arkit_binding(face, swap_sides=swap_sides, overrides=mapping)
        if not any(n in binding for n in wanted):
            if _is_flame_rig(face):
                raise ModelMismatchError(
                    f"{face.name} is a FLAME head: its shape keys are FLAME coefficients, and "
                    f"{model.path.name} reads ARKit-52 shapes; use an Exp2EMG model for the 'flame' space")
            rig_arkit.require_binding(face, wanted, binding)
        sampled = sample_arkit_shapes(face, binding, frames, scene)
        missing = [n for n in wanted if n not in sampled.names]
        values = np.zeros((sampled.n_frames, len(wanted)))
        for column, name in enumerate(wanted):
            if name in sampled.names:
                values[:, column] = sampled.column(name)
        track = ExpressionTrack(values, wanted, fps, "arkit52", "1", start_s,
                                {"source": face.name, "binding": {n: binding[n] for n in wanted if n in binding}})
        return track, missing
    if space == "flame":
        from . import rig_flame

        if not _is_flame_rig(face):
            raise ModelMismatchError(
                f"{model.path.name} reads FLAME parameters, and {getattr(face, 'name', 'nothing')} is "
                f"not a FLAME head made by EIFER; use an ARKit Exp2EMG model for shape-key rigs")
        rig = rig_flame.find_flame_rig(face)
        track = rig_flame.sample_flame_params(rig, frames, fps).to_expression_track(start_s)
        return track, []
    raise ModelMismatchError(f"{model.path.name} reads the {space!r} space; faces can be read as "
                             f"'arkit52' (shape keys) or 'flame' (FLAME rigs)")


def _animated(face) -> bool:
    ids = [face, face.data.shape_keys if face.type == "MESH" else None]
    if _is_flame_rig(face):
        from . import rig_flame

        ids.append(rig_flame.find_flame_rig(face).armature_obj)
    return any(i is not None and i.animation_data is not None
               and (i.animation_data.action is not None or len(i.animation_data.drivers)
                    or len(i.animation_data.nla_tracks)) for i in ids)


# ---------------------------------------------------------------------------------------------
# Inference


def infer_muscles(face, *, scene=None, model=None, frame_range=None, providers: str = "auto",
                  swap_sides: bool = False, mapping: dict[str, str] | None = None,
                  name: str | None = None) -> InferReport:
    """Infer muscle activity from ``face``'s animation and key it on an "EMG (inferred)" object.

    Parameters
    ----------
    face : the face object (a mesh with ARKit shape keys, or a FLAME head / armature).
    scene : default the context scene.
    model : an Exp2EMG :class:`Model`, a path, or None for the shipped "arkit2emg".
    frame_range : (first, last) inclusive scene frames; default the scene's range.
    providers : "auto", "cpu" or "cuda".
    swap_sides, mapping : as for driving (Left/Right exchange, ARKit name -> shape key).
    name : the EMG object's name (default "EMG (inferred) <face>").

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
    model = resolve_model(model, "arkit2emg", providers)
    if model.direction != "exp2emg":
        raise ModelMismatchError(f"{model.path.name} maps {model.metadata.input_space} to "
                                 f"{model.metadata.output_space}; inferring muscles needs an "
                                 f"expression→EMG (Exp2EMG) model")
    expression, missing = face_expression(face, model, frames, scene=scene, swap_sides=swap_sides,
                                          mapping=mapping)
    moves = frames.size > 1 and np.ptp(expression.values, axis=0).max() > 0
    if not moves and (frames.size > 1 or not _animated(face)):
        raise InputError(
            f"{face.name} has no animation over frames {frames[0]}–{frames[-1]}: its "
            f"{'shape keys' if expression.space == 'arkit52' else 'FLAME parameters'} do not change. "
            f"Key, drive or import an animation first, or pick the frames where it moves")
    muscles = expression_to_muscles(expression, model)
    muscles.meta.update({"face": face.name, "first_frame": int(frames[0]), "missing_shapes": missing,
                         "input_space": expression.space})

    # Nothing above changed the scene; from here on, Blender is written.
    obj = emg_object.write_emg_object(scene, muscles, name=name or f"EMG (inferred) {face.name}",
                                      kind=INFERRED_KIND, source=SOURCE_PREFIX + face.name,
                                      start_frame=int(frames[0]))
    face["eifer_inferred"] = obj.name
    from . import heatmap

    refreshed = heatmap.refresh_heatmaps(obj)
    return InferReport(face, obj, expression, muscles, int(frames[0]), int(frames[-1]), missing, model,
                       refreshed)


# ---------------------------------------------------------------------------------------------
# Comparison


def _keyed_span(obj) -> tuple[int, int]:
    if emg_object.CHANNELS_KEY not in obj:
        raise InputError(f"{obj.name} is not an EMG object (import a recording or infer muscles first)")
    bag = keyframes.assigned_channelbag(obj)
    names = list(obj[emg_object.CHANNELS_KEY])
    curve = bag.fcurves.find(f'["{bpy.utils.escape_identifier("emg:" + names[0])}"]') if bag and names else None
    if curve is None or len(curve.keyframe_points) == 0:
        raise InputError(f"{obj.name} has no EMG curves")
    frames, _ = keyframes.read_keys(curve)
    return int(np.ceil(frames.min())), int(np.floor(frames.max()))


def compare_emg(recorded, inferred, *, frame_range=None, scaling: str = "auto", csv_path=None,
                png_path=None, scene=None) -> CompareReport:
    """EIFER's metrics (MSE, RMSE, SMAPE, Spearman ρ) per channel between two EMG objects.

    Both objects are evaluated at the scene frames they both cover (within ``frame_range`` when
    given); channels both carry are scored. ``scaling`` is explained in ``core.compare``.
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
    rates = float(recorded["eifer_fps"]), float(inferred["eifer_fps"])
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
        from ..core.plots import plot_comparison

        title = (f"{recorded.name} vs {inferred.name}, frames {first}–{last}"
                 + (" (each channel scaled to its 5th–95th percentile)" if comparison.scaling == "percentile" else ""))
        png_out = plot_comparison(comparison.recorded, comparison.inferred, png_path, title=title)
    return CompareReport(comparison, recorded, inferred, first, last, csv_out, png_out)


def muscle_track_of(obj) -> MuscleTrack:
    """The muscle track keyed on an EMG object (for exports)."""
    if obj is None or emg_object.CHANNELS_KEY not in obj:
        raise InputError(f"{getattr(obj, 'name', 'nothing')} is not an EMG object")
    try:
        return emg_object.read_emg_object(obj)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
