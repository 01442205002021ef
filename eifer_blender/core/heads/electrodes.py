"""Electrode sites on a face mesh: the montage's 2-D face frame placed on a mesh, and heat weights.

Each electrode site of the montage (2-D, mm, ``recording.montage``) is placed in a face frame built
from landmarks of the mesh (eye centres, mouth corners); each channel gets a Gaussian falloff
around its projected site. The sites are nominal (Fridlund & Cacioppo 1986, Psychophysiology
23:567-589), not measured on a person. Ray casting onto the surface is Blender's
(``blender/jobs/heatmap.py``); everything here is numpy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import cdist

from ..errors import InputError
from ..recording.montage import (
    FRIDLUND22,
    KURAMOTO19,
    fridlund_sites_mm,
    kuramoto_sites_mm,
)

SIGMA_MM = 12.0
WEIGHT_FLOOR = 0.01  # weights below this are set to 0 (keeps the far face clean)

# Landmarks of the `electromyogram` package's face canvas (its MediaPipe face-mesh coordinates,
# converted like its site coordinates: x from the midline toward the subject's left, y up from
# the Frankfort plane, mm): eye centre = midpoint of the eye corners (landmarks 33 and 133,
# mirrored), mouth corner = landmark 61. They tie the montage's site coordinates to a mesh.
EYE_CENTRE_MM = (30.1, 23.7)
MOUTH_CORNER_MM = (23.6, -38.9)

# The heat colour map. Heat h = sum over channels of weight x activity / p95 (1 = the muscle's
# 95th percentile in the clip at the centre of its site). The face keeps its own colour while h
# is below HEAT_FADE[0] and takes the viridis colour of h fully from HEAT_FADE[1] on (smoothstep
# in between), so rest reads as the face and the edges of a site fade out without steps.
VIRIDIS_SRGB = ((0.267, 0.005, 0.329), (0.229, 0.322, 0.546), (0.128, 0.567, 0.551),
                (0.369, 0.789, 0.383), (0.993, 0.906, 0.144))  # matplotlib's, at HEAT_STOPS
HEAT_STOPS = (0.0, 0.25, 0.5, 0.75, 1.0)
HEAT_FADE = (0.05, 0.3)
REST_GREY_SRGB = 0.45  # the base colour of meshes without a painted colour attribute
COLOUR_MAP = ("the face's own colour at rest → viridis purple, teal, green → yellow = the muscle's "
              "95th percentile in the clip")


def srgb_to_linear(srgb) -> np.ndarray:
    """Display (sRGB) values in [0, 1] to the linear values Blender's colours hold."""
    c = np.asarray(srgb, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


@dataclass(frozen=True)
class FaceFrame:
    """Where the montage's 2-D face frame lies on a mesh (mesh-local coordinates).

    ``origin`` is the point midway between the eye centres; ``lateral`` points to the subject's
    left, ``up`` up, ``forward`` out of the face. ``*_per_mm`` convert canvas millimetres to mesh
    units along ``lateral`` and ``up``.
    """

    origin: np.ndarray
    lateral: np.ndarray
    up: np.ndarray
    forward: np.ndarray
    lateral_per_mm: float
    up_per_mm: float
    method: str

    def plane_points(self, sites_mm: np.ndarray) -> np.ndarray:
        """(n, 3) points of the face plane through the eyes for sites ``(n, 2)`` in mm."""
        sites_mm = np.asarray(sites_mm, dtype=np.float64)
        return (self.origin + np.outer(sites_mm[:, 0] * self.lateral_per_mm, self.lateral)
                + np.outer((sites_mm[:, 1] - EYE_CENTRE_MM[1]) * self.up_per_mm, self.up))

    @property
    def mean_per_mm(self) -> float:
        return 0.5 * (self.lateral_per_mm + self.up_per_mm)


def _unit(vector) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float64)
    norm = np.linalg.norm(vector)
    if not norm > 0:
        raise InputError("the face landmarks coincide; cannot place the electrode sites")
    return vector / norm


def frame_from_landmarks(eye_left, eye_right, mouth_left=None, mouth_right=None, *, up_hint=None,
                         method: str = "landmarks") -> FaceFrame:
    """A :class:`FaceFrame` from the eye centres and (optionally) the mouth corners.

    Left/right are the subject's. The montage is a frontal (2-D) picture, so ``up`` should be
    the head's vertical: ``up_hint`` when given (made perpendicular to the eye line), else the
    direction from the mouth to the eyes. The vertical scale comes from the eye-to-mouth height
    along ``up``; without mouth corners it equals the lateral scale (the canvas proportions).
    """
    eye_left, eye_right = np.asarray(eye_left, dtype=np.float64), np.asarray(eye_right, dtype=np.float64)
    origin = 0.5 * (eye_left + eye_right)
    lateral = _unit(eye_left - eye_right)
    lateral_per_mm = float(np.linalg.norm(eye_left - eye_right)) / (2.0 * EYE_CENTRE_MM[0])
    has_mouth = mouth_left is not None and mouth_right is not None
    if has_mouth:
        rise = origin - 0.5 * (np.asarray(mouth_left, dtype=np.float64) + np.asarray(mouth_right, dtype=np.float64))
    if up_hint is None and not has_mouth:
        up_hint = (0.0, 0.0, 1.0)
    direction = np.asarray(up_hint if up_hint is not None else rise, dtype=np.float64)
    up = _unit(direction - np.dot(direction, lateral) * lateral)
    up_per_mm = float(np.dot(rise, up)) / (EYE_CENTRE_MM[1] - MOUTH_CORNER_MM[1]) if has_mouth else lateral_per_mm
    if not up_per_mm > 0:
        raise InputError("the mouth landmarks are not below the eyes; cannot place the electrode sites")
    forward = np.cross(lateral, up)  # lateral = +X, up = +Z gives -Y: out of a Blender face
    return FaceFrame(origin, lateral, up, forward, lateral_per_mm, up_per_mm, method)






def site_weights(vertices: np.ndarray, site_points: np.ndarray, sigma: float, mask=None) -> np.ndarray:
    """(V, S) float32 Gaussian weights around each site point; per vertex they sum to at most 1."""
    squared = cdist(np.asarray(vertices, dtype=np.float64), np.asarray(site_points, dtype=np.float64),
                    "sqeuclidean")
    weights = np.exp(-squared / (2.0 * sigma * sigma))
    weights[weights < WEIGHT_FLOOR] = 0.0
    if mask is not None:
        weights[~np.asarray(mask, dtype=bool)] = 0.0
    total = weights.sum(axis=1, keepdims=True)
    return (weights / np.maximum(total, 1.0)).astype(np.float32)



def bounding_box_frame(vertices: np.ndarray) -> FaceFrame:
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    centre = 0.5 * (low + high)
    eye_z = low[2] + 0.55 * (high[2] - low[2])
    half = 0.2 * (high[0] - low[0])
    return frame_from_landmarks((centre[0] + half, centre[1], eye_z), (centre[0] - half, centre[1], eye_z),
                                up_hint=(0.0, 0.0, 1.0), method="bounding box (face toward -Y, +Z up)")



def montage_sites(names) -> tuple[list[str], np.ndarray]:
    known = {**dict(zip(FRIDLUND22, fridlund_sites_mm())), **dict(zip(KURAMOTO19, kuramoto_sites_mm()))}
    channels = [n for n in names if n in known]
    return channels, np.array([known[n] for n in channels], dtype=np.float64).reshape(-1, 2)
