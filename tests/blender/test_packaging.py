"""The extension validates and builds with Blender's own tool, and installs from the zip."""
import subprocess
import sys
import textwrap

from tests.conftest import REPO_ROOT

INSTALL_AND_ENABLE = textwrap.dedent("""
    import sys
    import bpy
    import addon_utils
    zip_path = sys.argv[1]
    result = bpy.ops.extensions.package_install_files(
        filepath=zip_path, repo="user_default", enable_on_install=True)
    assert result == {"FINISHED"}, result
    module = "bl_ext.user_default.eifer_blender"
    loaded_default, loaded_state = addon_utils.check(module)
    assert loaded_state, "extension not enabled after install"
    assert hasattr(bpy.ops.eifer, "add_open_head")
    assert bpy.ops.eifer.add_open_head() == {"FINISHED"}
    head = bpy.context.active_object
    assert head.data.shape_keys and len(head.data.shape_keys.key_blocks) == 53
    print("INSTALLED-OK", sys.modules[module].__file__)
""")


def test_build_validate_and_install_from_zip(tmp_path):
    out = subprocess.run([sys.executable, str(REPO_ROOT / "scripts/build_extension.py"), "--output-dir",
                          str(tmp_path / "dist")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    zips = sorted((tmp_path / "dist").glob("eifer_blender-*.zip"))
    assert len(zips) == 1
    env = {"BLENDER_USER_RESOURCES": str(tmp_path / "user"), "PATH": "/usr/bin:/bin"}
    script = tmp_path / "install.py"
    script.write_text(INSTALL_AND_ENABLE)
    run = subprocess.run([sys.executable, str(script), str(zips[0])], capture_output=True, text=True,
                         env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "INSTALLED-OK" in run.stdout
    assert str(tmp_path / "user") in run.stdout  # installed into the fresh user folder, not the repo
