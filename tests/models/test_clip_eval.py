"""A small end-to-end run of the cards' evaluation: the shipped EMG2Exp on the frozen test simulator."""
import numpy as np
import pytest

from eifer_blender.core.network import load_model, shipped_model_path
from eifer_blender.core.pipeline import ROBUST_CHAIN
from models import clip_eval
from models.evaluate import evaluate_clips


def test_the_network_is_scored_per_clip_beside_the_mean_face_on_the_test_simulator():
    model = load_model(shipped_model_path("emg2arkit"), "cpu")
    chain = model.processing_settings(**ROBUST_CHAIN)
    sessions = clip_eval.test_sim_sessions(chain, 30.0, 30.0, subjects=(901,))
    driven = model.driven_outputs(clip_eval.MONTAGES["2"])
    assert set(driven) == {"mouthSmileLeft", "browDownLeft"}
    network = clip_eval.network_predictor(model, clip_eval.MONTAGES["2"], driven)
    still = np.full(len(driven), 0.05)
    results = {name: evaluate_clips(predict, sessions, driven, 30.0, envelopes_of=lambda s: s.envelopes,
                                    rng=np.random.default_rng(0))
               for name, predict in (("network", network),
                                     ("mean face", lambda env: np.tile(still, (env.n_frames, 1))))}
    rows = {name: clip_eval._row(result, driven) for name, result in results.items()}
    assert rows["network"]["clips"] == rows["mean face"]["clips"] > 0
    # a constant face has no rank order and misses every peak; the network follows them
    assert np.isnan(rows["mean face"]["rho"]) and rows["mean face"]["onset_f1"] == 0.0
    assert rows["network"]["rmse"] < rows["mean face"]["rmse"]
    assert rows["network"]["peak_ratio"] > 2 * rows["mean face"]["peak_ratio"]
    assert set(clip_eval._per_output(results["network"])) == set(driven)


def test_probe_rows_name_the_facs_shapes_on_both_sides():
    model = load_model(shipped_model_path("emg2arkit"), "cpu")
    predicted = model.run(_flat_then_burst(model))
    row = clip_eval._probe_row(predicted, ("mouthSmile",))
    assert set(row["same_side"]) == set(row["other_side"]) == {"mouthSmile"}
    assert len(row["top"]) == 3 and row["top"][0][1] >= row["top"][-1][1]
    markdown = clip_eval.markdown({"montages": {}, "gains": {}, "testsim_sources": "x",
                                   "probes": {"zygomaticus x1 / own percentile": row}})
    assert "| zygomaticus x1 / own percentile | mouthSmile" in markdown


def _flat_then_burst(model):
    from eifer_blender.core.tracks import MuscleTrack

    values = np.full((300, 22), 2.0)
    values[100:200, model.input_names.index("Zyg_L")] = 40.0
    return MuscleTrack(values, model.input_names, 30.0, "fridlund22", "uV")


def test_a_model_scored_beside_reads_the_envelopes_of_its_own_chain():
    """The live (causal) model's card scores the offline model beside it, each on its own chain."""
    live = load_model(shipped_model_path("emg2arkit_causal"), "cpu")
    offline = load_model(shipped_model_path("emg2arkit"), "cpu")
    live_chain, offline_chain = (m.processing_settings(**ROBUST_CHAIN) for m in (live, offline))
    assert live_chain.causal and not offline_chain.causal
    session = clip_eval.test_sim_sessions(live_chain, 30.0, 10.0, subjects=(901,))[0]
    assert session.envelopes.meta["processing"]["causal"] is True
    other = session.envelopes_for(offline_chain)
    assert other is session.envelopes_for(offline_chain) and other.meta["processing"]["causal"] is False
    assert other.n_frames == session.envelopes.n_frames
    for model, envelopes in ((live, session.envelopes), (offline, other)):
        weights = clip_eval.network_predictor(model, clip_eval.MONTAGES["22"], model.output_names)(envelopes)
        assert weights.shape == (envelopes.n_frames, len(model.output_names))


def test_rest_motion_is_the_mean_change_and_level_on_frames_where_the_face_rests():
    from types import SimpleNamespace

    from eifer_blender.core.tracks import ExpressionTrack

    truth = np.zeros((6, 2))
    truth[3, 0] = 0.5  # frame 3 moves: frames 0-2 and 4-5 rest
    weights = np.array([[0.0, 0.1], [0.2, 0.1], [0.2, 0.3], [0.9, 0.9], [0.1, 0.0], [0.1, 0.2]])
    session = SimpleNamespace(arkit=ExpressionTrack(truth, ("a", "b"), 30.0, "arkit52", "1"))
    result = clip_eval.rest_motion(lambda s: weights, [session], ("a", "b"), lambda s: s)
    steps = np.abs(np.diff(weights, axis=0))[[0, 1, 4]]  # pairs (0,1), (1,2), (4,5)
    assert result["frames"] == 5
    assert result["step"] == pytest.approx(steps.mean())
    assert result["level"] == pytest.approx(weights[[0, 1, 2, 4, 5]].mean())
