"""Contact sheets: small Workbench stills of a face, a label under each, tiled into one PNG.

In: a scene whose camera frames the face (``render.setup_stage``) and a list of poses, each a
label and a function that poses the face (sets a frame, or shape key weights). Out: one PNG,
``columns`` tiles a row, a short last row padded with the label strip's grey. Used by
``eifer demo`` (rest and the six basic emotions of the example) and ``scripts/contact_sheet.py``
(a few ARKit shapes on the open head).
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import bpy
import numpy as np

from .render import render_still

LABEL_PX = 22  # height of the label strip under a tile
BACKGROUND = 0.16  # display value of the label strip (and of the padding)
#: the six basic emotions, in the order a sheet shows them, and the event labels that name each
EMOTIONS: dict[str, tuple[str, ...]] = {
    "happiness": ("happiness", "happy", "joy"),
    "sadness": ("sadness", "sad"),
    "anger": ("anger", "angry"),
    "fear": ("fear", "fearful", "afraid"),
    "surprise": ("surprise", "surprised"),
    "disgust": ("disgust", "disgusted"),
}


def read_png(path) -> np.ndarray:
    """(rows, cols, 4) display-referred pixels of an image file, top row first."""
    image = bpy.data.images.load(str(path))
    try:
        width, height = image.size
        pixels = np.empty(width * height * 4, dtype=np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    return pixels.reshape(height, width, 4)[::-1]


def render_image(scene, path) -> np.ndarray:
    """Render ``scene`` as it stands (its current frame) to a PNG at ``path``; its pixels, top row first."""
    return read_png(render_still(scene, scene.frame_current, path))


class _Labels:
    """A scene of its own with a text object seen by an orthographic camera: renders one label
    strip ``width_px`` wide; everything it made is removed on exit."""

    def __init__(self, width_px: int):
        self.width_px = width_px

    def __enter__(self):
        scene = self.scene = bpy.data.scenes.new("EIFER contact sheet labels")
        scene.render.engine = "BLENDER_WORKBENCH"
        scene.render.resolution_x, scene.render.resolution_y = self.width_px, LABEL_PX
        scene.render.resolution_percentage = 100
        scene.display.shading.light = "FLAT"
        scene.display.shading.color_type = "SINGLE"
        scene.display.shading.single_color = (0.85, 0.85, 0.85)
        scene.view_settings.view_transform = "Standard"
        self.world = bpy.data.worlds.new("EIFER contact sheet labels")
        self.world.color = (BACKGROUND ** 2.2,) * 3
        scene.world = self.world
        self.font = bpy.data.curves.new("EIFER label", "FONT")
        self.font.align_x, self.font.align_y = "CENTER", "CENTER"
        self.font.size = 0.6
        self.text = bpy.data.objects.new("EIFER label", self.font)
        scene.collection.objects.link(self.text)
        self.lens = bpy.data.cameras.new("EIFER label camera")
        self.lens.type = "ORTHO"
        self.lens.ortho_scale = self.width_px / LABEL_PX  # one unit = the strip's height
        self.camera = bpy.data.objects.new("EIFER label camera", self.lens)
        self.camera.location = (0.0, 0.0, 5.0)
        scene.collection.objects.link(self.camera)
        scene.camera = self.camera
        return self

    def render(self, text: str, path) -> np.ndarray:
        self.font.body = text
        return render_image(self.scene, path)

    def __exit__(self, *exc):
        bpy.data.objects.remove(self.text)
        bpy.data.objects.remove(self.camera)
        bpy.data.curves.remove(self.font)
        bpy.data.cameras.remove(self.lens)
        bpy.data.scenes.remove(self.scene)
        bpy.data.worlds.remove(self.world)
        return False


def tile(tiles: Sequence[np.ndarray], columns: int) -> np.ndarray:
    """Tiles of one size, ``columns`` a row, top row first; a short last row padded with :data:`BACKGROUND`."""
    rows = [np.concatenate(tiles[i:i + columns], axis=1) for i in range(0, len(tiles), columns)]
    if rows[-1].shape != rows[0].shape:
        pad = np.full((rows[0].shape[0], rows[0].shape[1] - rows[-1].shape[1], 4), BACKGROUND, np.float32)
        pad[..., 3] = 1.0
        rows[-1] = np.concatenate([rows[-1], pad], axis=1)
    sheet = np.concatenate(rows, axis=0)
    sheet[..., 3] = 1.0
    return sheet


def write_png(pixels: np.ndarray, out) -> Path:
    """Save (rows, cols, 4) display-referred pixels, top row first, as a PNG."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    image = bpy.data.images.new("EIFER contact sheet", pixels.shape[1], pixels.shape[0])
    try:
        image.pixels.foreach_set(np.ascontiguousarray(pixels[::-1], dtype=np.float32).ravel())
        image.filepath_raw = str(out)
        image.file_format = "PNG"
        image.save()
    finally:
        bpy.data.images.remove(image)
    return out


def render_contact_sheet(scene, poses: Iterable[tuple[str, Callable[[], None]]], out, *,
                         columns: int = 4) -> Path:
    """Render ``scene``'s camera view once per ``(label, pose)`` (``pose()`` is called first) at the
    scene's resolution, with the label under each tile, and tile them into the PNG ``out``."""
    width = scene.render.resolution_x * scene.render.resolution_percentage // 100
    tiles = []
    with tempfile.TemporaryDirectory(prefix="eifer-sheet-") as folder, _Labels(width) as labels:
        for index, (label, pose) in enumerate(poses):
            pose()
            face = render_image(scene, Path(folder) / f"{index}.png")
            tiles.append(np.concatenate([face, labels.render(label, Path(folder) / f"{index}_label.png")], axis=0))
    if not tiles:
        raise ValueError("a contact sheet needs at least one pose")
    return write_png(tile(tiles, columns), out)


def emotion_of(label: str) -> str | None:
    """The basic emotion an event label names (``emotion/happiness``, ``Fearful``, …), or None."""
    word = label.strip().lower().rsplit("/", 1)[-1]
    return next((emotion for emotion, words in EMOTIONS.items() if word in words), None)


def emotion_frames(expression, first_frame: int, events) -> tuple[int, dict[str, int]]:
    """The frames a contact sheet of the six basic emotions shows: ``(rest, {emotion: frame})``.

    ``expression`` is the driven track (frames × shapes, its ``start_s`` the time of
    ``first_frame``); ``events`` are ``(onset_s, duration_s, label)``. Each emotion's frame is the
    one, within any of its events, where the driven weights add up to the most; rest is the
    least expressed frame outside every event (blinks included). Emotions without an event inside
    the track are left out.
    """
    values = np.asarray(expression.values, dtype=np.float64)
    amount = values.sum(axis=1)
    times = expression.times_s
    quiet = np.ones(len(amount), dtype=bool)
    best: dict[str, tuple[float, int]] = {}
    for onset, duration, label in events:
        inside = (times >= onset) & (times <= onset + max(duration, 0.0))
        quiet &= ~((times >= onset - 0.5) & (times <= onset + max(duration, 0.0) + 0.5))
        emotion = emotion_of(label)
        if emotion is None or not inside.any():
            continue
        index = int(np.flatnonzero(inside)[np.argmax(amount[inside])])
        if emotion not in best or amount[index] > best[emotion][0]:
            best[emotion] = (float(amount[index]), index)
    candidates = np.flatnonzero(quiet) if quiet.any() else np.arange(len(amount))
    rest = int(candidates[np.argmin(amount[candidates])])
    return first_frame + rest, {emotion: first_frame + best[emotion][1] for emotion in EMOTIONS if emotion in best}


def emotion_sheet(scene, expression, first_frame: int, events, out, *, columns: int = 4) -> tuple[Path, dict]:
    """A contact sheet of rest and the six basic emotions of a driven recording (see
    :func:`emotion_frames`), each tile labelled with the emotion and its time; rendered at the
    scene's resolution with its camera. Returns the PNG and ``{label: frame}``."""
    rest, frames = emotion_frames(expression, first_frame, events)
    fps = expression.fps

    def at(frame: int) -> str:
        return f"{expression.start_s + (frame - first_frame) / fps:.1f} s"

    shown = {f"rest {at(rest)}": rest, **{f"{emotion} {at(frame)}": frame for emotion, frame in frames.items()}}
    poses = [(label, lambda frame=frame: scene.frame_set(frame)) for label, frame in shown.items()]
    return render_contact_sheet(scene, poses, out, columns=columns), shown
