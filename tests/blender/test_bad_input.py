"""Bad input on the command line: exit 3 with one line, nothing created, nothing changed, checked first."""
import re

import bpy
import pytest

from tests.helpers import extension_module


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    path = tmp_path_factory.mktemp("bad") / "rec.edf"
    assert extension_module("cli").main(["simulate", "--protocol", "emotions", "--duration", "6", "--rate",
                                         "2048", "--out", str(path)]) == 0
    return path


def _main(*argv) -> int:
    return extension_module("cli").main([str(a) for a in argv])


@pytest.mark.parametrize("extra, message", [
    (["--out", "{tmp}/scene.csv"], "--out .*scene.csv: the animated scene is written as .blend"),
    (["--fps", "0"], "--fps must be more than 0"),
    (["--smoothing", "-1"], "--smoothing must be at least 0"),
    (["--tolerance", "nan"], "--tolerance must be a finite number"),
    (["--render", "{tmp}/video.gif"], "a video is written as .mp4"),
    (["--plot", "{tmp}/plot.txt"], "the plot is written as .png"),
    (["--resolution", "0"], "--resolution must be more than 0"),
    (["--blend", "{tmp}/notes.blend"], "not a .blend file"),
    (["--truth", "{tmp}/missing_truth.npz"], "ground truth"),
])
def test_drive_refuses_bad_options_before_any_work(blender, recording, tmp_path, capsys, extra, message):
    (tmp_path / "notes.blend").write_text("not a blend file")
    argv = ["drive", "--emg", recording, "--out", tmp_path / "out.blend"] + [e.format(tmp=tmp_path) for e in extra]
    if "--out" in extra:
        argv = ["drive", "--emg", recording] + [e.format(tmp=tmp_path) for e in extra]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert _main(*argv) == 3
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and re.search(message, err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_a_late_failure_leaves_an_existing_scene_as_it_was(blender, recording, tmp_path, capsys):
    out = tmp_path / "o.blend"
    assert _main("drive", "--emg", recording, "--out", out) == 0
    saved = out.read_bytes()
    assert _main("drive", "--emg", recording, "--out", out, "--plot", tmp_path / "p.png", "--truth",
                 tmp_path / "bad_truth.npz") == 3
    assert out.read_bytes() == saved and not (tmp_path / "o.blend1").exists() and not (tmp_path / "p.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.blend"]  # no partial or backup files


def test_render_of_a_file_that_is_not_a_blend_exits_3(blender, tmp_path, capsys):
    fake = tmp_path / "scene.blend"
    fake.write_bytes(b"PK\x03\x04 a zip, not a scene")
    assert _main("render", "--blend", fake, "--out", tmp_path / "f.png") == 3
    assert "not a .blend file" in capsys.readouterr().err and not (tmp_path / "f.png").exists()


def test_ctrl_c_while_writing_leaves_no_output_file(blender, recording, tmp_path, capsys, monkeypatch):
    edf = extension_module("core.trackfiles.edf")
    original = edf.write_track_edf

    def interrupted(track, path):
        original(track, path)  # the whole file is on disk under its temporary name ...
        raise KeyboardInterrupt  # ... when the user presses Ctrl-C

    monkeypatch.setitem(extension_module("core.trackfiles").TRACK_FORMATS, ".edf", (interrupted, edf.read_track_edf))
    out = tmp_path / "env.edf"
    assert _main("process", "--emg", recording, "--fps", "30", "--out", out) == 130
    assert "interrupted" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_outputs_below_a_file_are_refused(blender, recording, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert _main("process", "--emg", recording, "--fps", "30", "--out", tmp_path / "file" / "env.csv") == 3
    assert "is a file, not a folder" in capsys.readouterr().err
    assert bpy.data.filepath == ""
