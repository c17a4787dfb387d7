"""Property 2: CMSIS-NN layouts (docs/design.md, "Layouts") for every kernel and activation shape.

Each check takes the layout functions under test; the broken-implementation tests run the
same checks on the notebook's orders and find the shapes where they are wrong.
"""

from __future__ import annotations

import random

import keras
import numpy as np
from hypothesis import Phase, example, find, given, settings
from hypothesis import strategies as st

from qverify.layout import (
    conv_from_cmsis,
    conv_index,
    conv_to_cmsis,
    dense_from_cmsis,
    dense_to_cmsis,
    hwc_flat,
    notebook_conv_order,
)
from strategies import examples, fails

FIND = settings(max_examples=300, database=None, deadline=None)


# ---------------------------------------------------------------- strategies

# Conv kernel shapes (k_h, k_w, c_in, c_out): kernels 1..9 (k_h != k_w included), 1..64 channels.
conv_shapes = st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 64), st.integers(1, 64))
dense_shapes = st.tuples(st.integers(1, 1024), st.integers(1, 64))
# Activations (N, H, W, C); W = 1 is a 1-D signal.
activation_shapes = st.tuples(st.integers(1, 3), st.integers(1, 24), st.integers(1, 24), st.integers(1, 64))


def distinct(shape, seed: int = 0) -> np.ndarray:
    """A tensor whose elements are all different (a permutation of 0..size-1), so any misplacement shows."""
    n = int(np.prod(shape))
    return np.random.default_rng(seed).permutation(n).astype(np.int32).reshape(shape)


# ---------------------------------------------------------------- checks


def check_conv_layout(to_cmsis, from_cmsis, w: np.ndarray) -> None:
    """Every Keras element w[k_h, k_w, c_in, c_out] sits at ((c_out·K_h + k_h)·K_w + k_w)·C_in + c_in of the
    CMSIS array (layout.conv_index gives that index), and reorder-then-inverse is the identity both ways."""
    kh, kw, ci, co = w.shape
    flat = np.asarray(to_cmsis(w))
    assert flat.shape == (w.size,), flat.shape
    i, j, c, o = np.indices(w.shape)
    index = conv_index(o, i, j, c, w.shape)  # layout.conv_index, evaluated for every element at once
    assert np.array_equal(index, ((o * kh + i) * kw + j) * ci + c), "conv_index is not docs/design.md's (Layouts)"
    assert np.array_equal(flat[index], w), "an element is not at its CMSIS [c_out][k_h][k_w][c_in] index"
    assert np.array_equal(from_cmsis(flat, kh, kw, ci, co), w), "inverse(reorder(w)) != w"
    assert np.array_equal(to_cmsis(from_cmsis(flat, kh, kw, ci, co)), flat), "reorder(inverse(flat)) != flat"


def check_dense_layout(to_cmsis, from_cmsis, w: np.ndarray) -> None:
    """Keras w[i, o] sits at o·n_in + i ([out][in]); the inverse is the identity both ways."""
    n_in, n_out = w.shape
    flat = np.asarray(to_cmsis(w))
    i, o = np.indices(w.shape)
    assert np.array_equal(flat[o * n_in + i], w), "dense element not at [out][in]"
    assert np.array_equal(from_cmsis(flat, n_in, n_out), w)
    assert np.array_equal(to_cmsis(from_cmsis(flat, n_in, n_out)), flat)


def keras_flatten(x: np.ndarray) -> np.ndarray:
    return np.asarray(keras.layers.Flatten()(x))


def check_activation_flatten(flatten, x: np.ndarray) -> None:
    """flatten(x) puts x[n, h, w, c] at (h·W + w)·C + c, which is what Keras Flatten does (HWC order);
    a 1-D signal (N, L, C) is the (N, L, 1, C) case."""
    _, h, w, c = x.shape
    flat = np.asarray(flatten(x))
    hh, ww, cc = np.indices((h, w, c))
    assert np.array_equal(flat[:, (hh * w + ww) * c + cc], x), "element not at (h·W + w)·C + c"
    assert np.array_equal(flat, keras_flatten(x)), "differs from keras.layers.Flatten"
    if w == 1:
        assert np.array_equal(flat, keras_flatten(x[:, :, 0, :])), "1-D signal differs from Keras Flatten"


def notebook_from_cmsis(flat, kh, kw, ci, co):
    """Inverse of the notebook's order: [c_out][k_w][k_h][c_in] back to Keras."""
    return np.asarray(flat).reshape(co, kw, kh, ci).transpose(2, 1, 3, 0)


def notebook_activation_dump(x: np.ndarray) -> np.ndarray:
    """The notebook's sample dump, per sample temp.transpose(2, 0, 1).flatten('F'): [w][h][c]."""
    return np.stack([s.transpose(2, 0, 1).flatten("F") for s in x])


# ---------------------------------------------------------------- properties

# Pin: the notebook's moveaxis(w, 2, 0).flatten('F') is transposed for a 3x2 kernel.
KERNEL_3X2 = (3, 2, 2, 3)


@settings(max_examples=examples(1.0))
@given(shape=conv_shapes, seed=st.integers(0, 2**32 - 1))
@example(shape=KERNEL_3X2, seed=0)
@example(shape=(9, 1, 1, 16), seed=0)  # the notebook's own (9, 1) kernels
@example(shape=(1, 1, 1, 1), seed=0)
def test_conv_kernel_layout(shape, seed):
    """Property 2: each Keras conv weight is at its CMSIS index; reorder and inverse are mutual identities."""
    check_conv_layout(conv_to_cmsis, conv_from_cmsis, distinct(shape, seed))


@settings(max_examples=examples(0.5))
@given(shape=dense_shapes, seed=st.integers(0, 2**32 - 1))
@example(shape=(1, 1), seed=0)
def test_dense_layout(shape, seed):
    """Property 2: dense weights are [out][in]; reorder and inverse are mutual identities."""
    check_dense_layout(dense_to_cmsis, dense_from_cmsis, distinct(shape, seed))


@settings(max_examples=examples(0.5))
@given(shape=activation_shapes, seed=st.integers(0, 2**32 - 1))
@example(shape=(1, 3, 2, 2), seed=0)  # W > 1: where the notebook's activation dump goes wrong
@example(shape=(2, 16, 1, 3), seed=0)  # a 1-D signal
def test_activation_flatten_is_keras_flatten(shape, seed):
    """Property 2: HWC flattening of activations equals Keras Flatten, index (h·W + w)·C + c."""
    check_activation_flatten(hwc_flat, distinct(shape, seed))


def test_layout_checks_catch_the_notebooks_orders():
    """The layout properties reject the notebook's kernel order and its activation dump, and Hypothesis
    shrinks each to a smallest shape where it is wrong (k_h, k_w >= 2; H, W >= 2)."""
    assert fails(check_conv_layout, notebook_conv_order, notebook_from_cmsis, distinct(KERNEL_3X2))
    small = st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 8), st.integers(1, 8))
    shape, _ = find(
        st.tuples(small, st.just(0)),
        lambda t: fails(check_conv_layout, notebook_conv_order, notebook_from_cmsis, distinct(t[0])),
        settings=FIND,
        random=random.Random(4),
    )
    assert shape == (2, 2, 1, 1), shape
    x_shape, _ = find(
        st.tuples(activation_shapes, st.just(0)),
        lambda t: fails(check_activation_flatten, notebook_activation_dump, distinct(t[0])),
        settings=settings(FIND, max_examples=50, phases=[Phase.generate]),
        random=random.Random(5),
    )
    assert x_shape[1] >= 2 and x_shape[2] >= 2, x_shape
