/*
 * qverify bundled CMSIS-NN replacement: NN type header.
 *
 * The legacy q15 API only needs the q-types and arm_status; this header
 * exists so that code including "arm_nn_types.h" builds against the
 * bundled tree.
 */
#ifndef ARM_NN_TYPES_H
#define ARM_NN_TYPES_H

#include "arm_math_types.h"

#endif /* ARM_NN_TYPES_H */
