"""The Blender version matrix: the smoke flow of the built linux zip in each extra Blender version.

    python tests/smoke/matrix.py [--zip dist/eifer_blender-<version>-linux_x64.zip] [--only bpy45]

Each ``requirements-bpy*.txt`` in the repository root is one Blender version: its first line names
the CPython (``# python: 3.13``), the rest pins bpy (and numpy). For each, a virtual environment
``.venv-bpy*/`` is created or refreshed when the file changes (like ``.venv``), with nothing but
bpy and what bpy itself needs, and ``tests/smoke/smoke_flow.py`` runs in it on the zip. The full test
suite covers bpy 5.0.1 in ``.venv``. Prints each step's time and, last, ``matrix: N passed, M failed``.
Python interpreters are found as ``$PYTHON311``/``$PYTHON313``, ``python3.X`` on the PATH, or under
``$PYENV_ROOT/versions`` (``~/.pyenv``).
"""
from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SMOKE = Path(__file__).resolve().parent / "smoke_flow.py"
sys.path.insert(0, str(REPO_ROOT / "scripts"))
from fetch_wheels import WheelError, find_python  # noqa: E402  (one finder for lock and matrix)

SUMMARY = re.compile(r"^smoke: (\d+) passed, (\d+) failed(?:, (\d+) skipped)?$", re.M)


def python_version_of(requirements: Path) -> str:
    first = requirements.read_text().splitlines()[0]
    match = re.fullmatch(r"#\s*python:\s*(3\.\d+)\s*", first)
    if match is None:
        raise SystemExit(f"{requirements}: the first line must name the CPython, e.g. '# python: 3.13'")
    return match.group(1)


def ensure_venv(requirements: Path) -> tuple[Path, float]:
    """``.venv-<name>/bin/python`` with the requirements installed; rebuilt when the file changed."""
    name = requirements.stem.removeprefix("requirements-")
    venv = REPO_ROOT / f".venv-{name}"
    stamp = venv / f".installed-{hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]}"
    python = venv / "bin" / "python"
    if stamp.exists() and python.exists():
        return python, 0.0
    started = time.perf_counter()
    if venv.exists():
        shutil.rmtree(venv)
    base = find_python(python_version_of(requirements))
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                              "-r", str(requirements)], capture_output=True, text=True)
    if install.returncode != 0:  # pip's output only when it failed: it warns a lot about local mirrors
        print(install.stdout[-3000:] + install.stderr[-3000:], file=sys.stderr)
        raise subprocess.CalledProcessError(install.returncode, install.args)
    stamp.touch()
    return python, time.perf_counter() - started


def default_zip() -> Path:
    zips = sorted((REPO_ROOT / "dist").glob("eifer_blender-*-linux_x64.zip"))
    if not zips:
        raise SystemExit("no dist/eifer_blender-*-linux_x64.zip: run `make zips` first")
    return zips[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zip", type=Path, help="the linux-x64 zip (default: the one in dist/)")
    parser.add_argument("--only", action="append", help="run only these (e.g. bpy45); repeatable")
    parser.add_argument("--models", type=Path, help="passed on to smoke_flow.py")
    args = parser.parse_args(argv)
    zip_path = (args.zip or default_zip()).resolve()
    entries = sorted(REPO_ROOT.glob("requirements-bpy*.txt"))
    if args.only:
        entries = [e for e in entries if e.stem.removeprefix("requirements-") in args.only]
    totals, rows = [0, 0, 0], []
    for requirements in entries:
        name = requirements.stem.removeprefix("requirements-")
        print(f"== {name}: {zip_path.name}", flush=True)
        try:
            python, venv_s = ensure_venv(requirements)
        except (subprocess.CalledProcessError, WheelError, SystemExit) as exc:
            print(f"FAIL {name}: could not make its environment: {exc}", flush=True)
            totals[1] += 1
            rows.append((name, "environment failed", 0.0, 0.0))
            continue
        started = time.perf_counter()
        command = [str(python), str(SMOKE), str(zip_path)] + (["--models", str(args.models)] if args.models else [])
        result = subprocess.run(command, capture_output=True, text=True)
        smoke_s = time.perf_counter() - started
        print(result.stdout, end="", flush=True)
        if result.returncode != 0:
            print(result.stderr[-4000:], end="", file=sys.stderr, flush=True)
        summary = SUMMARY.findall(result.stdout)
        if not summary:
            totals[1] += 1
            rows.append((name, f"no summary, exit {result.returncode}", venv_s, smoke_s))
            continue
        passed, failed, skipped = (int(x or 0) for x in summary[-1])
        totals = [totals[0] + passed, totals[1] + failed, totals[2] + skipped]
        rows.append((name, f"{passed} passed, {failed} failed, {skipped} skipped", venv_s, smoke_s))
    print("\nversion  environment_s  smoke_s  result")
    for name, outcome, venv_s, smoke_s in rows:
        print(f"{name:<8} {venv_s:13.1f} {smoke_s:8.1f}  {outcome}")
    print(f"matrix: {totals[0]} passed, {totals[1]} failed" + (f", {totals[2]} skipped" if totals[2] else ""))
    return 0 if totals[1] == 0 and rows else 1


if __name__ == "__main__":
    sys.exit(main())
