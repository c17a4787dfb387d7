"""The rest of the legacy q15 dense API (issue 13 item 3): arm_fully_connected_q15_opt with its interleaved weight
order, and arm_fully_connected_mat_q7_vec_q15 and its _opt with q7 weights and bias (per-op weight bits).

Held: the interleave against Arm's documented examples and as a permutation (a property, shown to catch a wrong
order); the plan at 8 bits (formats, ranges, hash, refusals); one network calling all four functions bit-exact
between the int64 reference, the shift model and every native path, and on the emulated Cortex-M4 and M3; the
header written in each function's order and width and read back to the same plan; the footprint; the command
line and the gate's key. The kernels themselves against the reference: tests/test_native_kernels.py; every dense
function in the property suite: strategies.dense_cases.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qverify import kernels, layout
from qverify.calibrate import calibrate, prepare_input
from qverify.cheader import HeaderError, read_header
from qverify.engines import make_engine, quantize_input
from qverify.errors import PlanError
from qverify.export import weights_header
from qverify.footprint import footprint
from qverify.graph import build_graph
from qverify.header_plan import plan_from_header
from qverify.plan import QuantPlan, make_plan
from qverify.qformat import frac_bits
from test_layers import bit_exact, data, target_bit_exact

L = keras.layers
Q15, Q15_OPT = "arm_fully_connected_q15", "arm_fully_connected_q15_opt"
Q7, Q7_OPT = "arm_fully_connected_mat_q7_vec_q15", "arm_fully_connected_mat_q7_vec_q15_opt"
# one network, one dense op per function; fc2 and fc4 have 4k+2 and 4k+3 rows (a group of 4 and leftovers) and
# odd inputs where the interleave has a last column of its own
FUNCTIONS = {"fc1": Q15, "fc2": Q15_OPT, "fc3": Q7, "fc4": Q7_OPT}


# ---------------------------------------------------------------- the interleave


def _names(rows: int, cols: int) -> np.ndarray:
    return np.array([f"a{r}{c}" for r in range(1, rows + 1) for c in range(1, cols + 1)])


def test_q15_interleave_is_arms_documented_example():
    """arm_fully_connected_q15_opt's documentation: six rows of three columns are stored so."""
    got = " ".join(layout.interleave(_names(6, 3), 3, 6, "q15x4"))
    assert got == "a11 a12 a21 a22 a31 a32 a41 a42 a13 a23 a33 a43 a51 a52 a53 a61 a62 a63"


def test_q7_interleave_is_arms_documented_example():
    """arm_fully_connected_mat_q7_vec_q15_opt's documentation: the first four rows of seven columns, then the
    fifth row in its own order."""
    got = " ".join(layout.interleave(_names(5, 7), 7, 5, "q7x4"))
    assert got == (
        "a11 a21 a12 a22 a31 a41 a32 a42 a13 a23 a14 a24 a33 a43 a34 a44 a15 a25 a16 a26 a35 a45 a36 a46 "
        "a17 a27 a37 a47 a51 a52 a53 a54 a55 a56 a57"
    )


def _rule(order: str, n_in: int, n_out: int, r: int, c: int) -> int:
    """Where weight (r, c) is stored, from the documented rule one element at a time."""
    groups = n_out // 4
    if r >= 4 * groups:
        return 4 * groups * n_in + (r - 4 * groups) * n_in + c
    g, i = divmod(r, 4)
    base = g * 4 * n_in
    if c >= n_in - n_in % 2:  # the odd last column: rows 0..3
        return base + 8 * (n_in // 2) + i
    k, j = divmod(c, 2)
    within = 2 * i + j if order == "q15x4" else {0: 0, 1: 1, 2: 4, 3: 5}[i] + 2 * j
    return base + 8 * k + within


def check_interleave(interleave, deinterleave, order: str, n_in: int, n_out: int) -> None:
    flat = np.arange(n_in * n_out)
    stored = interleave(flat, n_in, n_out, order)
    assert sorted(stored) == list(flat), "not a permutation"
    for r in range(n_out):
        for c in range(n_in):
            pos = _rule(order, n_in, n_out, r, c)
            assert stored[pos] == r * n_in + c, f"{order} {n_out}x{n_in}: weight ({r}, {c}) not at {pos}"
    assert np.array_equal(deinterleave(stored, n_in, n_out, order), flat)


@given(order=st.sampled_from(["q15x4", "q7x4"]), n_in=st.integers(1, 19), n_out=st.integers(1, 14))
def test_property_interleave_follows_the_rule(order, n_in, n_out):
    """Every element lands where the documented rule puts it, and deinterleave undoes it."""
    check_interleave(layout.interleave, layout.deinterleave, order, n_in, n_out)


def test_interleave_check_catches_a_wrong_order(monkeypatch):
    """The property on a broken interleave (q7x4 with q15x4's sequence, Arm's other _opt order) fails."""
    from hypothesis import find

    broken = dict(layout._PAIR_ORDER, q7x4=layout._PAIR_ORDER["q15x4"])
    monkeypatch.setattr(layout, "_PAIR_ORDER", broken)

    def fails(case):
        try:
            check_interleave(layout.interleave, layout.deinterleave, "q7x4", *case)
        except AssertionError:
            return True
        return False

    assert find(st.tuples(st.integers(1, 19), st.integers(1, 14)), fails) == (2, 4)  # the smallest: one pair


# ---------------------------------------------------------------- the plan


@pytest.fixture(scope="module")
def net():
    """(graph, ranges, float input) of four dense layers."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(11)
    bias = {"bias_initializer": keras.initializers.RandomUniform(-0.5, 0.5)}
    model = keras.Sequential(
        [
            keras.Input((7,)),
            L.Dense(9, activation="relu", name="fc1", **bias),
            L.Dense(6, activation="relu", name="fc2", **bias),
            L.Dense(5, name="fc3", **bias),
            L.Dense(7, name="fc4", **bias),
        ]
    )
    graph = build_graph(model)
    x = prepare_input(data((7,), n=16, scale=2.0), graph)
    return graph, calibrate(graph, x), x


def plan_for(net, rounding="truncate", functions=FUNCTIONS, weight_bits=None):
    graph, ranges, x = net
    plan = make_plan(
        graph, ranges, rounding=rounding, fit_accumulator=True, declared=functions, weight_bits=weight_bits
    )
    return plan, quantize_input(plan, x)[0]


def test_q7_functions_quantize_to_8_bits(net):
    """A declared q7 function makes its op's weights and bias 8-bit: formats for 8 bits, values in q7_t."""
    plan, _ = plan_for(net)
    assert [op.function for op in plan.ops if op.weighted] == list(FUNCTIONS.values())
    graph = net[0]
    for name in FUNCTIONS:
        op, gop = plan.op(name), next(o for o in graph.ops if o.name == name)
        bits = 8 if name in ("fc3", "fc4") else 16
        assert op.weight_bits == bits
        top = 1 << (bits - 1)
        assert -top <= op.weights.min() and op.weights.max() < top and -top <= op.bias.min() and op.bias.max() < top
        rule = frac_bits(gop.weights.min(), gop.weights.max(), bits)  # the format rule at the op's width
        fitted = any("weights quantized at f_w" in a for a in op.adjustments)  # fit_accumulator lowered it
        assert op.w_frac == rule or (fitted and op.w_frac < rule), (name, op.w_frac, rule)
        assert op.b_frac >= frac_bits(gop.bias.min(), gop.bias.max(), bits) or op.bias_lshift == 0
        assert op.bias_lshift == op.w_frac + op.in_frac - op.b_frac


def test_weight_bits_choose_and_hash(net):
    """--weight-bits alone picks the q7 function in [out][in] order; an _opt function is never chosen; plans at
    16 bits keep the hash they had before weight bits existed (the field is not written)."""
    plan, _ = plan_for(net, functions={}, weight_bits={"fc3": 8})
    assert [op.function for op in plan.ops if op.weighted] == [Q15, Q15, Q7, Q15]
    plain, _ = plan_for(net, functions={})
    assert all("weight_bits" not in op for op in plain._meta()["ops"])
    assert plan._meta()["ops"][[o.name for o in plan.ops].index("fc3")]["weight_bits"] == 8
    assert plan.hash != plain.hash


@pytest.mark.parametrize(
    "functions, weight_bits, match",
    [
        ({}, {"fc9": 8}, "no conv/dense op 'fc9'"),
        ({}, {"fc1": 4}, "expected one of 8, 16"),
        ({"fc3": Q7}, {"fc3": 16}, "takes 8-bit weights, but weight bits fc3=16"),
        ({"fc1": Q15_OPT}, {"fc1": 8}, "takes 16-bit weights, but weight bits fc1=8"),
    ],
)
def test_weight_bits_refusals(net, functions, weight_bits, match):
    with pytest.raises(PlanError, match=match):
        plan_for(net, functions=functions, weight_bits=weight_bits)


def test_conv_weight_bits_refused():
    keras.backend.clear_session()
    model = keras.Sequential([keras.Input((16, 1)), L.Conv1D(2, 3, name="c1"), L.Flatten(), L.Dense(2)])
    graph = build_graph(model)
    x = prepare_input(data((16, 1)), graph)
    with pytest.raises(PlanError, match="no CMSIS-NN q15 function computes a conv op with 8-bit weights"):
        make_plan(graph, calibrate(graph, x), weight_bits={"c1": 8})


def test_a_q7_function_on_a_16_bit_plan_is_refused(net):
    """Declaring a q7 function on a plan already quantized at 16 bits: one line naming the fix."""
    plan, _ = plan_for(net, functions={})
    with pytest.raises(PlanError, match=r"fc1.*takes 8-bit weights, the op's are 16-bit.*--weight-bits fc1=8"):
        kernels.assign(plan, {"fc1": Q7})


def test_plan_round_trips(net, tmp_path):
    plan, _ = plan_for(net)
    plan.save(tmp_path)
    back = QuantPlan.load(tmp_path)
    assert back.hash == plan.hash and back.op("fc4").weight_bits == 8 and back.op("fc4").function == Q7_OPT


def test_footprint_counts_bytes_per_width(net):
    plan, _ = plan_for(net)
    rows = {r.name: r for r in footprint(plan).ops}
    assert (rows["fc1"].weight_bytes, rows["fc1"].bias_bytes) == (2 * 7 * 9, 2 * 9)
    assert (rows["fc3"].weight_bytes, rows["fc3"].bias_bytes) == (6 * 5, 5)
    assert (rows["fc4"].weight_bytes, rows["fc4"].bias_bytes) == (5 * 7, 7)


# ---------------------------------------------------------------- the engines


@pytest.mark.parametrize("rounding", ["truncate", "round"])
def test_every_dense_function_bit_exact(net, rounding):
    """The int64 reference, the shift model and every native path agree on every op, propagated and isolated."""
    plan, x_int = plan_for(net, rounding)
    bit_exact(plan, x_int)


def test_native_run_catches_weights_in_the_plain_order(net, monkeypatch):
    """Fed the [out][in] order instead of its interleave, each _opt function computes other outputs: the compare
    that holds the native engine to the shift model sees it (the order is verified, not assumed)."""
    from qverify.compare import run_compare
    from qverify.opkinds import FUNCTIONS as ALL

    plan, x_int = plan_for(net)
    shift = make_engine("shift", plan)
    real = kernels.stored

    def plain_order(op):
        w, b = real(op)
        return (np.asarray(op.weights).astype(w.dtype), b) if ALL[op.function].order else (w, b)

    monkeypatch.setattr(kernels, "stored", plain_order)
    c = run_compare(plan, shift, make_engine("native", plan, kernels="dsp"), x_int, list(range(len(x_int))))
    assert not c.ok and c.first_divergent.name == "fc2"


# ---------------------------------------------------------------- the header


def test_header_in_each_functions_order_and_width(net, tmp_path):
    """weights.h holds fc2's and fc4's weights interleaved and fc3's and fc4's as q7 values; read back, it is
    the same plan (same hash)."""
    plan, _ = plan_for(net)
    text = weights_header(plan)
    header = tmp_path / "weights.h"
    header.write_text(text)
    read = read_header(header)
    fc2 = plan.op("fc2")
    assert np.array_equal(read.array("FC2_WT"), layout.interleave(fc2.weights, 9, 6, "q15x4"))
    assert not np.array_equal(read.array("FC2_WT"), fc2.weights)
    assert np.array_equal(read.array("FC4_WT"), layout.interleave(plan.op("fc4").weights, 5, 7, "q7x4"))
    assert "FC3_WT and FC3_BIAS are q7_t arrays" in text and "FC4_WT and FC4_BIAS are q7_t arrays" in text
    assert f"FC2_WT is in {Q15_OPT}'s interleaved order" in text
    assert plan_from_header(header, plan).plan.hash == plan.hash


def test_header_q7_value_out_of_range_is_one_line(net, tmp_path):
    plan, _ = plan_for(net)
    text = weights_header(plan)
    start = text.index("#define FC3_WT {")
    first = text.index("    ", start) + 4
    end = text.index(",", first)
    header = tmp_path / "weights.h"
    header.write_text(text[:first] + "200" + text[end:])
    with pytest.raises(HeaderError, match=r"weights.h:\d+.*FC3_WT.*element 0 is 200, outside q7 \[-128, 127\]"):
        plan_from_header(header, plan)


# ---------------------------------------------------------------- the emulated Cortex-M


def test_every_dense_function_bit_exact_on_the_emulated_cortex_m(net, tmp_path, monkeypatch):
    """network.c passes q7 arrays in weights_q7 / bias_q7 and the interleaved ones as weights.h holds them: the
    Cortex-M4 (DSP) and M3 (plain) builds under QEMU equal the shift model on every op."""
    from qverify.mcu import missing_reason
    from tools import absent

    reason = missing_reason()
    if reason is not None:
        absent(f"the target toolchain is missing: {reason}")
    monkeypatch.setenv("QVERIFY_CACHE_DIR", str(tmp_path))
    target_bit_exact(*plan_for(net, "round"))


def test_header_in_the_wrong_order_is_named(net, tmp_path):
    """A header of [out][in] weights for an _opt function, or interleaved ones for a plain function: diff-header
    names the layout, not 'from another model'."""
    from qverify.header import read_weights
    from qverify.header_diff import diff_weights

    plan, _ = plan_for(net)
    plain = plan_for(net, functions={"fc3": Q7, "fc4": Q7})[0]  # the same integers, every op in [out][in]
    for written, read_as, op, cause in [
        (plain, plan, "fc2", f"layout: [out][in], but {Q15_OPT} reads its weights interleaved"),
        (plain, plan, "fc4", f"layout: [out][in], but {Q7_OPT} reads its weights interleaved"),
        (plan, plain, "fc2", f"layout: an _opt function's interleave (q15x4); {Q15} reads [out][in]"),
    ]:
        header = tmp_path / "weights.h"
        header.write_text(weights_header(written))
        diff = diff_weights(read_weights(header, read_as), read_as)
        parts = {d.op: d.parts for d in diff.ops}[op]
        assert parts and parts[0].part == "weights" and parts[0].cause.startswith(cause), (op, parts)
