"""EIFER's evaluation metrics, per channel and vectorised: MSE, RMSE, SMAPE, Spearman rho.

All functions take ``pred`` and ``true`` shaped (frames, channels) (a 1-D array counts as one
channel) and return one value per channel. Frames run along axis 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

METRIC_NAMES: tuple[str, ...] = ("mse", "rmse", "smape", "spearman")


def _pair(pred, true) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.ndim == 1:
        pred = pred[:, None]
    if true.ndim == 1:
        true = true[:, None]
    if pred.shape != true.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from truth shape {true.shape}")
    if pred.shape[0] == 0:
        raise ValueError("cannot score an empty track (0 frames)")
    return pred, true


def mse(pred, true) -> np.ndarray:
    """Mean squared error per channel."""
    pred, true = _pair(pred, true)
    return np.mean((pred - true) ** 2, axis=0)


def rmse(pred, true) -> np.ndarray:
    """Root mean squared error per channel."""
    return np.sqrt(mse(pred, true))


def smape(pred, true) -> np.ndarray:
    """Symmetric mean absolute percentage error per channel, in percent (0 to 200).

    ``100 / n * sum(2 |p - t| / (|p| + |t|))``; a frame where both values are 0 scores 0.
    """
    pred, true = _pair(pred, true)
    denominator = np.abs(pred) + np.abs(true)
    ratio = np.divide(2.0 * np.abs(pred - true), denominator,
                      out=np.zeros_like(denominator), where=denominator > 0)
    return 100.0 * np.mean(ratio, axis=0)


def spearman(pred, true) -> np.ndarray:
    """Spearman rank correlation per channel (ties get average ranks).

    NaN for a channel where either series is constant: rank correlation is undefined there.
    """
    pred, true = _pair(pred, true)
    rank_p = rankdata(pred, axis=0)
    rank_t = rankdata(true, axis=0)
    rank_p -= rank_p.mean(axis=0)
    rank_t -= rank_t.mean(axis=0)
    numerator = np.sum(rank_p * rank_t, axis=0)
    denominator = np.sqrt(np.sum(rank_p**2, axis=0) * np.sum(rank_t**2, axis=0))
    rho = np.full(pred.shape[1], np.nan)
    np.divide(numerator, denominator, out=rho, where=denominator > 0)
    return rho


@dataclass
class MetricTable:
    """Per-channel metrics: ``values[metric]`` is an array aligned with ``names``."""

    names: tuple[str, ...]
    values: dict[str, np.ndarray]

    def summary(self, names=None) -> dict[str, float]:
        """Median of each metric over ``names`` (default: all channels), NaNs left out."""
        idx = list(range(len(self.names))) if names is None else [self.names.index(n) for n in names]
        return {m: float(np.nanmedian(v[idx])) if np.any(np.isfinite(v[idx])) else float("nan")
                for m, v in self.values.items()}

    def row(self, name: str) -> dict[str, float]:
        i = self.names.index(name)
        return {m: float(v[i]) for m, v in self.values.items()}


def score(pred, true, names) -> MetricTable:
    """All four EIFER metrics per channel.

    Parameters
    ----------
    pred, true : array (frames, channels)
    names : sequence of str
        Channel names, one per column.
    """
    pred, true = _pair(pred, true)
    names = tuple(names)
    if len(names) != pred.shape[1]:
        raise ValueError(f"{len(names)} names for {pred.shape[1]} channels")
    err = mse(pred, true)
    return MetricTable(names, {"mse": err, "rmse": np.sqrt(err), "smape": smape(pred, true),
                               "spearman": spearman(pred, true)})
