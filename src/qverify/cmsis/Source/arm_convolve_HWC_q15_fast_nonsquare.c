/*
 * qverify bundled CMSIS-NN replacement: arm_convolve_HWC_q15_fast_nonsquare.
 *
 * Non-square HWC q15 convolution for even ch_im_in and ch_im_out (else
 * ARM_MATH_SIZE_MISMATCH, nothing written).  Written for qverify from the
 * legacy API contract; the code is not Arm's.
 *
 * Two output pixels are gathered at a time into bufferA (two columns of
 * ch_im_in * k_x * k_y values each, zero padding), and two output channels
 * are computed per pass, so every weight pair loaded feeds two accumulators
 * and every input pair two more.  With even ch_im_in the column length is
 * even, so the DSP path is pure __SMLAD on packed pairs.  An odd number of
 * output pixels leaves one column, handled with two accumulators.
 *   acc = ((q31_t)bias[o] << bias_shift) + NN_ROUND(out_shift) + sum(w * x)   (int32, wrapping)
 *   out = (q15_t)__SSAT(acc >> out_shift, 16)
 *
 * The DSP path (ARM_MATH_DSP) refuses what Arm's DSP path cannot compute
 * (ARM_MATH_SIZE_MISMATCH for an odd output width: Arm's pairs pixels along
 * x; ARM_MATH_ARGUMENT_ERROR past its int16_t / uint16_t loop counters), so a
 * host or target run of the bundled kernels fails where Arm's would be wrong.
 *
 * The plain-C path (no ARM_MATH_DSP) computes four output channels per pass
 * and reads the columns of 1-D signals (windows spanning a whole axis)
 * straight from Im_in; its inner loops are written for compilers to vectorise.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"
#include "qv_support.h"

#if defined(ARM_MATH_DSP)
static q31_t qv_cfn_init(q15_t bias, uint16_t bias_shift, uint16_t out_shift)
{
    (void)out_shift; /* unused when ARM_NN_TRUNCATE makes NN_ROUND 0 */
    return (q31_t)(((uint32_t)(q31_t)bias << bias_shift) + (uint32_t)NN_ROUND(out_shift));
}

/* Output channels of two pixels (columns c0, c1) -> out0, out1. */
static void qv_cfn_two_columns(const q15_t *wt,
                               uint32_t col_len,
                               uint32_t ch_out,
                               const q15_t *bias,
                               uint16_t bias_shift,
                               uint16_t out_shift,
                               const q15_t *c0,
                               const q15_t *c1,
                               q15_t *out0,
                               q15_t *out1)
{
    uint32_t oc;
    for (oc = 0; oc < ch_out; oc += 2u)
    {
        const q15_t *w0 = wt + (size_t)oc * col_len;
        const q15_t *w1 = w0 + col_len;
        const q15_t *p0 = c0;
        const q15_t *p1 = c1;
        uint32_t u00 = (uint32_t)qv_cfn_init(bias[oc], bias_shift, out_shift); /* channel oc, pixel 0 */
        uint32_t u01 = u00;                                                     /* channel oc, pixel 1 */
        uint32_t u10 = (uint32_t)qv_cfn_init(bias[oc + 1u], bias_shift, out_shift);
        uint32_t u11 = u10;
        uint32_t pairs = col_len >> 1; /* col_len is even */
        while (pairs > 0u)
        {
            const uint32_t a0 = qv_read_q15x2_ia(&p0);
            const uint32_t a1 = qv_read_q15x2_ia(&p1);
            const uint32_t b0 = qv_read_q15x2_ia(&w0);
            const uint32_t b1 = qv_read_q15x2_ia(&w1);
            u00 = __SMLAD(b0, a0, u00);
            u01 = __SMLAD(b0, a1, u01);
            u10 = __SMLAD(b1, a0, u10);
            u11 = __SMLAD(b1, a1, u11);
            pairs--;
        }
        out0[oc] = (q15_t)__SSAT((q31_t)u00 >> out_shift, 16);
        out0[oc + 1u] = (q15_t)__SSAT((q31_t)u10 >> out_shift, 16);
        out1[oc] = (q15_t)__SSAT((q31_t)u01 >> out_shift, 16);
        out1[oc + 1u] = (q15_t)__SSAT((q31_t)u11 >> out_shift, 16);
    }
}

/* Output channels of one pixel (column c0) -> out0. */
static void qv_cfn_one_column(const q15_t *wt,
                              uint32_t col_len,
                              uint32_t ch_out,
                              const q15_t *bias,
                              uint16_t bias_shift,
                              uint16_t out_shift,
                              const q15_t *c0,
                              q15_t *out0)
{
    uint32_t oc;
    for (oc = 0; oc < ch_out; oc += 2u)
    {
        const q15_t *w0 = wt + (size_t)oc * col_len;
        const q15_t *w1 = w0 + col_len;
        const q15_t *p0 = c0;
        uint32_t u0 = (uint32_t)qv_cfn_init(bias[oc], bias_shift, out_shift);
        uint32_t u1 = (uint32_t)qv_cfn_init(bias[oc + 1u], bias_shift, out_shift);
        uint32_t pairs = col_len >> 1;
        while (pairs > 0u)
        {
            const uint32_t a0 = qv_read_q15x2_ia(&p0);
            u0 = __SMLAD(qv_read_q15x2_ia(&w0), a0, u0);
            u1 = __SMLAD(qv_read_q15x2_ia(&w1), a0, u1);
            pairs--;
        }
        out0[oc] = (q15_t)__SSAT((q31_t)u0 >> out_shift, 16);
        out0[oc + 1u] = (q15_t)__SSAT((q31_t)u1 >> out_shift, 16);
    }
}
#else
/*
 * Plain path: the qv_ kernels' loop (qv_conv_pixels_q15, qv_support.h), every output channel of the
 * pixels, four channels per pass; compilers vectorise its inner loops (pmaddwd on x86).
 */
static void qv_cfn_two_columns(const q15_t *wt,
                               uint32_t col_len,
                               uint32_t ch_out,
                               const q15_t *bias,
                               uint16_t bias_shift,
                               uint16_t out_shift,
                               const q15_t *c0,
                               const q15_t *c1,
                               q15_t *out0,
                               q15_t *out1)
{
    qv_conv_pixels_q15(wt, col_len, ch_out, bias, bias_shift, NN_ROUND(out_shift), out_shift, c0, c1, out0, out1);
}

static void qv_cfn_one_column(const q15_t *wt,
                              uint32_t col_len,
                              uint32_t ch_out,
                              const q15_t *bias,
                              uint16_t bias_shift,
                              uint16_t out_shift,
                              const q15_t *c0,
                              q15_t *out0)
{
    qv_conv_pixels_q15(wt, col_len, ch_out, bias, bias_shift, NN_ROUND(out_shift), out_shift, c0, NULL, out0, NULL);
}
#endif

arm_status arm_convolve_HWC_q15_fast_nonsquare(const q15_t *Im_in,
                                               const uint16_t dim_im_in_x,
                                               const uint16_t dim_im_in_y,
                                               const uint16_t ch_im_in,
                                               const q15_t *wt,
                                               const uint16_t ch_im_out,
                                               const uint16_t dim_kernel_x,
                                               const uint16_t dim_kernel_y,
                                               const uint16_t padding_x,
                                               const uint16_t padding_y,
                                               const uint16_t stride_x,
                                               const uint16_t stride_y,
                                               const q15_t *bias,
                                               const uint16_t bias_shift,
                                               const uint16_t out_shift,
                                               q15_t *Im_out,
                                               const uint16_t dim_im_out_x,
                                               const uint16_t dim_im_out_y,
                                               q15_t *bufferA,
                                               q7_t *bufferB)
{
    uint32_t col_len;
    uint32_t n_pix;
    uint32_t p;
    q15_t *col0;
    q15_t *col1;

    (void)bufferB;
    if (((ch_im_in & 1u) != 0u) || ((ch_im_out & 1u) != 0u))
    {
        return ARM_MATH_SIZE_MISMATCH;
    }
    if ((dim_im_in_x == 0u) || (dim_im_in_y == 0u) || (ch_im_in == 0u) || (ch_im_out == 0u) ||
        (dim_kernel_x == 0u) || (dim_kernel_y == 0u) || (stride_x == 0u) || (stride_y == 0u) ||
        (dim_im_out_x == 0u) || (dim_im_out_y == 0u) || (bias_shift > 31u) || (out_shift > 31u) ||
        ((uint32_t)dim_kernel_x > (uint32_t)dim_im_in_x + 2u * (uint32_t)padding_x) ||
        ((uint32_t)dim_kernel_y > (uint32_t)dim_im_in_y + 2u * (uint32_t)padding_y) ||
        ((uint64_t)ch_im_in * dim_kernel_x * dim_kernel_y > 0x1FFFFFFFu))
    {
        return ARM_MATH_ARGUMENT_ERROR;
    }

#if defined(ARM_MATH_DSP)
    if ((dim_im_out_x & 1u) != 0u)
    {
        return ARM_MATH_SIZE_MISMATCH;
    }
    if (!qv_dsp_conv_args_ok(ch_im_in, dim_kernel_x, dim_kernel_y, padding_x, padding_y, stride_x, stride_y,
                             dim_im_out_x, dim_im_out_y, 1u))
    {
        return ARM_MATH_ARGUMENT_ERROR;
    }
#endif

    col_len = (uint32_t)ch_im_in * dim_kernel_x * dim_kernel_y;
    n_pix = (uint32_t)dim_im_out_x * dim_im_out_y;
    col0 = bufferA;
    col1 = bufferA + col_len;

#if !defined(ARM_MATH_DSP)
    qv_line_t line;
    if (qv_conv_line(dim_im_in_x, dim_im_in_y, ch_im_in, dim_kernel_x, dim_kernel_y, padding_x, padding_y, stride_x,
                     stride_y, dim_im_out_x, dim_im_out_y, &line))
    {
        /*
         * Each window spans a whole axis (a 1-D signal), so a column is a
         * contiguous run of Im_in and needs no copy; only windows that reach
         * into the zero padding are gathered.
         */
        for (p = 0; p + 1u < n_pix; p += 2u)
        {
            const int32_t at0 = (int32_t)p * line.stride - line.pad;
            const int32_t at1 = at0 + line.stride;
            const q15_t *a = col0;
            const q15_t *b = col1;
            if ((at0 >= 0) && (at1 + line.k <= line.n_in))
            {
                a = Im_in + (size_t)at0 * line.step;
                b = Im_in + (size_t)at1 * line.step;
            }
            else
            {
                qv_line_im2col_q15(col0, Im_in, dim_im_in_x, dim_im_in_y, ch_im_in, dim_kernel_x, dim_kernel_y, &line,
                                   at0);
                qv_line_im2col_q15(col1, Im_in, dim_im_in_x, dim_im_in_y, ch_im_in, dim_kernel_x, dim_kernel_y, &line,
                                   at1);
            }
            qv_cfn_two_columns(wt, col_len, ch_im_out, bias, bias_shift, out_shift, a, b,
                               Im_out + (size_t)p * ch_im_out, Im_out + (size_t)(p + 1u) * ch_im_out);
        }
    }
    else
#endif
    for (p = 0; p + 1u < n_pix; p += 2u)
    {
        const int32_t oy0 = (int32_t)(p / dim_im_out_x);
        const int32_t ox0 = (int32_t)(p % dim_im_out_x);
        const int32_t oy1 = (int32_t)((p + 1u) / dim_im_out_x);
        const int32_t ox1 = (int32_t)((p + 1u) % dim_im_out_x);
        qv_im2col_q15(col0, Im_in, dim_im_in_x, dim_im_in_y, ch_im_in, dim_kernel_x, dim_kernel_y,
                      ox0 * (int32_t)stride_x - (int32_t)padding_x, oy0 * (int32_t)stride_y - (int32_t)padding_y);
        qv_im2col_q15(col1, Im_in, dim_im_in_x, dim_im_in_y, ch_im_in, dim_kernel_x, dim_kernel_y,
                      ox1 * (int32_t)stride_x - (int32_t)padding_x, oy1 * (int32_t)stride_y - (int32_t)padding_y);
        qv_cfn_two_columns(wt, col_len, ch_im_out, bias, bias_shift, out_shift, col0, col1,
                           Im_out + (size_t)p * ch_im_out, Im_out + (size_t)(p + 1u) * ch_im_out);
    }
    if (p < n_pix)
    {
        const int32_t oy0 = (int32_t)(p / dim_im_out_x);
        const int32_t ox0 = (int32_t)(p % dim_im_out_x);
        qv_im2col_q15(col0, Im_in, dim_im_in_x, dim_im_in_y, ch_im_in, dim_kernel_x, dim_kernel_y,
                      ox0 * (int32_t)stride_x - (int32_t)padding_x, oy0 * (int32_t)stride_y - (int32_t)padding_y);
        qv_cfn_one_column(wt, col_len, ch_im_out, bias, bias_shift, out_shift, col0,
                          Im_out + (size_t)p * ch_im_out);
    }
    return ARM_MATH_SUCCESS;
}
