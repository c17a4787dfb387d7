"""Headroom as eval reports it (issue 17 item 4): the int32 accumulator's beside the output format's, and a
network input beyond its format reported as input saturation, not as the first op's headroom."""

from __future__ import annotations

import math

import numpy as np

from qverify import checks
from qverify import evaluate as ev
from qverify.calibrate import calibrate
from qverify.dataset import DataSet
from qverify.graph import Graph, Op
from qverify.metrics import acc_headroom_bits
from qverify.plan import make_plan
from qverify.reports.html import _page as eval_html
from qverify.reports.text import format_eval


def dense_graph(weight: float, n_in: int = 4) -> Graph:
    op = Op(
        "fc",
        "dense",
        (1, 1, n_in),
        (1, 1, 1),
        weights=np.full((n_in, 1), weight, np.float32),
        bias=np.zeros(1, np.float32),
        layer="fc",
    )
    return Graph((1, 1, n_in), (n_in,), [op], None)


def data(peak: float, n: int = 200, n_in: int = 4) -> np.ndarray:
    """Uniform samples in [-peak, peak], the first one all +peak (the calibrated extreme)."""
    x = np.random.default_rng(1).uniform(-peak, peak, (n, n_in)).astype(np.float32)
    x[0] = peak
    return x


def run(plan, graph, x, engines=ev.ENGINE_NAMES):
    return checks.add_checks(
        ev.evaluate(plan, graph, DataSet(x, None, "test"), engines=list(engines), chunk=64, progress=False)
    )


def exact_peak(plan, x) -> int:
    """max(acc, -1 - acc) over the exact int64 sums of the one dense op (bias 0, truncate: no rounding term)."""
    op = plan.ops[0]
    xi = np.rint(x.astype(np.float64) * 2.0**plan.input_frac).clip(plan.qmin, plan.qmax).astype(np.int64)
    acc = xi @ op.weights.astype(np.int64).reshape(-1, 1)
    return int(np.maximum(acc, -1 - acc).max())


def test_acc_headroom_definition():
    """31 - log2(peak + 1): 0 at INT32_MAX (peak 2^31 - 1) and INT32_MIN (-1 - acc = 2^31 - 1), < 0 one beyond."""
    assert acc_headroom_bits(2**31 - 1) == 0.0
    assert acc_headroom_bits(2**31) < 0
    assert acc_headroom_bits(0) == 31.0
    assert acc_headroom_bits(2**30 - 1) == 1.0


def test_wrapping_accumulator_shows_negative_acc_headroom_beside_a_fitting_output():
    """--no-fit-accumulator formats: the calibrated output 4 * 0.9 * 0.9 = 3.24 fits Q2.13 (out headroom >= 0)
    but 3.24 * 2^30 leaves int32, so the accumulator wraps: acc headroom < 0, from the shift model's exact sums,
    ovf > 0."""
    g = dense_graph(0.9)
    x = data(0.9)
    plan = make_plan(g, calibrate(g, x), fit_accumulator=False)
    assert plan.warnings and "int32 accumulator" in plan.warnings[0]
    r = run(plan, g, x)
    o = r.ops[0]
    s = o.quant["shift"]
    assert s.headroom_bits >= 0 and s.saturations == 0
    assert s.overflows and s.overflows > 0
    assert o.acc_peak == exact_peak(plan, x) > 2**31 - 1
    acc = o.acc_headroom
    assert acc is not None and acc[1] and acc[0] < 0
    assert math.isclose(acc[0], 31 - math.log2(o.acc_peak + 1))
    # the calibrated estimate says the same
    assert o.calib_acc_headroom_bits is not None and o.calib_acc_headroom_bits < 0
    text = format_eval(r)
    row = next(line for line in text.splitlines() if line.startswith("  fc "))
    assert f"{acc[0]:+.2f}" in row and f"{s.headroom_bits:+.2f}" in row
    assert "acc headroom: bits left in the int32 accumulator" in text and "< 0 exactly when a sum wrapped" in text
    assert r.to_dict()["ops"][0]["acc_headroom_bits"] == acc[0]
    check = next(c for c in r.checks if c.name == "accumulator_overflow")
    assert f"acc headroom {acc[0]:+.2f} bits" in check.message
    page = eval_html(r, {})
    assert "acc headroom bits" in page and "bits left in the int32 accumulator" in page


def test_acc_headroom_fits_with_fit_accumulator_and_is_estimated_without_the_shift_model():
    """The fitted plan leaves the accumulator margin (acc headroom >= 0, no overflow); without the shift model
    the column is the calibrated estimate, marked '~'."""
    g = dense_graph(0.9)
    x = data(0.9)
    plan = make_plan(g, calibrate(g, x), fit_accumulator=True)
    r = run(plan, g, x)
    o = r.ops[0]
    assert o.quant["shift"].overflows == 0
    acc = o.acc_headroom
    assert acc is not None and acc[1] and 0 <= acc[0] < 1
    alone = run(plan, g, x, engines=("float", "native"))
    est = alone.ops[0].acc_headroom
    assert est is not None and not est[1] and 0 <= est[0] < 1
    assert abs(est[0] - acc[0]) < 0.01
    row = next(line for line in format_eval(alone).splitlines() if line.startswith("  fc "))
    assert f"~{est[0]:+.2f}" in row


def test_input_beyond_its_format_is_input_saturation_not_the_first_ops_headroom():
    """Calibrated on [-1.9, 1.9] (input Q1.14, fc output 0.6 * 1.9 in Q1.14); one sample at 100 is clipped to
    the input format's 2 - 2^-14, so fc receives 4 * 0.15 * 2 = 1.2, within Q1.14: fc's headroom stays >= 0
    (measured on what it received, as on the clipped data itself) and the input saturation is its own line."""
    g = dense_graph(0.15)
    cal = data(1.9)
    plan = make_plan(g, calibrate(g, cal), fit_accumulator=True)
    assert (plan.input_frac, plan.ops[0].out_frac) == (14, 14)
    x = cal.copy()
    x[5] = 100.0
    r = run(plan, g, x)
    s = r.ops[0].quant["shift"]
    assert r.input_saturations == 4 and r.input_values == x.size
    assert s.saturations == 0 and s.float_saturating == 0
    assert s.headroom_bits >= 0
    limit = plan.qmax * 2.0**-plan.input_frac
    clipped = run(plan, g, np.clip(x, -limit, limit))
    assert clipped.input_saturations == 0
    assert s.headroom_bits == clipped.ops[0].quant["shift"].headroom_bits
    text = format_eval(r)
    line = next(ln for ln in text.splitlines() if "input saturation:" in ln)
    assert "4 of 800 input values saturated at Q1.14" in line and ", 100], Q1.14 holds [-2, 1.99994]" in line
    assert r.to_dict()["input"]["float_range"][1] == 100.0
    assert "input saturation: 4 of 800" in eval_html(r, {})
    assert "input saturation:" not in format_eval(clipped)
