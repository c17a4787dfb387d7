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

/*
 * What Arm's ARM_MATH_DSP convolutions need beyond their documentation (qverify/kernels.py holds the same
 * contract for the plan): their im2col loops count output pixels and window positions in int16_t, and
 * their uint16_t inner loop count is (ch_in * k_x * k_y) >> loop_shift (1: the fast convs, 2: basic).
 * The bundled kernels refuse such a call with ARM_MATH_ARGUMENT_ERROR instead of computing what Arm's
 * code would not.
 */
static inline int qv_dsp_conv_args_ok(uint32_t ch_in, uint32_t k_x, uint32_t k_y, uint32_t pad_x, uint32_t pad_y,
                                      uint32_t stride_x, uint32_t stride_y, uint32_t out_x, uint32_t out_y,
                                      uint32_t loop_shift)
{
    const int64_t reach_x = ((int64_t)out_x - 1) * (int64_t)stride_x - (int64_t)pad_x + (int64_t)k_x;
    const int64_t reach_y = ((int64_t)out_y - 1) * (int64_t)stride_y - (int64_t)pad_y + (int64_t)k_y;
    return ((((uint64_t)ch_in * k_x * k_y) >> loop_shift) <= 0xFFFFu) && (out_x <= 0x7FFFu) && (out_y <= 0x7FFFu) &&
           (reach_x <= 0x7FFF) && (reach_y <= 0x7FFF);
}

/*
 * A convolution over a 1-D signal, either way round: windows spanning whole rows (the length on y), or an
 * image of one row (the length on x), unpadded across.  Then the window of output pixel p is one
 * contiguous run of Im_in starting at position p * stride - pad along the length, `step` elements apart.
 */
typedef struct
{
    int32_t n_in, k, pad, stride, n_out; /* along the length */
    size_t step;                          /* elements between consecutive positions along the length */
    int on_x;                             /* the length is x */
} qv_line_t;

static inline int qv_conv_line(uint16_t in_x, uint16_t in_y, uint16_t ch, uint16_t k_x, uint16_t k_y, uint16_t pad_x,
                               uint16_t pad_y, uint16_t stride_x, uint16_t stride_y, uint16_t out_x, uint16_t out_y,
                               qv_line_t *line)
{
    if ((k_x == in_x) && (pad_x == 0u) && (out_x == 1u))
    {
        line->n_in = in_y, line->k = k_y, line->pad = pad_y, line->stride = stride_y, line->n_out = out_y;
        line->step = (size_t)in_x * ch, line->on_x = 0;
        return 1;
    }
    if ((in_y == 1u) && (k_y == 1u) && (pad_y == 0u) && (out_y == 1u)) /* one row: its windows are runs */
    {
        line->n_in = in_x, line->k = k_x, line->pad = pad_x, line->stride = stride_x, line->n_out = out_x;
        line->step = ch, line->on_x = 1;
        return 1;
    }
    return 0;
}

/* Gather the window at position `at` along a line into col (zeros in the padding). */
static inline void qv_line_im2col_q15(int16_t *QV_RESTRICT col, const int16_t *QV_RESTRICT Im_in, uint16_t in_x,
                                      uint16_t in_y, uint16_t ch, uint16_t k_x, uint16_t k_y, const qv_line_t *line,
                                      int32_t at)
{
    qv_im2col_q15(col, Im_in, in_x, in_y, ch, k_x, k_y, line->on_x ? at : 0, line->on_x ? 0 : at);
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
