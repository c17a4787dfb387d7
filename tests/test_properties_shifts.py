"""Property 3: after planning, shifts lie in [0, 31] and every adjustment is the one docs/design.md rule 3 prescribes.

The check recomputes rule 1 (formats, exactly, with frexp) and rule 3 (shifts, adjustments,
refusals) independently of qverify.plan and compares them with what a planner returned.
Graphs are built from Op objects directly (no Keras), so many examples are cheap.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from unittest import mock

import numpy as np
from hypothesis import Phase, event, example, find, given, settings
from hypothesis import strategies as st

import qverify.plan
from qverify.calibrate import Ranges
from qverify.errors import PlanError
from qverify.graph import Graph, Op
from qverify.layout import conv_to_cmsis, dense_to_cmsis
from qverify.plan import make_plan
from qverify.qformat import frac_bits, quantize
from strategies import examples, fails

FIND = settings(max_examples=300, database=None, deadline=None, phases=[Phase.generate])


# ---------------------------------------------------------------- cases


@dataclass(frozen=True)
class WeightedSpec:
    """A conv (first op only) or dense op: its float weights/bias are base · 2^exp with base
    'normal' (N(0, 1)), 'unit' (±1: the maximum is exactly 2^exp) or 'zero'; out_range is its
    calibrated output range; `after` is an unweighted op following it (keeps the format)."""

    kind: str = "dense"
    n_out: int = 3
    w_exp: int = 0
    w_kind: str = "normal"
    b_exp: int = 0
    b_kind: str = "normal"
    out_range: tuple[float, float] = (-1.0, 1.0)
    after: str | None = None


@dataclass(frozen=True)
class PlanCase:
    """A chain of weighted ops (each maybe followed by a ReLU or GAP) with calibrated ranges, the
    input range, the firmware's rounding, the format rule and the seed of the float weights."""

    input_range: tuple[float, float]
    ops: tuple[WeightedSpec, ...]
    n_in: int = 4
    rounding: str = "truncate"
    seed: int = 0
    rule: str = "notebook"

    def graph_and_ranges(self) -> tuple[Graph, Ranges]:
        rng = np.random.default_rng(self.seed)

        def values(shape, exp, kind):
            if kind == "zero":
                return np.zeros(shape, np.float32)
            base = rng.standard_normal(shape) if kind == "normal" else rng.choice([-1.0, 1.0], size=shape)
            return (base * 2.0**exp).astype(np.float32)

        shape = (4, 4, self.n_in) if self.ops[0].kind == "conv" else (1, 1, self.n_in)
        first = shape
        ops, ranges = [], {}
        for i, spec in enumerate(self.ops):
            name = f"op{i}"
            if spec.kind == "conv":
                w = values((3, 2, shape[2], spec.n_out), spec.w_exp, spec.w_kind)
                out = (shape[0] - 2, shape[1] - 1, spec.n_out)
                ops.append(
                    Op(
                        name,
                        "conv",
                        shape,
                        out,
                        (3, 2),
                        (1, 1),
                        (0, 0),
                        w,
                        values((spec.n_out,), spec.b_exp, spec.b_kind),
                        name,
                    )
                )
            else:
                n_in = shape[0] * shape[1] * shape[2]
                if shape[:2] != (1, 1):
                    ops.append(Op(f"{name}_flat", "flatten", shape, (1, 1, n_in), layer=name))
                    ranges[f"{name}_flat"] = ranges[ops[-2].name]
                out = (1, 1, spec.n_out)
                ops.append(
                    Op(
                        name,
                        "dense",
                        (1, 1, n_in),
                        out,
                        weights=values((n_in, spec.n_out), spec.w_exp, spec.w_kind),
                        bias=values((spec.n_out,), spec.b_exp, spec.b_kind),
                        layer=name,
                    )
                )
            ranges[name] = tuple(float(np.float32(v)) for v in spec.out_range)
            shape = out
            if spec.after:
                out = (1, 1, shape[2]) if spec.after == "gap" else shape
                ops.append(Op(f"{name}_{spec.after}", spec.after, shape, out, layer=name))
                lo, hi = ranges[name]
                ranges[ops[-1].name] = (max(lo, 0.0), max(hi, 0.0)) if spec.after == "relu" else (lo, hi)
                shape = out
        graph = Graph(first, first, ops, None)
        lo, hi = (float(np.float32(v)) for v in self.input_range)
        return graph, Ranges((lo, hi), ranges, 10)


exps = st.integers(-14, 14)
kinds = st.sampled_from(["normal", "unit", "zero"])


@st.composite
def ranges_(draw):
    """A float32 range: zero, exact ±2^e ends, or random magnitudes 2^e · U."""
    kind = draw(st.sampled_from(["random", "pow2", "zero"]))
    if kind == "zero":
        return (0.0, 0.0)
    e = draw(st.integers(-16, 18))
    if kind == "pow2":
        return (-(2.0**e), 2.0**e) if draw(st.booleans()) else (0.0, 2.0**e)
    a, b = sorted(draw(st.tuples(st.floats(-1, 1), st.floats(-1, 1))))
    return (a * 2.0**e, b * 2.0**e)


@st.composite
def weighted_specs(draw, first: bool):
    """A conv only as the first op (then maybe a GAP); dense ops maybe followed by a ReLU."""
    kind = draw(st.sampled_from(["dense", "conv"])) if first else "dense"
    after = draw(st.sampled_from([None, "relu", "gap"] if kind == "conv" else [None, "relu"]))
    return WeightedSpec(
        kind, draw(st.integers(1, 5)), draw(exps), draw(kinds), draw(exps), draw(kinds), draw(ranges_()), after
    )


@st.composite
def plan_cases(draw):
    """1-4 weighted ops with magnitudes from 2^-16 to 2^18 (formats far from Q0.15 both ways under the
    tight rule), both roundings, both format rules."""
    ops = tuple(draw(weighted_specs(first=i == 0)) for i in range(draw(st.integers(1, 4))))
    return PlanCase(
        draw(ranges_()),
        ops,
        draw(st.integers(1, 3)),
        draw(st.sampled_from(["truncate", "round"])),
        draw(st.integers(0, 2**32 - 1)),
        draw(st.sampled_from(["notebook", "tight"])),
    )


# ---------------------------------------------------------------- the check


def rule1_frac(lo: float, hi: float) -> int:
    """docs/design.md rule 1 (notebook), exactly: 15 - max(0, ceil(log2 r)), r == 0 -> 15."""
    r = max(abs(float(lo)), abs(float(hi)))
    if r == 0:
        return 15
    m, e = math.frexp(r)
    return 15 - max(0, e - 1 if m == 0.5 else e)


def check_plan_shifts(plan_fn, case: PlanCase) -> None:
    """The plan (or its refusal) is exactly what rules 1 and 3 prescribe, op by op.

    Formats come from rule 1 recomputed here (notebook rule) or from qformat's tight rule (checked
    in test_properties_quantize); everything rule 3 derives from them is recomputed here."""
    graph, ranges = case.graph_and_ranges()
    try:
        plan, error = plan_fn(graph, ranges, case.rounding, case.rule), None
    except PlanError as exc:
        plan, error = None, exc
    fmt = rule1_frac if case.rule == "notebook" else (lambda lo, hi: frac_bits(lo, hi, rule="tight"))
    f_in = fmt(*ranges.input)
    if plan is not None:
        assert plan.input_frac == f_in
    prescribed_log = []
    for op in graph.ops:
        if op.kind not in ("conv", "dense"):
            if plan is not None:
                p = plan.op(op.name)
                assert (p.in_frac, p.out_frac) == (f_in, f_in), f"{op.name} changed the format"
                assert p.adjustments == [] and p.bias_lshift is None and p.out_rshift is None
            continue
        f_w = fmt(op.weights.min(), op.weights.max())
        f_b0 = fmt(op.bias.min(), op.bias.max())
        f_out0 = fmt(*ranges.ops[op.name])
        bias_lshift0, out_rshift0 = f_w + f_in - f_b0, f_w + f_in - f_out0
        f_b = f_b0 if bias_lshift0 >= 0 else f_w + f_in
        f_out = f_out0 if out_rshift0 >= 0 else f_w + f_in
        bias_lshift, out_rshift = max(bias_lshift0, 0), max(out_rshift0, 0)
        # a rounding build never gets out_rshift 0 (CMSIS-NN 5.4/5.5's NN_ROUND(0) is undefined): one frac bit less
        round_zero = case.rounding == "round" and out_rshift == 0
        if round_zero:
            f_out, out_rshift = f_out - 1, 1
        if bias_lshift > 31 or out_rshift > 31 or (case.rounding == "round" and out_rshift == 31):
            assert error is not None, (
                f"{op.name}: bias_lshift {bias_lshift}, out_rshift {out_rshift} "
                f"({case.rounding}) must be refused, the planner accepted it"
            )
            assert f"op '{op.name}'" in str(error), f"the refusal does not name {op.name}: {error}"
            return
        if error is not None:  # refused at a later op: nothing of this one to compare
            f_in = f_out
            continue
        p = plan.op(op.name)
        assert 0 <= p.bias_lshift <= 31 and 0 <= p.out_rshift <= 31, (p.bias_lshift, p.out_rshift)
        got = (p.in_frac, p.w_frac, p.b_frac, p.out_frac, p.bias_lshift, p.out_rshift)
        want = (f_in, f_w, f_b, f_out, bias_lshift, out_rshift)
        assert got == want, f"{op.name}: (f_in, f_w, f_b, f_out, bias_lshift, out_rshift) {got}, rule 3 gives {want}"
        prescribed = []
        if bias_lshift0 < 0:
            prescribed.append((f"bias_lshift would be {bias_lshift0} ", f"f_b = {f_w + f_in} "))
        if out_rshift0 < 0:
            prescribed.append((f"out_rshift would be {out_rshift0} ", f"f_out = {f_w + f_in} "))
        if round_zero:
            prescribed.append(("out_rshift would be 0 in a rounding build", f"f_out = {f_out} "))
        assert len(p.adjustments) == len(prescribed), f"{op.name}: recorded {p.adjustments}, prescribed {prescribed}"
        for (what, fix), text in zip(prescribed, p.adjustments, strict=True):
            assert what in text and fix in text, f"{op.name}: recorded {text!r}, rule 3 prescribes {what}/{fix}"
        prescribed_log += [f"{op.name}: {a}" for a in p.adjustments]
        q_b, b_sat = quantize(op.bias, f_b)
        assert np.array_equal(p.bias, q_b) and p.bias_saturations == b_sat, f"{op.name}: bias not quantized at f_b"
        q_w, w_sat = quantize(op.weights, f_w)
        layout = conv_to_cmsis if op.kind == "conv" else dense_to_cmsis
        assert np.array_equal(p.weights, layout(q_w)) and p.weight_saturations == w_sat
        f_in = f_out
    assert error is None, f"refused a valid plan: {error}"
    assert plan.adjustments == prescribed_log


def real_plan(graph, ranges, rounding, rule):
    return make_plan(graph, ranges, rounding=rounding, rule=rule)


def silently_clamping_plan(graph, ranges, rounding, rule):
    """Adjusts like make_plan but records nothing ("never clamp silently")."""
    plan = make_plan(graph, ranges, rounding=rounding, rule=rule)
    for op in plan.ops:
        op.adjustments = []
    return plan


def notebook_shift_plan(graph, ranges, rounding, rule):
    """The notebook: negative shifts go into the plan as they are, no adjustment."""
    plan = make_plan(graph, ranges, rounding=rounding, rule=rule)
    for op in plan.ops:
        for text in op.adjustments:
            negative = re.search(r"would be (-\d+)", text)  # (not the rounding build's out_rshift 0 -> 1)
            if negative:
                setattr(op, "bias_lshift" if text.startswith("bias_lshift") else "out_rshift", int(negative.group(1)))
        op.adjustments = []
    return plan


def unguarded_plan(graph, ranges, rounding, rule):
    """No refusal of shifts past 31 (nor of out_rshift 31 with rounding)."""
    with mock.patch.object(qverify.plan, "MAX_SHIFT", 63):
        return make_plan(graph, ranges, rounding=rounding, rule=rule)


# ---------------------------------------------------------------- properties

# Pin: the notebook silently produced negative shifts. Weights 1000 (f_w 5), input range 200
# (f_in 7), bias 0.001 (f_b 15) -> bias_lshift -3; output range 0.01 (f_out 15) -> out_rshift -3.
NEGATIVE_SHIFTS = PlanCase((-200.0, 200.0), (WeightedSpec("dense", 3, 10, "unit", -10, "unit", (-0.01, 0.01)),))
# Pin: all-zero weights, bias and output (the notebook took log2(0)).
ALL_ZERO = PlanCase(
    (0.0, 0.0),
    (
        WeightedSpec("conv", 2, 0, "zero", 0, "zero", (0.0, 0.0), "relu"),
        WeightedSpec("dense", 1, 0, "zero", 0, "zero", (0.0, 0.0)),
    ),
)
# out_rshift exactly 31: valid when truncating, refused with rounding (NN_ROUND(31) overflows in CMSIS).
SHIFT_31 = PlanCase(
    (-(2.0**-16), 2.0**-16), (WeightedSpec("dense", 2, -16, "unit", -20, "unit", (-(2.0**16), 2.0**16)),)
)


@settings(max_examples=examples(3.0))
@given(case=plan_cases())
@example(case=NEGATIVE_SHIFTS)
@example(case=ALL_ZERO)
@example(case=SHIFT_31)
@example(case=PlanCase(SHIFT_31.input_range, SHIFT_31.ops, rounding="round"))
def test_plan_shifts_follow_rule_3(case):
    """Property 3: shifts in [0, 31], adjustments exactly as rule 3 prescribes and recorded, refusals past 31."""
    check_plan_shifts(real_plan, case)
    try:
        plan = real_plan(*case.graph_and_ranges(), case.rounding, case.rule)
        event("planned with adjustments" if plan.adjustments else "planned, no adjustment")
        event(f"out_rshift 31 present: {any(op.out_rshift == 31 for op in plan.ops)}")
    except PlanError:
        event("refused")


def test_shift_check_catches_broken_planners():
    """The rule-3 property rejects a planner that clamps silently, one that keeps the notebook's negative
    shifts, and one that accepts shifts past 31; Hypothesis finds a case for each from the same strategy."""
    assert fails(check_plan_shifts, silently_clamping_plan, NEGATIVE_SHIFTS)
    assert fails(check_plan_shifts, notebook_shift_plan, NEGATIVE_SHIFTS)
    assert fails(check_plan_shifts, unguarded_plan, PlanCase(SHIFT_31.input_range, SHIFT_31.ops, rounding="round"))
    for seed, broken in enumerate((silently_clamping_plan, notebook_shift_plan, unguarded_plan)):
        find(
            plan_cases(),
            lambda c, broken=broken: fails(check_plan_shifts, broken, c),
            settings=FIND,
            random=random.Random(seed),
        )
