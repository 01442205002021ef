"""Headless rendering: a camera and lights framing a face, stills and videos, without Blender's
per-frame log lines."""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import re
import sys
import tempfile
from pathlib import Path

import bpy
import numpy as np
from mathutils import Vector

from ..anim import keyframes
from .framing import face_bounds
from .heatmap import workbench_colour_type

STAGE_COLLECTION = "EIFER Stage"
CAMERA_NAME = "EIFER Camera"  # the camera setup_stage adds and reuses
# What Blender's C code prints while it renders, saves or opens a file, and the GPU back-end's
# messages while it looks for an EGL configuration headless: progress, not news.
BLENDER_NOISE = re.compile(
    r"^\s*(\d\d:\d\d\.\d+\s+\S+\s+\|\s*)?"  # Blender 5's log prefix: time, category
    r"(Fra:|Video append frame|Append frame|Saved:|Time:|Read blend:|Info: Saved copy|EGL Error)")


def _c_library():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None)
    except OSError:  # no C library to flush (Windows builds flush their own runtime at exit)
        return None


_LIBC = _c_library()


def _flush_all() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    if _LIBC is not None:
        with contextlib.suppress(Exception):
            _LIBC.fflush(None)  # C stdio buffers (a pipe's stdout is fully buffered)


@contextlib.contextmanager
def quiet_blender(noise: re.Pattern = BLENDER_NOISE):
    """Hold back what Blender prints to the process's stdout and stderr (file descriptors 1 and 2,
    where its C code writes) inside the block; at the end, pass on every line but ``noise``
    (per-frame progress, "Saved:", EGL probing), on stderr, so warnings and errors still show."""
    _flush_all()
    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:  # no descriptors to redirect (an embedded interpreter): let it print
        saved = None
    if saved is None:
        yield
        return
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            _flush_all()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for copy in saved:
                os.close(copy)
            log.seek(0)
            kept = [line for line in log.read().decode("utf-8", "replace").splitlines()
                    if line.strip() and not noise.search(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)


def setup_stage(scene, face, *, resolution_px: int = 512, engine: str = "BLENDER_WORKBENCH",
                samples: int = 16, width_px: int | None = None):
    """Add (or reuse) a camera and lights that frame ``face`` from the front (the face looks at -Y).

    The frame is ``resolution_px`` high and ``width_px`` wide (default: square); the camera fits
    1.15 times the face's height into the frame's height (a portrait frame keeps the face whole).
    """
    stage = bpy.data.collections.get(STAGE_COLLECTION)
    if stage is None:
        stage = bpy.data.collections.new(STAGE_COLLECTION)
        scene.collection.children.link(stage)
    lo, hi = face_bounds(face)  # every bound mesh of the character (head, teeth, eyes)
    centre = (lo + hi) / 2
    height = float(hi[2] - lo[2])
    camera_data = bpy.data.cameras.get(CAMERA_NAME) or bpy.data.cameras.new(CAMERA_NAME)
    camera_data.lens = 85.0
    camera = bpy.data.objects.get(CAMERA_NAME) or bpy.data.objects.new(CAMERA_NAME, camera_data)
    if camera.name not in stage.objects:
        stage.objects.link(camera)
    # An 85 mm lens on a 36 mm sensor sees 36/85 of the distance: frame 1.15x the head height.
    distance = 1.15 * height * 85.0 / 36.0
    camera_data.sensor_fit, camera_data.sensor_height = "VERTICAL", 36.0  # the height, in any aspect
    camera.location = (centre[0], centre[1] - distance, centre[2])
    camera.rotation_euler = (np.pi / 2, 0.0, 0.0)
    scene.camera = camera
    if scene.world is None:  # a user's own world is left alone
        world = bpy.data.worlds.get("EIFER World") or bpy.data.worlds.new("EIFER World")
        world.color = (0.05, 0.05, 0.055)
        scene.world = world
    for name, energy, location in (("EIFER Key", 12.0, (-0.6, -1.0, 0.6)), ("EIFER Fill", 5.0, (0.7, -0.8, 0.1))):
        light_data = bpy.data.lights.get(name) or bpy.data.lights.new(name, type="AREA")
        light_data.energy = energy
        light_data.size = 0.5
        light = bpy.data.objects.get(name) or bpy.data.objects.new(name, light_data)
        if light.name not in stage.objects:
            stage.objects.link(light)
        light.location = Vector(centre) + Vector(location)
        light.rotation_euler = (Vector(centre) - light.location).to_track_quat("-Z", "Y").to_euler()
    render = scene.render
    render.engine = engine
    render.resolution_x, render.resolution_y = width_px or resolution_px, resolution_px
    render.resolution_percentage = 100
    if engine == "CYCLES":
        scene.cycles.device = "CPU"
        scene.cycles.samples = samples
        scene.cycles.use_denoising = False
    elif engine == "BLENDER_WORKBENCH":
        shading = scene.display.shading
        shading.light = "STUDIO"
        # the open head's painted brows, lids and irises, or the heatmap, are a colour attribute
        shading.color_type = workbench_colour_type(face)
        shading.show_cavity = True
    return camera


def render_still(scene, frame: int, path: Path) -> Path:
    """Render one frame to a PNG."""
    scene.frame_set(frame)
    settings = scene.render.image_settings
    if hasattr(settings, "media_type"):
        settings.media_type = "IMAGE"
    settings.file_format = "PNG"
    scene.render.filepath = str(path)
    with quiet_blender():
        bpy.ops.render.render(write_still=True, scene=scene.name)
    return Path(path)


def video_output(scene, path) -> Path:
    """Set ``scene`` to write an H.264 MP4 at ``path`` through Blender's FFmpeg, or PNG frames into
    a folder named like it without FFmpeg; returns what the render will write.

    ``path`` may be relative to the .blend (``//name.mp4``), as a saved scene keeps it.
    """
    settings = scene.render.image_settings
    if bpy.app.ffmpeg.supported:
        if hasattr(settings, "media_type"):  # Blender 5.0+
            settings.media_type = "VIDEO"
        settings.file_format = "FFMPEG"
        ffmpeg = scene.render.ffmpeg
        ffmpeg.format = "MPEG4"
        ffmpeg.codec = "H264"
        ffmpeg.constant_rate_factor = "MEDIUM"
        scene.render.filepath = str(path)
        scene.render.use_file_extension = False
        return Path(bpy.path.abspath(str(path)))
    if hasattr(settings, "media_type"):
        settings.media_type = "IMAGE"
    settings.file_format = "PNG"
    frames_dir = Path(str(path)).with_suffix("")
    scene.render.filepath = str(frames_dir / "frame_")  # Blender makes the folder when it writes
    scene.render.use_file_extension = True
    return Path(bpy.path.abspath(str(frames_dir)))


def render_video(scene, path: Path, frame_start: int, frame_end: int) -> Path:
    """Render frames to an H.264 MP4 through Blender's FFmpeg, or to PNG frames without FFmpeg.

    Returns the video file, or the folder of frames when FFmpeg is unavailable.
    """
    scene.frame_start, scene.frame_end = frame_start, frame_end
    target = video_output(scene, Path(path))
    with quiet_blender():
        bpy.ops.render.render(animation=True, scene=scene.name)
    return target


def render_story_video(scene, panel, path: Path, frame_start: int, frame_end: int, *, frame_step: int = 1,
                       labels=()) -> Path:
    """Render ``scene``'s camera view beside ``panel`` (a :class:`core.analysis.trace_panel.TracePanel`
    as tall as the scene's frame) with a time cursor crossing its plot area from ``frame_start``
    to ``frame_end``, to an MP4 (PNG frames without FFmpeg).

    ``frame_step`` renders every n-th frame, the video's rate divided by n, so it still plays in
    real time; ``labels`` are ``(first_frame, last_frame, text)`` shown above the face meanwhile.
    Made in a temporary scene's sequencer (a scene strip, an image strip, a colour strip keyed to
    move), removed afterwards; ``scene`` keeps its settings. Returns what was written.
    """
    face_w, height = scene.render.resolution_x, scene.render.resolution_y
    if panel.height_px != height:
        raise ValueError(f"the panel is {panel.height_px} px high, the scene's frame {height} px")
    if not scene.frame_start <= frame_start <= frame_end <= scene.frame_end:
        raise ValueError(f"frames {frame_start}–{frame_end} are outside the scene's "
                         f"{scene.frame_start}–{scene.frame_end}")
    width = face_w + panel.width_px
    video = bpy.data.scenes.new("EIFER story video")
    window = bpy.context.window
    shown = window.scene if window is not None else None
    transparent = scene.render.film_transparent
    try:
        render = video.render
        render.resolution_x, render.resolution_y, render.resolution_percentage = width, height, 100
        render.fps, render.fps_base = scene.render.fps, scene.render.fps_base * frame_step
        render.use_sequencer, render.use_compositing = True, False
        video.view_settings.view_transform = "Standard"  # the panel's colours as drawn
        video.frame_start, video.frame_end, video.frame_step = frame_start, frame_end, frame_step
        strips = video.sequence_editor_create().strips
        length = frame_end - frame_start + 1
        background = strips.new_effect("background", "COLOR", 1, frame_start, length=length)
        background.color = panel.background_rgb  # behind the face too: one backdrop for both halves
        scene.render.film_transparent = True
        face_strip = strips.new_scene("face", scene, 2, scene.frame_start)
        face_strip.blend_type = "ALPHA_OVER"
        face_strip.transform.offset_x = (face_w - width) / 2
        panel_strip = strips.new_image("panel", str(panel.path), 3, frame_start, fit_method="ORIGINAL")
        panel_strip.frame_final_end = frame_end + 1
        panel_strip.transform.offset_x = (width - panel.width_px) / 2
        left, top, right, bottom = panel.plot_box_px
        cursor = strips.new_effect("cursor", "COLOR", 4, frame_start, length=length)
        cursor.color = (1.0, 0.92, 0.4)
        cursor.transform.scale_x = 2.0 / width
        cursor.transform.scale_y = (bottom - top) / height
        cursor.transform.offset_y = height / 2 - (top + bottom) / 2
        _, bag = keyframes.new_action(video, "EIFER story cursor")
        x0, x1 = face_w + left - width / 2, face_w + right - width / 2
        keyframes.write_curves(bag, [cursor.transform.path_from_id("offset_x")],
                               [frame_start, max(frame_end, frame_start + 1)], [[x0], [x1]])
        for channel, (first, last, text) in enumerate(labels, start=5):
            first, last = max(first, frame_start), min(last, frame_end)
            if last < first:
                continue
            label = strips.new_effect(f"label {channel - 4}", "TEXT", channel, first, length=last - first + 1)
            label.text, label.font_size = text, max(10, height // 18)
            label.location = (face_w / 2 / width, 0.99)  # above the crown of the head
            label.alignment_x, label.anchor_x, label.anchor_y = "CENTER", "CENTER", "TOP"
            label.color = (1.0, 1.0, 1.0, 1.0)
        if window is not None:
            window.scene = video
        target = video_output(video, Path(path))
        with quiet_blender():
            bpy.ops.render.render(animation=True, scene=video.name)
        return target
    finally:
        scene.render.film_transparent = transparent
        if window is not None and shown is not None:
            window.scene = shown
        action = video.animation_data.action if video.animation_data else None
        bpy.data.scenes.remove(video)
        if action is not None and action.users == 0:
            bpy.data.actions.remove(action)
