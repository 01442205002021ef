"""Outputs written whole or not at all: into a temporary file beside the target, renamed at the end.

A failure (an error, a full disk, Ctrl-C) leaves an existing target untouched and no partial file
behind. ``os.replace`` is atomic on POSIX and Windows when both paths are on one file system,
which a temporary file in the target's own folder guarantees (Python docs, ``os.replace``).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import InputError


def _folder_for(path: Path) -> Path:
    folder = path.parent
    for ancestor in (folder, *folder.parents):
        if ancestor.exists():
            if not ancestor.is_dir():
                raise InputError(f"{path}: cannot write here, {ancestor} is a file, not a folder")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{path}: cannot make the folder {folder} ({exc.strerror or exc})") from None
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give a file name")
    return folder


def _umask() -> int:
    """This process's umask (reading it means setting it: set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """A temporary path with ``path``'s suffix, beside it, renamed onto ``path`` when the block ends.

    The writer inside the block writes the temporary path (its suffix picks the format as the
    target's would). On any exception, Ctrl-C included, the temporary file is removed and
    ``path`` keeps what it held.
    """
    path = Path(path)
    folder = _folder_for(path)
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith((".csv.gz", ".fif.gz")) else path.suffix
    handle, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{suffix}", dir=folder)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        # mkstemp makes the file private (0600); the output gets the mode any new file of the user
        # would (or the mode of the file it replaces)
        os.chmod(temporary, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """A temporary folder beside ``path`` whose *contents* are moved into ``path`` when the block
    ends (formats that write several files: BrainVision, a BIDS data set). Files already in
    ``path`` that the block did not write are kept; on any exception nothing in ``path`` changes
    and no folder is created."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: is a file; give a folder")
    parent = _folder_for(path) if not path.exists() else path.parent
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=parent))
    try:
        yield staging
        path.mkdir(parents=True, exist_ok=True)
        for item in sorted(staging.rglob("*")):
            target = path / item.relative_to(staging)
            if item.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(item, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
