"""``eifer drive``: an EMG recording drives a face; saves the .blend, optionally a video and a plot."""
from __future__ import annotations

import argparse

HELP = "drive a face from an sEMG recording and save the animated .blend (optionally render it)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ._args import PROVIDER_CHOICES, add_csv_arguments, add_recording_arguments, add_render_arguments
    from .process import _span

    parser.add_argument("--emg", required=True, metavar="FILE", help="the recording (EDF, BDF, BrainVision, XDF, CSV, …)")
    parser.add_argument("--rig", default="openhead", help="'openhead' (default): add the shipped CC0 head")
    parser.add_argument("--blend", metavar="FILE", help="open this .blend instead of starting empty")
    parser.add_argument("--object", metavar="NAME", help="the face object in --blend (a mesh with ARKit shape keys)")
    parser.add_argument("--out", required=True, metavar="FILE.blend", help="where to save the animated scene")
    parser.add_argument("--fps", type=float, help="scene frame rate (default: 30 for a new scene, else the file's)")
    parser.add_argument("--start-frame", type=int, default=1, help="scene frame where the recording starts (default 1)")
    parser.add_argument("--model", metavar="FILE.onnx", help="EMG→expression model (default: the shipped emg2arkit)")
    parser.add_argument("--retarget", metavar="FILE", help="your ARKit→FLAME matrix (.npy/.npz) for a FLAME head (default: the bridge computed "
                             "from the head's FLAME file)")
    parser.add_argument("--smoothing", type=float, default=0.0, metavar="S", help="Savitzky–Golay window in s (0: off)")
    parser.add_argument("--rest-floor", type=float, default=0.0, metavar="W",
                        help="key weights up to W as 0, stretch the rest back to 0–1 (0: off; try 0.05)")
    parser.add_argument("--tolerance", type=float, default=0.0, help="key reduction tolerance (0: key every frame)")
    parser.add_argument("--swap-sides", action="store_true", help="exchange Left and Right shape keys")
    parser.add_argument("--bone", action="append", metavar="ARKIT=BONE:AXIS:DEGREES", default=[],
                        help="also turn a bone of the character's armature: e.g. jawOpen=jaw:X:25 turns bone 'jaw' "
                             "about its X axis by 25 degrees at full jawOpen (repeatable; off unless given)")
    parser.add_argument("--mains", type=float, choices=(50.0, 60.0), default=50.0, help="power-line frequency (Hz)")
    parser.add_argument("--providers", choices=PROVIDER_CHOICES, default="auto",
                        help="where the network runs (auto: CUDA, else DirectML on Windows, else CPU)")
    parser.add_argument("--normalise", choices=("percentile", "calibration", "rest"), default=None,
                        help="calibration of the activity the model reads: percentile (default: each channel's "
                             "99th percentile is full activity), calibration (a posed maximum: --calibration or "
                             "'calibration' events), rest (a fixed multiple of the rest level: trusts amplitudes)")
    parser.add_argument("--calibration", type=_span, action="append", metavar="START:STOP",
                        help="block of maximal posed expressions, in seconds (repeatable; implies --normalise calibration)")
    parser.add_argument("--sensitivity", type=float, default=1.0,
                        help="multiply the calibrated activity before the network (default 1; 2: twice as expressive)")
    parser.add_argument("--plot", metavar="FILE.png", help="save a plot of EMG envelopes against the driven curves")
    parser.add_argument("--truth", metavar="FILE", help="simulator ground truth (_truth.npz) to draw in the plot")
    add_recording_arguments(parser)
    add_csv_arguments(parser)
    add_render_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..blender.jobs.drive import drive
    from ..core.errors import InputError
    from ..blender.jobs.scene import fill_sidebar, find_face, open_scene, render, save_blend, stage_for_saving
    from ._args import (PLOT_SUFFIXES, check_render_arguments, parse_frames, print_left_out, print_mesh_report,
                        print_track_report,
                        recording_options, register_sidebar_settings, require_number, require_suffix)

    # every check before any work, and every file written after every check: a late failure must
    # not leave a saved .blend behind
    require_suffix("--out", args.out, (".blend",), "the animated scene")
    require_suffix("--plot", args.plot, PLOT_SUFFIXES, "the plot")
    check_render_arguments(args)
    require_number("--fps", args.fps, above=0)
    require_number("--smoothing", args.smoothing, minimum=0)
    require_number("--tolerance", args.tolerance, minimum=0)
    require_number("--rest-floor", args.rest_floor, minimum=0)
    require_number("--sensitivity", args.sensitivity, above=0)
    calibration = args.normalise or ("calibration" if args.calibration else None)
    if args.calibration and calibration != "calibration":
        raise InputError(f"--calibration gives a posed-maximum block; it goes with --normalise calibration, "
                         f"not --normalise {args.normalise}")
    for option, path in (("--emg", args.emg), ("--retarget", args.retarget), ("--truth", args.truth)):
        if path and not Path(path).exists():
            raise InputError(f"{option} {path}: file not found")
    from ..blender.rigs.bones import parse_bone_option

    bones = dict(parse_bone_option(text) for text in args.bone) or None
    frames = parse_frames(args.frames)
    render_frames = parse_frames(args.render_frames)
    options = recording_options(args)
    emg = args.emg
    if args.rate is not None or args.csv_kind != "auto":  # a CSV read as told (the job opens anything else)
        from ..core.recording import open_recording

        emg = open_recording(args.emg, rate_hz=args.rate, csv_kind=args.csv_kind, units=options["units"])
    truth = None
    if args.truth:
        from ..core.simulator.session import read_truth

        truth = read_truth(args.truth).arkit
    register_sidebar_settings()
    scene = open_scene(args.blend, args.fps if args.fps is not None or args.blend else 30.0)
    face = find_face(args.rig, args.object, scene)
    report = drive(face, emg, scene=scene, model=args.model, start_frame=args.start_frame,
                   frame_range=frames, smoothing_s=args.smoothing, rest_floor=args.rest_floor, key_tolerance=args.tolerance,
                   swap_sides=args.swap_sides, notch_hz=(args.mains,), retarget=args.retarget,
                   providers=args.providers, calibration=calibration,
                   calibration_s=tuple(args.calibration) if args.calibration else None,
                   sensitivity=args.sensitivity, bones=bones, **options)
    scene.frame_start, scene.frame_end = report.frame_start, report.frame_end
    print(f"keyed {face.name}: frames {report.frame_start}–{report.frame_end} at "
          f"{scene.render.fps / scene.render.fps_base:g} fps on {report.provider}")
    if report.result.model.provider_note:
        print(f"note: {report.result.model.provider_note}")
    if report.missing_shapes:
        print(f"note: {face.name} has no shape key for {', '.join(report.missing_shapes)}")
    print_mesh_report(report.meshes)
    if report.bridge_note:
        print(f"bridge: {report.bridge_note}")
    print(f"driven: {len(report.result.driven)} shapes ({', '.join(report.result.driven)})")
    if report.result.left_alone:
        print(f"left alone: {len(report.result.left_alone)} shapes no recorded site moves "
              f"({', '.join(report.result.left_alone)})")
    print_track_report(report.result.envelopes)
    # the saved scene opens ready to use: the sidebar as this command ran, a camera and lights
    stage_for_saving(scene, face, resolution_px=args.resolution, engine=args.engine, video=args.render)
    fill_sidebar(scene, face, report.emg_object, **sidebar_settings(args, calibration, frames))
    blend = save_blend(args.out)
    print(f"saved {blend}")
    if args.plot:
        from ..core.analysis.plots import plot_drive

        print(f"plot {plot_drive(report.result.envelopes, report.result.expression, args.plot, truth=truth)}")
    if args.render:
        print_left_out(scene, face)
        video = render(scene, face, args.render, render_frames or frames,
                       resolution=args.resolution, engine=args.engine)
        print(f"rendered {video}")
    return 0


def sidebar_settings(args: argparse.Namespace, calibration: str | None, frames) -> dict:
    """The sidebar's fields (``blender.ui.properties.EiferSceneSettings``) for what ``args`` asked."""
    from pathlib import Path

    settings = {"model_path": str(Path(args.model).resolve()) if args.model else "",
                "retarget_path": str(Path(args.retarget).resolve()) if args.retarget else "",
                "start_frame": args.start_frame, "use_frame_range": frames is not None,
                "mains_hz": f"{args.mains:g}", "smoothing_s": args.smoothing, "rest_floor": args.rest_floor,
                "key_tolerance": args.tolerance, "swap_sides": args.swap_sides, "sensitivity": args.sensitivity,
                "calibration": (calibration or "percentile").upper(), "units": args.units or "FILE",
                "side": (args.side or "none").upper(), "mirror": args.mirror, "nan_policy": args.nan.upper()}
    if args.calibration and len(args.calibration) == 1:  # the sidebar holds one posed-maximum block
        settings["calibration_start_s"], settings["calibration_end_s"] = args.calibration[0]
    return settings
