"""Train an EIFER network from a config file, export it to ONNX and check the export.

    python -m models.train --config models/configs/emg2arkit.toml
    python -m models.train --shipped          # retrain and re-export the shipped models

Seeded, with progress bars, checkpoints (``<out>/last.pt``, ``<out>/best.pt``, ``--resume``),
early stopping on the validation loss, CUDA when present else CPU. Writes ``<out>/<name>.onnx``,
``<out>/report.json`` and, with ``--ship``, the add-on's copy (``[output] onnx`` in the config).
"""
from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from eifer_blender.core.errors import EiferError, InputError
from eifer_blender.core.expression.spaces import ARKIT52, ARKIT_OBSERVABLE, ARKIT_SITES
from eifer_blender.core.network import ModelMetadata
from eifer_blender.core.recording.montage import FRIDLUND22

from .data import DataSet, WindowBank, montage_masks, site_incidence
from .export import check_onnx_matches_torch, export_onnx
from .nets import NetConfig, WindowNet
from .ridge import RidgeBaseline, head_range

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
SHIPPED_CONFIGS = ("emg2arkit", "arkit2emg", "emg2arkit_causal")
MODEL_VERSION = "1.0.0"


# ----------------------------------------------------------------------------------------- config
def load_config(path, overrides: dict | None = None) -> dict:
    """Read a TOML config; ``overrides`` maps ``"section.key"`` to a value."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            config = tomllib.load(f)
    except FileNotFoundError:
        raise InputError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc})") from exc
    for key, value in (overrides or {}).items():
        section, _, name = key.rpartition(".")
        if section:
            config.setdefault(section, {})[name] = value
        else:
            config[name] = value
    for section in ("data", "model", "train", "output", "augment"):
        config.setdefault(section, {})
    missing = [k for k in ("name", "direction") if k not in config]
    if missing:
        raise InputError(f"{path}: config lacks {', '.join(missing)}")
    if config["direction"] not in ("emg2exp", "exp2emg"):
        raise InputError(f"{path}: direction must be 'emg2exp' or 'exp2emg', got {config['direction']!r}")
    config["_path"] = str(path)
    return config


def resolve(path) -> Path:
    """Config paths are relative to the repository root."""
    path = Path(path)
    return path if path.is_absolute() else REPO_ROOT / path


# ------------------------------------------------------------------------------------------- data
def load_dataset(config: dict, progress: bool = True) -> DataSet:
    """The config's data set with its split (simulated data are cached under ``build/``)."""
    data = config["data"]
    source = data.get("source", "simulated")
    if source == "simulated":
        from .simdata import simulated_dataset

        return simulated_dataset(data, progress=progress)
    if source == "mmm":
        from .mmm import mmm_dataset

        return mmm_dataset(data)
    raise InputError(f"{config['_path']}: unknown data source {source!r} (use 'simulated' or 'mmm')")


def channel_names(config: dict, dataset: DataSet) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(input names, output names) of the model, from the config and the data's spaces."""
    clip = dataset.clips[0]
    expression = clip.expression
    which = config["model"].get("expression_names", "observable")
    if expression.space == "arkit52" and which == "observable":
        expression_names = tuple(n for n in ARKIT_OBSERVABLE if n in expression.names)
    elif expression.space == "arkit52":
        expression_names = tuple(n for n in ARKIT52 if n in expression.names)
    else:
        expression_names = expression.names
    emg_names = tuple(n for n in FRIDLUND22 if n in clip.emg.names)
    if config["direction"] == "emg2exp":
        return emg_names, expression_names
    # an expression input that never moves in the training data teaches the model nothing:
    # leave it out, so a rig without it can still be read
    train_clips = dataset.clips_of("train")
    stacked = np.concatenate([c.expression.select(expression_names).values for c in train_clips])
    moving = stacked.std(axis=0) > 1e-6
    return tuple(n for n, m in zip(expression_names, moving) if m), emg_names


# ------------------------------------------------------------------------------------------ model
def build_net(config: dict, dataset: DataSet, input_names, output_names) -> WindowNet:
    m = config["model"]
    if config["direction"] == "exp2emg":
        head = "softplus"
    else:
        head = "sigmoid" if dataset.clips[0].expression.space == "arkit52" else "linear"
    net_config = NetConfig(n_inputs=len(input_names), n_outputs=len(output_names),
                           window=int(m.get("window", 1)), hidden=int(m.get("hidden", 128)),
                           depth=int(m.get("depth", 2)), conv=[list(c) for c in m.get("conv", [])],
                           head=m.get("head", head), log_input=bool(m.get("log_input", False)),
                           masked=bool(m.get("masked", False)) and config["direction"] == "emg2exp",
                           dropout=float(m.get("dropout", 0.0)), ridge_blend=float(m.get("ridge_blend", 0.0)),
                           low_range=float(m.get("low_range", 0.0)))
    return WindowNet(net_config)


def output_sites(config: dict, input_names, output_names) -> dict:
    """The channels that move each output (FACS, ``spaces.ARKIT_SITES``) for a masked ARKit model."""
    if not config["model"].get("masked") or config["direction"] != "emg2exp":
        return {}
    return {name: [s for s in ARKIT_SITES.get(name, ()) if s in input_names] for name in output_names}


def rest_ratio(dataset: DataSet, input_names) -> float:
    """The training recordings' typical activity maximum over rest: median of each channel's
    99th over 10th envelope percentile (the reference of the "rest" calibration), over the
    protocol sessions (in sparse sessions most channels never contract)."""
    ratios = [np.percentile(v, 99, axis=0) / np.percentile(v, 10, axis=0)
              for v in (c.emg.select(input_names).values for c in dataset.clips_of("train")
                        if not c.protocol.startswith("sparse"))]
    return float(np.median(ratios))


def metadata_for(config: dict, dataset: DataSet, net: WindowNet, input_names, output_names) -> ModelMetadata:
    direction = config["direction"]
    clip = dataset.clips[0]
    normalised = dataset.emg_normalisation.get("method", "none") != "none"
    emg_units = "normalised" if normalised else clip.emg.units
    if direction == "emg2exp":
        input_space, input_units = clip.emg.space, emg_units
        normalisation = dataset.emg_normalisation
        output_space, output_units = clip.expression.space, clip.expression.units
    else:
        input_space, input_units = clip.expression.space, clip.expression.units
        normalisation = {"method": "none"}
        output_space, output_units = clip.emg.space, emg_units
    split = {k: len(v) for k, v in dataset.split.items()}
    description = (f"{dataset.description}; split by {dataset.split_by}: "
                   f"{split.get('train')} train / {split.get('val')} val / {split.get('test')} test")
    return ModelMetadata(
        direction=direction, input_name="emg" if direction == "emg2exp" else "params",
        input_space=input_space, input_names=tuple(input_names), input_units=input_units,
        input_normalisation=normalisation, output_space=output_space,
        output_names=tuple(output_names), output_units=output_units, head=net.config.head,
        fps=float(clip.emg.fps), window=net.config.window,
        alignment=config["model"].get("alignment", "centred"), training_data=description,
        version=str(config.get("version", MODEL_VERSION)), processing=dataset.processing,
        output_normalisation=dataset.emg_normalisation if direction == "exp2emg" else {"method": "none"},
        mask_name="mask" if net.config.masked else "",
        output_sites=output_sites(config, input_names, output_names),
        extra={"name": config["name"], "net": net.config.to_dict(),
               "parameters": net.n_parameters(), "test_groups": dataset.split.get("test", [])})


# --------------------------------------------------------------------------------------- training
@dataclass
class TrainResult:
    net: WindowNet
    metadata: ModelMetadata
    onnx_path: Path
    history: list[dict]
    best_epoch: int
    onnx_max_abs_diff: float
    seconds: float


def pick_device(wanted: str = "auto") -> torch.device:
    """The torch device to train on: ``"auto"`` is CUDA when ``torch.cuda.is_available()``, else CPU.

    ``"cuda"`` without a usable GPU is an :class:`InputError` that says why (a CPU-only torch
    build, or no GPU/driver visible to a CUDA build); the CLI prints it and exits with 3.
    """
    wanted = str(wanted).lower()
    if wanted not in ("auto", "cpu", "cuda"):
        raise InputError(f"device must be 'auto', 'cpu' or 'cuda', got {wanted!r}")
    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if wanted == "cuda" and not torch.cuda.is_available():
        why = (f"this torch ({torch.__version__}) is a CPU-only build" if torch.version.cuda is None
               else f"torch {torch.__version__} (CUDA {torch.version.cuda}) finds no usable NVIDIA GPU or driver")
        raise InputError(f"device 'cuda' asked for, but torch sees no CUDA GPU: {why}; "
                         f"use --device cpu (or auto)")
    return torch.device(wanted)


def seed_everything(seed: int) -> None:
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def _progress(iterable, total, desc, enabled):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True, file=sys.stderr)


class ChannelDropout:
    """Channel-dropout masks and the loss weights they leave: an output none of whose channels is
    recorded is not driven, so it is not scored (the runtime does not key it)."""

    def __init__(self, input_names, output_names, sites: dict, standard: dict, seed: int,
                 full_share: float = 0.3, standard_share: float = 0.3):
        self.input_names, self.standard = tuple(input_names), standard
        self.incidence = torch.from_numpy(site_incidence(input_names, output_names, sites))
        self.rng = np.random.default_rng(seed)
        self.shares = (full_share, standard_share)

    def draw(self, n: int) -> torch.Tensor:
        return torch.from_numpy(montage_masks(n, self.input_names, self.rng, self.standard, *self.shares))

    def driven(self, masks: torch.Tensor) -> torch.Tensor:
        return ((masks @ self.incidence.to(masks.device)) > 0).to(masks.dtype)


def _evaluate_loss(net, bank: WindowBank, weights: torch.Tensor, device, batch: int = 8192,
                   dropout: ChannelDropout | None = None) -> float:
    """Mean weighted squared error; a masked net is scored on every montage of ``dropout.standard``
    plus all channels, averaged (a fixed, seeded choice)."""
    net.eval()
    montages = [None]
    if dropout is not None:
        index = {n: i for i, n in enumerate(dropout.input_names)}
        for channels in dropout.standard.values():
            mask = torch.zeros(len(index))
            mask[[index[c] for c in channels if c in index]] = 1.0
            montages.append(mask)
        montages[0] = torch.ones(len(index))
    total, n = 0.0, 0.0
    with torch.no_grad():
        for mask in montages:
            for start in range(0, len(bank), batch):
                rows = torch.arange(start, min(start + batch, len(bank)))
                x, y = bank.batch(rows)
                w = weights
                if mask is not None:
                    masks = mask.expand(len(rows), -1).to(device)
                    w = weights * dropout.driven(masks)
                    pred = net(x.to(device), masks)
                else:
                    pred = net(x.to(device))
                total += float((((pred - y.to(device)) ** 2) * w).sum())
                n += float(w.sum()) if mask is not None else len(rows) * float(weights.numel())
    return total / max(n, 1.0)


def fit_low_readout(net: WindowNet, bank: WindowBank, dropout: ChannelDropout | None, n_windows: int,
                    alpha: float, seed: int, chunk: int = 50_000) -> np.ndarray:
    """The low-range read-out (``WindowNet.set_low_readout``) of a net on the CPU: ridge regression
    of the targets on the net's read-out features (standardised windows and the 0/1 mask: one
    penalty ``alpha * n`` on all but the intercept), in closed form over ``n_windows`` training
    windows drawn with a seeded generator, each with its own channel-dropout mask for a masked net.
    Every output is fitted on every window, also where the mask covers none of its sites (training
    skips those): the runtime never shows an output whose sites are not recorded."""
    rng = np.random.default_rng(seed)
    rows = torch.from_numpy(np.sort(rng.choice(len(bank), min(n_windows, len(bank)), replace=False)))
    width = net.readout_width() + 1
    xtx, xty = np.zeros((width, width)), np.zeros((width, bank.y.shape[1]))
    net.eval()
    with torch.no_grad():
        for start in range(0, len(rows), chunk):
            x, y = bank.batch(rows[start:start + chunk])
            masks = None if dropout is None else torch.from_numpy(
                montage_masks(len(x), dropout.input_names, rng, dropout.standard, *dropout.shares))
            features = net.readout_features(x, masks).numpy()
            a = np.hstack([features.astype(np.float64), np.ones((len(x), 1))])
            xtx += a.T @ a
            xty += a.T @ y.numpy().astype(np.float64)
    penalty = np.full(width, alpha * len(rows))
    penalty[-1] = 0.0
    return np.linalg.solve(xtx + np.diag(penalty), xty)


def train(config: dict, out_dir=None, device: str | None = None, progress: bool = True,
          resume: bool = False, log=print, dataset: DataSet | None = None) -> TrainResult:
    """Train the config's network, export it to ``<out_dir>/<name>.onnx`` and check the export.

    ``dataset`` overrides loading the config's data set (it must be that data set).
    Returns the trained net (best validation epoch), its metadata, the ONNX path and history.
    """
    started = time.perf_counter()
    t = config["train"]
    seed_everything(int(t.get("seed", 0)))
    out_dir = resolve(out_dir or config["output"].get("dir", f"build/models/{config['name']}"))
    out_dir.mkdir(parents=True, exist_ok=True)
    dataset = dataset or load_dataset(config, progress=progress)
    input_names, output_names = channel_names(config, dataset)
    spec = dataset.emg_normalisation
    if config["direction"] == "emg2exp" and spec.get("method") == "activity" and "rest_ratio" not in spec:
        # fixed before any window is drawn: training and the runtime read "rest" the same way
        dataset.emg_normalisation = {**spec, "rest_ratio": round(rest_ratio(dataset, input_names), 2)}
    m = config["model"]
    window, alignment = int(m.get("window", 1)), m.get("alignment", "centred")
    augment = dict(config.get("augment", {})) or None
    banks = {s: WindowBank(dataset.clips_of(s), config["direction"], input_names, output_names,
                           window, alignment, dataset.emg_normalisation,
                           augment=augment if s == "train" else None, seed=int(t.get("seed", 0)))
             for s in ("train", "val")}
    net = build_net(config, dataset, input_names, output_names)
    dropout = None
    if net.config.masked:
        standard = {k: tuple(v) for k, v in config["model"].get("montages", {}).items()}
        dropout = ChannelDropout(input_names, output_names, output_sites(config, input_names, output_names),
                                 standard, int(t.get("seed", 0)))
    x_train = net.transform_input(banks["train"].input_frames())
    y_train = banks["train"].targets()
    net.set_standardisation(x_train.mean(0), x_train.std(0), y_train.mean(0), y_train.std(0))
    net.init_output_bias(y_train.mean(0))
    # every output counts about equally in the loss whatever its spread; outputs that barely
    # move (never driven in the data) must not dominate it
    variance = y_train.var(0).astype(np.float64)
    weights = 1.0 / np.maximum(variance, 0.05 * np.median(variance[variance > 0]) if (variance > 0).any() else 1.0)
    weights = torch.as_tensor(weights / weights.mean(), dtype=torch.float32)
    dev = pick_device(device or t.get("device", "auto"))
    net.to(dev)
    weights = weights.to(dev)
    epochs, batch_size = int(t.get("epochs", 50)), int(t.get("batch_size", 512))
    patience, max_s = int(t.get("patience", 8)), 60.0 * float(t.get("max_minutes", 1e9))
    frames_per_epoch = int(t.get("frames_per_epoch", 0)) or len(banks["train"])
    optimiser = torch.optim.AdamW(net.parameters(), lr=float(t.get("lr", 2e-3)),
                                  weight_decay=float(t.get("weight_decay", 1e-4)))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(epochs, 1))
    generator = torch.Generator().manual_seed(int(t.get("seed", 0)))
    history, best_loss, best_epoch, best_state, first_epoch = [], float("inf"), -1, None, 0
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    if resume and last_path.is_file():
        state = torch.load(last_path, map_location=dev, weights_only=False)
        net.load_state_dict(state["net"])
        optimiser.load_state_dict(state["optimiser"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        history, best_loss, best_epoch = state["history"], state["best_loss"], state["best_epoch"]
        best_state, first_epoch = state["best_state"], state["epoch"] + 1
        log(f"resuming {config['name']} after epoch {state['epoch']}")
    log(f"training {config['name']}: {len(input_names)} -> {len(output_names)}, window {window} "
        f"{alignment}, {net.n_parameters()} parameters, {len(banks['train'])} train / "
        f"{len(banks['val'])} val frames, on {dev}")
    for epoch in range(first_epoch, epochs):
        net.train()
        order = torch.randperm(len(banks["train"]), generator=generator)[:frames_per_epoch]
        n_batches = (len(order) + batch_size - 1) // batch_size
        running = 0.0
        for i in _progress(range(n_batches), n_batches, f"{config['name']} epoch {epoch + 1}/{epochs}", progress):
            x, y = banks["train"].batch(order[i * batch_size:(i + 1) * batch_size])
            x, y = x.to(dev), y.to(dev)
            if dropout is not None:
                masks = dropout.draw(len(x)).to(dev)
                w = weights * dropout.driven(masks)
                loss = (((net(x, masks) - y) ** 2) * w).sum() / w.sum().clamp(min=1.0)
            else:
                loss = (((net(x) - y) ** 2) * weights).mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), float(t.get("clip_grad", 1.0)))
            optimiser.step()
            running += float(loss.detach())
        scheduler.step()
        val_loss = _evaluate_loss(net, banks["val"], weights, dev, dropout=dropout)
        history.append({"epoch": epoch, "train_loss": running / max(n_batches, 1), "val_loss": val_loss,
                        "seconds": time.perf_counter() - started})
        improved = val_loss < best_loss
        if improved:
            best_loss, best_epoch = val_loss, epoch
            best_state = copy.deepcopy(net.state_dict())
            torch.save({"net": best_state, "config": config, "epoch": epoch}, best_path)
        torch.save({"net": net.state_dict(), "optimiser": optimiser.state_dict(),
                    "scheduler": scheduler.state_dict(), "generator": generator.get_state(),
                    "history": history, "best_loss": best_loss, "best_epoch": best_epoch,
                    "best_state": best_state, "epoch": epoch, "config": config}, last_path)
        log(f"  epoch {epoch + 1:3d}  train {history[-1]['train_loss']:.4f}  val {val_loss:.4f}"
            f"{'  *' if improved else ''}")
        if epoch - best_epoch >= patience:
            log(f"  early stop: no validation improvement for {patience} epochs")
            break
        if time.perf_counter() - started > max_s:
            log(f"  stop: time budget of {max_s / 60:.0f} min used")
            break
    net.load_state_dict(best_state)
    net.to("cpu").eval()
    blended = {}
    if net.config.ridge_blend:
        ridge = RidgeBaseline(*head_range(net.config.head)).fit(banks["train"], banks["val"])
        net.set_ridge(ridge.coef)
        blended = {"ridge_alpha": ridge.alpha,
                   "blended_val_loss": _evaluate_loss(net, banks["val"], weights.cpu(), "cpu")}
        torch.save({"net": net.state_dict(), "config": config, "epoch": best_epoch}, best_path)  # as shipped
        log(f"  ridge path fitted (penalty {ridge.alpha:g}), blended at {net.config.ridge_blend:g}: "
            f"validation loss {blended['blended_val_loss']:.4f}")
    if net.config.low_range:
        net.set_low_readout(fit_low_readout(net, banks["train"], dropout, int(m.get("low_range_windows", 400_000)),
                                            float(m.get("low_range_alpha", 0.01)), int(t.get("seed", 0)) + 1))
        blended["low_range_val_loss"] = _evaluate_loss(net, banks["val"], weights.cpu(), "cpu", dropout=dropout)
        torch.save({"net": net.state_dict(), "config": config, "epoch": best_epoch}, best_path)  # as shipped
        log(f"  low-range read-out fitted below {net.config.low_range:g}: validation loss "
            f"{blended['low_range_val_loss']:.4f} (network alone {best_loss:.4f})")
    metadata = metadata_for(config, dataset, net, input_names, output_names)
    onnx_path = export_onnx(net, metadata, out_dir / f"{config['name']}.onnx")
    diff = check_onnx_matches_torch(net, onnx_path)
    seconds = time.perf_counter() - started
    report = {"name": config["name"], "best_epoch": best_epoch, "best_val_loss": best_loss,
              "onnx_max_abs_diff": diff, "seconds": seconds, "history": history, **blended,
              "config": {k: v for k, v in config.items() if not k.startswith("_")},
              "metadata": json.loads(json.dumps(metadata.to_props()))}
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    log(f"exported {onnx_path} (ONNX Runtime vs torch max |diff| {diff:.2g}); {seconds:.0f} s")
    return TrainResult(net, metadata, onnx_path, history, best_epoch, diff, seconds)


def ship(config: dict, result: TrainResult, log=print) -> Path:
    """Copy the exported model to the add-on's path (``[output] onnx``)."""
    target = config["output"].get("onnx")
    if not target:
        raise InputError(f"{config['_path']}: [output] onnx is not set, nothing to ship")
    target = resolve(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(result.onnx_path, target)
    log(f"shipped {target}")
    return target


# -------------------------------------------------------------------------------------------- CLI
def _parse_override(text: str):
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--set wants section.key=value, got {text!r}")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key.strip(), parsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--config", type=Path, help="a TOML config (see models/configs/)")
    which.add_argument("--shipped", action="store_true",
                       help="retrain the shipped models from their configs and ship them")
    parser.add_argument("--out", type=Path, help="output folder (default: [output] dir)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"),
                        help="override [train] device; auto: cuda when torch.cuda.is_available()")
    parser.add_argument("--set", dest="overrides", action="append", type=_parse_override, default=[],
                        metavar="SECTION.KEY=VALUE", help="override a config value (TOML syntax)")
    parser.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    parser.add_argument("--ship", action="store_true", help="copy the model to the add-on's path")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    paths = [CONFIG_DIR / f"{n}.toml" for n in SHIPPED_CONFIGS] if args.shipped else [args.config]
    try:
        for path in paths:
            config = load_config(path, dict(args.overrides))
            result = train(config, args.out if not args.shipped else None, args.device,
                           progress=not args.quiet and sys.stderr.isatty(), resume=args.resume)
            if args.ship or args.shipped:
                ship(config, result)
    except EiferError as exc:
        print(f"models.train: error: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
