"""EMG objects: muscle tracks as animated custom properties on an Empty in the "EIFER" collection.

Imported recordings and muscle activity inferred from a face share this structure, so both can be
compared in the Graph Editor: one custom property per canonical channel (``emg:<site>``), keyed once
per frame. The keyed curves are the recording as the .blend holds it: Drive reads them (edits
included), not the file. What the object records about them (kind, source file, channels, units,
space, fps, start frame, the processing metadata) is internal (:mod:`.internal`), out of the
Custom Properties panel; the source path is stored relative to the saved .blend.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import bpy
import numpy as np

from ...core.errors import InputError
from ...core.tracks import MuscleTrack
from . import internal, keyframes

COLLECTION = "EIFER"
# internal keys (see .internal): read them with the functions below
KIND_KEY = "kind"  # "recording" or "inferred"
SOURCE_KEY = "source"  # the recording file, relative to the .blend ("//…") once saved
CHANNELS_KEY = "channels"
CURVE_PREFIX = "emg:"


def eifer_collection(scene) -> bpy.types.Collection:
    collection = bpy.data.collections.get(COLLECTION)
    if collection is None:
        collection = bpy.data.collections.new(COLLECTION)
    if collection.name not in scene.collection.children:
        scene.collection.children.link(collection)
    return collection


def kind(obj) -> str | None:
    """"recording", "inferred", or None for an object that is not an EMG object."""
    return None if obj is None else internal.get(obj, KIND_KEY)


def is_emg_object(obj) -> bool:
    return obj is not None and internal.has(obj, CHANNELS_KEY)


def channel_names(obj) -> list[str]:
    return [str(n) for n in internal.get(obj, CHANNELS_KEY, ())]


def source(obj) -> str:
    """The source as stored: a recording path (``//…`` relative to the .blend) or a face's name."""
    return str(internal.get(obj, SOURCE_KEY, ""))


def source_path(obj) -> Path:
    """The recording file of an imported EMG object, absolute (resolved against the .blend)."""
    return Path(bpy.path.abspath(source(obj)))


def start_frame(obj) -> int:
    return int(internal.get(obj, "start_frame", 1))


def fps(obj) -> float:
    return float(internal.get(obj, "fps", 0.0))


def _same_source(stored: str, wanted: str, kind_: str) -> bool:
    if kind_ != "recording" or stored == wanted:
        return stored == wanted
    return bool(stored) and os.path.normpath(bpy.path.abspath(stored)) == os.path.normpath(bpy.path.abspath(wanted))


def find_emg_object(kind_: str, source_: str):
    for obj in bpy.data.objects:
        if kind(obj) == kind_ and _same_source(source(obj), str(source_), kind_):
            return obj
    return None


def write_emg_object(scene, track: MuscleTrack, *, name: str, kind: str, source: str,
                     start_frame: int = 1, metadata: dict | None = None) -> bpy.types.Object:
    """Create, or replace the data of, the EMG object for ``source`` and key ``track`` on it.

    Frame ``i`` of the track lands on scene frame ``start_frame + i``; the track must be at the
    scene's frame rate. Only this object's data is replaced on re-import. A recording's
    ``source`` path is stored relative to the .blend when the .blend is saved.
    """
    if kind == "recording":
        source = internal.stored_path(source)
    obj = find_emg_object(kind, source)
    if obj is None:
        obj = bpy.data.objects.new(name, None)
        obj.empty_display_type = "SPHERE"
        obj.empty_display_size = 0.02
        eifer_collection(scene).objects.link(obj)
    elif obj.animation_data and obj.animation_data.action:
        old = obj.animation_data.action
        obj.animation_data.action = None
        if old.users == 0:
            bpy.data.actions.remove(old)
    for key in [k for k in obj.keys() if k.startswith(CURVE_PREFIX)]:
        del obj[key]
    for key, value in {KIND_KEY: kind, SOURCE_KEY: source, CHANNELS_KEY: list(track.names), "units": track.units,
                       "space": track.space, "fps": float(track.fps), "start_frame": int(start_frame),
                       "metadata": json.dumps(metadata or track.meta, default=str)}.items():
        internal.put(obj, key, value)
    internal.stamp(scene)
    paths = []
    for name_, first in zip(track.names, track.values[0] if track.n_frames else np.zeros(len(track.names))):
        prop = f"{CURVE_PREFIX}{name_}"
        obj[prop] = float(first)
        obj.id_properties_ui(prop).update(description=f"{name_} ({track.units})")
        paths.append(f'["{bpy.utils.escape_identifier(prop)}"]')
    _, bag = keyframes.new_action(obj, name)  # the object's name already says EMG: no "EMG EMG …"
    frames = start_frame + np.arange(track.n_frames, dtype=np.float64)
    keyframes.write_curves(bag, paths, frames, track.values, group="EMG")
    return obj


def read_emg_object(obj, frames=None) -> MuscleTrack:
    """The muscle track keyed on an EMG object, evaluated at ``frames`` (default: its keyed frames).

    ``start_s`` is the recording time of the first frame (the object's start frame is time 0);
    ``meta`` is what the import stored (processing settings, normalisation, source, events).
    """
    names = channel_names(obj)
    bag = keyframes.assigned_channelbag(obj)
    if bag is None:
        raise InputError(f"{obj.name} has no EMG curves: import the recording again")
    start = start_frame(obj)
    curves = [bag.fcurves.find(f'["{bpy.utils.escape_identifier(CURVE_PREFIX + n)}"]') for n in names]
    lost = [n for n, c in zip(names, curves) if c is None]
    if lost:
        raise InputError(f"{obj.name} has lost the curves of {', '.join(lost)} ({CURVE_PREFIX}<site>): "
                         f"import the recording again")
    if frames is None:
        frames, _ = keyframes.read_keys(curves[0])
    frames = np.asarray(frames, dtype=np.float64)
    values = np.zeros((frames.size, len(names)))
    for column, fcurve in enumerate(curves):
        keyed_frames, keyed_values = keyframes.read_keys(fcurve)
        if np.array_equal(keyed_frames, frames):
            values[:, column] = keyed_values
        else:  # reduced or edited keys: let Blender evaluate the curve
            values[:, column] = keyframes.sample_curve(fcurve, frames)
    rate = fps(obj)
    return MuscleTrack(values, names, rate, space=str(internal.get(obj, "space", "emg")),
                       units=str(internal.get(obj, "units", "uV")),
                       start_s=(float(frames[0]) - start) / rate if frames.size else 0.0,
                       meta=json.loads(internal.get(obj, "metadata", "{}")))
