"""Property 7: whole random networks (2-6 ops, real Keras models) quantized by qverify: the shift
engine and the native engine (DSP, plain and fast at each SIMD level, the plan's rounding) agree on every op, in
propagated and isolated mode, and both equal the numpy int64 reference.

Networks go through the product's own path: keras model -> build_graph -> calibrate ->
make_plan -> quantize_input -> engines -> run_compare.
"""

from __future__ import annotations

import copy
import random

import keras
import numpy as np
from hypothesis import Phase, assume, event, example, find, given, settings

import reference as ref
from native_paths import NATIVE_PATHS
from native_paths import native_engine as path_engine
from qverify.calibrate import calibrate, prepare_input
from qverify.compare import format_detail, format_table, run_compare
from qverify.engines import make_engine, quantize_input
from qverify.errors import PlanError
from qverify.graph import build_graph
from qverify.kernels import OLDEST
from qverify.opkinds import conv_pads, relu6_max
from qverify.plan import make_plan
from strategies import QMAX, QMIN, Layer, NetSpec, examples, fails, net_specs

KERNELS = NATIVE_PATHS
MODES = ("propagated", "isolated")


def quantized(spec: NetSpec, cmsis: str = OLDEST):
    """(plan, int16 input) for a network spec, planned for a firmware building CMSIS_5 `cmsis` or later: the
    calibration samples quantized, plus one full-scale random integer sample (saturation and overflow inside the
    network); None if the plan is refused."""
    keras.backend.clear_session()
    graph = build_graph(spec.keras_model())
    x = prepare_input(spec.data(), graph)
    try:
        plan = make_plan(graph, calibrate(graph, x), rounding=spec.rounding, cmsis=cmsis)
    except PlanError:  # a shift past 31 (or out_rshift 31 with rounding): refused, as rule 3 says
        return None
    x_int, _ = quantize_input(plan, x)
    full = np.random.default_rng(spec.seed).integers(QMIN, QMAX + 1, (1, *plan.input_shape)).astype(np.int16)
    return plan, np.concatenate([x_int, full])


def native_engine(plan, kernels):
    return path_engine(plan, kernels)


def flipped_lsb_native(plan, kernels):
    """The firmware's copy of the plan with the LSB of the first weight of the first conv/dense flipped."""
    bad = copy.deepcopy(plan)
    for op in bad.ops:
        if op.weighted:
            op.weights = op.weights.copy()
            op.weights[0] ^= 1
            break
    return native_engine(bad, kernels)


def check_network(plan, x_int, make_native=native_engine) -> None:
    """Shift and native engines agree on every op, propagated and isolated, for both kernel paths;
    the shift engine equals the numpy int64 reference with its saturation and overflow counts."""
    shift = make_engine("shift", plan)
    samples = list(range(len(x_int)))
    want = ref.run_plan(plan, x_int)
    got = shift.run(x_int)
    for op in plan.ops:
        out, sats, ovfs = want[op.name]
        assert np.array_equal(got.outputs[op.name], out), f"shift engine differs from the reference at {op.name}"
        if op.weighted:
            assert (got.saturations[op.name], got.overflows[op.name]) == (sats, ovfs), op.name
    for kernels in KERNELS:
        native = make_native(plan, kernels)
        for mode in MODES:
            c = run_compare(plan, shift, native, x_int, samples, mode)
            if not c.ok:
                raise AssertionError(
                    f"native {kernels}, {mode}:\n{format_table(c)}\n{format_detail(c.first_divergent)}"
                )


# Pins at network level: a 3x2 kernel (the notebook's transposed order), an input of exactly
# 1.0 in Q0.15 (saturates to 32767 and is counted), an all-zero dense layer (log2(0)), a round build.
NET_3X2 = NetSpec(
    (8, 6, 2),
    False,
    (
        Layer("conv", 3, (3, 2), (1, 1), "valid", "relu", 0, -2),
        Layer("maxpool", kernel=(2, 1)),
        Layer("flatten"),
        Layer("dense", 4, w_fill="zero"),
    ),
    seed=1,
    x_exp=0,
    x_fill="unit",
    samples=4,
    rounding="round",
)
# The notebook's own shape of network, 1-D: conv (9, 1) + relu, pool (4, 1), GAP, dense.
NET_1D = NetSpec(
    (24, 1, 1),
    True,
    (
        Layer("conv", 4, (9, 1), (1, 1), "valid", "relu", 1, -3),
        Layer("maxpool", kernel=(4, 1)),
        Layer("gap"),
        Layer("dense", 1, w_exp=-1),
    ),
    seed=2,
    x_exp=0,
    samples=4,
)
# 'same' padding with a stride, average pooling with a non-square window, pow2 weights.
NET_SAME = NetSpec(
    (9, 7, 3),
    False,
    (
        Layer("conv", 2, (3, 3), (2, 2), "same", None, 2, -1, "pow2"),
        Layer("avgpool", kernel=(2, 3), stride=(1, 1)),
        Layer("relu"),
        Layer("gap"),
        Layer("dense", 3, activation="relu"),
    ),
    seed=3,
    x_exp=2,
)

# TensorFlow's 'same' split (an odd total: one more zero after than before): Conv1D k 4 (1 before, 2 after) with a
# fused relu6, then k 5 stride 2 on 11 (the keyword-spotting form: 2 before, 2 + 1 after), a ReLU6 layer.
NET_TF_SPLIT_1D = NetSpec(
    (11, 1, 2),
    True,
    (
        Layer("conv", 3, (4, 1), (1, 1), "same", "relu6", 2, -1),
        Layer("conv", 2, (5, 1), (2, 1), "same", None, 1, -2),
        Layer("relu6"),
        Layer("flatten"),
        Layer("dense", 2),
    ),
    seed=5,
    x_exp=3,
    samples=4,
)
# 2-D: a (2, 3) kernel at stride (2, 2) on 7 x 6 (rows 0 + 1, columns 1 + 2), relu6 fused into a dense.
NET_TF_SPLIT_2D = NetSpec(
    (7, 6, 2),
    False,
    (
        Layer("conv", 3, (2, 3), (2, 2), "same", "relu", 3, -1),
        Layer("gap"),
        Layer("dense", 3, activation="relu6", w_exp=4),
    ),
    seed=6,
    x_exp=2,
    samples=4,
    rounding="round",
)

# Large weights and inputs with a small bias: bias_lshift would be negative in both weighted ops, so
# both biases are re-quantized (rule 3); formats go down to f = -9.
NET_ADJUSTED = NetSpec(
    (10, 1, 2),
    True,
    (
        Layer("conv", 3, (3, 1), (1, 1), "same", None, 10, -6),
        Layer("relu"),
        Layer("flatten"),
        Layer("dense", 5, w_exp=4, b_exp=-6),
    ),
    seed=4,
    x_exp=10,
    samples=4,
    rounding="round",
)


def tf_split(plan) -> bool:
    """A conv of the plan pads one more zero after than before (TensorFlow's 'same' with an odd total)."""
    return any(op.kind == "conv" and any(a != b for b, a in conv_pads(op)) for op in plan.ops)


def clipping_relu6(plan, x_int) -> bool:
    """A relu6 op of the plan whose bound is below QMAX meets a value above it (ReLU6 is not a ReLU there)."""
    outs = ref.run_plan(plan, x_int)
    h = x_int
    for op in plan.ops:
        if op.kind == "relu6" and relu6_max(op.out_frac) < QMAX and (h > relu6_max(op.out_frac)).any():
            return True
        h = outs[op.name][0]
    return False


@settings(max_examples=examples(0.5))
@given(spec=net_specs())
@example(spec=NET_3X2)
@example(spec=NET_1D)
@example(spec=NET_SAME)
@example(spec=NET_ADJUSTED)
@example(spec=NET_TF_SPLIT_1D)
@example(spec=NET_TF_SPLIT_2D)
def test_random_networks_engines_agree(spec):
    """Property 7: on random Keras networks, shift == native (DSP, plain) on every op, propagated and isolated."""
    built = quantized(spec)
    event("plan refused (shift past 31)" if built is None else "planned")
    assume(built is not None)
    plan, x_int = built
    event(f"{len(plan.ops)} ops")
    event(f"adjusted: {bool(plan.adjustments)}")
    event(f"TensorFlow 'same' split: {tf_split(plan)}")
    event(f"relu6 clips: {clipping_relu6(plan, x_int)}" if any(op.kind == "relu6" for op in plan.ops) else "no relu6")
    check_network(plan, x_int)


def test_network_check_catches_a_flipped_weight_lsb():
    """Property 7 rejects a native engine whose plan copy has one weight LSB flipped (on the 3x2 pin and on
    a generated network)."""
    plan, x_int = quantized(NET_1D)
    assert not fails(check_network, plan, x_int)
    assert fails(check_network, plan, x_int, flipped_lsb_native)

    def broken(spec):
        built = quantized(spec)
        return built is not None and fails(check_network, *built, flipped_lsb_native)

    find(
        net_specs(),
        broken,
        settings=settings(max_examples=40, database=None, deadline=None, phases=[Phase.generate]),
        random=random.Random(11),
    )


def extra_zero_before(op):
    """A broken conv_pads: TensorFlow's extra zero put before the input (top, left) instead of after."""
    (top, bottom), (left, right) = conv_pads(op)
    return (bottom, top), (right, left)


def test_network_check_catches_the_split_extra_zero_before():
    """Property 7 rejects a shift model that pads TensorFlow's odd 'same' total with the extra zero before the
    input rather than after (same output size, shifted windows): on both split pins and on a generated network."""
    from unittest import mock

    from qverify.engines import shift as shift_mod

    for spec in (NET_TF_SPLIT_1D, NET_TF_SPLIT_2D):
        plan, x_int = quantized(spec)
        assert tf_split(plan) and not fails(check_network, plan, x_int)
        with mock.patch.object(shift_mod, "conv_pads", extra_zero_before):
            assert fails(check_network, plan, x_int)

    def broken(spec):
        built = quantized(spec)
        if built is None or not tf_split(built[0]):
            return False
        with mock.patch.object(shift_mod, "conv_pads", extra_zero_before):
            return fails(check_network, *built)

    find(
        net_specs(),
        broken,
        settings=settings(max_examples=60, database=None, deadline=None, phases=[Phase.generate]),
        random=random.Random(12),
    )


def test_network_check_catches_a_relu6_without_its_bound():
    """Property 7 rejects a shift model whose ReLU6 is a ReLU (its bound QMAX at every format), on the split pin
    and on a generated network."""
    from unittest import mock

    from qverify.engines import shift as shift_mod

    def no_bound(frac, bits=16):
        return QMAX

    plan, x_int = quantized(NET_TF_SPLIT_1D)
    assert clipping_relu6(plan, x_int)
    with mock.patch.object(shift_mod, "relu6_max", no_bound):
        assert fails(check_network, plan, x_int)

    def broken(spec):
        built = quantized(spec)
        if built is None or not clipping_relu6(*built):
            return False
        with mock.patch.object(shift_mod, "relu6_max", no_bound):
            return fails(check_network, *built)

    find(
        net_specs(),
        broken,
        settings=settings(max_examples=80, database=None, deadline=None, phases=[Phase.generate]),
        random=random.Random(13),
    )


# The shift engine's two ways to a conv sum (engines/shift.py TAPS_MAX: shifted slices, or float64 conv2d)
# and its two output stages (shift_ops.XLA_MIN_SIZE: eager, or XLA fused with the taps sum), each forced.
SHIFT_PATHS = {"taps+xla": (10**9, 0), "taps+eager": (10**9, 2**62), "conv2d+xla": (0, 0), "conv2d+eager": (0, 2**62)}


def check_shift_paths(plan, x_int) -> None:
    """Every path of the shift engine equals the numpy int64 reference (outputs and counts), whole-network
    graph (run) and op by op (run_op)."""
    from unittest import mock

    from qverify.engines import shift as shift_mod
    from qverify.engines import shift_ops

    want = ref.run_plan(plan, x_int)
    for path, (taps_max, xla_min) in SHIFT_PATHS.items():
        with mock.patch.object(shift_mod, "TAPS_MAX", taps_max), mock.patch.object(shift_ops, "XLA_MIN_SIZE", xla_min):
            engine = make_engine("shift", plan)
            got = engine.run(x_int)
            h = x_int
            for i, op in enumerate(plan.ops):
                one = engine.run_op(i, h)
                h = one.out
                out, sats, ovfs = want[op.name]
                for how, o, s, v in (
                    ("run", got.outputs[op.name], got.saturations[op.name], got.overflows[op.name]),
                    ("run_op", one.out, one.saturations, one.overflows),
                ):
                    assert np.array_equal(o, out), f"{path} {how}: shift differs from the reference at {op.name}"
                    if op.weighted:
                        assert (s, v) == (sats, ovfs), f"{path} {how}: counts at {op.name}"


@settings(max_examples=examples(0.25))
@given(spec=net_specs())
@example(spec=NET_3X2)
@example(spec=NET_1D)
@example(spec=NET_SAME)
@example(spec=NET_ADJUSTED)
@example(spec=NET_TF_SPLIT_1D)
def test_random_networks_every_shift_path_is_exact(spec):
    """On random Keras networks each shift-engine path (taps or conv2d sum, eager or XLA output stage,
    whole-network graph or op by op) gives the int64 reference's integers and counts."""
    built = quantized(spec)
    assume(built is not None)
    check_shift_paths(*built)


def test_shift_path_check_catches_a_broken_taps_sum():
    """The property rejects a shifted-slices sum that drops one tap (NET_1D's 9-tap conv takes that path)."""
    from unittest import mock

    from qverify.engines import shift as shift_mod

    plan, x_int = quantized(NET_1D)
    assert not fails(check_shift_paths, plan, x_int)
    real = shift_mod._conv_by_taps

    def dropped_tap(h, w, strides, padding):
        acc = real(h, w, strides, padding)
        last = real(h, w * np.eye(w.shape[0])[-1][:, None, None, None], strides, padding)  # the last row's term
        return acc - last

    with mock.patch.object(shift_mod, "_conv_by_taps", dropped_tap):
        assert fails(check_shift_paths, plan, x_int)
