"""End to end on the shipped demo: quantize, headers, and the shift/native gate on every sample."""

import copy
import subprocess
import sys

import numpy as np
import pytest

from qverify.cli import main
from qverify.compare import run_compare
from qverify.engines import make_engine, quantize_input
from qverify.plan import QuantPlan
from qverify.workflow import quantize


@pytest.fixture(scope="module")
def demo():
    """The demo quantized as `quantize` does by default (1000 calibration samples), with its int input."""
    q = quantize()
    x, _ = quantize_input(q.plan, q.x)
    return q.plan, x


def test_quantize_cli_writes_plan_and_headers(tmp_path, capsys, demo):
    """`quantize` with no model/data arguments writes the demo's plan and headers and prints the tables."""
    out = tmp_path / "nn"
    assert main(["quantize", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for needle in ("activation frac bits", "weight and bias formats", "bias shifts:", "output shifts:", "conv8"):
        assert needle in text
    plan = QuantPlan.load(out)
    assert plan.hash == demo[0].hash
    assert [op.name for op in plan.ops if op.weighted] == [f"conv{i}" for i in range(1, 9)] + ["fc1", "fc2", "fc3"]
    weights = (out / "weights.h").read_text()
    for macro in ("CONV1_WT", "CONV1_BIAS", "CONV1_BIAS_LSHIFT", "CONV1_OUT_RSHIFT", "FC3_OUT_RSHIFT"):
        assert f"#define {macro} " in weights
    sample = (out / "sample_input_output.h").read_text()
    assert "#define INPUT_DATA {" in sample and "#define CONV8 {" in sample


@pytest.mark.parametrize("rounding", ["truncate", "round"])
def test_shift_and_native_agree_on_every_demo_sample(demo, rounding):
    """On all 1000 demo calibration samples, every op, both kernel paths: bit-exact when the rounding matches."""
    plan, x = demo
    plan = copy.deepcopy(plan)
    plan.rounding = rounding
    reference = make_engine("shift", plan).run(x)
    for kernels in ("dsp", "plain"):
        got = make_engine("native", plan, kernels=kernels).run(x)
        for op in plan.ops:
            assert np.array_equal(reference.outputs[op.name], got.outputs[op.name]), (kernels, op.name)


def test_rounding_mismatch_on_demo_names_conv1(demo):
    """A firmware built with CMSIS's default rounding against the truncate plan fails at conv1 by one LSB."""
    plan, x = demo
    c = run_compare(
        plan,
        make_engine("shift", plan),
        make_engine("native", plan, rounding="round"),
        x[:4],
        list(range(4)),
        "isolated",
    )
    assert c.first_divergent.name == "conv1" and c.first_divergent.max_diff == 1
    assert 0.3 < c.first_divergent.mismatches / c.first_divergent.total < 0.7


def test_demo_command_writes_plain_files(tmp_path):
    """`demo --out` writes model.keras, input.npy and target.npy that load without qverify."""
    import keras

    assert main(["demo", "--out", str(tmp_path), "--samples", "8"]) == 0
    x, y = np.load(tmp_path / "input.npy"), np.load(tmp_path / "target.npy")
    assert x.shape == (8, 4096) and y.shape == (8,)
    model = keras.models.load_model(tmp_path / "model.keras", compile=False)
    assert model.predict(x.reshape(8, 4096, 1, 1), verbose=0).shape == (8, 1)


def one_line_error(capsys, argv, needle):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and needle in captured.err and "Traceback" not in captured.err


def test_bad_input_is_one_line_and_leaves_nothing(tmp_path, capsys):
    """Bad data, a missing model or an unsupported layer: exit 2, one line, no output directory."""
    out = tmp_path / "out"
    bad = np.zeros((4, 4096), np.float32)
    bad[2, 9] = np.inf
    np.save(tmp_path / "bad.npy", bad)
    one_line_error(
        capsys, ["quantize", "--data", str(tmp_path / "bad.npy"), "--out", str(out)], "sample 2 contains NaN or inf"
    )
    np.save(tmp_path / "short.npy", np.zeros((4, 100), np.float32))
    one_line_error(capsys, ["quantize", "--data", str(tmp_path / "short.npy"), "--out", str(out)], "shape (4, 100)")
    one_line_error(
        capsys,
        ["quantize", "--model", str(tmp_path / "none.keras"), "--data", str(tmp_path / "bad.npy"), "--out", str(out)],
        "does not exist",
    )
    import keras

    model = keras.Sequential(
        [
            keras.Input((32, 1)),
            keras.layers.Conv1D(2, 3, activation="relu"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.Flatten(),
            keras.layers.Dense(1),
        ]
    )
    model.save(tmp_path / "bn.keras")
    np.save(tmp_path / "x32.npy", np.zeros((4, 32), np.float32))
    one_line_error(
        capsys,
        ["quantize", "--model", str(tmp_path / "bn.keras"), "--data", str(tmp_path / "x32.npy"), "--out", str(out)],
        "a BatchNormalization must come right after a Conv1D, Conv2D or Dense",
    )
    one_line_error(capsys, ["compare", "--plan", str(tmp_path / "noplan")], "plan.json does not exist")
    assert not out.exists()


def test_compare_layer_conv3_as_a_command():
    """`python -m qverify compare --layer conv3` runs on the demo straight after set-up and passes."""
    proc = subprocess.run(
        [sys.executable, "-m", "qverify", "compare", "--layer", "conv3", "--samples", "0:8"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS: all 27 ops bit-exact on 8 sample(s)" in proc.stdout and "conv3: 0 of" in proc.stdout
