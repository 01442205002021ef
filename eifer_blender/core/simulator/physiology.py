"""Physiological face model of the simulator: muscles, FACS action units, ARKit weights, protocols.

The simulator makes paired facial sEMG + expression data with known ground truth (no such data
can be shipped). This module holds the *face* half; :mod:`.synthesis` turns the
activations made here into sEMG.

Muscle model
    :data:`MUSCLE_UNITS` lists 20 muscle units per side: the 11 Fridlund & Cacioppo (1986) muscles
    (in montage order, at their recording sites) and 9 expression muscles without a standard site
    (levator palpebrae, the palpebral and blink parts of orbicularis oculi, levator labii superioris,
    buccinator, risorius/platysma, depressor labii inferioris, the marginal part of orbicularis oris,
    jaw openers). Orbicularis oculi and oris are split into their parts because each part makes a
    different FACS action unit (AU6 vs AU7 vs AU45, AU18/22 vs AU23); all parts sit close together,
    so the Fridlund electrode over the muscle records all of them. Activation names are
    ``<key>_<side>`` (``"Zyg_L"``), right side first like ``montage.FRIDLUND22``, so the first 22
    activation names equal the Fridlund-22 channel names.

The ground-truth face (documented, linear, clipped)
    ``au = clip(activation @ UNIT_TO_AU, 0, 1)`` then ``arkit = clip(au @ AU_TO_ARKIT, 0, 1)``.
    Sided AUs drive the ARKit shape of the same side ("Left" = the subject's left); ARKit shapes
    without a side (browInnerUp, mouthPucker, mouthFunnel, jawOpen, mouthShrugLower, mouthRoll*)
    take the mean of both sides, so a one-sided action reaches half strength. The AU → ARKit table
    :data:`AU_TO_ARKIT` follows FACS (Ekman, Friesen & Hager 2002) and Apple's ARKit
    ``ARFaceAnchor.BlendShapeLocation`` descriptions (an approximation: published ARKit↔FACS tables disagree).
    Masseter (AU31, jaw clench) moves no ARKit shape. Shapes with no muscle behind them (gaze,
    cheekPuff) come only from the protocol's exogenous part (:attr:`ProtocolResult.exogenous`).

Protocols (what a simulated person does over a session) are in :mod:`.protocols`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..expression.spaces import ARKIT52, ARKIT52_INDEX
from ..recording.montage import FRIDLUND_MUSCLES, SIDES
from . import PROTOCOLS  # noqa: F401  (re-exported: the protocols are named in the package, cheaply)


@dataclass(frozen=True)
class MuscleUnit:
    """One muscle (or muscle part) of the face model, present on both sides.

    ``site_mm`` is the centre of the subject's LEFT unit (x > 0) in the montage face frame;
    ``depth_mm`` how deep below the skin it lies; ``extent_mm`` the radius over which an electrode
    sees it at full strength; ``gain_uv`` its typical sEMG RMS at full activation on an electrode
    over it; ``peak_hz`` the peak of its carrier spectrum.
    """

    key: str
    muscle: str
    aus: tuple[tuple[int, float], ...]  # (FACS AU number, weight) the unit produces
    site_mm: tuple[float, float]
    depth_mm: float
    extent_mm: float
    gain_uv: float
    peak_hz: float
    fridlund: bool  # True: has a standard Fridlund recording site (the site is site_mm)


def _fridlund_site(key: str) -> tuple[float, float]:
    return next(m.site_mm for m in FRIDLUND_MUSCLES if m.key == key)


# Gains: strong facial contractions reach tens to hundreds of µV, large superficial muscles such as
# masseter and zygomaticus the most (van Boxtel 2001, Psychophysiology 38:22-34). Spectral peaks:
# corrugator ≈31 Hz and orbicularis oculi ≈64 Hz (van Boxtel 2001); the others near the generic
# Shwedyk peak (≈65 Hz; Shwedyk et al. 1977, IEEE Trans. Biomed. Eng. 24:11-19).
MUSCLE_UNITS: tuple[MuscleUnit, ...] = (
    MuscleUnit("medFront", "frontalis, pars medialis", ((1, 1.0),),
               _fridlund_site("medFront"), 0.0, 5.0, 50.0, 55.0, True),
    MuscleUnit("latFront", "frontalis, pars lateralis", ((2, 1.0),),
               _fridlund_site("latFront"), 0.0, 5.0, 45.0, 55.0, True),
    MuscleUnit("Corr", "corrugator supercilii", ((4, 0.6),),
               _fridlund_site("Corr"), 0.0, 3.0, 70.0, 31.0, True),
    MuscleUnit("DepSup", "depressor supercilii / procerus", ((4, 0.4),),
               _fridlund_site("DepSup"), 0.0, 3.0, 45.0, 35.0, True),
    MuscleUnit("LLSup", "levator labii superioris alaeque nasi", ((9, 1.0),),
               _fridlund_site("LLSup"), 0.0, 3.0, 55.0, 65.0, True),
    MuscleUnit("OrbOr", "orbicularis oris, pars peripheralis", ((18, 1.0), (22, 0.6)),
               _fridlund_site("OrbOr"), 0.0, 5.0, 90.0, 75.0, True),
    MuscleUnit("DAO", "depressor anguli oris", ((15, 1.0),),
               _fridlund_site("DAO"), 0.0, 3.0, 60.0, 70.0, True),
    MuscleUnit("Ment", "mentalis", ((17, 1.0),),
               _fridlund_site("Ment"), 0.0, 3.0, 80.0, 70.0, True),
    MuscleUnit("OrbOc", "orbicularis oculi, pars orbitalis", ((6, 1.0),),
               _fridlund_site("OrbOc"), 0.0, 5.0, 70.0, 64.0, True),
    MuscleUnit("Zyg", "zygomaticus major", ((12, 1.0),),
               _fridlund_site("Zyg"), 0.0, 4.0, 120.0, 70.0, True),
    MuscleUnit("Mass", "masseter", ((31, 1.0),),
               _fridlund_site("Mass"), 0.0, 10.0, 200.0, 85.0, True),
    # Expression muscles without a standard site (Fridlund & Cacioppo 1986 place none on them).
    MuscleUnit("LevPalp", "levator palpebrae superioris", ((5, 1.0),),
               (32.0, 30.0), 8.0, 5.0, 15.0, 70.0, False),
    MuscleUnit("OrbOcPalp", "orbicularis oculi, pars palpebralis (lid tightener)", ((7, 1.0),),
               (32.0, 16.0), 2.0, 8.0, 50.0, 64.0, False),
    MuscleUnit("OrbOcBlink", "orbicularis oculi, pretarsal part (blink, eye closure)", ((45, 1.0),),
               (32.0, 20.0), 2.0, 6.0, 60.0, 64.0, False),
    MuscleUnit("LLS", "levator labii superioris (infraorbital head)", ((10, 1.0),),
               (24.0, -20.0), 3.0, 5.0, 40.0, 65.0, False),
    MuscleUnit("Bucc", "buccinator", ((14, 1.0),),
               (38.0, -50.0), 10.0, 8.0, 40.0, 65.0, False),
    MuscleUnit("Risor", "risorius / platysma", ((20, 1.0),),
               (45.0, -58.0), 2.0, 8.0, 45.0, 65.0, False),
    MuscleUnit("DLI", "depressor labii inferioris", ((16, 1.0),),
               (15.0, -68.0), 2.0, 5.0, 50.0, 70.0, False),
    MuscleUnit("OrbOrMarg", "orbicularis oris, pars marginalis", ((23, 1.0),),
               (12.0, -50.0), 2.0, 8.0, 80.0, 75.0, False),
    MuscleUnit("JawOpen", "jaw openers (digastric, lateral pterygoid)", ((26, 1.0),),
               (20.0, -95.0), 15.0, 10.0, 60.0, 70.0, False),
)
UNIT_KEYS: tuple[str, ...] = tuple(u.key for u in MUSCLE_UNITS)
# Activation channel names, unit by unit, right side first: ("medFront_R", "medFront_L", ...).
UNIT_NAMES: tuple[str, ...] = tuple(f"{u.key}_{s}" for u in MUSCLE_UNITS for s in SIDES)
UNIT_INDEX: dict[str, int] = {name: i for i, name in enumerate(UNIT_NAMES)}
MUSCLES_SPACE = "muscles"

AU_NAMES: dict[int, str] = {
    1: "inner brow raiser", 2: "outer brow raiser", 4: "brow lowerer", 5: "upper lid raiser",
    6: "cheek raiser", 7: "lid tightener", 9: "nose wrinkler", 10: "upper lip raiser",
    12: "lip corner puller", 14: "dimpler", 15: "lip corner depressor",
    16: "lower lip depressor", 17: "chin raiser", 18: "lip pucker", 20: "lip stretcher",
    22: "lip funneler", 23: "lip tightener", 24: "lip presser", 26: "jaw drop",
    28: "lip suck", 31: "jaw clencher", 45: "blink",
}
ACTION_UNITS: tuple[int, ...] = tuple(sorted(AU_NAMES))
AU_CHANNELS: tuple[str, ...] = tuple(f"AU{au:02d}_{s}" for au in ACTION_UNITS for s in SIDES)

# AU -> ARKit shape stems and weights. A stem is completed with "Left"/"Right" when the ARKit
# name has sides; otherwise both sides' AUs are averaged into it. The FACS AU descriptions, plus the FACS
# side effects that ARKit folds into other shapes (AU6 narrows the eye, AU9 lifts the lip).
AU_TO_ARKIT: dict[int, tuple[tuple[str, float], ...]] = {
    1: (("browInnerUp", 1.0),),
    2: (("browOuterUp", 1.0),),
    4: (("browDown", 1.0),),
    5: (("eyeWide", 1.0),),
    6: (("cheekSquint", 1.0), ("eyeSquint", 0.4)),
    7: (("eyeSquint", 1.0),),
    9: (("noseSneer", 1.0), ("mouthUpperUp", 0.3)),
    10: (("mouthUpperUp", 1.0), ("noseSneer", 0.2)),
    12: (("mouthSmile", 1.0),),
    14: (("mouthDimple", 1.0),),
    15: (("mouthFrown", 1.0),),
    16: (("mouthLowerDown", 1.0),),
    17: (("mouthShrugLower", 1.0),),
    18: (("mouthPucker", 1.0),),
    20: (("mouthStretch", 1.0),),
    22: (("mouthFunnel", 1.0),),
    23: (("mouthPress", 0.6), ("mouthRollLower", 0.2), ("mouthRollUpper", 0.2)),
    24: (("mouthPress", 1.0),),
    26: (("jawOpen", 1.0),),
    28: (("mouthRollLower", 1.0), ("mouthRollUpper", 1.0)),
    31: (),  # jaw clench: no ARKit shape
    45: (("eyeBlink", 1.0),),
}

# Which units a protocol contracts to show an AU (used by the emotion prototypes).
AU_DRIVE: dict[int, tuple[tuple[str, float], ...]] = {
    1: (("medFront", 1.0),), 2: (("latFront", 1.0),), 4: (("Corr", 1.0), ("DepSup", 0.8)),
    5: (("LevPalp", 1.0),), 6: (("OrbOc", 1.0),), 7: (("OrbOcPalp", 1.0),),
    9: (("LLSup", 1.0),), 10: (("LLS", 1.0),), 12: (("Zyg", 1.0),), 14: (("Bucc", 1.0),),
    15: (("DAO", 1.0),), 16: (("DLI", 1.0),), 17: (("Ment", 1.0),), 18: (("OrbOr", 1.0),),
    20: (("Risor", 1.0),), 23: (("OrbOrMarg", 1.0),), 26: (("JawOpen", 1.0),),
    31: (("Mass", 1.0),), 45: (("OrbOcBlink", 1.0),),
}

# EMFACS prototypes of the six basic emotions (Friesen & Ekman 1983, EMFACS-7).
EMOTION_AUS: dict[str, tuple[int, ...]] = {
    "happiness": (6, 12),
    "sadness": (1, 4, 15),
    "surprise": (1, 2, 5, 26),
    "fear": (1, 2, 4, 5, 7, 20, 26),
    "anger": (4, 5, 7, 23),
    "disgust": (9, 15, 16),
}


@dataclass(frozen=True)
class Exercise:
    """One Schaede exercise: unit activation levels at the apex, plus exogenous ARKit shapes."""

    name: str
    instruction: str
    levels: tuple[tuple[str, float], ...]
    exogenous: tuple[tuple[str, float], ...] = ()


# Schaede et al. (2017), the 11 mimic exercises of the Jena facial-palsy video protocol
# (also used in the "Mimics and Muscles" data set). Levels are this model's reading of each task.
SCHAEDE_EXERCISES: tuple[Exercise, ...] = (
    Exercise("rest", "face at rest", ()),
    Exercise("raise_eyebrows", "wrinkle the forehead", (("medFront", 1.0), ("latFront", 0.9))),
    Exercise("close_eyes_gently", "close the eyes gently", (("OrbOcBlink", 0.9), ("OrbOcPalp", 0.2))),
    Exercise("close_eyes_tightly", "close the eyes tightly",
             (("OrbOcBlink", 1.0), ("OrbOcPalp", 0.9), ("OrbOc", 0.8), ("Corr", 0.4),
              ("DepSup", 0.4), ("LLSup", 0.2))),
    Exercise("wrinkle_nose", "wrinkle the nose",
             (("LLSup", 1.0), ("LLS", 0.3), ("DepSup", 0.4), ("OrbOc", 0.2))),
    Exercise("smile_closed", "smile with closed mouth",
             (("Zyg", 0.9), ("OrbOc", 0.4), ("Bucc", 0.3), ("OrbOrMarg", 0.2))),
    Exercise("smile_open", "smile with open mouth, showing the teeth",
             (("Zyg", 1.0), ("OrbOc", 0.6), ("LLS", 0.4), ("JawOpen", 0.4), ("Risor", 0.2))),
    Exercise("purse_lips", "purse the lips", (("OrbOr", 1.0), ("Ment", 0.3))),
    Exercise("blow_cheeks", "blow out the cheeks", (("OrbOrMarg", 0.7),), (("cheekPuff", 1.0),)),
    Exercise("snarl", "snarl, showing the upper teeth",
             (("LLS", 0.9), ("LLSup", 0.6), ("Risor", 0.3), ("Zyg", 0.2))),
    Exercise("depress_lower_lip", "pull the lower lip down",
             (("DLI", 1.0), ("Risor", 0.5), ("DAO", 0.4), ("JawOpen", 0.15))),
)



# ---------------------------------------------------------------------------------------------
# Activation -> AU -> ARKit


def unit_positions_mm() -> np.ndarray:
    """Centres (units, 2) in mm of all muscle units, rows in ``UNIT_NAMES`` order (right = -x)."""
    rows = []
    for unit in MUSCLE_UNITS:
        x, y = unit.site_mm
        rows += [(-x, y), (x, y)]
    return np.asarray(rows, dtype=np.float64)


def unit_table(attribute: str) -> np.ndarray:
    """A per-unit attribute of :class:`MuscleUnit` repeated for both sides, in ``UNIT_NAMES`` order."""
    return np.repeat(np.asarray([getattr(u, attribute) for u in MUSCLE_UNITS], dtype=np.float64), 2)


def unit_to_au_matrix() -> np.ndarray:
    """Matrix (len(UNIT_NAMES), len(AU_CHANNELS)): which AUs each unit produces, per side."""
    matrix = np.zeros((len(UNIT_NAMES), len(AU_CHANNELS)))
    au_pos = {au: i for i, au in enumerate(ACTION_UNITS)}
    for u, unit in enumerate(MUSCLE_UNITS):
        for au, weight in unit.aus:
            for s in range(2):
                matrix[2 * u + s, 2 * au_pos[au] + s] = weight
    return matrix


def au_to_arkit_matrix() -> np.ndarray:
    """Matrix (len(AU_CHANNELS), 52): the documented AU → ARKit table, sides resolved."""
    matrix = np.zeros((len(AU_CHANNELS), len(ARKIT52)))
    for a, au in enumerate(ACTION_UNITS):
        for stem, weight in AU_TO_ARKIT[au]:
            for s, side in enumerate(("Right", "Left")):  # SIDES order: R then L
                row = 2 * a + s
                if f"{stem}{side}" in ARKIT52_INDEX:
                    matrix[row, ARKIT52_INDEX[f"{stem}{side}"]] += weight
                elif stem in ARKIT52_INDEX:  # one shape for both sides: average them
                    matrix[row, ARKIT52_INDEX[stem]] += 0.5 * weight
                else:
                    raise KeyError(f"AU_TO_ARKIT names an unknown ARKit shape {stem!r}")
    return matrix


_UNIT_TO_AU = unit_to_au_matrix()
_AU_TO_ARKIT = au_to_arkit_matrix()


def _check_activations(activations: np.ndarray) -> np.ndarray:
    activations = np.asarray(activations)
    if activations.ndim != 2 or activations.shape[1] != len(UNIT_NAMES):
        raise InputError(
            f"muscle activations must be (frames, {len(UNIT_NAMES)}) in UNIT_NAMES order, "
            f"got shape {activations.shape}")
    return activations


def activations_to_aus(activations: np.ndarray) -> np.ndarray:
    """FACS AU intensities (frames, len(AU_CHANNELS)) in [0, 1] from activations (frames, units)."""
    activations = _check_activations(activations)
    return np.clip(activations @ _UNIT_TO_AU, 0.0, 1.0)


def activations_to_arkit(activations: np.ndarray) -> np.ndarray:
    """The ground-truth face: ARKit-52 weights (frames, 52) in [0, 1] from activations (frames, units).

    Gaze and cheekPuff stay 0 here (no muscle drives them); see :attr:`ProtocolResult.exogenous`.
    """
    return np.clip(activations_to_aus(activations) @ _AU_TO_ARKIT, 0.0, 1.0).astype(np.float32)
