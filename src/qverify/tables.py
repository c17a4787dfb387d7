"""Text tables for a plan: the notebook's printouts, plus what qverify adds."""

from __future__ import annotations

from qverify import kernels
from qverify.plan import QuantPlan
from qverify.qformat import qm_n


def plan_tables(plan: QuantPlan) -> str:
    """Activation frac bits, weight/bias Q-formats, shift lists, adjustments and saturations."""
    weighted = [op for op in plan.ops if op.weighted]
    lines = [f"plan {plan.hash[:16]}  q{plan.bits - 1}, rounding: {plan.rounding}, format rule: {plan.rule}", ""]
    lines.append("activation frac bits")
    lines.append(f"  {'':>3}  {'input':<24} {plan.input_frac:>3}   {qm_n(plan.input_frac, plan.bits)}")
    for i, op in enumerate(plan.ops, 1):
        lines.append(
            f"  {i:>3}  {op.name:<24} {op.out_frac:>3}   {qm_n(op.out_frac, plan.bits):<7} {op.kind:<8} {op.function}"
        )
    lines += [
        "",
        "weight and bias formats",
        f"  {'op':<24} {'weight':>8} {'bias':>8} {'bias_lshift':>12} {'out_rshift':>11}",
    ]
    for op in weighted:
        assert op.w_frac is not None and op.b_frac is not None  # every weighted op has both
        lines.append(
            f"  {op.name:<24} {qm_n(op.w_frac, op.weight_bits):>8} {qm_n(op.b_frac, op.weight_bits):>8} "
            f"{op.bias_lshift:>12} {op.out_rshift:>11}" + (" (q7_t weights and bias)" if op.weight_bits == 8 else "")
        )
    lines += [
        "",
        f"bias shifts:   {[op.bias_lshift for op in weighted]}",
        f"output shifts: {[op.out_rshift for op in weighted]}",
    ]
    notes = list(plan.adjustments)
    for op in weighted:
        if op.weight_saturations or op.bias_saturations:
            notes.append(
                f"{op.name}: {op.weight_saturations} weight(s) and {op.bias_saturations} bias value(s) "
                "saturated when quantized"
            )
    lines += ["", "adjustments and saturations" + ("" if notes else ": none")]
    lines += [f"  {n}" for n in notes]
    lines += ["", "functions not from Arm's CMSIS-NN" + ("" if kernels.notes(plan) else ": none")]
    lines += [f"  {n}" for n in kernels.notes(plan)]
    if plan.warnings:
        lines += ["", "WARNINGS"] + [f"  {w}" for w in plan.warnings]
    return "\n".join(lines)
