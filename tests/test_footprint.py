"""footprint(plan): per-op MACs and bytes, and the runner's peak RAM exactly as qv_scratch_words() sizes it."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from qverify.calibrate import calibrate, prepare_input
from qverify.cli import main
from qverify.engines.native import NativeEngine
from qverify.footprint import footprint, runner_scratch_words
from qverify.graph import build_graph
from qverify.plan import make_plan

L = keras.layers


def plan_for(model, seed: int = 0):
    g = build_graph(model)
    x = np.random.default_rng(seed).uniform(-1, 1, (16, *g.model_input_shape)).astype(np.float32)
    return make_plan(g, calibrate(g, prepare_input(x, g)))


@pytest.fixture(scope="module")
def image_plan():
    """2-D convs (odd channels, padding, stride), avg pooling, flatten and dense."""
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((20, 18, 3)),
                              L.Conv2D(5, (3, 3), padding="same", activation="relu", name="c1"),
                              L.Conv2D(8, (3, 2), strides=(2, 2), name="c2"),
                              L.AveragePooling2D((2, 2), name="ap"), L.Flatten(name="fl"),
                              L.Dense(7, activation="relu", name="d1"), L.Dense(3, activation="softmax", name="d2")])
    return plan_for(model)


def test_per_op_rows(image_plan):
    """Weights/bias bytes are 2 per value, activations 2*H*W*C, MACs as the kernels count them."""
    fp = footprint(image_plan)
    rows = {r.name: r for r in fp.ops}
    c1, c2, d1 = rows["c1"], rows["c2"], rows["d1"]
    assert c1.weight_bytes == 2 * 3 * 3 * 3 * 5 and c1.bias_bytes == 2 * 5
    assert c1.input_bytes == 2 * 20 * 18 * 3 and c1.output_bytes == 2 * 20 * 18 * 5
    assert c1.macs == 20 * 18 * 5 * 3 * 3 * 3 and c1.kernel_buffer_bytes == 2 * (2 * 3 * 3 * 3)
    assert c2.output_bytes == 2 * 9 * 9 * 8 and c2.macs == 9 * 9 * 8 * 3 * 2 * 5
    assert d1.weight_bytes == 2 * rows["fl"].output_bytes // 2 * 7 and d1.kernel_buffer_bytes == rows["fl"].output_bytes
    assert rows["c1_relu"].weight_bytes == 0 and rows["ap"].macs == 0
    assert fp.total_macs == sum(op.macs for op in image_plan.ops)
    assert fp.flash_bytes == sum(2 * (op.weights.size + op.bias.size) for op in image_plan.ops if op.weighted)
    assert fp.input_bytes == 2 * 20 * 18 * 3
    assert fp.largest_activation_bytes == max(r.output_bytes for r in fp.ops)


def test_runner_ram_is_qv_scratch_words(image_plan):
    """The Python mirror of qv_scratch_words agrees with the C runner, for every variant that sizes it."""
    fp = footprint(image_plan)
    for kernels in ("plain", "dsp"):
        assert NativeEngine(image_plan, kernels=kernels).scratch_words == fp.runner_scratch_words
    act = 20 * 18 * 5  # the largest activation: c1's output
    flat = 4 * 4 * 8  # d1's input, whose vec_buffer is the largest kernel buffer (c2's bufferA is 2*3*2*5)
    assert fp.runner_scratch_words == 2 * act + flat + 4 * 16  # and four zones of QV_GUARD_WORDS words
    assert fp.runner_ram_bytes == 2 * fp.runner_scratch_words
    assert fp.activation_buffer_bytes == 2 * act


@pytest.mark.parametrize("seed", range(4))
def test_scratch_mirror_on_random_1d_models(seed):
    """Odd sizes (rounded up to an even word count) and dense-dominated buffers too."""
    rng = np.random.default_rng(seed)
    length, ch, k, units = (int(v) for v in (rng.integers(9, 60), rng.integers(1, 6), rng.integers(1, 6),
                                               rng.integers(1, 300)))
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((length, 1)), L.Conv1D(ch, k, name="c"), L.Flatten(name="f"),
                              L.Dense(units, name="d"), L.Dense(1, activation="sigmoid", name="o")])
    plan = plan_for(model, seed)
    assert runner_scratch_words(plan.ops) == NativeEngine(plan, kernels="plain").scratch_words


def test_report_command(image_plan, tmp_path, capsys):
    """`qverify report --plan DIR` prints rows and totals; --json writes them; a bad --json path is exit 2."""
    image_plan.save(tmp_path / "plan")
    assert main(["report", "--plan", str(tmp_path / "plan"), "--json", str(tmp_path / "fp.json")]) == 0
    text = capsys.readouterr().out
    fp = footprint(image_plan)
    assert f"{fp.total_macs:,}" in text and "runner peak RAM" in text and "c2" in text
    d = json.loads((tmp_path / "fp.json").read_text())
    assert d["plan_hash"] == image_plan.hash
    assert d["totals"]["runner_ram_bytes"] == fp.runner_ram_bytes and len(d["ops"]) == len(image_plan.ops)
    assert main(["report", "--plan", str(tmp_path / "plan"), "--json", str(tmp_path / "no" / "fp.json")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
