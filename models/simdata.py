"""Simulated training data: many subjects, all protocols, processed by the add-on's own chain.

Each session is ``simulate_session(protocol, subject, duration_s, rate_hz, fps, seed)``;
its sEMG goes through ``processing.process_recording`` (the function the add-on runs) to give
envelopes in µV at the model's fps, paired frame by frame with the simulator's ARKit face.
Envelopes are cached un-normalised under ``build/datasets/`` (gitignored), keyed by the data
config and a hash of the simulator and processing sources, so a changed simulator regenerates.
Normalisation (per recording, ``processing.normalise_envelopes``) is applied when windows are
drawn, exactly as the runtime applies it.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from eifer_blender.core import envelopes as processing
from eifer_blender.core.errors import InputError
from eifer_blender.core.expression.spaces import ARKIT52
from eifer_blender.core.recording.montage import FRIDLUND22
from eifer_blender.core.simulator import physiology
from eifer_blender.core.simulator import session as sim_session
from eifer_blender.core.simulator import synthesis as synth
from eifer_blender.core.tracks import ExpressionTrack, MuscleTrack

from .data import Clip, DataSet, subject_split

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE_VERSION = 1

DEFAULTS = {
    "subjects": 40,
    "first_subject": 100,  # ids below 100 stay free for examples and demos
    "protocols": list(physiology.PROTOCOLS),
    "duration_s": 120.0,
    "rate_hz": 2048.0,
    "fps": 30.0,
    "seed": 7,
    "split": [0.7, 0.15, 0.15],
    "workers": 2,
    "cache_dir": "build/datasets",  # relative to the repository root
    "processing": {},
    "normalisation": {"method": "percentile", "low": 5.0, "high": 95.0},
    "sparse_sessions": 0,  # per subject: short sessions where only 1-3 muscles contract (see _sparse_session)
    "sparse_duration_s": 30.0,
}


def data_settings(data: dict) -> dict:
    """The config's ``[data]`` table with defaults filled in."""
    settings = {**DEFAULTS, **{k: v for k, v in data.items() if k != "source"}}
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise InputError(f"unknown [data] keys for simulated data: {', '.join(unknown)}")
    for protocol in settings["protocols"]:
        if protocol not in physiology.PROTOCOLS:
            raise InputError(f"unknown protocol {protocol!r}; the simulator has {', '.join(physiology.PROTOCOLS)}")
    return settings


def processing_settings(settings: dict) -> processing.ProcessingSettings:
    """The feature chain: EIFER's chain plus the config's ``[data.processing]`` overrides.

    Mains 50 Hz as the simulator's subjects; normalisation is left to training / runtime.
    """
    eifer = processing.ProcessingSettings.eifer().to_dict()
    return processing.ProcessingSettings.from_dict({**eifer, **settings["processing"], "normalise": "none"})


# the envelope chain's modules (normalisation is applied when windows are drawn, not cached);
# the causal chain's (``[data.processing] causal = true``) adds its own
CHAIN_MODULES = ("engine.py", "mains.py", "selection.py", "settings.py", "steps.py")
CAUSAL_CHAIN_MODULES = ("streaming.py",)


def _source_hash(causal: bool = False) -> str:
    """Hash of every simulator source file and of the chain's modules: what the cache depends on."""
    digest = hashlib.sha256()
    for path in sorted(Path(inspect.getfile(physiology)).parent.glob("*.py")):
        digest.update(path.read_bytes())
    chain = Path(inspect.getfile(processing)).parent
    for name in CHAIN_MODULES + (CAUSAL_CHAIN_MODULES if causal else ()):
        digest.update((chain / name).read_bytes())
    return digest.hexdigest()[:16]


def cache_path(settings: dict) -> Path:
    key = {k: settings[k] for k in ("subjects", "first_subject", "protocols", "duration_s", "rate_hz",
                                     "fps", "seed", "processing")}
    if settings["sparse_sessions"]:  # (absent from the key when off: older caches stay valid)
        key["sparse"] = [settings["sparse_sessions"], settings["sparse_duration_s"]]
    key["sources"] = _source_hash(bool(settings["processing"].get("causal")))
    key["version"] = CACHE_VERSION
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    folder = Path(settings["cache_dir"])
    return (folder if folder.is_absolute() else REPO_ROOT / folder) / f"sim-{digest}.npz"


def session_seed(seed: int, subject: int, protocol: str) -> int:
    """A distinct, reproducible simulator seed per (data seed, subject, protocol)."""
    return int(seed) * 1000 + physiology.PROTOCOLS.index(protocol) * 100 + int(subject) % 100


SPARSE = "sparse"


def _sparse_session(subject: int, duration_s: float, rate_hz: float, fps: float, seed: int):
    """(recording, ARKit values) of a session where only 1-3 muscle units contract, in bursts.

    Why: a per-session percentile calibration takes a muscle that never contracts at the level of
    its neighbours' crosstalk and its noise; the protocols' sessions move every muscle, so without
    these the network never sees such a channel (a one-muscle recording then moved the whole face).
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, subject, 0x5BA5]))
    n = int(round(duration_s * fps))
    t = np.arange(n) / fps
    activations = np.zeros((n, len(physiology.UNIT_NAMES)))
    for unit in rng.choice(len(physiology.UNIT_NAMES), int(rng.integers(1, 4)), replace=False):
        onset = rng.uniform(0.5, 3.0)
        while onset < duration_s - 1.0:
            length, level = rng.uniform(0.8, 3.0), rng.uniform(0.15, 1.0)
            phase = np.clip((t - onset) / length, 0.0, 1.0)
            activations[:, unit] = np.maximum(activations[:, unit], level * np.sin(np.pi * phase) ** 2)
            onset += length + rng.uniform(1.0, 5.0)
    recording = synth.synthesize_emg(synth.activation_track(activations, fps), subject, rate_hz, seed)
    arkit = np.clip(physiology.activations_to_arkit(activations), 0.0, 1.0)
    return recording, arkit


def _one_session(job) -> tuple[np.ndarray, np.ndarray]:
    subject, protocol, duration_s, rate_hz, fps, seed, settings_dict = job
    settings = processing.ProcessingSettings.from_dict(settings_dict)
    if protocol.startswith(SPARSE):
        recording, arkit_values = _sparse_session(subject, duration_s, rate_hz, fps, seed)
    else:
        session = sim_session.simulate_session(protocol, subject, duration_s, rate_hz, fps, seed=seed)
        recording, arkit_values = session.recording, session.arkit.select(ARKIT52).values
    envelopes = processing.process_recording(recording, fps, settings, n_frames=None)
    n = min(envelopes.n_frames, len(arkit_values))
    emg = envelopes.select(FRIDLUND22).values[:n].astype(np.float32)
    return emg, np.asarray(arkit_values[:n], dtype=np.float32)


def generate(settings: dict, progress: bool = True, log=print) -> Path:
    """Simulate and process every (subject, protocol) session; write the cache file."""
    path = cache_path(settings)
    chain = processing_settings(settings).to_dict()
    subjects = [settings["first_subject"] + i for i in range(int(settings["subjects"]))]
    jobs = [(s, p, float(settings["duration_s"]), float(settings["rate_hz"]), float(settings["fps"]),
             session_seed(settings["seed"], s, p), chain)
            for s in subjects for p in settings["protocols"]]
    jobs += [(s, f"{SPARSE}{i}", float(settings["sparse_duration_s"]), float(settings["rate_hz"]),
              float(settings["fps"]), int(settings["seed"]) * 1000 + 500 + i, chain)
             for s in subjects for i in range(int(settings["sparse_sessions"]))]
    log(f"simulating {len(jobs)} sessions ({len(subjects)} subjects x {len(settings['protocols'])} "
        f"protocols x {settings['duration_s']:g} s at {settings['rate_hz']:g} Hz) -> {path}")
    workers = max(1, min(int(settings["workers"]), os.cpu_count() or 1))
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = _with_progress(pool.map(_one_session, jobs, chunksize=2), len(jobs), progress)
            results = list(results)
    else:
        results = list(_with_progress(map(_one_session, jobs), len(jobs), progress))
    lengths = np.array([len(e) for e, _ in results])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp, emg_uv=np.concatenate([e for e, _ in results]), arkit=np.concatenate([a for _, a in results]),
        lengths=lengths, subjects=np.array([j[0] for j in jobs]), protocols=np.array([j[1] for j in jobs]),
        seeds=np.array([j[5] for j in jobs]),
        info=np.array(json.dumps({"settings": settings, "processing": chain,
                                  "sources": _source_hash(bool(chain["causal"]))},
                                 default=list)))
    tmp.replace(path)
    return path


def _with_progress(iterable, total, enabled):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc="simulating", leave=False, dynamic_ncols=True, file=sys.stderr)


def simulated_dataset(data: dict, progress: bool = True, log=print) -> DataSet:
    """The simulated data set of a config's ``[data]`` table (generated once, then cached)."""
    settings = data_settings(data)
    path = cache_path(settings)
    if not path.is_file():
        generate(settings, progress=progress, log=log)
    with np.load(path, allow_pickle=False) as f:
        emg, arkit, lengths = f["emg_uv"], f["arkit"], f["lengths"]
        subjects, protocols = f["subjects"], f["protocols"]
        info = json.loads(str(f["info"]))
    fps = float(settings["fps"])
    clips, start = [], 0
    for n, subject, protocol in zip(lengths, subjects, protocols):
        meta = {"processing": info["processing"], "simulated": True}
        clips.append(Clip(
            MuscleTrack(emg[start:start + n], FRIDLUND22, fps, "fridlund22", "uV", meta=meta),
            ExpressionTrack(arkit[start:start + n], ARKIT52, fps, "arkit52", "1"),
            subject=f"S{int(subject):03d}", protocol=str(protocol), key=f"S{int(subject):03d}-{protocol}"))
        start += int(n)
    split = subject_split([c.subject for c in clips], tuple(settings["split"]), int(settings["seed"]))
    hours = sum(c.n_frames for c in clips) / fps / 3600
    chain = info["processing"]
    description = (f"simulator (eifer_blender.core.simulator.synthesis, source hash {info['sources']}): "
                   f"{settings['subjects']} subjects x {', '.join(settings['protocols'])} x "
                   f"{settings['duration_s']:g} s"
                   + (f" + {settings['sparse_sessions']} sparse sessions of {settings['sparse_duration_s']:g} s "
                      f"(1-3 muscles contract)" if settings["sparse_sessions"] else "")
                   + f" = {hours:.1f} h at {settings['rate_hz']:g} Hz; "
                   f"features by processing.process_recording ({'causal ' if chain.get('causal') else ''}"
                   f"{chain['envelope']} {chain['rms_window_s']:g} s, band {chain['band_hz']}, "
                   f"notch {chain['notch_hz']}) "
                   f"at {fps:g} fps")
    return DataSet(clips, description, dict(settings["normalisation"]), split, "subject",
                   processing=chain)
