"""Compare two engines op by op: exact-match %, max |diff| in LSB, first mismatches, histogram.

Propagated mode runs each engine end to end; isolated mode feeds every op of
the engine under test the reference engine's input for that op, so the first
divergent op is named even when an earlier error would propagate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np

from qverify.engines.base import Engine, RunResult
from qverify.metrics import Mismatch, PairStats
from qverify.plan import QuantPlan

MODES = ("propagated", "isolated")


@dataclass
class OpComparison:
    name: str
    kind: str
    total: int
    mismatches: int
    max_diff: int
    saturations: int | None
    overflows: int | None
    kernel: str = ""
    first: list[Mismatch] = field(default_factory=list)
    histogram: dict[int, int] = field(default_factory=dict)

    @property
    def exact_pct(self) -> float:
        return 100.0 * (self.total - self.mismatches) / self.total if self.total else 100.0


@dataclass
class Comparison:
    """The outcome of comparing `tested` against `reference` on the same plan and inputs."""

    plan_hash: str
    reference: str
    tested: str
    mode: str
    samples: list[int]
    ops: list[OpComparison]

    @property
    def ok(self) -> bool:
        return all(op.mismatches == 0 for op in self.ops)

    @property
    def first_divergent(self) -> OpComparison | None:
        return next((op for op in self.ops if op.mismatches), None)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ok"] = self.ok
        d["first_divergent"] = self.first_divergent.name if self.first_divergent else None
        for op, src in zip(d["ops"], self.ops, strict=True):
            op["exact_pct"] = src.exact_pct
            op["histogram"] = {str(k): v for k, v in src.histogram.items()}
        return d


def compare_op(name: str, kind: str, expected: np.ndarray, got: np.ndarray, samples: list[int],
               saturations=None, overflows=None, kernel: str = "") -> OpComparison:
    """Compare one op's (N, H, W, C) outputs; row n of the arrays is data-set sample samples[n]."""
    stats = PairStats()
    stats.update(expected, got, 0)
    first = [replace(m, sample=samples[m.sample]) for m in stats.first]
    return OpComparison(name, kind, stats.total, stats.mismatches, stats.max_diff, saturations, overflows, kernel,
                        first, dict(sorted(stats.histogram.items())))


def compare_results(plan: QuantPlan, reference: RunResult, tested: RunResult, samples: list[int],
                    kernels: list[str] | None = None) -> list[OpComparison]:
    """Per-op comparisons of two RunResults of the same plan."""
    out = []
    for i, op in enumerate(plan.ops):
        out.append(compare_op(op.name, op.kind, reference.outputs[op.name], tested.outputs[op.name], samples,
                              reference.saturations.get(op.name), reference.overflows.get(op.name),
                              kernels[i] if kernels else ""))
    return out


def run_compare(plan: QuantPlan, reference: Engine, tested: Engine, x_int: np.ndarray, samples: list[int],
                mode: str = "propagated") -> Comparison:
    """Run both engines on x_int and compare every op.

    Args:
        plan: the plan both engines were built from.
        reference: the engine taken as truth (normally the shift model).
        tested: the engine under test.
        x_int: quantized input (N, H, W, C) int16.
        samples: the data-set index of each row of x_int (for messages).
        mode: 'propagated' or 'isolated'.
    """
    ref = reference.run(x_int)
    got = tested.run(x_int) if mode == "propagated" else tested.run_isolated(x_int, ref)
    kernels = getattr(tested, "kernels_used", None) or getattr(reference, "kernels_used", None)
    return Comparison(plan.hash, reference.describe(), tested.describe(), mode, list(samples),
                      compare_results(plan, ref, got, list(samples), kernels))


def _count(v) -> str:
    return "-" if v is None else str(v)


def format_table(c: Comparison) -> str:
    """One row per op, then the verdict."""
    lines = [f"plan {c.plan_hash[:16]}  mode: {c.mode}  samples: {_samples(c.samples)}",
             f"reference: {c.reference}", f"tested:    {c.tested}", "",
             f"{'op':<22} {'kind':<8} {'exact %':>8} {'max|d|':>7} {'mismatch':>10} {'sat':>6} {'ovf':>6}  kernel"]
    for op in c.ops:
        lines.append(f"{op.name:<22} {op.kind:<8} {op.exact_pct:>8.2f} {op.max_diff:>7} {op.mismatches:>10} "
                     f"{_count(op.saturations):>6} {_count(op.overflows):>6}  {op.kernel}")
    lines.append("")
    first = c.first_divergent
    if first is None:
        lines.append(f"PASS: all {len(c.ops)} ops bit-exact on {len(c.samples)} sample(s)")
    else:
        n_bad = sum(1 for op in c.ops if op.mismatches)
        lines.append(f"FAIL: first divergent op: {first.name} ({first.mismatches} of {first.total} values differ, "
                     f"max {first.max_diff} LSB); {n_bad} op(s) differ")
    return "\n".join(lines)


def format_detail(op: OpComparison) -> str:
    """First mismatches and the LSB-difference histogram of one op."""
    lines = [f"{op.name}: {op.mismatches} of {op.total} values differ ({op.exact_pct:.2f}% exact)"]
    if op.first:
        lines.append("  first mismatches (sample, h, w, c, expected, got):")
        lines += [f"    ({m.sample}, {m.h}, {m.w}, {m.c}, {m.expected}, {m.got})" for m in op.first]
        rows = _histogram_rows(op.histogram)
        lines.append("  LSB difference histogram (got - expected: count)"
                     + (", in power-of-two ranges:" if len(rows) < len(op.histogram) else ":"))
        width = max(n for _, n in rows)
        for label, n in rows:
            bar = "#" * max(1, round(40 * n / width))
            lines.append(f"    {label:>15}: {n:>8} {bar}")
    return "\n".join(lines)


EXACT_HISTOGRAM_ROWS = 16  # more distinct differences than this are shown in power-of-two ranges


def _histogram_rows(histogram: dict[int, int]) -> list[tuple[str, int]]:
    """(label, count) rows: one per difference, or at most 34 ranges +-[2^k, 2^(k+1)) when there are many
    (a whole layer off gives thousands of distinct differences, a screen is enough)."""
    if len(histogram) <= EXACT_HISTOGRAM_ROWS:
        return [(f"{d:+d}", n) for d, n in sorted(histogram.items())]
    buckets: dict[tuple[int, int], int] = {}
    for d, n in histogram.items():
        key = (0, 0) if d == 0 else ((1 if d > 0 else -1), abs(d).bit_length() - 1)
        buckets[key] = buckets.get(key, 0) + n
    rows = []
    for (sign, k), n in sorted(buckets.items(), key=lambda kv: kv[0][0] * (kv[0][1] + 1)):
        lo, hi = 1 << k, (1 << (k + 1)) - 1
        if sign == 0 or lo == hi:
            label = f"{sign * lo:+d}" if sign else "0"
        else:
            ends = sorted((sign * lo, sign * hi))
            label = f"{ends[0]:+d}..{ends[1]:+d}"
        rows.append((label, n))
    return rows


def _samples(samples: list[int]) -> str:
    if len(samples) > 1 and samples == list(range(samples[0], samples[-1] + 1)):
        return f"{samples[0]}:{samples[-1] + 1}"
    return ",".join(map(str, samples))
