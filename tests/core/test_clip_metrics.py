"""EIFER's per-clip protocol, on arrays small enough to work out on paper.

Every expected value below is derived in the comment beside it, never copied from the code.
"""
from types import SimpleNamespace

import numpy as np
import pytest

from eifer_blender.core.analysis.clips import (
    detect_onsets,
    event_centres_s,
    event_clips,
    f1_from_counts,
    floored,
    match_onsets,
    mean_face_baseline,
    median_over_outputs,
    onset_counts,
    onset_f1,
    peak_ratio,
    per_clip_scores,
    random_amplitude_control,
    relevant_mask,
    summarise,
)

NAN = float("nan")


# ------------------------------------------------------------------------------------ clips
def test_event_clips_are_centred_and_cut_at_both_ends_of_the_recording():
    # 10 fps, 6 s → 60 frames, starting 30 frames before the centre frame; 100 frames recorded
    clips = event_clips([5.0, 1.0, 0.0, 9.5, 11.0, -3.1], n_frames=100, fps=10)
    assert clips == [
        slice(20, 80),   # 5.0 s → frame 50 → 20..80, inside
        slice(0, 40),    # 1.0 s → frame 10 → -20..40, cut to 40 frames ≥ 30: kept
        slice(0, 30),    # 0.0 s → -30..30, cut to exactly half (30): kept
        slice(65, 100),  # 9.5 s → frame 95 → 65..125, cut to 35: kept
    ]                    # 11.0 s → 80..140 → 20 frames < 30: dropped; -3.1 s lies before frame 0


def test_event_clips_of_odd_length_put_the_centre_frame_in_the_middle():
    # 1 fps, 5 s → 5 frames: centre 10 s → frames 8, 9, 10, 11, 12
    assert event_clips([10.0], n_frames=20, fps=1, length_s=5) == [slice(8, 13)]


def test_event_centres_are_onset_plus_half_the_duration():
    np.testing.assert_allclose(event_centres_s([1.0, 4.0], [2.0, 0.0]), [2.0, 4.0])


@pytest.mark.parametrize("kwargs, message", [
    ({"fps": 0}, "fps"), ({"fps": 10, "length_s": -1}, "length"), ({"fps": 10, "n_frames": -5}, "n_frames")])
def test_event_clips_refuse_bad_arguments(kwargs, message):
    args = {"centres_s": [1.0], "n_frames": 100} | kwargs
    with pytest.raises(ValueError, match=message):
        event_clips(**args)


# ------------------------------------------------------------------------ a two-clip fixture
# frames 0-2 are clip 0, frames 3-5 clip 1; two outputs
TRUE = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.04], [0.2, 1.0], [0.2, 0.0], [0.2, 0.0]])
PRED = np.array([[1.0, 0.0], [3.0, 0.0], [2.0, 0.0], [0.1, 0.5], [0.3, 0.0], [0.2, 0.0]])
CLIPS = [slice(0, 3), slice(3, 6)]


def test_relevant_mask_by_threshold_and_by_extra():
    # clip maxima of the truth: clip 0 (3, 0.04), clip 1 (0.2, 1.0)
    np.testing.assert_array_equal(relevant_mask(TRUE, CLIPS, threshold=0.1), [[True, False], [True, True]])
    np.testing.assert_array_equal(relevant_mask(TRUE, CLIPS, threshold=0.25), [[True, False], [False, True]])
    extra = np.array([[False, True], [False, False]])  # clip 0's emotion contracts output 1
    np.testing.assert_array_equal(relevant_mask(TRUE, CLIPS, threshold=0.25, extra=extra),
                                  [[True, True], [False, True]])


def test_relevant_mask_refuses_extra_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"extra has shape \(3, 2\).*\(2, 2\)"):
        relevant_mask(TRUE, CLIPS, extra=np.zeros((3, 2), dtype=bool))


def test_spearman_per_clip():
    rho = per_clip_scores(PRED, TRUE, CLIPS)["spearman"]
    # clip 0, output 0: [1,3,2] vs [1,2,3]: rank differences 0,1,1 → 1 - 6*2/(3*(9-1)) = 0.5
    assert rho[0, 0] == pytest.approx(0.5)
    # clip 0, output 1: the prediction is constant → undefined
    assert np.isnan(rho[0, 1])
    # clip 1, output 0: the truth is constant → undefined
    assert np.isnan(rho[1, 0])
    # clip 1, output 1: [0.5,0,0] vs [1,0,0]: identical ranks (3, 1.5, 1.5) → 1
    assert rho[1, 1] == pytest.approx(1.0)


def test_smape_rmse_and_peak_ratio_per_clip():
    s = per_clip_scores(PRED, TRUE, CLIPS)
    # clip 0, out 0: |1-1|=0; 2*1/(3+2)=0.4; 2*1/(2+3)=0.4 → 100 * 0.8/3
    # clip 0, out 1: 0, 0, 2*0.04/0.04=2 → 100 * 2/3
    # clip 1, out 0: 2*0.1/0.3=2/3; 2*0.1/0.5=0.4; 0 → 100 * (2/3+0.4)/3
    # clip 1, out 1: 2*0.5/1.5=2/3; 0; 0 → 100 * (2/3)/3
    np.testing.assert_allclose(s["smape"], 100 * np.array([[0.8 / 3, 2 / 3], [(2 / 3 + 0.4) / 3, 2 / 9]]))
    # squared errors: (0,1,1), (0,0,0.0016), (0.01,0.01,0), (0.25,0,0)
    np.testing.assert_allclose(s["rmse"], np.sqrt([[2 / 3, 0.0016 / 3], [0.02 / 3, 0.25 / 3]]))
    # peaks pred/true: 3/3; true 0.04 below the 0.05 floor → NaN; 0.3/0.2; 0.5/1
    np.testing.assert_allclose(s["peak_ratio"], [[1.0, NAN], [1.5, 0.5]])


def test_smape_of_specific_values():
    # |2-1| → 2*1/3; |0-0| → 0 (both zero); |1-3| → 2*2/4 = 1 → 100 * (2/3 + 0 + 1) / 3
    s = per_clip_scores([2.0, 0.0, 1.0], [1.0, 0.0, 3.0], [slice(0, 3)])
    assert s["smape"][0, 0] == pytest.approx(100 * (5 / 3) / 3)


def test_peak_ratio_floor_is_inclusive():
    np.testing.assert_allclose(peak_ratio([[0.1, 0.1]], [[0.05, 0.049]], floor=0.05), [2.0, NAN])


@pytest.mark.parametrize("pred, true, clips, message", [
    (np.zeros((6, 2)), np.zeros((5, 2)), CLIPS, r"pred has shape \(6, 2\) but true has shape \(5, 2\)"),
    (np.zeros((6, 2)), np.zeros((6, 3)), CLIPS, "pred has shape"),
    (np.zeros((6, 2, 1)), np.zeros((6, 2, 1)), CLIPS, r"must be \(frames, outputs\)"),
    (PRED, TRUE, [slice(4, 9)], "inside the 6 frames"),
    (PRED, TRUE, [slice(2, 2)], "non-empty"),
    (PRED, TRUE, [slice(0, 6, 2)], "contiguous"),
])
def test_per_clip_scores_refuse_bad_inputs(pred, true, clips, message):
    with pytest.raises(ValueError, match=message):
        per_clip_scores(pred, true, clips)


# ----------------------------------------------------------------------------------- onsets
def _signal(n, runs, level=0.5):
    x = np.zeros(n)
    for start, stop in runs:
        x[start:stop] = level
    return x


def test_onset_f1_two_true_three_predicted_one_match():
    # 10 fps, tolerance 0.25 s = 2.5 frames; true onsets 5, 25; predicted 6, 15, 33
    true = _signal(40, [(5, 10), (25, 30)])
    pred = _signal(40, [(6, 10), (15, 18), (33, 36)])
    matched, n_pred, n_true = onset_counts(pred, true, fps=10)
    assert (matched[0], n_pred[0], n_true[0]) == (1, 3, 2)  # 6 ↔ 5; 15 and 33 match nothing
    # P = 1/3, R = 1/2 → F1 = 2 * (1/6) / (5/6) = 0.4
    assert onset_f1(pred, true, fps=10)[0] == pytest.approx(0.4)


def test_onsets_are_debounced_and_a_run_at_frame_0_is_no_onset():
    # 10 fps, min_on 0.2 s and min_gap 0.2 s → 2 frames each
    x = _signal(40, [(0, 3), (6, 7), (10, 15), (16, 20), (24, 26), (28, 30)])
    # (0,3): starts at frame 0, no crossing seen; (6,7): 1 frame < 2, dropped;
    # (10,15)+(16,20): 1-frame dip < 2, merged → onset 10; (24,26), (28,30): gap of 2 frames is
    # not shorter than 2, so two runs of 2 frames → onsets 24 and 28
    np.testing.assert_array_equal(detect_onsets(x, fps=10, threshold=0.1, min_on_s=0.2, min_gap_s=0.2),
                                  [10, 24, 28])


def test_reaching_the_threshold_exactly_is_on():
    np.testing.assert_array_equal(detect_onsets([0, 0, 0.1, 0.1, 0], fps=10, threshold=0.1), [2])


def test_onset_matching_is_one_to_one_closest_pairs_first():
    # pairs within 3 frames: (12,10) 2, (12,14) 2, (15,14) 1; closest first takes 15↔14, then 12↔10
    assert match_onsets([12, 15], [10, 14], tolerance_frames=3) == 2
    # two predictions near one true onset: only one can match it
    assert match_onsets([10, 11], [10], tolerance_frames=3) == 1
    # tolerance is inclusive
    assert match_onsets([13], [10], tolerance_frames=3) == 1
    assert match_onsets([14], [10], tolerance_frames=3) == 0


def test_onset_f1_when_one_or_both_sides_have_no_onsets():
    # neither → NaN (left out of medians); only one side → 0
    np.testing.assert_allclose(f1_from_counts([0, 0, 0, 2], [0, 0, 2, 2], [0, 3, 0, 2]), [NAN, 0.0, 0.0, 1.0])
    quiet, busy = np.zeros(30), _signal(30, [(10, 15)])
    np.testing.assert_allclose(onset_f1(np.column_stack([quiet, busy, quiet]),
                                        np.column_stack([quiet, quiet, busy]), fps=10), [NAN, 0.0, 0.0])


def test_onset_f1_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="pred has shape"):
        onset_f1(np.zeros((10, 2)), np.zeros((10, 3)), fps=10)


# -------------------------------------------------------------------------------- summaries
def test_summarise_median_and_iqr_over_relevant_finite_clips():
    scores = {"x": np.array([[1, 10, 7], [2, NAN, 7], [3, 1, 7], [4, 2, 7], [5, 100, 7]], dtype=float)}
    relevant = np.array([[1, 1, 0], [1, 1, 0], [1, 1, 0], [1, 1, 0], [1, 0, 0]], dtype=bool)
    s = summarise(scores, relevant)["x"]
    # output 0: 1..5 → median 3, quartiles 2 and 4 (linear interpolation)
    # output 1: relevant and finite: 10, 1, 2 → sorted 1, 2, 10 → median 2, 25 % at position
    #   0.5 → 1.5, 75 % at position 1.5 → 6 (100 is not relevant, NaN is not finite)
    # output 2: no relevant clip → NaN
    np.testing.assert_allclose(s["median"], [3, 2, NAN])
    np.testing.assert_allclose(s["q25"], [2, 1.5, NAN])
    np.testing.assert_allclose(s["q75"], [4, 6, NAN])
    np.testing.assert_array_equal(s["n_clips"], [5, 3, 0])


def test_summarise_refuses_a_mask_of_another_shape():
    with pytest.raises(ValueError, match=r"score 'x' has shape \(2, 2\) but relevant has shape \(3, 2\)"):
        summarise({"x": np.zeros((2, 2))}, np.ones((3, 2), dtype=bool))


def test_median_over_outputs_leaves_nan_out():
    assert median_over_outputs([1, NAN, 3, 10]) == 3
    assert median_over_outputs([1, NAN, 3, 10], keep=[0, 1]) == 1
    assert median_over_outputs([4, 8, NAN], keep=np.array([True, True, False])) == 6
    assert np.isnan(median_over_outputs([NAN, NAN]))


# --------------------------------------------------------------------------------- controls
def test_floored_sets_values_below_the_floor_to_it():
    np.testing.assert_allclose(floored([0.0, 0.02, 0.05, 0.5]), [0.05, 0.05, 0.05, 0.5])
    np.testing.assert_allclose(floored([[-1.0, 0.3]], floor=0.2), [[0.2, 0.3]])


def test_random_amplitude_control_keeps_on_off_frames_exactly():
    pred = np.column_stack([_signal(20, [(2, 5), (9, 15)], 0.6) + 0.01, _signal(20, [(0, 20)], 0.3)])
    pred[11, 0] = 0.35  # a run keeps one level even where its amplitude changes
    threshold, floor = 0.2, 0.05
    control = random_amplitude_control(pred, threshold, np.random.default_rng(0), floor)
    np.testing.assert_array_equal(control >= threshold, pred >= threshold)
    np.testing.assert_array_equal(control[pred < threshold], floor)
    for k, runs in ((0, [(2, 5), (9, 15)]), (1, [(0, 20)])):
        for start, stop in runs:
            level = control[start:stop, k]
            assert np.all(level == level[0]) and threshold <= level[0] < 1.0


def test_random_amplitude_control_needs_the_floor_below_the_threshold():
    with pytest.raises(ValueError, match="floor < threshold"):
        random_amplitude_control(np.zeros((5, 1)), 0.05, np.random.default_rng(0), floor=0.05)


def test_mean_face_baseline_predicts_the_training_mean_every_frame():
    # sessions [[0,1],[2,3]] and [[4,5]]: column means (0+2+4)/3 = 2 and (1+3+5)/3 = 3
    predict = mean_face_baseline([np.array([[0.0, 1.0], [2.0, 3.0]]), np.array([[4.0, 5.0]])])
    np.testing.assert_allclose(predict.mean, [2.0, 3.0])
    np.testing.assert_allclose(predict(np.zeros((3, 7))), [[2, 3]] * 3)
    np.testing.assert_allclose(predict(SimpleNamespace(n_frames=2)), [[2, 3]] * 2)
    # one array works too
    np.testing.assert_allclose(mean_face_baseline(np.array([[1.0], [3.0]])).mean, [2.0])


def test_mean_face_baseline_refuses_no_frames_and_disagreeing_sessions():
    with pytest.raises(ValueError, match="at least one frame"):
        mean_face_baseline(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="disagree"):
        mean_face_baseline([np.zeros((2, 3)), np.zeros((2, 4))])


# ------------------------------------------------------------------ the models/ entry point
def test_evaluate_clips_scores_a_perfect_and_a_mean_face_predictor():
    pytest.importorskip("torch")  # models.evaluate needs the training toolkit
    from eifer_blender.core.recording import Annotation
    from eifer_blender.core.tracks import ExpressionTrack, MuscleTrack
    from models.evaluate import evaluate_clips

    fps, n = 10, 200
    truth = np.column_stack([_signal(n, [(40, 60), (140, 160)], 0.8), _signal(n, [(90, 110)], 0.4)])
    truth[40:60, 0] = np.linspace(0.2, 0.8, 20)  # rising, so ranks are defined
    truth[90:110, 1] = np.linspace(0.4, 0.1, 20)
    session = SimpleNamespace(
        recording=None, arkit=ExpressionTrack(truth, ("a", "b"), fps, "arkit52", "1"),
        annotations=[Annotation(4.0, 2.0, "happy"), Annotation(9.0, 2.0, "sad"), Annotation(14.0, 2.0, "happy"),
                     Annotation(1.0, 0.2, "blink"), Annotation(12.0, 1.0, "artefact/motion")])
    envelopes = lambda s: MuscleTrack(np.zeros((n, 1)), ("x",), fps, "fridlund22", "uV")
    result = evaluate_clips(lambda env: truth, [session], ("a", "b"), fps, envelopes_of=envelopes)
    # three scored events (blink, artefact skipped), centred at 5, 10 and 15 s → 6 s clips
    assert [c for _, c in result["clips"]] == [slice(20, 80), slice(70, 130), slice(120, 180)]
    # output a is relevant in clips 0 and 2, b only in clip 1
    np.testing.assert_array_equal(result["relevant"], [[True, False], [False, True], [True, False]])
    assert result["medians"]["spearman"] == pytest.approx(1.0)
    assert result["medians"]["smape"] == 0.0
    np.testing.assert_allclose(result["onset_f1"], [1.0, 1.0])
    mean = mean_face_baseline(truth)
    baseline = evaluate_clips(mean, [session], ("a", "b"), fps, envelopes_of=envelopes)
    assert np.isnan(baseline["medians"]["spearman"])  # constant prediction: ρ undefined
    np.testing.assert_allclose(baseline["onset_f1"], [0.0, 0.0])  # never crosses: no predicted onsets
