"""Operators for the reverse direction: infer muscles, compare, heatmap, export."""
from __future__ import annotations

from pathlib import Path

import bpy
from bpy_extras.io_utils import ExportHelper

from ...core.errors import EiferError
from ..jobs import heatmap
from ..jobs.export import EXPORT_SUFFIXES, export_curves
from .reporting import (
    NeedsFace,
    Progress,
    match_format_suffix,
    provider_preference,
    reports_input_errors,
    shape_mapping,
)

EXPORT_FORMATS = (("CSV", "CSV", "Frames × channels with fps and units in the header"),
                  ("EDF", "EDF+", "16-bit EDF+, one signal per channel at the frame rate"),
                  ("BDF", "BDF+", "24-bit BDF+ (BIDS recommends it)"),
                  ("BIDS", "BIDS-EMG folder", "A BIDS-EMG-style data set: the file name is the folder"))


def _abspath(path: str) -> str | None:
    return bpy.path.abspath(path) if path else None


def _output_folder(path: str) -> Path:
    """A folder setting as an absolute path: empty = next to the .blend. In a file never saved an
    empty or blend-relative ("//…") folder has no place users keep: refused, saying what to do."""
    if not bpy.data.filepath and (not path or path.startswith("//")):
        raise EiferError("this .blend is not saved yet, so there is no folder next to it: save the file, "
                         "or set Output Folder to a folder of your own")
    return Path(bpy.path.abspath(path or "//"))


class EIFER_OT_infer_muscles(NeedsFace, bpy.types.Operator):
    """Infer muscle activity from the face's animation over the scene's frame range (Exp2EMG network)"""

    bl_idname = "eifer.infer_muscles"
    bl_label = "Infer Muscles"
    bl_options = {"REGISTER", "UNDO"}

    @reports_input_errors
    def execute(self, context):
        from ..jobs.infer import infer_muscles

        scene, settings = context.scene, context.scene.eifer
        preview = scene.use_preview_range
        frames = (scene.frame_preview_start, scene.frame_preview_end) if preview else (scene.frame_start, scene.frame_end)
        with Progress(context, "infer") as progress:
            progress.step(5, f"reading {settings.face.name}, frames {frames[0]}–{frames[1]}")
            report = infer_muscles(settings.face, scene=scene, model=_abspath(settings.inverse_model_path),
                                   frame_range=frames, providers=provider_preference(context),
                                   swap_sides=settings.swap_sides, mapping=shape_mapping(settings),
                                   progress=lambda fraction, what: progress.step(5 + int(45 * fraction), what))
            progress.step(100, "done")
        settings.inferred = report.emg_object
        note = report.model.provider_note
        missing = report.missing_shapes
        self.report({"WARNING"} if note or missing else {"INFO"},
                    f"Inferred {len(report.muscles.names)} muscles for frames {report.frame_start}–{report.frame_end} "
                    f"on {report.provider.replace('ExecutionProvider', '')}"
                    + (f"; no shape key for {len(missing)} model inputs, read as 0: {', '.join(missing[:5])}"
                       + (" …" if len(missing) > 5 else "") if missing else "")
                    + (f"; through the {report.bridge_note}" if report.bridge_note else "")
                    + (f" ({note})" if note else ""))
        return {"FINISHED"}


class EIFER_OT_compare_emg(bpy.types.Operator):
    """Score the inferred muscle curves against the recording (MSE, RMSE, SMAPE, Spearman ρ per channel)
and write a CSV table and a PNG plot"""

    bl_idname = "eifer.compare_emg"
    bl_label = "Compare EMG"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        settings = context.scene.eifer
        return settings.recording is not None and settings.inferred is not None

    def execute(self, context):
        from ..jobs.compare import compare_emg

        scene, settings = context.scene, context.scene.eifer
        stem = bpy.path.clean_name(f"{settings.recording.name}_vs_{settings.inferred.name}")
        folder = settings.compare_output
        try:
            folder = _output_folder(settings.compare_output)
            report = compare_emg(settings.recording, settings.inferred, scaling=settings.compare_scaling.lower(),
                                 csv_path=folder / f"{stem}.csv", png_path=folder / f"{stem}.png", scene=scene)
        except EiferError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        except OSError as exc:
            self.report({"ERROR"}, f"cannot write to {folder}: {exc}")
            return {"CANCELLED"}
        table = report.comparison.table
        settings.compare_rows.clear()
        for name in table.names:
            row, values = settings.compare_rows.add(), table.row(name)
            row.name = name
            row.mse, row.rmse, row.smape, row.spearman = (values[m] for m in ("mse", "rmse", "smape", "spearman"))
        summary = report.comparison.summary()
        settings.compare_summary = (f"median ρ {summary['spearman']:.2f}, RMSE {summary['rmse']:.3g}, "
                                    f"SMAPE {summary['smape']:.1f} % over frames {report.frame_start}–{report.frame_end}"
                                    f" ({report.comparison.scaling} scaling)")
        settings.compare_csv, settings.compare_png = str(report.csv_path), str(report.png_path)
        self.report({"INFO"}, f"Compared {len(table.names)} channels: {settings.compare_summary}; wrote {report.csv_path}")
        return {"FINISHED"}


class EIFER_OT_toggle_heatmap(bpy.types.Operator):
    """Show or hide muscle activity as a heatmap on the face (animates with the EMG curves;
Material Preview or Rendered shading)"""

    bl_idname = "eifer.toggle_heatmap"
    bl_label = "Toggle Heatmap"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        face = context.scene.eifer.face
        return face is not None and face.type == "MESH"

    @reports_input_errors
    def execute(self, context):
        settings = context.scene.eifer
        face = settings.face
        if heatmap.is_enabled(face):
            heatmap.disable_heatmap(face)
            self.report({"INFO"}, f"Heatmap off: {face.name} shows its own materials again")
            return {"FINISHED"}
        source = settings.heatmap_source or settings.inferred or settings.recording
        if source is None:
            raise EiferError("no EMG object to show: infer muscles or import a recording first")
        info = heatmap.enable_heatmap(face, source)
        settings.heatmap_source = source
        self.report({"INFO"}, f"Heatmap of {source.name} on {face.name} ({len(info.channels)} channels): {heatmap.COLOUR_MAP}")
        return {"FINISHED"}


class EIFER_OT_export_muscles(bpy.types.Operator, ExportHelper):
    """Export muscle curves (inferred or recorded) as CSV, EDF+, BDF+ or a BIDS-EMG-style folder"""

    bl_idname = "eifer.export_muscles"
    bl_label = "Export Muscles"
    filename_ext = ".csv"
    filter_glob: bpy.props.StringProperty(default="*.csv;*.edf;*.bdf", options={"HIDDEN"})
    file_format: bpy.props.EnumProperty(name="Format", items=EXPORT_FORMATS, default="CSV")
    source: bpy.props.EnumProperty(name="Curves", items=(
        ("INFERRED", "Inferred", "The muscle curves inferred from the face"),
        ("RECORDING", "Recording", "The processed envelopes of the imported recording")), default="INFERRED")
    subject: bpy.props.StringProperty(name="Subject", default="01", description="BIDS subject label")
    session: bpy.props.StringProperty(name="Session", default="", description="BIDS session label (optional)")
    task: bpy.props.StringProperty(name="Task", default="face", description="BIDS task label")

    @classmethod
    def poll(cls, context):
        settings = context.scene.eifer
        return settings.inferred is not None or settings.recording is not None

    def check(self, context):
        return match_format_suffix(self, EXPORT_SUFFIXES)

    @reports_input_errors
    def execute(self, context):
        settings = context.scene.eifer
        obj = settings.inferred if self.source == "INFERRED" else settings.recording
        if obj is None:
            raise EiferError(f"no {'inferred' if self.source == 'INFERRED' else 'recorded'} EMG object to export")
        written = export_curves(obj, bpy.path.abspath(self.filepath), self.file_format, subject=self.subject,
                                session=self.session or None, task=self.task,
                                power_line_hz=(float(settings.mains_hz) if self.source == "RECORDING" and settings.mains_hz != "AUTO"
                                               else "n/a"))
        self.report({"INFO"}, f"Wrote {written}")
        return {"FINISHED"}


CLASSES = (EIFER_OT_infer_muscles, EIFER_OT_compare_emg, EIFER_OT_toggle_heatmap, EIFER_OT_export_muscles)
