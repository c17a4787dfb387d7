/*
 * qverify bundled CMSIS-NN replacement: arm_convolve_HWC_q15_basic.
 *
 * Square HWC q15 convolution, any channel count.  Written for qverify from
 * the legacy API contract (names, parameter order, numeric behaviour); the
 * code is not Arm's.  Per output pixel the [k][k][c_in] patch is gathered
 * into bufferA (zero padding), then every output channel is
 *   acc = ((q31_t)bias[o] << bias_shift) + NN_ROUND(out_shift) + sum(w * x)
 *   out = (q15_t)__SSAT(acc >> out_shift, 16)
 * in int32 with wrap-around.  bufferA: ch_im_in * dim_kernel^2 values.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

static void qv_cb_im2col(q15_t *QV_RESTRICT col,
                         const q15_t *QV_RESTRICT Im_in,
                         int32_t dim,
                         uint32_t ch,
                         int32_t k,
                         int32_t base_x,
                         int32_t base_y)
{
    int32_t ky;
    int32_t kx;
    for (ky = 0; ky < k; ky++)
    {
        const int32_t iy = base_y + ky;
        for (kx = 0; kx < k; kx++)
        {
            const int32_t ix = base_x + kx;
            if ((iy < 0) || (iy >= dim) || (ix < 0) || (ix >= dim))
            {
                memset(col, 0, ch * sizeof(q15_t));
            }
            else
            {
                memcpy(col, Im_in + ((size_t)iy * (size_t)dim + (size_t)ix) * ch, ch * sizeof(q15_t));
            }
            col += ch;
        }
    }
}

arm_status arm_convolve_HWC_q15_basic(const q15_t *Im_in,
                                      const uint16_t dim_im_in,
                                      const uint16_t ch_im_in,
                                      const q15_t *wt,
                                      const uint16_t ch_im_out,
                                      const uint16_t dim_kernel,
                                      const uint16_t padding,
                                      const uint16_t stride,
                                      const q15_t *bias,
                                      const uint16_t bias_shift,
                                      const uint16_t out_shift,
                                      q15_t *Im_out,
                                      const uint16_t dim_im_out,
                                      q15_t *bufferA,
                                      q7_t *bufferB)
{
    uint32_t col_len;
    int32_t oy;
    int32_t ox;
    q15_t *out;

    (void)bufferB;
    if ((dim_im_in == 0u) || (ch_im_in == 0u) || (ch_im_out == 0u) || (dim_kernel == 0u) || (stride == 0u) ||
        (dim_im_out == 0u) || (bias_shift > 31u) || (out_shift > 31u) ||
        ((uint32_t)dim_kernel > (uint32_t)dim_im_in + 2u * (uint32_t)padding) ||
        ((uint64_t)ch_im_in * dim_kernel * dim_kernel > 0x3FFFFFFFu))
    {
        return ARM_MATH_ARGUMENT_ERROR;
    }

    col_len = (uint32_t)ch_im_in * dim_kernel * dim_kernel;
    out = Im_out;

    for (oy = 0; oy < (int32_t)dim_im_out; oy++)
    {
        for (ox = 0; ox < (int32_t)dim_im_out; ox++)
        {
            uint32_t oc;
            qv_cb_im2col(bufferA, Im_in, dim_im_in, ch_im_in, dim_kernel,
                         ox * (int32_t)stride - (int32_t)padding, oy * (int32_t)stride - (int32_t)padding);

            for (oc = 0; oc < ch_im_out; oc++)
            {
                const q15_t *w = wt + (size_t)oc * col_len;
                const q15_t *col = bufferA;
                q31_t sum = (q31_t)(((uint32_t)(q31_t)bias[oc] << bias_shift) + (uint32_t)NN_ROUND(out_shift));
#if defined(ARM_MATH_DSP)
                uint32_t usum = (uint32_t)sum;
                uint32_t pairs = col_len >> 1;
                while (pairs > 0u)
                {
                    const uint32_t in_w = qv_read_q15x2_ia(&w);
                    const uint32_t in_x = qv_read_q15x2_ia(&col);
                    usum = __SMLAD(in_w, in_x, usum);
                    pairs--;
                }
                sum = (q31_t)usum;
                if ((col_len & 1u) != 0u)
                {
                    sum = (q31_t)((uint32_t)sum + (uint32_t)((q31_t)*w * (q31_t)*col));
                }
                *out++ = (q15_t)__SSAT(sum >> out_shift, 16);
#else
                {
                    const q15_t *QV_RESTRICT wr = w;
                    const q15_t *QV_RESTRICT cr = col;
                    uint32_t usum = (uint32_t)sum;
                    uint32_t i;
                    for (i = 0; i < col_len; i++)
                    {
                        usum += (uint32_t)((q31_t)wr[i] * (q31_t)cr[i]);
                    }
                    sum = (q31_t)usum;
                }
                *out++ = (q15_t)qv_sat16(sum >> out_shift);
#endif
            }
        }
    }
    return ARM_MATH_SUCCESS;
}
