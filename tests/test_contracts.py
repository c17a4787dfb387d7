"""Kernel contracts: the function each op calls, what Arm's code needs of the call, and what happens when
a call breaks it (qverify.kernels, the runner's guard words, the bundled kernels' refusals).

No Arm tree is available here: Arm's DSP-path behaviours are reproduced by a fake tree
(fake_cmsis.PAIRING_FAST_NONSQUARE, written from CMSIS_API.md's description), and each is shown to be
caught: by the contract check before anything runs, by the guard words, by the comparison.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from fake_cmsis import PAIRING_FAST_NONSQUARE, fake_cmsis_tree
from qverify import kernels
from qverify.cli import main
from qverify.engines.native import KernelFault, NativeEngine
from qverify.engines.shift import ShiftEngine
from qverify.errors import PlanError
from strategies import OpCase, op_plan, plan_of, random_q15

FAST = "arm_convolve_HWC_q15_fast_nonsquare"


def conv_op(in_shape, cout, kernel, stride=(1, 1), pad=(0, 0), function=None, out_rshift=8):
    """A conv op as the plan holds it (no weights needed for the contract)."""
    h, w, _ = in_shape
    out = ((h + 2 * pad[0] - kernel[0]) // stride[0] + 1, (w + 2 * pad[1] - kernel[1]) // stride[1] + 1, cout)
    op = SimpleNamespace(
        name="c",
        kind="conv",
        in_shape=in_shape,
        out_shape=out,
        kernel=kernel,
        stride=stride,
        pad=pad,
        bias_lshift=0,
        out_rshift=out_rshift,
        function=None,
    )
    op.function = function or kernels.choose(op, "truncate")
    return op


def test_demo_calls_the_fastest_legal_functions(demo_plan, demo_dsp_plan):
    """On the demo, a 1-D conv calls Arm's fast conv, its length passed as x, where the contract holds on the
    plan's paths: with both (the default) only where the window stays within 127 samples (5.4-5.7's plain
    path counts in signed char), with the DSP path alone wherever channels and output length are even.
    Elsewhere qverify's kernel, and the notes say why; the plans break no contract."""
    for plan, both in ((demo_plan, True), (demo_dsp_plan, False)):
        for op in plan.ops:
            if op.kind != "conv":
                continue
            call = kernels.call(op)
            assert call.length_on_x and call.out_y == 1 and call.out_x == op.out_shape[0]
            even = op.in_shape[2] % 2 == 0 and op.out_shape[2] % 2 == 0 and op.out_shape[0] % 2 == 0
            short = op.in_shape[0] <= 128
            legal = even and (short or not both)
            assert op.function == (FAST if legal else "qv_convolve_HWC_q15_basic_nonsquare"), (op.name, both)
        assert kernels.check_plan(plan) == []
    assert demo_plan.op("conv2").function != FAST and demo_dsp_plan.op("conv2").function == FAST
    assert demo_plan.op("conv5").function == FAST
    notes = kernels.notes(demo_plan)
    assert any(n.startswith("conv2:") and "within -128..127" in n for n in notes), notes
    assert any(n.startswith("conv3:") and "even output width (this op: 253)" in n for n in kernels.notes(demo_dsp_plan))


DSP, PLAIN, BOTH = ("dsp",), ("plain",), ("dsp", "plain")


@pytest.mark.parametrize(
    "op, function, paths, condition, effect",
    [
        (
            conv_op((9, 1, 2), 2, (3, 1)),
            FAST,
            DSP,
            "an even output width (this op: 7)",
            "never writes the last output pixel",
        ),
        (conv_op((5, 5, 2), 2, (3, 3)), FAST, DSP, "an even output width (this op: 3)", "pairs pixels across rows"),
        (
            conv_op((5, 3, 2), 2, (3, 3)),
            FAST,
            DSP,
            "an even output width (this op: 1)",
            "no output and overruns bufferA",
        ),
        (conv_op((9, 1, 2), 2, (3, 1)), FAST, PLAIN, None, None),  # the plain path computes odd widths right
        (
            conv_op((8, 8, 3), 2, (3, 3)),
            FAST,
            BOTH,
            "even input and output channels (this op: 3 in, 2 out)",
            "ARM_MATH_SIZE_MISMATCH",
        ),
        (conv_op((8, 6, 2), 2, (3, 3)), "arm_convolve_HWC_q15_basic", BOTH, "a square image", "another convolution"),
        (conv_op((4, 2, 2048), 2, (3, 3), pad=(1, 1)), FAST, BOTH, None, None),  # window 18432 < 2^17
        (conv_op((8, 5, 8192), 2, (4, 2)), FAST, BOTH, None, None),  # window 65536 < 2^17
        (
            conv_op((4, 5, 16384), 2, (4, 2)),
            FAST,
            DSP,
            "ch_in * k_x * k_y below 131072 (this op: 131072)",
            "truncates on Cortex-M4/M7",
        ),
        (conv_op((40000, 1, 2), 2, (3, 1)), FAST, DSP, "output sizes and window reach up to 32767", "int16_t"),
        (
            conv_op((200, 1, 2), 2, (3, 1)),
            FAST,
            PLAIN,
            "window positions within -128..127 on each axis (this op: up to 199)",
            "5.4.0 to 5.7.0 keeps the input row and column in signed char",
        ),
        (conv_op((200, 1, 2), 2, (3, 1)), FAST, DSP, None, None),  # int16_t on the DSP path: fine
        (
            conv_op((9, 9, 4096), 2, (9, 9)),
            "arm_convolve_HWC_q15_basic",
            DSP,
            "ch_in * k_x * k_y below 262144 (this op: 331776)",
            "truncates on Cortex-M4/M7",
        ),
    ],
)
def test_each_contract_condition_is_named(op, function, paths, condition, effect):
    """A call that breaks a condition on a code path gets one violation naming the op, the function, the
    condition with this op's value and what Arm's code does; a legal call gets none."""
    op.function = function
    found = kernels.violations(op, "truncate", paths)
    if condition is None:
        assert found == [], found
        return
    assert len(found) == 1, found
    text = str(found[0])
    assert text.startswith(f"c: {function} needs {condition}") and effect in text, text


def test_round_build_out_shift_zero_is_a_violation_and_the_plan_avoids_it():
    """out_shift 0 in a rounding build is undefined in CMSIS-NN 5.4/5.5 (NN_ROUND(0) = 1 << -1): a
    violation; the plan never makes it (one frac bit less, recorded)."""
    op = conv_op((8, 1, 2), 2, (3, 1), out_rshift=0)
    assert not kernels.violations(op, "truncate")
    (v,) = kernels.violations(op, "round")
    assert "out_shift of at least 1 in a rounding build (this op: 0)" in str(v) and "5.4.0 and 5.5.0" in str(v)


def test_round_build_out_shift_31_is_a_violation_of_arms_functions_in_every_release():
    """out_shift 31 in a rounding build: CMSIS-NN 5.9.0's NN_ROUND(31) is (0x1 << 31) >> 1, -2^30 where the
    contract adds +2^30 (tests/test_cmsis_tree.py pins it on Arm's trees). Every plan's firmware may build 5.9.0,
    so it holds for each release a plan may name; qverify's own kernels add +2^30 (UB-free) and are legal.
    A conv then calls qverify's kernel; a dense op, which has no such kernel, keeps a named violation."""
    conv = conv_op((8, 1, 2), 2, (3, 1), out_rshift=31)
    dense = OpCase("dense", (1, 1, 4), cout=2, out_rshift=31).op("d")
    for op, function in ((conv, FAST), (dense, "arm_fully_connected_q15"), (dense, "arm_fully_connected_q15_opt")):
        op.function = function
        assert not kernels.violations(op, "truncate"), function
        for cmsis in ("5.4.0", "5.8.0", "5.9.0"):
            (v,) = kernels.violations(op, "round", cmsis=cmsis)
            text = str(v)
            assert "out_shift of at most 30 in a rounding build (this op: 31)" in text and "5.9.0" in text, text
    conv.function = "qv_convolve_HWC_q15_basic_nonsquare"
    assert not kernels.violations(conv, "round")
    conv.function = None
    assert kernels.choose(conv, "round") == "qv_convolve_HWC_q15_basic_nonsquare"
    assert kernels.choose(conv, "truncate") == FAST
    dense.out_rshift = 30  # NN_ROUND(30) = 2^29 in every release
    assert not kernels.violations(dense, "round")


def test_conditions_of_old_releases_hold_only_for_plans_that_may_build_them():
    """A condition of Arm's code up to release X holds while the plan's oldest CMSIS_5 release is X or older:
    5.4.0-5.7.0's signed char positions, 5.4.0/5.5.0's NN_ROUND(0), 5.4.0-5.7.0's saturated sigmoid/tanh table
    index; the rest hold in every release."""
    signed_char = conv_op((200, 1, 2), 2, (3, 1))
    signed_char.function = FAST
    nn_round = conv_op((8, 1, 2), 2, (3, 1), out_rshift=0)
    odd = conv_op((9, 1, 2), 2, (3, 1))
    odd.function = FAST
    for cmsis, held in [("5.4.0", 1), ("5.7.0", 1), ("5.8.0", 0), ("5.9.0", 0)]:
        assert len(kernels.violations(signed_char, "truncate", PLAIN, cmsis)) == held, cmsis
        assert len(kernels.violations(odd, "truncate", DSP, cmsis)) == 1, cmsis  # every release pairs pixels
    for cmsis, held in [("5.4.0", 1), ("5.5.0", 1), ("5.6.0", 0), ("5.9.0", 0)]:
        assert len(kernels.violations(nn_round, "round", BOTH, cmsis)) == held, cmsis
    sigmoid = conv_op((1, 1, 8), 8, (1, 1))
    sigmoid.kind, sigmoid.function, sigmoid.in_frac = "sigmoid", "arm_nn_activations_direct_q15", 13
    for cmsis, held in [("5.4.0", 1), ("5.7.0", 1), ("5.8.0", 0)]:
        found = kernels.violations(sigmoid, "truncate", BOTH, cmsis)
        assert len(found) == held and all("saturates its table index" in str(v) for v in found), (cmsis, found)


def test_a_final_activation_runs_on_the_device_where_arms_function_is_right():
    """By default a final softmax is the plan's last op in every release; a final sigmoid only when the
    firmware builds 5.8.0 or later (5.4.0-5.7.0's arm_nn_activations_direct_q15 differs on negative inputs)."""
    from qverify.workflow import device_activation

    assert device_activation("softmax", "5.4.0") == "device"
    assert device_activation("sigmoid", "5.4.0") == "float" and device_activation("sigmoid", "5.7.0") == "float"
    assert device_activation("sigmoid", "5.8.0") == "device" and device_activation("sigmoid", "5.9.0") == "device"
    assert device_activation(None, "5.9.0") == "float"


def test_choice_never_breaks_a_contract_when_arm_has_a_legal_function():
    """Over many random conv shapes: the chosen function breaks no contract, and it is one of Arm's whenever
    one of Arm's is legal (qverify's kernel only where Arm has none)."""
    rng = np.random.default_rng(5)
    for _ in range(500):
        h, w = int(rng.integers(1, 20)), int(rng.choice([1, int(rng.integers(1, 20))]))
        k = (int(rng.integers(1, min(h, 5) + 1)), int(rng.integers(1, min(w, 5) + 1)))
        op = conv_op(
            (h, w, int(rng.integers(1, 5))),
            int(rng.integers(1, 5)),
            k,
            stride=(int(rng.integers(1, 3)), int(rng.integers(1, 3))),
        )
        assert kernels.violations(op, "truncate") == [], (op, op.function)
        arm_legal = [
            f.name
            for f in kernels.PREFERENCE["conv"]
            if f.arm and not kernels.violations(SimpleNamespace(**{**vars(op), "function": f.name}), "truncate")
        ]
        assert (op.function in arm_legal) if arm_legal else op.function == "qv_convolve_HWC_q15_basic_nonsquare"


def test_unknown_or_wrong_kind_function_is_bad_input(demo_plan):
    """A declared function that does not exist or computes another kind is refused (exit-2 error)."""
    with pytest.raises(PlanError, match="arm_conv_q15 is not a function qverify runs; expected one of"):
        kernels.assign(demo_plan, {"conv2": "arm_conv_q15"})
    with pytest.raises(PlanError, match="computes relu ops, not conv"):
        kernels.assign(demo_plan, {"conv2": "arm_relu_q15"})
    with pytest.raises(PlanError, match="not in the plan"):
        kernels.assign(demo_plan, {"conv99": FAST})


def test_cli_refuses_a_declared_call_that_breaks_its_contract(tmp_path, capsys):
    """compare/quantize/report with --function naming a fast conv for odd-width conv3: exit 1 before any kernel
    runs, one line naming op, function, condition and effect; quantize writes nothing."""
    code = main(["compare", "--samples", "1", "--function", f"conv3={FAST}"])
    out = capsys.readouterr().out
    assert code == 1
    assert (
        f"contract: conv3: {FAST} needs an even output width (this op: 253); Arm's Cortex-M4/M7 build never "
        "writes the last output pixel"
    ) in out
    assert "bit-exact" not in out  # nothing ran
    code = main(["quantize", "--out", str(tmp_path / "nn"), "--function", f"conv3={FAST}"])
    assert code == 1 and not (tmp_path / "nn").exists()
    assert main(["report", "--function", f"conv3={FAST}"]) == 1
    assert main(["compare", "--samples", "1", "--function", "conv3=nope"]) == 2
    assert "nope is not a function qverify runs" in capsys.readouterr().err


def test_declared_legal_function_is_verified_and_recorded(tmp_path, capsys):
    """A legal declared function (Arm's basic on a square... here the qv_ kernel for conv2) is what the plan
    records, what network.c's table calls and what the native runner runs."""
    out = tmp_path / "nn"
    assert main(["quantize", "--out", str(out), "--function", "conv2=qv_convolve_HWC_q15_basic_nonsquare"]) == 0
    meta = json.loads((out / "plan.json").read_text())
    assert {o["name"]: o["function"] for o in meta["ops"]}["conv2"] == "qv_convolve_HWC_q15_basic_nonsquare"
    assert (
        "conv2: conv" in (out / "weights.h").read_text()
        and "verified as qv_convolve_HWC_q15_basic_nonsquare" in (out / "weights.h").read_text()
    )
    capsys.readouterr()
    assert main(["compare", "--plan", str(out), "--samples", "1", "--kernels", "plain"]) == 0
    row = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("conv2 "))
    assert row.rstrip().endswith("qv_convolve_HWC_q15_basic_nonsquare")


# ---------------------------------------------------------------- Arm's behaviour, caught


def _pairing_plan(in_shape, cout, kernel, rng):
    op = op_plan(
        "conv",
        in_shape,
        cout=cout,
        kernel=kernel,
        out_rshift=12,
        weights=random_q15(rng, (*kernel, in_shape[2], cout), 4096),
        bias=random_q15(rng, (cout,), 4096),
    )
    plan = plan_of([op])
    op.function = FAST  # forced: the engines run what the plan says (the commands check the contract first)
    return plan


@pytest.fixture(scope="module")
def pairing_tree(tmp_path_factory):
    """A CMSIS tree whose fast conv pairs pixels along x as Arm's DSP path does."""
    return fake_cmsis_tree(tmp_path_factory.mktemp("pairing"), sources={FAST: PAIRING_FAST_NONSQUARE})


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("QVERIFY_CACHE_DIR", str(tmp_path / "cache"))


def test_pairing_kernel_odd_width_is_caught(pairing_tree, private_cache):
    """Arm-like pairing with output width 3 over 3 rows: the contract names it; run anyway, the outputs shift
    by one pixel from the second row on (a mismatch with the shift model) and the guard words after bufferA
    catch the column written past it."""
    rng = np.random.default_rng(3)
    plan = _pairing_plan((4, 4, 2), 2, (2, 2), rng)  # 3 x 3 outputs; a column is 8 values
    assert [v.condition for v in kernels.check_plan(plan)] == ["an even output width (this op: 3)"]
    engine = NativeEngine(plan, kernels="plain", cmsis_root=str(pairing_tree), threads=1)
    x = random_q15(rng, (1, 4, 4, 2))
    with pytest.raises(KernelFault, match=rf"conv: {FAST} wrote at least 16 bytes past the kernel buffer"):
        engine.run(x)
    # one row of odd width: nothing overruns, but the last pixel is never written
    plan = _pairing_plan((2, 4, 2), 2, (2, 2), rng)  # 1 x 3 outputs
    assert [v.condition for v in kernels.check_plan(plan)] == ["an even output width (this op: 3)"]
    x = random_q15(rng, (1, 2, 4, 2))
    got = NativeEngine(plan, kernels="plain", cmsis_root=str(pairing_tree), threads=1).run(x).outputs["conv"]
    want = ShiftEngine(plan).run(x).outputs["conv"]
    np.testing.assert_array_equal(got[:, :, :2], want[:, :, :2])
    assert (got[:, :, 2] != want[:, :, 2]).any()


def test_pairing_kernel_width_one_overruns_and_is_caught(pairing_tree, private_cache):
    """Width 1 (the old H = L, W = 1 call of a Conv1D): Arm-like pairing computes nothing and writes im2col
    columns past bufferA; the guard words name the op, the function and the bytes."""
    rng = np.random.default_rng(4)
    plan = _pairing_plan((4, 1, 2), 2, (2, 1), rng)
    op = plan.ops[0]
    assert kernels.call(op, length_on_x=False).out_x == 1
    # the runner passes a 1-D conv's length as x; force the other axis, as the old runner did
    engine = NativeEngine(plan, kernels="plain", cmsis_root=str(pairing_tree), threads=1)
    engine._ops[0].flags = 0
    with pytest.raises(KernelFault, match=rf"conv: {FAST} wrote at least 8 bytes past the kernel buffer"):
        engine.run(random_q15(rng, (1, 4, 1, 2)))


def test_pairing_kernel_meets_its_contract_when_the_length_is_on_x(pairing_tree, private_cache):
    """The same 1-D conv with its length passed as x (even output length): the Arm-like pairing kernel is bit
    exact with the shift model and writes nothing past any buffer."""
    rng = np.random.default_rng(6)
    plan = _pairing_plan((10, 1, 2), 4, (3, 1), rng)  # 8 outputs along x
    assert kernels.check_plan(plan) == []
    x = random_q15(rng, (3, 10, 1, 2))
    got = NativeEngine(plan, kernels="plain", cmsis_root=str(pairing_tree), threads=1).run(x)
    want = ShiftEngine(plan).run(x)
    np.testing.assert_array_equal(got.outputs["conv"], want.outputs["conv"])


def test_pairing_kernel_truncated_loop_count_differs(pairing_tree, private_cache):
    """ch_in * k_x * k_y >= 2^17: the uint16_t pair count truncates and part of the window is dropped; the
    contract names it, and the outputs differ from the shift model."""
    rng = np.random.default_rng(7)
    plan = _pairing_plan((5, 1, 32768), 2, (4, 1), rng)  # window 4 x 32768 = 2^17: 2^16 pairs, counted as 0
    (v,) = kernels.check_plan(plan)
    assert "ch_in * k_x * k_y below 131072 (this op: 131072)" in str(v), v
    x = random_q15(rng, (1, 5, 1, 32768))
    got = NativeEngine(plan, kernels="plain", cmsis_root=str(pairing_tree), threads=1).run(x).outputs["conv"]
    want = ShiftEngine(plan).run(x).outputs["conv"]
    assert (got != want).any()
    # the bundled kernels compute it exactly (their plain path has no such counter)
    np.testing.assert_array_equal(NativeEngine(plan, kernels="plain", threads=1).run(x).outputs["conv"], want)


@pytest.fixture(scope="module")
def demo_plan():
    from qverify.workflow import quantize

    return quantize().plan


@pytest.fixture(scope="module")
def demo_dsp_plan():
    """The demo for a firmware that runs only the DSP path (Cortex-M4/M7)."""
    from qverify.workflow import quantize

    return quantize(paths=("dsp",)).plan


def test_host_and_target_fail_alike_on_the_same_tree(pairing_tree, private_cache):
    """The Arm-like tree with the forced odd-width call: the host build and the emulated Cortex-M4 (its DSP
    path, cross-compiled from the same tree) both stop in that op, naming the overrun past bufferA."""
    from qverify.engines.target import TargetEngine
    from qverify.mcu import missing_reason
    from qverify.mcu.errors import TargetRunError
    from tools import absent

    reason = missing_reason()
    if reason is not None:
        absent(f"the target toolchain is missing: {reason}")
    rng = np.random.default_rng(3)
    plan = _pairing_plan((4, 4, 2), 2, (2, 2), rng)
    x = random_q15(rng, (1, 4, 4, 2))
    with pytest.raises(KernelFault, match="wrote at least 16 bytes past the kernel buffer"):
        NativeEngine(plan, kernels="plain", cmsis_root=str(pairing_tree), threads=1).run(x)
    with pytest.raises(TargetRunError, match="at least 16 bytes past the kernel buffer") as err:
        TargetEngine(plan, cpu="cortex-m4", cmsis_root=str(pairing_tree)).run(x)
    assert err.value.op == "conv"


def test_gate_fails_a_declared_call_that_breaks_its_contract(tmp_path):
    """[tool.qverify.functions] naming a fast conv for the odd-width conv3: the gate fails that op's
    contract[...] check before any engine runs, and writes nothing."""
    from qverify.config import load_config
    from qverify.gate import run_gate
    from qverify.outcome import check_id

    (tmp_path / "qverify.toml").write_text(
        f'[tool.qverify]\nsamples = 2\n\n[tool.qverify.functions]\nconv3 = "{FAST}"\n'
    )
    outcome = run_gate(load_config(tmp_path / "qverify.toml"), use_cache=False)
    assert not outcome.ok
    assert [check_id(c) for c in outcome.failures] == [f"conv3::contract[{FAST}]"]
    assert "even output width (this op: 253)" in outcome.failures[0].message
    assert not any(c.name.startswith("bit_exact") for c in outcome.checks)  # nothing ran
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "qverify.toml").write_text("[tool.qverify.functions]\nconv3 = 7\n")
    with pytest.raises(Exception, match=r"\[functions\] maps op names to C function names as strings"):
        load_config(bad / "qverify.toml")
