"""Import an EMG recording: read it, run EIFER's chain the drive model expects, key the envelopes."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import bpy

from ...core.envelopes import process_recording
from ...core.network import resolve_model
from ...core.pipeline import DriveSettings, drive_chain, event_rows
from ...core.recording import open_recording
from ...core.tracks import MuscleTrack
from ..anim import emg_object
from ..anim.keyframes import scene_fps


@dataclass
class ImportReport:
    emg_object: bpy.types.Object
    envelopes: MuscleTrack
    channel_sites: dict[str, str]  # every file channel -> the site it feeds ("" = left out)
    warnings: list[str]


def _no_progress(percent: int, what: str) -> None:
    pass


def import_emg(path, *, scene=None, start_frame: int = 1, model=None, notch_hz="auto", units: str | None = None,
               channel_map=None, side: str | None = None, mirror: bool = False, nan_policy: str = "raise",
               providers: str = "auto", progress=_no_progress) -> ImportReport:
    """Read the recording at ``path``, envelope it at the scene's fps and key it on an EMG object.

    The envelopes are those the drive model (``model``, default the shipped emg2arkit) reads
    (``core.pipeline.drive_chain``: Drive runs on these curves as they are keyed), with the mains notch at ``notch_hz`` ("auto": found in the spectrum) and its harmonics; frame
    0 of the recording lands on ``start_frame``. ``units``, ``channel_map`` (file channel or
    column -> site), ``side``, ``mirror`` and ``nan_policy`` say how to read the file (see
    ``ProcessingSettings``). ``progress(percent, what)`` is called as the steps go. The scene is
    written only after the recording has been read and processed, so an error changes nothing.
    """
    scene = scene or bpy.context.scene
    path = Path(path)
    progress(5, f"reading {path.name}")
    source = open_recording(path, units=units)
    model = resolve_model(model, "emg2arkit", providers)
    notch = notch_hz if isinstance(notch_hz, str) else tuple(float(f) for f in notch_hz)
    # the chain a drive uses: driving from these curves equals driving from the file
    chain = drive_chain(model, DriveSettings(fps=scene_fps(scene), notch_hz=notch, channel_map=channel_map,
                                             side=side, mirror=mirror, nan_policy=nan_policy))
    progress(20, "filtering and enveloping")
    envelopes = process_recording(source, scene_fps(scene), chain)
    envelopes.meta["events"] = event_rows(source)
    progress(90, "keying envelopes")
    obj = emg_object.write_emg_object(scene, envelopes, name=f"EMG {path.stem}", kind="recording",
                                      source=str(path), start_frame=start_frame)
    fed = {}
    for site, label in envelopes.meta.get("channel_sources", {}).items():
        for electrode in label.split(" - "):  # both electrodes of a monopolar pair feed the site
            fed.setdefault(electrode, site)
    sites = {label: fed.get(label, "") for label in source.channel_names}
    return ImportReport(obj, envelopes, sites, list(envelopes.meta.get("warnings", ())))
