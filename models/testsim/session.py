"""Protocols and sessions of the test simulator.

FROZEN, TEST-ONLY: part of :mod:`models.testsim`; never use it to train or tune a model.

Protocols (:data:`TEST_PROTOCOLS`):

``emotions``  happy, sad, angry, disgust, surprise, fear, neutral in shuffled rounds; about a third
              of the events are mild or covert (drive 0.08-0.25), the rest 0.3-0.8;
              annotations ``emotion/<name>``.
``posed``     single action units in a fixed (Schaede-like) order, drive 0.4-0.9, a fifth mild;
              annotations ``au/<number>``.
``mixed``     speech (``speech``: orbicularis oris, mentalis, DAO, jaw openers, some masseter at a
              4-6 Hz syllable rhythm) and chewing (``chewing``: masseter bursts at 1.2-1.8 Hz) periods
              between emotion and posed events.

Every protocol has blinks (``blink``, 8-20 a minute) and motion artefacts (``artefact/motion``).
Commanded drives go through the subject's synergies (:func:`.face.apply_synergies`); the ARKit
truth is the face's answer to the activations (:func:`.face.face_arkit`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from eifer_blender.core.expression.spaces import ARKIT52
from eifer_blender.core.recording import Annotation, Recording
from eifer_blender.core.recording.montage import FRIDLUND22
from eifer_blender.core.tracks import ExpressionTrack, MuscleTrack

from . import face, signal

TEST_PROTOCOLS: tuple[str, ...] = ("emotions", "posed", "mixed")
ACTIVATION_SPACE = "testsim_muscles"

# emotion -> commanded drive per muscle (EMFACS-like prototypes, this simulator's own choice)
EMOTION_DRIVES: dict[str, dict[str, float]] = {
    "happy": {"zygomaticus": 1.0, "orbicularis_oculi": 0.35},
    "sad": {"corrugator": 0.6, "frontalis_medial": 0.5, "dao": 0.7, "mentalis": 0.3},
    "angry": {"corrugator": 1.0, "depressor_supercilii": 0.6, "levator_palpebrae": 0.4,
              "orbicularis_oris": 0.5, "masseter": 0.2},
    "disgust": {"levator_labii": 1.0, "dao": 0.4, "depressor_labii": 0.4, "corrugator": 0.3},
    "surprise": {"frontalis_medial": 1.0, "frontalis_lateral": 0.9, "levator_palpebrae": 0.8,
                 "jaw_openers": 0.6},
    "fear": {"frontalis_medial": 0.8, "frontalis_lateral": 0.5, "corrugator": 0.5,
             "levator_palpebrae": 0.8, "risorius": 0.7, "jaw_openers": 0.3},
    "neutral": {},
}
# posed action unit -> commanded drive per muscle, in the protocol's order
POSED_AUS: dict[int, dict[str, float]] = {
    1: {"frontalis_medial": 1.0}, 2: {"frontalis_lateral": 1.0},
    4: {"corrugator": 1.0, "depressor_supercilii": 0.6}, 6: {"orbicularis_oculi": 1.0},
    12: {"zygomaticus": 1.0}, 9: {"levator_labii": 1.0}, 15: {"dao": 1.0}, 17: {"mentalis": 1.0},
    18: {"orbicularis_oris": 1.0}, 20: {"risorius": 1.0}, 5: {"levator_palpebrae": 1.0},
    14: {"buccinator": 1.0}, 16: {"depressor_labii": 1.0}, 26: {"jaw_openers": 1.0},
    31: {"masseter": 1.0},
}
SPEECH_DRIVES: dict[str, float] = {"orbicularis_oris": 0.4, "mentalis": 0.2, "dao": 0.15,
                                   "jaw_openers": 0.4, "masseter": 0.25, "buccinator": 0.25,
                                   "risorius": 0.1, "levator_labii": 0.1, "depressor_labii": 0.25}


@dataclass
class TestSession:
    """A test recording with its ground truth.

    ``recording``: the 22 Fridlund channels in µV at ``rate_hz``, expression/task events as
    annotations; ``arkit``: what the face does (ExpressionTrack, ``arkit52``, in [0, 1], at
    ``fps``); ``annotations``: every event (``emotion/<name>``, ``au/<n>``, ``speech``,
    ``chewing``, ``probe/<muscle>_<side>``, ``blink``, ``artefact/motion``); ``activations``:
    the true muscle activations (MuscleTrack, space ``testsim_muscles``, names
    ``face.SOURCE_NAMES``, [0, 1] above rest); ``gain``: the amplifier gain on the muscle signal.
    """

    __test__ = False  # not a pytest class

    protocol: str
    recording: Recording
    arkit: ExpressionTrack
    annotations: list[Annotation]
    activations: MuscleTrack
    gain: float
    meta: dict = field(default_factory=dict)


def _envelope(times_s: np.ndarray, onset_s: float, rise_s: float, hold_s: float, fall_s: float) -> np.ndarray:
    """Raised-cosine trapezoid: 0 before onset, 1 during the hold, 0 after the fall."""
    t = times_s - onset_s
    up = 0.5 - 0.5 * np.cos(np.pi * np.clip(t / rise_s, 0.0, 1.0))
    down = 0.5 + 0.5 * np.cos(np.pi * np.clip((t - rise_s - hold_s) / fall_s, 0.0, 1.0))
    return up * down


def _add(drive: np.ndarray, levels: dict[str, float], shape: np.ndarray, sides=(1.0, 1.0)) -> None:
    for muscle, level in levels.items():
        m = face.MUSCLE_INDEX[muscle]
        for s in range(2):
            drive[:, m, s] = np.maximum(drive[:, m, s], level * sides[s] * shape)


def _event(times_s, rng, onset_s, strong, mild, mild_share) -> tuple[np.ndarray, float, float]:
    rise, hold, fall = rng.uniform(0.3, 0.7), rng.uniform(1.5, 3.0), rng.uniform(0.4, 0.8)
    level = rng.uniform(*mild) if rng.random() < mild_share else rng.uniform(*strong)
    return _envelope(times_s, onset_s, rise, hold, fall), level, rise + hold + fall


def _sides(rng) -> tuple[float, float]:
    return tuple(1.0 - rng.uniform(0.0, 0.15, 2))


def _emotion(times_s, drive, rng, onset_s, name, annotations) -> float:
    shape, level, duration = _event(times_s, rng, onset_s, (0.3, 0.8), (0.08, 0.25), 0.35)
    _add(drive, {m: v * level for m, v in EMOTION_DRIVES[name].items()}, shape, _sides(rng))
    annotations.append(Annotation(float(onset_s), float(duration), f"emotion/{name}"))
    return duration


def _posed(times_s, drive, rng, onset_s, au, annotations) -> float:
    shape, level, duration = _event(times_s, rng, onset_s, (0.4, 0.9), (0.1, 0.3), 0.2)
    _add(drive, {m: v * level for m, v in POSED_AUS[au].items()}, shape, _sides(rng))
    annotations.append(Annotation(float(onset_s), float(duration), f"au/{au}"))
    return duration


def _speech(times_s, drive, rng, onset_s, annotations, end_s) -> float:
    duration = min(rng.uniform(4.0, 7.0), max(end_s - onset_s, 1.0))
    window = _envelope(times_s, onset_s, 0.2, duration - 0.4, 0.2)
    dt = times_s[1] - times_s[0] if len(times_s) > 1 else 1.0
    rate = rng.uniform(4.0, 6.0) * (1.0 + 0.15 * np.sin(2 * np.pi * 0.3 * times_s + rng.uniform(0, 6.3)))
    syllables = 0.5 - 0.5 * np.cos(2 * np.pi * np.cumsum(rate) * dt)
    # words: the voice pauses now and then
    gate = (np.sin(2 * np.pi * rng.uniform(0.4, 0.8) * times_s + rng.uniform(0, 6.3)) > -0.6).astype(float)
    width = max(int(round(0.1 / dt)), 1)
    gate = np.convolve(gate, np.ones(width) / width, mode="same")
    shape = window * syllables * gate
    scale = rng.uniform(0.8, 1.3)
    _add(drive, {m: v * scale for m, v in SPEECH_DRIVES.items()}, shape, _sides(rng))
    annotations.append(Annotation(float(onset_s), float(duration), "speech"))
    return duration


def _chewing(times_s, drive, rng, onset_s, annotations, end_s) -> float:
    duration = min(rng.uniform(4.0, 7.0), max(end_s - onset_s, 1.2))
    window = _envelope(times_s, onset_s, 0.3, duration - 0.6, 0.3)
    phase = 2 * np.pi * rng.uniform(1.2, 1.8) * (times_s - onset_s)
    close = np.maximum(0.0, np.sin(phase)) ** 2
    opening = np.maximum(0.0, -np.sin(phase)) ** 2
    level = rng.uniform(0.4, 0.9)
    bias = 0.3 * np.sin(2 * np.pi * 0.15 * (times_s - onset_s))  # the bolus moves side to side
    m = face.MUSCLE_INDEX["masseter"]
    drive[:, m, 0] = np.maximum(drive[:, m, 0], level * (1.0 + bias) * close * window)
    drive[:, m, 1] = np.maximum(drive[:, m, 1], level * (1.0 - bias) * close * window)
    _add(drive, {"jaw_openers": 0.35, "buccinator": 0.2}, opening * window)
    _add(drive, {"orbicularis_oris": 0.1}, close * window)
    annotations.append(Annotation(float(onset_s), float(duration), "chewing"))
    return duration


def _blinks(times_s, rng, duration_s, annotations) -> np.ndarray:
    """Pretarsal orbicularis oculi activation (frames,) of spontaneous blinks."""
    out = np.zeros_like(times_s)
    rate = rng.uniform(8.0, 20.0) / 60.0
    t = rng.exponential(1.0 / rate) + 0.5
    while t < duration_s - 0.5:
        length = rng.uniform(0.12, 0.25)
        level = rng.uniform(0.8, 1.0)
        x = np.clip((times_s - t) / length, 0.0, 1.0)
        out = np.maximum(out, level * np.sin(np.pi * x) ** 2)
        annotations.append(Annotation(float(t), float(length), "blink"))
        t += max(1.0, rng.exponential(1.0 / rate))
    return out


def _protocol(protocol, times_s, drive, rng, duration_s, annotations) -> None:
    t = rng.uniform(1.5, 2.5)
    emotions, aus = list(EMOTION_DRIVES), list(POSED_AUS)
    queue: list[str] = []
    k = 0
    while True:
        if protocol == "emotions":
            if not queue:
                queue = list(rng.permutation(emotions))
            kind, item = "emotion", queue.pop()
        elif protocol == "posed":
            kind, item = "posed", aus[k % len(aus)]
        else:
            kind = ("speech", "emotion", "chewing", "posed")[k % 4]
            item = emotions[rng.integers(len(emotions) - 1)] if kind == "emotion" else aus[rng.integers(len(aus))]
        if t + 5.2 > duration_s - 0.5 and k > 0 or t + 2.0 > duration_s:
            break
        if kind == "emotion":
            used = _emotion(times_s, drive, rng, t, item, annotations)
        elif kind == "posed":
            used = _posed(times_s, drive, rng, t, item, annotations)
        elif kind == "speech":
            used = _speech(times_s, drive, rng, t, annotations, duration_s - 0.5)
        else:
            used = _chewing(times_s, drive, rng, t, annotations, duration_s - 0.5)
        t += used + rng.uniform(2.0, 3.5)
        k += 1


def _check(duration_s, rate_hz, fps, mains_hz) -> None:
    if not 0 < duration_s <= 4 * 3600:
        raise ValueError(f"duration must be between 0 and 4 hours, got {duration_s} s")
    if not rate_hz >= 1000:
        raise ValueError(f"rate_hz must be at least 1000 Hz for sEMG, got {rate_hz}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if not 0 < mains_hz < 0.5 * rate_hz:
        raise ValueError(f"mains_hz must be 50 or 60 (below Nyquist), got {mains_hz}")


def _finish(protocol, drive, synergies, fps, subject, rng, rate_hz, duration_s, gain,
            mains_hz, motion, clean, annotations, events, meta) -> TestSession:
    activations = face.apply_synergies(drive, synergies) if synergies is not None else np.clip(drive, 0, 1)
    arkit = np.clip(face.face_arkit(activations, fps), 0.0, 1.0)
    columns = face.to_columns(activations)
    gain = subject.gain if gain is None else float(gain)
    if not gain > 0:
        raise ValueError(f"gain must be positive, got {gain}")
    data = signal.synthesize(columns, fps, subject, rate_hz, duration_s, rng, gain, mains_hz,
                             motion, clean)
    for ev in motion or ():
        annotations.append(Annotation(ev["onset_s"], ev["duration_s"], "artefact/motion"))
    for a in annotations:  # a short session may cut its last event
        a.duration_s = float(min(a.duration_s, duration_s - a.onset_s))
    annotations.sort(key=lambda a: a.onset_s)
    recording = Recording(data, float(rate_hz), list(FRIDLUND22),
                          annotations=sorted(events, key=lambda a: a.onset_s),
                          source=f"testsim {protocol}: subject {subject.subject_id}",
                          meta={"simulator": "models.testsim", "test_only": True})
    from . import source_hash
    full_meta = {"simulator": "models.testsim", "test_only": True, "source_hash": source_hash(),
                 "protocol": protocol, "subject": subject.subject_id, "duration_s": float(duration_s),
                 "rate_hz": float(rate_hz), "fps": float(fps), "gain": gain, "mains_hz": float(mains_hz),
                 "clean": bool(clean), "electrode_shift_mm": subject.shifts_mm.tolist(),
                 "crosstalk_spread_mm": subject.spread_mm, "mixing": subject.mixing().tolist(),
                 "source_names": list(face.SOURCE_NAMES), **meta}
    return TestSession(
        protocol=protocol, recording=recording,
        arkit=ExpressionTrack(arkit.astype(np.float32), ARKIT52, fps, "arkit52", "1"),
        annotations=annotations,
        activations=MuscleTrack(columns.astype(np.float32), face.SOURCE_NAMES, fps, ACTIVATION_SPACE, "1"),
        gain=gain, meta=full_meta)


def simulate_test_session(protocol: str, subject: int, duration_s: float = 60.0, rate_hz: float = 2048.0,
                          fps: float = 30.0, seed: int = 0, *, gain: float | None = None,
                          mains_hz: float = 50.0, clean: bool = False) -> TestSession:
    """Simulate one test session (see the module docstring for the protocols).

    Parameters
    ----------
    protocol : one of :data:`TEST_PROTOCOLS`.
    subject : subject id (int ≥ 0): electrodes, synergies, levels and the default gain.
    duration_s, rate_hz, fps : length, sEMG rate and ground-truth frame rate.
    seed : what the subject does; the same arguments give identical output.
    gain : amplifier gain on the muscle signal (default: the subject's, 0.3-3×).
    mains_hz : 50 or 60.
    clean : an ideal amplifier: no noise, mains, wander or motion artefacts.
    """
    if protocol not in TEST_PROTOCOLS:
        raise ValueError(f"unknown test protocol {protocol!r}; available: {', '.join(TEST_PROTOCOLS)}")
    _check(duration_s, rate_hz, fps, mains_hz)
    subject_params = signal.make_signal_subject(int(subject))
    synergies = face.make_synergies(np.random.default_rng([0x7E57, 1, int(subject)]))
    rng = np.random.default_rng([0x7E57, 3, int(subject), int(seed)])
    n_frames = int(round(duration_s * fps))
    times = np.arange(n_frames) / fps
    drive = np.zeros((n_frames, len(face.MUSCLES), 2))
    annotations: list[Annotation] = []
    _protocol(protocol, times, drive, rng, duration_s, annotations)
    events = list(annotations)
    blink = _blinks(times, rng, duration_s, annotations)
    p = face.MUSCLE_INDEX["orbicularis_oculi_pretarsal"]
    drive[:, p, 0] = np.maximum(drive[:, p, 0], blink)
    drive[:, p, 1] = np.maximum(drive[:, p, 1], blink)
    motion_rng = np.random.default_rng([0x7E57, 5, int(subject), int(seed)])
    motion = None if clean else signal.motion_events(motion_rng, duration_s, subject_params.motion_per_min)
    return _finish(protocol, drive, synergies, fps, subject_params, rng, rate_hz, duration_s,
                   gain, mains_hz, motion, clean, annotations, events,
                   {"seed": int(seed), "synergies": synergies.tolist()})


def probe_session(muscle: str, side: str, duration_s: float = 20.0, rate_hz: float = 2048.0,
                  fps: float = 30.0, seed: int = 0, level: float = 0.6, *, subject: int = 0,
                  gain: float | None = None, mains_hz: float = 50.0, clean: bool = False) -> TestSession:
    """Only ``muscle`` on ``side`` ("L"/"R") contracts, in bursts at ``level``; the rest stays at rest.

    No synergies, blinks or motion artefacts; noise and mains unless ``clean``. Bursts are
    annotated ``probe/<muscle>_<side>``. ``muscle``: one of :data:`.face.PROBE_MUSCLES`.
    """
    if muscle not in face.PROBE_MUSCLES:
        raise ValueError(f"unknown probe muscle {muscle!r}; available: {', '.join(face.PROBE_MUSCLES)}")
    if side not in face.SIDES:
        raise ValueError(f"side must be 'L' or 'R', got {side!r}")
    if not 0 < level <= 1:
        raise ValueError(f"level must lie in (0, 1], got {level}")
    _check(duration_s, rate_hz, fps, mains_hz)
    subject_params = signal.make_signal_subject(int(subject))
    rng = np.random.default_rng([0x7E57, 4, int(subject), int(seed), face.MUSCLE_INDEX[muscle]])
    n_frames = int(round(duration_s * fps))
    times = np.arange(n_frames) / fps
    drive = np.zeros((n_frames, len(face.MUSCLES), 2))
    annotations: list[Annotation] = []
    m, s = face.MUSCLE_INDEX[muscle], face.SIDES.index(side)
    t = rng.uniform(1.5, 2.5)
    while t + 2.5 < duration_s - 0.5:
        rise, hold, fall = rng.uniform(0.2, 0.4), rng.uniform(1.5, 2.5), rng.uniform(0.2, 0.4)
        drive[:, m, s] = np.maximum(drive[:, m, s], level * _envelope(times, t, rise, hold, fall))
        annotations.append(Annotation(float(t), float(rise + hold + fall), f"probe/{muscle}_{side}"))
        t += rise + hold + fall + rng.uniform(2.0, 3.0)
    return _finish(f"probe/{muscle}_{side}", drive, None, fps, subject_params, rng, rate_hz,
                   duration_s, gain, mains_hz, None, clean, annotations, list(annotations),
                   {"seed": int(seed), "probe": {"muscle": muscle, "side": side, "level": float(level)}})
