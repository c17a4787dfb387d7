/*
 * qverify's own q15 kernels for what legacy CMSIS-NN never had for q15:
 * non-square basic convolution for any channel count, q15 max / average
 * pooling and global average pooling.  Same style as the legacy API:
 * HWC tensors, x = width, y = height, uint16_t dimensions, arm_status.
 *
 * This header only relies on q7_t, q15_t, arm_status and <stdint.h>, so it
 * compiles against qverify's bundled arm_* headers as well as against a
 * firmware tree's real CMSIS-NN headers (it includes "arm_nnfunctions.h",
 * which both provide, to get those types).
 *
 * Every function returns ARM_MATH_ARGUMENT_ERROR and writes nothing for a
 * zero dimension, channel count, kernel or stride, a window larger than the
 * (padded) input, or (convolution) a shift outside [0, 31].
 */
#ifndef QV_NNFUNCTIONS_H
#define QV_NNFUNCTIONS_H

#include <stdint.h>
#include "arm_nnfunctions.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Non-square HWC q15 convolution, any channel count (1 and odd included).
 * Contract as arm_convolve_HWC_q15_basic:
 *   acc = ((q31_t)bias[o] << bias_shift) + NN_ROUND(out_shift) + sum(w * x)   (int32, wrapping)
 *   out = (q15_t)__SSAT(acc >> out_shift, 16)
 * Zero padding of padding_x / padding_y on both sides.
 * bufferA: ch_im_in * dim_kernel_x * dim_kernel_y q15 values; bufferB unused (may be NULL).
 */
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
                                               q7_t *bufferB);

/*
 * HWC q15 max pooling, valid padding: every window must lie fully inside
 * the image, i.e. (dim_im_out - 1) * stride + dim_kernel <= dim_im_in per axis.
 */
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
                                        q15_t *Im_out);

/*
 * HWC q15 average pooling, valid padding (as the max pooling): sum over the
 * window (exact, int64) divided by the window size with C integer division
 * (truncation toward zero).  No rounding shift is involved.
 */
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
                                        q15_t *Im_out);

/*
 * HWC q15 global average pooling: Im_out[c] = (sum over all x, y of
 * Im_in[y][x][c]) / (dim_im_in_x * dim_im_in_y), truncation toward zero.
 * Sums are exact (int64), for any image up to 65535 x 65535 pixels.
 */
arm_status qv_global_avepool_q15_HWC(const q15_t *Im_in,
                                     uint16_t dim_im_in_x,
                                     uint16_t dim_im_in_y,
                                     uint16_t ch_im_in,
                                     q15_t *Im_out);

/*
 * In-place q15 saturating clamp (ReLU6 at the data's format): data[i] = min(max(data[i], 0), clamp_max), for
 * size values.  clamp_max is 6.0 in the data's format rounded down and at most 32767 (6 << frac for frac <= 12);
 * a negative clamp_max is taken as 0.  Exact: no rounding, the format is unchanged.
 */
void qv_relu6_q15(q15_t *data, uint32_t size, q15_t clamp_max);

#ifdef __cplusplus
}
#endif

#endif /* QV_NNFUNCTIONS_H */
