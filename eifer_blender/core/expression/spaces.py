"""Parameter spaces the networks and rigs speak.

``arkit52``: Apple's 52 ARKit blendshape names in their canonical order, values in [0, 1].
``flame``: FLAME expression coefficients + jaw pose + eyelids, in the SMIRK/MMM layout.
"""
from __future__ import annotations

import re

ARKIT52: tuple[str, ...] = (
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight",
    "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight",
    "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight",
    "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)
ARKIT52_INDEX: dict[str, int] = {name: i for i, name in enumerate(ARKIT52)}

# Shapes no muscle under a Fridlund & Cacioppo (1986) site moves: gaze, tongue, sideways jaw/mouth shifts, cheek puff.
ARKIT_UNOBSERVABLE: frozenset[str] = frozenset(
    [n for n in ARKIT52 if n.startswith("eyeLook")]
    + ["tongueOut", "jawLeft", "jawRight", "jawForward", "mouthLeft", "mouthRight", "cheekPuff"]
)
ARKIT_OBSERVABLE: tuple[str, ...] = tuple(n for n in ARKIT52 if n not in ARKIT_UNOBSERVABLE)

# Which Fridlund recording sites move each observable ARKit shape, from FACS (Ekman, Friesen & Hager
# 2002) and the muscle under each site (Fridlund & Cacioppo 1986, Psychophysiology 23:567-589): a
# shape is driven when at least one of its sites is recorded, and only driven shapes are keyed.
# ARKit's "Left" is the subject's left, as the site suffix _L. The upper lid (eyeWide, AU5) has no
# site; the frontalis sites cover it because AU5 comes with AU1+2 (surprise). Jaw opening (AU26/27)
# has no site either; the masseter and mentalis sites see it, so they cover it. The dimpler (AU14,
# buccinator) has none: it pulls at the modiolus, where the orbicularis oris and DAO sites are.
_SIDED_SITES = {
    "browDown": ("Corr", "DepSup"), "browOuterUp": ("latFront",), "cheekSquint": ("OrbOc",),
    "eyeBlink": ("OrbOc",), "eyeSquint": ("OrbOc",), "eyeWide": ("latFront", "medFront"),
    "mouthDimple": ("OrbOr", "DAO"), "mouthFrown": ("DAO",), "mouthLowerDown": ("DAO",),
    "mouthPress": ("OrbOr", "Ment"), "mouthSmile": ("Zyg",), "mouthStretch": ("DAO",),
    "mouthUpperUp": ("LLSup",), "noseSneer": ("LLSup",),
}
_MIDLINE_SITES = {
    "browInnerUp": ("medFront",), "jawOpen": ("Mass", "Ment"), "mouthClose": ("OrbOr",),
    "mouthFunnel": ("OrbOr",), "mouthPucker": ("OrbOr",), "mouthRollLower": ("OrbOr",),
    "mouthRollUpper": ("OrbOr",), "mouthShrugLower": ("Ment",), "mouthShrugUpper": ("Ment",),
}


def _facs_sites() -> dict[str, tuple[str, ...]]:
    table = {}
    for stem, muscles in _SIDED_SITES.items():
        for side, suffix in (("Left", "_L"), ("Right", "_R")):
            table[stem + side] = tuple(m + suffix for m in muscles)
    for name, muscles in _MIDLINE_SITES.items():
        table[name] = tuple(m + s for m in muscles for s in ("_R", "_L"))
    return {name: table[name] for name in ARKIT_OBSERVABLE}


ARKIT_SITES: dict[str, tuple[str, ...]] = _facs_sites()


# FLAME per-frame layout of the MMM / SMIRK release (Zenodo 16636409; Zielonka et al., SMIRK, CVPR 2024).
FLAME_SHAPE = 300
FLAME_EXP = 50
FLAME_EYELID = 2
FLAME_JAW = 3
FLAME_POSE = 3
FLAME_CAM = 3
FLAME_MMM_COLUMNS = FLAME_SHAPE + FLAME_EXP + FLAME_EYELID + FLAME_JAW + FLAME_POSE + FLAME_CAM  # 361
FLAME_EXPRESSION_NAMES: tuple[str, ...] = (
    tuple(f"exp{i:03d}" for i in range(1, FLAME_EXP + 1))
    + ("jaw_x", "jaw_y", "jaw_z", "eyelid_l", "eyelid_r")
)

SPACES = {"arkit52": ARKIT52, "flame": FLAME_EXPRESSION_NAMES}


def normalise_shape_name(name: str) -> str:
    """Reduce a shape-key name to a comparable ARKit key.

    Tolerates case (camelCase, PascalCase, snake_case), underscores/dots/spaces/hyphens, numeric or
    letter prefixes (``A01_``), and the side suffixes ``_L``/``_R``/``.l``/``Left``/``Right``.

    >>> normalise_shape_name("A12_Mouth_Smile_L")
    'mouthsmileleft'
    >>> normalise_shape_name("mouth_smile_r")
    'mouthsmileright'
    """
    stem = re.sub(r"^[A-Za-z]\d+[_\-. ]", "", name.strip())
    stem = re.sub(r"[_\-. ]([LlRr])$", lambda m: "left" if m.group(1) in "Ll" else "right", stem)
    return re.sub(r"[^0-9a-z]", "", stem.lower())


def _namespace_free(name: str) -> str | None:
    """``name`` without a namespace such as Maya's blend-shape node (``blendShape1.jawOpen``,
    ``head_bs.eyeBlink_L``), or None when it has none (a ``.L`` side suffix is not one)."""
    head, dot, tail = name.rpartition(".")
    if not dot or not head:
        return None
    if len(tail) <= 1:  # "mouthSmile.L": a side suffix; look for a namespace before it
        inner = _namespace_free(head)
        return None if inner is None else f"{inner}.{tail}"
    return tail


def match_arkit_names(shape_names: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Map each ARKit name to the shape-key name that carries it (missing names are left out).

    Names match as :func:`normalise_shape_name` reduces them, then without a namespace
    (``blendShape1.jawOpen``); the first shape key that reduces to an ARKit name wins. Vendor names
    that are not ARKit names with decorations (VRoid's ``Fcl_EYE_Close_L``, visemes) match nothing:
    they are bound through the mapping table (ARKit name -> shape key).
    """
    lookup = {normalise_shape_name(a): a for a in ARKIT52}
    matched: dict[str, str] = {}
    for shape in shape_names:
        arkit = lookup.get(normalise_shape_name(shape))
        if arkit is None:
            bare = _namespace_free(shape)
            arkit = lookup.get(normalise_shape_name(bare)) if bare else None
        if arkit is not None and arkit not in matched:
            matched[arkit] = shape
    return matched
