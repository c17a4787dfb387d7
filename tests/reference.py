"""A plain numpy int64 reference of the numeric contract (docs/design.md rules 4-8), written for clarity, not speed.

The tests hold every engine to this: it shares no code with the engines.
"""

from __future__ import annotations

import numpy as np

QMIN, QMAX = -32768, 32767


def wrap32(v: np.ndarray) -> np.ndarray:
    """Two's-complement int32 wrap of exact int64 values."""
    return ((v.astype(np.int64) + 2**31) % 2**32) - 2**31


def nn_round(out_rshift: int, rounding: str) -> int:
    return (1 << out_rshift) >> 1 if rounding == "round" else 0


def finish(acc: np.ndarray, out_rshift: int):
    """acc exact int64 → (int16 outputs, saturations, overflows)."""
    overflows = int(np.count_nonzero((acc < -(2**31)) | (acc > 2**31 - 1)))
    shifted = wrap32(acc) >> out_rshift
    sats = int(np.count_nonzero((shifted < QMIN) | (shifted > QMAX)))
    return np.clip(shifted, QMIN, QMAX).astype(np.int16), sats, overflows


def conv(x, w, bias, bias_lshift, out_rshift, stride=(1, 1), pad=(0, 0), rounding="truncate"):
    """x (N, H, W, Cin) ints; w (kh, kw, Cin, Cout) Keras layout; returns (out, sats, overflows)."""
    x = np.asarray(x, np.int64)
    w = np.asarray(w, np.int64)
    kh, kw, _, cout = w.shape
    (sh, sw), (ph, pw) = stride, pad
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    oh = (xp.shape[1] - kh) // sh + 1
    ow = (xp.shape[2] - kw) // sw + 1
    acc = np.zeros((len(x), oh, ow, cout), np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :]
            acc += np.einsum("nhwc,co->nhwo", patch, w[i, j])
    acc += np.asarray(bias, np.int64) * 2**bias_lshift + nn_round(out_rshift, rounding)
    return finish(acc, out_rshift)


def dense(x, w, bias, bias_lshift, out_rshift, rounding="truncate"):
    """x (N, F) ints; w (F, out) Keras layout."""
    acc = np.asarray(x, np.int64).reshape(len(x), -1) @ np.asarray(w, np.int64)
    acc += np.asarray(bias, np.int64) * 2**bias_lshift + nn_round(out_rshift, rounding)
    return finish(acc, out_rshift)


def relu(x):
    return np.maximum(np.asarray(x), 0).astype(np.int16)


def _windows(x, k, s):
    x = np.asarray(x, np.int64)
    (kh, kw), (sh, sw) = k, s
    oh = (x.shape[1] - kh) // sh + 1
    ow = (x.shape[2] - kw) // sw + 1
    return np.stack([x[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :]
                     for i in range(kh) for j in range(kw)])


def maxpool(x, k, s):
    return _windows(x, k, s).max(axis=0).astype(np.int16)


def c_div(a, b):
    """C integer division: truncation toward zero."""
    q = np.abs(a) // b
    return np.where(a < 0, -q, q)


def avgpool(x, k, s):
    return c_div(_windows(x, k, s).sum(axis=0), k[0] * k[1]).astype(np.int16)


def gap(x):
    x = np.asarray(x, np.int64)
    return c_div(x.sum(axis=(1, 2), keepdims=True), x.shape[1] * x.shape[2]).astype(np.int16)


def run_op(op, x, rounding):
    """One plan op (qverify.plan.OpPlan) on x (N, H, W, C) → (out (N, H, W, C), sats, overflows)."""
    if op.kind == "conv":
        kh, kw = op.kernel
        w = np.asarray(op.weights).reshape(op.out_shape[2], kh, kw, op.in_shape[2]).transpose(1, 2, 3, 0)
        return conv(x, w, op.bias, op.bias_lshift, op.out_rshift, op.stride, op.pad, rounding)
    if op.kind == "dense":
        w = np.asarray(op.weights).reshape(op.out_shape[2], op.in_shape[2]).T
        out, s, o = dense(x, w, op.bias, op.bias_lshift, op.out_rshift, rounding)
        return out.reshape(len(x), 1, 1, -1), s, o
    if op.kind == "relu":
        return relu(x), 0, 0
    if op.kind == "maxpool":
        return maxpool(x, op.kernel, op.stride), 0, 0
    if op.kind == "avgpool":
        return avgpool(x, op.kernel, op.stride), 0, 0
    if op.kind == "gap":
        return gap(x), 0, 0
    if op.kind == "flatten":
        return np.asarray(x).reshape(len(x), 1, 1, -1), 0, 0
    raise ValueError(op.kind)


def run_plan(plan, x_int, rounding=None):
    """Propagated run of a whole plan: {op name: (out, sats, overflows)}."""
    rounding = rounding or plan.rounding
    results, h = {}, x_int
    for op in plan.ops:
        results[op.name] = run_op(op, h, rounding)
        h = results[op.name][0]
    return results
