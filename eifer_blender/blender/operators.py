"""Operators: short shells over core functions and the rig adapters."""
import functools

import bpy

from ..core.errors import EiferError


def reports_input_errors(execute):
    """Turn an :class:`EiferError` raised by ``execute`` into Blender's error report and CANCELLED.

    Operators compute and check before they write to the scene, so a cancelled operator has
    changed nothing.
    """

    @functools.wraps(execute)
    def wrapper(self, context):
        try:
            return execute(self, context)
        except EiferError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}

    return wrapper


class EIFER_OT_add_open_head(bpy.types.Operator):
    """Add the CC0 open head with the 52 ARKit shape keys"""

    bl_idname = "eifer.add_open_head"
    bl_label = "Open Head (ARKit 52)"
    bl_options = {"REGISTER", "UNDO"}

    @reports_input_errors
    def execute(self, context):
        from .rig_openhead import build_open_head

        obj = build_open_head(context.collection)
        obj.location = context.scene.cursor.location
        for other in context.selected_objects:
            other.select_set(False)
        obj.select_set(True)
        context.view_layer.objects.active = obj
        context.scene.eifer.face = obj
        self.report({"INFO"}, f"Added {obj.name} with {len(obj.data.shape_keys.key_blocks) - 1} ARKit shape keys")
        return {"FINISHED"}


def draw_add_menu(self, context):
    self.layout.operator(EIFER_OT_add_open_head.bl_idname, icon="MONKEY")


CLASSES = (EIFER_OT_add_open_head,)
