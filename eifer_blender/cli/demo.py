"""``eifer demo``: the main job on the bundled example — recording → open head → keys → video + .blend.

The video shows the face beside the main channels' EMG envelopes, a time cursor and the
recording's events; a contact sheet shows rest and the six basic emotions at their apex; the
.blend opens ready to use (sidebar, camera, lights, render settings).
One line per stage; Blender's own per-frame lines are held back.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

HELP = ("drive the open head from the bundled example recording; write video, .blend, plot, a contact sheet "
        "of the emotions and a still")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "recordings" / "simulated_emotions.edf"
STILL_AT_S = 15.6  # the example's happiness is at its apex here (examples/recordings/*_events.tsv)
MAINS_HZ = 50.0  # the example's, and the shipped model's training data


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="out/demo", metavar="DIR", help="output folder (default out/demo)")
    parser.add_argument("--emg", default=str(EXAMPLE), metavar="FILE",
                        help="recording to use (default: the bundled simulated example)")
    parser.add_argument("--fps", type=float, default=24.0, help="scene frame rate (default 24)")
    parser.add_argument("--seconds", type=float, default=27.0,
                        help="seconds of the recording to render (default 27: the six emotions); 0 = all")
    parser.add_argument("--resolution", type=int, default=384,
                        help="video height in pixels (default 384; the face is 3/4 as wide, the EMG panel 3/2)")
    parser.add_argument("--step", type=int, default=2,
                        help="render every n-th frame, the video at fps/n (default 2: 12 fps, half the time)")
    parser.add_argument("--sheet-size", type=int, default=160,
                        help="tile size of the emotions' contact sheet demo_emotions.png (default 160; 0: none)")
    parser.add_argument("--still-resolution", type=int, default=512,
                        help="size of the Cycles still demo_frame.png (default 512; 0: no still)")


def run(args: argparse.Namespace) -> int:
    from ..core.errors import InputError
    from ._args import require_number

    emg = Path(args.emg)
    if not emg.is_file():
        raise InputError(f"{emg}: recording not found (the demo uses the example shipped in the repository's "
                         "examples/ folder; pass --emg FILE to use another)")
    require_number("--seconds", args.seconds, minimum=0)
    require_number("--resolution", args.resolution, minimum=16)
    require_number("--step", args.step, minimum=1)
    require_number("--still-resolution", args.still_resolution, minimum=0)
    if args.sheet_size:
        require_number("--sheet-size", args.sheet_size, minimum=16)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    clock = _Stages()

    from ..blender.jobs.drive import drive
    from ..blender.jobs.render import render_still, setup_stage, video_output
    from ..blender.jobs.scene import fill_sidebar, find_face, open_scene, save_blend
    from ._args import print_track_report, register_sidebar_settings

    register_sidebar_settings()
    scene = open_scene(None, args.fps)
    face = find_face("openhead", None, scene)
    report = drive(face, str(emg), scene=scene, start_frame=1, notch_hz=(MAINS_HZ,))
    envelopes, expression = report.result.envelopes, report.result.expression
    fps = scene.render.fps / scene.render.fps_base
    clock.done(f"drive: keyed {face.name} frames {report.frame_start}–{report.frame_end} at {fps:g} fps "
               f"on {report.provider}")
    print_track_report(envelopes)

    # the saved scene: what the video shows, ready to render again and to drive again from the sidebar
    height = _even(args.resolution)
    face_width = _even(height * 3 / 4)
    scene.frame_start, scene.frame_end = report.frame_start, report.frame_end
    setup_stage(scene, face, resolution_px=height, width_px=face_width)
    scene.display.render_aa = "FXAA"  # a third of the 8 samples' time, and as smooth at this size
    video_output(scene, "//demo_face.mp4")
    fill_sidebar(scene, face, report.emg_object, start_frame=1, mains_hz=f"{MAINS_HZ:g}")
    blend = save_blend(out / "demo.blend")
    clock.done(f"scene: {blend.name} (sidebar, camera, lights, {face_width}×{height} Workbench at {fps:g} fps)")

    from ..core.analysis.plots import plot_drive
    from ..core.simulator.session import read_truth, truth_paths

    truth = truth_paths(emg)[0]
    plot = plot_drive(envelopes, expression, out / "demo_emg_vs_curves.png",
                      truth=read_truth(truth).arkit if truth.is_file() else None)
    clock.done(f"plot: {plot.name}")

    first = report.frame_start
    last = report.frame_end if args.seconds <= 0 else min(report.frame_end, first + int(round(args.seconds * fps)) - 1)
    cpu = time.process_time()
    events = recording_events(emg)
    video, frames = _story_video(scene, report, events, out / "demo.mp4", first, last, args.step, height)
    render_cpu_s = time.process_time() - cpu
    clock.done(f"video: {video.name}, {frames} frames {face_width + _panel_width(height)}×{height} at "
               f"{fps / args.step:g} fps, face beside the EMG; {render_cpu_s:.0f} s CPU")
    if args.sheet_size:  # rest and the six emotions, each at its apex, in small Workbench stills
        from ..blender.jobs.contact_sheet import emotion_sheet

        cpu = time.process_time()
        setup_stage(scene, face, resolution_px=_even(args.sheet_size))
        scene.display.render_aa = "FXAA"
        sheet, shown = emotion_sheet(scene, expression, report.result.first_frame, events, out / "demo_emotions.png")
        render_cpu_s += time.process_time() - cpu
        clock.done(f"contact sheet: {sheet.name}, {', '.join(shown)}")
    if args.still_resolution:  # one still in Cycles, at the smile of the example's happiness
        cpu = time.process_time()
        setup_stage(scene, face, resolution_px=args.still_resolution, engine="CYCLES")
        still = render_still(scene, min(last, int(round(STILL_AT_S * fps)) + 1), out / "demo_frame.png")
        render_cpu_s += time.process_time() - cpu
        clock.done(f"still: {still.name} (Cycles, {args.still_resolution} px)")
    print(f"rendering took {render_cpu_s:.0f} s CPU in all")
    print(f"demo written to {out} in {clock.total_s:.0f} s")
    return 0


class _Stages:
    """Wall time per stage, for the one line each prints."""

    def __init__(self):
        self.start = self.last = time.perf_counter()

    def done(self, line: str) -> None:
        now = time.perf_counter()
        print(f"{line} ({now - self.last:.1f} s)", flush=True)
        self.last = now

    @property
    def total_s(self) -> float:
        return time.perf_counter() - self.start


def _even(value: float) -> int:
    return max(2, 2 * int(round(value / 2)))


def _panel_width(height: int) -> int:
    return _even(max(1.5 * height, 360))


def _story_video(scene, report, events, path: Path, first: int, last: int, step: int, height: int):
    """The face beside the EMG panel, with the events' labels: (what was written, frames rendered)."""
    import tempfile

    from ..blender.jobs.render import render_story_video
    from ..core.analysis.trace_panel import draw_trace_panel

    envelopes, expression = report.result.envelopes, report.result.expression
    fps = envelopes.fps

    def time_s(frame: int) -> float:
        return envelopes.start_s + (frame - report.result.first_frame) / fps

    def frame(time: float) -> int:
        return report.result.first_frame + int(round((time - envelopes.start_s) * fps))

    labels = [(frame(onset), frame(onset + duration), label.split("/")[-1])
              for onset, duration, label in events if "blink" not in label.lower()]
    with tempfile.TemporaryDirectory(prefix="eifer-demo-") as folder:
        panel = draw_trace_panel(envelopes, expression, Path(folder) / "panel.png", width_px=_panel_width(height),
                                 height_px=height, start_s=time_s(first), end_s=time_s(max(last, first + 1)),
                                 events=events)
        written = render_story_video(scene, panel, path, first, last, frame_step=step, labels=labels)
    return written, len(range(first, last + 1, step))


def recording_events(emg: Path) -> list[tuple[float, float, str]]:
    """(onset_s, duration_s, label) of the recording: its BIDS ``_events.tsv`` sidecar (which the
    simulator writes with the blinks), else the file's own annotations."""
    import csv

    from ..core.recording import open_recording
    from ..core.simulator.session import truth_paths

    sidecar = truth_paths(emg)[1]
    if sidecar.is_file():
        with open(sidecar, newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.DictReader(handle, delimiter="\t") if _seconds(row.get("onset")) is not None]
        return [(_seconds(row["onset"]), _seconds(row.get("duration")) or 0.0, row.get("trial_type") or "event")
                for row in rows]
    return [(a.onset_s, a.duration_s, a.description) for a in open_recording(emg).annotations]


def _seconds(text) -> float | None:
    """A BIDS events cell in seconds; None for "n/a" or an empty cell."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return None

