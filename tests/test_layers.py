"""The layers of issue 13 item 1: TensorFlow's asymmetric 'same' padding, BatchNormalization folded into the op
before it, ZeroPadding folded into the conv after it, Reshape, ReLU6, and the refusals.

Each layer is held three ways: the graph's float ops equal the Keras model (float32 tolerance); the quantized
plan runs bit-exact between the shift model and every native path, propagated and isolated; and the shift model
equals the numpy int64 reference (tests/reference.py, fed an input padded by hand where the padding is TensorFlow's
asymmetric split). Hypothesis properties cover the shapes of the padding and of ReLU6 on hand-made plans.
"""

from __future__ import annotations

import copy

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference as ref
from native_paths import NATIVE_PATHS, native_engine
from qverify import kernels
from qverify.calibrate import calibrate, prepare_input
from qverify.compare import format_detail, format_table, run_compare
from qverify.engines import make_engine, quantize_input
from qverify.errors import ModelError, PlanError
from qverify.floatops import run_chain
from qverify.graph import build_graph
from qverify.opkinds import conv_pads, relu6_max, window
from qverify.plan import make_plan
from qverify.plancheck import validate
from strategies import examples, op_plan, plan_of, random_q15

L = keras.layers


# ---------------------------------------------------------------- helpers


def float_equal(model, x, rtol=1e-5, atol=1e-5):
    """The graph's float ops give the Keras model's output (before a final activation)."""
    g = build_graph(model)
    ((_, outs),) = list(run_chain(g.ops, prepare_input(x, g)))
    got = outs[-1].reshape(len(x), -1)
    want = model.predict(x, verbose=0).reshape(len(x), -1)
    if g.final_activation == "softmax":
        got = keras.ops.softmax(got).numpy()
    elif g.final_activation == "sigmoid":
        got = keras.ops.sigmoid(got).numpy()
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    return g


def quantized(model, x, rounding="truncate"):
    """(graph, plan, int16 input): the product's own path, fit_accumulator on as `qverify quantize` has it."""
    g = build_graph(model)
    xf = prepare_input(x, g)
    plan = make_plan(g, calibrate(g, xf), rounding=rounding, fit_accumulator=True)
    x_int, _ = quantize_input(plan, xf)
    return g, plan, x_int


def reference_run(plan, x_int):
    """Every op by the numpy int64 reference; a conv's input padded by hand as conv_pads says (the reference pads
    symmetrically, so it is given (0, 0) and an input already padded [p, p_after])."""
    outs, h = {}, x_int
    for op in plan.ops:
        if op.kind == "conv":
            (top, bottom), (left, right) = conv_pads(op)
            padded = np.pad(h, ((0, 0), (top, bottom), (left, right), (0, 0)))
            flat = copy.copy(op)
            flat.pad = (0, 0)
            out = ref.run_op(flat, padded, plan.rounding)[0]
        elif op.kind == "relu6":
            out = np.clip(h, 0, relu6_max(op.out_frac)).astype(np.int16)
        else:
            out = ref.run_op(op, h, plan.rounding)[0]
        assert out.shape[1:] == tuple(op.out_shape), (op.name, out.shape, op.out_shape)
        outs[op.name] = out
        h = out
    return outs


def bit_exact(plan, x_int):
    """The shift model equals the int64 reference, and every native path equals the shift model on every op."""
    validate(plan)
    shift = make_engine("shift", plan)
    got = shift.run(x_int)
    for name, want in reference_run(plan, x_int).items():
        assert np.array_equal(got.outputs[name], want), f"shift model differs from the int64 reference at {name}"
    samples = list(range(len(x_int)))
    for path in NATIVE_PATHS:
        native = native_engine(plan, path)
        for mode in ("propagated", "isolated"):
            c = run_compare(plan, shift, native, x_int, samples, mode)
            assert c.ok, f"native {path}, {mode}:\n{format_table(c)}\n{format_detail(c.first_divergent)}"


def data(shape, n=8, seed=0, scale=1.0):
    return np.random.default_rng(seed).uniform(-scale, scale, (n, *shape)).astype(np.float32)


def _seeded():
    keras.backend.clear_session()
    keras.utils.set_random_seed(7)


# ---------------------------------------------------------------- 'same' padding, TensorFlow's split


def kws_1d():
    """The keyword-spotting case: input 64, kernel 5, stride 2, 'same' (TensorFlow pads 1 before, 2 after)."""
    _seeded()
    return keras.Sequential(
        [
            keras.Input((64,)),
            L.Reshape((64, 1)),
            L.Conv1D(8, 5, strides=2, padding="same", activation="relu", name="k1"),
            L.Conv1D(6, 3, strides=2, padding="same", name="k2"),
            L.ReLU(),
            L.GlobalAveragePooling1D(),
            L.Dense(3),
        ]
    )


def strided_2d(channels=2):
    _seeded()
    return keras.Sequential(
        [
            keras.Input((16, 13, channels)),
            L.Conv2D(4, (3, 4), strides=2, padding="same", activation="relu", name="c1"),
            L.Conv2D(3, 2, strides=(1, 2), padding="same", name="c2"),
            L.Flatten(),
            L.Dense(2),
        ]
    )


def test_stride2_same_conv1d_keyword_spotting():
    """Conv1D(k 5, s 2, 'same') on 64 values: pad 1 with TensorFlow's output of 32; float-equal to Keras and
    bit-exact (shift, int64 reference, every native path)."""
    model = kws_1d()
    g = float_equal(model, data((64,)))
    k1, k2 = g.ops[0], g.ops[2]
    assert (k1.in_shape, k1.pad, k1.out_shape) == ((64, 1, 1), (1, 0), (32, 1, 8))
    assert conv_pads(k1) == ((1, 2), (0, 0))
    assert (k2.pad, k2.out_shape, conv_pads(k2)) == ((0, 0), (16, 1, 6), ((0, 1), (0, 0)))
    _, plan, x_int = quantized(model, data((64,), n=16))
    assert window(64, 5, 2, 1) == 31  # the symmetric window would give one output less
    bit_exact(plan, x_int)
    for rounding in ("round",):
        bit_exact(quantized(model, data((64,), n=16), rounding)[1], x_int)


@pytest.mark.parametrize("channels", [2, 3])
def test_stride2_same_conv2d(channels):
    """Conv2D 'same' with odd totals on both axes (and even channels, so the fast kernels are chosen, or odd)."""
    model = strided_2d(channels)
    g = float_equal(model, data((16, 13, channels)))
    c1 = g.ops[0]
    assert (c1.pad, c1.out_shape) == ((0, 1), (8, 7, 4)) and conv_pads(c1) == ((0, 1), (1, 2))
    _, plan, x_int = quantized(model, data((16, 13, channels), n=6))
    if channels == 2:
        assert "fast" in plan.ops[0].function or "basic" in plan.ops[0].function
    bit_exact(plan, x_int)


def test_square_function_takes_the_tensorflow_split():
    """A square image, kernel and stride: Arm's square functions get pad = total // 2 and the output size, and the
    implied after-pad is the same on both axes, so the call is honest."""
    _seeded()
    model = keras.Sequential(
        [keras.Input((8, 8, 2)), L.Conv2D(2, 3, strides=2, padding="same", name="sq"), L.Flatten(), L.Dense(2)]
    )
    float_equal(model, data((8, 8, 2)))
    _, plan, x_int = quantized(model, data((8, 8, 2)))
    op = plan.ops[0]
    assert op.pad == (0, 0) and op.out_shape == (4, 4, 2) and conv_pads(op) == ((0, 1), (0, 1))
    assert op.function == "arm_convolve_HWC_q15_fast"
    bit_exact(plan, x_int)
    for fn in ("arm_convolve_HWC_q15_basic", "qv_convolve_HWC_q15_basic_nonsquare"):
        other = copy.deepcopy(plan)
        kernels.assign(other, {"sq": fn})
        bit_exact(other, x_int)


def test_plancheck_accepts_exactly_the_tensorflow_split():
    """Out sizes: the symmetric window, or one more pad after (p + 1); p + 2 after, or one fewer output, refused."""

    def conv(n, k, s, p, out):
        op = op_plan(
            "conv",
            (n, 1, 1),
            cout=1,
            kernel=(k, 1),
            stride=(s, 1),
            pad=(p, 0),
            weights=np.ones((k, 1, 1, 1)),
            bias=np.zeros(1),
        )
        op.out_shape = (out, 1, 1)
        return plan_of([op])

    validate(conv(64, 5, 2, 1, 32))  # TensorFlow: after = 2 = p + 1
    validate(conv(64, 5, 2, 1, 31))  # symmetric (the last padded value unused)
    validate(conv(64, 5, 2, 2, 32))  # symmetric p = 2
    with pytest.raises(PlanError, match=r"out_shape \(33, 1, 1\).*give \(31, 1, 1\).*or 32 x"):
        validate(conv(64, 5, 2, 1, 33))
    with pytest.raises(PlanError, match="out_shape"):
        validate(conv(64, 4, 1, 1, 62))  # after 0 < p with stride 1: one output fewer than symmetric
    validate(conv(64, 4, 1, 1, 64))  # after 2 = p + 1 (TensorFlow's 'same' for an even kernel)


@st.composite
def same_convs(draw):
    """A conv op with TensorFlow 'same' geometry on each axis (any n, k, s), int weights, and its input."""
    one_d = draw(st.booleans())
    hw, k, s, pad, out = [], [], [], [], []
    for axis in range(2):
        if axis == 1 and one_d:
            n, kk, ss = 1, 1, 1
        else:
            n, kk, ss = draw(st.integers(1, 20)), draw(st.integers(1, 6)), draw(st.integers(1, 3))
        o = -(-n // ss)
        total = max((o - 1) * ss + kk - n, 0)
        if kk > n + 2 * (total // 2):  # the kernels refuse a window larger than the symmetric padded input
            kk = max(1, n + 2 * (total // 2))
            o = -(-n // ss)
            total = max((o - 1) * ss + kk - n, 0)
        hw.append(n), k.append(kk), s.append(ss), pad.append(total // 2), out.append(o)
    c_in, c_out = draw(st.sampled_from([1, 2, 3, 4])), draw(st.sampled_from([1, 2, 4]))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    shifts = draw(st.integers(0, 15)), draw(st.integers(1, 20))
    op = op_plan(
        "conv",
        (hw[0], hw[1], c_in),
        cout=c_out,
        kernel=tuple(k),
        stride=tuple(s),
        pad=tuple(pad),
        weights=random_q15(rng, (k[0], k[1], c_in, c_out)),
        bias=random_q15(rng, (c_out,)),
        bias_lshift=shifts[0],
        out_rshift=shifts[1],
    )
    op.out_shape = (out[0], out[1], c_out)
    rounding = draw(st.sampled_from(["truncate", "round"]))
    return plan_of([op], rounding), random_q15(rng, (3, hw[0], hw[1], c_in))


@settings(max_examples=examples(0.3), deadline=None)
@given(case=same_convs())
def test_property_same_padding_any_shape(case):
    """Property: on any 'same' geometry, shift == int64 reference (input padded [p, p_after]) == every native path,
    with whichever function the plan chooses."""
    plan, x = case
    kernels.assign(plan)
    bit_exact(plan, x)


# ---------------------------------------------------------------- BatchNormalization folding


def _randomize_bn(model, seed=3):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            layer.set_weights(
                [
                    rng.uniform(0.5, 2.0, w.shape).astype(np.float32)
                    if name in ("gamma", "moving_variance")
                    else rng.uniform(-0.5, 0.5, w.shape).astype(np.float32)
                    for name, w in zip([v.name for v in layer.weights], layer.get_weights(), strict=True)
                ]
            )
    return model


def bn_model():
    _seeded()
    return _randomize_bn(
        keras.Sequential(
            [
                keras.Input((20, 2)),
                L.Conv1D(4, 3, padding="same", use_bias=False, name="c1"),
                L.BatchNormalization(name="bn1"),
                L.ReLU(),
                L.Conv1D(4, 3, strides=2, padding="same", name="c2"),
                L.Dropout(0.2),
                L.BatchNormalization(name="bn2", center=False, epsilon=0.01),
                L.Activation("relu6"),
                L.Flatten(),
                L.Dense(5, name="d"),
                L.BatchNormalization(name="bn3", scale=False),
                L.Dense(2),
            ]
        )
    )


def test_batchnorm_folded_equals_keras_in_float():
    """BN after Conv1D (no bias), after a conv through a Dropout, and after Dense: folded, float-equal to Keras."""
    model = bn_model()
    g = float_equal(model, data((20, 2), n=16, scale=2.0))
    assert [o.kind for o in g.ops] == ["conv", "relu", "conv", "relu6", "flatten", "dense", "dense"]
    notes = {o.name: o.notes for o in g.ops}
    assert notes["c1"] == (
        "bn1 (BatchNormalization) folded into the weights and bias (inference mode: moving "
        "mean and variance, epsilon 0.001, gamma, beta)",
    )
    assert "epsilon 0.01, gamma)" in notes["c2"][0] and "epsilon 0.001, beta)" in notes["d"][0]
    assert not any("use_bias=False" in n for n in notes["c1"])


def test_batchnorm_folded_conv2d_and_printed():
    """BN after a Conv2D: the plan records the fold with its adjustments (quantize prints them), and the plan is
    bit-exact between the engines."""
    _seeded()
    model = _randomize_bn(
        keras.Sequential(
            [
                keras.Input((9, 8, 3)),
                L.Conv2D(4, 3, strides=2, padding="same"),
                L.BatchNormalization(name="bnx"),
                L.ReLU(),
                L.GlobalAveragePooling2D(),
                L.Dense(2),
            ]
        )
    )
    float_equal(model, data((9, 8, 3)))
    _, plan, x_int = quantized(model, data((9, 8, 3)))
    assert any("bnx (BatchNormalization) folded" in a for a in plan.adjustments)
    from qverify.tables import plan_tables  # what `quantize` prints

    assert "bnx (BatchNormalization) folded" in plan_tables(plan)
    bit_exact(plan, x_int)


@pytest.mark.parametrize(
    "layers,follows",
    [
        ([L.Conv1D(2, 3), L.ReLU(), L.BatchNormalization(name="bn")], r"follows op 're_lu\w*' \(relu\)"),
        ([L.BatchNormalization(name="bn"), L.Conv1D(2, 3)], "follows the model's input"),
        ([L.Conv1D(2, 3), L.MaxPooling1D(2), L.BatchNormalization(name="bn")], r"follows op '\w+' \(maxpool\)"),
        (
            [L.Conv1D(2, 3, activation="relu", name="cr"), L.BatchNormalization(name="bn")],
            r"follows op 'cr_relu' \(relu\), layer 'cr''s fused activation",
        ),
    ],
)
def test_batchnorm_elsewhere_is_refused(layers, follows):
    """BN after a ReLU, as the first layer, after a pool, after a fused activation: the error says where BN must
    be."""
    model = keras.Sequential([keras.Input((12, 2)), *layers, L.Flatten(), L.Dense(1)])
    with pytest.raises(
        ModelError,
        match=rf"layer 'bn' \(BatchNormalization\) {follows}.*must come right after a "
        "Conv1D, Conv2D or Dense with activation='linear'",
    ):
        build_graph(model)


def test_zero_bias_is_noted():
    """use_bias=False costs a stored zero bias: the note says how much."""
    model = keras.Sequential([keras.Input((8, 1)), L.Conv1D(3, 3, use_bias=False, name="nb"), L.Flatten(), L.Dense(1)])
    assert build_graph(model).ops[0].notes == (
        "no bias (use_bias=False): a zero bias of 3 values (6 bytes of "
        "flash) is stored, since the q15 kernels always add one",
    )


# ---------------------------------------------------------------- ZeroPadding


def test_zero_padding_folded_into_the_next_conv():
    """MobileNet's ZeroPadding2D(((0, 1), (0, 1))) + valid stride-2 conv (TensorFlow's split), and a symmetric
    ZeroPadding1D (two of them, summed) + valid conv: folded, float-equal, bit-exact."""
    _seeded()
    model2 = keras.Sequential(
        [
            keras.Input((10, 9, 2)),
            L.ZeroPadding2D(((0, 1), (0, 1)), name="zp"),
            L.Conv2D(4, 3, strides=2, name="c"),
            L.ReLU(),
            L.Flatten(),
            L.Dense(2),
        ]
    )
    g = float_equal(model2, data((10, 9, 2)))
    c = g.ops[0]
    assert (c.in_shape, c.pad, c.out_shape, conv_pads(c)) == ((10, 9, 2), (0, 0), (5, 4, 4), ((0, 1), (0, 0)))
    assert c.notes == ("zp (ZeroPadding2D) folded into the padding: top 0, bottom 1, left 0, right 1",)
    bit_exact(*quantized(model2, data((10, 9, 2)))[1:])
    model1 = keras.Sequential(
        [
            keras.Input((16, 3)),
            L.ZeroPadding1D(1),
            L.ZeroPadding1D(1),
            L.Conv1D(2, 5, padding="same", name="c1"),
            L.GlobalAveragePooling1D(),
            L.Dense(1),
        ]
    )
    g = float_equal(model1, data((16, 3)))
    assert g.ops[0].pad == (4, 0) and g.ops[0].out_shape == (20, 1, 2)
    bit_exact(*quantized(model1, data((16, 3)))[1:])


@pytest.mark.parametrize(
    "layers,match",
    [
        (
            [L.ZeroPadding1D((1, 0), name="zp"), L.Conv1D(2, 3, name="c")],
            r"layer 'c' \(Conv1D\): padding the CMSIS kernels cannot express along its length: "
            r".*1 zero\(s\) before and 0 after \(with zp's\)",
        ),
        (
            [L.ZeroPadding1D(1, name="zp"), L.MaxPooling1D(2)],
            r"layer 'zp' \(ZeroPadding1D\) is followed by .*MaxPooling1D",
        ),
        ([L.Conv1D(2, 3), L.ZeroPadding1D(1, name="zp")], r"layer 'zp' \(ZeroPadding1D\) is followed by .*Flatten"),
    ],
)
def test_zero_padding_that_cannot_fold_is_refused(layers, match):
    model = keras.Sequential([keras.Input((12, 2)), *layers, L.Flatten(), L.Dense(1)])
    with pytest.raises(ModelError, match=match):
        build_graph(model)


# ---------------------------------------------------------------- Reshape and inputs


def test_reshape_keeps_hwc_order():
    """Reshape((L, 1)) of an (L,) input, a channel added to an (H, W) input, Reshape((-1,)) as a flatten, and a
    Reshape to the shape it already has: accepted, float-equal; other mid-network reshapes refused."""
    _seeded()
    m = keras.Sequential(
        [
            keras.Input((10, 8)),
            L.Reshape((10, 8, 1)),
            L.Conv2D(2, 3, padding="same"),
            L.Reshape((10, 8, 2)),
            L.Reshape((-1,), name="flat"),
            L.Dense(2),
        ]
    )
    g = float_equal(m, data((10, 8)))
    assert g.input_shape == (10, 8, 1) and g.model_input_shape == (10, 8)
    assert [o.kind for o in g.ops] == ["conv", "flatten", "dense"] and g.ops[1].name == "flat"
    bit_exact(*quantized(m, data((10, 8)))[1:])
    bad = keras.Sequential(
        [keras.Input((16, 2)), L.Conv1D(2, 3), L.Reshape((7, 4), name="rs"), L.Flatten(), L.Dense(1)]
    )
    with pytest.raises(
        ModelError,
        match=r"layer 'rs' \(Reshape\): reshaping \(14, 1, 2\) \(HWC\) to \(7, 1, 4\) "
        "after the first op would need a copy op",
    ):
        build_graph(bad)
    deep = keras.Sequential([keras.Input((16,)), L.Reshape((2, 2, 2, 2), name="r4")])
    with pytest.raises(ModelError, match="target shape .*rank 4"):
        build_graph(deep)


# ---------------------------------------------------------------- ReLU6


def relu6_model(form):
    _seeded()
    act = {"layer": [L.ReLU(max_value=6.0, name="r6")], "activation": [L.Activation("relu6", name="r6")], "fused": []}[
        form
    ]
    return keras.Sequential(
        [
            keras.Input((12, 3)),
            L.Conv1D(
                4,
                3,
                activation="relu6" if form == "fused" else None,
                name="c",
                kernel_initializer=keras.initializers.RandomUniform(-3, 3),
            ),
            *act,
            L.Flatten(),
            L.Dense(2),
        ]
    )


@pytest.mark.parametrize("form", ["layer", "activation", "fused"])
def test_relu6_forms(form):
    """ReLU(max_value=6), Activation('relu6') and a fused activation='relu6' become one relu6 op; float-equal;
    the clamp bites (outputs above 6.0) and the plan is bit-exact between the engines."""
    model = relu6_model(form)
    x = data((12, 3), n=12, scale=2.0)
    g = float_equal(model, x)
    assert [o.kind for o in g.ops] == ["conv", "relu6", "flatten", "dense"]
    assert g.ops[1].name == ("c_relu6" if form == "fused" else "r6")
    _, plan, x_int = quantized(model, x)
    op = plan.ops[1]
    bound = relu6_max(op.out_frac)
    assert bound == 6 << op.out_frac < 32767
    out = make_engine("shift", plan).run(x_int).outputs[op.name]
    assert (out == bound).any() and (out == 0).any() and out.max() == bound
    bit_exact(plan, x_int)


def test_relu6_bound_at_each_format():
    """6.0 rounded down at the format, capped at QMAX: 6 << f up to f = 12, QMAX from 13, floor below 0."""
    assert [relu6_max(f) for f in (15, 13, 12, 0, -1, -2, -3)] == [32767, 32767, 24576, 6, 3, 1, 0]


@st.composite
def relu6_cases(draw):
    h, w, c = draw(st.integers(1, 9)), draw(st.integers(1, 9)), draw(st.integers(1, 5))
    frac = draw(st.integers(-4, 15))
    op = op_plan("relu6", (h, w, c))
    op.in_frac = op.out_frac = frac
    x = random_q15(
        np.random.default_rng(draw(st.integers(0, 2**16))),
        (4, h, w, c),
        scale=draw(st.sampled_from([8, 1 << 10, 1 << 15])),
    )
    return plan_of([op]), x


@settings(max_examples=examples(0.3), deadline=None)
@given(case=relu6_cases())
def test_property_relu6(case):
    """Property: ReLU6 on any shape and format: shift == numpy clamp == every native path."""
    plan, x = case
    kernels.assign(plan)
    bit_exact(plan, x)


def test_relu6_kernel_direct():
    """qv_relu6_q15 in place: negatives to 0, above the bound to the bound; a negative bound acts as 0."""
    from qverify import native_lib

    x = np.array([-32768, -1, 0, 1, 5, 6, 7, 32767], np.int16)
    for kernels_ in ("dsp", "plain"):
        nl = native_lib.load(kernels_, "truncate")
        for bound, want in ((6, [0, 0, 0, 1, 5, 6, 6, 6]), (32767, [0, 0, 0, 1, 5, 6, 7, 32767]), (-5, [0] * 8)):
            buf = x.copy()
            nl.lib.qv_relu6_q15(nl.ffi.cast("int16_t *", buf.ctypes.data), len(buf), bound)
            assert buf.tolist() == want, (kernels_, bound)


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "layer,match",
    [
        (
            L.Conv1D(2, 3, dilation_rate=2, name="x"),
            r"'x' \(Conv1D\): dilation_rate 2 .*nearest supported form is a "
            "Conv1D with dilation_rate=1",
        ),
        (
            L.Conv1D(2, 3, groups=2, name="x"),
            r"'x' \(Conv1D\): groups=2 .*nearest supported form is a Conv1D with "
            "groups=1",
        ),
        (
            L.DepthwiseConv1D(3, name="x"),
            r"'x' \(DepthwiseConv1D\) is not supported; the nearest supported form is "
            "Conv1D",
        ),
        (L.Conv1DTranspose(2, 3, name="x"), r"'x' \(Conv1DTranspose\) .*nearest supported form is Conv1D"),
        (L.Conv1D(2, 3, padding="causal", name="x"), r"'x' \(Conv1D\): padding 'causal' .*use 'valid' or 'same'"),
        (
            L.ReLU(max_value=4.0, name="x"),
            r"'x' \(ReLU\): ReLU\(max_value=4.0.*nearest supported forms are ReLU\(\) "
            r".*ReLU\(max_value=6\)",
        ),
        (
            L.Activation("gelu", name="x"),
            r"'x' \(Activation\): activation 'gelu' is not supported; the nearest "
            "supported forms are Activation\\('relu'\\)",
        ),
        (L.GlobalMaxPooling1D(name="x"), r"'x' \(GlobalMaxPooling1D\) .*GlobalAveragePooling1D"),
        (L.UpSampling1D(name="x"), r"'x' \(UpSampling1D\) is not supported. Supported: Conv1D"),
    ],
)
def test_refusals_name_layer_and_nearest_form(layer, match):
    model = keras.Sequential([keras.Input((12, 2)), L.Conv1D(2, 1), layer, L.Flatten(), L.Dense(1)])
    with pytest.raises(ModelError, match=match):
        build_graph(model)


def test_conv2d_dilation_groups_refused():
    for kw, match in ((dict(dilation_rate=(1, 2)), r"dilation_rate \(1, 2\)"), (dict(groups=2), "groups=2")):
        model = keras.Sequential([keras.Input((8, 8, 4)), L.Conv2D(4, 3, name="x", **kw), L.Flatten(), L.Dense(1)])
        with pytest.raises(ModelError, match=rf"'x' \(Conv2D\): {match}.*nearest supported form is a Conv2D"):
            build_graph(model)


# ---------------------------------------------------------------- the emulated Cortex-M


def test_new_layers_bit_exact_on_the_emulated_cortex_m(tmp_path, monkeypatch):
    """network.c carries relu6's clamp_max and the TensorFlow split's output sizes: the Cortex-M4 (DSP) and M3
    (plain) builds under QEMU equal the shift model on every op."""
    from qverify.mcu import missing_reason
    from tools import absent

    reason = missing_reason()
    if reason is not None:
        absent(f"the target toolchain is missing: {reason}")
    monkeypatch.setenv("QVERIFY_CACHE_DIR", str(tmp_path))
    _seeded()
    model = _randomize_bn(
        keras.Sequential(
            [
                keras.Input((64,)),
                L.Reshape((64, 1)),
                L.Conv1D(4, 5, strides=2, padding="same", name="k1"),
                L.BatchNormalization(name="bn"),
                L.ReLU(max_value=6, name="r6"),
                L.ZeroPadding1D((0, 1)),
                L.Conv1D(4, 3, strides=2, name="k2", kernel_initializer=keras.initializers.RandomUniform(-2, 2)),
                L.Activation("relu6"),
                L.Flatten(),
                L.Dense(3),
            ]
        )
    )
    _, plan, x_int = quantized(model, data((64,), n=6, scale=3.0))
    assert [op.kind for op in plan.ops] == ["conv", "relu6", "conv", "relu6", "flatten", "dense"]
    target_bit_exact(plan, x_int)


def target_bit_exact(plan, x_int) -> None:
    """The Cortex-M4 (DSP) and M3 (plain) builds under QEMU equal the shift model on every op (the caller has
    checked the toolchain and pointed QVERIFY_CACHE_DIR at a temporary folder)."""
    from qverify.compare import compare_results
    from qverify.engines.target import TargetEngine

    shift = make_engine("shift", plan).run(x_int)
    samples = list(range(len(x_int)))
    for cpu in ("cortex-m4", "cortex-m3"):
        got = TargetEngine(plan, cpu=cpu).run(x_int)
        bad = [(c.name, c.mismatches) for c in compare_results(plan, shift, got, samples) if c.mismatches]
        assert not bad, (cpu, bad)
