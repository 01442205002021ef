"""The extension registers like a user's Blender registers it, and unregisters without a trace."""
import bpy
import addon_utils  # noqa: I001  (a module of the Blender that bpy brings)

from tests.conftest import EXTENSION_MODULE


def _blender_state():
    """Everything register() can add: classes, Scene properties, menu draw functions, CLI commands."""
    rna_classes = {cls.__name__ for cls in bpy.types.bpy_struct.__subclasses__()}
    for base in (bpy.types.Operator, bpy.types.Panel, bpy.types.PropertyGroup, bpy.types.AddonPreferences):
        rna_classes |= {c.bl_rna.identifier for c in base.__subclasses__() if hasattr(c, "bl_rna")}
    scene_props = set(bpy.types.Scene.bl_rna.properties.keys())
    menu_funcs = {getattr(f, "__qualname__", repr(f)) for menu in (bpy.types.VIEW3D_MT_mesh_add, bpy.types.TOPBAR_MT_file_import)
                  for f in menu._dyn_ui_initialize()}
    ops = set(dir(bpy.ops.eifer))
    handlers = {name: len(getattr(bpy.app.handlers, name)) for name in dir(bpy.app.handlers)
                if not name.startswith("_") and isinstance(getattr(bpy.app.handlers, name), list)}
    return rna_classes, scene_props, menu_funcs, ops, handlers


def test_loaded_as_extension(extension):
    assert extension.__name__ == EXTENSION_MODULE
    from importlib import import_module

    prefs_module = import_module(f"{EXTENSION_MODULE}.blender.ui.preferences")
    prefs = prefs_module.get_preferences()
    assert prefs.execution_provider == "AUTO"
    user_dir = bpy.utils.extension_path_user(EXTENSION_MODULE, create=True)
    assert user_dir and "eifer_blender" in user_dir
    assert hasattr(bpy.ops.eifer, "add_open_head")
    assert hasattr(bpy.types.Scene, "eifer")


def test_register_unregister_register_leaves_nothing_behind(extension):
    enabled_state = _blender_state()
    addon_utils.disable(EXTENSION_MODULE, default_set=True)
    try:
        disabled_state = _blender_state()
        assert not hasattr(bpy.types.Scene, "eifer")
        assert "eifer" not in disabled_state[1]
        assert not any("eifer" in f.lower() or "_menu" in f for f in disabled_state[2])
        assert not disabled_state[3], f"operators left behind: {disabled_state[3]}"
        leftover = {c for c in disabled_state[0] if c.upper().startswith("EIFER")}
        assert not leftover, f"classes left behind: {leftover}"
        added = {name: count - disabled_state[4][name] for name, count in enabled_state[4].items()
                 if count != disabled_state[4][name]}
        assert added == {"load_post": 1, "save_pre": 1}  # only the file upgrade and version stamp (anim.internal)
    finally:
        addon_utils.enable(EXTENSION_MODULE, default_set=True)
    assert _blender_state() == enabled_state
