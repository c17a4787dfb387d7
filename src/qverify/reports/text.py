"""Text tables for the terminal: eval's per-op table and verdict, the footprint table."""

from __future__ import annotations

import math

from qverify.evaluate import EvalResult
from qverify.footprint import Footprint


def _num(v, fmt: str = "{:.1f}") -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return fmt.format(v)


def _bytes(n: int) -> str:
    return f"{n:,} B" if n < 10_000 else f"{n / 1024:,.1f} KiB"


def format_footprint(fp: Footprint, title: str = "footprint", functions: list[str] | None = None) -> str:
    """Per-op MACs, flash and activation sizes (and the C function each op calls, when given), then the
    network totals and the runner's peak RAM."""
    fn = functions or [""] * len(fp.ops)
    lines = [
        f"{title} (q15: {fp.value_bytes} bytes per value)",
        f"  {'op':<14} {'kind':<8} {'MACs':>11} {'weights B':>10} {'bias B':>7} {'in B':>9} {'out B':>9} "
        f"{'kernel buf B':>12}{'  function' if functions else ''}",
    ]
    for r, f in zip(fp.ops, fn, strict=False):
        lines.append(
            (
                f"  {r.name:<14} {r.kind:<8} {r.macs:>11,} {r.weight_bytes:>10,} {r.bias_bytes:>7,} "
                f"{r.input_bytes:>9,} {r.output_bytes:>9,} {r.kernel_buffer_bytes:>12,}  {f}"
            ).rstrip()
        )
    lines += [
        f"  {'total':<14} {'':<8} {fp.total_macs:>11,} {fp.weight_bytes:>10,} {fp.bias_bytes:>7,}",
        "",
        f"  MACs per inference:        {fp.total_macs:,}",
        f"  flash (weights + biases):  {_bytes(fp.flash_bytes)} ({fp.weight_bytes:,} + {fp.bias_bytes:,} B)",
        f"  runner peak RAM (scratch): {_bytes(fp.runner_ram_bytes)} = 2 x {fp.activation_buffer_bytes:,} B "
        f"activation buffers + {fp.kernel_buffer_bytes:,} B kernel buffer + guard words "
        f"({fp.runner_scratch_words:,} int16 words)",
        f"  input buffer:              {_bytes(fp.input_bytes)} (held by the caller; with it "
        f"{_bytes(fp.runner_ram_with_input_bytes)})",
        f"  largest activation:        {_bytes(fp.largest_activation_bytes)}; largest single-op working set "
        f"(in + out + kernel buffer): {_bytes(fp.min_working_set_bytes)}",
    ]
    return "\n".join(lines)


def format_eval(r: EvalResult) -> str:
    """The report a firmware team reads: model-level figures, one row per op, the verdict."""
    lines = [
        f"plan {r.plan_hash[:16]}  rounding: {r.rounding}  data: {r.data_name}, {r.samples} samples",
        *[f"  {e:<7} {r.engine_info[e]}" for e in r.engines],
        "",
    ]
    # model level
    lines.append(f"  {'engine':<8} {'accuracy':>9} {'flips vs float':>15} {'samples/s':>10}")
    for e in r.engines:
        acc = r.accuracy(e)
        d = r.decisions[e]
        flips = "-" if e == "float" or "float" not in r.decisions else f"{d.flips}"
        rate = r.samples / r.seconds[e] if r.seconds.get(e) else None
        lines.append(
            f"  {e:<8} {_num(None if acc is None else 100 * acc, '{:.2f}%'):>9} {flips:>15} {_num(rate, '{:,.0f}'):>10}"
        )
    if r.labels is None:
        lines.append("  (no labels: accuracy not measured; pass --labels y.npy)")
    if r.bit_exact_samples is not None:
        lines.append(f"  bit-exact samples (shift = native on every op): {r.bit_exact_samples} of {r.samples}")
    if r.input_saturations:
        lines.append(input_saturation_line(r))
    lines.append("")

    ref = "shift" if "shift" in r.engines else ("native" if "native" in r.engines else None)
    has_q = bool(r.ops and r.ops[0].quant)
    if ref is None:  # the float model alone: no integers to report per op
        lines.append("  (float engine only: no per-op comparison)")
        lines.append("")
        return _tail(r, lines)
    head = f"  {'op':<14} {'kind':<8} {'format':<7}"
    if has_q:
        head += f" {'SQNR dB':>8} {'RMSE LSB':>9} {'cosine':>9} {'out headroom':>12}"
    head += f" {'acc headroom':>12}"
    if r.ops and r.ops[0].pair is not None:
        head += f" {'exact %':>8} {'max|d|':>6}"
    head += f" {'sat':>8} {'ovf':>8}"
    lines.append(head)
    for o in r.ops:
        row = f"  {o.name:<14} {o.kind:<8} {o.format:<7}"
        s = o.quant.get(ref) if ref else None
        if has_q:
            assert s is not None  # with the float engine, evaluate gives every op stats of every quantized engine
            row += (
                f" {_num(s.sqnr_db):>8} {_num(s.rmse_lsb, '{:.3g}'):>9} {s.cosine:>9.6f} "
                f"{_num(s.headroom_bits, '{:+.2f}'):>12}"
            )
        row += f" {acc_headroom_text(o.acc_headroom):>12}"
        if o.pair is not None:
            row += f" {o.pair.exact_pct:>8.2f} {o.pair.max_diff:>6}"
        sat = s.saturations if s is not None else None
        ovf = s.overflows if s is not None else None
        row += f" {_num(sat, '{}'):>8} {_num(ovf, '{}'):>8}"
        lines.append(row)
    lines += [f"  ({line})" for line in legend(ref, has_q)]
    lines.append("")
    return _tail(r, lines)


def input_saturation_line(r: EvalResult) -> str:
    """The model-level line for a network input beyond its format: how many values, the range seen, the format's."""
    lo, hi = r.input_float_range
    qlo, qhi = r.input_limits
    return (
        f"  input saturation: {r.input_saturations:,} of {r.input_values:,} input values saturated at "
        f"{r.input_format}: float range seen [{lo:.4g}, {hi:.4g}], {r.input_format} holds [{qlo:.6g}, {qhi:.6g}]; "
        "the ops received the clipped values"
    )


def acc_headroom_text(acc: tuple[float, bool] | None) -> str:
    """An acc headroom cell: '+1.23' measured, '~+1.23' estimated from the calibrated range, '-' no accumulator."""
    if acc is None:
        return "-"
    value, measured = acc
    return ("" if measured else "~") + _num(value, "{:+.2f}")


def legend(ref: str, has_q: bool, ranges: bool = False) -> list[str]:
    """What each column of the per-op table measures, one line each (the text report; the HTML one, which has
    the float and int range columns too, with ranges)."""
    lines = []
    if has_q:
        lines += [
            f"SQNR dB, RMSE LSB, cosine: the {ref} engine's op output against the float model's, propagated (each "
            "engine end to end from the same input), over every value of the data",
            *(
                [
                    "float range: the float model's op output on the input as the integer engines receive it "
                    f"(clipped to the input format); int range: the {ref} engine's integer output"
                ]
                if ranges
                else []
            ),
            "out headroom: log2(format limit / largest |float output|) in bits, the float model fed the input as the "
            "integer engines receive it (clipped to the input format); < 0: float outputs beyond the op's format, "
            "which the output stage saturates",
        ]
    lines += [
        "acc headroom: bits left in the int32 accumulator of a conv or dense, 31 - log2(max(largest acc + 1, "
        "-smallest acc)), acc the exact sum (bias << bias_lshift, rounding, sum of w * x) the shift model formed "
        "before wrapping, over every output of the data; 0: a sum reached INT32_MAX or INT32_MIN, < 0 exactly "
        "when a sum wrapped (ovf > 0); ~: estimated from the calibrated output range x 2^(f_w + f_in) (shift "
        "model not run)",
        "sat: outputs the output stage clipped to the format; ovf: outputs whose int32 accumulator wrapped; both "
        "counted by the shift model (a network input beyond its format is the 'input saturation' line, not an op's)",
    ]
    return lines


def _tail(r: EvalResult, lines: list[str]) -> str:
    fp = r.footprint
    lines.append(
        f"  footprint: {fp.total_macs:,} MACs, flash {_bytes(fp.flash_bytes)}, runner peak RAM "
        f"{_bytes(fp.runner_ram_bytes)} (+ {_bytes(fp.input_bytes)} input); `qverify report` for per-op rows"
    )
    lines.append("")
    failed = [c for c in r.checks if not c.passed]
    if r.bit_exact is True and not failed:
        lines.append(f"PASS: shift and native bit-exact on all {r.samples} samples, every op")
    elif not failed:
        lines.append(
            f"PASS: {len(r.checks)} checks passed (shift and native were not both run: bit-exactness not checked)"
        )
    else:
        first = failed[0]
        lines.append(
            f"FAIL: {len(failed)} of {len(r.checks)} checks failed; first: {first.classname} "
            f"{first.name}: {first.message}"
        )
        if first.details:
            lines.append(first.details)
    return "\n".join(lines)
