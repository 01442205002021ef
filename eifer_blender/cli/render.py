"""``eifer render``: render a saved scene's face to a video (or one still)."""
from __future__ import annotations

import argparse

HELP = "render a .blend (e.g. one saved by drive) to an .mp4, or one frame to a .png"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--blend", required=True, metavar="FILE", help="the scene to render")
    parser.add_argument("--object", metavar="NAME", help="the face to frame (default: the scene's EIFER face)")
    parser.add_argument("--out", required=True, metavar="FILE", help=".mp4 for a video, .png for one frame")
    parser.add_argument("--frames", metavar="A:B", help="frames for a video (default: the scene's range)")
    parser.add_argument("--frame", type=int, help="the frame for a .png still (default: the current frame)")
    parser.add_argument("--resolution", type=int, default=512, help="square size in pixels (default 512)")
    parser.add_argument("--engine", choices=("workbench", "cycles"), default="workbench")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..blender.jobs.scene import open_scene, render
    from ..core.errors import InputError
    from ._args import parse_frames, print_left_out

    out = Path(args.out)
    if out.suffix.lower() not in (".mp4", ".png"):
        raise InputError(f"--out {out}: give an .mp4 (video) or .png (still) file")
    frames = parse_frames(args.frames)
    scene = open_scene(args.blend, None)
    face = _face(scene, args.object)
    left_out = print_left_out(scene, face)
    if out.suffix.lower() == ".png":
        from ..blender.jobs.framing import leave_out
        from ..blender.jobs.render import render_still, setup_stage

        setup_stage(scene, face, resolution_px=args.resolution,
                    engine={"workbench": "BLENDER_WORKBENCH", "cycles": "CYCLES"}[args.engine])
        with leave_out(left_out):
            print(f"rendered {render_still(scene, args.frame or scene.frame_current, out.resolve())}")
    else:
        print(f"rendered {render(scene, face, str(out), frames, resolution=args.resolution, engine=args.engine)}")
    return 0


def _face(scene, name):
    from ..blender.jobs.scene import find_face
    from ..core.errors import InputError

    if name:
        return find_face("openhead", name, scene)
    face = getattr(getattr(scene, "eifer", None), "face", None)
    if face is None:  # the extension may not be registered (python -m): the first mesh with shape keys
        face = next((o for o in scene.objects if o.type == "MESH" and o.data.shape_keys), None)
    if face is None:
        raise InputError("no face in the scene: pass --object NAME")
    return face
