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
 * The plain-C path computes four output channels per pass with dot-product
 * loops that compilers vectorise.
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

#if !defined(ARM_MATH_DSP)
/*
 * Plain path: every output channel of one pixel, four per pass, so each
 * column value loaded feeds four accumulators; the inner loops are plain
 * dot products that compilers vectorise (pmaddwd on x86).
 */
static void qv_cb_pixel(const q15_t *wt,
                        uint32_t col_len,
                        uint32_t ch_out,
                        const q15_t *bias,
                        uint16_t bias_shift,
                        uint16_t out_shift,
                        const q15_t *QV_RESTRICT col,
                        q15_t *out)
{
    const uint32_t round = (uint32_t)NN_ROUND(out_shift);
    uint32_t oc = 0;
    (void)out_shift; /* NN_ROUND ignores it when ARM_NN_TRUNCATE is defined */
    for (; oc + 4u <= ch_out; oc += 4u)
    {
        const q15_t *QV_RESTRICT w0 = wt + (size_t)oc * col_len;
        const q15_t *QV_RESTRICT w1 = w0 + col_len;
        const q15_t *QV_RESTRICT w2 = w1 + col_len;
        const q15_t *QV_RESTRICT w3 = w2 + col_len;
        uint32_t a0 = ((uint32_t)(q31_t)bias[oc] << bias_shift) + round;
        uint32_t a1 = ((uint32_t)(q31_t)bias[oc + 1u] << bias_shift) + round;
        uint32_t a2 = ((uint32_t)(q31_t)bias[oc + 2u] << bias_shift) + round;
        uint32_t a3 = ((uint32_t)(q31_t)bias[oc + 3u] << bias_shift) + round;
        uint32_t i;
        for (i = 0; i < col_len; i++)
        {
            const q31_t x = col[i];
            a0 += (uint32_t)(w0[i] * x);
            a1 += (uint32_t)(w1[i] * x);
            a2 += (uint32_t)(w2[i] * x);
            a3 += (uint32_t)(w3[i] * x);
        }
        out[oc] = (q15_t)qv_sat16((q31_t)a0 >> out_shift);
        out[oc + 1u] = (q15_t)qv_sat16((q31_t)a1 >> out_shift);
        out[oc + 2u] = (q15_t)qv_sat16((q31_t)a2 >> out_shift);
        out[oc + 3u] = (q15_t)qv_sat16((q31_t)a3 >> out_shift);
    }
    for (; oc < ch_out; oc++)
    {
        const q15_t *QV_RESTRICT w0 = wt + (size_t)oc * col_len;
        uint32_t a0 = ((uint32_t)(q31_t)bias[oc] << bias_shift) + round;
        uint32_t i;
        for (i = 0; i < col_len; i++)
        {
            a0 += (uint32_t)(w0[i] * (q31_t)col[i]);
        }
        out[oc] = (q15_t)qv_sat16((q31_t)a0 >> out_shift);
    }
}
#endif

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
            qv_cb_im2col(bufferA, Im_in, dim_im_in, ch_im_in, dim_kernel,
                         ox * (int32_t)stride - (int32_t)padding, oy * (int32_t)stride - (int32_t)padding);

#if defined(ARM_MATH_DSP)
            uint32_t oc;
            for (oc = 0; oc < ch_im_out; oc++)
            {
                const q15_t *w = wt + (size_t)oc * col_len;
                const q15_t *col = bufferA;
                q31_t sum = (q31_t)(((uint32_t)(q31_t)bias[oc] << bias_shift) + (uint32_t)NN_ROUND(out_shift));
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
            }
#else
            qv_cb_pixel(wt, col_len, ch_im_out, bias, bias_shift, out_shift, bufferA, out);
            out += ch_im_out;
#endif
        }
    }
    return ARM_MATH_SUCCESS;
}
