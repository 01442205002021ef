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

    Tolerates case, underscores/dots/spaces, numeric or letter prefixes (``A01_``), and the side
    suffixes ``_L``/``_R``/``.L``/``Left``/``Right``.

    >>> normalise_shape_name("A12_Mouth_Smile_L")
    'mouthsmileleft'
    """
    stem = re.sub(r"^[A-Za-z]\d+[_\-. ]", "", name.strip())
    stem = re.sub(r"[_\-. ]([LR])$", lambda m: "left" if m.group(1) == "L" else "right", stem)
    return re.sub(r"[^0-9a-z]", "", stem.lower())


def match_arkit_names(shape_names: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Map each ARKit name to the shape-key name that carries it (missing names are left out)."""
    lookup = {normalise_shape_name(a): a for a in ARKIT52}
    matched: dict[str, str] = {}
    for shape in shape_names:
        arkit = lookup.get(normalise_shape_name(shape))
        if arkit is not None and arkit not in matched:
            matched[arkit] = shape
    return matched
