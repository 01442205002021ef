"""The EMG panel of a story video: the main channels' envelopes over a clip, with its events.

One image for the whole clip, drawn once; the video moves a time cursor over it. The image's
plot area is returned in pixels, so the cursor lands on the right time.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..tracks import Track
from .plots import CHANNEL_SHAPES, pyplot, save_figure

BACKGROUND = "#1c1c20"  # close to the render's world colour, so the face and the panel sit together
TEXT = "#d8d8dc"
ENVELOPE = "#ff6a4d"
SHAPE = "#7cc4ff"


@dataclass(frozen=True)
class TracePanel:
    path: Path
    width_px: int
    height_px: int
    plot_box_px: tuple[int, int, int, int]  # left, top, right, bottom of the plot area, from the top left:
    # its left edge is the clip's start, its right edge the clip's end
    background_rgb: tuple[float, float, float] = (0.0, 0.0, 0.0)  # sRGB 0–1, to lay the face on


def main_channels(envelopes: Track, expression: Track, pairs=CHANNEL_SHAPES,
                  most: int = 6) -> list[tuple[str, str | None]]:
    """(channel, shape it mainly drives or None) for the panel: the project's pairs the recording
    covers, else its first channels."""
    chosen = [(c, s if s in expression.names else None) for c, s in pairs if c in envelopes.names]
    if not chosen:
        chosen = [(c, None) for c in envelopes.names]
    return chosen[:most]


def draw_trace_panel(envelopes: Track, expression: Track, path: str | Path, *, width_px: int, height_px: int,
                     start_s: float, end_s: float, events=(), pairs=CHANNEL_SHAPES) -> TracePanel:
    """Draw the envelopes of the main channels (each scaled to its own peak in the clip) and the
    shape weights they drove between ``start_s`` and ``end_s``, with ``events`` ((onset_s,
    duration_s, label) tuples; blinks as ticks, others as labelled bands), as a PNG of exactly
    ``width_px`` x ``height_px``."""
    if not end_s > start_s:
        raise ValueError(f"the clip must end after it starts, got {start_s}–{end_s} s")
    plt = pyplot()
    dpi = 100
    fig = plt.figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi, facecolor=BACKGROUND)
    # fixed margins in pixels (not tight_layout), so the plot area is known exactly; text and
    # margins are sized for a 384 px panel and shrink with smaller ones
    scale = max(0.6, min(1.0, height_px / 384))
    left, right, top, bottom = (int(round(m * scale)) for m in (84, 10, 30, 24))
    box = (left, top, width_px - right, height_px - bottom)
    ax = fig.add_axes((left / width_px, bottom / height_px, (width_px - left - right) / width_px,
                       (height_px - top - bottom) / height_px), facecolor=BACKGROUND)
    rows = main_channels(envelopes, expression, pairs)
    t_env, t_exp = envelopes.times_s, expression.times_s
    in_env = (t_env >= start_s) & (t_env <= end_s)
    in_exp = (t_exp >= start_s) & (t_exp <= end_s)
    for row, (channel, shape) in enumerate(rows):
        base = len(rows) - 1 - row
        values = envelopes.column(channel)[in_env]
        peak = float(np.percentile(values, 99.5)) if values.size else 0.0
        scaled = np.clip(values / peak, 0.0, 1.0) if peak > 0 else np.zeros_like(values)
        ax.fill_between(t_env[in_env], base, base + 0.85 * scaled, color=ENVELOPE, alpha=0.55, lw=0)
        ax.plot(t_env[in_env], base + 0.85 * scaled, color=ENVELOPE, lw=0.7)
        if shape is not None:
            ax.plot(t_exp[in_exp], base + 0.85 * expression.column(shape)[in_exp], color=SHAPE, lw=0.9)
        label = channel if shape is None else f"{channel}\n{shape}"
        ax.text(start_s - 0.01 * (end_s - start_s), base + 0.42, label, ha="right", va="center",
                color=TEXT, fontsize=6.5 * scale, linespacing=1.0)
    for onset, duration, label in events:
        if onset + duration < start_s or onset > end_s:
            continue
        if "blink" in label.lower():
            ax.plot([onset, onset], [len(rows) - 0.08, len(rows)], color=TEXT, lw=0.6, alpha=0.6)
            continue
        ax.axvspan(onset, onset + duration, color="#ffffff", alpha=0.07, lw=0)
        centre = min(max(onset + duration / 2, start_s), end_s)
        ax.text(centre, len(rows) + 0.05, label.split("/")[-1], ha="center", va="bottom", color=TEXT,
                fontsize=7 * scale, clip_on=False)
    ax.set_xlim(start_s, end_s)
    ax.set_ylim(0, len(rows))
    ax.set_yticks([])
    ax.tick_params(axis="x", colors=TEXT, labelsize=6.5 * scale, length=2, pad=1)
    for side, spine in ax.spines.items():
        spine.set_visible(side == "bottom")
        spine.set_color(TEXT)
    ax.set_xlabel("")
    fig.text(box[2] / width_px, 4 / height_px, "s", color=TEXT, fontsize=6.5 * scale, ha="right", va="bottom")
    fig.text(4 / width_px, 1 - 4 / height_px, "EMG envelope", color=ENVELOPE, fontsize=7 * scale, va="top")
    fig.text(4 / width_px, 1 - 16 * scale / height_px, "shape weight", color=SHAPE, fontsize=7 * scale, va="top")
    path = save_figure(fig, path, dpi=dpi, tight=False)  # (the figure's own background colour)
    rgb = tuple(int(BACKGROUND[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return TracePanel(path, width_px, height_px, box, rgb)
