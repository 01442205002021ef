"""Infer muscles from a face's animation, and compare EMG objects, in a real Blender.

The plumbing tests use small linear Exp2EMG models written as real ONNX files (run by ONNX
Runtime), so the expected curves are computed exactly from the keyed animation. The round trip
uses the shipped ``arkit2emg`` model on simulated data.
"""
import importlib
from pathlib import Path

import bpy
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests import flame_fixtures as ff
from tests.conftest import EXTENSION_MODULE, REPO_ROOT
from tests.helpers import extension_modules

SHIPPED_ARKIT2EMG = REPO_ROOT / "eifer_blender" / "models" / "arkit2emg.onnx"


def _module(name):
    return importlib.import_module(f"{EXTENSION_MODULE}.{name}")


@pytest.fixture
def infer(blender):
    bpy.context.scene.render.fps, bpy.context.scene.render.fps_base = 30, 1.0
    return extension_modules("blender.jobs.infer", "blender.jobs.compare", "blender.jobs.export")


def linear_model(path, input_names, *, direction="exp2emg", space="arkit52", seed=0):
    """A real ONNX Exp2EMG (or EMG2Exp) file computing ``x @ W.T + b`` per frame; returns (path, W, b)."""
    montage = _module("core.recording.montage")
    network = _module("core.network")
    outputs = montage.FRIDLUND22 if direction == "exp2emg" else _module("core.expression.spaces").ARKIT_OBSERVABLE
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.0, 1.0, (len(outputs), len(input_names))).astype(np.float32)
    bias = rng.uniform(0.0, 0.1, len(outputs)).astype(np.float32)
    input_name = "params" if direction == "exp2emg" else "emg"
    nodes = [helper.make_node("Flatten", [input_name], ["flat"], axis=1),
             helper.make_node("Gemm", ["flat", "W", "b"], ["output"], transB=1)]
    graph = helper.make_graph(
        nodes, "linear", [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", 1, len(input_names)])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", len(outputs)])],
        initializer=[numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    metadata = network.ModelMetadata(
        direction, input_name, space if direction == "exp2emg" else "fridlund22", tuple(input_names), "1",
        {"method": "none"}, "fridlund22" if direction == "exp2emg" else "arkit52", tuple(outputs),
        "normalised" if direction == "exp2emg" else "1", "linear", 30.0, 1, "centred", "unit test", "0.0.1")
    helper.set_model_props(model, metadata.to_props())
    onnx.save_model(model, str(path))
    return Path(path), weights, bias


def _mesh_with_keys(names, name="Face"):
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 0, 1)], [], [(0, 1, 2)])
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.shape_key_add(name="Basis", from_mix=False)
    for shape in names:
        obj.shape_key_add(name=shape, from_mix=False).value = 0.0
    return obj


def _key(face, values_by_shape, start_frame=1, interpolation="BEZIER"):
    """Key each shape's values (one per frame from ``start_frame``) on ``face``."""
    keyframes = _module("blender.anim.keyframes")
    key = face.data.shape_keys
    _, bag = keyframes.new_action(key, "keys")
    names = list(values_by_shape)
    values = np.column_stack([values_by_shape[n] for n in names])
    frames = start_frame + np.arange(values.shape[0], dtype=np.float64)
    keyframes.write_curves(bag, [f'key_blocks["{n}"].value' for n in names], frames, values,
                           interpolation=interpolation)


def _scene_snapshot():
    return {kind: sorted(x.name for x in getattr(bpy.data, kind))
            for kind in ("objects", "actions", "materials", "collections", "meshes")}


def test_inferred_curves_are_the_model_applied_to_the_keyed_animation(infer, tmp_path):
    spaces = _module("core.expression.spaces")
    names = spaces.ARKIT_OBSERVABLE
    face = _mesh_with_keys([f"A{i:02d}_{n}" if i % 3 else n for i, n in enumerate(names)])  # mixed naming
    rng = np.random.default_rng(1)
    animation = {(f"A{i:02d}_{n}" if i % 3 else n): rng.random(12) for i, n in enumerate(names)}
    _key(face, animation, start_frame=5, interpolation="LINEAR")
    path, weights, bias = linear_model(tmp_path / "lin.onnx", names)
    report = infer.infer_muscles(face, model=path, frame_range=(5, 16), providers="cpu")
    expected = np.column_stack(list(animation.values())) @ weights.T + bias
    assert report.frame_start == 5 and report.frame_end == 16 and report.missing_shapes == []
    emg = report.emg_object
    emg_object, internal = _module("blender.anim.emg_object"), _module("blender.anim.internal")
    assert emg_object.kind(emg) == "inferred" and emg.name == "EMG (inferred) Face"
    assert internal.get(face, "inferred") == emg.name
    back = _module("blender.anim.emg_object").read_emg_object(emg)
    assert back.names == _module("core.recording.montage").FRIDLUND22 and back.units == "normalised"
    assert np.allclose(back.values, expected, atol=1e-4)
    keyed_frames, _ = _module("blender.anim.keyframes").read_keys(
        _module("blender.anim.keyframes").assigned_channelbag(emg).fcurves[0])
    assert keyed_frames.tolist() == list(range(5, 17))
    # inferring again replaces the same object's curves
    again = infer.infer_muscles(face, model=path, frame_range=(6, 9), providers="cpu")
    assert again.emg_object == emg and len([o for o in bpy.data.objects if emg_object.kind(o) == "inferred"]) == 1
    assert _module("blender.anim.emg_object").read_emg_object(emg).n_frames == 4


def test_fast_curve_reading_equals_stepping_the_scene(infer):
    rig_arkit = _module("blender.rigs.arkit")
    face = _mesh_with_keys(["jawOpen", "mouthSmileLeft", "browInnerUp"])
    face.data.shape_keys.key_blocks["mouthSmileLeft"].slider_max = 0.6  # keys above it are clamped
    _key(face, {"jawOpen": [0, 1, 0.2, 0.9, 0.0, 0.4], "mouthSmileLeft": [0, 0.9, 0.9, 0.1, 0.3, 1.0]})
    face.data.shape_keys.key_blocks["browInnerUp"].value = 0.25  # static, not keyed
    binding = rig_arkit.arkit_binding(face)
    frames = np.arange(0, 9)  # beyond the keys too: extrapolation
    fast = rig_arkit.sample_from_curves(face, binding, frames)
    slow = rig_arkit.sample_by_stepping(face, binding, frames)
    assert fast.names == slow.names and np.allclose(fast.values, slow.values, atol=1e-6)
    assert fast.column("mouthSmileLeft").max() == pytest.approx(0.6)


def test_animation_from_drivers_is_evaluated_per_frame(infer, tmp_path):
    face = _mesh_with_keys(["jawOpen", "mouthSmileLeft"])
    controller = bpy.data.objects.new("controller", None)
    bpy.context.scene.collection.objects.link(controller)
    keyframes = _module("blender.anim.keyframes")
    _, bag = keyframes.new_action(controller, "ctrl")
    keyframes.write_curves(bag, [("location", 0)], np.arange(1, 11, dtype=float),
                           np.linspace(0, 0.9, 10)[:, None], interpolation="LINEAR")
    driver = face.data.shape_keys.key_blocks["jawOpen"].driver_add("value").driver
    driver.type = "AVERAGE"
    variable = driver.variables.new()
    variable.type = "TRANSFORMS"
    variable.targets[0].id = controller
    variable.targets[0].transform_type = "LOC_X"
    path, weights, bias = linear_model(tmp_path / "lin.onnx", ("jawOpen", "mouthSmileLeft"))
    report = infer.infer_muscles(face, model=path, frame_range=(1, 10), providers="cpu")
    assert np.allclose(report.expression.column("jawOpen"), np.linspace(0, 0.9, 10), atol=1e-6)
    assert np.allclose(report.muscles.values, report.expression.values @ weights.T + bias, atol=1e-5)


def test_missing_shapes_are_read_as_zero_and_reported(infer, tmp_path):
    face = _mesh_with_keys(["jawOpen"])
    _key(face, {"jawOpen": np.linspace(0, 1, 6)})
    path, weights, bias = linear_model(tmp_path / "lin.onnx", ("jawOpen", "mouthSmileLeft", "browInnerUp"))
    report = infer.infer_muscles(face, model=path, frame_range=(1, 6), providers="cpu")
    assert report.missing_shapes == ["mouthSmileLeft", "browInnerUp"]
    assert np.allclose(report.muscles.values, np.linspace(0, 1, 6)[:, None] * weights[:, 0] + bias, atol=1e-5)


@pytest.mark.parametrize("fps, first", [(30, 21), (24, 22), (60, 29)])  # parts whose context needs snapping
def test_a_part_of_the_animation_is_read_with_the_frames_around_it(infer, fps, first):
    """The shipped model's window reads 7 frames (at 30 fps) each side: inferring 21 frames of an
    animation gives what inferring the scene's whole range gives on those frames (the frames
    beyond the part are read from the animation, not padded with its ends), at the model's rate
    and at rates it resamples from; at the scene's own ends the edge is padded."""
    scene = bpy.context.scene
    scene.render.fps = fps
    names = _module("core.network").load_model(SHIPPED_ARKIT2EMG, "cpu").input_names
    face = _mesh_with_keys(names)
    rng = np.random.default_rng(3)
    n = 2 * fps + 10
    _key(face, {k: np.clip(np.cumsum(rng.normal(0, 0.08, n)), 0, 1) for k in names}, interpolation="LINEAR")
    scene.frame_start, scene.frame_end = 1, n
    whole = infer.infer_muscles(face, model=SHIPPED_ARKIT2EMG, providers="cpu").muscles
    last = first + 20
    part = infer.infer_muscles(face, model=SHIPPED_ARKIT2EMG, frame_range=(first, last), providers="cpu")
    assert (part.frame_start, part.frame_end, part.muscles.n_frames) == (first, last, 21)
    assert part.muscles.start_s == pytest.approx((first - 1) / fps)
    assert np.allclose(part.muscles.values, whole.values[first - 1:last], atol=1e-5)
    assert np.allclose(part.expression.values,
                       infer.face_expression(face, part.model, np.arange(first, last + 1))[0].values)
    edge = infer.infer_muscles(face, model=SHIPPED_ARKIT2EMG, frame_range=(1, 10), providers="cpu").muscles
    assert np.allclose(edge.values, whole.values[:10], atol=1e-5)


def test_the_frames_around_a_part_come_from_the_scene_range_only(infer):
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 60
    model = _module("core.network").load_model(SHIPPED_ARKIT2EMG, "cpu")
    context = infer._frames_with_context
    assert context(scene, np.arange(70, 81), model).tolist() == list(range(70, 81))  # after the scene
    assert context(scene, np.arange(-10, -4), model).tolist() == list(range(-10, -4))  # before it
    inside = context(scene, np.arange(30, 36), model)
    assert inside[0] < 30 and inside[-1] > 35 and inside[0] >= 1 and inside[-1] <= 60


def test_bad_input_gives_a_clear_message_and_changes_nothing(infer, tmp_path):
    errors = _module("core.errors")
    spaces = _module("core.expression.spaces")
    path, _, _ = linear_model(tmp_path / "lin.onnx", ("jawOpen", "mouthSmileLeft"))
    still = _mesh_with_keys(["jawOpen", "mouthSmileLeft"], "Still")
    other = _mesh_with_keys(["Key 1", "Key 2"], "Other")
    _key(other, {"Key 1": np.linspace(0, 1, 5)})
    moving = _mesh_with_keys(["jawOpen", "mouthSmileLeft"], "Moving")
    _key(moving, {"jawOpen": np.linspace(0, 1, 5)})
    fridlund = _module("core.recording.montage").FRIDLUND22
    wrong_way, _, _ = linear_model(tmp_path / "fwd.onnx", fridlund, direction="emg2exp")
    flame_space, _, _ = linear_model(tmp_path / "flame.onnx", spaces.FLAME_EXPRESSION_NAMES, space="flame")
    before = _scene_snapshot()
    cases = [
        (dict(face=still, model=path), errors.InputError, "Still has no animation over frames 1–5"),
        (dict(face=other, model=path), errors.InputError, "no shape keys with ARKit names"),
        (dict(face=moving, model=wrong_way), errors.ModelMismatchError, "needs an expression→EMG"),
        (dict(face=moving, model=flame_space), errors.ModelMismatchError, "not a FLAME head"),
        (dict(face=moving, model=tmp_path / "none.onnx"), errors.InputError, "model file not found"),
        (dict(face=None, model=path), errors.InputError, "no face given"),
        (dict(face=moving, model=path, frame_range=(5, 2)), errors.InputError, "empty frame range"),
    ]
    for kwargs, error, message in cases:
        face = kwargs.pop("face")
        with pytest.raises(error, match=message):
            infer.infer_muscles(face, frame_range=kwargs.pop("frame_range", (1, 5)), providers="cpu", **kwargs)
    assert _scene_snapshot() == before
    assert not _module("blender.anim.internal").has(moving, "inferred")


def test_flame_rig_is_read_through_its_parameters_and_refused_by_an_arkit_model(infer, tmp_path):
    flame_build = _module("blender.rigs.flame_build")
    flame_keys = _module("blender.rigs.flame_keys")
    flame = _module("core.heads.flame_file")
    flame_params = _module("core.expression.flame_params")
    spaces = _module("core.expression.spaces")
    model = flame.load_flame_model(ff.write_flame_npz(tmp_path / "small.npz", ff.make_flame_arrays(**ff.SMALL, seed=3)))
    rig = flame_build.build_flame_rig(model, bpy.context.scene.collection, n_shape=10, n_expression=20)
    rng = np.random.default_rng(2)
    params = flame_params.FlameParams(expression=rng.normal(size=(8, 20)), fps=30.0,
                                      jaw_pose=rng.normal(scale=0.1, size=(8, 3)))
    flame_keys.key_flame_params(rig, params, start_frame=1, identity="keep")
    path, weights, bias = linear_model(tmp_path / "flame.onnx", spaces.FLAME_EXPRESSION_NAMES, space="flame")
    report = infer.infer_muscles(rig.mesh_obj, model=path, frame_range=(1, 8), providers="cpu")
    expected_in = params.to_expression_track().values
    assert np.allclose(report.expression.values[:, :20], expected_in[:, :20], atol=1e-5)
    assert np.allclose(report.muscles.values, report.expression.values @ weights.T + bias, atol=1e-3)
    arkit, _, _ = linear_model(tmp_path / "arkit.onnx", ("jawOpen",))
    with pytest.raises(_module("core.errors").ModelMismatchError, match="FLAME"):
        infer.infer_muscles(rig.mesh_obj, model=arkit, frame_range=(1, 8), providers="cpu")


def _recording_object(values, start_frame, names=None, units="uV"):
    montage = _module("core.recording.montage")
    tracks = _module("core.tracks")
    track = tracks.MuscleTrack(values, names or montage.FRIDLUND22[:values.shape[1]], 30.0, "fridlund22", units)
    return _module("blender.anim.emg_object").write_emg_object(bpy.context.scene, track, name="EMG rec",
                                                          kind="recording", source="rec.edf",
                                                          start_frame=start_frame)


def test_compare_scores_the_common_frames_and_writes_csv_and_png(infer, tmp_path):
    compare = _module("core.analysis.compare")
    face = _mesh_with_keys(["jawOpen", "mouthSmileLeft"])
    rng = np.random.default_rng(4)
    _key(face, {"jawOpen": rng.random(40), "mouthSmileLeft": rng.random(40)}, interpolation="LINEAR")
    path, _, _ = linear_model(tmp_path / "lin.onnx", ("jawOpen", "mouthSmileLeft"))
    inferred = infer.infer_muscles(face, model=path, frame_range=(1, 40), providers="cpu").emg_object
    recorded_values = 5 + 20 * rng.random((50, 22))
    recorded = _recording_object(recorded_values, start_frame=11)  # covers frames 11–60
    report = infer.compare_emg(recorded, inferred, csv_path=tmp_path / "m.csv", png_path=tmp_path / "m.png")
    assert (report.frame_start, report.frame_end) == (11, 40)
    inferred_values = _module("blender.anim.emg_object").read_emg_object(inferred).values[10:40]
    direct = compare.compare_tracks(
        _module("core.tracks").MuscleTrack(recorded_values[:30], report.comparison.names, 30.0, "fridlund22", "uV"),
        _module("core.tracks").MuscleTrack(inferred_values, report.comparison.names, 30.0, "fridlund22", "normalised"))
    for metric in ("mse", "rmse", "smape", "spearman"):
        assert np.allclose(report.comparison.table.values[metric], direct.table.values[metric], atol=1e-5)
    assert report.comparison.scaling == "percentile"
    rows = compare.read_metrics_csv(report.csv_path)
    assert len(rows) == 23 and "median" in rows
    assert report.png_path.stat().st_size > 10_000 and report.png_path.read_bytes()[:4] == b"\x89PNG"
    errors = _module("core.errors")
    late = _recording_object(recorded_values, start_frame=200)
    late.name = "late"
    with pytest.raises(errors.InputError, match="share no frame"):
        infer.compare_emg(late, inferred)
    with pytest.raises(errors.InputError, match="not an EMG object"):
        infer.compare_emg(face, inferred)


def test_reinferring_refreshes_a_heatmap_that_shows_the_inferred_object(infer, tmp_path):
    heatmap = _module("blender.jobs.heatmap")
    head = _module("blender.rigs.openhead").build_open_head(bpy.context.scene.collection)
    _key(head, {"mouthSmileLeft": np.linspace(0, 1, 10), "jawOpen": np.linspace(0.5, 0, 10)})
    names = _module("core.expression.spaces").ARKIT_OBSERVABLE
    path, _, _ = linear_model(tmp_path / "lin.onnx", names)
    first = infer.infer_muscles(head, model=path, frame_range=(1, 10), providers="cpu")
    info = heatmap.enable_heatmap(head, first.emg_object)
    node = info.node_group.nodes["÷p95 Zyg_L"]
    old_scale = node.inputs[1].default_value
    path2, _, _ = linear_model(tmp_path / "lin2.onnx", names, seed=9)
    second = infer.infer_muscles(head, model=path2, frame_range=(1, 10), providers="cpu")
    assert second.heatmaps_refreshed == 1
    new_scale = bpy.data.node_groups[info.node_group.name].nodes["÷p95 Zyg_L"].inputs[1].default_value
    p95 = np.percentile(second.muscles.column("Zyg_L"), 95)
    assert new_scale == pytest.approx(1 / p95, rel=1e-4) and new_scale != pytest.approx(old_scale)


def round_trip_rho(infer, model=None, subjects=((3, 11), (4, 12), (5, 13)), protocol="emotions",
                   duration_s=60.0, fps=30.0):
    """Per-channel Spearman ρ (averaged over sessions) between muscles inferred from the simulator's
    ground-truth ARKit animation, keyed on the open head, and the simulator's noise-free envelopes.

    The noise-free level is RMS-averaged over the model's envelope window (``rms_window_s``, 0.5 s),
    as the envelope the model is defined to output is (and as ``models.evaluate.oracle_scores``
    smooths it). One session per (subject id, seed), keyed back to back in one action and inferred
    in one go (a windowed model's first and last frames of a session see its neighbour: a few
    frames of 1800).
    """
    from scipy.ndimage import uniform_filter1d

    network = _module("core.network")
    rms_window_s = network.resolve_model(model, "arkit2emg", "cpu").metadata.processing["rms_window_s"]
    rms_frames = max(1, round(rms_window_s * fps))
    physiology = _module("core.simulator.physiology")
    protocols = _module("core.simulator.protocols")
    synthesis = _module("core.simulator.synthesis")
    metrics = _module("core.analysis.metrics")
    rig_arkit = _module("blender.rigs.arkit")
    faces, truths = [], []
    for subject_id, seed in subjects:
        subject = synthesis.make_subject(subject_id)
        rng = np.random.default_rng(np.random.SeedSequence([seed, subject.subject_id]))
        run = protocols.generate_protocol(protocol, duration_s, fps, rng, subject.tonic, subject.blink_rate_per_min)
        faces.append(np.clip(physiology.activations_to_arkit(run.activations) + run.exogenous, 0.0, 1.0))
        level = synthesis.true_envelope(synthesis.activation_track(run.activations, fps), subject)
        truths.append(np.sqrt(uniform_filter1d(np.square(level.values, dtype=np.float64), rms_frames, axis=0,
                                               mode="nearest")))
    head = _module("blender.rigs.openhead").build_open_head(bpy.context.scene.collection)
    track = _module("core.tracks").ExpressionTrack(np.vstack(faces), _module("core.expression.spaces").ARKIT52, fps,
                                                   "arkit52", "1")
    rig_arkit.key_expression_track(head, track, rig_arkit.arkit_binding(head), start_frame=1, action_name="truth")
    report = infer.infer_muscles(head, model=model, frame_range=(1, track.n_frames), providers="cpu")
    names = _module("core.recording.montage").FRIDLUND22  # true_envelope's channels
    inferred = report.muscles.select(names).values
    bounds = np.cumsum([0] + [len(f) for f in faces])
    rho = np.mean([metrics.spearman(inferred[a:b], truth)
                   for a, b, truth in zip(bounds[:-1], bounds[1:], truths)], axis=0)
    return dict(zip(names, rho))


@pytest.mark.skipif(not SHIPPED_ARKIT2EMG.is_file(), reason="the shipped arkit2emg model is not built yet")
def test_round_trip_on_simulated_data_follows_the_simulator_envelopes(infer):
    """Acceptance: ground-truth ARKit animation keyed on the open head → inferred curves vs the
    simulator's noise-free envelopes, RMS-smoothed over the model's 0.5 s window (the envelope it
    is defined to output; arkit2emg 1.1.0 scores 0.840 against the instantaneous level, which 1.0.0's
    per-frame model passed): median Spearman ρ over the 22 channels ≥ 0.85.

    Three unseen subjects (the models train on ids 100–139) perform the emotion protocol, the
    setting of EIFER's published Exp2EMG numbers (ρ 0.81 zygomaticus, 0.76 corrugator).
    """
    rho = round_trip_rho(infer)
    assert np.median(list(rho.values())) >= 0.85, {k: round(float(v), 2) for k, v in rho.items()}
