"""Shared test set-up.

Blender tests load the extension exactly as a user's Blender does: through a local extension
repository, so the package is ``bl_ext.dev_repo.eifer_blender`` with working preferences and
``extension_path_user``. One Blender per worker process (pytest-xdist gives processes).
"""
import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
EXTENSION_ID = "eifer_blender"
REPO_MODULE = "dev_repo"
EXTENSION_MODULE = f"bl_ext.{REPO_MODULE}.{EXTENSION_ID}"

# Blender reads this once, when bpy is first imported: keep the user's own config out of tests.
_USER_RESOURCES = tempfile.mkdtemp(prefix="eifer-blender-user-")
os.environ["BLENDER_USER_RESOURCES"] = _USER_RESOURCES
atexit.register(shutil.rmtree, _USER_RESOURCES, ignore_errors=True)

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def _enable_extension():
    import bpy  # first: addon_utils is a module of the Blender that bpy brings
    import addon_utils  # noqa: I001

    repo_dir = Path(_USER_RESOURCES) / "dev_extensions"
    _link_extension(repo_dir / EXTENSION_ID)
    repos = bpy.context.preferences.extensions.repos
    if REPO_MODULE not in [r.module for r in repos]:
        repos.new(name="EIFER dev", module=REPO_MODULE, custom_directory=str(repo_dir), source="USER")
    addon_utils.enable(EXTENSION_MODULE, default_set=True, handle_error=_raise)
    return sys.modules[EXTENSION_MODULE]


def _link_extension(folder: Path) -> None:
    """The extension as Blender installs it: the package's files plus the top-level manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    for entry in [*(REPO_ROOT / EXTENSION_ID).iterdir(), REPO_ROOT / "blender_manifest.toml"]:
        link = folder / entry.name
        if entry.name != "__pycache__" and not link.exists():
            link.symlink_to(entry, target_is_directory=entry.is_dir())


def _raise(exc):
    raise exc


@pytest.fixture(scope="session")
def extension():
    """The enabled extension package (``bl_ext.dev_repo.eifer_blender``)."""
    return _enable_extension()


@pytest.fixture
def blender(extension):
    """A fresh empty scene with the extension enabled; yields the extension package."""
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    yield extension
    bpy.ops.wm.read_homefile(use_empty=True)


@pytest.fixture
def rf(blender):
    """The extension's FLAME rig modules (``tests.helpers.FLAME_RIG``), for the FLAME test files."""
    from tests.helpers import FLAME_RIG, extension_modules

    return extension_modules(*FLAME_RIG)


@pytest.fixture
def fp(blender):
    """The extension's FLAME parameter modules (``tests.helpers.FLAME_PARAMS``)."""
    from tests.helpers import FLAME_PARAMS, extension_modules

    return extension_modules(*FLAME_PARAMS)
