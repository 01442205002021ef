"""EIFER's per-clip evaluation of the shipped networks, on both simulators, beside the baselines.

    python -m models.clip_eval --config models/configs/emg2arkit.toml --json build/eval/emg2arkit.json
    python -m models.clip_eval --config models/configs/arkit2emg.toml --json build/eval/arkit2emg.json

Scores as EIFER reports them (Büchner et al., CVPR 2025): per ~6 s event-centred clip and per
output, the median over relevant clips (``core.analysis.clips``), then the median over outputs.
Held-out data only: the training simulator's test subjects (never trained or validated on) and the
frozen test simulator (:mod:`models.testsim`, never used for training or model selection).
Baselines: ridge regression on the same window of the same channels, the mean face (training
mean); for EMG2Exp also the previously shipped model (``--previous``). EMG2Exp is scored by montage
(22, 8, 4, 2 channels), at amplifier gains 0.3× and 3× (test simulator), and on single-muscle
probes. The model cards' figures are this command's ``--markdown`` output.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from eifer_blender.core.analysis import clips as clip_metrics
from eifer_blender.core.envelopes import activity_references, normalise_envelopes, process_recording
from eifer_blender.core.errors import EiferError
from eifer_blender.core.network import load_model
from eifer_blender.core.network.windows import make_windows
from eifer_blender.core.pipeline import ROBUST_CHAIN
from eifer_blender.core.recording.montage import FRIDLUND22
from eifer_blender.core.simulator.session import simulate_session
from eifer_blender.core.tracks import MuscleTrack

from . import testsim
from .data import WindowBank
from .evaluate import electrode_driven_arkit, evaluate_clips
from .ridge import RidgeBaseline
from .simdata import data_settings, session_seed
from .testsim.session import POSED_AUS
from .train import load_config, load_dataset, resolve

MONTAGES = {
    "22": FRIDLUND22,
    "8": ("Corr_R", "Corr_L", "Zyg_R", "Zyg_L", "OrbOc_R", "OrbOc_L", "medFront_R", "medFront_L"),
    "4": ("Corr_R", "Corr_L", "Zyg_R", "Zyg_L"),
    "2": ("Zyg_L", "Corr_L"),
}
TEST_SUBJECTS = (900, 901, 902, 903, 904, 905)  # test-simulator subjects (any ids: its own population)
GAINS = (0.3, 3.0)
POSED_BLOCK_S = 100.0  # the test simulator's posed protocol poses its 15 action units in about 90 s
# single-muscle probes: the FACS shapes each must move on its own side (the list)
PROBES = {
    "zygomaticus": ("mouthSmile",), "corrugator": ("browDown",), "depressor_supercilii": ("browDown",),
    "frontalis_medial": ("browInnerUp",), "frontalis_lateral": ("browOuterUp",), "dao": ("mouthFrown",),
    "mentalis": ("mouthShrugLower",), "orbicularis_oculi": ("cheekSquint", "eyeSquint"),
    "levator_labii": ("noseSneer", "mouthUpperUp"), "orbicularis_oris": ("mouthPucker", "mouthFunnel"),
    "masseter": (),
}
SIDE_WORD = {"L": "Left", "R": "Right"}


# ------------------------------------------------------------------------------------ sessions
class _Session:
    """A simulated session with its envelopes processed once (µV, the model's chain)."""

    def __init__(self, simulated, chain, fps: float, label: str):
        self.recording, self.arkit, self.annotations = simulated.recording, simulated.arkit, simulated.annotations
        self.label, self.fps, self.chain = label, fps, chain
        self.envelopes = process_recording(simulated.recording, fps, chain)
        self._other_chains = {}

    def envelopes_for(self, chain):
        """The envelopes by another chain (a model trained on other envelopes, scored beside)."""
        if chain == self.chain:
            return self.envelopes
        if chain not in self._other_chains:
            self._other_chains[chain] = process_recording(self.recording, self.fps, chain)
        return self._other_chains[chain]


def training_sim_sessions(config: dict, dataset, chain, duration_s: float | None = None) -> list[_Session]:
    """The training simulator's held-out test subjects, re-simulated exactly as the cache made them."""
    settings = data_settings(config["data"])
    fps, sessions = float(settings["fps"]), []
    for group in dataset.split["test"]:
        subject = int(group.lstrip("S"))
        for protocol in settings["protocols"]:
            seed = session_seed(settings["seed"], subject, protocol)
            simulated = simulate_session(protocol, subject, duration_s or settings["duration_s"],
                                         settings["rate_hz"], fps, seed=seed)
            sessions.append(_Session(simulated, chain, fps, f"{group}-{protocol}"))
    return sessions


def test_sim_sessions(chain, fps: float, duration_s: float, gain: float | None = None,
                      subjects=TEST_SUBJECTS) -> list[_Session]:
    return [_Session(testsim.simulate_test_session(p, s, duration_s, 2048.0, fps, seed=s, gain=gain),
                     chain, fps, f"T{s}-{p}")
            for s in subjects for p in testsim.TEST_PROTOCOLS]


# ---------------------------------------------------------------------------------- predictors
def network_predictor(model, channels, outputs):
    def predict(envelopes: MuscleTrack) -> np.ndarray:
        return model.run(envelopes.select(channels)).select(outputs).values
    return predict


def ridge_predictor(ridge: RidgeBaseline, model_meta, channels, output_index, spec: dict):
    def predict(envelopes: MuscleTrack) -> np.ndarray:
        values = normalise_envelopes(envelopes.select(channels).values, spec)
        windows = make_windows(values, model_meta.window, model_meta.alignment)
        return ridge.predict(windows)[:, output_index]
    return predict


def fit_ridge(dataset, channels, outputs, window: int, alignment: str, spec: dict) -> RidgeBaseline:
    banks = {s: WindowBank(dataset.clips_of(s), "emg2exp", channels, outputs, window, alignment, spec)
             for s in ("train", "val")}
    return RidgeBaseline(0.0, 1.0).fit(banks["train"], banks["val"])


# ---------------------------------------------------------------------------------- summaries
def _row(result: dict, keep) -> dict:
    """Median over the ``keep`` outputs of the per-output medians (over relevant clips)."""
    names = result["names"]
    index = np.asarray([names.index(n) for n in keep if n in names], dtype=int)
    summary = result["summary"]

    def median(values):
        return clip_metrics.median_over_outputs(values, keep=index)

    control = summary.get("spearman_floored_control")
    return {"rho": median(summary["spearman"]["median"]), "rmse": median(summary["rmse"]["median"]),
            "smape": median(summary["smape"]["median"]), "peak_ratio": median(summary["peak_ratio"]["median"]),
            "onset_f1": median(result["onset_f1"]), "rho_floored": median(summary["spearman_floored"]["median"]),
            "rho_floored_control": median(control["median"]) if control else float("nan"),
            "rho_iqr": [median(summary["spearman"]["q25"]), median(summary["spearman"]["q75"])] if index.size else [],
            "clips": len(result["clips"]), "outputs": int(index.size)}


def _per_output(result: dict) -> dict:
    summary = result["summary"]
    return {name: {"rho": float(summary["spearman"]["median"][i]), "rmse": float(summary["rmse"]["median"][i]),
                   "peak_ratio": float(summary["peak_ratio"]["median"][i]),
                   "onset_f1": float(result["onset_f1"][i]), "clips": int(summary["spearman"]["n_clips"][i])}
            for i, name in enumerate(result["names"])}


# ------------------------------------------------------------------------------------ EMG2Exp
def evaluate_emg2exp(config: dict, model_path, previous_path=None, duration_s: float | None = None,
                     test_duration_s: float = 120.0, log=print, previous_name: str = "previous model") -> dict:
    model = load_model(model_path, "cpu")
    meta = model.metadata
    dataset = load_dataset(config, progress=False)
    fps, chain = meta.fps, model.processing_settings(**ROBUST_CHAIN)  # as the drive path
    spec = dict(meta.input_normalisation)
    electrode = tuple(n for n in electrode_driven_arkit() if n in meta.output_names)
    previous = load_model(previous_path, "cpu") if previous_path else None
    # each network reads the envelopes of its own chain (the causal model's and the offline one's differ)
    envelopes_of = {"network": lambda s: s.envelopes}
    if previous is not None:
        previous_chain = previous.processing_settings(**ROBUST_CHAIN)
        envelopes_of[previous_name] = lambda s: s.envelopes_for(previous_chain)
    log(f"simulating held-out sessions ({time.strftime('%H:%M:%S')})")
    sims = {"training simulator (held-out subjects)": training_sim_sessions(config, dataset, chain, duration_s),
            "test simulator (frozen)": test_sim_sessions(chain, fps, test_duration_s)}
    train_targets = np.concatenate([c.expression.select(meta.output_names).values for c in dataset.clips_of("train")])
    mean_face = train_targets.mean(axis=0)
    report = {"model": str(model_path), "testsim_sources": testsim.source_hash(), "electrode_driven": electrode,
              "montages": {}, "per_output": {}, "gains": {}, "probes": {}}
    rng = np.random.default_rng(0)
    for montage, channels in MONTAGES.items():
        driven = model.driven_outputs(channels) if model.masked else meta.output_names
        keep = tuple(n for n in electrode if n in driven)
        out_index = [meta.output_names.index(n) for n in driven]
        log(f"montage {montage}: ridge fit ({time.strftime('%H:%M:%S')})")
        ridge = fit_ridge(dataset, channels, meta.output_names, meta.window, meta.alignment, spec)
        predictors = {"network": network_predictor(model, channels, driven) if (model.masked or montage == "22")
                      else None,
                      "ridge": ridge_predictor(ridge, meta, channels, out_index, spec),
                      "mean face": lambda env, idx=out_index: np.tile(mean_face[idx], (env.n_frames, 1))}
        if previous is not None and (previous.masked or montage == "22"):
            predictors[previous_name] = network_predictor(previous, channels, driven)
        rows = {}
        for sim, sessions in sims.items():
            for name, predict in predictors.items():
                if predict is None:
                    continue
                result = evaluate_clips(predict, sessions, driven, fps,
                                        envelopes_of=envelopes_of.get(name, envelopes_of["network"]), rng=rng)
                rows[f"{sim} / {name}"] = {"electrode-driven": _row(result, keep), "all driven": _row(result, driven)}
                if montage in ("22", "2") and name == "network":
                    report["per_output"][f"{montage} / {sim}"] = _per_output(result)
        report["montages"][montage] = {"channels": list(channels), "driven": list(driven), "rows": rows}
        log(f"montage {montage}: done ({time.strftime('%H:%M:%S')})")
    test_sessions = sims["test simulator (frozen)"]
    report["rest"] = {name: rest_motion(network_predictor(m, FRIDLUND22, m.output_names), test_sessions,
                                        m.output_names, envelopes_of[name])
                      for name, m in (("network", model), (previous_name, previous)) if m is not None}
    report["gains"] = evaluate_gains(model, chain, fps, electrode, test_duration_s, rng, log)
    report["probes"] = evaluate_probes(model, chain, fps)
    return report


REST_LEVEL = 0.02  # a frame rests when every true weight is below this


def rest_motion(predict, sessions, outputs, envelopes_of) -> dict:
    """How still the face stays while the true face rests (every output's truth below
    :data:`REST_LEVEL`): the mean change of the weights per frame between consecutive rest frames,
    their mean level and the number of rest frames, pooled over sessions."""
    steps, levels = [], []
    for session in sessions:
        weights = np.asarray(predict(envelopes_of(session)), dtype=np.float64)
        truth = session.arkit.select(outputs).values
        n = min(len(weights), len(truth))
        weights, rest = weights[:n], truth[:n].max(axis=1) < REST_LEVEL
        steps.append(np.abs(np.diff(weights, axis=0))[rest[1:] & rest[:-1]])
        levels.append(weights[rest])
    steps, levels = np.concatenate(steps), np.concatenate(levels)
    return {"step": float(steps.mean()) if steps.size else float("nan"),
            "level": float(levels.mean()) if levels.size else float("nan"), "frames": int(len(levels))}


def evaluate_gains(model, chain, fps, electrode, duration_s, rng, log) -> dict:
    """Muscle signal × 0.3 and × 3 against the same noise (test simulator, all 22 channels),
    for each calibration; beside gain 1."""
    out = {}
    driven = model.driven_outputs(FRIDLUND22)
    keep = tuple(n for n in electrode if n in driven)
    for gain in (1.0,) + GAINS:
        sessions = test_sim_sessions(chain, fps, duration_s, gain=gain, subjects=TEST_SUBJECTS[:3])
        for calibration in ("percentile", "rest"):
            def predict(envelopes, c=calibration):
                return model.run(envelopes, calibration={"calibration": c}).select(driven).values
            result = evaluate_clips(predict, sessions, driven, fps, envelopes_of=lambda s: s.envelopes, rng=rng)
            out[f"gain {gain:g} / {calibration}"] = _row(result, keep)
        log(f"gain {gain:g}: done ({time.strftime('%H:%M:%S')})")
    return out


def evaluate_probes(model, chain, fps, gains=(1.0, 3.0)) -> dict:
    """Single-muscle probes (test simulator, left side): the peak of every driven shape, and whether
    the FACS shapes move on the probed side and no more than 0.3× on the other. Calibrated two ways:
    the probe's own percentile (the default reading; a probe has one muscle, so neighbours' crosstalk
    becomes their full scale) and a posed-maximum block of the same subject at the same gain (the
    "posed" protocol's 99th percentile per channel, carried over as fixed references). The block
    poses every action unit at least once, jaw clench included, as a lab's calibration block does."""
    out = {}
    for gain in gains:
        posed = _Session(posed_block(gain, fps), chain, fps, "T0-posed")
        references = activity_references(posed.envelopes.values, {**model.metadata.input_normalisation,
                                                                   "calibration": "percentile"},
                                         names=posed.envelopes.names)
        for muscle, shapes in PROBES.items():
            session = testsim.probe_session(muscle, "L", 20.0, 2048.0, fps, seed=1, gain=gain)
            envelopes = process_recording(session.recording, fps, chain)
            out[f"{muscle} x{gain:g} / own percentile"] = _probe_row(model.run(envelopes), shapes)
            out[f"{muscle} x{gain:g} / posed block"] = _probe_row(model.run(envelopes, calibration=references), shapes)
    return out


def posed_block(gain: float, fps: float, duration_s: float = POSED_BLOCK_S):
    """The probes' calibration block: the test simulator's "posed" protocol for the probes' subject
    (0), long enough to pose each of its action units; refused if one is missing."""
    block = testsim.simulate_test_session("posed", 0, duration_s, 2048.0, fps, seed=0, gain=gain)
    posed = {a.description for a in block.annotations if a.description.startswith("au/")}
    missing = sorted({f"au/{au}" for au in POSED_AUS} - posed)
    if missing:
        raise ValueError(f"a posed block of {duration_s:g} s lacks {', '.join(missing)}; make it longer")
    return block


def _probe_row(predicted, shapes) -> dict:
    """The 99th percentile of each driven shape; the FACS shapes on the probed (left) and the other side."""
    peaks = {n: float(np.percentile(predicted.select([n]).values, 99)) for n in predicted.names}
    return {"same_side": {s: peaks.get(f"{s}Left", peaks.get(s, float("nan"))) for s in shapes},
            "other_side": {s: peaks.get(f"{s}Right", float("nan")) for s in shapes},
            "max_other_shape": max((v for k, v in peaks.items() if not any(k.startswith(s) for s in shapes)),
                                   default=float("nan")),
            "top": sorted(peaks.items(), key=lambda kv: -kv[1])[:3]}


# ------------------------------------------------------------------------------------ Exp2EMG
def evaluate_exp2emg(config: dict, model_path, duration_s: float | None = None, test_duration_s: float = 120.0,
                     log=print) -> dict:
    model = load_model(model_path, "cpu")
    meta = model.metadata
    dataset = load_dataset(config, progress=False)
    fps, chain = meta.fps, model.processing_settings(**ROBUST_CHAIN)  # as the drive path
    spec = dict(meta.output_normalisation)
    banks = {s: WindowBank(dataset.clips_of(s), "exp2emg", meta.input_names, meta.output_names, meta.window,
                           meta.alignment, dataset.emg_normalisation) for s in ("train", "val")}
    ridge = RidgeBaseline(0.0, None).fit(banks["train"], banks["val"])
    mean_envelope = banks["train"].targets().mean(axis=0)
    sims = {"training simulator (held-out subjects)": training_sim_sessions(config, dataset, chain, duration_s),
            "test simulator (frozen)": test_sim_sessions(chain, fps, test_duration_s)}

    def truth_of(session):
        values = normalise_envelopes(session.envelopes.select(meta.output_names).values, spec)
        return MuscleTrack(values, meta.output_names, fps, "fridlund22", "normalised")

    def ridge_predict(arkit):
        return ridge.predict(make_windows(arkit.select(meta.input_names).values, meta.window, meta.alignment))

    predictors = {"network": lambda arkit: model.run(arkit).values, "ridge": ridge_predict,
                  "mean envelope": lambda arkit: np.tile(mean_envelope, (arkit.n_frames, 1))}
    report = {"model": str(model_path), "testsim_sources": testsim.source_hash(), "rows": {}, "per_output": {}}
    for sim, sessions in sims.items():
        for name, predict in predictors.items():
            result = evaluate_clips(predict, sessions, meta.output_names, fps, envelopes_of=lambda s: s.arkit,
                                    truth_of=truth_of)
            row = _row(result, meta.output_names)
            per = _per_output(result)
            row["zygomaticus"] = float(np.nanmedian([per[c]["rho"] for c in ("Zyg_L", "Zyg_R")]))
            row["corrugator"] = float(np.nanmedian([per[c]["rho"] for c in ("Corr_L", "Corr_R")]))
            report["rows"][f"{sim} / {name}"] = row
            if name == "network":
                report["per_output"][sim] = per
        log(f"{sim}: done ({time.strftime('%H:%M:%S')})")
    return report


# ------------------------------------------------------------------------------------ markdown
def _f(value, digits=2) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def markdown(report: dict) -> str:
    lines = []
    if "montages" in report:
        lines += ["Per clip, median over relevant clips, then over outputs (IQR of ρ over outputs' clip "
                  "quartiles in brackets). *Electrode-driven*: shapes the training simulator moves mostly "
                  "through muscles under an electrode; *all driven*: every shape the montage's sites move.", ""]
        lines += ["| montage | data / predictor | ρ electrode-driven | [IQR] | RMSE | SMAPE % | peak ratio | "
                  "onset F1 | floored ρ | random-amplitude control | ρ all driven |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for montage, block in report["montages"].items():
            for label, rows in block["rows"].items():
                e, a = rows["electrode-driven"], rows["all driven"]
                iqr = f"[{_f(e['rho_iqr'][0])}, {_f(e['rho_iqr'][1])}]" if e["rho_iqr"] else ""
                lines.append(f"| {montage} | {label} | {_f(e['rho'])} | {iqr} | {_f(e['rmse'], 3)} | "
                             f"{_f(e['smape'], 0)} | {_f(e['peak_ratio'])} | {_f(e['onset_f1'])} | "
                             f"{_f(e['rho_floored'])} | {_f(e['rho_floored_control'])} | {_f(a['rho'])} |")
        if report.get("rest"):
            lines += ["", f"At rest (test simulator, 22 channels, all outputs, frames where every true weight is "
                          f"below {REST_LEVEL:g}):", "", "| predictor | mean change per frame | mean weight | rest frames |",
                      "|---|---|---|---|"]
            lines += [f"| {name} | {_f(r['step'], 4)} | {_f(r['level'], 3)} | {r['frames']} |"
                      for name, r in report["rest"].items()]
        lines += ["", "Gain (test simulator, 22 channels, electrode-driven shapes):", "",
                  "| gain / calibration | ρ | RMSE | peak ratio | onset F1 |", "|---|---|---|---|---|"]
        for label, row in report["gains"].items():
            lines.append(f"| {label} | {_f(row['rho'])} | {_f(row['rmse'], 3)} | {_f(row['peak_ratio'])} | "
                         f"{_f(row['onset_f1'])} |")
        lines += ["", "Single-muscle probes (test simulator, left side; 99th percentile of the weight):", "",
                  "| probe | FACS shapes, same side | other side | largest other shape | top 3 |",
                  "|---|---|---|---|---|"]
        for label, row in report["probes"].items():
            same = ", ".join(f"{k} {_f(v)}" for k, v in row["same_side"].items()) or "(none expected)"
            other = ", ".join(f"{k} {_f(v)}" for k, v in row["other_side"].items()) or "–"
            top = ", ".join(f"{k} {_f(v)}" for k, v in row["top"])
            lines.append(f"| {label} | {same} | {other} | {_f(row['max_other_shape'])} | {top} |")
    else:
        lines += ["| data / predictor | ρ median over 22 | [IQR] | zygomaticus ρ | corrugator ρ | RMSE | "
                  "SMAPE % | peak ratio | onset F1 |", "|---|---|---|---|---|---|---|---|---|"]
        for label, row in report["rows"].items():
            iqr = f"[{_f(row['rho_iqr'][0])}, {_f(row['rho_iqr'][1])}]" if row["rho_iqr"] else ""
            lines.append(f"| {label} | {_f(row['rho'])} | {iqr} | {_f(row['zygomaticus'])} | "
                         f"{_f(row['corrugator'])} | {_f(row['rmse'], 3)} | {_f(row['smape'], 0)} | "
                         f"{_f(row['peak_ratio'])} | {_f(row['onset_f1'])} |")
    lines.append("")
    lines.append(f"Test simulator sources: `{report['testsim_sources']}` (models/testsim, frozen before training).")
    return "\n".join(lines)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.clip_eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--model", type=Path, help="ONNX file (default: the config's [output] onnx)")
    parser.add_argument("--previous", type=Path, help="EMG2Exp: the previously shipped model, scored beside "
                        "(on the envelopes of its own chain)")
    parser.add_argument("--previous-name", default="previous model", help="its name in the tables")
    parser.add_argument("--duration", type=float, help="seconds per held-out session (default: the config's)")
    parser.add_argument("--test-duration", type=float, default=120.0, help="seconds per test-simulator session")
    parser.add_argument("--json", type=Path, help="write the report here")
    parser.add_argument("--markdown", type=Path, help="write the card's tables here")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        model_path = args.model or resolve(config["output"]["onnx"])
        if config["direction"] == "emg2exp":
            report = evaluate_emg2exp(config, model_path, args.previous, args.duration, args.test_duration,
                                      log=lambda m: print(m, file=sys.stderr), previous_name=args.previous_name)
        else:
            report = evaluate_exp2emg(config, model_path, args.duration, args.test_duration,
                                      log=lambda m: print(m, file=sys.stderr))
    except EiferError as exc:
        print(f"models.clip_eval: error: {exc}", file=sys.stderr)
        return 3
    text = markdown(report)
    print(text)
    for path, content in ((args.json, json.dumps(_jsonable(report), indent=1)), (args.markdown, text)):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
