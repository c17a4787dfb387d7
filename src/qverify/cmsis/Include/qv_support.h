/*
 * qverify: helpers shared by the bundled kernels (not part of any CMSIS API).
 */
#ifndef QV_SUPPORT_H
#define QV_SUPPORT_H

#include <stdint.h>
#include <string.h>

#include "qv_intrinsics.h"

/* Gather the k_y x k_x x ch input patch whose top-left corner is (base_x, base_y) into col,
 * zeros where it lies outside the dim_x x dim_y image (the padding). */
static inline void qv_im2col_q15(int16_t *QV_RESTRICT col,
                                 const int16_t *QV_RESTRICT Im_in,
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
                memset(col, 0, ch * sizeof(int16_t));
            }
            else
            {
                memcpy(col, Im_in + ((size_t)iy * (size_t)dim_x + (size_t)ix) * ch, ch * sizeof(int16_t));
            }
            col += ch;
        }
    }
}

/* Valid (unpadded) pooling geometry: every dimension non-zero and every window inside the image. */
static inline int qv_pool_args_ok(uint16_t dim_im_in_x,
                                  uint16_t dim_im_in_y,
                                  uint16_t ch_im_in,
                                  uint16_t dim_kernel_x,
                                  uint16_t dim_kernel_y,
                                  uint16_t stride_x,
                                  uint16_t stride_y,
                                  uint16_t dim_im_out_x,
                                  uint16_t dim_im_out_y)
{
    if ((dim_im_in_x == 0u) || (dim_im_in_y == 0u) || (ch_im_in == 0u) || (dim_kernel_x == 0u) ||
        (dim_kernel_y == 0u) || (stride_x == 0u) || (stride_y == 0u) || (dim_im_out_x == 0u) ||
        (dim_im_out_y == 0u))
    {
        return 0;
    }
    return !(((uint64_t)(dim_im_out_x - 1u) * stride_x + dim_kernel_x > dim_im_in_x) ||
             ((uint64_t)(dim_im_out_y - 1u) * stride_y + dim_kernel_y > dim_im_in_y));
}

/*
 * The plain-C conv loop of the bundled kernels (qv_convolve_HWC_q15_basic_nonsquare and the plain path
 * of arm_convolve_HWC_q15_fast_nonsquare): every output channel of one pixel (column c0; c1 == NULL)
 * or of two pixels (c0, c1), four channels per pass, so each weight loaded feeds several accumulators:
 *   acc = (bias << bias_shift) + round + sum(w * x)   (int32, wrapping)
 *   out = saturate_q15(acc >> out_shift)
 * The inner loops are plain dot products that compilers vectorise (pmaddwd on x86).
 */
static inline void qv_conv_pixels_q15(const int16_t *wt,
                                      uint32_t col_len,
                                      uint32_t ch_out,
                                      const int16_t *bias,
                                      uint32_t bias_shift,
                                      int32_t round,
                                      uint32_t out_shift,
                                      const int16_t *QV_RESTRICT c0,
                                      const int16_t *QV_RESTRICT c1,
                                      int16_t *out0,
                                      int16_t *out1)
{
    uint32_t oc = 0;
    if (c1 != NULL)
    {
        for (; oc + 4u <= ch_out; oc += 4u)
        {
            const int16_t *QV_RESTRICT w0 = wt + (size_t)oc * col_len;
            const int16_t *QV_RESTRICT w1 = w0 + col_len;
            const int16_t *QV_RESTRICT w2 = w1 + col_len;
            const int16_t *QV_RESTRICT w3 = w2 + col_len;
            uint32_t a00 = (uint32_t)qv_acc_init(bias[oc], bias_shift, round);
            uint32_t a10 = (uint32_t)qv_acc_init(bias[oc + 1u], bias_shift, round);
            uint32_t a20 = (uint32_t)qv_acc_init(bias[oc + 2u], bias_shift, round);
            uint32_t a30 = (uint32_t)qv_acc_init(bias[oc + 3u], bias_shift, round);
            uint32_t a01 = a00, a11 = a10, a21 = a20, a31 = a30;
            uint32_t i;
            for (i = 0; i < col_len; i++)
            {
                const int32_t x0 = c0[i];
                const int32_t x1 = c1[i];
                a00 += (uint32_t)(w0[i] * x0);
                a01 += (uint32_t)(w0[i] * x1);
                a10 += (uint32_t)(w1[i] * x0);
                a11 += (uint32_t)(w1[i] * x1);
                a20 += (uint32_t)(w2[i] * x0);
                a21 += (uint32_t)(w2[i] * x1);
                a30 += (uint32_t)(w3[i] * x0);
                a31 += (uint32_t)(w3[i] * x1);
            }
            out0[oc] = qv_out_q15((int32_t)a00, out_shift);
            out1[oc] = qv_out_q15((int32_t)a01, out_shift);
            out0[oc + 1u] = qv_out_q15((int32_t)a10, out_shift);
            out1[oc + 1u] = qv_out_q15((int32_t)a11, out_shift);
            out0[oc + 2u] = qv_out_q15((int32_t)a20, out_shift);
            out1[oc + 2u] = qv_out_q15((int32_t)a21, out_shift);
            out0[oc + 3u] = qv_out_q15((int32_t)a30, out_shift);
            out1[oc + 3u] = qv_out_q15((int32_t)a31, out_shift);
        }
        for (; oc < ch_out; oc++)
        {
            const int16_t *QV_RESTRICT w0 = wt + (size_t)oc * col_len;
            uint32_t a00 = (uint32_t)qv_acc_init(bias[oc], bias_shift, round);
            uint32_t a01 = a00;
            uint32_t i;
            for (i = 0; i < col_len; i++)
            {
                a00 += (uint32_t)(w0[i] * (int32_t)c0[i]);
                a01 += (uint32_t)(w0[i] * (int32_t)c1[i]);
            }
            out0[oc] = qv_out_q15((int32_t)a00, out_shift);
            out1[oc] = qv_out_q15((int32_t)a01, out_shift);
        }
        return;
    }
    for (; oc + 4u <= ch_out; oc += 4u)
    {
        const int16_t *QV_RESTRICT w0 = wt + (size_t)oc * col_len;
        const int16_t *QV_RESTRICT w1 = w0 + col_len;
        const int16_t *QV_RESTRICT w2 = w1 + col_len;
        const int16_t *QV_RESTRICT w3 = w2 + col_len;
        uint32_t a0 = (uint32_t)qv_acc_init(bias[oc], bias_shift, round);
        uint32_t a1 = (uint32_t)qv_acc_init(bias[oc + 1u], bias_shift, round);
        uint32_t a2 = (uint32_t)qv_acc_init(bias[oc + 2u], bias_shift, round);
        uint32_t a3 = (uint32_t)qv_acc_init(bias[oc + 3u], bias_shift, round);
        uint32_t i;
        for (i = 0; i < col_len; i++)
        {
            const int32_t x0 = c0[i];
            a0 += (uint32_t)(w0[i] * x0);
            a1 += (uint32_t)(w1[i] * x0);
            a2 += (uint32_t)(w2[i] * x0);
            a3 += (uint32_t)(w3[i] * x0);
        }
        out0[oc] = qv_out_q15((int32_t)a0, out_shift);
        out0[oc + 1u] = qv_out_q15((int32_t)a1, out_shift);
        out0[oc + 2u] = qv_out_q15((int32_t)a2, out_shift);
        out0[oc + 3u] = qv_out_q15((int32_t)a3, out_shift);
    }
    for (; oc < ch_out; oc++)
    {
        const int16_t *QV_RESTRICT w0 = wt + (size_t)oc * col_len;
        uint32_t a0 = (uint32_t)qv_acc_init(bias[oc], bias_shift, round);
        uint32_t i;
        for (i = 0; i < col_len; i++)
        {
            a0 += (uint32_t)(w0[i] * (int32_t)c0[i]);
        }
        out0[oc] = qv_out_q15((int32_t)a0, out_shift);
    }
}

#endif
