"""The plan a firmware flashing a weights.h runs: the model's geometry with the header's integers and shifts.

`--header` of compare, eval and target: the frac bits follow from the header's values as diff_weights
infers them (header_diff.py), so the engines run what the firmware holds, not what the model would give.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qverify.cheader import Header
from qverify.header import WeightsHeader, read_weights
from qverify.header_diff import MATCHED, HeaderDiff, diff_weights, format_diff
from qverify.plan import QuantPlan


@dataclass
class HeaderPlan:
    """A plan whose integers and shifts are a weights.h's, with the model's own plan they came against.

    plan: the model's geometry, kinds, functions and input format with the header's weights, biases and
        shifts, frac bits following from them; validated like any plan (QuantPlan's constructor).
    base: the model's own plan; diff: the header against it (diff_weights); weights: the header as read.
    """

    plan: QuantPlan
    base: QuantPlan
    diff: HeaderDiff
    weights: WeightsHeader

    @property
    def stems(self) -> dict[str, str]:
        return {layer.op: layer.stem for layer in self.weights.layers}

    def lines(self) -> list[str]:
        """What a command prints first: where the plan comes from, how the layers matched, whether the
        header is the model's plan."""
        h = self.weights
        out = [
            f"plan from {h.path}: its integers and shifts on the model's geometry "
            f"({MATCHED[h.matched]}: " + ", ".join(f"{layer.op}={layer.stem}" for layer in h.layers) + ")"
        ]
        if h.plan_hash:
            same = "matches" if h.plan_hash == self.plan.hash else "does not match"
            out.append(
                f"the header's QVERIFY_PLAN_HASH {h.plan_hash[:16]} {same} the plan read from it "
                f"({self.plan.hash[:16]})"
            )
        if self.diff.identical:
            out.append(f"the header equals the model's own plan {self.base.hash[:16]}")
        else:
            bad = [op for op in self.diff.ops if op.parts]
            out.append(
                f"the header differs from the model's own plan {self.base.hash[:16]} in {len(bad)} of "
                f"{len(self.diff.ops)} conv/dense ops (running the header's integers):"
            )
            out += ["  " + line for line in format_diff(self.diff).splitlines()[2:] if line.strip()]
        return out


def plan_from_header(path: str | Path | Header, base: QuantPlan, mapping: dict[str, str] | None = None) -> HeaderPlan:
    """The plan a firmware flashing this weights.h runs: `base` (the model's own plan) gives the geometry,
    kinds, functions, input format and ranges; the header gives every conv/dense op's weights, bias,
    bias_lshift and out_rshift, layers mapped as diff-header maps them (read_weights).

    Frac bits follow from the header as diff_weights infers them: f_in the input's (the first layer's
    stated f_in when the header states one) and then each op's output format, f_w the stated one, else the
    plan's unless the weights are another Q-format, f_b = f_w + f_in - bias_lshift, f_out = f_w + f_in -
    out_rshift. The rounding is the header's QVERIFY_ROUNDING when it states one. An op whose values
    differ from the base plan gets an adjustment saying so (its calibration notes no longer describe it).
    A header qverify wrote from `base` gives a plan with base's hash.

    Raises:
        HeaderError: a macro missing, malformed, of the wrong length or out of range.
        PlanError: the plan the header makes is inconsistent (QuantPlan validates it).
    """
    import copy

    weights = read_weights(path, base, mapping)
    diff = diff_weights(weights, base)
    layers = {layer.op: layer for layer in weights.layers}
    diffs = {d.op: d for d in diff.ops}
    first = weights.layers[0].stated if weights.layers else {}
    f_in = input_frac = first.get("f_in", base.input_frac)
    ops = []
    for op in base.ops:
        new = copy.copy(op)
        new.adjustments, new.warnings = list(op.adjustments), list(op.warnings)
        new.in_frac = f_in
        if op.weighted:
            layer, d = layers[op.name], diffs[op.name]
            # a weighted op always has weights, bias and w_frac: the plan validates them
            assert op.weights is not None and op.bias is not None and op.w_frac is not None
            f_w = layer.stated.get("f_w", d.formats.get("f_w", (op.w_frac,))[0])
            new.weights = layer.weights.astype(op.weights.dtype)
            new.bias = layer.bias.astype(op.bias.dtype)
            new.bias_lshift, new.out_rshift = layer.bias_lshift, layer.out_rshift
            new.w_frac, new.b_frac = f_w, f_w + f_in - layer.bias_lshift
            new.out_frac = f_w + f_in - layer.out_rshift
            if d.parts or new.in_frac != op.in_frac or new.w_frac != op.w_frac:
                top = (1 << (op.weight_bits - 1)) - 1  # the largest q15_t or q7_t
                new.weight_saturations = int((np.abs(new.weights.astype(np.int32)) >= top).sum())
                new.bias_saturations = int((np.abs(new.bias.astype(np.int32)) >= top).sum())
                new.adjustments.append(
                    f"from {weights.path} ({layer.stem}_*): "
                    + ("; ".join(f"{p.part} {p.cause}" for p in d.parts) or "other frac bits")
                )
        else:
            new.out_frac = f_in
        ops.append(new)
        f_in = new.out_frac
    plan = QuantPlan(
        base.bits,
        weights.rounding or base.rounding,
        base.rule,
        base.input_shape,
        base.model_input_shape,
        input_frac,
        base.input_range,
        ops,
        base.final_activation,
        dict(base.source),
        base.version,
        base.paths,
        dict(base.macro_names),
    )
    return HeaderPlan(plan, base, diff, weights)
