"""A weights.h or sample_input_output.h against a plan, op by op: what differs, and the likely cause.

diff_weights compares every conv/dense op's weights, bias and shifts with the plan's and names a wrong
layout, a wrapped saturation, another Q-format, a shift off by n, edited values or another op's values;
diff_sample compares each conv/dense output with what an engine computes from the header's own values.
format_diff prints either as a short table.

numpy and the plan only: nothing here imports TensorFlow (an engine is passed in).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from qverify.cheader import QMAX, QMIN
from qverify.header import SampleHeader, WeightsHeader
from qverify.layout import ORDERS, conv_from_cmsis, dense_from_cmsis, interleave, notebook_conv_order
from qverify.opkinds import FUNCTIONS, elems
from qverify.plan import OpPlan, QuantPlan
from qverify.qformat import qm_n

FIRST = 5  # differing elements listed per part
PARTS = ("weights", "bias", "bias_lshift", "out_rshift")


@dataclass
class PartDiff:
    """One part of an op that differs: `differ` of `size` elements, the first (index, header, plan), the cause.
    scale: n when the header holds the plan's values × 2^n (another Q-format)."""

    part: str
    differ: int
    size: int
    first: list[tuple[int, int, int]]
    cause: str
    scale: int | None = None


@dataclass
class OpDiff:
    op: str
    stem: str
    parts: list[PartDiff]
    # frac bits where the header's (stated or from its shifts) differ: (header, plan)
    formats: dict[str, tuple[int, int]]


@dataclass
class HeaderDiff:
    path: str
    plan_hash: str
    matched: str
    ops: list[OpDiff]
    unmapped: list[str]
    notes: list[str]

    @property
    def identical(self) -> bool:
        return not self.unmapped and not any(op.parts for op in self.ops)

    def to_dict(self) -> dict:
        return {**asdict(self), "identical": self.identical}


def _layouts(op: OpPlan) -> list[tuple[str, np.ndarray]]:
    """(cause, perm) per wrong layout someone writes: header[i] holds plan[perm[i]]. op: a conv/dense op."""
    assert op.weights is not None  # a weighted op has weights: the plan validates them
    idx = np.arange(op.weights.size)
    found = []
    if op.kind == "conv":
        keras = conv_from_cmsis(idx, *op.kernel, op.in_shape[2], op.out_shape[2])
        found += [
            (
                "layout transposed: the notebook's moveaxis(w, 2, 0).flatten('F') order [c_out][k_w][k_h][c_in]; "
                "CMSIS reads [c_out][k_h][k_w][c_in]",
                notebook_conv_order(keras),
            ),
            ("layout: Keras's (k_h, k_w, c_in, c_out) order; CMSIS reads [c_out][k_h][k_w][c_in]", keras.ravel()),
        ]
    else:
        found.append(
            (
                "layout transposed: [in][out] (Keras's order); CMSIS reads [out][in]",
                dense_from_cmsis(idx, op.in_shape[2], op.out_shape[2]).ravel(),
            )
        )
        assert op.function is not None  # every op of a plan names its function (kernels.assign)
        n_in, n_out, fn = elems(op.in_shape), op.out_shape[2], FUNCTIONS[op.function]
        for order in (o for o in ORDERS if o):
            stored = interleave(idx, n_in, n_out, order)  # the header as read holds the plan at these places
            if fn.order == order:
                found.append(
                    (
                        f"layout: [out][in], but {fn.name} reads its weights interleaved (rows in groups of 4, "
                        "qverify.layout.interleave)",
                        np.argsort(stored),
                    )
                )
            elif not fn.order:
                found.append((f"layout: an _opt function's interleave ({order}); {fn.name} reads [out][in]", stored))
    return [(cause, perm) for cause, perm in found if (perm != idx).any()]


def _scale(h: np.ndarray, p: np.ndarray) -> int | None:
    """n with h = p·2^n up to ±1 LSB of the coarser format (the finer one may saturate), else None."""
    mh, mp = int(np.abs(h).max()), int(np.abs(p).max())
    if not mh or not mp:
        return None
    n0 = int(round(np.log2(mh / mp)))
    for n in (n0, n0 - 1, n0 + 1):
        if n == 0 or abs(n) > 15:
            continue
        fine, coarse, k = (h, p, n) if n > 0 else (p, h, -n)
        if np.abs(coarse).max() < 8:  # ±1 LSB of a near-zero array would match almost anything
            continue
        near = np.abs(np.floor(fine / 2.0**k + 0.5) - coarse) <= 1
        clipped = (np.abs(fine) >= QMAX) & (np.sign(fine) == np.sign(coarse)) & (np.abs(coarse) * 2**k >= 2**15 - 2**k)
        if (near | clipped).all():
            return n
    return None


def _relation(part: str, g: np.ndarray, p: np.ndarray) -> tuple[str, int | None] | None:
    """Why g (in the plan's layout) differs from p, when a wrap or a Q-format explains it ("" when equal)."""
    bad = g != p
    if not bad.any():
        return "", None
    if (p[bad] == QMAX).all() and (g[bad] == QMIN).all():
        return (
            f"saturated value wrapped: {int(bad.sum())} value(s) the plan saturates at 32767 are -32768 "
            "in the header (the notebook's unclipped 1.0 = 32768 stored as int16)"
        ), None
    n = _scale(g, p)
    if n is not None:
        return f"another Q-format: header = plan x 2^{n} (up to 1 LSB): the {part} quantized with {n:+d} frac bits", n
    return None


def _array_diff(
    part: str, h: np.ndarray, p: np.ndarray, layouts, others: list[tuple[str, np.ndarray]]
) -> PartDiff | None:
    h, p = h.astype(np.int64), p.astype(np.int64)
    bad = np.flatnonzero(h != p)
    if not bad.size:
        return None
    first = [(int(i), int(h[i]), int(p[i])) for i in bad[:FIRST]]
    for how, perm in [("", None), *layouts]:
        g = h
        if perm is not None:
            g = np.empty_like(h)
            g[perm] = h
        found = _relation(part, g, p)
        if found is not None:
            return PartDiff(part, bad.size, h.size, first, "; ".join(s for s in (how, found[0]) if s), found[1])
    for name, values in others:
        if values.size == h.size and (values == h).all():
            return PartDiff(part, bad.size, h.size, first, f"holds op {name}'s {part}: layers swapped or mis-mapped")
    same = h.size - bad.size
    if 2 * same >= h.size:
        cause = f"{bad.size} value(s) edited: the other {same} equal the plan's"
    else:
        cause = f"from another model: no layout, wrap, Q-format or other op relates the {part} to the plan's"
    return PartDiff(part, bad.size, h.size, first, cause)


def _shift_diff(
    part: str, h: int, p: int, fmt: str, got: int, want: int, via: list[str], stated: int | None
) -> PartDiff:
    """A shift that differs. fmt: the format it sets (f_b or f_out); got: that format as the header's shift
    gives it; want: the format the header's own values need (the plan's, or the bias's other Q-format)."""
    cause = f"off by {h - p:+d}: "
    if got == want:
        cause += f"{fmt} {got} ({qm_n(got)}) is consistent; the shift follows from the header's " + ", ".join(via)
    else:
        cause += f"the header's {fmt} = f_w + f_in - {part} is {got} ({qm_n(got)}), the plan's {want} ({qm_n(want)})"
    if stated is not None and stated != got:
        cause += f"; the header's own comment says {fmt} {stated}: the shift was edited"
    return PartDiff(part, 1, 1, [(0, h, p)], cause)


def diff_weights(header: WeightsHeader, plan: QuantPlan) -> HeaderDiff:
    """Every conv/dense op's weights, bias and shifts in the header against the plan's.

    Frac bits on both sides follow from the values, op after op: f_b = f_w + f_in - bias_lshift,
    f_out = f_w + f_in - out_rshift, f_in the previous op's f_out (the input's for the first; pooling,
    ReLU and flatten keep the format), and the header's f_w is the plan's unless its weights are another
    Q-format. What the header's comment states (qverify's do) is only checked against them: a shift that
    disagrees with its own comment was edited.
    """
    layers = {layer.op: layer for layer in header.layers}
    weighted = [op for op in plan.ops if op.weighted]
    # a weighted op always has weights, bias, w_frac, bias_lshift and out_rshift: the plan validates them
    all_weights: list[tuple[str, np.ndarray]] = []
    all_bias: list[tuple[str, np.ndarray]] = []
    for o in weighted:
        assert o.weights is not None and o.bias is not None
        all_weights.append((o.name, o.weights))
        all_bias.append((o.name, o.bias))
    ops, h_in, p_in = [], plan.input_frac, plan.input_frac
    for op in weighted:
        assert op.weights is not None and op.bias is not None and op.w_frac is not None
        assert op.bias_lshift is not None and op.out_rshift is not None
        layer, st = layers[op.name], layers[op.name].stated
        w = _array_diff("weights", layer.weights, op.weights, _layouts(op), all_weights)
        b = _array_diff("bias", layer.bias, op.bias, [], all_bias)
        p_b, p_out = op.w_frac + p_in - op.bias_lshift, op.w_frac + p_in - op.out_rshift
        h_w = op.w_frac + ((w.scale or 0) if w else 0)
        h_b, h_out = h_w + h_in - layer.bias_lshift, h_w + h_in - layer.out_rshift
        via = [f"f_in {h_in} (plan {p_in}: an earlier op's output format)"] if h_in != p_in else []
        via += [f"f_w {h_w} (plan {op.w_frac}: the weights' format)"] if h_w != op.w_frac else []
        parts = [x for x in (w, b) if x]
        if layer.bias_lshift != op.bias_lshift:
            want_b = p_b + ((b.scale or 0) if b else 0)  # a bias of another Q-format needs its own shift
            parts.append(
                _shift_diff(
                    "bias_lshift",
                    layer.bias_lshift,
                    op.bias_lshift,
                    "f_b",
                    h_b,
                    want_b,
                    via + ([f"bias format f_b {want_b} (plan {p_b})"] if want_b != p_b else []),
                    st.get("f_b"),
                )
            )
        if layer.out_rshift != op.out_rshift:
            parts.append(
                _shift_diff("out_rshift", layer.out_rshift, op.out_rshift, "f_out", h_out, p_out, via, st.get("f_out"))
            )
        formats = {
            k: (hv, pv)
            for k, hv, pv in (("f_in", h_in, p_in), ("f_w", h_w, op.w_frac), ("f_b", h_b, p_b), ("f_out", h_out, p_out))
            if hv != pv
        }
        ops.append(OpDiff(op.name, layer.stem, parts, formats))
        h_in, p_in = h_out, p_out
    notes = []
    if header.plan_hash and header.plan_hash != plan.hash:
        notes.append(f"the header says it was written for plan {header.plan_hash[:16]}; this plan is {plan.hash[:16]}")
    if header.rounding and header.rounding != plan.rounding:
        notes.append(f"the header was verified for a '{header.rounding}' build; this plan is '{plan.rounding}'")
    return HeaderDiff(header.path, plan.hash, header.matched, ops, header.unmapped, notes)


def _dump_order(shape) -> np.ndarray:
    """perm with header[i] = hwc[perm[i]] for the notebook's dump a.transpose(2, 0, 1).flatten('F')."""
    return np.arange(int(np.prod(shape))).reshape(shape).transpose(2, 0, 1).flatten("F")


def diff_sample(sample: SampleHeader, plan: QuantPlan, reference, other=None) -> HeaderDiff:
    """Each conv/dense output in the sample header against what `reference` (an Engine, normally the shift
    model) computes from the header's own values: op k is fed the header's previous conv/dense output
    through the plan's ReLU and pooling, so a difference is op k's own, not one carried from an earlier op.

    other: the same engine built for the other rounding, to name a header from the other build.
    """
    h = sample.input.reshape(1, *plan.input_shape)
    order = _dump_order(plan.input_shape)
    inputs: list[tuple[str | None, np.ndarray]] = [(None, h)]
    if (order != np.arange(order.size)).any():  # the notebook dumps INPUT_DATA in its own order too
        x = np.empty_like(sample.input)
        x[order] = sample.input
        inputs.append(
            ("INPUT_DATA in the notebook's transpose(2, 0, 1).flatten('F') order; HWC is [h][w][c]", x.reshape(h.shape))
        )
    engines = [(None, reference)] + (
        [(f"the output of a '{other.rounding}' build (this plan is '{plan.rounding}')", other)]
        if other is not None
        else []
    )
    ops = []
    for i, op in enumerate(plan.ops):
        if not op.weighted:
            inputs = [(how, reference.run_op(i, x).out) for how, x in inputs]
            continue
        got = sample.outputs[op.name].astype(np.int64)
        perm = _dump_order(op.out_shape)
        undone = np.empty_like(got)
        undone[perm] = got
        layouts = [(None, got)] + (
            [("layout: the notebook's transpose(2, 0, 1).flatten('F') dump; HWC is [h][w][c]", undone)]
            if (perm != np.arange(perm.size)).any()
            else []
        )
        want = reference.run_op(i, inputs[0][1]).out[0].ravel().astype(np.int64)
        parts, fed = [], got
        if (got != want).any():
            bad = np.flatnonzero(got != want)
            first = [(int(k), int(got[k]), int(want[k])) for k in bad[:FIRST]]
            match = next(
                (
                    (hows, values)
                    for how_in, x in inputs
                    for how_e, engine in engines
                    for how_l, values in layouts
                    for hows in [[how_in, how_l, how_e]]
                    if (engine.run_op(i, x).out[0].ravel() == values).all()
                ),
                None,
            )
            if match is not None:
                hows, fed = match
                if hows[0]:
                    parts.append(
                        PartDiff(
                            "input", int((inputs[1][1].ravel() != sample.input).sum()), sample.input.size, [], hows[0]
                        )
                    )
                parts.append(PartDiff("output", bad.size, got.size, first, "; ".join(h for h in hows[1:] if h)))
            else:
                d = int(np.abs(got - want).max())
                cause = (
                    f"{bad.size} value(s) off by one LSB"
                    if d <= 1
                    else f"not what the plan computes from the header's input to this op (max |d| {d}): "
                    "the sample was made with other weights or shifts"
                )
                parts.append(PartDiff("output", bad.size, got.size, first, cause))
        ops.append(OpDiff(op.name, sample.stems[op.name], parts, {}))
        inputs = [(None, np.asarray(fed, np.int16).reshape(1, *op.out_shape))]  # the next op gets the header's values
    notes = []
    if sample.plan_hash and sample.plan_hash != plan.hash:
        notes.append(f"the header says it was written for plan {sample.plan_hash[:16]}; this plan is {plan.hash[:16]}")
    return HeaderDiff(sample.path, plan.hash, "sample", ops, [], notes)


MATCHED = {
    "name": "layers matched by name",
    "map": "layers matched by --map, the others by name",
    "order": "no layer named like the plan's: layers matched by the order of the conv/dense ops",
    "sample": "each conv/dense output against the plan run on the header's own input to that op",
}


def format_diff(d: HeaderDiff) -> str:
    """A short table: per op the parts that differ, their first elements and the likely cause; then the verdict."""
    lines = [
        f"{d.path} against plan {d.plan_hash[:16]} ({MATCHED[d.matched]})",
        "",
        f"{'op':<16} {'macro':<14} {'part':<12} {'differ':>11}  first (index: header / plan)",
    ]
    for op in d.ops:
        if not op.parts:
            lines.append(f"{op.op:<16} {op.stem:<14} {'':<12} {'identical':>11}")
        for k, part in enumerate(op.parts):
            more = " ..." if len(part.first) == FIRST < part.differ else ""
            first = (
                f"header {part.first[0][1]}, plan {part.first[0][2]}"
                if part.part in PARTS[2:]
                else ", ".join(f"[{i}] {h} / {p}" for i, h, p in part.first) + more
            )
            count = "1" if part.part in PARTS[2:] else f"{part.differ}/{part.size}"
            lines.append(
                f"{op.op if k == 0 else '':<16} {op.stem if k == 0 else '':<14} {part.part:<12} {count:>11}  {first}"
            )
            lines.append(f"{'':<16} {'':<14} {'':<12} {'':>11}  cause: {part.cause}")
        if op.parts and op.formats:
            lines.append(
                f"{'':<16} {'':<14} frac bits (header / plan): "
                + ", ".join(f"{k} {h} / {p}" for k, (h, p) in op.formats.items())
            )
    for stem in d.unmapped:
        lines.append(f"{'(none)':<16} {stem:<14} the header's layer {stem} maps to no op of the plan")
    lines += [""] + [f"note: {n}" for n in d.notes]
    n_bad = sum(1 for op in d.ops if op.parts)
    if d.identical:
        what = "output" if d.matched == "sample" else "weight, bias and shift"
        lines.append(f"IDENTICAL: every {what} of the {len(d.ops)} conv/dense ops equals the plan's")
    else:
        extra = f", {len(d.unmapped)} header layer(s) unmapped" if d.unmapped else ""
        lines.append(f"DIFFERENT: {n_bad} of {len(d.ops)} conv/dense ops differ{extra}")
    return "\n".join(lines)
