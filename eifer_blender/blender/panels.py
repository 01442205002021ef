"""The EIFER tab in the 3D viewport's sidebar: Face, EMG and Drive panels."""
import bpy

from . import emg_ops
from .operators import EIFER_OT_add_open_head


class _EiferPanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "EIFER"


class EIFER_PT_face(_EiferPanel, bpy.types.Panel):
    bl_label = "Face"
    bl_idname = "EIFER_PT_face"

    def draw(self, context):
        layout = self.layout
        layout.prop(context.scene.eifer, "face")
        layout.operator(EIFER_OT_add_open_head.bl_idname, icon="MONKEY")


class EIFER_PT_emg(_EiferPanel, bpy.types.Panel):
    bl_label = "EMG Recording"
    bl_idname = "EIFER_PT_emg"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.eifer
        layout.operator(emg_ops.EIFER_OT_import_emg.bl_idname, icon="IMPORT")
        layout.prop(settings, "recording")
        col = layout.column(align=True)
        col.use_property_split = True
        col.prop(settings, "start_frame")
        col.prop(settings, "mains_hz")
        layout.operator(emg_ops.EIFER_OT_export_envelopes.bl_idname, icon="EXPORT")


class EIFER_PT_drive(_EiferPanel, bpy.types.Panel):
    bl_label = "Drive"
    bl_idname = "EIFER_PT_drive"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.eifer
        col = layout.column()
        col.use_property_split = True
        col.prop(settings, "model_path")
        col.prop(settings, "retarget_path")
        col.prop(settings, "smoothing_s")
        col.prop(settings, "rest_floor")
        col.prop(settings, "key_tolerance")
        col.prop(settings, "use_frame_range")
        col.prop(settings, "swap_sides")
        row = layout.row()
        row.scale_y = 1.4
        row.operator(emg_ops.EIFER_OT_drive_face.bl_idname, icon="PLAY")
        layout.operator(emg_ops.EIFER_OT_restore_animation.bl_idname, icon="LOOP_BACK")


class EIFER_UL_mapping(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        face = context.scene.eifer.face
        row = layout.row(align=True)
        row.label(text=item.arkit)
        if face is not None and face.data.shape_keys is not None:
            row.prop_search(item, "shape", face.data.shape_keys, "key_blocks", text="")
        else:
            row.prop(item, "shape", text="")
        row.prop(item, "gain", text="")
        row.prop(item, "offset", text="")


class EIFER_PT_mapping(_EiferPanel, bpy.types.Panel):
    bl_label = "Shape Mapping"
    bl_idname = "EIFER_PT_mapping"
    bl_parent_id = "EIFER_PT_drive"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        settings = context.scene.eifer
        layout.operator(emg_ops.EIFER_OT_refresh_mapping.bl_idname, icon="FILE_REFRESH")
        layout.template_list("EIFER_UL_mapping", "", settings, "mapping", settings, "mapping_index", rows=6)


CLASSES = (EIFER_PT_face, EIFER_PT_emg, EIFER_PT_drive, EIFER_UL_mapping, EIFER_PT_mapping)
