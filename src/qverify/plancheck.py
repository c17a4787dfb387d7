"""A plan's own consistency, checked wherever the plan comes from (plan.json, a header, the graph).

Every engine and exporter trusts the plan's geometry: a conv kernel of 19 where the weights hold 9,
an input with the wrong channel count or a stride of 0 would otherwise reach TensorFlow or the C
runner and end in a traceback (exit 1, which CI reads as "a kernel differs"). Each problem is one
PlanError naming the op and the field, with what was expected.
"""

from __future__ import annotations

import math

from qverify.choices import BITS, CMSIS_RELEASES, FormatRule, Rounding, values
from qverify.errors import PlanError
from qverify.opkinds import KINDS, WEIGHT_WIDTHS, elems, window

MAX_SHIFT = 31  # C shifts past 31 are undefined and differ between host and core
FRAC_LIMIT = 64  # |frac bits| of any format: far beyond what a 16-bit value with a real range needs


def _int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _frac(value) -> bool:
    return _int(value) and -FRAC_LIMIT <= value <= FRAC_LIMIT


def _range(value) -> bool:
    """Two finite numbers, low first."""
    return (
        isinstance(value, tuple | list)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value)
        and value[0] <= value[1]
    )


def _ints(value, count: int, low: int) -> bool:
    return isinstance(value, tuple | list) and len(value) == count and all(_int(v) and v >= low for v in value)


def _formats(op, kind) -> None:
    """Frac bits and range of an op are numbers a format can have. (How they relate to the shifts, rule 3, is
    not checked: the engines compute with the shifts, the fracs only scale the float comparison.)"""

    def bad(what: str) -> PlanError:
        return PlanError(f"plan: op '{op.name}' ({op.kind}): {what}")

    for field in ("in_frac", "out_frac", *(("w_frac", "b_frac") if kind.weighted else ())):
        if not _frac(getattr(op, field)):
            raise bad(f"{field} {getattr(op, field)!r}; expected an integer in [-{FRAC_LIMIT}, {FRAC_LIMIT}]")
    if not _range(op.range):
        raise bad(f"range {op.range!r}; expected two finite numbers, low first (the calibrated output range)")


def _op(op, prev_out) -> None:
    def bad(what: str) -> PlanError:
        return PlanError(f"plan: op '{op.name}' ({op.kind}): {what}")

    kind = KINDS.get(op.kind)
    if kind is None:
        raise bad(f"unknown kind; expected one of {', '.join(KINDS)}")
    for field, low in (("in_shape", 1), ("out_shape", 1)):
        if not _ints(getattr(op, field), 3, low):
            raise bad(f"{field} {getattr(op, field)!r}; expected three positive integers (H, W, C)")
    for field, low in (("kernel", 1), ("stride", 1), ("pad", 0)):
        if not _ints(getattr(op, field), 2, low):
            raise bad(f"{field} {getattr(op, field)!r}; expected two integers >= {low}")
    if prev_out is not None and elems(op.in_shape) != elems(prev_out):
        raise bad(
            f"in_shape {tuple(op.in_shape)} holds {elems(op.in_shape)} values, the previous op's output "
            f"{tuple(prev_out)} holds {elems(prev_out)}"
        )
    (h, w, _), (k_h, k_w), (p_h, p_w) = op.in_shape, op.kernel, op.pad
    if kind.window and (k_h > h + 2 * p_h or k_w > w + 2 * p_w):
        what = "padded input" if kind.window == "padded" else "input"
        raise bad(f"kernel {tuple(op.kernel)} is larger than the {what} {h + 2 * p_h}x{w + 2 * p_w}")
    want = tuple(kind.output_shape(op))
    if tuple(op.out_shape) != want:
        also = ""
        if kind.window == "padded":  # docs/design.md rule 4: pad p before, p or (TensorFlow's 'same') p + 1 after
            alt = (window(h, k_h, op.stride[0], p_h, p_h + 1), window(w, k_w, op.stride[1], p_w, p_w + 1))
            also = f" (or {alt[0]} x {alt[1]} with TensorFlow's one more pad after: bottom, right)"
        raise bad(
            f"out_shape {tuple(op.out_shape)}; input {tuple(op.in_shape)}, kernel, stride and padding give {want}{also}"
        )
    if kind.window != "padded" and (p_h, p_w) != (0, 0):
        raise bad(f"pad {tuple(op.pad)}; a {op.kind} op has no padding")
    if kind.weighted:
        for field, count in (("weights", kind.weight_count(op)), ("bias", op.out_shape[2])):
            arr = getattr(op, field)
            if arr is None or arr.size != count:
                raise bad(f"{field} hold {0 if arr is None else arr.size} values; the geometry needs {count}")
        for field in ("bias_lshift", "out_rshift"):
            v = getattr(op, field)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= MAX_SHIFT:
                raise bad(f"{field} {v!r}; expected an integer in [0, {MAX_SHIFT}]")
    bits = getattr(op, "weight_bits", 16)
    if bits not in (WEIGHT_WIDTHS if kind.weighted else (16,)):
        widths = " or ".join(map(str, WEIGHT_WIDTHS)) if kind.weighted else "16 (it has no weights)"
        raise bad(f"weight_bits {bits!r}; expected {widths}")
    if kind.weighted and bits < 16:
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        for field in ("weights", "bias"):
            arr = getattr(op, field)
            if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
                raise bad(
                    f"{field} hold values in [{int(arr.min())}, {int(arr.max())}]; {bits}-bit ones need [{lo}, {hi}]"
                )


def validate(plan) -> None:
    """Raise PlanError (one line: the op, the field, what was expected) unless the plan is consistent."""
    if plan.bits not in BITS:
        raise PlanError(f"plan: bits {plan.bits!r}; qverify verifies q15 (16-bit) kernels only")
    if plan.cmsis not in CMSIS_RELEASES:
        raise PlanError(f"plan: cmsis {plan.cmsis!r}; expected a CMSIS_5 release of {', '.join(CMSIS_RELEASES)}")
    if plan.rounding not in values(Rounding):
        raise PlanError(f"plan: rounding {plan.rounding!r}; expected {' or '.join(values(Rounding))}")
    if not plan.ops:
        raise PlanError("plan: no ops")
    if not _ints(plan.input_shape, 3, 1) or tuple(plan.input_shape) != tuple(plan.ops[0].in_shape):
        raise PlanError(
            f"plan: input_shape {plan.input_shape!r}; the first op '{plan.ops[0].name}' takes {plan.ops[0].in_shape!r}"
        )
    if not _frac(plan.input_frac):
        raise PlanError(f"plan: input_frac {plan.input_frac!r}; expected an integer in [-{FRAC_LIMIT}, {FRAC_LIMIT}]")
    if not _range(plan.input_range):
        raise PlanError(f"plan: input_range {plan.input_range!r}; expected two finite numbers, low first")
    if plan.rule not in values(FormatRule):
        raise PlanError(f"plan: rule {plan.rule!r}; expected {' or '.join(values(FormatRule))}")
    names = [op.name for op in plan.ops]
    for name in names:
        if not isinstance(name, str) or not name:
            raise PlanError(f"plan: op name {name!r}; expected a non-empty string")
    if len(set(names)) != len(names):
        raise PlanError(f"plan: op names repeat ({', '.join(sorted({n for n in names if names.count(n) > 1}))})")
    prev = None
    for op in plan.ops:
        _op(op, prev)
        _formats(op, KINDS[op.kind])
        prev = op.out_shape
