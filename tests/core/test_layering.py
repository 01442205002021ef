"""The folders are the stages of the data path: a module imports only its own stage or the stages above.

``core/`` stays bpy-free and never imports ``blender/`` or ``cli/``; ``blender/`` never imports
``cli/``; inside each part the stages come in data-path order; and no import cycle exists, lazy
(function-level) imports included.
"""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "eifer_blender"
CORE = PACKAGE / "core"
BLENDER_MODULES = ("bpy", "mathutils", "bmesh", "addon_utils", "bpy_extras")

# (part, stage) in the order of the data path; a module may import its own stage or earlier ones.
# Top-level modules of a part that are not listed (core/errors.py, core/tracks.py, core/pickles.py,
# core/atomic.py, the part's __init__) are its base: stage 0 of that part.
STAGES = {
    "core": ("recording", "envelopes", "network", "expression", "heads", "trackfiles", "pipeline", "live", "analysis",
             "simulator", "batch"),
    "blender": ("anim", "rigs", "jobs", "ui"),
    "cli": (),
}
PARTS = ("core", "blender", "cli")  # core ← blender ← cli ← the package's register()


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom, known: set[str]) -> list[str]:
    """The package modules an ``ImportFrom`` node loads (a submodule when the name is one)."""
    if node.level:
        base = importer.split(".")
        if not is_package:
            base = base[:-1]
        base = base[:len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith(PACKAGE.name):
        return []
    submodules = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known]
    # names that are not submodules come from the package's __init__ itself
    return submodules + ([target] if len(submodules) < len(node.names) else [])


def import_graph(root: Path = PACKAGE) -> dict[str, dict[str, int]]:
    """module -> {imported package module: line}, every import statement counted (lazy ones too)."""
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    known = set(files)
    graph: dict[str, dict[str, int]] = {}
    for name, path in files.items():
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets = []
            if isinstance(node, ast.ImportFrom):
                targets = _resolve(name, path.name == "__init__.py", node, known)
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith(root.name)]
            for target in targets:
                edges.setdefault(target, node.lineno)
        graph[name] = edges
    return graph


def stage_of(module: str) -> tuple[int, int] | None:
    """(part index, stage index) of a package module; None for the package's own top level."""
    parts = module.split(".")[1:]
    if not parts or parts[0] not in STAGES:
        return None
    stages = STAGES[parts[0]]
    stage = stages.index(parts[1]) + 1 if len(parts) > 1 and parts[1] in stages else 0
    return PARTS.index(parts[0]), stage


def layering_violations(graph: dict[str, dict[str, int]]) -> list[str]:
    problems = []
    for importer, edges in graph.items():
        mine = stage_of(importer)
        if mine is None:
            continue
        for target, line in edges.items():
            theirs = stage_of(target)
            if theirs is None:
                problems.append(f"{importer}:{line} imports the package's top level {target}")
            elif theirs[0] > mine[0]:
                problems.append(f"{importer}:{line} imports {target}: {PARTS[mine[0]]}/ never imports "
                                f"{PARTS[theirs[0]]}/")
            elif theirs[0] == mine[0] and theirs[1] > mine[1]:
                problems.append(f"{importer}:{line} imports {target}, a later stage of the data path")
    return problems


def import_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module, or a module importing itself."""
    index, low, on_stack, stack, cycles = {}, {}, set(), [], []

    def visit(node):  # Tarjan's algorithm; the graph is small, recursion is fine
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, {}):
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_no_core_module_imports_blender():
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            if any(n.split(".")[0] in BLENDER_MODULES for n in names):
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert not offenders, f"core modules import Blender: {offenders}"


def test_every_import_respects_the_stages():
    assert layering_violations(import_graph()) == []


def test_no_import_cycles_lazy_imports_included():
    assert import_cycles(import_graph()) == []


def test_every_package_says_its_stage():
    missing = [str(p.relative_to(REPO_ROOT)) for p in sorted(PACKAGE.rglob("__init__.py"))
               if ast.get_docstring(ast.parse(p.read_text())) is None]
    assert not missing, f"packages without a docstring: {missing}"


@pytest.mark.parametrize("edit, expect", [
    ("from ..envelopes import process_recording\n", "a later stage"),       # recording -> envelopes
    ("def late():\n    from ...blender.anim import keyframes\n", "core/ never imports blender/"),
    ("from ..trackfiles import write_track\n", "cycle"),                    # trackfiles -> recording -> ...
])
def test_the_checks_catch_a_back_edge_and_a_cycle(tmp_path, edit, expect):
    """The same checks on a copy of the package with one import added to the recording stage."""
    import shutil

    copy = tmp_path / PACKAGE.name
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.onnx", "*.npz"))
    target = copy / "core" / "recording" / "montage.py"
    target.write_text(target.read_text() + "\n" + edit)
    graph = import_graph(copy)
    found = layering_violations(graph) + [" <-> ".join(c) + " (cycle)" for c in import_cycles(graph)]
    assert any(expect in problem for problem in found), found


def test_core_imports_with_bpy_unavailable():
    modules = sorted(module_name(p) for p in CORE.rglob("*.py"))
    code = ("import sys; sys.modules['bpy'] = None\n"
            + "".join(f"import {m}\n" for m in modules)
            + "import eifer_blender.cli; eifer_blender.cli.build_parser()\nprint('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
