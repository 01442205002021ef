"""Channel-flexible EMG2Exp: the mask input, channel dropout, calibration and gain augmentation."""
import numpy as np
import pytest
import torch

from eifer_blender.core.envelopes import activity_references, normalise_envelopes
from eifer_blender.core.errors import InputError, ModelMismatchError
from eifer_blender.core.expression.spaces import ARKIT_OBSERVABLE, ARKIT_SITES
from eifer_blender.core.network import ModelMetadata, load_model
from eifer_blender.core.recording.montage import FRIDLUND22
from eifer_blender.core.tracks import MuscleTrack
from models import train as train_cli
from models.data import _augmented, montage_masks, site_incidence
from models.export import check_onnx_matches_torch, export_onnx
from models.nets import NetConfig, WindowNet

SITES = {name: list(ARKIT_SITES[name]) for name in ARKIT_OBSERVABLE}


def _masked_model(tmp_path, seed=3):
    torch.manual_seed(seed)
    net = WindowNet(NetConfig(22, len(ARKIT_OBSERVABLE), window=5, hidden=16, depth=1, masked=True))
    net.set_standardisation(np.full(22, 0.2), np.full(22, 0.5))
    metadata = ModelMetadata("emg2exp", "emg", "fridlund22", FRIDLUND22, "normalised",
                             {"method": "activity", "calibration": "percentile", "rest_ratio": 20.0},
                             "arkit52", ARKIT_OBSERVABLE, "1", "sigmoid", 30.0, 5, "centred", "test", "0",
                             mask_name="mask", output_sites=SITES)
    return net, export_onnx(net, metadata, tmp_path / "masked.onnx")


def _envelopes(names, n=300, seed=0):
    rng = np.random.default_rng(seed)
    values = 5.0 + rng.random((n, len(names)))
    values[100:160] += 40.0  # a burst on every channel
    return MuscleTrack(values, tuple(names), 30.0, "fridlund22", "uV")


def test_masked_export_equals_torch_on_random_subsets(tmp_path):
    net, path = _masked_model(tmp_path)
    assert check_onnx_matches_torch(net, path) <= 1e-5
    model = load_model(path, "cpu")
    assert model.masked and model.metadata.mask_name == "mask"


def test_a_subset_runs_and_returns_only_the_shapes_its_sites_move(tmp_path):
    net, path = _masked_model(tmp_path)
    model = load_model(path, "cpu")
    track = _envelopes(("Zyg_L", "Corr_L"))
    out = model.run(track)
    assert set(out.names) == {"mouthSmileLeft", "browDownLeft"}
    assert "mouthSmileRight" in out.meta["left_alone"] and len(out.names) + len(out.meta["left_alone"]) == 37
    # the same as the torch net fed the normalised subset, zeros elsewhere, and the mask
    refs = activity_references(track.values, {"calibration": "percentile"})
    full = np.zeros((track.n_frames, 22))
    columns = [FRIDLUND22.index(n) for n in track.names]
    full[:, columns] = normalise_envelopes(track.values, refs)
    mask = np.zeros(22, dtype=np.float32)
    mask[columns] = 1.0
    padded = np.pad(full, ((2, 2), (0, 0)), mode="edge")
    windows = np.stack([padded[i:i + 5] for i in range(track.n_frames)]).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(windows), torch.from_numpy(np.tile(mask, (len(windows), 1)))).numpy()
    picked = [ARKIT_OBSERVABLE.index(n) for n in out.names]
    np.testing.assert_allclose(out.values, expected[:, picked], atol=1e-5)


def test_no_covered_site_is_refused_naming_what_the_track_has(tmp_path):
    _, path = _masked_model(tmp_path)
    model = load_model(path, "cpu")
    with pytest.raises(ModelMismatchError, match="none of them.*EMG1"):
        model.run(MuscleTrack(np.ones((10, 1)), ("EMG1",), 30.0, "fridlund22", "uV"))


def test_sensitivity_scales_the_calibrated_activity(tmp_path):
    _, path = _masked_model(tmp_path)
    model = load_model(path, "cpu")
    track = _envelopes(("Zyg_L",))
    once = model.prepare_input(track)
    twice = model.prepare_input(track, sensitivity=2.0)
    np.testing.assert_allclose(twice, 2.0 * once)
    with pytest.raises(InputError, match="sensitivity"):
        model.prepare_input(track, sensitivity=0.0)


def test_activity_references_by_hand():
    # one channel: 90 frames at 2 µV (rest), 10 at 12 µV; 10th percentile 2, 99th 12
    values = np.r_[np.full(90, 2.0), np.full(10, 12.0)][:, None]
    refs = activity_references(values, {"calibration": "percentile"})
    assert refs["offset"] == [2.0] and refs["scale"] == [10.0]  # 12 -> 1, rest -> 0
    refs = activity_references(values, {"calibration": "rest", "rest_ratio": 6.0})
    assert refs["scale"] == [10.0]  # 6 x 2 - 2
    times = np.arange(100) / 10.0
    refs = activity_references(values, {"calibration": "calibration", "reference_percentile": 50.0},
                               times_s=times, segments_s=[(9.0, 9.9)])
    assert refs["scale"] == [10.0] and refs["segments_s"] == [[9.0, 9.9]]
    # a channel that only rests is not stretched: the reference stays >= min_ratio x rest
    flat = np.full((100, 1), 3.0)
    flat[::7] = 3.1
    refs = activity_references(flat, {"calibration": "percentile", "min_ratio": 1.5})
    assert refs["scale"] == [pytest.approx(1.5)]
    with pytest.raises(InputError, match="posed maximum needs the block"):
        activity_references(values, {"calibration": "calibration"})
    with pytest.raises(InputError, match="rest level is zero"):
        activity_references(np.zeros((10, 1)), {"calibration": "percentile"}, names=["Zyg_L"])


def test_channel_dropout_masks_keep_a_channel_and_cover_every_size():
    rng = np.random.default_rng(0)
    standard = {"two": ("Zyg_L", "Corr_L")}
    masks = montage_masks(4000, FRIDLUND22, rng, standard, full_share=0.3, standard_share=0.2)
    sizes = masks.sum(axis=1)
    assert sizes.min() >= 1 and set(np.unique(sizes)) == set(range(1, 23))
    two = np.zeros(22)
    two[[FRIDLUND22.index("Zyg_L"), FRIDLUND22.index("Corr_L")]] = 1
    share_two = np.mean((masks == two).all(axis=1))
    assert 0.15 < share_two < 0.25 and 0.25 < np.mean(sizes == 22) < 0.35


def test_site_incidence_follows_the_facs_table():
    incidence = site_incidence(FRIDLUND22, ARKIT_OBSERVABLE, SITES)
    zyg_l = incidence[FRIDLUND22.index("Zyg_L")]
    assert {ARKIT_OBSERVABLE[j] for j in np.flatnonzero(zyg_l)} == {"mouthSmileLeft"}
    assert incidence.sum(axis=0).min() >= 1  # every observable shape has a site


def test_gain_augmentation_keeps_noise_and_scales_muscle_power():
    noise, burst = 2.0, 20.0
    values = np.r_[np.full(95, noise), np.full(5, burst)][:, None]
    track = MuscleTrack(values, ("Zyg_L",), 30.0, "fridlund22", "uV")
    rng = np.random.default_rng(0)
    spec = {"method": "none"}
    out = _augmented(track, ("Zyg_L",), spec, {"gain": (3.0, 3.0), "channel_jitter": 1.0}, rng)
    assert out[0, 0] == pytest.approx(noise)
    assert out[-1, 0] == pytest.approx(np.sqrt(9 * (burst**2 - noise**2) + noise**2), rel=1e-6)


def test_tiny_masked_training_exports_a_channel_flexible_model(tmp_path):
    from tests.models.test_training import _config  # the tiny simulated config

    config = train_cli.load_config(_config(tmp_path, "tiny_masked"), {
        "model.masked": True, "model.expression_names": "observable", "train.epochs": 2,
        "data.normalisation": {"method": "activity", "calibration": "percentile"},
        "augment.copies": 2})
    config["model"]["montages"] = {"two": ["Zyg_L", "Corr_L"]}
    result = train_cli.train(config, progress=False, log=lambda *a: None)
    model = load_model(result.onnx_path, "cpu")
    m = model.metadata
    assert model.masked and m.input_normalisation["method"] == "activity"
    assert m.input_normalisation["rest_ratio"] > 1.0
    assert m.output_sites["mouthSmileLeft"] == ["Zyg_L"]
    assert len(result.history) == 2 and np.isfinite(result.history[-1]["val_loss"])
