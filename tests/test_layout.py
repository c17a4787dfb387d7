"""CMSIS layouts: a 3x2 kernel pins the notebook's transposition bug."""

import numpy as np

from qverify.layout import (
    conv_from_cmsis,
    conv_index,
    conv_to_cmsis,
    dense_from_cmsis,
    dense_to_cmsis,
    hwc_flat,
    notebook_conv_order,
)


def test_3x2_kernel_known_layout():
    """For a 3x2 kernel every element sits at ((c_out*kh + i)*kw + j)*c_in + c; the notebook's order differs."""
    kh, kw, ci, co = 3, 2, 2, 3
    w = np.arange(kh * kw * ci * co).reshape(kh, kw, ci, co)
    flat = conv_to_cmsis(w)
    for o in range(co):
        for i in range(kh):
            for j in range(kw):
                for c in range(ci):
                    assert flat[conv_index(o, i, j, c, w.shape)] == w[i, j, c, o]
    assert flat[:4].tolist() == [w[0, 0, 0, 0], w[0, 0, 1, 0], w[0, 1, 0, 0], w[0, 1, 1, 0]]
    assert not np.array_equal(notebook_conv_order(w), flat)


def test_notebook_order_is_right_when_kw_is_1():
    """For (k, 1) kernels (the notebook's net) its order equals CMSIS's."""
    w = np.arange(9 * 1 * 4 * 5).reshape(9, 1, 4, 5)
    assert np.array_equal(notebook_conv_order(w), conv_to_cmsis(w))


def test_roundtrips():
    """Reorder then inverse is the identity for conv and dense."""
    w = np.random.default_rng(1).integers(-9, 9, (3, 5, 7, 2))
    assert np.array_equal(conv_from_cmsis(conv_to_cmsis(w), 3, 5, 7, 2), w)
    d = np.random.default_rng(2).integers(-9, 9, (6, 4))
    assert np.array_equal(dense_from_cmsis(dense_to_cmsis(d), 6, 4), d)
    assert dense_to_cmsis(d)[:6].tolist() == d[:, 0].tolist()


def test_hwc_flatten_matches_keras_flatten():
    """HWC flattening is what keras Flatten does on channels_last tensors."""
    import keras

    x = np.random.default_rng(3).normal(size=(2, 3, 4, 5)).astype(np.float32)
    assert np.array_equal(hwc_flat(x), keras.layers.Flatten()(x).numpy())
