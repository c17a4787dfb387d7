"""Properties 4-6: every op kind computes the same integers in the numpy int64 reference, the
TensorFlow shift engine and the native C kernels (DSP and plain paths, and the fast build's
host SIMD conv at each SIMD level of the CPU; both roundings),
including where the int32 accumulator wraps, and overflows are reported exactly.

Each property is a `check_*` function that takes the implementation under test (an engine
class or a runner function); the `*_catches_*` tests run the same checks on deliberately
broken implementations (the notebook's float32 model, a floor model against a rounding
build, a saturating accumulator, a counter of partial sums, an engine without the wrap)
and show that Hypothesis finds inputs where they fail.

Kernel-level cases may pair out_rshift 31 with rounding "round". make_plan refuses that plan
(CMSIS-NN 5.x writes NN_ROUND(31) as ((0x1 << 31) >> 1) = -2^30), but these cases are built
with op_plan, bypassing make_plan: the bundled kernels (NN_ROUND with 0x1u, +2^30), the
shift engine ((1 << 31) >> 1 in Python, +2^30) and the reference all add +2^30 there, and the
check holds them to agree on it.
"""

from __future__ import annotations

import math
import random

import numpy as np
import tensorflow as tf
from hypothesis import Phase, event, example, find, given, settings
from hypothesis import strategies as st

import reference as ref
from native_paths import NATIVE_PATHS, native_engine
from qverify.engines.shift import ShiftEngine
from strategies import QMAX, QMIN, OpCase, examples, fails, op_cases, shape_cases, wrapping_cases

ROUNDINGS = ("truncate", "round")
KERNELS = NATIVE_PATHS
roundings = st.sampled_from(ROUNDINGS)
FIND = settings(max_examples=150, database=None, deadline=None, phases=[Phase.generate])
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


# ---------------------------------------------------------------- runners


def run_reference(case: OpCase, rounding: str):
    x, _, _ = case.tensors()
    return ref.run_op(case.op(), x, rounding)


def run_shift(case: OpCase, rounding: str, engine_cls=ShiftEngine):
    x, _, _ = case.tensors()
    r = engine_cls(case.plan(rounding)).run_op(0, x)
    return r.out, r.saturations, r.overflows


def run_native(case: OpCase, rounding: str, kernels: str) -> np.ndarray:
    x, _, _ = case.tensors()
    return native_engine(case.plan(rounding), kernels).run_op(0, x).out


def exact_acc(case: OpCase, rounding: str) -> np.ndarray:
    """The exact accumulator (N, H, W, C_out) in int64: (bias << bias_lshift) + Σ w·x (+ NN_ROUND),
    computed with sliding windows and a tensordot (not the reference's loop over taps)."""
    x, w, b = (np.asarray(a, np.int64) for a in case.tensors())
    start = b * 2**case.bias_lshift + (((1 << case.out_rshift) >> 1) if rounding == "round" else 0)
    if case.kind == "dense":
        return (x.reshape(len(x), -1) @ w + start).reshape(len(x), 1, 1, -1)
    (kh, kw), (sh, sw), (ph, pw) = case.kernel, case.stride, case.pad
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]  # N, OH, OW, C, kh, kw
    return np.tensordot(win, w, axes=([4, 5, 3], [0, 1, 2])) + start


def finish(acc: np.ndarray, out_rshift: int) -> np.ndarray:
    """Wrap to int32, arithmetic shift, saturate (docs/design.md rule 4)."""
    wrapped = ((acc + 2**31) % 2**32) - 2**31
    return np.clip(wrapped >> out_rshift, QMIN, QMAX).astype(np.int16)


# ---------------------------------------------------------------- broken implementations


class Float32ShiftEngine(ShiftEngine):
    """The notebook's shift model: Keras float32 conv/dense with the shifted bias, floor(acc / 2^s), clip."""

    def _op(self, op, x):
        if op.kind not in ("conv", "dense"):
            return super()._op(op, x)
        w, start = self._weights[op.name]
        w, start = tf.cast(w, tf.float32), tf.cast(start, tf.float32)
        h = tf.constant(x, tf.float32)
        if op.kind == "conv":
            ph, pw = op.pad
            acc = tf.nn.conv2d(h, w, strides=[1, *op.stride, 1], padding=[[0, 0], [ph, ph], [pw, pw], [0, 0]])
        else:
            acc = tf.reshape(tf.matmul(tf.reshape(h, (-1, op.in_shape[2])), w), (-1, 1, 1, op.out_shape[2]))
        out = tf.clip_by_value(tf.floor((acc + start) / 2.0**op.out_rshift), QMIN, QMAX)
        return tf.cast(out, tf.int16).numpy(), 0, 0


class FloorShiftEngine(ShiftEngine):
    """The notebook's floor emulation whatever the firmware build: right for truncate builds only."""

    def __init__(self, plan):
        super().__init__(plan, rounding="truncate")


class NoWrapShiftEngine(ShiftEngine):
    """Computes the exact sum and counts overflows, but shifts it unwrapped (saturating instead)."""

    def _op(self, op, x):
        if op.kind not in ("conv", "dense"):
            return super()._op(op, x)
        w, start = self._weights[op.name]
        h = tf.constant(x, dtype=tf.float64)
        if op.kind == "conv":
            ph, pw = op.pad
            acc = tf.nn.conv2d(h, w, strides=[1, *op.stride, 1], padding=[[0, 0], [ph, ph], [pw, pw], [0, 0]])
        else:
            acc = tf.reshape(tf.matmul(tf.reshape(h, (-1, op.in_shape[2])), w), (-1, 1, 1, op.out_shape[2]))
        acc = tf.cast(acc + start, tf.int64)
        overflows = int(tf.math.count_nonzero((acc < INT32_MIN) | (acc > INT32_MAX)))
        shifted = tf.bitwise.right_shift(acc, tf.constant(op.out_rshift, tf.int64))
        return tf.cast(tf.clip_by_value(shifted, QMIN, QMAX), tf.int16).numpy(), 0, overflows


class PartialSumShiftEngine(ShiftEngine):
    """Reports an overflow for every output where a running partial sum (bias first, then the products
    in CMSIS [k_h][k_w][c_in] order) leaves int32, even when the final sum is back inside."""

    case: OpCase

    def run_op(self, index, x):
        r = super().run_op(index, x)
        r.overflows = partial_sum_overflows(self.case, self.rounding)
        return r


def partial_sum_overflows(case: OpCase, rounding: str) -> int:
    x, w, b = (np.asarray(a, np.int64) for a in case.tensors())
    start = b * 2**case.bias_lshift + (((1 << case.out_rshift) >> 1) if rounding == "round" else 0)
    if case.kind == "dense":
        products = x.reshape(len(x), 1, 1, -1, 1) * w  # N, 1, 1, in, out
    else:
        (kh, kw), (sh, sw), (ph, pw) = case.kernel, case.stride, case.pad
        xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
        win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]
        taps = win.transpose(0, 1, 2, 4, 5, 3).reshape(*win.shape[:3], -1)  # [k_h][k_w][c_in]
        products = taps[..., None] * w.reshape(-1, w.shape[-1])
    partial = start + np.cumsum(products, axis=3)
    return int(np.count_nonzero(((partial < INT32_MIN) | (partial > INT32_MAX)).any(axis=3)))


def partial_sum_engine(case: OpCase):
    return type("Bound", (PartialSumShiftEngine,), {"case": case})


def saturating_accumulator(case: OpCase, rounding: str, kernels: str = "dsp") -> np.ndarray:
    """A DSP path written with saturating adds (__QADD) instead of SMLAD's wrap (non-weighted ops: the real one)."""
    if case.kind not in ("conv", "dense"):
        return run_native(case, rounding, kernels)
    acc = np.clip(exact_acc(case, rounding), INT32_MIN, INT32_MAX)
    return np.clip(acc >> case.out_rshift, QMIN, QMAX).astype(np.int16)


# ---------------------------------------------------------------- checks


def first(diff: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in diff[0])


def check_kernel_exactness(case: OpCase, rounding: str, shift_cls=ShiftEngine, native=run_native) -> None:
    """Property 4: reference, shift engine and the native engine (DSP and plain, built with the same
    rounding) give identical integers; the shift engine counts the reference's saturations and overflows."""
    want, sats, ovfs = run_reference(case, rounding)
    got, got_sats, got_ovfs = run_shift(case, rounding, shift_cls)
    assert got.shape == want.shape and got.dtype == np.int16
    diff = np.argwhere(got != want)
    assert len(diff) == 0, (
        f"shift engine differs from the reference at {len(diff)} of {want.size} values, "
        f"first (n, h, w, c) {first(diff)}: {got[first(diff)]} != {want[first(diff)]}"
    )
    if case.kind in ("conv", "dense"):
        assert (got_sats, got_ovfs) == (sats, ovfs), (
            f"(saturations, overflows) {(got_sats, got_ovfs)} != {(sats, ovfs)}"
        )
    for kernels in KERNELS:
        out = native(case, rounding, kernels)
        diff = np.argwhere(out != want)
        assert len(diff) == 0, (
            f"native {kernels}/{rounding} differs at {len(diff)} of {want.size} values, first "
            f"(n, h, w, c) {first(diff)}: {out[first(diff)]} != {want[first(diff)]}"
        )


def check_paths_agree(case: OpCase, rounding: str, run_dsp, run_plain, names=("dsp", "plain")) -> None:
    """Property 5: the ARM_MATH_DSP path and the plain-C path (or any two paths) give identical integers."""
    dsp, plain = run_dsp(case, rounding), run_plain(case, rounding)
    diff = np.argwhere(dsp != plain)
    assert len(diff) == 0, (
        f"{names[0]} and {names[1]} paths differ at {len(diff)} of {dsp.size} values, first "
        f"{first(diff)}: {names[0]} {dsp[first(diff)]}, {names[1]} {plain[first(diff)]}"
    )


def check_overflow_reporting(case: OpCase, rounding: str, shift_cls=ShiftEngine) -> None:
    """Property 6: the shift engine reports an overflow for exactly the outputs whose exact accumulator
    leaves int32, and it and both native paths produce the wrapped result."""
    acc = exact_acc(case, rounding)
    leaving = int(np.count_nonzero((acc < INT32_MIN) | (acc > INT32_MAX)))
    want = finish(acc, case.out_rshift)
    got, _, overflows = run_shift(case, rounding, shift_cls)
    assert overflows == leaving, f"{overflows} overflows reported, the exact sum leaves int32 at {leaving} outputs"
    assert np.array_equal(got, want), "shift engine output is not the wrapped result"
    for kernels in KERNELS:
        assert np.array_equal(run_native(case, rounding, kernels), want), f"native {kernels} is not the wrapped result"


# ---------------------------------------------------------------- pinned examples

# Pin: the notebook's float32 floor model is one LSB off where the float64-exact engine is not:
# acc = 32767² - 2 = 1073676287 needs 30 bits; float32 keeps 1073676288 = 32766 · 2^15, so its floor gives
# 32766 where the exact 1073676287 >> 15 is 32765.
FLOAT32_OFF_BY_ONE = OpCase("dense", (1, 1, 2), cout=1, out_rshift=15, x=(32767, 2), w=(32767, -1), b=(0,))
# Pin: floor emulation matches only truncate builds: acc = 1, out_rshift 1 is 0 truncated and 1 rounded.
ROUND_BUILD = OpCase("dense", (1, 1, 1), cout=1, out_rshift=1, x=(1,), w=(1,), b=(0,))
# A 3x3x4 all-QMIN conv: the exact sum 36 * 2^30 = 9 * 2^32 wraps to 0, so the output is the bias, 5.
WRAP = OpCase("conv", (3, 3, 4), cout=2, kernel=(3, 3), x_fill="qmin", w_fill="qmin", b=(5, 0))
# A 3x2 kernel (k_h != k_w, odd channels) with 'same'-style padding and strides.
CONV_3X2 = OpCase(
    "conv", (7, 6, 3), batch=2, cout=5, kernel=(3, 2), stride=(2, 1), pad=(1, 0), bias_lshift=4, out_rshift=17, seed=1
)
# ReLU6 at f = -2: 6 * 2^-2 = 1.5, the bound 1 (rounded down); x 0..3 and a negative.
RELU6_F_MINUS_2 = OpCase("relu6", (1, 1, 5), x=(0, 1, 2, 3, -5), frac=-2)
# out_rshift 31 with rounding: +2^30 everywhere (see the module docstring); bias_lshift 31.
SHIFT_31 = OpCase("dense", (1, 1, 3), cout=2, bias_lshift=31, out_rshift=31, x_fill="extreme", w_fill="extreme", seed=3)


@settings(max_examples=examples(6.0))
@given(case=op_cases(), rounding=roundings)
@example(case=FLOAT32_OFF_BY_ONE, rounding="truncate")
@example(case=ROUND_BUILD, rounding="round")
@example(case=ROUND_BUILD, rounding="truncate")
@example(case=WRAP, rounding="truncate")
@example(case=CONV_3X2, rounding="round")
@example(case=SHIFT_31, rounding="round")
@example(
    case=OpCase("conv", (5, 1, 1), cout=1, kernel=(3, 1), x_fill="zero", w_fill="zero", b_fill="zero"),
    rounding="truncate",
)  # all-zero tensors
@example(case=OpCase("avgpool", (3, 2, 1), kernel=(3, 2), x=(-3, 0, 0, 0, 0, 0)), rounding="truncate")  # C division
@example(
    case=OpCase("dense", (1, 1, 1024), batch=2, cout=1024, bias_lshift=7, out_rshift=20, seed=5), rounding="round"
)  # the widest dense
@example(
    case=OpCase(
        "conv", (10, 9, 64), cout=64, kernel=(9, 9), pad=(4, 4), stride=(3, 3), bias_lshift=3, out_rshift=22, seed=6
    ),
    rounding="truncate",
)  # the largest kernel and channel counts
@example(case=RELU6_F_MINUS_2, rounding="truncate")
def test_kernels_exact_across_engines(case, rounding):
    """Property 4: every op kind: reference == shift engine == native (DSP and plain) with matching rounding."""
    event(case.kind)
    check_kernel_exactness(case, rounding)


@settings(max_examples=examples(4.0))
@given(case=st.one_of(op_cases(), wrapping_cases()), rounding=roundings)
@example(case=WRAP, rounding="truncate")
@example(case=WRAP, rounding="round")
@example(case=CONV_3X2, rounding="truncate")
@example(case=SHIFT_31, rounding="round")
def test_dsp_and_plain_paths_identical(case, rounding):
    """Property 5: the DSP and plain kernel paths give identical integers, including where the accumulator wraps."""
    if case.kind in ("conv", "dense"):
        acc = exact_acc(case, rounding)
        event(f"accumulator wraps: {bool(((acc < INT32_MIN) | (acc > INT32_MAX)).any())}")
    check_paths_agree(case, rounding, lambda c, r: run_native(c, r, "dsp"), lambda c, r: run_native(c, r, "plain"))


FAST_PATHS = [path for path in KERNELS if path.startswith("fast")]
# 17 output channels (a full block of 16 and a partial one), an odd patch length (3 x 5 x 1 = 15), 11 output
# pixels (one full group of 8 and a partial one).
CONV_BLOCKS = OpCase("conv", (13, 5, 1), batch=2, cout=17, kernel=(3, 5), bias_lshift=2, out_rshift=14, seed=11)


@settings(max_examples=examples(4.0))
@given(case=st.one_of(op_cases(("conv",)), wrapping_cases().filter(lambda c: c.kind == "conv")), rounding=roundings)
@example(case=CONV_BLOCKS, rounding="round")
@example(case=WRAP, rounding="truncate")
@example(case=CONV_3X2, rounding="round")
def test_host_simd_conv_identical_to_the_kernels(case, rounding):
    """Property 5b: the fast build's host SIMD conv, at each SIMD level of this CPU, gives the plain
    kernels' integers, including where the accumulator wraps."""
    plain = lambda c, r: run_native(c, r, "plain")  # noqa: E731
    for path in FAST_PATHS:
        check_paths_agree(case, rounding, lambda c, r, path=path: run_native(c, r, path), plain, (path, "plain"))


@settings(max_examples=examples(4.0))
@given(case=st.one_of(wrapping_cases(), op_cases(("conv", "dense"))), rounding=roundings)
@example(case=WRAP, rounding="truncate")
@example(case=SHIFT_31, rounding="round")
@example(case=OpCase("dense", (1, 1, 2), cout=1, x=(QMIN, QMIN), w=(QMIN, QMIN), b=(0,)), rounding="truncate")
@example(case=OpCase("dense", (1, 1, 2), cout=1, x=(QMIN, 1), w=(QMIN, QMIN), b=(0,)), rounding="truncate")
def test_overflow_reported_iff_exact_sum_leaves_int32(case, rounding):
    """Property 6: overflow reported iff the exact sum leaves int32; every engine yields the wrapped result."""
    acc = exact_acc(case, rounding)
    event(f"accumulator leaves int32: {bool(((acc < INT32_MIN) | (acc > INT32_MAX)).any())}")
    check_overflow_reporting(case, rounding)


# ---------------------------------------------------------------- the checks catch broken implementations


def test_exactness_check_catches_float32_and_floor_models():
    """Property 4 rejects the notebook's float32 model (on its pin and on generated cases) and a floor
    model run against a rounding build."""
    assert not fails(check_kernel_exactness, FLOAT32_OFF_BY_ONE, "truncate")
    assert fails(check_kernel_exactness, FLOAT32_OFF_BY_ONE, "truncate", Float32ShiftEngine)
    assert fails(check_kernel_exactness, ROUND_BUILD, "round", FloorShiftEngine)
    assert not fails(check_kernel_exactness, ROUND_BUILD, "truncate", FloorShiftEngine)
    weighted = op_cases(("conv", "dense"))
    find(
        weighted,
        lambda c: fails(check_kernel_exactness, c, "truncate", Float32ShiftEngine),
        settings=FIND,
        random=random.Random(6),
    )
    find(
        weighted,
        lambda c: fails(check_kernel_exactness, c, "round", FloorShiftEngine),
        settings=FIND,
        random=random.Random(7),
    )


def test_exactness_check_catches_a_relu6_bound_rounded_up():
    """Property 4 rejects a shift model whose ReLU6 bound is 6 * 2^f rounded up (2 at f = -2), not down."""
    from unittest import mock

    from qverify.engines import shift as shift_mod

    def rounded_up(frac, bits=16):
        return min(math.ceil(math.ldexp(6.0, frac)), QMAX)

    assert not fails(check_kernel_exactness, RELU6_F_MINUS_2, "truncate")
    with mock.patch.object(shift_mod, "relu6_max", rounded_up):
        assert fails(check_kernel_exactness, RELU6_F_MINUS_2, "truncate")
        find(
            shape_cases(("relu6",)),
            lambda c: fails(check_kernel_exactness, c, "truncate"),
            settings=FIND,
            random=random.Random(9),
        )


def test_paths_check_catches_a_saturating_accumulator():
    """Property 5 rejects a DSP path that saturates its accumulator instead of wrapping like SMLAD."""
    plain = lambda c, r: run_native(c, r, "plain")  # noqa: E731
    assert fails(check_paths_agree, WRAP, "truncate", saturating_accumulator, plain)
    find(
        wrapping_cases(),
        lambda c: fails(check_paths_agree, c, "truncate", saturating_accumulator, plain),
        settings=FIND,
        random=random.Random(8),
    )


def lanes_not_restored(case: OpCase, rounding: str) -> np.ndarray:
    """An AVX2 conv that stores _mm256_packs_epi32's lane-interleaved order (the permute left out):
    channels 4-7 and 8-11 of each block of 16 swap places."""
    out = run_native(case, rounding, "plain")
    order = np.arange(out.shape[-1])
    for block in range(0, len(order) - 11, 16):
        order[block + 4 : block + 12] = np.r_[block + 8 : block + 12, block + 4 : block + 8]
    return out[..., order]


def last_group_dropped(case: OpCase, rounding: str) -> np.ndarray:
    """A SIMD conv whose pixel loop stops after the last full group of 8 pixels (the rest stay 0)."""
    out = run_native(case, rounding, "plain").copy()
    flat = out.reshape(out.shape[0], -1, out.shape[-1])
    flat[:, len(flat[0]) // 8 * 8 :, :] = 0
    return out


def test_host_simd_check_catches_lane_order_and_dropped_pixels():
    """Property 5b rejects a conv with the AVX2 lane order left unrestored and one that drops the
    last partial group of pixels."""
    plain = lambda c, r: run_native(c, r, "plain")  # noqa: E731
    assert fails(check_paths_agree, CONV_BLOCKS, "round", lanes_not_restored, plain)
    assert fails(check_paths_agree, CONV_BLOCKS, "round", last_group_dropped, plain)
    convs = op_cases(("conv",))
    find(
        convs,
        lambda c: fails(check_paths_agree, c, "truncate", lanes_not_restored, plain),
        settings=FIND,
        random=random.Random(10),
    )
    find(
        convs,
        lambda c: fails(check_paths_agree, c, "truncate", last_group_dropped, plain),
        settings=FIND,
        random=random.Random(11),
    )


def test_overflow_check_catches_partial_sum_counting_and_a_dropped_wrap():
    """Property 6 rejects a counter of partial-sum overflows (a final sum back inside int32 is no overflow)
    and a shift engine that counts overflows but does not wrap."""
    # partial sums 2^30, 2^31 (outside int32), then 2^30 + 2^15: the final sum is back inside
    back_inside = OpCase("dense", (1, 1, 3), cout=1, x=(QMIN, QMIN, QMAX), w=(QMIN, QMIN, QMIN), b=(0,))
    assert not fails(check_overflow_reporting, back_inside, "truncate")
    assert fails(check_overflow_reporting, back_inside, "truncate", partial_sum_engine(back_inside))
    find(
        wrapping_cases(),
        lambda c: fails(check_overflow_reporting, c, "truncate", partial_sum_engine(c)),
        settings=FIND,
        random=random.Random(9),
    )
    assert fails(check_overflow_reporting, WRAP, "truncate", NoWrapShiftEngine)
    find(
        wrapping_cases(),
        lambda c: fails(check_overflow_reporting, c, "truncate", NoWrapShiftEngine),
        settings=FIND,
        random=random.Random(10),
    )
