"""Scene-level settings shown in the EIFER sidebar."""
import bpy


class EiferSceneSettings(bpy.types.PropertyGroup):
    face: bpy.props.PointerProperty(
        name="Face", type=bpy.types.Object, description="The face the EMG drives or is inferred from"
    )


CLASSES = (EiferSceneSettings,)


def register_properties():
    bpy.types.Scene.eifer = bpy.props.PointerProperty(type=EiferSceneSettings)


def unregister_properties():
    del bpy.types.Scene.eifer
