"""Import bpy for benchmarks with a throw-away user folder, like the tests do."""
import atexit
import os
import shutil
import tempfile

if "BLENDER_USER_RESOURCES" not in os.environ:
    os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="eifer-bench-user-")
    atexit.register(shutil.rmtree, os.environ["BLENDER_USER_RESOURCES"], ignore_errors=True)

import bpy  # noqa: E402


def empty_scene():
    bpy.ops.wm.read_homefile(use_empty=True)
    return bpy.context.scene
