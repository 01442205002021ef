"""Import bpy for benchmarks with a throw-away user folder, like the tests do."""
import os
import tempfile

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="eifer-bench-user-"))

import bpy  # noqa: E402


def empty_scene():
    bpy.ops.wm.read_homefile(use_empty=True)
    return bpy.context.scene
