"""The README is the first thing a user reads: its Python examples run, its command table lists every
subcommand, its links lead to files that exist, and the bpy-free functions it names are there.
Every code block of README.md and docs/ is run here or listed with the reason it cannot be."""
import importlib
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import bpy
import pytest

from eifer_blender.cli import COMMANDS

README = Path(__file__).resolve().parents[2] / "README.md"
TEXT = README.read_text(encoding="utf-8")
DOCUMENTS = [README, *sorted((README.parent / "docs").glob("*.md"))]

# every block, by its document and first line: the test that runs it, or why none can
RUN_BY = {
    ("README.md", "import bpy"): "test_the_python_examples_run_as_written",
    ("docs/batch.md", "python -m eifer_blender batch data/bids --out results --jobs process,drive,infer,compare"):
        "test_the_batch_example_runs_on_a_small_bids_set",
    ("docs/batch.md", "from eifer_blender.core.batch import slurm_cluster"): "test_the_slurm_job_script_example_runs",
}
NOT_RUNNABLE = {
    ("README.md", "make demo"): "the two commands themselves: minutes of rendering and the whole suite (CI runs make test)",
    ("docs/batch.md", "python -m eifer_blender batch /shared/study/bids"): "needs a SLURM cluster",
    ("docs/batch.md", "from eifer_blender.core import batch"): "needs a SLURM cluster",
    ("docs/flame.md", "python -m eifer_blender flame-import clip.csv.gz"): "needs the user's FLAME model, which "
                                                                        "may not be shipped",
    ("docs/install.md", "python3.11 -m pip install --target"): "downloads about 2 GB from PyPI",
    ("docs/install.md", "make zips"): "downloads the wheels and takes minutes (make test runs it)",
    ("docs/install.md", "blender --command extension install-file"): "needs a Blender executable, not bpy (the "
                                                                     "smoke matrix installs the zip with "
                                                                     "package_install_files)",
}


def _blocks():
    """(document, first line, code) of every fenced code block."""
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        for match in re.finditer(r"^([ \t]*)```\w+\n(.*?)^\1```", text, flags=re.S | re.M):
            code = textwrap.dedent(match.group(2))  # a block inside a list item is indented
            yield str(document.relative_to(README.parent)), code.splitlines()[0], code


def _block(document: str, first_line: str) -> str:
    return next(code for doc, first, code in _blocks() if doc == document and first == first_line)


def _python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", TEXT, flags=re.S | re.M)


def test_the_python_examples_run_as_written(blender, tmp_path, monkeypatch, capsys):
    from eifer_blender.core.recording import write_recording
    from eifer_blender.core.simulator.session import simulate_session

    blocks = _python_blocks()
    assert blocks, "the README shows no Python example"
    session = simulate_session("emotions", subject=3, duration_s=6.0, rate_hz=2048.0, fps=30.0, seed=0)
    write_recording(session.recording, tmp_path / "rec.edf")  # the file name the examples use
    assert bpy.ops.eifer.add_open_head() == {"FINISHED"}
    bpy.context.scene.eifer.face = bpy.context.active_object
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, f"{README}:python", "exec"), {"__name__": "__readme__"})
    printed = capsys.readouterr().out.strip().splitlines()[-1].split()  # Blender prints "Info: ..." first
    first, last = int(printed[0]), int(printed[1])  # the driven frames: 6 s at the scene's fps
    assert first == 1 and last - first + 1 >= 5 * bpy.context.scene.render.fps
    assert "CPU" in printed[2]
    assert bpy.context.scene.eifer.face.data.shape_keys.animation_data.action is not None


def test_the_command_table_lists_every_subcommand():
    rows = re.findall(r"^\| `([a-z-]+)[ `]", TEXT, flags=re.M)
    assert set(COMMANDS) <= set(rows), f"missing from the README's command table: {set(COMMANDS) - set(rows)}"


def test_every_relative_link_leads_to_a_file():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", TEXT)
    local = [link for link in links if "://" not in link]
    assert local
    missing = [link for link in local if not (README.parent / link).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"


def test_the_named_core_functions_exist():
    paragraph = TEXT[TEXT.index("The bpy-free core works without Blender"):]
    paragraph = paragraph[:paragraph.index("\n\n")]
    names = re.findall(r"`((?:eifer_blender\.)?core\.[a-z_.]+?)(?:\(|`)", paragraph)
    assert len(names) >= 5
    for dotted in names:
        dotted = dotted if dotted.startswith("eifer_blender.") else f"eifer_blender.{dotted}"
        module, _, attribute = dotted.rpartition(".")
        try:
            assert hasattr(importlib.import_module(module), attribute), dotted
        except ModuleNotFoundError:  # a module named without a function: `core.x.y`
            importlib.import_module(dotted)


def test_every_code_block_is_run_or_says_why_not():
    listed = {**RUN_BY, **NOT_RUNNABLE}
    unlisted = [(doc, first) for doc, first, _ in _blocks()
                if not any(doc == d and first.startswith(f) for d, f in listed)]
    assert not unlisted, f"code blocks neither run by a test nor listed as not runnable: {unlisted}"
    stale = [key for key in listed if not any(d == key[0] and f.startswith(key[1]) for d, f, _ in _blocks())]
    assert not stale, f"listed blocks that are gone: {stale}"
    assert all(name in globals() for name in RUN_BY.values())


def test_the_batch_example_runs_on_a_small_bids_set(tmp_path):
    from eifer_blender.core.recording import write_recording
    from eifer_blender.core.simulator.session import simulate_session

    session = simulate_session("emotions", subject=5, duration_s=6.0, rate_hz=2048.0, fps=30.0, seed=1)
    folder = tmp_path / "data" / "bids" / "sub-01" / "emg"
    folder.mkdir(parents=True)
    write_recording(session.recording, folder / "sub-01_task-faces_emg.edf")
    command = _block("docs/batch.md", "python -m eifer_blender batch data/bids --out results --jobs "
                                      "process,drive,infer,compare")
    argv = shlex.split(command.splitlines()[0])
    done = subprocess.run([sys.executable, *argv[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = (tmp_path / "results" / "summary.csv").read_text()
    assert "sub-01" in summary and "done" in summary


def test_the_slurm_job_script_example_runs(capsys):
    pytest.importorskip("dask_jobqueue")
    exec(compile(_block("docs/batch.md", "from eifer_blender.core.batch import slurm_cluster"),
                 "docs/batch.md:python", "exec"), {"__name__": "__docs__"})
    script = capsys.readouterr().out
    assert "#SBATCH -p short" in script and "#SBATCH --gres=gpu:1" in script
