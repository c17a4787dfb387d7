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
 * an odd patch length; the plain path is a simple loop the compiler can
 * vectorise.
 */
#include "qv_nnfunctions.h"
#include "qv_intrinsics.h"

/* Gather the input patch whose top-left corner is (base_x, base_y). */
static void qv_bns_im2col(q15_t *QV_RESTRICT col,
                          const q15_t *QV_RESTRICT Im_in,
                          int32_t dim_x,
                          int32_t dim_y,
                          uint32_t ch,
                          int32_t k_x,
                          int32_t k_y,
                          int32_t base_x,
                          int32_t base_y)
{
    int32_t ky;
    int32_t kx;
    for (ky = 0; ky < k_y; ky++)
    {
        const int32_t iy = base_y + ky;
        for (kx = 0; kx < k_x; kx++)
        {
            const int32_t ix = base_x + kx;
            if ((iy < 0) || (iy >= dim_y) || (ix < 0) || (ix >= dim_x))
            {
                memset(col, 0, ch * sizeof(q15_t));
            }
            else
            {
                memcpy(col, Im_in + ((size_t)iy * (size_t)dim_x + (size_t)ix) * ch, ch * sizeof(q15_t));
            }
            col += ch;
        }
    }
}

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

    for (oy = 0; oy < (int32_t)dim_im_out_y; oy++)
    {
        for (ox = 0; ox < (int32_t)dim_im_out_x; ox++)
        {
            uint32_t oc;
            qv_bns_im2col(bufferA, Im_in, dim_im_in_x, dim_im_in_y, ch_im_in, dim_kernel_x, dim_kernel_y,
                          ox * (int32_t)stride_x - (int32_t)padding_x, oy * (int32_t)stride_y - (int32_t)padding_y);

            for (oc = 0; oc < ch_im_out; oc++)
            {
                const q15_t *w = wt + (size_t)oc * col_len;
                const q15_t *col = bufferA;
                int32_t acc = qv_acc_init(bias[oc], bias_shift, round);
#if defined(ARM_MATH_DSP)
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
#else
                {
                    const q15_t *QV_RESTRICT wr = w;
                    const q15_t *QV_RESTRICT cr = col;
                    uint32_t sum = (uint32_t)acc;
                    uint32_t i;
                    for (i = 0; i < col_len; i++)
                    {
                        sum += (uint32_t)((int32_t)wr[i] * (int32_t)cr[i]);
                    }
                    acc = (int32_t)sum;
                }
                *out++ = qv_out_q15(acc, out_shift);
#endif
            }
        }
    }
    return ARM_MATH_SUCCESS;
}
