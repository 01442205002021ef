"""Runtime side of the networks: windows, resampling, the ONNX contract, provider choice, inference.

Models here are real ONNX files written by models/export.py from small torch networks and run in
ONNX Runtime; the expected values come from the torch module on windows built independently.
"""
import json

import numpy as np
import onnx
import pytest
import torch

from eifer_blender.core.errors import InputError, ModelMismatchError
from eifer_blender.core.expression.spaces import ARKIT_OBSERVABLE
from eifer_blender.core.network import (
    CPU,
    ModelMetadata,
    choose_providers,
    load_model,
    shipped_model_path,
)
from eifer_blender.core.network.windows import (
    make_windows,
    resample_frames,
    resample_to_fps,
    window_offsets,
)
from eifer_blender.core.recording.montage import FRIDLUND22
from eifer_blender.core.tracks import ExpressionTrack, MuscleTrack
from models.export import export_onnx
from models.nets import NetConfig, WindowNet


# ---------------------------------------------------------------------------------------- windows
def test_window_offsets_centred_and_causal():
    assert window_offsets(5, "centred").tolist() == [-2, -1, 0, 1, 2]
    assert window_offsets(3, "causal").tolist() == [-2, -1, 0]
    assert window_offsets(1, "centred").tolist() == [0]
    with pytest.raises(ValueError, match="odd"):
        window_offsets(4, "centred")
    with pytest.raises(ValueError, match="alignment"):
        window_offsets(3, "ahead")


@pytest.mark.parametrize("alignment", ["centred", "causal"])
def test_make_windows_equals_explicit_edge_padded_indexing(alignment):
    values = np.arange(14, dtype=float).reshape(7, 2) * [1, -1]
    windows = make_windows(values, 5, alignment)
    assert windows.shape == (7, 5, 2)
    offsets = window_offsets(5, alignment)
    for t in range(7):
        rows = np.clip(t + offsets, 0, 6)  # edge padding: repeat first / last frame
        np.testing.assert_array_equal(windows[t], values[rows])


def test_resample_keeps_linear_ramps_and_edges():
    ramp = np.column_stack([np.arange(60) / 60.0, np.full(60, 3.0)])  # 60 fps, 1 s
    up, start = resample_to_fps(ramp, 60, 120)
    assert up.shape == (120, 2) and start == 0.0
    times = np.arange(120) / 120
    inside = times <= 59 / 60
    np.testing.assert_allclose(up[inside, 0], times[inside], atol=1e-12)
    np.testing.assert_allclose(up[~inside, 0], 59 / 60)  # past the last frame: edge value
    np.testing.assert_allclose(up[:, 1], 3.0)
    down, _ = resample_to_fps(ramp, 60, 30)
    assert down.shape == (30, 2)
    # the anti-alias average keeps a ramp a ramp away from the edges
    np.testing.assert_allclose(down[2:-2, 0], np.arange(30)[2:-2] / 30, atol=1 / 60 + 1e-9)


def test_resample_removes_what_the_output_rate_cannot_carry():
    fps_in = 120
    t = np.arange(240) / fps_in
    alternating = np.sign(np.sin(2 * np.pi * 60 * t + 0.5))[:, None]  # Nyquist-rate flicker
    down = resample_frames(alternating, fps_in, np.arange(60) / 60)
    assert np.abs(down[1:-1]).max() < 1e-9  # a plain pick-every-other-frame would keep ±1


# ------------------------------------------------------------------------------------------ models
def _net(n_in, n_out, window, head, conv=(), seed=0, gain=1.0):
    torch.manual_seed(seed)
    net = WindowNet(NetConfig(n_in, n_out, window=window, hidden=16, depth=2, conv=list(conv), head=head))
    with torch.no_grad():
        net.out.weight.mul_(gain)  # a livelier output than a fresh initialisation gives
    rng = np.random.default_rng(seed)
    net.set_standardisation(rng.random(n_in), 0.5 + rng.random(n_in), rng.random(n_out), 1 + rng.random(n_out))
    return net.eval()


def _emg2arkit(tmp_path, window=5, alignment="centred", conv=((8, 3, 1),), name="m.onnx", gain=1.0,
              **changes):
    net = _net(22, len(ARKIT_OBSERVABLE), window, "sigmoid", conv, gain=gain)
    fields = dict(direction="emg2exp", input_name="emg", input_space="fridlund22",
                  input_names=FRIDLUND22, input_units="normalised",
                  input_normalisation={"method": "none"}, output_space="arkit52",
                  output_names=ARKIT_OBSERVABLE, output_units="1", head="sigmoid", fps=30.0,
                  window=window, alignment=alignment, training_data="unit test", version="0.0.1")
    fields.update(changes)
    path = export_onnx(net, ModelMetadata(**fields), tmp_path / name)
    return net, path


def _envelopes(n_frames=90, fps=30.0, seed=1):
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames) / fps
    freqs = rng.uniform(0.2, 1.0, 22)
    values = 1.0 + np.sin(2 * np.pi * t[:, None] * freqs[None, :] + rng.uniform(0, 6, 22))
    return MuscleTrack(values, FRIDLUND22, fps, "fridlund22", "normalised")


def _torch_reference(net, values, window, alignment):
    windows = make_windows(values, window, alignment).astype(np.float32)
    with torch.no_grad():
        return net(torch.from_numpy(np.ascontiguousarray(windows))).numpy()


def test_slice_frames_moves_the_start_time_and_refuses_frames_outside():
    track = MuscleTrack(np.arange(20.0).reshape(10, 2), ("a", "b"), 5.0, "fridlund22", "uV", start_s=1.0)
    part = track.slice_frames(2, 5)
    assert part.values.tolist() == track.values[2:5].tolist() and part.start_s == pytest.approx(1.4)
    assert isinstance(part, MuscleTrack) and part.names == track.names
    for first, stop in ((3, 3), (-1, 2), (8, 11)):
        with pytest.raises(ValueError, match="not inside"):
            track.slice_frames(first, stop)


def test_load_model_reads_the_contract_and_reports_the_provider(tmp_path):
    _, path = _emg2arkit(tmp_path)
    model = load_model(path, providers="cpu")
    assert model.metadata.direction == "emg2exp"
    assert model.input_names == FRIDLUND22 and model.output_names == ARKIT_OBSERVABLE
    assert (model.fps, model.window, model.alignment) == (30.0, 5, "centred")
    assert model.provider == CPU == model.session.get_providers()[0]
    props = {p.key: json.loads(p.value) for p in onnx.load(str(path)).metadata_props}
    assert props["input_names"] == list(FRIDLUND22) and props["schema"] == "eifer-model/1"
    auto = load_model(path, providers="auto")
    assert auto.provider in auto.session.get_providers()
    assert choose_providers("cpu") == [CPU]
    with pytest.raises(InputError, match="preference"):
        choose_providers("tpu")


def test_cuda_request_without_cuda_says_so(tmp_path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has the CUDA provider")
    _, path = _emg2arkit(tmp_path)
    model = load_model(path, providers="cuda")
    assert model.provider == CPU and "CUDA" in model.provider_note


@pytest.mark.parametrize("alignment,conv", [("centred", ((8, 3, 1),)), ("causal", ()), ("causal", ((4, 3, 2),))])
def test_run_equals_torch_on_windows(tmp_path, alignment, conv):
    net, path = _emg2arkit(tmp_path, window=5, alignment=alignment, conv=conv)
    track = _envelopes()
    out = load_model(path, "cpu").run(track)
    assert isinstance(out, ExpressionTrack)
    assert out.names == ARKIT_OBSERVABLE and out.space == "arkit52" and out.fps == track.fps
    np.testing.assert_allclose(out.values, _torch_reference(net, track.values, 5, alignment), atol=1e-5)


def test_run_puts_channels_in_model_order(tmp_path):
    _, path = _emg2arkit(tmp_path)
    model = load_model(path, "cpu")
    track = _envelopes()
    order = np.random.default_rng(0).permutation(22)
    shuffled = MuscleTrack(track.values[:, order], [FRIDLUND22[i] for i in order], track.fps,
                           track.space, track.units)
    extra = MuscleTrack(np.hstack([track.values, track.values[:, :1]]), FRIDLUND22 + ("Trigger",),
                        track.fps, track.space, track.units)
    np.testing.assert_allclose(model.run(shuffled).values, model.run(track).values, atol=1e-6)
    np.testing.assert_allclose(model.run(extra).values, model.run(track).values, atol=1e-6)


def test_causal_output_ignores_the_future(tmp_path):
    _, path = _emg2arkit(tmp_path, window=5, alignment="causal", conv=())
    model = load_model(path, "cpu")
    track = _envelopes()
    changed = track.values.copy()
    changed[50:] += 2.0
    a = model.run(track).values
    b = model.run(MuscleTrack(changed, track.names, track.fps, track.space, track.units)).values
    np.testing.assert_array_equal(a[:50], b[:50])
    assert np.abs(a[50:] - b[50:]).max() > 1e-3


def test_batched_inference_equals_one_batch(tmp_path, monkeypatch):
    import eifer_blender.core.network.model as network

    _, path = _emg2arkit(tmp_path)
    model = load_model(path, "cpu")
    track = _envelopes(n_frames=301)
    whole = model.run(track).values
    monkeypatch.setattr(network, "BATCH_FRAMES", 64)
    np.testing.assert_array_equal(model.run(track).values, whole)


def test_other_fps_is_resampled_to_the_model_and_back(tmp_path):
    _, path = _emg2arkit(tmp_path, window=5, gain=20.0)
    model = load_model(path, "cpu")
    fps_scene = 60.0
    t30, t60 = np.arange(150) / 30.0, np.arange(300) / fps_scene
    rng = np.random.default_rng(4)
    freqs, phases = rng.uniform(0.1, 0.4, 22), rng.uniform(0, 6, 22)
    signal = lambda t: 1.0 + np.sin(2 * np.pi * t[:, None] * freqs + phases)
    at30 = model.run(MuscleTrack(signal(t30), FRIDLUND22, 30.0, "fridlund22", "normalised"))
    at60 = model.run(MuscleTrack(signal(t60), FRIDLUND22, fps_scene, "fridlund22", "normalised"))
    assert at60.n_frames == 300 and at60.fps == fps_scene
    # frames at the same times agree: slow signals, so the resampling error is small next to
    # how far the outputs move
    movement = np.abs(at30.values[5:-5] - at30.values[5:-5].mean(0)).max()
    error = np.abs(at60.values[::2][5:-5] - at30.values[5:-5]).max()
    assert movement > 0.1 and error < 0.05 * movement


# ------------------------------------------------------------------------------------ refusals
def test_missing_channels_are_named(tmp_path):
    _, path = _emg2arkit(tmp_path)
    model = load_model(path, "cpu")
    track = _envelopes().select([n for n in FRIDLUND22 if n not in ("Zyg_L", "Mass_R")])
    with pytest.raises(ModelMismatchError, match=r"lacks 2: Zyg_L, Mass_R") as err:
        model.run(track)
    assert "m.onnx" in str(err.value)


def test_wrong_space_and_wrong_direction_are_refused(tmp_path):
    _, path = _emg2arkit(tmp_path)
    model = load_model(path, "cpu")
    track = _envelopes()
    kuramoto = MuscleTrack(track.values, track.names, track.fps, "kuramoto19", track.units)
    with pytest.raises(ModelMismatchError, match="'fridlund22'.*'kuramoto19'"):
        model.run(kuramoto)
    expression = ExpressionTrack(np.zeros((10, 2)), ["jawOpen", "browInnerUp"], 30.0, "arkit52", "1")
    with pytest.raises(ModelMismatchError, match="emg2exp model and needs a muscle"):
        model.run(expression)
    microvolts_only = MuscleTrack(track.values, track.names, track.fps, track.space, "mV")
    _, path2 = _emg2arkit(tmp_path, name="n.onnx", input_normalisation={"method": "percentile"})
    with pytest.raises(ModelMismatchError, match="'mV'"):
        load_model(path2, "cpu").run(microvolts_only)


def test_loading_refuses_a_model_that_does_not_fit(tmp_path):
    _, path = _emg2arkit(tmp_path)
    assert load_model(path, "cpu", direction="emg2exp", input_space="fridlund22", output_space="arkit52",
                      input_names=FRIDLUND22 + ("Trigger",)).window == 5
    with pytest.raises(ModelMismatchError, match=r"emg2exp model, exp2emg is needed"):
        load_model(path, "cpu", direction="exp2emg")
    with pytest.raises(ModelMismatchError, match=r"writes 'arkit52', not 'flame'"):
        load_model(path, "cpu", output_space="flame")
    with pytest.raises(ModelMismatchError, match=r"reads 'fridlund22', not 'kuramoto19'"):
        load_model(path, "cpu", input_space="kuramoto19")
    recording = [n for n in FRIDLUND22 if n not in ("Corr_L", "Ment_R")]
    with pytest.raises(ModelMismatchError, match=r"2 of its 22 inputs are missing: Corr_L, Ment_R"):
        load_model(path, "cpu", input_names=recording)
    rig = [n for n in ARKIT_OBSERVABLE if n != "jawOpen"]
    with pytest.raises(ModelMismatchError, match=r"1 of its 37 outputs are missing: jawOpen"):
        load_model(path, "cpu", output_names=rig)


def test_bad_values_are_refused_with_the_channel_named(tmp_path):
    _, path = _emg2arkit(tmp_path, name="p.onnx", input_normalisation={"method": "percentile", "low": 5.0,
                                                                        "high": 95.0})
    model = load_model(path, "cpu")
    track = _envelopes()
    broken = track.values.copy()
    broken[10, FRIDLUND22.index("DAO_L")] = np.nan
    with pytest.raises(InputError, match="NaN or infinite values in DAO_L"):
        model.run(MuscleTrack(broken, track.names, track.fps, track.space, "uV"))
    flat = track.values.copy()
    flat[:, FRIDLUND22.index("Ment_R")] = 3.0  # a disconnected channel: nothing to normalise by
    with pytest.raises(InputError, match="Ment_R"):
        model.run(MuscleTrack(flat, track.names, track.fps, track.space, "uV"))
    with pytest.raises(InputError, match="no frames"):
        model.run(MuscleTrack(np.zeros((0, 22)), track.names, track.fps, track.space, "uV"))


def test_runtime_normalises_a_microvolt_track_per_recording(tmp_path):
    from eifer_blender.core.envelopes import normalise_envelopes

    spec = {"method": "percentile", "low": 5.0, "high": 95.0}
    net, path = _emg2arkit(tmp_path, name="q.onnx", input_normalisation=spec)
    model = load_model(path, "cpu")
    track = _envelopes()
    microvolts = MuscleTrack(track.values * 37.0 + 2.0, track.names, track.fps, track.space, "uV")
    expected = _torch_reference(net, normalise_envelopes(microvolts.values, spec), 5, "centred")
    np.testing.assert_allclose(model.run(microvolts).values, expected, atol=1e-5)
    # the same recording at another gain gives the same face: gain is normalised away
    np.testing.assert_allclose(model.run(microvolts).values, model.run(track_with_units(track, "uV")).values,
                               atol=1e-5)


def track_with_units(track, units):
    return MuscleTrack(track.values, track.names, track.fps, track.space, units)


def test_exp2emg_model_refuses_a_rig_without_its_shapes(tmp_path):
    names = ARKIT_OBSERVABLE
    net = _net(len(names), 22, 3, "softplus")
    metadata = ModelMetadata("exp2emg", "params", "arkit52", names, "1", {"method": "none"},
                             "fridlund22", FRIDLUND22, "normalised", "softplus", 30.0, 3, "centred",
                             "unit test", "0.0.1")
    model = load_model(export_onnx(net, metadata, tmp_path / "inv.onnx"), "cpu")
    rig = ExpressionTrack(np.random.default_rng(0).random((40, len(names))), names, 30.0, "arkit52", "1")
    out = model.run(rig)
    assert isinstance(out, MuscleTrack) and out.names == FRIDLUND22 and (out.values >= 0).all()
    with pytest.raises(ModelMismatchError, match="lacks 1: jawOpen"):
        model.run(rig.select([n for n in names if n != "jawOpen"]))
    flame = ExpressionTrack(rig.values, names, 30.0, "flame", "1")
    with pytest.raises(ModelMismatchError, match="'arkit52'.*'flame'"):
        model.run(flame)


def test_files_that_are_not_eifer_models_are_refused(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_model(tmp_path / "absent.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model at all")
    with pytest.raises(InputError, match="garbage.onnx: ONNX Runtime cannot load"):
        load_model(garbage)
    _, path = _emg2arkit(tmp_path)
    model = onnx.load(str(path))
    del model.metadata_props[:]
    plain = tmp_path / "plain.onnx"
    onnx.save(model, str(plain))
    with pytest.raises(InputError, match="plain.onnx: not an EIFER model"):
        load_model(plain)
    with pytest.raises(InputError, match="window"):
        _emg2arkit(tmp_path, name="bad.onnx", window=4, alignment="centred", conv=())


def test_metadata_disagreeing_with_the_graph_is_refused(tmp_path):
    _, path = _emg2arkit(tmp_path)
    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == "input_names":
            prop.value = json.dumps(list(FRIDLUND22[:20]))
    lying = tmp_path / "lying.onnx"
    onnx.save(model, str(lying))
    with pytest.raises(InputError, match="does not match metadata"):
        load_model(lying)


def test_unknown_shipped_name_is_refused():
    with pytest.raises(InputError, match="emg2arkit"):
        shipped_model_path("emg2flame")


# ------------------------------------------------------------------------------- shipped models
@pytest.fixture(scope="module")
def fresh_session():
    """A simulated subject and session that no shipped model was trained or tested on."""
    from eifer_blender.core.simulator.session import simulate_session

    return simulate_session("emotions", 990, 60.0, 2048.0, 30.0, seed=11)


def test_shipped_models_exist_and_keep_the_contract():
    for name, direction in (("emg2arkit", "emg2exp"), ("arkit2emg", "exp2emg")):
        path = shipped_model_path(name)
        assert path.is_file() and path.parent.name == "models" and path.parent.parent.name == "eifer_blender"
        assert path.stat().st_size < 1_000_000  # small enough to ship inside the extension
        model = load_model(path, "cpu")
        m = model.metadata
        assert m.direction == direction and m.fps == 30.0 and m.version
        emg_names = m.input_names if direction == "emg2exp" else m.output_names
        face_names = m.output_names if direction == "emg2exp" else m.input_names
        assert emg_names == FRIDLUND22
        assert set(face_names) <= set(ARKIT_OBSERVABLE)
        assert m.processing["rms_window_s"] > 0 and "simulator" in m.training_data


def test_shipped_emg2arkit_follows_a_new_subjects_face(fresh_session):
    from eifer_blender.core.envelopes import process_recording

    model = load_model(shipped_model_path("emg2arkit"), "cpu")
    envelopes = process_recording(fresh_session.recording, 25.0, model.processing_settings())
    face = model.run(envelopes)  # scene at 25 fps: resampled to the model's 30 and back
    assert face.fps == 25.0 and face.n_frames == envelopes.n_frames
    truth = fresh_session.arkit
    times = face.times_s
    for shape in ("mouthSmileLeft", "browInnerUp", "browDownRight", "noseSneerLeft"):
        true_at_frames = np.interp(times, truth.times_s, truth.column(shape))
        r = np.corrcoef(face.column(shape), true_at_frames)[0, 1]
        assert r > 0.7, (shape, r)
    kuramoto = MuscleTrack(envelopes.values, envelopes.names, envelopes.fps, "kuramoto19", "uV")
    with pytest.raises(ModelMismatchError, match="kuramoto19"):
        model.run(kuramoto)
    # any subset runs; without Zyg_R the right smile is not driven, the rest is
    without = model.run(envelopes.select([n for n in FRIDLUND22 if n != "Zyg_R"]))
    assert without.meta["left_alone"] == ["mouthSmileRight"]
    with pytest.raises(ModelMismatchError, match="none of them"):
        model.run(envelopes.select([]))


def test_shipped_emg2arkit_refuses_envelopes_made_differently(fresh_session):
    from eifer_blender.core.envelopes import process_recording

    model = load_model(shipped_model_path("emg2arkit"), "cpu")
    other = model.processing_settings(rms_window_s=model.metadata.processing["rms_window_s"] / 5)
    envelopes = process_recording(fresh_session.recording, 30.0, other)
    with pytest.raises(ModelMismatchError, match="rms_window_s"):
        model.run(envelopes)


def test_shipped_arkit2emg_infers_muscle_activity_from_the_face(fresh_session):
    from eifer_blender.core.envelopes import normalise_envelopes, process_recording

    model = load_model(shipped_model_path("arkit2emg"), "cpu")
    face = fresh_session.arkit.select(model.input_names)
    muscles = model.run(face)
    assert isinstance(muscles, MuscleTrack) and muscles.units == "normalised" and muscles.names == FRIDLUND22
    assert model.metadata.output_normalisation["method"] == "percentile"
    measured = process_recording(fresh_session.recording, 30.0, model.processing_settings())
    target = normalise_envelopes(measured.values, model.metadata.output_normalisation)
    n = min(len(target), muscles.n_frames)
    for channel in ("Zyg_L", "Corr_R", "medFront_L"):
        k = FRIDLUND22.index(channel)
        r = np.corrcoef(muscles.values[:n, k], target[:n, k])[0, 1]
        assert r > 0.7, (channel, r)


@pytest.mark.parametrize("poison, message", [(float("nan"), "NaN or infinite"), (1e30, "far outside 0–1")])
def test_a_model_whose_outputs_no_working_model_gives_is_refused_by_name(tmp_path, poison, message):
    """A damaged export (its output bias poisoned, a linear head) keys nothing and is named."""
    net = _net(22, len(ARKIT_OBSERVABLE), 5, "linear", ((8, 3, 1),))
    with torch.no_grad():
        net.out.bias.fill_(poison)
    _, good = _emg2arkit(tmp_path)
    fields = {**load_model(good, "cpu").metadata.__dict__, "head": "linear"}
    path = export_onnx(net, ModelMetadata(**fields), tmp_path / "bad.onnx")
    with pytest.raises(ModelMismatchError, match=message) as err:
        load_model(path, "cpu").run(_envelopes())
    assert "bad.onnx" in str(err.value)
