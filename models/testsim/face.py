"""Face model of the test simulator: muscle activations -> action units -> ARKit-52 weights.

FROZEN, TEST-ONLY: part of :mod:`models.testsim`; never use it to train or tune a model.

Its own tables, chosen to differ from the training simulator (``eifer_blender.core.simulator``):

* **Muscles** (:data:`MUSCLES`): 17 per side, named in words (``"zygomaticus"``); activation
  columns are ``<muscle>_<side>``, right side first (``"zygomaticus_R"``, ``"zygomaticus_L"``).
* **Synergies** (:data:`SYNERGY_PAIRS`, :func:`make_synergies`): a commanded muscle drags its
  partners along at 20-40 % of its own drive (a smile recruits orbicularis oculi, the brow lowerer
  corrugator recruits depressor supercilii / procerus and vice versa, ...):
  ``activation = clip(drive + drive @ S, 0, 1)``.
* **Mechanics**: the face follows the activation through a first-order lag (τ = 60 ms): sEMG
  leads the movement.
* **Saturating, non-linear AU map**: ``AU = hill(activation @ MUSCLE_TO_AU)`` with a normalised
  Hill curve ``hill(x) = (1 + K^n) x^n / (x^n + K^n)`` (sigmoidal: covert activations barely move
  the face, strong ones saturate), capped at 1.
* **AU -> ARKit** (:data:`AU_TO_ARKIT`): its own weights; sided shapes take their side's AUs,
  shapes without a side combine the sides as ``1 - (1 - left)(1 - right)``; clipped to [0, 1].
  "Left" is the subject's left (channels ``_L``), as in the project.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from eifer_blender.core.expression.spaces import ARKIT52, ARKIT52_INDEX

SIDES: tuple[str, ...] = ("R", "L")

#: the 11 muscles under a Fridlund & Cacioppo site, then 6 without one
MUSCLES: tuple[str, ...] = (
    "frontalis_medial", "frontalis_lateral", "corrugator", "depressor_supercilii", "levator_labii",
    "orbicularis_oris", "dao", "mentalis", "orbicularis_oculi", "zygomaticus", "masseter",
    "levator_palpebrae", "orbicularis_oculi_pretarsal", "buccinator", "risorius",
    "depressor_labii", "jaw_openers",
)
MUSCLE_INDEX: dict[str, int] = {m: i for i, m in enumerate(MUSCLES)}
#: activation column names, muscle by muscle, right side first
SOURCE_NAMES: tuple[str, ...] = tuple(f"{m}_{s}" for m in MUSCLES for s in SIDES)
#: the muscles a probe session can contract (those with a Fridlund recording site)
PROBE_MUSCLES: tuple[str, ...] = MUSCLES[:11]
#: Fridlund channel stem of each muscle with a site
CHANNEL_STEM: dict[str, str] = {
    "frontalis_medial": "medFront", "frontalis_lateral": "latFront", "corrugator": "Corr",
    "depressor_supercilii": "DepSup", "levator_labii": "LLSup", "orbicularis_oris": "OrbOr",
    "dao": "DAO", "mentalis": "Ment", "orbicularis_oculi": "OrbOc", "zygomaticus": "Zyg",
    "masseter": "Mass",
}

# (from, to, low, high): when `from` is driven, `to` is activated at a per-subject fraction in [low, high]
SYNERGY_PAIRS: tuple[tuple[str, str, float, float], ...] = (
    ("zygomaticus", "orbicularis_oculi", 0.25, 0.40),  # Duchenne smile
    ("corrugator", "depressor_supercilii", 0.25, 0.40),
    ("depressor_supercilii", "corrugator", 0.20, 0.35),
    ("frontalis_medial", "frontalis_lateral", 0.20, 0.35),
    ("frontalis_lateral", "frontalis_medial", 0.25, 0.40),
    ("levator_labii", "orbicularis_oculi", 0.20, 0.30),
    ("dao", "mentalis", 0.20, 0.35),
    ("orbicularis_oris", "mentalis", 0.20, 0.30),
    ("orbicularis_oculi_pretarsal", "orbicularis_oculi", 0.20, 0.30),  # forceful blinks
    ("risorius", "dao", 0.20, 0.30),
)

# muscle -> ((AU, weight), ...): what each muscle's contraction does (an approximation of FACS)
MUSCLE_TO_AU_TABLE: dict[str, tuple[tuple[int, float], ...]] = {
    "frontalis_medial": ((1, 1.0), (2, 0.2)),
    "frontalis_lateral": ((2, 1.0), (1, 0.15)),
    "corrugator": ((4, 0.7),),
    "depressor_supercilii": ((4, 0.45), (9, 0.1)),
    "levator_labii": ((9, 0.8), (10, 0.5)),
    "orbicularis_oris": ((18, 0.7), (23, 0.6), (22, 0.3), (24, 0.3)),
    "dao": ((15, 1.0),),
    "mentalis": ((17, 1.0),),
    "orbicularis_oculi": ((6, 1.0), (7, 0.4)),
    "zygomaticus": ((12, 1.0), (6, 0.15)),
    "masseter": ((31, 1.0),),
    "levator_palpebrae": ((5, 1.0),),
    "orbicularis_oculi_pretarsal": ((45, 1.0), (7, 0.2)),
    "buccinator": ((14, 1.0),),
    "risorius": ((20, 1.0),),
    "depressor_labii": ((16, 1.0),),
    "jaw_openers": ((26, 1.0),),
}
ACTION_UNITS: tuple[int, ...] = tuple(sorted({au for v in MUSCLE_TO_AU_TABLE.values() for au, _ in v}))
AU_INDEX: dict[int, int] = {au: i for i, au in enumerate(ACTION_UNITS)}
AU_CHANNELS: tuple[str, ...] = tuple(f"AU{au:02d}_{s}" for au in ACTION_UNITS for s in SIDES)

# Hill parameters (n, K) per AU; the default for the rest
HILL_DEFAULT: tuple[float, float] = (2.0, 0.4)
HILL: dict[int, tuple[float, float]] = {45: (3.0, 0.3), 26: (1.3, 0.5), 5: (2.2, 0.45), 31: (1.5, 0.4)}

# AU -> ((ARKit stem, weight), ...); a stem gets "Left"/"Right" when ARKit has sides for it
AU_TO_ARKIT: dict[int, tuple[tuple[str, float], ...]] = {
    1: (("browInnerUp", 0.9), ("browOuterUp", 0.15)),
    2: (("browOuterUp", 1.0),),
    4: (("browDown", 0.9), ("eyeSquint", 0.1)),
    5: (("eyeWide", 1.0),),
    6: (("cheekSquint", 0.9), ("eyeSquint", 0.5)),
    7: (("eyeSquint", 0.9),),
    9: (("noseSneer", 1.0), ("mouthUpperUp", 0.35), ("cheekSquint", 0.2)),
    10: (("mouthUpperUp", 0.9), ("noseSneer", 0.15)),
    12: (("mouthSmile", 0.95), ("cheekSquint", 0.15), ("mouthDimple", 0.1)),
    14: (("mouthDimple", 0.9),),
    15: (("mouthFrown", 1.0),),
    16: (("mouthLowerDown", 0.9),),
    17: (("mouthShrugLower", 0.9), ("mouthShrugUpper", 0.3)),
    18: (("mouthPucker", 1.0), ("mouthFunnel", 0.2)),
    20: (("mouthStretch", 0.9),),
    22: (("mouthFunnel", 0.9),),
    23: (("mouthPress", 0.5), ("mouthRollLower", 0.25), ("mouthRollUpper", 0.25)),
    24: (("mouthPress", 0.9),),
    26: (("jawOpen", 0.9),),
    31: (),  # jaw clench moves no ARKit shape
    45: (("eyeBlink", 1.0),),
}

FACE_LAG_S = 0.06  # mechanical lag of the face behind the activation


def _muscle_to_au() -> np.ndarray:
    table = np.zeros((len(MUSCLES), len(ACTION_UNITS)))
    for muscle, entries in MUSCLE_TO_AU_TABLE.items():
        for au, weight in entries:
            table[MUSCLE_INDEX[muscle], AU_INDEX[au]] = weight
    return table


def _au_to_arkit() -> np.ndarray:
    """(side, AU, 52): the ARKit contribution of each side's AU."""
    table = np.zeros((2, len(ACTION_UNITS), len(ARKIT52)))
    for au, entries in AU_TO_ARKIT.items():
        for stem, weight in entries:
            for s, side in enumerate(SIDES):
                word = "Right" if side == "R" else "Left"
                name = stem + word if stem + word in ARKIT52_INDEX else stem
                table[s, AU_INDEX[au], ARKIT52_INDEX[name]] += weight
    return table


MUSCLE_TO_AU = _muscle_to_au()
AU_TO_ARKIT_MATRIX = _au_to_arkit()
_HILL_N = np.array([HILL.get(au, HILL_DEFAULT)[0] for au in ACTION_UNITS])
_HILL_K = np.array([HILL.get(au, HILL_DEFAULT)[1] for au in ACTION_UNITS])


def hill(x: np.ndarray, n, k) -> np.ndarray:
    """Normalised Hill curve: 0 at 0, 1 at 1, sigmoidal, saturating; capped at 1."""
    x = np.maximum(np.asarray(x, dtype=np.float64), 0.0)
    xn = x ** n
    return np.minimum((1.0 + k ** n) * xn / (xn + k ** n), 1.0)


def make_synergies(rng: np.random.Generator) -> np.ndarray:
    """A subject's synergy matrix (muscles, muscles): ``S[i, j]`` = share of i's drive given to j."""
    s = np.zeros((len(MUSCLES), len(MUSCLES)))
    for source, target, low, high in SYNERGY_PAIRS:
        s[MUSCLE_INDEX[source], MUSCLE_INDEX[target]] = rng.uniform(low, high)
    return s


def apply_synergies(drive: np.ndarray, synergies: np.ndarray) -> np.ndarray:
    """Commanded drive (frames, muscles, 2 sides) -> activations with co-activation, in [0, 1]."""
    spill = np.einsum("fis,ij->fjs", drive, synergies)
    return np.clip(drive + spill, 0.0, 1.0)


def to_columns(values: np.ndarray) -> np.ndarray:
    """(frames, muscles, 2) -> (frames, muscles*2) in :data:`SOURCE_NAMES` order."""
    return values.reshape(values.shape[0], -1)


def from_columns(values: np.ndarray) -> np.ndarray:
    """(frames, muscles*2) in :data:`SOURCE_NAMES` order -> (frames, muscles, 2)."""
    return np.asarray(values).reshape(values.shape[0], len(MUSCLES), 2)


def mechanics(activations: np.ndarray, fps: float, lag_s: float = FACE_LAG_S) -> np.ndarray:
    """The face's lag behind the activation: first-order low-pass along frames (zero initial state)."""
    alpha = float(np.exp(-1.0 / (fps * lag_s)))
    return lfilter([1.0 - alpha], [1.0, -alpha], activations, axis=0)


def activations_to_aus(activations: np.ndarray) -> np.ndarray:
    """(frames, muscles, 2) activations -> (frames, AUs, 2) intensities in [0, 1] (no lag)."""
    drive = np.einsum("fms,ma->fas", activations, MUSCLE_TO_AU)
    return hill(drive, _HILL_N[None, :, None], _HILL_K[None, :, None])


def aus_to_arkit(aus: np.ndarray) -> np.ndarray:
    """(frames, AUs, 2) -> (frames, 52) ARKit weights in [0, 1]."""
    right = np.clip(aus[:, :, 0] @ AU_TO_ARKIT_MATRIX[0], 0.0, 1.0)
    left = np.clip(aus[:, :, 1] @ AU_TO_ARKIT_MATRIX[1], 0.0, 1.0)
    return 1.0 - (1.0 - right) * (1.0 - left)


def face_arkit(activations: np.ndarray, fps: float) -> np.ndarray:
    """What the face does: activations (frames, muscles, 2) -> lag -> AUs -> ARKit (frames, 52)."""
    return aus_to_arkit(activations_to_aus(mechanics(activations, fps)))
