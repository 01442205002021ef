"""The ARKit ↔ FLAME bridge's quality, to look at: per ARKit shape its fit residual and a rendered
pair (the open head's shape beside the FLAME head driven through the bridge).

``bridge_report`` writes into a folder, whole or not at all: ``bridge_residuals.csv``,
``bridge_residuals.md`` (the same table, with the images) and ``pairs/<shape>.png`` (Workbench,
small). The bridge itself comes from :mod:`..rigs.bridge_cache` (cached per FLAME file).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np
from mathutils import Vector

from ...core.atomic import atomic_folder
from ...core.errors import InputError
from ...core.expression.spaces import ARKIT52, ARKIT_OBSERVABLE
from ...core.heads.bridge import Bridge
from ...core.heads.flame_file import load_flame_model
from ..rigs.flame import EXTRA_PARAM_PROPS, set_flame_parameters
from ..rigs.flame_build import build_flame_rig
from ..rigs.openhead import build_open_head
from .framing import world_box
from .render import render_still, setup_stage

CSV_NAME, MARKDOWN_NAME, PAIRS_FOLDER = "bridge_residuals.csv", "bridge_residuals.md", "pairs"


@dataclass
class BridgeReport:
    """What :func:`bridge_report` wrote."""

    folder: Path
    csv_path: Path
    markdown_path: Path
    images: dict[str, Path] = field(default_factory=dict)  # shape -> rendered pair


def _residual_text(value: float) -> str:
    return f"{value:.1%}" if np.isfinite(value) else "moves nothing on FLAME"


def check_shapes(shapes) -> list[str]:
    if shapes is None:
        return list(ARKIT52)
    unknown = [s for s in shapes if s not in ARKIT52]
    if unknown:
        raise InputError(f"not ARKit shape names: {', '.join(unknown)} (e.g. jawOpen, mouthSmileLeft)")
    return list(dict.fromkeys(shapes))


def bridge_report(bridge: Bridge, flame_path: str | Path, folder: str | Path, *, scene=None,
                  shapes=None, size_px: int = 160, render: bool = True,
                  progress=None) -> BridgeReport:
    """Write the bridge's residual table and, with ``render``, a rendered pair per shape.

    Parameters
    ----------
    bridge : the bridge of ``flame_path`` (``rigs.bridge_cache.bridge_for_file``).
    flame_path : the FLAME file, to build the FLAME head that is rendered.
    folder : where the report goes (created; files already there that it does not write are kept).
    scene : the scene to stage the two heads in (default the context scene; a headless command's
        empty scene — the heads, camera and lights stay in it).
    shapes : the ARKit shapes to render (default all 52); the table always lists all 52.
    size_px : height of each image; the pair is twice as wide.
    progress : ``(fraction, message)`` callback.
    """
    report = progress or (lambda fraction, message: None)
    shapes = check_shapes(shapes)
    if render and not 32 <= int(size_px) <= 2048:
        raise InputError(f"the image size must be 32–2048 pixels, got {size_px}")
    folder = Path(folder)
    rows = bridge.residual_table()
    with atomic_folder(folder) as staging:
        images = {}
        if render:
            images = _render_pairs(bridge, flame_path, staging / PAIRS_FOLDER, scene or bpy.context.scene,
                                   shapes, int(size_px), report)
        _write_tables(bridge, rows, staging, images)
    moved = {shape: folder / path.relative_to(staging) for shape, path in images.items()}
    return BridgeReport(folder, folder / CSV_NAME, folder / MARKDOWN_NAME, moved)


def _write_tables(bridge: Bridge, rows, staging: Path, images: dict) -> None:
    with open(staging / CSV_NAME, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["shape", "residual", "parameters", "network_drives_it", "image"])
        for name, residual, groups in rows:
            image = images.get(name)
            writer.writerow([name, f"{residual:.6f}" if np.isfinite(residual) else "",
                             "+".join(groups), "yes" if name in ARKIT_OBSERVABLE else "no",
                             f"{PAIRS_FOLDER}/{image.name}" if image else ""])
    lines = ["# ARKit → FLAME bridge", "", bridge.summary(), "",
             "Residual: RMS over the face region of (FLAME head through the bridge − the open head's "
             "shape carried onto FLAME), relative to the shape's own RMS there. Left of each image the "
             "open head, right the FLAME head.", "",
             "| shape | residual | parameters | network drives it | pair |",
             "|---|---|---|---|---|"]
    for name, residual, groups in rows:
        image = images.get(name)
        cell = f"![{name}]({PAIRS_FOLDER}/{image.name})" if image else ""
        lines.append(f"| {name} | {_residual_text(residual)} | {', '.join(groups) or '—'} | "
                     f"{'yes' if name in ARKIT_OBSERVABLE else 'no'} | {cell} |")
    (staging / MARKDOWN_NAME).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _render_pairs(bridge, flame_path, out: Path, scene, shapes, size_px, report) -> dict[str, Path]:
    """Stage the open head (left) and the FLAME head (right) in ``scene`` and render each shape."""
    report(0.0, "adding the open head and the FLAME head")
    flame = load_flame_model(flame_path)
    open_head = build_open_head(scene.collection, name="Bridge OpenHead")
    rig = build_flame_rig(flame, scene.collection, n_shape=0, n_expression=bridge.n_expression,
                          name="Bridge FLAME")
    bpy.context.view_layer.update()
    lo_o, hi_o = world_box(open_head)
    lo_f, hi_f = world_box(rig.mesh_obj)
    width = float(max(hi_o[0] - lo_o[0], hi_f[0] - lo_f[0]))
    # face centres side by side, half a head apart, fronts level
    open_head.location = Vector(open_head.location) - Vector((lo_o + hi_o) / 2) + Vector((-0.6 * width, 0.0, 0.0))
    rig.armature_obj.location = (Vector(rig.armature_obj.location) - Vector((lo_f + hi_f) / 2)
                                 + Vector((0.6 * width, 0.0, 0.0)))
    bpy.context.view_layer.update()
    camera = setup_stage(scene, open_head, resolution_px=size_px, width_px=2 * size_px)
    lo = np.minimum(*(world_box(o)[0] for o in (open_head, rig.mesh_obj)))
    hi = np.maximum(*(world_box(o)[1] for o in (open_head, rig.mesh_obj)))
    camera.data.type = "ORTHO"
    camera.data.sensor_fit = "AUTO"
    camera.data.ortho_scale = 1.1 * float(max(hi[0] - lo[0], 2.0 * (hi[2] - lo[2])))
    camera.location = ((lo[0] + hi[0]) / 2, lo[1] - 1.0, (lo[2] + hi[2]) / 2)
    scene.display.shading.color_type = "SINGLE"
    out.mkdir(parents=True, exist_ok=True)
    keys = open_head.data.shape_keys.key_blocks
    n = bridge.n_expression
    images = {}
    for step, shape in enumerate(shapes):
        report(step / len(shapes), f"rendering {shape}")
        for block in keys[1:]:
            block.value = 0.0
        keys[shape].value = 1.0
        params = bridge.arkit_to_flame[ARKIT52.index(shape)]
        pose = np.zeros(15)
        pose[6:9] = params[n:n + 3]
        set_flame_parameters(rig, expression=params[:n], pose=pose)
        if EXTRA_PARAM_PROPS["eyelid"] in rig.armature_obj:
            rig.armature_obj[EXTRA_PARAM_PROPS["eyelid"]] = [float(v) for v in params[n + 3:n + 5]]
        images[shape] = render_still(scene, scene.frame_current, out / f"{shape}.png")
    report(1.0, "rendered")
    return images
