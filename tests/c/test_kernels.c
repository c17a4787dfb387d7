/*
 * Standalone C test of qverify's q15 kernels and network runner.
 *
 * Every kernel (bundled arm_* and qv_*) and qv_run are driven with random
 * shapes and data from a fixed-seed PRNG and compared element by element
 * with a straightforward int64 reference written here (int32 wrap-around
 * emulated, NN_ROUND as in docs/design.md rule 4, arithmetic shift done as floor
 * division).  Buffers are allocated at their exact size so that
 * AddressSanitizer catches any overrun.
 *
 *   usage: test_kernels [cases_per_group [seed]]
 *
 * Build (one of six variants: DSP, plain or host-SIMD "fast", x truncate/round):
 *   gcc -std=c99 -fwrapv [-DARM_MATH_DSP | -DQV_HOST_SIMD] [-DARM_NN_TRUNCATE] -Icmsis/Include -Icsrc \
 *       tests/c/test_kernels.c cmsis/Source/\*.c csrc/qv_runner.c csrc/qv_host_conv.c -o test_kernels
 * With -DQV_HOST_SIMD, qv_host_conv_q15 is also tested directly (at every SIMD level the CPU has)
 * and the runner tests run once more on the AVX2 path.
 *
 * Prints "test_kernels: N passed, M failed" last; exit status 1 on any failure.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"
#include "qv_intrinsics.h"
#include "qv_nnfunctions.h"
#include "qv_runner.h"
#if defined(QV_HOST_SIMD)
#include "qv_host_conv.h"
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define HOST_DEATH_CALLBACK 1
#endif
#endif

#define QMAX 32767
#define QMIN (-32768)
#define SENTINEL ((int16_t)0x5A5B)

/* ------------------------------------------------------------------ */
/* bookkeeping                                                         */
/* ------------------------------------------------------------------ */

#if defined(ARM_MATH_DSP)
#define DSP_PATH 1
#else
#define DSP_PATH 0
#endif

static long g_pass = 0;
static long g_fail = 0;

#define CHECK(cond, ...)                                     \
    do                                                       \
    {                                                        \
        if (cond)                                            \
        {                                                    \
            g_pass++;                                        \
        }                                                    \
        else                                                 \
        {                                                    \
            g_fail++;                                        \
            if (g_fail <= 40)                                \
            {                                                \
                printf("FAIL line %d: ", __LINE__);          \
                printf(__VA_ARGS__);                         \
                printf("\n");                                \
            }                                                \
        }                                                    \
    } while (0)

static uint64_t g_rng = 0;

static uint64_t rng_next(void)
{
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* uniform in [lo, hi] */
static int32_t rnd(int32_t lo, int32_t hi)
{
    const uint64_t span = (uint64_t)((int64_t)hi - (int64_t)lo + 1);
    return (int32_t)((int64_t)lo + (int64_t)(rng_next() % span));
}

static int16_t *alloc16(size_t n)
{
    int16_t *p = (int16_t *)malloc((n ? n : 1) * sizeof(int16_t));
    if (p == NULL)
    {
        printf("out of memory\n");
        exit(2);
    }
    return p;
}

static void fill16(int16_t *p, size_t n, int16_t v)
{
    size_t i;
    for (i = 0; i < n; i++)
    {
        p[i] = v;
    }
}

static int all16(const int16_t *p, size_t n, int16_t v)
{
    size_t i;
    for (i = 0; i < n; i++)
    {
        if (p[i] != v)
        {
            return 0;
        }
    }
    return 1;
}

/* Data modes: 0 full range, 1 small, 2 extremes {QMIN, QMAX, 0}, 3 all QMIN. */
static void rand_data(int16_t *p, size_t n, int mode)
{
    size_t i;
    for (i = 0; i < n; i++)
    {
        switch (mode)
        {
        case 0:
            p[i] = (int16_t)rnd(QMIN, QMAX);
            break;
        case 1:
            p[i] = (int16_t)rnd(-64, 64);
            break;
        case 2:
        {
            const int32_t r = rnd(0, 2);
            p[i] = (int16_t)(r == 0 ? QMIN : (r == 1 ? QMAX : 0));
            break;
        }
        default:
            p[i] = (int16_t)QMIN;
            break;
        }
    }
}

static int rand_mode(void)
{
    const int32_t r = rnd(0, 9);
    return r < 5 ? 0 : (r < 7 ? 1 : (r < 9 ? 2 : 3));
}

static unsigned rand_bias_shift(void)
{
    const int32_t r = rnd(0, 5);
    return (unsigned)(r == 0 ? 0 : (r == 1 ? 31 : (r < 4 ? rnd(0, 8) : rnd(0, 31))));
}

static unsigned rand_out_shift(void)
{
    const int32_t r = rnd(0, 5);
    return (unsigned)(r == 0 ? 0 : (r == 1 ? 31 : (r < 4 ? rnd(8, 20) : rnd(0, 31))));
}

/* index of the first difference, -1 if equal */
static long first_diff(const int16_t *a, const int16_t *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
    {
        if (a[i] != b[i])
        {
            return (long)i;
        }
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* int64 reference                                                     */
/* ------------------------------------------------------------------ */

static int64_t ref_round(unsigned s)
{
#if defined(ARM_NN_TRUNCATE)
    (void)s;
    return 0;
#else
    return s == 0 ? 0 : ((int64_t)1 << (s - 1));
#endif
}

/* v modulo 2^32 as a signed 32-bit value (the accumulator on the core). */
static int64_t wrap32(int64_t v)
{
    int64_t m = v % 4294967296LL;
    if (m < 0)
    {
        m += 4294967296LL;
    }
    return m >= 2147483648LL ? m - 4294967296LL : m;
}

static int64_t floor_div_pow2(int64_t v, unsigned s)
{
    const int64_t d = (int64_t)1 << s;
    int64_t q = v / d;
    if ((v % d != 0) && (v < 0))
    {
        q -= 1;
    }
    return q;
}

static int16_t ref_finish(int64_t exact_acc, unsigned out_shift)
{
    const int64_t q = floor_div_pow2(wrap32(exact_acc), out_shift);
    return (int16_t)(q > QMAX ? QMAX : (q < QMIN ? QMIN : q));
}

static int64_t ref_acc_init(int16_t bias, unsigned bias_shift, unsigned out_shift)
{
    return (int64_t)bias * ((int64_t)1 << bias_shift) + ref_round(out_shift);
}

typedef struct
{
    int X, Y, C, CO, KX, KY, PX, PY, SX, SY, OX, OY;
    unsigned bs, os;
} conv_geo_t;

/* ref_conv outputs whose sum of products left the int32 range (the kernels' accumulator wrapped) */
static long g_ref_wraps = 0;

static void ref_conv(const conv_geo_t *g, const int16_t *in, const int16_t *w, const int16_t *bias, int16_t *out)
{
    int oy, ox, oc, ky, kx, c;
    for (oy = 0; oy < g->OY; oy++)
        for (ox = 0; ox < g->OX; ox++)
            for (oc = 0; oc < g->CO; oc++)
            {
                const int64_t init = ref_acc_init(bias[oc], g->bs, g->os);
                int64_t acc = init;
                for (ky = 0; ky < g->KY; ky++)
                    for (kx = 0; kx < g->KX; kx++)
                    {
                        const int iy = oy * g->SY - g->PY + ky;
                        const int ix = ox * g->SX - g->PX + kx;
                        if (iy < 0 || iy >= g->Y || ix < 0 || ix >= g->X)
                            continue;
                        for (c = 0; c < g->C; c++)
                            acc += (int64_t)w[(((size_t)oc * g->KY + ky) * g->KX + kx) * g->C + c] *
                                   in[((size_t)iy * g->X + ix) * g->C + c];
                    }
                g_ref_wraps += (acc - init) != wrap32(acc - init);
                out[((size_t)oy * g->OX + ox) * g->CO + oc] = ref_finish(acc, g->os);
            }
}

static void ref_fc(const int16_t *v, const int16_t *m, int dim, int rows, unsigned bs, unsigned os,
                   const int16_t *bias, int16_t *out)
{
    int r, i;
    for (r = 0; r < rows; r++)
    {
        int64_t acc = ref_acc_init(bias[r], bs, os);
        for (i = 0; i < dim; i++)
            acc += (int64_t)m[(size_t)r * dim + i] * v[i];
        out[r] = ref_finish(acc, os);
    }
}

static void ref_relu(const int16_t *in, int16_t *out, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        out[i] = in[i] < 0 ? 0 : in[i];
}

/* is_avg: 0 max, 1 average */
static void ref_pool(int is_avg, const int16_t *in, int X, int Y, int C, int KX, int KY, int SX, int SY, int OX,
                     int OY, int16_t *out)
{
    int oy, ox, c, ky, kx;
    (void)Y;
    for (oy = 0; oy < OY; oy++)
        for (ox = 0; ox < OX; ox++)
            for (c = 0; c < C; c++)
            {
                int64_t sum = 0;
                int best = QMIN;
                for (ky = 0; ky < KY; ky++)
                    for (kx = 0; kx < KX; kx++)
                    {
                        const int v = in[(((size_t)(oy * SY + ky)) * X + (size_t)(ox * SX + kx)) * C + c];
                        sum += v;
                        best = v > best ? v : best;
                    }
                out[((size_t)oy * OX + ox) * C + c] = (int16_t)(is_avg ? sum / ((int64_t)KX * KY) : best);
            }
}

static void ref_gap(const int16_t *in, int X, int Y, int C, int16_t *out)
{
    int c;
    size_t p;
    for (c = 0; c < C; c++)
    {
        int64_t sum = 0;
        for (p = 0; p < (size_t)X * Y; p++)
            sum += in[p * C + c];
        out[c] = (int16_t)(sum / ((int64_t)X * Y));
    }
}

/* ------------------------------------------------------------------ */
/* intrinsics and macros                                               */
/* ------------------------------------------------------------------ */

static int32_t lo16(uint32_t x) { return (int16_t)(uint16_t)(x & 0xFFFF); }
static int32_t hi16(uint32_t x) { return (int16_t)(uint16_t)(x >> 16); }
static uint32_t pk(int64_t lo, int64_t hi) { return ((uint32_t)lo & 0xFFFFu) | (((uint32_t)hi & 0xFFFFu) << 16); }
static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

static uint32_t rand_word(void)
{
    const int32_t r = rnd(0, 3);
    if (r == 0)
    {
        static const uint32_t special[] = {0u, 0x80008000u, 0x7FFF7FFFu, 0x80007FFFu, 0xFFFFFFFFu, 0x00010001u};
        return special[rnd(0, 5)];
    }
    return (uint32_t)rng_next();
}

static void test_intrinsics(int n)
{
    int i;
    int bad_smlad = 0, bad_smladx = 0, bad_ssat = 0, bad_usat = 0, bad_pk = 0, bad_sx = 0, bad_ror = 0, bad_q = 0;
    int16_t pair[2] = {(int16_t)-2, (int16_t)0x1234};

    /* NN_ROUND per the contract, both spellings */
#if defined(ARM_NN_TRUNCATE)
    CHECK(NN_ROUND(0) == 0 && NN_ROUND(1) == 0 && NN_ROUND(31) == 0, "NN_ROUND must be 0 with ARM_NN_TRUNCATE");
    CHECK(QV_NN_ROUND(0) == 0 && QV_NN_ROUND(31) == 0, "QV_NN_ROUND must be 0 with ARM_NN_TRUNCATE");
#else
    CHECK(NN_ROUND(0) == 0 && NN_ROUND(1) == 1 && NN_ROUND(8) == 128 && NN_ROUND(31) == 1073741824,
          "NN_ROUND(0,1,8,31) = %ld %ld %ld %ld", (long)NN_ROUND(0), (long)NN_ROUND(1), (long)NN_ROUND(8),
          (long)NN_ROUND(31));
    CHECK(QV_NN_ROUND(0) == 0 && QV_NN_ROUND(1) == 1 && QV_NN_ROUND(31) == 1073741824, "QV_NN_ROUND");
#endif
    /* packed load: element at the lower address in bits 0..15 */
    CHECK(qv_read_q15x2(pair) == 0x1234FFFEu, "qv_read_q15x2 = 0x%08" PRIx32, qv_read_q15x2(pair));
    CHECK(qv_acc_init((int16_t)-1, 31, 0) == INT32_MIN && qv_acc_init((int16_t)QMIN, 16, 5) == INT32_MIN + 5,
          "qv_acc_init wrap");

    for (i = 0; i < n; i++)
    {
        const uint32_t x = rand_word(), y = rand_word(), a = rand_word();
        const unsigned s = (unsigned)rnd(0, 31);
        uint32_t expect;
        int64_t v;

        v = (int64_t)(int32_t)a + (int64_t)lo16(x) * lo16(y) + (int64_t)hi16(x) * hi16(y);
        expect = (uint32_t)(uint64_t)v;
        bad_smlad += (qv_smlad(x, y, a) != expect) || ((uint32_t)__SMLAD(x, y, a) != expect);

        v = (int64_t)(int32_t)a + (int64_t)lo16(x) * hi16(y) + (int64_t)hi16(x) * lo16(y);
        expect = (uint32_t)(uint64_t)v;
        bad_smladx += (qv_smladx(x, y, a) != expect) || ((uint32_t)__SMLADX(x, y, a) != expect);

        {
            const unsigned sat = (unsigned)rnd(1, 32);
            const int64_t mx = ((int64_t)1 << (sat - 1)) - 1;
            bad_ssat += qv_ssat((int32_t)x, sat) != (int32_t)clamp64((int32_t)x, -mx - 1, mx);
            bad_ssat += __SSAT((int32_t)x, 16) != (int32_t)clamp64((int32_t)x, -32768, 32767);
        }
        {
            const unsigned sat = (unsigned)rnd(0, 31);
            const int64_t mx = ((int64_t)1 << sat) - 1;
            bad_usat += qv_usat((int32_t)x, sat) != (uint32_t)clamp64((int32_t)x, 0, mx);
            bad_usat += __USAT((int32_t)x, 8) != (uint32_t)clamp64((int32_t)x, 0, 255);
        }
        bad_pk += __PKHBT(x, y, s) != ((x & 0xFFFFu) | ((uint32_t)((uint64_t)y << s) & 0xFFFF0000u));
        bad_pk += __PKHTB(x, y, s) != ((x & 0xFFFF0000u) | ((uint32_t)floor_div_pow2((int32_t)y, s) & 0xFFFFu));
        bad_sx += __SXTB16(x) != pk((int8_t)(x & 0xFF), (int8_t)((x >> 16) & 0xFF));
        bad_ror += __ROR(x, s) != (s == 0 ? x : ((x >> s) | (x << (32 - s))));
        bad_q += __QADD16(x, y) != pk(clamp64((int64_t)lo16(x) + lo16(y), QMIN, QMAX),
                                      clamp64((int64_t)hi16(x) + hi16(y), QMIN, QMAX));
        bad_q += __QSUB16(x, y) != pk(clamp64((int64_t)lo16(x) - lo16(y), QMIN, QMAX),
                                      clamp64((int64_t)hi16(x) - hi16(y), QMIN, QMAX));
    }
    CHECK(bad_smlad == 0, "__SMLAD/qv_smlad: %d mismatches", bad_smlad);
    CHECK(bad_smladx == 0, "__SMLADX: %d mismatches", bad_smladx);
    CHECK(bad_ssat == 0, "__SSAT: %d mismatches", bad_ssat);
    CHECK(bad_usat == 0, "__USAT: %d mismatches", bad_usat);
    CHECK(bad_pk == 0, "__PKHBT/__PKHTB: %d mismatches", bad_pk);
    CHECK(bad_sx == 0, "__SXTB16: %d mismatches", bad_sx);
    CHECK(bad_ror == 0, "__ROR: %d mismatches", bad_ror);
    CHECK(bad_q == 0, "__QADD16/__QSUB16: %d mismatches", bad_q);
}

/* ------------------------------------------------------------------ */
/* convolutions                                                        */
/* ------------------------------------------------------------------ */

static void rand_conv_geo(conv_geo_t *g, int square)
{
    static const int chans[] = {1, 2, 3, 4, 5, 6, 7, 8, 16};
    g->C = chans[rnd(0, 8)];
    g->CO = rnd(0, 3) == 0 ? chans[rnd(0, 8)] : rnd(1, 6);
    g->X = rnd(1, 9);
    g->Y = square ? g->X : rnd(1, 9);
    g->PX = rnd(0, 2) == 0 ? rnd(0, 2) : 0;
    g->PY = square ? g->PX : (rnd(0, 2) == 0 ? rnd(0, 2) : 0);
    g->KX = rnd(1, (g->X + 2 * g->PX) < 5 ? (g->X + 2 * g->PX) : 5);
    g->KY = square ? g->KX : rnd(1, (g->Y + 2 * g->PY) < 5 ? (g->Y + 2 * g->PY) : 5);
    if (square && g->KX > g->Y + 2 * g->PY)
        g->KX = g->KY = g->Y + 2 * g->PY;
    g->SX = rnd(1, 3);
    g->SY = square ? g->SX : rnd(1, 3);
    g->OX = (g->X + 2 * g->PX - g->KX) / g->SX + 1;
    g->OY = (g->Y + 2 * g->PY - g->KY) / g->SY + 1;
    g->bs = rand_bias_shift();
    g->os = rand_out_shift();
}

static void test_conv_case(int square)
{
    conv_geo_t g;
    size_t n_in, n_w, n_out, col;
    int16_t *in, *w, *bias, *expect, *out, *bufA;
    int mode;
    int is_square;
    int even;
    arm_status st;
    long d;

    rand_conv_geo(&g, square);
    is_square = (g.X == g.Y) && (g.KX == g.KY) && (g.SX == g.SY) && (g.PX == g.PY);
    /* the fast convs' contract: even channels; the DSP path (Arm's pairs pixels along x) an even width too */
    even = (g.C % 2 == 0) && (g.CO % 2 == 0) && (!DSP_PATH || g.OX % 2 == 0);
    n_in = (size_t)g.X * g.Y * g.C;
    col = (size_t)g.C * g.KX * g.KY;
    n_w = (size_t)g.CO * col;
    n_out = (size_t)g.OX * g.OY * g.CO;
    in = alloc16(n_in);
    w = alloc16(n_w);
    bias = alloc16((size_t)g.CO);
    expect = alloc16(n_out);
    out = alloc16(n_out);
    mode = rand_mode();
    rand_data(in, n_in, mode);
    rand_data(w, n_w, mode == 1 ? (rnd(0, 1) ? 0 : 1) : mode);
    rand_data(bias, (size_t)g.CO, rnd(0, 2));
    ref_conv(&g, in, w, bias, expect);

#define GEO_FMT "X=%d Y=%d C=%d CO=%d K=%dx%d P=%d,%d S=%d,%d O=%dx%d bs=%u os=%u mode=%d"
#define GEO_ARGS g.X, g.Y, g.C, g.CO, g.KX, g.KY, g.PX, g.PY, g.SX, g.SY, g.OX, g.OY, g.bs, g.os, mode

    /* qv_convolve_HWC_q15_basic_nonsquare: any geometry */
    bufA = alloc16(col);
    fill16(out, n_out, SENTINEL);
    st = qv_convolve_HWC_q15_basic_nonsquare(in, (uint16_t)g.X, (uint16_t)g.Y, (uint16_t)g.C, w, (uint16_t)g.CO,
                                             (uint16_t)g.KX, (uint16_t)g.KY, (uint16_t)g.PX, (uint16_t)g.PY,
                                             (uint16_t)g.SX, (uint16_t)g.SY, bias, (uint16_t)g.bs, (uint16_t)g.os,
                                             out, (uint16_t)g.OX, (uint16_t)g.OY, bufA, NULL);
    d = first_diff(out, expect, n_out);
    CHECK(st == ARM_MATH_SUCCESS && d < 0, "qv_convolve_HWC_q15_basic_nonsquare st=%d diff@%ld (got %d want %d) " GEO_FMT,
          (int)st, d, d >= 0 ? out[d] : 0, d >= 0 ? expect[d] : 0, GEO_ARGS);

    /* arm_convolve_HWC_q15_basic: square geometry */
    if (is_square)
    {
        fill16(out, n_out, SENTINEL);
        st = arm_convolve_HWC_q15_basic(in, (uint16_t)g.X, (uint16_t)g.C, w, (uint16_t)g.CO, (uint16_t)g.KX,
                                        (uint16_t)g.PX, (uint16_t)g.SX, bias, (uint16_t)g.bs, (uint16_t)g.os, out,
                                        (uint16_t)g.OX, bufA, NULL);
        d = first_diff(out, expect, n_out);
        CHECK(st == ARM_MATH_SUCCESS && d < 0, "arm_convolve_HWC_q15_basic st=%d diff@%ld (got %d want %d) " GEO_FMT,
              (int)st, d, d >= 0 ? out[d] : 0, d >= 0 ? expect[d] : 0, GEO_ARGS);
    }
    free(bufA);

    /* the fast kernels: even channels, else SIZE_MISMATCH and nothing written */
    bufA = alloc16(2 * col);
    fill16(out, n_out, SENTINEL);
    fill16(bufA, 2 * col, SENTINEL);
    st = arm_convolve_HWC_q15_fast_nonsquare(in, (uint16_t)g.X, (uint16_t)g.Y, (uint16_t)g.C, w, (uint16_t)g.CO,
                                             (uint16_t)g.KX, (uint16_t)g.KY, (uint16_t)g.PX, (uint16_t)g.PY,
                                             (uint16_t)g.SX, (uint16_t)g.SY, bias, (uint16_t)g.bs, (uint16_t)g.os,
                                             out, (uint16_t)g.OX, (uint16_t)g.OY, bufA, NULL);
    if (even)
    {
        d = first_diff(out, expect, n_out);
        CHECK(st == ARM_MATH_SUCCESS && d < 0,
              "arm_convolve_HWC_q15_fast_nonsquare st=%d diff@%ld (got %d want %d) " GEO_FMT, (int)st, d,
              d >= 0 ? out[d] : 0, d >= 0 ? expect[d] : 0, GEO_ARGS);
    }
    else
    {
        CHECK(st == ARM_MATH_SIZE_MISMATCH && all16(out, n_out, SENTINEL) && all16(bufA, 2 * col, SENTINEL),
              "arm_convolve_HWC_q15_fast_nonsquare odd channels/width: st=%d (want -3), output untouched=%d " GEO_FMT,
              (int)st, all16(out, n_out, SENTINEL), GEO_ARGS);
    }
    if (is_square)
    {
        fill16(out, n_out, SENTINEL);
        fill16(bufA, 2 * col, SENTINEL);
        st = arm_convolve_HWC_q15_fast(in, (uint16_t)g.X, (uint16_t)g.C, w, (uint16_t)g.CO, (uint16_t)g.KX,
                                       (uint16_t)g.PX, (uint16_t)g.SX, bias, (uint16_t)g.bs, (uint16_t)g.os, out,
                                       (uint16_t)g.OX, bufA, NULL);
        if (even)
        {
            d = first_diff(out, expect, n_out);
            CHECK(st == ARM_MATH_SUCCESS && d < 0,
                  "arm_convolve_HWC_q15_fast st=%d diff@%ld (got %d want %d) " GEO_FMT, (int)st, d,
                  d >= 0 ? out[d] : 0, d >= 0 ? expect[d] : 0, GEO_ARGS);
        }
        else
        {
            CHECK(st == ARM_MATH_SIZE_MISMATCH && all16(out, n_out, SENTINEL) && all16(bufA, 2 * col, SENTINEL),
                  "arm_convolve_HWC_q15_fast odd channels/width: st=%d (want -3) " GEO_FMT, (int)st, GEO_ARGS);
        }
    }
    free(bufA);
    free(in);
    free(w);
    free(bias);
    free(expect);
    free(out);
#undef GEO_FMT
#undef GEO_ARGS
}

/* The accumulator must wrap modulo 2^32 (as SMLAD): all-QMIN data, large kernels. */
static void test_conv_wrap(void)
{
    conv_geo_t g;
    size_t n_in, col, n_out;
    int16_t *in, *w, *bias, *expect, *out, *bufA;
    arm_status st;
    int64_t exact;

    memset(&g, 0, sizeof(g));
    g.X = g.Y = 3;
    g.C = 4;
    g.CO = 2;
    g.KX = g.KY = 3;
    g.SX = g.SY = 1;
    g.OX = g.OY = 1;
    g.bs = 0;
    g.os = 16;
    n_in = 36;
    col = 36;
    n_out = 2;
    in = alloc16(n_in);
    w = alloc16(col * 2);
    bias = alloc16(2);
    expect = alloc16(n_out);
    out = alloc16(n_out);
    bufA = alloc16(2 * col);
    fill16(in, n_in, (int16_t)QMIN);
    fill16(w, 2 * col, (int16_t)QMIN);
    bias[0] = 0;
    bias[1] = 1000;
    /* 36 * 2^30 = 9 * 2^32: wraps to exactly the bias term */
    exact = 36LL << 30;
    ref_conv(&g, in, w, bias, expect);
    CHECK(expect[0] == ref_finish(exact + ref_round(16), 16) && wrap32(exact) == 0, "wrap reference");

    /* output width 1: only the plain path of the fast convs takes it (the DSP path refuses, as Arm's cannot) */
    st = arm_convolve_HWC_q15_fast_nonsquare(in, 3, 3, 4, w, 2, 3, 3, 0, 0, 1, 1, bias, 0, 16, out, 1, 1, bufA, NULL);
    CHECK(DSP_PATH ? st == ARM_MATH_SIZE_MISMATCH : (st == ARM_MATH_SUCCESS && out[0] == expect[0] && out[1] == expect[1]),
          "fast_nonsquare wrap: st=%d %d %d want %d %d", (int)st, out[0], out[1], expect[0], expect[1]);
    st = qv_convolve_HWC_q15_basic_nonsquare(in, 3, 3, 4, w, 2, 3, 3, 0, 0, 1, 1, bias, 0, 16, out, 1, 1, bufA, NULL);
    CHECK(st == ARM_MATH_SUCCESS && out[0] == expect[0] && out[1] == expect[1], "basic_nonsquare wrap");
    st = arm_convolve_HWC_q15_basic(in, 3, 4, w, 2, 3, 0, 1, bias, 0, 16, out, 1, bufA, NULL);
    CHECK(st == ARM_MATH_SUCCESS && out[0] == expect[0] && out[1] == expect[1], "basic wrap");
    st = arm_convolve_HWC_q15_fast(in, 3, 4, w, 2, 3, 0, 1, bias, 0, 16, out, 1, bufA, NULL);
    CHECK(DSP_PATH ? st == ARM_MATH_SIZE_MISMATCH : (st == ARM_MATH_SUCCESS && out[0] == expect[0] && out[1] == expect[1]),
          "fast wrap: st=%d", (int)st);
    free(in);
    free(w);
    free(bias);
    free(expect);
    free(out);
    free(bufA);
}

static void test_conv_argument_errors(void)
{
    int16_t in[64], w[256], bias[4], out[64], bufA[256];
    arm_status st;
    int i;
    for (i = 0; i < 64; i++)
        in[i] = (int16_t)i;
    for (i = 0; i < 256; i++)
        w[i] = 1;
    bias[0] = bias[1] = bias[2] = bias[3] = 0;

    struct
    {
        int X, Y, C, CO, KX, KY, PX, PY, SX, SY, OX, OY, bs, os;
    } bad[] = {
        {4, 4, 2, 2, 2, 2, 0, 0, 0, 1, 3, 3, 0, 0},  /* zero stride */
        {4, 4, 2, 2, 5, 2, 0, 0, 1, 1, 1, 3, 0, 0},  /* kernel wider than the image */
        {4, 4, 2, 2, 7, 2, 1, 0, 1, 1, 1, 3, 0, 0},  /* kernel wider than the padded image */
        {4, 4, 0, 2, 2, 2, 0, 0, 1, 1, 3, 3, 0, 0},  /* zero channels */
        {0, 4, 2, 2, 1, 1, 0, 0, 1, 1, 1, 4, 0, 0},  /* zero width */
        {4, 4, 2, 2, 2, 2, 0, 0, 1, 1, 3, 3, 32, 0}, /* bias shift 32 */
        {4, 4, 2, 2, 2, 2, 0, 0, 1, 1, 3, 3, 0, 32}, /* out shift 32 */
        {4, 4, 2, 2, 0, 2, 0, 0, 1, 1, 3, 3, 0, 0},  /* zero kernel */
    };
    for (i = 0; i < (int)(sizeof(bad) / sizeof(bad[0])); i++)
    {
        fill16(out, 64, SENTINEL);
        st = qv_convolve_HWC_q15_basic_nonsquare(in, (uint16_t)bad[i].X, (uint16_t)bad[i].Y, (uint16_t)bad[i].C, w,
                                                 (uint16_t)bad[i].CO, (uint16_t)bad[i].KX, (uint16_t)bad[i].KY,
                                                 (uint16_t)bad[i].PX, (uint16_t)bad[i].PY, (uint16_t)bad[i].SX,
                                                 (uint16_t)bad[i].SY, bias, (uint16_t)bad[i].bs, (uint16_t)bad[i].os,
                                                 out, (uint16_t)bad[i].OX, (uint16_t)bad[i].OY, bufA, NULL);
        CHECK(st == ARM_MATH_ARGUMENT_ERROR && all16(out, 64, SENTINEL), "qv conv bad case %d: st=%d", i, (int)st);
        st = arm_convolve_HWC_q15_fast_nonsquare(in, (uint16_t)bad[i].X, (uint16_t)bad[i].Y, (uint16_t)bad[i].C, w,
                                                 (uint16_t)bad[i].CO, (uint16_t)bad[i].KX, (uint16_t)bad[i].KY,
                                                 (uint16_t)bad[i].PX, (uint16_t)bad[i].PY, (uint16_t)bad[i].SX,
                                                 (uint16_t)bad[i].SY, bias, (uint16_t)bad[i].bs, (uint16_t)bad[i].os,
                                                 out, (uint16_t)bad[i].OX, (uint16_t)bad[i].OY, bufA, NULL);
        CHECK(st == ARM_MATH_ARGUMENT_ERROR && all16(out, 64, SENTINEL), "fast_nonsquare bad case %d: st=%d", i,
              (int)st);
        if (bad[i].X == bad[i].Y && bad[i].KX == bad[i].KY)
        {
            st = arm_convolve_HWC_q15_basic(in, (uint16_t)bad[i].X, (uint16_t)bad[i].C, w, (uint16_t)bad[i].CO,
                                            (uint16_t)bad[i].KX, (uint16_t)bad[i].PX, (uint16_t)bad[i].SX, bias,
                                            (uint16_t)bad[i].bs, (uint16_t)bad[i].os, out, (uint16_t)bad[i].OX, bufA,
                                            NULL);
            CHECK(st == ARM_MATH_ARGUMENT_ERROR && all16(out, 64, SENTINEL), "basic bad case %d: st=%d", i, (int)st);
            st = arm_convolve_HWC_q15_fast(in, (uint16_t)bad[i].X, (uint16_t)bad[i].C, w, (uint16_t)bad[i].CO,
                                           (uint16_t)bad[i].KX, (uint16_t)bad[i].PX, (uint16_t)bad[i].SX, bias,
                                           (uint16_t)bad[i].bs, (uint16_t)bad[i].os, out, (uint16_t)bad[i].OX, bufA,
                                           NULL);
            CHECK(st == ARM_MATH_ARGUMENT_ERROR && all16(out, 64, SENTINEL), "fast bad case %d: st=%d", i, (int)st);
        }
    }
    /* parity is checked first: odd channels + bad stride is a size mismatch */
    st = arm_convolve_HWC_q15_fast(in, 4, 3, w, 2, 2, 0, 0, bias, 0, 0, out, 3, bufA, NULL);
    CHECK(st == ARM_MATH_SIZE_MISMATCH, "fast odd ch_in: st=%d", (int)st);
    st = arm_convolve_HWC_q15_fast(in, 4, 2, w, 3, 2, 0, 1, bias, 0, 0, out, 3, bufA, NULL);
    CHECK(st == ARM_MATH_SIZE_MISMATCH, "fast odd ch_out: st=%d", (int)st);
    fill16(out, 64, SENTINEL);
    st = arm_fully_connected_q15(in, w, 8, 4, 32, 0, bias, out, NULL);
    CHECK(st == ARM_MATH_ARGUMENT_ERROR && all16(out, 64, SENTINEL), "fc bias shift 32: st=%d", (int)st);
    st = arm_fully_connected_q15(in, w, 8, 4, 0, 32, bias, out, NULL);
    CHECK(st == ARM_MATH_ARGUMENT_ERROR && all16(out, 64, SENTINEL), "fc out shift 32: st=%d", (int)st);
}

#if defined(QV_HOST_SIMD)
/* ------------------------------------------------------------------ */
/* host SIMD convolution (the "fast" build)                            */
/* ------------------------------------------------------------------ */

#define HOST_GUARD 64 /* sentinel words after the output: a 16-channel store past out_c lands here */

/* The qv_host_conv_q15 call in progress (geometry, level, ...), "" between calls.  A sanitizer
 * abort inside the call prints it (host_death_callback), a CHECK failure after it prints it too. */
static char g_host_case[256] = "";
static int g_in_host_conv = 0;

#if defined(HOST_DEATH_CALLBACK)
static void host_death_callback(void)
{
    fflush(stdout);
    if (g_in_host_conv)
        fprintf(stderr, "test_kernels: sanitizer abort inside qv_host_conv_q15 %s\n", g_host_case);
}
#endif

static const char *simd_name(int32_t level)
{
    return level == QV_SIMD_AVX512 ? "avx512" : (level == QV_SIMD_AVX2 ? "avx2" : "none");
}

/* Geometry wider than rand_conv_geo's: long 1-D signals (W = 1) half the time, small 2-D images
 * otherwise; channel counts around the 16-lane block and the pair boundaries. */
static void rand_host_conv_geo(conv_geo_t *g)
{
    static const int in_chans[] = {1, 2, 3, 5, 8, 16, 17, 32, 40};
    static const int out_chans[] = {1, 3, 7, 15, 16, 17, 31, 33, 48, 64};
    if (rnd(0, 1))
    {
        /* W = 1, kernel width 1: windows span whole rows, read straight from the input where they fit */
        g->X = 1;
        g->KX = 1;
        g->PX = 0;
        g->SX = 1;
        g->Y = rnd(20, 300);
        g->KY = rnd(1, 11);
        g->PY = rnd(0, g->KY - 1);
        g->SY = rnd(1, 3);
        g->bs = rand_bias_shift();
        g->os = rand_out_shift();
    }
    else
    {
        rand_conv_geo(g, rnd(0, 3) == 0);
        if (rnd(0, 3) == 0)
        {
            /* kernel as wide as the image, no x padding: whole-row windows in 2-D */
            g->PX = 0;
            g->KX = g->X;
        }
    }
    g->C = in_chans[rnd(0, 8)];
    g->CO = out_chans[rnd(0, 9)];
    g->OX = (g->X + 2 * g->PX - g->KX) / g->SX + 1;
    g->OY = (g->Y + 2 * g->PY - g->KY) / g->SY + 1;
}

/* qv_host_conv_q15 on geometry g at every SIMD level the CPU has, against ref_conv (exact).
 * Scratch: exactly qv_host_conv_scratch_words() words ending at the end of its allocation, starting
 * pre words into it (so usually not 64-byte aligned); the pre words and a guard after the output
 * must stay untouched. */
static void host_conv_check(const conv_geo_t *g, int mode, size_t pre)
{
    const size_t n_in = (size_t)g->X * g->Y * g->C;
    const size_t col_len = (size_t)g->KY * g->KX * g->C;
    const size_t n_w = (size_t)g->CO * col_len;
    const size_t n_out = (size_t)g->OX * g->OY * g->CO;
    int16_t *in = alloc16(n_in), *w = alloc16(n_w), *bias = alloc16((size_t)g->CO);
    int16_t *expect = alloc16(n_out), *out = alloc16(n_out + HOST_GUARD);
    int16_t *raw, *scratch;
    size_t words;
    qv_op_t op;
    int32_t cpu, level, st;
    long d;

    rand_data(in, n_in, mode);
    rand_data(w, n_w, mode == 1 ? (rnd(0, 1) ? 0 : 1) : mode);
    rand_data(bias, (size_t)g->CO, rnd(0, 2));
    ref_conv(g, in, w, bias, expect);

    memset(&op, 0, sizeof(op));
    op.kind = QV_OP_CONV;
    op.in_h = (uint16_t)g->Y;
    op.in_w = (uint16_t)g->X;
    op.in_c = (uint16_t)g->C;
    op.out_h = (uint16_t)g->OY;
    op.out_w = (uint16_t)g->OX;
    op.out_c = (uint16_t)g->CO;
    op.k_h = (uint16_t)g->KY;
    op.k_w = (uint16_t)g->KX;
    op.stride_h = (uint16_t)g->SY;
    op.stride_w = (uint16_t)g->SX;
    op.pad_h = (uint16_t)g->PY;
    op.pad_w = (uint16_t)g->PX;
    op.bias_lshift = (uint16_t)g->bs;
    op.out_rshift = (uint16_t)g->os;
    op.weights = w;
    op.bias = bias;
    words = (size_t)qv_host_conv_scratch_words(&op);
    raw = alloc16(pre + words);
    scratch = raw + pre;

    (void)qv_host_simd_limit(QV_SIMD_AVX512);
    cpu = qv_host_simd_level();
    if (cpu == QV_SIMD_NONE)
    {
        fill16(out, n_out + HOST_GUARD, SENTINEL);
        st = qv_host_conv_q15(&op, in, out, scratch);
        CHECK(st == ARM_MATH_ARGUMENT_ERROR && all16(out, n_out + HOST_GUARD, SENTINEL),
              "qv_host_conv_q15 without AVX2: st=%d (want -1), output untouched=%d", (int)st,
              all16(out, n_out + HOST_GUARD, SENTINEL));
    }
    for (level = cpu; level >= QV_SIMD_AVX2; level--)
    {
        const int32_t got = qv_host_simd_limit(level);
        CHECK(got == level, "qv_host_simd_limit(%d) = %d", (int)level, (int)got);
        snprintf(g_host_case, sizeof(g_host_case),
                 "level=%s X=%d Y=%d C=%d CO=%d K=%dx%d P=%d,%d S=%d,%d O=%dx%d col_len=%lu bs=%u os=%u mode=%d "
                 "scratch%%64=%u",
                 simd_name(got), g->X, g->Y, g->C, g->CO, g->KX, g->KY, g->PX, g->PY, g->SX, g->SY, g->OX, g->OY,
                 (unsigned long)col_len, g->bs, g->os, mode, (unsigned)((uintptr_t)scratch & 63u));
        fill16(raw, pre + words, SENTINEL); /* stale, non-zero scratch: nothing may rely on zeros there */
        fill16(out, n_out + HOST_GUARD, SENTINEL);
        g_in_host_conv = 1;
        st = qv_host_conv_q15(&op, in, out, scratch);
        g_in_host_conv = 0;
        d = first_diff(out, expect, n_out);
        CHECK(st == ARM_MATH_SUCCESS && d < 0, "qv_host_conv_q15 st=%d diff@%ld (pixel %ld channel %ld: got %d want %d) %s",
              (int)st, d, d >= 0 ? d / g->CO : -1L, d >= 0 ? d % g->CO : -1L, d >= 0 ? out[d] : 0,
              d >= 0 ? expect[d] : 0, g_host_case);
        CHECK(all16(out + n_out, HOST_GUARD, SENTINEL), "qv_host_conv_q15 wrote past the output: %s", g_host_case);
        CHECK(all16(raw, pre, SENTINEL), "qv_host_conv_q15 wrote before its scratch: %s", g_host_case);
    }
    (void)qv_host_simd_limit(QV_SIMD_AVX512);
    g_host_case[0] = '\0';
    free(raw);
    free(in);
    free(w);
    free(bias);
    free(expect);
    free(out);
}

static void test_host_conv_case(void)
{
    conv_geo_t g;
    int mode;
    size_t pre;
    rand_host_conv_geo(&g);
    mode = rand_mode();
    pre = (size_t)rnd(0, 31); /* scratch at any 2-byte offset modulo 64 */
    host_conv_check(&g, mode, pre);
}

/* Fixed edge cases, scratch one int16 past a malloc'd pointer (not 64-byte aligned). */
static void test_host_conv_fixed(void)
{
    static const struct
    {
        int X, Y, C, CO, KX, KY, PX, PY, SX, SY;
        unsigned bs, os;
        int mode;
    } fixed[] = {
        /* 1-D, col_len 15 (odd), 17 channels (a block of 16 + 1), 37 pixels (8k+5, 4k+1), padded ends gathered */
        {1, 37, 3, 17, 1, 5, 0, 2, 1, 1, 4, 12, 0},
        /* 2-D padded, col_len 45 (odd), 33 channels, strides 2,1: every column gathered */
        {5, 4, 5, 33, 3, 3, 1, 1, 2, 1, 0, 15, 0},
        /* 2-D whole-row windows read in place: col_len 36, 7 channels */
        {4, 6, 3, 7, 4, 3, 0, 0, 1, 2, 2, 10, 1},
        /* all QMIN, col_len 187 (odd): the int32 sum wraps (187 * 2^30); 4 full channel blocks */
        {1, 64, 17, 64, 1, 11, 0, 0, 1, 3, 0, 31, 3},
        /* col_len 1: only the lone odd element, one channel, bias << 31 */
        {1, 20, 1, 1, 1, 1, 0, 0, 1, 1, 31, 0, 2},
    };
    int i;
    for (i = 0; i < (int)(sizeof(fixed) / sizeof(fixed[0])); i++)
    {
        conv_geo_t g;
        g.X = fixed[i].X;
        g.Y = fixed[i].Y;
        g.C = fixed[i].C;
        g.CO = fixed[i].CO;
        g.KX = fixed[i].KX;
        g.KY = fixed[i].KY;
        g.PX = fixed[i].PX;
        g.PY = fixed[i].PY;
        g.SX = fixed[i].SX;
        g.SY = fixed[i].SY;
        g.OX = (g.X + 2 * g.PX - g.KX) / g.SX + 1;
        g.OY = (g.Y + 2 * g.PY - g.KY) / g.SY + 1;
        g.bs = fixed[i].bs;
        g.os = fixed[i].os;
        host_conv_check(&g, fixed[i].mode, 1);
    }
}
#endif /* QV_HOST_SIMD */

/* ------------------------------------------------------------------ */
/* fully connected, relu                                               */
/* ------------------------------------------------------------------ */

static void test_fc_case(void)
{
    const int dim = rnd(0, 9) == 0 ? rnd(0, 3) : rnd(1, 70);
    const int rows = rnd(1, 17);
    const unsigned bs = rand_bias_shift(), os = rand_out_shift();
    const int mode = rand_mode();
    int16_t *v = alloc16((size_t)dim), *m = alloc16((size_t)dim * rows), *bias = alloc16((size_t)rows);
    int16_t *expect = alloc16((size_t)rows), *out = alloc16((size_t)rows);
    arm_status st;
    long d;
    rand_data(v, (size_t)dim, mode);
    rand_data(m, (size_t)dim * rows, mode);
    rand_data(bias, (size_t)rows, rnd(0, 2));
    ref_fc(v, m, dim, rows, bs, os, bias, expect);
    fill16(out, (size_t)rows, SENTINEL);
    st = arm_fully_connected_q15(v, m, (uint16_t)dim, (uint16_t)rows, (uint16_t)bs, (uint16_t)os, bias, out, NULL);
    d = first_diff(out, expect, (size_t)rows);
    CHECK(st == ARM_MATH_SUCCESS && d < 0, "arm_fully_connected_q15 dim=%d rows=%d bs=%u os=%u mode=%d st=%d diff@%ld",
          dim, rows, bs, os, mode, (int)st, d);
    free(v);
    free(m);
    free(bias);
    free(expect);
    free(out);
}

/* The other fully-connected functions: arm_fully_connected_q15_opt (q15, "q15x4" order), and
 * arm_fully_connected_mat_q7_vec_q15 (q7 weights and bias, [rows][dim]) and its _opt ("q7x4" order). */
enum
{
    FC_Q15_OPT = 0,
    FC_Q7 = 1,
    FC_Q7_OPT = 2
};

static const char *const g_fc_names[] = {"arm_fully_connected_q15_opt", "arm_fully_connected_mat_q7_vec_q15",
                                         "arm_fully_connected_mat_q7_vec_q15_opt"};

static int8_t *alloc8(size_t n)
{
    int8_t *p = (int8_t *)malloc(n ? n : 1);
    if (p == NULL)
    {
        printf("out of memory\n");
        exit(2);
    }
    return p;
}

/* q7 data, the modes of rand_data: 0 full range, 1 small, 2 extremes {-128, 127, 0}, 3 all -128. */
static void rand_q7(int8_t *p, size_t n, int mode)
{
    size_t i;
    for (i = 0; i < n; i++)
    {
        const int32_t r = rnd(0, 2);
        p[i] = (int8_t)(mode == 0 ? rnd(-128, 127)
                                  : (mode == 1 ? rnd(-8, 8) : (mode == 2 ? (r == 0 ? -128 : (r == 1 ? 127 : 0)) : -128)));
    }
}

/* idx[n]: the row-major index of the n-th weight an _opt function reads (Arm's documented orders): rows in
 * groups of four r0..r3, per column pair k
 *   q15x4: r0[2k] r0[2k+1] r1[2k] r1[2k+1] r2[2k] r2[2k+1] r3[2k] r3[2k+1]
 *   q7x4:  r0[2k] r1[2k] r0[2k+1] r1[2k+1] r2[2k] r3[2k] r2[2k+1] r3[2k+1]
 * then for an odd dim the last column r0..r3; the rows % 4 rows left over row-major. */
static void fc_order(int q7x4, int rows, int dim, size_t *idx)
{
    static const int q15_r[8] = {0, 0, 1, 1, 2, 2, 3, 3}, q15_c[8] = {0, 1, 0, 1, 0, 1, 0, 1};
    static const int q7_r[8] = {0, 1, 0, 1, 2, 3, 2, 3}, q7_c[8] = {0, 0, 1, 1, 0, 0, 1, 1};
    const int *rr = q7x4 ? q7_r : q15_r, *cc = q7x4 ? q7_c : q15_c;
    const int full = rows - rows % 4;
    size_t n = 0;
    int g, k, j, r;
    for (g = 0; g < full; g += 4)
    {
        for (k = 0; k < dim / 2; k++)
            for (j = 0; j < 8; j++)
                idx[n++] = (size_t)(g + rr[j]) * dim + 2 * k + cc[j];
        if (dim % 2)
            for (r = 0; r < 4; r++)
                idx[n++] = (size_t)(g + r) * dim + dim - 1;
    }
    for (r = full; r < rows; r++)
        for (k = 0; k < dim; k++)
            idx[n++] = (size_t)r * dim + k;
}

/* One call of function fn (FC_*) against ref_fc; mode: the data mode (rand_data / rand_q7). */
static void fc_variant_check(int fn, int dim, int rows, unsigned bs, unsigned os, int mode)
{
    const size_t n = (size_t)dim * rows;
    int16_t *v = alloc16((size_t)dim), *m = alloc16(n), *bias = alloc16((size_t)rows);
    int16_t *expect = alloc16((size_t)rows), *out = alloc16((size_t)rows), *m16 = alloc16(n);
    int8_t *m8 = alloc8(n), *bias8 = alloc8((size_t)rows);
    size_t *idx = (size_t *)malloc((n ? n : 1) * sizeof(size_t));
    size_t i;
    arm_status st;
    long d;
    if (idx == NULL)
    {
        printf("out of memory\n");
        exit(2);
    }
    rand_data(v, (size_t)dim, mode);
    if (fn == FC_Q15_OPT)
    {
        rand_data(m, n, mode);
        rand_data(bias, (size_t)rows, rnd(0, 2));
    }
    else
    {
        rand_q7(m8, n, mode);
        rand_q7(bias8, (size_t)rows, rnd(0, 2));
        for (i = 0; i < n; i++)
            m[i] = m8[i];
        for (i = 0; (int)i < rows; i++)
            bias[i] = bias8[i];
    }
    ref_fc(v, m, dim, rows, bs, os, bias, expect);
    if (fn == FC_Q7)
    {
        for (i = 0; i < n; i++)
            idx[i] = i;
    }
    else
    {
        fc_order(fn == FC_Q7_OPT, rows, dim, idx);
    }
    for (i = 0; i < n; i++)
    {
        m16[i] = m[idx[i]];
        m8[i] = (int8_t)m[idx[i]];
    }
    fill16(out, (size_t)rows, SENTINEL);
    if (fn == FC_Q15_OPT)
        st = arm_fully_connected_q15_opt(v, m16, (uint16_t)dim, (uint16_t)rows, (uint16_t)bs, (uint16_t)os, bias, out,
                                         NULL);
    else if (fn == FC_Q7)
        st = arm_fully_connected_mat_q7_vec_q15(v, m8, (uint16_t)dim, (uint16_t)rows, (uint16_t)bs, (uint16_t)os, bias8,
                                                out, NULL);
    else
        st = arm_fully_connected_mat_q7_vec_q15_opt(v, m8, (uint16_t)dim, (uint16_t)rows, (uint16_t)bs, (uint16_t)os,
                                                    bias8, out, NULL);
    d = first_diff(out, expect, (size_t)rows);
    CHECK(st == ARM_MATH_SUCCESS && d < 0, "%s dim=%d rows=%d bs=%u os=%u mode=%d st=%d diff@%ld", g_fc_names[fn], dim,
          rows, bs, os, mode, (int)st, d);
    free(v);
    free(m);
    free(bias);
    free(expect);
    free(out);
    free(m16);
    free(m8);
    free(bias8);
    free(idx);
}

static void test_fc_variants_case(void)
{
    const int dim = rnd(0, 9) == 0 ? rnd(0, 3) : rnd(1, 70);
    const int rows = rnd(1, 17);
    const unsigned bs = rand_bias_shift(), os = rand_out_shift();
    const int mode = rand_mode();
    int fn;
    for (fn = FC_Q15_OPT; fn <= FC_Q7_OPT; fn++)
        fc_variant_check(fn, dim, rows, bs, os, mode);
}

/* Fixed cases: every rows % 4 with odd and even dims, the int32 accumulator wrapping (all QMIN / -128 data:
 * 2^30 and 2^22 per product), the documented example orders, and shifts above 31 refused untouched. */
static void test_fc_variants_fixed(void)
{
    static const int16_t a6x3[18] = {11, 12, 21, 22, 31, 32, 41, 42, 13, 23, 33, 43, 51, 52, 53, 61, 62, 63};
    static const int16_t a4x7[28] = {11, 21, 12, 22, 31, 41, 32, 42, 13, 23, 14, 24, 33, 43,
                                     34, 44, 15, 25, 16, 26, 35, 45, 36, 46, 17, 27, 37, 47};
    size_t idx[28];
    int16_t in[64], w[256], bias[8], out[64];
    int8_t w8[256], bias8[8];
    arm_status st;
    int fn, rows, dim, i, ok;

    fc_order(0, 6, 3, idx);
    for (i = 0, ok = 1; i < 18; i++)
        ok &= (int)idx[i] == (a6x3[i] / 10 - 1) * 3 + a6x3[i] % 10 - 1;
    CHECK(ok, "q15x4 order of Arm's 6 x 3 example");
    fc_order(1, 4, 7, idx);
    for (i = 0, ok = 1; i < 28; i++)
        ok &= (int)idx[i] == (a4x7[i] / 10 - 1) * 7 + a4x7[i] % 10 - 1;
    CHECK(ok, "q7x4 order of Arm's 4 x 7 example");

    for (fn = FC_Q15_OPT; fn <= FC_Q7_OPT; fn++)
    {
        for (rows = 1; rows <= 13; rows++)
            for (dim = 1; dim <= 5; dim++)
                fc_variant_check(fn, dim, rows, rand_bias_shift(), rand_out_shift(), rand_mode());
        fc_variant_check(fn, fn == FC_Q15_OPT ? 9 : 777, 7, 0, 0, 3); /* beyond 2^31: wraps */
        fc_variant_check(fn, fn == FC_Q15_OPT ? 9 : 777, 7, 0, 16, 3);
    }

    for (i = 0; i < 64; i++)
        in[i] = (int16_t)i;
    for (i = 0; i < 256; i++)
        w[i] = 1, w8[i] = 1;
    for (i = 0; i < 8; i++)
        bias[i] = 0, bias8[i] = 0;
    fill16(out, 64, SENTINEL);
    st = arm_fully_connected_q15_opt(in, w, 8, 5, 32, 0, bias, out, NULL);
    CHECK(st == ARM_MATH_ARGUMENT_ERROR && all16(out, 64, SENTINEL), "fc_q15_opt bias shift 32: st=%d", (int)st);
    st = arm_fully_connected_q15_opt(in, w, 8, 5, 0, 32, bias, out, NULL);
    CHECK(st == ARM_MATH_ARGUMENT_ERROR && all16(out, 64, SENTINEL), "fc_q15_opt out shift 32: st=%d", (int)st);
    st = arm_fully_connected_mat_q7_vec_q15(in, w8, 8, 5, 32, 0, bias8, out, NULL);
    CHECK(st == ARM_MATH_ARGUMENT_ERROR && all16(out, 64, SENTINEL), "fc_q7 bias shift 32: st=%d", (int)st);
    st = arm_fully_connected_mat_q7_vec_q15(in, w8, 8, 5, 0, 32, bias8, out, NULL);
    CHECK(st == ARM_MATH_ARGUMENT_ERROR && all16(out, 64, SENTINEL), "fc_q7 out shift 32: st=%d", (int)st);
    st = arm_fully_connected_mat_q7_vec_q15_opt(in, w8, 8, 5, 32, 0, bias8, out, NULL);
    CHECK(st == ARM_MATH_ARGUMENT_ERROR && all16(out, 64, SENTINEL), "fc_q7_opt bias shift 32: st=%d", (int)st);
    st = arm_fully_connected_mat_q7_vec_q15_opt(in, w8, 8, 5, 0, 32, bias8, out, NULL);
    CHECK(st == ARM_MATH_ARGUMENT_ERROR && all16(out, 64, SENTINEL), "fc_q7_opt out shift 32: st=%d", (int)st);
}

static void test_relu_case(size_t n)
{
    int16_t *data = alloc16(n), *expect = alloc16(n);
    long d;
    rand_data(data, n, rand_mode() == 1 ? 1 : 0);
    ref_relu(data, expect, n);
    arm_relu_q15(data, (uint16_t)n);
    d = first_diff(data, expect, n);
    CHECK(d < 0, "arm_relu_q15 n=%lu diff@%ld", (unsigned long)n, d);
    free(data);
    free(expect);
}

/* qv_relu6_q15: min(max(x, 0), bound), in place; a negative bound acts as 0. */
static void test_relu6_case(size_t n)
{
    int16_t *data = alloc16(n ? n : 1), *expect = alloc16(n ? n : 1);
    const int16_t bound = (int16_t)(rnd(0, 3) == 0 ? rnd(-3, 2) : (rnd(0, 1) ? 32767 : rnd(0, 32767)));
    const int16_t hi = bound < 0 ? 0 : bound;
    size_t i;
    long d;
    rand_data(data, n, rand_mode() == 1 ? 1 : 0);
    for (i = 0; i < n; i++)
        expect[i] = data[i] < 0 ? 0 : (data[i] > hi ? hi : data[i]);
    qv_relu6_q15(data, (uint32_t)n, bound);
    d = first_diff(data, expect, n);
    CHECK(d < 0, "qv_relu6_q15 n=%lu bound=%d diff@%ld", (unsigned long)n, bound, d);
    free(data);
    free(expect);
}

/* ------------------------------------------------------------------ */
/* pooling                                                             */
/* ------------------------------------------------------------------ */

static void test_pool_case(void)
{
    const int X = rnd(1, 12), Y = rnd(1, 12);
    const int C = rnd(0, 7) == 0 ? rnd(60, 140) : rnd(1, 9);
    const int KX = rnd(1, X < 4 ? X : 4), KY = rnd(1, Y < 4 ? Y : 4);
    const int SX = rnd(0, 2) ? KX : rnd(1, 3), SY = rnd(0, 2) ? KY : rnd(1, 3);
    const int OX = (X - KX) / SX + 1, OY = (Y - KY) / SY + 1;
    const size_t n_in = (size_t)X * Y * C, n_out = (size_t)OX * OY * C;
    const int mode = rand_mode();
    int16_t *in = alloc16(n_in), *expect = alloc16(n_out), *out = alloc16(n_out);
    arm_status st;
    long d;
    rand_data(in, n_in, mode);

    ref_pool(0, in, X, Y, C, KX, KY, SX, SY, OX, OY, expect);
    st = qv_maxpool_q15_HWC_nonsquare(in, (uint16_t)X, (uint16_t)Y, (uint16_t)C, (uint16_t)KX, (uint16_t)KY,
                                      (uint16_t)SX, (uint16_t)SY, (uint16_t)OX, (uint16_t)OY, out);
    d = first_diff(out, expect, n_out);
    CHECK(st == ARM_MATH_SUCCESS && d < 0, "qv_maxpool X=%d Y=%d C=%d K=%dx%d S=%d,%d st=%d diff@%ld", X, Y, C, KX, KY,
          SX, SY, (int)st, d);

    ref_pool(1, in, X, Y, C, KX, KY, SX, SY, OX, OY, expect);
    st = qv_avepool_q15_HWC_nonsquare(in, (uint16_t)X, (uint16_t)Y, (uint16_t)C, (uint16_t)KX, (uint16_t)KY,
                                      (uint16_t)SX, (uint16_t)SY, (uint16_t)OX, (uint16_t)OY, out);
    d = first_diff(out, expect, n_out);
    CHECK(st == ARM_MATH_SUCCESS && d < 0, "qv_avepool X=%d Y=%d C=%d K=%dx%d S=%d,%d st=%d diff@%ld", X, Y, C, KX, KY,
          SX, SY, (int)st, d);

    /* one more output column than fits: the window would leave the image */
    fill16(out, n_out, SENTINEL);
    st = qv_maxpool_q15_HWC_nonsquare(in, (uint16_t)X, (uint16_t)Y, (uint16_t)C, (uint16_t)KX, (uint16_t)KY,
                                      (uint16_t)SX, (uint16_t)SY, (uint16_t)(OX + 1), (uint16_t)OY, out);
    CHECK(st == ARM_MATH_ARGUMENT_ERROR && all16(out, n_out, SENTINEL), "qv_maxpool too many outputs: st=%d", (int)st);
    st = qv_avepool_q15_HWC_nonsquare(in, (uint16_t)X, (uint16_t)Y, (uint16_t)C, (uint16_t)KX, (uint16_t)KY,
                                      (uint16_t)SX, (uint16_t)SY, (uint16_t)OX, (uint16_t)(OY + 1), out);
    CHECK(st == ARM_MATH_ARGUMENT_ERROR && all16(out, n_out, SENTINEL), "qv_avepool too many outputs: st=%d", (int)st);
    free(in);
    free(expect);
    free(out);
}

static void test_gap_case(int X, int Y, int C, int mode)
{
    const size_t n_in = (size_t)X * Y * C;
    int16_t *in = alloc16(n_in), *expect = alloc16((size_t)C), *out = alloc16((size_t)C);
    arm_status st;
    long d;
    if (mode == 4)
        fill16(in, n_in, (int16_t)QMAX);
    else
        rand_data(in, n_in, mode);
    ref_gap(in, X, Y, C, expect);
    st = qv_global_avepool_q15_HWC(in, (uint16_t)X, (uint16_t)Y, (uint16_t)C, out);
    d = first_diff(out, expect, (size_t)C);
    CHECK(st == ARM_MATH_SUCCESS && d < 0, "qv_global_avepool X=%d Y=%d C=%d mode=%d st=%d diff@%ld", X, Y, C, mode,
          (int)st, d);
    free(in);
    free(expect);
    free(out);
}

static void test_pool_argument_errors(void)
{
    int16_t in[64], out[64];
    arm_status st;
    fill16(in, 64, 1);
    fill16(out, 64, SENTINEL);
    st = qv_maxpool_q15_HWC_nonsquare(in, 4, 4, 2, 2, 2, 0, 2, 2, 2, out);
    CHECK(st == ARM_MATH_ARGUMENT_ERROR, "maxpool zero stride: %d", (int)st);
    st = qv_maxpool_q15_HWC_nonsquare(in, 4, 4, 2, 5, 2, 1, 1, 1, 3, out);
    CHECK(st == ARM_MATH_ARGUMENT_ERROR, "maxpool kernel > input: %d", (int)st);
    st = qv_avepool_q15_HWC_nonsquare(in, 4, 4, 2, 2, 2, 2, 0, 2, 2, out);
    CHECK(st == ARM_MATH_ARGUMENT_ERROR, "avepool zero stride: %d", (int)st);
    st = qv_avepool_q15_HWC_nonsquare(in, 4, 4, 2, 2, 5, 1, 1, 3, 1, out);
    CHECK(st == ARM_MATH_ARGUMENT_ERROR, "avepool kernel > input: %d", (int)st);
    st = qv_avepool_q15_HWC_nonsquare(in, 4, 4, 0, 2, 2, 2, 2, 2, 2, out);
    CHECK(st == ARM_MATH_ARGUMENT_ERROR, "avepool zero channels: %d", (int)st);
    st = qv_maxpool_q15_HWC_nonsquare(in, 4, 4, 2, 2, 2, 2, 2, 0, 2, out);
    CHECK(st == ARM_MATH_ARGUMENT_ERROR, "maxpool zero output: %d", (int)st);
    st = qv_global_avepool_q15_HWC(in, 0, 4, 2, out);
    CHECK(st == ARM_MATH_ARGUMENT_ERROR, "gap zero width: %d", (int)st);
    st = qv_global_avepool_q15_HWC(in, 4, 4, 0, out);
    CHECK(st == ARM_MATH_ARGUMENT_ERROR, "gap zero channels: %d", (int)st);
    CHECK(all16(out, 64, SENTINEL), "pool errors must not write");
}

/* ------------------------------------------------------------------ */
/* runner                                                              */
/* ------------------------------------------------------------------ */

#define MAX_OPS 8

typedef struct
{
    qv_op_t ops[MAX_OPS];
    int n;
    int16_t *w[MAX_OPS];
    int16_t *b[MAX_OPS];
} net_t;

static size_t op_in_n(const qv_op_t *op) { return (size_t)op->in_h * op->in_w * op->in_c; }
static size_t op_out_n(const qv_op_t *op) { return (size_t)op->out_h * op->out_w * op->out_c; }

static qv_op_t *net_add(net_t *net, int kind, int h, int w, int c)
{
    qv_op_t *op = &net->ops[net->n];
    memset(op, 0, sizeof(*op));
    net->w[net->n] = NULL;
    net->b[net->n] = NULL;
    op->kind = kind;
    op->in_h = (uint16_t)h;
    op->in_w = (uint16_t)w;
    op->in_c = (uint16_t)c;
    net->n++;
    return op;
}

static void net_conv(net_t *net, int *h, int *w, int *c, int co)
{
    qv_op_t *op = net_add(net, QV_OP_CONV, *h, *w, *c);
    const int i = net->n - 1;
    size_t nw;
    op->pad_h = (uint16_t)rnd(0, 1);
    op->pad_w = (uint16_t)(rnd(0, 2) ? op->pad_h : rnd(0, 1));
    op->k_h = (uint16_t)rnd(1, (*h + 2 * op->pad_h) < 3 ? (*h + 2 * op->pad_h) : 3);
    op->k_w = (uint16_t)(rnd(0, 2) ? (op->k_h <= *w + 2 * op->pad_w ? op->k_h : 1)
                                   : rnd(1, (*w + 2 * op->pad_w) < 3 ? (*w + 2 * op->pad_w) : 3));
    op->stride_h = (uint16_t)rnd(1, 2);
    op->stride_w = (uint16_t)(rnd(0, 2) ? op->stride_h : rnd(1, 2));
    op->out_h = (uint16_t)((*h + 2 * op->pad_h - op->k_h) / op->stride_h + 1);
    op->out_w = (uint16_t)((*w + 2 * op->pad_w - op->k_w) / op->stride_w + 1);
    op->out_c = (uint16_t)co;
    op->bias_lshift = (uint16_t)rnd(0, 6);
    op->out_rshift = (uint16_t)rnd(0, 3) == 0 ? (uint16_t)rand_out_shift() : (uint16_t)rnd(10, 16);
    nw = (size_t)co * op->k_h * op->k_w * *c;
    net->w[i] = alloc16(nw);
    net->b[i] = alloc16((size_t)co);
    rand_data(net->w[i], nw, rnd(0, 4) ? 0 : 2);
    rand_data(net->b[i], (size_t)co, 0);
    op->weights = net->w[i];
    op->bias = net->b[i];
    *h = op->out_h;
    *w = op->out_w;
    *c = co;
}

static void net_simple(net_t *net, int kind, int h, int w, int c)
{
    qv_op_t *op = net_add(net, kind, h, w, c);
    op->out_h = (uint16_t)h;
    op->out_w = (uint16_t)w;
    op->out_c = (uint16_t)c;
}

static void net_pool(net_t *net, int kind, int *h, int *w, int c)
{
    qv_op_t *op = net_add(net, kind, *h, *w, c);
    op->k_h = (uint16_t)rnd(1, *h < 3 ? *h : 3);
    op->k_w = (uint16_t)rnd(1, *w < 3 ? *w : 3);
    op->stride_h = (uint16_t)(rnd(0, 2) ? op->k_h : rnd(1, 2));
    op->stride_w = (uint16_t)(rnd(0, 2) ? op->k_w : rnd(1, 2));
    op->out_h = (uint16_t)((*h - op->k_h) / op->stride_h + 1);
    op->out_w = (uint16_t)((*w - op->k_w) / op->stride_w + 1);
    op->out_c = (uint16_t)c;
    *h = op->out_h;
    *w = op->out_w;
}

static void net_free(net_t *net)
{
    int i;
    for (i = 0; i < net->n; i++)
    {
        free(net->w[i]);
        free(net->b[i]);
    }
    net->n = 0;
}

static void ref_op(const qv_op_t *op, const int16_t *in, int16_t *out)
{
    switch (op->kind)
    {
    case QV_OP_CONV:
    {
        conv_geo_t g;
        g.X = op->in_w;
        g.Y = op->in_h;
        g.C = op->in_c;
        g.CO = op->out_c;
        g.KX = op->k_w;
        g.KY = op->k_h;
        g.PX = op->pad_w;
        g.PY = op->pad_h;
        g.SX = op->stride_w;
        g.SY = op->stride_h;
        g.OX = op->out_w;
        g.OY = op->out_h;
        g.bs = op->bias_lshift;
        g.os = op->out_rshift;
        ref_conv(&g, in, op->weights, op->bias, out);
        break;
    }
    case QV_OP_DENSE:
        ref_fc(in, op->weights, (int)op_in_n(op), (int)op_out_n(op), op->bias_lshift, op->out_rshift, op->bias, out);
        break;
    case QV_OP_RELU:
        ref_relu(in, out, op_in_n(op));
        break;
    case QV_OP_MAXPOOL:
    case QV_OP_AVGPOOL:
        ref_pool(op->kind == QV_OP_AVGPOOL, in, op->in_w, op->in_h, op->in_c, op->k_w, op->k_h, op->stride_w,
                 op->stride_h, op->out_w, op->out_h, out);
        break;
    case QV_OP_GAP:
        ref_gap(in, op->in_w, op->in_h, op->in_c, out);
        break;
    default:
        memcpy(out, in, op_in_n(op) * sizeof(int16_t));
        break;
    }
}

/* The function a plan would name for op (qverify/kernels.py chooses; the runner runs what it is given):
 * the fast conv where its contract holds (even channels, even output width), basic for square shapes. */
static int32_t choose_kernel(const qv_op_t *op)
{
    switch (op->kind)
    {
    case QV_OP_CONV:
        if (op->in_c % 2 == 0 && op->out_c % 2 == 0 && op->out_w % 2 == 0)
            return QV_KERNEL_CONV_FAST_NONSQUARE;
        if (op->in_h == op->in_w && op->k_h == op->k_w && op->stride_h == op->stride_w && op->pad_h == op->pad_w)
            return QV_KERNEL_CONV_BASIC;
        return QV_KERNEL_CONV_BASIC_NONSQUARE;
    case QV_OP_DENSE:
        return QV_KERNEL_FULLY_CONNECTED;
    case QV_OP_RELU:
        return QV_KERNEL_RELU;
    case QV_OP_MAXPOOL:
        return QV_KERNEL_MAXPOOL;
    case QV_OP_AVGPOOL:
        return QV_KERNEL_AVEPOOL;
    case QV_OP_GAP:
        return QV_KERNEL_GLOBAL_AVEPOOL;
    default:
        return QV_KERNEL_COPY;
    }
}

static void choose_kernels(net_t *net)
{
    int i;
    for (i = 0; i < net->n; i++)
        net->ops[i].kernel = choose_kernel(&net->ops[i]);
}

/* What qv_run reports running: the op's function, or the host conv for every conv in the fast build. */
static int32_t expected_kernel(const qv_op_t *op)
{
#if defined(QV_HOST_SIMD)
    if (op->kind == QV_OP_CONV && qv_host_simd_level() != QV_SIMD_NONE)
        return QV_KERNEL_HOST_CONV;
#endif
    return op->kernel;
}

/* Run the net on n_samples random samples; compare every op's output with the reference. */
static void check_net(net_t *net, int n_samples, int with_all_outputs)
{
    const size_t in_n = op_in_n(&net->ops[0]);
    int16_t *input = alloc16(in_n * (size_t)n_samples);
    int16_t *outputs[MAX_OPS];
    int16_t *expect[MAX_OPS];
    int32_t kernels[MAX_OPS];
    qv_run_info_t info;
    uint32_t words = qv_scratch_words(net->ops, net->n);
    int16_t *scratch = alloc16(words);
    int32_t st;
    int i, s;
    const int mode = rand_mode();

    choose_kernels(net);
    rand_data(input, in_n * (size_t)n_samples, mode == 3 ? 0 : mode);
    for (i = 0; i < net->n; i++)
    {
        const size_t on = op_out_n(&net->ops[i]) * (size_t)n_samples;
        expect[i] = alloc16(on);
        outputs[i] = (with_all_outputs || i == net->n - 1 || rnd(0, 1)) ? alloc16(on + QV_GUARD_WORDS) : NULL;
        if (outputs[i] != NULL)
            fill16(outputs[i], on, SENTINEL);
    }
    for (s = 0; s < n_samples; s++)
    {
        const int16_t *src = input + (size_t)s * in_n;
        for (i = 0; i < net->n; i++)
        {
            int16_t *dst = expect[i] + (size_t)s * op_out_n(&net->ops[i]);
            ref_op(&net->ops[i], src, dst);
            src = dst;
        }
    }
    st = qv_run(net->ops, net->n, input, n_samples, outputs, 1, scratch, kernels, &info);
    CHECK(st == ARM_MATH_SUCCESS && info.failed_op == -1, "qv_run status %d failed_op %d", (int)st, (int)info.failed_op);
    for (i = 0; i < net->n; i++)
    {
        const qv_op_t *op = &net->ops[i];
        CHECK(kernels[i] == expected_kernel(op), "qv_run op %d kind %d: kernel %d (%s), want %d", i, (int)op->kind,
              (int)kernels[i], qv_kernel_name(kernels[i]), (int)expected_kernel(op));
        if (outputs[i] != NULL)
        {
            const long d = first_diff(outputs[i], expect[i], op_out_n(op) * (size_t)n_samples);
            CHECK(all16(outputs[i] + op_out_n(op) * (size_t)n_samples, QV_GUARD_WORDS, QV_GUARD_VALUE),
                  "qv_run op %d: the guard words after its output were not set", i);
            CHECK(d < 0,
                  "qv_run op %d kind %d (%s) in %dx%dx%d out %dx%dx%d k %dx%d s %d,%d p %d,%d sh %d,%d: diff@%ld "
                  "(got %d want %d)",
                  i, (int)op->kind, qv_kernel_name(kernels[i]), op->in_h, op->in_w, op->in_c, op->out_h, op->out_w,
                  op->out_c, op->k_h, op->k_w, op->stride_h, op->stride_w, op->pad_h, op->pad_w, op->bias_lshift,
                  op->out_rshift, d, d >= 0 ? outputs[i][d] : 0, d >= 0 ? expect[i][d] : 0);
        }
    }
    for (i = 0; i < net->n; i++)
    {
        free(expect[i]);
        free(outputs[i]);
    }
    free(scratch);
    free(input);
}

static void test_runner_case(void)
{
    net_t net;
    int h = rnd(1, 10), w = rnd(1, 10), c = rnd(1, 4);
    int r;
    net.n = 0;
    if (rnd(0, 3) == 0)
        w = h; /* square inputs pick arm_convolve_HWC_q15_basic for odd channels */
    net_conv(&net, &h, &w, &c, rnd(1, 6));
    net_simple(&net, QV_OP_RELU, h, w, c);
    r = rnd(0, 2);
    if (r == 1)
        net_pool(&net, QV_OP_MAXPOOL, &h, &w, c);
    else if (r == 2)
        net_pool(&net, QV_OP_AVGPOOL, &h, &w, c);
    net_conv(&net, &h, &w, &c, rnd(1, 6));
    if (rnd(0, 1))
    {
        qv_op_t *op;
        net_simple(&net, QV_OP_GAP, h, w, c);
        op = &net.ops[net.n - 1];
        op->out_h = op->out_w = 1;
        h = w = 1;
    }
    else
    {
        qv_op_t *op;
        net_simple(&net, QV_OP_FLATTEN, h, w, c);
        op = &net.ops[net.n - 1];
        op->out_h = op->out_w = 1;
        op->out_c = (uint16_t)(h * w * c);
        c = h * w * c;
        h = w = 1;
    }
    {
        qv_op_t *op = net_add(&net, QV_OP_DENSE, 1, 1, c);
        const int i = net.n - 1;
        const int units = rnd(1, 9);
        op->out_h = op->out_w = 1;
        op->out_c = (uint16_t)units;
        op->bias_lshift = (uint16_t)rnd(0, 8);
        op->out_rshift = (uint16_t)rnd(0, 3) == 0 ? (uint16_t)rand_out_shift() : (uint16_t)rnd(10, 16);
        net.w[i] = alloc16((size_t)units * c);
        net.b[i] = alloc16((size_t)units);
        rand_data(net.w[i], (size_t)units * c, 0);
        rand_data(net.b[i], (size_t)units, 0);
        op->weights = net.w[i];
        op->bias = net.b[i];
    }
    if (rnd(0, 1))
        net_simple(&net, QV_OP_RELU, 1, 1, net.ops[net.n - 1].out_c);
    {
        const int n_samples = rnd(1, 3);
        const int all_outputs = rnd(0, 1);
        check_net(&net, n_samples, all_outputs);
    }
    net_free(&net);
}

static void test_runner_errors(void)
{
    net_t net;
    int h = 5, w = 4, c = 2;
    int16_t input[40];
    int16_t scratch[4096];
    int16_t out0[512]; /* the conv's output: up to 7 x 6 x 2 with padding */
    int16_t *outputs[MAX_OPS] = {out0, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    int32_t kernels[MAX_OPS];
    qv_run_info_t info;
    int32_t st;
    qv_op_t saved;

    fill16(input, 40, 3);
    net.n = 0;
    net_conv(&net, &h, &w, &c, 2);
    net_simple(&net, QV_OP_RELU, h, w, c);
    net_simple(&net, QV_OP_FLATTEN, h, w, c);
    choose_kernels(&net);

    /* a function that cannot compute the op: another kind's, or a square one for a 5x4 image */
    saved = net.ops[0];
    net.ops[0].kernel = QV_KERNEL_RELU;
    st = qv_run(net.ops, net.n, input, 0, outputs, 0, scratch, kernels, &info);
    CHECK(st == ARM_MATH_ARGUMENT_ERROR && info.failed_op == 0, "relu kernel for a conv: st=%d failed=%d", (int)st,
          (int)info.failed_op);
    net.ops[0].kernel = QV_KERNEL_CONV_BASIC;
    st = qv_run(net.ops, net.n, input, 0, outputs, 0, scratch, kernels, &info);
    CHECK(st == ARM_MATH_ARGUMENT_ERROR && info.failed_op == 0, "square kernel for 5x4: st=%d failed=%d", (int)st,
          (int)info.failed_op);
    net.ops[0].flags = QV_CALL_LENGTH_ON_X; /* only for a 1-D conv (W = 1) */
    net.ops[0].kernel = saved.kernel;
    st = qv_run(net.ops, net.n, input, 0, outputs, 0, scratch, kernels, &info);
    CHECK(st == ARM_MATH_ARGUMENT_ERROR && info.failed_op == 0, "length on x for a 2-D conv: st=%d", (int)st);
    net.ops[0] = saved;

    /* zero samples: validates, reports kernels, runs nothing */
        st = qv_run(net.ops, net.n, input, 0, outputs, 0, scratch, kernels, &info);
    CHECK(st == ARM_MATH_SUCCESS && info.failed_op == -1 && kernels[0] == expected_kernel(&net.ops[0]) &&
              kernels[2] == QV_KERNEL_COPY,
          "qv_run with 0 samples: st=%d failed=%d", (int)st, (int)info.failed_op);

    /* chain mismatch on op 2 */
    saved = net.ops[2];
    net.ops[2].in_c = (uint16_t)(net.ops[2].in_c + 1);
    net.ops[2].out_c = net.ops[2].in_c;
    st = qv_run(net.ops, net.n, input, 1, outputs, 0, scratch, kernels, &info);
    CHECK(st == ARM_MATH_LENGTH_ERROR && info.failed_op == 2, "chain mismatch: st=%d failed=%d", (int)st, (int)info.failed_op);
    net.ops[2] = saved;

    /* conv output dims that do not follow from the geometry (+1 may be TensorFlow's 'same' split: +2 never is) */
    saved = net.ops[0];
    net.ops[0].out_h = (uint16_t)(net.ops[0].out_h + 2);
    net.ops[1].in_h = net.ops[1].out_h = net.ops[0].out_h;
    net.ops[2].in_h = net.ops[2].out_h = net.ops[0].out_h;
    fill16(out0, 512, SENTINEL);
    st = qv_run(net.ops, net.n, input, 1, outputs, 0, scratch, kernels, &info);
    CHECK(st == ARM_MATH_ARGUMENT_ERROR && info.failed_op == 0 && all16(out0, 512, SENTINEL), "bad conv dims: st=%d failed=%d",
          (int)st, (int)info.failed_op);
    net.ops[0] = saved;
    net.ops[1].in_h = net.ops[1].out_h = saved.out_h;
    net.ops[2].in_h = net.ops[2].out_h = saved.out_h;

    /* shift 32 */
    net.ops[0].out_rshift = 32;
    st = qv_run(net.ops, net.n, input, 1, outputs, 0, scratch, kernels, &info);
    CHECK(st == ARM_MATH_ARGUMENT_ERROR && info.failed_op == 0, "shift 32: st=%d failed=%d", (int)st, (int)info.failed_op);
    net.ops[0].out_rshift = 8;

    /* unknown kind */
    net.ops[1].kind = 42;
    st = qv_run(net.ops, net.n, input, 1, outputs, 0, scratch, kernels, &info);
    CHECK(st == ARM_MATH_ARGUMENT_ERROR && info.failed_op == 1 && kernels[1] == QV_KERNEL_NONE, "unknown kind: st=%d failed=%d",
          (int)st, (int)info.failed_op);
    net.ops[1].kind = QV_OP_RELU;

    /* everything valid again */
    st = qv_run(net.ops, net.n, input, 1, outputs, 0, scratch, kernels, &info);
    CHECK(st == ARM_MATH_SUCCESS && info.failed_op == -1, "restored net: st=%d failed=%d buffer %d bytes %u", (int)st,
          (int)info.failed_op, (int)info.buffer, (unsigned)info.bytes);

    /* no ops / no scratch */
    st = qv_run(net.ops, 0, input, 1, outputs, 0, scratch, kernels, &info);
    CHECK(st == ARM_MATH_ARGUMENT_ERROR && info.failed_op == -1, "n_ops 0: st=%d", (int)st);
    st = qv_run(net.ops, net.n, input, 1, outputs, 0, NULL, kernels, &info);
    CHECK(st == ARM_MATH_ARGUMENT_ERROR, "NULL scratch: st=%d", (int)st);
    CHECK(qv_scratch_words(net.ops, 0) == 0, "scratch words for no ops");
    CHECK(strcmp(qv_kernel_name(QV_KERNEL_CONV_BASIC), "arm_convolve_HWC_q15_basic") == 0 &&
              strcmp(qv_kernel_name(-5), "unknown") == 0,
          "qv_kernel_name");
    net_free(&net);
}

/* ReLU over more than 65535 values goes through arm_relu_q15 in chunks. */
static void test_runner_big_relu(void)
{
    net_t net;
    net.n = 0;
    net_simple(&net, QV_OP_RELU, 2, 2, 40000);
    net_simple(&net, QV_OP_FLATTEN, 2, 2, 40000);
    check_net(&net, 1, 1);
    net_free(&net);
}

/* ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    const int cases = argc > 1 ? atoi(argv[1]) : 2000;
    const unsigned long long seed = argc > 2 ? strtoull(argv[2], NULL, 0) : 20240611ULL;
    int i;

    g_rng = seed;
#if defined(HOST_DEATH_CALLBACK)
    __sanitizer_set_death_callback(host_death_callback);
#endif
    printf("test_kernels: %s, %d cases per group, seed %llu\n", qv_build_info(), cases, seed);

    test_intrinsics(cases * 20);
    for (i = 0; i < cases; i++)
        test_conv_case(0);
    for (i = 0; i < cases; i++)
        test_conv_case(1);
    test_conv_wrap();
    test_conv_argument_errors();
#if defined(QV_HOST_SIMD)
    {
        long wraps;
        test_host_conv_fixed();
        wraps = g_ref_wraps;
        for (i = 0; i < cases; i++)
            test_host_conv_case();
        wraps = g_ref_wraps - wraps;
        printf("test_kernels: qv_host_conv_q15 levels %s: %d random cases + 5 fixed; %ld random outputs wrapped int32\n",
               qv_host_simd_level() == QV_SIMD_AVX512 ? "avx512, avx2"
                                                      : (qv_host_simd_level() == QV_SIMD_AVX2 ? "avx2" : "none"),
               cases, wraps);
        if (cases >= 100)
            CHECK(wraps > 0, "no random host conv case wrapped the int32 accumulator");
    }
#endif
    for (i = 0; i < cases; i++)
        test_fc_case();
    test_fc_variants_fixed();
    for (i = 0; i < cases; i++)
        test_fc_variants_case();
    for (i = 0; i < cases / 4 + 1; i++)
        test_relu_case((size_t)rnd(0, 100));
    test_relu_case(65535);
    for (i = 0; i < cases / 4 + 1; i++)
        test_relu6_case((size_t)rnd(0, 100));
    test_relu6_case(70000);
    for (i = 0; i < cases; i++)
        test_pool_case();
    for (i = 0; i < cases / 2 + 1; i++)
    {
        /* one draw per statement: argument evaluation order is unspecified */
        const int gx = rnd(1, 12);
        const int gy = rnd(1, 12);
        const int gc = rnd(0, 4) == 0 ? rnd(60, 140) : rnd(1, 9);
        test_gap_case(gx, gy, gc, rand_mode());
    }
    test_gap_case(300, 300, 1, 4); /* sum 2.9e9 > INT32_MAX: needs the int64 sum */
    test_pool_argument_errors();
    for (i = 0; i < cases; i++)
        test_runner_case();
#if defined(QV_HOST_SIMD)
    /* the runner once more on the AVX2 path (the loop above ran the CPU's best level) */
    (void)qv_host_simd_limit(QV_SIMD_AVX2);
    for (i = 0; i < cases; i++)
        test_runner_case();
    (void)qv_host_simd_limit(QV_SIMD_AVX512);
#endif
    test_runner_errors();
    test_runner_big_relu();

    printf("test_kernels: %ld passed, %ld failed\n", g_pass, g_fail);
    return g_fail == 0 ? 0 : 1;
}
