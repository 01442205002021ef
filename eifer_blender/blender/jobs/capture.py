"""Import a face capture (Live Link Face CSV, MediaPipe blendshapes) as an animation on an ARKit face.

``import_capture``: the file → an ``arkit52`` track at the scene's fps (``core.trackfiles.captures``)
→ the face's matching shape keys, keyed in one pass per curve into a new action (the previous one is
stashed, as a drive does). Infer Muscles then reads it as any animation.

Everything is read and checked before the scene is written, so an error changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import bpy

from ...core.errors import InputError
from ...core.trackfiles.captures import read_capture
from ...core.tracks import ExpressionTrack
from ..anim import internal
from ..anim.keyframes import scene_fps
from ..rigs import rig_for

CAPTURE_KEY = "capture"  # internal (blender.anim.internal), on the face and the action: the capture file


@dataclass
class CaptureReport:
    """What :func:`import_capture` did."""

    face: bpy.types.Object
    action: bpy.types.Action
    track: ExpressionTrack  # the capture at the scene's fps, as keyed
    frame_start: int
    frame_end: int
    unmatched: list[str]  # shapes in the capture without a shape key on the face (not keyed)
    not_in_capture: list[str]  # ARKit shapes the capture does not carry (left as they were)


def import_capture(face, path, *, scene=None, start_frame: int | None = None, timecode_fps: float | None = None,
                   swap_sides: bool = False, mapping: dict[str, str] | None = None,
                   set_frame_range: bool = True) -> CaptureReport:
    """Key the capture at ``path`` on ``face``'s ARKit shape keys, frame 0 of it at ``start_frame``.

    Parameters
    ----------
    face : a mesh with ARKit-named shape keys.
    path : a Live Link Face CSV or a MediaPipe blendshape .csv/.json.
    scene : default the context scene; its fps is the frame grid the capture's times land on.
    start_frame : the scene frame of the capture's first row (default the scene's first frame).
    timecode_fps : a Live Link Face timecode's frame rate (default: from its frame numbers).
    swap_sides, mapping : as for driving (Left/Right exchange, ARKit name -> shape key).
    set_frame_range : make the scene's frame range the capture's (so Infer Muscles reads just it).

    Raises
    ------
    InputError
        A capture that cannot be read (see ``core.trackfiles.captures.read_capture``), a face
        without matching shape keys, or a FLAME head. The scene is left unchanged.
    """
    scene = scene or bpy.context.scene
    if face is None:
        raise InputError("no face given: pick a mesh with ARKit shape keys to key the capture on")
    rig = rig_for(face, swap_sides=swap_sides, mapping=mapping)
    if rig.space != "arkit52":
        raise InputError(f"{face.name} is a FLAME head; a face capture holds ARKit weights: key it on a mesh "
                         f"with ARKit shape keys")
    track = read_capture(path, scene_fps(scene), timecode_fps=timecode_fps)
    unmatched = rig.bind(track.names)
    first = scene.frame_start if start_frame is None else int(start_frame)

    # Nothing above changed the scene; from here on, Blender is written.
    action = rig.key(track, start_frame=first, action_name=f"EIFER capture {Path(path).stem}")
    internal.put(action, CAPTURE_KEY, str(path))
    last = first + track.n_frames - 1
    if set_frame_range:
        scene.frame_start, scene.frame_end = first, last
    internal.put(face, CAPTURE_KEY, str(path))
    return CaptureReport(face, action, track, first, last, unmatched, list(track.meta.get("missing", ())))
