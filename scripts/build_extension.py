"""Validate and build the extension zip with Blender's own tool (``blender_ext.py`` from the bpy wheel).

Usage: python scripts/build_extension.py [--output-dir dist]
Prints the path of each zip built. Exits non-zero when validation or the build fails.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIR = REPO_ROOT / "eifer_blender"


def blender_scripts_dir() -> Path:
    """``<site-packages>/bpy/<version>/scripts`` of the installed bpy wheel (found without importing bpy)."""
    import importlib.util

    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("bpy is not installed in this Python; run `make venv` first")
    bpy_dir = Path(list(spec.submodule_search_locations)[0])
    candidates = sorted(bpy_dir.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not candidates:
        raise SystemExit(f"blender_ext.py not found under {bpy_dir}")
    return candidates[-1].parents[3]


def blender_ext(*args: str) -> list[str]:
    scripts = blender_scripts_dir()
    return [sys.executable, str(scripts / "addons_core/bl_pkg/cli/blender_ext.py"), *args]


def valid_tags() -> str:
    return str(blender_scripts_dir() / "modules/_bpy_internal/extensions/tags.py")


def validate(path: Path) -> None:
    subprocess.run(blender_ext("validate", "--valid-tags", valid_tags(), str(path)), check=True)


def build(output_dir: Path) -> list[Path]:
    output_dir.mkdir(parents=True, exist_ok=True)
    validate(SOURCE_DIR)
    before = set(output_dir.glob("*.zip"))
    subprocess.run(blender_ext("build", "--source-dir", str(SOURCE_DIR), "--output-dir", str(output_dir),
                               "--valid-tags", valid_tags()), check=True)
    built = sorted(set(output_dir.glob("*.zip")) - before) or sorted(output_dir.glob("eifer_blender-*.zip"))
    for zip_path in built:
        validate(zip_path)
        print(f"built {zip_path} ({zip_path.stat().st_size / 1e6:.1f} MB)")
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "dist")
    args = parser.parse_args()
    build(args.output_dir)


if __name__ == "__main__":
    main()
