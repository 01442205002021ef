"""The user interface: operators (each ``execute`` one jobs call), sidebar panels, settings, preferences.

:func:`register` / :func:`unregister` add and remove everything the extension shows in Blender.
The jobs that process signals (drive, import, infer, live) are imported by the operators that run
them, when they run: they load scipy.signal and the networks, which would otherwise add most of a
second to every Blender start with the extension enabled (``tests/blender/test_lazy_imports.py``).
"""
import bpy


def _modules():
    # Imported here, not at the top: the command line registers only ``properties`` (so the .blend
    # files it saves carry the sidebar settings), and importing this package must not load every
    # operator module for that (~0.1 s of a cold ``eifer drive``).
    from . import (
        capture_ops,
        emg_ops,
        flame_ops,
        gpu_ops,
        head_ops,
        infer_ops,
        live_ops,
        panels,
        preferences,
        properties,
    )

    return (preferences, properties, head_ops, emg_ops, flame_ops, infer_ops, capture_ops, gpu_ops, live_ops,
            panels)


def register():
    from . import emg_ops, flame_ops, head_ops, properties

    for module in _modules():
        for cls in module.CLASSES:
            bpy.utils.register_class(cls)
    properties.register_properties()
    bpy.types.VIEW3D_MT_mesh_add.append(head_ops.draw_add_menu)
    bpy.types.VIEW3D_MT_mesh_add.append(flame_ops.draw_add_menu)
    bpy.types.TOPBAR_MT_file_import.append(emg_ops.draw_import_menu)


def unregister():
    from . import emg_ops, flame_ops, head_ops, live_ops, properties

    live_ops.stop_live_sessions()
    bpy.types.TOPBAR_MT_file_import.remove(emg_ops.draw_import_menu)
    bpy.types.VIEW3D_MT_mesh_add.remove(flame_ops.draw_add_menu)
    bpy.types.VIEW3D_MT_mesh_add.remove(head_ops.draw_add_menu)
    properties.unregister_properties()
    for module in reversed(_modules()):
        for cls in reversed(module.CLASSES):
            bpy.utils.unregister_class(cls)
