/*
 * qverify: non-square HWC q15 convolution for any channel count.
 *
 * Written for qverify (not derived from Arm's sources).  Per output pixel
 * the [k_y][k_x][c_in] input patch is gathered into bufferA (zeros where the
 * window leaves the image), then each output channel is one dot product of
 * its weight row with that column:
 *   acc = ((q31_t)bias[o] << bias_shift) + NN_ROUND(out_shift) + sum(w * x)
 *   out = (q15_t)__SSAT(acc >> out_shift, 16)
 * all in int32 with wrap-around (as SMLAD).  The ARM_MATH_DSP path reads
 * two q15 values per 32-bit word and uses __SMLAD, with a scalar step for
 * an odd patch length.  The plain path computes four output channels per
 * pass with dot-product loops compilers vectorise, and reads the columns of
 * 1-D signals (windows spanning a whole axis) straight from Im_in.
 */
#include "qv_nnfunctions.h"
#include "qv_intrinsics.h"
#include "qv_support.h"

arm_status qv_convolve_HWC_q15_basic_nonsquare(const q15_t *Im_in,
                                               uint16_t dim_im_in_x,
                                               uint16_t dim_im_in_y,
                                               uint16_t ch_im_in,
                                               const q15_t *wt,
                                               uint16_t ch_im_out,
                                               uint16_t dim_kernel_x,
                                               uint16_t dim_kernel_y,
                                               uint16_t padding_x,
                                               uint16_t padding_y,
                                               uint16_t stride_x,
                                               uint16_t stride_y,
                                               const q15_t *bias,
                                               uint16_t bias_shift,
                                               uint16_t out_shift,
                                               q15_t *Im_out,
                                               uint16_t dim_im_out_x,
                                               uint16_t dim_im_out_y,
                                               q15_t *bufferA,
                                               q7_t *bufferB)
{
    uint32_t col_len;
    int32_t round;
    int32_t oy;
    int32_t ox;
    q15_t *out;

    (void)bufferB;
    if ((dim_im_in_x == 0u) || (dim_im_in_y == 0u) || (ch_im_in == 0u) || (ch_im_out == 0u) ||
        (dim_kernel_x == 0u) || (dim_kernel_y == 0u) || (stride_x == 0u) || (stride_y == 0u) ||
        (dim_im_out_x == 0u) || (dim_im_out_y == 0u) || (bias_shift > 31u) || (out_shift > 31u))
    {
        return ARM_MATH_ARGUMENT_ERROR;
    }
    if (((uint32_t)dim_kernel_x > (uint32_t)dim_im_in_x + 2u * (uint32_t)padding_x) ||
        ((uint32_t)dim_kernel_y > (uint32_t)dim_im_in_y + 2u * (uint32_t)padding_y))
    {
        return ARM_MATH_ARGUMENT_ERROR;
    }
    if ((uint64_t)ch_im_in * dim_kernel_x * dim_kernel_y > 0x3FFFFFFFu)
    {
        return ARM_MATH_ARGUMENT_ERROR;
    }

    col_len = (uint32_t)ch_im_in * dim_kernel_x * dim_kernel_y;
    round = QV_NN_ROUND(out_shift);
    out = Im_out;

#if !defined(ARM_MATH_DSP)
    qv_line_t line;
    if (qv_conv_line(dim_im_in_x, dim_im_in_y, ch_im_in, dim_kernel_x, dim_kernel_y, padding_x, padding_y, stride_x,
                     stride_y, dim_im_out_x, dim_im_out_y, &line))
    {
        /*
         * Each window spans a whole axis (a 1-D signal), so a column is a
         * contiguous run of Im_in and needs no copy; two pixels per pass.
         * Windows reaching into the zero padding are gathered into bufferA
         * one at a time.  Output pixel o is at Im_out + o * ch_im_out either
         * way round, as one of the output axes is 1.
         */
        int32_t o = 0;
        while (o < line.n_out)
        {
            const int32_t at0 = o * line.stride - line.pad;
            const int32_t at1 = at0 + line.stride;
            q15_t *dst = Im_out + (size_t)o * ch_im_out;
            if ((at0 >= 0) && (o + 1 < line.n_out) && (at1 + line.k <= line.n_in))
            {
                qv_conv_pixels_q15(wt, col_len, ch_im_out, bias, bias_shift, round, out_shift,
                                   Im_in + (size_t)at0 * line.step, Im_in + (size_t)at1 * line.step, dst,
                                   dst + ch_im_out);
                o += 2;
            }
            else
            {
                const q15_t *c0 = bufferA;
                if ((at0 >= 0) && (at0 + line.k <= line.n_in))
                {
                    c0 = Im_in + (size_t)at0 * line.step;
                }
                else
                {
                    qv_line_im2col_q15(bufferA, Im_in, dim_im_in_x, dim_im_in_y, ch_im_in, dim_kernel_x,
                                       dim_kernel_y, &line, at0);
                }
                qv_conv_pixels_q15(wt, col_len, ch_im_out, bias, bias_shift, round, out_shift, c0, NULL, dst, NULL);
                o += 1;
            }
        }
        return ARM_MATH_SUCCESS;
    }
    for (oy = 0; oy < (int32_t)dim_im_out_y; oy++)
    {
        for (ox = 0; ox < (int32_t)dim_im_out_x; ox++)
        {
            qv_im2col_q15(bufferA, Im_in, dim_im_in_x, dim_im_in_y, ch_im_in, dim_kernel_x, dim_kernel_y,
                          ox * (int32_t)stride_x - (int32_t)padding_x, oy * (int32_t)stride_y - (int32_t)padding_y);
            qv_conv_pixels_q15(wt, col_len, ch_im_out, bias, bias_shift, round, out_shift, bufferA, NULL, out, NULL);
            out += ch_im_out;
        }
    }
#else
    for (oy = 0; oy < (int32_t)dim_im_out_y; oy++)
    {
        for (ox = 0; ox < (int32_t)dim_im_out_x; ox++)
        {
            uint32_t oc;
            qv_im2col_q15(bufferA, Im_in, dim_im_in_x, dim_im_in_y, ch_im_in, dim_kernel_x, dim_kernel_y,
                          ox * (int32_t)stride_x - (int32_t)padding_x, oy * (int32_t)stride_y - (int32_t)padding_y);

            for (oc = 0; oc < ch_im_out; oc++)
            {
                const q15_t *w = wt + (size_t)oc * col_len;
                const q15_t *col = bufferA;
                int32_t acc = qv_acc_init(bias[oc], bias_shift, round);
                uint32_t uacc = (uint32_t)acc;
                uint32_t pairs = col_len >> 1;
                while (pairs > 0u)
                {
                    const uint32_t in_w = qv_read_q15x2_ia(&w);
                    const uint32_t in_x = qv_read_q15x2_ia(&col);
                    uacc = __SMLAD(in_w, in_x, uacc);
                    pairs--;
                }
                acc = (int32_t)uacc;
                if ((col_len & 1u) != 0u)
                {
                    acc = qv_wrap_add(acc, (int32_t)*w * (int32_t)*col);
                }
                *out++ = (q15_t)__SSAT(acc >> out_shift, 16);
            }
        }
    }
#endif
    return ARM_MATH_SUCCESS;
}
