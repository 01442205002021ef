"""FLAME in the UI: Add FLAME Head, re-place joints, import/export per-frame FLAME parameters,
compute the ARKit ↔ FLAME bridge.

Short shells over the FLAME rig (``blender/rigs/flame*``) and the FLAME core (``core/heads``,
``core/expression/flame_files``).
Errors the user can fix are reported with ``{'ERROR'}`` and the operator returns CANCELLED with
nothing added to the scene.
"""
from __future__ import annotations

import os

import bpy
import numpy as np
from bpy_extras.io_utils import ExportHelper, ImportHelper

from ...core.errors import EiferError, InputError
from ...core.expression.flame_files import read_flame_params, write_flame_params
from ...core.heads.flame_file import load_flame_model
from ..rigs.bridge_cache import bridge_for_file, bridge_note, head_flame_file
from ..rigs.flame import find_flame_rig, is_flame_rig
from ..rigs.flame_build import build_flame_rig, replace_joints
from ..rigs.flame_keys import key_flame_params, sample_flame_params
from .preferences import get_preferences
from .reporting import Progress, reports_input_errors

FLAME_SITE = "https://flame.is.tue.mpg.de"
NO_MODEL_MESSAGE = (
    "No FLAME model set. Download FLAME (free registration, research licence) from "
    f"{FLAME_SITE} and choose its generic_model.pkl or flame2023*.pkl in Edit ▸ Preferences ▸ "
    "Add-ons (Get Extensions) ▸ EIFER for Blender ▸ FLAME model.")
PARAM_FILE_GLOB = "*.csv;*.csv.gz;*.gz;*.tsv;*.txt;*.npz;*.npy"

_flame_cache: dict = {}  # (path, mtime_ns, size) -> FlameModel; one entry, FLAME files are large


def flame_path_from_preferences(context) -> str:
    """The FLAME model path set in the extension preferences ('' when unset or unavailable)."""
    try:
        return get_preferences(context).flame_model_path
    except (KeyError, AttributeError):
        return ""


def load_flame_cached(path: str):
    """Load (and remember) the FLAME model at ``path``; a changed file is read again."""
    try:
        stat = os.stat(path)
        cache_key = (os.path.realpath(path), stat.st_mtime_ns, stat.st_size)
    except OSError:
        cache_key = None
    if cache_key is not None and cache_key in _flame_cache:
        return _flame_cache[cache_key]
    flame = load_flame_model(path)
    _flame_cache.clear()
    if cache_key is not None:
        _flame_cache[cache_key] = flame
    return flame


def _active_rig(context):
    return find_flame_rig(context.active_object)


class _ActsOnFlameRig:
    """Mixin: the operator needs a FLAME head or its armature to be active."""

    @classmethod
    def poll(cls, context):
        if not is_flame_rig(context.active_object):
            cls.poll_message_set("Select a FLAME head or its armature")
            return False
        return True


class EIFER_OT_add_flame_head(bpy.types.Operator):
    """Add a FLAME head (mesh, shape keys, armature, driven pose correctives) from your own FLAME model"""

    bl_idname = "eifer.add_flame_head"
    bl_label = "FLAME Head"
    bl_options = {"REGISTER", "UNDO"}

    filepath: bpy.props.StringProperty(
        name="Model file",
        description="FLAME model to use instead of the one set in the preferences (.pkl or .npz)",
        subtype="FILE_PATH",
        options={"SKIP_SAVE"},
    )
    shape_count: bpy.props.IntProperty(
        name="Identity keys", description="Identity shape keys Shape001… (FLAME has 300)",
        min=0, max=300, default=300,
    )
    expression_count: bpy.props.IntProperty(
        name="Expression keys",
        description="Expression shape keys Exp001… (EMOCA/DECA/SMIRK use 50, FLAME has 100)",
        min=0, max=100, default=50,
    )

    @reports_input_errors
    def execute(self, context):
        path = (self.filepath or flame_path_from_preferences(context)).strip()
        if not path:
            self.report({"ERROR"}, NO_MODEL_MESSAGE)
            return {"CANCELLED"}
        path = bpy.path.abspath(path)
        collection = context.collection or context.scene.collection
        flame = load_flame_cached(path)
        rig = build_flame_rig(flame, collection, self.shape_count, self.expression_count)
        rig.armature_obj.location = context.scene.cursor.location
        for other in context.selected_objects:
            other.select_set(False)
        rig.mesh_obj.select_set(True)
        context.view_layer.objects.active = rig.mesh_obj
        if hasattr(context.scene, "eifer"):
            context.scene.eifer.face = rig.mesh_obj
        capped = ""
        if (rig.meta["n_shape"], rig.meta["n_expression"]) != (self.shape_count,
                                                                 self.expression_count):
            capped = " (capped at what the FLAME file has)"
        self.report({"INFO"}, f"Added FLAME {flame.version} head: {rig.meta['n_shape']} identity, "
                              f"{rig.meta['n_expression']} expression and "
                              f"{rig.meta['n_correctives']} driven pose-corrective keys{capped}")
        return {"FINISHED"}


class EIFER_OT_replace_flame_joints(_ActsOnFlameRig, bpy.types.Operator):
    """Move the FLAME bones to the joints of the current identity (after editing Shape keys)"""

    bl_idname = "eifer.replace_flame_joints"
    bl_label = "Re-place FLAME Joints"
    bl_options = {"REGISTER", "UNDO"}

    @reports_input_errors
    def execute(self, context):
        rig = _active_rig(context)
        replace_joints(rig)
        self.report({"INFO"}, f"Joints of {rig.armature_obj.name} placed for the current identity")
        return {"FINISHED"}


class EIFER_OT_import_flame_params(_ActsOnFlameRig, bpy.types.Operator, ImportHelper):
    """Key per-frame FLAME parameters (MMM/SMIRK 361-column or EMOCA/DECA 56-column CSV, .npz, .npy) on the selected FLAME head"""

    bl_idname = "eifer.import_flame_params"
    bl_label = "Import FLAME Parameters"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".csv"
    filter_glob: bpy.props.StringProperty(default=PARAM_FILE_GLOB, options={"HIDDEN"})
    layout: bpy.props.EnumProperty(
        name="Layout",
        items=[("AUTO", "From column count", "361 columns: MMM/SMIRK; 56: EMOCA/DECA"),
               ("mmm", "MMM / SMIRK (361)", "shape 300, exp 50, eyelid 2, jaw 3, pose 3, cam 3"),
               ("emoca", "EMOCA / DECA (56)", "exp 50, pose 6 (global 3, jaw 3)")],
        default="AUTO",
    )
    fps: bpy.props.FloatProperty(
        name="File frame rate", description="Rows per second; 0 = the file's own, else 30 (MMM)",
        min=0.0, default=0.0,
    )
    start_frame: bpy.props.IntProperty(name="Start frame", default=1)
    identity: bpy.props.EnumProperty(
        name="Identity",
        items=[("mean", "Clip mean", "Set the clip's mean shape and re-place the joints"),
               ("per_frame", "Per frame", "Key the Shape keys every frame too"),
               ("keep", "Keep", "Leave the head's identity as it is")],
        default="mean",
    )
    set_frame_range: bpy.props.BoolProperty(
        name="Set frame range", description="Make the scene's frame range cover the clip",
        default=True,
    )

    @reports_input_errors
    def execute(self, context):
        rig = _active_rig(context)
        params = read_flame_params(self.filepath, fps=self.fps or None,
                                   layout=None if self.layout == "AUTO" else self.layout)
        result = key_flame_params(rig, params, start_frame=self.start_frame,
                                  identity=self.identity)
        if self.set_frame_range:
            first, last = result["frames"]
            context.scene.frame_start = int(first)
            context.scene.frame_end = max(int(first), int(-(-last // 1)))
        for warning in result["warnings"]:
            self.report({"WARNING"}, warning)
        for note in result.get("notes", ()):
            self.report({"INFO"}, note)
        assumed = " (assumed 30 fps)" if params.meta.get("fps_assumed") else ""
        self.report({"INFO"}, f"Keyed {params.n_frames} frames of {os.path.basename(self.filepath)} "
                              f"at {params.fps:g} fps{assumed} on {rig.mesh_obj.name}")
        return {"FINISHED"}


class EIFER_OT_export_flame_params(_ActsOnFlameRig, bpy.types.Operator, ExportHelper):
    """Write the FLAME head's animation as per-frame FLAME parameters (CSV, CSV.gz, .npy or .npz)"""

    bl_idname = "eifer.export_flame_params"
    bl_label = "Export FLAME Parameters"

    filename_ext = ".csv"
    check_extension = None  # .csv, .csv.gz, .npy and .npz are all fine
    filter_glob: bpy.props.StringProperty(default=PARAM_FILE_GLOB, options={"HIDDEN"})
    layout: bpy.props.EnumProperty(
        name="Layout",
        items=[("mmm", "MMM / SMIRK (361)", "shape 300, exp 50, eyelid 2, jaw 3, pose 3, cam 3"),
               ("emoca", "EMOCA / DECA (56)", "exp 50, pose 6 (global 3, jaw 3)")],
        default="mmm",
    )
    header: bpy.props.BoolProperty(name="Header row", description="Write column names (CSV)",
                                   default=False)
    drop_unsupported: bpy.props.BoolProperty(
        name="Drop what the layout cannot hold",
        description="Leave out non-zero values the layout has no column for (e.g. neck and eye "
                    "pose, expression 51–100) instead of refusing",
        default=False,
    )

    def execute(self, context):
        scene = context.scene
        try:
            if not self.filepath:
                raise InputError("choose a file to write.")
            rig = _active_rig(context)
            frames = np.arange(scene.frame_start, scene.frame_end + 1)
            params = sample_flame_params(rig, frames)
            path = write_flame_params(params, bpy.path.abspath(self.filepath), layout=self.layout,
                                      header=self.header, drop_unsupported=self.drop_unsupported)
        except EiferError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        except OSError as exc:
            self.report({"ERROR"}, f"{self.filepath}: cannot write: {exc.strerror or exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Wrote {params.n_frames} frames to {path}")
        return {"FINISHED"}


bridge_summaries: dict[str, str] = {}  # FLAME file -> the last bridge summary (the panel shows it)


def bridge_flame_path(context) -> str:
    """The FLAME file whose bridge the button computes: the selected FLAME head's own, else the
    preferences' model ('' when neither)."""
    obj = context.active_object
    if is_flame_rig(obj):
        try:
            return str(head_flame_file(find_flame_rig(obj)))
        except InputError:
            pass
    path = flame_path_from_preferences(context).strip()
    return bpy.path.abspath(path) if path else ""


def bridge_summary_lines(context, width: int = 44) -> list[str]:
    """The last bridge summary of the FLAME file the button acts on, wrapped for a panel."""
    import textwrap

    path = bridge_flame_path(context)
    summary = bridge_summaries.get(os.path.realpath(path)) if path else None
    return textwrap.wrap(summary, width) if summary else []


class EIFER_OT_build_flame_bridge(bpy.types.Operator):
    """Compute the ARKit↔FLAME bridge from your FLAME file (the selected head's, else the preferences' model), \
so ARKit models drive FLAME heads and read them back; cached in your user folder"""

    bl_idname = "eifer.build_flame_bridge"
    bl_label = "Compute ARKit↔FLAME Bridge"
    bl_options = {"REGISTER"}  # the scene is not changed

    @reports_input_errors
    def execute(self, context):
        path = bridge_flame_path(context)
        if not path:
            self.report({"ERROR"}, NO_MODEL_MESSAGE)
            return {"CANCELLED"}
        with Progress(context, "bridge") as progress:
            bridge = bridge_for_file(path, progress=lambda fraction, what: progress.step(int(100 * fraction), what))
        note = bridge_note(bridge)
        bridge_summaries[os.path.realpath(path)] = note
        name, worst = bridge.worst_residual()
        self.report({"WARNING"} if worst > 0.25 else {"INFO"}, f"{os.path.basename(path)}: {note}")
        return {"FINISHED"}


def draw_add_menu(self, context):
    """Add ▸ Mesh ▸ FLAME Head."""
    self.layout.operator(EIFER_OT_add_flame_head.bl_idname, icon="USER")


CLASSES = (EIFER_OT_add_flame_head, EIFER_OT_replace_flame_joints, EIFER_OT_import_flame_params,
           EIFER_OT_export_flame_params, EIFER_OT_build_flame_bridge)
