/*
 * qverify bundled CMSIS-NN replacement: arm_fully_connected_mat_q7_vec_q15_opt.
 *
 * qverify's code, written from the documented interface of the legacy API; the code is not Arm's.
 * Same result as arm_fully_connected_mat_q7_vec_q15 (q15 input and output, q7 weights and q7 bias),
 * with pM in the "q7x4" interleaved order:
 *   rows in groups of four r0..r3: for each column pair k = 0 .. dim_vec/2 - 1
 *     r0[2k] r1[2k] r0[2k+1] r1[2k+1] r2[2k] r3[2k] r2[2k+1] r3[2k+1]
 *   then, for an odd dim_vec, the last column r0[last] r1[last] r2[last] r3[last];
 *   the num_of_rows % 4 rows left over follow row-major.
 * E.g. four rows of 7 columns: | a11 a21 a12 a22 a31 a41 a32 a42 | a13 a23 a14 a24 a33 a43 a34 a44 |
 *   a15 a25 a16 a26 a35 a45 a36 a46 | a17 a27 a37 a47 |
 * For every row r (W the matrix in [num_of_rows][dim_vec] order):
 *   acc = ((q31_t)bias[r] << bias_shift) + NN_ROUND(out_shift) + sum(W[r][i] * pV[i])   (int32, wrapping)
 *   pOut[r] = (q15_t)__SSAT(acc >> out_shift, 16)
 * The DSP path computes four rows per pass: a word [r0c0 r1c0 r0c1 r1c1] gives, by SXTB16 and SXTB16 of
 * the word rotated by 8, the q15 pairs (r0c0, r0c1) and (r1c0, r1c1) that SMLAD multiplies with the input
 * pair (x0, x1); a leftover row four columns per word (SXTB16, ROR, PKHBT, PKHTB).  The plain path reads
 * the same order one value at a time.  vec_buffer is not used.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

arm_status arm_fully_connected_mat_q7_vec_q15_opt(const q15_t *pV,
                                                  const q7_t *pM,
                                                  const uint16_t dim_vec,
                                                  const uint16_t num_of_rows,
                                                  const uint16_t bias_shift,
                                                  const uint16_t out_shift,
                                                  const q7_t *bias,
                                                  q15_t *pOut,
                                                  q15_t *vec_buffer)
{
    const q7_t *pB = pM; /* walks the weights in the order they are stored */
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
            const uint32_t w01 = qv_read_q7x4_ia(&pB); /* r0c0 r1c0 r0c1 r1c1 */
            const uint32_t w23 = qv_read_q7x4_ia(&pB); /* r2c0 r3c0 r2c1 r3c1 */
            s0 = __SMLAD(__SXTB16(w01), in_v, s0);
            s1 = __SMLAD(__SXTB16(__ROR(w01, 8)), in_v, s1);
            s2 = __SMLAD(__SXTB16(w23), in_v, s2);
            s3 = __SMLAD(__SXTB16(__ROR(w23, 8)), in_v, s3);
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
        uint32_t quads = (uint32_t)dim_vec >> 2;
        uint32_t rest = (uint32_t)dim_vec & 3u;
        while (quads > 0u)
        {
            const uint32_t w = qv_read_q7x4_ia(&pB);
            const uint32_t x01 = qv_read_q15x2_ia(&v);
            const uint32_t x23 = qv_read_q15x2_ia(&v);
            s0 = qv_mac_q7x4(w, x01, x23, s0);
            quads--;
        }
        while (rest > 0u)
        {
            s0 += (uint32_t)((q31_t)*pB++ * (q31_t)*v++);
            rest--;
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
            /* r0c0 r1c0 r0c1 r1c1, then the same for r2, r3 */
            for (r = 0; r < 4u; r += 2u)
            {
                sum[r] += (uint32_t)((q31_t)pB[0] * x0);
                sum[r + 1u] += (uint32_t)((q31_t)pB[1] * x0);
                sum[r] += (uint32_t)((q31_t)pB[2] * x1);
                sum[r + 1u] += (uint32_t)((q31_t)pB[3] * x1);
                pB += 4;
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
