"""Model → ops: dispatch on class, fused ReLU split, clear refusals, float chain equal to Keras."""

from pathlib import Path

import keras
import numpy as np
import pytest

from qverify.calibrate import prepare_input
from qverify.errors import DataError, ModelError
from qverify.floatops import run_chain
from qverify.graph import build_graph
from qverify.modelfile import load_model

L = keras.layers


def small_2d(names=None):
    names = names or {}
    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [
            keras.Input((12, 10, 3)),
            L.Conv2D(4, (3, 2), strides=(1, 2), padding="valid", activation="relu", name=names.get("c1", "c1")),
            L.Conv2D(6, (3, 3), padding="same", name=names.get("c2", "c2")),
            L.Activation("relu"),
            L.AveragePooling2D((2, 1)),
            L.MaxPooling2D((1, 2), strides=(1, 1)),
            L.Dropout(0.3),
            L.Flatten(),
            L.Dense(5, activation="relu", name=names.get("d", "d")),
            L.Dense(3, activation="softmax"),
        ]
    )


def test_ops_shapes_and_fused_relu():
    """Kinds, HWC shapes, paddings and the split of fused ReLUs come out as expected."""
    g = build_graph(small_2d())
    assert [o.kind for o in g.ops] == [
        "conv",
        "relu",
        "conv",
        "relu",
        "avgpool",
        "maxpool",
        "flatten",
        "dense",
        "relu",
        "dense",
    ]
    assert g.ops[0].out_shape == (10, 5, 4) and g.ops[0].stride == (1, 2)
    assert g.ops[1].name == "c1_relu"
    assert g.ops[2].pad == (1, 1) and g.ops[2].out_shape == (10, 5, 6)
    assert g.ops[6].out_shape == (1, 1, 5 * 4 * 6)
    assert g.final_activation == "softmax"


def test_renamed_layers_still_work():
    """Names carry no meaning: renamed layers give the same kinds."""
    kinds = [o.kind for o in build_graph(small_2d({"c1": "banana", "c2": "dense_like", "d": "conv_like"})).ops]
    assert kinds == [o.kind for o in build_graph(small_2d()).ops]


def test_float_chain_equals_keras():
    """Running the ops in float reproduces the Keras model's output (before the final activation)."""
    model = small_2d()
    g = build_graph(model)
    x = np.random.default_rng(0).uniform(-1, 1, (6, 12, 10, 3)).astype(np.float32)
    ((_, outs),) = list(run_chain(g.ops, prepare_input(x, g)))
    logits = outs[-1].reshape(6, -1)
    expect = model.predict(x, verbose=0)
    np.testing.assert_allclose(keras.ops.softmax(logits).numpy(), expect, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "layer,cls",
    [(L.LeakyReLU(), "LeakyReLU"), (L.LayerNormalization(), "LayerNormalization"), (L.Permute((2, 1, 3)), "Permute")],
)
def test_unsupported_layer_is_named(layer, cls):
    """An unsupported layer is refused with its name, class, the nearest supported form and the supported list."""
    model = keras.Sequential([keras.Input((8, 1, 2)), L.Conv2D(3, (3, 1)), layer, L.Flatten(), L.Dense(1)])
    with pytest.raises(
        ModelError,
        match=rf"layer '{layer.name}' \({cls}\).*nearest supported form is .*"
        "Supported: Conv1D",
    ):
        build_graph(model)


def test_branch_is_refused():
    """A model that branches and merges is not a chain."""
    x = keras.Input((16, 2))
    a = L.Conv1D(2, 3, padding="same")(x)
    b = L.Conv1D(2, 3, padding="same")(x)
    y = L.Add(name="merge")([a, b])
    with pytest.raises(ModelError, match="branches or merges|is not supported"):
        build_graph(keras.Model(x, L.Flatten()(y)))


def test_asymmetric_same_padding_keeps_tensorflow_split():
    """'same' padding with an odd total: pad = total // 2 before, TensorFlow's output size (one more pad after)."""
    model = keras.Sequential([keras.Input((16, 1)), L.Conv1D(2, 4, padding="same", name="even_k")])
    op = build_graph(model).ops[0]
    assert op.pad == (1, 0) and op.out_shape == (16, 1, 2)


def test_conv1d_same_and_gap1d():
    """Conv1D with symmetric 'same' padding and GlobalAveragePooling1D map to HWC ops."""
    model = keras.Sequential(
        [keras.Input((32, 2)), L.Conv1D(4, 5, padding="same", strides=1), L.GlobalAveragePooling1D(), L.Dense(2)]
    )
    g = build_graph(model)
    assert g.ops[0].in_shape == (32, 1, 2) and g.ops[0].pad == (2, 0) and g.ops[0].kernel == (5, 1)
    assert g.ops[1].kind == "gap" and g.ops[1].out_shape == (1, 1, 4)
    assert g.ops[0].weights.shape == (5, 1, 2, 4)


def test_factory_plus_weights_and_saved_model(tmp_path):
    """module:Factory plus a weights file (the notebook's case) and a saved .keras both load."""
    model = small_2d()
    model.save_weights(tmp_path / "w.weights.h5")
    model.save(tmp_path / "m.keras")
    here = str(__import__("pathlib").Path(__file__).parent)
    (tmp_path / "netdef.py").write_text(
        f"import sys\nsys.path.insert(0, {here!r})\nfrom test_graph import small_2d\n"
        "def Net():\n    return small_2d()\n"
    )
    from_factory = load_model(f"{tmp_path}/netdef.py:Net", str(tmp_path / "w.weights.h5"))
    saved = load_model(str(tmp_path / "m.keras"))
    for m in (from_factory, saved):
        np.testing.assert_array_equal(build_graph(m).ops[0].weights, build_graph(model).ops[0].weights)
    with pytest.raises(ModelError, match="does not exist"):
        load_model(str(tmp_path / "missing.keras"))
    with pytest.raises(ModelError, match="not a callable"):
        load_model(f"{tmp_path}/netdef.py:Nope")


def _save_keras2_weights(model, path):
    """The layout Keras 2's model.save_weights("x.h5") wrote (Keras 3 still writes it for a legacy .h5 model)."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


def test_load_model_names_what_the_file_is(tmp_path):
    """Empty, text, weights-as-model and each weights layout under the other's name: the message says what the
    file is and the save call to use, never Keras's "File not found" or "found 0 saved layers"."""
    model = small_2d()
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "w.weights.h5")
    (tmp_path / "w.h5").write_bytes((tmp_path / "w.weights.h5").read_bytes())  # Keras 3 layout, renamed
    _save_keras2_weights(model, tmp_path / "k2.h5")
    (tmp_path / "k2.weights.h5").write_bytes((tmp_path / "k2.h5").read_bytes())
    (tmp_path / "empty.keras").write_bytes(b"")
    (tmp_path / "text.keras").write_text("this is not a model\n")
    (tmp_path / "lfs.keras").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\n")
    cases = {
        "empty.keras": r"model file .*empty.keras is an empty file \(0 bytes\); expected a model saved with "
        r'model.save\("x.keras"\)',
        "text.keras": r"is not a Keras model file: it is a text file starting 'this is not a model'",
        "lfs.keras": r"a Git LFS pointer, not the file itself \(run `git lfs pull`\)",
        "w.h5": r"is a weights file \(Keras 3 weights.*not a model: it has no model config; pass the model's code "
        r"as --model module:Factory or path/file.py:Factory and this file as --weights",
        "w.weights.h5": r"is a weights file \(Keras 3 weights",
        "k2.h5": r"is a weights file \(Keras 2 legacy HDF5 weights",
    }
    for name, message in cases.items():
        with pytest.raises(ModelError, match=message):
            load_model(str(tmp_path / name))
    net = f"{tmp_path}/netdef.py:Net"
    (tmp_path / "netdef.py").write_text(
        f"import sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_graph import small_2d\ndef Net():\n    return small_2d()\n"
    )
    with pytest.raises(
        ModelError,
        match=r"w.h5 holds Keras 3 weights .* is named .h5, which Keras reads as Keras 2 "
        r"legacy weights \(and finds 0 layers\); rename it to .*w.weights.h5",
    ):
        load_model(net, str(tmp_path / "w.h5"))
    with pytest.raises(ModelError, match=r"k2.weights.h5 holds Keras 2 legacy HDF5 weights .*rename it to .*k2.h5"):
        load_model(net, str(tmp_path / "k2.weights.h5"))
    with pytest.raises(ModelError, match="empty file"):
        load_model(net, str(tmp_path / "empty.keras"))
    for weights in ("w.weights.h5", "k2.h5", "m.keras"):  # both layouts under their own names, and a whole model
        loaded = load_model(net, str(tmp_path / weights))
        np.testing.assert_array_equal(build_graph(loaded).ops[0].weights, build_graph(model).ops[0].weights)
    with pytest.raises(ModelError, match=r"did you mean --model .*m.keras\?"):
        load_model(None, str(tmp_path / "m.keras"))  # the demo's Net does not take another model's weights


def test_factory_module_not_found_says_where_it_looked(tmp_path, monkeypatch):
    """module:Factory not found names the working directory and sys.path and the path form; the path form loads."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "mymodel_q15.py").write_text(
        f"import sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_graph import small_2d\nNet = small_2d\n"
    )
    monkeypatch.chdir(elsewhere)
    with pytest.raises(
        ModelError,
        match=rf"no module named 'mymodel_q15' in the working directory {elsewhere} or "
        r"on sys.path .*give its path: --model path/to/mymodel_q15.py:Net",
    ):
        load_model("mymodel_q15:Net")
    assert build_graph(load_model(f"{tmp_path}/mymodel_q15.py:Net")).ops
    (tmp_path / "broken_q15.py").write_text("import no_such_dependency_q15\n")
    with pytest.raises(
        ModelError,
        match=r"importing '.*broken_q15.py' failed: No module named "
        r"'no_such_dependency_q15' \(a module the factory's code imports\)",
    ):
        load_model(f"{tmp_path}/broken_q15.py:Net")


def test_prepare_input_shapes_and_bad_data():
    """1-D models take (N, L), (N, L, 1), (N, L, 1, 1); bad shapes, dtypes, NaN and empty sets are named."""
    model = keras.Sequential([keras.Input((64, 1, 1)), L.Conv2D(2, (3, 1)), L.Flatten(), L.Dense(1)])
    g = build_graph(model)
    for shape in ((5, 64), (5, 64, 1), (5, 64, 1, 1)):
        assert prepare_input(np.zeros(shape, np.float32), g).shape == (5, 64, 1, 1)
    with pytest.raises(DataError, match=r"shape \(5, 63\); expected"):
        prepare_input(np.zeros((5, 63)), g)
    bad = np.zeros((5, 64))
    bad[3, 7] = np.nan
    with pytest.raises(DataError, match="sample 3 contains NaN or inf"):
        prepare_input(bad, g)
    with pytest.raises(DataError, match="empty"):
        prepare_input(np.zeros((0, 64)), g)
    with pytest.raises(DataError, match="dtype int16"):
        prepare_input(np.zeros((5, 64), np.int16), g)
