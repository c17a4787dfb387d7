"""Streaming per-op statistics: fed one chunk of samples at a time, never the whole data set's outputs.

QuantStats accumulates how one quantized engine's op output compares with the
float model's (SQNR, RMSE, cosine similarity, error histogram in LSB, ranges,
saturation and accumulator-overflow counts); PairStats how two integer
engines compare (exact matches, LSB differences, first mismatches).
Every field is a running sum, count, extreme or histogram, so memory does
not grow with the number of samples. A chunk is summarised in one C pass
(csrc/qv_stats.c through qverify.stats_lib), and PairStats finds the samples
that differ with one memcmp per sample.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np

from qverify import stats_lib
from qverify.errors import DataError

# Error-histogram bins in LSB of the op's format: -ERR_BINS .. +ERR_BINS, the two outer bins
# hold everything beyond.
ERR_BINS = 32
FIRST_MISMATCHES = 10


INT32_BITS = 31  # magnitude bits of the int32 accumulator: it holds -2^31 .. 2^31 - 1


def acc_headroom_bits(peak: float) -> float:
    """Bits left in the int32 accumulator: 31 - log2(peak + 1), where peak is the largest max(acc, -1 - acc) over
    the sums acc (so peak + 1 = max(largest acc + 1, -smallest acc)). 0 when a sum reaches INT32_MAX or INT32_MIN
    exactly, < 0 exactly when a sum left int32 (it wrapped); 31 when every sum is 0 or -1."""
    return INT32_BITS - math.log2(peak + 1)


def _db(signal: float, noise: float) -> float:
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


@dataclass
class QuantStats:
    """One op of one quantized engine against the float model.

    Attributes:
        frac: the op's output format; qmin, qmax: the integer limits.
        count: values seen.
        sum_f2, sum_e2, sum_qf, sum_q2: running sums of float², error², quantized·float and
            quantized² (quantized values dequantized, error = quantized - float), in real units.
        max_abs_err: largest |quantized - float| in real units.
        f_min, f_max: float range seen; q_min, q_max: integer range seen.
        float_saturating: float values that do not fit the format (they saturate when quantized).
            f_min, f_max and float_saturating are of the float values the op received (update's `received`:
            the float model on the input clipped to the input format, as the integer engines get it).
        saturations, overflows: the engine's own counts (None where it cannot observe them).
        err_hist: histogram of (quantized - float) in LSB, rounded, bins -ERR_BINS-1 .. ERR_BINS+1
            (the outer two collect everything beyond ±ERR_BINS).
    """

    frac: int
    qmin: int
    qmax: int
    count: int = 0
    sum_f2: float = 0.0
    sum_e2: float = 0.0
    sum_qf: float = 0.0
    sum_q2: float = 0.0
    max_abs_err: float = 0.0
    f_min: float = math.inf
    f_max: float = -math.inf
    q_min: int = 0
    q_max: int = 0
    float_saturating: int = 0
    saturations: int | None = None
    overflows: int | None = None
    err_hist: np.ndarray = field(default_factory=lambda: np.zeros(2 * ERR_BINS + 3, np.int64))

    def update(
        self,
        f: np.ndarray,
        q: np.ndarray,
        saturations: int | None = None,
        overflows: int | None = None,
        received: np.ndarray | None = None,
    ) -> ChunkSummary:
        """Add one chunk: float outputs f and integer outputs q of the same shape; returns its summary
        (another engine whose integers are identical can add the same summary instead of recomputing).

        received: the float outputs on the input the op's engines received (the network input clipped to the
        input format) where that differs from f's; the range, headroom and would-saturate count are of these
        (f is still the reference for SQNR, RMSE, cosine and the error histogram)."""
        summary = summarize(f, q, self.frac, self.qmin, self.qmax)
        if received is not None:
            lo, hi, sat = float_range(received, self.frac, self.qmin, self.qmax)
            summary = replace(summary, f_min=lo, f_max=hi, float_saturating=sat)
        self.add(summary, saturations, overflows)
        return summary

    def add(self, s: ChunkSummary, saturations: int | None = None, overflows: int | None = None) -> None:
        """Add a chunk already summarised by summarize()."""
        if self.count == 0:
            self.q_min, self.q_max = s.q_min, s.q_max
        elif s.count:  # an empty chunk has no integer range
            self.q_min, self.q_max = min(self.q_min, s.q_min), max(self.q_max, s.q_max)
        self.count += s.count
        self.sum_f2 += s.sum_f2
        self.sum_e2 += s.sum_e2
        self.sum_qf += s.sum_qf
        self.sum_q2 += s.sum_q2
        self.max_abs_err = max(self.max_abs_err, s.max_abs_err)
        self.f_min, self.f_max = min(self.f_min, s.f_min), max(self.f_max, s.f_max)
        self.float_saturating += s.float_saturating
        self.err_hist += s.err_hist
        if saturations is not None:
            self.saturations = (self.saturations or 0) + int(saturations)
        if overflows is not None:
            self.overflows = (self.overflows or 0) + int(overflows)

    @property
    def sqnr_db(self) -> float:
        """10·log10(Σ float² / Σ error²); inf when the quantized output equals the float one."""
        return _db(self.sum_f2, self.sum_e2)

    @property
    def rmse(self) -> float:
        """Root mean square error in real units."""
        return math.sqrt(self.sum_e2 / self.count) if self.count else 0.0

    @property
    def rmse_lsb(self) -> float:
        """Root mean square error in LSB of the op's format."""
        return self.rmse * 2.0**self.frac

    @property
    def cosine(self) -> float:
        """Cosine similarity of the quantized and float outputs over all values seen."""
        denom = math.sqrt(self.sum_q2 * self.sum_f2)
        if denom == 0.0:
            return 1.0 if self.sum_q2 == self.sum_f2 else 0.0
        return self.sum_qf / denom

    @property
    def limit(self) -> float:
        """Largest magnitude the format holds (QMAX·2^-frac)."""
        return self.qmax * 2.0**-self.frac

    @property
    def float_peak(self) -> float:
        return max(abs(self.f_min), abs(self.f_max)) if self.count else 0.0

    @property
    def headroom_bits(self) -> float:
        """log2(format limit / largest |float value the op received|): < 0 means values saturate, ~0 no margin."""
        peak = self.float_peak
        return math.inf if peak == 0.0 else math.log2(self.limit / peak)

    @property
    def int_headroom_bits(self) -> float:
        """log2(QMAX / largest |integer output|) of the engine's own output."""
        peak = max(abs(self.q_min), abs(self.q_max))
        return math.inf if peak == 0 else math.log2(self.qmax / peak)

    def hist_dict(self) -> dict[str, int]:
        """The error histogram keyed by LSB ('<=-33' and '>=33' for the outer bins)."""
        out = {}
        for i, n in enumerate(self.err_hist.tolist()):
            d = i - ERR_BINS - 1
            key = f"<={d}" if d == -ERR_BINS - 1 else (f">={d}" if d == ERR_BINS + 1 else str(d))
            out[key] = int(n)
        return out

    def to_dict(self) -> dict:
        return {
            "frac": self.frac,
            "count": self.count,
            "sqnr_db": _finite(self.sqnr_db),
            "rmse": self.rmse,
            "rmse_lsb": self.rmse_lsb,
            "cosine": self.cosine,
            "max_abs_err": self.max_abs_err,
            "float_min": _finite(self.f_min),
            "float_max": _finite(self.f_max),
            "int_min": self.q_min,
            "int_max": self.q_max,
            "format_limit": self.limit,
            "headroom_bits": _finite(self.headroom_bits),
            "int_headroom_bits": _finite(self.int_headroom_bits),
            "float_saturating": self.float_saturating,
            "saturations": self.saturations,
            "overflows": self.overflows,
            "error_histogram_lsb": self.hist_dict(),
        }


@dataclass
class ChunkSummary:
    """Partial sums and extremes of one chunk of one op (see QuantStats)."""

    count: int
    sum_f2: float
    sum_e2: float
    sum_qf: float
    sum_q2: float
    max_abs_err: float
    f_min: float
    f_max: float
    q_min: int
    q_max: int
    float_saturating: int
    err_hist: np.ndarray


def summarize(f: np.ndarray, q: np.ndarray, frac: int, qmin: int, qmax: int) -> ChunkSummary:
    """Sums for SQNR/RMSE/cosine, ranges, would-saturate count and LSB error histogram of one chunk.

    One float32 difference per value, in LSB: d = f·2^frac - q (= -error·2^frac, bit for bit the
    float32 error q·2^-frac - f scaled, since the scale is a power of two). Σf², Σd² and Σd·f (each
    product exact in float64, summed in float64 in a fixed order) give every sum: Σe² = s²Σd²,
    Σ(q·s)·f = Σf² - sΣd·f, Σ(q·s)² = Σf² - 2sΣd·f + s²Σd² (s = 2^-frac). A value saturates when
    f >= float32((qmax + 0.5)·s) or f < float32((qmin - 0.5)·s); the histogram counts rint(d), half
    to even, clipped to ±(ERR_BINS + 1), in the bin of the error -d. One C pass (qv_summarize).

    f: float outputs (float32, or converted to it); q: the integer outputs, int16 (int8 is widened),
    as many values. An empty chunk has count 0, no ranges (f_min inf, f_max -inf, q_min = q_max = 0) and
    adds nothing. ±inf among f go where IEEE arithmetic sends them (the outer bins, inf sums, NaN cosine
    sums); a NaN raises DataError: no error statistics exist for it.
    """
    r = stats_lib.summary(f, q, frac, qmin, qmax)
    if r.count == 0:
        return ChunkSummary(0, 0.0, 0.0, 0.0, 0.0, 0.0, math.inf, -math.inf, 0, 0, 0, r.hist)
    if math.isnan(r.d_abs_max):  # d is NaN exactly where f is
        raise DataError("the float outputs contain NaN: their error against the integers is undefined")
    s = 2.0**-frac
    ff, dd, df = r.sum_f2, r.sum_dd, r.sum_df
    return ChunkSummary(
        r.count,
        ff,
        s * s * dd,
        ff - s * df,
        ff - 2 * s * df + s * s * dd,
        s * r.d_abs_max,
        r.f_min,
        r.f_max,
        r.q_min,
        r.q_max,
        r.saturating,
        r.hist,
    )


def float_range(f: np.ndarray, frac: int, qmin: int, qmax: int) -> tuple[float, float, int]:
    """(min, max, values that saturate when quantized at frac) of float values f, as summarize counts them:
    (inf, -inf, 0) for none; min and max are NaN when some value is."""
    lo, hi, sat = stats_lib.float_range(f, frac, qmin, qmax)
    if math.isnan(lo) or math.isnan(hi):
        return math.nan, math.nan, sat
    return lo, hi, sat


def _finite(v: float):
    """JSON has no inf: +inf/-inf become the strings 'inf'/'-inf'."""
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


@dataclass
class Mismatch:
    """One differing value: data-set sample index, (h, w, c), reference value, value under test."""

    sample: int
    h: int
    w: int
    c: int
    expected: int
    got: int


@dataclass
class PairStats:
    """One op, two integer engines (reference vs tested), accumulated over chunks."""

    total: int = 0
    mismatches: int = 0
    max_diff: int = 0
    first: list[Mismatch] = field(default_factory=list)
    histogram: Counter = field(default_factory=Counter)

    def update(self, ref: np.ndarray, got: np.ndarray, sample_offset: int) -> np.ndarray:
        """Add one chunk (N, H, W, C) of integers; returns a bool per sample: all of its values equal."""
        per_sample = stats_lib.equal_samples(ref, got)
        self.total += ref.size
        if not per_sample.all():  # only then is each value compared
            diff = got.astype(np.int32) - ref.astype(np.int32)
            bad = np.argwhere(diff != 0)
            self.mismatches += len(bad)
            self.max_diff = max(self.max_diff, int(np.abs(diff).max()))
            self.histogram.update(diff[diff != 0].tolist())
            for n, h, w, c in bad[: max(0, FIRST_MISMATCHES - len(self.first))]:
                self.first.append(
                    Mismatch(sample_offset + int(n), int(h), int(w), int(c), int(ref[n, h, w, c]), int(got[n, h, w, c]))
                )
        return per_sample

    @property
    def exact_pct(self) -> float:
        return 100.0 * (self.total - self.mismatches) / self.total if self.total else 100.0

    def to_dict(self) -> dict:
        return {
            "total": self.total,
            "mismatches": self.mismatches,
            "exact_pct": self.exact_pct,
            "max_diff": self.max_diff,
            "first_mismatches": [vars(m) for m in self.first],
            "histogram": {str(k): v for k, v in sorted(self.histogram.items())},
        }
