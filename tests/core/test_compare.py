"""Recorded vs inferred: alignment on shared frames and channels, scaling, metrics CSV."""
import numpy as np
import pytest
from scipy.stats import spearmanr

from eifer_blender.core.analysis.compare import (
    align_tracks,
    compare_tracks,
    percentile_scaled,
    read_metrics_csv,
    write_metrics_csv,
)
from eifer_blender.core.errors import InputError
from eifer_blender.core.tracks import MuscleTrack


def _tracks(seed=0, n=120, fps=30.0):
    rng = np.random.default_rng(seed)
    recorded = 5 + 30 * rng.random((n, 3))
    inferred = 0.02 * recorded + 0.01 * rng.standard_normal((n, 3))  # a noisy rescaled copy
    names = ("Zyg_L", "Corr_L", "DAO_L")
    return (MuscleTrack(recorded, names, fps, "fridlund22", "uV"),
            MuscleTrack(inferred, names, fps, "fridlund22", "normalised"))


def test_alignment_keeps_only_shared_frames_and_channels():
    recorded, inferred = _tracks()
    # inferred starts 10 frames later and lacks Corr_L; it has an extra channel
    later = MuscleTrack(np.column_stack([inferred.values[10:, [0, 2]], np.ones(110)]),
                        ("Zyg_L", "DAO_L", "Other"), 30.0, "emg", "normalised", start_s=10 / 30.0)
    rec, inf = align_tracks(recorded, later)
    assert rec.names == inf.names == ("Zyg_L", "DAO_L")
    assert rec.n_frames == inf.n_frames == 110 and rec.start_s == pytest.approx(10 / 30.0)
    assert np.array_equal(rec.values, recorded.values[10:, [0, 2]])
    assert np.array_equal(inf.values, inferred.values[10:, [0, 2]])


@pytest.mark.parametrize("change, message", [
    (dict(fps=25.0), "same frame rate"), (dict(start_s=0.5 / 30), "same frames"),
    (dict(start_s=100.0), "do not overlap"), (dict(names=("a", "b", "c")), "share no channel")])
def test_misaligned_tracks_are_refused_with_a_reason(change, message):
    recorded, inferred = _tracks()
    fields = dict(values=inferred.values, names=inferred.names, fps=30.0, space="fridlund22",
                  units="normalised", start_s=0.0)
    fields.update(change)
    with pytest.raises(InputError, match=message):
        compare_tracks(recorded, MuscleTrack(**fields))


def test_metrics_match_direct_computation_and_scaling_is_reported(tmp_path):
    recorded, inferred = _tracks()
    result = compare_tracks(recorded, inferred)
    assert result.scaling == "percentile"  # µV against normalised
    rec_scaled, inf_scaled = percentile_scaled(recorded.values), percentile_scaled(inferred.values)
    assert np.allclose(result.table.values["mse"], np.mean((inf_scaled - rec_scaled) ** 2, axis=0))
    for column, name in enumerate(recorded.names):
        rho = spearmanr(inferred.values[:, column], recorded.values[:, column]).statistic
        assert result.table.row(name)["spearman"] == pytest.approx(rho)
    same_units = compare_tracks(recorded, recorded)
    assert same_units.scaling == "none" and np.allclose(same_units.table.values["mse"], 0)
    path = write_metrics_csv(result, tmp_path / "metrics.csv", recorded_label="EMG rec")
    text = path.read_text()
    assert "# scaling: percentile" in text and "# recorded: EMG rec" in text
    rows = read_metrics_csv(path)
    assert list(rows) == ["Zyg_L", "Corr_L", "DAO_L", "median"]
    assert rows["Zyg_L"]["spearman"] == pytest.approx(result.table.row("Zyg_L")["spearman"], rel=1e-5)
    assert rows["median"]["rmse"] == pytest.approx(np.median(result.table.values["rmse"]), rel=1e-5)


def test_percentile_scaling_maps_p5_p95_to_0_1_and_flat_to_0():
    values = np.column_stack([np.linspace(0, 100, 101), np.full(101, 3.0)])
    scaled = percentile_scaled(values)
    assert np.percentile(scaled[:, 0], 5) == pytest.approx(0) and np.percentile(scaled[:, 0], 95) == pytest.approx(1)
    assert np.all(scaled[:, 1] == 0)
