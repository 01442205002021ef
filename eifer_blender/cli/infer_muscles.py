"""``eifer infer-muscles``: a face's animation in a .blend, or a face capture (Live Link Face CSV,
MediaPipe blendshapes), -> inferred muscle curves (CSV/EDF/BDF/BIDS)."""
from __future__ import annotations

import argparse

HELP = ("infer muscle activity from a face's animation in a .blend, or from a face capture (Exp2EMG), "
        "and export the curves")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ._args import PROVIDER_CHOICES

    parser.add_argument("--blend", metavar="FILE", help="the .blend with the animated face")
    parser.add_argument("--object", metavar="NAME",
                        help="the face: a mesh with ARKit shape keys, or a FLAME head made by EIFER")
    parser.add_argument("--capture", metavar="FILE",
                        help="instead of --blend/--object: a Live Link Face CSV or a MediaPipe blendshape "
                             ".csv/.json, read straight, without a rig")
    parser.add_argument("--fps", type=float, metavar="FPS",
                        help="with --capture: the frame rate to read it at (default: the model's)")
    parser.add_argument("--timecode-fps", type=float, metavar="FPS",
                        help="with --capture: a Live Link Face timecode's frame rate (default: from its frame numbers)")
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


def _check_outputs(args) -> None:
    from pathlib import Path

    from ..core.errors import InputError
    from ..core.trackfiles import TRACK_FORMATS

    out = Path(args.out)
    if out.suffix.lower() not in TRACK_FORMATS:
        raise InputError(f"--out {out}: write {', '.join(TRACK_FORMATS)}")
    if args.edf and Path(args.edf).suffix.lower() not in (".edf", ".bdf"):
        raise InputError(f"--edf {args.edf}: the name must end in .edf or .bdf")


def _write_outputs(muscles, args) -> None:
    from ..core.trackfiles import write_bids_emg, write_track

    written = [write_track(muscles, args.out)]
    if args.edf:
        written.append(write_track(muscles, args.edf))
    if args.bids:
        files = write_bids_emg(muscles, args.bids, subject=args.subject, session=args.session, task=args.task,
                               acquisition="inferred")
        written.append(files.data)
    for path in written:
        print(f"wrote {path}")


def run_capture(args: argparse.Namespace) -> int:
    """``--capture FILE``: the capture's ARKit weights straight into Exp2EMG, no scene."""
    from ..core.errors import InputError, ModelMismatchError
    from ..core.network import resolve_model
    from ..core.pipeline import expression_to_muscles
    from ..core.trackfiles.captures import read_capture
    from ._args import require_number

    used = [option for option, value in (("--blend", args.blend), ("--object", args.object),
                                         ("--frames", args.frames), ("--swap-sides", args.swap_sides),
                                         ("--save", args.save), ("--heatmap", args.heatmap)) if value]
    if used:
        raise InputError(f"--capture reads the file without a scene: leave out {', '.join(used)}")
    _check_outputs(args)
    require_number("--fps", args.fps, above=0)
    require_number("--timecode-fps", args.timecode_fps, above=0)
    model = resolve_model(args.model, "arkit2emg", args.providers).require(direction="exp2emg",
                                                                          purpose="inferring muscles")
    if model.metadata.input_space != "arkit52":
        raise ModelMismatchError(f"{model.path.name} reads the {model.metadata.input_space!r} space; a face "
                                 f"capture holds ARKit weights: use an ARKit Exp2EMG model")
    capture = read_capture(args.capture, args.fps or model.metadata.fps, timecode_fps=args.timecode_fps)
    expression, missing = capture.with_names(model.input_names)
    muscles = expression_to_muscles(expression, model)
    muscles.meta.update({"capture": str(args.capture), "missing_shapes": missing, "input_space": "arkit52"})
    meta = capture.meta
    rate = (f", timecode at {meta['timecode_fps']:g} fps"
            + ("" if meta["timecode_fps_given"] else " (from its frame numbers; --timecode-fps to set)")
            if "timecode_fps" in meta else f", time from {meta['time_column']}" if meta.get("time_column") else "")
    print(f"inferred {len(muscles.names)} muscle curves from {args.capture} ({meta['format']}{rate}): "
          f"{muscles.n_frames} frames at {muscles.fps:g} fps on {model.provider} ({muscles.units})")
    if model.provider_note:
        print(f"note: {model.provider_note}")
    if missing:
        print(f"note: the capture has no {', '.join(missing)} (read as 0)")
    for warning in meta.get("warnings", ()):
        print(f"warning: {warning}")
    _write_outputs(muscles, args)
    return 0


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..blender.jobs.infer import infer_muscles
    from ..blender.jobs.scene import fill_sidebar, find_face, open_scene, save_blend, stage_for_saving
    from ..core.errors import InputError
    from ._args import parse_frames, register_sidebar_settings

    if args.capture:
        return run_capture(args)
    if not args.blend or not args.object:
        raise InputError("give --blend FILE and --object NAME (the animated face), or --capture FILE")
    if args.fps is not None or args.timecode_fps is not None:
        raise InputError("--fps and --timecode-fps read a --capture; a .blend is read at its scene's fps")
    _check_outputs(args)
    if args.heatmap and not args.save:
        raise InputError("--heatmap changes the saved scene: give --save FILE.blend too")
    frames = parse_frames(args.frames)
    if args.save:
        register_sidebar_settings()
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
    if report.bridge_note:
        print(f"bridge: {report.bridge_note}")
    _write_outputs(muscles, args)
    if args.save:
        if args.heatmap:
            from ..blender.jobs.heatmap import COLOUR_MAP, enable_heatmap

            enable_heatmap(face, report.emg_object)
            print(f"heatmap on {face.name}: {COLOUR_MAP}")
        # the saved scene opens ready to use: the face, the inferred curves (the heatmap's source,
        # Compare's), the settings used; the recording the sidebar held is kept; a camera and lights
        stage_for_saving(scene, face, resolution_px=512)
        fill_sidebar(scene, face, inferred=report.emg_object, heatmap_source=report.emg_object,
                     inverse_model_path=str(Path(args.model).resolve()) if args.model else "",
                     swap_sides=args.swap_sides)
        print(f"saved {save_blend(args.save)}")
    return 0
