"""EMG objects: muscle tracks as animated custom properties on an Empty in the "EIFER" collection.

Imported recordings and muscle activity inferred from a face share this structure, so both can be
compared in the Graph Editor: one custom property per canonical channel, keyed once per frame.
"""
from __future__ import annotations

import json

import bpy
import numpy as np

from ...core.tracks import MuscleTrack
from . import keyframes

COLLECTION = "EIFER"
KIND_KEY = "eifer_kind"  # "recording" or "inferred"
SOURCE_KEY = "eifer_source"
CHANNELS_KEY = "eifer_channels"


def eifer_collection(scene) -> bpy.types.Collection:
    collection = bpy.data.collections.get(COLLECTION)
    if collection is None:
        collection = bpy.data.collections.new(COLLECTION)
    if collection.name not in scene.collection.children:
        scene.collection.children.link(collection)
    return collection


def find_emg_object(kind: str, source: str):
    for obj in bpy.data.objects:
        if obj.get(KIND_KEY) == kind and obj.get(SOURCE_KEY) == source:
            return obj
    return None


def write_emg_object(scene, track: MuscleTrack, *, name: str, kind: str, source: str,
                     start_frame: int = 1, metadata: dict | None = None) -> bpy.types.Object:
    """Create, or replace the data of, the EMG object for ``source`` and key ``track`` on it.

    Frame ``i`` of the track lands on scene frame ``start_frame + i``; the track must be at the
    scene's frame rate. Only this object's data is replaced on re-import.
    """
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
    for key in [k for k in obj.keys() if k.startswith("emg:")]:
        del obj[key]
    obj[KIND_KEY] = kind
    obj[SOURCE_KEY] = source
    obj[CHANNELS_KEY] = list(track.names)
    obj["eifer_units"] = track.units
    obj["eifer_space"] = track.space
    obj["eifer_fps"] = float(track.fps)
    obj["eifer_start_frame"] = int(start_frame)
    obj["eifer_metadata"] = json.dumps(metadata or track.meta, default=str)
    paths = []
    for name_, first in zip(track.names, track.values[0] if track.n_frames else np.zeros(len(track.names))):
        prop = f"emg:{name_}"
        obj[prop] = float(first)
        obj.id_properties_ui(prop).update(description=f"{name_} ({track.units})")
        paths.append(f'["{bpy.utils.escape_identifier(prop)}"]')
    _, bag = keyframes.new_action(obj, name)  # the object's name already says EMG
    frames = start_frame + np.arange(track.n_frames, dtype=np.float64)
    keyframes.write_curves(bag, paths, frames, track.values, group="EMG")
    return obj


def read_emg_object(obj, frames=None) -> MuscleTrack:
    """The muscle track keyed on an EMG object, evaluated at ``frames`` (default: its keyed frames)."""
    names = list(obj[CHANNELS_KEY])
    bag = keyframes.assigned_channelbag(obj)
    if bag is None:
        raise ValueError(f"{obj.name} has no EMG curves")
    start = int(obj["eifer_start_frame"])
    curves = [bag.fcurves.find(f'["{bpy.utils.escape_identifier("emg:" + n)}"]') for n in names]
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
    fps = float(obj["eifer_fps"])
    return MuscleTrack(values, names, fps, space=str(obj["eifer_space"]), units=str(obj["eifer_units"]),
                       start_s=(float(frames[0]) - start) / fps if frames.size else 0.0,
                       meta=json.loads(obj["eifer_metadata"]))
