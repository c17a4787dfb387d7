/*
 * qverify: SIMD intrinsics used by the ARM_MATH_DSP code paths, plus a few
 * small q15 helpers shared by the qverify kernels.
 *
 * Two implementations of each intrinsic:
 *   - on a Cortex-M core with the DSP extension (__ARM_FEATURE_DSP == 1 and
 *     __ARM_FEATURE_SIMD32) they map to the ACLE intrinsics of <arm_acle.h>,
 *     i.e. to the real SMLAD, SSAT, QADD16, ... instructions;
 *   - everywhere else (the host build, cores without DSP, or when
 *     QV_PORTABLE_INTRINSICS is defined) they are portable C with the
 *     instruction's semantics: the accumulating ones wrap modulo 2^32 exactly
 *     like SMLAD does (the Q flag is not modelled), the saturating ones
 *     saturate.  The portable versions use unsigned arithmetic, so they are
 *     free of undefined behaviour with or without -fwrapv.
 *
 * A macro (__SMLAD, __SSAT, ...) is only defined here when the including
 * translation unit has not defined it already; the functions themselves
 * carry a qv_ prefix, so this header never collides with CMSIS-Core's
 * cmsis_gcc.h when that one was included first.
 *
 * Packed q15 pairs follow the little-endian convention of the cores: the
 * element at the lower address is in bits 0..15.
 */
#ifndef QV_INTRINSICS_H
#define QV_INTRINSICS_H

#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define QV_INLINE __attribute__((always_inline)) static inline
#else
#define QV_INLINE static inline
#endif

#if defined(__cplusplus)
#define QV_RESTRICT
#elif defined(__STDC_VERSION__) && (__STDC_VERSION__ >= 199901L)
#define QV_RESTRICT restrict
#elif defined(__GNUC__) || defined(__clang__)
#define QV_RESTRICT __restrict
#else
#define QV_RESTRICT
#endif

#if !defined(QV_PORTABLE_INTRINSICS) && defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1) && \
    defined(__ARM_FEATURE_SIMD32) && (__ARM_FEATURE_SIMD32 == 1)
#define QV_INTRINSICS_ACLE 1
#include <arm_acle.h>
#else
#define QV_INTRINSICS_ACLE 0
#endif

/* ------------------------------------------------------------------------ */
/* Portable C versions (always compiled: also used by the C tests).          */
/* ------------------------------------------------------------------------ */

/* Low / high signed halfword of a 32-bit word. */
QV_INLINE int32_t qv_lo16(uint32_t x) { return (int32_t)(int16_t)(uint16_t)(x & 0xFFFFu); }
QV_INLINE int32_t qv_hi16(uint32_t x) { return (int32_t)(int16_t)(uint16_t)(x >> 16); }

/* Pack two halfwords (lo in bits 0..15, hi in bits 16..31). */
QV_INLINE uint32_t qv_pack16(int32_t lo, int32_t hi)
{
    return ((uint32_t)lo & 0xFFFFu) | (((uint32_t)hi & 0xFFFFu) << 16);
}

/* SMLAD: sum + lo(x)*lo(y) + hi(x)*hi(y), wrapping modulo 2^32. */
QV_INLINE uint32_t qv_smlad(uint32_t x, uint32_t y, uint32_t sum)
{
    /* each product is in [-2^30 + 2^15, 2^30]: fits int32 */
    const int32_t p0 = qv_lo16(x) * qv_lo16(y);
    const int32_t p1 = qv_hi16(x) * qv_hi16(y);
    return sum + (uint32_t)p0 + (uint32_t)p1;
}

/* SMLADX: sum + lo(x)*hi(y) + hi(x)*lo(y), wrapping modulo 2^32. */
QV_INLINE uint32_t qv_smladx(uint32_t x, uint32_t y, uint32_t sum)
{
    const int32_t p0 = qv_lo16(x) * qv_hi16(y);
    const int32_t p1 = qv_hi16(x) * qv_lo16(y);
    return sum + (uint32_t)p0 + (uint32_t)p1;
}

/* SSAT: saturate a signed value to a signed range of `sat` bits (1..32). */
QV_INLINE int32_t qv_ssat(int32_t val, uint32_t sat)
{
    if ((sat >= 1u) && (sat <= 32u))
    {
        const int32_t max = (int32_t)((0x1u << (sat - 1u)) - 1u);
        const int32_t min = -1 - max;
        if (val > max)
        {
            return max;
        }
        if (val < min)
        {
            return min;
        }
    }
    return val;
}

/* USAT: saturate a signed value to an unsigned range of `sat` bits (0..31). */
QV_INLINE uint32_t qv_usat(int32_t val, uint32_t sat)
{
    if (sat <= 31u)
    {
        const uint32_t max = (0x1u << sat) - 1u;
        if (val > (int32_t)max)
        {
            return max;
        }
        if (val < 0)
        {
            return 0u;
        }
    }
    return (uint32_t)val;
}

/* PKHBT: bottom half of a, (b << s) top half. */
QV_INLINE uint32_t qv_pkhbt(uint32_t a, uint32_t b, uint32_t s)
{
    return (a & 0x0000FFFFu) | ((b << (s & 31u)) & 0xFFFF0000u);
}

/* PKHTB: top half of a, bottom half of (b >> s) (arithmetic shift). */
QV_INLINE uint32_t qv_pkhtb(uint32_t a, uint32_t b, uint32_t s)
{
    const uint32_t sh = s & 31u;
    uint32_t shifted = b >> sh;
    if ((sh != 0u) && ((b & 0x80000000u) != 0u))
    {
        shifted |= ~(0xFFFFFFFFu >> sh); /* sign fill */
    }
    return (a & 0xFFFF0000u) | (shifted & 0x0000FFFFu);
}

/* SXTB16: sign-extend bytes 0 and 2 into the two halfwords. */
QV_INLINE uint32_t qv_sxtb16(uint32_t x)
{
    const int32_t b0 = (int32_t)(int8_t)(uint8_t)(x & 0xFFu);
    const int32_t b2 = (int32_t)(int8_t)(uint8_t)((x >> 16) & 0xFFu);
    return qv_pack16(b0, b2);
}

/* ROR: rotate right by n (mod 32). */
QV_INLINE uint32_t qv_ror(uint32_t x, uint32_t n)
{
    n &= 31u;
    if (n == 0u)
    {
        return x;
    }
    return (x >> n) | (x << (32u - n));
}

QV_INLINE int32_t qv_sat16(int32_t v)
{
    return (v > 32767) ? 32767 : ((v < -32768) ? -32768 : v);
}

/* QADD16 / QSUB16: saturating halfword add / subtract. */
QV_INLINE uint32_t qv_qadd16(uint32_t x, uint32_t y)
{
    return qv_pack16(qv_sat16(qv_lo16(x) + qv_lo16(y)), qv_sat16(qv_hi16(x) + qv_hi16(y)));
}

QV_INLINE uint32_t qv_qsub16(uint32_t x, uint32_t y)
{
    return qv_pack16(qv_sat16(qv_lo16(x) - qv_lo16(y)), qv_sat16(qv_hi16(x) - qv_hi16(y)));
}

/* ------------------------------------------------------------------------ */
/* The CMSIS names.                                                          */
/* ------------------------------------------------------------------------ */

#if QV_INTRINSICS_ACLE
#ifndef __SMLAD
#define __SMLAD(x, y, sum) ((uint32_t)__smlad((int16x2_t)(x), (int16x2_t)(y), (int32_t)(sum)))
#endif
#ifndef __SMLADX
#define __SMLADX(x, y, sum) ((uint32_t)__smladx((int16x2_t)(x), (int16x2_t)(y), (int32_t)(sum)))
#endif
#ifndef __SXTB16
#define __SXTB16(x) ((uint32_t)__sxtb16((int8x4_t)(x)))
#endif
#ifndef __QADD16
#define __QADD16(x, y) ((uint32_t)__qadd16((int16x2_t)(x), (int16x2_t)(y)))
#endif
#ifndef __QSUB16
#define __QSUB16(x, y) ((uint32_t)__qsub16((int16x2_t)(x), (int16x2_t)(y)))
#endif
#if defined(__ARM_FEATURE_SAT) && (__ARM_FEATURE_SAT == 1)
/* the saturation width must be a compile-time constant here */
#ifndef __SSAT
#define __SSAT(val, sat) ((int32_t)__ssat((int32_t)(val), (sat)))
#endif
#ifndef __USAT
#define __USAT(val, sat) ((uint32_t)__usat((int32_t)(val), (sat)))
#endif
#endif
#endif /* QV_INTRINSICS_ACLE */

#ifndef __SMLAD
#define __SMLAD(x, y, sum) qv_smlad((uint32_t)(x), (uint32_t)(y), (uint32_t)(sum))
#endif
#ifndef __SMLADX
#define __SMLADX(x, y, sum) qv_smladx((uint32_t)(x), (uint32_t)(y), (uint32_t)(sum))
#endif
#ifndef __SSAT
#define __SSAT(val, sat) qv_ssat((int32_t)(val), (uint32_t)(sat))
#endif
#ifndef __USAT
#define __USAT(val, sat) qv_usat((int32_t)(val), (uint32_t)(sat))
#endif
#ifndef __SXTB16
#define __SXTB16(x) qv_sxtb16((uint32_t)(x))
#endif
#ifndef __QADD16
#define __QADD16(x, y) qv_qadd16((uint32_t)(x), (uint32_t)(y))
#endif
#ifndef __QSUB16
#define __QSUB16(x, y) qv_qsub16((uint32_t)(x), (uint32_t)(y))
#endif
/* PKHBT/PKHTB/ROR: the compilers emit the instructions from plain C. */
#ifndef __PKHBT
#define __PKHBT(a, b, s) qv_pkhbt((uint32_t)(a), (uint32_t)(b), (uint32_t)(s))
#endif
#ifndef __PKHTB
#define __PKHTB(a, b, s) qv_pkhtb((uint32_t)(a), (uint32_t)(b), (uint32_t)(s))
#endif
#ifndef __ROR
#define __ROR(x, n) qv_ror((uint32_t)(x), (uint32_t)(n))
#endif

/* ------------------------------------------------------------------------ */
/* Unaligned-safe packed loads / stores (replace CMSIS's __SIMD32 casts).    */
/* ------------------------------------------------------------------------ */

/* Two consecutive q15 values as one word: p[0] in bits 0..15 (little endian). */
QV_INLINE uint32_t qv_read_q15x2(const int16_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* Read two q15 values and advance the pointer by two. */
QV_INLINE uint32_t qv_read_q15x2_ia(const int16_t **p)
{
    const uint32_t v = qv_read_q15x2(*p);
    *p += 2;
    return v;
}

/* Four consecutive q7 values as one word, p[0] in bits 0..7 (little endian); advances the pointer by four. */
QV_INLINE uint32_t qv_read_q7x4_ia(const int8_t **p)
{
    uint32_t w;
    memcpy(&w, *p, sizeof(w));
    *p += 4;
    return w;
}

/* sum + the dot product of four q7 weights (one word w0..w3) with four q15 inputs (x01 = (x0, x1),
 * x23 = (x2, x3)): SXTB16 of the word gives (w0, w2), of it rotated by 8 (w1, w3), and PKHBT / PKHTB
 * repack them into the pairs (w0, w1) and (w2, w3) that SMLAD multiplies. */
QV_INLINE uint32_t qv_mac_q7x4(uint32_t w, uint32_t x01, uint32_t x23, uint32_t sum)
{
    const uint32_t even = __SXTB16(w);
    const uint32_t odd = __SXTB16(__ROR(w, 8));
    sum = __SMLAD(__PKHBT(even, odd, 16), x01, sum);
    return __SMLAD(__PKHTB(odd, even, 16), x23, sum);
}

/* Store two q15 values and advance the pointer by two. */
QV_INLINE void qv_write_q15x2_ia(int16_t **p, uint32_t v)
{
    memcpy(*p, &v, sizeof(v));
    *p += 2;
}

/* ------------------------------------------------------------------------ */
/* q15 kernel helpers (the numeric contract of docs/design.md).              */
/* ------------------------------------------------------------------------ */

/* Rounding constant of the qv_ kernels: same as NN_ROUND, UB-free for 31. */
#ifndef ARM_NN_TRUNCATE
#define QV_NN_ROUND(out_shift) ((int32_t)((0x1u << (out_shift)) >> 1))
#else
#define QV_NN_ROUND(out_shift) 0
#endif

/* Initial accumulator: (bias << bias_shift) + round, wrapping, no UB for a
 * negative bias (shift done on the unsigned representation). */
QV_INLINE int32_t qv_acc_init(int16_t bias, uint32_t bias_shift, int32_t round)
{
    return (int32_t)(((uint32_t)(int32_t)bias << bias_shift) + (uint32_t)round);
}

/* acc + p, wrapping modulo 2^32. */
QV_INLINE int32_t qv_wrap_add(int32_t acc, int32_t p)
{
    return (int32_t)((uint32_t)acc + (uint32_t)p);
}

/* Final output: saturate (acc >> out_shift) to q15; >> is arithmetic. */
QV_INLINE int16_t qv_out_q15(int32_t acc, uint32_t out_shift)
{
    return (int16_t)qv_sat16(acc >> out_shift);
}

#ifdef __cplusplus
}
#endif

#endif /* QV_INTRINSICS_H */
