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


LAB_RATE_HZ = 2000.0
LAB_NULL_ROWS = slice(16300, 16600)  # data rows 16300..16599 = file lines 16302..16601 (header is line 1)


def lab_signal(seconds: float = 10.0, seed: int = 0) -> np.ndarray:
    """(2, n) zygomaticus and corrugator in µV at 2000 Hz, as a lab records them: a few µV of rest,
    a burst on each (40 and 30 µV), 20 µV of 50 Hz hum."""
    rng = np.random.default_rng(seed)
    n = int(seconds * LAB_RATE_HZ)
    t = np.arange(n) / LAB_RATE_HZ
    level = np.full((2, n), 3.0)
    level[0] += 40.0 * ((t > 0.2 * seconds) & (t < 0.3 * seconds))
    level[1] += 30.0 * ((t > 0.55 * seconds) & (t < 0.65 * seconds))
    return level * rng.standard_normal((2, n)) + 20.0 * np.sin(2 * np.pi * 50.0 * t)


def write_lab_csv(path, signal_uv: np.ndarray, *, names=("EMG_zyg", "EMG_cor"), scale: float = 1e-3,
                  null_rows: slice = LAB_NULL_ROWS, prefix: str = "") -> np.ndarray:
    """``Time,EMG_zyg,EMG_cor`` in mV (``scale`` 1e-3; 1.0 writes µV) with a UTF-8 byte-order mark and a
    run of NULL cells in column 2, as labs export it; returns the µV values as written (NaN at NULL)."""
    cells = np.char.mod("%.9g", signal_uv * scale)
    written = cells.astype(np.float64) / scale
    cells[0, null_rows] = "NULL"
    written[0, null_rows] = np.nan
    times = np.char.mod("%.6f", np.arange(signal_uv.shape[1]) / LAB_RATE_HZ)
    rows = [",".join(row) for row in zip(times, cells[0], cells[1])]
    header = ",".join(("Time",) + tuple(names))
    path.write_text("\ufeff" + prefix + header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return written


# ------------------------------------------------------------------------------------------ live (LSL)
def lsl_on_this_machine() -> str:
    """Keep LSL discovery on this machine (loopback only) for this test process; liblsl reads the
    file named by ``LSLAPICFG`` once, at its first use, so call this before any LSL call."""
    import os

    from tests.lsl_config import write_machine_only_config

    path = os.environ.get("EIFER_TEST_LSLAPICFG")
    if not path:
        path = write_machine_only_config("eifer-lsl-")
        os.environ["EIFER_TEST_LSLAPICFG"] = path
    os.environ["LSLAPICFG"] = path
    return path


def live_test_model(folder, *, alignment: str = "causal", window: int = 5, seed: int = 3, masked: bool = True):
    """A small channel-flexible EMG2Exp ONNX model (mask input, "activity" input normalisation, like
    the shipped one; ``masked=False``: one that needs all 22 sites) with the given window alignment; its path."""
    from pathlib import Path

    import torch

    from eifer_blender.core.expression.spaces import ARKIT_OBSERVABLE, ARKIT_SITES
    from eifer_blender.core.network import ModelMetadata
    from eifer_blender.core.recording.montage import FRIDLUND22
    from models.export import export_onnx
    from models.nets import NetConfig, WindowNet

    torch.manual_seed(seed)
    net = WindowNet(NetConfig(22, len(ARKIT_OBSERVABLE), window=window, hidden=16, depth=1, masked=masked))
    net.set_standardisation(np.full(22, 0.2), np.full(22, 0.5))
    metadata = ModelMetadata("emg2exp", "emg", "fridlund22", FRIDLUND22, "normalised",
                             {"method": "activity", "calibration": "percentile"}, "arkit52", ARKIT_OBSERVABLE, "1",
                             "sigmoid", 30.0, window, alignment, "unit test", "0",
                             processing={"rms_window_s": 0.125}, mask_name="mask" if masked else "",
                             output_sites={n: list(ARKIT_SITES[n]) for n in ARKIT_OBSERVABLE} if masked else {})
    return export_onnx(net.eval(), metadata, Path(folder) / f"live_{alignment}{'' if masked else '_all'}.onnx")
