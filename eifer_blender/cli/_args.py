"""Argument helpers shared by the headless commands (bpy-free, so ``--help`` stays light)."""
from __future__ import annotations

from ..core.errors import InputError

# core.network.providers.PROVIDER_PREFERENCES, written out: importing the network stage pulls in
# scipy and would slow ``--help`` (a test keeps the two equal)
PROVIDER_CHOICES = ("auto", "cpu", "cuda", "directml", "coreml")


def parse_frames(text: str | None) -> tuple[int, int] | None:
    """``"A:B"`` → (A, B), inclusive scene frames."""
    if not text:
        return None
    try:
        first, last = (int(part) for part in text.split(":"))
    except ValueError:
        raise InputError(f"--frames must look like FIRST:LAST (e.g. 1:250), got {text!r}") from None
    if last < first:
        raise InputError(f"--frames {text}: the last frame comes before the first")
    return first, last



def add_render_arguments(parser) -> None:
    parser.add_argument("--render", metavar="VIDEO", help="also render the driven frames to this .mp4")
    parser.add_argument("--frames", metavar="A:B", help="frames to key and render, inclusive (default: all)")
    parser.add_argument("--render-frames", metavar="A:B", help="render only these frames (default: --frames)")
    parser.add_argument("--resolution", type=int, default=512, help="square render size in pixels (default 512)")
    parser.add_argument("--engine", choices=("workbench", "cycles"), default="workbench",
                        help="render engine (default workbench: fast on CPU)")


def add_recording_arguments(parser, *, nan: bool = True) -> None:
    """Options saying how to read a lab's recording: which channel is which muscle, units, gaps."""
    parser.add_argument("--map", action="append", default=[], metavar="CHANNEL=SITE",
                        help="which muscle a channel records, e.g. --map EMG_zyg=Zyg_L, or a headerless "
                             "file's column by number, --map 3=Corr_L (repeatable; SITE 'none' leaves a "
                             "channel out); channels are otherwise guessed from their names")
    parser.add_argument("--map-file", metavar="FILE.tsv",
                        help="a channel map: two columns, channel and site, one row per channel")
    parser.add_argument("--side", choices=("left", "right"),
                        help="side of channels whose names give a muscle but no side (EMG_zyg)")
    parser.add_argument("--mirror", action="store_true",
                        help="copy a one-sided recording's sites to the other side (Zyg_L also drives Zyg_R)")
    parser.add_argument("--units", choices=("uV", "mV", "V"),
                        help="units of a file that does not state them (CSV, EDF with an empty dimension)")
    if nan:
        parser.add_argument("--nan", choices=("raise", "zero", "interpolate"), default="raise",
                            help="missing samples (NULL/NaN cells): stop with an error (default), set them "
                                 "to 0, or interpolate across gaps up to 0.5 s")


def add_csv_arguments(parser, *, kind: bool = True) -> None:
    """How to read a CSV: its sampling rate when it has no time column, and (``kind``) what it holds."""
    parser.add_argument("--rate", type=float, default=None, metavar="HZ",
                        help="sampling rate of a CSV without a time column")
    if kind:
        parser.add_argument("--csv-kind", choices=("auto", "raw", "envelope"), default="auto",
                            help="what a CSV holds (default: detect)")


def recording_options(args) -> dict:
    """The recording options of :func:`add_recording_arguments` as keyword arguments (map, side, …)."""
    from ..core.recording.channel_map import parse_map_items, read_map_file

    mapping = read_map_file(args.map_file) if args.map_file else {}
    for key, site in parse_map_items(args.map).items():
        mapping[key] = site  # --map wins over the file
    return {"channel_map": tuple(mapping.items()) or None, "side": args.side, "mirror": args.mirror,
            "units": args.units, "nan_policy": getattr(args, "nan", "raise")}


def notch_setting(text: str):
    """``--notch auto|50|60|off`` as ``ProcessingSettings.notch_hz``."""
    if text == "auto":
        return "auto"
    if text == "off":
        return ()
    return (float(text),)


def print_track_report(track) -> None:
    """What the envelopes came from: the channel map, the mains notch, every warning."""
    meta = track.meta
    if meta.get("channel_map"):
        print(f"channels: {meta['channel_map']}")
    mains = meta.get("processing", {}).get("mains")
    if mains:
        print(f"mains: {mains}")
    for warning in meta.get("warnings", ()):
        print(f"warning: {warning}")


def print_mesh_report(meshes) -> None:
    """Each mesh of the face's character: the ARKit shapes it carries, keyed, and its other shape keys."""
    if len(meshes) < 2 and not any(m.unmatched for m in meshes):
        return
    from ..core.expression.spaces import ARKIT52

    for mesh in meshes:
        keyed = f", keyed {len(mesh.keyed)}" if mesh.keyed else ", not keyed"
        if len(mesh.matched) <= 12:
            shapes = f"{len(mesh.matched)} ARKit shapes ({', '.join(mesh.matched) or 'none'})"
        else:
            lacks = [n for n in ARKIT52 if n not in mesh.matched]
            shapes = f"{len(mesh.matched)} ARKit shapes" + (f" (all but {', '.join(lacks)})" if lacks else " (all)")
        print(f"mesh {mesh.name}: {shapes}{keyed}")
        if mesh.unmatched:
            print(f"  no ARKit name (map them in the mapping table): {', '.join(mesh.unmatched)}")


def print_left_out(scene, face) -> list:
    """Name the objects a render of ``face`` leaves out (importer helpers, objects hidden in the viewport)."""
    from ..blender.jobs.framing import left_out_of_render

    left_out = left_out_of_render(scene, face)
    if left_out:
        print(f"left out of the render: {', '.join(o.name for o in left_out)} (hidden in the viewport or "
              f"importer helpers)")
    return left_out


VIDEO_SUFFIXES = (".mp4",)
PLOT_SUFFIXES = (".png", ".pdf", ".svg")


def require_suffix(option: str, path, suffixes, what: str) -> None:
    """Refuse an output whose extension is not what the command writes there (before any work)."""
    from pathlib import Path

    if path is not None and Path(path).suffix.lower() not in suffixes:
        raise InputError(f"{option} {path}: {what} is written as {' or '.join(suffixes)}")


def require_number(option: str, value, *, minimum: float | None = None, above: float | None = None) -> None:
    """Refuse a non-finite option value, or one below ``minimum`` / not above ``above``."""
    import math

    if value is None:
        return
    if not math.isfinite(value):
        raise InputError(f"{option} must be a finite number, got {value}")
    if minimum is not None and value < minimum:
        raise InputError(f"{option} must be at least {minimum:g}, got {value:g}")
    if above is not None and not value > above:
        raise InputError(f"{option} must be more than {above:g}, got {value:g}")


def check_render_arguments(args) -> None:
    """The render options of :func:`add_render_arguments`, checked before anything runs."""
    require_suffix("--render", args.render, VIDEO_SUFFIXES, "a video")
    require_number("--resolution", args.resolution, above=0)


def register_sidebar_settings() -> None:
    """The sidebar's settings (``scene.eifer``), so a .blend the command line saves carries them:
    registered by the extension inside Blender, here when the command line runs as
    ``python -m eifer_blender`` (a no-op when they are registered already)."""
    import bpy

    if hasattr(bpy.types.Scene, "eifer"):
        return
    from ..blender.ui import properties

    for cls in properties.CLASSES:
        bpy.utils.register_class(cls)
    properties.register_properties()
