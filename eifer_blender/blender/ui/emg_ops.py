"""Operators for EMG: import a recording, drive the face, restore the previous animation, export."""
from __future__ import annotations

from pathlib import Path

import bpy
from bpy_extras.io_utils import ExportHelper, ImportHelper

from ...core.expression.spaces import ARKIT52
from ..anim import emg_object, keyframes
from ..jobs.export import EXPORT_SUFFIXES, export_curves
from ..rigs.arkit import arkit_binding
from .reporting import (
    NeedsFace,
    Progress,
    calibration_options,
    mains_setting,
    match_format_suffix,
    provider_preference,
    recording_options,
    reports_input_errors,
    shape_mapping,
)

RECORDING_GLOB = "*.edf;*.bdf;*.gdf;*.vhdr;*.set;*.fif;*.cnt;*.xdf;*.csv;*.txt;*.acq;*.h5;*.hdf5"


class EIFER_OT_import_emg(bpy.types.Operator, ImportHelper):
    """Import an sEMG recording: filter and envelope it (EIFER's chain) and key the envelopes"""

    bl_idname = "eifer.import_emg"
    bl_label = "Import EMG"
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: bpy.props.StringProperty(default=RECORDING_GLOB, options={"HIDDEN"})
    start_frame: bpy.props.IntProperty(name="Start Frame", default=1,
                                       description="Scene frame at which the recording starts")

    def invoke(self, context, event):
        self.start_frame = context.scene.eifer.start_frame
        return super().invoke(context, event)

    @reports_input_errors
    def execute(self, context):
        from ..jobs.import_emg import import_emg

        scene, settings = context.scene, context.scene.eifer
        path = Path(bpy.path.abspath(self.filepath))
        with Progress(context, "import") as progress:
            report = import_emg(path, scene=scene, start_frame=self.start_frame, model=settings.model_path or None,
                                notch_hz=mains_setting(settings, driving=False), providers=provider_preference(context),
                                progress=progress.step, **recording_options(settings, path))
        envelopes = report.envelopes
        settings.recording = report.emg_object
        settings.start_frame = self.start_frame
        settings.channel_sites.clear()
        settings.channel_sites_file = str(path)
        for channel, site in report.channel_sites.items():  # what the file's channels feed, to see and edit
            row = settings.channel_sites.add()
            row.channel, row.site = channel, site
        for warning in report.warnings:
            self.report({"WARNING"}, warning)
        self.report({"INFO"}, f"Imported {len(envelopes.names)} sites ({', '.join(envelopes.names)}), "
                              f"{envelopes.n_frames} frames from {path.name}")
        return {"FINISHED"}


class EIFER_OT_drive_face(bpy.types.Operator):
    """Drive the face's shape keys from the EMG curves (or, to re-read, the recording) through the EMG→expression network"""

    bl_idname = "eifer.drive_face"
    bl_label = "Drive Face from EMG"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        settings = context.scene.eifer
        return settings.face is not None and settings.recording is not None

    @reports_input_errors
    def execute(self, context):
        from ..jobs.drive import drive

        scene, settings = context.scene, context.scene.eifer
        rows = [row for row in settings.mapping if row.arkit]
        path = emg_object.source_path(settings.recording)  # read only with Re-read Recording File
        with Progress(context, "drive") as progress:
            progress.step(5, f"driving {settings.face.name} from {settings.recording.name}")
            report = drive(
                settings.face, settings.recording, scene=scene, reread=settings.reread_recording,
                model=bpy.path.abspath(settings.model_path) if settings.model_path else None,
                start_frame=settings.start_frame,
                frame_range=(scene.frame_start, scene.frame_end) if settings.use_frame_range else None,
                smoothing_s=settings.smoothing_s, rest_floor=settings.rest_floor, key_tolerance=settings.key_tolerance,
                gain={r.arkit: r.gain for r in rows}, offset={r.arkit: r.offset for r in rows},
                swap_sides=settings.swap_sides, mapping=shape_mapping(settings), notch_hz=mains_setting(settings, driving=True),
                retarget=bpy.path.abspath(settings.retarget_path) if settings.retarget_path else None,
                providers=provider_preference(context), **calibration_options(settings),
                **(recording_options(settings, path) if settings.reread_recording else {}),
                progress=lambda fraction, what: progress.step(5 + int(45 * fraction), what))
            progress.step(100, "done")
        settings.driven_shapes = ", ".join(report.result.driven)
        settings.left_alone_shapes = ", ".join(report.result.left_alone)
        note = report.result.model.provider_note
        self.report({"WARNING"} if note else {"INFO"},
                    f"Keyed frames {report.frame_start}–{report.frame_end} on {report.provider.replace('ExecutionProvider', '')}: "
                    f"{len(report.result.driven)} shapes driven"
                    + (f", {len(report.result.left_alone)} left alone (no recorded site moves them)"
                       if report.result.left_alone else "")
                    + (f"; no shape key for {len(report.missing_shapes)} outputs" if report.missing_shapes else "")
                    + (f"; through the {report.bridge_note}" if report.bridge_note else "")
                    + (f" ({note})" if note else ""))
        return {"FINISHED"}


class EIFER_OT_restore_animation(bpy.types.Operator):
    """Bring back the shape-key animation the face had before it was driven"""

    bl_idname = "eifer.restore_animation"
    bl_label = "Restore Previous Animation"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        face = context.scene.eifer.face
        keys = face.data.shape_keys if face is not None else None
        return keyframes.has_previous_action(keys)

    def execute(self, context):
        keys = context.scene.eifer.face.data.shape_keys
        if not keyframes.restore_previous_action(keys):
            self.report({"ERROR"}, "The previous action no longer exists")
            return {"CANCELLED"}
        return {"FINISHED"}


class EIFER_OT_refresh_mapping(NeedsFace, bpy.types.Operator):
    """Fill the mapping table from the face's shape keys (ARKit name → shape key)"""

    bl_idname = "eifer.refresh_mapping"
    bl_label = "Match Shape Keys"
    bl_options = {"REGISTER", "UNDO"}

    @reports_input_errors
    def execute(self, context):
        settings = context.scene.eifer
        binding = arkit_binding(settings.face, swap_sides=settings.swap_sides)
        old = {row.arkit: (row.gain, row.offset) for row in settings.mapping}
        settings.mapping.clear()
        for name in ARKIT52:
            row = settings.mapping.add()
            row.arkit, row.shape = name, binding.get(name, "")
            row.gain, row.offset = old.get(name, (1.0, 0.0))
        self.report({"INFO"}, f"Matched {len(binding)} of 52 ARKit shapes")
        return {"FINISHED"}


def _emg_object_to_export(context):
    """The active object when it is an EMG object, else the sidebar's recording: Export works right
    after Import, whatever is selected."""
    obj = context.active_object
    if emg_object.is_emg_object(obj):
        return obj
    return context.scene.eifer.recording


class EIFER_OT_export_envelopes(bpy.types.Operator, ExportHelper):
    """Export the EMG object's curves as CSV (frames × channels), EDF or BDF"""

    bl_idname = "eifer.export_envelopes"
    bl_label = "Export EMG Curves"
    filename_ext = ".csv"
    filter_glob: bpy.props.StringProperty(default="*.csv;*.edf;*.bdf", options={"HIDDEN"})
    file_format: bpy.props.EnumProperty(name="Format", items=[("CSV", "CSV", ""), ("EDF", "EDF", "16 bit"),
                                                              ("BDF", "BDF", "24 bit")])

    @classmethod
    def poll(cls, context):
        return _emg_object_to_export(context) is not None

    def check(self, context):
        return match_format_suffix(self, EXPORT_SUFFIXES)

    @reports_input_errors
    def execute(self, context):
        path = export_curves(_emg_object_to_export(context), bpy.path.abspath(self.filepath), self.file_format)
        self.report({"INFO"}, f"Wrote {path}")
        return {"FINISHED"}


def draw_import_menu(self, context):
    self.layout.operator(EIFER_OT_import_emg.bl_idname, text="EMG Recording (EIFER)")


CLASSES = (EIFER_OT_import_emg, EIFER_OT_drive_face, EIFER_OT_restore_animation, EIFER_OT_refresh_mapping,
           EIFER_OT_export_envelopes)
