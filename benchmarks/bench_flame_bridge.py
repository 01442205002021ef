"""Speed of the ARKit ↔ FLAME bridge, on a synthetic FLAME-layout face with FLAME's real sizes.

The model (5023 vertices, 300 identity + 100 expression components, 5 joints) is the open head
remeshed and warped by ``tests.flame_fixtures.make_face_flame_arrays``, written as an ``.npz``.
Row 1: building the bridge from the file with an empty cache (read, hash, register, transfer,
fit, reverse, write the cache); goal ≤ 10 s on 2 cores. Baseline, same run: loading the FLAME
model from the same file, which any use of the file pays. Row 2: the cached load (what every
later Drive / Infer pays); goal ≤ 0.1 s. Baseline: hashing the file, which the cache index
saves.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.timing import interleaved, median, timing_note

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def rows() -> list[dict]:
    from eifer_blender.core.heads import bridge
    from eifer_blender.core.heads.flame_file import load_flame_model
    from tests.flame_fixtures import make_face_flame_arrays, write_flame_npz

    arrays, _ = make_face_flame_arrays(n_vertices=5023, n_expression=100, seed=0)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        path = write_flame_npz(folder / "flame_layout_face.npz", arrays)
        cache = folder / "cache"
        built = {}

        def empty_cache():
            shutil.rmtree(cache, ignore_errors=True)

        build_times = interleaved(
            {"build": lambda: built.update(b=bridge.load_or_build_bridge(path, cache)),
             "load model": lambda: load_flame_model(path)}, setup=empty_cache)
        empty_cache()
        cpu_started = time.process_time()  # CPU seconds of all threads: load-independent
        bridge.load_or_build_bridge(path, cache)  # fill the cache (and its hash index)
        cpu_s = time.process_time() - cpu_started
        load_times = interleaved({"cached": lambda: bridge.load_or_build_bridge(path, cache),
                                  "sha256": lambda: bridge.file_sha256(path)}, repeats=10)
        size_mb = path.stat().st_size / 1e6
    result = built["b"]
    name, worst = result.worst_residual()
    build_s, model_s = median(build_times["build"]), median(build_times["load model"])
    cached_s, hash_s = median(load_times["cached"]), median(load_times["sha256"])
    return [
        {"measure": "build ARKit<->FLAME bridge from the file, 5023 v, 100 exp, cold cache",
         "value": build_s, "unit": "s", "baseline": model_s, "ratio": build_s / model_s,
         "note": f"goal <= 10 s on 2 cores; baseline = loading the FLAME model file "
                 f"({size_mb:.0f} MB npz); worst driven-shape residual {worst:.1%} ({name}), "
                 f"registration {result.registration_residual_m * 1e3:.2f} mm; CPU time of "
                 f"one build {cpu_s:.2f} s; "
                 f"{timing_note(build_times)}"},
        {"measure": "load the cached bridge", "value": cached_s * 1e3, "unit": "ms",
         "baseline": hash_s * 1e3, "ratio": cached_s / hash_s,
         "note": f"goal <= 100 ms; baseline = sha256 of the FLAME file, which the cache "
                 f"index (size + mtime) saves; {timing_note(load_times, 1e3, 'ms')}"},
    ]
