"""``eifer infer-muscles``: a face's animation in a .blend -> inferred muscle curves (CSV/EDF/BDF/BIDS)."""
from __future__ import annotations

import argparse

HELP = "infer muscle activity from a face's animation in a .blend (Exp2EMG) and export the curves"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ._args import PROVIDER_CHOICES

    parser.add_argument("--blend", required=True, metavar="FILE", help="the .blend with the animated face")
    parser.add_argument("--object", required=True, metavar="NAME",
                        help="the face: a mesh with ARKit shape keys, or a FLAME head made by EIFER")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="muscle curves to write: .csv (fps and units in the header), .edf or .bdf")
    parser.add_argument("--edf", metavar="FILE", help="also write an EDF+ (or BDF+ with a .bdf name)")
    parser.add_argument("--bids", metavar="DIR", help="also write a BIDS-EMG-style data set in this folder")
    parser.add_argument("--subject", default="01", help="BIDS subject label (default 01)")
    parser.add_argument("--session", default=None, help="BIDS session label (optional)")
    parser.add_argument("--task", default="face", help="BIDS task label (default face)")
    parser.add_argument("--frames", metavar="A:B", help="scene frames to read, inclusive (default: the scene's range)")
    parser.add_argument("--model", metavar="FILE.onnx", help="Exp2EMG model (default: the shipped arkit2emg)")
    parser.add_argument("--providers", choices=PROVIDER_CHOICES, default="auto",
                        help="where the network runs (auto: CUDA, else DirectML on Windows, else CPU)")
    parser.add_argument("--swap-sides", action="store_true", help="exchange Left and Right shape keys")
    parser.add_argument("--save", metavar="FILE.blend", help="save the scene with the 'EMG (inferred)' object")
    parser.add_argument("--heatmap", action="store_true", help="with --save: turn the muscle heatmap on in the saved scene")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..blender.jobs.infer import infer_muscles
    from ..blender.jobs.scene import find_face, open_scene, save_blend
    from ..core.errors import InputError
    from ..core.trackfiles import TRACK_FORMATS, write_bids_emg, write_track
    from ._args import parse_frames

    out = Path(args.out)
    if out.suffix.lower() not in TRACK_FORMATS:
        raise InputError(f"--out {out}: write {', '.join(TRACK_FORMATS)}")
    if args.edf and Path(args.edf).suffix.lower() not in (".edf", ".bdf"):
        raise InputError(f"--edf {args.edf}: the name must end in .edf or .bdf")
    if args.heatmap and not args.save:
        raise InputError("--heatmap changes the saved scene: give --save FILE.blend too")
    frames = parse_frames(args.frames)
    scene = open_scene(args.blend, None)
    face = find_face("openhead", args.object, scene)
    report = infer_muscles(face, scene=scene, model=args.model, frame_range=frames,
                           providers=args.providers, swap_sides=args.swap_sides)
    muscles = report.muscles
    print(f"inferred {len(muscles.names)} muscle curves from {face.name}: frames "
          f"{report.frame_start}–{report.frame_end} at {muscles.fps:g} fps on {report.provider} ({muscles.units})")
    if report.model.provider_note:
        print(f"note: {report.model.provider_note}")
    if report.missing_shapes:
        print(f"note: {face.name} has no shape key for {', '.join(report.missing_shapes)} (read as 0)")
    written = [write_track(muscles, out)]
    if args.edf:
        written.append(write_track(muscles, args.edf))
    if args.bids:
        files = write_bids_emg(muscles, args.bids, subject=args.subject, session=args.session, task=args.task,
                               acquisition="inferred")
        written.append(files.data)
    for path in written:
        print(f"wrote {path}")
    if args.save:
        if args.heatmap:
            from ..blender.jobs.heatmap import COLOUR_MAP, enable_heatmap

            enable_heatmap(face, report.emg_object)
            print(f"heatmap on {face.name}: {COLOUR_MAP}")
        print(f"saved {save_blend(args.save)}")
    return 0
