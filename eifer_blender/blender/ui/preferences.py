import bpy

from . import gpu_ops

# "bl_ext.<repo>.eifer_blender" when loaded as an extension, "eifer_blender" otherwise
ADDON_ID = __package__.removesuffix(".blender.ui")


class EIFER_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    flame_model_path: bpy.props.StringProperty(
        name="FLAME model",
        description="Your own FLAME model file (.pkl or .npz); FLAME is never shipped with EIFER",
        subtype="FILE_PATH",
    )
    execution_provider: bpy.props.EnumProperty(
        name="Run networks on",
        items=[
            ("AUTO", "Auto", "CUDA when onnxruntime-gpu and an NVIDIA GPU are usable, else DirectML on "
                             "Windows when onnxruntime-directml is installed, else CPU"),
            ("CPU", "CPU", "Always the CPU"),
            ("CUDA", "CUDA", "NVIDIA GPU through onnxruntime-gpu (Install GPU Runtime below); falls back to "
                             "CPU with a warning that says why"),
            ("DIRECTML", "DirectML", "Any DirectX 12 GPU on Windows through onnxruntime-directml; falls back "
                                     "to CPU with a warning"),
            ("COREML", "CoreML", "Apple's Core ML on macOS (built into the bundled ONNX Runtime); not measured "
                                 "faster than the CPU for the small shipped networks"),
        ],
        default="AUTO",
    )

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "flame_model_path")
        layout.prop(self, "execution_provider")
        box = layout.box()
        box.label(text="GPU runtime (optional, NVIDIA, about 2 GB download)")
        box.label(text=gpu_ops.installed_status())
        row = box.row()
        row.operator(gpu_ops.EIFER_OT_install_gpu_runtime.bl_idname, icon="IMPORT")
        row.operator(gpu_ops.EIFER_OT_uninstall_gpu_runtime.bl_idname, icon="TRASH")


def get_preferences(context=None):
    context = context or bpy.context
    return context.preferences.addons[ADDON_ID].preferences


CLASSES = (EIFER_AP_preferences,)
