"""``eifer demo``: the main job on the bundled example — recording → open head → keys → video + .blend."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "drive the open head from the bundled example recording; write video, .blend, plot and a still"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "recordings" / "simulated_emotions.edf"
STILL_AT_S = 15.6  # the example's happiness is at its apex here (examples/recordings/*_events.tsv)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="out/demo", metavar="DIR", help="output folder (default out/demo)")
    parser.add_argument("--emg", default=str(EXAMPLE), metavar="FILE",
                        help="recording to use (default: the bundled simulated example)")
    parser.add_argument("--fps", type=float, default=24.0, help="scene frame rate (default 24)")
    parser.add_argument("--seconds", type=float, default=27.0,
                        help="seconds of the recording to render (default 27: the six emotions); 0 = all")
    parser.add_argument("--resolution", type=int, default=384, help="square video size in pixels (default 384)")
    parser.add_argument("--engine", choices=("workbench", "cycles"), default="workbench")


def run(args: argparse.Namespace) -> int:
    from ..core.errors import InputError
    from . import drive, render

    emg = Path(args.emg)
    if not emg.is_file():
        raise InputError(f"{emg}: recording not found (the demo uses the example shipped in the repository's "
                         "examples/ folder; pass --emg FILE to use another)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    last = "" if args.seconds <= 0 else f"1:{int(round(args.seconds * args.fps))}"
    truth = emg.with_name(emg.stem + "_truth.npz")
    drive_args = [
        "--emg", str(emg), "--out", str(out / "demo.blend"), "--fps", str(args.fps),
        "--plot", str(out / "demo_emg_vs_curves.png"), "--render", str(out / "demo.mp4"),
        "--resolution", str(args.resolution), "--engine", args.engine,
    ] + (["--truth", str(truth)] if truth.is_file() else []) + (["--render-frames", last] if last else [])
    parser = argparse.ArgumentParser()
    drive.add_arguments(parser)
    code = drive.run(parser.parse_args(drive_args))  # the whole recording is keyed, the excerpt rendered
    if code == 0:  # one still in Cycles, at the smile of the example's happiness
        still = ["--blend", str(out / "demo.blend"), "--out", str(out / "demo_frame.png"), "--engine", "cycles",
                 "--frame", str(int(round(STILL_AT_S * args.fps)) + 1), "--resolution", "512"]
        parser = argparse.ArgumentParser()
        render.add_arguments(parser)
        code = render.run(parser.parse_args(still))
    print(f"demo written to {out.resolve()}")
    return code
