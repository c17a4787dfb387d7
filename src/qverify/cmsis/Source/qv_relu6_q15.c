/*
 * qverify: q15 ReLU6, in place: data[i] = min(max(data[i], 0), clamp_max).
 *
 * Written for qverify (no CMSIS-NN function clamps q15 values from above).
 * clamp_max is 6.0 in the data's format rounded down (qverify.opkinds.relu6_max);
 * a negative one is taken as 0.  Exact integer comparisons: the format is
 * unchanged and nothing rounds.  Plain C on every path: compilers turn the
 * loop into min/max instructions where the core has them.
 */
#include "qv_nnfunctions.h"

void qv_relu6_q15(q15_t *data, uint32_t size, q15_t clamp_max)
{
    const q15_t hi = (clamp_max < 0) ? (q15_t)0 : clamp_max;
    uint32_t i;
    for (i = 0u; i < size; i++)
    {
        const q15_t v = data[i];
        data[i] = (v < 0) ? (q15_t)0 : ((v > hi) ? hi : v);
    }
}
