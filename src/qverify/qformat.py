"""Power-of-two fixed-point formats and saturating quantization (docs/design.md rules 1-2)."""

from __future__ import annotations

import math

import numpy as np

from qverify.choices import FormatRule, values

RULES = values(FormatRule)


def qlimits(bits: int) -> tuple[int, int]:
    """(QMIN, QMAX) of a signed `bits`-bit integer."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def frac_bits(lo: float, hi: float, bits: int = 16, rule: str = "notebook") -> int:
    """Fractional bits for values in [lo, hi].

    Args:
        lo, hi: the range (lo ≤ hi).
        bits: storage width (16 for q15).
        rule: 'notebook': int_bits = max(0, ceil(log2 r)), r = max(|lo|, |hi|)
            (a value of exactly 2^k saturates by one LSB and is counted).
            'tight': the largest frac for which neither end saturates,
            int_bits may go negative (small tensors keep their precision).

    Returns:
        frac, with frac = bits - 1 - int_bits.
    """
    r = max(abs(float(lo)), abs(float(hi)))
    if rule == FormatRule.NOTEBOOK:
        return bits - 1 - max(0, ceil_log2(r))
    if rule == FormatRule.TIGHT:
        qmin, qmax = qlimits(bits)
        if r == 0:
            return bits - 1

        def fits(f: int) -> bool:
            return np.rint(hi * 2.0**f) <= qmax and np.rint(lo * 2.0**f) >= qmin

        frac = bits - 1 - ceil_log2(r)
        while not fits(frac):
            frac -= 1
        while fits(frac + 1):  # QMIN = -2^(bits-1) can hold one more bit for ranges near -2^k
            frac += 1
        return frac
    raise ValueError(f"unknown format rule '{rule}'; expected one of {', '.join(RULES)}")


def ceil_log2(r: float) -> int:
    """ceil(log2 r) exactly for r > 0 (math.log2 rounds values just above 2^k down to k); 0 for r == 0."""
    if r == 0:
        return 0
    mantissa, exponent = math.frexp(r)  # r = mantissa * 2^exponent, 0.5 <= mantissa < 1
    return exponent - 1 if mantissa == 0.5 else exponent


def quantize(x, frac: int, bits: int = 16) -> tuple[np.ndarray, int]:
    """Round half to even at 2^-frac and saturate.

    Returns:
        (integers as int16 for bits ≤ 16 else int32, number of saturated values).
    """
    qmin, qmax = qlimits(bits)
    scaled = np.rint(np.asarray(x, dtype=np.float64) * 2.0**frac)
    saturated = int(np.count_nonzero((scaled > qmax) | (scaled < qmin)))
    dtype = np.int16 if bits <= 16 else np.int32
    return np.clip(scaled, qmin, qmax).astype(dtype), saturated


def dequantize(q, frac: int) -> np.ndarray:
    """Real values of integers stored with `frac` fractional bits."""
    return np.asarray(q, dtype=np.float64) * 2.0**-frac


def qm_n(frac: int, bits: int = 16) -> str:
    """The notebook's Qm.n label: m integer bits, n fractional bits."""
    return f"Q{bits - 1 - frac}.{frac}"
