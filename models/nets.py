"""EMG2Exp and Exp2EMG networks (torch, training time only).

Both directions use one architecture, :class:`WindowNet`: a window of input frames
[batch, window, channels] -> standardise per channel -> optional temporal convolutions ->
flatten -> MLP -> head. With ``window=1`` and no convolutions it is EIFER's per-frame MLP.
A ``masked`` net also takes a channel mask [batch, channels] (1 = recorded): the standardised
input of an unrecorded channel is set to 0 (the training mean) and the mask itself joins the
features, so one network serves any subset of the montage (trained with channel dropout).
Optional dropout after each hidden layer acts in training only (the exported graph is the
evaluation net). Heads: ``sigmoid`` (ARKit weights in [0, 1]), ``linear`` (FLAME coefficients,
de-standardised with the training-set mean/std), ``softplus`` (non-negative envelopes).
With ``ridge_blend`` the output is ``(1 - b) * net + b * ridge``: a ridge regression on the same
standardised window, fitted in closed form after training and clipped to the head's range.
With ``low_range`` (sigmoid heads) the output is ``max(net, low_range * sigmoid(readout / low_range))``:
below ``low_range``, a weight too small to see on a face, the output is a monotone squashing of a
linear read-out of the same masked, standardised window (``low_range / 2`` where the read-out is 0),
fitted in closed form after training (set_low_readout).
Squared error leaves the order of the network's near-zero outputs to chance; the read-out orders
them by the low-level (tonic, covert) activity that the envelopes carry.
The layers are limited to what models/export.py writes as plain ONNX operators.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from .ridge import head_range

HEADS = ("sigmoid", "linear", "softplus")
LOG_FLOOR = 1e-3


@dataclass
class NetConfig:
    """Shape of a :class:`WindowNet`.

    ``conv`` lists temporal convolution layers as ``[out_channels, kernel, dilation]``; they run
    without padding, so the time axis shrinks by ``dilation * (kernel - 1)`` per layer.
    """

    n_inputs: int
    n_outputs: int
    window: int = 1
    hidden: int = 128
    depth: int = 2
    conv: list = field(default_factory=list)
    head: str = "sigmoid"
    log_input: bool = False  # feed log(max(x, LOG_FLOOR)): envelope gains become offsets
    masked: bool = False  # a second input: which channels were recorded
    dropout: float = 0.0  # training only: dropout after each hidden layer
    ridge_blend: float = 0.0  # share of a ridge path in the output, fitted after training (set_ridge)
    low_range: float = 0.0  # below this weight the output follows a linear read-out (set_low_readout)

    def to_dict(self) -> dict:
        return asdict(self)


class WindowNet(nn.Module):
    """Window of frames -> one output frame. See the module docstring."""

    def __init__(self, config: NetConfig):
        super().__init__()
        if config.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {config.head!r}")
        self.config = config
        c = config
        self.register_buffer("in_mean", torch.zeros(c.n_inputs))
        self.register_buffer("in_std", torch.ones(c.n_inputs))
        self.register_buffer("out_mean", torch.zeros(c.n_outputs))
        self.register_buffer("out_std", torch.ones(c.n_outputs))
        convs, channels, steps = [], c.n_inputs, c.window
        for out_channels, kernel, dilation in c.conv:
            convs.append(nn.Conv1d(channels, int(out_channels), int(kernel), dilation=int(dilation)))
            channels, steps = int(out_channels), steps - int(dilation) * (int(kernel) - 1)
            if steps < 1:
                raise ValueError(f"convolutions {c.conv} need a window longer than {c.window}")
        self.convs = nn.ModuleList(convs)
        layers, width = [], channels * steps + (c.n_inputs if c.masked else 0)
        for _ in range(c.depth):
            layers.append(nn.Linear(width, c.hidden))
            width = c.hidden
        self.hidden_layers = nn.ModuleList(layers)
        self.out = nn.Linear(width, c.n_outputs)
        if c.ridge_blend:
            if not 0 < c.ridge_blend < 1:
                raise ValueError(f"ridge_blend is the ridge's share of the output, in (0, 1); got {c.ridge_blend}")
            if c.masked or c.log_input or c.head == "linear":
                raise ValueError("ridge_blend needs an unmasked net on raw inputs with a sigmoid or softplus head")
            # fitted in closed form after training (set_ridge); until then its share is 0
            self.register_buffer("ridge_w", torch.zeros(c.n_outputs, c.window * c.n_inputs))
            self.register_buffer("ridge_b", torch.zeros(c.n_outputs))
            self.register_buffer("blend", torch.zeros(()))
        if c.low_range:
            if not 0 < c.low_range < 1 or c.head != "sigmoid":
                raise ValueError(f"low_range is a weight in (0, 1) for a sigmoid head; got {c.low_range} "
                                 f"with a {c.head} head")
            # fitted after training; until then its level is 0 and max(net, 0) is the net
            self.register_buffer("low_w", torch.zeros(c.n_outputs, self.readout_width()))
            self.register_buffer("low_b", torch.zeros(c.n_outputs))
            self.register_buffer("low_level", torch.zeros(()))

    def readout_width(self) -> int:
        """Features of the low-range read-out: the flattened masked window, and the mask."""
        return self.config.window * self.config.n_inputs + (self.config.n_inputs if self.config.masked else 0)

    def set_standardisation(self, in_mean, in_std, out_mean=None, out_std=None) -> None:
        """Fix the per-channel input (and, for the linear head, output) standardisation."""
        def tensor(a):
            return torch.as_tensor(np.asarray(a, dtype=np.float32))

        self.in_mean.copy_(tensor(in_mean))
        # a floor keeps an input that barely moved in training from being blown up at runtime
        self.in_std.copy_(tensor(np.maximum(np.asarray(in_std, dtype=np.float64), 1e-3)))
        if out_mean is not None:
            self.out_mean.copy_(tensor(out_mean))
            self.out_std.copy_(tensor(np.maximum(np.asarray(out_std, dtype=np.float64), 1e-6)))

    def set_ridge(self, coef: np.ndarray) -> None:
        """Blend in a ridge fit (``models.ridge.RidgeBaseline.coef``: raw flattened window -> outputs,
        intercept last) at the config's ``ridge_blend`` share. The fit is re-expressed on the net's
        standardised inputs, where the path reads them: ``x = z * std + mean``; so call it after
        :meth:`set_standardisation` (a later change of the standardisation would leave it stale)."""
        coef = np.asarray(coef, dtype=np.float64)
        std = np.tile(self.in_std.cpu().numpy().astype(np.float64), self.config.window)
        mean = np.tile(self.in_mean.cpu().numpy().astype(np.float64), self.config.window)
        with torch.no_grad():
            self.ridge_w.copy_(torch.as_tensor((coef[:-1] * std[:, None]).T, dtype=torch.float32))
            self.ridge_b.copy_(torch.as_tensor(coef[-1] + mean @ coef[:-1], dtype=torch.float32))
            self.blend.fill_(float(self.config.ridge_blend))

    def set_low_readout(self, coef: np.ndarray) -> None:
        """Fit the low-range read-out: ``coef`` (:meth:`readout_width` + 1, outputs), intercept
        last, on the features :meth:`readout_features` gives."""
        coef = np.asarray(coef, dtype=np.float64)
        with torch.no_grad():
            self.low_w.copy_(torch.as_tensor(coef[:-1].T, dtype=torch.float32))
            self.low_b.copy_(torch.as_tensor(coef[-1], dtype=torch.float32))
            self.low_level.fill_(float(self.config.low_range))

    def readout_features(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The read-out's features of raw windows: standardised, masked, flattened, and the mask."""
        return self._readout_features(*self._standardised(x, mask))

    def _standardised(self, x: torch.Tensor, mask: torch.Tensor | None):
        """The input transformed, standardised and, for a masked net, masked; with the mask."""
        x = (self.transform_input(x) - self.in_mean) / self.in_std
        if self.config.masked:
            if mask is None:
                mask = torch.ones(x.shape[0], x.shape[2], dtype=x.dtype, device=x.device)
            x = x * mask[:, None, :]
        return x, mask

    def _readout_features(self, standardised: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = standardised.flatten(1)
        return torch.cat([x, mask], dim=1) if self.config.masked else x

    def init_output_bias(self, target_mean) -> None:
        """Start the head at the targets' mean so no output begins saturated (sigmoid near 0)."""
        mean = np.asarray(target_mean, dtype=np.float64)
        head = self.config.head
        if head == "sigmoid":
            p = np.clip(mean, 1e-3, 1 - 1e-3)
            bias = np.log(p / (1 - p))
        elif head == "softplus":
            m = np.maximum(mean, 1e-3)
            bias = m + np.log(-np.expm1(-m))  # softplus^-1
        else:
            bias = np.zeros_like(mean)  # the linear head is de-standardised: 0 is the mean
        with torch.no_grad():
            self.out.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x, mask = self._standardised(x, mask)
        # the ridge's share and the read-out's level are 0 until fitted after training: training
        # batches skip their paths (reading the values instead would stop a GPU at every batch).
        # A ridge blend needs an unmasked net, so its path reads the unmasked standardised window.
        linear = self.ridge_path(x) if self.config.ridge_blend and not self.training else None
        readout = self._readout_features(x, mask) if self.config.low_range and not self.training else None
        if len(self.convs):
            x = x.transpose(1, 2)  # (batch, channels, time) for Conv1d
            for conv in self.convs:
                x = nn.functional.silu(conv(x))
        x = x.flatten(1)
        if self.config.masked:
            x = torch.cat([x, mask], dim=1)
        for layer in self.hidden_layers:
            x = nn.functional.dropout(nn.functional.silu(layer(x)), self.config.dropout, self.training)
        x = self.apply_head(self.out(x))
        if linear is not None:
            x = (1.0 - self.blend) * x + self.blend * linear
        if readout is not None:
            low = self.config.low_range
            x = torch.maximum(x, self.low_level * torch.sigmoid((readout @ self.low_w.T + self.low_b) / low))
        return x

    def ridge_path(self, standardised: torch.Tensor) -> torch.Tensor:
        """The ridge fit on the standardised window, clipped to the head's range as the baseline is."""
        low, high = head_range(self.config.head)
        return (standardised.flatten(1) @ self.ridge_w.T + self.ridge_b).clamp(low, high)

    def transform_input(self, x):
        """The fixed input transform before standardisation (log when ``log_input``)."""
        if self.config.log_input:
            if isinstance(x, np.ndarray):
                return np.log(np.maximum(x, LOG_FLOOR))
            return torch.log(torch.clamp(x, min=LOG_FLOOR))
        return x

    def apply_head(self, raw: torch.Tensor) -> torch.Tensor:
        head = self.config.head
        if head == "sigmoid":
            return torch.sigmoid(raw)
        if head == "softplus":
            return nn.functional.softplus(raw)
        return raw * self.out_std + self.out_mean

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
