"""scripts/gpu_check.py runs on a machine without CUDA, and ``models.train --device`` says what it can."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from models import train as train_cli

REPO_ROOT = Path(__file__).resolve().parents[2]
# a config small enough for seconds: the shape of the tiny configs in test_training.py
TINY = """
name = "tiny_device"
direction = "emg2exp"
version = "0.0.1"

[data]
source = "simulated"
subjects = 3
first_subject = 500
protocols = ["mixed"]
duration_s = 10.0
rate_hz = 1024.0
fps = 30.0
seed = 3
workers = 1
cache_dir = "{tmp}/cache"

[model]
window = 3
alignment = "centred"
hidden = 16
depth = 1

[train]
epochs = 1
batch_size = 128
device = "auto"

[output]
dir = "{tmp}/out"
"""


def test_gpu_check_quick_runs_on_the_cpu_and_says_so(tmp_path):
    done = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "gpu_check.py"), "--quick", "--no-install",
                           "--work", str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    table = [line for line in done.stdout.splitlines() if line.startswith("|")]
    assert table[0] == "| check | CPU | CUDA | note |" and table[1] == "|---|---|---|---|"
    text = "\n".join(table)
    for name in ("emg2arkit", "arkit2emg"):
        assert f"{name}: inference, batch 1,000 frames" in text and f"{name}: inference, batch 10,000 frames" in text
    assert "torch training, 1 epoch" in text
    if not torch.cuda.is_available():
        assert "no CUDA: CPU only" in text


def test_train_device_cpu_trains_and_cuda_without_cuda_says_so(tmp_path, capsys, monkeypatch):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY.format(tmp=tmp_path))
    assert train_cli.main(["--config", str(config), "--device", "cpu", "--quiet"]) == 0
    assert "on cpu" in capsys.readouterr().out
    assert (tmp_path / "out" / "tiny_device.onnx").is_file()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on a machine without CUDA
    assert train_cli.main(["--config", str(config), "--device", "cuda", "--quiet"]) == 3
    err = capsys.readouterr().err
    assert "models.train: error: device 'cuda' asked for, but torch sees no CUDA GPU" in err
    assert "--device cpu" in err
    assert train_cli.pick_device("auto").type == "cpu"


def test_pick_device_refuses_unknown_devices():
    from eifer_blender.core.errors import InputError

    with pytest.raises(InputError, match="'auto', 'cpu' or 'cuda'"):
        train_cli.pick_device("tpu")
