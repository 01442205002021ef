"""Register and unregister everything the extension adds to Blender, in one place."""
import bpy

from . import emg_ops, flame_ops, infer_ops, operators, panels, preferences, properties

_MODULES = (preferences, properties, operators, emg_ops, flame_ops, panels, infer_ops)
_cli_handle = None


def _run_cli(argv):
    from ..cli import main

    return main(argv)


def register():
    global _cli_handle
    for module in _MODULES:
        for cls in module.CLASSES:
            bpy.utils.register_class(cls)
    properties.register_properties()
    bpy.types.VIEW3D_MT_mesh_add.append(operators.draw_add_menu)
    bpy.types.VIEW3D_MT_mesh_add.append(flame_ops.draw_add_menu)
    bpy.types.TOPBAR_MT_file_import.append(emg_ops.draw_import_menu)
    if hasattr(bpy.utils, "register_cli_command"):
        _cli_handle = bpy.utils.register_cli_command("eifer", _run_cli)


def unregister():
    global _cli_handle
    if _cli_handle is not None:
        bpy.utils.unregister_cli_command(_cli_handle)
        _cli_handle = None
    bpy.types.TOPBAR_MT_file_import.remove(emg_ops.draw_import_menu)
    bpy.types.VIEW3D_MT_mesh_add.remove(flame_ops.draw_add_menu)
    bpy.types.VIEW3D_MT_mesh_add.remove(operators.draw_add_menu)
    properties.unregister_properties()
    for module in reversed(_MODULES):
        for cls in reversed(module.CLASSES):
            bpy.utils.unregister_class(cls)
