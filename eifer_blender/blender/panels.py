"""The EIFER tab in the 3D viewport's sidebar."""
import bpy

from .operators import EIFER_OT_add_open_head


class EIFER_PT_face(bpy.types.Panel):
    bl_label = "Face"
    bl_idname = "EIFER_PT_face"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "EIFER"

    def draw(self, context):
        layout = self.layout
        layout.prop(context.scene.eifer, "face")
        layout.operator(EIFER_OT_add_open_head.bl_idname, icon="MONKEY")


CLASSES = (EIFER_PT_face,)
