"""Hostile FLAME pickles: refused with a clear message, in bounded memory, without running anything.

Each file is loaded in a fresh process, so its peak memory is its own (``VmHWM``).
"""
import json
import pickle
import re
import struct
import subprocess
import sys

import pytest
import scipy.sparse

from tests.conftest import REPO_ROOT

LIMIT_MB = 1024


def _shared_pairs(levels: int = 60) -> bytes:
    """A list holding one list twice, 60 levels: 200 bytes, 2^60 paths to walk."""
    nested: list = []
    for _ in range(levels):
        nested = [nested, nested]
    return pickle.dumps({"v_template": nested}, protocol=2)


def _self_holding() -> bytes:
    loop: list = []
    loop.append(loop)
    loop.append(loop)
    return pickle.dumps({"v_template": loop}, protocol=2)


def _deep(levels: int = 200_000) -> bytes:
    """``{"v_template": [[[...]]]}``, lists nested 200 000 deep, built without recursion (EMPTY_LIST …
    APPEND …), which the pickler itself could not write."""
    key = b"v_template"
    return (b"\x80\x02}X" + struct.pack("<I", len(key)) + key + b"]" * levels + b"a" * (levels - 1) + b"s.")


def _huge_length() -> bytes:
    """A BINBYTES8 opcode announcing 2^60 bytes."""
    return b"\x80\x04\x8e" + struct.pack("<Q", 1 << 60) + b"x" * 16 + b"."


def _huge_memo_index() -> bytes:
    """LONG_BINPUT at index 2^31 - 1 (the C unpickler sizes its memo array by the index)."""
    return b"\x80\x02]r\xff\xff\xff\x7f."


def _huge_sparse() -> bytes:
    matrix = scipy.sparse.csc_matrix((1, 1))
    matrix._shape = (10 ** 6, 10 ** 6)  # 8 TB dense
    return pickle.dumps({"J_regressor": matrix}, protocol=4)


CASES = {"shared": (_shared_pairs, "FLAME|key"), "self": (_self_holding, "contains itself"),
         "deep": (_deep, "nests containers more than 64 deep"), "length": (_huge_length, "ends early|truncated"),
         "memo": (_huge_memo_index, "FLAME|array|key"), "sparse": (_huge_sparse, "MB dense")}

_LOADER = """
import json, sys
from eifer_blender.core.errors import FlameModelError
from eifer_blender.core.heads.flame_file import load_flame_model
try:
    load_flame_model(sys.argv[1])
    outcome = "loaded"
except FlameModelError as exc:
    outcome = str(exc)
peak = next(int(l.split()[1]) / 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"outcome": outcome, "peak_mb": peak}))
"""


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_pickle_is_refused_in_bounded_memory(tmp_path, case):
    make, message = CASES[case]
    path = tmp_path / f"{case}.pkl"
    path.write_bytes(make())
    out = subprocess.run([sys.executable, "-c", _LOADER, str(path)], capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]  # no traceback: a FlameModelError or nothing
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["outcome"] != "loaded"
    assert str(path) in result["outcome"] and re.search(message, result["outcome"]), result
    assert result["peak_mb"] < LIMIT_MB, result
