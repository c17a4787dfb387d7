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

#endif
