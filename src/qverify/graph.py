"""Keras model → ordered list of ops (the first step of the data flow).

Layers are recognised by class, never by name, so a renamed layer still
works. Every activation shape is carried as HWC: a 1-D signal of length L
with C channels is (L, 1, C); a feature vector of F values is (1, 1, F).
A conv or dense layer with a fused `activation='relu'` becomes two ops
(`<layer>` and `<layer>_relu`), so the conv's range is measured before the
ReLU exactly as in the unfused form (docs/design.md rule 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from qverify.errors import ModelError
from qverify.opkinds import Kind

SUPPORTED = (
    "Conv1D, Conv2D (valid or symmetric same padding, linear or relu), Dense, "
    "ReLU, Activation('relu'), MaxPooling1D/2D, AveragePooling1D/2D (valid), "
    "GlobalAveragePooling1D/2D, Flatten, Dropout, and a final sigmoid/softmax"
)


@dataclass(frozen=True)
class Op:
    """One fixed-point operation, in the order the firmware runs it.

    Attributes:
        name: unique op name (the Keras layer name; `<layer>_relu` for a fused ReLU).
        kind: one of qverify.opkinds.Kind.
        in_shape, out_shape: (H, W, C) without the batch axis.
        kernel: (k_h, k_w) of a conv or a pool window; (1, 1) otherwise.
        stride: (s_h, s_w).
        pad: symmetric zero padding (p_h, p_w), convs only.
        weights: float kernel in Keras layout (k_h, k_w, c_in, c_out) or (in, out).
        bias: float bias (c_out,).
        layer: name of the Keras layer the op came from.
    """

    name: str
    kind: str
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pad: tuple[int, int] = (0, 0)
    weights: np.ndarray | None = field(default=None, compare=False, repr=False)
    bias: np.ndarray | None = field(default=None, compare=False, repr=False)
    layer: str = ""


@dataclass
class Graph:
    """A linear chain of ops plus what surrounds it.

    Attributes:
        input_shape: (H, W, C) of the first op's input.
        model_input_shape: the Keras model's own input shape (no batch axis).
        ops: the ops in execution order.
        final_activation: 'sigmoid', 'softmax' or None, applied in float.
        model: the Keras model the graph was read from.
    """

    input_shape: tuple[int, int, int]
    model_input_shape: tuple[int, ...]
    ops: list[Op]
    final_activation: str | None
    model: object = field(repr=False, default=None)

    def op(self, name: str) -> Op:
        for op in self.ops:
            if op.name == name:
                return op
        raise ModelError(f"no op named '{name}'; ops are: {', '.join(o.name for o in self.ops)}")


def _hwc(shape) -> tuple[int, int, int]:
    dims = tuple(int(d) for d in shape)
    if len(dims) == 1:
        return (1, 1, dims[0])
    if len(dims) == 2:
        return (dims[0], 1, dims[1])
    if len(dims) == 3:
        return dims
    raise ModelError(f"activation shape {dims} has rank {len(dims)}; only 1-D signals and 2-D images are supported")


def _activation_name(layer) -> str:
    act = getattr(layer, "activation", None)
    if act is None:
        return "linear"
    return getattr(act, "__name__", str(act))


def _padding(layer, in_hw, k, s) -> tuple[int, int]:
    if layer.padding == "valid":
        return (0, 0)
    if layer.padding != "same":
        raise ModelError(f"layer '{layer.name}' ({type(layer).__name__}): padding '{layer.padding}' is not supported; "
                         "use 'valid' or symmetric 'same'")
    pads = []
    for n, kk, ss in zip(in_hw, k, s, strict=True):
        out = math.ceil(n / ss)
        total = max((out - 1) * ss + kk - n, 0)
        if total % 2:
            raise ModelError(
                f"layer '{layer.name}' ({type(layer).__name__}): padding 'same' pads this axis asymmetrically "
                f"(total {total} for input {n}, kernel {kk}, stride {ss}); CMSIS-NN pads both sides equally"
            )
        pads.append(total // 2)
    return tuple(pads)


def _pair(v, one_d: bool) -> tuple[int, int]:
    v = tuple(int(x) for x in (v if isinstance(v, (tuple, list)) else (v,)))
    if one_d:
        return (v[0], 1)
    return (v[0], v[1]) if len(v) == 2 else (v[0], v[0])


def _chain(model) -> list:
    """The model's layers in order, refusing anything that is not a single chain."""
    import keras

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError(f"model has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                         "qverify needs one of each (a linear chain)")
    if isinstance(model, keras.Sequential):
        for layer in layers:
            if isinstance(layer, keras.Model):
                raise ModelError(f"layer '{layer.name}' ({type(layer).__name__}) is a nested model; "
                                 f"flatten it into one chain. Supported: {SUPPORTED}")
        return layers
    # Functional: walk the call graph; each layer must consume exactly the tensor the previous one produced.
    previous = model.inputs[0]
    for layer in layers:
        if isinstance(layer, keras.Model):
            raise ModelError(f"layer '{layer.name}' ({type(layer).__name__}) is a nested model; "
                             f"flatten it into one chain. Supported: {SUPPORTED}")
        node = next((n for n in layer._inbound_nodes
                     if len(n.input_tensors) == 1 and n.input_tensors[0] is previous), None)
        if node is None or len(node.output_tensors) != 1:
            raise ModelError(
                f"layer '{layer.name}' ({type(layer).__name__}) is not fed by the layer before it: "
                "the model branches or merges; qverify supports a linear chain only"
            )
        previous = node.output_tensors[0]
    if previous is not model.outputs[0]:
        raise ModelError("the model's output is not its last layer's output; qverify supports a linear chain only")
    return layers


def build_graph(model) -> Graph:
    """Turn a Keras model that is a linear chain into ops.

    Args:
        model: a built Keras model (functional or Sequential).

    Returns:
        The Graph.

    Raises:
        ModelError: for a branch, an unsupported layer or setting; the
            message names the layer, its class and what is supported.
    """
    from keras import layers as L

    if not model.inputs:
        raise ModelError("the model is not built (it has no input shape); build or call it once first")
    model_input_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    shape = _hwc(model_input_shape)
    input_shape = shape
    ops: list[Op] = []
    final = None
    chain = _chain(model)
    for i, layer in enumerate(chain):
        cls = type(layer).__name__
        last = i == len(chain) - 1
        where = f"layer '{layer.name}' ({cls})"
        if final is not None:
            raise ModelError(f"{where} follows the final {final}; the sigmoid/softmax must be the last layer")
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            raise ModelError(f"{where}: data_format '{layer.data_format}' is not supported; "
                             "CMSIS-NN is channels_last (HWC)")

        if isinstance(layer, (L.Conv1D, L.Conv2D)) and not isinstance(layer, (
                L.Conv2DTranspose, L.Conv1DTranspose, L.DepthwiseConv2D, L.SeparableConv2D, L.DepthwiseConv1D,
                L.SeparableConv1D)):
            one_d = isinstance(layer, L.Conv1D)
            if max(_pair(layer.dilation_rate, one_d)) != 1 or getattr(layer, "groups", 1) != 1:
                raise ModelError(f"{where}: dilation and groups are not supported")
            k = _pair(layer.kernel_size, one_d)
            s = _pair(layer.strides, one_d)
            pad = _padding(layer, shape[:2], k, s)
            kern = np.asarray(layer.kernel.numpy(), dtype=np.float32)
            if one_d:
                kern = kern[:, None, :, :]
            bias = _bias(layer, kern)
            out = _hwc(layer.output.shape[1:])
            ops.append(Op(layer.name, Kind.CONV, shape, out, k, s, pad, kern, bias, layer.name))
            shape = out
            final = _fused(layer, where, ops, shape, last)
        elif isinstance(layer, L.Dense):
            if shape[0] != 1 or shape[1] != 1 or len(layer.input.shape) != 2:
                raise ModelError(f"{where}: input shape {tuple(layer.input.shape[1:])} is not a flat vector; "
                                 "add Flatten or GlobalAveragePooling before Dense")
            kern = np.asarray(layer.kernel.numpy(), dtype=np.float32)
            bias = _bias(layer, kern)
            out = (1, 1, int(kern.shape[1]))
            ops.append(Op(layer.name, Kind.DENSE, shape, out, weights=kern, bias=bias, layer=layer.name))
            shape = out
            final = _fused(layer, where, ops, shape, last)
        elif isinstance(layer, L.ReLU):
            if layer.max_value is not None or float(layer.negative_slope) != 0.0 or float(layer.threshold) != 0.0:
                raise ModelError(f"{where}: only a plain ReLU (no max_value, negative_slope or threshold) "
                                 "maps to arm_relu_q15")
            ops.append(Op(layer.name, Kind.RELU, shape, shape, layer=layer.name))
        elif isinstance(layer, L.Activation):
            name = _activation_name(layer)
            if name == "relu":
                ops.append(Op(layer.name, Kind.RELU, shape, shape, layer=layer.name))
            elif name in ("sigmoid", "softmax") and last:
                final = name
            elif name != "linear":
                raise ModelError(f"{where}: activation '{name}' is not supported here. Supported: {SUPPORTED}")
        elif isinstance(layer, L.Softmax) and last:
            final = "softmax"
        elif isinstance(layer, (L.MaxPooling1D, L.MaxPooling2D, L.AveragePooling1D, L.AveragePooling2D)):
            one_d = isinstance(layer, (L.MaxPooling1D, L.AveragePooling1D))
            if layer.padding != "valid":
                raise ModelError(f"{where}: pooling padding '{layer.padding}' is not supported; use 'valid'")
            k = _pair(layer.pool_size, one_d)
            s = _pair(layer.strides if layer.strides is not None else layer.pool_size, one_d)
            kind = Kind.MAXPOOL if isinstance(layer, (L.MaxPooling1D, L.MaxPooling2D)) else Kind.AVGPOOL
            out = _hwc(layer.output.shape[1:])
            ops.append(Op(layer.name, kind, shape, out, k, s, layer=layer.name))
            shape = out
        elif isinstance(layer, (L.GlobalAveragePooling1D, L.GlobalAveragePooling2D)):
            out = (1, 1, shape[2])
            ops.append(Op(layer.name, Kind.GAP, shape, out, layer=layer.name))
            shape = out
        elif isinstance(layer, L.Flatten):
            out = (1, 1, shape[0] * shape[1] * shape[2])
            ops.append(Op(layer.name, Kind.FLATTEN, shape, out, layer=layer.name))
            shape = out
        elif isinstance(layer, (L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D)):
            continue  # inference: identity
        else:
            raise ModelError(f"{where} is not supported. Supported: {SUPPORTED}")
    if not ops:
        raise ModelError("the model has no layers qverify can run")
    return Graph(input_shape, model_input_shape, ops, final, model)


def _bias(layer, kern: np.ndarray) -> np.ndarray:
    """A conv/dense layer's float bias, zeros when it has none."""
    if layer.use_bias:
        return np.asarray(layer.bias.numpy(), dtype=np.float32)
    return np.zeros(kern.shape[-1], np.float32)


def _fused(layer, where, ops, shape, last) -> str | None:
    """Split a fused activation off a conv/dense op; return a final activation name if any."""
    name = _activation_name(layer)
    if name == "linear":
        return None
    if name == "relu":
        ops.append(Op(f"{layer.name}_relu", Kind.RELU, shape, shape, layer=layer.name))
        return None
    if name in ("sigmoid", "softmax") and last:
        return name
    raise ModelError(f"{where}: fused activation '{name}' is not supported. Supported: {SUPPORTED}")
