"""Import EMG in Blender: envelopes keyed per canonical channel; bad files change nothing."""
import importlib

import bpy
import numpy as np
import pytest

from tests.conftest import EXTENSION_MODULE


def _ext(name):
    return importlib.import_module(f"{EXTENSION_MODULE}.{name}")


@pytest.fixture(scope="module")
def recording_path(tmp_path_factory):
    sim_session, recording_io = _ext("core.simulator.session"), _ext("core.recording")
    session = sim_session.simulate_session("emotions", subject=5, duration_s=10.0, rate_hz=2048.0, fps=30.0, seed=4)
    path = tmp_path_factory.mktemp("import") / "subject5.bdf"
    recording_io.write_recording(session.recording, path)
    return path


def _state():
    return (sorted(o.name for o in bpy.data.objects), sorted(a.name for a in bpy.data.actions),
            sorted(c.name for c in bpy.data.collections), bpy.context.scene.eifer.recording)


def test_import_keys_one_curve_per_channel_and_reimport_replaces(blender, recording_path):
    montage, emg_object = _ext("core.recording.montage"), _ext("blender.anim.emg_object")
    scene = bpy.context.scene
    scene.render.fps = 25
    assert bpy.ops.eifer.import_emg(filepath=str(recording_path), start_frame=11) == {"FINISHED"}
    obj = scene.eifer.recording
    assert obj.users_collection[0].name == "EIFER" and obj.type == "EMPTY"
    track = emg_object.read_emg_object(obj)
    assert track.names == montage.FRIDLUND22 and track.units == "uV" and track.fps == 25
    assert track.n_frames == pytest.approx(10.0 * 25, abs=2)
    assert 0 < np.median(track.values) < 50  # µV levels of a face at rest and moving
    assert emg_object.start_frame(obj) == 11
    first_action = obj.animation_data.action
    assert bpy.ops.eifer.import_emg(filepath=str(recording_path), start_frame=1) == {"FINISHED"}
    assert scene.eifer.recording == obj and len([o for o in bpy.data.objects if emg_object.kind(o)]) == 1
    assert obj.animation_data.action != first_action and emg_object.start_frame(obj) == 1


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"0       not really an EDF header", "EDF|header|read"),
])
def test_bad_files_report_and_change_nothing(blender, recording_path, tmp_path, content, message):
    assert bpy.ops.eifer.import_emg(filepath=str(recording_path)) == {"FINISHED"}
    before = _state()
    bad = tmp_path / "bad.edf"
    bad.write_bytes(content)
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.eifer.import_emg(filepath=str(bad))
    (tmp_path / "notes.txt").write_text("not a recording")
    with pytest.raises(RuntimeError, match="unsupported|format|CSV file"):
        bpy.ops.eifer.import_emg(filepath=str(tmp_path / "notes.txt"))
    assert _state() == before


@pytest.mark.parametrize("file_format", ["CSV", "EDF", "BDF"])
def test_exported_curves_read_back_as_the_imported_envelopes(blender, recording_path, tmp_path, file_format):
    emg_object, trackfiles = _ext("blender.anim.emg_object"), _ext("core.trackfiles")
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.001  # NTSC: EDF needs 1.001 s data records
    assert bpy.ops.eifer.import_emg(filepath=str(recording_path)) == {"FINISHED"}
    obj = scene.eifer.recording
    bpy.context.view_layer.objects.active = obj
    target = tmp_path / "curves"
    assert bpy.ops.eifer.export_envelopes(filepath=str(target), file_format=file_format) == {"FINISHED"}
    keyed = emg_object.read_emg_object(obj)
    back = trackfiles.read_track(target.with_suffix("." + file_format.lower()))
    assert (back.names, back.units, back.n_frames) == (keyed.names, "uV", keyed.n_frames)
    assert back.fps == pytest.approx(30 / 1.001, rel=1e-7)  # fps_base is a float32 in Blender
    levels = {"CSV": np.inf, "EDF": 65535, "BDF": 16777215}[file_format]
    quantum = np.ptp(keyed.values, axis=0) / levels
    assert np.all(np.abs(back.values - keyed.values) <= quantum + 1e-6 * np.abs(keyed.values) + 1e-9)


def test_export_works_right_after_import_and_names_follow_the_format(blender, recording_path, tmp_path):
    """Import leaves the head selected: Export EMG Curves still finds the recording, and the file
    browser's name follows the chosen format (``env.csv`` → ``env.edf``, not ``env.csv.edf``)."""
    assert bpy.ops.eifer.add_open_head() == {"FINISHED"}
    assert bpy.ops.eifer.import_emg(filepath=str(recording_path)) == {"FINISHED"}
    recording = bpy.context.scene.eifer.recording
    assert recording.animation_data.action.name == recording.name == f"EMG {recording_path.stem}"  # not "EMG EMG …"
    head = bpy.data.objects["OpenHead"]
    bpy.context.view_layer.objects.active = head
    assert bpy.ops.eifer.export_envelopes.poll()
    assert bpy.ops.eifer.export_envelopes(filepath=str(tmp_path / "env.csv"), file_format="EDF") == {"FINISHED"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["env.edf"]
    reporting = _ext("blender.ui.reporting")
    export = _ext("blender.jobs.export")
    chooser = type("Chooser", (), {"filepath": str(tmp_path / "env.csv"), "file_format": "EDF"})()
    assert reporting.match_format_suffix(chooser, export.EXPORT_SUFFIXES) and chooser.filepath.endswith("env.edf")
    chooser.file_format = "CSV"
    assert reporting.match_format_suffix(chooser, export.EXPORT_SUFFIXES) and chooser.filepath.endswith("env.csv")
    assert not reporting.match_format_suffix(chooser, export.EXPORT_SUFFIXES)
