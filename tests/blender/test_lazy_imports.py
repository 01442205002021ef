"""Start-up does only the work it needs: what each entry point imports, checked in a fresh process.

Behaviour, not timing: ``--help`` loads no numerical library and no Blender; enabling the extension
loads none of the signal chain, the networks or the file readers; the drive path loads
Blender, numpy and scipy's signal chain, but MNE only once a file MNE reads is opened, matplotlib
only to plot, and never the training stack (torch, onnx: ONNX Runtime runs the networks).
"""
import json
import subprocess
import sys

from tests.conftest import REPO_ROOT

HEAVY = ("numpy", "scipy", "bpy", "mne", "matplotlib", "onnxruntime", "torch", "onnx")


def _imported_after(code: str) -> set[str]:
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_help_imports_no_numerical_library_and_no_blender():
    loaded = _imported_after("import eifer_blender.cli as cli\ncli.build_parser()")
    assert not loaded & set(HEAVY)


def test_drive_path_leaves_mne_plots_and_training_stack_unloaded():
    loaded = _imported_after("from eifer_blender.cli import drive\n"
                             "from eifer_blender.blender.jobs import drive, scene")
    assert {"bpy", "numpy", "scipy.signal"} <= loaded
    assert not loaded & {"mne", "matplotlib", "torch", "onnx"}


def test_enabling_the_extension_loads_no_signal_chain_network_or_file_reader():
    """Every Blender start with the extension enabled pays for what ``register()`` imports: the
    signal chain (scipy.signal), ONNX Runtime and MNE wait for the operator that needs them."""
    loaded = _imported_after("import bpy\nimport eifer_blender\neifer_blender.register()")
    assert "bpy" in loaded
    assert not loaded & {"scipy.signal", "scipy.ndimage", "scipy.stats", "mne", "matplotlib", "onnxruntime",
                         "torch", "onnx"}
