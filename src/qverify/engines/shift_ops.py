"""The shift model's output stage for conv and dense, and its XLA-compiled sum by taps.

Imported by ShiftEngine when it runs (this module imports TensorFlow). The convolutions and
matrix products stay outside XLA, except the sum by taps: TensorFlow's own float64 kernels are several
times faster than XLA's on the CPU. The output stage is a dozen element-wise steps; run eagerly, each
is a pass over memory. On a batch of XLA_MIN_SIZE values or more (`_bounded`) XLA computes the values in
one pass, and the counts and the peak come from TensorFlow's multithreaded reductions of the sums'
bounds per channel (XLA's own reductions are single passes several times slower than the rest). XLA
compiles once per input shape (about 0.06 s, then cached); smaller batches run eagerly, so one-sample
runs compile nothing.
"""

from __future__ import annotations

import tensorflow as tf

XLA_MIN_SIZE = 2**18


def _steps(acc, start, scale):
    """(exact, wrapped, shifted) sums of the output stage.

    Every step in float64 on exact integers, so every step is exact: acc + start is below 2^53 (ShiftEngine
    checks the bound); wrapping subtracts 2^32 * floor((exact + 2^31) / 2^32), a power-of-two division and
    an integer product; scale is 2^-out_rshift, so floor(wrapped * scale) is the arithmetic right shift.
    Measured on conv2's output stage of the demo (256 samples): 126 ms against 190 ms for the same steps in
    int64 (AVX2 has no 64-bit arithmetic shift or compare for XLA to vectorize)."""
    exact = acc + start
    wrapped = exact - 2.0**32 * tf.floor((exact + 2.0**31) * 2.0**-32)
    return exact, wrapped, tf.floor(wrapped * scale)


def _requantize(acc, start, scale, qmin, qmax):
    exact, wrapped, shifted = _steps(acc, start, scale)
    out = tf.clip_by_value(shifted, qmin, qmax)
    # Both counts in one reduction (saturations in the low 32 bits, overflows above): XLA runs
    # each reduction as a pass of its own, and two separate ones cost more than all the rest.
    counts = tf.reduce_sum(tf.cast(out != shifted, tf.int64) + tf.cast(wrapped != exact, tf.int64) * 2**32)
    # max(acc, -1 - acc) over the batch: + 1 it is max(largest acc + 1, -smallest acc), which exceeds 2^31
    # exactly when some sum left int32 (metrics.acc_headroom_bits); -1 for an empty batch (whose reduce_max is
    # -inf). A maximum after the reduction, not a -1 concatenated before it, which copied the whole batch.
    peak = tf.maximum(tf.reduce_max(tf.maximum(exact, -1.0 - exact)), -1.0)
    return tf.cast(out, tf.int16), counts, tf.cast(peak, tf.int64)


# Traced once for any shape (XLA still compiles once per shape, and caches it); autograph off, as for every
# graph function of qverify: no tensor-dependent Python control flow to convert, and its rewrite costs seconds.
_SIGNATURE = [
    tf.TensorSpec([None] * 4, tf.float64),
    tf.TensorSpec([None], tf.float64),
    *[tf.TensorSpec([], tf.float64)] * 3,
]
_requantize_xla = tf.function(_requantize, jit_compile=True, input_signature=_SIGNATURE, autograph=False)


def _values(acc, start, scale, qmin, qmax):
    """_requantize's outputs without its counts and peak."""
    _, _, shifted = _steps(acc, start, scale)
    return tf.cast(tf.clip_by_value(shifted, qmin, qmax), tf.int16)


_values_xla = tf.function(_values, jit_compile=True, input_signature=_SIGNATURE, autograph=False)


def _count(condition):
    return tf.reduce_sum(tf.cast(condition, tf.int64))


@tf.function(input_signature=_SIGNATURE, autograph=False)
def _bounded(acc, start, scale, qmin, qmax):
    """_requantize's results, its counts and peak from the sums' bounds (TensorFlow's multithreaded reductions per
    channel) instead of XLA's reductions, which are the slow part of its pass (demo conv2, 256 samples: the
    values alone 16 ms, with the two reductions 185 ms). Without an overflow (the bounds say which) the wrap is
    the identity, so an output saturates exactly where its sum reaches (qmax + 1) / scale or lies below
    qmin / scale: counted only when the bounds reach them. A batch whose sums leave int32 takes _requantize."""
    top = tf.reduce_max(tf.reduce_max(acc, axis=[0, 1, 2]) + start)
    bottom = tf.reduce_min(tf.reduce_min(acc, axis=[0, 1, 2]) + start)
    peak = tf.cast(tf.maximum(tf.maximum(top, -1.0 - bottom), -1.0), tf.int64)
    high, low = (qmax + 1.0) / scale, qmin / scale  # exact: scale is a power of two

    def no_overflow():
        sats = tf.cond(
            tf.logical_or(top >= high, bottom < low),
            lambda: _count(acc >= high - start) + _count(acc < low - start),
            lambda: tf.constant(0, tf.int64),
        )
        return _values_xla(acc, start, scale, qmin, qmax), sats, peak

    return tf.cond(
        tf.logical_and(top < 2.0**31, bottom >= -(2.0**31)),
        no_overflow,
        lambda: _requantize_xla(acc, start, scale, qmin, qmax),
    )


def requantize(acc, start, scale, qmin, qmax):
    """The kernel's output stage on an exact float64 sum of products (docs/design.md rule 4).

    Args:
        acc: Σ w·x (N, H, W, C) float64, exact.
        start: (C,) float64, bias << bias_lshift plus NN_ROUND (exact integers).
        scale, qmin, qmax: float64 scalar tensors: 2^-out_rshift and the output's limits.

    acc + start is an exact integer; it is wrapped to int32 as the device does, shifted (arithmetic,
    floor) and saturated, each step exact in float64 (large batches: _bounded).
    Returns (out int16 tensor, counts int64 scalar tensor, peak int64 scalar tensor): counts has the saturated
    outputs in the low 32 bits, outputs whose accumulator left int32 above them; peak is the largest
    max(acc, -1 - acc) of the exact, unwrapped sums acc (-1 for an empty batch); a batch has far fewer
    than 2^32 values, so each count fits its 32 bits. Works eagerly and inside a graph function (the
    batch size must be static there for the XLA choice; an unknown one runs the eager form).
    """
    size = acc.shape.num_elements()
    if size is not None and size >= 2**32:
        raise ValueError(f"{size} values in one batch: too many to count in 32 bits")
    if size is None or size < XLA_MIN_SIZE:
        return _requantize(acc, start, scale, qmin, qmax)
    out, counts, peak = _bounded(acc, start, scale, qmin, qmax)
    out.set_shape(acc.shape)  # traced for any shape: the static shape is the caller's
    return out, counts, peak


def compiled_sum(weighted_sum, op):
    """weighted_sum(op, h, w) as one XLA function (compiled once per input shape): the shifted slices of a
    conv by taps in one pass. Its output stage is requantize's (demo conv1, 256 samples: 75 ms for the sum and
    65 ms for the stage, against 225 ms with the stage in the same XLA function, whose reductions are slow)."""
    return tf.function(lambda h, w: weighted_sum(op, h, w), jit_compile=True, autograph=False)
