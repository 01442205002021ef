"""Operators for face captures: import a Live Link Face or MediaPipe capture as the face's animation."""
from __future__ import annotations

from pathlib import Path

import bpy
from bpy_extras.io_utils import ImportHelper

from ..jobs.capture import import_capture
from .reporting import NeedsFace, reports_input_errors, shape_mapping

CAPTURE_GLOB = "*.csv;*.json"


class EIFER_OT_import_capture(NeedsFace, bpy.types.Operator, ImportHelper):
    """Key a face capture (Live Link Face CSV, MediaPipe blendshape .csv/.json) on the Face's ARKit shape
keys at the scene's frame rate; Infer Muscles then reads it as any animation"""

    bl_idname = "eifer.import_capture"
    bl_label = "Import Face Capture"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".csv"
    filter_glob: bpy.props.StringProperty(default=CAPTURE_GLOB, options={"HIDDEN"})
    start_frame: bpy.props.IntProperty(name="Start Frame", default=1,
                                       description="Scene frame of the capture's first row")
    timecode_fps: bpy.props.FloatProperty(
        name="Timecode Rate", min=0.0, default=0.0,
        description="Frame rate of a Live Link Face timecode; 0 = from its frame numbers")
    set_frame_range: bpy.props.BoolProperty(name="Set Frame Range", default=True,
                                            description="Make the scene's frame range the capture's")

    def invoke(self, context, event):
        self.start_frame = context.scene.frame_start
        return super().invoke(context, event)

    @reports_input_errors
    def execute(self, context):
        settings = context.scene.eifer
        path = Path(bpy.path.abspath(self.filepath))
        report = import_capture(settings.face, path, scene=context.scene, start_frame=self.start_frame,
                                timecode_fps=self.timecode_fps or None, swap_sides=settings.swap_sides,
                                mapping=shape_mapping(settings), set_frame_range=self.set_frame_range)
        meta = report.track.meta
        for warning in meta.get("warnings", ()):
            self.report({"WARNING"}, warning)
        rate = f", timecode {meta['timecode_fps']:g} fps" if "timecode_fps" in meta else ""
        unmatched = report.unmatched
        self.report({"WARNING"} if unmatched else {"INFO"},
                    f"Keyed {len(report.track.names) - len(unmatched)} shapes of {path.name} ({meta['format']}{rate}) "
                    f"on {report.face.name}, frames {report.frame_start}–{report.frame_end}"
                    + (f"; no shape key for {len(unmatched)}: {', '.join(unmatched[:5])}"
                       + (" …" if len(unmatched) > 5 else "") if unmatched else ""))
        return {"FINISHED"}


CLASSES = (EIFER_OT_import_capture,)
