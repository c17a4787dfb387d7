"""Keras model → ordered list of ops (the first step of the data flow).

Layers are recognised by class, never by name, so a renamed layer still
works. Every activation shape is carried as HWC: a 1-D signal of length L
with C channels is (L, 1, C); a feature vector of F values is (1, 1, F).
A conv or dense layer with a fused `activation='relu'` (or 'relu6') becomes two ops
(`<layer>` and `<layer>_relu`), so the conv's range is measured before the
ReLU exactly as in the unfused form (docs/design.md rule 1).

Each Keras layer class has one handler (the table `handlers()`); a layer goes to the handler of
its class or of its nearest registered base class, and anything else is refused with
the nearest supported form. What the graph changes on the way (a BatchNormalization
folded into the conv before it, a ZeroPadding folded into the conv after it, a zero
bias stored for `use_bias=False`) is recorded in the op's `notes`, which the plan
keeps with its adjustments and `quantize` prints.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from qverify.errors import ModelError
from qverify.opkinds import Kind, pad_after, padded_out

SUPPORTED = (
    "Conv1D, Conv2D (valid or same padding, linear, relu or relu6), Dense, BatchNormalization right after "
    "a conv or Dense, ZeroPadding1D/2D before a conv, ReLU, ReLU6 (ReLU(max_value=6), Activation('relu6')), "
    "MaxPooling1D/2D, AveragePooling1D/2D (valid), GlobalAveragePooling1D/2D, Flatten, Reshape, Dropout, "
    "sigmoid and tanh anywhere (arm_nn_activations_direct_q15), and a final softmax (arm_softmax_q15, or in float)"
)
# how a final sigmoid or softmax runs: 'device' (an op of the plan, Arm's function) or 'float' (after the plan)
FINAL_ACTIVATIONS = ("float", "device")


@dataclass(frozen=True)
class Op:
    """One fixed-point operation, in the order the firmware runs it.

    Attributes:
        name: unique op name (the Keras layer name; `<layer>_relu` for a fused ReLU).
        kind: one of qverify.opkinds.Kind.
        in_shape, out_shape: (H, W, C) without the batch axis.
        kernel: (k_h, k_w) of a conv or a pool window; (1, 1) otherwise.
        stride: (s_h, s_w).
        pad: zero padding before the input (top p_h, left p_w), convs only; after it the pad is p or, where
            the output size implies it (TensorFlow's 'same' with an odd total), p + 1 (opkinds.conv_pads).
        weights: float kernel in Keras layout (k_h, k_w, c_in, c_out) or (in, out).
        bias: float bias (c_out,).
        layer: name of the Keras layer the op came from.
        notes: what the graph changed to make the op (folds, a stored zero bias), for the plan's adjustments.
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
    notes: tuple[str, ...] = field(default=(), compare=False)


@dataclass
class Graph:
    """A linear chain of ops plus what surrounds it.

    Attributes:
        input_shape: (H, W, C) of the first op's input.
        model_input_shape: the Keras model's own input shape (no batch axis).
        ops: the ops in execution order.
        final_activation: 'sigmoid', 'softmax' or None, applied in float (build_graph's final_activation
            'float'); with 'device' a final sigmoid or softmax is the last op instead, and this is None.
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


def _hwc(shape, what: str = "activation") -> tuple[int, int, int]:
    dims = tuple(int(d) for d in shape)
    if len(dims) == 1:
        return (1, 1, dims[0])
    if len(dims) == 2:
        return (dims[0], 1, dims[1])
    if len(dims) == 3:
        return dims
    raise ModelError(
        f"{what} shape {dims} has rank {len(dims)}; only 1-D signals (L, C), 2-D images (H, W, C) and "
        "vectors (F,) are supported"
    )


def _activation_name(layer) -> str:
    act = getattr(layer, "activation", None)
    if act is None:
        return "linear"
    return getattr(act, "__name__", str(act))


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
        raise ModelError(
            f"model has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
            "qverify needs one of each (a linear chain)"
        )
    if isinstance(model, keras.Sequential):
        for layer in layers:
            if isinstance(layer, keras.Model):
                raise ModelError(
                    f"layer '{layer.name}' ({type(layer).__name__}) is a nested model; "
                    f"flatten it into one chain. Supported: {SUPPORTED}"
                )
        return layers
    # Functional: walk the call graph; each layer must consume exactly the tensor the previous one produced.
    previous = model.inputs[0]
    for layer in layers:
        if isinstance(layer, keras.Model):
            raise ModelError(
                f"layer '{layer.name}' ({type(layer).__name__}) is a nested model; "
                f"flatten it into one chain. Supported: {SUPPORTED}"
            )
        node = next(
            (n for n in layer._inbound_nodes if len(n.input_tensors) == 1 and n.input_tensors[0] is previous), None
        )
        if node is None or len(node.output_tensors) != 1:
            raise ModelError(
                f"layer '{layer.name}' ({type(layer).__name__}) is not fed by the layer before it: "
                "the model branches or merges; qverify supports a linear chain only"
            )
        previous = node.output_tensors[0]
    if previous is not model.outputs[0]:
        raise ModelError("the model's output is not its last layer's output; qverify supports a linear chain only")
    return layers


def build_graph(model, final_activation: str = "float") -> Graph:
    """Turn a Keras model that is a linear chain into ops.

    Each layer goes to the handler of its class (handlers(); a subclass to its nearest registered base). A
    BatchNormalization right after a Conv1D/Conv2D/Dense is folded into that op's weights and bias; a
    ZeroPadding1D/2D into the next conv's padding; a Reshape changes only the HWC shape (the bytes stay in order).

    Args:
        model: a built Keras model (functional or Sequential).
        final_activation: 'float': a final sigmoid or softmax is applied in float after the plan (the
            Graph's final_activation); 'device': it is the plan's last op (arm_nn_activations_direct_q15,
            arm_softmax_q15), verified like every other. A sigmoid or tanh anywhere else, and a final tanh, is
            always an op.

    Returns:
        The Graph.

    Raises:
        ModelError: for a branch, an unsupported layer or setting; the message names the layer, its class and
            the nearest supported form.
    """
    if not model.inputs:
        raise ModelError("the model is not built (it has no input shape); build or call it once first")
    dims = tuple(model.inputs[0].shape[1:])
    if any(d is None for d in dims):
        raise ModelError(
            f"the model's input shape {tuple(model.inputs[0].shape)} has an unknown dimension beyond "
            "the batch; give keras.Input a fixed shape (the firmware's buffers are sized by it)"
        )
    model_input_shape = tuple(int(d) for d in dims)
    if final_activation not in FINAL_ACTIVATIONS:
        raise ModelError(f"final activation '{final_activation}' is not one of {', '.join(FINAL_ACTIVATIONS)}")
    b = _Build(_hwc(model_input_shape, "the model's input"))
    b.final_mode = final_activation
    chain = _chain(model)
    for i, layer in enumerate(chain):
        b.layer, b.last = layer, i == len(chain) - 1
        if b.final is not None:
            raise ModelError(f"{b.where} follows the final {b.final}; the sigmoid/softmax must be the last layer")
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            raise ModelError(
                f"{b.where}: data_format '{layer.data_format}' is not supported; CMSIS-NN is channels_last (HWC)"
            )
        handler = _handler(layer)
        if b.zero_pad is not None and handler not in (_conv, _zero_padding, _identity):
            zp = b.zero_pad[0]
            raise ModelError(
                f"layer '{zp.name}' ({type(zp).__name__}) is followed by {b.where}: zero padding is "
                "folded into the padding of the Conv1D/Conv2D right after it, and there is none; "
                "move it before a conv or remove it"
            )
        handler(b, layer)
        if handler not in (_identity, _batchnorm):
            b.foldable = handler in (_conv, _dense) and b.ops[-1].kind in (Kind.CONV, Kind.DENSE)
    if b.zero_pad is not None:
        zp = b.zero_pad[0]
        raise ModelError(
            f"layer '{zp.name}' ({type(zp).__name__}) ends the model; zero padding is folded into the "
            "next conv's padding: remove it"
        )
    if not b.ops:
        raise ModelError("the model has no layers qverify can run")
    return Graph(b.input_shape, model_input_shape, b.ops, b.final, model)


class _Build:
    """What the handlers read and change while the chain is walked."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.shape = shape  # the current activation, HWC
        self.input_shape = shape  # the first op's input (a Reshape before any op changes it)
        self.ops: list[Op] = []
        self.final: str | None = None
        self.final_mode = "float"  # a final sigmoid/softmax: 'float' (Graph.final_activation) or 'device' (an op)
        self.layer: Any = None  # the Keras layer being read
        self.last = False
        self.foldable = False  # the last op is a linear conv/dense a BatchNormalization may fold into
        # (first ZeroPadding layer, ((top, bottom), (left, right))) awaiting a conv
        self.zero_pad: tuple[Any, tuple[tuple[int, ...], ...]] | None = None

    @property
    def where(self) -> str:
        return f"layer '{self.layer.name}' ({type(self.layer).__name__})"

    def add(self, op: Op) -> None:
        self.ops.append(op)
        self.shape = op.out_shape

    def reshape(self, shape) -> None:
        """A new HWC shape for the same bytes."""
        if not self.ops:
            self.input_shape = shape
        self.shape = shape


# ---- the handlers: one per Keras layer class (HANDLERS), each f(build, layer) ----


def _conv(b: _Build, layer) -> None:
    from keras import layers as L

    one_d = isinstance(layer, L.Conv1D)
    cls = type(layer).__name__
    dilation = _pair(layer.dilation_rate, one_d)
    if max(dilation) != 1:
        raise ModelError(
            f"{b.where}: dilation_rate {dilation[0] if one_d else dilation} is not supported (no CMSIS "
            f"q15 convolution dilates); the nearest supported form is a {cls} with dilation_rate=1"
        )
    groups = int(getattr(layer, "groups", 1))
    if groups != 1:
        raise ModelError(
            f"{b.where}: groups={groups} is not supported (no CMSIS q15 grouped convolution); the "
            f"nearest supported form is a {cls} with groups=1"
        )
    k, s = _pair(layer.kernel_size, one_d), _pair(layer.strides, one_d)
    zp_layer, zp = b.zero_pad if b.zero_pad is not None else (None, ((0, 0), (0, 0)))
    b.zero_pad = None
    out = _hwc(layer.output.shape[1:])
    pads: list[int] = []  # one per axis, rows then columns
    for axis, n, kk, ss, (z_before, z_after), o in zip(
        ("rows (H)", "columns (W)"), b.shape[:2], k, s, zp, out[:2], strict=True
    ):
        n_padded = n + z_before + z_after
        if layer.padding == "valid":
            before, after = 0, 0
        elif layer.padding == "same":
            total = max((-(-n_padded // ss) - 1) * ss + kk - n_padded, 0)  # TensorFlow's split: the extra after
            before, after = total // 2, total - total // 2
        else:
            raise ModelError(
                f"{b.where}: padding '{layer.padding}' is not supported (it pads {kk - 1} before the "
                "input and none after, which the CMSIS kernels cannot); use 'valid' or 'same'"
            )
        before, after = before + z_before, after + z_after
        if one_d and axis.startswith("columns"):
            pads.append(0)
            continue
        what = (
            f"along its {'length' if one_d else axis}: input {n}, kernel {kk}, stride {ss}, {before} zero(s) "
            f"before and {after} after" + (f" (with {zp_layer.name}'s)" if zp_layer is not None else "")
        )
        if kk > n + 2 * before:
            raise ModelError(
                f"{b.where}: the window is larger than the input padded {before} on both sides {what}; "
                "the q15 kernels refuse such a call: use padding='valid' or a smaller kernel"
            )
        if padded_out(n, kk, ss, before, o) != o:
            raise ModelError(
                f"{b.where}: padding the CMSIS kernels cannot express {what}: they pad p before and p after, or "
                f"p + 1 after as TensorFlow's 'same' does (implied by the output size; this output of {o} implies "
                f"{pad_after(n, kk, ss, before, o)} after {before} before); use symmetric padding or put the extra "
                "zero after (bottom, right)"
            )
        pads.append(before)
    kern = np.asarray(layer.kernel.numpy(), dtype=np.float32)
    if one_d:
        kern = kern[:, None, :, :]
    bias, notes = _bias(layer, kern)
    if zp_layer is not None:
        notes.append(f"{zp_layer.name} ({type(zp_layer).__name__}) folded into the padding: {_pads_text(zp, one_d)}")
    b.add(Op(layer.name, Kind.CONV, b.shape, out, k, s, (pads[0], pads[1]), kern, bias, layer.name, tuple(notes)))
    _fused(b, layer)


def _pads_text(zp, one_d: bool) -> str:
    (t, bo), (le, r) = zp
    return f"{t} before and {bo} after" if one_d else f"top {t}, bottom {bo}, left {le}, right {r}"


def _dense(b: _Build, layer) -> None:
    if b.shape[0] != 1 or b.shape[1] != 1 or len(layer.input.shape) != 2:
        raise ModelError(
            f"{b.where}: input shape {tuple(layer.input.shape[1:])} is not a flat vector; "
            "add Flatten or GlobalAveragePooling before Dense"
        )
    kern = np.asarray(layer.kernel.numpy(), dtype=np.float32)
    bias, notes = _bias(layer, kern)
    b.add(
        Op(
            layer.name,
            Kind.DENSE,
            b.shape,
            (1, 1, int(kern.shape[1])),
            weights=kern,
            bias=bias,
            layer=layer.name,
            notes=tuple(notes),
        )
    )
    _fused(b, layer)


_ZERO_BIAS = "no bias (use_bias=False): "


def _bias(layer, kern: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """A conv/dense layer's float bias (zeros when it has none) and the note a stored zero bias gets."""
    if layer.use_bias:
        return np.asarray(layer.bias.numpy(), dtype=np.float32), []
    n = int(kern.shape[-1])
    return np.zeros(n, np.float32), [
        f"{_ZERO_BIAS}a zero bias of {n} values ({2 * n} bytes of flash) is stored, "
        "since the q15 kernels always add one"
    ]


def _fused(b: _Build, layer) -> None:
    """Split a fused activation off a conv/dense op, or take it as the final activation."""
    name = _activation_name(layer)
    if name == "linear":
        return
    if name in ("relu", "relu6"):
        kind = Kind.RELU if name == "relu" else Kind.RELU6
        b.add(Op(f"{layer.name}_{name}", kind, b.shape, b.shape, layer=layer.name))
        return
    if name in ("sigmoid", "tanh") or (name == "softmax" and b.last):
        _device_activation(b, name, f"{layer.name}_{name}", layer)
        return
    where = " here (only as the last layer)" if name == "softmax" else ""
    raise ModelError(
        f"{b.where}: fused activation '{name}' is not supported{where}; the nearest supported forms "
        "are activation='relu', 'relu6', 'sigmoid' or 'tanh' (or a final softmax). Supported: " + SUPPORTED
    )


def _device_activation(b: _Build, name: str, op_name: str, layer) -> None:
    """A sigmoid, tanh or (last) softmax: an op of the plan, or, for a final sigmoid/softmax with the 'float'
    mode, the Graph's final activation."""
    if b.last and name in ("sigmoid", "softmax") and b.final_mode == "float":
        b.final = name
        return
    kind = {"sigmoid": Kind.SIGMOID, "tanh": Kind.TANH, "softmax": Kind.SOFTMAX}[name]
    b.add(Op(op_name, kind, b.shape, b.shape, layer=layer.name))


def _batchnorm(b: _Build, layer) -> None:
    """Fold an inference-mode BatchNormalization into the conv/dense op right before it."""
    must = (
        "a BatchNormalization must come right after a Conv1D, Conv2D or Dense with activation='linear' (put "
        "any ReLU after the BatchNormalization), where qverify folds it into the weights and bias"
    )
    if not b.foldable:
        if not b.ops:
            follows = "the model's input"
        else:
            op = b.ops[-1]
            follows = f"op '{op.name}' ({op.kind})"
            if op.kind in (Kind.RELU, Kind.RELU6) and op.name != op.layer:
                follows += f", layer '{op.layer}''s fused activation"
        raise ModelError(f"{b.where} follows {follows}; {must}")
    axes = list(layer.axis) if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    rank = len(layer.input.shape)
    if [a % rank for a in axes] != [rank - 1]:
        raise ModelError(
            f"{b.where}: axis {layer.axis} is not the channel axis (-1); only per-channel "
            "BatchNormalization folds into a conv or Dense"
        )
    op = b.ops[-1]
    # b.foldable: the last op is a conv or Dense, and those always carry weights and bias
    assert op.weights is not None and op.bias is not None
    c = op.out_shape[2]
    mean = np.asarray(layer.moving_mean.numpy(), np.float64)
    var = np.asarray(layer.moving_variance.numpy(), np.float64)
    gamma = np.asarray(layer.gamma.numpy(), np.float64) if layer.scale else np.ones(c)
    beta = np.asarray(layer.beta.numpy(), np.float64) if layer.center else np.zeros(c)
    eps = float(layer.epsilon)
    scale = gamma / np.sqrt(var + eps)
    weights = (op.weights.astype(np.float64) * scale).astype(np.float32)  # per output channel: the last axis
    bias = ((op.bias.astype(np.float64) - mean) * scale + beta).astype(np.float32)
    used = ", ".join(
        [
            "moving mean and variance",
            f"epsilon {eps:g}",
            *(["gamma"] if layer.scale else []),
            *(["beta"] if layer.center else []),
        ]
    )
    notes = [n for n in op.notes if not n.startswith(_ZERO_BIAS)]
    notes.append(f"{layer.name} (BatchNormalization) folded into the weights and bias (inference mode: {used})")
    b.ops[-1] = replace(op, weights=weights, bias=bias, notes=tuple(notes))


def _relu(b: _Build, layer) -> None:
    slope, threshold, top = float(layer.negative_slope), float(layer.threshold), layer.max_value
    if slope != 0.0 or threshold != 0.0 or (top is not None and float(top) != 6.0):
        raise ModelError(
            f"{b.where}: ReLU(max_value={top}, negative_slope={slope:g}, threshold={threshold:g}) is "
            "not supported; the nearest supported forms are ReLU() (arm_relu_q15) and "
            "ReLU(max_value=6) (ReLU6, qv_relu6_q15)"
        )
    kind = Kind.RELU if top is None else Kind.RELU6
    b.add(Op(layer.name, kind, b.shape, b.shape, layer=layer.name))


def _activation(b: _Build, layer) -> None:
    name = _activation_name(layer)
    if name in ("relu", "relu6"):
        b.add(Op(layer.name, Kind.RELU if name == "relu" else Kind.RELU6, b.shape, b.shape, layer=layer.name))
    elif name in ("sigmoid", "tanh") or (name == "softmax" and b.last):
        _device_activation(b, name, layer.name, layer)
    elif name != "linear":
        where = "here (only as the last layer)" if name == "softmax" else ""
        raise ModelError(
            f"{b.where}: activation '{name}' is not supported {where}".rstrip()
            + "; the nearest supported forms are Activation('relu'), 'relu6', 'sigmoid' and 'tanh'"
        )


def _softmax(b: _Build, layer) -> None:
    if not b.last:
        raise ModelError(f"{b.where}: a Softmax is supported only as the last layer (arm_softmax_q15 or in float)")
    axes = list(layer.axis) if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    rank = len(layer.input.shape)
    if [a % rank for a in axes] != [rank - 1]:
        raise ModelError(
            f"{b.where}: axis {layer.axis} is not the channel axis (-1); arm_softmax_q15 normalises "
            "the channels of each position: use Softmax(axis=-1)"
        )
    _device_activation(b, "softmax", layer.name, layer)


def _pool(b: _Build, layer) -> None:
    from keras import layers as L

    one_d = isinstance(layer, (L.MaxPooling1D, L.AveragePooling1D))
    if layer.padding != "valid":
        raise ModelError(
            f"{b.where}: pooling padding '{layer.padding}' is not supported (the q15 pools have no "
            "padding); the nearest supported form is padding='valid'"
        )
    k = _pair(layer.pool_size, one_d)
    s = _pair(layer.strides if layer.strides is not None else layer.pool_size, one_d)
    kind = Kind.MAXPOOL if isinstance(layer, (L.MaxPooling1D, L.MaxPooling2D)) else Kind.AVGPOOL
    b.add(Op(layer.name, kind, b.shape, _hwc(layer.output.shape[1:]), k, s, layer=layer.name))


def _gap(b: _Build, layer) -> None:
    if getattr(layer, "keepdims", False):
        raise ModelError(f"{b.where}: keepdims=True is not supported; the nearest supported form is keepdims=False")
    b.add(Op(layer.name, Kind.GAP, b.shape, (1, 1, b.shape[2]), layer=layer.name))


def _flatten(b: _Build, layer) -> None:
    b.add(Op(layer.name, Kind.FLATTEN, b.shape, (1, 1, b.shape[0] * b.shape[1] * b.shape[2]), layer=layer.name))


def _reshape(b: _Build, layer) -> None:
    """A Reshape keeps the bytes in order (Keras and HWC are both row-major, channels last), so it changes only
    the shape: before the first op it sets the input's, after an op it is a flatten or no change at all."""
    new = _hwc(layer.output.shape[1:], f"{b.where}: target")
    if not b.ops or new == b.shape:
        b.reshape(new)
    elif new == (1, 1, b.shape[0] * b.shape[1] * b.shape[2]):
        b.add(Op(layer.name, Kind.FLATTEN, b.shape, new, layer=layer.name))
    else:
        raise ModelError(
            f"{b.where}: reshaping {b.shape} (HWC) to {new} after the first op would need a copy op "
            "qverify does not have; reshape the model's input instead (a Reshape before the first "
            "layer), or flatten with Flatten / Reshape((-1,))"
        )


def _zero_padding(b: _Build, layer) -> None:
    """Held for the next conv, which folds it into its padding."""
    from keras import layers as L

    pad: tuple[tuple[int, ...], ...]  # ((before, after) per axis): rows, then columns
    if isinstance(layer, L.ZeroPadding1D):
        pad = (tuple(int(v) for v in layer.padding), (0, 0))
    else:
        pad = tuple(tuple(int(v) for v in axis) for axis in layer.padding)
    first, held = b.zero_pad if b.zero_pad is not None else (layer, ((0, 0), (0, 0)))
    b.zero_pad = (first, tuple((h0 + p0, h1 + p1) for (h0, h1), (p0, p1) in zip(held, pad, strict=True)))


def _identity(b: _Build, layer) -> None:
    """Dropout and noise layers: the identity at inference."""


# the nearest supported form of layers qverify refuses (by class name)
_NEAREST = {
    "Conv1DTranspose": "Conv1D (no CMSIS q15 transposed convolution)",
    "Conv2DTranspose": "Conv2D (no CMSIS q15 transposed convolution)",
    "DepthwiseConv1D": "Conv1D (no legacy CMSIS q15 depthwise convolution)",
    "DepthwiseConv2D": "Conv2D (no legacy CMSIS q15 depthwise convolution)",
    "SeparableConv1D": "Conv1D (no legacy CMSIS q15 separable convolution)",
    "SeparableConv2D": "Conv2D (no legacy CMSIS q15 separable convolution)",
    "Conv3D": "Conv2D",
    "ZeroPadding3D": "ZeroPadding2D before a Conv2D",
    "LeakyReLU": "ReLU or ReLU(max_value=6)",
    "PReLU": "ReLU or ReLU(max_value=6)",
    "ELU": "ReLU",
    "GlobalMaxPooling1D": "GlobalAveragePooling1D",
    "GlobalMaxPooling2D": "GlobalAveragePooling2D",
    "LayerNormalization": "BatchNormalization right after a conv or Dense (folded into it)",
    "GroupNormalization": "BatchNormalization right after a conv or Dense (folded into it)",
    "Permute": "Reshape (it keeps the HWC order; a permutation moves bytes)",
    "Cropping1D": "a conv with padding='valid'",
    "Cropping2D": "a conv with padding='valid'",
}


def _unsupported(b: _Build, layer) -> None:
    nearest = _NEAREST.get(type(layer).__name__)
    hint = f"; the nearest supported form is {nearest}" if nearest else ""
    raise ModelError(f"{b.where} is not supported{hint}. Supported: {SUPPORTED}")


@functools.cache
def handlers() -> dict[type, Callable[[_Build, Any], None]]:
    """{Keras layer class: handler}, built once (Keras is imported lazily)."""
    from keras import layers as L

    table: dict[type, Callable[[_Build, Any], None]] = {
        L.Conv1D: _conv,
        L.Conv2D: _conv,
        L.Dense: _dense,
        L.BatchNormalization: _batchnorm,
        L.ReLU: _relu,
        L.Activation: _activation,
        L.Softmax: _softmax,
        L.MaxPooling1D: _pool,
        L.MaxPooling2D: _pool,
        L.AveragePooling1D: _pool,
        L.AveragePooling2D: _pool,
        L.GlobalAveragePooling1D: _gap,
        L.GlobalAveragePooling2D: _gap,
        L.Flatten: _flatten,
        L.Reshape: _reshape,
        L.ZeroPadding1D: _zero_padding,
        L.ZeroPadding2D: _zero_padding,
        L.Dropout: _identity,
        L.SpatialDropout1D: _identity,
        L.SpatialDropout2D: _identity,
        L.GaussianNoise: _identity,
        L.GaussianDropout: _identity,
        L.AlphaDropout: _identity,
    }
    for name in _NEAREST:  # refused even where a Keras version derives them from a supported class
        cls = getattr(L, name, None)
        if cls is not None:
            table[cls] = _unsupported
    return table


def _handler(layer):
    """The handler of the layer's class, or of its nearest registered base class; else the refusal."""
    table = handlers()
    for cls in type(layer).__mro__:
        if cls in table:
            return table[cls]
    return _unsupported
