import importlib

import bpy
import numpy as np

from tests.conftest import EXTENSION_MODULE


def test_emg_object_round_trip_and_reimport_replaces_only_its_data(blender):
    emg_object = importlib.import_module(f"{EXTENSION_MODULE}.blender.anim.emg_object")
    tracks = importlib.import_module(f"{EXTENSION_MODULE}.core.tracks")
    montage = importlib.import_module(f"{EXTENSION_MODULE}.core.recording.montage")
    scene = bpy.context.scene
    rng = np.random.default_rng(0)
    values = rng.random((50, 22)) * 40
    track = tracks.MuscleTrack(values, montage.FRIDLUND22, fps=scene.render.fps, space="fridlund22", units="uV")
    other = emg_object.write_emg_object(scene, track, name="other", kind="recording", source="/data/b.edf")
    obj = emg_object.write_emg_object(scene, track, name="rec", kind="recording", source="/data/a.edf", start_frame=11)
    assert obj.users_collection[0].name == "EIFER"
    back = emg_object.read_emg_object(obj)
    np.testing.assert_allclose(back.values, values, rtol=1e-6)
    assert back.names == montage.FRIDLUND22
    scene.frame_set(11 + 7)
    assert obj["emg:Zyg_L"] == np.float32(values[7, montage.FRIDLUND22.index("Zyg_L")])

    again = emg_object.write_emg_object(scene, tracks.MuscleTrack(values[:10] * 2, montage.FRIDLUND22, scene.render.fps,
                                                                  "fridlund22", "uV"),
                                        name="rec", kind="recording", source="/data/a.edf")
    assert again == obj and len(bpy.data.objects) == 2
    np.testing.assert_allclose(emg_object.read_emg_object(obj).values, values[:10] * 2, rtol=1e-6)
    np.testing.assert_allclose(emg_object.read_emg_object(other).values, values, rtol=1e-6)
    assert len([a for a in bpy.data.actions if a.users]) == 2
