"""The README is the first thing a user reads: its Python examples run, its command table lists every
subcommand, its links lead to files that exist, and the bpy-free functions it names are there."""
import importlib
import re
from pathlib import Path

import bpy

from eifer_blender.cli import COMMANDS

README = Path(__file__).resolve().parents[2] / "README.md"
TEXT = README.read_text(encoding="utf-8")


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
