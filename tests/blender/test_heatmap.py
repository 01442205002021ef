"""The muscle heatmap on the face: site placement, weights, node group, drivers, render, toggle.

The pixel tests render tiny Cycles and Workbench images at two frames of different activation and
check that the face colour differs where the active muscle is, with no frame handler registered,
and that the eyes, teeth and mouth keep their materials.
"""
import importlib

import bpy
import numpy as np
import pytest
from mathutils import Vector

from tests.conftest import EXTENSION_MODULE
from tests.helpers import extension_modules, nearest_vertices


def _module(name):
    return importlib.import_module(f"{EXTENSION_MODULE}.{name}")


@pytest.fixture
def hm(blender):
    return extension_modules("core.heads.electrodes", "blender.jobs.heatmap")


@pytest.fixture
def head(blender):
    return _module("blender.rigs.openhead").build_open_head(bpy.context.scene.collection)


def _emg(names=None, n_frames=20, active=("Zyg_L",), level=40.0, start_frame=1, units="uV"):
    """An EMG object: every channel at rest (2 µV) except ``active`` channels, which ramp up."""
    montage = _module("core.recording.montage")
    tracks = _module("core.tracks")
    names = tuple(names or montage.FRIDLUND22)
    values = np.full((n_frames, len(names)), 2.0)
    ramp = np.linspace(0.0, level, n_frames)
    for name in active:
        values[:, names.index(name)] = ramp
    track = tracks.MuscleTrack(values, names, 24.0, "fridlund22", units)
    return _module("blender.anim.emg_object").write_emg_object(bpy.context.scene, track, name="EMG test",
                                                          kind="inferred", source="test", start_frame=start_frame)


def _face_coords(head_obj):
    core = _module("core.heads.openhead")
    return core.face_coordinates(core.load_open_head())


def test_sites_land_on_the_right_side_and_region_of_the_open_head(hm, head):
    montage = _module("core.recording.montage")
    core = _module("core.heads.openhead")
    frame, mask = hm.face_frame_for(head)
    assert frame.method == "open head landmarks"
    vertices = np.array([v.co for v in head.data.vertices])
    points = hm.project_sites(vertices, hm.mesh_triangles(head.data), frame, montage.fridlund_sites_mm(), mask)
    sites = nearest_vertices(vertices, points)
    coords = _face_coords(head)
    assert mask[sites].all()  # skin only
    lateral, up = coords[sites, 0], coords[sites, 1]
    for i, name in enumerate(montage.FRIDLUND22):
        side = name.rsplit("_", 1)[1]
        assert (lateral[i] > 0) == (side == "L"), name  # subject's left = +X
    data = core.load_open_head()
    index = {n: i for i, n in enumerate(montage.FRIDLUND22)}
    assert core.region(data, "cheek_L")[sites[index["Zyg_L"]]]
    assert core.region(data, "cheek_R")[sites[index["Zyg_R"]]]
    assert core.region(data, "brow_L")[sites[index["Corr_L"]]]
    # brow sites above the eyes, mouth and chin sites below the mouth corners, frontalis highest
    mouth_up = coords[data.landmarks["mouth_corner_L"], 1]
    for name in ("medFront_L", "latFront_L", "Corr_L", "DepSup_L"):
        assert up[index[name]] > 0.15, name
    for name in ("DAO_L", "Ment_L"):
        assert up[index[name]] < mouth_up, name
    assert up[index["medFront_L"]] > up[index["Corr_L"]]
    # each site is on the face's front skin: near a skin vertex, at most 3 cm behind the eye
    # centres (7 cm for the masseter on the side of the jaw); the back of the head is ~10 cm behind
    depth = (points - frame.origin) @ frame.forward
    assert np.linalg.norm(vertices[sites] - points, axis=1).max() < 0.01
    for i, name in enumerate(montage.FRIDLUND22):
        assert depth[i] > (-0.07 if name.startswith("Mass") else -0.03), name
    assert depth[index["medFront_L"]] > 0 and depth[index["Corr_L"]] > 0


def test_weights_fall_off_with_distance_and_sum_to_at_most_one(hm):
    vertices = np.array([[0.0, 0, 0], [0.01, 0, 0], [0.02, 0, 0], [0.2, 0, 0]])
    weights = hm.site_weights(vertices, np.array([[0.0, 0, 0], [0.02, 0, 0]]), sigma=0.01)
    assert weights[0, 0] > weights[1, 0] > weights[2, 0] and weights[3].sum() == 0
    assert np.all(weights.sum(axis=1) <= 1 + 1e-6)
    assert weights[1, 0] == pytest.approx(weights[1, 1])  # midway: shared equally


def test_enable_writes_attributes_material_and_drivers_and_disable_restores(hm, head):
    emg = _emg()
    data_materials = [m.name for m in head.data.materials]
    info = hm.enable_heatmap(head, emg)
    assert info.channels == list(_module("core.recording.montage").FRIDLUND22)
    names = {a.name for a in head.data.attributes if a.name.startswith(hm.ATTRIBUTE_PREFIX)}
    assert len(names) == 22
    zyg = np.empty(len(head.data.vertices), dtype=np.float32)
    head.data.attributes[hm.ATTRIBUTE_PREFIX + "Zyg_L"].data.foreach_get("value", zyg)
    zyg_vertex = nearest_vertices(np.array([v.co for v in head.data.vertices]),
                                     info.site_points[[info.channels.index("Zyg_L")]])[0]
    assert zyg[zyg_vertex] > 0.5 and (zyg == 0).mean() > 0.8
    # only the skin shows the heat material: eyes, teeth and mouth keep theirs
    assert [(slot.link, slot.material.name) for slot in head.material_slots] == [
        ("OBJECT", info.material.name), *(("DATA", name) for name in data_materials[1:])]
    assert [m.name for m in head.data.materials] == data_materials  # the mesh's own materials kept
    assert head.modifiers[-1].type == "NODES" and head.modifiers[-1].node_group == info.node_group
    assert head.data.color_attributes.active_color.name == hm.HEAT_COLOUR_ATTRIBUTE
    assert hm.workbench_colour_type(head) == "VERTEX"
    drivers = info.node_group.animation_data.drivers
    assert len(drivers) == 22
    for fcurve in drivers:
        assert fcurve.driver.type == "AVERAGE" and fcurve.driver.variables[0].targets[0].id == emg
    assert info.p95[info.channels.index("Zyg_L")] == pytest.approx(np.percentile(np.linspace(0, 40, 20), 95),
                                                                   rel=1e-5)
    assert hm.heatmap_source(head) == emg
    # the driven Value node follows the curve, frame by frame, with no handler
    scene = bpy.context.scene
    node = info.node_group.nodes["emg Zyg_L"]
    scene.frame_set(20)
    assert node.outputs[0].default_value == pytest.approx(40.0, rel=1e-4)
    scene.frame_set(1)
    assert node.outputs[0].default_value == pytest.approx(0.0, abs=1e-4)

    material_name, group_name = info.material.name, info.node_group.name
    assert hm.disable_heatmap(head)
    assert len(head.modifiers) == 0 and group_name not in bpy.data.node_groups
    assert head.data.color_attributes.active_color.name == _module("core.heads.openhead").COLOUR_ATTRIBUTE
    assert hm.HEAT_COLOUR_ATTRIBUTE not in head.data.color_attributes
    assert all(slot.link == "DATA" for slot in head.material_slots)
    assert [s.material.name for s in head.material_slots] == data_materials
    assert not any(a.name.startswith(hm.ATTRIBUTE_PREFIX) for a in head.data.attributes)
    assert hm.heatmap_source(head) is None and material_name not in bpy.data.materials
    assert not hm.disable_heatmap(head)


def test_user_object_materials_and_slotless_meshes_come_back(hm, head):
    mine = bpy.data.materials.new("mine")
    head.material_slots[0].link = "OBJECT"
    head.material_slots[0].material = mine
    emg = _emg()
    hm.enable_heatmap(head, emg)
    hm.enable_heatmap(head, emg)  # a second call (refresh) must not save the heatmap as "original"
    hm.disable_heatmap(head)
    assert head.material_slots[0].link == "OBJECT" and head.material_slots[0].material == mine
    assert head.material_slots[1].link == "DATA"

    mesh = bpy.data.meshes.new("plain")
    mesh.from_pydata([(x, -0.1, z) for x in (-0.1, 0, 0.1) for z in (0, 0.1, 0.2)], [],
                     [(0, 1, 4, 3), (1, 2, 5, 4), (3, 4, 7, 6), (4, 5, 8, 7)])
    plain = bpy.data.objects.new("plain", mesh)
    bpy.context.scene.collection.objects.link(plain)
    assert hm.workbench_colour_type(plain) == "MATERIAL"
    info = hm.enable_heatmap(plain, emg)
    assert info.frame.method.startswith("bounding box") and len(plain.material_slots) == 1
    assert hm.workbench_colour_type(plain) == "VERTEX"
    hm.disable_heatmap(plain)
    assert hm.workbench_colour_type(plain) == "MATERIAL" and not plain.modifiers
    assert len(plain.material_slots) == 0 and len(mesh.materials) == 0


def test_refresh_gives_back_the_slots_an_earlier_build_had_covered(hm, head):
    emg = _emg()
    info = hm.enable_heatmap(head, emg)
    for slot in head.material_slots:  # as the earlier version left it: every slot on the heatmap
        slot.link, slot.material = "OBJECT", info.material
    hm.enable_heatmap(head, emg)
    assert [slot.link for slot in head.material_slots] == ["OBJECT", "DATA", "DATA", "DATA"]


def test_bad_sources_are_refused_and_change_nothing(hm, head):
    with pytest.raises(_module("core.errors").InputError, match="not an EMG object"):
        hm.enable_heatmap(head, head)
    odd = _emg(names=("a", "b"), active=("a",))
    with pytest.raises(_module("core.errors").InputError, match="no channel with a known electrode site"):
        hm.enable_heatmap(head, odd)
    assert not hm.is_enabled(head) and not any(a.name.startswith(hm.ATTRIBUTE_PREFIX) for a in head.data.attributes)
    assert all(slot.link == "DATA" for slot in head.material_slots)


def _render(scene, frame, path):
    scene.frame_set(frame)
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    image = bpy.data.images.load(str(path))
    pixels = np.array(image.pixels[:], dtype=np.float32).reshape(image.size[1], image.size[0], 4)
    bpy.data.images.remove(image)
    return pixels[..., :3]


def test_rendered_heatmap_changes_with_activation_without_a_frame_handler(hm, head, tmp_path):
    render = _module("blender.jobs.render")
    scene = bpy.context.scene
    handlers_before = (list(bpy.app.handlers.frame_change_pre), list(bpy.app.handlers.frame_change_post))
    emg = _emg(active=("Zyg_L", "Zyg_R"), level=40.0)
    hm.enable_heatmap(head, emg)
    render.setup_stage(scene, head, resolution_px=64, engine="CYCLES", samples=4)
    scene.render.image_settings.file_format = "PNG"
    rest = _render(scene, 1, tmp_path / "rest.png")
    smile = _render(scene, 20, tmp_path / "smile.png")
    assert (list(bpy.app.handlers.frame_change_pre), list(bpy.app.handlers.frame_change_post)) == handlers_before
    difference = np.abs(smile - rest).sum(axis=2)
    changed = difference > 0.05
    assert changed.sum() >= 10  # the cheeks light up
    # the change sits in the lower half of the face, on both sides of the midline (image rows go up)
    rows, cols = np.nonzero(changed)
    assert rows.mean() < 40 and cols.min() < 32 < cols.max()
    # and with the heatmap off the two frames render alike (the face itself did not move)
    hm.disable_heatmap(head)
    assert np.abs(_render(scene, 20, tmp_path / "off20.png") - _render(scene, 1, tmp_path / "off1.png")).max() < 0.05


def test_workbench_shows_the_heat_where_the_active_muscle_is_and_keeps_eye_and_teeth_materials(hm, head, tmp_path):
    from bpy_extras.object_utils import world_to_camera_view

    render = _module("blender.jobs.render")
    rig = _module("blender.rigs.openhead")
    scene = bpy.context.scene
    size = 96
    render.setup_stage(scene, head, resolution_px=size)  # Workbench
    rig.use_painted_colours(scene)
    scene.display.shading.light = "FLAT"  # pixels = the colours themselves, no shading
    scene.render.image_settings.file_format = "PNG"
    plain = _render(scene, 20, tmp_path / "plain.png")
    info = hm.enable_heatmap(head, _emg(names=("Zyg_L",), active=("Zyg_L",)))
    slots = {slot.material.name: slot.link for slot in head.material_slots}
    for key in ("eyes", "teeth", "mouth"):
        assert slots[rig.MATERIAL_DATA_NAMES[key]] == "DATA"
    rest = _render(scene, 1, tmp_path / "rest.png")
    active = _render(scene, 20, tmp_path / "active.png")
    # Zyg_L at 0: the face shows its own colours (brows, eyes, teeth, lips as without the heatmap)
    assert np.abs(rest - plain).max() < 0.02
    # at its 95th percentile the site turns yellow, and nothing else changes
    changed = np.abs(active - plain).sum(axis=2) > 0.1
    assert changed.sum() >= 5
    def yellow(image):
        return (image[..., 0] - image[..., 2] > 0.25) & (image[..., 1] - image[..., 2] > 0.25)

    assert yellow(active).sum() >= 2 and not yellow(plain).any() and not (yellow(active) & ~changed).any()
    bpy.context.view_layer.update()
    x, y, _ = world_to_camera_view(scene, scene.camera, head.matrix_world @ Vector(info.site_points[0]))
    row, col = int(y * size), int(x * size)
    assert changed[row - 1:row + 2, col - 1:col + 2].any()  # at the electrode's site
    rows, cols = np.nonzero(changed)
    assert cols.min() >= size // 2  # only on the subject's left (the image's right)
    assert rows.max() < 0.6 * size  # at cheek height, below the eyes (image rows go up)


def test_flame_head_gets_a_heatmap_placed_from_its_eye_joints(hm, tmp_path):
    from tests import flame_fixtures as ff

    flame = _module("core.heads.flame_file")
    flame_build = _module("blender.rigs.flame_build")
    import scipy.sparse
    from scipy.spatial import ConvexHull

    # the synthetic FLAME arrays, made head-like: a closed surface (the convex hull of the
    # ellipsoid's points) and eye joints at two vertices in front, 62 mm apart (FLAME: x = the
    # subject's left, y up, z forward)
    arrays = ff.make_flame_arrays(n_vertices=200, n_faces=10, seed=3)
    arrays["v_template"][:2] = [(0.031, 0.05, 0.085), (-0.031, 0.05, 0.085)]
    arrays["f"] = ConvexHull(arrays["v_template"]).simplices.astype(arrays["f"].dtype)
    regressor = arrays["J_regressor"].toarray()
    regressor[3:5] = 0.0
    regressor[3, 0] = regressor[4, 1] = 1.0
    arrays["J_regressor"] = scipy.sparse.csc_matrix(regressor)
    model = flame.load_flame_model(ff.write_flame_npz(tmp_path / "small.npz", arrays))
    rig = flame_build.build_flame_rig(model, bpy.context.scene.collection, n_shape=5, n_expression=10)
    emg = _emg()
    info = hm.enable_heatmap(rig.mesh_obj, emg)
    assert info.frame.method.startswith("FLAME eye joints")
    bones = rig.armature_obj.data.bones
    eye_axis = np.array(bones["eye_L"].head_local - bones["eye_R"].head_local)
    assert np.allclose(info.frame.lateral, eye_axis / np.linalg.norm(eye_axis), atol=1e-6)
    assert np.allclose(info.frame.up @ info.frame.lateral, 0, atol=1e-9)
    assert info.frame.forward[1] < -0.99  # FLAME's face (+z) looks along Blender's -Y
    vertices = np.array([v.co for v in rig.mesh_obj.data.vertices])
    for channel in ("Zyg_L", "Zyg_R", "Corr_L"):
        weights = np.empty(len(vertices), dtype=np.float32)
        rig.mesh_obj.data.attributes[hm.ATTRIBUTE_PREFIX + channel].data.foreach_get("value", weights)
        heated = vertices[weights > 0.05]
        assert len(heated) and np.all(heated[:, 1] < vertices[:, 1].mean())  # on the front
        assert np.all(np.sign(heated[:, 0]) == (1 if channel.endswith("_L") else -1))  # on its side
    # the armature still deforms the mesh, and the attributes reach the evaluated mesh the renderer sees
    evaluated = rig.mesh_obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).data
    assert hm.ATTRIBUTE_PREFIX + "Zyg_L" in evaluated.attributes
    assert hm.disable_heatmap(rig.mesh_obj) and not any(
        a.name.startswith(hm.ATTRIBUTE_PREFIX) for a in rig.mesh_obj.data.attributes)
