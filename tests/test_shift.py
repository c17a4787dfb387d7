"""The TensorFlow shift model against the numpy int64 reference, op kind by op kind."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference as ref
from qverify.engines import shift_ops
from qverify.engines.shift import ShiftEngine
from strategies import op_plan, plan_of, random_q15

ROUNDINGS = ("truncate", "round")


@pytest.fixture(params=["eager", "xla"])
def output_stage(request, monkeypatch):
    """Run the conv/dense output stage eagerly and XLA-compiled (large batches use XLA: shift_ops.py)."""
    monkeypatch.setattr(shift_ops, "XLA_MIN_SIZE", 0 if request.param == "xla" else 2**62)
    return request.param


@pytest.fixture(params=["taps", "conv2d"], autouse=True)
def conv_path(request, monkeypatch):
    """Every conv sums both ways: shifted slices (shift.TAPS_MAX large) and float64 conv2d (TAPS_MAX 0)."""
    from qverify.engines import shift

    monkeypatch.setattr(shift, "TAPS_MAX", 10**9 if request.param == "taps" else 0)
    return request.param


def check(plan, x, rounding):
    got = ShiftEngine(plan, rounding=rounding).run(x)
    want = ref.run_plan(plan, x, rounding)
    for op in plan.ops:
        out, sats, ovfs = want[op.name]
        assert np.array_equal(got.outputs[op.name], out), op.name
        assert got.saturations[op.name] == sats, op.name
        assert got.overflows[op.name] == ovfs, op.name
    return got


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("seed", range(4))
def test_conv_random(seed, rounding, output_stage):
    """2-D convs with k_h != k_w, strides, symmetric padding, odd channels match the reference."""
    rng = np.random.default_rng(seed)
    cin, cout = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 4))
    sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
    h, w = kh + int(rng.integers(0, 9)), kw + int(rng.integers(0, 6))
    op = op_plan(
        "conv",
        (h, w, cin),
        cout=cout,
        kernel=(kh, kw),
        stride=(sh, sw),
        pad=(ph, pw),
        weights=random_q15(rng, (kh, kw, cin, cout)),
        bias=random_q15(rng, cout),
        bias_lshift=int(rng.integers(0, 16)),
        out_rshift=int(rng.integers(10, 20)),
    )
    check(plan_of([op]), random_q15(rng, (3, h, w, cin)), rounding)


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_dense_saturates_and_wraps(rounding, output_stage):
    """Dense with a full-scale input saturates and overflows int32; both are counted and the wrap reproduced."""
    rng = np.random.default_rng(7)
    n_in, n_out = 300, 9
    w = np.full((n_in, n_out), 32767, np.int16)
    w[:, 1::2] = random_q15(rng, (n_in, n_out))[:, 1::2]
    op = op_plan("dense", (1, 1, n_in), cout=n_out, weights=w, bias=random_q15(rng, n_out), bias_lshift=3, out_rshift=5)
    x = np.full((4, 1, 1, n_in), 32767, np.int16)
    x[2:] = random_q15(rng, (2, 1, 1, n_in))
    got = check(plan_of([op]), x, rounding)
    assert got.overflows["dense"] > 0 and got.saturations["dense"] > 0


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_shift_zero_and_thirty_one(rounding, output_stage):
    """out_rshift 0 and 31 and bias_lshift 0 and 31 are handled exactly."""
    rng = np.random.default_rng(3)
    for bl, rs in ((0, 0), (31, 31), (0, 31), (31, 0)):
        op = op_plan(
            "dense",
            (1, 1, 8),
            cout=4,
            weights=random_q15(rng, (8, 4)),
            bias=random_q15(rng, 4),
            bias_lshift=bl,
            out_rshift=rs,
        )
        check(plan_of([op]), random_q15(rng, (5, 1, 1, 8)), rounding)


def test_pools_relu_gap_flatten():
    """Max/avg pooling with non-square windows and strides, ReLU, global average pooling and flatten."""
    rng = np.random.default_rng(11)
    x = random_q15(rng, (4, 13, 7, 3))
    ops = [
        op_plan("relu", (13, 7, 3), name="r"),
        op_plan("maxpool", (13, 7, 3), kernel=(3, 2), stride=(2, 1), name="mp"),
        op_plan("avgpool", (6, 6, 3), kernel=(2, 3), stride=(1, 3), name="ap"),
        op_plan("gap", (5, 2, 3), name="g"),
        op_plan("flatten", (1, 1, 3), name="f"),
    ]
    check(plan_of(ops), x, "truncate")
    # Negative sums divide toward zero, as C does: (-3) / 2 == -1.
    neg = plan_of([op_plan("avgpool", (1, 2, 1), kernel=(1, 2), stride=(1, 2)), op_plan("gap", (1, 1, 1), name="g")])
    out = ShiftEngine(neg).run(np.array([-1, -2], np.int16).reshape(1, 1, 2, 1)).outputs
    assert out["avgpool"].ravel().tolist() == [-1] and out["g"].ravel().tolist() == [-1]


def test_isolated_mode_feeds_reference_inputs():
    """In isolated mode each op sees the reference's previous output, not its own."""
    rng = np.random.default_rng(5)
    ops = [
        op_plan(
            "conv",
            (10, 1, 2),
            cout=2,
            kernel=(3, 1),
            weights=random_q15(rng, (3, 1, 2, 2)),
            bias=random_q15(rng, 2),
            bias_lshift=1,
            out_rshift=16,
            name="c",
        ),
        op_plan("relu", (8, 1, 2), name="r"),
    ]
    plan = plan_of(ops)
    x = random_q15(rng, (2, 10, 1, 2))
    engine = ShiftEngine(plan)
    reference = engine.run(x)
    reference.outputs["c"] = reference.outputs["c"] - 1
    iso = engine.run_isolated(x, reference)
    assert np.array_equal(iso.outputs["r"], np.maximum(reference.outputs["c"], 0))


def test_float32_would_not_be_exact():
    """Why float64: a float32 accumulation of realistic q15 data is off by one LSB somewhere; the engine is not."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    w = random_q15(rng, (9, 1, 16, 16), 16384)
    b = random_q15(rng, 16)
    x = random_q15(rng, (4, 512, 1, 16), 32768)
    op = op_plan("conv", (512, 1, 16), cout=16, kernel=(9, 1), weights=w, bias=b, bias_lshift=14, out_rshift=16)
    exact = check(plan_of([op]), x, "truncate").outputs["conv"]
    acc32 = tf.nn.conv2d(x.astype(np.float32), w.astype(np.float32), 1, "VALID") + b.astype(np.float32) * 2.0**14
    f32 = np.clip(np.floor(acc32.numpy() / 2**16), -32768, 32767)
    assert np.count_nonzero(f32 != exact) > 0


def _stage_args(acc, start, out_rshift):
    import tensorflow as tf

    consts = (2.0**-out_rshift, -32768.0, 32767.0)
    return (tf.constant(acc, tf.float64), tf.constant(start, tf.float64), *(tf.constant(c, tf.float64) for c in consts))


def _stage_reference(acc, start, out_rshift):
    """The output stage in numpy int64: wrap, shift, saturate, counts and peak (docs/design.md rule 4)."""
    exact = (acc + start).astype(np.int64)
    wrapped = ((exact + 2**31) % 2**32) - 2**31
    shifted = wrapped >> out_rshift
    out = np.clip(shifted, -32768, 32767)
    counts = int((out != shifted).sum()) + (int((wrapped != exact).sum()) << 32)
    peak = int(np.maximum(exact, -1 - exact).max()) if exact.size else -1
    return out.astype(np.int16), counts, peak


@settings(max_examples=60, deadline=None)
@given(
    span=st.sampled_from([2**20, 2**30, 2**31 - 1, 2**31, 2**32, 2**40]),
    out_rshift=st.integers(0, 31),
    seed=st.integers(0, 2**32 - 1),
    shape=st.sampled_from([(1, 1, 1, 1), (2, 7, 1, 3), (3, 64, 1, 16)]),
)
def test_bounded_output_stage_equals_the_reference(span, out_rshift, seed, shape):
    """shift_ops._bounded (counts and peak from the sums' bounds, XLA's full pass only when a sum leaves int32)
    equals the int64 reference, over spans that saturate, that reach int32's edges exactly and that wrap."""
    rng = np.random.default_rng(seed)
    acc = rng.integers(-span, span, shape, endpoint=True).astype(np.float64)
    start = rng.integers(-(2**20), 2**20, shape[-1]).astype(np.float64)
    # sums at each edge, one below and one above, where they fit the span: saturation up and down, int32
    edges = [(32767 + 1) << out_rshift, -32768 << out_rshift, 2**31, -(2**31)]
    flat, c = acc.reshape(-1), shape[-1]
    for edge in (e + d for e in edges for d in (-1, 0, 1) if abs(e + d) <= span):
        pos = int(rng.integers(0, flat.size))
        flat[pos] = edge - start[pos % c]  # acc + start lands on the edge
    want = _stage_reference(acc, start, out_rshift)
    for step in (shift_ops._bounded, shift_ops._requantize):
        out, counts, peak = step(*_stage_args(acc, start, out_rshift))
        assert np.array_equal(out.numpy(), want[0]) and (int(counts), int(peak)) == want[1:], step
