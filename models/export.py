"""Write a trained :class:`~models.nets.WindowNet` as an EIFER ONNX file and check it.

The graph is written operator by operator with ``onnx.helper`` (Max, Log, Sub, Div, Transpose,
Conv, Flatten, Gemm, Sigmoid, Mul, Softplus, Add, Clip, Unsqueeze, Concat at opset 17, IR 8) instead of through
``torch.onnx.export``: the result needs no exporter package, reads on older ONNX Runtime builds
and keeps a dynamic batch axis by construction. :func:`check_onnx_matches_torch` proves the file
computes what the torch module computes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from eifer_blender.core.network import ModelMetadata

from .nets import LOG_FLOOR, NetConfig, WindowNet
from .ridge import head_range

OPSET = 17
IR_VERSION = 8  # ONNX Runtime >= 1.10 reads IR 8


class _GraphBuilder:
    def __init__(self):
        self.nodes, self.initializers, self._count = [], [], 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, stem: str, array) -> str:
        name = self.name(stem)
        self.initializers.append(numpy_helper.from_array(np.asarray(array, dtype=np.float32), name))
        return name

    def const_int(self, stem: str, values) -> str:
        name = self.name(stem)
        self.initializers.append(numpy_helper.from_array(np.asarray(values, dtype=np.int64), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def silu(self, x: str) -> str:
        return self.node("Mul", [x, self.node("Sigmoid", [x])])


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def build_onnx(net: WindowNet, metadata: ModelMetadata) -> onnx.ModelProto:
    """The ONNX model of ``net`` with ``metadata`` in its ``metadata_props``."""
    c = net.config
    if (metadata.window, len(metadata.input_names), len(metadata.output_names)) != (
            c.window, c.n_inputs, c.n_outputs):
        raise ValueError("metadata window / input names / output names do not match the network")
    if metadata.head != c.head:
        raise ValueError(f"metadata head {metadata.head!r} differs from the network's {c.head!r}")
    if bool(metadata.mask_name) != c.masked:
        raise ValueError("metadata mask_name and the network's masked setting disagree")
    g = _GraphBuilder()
    x = metadata.input_name
    if c.log_input:
        x = g.node("Log", [g.node("Max", [x, g.const("log_floor", np.array(LOG_FLOOR))])])
    x = g.node("Sub", [x, g.const("in_mean", _numpy(net.in_mean))])
    x = g.node("Div", [x, g.const("in_std", _numpy(net.in_std))])
    ridge = None
    if c.ridge_blend:  # the linear path reads the standardised window (nets.WindowNet.ridge_path)
        ridge = g.node("Gemm", [g.node("Flatten", [x], axis=1), g.const("ridge_w", _numpy(net.ridge_w)),
                                g.const("ridge_b", _numpy(net.ridge_b))], transB=1)
        low, high = head_range(c.head)  # both bounded below for the heads a blend allows
        ridge = g.node("Clip", [ridge, g.const("low", np.array(low)),
                                *([g.const("high", np.array(high))] if high is not None else [])])
    if c.masked:  # [batch, channels] -> [batch, 1, channels], broadcast over the window
        x = g.node("Mul", [x, g.node("Unsqueeze", [metadata.mask_name, g.const_int("axis", [1])])])
    low_features = None
    if c.low_range:  # the read-out's features (nets.WindowNet.readout_features): masked window, mask
        low_features = g.node("Flatten", [x], axis=1)
        if c.masked:
            low_features = g.node("Concat", [low_features, metadata.mask_name], axis=1)
    if len(net.convs):
        x = g.node("Transpose", [x], perm=[0, 2, 1])
        for conv in net.convs:
            kernel, dilation = conv.kernel_size[0], conv.dilation[0]
            x = g.node("Conv", [x, g.const("conv_w", _numpy(conv.weight)), g.const("conv_b", _numpy(conv.bias))],
                       kernel_shape=[kernel], dilations=[dilation], pads=[0, 0], strides=[1])
            x = g.silu(x)
    x = g.node("Flatten", [x], axis=1)
    if c.masked:
        x = g.node("Concat", [x, metadata.mask_name], axis=1)
    for layer in net.hidden_layers:
        x = g.silu(g.node("Gemm", [x, g.const("fc_w", _numpy(layer.weight)), g.const("fc_b", _numpy(layer.bias))],
                          transB=1))
    x = g.node("Gemm", [x, g.const("out_w", _numpy(net.out.weight)), g.const("out_b", _numpy(net.out.bias))],
               transB=1)
    if c.head == "sigmoid":
        x = g.node("Sigmoid", [x])
    elif c.head == "softplus":
        x = g.node("Softplus", [x])
    else:
        x = g.node("Add", [g.node("Mul", [x, g.const("out_std", _numpy(net.out_std))]),
                           g.const("out_mean", _numpy(net.out_mean))])
    if ridge is not None:
        blend = float(net.blend)
        x = g.node("Add", [g.node("Mul", [x, g.const("net_share", np.array(1.0 - blend))]),
                           g.node("Mul", [ridge, g.const("ridge_share", np.array(blend))])])
    if low_features is not None:  # max(net, level * sigmoid(read-out / low_range))
        readout = g.node("Gemm", [low_features, g.const("low_w", _numpy(net.low_w)),
                                  g.const("low_b", _numpy(net.low_b))], transB=1)
        squashed = g.node("Sigmoid", [g.node("Div", [readout, g.const("low_range", np.array(c.low_range))])])
        x = g.node("Max", [x, g.node("Mul", [squashed, g.const("low_level", _numpy(net.low_level))])])
    g.nodes.append(helper.make_node("Identity", [x], ["output"], name="output"))
    graph = helper.make_graph(
        g.nodes, f"eifer_{metadata.direction}",
        [helper.make_tensor_value_info(metadata.input_name, TensorProto.FLOAT,
                                       ["batch", c.window, c.n_inputs])]
        + ([helper.make_tensor_value_info(metadata.mask_name, TensorProto.FLOAT, ["batch", c.n_inputs])]
           if c.masked else []),
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", c.n_outputs])],
        initializer=g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="eifer_blender models/export.py", ir_version=IR_VERSION)
    helper.set_model_props(model, metadata.to_props())
    onnx.checker.check_model(model, full_check=True)
    return model


def export_onnx(net: WindowNet, metadata: ModelMetadata, path) -> Path:
    """Write ``net`` as an EIFER ONNX file at ``path`` (parent folders are created)."""
    metadata.validate(str(path))
    model = build_onnx(net.eval(), metadata)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return path


def load_torch_net(path) -> WindowNet:
    """The torch module an EIFER ONNX file was exported from, rebuilt from the file's weights
    (the inverse of :func:`build_onnx`: initialisers by their stem, ``fc_w_7`` -> ``fc_w``, in
    graph order)."""
    model = onnx.load(str(path))
    metadata = ModelMetadata.from_props({p.key: p.value for p in model.metadata_props}, str(path))
    net = WindowNet(NetConfig(**metadata.extra["net"]))
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    by_stem: dict[str, list[np.ndarray]] = {}
    for node in model.graph.node:
        for name in node.input:
            if name in weights:
                by_stem.setdefault(name.rsplit("_", 1)[0], []).append(weights[name])
    pairs = [(net.in_mean, by_stem["in_mean"][0]), (net.in_std, by_stem["in_std"][0])]
    for i, conv in enumerate(net.convs):
        pairs += [(conv.weight, by_stem["conv_w"][i]), (conv.bias, by_stem["conv_b"][i])]
    for i, layer in enumerate(net.hidden_layers):
        pairs += [(layer.weight, by_stem["fc_w"][i]), (layer.bias, by_stem["fc_b"][i])]
    pairs += [(net.out.weight, by_stem["out_w"][0]), (net.out.bias, by_stem["out_b"][0])]
    if net.config.head == "linear":
        pairs += [(net.out_std, by_stem["out_std"][0]), (net.out_mean, by_stem["out_mean"][0])]
    if net.config.ridge_blend:
        pairs += [(net.ridge_w, by_stem["ridge_w"][0]), (net.ridge_b, by_stem["ridge_b"][0]),
                  (net.blend, by_stem["ridge_share"][0])]
    if net.config.low_range:
        pairs += [(net.low_w, by_stem["low_w"][0]), (net.low_b, by_stem["low_b"][0]),
                  (net.low_level, by_stem["low_level"][0])]
    with torch.no_grad():
        for parameter, value in pairs:
            parameter.copy_(torch.from_numpy(value.copy()).reshape(parameter.shape))
    return net.eval()


def check_onnx_matches_torch(net: WindowNet, path, n_windows: int = 512, seed: int = 0,
                             atol: float = 1e-5) -> float:
    """Run ``net`` in torch and the ONNX file in ONNX Runtime (CPU) on random windows.

    Inputs are drawn around the network's own input statistics, with batch sizes 1, 7 and
    ``n_windows`` to exercise the dynamic batch axis. Returns the largest absolute difference and
    raises ``AssertionError`` when it exceeds ``atol``.
    """
    import onnxruntime as ort

    c = net.config
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    mask_name = session.get_inputs()[1].name if c.masked else None
    rng = np.random.default_rng(seed)
    mean, std = _numpy(net.in_mean), _numpy(net.in_std)
    worst = 0.0
    net = net.eval()
    for batch in (1, 7, n_windows):
        z = mean + std * rng.standard_normal((batch, c.window, c.n_inputs))
        x = (np.exp(z) if c.log_input else z).astype(np.float32)
        feeds = {input_name: x}
        mask = None
        if mask_name:  # random subsets, at least one channel each
            mask = (rng.random((batch, c.n_inputs)) < 0.5).astype(np.float32)
            mask[np.arange(batch), rng.integers(0, c.n_inputs, batch)] = 1.0
            feeds[mask_name] = mask
        with torch.no_grad():
            expected = net(torch.from_numpy(x), None if mask is None else torch.from_numpy(mask)).numpy()
        got = session.run(None, feeds)[0]
        if got.shape != expected.shape:
            raise AssertionError(f"ONNX output shape {got.shape} != torch {expected.shape}")
        worst = max(worst, float(np.max(np.abs(got - expected))))
    if not worst <= atol:
        raise AssertionError(f"{path}: ONNX Runtime differs from torch by {worst:.3g} > {atol:g}")
    return worst
