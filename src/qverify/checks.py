"""The checks the gate is built on: add_checks turns an evaluate.EvalResult's measurements into
outcome.Check items against the thresholds given.
"""

from __future__ import annotations

import math

from qverify.evaluate import QUANTIZED, EvalResult
from qverify.metrics import Mismatch
from qverify.opkinds import KINDS
from qverify.outcome import Check


def mismatch_lines(first: list[Mismatch], tested: str) -> list[str]:
    """A bit_exact check's details: 'first mismatches (sample, h, w, c, shift, <tested>):', then one line each."""
    return [f"first mismatches (sample, h, w, c, shift, {tested}):"] + [
        f"  ({m.sample}, {m.h}, {m.w}, {m.c}, {m.expected}, {m.got})" for m in first
    ]


def add_checks(
    result: EvalResult,
    min_sqnr: float | None = None,
    max_accuracy_drop: float | None = None,
    fail_on_overflow: bool = False,
) -> EvalResult:
    """Attach the gate's checks: bit-exactness always gates; SQNR, accuracy drop and accumulator
    overflow gate only when a threshold is given (otherwise they are reported and pass)."""
    checks: list[Check] = []
    result.thresholds = {
        "min_sqnr_db": min_sqnr,
        "max_accuracy_drop_pct": max_accuracy_drop,
        "fail_on_overflow": fail_on_overflow,
    }
    for o in result.ops:
        cls = f"qverify.{o.name}"
        if o.pair is not None:
            p = o.pair
            ok = p.mismatches == 0
            msg = (
                f"{p.total} values bit-exact"
                if ok
                else f"{p.mismatches} of {p.total} values differ (max {p.max_diff} LSB)"
            )
            details = "" if ok else "\n".join(mismatch_lines(p.first, "native"))
            checks.append(Check(cls, "bit_exact[shift-native]", ok, msg, details))
        for e, s in o.quant.items():
            sq = s.sqnr_db
            ok = min_sqnr is None or sq >= min_sqnr
            bound = "" if min_sqnr is None else f" (minimum {min_sqnr:g} dB)"
            checks.append(
                Check(
                    cls,
                    f"sqnr[{e}]",
                    ok,
                    f"SQNR {_fmt_db(sq)} dB{bound}, RMSE {s.rmse_lsb:.3g} LSB, cosine {s.cosine:.6f}",
                )
            )
        ref = o.quant.get("shift") or next(iter(o.quant.values()), None)
        if ref is not None:
            sat = ref.saturations
            checks.append(
                Check(
                    cls,
                    "saturation",
                    True,
                    f"{'-' if sat is None else sat} saturated outputs, {ref.float_saturating} float values "
                    f"beyond {o.format}; out headroom {_fmt_bits(ref.headroom_bits)} bits",
                )
            )
            if ref.overflows is not None and KINDS[o.kind].weighted:
                ok = not (fail_on_overflow and ref.overflows)
                acc_room = o.acc_headroom
                room = (
                    ""
                    if acc_room is None
                    else (
                        f"; acc headroom {_fmt_bits(acc_room[0])} bits"
                        + ("" if acc_room[1] else " (calibrated estimate)")
                    )
                )
                checks.append(
                    Check(
                        cls,
                        "accumulator_overflow",
                        ok,
                        f"{ref.overflows} accumulator overflow(s) (int32 wrap on the device){room}",
                    )
                )
    if result.bit_exact_samples is not None:
        ok = bool(result.bit_exact)
        checks.append(
            Check(
                "qverify.model",
                "bit_exact_samples",
                ok,
                f"{result.bit_exact_samples} of {result.samples} samples bit-exact between shift and native",
                "" if ok else f"first inexact samples: {result.first_inexact_samples}",
            )
        )
    fa = result.accuracy("float")
    for e in QUANTIZED:
        d = result.decisions.get(e)
        if d is None:
            continue
        acc = result.accuracy(e)
        if acc is not None and fa is not None:
            drop = 100.0 * (fa - acc)
            ok = max_accuracy_drop is None or drop <= max_accuracy_drop
            bound = "" if max_accuracy_drop is None else f" (maximum {max_accuracy_drop:g} points)"
            checks.append(
                Check(
                    "qverify.model",
                    f"accuracy_drop[{e}]",
                    ok,
                    f"accuracy {100 * acc:.2f}% vs float {100 * fa:.2f}%: drop {drop:.2f} points{bound}",
                )
            )
        if "float" in result.decisions:
            checks.append(
                Check(
                    "qverify.model",
                    f"decision_flips[{e}]",
                    True,
                    f"{d.flips} of {result.samples} decisions differ from the float model's",
                    "\n".join(
                        f"  sample {f['sample']}: float {f['float_class']} ({f['float_score']:.4g}), "
                        f"{e} {f['class']} ({f['score']:.4g})"
                        for f in d.first_flips
                    ),
                )
            )
    result.checks = checks
    return result


def _fmt_db(v: float) -> str:
    return "inf" if math.isinf(v) and v > 0 else ("-inf" if math.isinf(v) else f"{v:.1f}")


def _fmt_bits(v: float) -> str:
    return "inf" if math.isinf(v) else f"{v:+.2f}"
