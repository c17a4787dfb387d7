"""Compare two engines op by op: exact-match %, max |diff| in LSB, first mismatches, histogram.

Propagated mode runs each engine end to end; isolated mode feeds every op of
the engine under test the reference engine's input for that op, so the first
divergent op is named even when an earlier error would propagate.
"""

from __future__ import annotations

import textwrap
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from qverify.engines.base import Engine, RunResult
from qverify.metrics import FIRST_MISMATCHES, Mismatch, PairStats
from qverify.plan import QuantPlan

MODES = ("propagated", "isolated")


@dataclass
class MismatchLayout:
    """Where one op's mismatches lie: counts per sample, row (h), column (w) and channel (c) of its (N, H, W, C)
    output, and the pattern they make when one fits (one channel, every other pixel, a shifted output, ...)."""

    shape: tuple[int, int, int]  # (H, W, C) of one sample
    sample_ids: list[int]  # the data-set index of each row of the batch
    samples: list[int]
    rows: list[int]
    cols: list[int]
    channels: list[int]
    patterns: list[str] = field(default_factory=list)


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
    layout: MismatchLayout | None = None  # where the mismatches are (None when there are none)
    # more first mismatches than `first` holds, for a longer --layer detail (not written to JSON)
    more: list[Mismatch] = field(default_factory=list, repr=False)

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
            del op["more"]
        return d


def compare_op(
    name: str,
    kind: str,
    expected: np.ndarray,
    got: np.ndarray,
    samples: list[int],
    saturations=None,
    overflows=None,
    kernel: str = "",
) -> OpComparison:
    """Compare one op's (N, H, W, C) outputs; row n of the arrays is data-set sample samples[n]."""
    stats = PairStats()
    stats.update(expected, got, 0)
    first = [replace(m, sample=samples[m.sample]) for m in stats.first]
    layout, more = None, []
    if stats.mismatches:
        bad = expected != got
        layout = mismatch_layout(expected, got, bad, samples)
        more = [
            Mismatch(samples[n], h, w, c, int(expected[n, h, w, c]), int(got[n, h, w, c]))
            for n, h, w, c in np.argwhere(bad)[len(first) : MORE_MISMATCHES].tolist()
        ]
    return OpComparison(
        name,
        kind,
        stats.total,
        stats.mismatches,
        stats.max_diff,
        saturations,
        overflows,
        kernel,
        first,
        dict(sorted(stats.histogram.items())),
        layout,
        more,
    )


MORE_MISMATCHES = 500  # first mismatches kept for a long --layer detail (--max-lines)
SHIFTS = 2  # output shifted by up to this many rows / columns (and one channel) is recognised


def mismatch_layout(expected: np.ndarray, got: np.ndarray, bad: np.ndarray, samples: list[int]) -> MismatchLayout:
    """Counts of the mismatches `bad` (N, H, W, C) along each axis, and the patterns they make; row n of the
    arrays is data-set sample samples[n]."""
    n, h, w, c = bad.shape
    per = [bad.sum(axis=tuple(a for a in range(4) if a != axis)).tolist() for axis in range(4)]
    layout = MismatchLayout((h, w, c), list(samples), *per)
    layout.patterns = _patterns(expected, got, bad, layout, samples)
    return layout


def _subset(counts: list[int], what: str, plural: str, full: int, names: list[int] | None = None) -> str:
    """'only channel 3 of 8', 'only the odd channels (every other one)', 'only rows 0..1 of 16 (the top edge)', or
    '' when every index has mismatches."""
    idx = [i for i, k in enumerate(counts) if k]
    size = len(counts)
    if len(idx) == size or size == 1:
        return ""
    if len(idx) == 1:
        i = idx[0]
        return f"only {what} {i if names is None else names[i]} of {size} differs ({counts[i]} of its {full} values)"
    parity = {i % 2 for i in idx}
    if names is None and len(parity) == 1 and len(idx) > 1 and size >= 4:
        odd = "odd" if parity == {1} else "even"
        return f"only the {odd} {plural} differ ({len(idx)} of {size}: every other {what})"
    edge = ""
    if what in ("row", "column") and idx == list(range(idx[0], idx[-1] + 1)):
        if idx[0] == 0:
            edge = " (the first ones: an edge, padding?)"
        elif idx[-1] == size - 1:
            edge = " (the last ones: an edge, padding?)"
    if names is not None:  # data-set samples: no edges, no parity
        return f"only {plural} {_ranges([names[i] for i in idx])} of {size} differ"
    return f"only {plural} {_ranges(idx)} of {size} differ{edge}"


def _ranges(idx: list[int], most: int = 8) -> str:
    """[0, 1, 2, 5, 7, 8] -> '0..2, 5, 7..8' (at most `most` runs, then '...')."""
    runs: list[list[int]] = []
    for i in idx:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    text = ", ".join(f"{a}" if a == b else f"{a}..{b}" for a, b in runs[:most])
    return text + (", ..." if len(runs) > most else "")


def _patterns(
    expected: np.ndarray, got: np.ndarray, bad: np.ndarray, layout: MismatchLayout, samples: list[int]
) -> list[str]:
    """The named patterns the mismatches fit, most telling first (at most three)."""
    n, h, w, c = bad.shape
    total = int(bad.sum())
    if total == 1:
        (at,) = np.argwhere(bad).tolist()
        return [f"a single value differs (sample {samples[at[0]]}, h {at[1]}, w {at[2]}, c {at[3]})"]
    found = [_shifted(expected, got, bad), _subset(layout.channels, "channel", "channels", n * h * w)]
    alternate = _alternate(np.asarray(bad.any(axis=(0, 3))))  # over (H, W): a pixel with any differing value
    if alternate:
        found.append(alternate)
    else:
        found += [_subset(layout.rows, "row", "rows", n * w * c), _subset(layout.cols, "column", "columns", n * h * c)]
    found.append(_subset(layout.samples, "sample", "samples", h * w * c, samples))
    found = [p for p in found if p]
    if not found and total >= 0.25 * bad.size:
        small = int(np.abs(got[bad].astype(np.int32) - expected[bad]).max()) <= 3
        why = (
            "differences of a few LSB: rounding (NN_ROUND against truncation) or a bias shift"
            if small
            else "a shift, Q-format or weight layout, not a few values"
        )
        found.append(
            f"the whole op is off: {100 * total / bad.size:.0f}% of its values differ, on every channel, "
            f"row and column ({why})"
        )
    return found[:3]


def _alternate(pixels: np.ndarray) -> str:
    """'every other column (w odd) differs ...' when the pixels (H, W) that differ all have one parity of w, h or
    h + w; else ''."""
    h, w = pixels.shape
    if pixels.sum() < 2:
        return ""
    hh, ww = np.indices((h, w))
    for name, where, fits in (
        ("every other pixel (a checkerboard: h + w {})", (hh + ww) % 2, h > 1 and w > 1),
        ("every other column (w {})", ww % 2, w >= 4),
        ("every other row (h {})", hh % 2, h >= 4),
    ):
        for parity in (0, 1):
            chosen = where == parity
            if fits and not (pixels & ~chosen).any() and pixels.sum() >= 0.5 * chosen.sum():
                return name.format("odd" if parity else "even") + " differs; the others are exact"
    return ""


def _shifted(expected: np.ndarray, got: np.ndarray, bad: np.ndarray) -> str:
    """'output shifted by +1 row: got[h, w, c] = expected[h-1, w, c] ...' when got is expected moved by a few rows,
    columns or a channel, for at least 90% of the values that differ; else ''."""
    n, h, w, c = bad.shape
    total = int(bad.sum())
    if total < 8 or bad.size > 50_000_000:
        return ""

    def part(d: int, size: int) -> slice:
        return slice(d, size) if d >= 0 else slice(0, size + d)

    best = None
    for dh in range(-SHIFTS, SHIFTS + 1):
        for dw in range(-SHIFTS, SHIFTS + 1):
            for dc in (-1, 0, 1):
                if (dh, dw, dc) == (0, 0, 0) or abs(dh) >= h or abs(dw) >= w or abs(dc) >= c:
                    continue
                at = (slice(None), part(dh, h), part(dw, w), part(dc, c))
                b = bad[at]
                nb = int(b.sum())
                if nb < 0.5 * total:
                    continue
                moved = expected[:, part(-dh, h), part(-dw, w), part(-dc, c)]
                fixed = float((got[at][b] == moved[b]).mean())
                score = (fixed, -(abs(dh) + abs(dw) + abs(dc)))
                if fixed >= 0.9 and (best is None or score > best[0]):
                    best = (score, dh, dw, dc)
    if best is None:
        return ""
    (fixed, _), dh, dw, dc = best
    words = [
        f"{d:+d} {unit}{'s' if abs(d) > 1 else ''}" for d, unit in ((dh, "row"), (dw, "column"), (dc, "channel")) if d
    ]

    def index(name: str, d: int) -> str:
        return name if d == 0 else f"{name}{-d:+d}"

    return (
        f"output shifted by {', '.join(words)}: got[h, w, c] = expected[{index('h', dh)}, {index('w', dw)}, "
        f"{index('c', dc)}] for {100 * fixed:.0f}% of the differing values (an offset in padding, stride or "
        "indexing)"
    )


def compare_results(
    plan: QuantPlan, reference: RunResult, tested: RunResult, samples: list[int], kernels: list[str] | None = None
) -> list[OpComparison]:
    """Per-op comparisons of two RunResults of the same plan."""
    out = []
    for i, op in enumerate(plan.ops):
        out.append(
            compare_op(
                op.name,
                op.kind,
                reference.outputs[op.name],
                tested.outputs[op.name],
                samples,
                reference.saturations.get(op.name),
                reference.overflows.get(op.name),
                kernels[i] if kernels else "",
            )
        )
    return out


def run_compare(
    plan: QuantPlan, reference: Engine, tested: Engine, x_int: np.ndarray, samples: list[int], mode: str = "propagated"
) -> Comparison:
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
    return Comparison(
        plan.hash,
        reference.describe(),
        tested.describe(),
        mode,
        list(samples),
        compare_results(plan, ref, got, list(samples), kernels),
    )


def _count(v) -> str:
    return "-" if v is None else str(v)


def format_table(c: Comparison) -> str:
    """One row per op, then the verdict."""
    lines = [
        f"plan {c.plan_hash[:16]}  mode: {c.mode}  samples: {_samples(c.samples)}",
        f"reference: {c.reference}",
        f"tested:    {c.tested}",
        "",
        f"{'op':<22} {'kind':<8} {'exact %':>8} {'max|d|':>7} {'mismatch':>10} {'sat':>6} {'ovf':>6}  kernel",
    ]
    for op in c.ops:
        lines.append(
            f"{op.name:<22} {op.kind:<8} {op.exact_pct:>8.2f} {op.max_diff:>7} {op.mismatches:>10} "
            f"{_count(op.saturations):>6} {_count(op.overflows):>6}  {op.kernel}"
        )
    lines.append("")
    first = c.first_divergent
    if first is None:
        lines.append(f"PASS: all {len(c.ops)} ops bit-exact on {len(c.samples)} sample(s)")
    else:
        n_bad = sum(1 for op in c.ops if op.mismatches)
        lines.append(
            f"FAIL: first divergent op: {first.name} ({first.mismatches} of {first.total} values differ, "
            f"max {first.max_diff} LSB); {n_bad} op(s) differ"
        )
    return "\n".join(lines)


DETAIL_LINES = 40  # a screen: the --layer detail's default budget (--max-lines)
MIN_DETAIL_LINES = 12  # what the summary needs, whatever --max-lines says
STRIP_WIDTH = 60  # characters of a per-row/column/channel strip; longer axes are folded


def format_detail(op: OpComparison, max_lines: int = DETAIL_LINES) -> str:
    """One op's mismatches in at most max_lines lines: the pattern they make (named when one fits), where they
    are (per sample, row, column and channel), the first mismatches and the LSB-difference histogram."""
    budget = max(max_lines, MIN_DETAIL_LINES)
    head = [
        f"{op.name}: {op.mismatches} of {op.total} values differ ({op.exact_pct:.2f}% exact)"
        + (f", max {op.max_diff} LSB" if op.mismatches else "")
    ]
    if not op.mismatches:
        return head[0]
    lay = op.layout
    if lay is not None:
        head[0] += f"; output (H, W, C) = {lay.shape} x {len(lay.samples)} sample(s)"
        for p in lay.patterns or ["none recognised (scattered values)"]:
            head += textwrap.wrap(p, 116, initial_indent="  pattern: ", subsequent_indent="    ")
        strips = [
            strip
            for strip in (
                ("sample", lay.samples, lay.shape[0] * lay.shape[1] * lay.shape[2], lay.sample_ids),
                ("row h", lay.rows, len(lay.samples) * lay.shape[1] * lay.shape[2], None),
                ("col w", lay.cols, len(lay.samples) * lay.shape[0] * lay.shape[2], None),
                ("chan c", lay.channels, len(lay.samples) * lay.shape[0] * lay.shape[1], None),
            )
            if len(strip[1]) > 1
        ]
        if strips:
            head.append("  where (one mark per index, or per group of indices: . exact, 1-9 tenths differ, # all):")
            head += [_strip(*strip) for strip in strips]
    first = op.first + op.more
    rows = _histogram_rows(op.histogram)
    room = budget - len(head) - 2  # the two section titles
    # ten first mismatches on a screen, one more per line of budget beyond it; fewer when the histogram needs room
    n_first = min(
        len(first), FIRST_MISMATCHES + max(0, budget - DETAIL_LINES), max(3, room - len(rows)), max(0, room - 3)
    )
    rows = _fit_rows(rows, max(1, room - n_first))
    lines = head + [
        "  first mismatches (sample, h, w, c, expected, got)"
        + (f", {n_first} of {op.mismatches}:" if n_first < op.mismatches else ":")
    ]
    lines += [f"    ({m.sample}, {m.h}, {m.w}, {m.c}, {m.expected}, {m.got})" for m in first[:n_first]]
    folded = len(rows) < len(op.histogram)
    lines.append("  LSB difference histogram (got - expected: count)" + (", in ranges:" if folded else ":"))
    width = max(n for _, n in rows)
    for label, n in rows:
        bar = "#" * max(1, round(40 * n / width))
        lines.append(f"    {label:>15}: {n:>8} {bar}")
    return "\n".join(lines[:budget])


def _strip(name: str, counts: list[int], per: int, ids: list[int] | None) -> str:
    """'  row h   0..15 |..9#..| 3 of 16 differ': the share of each index's values that differ, one character per
    index (consecutive indices grouped when there are more than STRIP_WIDTH)."""
    size = len(counts)
    group = -(-size // STRIP_WIDTH)
    marks = []
    for i in range(0, size, group):
        part = counts[i : i + group]
        share = sum(part) / (per * len(part))
        marks.append("." if share == 0 else "#" if share >= 1 else str(min(9, max(1, int(10 * share)))))
    bad = sum(1 for k in counts if k)
    each = f", {group} per mark" if group > 1 else ""
    span = f"0..{size - 1}"  # batch rows, unless the data-set indices are contiguous
    if ids is not None and ids == list(range(ids[0], ids[0] + size)):
        span = f"{ids[0]}..{ids[-1]}"
    return f"    {name:<7}{span:>11} |{''.join(marks)}| {bad} of {size} differ{each}"


def _fit_rows(rows: list[tuple[str, int]], most: int) -> list[tuple[str, int]]:
    """Merge neighbouring histogram rows (ranges joined, counts added), the smallest pair first, until at most
    `most` remain: the large buckets keep their resolution."""
    rows = list(rows)
    while len(rows) > max(1, most):
        i = min(range(len(rows) - 1), key=lambda j: rows[j][1] + rows[j + 1][1])
        (a, n), (b, m) = rows[i], rows[i + 1]
        rows[i : i + 2] = [(f"{a.split('..')[0]}..{b.split('..')[-1]}", n + m)]
    return rows


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
