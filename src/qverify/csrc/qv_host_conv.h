/*
 * qverify host fast path: the q15 convolution on the host's SIMD units.
 *
 * Host-only (never built for a Cortex-M).  It computes exactly what the
 * kernels in cmsis/ compute, the numeric contract of docs/design.md:
 *   acc = (bias << bias_shift) + NN_ROUND(out_shift) + sum(w * x)  (int32, wrapping)
 *   out = saturate_q15(acc >> out_shift)                            (arithmetic shift)
 * but with the output channels across the vector lanes: 16 channels of up
 * to 8 pixels per pass, two q15 products per 32-bit lane per instruction
 * (AVX-512 VNNI vpdpwssd, or AVX2 vpmaddwd + vpaddd).  Both wrap modulo
 * 2^32 like SMLAD and the plain kernels, so the order of the sum does not
 * change the result.  The runner uses it in the "fast" build (QV_HOST_SIMD)
 * when the CPU has one of the two instruction sets; the tests prove it
 * bit-exact against the cmsis/ kernels and the shift model.
 */
#ifndef QV_HOST_CONV_H
#define QV_HOST_CONV_H

#include <stdint.h>

#include "qv_runner.h"

#ifdef __cplusplus
extern "C" {
#endif

enum
{
    QV_SIMD_NONE = 0,   /* not an x86-64 host, or a CPU without AVX2 */
    QV_SIMD_AVX2 = 1,   /* vpmaddwd on 256-bit vectors */
    QV_SIMD_AVX512 = 2  /* AVX-512 F/BW/VL + VNNI: vpdpwssd on 512-bit vectors */
};

/* The instruction set the fast path uses: what the CPU has, capped by qv_host_simd_limit(). */
int32_t qv_host_simd_level(void);

/* Cap the level (tests use it to run the AVX2 path on an AVX-512 machine); returns the level now in
 * use.  Not thread-safe: call it when no run is in progress. */
int32_t qv_host_simd_limit(int32_t max_level);

/* int16 words of scratch qv_host_conv_q15 needs for this conv op. */
uint64_t qv_host_conv_scratch_words(const qv_op_t *op);

/* One conv op on one sample (geometry already validated by the runner); scratch:
 * qv_host_conv_scratch_words(op) words.  Returns ARM_MATH_SUCCESS, or ARM_MATH_ARGUMENT_ERROR when
 * no SIMD level is available. */
int32_t qv_host_conv_q15(const qv_op_t *op, const int16_t *src, int16_t *dst, int16_t *scratch);

#ifdef __cplusplus
}
#endif

#endif /* QV_HOST_CONV_H */
