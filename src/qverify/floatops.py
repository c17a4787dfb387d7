"""Float execution of graph ops in TensorFlow, batched.

Calibration measures its ranges here and the float engine is built on it,
so both see exactly the model's float arithmetic (float32, as Keras runs it):
both run the ops as one graph function per batch (`chain_function`), as a batched
Keras predict does; `run_chain` runs them one by one, eagerly (the same numbers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from qverify.graph import Op
from qverify.opkinds import Kind, conv_pads


def run_op(op: Op, x):
    """Apply one op in float32 to a batch x shaped (N, H, W, C); returns a tf.Tensor."""
    return _OPS[op.kind](op, x)


def conv2d(op, x, w):
    """tf.nn.conv2d of a conv op (graph.Op or plan.OpPlan) on x (N, H, W, C_in) with weights w (k_h, k_w, C_in,
    C_out), padded as the op says (conv_pads: TensorFlow's 'same' split where the output size says so, rule 4).

    A 1-D conv (W = 1, a k x 1 kernel, no padding on W) runs with its length on W: the same bytes, the same
    patches in the same order and the same matrix product, so the same numbers, and Eigen's convolution is
    faster that way (demo, 256 samples, float32: conv1 110 -> 34 ms, conv2 96 -> 70 ms; float64: conv2
    181 -> 149 ms). tests/test_floatops.py holds it to the model's own layers."""
    import tensorflow as tf

    pad_h, pad_w = conv_pads(op)
    if op.in_shape[1] == 1 and op.kernel[1] == 1 and pad_w == (0, 0):
        (length, _, c_in), (out_length, _, c_out) = op.in_shape, op.out_shape
        flat = tf.nn.conv2d(
            tf.reshape(x, (-1, 1, length, c_in)),
            tf.reshape(w, (1, op.kernel[0], c_in, c_out)),
            strides=[1, 1, op.stride[0], 1],
            padding=[[0, 0], [0, 0], list(pad_h), [0, 0]],
        )
        return tf.reshape(flat, (-1, out_length, 1, c_out))
    return tf.nn.conv2d(x, w, strides=[1, *op.stride, 1], padding=[[0, 0], list(pad_h), list(pad_w), [0, 0]])


def _conv(op, x):
    return conv2d(op, x, op.weights) + op.bias


def _dense(op, x):
    import tensorflow as tf

    flat = tf.reshape(x, (-1, op.in_shape[2]))
    return tf.reshape(tf.matmul(flat, op.weights) + op.bias, (-1, 1, 1, op.out_shape[2]))


def _relu(op, x):
    import tensorflow as tf

    return tf.nn.relu(x)


def _relu6(op, x):
    import tensorflow as tf

    return tf.nn.relu6(x)


def _maxpool(op, x):
    import tensorflow as tf

    return tf.nn.max_pool2d(x, op.kernel, op.stride, "VALID")


def _avgpool(op, x):
    import tensorflow as tf

    return tf.nn.avg_pool2d(x, op.kernel, op.stride, "VALID")


def _gap(op, x):
    import tensorflow as tf

    return tf.reduce_mean(x, axis=(1, 2), keepdims=True)


def _flatten(op, x):
    import tensorflow as tf

    return tf.reshape(x, (-1, 1, 1, op.out_shape[2]))


def _sigmoid(op, x):
    import tensorflow as tf

    return tf.math.sigmoid(x)


def _tanh(op, x):
    import tensorflow as tf

    return tf.math.tanh(x)


def _softmax(op, x):
    """The model's softmax (natural base, over the channels); the device's base-2 one is rule 11's."""
    import tensorflow as tf

    return tf.nn.softmax(x, axis=-1)


# keyed by str: a Kind is a str, and ops carry their kind as the plan's string
_OPS: dict[str, Callable[[Op, Any], Any]] = {
    Kind.CONV: _conv,
    Kind.DENSE: _dense,
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


def chain_function(ops: list[Op], input_shape, ranges: bool = False) -> Callable[[Any], list[Any]]:
    """The ops as one TensorFlow graph function of a float32 batch (N, *input_shape), traced once for any N.

    It returns every op's output, each op fed the previous one's; with ranges=True, each op's
    [min, max] (a float32 pair) instead, so a batch's outputs never leave TensorFlow (calibration)."""
    import tensorflow as tf

    def chain(h):
        outs = []
        for op in ops:
            h = run_op(op, h)
            outs.append(tf.stack([tf.reduce_min(h), tf.reduce_max(h)]) if ranges else h)
        return outs

    # autograph off: the loop over the ops is Python's, unrolled when traced (autograph's rewrite of the
    # source cost seconds per trace, and there is no tensor-dependent control flow to convert)
    return tf.function(chain, input_signature=[tf.TensorSpec([None, *input_shape], tf.float32)], autograph=False)


def run_chain(ops: list[Op], x: np.ndarray, batch: int = 256) -> Iterator[tuple[int, list[np.ndarray]]]:
    """Run all ops over x in batches; yields (start index, per-op outputs) per batch."""
    import tensorflow as tf

    for start in range(0, len(x), batch):
        h = tf.constant(x[start : start + batch], dtype=tf.float32)
        outs = []
        for op in ops:
            h = run_op(op, h)
            outs.append(h.numpy())
        yield start, outs
