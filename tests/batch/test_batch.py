"""``eifer batch`` and ``core.batch.run``: many recordings on a local pool, on Dask, and (configured only) SLURM.

The recordings are tiny (4 s at 2048 Hz) and made by ``eifer simulate``; the jobs run as the real
subprocesses a worker runs. Most tests use process/drive/infer/compare; one renders 5 frames at 64 px.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eifer_blender.cli import main
from eifer_blender.core import batch
from eifer_blender.core.batch.jobs import resolve_jobs
from eifer_blender.core.errors import InputError
from tests.conftest import REPO_ROOT

N_GOOD = 5
CORRUPT = "sub-06/emg/sub-06_task-faces_emg"
JOBS = "process,drive,infer,compare"


def _simulate(path: Path, subject: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert main(["simulate", "--protocol", "emotions", "--duration", "4", "--rate", "2048", "--subject",
                 str(subject), "--out", str(path)]) == 0


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A BIDS-EMG data set: 5 simulated recordings (one in a session folder) and one corrupt file."""
    root = tmp_path_factory.mktemp("bids")
    (root / "dataset_description.json").write_text(json.dumps({"Name": "batch test", "BIDSVersion": "1.9.0"}))
    for subject in range(1, N_GOOD + 1):
        session = "ses-1/" if subject == 2 else ""
        label = f"sub-{subject:02d}_ses-1" if session else f"sub-{subject:02d}"
        _simulate(root / f"sub-{subject:02d}/{session}emg/{label}_task-faces_emg.edf", subject)
    corrupt = root / f"{CORRUPT}.edf"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"0       not an EDF header, cut short")
    return root


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def dask_run(dataset, dask_cluster, tmp_path_factory):
    out = tmp_path_factory.mktemp("dask_out")
    lines = []
    results = batch.run(dataset, out, jobs=JOBS, engine="dask", scheduler=dask_cluster.scheduler_address,
                        progress=lines.append)
    return out, results, lines


def _data_lines(path: Path) -> list[str]:
    """A CSV without its ``#`` header (which names the run's own paths)."""
    return [line for line in Path(path).read_text().splitlines() if not line.startswith("#")]


_READ_CURVES = """
import json, sys
import bpy
from eifer_blender.blender.anim.keyframes import assigned_channelbag, read_keys
out = {}
for path in sys.argv[1:]:
    bpy.ops.wm.open_mainfile(filepath=path)
    face = bpy.data.objects["OpenHead"]
    bag = assigned_channelbag(face.data.shape_keys)
    out[path] = {c.data_path: [v.tolist() for v in read_keys(c)] for c in bag.fcurves}
print("CURVES" + json.dumps(out))
"""


def _keyed_curves(*blends: Path) -> list[dict]:
    """Each driven .blend's shape-key F-curves: data path -> [frames, values]."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", _READ_CURVES, *map(str, blends)], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    curves = json.loads(done.stdout.split("CURVES", 1)[1])
    return [curves[str(b)] for b in blends]


def test_dask_cluster_runs_the_good_recordings_and_reports_the_corrupt_one(dask_run):
    out, results, lines = dask_run
    status = {r.name: r.status for r in results}
    assert len(results) == N_GOOD + 1
    assert sorted(status.values()) == ["done"] * N_GOOD + ["failed"], [r.error for r in results]
    assert status[CORRUPT] == "failed"
    bad = next(r for r in results if r.name == CORRUPT)
    assert bad.error.startswith("process: ") and "EDF" in bad.error and bad.attempts == 2  # retried once
    for r in results:
        if r.status == "done":
            folder = out / r.name
            assert {p.name for p in folder.iterdir()} >= {"envelopes.csv", "driven.blend", "muscles.csv",
                                                          "metrics.csv", "batch.json", "logs"}
            assert r.metrics["frames_keyed"] == 120 and -1 <= r.metrics["median_spearman"] <= 1
            assert set(r.timings_s) == {"process", "drive", "infer", "compare"}
    # the tree mirrors the input, session folders included
    assert (out / "sub-02/ses-1/emg/sub-02_ses-1_task-faces_emg/driven.blend").is_file()
    assert len([line for line in lines if line.startswith("[")]) == N_GOOD + 1  # one line per item
    summary = _data_lines(out / "summary.csv")
    assert summary[0].split(",")[:4] == ["item", "status", "error", "attempts"]
    assert len(summary) == N_GOOD + 2 and "failed" in (out / "summary.html").read_text()


def test_a_rerun_skips_the_finished_items(dask_run, dataset, dask_cluster):
    out, first, _ = dask_run
    again = batch.run(dataset, out, jobs=JOBS, engine="dask", scheduler=dask_cluster.scheduler_address,
                      progress=None, retries=0)
    status = {r.name: r.status for r in again}
    assert sorted(status.values()) == ["failed"] + ["skipped"] * N_GOOD and status[CORRUPT] == "failed"
    metrics = {r.name: r.metrics for r in first}
    for r in again:  # a skipped item still reports the metrics of the run that made its outputs
        if r.status == "skipped":
            assert r.metrics == metrics[r.name] and r.timings_s == {}


def test_the_local_engine_gives_the_same_outputs(dask_run, dataset, tmp_path):
    out, results, _ = dask_run
    names = ["sub-01/emg/sub-01_task-faces_emg", "sub-02/ses-1/emg/sub-02_ses-1_task-faces_emg"]
    local = batch.run([dataset / f"{n}.edf" for n in names], tmp_path, jobs=JOBS, engine="local", workers=2,
                      progress=None)
    assert [r.status for r in local] == ["done", "done"], [r.error for r in local]
    by_recording = {Path(r.recording).name: Path(r.out_dir) for r in local}
    pairs = [(out / n, by_recording[Path(n).name + ".edf"]) for n in names]
    for dask_dir, local_dir in pairs:
        for name in ("envelopes.csv", "muscles.csv", "metrics.csv"):
            assert _data_lines(dask_dir / name) == _data_lines(local_dir / name), name
    curves = _keyed_curves(*(d / "driven.blend" for pair in pairs for d in pair))
    assert len(curves[0]) >= 30 and curves[0] == curves[1] and curves[2] == curves[3]


def test_a_changed_recording_or_setting_runs_again(dataset, tmp_path):
    import shutil

    recording = tmp_path / "in" / "sub-03_task-faces_emg.edf"
    recording.parent.mkdir()
    shutil.copy(dataset / "sub-03/emg/sub-03_task-faces_emg.edf", recording)
    out = tmp_path / "out"
    first = batch.run(recording, out, jobs="process", workers=1, progress=None)
    assert first[0].status == "done" and first[0].name == "sub-03_task-faces_emg", first[0].error
    assert batch.run(recording, out, jobs="process", workers=1, progress=None)[0].status == "skipped"
    assert batch.run(recording, out, jobs="process", workers=1, fps=25, progress=None)[0].status == "done"
    stamp = (out / first[0].name / "envelopes.csv").stat().st_mtime + 10
    os.utime(recording, (stamp, stamp))  # the recording is newer than its envelopes
    assert batch.run(recording, out, jobs="process", workers=1, fps=25, progress=None)[0].status == "done"


def test_render_one_item_small(dataset, tmp_path, capsys):
    recording = dataset / "sub-04/emg/sub-04_task-faces_emg.edf"
    code = main(["batch", str(recording), "--out", str(tmp_path), "--jobs", "render", "--frames", "1:5",
                 "--resolution", "64", "--workers", "1"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    folder = tmp_path / "sub-04_task-faces_emg"
    assert (folder / "video.mp4").stat().st_size > 0 and (folder / "driven.blend").is_file()
    assert "[1/1] " + "#" * 20 + " done" in printed and "render" in printed
    row = _data_lines(tmp_path / "summary.csv")
    assert row[0].split(",")[4:6] == ["drive_s", "render_s"] and row[1].split(",")[7] == "5"  # frames keyed


def test_an_unreachable_scheduler_is_an_input_error(dataset, tmp_path, capsys):
    code = main(["batch", str(dataset), "--out", str(tmp_path / "out"), "--engine", "dask",
                 "--scheduler", "tcp://127.0.0.1:1", "--connect-timeout", "2"])
    err = capsys.readouterr().err.strip()
    assert code == 3 and len(err.splitlines()) == 1
    assert "tcp://127.0.0.1:1" in err and "Dask scheduler" in err
    assert not (tmp_path / "out").exists()


def test_a_dataset_without_recordings_is_an_input_error(tmp_path, capsys):
    (tmp_path / "bids/sub-01/emg").mkdir(parents=True)
    (tmp_path / "bids/sub-01/emg/notes.txt").write_text("no data")
    assert main(["batch", str(tmp_path / "bids"), "--out", str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err
    assert "no recordings" in err and "_emg.edf" in err


def test_an_output_folder_inside_the_input_is_refused(dataset, capsys):
    assert main(["batch", str(dataset), "--out", str(dataset / "derivatives" / "eifer")]) == 3
    assert "inside the input" in capsys.readouterr().err
    assert not (dataset / "derivatives").exists()


@pytest.mark.parametrize("argv, message", [
    (["--jobs", "drive,paint"], "paint is not a job"),
    (["--engine", "dask"], "--scheduler"),
])
def test_bad_options_are_input_errors(dataset, tmp_path, capsys, argv, message):
    assert main(["batch", str(dataset), "--out", str(tmp_path), *argv]) == 3
    assert message in capsys.readouterr().err


def test_jobs_bring_the_jobs_they_read():
    assert resolve_jobs("compare") == ("process", "drive", "infer", "compare")
    assert resolve_jobs(["render"]) == ("drive", "render")
    with pytest.raises(InputError):
        resolve_jobs("")


def test_folders_and_globs_mirror_their_relative_paths(dataset):
    names = [r.name for r in batch.find_recordings(dataset)]
    assert len(names) == N_GOOD + 1 and "sub-02/ses-1/emg/sub-02_ses-1_task-faces_emg" in names
    globbed = batch.find_recordings(str(dataset / "sub-0[12]" / "**" / "*_emg.edf"))
    assert [r.name for r in globbed] == ["sub-01/emg/sub-01_task-faces_emg",
                                         "sub-02/ses-1/emg/sub-02_ses-1_task-faces_emg"]
    with pytest.raises(InputError, match="inside the input"):  # a glob's fixed folder is searched
        batch.find_recordings(str(dataset / "sub-01" / "**" / "*.edf"), out=dataset / "sub-01" / "out")
    named = dataset / "sub-01/emg/sub-01_task-faces_emg.edf"  # a named file's folder may hold the outputs
    assert [r.name for r in batch.find_recordings(named, out=named.parent / "out")] == ["sub-01_task-faces_emg"]


def test_the_slurm_cluster_is_configured_from_the_options(dataset, tmp_path, monkeypatch):
    pytest.importorskip("dask_jobqueue")
    cluster = batch.slurm_cluster(queue="short", account="facelab", cores=8, memory="16GB", walltime="02:00:00",
                                  job_extra=["--gres=gpu:1"], scheduler_options={"dashboard_address": ":0"})
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p short", "#SBATCH -A facelab", "#SBATCH --cpus-per-task=8", "#SBATCH -t 02:00:00",
                 "#SBATCH --gres=gpu:1", "--nthreads 8", sys.executable):
        assert line in script, script
    # the command's options reach the cluster (captured, nothing submitted)
    seen = {}

    class Stop(Exception):
        pass

    def fake_cluster(**kwargs):
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(batch, "slurm_cluster", fake_cluster)
    with pytest.raises(Stop):
        batch.run(dataset, tmp_path / "out", engine="slurm",
                  slurm={"queue": "long", "cores": 2, "memory": "4GB", "walltime": "00:10:00"}, progress=None)
    assert seen == {"queue": "long", "cores": 2, "memory": "4GB", "walltime": "00:10:00"}
