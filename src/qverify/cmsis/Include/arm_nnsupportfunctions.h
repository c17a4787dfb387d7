/*
 * qverify bundled CMSIS-NN replacement: support definitions.
 *
 * NN_ROUND(out_shift) is the rounding constant added to the accumulator's
 * initial value: 2^(out_shift-1) for out_shift >= 1, 0 for out_shift == 0,
 * and always 0 when ARM_NN_TRUNCATE is defined.  It is written with
 * unsigned arithmetic so that out_shift == 31 gives +2^30 without undefined
 * behaviour.
 */
#ifndef ARM_NNSUPPORTFUNCTIONS_H
#define ARM_NNSUPPORTFUNCTIONS_H

#include "arm_math_types.h"
#include "arm_nn_types.h"
#include "qv_intrinsics.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef ARM_NN_TRUNCATE
#define NN_ROUND(out_shift) ((q31_t)((0x1u << (out_shift)) >> 1))
#else
#define NN_ROUND(out_shift) 0
#endif

/* Value of the largest / smallest q15 number. */
#ifndef NN_Q15_MAX
#define NN_Q15_MAX ((q15_t)0x7FFF)
#define NN_Q15_MIN ((q15_t)0x8000)
#endif

#ifdef __cplusplus
}
#endif

#endif /* ARM_NNSUPPORTFUNCTIONS_H */
