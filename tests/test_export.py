"""Generated headers: notebook macro names, CMSIS layouts, they compile, and they parse back to the plan."""

import copy
import re
import subprocess

import keras
import numpy as np
import pytest

from headers import parse_macros
from qverify import build
from qverify.calibrate import calibrate, prepare_input
from qverify.engines import quantize_input
from qverify.engines.shift import ShiftEngine
from qverify.export import macro_name, sample_header, weights_header, write_headers
from qverify.graph import build_graph
from qverify.plan import make_plan
from tools import require, require_compiler

L = keras.layers


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(4)
    model = keras.Sequential(
        [
            keras.Input((9, 8, 2)),
            L.Conv2D(3, (3, 2), name="conv1"),
            L.ReLU(),
            L.MaxPooling2D((2, 2)),
            L.Flatten(),
            L.Dense(4, name="fc-1"),
        ]
    )
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
        " CONV1_OUT_RSHIFT); return 0; }\n"
    )
    exe = tmp_path / "main"
    subprocess.run(
        [
            "gcc",
            "-std=c99",
            "-Wall",
            "-Werror",
            "-DARM_NN_TRUNCATE",
            f"-I{out}",
            str(tmp_path / "main.c"),
            "-o",
            str(exe),
        ],
        check=True,
    )
    got = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    want = [
        conv.weights.size,
        conv.weights[1],
        x0.ravel()[3],
        run.outputs["conv1"][0].ravel()[2],
        plan.op("fc-1").bias[0],
        conv.out_rshift,
    ]
    assert [int(v) for v in got] == [int(v) for v in want]


def test_macro_names():
    """Layer names become upper-case C identifiers."""
    assert macro_name("conv1") == "CONV1" and macro_name("fc-1.a") == "FC_1_A" and macro_name("1x") == "_1X"


def _compile(cc: str, folder, *flags: str) -> subprocess.CompletedProcess:
    (folder / "unit.c").write_text('#include "weights.h"\nint main(void) { return 0; }\n')
    return subprocess.run(
        [cc, "-std=c99", "-fsyntax-only", *flags, f"-I{folder}", str(folder / "unit.c")], capture_output=True, text=True
    )


@pytest.mark.parametrize("rounding", ["truncate", "round"])
def test_weights_h_refuses_the_other_rounding_build(exported, tmp_path, rounding):
    """A unit including weights.h compiles only with the ARM_NN_TRUNCATE setting of the plan's rounding; the other
    one stops at an #error naming the verified rounding and both fixes; QVERIFY_NO_ROUNDING_CHECK opts out."""
    cc = require_compiler("gcc")
    plan = copy.deepcopy(exported[0])
    plan.rounding = rounding
    (tmp_path / "weights.h").write_text(weights_header(plan))
    right, wrong = (["-DARM_NN_TRUNCATE"], []) if rounding == "truncate" else ([], ["-DARM_NN_TRUNCATE"])
    assert _compile(cc, tmp_path, *right).returncode == 0
    r = _compile(cc, tmp_path, *wrong)
    assert r.returncode != 0 and "#error" in r.stderr
    other = "round" if rounding == "truncate" else "truncate"
    assert f"verified for rounding = {rounding}" in r.stderr
    assert "ARM_NN_TRUNCATE" in r.stderr and f"--rounding {other}" in r.stderr
    assert "QVERIFY_NO_ROUNDING_CHECK" in r.stderr
    assert _compile(cc, tmp_path, *wrong, "-DQVERIFY_NO_ROUNDING_CHECK").returncode == 0


SELFTEST_MAIN = r"""#include <stdio.h>
#include "qv_network.h"
int main(void)
{
    qv_selftest_result_t r;
    int32_t status = qv_selftest(&r);
    printf("status=%ld op=%ld name=%s element=%lu expected=%d got=%d differ=%lu checked=%ld of=%ld\n", (long)status,
           (long)r.op, r.op_name, (unsigned long)r.element, r.expected, r.got, (unsigned long)r.n_differ,
           (long)r.n_checked, (long)r.n_expected);
    return (int)status;
}
"""


def _selftest(cc: str, folder, plan, *flags: str) -> dict[str, str]:
    """network.c (QVERIFY_SELFTEST) + runner + kernels + a main printing qv_selftest()'s result, built and run."""
    from qverify.mcu.codegen import network_c

    (folder / "network.c").write_text(network_c(plan))
    (folder / "main.c").write_text(SELFTEST_MAIN)
    sources = [folder / "main.c", folder / "network.c", build.RUNNER_SOURCE, *sorted(build.CMSIS_SOURCE.glob("*.c"))]
    exe = folder / "selftest"
    subprocess.run(
        [
            cc,
            "-std=c99",
            "-fwrapv",
            "-O1",
            "-Wall",
            "-Werror",
            "-DARM_NN_TRUNCATE",
            "-DQVERIFY_SELFTEST",
            *flags,
            f"-I{folder}",
            f"-I{build.CMSIS_INCLUDE}",
            f"-I{build.CSRC}",
            f"-I{build.FIRMWARE}",
            *map(str, sources),
            "-o",
            str(exe),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60).stdout
    return dict(kv.split("=", 1) for kv in out.split())


def test_network_c_selftest_names_the_edited_op_and_element(exported, tmp_path):
    """qv_selftest() on the host: INPUT_DATA through network.c passes; one expected value edited in
    sample_input_output.h fails naming that op (index and name) and element, expected and got; with
    QVERIFY_SELFTEST_LAST_ONLY only the last op is compared (an edit of the first is not seen, of the last is)."""
    cc = require_compiler("gcc")
    plan, out, x0, run = exported
    folder = tmp_path
    (folder / "weights.h").write_text(weights_header(plan))
    outputs = {k: v[0] for k, v in run.outputs.items()}
    (folder / "sample_input_output.h").write_text(sample_header(plan, x0, outputs))
    ok = _selftest(cc, folder, plan)
    assert ok["status"] == "0" and ok["op"] == "-1" and ok["checked"] == ok["of"] == "2", ok

    for stem, name, element in (("CONV1", "conv1", 5), ("FC_1", "fc-1", 3)):
        text = sample_header(plan, x0, outputs)
        start = text.index("\n", text.index(f"#define {stem} {{"))
        value = list(re.finditer(r"-?\d+", text[start:]))[element]
        good = int(value.group())
        (folder / "sample_input_output.h").write_text(
            text[: start + value.start()] + str(good + 1) + text[start + value.end() :]
        )
        bad = _selftest(cc, folder, plan)
        assert bad == {
            "status": "1",
            "op": str(plan.index(name)),
            "name": name,
            "element": str(element),
            "expected": str(good + 1),
            "got": str(good),
            "differ": "1",
            "checked": "1" if stem == "CONV1" else "2",
            "of": "2",
        }, bad
        last = _selftest(cc, folder, plan, "-DQVERIFY_SELFTEST_LAST_ONLY")
        assert last["of"] == "1" and last["status"] == ("0" if stem == "CONV1" else "1"), last
