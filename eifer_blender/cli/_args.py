"""Argument helpers shared by the headless commands (bpy-free, so ``--help`` stays light)."""
from __future__ import annotations

from ..core.errors import InputError


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
