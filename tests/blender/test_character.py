"""A character, not a mesh: a Ready Player Me-style avatar (head, teeth, two eyes under one armature),
made here, written by Blender's glTF exporter and read back by its importer, is driven, read and
rendered as one face; jaw and eye bones turn when mapped; the shape-key name matcher knows the
naming conventions avatars come with."""
import contextlib
import io
import math

import bpy
import numpy as np
import pytest
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Vector

from eifer_blender.core.expression.spaces import ARKIT52, match_arkit_names, normalise_shape_name
from eifer_blender.core.tracks import ExpressionTrack
from tests.helpers import extension_module

FPS = 30
EYE_SHAPES = ("eyeBlink", "eyeLookUp", "eyeLookDown", "eyeLookIn", "eyeLookOut")
MESHES = ("Wolf3D_Head", "Wolf3D_Teeth", "EyeLeft", "EyeRight")
JAW = 'key_blocks["jawOpen"].value'


# ---------------------------------------------------------------------------------------------
# Naming conventions (the matcher, no Blender needed)


@pytest.mark.parametrize("shape, arkit", [
    ("eyeBlinkLeft", "eyeBlinkLeft"),  # ARKit camelCase
    ("EyeBlinkLeft", "eyeBlinkLeft"),  # Live Link Face's PascalCase
    ("mouthSmile_L", "mouthSmileLeft"), ("mouthSmile_R", "mouthSmileRight"),  # _L/_R
    ("mouthSmile.L", "mouthSmileLeft"),
    ("Mouth_Smile_Left", "mouthSmileLeft"), ("browDown_Right", "browDownRight"),  # Left/Right
    ("A01_Brow_Inner_Up", "browInnerUp"), ("A38_Mouth_Smile_Left", "mouthSmileLeft"),  # numbered prefixes
    ("mouth_smile_left", "mouthSmileLeft"), ("eye_look_up_r", "eyeLookUpRight"),  # snake_case
    ("jaw_open", "jawOpen"), ("TONGUE_OUT", "tongueOut"),
    ("blendShape1.cheekPuff", "cheekPuff"), ("head_bs.noseSneer_L", "noseSneerLeft"),  # FBX namespaces
])
def test_the_matcher_knows_the_naming_conventions(shape, arkit):
    assert match_arkit_names([shape]) == {arkit: shape}


def test_the_matcher_leaves_vendor_names_and_visemes_to_the_mapping_table():
    shapes = ["Fcl_EYE_Close_L", "Fcl_MTH_A", "viseme_aa", "Basis.001", "mouthSmile_L"]
    assert match_arkit_names(shapes) == {"mouthSmileLeft": "mouthSmile_L"}
    assert normalise_shape_name("A12_Mouth_Smile_L") == "mouthsmileleft"


def test_the_first_of_two_spellings_wins():
    assert match_arkit_names(["jawOpen", "Jaw_Open"]) == {"jawOpen": "jawOpen"}


# ---------------------------------------------------------------------------------------------
# The avatar: made, exported with Blender's glTF exporter, imported back


def _mesh(name, centre, radius, shapes, armature, bone):
    """A small UV sphere with ``shapes`` (each moves the vertices on its own side a little),
    skinned to ``bone`` of ``armature``."""
    mesh = bpy.data.meshes.new(name)
    import bmesh

    bm = bmesh.new()
    bmesh.ops.create_uvsphere(bm, u_segments=12, v_segments=8, radius=radius)
    bm.to_mesh(mesh)
    bm.free()
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.location = centre
    obj.shape_key_add(name="Basis", from_mix=False)
    basis = np.empty(3 * len(mesh.vertices), np.float32)
    mesh.vertices.foreach_get("co", basis)
    for i, shape in enumerate(shapes):
        block = obj.shape_key_add(name=shape, from_mix=False)
        block.value = 0.0
        co = basis.reshape(-1, 3).copy()
        side = co[:, i % 3] > 0
        co[side] += 0.1 * radius * np.array([np.cos(i), np.sin(i), 0.5], np.float32)
        block.data.foreach_set("co", co.ravel())
    obj.parent = armature
    obj.modifiers.new("Armature", "ARMATURE").object = armature
    obj.vertex_groups.new(name=bone).add(list(range(len(mesh.vertices))), 1.0, "REPLACE")
    return obj


def _make_avatar():
    arm_data = bpy.data.armatures.new("Avatar")
    armature = bpy.data.objects.new("Avatar", arm_data)
    bpy.context.scene.collection.objects.link(armature)
    bpy.context.view_layer.objects.active = armature
    bpy.ops.object.mode_set(mode="EDIT")
    for name, head, tail, parent in (("Head", (0, 0, 1.5), (0, 0, 1.75), None),
                                     ("jaw", (0, -0.02, 1.56), (0, -0.09, 1.52), "Head"),
                                     ("LeftEye", (0.032, -0.07, 1.64), (0.032, -0.1, 1.64), "Head"),
                                     ("RightEye", (-0.032, -0.07, 1.64), (-0.032, -0.1, 1.64), "Head")):
        bone = arm_data.edit_bones.new(name)
        bone.head, bone.tail = head, tail
        if parent:
            bone.parent = arm_data.edit_bones[parent]
    bpy.ops.object.mode_set(mode="OBJECT")
    _mesh("Wolf3D_Head", (0, 0, 1.62), 0.11, [*ARKIT52, "viseme_aa"], armature, "Head")
    _mesh("Wolf3D_Teeth", (0, -0.06, 1.55), 0.03, ["jawOpen", "mouthClose"], armature, "jaw")
    for side, x in (("Left", 0.032), ("Right", -0.032)):
        _mesh(f"Eye{side}", (x, -0.08, 1.64), 0.014, [s + side for s in EYE_SHAPES], armature, f"{side}Eye")
    return armature


@pytest.fixture(scope="module")
def avatar_glb(extension, tmp_path_factory):
    """The avatar as Blender's glTF exporter writes it (morph targets + skin)."""
    bpy.ops.wm.read_homefile(use_empty=True)
    _make_avatar()
    path = tmp_path_factory.mktemp("avatar") / "avatar.glb"
    with contextlib.redirect_stdout(io.StringIO()):
        assert bpy.ops.export_scene.gltf(filepath=str(path), export_format="GLB", export_morph=True,
                                         export_skins=True) == {"FINISHED"}
    bpy.ops.wm.read_homefile(use_empty=True)
    return path


@pytest.fixture
def avatar(blender, avatar_glb):
    """The avatar imported by Blender's glTF importer into a fresh scene at 30 fps."""
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = FPS, 1.0
    with contextlib.redirect_stdout(io.StringIO()):
        assert bpy.ops.import_scene.gltf(filepath=str(avatar_glb)) == {"FINISHED"}
    assert all(name in bpy.data.objects for name in MESHES)
    return bpy.data.objects


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """A short simulated Fridlund-22 recording (EDF) with jaw opening and blinks in it."""
    session = extension_module("core.simulator.session").simulate_session(
        "emotions", subject=7, duration_s=8.0, rate_hz=2048.0, fps=60.0, seed=3)
    path = tmp_path_factory.mktemp("character") / "emotions.edf"
    extension_module("core.recording").write_recording(session.recording, path)
    return path


def _known_track(names=ARKIT52, n_frames=40, seed=2):
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames)[:, None] / FPS
    values = 0.5 + 0.45 * np.sin(2 * np.pi * rng.uniform(0.3, 1.5, len(names)) * t + rng.uniform(0, 6.3, len(names)))
    return ExpressionTrack(values, list(names), FPS, "arkit52", "1")


def _curve(obj, path=JAW):
    keyframes = extension_module("blender.anim.keyframes")
    bag = keyframes.assigned_channelbag(obj.data.shape_keys)
    assert bag is not None, f"{obj.name} has no action"
    return keyframes.read_keys(bag.fcurves.find(path))


# ---------------------------------------------------------------------------------------------
# One track drives every mesh


def test_choosing_the_teeth_binds_the_whole_character(avatar):
    rig = extension_module("blender.rigs").rig_for(avatar["Wolf3D_Teeth"])
    assert type(rig).__name__ == "CharacterRig" and rig.face == avatar["Wolf3D_Head"]  # the head: most shapes
    report = {m.name: m for m in rig.meshes}
    assert list(report)[0] == "Wolf3D_Head" and sorted(report) == sorted(MESHES)  # head first
    assert len(report["Wolf3D_Head"].matched) == 52 and report["Wolf3D_Head"].unmatched == ["viseme_aa"]
    assert set(report["Wolf3D_Teeth"].matched) == {"jawOpen", "mouthClose"}
    assert set(report["EyeLeft"].matched) == {s + "Left" for s in EYE_SHAPES}
    assert rig.binding["jawOpen"] == "jawOpen" and rig.sources["jawOpen"].face.name == "Wolf3D_Head"
    # choosing the armature picks the same character
    same = extension_module("blender.rigs").rig_for(avatar["Avatar"])
    assert [m.name for m in same.meshes] == list(report)


def test_drive_keys_all_four_meshes_and_the_teeth_follow_jaw_open(avatar, recording):
    drive = extension_module("blender.jobs.drive")
    report = drive.drive(avatar["Wolf3D_Teeth"], str(recording), start_frame=1, providers="cpu")
    assert "jawOpen" in report.result.driven
    assert report.meshes[0].name == "Wolf3D_Head" and sorted(m.name for m in report.meshes) == sorted(MESHES)
    for mesh in report.meshes:
        assert mesh.keyed, f"{mesh.name} was not keyed"
        assert avatar[mesh.name].data.shape_keys.animation_data.action is not None
    head_frames, head_jaw = _curve(avatar["Wolf3D_Head"])
    teeth_frames, teeth_jaw = _curve(avatar["Wolf3D_Teeth"])
    np.testing.assert_array_equal(teeth_frames, head_frames)
    assert np.abs(teeth_jaw - head_jaw).max() <= 1e-6 and np.ptp(head_jaw) > 0.05
    # and as Blender evaluates them, frame by frame
    frames = np.arange(report.frame_start, report.frame_end + 1, 7)
    head_key, teeth_key = (avatar[n].data.shape_keys.key_blocks["jawOpen"] for n in MESHES[:2])
    for frame in frames:
        bpy.context.scene.frame_set(int(frame))
        assert abs(head_key.value - teeth_key.value) <= 1e-6
    eye_frames, eye_blink = _curve(avatar["EyeLeft"], 'key_blocks["eyeBlinkLeft"].value')
    np.testing.assert_allclose(eye_blink, _curve(avatar["Wolf3D_Head"], 'key_blocks["eyeBlinkLeft"].value')[1],
                               atol=1e-6)


def test_infer_reads_the_head_whichever_mesh_is_chosen(avatar):
    rigs = extension_module("blender.rigs")
    infer = extension_module("blender.jobs.infer")
    track = _known_track()
    rigs.rig_for(avatar["Wolf3D_Head"]).key(track, start_frame=1, action_name="EIFER known")
    from_eye = infer.infer_muscles(avatar["EyeLeft"], frame_range=(1, 40), providers="cpu")
    from_head = infer.infer_muscles(avatar["Wolf3D_Head"], frame_range=(1, 40), providers="cpu")
    np.testing.assert_allclose(from_eye.muscles.values, from_head.muscles.values, atol=1e-6)
    read = rigs.rig_for(avatar["EyeLeft"]).sample(np.arange(1, 41))
    assert np.abs(read.select(ARKIT52).values - track.values).max() <= 1e-6


def test_arkit_names_spread_over_meshes_are_read_from_the_mesh_that_has_them(blender):
    arkit = extension_module("blender.rigs")
    root = bpy.data.objects.new("Character", None)
    bpy.context.scene.collection.objects.link(root)
    face = _plain_mesh("Face", ["mouthSmile_L", "mouthSmile_R", "jaw_open", "browInnerUp"], parent=root)
    eyes = _plain_mesh("Eyes", ["Eye_Blink_L", "Eye_Blink_R"], parent=root)
    _plain_mesh("Other", ["jawOpen"])  # a mesh of another character in the same scene
    rig = arkit.rig_for(eyes)
    assert [m.name for m in rig.meshes] == ["Face", "Eyes"] and rig.face == face
    track = _known_track(["mouthSmileLeft", "jawOpen", "eyeBlinkLeft", "eyeBlinkRight"], 20)
    rig.key(track, start_frame=1, action_name="spread")
    read = rig.sample(np.arange(1, 21))
    assert np.abs(read.select(track.names).values - track.values).max() <= 1e-6
    assert bpy.data.objects["Other"].data.shape_keys.animation_data is None


def test_vendor_names_bind_across_a_collection_through_the_mapping_table(blender):
    rigs = extension_module("blender.rigs")
    collection = bpy.data.collections.new("VRoid")
    bpy.context.scene.collection.children.link(collection)
    face = _plain_mesh("Face", ["Fcl_ALL_Neutral", "Fcl_EYE_Close_L", "Fcl_EYE_Close_R", "Fcl_MTH_A"],
                       collection=collection)
    _plain_mesh("FaceMouth", ["Fcl_MTH_A", "Fcl_MTH_Close"], collection=collection)
    mapping = {"eyeBlinkLeft": "Fcl_EYE_Close_L", "eyeBlinkRight": "Fcl_EYE_Close_R", "jawOpen": "Fcl_MTH_A",
               "mouthClose": "Fcl_MTH_Close"}
    with pytest.raises(extension_module("core.errors").InputError, match="ARKit names"):
        rigs.rig_for(face).bind(["jawOpen"])  # without the table: nothing matches, and it says so
    rig = rigs.rig_for(face, mapping=mapping)
    report = {m.name: m for m in rig.meshes}
    assert report["Face"].matched == {"eyeBlinkLeft": "Fcl_EYE_Close_L", "eyeBlinkRight": "Fcl_EYE_Close_R",
                                      "jawOpen": "Fcl_MTH_A"}
    assert report["Face"].unmatched == ["Fcl_ALL_Neutral"]
    assert report["FaceMouth"].matched == {"jawOpen": "Fcl_MTH_A", "mouthClose": "Fcl_MTH_Close"}
    rig.key(_known_track(["jawOpen", "mouthClose"], 10), start_frame=1, action_name="vroid")
    np.testing.assert_allclose(_curve(face, 'key_blocks["Fcl_MTH_A"].value')[1],
                               _curve(bpy.data.objects["FaceMouth"], 'key_blocks["Fcl_MTH_A"].value')[1])


def test_a_mesh_that_stands_alone_stays_a_plain_arkit_rig(blender):
    rigs = extension_module("blender.rigs")
    _plain_mesh("Other", ["jawOpen"])
    assert type(rigs.rig_for(_plain_mesh("Face", ["jawOpen", "mouthClose"]))).__name__ == "ArkitRig"


def _plain_mesh(name, shapes, *, parent=None, collection=None):
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata([(0, 0, 0), (0.1, 0, 0), (0, 0, 0.1)], [], [(0, 1, 2)])
    obj = bpy.data.objects.new(name, mesh)
    (collection or bpy.context.scene.collection).objects.link(obj)
    obj.parent = parent
    obj.shape_key_add(name="Basis", from_mix=False)
    for shape in shapes:
        obj.shape_key_add(name=shape, from_mix=False).value = 0.0
    return obj


# ---------------------------------------------------------------------------------------------
# Jaw and eye bones


def _x_degrees(pose_bone):
    w, x = pose_bone.rotation_quaternion[0], pose_bone.rotation_quaternion[1]
    return math.degrees(2.0 * math.atan2(x, w))


def test_the_jaw_bone_follows_jaw_open_times_its_degrees(avatar):
    rigs = extension_module("blender.rigs")
    bones = {"jawOpen": ("jaw", "X", 25.0), "eyeLookUpLeft": ("LeftEye", "X", -15.0),
             "eyeLookDownLeft": ("LeftEye", "X", 20.0)}
    rig = rigs.rig_for(avatar["Wolf3D_Head"], bones=bones)
    track = _known_track(["jawOpen", "eyeLookUpLeft", "eyeLookDownLeft"], 30)
    track.values[5, 0] = 1.7  # past full weight: the jaw stops at its 25°
    rig.key(track, start_frame=1, action_name="EIFER bones")
    armature = avatar["Avatar"]
    assert armature.animation_data.action.name == "EIFER bones (bones)"
    jaw, eye = armature.pose.bones["jaw"], armature.pose.bones["LeftEye"]
    for row in range(30):
        bpy.context.scene.frame_set(row + 1)
        weights = np.clip(track.values[row], 0, 1)
        assert _x_degrees(jaw) == pytest.approx(25.0 * weights[0], abs=1e-3)
        assert _x_degrees(eye) == pytest.approx(-15.0 * weights[1] + 20.0 * weights[2], abs=1e-3)
    assert _curve(avatar["Wolf3D_Teeth"])[1].size == 30  # the shape keys are keyed as well


@pytest.mark.parametrize("mode", ["XYZ", "ZXY", "AXIS_ANGLE"])
def test_bones_in_euler_or_axis_angle_mode_turn_the_same(avatar, mode):
    rigs = extension_module("blender.rigs")
    jaw = avatar["Avatar"].pose.bones["jaw"]
    jaw.rotation_mode = mode
    track = _known_track(["jawOpen"], 12)
    rigs.rig_for(avatar["Wolf3D_Head"], bones={"jawOpen": ("jaw", "X", 25.0)}).key(
        track, start_frame=1, action_name="modes")
    for row in range(12):
        bpy.context.scene.frame_set(row + 1)
        degrees = math.degrees(jaw.matrix_basis.to_quaternion().angle)
        assert degrees == pytest.approx(25.0 * track.values[row, 0], abs=1e-3)
        assert jaw.matrix_basis.to_quaternion().axis.x == pytest.approx(1.0, abs=1e-4)


def test_a_bone_mapping_saved_on_the_armature_is_used(avatar):
    rigs = extension_module("blender.rigs")
    avatar["Avatar"]["eifer_bones"] = "jawOpen=jaw:X:25; eyeLookUpRight = RightEye:X:-15"
    rig = rigs.rig_for(avatar["Wolf3D_Teeth"])
    assert [(m.arkit, m.bone, m.axis, m.degrees) for m in rig.bones] == [("jawOpen", "jaw", "X", 25.0),
                                                                       ("eyeLookUpRight", "RightEye", "X", -15.0)]
    track = _known_track(["jawOpen"], 10)
    rig.key(track, start_frame=1, action_name="saved")
    bpy.context.scene.frame_set(4)
    assert _x_degrees(avatar["Avatar"].pose.bones["jaw"]) == pytest.approx(25.0 * track.values[3, 0], abs=1e-3)
    avatar["Avatar"]["eifer_bones"] = "jawOpen=jaw"
    with pytest.raises(extension_module("core.errors").InputError, match="ARKIT=BONE:AXIS:DEGREES"):
        rigs.rig_for(avatar["Wolf3D_Teeth"])


def test_bones_are_off_unless_mapped(avatar, recording):
    extension_module("blender.jobs.drive").drive(avatar["Wolf3D_Head"], str(recording), providers="cpu")
    assert avatar["Avatar"].animation_data is None or avatar["Avatar"].animation_data.action is None


@pytest.mark.parametrize("bones, message", [
    ({"jawOpen": ("nojaw", "X", 25.0)}, "has no bone 'nojaw'"),
    ({"jawOpen": ("jaw", "W", 25.0)}, "is not X, Y or Z"),
    ({"jawOpen": ("jaw", "X", float("nan"))}, "within ±180"),
    ({"jawOpn": ("jaw", "X", 25.0)}, "not an ARKit shape name"),
])
def test_a_bad_bone_mapping_is_a_clear_error_and_changes_nothing(avatar, recording, bones, message):
    errors = extension_module("core.errors")
    drive = extension_module("blender.jobs.drive")
    objects, actions = len(bpy.data.objects), len(bpy.data.actions)
    with pytest.raises(errors.InputError, match=message):
        drive.drive(avatar["Wolf3D_Teeth"], str(recording), providers="cpu", bones=bones)
    assert (len(bpy.data.objects), len(bpy.data.actions)) == (objects, actions)
    assert all(avatar[n].data.shape_keys.animation_data is None for n in MESHES)


def test_a_bone_mapping_needs_an_armature(blender):
    errors = extension_module("core.errors")
    with pytest.raises(errors.InputError, match="needs the character's armature"):
        extension_module("blender.rigs").rig_for(_plain_mesh("Face", ["jawOpen"]), bones={"jawOpen": ("jaw", "X", 20)})


def test_the_command_line_drives_the_character_with_a_bone_and_names_every_mesh(avatar, recording, tmp_path, capsys):
    blend = tmp_path / "avatar.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    cli = extension_module("cli")
    out = tmp_path / "driven.blend"
    assert cli.main(["drive", "--emg", str(recording), "--blend", str(blend), "--object", "EyeRight",
                     "--out", str(out), "--providers", "cpu", "--bone", "jawOpen=jaw:X:25"]) == 0
    printed = capsys.readouterr().out
    for name in MESHES:
        assert f"mesh {name}:" in printed
    assert "viseme_aa" in printed  # the head's shape key without an ARKit name
    armature = bpy.data.objects["Avatar"]
    assert armature.animation_data.action is not None
    assert cli.main(["drive", "--emg", str(recording), "--blend", str(blend), "--object", "EyeRight",
                     "--out", str(tmp_path / "not.blend"), "--bone", "jawOpen=jaw"]) != 0
    assert not (tmp_path / "not.blend").exists()
    assert "ARKIT=BONE:AXIS:DEGREES" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Rendering an imported character


def _pixels(path):
    image = bpy.data.images.load(str(path))
    try:
        width, height = image.size
        pixels = np.empty(width * height * 4, np.float32)
        image.pixels.foreach_get(pixels)
        return pixels.reshape(height, width, 4)[::-1, :, :3]  # top row first
    finally:
        bpy.data.images.remove(image)


def test_a_gltf_with_the_importers_helpers_renders_the_face(avatar, tmp_path, capsys):
    framing = extension_module("blender.jobs.framing")
    render = extension_module("blender.jobs.render")
    scene = bpy.context.scene
    helper = bpy.data.collections["glTF_not_exported"]
    helper.hide_render = False  # as importers leave it: hidden in the viewport, renderable
    for obj in helper.objects:  # the helper sphere round the head, where a face camera stands
        obj.location, obj.scale = (0.0, -0.2, 1.62), (2.0, 2.0, 2.0)
    blocker = _plain_mesh("Hidden card", [])
    blocker.scale = (30, 30, 30)
    blocker.location = (-1.5, -0.15, 0.0)
    blocker.hide_set(True)  # hidden in the viewport: renders unless left out
    face = avatar["Wolf3D_Head"]
    left_out = framing.left_out_of_render(scene, face)
    assert {o.name for o in left_out} == {*(o.name for o in helper.objects), "Hidden card"}
    camera = render.setup_stage(scene, face, resolution_px=96)
    bpy.context.view_layer.update()  # the camera's matrix_world
    # the frame is the box of the face's meshes, and the camera sees all of them, whole
    lo, hi = framing.face_bounds(face)
    corners = np.array([avatar[n].matrix_world @ Vector(c) for n in MESHES for c in avatar[n].bound_box])
    np.testing.assert_allclose(lo, corners.min(axis=0), atol=1e-6)
    np.testing.assert_allclose(hi, corners.max(axis=0), atol=1e-6)
    for name in MESHES:
        obj = avatar[name]
        for vertex in obj.data.vertices:
            x, y, z = world_to_camera_view(scene, camera, obj.matrix_world @ vertex.co)
            assert 0.02 <= x <= 0.98 and 0.02 <= y <= 0.98 and z > camera.data.clip_start, name
    # rendered without the helpers, the face stands out from the background; with them, it does not
    blend = tmp_path / "avatar.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    cli = extension_module("cli")
    assert cli.main(["render", "--blend", str(blend), "--object", "Wolf3D_Teeth", "--out",
                     str(tmp_path / "face.png"), "--resolution", "96"]) == 0
    printed = capsys.readouterr().out
    assert "left out of the render:" in printed and "Hidden card" in printed
    image = _pixels(tmp_path / "face.png")
    face_region, background = image[36:60, 36:60].mean(axis=(0, 1)), image[:8, :8].mean(axis=(0, 1))
    assert np.abs(face_region - background).max() > 0.1
    scene = bpy.context.scene  # the opened file's
    assert not bpy.data.objects["Hidden card"].hide_render  # shown again after the render
    spoiled = _pixels(render.render_still(scene, 1, tmp_path / "spoiled.png"))  # the helpers left in
    assert np.abs(spoiled[:8, :8].mean(axis=(0, 1)) - background).max() > 0.2  # the helper sphere all round
