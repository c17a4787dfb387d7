/*
 * qverify bundled CMSIS-NN replacement: arm_fully_connected_mat_q7_vec_q15.
 *
 * qverify's code, written from the documented interface of the legacy API; the code is not Arm's.
 * q15 input and output, q7 weights and q7 bias; pM is [num_of_rows][dim_vec] (row-major):
 *   acc = ((q31_t)bias[r] << bias_shift) + NN_ROUND(out_shift) + sum(pM[r][i] * pV[i])   (int32, wrapping)
 *   pOut[r] = (q15_t)__SSAT(acc >> out_shift, 16)
 * The DSP path computes two rows per pass: four q7 weights of a row are read as one word and expanded by
 * SXTB16 (bytes 0 and 2) and SXTB16 of the word rotated by 8 (bytes 1 and 3), repacked by PKHBT / PKHTB
 * into the q15 pairs (w0, w1) and (w2, w3) that SMLAD multiplies with (x0, x1) and (x2, x3); the last
 * dim_vec % 4 columns one at a time, and a single-row pass for an odd num_of_rows.
 * vec_buffer is not used.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

arm_status arm_fully_connected_mat_q7_vec_q15(const q15_t *pV,
                                              const q7_t *pM,
                                              const uint16_t dim_vec,
                                              const uint16_t num_of_rows,
                                              const uint16_t bias_shift,
                                              const uint16_t out_shift,
                                              const q7_t *bias,
                                              q15_t *pOut,
                                              q15_t *vec_buffer)
{
    uint32_t row = 0;
    uint32_t round;

    (void)vec_buffer;
    if ((bias_shift > 31u) || (out_shift > 31u))
    {
        return ARM_MATH_ARGUMENT_ERROR;
    }
    round = (uint32_t)NN_ROUND(out_shift);

#if defined(ARM_MATH_DSP)
    for (; row + 2u <= num_of_rows; row += 2u)
    {
        const q7_t *m0 = pM + (size_t)row * dim_vec;
        const q7_t *m1 = m0 + dim_vec;
        const q15_t *v0 = pV;
        uint32_t s0 = ((uint32_t)(q31_t)bias[row] << bias_shift) + round;
        uint32_t s1 = ((uint32_t)(q31_t)bias[row + 1u] << bias_shift) + round;
        uint32_t quads = (uint32_t)dim_vec >> 2;
        uint32_t rest = (uint32_t)dim_vec & 3u;
        while (quads > 0u)
        {
            const uint32_t x01 = qv_read_q15x2_ia(&v0);
            const uint32_t x23 = qv_read_q15x2_ia(&v0);
            s0 = qv_mac_q7x4(qv_read_q7x4_ia(&m0), x01, x23, s0);
            s1 = qv_mac_q7x4(qv_read_q7x4_ia(&m1), x01, x23, s1);
            quads--;
        }
        while (rest > 0u)
        {
            const q31_t x = *v0++;
            s0 += (uint32_t)((q31_t)*m0++ * x);
            s1 += (uint32_t)((q31_t)*m1++ * x);
            rest--;
        }
        pOut[row] = (q15_t)__SSAT((q31_t)s0 >> out_shift, 16);
        pOut[row + 1u] = (q15_t)__SSAT((q31_t)s1 >> out_shift, 16);
    }
    if (row < num_of_rows)
    {
        const q7_t *m0 = pM + (size_t)row * dim_vec;
        const q15_t *v0 = pV;
        uint32_t s0 = ((uint32_t)(q31_t)bias[row] << bias_shift) + round;
        uint32_t quads = (uint32_t)dim_vec >> 2;
        uint32_t rest = (uint32_t)dim_vec & 3u;
        while (quads > 0u)
        {
            const uint32_t x01 = qv_read_q15x2_ia(&v0);
            const uint32_t x23 = qv_read_q15x2_ia(&v0);
            s0 = qv_mac_q7x4(qv_read_q7x4_ia(&m0), x01, x23, s0);
            quads--;
        }
        while (rest > 0u)
        {
            s0 += (uint32_t)((q31_t)*m0++ * (q31_t)*v0++);
            rest--;
        }
        pOut[row] = (q15_t)__SSAT((q31_t)s0 >> out_shift, 16);
    }
#else
    for (; row < num_of_rows; row++)
    {
        const q7_t *QV_RESTRICT m = pM + (size_t)row * dim_vec;
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
