"""Keyframing and driving: the fast path against Blender's per-key insert, and against real time."""
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._blender import bpy, empty_scene
from benchmarks.timing import REPEATS, timing_note
from eifer_blender.blender.anim import keyframes
from eifer_blender.blender.jobs.drive import drive
from eifer_blender.blender.jobs.scene import save_blend
from eifer_blender.blender.rigs.openhead import build_open_head
from eifer_blender.core.expression.spaces import ARKIT52
from eifer_blender.core.recording import write_recording
from eifer_blender.core.simulator.session import simulate_session

N_FRAMES = 108_000  # one hour at 30 fps
SUBSET_FRAMES = 2_000


def _face_paths(face):
    return [f'key_blocks["{name}"].value' for name in ARKIT52]


def _key_both_ways():
    """The writer against the bare ``keyframe_points.add`` + ``foreach_set("co")`` path on the same
    keys, interleaved, REPEATS times each after a warm-up; also whether the keys written are the same."""
    face = build_open_head(bpy.context.scene.collection)
    key = face.data.shape_keys
    values = np.random.default_rng(0).random((N_FRAMES, len(ARKIT52)), dtype=np.float32)
    frames = np.arange(1, N_FRAMES + 1, dtype=np.float32)
    co = np.empty((len(ARKIT52), 2 * N_FRAMES), dtype=np.float32)
    co[:, 0::2], co[:, 1::2] = frames, values.T
    times = {"writer": [], "bare": []}
    same = True
    for repeat in range(REPEATS + 1):  # the first is a warm-up, not counted
        started = time.perf_counter()
        writer_action, bag = keyframes.new_action(key, "writer")
        written = keyframes.write_curves(bag, _face_paths(face), frames, values)
        writer_s = time.perf_counter() - started
        started = time.perf_counter()
        bare_action, bare_bag = keyframes.new_action(key, "bare")
        for column, path in enumerate(_face_paths(face)):
            points = bare_bag.fcurves.new(path).keyframe_points
            points.add(N_FRAMES)
            points.foreach_set("co", co[column])
        bare_s = time.perf_counter() - started
        got = np.empty(2 * N_FRAMES, dtype=np.float32)
        written[-1].keyframe_points.foreach_get("co", got)
        same &= bool(np.array_equal(got, co[-1]))
        # 5.6 M keys are ~400 MB an action: free both, so no repeat pays for the ones before
        key.animation_data.action = None
        bpy.data.actions.remove(writer_action)
        bpy.data.actions.remove(bare_action)
        if repeat:
            times["writer"].append(writer_s)
            times["bare"].append(bare_s)
    return times, same


def _read_back_both_ways():
    """A 10-minute animation of 52 curves read at every frame: ``sample_curve`` against the
    ``fcurve.evaluate`` loop it replaced, on the same curves; the largest difference."""
    face = build_open_head(bpy.context.scene.collection)
    n = 18_000
    values = np.random.default_rng(1).random((n, len(ARKIT52)), dtype=np.float32)
    _, bag = keyframes.new_action(face.data.shape_keys, "read")
    curves = keyframes.write_curves(bag, _face_paths(face), np.arange(1, n + 1, dtype=np.float32), values)
    at = np.arange(1, n + 1, dtype=np.float64)
    started = time.perf_counter()
    slow = np.array([[c.evaluate(float(f)) for f in at] for c in curves])
    evaluate_s = time.perf_counter() - started
    started = time.perf_counter()
    fast = np.array([keyframes.sample_curve(c, at) for c in curves])
    return evaluate_s, time.perf_counter() - started, float(np.abs(fast - slow).max())


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
    """The whole job a user runs: a fresh scene, the open head added, a 10-minute 4096 Hz EDF
    driven, the .blend saved; the recording is written before the clock starts."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ten_minutes.edf"
        session = simulate_session("mixed", subject=11, duration_s=600.0, rate_hz=4096.0, fps=30.0, seed=1)
        write_recording(session.recording, path)
        started = time.perf_counter()
        scene = empty_scene()
        scene.render.fps = 30
        face = build_open_head(scene.collection)
        report = drive(face, str(path), scene=scene)
        save_blend(str(Path(tmp) / "ten_minutes.blend"))
        elapsed = time.perf_counter() - started
    return elapsed, report.frame_end - report.frame_start + 1


def rows():
    empty_scene()
    times, same = _key_both_ways()
    empty_scene()
    evaluate_s, read_s, read_diff = _read_back_both_ways()
    empty_scene()
    per_key = _insert_keys_per_key()
    naive = per_key * N_FRAMES * len(ARKIT52)
    seconds, n_frames = _drive_ten_minutes()
    writer, bare = float(np.median(times["writer"])), float(np.median(times["bare"]))
    return [
        {"measure": "key 52 shapes x 108 000 frames: writer vs bare add + foreach_set(co)", "value": writer,
         "unit": "s", "baseline": bare, "ratio": writer / bare,
         "note": f"{timing_note(times)}; same co: {same}; goal ratio <= 1.5; "
                 f"the writer also sets LINEAR interpolation, which the bare path leaves BEZIER"},
        {"measure": "read back 52 curves x 18 000 frames: sample_curve vs fcurve.evaluate", "value": read_s,
         "unit": "s", "baseline": evaluate_s, "ratio": evaluate_s / read_s,
         "note": f"ratio = speed-up (goal >= 5); largest difference {read_diff:.2g}"},
        {"measure": "key 52 shapes x 108 000 frames: writer vs keyframe_insert", "value": writer, "unit": "s",
         "baseline": naive, "ratio": naive / writer,
         "note": f"the writer's median above; baseline: keyframe_insert, {SUBSET_FRAMES} keys timed and "
                 f"scaled (it gets slower as curves grow, so this flatters it)"},
        {"measure": "drive open head from a 10-min EDF (4096 Hz, 22 ch): scene, drive, save", "value": seconds, "unit": "s",
         "baseline": 600.0, "ratio": 600.0 / seconds,
         "note": f"baseline: the recording's own length (real time); {n_frames} frames keyed; scene set-up and "
                 f"the .blend save included; goal <=10 s"},
    ]
