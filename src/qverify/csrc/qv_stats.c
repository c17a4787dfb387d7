/*
 * qverify's per-op statistics in one pass (see qv_stats.h for the contract).
 *
 * The input is read once, QV_STATS_BLOCK values at a time; each block goes
 * through three short loops over data in the L1 cache:
 *   1. d = f*2^frac - q in float32 (kept for the block), the extremes and the
 *      would-saturate count: a plain loop of element-wise operations and
 *      integer reductions, which compilers vectorise without any licence to
 *      reorder floating-point arithmetic (the extremes of floats are taken as
 *      integer keys, below);
 *   2. the three sums in double lanes, in a fixed order (qv_block_sums);
 *   3. the histogram of rint(d) (qv_block_hist): a block whose values span
 *      fewer than QV_COUNT_SPAN bins (errors pile up in a few) by cumulative
 *      counts, one vectorised compare per value and bin; any other by one
 *      increment per value, in QV_SUBHISTS sub-histograms in turn so that
 *      equal bins in a row do not wait on each other's store.
 * Every result is the IEEE one, rounded as numpy rounds it: no intrinsics, no
 * -ffast-math, and the integer results do not depend on the vector width.
 * With GCC and Clang the sums use their vector types (the same order as the
 * plain C that other compilers get), and on x86-64 the block loops are also
 * compiled for AVX2 and FMA (a target attribute on the same C), run when the
 * CPU has both: the same results, faster.  build.py lets the compiler fuse a
 * multiply and an add (-ffp-contract=fast): every product here is exact (two
 * float32 values in double; f * 2^frac in float unless it overflows, and then
 * both forms give inf), so a fused multiply-add rounds once where the separate
 * add rounded once too, to the same bits.
 *
 * Float extremes as int32 keys that order as the floats do: the bits, with
 * the 31 below the sign flipped when the sign is set (-0.0 sorts just below
 * +0.0, NaNs beyond the infinities, so a NaN shows as a NaN extreme; the
 * mapping is its own inverse).  Compilers vectorise integer min/max
 * reductions, not float ones (their NaN and signed-zero rules).
 *
 * Rounding half to even, as numpy's rint, two ways.  Counting: rint(d) <= k
 * exactly when d <= k + 0.5 for an even k (the tie rounds down to k) and
 * d < k + 0.5 for an odd one, so when d < qv_edge(k), k + 0.5 or the float
 * just above it (exact floats for |k| < 2^22; +-inf compare as they should,
 * a NaN is never below).  Binning: 1.5*2^23 + d for |d| < 2^22 lies in
 * [2^23, 2^24), where float32's spacing is 1, so the float addition rounds d
 * to an integer, half to even in the default rounding mode (1.5*2^23 is
 * even); the sum clipped to 1.5*2^23 +- (QV_ERR_BINS + 1) has the bits
 * QV_MAGIC_BITS + rint(d) clipped (a larger |d| only moves the sum further
 * out; a NaN fails both comparisons: the lowest).  This needs float
 * arithmetic done in float (FLT_EVAL_METHOD 0: SSE2, NEON, MSVC x64; checked
 * below with float_t) and no reassociation.
 */
#include <math.h>
#include <string.h>

#include "qv_stats.h"

#define QV_STATS_BLOCK 2048 /* values per block: its d (and bins) stay in the L1 cache */
#define QV_SUM_LANES 4 /* double lanes per group (one AVX2 vector) */
#define QV_SUM_GROUPS 3 /* groups: 12 independent sums of each kind */
#define QV_SUBHISTS 8
#define QV_COUNT_SPAN 8 /* a block spanning fewer bins is counted by cumulative counts (at most 7 passes) */
#define QV_MAGIC 12582912.0f /* 1.5 * 2^23 */
#define QV_MAGIC_BITS 0x4B400000u
#define QV_KEY_INF ((int32_t)0x7F800000)      /* key of +inf */
#define QV_KEY_NEG_INF ((int32_t)-2139095041) /* key of -inf: 0xFF800000 ^ 0x7FFFFFFF */
/* uint32 sub-histogram counts are moved to the int64 result before they could overflow */
#define QV_FLUSH_VALUES ((size_t)1 << 30)

/* float arithmetic must be evaluated in float (d in float32, the rounding above) */
typedef char qv_float_eval_is_float[(sizeof(float_t) == sizeof(float)) ? 1 : -1];

#if defined(__GNUC__) || defined(__clang__)
#define QV_INLINE static inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define QV_INLINE static __forceinline
#else
#define QV_INLINE static inline
#endif

/* GCC's and Clang's vector types for the sums' lanes, and on x86-64 an AVX2 + FMA build of the block loops;
   QV_STATS_PLAIN builds the portable C alone (what other compilers get) */
#if (defined(__GNUC__) || defined(__clang__)) && !defined(QV_STATS_PLAIN)
#define QV_VECTORS 1
typedef float qv_f4 __attribute__((vector_size(16)));
typedef double qv_d4 __attribute__((vector_size(32)));
#else
#define QV_VECTORS 0
#endif
#if QV_VECTORS && defined(__x86_64__)
#define QV_STATS_AVX2 1
#define QV_AVX2 __attribute__((target("avx2,fma")))
#else
#define QV_STATS_AVX2 0
#endif

#ifndef QV_STATS_DIGEST
#define QV_STATS_DIGEST "unknown"
#endif

const char *qv_stats_digest(void)
{
    return QV_STATS_DIGEST;
}

typedef struct
{
    float up;     /* 2^frac */
    float hi_sat; /* f >= hi_sat saturates */
    float lo_sat; /* f < lo_sat saturates */
} qv_params_t;

static qv_params_t qv_params(int frac, int32_t qmin, int32_t qmax)
{
    qv_params_t p;
    p.up = (float)ldexp(1.0, frac);
    p.hi_sat = (float)(((double)qmax + 0.5) * ldexp(1.0, -frac));
    p.lo_sat = (float)(((double)qmin - 0.5) * ldexp(1.0, -frac));
    return p;
}

QV_INLINE uint32_t qv_bits(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof(u));
    return u;
}

QV_INLINE int32_t qv_key(float v)
{
    uint32_t u = qv_bits(v);
    u ^= (0u - (u >> 31)) >> 1;
    return (int32_t)u;
}

static float qv_unkey(int32_t k)
{
    uint32_t u = (uint32_t)k;
    float v;
    u ^= (0u - (u >> 31)) >> 1;
    memcpy(&v, &u, sizeof(v));
    return v;
}

/* Extremes and counts carried from block to block (float extremes as keys, |d| as bits). */
typedef struct
{
    int32_t f_min, f_max, q_min, q_max;
    uint32_t d_abs;
    uint64_t saturating;
} qv_acc_t;

/* rint(v) clipped to +-(QV_ERR_BINS + 1) (see the top); a NaN gives -(QV_ERR_BINS + 1) */
QV_INLINE int32_t qv_rint_clipped(float v)
{
    float t = v + QV_MAGIC;
    t = (t > QV_MAGIC - (float)(QV_ERR_BINS + 1)) ? t : QV_MAGIC - (float)(QV_ERR_BINS + 1);
    t = (t < QV_MAGIC + (float)(QV_ERR_BINS + 1)) ? t : QV_MAGIC + (float)(QV_ERR_BINS + 1);
    return (int32_t)(qv_bits(t) - QV_MAGIC_BITS);
}

/* d < qv_edge(k) exactly when rint(d) <= k, rounding half to even (see the top) */
static float qv_edge(int32_t k)
{
    const float half = (float)k + 0.5f;
    return (k % 2 == 0) ? nextafterf(half, half + 1.0f) : half;
}

/*
 * The histogram of one block's d (n >= 1 values whose rint(d), clipped, lies in lo..hi): the error is -d,
 * so rint(d) = k counts in bin QV_ERR_BINS + 1 - k.  Few distinct values: by the cumulative counts of
 * rint(d) <= k, two k a pass, the values above the last k in hi.  Else one increment per value.  Any NaN
 * lands in some bin (lo and hi of a NaN extreme are -(QV_ERR_BINS + 1)): never outside the histogram.
 */
QV_INLINE void qv_block_hist(const float *d, size_t n, int32_t lo, int32_t hi,
                             uint32_t hist[QV_SUBHISTS][QV_HIST_BINS])
{
    size_t i;
    int32_t k;
    int j;
    if (hi - lo < QV_COUNT_SPAN)
    {
        uint32_t below = 0; /* values with rint(d) < k */
        /* (stopping once every value is counted also keeps compilers from vectorising this loop over bins
           instead of the one over values) */
        for (k = lo; k < hi && below < n; k += 2)
        {
            const int pair = k + 1 < hi;
            const float e0 = qv_edge(k), e1 = qv_edge(pair ? k + 1 : k);
            uint32_t upto0 = 0, upto1 = 0;
            for (i = 0; i < n; i++)
            {
                upto0 += (uint32_t)(d[i] < e0);
                upto1 += (uint32_t)(d[i] < e1);
            }
            hist[0][QV_ERR_BINS + 1 - k] += upto0 - below;
            below = upto0;
            if (pair)
            {
                hist[0][QV_ERR_BINS - k] += upto1 - upto0;
                below = upto1;
            }
        }
        hist[0][QV_ERR_BINS + 1 - hi] += (uint32_t)n - below;
    }
    else
    {
        int32_t bin[QV_STATS_BLOCK];
        for (i = 0; i < n; i++)
            bin[i] = QV_ERR_BINS + 1 - qv_rint_clipped(d[i]);
        for (i = 0; i + QV_SUBHISTS <= n; i += QV_SUBHISTS)
            for (j = 0; j < QV_SUBHISTS; j++)
                hist[j][bin[i + j]]++;
        for (; i < n; i++)
            hist[0][bin[i]]++;
    }
}

/*
 * Sums f*f, d*d and d*f of one block into sums[0..2], each product exact in double.  Lane j of group g
 * adds the values i with i mod (QV_SUM_GROUPS * QV_SUM_LANES) = g * QV_SUM_LANES + j, in order, the last
 * (n mod that) values go to lane 0 of group 0, and the lanes are added group by group: a fixed order, the
 * same with the vector types (GCC, Clang) as with the plain arrays (elsewhere, or QV_STATS_PLAIN).
 */
QV_INLINE void qv_block_sums(const float *f, const float *d, size_t n, double sums[3])
{
    const size_t step = QV_SUM_GROUPS * QV_SUM_LANES;
    double lane[3][QV_SUM_GROUPS][QV_SUM_LANES];
    size_t i = 0;
    int g, j;
#if QV_VECTORS
    qv_d4 ff[QV_SUM_GROUPS], dd[QV_SUM_GROUPS], df[QV_SUM_GROUPS];
    for (g = 0; g < QV_SUM_GROUPS; g++)
        ff[g] = dd[g] = df[g] = (qv_d4){0.0, 0.0, 0.0, 0.0};
    for (; i + step <= n; i += step)
    {
        for (g = 0; g < QV_SUM_GROUPS; g++)
        {
            qv_f4 xf, yf;
            memcpy(&xf, f + i + g * QV_SUM_LANES, sizeof(xf));
            memcpy(&yf, d + i + g * QV_SUM_LANES, sizeof(yf));
            {
                const qv_d4 x = {xf[0], xf[1], xf[2], xf[3]}, y = {yf[0], yf[1], yf[2], yf[3]};
                ff[g] += x * x;
                dd[g] += y * y;
                df[g] += y * x;
            }
        }
    }
    memcpy(lane[0], ff, sizeof(ff));
    memcpy(lane[1], dd, sizeof(dd));
    memcpy(lane[2], df, sizeof(df));
#else
    for (g = 0; g < QV_SUM_GROUPS; g++)
        for (j = 0; j < QV_SUM_LANES; j++)
            lane[0][g][j] = lane[1][g][j] = lane[2][g][j] = 0.0;
    for (; i + step <= n; i += step)
    {
        for (g = 0; g < QV_SUM_GROUPS; g++)
        {
            for (j = 0; j < QV_SUM_LANES; j++)
            {
                const double x = f[i + g * QV_SUM_LANES + j], y = d[i + g * QV_SUM_LANES + j];
                lane[0][g][j] += x * x;
                lane[1][g][j] += y * y;
                lane[2][g][j] += y * x;
            }
        }
    }
#endif
    for (; i < n; i++)
    {
        const double x = f[i], y = d[i];
        lane[0][0][0] += x * x;
        lane[1][0][0] += y * y;
        lane[2][0][0] += y * x;
    }
    for (g = 0; g < QV_SUM_GROUPS; g++)
    {
        for (j = 0; j < QV_SUM_LANES; j++)
        {
            sums[0] += lane[0][g][j];
            sums[1] += lane[1][g][j];
            sums[2] += lane[2][g][j];
        }
    }
}

/* One block (n <= QV_STATS_BLOCK values) into a, the sums and the sub-histograms. */
QV_INLINE void qv_block(const float *f, const int16_t *q, size_t n, const qv_params_t *p, qv_acc_t *a,
                        double sums[3], uint32_t hist[QV_SUBHISTS][QV_HIST_BINS])
{
    float d[QV_STATS_BLOCK];
    int32_t f_min = a->f_min, f_max = a->f_max, q_min = a->q_min, q_max = a->q_max;
    int32_t d_min = QV_KEY_INF, d_max = QV_KEY_NEG_INF;
    uint32_t sat = 0;
    const float up = p->up, hi_sat = p->hi_sat, lo_sat = p->lo_sat;
    float lo, hi;
    size_t i;

    if (n == 0)
        return;
    /* 1. d, the extremes and the count */
    for (i = 0; i < n; i++)
    {
        const float fv = f[i];
        const int32_t qv = q[i];
        const float scaled = fv * up;
        const float dv = scaled - (float)qv;
        const int32_t kd = qv_key(dv), kf = qv_key(fv);
        d[i] = dv;
        d_min = (kd < d_min) ? kd : d_min;
        d_max = (kd > d_max) ? kd : d_max;
        f_min = (kf < f_min) ? kf : f_min;
        f_max = (kf > f_max) ? kf : f_max;
        q_min = (qv < q_min) ? qv : q_min;
        q_max = (qv > q_max) ? qv : q_max;
        sat += (uint32_t)((fv >= hi_sat) | (fv < lo_sat));
    }
    a->f_min = f_min;
    a->f_max = f_max;
    a->q_min = q_min;
    a->q_max = q_max;
    a->saturating += sat;
    lo = qv_unkey(d_min);
    hi = qv_unkey(d_max);
    {
        /* the largest |d|: the larger of |lo| and |hi| compared as bits (a NaN's are larger than inf's) */
        const uint32_t abs_lo = qv_bits(lo) & 0x7FFFFFFFu, abs_hi = qv_bits(hi) & 0x7FFFFFFFu;
        const uint32_t m = (abs_lo > abs_hi) ? abs_lo : abs_hi;
        a->d_abs = (m > a->d_abs) ? m : a->d_abs;
    }

    /* 2. and 3. */
    qv_block_sums(f, d, n, sums);
    qv_block_hist(d, n, qv_rint_clipped(lo), qv_rint_clipped(hi), hist);
}

QV_INLINE void qv_range_block(const float *f, size_t n, const qv_params_t *p, qv_acc_t *a)
{
    int32_t f_min = a->f_min, f_max = a->f_max;
    uint32_t sat = 0;
    const float hi_sat = p->hi_sat, lo_sat = p->lo_sat;
    size_t i;
    for (i = 0; i < n; i++)
    {
        const float fv = f[i];
        const int32_t kf = qv_key(fv);
        f_min = (kf < f_min) ? kf : f_min;
        f_max = (kf > f_max) ? kf : f_max;
        sat += (uint32_t)((fv >= hi_sat) | (fv < lo_sat));
    }
    a->f_min = f_min;
    a->f_max = f_max;
    a->saturating += sat;
}

typedef void (*qv_block_fn)(const float *, const int16_t *, size_t, const qv_params_t *, qv_acc_t *, double *,
                            uint32_t (*)[QV_HIST_BINS]);
typedef void (*qv_range_fn)(const float *, size_t, const qv_params_t *, qv_acc_t *);

static void qv_block_base(const float *f, const int16_t *q, size_t n, const qv_params_t *p, qv_acc_t *a,
                          double *sums, uint32_t (*hist)[QV_HIST_BINS])
{
    qv_block(f, q, n, p, a, sums, hist);
}

static void qv_range_base(const float *f, size_t n, const qv_params_t *p, qv_acc_t *a)
{
    qv_range_block(f, n, p, a);
}

#if QV_STATS_AVX2
QV_AVX2 static void qv_block_avx2(const float *f, const int16_t *q, size_t n, const qv_params_t *p, qv_acc_t *a,
                                  double *sums, uint32_t (*hist)[QV_HIST_BINS])
{
    qv_block(f, q, n, p, a, sums, hist);
}

QV_AVX2 static void qv_range_avx2(const float *f, size_t n, const qv_params_t *p, qv_acc_t *a)
{
    qv_range_block(f, n, p, a);
}

static int qv_have_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

static int qv_use_avx2 = -1; /* -1: not decided yet (qverify.stats_lib decides at load), else 0 or 1 */

int32_t qv_stats_simd(int32_t allow)
{
#if QV_STATS_AVX2
    qv_use_avx2 = allow && qv_have_avx2();
#else
    (void)allow;
    qv_use_avx2 = 0;
#endif
    return qv_use_avx2;
}

#if QV_STATS_AVX2
static int qv_avx2(void)
{
    if (qv_use_avx2 < 0)
        qv_stats_simd(1);
    return qv_use_avx2;
}
#endif

static void qv_acc_init(qv_acc_t *a)
{
    a->f_min = QV_KEY_INF;
    a->f_max = QV_KEY_NEG_INF;
    a->q_min = INT32_MAX;
    a->q_max = INT32_MIN;
    a->d_abs = 0;
    a->saturating = 0;
}

static void qv_hist_flush(uint32_t hist[QV_SUBHISTS][QV_HIST_BINS], int64_t *out)
{
    int j, b;
    for (j = 0; j < QV_SUBHISTS; j++)
    {
        for (b = 0; b < QV_HIST_BINS; b++)
        {
            out[b] += hist[j][b];
            hist[j][b] = 0;
        }
    }
}

void qv_summarize(const float *f, const int16_t *q, size_t n, int frac, int32_t qmin, int32_t qmax,
                  qv_summary_t *out)
{
    const qv_params_t p = qv_params(frac, qmin, qmax);
    qv_block_fn block = qv_block_base;
    qv_acc_t a;
    uint32_t hist[QV_SUBHISTS][QV_HIST_BINS];
    double sums[3] = {0.0, 0.0, 0.0};
    size_t start, since_flush = 0;
    float d_abs;

#if QV_STATS_AVX2
    if (qv_avx2())
        block = qv_block_avx2;
#endif
    memset(out, 0, sizeof(*out));
    memset(hist, 0, sizeof(hist));
    qv_acc_init(&a);
    for (start = 0; start < n; start += QV_STATS_BLOCK)
    {
        const size_t len = (n - start < QV_STATS_BLOCK) ? n - start : QV_STATS_BLOCK;
        block(f + start, q + start, len, &p, &a, sums, hist);
        since_flush += len;
        if (since_flush >= QV_FLUSH_VALUES)
        {
            qv_hist_flush(hist, out->hist);
            since_flush = 0;
        }
    }
    qv_hist_flush(hist, out->hist);
    memcpy(&d_abs, &a.d_abs, sizeof(d_abs));
    out->count = n;
    out->saturating = a.saturating;
    out->sum_f2 = sums[0];
    out->sum_dd = sums[1];
    out->sum_df = sums[2];
    out->d_abs_max = d_abs;
    out->f_min = qv_unkey(a.f_min);
    out->f_max = qv_unkey(a.f_max);
    out->q_min = n ? a.q_min : 0;
    out->q_max = n ? a.q_max : 0;
}

void qv_float_range(const float *f, size_t n, int frac, int32_t qmin, int32_t qmax, qv_range_t *out)
{
    const qv_params_t p = qv_params(frac, qmin, qmax);
    qv_range_fn range = qv_range_base;
    qv_acc_t a;
    size_t start;

#if QV_STATS_AVX2
    if (qv_avx2())
        range = qv_range_avx2;
#endif
    qv_acc_init(&a);
    for (start = 0; start < n; start += QV_STATS_BLOCK)
        range(f + start, (n - start < QV_STATS_BLOCK) ? n - start : QV_STATS_BLOCK, &p, &a);
    out->count = n;
    out->saturating = a.saturating;
    out->f_min = qv_unkey(a.f_min);
    out->f_max = qv_unkey(a.f_max);
}

size_t qv_equal_samples(const void *a, const void *b, size_t samples, size_t bytes_per_sample, uint8_t *out)
{
    const unsigned char *pa = (const unsigned char *)a, *pb = (const unsigned char *)b;
    size_t s, differ = 0;
    for (s = 0; s < samples; s++)
    {
        const int same = memcmp(pa + s * bytes_per_sample, pb + s * bytes_per_sample, bytes_per_sample) == 0;
        out[s] = (uint8_t)same;
        differ += (size_t)!same;
    }
    return differ;
}
