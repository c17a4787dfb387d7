"""floatops: the graph's float ops compute the model's own numbers, bit for bit.

A 1-D conv runs with its length on W (floatops.conv2d; faster in Eigen), which must not change a single bit:
held to the Keras layer itself on random 1-D convs, and to the shipped demo model called on a batch. (Keras's
predict is not the reference for bits: its graph fuses conv, bias and ReLU, and its logits differ from the model's
own call by up to 1.5e-5 on the demo.)
"""

from __future__ import annotations

import keras
import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from qverify import demo
from qverify.engines.float import FloatEngine
from qverify.floatops import run_op
from qverify.graph import build_graph
from strategies import examples

L = keras.layers


@settings(max_examples=examples(0.5), deadline=None)
@given(
    length=st.integers(1, 300),
    k=st.integers(1, 11),
    stride=st.integers(1, 3),
    padding=st.sampled_from(["valid", "same"]),
    c_in=st.integers(1, 16),
    c_out=st.integers(1, 16),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_1d_conv_equals_the_keras_layer_bit_for_bit(length, k, stride, padding, c_in, c_out, seed):
    """floatops' conv of a k x 1 kernel over (length, 1, C_in), run with the length on W, gives exactly the
    Keras Conv2D layer's float32 outputs (H layout), weights and inputs at full float32 precision."""
    assume(k <= length)  # a window beyond the input is refused by build_graph (the q15 kernels refuse it)
    inp = keras.Input((length, 1, c_in))
    layer = L.Conv2D(c_out, (k, 1), strides=(stride, 1), padding=padding, name="conv")
    model = keras.Model(inp, layer(inp))
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.standard_normal((k, 1, c_in, c_out)).astype(np.float32), rng.standard_normal(c_out)])
    x = rng.standard_normal((3, length, 1, c_in)).astype(np.float32)
    (op,) = build_graph(model).ops
    got = np.asarray(run_op(op, x))
    want = np.asarray(layer(x))
    assert got.shape == want.shape and np.array_equal(got, want)


def test_the_float_engine_equals_the_demo_model():
    """The float engine's last op (the logit) over 64 demo frames equals, bit for bit, the shipped model's own
    fc3 layer called on the batch."""
    model = demo.load_model()
    graph = build_graph(model)
    x, _ = demo.make_dataset(64, "test")
    x = x.reshape(64, demo.FRAME_LEN, 1, 1).astype(np.float32)
    logits = np.asarray(keras.Model(model.inputs, model.get_layer("fc3").output)(x))
    from qverify import workflow

    plan = workflow.quantize().plan
    got = FloatEngine(plan, graph).run_float(x)["fc3"]
    assert np.array_equal(got.reshape(64, -1), logits)
