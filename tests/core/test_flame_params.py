"""Per-frame FLAME parameter layouts: MMM/SMIRK 361 columns, EMOCA/DECA 56, npz/npy."""
import gzip

import numpy as np
import pytest

from eifer_blender.core.errors import InputError
from eifer_blender.core.expression import flame_files
from eifer_blender.core.expression import flame_params as fp
from eifer_blender.core.expression.spaces import (
    FLAME_EXPRESSION_NAMES,
    FLAME_MMM_COLUMNS,
)
from eifer_blender.core.tracks import ExpressionTrack
from tests import flame_fixtures as ff


def _column_index_table(frames: int, columns: int) -> np.ndarray:
    """Cell value = column + frame / 1000: every group boundary is visible in the numbers."""
    return np.arange(columns)[None, :] + np.arange(frames)[:, None] / 1000.0


def _random_params(frames=12, seed=0, **overrides) -> fp.FlameParams:
    rng = np.random.default_rng(seed)
    groups = dict(shape=rng.normal(size=(frames, 300)), expression=rng.normal(size=(frames, 50)),
                  eyelid=rng.random((frames, 2)), jaw_pose=rng.normal(size=(frames, 3)) * 0.1,
                  global_pose=rng.normal(size=(frames, 3)) * 0.1, cam=rng.normal(size=(frames, 3)))
    groups.update(overrides)
    return fp.FlameParams(fps=30.0, **groups)


# ------------------------------------------------------------------------------- MMM / SMIRK


def test_mmm_layout_is_361_columns_and_matches_spaces():
    assert fp.LAYOUT_COLUMNS["mmm"] == FLAME_MMM_COLUMNS == 361
    assert len(fp.layout_column_names("mmm")) == 361


@pytest.mark.parametrize("name", ["clip.csv", "clip.csv.gz"])
def test_mmm_csv_written_elsewhere_splits_at_the_documented_boundaries(tmp_path, name):
    table = _column_index_table(5, 361)
    text = "\n".join(",".join(f"{v:.3f}" for v in row) for row in table) + "\n"
    path = tmp_path / name
    data = text.encode()
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    params = flame_files.read_flame_params(path)
    assert params.n_frames == 5 and params.meta["layout"] == "mmm"
    assert params.fps == 30.0 and params.meta["fps_assumed"]
    np.testing.assert_allclose(params.shape, table[:, 0:300])
    np.testing.assert_allclose(params.expression, table[:, 300:350])
    np.testing.assert_allclose(params.eyelid, table[:, 350:352])
    np.testing.assert_allclose(params.jaw_pose, table[:, 352:355])
    np.testing.assert_allclose(params.global_pose, table[:, 355:358])
    np.testing.assert_allclose(params.cam, table[:, 358:361])


def test_header_row_and_pandas_index_column_are_skipped(tmp_path):
    table = _column_index_table(4, 361)
    header = "," + ",".join(f"c{i}" for i in range(361))  # pandas to_csv: empty index header
    rows = [f"{i}," + ",".join(f"{v:.3f}" for v in row) for i, row in enumerate(table)]
    path = tmp_path / "smirk.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    params = flame_files.read_flame_params(path, fps=25)
    assert params.meta["dropped_index_column"] and params.meta["header"][1] == "c0"
    assert params.fps == 25.0 and not params.meta["fps_assumed"]
    np.testing.assert_allclose(params.shape, table[:, :300])
    np.testing.assert_allclose(params.cam, table[:, 358:])


@pytest.mark.parametrize("name, header", [("out.csv", False), ("out.csv.gz", True)])
def test_mmm_round_trip(tmp_path, name, header):
    params = _random_params()
    path = flame_files.write_flame_params(params, tmp_path / name, header=header)
    if name.endswith(".gz"):
        assert path.read_bytes()[:2] == b"\x1f\x8b"
    back = flame_files.read_flame_params(path)
    for group in ("shape", "expression", "eyelid", "jaw_pose", "global_pose", "cam"):
        np.testing.assert_allclose(getattr(back, group), getattr(params, group), rtol=1e-8,
                                   atol=1e-12)


def test_writer_fills_absent_groups_with_zeros_and_pads_expression(tmp_path):
    expression = np.arange(20, dtype=float).reshape(2, 10)
    params = fp.FlameParams(expression=expression, fps=60, jaw_pose=[[0.1, 0, 0], [0.2, 0, 0]])
    table = fp.params_to_table(params, "mmm")
    assert table.shape == (2, 361)
    np.testing.assert_array_equal(table[:, 300:310], expression)
    assert not table[:, 310:350].any() and not table[:, :300].any()
    np.testing.assert_array_equal(table[:, 352], [0.1, 0.2])


# ------------------------------------------------------------------------------- EMOCA / DECA


def test_emoca_table_is_expression_then_global_then_jaw(tmp_path):
    table = _column_index_table(3, 56)
    path = tmp_path / "emoca.csv"
    np.savetxt(path, table, delimiter=" ")
    params = flame_files.read_flame_params(path)
    assert params.meta["layout"] == "emoca" and params.shape is None and params.eyelid is None
    np.testing.assert_allclose(params.expression, table[:, :50])
    np.testing.assert_allclose(params.global_pose, table[:, 50:53])
    np.testing.assert_allclose(params.jaw_pose, table[:, 53:56])


def test_writing_emoca_refuses_to_drop_non_zero_groups_unless_asked(tmp_path):
    params = _random_params()
    with pytest.raises(InputError, match=r"'emoca' layout cannot hold .*shape.*eyelid.*cam"):
        flame_files.write_flame_params(params, tmp_path / "e.csv", layout="emoca")
    path = flame_files.write_flame_params(params, tmp_path / "e.csv", layout="emoca",
                                 drop_unsupported=True)
    back = flame_files.read_flame_params(path)
    assert back.meta["layout"] == "emoca"
    np.testing.assert_allclose(back.jaw_pose, params.jaw_pose, rtol=1e-8)
    np.testing.assert_allclose(back.expression, params.expression, rtol=1e-8)


def test_expression_beyond_50_does_not_fit_the_50_column_layouts():
    params = fp.FlameParams(expression=np.ones((2, 100)), fps=30)
    with pytest.raises(InputError, match=r"expression\[50:\]"):
        fp.params_to_table(params, "mmm")


# ------------------------------------------------------------------------------- npz / npy


def test_npz_with_deca_style_keys(tmp_path):
    rng = np.random.default_rng(1)
    exp, pose, shape = rng.normal(size=(8, 50)), rng.normal(size=(8, 6)), rng.normal(size=100)
    path = tmp_path / "deca.npz"
    np.savez(path, exp=exp, pose=pose, shape=shape, fps=np.array(24.0), tex=np.zeros((8, 50)))
    params = flame_files.read_flame_params(path)
    assert params.fps == 24.0 and not params.meta["fps_assumed"]
    assert params.meta["ignored_keys"] == ["tex"]
    np.testing.assert_array_equal(params.expression, exp)
    np.testing.assert_array_equal(params.global_pose, pose[:, :3])
    np.testing.assert_array_equal(params.jaw_pose, pose[:, 3:])
    assert params.shape.shape == (8, 100)  # one identity repeated for every frame
    np.testing.assert_array_equal(params.shape[5], shape)


def test_npz_full_pose_is_split_and_explicit_keys_win(tmp_path):
    full = np.arange(30, dtype=float).reshape(2, 15)
    jaw = np.full((2, 3), 9.0)
    path = tmp_path / "full.npz"
    np.savez(path, expression=np.zeros((2, 100)), full_pose=full, jaw_pose=jaw)
    params = flame_files.read_flame_params(path)
    np.testing.assert_array_equal(params.neck_pose, full[:, 3:6])
    np.testing.assert_array_equal(params.eye_pose, full[:, 9:15])
    np.testing.assert_array_equal(params.jaw_pose, jaw)
    np.testing.assert_array_equal(params.pose()[:, 6:9], jaw)
    np.testing.assert_array_equal(params.pose()[:, :3], full[:, :3])


def test_npz_round_trip_keeps_every_group_and_fps(tmp_path):
    params = _random_params(neck_pose=np.full((12, 3), 0.05), eye_pose=np.full((12, 6), 0.1),
                            expression=np.random.default_rng(2).normal(size=(12, 100)))
    back = flame_files.read_flame_params(flame_files.write_flame_params(params, tmp_path / "p.npz"))
    assert back.fps == params.fps
    for group, values in params.groups().items():
        np.testing.assert_array_equal(getattr(back, group), values)


def test_npy_table_and_npy_dict(tmp_path):
    table = _column_index_table(3, 361)
    np.save(tmp_path / "t.npy", table)
    np.testing.assert_array_equal(flame_files.read_flame_params(tmp_path / "t.npy").cam, table[:, 358:])
    np.save(tmp_path / "f.npy", np.asfortranarray(table))
    np.testing.assert_array_equal(flame_files.read_flame_params(tmp_path / "f.npy").shape, table[:, :300])
    codes = {"expression": np.ones((4, 50)), "jaw_pose": np.zeros((4, 3)), "fps": 50.0}
    np.save(tmp_path / "d.npy", codes, allow_pickle=True)  # how EMOCA/DECA users save dicts
    params = flame_files.read_flame_params(tmp_path / "d.npy")
    assert params.fps == 50.0 and params.n_frames == 4


def test_npy_whose_pickle_would_run_code_is_refused_without_running_it(tmp_path):
    target = tmp_path / "created_by_payload"
    payload = np.empty((), dtype=object)
    payload[()] = ff._OpensFile(target)
    path = tmp_path / "codes.npy"
    np.save(path, payload, allow_pickle=True)
    with pytest.raises(InputError, match=r"codes\.npy.*refused.*open.*parameter file"):
        flame_files.read_flame_params(path)
    assert not target.exists()


def test_frame_count_mismatch_names_the_key(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, expression=np.zeros((5, 50)), jaw_pose=np.zeros((4, 3)))
    with pytest.raises(InputError, match=r"bad\.npz.*'jaw_pose' has 4 frames.*5"):
        flame_files.read_flame_params(path)


def test_npz_without_expression(tmp_path):
    path = tmp_path / "none.npz"
    np.savez(path, jaw=np.zeros((5, 3)))
    with pytest.raises(InputError, match=r"none\.npz.*no expression coefficients.*found: jaw"):
        flame_files.read_flame_params(path)


# ------------------------------------------------------------------------------- bad input


def test_unknown_column_count(tmp_path):
    path = tmp_path / "wide.csv"
    np.savetxt(path, np.zeros((2, 100)), delimiter=",")
    with pytest.raises(InputError, match=r"wide\.csv.*100 columns.*361 \(mmm\).*56 \(emoca\)"):
        flame_files.read_flame_params(path)


def test_forced_layout_must_fit(tmp_path):
    path = tmp_path / "e.csv"
    np.savetxt(path, np.zeros((2, 56)), delimiter=",")
    with pytest.raises(InputError, match=r"56 columns, the 'mmm' layout has 361"):
        flame_files.read_flame_params(path, layout="mmm")


def test_nan_cell_is_reported_with_frame(tmp_path):
    table = np.zeros((6, 56))
    table[4, 51] = np.nan
    path = tmp_path / "nan.csv"
    np.savetxt(path, table, delimiter=",")
    with pytest.raises(InputError, match=r"nan\.csv.*'global_pose'.*NaN.*frame 4"):
        flame_files.read_flame_params(path)


def test_text_cell_is_reported(tmp_path):
    path = tmp_path / "text.csv"
    rows = ["0," * 55 + "0", "0," * 55 + "oops"]
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(InputError, match=r"text\.csv.*not a number"):
        flame_files.read_flame_params(path)


def test_truncated_gzip_is_reported(tmp_path):
    good = flame_files.write_flame_params(_random_params(frames=200), tmp_path / "a.csv.gz")
    cut = ff.truncate_file(good, tmp_path / "cut.csv.gz", 0.5)
    with pytest.raises(InputError, match=r"cut\.csv\.gz.*(truncated|damaged)"):
        flame_files.read_flame_params(cut)


@pytest.mark.parametrize("content, message", [(b"", "empty"), (b"\n\n", "no rows")])
def test_empty_files(tmp_path, content, message):
    path = tmp_path / "e.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        flame_files.read_flame_params(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        flame_files.read_flame_params(tmp_path / "nope.csv")


def test_wrong_widths_are_rejected():
    with pytest.raises(InputError, match=r"'jaw_pose' has 2 values per frame, expected 3"):
        fp.FlameParams(expression=np.zeros((2, 50)), fps=30, jaw_pose=np.zeros((2, 2)))
    with pytest.raises(InputError, match=r"'expression' has 101 values per frame"):
        fp.FlameParams(expression=np.zeros((2, 101)), fps=30)
    with pytest.raises(InputError, match="fps"):
        fp.FlameParams(expression=np.zeros((2, 50)), fps=0)


# ------------------------------------------------------------------------------- tracks


def test_expression_track_is_the_flame_space():
    params = _random_params(expression=np.random.default_rng(3).normal(size=(12, 100)))
    track = params.to_expression_track()
    assert isinstance(track, ExpressionTrack)
    assert track.names == FLAME_EXPRESSION_NAMES and track.space == "flame"
    assert track.fps == 30.0 and track.meta["dropped_expression"] == 50
    np.testing.assert_array_equal(track.column("exp001"), params.expression[:, 0])
    np.testing.assert_array_equal(track.column("exp050"), params.expression[:, 49])
    np.testing.assert_array_equal(track.column("jaw_y"), params.jaw_pose[:, 1])
    np.testing.assert_array_equal(track.column("eyelid_r"), params.eyelid[:, 1])


def test_track_back_to_params_and_to_mmm(tmp_path):
    params = _random_params()
    track = params.to_expression_track()
    back = fp.FlameParams.from_expression_track(track, base=params)
    np.testing.assert_array_equal(back.expression, params.expression)
    np.testing.assert_array_equal(back.jaw_pose, params.jaw_pose)
    np.testing.assert_array_equal(back.shape, params.shape)
    written = flame_files.read_flame_params(flame_files.write_flame_params(back, tmp_path / "anim.csv"))
    np.testing.assert_allclose(written.eyelid, params.eyelid, rtol=1e-8)


def test_partial_track_fills_missing_columns_with_zero():
    track = ExpressionTrack(np.ones((3, 2)), ("exp002", "jaw_x"), 30.0, "flame", "1")
    params = fp.FlameParams.from_expression_track(track)
    assert params.expression.shape == (3, 50)
    np.testing.assert_array_equal(params.expression[:, 1], 1.0)
    assert params.expression.sum() == 3.0 and params.jaw_pose[:, 0].sum() == 3.0
    with pytest.raises(InputError, match="'flame' space"):
        fp.FlameParams.from_expression_track(
            ExpressionTrack(np.ones((3, 1)), ("jawOpen",), 30.0, "arkit52", "1"))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
def test_spreadsheet_exports_with_byte_order_marks(tmp_path, encoding):
    table = _column_index_table(3, 56)
    text = "\n".join(";".join(f"{v:.3f}" for v in row) for row in table) + "\n"
    path = tmp_path / "excel.csv"
    path.write_bytes(text.encode(encoding))
    np.testing.assert_allclose(flame_files.read_flame_params(path).jaw_pose, table[:, 53:])


def test_npz_translation_round_trips(tmp_path):
    from eifer_blender.core.expression.flame_files import (
        read_flame_params,
        write_flame_params,
    )
    from eifer_blender.core.expression.flame_params import FlameParams

    params = FlameParams(expression=np.zeros((4, 50)), fps=30.0, translation_m=np.arange(12.0).reshape(4, 3))
    back = read_flame_params(write_flame_params(params, tmp_path / "t.npz") or tmp_path / "t.npz")
    np.testing.assert_array_equal(back.translation_m, params.translation_m)
