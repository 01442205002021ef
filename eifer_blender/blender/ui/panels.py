"""The EIFER tab in the 3D viewport's sidebar, every panel in sidebar order (``bl_order``).

Face, EMG Recording, Drive (with Shape Mapping), Muscles, Compare, FLAME. Panels only draw: each
button is an operator of ``*_ops``.
"""

import bpy

from ..jobs import heatmap
from ..rigs.flame import is_flame_rig
from . import emg_ops, flame_ops, live_ops
from .head_ops import EIFER_OT_add_open_head
from .infer_ops import (
    EIFER_OT_compare_emg,
    EIFER_OT_export_muscles,
    EIFER_OT_infer_muscles,
    EIFER_OT_toggle_heatmap,
)
from .preferences import get_preferences


def _property_column(layout, settings, *names: str, align: bool = False):
    """A column of the scene settings ``names``, labels beside the fields."""
    column = layout.column(align=align)
    column.use_property_split = True
    for name in names:
        column.prop(settings, name)
    return column


class _EiferPanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "EIFER"


class EIFER_PT_face(_EiferPanel, bpy.types.Panel):
    bl_label = "Face"
    bl_idname = "EIFER_PT_face"
    bl_order = 0

    def draw(self, context):
        layout = self.layout
        layout.prop(context.scene.eifer, "face")
        layout.operator(EIFER_OT_add_open_head.bl_idname, icon="MONKEY")


class EIFER_PT_emg(_EiferPanel, bpy.types.Panel):
    bl_label = "EMG Recording"
    bl_idname = "EIFER_PT_emg"
    bl_order = 1

    def draw(self, context):
        layout = self.layout
        settings = context.scene.eifer
        layout.operator(emg_ops.EIFER_OT_import_emg.bl_idname, icon="IMPORT")
        layout.prop(settings, "recording")
        _property_column(layout, settings, "start_frame", "mains_hz", "units", "side", "mirror", "nan_policy",
                         align=True)
        layout.operator(emg_ops.EIFER_OT_export_envelopes.bl_idname, icon="EXPORT")


class EIFER_UL_channel_sites(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        row = layout.row(align=True)
        row.label(text=item.channel)
        row.prop(item, "site", text="", icon="NONE" if item.site else "X")


class EIFER_PT_channels(_EiferPanel, bpy.types.Panel):
    """Which file channel records which muscle: the guesses of the last import, to correct and re-import."""

    bl_label = "Channels"
    bl_idname = "EIFER_PT_channels"
    bl_parent_id = "EIFER_PT_emg"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        settings = context.scene.eifer
        if not len(settings.channel_sites):
            layout.label(text="Import a recording to see its channels", icon="INFO")
            return
        layout.template_list("EIFER_UL_channel_sites", "", settings, "channel_sites", settings,
                             "channel_sites_index", rows=4)
        layout.label(text="Empty site: left out. Import again to apply.", icon="INFO")


class EIFER_PT_drive(_EiferPanel, bpy.types.Panel):
    bl_label = "Drive"
    bl_idname = "EIFER_PT_drive"
    bl_order = 2

    def draw(self, context):
        layout = self.layout
        settings = context.scene.eifer
        _property_column(layout, settings, "model_path", "retarget_path", "calibration")
        if settings.calibration == "CALIBRATION":
            _property_column(layout, settings, "calibration_start_s", "calibration_end_s", align=True)
        _property_column(layout, settings, "sensitivity", "smoothing_s", "rest_floor",
                         "key_tolerance", "use_frame_range", "swap_sides", "reread_recording")
        row = layout.row()
        row.scale_y = 1.4
        row.operator(emg_ops.EIFER_OT_drive_face.bl_idname, icon="PLAY")
        layout.operator(emg_ops.EIFER_OT_restore_animation.bl_idname, icon="LOOP_BACK")
        live_ops.draw_live(layout, context)
        if settings.driven_shapes:
            box = layout.box()
            _shape_list(box, settings.driven_shapes, "Driven: {} shapes", "SHAPEKEY_DATA")
            if settings.left_alone_shapes:
                _shape_list(box, settings.left_alone_shapes, "Left alone: {} (no recorded site)", "HIDE_ON")


def _shape_list(layout, names: str, heading: str, icon: str, per_line: int = 3) -> None:
    """A heading with the count of a comma-separated list of shape names, then the names a few per
    label line (the sidebar is narrow)."""
    items = [n for n in names.split(", ") if n]
    layout.label(text=heading.format(len(items)), icon=icon)
    for i in range(0, len(items), per_line):
        layout.label(text=", ".join(items[i:i + per_line]))


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


class EIFER_UL_compare(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        row = layout.row(align=True)
        row.label(text=item.name)
        row.label(text=f"ρ {item.spearman:.2f}")
        row.label(text=f"RMSE {item.rmse:.3g}")
        row.label(text=f"SMAPE {item.smape:.0f}")


class EIFER_PT_muscles(_EiferPanel, bpy.types.Panel):
    bl_label = "Muscles"
    bl_idname = "EIFER_PT_muscles"
    bl_order = 3

    def draw(self, context):
        layout = self.layout
        settings = context.scene.eifer
        _property_column(layout, settings, "face", "inverse_model_path", "swap_sides")
        scene = context.scene
        first, last = ((scene.frame_preview_start, scene.frame_preview_end) if scene.use_preview_range
                       else (scene.frame_start, scene.frame_end))
        layout.label(text=f"Frames {first}–{last} (the scene's range)", icon="TIME")
        layout.operator("eifer.import_capture", icon="IMPORT")  # ui.capture_ops: Live Link Face / MediaPipe
        row = layout.row()
        row.scale_y = 1.4
        row.operator(EIFER_OT_infer_muscles.bl_idname, icon="OUTLINER_OB_ARMATURE")
        layout.prop(settings, "inferred")
        box = layout.box()
        box.label(text="Heatmap", icon="COLORSET_04_VEC")
        box.prop(settings, "heatmap_source", text="Show")
        enabled = heatmap.is_enabled(settings.face)
        box.operator(EIFER_OT_toggle_heatmap.bl_idname, text="Hide Heatmap" if enabled else "Show Heatmap",
                     icon="HIDE_OFF" if enabled else "HIDE_ON", depress=enabled)
        for line in ("Colour: grey = rest, then viridis", "purple → teal → green → yellow;",
                     "yellow = the muscle's 95th percentile", "Material Preview / Rendered shading"):
            box.label(text=line)
        layout.operator(EIFER_OT_export_muscles.bl_idname, icon="EXPORT")


class EIFER_PT_compare(_EiferPanel, bpy.types.Panel):
    bl_label = "Compare"
    bl_idname = "EIFER_PT_compare"
    bl_order = 4
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        settings = context.scene.eifer
        _property_column(layout, settings, "recording", "inferred", "compare_scaling", "compare_output")
        layout.operator(EIFER_OT_compare_emg.bl_idname, icon="GRAPH")
        if len(settings.compare_rows):
            layout.label(text=settings.compare_summary)
            layout.template_list("EIFER_UL_compare", "", settings, "compare_rows", settings, "compare_index", rows=6)
            layout.label(text=f"CSV: {settings.compare_csv}")  # whole paths: where to find them
            layout.label(text=f"PNG: {settings.compare_png}")


class EIFER_PT_flame(_EiferPanel, bpy.types.Panel):
    bl_label = "FLAME"
    bl_idname = "EIFER_PT_flame"
    bl_options = {"DEFAULT_CLOSED"}
    bl_order = 5

    def draw(self, context):
        layout = self.layout
        try:
            layout.prop(get_preferences(context), "flame_model_path", text="Model")
        except KeyError:
            pass
        layout.operator(flame_ops.EIFER_OT_add_flame_head.bl_idname, icon="USER")
        layout.operator(flame_ops.EIFER_OT_build_flame_bridge.bl_idname, icon="MOD_MESHDEFORM")
        for line in flame_ops.bridge_summary_lines(context):
            layout.label(text=line)
        if not is_flame_rig(context.active_object):
            layout.label(text="Select a FLAME head for more", icon="INFO")
            return
        column = layout.column(align=True)
        column.operator(flame_ops.EIFER_OT_replace_flame_joints.bl_idname, icon="BONE_DATA")
        column.operator(flame_ops.EIFER_OT_import_flame_params.bl_idname, icon="IMPORT")
        column.operator(flame_ops.EIFER_OT_export_flame_params.bl_idname, icon="EXPORT")


CLASSES = (EIFER_PT_face, EIFER_PT_emg, EIFER_UL_channel_sites, EIFER_PT_channels, EIFER_PT_drive, EIFER_UL_mapping, EIFER_PT_mapping, EIFER_UL_compare,
           EIFER_PT_muscles, EIFER_PT_compare, EIFER_PT_flame)
