"""The numpy statistics qverify.metrics computed before its C pass (csrc/qv_stats.c): the tests' reference.

summarize, float_range and equal_samples as they were (blocks of float32 work arrays, np.rint, a
bincount per block, ref == got per sample), kept here verbatim so that the C is held to what numpy
computes. The three sums are float32 dot products per block here; the C sums exactly formed float64
products in float64, so the tests hold those to an exact sum instead (exact_sums).
"""

from __future__ import annotations

import math

import numpy as np

from qverify.metrics import ERR_BINS, ChunkSummary

BLOCK = 1 << 16  # values per pass: the block's temporaries stay in the L2 cache, memory stays flat


def summarize(f: np.ndarray, q: np.ndarray, frac: int, qmin: int, qmax: int) -> ChunkSummary:
    """Sums for SQNR/RMSE/cosine, ranges, would-saturate count and LSB error histogram of one chunk.

    One float32 difference per value, in LSB: d = f·2^frac - q (= -error·2^frac, bit for bit the
    float32 error q·2^-frac - f scaled, since the scale is a power of two). Σf², Σd² and Σd·f (float32
    dot products per block, added in float64) give every sum: Σe² = s²Σd², Σ(q·s)·f = Σf² - sΣd·f,
    Σ(q·s)² = Σf² - 2sΣd·f + s²Σd² (s = 2^-frac). Saturating float values are counted only in a block
    whose range reaches a limit, and the histogram is one bincount of rint(d) per block (clipped only
    when a block's errors reach the outer bins).
    """
    f = np.asarray(f, dtype=np.float32).ravel()
    q = np.asarray(q).ravel()
    up = np.float32(2.0**frac)
    hi_sat, lo_sat = np.float32((qmax + 0.5) * 2.0**-frac), np.float32((qmin - 0.5) * 2.0**-frac)
    ff = dd = df = 0.0
    d_lo, d_hi, f_lo, f_hi = math.inf, -math.inf, math.inf, -math.inf
    sat = 0
    bins = 2 * ERR_BINS + 3
    hist = np.zeros(bins, np.int64)
    work = np.empty(min(BLOCK, f.size), np.float32)
    for start in range(0, f.size, BLOCK):
        fb = f[start : start + BLOCK]
        d = work[: len(fb)]
        np.multiply(fb, up, out=d)
        np.subtract(d, q[start : start + BLOCK], out=d)
        ff += float(np.dot(fb, fb))
        dd += float(np.dot(d, d))
        df += float(np.dot(d, fb))
        lo, hi, flo, fhi = float(d.min()), float(d.max()), float(fb.min()), float(fb.max())
        d_lo, d_hi, f_lo, f_hi = min(d_lo, lo), max(d_hi, hi), min(f_lo, flo), max(f_hi, fhi)
        # round half to even at qmax + 0.5 gives qmax + 1 (saturates), at qmin - 0.5 gives qmin (does not)
        if fhi >= hi_sat or flo < lo_sat:
            sat += int(np.count_nonzero(fb >= hi_sat)) + int(np.count_nonzero(fb < lo_sat))
        np.rint(d, out=d)
        if lo < -ERR_BINS - 0.5 or hi > ERR_BINS + 0.5:
            np.clip(d, -ERR_BINS - 1, ERR_BINS + 1, out=d)
        d += ERR_BINS + 1
        # bin of error e = -d is ERR_BINS + 1 - rint(d): the reversed bincount of rint(d) + ERR_BINS + 1
        hist += np.bincount(d.astype(np.intp), minlength=bins)[::-1]
    s = 2.0**-frac
    return ChunkSummary(
        int(f.size),
        ff,
        s * s * dd,
        ff - s * df,
        ff - 2 * s * df + s * s * dd,
        s * max(d_hi, -d_lo),
        f_lo,
        f_hi,
        int(np.min(q)),
        int(np.max(q)),
        sat,
        hist,
    )


def float_range(f: np.ndarray, frac: int, qmin: int, qmax: int) -> tuple[float, float, int]:
    """(min, max, values that saturate when quantized at frac) of float values f, as summarize counts them."""
    f = np.asarray(f, dtype=np.float32).ravel()
    if f.size == 0:
        return math.inf, -math.inf, 0
    hi_sat, lo_sat = np.float32((qmax + 0.5) * 2.0**-frac), np.float32((qmin - 0.5) * 2.0**-frac)
    sat = int(np.count_nonzero(f >= hi_sat)) + int(np.count_nonzero(f < lo_sat))
    return float(f.min()), float(f.max()), sat


def equal_samples(ref: np.ndarray, got: np.ndarray) -> np.ndarray:
    """PairStats.update's per-sample test as it was: every value of the sample equal."""
    equal = ref == got
    return equal.reshape(len(equal), -1).all(axis=1)


def exact_sums(f: np.ndarray, q: np.ndarray, frac: int) -> tuple[float, float, float, float]:
    """(Σf², Σd², Σd·f, Σ|d·f|) of the float32 d = f·2^frac - q, each product exact in float64 and summed
    exactly (math.fsum): what the C's float64 sums approximate to ~1e-16 per addition."""
    f = np.asarray(f, dtype=np.float32).ravel()
    d = (f * np.float32(2.0**frac) - np.asarray(q).ravel()).astype(np.float32)
    f64, d64 = f.astype(np.float64), d.astype(np.float64)
    return (
        math.fsum((f64 * f64).tolist()),
        math.fsum((d64 * d64).tolist()),
        math.fsum((d64 * f64).tolist()),
        math.fsum(np.abs(d64 * f64).tolist()),
    )
