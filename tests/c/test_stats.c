/*
 * csrc/qv_stats.c under the sanitizers (tests/test_stats.py compiles and runs
 * this with -fsanitize=address,undefined): chunks of every size up to a few
 * blocks, at unaligned addresses, with NaNs, infinities, huge, tiny and
 * ordinary values, through the AVX2 and the portable loops, which must agree
 * field for field; every value is counted in exactly one histogram bin.
 * Prints "ok <chunks>" and exits 0, or names the first difference and exits 1.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qv_stats.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint32_t next_u32(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static float uniform(float lo, float hi)
{
    return lo + (hi - lo) * (float)(next_u32() & 0xFFFFFF) / (float)0x1000000;
}

static float value(int kind, int16_t q, int frac)
{
    const float scale = (float)ldexp(1.0, -frac);
    uint32_t bits;
    float v;
    switch (kind)
    {
    case 0:
        return ((float)q + uniform(-1.5f, 1.5f)) * scale;
    case 1:
        return ((float)q + uniform(-80.0f, 80.0f)) * scale;
    case 2:
        return (next_u32() & 1) ? (float)INFINITY : -(float)INFINITY;
    case 3: /* any bit pattern: NaNs of both signs, subnormals, huge values */
        bits = next_u32();
        memcpy(&v, &bits, sizeof(v));
        return v;
    default:
        return ((float)q + 0.5f) * scale;
    }
}

static int same_bits(float a, float b)
{
    return memcmp(&a, &b, sizeof(a)) == 0;
}

/* the same double, bit for bit, or both NaN (which NaN a sum of NaNs keeps depends on the operand order) */
static int same_sum(double a, double b)
{
    return memcmp(&a, &b, sizeof(a)) == 0 || (a != a && b != b);
}

static int compare(const qv_summary_t *a, const qv_summary_t *b, size_t n)
{
    int64_t total = 0;
    int i;
    if (a->count != b->count || a->saturating != b->saturating || a->q_min != b->q_min || a->q_max != b->q_max)
        return 0;
    if (!same_sum(a->sum_f2, b->sum_f2) || !same_sum(a->sum_dd, b->sum_dd) || !same_sum(a->sum_df, b->sum_df))
        return 0;
    if (!same_bits(a->d_abs_max, b->d_abs_max) || !same_bits(a->f_min, b->f_min) || !same_bits(a->f_max, b->f_max))
        return 0;
    for (i = 0; i < QV_HIST_BINS; i++)
    {
        if (a->hist[i] != b->hist[i] || a->hist[i] < 0)
            return 0;
        total += a->hist[i];
    }
    return total == (int64_t)n;
}

int main(void)
{
    enum
    {
        MAX_N = 3 * 2048 + 40
    };
    float *fbuf = malloc((MAX_N + 1) * sizeof(float));
    int16_t *qbuf = malloc((MAX_N + 1) * sizeof(int16_t));
    uint8_t equal[64];
    int chunks = 0, trial;
    if (!fbuf || !qbuf)
        return 2;
    for (trial = 0; trial < 400; trial++)
    {
        const size_t n = (trial < 40) ? (size_t)trial : next_u32() % MAX_N;
        const int frac = (int)(next_u32() % 16), offset = (int)(next_u32() & 1), kinds = (int)(next_u32() % 5);
        float *f = fbuf + offset;
        int16_t *q = qbuf + offset;
        qv_summary_t fast, plain;
        qv_range_t r;
        size_t i;
        for (i = 0; i < n; i++)
        {
            q[i] = (int16_t)(next_u32() & 0xFFFF);
            f[i] = value((next_u32() % 8 == 0) ? (int)(next_u32() % 5) : kinds, q[i], frac);
        }
        qv_stats_simd(1);
        qv_summarize(f, q, n, frac, -32768, 32767, &fast);
        qv_stats_simd(0);
        qv_summarize(f, q, n, frac, -32768, 32767, &plain);
        if (!compare(&fast, &plain, n))
        {
            printf("chunk %d (n %zu, frac %d): the AVX2 and portable loops differ\n", trial, n, frac);
            return 1;
        }
        qv_float_range(f, n, frac, -32768, 32767, &r);
        if (r.count != n || r.saturating != plain.saturating || !same_bits(r.f_min, plain.f_min) ||
            !same_bits(r.f_max, plain.f_max))
        {
            printf("chunk %d: qv_float_range differs from qv_summarize\n", trial);
            return 1;
        }
        chunks++;
    }
    for (trial = 0; trial < 64; trial++) /* equal samples at odd sizes */
    {
        const size_t samples = (size_t)trial, bytes = 1 + next_u32() % 32;
        unsigned char *a = malloc(samples * bytes + 1), *b = malloc(samples * bytes + 1);
        size_t s, differ;
        if (!a || !b)
            return 2;
        for (s = 0; s < samples * bytes; s++)
            a[s] = b[s] = (unsigned char)next_u32();
        for (s = 0; s < samples; s += 3)
            b[s * bytes + next_u32() % bytes] ^= 1;
        differ = qv_equal_samples(a, b, samples, bytes, equal);
        for (s = 0; s < samples; s++)
        {
            if (equal[s] != (s % 3 != 0))
            {
                printf("qv_equal_samples: sample %zu of %zu\n", s, samples);
                return 1;
            }
        }
        if (differ != (samples + 2) / 3)
        {
            printf("qv_equal_samples: %zu of %zu samples differ, not %zu\n", differ, samples, (samples + 2) / 3);
            return 1;
        }
        free(a);
        free(b);
    }
    free(fbuf);
    free(qbuf);
    printf("ok %d\n", chunks);
    return 0;
}
