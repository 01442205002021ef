"""Import an EMG recording: read it, run EIFER's chain the drive model expects, key the envelopes."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import bpy

from ...core.envelopes import process_recording
from ...core.network import resolve_model
from ...core.recording import open_recording
from ...core.tracks import MuscleTrack
from ..anim import emg_object
from ..anim.keyframes import scene_fps


@dataclass
class ImportReport:
    emg_object: bpy.types.Object
    envelopes: MuscleTrack


def _no_progress(percent: int, what: str) -> None:
    pass


def import_emg(path, *, scene=None, start_frame: int = 1, model=None, notch_hz=(50.0,),
               providers: str = "auto", progress=_no_progress) -> ImportReport:
    """Read the recording at ``path``, envelope it at the scene's fps and key it on an EMG object.

    The chain is the one the drive model (``model``, default the shipped emg2arkit) was trained
    on, with ``notch_hz`` for the local mains; frame 0 of the recording lands on ``start_frame``.
    ``progress(percent, what)`` is called as the steps go. The scene is written only after the
    recording has been read and processed, so an error changes nothing.
    """
    scene = scene or bpy.context.scene
    path = Path(path)
    progress(5, f"reading {path.name}")
    source = open_recording(path)
    model = resolve_model(model, "emg2arkit", providers)
    chain = model.processing_settings(notch_hz=tuple(float(f) for f in notch_hz))
    progress(20, "filtering and enveloping")
    envelopes = process_recording(source, scene_fps(scene), chain)
    progress(90, "keying envelopes")
    obj = emg_object.write_emg_object(scene, envelopes, name=f"EMG {path.stem}", kind="recording",
                                      source=str(path), start_frame=start_frame)
    return ImportReport(obj, envelopes)
