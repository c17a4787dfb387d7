"""A plain numpy int64 reference of the numeric contract (docs/design.md rules 4-8), written for clarity, not speed.

The tests hold every engine to this: it shares no code with the engines (nor with qverify.opkinds: a conv's pad
after the input and ReLU6's bound are worked out here from the rules, not taken from the code under test).
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


def pad_after(n: int, k: int, s: int, p: int, out: int) -> int:
    """Zeros after the input (bottom, right) that docs/design.md rule 4 pads on an axis of n values, kernel k,
    stride s, p zeros before and `out` outputs: p (symmetric), or p + 1 where `out` is TensorFlow's 'same' size
    for an odd total (its split: total // 2 before, the extra after).

    Worked out here from the sizes rather than with qverify.opkinds.conv_pads, so the reference does not trust
    the code under test: the last of `out` windows ends at (out - 1) * s + k, which is n + p + the pad after it
    reaches. A symmetric window that leaves the last rows unreached needs less than p there; its output is the
    same with p, so p is returned. Anything past p + 1 is no padding the rule (or a CMSIS kernel) has."""
    reached = (out - 1) * s + k - n - p
    assert reached <= p + 1, f"{out} outputs of n {n}, k {k}, s {s}, pad {p} need {reached} zeros after (rule 4)"
    return p + 1 if reached == p + 1 else p


def conv(x, w, bias, bias_lshift, out_rshift, stride=(1, 1), pad=(0, 0), rounding="truncate", out_hw=None):
    """x (N, H, W, Cin) ints; w (kh, kw, Cin, Cout) Keras layout; returns (out, sats, overflows).

    pad is the zeros before each axis (top, left); after it (bottom, right) the same, or one more where out_hw
    (the op's output (H, W), default the symmetric window) is TensorFlow's 'same' size (pad_after, rule 4)."""
    x = np.asarray(x, np.int64)
    w = np.asarray(w, np.int64)
    kh, kw, _, cout = w.shape
    (sh, sw), (ph, pw) = stride, pad
    _, h, wd, _ = x.shape
    if out_hw is None:
        out_hw = ((h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1)
    oh, ow = out_hw
    xp = np.pad(x, ((0, 0), (ph, pad_after(h, kh, sh, ph, oh)), (pw, pad_after(wd, kw, sw, pw, ow)), (0, 0)))
    acc = np.zeros((len(x), oh, ow, cout), np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :]
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


def relu6_bound(frac: int) -> int:
    """ReLU6's upper bound at `frac` bits (docs/design.md rule 5.1): 6.0 in that format rounded down,
    floor(6 * 2^frac), at most QMAX (f >= 13 would reach 49152 and more). Exact integers: 6 * 2^f for f >= 0,
    and for f < 0 the floor division 6 // 2^-f."""
    bound = 6 * 2**frac if frac >= 0 else 6 // 2**-frac
    return min(bound, QMAX)


def relu6(x, frac: int):
    """min(max(v, 0), relu6_bound(frac)) on the int16 values."""
    return np.clip(np.asarray(x, np.int64), 0, relu6_bound(frac)).astype(np.int16)


def _windows(x, k, s):
    x = np.asarray(x, np.int64)
    (kh, kw), (sh, sw) = k, s
    oh = (x.shape[1] - kh) // sh + 1
    ow = (x.shape[2] - kw) // sw + 1
    return np.stack(
        [x[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :] for i in range(kh) for j in range(kw)]
    )


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
        return conv(x, w, op.bias, op.bias_lshift, op.out_rshift, op.stride, op.pad, rounding, op.out_shape[:2])
    if op.kind == "dense":
        w = np.asarray(op.weights).reshape(op.out_shape[2], op.in_shape[2]).T
        out, s, o = dense(x, w, op.bias, op.bias_lshift, op.out_rshift, rounding)
        return out.reshape(len(x), 1, 1, -1), s, o
    if op.kind == "relu":
        return relu(x), 0, 0
    if op.kind == "relu6":  # its format is its input's (in_frac = out_frac)
        return relu6(x, op.out_frac), 0, 0
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
