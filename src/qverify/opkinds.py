"""Every op kind a plan can hold, and every C function that computes one: one record each.

A kind's record says what the rest of qverify needs to know about it without looking at its name:
whether it has weights and how many, how its output shape follows from its input and window, its
MACs, the kernel buffer the C runner reserves for it, its id in the C runner, and the C functions
the firmware may call for it, fastest first (their contracts and calls: qverify.kernels).

    kind = KINDS[op.kind]
    kind.weighted, kind.weight_count(op), kind.macs(op), kind.output_shape(op), kind.kernel_buffer(op)

Adding an op kind touches a graph handler (graph.py), a record here, its float op (floatops.py), its
shift-model op (engines/shift.py), the C runner's case and its kernel (csrc/, cmsis/), and nothing
else; CONTRIBUTING.md has the checklist.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """The op kinds of a plan (a member equals the string a plan.json stores)."""

    CONV = "conv"
    DENSE = "dense"
    RELU = "relu"
    MAXPOOL = "maxpool"
    AVGPOOL = "avgpool"
    GAP = "gap"
    FLATTEN = "flatten"
    RELU6 = "relu6"
    SIGMOID = "sigmoid"
    TANH = "tanh"
    SOFTMAX = "softmax"


@dataclass(frozen=True)
class Function:
    """A C function the runner can call for an op (its contract: qverify.kernels.violations)."""

    name: str
    enum: str  # its QV_KERNEL_* id in csrc/qv_runner.h
    square: bool = False  # takes one size for x and y (image, kernel, padding, stride)
    arm_conv: bool = False  # one of Arm's convolutions (int16_t counters on DSP, signed char on 5.4-5.7 plain)
    fast: bool = False  # computes two output pixels at a time along x (even channels, even width)
    loop_shift: int = 0  # its uint16_t inner loop count is (ch_in * k_x * k_y) >> loop_shift
    shifts: bool = False  # takes bias_shift / out_shift
    tree_file: str = ""  # the source file of Arm's tree that holds it, where it is not <name>.c
    weight_bits: int = 16  # the width of the weights and bias it takes (8: q7_t)
    # the order it reads a dense op's weights in: "" [out][in]; "q15x4" and "q7x4" the interleaves of Arm's
    # _opt functions (qverify.layout.interleave). An interleave changes the header's layout, so it is the
    # firmware's choice (declared), never chosen for it.
    order: str = ""

    @property
    def arm(self) -> bool:
        """One of Arm's CMSIS-NN functions (else qverify's own qv_ kernel or the runner's copy)."""
        return self.name.startswith("arm_")


def elems(shape) -> int:
    """Values in an (H, W, C) shape."""
    h, w, c = shape
    return int(h) * int(w) * int(c)


def window(n: int, k: int, s: int, p: int = 0, p_after: int | None = None) -> int:
    """Output positions of a window of k, stride s, over n values padded by p before and p_after (default p)
    after."""
    return (n + p + (p if p_after is None else p_after) - k) // s + 1


def pad_after(n: int, k: int, s: int, p: int, out: int) -> int:
    """The zero padding after the input (right or bottom) that `out` windows reach when p pads before it: the
    kernels take the output size and zero-fill a window outside the image on either side, so this pad is
    implied, never passed (negative: the last input values are not reached)."""
    return (out - 1) * s + k - n - p


def padded_out(n: int, k: int, s: int, p: int, out: int) -> int:
    """The output size a conv axis of input n, kernel k, stride s and pad p (before) may have, given the size
    it claims: TensorFlow's 'same' split (one more pad after than before) when `out` is that, else the
    symmetric window (docs/design.md rule 4)."""
    tf_same = window(n, k, s, p, p + 1)
    return tf_same if out == tf_same and pad_after(n, k, s, p, out) == p + 1 else window(n, k, s, p)


def conv_pads(op) -> tuple[tuple[int, int], tuple[int, int]]:
    """((top, bottom), (left, right)) zero padding of a conv op: p before, and after p or, where the output size
    implies it (TensorFlow's 'same' with an odd total), p + 1. The float ops and the shift model pad this."""
    out = []
    for n, k, s, p, o in zip(op.in_shape[:2], op.kernel, op.stride, op.pad, op.out_shape[:2], strict=True):
        out.append((p, p + 1 if pad_after(n, k, s, p, o) == p + 1 else p))
    return out[0], out[1]


RELU6_MAX = 6.0  # ReLU6's upper bound in real values


def relu6_max(frac: int, bits: int = 16) -> int:
    """ReLU6's upper bound at frac bits: 6.0 in that format rounded down, at most the format's largest value."""
    return min(math.floor(math.ldexp(RELU6_MAX, frac)), (1 << (bits - 1)) - 1)


def _none(op) -> int:
    return 0


def _conv_out(op) -> tuple[int, int, int]:
    """The symmetric window per axis, or TensorFlow's 'same' split where the op's output size is that."""
    (h, w, _), (k_h, k_w), (s_h, s_w), (p_h, p_w) = op.in_shape, op.kernel, op.stride, op.pad
    return padded_out(h, k_h, s_h, p_h, op.out_shape[0]), padded_out(w, k_w, s_w, p_w, op.out_shape[1]), op.out_shape[2]


def _conv_weights(op) -> int:
    return op.kernel[0] * op.kernel[1] * op.in_shape[2] * op.out_shape[2]


def _conv_macs(op) -> int:
    return elems(op.out_shape) * op.kernel[0] * op.kernel[1] * op.in_shape[2]


def _conv_buffer(op) -> int:  # bufferA: two im2col columns
    return 2 * op.in_shape[2] * op.kernel[0] * op.kernel[1]


def _dense_out(op) -> tuple[int, int, int]:
    return 1, 1, op.out_shape[2]


def _dense_weights(op) -> int:
    return elems(op.in_shape) * op.out_shape[2]


def _dense_buffer(op) -> int:  # vec_buffer: one input vector
    return elems(op.in_shape)


def _same(op) -> tuple[int, int, int]:
    return tuple(op.in_shape)


def _pool_out(op) -> tuple[int, int, int]:
    (h, w, c), (k_h, k_w), (s_h, s_w) = op.in_shape, op.kernel, op.stride
    return window(h, k_h, s_h), window(w, k_w, s_w), c


def _gap_out(op) -> tuple[int, int, int]:
    return 1, 1, op.in_shape[2]


def _flat_out(op) -> tuple[int, int, int]:
    return 1, 1, elems(op.in_shape)


def _relu6_clamp(op) -> int:  # min(max(x, 0), 6.0 at the op's format): its format is its input's
    return relu6_max(op.out_frac)


def _int_width(op) -> int:  # arm_nn_activations_direct_q15's int_width: the input's integer bits (15 - frac)
    return 15 - op.in_frac


# the legacy activations' q15 output format: Q0.15 (docs/design.md rules 10 and 11)
ACTIVATION_OUT_FRAC = 15
# the kinds computed by Arm's legacy activation functions, and the Keras activation each one is
ACTIVATIONS = {"sigmoid": "sigmoid", "tanh": "tanh", "softmax": "softmax"}
_ACTIVATIONS_DIRECT = Function(
    "arm_nn_activations_direct_q15", "QV_KERNEL_ACTIVATIONS_DIRECT", tree_file="arm_nn_activations_q15.c"
)


@dataclass(frozen=True)
class OpKind:
    """What qverify knows about one op kind.

    Attributes:
        kind: its name.
        c_op: its QV_OP_* id in csrc/qv_runner.h (the value is read from the compiled module).
        output_shape: the (H, W, C) its geometry gives (conv, dense: the channels are the op's own).
        functions: the C functions that compute it, in the order kernels.choose tries them (fastest first).
        weight_count: weights of an op (a kind without them has no bias or shifts either).
        macs: multiply-accumulates per inference.
        kernel_buffer: int16 words of kernel buffer the runner reserves (qv_scratch_layout in qv_runner.c).
        window: how its kernel meets the input: 'padded' (zero padding allowed), 'valid' (the window fits
            the input) or None (no window: kernel, stride and padding unused).
        clamp_max: the value of qv_op_t.clamp_max for an op of this kind (0: unused; sigmoid and tanh pass
            their int_width in it).
        out_frac: the output format the kind's function fixes (None: the plan's format rules decide).
    """

    kind: Kind
    c_op: str
    output_shape: Callable[..., tuple[int, int, int]]
    functions: tuple[Function, ...]
    weight_count: Callable[..., int] = _none
    macs: Callable[..., int] = _none
    kernel_buffer: Callable[..., int] = _none
    window: str | None = None
    clamp_max: Callable[..., int] = _none
    out_frac: int | None = None

    @property
    def weighted(self) -> bool:
        """Has weights, a bias per output channel, and bias/out shifts."""
        return self.weight_count is not _none


KINDS: dict[str, OpKind] = {
    k.kind: k
    for k in (
        OpKind(
            Kind.CONV,
            "QV_OP_CONV",
            _conv_out,
            (
                Function(
                    "arm_convolve_HWC_q15_fast",
                    "QV_KERNEL_CONV_FAST",
                    square=True,
                    arm_conv=True,
                    fast=True,
                    loop_shift=1,
                    shifts=True,
                ),
                Function(
                    "arm_convolve_HWC_q15_fast_nonsquare",
                    "QV_KERNEL_CONV_FAST_NONSQUARE",
                    arm_conv=True,
                    fast=True,
                    loop_shift=1,
                    shifts=True,
                ),
                Function(
                    "arm_convolve_HWC_q15_basic",
                    "QV_KERNEL_CONV_BASIC",
                    square=True,
                    arm_conv=True,
                    loop_shift=2,
                    shifts=True,
                ),
                Function("qv_convolve_HWC_q15_basic_nonsquare", "QV_KERNEL_CONV_BASIC_NONSQUARE", shifts=True),
            ),
            _conv_weights,
            _conv_macs,
            _conv_buffer,
            window="padded",
        ),
        OpKind(
            Kind.DENSE,
            "QV_OP_DENSE",
            _dense_out,
            (
                Function("arm_fully_connected_q15", "QV_KERNEL_FULLY_CONNECTED", shifts=True),
                Function("arm_fully_connected_q15_opt", "QV_KERNEL_FULLY_CONNECTED_OPT", shifts=True, order="q15x4"),
                Function(
                    "arm_fully_connected_mat_q7_vec_q15", "QV_KERNEL_FC_MAT_Q7_VEC_Q15", shifts=True, weight_bits=8
                ),
                Function(
                    "arm_fully_connected_mat_q7_vec_q15_opt",
                    "QV_KERNEL_FC_MAT_Q7_VEC_Q15_OPT",
                    shifts=True,
                    weight_bits=8,
                    order="q7x4",
                ),
            ),
            _dense_weights,
            _dense_weights,
            _dense_buffer,
        ),
        OpKind(Kind.RELU, "QV_OP_RELU", _same, (Function("arm_relu_q15", "QV_KERNEL_RELU"),)),
        OpKind(
            Kind.MAXPOOL,
            "QV_OP_MAXPOOL",
            _pool_out,
            (Function("qv_maxpool_q15_HWC_nonsquare", "QV_KERNEL_MAXPOOL"),),
            window="valid",
        ),
        OpKind(
            Kind.AVGPOOL,
            "QV_OP_AVGPOOL",
            _pool_out,
            (Function("qv_avepool_q15_HWC_nonsquare", "QV_KERNEL_AVEPOOL"),),
            window="valid",
        ),
        OpKind(Kind.GAP, "QV_OP_GAP", _gap_out, (Function("qv_global_avepool_q15_HWC", "QV_KERNEL_GLOBAL_AVEPOOL"),)),
        OpKind(Kind.FLATTEN, "QV_OP_FLATTEN", _flat_out, (Function("copy", "QV_KERNEL_COPY"),)),
        OpKind(
            Kind.RELU6, "QV_OP_RELU6", _same, (Function("qv_relu6_q15", "QV_KERNEL_RELU6"),), clamp_max=_relu6_clamp
        ),
        OpKind(
            Kind.SIGMOID,
            "QV_OP_SIGMOID",
            _same,
            (_ACTIVATIONS_DIRECT,),
            clamp_max=_int_width,
            out_frac=ACTIVATION_OUT_FRAC,
        ),
        OpKind(
            Kind.TANH, "QV_OP_TANH", _same, (_ACTIVATIONS_DIRECT,), clamp_max=_int_width, out_frac=ACTIVATION_OUT_FRAC
        ),
        OpKind(
            Kind.SOFTMAX,
            "QV_OP_SOFTMAX",
            _same,
            (Function("arm_softmax_q15", "QV_KERNEL_SOFTMAX"),),
            out_frac=ACTIVATION_OUT_FRAC,
        ),
    )
}
WEIGHTED = tuple(k.kind for k in KINDS.values() if k.weighted)
# the weight widths some function takes (OpPlan.weight_bits)
WEIGHT_WIDTHS = tuple(sorted({f.weight_bits for k in KINDS.values() for f in k.functions}))
# every function, and the kind it computes
FUNCTIONS: dict[str, Function] = {f.name: f for k in KINDS.values() for f in k.functions}
# the kinds each function computes (arm_nn_activations_direct_q15: sigmoid and tanh), and the first of them
FUNCTION_KINDS: dict[str, tuple[Kind, ...]] = {}
for _k in KINDS.values():
    for _f in _k.functions:
        FUNCTION_KINDS[_f.name] = (*FUNCTION_KINDS.get(_f.name, ()), _k.kind)
del _k, _f
FUNCTION_KIND: dict[str, Kind] = {name: kinds[0] for name, kinds in FUNCTION_KINDS.items()}
