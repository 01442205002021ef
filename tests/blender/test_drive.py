"""Driving a face from EMG: end to end on simulated recordings with known ground truth."""
import importlib

import bpy
import numpy as np
import pytest
from scipy.stats import spearmanr

from models.evaluate import ACTIVE_THRESHOLD, electrode_driven_arkit
from tests.conftest import EXTENSION_MODULE


def _ext(name):
    return importlib.import_module(f"{EXTENSION_MODULE}.{name}")


def _simulated_edf(tmp_path_factory, protocol):
    """A held-out simulated subject (training uses ids >= 100) doing ``protocol``, as EDF."""
    sim_session = _ext("core.simulator.session")
    recording_io = _ext("core.recording")
    session = sim_session.simulate_session(protocol, subject=7, duration_s=40.0, rate_hz=2048.0, fps=60.0, seed=3)
    path = tmp_path_factory.mktemp("drive") / f"subject7_{protocol}.edf"
    recording_io.write_recording(session.recording, path)
    return session, path


@pytest.fixture(scope="module")
def mixed_session(tmp_path_factory):
    """Free mixtures of 1-3 muscles, one- or two-sided, overlapping: the hardest protocol."""
    return _simulated_edf(tmp_path_factory, "mixed")


@pytest.fixture(scope="module")
def emotions_session(tmp_path_factory):
    """The six basic emotions with random timing, intensity and asymmetry: EIFER's setting."""
    return _simulated_edf(tmp_path_factory, "emotions")


def _open_head():
    assert bpy.ops.eifer.add_open_head() == {"FINISHED"}
    return bpy.context.active_object


def _driven_and_truth(session, path, **drive_options):
    """Drive the open head at 30 fps; shape-key values read back from Blender per frame + truth."""
    drive = _ext("blender.jobs.drive")
    rig_arkit = _ext("blender.rigs.arkit")
    windows = _ext("core.network.windows")
    scene = bpy.context.scene
    scene.render.fps = 30
    face = _open_head()
    report = drive.drive(face, str(path), scene=scene, start_frame=1, **drive_options)
    frames = np.arange(report.frame_start, report.frame_end + 1)
    sampled = rig_arkit.sample_shape_keys(face, rig_arkit.arkit_binding(face), frames)
    truth = session.arkit
    truth_at_frames = windows.resample_frames(truth.values, truth.fps, (frames - 1) / 30.0, truth.start_s)
    moving = [n for n in report.result.expression.names if truth_at_frames[:, truth.names.index(n)].std() >= 0.02]
    return report, sampled, {n: truth_at_frames[:, truth.names.index(n)] for n in moving}


def test_driven_shape_keys_follow_the_ground_truth(blender, mixed_session):
    session, path = mixed_session
    report, sampled, truth = _driven_and_truth(session, path)
    assert len(truth) >= 15, sorted(truth)
    # what Blender shows is what the network said, frame by frame
    np.testing.assert_allclose(sampled.select(report.result.expression.names).values,
                               report.result.expression.values, atol=1e-6)
    pearson = {n: np.corrcoef(sampled.column(n), t)[0, 1] for n, t in truth.items()}
    assert np.median(list(pearson.values())) >= 0.75, pearson
    for name in ("mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "browInnerUp"):
        assert pearson[name] >= 0.9, (name, pearson[name])
    assert report.emg_object["eifer_kind"] == "recording" and report.emg_object["eifer_source"] == str(path)


def test_observable_shapes_move_when_and_as_much_as_the_truth_with_a_rest_floor(blender, emotions_session):
    """The issue's target, measured as a user sees it: the shapes moved by muscles under the
    electrodes, driven with a rest floor of 0.05 (the face keeps still below it) against the
    truth through the same floor (weights below 0.05, the models' "active" threshold, are rest).
    """
    floor = ACTIVE_THRESHOLD["arkit52"]
    session, path = emotions_session
    report, sampled, truth = _driven_and_truth(session, path, rest_floor=floor)
    observable = [n for n in electrode_driven_arkit() if n in truth]
    assert len(observable) >= 10, observable
    apply_rest_floor = _ext("core.expression.curves").apply_rest_floor
    rhos = {n: spearmanr(sampled.column(n), apply_rest_floor(truth[n], floor))[0] for n in observable}
    assert np.median(list(rhos.values())) >= 0.85, rhos
    assert (report.result.expression.values == 0).mean() > 0.5  # at rest most of the time, keyed as 0


def test_zygomaticus_only_recording_smiles_on_its_own_side(blender):
    synthesis = _ext("core.simulator.synthesis")
    physiology = _ext("core.simulator.physiology")
    drive = _ext("blender.jobs.drive")
    fps = 60.0
    t = np.arange(int(12 * fps)) / fps
    activations = np.zeros((t.size, len(physiology.UNIT_NAMES)))
    pulse = np.clip(np.sin(2 * np.pi * t / 6.0), 0, None) ** 2  # two smiles, 3 s each
    activations[:, physiology.UNIT_NAMES.index("Zyg_L")] = 0.8 * pulse
    recording = synthesis.synthesize_emg(synthesis.activation_track(activations, fps), subject=8, rate_hz=2048.0,
                                         seed=1)
    scene = bpy.context.scene
    scene.render.fps = 30
    face = _open_head()
    report = drive.drive(face, recording, scene=scene)
    expression = report.result.expression
    left, right = expression.column("mouthSmileLeft"), expression.column("mouthSmileRight")
    active = np.interp(expression.times_s, t, pulse) > 0.5
    assert left[active].mean() > 0.3
    assert right[active].mean() < 0.25 * left[active].mean()
    assert left[active].mean() > 3 * left[~active].mean()


def _scene_state():
    objects = {o.name: (o.type, tuple(o.matrix_world.col[3])) for o in bpy.data.objects}
    actions = sorted(a.name for a in bpy.data.actions)
    keys = {o.name: tuple(kb.value for kb in o.data.shape_keys.key_blocks)
            for o in bpy.data.objects if o.type == "MESH" and o.data.shape_keys}
    scene = bpy.context.scene
    return objects, actions, keys, (scene.frame_start, scene.frame_end), sorted(c.name for c in bpy.data.collections)


def test_hand_keyed_animation_survives_driving_and_restores(blender, mixed_session):
    _, path = mixed_session
    face = _open_head()
    key = face.data.shape_keys
    smile = key.key_blocks["mouthSmileLeft"]
    smile.value = 0.0
    smile.keyframe_insert("value", frame=1)
    smile.value = 0.9
    smile.keyframe_insert("value", frame=20)
    hand_action = key.animation_data.action
    scene = bpy.context.scene
    assert bpy.ops.eifer.import_emg(filepath=str(path)) == {"FINISHED"}
    assert bpy.ops.eifer.drive_face() == {"FINISHED"}
    assert key.animation_data.action != hand_action
    assert hand_action.name in bpy.data.actions  # stashed, not lost
    assert bpy.ops.eifer.restore_animation() == {"FINISHED"}
    assert key.animation_data.action == hand_action
    scene.frame_set(20)
    assert smile.value == pytest.approx(0.9)


def test_errors_leave_the_scene_unchanged(blender, mixed_session, tmp_path):
    session, path = mixed_session
    recording_io = _ext("core.recording")
    errors = _ext("core.errors")
    drive = _ext("blender.jobs.drive")
    face = _open_head()
    scene = bpy.context.scene
    before = _scene_state()

    with pytest.raises(errors.InputError, match="model file not found"):
        drive.drive(face, str(path), scene=scene, model=str(tmp_path / "missing.onnx"))
    partial = session.recording
    keep = [i for i, n in enumerate(partial.channel_names) if not n.startswith("Zyg")]
    lacking = recording_io.Recording(partial.data_uv[keep], partial.rate_hz, [partial.channel_names[i] for i in keep])
    with pytest.raises(errors.InputError, match="Zyg_R, Zyg_L|Zyg_L"):
        drive.drive(face, lacking, scene=scene)
    mesh = bpy.data.meshes.new("plain")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    plain = bpy.data.objects.new("Plain", mesh)
    scene.collection.objects.link(plain)
    plain.shape_key_add(name="Basis")
    plain.shape_key_add(name="Smile").value = 0.0
    before = _scene_state()
    with pytest.raises(errors.InputError, match="no shape keys with ARKit names"):
        drive.drive(plain, str(path), scene=scene)
    with pytest.raises(errors.InputError, match="empty frame range"):
        drive.drive(face, str(path), scene=scene, frame_range=(50, 10))
    with pytest.raises(errors.InputError, match="do not overlap"):
        drive.drive(face, str(path), scene=scene, frame_range=(100000, 100010))
    assert _scene_state() == before

    scene.eifer.face = face
    scene.eifer.recording = None
    scene.eifer.model_path = str(tmp_path / "missing.onnx")
    # an operator that reports an error raises in scripts (Blender's rule) and changes nothing
    with pytest.raises(RuntimeError, match="not found"):
        bpy.ops.eifer.import_emg(filepath=str(tmp_path / "nothing.edf"))
    with pytest.raises(RuntimeError, match="not found"):
        bpy.ops.eifer.import_emg(filepath=str(path))  # the model path in the panel is missing
    assert _scene_state() == before


def test_flame_head_is_driven_through_a_retarget_matrix(blender, mixed_session, tmp_path):
    from tests import flame_fixtures as ff

    _, path = mixed_session
    flame_build = _ext("blender.rigs.flame_build")
    flame = _ext("core.heads.flame_file")
    rig_flame = _ext("blender.rigs.flame")
    drive = _ext("blender.jobs.drive")
    errors = _ext("core.errors")
    spaces = _ext("core.expression.spaces")
    model = flame.load_flame_model(ff.write_flame_npz(tmp_path / "small.npz", ff.make_flame_arrays(**ff.SMALL, seed=5)))
    scene = bpy.context.scene
    scene.render.fps = 30
    rig = flame_build.build_flame_rig(model, scene.collection, n_shape=10, n_expression=50)
    with pytest.raises(errors.InputError, match="retarget matrix"):
        drive.drive(rig.mesh_obj, str(path), scene=scene, frame_range=(1, 60))
    # smile → exp001, jaw opening → jaw_x: a tiny hand-made bridge with names
    np.savez(tmp_path / "bridge.npz", matrix=np.array([[1.0, 0.0], [0.0, 0.4]]),
             input_names=["mouthSmileLeft", "jawOpen"], output_names=["exp001", "jaw_x"])
    report = drive.drive(rig.mesh_obj, str(path), scene=scene, frame_range=(1, 300), retarget=str(tmp_path / "bridge.npz"))
    expression = report.result.expression
    keys = rig.mesh_obj.data.shape_keys.key_blocks
    for frame in (40, 150, 260):
        scene.frame_set(frame)
        row = frame - report.frame_start
        assert keys[rig_flame.expression_key_name(0)].value == pytest.approx(expression.column("mouthSmileLeft")[row], abs=1e-5)
    assert spaces.FLAME_EXPRESSION_NAMES[50] == "jaw_x"
