/*
 * qverify bundled CMSIS-NN replacement: basic types.
 *
 * Written for qverify from the public CMSIS type definitions (names and
 * values only): q7_t/q15_t/q31_t/q63_t and arm_status.  A firmware tree's
 * own CMSIS headers can be used instead (QVERIFY_CMSIS_ROOT).
 */
#ifndef ARM_MATH_TYPES_H
#define ARM_MATH_TYPES_H

#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int8_t q7_t;
typedef int16_t q15_t;
typedef int32_t q31_t;
typedef int64_t q63_t;
typedef float float32_t;
typedef double float64_t;

typedef enum
{
    ARM_MATH_SUCCESS = 0,         /* no error */
    ARM_MATH_ARGUMENT_ERROR = -1, /* one or more arguments are incorrect */
    ARM_MATH_LENGTH_ERROR = -2,   /* length of data buffer is incorrect */
    ARM_MATH_SIZE_MISMATCH = -3,  /* size of matrices/channels is not compatible */
    ARM_MATH_NANINF = -4,
    ARM_MATH_SINGULAR = -5,
    ARM_MATH_TEST_FAILURE = -6
} arm_status;

/* Compiler helpers (only defined if the including project has not). */
#ifndef __STATIC_INLINE
#define __STATIC_INLINE static inline
#endif
#ifndef __STATIC_FORCEINLINE
#if defined(__GNUC__) || defined(__clang__)
#define __STATIC_FORCEINLINE __attribute__((always_inline)) static inline
#else
#define __STATIC_FORCEINLINE static inline
#endif
#endif
#ifndef __RESTRICT
#if defined(__GNUC__) || defined(__clang__)
#define __RESTRICT __restrict
#else
#define __RESTRICT
#endif
#endif

#ifdef __cplusplus
}
#endif

#endif /* ARM_MATH_TYPES_H */
