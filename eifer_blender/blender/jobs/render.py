"""Headless rendering: a camera and lights framing a face, stills and videos."""
from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np
from mathutils import Vector

STAGE_COLLECTION = "EIFER Stage"


def _world_bounds(obj) -> tuple[np.ndarray, np.ndarray]:
    corners = np.array([obj.matrix_world @ Vector(c) for c in obj.bound_box])
    return corners.min(axis=0), corners.max(axis=0)


def setup_stage(scene, face, *, resolution_px: int = 512, engine: str = "BLENDER_WORKBENCH",
                samples: int = 16):
    """Add (or reuse) a camera and lights that frame ``face`` from the front (the face looks at -Y)."""
    stage = bpy.data.collections.get(STAGE_COLLECTION)
    if stage is None:
        stage = bpy.data.collections.new(STAGE_COLLECTION)
        scene.collection.children.link(stage)
    lo, hi = _world_bounds(face)
    centre = (lo + hi) / 2
    height = float(hi[2] - lo[2])
    camera_data = bpy.data.cameras.get("EIFER Camera") or bpy.data.cameras.new("EIFER Camera")
    camera_data.lens = 85.0
    camera = bpy.data.objects.get("EIFER Camera") or bpy.data.objects.new("EIFER Camera", camera_data)
    if camera.name not in stage.objects:
        stage.objects.link(camera)
    # An 85 mm lens on a 36 mm sensor sees 36/85 of the distance: frame 1.15x the head height.
    distance = 1.15 * height * 85.0 / 36.0
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
    render.resolution_x = render.resolution_y = resolution_px
    render.resolution_percentage = 100
    if engine == "CYCLES":
        scene.cycles.device = "CPU"
        scene.cycles.samples = samples
        scene.cycles.use_denoising = False
    elif engine == "BLENDER_WORKBENCH":
        shading = scene.display.shading
        shading.light = "STUDIO"
        shading.color_type = "MATERIAL"
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
    bpy.ops.render.render(write_still=True)
    return Path(path)


def render_video(scene, path: Path, frame_start: int, frame_end: int) -> Path:
    """Render frames to an H.264 MP4 through Blender's FFmpeg, or to PNG frames without FFmpeg.

    Returns the video file, or the folder of frames when FFmpeg is unavailable.
    """
    path = Path(path)
    scene.frame_start, scene.frame_end = frame_start, frame_end
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
        bpy.ops.render.render(animation=True)
        return path
    frames_dir = path.with_suffix("")
    frames_dir.mkdir(parents=True, exist_ok=True)
    if hasattr(settings, "media_type"):
        settings.media_type = "IMAGE"
    settings.file_format = "PNG"
    scene.render.filepath = str(frames_dir / "frame_")
    bpy.ops.render.render(animation=True)
    return frames_dir
