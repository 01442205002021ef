"""The headless contract: `python -m eifer_blender …` and Blender's `--command eifer …` share one CLI."""
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import EXTENSION_MODULE, REPO_ROOT


def _run_module(*argv, cwd=None):
    return subprocess.run([sys.executable, "-m", "eifer_blender", *argv], capture_output=True, text=True,
                          cwd=cwd or REPO_ROOT, timeout=600)


def test_blender_command_is_the_same_cli_with_its_exit_codes(blender, tmp_path):
    registration = importlib.import_module(EXTENSION_MODULE)  # the package registers the command
    assert registration._cli_handle is not None  # registered with bpy.utils.register_cli_command
    run = registration._run_cli
    assert run(["--help"]) == 0
    assert run(["no-such-command"]) == 2
    assert run(["drive", "--emg", str(tmp_path / "missing.edf"), "--out", str(tmp_path / "x.blend")]) == 3
    assert not (tmp_path / "x.blend").exists()
    out = tmp_path / "rec.edf"
    assert run(["simulate", "--protocol", "emotions", "--duration", "6", "--rate", "2048", "--out", str(out)]) == 0
    assert out.is_file()


def test_a_command_in_process_leaves_the_garbage_collector_as_it_found_it(blender, tmp_path):
    """The command line raises the collector's first threshold while it runs (start-up speed); a
    caller that runs it in process (a script, Blender's --command) gets its own settings back,
    after a failing command too; nothing is left frozen out of collection, and what the caller froze
    stays frozen."""
    import gc

    from eifer_blender.cli import main

    before = gc.get_threshold()
    out = tmp_path / "rec.edf"
    assert main(["simulate", "--protocol", "emotions", "--duration", "2", "--rate", "2048", "--out", str(out)]) == 0
    assert gc.get_threshold() == before and not gc.get_freeze_count()
    assert main(["drive", "--emg", str(tmp_path / "missing.edf"), "--out", str(tmp_path / "x.blend")]) == 3
    assert gc.get_threshold() == before and not gc.get_freeze_count()
    gc.freeze()  # a caller's own frozen objects stay frozen
    try:
        frozen = gc.get_freeze_count()
        assert main(["drive", "--emg", str(tmp_path / "missing.edf"), "--out", str(tmp_path / "x.blend")]) == 3
        assert gc.get_freeze_count() == frozen and gc.get_threshold() == before
    finally:
        gc.unfreeze()


def test_drive_then_infer_then_render_headless(tmp_path):
    rec, blend = tmp_path / "rec.edf", tmp_path / "driven.blend"
    assert _run_module("simulate", "--protocol", "emotions", "--subject", "9", "--duration", "8", "--rate", "2048",
                       "--out", str(rec)).returncode == 0
    drive = _run_module("drive", "--emg", str(rec), "--out", str(blend), "--fps", "24", "--plot",
                        str(tmp_path / "plot.png"), "--tolerance", "0.002", "--rest-floor", "0.05")
    assert drive.returncode == 0, drive.stderr
    bad_floor = _run_module("drive", "--emg", str(rec), "--out", str(tmp_path / "no.blend"), "--rest-floor", "1.5")
    assert bad_floor.returncode == 3 and "rest floor" in bad_floor.stderr
    assert not (tmp_path / "no.blend").exists()
    assert blend.is_file() and (tmp_path / "plot.png").stat().st_size > 10_000
    infer = _run_module("infer-muscles", "--blend", str(blend), "--object", "OpenHead", "--out", str(tmp_path / "m.csv"))
    assert infer.returncode == 0, infer.stderr
    header = [line for line in (tmp_path / "m.csv").read_text().splitlines() if not line.startswith("#")][0]
    assert "Zyg_L" in header
    still = _run_module("render", "--blend", str(blend), "--out", str(tmp_path / "f.png"), "--frame", "60",
                        "--resolution", "64")
    assert still.returncode == 0, still.stderr
    assert (tmp_path / "f.png").stat().st_size > 1000
    bad = _run_module("render", "--blend", str(blend), "--out", str(tmp_path / "f.gif"))
    assert bad.returncode == 3 and "mp4" in bad.stderr


def test_the_installed_eifer_command_runs_from_any_folder(tmp_path):
    """``make`` installs the project into the virtual environment (editable), so the ``eifer`` script
    and ``python -m eifer_blender`` work outside the repository."""
    script = Path(sys.executable).parent / "eifer"
    assert script.is_file(), f"{script} is missing: the project is not installed (make venv installs it)"
    for command in ([str(script), "--help"], [sys.executable, "-m", "eifer_blender", "--help"]):
        done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120,
                              env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
        assert done.returncode == 0 and "usage: eifer" in done.stdout, done.stderr


def test_batch_render_script_tells_done_skipped_refused(tmp_path):
    """examples/scripts/batch_render.sh: an up-to-date video is skipped, a bad or missing recording
    refused (exit 3), nothing written for them."""
    out = tmp_path / "out"
    out.mkdir()
    fresh, bad = tmp_path / "fresh.edf", tmp_path / "bad.edf"
    for path in (fresh, bad):
        path.write_bytes(b"0       not an EDF")
    (out / "fresh.mp4").write_bytes(b"rendered before")
    os.utime(fresh, (1_000_000_000, 1_000_000_000))  # the video is newer than its recording
    # only the environment's eifer and the shell tools: no Blender a machine may have on its PATH
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("basename", "mkdir"):
        (tools / tool).symlink_to(shutil.which(tool))
    (tools / "eifer").symlink_to(Path(sys.executable).parent / "eifer")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = str(tools)
    missing = tmp_path / "missing.edf"
    done = subprocess.run([shutil.which("bash"), str(REPO_ROOT / "examples" / "scripts" / "batch_render.sh"),
                           str(out), str(fresh), str(bad), str(missing)],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 3, done.stdout + done.stderr
    for line in (f"skipped {fresh}", f"refused {bad}", f"refused {missing} (no such file)"):
        assert line in done.stdout, done.stdout + done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["fresh.mp4"]
