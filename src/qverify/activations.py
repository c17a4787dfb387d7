"""The on-device activations of the legacy q15 API, defined once: their tables and formats.

``arm_nn_activations_direct_q15(data, size, int_width, type)`` (sigmoid or tanh, in place) reads a
256-entry q15 table of f(x) for x = k / 16, k = -128..127 (the "unified table" of Arm's
documentation: the input taken as Q3.12, i.e. x in [-8, 8)), entry k at index k & 0xFF, and
interpolates linearly between neighbouring entries. int_width is the input's integer bits (its frac
bits are 15 - int_width); the top 8 bits of the value above the shift 11 - int_width are the entry,
the bits below it the interpolation weight. The output is Q0.15 (frac 15) for both functions.

The tables are computed here from that definition (``table``): round(2^15 * f(k / 16)) saturated to
q15. cmsis/Source/arm_nn_activations_direct_q15.c holds these values (``c_tables`` prints them;
tests/test_activations.py holds the C table to this one through the compiled function).

``arm_softmax_q15(vec_in, dim_vec, p_out)`` is the documented base-2 softmax on the integer values,
y_i = 2^(x_i) / sum_j 2^(x_j), in Q0.15; docs/design.md rule 11 states the exact integers.
"""

from __future__ import annotations

import math

import numpy as np

TABLE_SIZE = 256
TABLE_STEP = 16  # entry k is f(k / 16)
INT_WIDTH_MAX = 3  # the table spans [-8, 8): an input of more integer bits indexes past it
OUT_FRAC = 15  # Q0.15 out of every function here
SOFTMAX_RANGE = 16  # arm_softmax_q15 drops inputs 16 or more below the maximum (they are 0 in q15)
SOFTMAX_DIM_MAX = 32767  # its sum of up to 2^16 per value is a q31: at most 32767 values

_FUNCTIONS = {"sigmoid": lambda x: 1.0 / (1.0 + math.exp(-x)), "tanh": math.tanh}


def table(name: str) -> np.ndarray:
    """The 256 int16 entries of the sigmoid or tanh table: index k & 0xFF holds round(2^15 f(k/16)), saturated."""
    f = _FUNCTIONS[name]
    out = np.empty(TABLE_SIZE, np.int64)
    for i in range(TABLE_SIZE):
        k = i - TABLE_SIZE if i >= TABLE_SIZE // 2 else i
        out[i] = min(max(math.floor(f(k / TABLE_STEP) * 2.0**15 + 0.5), -(1 << 15)), (1 << 15) - 1)
    return out.astype(np.int16)


def int_width(in_frac: int) -> int:
    """The int_width argument for an input of in_frac frac bits (q15: 15 - frac)."""
    return 15 - int(in_frac)


def c_tables() -> str:
    """The C text of the two tables (as cmsis/Source/arm_nn_activations_direct_q15.c holds them)."""
    parts = []
    for name in ("sigmoid", "tanh"):
        values = [f"{int(v):6d}" for v in table(name)]
        rows = [", ".join(values[i : i + 8]) for i in range(0, TABLE_SIZE, 8)]
        body = ",\n    ".join(rows)
        parts.append(f"static const q15_t qv_{name}_table_q15[{TABLE_SIZE}] = {{\n    {body}\n}};\n")
    return "\n".join(parts)


if __name__ == "__main__":
    print(c_tables(), end="")
