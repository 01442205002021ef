"""Check the networks on an NVIDIA GPU against the CPU and print one markdown table.

    python scripts/gpu_check.py [--wheels DIR] [--quick] [--no-install]

On a machine with an NVIDIA GPU: when the installed ONNX Runtime has no CUDA provider, installs
``onnxruntime-gpu`` (from ``--wheels DIR`` with ``pip install --no-index``, else from the registry)
into ``build/gpu_check/site`` and runs itself again with that folder first on ``PYTHONPATH``. Then
it runs every shipped model (``eifer_blender/models/*.onnx``) on CUDA and on the CPU (max |diff| ≤
1e-4 passes), measures inference frames/s for batches of 1 k to 1 M frames, and trains one epoch
of the shipped emg2arkit config (on fewer simulated subjects) on CUDA and on the CPU through torch.

Without a GPU it runs everything on the CPU, says "no CUDA: CPU only" in the table and exits 0;
``--quick`` uses small sizes (seconds). The exit code is 1 only when a CUDA result differs from
the CPU by more than the tolerance or a GPU was found but nothing could run on it.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

TOLERANCE = 1e-4
SIZES = (1_000, 10_000, 100_000, 1_000_000)
QUICK_SIZES = (1_000, 10_000)
WORK = REPO_ROOT / "build" / "gpu_check"


def nvidia_gpu() -> str:
    """The GPU's name from ``nvidia-smi`` ("" when there is none)."""
    if shutil.which("nvidia-smi") is None:
        return ""
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else ""


def install_onnxruntime_gpu(site: Path, wheels: Path | None, version: str | None) -> int:
    """``pip install --target site --no-deps onnxruntime-gpu`` (from ``wheels`` when given)."""
    requirement = f"onnxruntime-gpu=={version}" if version else "onnxruntime-gpu"
    command = [sys.executable, "-m", "pip", "install", "--target", str(site), "--upgrade", "--no-deps"]
    if wheels:
        command += ["--no-index", "--find-links", str(wheels)]
    print("installing:", " ".join(command + [requirement]), file=sys.stderr, flush=True)
    return subprocess.run(command + [requirement]).returncode


def _fps(model, windows: np.ndarray, repeats: int) -> float:
    model.infer(windows[: min(len(windows), 1024)])  # warm-up (CUDA kernels, allocations)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        model.infer(windows)
        best = min(best, time.perf_counter() - started)
    return len(windows) / best


def check_inference(sizes, use_cuda: bool) -> tuple[list[list[str]], bool]:
    """Rows for every shipped model: provider, max |CUDA − CPU|, frames/s per batch size."""
    from eifer_blender.core.network import (
        SHIPPED_MODELS,
        load_model,
        shipped_model_path,
    )

    rows, ok = [], True
    rng = np.random.default_rng(0)
    for name in SHIPPED_MODELS:
        cpu = load_model(shipped_model_path(name), providers="cpu")
        gpu = load_model(shipped_model_path(name), providers="cuda") if use_cuda else None
        shape = (cpu.window, len(cpu.input_names))
        probe = rng.uniform(0.0, 3.0, (4096, *shape)).astype(np.float32)
        if gpu is not None and gpu.provider == "CUDAExecutionProvider":
            diff = float(np.abs(gpu.infer(probe) - cpu.infer(probe)).max())
            passed = diff <= TOLERANCE
            ok &= passed
            rows.append([f"{name}: max abs diff CUDA vs CPU", f"{diff:.2e}", "",
                         "pass" if passed else f"FAIL (> {TOLERANCE:g})"])
        elif gpu is not None:
            ok = False
            rows.append([f"{name}: CUDA", "", gpu.provider, f"did not run on CUDA: {gpu.provider_note}"])
        for n in sizes:
            windows = rng.uniform(0.0, 3.0, (n, *shape)).astype(np.float32)
            repeats = 3 if n <= 100_000 else 1
            cpu_fps = _fps(cpu, windows, repeats)
            gpu_fps = _fps(gpu, windows, repeats) if gpu is not None and gpu.provider.startswith("CUDA") else None
            rows.append([f"{name}: inference, batch {n:,} frames", f"{cpu_fps:,.0f} frames/s",
                         f"{gpu_fps:,.0f} frames/s" if gpu_fps else "–", ""])
            del windows
    return rows, ok


def check_training(quick: bool, use_cuda: bool, work: Path) -> list[list[str]]:
    """One epoch of the shipped emg2arkit config (fewer simulated subjects) per device."""
    from models.train import CONFIG_DIR, load_config, load_dataset, train

    overrides = {"train.epochs": 1, "data.workers": 1,
                 "data.cache_dir": str(work / "cache")}
    overrides.update({"data.subjects": 3, "data.duration_s": 20.0, "data.rate_hz": 1024.0,
                      "train.frames_per_epoch": 20_000} if quick else {"data.subjects": 6})
    config = load_config(CONFIG_DIR / "emg2arkit.toml", overrides)
    dataset = load_dataset(config, progress=False)
    frames = int(config["train"]["frames_per_epoch"])
    seconds = {}
    for device in ("cpu", "cuda") if use_cuda else ("cpu",):
        out = work / f"train-{device}"
        result = train(config, out, device, progress=False, log=lambda *a: None, dataset=dataset)
        seconds[device] = result.history[0]["seconds"]
    cpu = f"{seconds['cpu']:.1f} s" if "cpu" in seconds else ""
    cuda = f"{seconds['cuda']:.1f} s" if "cuda" in seconds else "–"
    return [[f"torch training, 1 epoch of {frames:,} frames (emg2arkit, incl. set-up)", cpu, cuda, ""]]


def table(rows, header=("check", "CPU", "CUDA", "note")) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/gpu_check.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheels", type=Path, help="folder of wheels to install onnxruntime-gpu from (no index)")
    parser.add_argument("--ort-version", help="onnxruntime-gpu version to install (default: the newest found)")
    parser.add_argument("--quick", action="store_true", help="small batches and a short training (seconds)")
    parser.add_argument("--no-install", action="store_true", help="never pip install anything")
    parser.add_argument("--no-train", action="store_true", help="skip the torch training rows")
    parser.add_argument("--work", type=Path, default=WORK, help="folder for the install, caches and models "
                        "(default: build/gpu_check)")
    args = parser.parse_args(argv)

    gpu = nvidia_gpu()
    import torch

    torch_cuda = torch.cuda.is_available()
    if gpu and not args.no_install:
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            if install_onnxruntime_gpu(args.work / "site", args.wheels, args.ort_version) != 0:
                print("could not install onnxruntime-gpu; continuing on the CPU", file=sys.stderr)
            else:  # a new process: ONNX Runtime cannot be swapped once imported
                env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(args.work / "site"),
                                                                           os.environ.get("PYTHONPATH")])))
                return subprocess.run([sys.executable, __file__, *(argv if argv is not None else sys.argv[1:]),
                                       "--no-install"], env=env).returncode
    import onnxruntime as ort

    if hasattr(ort, "preload_dlls") and gpu:
        try:
            ort.preload_dlls()  # CUDA/cuDNN from the nvidia-* wheels (torch's) when present
        except Exception as exc:
            print(f"preload_dlls: {exc}", file=sys.stderr)
    ort_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    status = (f"GPU {gpu}; onnxruntime {ort.__version__} providers {', '.join(ort.get_available_providers())}; "
              f"torch {torch.__version__} CUDA {'yes' if torch_cuda else 'no'}") if gpu or torch_cuda else \
        "no CUDA: CPU only"
    rows = [["machine", status, "", ""]]
    ok = True
    inference_rows, inference_ok = check_inference(QUICK_SIZES if args.quick else SIZES, ort_cuda)
    rows += inference_rows
    if gpu and not ort_cuda:
        rows.append(["ONNX Runtime CUDA", "", "–", "no CUDA provider in the installed ONNX Runtime"])
        ok = False
    ok &= inference_ok
    if not args.no_train:
        rows += check_training(args.quick, torch_cuda, args.work)
    if not (gpu or torch_cuda or ort_cuda):
        rows.append(["result", "no CUDA: CPU only", "–", "nothing ran on a GPU"])
    print(table(rows))
    return 0 if ok or not (gpu or torch_cuda) else 1


if __name__ == "__main__":
    sys.exit(main())
