/*
 * qverify bundled CMSIS-NN replacement.  Source trees written against
 * CMSIS 5.8 and older include "arm_math.h" for the q-types; here it only
 * forwards to arm_math_types.h.
 */
#ifndef ARM_MATH_H
#define ARM_MATH_H

#include "arm_math_types.h"

#endif /* ARM_MATH_H */
