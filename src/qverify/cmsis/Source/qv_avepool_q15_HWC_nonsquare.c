/*
 * qverify: HWC q15 average pooling, non-square, valid padding.
 *
 * Written for qverify.  Output pixel (oy, ox), channel c is
 *   (sum over the window of Im_in[oy * stride_y + ky][ox * stride_x + kx][c])
 *     / (dim_kernel_x * dim_kernel_y)
 * with an exact int64 sum and C integer division (truncation toward zero);
 * no rounding shift is involved.  Each window must lie fully inside the
 * image ((dim_im_out - 1) * stride + dim_kernel <= dim_im_in per axis), else
 * ARM_MATH_ARGUMENT_ERROR and nothing is written.  Channels are processed in
 * blocks so that the accumulate loop runs over contiguous memory.
 */
#include "qv_nnfunctions.h"
#include "qv_intrinsics.h"
#include "qv_support.h"

#define QV_AP_BLOCK 64u

arm_status qv_avepool_q15_HWC_nonsquare(const q15_t *Im_in,
                                        uint16_t dim_im_in_x,
                                        uint16_t dim_im_in_y,
                                        uint16_t ch_im_in,
                                        uint16_t dim_kernel_x,
                                        uint16_t dim_kernel_y,
                                        uint16_t stride_x,
                                        uint16_t stride_y,
                                        uint16_t dim_im_out_x,
                                        uint16_t dim_im_out_y,
                                        q15_t *Im_out)
{
    uint32_t oy;
    uint32_t ox;
    const uint32_t ch = ch_im_in;
    int64_t count;

    if (!qv_pool_args_ok(dim_im_in_x, dim_im_in_y, ch_im_in, dim_kernel_x, dim_kernel_y, stride_x, stride_y,
                         dim_im_out_x, dim_im_out_y))
    {
        return ARM_MATH_ARGUMENT_ERROR;
    }
    count = (int64_t)dim_kernel_x * (int64_t)dim_kernel_y;

    for (oy = 0; oy < dim_im_out_y; oy++)
    {
        for (ox = 0; ox < dim_im_out_x; ox++)
        {
            q15_t *out = Im_out + ((size_t)oy * dim_im_out_x + ox) * ch;
            const size_t y0 = (size_t)oy * stride_y;
            const size_t x0 = (size_t)ox * stride_x;
            uint32_t c0;
            for (c0 = 0; c0 < ch; c0 += QV_AP_BLOCK)
            {
                int64_t sum[QV_AP_BLOCK];
                const uint32_t n = ((ch - c0) < QV_AP_BLOCK) ? (ch - c0) : QV_AP_BLOCK;
                uint32_t ky;
                uint32_t kx;
                uint32_t c;
                for (c = 0; c < n; c++)
                {
                    sum[c] = 0;
                }
                for (ky = 0; ky < dim_kernel_y; ky++)
                {
                    for (kx = 0; kx < dim_kernel_x; kx++)
                    {
                        const q15_t *QV_RESTRICT in = Im_in + ((y0 + ky) * dim_im_in_x + (x0 + kx)) * ch + c0;
                        for (c = 0; c < n; c++)
                        {
                            sum[c] += in[c];
                        }
                    }
                }
                for (c = 0; c < n; c++)
                {
                    out[c0 + c] = (q15_t)(sum[c] / count);
                }
            }
        }
    }
    return ARM_MATH_SUCCESS;
}
