/*
 * qverify bundled CMSIS-NN replacement: arm_convolve_HWC_q15_fast.
 *
 * Square HWC q15 convolution for even ch_im_in and ch_im_out (else
 * ARM_MATH_SIZE_MISMATCH, nothing written).  Written for qverify from the
 * legacy API contract; the code is not Arm's.  The square case is the
 * non-square one with equal x and y arguments, so it is computed there:
 * one implementation of the DSP and plain paths, checked once.
 */
#include "arm_nnfunctions.h"

arm_status arm_convolve_HWC_q15_fast(const q15_t *Im_in,
                                     const uint16_t dim_im_in,
                                     const uint16_t ch_im_in,
                                     const q15_t *wt,
                                     const uint16_t ch_im_out,
                                     const uint16_t dim_kernel,
                                     const uint16_t padding,
                                     const uint16_t stride,
                                     const q15_t *bias,
                                     const uint16_t bias_shift,
                                     const uint16_t out_shift,
                                     q15_t *Im_out,
                                     const uint16_t dim_im_out,
                                     q15_t *bufferA,
                                     q7_t *bufferB)
{
    return arm_convolve_HWC_q15_fast_nonsquare(Im_in, dim_im_in, dim_im_in, ch_im_in, wt, ch_im_out, dim_kernel,
                                               dim_kernel, padding, padding, stride, stride, bias, bias_shift,
                                               out_shift, Im_out, dim_im_out, dim_im_out, bufferA, bufferB);
}
