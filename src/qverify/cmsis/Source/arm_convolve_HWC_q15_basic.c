/*
 * qverify bundled CMSIS-NN replacement: arm_convolve_HWC_q15_basic.
 *
 * Square HWC q15 convolution for any channel count.  Written for qverify
 * from the legacy API contract; the code is not Arm's.  The square case is
 * qv_convolve_HWC_q15_basic_nonsquare with equal x and y arguments, so it
 * is computed there: one implementation of the DSP and plain paths.
 * bufferA holds ch_im_in * dim_kernel^2 values; bufferB is unused.
 */
#include "arm_nnfunctions.h"
#include "qv_nnfunctions.h"
#include "qv_support.h"

arm_status arm_convolve_HWC_q15_basic(const q15_t *Im_in,
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
#if defined(ARM_MATH_DSP)
    /* Arm's DSP path: int16_t pixel counters and a uint16_t loop count of (ch_in * k * k) >> 2 */
    if (!qv_dsp_conv_args_ok(ch_im_in, dim_kernel, dim_kernel, padding, padding, stride, stride, dim_im_out,
                             dim_im_out, 2u))
    {
        return ARM_MATH_ARGUMENT_ERROR;
    }
#endif
    return qv_convolve_HWC_q15_basic_nonsquare(Im_in, dim_im_in, dim_im_in, ch_im_in, wt, ch_im_out, dim_kernel,
                                               dim_kernel, padding, padding, stride, stride, bias, bias_shift,
                                               out_shift, Im_out, dim_im_out, dim_im_out, bufferA, bufferB);
}
