/*
 * qverify bundled CMSIS-NN replacement: public prototypes of the legacy
 * q15 functions qverify verifies.  Names, parameter order and types follow
 * the legacy CMSIS-NN API (see shared/CMSIS_API.md); the code behind them
 * was written for qverify.
 *
 * Layout: HWC.  x = width, y = height; element (y, x, c) of an image of
 * width X with C channels is at (y * X + x) * C + c.  Weights are
 * [c_out][k_y][k_x][c_in]; fully-connected weights are [num_of_rows][dim_vec], except for the
 * _opt functions, which read their interleaved orders (below).
 *
 * Numeric contract (conv and fully connected):
 *   acc = ((q31_t)bias[i] << bias_shift) + NN_ROUND(out_shift)
 *   acc += sum(w * x)                       (int32, wrapping)
 *   out = (q15_t)__SSAT(acc >> out_shift, 16)
 * Shifts must lie in [0, 31]; the bundled kernels return
 * ARM_MATH_ARGUMENT_ERROR (and write nothing) otherwise.
 */
#ifndef ARM_NNFUNCTIONS_H
#define ARM_NNFUNCTIONS_H

#include "arm_nn_types.h"
#include "arm_nnsupportfunctions.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Square HWC q15 convolution, any channel count.
 * bufferA: ch_im_in * dim_kernel * dim_kernel q15 values; bufferB unused. */
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
                                      q7_t *bufferB);

/* Square HWC q15 convolution; ch_im_in and ch_im_out must be even, else
 * ARM_MATH_SIZE_MISMATCH and nothing is written.
 * bufferA: 2 * ch_im_in * dim_kernel * dim_kernel q15 values; bufferB unused. */
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
                                     q7_t *bufferB);

/* Non-square HWC q15 convolution; ch_im_in and ch_im_out must be even,
 * else ARM_MATH_SIZE_MISMATCH and nothing is written.
 * bufferA: 2 * ch_im_in * dim_kernel_x * dim_kernel_y q15 values; bufferB unused. */
arm_status arm_convolve_HWC_q15_fast_nonsquare(const q15_t *Im_in,
                                               const uint16_t dim_im_in_x,
                                               const uint16_t dim_im_in_y,
                                               const uint16_t ch_im_in,
                                               const q15_t *wt,
                                               const uint16_t ch_im_out,
                                               const uint16_t dim_kernel_x,
                                               const uint16_t dim_kernel_y,
                                               const uint16_t padding_x,
                                               const uint16_t padding_y,
                                               const uint16_t stride_x,
                                               const uint16_t stride_y,
                                               const q15_t *bias,
                                               const uint16_t bias_shift,
                                               const uint16_t out_shift,
                                               q15_t *Im_out,
                                               const uint16_t dim_im_out_x,
                                               const uint16_t dim_im_out_y,
                                               q15_t *bufferA,
                                               q7_t *bufferB);

/* Fully connected q15: pOut[r] = sat(bias[r] << bias_shift + round + pM[r][:] . pV) >> out_shift.
 * pM is [num_of_rows][dim_vec]; vec_buffer is unused by the q15 version. */
arm_status arm_fully_connected_q15(const q15_t *pV,
                                   const q15_t *pM,
                                   const uint16_t dim_vec,
                                   const uint16_t num_of_rows,
                                   const uint16_t bias_shift,
                                   const uint16_t out_shift,
                                   const q15_t *bias,
                                   q15_t *pOut,
                                   q15_t *vec_buffer);

/* arm_fully_connected_q15 with pM in the "q15x4" order: rows in groups of four r0..r3, for each column
 * pair k: r0[2k] r0[2k+1] r1[2k] r1[2k+1] r2[2k] r2[2k+1] r3[2k] r3[2k+1]; for an odd dim_vec then the
 * last column r0..r3; the num_of_rows % 4 rows left over follow row-major.  vec_buffer is unused. */
arm_status arm_fully_connected_q15_opt(const q15_t *pV,
                                       const q15_t *pM,
                                       const uint16_t dim_vec,
                                       const uint16_t num_of_rows,
                                       const uint16_t bias_shift,
                                       const uint16_t out_shift,
                                       const q15_t *bias,
                                       q15_t *pOut,
                                       q15_t *vec_buffer);

/* Fully connected with q7 weights and q7 bias, q15 input and output, the contract of arm_fully_connected_q15.
 * pM is [num_of_rows][dim_vec]; vec_buffer is unused. */
arm_status arm_fully_connected_mat_q7_vec_q15(const q15_t *pV,
                                              const q7_t *pM,
                                              const uint16_t dim_vec,
                                              const uint16_t num_of_rows,
                                              const uint16_t bias_shift,
                                              const uint16_t out_shift,
                                              const q7_t *bias,
                                              q15_t *pOut,
                                              q15_t *vec_buffer);

/* arm_fully_connected_mat_q7_vec_q15 with pM in the "q7x4" order: rows in groups of four r0..r3, for each
 * column pair k: r0[2k] r1[2k] r0[2k+1] r1[2k+1] r2[2k] r3[2k] r2[2k+1] r3[2k+1]; for an odd dim_vec then
 * the last column r0..r3; the num_of_rows % 4 rows left over follow row-major.  vec_buffer is unused. */
arm_status arm_fully_connected_mat_q7_vec_q15_opt(const q15_t *pV,
                                                  const q7_t *pM,
                                                  const uint16_t dim_vec,
                                                  const uint16_t num_of_rows,
                                                  const uint16_t bias_shift,
                                                  const uint16_t out_shift,
                                                  const q7_t *bias,
                                                  q15_t *pOut,
                                                  q15_t *vec_buffer);

/* In-place ReLU: negative values become 0. */
void arm_relu_q15(q15_t *data, uint16_t size);

/* The activation arm_nn_activations_direct_q15 computes. */
typedef enum
{
    ARM_SIGMOID = 0,
    ARM_TANH = 1
} arm_nn_activation_type;

/* In-place sigmoid or tanh by a 256-entry table of f(k / 16), k = -128..127, with linear
 * interpolation.  int_width: integer bits of the input (frac 15 - int_width), at most 3.  Out: Q0.15. */
void arm_nn_activations_direct_q15(q15_t *data, uint16_t size, uint16_t int_width, arm_nn_activation_type type);

/* Base-2 softmax of dim_vec q15 values: p_out[i] ~ 2^15 * 2^vec_in[i] / sum_j 2^vec_in[j] (Q0.15);
 * values 16 or more below the largest give 0. */
void arm_softmax_q15(const q15_t *vec_in, const uint16_t dim_vec, q15_t *p_out);

#ifdef __cplusplus
}
#endif

#endif /* ARM_NNFUNCTIONS_H */
