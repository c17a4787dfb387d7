/*
 * qverify: the host's stand-in for CMSIS-Core's compiler header, used when a
 * firmware's own CMSIS tree is compiled for the host (QVERIFY_CMSIS_ROOT).
 *
 * Arm's DSP and NN headers take the compiler macros (__STATIC_FORCEINLINE,
 * __ALIGNED, ...) and the Cortex-M intrinsics (__SSAT, __SMLAD, ...) from
 * cmsis_compiler.h (5.7 and later) or from core_cmX.h (5.6 and older).  On
 * a Cortex-M core those come from Arm's cmsis_gcc.h as inline assembly; the
 * host build puts small files of those names first on the include path that
 * include this header instead, so that Arm's code, as it is, runs with the
 * exact integer definitions of qv_intrinsics.h.  Neither __GNUC_PYTHON__ nor
 * _MSC_VER host modes of Arm's headers are used: they define __SSAT and
 * friends themselves (and 5.9's NN headers not at all).
 *
 * What a core offers is mirrored: with ARM_MATH_DSP (Cortex-M4/M7) all the
 * SIMD intrinsics; without it (Cortex-M3) only __SSAT, __USAT, __ROR and
 * __CLZ, because Arm's headers then define their own C versions of the SIMD
 * ones (arm_math.h up to 5.7, dsp/none.h from 5.8) and ours would collide.
 */
#ifndef QV_HOST_CMSIS_H
#define QV_HOST_CMSIS_H

#include <stdint.h>
#include <string.h>

/* the compiler macros of cmsis_gcc.h that Arm's DSP and NN headers use */
#ifndef __ASM
#define __ASM __asm__
#endif
#ifndef __INLINE
#define __INLINE inline
#endif
#ifndef __STATIC_INLINE
#define __STATIC_INLINE static inline
#endif
#ifndef __STATIC_FORCEINLINE
#define __STATIC_FORCEINLINE __attribute__((always_inline)) static inline
#endif
#ifndef __NO_RETURN
#define __NO_RETURN __attribute__((__noreturn__))
#endif
#ifndef __USED
#define __USED __attribute__((used))
#endif
#ifndef __WEAK
#define __WEAK __attribute__((weak))
#endif
#ifndef __PACKED
#define __PACKED __attribute__((packed, aligned(1)))
#endif
#ifndef __PACKED_STRUCT
#define __PACKED_STRUCT struct __attribute__((packed, aligned(1)))
#endif
#ifndef __ALIGNED
#define __ALIGNED(x) __attribute__((aligned(x)))
#endif
#ifndef __RESTRICT
#define __RESTRICT __restrict
#endif

/* the architecture the compiler would announce for the core played (5.5's arm_math.h requires one) */
#if defined(ARM_MATH_DSP)
#ifndef __ARM_ARCH_7EM__
#define __ARM_ARCH_7EM__ 1
#endif
#elif !defined(__ARM_ARCH_7M__)
#define __ARM_ARCH_7M__ 1
#endif

#include "qv_intrinsics.h"

#if defined(ARM_MATH_DSP)
/* Further DSP-extension intrinsics that inline functions of Arm's headers use
 * (qv_intrinsics.h has those of the q15 kernels); integer semantics of the
 * Armv7E-M instructions, the Q flag not modelled. */
static inline int32_t qv_qadd(int32_t a, int32_t b)
{
    const int64_t s = (int64_t)a + b;
    return (s > INT32_MAX) ? INT32_MAX : ((s < INT32_MIN) ? INT32_MIN : (int32_t)s);
}
static inline int32_t qv_qsub(int32_t a, int32_t b)
{
    const int64_t s = (int64_t)a - b;
    return (s > INT32_MAX) ? INT32_MAX : ((s < INT32_MIN) ? INT32_MIN : (int32_t)s);
}
/* SMUAD: lo*lo + hi*hi, wrapping modulo 2^32 (only -2^15 * -2^15 twice overflows) */
static inline uint32_t qv_smuad(uint32_t x, uint32_t y) { return qv_smlad(x, y, 0u); }
/* SMLALD: 64-bit sum + lo*lo + hi*hi, wrapping modulo 2^64 */
static inline uint64_t qv_smlald(uint32_t x, uint32_t y, uint64_t sum)
{
    return sum + (uint64_t)(int64_t)(qv_lo16(x) * qv_lo16(y)) + (uint64_t)(int64_t)(qv_hi16(x) * qv_hi16(y));
}
#define __QADD(a, b) qv_qadd((int32_t)(a), (int32_t)(b))
#define __QSUB(a, b) qv_qsub((int32_t)(a), (int32_t)(b))
#define __SMUAD(x, y) qv_smuad((uint32_t)(x), (uint32_t)(y))
#define __SMLALD(x, y, sum) qv_smlald((uint32_t)(x), (uint32_t)(y), (uint64_t)(sum))
#define __SXTB16_RORn(x, n) qv_sxtb16(qv_ror((uint32_t)(x), (uint32_t)(n)))
#else
/* A core without the DSP extension (Cortex-M3): Arm's headers define their own
 * C versions of these names (arm_math.h up to 5.7, dsp/none.h from 5.8). */
#undef __SMLAD
#undef __SMLADX
#undef __SXTB16
#undef __QADD16
#undef __QSUB16
#undef __PKHBT
#undef __PKHTB
#endif

/* CLZ: leading zero bits (32 for 0); all Armv7-M cores have it */
static inline uint8_t qv_clz(uint32_t x)
{
    uint8_t n = 0u;
    if (x == 0u)
    {
        return 32u;
    }
    while ((x & 0x80000000u) == 0u)
    {
        x <<= 1;
        n++;
    }
    return n;
}
#ifndef __CLZ
#define __CLZ(x) qv_clz((uint32_t)(x))
#endif

#endif /* QV_HOST_CMSIS_H */
