"""Drive a face in Blender from an EMG recording (the main job): core pipeline in, keyframes out."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import bpy

from ...core.errors import InputError
from ...core.expression.retarget import load_retarget
from ...core.pipeline import DriveResult, DriveSettings, emg_to_expression, envelopes_to_expression
from ...core.tracks import ExpressionTrack, MuscleTrack
from ..anim import emg_object, internal
from ..anim.keyframes import scene_fps
from ..rigs import rig_for

if TYPE_CHECKING:
    from ...core.heads.bridge import Bridge


@dataclass
class DriveReport:
    face: bpy.types.Object
    emg_object: bpy.types.Object
    action: bpy.types.Action
    result: DriveResult
    frame_start: int
    frame_end: int
    missing_shapes: list[str]
    bridge: Bridge | None = None  # the computed ARKit→FLAME bridge, when one was used
    meshes: list = field(default_factory=list)  # each mesh's rigs.arkit.MeshBinding (matched, unmatched, keyed)

    @property
    def provider(self) -> str:
        return self.result.model.provider

    @property
    def bridge_note(self) -> str:
        """'' or one line: a computed bridge was used, and its fit residual."""
        from ..rigs.bridge_cache import bridge_note

        return bridge_note(self.bridge) if self.bridge is not None else ""


def drive(face, emg, *, scene=None, model=None, start_frame: int | None = None, frame_range=None,
          smoothing_s: float = 0.0, rest_floor: float = 0.0, gain=1.0, offset=0.0, key_tolerance: float = 0.0,
          swap_sides: bool = False, mapping: dict[str, str] | None = None, notch_hz=None,
          retarget=None, providers: str = "auto", emg_name: str | None = None, channel_map=None,
          side: str | None = None, mirror: bool = False, units: str | None = None,
          nan_policy: str = "raise", calibration: str | None = None, calibration_s=None,
          sensitivity: float = 1.0, progress=None, bones: dict | None = None, reread: bool = False) -> DriveReport:
    """Drive ``face`` from ``emg``: an EMG object's keyed curves, or a recording (a path or a core Recording).

    An EMG object (what Import EMG made) drives from its curves as the .blend holds them, hand
    edits included: the file is not read, so a .blend from a colleague drives without it. The
    keys land on the curves' frames (the object's start frame; ``start_frame`` and the reading
    options ``notch_hz``, ``channel_map``, ``side``, ``mirror``, ``units``, ``nan_policy`` were
    applied when the curves were made). Curves at another fps than the scene's, or made with
    another chain than the model's, are refused with what to do. ``reread=True`` reads the
    object's recording file again instead (its path is stored relative to the .blend) and
    replaces the curves with what the file gives now.

    Everything is computed and checked before Blender is touched, so an error leaves the scene
    as it was. The face's previous shape-key action is stashed (see ``keyframes``), the envelopes
    land on an "EMG recording" object, and the scene's frame range is extended to cover the keys.

    Parameters mirror :class:`core.pipeline.DriveSettings`; ``mapping`` overrides shape-key names
    (ARKit name -> shape key), ``swap_sides`` exchanges Left and Right; ``channel_map`` (file
    channel -> montage site), ``side``, ``mirror``, ``units`` and ``nan_policy`` say how to read
    the recording; ``calibration``, ``calibration_s`` and ``sensitivity`` what full activity is.
    Only the shapes that the recorded sites move are keyed (``result.driven``; the others,
    ``result.left_alone``, keep their animation). A mesh of a character binds all its meshes with
    ARKit shape keys (head, teeth, eyes: each is keyed and listed in ``report.meshes``); ``bones``
    maps ARKit names to jaw and eye bones (``{"jawOpen": ("jaw", "X", 25.0)}``: bone, axis,
    degrees at weight 1; see ``rigs.bones``). A FLAME head made by
    EIFER is driven by a FLAME-space model, by an ARKit model through ``retarget`` (a matrix
    file, see ``core.expression.retarget``), or else through the ARKit→FLAME bridge computed from
    the FLAME file the head was made from (cached; built on first use, reporting to
    ``progress(fraction, message)``; ``report.bridge``).
    """
    scene = scene or bpy.context.scene
    rig = rig_for(face, swap_sides=swap_sides, mapping=mapping, bones=bones)
    curves_obj = emg if isinstance(emg, bpy.types.Object) else None
    if curves_obj is not None:
        emg, start_frame = _recording_of(curves_obj, scene, start_frame, reread)
    settings = DriveSettings(fps=scene_fps(scene), start_frame=scene.frame_start if start_frame is None else start_frame,
                             frame_range=frame_range, smoothing_s=smoothing_s, rest_floor=rest_floor, gain=gain, offset=offset,
                             key_tolerance=key_tolerance, notch_hz=notch_hz, channel_map=channel_map, side=side,
                             mirror=mirror, units=units, nan_policy=nan_policy, calibration=calibration,
                             calibration_s=calibration_s, sensitivity=sensitivity)
    if isinstance(emg, MuscleTrack):
        result = envelopes_to_expression(emg, settings, model, providers=providers)
    else:
        result = emg_to_expression(emg, settings, model, providers=providers)
    expression, bridge = _in_rig_space(result.expression, rig, retarget, progress)
    missing = rig.bind(expression.names)

    # Nothing above changed the scene; from here on, Blender is written.
    if isinstance(emg, MuscleTrack):  # the curves drove: they stay as they are
        emg_obj, name = curves_obj, emg_name or _recording_name(curves_obj)
        internal.stamp(scene)
    else:
        source = str(emg) if isinstance(emg, (str, Path)) else (getattr(emg, "source", "") or "recording")
        name = emg_name or (_recording_name(curves_obj) if curves_obj else Path(source).stem) or "recording"
        emg_obj = emg_object.write_emg_object(scene, result.envelopes, name=f"EMG {name}", kind="recording",
                                              source=source, start_frame=result.first_frame)
    action = rig.key(expression, start_frame=result.first_frame, action_name=f"EIFER {name}", keep=result.keep)
    frame_end = result.first_frame + expression.n_frames - 1
    scene.frame_start = min(scene.frame_start, result.first_frame)
    scene.frame_end = max(scene.frame_end, frame_end)
    internal.put(face, "driven_by", emg_obj.name)
    return DriveReport(face, emg_obj, action, result, result.first_frame, frame_end, missing, bridge,
                       getattr(rig, "meshes", []))


def _recording_name(obj) -> str:
    """The recording's name for an EMG object's actions: its file's stem, else the object's name
    without the "EMG " the import put in front (no "EMG EMG …")."""
    stem = Path(emg_object.source(obj)).stem
    return stem or obj.name.removeprefix("EMG ")


def _recording_of(obj, scene, start_frame, reread: bool):
    """What drives from the EMG object ``obj``: its curves as a MuscleTrack (checked against the
    scene's fps), or with ``reread`` its recording file; and the start frame to use."""
    if emg_object.kind(obj) != "recording":
        raise InputError(f"{obj.name} is not an imported recording (an EMG object made by Import EMG): "
                         f"import the recording first")
    if reread:
        path = emg_object.source_path(obj)
        if not path.is_file():
            raise InputError(f"{obj.name}: the recording file {path} is not found (stored as "
                             f"{emg_object.source(obj)!r}). Put the file there, import it again, or drive from "
                             f"the curves in the .blend (untick Re-read Recording File)")
        return path, emg_object.start_frame(obj) if start_frame is None else start_frame
    keyed_fps, fps = emg_object.fps(obj), scene_fps(scene)
    if abs(keyed_fps - fps) > 1e-6:
        raise InputError(f"{obj.name} was keyed at {keyed_fps:g} fps and the scene now runs at {fps:g} fps: "
                         f"set the scene back to {keyed_fps:g} fps, or re-read the recording (Re-read "
                         f"Recording File) to key its envelopes again at {fps:g} fps")
    return emg_object.read_emg_object(obj), emg_object.start_frame(obj)


def _in_rig_space(expression: ExpressionTrack, rig, retarget, progress=None) -> tuple[ExpressionTrack, Bridge | None]:
    """The model's output in the rig's space, and the computed bridge if one was used: a FLAME head
    takes FLAME tracks, or ARKit ones through the user's retarget matrix or else the bridge
    computed from the head's FLAME file; an ARKit rig takes the track as it is (its binding
    reports what it lacks)."""
    if rig.space != "flame" or expression.space == "flame":
        return expression, None
    if expression.space == "arkit52":
        if retarget:
            return load_retarget(retarget).apply(expression), None
        from ..rigs.bridge_cache import bridge_for_head  # the bridge stack loads only when needed

        bridge = bridge_for_head(rig.rig, progress, otherwise=(
            "Give an ARKit→FLAME retarget matrix file (--retarget), or use a FLAME-space model"))
        return bridge.forward_track(expression), bridge
    raise InputError(f"a FLAME head cannot be driven by a model that outputs {expression.space!r}")
