/*
 * qverify host fast path: q15 convolution with the output channels across
 * SIMD lanes (see qv_host_conv.h for the contract).
 *
 * Per block of 16 output channels the weights are repacked once per call
 * into pairs, wp[k/2][16][2] = (w[oc][k], w[oc][k+1]), zero for channels
 * past c_out and for the missing partner of an odd patch length.  A pixel's
 * input patch (its "column", [k_y][k_x][c_in]) is read straight from the
 * input when it is contiguous there (windows spanning whole rows inside the
 * image: every 1-D signal) and gathered with qv_im2col_q15 otherwise.  Then
 * for each pair k of the patch, one 32-bit broadcast of (x[k], x[k+1]) and
 * one packed multiply-add per pixel update all 16 channels' accumulators.
 */
#include <stddef.h>
#include <string.h>

#include "arm_nnfunctions.h"
#include "qv_host_conv.h"
#include "qv_intrinsics.h"
#include "qv_support.h"

#define QV_OC_BLOCK 16u /* output channels per pass: one 512-bit vector of int32 */
#define QV_PX_BLOCK 8u  /* pixels per pass (AVX2 uses the first 4) */
#define QV_ALIGN_WORDS 32u

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define QV_HOST_X86 1
#include <immintrin.h>
#else
#define QV_HOST_X86 0
#endif

static int32_t qv_limit = QV_SIMD_AVX512;

static int32_t qv_cpu_level(void)
{
#if QV_HOST_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"))
    {
        return QV_SIMD_AVX512;
    }
    if (__builtin_cpu_supports("avx2"))
    {
        return QV_SIMD_AVX2;
    }
#endif
    return QV_SIMD_NONE;
}

int32_t qv_host_simd_level(void)
{
    const int32_t cpu = qv_cpu_level();
    return (cpu < qv_limit) ? cpu : qv_limit;
}

int32_t qv_host_simd_limit(int32_t max_level)
{
    qv_limit = (max_level < QV_SIMD_NONE) ? QV_SIMD_NONE : max_level;
    return qv_host_simd_level();
}

uint64_t qv_host_conv_scratch_words(const qv_op_t *op)
{
    const uint64_t col_len = (uint64_t)op->k_h * op->k_w * op->in_c;
    return QV_ALIGN_WORDS + ((col_len + 1u) / 2u) * 2u * QV_OC_BLOCK + QV_PX_BLOCK * col_len;
}

#if QV_HOST_X86
/* Geometry of one conv op, as the loops below use it. */
typedef struct
{
    const qv_op_t *op;
    uint32_t col_len; /* k_h * k_w * in_c */
    uint32_t pairs;   /* col_len / 2 (an odd last element is handled on its own) */
    uint32_t n_px;    /* out_h * out_w */
    int32_t round;
    int16_t *wp;      /* packed weights of the current channel block: (col_len + 1) / 2 * 32 words */
    int16_t *cols;    /* QV_PX_BLOCK gathered columns of col_len words */
    int32_t init[QV_OC_BLOCK];
} qv_conv_job;

/* Columns of pixels px .. px+count-1 (count <= n): a pointer into src where the patch is contiguous
 * there (the window spans whole rows inside the image), else gathered into a slot of job->cols; the
 * unused tail repeats the first (computed, never stored). */
static void qv_columns(const qv_conv_job *job, uint32_t px, uint32_t count, uint32_t n, const int16_t *src,
                       const int16_t **col)
{
    const qv_op_t *op = job->op;
    const uint32_t out_w = op->out_w;
    const int32_t k_h = op->k_h;
    const int32_t in_h = op->in_h;
    const int whole_rows = (op->k_w == op->in_w);
    const size_t row = (size_t)op->in_w * op->in_c;
    uint32_t oy = px / out_w;
    uint32_t ox = px % out_w;
    uint32_t p;
    if (whole_rows && (out_w == 1u) && (op->pad_w == 0u))
    {
        /* 1-D signals: every window of the pass inside the image is the common case */
        const int32_t first = (int32_t)(px * op->stride_h) - (int32_t)op->pad_h;
        const int32_t last = first + (int32_t)((count - 1u) * op->stride_h);
        if ((first >= 0) && (last + k_h <= in_h))
        {
            for (p = 0; p < n; p++)
            {
                col[p] = src + (size_t)(first + (int32_t)(((p < count) ? p : 0u) * op->stride_h)) * row;
            }
            return;
        }
    }
    for (p = 0; p < count; p++)
    {
        const int32_t base_y = (int32_t)(oy * op->stride_h) - (int32_t)op->pad_h;
        const int32_t base_x = (int32_t)(ox * op->stride_w) - (int32_t)op->pad_w;
        if (whole_rows && (base_x == 0) && (base_y >= 0) && (base_y + k_h <= in_h))
        {
            col[p] = src + (size_t)base_y * row;
        }
        else
        {
            int16_t *slot = job->cols + (size_t)p * job->col_len;
            qv_im2col_q15(slot, src, op->in_w, op->in_h, op->in_c, op->k_w, op->k_h, base_x, base_y);
            col[p] = slot;
        }
        if (++ox == out_w)
        {
            ox = 0;
            oy++;
        }
    }
    for (; p < n; p++)
    {
        col[p] = col[0];
    }
}

/* Repack channels ob .. ob+15 into job->wp and set their initial accumulators; returns how many are real. */
static uint32_t qv_pack_block(qv_conv_job *job, uint32_t ob)
{
    const qv_op_t *op = job->op;
    const uint32_t n_oc = (op->out_c - ob < QV_OC_BLOCK) ? (uint32_t)(op->out_c - ob) : QV_OC_BLOCK;
    const uint32_t slots = (job->col_len + 1u) / 2u;
    uint32_t k;
    uint32_t j;
    for (k = 0; k < slots; k++)
    {
        int16_t *dst = job->wp + (size_t)k * 2u * QV_OC_BLOCK;
        for (j = 0; j < QV_OC_BLOCK; j++)
        {
            dst[2u * j] = 0;
            dst[2u * j + 1u] = 0;
            if (j < n_oc)
            {
                const int16_t *w = op->weights + (size_t)(ob + j) * job->col_len + 2u * k;
                dst[2u * j] = w[0];
                dst[2u * j + 1u] = (2u * k + 1u < job->col_len) ? w[1] : 0;
            }
        }
    }
    for (j = 0; j < QV_OC_BLOCK; j++)
    {
        job->init[j] = (j < n_oc) ? qv_acc_init(op->bias[ob + j], op->bias_lshift, job->round) : 0;
    }
    return n_oc;
}

/* Element pair (col[at], col[at + 1]) as one 32-bit lane value; with last, col[at] paired with 0 (the
 * end of an odd-length patch). */
static inline int32_t qv_pair(const int16_t *col, uint32_t at, int last)
{
    int32_t v;
    if (last)
    {
        return (int32_t)(uint16_t)col[at];
    }
    memcpy(&v, col + at, sizeof(v));
    return v;
}

#define QV_TARGET_AVX512 __attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni")))
#define QV_TARGET_AVX2 __attribute__((target("avx2")))

/* acc[p] += the pair at `at` of column p times the 16 channels' packed weights wp, for every pixel p */
QV_TARGET_AVX512 static inline void qv_madd_avx512(__m512i *acc, const int16_t *wp, const int16_t *const *col,
                                                   uint32_t at, int last)
{
    const __m512i w = _mm512_load_si512((const void *)wp);
    uint32_t p;
    for (p = 0; p < QV_PX_BLOCK; p++)
    {
        acc[p] = _mm512_dpwssd_epi32(acc[p], _mm512_set1_epi32(qv_pair(col[p], at, last)), w);
    }
}

QV_TARGET_AVX512 static void qv_block_avx512(const qv_conv_job *job, const int16_t *src, int16_t *dst, uint32_t ob,
                                             uint32_t n_oc)
{
    const uint32_t slots = (job->col_len + 1u) / 2u;
    const __m128i shift = _mm_cvtsi32_si128((int)job->op->out_rshift);
    const __m512i init = _mm512_loadu_si512((const void *)job->init);
    const __mmask16 store_mask = (__mmask16)((1u << n_oc) - 1u);
    uint32_t px;
    for (px = 0; px < job->n_px; px += QV_PX_BLOCK)
    {
        const uint32_t count = (job->n_px - px < QV_PX_BLOCK) ? job->n_px - px : QV_PX_BLOCK;
        const int16_t *col[QV_PX_BLOCK];
        __m512i acc[QV_PX_BLOCK];
        uint32_t k;
        uint32_t p;
        qv_columns(job, px, count, QV_PX_BLOCK, src, col);
        for (p = 0; p < QV_PX_BLOCK; p++)
        {
            acc[p] = init;
        }
        for (k = 0; k < job->pairs; k++)
        {
            qv_madd_avx512(acc, job->wp + (size_t)k * 2u * QV_OC_BLOCK, col, 2u * k, 0);
        }
        if (job->pairs < slots)
        {
            qv_madd_avx512(acc, job->wp + (size_t)k * 2u * QV_OC_BLOCK, col, 2u * k, 1);
        }
        for (p = 0; p < QV_PX_BLOCK; p++) /* all of acc[] (constant indices keep it in registers) */
        {
            if (p < count)
            {
                const __m256i out = _mm512_cvtsepi32_epi16(_mm512_sra_epi32(acc[p], shift));
                _mm256_mask_storeu_epi16((void *)(dst + (size_t)(px + p) * job->op->out_c + ob), store_mask, out);
            }
        }
    }
}

#define QV_PX_AVX2 4u

/* The AVX2 step: channels 0-7 in lo, 8-15 in hi (vpmaddwd, then a wrapping vpaddd) */
QV_TARGET_AVX2 static inline void qv_madd_avx2(__m256i *lo, __m256i *hi, const int16_t *wp, const int16_t *const *col,
                                               uint32_t at, int last)
{
    const __m256i w_lo = _mm256_load_si256((const __m256i *)wp);
    const __m256i w_hi = _mm256_load_si256((const __m256i *)(wp + QV_OC_BLOCK));
    uint32_t p;
    for (p = 0; p < QV_PX_AVX2; p++)
    {
        const __m256i x = _mm256_set1_epi32(qv_pair(col[p], at, last));
        lo[p] = _mm256_add_epi32(lo[p], _mm256_madd_epi16(x, w_lo));
        hi[p] = _mm256_add_epi32(hi[p], _mm256_madd_epi16(x, w_hi));
    }
}

QV_TARGET_AVX2 static void qv_block_avx2(const qv_conv_job *job, const int16_t *src, int16_t *dst, uint32_t ob,
                                         uint32_t n_oc)
{
    const uint32_t slots = (job->col_len + 1u) / 2u;
    const __m128i shift = _mm_cvtsi32_si128((int)job->op->out_rshift);
    const __m256i init_lo = _mm256_loadu_si256((const __m256i *)job->init);
    const __m256i init_hi = _mm256_loadu_si256((const __m256i *)(job->init + 8));
    uint32_t px;
    for (px = 0; px < job->n_px; px += QV_PX_AVX2)
    {
        const uint32_t count = (job->n_px - px < QV_PX_AVX2) ? job->n_px - px : QV_PX_AVX2;
        const int16_t *col[QV_PX_AVX2];
        __m256i lo[QV_PX_AVX2];
        __m256i hi[QV_PX_AVX2];
        uint32_t k;
        uint32_t p;
        qv_columns(job, px, count, QV_PX_AVX2, src, col);
        for (p = 0; p < QV_PX_AVX2; p++)
        {
            lo[p] = init_lo;
            hi[p] = init_hi;
        }
        for (k = 0; k < job->pairs; k++)
        {
            qv_madd_avx2(lo, hi, job->wp + (size_t)k * 2u * QV_OC_BLOCK, col, 2u * k, 0);
        }
        if (job->pairs < slots)
        {
            qv_madd_avx2(lo, hi, job->wp + (size_t)k * 2u * QV_OC_BLOCK, col, 2u * k, 1);
        }
        for (p = 0; p < QV_PX_AVX2 && p < count; p++)
        {
            /* packs interleaves 128-bit lanes: (lo0-3 hi0-3 | lo4-7 hi4-7); the permute restores channel order */
            const __m256i packed = _mm256_packs_epi32(_mm256_sra_epi32(lo[p], shift), _mm256_sra_epi32(hi[p], shift));
            const __m256i out = _mm256_permute4x64_epi64(packed, 0xD8);
            int16_t *o = dst + (size_t)(px + p) * job->op->out_c + ob;
            if (n_oc == QV_OC_BLOCK)
            {
                _mm256_storeu_si256((__m256i *)o, out);
            }
            else
            {
                int16_t tmp[QV_OC_BLOCK];
                _mm256_storeu_si256((__m256i *)tmp, out);
                memcpy(o, tmp, n_oc * sizeof(int16_t));
            }
        }
    }
}

int32_t qv_host_conv_q15(const qv_op_t *op, const int16_t *src, int16_t *dst, int16_t *scratch)
{
    const int32_t level = qv_host_simd_level();
    /* 64-byte aligned packed weights (the vector loads above are aligned loads) */
    int16_t *aligned = scratch + ((64u - ((uintptr_t)scratch & 63u)) & 63u) / sizeof(int16_t);
    qv_conv_job job;
    uint32_t ob;

    if (level == QV_SIMD_NONE)
    {
        return ARM_MATH_ARGUMENT_ERROR;
    }
    job.op = op;
    job.col_len = (uint32_t)op->k_h * op->k_w * op->in_c;
    job.pairs = job.col_len / 2u;
    job.n_px = (uint32_t)op->out_h * op->out_w;
    job.round = QV_NN_ROUND(op->out_rshift);
    job.wp = aligned;
    job.cols = aligned + (size_t)((job.col_len + 1u) / 2u) * 2u * QV_OC_BLOCK;
    for (ob = 0; ob < op->out_c; ob += QV_OC_BLOCK)
    {
        const uint32_t n_oc = qv_pack_block(&job, ob);
        if (level == QV_SIMD_AVX512)
        {
            qv_block_avx512(&job, src, dst, ob, n_oc);
        }
        else
        {
            qv_block_avx2(&job, src, dst, ob, n_oc);
        }
    }
    return ARM_MATH_SUCCESS;
}

#else /* not an x86-64 host: qv_host_simd_level() is QV_SIMD_NONE and the runner keeps the kernels */

int32_t qv_host_conv_q15(const qv_op_t *op, const int16_t *src, int16_t *dst, int16_t *scratch)
{
    (void)op;
    (void)src;
    (void)dst;
    (void)scratch;
    return ARM_MATH_ARGUMENT_ERROR;
}
#endif
