"""Drive a face in Blender from an EMG recording (the main job): core pipeline in, keyframes out."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import bpy

from ...core.errors import InputError
from ...core.expression.retarget import load_retarget
from ...core.pipeline import DriveResult, DriveSettings, emg_to_expression
from ...core.tracks import ExpressionTrack
from ..anim import emg_object
from ..anim.keyframes import scene_fps
from ..rigs import rig_for


@dataclass
class DriveReport:
    face: bpy.types.Object
    emg_object: bpy.types.Object
    action: bpy.types.Action
    result: DriveResult
    frame_start: int
    frame_end: int
    missing_shapes: list[str]

    @property
    def provider(self) -> str:
        return self.result.model.provider


def drive(face, emg, *, scene=None, model=None, start_frame: int | None = None, frame_range=None,
          smoothing_s: float = 0.0, rest_floor: float = 0.0, gain=1.0, offset=0.0, key_tolerance: float = 0.0,
          swap_sides: bool = False, mapping: dict[str, str] | None = None, notch_hz=None,
          retarget=None, providers: str = "auto", emg_name: str | None = None, channel_map=None,
          side: str | None = None, mirror: bool = False, units: str | None = None,
          nan_policy: str = "raise") -> DriveReport:
    """Drive ``face`` from the recording ``emg`` (a path or a core Recording).

    Everything is computed and checked before Blender is touched, so an error leaves the scene
    as it was. The face's previous shape-key action is stashed (see ``keyframes``), the envelopes
    land on an "EMG recording" object, and the scene's frame range is extended to cover the keys.

    Parameters mirror :class:`core.pipeline.DriveSettings`; ``mapping`` overrides shape-key names
    (ARKit name -> shape key), ``swap_sides`` exchanges Left and Right; ``channel_map`` (file
    channel -> montage site), ``side``, ``mirror``, ``units`` and ``nan_policy`` say how to read
    the recording. A FLAME head made by
    EIFER is driven by a FLAME-space model, or by an ARKit model through ``retarget`` (a matrix
    file, see ``core.expression.retarget``).
    """
    scene = scene or bpy.context.scene
    rig = rig_for(face, swap_sides=swap_sides, mapping=mapping)
    settings = DriveSettings(fps=scene_fps(scene), start_frame=scene.frame_start if start_frame is None else start_frame,
                             frame_range=frame_range, smoothing_s=smoothing_s, rest_floor=rest_floor, gain=gain, offset=offset,
                             key_tolerance=key_tolerance, notch_hz=notch_hz, channel_map=channel_map, side=side,
                             mirror=mirror, units=units, nan_policy=nan_policy)
    result = emg_to_expression(emg, settings, model, providers=providers)
    expression = _in_rig_space(result.expression, rig.space, retarget)
    missing = rig.bind(expression.names)

    # Nothing above changed the scene; from here on, Blender is written.
    source = str(emg) if isinstance(emg, (str, Path)) else (getattr(emg, "source", "") or "recording")
    name = emg_name or Path(source).stem or "recording"
    emg_obj = emg_object.write_emg_object(scene, result.envelopes, name=f"EMG {name}", kind="recording",
                                          source=source, start_frame=result.first_frame)
    action = rig.key(expression, start_frame=result.first_frame, action_name=f"EIFER {name}", keep=result.keep)
    frame_end = result.first_frame + expression.n_frames - 1
    scene.frame_start = min(scene.frame_start, result.first_frame)
    scene.frame_end = max(scene.frame_end, frame_end)
    face["eifer_driven_by"] = emg_obj.name
    return DriveReport(face, emg_obj, action, result, result.first_frame, frame_end, missing)


def _in_rig_space(expression: ExpressionTrack, space: str, retarget) -> ExpressionTrack:
    """The model's output in the rig's space: a FLAME head takes FLAME tracks, or ARKit ones through
    a retarget matrix; an ARKit rig takes the track as it is (its binding reports what it lacks)."""
    if space != "flame" or expression.space == "flame":
        return expression
    if expression.space == "arkit52":
        if not retarget:
            raise InputError("this face is a FLAME head and the model outputs ARKit weights: give an "
                             "ARKit→FLAME retarget matrix file (.npy/.npz), or use a FLAME-space model")
        return load_retarget(retarget).apply(expression)
    raise InputError(f"a FLAME head cannot be driven by a model that outputs {expression.space!r}")
