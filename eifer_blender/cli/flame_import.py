"""``eifer flame-import``: key per-frame FLAME parameters on a FLAME head and save a .blend."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = ("key per-frame FLAME parameters (MMM/SMIRK or EMOCA/DECA CSV, .npz, .npy) on a FLAME "
        "head and save the .blend")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("params", metavar="PARAMS",
                        help="parameter file: 361-column MMM/SMIRK or 56-column EMOCA/DECA "
                             "CSV(.gz), .npz with named arrays (expression, jaw_pose, shape, …) "
                             "or .npy")
    parser.add_argument("--out", required=True, metavar="FILE.blend", help=".blend to write")
    parser.add_argument("--blend", metavar="FILE.blend",
                        help="open this .blend first and key its FLAME head (default: a new scene)")
    parser.add_argument("--flame", metavar="FILE",
                        help="your FLAME model (.pkl or .npz), used to add a head when the scene "
                             "has none; FLAME is never shipped: https://flame.is.tue.mpg.de")
    parser.add_argument("--rig", metavar="NAME",
                        help="name of the FLAME head or its armature (default: the only one)")
    parser.add_argument("--shapes", type=int, default=300, metavar="N",
                        help="identity shape keys of a new head, 0–300 (default: 300)")
    parser.add_argument("--expressions", type=int, default=50, metavar="N",
                        help="expression shape keys of a new head, 0–100 (default: 50)")
    parser.add_argument("--layout", choices=("mmm", "emoca"),
                        help="table layout (default: from the column count, 361 or 56)")
    parser.add_argument("--fps", type=float, metavar="HZ",
                        help="rows per second (default: the file's, else 30)")
    parser.add_argument("--start-frame", type=int, default=1, metavar="N",
                        help="frame of the first row (default: 1)")
    parser.add_argument("--identity", choices=("mean", "per_frame", "keep"), default="mean",
                        help="mean: set the clip's mean shape and re-place the joints (default); "
                             "per_frame: key the Shape keys too; keep: ignore the file's shape")


def _find_rigs(bpy, name):
    from ..blender.anim import internal
    from ..blender.rigs.flame import MESH_TAG_VALUE, RIG_TAG, find_flame_rig
    from ..core.errors import InputError

    if name is not None:
        obj = bpy.data.objects.get(name)
        if obj is None:
            raise InputError(f"--rig: the scene has no object named {name!r}.")
        return [find_flame_rig(obj)]
    return [find_flame_rig(obj) for obj in bpy.data.objects if internal.get(obj, RIG_TAG) == MESH_TAG_VALUE]


def run(args: argparse.Namespace) -> int:
    import bpy

    from ..blender.anim.keyframes import scene_fps
    from ..blender.jobs.scene import fill_sidebar, save_blend, stage_for_saving
    from ..blender.rigs.flame_build import build_flame_rig
    from ..blender.rigs.flame_keys import key_flame_params
    from ..core.errors import InputError
    from ..core.expression.flame_files import read_flame_params
    from ..core.heads.flame_file import load_flame_model

    out = Path(args.out)
    if out.suffix.lower() != ".blend":
        raise InputError(f"--out {out}: write to a .blend file.")
    from ._args import register_sidebar_settings

    params = read_flame_params(args.params, fps=args.fps, layout=args.layout)  # fail early
    register_sidebar_settings()
    if args.blend:
        if not Path(args.blend).is_file():
            raise InputError(f"--blend {args.blend}: no such file.")
        bpy.ops.wm.open_mainfile(filepath=str(args.blend), load_ui=False)
    else:
        bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    rigs = _find_rigs(bpy, args.rig)
    if len(rigs) > 1:
        names = ", ".join(r.mesh_obj.name for r in rigs)
        raise InputError(f"the scene has several FLAME heads ({names}); pick one with --rig.")
    if rigs:
        rig = rigs[0]
    else:
        if not args.flame:
            where = args.blend or "the new scene"
            raise InputError(f"{where} has no FLAME head; pass --flame with your FLAME model "
                             f"file to add one.")
        flame = load_flame_model(args.flame)
        rig = build_flame_rig(flame, scene.collection, args.shapes, args.expressions)
        if not args.blend:  # a new scene plays at the file's rate
            scene.render.fps = max(1, round(params.fps))
            scene.render.fps_base = scene.render.fps / params.fps
    result = key_flame_params(rig, params, start_frame=args.start_frame, identity=args.identity)
    first, last = result["frames"]
    scene.frame_start = int(first)
    scene.frame_end = max(int(first), int(-(-last // 1)))
    # the saved scene opens ready to use: the head in the sidebar (Infer, Heatmap), a camera and lights
    stage_for_saving(scene, rig.mesh_obj, resolution_px=512)
    fill_sidebar(scene, rig.mesh_obj)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_blend(out)
    for warning in result["warnings"]:
        print(f"warning: {warning}")
    for note in result.get("notes", ()):
        print(f"note: {note}")
    print(f"keyed {params.n_frames} frames ({params.fps:g} fps in the file, scene at "
          f"{scene_fps(scene):g} fps, frames {first:g}–{last:g}) on {rig.mesh_obj.name}; "
          f"wrote {out}")
    return 0
