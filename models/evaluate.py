"""Evaluate an exported EIFER model on its held-out split, beside a ridge-regression baseline.

    python -m models.evaluate --config models/configs/emg2arkit.toml --plot build/emg2arkit.png

Prints EIFER's metrics (MSE, RMSE, SMAPE, Spearman rho) per output and their medians, for the
ONNX model (default: the config's ``[output] onnx``, run through the add-on's own runtime,
``eifer_blender.core.network``) and for ridge regression fitted on the same training split with
the same input window. Metrics pool all frames of all test clips; "rho active" is Spearman rho
over the frames where the truth is active. :func:`evaluate_clips` scores instead as EIFER does,
per ~6 s event-centred clip and per output (``eifer_blender.core.analysis.clips``). ``--oracle`` adds reference scores from the
simulator's hidden ground truth; ``--markdown`` prints the table as the model cards show it.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eifer_blender.core.analysis import clips as clip_metrics
from eifer_blender.core.analysis.metrics import MetricTable, score, spearman
from eifer_blender.core.analysis.plots import pyplot, save_figure
from eifer_blender.core.envelopes import process_recording
from eifer_blender.core.errors import EiferError
from eifer_blender.core.expression.spaces import ARKIT52, ARKIT_OBSERVABLE
from eifer_blender.core.network import Model, load_model
from eifer_blender.core.simulator import physiology

from .data import DataSet, WindowBank
from .ridge import RidgeBaseline, head_range
from .train import _parse_override, channel_names, load_config, load_dataset, resolve

# a frame counts as "active" for an output when its true value reaches this (per output space)
ACTIVE_THRESHOLD = {"arkit52": 0.05, "fridlund22": 0.1}
MIN_ACTIVE_FRAMES = 30


def electrode_driven_arkit(min_share: float = 0.5) -> tuple[str, ...]:
    """ARKit shapes the simulator moves mostly by muscles under Fridlund electrodes.

    A shape counts when at least ``min_share`` of its drive (unit → AU → ARKit weights) comes
    from units with a standard recording site: brows, cheekSquint, smile, frown, funnel, pucker,
    shrugLower and noseSneer. The others (eyeBlink, eyeSquint, eyeWide, jawOpen, mouthDimple,
    mouthLowerDown, mouthPress, mouthRoll, mouthStretch, mouthUpperUp) come from muscles that
    reach the electrodes only as crosstalk; mouthClose and mouthShrugUpper never move.
    """
    drive = np.abs(physiology.unit_to_au_matrix() @ physiology.au_to_arkit_matrix())
    recorded = np.repeat([unit.fridlund for unit in physiology.MUSCLE_UNITS], 2)
    total = drive.sum(axis=0)
    share = np.divide(drive[recorded].sum(axis=0), total, out=np.zeros_like(total), where=total > 0)
    return tuple(name for name, s in zip(ARKIT52, share) if s >= min_share)


@dataclass
class Evaluation:
    """Scores of the network and the ridge baseline on one split, plus what was scored."""

    model: Model
    names: tuple[str, ...]
    network: MetricTable
    ridge: MetricTable
    ridge_alpha: float
    summary_names: tuple[str, ...]
    test_groups: list[str]
    n_frames: int
    clips: list  # (clip, truth, network prediction, ridge prediction) per test clip
    split: str = "test"
    active_fraction: float = float("nan")  # median share of frames where an output is active

    def summary(self) -> dict:
        return {"network": self.network.summary(self.summary_names),
                "ridge": self.ridge.summary(self.summary_names),
                "summary_over": len(self.summary_names), "frames": self.n_frames,
                "test_groups": self.test_groups, "ridge_alpha": self.ridge_alpha,
                "active_fraction": self.active_fraction}


def evaluate(config: dict, model_path, split: str = "test", providers: str = "cpu",
             dataset: DataSet | None = None, progress: bool = False) -> Evaluation:
    """Score the ONNX model and a ridge baseline on ``split`` of the config's data set."""
    model = load_model(model_path, providers)
    dataset = dataset or load_dataset(config, progress=progress)
    m = model.metadata
    direction = m.direction
    spec = dataset.emg_normalisation
    banks = {s: WindowBank(dataset.clips_of(s), direction, m.input_names, m.output_names,
                           m.window, m.alignment, spec) for s in ("train", "val")}
    ridge = RidgeBaseline(*head_range(m.head)).fit(banks["train"], banks["val"])
    truths, nets, ridges, clips = [], [], [], []
    for clip in dataset.clips_of(split):
        source, _ = clip.tracks(direction)
        predicted = model.run(source).values  # the add-on's runtime path, end to end
        bank = WindowBank([clip], direction, m.input_names, m.output_names, m.window, m.alignment, spec)
        truth = bank.targets()
        baseline = ridge.predict(bank.all_windows())
        truths.append(truth), nets.append(predicted), ridges.append(baseline)
        clips.append((clip, truth, predicted, baseline))
    if not truths:
        raise EiferError(f"the {split} split is empty")
    truth, net_pred, ridge_pred = (np.concatenate(a) for a in (truths, nets, ridges))
    names = m.output_names
    if m.output_space == "arkit52":
        summary_names = tuple(n for n in names if n in ARKIT_OBSERVABLE)
    else:
        summary_names = names
    tables = []
    for pred in (net_pred, ridge_pred):
        table = score(pred, truth, names)
        table.values["spearman_active"] = spearman_active(pred, truth, ACTIVE_THRESHOLD.get(m.output_space))
        tables.append(table)
    threshold = ACTIVE_THRESHOLD.get(m.output_space)
    summary_idx = [names.index(n) for n in summary_names]
    active_fraction = (float(np.median((truth[:, summary_idx] >= threshold).mean(axis=0)))
                       if threshold is not None else float("nan"))
    return Evaluation(model, names, tables[0], tables[1], ridge.alpha, summary_names,
                      dataset.split.get(split, []), len(truth), clips, split, active_fraction)


def spearman_active(pred: np.ndarray, true: np.ndarray, threshold: float | None) -> np.ndarray:
    """Spearman rho per output over the frames where the truth is at least ``threshold``.

    How well the model follows an expression's intensity while it is shown; NaN for outputs
    with fewer than MIN_ACTIVE_FRAMES such frames, or when the space has no threshold.
    """
    rho = np.full(true.shape[1], np.nan)
    if threshold is None:
        return rho
    for k in range(true.shape[1]):  # the frame subset differs per output
        active = true[:, k] >= threshold
        if active.sum() >= MIN_ACTIVE_FRAMES:
            rho[k] = spearman(pred[active, k], true[active, k])[0]
    return rho


# ------------------------------------------------------------------------- per-clip evaluation
def scored_events(annotations) -> list:
    """The expression events of a session: every annotation but ``blink`` and ``artefact/...``."""
    return [a for a in annotations if a.description != "blink" and not a.description.startswith("artefact/")]


def evaluate_clips(predict, sessions, outputs, fps: float, *, length_s: float = clip_metrics.CLIP_LENGTH_S,
                   threshold: float = clip_metrics.RELEVANT_THRESHOLD, floor: float = clip_metrics.REST_FLOOR,
                   envelopes_of=None, truth_of=None, rng: np.random.Generator | None = None) -> dict:
    """Score ``predict`` as EIFER does: per event-centred clip and per output, then medians.

    Parameters
    ----------
    predict : callable
        Envelopes (a MuscleTrack) → prediction (frames, outputs), columns in ``outputs`` order:
        a network, the ridge baseline, ``clip_metrics.mean_face_baseline(...)``, a simulator.
    sessions : iterable
        Objects with ``.recording``, ``.arkit`` (the truth, an ExpressionTrack at ``fps``) and
        ``.annotations`` (``Annotation``), e.g. simulated sessions.
    outputs : sequence of str
        The truth's channels to score, in the prediction's column order.
    fps : float
        Frame rate of envelopes, prediction and truth.
    length_s, threshold, floor
        Clip length; the level at which an output is relevant in a clip (and an onset); the
        rest floor of the floored reading and the peak ratio.
    envelopes_of, truth_of : callable, optional
        session → MuscleTrack / Track; default ``process_recording(session.recording, fps)``
        and ``session.arkit``.
    rng : numpy Generator, optional
        When given, also score the random-amplitude control of each prediction.

    Returns
    -------
    dict
        ``names``; ``clips``: (session index, frame slice) per clip; ``scores``: {name: (clips,
        outputs)}: ``spearman``, ``smape``, ``rmse``, ``peak_ratio``, ``spearman_floored`` (ρ of
        prediction and truth both floored at ``floor``) and, with ``rng``,
        ``spearman_floored_control``; ``relevant`` (clips, outputs); ``summary``: per-output
        median, quartiles and clip count over relevant clips; ``medians``: {name: median over
        outputs}; ``onset_f1`` per output and ``median_onset_f1``. Onsets are counted over each
        whole session and the counts summed over sessions, so overlapping clips do not count
        an onset twice. Prediction and truth are cut to the frames they share; clips are
        centred on the centres of the scored events (:func:`scored_events`).
    """
    outputs = tuple(outputs)
    envelopes_of = envelopes_of or (lambda session: process_recording(session.recording, fps))
    truth_of = truth_of or (lambda session: session.arkit)
    clips, relevant, counts = [], [], np.zeros((3, len(outputs)), dtype=int)
    scores: dict[str, list] = {}
    for index, session in enumerate(sessions):
        truth_track = truth_of(session)
        if abs(float(truth_track.fps) - float(fps)) > 1e-9:
            raise EiferError(f"session {index}: the truth runs at {truth_track.fps} fps, not {fps}; resample it first")
        truth = truth_track.select(outputs).values.astype(np.float64)
        pred = np.asarray(predict(envelopes_of(session)), dtype=np.float64)
        if pred.ndim != 2 or pred.shape[1] != len(outputs):
            raise EiferError(f"session {index}: the prediction has shape {pred.shape}, "
                             f"expected (frames, {len(outputs)} outputs)")
        n = min(len(pred), len(truth))
        pred, truth = pred[:n], truth[:n]
        events = scored_events(session.annotations)
        session_clips = clip_metrics.event_clips(
            clip_metrics.event_centres_s([a.onset_s for a in events], [a.duration_s for a in events]),
            n, fps, length_s)
        counts += np.stack(clip_metrics.onset_counts(pred, truth, fps, threshold))
        if not session_clips:
            continue
        per_clip = clip_metrics.per_clip_scores(pred, truth, session_clips, floor)
        per_clip["spearman_floored"] = clip_metrics.per_clip_scores(
            clip_metrics.floored(pred, floor), clip_metrics.floored(truth, floor), session_clips)["spearman"]
        if rng is not None:
            control = clip_metrics.random_amplitude_control(pred, threshold, rng, floor)
            per_clip["spearman_floored_control"] = clip_metrics.per_clip_scores(
                control, clip_metrics.floored(truth, floor), session_clips)["spearman"]
        for name, values in per_clip.items():
            scores.setdefault(name, []).append(values)
        relevant.append(clip_metrics.relevant_mask(truth, session_clips, threshold))
        clips += [(index, clip) for clip in session_clips]
    if not clips:
        raise EiferError("no event clips to score: the sessions have no expression events "
                         f"that leave at least half of a {length_s} s clip inside the recording")
    stacked = {name: np.concatenate(values) for name, values in scores.items()}
    relevant_all = np.concatenate(relevant)
    summary = clip_metrics.summarise(stacked, relevant_all)
    onset_f1 = clip_metrics.f1_from_counts(*counts)
    return {"names": outputs, "clips": clips, "scores": stacked, "relevant": relevant_all,
            "summary": summary,
            "medians": {name: clip_metrics.median_over_outputs(s["median"]) for name, s in summary.items()},
            "onset_f1": onset_f1, "median_onset_f1": clip_metrics.median_over_outputs(onset_f1)}


def oracle_scores(config: dict, dataset: DataSet, split: str = "test", fit_split: str = "val") -> dict:
    """Reference scores from the simulator's hidden ground truth (simulated data only).

    ``emg2exp``: the outputs predicted by least squares from the TRUE activations of the 22
    muscles under the Fridlund electrodes (noise-free, no crosstalk), fitted on ``fit_split``
    and scored on ``split``: what those muscles explain linearly (the rest of the face is moved
    by muscles no electrode sits on; a model can still pick those up through crosstalk, so this
    is a reference, not a bound). ``exp2emg``: the noise-free envelopes (the simulator's
    ``true_envelope``, RMS-smoothed like the processing) scored against the processed ones:
    how much of a measured envelope's rank order is muscle activity at all, an upper reference
    for any Exp2EMG model. Returns per-output ``spearman`` and ``spearman_active`` arrays (same
    thresholds as :func:`evaluate`) and their medians.
    """
    from scipy.ndimage import uniform_filter1d

    from eifer_blender.core.recording.montage import FRIDLUND22
    from eifer_blender.core.simulator import physiology
    from eifer_blender.core.simulator import session as sim_session

    from .simdata import data_settings, session_seed

    if config["data"].get("source", "simulated") != "simulated":
        raise EiferError("the oracle needs simulated data (it uses the true activations)")
    settings = data_settings(config["data"])
    _, output_names = channel_names(config, dataset)

    def sessions(split_name):
        for clip in dataset.clips_of(split_name):
            subject = int(clip.subject.lstrip("S"))
            session = sim_session.simulate_session(
                clip.protocol, subject, float(settings["duration_s"]), float(settings["rate_hz"]),
                float(settings["fps"]), seed=session_seed(settings["seed"], subject, clip.protocol))
            n = clip.n_frames
            if not np.allclose(session.arkit.values[:n], clip.expression.values, atol=1e-6):
                raise EiferError("the cached data set no longer matches the simulator; regenerate it")
            yield clip, session, n

    if config["direction"] == "emg2exp":
        sites = [physiology.UNIT_INDEX[n] for n in FRIDLUND22]

        def arrays(split_name):
            xs, ys = [], []
            for clip, session, n in sessions(split_name):
                xs.append(session.activations.values[:n, sites])
                ys.append(clip.expression.select(output_names).values)
            x = np.concatenate(xs)
            return np.hstack([x, np.ones((len(x), 1))]), np.concatenate(ys)

        x_fit, y_fit = arrays(fit_split)
        coef = np.linalg.lstsq(x_fit, y_fit, rcond=None)[0]
        x_test, truth = arrays(split)
        pred = np.clip(x_test @ coef, 0.0, 1.0)
        space = dataset.clips[0].expression.space
    else:
        from eifer_blender.core.envelopes import normalise_envelopes

        spec = dataset.emg_normalisation
        preds, truths = [], []
        window = max(1, round(float(dataset.processing.get("rms_window_s", 0.5)) * settings["fps"]))
        for clip, session, n in sessions(split):
            clean = session.true_envelope().select(output_names).values[:n].astype(np.float64)
            smoothed = np.sqrt(uniform_filter1d(clean**2, window, axis=0, mode="nearest"))
            # both normalised per recording, as the model's targets are
            preds.append(normalise_envelopes(smoothed, spec))
            truths.append(normalise_envelopes(clip.emg.select(output_names).values, spec))
        pred, truth = np.concatenate(preds), np.concatenate(truths)
        space = "fridlund22"
    rho = spearman(pred, truth)
    active = spearman_active(pred, truth, ACTIVE_THRESHOLD.get(space))
    keep = [i for i, n in enumerate(output_names) if n in ARKIT_OBSERVABLE or space != "arkit52"]
    return {"names": output_names, "spearman": rho, "spearman_active": active,
            "median_spearman": float(np.nanmedian(rho[keep])),
            "median_spearman_active": float(np.nanmedian(active[keep])) if np.isfinite(active[keep]).any() else float("nan")}


# ---------------------------------------------------------------------------------------- reports
def format_table(ev: Evaluation, markdown: bool = False, oracle: dict | None = None) -> str:
    """Per-output metrics for network and ridge (and the oracle), then the medians."""
    header = ["output", "MSE", "RMSE", "SMAPE %", "rho", "rho active", "ridge MSE", "ridge SMAPE %",
              "ridge rho", "ridge rho active"]
    if oracle:
        header += ["oracle rho", "oracle rho active"]

    def cells(a, b, c):
        row = [f"{a['mse']:.4g}", f"{a['rmse']:.4g}", f"{a['smape']:.1f}", f"{a['spearman']:.3f}",
               f"{a['spearman_active']:.3f}", f"{b['mse']:.4g}", f"{b['smape']:.1f}",
               f"{b['spearman']:.3f}", f"{b['spearman_active']:.3f}"]
        if c is not None:
            row += [f"{c[0]:.3f}", f"{c[1]:.3f}"]
        return row

    rows = []
    for i, name in enumerate(ev.names):
        c = (oracle["spearman"][i], oracle["spearman_active"][i]) if oracle else None
        rows.append([name] + cells(ev.network.row(name), ev.ridge.row(name), c))
    label = f"median ({len(ev.summary_names)})"
    c = (oracle["median_spearman"], oracle["median_spearman_active"]) if oracle else None
    rows.append([f"**{label}**" if markdown else label.upper()]
                + cells(ev.network.summary(ev.summary_names), ev.ridge.summary(ev.summary_names), c))
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r).replace("nan", "–") + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def plot_clip(ev: Evaluation, path, clip_index: int = 0, n_outputs: int = 6) -> Path:
    """PNG of predicted vs true curves for one clip of the split (the outputs that move most)."""
    plt = pyplot()
    clip, truth, predicted, baseline = ev.clips[clip_index % len(ev.clips)]
    order = np.argsort(-truth.std(axis=0))[:n_outputs]
    times = np.arange(len(truth)) / ev.model.fps
    fig, axes = plt.subplots(len(order), 1, figsize=(10, 1.6 * len(order)), sharex=True, squeeze=False)
    for ax, k in zip(axes[:, 0], order):
        ax.plot(times, truth[:, k], color="black", lw=1.2, label="true")
        ax.plot(times, predicted[:, k], color="tab:red", lw=1.0, label=f"{ev.model.path.stem}")
        ax.plot(times, baseline[:, k], color="tab:blue", lw=0.8, alpha=0.7, label="ridge")
        ax.set_ylabel(ev.names[k], rotation=0, ha="right", fontsize=8)
    axes[0, 0].legend(loc="upper right", fontsize=7, ncol=3)
    axes[0, 0].set_title(f"{ev.model.path.name}: {ev.split} clip {clip.key} (subject {clip.subject}, {clip.protocol})",
                         fontsize=9)
    axes[-1, 0].set_xlabel("time (s)")
    return save_figure(fig, path, dpi=72)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True, help="the config the model was trained with")
    parser.add_argument("--model", type=Path,
                        help="ONNX file (default: the config's [output] onnx, else <dir>/<name>.onnx)")
    parser.add_argument("--set", dest="overrides", action="append", type=_parse_override, default=[],
                        metavar="SECTION.KEY=VALUE", help="override a config value, as in training")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--plot", type=Path, help="write a PNG of predicted vs true curves here")
    parser.add_argument("--clip", type=int, default=0, help="which test clip to plot (index)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--json", type=Path, help="also write per-output metrics as JSON here")
    parser.add_argument("--providers", default="cpu", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--oracle", action="store_true",
                        help="also score the simulator's ground-truth oracle (re-simulates the split)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, dict(args.overrides))
        output = config["output"]
        model_path = args.model or resolve(output.get("onnx") or Path(
            output.get("dir", f"build/models/{config['name']}")) / f"{config['name']}.onnx")
        dataset = load_dataset(config, progress=sys.stderr.isatty())
        ev = evaluate(config, model_path, args.split, args.providers, dataset=dataset)
        oracle = oracle_scores(config, dataset, args.split) if args.oracle else None
    except EiferError as exc:
        print(f"models.evaluate: error: {exc}", file=sys.stderr)
        return 3
    s = ev.summary()
    print(f"{ev.model!r}")
    print(f"{args.split} split: {len(s['test_groups'])} held-out groups ({', '.join(map(str, s['test_groups']))}), "
          f"{s['frames']} frames; ridge alpha {s['ridge_alpha']:g}; an output is active (rho active) "
          f"in {100 * s['active_fraction']:.0f} % of the frames (median over outputs)")
    print(format_table(ev, args.markdown, oracle))
    net, ridge = s["network"], s["ridge"]
    print(f"median Spearman rho over {s['summary_over']} outputs: network {net['spearman']:.3f}, "
          f"ridge {ridge['spearman']:.3f} (difference {net['spearman'] - ridge['spearman']:+.3f}); "
          f"on active frames: network {net['spearman_active']:.3f}, ridge {ridge['spearman_active']:.3f}")
    if oracle:
        print(f"oracle: median rho {oracle['median_spearman']:.3f}, on active frames "
              f"{oracle['median_spearman_active']:.3f}")
    if args.plot:
        print(f"plot: {plot_clip(ev, args.plot, args.clip)}")
    if args.json:
        rows = {n: {"network": ev.network.row(n), "ridge": ev.ridge.row(n)} for n in ev.names}
        if oracle:
            for i, n in enumerate(ev.names):
                rows[n]["oracle"] = {"spearman": float(oracle["spearman"][i]),
                                      "spearman_active": float(oracle["spearman_active"][i])}
        args.json.write_text(json.dumps({"summary": s, "outputs": rows}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
