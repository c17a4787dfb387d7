"""Planning: shifts and their adjustments (docs/design.md rule 3), refusals, save/load and the hash."""

import json

import numpy as np
import pytest

from qverify.calibrate import Ranges
from qverify.errors import PlanError
from qverify.graph import Graph, Op
from qverify.plan import QuantPlan, make_plan


def dense_graph(weights, bias, n_in=4, n_out=3):
    op = Op(
        "fc",
        "dense",
        (1, 1, n_in),
        (1, 1, n_out),
        weights=np.asarray(weights, np.float32),
        bias=np.asarray(bias, np.float32),
        layer="fc",
    )
    return Graph((1, 1, n_in), (n_in,), [op], None)


def test_notebook_shift_formulas():
    """bias_lshift = f_w + f_in - f_b and out_rshift = f_w + f_in - f_out, no adjustment when both are >= 0."""
    g = dense_graph(np.full((4, 3), 0.3), [1.5, -0.2, 0.1])
    plan = make_plan(g, Ranges((-0.9, 0.9), {"fc": (-3.0, 3.0)}, 10))
    op = plan.ops[0]
    assert (plan.input_frac, op.w_frac, op.b_frac, op.out_frac) == (15, 15, 14, 13)
    assert (op.bias_lshift, op.out_rshift) == (16, 17)
    assert op.adjustments == []
    assert op.bias.tolist() == [24576, -3277, 1638]


def test_negative_bias_shift_requantizes_bias_and_is_recorded():
    """A bias finer than f_w + f_in is re-quantized at f_w + f_in, and the plan says so."""
    g = dense_graph(np.full((4, 3), 1000.0), [0.001, 0, 0])
    plan = make_plan(g, Ranges((-200.0, 200.0), {"fc": (-1e5, 1e5)}, 10))
    op = plan.ops[0]
    # f_in 7 + f_w 5 = 12 < f_b 15: bias_lshift would be -3
    assert (plan.input_frac, op.w_frac, op.out_frac) == (7, 5, -2)
    assert op.b_frac == 12 and op.bias_lshift == 0 and op.out_rshift == 14
    assert op.bias.tolist() == [4, 0, 0]
    assert len(op.adjustments) == 1 and "bias_lshift would be -3" in op.adjustments[0]


def test_negative_out_shift_widens_output_format_and_is_recorded():
    """An output format finer than f_w + f_in becomes f_w + f_in (out_rshift 0), recorded and propagated."""
    g = dense_graph(np.full((4, 3), 1000.0), [1.0, 0, 0])
    plan = make_plan(g, Ranges((-200.0, 200.0), {"fc": (-0.01, 0.01)}, 10))
    op = plan.ops[0]
    assert op.out_rshift == 0 and op.out_frac == op.w_frac + op.in_frac == 12
    assert any("out_rshift would be -" in a for a in op.adjustments)
    assert plan.adjustments and plan.adjustments[0].startswith("fc: ")


def test_shift_past_31_is_refused():
    """A shift outside [0, 31] is an error naming the op, never a silent clamp."""
    g = dense_graph(np.full((4, 3), 0.1), [0, 0, 0])
    with pytest.raises(PlanError, match=r"op 'fc': out_rshift 35 is outside \[0, 31\]"):
        make_plan(g, Ranges((-0.9, 0.9), {"fc": (-1e6, 1e6)}, 10))


def test_all_zero_weights_and_bias():
    """All-zero weights and bias give Q0.15 formats and zero integers."""
    g = dense_graph(np.zeros((4, 3)), np.zeros(3))
    op = make_plan(g, Ranges((-1.0, 0.5), {"fc": (0.0, 0.0)}, 10)).ops[0]
    assert (op.w_frac, op.b_frac, op.out_frac) == (15, 15, 15)
    assert not op.weights.any() and not op.bias.any()


def test_weight_saturation_is_counted():
    """A weight of exactly 1.0 saturates in Q0.15 and the plan counts it."""
    w = np.zeros((4, 3))
    w[0, 0] = 1.0
    op = make_plan(dense_graph(w, [0, 0, 0]), Ranges((-1.0, 0.5), {"fc": (0.0, 1.0)}, 10)).ops[0]
    assert op.weight_saturations == 1 and op.weights.max() == 32767


def test_save_load_roundtrip_and_hash(tmp_path):
    """A saved plan loads back identical; editing a shift changes the hash and a tampered file is refused."""
    g = dense_graph(np.random.default_rng(0).normal(size=(4, 3)) * 0.2, [0.1, 0.2, -0.3])
    plan = make_plan(g, Ranges((-1.0, 0.5), {"fc": (-2.0, 1.0)}, 10))
    plan.save(tmp_path)
    loaded = QuantPlan.load(tmp_path)
    assert loaded.hash == plan.hash
    assert np.array_equal(loaded.ops[0].weights, plan.ops[0].weights)
    assert loaded.ops[0].in_shape == (1, 1, 4)
    before = plan.hash
    plan.ops[0].out_rshift += 1
    assert plan.hash != before
    meta = json.loads((tmp_path / "plan.json").read_text())
    meta["ops"][0]["out_rshift"] += 1
    (tmp_path / "plan.json").write_text(json.dumps(meta))
    with pytest.raises(PlanError, match="does not match its hash"):
        QuantPlan.load(tmp_path)


def test_rounding_must_be_known():
    """Only truncate and round are firmware builds."""
    with pytest.raises(PlanError, match="rounding 'nearest'"):
        make_plan(
            dense_graph(np.ones((4, 3)) * 0.1, [0, 0, 0]),
            Ranges((-1.0, 0.5), {"fc": (0.0, 1.0)}, 1),
            rounding="nearest",
        )


def test_round_build_refuses_out_shift_31():
    """With rounding, out_rshift 31 is refused: CMSIS's NN_ROUND(31) is ((0x1 << 31) >> 1) = -2^30 in C."""
    g = dense_graph(np.full((4, 3), 0.1), [0, 0, 0])
    ranges = Ranges((-0.9, 0.9), {"fc": (-40000.0, 40000.0)}, 10)
    assert make_plan(g, ranges).ops[0].out_rshift == 31
    with pytest.raises(PlanError, match="out_rshift 31 with rounding"):
        make_plan(g, ranges, rounding="round")


def test_accumulator_overflow_is_warned_or_fitted():
    """An output that cannot fit the int32 accumulator at f_w + f_in is a warning; --fit-accumulator lowers f_w."""
    g = dense_graph(np.full((4, 3), 0.9), [0, 0, 0])
    ranges = Ranges((-0.9, 0.9), {"fc": (-10.0, 10.0)}, 10)
    plain = make_plan(g, ranges)
    assert plain.ops[0].w_frac == 15 and plain.ops[0].adjustments == []
    assert len(plain.warnings) == 1 and "int32 accumulator" in plain.warnings[0]
    fitted = make_plan(g, ranges, fit_accumulator=True).ops[0]
    assert fitted.w_frac == 12 and fitted.warnings == [] and "f_w = 12" in fitted.adjustments[0]
    assert 10.0 * 2.0 ** (fitted.w_frac + fitted.in_frac) < 2**31 <= 10.0 * 2.0 ** (fitted.w_frac + 1 + fitted.in_frac)
