"""Blender-side helpers shared by the headless commands (drive, render, demo)."""
from __future__ import annotations

from pathlib import Path

from ..core.errors import InputError


def parse_frames(text: str | None) -> tuple[int, int] | None:
    """``"A:B"`` → (A, B), inclusive scene frames."""
    if not text:
        return None
    try:
        first, last = (int(part) for part in text.split(":"))
    except ValueError:
        raise InputError(f"--frames must look like FIRST:LAST (e.g. 1:250), got {text!r}") from None
    if last < first:
        raise InputError(f"--frames {text}: the last frame comes before the first")
    return first, last


def open_scene(blend: str | None, fps: float | None):
    """The scene to work in: the given .blend, or a new empty file."""
    import bpy

    if blend:
        path = Path(blend)
        if not path.is_file():
            raise InputError(f"{path}: .blend file not found")
        bpy.ops.wm.open_mainfile(filepath=str(path))
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
    import bpy

    if obj_name:
        obj = bpy.data.objects.get(obj_name)
        if obj is None:
            meshes = ", ".join(o.name for o in bpy.data.objects if o.type == "MESH") or "none"
            raise InputError(f"no object called {obj_name!r} (meshes in the file: {meshes})")
        return obj
    if rig != "openhead":
        raise InputError(f"--rig {rig!r}: use 'openhead', or --blend FILE --object NAME for your own rig")
    from ..blender.rig_openhead import build_open_head

    face = build_open_head(scene.collection)
    return face


def render(scene, face, out: str, frames: tuple[int, int] | None, *, resolution: int, engine: str) -> Path:
    from ..blender.render import render_video, setup_stage

    setup_stage(scene, face, resolution_px=resolution, engine={"workbench": "BLENDER_WORKBENCH",
                                                               "cycles": "CYCLES"}[engine])
    first, last = frames or (scene.frame_start, scene.frame_end)
    return render_video(scene, Path(out).resolve(), first, last)


def save_blend(path: str) -> Path:
    import bpy

    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(path), check_existing=False)
    return path


def add_render_arguments(parser) -> None:
    parser.add_argument("--render", metavar="VIDEO", help="also render the driven frames to this .mp4")
    parser.add_argument("--frames", metavar="A:B", help="frames to key and render, inclusive (default: all)")
    parser.add_argument("--render-frames", metavar="A:B", help="render only these frames (default: --frames)")
    parser.add_argument("--resolution", type=int, default=512, help="square render size in pixels (default 512)")
    parser.add_argument("--engine", choices=("workbench", "cycles"), default="workbench",
                        help="render engine (default workbench: fast on CPU)")
