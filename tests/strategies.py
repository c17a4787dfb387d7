"""Shared builders for tests: single-op and small plans with random integer weights, and the
Hypothesis strategies of the property suite (tests/test_properties_*.py) built on them:

    OpCase / op_cases(), conv_cases(), dense_cases(), pool_cases(), shape_cases(), wrapping_cases()
        one op with its integer input, every kind, shapes, shifts 0..31, value fills, formats (relu6);
    NetSpec / net_specs(), Layer, layer_chains()
        small random Keras networks (2-6 ops) with their data;
    chain_plan()
        a QuantPlan for a layer chain without Keras (random q15 weights, given shifts);
    examples(share)
        a test's max_examples as a share of the loaded profile's (profiles: conftest.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

from qverify.kernels import OLDEST
from qverify.layout import conv_to_cmsis, dense_to_cmsis
from qverify.opkinds import FUNCTIONS
from qverify.opkinds import KINDS as OP_KINDS
from qverify.plan import OpPlan, QuantPlan


def out_hw(n: int, k: int, s: int, p: int, p_after: int | None = None) -> int:
    """Windows of k at stride s over n values padded p before and p_after (default p) after."""
    return (n + p + (p if p_after is None else p_after) - k) // s + 1


def op_plan(
    kind,
    in_shape,
    *,
    cout=None,
    kernel=(1, 1),
    stride=(1, 1),
    pad=(0, 0),
    weights=None,
    bias=None,
    bias_lshift=0,
    out_rshift=0,
    name=None,
    out_size=None,
    frac=15,
) -> OpPlan:
    """An OpPlan with explicit geometry; weights in Keras layout (converted to CMSIS here). out_size: a conv's
    (H, W) output when it is not the symmetric window (TensorFlow's 'same' split: one more zero after); frac:
    the format of an unweighted op (in = out: a relu6's bound follows from it)."""
    h, w, c = in_shape
    if kind == "conv":
        out = (out_hw(h, kernel[0], stride[0], pad[0]), out_hw(w, kernel[1], stride[1], pad[1]), cout)
        if out_size is not None:
            out = (*out_size, cout)
        flat = conv_to_cmsis(np.asarray(weights, np.int16))
    elif kind == "dense":
        out, flat = (1, 1, cout), dense_to_cmsis(np.asarray(weights, np.int16))
    elif kind in ("maxpool", "avgpool"):
        out = (out_hw(h, kernel[0], stride[0], 0), out_hw(w, kernel[1], stride[1], 0), c)
    elif kind == "gap":
        out = (1, 1, c)
    elif kind == "flatten":
        out = (1, 1, h * w * c)
    else:
        out = in_shape
    weighted = kind in ("conv", "dense")
    f = 15 if weighted else frac
    return OpPlan(
        name or kind,
        kind,
        tuple(in_shape),
        tuple(out),
        tuple(kernel),
        tuple(stride),
        tuple(pad),
        in_frac=f,
        out_frac=f,
        range=(0.0, 0.0),
        w_frac=15 if weighted else None,
        b_frac=15 if weighted else None,
        bias_lshift=bias_lshift if weighted else None,
        out_rshift=out_rshift if weighted else None,
        weights=flat if weighted else None,
        bias=np.asarray(bias, np.int16) if weighted else None,
    )


def plan_of(ops: list[OpPlan], rounding: str = "truncate", cmsis: str = OLDEST) -> QuantPlan:
    """A QuantPlan around hand-made ops (input format Q0.15), for a firmware building CMSIS_5 `cmsis` or later
    (the functions chosen for that release)."""
    return QuantPlan(
        16,
        rounding,
        "notebook",
        ops[0].in_shape,
        ops[0].in_shape,
        15,
        (-1.0, 1.0),
        ops,
        None,
        {"model": "test"},
        cmsis=cmsis,
    )


def random_q15(rng: np.random.Generator, shape, scale: int = 32768) -> np.ndarray:
    """Uniform integers in [-scale, scale) clipped to int16."""
    return np.clip(rng.integers(-scale, scale, size=shape), -32768, 32767).astype(np.int16)


# ================================================================ Hypothesis strategies
#
# Tensors are not drawn element by element (a 1024 x 1024 dense layer would be far too large
# for Hypothesis): a case draws its geometry, shifts, a *fill* per tensor and a numpy seed,
# and the integers are generated from those.  Every case is a frozen dataclass whose repr is
# a constructor call, so the "Falsifying example" Hypothesis prints is itself the code that
# rebuilds the failing tensors: `from strategies import *; case = OpCase(...)`.

QMIN, QMAX = -32768, 32767
# Ordered simplest first: Hypothesis shrinks sampled_from towards the front.
FILLS = ("zero", "small", "full", "extreme", "pow2", "qmin", "qmax")
WRAP_FILLS = ("extreme", "qmin", "qmax", "pow2", "full")
KINDS = ("conv", "dense", "relu", "maxpool", "avgpool", "gap", "flatten", "relu6")


def examples(share: float) -> int:
    """max_examples for a test: `share` of the loaded profile's max_examples (see conftest.py).

    Decorators are evaluated at import, after conftest.py (or --hypothesis-profile) loaded the
    profile, so `@settings(max_examples=examples(0.2))` scales with ci / deep / dev.
    """
    return max(1, round(settings.default.max_examples * share))


def fill_q15(rng: np.random.Generator, shape, fill: str) -> np.ndarray:
    """int16 tensor of `shape` with the given fill.

    zero: all 0 · small: [-64, 64] · full: uniform over int16 · extreme: QMIN, QMAX, 0, ±1 ·
    pow2: ±2^k with k in 0..14, and -2^15 · qmin / qmax: every value at the limit.
    """
    shape = tuple(int(s) for s in np.atleast_1d(shape))
    if fill == "zero":
        return np.zeros(shape, np.int16)
    if fill == "small":
        return rng.integers(-64, 65, size=shape).astype(np.int16)
    if fill == "full":
        return rng.integers(QMIN, QMAX + 1, size=shape).astype(np.int16)
    if fill == "extreme":
        return rng.choice(np.array([QMIN, QMAX, 0, 1, -1], np.int16), size=shape)
    if fill == "pow2":
        k = rng.integers(0, 16, size=shape)
        sign = rng.choice(np.array([-1, 1]), size=shape)
        return np.where(k == 15, QMIN, sign * (1 << np.minimum(k, 14))).astype(np.int16)
    if fill == "qmin":
        return np.full(shape, QMIN, np.int16)
    if fill == "qmax":
        return np.full(shape, QMAX, np.int16)
    raise ValueError(f"unknown fill {fill!r}")


@dataclass(frozen=True)
class OpCase:
    """One op with its integer input: geometry, shifts, fills and a seed (or explicit values).

    x / w / b, when given, are flat tuples of integers used instead of the fills (for pinned
    examples); w is in Keras layout (k_h, k_w, c_in, c_out) or (in, out).
    """

    kind: str
    in_shape: tuple[int, int, int]
    batch: int = 1
    cout: int = 0
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pad: tuple[int, int] = (0, 0)
    bias_lshift: int = 0
    out_rshift: int = 0
    x_fill: str = "full"
    w_fill: str = "full"
    b_fill: str = "full"
    seed: int = 0
    x: tuple | None = None
    w: tuple | None = None
    b: tuple | None = None
    frac: int = 15  # an unweighted op's format (relu6: its bound)
    function: str | None = None  # the C function (None: the one kernels.choose picks); a q7 one gets q7 weights

    @property
    def weight_bits(self) -> int:
        return FUNCTIONS[self.function].weight_bits if self.function else 16

    @property
    def weighted(self) -> bool:
        return self.kind in ("conv", "dense")

    @property
    def w_shape(self) -> tuple[int, ...]:
        if self.kind == "conv":
            return (*self.kernel, self.in_shape[2], self.cout)
        return (self.in_shape[2], self.cout)

    @property
    def taps(self) -> int:
        """Products summed per output (0 for unweighted ops)."""
        if self.kind == "conv":
            return self.kernel[0] * self.kernel[1] * self.in_shape[2]
        return self.in_shape[2] if self.kind == "dense" else 0

    def tensors(self):
        """(x (N, H, W, C) int16, w Keras layout int16 or None, b int16 or None), deterministic."""
        rng = np.random.default_rng(self.seed)

        def make(values, shape, fill):
            if values is not None:
                return np.asarray(values, np.int16).reshape(shape)
            return fill_q15(rng, shape, fill)

        x = make(self.x, (self.batch, *self.in_shape), self.x_fill)
        if not self.weighted:
            return x, None, None
        w, b = make(self.w, self.w_shape, self.w_fill), make(self.b, (self.cout,), self.b_fill)
        if self.weight_bits == 8:  # a fill's q7 counterpart: the top byte (QMIN -> -128, QMAX -> 127)
            w = w if self.w is not None else (w >> 8).astype(np.int16)
            b = b if self.b is not None else (b >> 8).astype(np.int16)
        return x, w, b

    def op(self, name: str | None = None) -> OpPlan:
        _, w, b = self.tensors()
        op = op_plan(
            self.kind,
            self.in_shape,
            cout=self.cout or None,
            kernel=self.kernel,
            stride=self.stride,
            pad=self.pad,
            weights=w,
            bias=b,
            bias_lshift=self.bias_lshift,
            out_rshift=self.out_rshift,
            name=name,
            frac=self.frac,
        )
        if self.function is not None:
            op.function, op.weight_bits = self.function, self.weight_bits
        return op

    def plan(self, rounding: str = "truncate") -> QuantPlan:
        return plan_of([self.op()], rounding)


# Shifts: every value in [0, 31], with the boundaries 0 and 31 drawn often.
shifts = st.one_of(st.sampled_from([0, 31]), st.integers(0, 31))
fills = st.sampled_from(FILLS)
seeds = st.integers(0, 2**32 - 1)

# every function a dense op may call: the q15 and q7-weight ones, in [out][in] and in the _opt interleaves
DENSE_FUNCTIONS = tuple(f.name for f in OP_KINDS["dense"].functions)
MAC_BUDGET = 400_000  # multiply-accumulates per conv example (keeps the int64 reference fast)


@st.composite
def conv_cases(
    draw, max_hw: int = 24, max_ch: int = 64, max_k: int = 9, value_fills=fills, mac_budget: int = MAC_BUDGET
) -> OpCase:
    """1-D (W = 1, k_w = 1) and 2-D convolutions: k_h != k_w allowed, kernels 1..max_k,
    channels 1..max_ch (odd and 1 included), strides 1..3, valid or symmetric 'same' padding
    ((k - 1) // 2 on each side), H, W <= max_hw; output size chosen inside a MAC budget."""
    one_d = draw(st.booleans())
    ci = draw(st.integers(1, max_ch))
    co = draw(st.integers(1, max_ch))
    kh = draw(st.integers(1, max_k))
    kw = 1 if one_d else draw(st.integers(1, max_k))
    sh = draw(st.integers(1, 3))
    sw = 1 if one_d else draw(st.integers(1, 3))
    same = draw(st.booleans())
    ph = (kh - 1) // 2 if same else 0
    pw = 0 if one_d else ((kw - 1) // 2 if same else 0)
    batch = draw(st.integers(1, 2))
    per_out = ci * co * kh * kw * batch
    outs = max(1, mac_budget // per_out)  # output positions allowed
    # H = (oh - 1) * sh + kh - 2 ph + rh, with 0 <= rh < sh: draw oh, ow, then the leftover rows.
    base_h, base_w = kh - 2 * ph, kw - 2 * pw
    oh_max = max(1, min((max_hw - base_h) // sh + 1, outs))
    oh = draw(st.integers(1, oh_max))
    if one_d:
        ow = 1
    else:
        ow_max = max(1, min((max_hw - base_w) // sw + 1, outs // oh))
        ow = draw(st.integers(1, ow_max))
    h = (oh - 1) * sh + base_h
    w = (ow - 1) * sw + base_w
    h += draw(st.integers(0, min(sh - 1, max(0, max_hw - h))))
    w += 0 if one_d else draw(st.integers(0, min(sw - 1, max(0, max_hw - w))))
    return OpCase(
        "conv",
        (h, w, ci),
        batch,
        co,
        (kh, kw),
        (sh, sw),
        (ph, pw),
        draw(shifts),
        draw(shifts),
        draw(value_fills),
        draw(value_fills),
        draw(value_fills),
        draw(seeds),
    )


@st.composite
def dense_cases(draw, max_in: int = 1024, max_out: int = 1024, value_fills=fills) -> OpCase:
    """Dense layers 1..1024 in and out (the limits drawn often), a batch of 1 or 2."""
    n_in = draw(st.one_of(st.sampled_from([1, max_in]), st.integers(1, max_in)))
    n_out = draw(st.one_of(st.sampled_from([1, max_out]), st.integers(1, max_out)))
    return OpCase(
        "dense",
        (1, 1, n_in),
        draw(st.integers(1, 2)),
        n_out,
        bias_lshift=draw(shifts),
        out_rshift=draw(shifts),
        x_fill=draw(value_fills),
        w_fill=draw(value_fills),
        b_fill=draw(value_fills),
        seed=draw(seeds),
        function=draw(st.sampled_from(DENSE_FUNCTIONS)),
    )


@st.composite
def pool_cases(draw, max_hw: int = 24, max_ch: int = 64) -> OpCase:
    """Max and average pools, 1-D and 2-D, non-square windows, stride = window or 1..3."""
    kind = draw(st.sampled_from(["maxpool", "avgpool"]))
    one_d = draw(st.booleans())
    h = draw(st.integers(1, max_hw))
    w = 1 if one_d else draw(st.integers(1, max_hw))
    kh = draw(st.integers(1, min(h, 9)))
    kw = 1 if one_d else draw(st.integers(1, min(w, 9)))
    if draw(st.booleans()):
        stride = (kh, kw)
    else:
        stride = (draw(st.integers(1, 3)), 1 if one_d else draw(st.integers(1, 3)))
    return OpCase(
        kind,
        (h, w, draw(st.integers(1, max_ch))),
        draw(st.integers(1, 2)),
        kernel=(kh, kw),
        stride=stride,
        x_fill=draw(fills),
        seed=draw(seeds),
    )


# ReLU6's formats: its bound 6 * 2^f rounded down is QMAX from f = 13 (15 and 12, 13 the edges), small and zero
# below f = 0 (f = -3: 0, every positive value clipped to 0).
relu6_fracs = st.one_of(st.sampled_from([15, 13, 12, -3]), st.integers(-4, 15))


@st.composite
def shape_cases(draw, kinds=("relu", "gap", "flatten", "relu6"), max_hw: int = 24, max_ch: int = 64) -> OpCase:
    """ReLU, global average pooling, flatten and ReLU6 (at a drawn format) on 1-D and 2-D activations."""
    one_d = draw(st.booleans())
    shape = (draw(st.integers(1, max_hw)), 1 if one_d else draw(st.integers(1, max_hw)), draw(st.integers(1, max_ch)))
    kind = draw(st.sampled_from(kinds))
    return OpCase(
        kind,
        shape,
        draw(st.integers(1, 2)),
        x_fill=draw(fills),
        seed=draw(seeds),
        frac=draw(relu6_fracs) if kind == "relu6" else 15,
    )


def op_cases(kinds=KINDS) -> st.SearchStrategy[OpCase]:
    """Any op kind in `kinds`."""
    parts = []
    if "conv" in kinds:
        parts.append(conv_cases())
    if "dense" in kinds:
        parts.append(dense_cases())
    if {"maxpool", "avgpool"} & set(kinds):
        parts.append(pool_cases().filter(lambda c: c.kind in kinds))
    rest = tuple(k for k in kinds if k in ("relu", "gap", "flatten", "relu6"))
    if rest:
        parts.append(shape_cases(rest))
    return st.one_of(parts)


def wrapping_cases() -> st.SearchStrategy[OpCase]:
    """Conv and dense cases whose accumulators leave int32 often: limit values and powers of two,
    at least two products per output, large bias shifts likely."""
    conv = conv_cases(max_hw=8, max_ch=8, max_k=4, value_fills=st.sampled_from(WRAP_FILLS))
    dense = dense_cases(max_in=64, max_out=16, value_fills=st.sampled_from(WRAP_FILLS))
    return st.one_of(conv, dense).filter(lambda c: c.taps >= 2)


# ---------------------------------------------------------------- whole networks


@dataclass(frozen=True)
class Layer:
    """One Keras layer of a random chain.

    kind: conv | dense | relu | relu6 (ReLU(max_value=6)) | maxpool | avgpool | gap | flatten.
    units: conv filters / dense units; kernel: conv kernel or pool window; stride: None = the
    pool window; padding: 'valid' | 'same' (conv; TensorFlow's split, an odd total's extra zero after);
    activation: None | 'relu' | 'relu6' (fused, conv/dense);
    w_exp / b_exp: weights and bias are N(0, 1) · 2^exp / sqrt(fan in) (bias without the root);
    w_fill: 'normal' | 'pow2' (each weight ±2^k exactly) | 'zero' (all-zero kernel and bias).
    """

    kind: str
    units: int = 0
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] | None = None
    padding: str = "valid"
    activation: str | None = None
    w_exp: int = 0
    b_exp: int = -2
    w_fill: str = "normal"


def _same_pads(n: int, k: int, s: int) -> int | None:
    """The zeros before the input of Keras 'same' on one axis: TensorFlow's split, total // 2 before and the rest
    (one more for an odd total) after, which a plan keeps as pad = total // 2 and TensorFlow's output size,
    ceil(n / s). None where qverify refuses it: a kernel larger than the input padded total // 2 on both sides."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return None if k > n + 2 * (total // 2) else total // 2


def same_is_split(n: int, k: int, s: int) -> bool:
    """Keras 'same' pads one more zero after than before on this axis (an odd total)."""
    return max((-(-n // s) - 1) * s + k - n, 0) % 2 == 1


def layer_out_shape(layer: Layer, shape: tuple[int, int, int]) -> tuple[tuple[int, int, int], tuple[int, int]]:
    """(output (H, W, C), pad before) of a layer on an HWC shape ('same': TensorFlow's output size, so a conv
    with an odd total pads one more after)."""
    h, w, c = shape
    if layer.kind == "conv":
        (kh, kw), (sh, sw) = layer.kernel, layer.stride
        if layer.padding == "same":
            pad = (_same_pads(h, kh, sh), _same_pads(w, kw, sw))
            return (-(-h // sh), -(-w // sw), layer.units), pad
        return (out_hw(h, kh, sh, 0), out_hw(w, kw, sw, 0), layer.units), (0, 0)
    if layer.kind == "dense":
        return (1, 1, layer.units), (0, 0)
    if layer.kind in ("maxpool", "avgpool"):
        (kh, kw), (sh, sw) = layer.kernel, layer.stride or layer.kernel
        return (out_hw(h, kh, sh, 0), out_hw(w, kw, sw, 0), c), (0, 0)
    if layer.kind == "gap":
        return (1, 1, c), (0, 0)
    if layer.kind == "flatten":
        return (1, 1, h * w * c), (0, 0)
    return shape, (0, 0)


@dataclass(frozen=True)
class NetSpec:
    """A chain of Keras layers on a 1-D (H, C) or 2-D (H, W, C) input, its data and its rounding.

    x_fill: 'uniform' (U(-1, 1) · 2^x_exp) or 'unit' (the same with one value exactly 2^x_exp,
    which saturates by one LSB under the notebook rule and is counted).
    """

    input_shape: tuple[int, int, int]
    one_d: bool
    layers: tuple[Layer, ...]
    seed: int = 0
    x_exp: int = 0
    x_fill: str = "uniform"
    samples: int = 6
    rounding: str = "truncate"

    @property
    def model_input_shape(self) -> tuple[int, ...]:
        h, w, c = self.input_shape
        return (h, c) if self.one_d else (h, w, c)

    def keras_model(self):
        """The Keras Sequential model with deterministic random weights."""
        import keras

        L = keras.layers
        layers = [keras.Input(self.model_input_shape)]
        for i, spec in enumerate(self.layers):
            name = f"l{i}_{spec.kind}"
            if spec.kind == "conv":
                if self.one_d:
                    layers.append(
                        L.Conv1D(
                            spec.units,
                            spec.kernel[0],
                            strides=spec.stride[0],
                            padding=spec.padding,
                            activation=spec.activation,
                            name=name,
                        )
                    )
                else:
                    layers.append(
                        L.Conv2D(
                            spec.units,
                            spec.kernel,
                            strides=spec.stride,
                            padding=spec.padding,
                            activation=spec.activation,
                            name=name,
                        )
                    )
            elif spec.kind == "dense":
                layers.append(L.Dense(spec.units, activation=spec.activation, name=name))
            elif spec.kind == "relu":
                layers.append(L.ReLU(name=name))
            elif spec.kind == "relu6":
                layers.append(L.ReLU(max_value=6.0, name=name))
            elif spec.kind in ("maxpool", "avgpool"):
                if self.one_d:
                    cls = L.MaxPooling1D if spec.kind == "maxpool" else L.AveragePooling1D
                    stride = None if spec.stride is None else spec.stride[0]
                    layers.append(cls(spec.kernel[0], strides=stride, name=name))
                else:
                    cls = L.MaxPooling2D if spec.kind == "maxpool" else L.AveragePooling2D
                    layers.append(cls(spec.kernel, strides=spec.stride, name=name))
            elif spec.kind == "gap":
                layers.append((L.GlobalAveragePooling1D if self.one_d else L.GlobalAveragePooling2D)(name=name))
            elif spec.kind == "flatten":
                layers.append(L.Flatten(name=name))
            else:
                raise ValueError(spec.kind)
        model = keras.Sequential(layers)
        rng = np.random.default_rng(self.seed)
        for i, spec in enumerate(self.layers):
            if spec.kind not in ("conv", "dense"):
                continue
            layer = model.get_layer(f"l{i}_{spec.kind}")
            kernel, bias = (np.asarray(v) for v in layer.get_weights())
            fan_in = int(np.prod(kernel.shape[:-1]))
            if spec.w_fill == "zero":
                kernel, bias = np.zeros_like(kernel), np.zeros_like(bias)
            elif spec.w_fill == "pow2":
                k = rng.integers(-6, 1, size=kernel.shape) + spec.w_exp
                kernel = rng.choice([-1.0, 1.0], size=kernel.shape) * 2.0**k
                bias = rng.choice([-1.0, 1.0], size=bias.shape) * 2.0 ** (
                    rng.integers(-6, 1, size=bias.shape) + spec.b_exp
                )
            else:
                kernel = rng.standard_normal(kernel.shape) * 2.0**spec.w_exp / math.sqrt(fan_in)
                bias = rng.standard_normal(bias.shape) * 2.0**spec.b_exp
            layer.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
        return model

    def data(self) -> np.ndarray:
        """float32 samples shaped like the model input."""
        rng = np.random.default_rng(self.seed + 1)
        x = rng.uniform(-1, 1, size=(self.samples, *self.model_input_shape)) * 2.0**self.x_exp
        if self.x_fill == "unit":
            x.flat[int(rng.integers(x.size))] = 2.0**self.x_exp
        return x.astype(np.float32)


@st.composite
def layer_chains(
    draw, one_d: bool, input_shape, min_layers: int = 2, max_layers: int = 6, max_units: int = 8
) -> tuple[Layer, ...]:
    """Layers that Keras and qverify both accept, drawn one after the other on the running shape,
    making min_layers..max_layers ops (a fused ReLU counts as one more op, as in the graph)."""
    shape = input_shape
    layers = []
    flat = False  # the Keras tensor is (N, F) after GlobalAveragePooling, Flatten or Dense
    ops_left = draw(st.integers(min_layers, max_layers))
    while ops_left > 0:
        h, w, c = shape
        options = ["relu"] + (["dense"] if flat else ["conv", "maxpool", "avgpool", "gap", "flatten"])
        kind = draw(st.sampled_from(options))
        if kind == "relu":
            kind = draw(st.sampled_from(["relu", "relu6"]))
        if kind in ("conv", "dense"):
            act = draw(st.sampled_from([None, "relu", "relu6"])) if ops_left >= 2 else None
            ops_left -= act is not None
            w_exp = draw(st.integers(-4, 10))
            b_exp = draw(st.integers(-6, 0))
            w_fill = draw(st.sampled_from(["normal", "normal", "normal", "pow2", "zero"]))
        if kind == "conv":
            kh = draw(st.integers(1, min(h, 9)))
            kw = 1 if one_d else draw(st.integers(1, min(w, 9)))
            sh = draw(st.integers(1, 2))
            sw = 1 if one_d else draw(st.integers(1, 2))
            padding = draw(st.sampled_from(["valid", "same", "same"]))
            if (
                padding == "same"
                and draw(st.sampled_from([False, True, True]))
                and not (same_is_split(h, kh, sh) or same_is_split(w, kw, sw))
            ):
                # TensorFlow's split wanted: a kernel one larger or smaller makes the total odd on an axis
                if h > 1:
                    kh = kh + 1 if kh < min(h, 9) else kh - 1
                elif w > 1:
                    kw = kw + 1 if kw < min(w, 9) else kw - 1
            if padding == "same" and (_same_pads(h, kh, sh) is None or _same_pads(w, kw, sw) is None):
                padding = "valid"  # refused by qverify (never with kh <= h, kw <= w: kept for the rule's sake)
            layer = Layer(
                "conv", draw(st.integers(1, max_units)), (kh, kw), (sh, sw), padding, act, w_exp, b_exp, w_fill
            )
        elif kind == "dense":
            layer = Layer(
                "dense", draw(st.integers(1, max_units * 2)), activation=act, w_exp=w_exp, b_exp=b_exp, w_fill=w_fill
            )
        elif kind in ("maxpool", "avgpool"):
            kh = draw(st.integers(1, min(h, 3)))
            kw = 1 if one_d else draw(st.integers(1, min(w, 3)))
            stride = None if draw(st.booleans()) else (draw(st.integers(1, 2)), 1 if one_d else draw(st.integers(1, 2)))
            layer = Layer(kind, kernel=(kh, kw), stride=stride)
        else:
            layer = Layer(kind)
        layers.append(layer)
        ops_left -= 1
        shape = layer_out_shape(layer, shape)[0]
        flat = flat or kind in ("gap", "flatten", "dense")
    return tuple(layers)


@st.composite
def net_specs(draw, max_h: int = 24, max_w: int = 12, max_c: int = 4) -> NetSpec:
    """Small random whole networks (2-6 Keras layers), their data scale and rounding."""
    one_d = draw(st.booleans())
    shape = (draw(st.integers(3, max_h)), 1 if one_d else draw(st.integers(1, max_w)), draw(st.integers(1, max_c)))
    return NetSpec(
        shape,
        one_d,
        draw(layer_chains(one_d, shape)),
        draw(st.integers(0, 2**31)),
        draw(st.integers(-4, 12)),
        draw(st.sampled_from(["uniform", "unit"])),
        draw(st.integers(1, 6)),
        draw(st.sampled_from(["truncate", "round"])),
    )


def chain_plan(
    input_shape, layers, names, seed: int, shifts_: list[tuple[int, int]], rounding: str = "truncate"
) -> QuantPlan:
    """A QuantPlan for a layer chain built directly from OpPlans (no Keras): random q15 weights,
    the given (bias_lshift, out_rshift) per weighted layer, ops named `names` (fused ReLUs are
    not split here: a layer's activation is ignored)."""
    rng = np.random.default_rng(seed)
    shape, ops, k = tuple(input_shape), [], 0
    for layer, name in zip(layers, names, strict=True):
        out, pad = layer_out_shape(layer, shape)
        if layer.kind == "conv":
            bl, rs = shifts_[k]
            k += 1
            ops.append(
                op_plan(
                    "conv",
                    shape,
                    cout=layer.units,
                    kernel=layer.kernel,
                    stride=layer.stride,
                    pad=pad,
                    out_size=out[:2],
                    weights=fill_q15(rng, (*layer.kernel, shape[2], layer.units), "full"),
                    bias=fill_q15(rng, (layer.units,), "full"),
                    bias_lshift=bl,
                    out_rshift=rs,
                    name=name,
                )
            )
        elif layer.kind == "dense":
            bl, rs = shifts_[k]
            k += 1
            ops.append(
                op_plan(
                    "dense",
                    shape,
                    cout=layer.units,
                    weights=fill_q15(rng, (shape[2], layer.units), "full"),
                    bias=fill_q15(rng, (layer.units,), "full"),
                    bias_lshift=bl,
                    out_rshift=rs,
                    name=name,
                )
            )
        else:
            ops.append(op_plan(layer.kind, shape, kernel=layer.kernel, stride=layer.stride or layer.kernel, name=name))
        assert ops[-1].out_shape == out, (layer, ops[-1].out_shape, out)
        shape = out
    return plan_of(ops, rounding)


def fails(check, *args) -> bool:
    """True when the property `check(*args)` rejects the implementation under test (an AssertionError)."""
    try:
        check(*args)
    except AssertionError:
        return True
    return False
