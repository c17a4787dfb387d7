"""Tests for the shipped demo: deterministic synthetic data, the model and its files."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

try:
    import qverify.demo as demo
except ImportError:  # source checkout that has not been pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import qverify.demo as demo

# sha256 of x.tobytes() + y.tobytes() for make_dataset(16, "test"); if this
# changes, the generator drifted and every recorded result is invalidated.
FINGERPRINT_TEST_16 = "5bad6b6e36684f0239196f019121b415153c7dc760461d9a40e1e2014655f5a8"

LAYER_NAMES = [f"conv{i}" for i in range(1, 9)] + ["fc1", "fc2", "fc3"]


@pytest.fixture(scope="module")
def shipped_model():
    """The shipped model, loaded once per module."""
    return demo.load_model()


def test_make_dataset_is_deterministic():
    """Two calls with the same arguments return bit-identical arrays."""
    x1, y1 = demo.make_dataset(8, "test")
    x2, y2 = demo.make_dataset(8, "test")
    assert x1.tobytes() == x2.tobytes()
    assert y1.tobytes() == y2.tobytes()


def test_smaller_n_is_a_prefix():
    """make_dataset(n) is a prefix of make_dataset(N > n), across chunk boundaries."""
    xs, ys = demo.make_dataset(5, "calib")
    xl, yl = demo.make_dataset(70, "calib")
    np.testing.assert_array_equal(xs, xl[:5])
    np.testing.assert_array_equal(ys, yl[:5])
    # sample 40 generated alone (via a 41-sample call) matches the long call
    x41, _ = demo.make_dataset(41, "calib")
    np.testing.assert_array_equal(x41[40], xl[40])


def test_values_dtype_shape_and_labels():
    """Frames are float32 (n, 4096) on the q15 grid in [-1, 1); labels are balanced 0/1."""
    x, y = demo.make_dataset(64, "train")
    assert x.dtype == np.float32 and x.shape == (64, 4096)
    assert y.shape == (64,) and np.issubdtype(y.dtype, np.integer)
    assert x.min() >= -1.0 and x.max() < 1.0
    assert x.max() <= 1.0 - 2.0**-15
    q = x.astype(np.float64) * 32768.0
    np.testing.assert_array_equal(q, np.round(q))  # exactly representable in q15
    assert set(np.unique(y).tolist()) == {0, 1}
    assert abs(int(y.sum()) - 32) <= 4
    assert np.all(np.std(x, axis=1) > 0.01)  # no silent/degenerate frames


def test_splits_differ():
    """The train, calib and test splits share no frames."""
    xs = [demo.make_dataset(16, s)[0] for s in ("train", "calib", "test")]
    for i in range(3):
        for j in range(i + 1, 3):
            for row in xs[i]:
                assert not np.any(np.all(xs[j] == row, axis=1))


@pytest.mark.parametrize(
    "n, split",
    [(0, "test"), (-3, "test"), (2.5, "test"), ("8", "test"), (8, "val"), (8, "TEST")],
)
def test_bad_arguments_raise(n, split):
    """Non-positive/non-integer n or an unknown split raise ValueError."""
    with pytest.raises(ValueError):
        demo.make_dataset(n, split)


def test_fingerprint_is_pinned():
    """The test split's first 16 frames hash to the recorded fingerprint (no generator drift)."""
    x, y = demo.make_dataset(16, "test")
    digest = hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()
    assert digest == FINGERPRINT_TEST_16


def test_net_architecture():
    """Net() builds the documented layers with the expected shapes."""
    model = demo.Net()
    names = [layer.name for layer in model.layers]
    for name in LAYER_NAMES:
        assert name in names
    assert tuple(model.input_shape) == (None, 4096, 1, 1)
    assert tuple(model.output_shape) == (None, 1)
    assert model.get_layer("conv1").kernel.shape == (9, 1, 1, 16)
    assert model.get_layer("conv8").kernel.shape == (3, 1, 64, 64)
    assert model.get_layer("fc2").kernel.shape == (64, 512)
    assert model.count_params() == 69_873


def test_shipped_model_matches_architecture(shipped_model):
    """The shipped model has conv1..conv8, fc1..fc3 and the same weight shapes as Net()."""
    names = [layer.name for layer in shipped_model.layers]
    for name in LAYER_NAMES:
        assert name in names
    fresh = demo.Net()
    assert [w.shape for w in shipped_model.get_weights()] == [w.shape for w in fresh.get_weights()]


def test_shipped_model_float_accuracy(shipped_model):
    """The shipped model classifies >= 85 % of 500 held-out test frames correctly."""
    x, y = demo.make_dataset(500, "test")
    p = shipped_model.predict(x.reshape(-1, 4096, 1, 1), batch_size=250, verbose=0)
    p = p.reshape(-1)
    assert np.all((p >= 0.0) & (p <= 1.0))
    acc = float(np.mean((p >= 0.5) == (y == 1)))
    assert acc >= 0.85, acc
    # both classes are predicted: the model is not a constant
    assert 0.3 < float(np.mean(p >= 0.5)) < 0.7


def test_metrics_are_recorded():
    """metrics.json records a plausible (not suspiciously perfect) held-out accuracy."""
    m = demo.metrics()
    assert m["test_size"] >= 1000
    assert 0.85 <= m["float_test_accuracy"] < 0.99
    assert m["train_size"] > 0 and m["epochs"] > 0
    assert m["split_seeds"] == demo.SPLIT_SEEDS
    assert "synthetic" in demo.DESCRIPTION


def test_write_demo_writes_loadable_files(tmp_path):
    """write_demo writes model.keras, input.npy (n, 4096) float32 and target.npy (n,)."""
    import keras

    paths = demo.write_demo(tmp_path / "out", n=12, split="calib")
    x = np.load(tmp_path / "out" / "input.npy")
    y = np.load(tmp_path / "out" / "target.npy")
    assert x.dtype == np.float32 and x.shape == (12, 4096)
    assert y.shape == (12,)
    xr, yr = demo.make_dataset(12, "calib")
    np.testing.assert_array_equal(x, xr)
    np.testing.assert_array_equal(y, yr)
    model = keras.models.load_model(paths["model"], compile=False)
    assert model.get_layer("conv1") is not None
    assert (tmp_path / "out" / "model.keras").read_bytes() == demo.MODEL_PATH.read_bytes()


def test_write_demo_rejects_bad_arguments(tmp_path):
    """write_demo validates n and split before creating anything."""
    with pytest.raises(ValueError):
        demo.write_demo(tmp_path / "nope", n=0)
    assert not (tmp_path / "nope").exists()
