"""Where the ARKit ↔ FLAME bridge of a FLAME head is cached, and getting it for a head.

The bridge (:mod:`eifer_blender.core.heads.bridge`) derives from the user's FLAME file, so it is
cached in the user's folders only, never in the repository or the extension package:

- ``$EIFER_BRIDGE_CACHE`` when set (tests, clusters with a shared scratch folder);
- inside Blender, running as an extension: ``bpy.utils.extension_path_user(…, path="flame_bridge")``;
- otherwise ``$XDG_CACHE_HOME/eifer-blender/flame_bridge`` (default ``~/.cache/eifer-blender/…``).

:func:`bridge_for_head` gives the bridge of a FLAME head built by EIFER, from the FLAME file the
head was made from (its internal ``flame_source`` value), built on first use (a few seconds).
"""
from __future__ import annotations

import os
from pathlib import Path

from ...core.errors import InputError, ModelMismatchError
from ...core.heads.bridge import Bridge, Progress, load_or_build_bridge
from ..anim import internal
from .flame import SOURCE_KEY, FlameRig

CACHE_ENV = "EIFER_BRIDGE_CACHE"
CACHE_SUBFOLDER = "flame_bridge"


def _extension_package() -> str | None:
    """The extension's package name (``bl_ext.<repo>.eifer_blender``) when running as one."""
    package = __package__.removesuffix(".blender.rigs")
    return package if package.startswith("bl_ext.") else None


def bridge_cache_dir() -> Path:
    """The folder for cached bridges (see the module notes); not created here."""
    override = os.environ.get(CACHE_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    package = _extension_package()
    if package is not None:
        try:
            import bpy

            return Path(bpy.utils.extension_path_user(package, path=CACHE_SUBFOLDER, create=False))
        except (ImportError, ValueError, RuntimeError):
            pass  # not enabled as an extension after all: fall back to the user's cache folder
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base).expanduser() / "eifer-blender" / CACHE_SUBFOLDER


def head_flame_file(rig: FlameRig) -> Path:
    """The FLAME file a head was built from.

    Raises
    ------
    InputError
        The head does not say (built by an older version), or the file is not there any more.
    """
    source = str(internal.get(rig.mesh_obj, SOURCE_KEY, "") or "")
    if not source or source.startswith("<"):
        raise InputError(
            f"{rig.mesh_obj.name} does not record the FLAME file it was made from, so no ARKit→FLAME "
            f"bridge can be computed for it; add the head again from your FLAME file, or give an "
            f"ARKit→FLAME matrix file (--retarget / Retarget in the Drive panel)")
    path = Path(source)
    if not path.is_file():
        raise InputError(
            f"{rig.mesh_obj.name} was made from {path}, which is not there any more: the ARKit→FLAME "
            f"bridge is computed from it. Put the file back, or give an ARKit→FLAME matrix file "
            f"(--retarget)")
    return path


def bridge_for_head(rig: FlameRig, progress: Progress | None = None,
                    cache_dir: str | Path | None = None, otherwise: str = "") -> Bridge:
    """The ARKit ↔ FLAME bridge for ``rig``, from the cache or built (and cached) on first use.

    ``otherwise`` ends the error message: what the user can do instead (e.g. give a matrix).

    Raises
    ------
    ModelMismatchError
        No bridge for this head: its FLAME file is missing or unreadable, or its template is
        not a face (nothing is cached then); the message says why, with the registration
        residual.
    """
    try:
        return bridge_for_file(head_flame_file(rig), progress, cache_dir)
    except InputError as exc:
        raise ModelMismatchError(
            f"{rig.mesh_obj.name} is a FLAME head and the model works in ARKit-52 shapes, but no "
            f"ARKit↔FLAME bridge could be computed for it: {exc}" + (f" {otherwise}" if otherwise else "")
        ) from None


def bridge_for_file(flame_path: str | Path, progress: Progress | None = None,
                    cache_dir: str | Path | None = None) -> Bridge:
    """The bridge for a FLAME file, cached in :func:`bridge_cache_dir` (or ``cache_dir``)."""
    return load_or_build_bridge(flame_path, Path(cache_dir) if cache_dir else bridge_cache_dir(),
                                progress=progress)


def bridge_note(bridge: Bridge) -> str:
    """One line for a report: a computed bridge was used, how well it fits, cached or built."""
    how = "from the cache" if bridge.meta.get("cached") else "built now"
    return f"{bridge.summary()} ({how})"
