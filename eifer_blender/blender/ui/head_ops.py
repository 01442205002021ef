"""Add ▸ Mesh ▸ Open Head: the CC0 open head with the 52 ARKit shape keys."""
import bpy

from ..rigs.openhead import build_open_head
from .reporting import reports_input_errors


class EIFER_OT_add_open_head(bpy.types.Operator):
    """Add the CC0 open head with the 52 ARKit shape keys"""

    bl_idname = "eifer.add_open_head"
    bl_label = "Open Head (ARKit 52)"
    bl_options = {"REGISTER", "UNDO"}

    @reports_input_errors
    def execute(self, context):
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
