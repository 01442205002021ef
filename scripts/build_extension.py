"""Build the per-platform extension zips, wheels bundled, with Blender's own ``blender_ext.py``.

    python scripts/build_extension.py [--output-dir dist] [--cache DIR] [--no-wheels]

Steps: fetch the locked wheels (scripts/fetch_wheels.py; a warm cache downloads nothing), stage a
copy of ``eifer_blender/`` under ``build/extension/`` with the top-level ``blender_manifest.toml``,
the wheels in ``wheels/`` and their list in the staged manifest (the committed manifest lists
none, so the development checkout loads with the virtual environment's packages), validate it, build one zip per manifest platform with
``blender_ext.py build --split-platforms``, validate every zip, and print their sizes.
``--no-wheels`` builds the single platform-independent zip without wheels (quick, for development).
Exits 0 when every zip validated, 3 on a lock or fetch problem, 1 when Blender's tool fails.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIR = REPO_ROOT / "eifer_blender"
STAGE_DIR = REPO_ROOT / "build" / "extension" / "eifer_blender"
MANIFEST = "blender_manifest.toml"
MANIFEST_PATH = REPO_ROOT / MANIFEST  # the one manifest, beside the package (the user's design card)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fetch_wheels  # noqa: E402  (a sibling script, not a package)


def blender_scripts_dir() -> Path:
    """``<site-packages>/bpy/<version>/scripts`` of the installed bpy wheel (found without importing bpy)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("bpy is not installed in this Python; run `make venv` first")
    bpy_dir = Path(list(spec.submodule_search_locations)[0])
    candidates = sorted(bpy_dir.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not candidates:
        raise SystemExit(f"blender_ext.py not found under {bpy_dir}")
    return candidates[-1].parents[3]


def blender_ext(*args: str) -> list[str]:
    """Command line running Blender's extension tool with this Python."""
    return [sys.executable, str(blender_scripts_dir() / "addons_core/bl_pkg/cli/blender_ext.py"), *args]


def valid_tags() -> str:
    return str(blender_scripts_dir() / "modules/_bpy_internal/extensions/tags.py")


def validate(path: Path) -> None:
    """Run ``blender_ext.py validate`` on a source folder or a zip; raise on failure."""
    subprocess.run(blender_ext("validate", "--valid-tags", valid_tags(), str(path)), check=True)


def manifest_platforms(manifest_path: Path = MANIFEST_PATH) -> list[str]:
    """The ``platforms`` the manifest declares (one zip each)."""
    with open(manifest_path, "rb") as fh:
        return list(tomllib.load(fh).get("platforms", ()))


def manifest_with_wheels(text: str, wheel_names: list[str]) -> str:
    """The manifest text with a top-level ``wheels`` list (before the first table)."""
    if re.search(r"(?m)^\s*wheels\s*=", text):
        raise SystemExit(f"{MANIFEST_PATH}: lists wheels itself; the build adds them")
    listing = "wheels = [\n" + "".join(f'  "./wheels/{name}",\n' for name in wheel_names) + "]\n\n"
    table = re.search(r"(?m)^\[", text)
    at = table.start() if table else len(text)
    return text[:at] + listing + text[at:]


def stage(wheels: list[Path], stage_dir: Path = STAGE_DIR) -> Path:
    """Copy the package and the manifest to ``stage_dir``, with ``wheels/`` and their list when given."""
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    shutil.copytree(SOURCE_DIR, stage_dir, symlinks=False,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.blend1", "wheels"))
    text = MANIFEST_PATH.read_text()
    if not wheels:
        (stage_dir / MANIFEST).write_text(text)
        return stage_dir
    wheel_dir = stage_dir / "wheels"
    wheel_dir.mkdir()
    for wheel in wheels:
        try:
            os.link(wheel, wheel_dir / wheel.name)  # the cache is on the same disk: no 400 MB copy
        except OSError:
            shutil.copy2(wheel, wheel_dir / wheel.name)
    (stage_dir / MANIFEST).write_text(manifest_with_wheels(text, [w.name for w in wheels]))
    return stage_dir


def build(output_dir: Path, *, with_wheels: bool = True, cache_dir: Path = fetch_wheels.DEFAULT_CACHE) -> list[Path]:
    """Build, validate and return the extension zips.

    Parameters
    ----------
    output_dir : Path
        Where the zips go; earlier ``eifer_blender-*.zip`` there are removed first.
    with_wheels : bool
        Bundle the locked wheels and split per platform; otherwise one zip without wheels.
    cache_dir : Path
        The wheel cache of :mod:`fetch_wheels`.

    Returns
    -------
    list of Path
        One zip per manifest platform (``eifer_blender-<version>-<platform>.zip``), or one zip.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    for old in output_dir.glob("eifer_blender-*.zip"):
        old.unlink()
    validate(stage([]))
    if with_wheels:
        platforms = manifest_platforms()
        expected = [p.name for p in fetch_wheels.PLATFORMS]
        if sorted(platforms) != sorted(expected):
            raise SystemExit(f"{MANIFEST_PATH}: platforms {platforms} differ from the wheel "
                             f"platforms {expected} in scripts/fetch_wheels.py")
        started = time.perf_counter()
        wheels = fetch_wheels.fetch(cache_dir)
        print(f"{len(wheels)} wheels ready in {time.perf_counter() - started:.1f} s", flush=True)
        source = stage(wheels)
        validate(source)
        split = ["--split-platforms"]
    else:
        source, split = STAGE_DIR, []
    started = time.perf_counter()
    subprocess.run(blender_ext("build", "--source-dir", str(source), "--output-dir", str(output_dir),
                               "--valid-tags", valid_tags(), *split), check=True)
    built = sorted(output_dir.glob("eifer_blender-*.zip"))
    print(f"built {len(built)} zip(s) in {time.perf_counter() - started:.1f} s")
    for zip_path in built:
        validate(zip_path)
        with zipfile.ZipFile(zip_path) as archive:
            n_wheels = sum(1 for n in archive.namelist() if n.startswith("wheels/") and n.endswith(".whl"))
        print(f"validated {zip_path} ({zip_path.stat().st_size / 1e6:.1f} MB, {n_wheels} wheels)")
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "dist")
    parser.add_argument("--cache", type=Path, default=fetch_wheels.DEFAULT_CACHE, help="wheel cache")
    parser.add_argument("--no-wheels", action="store_true", help="one zip without wheels (development)")
    args = parser.parse_args(argv)
    try:
        build(args.output_dir, with_wheels=not args.no_wheels, cache_dir=args.cache)
    except fetch_wheels.WheelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except subprocess.CalledProcessError as exc:
        print(f"error: Blender's extension tool failed: {' '.join(map(str, exc.cmd[1:3]))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
