"""The C macro names of the generated headers: one stem per conv/dense op (STEM_WT, STEM_BIAS, STEM_BIAS_LSHIFT,
STEM_OUT_RSHIFT in weights.h, STEM in sample_input_output.h) beside qverify's fixed macros.

A stem is the op's name upper-cased (macro_name), or the name a plan records for it (QuantPlan.macro_names:
from `quantize --map` / `--names-from`, or the gate's [tool.qverify.header_map]), so that regenerated headers
build unchanged into a firmware written against other names (the notebook's CONV1_WT ... FC3_BIAS).

Standard library only: the CLI checks names with it before TensorFlow is imported.
"""

from __future__ import annotations

import re

SUFFIXES = ("_WT", "_BIAS", "_BIAS_LSHIFT", "_OUT_RSHIFT", "")
GUARDS = ("QVERIFY_WEIGHTS_H", "QVERIFY_SAMPLE_INPUT_OUTPUT_H")
PLAN_MACROS = {
    "weights.h": "QVERIFY_WEIGHTS_PLAN",
    "sample_input_output.h": "QVERIFY_SAMPLE_PLAN",
    "network.c": "QVERIFY_NETWORK_PLAN",
}
FIXED_MACROS = ("INPUT_DATA", "QVERIFY_PLAN_HASH", "QVERIFY_ROUNDING", *GUARDS, *PLAN_MACROS.values())
# C99/C11 keywords: a macro of that name would rewrite the language in every unit including the header
C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline int long "
    "register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while "
    "_Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn _Static_assert _Thread_local".split()
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def macro_name(op_name: str) -> str:
    """C macro stem for an op: upper-cased, anything but [A-Z0-9_] replaced by '_'."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", op_name).upper()
    return f"_{name}" if name[0].isdigit() else name


def stem_problem(stem: str) -> str | None:
    """Why stem cannot name an op's macros, or None."""
    if not isinstance(stem, str) or not _IDENTIFIER.match(stem):
        return f"'{stem}' is not a C identifier (letters, digits and '_', not starting with a digit)"
    if stem in C_KEYWORDS:
        return f"'{stem}' is a C keyword"
    return None


def clash(stems: dict[str, str], what: str = "op") -> str | None:
    """The first problem of {op name: stem} as the headers would define them, in order, or None: a stem that is
    not a C identifier, two ops of one stem, or a macro defined twice (by two ops, or by an op and qverify)."""
    defined: dict[str, str | None] = {m: None for m in FIXED_MACROS}  # macro -> the op defining it; None: qverify
    owner: dict[str, str] = {}
    for op, stem in stems.items():
        problem = stem_problem(stem)
        if problem:
            return f"{what} '{op}': {problem}"
        if stem in owner:
            return (
                f"{what}s '{owner[stem]}' and '{op}' both named {stem} (C macros {stem}_WT, {stem}_BIAS ...): "
                "each conv/dense op needs its own"
            )
        owner[stem] = op
        for macro in (stem + suffix for suffix in SUFFIXES):
            if macro in defined:
                by = "qverify" if defined[macro] is None else f"{what} '{defined[macro]}'"
                return f"{what} '{op}' would define C macro {macro}, which {by} already defines"
            defined[macro] = op
    return None
