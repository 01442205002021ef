"""The scene a headless job works in: open or start one, add the face, render it, save it."""
from __future__ import annotations

from pathlib import Path

import bpy

from ...core.atomic import atomic_file
from ...core.errors import InputError
from ..rigs.openhead import build_open_head
from .framing import leave_out, left_out_of_render
from .render import quiet_blender, render_video, setup_stage, video_output

ENGINES = {"workbench": "BLENDER_WORKBENCH", "cycles": "CYCLES"}  # the command line's --engine


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
            with quiet_blender():  # "Read blend: …"
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
    """Render ``face`` (all meshes of its character, framed by a camera and lights for a face) to a
    video; objects :func:`framing.left_out_of_render` names (importer helpers, objects hidden in
    the viewport) are hidden from the render meanwhile."""
    setup_stage(scene, face, resolution_px=resolution, engine=ENGINES[engine])
    first, last = frames or (scene.frame_start, scene.frame_end)
    with leave_out(left_out_of_render(scene, face)):
        return render_video(scene, Path(out).resolve(), first, last)


def fill_sidebar(scene, face, recording=None, **settings) -> None:
    """Set the EIFER sidebar of ``scene`` to what a headless job used: the face, the recording's EMG
    object (also the heatmap's source; None keeps what the sidebar holds) and any other field of
    the sidebar's settings by name (``model_path``, ``start_frame``, ``mains_hz``, ``smoothing_s``,
    ``rest_floor``, ``inferred``, ``heatmap_source``, …), so the saved file opens ready to drive,
    infer and show the heatmap again.

    The sidebar's settings must be registered (the extension enabled, or
    ``blender.ui.properties`` registered by the command line)."""
    eifer = scene.eifer
    eifer.face = face
    if recording is not None:
        eifer.recording = recording
        eifer.heatmap_source = recording
    for name, value in settings.items():
        if not hasattr(eifer, name):
            raise AttributeError(f"the EIFER sidebar has no setting {name!r}")
        setattr(eifer, name, value)


def stage_for_saving(scene, face, *, resolution_px: int, engine: str = "workbench", video=None) -> None:
    """Make a scene the command line saves render the face as it would: a camera framing ``face``,
    lights, the engine (``--engine``: workbench, cycles), the frame size and a video output
    (``video``, else ``//<face>.mp4`` beside the saved file).

    A scene that has a camera is left as it is when nothing is rendered (``video`` None): a
    user's .blend keeps its shot, a file saved before keeps the render settings it was saved
    with; a new scene, or one that is rendered, gets the EIFER stage (``render.setup_stage``).
    """
    if video is None and scene.camera is not None:
        return
    setup_stage(scene, face, resolution_px=resolution_px, engine=ENGINES[engine])
    video_output(scene, Path(video).resolve() if video else f"//{bpy.path.clean_name(face.name)}.mp4")


def save_blend(path: str) -> Path:
    """Save the scene as ``path``, whole or not at all, and without Blender's ``.blend1`` backup:
    a copy is saved beside it and renamed over it."""
    path = Path(path).resolve()
    if path.suffix.lower() != ".blend":
        raise InputError(f"{path}: a scene is saved as a .blend file")
    with atomic_file(path) as temporary:
        temporary.unlink()  # Blender backs up a file it saves over (.blend1): let it write a new one
        with quiet_blender():  # Blender's own "Info: Saved copy as …" names the temporary file
            bpy.ops.wm.save_as_mainfile(filepath=str(temporary), check_existing=False, copy=True)
    return path
