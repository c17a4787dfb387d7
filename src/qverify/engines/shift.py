"""The TensorFlow fixed-point "shift model": the numeric contract, executed exactly.

Conv and dense accumulate in float64: q15 x q15 products are below 2^30 and
every partial sum of a realistic layer stays far below 2^53, so float64 holds
the exact integer (float32 does not: docs/design.md rule 4). The exact sum is then
wrapped to int32 as the device does, every wrap is counted, and the output
is shifted (arithmetic, floor) and saturated, each step exact in float64; for large batches
XLA computes the values in one pass and TensorFlow's reductions the counts (shift_ops.py).
ReLU and max pooling work on the int16 values.

Two ways to the same exact sum of a conv, chosen by its taps (k_h * k_w * c_in, `_by_taps`):
TensorFlow's float64 conv2d (Eigen; a 1-D conv with its length on W), or, for an op with at most
TAPS_MAX taps (the demo's conv1: 9), one shifted slice of the input per tap, multiplied and added in
float64 in one XLA-compiled pass. Both sums are exact (every partial sum is an integer below 2^53), so
they are equal; the tests run each path on every case.
`run` executes the whole network as one TensorFlow graph per batch; `run_op` one op eagerly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from qverify.choices import Rounding, values
from qverify.engines.base import Engine, OpResult, RunResult, host_array
from qverify.errors import PlanError
from qverify.floatops import conv2d
from qverify.layout import conv_from_cmsis, dense_from_cmsis
from qverify.opkinds import Kind, conv_pads, relu6_max
from qverify.plan import OpPlan, QuantPlan

EXACT_LIMIT = 2**53
# A conv with at most this many taps (k_h * k_w * c_in) sums by shifted slices under XLA. Measured on the
# demo (256 samples, 2 cores): conv1 (9 taps) 197 ms that way against 1,533 ms through Eigen's float64
# conv2d; conv4 (96 taps) 150 ms against 43 ms, so wide ops keep conv2d.
TAPS_MAX = 16


class ShiftEngine(Engine):
    """TensorFlow fixed-point model built from a plan.

    Args:
        plan: the plan.
        rounding: override the plan's rounding ('truncate' or 'round'); default the plan's.
        batch: samples per TensorFlow call (bounds memory; results do not depend on it).
    """

    name = "shift"

    def __init__(self, plan: QuantPlan, rounding: str | None = None, batch: int = 64):
        super().__init__(plan)
        self.rounding = rounding or plan.rounding
        if self.rounding not in values(Rounding):
            raise PlanError(f"rounding '{self.rounding}' is not one of {', '.join(values(Rounding))}")
        self.batch = batch
        # the whole network as one graph function (run), traced per batch shape: h -> (outputs, counts, peaks)
        self._network: Callable[[Any], tuple[list[Any], list[Any], list[Any]]] | None = None
        self._weights: dict[str, tuple[Any, Any]] = {}  # op name -> (float64 weights, start) tensors
        self._stage: dict[str, tuple[Any, ...]] = {}  # op name -> (2^-out_rshift, qmin, qmax) tensors
        self._summed: dict[str, Callable[..., Any]] = {}  # op name -> its sum by taps, XLA-compiled
        for op in plan.ops:
            if op.weighted:
                self._weights[op.name] = self._prepare(op)
                self._stage[op.name] = self._output_stage(op)

    def describe(self) -> str:
        return f"shift (TensorFlow float64-exact, {self.rounding})"

    def _prepare(self, op: OpPlan):
        import tensorflow as tf

        # a weighted op always has weights, bias and shifts: the plan validates it (plancheck)
        assert op.weights is not None and op.bias is not None
        assert op.bias_lshift is not None and op.out_rshift is not None
        if op.kind == Kind.CONV:
            w = conv_from_cmsis(op.weights, *op.kernel, op.in_shape[2], op.out_shape[2])
        else:
            w = dense_from_cmsis(op.weights, op.in_shape[2], op.out_shape[2])
        w = np.asarray(w, dtype=np.float64)
        rnd = (1 << op.out_rshift) >> 1 if self.rounding == Rounding.ROUND else 0
        # Bias term as the kernel forms it: bias << bias_lshift, plus NN_ROUND.
        start = op.bias.astype(np.float64) * 2.0**op.bias_lshift + rnd
        bound = np.abs(w).sum(axis=tuple(range(w.ndim - 1))).max() * 2**15 + np.abs(start).max()
        if bound >= EXACT_LIMIT:  # not reachable with q15 shapes below ~2^22 MACs per output
            raise PlanError(f"op '{op.name}': accumulator bound {bound:.3g} exceeds float64's exact range")
        return tf.constant(w), tf.constant(start)

    def _output_stage(self, op: OpPlan):
        """(2^-out_rshift, qmin, qmax) as float64 tensors (each exact): arguments of shift_ops.requantize, not
        constants of it."""
        import tensorflow as tf

        assert op.out_rshift is not None  # a weighted op has shifts: the plan validates them
        return tuple(tf.constant(v, tf.float64) for v in (2.0**-op.out_rshift, self.plan.qmin, self.plan.qmax))

    def run(self, x: np.ndarray) -> RunResult:
        """Propagated mode, every op of a batch in one TensorFlow graph call (the same ops as run_op)."""
        import tensorflow as tf

        h = self.check_input(x)
        if self._network is None:
            self._network = tf.function(self._graph, autograph=False)
        outs: dict[str, list[np.ndarray]] = {op.name: [] for op in self.plan.ops}
        counts = dict.fromkeys(outs, 0)
        peaks = dict.fromkeys(outs, -1)
        for start in range(0, len(h), self.batch):
            got, tallies, tops = self._network(tf.constant(h[start : start + self.batch]))
            for op, out, c, p in zip(self.plan.ops, got, tallies, tops, strict=True):
                outs[op.name].append(host_array(out))
                counts[op.name] += int(c)
                peaks[op.name] = max(peaks[op.name], int(p))
        result = RunResult(self.name)
        for op in self.plan.ops:
            parts, c = outs[op.name], counts[op.name]
            out = parts[0] if len(parts) == 1 else np.concatenate(parts)
            if op.weighted:
                result.add(op.name, OpResult(out, c & 0xFFFFFFFF, c >> 32, _peak(peaks[op.name])))
            else:
                result.add(op.name, OpResult(out, 0, 0))
        return result

    def _graph(self, h):
        outs, counts, peaks = [], [], []
        for op in self.plan.ops:
            h, c, p = self._op_tensors(op, h)
            outs.append(h)
            counts.append(c)
            peaks.append(p)
        return outs, counts, peaks

    def run_op(self, index: int, x: np.ndarray) -> OpResult:
        op = self.plan.ops[index]
        outs, sats, ovfs = [], 0, 0
        peak: int | None = -1
        for start in range(0, len(x), self.batch):
            # (out, saturations, overflows, peak); an override of _op may give the first three only
            out, sat, ovf, *top = self._op(op, x[start : start + self.batch])
            outs.append(out)
            sats += sat
            ovfs += ovf
            peak = max(peak, *top) if top and peak is not None else None
        if not op.weighted:
            return OpResult(np.concatenate(outs), 0, 0)
        return OpResult(np.concatenate(outs), sats, ovfs, None if peak is None else _peak(peak))

    def _op(self, op: OpPlan, x: np.ndarray):
        import tensorflow as tf

        out, counts, peak = self._op_tensors(op, tf.constant(x))
        counts = int(counts)
        return out.numpy(), counts & 0xFFFFFFFF, counts >> 32, int(peak)

    def _op_tensors(self, op: OpPlan, h):
        """(int16 output, counts, peak) of one op on an int16 tensor; counts = saturations + 2^32 * overflows,
        peak the largest max(acc, -1 - acc) of a conv or dense op's exact sums acc (-1 for other kinds)."""
        import tensorflow as tf

        from qverify.engines import shift_ops

        if op.weighted:
            w, start = self._weights[op.name]
            size = None if h.shape[0] is None else h.shape[0] * int(np.prod(op.out_shape))
            if _by_taps(op) and size is not None and shift_ops.XLA_MIN_SIZE <= size < 2**32:
                if op.name not in self._summed:
                    self._summed[op.name] = shift_ops.compiled_sum(_weighted_sum, op)
                return shift_ops.requantize(self._summed[op.name](h, w), start, *self._stage[op.name])
            return shift_ops.requantize(_weighted_sum(op, h, w), start, *self._stage[op.name])
        return tf.cast(_VALUES[op.kind](op, h), tf.int16), tf.constant(0, tf.int64), tf.constant(-1, tf.int64)


def _peak(peak: int) -> int | None:
    """OpResult.acc_peak from the running maximum (-1: no value was seen)."""
    return None if peak < 0 else peak


def _by_taps(op: OpPlan) -> bool:
    """A conv whose sum is formed by shifted slices (XLA-compiled); see TAPS_MAX."""
    return op.kind == Kind.CONV and op.kernel[0] * op.kernel[1] * op.in_shape[2] <= TAPS_MAX


def _weighted_sum(op, h, w):
    """The exact sum of products of a conv or dense op, float64, from its int16 input tensor."""
    import tensorflow as tf

    return _SUMS[op.kind](op, tf.cast(h, tf.float64), w)


# The exact integer sums of the weighted kinds (float64 holds them exactly; the bias and the output
# stage are shift_ops.requantize's), and the other kinds' int16 results.
def _conv_sum(op, h, w):
    pad_h, pad_w = conv_pads(op)  # p before, p or (TensorFlow's 'same') p + 1 after: docs/design.md rule 4
    if _by_taps(op):
        return _conv_by_taps(h, w, strides=[1, *op.stride, 1], padding=[[0, 0], list(pad_h), list(pad_w), [0, 0]])
    return conv2d(op, h, w)  # float64: every sum exact


def _conv_by_taps(h, w, strides, padding):
    """tf.nn.conv2d's sum as one term per tap: the padded input shifted to the tap, strided, times its
    weights. h (N, H, W, C_in) and w (k_h, k_w, C_in, C_out) are float64 integers; each term, and every
    partial sum, is an integer below 2^53, so the order of the additions cannot change the result."""
    import tensorflow as tf

    kh, kw, cin, _ = w.shape
    _, sh, sw, _ = strides
    x = tf.pad(h, padding)
    oh = (x.shape[1] - kh) // sh + 1
    ow = (x.shape[2] - kw) // sw + 1
    acc = None
    for i in range(kh):
        for j in range(kw):
            for c in range(cin):
                part = x[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, c : c + 1] * w[i, j, c]
                acc = part if acc is None else acc + part
    return acc


def _dense_sum(op, h, w):
    import tensorflow as tf

    return tf.reshape(tf.matmul(tf.reshape(h, (-1, op.in_shape[2])), w), (-1, 1, 1, op.out_shape[2]))


def _relu(op, h):
    import tensorflow as tf

    return tf.maximum(h, 0)


def _relu6(op, h):
    """min(max(v, 0), 6.0 at the op's format rounded down): docs/design.md rule 5."""
    import tensorflow as tf

    return tf.minimum(tf.maximum(h, 0), tf.constant(relu6_max(op.out_frac), h.dtype))


def _maxpool(op, h):
    import tensorflow as tf

    return tf.nn.max_pool2d(h, op.kernel, op.stride, "VALID")


def _avgpool(op, h):
    """float64 mean x count is within 2^-52 relative of the integer sum, so rounding recovers the exact
    sum; then C division (toward zero) as the kernel does."""
    import tensorflow as tf

    count = op.kernel[0] * op.kernel[1]
    mean = tf.nn.avg_pool2d(tf.cast(h, tf.float64), op.kernel, op.stride, "VALID")
    return tf.truncatediv(tf.cast(tf.round(mean * count), tf.int64), count)


def _gap(op, h):
    import tensorflow as tf

    count = op.in_shape[0] * op.in_shape[1]
    return tf.truncatediv(tf.reduce_sum(tf.cast(h, tf.int64), axis=(1, 2), keepdims=True), count)


def _flatten(op, h):
    import tensorflow as tf

    return tf.reshape(h, (-1, *op.out_shape))


def _activation_direct(op, h, name):
    """arm_nn_activations_direct_q15 (docs/design.md rule 10): with s = 11 - int_width = in_frac - 4, entry
    k = v >> s of the 256-entry table (index k & 0xFF), interpolated with the next one by the s bits below it,
    ((2^s - w) T[k] + w T[k + 1]) >> s; the last entry (k = 127) as it is. int32 holds every term exactly."""
    import tensorflow as tf

    from qverify.activations import INT_WIDTH_MAX, table

    width = 15 - op.in_frac
    if not 0 <= width <= INT_WIDTH_MAX:
        raise PlanError(
            f"op '{op.name}': int_width {width} (input frac {op.in_frac}) is outside 0 to "
            f"{INT_WIDTH_MAX}, the range of arm_nn_activations_direct_q15's table (docs/design.md rule 10)"
        )
    s = 11 - width
    v = tf.cast(h, tf.int32)
    k = tf.bitwise.right_shift(v, s)  # arithmetic: floor
    w = tf.bitwise.bitwise_and(v, (1 << s) - 1)
    t = tf.constant(table(name).astype(np.int32))
    lo = tf.gather(t, tf.bitwise.bitwise_and(k, 255))
    hi = tf.gather(t, tf.bitwise.bitwise_and(k + 1, 255))
    mixed = tf.bitwise.right_shift(((1 << s) - w) * lo + w * hi, s)
    return tf.where(tf.equal(k, 127), lo, mixed)


def _sigmoid(op, h):
    return _activation_direct(op, h, "sigmoid")


def _tanh(op, h):
    return _activation_direct(op, h, "tanh")


def _softmax(op, h):
    """arm_softmax_q15 over the channels of each pixel (docs/design.md rule 11), in int64: base = max - 16;
    d = v - base; sum of 2^d over d > 0; scale = floor(2^32 / sum); out = min(scale >> (17 - d), 32767) where
    d > 0, else 0."""
    import tensorflow as tf

    from qverify.activations import SOFTMAX_RANGE

    v = tf.cast(h, tf.int64)
    d = v - (tf.reduce_max(v, axis=-1, keepdims=True) - SOFTMAX_RANGE)
    live = d > 0
    d_live = tf.where(live, d, tf.zeros_like(d))
    terms = tf.where(live, tf.bitwise.left_shift(tf.ones_like(d), d_live), tf.zeros_like(d))
    scale = tf.math.floordiv(tf.constant(1 << 32, tf.int64), tf.reduce_sum(terms, axis=-1, keepdims=True))
    out = tf.bitwise.right_shift(scale, tf.where(live, SOFTMAX_RANGE + 1 - d, tf.zeros_like(d)))
    return tf.where(live, tf.minimum(out, 32767), tf.zeros_like(out))


# keyed by str: a Kind is a str, and ops carry their kind as the plan's string
_SUMS: dict[str, Callable[[OpPlan, Any, Any], Any]] = {Kind.CONV: _conv_sum, Kind.DENSE: _dense_sum}
_VALUES: dict[str, Callable[[OpPlan, Any], Any]] = {
    Kind.RELU: _relu,
    Kind.MAXPOOL: _maxpool,
    Kind.AVGPOOL: _avgpool,
    Kind.GAP: _gap,
    Kind.FLATTEN: _flatten,
    Kind.RELU6: _relu6,
    Kind.SIGMOID: _sigmoid,
    Kind.TANH: _tanh,
    Kind.SOFTMAX: _softmax,
}
