"""Generated headers: notebook macro names, CMSIS layouts, they compile, and they parse back to the plan."""

import subprocess

import keras
import numpy as np
import pytest

from headers import parse_macros
from qverify.calibrate import calibrate, prepare_input
from qverify.engines import quantize_input
from qverify.engines.shift import ShiftEngine
from qverify.export import macro_name, write_headers
from qverify.graph import build_graph
from qverify.plan import make_plan
from tools import require

L = keras.layers


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((9, 8, 2)), L.Conv2D(3, (3, 2), name="conv1"), L.ReLU(),
                              L.MaxPooling2D((2, 2)), L.Flatten(), L.Dense(4, name="fc-1")])
    g = build_graph(model)
    x = prepare_input(np.random.default_rng(0).uniform(-1, 1, (16, 9, 8, 2)).astype(np.float32), g)
    plan = make_plan(g, calibrate(g, x))
    xi, _ = quantize_input(plan, x)
    run = ShiftEngine(plan).run(xi[:1])
    out = tmp_path_factory.mktemp("hdr")
    write_headers(plan, out, xi[0], {k: v[0] for k, v in run.outputs.items()})
    return plan, out, xi[0], run


def test_headers_parse_back_to_the_plan(exported):
    """Every weight, bias, shift and sample value in the headers equals the plan / engine arrays."""
    plan, out, x0, run = exported
    w = parse_macros((out / "weights.h").read_text())
    s = parse_macros((out / "sample_input_output.h").read_text())
    for op in plan.ops:
        if not op.weighted:
            continue
        stem = macro_name(op.name)
        assert w[f"{stem}_WT"] == op.weights.tolist()
        assert w[f"{stem}_BIAS"] == op.bias.tolist()
        assert (w[f"{stem}_BIAS_LSHIFT"], w[f"{stem}_OUT_RSHIFT"]) == (op.bias_lshift, op.out_rshift)
        assert s[stem] == run.outputs[op.name][0].ravel().tolist()
    assert s["INPUT_DATA"] == x0.ravel().tolist()
    assert "FC_1_WT" in w and "CONV1_WT" in w


def test_header_carries_version_hash_and_rounding(exported):
    """The header comment names the qverify version, the plan hash and the firmware build it was verified for."""
    plan, out, _, _ = exported
    text = (out / "weights.h").read_text()
    assert plan.hash in text and "qverify 0.1.0" in text and "ARM_NN_TRUNCATE defined" in text


def test_headers_compile_and_hold_the_values(exported, tmp_path):
    """A C program including both headers compiles and sees the same numbers."""
    require("gcc")
    plan, out, x0, run = exported
    conv = plan.op("conv1")
    (tmp_path / "main.c").write_text(
        '#include <stdint.h>\n#include <stdio.h>\n#include "weights.h"\n#include "sample_input_output.h"\n'
        "static const int16_t wt[] = CONV1_WT; static const int16_t in[] = INPUT_DATA;\n"
        "static const int16_t c1[] = CONV1; static const int16_t fc[] = FC_1_BIAS;\n"
        'int main(void) { printf("%d %d %d %d %d %d\\n", (int)(sizeof wt / 2), wt[1], in[3], c1[2], fc[0],'
        " CONV1_OUT_RSHIFT); return 0; }\n")
    exe = tmp_path / "main"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", f"-I{out}", str(tmp_path / "main.c"), "-o", str(exe)],
                   check=True)
    got = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    want = [conv.weights.size, conv.weights[1], x0.ravel()[3], run.outputs["conv1"][0].ravel()[2],
            plan.op("fc-1").bias[0], conv.out_rshift]
    assert [int(v) for v in got] == [int(v) for v in want]


def test_macro_names():
    """Layer names become upper-case C identifiers."""
    assert macro_name("conv1") == "CONV1" and macro_name("fc-1.a") == "FC_1_A" and macro_name("1x") == "_1X"
