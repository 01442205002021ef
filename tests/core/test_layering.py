"""core/ stays bpy-free: it imports and runs where Blender is absent."""
import ast
import subprocess
import sys

from tests.conftest import REPO_ROOT

CORE = REPO_ROOT / "eifer_blender" / "core"


def test_no_core_module_imports_bpy():
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
                if node.level and node.module.startswith("blender"):
                    names.append("bpy")  # relative import of the Blender adapters
            if any(n.split(".")[0] in ("bpy", "mathutils", "bmesh", "addon_utils") for n in names):
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert not offenders, f"core modules import Blender: {offenders}"


def test_core_imports_with_bpy_unavailable():
    modules = sorted(p.stem for p in CORE.glob("*.py") if p.stem != "__init__")
    code = ("import sys; sys.modules['bpy'] = None\n"
            + "".join(f"import eifer_blender.core.{m}\n" for m in modules)
            + "import eifer_blender.cli; eifer_blender.cli.build_parser()\nprint('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
