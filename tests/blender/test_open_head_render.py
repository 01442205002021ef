"""The open head reads in a render: brows and irises show in Workbench (and Cycles) and the brows
move with the brow keys in the image, not only in the mesh.

Renders are tiny (Workbench at 160 px, Cycles at 80 px with 4 samples). Regions are found by
projecting the head's own vertices through the render camera, so the checks follow the data.
"""
import importlib

import bpy
import numpy as np
import pytest

from tests.conftest import EXTENSION_MODULE

SIZE = 160


def _module(name):
    return importlib.import_module(f"{EXTENSION_MODULE}.{name}")


@pytest.fixture
def stage(blender):
    """(scene, head object, head data): the open head framed by the render stage, Workbench showing
    the painted colours."""
    scene = bpy.context.scene
    obj = _module("blender.rigs.openhead").build_open_head(scene.collection)
    _module("blender.jobs.render").setup_stage(scene, obj, resolution_px=SIZE)
    _module("blender.rigs.openhead").use_painted_colours(scene)
    scene.render.image_settings.file_format = "PNG"
    return scene, obj, _module("core.heads.openhead").load_open_head()


def _render(scene, path, weights=None):
    keys = bpy.data.objects["OpenHead"].data.shape_keys.key_blocks
    for block in keys[1:]:
        block.value = 0.0
    for name, value in (weights or {}).items():
        keys[name].value = value
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    image = bpy.data.images.load(str(path))
    size = image.size[:]
    pixels = np.empty(size[0] * size[1] * 4, dtype=np.float32)
    image.pixels.foreach_get(pixels)
    bpy.data.images.remove(image)
    return pixels.reshape(size[1], size[0], 4)[..., :3]  # row 0 is the bottom of the image


def _pixels_of(scene, obj, points_m) -> np.ndarray:
    """(n, 2) integer (row, col) of mesh-local points in the render (row 0 at the bottom)."""
    bpy.context.view_layer.update()
    render = scene.render
    camera = scene.camera
    projection = np.array(camera.calc_matrix_camera(bpy.context.evaluated_depsgraph_get(),
                                                    x=render.resolution_x, y=render.resolution_y))
    to_camera = np.array(camera.matrix_world.inverted()) @ np.array(obj.matrix_world)
    homogeneous = np.concatenate([np.asarray(points_m, dtype=np.float64), np.ones((len(points_m), 1))], axis=1)
    clip = homogeneous @ (projection @ to_camera).T
    ndc = clip[:, :2] / clip[:, 3:4]
    col = ((ndc[:, 0] + 1.0) * 0.5 * render.resolution_x).astype(int)
    row = ((ndc[:, 1] + 1.0) * 0.5 * render.resolution_y).astype(int)
    return np.stack([row, col], axis=1)


def _luminance(rgb):
    return rgb @ np.array([0.2126, 0.7152, 0.0722])


def _window(pixels, pad=2):
    (r0, c0), (r1, c1) = pixels.min(axis=0) - pad, pixels.max(axis=0) + pad
    return slice(max(r0, 0), r1 + 1), slice(max(c0, 0), c1 + 1)


def _brow_and_forehead(head):
    core = _module("core.heads.openhead")
    coords = core.face_coordinates(head)
    brows = core.brow_density(head) > 0.9
    centre_up = coords[brows, 1].max()
    forehead = head.part_mask("skin") & (coords[:, 1] > centre_up + 0.2) & (coords[:, 1] < centre_up + 0.4) \
        & (np.abs(coords[:, 0]) < 0.5) & (coords[:, 2] > 0.0)
    return brows, forehead, coords


def test_brows_are_darker_than_the_skin_around_them_in_workbench(stage, tmp_path):
    scene, obj, head = stage
    image = _render(scene, tmp_path / "neutral.png")
    brows, forehead, _ = _brow_and_forehead(head)
    brow_px = _pixels_of(scene, obj, head.vertices_m[brows])
    skin_px = _pixels_of(scene, obj, head.vertices_m[forehead])
    brow = _luminance(image[brow_px[:, 0], brow_px[:, 1]])
    skin = _luminance(image[skin_px[:, 0], skin_px[:, 1]])
    assert len(brow) >= 10 and len(skin) >= 10
    assert np.median(brow) < 0.6 * np.median(skin)
    # and the two brows are two: each side has its own dark band
    sides = np.sign(head.vertices_m[brows, 0])
    for side in (-1.0, 1.0):
        assert np.median(brow[sides == side]) < 0.6 * np.median(skin)


def test_irises_and_pupils_show_in_the_eye_opening(stage, tmp_path):
    scene, obj, head = stage
    image = _render(scene, tmp_path / "neutral.png")
    for side in ("L", "R"):
        lid = _pixels_of(scene, obj, head.vertices_m[getattr(head, f"lid_line_{side}")])
        rows, cols = _window(lid, pad=0)
        eye = _luminance(image[rows, cols])
        # a dark iris and pupil next to a light sclera inside the lids
        assert eye.min() < 0.35 * eye.max(), side
        pupil = _pixels_of(scene, obj, head.pivots_m[f"eye_{side}"][None] + np.array([[0.0, -0.015, 0.0]]))[0]
        assert _luminance(image[pupil[0], pupil[1]]) < 0.5 * eye.max(), side


def test_brow_keys_move_the_brows_in_the_image(stage, tmp_path):
    scene, obj, head = stage
    neutral = _render(scene, tmp_path / "neutral.png")
    inner_up = _render(scene, tmp_path / "inner_up.png", {"browInnerUp": 1.0})
    down = _render(scene, tmp_path / "down.png", {"browDownLeft": 1.0, "browDownRight": 1.0})
    brows, forehead, coords = _brow_and_forehead(head)
    brow_px = _pixels_of(scene, obj, head.vertices_m[brows])
    skin_px = _pixels_of(scene, obj, head.vertices_m[forehead])
    window = _window(brow_px, pad=6)
    dark = 0.5 * (np.median(_luminance(neutral[skin_px[:, 0], skin_px[:, 1]]))
                  + np.median(_luminance(neutral[brow_px[:, 0], brow_px[:, 1]])))  # between brow and skin

    def dark_rows(image, columns):
        """Mean row of the dark (brow) pixels of the brow window, in the given image columns."""
        patch = _luminance(image[window])[:, columns]
        rows = np.nonzero(patch < dark)[0]
        assert len(rows) >= 5
        return rows.mean()

    for shape, image in (("browInnerUp", inner_up), ("browDown", down)):
        assert np.abs(image[window] - neutral[window]).sum(axis=2).mean() > 0.02, shape
    # browInnerUp lifts the inner ends of the brows (rows go up), browDown lowers the brows
    inner = _pixels_of(scene, obj, head.vertices_m[brows & (np.abs(coords[:, 0]) < 0.35)])[:, 1] - window[1].start
    inner = slice(max(inner.min(), 0), inner.max() + 1)
    everything = slice(None)
    assert dark_rows(inner_up, inner) > dark_rows(neutral, inner) + 1.0
    assert dark_rows(down, everything) < dark_rows(neutral, everything) - 1.0


def test_brows_show_in_cycles_through_the_skin_material(stage, tmp_path):
    scene, obj, head = stage
    _module("blender.jobs.render").setup_stage(scene, obj, resolution_px=80, engine="CYCLES", samples=4)
    image = _render(scene, tmp_path / "cycles.png")
    brows, forehead, _ = _brow_and_forehead(head)
    brow_px = _pixels_of(scene, obj, head.vertices_m[brows])
    skin_px = _pixels_of(scene, obj, head.vertices_m[forehead])
    assert np.median(_luminance(image[brow_px[:, 0], brow_px[:, 1]])) < 0.6 * np.median(
        _luminance(image[skin_px[:, 0], skin_px[:, 1]]))
