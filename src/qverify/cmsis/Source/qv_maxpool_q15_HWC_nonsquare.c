/*
 * qverify: HWC q15 max pooling, non-square, valid padding.
 *
 * Written for qverify.  Output pixel (oy, ox), channel c is the maximum of
 * Im_in[oy * stride_y + ky][ox * stride_x + kx][c] over the window.  Each
 * window must lie fully inside the image:
 *   (dim_im_out - 1) * stride + dim_kernel <= dim_im_in   per axis,
 * else ARM_MATH_ARGUMENT_ERROR and nothing is written.  The inner loop runs
 * over contiguous channels (vectorisable); Im_out must not overlap Im_in.
 */
#include "qv_nnfunctions.h"
#include "qv_intrinsics.h"
#include "qv_support.h"

arm_status qv_maxpool_q15_HWC_nonsquare(const q15_t *Im_in,
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

    if (!qv_pool_args_ok(dim_im_in_x, dim_im_in_y, ch_im_in, dim_kernel_x, dim_kernel_y, stride_x, stride_y,
                         dim_im_out_x, dim_im_out_y))
    {
        return ARM_MATH_ARGUMENT_ERROR;
    }

    for (oy = 0; oy < dim_im_out_y; oy++)
    {
        for (ox = 0; ox < dim_im_out_x; ox++)
        {
            q15_t *QV_RESTRICT out = Im_out + ((size_t)oy * dim_im_out_x + ox) * ch;
            const size_t y0 = (size_t)oy * stride_y;
            const size_t x0 = (size_t)ox * stride_x;
            uint32_t ky;
            uint32_t kx;
            /* the window's first pixel initialises the maximum */
            memcpy(out, Im_in + (y0 * dim_im_in_x + x0) * ch, ch * sizeof(q15_t));
            for (ky = 0; ky < dim_kernel_y; ky++)
            {
                for (kx = (ky == 0u) ? 1u : 0u; kx < dim_kernel_x; kx++)
                {
                    const q15_t *QV_RESTRICT in = Im_in + ((y0 + ky) * dim_im_in_x + (x0 + kx)) * ch;
                    uint32_t c;
                    for (c = 0; c < ch; c++)
                    {
                        out[c] = (in[c] > out[c]) ? in[c] : out[c];
                    }
                }
            }
        }
    }
    return ARM_MATH_SUCCESS;
}
