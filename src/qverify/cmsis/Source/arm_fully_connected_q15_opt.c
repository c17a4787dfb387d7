/*
 * qverify bundled CMSIS-NN replacement: arm_fully_connected_q15_opt.
 *
 * qverify's code, written from the documented interface of the legacy API; the code is not Arm's.
 * Same result as arm_fully_connected_q15, with pM in the "q15x4" interleaved order:
 *   rows in groups of four r0..r3: for each column pair k = 0 .. dim_vec/2 - 1
 *     r0[2k] r0[2k+1] r1[2k] r1[2k+1] r2[2k] r2[2k+1] r3[2k] r3[2k+1]
 *   then, for an odd dim_vec, the last column r0[last] r1[last] r2[last] r3[last];
 *   the num_of_rows % 4 rows left over follow row-major.
 * E.g. rows a1..a6 of 3 columns: | a11 a12 a21 a22 a31 a32 a41 a42 | a13 a23 a33 a43 | a51 a52 a53 | a61 a62 a63 |
 * For every row r (W the matrix in [num_of_rows][dim_vec] order):
 *   acc = ((q31_t)bias[r] << bias_shift) + NN_ROUND(out_shift) + sum(W[r][i] * pV[i])   (int32, wrapping)
 *   pOut[r] = (q15_t)__SSAT(acc >> out_shift, 16)
 * The DSP path computes four rows per pass, one packed load of the vector feeding four SMLADs, and a
 * leftover row by packed pairs; the plain path reads the same order one value at a time.
 * vec_buffer is not used.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

arm_status arm_fully_connected_q15_opt(const q15_t *pV,
                                       const q15_t *pM,
                                       const uint16_t dim_vec,
                                       const uint16_t num_of_rows,
                                       const uint16_t bias_shift,
                                       const uint16_t out_shift,
                                       const q15_t *bias,
                                       q15_t *pOut,
                                       q15_t *vec_buffer)
{
    const q15_t *pB = pM; /* walks the weights in the order they are stored */
    const uint32_t pairs = (uint32_t)dim_vec >> 1;
    uint32_t row = 0;
    uint32_t round;

    (void)vec_buffer;
    if ((bias_shift > 31u) || (out_shift > 31u))
    {
        return ARM_MATH_ARGUMENT_ERROR;
    }
    round = (uint32_t)NN_ROUND(out_shift);

#if defined(ARM_MATH_DSP)
    for (; row + 4u <= num_of_rows; row += 4u)
    {
        const q15_t *v = pV;
        uint32_t s0 = ((uint32_t)(q31_t)bias[row] << bias_shift) + round;
        uint32_t s1 = ((uint32_t)(q31_t)bias[row + 1u] << bias_shift) + round;
        uint32_t s2 = ((uint32_t)(q31_t)bias[row + 2u] << bias_shift) + round;
        uint32_t s3 = ((uint32_t)(q31_t)bias[row + 3u] << bias_shift) + round;
        uint32_t k;
        for (k = 0; k < pairs; k++)
        {
            const uint32_t in_v = qv_read_q15x2_ia(&v);
            s0 = __SMLAD(qv_read_q15x2_ia(&pB), in_v, s0);
            s1 = __SMLAD(qv_read_q15x2_ia(&pB), in_v, s1);
            s2 = __SMLAD(qv_read_q15x2_ia(&pB), in_v, s2);
            s3 = __SMLAD(qv_read_q15x2_ia(&pB), in_v, s3);
        }
        if ((dim_vec & 1u) != 0u)
        {
            const q31_t x = *v;
            s0 += (uint32_t)((q31_t)pB[0] * x);
            s1 += (uint32_t)((q31_t)pB[1] * x);
            s2 += (uint32_t)((q31_t)pB[2] * x);
            s3 += (uint32_t)((q31_t)pB[3] * x);
            pB += 4;
        }
        pOut[row] = (q15_t)__SSAT((q31_t)s0 >> out_shift, 16);
        pOut[row + 1u] = (q15_t)__SSAT((q31_t)s1 >> out_shift, 16);
        pOut[row + 2u] = (q15_t)__SSAT((q31_t)s2 >> out_shift, 16);
        pOut[row + 3u] = (q15_t)__SSAT((q31_t)s3 >> out_shift, 16);
    }
    for (; row < num_of_rows; row++) /* the leftover rows, row-major */
    {
        const q15_t *v = pV;
        uint32_t s0 = ((uint32_t)(q31_t)bias[row] << bias_shift) + round;
        uint32_t k;
        for (k = 0; k < pairs; k++)
        {
            s0 = __SMLAD(qv_read_q15x2_ia(&pB), qv_read_q15x2_ia(&v), s0);
        }
        if ((dim_vec & 1u) != 0u)
        {
            s0 += (uint32_t)((q31_t)*pB * (q31_t)*v);
            pB++;
        }
        pOut[row] = (q15_t)__SSAT((q31_t)s0 >> out_shift, 16);
    }
#else
    for (; row + 4u <= num_of_rows; row += 4u)
    {
        uint32_t sum[4];
        uint32_t k;
        uint32_t r;
        for (r = 0; r < 4u; r++)
        {
            sum[r] = ((uint32_t)(q31_t)bias[row + r] << bias_shift) + round;
        }
        for (k = 0; k < pairs; k++)
        {
            const q31_t x0 = pV[2u * k];
            const q31_t x1 = pV[2u * k + 1u];
            for (r = 0; r < 4u; r++)
            {
                sum[r] += (uint32_t)((q31_t)pB[0] * x0);
                sum[r] += (uint32_t)((q31_t)pB[1] * x1);
                pB += 2;
            }
        }
        if ((dim_vec & 1u) != 0u)
        {
            const q31_t x = pV[dim_vec - 1u];
            for (r = 0; r < 4u; r++)
            {
                sum[r] += (uint32_t)((q31_t)*pB++ * x);
            }
        }
        for (r = 0; r < 4u; r++)
        {
            pOut[row + r] = (q15_t)qv_sat16((q31_t)sum[r] >> out_shift);
        }
    }
    for (; row < num_of_rows; row++) /* the leftover rows, row-major */
    {
        uint32_t sum = ((uint32_t)(q31_t)bias[row] << bias_shift) + round;
        uint32_t i;
        for (i = 0; i < dim_vec; i++)
        {
            sum += (uint32_t)((q31_t)*pB++ * (q31_t)pV[i]);
        }
        pOut[row] = (q15_t)qv_sat16((q31_t)sum >> out_shift);
    }
#endif
    return ARM_MATH_SUCCESS;
}
