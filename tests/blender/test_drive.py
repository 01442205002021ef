"""Driving a face from EMG: end to end on simulated recordings with known ground truth."""
import importlib

import bpy
import numpy as np
import pytest

from models.evaluate import electrode_driven_arkit
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
    # 0.72 with model 2.0 (1.0: 0.78): the shapes no site moves (blink, eyeWide, stretch) got worse,
    # the ones under an electrode better (models/emg2arkit.md, "What got worse")
    assert np.median(list(pearson.values())) >= 0.68, pearson
    for name in ("mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "browInnerUp"):
        assert pearson[name] >= 0.9, (name, pearson[name])
    emg_object = _ext("blender.anim.emg_object")
    assert emg_object.kind(report.emg_object) == "recording" and emg_object.source(report.emg_object) == str(path)


def test_electrode_driven_shapes_follow_each_expression_as_eifer_scores_it(blender, emotions_session):
    """EIFER's protocol, as a user sees it (what Blender keyed, frame by frame): per ~6 s clip
    centred on each emotion event, Spearman ρ and the peak ratio of the shapes moved by muscles
    under the electrodes, median over the clips where the truth reaches 0.1, then over shapes.
    The retired reading (ρ over all frames, floored at 0.05) is not used: it mostly scored on/off."""
    clips = _ext("core.analysis.clips")
    session, path = emotions_session
    report, sampled, truth = _driven_and_truth(session, path)
    names = [n for n in electrode_driven_arkit() if n in truth]
    assert len(names) >= 10, names
    pred = sampled.select(names).values
    true = np.column_stack([truth[n] for n in names])
    events = [a for a in session.annotations if a.description != "blink" and not a.description.startswith("artefact/")]
    windows = clips.event_clips(clips.event_centres_s([a.onset_s for a in events], [a.duration_s for a in events]),
                                len(pred), 30.0)
    assert len(windows) >= 5
    summary = clips.summarise(clips.per_clip_scores(pred, true, windows), clips.relevant_mask(true, windows))
    rho = clips.median_over_outputs(summary["spearman"]["median"])
    peak = clips.median_over_outputs(summary["peak_ratio"]["median"])
    # measured with model 2.0: ρ 0.84, peak ratio 1.15
    assert rho >= 0.65, dict(zip(names, np.round(summary["spearman"]["median"], 2)))
    assert 0.7 <= peak <= 1.4, dict(zip(names, np.round(summary["peak_ratio"]["median"], 2)))


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


def test_two_channel_recording_drives_only_the_shapes_its_sites_move(blender, emotions_session, tmp_path):
    """The classic set-up, Zyg + Corr on the left: smiling and brow-lowering on that side are
    keyed, every other shape keeps its animation, and the Drive panel lists both groups."""
    session, _ = emotions_session
    recording_io = _ext("core.recording")
    recording = session.recording
    keep = [recording.channel_names.index(n) for n in ("Zyg_L", "Corr_L")]
    two = recording_io.Recording(recording.data_uv[keep], recording.rate_hz, ["Zyg_L", "Corr_L"],
                                 annotations=list(recording.annotations))
    path = tmp_path / "two_channels.edf"
    recording_io.write_recording(two, path)
    scene = bpy.context.scene
    scene.render.fps = 30
    face = _open_head()
    key_blocks = face.data.shape_keys.key_blocks
    key_blocks["mouthSmileRight"].value = 0.4  # the user's pose on a shape the recording cannot move
    settings = scene.eifer
    settings.face = face
    assert bpy.ops.eifer.import_emg(filepath=str(path)) == {"FINISHED"}
    assert bpy.ops.eifer.drive_face() == {"FINISHED"}
    driven = set(settings.driven_shapes.split(", "))
    assert driven == {"mouthSmileLeft", "browDownLeft"}
    assert "mouthSmileRight" in settings.left_alone_shapes.split(", ")
    fcurves = list(_ext("blender.anim.keyframes").assigned_channelbag(face.data.shape_keys).fcurves)
    assert {c.data_path.split('"')[1] for c in fcurves} == driven
    assert key_blocks["mouthSmileRight"].value == pytest.approx(0.4)
    smile = next(c for c in fcurves if "mouthSmileLeft" in c.data_path)
    values = _ext("blender.anim.keyframes").sample_curve(smile, np.arange(scene.frame_start, scene.frame_end + 1))
    assert values.max() > 0.3 and np.median(values) < 0.2


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
    # channels that map to no site: the model has nothing to read
    unmapped = recording_io.Recording(partial.data_uv[:2], partial.rate_hz, ["GSR", "Marker"])
    with pytest.raises(errors.InputError, match="covers none of the 22 sites.*--map"):
        drive.drive(face, unmapped, scene=scene)
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
