/*
 * qverify's per-op statistics in one pass over a chunk (qverify._stats, used
 * by qverify.metrics; built by qverify.build).  Host code only, C99 (also
 * MSVC's C11 mode); nothing here runs on a device.
 *
 * qv_summarize: for float outputs f and integer outputs q of one op (n values,
 * format frac, integer limits qmin..qmax), with d = f*2^frac - q computed in
 * float32 (f * 2^frac, then - q, each rounded to float32):
 *   count = n;
 *   sum_f2 = sum f*f, sum_dd = sum d*d, sum_df = sum d*f: each product exact
 *     in double, added in double lanes in a fixed order (the same result for
 *     the same values, wherever they are in memory);
 *   d_abs_max = max |d|; f_min, f_max; q_min, q_max (0, 0 when n == 0;
 *     f_min = +inf, f_max = -inf);
 *   saturating: values with f >= hi or f < lo, hi = float32((qmax + 0.5) *
 *     2^-frac), lo = float32((qmin - 0.5) * 2^-frac) (rounding half to even
 *     sends qmax + 0.5 LSB to qmax + 1, which saturates, qmin - 0.5 to qmin);
 *   hist[QV_ERR_BINS + 1 - rint(d)], d clipped to +-(QV_ERR_BINS + 1) and
 *     rint rounding half to even: the histogram of the error q - f*2^frac = -d
 *     in LSB, bins -QV_ERR_BINS-1 .. QV_ERR_BINS+1.
 * A NaN among f makes f_min or f_max and d_abs_max NaN (the other results are
 * then not meaningful; qverify.metrics refuses such a chunk); NaNs are not
 * counted as saturating.  +-inf follow IEEE arithmetic: d = +-inf, the outer
 * bins, sums inf, d_abs_max inf.
 *
 * qv_float_range: count, f_min, f_max and saturating of float values alone,
 * as qv_summarize has them.
 *
 * qv_equal_samples: out[s] = 1 when the bytes of sample s of a and b are equal
 * (memcmp), else 0; returns how many samples differ.
 *
 * qv_stats_simd(allow): with allow = 0 the portable loops run even where the
 * AVX2 + FMA build of the same loops could (x86-64, GCC or Clang, a CPU with
 * both); with 1 those run where they can.  Returns 1 when they run.  Both give
 * the same results.  Call it before any other thread uses the module.
 */
#ifndef QV_STATS_H
#define QV_STATS_H

#include <stddef.h>
#include <stdint.h>

#define QV_ERR_BINS 32
#define QV_HIST_BINS (2 * QV_ERR_BINS + 3)

typedef struct
{
    uint64_t count;
    uint64_t saturating;
    double sum_f2;
    double sum_dd;
    double sum_df;
    float d_abs_max;
    float f_min;
    float f_max;
    int32_t q_min;
    int32_t q_max;
    int64_t hist[QV_HIST_BINS];
} qv_summary_t;

typedef struct
{
    uint64_t count;
    uint64_t saturating;
    float f_min;
    float f_max;
} qv_range_t;

void qv_summarize(const float *f, const int16_t *q, size_t n, int frac, int32_t qmin, int32_t qmax,
                  qv_summary_t *out);
void qv_float_range(const float *f, size_t n, int frac, int32_t qmin, int32_t qmax, qv_range_t *out);
size_t qv_equal_samples(const void *a, const void *b, size_t samples, size_t bytes_per_sample, uint8_t *out);
int32_t qv_stats_simd(int32_t allow);
const char *qv_stats_digest(void);

#endif
