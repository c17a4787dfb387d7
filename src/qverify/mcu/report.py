"""Text and JSON for what the target build measured, next to `qverify report`'s estimate
(qverify.footprint): footprint, per-op weight/bias bytes, per-op instruction estimates."""

from __future__ import annotations

from qverify.footprint import footprint as estimate_footprint
from qverify.mcu.image import Footprint
from qverify.plan import QuantPlan

INSN_LABEL = "emulator instructions (QEMU -icount), not silicon cycles"
ALIGN_SLACK = 3  # each array of the weights section is 4-byte aligned: up to 3 bytes of padding after it


def align_slack(plan: QuantPlan) -> int:
    """The most padding .qv_weights can hold beyond its arrays: ALIGN_SLACK after each weight and bias array
    (odd-sized q7_t and q15_t arrays leave 1 to 3 bytes before the next)."""
    return ALIGN_SLACK * 2 * sum(op.weighted for op in plan.ops)


def real_op_bytes(plan: QuantPlan, fp: Footprint) -> dict[str, tuple[int | None, int | None]]:
    """op name -> (weight bytes, bias bytes) of the arrays in the image (network.c names them qv_w<i>, qv_b<i>)."""
    return {
        op.name: (fp.symbols.get(f"qv_w{i}"), fp.symbols.get(f"qv_b{i}"))
        for i, op in enumerate(plan.ops)
        if op.weighted
    }


def disagreements(plan: QuantPlan, fp: Footprint, scratch_words: int) -> list[str]:
    """Where the real build and `qverify report`'s estimate differ (empty when they agree)."""
    est = estimate_footprint(plan)
    real = real_op_bytes(plan, fp)
    out = []
    for row in est.ops:
        if row.name not in real:
            continue
        w, b = real[row.name]
        if (w, b) != (row.weight_bytes, row.bias_bytes):
            out.append(
                f"{row.name}: the image holds {w} B of weights and {b} B of bias, the estimate "
                f"{row.weight_bytes} and {row.bias_bytes}"
            )
    if not 0 <= fp.weights - est.flash_bytes <= align_slack(plan):
        out.append(
            f"weights + biases: the image's .qv_weights holds {fp.weights:,} B, the estimate {est.flash_bytes:,} B"
        )
    if scratch_words and scratch_words != est.runner_scratch_words:
        out.append(
            f"runner scratch: qv_scratch_words() on the target is {scratch_words:,} words, the estimate "
            f"{est.runner_scratch_words:,}"
        )
    return out


def footprint_dict(plan: QuantPlan, fp: Footprint, scratch_words: int) -> dict:
    est = estimate_footprint(plan)
    return {
        "sections": fp.sections,
        "code": fp.code,
        "code_by_group": fp.code_by_group,
        "constants": fp.rodata,
        "weights": fp.weights,
        "data": fp.get(".data"),
        "bss": fp.get(".bss"),
        "flash": fp.flash,
        "ram": fp.ram,
        "harness_ram": fp.harness_ram,
        "runner_scratch_bytes_whole_plan": 2 * scratch_words,
        "per_op": {k: {"weights": w, "bias": b} for k, (w, b) in real_op_bytes(plan, fp).items()},
        "estimate": {
            "flash_bytes": est.flash_bytes,
            "weight_bytes": est.weight_bytes,
            "bias_bytes": est.bias_bytes,
            "runner_ram_bytes": est.runner_ram_bytes,
        },
        "disagreements": disagreements(plan, fp, scratch_words),
    }


def _b(n: int | None) -> str:
    return f"{'-':>9}  " if n is None else f"{n:>9,} B"


def footprint_lines(plan: QuantPlan, fp: Footprint, scratch_words: int, build: str) -> list[str]:
    """The real build's figures beside `qverify report`'s estimate; disagreements are spelled out."""
    est = estimate_footprint(plan)
    groups = ", ".join(f"{k} {v:,}" for k, v in sorted(fp.code_by_group.items(), key=lambda kv: -kv[1]))
    pad = fp.weights - est.flash_bytes
    lines = [
        f"footprint of the real build (arm-none-eabi-size -A / -nm; {build})",
        "beside the estimate of `qverify report`:",
        f"{'':<24}{'real build':>12}  {'estimate':>11}",
        f"  flash  code          {_b(fp.code)}  {_b(None)}  {groups}; vectors {fp.get('.vectors'):,}",
        f"         constants     {_b(fp.rodata)}  {_b(None)}  ops table, kernel names, strings",
        f"         weights+bias  {_b(fp.weights)}  {_b(est.flash_bytes)}  .qv_weights"
        + (f" (+{pad} B alignment padding)" if 0 < pad <= align_slack(plan) else ""),
        f"         .data init    {_b(fp.get('.data'))}  {_b(None)}",
        f"         total         {_b(fp.flash)}",
        f"  RAM    runner scratch{_b(2 * scratch_words)}  {_b(est.runner_ram_bytes)}  "
        f"qv_run over the whole plan (qv_scratch_words on the target: {scratch_words:,})",
        f"         .data+.bss    {_b(fp.ram)}  {_b(None)}  this image: scratch sized for one op at a time",
        f"         harness       {_b(fp.harness_ram)}  {_b(None)}  I/O buffers and stacks of this test image, "
        "not part of a deployment",
    ]
    diffs = disagreements(plan, fp, scratch_words)
    if diffs:
        lines.append("  the real build DISAGREES with the estimate:")
        lines += [f"    {d}" for d in diffs]
    else:
        lines.append(
            f"  real build and estimate agree: weights and biases of all {len(real_op_bytes(plan, fp))} "
            f"layers byte for byte, the runner's scratch word for word (code is measured, not estimated)"
        )
    return lines


def op_lines(plan: QuantPlan, fp: Footprint, instructions: dict[str, float], kernels: list[str], cpu: str) -> list[str]:
    real = real_op_bytes(plan, fp)
    lines = [
        f"per op on {cpu}: weight/bias bytes in the image; {INSN_LABEL}, mean per sample",
        f"{'op':<22} {'kind':<8} {'weights':>9} {'bias':>6} {'MACs':>11} {'instructions':>13} {'instr/MAC':>9}  kernel",
    ]
    total = 0.0
    for i, op in enumerate(plan.ops):
        w, b = real.get(op.name, (0, 0))
        n = instructions.get(op.name)
        total += n or 0.0
        per_mac = f"{n / op.macs:9.2f}" if n is not None and op.macs else f"{'-':>9}"
        shown = f"{n:13,.0f}" if n is not None else f"{'-':>13}"
        lines.append(
            f"{op.name:<22} {op.kind:<8} {w or 0:>9,} {b or 0:>6,} {op.macs:>11,} {shown} {per_mac}  "
            f"{kernels[i] if i < len(kernels) else ''}"
        )
    macs = sum(op.macs for op in plan.ops)
    lines.append(
        f"{'total':<22} {'':<8} {sum(w or 0 for w, _ in real.values()):>9,} "
        f"{sum(b or 0 for _, b in real.values()):>6,} {macs:>11,} {total:13,.0f} "
        f"{total / macs if macs else 0:9.2f}"
    )
    return lines
