"""Shared builders for tests: single-op and small plans with random integer weights.

(Hypothesis strategies built on these live here too.)
"""

from __future__ import annotations

import numpy as np

from qverify.layout import conv_to_cmsis, dense_to_cmsis
from qverify.plan import OpPlan, QuantPlan


def out_hw(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def op_plan(kind, in_shape, *, cout=None, kernel=(1, 1), stride=(1, 1), pad=(0, 0), weights=None, bias=None,
            bias_lshift=0, out_rshift=0, name=None) -> OpPlan:
    """An OpPlan with explicit geometry; weights in Keras layout (converted to CMSIS here)."""
    h, w, c = in_shape
    if kind == "conv":
        out = (out_hw(h, kernel[0], stride[0], pad[0]), out_hw(w, kernel[1], stride[1], pad[1]), cout)
        flat = conv_to_cmsis(np.asarray(weights, np.int16))
    elif kind == "dense":
        out, flat = (1, 1, cout), dense_to_cmsis(np.asarray(weights, np.int16))
    elif kind in ("maxpool", "avgpool"):
        out = (out_hw(h, kernel[0], stride[0], 0), out_hw(w, kernel[1], stride[1], 0), c)
    elif kind == "gap":
        out = (1, 1, c)
    elif kind == "flatten":
        out = (1, 1, h * w * c)
    else:
        out = in_shape
    weighted = kind in ("conv", "dense")
    return OpPlan(name or kind, kind, tuple(in_shape), tuple(out), tuple(kernel), tuple(stride), tuple(pad),
                  in_frac=15, out_frac=15, range=(0.0, 0.0),
                  w_frac=15 if weighted else None, b_frac=15 if weighted else None,
                  bias_lshift=bias_lshift if weighted else None, out_rshift=out_rshift if weighted else None,
                  weights=flat if weighted else None,
                  bias=np.asarray(bias, np.int16) if weighted else None)


def plan_of(ops: list[OpPlan], rounding: str = "truncate") -> QuantPlan:
    """A QuantPlan around hand-made ops (input format Q0.15)."""
    return QuantPlan(16, rounding, "notebook", ops[0].in_shape, ops[0].in_shape, 15, (-1.0, 1.0), ops, None,
                     {"model": "test"})


def random_q15(rng: np.random.Generator, shape, scale: int = 32768) -> np.ndarray:
    """Uniform integers in [-scale, scale) clipped to int16."""
    return np.clip(rng.integers(-scale, scale, size=shape), -32768, 32767).astype(np.int16)
