"""Contact sheet of the open head: a few ARKit expressions rendered small in Workbench, tiled.

    .venv/bin/python scripts/contact_sheet.py [--out docs/images/open_head_expressions.png] [--size 160]

Renders the CC0 open head (painted brows, lash line, lips, irises) headless with the render
stage of ``eifer_blender.blender.jobs.render`` and Workbench's "Attribute" colour type, one tile
per expression with its name underneath, three tiles a row (the tiling of
``eifer_blender.blender.jobs.contact_sheet``, which ``eifer demo`` also uses); writes one PNG
(about 100 KB at the default size). Takes a few seconds on a laptop CPU.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import bpy  # noqa: E402  (the bpy module from PyPI: Blender, headless)

from eifer_blender.blender.jobs.contact_sheet import render_contact_sheet  # noqa: E402
from eifer_blender.blender.jobs.render import setup_stage  # noqa: E402
from eifer_blender.blender.rigs.openhead import build_open_head, use_painted_colours  # noqa: E402

# name shown → ARKit key weights
EXPRESSIONS: dict[str, dict[str, float]] = {
    "neutral": {},
    "smile": {"mouthSmileLeft": 1.0, "mouthSmileRight": 1.0},
    "browDown": {"browDownLeft": 1.0, "browDownRight": 1.0},
    "browInnerUp": {"browInnerUp": 1.0},
    "eyeBlink": {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0},
    "jawOpen": {"jawOpen": 1.0},
}
COLUMNS = 3


def make_contact_sheet(out: Path, size: int = 160) -> Path:
    """Render :data:`EXPRESSIONS` on the open head and tile them into ``out`` (PNG)."""
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    head = build_open_head(scene.collection)
    setup_stage(scene, head, resolution_px=size)
    use_painted_colours(scene)
    keys = head.data.shape_keys.key_blocks

    def pose(weights: dict[str, float]):
        def apply() -> None:
            for block in keys[1:]:
                block.value = 0.0
            for key, value in weights.items():
                keys[key].value = value
        return apply

    return render_contact_sheet(scene, [(name, pose(weights)) for name, weights in EXPRESSIONS.items()], out,
                                columns=COLUMNS)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "images" / "open_head_expressions.png")
    parser.add_argument("--size", type=int, default=160, help="tile width and height in pixels (default 160)")
    args = parser.parse_args(argv)
    out = make_contact_sheet(args.out, args.size)
    print(f"wrote {out} ({out.stat().st_size // 1024} KB, {len(EXPRESSIONS)} expressions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
