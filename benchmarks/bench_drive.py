"""Keyframing and driving: the fast path against Blender's per-key insert, and against real time."""
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._blender import bpy, empty_scene
from eifer_blender.blender.anim import keyframes
from eifer_blender.blender.jobs.drive import drive
from eifer_blender.blender.rigs.openhead import build_open_head
from eifer_blender.core.expression.spaces import ARKIT52
from eifer_blender.core.recording import write_recording
from eifer_blender.core.simulator.session import simulate_session

N_FRAMES = 108_000  # one hour at 30 fps
SUBSET_FRAMES = 2_000


def _face_paths(face):
    return [f'key_blocks["{name}"].value' for name in ARKIT52]


def _fast_keys():
    face = build_open_head(bpy.context.scene.collection)
    values = np.random.default_rng(0).random((N_FRAMES, len(ARKIT52)), dtype=np.float32)
    frames = np.arange(1, N_FRAMES + 1, dtype=np.float32)
    started = time.perf_counter()
    _, bag = keyframes.new_action(face.data.shape_keys, "bench")
    keyframes.write_curves(bag, _face_paths(face), frames, values)
    return time.perf_counter() - started


def _insert_keys_per_key():
    """keyframe_insert on a subset: seconds per key (long curves make it slower, so this flatters it)."""
    face = build_open_head(bpy.context.scene.collection)
    blocks = face.data.shape_keys.key_blocks
    values = np.random.default_rng(0).random(SUBSET_FRAMES)
    started = time.perf_counter()
    block = blocks[ARKIT52[0]]
    for frame, value in enumerate(values, start=1):
        block.value = float(value)
        block.keyframe_insert("value", frame=frame)
    return (time.perf_counter() - started) / SUBSET_FRAMES


def _drive_ten_minutes():
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ten_minutes.edf"
        session = simulate_session("mixed", subject=11, duration_s=600.0, rate_hz=2048.0, fps=30.0, seed=1)
        write_recording(session.recording, path)
        scene = empty_scene()
        scene.render.fps = 30
        face = build_open_head(scene.collection)
        started = time.perf_counter()
        report = drive(face, str(path), scene=scene)
        elapsed = time.perf_counter() - started
    return elapsed, report.frame_end - report.frame_start + 1


def rows():
    empty_scene()
    fast = _fast_keys()
    empty_scene()
    per_key = _insert_keys_per_key()
    naive = per_key * N_FRAMES * len(ARKIT52)
    seconds, n_frames = _drive_ten_minutes()
    return [
        {"measure": "key 52 shapes x 108 000 frames (fast path)", "value": fast, "unit": "s",
         "baseline": naive, "ratio": naive / fast,
         "note": f"baseline: keyframe_insert, {SUBSET_FRAMES} keys timed and scaled (goal >=100x, <=5 s)"},
        {"measure": "drive open head from a 10-min EDF (2048 Hz, 22 ch), no render", "value": seconds, "unit": "s",
         "baseline": 600.0, "ratio": 600.0 / seconds,
         "note": f"baseline: the recording's own length (real time); {n_frames} frames keyed; goal <=10 s"},
    ]
