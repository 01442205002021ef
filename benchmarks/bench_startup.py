"""Start-up in fresh processes: enabling the extension, ``--help``, a cold drive of the bundled example.

Each candidate is a new Python process (what a user starts), run in turn with its baseline
(interleaved, median of 5; min–max in the note). Baselines, the same process doing only what it
cannot avoid: ``import bpy`` for enabling the extension (timed inside the same processes, before
the extension is imported), an empty interpreter for ``--help``, and for the drive the imports it
needs (bpy, scipy.signal, MNE's EDF reader, ONNX Runtime) without the work, in a plain interpreter
with Python's default garbage-collector thresholds, which the command line raises
(``cli._fewer_collections``), so the drive can come in under its own imports. Ratios are costs,
value ÷ baseline (what the extension, the CLI and the drive add to what they cannot avoid). The processes
run with bytecode cached, as an installed copy runs (one uncounted warm-up writes it):
``PYTHONDONTWRITEBYTECODE`` is taken out of their environment, because a machine that sets it
recompiles the add-on's modules at every start (what compiling all of them takes is in the note).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.timing import median, spread

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = REPO_ROOT / "examples" / "recordings" / "simulated_emotions.edf"
REPEATS = 5
HEAVY = ("scipy.signal", "mne", "onnxruntime", "matplotlib", "torch")
ENABLE = ("import json, sys, time\nstarted = time.perf_counter()\nimport bpy\nafter_bpy = time.perf_counter()\n"
          "import eifer_blender\neifer_blender.register()\ndone = time.perf_counter()\n"
          f"print(json.dumps([after_bpy - started, done - after_bpy, [m for m in {HEAVY!r} if m in sys.modules]]))")
DRIVE_IMPORTS = "import bpy, scipy.signal, onnxruntime, mne.io.edf.edf"


def _wall(command: list[str], cwd: Path, env: dict) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} … exited {done.returncode}: {done.stderr[-800:]}")
    return elapsed


def _enable_once(cwd: Path, env: dict) -> tuple[float, float, list]:
    done = subprocess.run([sys.executable, "-c", ENABLE], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env=env)
    if done.returncode != 0:
        raise RuntimeError(f"enabling the extension failed: {done.stderr[-800:]}")
    bpy_s, extension_s, heavy = json.loads(done.stdout.strip().splitlines()[-1])
    return bpy_s, extension_s, heavy


def _compile_s() -> tuple[int, float]:
    """Modules of the package and the seconds to compile them all from source (one pass)."""
    sources = sorted((REPO_ROOT / "eifer_blender").rglob("*.py"))
    started = time.perf_counter()
    for path in sources:
        compile(path.read_text(encoding="utf-8"), str(path), "exec")
    return len(sources), time.perf_counter() - started


def rows():
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="eifer-bench-startup-") as folder:
        work = Path(folder)
        env = {**os.environ, "BLENDER_USER_RESOURCES": str(work / "user")}  # not the user's own Blender set-up
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        _wall([python, "-m", "eifer_blender", "drive", "--emg", str(EXAMPLE), "--out", str(work / "warm.blend")],
              work, env)
        enable, bpy_only, help_s, empty, drive, imports = [], [], [], [], [], []
        heavy: list = []
        for i in range(REPEATS):
            bpy_s, extension_s, heavy = _enable_once(work, env)
            bpy_only.append(bpy_s)
            enable.append(extension_s)
            help_s.append(_wall([python, "-m", "eifer_blender", "--help"], REPO_ROOT, env))
            empty.append(_wall([python, "-c", "pass"], work, env))
            drive.append(_wall([python, "-m", "eifer_blender", "drive", "--emg", str(EXAMPLE),
                                "--out", str(work / f"drive{i}.blend")], work, env))
            imports.append(_wall([python, "-c", DRIVE_IMPORTS], work, env))
    modules, compile_s = _compile_s()
    return [
        {"measure": "enable the extension in a fresh Blender process: import + register()", "value": median(enable),
         "unit": "s", "baseline": median(bpy_only), "ratio": median(enable) / median(bpy_only),
         "note": f"baseline: import bpy in the same processes; median of {REPEATS} processes (extension "
                 f"{spread(enable)}, bpy {spread(bpy_only)}); heavy modules loaded: {', '.join(heavy) or 'none'}"},
        {"measure": "eifer --help, fresh process (wall)", "value": median(help_s), "unit": "s",
         "baseline": median(empty), "ratio": median(help_s) / median(empty),
         "note": f"baseline: an empty interpreter; goal <= 1 s; median of {REPEATS}, interleaved "
                 f"(help {spread(help_s)}, empty {spread(empty)})"},
        {"measure": "cold drive of the bundled example to a .blend, fresh process (wall)", "value": median(drive),
         "unit": "s", "baseline": median(imports), "ratio": median(drive) / median(imports),
         "note": f"45 s, 22 ch at 2048 Hz; baseline: the imports it needs and nothing else ({DRIVE_IMPORTS[7:]}); "
                 f"goal <= 2.5 s; median of {REPEATS}, interleaved (drive {spread(drive)}, imports {spread(imports)}); "
                 f"bytecode cached (without it, compiling the package's {modules} modules adds up to {compile_s:.2f} s)"},
    ]
