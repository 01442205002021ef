"""Simulated sessions: a protocol's face and its sEMG with the ground truth, and their files.

:func:`simulate_session` runs a protocol (:mod:`.protocols`) and the synthesis (:mod:`.synthesis`);
:func:`write_session` writes the signal (through ``recording.write_recording``) with its
ground-truth sidecar, which :func:`read_truth` loads back.
"""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import EiferError, InputError
from ..expression.spaces import ARKIT52
from ..recording import WRITE_FORMATS, Annotation, Recording
from ..recording.montage import FRIDLUND22
from ..tracks import ExpressionTrack, MuscleTrack, Track
from . import physiology
from .physiology import MUSCLES_SPACE, UNIT_NAMES
from .protocols import generate_protocol
from .synthesis import (
    DEFAULT_RATE_HZ,
    MONTAGES,
    SubjectParams,
    activation_track,
    check_seed,
    crosstalk_matrix,
    resolve_subject,
    synthesize_emg,
    true_envelope,
)


@dataclass
class SimulatedSession:
    """A simulated recording with its ground truth.

    ``recording``: the sEMG (Fridlund-22, µV) with the protocol's events as annotations;
    ``arkit``: the face (ExpressionTrack, ``arkit52``); ``activations``: the true muscle
    activations (MuscleTrack, space ``"muscles"``, names ``physiology.UNIT_NAMES``);
    ``annotations``: every event, including blinks (``blink``) and motion artefacts
    (``artefact/motion``).
    """

    protocol: str
    recording: Recording
    arkit: ExpressionTrack
    activations: MuscleTrack
    annotations: list[Annotation]
    subject: SubjectParams
    seed: int
    meta: dict = field(default_factory=dict)

    def true_envelope(self, band_hz: tuple[float, float] | None = None) -> Track:
        """Noise-free RMS per channel and frame (see :func:`true_envelope`)."""
        return true_envelope(self.activations, self.subject, band_hz, self.recording.rate_hz)

    def action_units(self) -> Track:
        """FACS AU intensities per frame (names ``physiology.AU_CHANNELS``)."""
        return Track(physiology.activations_to_aus(self.activations.values), physiology.AU_CHANNELS,
                     self.activations.fps, "facs", "1", self.activations.start_s)


def simulate_session(protocol: str = "emotions", subject=1, duration_s: float = 60.0,
                     rate_hz: float = DEFAULT_RATE_HZ, fps: float = 60.0, montage: str = "fridlund22",
                     seed: int = 0) -> SimulatedSession:
    """Simulate one recording session with ground truth.

    Parameters
    ----------
    protocol : "emotions", "schaede" or "mixed" (see :func:`.protocols.generate_protocol`).
    subject : subject id (int ≥ 0) or :class:`SubjectParams`.
    duration_s, rate_hz, fps : length, sEMG sampling rate and ground-truth frame rate.
    montage : "fridlund22" (the only one simulated so far).
    seed : the same seed, subject and arguments give identical output.
    """
    if montage not in MONTAGES:
        raise InputError(f"montage {montage!r} cannot be simulated; available: {', '.join(MONTAGES)}")
    seed = check_seed(seed)
    if not (0 < duration_s <= 4 * 3600):
        raise InputError(f"duration must be between 0 and 4 hours, got {duration_s} s")
    if not fps > 0:
        raise InputError(f"fps must be positive, got {fps}")
    subject = resolve_subject(subject)
    rng = np.random.default_rng(np.random.SeedSequence([seed, subject.subject_id, 0xFACE]))
    result = generate_protocol(protocol, duration_s, fps, rng, subject.tonic, subject.blink_rate_per_min)
    activations = activation_track(result.activations, fps)
    arkit = np.clip(physiology.activations_to_arkit(result.activations) + result.exogenous, 0.0, 1.0)
    events = [a for a in result.annotations if a.description != "blink"]
    recording = synthesize_emg(activations, subject, rate_hz, seed, events)
    recording.meta["protocol"] = protocol
    recording.source = f"simulated {protocol}: subject {subject.subject_id}, seed {seed}"
    motions = [Annotation(o, d, "artefact/motion") for o, d in recording.meta["motion_artefacts"]]
    annotations = sorted(result.annotations + motions, key=lambda a: a.onset_s)
    return SimulatedSession(
        protocol=protocol, recording=recording,
        arkit=ExpressionTrack(arkit.astype(np.float32), ARKIT52, fps, "arkit52", "1"),
        activations=activations, annotations=annotations, subject=subject, seed=seed,
        meta={"duration_s": float(duration_s), "rate_hz": float(rate_hz), "fps": float(fps),
              "montage": montage})


# ---------------------------------------------------------------------------------------------
# Files


def truth_paths(recording_path) -> tuple[Path, Path]:
    """Where the ground truth of a recording file lives: ``<stem>_truth.npz``, ``<stem>_events.tsv``."""
    path = Path(recording_path)
    stem = path.stem
    for suffix in sorted(WRITE_FORMATS, key=len, reverse=True):  # "rec.fif.gz" -> "rec"
        if path.name.lower().endswith(suffix):
            stem = path.name[:-len(suffix)]
            break
    return path.with_name(f"{stem}_truth.npz"), path.with_name(f"{stem}_events.tsv")


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A compressed .npz with fixed zip timestamps, so equal data gives equal bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


def write_truth(session: SimulatedSession, recording_path) -> tuple[Path, Path]:
    """Write the ground-truth sidecar of ``session`` next to ``recording_path``.

    ``<stem>_truth.npz``: ``arkit`` (frames, 52), ``activations`` (frames, units),
    ``envelope_uv`` (frames, 22, noise-free RMS), their name arrays, ``fps``, ``start_s``,
    ``crosstalk`` (22, units), ``gains_uv``, the annotations (``onset_s``, ``duration_s``,
    ``description``), ``subject_json`` and ``meta_json``; no pickled objects.
    ``<stem>_events.tsv``: every annotation as BIDS events (onset, duration, trial_type).
    """
    truth_path, events_path = truth_paths(recording_path)
    envelope = session.true_envelope()
    meta = {**session.meta, "protocol": session.protocol, "seed": session.seed,
            "recording": Path(recording_path).name, "arkit_space": "arkit52",
            "activation_space": MUSCLES_SPACE}
    _write_npz(truth_path, {
        "arkit": session.arkit.values, "arkit_names": np.array(session.arkit.names),
        "activations": session.activations.values, "activation_names": np.array(UNIT_NAMES),
        "envelope_uv": envelope.values, "channel_names": np.array(FRIDLUND22),
        "fps": np.float64(session.arkit.fps), "start_s": np.float64(session.arkit.start_s),
        "crosstalk": crosstalk_matrix(session.subject), "gains_uv": session.subject.gains_uv,
        "onset_s": np.array([a.onset_s for a in session.annotations], dtype=np.float64),
        "duration_s": np.array([a.duration_s for a in session.annotations], dtype=np.float64),
        "description": np.array([a.description for a in session.annotations], dtype=str),
        "subject_json": np.array(json.dumps(session.subject.to_dict())),
        "meta_json": np.array(json.dumps(meta)),
    })
    rows = ["onset\tduration\ttrial_type"] + [
        f"{a.onset_s:.4f}\t{a.duration_s:.4f}\t{a.description}" for a in session.annotations]
    events_path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return truth_path, events_path


def write_session(session: SimulatedSession, path) -> dict[str, Path]:
    """Write the recording (format from the suffix: .edf, .bdf, .csv, ...) and its ground truth.

    Returns the written paths under "recording", "truth" and "events".
    """
    try:
        from ..recording import write_recording
    except ImportError as exc:  # the readers/writers module has not grown its writer yet
        raise EiferError("this build cannot write recordings yet "
                         "(eifer_blender.core.recording.write_recording is missing)") from exc
    path = write_recording(session.recording, Path(path))
    truth_path, events_path = write_truth(session, path)
    return {"recording": path, "truth": truth_path, "events": events_path}


@dataclass
class GroundTruth:
    """A simulated recording's ground truth as read back by :func:`read_truth`."""

    arkit: ExpressionTrack
    activations: MuscleTrack
    envelope: Track  # noise-free RMS per Fridlund channel, µV
    annotations: list[Annotation]
    crosstalk: np.ndarray
    subject: SubjectParams
    meta: dict


def read_truth(path) -> GroundTruth:
    """Load the ground truth of a simulated recording (pass the recording or its ``_truth.npz``)."""
    path = Path(path)
    truth_path = path if path.name.endswith("_truth.npz") else truth_paths(path)[0]
    if not truth_path.is_file():
        raise InputError(f"no ground truth for {path.name}: {truth_path} does not exist "
                         "(only recordings made by the simulator have one)")
    try:
        with np.load(truth_path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"{truth_path} is not a readable ground-truth file: {exc}") from exc
    needed = {"arkit", "arkit_names", "activations", "activation_names", "envelope_uv",
              "channel_names", "fps", "start_s", "onset_s", "duration_s", "description",
              "crosstalk", "subject_json", "meta_json"}
    missing = sorted(needed - set(arrays))
    if missing:
        raise InputError(f"{truth_path} lacks {', '.join(missing)}: not a simulator ground-truth file")
    fps, start_s = float(arrays["fps"]), float(arrays["start_s"])
    annotations = [Annotation(float(o), float(d), str(s)) for o, d, s in
                   zip(arrays["onset_s"], arrays["duration_s"], arrays["description"])]
    return GroundTruth(
        arkit=ExpressionTrack(arrays["arkit"], tuple(arrays["arkit_names"].tolist()), fps, "arkit52",
                              "1", start_s),
        activations=MuscleTrack(arrays["activations"], tuple(arrays["activation_names"].tolist()), fps,
                                MUSCLES_SPACE, "1", start_s),
        envelope=Track(arrays["envelope_uv"], tuple(arrays["channel_names"].tolist()), fps, "fridlund22",
                       "uV", start_s),
        annotations=annotations, crosstalk=arrays["crosstalk"],
        subject=SubjectParams.from_dict(json.loads(str(arrays["subject_json"]))),
        meta=json.loads(str(arrays["meta_json"])),
    )
