"""The GPU runtime operators show their plan and refuse to go online when online access is off.

Nothing downloads: run_install is replaced by a function that fails the test if it is called.
"""
import importlib
from pathlib import Path

import bpy
import pytest

from tests.conftest import EXTENSION_MODULE


@pytest.fixture
def gpu_ops(blender, monkeypatch):
    module = importlib.import_module(f"{EXTENSION_MODULE}.blender.ui.gpu_ops")

    def no_download(*args, **kwargs):
        raise AssertionError("a test tried to download the GPU runtime")

    monkeypatch.setattr(module.gpu_runtime, "run_install", no_download)
    return module


def test_plan_names_what_how_big_and_where(gpu_ops):
    folder = gpu_ops.gpu_runtime_folder()
    assert folder.name == "modules" and Path(bpy.utils.user_resource("SCRIPTS")) == folder.parent
    plan = gpu_ops.current_plan()
    lines = plan.describe()
    assert lines[0].startswith(f"onnxruntime-gpu {plan.onnxruntime_version}") and "GB" in lines[1]
    assert str(folder) in lines[2] and "Python 3." in lines[3]
    assert "GPU runtime not installed" in gpu_ops.installed_status()


def test_install_without_confirmation_only_reports_the_plan(gpu_ops, monkeypatch, capfd):
    monkeypatch.setattr(gpu_ops, "online_access", lambda: True)
    assert bpy.ops.eifer.install_gpu_runtime() == {"CANCELLED"}
    out = capfd.readouterr()
    text = out.out + out.err
    assert "nothing installed" in text and "onnxruntime-gpu" in text and "pip install --target" in text


def test_install_refuses_when_online_access_is_off(gpu_ops, monkeypatch):
    monkeypatch.setattr(gpu_ops, "online_access", lambda: False)
    with pytest.raises(RuntimeError, match="Online access is off.*nothing was downloaded.*pip install --target"):
        bpy.ops.eifer.install_gpu_runtime(confirm=True)


def test_online_access_reads_blender(gpu_ops):
    assert gpu_ops.online_access() == bool(bpy.app.online_access)


def test_uninstall_with_nothing_installed_removes_nothing(gpu_ops):
    assert bpy.ops.eifer.uninstall_gpu_runtime(confirm=True) == {"CANCELLED"}


def test_preferences_offer_every_provider(gpu_ops):
    prefs = importlib.import_module(f"{EXTENSION_MODULE}.blender.ui.preferences").get_preferences()
    items = [i.identifier for i in prefs.bl_rna.properties["execution_provider"].enum_items]
    assert items == ["AUTO", "CPU", "CUDA", "DIRECTML", "COREML"]
