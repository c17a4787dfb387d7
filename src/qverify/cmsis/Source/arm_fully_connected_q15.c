/*
 * qverify bundled CMSIS-NN replacement: arm_fully_connected_q15.
 *
 * Written for qverify from the legacy API contract; the code is not Arm's.
 * pM is [num_of_rows][dim_vec] (row-major), pV has dim_vec values:
 *   acc = ((q31_t)bias[r] << bias_shift) + NN_ROUND(out_shift) + sum(pM[r][i] * pV[i])   (int32, wrapping)
 *   pOut[r] = (q15_t)__SSAT(acc >> out_shift, 16)
 * The DSP path computes two rows per pass from one packed load of the vector,
 * with a scalar step for an odd dim_vec and a single-row pass for an odd
 * num_of_rows.  vec_buffer is not used by the q15 version.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

arm_status arm_fully_connected_q15(const q15_t *pV,
                                   const q15_t *pM,
                                   const uint16_t dim_vec,
                                   const uint16_t num_of_rows,
                                   const uint16_t bias_shift,
                                   const uint16_t out_shift,
                                   const q15_t *bias,
                                   q15_t *pOut,
                                   q15_t *vec_buffer)
{
    uint32_t row;
    uint32_t round;

    (void)vec_buffer;
    if ((bias_shift > 31u) || (out_shift > 31u))
    {
        return ARM_MATH_ARGUMENT_ERROR;
    }
    round = (uint32_t)NN_ROUND(out_shift);

#if defined(ARM_MATH_DSP)
    row = 0;
    while (row + 1u < num_of_rows)
    {
        const q15_t *m0 = pM + (size_t)row * dim_vec;
        const q15_t *m1 = m0 + dim_vec;
        const q15_t *v = pV;
        q31_t s0 = (q31_t)(((uint32_t)(q31_t)bias[row] << bias_shift) + round);
        q31_t s1 = (q31_t)(((uint32_t)(q31_t)bias[row + 1u] << bias_shift) + round);
        uint32_t u0 = (uint32_t)s0, u1 = (uint32_t)s1;
        uint32_t pairs = (uint32_t)dim_vec >> 1;
        while (pairs > 0u)
        {
            const uint32_t in_v = qv_read_q15x2_ia(&v);
            u0 = __SMLAD(qv_read_q15x2_ia(&m0), in_v, u0);
            u1 = __SMLAD(qv_read_q15x2_ia(&m1), in_v, u1);
            pairs--;
        }
        s0 = (q31_t)u0;
        s1 = (q31_t)u1;
        if ((dim_vec & 1u) != 0u)
        {
            s0 = (q31_t)((uint32_t)s0 + (uint32_t)((q31_t)*m0 * (q31_t)*v));
            s1 = (q31_t)((uint32_t)s1 + (uint32_t)((q31_t)*m1 * (q31_t)*v));
        }
        pOut[row] = (q15_t)__SSAT(s0 >> out_shift, 16);
        pOut[row + 1u] = (q15_t)__SSAT(s1 >> out_shift, 16);
        row += 2u;
    }
    if (row < num_of_rows)
    {
        const q15_t *m0 = pM + (size_t)row * dim_vec;
        const q15_t *v = pV;
        q31_t s0 = (q31_t)(((uint32_t)(q31_t)bias[row] << bias_shift) + round);
        uint32_t u0 = (uint32_t)s0;
        uint32_t pairs = (uint32_t)dim_vec >> 1;
        while (pairs > 0u)
        {
            u0 = __SMLAD(qv_read_q15x2_ia(&m0), qv_read_q15x2_ia(&v), u0);
            pairs--;
        }
        s0 = (q31_t)u0;
        if ((dim_vec & 1u) != 0u)
        {
            s0 = (q31_t)((uint32_t)s0 + (uint32_t)((q31_t)*m0 * (q31_t)*v));
        }
        pOut[row] = (q15_t)__SSAT(s0 >> out_shift, 16);
    }
#else
    for (row = 0; row < num_of_rows; row++)
    {
        const q15_t *QV_RESTRICT m = pM + (size_t)row * dim_vec;
        const q15_t *QV_RESTRICT v = pV;
        uint32_t sum = ((uint32_t)(q31_t)bias[row] << bias_shift) + round;
        uint32_t i;
        for (i = 0; i < dim_vec; i++)
        {
            sum += (uint32_t)((q31_t)m[i] * (q31_t)v[i]);
        }
        pOut[row] = (q15_t)qv_sat16((q31_t)sum >> out_shift);
    }
#endif
    return ARM_MATH_SUCCESS;
}
