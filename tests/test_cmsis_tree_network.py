"""Arm's real CMSIS_5 trees (opt-in, QVERIFY_CMSIS_TREES) run plans through qverify's runner, bit for bit.

test_cmsis_tree.py calls each arm_* function of a tree directly with random arguments. Here the runner
(csrc/qv_runner.c) makes the calls a firmware makes: its arguments, its scratch buffers and the
functions kernels.choose picks for the release the plan declares. The plain and the DSP path of the
tree, built with the plan's rounding, must give every op's integers exactly:
- random single ops (strategies.op_cases, the wrapping cases and 1-D convs up to 400 long) against the
  numpy int64 reference, planned for the oldest release and for the tree's own (whose plans may call
  functions an older release gets wrong);
- random Keras networks through the product's path (graph, calibration, plan for the oldest or the tree's
  release; TensorFlow's asymmetric 'same' padding, fused activations) against the shift model;
- sigmoid, tanh and softmax, planned for the tree's release: exact, or refused by the contract where the
  release gets them wrong (and then shown to differ);
- the demo network, planned for the tree's release (a final sigmoid on the device from 5.8.0), both
  roundings, against the shift model: 16 samples on the host paths, 2 on the emulated Cortex-M3 and M4
  (the tree cross-compiled, Arm's intrinsics as the core's own instructions).

    QVERIFY_CMSIS_TREES=/path/to/trees pytest tests/test_cmsis_tree_network.py

The trees are an outside input (a folder of <version>/CMSIS, e.g. Arm's CMSIS_5 release tags);
without it the tests skip, and the skips are counted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, event, example, given, settings
from hypothesis import strategies as st

import reference as ref
from qverify import dataset, kernels, workflow
from qverify.choices import CMSIS_RELEASES
from qverify.engines import quantize_input
from qverify.engines.native import NativeEngine
from qverify.engines.shift import ShiftEngine
from qverify.engines.target import TargetEngine
from qverify.errors import PlanError
from qverify.kernels import OLDEST, release
from qverify.native_lib import ROUNDINGS
from qverify.opkinds import FUNCTIONS
from qverify.plan import QuantPlan
from strategies import OpCase, examples, fills, net_specs, op_cases, plan_of, seeds, shifts, wrapping_cases
from test_activations import activation_plan, direct_cases, softmax_cases
from test_cmsis_tree import _real_trees
from test_properties_network import NET_SAME, NET_TF_SPLIT_1D, NET_TF_SPLIT_2D, quantized

PATHS = ("plain", "dsp")
DEMO_SAMPLES = 16
TARGET_SAMPLES = 2  # of them on each emulated core
CPUS = ("cortex-m3", "cortex-m4")  # the plain and the DSP path
# row 128 of a 1x1 conv: 5.4.0-5.7.0's plain path reads row -128 there (kernels.py's signed char condition)
SIGNED_CHAR_ROWS = OpCase("conv", (130, 1, 2), cout=2, x_fill="small", w_fill="small", b_fill="zero")


def release_of(tree_root: Path) -> str:
    """The release a tree's folder names (<version>/CMSIS), else the oldest: its plans then assume nothing newer."""
    name = tree_root.parent.name
    return name if name in CMSIS_RELEASES else OLDEST


def tree_engine(plan: QuantPlan, path: str, tree_root: Path) -> NativeEngine:
    return NativeEngine(plan, kernels=path, cmsis_root=str(tree_root), threads=1)


def first_difference(got: np.ndarray, want: np.ndarray) -> str:
    bad = np.argwhere(got != want)
    at = tuple(int(i) for i in bad[0])
    return f"{len(bad)} of {want.size} values differ, first at {at}: {int(got[at])} != {int(want[at])}"


@st.composite
def long_convs(draw) -> OpCase:
    """1-D convs whose windows reach rows 128 to 400 (a row a signed char cannot hold), with the even channel
    counts Arm's fast convolutions need: the shapes where kernels.choose's release conditions decide."""
    k = draw(st.integers(1, 9))
    same = draw(st.booleans())
    return OpCase(
        "conv",
        (draw(st.integers(129, 400)), 1, 2 * draw(st.integers(1, 4))),
        cout=2 * draw(st.integers(1, 4)),
        kernel=(k, 1),
        stride=(draw(st.integers(1, 3)), 1),
        pad=((k - 1) // 2 if same else 0, 0),
        bias_lshift=draw(shifts),
        out_rshift=draw(shifts),
        x_fill=draw(fills),
        w_fill=draw(fills),
        b_fill=draw(fills),
        seed=draw(seeds),
    )


@pytest.mark.parametrize("tree_root", _real_trees())
@settings(max_examples=examples(3.0), deadline=None)
@given(
    case=st.one_of(op_cases(), wrapping_cases(), long_convs()),
    rounding=st.sampled_from(ROUNDINGS),
    own_release=st.booleans(),
)
@example(case=SIGNED_CHAR_ROWS, rounding="truncate", own_release=True)
def test_real_tree_runs_random_ops_exactly(tree_root, case, rounding, own_release):
    """Each op that meets its function's contract (kernels.check_plan: what the commands and the gate check before
    anything runs), called by the runner into the tree's plain and DSP paths, equals the int64 reference: a plan
    is either refused or exact on Arm's code, never passed and wrong."""
    cmsis = release_of(tree_root) if own_release else OLDEST
    try:
        plan = plan_of([case.op()], rounding, cmsis)
    except PlanError:  # no function meets the op's contract in that build (the plan refuses it, as a firmware should)
        assume(False)
    op = plan.ops[0]
    if kernels.check_plan(plan):  # a declared function outside its contract: every command refuses to run it
        event("refused: a contract violation")
        return
    event(f"{op.function} ({'Arm' if FUNCTIONS[op.function].arm else 'qverify'})")
    x, _, _ = case.tensors()
    want, _, _ = ref.run_op(case.op(), x, rounding)
    for path in PATHS:
        got = tree_engine(plan, path, tree_root).run_op(0, x).out
        assert np.array_equal(got, want), (
            f"{tree_root} {path}/{rounding}, {op.function} for {cmsis}: {first_difference(got, want)}"
        )


@pytest.mark.parametrize("tree_root", _real_trees())
@settings(max_examples=examples(0.5), deadline=None)
@given(case=st.one_of(direct_cases(), softmax_cases().map(lambda x: ("softmax", 5, x))))
def test_real_tree_runs_activations_exactly_or_refuses_them(tree_root, case):
    """sigmoid, tanh (int_width 0-3) and softmax through the runner, planned for the tree's release: exact against
    the shift model, except a sigmoid/tanh planned for 5.4.0-5.7.0, which the contract refuses (those releases
    saturate the table index); the refusal is asserted, and the tree is shown to differ where it is refused."""
    name, width, x = case
    plan = activation_plan(name, x.shape[1:], 15 - width)
    plan.cmsis = release_of(tree_root)
    refused = bool(kernels.check_plan(plan))
    assert refused == (name != "softmax" and release(plan.cmsis) < release("5.8.0")), kernels.check_plan(plan)
    event(f"{name}: {'refused' if refused else 'run'}")
    want = ShiftEngine(plan).run(x).outputs[plan.ops[0].name]
    for path in PATHS:
        got = tree_engine(plan, path, tree_root).run(x).outputs[plan.ops[0].name]
        if not refused:
            assert np.array_equal(got, want), f"{tree_root} {path}, {name}: {first_difference(got, want)}"
        elif (x < 0).any():  # every negative input reads the wrong entries there
            assert not np.array_equal(got, want), f"{tree_root} {path}, {name}: refused, yet equal"


@pytest.mark.parametrize("tree_root", _real_trees())
@settings(max_examples=examples(0.5), deadline=None)
@given(spec=net_specs(), own_release=st.booleans())
@example(spec=NET_TF_SPLIT_1D, own_release=True)
@example(spec=NET_TF_SPLIT_2D, own_release=False)
@example(spec=NET_SAME, own_release=True)
def test_real_tree_runs_random_networks_exactly(tree_root, spec, own_release):
    """Random Keras networks (2-6 layers) through the product's path (graph, calibration, plan for the oldest or
    the tree's release): TensorFlow's asymmetric 'same' padding, fused activations and calibrated formats, which
    single ops do not draw. Every op of the tree's plain and DSP paths equals the shift model (held to the int64
    reference by test_properties_network)."""
    made = quantized(spec, release_of(tree_root) if own_release else OLDEST)
    assume(made is not None)  # a shift past 31: refused, as rule 3 says
    plan, x = made
    if kernels.check_plan(plan):  # make_plan chooses legal functions: only a layer no function computes
        event("refused: a contract violation")
        return
    event(f"Arm's functions: {sum(FUNCTIONS[op.function].arm for op in plan.ops)} of {len(plan.ops)} ops")
    want = ShiftEngine(plan).run(x).outputs
    for path in PATHS:
        got = tree_engine(plan, path, tree_root).run(x).outputs
        for op in plan.ops:
            assert np.array_equal(got[op.name], want[op.name]), (
                f"{tree_root} {path}/{plan.rounding}, {op.name} ({op.function}): "
                f"{first_difference(got[op.name], want[op.name])}"
            )


@pytest.mark.parametrize("tree_root", _real_trees())
def test_real_tree_runs_the_demo_exactly(tree_root):
    """The demo planned for the tree's release, each rounding: every op equals the shift model, on the host
    paths and on the emulated cores."""
    cmsis = release_of(tree_root)
    arm_calls = set()
    for rounding in ROUNDINGS:
        plan = workflow.quantize(rounding=rounding, cmsis=cmsis, final_activation=None).plan
        arm_calls |= {op.function for op in plan.ops if FUNCTIONS[op.function].arm}
        raw = dataset.demo_dataset(DEMO_SAMPLES).x[:DEMO_SAMPLES]
        x, _ = quantize_input(plan, dataset.prepare_chunk(raw, plan, "demo", 0))
        want = ShiftEngine(plan).run(x).outputs
        engines = [(path, tree_engine(plan, path, tree_root), x) for path in PATHS]
        # and compiled by arm-none-eabi-gcc, Arm's intrinsics as the core's instructions, on the emulated M3 and M4
        engines += [(cpu, TargetEngine(plan, cpu=cpu, cmsis_root=str(tree_root)), x[:TARGET_SAMPLES]) for cpu in CPUS]
        for where, engine, xs in engines:
            got = engine.run(xs).outputs
            for op in plan.ops:
                expected = want[op.name][: len(xs)]
                assert np.array_equal(got[op.name], expected), (
                    f"{tree_root} {where}/{rounding}, {op.name} ({op.function}): "
                    f"{first_difference(got[op.name], expected)}"
                )
    # which of Arm's functions the demo exercises (the rest are qverify's own kernels, bundled): the sigmoid's
    # from 5.8.0, where arm_nn_activations_direct_q15 no longer saturates its table index
    arms = {"arm_convolve_HWC_q15_fast_nonsquare", "arm_fully_connected_q15", "arm_relu_q15"}
    assert arm_calls == arms | ({"arm_nn_activations_direct_q15"} if release(cmsis) >= release("5.8.0") else set())
