"""The scene a headless job works in: open or start one, add the face, render it, save it."""
from __future__ import annotations

from pathlib import Path

import bpy

from ...core.atomic import atomic_file
from ...core.errors import InputError
from ..rigs.openhead import build_open_head
from .render import render_video, setup_stage


def open_scene(blend: str | None, fps: float | None):
    """The scene to work in: the given .blend, or a new empty file."""
    if blend:
        path = Path(blend)
        if not path.is_file():
            raise InputError(f"{path}: .blend file not found")
        with open(path, "rb") as handle:
            head = handle.read(7)
        if head != b"BLENDER" and not head.startswith((b"\x1f\x8b", b"\x28\xb5\x2f\xfd")):  # plain, gzip, zstd
            raise InputError(f"{path}: not a .blend file")
        try:
            bpy.ops.wm.open_mainfile(filepath=str(path))
        except RuntimeError as exc:
            raise InputError(f"{path}: Blender cannot open it ({str(exc).strip().splitlines()[-1]})") from None
    else:
        bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    if fps is not None:
        if fps <= 0 or fps != int(fps):
            raise InputError(f"--fps must be a positive whole number, got {fps}")
        scene.render.fps, scene.render.fps_base = int(fps), 1.0
    return scene


def find_face(rig: str, obj_name: str | None, scene):
    """The open head added to the scene, or the named object of an opened .blend."""
    if obj_name:
        obj = bpy.data.objects.get(obj_name)
        if obj is None:
            meshes = ", ".join(o.name for o in bpy.data.objects if o.type == "MESH") or "none"
            raise InputError(f"no object called {obj_name!r} (meshes in the file: {meshes})")
        return obj
    if rig != "openhead":
        raise InputError(f"--rig {rig!r}: use 'openhead', or --blend FILE --object NAME for your own rig")
    face = build_open_head(scene.collection)
    return face


def render(scene, face, out: str, frames: tuple[int, int] | None, *, resolution: int, engine: str) -> Path:
    setup_stage(scene, face, resolution_px=resolution, engine={"workbench": "BLENDER_WORKBENCH",
                                                               "cycles": "CYCLES"}[engine])
    first, last = frames or (scene.frame_start, scene.frame_end)
    return render_video(scene, Path(out).resolve(), first, last)


def save_blend(path: str) -> Path:
    """Save the scene as ``path``, whole or not at all, and without Blender's ``.blend1`` backup:
    a copy is saved beside it and renamed over it."""
    path = Path(path).resolve()
    if path.suffix.lower() != ".blend":
        raise InputError(f"{path}: a scene is saved as a .blend file")
    with atomic_file(path) as temporary:
        temporary.unlink()  # Blender backs up a file it saves over (.blend1): let it write a new one
        bpy.ops.wm.save_as_mainfile(filepath=str(temporary), check_existing=False, copy=True)
    return path
