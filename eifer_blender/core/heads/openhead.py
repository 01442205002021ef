"""The shipped CC0 open head: MakeHuman's hm08 head with the 52 "faceunits01" ARKit targets.

``assets/open_head.npz`` is made by ``scripts/make_open_head.py`` (see
``assets/OPEN_HEAD_ATTRIBUTION.md``). Axes are Blender's: metres, Z up, the face looks toward -Y
and the character's left is +X. All polygons are quads. Brows, lash line, lips, irises and pupils
are not in the asset: :func:`vertex_colours` paints them per vertex (project code, CC0 asset).
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..expression.spaces import ARKIT52

ASSET_PATH = Path(__file__).resolve().parents[2] / "assets" / "open_head.npz"

# Part codes stored per vertex and per face; the order is part of the asset format.
PART_NAMES: tuple[str, ...] = (
    "skin", "mouth_inside", "eye_socket_L", "eye_socket_R", "eye_L", "eye_R", "teeth_upper", "teeth_lower",
    "tongue",
)

# Material slot per part, in slot order (the Blender builder makes one material per entry).
MATERIAL_NAMES: tuple[str, ...] = ("skin", "eyes", "teeth", "mouth")
PART_MATERIAL: dict[str, str] = {
    "skin": "skin", "mouth_inside": "mouth", "eye_socket_L": "skin", "eye_socket_R": "skin", "eye_L": "eyes", "eye_R": "eyes",
    "teeth_upper": "teeth", "teeth_lower": "teeth", "tongue": "mouth",
}

_REQUIRED = (
    "vertices_m", "faces", "loop_uvs", "vertex_part", "face_part", "part_names", "shape_names",
    "delta_offsets", "delta_vertex", "delta_m", "pivot_names", "pivots_m", "landmark_names",
    "landmark_vertex", "lip_line", "lid_line_L", "lid_line_R", "source_vertex_index", "meta_json",
)


@dataclass(frozen=True)
class OpenHead:
    """The open head's geometry and its 52 ARKit targets (arrays are read-only).

    Attributes
    ----------
    vertices_m : (V, 3) float32 rest positions in metres.
    faces : (F, 4) int32 quads, counter-clockwise seen from outside.
    loop_uvs : (F * 4, 2) float32 UVs per face corner, in face order.
    vertex_part, face_part : uint8 codes into ``part_names``.
    shape_names : the 52 ARKit names in ``spaces.ARKIT52`` order.
    deltas_m : (52, V, 3) float32 offsets in metres; a key at weight w moves vertices by w * delta.
    pivots_m : rotation centres ("jaw", "eye_L", "eye_R", "head") in metres.
    landmarks : vertex index per landmark ("mouth_corner_L", "mouth_corner_R").
    lip_line, lid_line_L, lid_line_R : vertex indices of the lip line and the eyelid margins.
    source_vertex_index : (V,) index of each vertex in the MakeHuman hm08 base mesh.
    """

    vertices_m: np.ndarray
    faces: np.ndarray
    loop_uvs: np.ndarray
    vertex_part: np.ndarray
    face_part: np.ndarray
    part_names: tuple[str, ...]
    shape_names: tuple[str, ...]
    deltas_m: np.ndarray
    pivots_m: dict[str, np.ndarray]
    landmarks: dict[str, int]
    lip_line: np.ndarray
    lid_line_L: np.ndarray
    lid_line_R: np.ndarray
    source_vertex_index: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def n_vertices(self) -> int:
        return int(self.vertices_m.shape[0])

    @property
    def n_faces(self) -> int:
        return int(self.faces.shape[0])

    @property
    def loop_vertex_indices(self) -> np.ndarray:
        """(F * 4,) vertex index per face corner, for ``mesh.loops.foreach_set("vertex_index")``."""
        return self.faces.reshape(-1)

    @property
    def poly_loop_starts(self) -> np.ndarray:
        """(F,) first loop of each polygon."""
        return np.arange(0, self.faces.size, self.faces.shape[1], dtype=np.int32)

    @property
    def poly_loop_totals(self) -> np.ndarray:
        """(F,) corners per polygon (all 4)."""
        return np.full(self.n_faces, self.faces.shape[1], dtype=np.int32)

    def part_mask(self, part: str) -> np.ndarray:
        """Boolean (V,) mask of the vertices of one part (see ``PART_NAMES``)."""
        if part not in self.part_names:
            raise KeyError(f"unknown part {part!r}; parts are {', '.join(self.part_names)}")
        return self.vertex_part == self.part_names.index(part)

    def face_material_index(self) -> np.ndarray:
        """(F,) material slot per face, indexing ``MATERIAL_NAMES``."""
        lookup = np.array([MATERIAL_NAMES.index(PART_MATERIAL[p]) for p in self.part_names], dtype=np.int32)
        return lookup[self.face_part]

    def delta(self, shape_name: str) -> np.ndarray:
        """(V, 3) offsets of one ARKit key in metres."""
        return self.deltas_m[self.shape_names.index(shape_name)]

    def posed(self, weights: dict[str, float]) -> np.ndarray:
        """(V, 3) vertex positions with the given ARKit key weights applied (linear blend)."""
        out = self.vertices_m.astype(np.float64)
        for name, weight in weights.items():
            out += float(weight) * self.delta(name)
        return out


def load_open_head(path: str | Path | None = None) -> OpenHead:
    """Load the shipped open head (or an ``open_head.npz`` at ``path``).

    Parameters
    ----------
    path : optional path to a file made by ``scripts/make_open_head.py``.

    Returns
    -------
    OpenHead
        Cached per path; its arrays are read-only, copy before editing.

    Raises
    ------
    InputError
        The file is missing, not an npz, or not an open-head asset.
    """
    return _load_cached(str(Path(path).resolve() if path is not None else ASSET_PATH))


@lru_cache(maxsize=4)
def _load_cached(path: str) -> OpenHead:
    file = Path(path)
    if not file.is_file():
        raise InputError(
            f"{file}: the open head asset is missing. It ships with the extension; regenerate it "
            f"with 'python scripts/make_open_head.py'."
        )
    try:
        with np.load(file, allow_pickle=False) as npz:
            missing = [k for k in _REQUIRED if k not in npz.files]
            if missing:
                raise InputError(f"{file}: not an open-head asset, it lacks {', '.join(missing)}")
            data = {k: npz[k] for k in _REQUIRED}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"{file}: cannot read the open head asset ({exc})") from exc

    shape_names = tuple(str(s) for s in data["shape_names"])
    if shape_names != ARKIT52:
        raise InputError(f"{file}: the shape keys are not the 52 ARKit names in their standard order")
    n_vertices = data["vertices_m"].shape[0]
    offsets = data["delta_offsets"].astype(np.int64)
    if offsets.shape != (len(ARKIT52) + 1,) or offsets[-1] != len(data["delta_vertex"]):
        raise InputError(f"{file}: the sparse target table is inconsistent")
    deltas = np.zeros((len(ARKIT52), n_vertices, 3), dtype=np.float32)
    key_of_entry = np.repeat(np.arange(len(ARKIT52)), np.diff(offsets))
    deltas[key_of_entry, data["delta_vertex"]] = data["delta_m"]

    arrays = {k: v for k, v in data.items()}
    arrays["deltas_m"] = deltas
    for value in arrays.values():
        if isinstance(value, np.ndarray):
            value.setflags(write=False)
    pivots = {str(n): p for n, p in zip(data["pivot_names"], data["pivots_m"])}
    landmarks = {str(n): int(i) for n, i in zip(data["landmark_names"], data["landmark_vertex"])}
    return OpenHead(
        vertices_m=arrays["vertices_m"],
        faces=arrays["faces"],
        loop_uvs=arrays["loop_uvs"],
        vertex_part=arrays["vertex_part"],
        face_part=arrays["face_part"],
        part_names=tuple(str(s) for s in data["part_names"]),
        shape_names=shape_names,
        deltas_m=deltas,
        pivots_m=pivots,
        landmarks=landmarks,
        lip_line=arrays["lip_line"],
        lid_line_L=arrays["lid_line_L"],
        lid_line_R=arrays["lid_line_R"],
        source_vertex_index=arrays["source_vertex_index"],
        meta=json.loads(str(data["meta_json"][()])),
    )


# ---------------------------------------------------------------------------------------------
# Painted colours: brows, lash line, lips, irises and pupils as per-vertex colours, so every
# engine shows them (Workbench's "Attribute" colour type, and the materials' colour attribute
# node in EEVEE and Cycles). Painted on the mesh, they move with the shape keys.

COLOUR_ATTRIBUTE = "eifer_colour"  # the point-domain colour attribute the Blender builder writes
# Linear RGB. Skin, teeth and the mouth are the materials' viewport colours too.
SKIN_RGB = (0.62, 0.40, 0.31)
BROW_RGB = (0.045, 0.028, 0.018)
LASH_RGB = (0.05, 0.03, 0.025)
LIP_RGB = (0.56, 0.22, 0.20)
SCLERA_RGB = (0.92, 0.92, 0.90)
IRIS_RGB = (0.07, 0.15, 0.22)
PUPIL_RGB = (0.01, 0.01, 0.01)
TEETH_RGB = (0.88, 0.85, 0.76)
MOUTH_RGB = (0.06, 0.012, 0.012)  # the mouth bag reads as a dark cavity
TONGUE_RGB = (0.30, 0.075, 0.07)  # and the tongue lighter in front of it
PART_RGB: dict[str, tuple[float, float, float]] = {
    "skin": SKIN_RGB, "mouth_inside": MOUTH_RGB, "eye_socket_L": SKIN_RGB, "eye_socket_R": SKIN_RGB,
    "eye_L": SCLERA_RGB, "eye_R": SCLERA_RGB, "teeth_upper": TEETH_RGB, "teeth_lower": TEETH_RGB,
    "tongue": TONGUE_RGB,
}
# Iris and pupil radii as a fraction of the eyeball radius (front projection of the eye).
PUPIL_RADIUS = 0.2
IRIS_RADIUS = 0.45
# The brow as a band in the face frame (eye-distance units, mirrored for the right): from its
# head at ``lateral`` 0.12 to its tail at 0.9, centred ``_BROW_UP`` above the eye centres with an
# arch of ``_BROW_ARCH`` peaking at ``_BROW_PEAK`` of its length; about half as thick at the tail.
_BROW_LATERAL = (0.12, 0.9)
_BROW_UP = 0.31
_BROW_ARCH = 0.07
_BROW_PEAK = 0.6
_BROW_HALF_THICKNESS = (0.085, 0.045)
_BROW_SOFTNESS = 0.05  # the density falls from 1 to 0 over this distance outside the band
_BROW_STRENGTH = 0.92
_LASH_STRENGTH = 0.9
_LIP_STRENGTH = 0.55  # the red margin next to the lip line
_LIP_BODY_STRENGTH = 0.25  # the rest of the lips


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def brow_density(head: OpenHead) -> np.ndarray:
    """(V,) float32 in [0, 1]: how much of the brow colour each skin vertex takes (0 off the brows).

    A soft band over each eye, in the face frame of :func:`face_coordinates`, on the front of the
    head; its edges fade over ``_BROW_SOFTNESS`` so the mesh's coarse quads give no hard steps.
    """
    coords = face_coordinates(head)
    lateral, up, forward = np.abs(coords[:, 0]), coords[:, 1], coords[:, 2]
    inner, outer = _BROW_LATERAL
    along = (lateral - inner) / (outer - inner)  # 0 at the brow's head, 1 at its tail
    inside = np.clip(along, 0.0, 1.0)
    centre = _BROW_UP + _BROW_ARCH * np.sin(0.5 * np.pi * inside / _BROW_PEAK)
    half = _BROW_HALF_THICKNESS[0] + (_BROW_HALF_THICKNESS[1] - _BROW_HALF_THICKNESS[0]) * inside
    across = 1.0 - _smoothstep(half, half + _BROW_SOFTNESS, np.abs(up - centre))
    ends = _smoothstep(-0.08, 0.05, along) * (1.0 - _smoothstep(0.9, 1.05, along))
    density = across * ends * (head.part_mask("skin") & (forward > -0.4))
    return density.astype(np.float32)


def eye_projection(head: OpenHead) -> np.ndarray:
    """(V, 2) float32: each eyeball vertex projected along the gaze (-Y), in eyeball radii.

    ``(0, 0)`` is the pupil's centre; the back half of each eyeball and all other vertices get
    ``(10, 10)``, far outside any iris.
    """
    uv = np.full((head.n_vertices, 2), 10.0, dtype=np.float32)
    for part in ("eye_L", "eye_R"):
        mask = head.part_mask(part)
        centre = head.vertices_m[mask].mean(axis=0)
        offset = head.vertices_m[mask] - centre
        radius = np.linalg.norm(offset, axis=1).max()
        front = np.flatnonzero(mask)[offset[:, 1] < 0.0]  # the face looks toward -Y
        uv[front] = offset[offset[:, 1] < 0.0][:, [0, 2]] / radius
    return uv


def vertex_colours(head: OpenHead) -> np.ndarray:
    """(V, 4) float32 linear RGBA per vertex: the part colours (``PART_RGB``) with the brows,
    a dark upper lash line, redder lips, and the irises and pupils on the front of the eyes."""
    rgb = np.array([PART_RGB[p] for p in head.part_names], dtype=np.float64)[head.vertex_part]

    def paint(colour, amount):
        amount = np.asarray(amount, dtype=np.float64)[:, None]
        rgb[:] = rgb * (1.0 - amount) + np.asarray(colour, dtype=np.float64) * amount

    paint(LIP_RGB, _LIP_BODY_STRENGTH * region(head, "lips"))
    paint(LIP_RGB, _LIP_STRENGTH * (region(head, "upper_lip_edge") | region(head, "lower_lip_edge")))
    paint(LASH_RGB, _LASH_STRENGTH * (region(head, "upper_lid_L") | region(head, "upper_lid_R")))
    paint(BROW_RGB, _BROW_STRENGTH * brow_density(head))
    eyes = head.part_mask("eye_L") | head.part_mask("eye_R")
    radius = np.linalg.norm(eye_projection(head), axis=1)
    rgb[eyes & (radius < IRIS_RADIUS)] = IRIS_RGB
    rgb[eyes & (radius < PUPIL_RADIUS)] = PUPIL_RGB
    return np.concatenate([rgb, np.ones((head.n_vertices, 1))], axis=1).astype(np.float32)


def face_coordinates(head: OpenHead) -> np.ndarray:
    """(V, 3) vertex positions in a face frame, in units of the distance between the eye centres.

    Columns: ``lateral`` (toward the character's left, +X), ``up`` (+Z) and ``forward`` (toward
    the viewer, -Y), measured from the point midway between the eye centres.
    """
    eye_l, eye_r = head.pivots_m["eye_L"], head.pivots_m["eye_R"]
    origin = 0.5 * (eye_l + eye_r)
    unit = float(np.linalg.norm(eye_l - eye_r))
    offset = head.vertices_m.astype(np.float64) - origin
    return np.stack([offset[:, 0], offset[:, 2], -offset[:, 1]], axis=1) / unit




# Anatomical regions of the outer skin as boxes in the face frame (lateral, up, forward), in
# eye-distance units; "_L" boxes are on the character's left and are mirrored for "_R".
# ``None`` leaves a side open. Lip and lid regions come from the lip/lid lines instead.
_SKIN_BOXES: dict[str, tuple[tuple[float | None, float | None], ...]] = {
    "brow_L": ((0.1, 1.0), (0.2, 0.6), (-0.3, None)),
    "brow_inner": ((-0.35, 0.35), (0.2, 0.6), (0.2, None)),
    "brow_outer_L": ((0.55, 1.0), (0.1, 0.6), (-0.5, None)),
    "cheek_L": ((0.45, 0.95), (-1.2, -0.4), (-0.3, None)),
    "nose_wing_L": ((0.1, 0.35), (-0.85, -0.45), (0.15, None)),
    "chin": ((-0.3, 0.3), (-1.95, -1.5), (0.0, None)),
}
REGION_NAMES: tuple[str, ...] = tuple(sorted(
    set(PART_NAMES)
    | {n.replace("_L", s) if n.endswith("_L") else n for n in _SKIN_BOXES for s in ("_L", "_R")}
    | {f"{r}_{s}" for r in ("upper_lid", "lower_lid", "mouth_corner", "upper_lip", "lower_lip", "cornea")
       for s in ("L", "R")}
    | {"upper_lip", "lower_lip", "lips", "upper_lip_edge", "lower_lip_edge"}
))
_LIP_DEPTH = 0.3  # lips: skin within this forward distance (eye units) of the lip line
_LIP_HEIGHT = 0.3  # and within this height above (upper) or below (lower) it
_LIP_EDGE_HEIGHT = 0.1  # the red margin next to the lip line
_MOUTH_CORNER_RADIUS = 0.12
_CORNEA_CAP = 0.8  # cornea: eye vertices whose forward offset exceeds this fraction of the radius


def region(head: OpenHead, name: str) -> np.ndarray:
    """Boolean (V,) mask of a named region of the open head.

    Parameters
    ----------
    head : the open head.
    name : a part (``PART_NAMES``) or an anatomical region: ``brow_L``, ``brow_inner``,
        ``brow_outer_L``, ``cheek_L``, ``nose_wing_L``, ``chin``, ``upper_lid_L``,
        ``lower_lid_L``, ``mouth_corner_L``, ``upper_lip``, ``lower_lip``, ``lips``,
        ``upper_lip_edge``, ``lower_lip_edge``, ``upper_lip_L``, ``lower_lip_L``, ``cornea_L``
        and the ``_R`` mirrors (see ``REGION_NAMES``).
        Left means the character's left (+X).

    Returns
    -------
    np.ndarray
        Read-only boolean mask; anatomical regions hold outer-skin vertices only (lid regions
        are the eyelid margins).
    """
    if name in head.part_names:
        return head.part_mask(name)
    if name not in REGION_NAMES:
        raise KeyError(f"unknown region {name!r}; regions are {', '.join(REGION_NAMES)}")
    coords = face_coordinates(head)
    skin = head.part_mask("skin")
    side = 1.0 if name.endswith("_L") else -1.0 if name.endswith("_R") else 0.0
    stem = name[:-2] if side else name
    lateral = coords[:, 0] * (side if side else 1.0)  # mirror _R onto the left

    box = _SKIN_BOXES.get(f"{stem}_L") if side else _SKIN_BOXES.get(stem)
    if box is not None:
        mask = skin.copy()
        for column, (low, high) in zip((lateral, coords[:, 1], coords[:, 2]), box):
            if low is not None:
                mask &= column >= low
            if high is not None:
                mask &= column <= high
    elif stem in ("upper_lid", "lower_lid"):
        line = head.lid_line_L if side > 0 else head.lid_line_R
        corners = line[[np.argmin(coords[line, 0]), np.argmax(coords[line, 0])]]
        # the margins split at the straight line between the two eye corners
        canthus_up = np.interp(coords[line, 0], np.sort(coords[corners, 0]),
                               coords[corners[np.argsort(coords[corners, 0])], 1])
        upper = coords[line, 1] > canthus_up
        chosen = line[upper] if stem == "upper_lid" else line[~upper & ~np.isin(line, corners)]
        mask = np.zeros(head.n_vertices, dtype=bool)
        mask[chosen] = True
    elif stem == "cornea":
        eye = head.part_mask("eye_L" if side > 0 else "eye_R")
        forward = coords[:, 2] - coords[eye, 2].mean()
        mask = eye & (forward >= _CORNEA_CAP * forward[eye].max())
    elif stem == "mouth_corner":
        corner = coords[head.landmarks["mouth_corner_L" if side > 0 else "mouth_corner_R"]]
        mask = skin & (np.linalg.norm(coords - corner, axis=1) <= _MOUTH_CORNER_RADIUS)
    else:  # lips
        line = coords[head.lip_line]
        # the lip line holds both inner lip edges; a parabola through it is the mouth's midline
        line_up = np.polyval(np.polyfit(line[:, 0], line[:, 1], 2), coords[:, 0])
        corner_lateral = line[:, 0].max()
        near = skin & (np.abs(coords[:, 0]) <= corner_lateral) & (coords[:, 2] >= line[:, 2].min() - 0.05) \
            & (coords[:, 2] <= line[:, 2].max() + _LIP_DEPTH)
        upper = near & (coords[:, 1] >= line_up) & (coords[:, 1] <= line_up + _LIP_HEIGHT)
        lower = near & (coords[:, 1] < line_up) & (coords[:, 1] >= line_up - _LIP_HEIGHT)
        edge = np.abs(coords[:, 1] - line_up) <= _LIP_EDGE_HEIGHT
        mask = {"upper_lip": upper, "lower_lip": lower, "lips": upper | lower,
                "upper_lip_edge": upper & edge, "lower_lip_edge": lower & edge}[stem]
        if side:
            mask = mask & (lateral >= 0.05)
    mask.setflags(write=False)
    return mask
