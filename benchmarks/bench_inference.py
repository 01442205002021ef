"""Inference speed of the shipped networks: ONNX Runtime beside the same network in torch.

Rows: ONNX Runtime CPU frames/s (baseline: the torch module on CPU, same windows, same run),
the runtime's whole ``Model.run`` on a long track (baseline: bare ONNX Runtime), and ONNX Runtime
on CUDA when its CUDAExecutionProvider is really active (baseline: ONNX Runtime CPU).
Goals: >= 200 k frames/s on CPU, >= 5 M frames/s on CUDA.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

N_FRAMES = 100_000
REPEATS = 3


def _best_rate(fn, n_frames: int, repeats: int = REPEATS) -> float:
    fn()  # warm-up (allocations, ORT arena, torch kernels)
    best = np.inf
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return n_frames / best


def _model_paths() -> list[Path]:
    from eifer_blender.core.network import SHIPPED_MODELS, shipped_model_path

    paths = [shipped_model_path(n) for n in SHIPPED_MODELS]
    return [p for p in paths if p.is_file()]


def rows() -> list[dict]:
    import onnxruntime as ort
    import torch

    from eifer_blender.core.network import CUDA, load_model
    from eifer_blender.core.tracks import ExpressionTrack, MuscleTrack
    from models.export import load_torch_net

    out = []
    paths = _model_paths()
    if not paths:
        return [{"measure": "shipped models", "value": None, "unit": "", "baseline": None, "ratio": None,
                 "note": "no shipped model found under eifer_blender/models/: run python -m models.train --shipped"}]
    rng = np.random.default_rng(0)
    for path in paths:
        model = load_model(path, providers="cpu")
        m = model.metadata
        windows = rng.random((N_FRAMES, m.window, len(m.input_names)), dtype=np.float32)
        session = model.session
        name = m.input_name
        feeds = {name: windows}
        mask = None
        if m.mask_name:  # a channel-flexible model: every channel recorded
            feeds[m.mask_name] = np.ones((N_FRAMES, len(m.input_names)), dtype=np.float32)
            mask = torch.from_numpy(feeds[m.mask_name])
        ort_cpu = _best_rate(lambda: session.run(None, feeds), N_FRAMES)
        net = load_torch_net(path)  # the torch module the file was exported from
        x = torch.from_numpy(windows)
        head = {k: v[:256] for k, v in feeds.items()}
        with torch.no_grad():
            check = np.abs(net(x[:256], None if mask is None else mask[:256]).numpy()
                           - session.run(None, head)[0]).max()

        def torch_run():
            with torch.no_grad():
                net(x, mask)

        torch_cpu = _best_rate(torch_run, N_FRAMES)
        out.append({"measure": f"{path.stem} ONNX Runtime CPU", "value": ort_cpu, "unit": "frames/s",
                    "baseline": torch_cpu, "ratio": ort_cpu / torch_cpu,
                    "note": f"baseline torch {torch.__version__} CPU ({torch.get_num_threads()} threads), "
                            f"same {N_FRAMES} windows {m.window}x{len(m.input_names)}, batch {N_FRAMES}; "
                            f"max |ORT-torch| {check:.1g}; goal >= 200k frames/s"})
        track_type = MuscleTrack if m.direction == "emg2exp" else ExpressionTrack
        units = m.input_units
        values = rng.random((N_FRAMES, len(m.input_names)))
        track = track_type(values, m.input_names, m.fps, m.input_space, units)
        whole = _best_rate(lambda: model.run(track), N_FRAMES)
        out.append({"measure": f"{path.stem} Model.run whole track CPU", "value": whole, "unit": "frames/s",
                    "baseline": ort_cpu, "ratio": whole / ort_cpu,
                    "note": f"{N_FRAMES} frames at model fps: check, window, batched inference; "
                            f"baseline bare ONNX Runtime on pre-made windows"})
        if CUDA in ort.get_available_providers():
            cuda_model = load_model(path, providers="cuda")
            if cuda_model.provider == CUDA:
                big = {k: np.tile(v, (10,) + (1,) * (v.ndim - 1)) for k, v in feeds.items()}
                s = cuda_model.session
                rate = _best_rate(lambda: s.run(None, big), len(big[name]))
                out.append({"measure": f"{path.stem} ONNX Runtime CUDA", "value": rate, "unit": "frames/s",
                            "baseline": ort_cpu, "ratio": rate / ort_cpu,
                            "note": f"batch {len(big[name])}, host->device copy included; goal >= 5M frames/s"})
                continue
            note = f"CUDA provider installed but inactive: {cuda_model.provider_note}"
        else:
            note = "no CUDA provider (onnxruntime-gpu not installed or no GPU)"
        out.append({"measure": f"{path.stem} ONNX Runtime CUDA", "value": None, "unit": "frames/s",
                    "baseline": None, "ratio": None, "note": note})
    return out


if __name__ == "__main__":
    for row in rows():
        print(row)
