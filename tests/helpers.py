"""Helpers shared by the test modules."""
import importlib
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from tests.conftest import EXTENSION_MODULE, REPO_ROOT

#: real third-party facial EMG files (shared/ lies beside the checkout, in CI too)
REAL_DATA = REPO_ROOT.parent / "shared" / "data" / "real"
needs_real_data = pytest.mark.skipif(not REAL_DATA.is_dir(), reason="shared/data/real is not beside this checkout")


def extension_module(name: str):
    """A module of the enabled extension, e.g. ``extension_module("blender.rigs.flame")``."""
    return importlib.import_module(f"{EXTENSION_MODULE}.{name}")


def extension_modules(*names: str) -> SimpleNamespace:
    """The public names of several extension modules (the sibling files of one stage) as one namespace."""
    merged = {}
    for name in names:
        module = extension_module(name)
        merged.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
    return SimpleNamespace(**merged)


FLAME_RIG = ("blender.rigs.flame", "blender.rigs.flame_build", "blender.rigs.flame_keys")
FLAME_CORE = ("core.heads.flame_file", "core.heads.flame_model", "core.errors", "core.pickles")
FLAME_PARAMS = ("core.expression.flame_params", "core.expression.flame_files")


def nearest_vertices(vertices, points) -> np.ndarray:
    """Index of the vertex nearest each point."""
    return np.argmin(cdist(np.asarray(points, dtype=np.float64), np.asarray(vertices, dtype=np.float64)), axis=1)


def bone_joints(rig) -> np.ndarray:
    """A FLAME rig's rest bone heads ``(5, 3)`` in FLAME's frame (armature space)."""
    flame_rig, flame_model = extension_module("blender.rigs.flame"), extension_module("core.heads.flame_model")
    bones = rig.armature_obj.data.bones
    return flame_model.blender_to_flame(np.array([bones[n].head_local for n in flame_rig.BONE_NAMES],
                                                 dtype=np.float64))
