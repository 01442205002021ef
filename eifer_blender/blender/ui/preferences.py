import bpy

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
            ("AUTO", "Auto", "CUDA when onnxruntime-gpu and a GPU are usable, else CPU"),
            ("CPU", "CPU", "Always the CPU"),
            ("CUDA", "CUDA", "NVIDIA GPU through onnxruntime-gpu; falls back to CPU with a warning"),
        ],
        default="AUTO",
    )

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "flame_model_path")
        layout.prop(self, "execution_provider")


def get_preferences(context=None):
    context = context or bpy.context
    return context.preferences.addons[ADDON_ID].preferences


CLASSES = (EIFER_AP_preferences,)
