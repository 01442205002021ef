"""EIFER's evaluation protocol: scores per event-centred clip and per output, never pooled.

Büchner et al. (CVPR 2025) score a model on ~6 s clips centred on the expression events of a
session, per output, and report the median (and spread) over the clips where the output is
relevant. In: ``pred`` and ``true`` shaped (frames, outputs) on one clock at ``fps``, and the
event times; out: per-clip score arrays shaped (clips, outputs), relevance masks of that shape,
per-output onset F1, and their medians and quartiles.

The controls beside the scores: :func:`floored` (the "rest-floored" reading, where values below
a rest floor tie), :func:`random_amplitude_control` (keeps a prediction's on/off frames and
randomises its amplitudes: the share of a floored ρ that is just on/off) and
:func:`mean_face_baseline` (the training mean for every frame).

Shared parameters
-----------------
pred, true : array (frames, outputs)
    Prediction and truth on one clock; a 1-D array counts as one output.
fps : float
    Frame rate of both, in frames per second.
clips : list of slice
    Frame ranges, as :func:`event_clips` returns them.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .metrics import rmse, smape, spearman

CLIP_LENGTH_S = 6.0
RELEVANT_THRESHOLD = 0.1  # an output is relevant in a clip where its truth reaches this
REST_FLOOR = 0.05  # below this a weight is rest: floored readings tie it, peak ratios skip it
ONSET_TOLERANCE_S = 0.25
MIN_ON_S = 0.1  # onset detection: runs shorter than this are jitter
MIN_GAP_S = 0.1  # onset detection: dips shorter than this do not end a run
SCORE_NAMES: tuple[str, ...] = ("spearman", "smape", "rmse", "peak_ratio")


# ---------------------------------------------------------------------------------- checks
def _as_frames(values, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise ValueError(f"{name} must be (frames, outputs), got shape {values.shape}")
    return values


def _check_pair(pred, true) -> tuple[np.ndarray, np.ndarray]:
    pred, true = _as_frames(pred, "pred"), _as_frames(true, "true")
    if pred.shape != true.shape:
        raise ValueError(f"pred has shape {pred.shape} but true has shape {true.shape}: both must "
                         "be (frames, outputs) on one clock; trim or resample one of them first")
    return pred, true


def _check_fps(fps) -> float:
    fps = float(fps)
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    return fps


def _check_clips(clips, n_frames: int) -> list[slice]:
    clips = list(clips)
    for clip in clips:
        if not isinstance(clip, slice) or clip.step not in (None, 1):
            raise ValueError(f"clips must be contiguous slices (as event_clips returns), got {clip!r}")
        if not (isinstance(clip.start, (int, np.integer)) and isinstance(clip.stop, (int, np.integer))
                and 0 <= clip.start < clip.stop <= n_frames):
            raise ValueError(f"clip {clip} is not a non-empty frame range inside the {n_frames} "
                             "frames of the track")
    return clips


def _frames(seconds: float, fps: float) -> int:
    return int(np.floor(seconds * fps + 0.5))


# ------------------------------------------------------------------------------------ clips
def event_clips(centres_s, n_frames: int, fps: float, length_s: float = CLIP_LENGTH_S) -> list[slice]:
    """One clip of ``length_s`` centred on each event, clipped to the recording.

    EIFER centres its clips on the expression event: pass each event's centre
    (``onset_s + duration_s / 2``, as :func:`event_centres_s` computes it), or the onsets for
    onset-centred clips. A clip covers ``round(length_s * fps)`` frames starting half of them
    before the centre frame ``round(centre_s * fps)``; the part outside ``[0, n_frames)`` is cut
    off, and a clip left with fewer than half its frames is dropped (exactly half is kept).

    Parameters
    ----------
    centres_s : sequence of float
        Clip centres in seconds on the track's clock (frame k is at ``k / fps``).
    n_frames : int
        Frames in the recording.
    fps : float
    length_s : float
        Clip length in seconds (EIFER: about 6 s).

    Returns
    -------
    list of slice
        One frame range per kept clip, in the order of ``centres_s``.
    """
    fps = _check_fps(fps)
    if not (np.isfinite(length_s) and length_s > 0):
        raise ValueError(f"clip length must be a positive number of seconds, got {length_s}")
    if int(n_frames) != n_frames or n_frames < 0:
        raise ValueError(f"n_frames must be a whole number ≥ 0, got {n_frames}")
    centres = np.asarray(centres_s, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(centres)):
        raise ValueError("event times must be finite numbers of seconds")
    length = max(1, _frames(length_s, fps))
    clips = []
    for centre in centres:
        start = _frames(centre, fps) - length // 2
        begin, end = max(start, 0), min(start + length, int(n_frames))
        if 2 * (end - begin) >= length:
            clips.append(slice(begin, end))
    return clips


def event_centres_s(onsets_s, durations_s) -> np.ndarray:
    """The centre of each event in seconds: ``onset_s + duration_s / 2``."""
    onsets = np.asarray(onsets_s, dtype=np.float64).reshape(-1)
    durations = np.asarray(durations_s, dtype=np.float64).reshape(-1)
    if onsets.shape != durations.shape:
        raise ValueError(f"{len(onsets)} onsets but {len(durations)} durations")
    if np.any(durations < 0):
        raise ValueError("event durations must be ≥ 0 seconds")
    return onsets + durations / 2.0


def relevant_mask(true, clips, threshold: float = RELEVANT_THRESHOLD, extra=None) -> np.ndarray:
    """Which outputs each clip can score: bool (clips, outputs).

    A clip is relevant for an output where the truth reaches ``threshold`` inside the clip, or
    where ``extra[clip, output]`` is true (e.g. the clip's emotion contracts the muscle, even if
    this subject barely moved it).
    """
    true = _as_frames(true, "true")
    clips = _check_clips(clips, len(true))
    mask = np.zeros((len(clips), true.shape[1]), dtype=bool)
    for i, clip in enumerate(clips):
        mask[i] = np.max(true[clip], axis=0) >= threshold
    if extra is not None:
        extra = np.asarray(extra)
        if extra.shape != mask.shape:
            raise ValueError(f"extra has shape {extra.shape} but the mask is (clips, outputs) = {mask.shape}")
        mask |= extra.astype(bool)
    return mask


# ----------------------------------------------------------------------------------- scores
def peak_ratio(pred, true, floor: float = REST_FLOOR) -> np.ndarray:
    """``max(pred) / max(true)`` per output; NaN where the true maximum is below ``floor``."""
    pred, true = _check_pair(pred, true)
    if len(true) == 0:
        raise ValueError("cannot score an empty clip (0 frames)")
    peak_true = np.max(true, axis=0)
    ratio = np.full(true.shape[1], np.nan)
    np.divide(np.max(pred, axis=0), peak_true, out=ratio, where=peak_true >= floor)
    return ratio


def per_clip_scores(pred, true, clips, peak_floor: float = REST_FLOOR) -> dict[str, np.ndarray]:
    """EIFER's scores on each clip, each output: ``{name: array (clips, outputs)}``.

    ``spearman``: Spearman ρ (NaN where either series is constant in the clip); ``smape``:
    SMAPE in percent (0 to 200); ``rmse``: root mean squared error; ``peak_ratio``: the clip's
    predicted peak over its true peak (NaN where the true peak is below ``peak_floor``).
    """
    pred, true = _check_pair(pred, true)
    clips = _check_clips(clips, len(true))
    shape = (len(clips), true.shape[1])
    scores = {name: np.full(shape, np.nan) for name in SCORE_NAMES}
    for i, clip in enumerate(clips):
        p, t = pred[clip], true[clip]
        scores["spearman"][i] = spearman(p, t)
        scores["smape"][i] = smape(p, t)
        scores["rmse"][i] = rmse(p, t)
        scores["peak_ratio"][i] = peak_ratio(p, t, peak_floor)
    return scores


# ----------------------------------------------------------------------------------- onsets
def _runs(on: np.ndarray) -> np.ndarray:
    """(start, stop) frame pairs of the runs of True in a 1-D bool array."""
    edges = np.diff(np.concatenate([[0], on.astype(np.int8), [0]]))
    return np.column_stack([np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)])


def detect_onsets(values, fps: float, threshold: float = RELEVANT_THRESHOLD,
                  min_on_s: float = MIN_ON_S, min_gap_s: float = MIN_GAP_S) -> np.ndarray:
    """Frames where a 1-D signal switches on: upward crossings of ``threshold``, debounced.

    The on-runs (frames ≥ ``threshold``) are debounced in two steps: a dip between two runs
    shorter than ``round(min_gap_s * fps)`` frames is filled (the runs merge), then a run
    shorter than ``round(min_on_s * fps)`` frames is dropped. An onset is the first frame of a
    kept run, except a run that starts at frame 0 (no crossing was seen).
    """
    fps = _check_fps(fps)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"detect_onsets takes one signal (1-D), got shape {values.shape}")
    runs = _runs(values >= threshold)
    min_gap, min_on = _frames(min_gap_s, fps), _frames(min_on_s, fps)
    merged: list[list[int]] = []
    for start, stop in runs:
        if merged and start - merged[-1][1] < min_gap:
            merged[-1][1] = stop
        else:
            merged.append([int(start), int(stop)])
    return np.array([start for start, stop in merged if stop - start >= min_on and start > 0], dtype=int)


def match_onsets(pred_frames, true_frames, tolerance_frames: float) -> int:
    """Number of one-to-one matches between two sets of onset frames.

    Greedy, closest pairs first: every (predicted, true) pair at most ``tolerance_frames``
    apart is taken in order of distance (ties: earlier true onset, then earlier prediction),
    skipping onsets already matched.
    """
    pairs = sorted((abs(int(p) - int(t)), int(t), int(p)) for p in pred_frames for t in true_frames
                   if abs(int(p) - int(t)) <= tolerance_frames + 1e-9)
    used_pred, used_true = set(), set()
    for _, t, p in pairs:
        if p not in used_pred and t not in used_true:
            used_pred.add(p), used_true.add(t)
    return len(used_true)


def onset_counts(pred, true, fps: float, threshold: float = RELEVANT_THRESHOLD,
                 tolerance_s: float = ONSET_TOLERANCE_S, min_on_s: float = MIN_ON_S,
                 min_gap_s: float = MIN_GAP_S) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per output: matched onsets, predicted onsets, true onsets (three int arrays).

    Onsets as :func:`detect_onsets` finds them, matched as :func:`match_onsets` does within
    ``tolerance_s``. Sum the counts over sessions to pool them, then :func:`f1_from_counts`.
    """
    pred, true = _check_pair(pred, true)
    fps = _check_fps(fps)
    if not tolerance_s >= 0:
        raise ValueError(f"the onset tolerance must be ≥ 0 seconds, got {tolerance_s}")
    n_out = true.shape[1]
    matched, n_pred, n_true = (np.zeros(n_out, dtype=int) for _ in range(3))
    for k in range(n_out):
        p = detect_onsets(pred[:, k], fps, threshold, min_on_s, min_gap_s)
        t = detect_onsets(true[:, k], fps, threshold, min_on_s, min_gap_s)
        matched[k], n_pred[k], n_true[k] = match_onsets(p, t, tolerance_s * fps), len(p), len(t)
    return matched, n_pred, n_true


def f1_from_counts(matched, n_pred, n_true) -> np.ndarray:
    """F1 = 2PR / (P + R) = 2 matched / (predicted + true), per output.

    NaN where there are neither true nor predicted onsets (nothing to detect: leave it out of
    medians); 0 where only one side has onsets.
    """
    matched, n_pred, n_true = (np.asarray(a, dtype=np.float64) for a in (matched, n_pred, n_true))
    total = n_pred + n_true
    f1 = np.full(total.shape, np.nan)
    np.divide(2.0 * matched, total, out=f1, where=total > 0)
    return f1


def onset_f1(pred, true, fps: float, threshold: float = RELEVANT_THRESHOLD,
             tolerance_s: float = ONSET_TOLERANCE_S, min_on_s: float = MIN_ON_S,
             min_gap_s: float = MIN_GAP_S) -> np.ndarray:
    """Onset-detection F1 per output (see :func:`onset_counts` and :func:`f1_from_counts`)."""
    return f1_from_counts(*onset_counts(pred, true, fps, threshold, tolerance_s, min_on_s, min_gap_s))


# -------------------------------------------------------------------------------- summaries
def summarise(scores: dict[str, np.ndarray], relevant) -> dict[str, dict[str, np.ndarray]]:
    """Median and interquartile range per output over its relevant clips.

    Parameters
    ----------
    scores : {name: array (clips, outputs)}
        As :func:`per_clip_scores` returns them.
    relevant : bool array (clips, outputs)
        As :func:`relevant_mask` returns it.

    Returns
    -------
    {name: {"median", "q25", "q75", "n_clips"}}
        Arrays per output: the median, 25th and 75th percentiles (linear interpolation) of the
        finite scores on relevant clips, NaN where there are none, and how many there were.
    """
    relevant = np.asarray(relevant, dtype=bool)
    summary = {}
    for name, values in scores.items():
        values = np.asarray(values, dtype=np.float64)
        if values.shape != relevant.shape:
            raise ValueError(f"score {name!r} has shape {values.shape} but relevant has shape "
                             f"{relevant.shape}: both must be (clips, outputs)")
        kept = np.where(relevant & np.isfinite(values), values, np.nan)
        n = np.sum(np.isfinite(kept), axis=0)
        q = np.full((3, values.shape[1]), np.nan)
        for k in np.flatnonzero(n):
            q[:, k] = np.nanpercentile(kept[:, k], [50, 25, 75])
        summary[name] = {"median": q[0], "q25": q[1], "q75": q[2], "n_clips": n}
    return summary


def median_over_outputs(per_output, keep=None) -> float:
    """Median of a per-output array over the outputs (``keep``: indices or a bool mask), NaNs left out.

    NaN when no output has a finite value.
    """
    values = np.asarray(per_output, dtype=np.float64).reshape(-1)
    if keep is not None:
        values = values[np.asarray(keep)]
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else float("nan")


# --------------------------------------------------------------------------------- controls
def floored(values, floor: float = REST_FLOOR) -> np.ndarray:
    """The rest-floored reading: values below ``floor`` set to ``floor`` (rest frames then tie)."""
    return np.maximum(np.asarray(values, dtype=np.float64), floor)


def random_amplitude_control(pred, threshold: float, rng: np.random.Generator,
                             floor: float = REST_FLOOR) -> np.ndarray:
    """``pred``'s on/off pattern with random amplitudes: what on/off alone scores.

    Per output, every run of frames with ``pred ≥ threshold`` gets one level drawn uniformly
    from ``[threshold, 1)``; every other frame is set to ``floor``. So the frames that are on
    stay exactly the frames that are on, and a floored ρ this control reaches is owed to the
    on/off timing, not to the amplitudes.
    """
    pred = _as_frames(pred, "pred")
    if not (0 <= floor < threshold < 1):
        raise ValueError(f"need 0 ≤ floor < threshold < 1, got floor {floor} and threshold {threshold}")
    control = np.full(pred.shape, float(floor))
    for k in range(pred.shape[1]):
        for start, stop in _runs(pred[:, k] >= threshold):
            control[start:stop, k] = rng.uniform(threshold, 1.0)
    return control


def mean_face_baseline(train_targets) -> Callable[[object], np.ndarray]:
    """The trivial baseline: a predictor that outputs the training mean for every frame.

    ``train_targets`` is one array (frames, outputs) or a sequence of them (one per training
    session). The predictor takes a track (anything with ``n_frames``) or an array (its length
    is the frame count) and returns (frames, outputs); its ``mean`` attribute holds the mean.
    Its Spearman ρ is NaN everywhere (it is constant): score it by SMAPE, RMSE and peak ratio.
    """
    if isinstance(train_targets, Sequence) and train_targets and all(np.ndim(a) == 2 for a in train_targets):
        parts = [_as_frames(a, "train_targets") for a in train_targets]
        if len({p.shape[1] for p in parts}) > 1:
            raise ValueError(f"training targets disagree on the number of outputs: {[p.shape[1] for p in parts]}")
        targets = np.concatenate(parts)
    else:
        targets = _as_frames(train_targets, "train_targets")
    if len(targets) == 0:
        raise ValueError("no training targets: the mean face needs at least one frame")
    mean = targets.mean(axis=0)

    def predict(source) -> np.ndarray:
        n = source.n_frames if hasattr(source, "n_frames") else len(source)
        return np.tile(mean, (n, 1))

    predict.mean = mean
    return predict
