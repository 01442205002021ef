"""The computed ARKit ↔ FLAME bridge end to end, in a real Blender, through the command line.

The user's FLAME file is the known-answer face of ``tests.flame_fixtures.make_face_flame_arrays``
(the open head remeshed, warped and packed into a FLAME-layout expression basis), written to a
temporary folder; no FLAME-derived data is used or kept. The bridge cache goes to a temporary
folder through ``$EIFER_BRIDGE_CACHE``; the bridge is built once per module (a few seconds) and
loaded from the cache afterwards.
"""
import os

import bpy
import numpy as np
import pytest

from tests import flame_fixtures as ff
from tests.helpers import FLAME_PARAMS, extension_module, extension_modules

from eifer_blender.core.expression.spaces import ARKIT52, FLAME_EXPRESSION_NAMES  # plain names, no bpy
FPS = 30.0


@pytest.fixture(scope="module")
def face_file(tmp_path_factory):
    """(FLAME file, known answer, cache folder): the user's FLAME file and the bridge cache."""
    folder = tmp_path_factory.mktemp("user")
    arrays, answer = ff.make_face_flame_arrays(seed=0)
    path = ff.write_flame_npz(folder / "my_flame.npz", arrays)
    cache = folder / "bridge_cache"
    saved = os.environ.get("EIFER_BRIDGE_CACHE")
    os.environ["EIFER_BRIDGE_CACHE"] = str(cache)
    yield path, answer, cache
    if saved is None:
        os.environ.pop("EIFER_BRIDGE_CACHE", None)
    else:
        os.environ["EIFER_BRIDGE_CACHE"] = saved


@pytest.fixture
def cli(blender):
    return extension_module("cli")


@pytest.fixture(scope="module")
def flame_blend(extension, face_file, tmp_path_factory):
    """A .blend with a FLAME head made from the user's file by ``flame-import`` (one rest frame)."""
    path, _, _ = face_file
    folder = tmp_path_factory.mktemp("head")
    fp = extension_modules(*FLAME_PARAMS)
    rest = fp.write_flame_params(fp.FlameParams(expression=np.zeros((1, 50)), fps=FPS), folder / "rest.csv",
                                 layout="emoca")
    out = folder / "flame_head.blend"
    cli = extension_module("cli")
    bpy.ops.wm.read_homefile(use_empty=True)
    assert cli.main(["flame-import", str(rest), "--flame", str(path), "--out", str(out), "--shapes", "0",
                     "--expressions", "50", "--fps", str(FPS)]) == 0
    return out


def _recording(path, site: str, seconds: float = 12.0):
    """An EDF in which only ``site`` contracts: two 3 s bursts (the simulator's sEMG)."""
    synthesis = extension_module("core.simulator.synthesis")
    physiology = extension_module("core.simulator.physiology")
    t = np.arange(int(seconds * 60)) / 60.0
    pulse = np.clip(np.sin(2 * np.pi * t / 6.0), 0, None) ** 2
    activations = np.zeros((t.size, len(physiology.UNIT_NAMES)))
    activations[:, physiology.UNIT_NAMES.index(site)] = 0.8 * pulse
    recording = synthesis.synthesize_emg(synthesis.activation_track(activations, 60.0), subject=8,
                                         rate_hz=2048.0, seed=1)
    extension_module("core.recording").write_recording(recording, path)
    return path, t, pulse


def _region(answer, shape: str, n: int = 25) -> np.ndarray:
    """The FLAME vertices that the open head's ``shape`` moves most (carried onto FLAME)."""
    moved = np.linalg.norm(answer["targets_m"][ARKIT52.index(shape)], axis=1)
    return np.argsort(moved)[-n:]


def _open_head_region(shape: str, n: int = 25) -> np.ndarray:
    head = extension_module("core.heads.openhead").load_open_head()
    return np.argsort(np.linalg.norm(head.deltas_m[ARKIT52.index(shape)], axis=1))[-n:]


def _frames_active(t, pulse, n_frames):
    """Scene frames (1-based) at burst peaks and at rest."""
    times = np.arange(n_frames) / FPS
    level = np.interp(times, t, pulse)
    return 1 + np.flatnonzero(level > 0.8), 1 + np.flatnonzero(level < 0.01)


def _mean_offset(mesh_obj, rows, active, rest, evaluated):
    """Mean displacement (Blender frame, mesh space) of ``rows`` at the active frames from rest."""
    scene = bpy.context.scene

    def mean_at(frames):
        out = []
        for frame in frames[:: max(1, len(frames) // 6)]:
            scene.frame_set(int(frame))
            out.append(evaluated(mesh_obj)[rows].mean(axis=0))
        return np.mean(out, axis=0)

    return mean_at(active) - mean_at(rest)


def _drive_flame(cli, flame_blend, recording, out, capsys):
    code = cli.main(["drive", "--emg", str(recording), "--blend", str(flame_blend), "--object", "FLAME Head",
                     "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    return printed.out


def _probe(cli, rf, face_file, flame_blend, tmp_path, capsys, site, shape, mirror_shape):
    """Drive the open head and the FLAME head from a one-muscle recording; the displacement of
    ``shape``'s region on each (open head, FLAME), and of ``mirror_shape``'s on FLAME."""
    _, answer, _ = face_file
    recording, t, pulse = _recording(tmp_path / f"{site}.edf", site)
    drive = extension_module("blender.jobs.drive")
    scene = bpy.context.scene
    scene.render.fps = int(FPS)
    face = extension_module("blender.rigs.openhead").build_open_head(scene.collection)
    report = drive.drive(face, str(recording), scene=scene)
    active, rest = _frames_active(t, pulse, report.frame_end - report.frame_start + 1)

    def open_vertices(obj):
        mesh = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).to_mesh()
        co = np.empty(3 * len(mesh.vertices), dtype=np.float32)
        mesh.vertices.foreach_get("co", co)
        obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).to_mesh_clear()
        return co.reshape(-1, 3).astype(np.float64)

    on_open = _mean_offset(face, _open_head_region(shape), active, rest, open_vertices)

    out = tmp_path / f"{site}_flame.blend"
    printed = _drive_flame(cli, flame_blend, recording, out, capsys)
    bpy.ops.wm.open_mainfile(filepath=str(out), load_ui=False)
    mesh_obj = bpy.data.objects["FLAME Head"]
    on_flame = _mean_offset(mesh_obj, _region(answer, shape), active, rest, rf.evaluated_vertices_m)
    other = _mean_offset(mesh_obj, _region(answer, mirror_shape), active, rest, rf.evaluated_vertices_m)
    return on_open, on_flame, other, printed, out


# ------------------------------------------------------------------------------- drive


def test_drive_a_flame_head_with_the_shipped_arkit_model_and_no_matrix(cli, rf, face_file, flame_blend,
                                                                       tmp_path, capsys):
    """Acceptance: a zygomaticus-only recording moves the FLAME head's mouth corner on its own
    side up and back, as it does the open head's; the bridge is computed once, cached in the
    user's folder (not beside the FLAME file, not in the repository) and reported."""
    path, _, cache = face_file
    on_open, on_flame, other, printed, out = _probe(cli, rf, face_file, flame_blend, tmp_path, capsys,
                                                    "Zyg_L", "mouthSmileLeft", "mouthSmileRight")
    assert "bridge: computed ARKit→FLAME bridge" in printed and "fit residual" in printed
    assert out.is_file()
    # up (+Z) and back (+Y: the face looks at −Y) on both heads
    for offset in (on_open, on_flame):
        assert offset[2] > 1e-4 and offset[1] > 0, (on_open, on_flame)
    assert np.linalg.norm(on_flame) > 0.4 * np.linalg.norm(on_open)
    assert np.linalg.norm(other) < 0.35 * np.linalg.norm(on_flame)  # the other corner stays
    # the driven keys are FLAME's own: Exp keys and the jaw, no ARKit names
    key_bag = extension_module("blender.anim.keyframes").assigned_channelbag(
        bpy.data.objects["FLAME Head"].data.shape_keys)
    assert all('"Exp' in c.data_path for c in key_bag.fcurves)
    cached = sorted(p.name for p in cache.iterdir())
    assert any(name.startswith("flame_bridge_") and name.endswith(".npz") for name in cached)
    assert not any(p.name.startswith("flame_bridge_") for p in path.parent.iterdir())
    # the head keyed by EIFER reads back through the reverse bridge: the left zygomaticus again
    muscles_csv = tmp_path / "back.csv"
    code = cli.main(["infer-muscles", "--blend", str(out), "--object", "FLAME Head", "--out", str(muscles_csv)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "bridge: computed ARKit→FLAME bridge" in printed.out
    muscles = extension_module("core.trackfiles").read_track(muscles_csv)
    assert muscles.column("Zyg_L").max() > 2.0 * muscles.column("Zyg_R").max()


def test_corrugator_only_recording_lowers_and_draws_in_the_brow_on_its_side(cli, rf, face_file, flame_blend,
                                                                             tmp_path, capsys):
    on_open, on_flame, other, printed, _ = _probe(cli, rf, face_file, flame_blend, tmp_path, capsys,
                                                  "Corr_L", "browDownLeft", "browDownRight")
    assert "(from the cache)" in printed or "(built now)" in printed
    # down (−Z) and in (toward the midline: the left brow lies at +X, so −X)
    for offset in (on_open, on_flame):
        assert offset[2] < -1e-4 and offset[0] < 0, (on_open, on_flame)
    assert np.linalg.norm(other) < 0.35 * np.linalg.norm(on_flame)


def test_a_users_retarget_matrix_still_wins(cli, rf, face_file, flame_blend, tmp_path, capsys):
    """``--retarget`` is for users who bring their own matrix: no bridge is computed then."""
    retarget = extension_module("core.expression.retarget")
    matrix = np.zeros((53, 52))
    matrix[0, ARKIT52.index("mouthSmileLeft")] = 1.0
    names = FLAME_EXPRESSION_NAMES[:53]
    np.savez(tmp_path / "mine.npz", matrix=matrix, input_names=np.array(ARKIT52), output_names=np.array(names))
    assert retarget.load_retarget(tmp_path / "mine.npz") is not None
    recording, _, _ = _recording(tmp_path / "zyg.edf", "Zyg_L", seconds=4.0)
    out = tmp_path / "mine.blend"
    code = cli.main(["drive", "--emg", str(recording), "--blend", str(flame_blend), "--object", "FLAME Head",
                     "--out", str(out), "--retarget", str(tmp_path / "mine.npz")])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "bridge:" not in printed.out


# ------------------------------------------------------------------------------- infer


def test_flame_import_then_infer_muscles_reads_the_head_through_the_reverse_bridge(cli, fp, face_file,
                                                                                   tmp_path, capsys):
    """A FLAME parameter track (as a tracker writes it) of a left smile, imported onto a new head
    with ``flame-import``, gives zygomaticus activity on the left, in its frames."""
    path, _, cache = face_file
    bridge = extension_module("blender.rigs.bridge_cache").bridge_for_file(path)
    n = 90
    weights = np.zeros((n, 52))
    smile = np.zeros(n)
    smile[30:60] = 1.0
    weights[:, ARKIT52.index("mouthSmileLeft")] = 0.8 * smile
    params = bridge.to_flame(weights)
    clip = fp.write_flame_params(fp.FlameParams(expression=params[:, :50], fps=FPS, jaw_pose=params[:, 50:53]),
                                 tmp_path / "tracker.csv", layout="emoca")
    blend = tmp_path / "tracked.blend"
    assert cli.main(["flame-import", str(clip), "--flame", str(path), "--out", str(blend), "--shapes", "0",
                     "--expressions", "50", "--fps", str(FPS)]) == 0
    capsys.readouterr()
    muscles_csv = tmp_path / "muscles.csv"
    code = cli.main(["infer-muscles", "--blend", str(blend), "--object", "FLAME Head", "--out", str(muscles_csv)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "bridge: computed ARKit→FLAME bridge" in printed.out and "(from the cache)" in printed.out
    muscles = extension_module("core.trackfiles").read_track(muscles_csv)
    zyg_l, zyg_r = muscles.column("Zyg_L"), muscles.column("Zyg_R")
    on, off = slice(38, 55), np.r_[0:20, 70:90]
    assert zyg_l[on].mean() > 2.0 * zyg_l[off].mean()
    assert zyg_l[on].mean() > 1.5 * zyg_r[on].mean()


def test_infer_job_reports_the_bridge_on_a_head_keyed_by_hand(blender, rf, face_file):
    path, _, _ = face_file
    flame = extension_module("core.heads.flame_file").load_flame_model(path)
    rig = rf.build_flame_rig(flame, bpy.context.scene.collection, n_shape=0, n_expression=50)
    bridge = extension_module("blender.rigs.bridge_cache").bridge_for_head(rig)
    jaw = bridge.arkit_to_flame[ARKIT52.index("jawOpen")]
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 20
    blocks = rig.key.key_blocks
    for frame, weight in ((1, 0.0), (10, 1.0), (20, 0.0)):  # a jaw opened by hand, keyed
        scene.frame_set(frame)
        rf.set_flame_parameters(rig, expression=weight * jaw[:50],
                                pose=np.r_[np.zeros(6), weight * jaw[50:53], np.zeros(6)])
        for name in rig.expression_names:
            blocks[name].keyframe_insert("value", frame=frame)
        rig.armature_obj.pose.bones["jaw"].keyframe_insert("rotation_quaternion", frame=frame)
    report = extension_module("blender.jobs.infer").infer_muscles(rig.mesh_obj, scene=scene)
    assert report.bridge is not None and report.bridge.sha256 == bridge.sha256
    assert "fit residual" in report.bridge_note
    assert report.expression.space == "arkit52"
    jaw_open = report.expression.column("jawOpen")
    assert jaw_open[9] > 0.7 and jaw_open[0] < 0.1


# ------------------------------------------------------------------------------- bad input


def test_a_flame_layout_file_that_is_not_a_face_is_refused_with_its_residual(cli, fp, tmp_path, capsys,
                                                                             monkeypatch):
    """Random arrays in FLAME's layout: the head can be made, but no bridge: exit 3, the message
    gives the registration residual, nothing is cached, no .blend is written."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("EIFER_BRIDGE_CACHE", str(cache))
    noise = ff.write_flame_npz(tmp_path / "noise.npz", ff.make_flame_arrays(n_vertices=800, n_faces=1500, seed=1))
    rest = fp.write_flame_params(fp.FlameParams(expression=np.zeros((1, 50)), fps=FPS), tmp_path / "rest.csv",
                                 layout="emoca")
    head = tmp_path / "noise_head.blend"
    assert cli.main(["flame-import", str(rest), "--flame", str(noise), "--out", str(head), "--shapes", "0"]) == 0
    recording, _, _ = _recording(tmp_path / "zyg.edf", "Zyg_L", seconds=3.0)
    capsys.readouterr()
    out = tmp_path / "driven.blend"
    code = cli.main(["drive", "--emg", str(recording), "--blend", str(head), "--object", "FLAME Head",
                     "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 3
    assert "does not look like a face" in err and "residual of" in err and "mm RMS" in err
    assert not out.exists()
    assert not cache.exists() or not any(cache.iterdir())
    code = cli.main(["flame-bridge", "--flame", str(noise), "--report", str(tmp_path / "report")])
    assert code == 3 and "residual of" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()
    assert not cache.exists() or not any(cache.iterdir())


def test_a_head_whose_flame_file_is_gone_says_so(blender, rf, tmp_path):
    arrays, _ = ff.make_face_flame_arrays(n_vertices=4500, seed=2)
    path = ff.write_flame_npz(tmp_path / "moved_away.npz", arrays)
    flame = extension_module("core.heads.flame_file").load_flame_model(path)
    rig = rf.build_flame_rig(flame, bpy.context.scene.collection, n_shape=0, n_expression=10)
    path.unlink()
    with pytest.raises(extension_module("core.errors").InputError, match="not there any more.*--retarget"):
        extension_module("blender.rigs.bridge_cache").bridge_for_head(rig)


def test_the_cache_lives_in_blenders_extension_user_folder(blender, monkeypatch):
    monkeypatch.delenv("EIFER_BRIDGE_CACHE", raising=False)
    folder = extension_module("blender.rigs.bridge_cache").bridge_cache_dir()
    user = bpy.utils.extension_path_user(extension_module("blender.rigs.bridge_cache").__package__
                                         .removesuffix(".blender.rigs"))
    assert str(folder).startswith(user)
    repo = extension_module("core.heads.bridge").__file__
    assert not str(folder).startswith(os.path.dirname(os.path.dirname(os.path.dirname(repo))))


# ------------------------------------------------------------------------------- report, button


def test_flame_bridge_command_writes_the_residual_table_and_rendered_pairs(cli, face_file, tmp_path, capsys):
    path, _, _ = face_file
    report = tmp_path / "report"
    code = cli.main(["flame-bridge", "--model", str(path), "--report", str(report),
                     "--shapes", "jawOpen,mouthSmileLeft", "--size", "64"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "bridge: computed ARKit→FLAME bridge" in printed.out
    rows = (report / "bridge_residuals.csv").read_text().splitlines()
    assert rows[0].startswith("shape,residual") and len(rows) == 1 + 52
    jaw = next(r for r in rows if r.startswith("jawOpen,"))
    assert float(jaw.split(",")[1]) < 0.15 and "jaw" in jaw and "pairs/jawOpen.png" in jaw
    assert "| jawOpen |" in (report / "bridge_residuals.md").read_text()
    for shape in ("jawOpen", "mouthSmileLeft"):
        image = bpy.data.images.load(str(report / "pairs" / f"{shape}.png"))
        assert tuple(image.size) == (128, 64)
        bpy.data.images.remove(image)
    assert sorted(p.name for p in (report / "pairs").iterdir()) == ["jawOpen.png", "mouthSmileLeft.png"]
    assert cli.main(["flame-bridge", "--flame", str(path), "--report", str(report), "--shapes", "smile"]) == 3


def test_the_flame_panel_button_builds_the_bridge_and_shows_the_summary(blender, face_file):
    path, _, _ = face_file
    ops = extension_module("blender.ui.flame_ops")
    prefs = extension_module("blender.ui.preferences").get_preferences()
    saved = prefs.flame_model_path
    prefs.flame_model_path = str(path)
    try:
        before = {n: len(getattr(bpy.data, n)) for n in ("objects", "meshes", "actions")}
        assert bpy.ops.eifer.build_flame_bridge() == {"FINISHED"}
        assert {n: len(getattr(bpy.data, n)) for n in ("objects", "meshes", "actions")} == before
        lines = ops.bridge_summary_lines(bpy.context)
        assert lines and "fit residual" in " ".join(lines)
    finally:
        prefs.flame_model_path = saved
    assert ops.EIFER_OT_build_flame_bridge in ops.CLASSES


# ------------------------------------------------------------------------------- eyelids


def _with_eyelids(seed=4):
    arrays = ff.make_flame_arrays(**ff.SMALL, seed=seed)
    rng = np.random.default_rng(seed)
    arrays["l_eyelid"] = rng.normal(scale=2e-3, size=(ff.SMALL["n_vertices"], 3))
    arrays["r_eyelid"] = rng.normal(scale=2e-3, size=(ff.SMALL["n_vertices"], 3))
    arrays["posedirs"] = np.zeros_like(arrays["posedirs"])
    return arrays


def test_the_flame_rig_applies_tracker_eyelids_where_the_model_has_eyelid_blendshapes(blender, rf, fp, tmp_path):
    arrays = _with_eyelids()
    flame_file = extension_module("core.heads.flame_file")
    flame_model = extension_module("core.heads.flame_model")
    flame = flame_file.load_flame_model(ff.write_flame_npz(tmp_path / "smirk_like.npz", arrays))
    assert flame.eyelid_dirs.shape == (ff.SMALL["n_vertices"], 3, 2)
    rig = rf.build_flame_rig(flame, bpy.context.scene.collection, n_shape=0, n_expression=10)
    assert rig.has_eyelids and {"Eyelid_L", "Eyelid_R"} <= set(rig.key.key_blocks.keys())
    eyelid = np.array([[0.0, 0.0], [0.7, 0.2], [0.0, 1.0]])
    params = fp.FlameParams(expression=np.zeros((3, 50)), fps=FPS, eyelid=eyelid)
    result = rf.key_flame_params(rig, params, start_frame=1, fps=FPS)  # a key on every frame
    assert not any("eyelid" in w for w in result["warnings"] + result["notes"])
    rest = flame_model.flame_to_blender(flame.v_template_m)
    for frame, (left, right) in enumerate(eyelid, start=1):
        bpy.context.scene.frame_set(frame)
        got = rf.evaluated_vertices_m(rig.mesh_obj) - rest
        want = flame_model.flame_to_blender(left * arrays["l_eyelid"] + right * arrays["r_eyelid"])
        np.testing.assert_allclose(got, want, atol=2e-6)
    back = rf.sample_flame_params(rig, np.arange(1, 4), fps=FPS)
    np.testing.assert_allclose(back.eyelid, eyelid, atol=1e-5)


def test_without_eyelid_blendshapes_eyelids_are_kept_and_the_user_told(blender, rf, fp, tmp_path):
    plain = ff.write_flame_npz(tmp_path / "plain.npz", ff.make_flame_arrays(**ff.SMALL, seed=4))
    flame = extension_module("core.heads.flame_file").load_flame_model(plain)
    assert flame.eyelid_dirs is None
    rig = rf.build_flame_rig(flame, bpy.context.scene.collection, n_shape=0, n_expression=10)
    assert not rig.has_eyelids and "Eyelid_L" not in rig.key.key_blocks
    params = fp.FlameParams(expression=np.zeros((2, 50)), fps=FPS, eyelid=np.full((2, 2), 0.5))
    result = rf.key_flame_params(rig, params, start_frame=1, fps=FPS)
    assert any("no eyelid blendshapes" in n for n in result["notes"]) and not result["warnings"]
    np.testing.assert_allclose(rf.sample_flame_params(rig, np.arange(1, 3), fps=FPS).eyelid, 0.5, atol=1e-6)
