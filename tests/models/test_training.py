"""Tiny trainings end to end: simulator -> processing -> torch -> ONNX -> ONNX Runtime (seconds)."""
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from eifer_blender.core.envelopes import process_recording
from eifer_blender.core.network import load_model
from eifer_blender.core.recording.montage import FRIDLUND22
from eifer_blender.core.simulator.session import simulate_session
from eifer_blender.core.tracks import ExpressionTrack, MuscleTrack
from models import evaluate as evaluate_cli
from models import train as train_cli
from models.data import WindowBank, subject_split
from models.export import check_onnx_matches_torch, export_onnx
from models.nets import NetConfig, WindowNet

TINY = """
name = "{name}"
direction = "{direction}"
version = "0.0.1"

[data]
source = "simulated"
subjects = 3
first_subject = 500
protocols = ["mixed", "schaede"]
duration_s = 20.0
rate_hz = 1024.0
fps = 30.0
seed = 3
workers = 1
cache_dir = "{tmp}/cache"

[data.processing]
rms_window_s = 0.2

[model]
window = 5
alignment = "{alignment}"
hidden = 32
depth = 1
conv = [[8, 3, 1]]

[train]
epochs = 4
batch_size = 128
lr = 0.003
patience = 10
seed = 0
device = "cpu"

[output]
dir = "{tmp}/out"
onnx = "{tmp}/shipped/{name}.onnx"
"""


def _config(tmp_path: Path, name="tiny_emg2arkit", direction="emg2exp", alignment="centred") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(TINY.format(name=name, direction=direction, alignment=alignment, tmp=tmp_path))
    return path


def test_emg2exp_trains_exports_ships_and_runs_in_onnx_runtime(tmp_path, capsys):
    config_path = _config(tmp_path, alignment="causal")
    assert train_cli.main(["--config", str(config_path), "--ship", "--quiet"]) == 0
    out = tmp_path / "out"
    report = json.loads((out / "report.json").read_text())
    assert report["onnx_max_abs_diff"] <= 1e-5
    history = report["history"]
    assert len(history) == 4 and history[-1]["train_loss"] < history[0]["train_loss"]
    assert (out / "best.pt").is_file() and (out / "last.pt").is_file()
    shipped = tmp_path / "shipped" / "tiny_emg2arkit.onnx"
    assert shipped.read_bytes() == (out / "tiny_emg2arkit.onnx").read_bytes()
    assert list((tmp_path / "cache").glob("sim-*.npz"))  # the data set went to the given cache

    model = load_model(shipped, providers="cpu")
    m = model.metadata
    assert (m.direction, m.input_space, m.output_space) == ("emg2exp", "fridlund22", "arkit52")
    assert m.input_names == FRIDLUND22 and m.fps == 30.0 and m.window == 5 and m.alignment == "causal"
    assert m.input_normalisation["method"] == "percentile" and m.processing["rms_window_s"] == 0.2
    assert "3 subjects" in m.training_data and "split by subject" in m.training_data
    # a new recording, processed as the model says, runs through the runtime at another fps
    session = simulate_session("mixed", 900, 12.0, 1024.0, 30.0, seed=5)
    envelopes = process_recording(session.recording, 24.0, model.processing_settings())
    assert envelopes.units == "uV"
    out_track = model.run(envelopes)
    assert isinstance(out_track, ExpressionTrack) and out_track.fps == 24.0
    assert out_track.n_frames == envelopes.n_frames and out_track.names == m.output_names
    assert np.isfinite(out_track.values).all() and (0 <= out_track.values).all() and (out_track.values <= 1).all()


def test_exp2emg_trains_and_maps_a_face_to_envelopes(tmp_path):
    config = train_cli.load_config(_config(tmp_path, "tiny_arkit2emg", "exp2emg"))
    result = train_cli.train(config, progress=False, log=lambda *a: None)
    m = result.metadata
    assert m.direction == "exp2emg" and m.input_name == "params" and m.head == "softplus"
    assert m.output_names == FRIDLUND22 and m.output_units == "normalised"
    assert "mouthClose" not in m.input_names  # never moves in the simulator: not an input
    assert result.onnx_max_abs_diff <= 1e-5
    model = load_model(result.onnx_path, "cpu")
    face = simulate_session("schaede", 901, 10.0, 1024.0, 30.0, seed=2).arkit
    envelopes = model.run(face)
    assert isinstance(envelopes, MuscleTrack) and envelopes.space == "fridlund22"
    assert (envelopes.values >= 0).all()


def test_resume_continues_from_the_last_checkpoint(tmp_path):
    config = train_cli.load_config(_config(tmp_path, "tiny_resume"), {"train.epochs": 2})
    first = train_cli.train(config, progress=False, log=lambda *a: None)
    config["train"]["epochs"] = 3
    lines = []
    resumed = train_cli.train(config, progress=False, resume=True, log=lines.append)
    assert any("resuming tiny_resume after epoch 1" in line for line in lines)
    assert len(resumed.history) == 3
    assert resumed.history[:2] == first.history


def test_training_is_seeded(tmp_path):
    config = train_cli.load_config(_config(tmp_path, "tiny_seeded"), {"train.epochs": 1})
    a = train_cli.train(config, tmp_path / "a", progress=False, log=lambda *a: None)
    b = train_cli.train(config, tmp_path / "b", progress=False, log=lambda *a: None)
    assert (tmp_path / "a" / "tiny_seeded.onnx").read_bytes() == (tmp_path / "b" / "tiny_seeded.onnx").read_bytes()
    assert a.history[0]["val_loss"] == b.history[0]["val_loss"]


def test_evaluate_prints_metrics_against_ridge_and_plots(tmp_path, capsys):
    config_path = _config(tmp_path, "tiny_eval")
    assert train_cli.main(["--config", str(config_path), "--quiet", "--set", "train.epochs=2"]) == 0
    capsys.readouterr()
    plot, table_json = tmp_path / "curves.png", tmp_path / "metrics.json"
    rc = evaluate_cli.main(["--config", str(config_path), "--model", str(tmp_path / "out" / "tiny_eval.onnx"),
                            "--plot", str(plot), "--json", str(table_json), "--oracle"])
    printed = capsys.readouterr().out
    assert rc == 0
    for heading in ("MSE", "RMSE", "SMAPE %", "rho", "ridge rho", "oracle rho", "MEDIAN (37)"):
        assert heading in printed
    assert "oracle: median rho" in printed
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", plot.read_bytes()[16:24])
    assert width > 300 and height > 300
    data = json.loads(table_json.read_text())
    assert set(data["outputs"]) >= {"mouthSmileLeft", "browInnerUp"}
    row = data["outputs"]["mouthSmileLeft"]["network"]
    assert set(row) >= {"mse", "rmse", "smape", "spearman", "spearman_active"}
    assert row["rmse"] == pytest.approx(np.sqrt(row["mse"]))


def test_config_errors_are_input_errors(tmp_path, capsys):
    missing = tmp_path / "absent.toml"
    assert train_cli.main(["--config", str(missing)]) == 3
    assert "absent.toml: config file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\ndirection = "sideways"\n')
    assert train_cli.main(["--config", str(bad)]) == 3
    assert "direction must be" in capsys.readouterr().err
    protocol = _config(tmp_path, "tiny_bad_protocol")
    assert train_cli.main(["--config", str(protocol), "--set", 'data.protocols=["dancing"]']) == 3
    assert "unknown protocol 'dancing'" in capsys.readouterr().err


# ------------------------------------------------------------------------------- building blocks
def test_subject_split_keeps_subjects_whole_and_is_seeded():
    subjects = [f"S{i:03d}" for i in range(40)]
    split = subject_split(subjects, (0.7, 0.15, 0.15), seed=7)
    assert [len(split[k]) for k in ("train", "val", "test")] == [28, 6, 6]
    assert set().union(*split.values()) == set(subjects)
    assert not set(split["train"]) & set(split["test"]) and not set(split["val"]) & set(split["test"])
    assert subject_split(subjects, seed=7) == split and subject_split(subjects, seed=8) != split
    with pytest.raises(ValueError, match="at least 3"):
        subject_split(["a", "b"])


def test_window_bank_matches_runtime_windows_and_normalises_per_recording():
    from eifer_blender.core.envelopes import normalise_envelopes
    from eifer_blender.core.network.windows import make_windows
    from models.data import Clip

    rng = np.random.default_rng(0)
    clips = []
    for k, n in enumerate((17, 9)):
        emg = MuscleTrack(rng.random((n, 22)) * 40 + 1, FRIDLUND22, 30.0, "fridlund22", "uV")
        face = ExpressionTrack(rng.random((n, 3)), ["jawOpen", "mouthSmileLeft", "browInnerUp"], 30.0, "arkit52", "1")
        clips.append(Clip(emg, face, subject=f"S{k}"))
    spec = {"method": "percentile", "low": 5.0, "high": 95.0}
    bank = WindowBank(clips, "emg2exp", FRIDLUND22, ("jawOpen", "browInnerUp"), 5, "causal", spec)
    assert len(bank) == 26
    x, y = bank.batch(torch.arange(26))
    expected_x = np.concatenate([make_windows(normalise_envelopes(c.emg.values, spec), 5, "causal") for c in clips])
    np.testing.assert_allclose(x.numpy(), expected_x, rtol=1e-6)  # no window crosses a clip boundary
    np.testing.assert_allclose(y.numpy(), np.concatenate([c.expression.values[:, [0, 2]] for c in clips]), rtol=1e-6)


@pytest.mark.parametrize("head,log_input", [("linear", False), ("softplus", True)])
def test_export_equals_torch_with_dynamic_batch(tmp_path, head, log_input):
    from eifer_blender.core.network import ModelMetadata

    torch.manual_seed(1)
    net = WindowNet(NetConfig(22, 55, window=7, hidden=24, depth=2, conv=[[8, 3, 1], [8, 3, 2]], head=head,
                              log_input=log_input))
    net.set_standardisation(np.full(22, 0.3), np.full(22, 0.8), np.linspace(-1, 1, 55), np.linspace(0.5, 2, 55))
    names = tuple(f"exp{i:03d}" for i in range(1, 51)) + ("jaw_x", "jaw_y", "jaw_z", "eyelid_l", "eyelid_r")
    metadata = ModelMetadata("emg2exp", "emg", "fridlund22", FRIDLUND22, "normalised", {"method": "none"},
                             "flame", names, "1", head, 30.0, 7, "centred", "test", "0")
    path = export_onnx(net, metadata, tmp_path / "f.onnx")
    assert check_onnx_matches_torch(net, path) <= 1e-5
    # a broken export is caught: change one weight in the file
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    init = model.graph.initializer[-1]
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) + 0.1, init.name))
    onnx.save(model, str(tmp_path / "broken.onnx"))
    with pytest.raises(AssertionError, match="differs from torch"):
        check_onnx_matches_torch(net, tmp_path / "broken.onnx")


def test_dropout_acts_in_training_only_and_the_export_is_the_evaluation_net(tmp_path):
    from eifer_blender.core.network import ModelMetadata

    torch.manual_seed(2)
    net = WindowNet(NetConfig(35, 22, window=15, hidden=32, depth=2, head="softplus", dropout=0.5))
    x = torch.rand(64, 15, 35)
    net.train()
    assert not torch.equal(net(x), net(x))  # a fresh dropout mask on each pass
    net.eval()
    assert torch.equal(net(x), net(x))
    names = tuple(f"s{i}" for i in range(35))
    metadata = ModelMetadata("exp2emg", "params", "arkit52", names, "1", {"method": "none"}, "fridlund22",
                             FRIDLUND22, "normalised", "softplus", 30.0, 15, "centred", "test", "0")
    path = export_onnx(net, metadata, tmp_path / "dropout.onnx")
    assert check_onnx_matches_torch(net, path) <= 1e-5


def test_a_ridge_blend_is_the_configured_share_of_the_closed_form_ridge_fit(tmp_path):
    from models.ridge import RidgeBaseline

    config = train_cli.load_config(_config(tmp_path, "tiny_blend", "exp2emg"), {"model.ridge_blend": 0.3})
    result = train_cli.train(config, progress=False, log=lambda *a: None)
    assert result.onnx_max_abs_diff <= 1e-5  # the exported graph computes the blend too
    dataset = train_cli.load_dataset(config, progress=False)
    inputs, outputs = train_cli.channel_names(config, dataset)
    banks = {s: WindowBank(dataset.clips_of(s), "exp2emg", inputs, outputs, 5, "centred", dataset.emg_normalisation)
             for s in ("train", "val")}
    ridge = RidgeBaseline(0.0, None).fit(banks["train"], banks["val"])
    windows = banks["val"].all_windows()
    net = result.net.eval()
    with torch.no_grad():
        blended = net(torch.from_numpy(windows)).numpy()
        net.blend.fill_(0.0)
        alone = net(torch.from_numpy(windows)).numpy()
    assert not np.allclose(alone, ridge.predict(windows), atol=1e-3)
    assert np.allclose(blended, 0.7 * alone + 0.3 * ridge.predict(windows), atol=1e-4)
    onnx_run = load_model(result.onnx_path, "cpu").infer(windows[:64])
    assert np.allclose(onnx_run, blended[:64], atol=1e-5)


def test_a_ridge_blend_is_refused_where_the_path_cannot_read_the_input():
    with pytest.raises(ValueError, match="ridge_blend"):
        WindowNet(NetConfig(22, 37, window=5, masked=True, ridge_blend=0.5))
    with pytest.raises(ValueError, match="share"):
        WindowNet(NetConfig(35, 22, window=5, head="softplus", ridge_blend=1.0))


def test_a_low_range_read_out_orders_only_the_weights_below_its_level(tmp_path):
    """Above ``low_range`` the output is the network's; below it, max(net, level * sigmoid(read-out /
    level)) with the read-out a ridge fit in closed form (checked against least squares here)."""
    level, alpha = 0.05, 0.01
    config = train_cli.load_config(_config(tmp_path, "tiny_low"), {
        "model.low_range": level, "model.low_range_alpha": alpha, "model.low_range_windows": 10**9})
    result = train_cli.train(config, progress=False, log=lambda *a: None)
    assert result.onnx_max_abs_diff <= 1e-5  # the exported graph computes the read-out too
    dataset = train_cli.load_dataset(config, progress=False)
    inputs, outputs = train_cli.channel_names(config, dataset)
    bank = WindowBank(dataset.clips_of("train"), "emg2exp", inputs, outputs, 5, "centred", dataset.emg_normalisation)
    net = result.net.eval()
    x, y = bank.batch(torch.arange(len(bank)))
    with torch.no_grad():
        features = np.hstack([net.readout_features(x).numpy().astype(np.float64), np.ones((len(x), 1))])
    # ridge as an augmented least-squares problem: rows sqrt(alpha n) I below the data, intercept free
    penalty = np.sqrt(alpha * len(x)) * np.eye(features.shape[1])[:-1]
    coef = np.linalg.lstsq(np.vstack([features, penalty]),
                           np.vstack([y.numpy(), np.zeros((len(penalty), y.shape[1]))]), rcond=None)[0]
    readout = level / (1.0 + np.exp(-(features @ coef) / level))
    with torch.no_grad():
        combined = net(x).numpy()
        net.low_level.fill_(0.0)
        alone = net(x).numpy()
    assert np.allclose(combined, np.maximum(alone, readout), atol=1e-4)
    assert np.array_equal(combined[alone >= level], alone[alone >= level])
    assert (combined > alone).mean() > 0.1 and combined[combined > alone].max() <= level
    onnx_run = load_model(result.onnx_path, "cpu").infer(x.numpy()[:64])
    assert np.allclose(onnx_run, np.maximum(alone, readout)[:64], atol=1e-4)


def test_a_masked_log_input_net_exports_its_low_range_read_out(tmp_path):
    from eifer_blender.core.network import ModelMetadata
    from models.export import load_torch_net

    torch.manual_seed(5)
    net = WindowNet(NetConfig(22, 6, window=5, hidden=16, conv=[[8, 3, 1]], log_input=True, masked=True,
                              low_range=0.05))
    net.set_standardisation(np.full(22, -1.0), np.full(22, 0.9))
    net.set_low_readout(np.random.default_rng(2).normal(0.0, 0.05, (net.readout_width() + 1, 6)))
    names = tuple(f"shape{i}" for i in range(6))
    metadata = ModelMetadata("emg2exp", "emg", "fridlund22", FRIDLUND22, "normalised", {"method": "none"},
                             "arkit52", names, "1", "sigmoid", 30.0, 5, "centred", "test", "0", mask_name="mask",
                             extra={"net": net.config.to_dict()})
    path = export_onnx(net, metadata, tmp_path / "low.onnx")
    assert check_onnx_matches_torch(net, path) <= 1e-5  # random masks, the log transform, convolutions
    back = load_torch_net(path)
    for key, value in net.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key


def test_a_low_range_read_out_is_refused_outside_a_sigmoid_head():
    with pytest.raises(ValueError, match="low_range"):
        WindowNet(NetConfig(35, 22, window=5, head="softplus", low_range=0.02))
    with pytest.raises(ValueError, match="low_range"):
        WindowNet(NetConfig(22, 37, window=5, low_range=1.5))


@pytest.mark.parametrize("name", ["emg2arkit", "arkit2emg", "emg2arkit_causal"])
def test_a_shipped_file_reads_back_as_the_torch_net_it_was_exported_from(name):
    from eifer_blender.core.network import shipped_model_path
    from models.export import load_torch_net

    path = shipped_model_path(name)
    net = load_torch_net(path)
    assert net.config == NetConfig(**load_model(path, "cpu").metadata.extra["net"])
    assert check_onnx_matches_torch(net, path) <= 1e-5  # masks, the ridge blend: every path of the graph


def test_a_convolutional_linear_head_net_reads_back_from_its_export(tmp_path):
    from eifer_blender.core.network import ModelMetadata
    from models.export import load_torch_net

    torch.manual_seed(4)
    net = WindowNet(NetConfig(22, 5, window=7, hidden=16, depth=2, conv=[[8, 3, 1], [8, 3, 2]], head="linear"))
    net.set_standardisation(np.full(22, 0.3), np.full(22, 0.8), np.linspace(-1, 1, 5), np.linspace(0.5, 2, 5))
    names = ("jaw_x", "jaw_y", "jaw_z", "eyelid_l", "eyelid_r")
    metadata = ModelMetadata("emg2exp", "emg", "fridlund22", FRIDLUND22, "normalised", {"method": "none"},
                             "flame", names, "1", "linear", 30.0, 7, "centred", "test", "0",
                             extra={"net": net.config.to_dict()})
    path = export_onnx(net, metadata, tmp_path / "conv.onnx")
    back = load_torch_net(path)
    for key, value in net.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
