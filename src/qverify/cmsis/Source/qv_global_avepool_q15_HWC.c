/*
 * qverify: HWC q15 global average pooling.
 *
 * Written for qverify.  Im_out[c] = (sum over all y, x of Im_in[y][x][c])
 * / (dim_im_in_x * dim_im_in_y), exact int64 sum (no overflow for any
 * image up to 65535 x 65535 pixels) and C integer division (truncation
 * toward zero).  A zero dimension gives ARM_MATH_ARGUMENT_ERROR and nothing
 * is written.  Channels are processed in blocks so that the accumulate loop
 * runs over contiguous memory.
 */
#include "qv_nnfunctions.h"
#include "qv_intrinsics.h"

#define QV_GAP_BLOCK 64u

arm_status qv_global_avepool_q15_HWC(const q15_t *Im_in,
                                     uint16_t dim_im_in_x,
                                     uint16_t dim_im_in_y,
                                     uint16_t ch_im_in,
                                     q15_t *Im_out)
{
    const uint32_t ch = ch_im_in;
    size_t n_pix;
    int64_t count;
    uint32_t c0;

    if ((dim_im_in_x == 0u) || (dim_im_in_y == 0u) || (ch_im_in == 0u))
    {
        return ARM_MATH_ARGUMENT_ERROR;
    }
    n_pix = (size_t)dim_im_in_x * (size_t)dim_im_in_y;
    count = (int64_t)dim_im_in_x * (int64_t)dim_im_in_y;

    for (c0 = 0; c0 < ch; c0 += QV_GAP_BLOCK)
    {
        int64_t sum[QV_GAP_BLOCK];
        const uint32_t n = ((ch - c0) < QV_GAP_BLOCK) ? (ch - c0) : QV_GAP_BLOCK;
        const q15_t *in = Im_in + c0;
        size_t p;
        uint32_t c;
        for (c = 0; c < n; c++)
        {
            sum[c] = 0;
        }
        for (p = 0; p < n_pix; p++)
        {
            const q15_t *QV_RESTRICT px = in + p * ch;
            for (c = 0; c < n; c++)
            {
                sum[c] += px[c];
            }
        }
        for (c = 0; c < n; c++)
        {
            Im_out[c0 + c] = (q15_t)(sum[c] / count);
        }
    }
    return ARM_MATH_SUCCESS;
}
