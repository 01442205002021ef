"""PNG plots for people: EMG envelopes against the curves they produced, recorded vs inferred."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import atomic_file
from ..tracks import Track

# Channel → the ARKit shapes it mainly drives (the same side), for the drive plot
CHANNEL_SHAPES = (
    ("Zyg_L", "mouthSmileLeft"), ("Corr_L", "browDownLeft"), ("medFront_L", "browInnerUp"),
    ("DAO_L", "mouthFrownLeft"), ("OrbOc_L", "cheekSquintLeft"), ("LLSup_L", "noseSneerLeft"),
)


def pyplot():
    """matplotlib's pyplot on the Agg back-end (no display: headless Blender, CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, *, dpi: int, tight: bool = True) -> Path:
    """Lay out (``tight``: matplotlib's tight layout; False keeps the figure's own margins), write
    whole or not at all, and close a matplotlib figure; returns the path."""
    if tight:
        fig.tight_layout()
    path = Path(path)
    try:
        with atomic_file(path) as temporary:
            fig.savefig(temporary, dpi=dpi, format=path.suffix.lstrip(".") or "png")
    finally:
        pyplot().close(fig)
    return path


def plot_drive(envelopes: Track, expression: Track, path: str | Path, *, truth: Track | None = None,
               pairs=CHANNEL_SHAPES, title: str = "EMG envelopes and the blendshape curves they drove") -> Path:
    """One row per (channel, shape) pair: the envelope (µV, left axis) and the shape weight (right axis)."""
    plt = pyplot()
    pairs = [(c, s) for c, s in pairs if c in envelopes.names and s in expression.names]
    fig, axes = plt.subplots(len(pairs), 1, figsize=(10, 1.6 * len(pairs) + 0.8), sharex=True, squeeze=False)
    for ax, (channel, shape) in zip(axes[:, 0], pairs):
        ax.plot(envelopes.times_s, envelopes.column(channel), color="tab:red", lw=0.9)
        ax.set_ylabel(f"{channel}\n({envelopes.units})", color="tab:red", fontsize=8)
        ax.tick_params(axis="y", labelcolor="tab:red", labelsize=7)
        twin = ax.twinx()
        twin.plot(expression.times_s, expression.column(shape), color="tab:blue", lw=1.1, label="driven curve")
        if truth is not None and shape in truth.names:
            twin.plot(truth.times_s, truth.column(shape), color="tab:blue", lw=0.8, ls="--", alpha=0.6,
                      label="ground truth")
        twin.set_ylim(-0.02, 1.02)
        twin.set_ylabel(shape, color="tab:blue", fontsize=8)
        twin.tick_params(axis="y", labelcolor="tab:blue", labelsize=7)
    handles = axes[0, 0].get_lines()[:1] + fig.axes[-1].get_lines()
    labels = ["EMG envelope"] + [line.get_label() for line in fig.axes[-1].get_lines()]
    fig.legend(handles, labels, loc="upper right", fontsize=8, ncol=len(labels))
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle(title, fontsize=10, x=0.02, ha="left")
    return save_figure(fig, path, dpi=110)


def plot_comparison(recorded: Track, inferred: Track, path: str | Path, *, names=None,
                    title: str = "Recorded vs inferred muscle activity") -> Path:
    """One small panel per channel: recorded and inferred curves over time."""
    plt = pyplot()
    names = [n for n in (names or recorded.names) if n in inferred.names]
    cols = 2
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(11, 1.3 * rows + 0.8), sharex=True, squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        ax.plot(recorded.times_s, recorded.column(name), color="tab:red", lw=0.8, label="recorded")
        ax.plot(inferred.times_s, inferred.column(name), color="tab:blue", lw=0.8, label="inferred")
        ax.set_title(name, fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path, dpi=100)
