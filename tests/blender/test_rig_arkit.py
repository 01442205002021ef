import importlib

import bpy
import numpy as np
import pytest

from tests.conftest import EXTENSION_MODULE


def _mesh_with_keys(names):
    mesh = bpy.data.meshes.new("m")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    obj = bpy.data.objects.new("Face", mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.shape_key_add(name="Basis", from_mix=False)
    for name in names:
        obj.shape_key_add(name=name, from_mix=False).value = 0.0
    return obj


@pytest.fixture
def rig(blender):
    return importlib.import_module(f"{EXTENSION_MODULE}.blender.rigs.arkit")


def test_binding_tolerates_naming_conventions_and_swaps(rig):
    obj = _mesh_with_keys(["A38_Mouth_Smile_Left", "mouthSmile_R", "JAWOPEN", "unrelated"])
    binding = rig.arkit_binding(obj)
    assert binding == {"mouthSmileLeft": "A38_Mouth_Smile_Left", "mouthSmileRight": "mouthSmile_R",
                       "jawOpen": "JAWOPEN"}
    swapped = rig.arkit_binding(obj, swap_sides=True)
    assert swapped["mouthSmileRight"] == "A38_Mouth_Smile_Left"
    assert rig.arkit_binding(obj, overrides={"browInnerUp": "unrelated"})["browInnerUp"] == "unrelated"


def test_key_track_then_sample_reads_it_back_and_stashes_hand_keys(rig, blender):
    tracks = importlib.import_module(f"{EXTENSION_MODULE}.core.tracks")
    obj = _mesh_with_keys(["mouthSmileLeft", "jawOpen"])
    key = obj.data.shape_keys
    key.key_blocks["jawOpen"].value = 0.3
    key.key_blocks["jawOpen"].keyframe_insert("value", frame=1)
    hand_action = key.animation_data.action
    values = np.linspace(0, 1, 20)[:, None] * [1.0, 0.5]
    track = tracks.ExpressionTrack(values, ["mouthSmileLeft", "jawOpen"], fps=24, space="arkit52", units="1")
    binding = rig.arkit_binding(obj)
    rig.key_expression_track(obj, track, binding, start_frame=5, action_name="driven")
    sampled = rig.sample_shape_keys(obj, binding, np.arange(5, 25))
    np.testing.assert_allclose(sampled.select(track.names).values, values, atol=1e-6)
    assert hand_action.use_fake_user and hand_action.name in bpy.data.actions


def test_mesh_without_arkit_keys_names_what_is_missing(rig):
    errors = importlib.import_module(f"{EXTENSION_MODULE}.core.errors")
    obj = _mesh_with_keys(["foo"])
    with pytest.raises(errors.InputError, match="no shape keys with ARKit names"):
        rig.require_binding(obj, ["mouthSmileLeft"], rig.arkit_binding(obj))
