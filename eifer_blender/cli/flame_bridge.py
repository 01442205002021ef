"""``eifer flame-bridge``: compute (or load) the ARKit ↔ FLAME bridge of your FLAME file and show
how well it fits: per ARKit shape the fit residual, and a rendered pair to look at."""
from __future__ import annotations

import argparse

HELP = ("compute the ARKit↔FLAME bridge from your FLAME file (cached in your user folder) and report "
        "its fit per ARKit shape, with a rendered pair per shape")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--flame", "--model", dest="flame", required=True, metavar="FILE",
                        help="your FLAME model (.pkl or .npz); FLAME is never shipped: https://flame.is.tue.mpg.de")
    parser.add_argument("--report", metavar="DIR",
                        help="write bridge_residuals.csv, bridge_residuals.md and pairs/<shape>.png here")
    parser.add_argument("--shapes", metavar="A,B,…",
                        help="render only these ARKit shapes (default: all 52; the table lists all)")
    parser.add_argument("--size", type=int, default=160, metavar="PX",
                        help="height of each rendered pair in pixels (default 160)")
    parser.add_argument("--no-render", action="store_true", help="write the tables only")
    parser.add_argument("--cache", metavar="DIR",
                        help="cache folder (default: $EIFER_BRIDGE_CACHE, Blender's extension user folder, "
                             "or ~/.cache/eifer-blender)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..core.errors import InputError

    if not Path(args.flame).is_file():
        raise InputError(f"--flame {args.flame}: file not found")
    if args.report and Path(args.report).exists() and not Path(args.report).is_dir():
        raise InputError(f"--report {args.report}: is a file; give a folder")
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()] if args.shapes else None
    if (shapes or args.no_render) and not args.report:
        raise InputError("--shapes and --no-render say what goes into the --report folder: give --report DIR")

    import bpy

    from ..blender.jobs.flame_bridge import check_shapes, bridge_report
    from ..blender.rigs.bridge_cache import bridge_cache_dir, bridge_for_file, bridge_note

    if shapes is not None:
        check_shapes(shapes)
    cache = Path(args.cache) if args.cache else bridge_cache_dir()
    bridge = bridge_for_file(args.flame, cache_dir=cache)  # a non-face raises here: nothing cached
    print(f"bridge: {bridge_note(bridge)}")
    print(f"cache: {cache}")
    if args.report:
        bpy.ops.wm.read_homefile(use_empty=True)
        written = bridge_report(bridge, args.flame, args.report, shapes=shapes, size_px=args.size,
                                render=not args.no_render)
        print(f"wrote {written.csv_path}")
        print(f"wrote {written.markdown_path}")
        if written.images:
            print(f"rendered {len(written.images)} pairs in {written.folder / 'pairs'}")
    return 0
