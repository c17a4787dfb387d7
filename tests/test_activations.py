"""On-device activations (issue 13 item 2): arm_nn_activations_direct_q15 (sigmoid, tanh) and arm_softmax_q15.

Each is held to a numpy int64 reference written here from the documented definition (docs/design.md rules 10 and
11; it shares no code with the engines): the shift model on every input value and int_width, every native path
bit-exact against the shift model, the compiled table against the definition, the contract's int_width and
dim_vec limits, the graph mapping of Keras models (mid-network and final, --final-activation float|device), a
Hypothesis property over sizes and int_width, and the emulated Cortex-M.
"""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from native_paths import NATIVE_PATHS, native_engine
from qverify import kernels
from qverify.calibrate import calibrate, prepare_input
from qverify.compare import format_detail, format_table, run_compare
from qverify.engines import make_engine, quantize_input
from qverify.errors import KernelFault, ModelError, PlanError
from qverify.floatops import run_chain
from qverify.graph import build_graph
from qverify.plan import make_plan
from strategies import examples, op_plan, plan_of, random_q15

L = keras.layers


# ---------------------------------------------------------------- the int64 reference (from the definition)


def ref_table(name: str) -> np.ndarray:
    """Entry k & 0xFF = round(2^15 f(k / 16)), k = -128..127, saturated to q15."""
    k = np.where(np.arange(256) < 128, np.arange(256), np.arange(256) - 256) / 16.0
    f = 1.0 / (1.0 + np.exp(-k)) if name == "sigmoid" else np.tanh(k)
    return np.clip(np.floor(f * 32768.0 + 0.5), -32768, 32767).astype(np.int64)


def ref_direct(x: np.ndarray, int_width: int, name: str) -> np.ndarray:
    """The table entry above the low 11 - int_width bits, interpolated linearly to the next one by them."""
    t = ref_table(name)
    s = 11 - int_width
    v = x.astype(np.int64)
    k, w = v // (1 << s), v % (1 << s)  # floor division: the arithmetic shift and the low bits
    lo, hi = t[k % 256], t[(k + 1) % 256]
    out = np.where(k == 127, lo, ((2**s - w) * lo + w * hi) // 2**s)
    return out.astype(np.int16)


def ref_softmax(x: np.ndarray) -> np.ndarray:
    """Base-2 softmax on the integers over the last axis, one row at a time in Python integers."""
    flat = x.reshape(-1, x.shape[-1]).astype(np.int64)
    out = np.zeros_like(flat)
    for r, row in enumerate(flat):
        base = int(row.max()) - 16
        total = sum(2 ** int(v - base) for v in row if v > base)
        scale = 2**32 // total
        out[r] = [min(scale // 2 ** int(17 - (v - base)), 32767) if v > base else 0 for v in row]
    return out.reshape(x.shape).astype(np.int16)


def activation_plan(kind: str, shape, in_frac: int):
    op = op_plan(kind, shape)
    op.in_frac, op.out_frac = in_frac, 15
    plan = plan_of([op])
    plan.input_frac = in_frac
    kernels.assign(plan)
    return plan


def all_native_equal_shift(plan, x):
    shift = make_engine("shift", plan)
    samples = list(range(len(x)))
    for path in NATIVE_PATHS:
        c = run_compare(plan, shift, native_engine(plan, path), x, samples, "propagated")
        assert c.ok, f"native {path}:\n{format_table(c)}\n{format_detail(c.first_divergent)}"


EVERY_Q15 = np.arange(-32768, 32768, dtype=np.int16).reshape(1, 256, 1, 256)


# ---------------------------------------------------------------- sigmoid and tanh


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
@pytest.mark.parametrize("int_width", [0, 1, 2, 3])
def test_shift_model_equals_reference_on_every_input(name, int_width):
    """Every one of the 65536 q15 inputs, at every legal int_width (more than 32768 values: chunked calls)."""
    plan = activation_plan(name, (256, 1, 256), 15 - int_width)
    got = make_engine("shift", plan).run(EVERY_Q15).outputs[plan.ops[0].name]
    assert np.array_equal(got, ref_direct(EVERY_Q15, int_width, name))
    all_native_equal_shift(plan, EVERY_Q15)


def test_reference_values_follow_the_definition():
    """Spot values: f(0) on the grid, the interpolation midpoint, the last entry kept, the negative end."""
    assert ref_direct(np.array([0], np.int16), 3, "sigmoid")[0] == 16384
    assert ref_direct(np.array([0], np.int16), 3, "tanh")[0] == 0
    half = ref_direct(np.array([128], np.int16), 3, "sigmoid")[0]  # halfway between f(0) and f(1/16)
    assert half == (16384 + ref_table("sigmoid")[1]) // 2
    assert ref_direct(np.array([32767], np.int16), 3, "sigmoid")[0] == ref_table("sigmoid")[127]
    assert ref_direct(np.array([-32768], np.int16), 3, "tanh")[0] == -32768


@pytest.mark.parametrize("path", ["dsp", "plain", "fast"])
def test_compiled_tables_are_the_definition(path):
    """The function on the grid points k << 8 at int_width 3 (no interpolation) returns the table: the C table
    is round(2^15 f(k/16)) for every entry (also what a --cmsis-root build's own table is read as)."""
    from qverify import native_lib

    nl = native_lib.load(path, "truncate")
    grid = (np.arange(-128, 128, dtype=np.int64) << 8).astype(np.int16)
    for name, kind in (("sigmoid", nl.lib.ARM_SIGMOID), ("tanh", nl.lib.ARM_TANH)):
        buf = grid.copy()
        nl.lib.arm_nn_activations_direct_q15(nl.ffi.cast("int16_t *", buf.ctypes.data), len(buf), 3, kind)
        assert np.array_equal(buf, ref_table(name)[np.arange(-128, 128) % 256]), (path, name)


@pytest.mark.parametrize(
    "in_frac,match",
    [
        (11, r"int_width at most 3.*input Q4\.11, int_width 4\).*wraps it to uint8_t.*sigmoid\(-7\)"),
        (0, r"int_width at most 3.*int_width 15\).*shift 11 - int_width is negative"),
        (16, r"int_width 0 to 3.*int_width -1\).*uint16_t: -1 becomes 65535"),
    ],
)
def test_int_width_beyond_the_table_is_refused(in_frac, match):
    plan = activation_plan("sigmoid", (1, 1, 8), in_frac)
    found = kernels.check_plan(plan)
    assert len(found) == 1 and found[0].function == "arm_nn_activations_direct_q15"
    assert re.search(match, str(found[0])), str(found[0])
    with pytest.raises(PlanError, match="int_width"):
        make_engine("shift", plan).run(np.zeros((1, 1, 1, 8), np.int16))
    with pytest.raises(KernelFault, match="ARM_MATH_ARGUMENT_ERROR"):  # the runner refuses it too
        native_engine(plan, "plain").run(np.zeros((1, 1, 1, 8), np.int16))


@st.composite
def direct_cases(draw):
    h, w, c = draw(st.integers(1, 6)), draw(st.integers(1, 6)), draw(st.integers(1, 40))
    width = draw(st.integers(0, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = random_q15(rng, (3, h, w, c), scale=draw(st.sampled_from([4, 300, 1 << 12, 1 << 15])))
    return draw(st.sampled_from(["sigmoid", "tanh"])), width, x


@settings(max_examples=examples(0.3), deadline=None)
@given(case=direct_cases())
def test_property_direct_activation(case):
    """Property: any shape, int_width 0..3 and input spread: shift == int64 reference == every native path."""
    name, width, x = case
    plan = activation_plan(name, x.shape[1:], 15 - width)
    got = make_engine("shift", plan).run(x).outputs[plan.ops[0].name]
    assert np.array_equal(got, ref_direct(x, width, name))
    all_native_equal_shift(plan, x)


# ---------------------------------------------------------------- softmax


@st.composite
def softmax_cases(draw):
    h, w, c = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 64))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = random_q15(rng, (3, h, w, c), scale=draw(st.sampled_from([2, 9, 20, 1 << 15])))
    if draw(st.booleans()):  # ties at the top
        x[..., : max(1, c // 2)] = x.max()
    return x


@settings(max_examples=examples(0.3), deadline=None)
@given(x=softmax_cases())
def test_property_softmax(x):
    """Property: any vector length, spread and ties, per pixel: shift == int64 reference == every native path."""
    plan = activation_plan("softmax", x.shape[1:], 10)
    got = make_engine("shift", plan).run(x).outputs[plan.ops[0].name]
    assert np.array_equal(got, ref_softmax(x))
    all_native_equal_shift(plan, x)


def test_softmax_documented_values():
    """y_i = 2^x_i / sum 2^x_j in Q0.15: one value alone saturates at 32767; two equal values are halves; one
    more is twice as likely; 16 or more below the top count for nothing."""
    x = np.array([[5, -40, 5, 6, 6 - 16]], np.int16).reshape(1, 1, 1, 5)
    got = ref_softmax(x)[0, 0, 0].tolist()
    assert got == [8192, 0, 8192, 16384, 0]
    plan = activation_plan("softmax", (1, 1, 5), 0)
    assert make_engine("shift", plan).run(x).outputs[plan.ops[0].name][0, 0, 0].tolist() == got
    assert ref_softmax(np.array([7], np.int16).reshape(1, 1, 1, 1))[0, 0, 0, 0] == 32767


def test_softmax_dim_vec_limit():
    plan = activation_plan("softmax", (1, 1, 32768), 8)
    (v,) = kernels.check_plan(plan)
    assert "dim_vec (the channels) up to 32767 (this op: 32768)" in str(v)


# ---------------------------------------------------------------- Keras models: the graph and the plan


def _model(final="sigmoid", units=1):
    keras.backend.clear_session()
    keras.utils.set_random_seed(11)
    return keras.Sequential(
        [
            keras.Input((12, 2)),
            L.Conv1D(4, 3, activation="tanh", name="c1"),
            L.Flatten(),
            L.Dense(6, name="d1"),
            L.Activation("sigmoid", name="s1"),
            L.Dense(units, activation=final, name="out"),
        ]
    )


def _data(n=64):
    return np.random.default_rng(0).uniform(-2, 2, (n, 12, 2)).astype(np.float32)


@pytest.mark.parametrize("final,units", [("sigmoid", 1), ("softmax", 4)])
def test_keras_graph_device_and_float(final, units):
    """Device mode: the mid-network tanh/sigmoid and the final activation are ops; the float ops equal Keras's
    output including the final activation. Float mode keeps the final one for after the plan."""
    model, x = _model(final, units), _data(16)
    g = build_graph(model, "device")
    assert [(op.name, op.kind) for op in g.ops] == [
        ("c1", "conv"),
        ("c1_tanh", "tanh"),
        ("flatten", "flatten"),
        ("d1", "dense"),
        ("s1", "sigmoid"),
        ("out", "dense"),
        (f"out_{final}", final),
    ]
    assert g.final_activation is None
    ((_, outs),) = list(run_chain(g.ops, prepare_input(x, g)))
    np.testing.assert_allclose(outs[-1].reshape(len(x), -1), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    g_float = build_graph(model, "float")
    assert g_float.final_activation == final and g_float.ops[-1].kind == "dense"
    assert [op.kind for op in g_float.ops][:5] == ["conv", "tanh", "flatten", "dense", "sigmoid"]
    with pytest.raises(ModelError, match="final activation 'gpu'"):
        build_graph(model, "gpu")


@pytest.mark.parametrize("final,units", [("sigmoid", 1), ("softmax", 4)])
def test_quantized_plan_formats_and_bit_exact(final, units):
    """The op before a sigmoid/tanh gets a format of int_width 0..3 (an adjustment), every activation outputs
    Q0.15; the plan is bit-exact between the shift model and every native path, and the device's sigmoid is
    close to Keras's."""
    model, x = _model(final, units), _data()
    g = build_graph(model, "device")
    xf = prepare_input(x, g)
    ranges = calibrate(g, xf)
    # a firmware that may build CMSIS_5 5.4.0-5.7.0: their sigmoid/tanh saturate the table index
    old = make_plan(g, ranges, fit_accumulator=True)
    broken = {v.op for v in kernels.check_plan(old)}
    assert broken == {"c1_tanh", "s1"} | ({"out_sigmoid"} if final == "sigmoid" else set())
    assert all("5.8.0 or later" in v.condition for v in kernels.check_plan(old))
    plan = make_plan(g, ranges, fit_accumulator=True, cmsis="5.8.0")
    assert plan.hash != old.hash
    ops = {op.name: op for op in plan.ops}
    for name in ("c1_tanh", "s1", f"out_{final}"):
        assert ops[name].out_frac == 15 and ops[name].function == kernels.PREFERENCE[ops[name].kind][0].name
    for name in ("c1_tanh", "s1"):
        assert 12 <= ops[name].in_frac <= 15
    assert not kernels.check_plan(plan)
    x_int, _ = quantize_input(plan, xf)
    all_native_equal_shift(plan, x_int)
    out = make_engine("shift", plan).run(x_int).outputs[plan.ops[-1].name].reshape(len(x), -1) / 32768.0
    if final == "sigmoid":
        np.testing.assert_allclose(out, model.predict(x, verbose=0), atol=0.05)
    else:
        assert "base 2" in " ".join(ops["out_softmax"].adjustments)
        assert np.all(out.sum(axis=1) <= 1.0) and np.all(out.sum(axis=1) > 0.99)


def test_softmax_elsewhere_or_on_another_axis_is_refused():
    with pytest.raises(ModelError, match="only as the last layer"):
        build_graph(keras.Sequential([keras.Input((4,)), L.Softmax(), L.Dense(2)]), "device")
    with pytest.raises(ModelError, match=r"axis 1 is not the channel axis"):
        build_graph(keras.Sequential([keras.Input((4, 3)), L.Softmax(axis=1)]), "device")


# ---------------------------------------------------------------- the emulated Cortex-M


def test_activations_bit_exact_on_the_emulated_cortex_m(tmp_path, monkeypatch):
    """network.c runs both functions (int_width in clamp_max): Cortex-M4 and M3 under QEMU equal the shift model."""
    from qverify.compare import compare_results
    from qverify.mcu import missing_reason
    from tools import absent

    reason = missing_reason()
    if reason is not None:
        absent(f"the target toolchain is missing: {reason}")
    monkeypatch.setenv("QVERIFY_CACHE_DIR", str(tmp_path))
    from qverify.engines.target import TargetEngine

    model, x = _model("softmax", 4), _data(6)
    g = build_graph(model, "device")
    xf = prepare_input(x, g)
    plan = make_plan(g, calibrate(g, xf), fit_accumulator=True)
    x_int, _ = quantize_input(plan, xf)
    shift = make_engine("shift", plan).run(x_int)
    for cpu in ("cortex-m4", "cortex-m3"):
        got = TargetEngine(plan, cpu=cpu).run(x_int)
        bad = [
            (c.name, c.mismatches) for c in compare_results(plan, shift, got, list(range(len(x_int)))) if c.mismatches
        ]
        assert not bad, (cpu, bad)
