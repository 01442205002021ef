"""Face captures in reverse: Live Link Face CSV and MediaPipe blendshape exports read as ARKit tracks.

The files are written from a known track, in each app's layout; reading them back gives the same
per-frame values. Bad files are refused with a message that names the problem.
"""
import json

import numpy as np
import pytest

from eifer_blender.core.errors import InputError
from eifer_blender.core.expression.spaces import ARKIT52
from eifer_blender.core.trackfiles import captures, read_capture
from eifer_blender.core.tracks import ExpressionTrack

WRITERS = {"livelinkface": (captures.write_live_link_face_csv, "take.csv"),
           "mediapipe-csv": (captures.write_mediapipe_csv, "blendshapes.csv"),
           "mediapipe-json": (captures.write_mediapipe_json, "blendshapes.json")}


def known_track(n_frames=75, fps=30.0, seed=0) -> ExpressionTrack:
    rng = np.random.default_rng(seed)
    return ExpressionTrack(rng.random((n_frames, 52)), ARKIT52, fps, "arkit52", "1")


@pytest.mark.parametrize("kind", list(WRITERS))
def test_a_capture_written_from_a_track_reads_back_frame_by_frame(kind, tmp_path):
    track = known_track()
    writer, name = WRITERS[kind]
    path = writer(track, tmp_path / name)
    assert captures.capture_format(path) == kind
    back = read_capture(path, 30.0)
    assert back.space == "arkit52" and back.units == "1" and back.fps == 30.0 and back.start_s == 0.0
    assert back.meta["format"] == kind
    expected = [n for n in ARKIT52 if kind == "livelinkface" or n != "tongueOut"]  # MediaPipe has no tongueOut
    assert list(back.names) == expected and back.meta["missing"] == sorted(set(ARKIT52) - set(expected))
    assert back.n_frames == track.n_frames
    assert np.abs(back.values - track.select(expected).values).max() <= 1e-6


def test_live_link_face_columns_are_the_apps(tmp_path):
    path = captures.write_live_link_face_csv(known_track(5), tmp_path / "take.csv")
    header, first = path.read_text().splitlines()[:2]
    columns = header.split(",")
    assert columns[:4] == ["Timecode", "BlendShapeCount", "EyeBlinkLeft", "EyeLookDownLeft"]
    assert columns[-9:] == list(captures.LIVE_LINK_FACE_ROTATIONS) and len(columns) == 2 + 52 + 9
    assert first.startswith("00:00:00:00.000,61,")
    back = read_capture(path, 30.0)
    assert back.meta["timecode_fps"] == 30.0 and not back.meta["timecode_fps_given"]
    assert "is a guess" in back.meta["warnings"][0]  # 5 frames within one second: no frame number tells
    assert back.meta["ignored"] == []  # the rotations and the count are known columns, read and set aside


def test_mediapipe_categories_start_with_neutral_and_have_no_tongue():
    assert captures.MEDIAPIPE_NAMES[0] == "_neutral" and len(captures.MEDIAPIPE_NAMES) == 52
    assert "tongueOut" not in captures.MEDIAPIPE_NAMES


def test_timecodes_become_frames_at_the_scenes_fps(tmp_path):
    """A 60 fps capture read into a 30 fps scene: every other row; into 24 fps: linear interpolation."""
    fast = known_track(121, fps=60.0, seed=2)  # 2 s
    path = captures.write_live_link_face_csv(fast, tmp_path / "take.csv", timecode_fps=30.0)
    assert ":00.500," in path.read_text()  # the half frame of a 30 fps timecode
    at30 = read_capture(path, 30.0, timecode_fps=30.0)
    assert at30.n_frames == 61 and np.abs(at30.values - fast.values[::2]).max() <= 1e-6
    at24 = read_capture(path, 24.0, timecode_fps=30.0)
    assert at24.n_frames == 49
    times = np.arange(121) / 60.0
    expected = np.column_stack([np.interp(np.arange(49) / 24.0, times, fast.values[:, i]) for i in range(52)])
    assert np.abs(at24.values - expected).max() <= 1e-6


def test_a_timecode_from_the_middle_of_the_day_and_a_guessed_rate(tmp_path):
    track = known_track(150, fps=60.0, seed=3)
    path = captures.write_live_link_face_csv(track, tmp_path / "take.csv", start="16:23:59:58")
    back = read_capture(path, 60.0)
    assert back.meta["timecode_fps"] == 60.0 and back.meta["timecode_start"] == "16:23:59:58.000"
    assert back.meta["warnings"] == []  # seconds roll over: frame 59 is seen, so the rate is 60
    assert back.n_frames == 150 and np.abs(back.values - track.values).max() <= 1e-6


def test_mediapipe_json_with_faces_and_frames_without_a_face(tmp_path):
    track = known_track(10)
    frames = json.loads(captures.write_mediapipe_json(track, tmp_path / "a.json").read_text())
    per_face = [{"timestampMs": f["timestamp_ms"],
                 "faceBlendshapes": [{"categories": [{"category_name": c["categoryName"], "score": c["score"]}
                                                     for c in f["blendshapes"]]}]} for f in frames]
    per_face[4]["faceBlendshapes"] = []  # no face in this frame: bridged from its neighbours
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"frames": per_face}))
    back = read_capture(path, 30.0)
    assert back.n_frames == 10 and "without a face" in back.meta["warnings"][0]
    values = track.select(back.names).values
    assert np.abs(np.delete(back.values - values, 4, axis=0)).max() <= 1e-6
    assert np.allclose(back.values[4], (values[3] + values[5]) / 2)


def test_model_inputs_the_capture_lacks_are_zero():
    track = known_track(4).select(["jawOpen", "mouthSmileLeft"])
    filled, missing = track.with_names(["mouthSmileLeft", "tongueOut", "jawOpen"])
    assert missing == ["tongueOut"] and filled.names == ("mouthSmileLeft", "tongueOut", "jawOpen")
    assert np.array_equal(filled.values[:, 1], np.zeros(4))
    assert np.array_equal(filled.values[:, [0, 2]], track.values[:, [1, 0]])


# ---------------------------------------------------------------------------------------------
# Bad input: a clear message, naming the problem


def _live_link_lines(tmp_path, n=4):
    path = captures.write_live_link_face_csv(known_track(n), tmp_path / "good.csv")
    return path.read_text().splitlines()


def _bad(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("case, message", [
    ("empty", "empty"),
    ("blank lines", "empty"),
    ("header only", "no frames"),
    ("no timecode column", "no Timecode"),
    ("no known names", "none of its columns is an ARKit blendshape name"),
    ("timecode backwards", "goes backwards"),
    ("bad timecode", "is not HH:MM:SS:FF"),
    ("not a number", "'abc' is not a number"),
    ("empty cell", "an empty cell"),
    ("short row", "cells"),
    ("mediapipe without time", "no time column"),
    ("mediapipe no known names", "none of its columns is an ARKit blendshape name"),
    ("mediapipe backwards", "goes backwards"),
    ("json broken", "not valid JSON"),
    ("json no frames", "no frames"),
    ("json no scores", "no frame has blendshape scores"),
    ("json no time", "no time key"),
    ("json not a number", "is not a number"),
    ("wrong suffix", "not a face capture"),
    ("missing file", "file not found"),
])
def test_bad_captures_are_refused_with_a_clear_message(case, message, tmp_path):
    lines = _live_link_lines(tmp_path)
    header, rows = lines[0], lines[1:]
    cells = [row.split(",") for row in rows]

    def edited():  # the Live Link table with the case's cell changed
        return "\n".join([header, *(",".join(c) for c in cells)])

    mp = captures.write_mediapipe_csv(known_track(4), tmp_path / "mp.csv").read_text().splitlines()
    frames = json.loads(captures.write_mediapipe_json(known_track(3), tmp_path / "mp.json").read_text())
    if case == "empty":
        path = _bad(tmp_path, "x.csv", "")
    elif case == "blank lines":
        path = _bad(tmp_path, "x.csv", "\n \n")
    elif case == "header only":
        path = _bad(tmp_path, "x.csv", header + "\n")
    elif case == "no timecode column":
        path = _bad(tmp_path, "x.csv", "\n".join(["When" + header[len("Timecode"):], *rows]))
    elif case == "no known names":
        path = _bad(tmp_path, "x.csv", "Timecode,Alpha,Beta\n00:00:00:00.000,1,2\n00:00:00:01.000,1,2\n")
    elif case == "timecode backwards":
        cells[2][0] = "00:00:00:00.500"
        path = _bad(tmp_path, "x.csv", edited())
    elif case == "bad timecode":
        cells[1][0] = "yesterday"
        path = _bad(tmp_path, "x.csv", edited())
    elif case == "not a number":
        cells[2][5] = "abc"
        path = _bad(tmp_path, "x.csv", edited())
    elif case == "empty cell":
        cells[0][3] = ""
        path = _bad(tmp_path, "x.csv", edited())
    elif case == "short row":
        path = _bad(tmp_path, "x.csv", "\n".join([header, rows[0], ",".join(cells[1][:10])]))
    elif case == "mediapipe without time":
        path = _bad(tmp_path, "x.csv", "\n".join(line.split(",", 1)[1] for line in mp))
    elif case == "mediapipe no known names":
        path = _bad(tmp_path, "x.csv", "timestamp_ms,_neutral,smile\n0,0,1\n33,0,1\n")
    elif case == "mediapipe backwards":
        path = _bad(tmp_path, "x.csv", "\n".join([mp[0], mp[2], mp[1], *mp[3:]]))
    elif case == "json broken":
        path = _bad(tmp_path, "x.json", json.dumps(frames)[:-5])
    elif case == "json no frames":
        path = _bad(tmp_path, "x.json", "[]")
    elif case == "json no scores":
        path = _bad(tmp_path, "x.json", json.dumps([{**f, "blendshapes": []} for f in frames]))
    elif case == "json no time":
        path = _bad(tmp_path, "x.json", json.dumps([{"blendshapes": f["blendshapes"]} for f in frames]))
    elif case == "json not a number":
        frames[1]["blendshapes"][3]["score"] = "high"
        path = _bad(tmp_path, "x.json", json.dumps(frames))
    elif case == "wrong suffix":
        path = _bad(tmp_path, "x.txt", "\n".join(lines))
    else:
        path = tmp_path / "missing.csv"
    with pytest.raises(InputError, match=message) as caught:
        read_capture(path, 30.0)
    assert str(path) in str(caught.value)


def test_a_rate_that_is_not_positive_is_refused(tmp_path):
    path = captures.write_mediapipe_csv(known_track(3), tmp_path / "mp.csv")
    for fps in (0.0, -30.0, float("nan")):
        with pytest.raises(InputError, match="positive"):
            read_capture(path, fps)
    with pytest.raises(InputError, match="timecode rate"):
        read_capture(path, 30.0, timecode_fps=0.0)


def test_a_given_timecode_rate_below_the_files_frame_numbers_is_refused(tmp_path):
    path = captures.write_live_link_face_csv(known_track(40, fps=30.0), tmp_path / "take.csv")
    with pytest.raises(InputError, match="24 fps timecode"):
        read_capture(path, 30.0, timecode_fps=24.0)
