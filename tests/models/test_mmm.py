"""The MMM reader on a small folder written here in exactly the public release's layout."""
import csv
import gzip
from pathlib import Path

import numpy as np
import pytest

from eifer_blender.core.errors import InputError
from eifer_blender.core.expression.spaces import ARKIT52
from eifer_blender.core.recording.montage import FRIDLUND22
from models.mmm import canonical_emg_name, read_mmm, read_mmm_emg, read_mmm_params

# the release's EMG columns: alphabetical, "_l" before "_r", partly German
MMM_MUSCLES = {
    "Corrugator Supercilii": "Corr", "Depressor Ang. Oris": "DAO",
    "Depressor Supercilii Procerus": "DepSup", "Lateraler Frontalis": "latFront",
    "Levator Labii Superioris": "LLSup", "Masseter": "Mass", "Medialer Frontalis": "medFront",
    "Mentalis": "Ment", "Orbicularis Oculi": "OrbOc", "Orbicularis Oris": "OrbOr", "Zygomaticus": "Zyg",
}
EMG_COLUMNS = [f"{m}_{s}" for m in sorted(MMM_MUSCLES) for s in ("l", "r")]
SMIRK_GROUPS = (("idt", 300), ("exp", 50), ("eyelid", 2), ("jaw", 3), ("pose", 3), ("cam", 3))
INDEX_COLUMNS = ["source", "index", "pid", "rec", "mode", "task", "type", "sync_grade", "use",
                 "video", "video_no-cut", "emg", "video_noelec"]


def _write_csv(path: Path, header, rows, gz=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if gz else open
    with opener(path, "wt", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def write_mmm_folder(root: Path, clips=(("99_2S", "emotion", 0, "happy", 40), ("99_2S", "schaede", 1, "Forehead", 55)),
                     smirk_header="named", seed=0):
    """An MMM-layout folder: index, EMG CSVs, SMIRK and MediaPipe parameter files; returns truth."""
    rng = np.random.default_rng(seed)
    truth, index_rows = {}, []
    for session, mode, seq, task, n in clips:
        pid, rec = session.split("_")
        clip_id = f"{session}_{mode}_{seq:02d}_{task}"
        emg = rng.random((n, 22)) * 50
        emg[0, 3] = -0.4  # Fourier-resample ringing at the clip edge
        _write_csv(root / "emg" / session / f"{clip_id}.csv", [""] + EMG_COLUMNS,
                   [[i] + list(row) for i, row in enumerate(emg)])
        smirk = rng.standard_normal((n, 361))
        header = ([f"{g}_{i}" for g, k in SMIRK_GROUPS for i in range(k)] if smirk_header == "named"
                  else [str(i) for i in range(361)])
        _write_csv(root / "video_noelec_params" / "SMIRK" / session / f"{clip_id}_params.csv.gz",
                   header, smirk.tolist(), gz=True)
        order = rng.permutation(52)
        mediapipe = rng.random((n, 52))
        _write_csv(root / "video_noelec_params" / "MediaPipe" / session / f"{clip_id}_params.csv.gz",
                   [ARKIT52[i] for i in order], mediapipe[:, order].tolist(), gz=True)
        truth[clip_id] = {"emg": emg, "smirk": smirk, "mediapipe": mediapipe}
        index_rows.append([f"{session}_{mode}", clip_id, pid, rec, mode, task, "sensor", 0, "yes",
                           f"video/{session}/{clip_id}.mp4", f"video_no-cut/{session}/{clip_id}.mp4",
                           f"emg/{session}/{clip_id}.csv", f"video_noelec/{session}/{clip_id}.mp4"])
    # an electrode-free session: video only, no sEMG; the reader must skip it
    index_rows.append(["099_2N_emotion", "099_2N_emotion_00_sad", "099", "2N", "emotion", "sad", "normal",
                       -1, "no", "video/099_2N/x.mp4", "video_no-cut/099_2N/x.mp4", "", ""])
    _write_csv(root / "MMM.csv", INDEX_COLUMNS, index_rows)
    return truth


def test_emg_columns_map_to_canonical_names():
    assert canonical_emg_name("Zygomaticus_l") == "Zyg_L"
    assert canonical_emg_name("Depressor Ang. Oris_r") == "DAO_R"
    assert canonical_emg_name("Medialer Frontalis_l") == "medFront_L"
    assert canonical_emg_name("Lateraler Frontalis_r") == "latFront_R"
    assert canonical_emg_name("Zyg li") == "Zyg_L"
    assert canonical_emg_name("") is None and canonical_emg_name("Trigger") is None
    mapped = {canonical_emg_name(c) for c in EMG_COLUMNS}
    assert mapped == set(FRIDLUND22)


def test_emg_file_to_muscle_track(tmp_path):
    truth = write_mmm_folder(tmp_path)
    clip_id = next(iter(truth))
    track = read_mmm_emg(tmp_path / "emg" / "99_2S" / f"{clip_id}.csv")
    assert track.names == FRIDLUND22 and track.fps == 30.0 and track.units == "uV"
    emg = truth[clip_id]["emg"]
    for col, name in enumerate(EMG_COLUMNS):
        muscle, side = name.rsplit("_", 1)
        canonical = f"{MMM_MUSCLES[muscle]}_{side.upper()}"
        np.testing.assert_allclose(track.column(canonical), np.maximum(emg[:, col], 0.0))
    assert track.values.min() >= 0.0  # edge ringing clamped


@pytest.mark.parametrize("header", ["named", "positional"])
def test_smirk_params_to_flame_track(tmp_path, header):
    truth = write_mmm_folder(tmp_path, smirk_header=header)
    clip_id = next(iter(truth))
    path = tmp_path / "video_noelec_params" / "SMIRK" / "99_2S" / f"{clip_id}_params.csv.gz"
    smirk = truth[clip_id]["smirk"]
    full = read_mmm_params(path, "SMIRK")
    assert full.space == "flame" and len(full.names) == 55
    np.testing.assert_allclose(full.values[:, :50], smirk[:, 300:350])
    np.testing.assert_allclose(full.select(["eyelid_l", "eyelid_r"]).values, smirk[:, 350:352])
    np.testing.assert_allclose(full.select(["jaw_x", "jaw_y", "jaw_z"]).values, smirk[:, 352:355])
    exp_only = read_mmm_params(path, "SMIRK", include_jaw=False, include_eyelids=False)
    assert exp_only.names == full.names[:50]


def test_mediapipe_params_to_arkit_track(tmp_path):
    truth = write_mmm_folder(tmp_path)
    clip_id = next(iter(truth))
    path = tmp_path / "video_noelec_params" / "MediaPipe" / "99_2S" / f"{clip_id}_params.csv.gz"
    track = read_mmm_params(path, "MediaPipe")
    assert track.names == ARKIT52 and track.space == "arkit52"
    np.testing.assert_allclose(track.values, truth[clip_id]["mediapipe"])


def test_read_mmm_pairs_clips_from_the_index(tmp_path):
    truth = write_mmm_folder(tmp_path)
    clips = read_mmm(tmp_path, "SMIRK")
    assert [c.key for c in clips] == list(truth)  # the sEMG-free row is skipped
    for clip in clips:
        assert clip.subject == "99" and clip.protocol == "99_2S"
        assert clip.emg.n_frames == clip.expression.n_frames == len(truth[clip.key]["emg"])
    arkit = read_mmm(tmp_path, "MediaPipe")
    assert arkit[0].expression.space == "arkit52"


def test_broken_folders_are_reported_with_the_file(tmp_path):
    with pytest.raises(InputError, match="no MMM.csv"):
        read_mmm(tmp_path)
    truth = write_mmm_folder(tmp_path)
    with pytest.raises(InputError, match="DECA parameters for clip"):
        read_mmm(tmp_path, "DECA")
    clip_id = next(iter(truth))
    emg_path = tmp_path / "emg" / "99_2S" / f"{clip_id}.csv"
    _write_csv(emg_path, [""] + EMG_COLUMNS[:-1], [[0] + [1.0] * 21])
    with pytest.raises(InputError, match=rf"{clip_id}.csv: EMG columns for Zyg_R not found"):
        read_mmm_emg(emg_path)
    smirk_path = tmp_path / "video_noelec_params" / "SMIRK" / "99_2S" / f"{clip_id}_params.csv.gz"
    _write_csv(smirk_path, [str(i) for i in range(100)], [[0.0] * 100], gz=True)
    with pytest.raises(InputError, match="361 columns, this one has 100"):
        read_mmm_params(smirk_path, "SMIRK")


MMM_CONFIG = """
name = "mmm_{space}"
direction = "{direction}"

[data]
source = "mmm"
root = "{root}"
method = "{method}"
seed = 1

[model]
window = 5
alignment = "centred"
hidden = 16
depth = 1

[train]
epochs = 2
batch_size = 64
device = "cpu"

[output]
dir = "{out}"
"""


@pytest.mark.parametrize("method,direction", [("SMIRK", "emg2exp"), ("MediaPipe", "emg2exp"), ("SMIRK", "exp2emg")])
def test_train_from_an_mmm_folder_and_run_in_onnx_runtime(tmp_path, method, direction):
    from eifer_blender.core.network import load_model
    from eifer_blender.core.tracks import MuscleTrack
    from models.train import load_config, train

    clips = tuple(("99_2S", "emotion", i, t, 45 + 5 * i) for i, t in enumerate(("happy", "sad", "angry", "fearful")))
    write_mmm_folder(tmp_path / "mmm", clips)
    space = "flame" if method == "SMIRK" else "arkit52"
    config_path = tmp_path / "mmm.toml"
    config_path.write_text(MMM_CONFIG.format(space=space, direction=direction, root=tmp_path / "mmm",
                                             method=method, out=tmp_path / "out"))
    result = train(load_config(config_path), progress=False, log=lambda *a: None)
    m = result.metadata
    assert result.onnx_max_abs_diff <= 1e-5
    assert "split by clip" in m.training_data and "1 participant" in m.training_data
    assert m.processing["rms_window_s"] == 0.5  # the release's chain = processing's defaults
    model = load_model(result.onnx_path, "cpu")
    if direction == "emg2exp":
        assert m.output_space == space and m.head == ("linear" if space == "flame" else "sigmoid")
        assert m.input_normalisation["method"] == "percentile" and m.input_units == "normalised"
        # a raw µV session is normalised by the runtime itself
        raw = read_mmm_emg(next((tmp_path / "mmm" / "emg" / "99_2S").glob("*.csv")))
        out = model.run(raw)
        assert out.space == space and out.n_frames == raw.n_frames and np.isfinite(out.values).all()
    else:
        assert m.input_space == "flame" and m.output_names == FRIDLUND22 and m.head == "softplus"
        face = read_mmm_params(next((tmp_path / "mmm" / "video_noelec_params" / "SMIRK" / "99_2S").glob("*")))
        out = model.run(face)
        assert isinstance(out, MuscleTrack) and (out.values >= 0).all()


@pytest.mark.parametrize("config", ["mmm_flame", "mmm_arkit"])
def test_the_example_mmm_configs_train_and_evaluate(tmp_path, config, capsys):
    from models import evaluate as evaluate_cli
    from models import train as train_cli

    clips = tuple(("99_2S", "schaede", i, t, 40) for i, t in enumerate(("Forehead", "Snarl", "Cheeks", "Lip-Pucker")))
    write_mmm_folder(tmp_path / "mmm", clips)
    config_path = train_cli.CONFIG_DIR / f"{config}.toml"
    common = ["--config", str(config_path), "--set", f"data.root={tmp_path / 'mmm'}",
              "--set", f"output.dir={tmp_path / 'out'}"]
    assert train_cli.main(common + ["--set", "train.epochs=1", "--quiet"]) == 0
    onnx_files = list((tmp_path / "out").glob("*.onnx"))
    assert len(onnx_files) == 1
    assert evaluate_cli.main(common) == 0
    printed = capsys.readouterr().out
    assert "ridge rho" in printed and "1 held-out groups" in printed
