import numpy as np
import pytest

from eifer_blender.core.errors import InputError
from eifer_blender.core.expression import curves


def test_reduce_keys_stays_within_tolerance_and_drops_keys():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 10, 2000)
    values = np.stack([np.sin(t), np.clip(np.sin(3 * t), 0, None), np.cumsum(rng.normal(0, 0.01, t.size))], axis=1)
    tol = 0.005
    keep = curves.reduce_keys(values, tol)
    assert keep[0].all() and keep[-1].all()
    frames = np.arange(t.size)
    for c in range(values.shape[1]):
        idx = np.flatnonzero(keep[:, c])
        rebuilt = np.interp(frames, idx, values[idx, c])
        assert np.max(np.abs(rebuilt - values[:, c])) <= tol + 1e-12
    assert keep[:, 0].sum() < 0.2 * t.size  # a smooth curve needs few keys


def test_reduce_keys_zero_tolerance_keeps_every_bend():
    values = np.array([0.0, 1.0, 0.0, 1.0, 2.0, 3.0])[:, None]
    keep = curves.reduce_keys(values, 0.0)
    assert keep[:, 0].tolist() == [True, True, True, False, False, True]  # 2..5 is one straight line
    with pytest.raises(InputError):
        curves.reduce_keys(values, -1.0)


def test_smooth_keeps_constant_and_line_and_reduces_noise():
    fps = 60.0
    line = np.linspace(0, 1, 300)[:, None]
    np.testing.assert_allclose(curves.smooth(line, fps, 0.2), line, atol=1e-12)
    rng = np.random.default_rng(1)
    noisy = np.sin(np.linspace(0, 3, 300))[:, None] + rng.normal(0, 0.05, (300, 1))
    smoothed = curves.smooth(noisy, fps, 0.2)
    assert np.std(np.diff(smoothed[:, 0])) < 0.5 * np.std(np.diff(noisy[:, 0]))


def test_gain_offset_clips_to_unit_range():
    out = curves.apply_gain_offset(np.array([[0.2, 0.8]]), gain=[2.0, 1.0], offset=[0.0, 0.5])
    np.testing.assert_allclose(out, [[0.4, 1.0]])
