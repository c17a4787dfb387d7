"""footprint(plan): per-op MACs and bytes, and the runner's peak RAM exactly as qv_scratch_words() sizes it."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from qverify.calibrate import calibrate, prepare_input
from qverify.cli import main
from qverify.engines.native import NativeEngine
from qverify.footprint import footprint, runner_scratch_layout, runner_scratch_words
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
    model = keras.Sequential(
        [
            keras.Input((20, 18, 3)),
            L.Conv2D(5, (3, 3), padding="same", activation="relu", name="c1"),
            L.Conv2D(8, (3, 2), strides=(2, 2), name="c2"),
            L.AveragePooling2D((2, 2), name="ap"),
            L.Flatten(name="fl"),
            L.Dense(7, activation="relu", name="d1"),
            L.Dense(3, activation="softmax", name="d2"),
        ]
    )
    return plan_for(model)


def test_per_op_rows(image_plan):
    """Each op's bytes and MACs, worked out by hand from the geometry (2 bytes per q15 value).

    c1: 3x3 conv, 3 -> 5 channels, 'same' on 20x18: weights 5*3*3*3 = 135 values (270 B), bias 5 (10 B);
        input 20*18*3 = 1080 values (2160 B), output 20*18*5 = 1800 (3600 B); MACs 1800 outputs * 27 = 48600;
        im2col bufferA 2*c_in*k_h*k_w = 2*3*3*3 = 54 values (108 B).
    c2: 3x2 conv, stride 2, 5 -> 8 channels: output ((20-3)//2+1) x ((18-2)//2+1) = 9x9x8 = 648 (1296 B);
        weights 8*3*2*5 = 240 (480 B), bias 8 (16 B); MACs 648 * 30 = 19440; bufferA 2*5*3*2 = 60 (120 B).
    ap: 2x2 average pool: 9x9x8 -> 4x4x8 = 128 (256 B). fl: 128 -> 128.
    d1: dense 128 -> 7: weights 896 (1792 B), bias 14 B, MACs 896, vec_buffer = input length 128 (256 B).
    d2: dense 7 -> 3: weights 21 (42 B), bias 6 B, MACs 21, vec_buffer 7 (14 B).
    """
    fp = footprint(image_plan)
    rows = {r.name: r for r in fp.ops}
    assert list(rows) == ["c1", "c1_relu", "c2", "ap", "fl", "d1", "d1_relu", "d2"]
    #                    (macs, weight B, bias B, input B, output B, kernel buffer B)
    expect = {
        "c1": (48600, 270, 10, 2160, 3600, 108),
        "c1_relu": (0, 0, 0, 3600, 3600, 0),
        "c2": (19440, 480, 16, 3600, 1296, 120),
        "ap": (0, 0, 0, 1296, 256, 0),
        "fl": (0, 0, 0, 256, 256, 0),
        "d1": (896, 1792, 14, 256, 14, 256),
        "d1_relu": (0, 0, 0, 14, 14, 0),
        "d2": (21, 42, 6, 14, 6, 14),
    }
    for name, row in rows.items():
        got = (row.macs, row.weight_bytes, row.bias_bytes, row.input_bytes, row.output_bytes, row.kernel_buffer_bytes)
        assert got == expect[name], name
    assert rows["c1_relu"].working_set_bytes == 3600 + 3600 and rows["c1"].flash_bytes == 280
    assert fp.total_macs == 48600 + 19440 + 896 + 21 == 68957
    assert fp.weight_bytes == 270 + 480 + 1792 + 42 == 2584 and fp.bias_bytes == 10 + 16 + 14 + 6 == 46
    assert fp.flash_bytes == 2630
    assert fp.input_bytes == 2160
    assert fp.largest_activation_bytes == 3600  # c1's output
    assert fp.min_working_set_bytes == 7200  # c1_relu: 3600 in + 3600 out


def test_runner_ram_is_qv_scratch_words(image_plan):
    """The runner's scratch, worked out by hand, and the C runner's qv_scratch_words for every variant that sizes it.

    Activation buffer: the largest activation, c1's output 20*18*5 = 1800 values (even already).
    Kernel buffer: the largest of c1's bufferA 54, c2's 60, d1's vec_buffer 128 and d2's 7 -> 128.
    Scratch: 2 * 1800 + 128 + 4 guard zones * 16 words = 3600 + 128 + 64 = 3792 words = 7584 bytes.
    """
    fp = footprint(image_plan)
    assert runner_scratch_layout(image_plan.ops) == (1800, 128)
    assert fp.runner_scratch_words == runner_scratch_words(image_plan.ops) == 3792
    for kernels in ("plain", "dsp"):
        assert NativeEngine(image_plan, kernels=kernels).scratch_words == 3792, kernels
    assert fp.runner_ram_bytes == 7584 and fp.runner_ram_with_input_bytes == 7584 + 2160
    assert fp.activation_buffer_bytes == 3600 and fp.kernel_buffer_bytes == 256
    # any run of ops: ap..d2 alone needs ap's input 9*9*8 = 648 values and d1's 128 -> 2*648 + 128 + 64 = 1488
    assert runner_scratch_layout(image_plan.ops[3:]) == (648, 128)
    assert runner_scratch_words(image_plan.ops[3:]) == 1488
    # c1 alone: its output 1800 and its bufferA 54 -> 2*1800 + 54 + 64 = 3718
    assert runner_scratch_words(image_plan.ops[:1]) == 3718


def test_runner_regions_round_up_to_even():
    """Odd region sizes are rounded up to an even word count (4-byte alignment), by hand and in C.

    Input 9x1, Conv1D 3 filters of width 3 -> 7x3 = 21 values; its bufferA 2*1*3*1 = 6; flatten 21;
    Dense 5 (vec_buffer 21), Dense 1 (vec_buffer 5). Activation 21 -> 22, kernel buffer 21 -> 22;
    scratch 2*22 + 22 + 4*16 = 130 words (not the unrounded 2*21 + 21 + 64 = 127).
    """
    keras.utils.set_random_seed(4)
    model = keras.Sequential(
        [
            keras.Input((9, 1)),
            L.Conv1D(3, 3, name="c"),
            L.Flatten(name="f"),
            L.Dense(5, name="d"),
            L.Dense(1, activation="sigmoid", name="o"),
        ]
    )
    plan = plan_for(model)
    assert [op.name for op in plan.ops] == ["c", "f", "d", "o"]
    assert runner_scratch_layout(plan.ops) == (22, 22)
    assert runner_scratch_words(plan.ops) == 130
    fp = footprint(plan)
    assert fp.runner_scratch_words == 130 and fp.activation_buffer_bytes == 44 and fp.kernel_buffer_bytes == 44
    assert [r.kernel_buffer_bytes for r in fp.ops] == [12, 0, 42, 10]
    assert fp.total_macs == 7 * 3 * 3 + 21 * 5 + 5 == 173
    for kernels in ("plain", "dsp"):
        assert NativeEngine(plan, kernels=kernels).scratch_words == 130, kernels


@pytest.mark.parametrize("seed", range(4))
def test_scratch_mirror_on_random_1d_models(seed):
    """Odd sizes (rounded up to an even word count) and dense-dominated buffers too."""
    rng = np.random.default_rng(seed)
    length, ch, k, units = (
        int(v) for v in (rng.integers(9, 60), rng.integers(1, 6), rng.integers(1, 6), rng.integers(1, 300))
    )
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((length, 1)),
            L.Conv1D(ch, k, name="c"),
            L.Flatten(name="f"),
            L.Dense(units, name="d"),
            L.Dense(1, activation="sigmoid", name="o"),
        ]
    )
    plan = plan_for(model, seed)
    assert runner_scratch_words(plan.ops) == NativeEngine(plan, kernels="plain").scratch_words


def test_report_command(image_plan, tmp_path, capsys):
    """`qverify report --plan DIR` prints rows and totals; --json writes them; a bad --json path is exit 2."""
    image_plan.save(tmp_path / "plan")
    assert main(["report", "--plan", str(tmp_path / "plan"), "--json", str(tmp_path / "fp.json")]) == 0
    text = capsys.readouterr().out
    assert "68,957" in text and "runner peak RAM" in text and "c2" in text  # the MACs worked out above
    d = json.loads((tmp_path / "fp.json").read_text())
    assert d["plan_hash"] == image_plan.hash
    assert d["totals"]["runner_ram_bytes"] == 7584 and d["totals"]["flash_bytes"] == 2630
    assert [op["name"] for op in d["ops"]] == ["c1", "c1_relu", "c2", "ap", "fl", "d1", "d1_relu", "d2"]
    assert main(["report", "--plan", str(tmp_path / "plan"), "--json", str(tmp_path / "no" / "fp.json")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
