"""Protocols of the simulator: what a simulated person does over a session, as muscle activations.

``"schaede"``: the 11 Schaede et al. (2017) exercises in order, repeated to fill the duration;
``"emotions"``: the six basic emotions as EMFACS prototypes (``physiology.EMOTION_AUS``) in shuffled
rounds with random onset/apex/offset timing, intensity and left/right asymmetry; ``"mixed"``: free
random mixtures of 1-3 muscles, one- or two-sided, overlapping in time. Every protocol adds idle
variation (tonic rest activity, slow fluctuation), blinks and gaze.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d, uniform_filter1d

from ..errors import InputError
from ..expression.spaces import ARKIT52, ARKIT52_INDEX
from ..recording import Annotation
from ..recording.montage import SIDES
from .physiology import (
    AU_DRIVE,
    EMOTION_AUS,
    PROTOCOLS,
    SCHAEDE_EXERCISES,
    UNIT_INDEX,
    UNIT_KEYS,
    UNIT_NAMES,
)


@dataclass
class ProtocolResult:
    """What a protocol produces, sampled at ``fps``.

    ``activations`` (frames, len(UNIT_NAMES)) in [0, 1]; ``exogenous`` (frames, 52) ARKit weights
    that no muscle drives (gaze, cheekPuff), zero in every observable column; ``annotations`` the
    protocol's events (exercises, emotions, mixtures and blinks, description prefixes
    ``exercise/``, ``emotion/``, ``mixed/``, ``blink``).
    """

    activations: np.ndarray
    exogenous: np.ndarray
    annotations: list[Annotation]
    fps: float
    protocol: str


def envelope(times_s: np.ndarray, start_s: float, onset_s: float, apex_s: float,
             offset_s: float) -> np.ndarray:
    """A contraction's time course in [0, 1]: smooth rise, hold at the apex, smooth fall."""
    rise = np.clip((times_s - start_s) / max(onset_s, 1e-6), 0.0, 1.0)
    fall = np.clip((start_s + onset_s + apex_s + offset_s - times_s) / max(offset_s, 1e-6), 0.0, 1.0)
    level = np.minimum(rise, fall)
    return level * level * (3.0 - 2.0 * level)  # smoothstep: no kinks at onset and apex


def _unit_columns(key: str, side: str) -> list[int]:
    sides = SIDES if side == "both" else (side,)
    return [UNIT_INDEX[f"{key}_{s}"] for s in sides]


def _add_event(target: np.ndarray, times_s: np.ndarray, levels: dict[int, float],
               start_s: float, onset_s: float, apex_s: float, offset_s: float) -> None:
    """Add one contraction event to the frames it covers (the envelope is computed there only)."""
    end_s = start_s + onset_s + apex_s + offset_s
    first, last = np.searchsorted(times_s, [start_s, end_s], side="right")
    first = max(0, first - 1)
    if first >= last:
        return
    shape = envelope(times_s[first:last], start_s, onset_s, apex_s, offset_s)
    columns = np.fromiter(levels.keys(), dtype=np.int64)
    weights = np.fromiter(levels.values(), dtype=np.float64)
    target[first:last, columns] += shape[:, None] * weights[None, :]


def _idle(n_frames: int, fps: float, rng: np.random.Generator, tonic: np.ndarray) -> np.ndarray:
    """Rest activity: each unit's tonic level with a slow (~0.3 Hz) fluctuation around it."""
    slow = gaussian_filter1d(rng.standard_normal((n_frames, len(UNIT_NAMES))), sigma=0.5 * fps,
                             axis=0, mode="wrap")
    slow /= max(float(slow.std()), 1e-12)
    return np.clip(tonic[None, :] * (1.0 + 0.4 * slow), 0.0, None)


def _blinks(activations: np.ndarray, times_s: np.ndarray, rng: np.random.Generator,
            rate_per_min: float, annotations: list[Annotation]) -> None:
    """Spontaneous blinks: a Poisson train (≥1 s apart), fast closure, slower reopening."""
    duration_s = times_s[-1] + (times_s[1] - times_s[0] if len(times_s) > 1 else 0.0)
    t = rng.exponential(60.0 / rate_per_min)
    columns = _unit_columns("OrbOcBlink", "both")
    while t < duration_s:
        close_s, open_s = rng.uniform(0.06, 0.1), rng.uniform(0.12, 0.2)
        depth = rng.uniform(0.85, 1.0)
        levels = {columns[0]: depth * rng.uniform(0.97, 1.0), columns[1]: depth * rng.uniform(0.97, 1.0)}
        _add_event(activations, times_s, levels, t, close_s, 0.03, open_s)
        annotations.append(Annotation(round(t, 4), round(close_s + 0.03 + open_s, 4), "blink"))
        t += max(1.0, rng.exponential(60.0 / rate_per_min))


def _gaze(n_frames: int, fps: float, rng: np.random.Generator) -> np.ndarray:
    """Exogenous ARKit weights for gaze: fixations of 0.3-2.5 s joined by ~50 ms saccades."""
    exogenous = np.zeros((n_frames, len(ARKIT52)), dtype=np.float32)
    n_fix = int(n_frames / fps / 0.3) + 2
    lengths = np.maximum(1, np.round(rng.uniform(0.3, 2.5, n_fix) * fps)).astype(np.int64)
    targets = np.clip(rng.normal(0.0, 0.15, (n_fix, 2)), -0.5, 0.5)
    gaze = np.repeat(targets, lengths, axis=0)[:n_frames]
    gaze = uniform_filter1d(gaze, size=max(1, int(round(0.05 * fps))), axis=0, mode="nearest")
    leftward, up = gaze[:, 0], gaze[:, 1]  # gaze towards the subject's left, upwards
    for name, value in (("eyeLookOutLeft", leftward), ("eyeLookInRight", leftward),
                        ("eyeLookInLeft", -leftward), ("eyeLookOutRight", -leftward),
                        ("eyeLookUpLeft", up), ("eyeLookUpRight", up),
                        ("eyeLookDownLeft", -up), ("eyeLookDownRight", -up)):
        exogenous[:, ARKIT52_INDEX[name]] = np.clip(value, 0.0, 1.0)
    return exogenous


def _asymmetric_levels(unit_levels: dict[str, float], asymmetry: float,
                       rng: np.random.Generator | None = None, jitter: float = 0.0) -> dict[int, float]:
    """Unit key -> level becomes column -> level, left scaled by 1+asymmetry, right by 1-asymmetry."""
    levels: dict[int, float] = {}
    for key, level in unit_levels.items():
        scale = 1.0 - jitter * rng.random() if rng is not None and jitter else 1.0
        for side, factor in (("R", 1.0 - asymmetry), ("L", 1.0 + asymmetry)):
            column = UNIT_INDEX[f"{key}_{side}"]
            levels[column] = levels.get(column, 0.0) + min(1.0, level * factor * scale)
    return levels


def _schaede(times_s, activations, exogenous, rng, annotations) -> None:
    duration_s = times_s[-1] if len(times_s) else 0.0
    t, i = rng.uniform(0.5, 1.5), 0
    while t < duration_s:
        exercise = SCHAEDE_EXERCISES[i % len(SCHAEDE_EXERCISES)]
        onset, apex, offset = rng.uniform(0.3, 0.6), rng.uniform(2.0, 3.0), rng.uniform(0.4, 0.8)
        intensity, asymmetry = rng.uniform(0.75, 1.0), rng.uniform(-0.1, 0.1)
        levels = _asymmetric_levels({k: v * intensity for k, v in exercise.levels}, asymmetry)
        if levels:
            _add_event(activations, times_s, levels, t, onset, apex, offset)
        if exercise.exogenous:
            exo = {ARKIT52_INDEX[name]: value * intensity for name, value in exercise.exogenous}
            _add_event(exogenous, times_s, exo, t, onset, apex, offset)
        annotations.append(Annotation(round(t, 4), round(onset + apex + offset, 4),
                                      f"exercise/{exercise.name}"))
        t += onset + apex + offset + rng.uniform(1.0, 2.0)
        i += 1


def emotion_unit_levels(emotion: str) -> dict[str, float]:
    """Unit key -> apex level that shows an emotion's EMFACS prototype at full intensity."""
    if emotion not in EMOTION_AUS:
        raise InputError(f"unknown emotion {emotion!r}; known: {', '.join(EMOTION_AUS)}")
    levels: dict[str, float] = {}
    for au in EMOTION_AUS[emotion]:
        for key, weight in AU_DRIVE[au]:
            levels[key] = min(1.0, levels.get(key, 0.0) + weight)
    return levels


def _emotions(times_s, activations, rng, annotations) -> None:
    duration_s = times_s[-1] if len(times_s) else 0.0
    names = list(EMOTION_AUS)
    order: list[str] = []
    t = rng.uniform(0.5, 1.5)
    while t < duration_s:
        if not order:  # shuffled rounds: every emotion once before any repeats
            order = [names[j] for j in rng.permutation(len(names))]
        emotion = order.pop()
        onset, apex, offset = rng.uniform(0.3, 0.8), rng.uniform(1.0, 2.5), rng.uniform(0.5, 1.2)
        intensity, asymmetry = rng.uniform(0.35, 1.0), rng.uniform(-0.3, 0.3)
        for key, level in emotion_unit_levels(emotion).items():
            # Each muscle joins with its own small lag and strength, as in posed expressions.
            lag = rng.uniform(0.0, 0.12)
            levels = _asymmetric_levels({key: level * intensity}, asymmetry, rng, jitter=0.25)
            _add_event(activations, times_s, levels, t + lag, onset, apex - lag / 2, offset)
        annotations.append(Annotation(round(t, 4), round(onset + apex + offset, 4), f"emotion/{emotion}"))
        t += onset + apex + offset + rng.uniform(1.0, 2.0)


_MIXABLE = tuple(k for k in UNIT_KEYS if k != "OrbOcBlink")  # blinks come on their own


def _mixed(times_s, activations, rng, annotations) -> None:
    duration_s = times_s[-1] if len(times_s) else 0.0
    t = rng.exponential(0.8)
    while t < duration_s:
        keys = [_MIXABLE[j] for j in rng.choice(len(_MIXABLE), size=rng.integers(1, 4), replace=False)]
        side = ("both", "both", "both", "L", "R")[rng.integers(5)]
        onset, apex, offset = rng.uniform(0.15, 0.8), rng.uniform(0.2, 2.5), rng.uniform(0.2, 1.0)
        levels: dict[int, float] = {}
        for key in keys:
            level = rng.uniform(0.15, 1.0)
            for column in _unit_columns(key, side):
                levels[column] = level * (rng.uniform(0.8, 1.0) if side == "both" else 1.0)
        _add_event(activations, times_s, levels, t, onset, apex, offset)
        annotations.append(Annotation(round(t, 4), round(onset + apex + offset, 4),
                                      f"mixed/{'+'.join(keys)}/{side}"))
        t += rng.exponential(1.6)


def generate_protocol(protocol: str, duration_s: float, fps: float, rng: np.random.Generator,
                      tonic: np.ndarray | None = None, blink_rate_per_min: float = 15.0) -> ProtocolResult:
    """Muscle activations, exogenous ARKit weights and annotations of one protocol run.

    Parameters
    ----------
    protocol : {"emotions", "schaede", "mixed"}
    duration_s, fps : length and frame rate of the result.
    rng : the random stream (same stream state → same result).
    tonic : per-unit rest activation (len(UNIT_NAMES),); default 0.01 everywhere.
    blink_rate_per_min : mean spontaneous blink rate; 0 turns blinks off.
    """
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol {protocol!r}; choose one of: {', '.join(PROTOCOLS)}")
    if not duration_s > 0 or not fps > 0:
        raise InputError(f"duration and fps must be positive, got {duration_s} s at {fps} fps")
    n_frames = max(2, int(round(duration_s * fps)))
    times_s = np.arange(n_frames) / fps
    tonic = np.full(len(UNIT_NAMES), 0.01) if tonic is None else np.asarray(tonic, dtype=np.float64)
    activations = _idle(n_frames, fps, rng, tonic)
    exogenous = _gaze(n_frames, fps, rng)
    annotations: list[Annotation] = []
    if protocol == "schaede":
        _schaede(times_s, activations, exogenous, rng, annotations)
    elif protocol == "emotions":
        _emotions(times_s, activations, rng, annotations)
    else:
        _mixed(times_s, activations, rng, annotations)
    if blink_rate_per_min > 0:
        _blinks(activations, times_s, rng, blink_rate_per_min, annotations)
    end_s = n_frames / fps  # events cut off by the end of the recording end with it
    annotations = sorted((Annotation(a.onset_s, round(min(a.duration_s, end_s - a.onset_s), 4),
                                     a.description) for a in annotations if a.onset_s < end_s),
                         key=lambda a: a.onset_s)
    return ProtocolResult(np.clip(activations, 0.0, 1.0).astype(np.float32),
                          np.clip(exogenous, 0.0, 1.0).astype(np.float32), annotations, fps, protocol)
