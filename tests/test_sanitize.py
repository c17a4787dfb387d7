"""The sanitizer build (`compare --sanitize`): the plan's ops run under ASan + UBSan in a child process."""

from __future__ import annotations

import numpy as np
import pytest

from fake_cmsis import PAIRING_FAST_NONSQUARE, fake_cmsis_tree, over_reading_fully_connected
from qverify.engines.base import quantize_input
from qverify.engines.sanitized import SanitizedEngine
from qverify.engines.shift import ShiftEngine
from qverify.errors import KernelFault
from strategies import op_plan, plan_of, random_q15
from tools import require


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    require("gcc")
    monkeypatch.setenv("QVERIFY_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def demo():
    from qverify.workflow import quantize

    q = quantize()
    return q.plan, quantize_input(q.plan, q.x[:2])[0]


@pytest.mark.parametrize("kernels", ["dsp", "plain"])
def test_demo_runs_clean_and_bit_exact_under_sanitizers(demo, kernels):
    """Every op of the demo under ASan + UBSan, with exact-size buffers: no report, and the same integers as
    the shift model (propagated and one op alone)."""
    plan, x = demo
    engine = SanitizedEngine(plan, kernels)
    got, want = engine.run(x), ShiftEngine(plan).run(x)
    for op in plan.ops:
        np.testing.assert_array_equal(got.outputs[op.name], want.outputs[op.name], err_msg=op.name)
    i = plan.index("conv2")
    np.testing.assert_array_equal(engine.run_op(i, want.outputs["relu_conv1"]).out, want.outputs["conv2"])


def test_an_over_read_the_guard_words_cannot_see_is_named(tmp_path):
    """A tree whose fully-connected kernel reads one element past its input: the native build computes the
    right integers (guard words catch writes only); the sanitized build names the op and the read."""
    from qverify.engines.native import NativeEngine

    rng = np.random.default_rng(1)
    plan = plan_of(
        [
            op_plan(
                "dense",
                (1, 1, 6),
                cout=3,
                out_rshift=10,
                weights=random_q15(rng, (6, 3), 8192),
                bias=random_q15(rng, (3,), 8192),
                name="fc",
            )
        ]
    )
    tree = fake_cmsis_tree(tmp_path, sources={"arm_fully_connected_q15": over_reading_fully_connected()})
    x = random_q15(rng, (2, 1, 1, 6))
    want = ShiftEngine(plan).run(x).outputs["fc"]
    np.testing.assert_array_equal(
        NativeEngine(plan, "plain", cmsis_root=str(tree), threads=1).run(x).outputs["fc"], want
    )
    with pytest.raises(KernelFault, match=r"^fc: arm_fully_connected_q15: AddressSanitizer: heap-buffer-overflow"):
        SanitizedEngine(plan, "plain", cmsis_root=str(tree)).run(x)


def test_a_write_far_past_the_scratch_is_named(tmp_path):
    """Arm-like pairing with output width 1 over many rows writes im2col columns far past bufferA, beyond the
    guard words; the sanitized build stops at the first byte past the op's scratch and names the op."""
    rng = np.random.default_rng(2)
    op = op_plan(
        "conv",
        (40, 3, 2),
        cout=2,
        kernel=(3, 3),
        out_rshift=12,
        weights=random_q15(rng, (3, 3, 2, 2), 4096),
        bias=random_q15(rng, (2,), 4096),
        name="conv",
    )
    plan = plan_of([op])
    op.function = "arm_convolve_HWC_q15_fast_nonsquare"  # forced: width 1, which the contract refuses
    tree = fake_cmsis_tree(tmp_path, sources={"arm_convolve_HWC_q15_fast_nonsquare": PAIRING_FAST_NONSQUARE})
    with pytest.raises(
        KernelFault,
        match=r"^conv: arm_convolve_HWC_q15_fast_nonsquare: AddressSanitizer: "
        r"heap-buffer-overflow",
    ):
        SanitizedEngine(plan, "plain", cmsis_root=str(tree)).run(random_q15(rng, (1, 40, 3, 2)))
