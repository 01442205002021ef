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
    (["--truth", "{tmp}/missing_truth.npz"], "--truth .*: file not found"),
    (["--retarget", "{tmp}/missing.npz"], "--retarget .*: file not found"),
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


# ---- a corpus of bad files through every subcommand ------------------------------------------------

def _corpus(folder, recording):
    """Bad inputs as users meet them: empty, truncated, mislabelled, hostile, in the wrong place."""
    files = {
        "empty.edf": b"", "garbage.edf": b"0       not an EDF header at all", "text.bdf": b"hello",
        "short.csv": b"time,Zyg_L\n0,1\n", "cells.csv": b"time,Zyg_L\n0,1\n0.001,abc\n0.002,2\n",
        "notes.txt": b"\xff\xfe\x00 binary", "scene.blend": b"PK\x03\x04 a zip", "empty.blend": b"",
        "params.csv": (",".join(["0.1"] * 56) + "\n").encode() * 3,  # EMOCA layout: 56 columns
        "hostile.pkl": b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.",
        "huge.csv": b"time,Zyg_L (uV)\n" + b"".join(b"%g,%g\n" % (i / 2000, (-1) ** i * 1e200) for i in range(4000)),
        "flame.npz": b"PK\x05\x06" + b"\x00" * 18, "model.onnx": b"not a model",
    }
    for name, content in files.items():
        (folder / name).write_bytes(content)
    truncated = folder / "truncated.edf"
    data = recording.read_bytes()
    truncated.write_bytes(data[:300])  # the header cut inside the signal descriptions
    (folder / "a_file").write_text("x")
    return folder


def _cases(f, rec):
    out = str(f / "out")
    return [
        ["process", "--emg", f / "empty.edf", "--fps", "30", "--out", out + ".csv"],
        ["process", "--emg", f / "garbage.edf", "--fps", "30", "--out", out + ".csv"],
        ["process", "--emg", f / "text.bdf", "--fps", "30", "--out", out + ".csv"],
        ["process", "--emg", f / "truncated.edf", "--fps", "30", "--out", out + ".csv"],
        ["process", "--emg", f / "short.csv", "--fps", "30", "--out", out + ".csv", "--units", "uV",
         "--csv-kind", "raw"],
        ["process", "--emg", f / "cells.csv", "--fps", "30", "--out", out + ".csv", "--units", "uV"],
        ["process", "--emg", f / "notes.txt", "--fps", "30", "--out", out + ".csv"],
        ["process", "--emg", f / "huge.csv", "--fps", "30", "--out", out + ".csv"],
        ["process", "--emg", f / "missing.edf", "--fps", "30", "--out", out + ".csv"],
        ["process", "--emg", f, "--fps", "30", "--out", out + ".csv"],
        ["process", "--emg", rec, "--fps", "30", "--out", out + ".json"],
        ["process", "--emg", rec, "--fps", "-5", "--out", out + ".csv"],
        ["process", "--emg", rec, "--fps", "30", "--out", f / "a_file" / "x.csv"],
        ["process", "--emg", rec, "--fps", "30", "--out", out + ".csv", "--map", "Zyg_L=Nose_L"],
        ["process", "--emg", rec, "--fps", "30", "--out", out + ".csv", "--map-file", f / "missing.tsv"],
        ["process", "--emg", rec, "--fps", "30", "--out", out + ".csv", "--window", "0"],
        ["process", "--emg", rec, "--fps", "30", "--out", out + ".csv", "--start", "1e6"],
        ["drive", "--emg", f / "garbage.edf", "--out", out + ".blend"],
        ["drive", "--emg", f / "truncated.edf", "--out", out + ".blend"],
        ["drive", "--emg", rec, "--out", out + ".blend", "--blend", f / "scene.blend"],
        ["drive", "--emg", rec, "--out", out + ".blend", "--blend", f / "empty.blend"],
        ["drive", "--emg", rec, "--out", out + ".blend", "--model", f / "model.onnx"],
        ["drive", "--emg", rec, "--out", out + ".blend", "--model", f / "missing.onnx"],
        ["drive", "--emg", rec, "--out", out + ".blend", "--frames", "9:3"],
        ["drive", "--emg", rec, "--out", out + ".blend", "--frames", "abc"],
        ["drive", "--emg", rec, "--out", out + ".blend", "--rig", "metahuman"],
        ["drive", "--emg", rec, "--out", out + ".blend", "--retarget", f / "missing.npz"],
        ["drive", "--emg", rec, "--out", out + ".mp4"],
        ["infer-muscles", "--blend", f / "scene.blend", "--object", "Face", "--out", out + ".csv"],
        ["infer-muscles", "--blend", f / "missing.blend", "--object", "Face", "--out", out + ".csv"],
        ["infer-muscles", "--blend", f / "scene.blend", "--object", "Face", "--out", out + ".json"],
        ["infer-muscles", "--blend", f / "scene.blend", "--object", "Face", "--out", out + ".csv",
         "--edf", out + ".txt"],
        ["compare", "--recorded", f / "missing.csv", "--inferred", f / "missing.csv"],
        ["compare", "--recorded", f / "garbage.edf", "--inferred", f / "garbage.edf"],
        ["compare", "--recorded", f / "notes.txt", "--inferred", f / "notes.txt"],
        ["compare", "--recorded", f / "cells.csv", "--inferred", f / "cells.csv", "--csv", out + ".csv"],
        ["render", "--blend", f / "scene.blend", "--out", out + ".png"],
        ["render", "--blend", f / "missing.blend", "--out", out + ".png"],
        ["render", "--blend", f / "empty.blend", "--out", out + ".gif"],
        ["flame-import", f / "params.csv", "--out", out + ".blend", "--flame", f / "hostile.pkl"],
        ["flame-import", f / "params.csv", "--out", out + ".blend", "--flame", f / "flame.npz"],
        ["flame-import", f / "missing.csv", "--out", out + ".blend"],
        ["flame-import", f / "params.csv", "--out", out + ".csv"],
        ["simulate", "--duration", "-1", "--out", out + ".edf"],
        ["simulate", "--rate", "100", "--out", out + ".edf"],
        ["simulate", "--out", out + ".docx"],
        ["simulate", "--subject", "-3", "--out", out + ".edf"],
    ]


def test_every_subcommand_meets_a_corpus_of_bad_files_with_exit_3_and_one_line(blender, recording, tmp_path,
                                                                               capsys):
    folder = _corpus(tmp_path, recording)
    cases = _cases(folder, recording)
    assert len(cases) >= 40
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    problems = []
    for argv in cases:
        try:
            code = _main(*argv)
        except BaseException as exc:  # a traceback is a failure of this test, reported with the others
            code = f"raised {type(exc).__name__}: {exc}"
        err = capsys.readouterr().err.strip()
        after = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
        if code != 3 or len(err.splitlines()) != 1 or not err.startswith(f"eifer {argv[0]}: error:") or after != before:
            problems.append((argv[0], [str(a).replace(str(folder), "") for a in argv[1:]], code, err[-300:],
                             sorted(str(p) for p in set(after) ^ set(before))))
    assert not problems, "\n".join(map(str, problems))
