"""Operators for the opt-in GPU runtime: show the plan, then install or uninstall it with pip.

The runtime goes into Blender's user ``modules`` folder, which comes before the extensions' wheels
on ``sys.path``, so its ONNX Runtime wins over the bundled CPU one after a restart. Downloading
needs "Allow Online Access" (``bpy.app.online_access``, Blender 4.2+ extension guidelines) and the
user's confirmation in the dialog; calling the operator from a script without ``confirm=True``
only reports the plan.
"""
from __future__ import annotations

import sys
from pathlib import Path

import bpy

from ...core.errors import EiferError
from ...core.network import gpu_runtime


def gpu_runtime_folder() -> Path:
    """Blender's user ``modules`` folder (``<user scripts>/modules``), where the runtime goes."""
    return Path(bpy.utils.user_resource("SCRIPTS", path="modules", create=False))


def current_plan(version: str = "") -> gpu_runtime.Plan:
    """The install plan for this Blender's Python and system."""
    python_tag, platform = gpu_runtime.current_target()
    return gpu_runtime.install_plan(python_tag, platform, gpu_runtime_folder(), version or None)


def online_access() -> bool:
    """``bpy.app.online_access``: whether the user allows extensions to go online."""
    return bool(getattr(bpy.app, "online_access", True))


def installed_status() -> str:
    """One line for the preferences: is a GPU runtime in the modules folder?"""
    folder = gpu_runtime_folder()
    if (folder / "onnxruntime").is_dir() and list(folder.glob("onnxruntime_gpu-*.dist-info")):
        return f"GPU runtime installed in {folder}"
    return "GPU runtime not installed: networks run on the bundled CPU ONNX Runtime"


def _draw_lines(layout, lines) -> None:
    column = layout.column(align=True)
    for line in lines:
        column.label(text=line)


class EIFER_OT_install_gpu_runtime(bpy.types.Operator):
    """Download onnxruntime-gpu and the NVIDIA CUDA/cuDNN wheels (about 2 GB) into Blender's user
    modules folder, so the networks can run on an NVIDIA GPU after a restart"""

    bl_idname = "eifer.install_gpu_runtime"
    bl_label = "Install GPU Runtime"

    confirm: bpy.props.BoolProperty(name="Confirmed", default=False, options={"HIDDEN", "SKIP_SAVE"})
    version: bpy.props.StringProperty(name="onnxruntime-gpu version",
                                      description="Empty: 1.26.0 on Linux, 1.20.2 on Windows")

    def _plan_if_online(self):
        """The install plan, or None after saying why nothing can be downloaded (this module is
        imported by the preferences, so it reports its errors itself rather than through .reporting)."""
        try:
            plan = current_plan(self.version)
        except EiferError as exc:
            self.report({"ERROR"}, str(exc))
            return None
        if online_access():
            return plan
        self.report({"ERROR"}, "Online access is off (Preferences → System → Network → Allow Online Access), "
                               "so nothing was downloaded. To install it yourself, run: "
                               + plan.command_text(sys.executable))
        return None

    def invoke(self, context, event):
        if self._plan_if_online() is None:
            return {"CANCELLED"}
        self.confirm = True  # the dialog's button confirms
        return context.window_manager.invoke_props_dialog(self, width=560, confirm_text="Download and Install")

    def draw(self, context):
        try:
            _draw_lines(self.layout, current_plan(self.version).describe())
        except EiferError as exc:
            self.layout.label(text=str(exc), icon="ERROR")

    def execute(self, context):
        plan = self._plan_if_online()
        if plan is None:
            return {"CANCELLED"}
        if not self.confirm:
            self.report({"INFO"}, "GPU runtime plan (nothing installed; confirm in the dialog or pass "
                                  "confirm=True): " + "; ".join(plan.describe())
                                  + "; command: " + plan.command_text(sys.executable))
            return {"CANCELLED"}
        try:
            gpu_runtime.run_install(plan, sys.executable)
        except EiferError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"GPU runtime installed in {plan.target_dir}; restart Blender and choose "
                              f"'Run networks on: CUDA' (or Auto)")
        return {"FINISHED"}


class EIFER_OT_uninstall_gpu_runtime(bpy.types.Operator):
    """Remove the GPU runtime that Install GPU Runtime put into Blender's user modules folder"""

    bl_idname = "eifer.uninstall_gpu_runtime"
    bl_label = "Uninstall GPU Runtime"

    confirm: bpy.props.BoolProperty(name="Confirmed", default=False, options={"HIDDEN", "SKIP_SAVE"})

    def invoke(self, context, event):
        self.confirm = True
        return context.window_manager.invoke_props_dialog(self, width=560, confirm_text="Remove")

    def draw(self, context):
        _draw_lines(self.layout, gpu_runtime.uninstall_plan(gpu_runtime_folder()).describe())

    def execute(self, context):
        plan = gpu_runtime.uninstall_plan(gpu_runtime_folder())
        if not plan.paths:
            self.report({"INFO"}, plan.describe()[0])
            return {"CANCELLED"}
        if not self.confirm:
            self.report({"INFO"}, "Uninstall plan (nothing removed; confirm in the dialog or pass confirm=True): "
                                  + "; ".join(plan.describe()))
            return {"CANCELLED"}
        try:
            removed = gpu_runtime.uninstall(plan)
        except OSError as exc:  # Windows: DLLs loaded in this session are locked
            self.report({"ERROR"}, f"could not remove the GPU runtime ({exc}); restart Blender and try again")
            return {"CANCELLED"}
        self.report({"INFO"}, f"removed {removed} entries from {plan.target_dir}; restart Blender")
        return {"FINISHED"}


CLASSES = (EIFER_OT_install_gpu_runtime, EIFER_OT_uninstall_gpu_runtime)
