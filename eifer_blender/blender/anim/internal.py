"""EIFER's own data on Blender datablocks, kept out of the user's Custom Properties; the file's
version stamp and the upgrade of files saved by earlier versions.

In: datablocks (objects, actions, scenes). Out: one group of internal values per datablock. On
Blender 5.0+ the group is ``"eifer"`` in the datablock's system properties
(``ID.bl_system_properties_get``), which neither the Custom Properties panel nor ``ID.keys()``
shows; Blender 4.5 has no system properties, so there it is the one user property ``"_eifer"``
(a group). Keys inside carry no prefix (``"kind"``, ``"source"``, ``"fps"``). What the user is
meant to see and animate (the EMG object's ``emg:<site>`` curves, ``eifer_bones``) stays a
custom property.

Every scene the add-on writes to gets ``version`` (the add-on's, from ``blender_manifest.toml``).
:func:`upgrade_file` moves the ``eifer_*`` custom properties that earlier versions wrote (0.1.0's
``eifer_kind``, ...; the heatmap's, the FLAME head's, the capture's and the stashed action's until
they moved too) into the group and stamps the scenes; the add-on runs it on every file load
(``load_post``). Two groups stay custom properties: the FLAME armature's driven sums
(``eifer_flame_expression_joint_*``), because a driver writes only what an RNA path reaches and no
path reaches the system properties.
"""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import bpy

GROUP = "eifer"  # in the system properties (Blender 5.0+)
USER_GROUP = "_eifer"  # Blender 4.5: the one user property holding the group
VERSION_KEY = "version"
UPGRADED_FROM_KEY = "upgraded_from"

# the stashed action's keys (anim.keyframes), on shape keys and armature objects
_STASH_KEYS = {"eifer_previous_action": "previous_action", "eifer_previous_action_slot": "previous_action_slot"}
# custom properties that earlier versions wrote -> their key in the group, per kind of datablock
# (bpy.data collection): 0.1.0's, then the heatmap's, FLAME head's, capture's and stash's
LEGACY_KEYS = {
    "objects": {"eifer_kind": "kind", "eifer_source": "source", "eifer_channels": "channels",
                "eifer_units": "units", "eifer_space": "space", "eifer_fps": "fps",
                "eifer_start_frame": "start_frame", "eifer_metadata": "metadata",
                "eifer_driven_by": "driven_by", "eifer_inferred": "inferred", "eifer_rig": "rig",
                **{f"eifer_heatmap_{key}": f"heatmap_{key}"
                   for key in ("source", "slots", "added_slot", "active_colour", "percentile")},
                **{f"eifer_flame_{key}": f"flame_{key}"
                   for key in ("n_shape", "n_expression", "version", "source", "eyelids",
                               "joint_template_m", "joint_shape_dirs_m")},
                "eifer_capture": "capture", **_STASH_KEYS},
    "actions": {"eifer_made": "made", "eifer_capture": "capture"},
    "shape_keys": dict(_STASH_KEYS),
}


@functools.cache  # the manifest does not change while Blender runs; every save stamps with it
def addon_version() -> str:
    """The add-on's version as ``blender_manifest.toml`` states it (installed: beside the package;
    in the repository: one folder up)."""
    package = Path(__file__).resolve().parents[2]
    for manifest in (package / "blender_manifest.toml", package.parent / "blender_manifest.toml"):
        if manifest.is_file():
            found = re.search(r'^version\s*=\s*"([^"]+)"', manifest.read_text(encoding="utf-8"), re.M)
            if found:
                return found.group(1)
    return "unknown"


def _group(id_data, create: bool):
    if hasattr(id_data, "bl_system_properties_get"):  # Blender 5.0+
        props, name = id_data.bl_system_properties_get(do_create=create), GROUP
        if props is None:
            return None
    else:
        props, name = id_data, USER_GROUP
    if name not in props:
        if not create:
            return None
        props[name] = {}
    return props[name]


def get(id_data, key: str, default=None):
    """The internal value ``key`` of ``id_data`` (``default`` when it has none)."""
    group = _group(id_data, False)
    return default if group is None else group.get(key, default)


def put(id_data, key: str, value) -> None:
    """Set the internal value ``key`` of ``id_data``."""
    _group(id_data, True)[key] = value


def has(id_data, key: str) -> bool:
    group = _group(id_data, False)
    return group is not None and key in group


def pop(id_data, key: str, default=None):
    """Remove and return the internal value ``key`` (``default`` when it has none)."""
    group = _group(id_data, False)
    return default if group is None else group.pop(key, default)


def stamp(scene) -> None:
    """Mark ``scene`` as written by this version of the add-on."""
    put(scene, VERSION_KEY, addon_version())


def file_version(scene) -> str | None:
    """The add-on version that last wrote ``scene``, or None (not written by a stamping version)."""
    return get(scene, VERSION_KEY)


def _move_legacy(id_data, names: dict[str, str]) -> bool:
    moved = False
    for old, new in names.items():
        if old in id_data.keys():
            value = id_data[old]
            put(id_data, new, value.to_list() if hasattr(value, "to_list") else value)
            del id_data[old]
            moved = True
    return moved


def upgrade_file() -> int:
    """Move earlier versions' ``eifer_*`` custom properties (:data:`LEGACY_KEYS`) into the internal
    groups, store recording paths relative to the saved .blend and stamp the scenes; returns the
    number of datablocks changed."""
    changed = sum(_move_legacy(id_data, names)
                  for kind, names in LEGACY_KEYS.items() for id_data in getattr(bpy.data, kind))
    if changed:
        relative_sources()
        for scene in bpy.data.scenes:
            put(scene, UPGRADED_FROM_KEY, file_version(scene) or "0.1.0")  # 0.1.0 did not stamp
            stamp(scene)
    return changed


def stored_path(path) -> str:
    """``path`` as a file stores it: relative to the .blend (``//…``) when the .blend is saved
    and the path can be made relative, else absolute."""
    path = str(path)
    if not path or path.startswith("//"):
        return path
    absolute = os.path.abspath(path)
    if bpy.data.filepath:
        try:
            return "//" + Path(os.path.relpath(absolute, Path(bpy.data.filepath).parent)).as_posix()
        except ValueError:  # another drive (Windows)
            pass
    return absolute


def relative_sources(blend_path: str | None = None) -> None:
    """Store every EMG object's recording path relative to the .blend at ``blend_path`` (default:
    the open file), so that moving the folder with the .blend and the recording keeps the link.
    Paths of files that are not there are left as they are."""
    blend = blend_path or bpy.data.filepath
    if not blend:
        return
    start = Path(blend).parent
    for obj in bpy.data.objects:
        source = get(obj, "source")
        if not source:
            continue
        absolute = bpy.path.abspath(source)  # a relative path is the open file's (before a Save As)
        if not Path(absolute).is_file():  # a missing file keeps the path it was written with
            continue
        try:
            relative = Path(os.path.relpath(absolute, start))
        except ValueError:  # another drive (Windows)
            continue
        put(obj, "source", "//" + relative.as_posix())


def has_eifer_data() -> bool:
    """Whether the open file holds anything the add-on wrote (an internal group on an object or action)."""
    return any(_group(x, False) is not None for x in (*bpy.data.objects, *bpy.data.actions))


def before_save(filepath: str | None = None) -> None:
    """What every save of a file with EIFER data does (the add-on's ``save_pre`` handler; call it
    before ``wm.save_as_mainfile`` where the add-on is not registered, e.g. headless): recording
    paths relative to the .blend at ``filepath`` (default: the open file's), the version stamp."""
    if has_eifer_data():
        relative_sources(filepath or None)
        for scene in bpy.data.scenes:
            stamp(scene)


@bpy.app.handlers.persistent
def _on_load(*_args) -> None:
    if not upgrade_file():  # (an upgrade has made the paths relative already)
        relative_sources()  # a file saved headless may hold absolute paths


@bpy.app.handlers.persistent
def _on_save(filepath="", *_args) -> None:
    before_save(filepath if isinstance(filepath, str) else None)


def register_handlers() -> None:
    if _on_load not in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.append(_on_load)
    if _on_save not in bpy.app.handlers.save_pre:
        bpy.app.handlers.save_pre.append(_on_save)


def unregister_handlers() -> None:
    for handlers, handler in ((bpy.app.handlers.load_post, _on_load), (bpy.app.handlers.save_pre, _on_save)):
        while handler in handlers:
            handlers.remove(handler)
