"""Ridge regression from a flattened input window: the baseline every card reports, and the linear
path a network can be blended with (``[model] ridge_blend``, :meth:`models.nets.WindowNet.set_ridge`)."""
from __future__ import annotations

import numpy as np
import torch

from .data import WindowBank

RIDGE_ALPHAS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)  # per frame, on standardised features
HEAD_RANGES = {"sigmoid": (0.0, 1.0), "softplus": (0.0, None)}  # what each network head can output


def head_range(head: str) -> tuple[float | None, float | None]:
    """(low, high) a ridge fit is clipped to for a network with ``head`` (None: unbounded)."""
    return HEAD_RANGES.get(head, (None, None))


class RidgeBaseline:
    """Ridge regression from the flattened input window to the outputs.

    Fitted from batched normal equations (memory stays at features x features) on the raw
    features, with each coefficient's penalty scaled by its feature's variance (ridge on
    standardised features); the penalty is picked on the validation split. Predictions are
    clipped to the output's valid range (ARKit weights [0, 1], envelopes >= 0), as the network's
    head does.
    """

    def __init__(self, low=None, high=None):
        self.low, self.high = low, high
        self.alpha = self.coef = None

    @staticmethod
    def _features(windows: np.ndarray) -> np.ndarray:
        return np.asarray(windows, dtype=np.float64).reshape(len(windows), -1)

    def fit(self, train: WindowBank, val: WindowBank, alphas=RIDGE_ALPHAS, chunk: int = 65536):
        n_features = train.x.shape[1] * len(train.offsets)
        xtx = np.zeros((n_features + 1, n_features + 1))
        xty = np.zeros((n_features + 1, train.y.shape[1]))
        for start in range(0, len(train), chunk):
            x, y = train.batch(torch.arange(start, min(start + chunk, len(train))))
            a = np.hstack([self._features(x.numpy()), np.ones((len(x), 1))])
            xtx += a.T @ a
            xty += a.T @ y.numpy().astype(np.float64)
        # penalising alpha * n * var_j * c_j^2 equals ridge on standardised features
        n = len(train)
        mean = xtx[-1, :-1] / n
        var = np.maximum(np.diag(xtx)[:-1] / n - mean**2, 1e-12)
        x_val, y_val = val.all_windows(), val.targets()
        best = (np.inf, None, None)
        for alpha in alphas:
            penalty = np.diag(np.append(alpha * n * var, 0.0))
            coef = np.linalg.solve(xtx + penalty, xty)
            err = float(np.mean((self._apply(coef, x_val) - y_val) ** 2))
            if err < best[0]:
                best = (err, alpha, coef)
        _, self.alpha, self.coef = best
        return self

    def _apply(self, coef, windows) -> np.ndarray:
        x = self._features(windows)
        out = x @ coef[:-1] + coef[-1]
        if self.low is not None or self.high is not None:
            out = np.clip(out, self.low, self.high)
        return out

    def predict(self, windows: np.ndarray) -> np.ndarray:
        return self._apply(self.coef, windows)
