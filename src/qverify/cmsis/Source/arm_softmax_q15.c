/*
 * qverify bundled CMSIS-NN replacement: arm_softmax_q15, the legacy API's base-2 softmax.
 *
 * Written for qverify from the documented behaviour (y_i = 2^(x_i) / sum_j 2^(x_j) on the integer
 * values, q15 out); the code is not Arm's.  Exact integers (docs/design.md rule 11):
 *   base = max(x) - 16; a value at or below base counts for nothing and gives 0 (2^-16 of the largest
 *   term: below q15's resolution);
 *   sum = sum over x_i > base of 2^(x_i - base)   (at most 32767 values: a q31 sum);
 *   scale = floor(2^32 / sum)                       (the largest term is 2^16, so scale <= 2^16);
 *   out_i = min(scale >> (17 - (x_i - base)), 32767), i.e. about 2^15 * 2^(x_i) / sum (Q0.15).
 */
#include "arm_nnfunctions.h"

void arm_softmax_q15(const q15_t *vec_in, const uint16_t dim_vec, q15_t *p_out)
{
    int32_t top = -32768;
    int32_t base;
    uint32_t sum = 0u;
    uint32_t scale;
    uint32_t i;
    if (dim_vec == 0u)
    {
        return;
    }
    for (i = 0u; i < (uint32_t)dim_vec; i++)
    {
        top = (vec_in[i] > top) ? vec_in[i] : top;
    }
    base = top - 16;
    for (i = 0u; i < (uint32_t)dim_vec; i++)
    {
        const int32_t d = (int32_t)vec_in[i] - base;
        if (d > 0)
        {
            sum += (uint32_t)1u << (uint32_t)d;
        }
    }
    scale = (uint32_t)(((uint64_t)1u << 32) / sum);
    for (i = 0u; i < (uint32_t)dim_vec; i++)
    {
        const int32_t d = (int32_t)vec_in[i] - base;
        if (d > 0)
        {
            const uint32_t v = scale >> (uint32_t)(17 - d);
            p_out[i] = (q15_t)((v > 32767u) ? 32767u : v);
        }
        else
        {
            p_out[i] = 0;
        }
    }
}
