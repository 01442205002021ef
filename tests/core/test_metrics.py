"""EIFER's metrics, checked against scipy and against their definitions."""
import numpy as np
import pytest
from scipy.stats import spearmanr

from eifer_blender.core.analysis.metrics import mse, rmse, score, smape, spearman


@pytest.fixture
def pair():
    rng = np.random.default_rng(3)
    true = rng.random((400, 5))
    pred = true + 0.1 * rng.standard_normal((400, 5))
    return pred, true


def test_mse_and_rmse_follow_their_definition(pair):
    pred, true = pair
    for k in range(true.shape[1]):
        expected = sum((p - t) ** 2 for p, t in zip(pred[:, k], true[:, k])) / len(true)
        assert mse(pred, true)[k] == pytest.approx(expected)
        assert rmse(pred, true)[k] == pytest.approx(np.sqrt(expected))


def test_spearman_equals_scipy_per_channel_including_ties(pair):
    pred, true = pair
    pred = np.round(pred, 1)  # many ties
    got = spearman(pred, true)
    for k in range(true.shape[1]):
        assert got[k] == pytest.approx(spearmanr(pred[:, k], true[:, k]).statistic, abs=1e-12)


def test_spearman_sees_ranks_only():
    x = np.linspace(-3, 3, 50)
    assert spearman(np.exp(x), x)[0] == pytest.approx(1.0)
    assert spearman(-x**3, x)[0] == pytest.approx(-1.0)


def test_spearman_is_nan_for_a_constant_channel():
    x = np.linspace(0, 1, 20)
    rho = spearman(np.column_stack([x, np.zeros(20)]), np.column_stack([x, x]))
    assert rho[0] == pytest.approx(1.0) and np.isnan(rho[1])


def test_smape_in_percent_and_zero_where_both_are_zero():
    true = np.array([1.0, 2.0, 0.0, 4.0])
    pred = 2 * true  # each nonzero frame: 2|t| / 3|t| = 2/3
    assert smape(pred, true)[0] == pytest.approx(100 * (3 * 2 / 3) / 4)
    assert smape(true, true)[0] == 0.0
    assert smape(-true, true)[0] == pytest.approx(100 * 3 * 2 / 4)


def test_score_table_and_median_summary(pair):
    pred, true = pair
    pred[:, 4] = 0.5  # constant prediction: rho undefined, left out of the median
    table = score(pred, true, [f"c{i}" for i in range(5)])
    assert set(table.values) == {"mse", "rmse", "smape", "spearman"}
    rho = spearman(pred, true)
    assert table.summary()["spearman"] == pytest.approx(np.median(rho[:4]))
    assert table.summary(["c0", "c1"])["mse"] == pytest.approx(np.median(mse(pred, true)[:2]))
    assert table.row("c2")["rmse"] == pytest.approx(rmse(pred, true)[2])


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="shape"):
        mse(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="names"):
        score(np.zeros((4, 2)), np.zeros((4, 2)), ["a"])
