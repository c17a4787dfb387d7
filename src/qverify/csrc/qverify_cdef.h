/*
 * cffi cdef for qverify's native modules (read by build.py).
 * Declarations only, in the subset of C that cffi parses; the real headers
 * are cmsis/Include/arm_nnfunctions.h, cmsis/Include/qv_nnfunctions.h and
 * csrc/qv_runner.h (or a firmware tree's CMSIS-NN headers).  cffi checks
 * the struct layout and enum values against them when it compiles.
 */

typedef int8_t q7_t;
typedef int16_t q15_t;
typedef int32_t q31_t;

typedef enum {
    ARM_MATH_SUCCESS = 0,
    ARM_MATH_ARGUMENT_ERROR = -1,
    ARM_MATH_LENGTH_ERROR = -2,
    ARM_MATH_SIZE_MISMATCH = -3,
    ...
} arm_status;

/* ---- runner (csrc/qv_runner.h) ---- */

enum {
    QV_OP_CONV = 0,
    QV_OP_DENSE = 1,
    QV_OP_RELU = 2,
    QV_OP_MAXPOOL = 3,
    QV_OP_AVGPOOL = 4,
    QV_OP_GAP = 5,
    QV_OP_FLATTEN = 6,
    QV_OP_RELU6 = 7,
    QV_OP_SIGMOID = 8,
    QV_OP_TANH = 9,
    QV_OP_SOFTMAX = 10
};

enum {
    QV_KERNEL_NONE = 0,
    QV_KERNEL_CONV_BASIC = 1,
    QV_KERNEL_CONV_FAST = 2,
    QV_KERNEL_CONV_FAST_NONSQUARE = 3,
    QV_KERNEL_CONV_BASIC_NONSQUARE = 4,
    QV_KERNEL_FULLY_CONNECTED = 5,
    QV_KERNEL_RELU = 6,
    QV_KERNEL_MAXPOOL = 7,
    QV_KERNEL_AVEPOOL = 8,
    QV_KERNEL_GLOBAL_AVEPOOL = 9,
    QV_KERNEL_COPY = 10,
    QV_KERNEL_HOST_CONV = 11,
    QV_KERNEL_RELU6 = 12,
    QV_KERNEL_ACTIVATIONS_DIRECT = 13,
    QV_KERNEL_SOFTMAX = 14,
    QV_KERNEL_FULLY_CONNECTED_OPT = 15,
    QV_KERNEL_FC_MAT_Q7_VEC_Q15 = 16,
    QV_KERNEL_FC_MAT_Q7_VEC_Q15_OPT = 17
};

#define QV_CALL_LENGTH_ON_X ...
#define QV_GUARD_WORDS ...
#define QV_STATUS_OVERRUN ...
#define QV_STATUS_NO_FUNCTION ...

enum {
    QV_BUF_ACT0 = 0,
    QV_BUF_ACT1 = 1,
    QV_BUF_KERNEL = 2,
    QV_BUF_OUTPUT = 3
};

typedef struct {
    int32_t kind;
    int32_t kernel;
    uint16_t flags;
    uint16_t in_h, in_w, in_c;
    uint16_t out_h, out_w, out_c;
    uint16_t k_h, k_w;
    uint16_t stride_h, stride_w;
    uint16_t pad_h, pad_w;
    uint16_t bias_lshift, out_rshift;
    const int16_t *weights;
    const int16_t *bias;
    int16_t clamp_max;
    const int8_t *weights_q7;
    const int8_t *bias_q7;
} qv_op_t;

typedef struct {
    int32_t failed_op;
    int32_t buffer;
    uint32_t bytes;
    const int16_t *result;
} qv_run_info_t;

uint32_t qv_scratch_words(const qv_op_t *ops, int32_t n_ops);
int32_t qv_run(const qv_op_t *ops, int32_t n_ops, const int16_t *input, int32_t n_samples,
               int16_t *const *outputs, int32_t guard_outputs, int16_t *scratch, int32_t *kernel_used,
               qv_run_info_t *info);
const char *qv_kernel_name(int32_t kernel_id);
const char *qv_buffer_name(int32_t buffer);
const char *qv_build_info(void);

/* host SIMD convolution (csrc/qv_host_conv.h): 0 none, 1 AVX2, 2 AVX-512 VNNI */
int32_t qv_host_simd_level(void);
int32_t qv_host_simd_limit(int32_t max_level);
const char *qv_source_digest(void);

/* ---- legacy CMSIS-NN q15 kernels (arm_nnfunctions.h) ---- */

arm_status arm_convolve_HWC_q15_basic(const q15_t *Im_in, uint16_t dim_im_in, uint16_t ch_im_in,
                                      const q15_t *wt, uint16_t ch_im_out, uint16_t dim_kernel,
                                      uint16_t padding, uint16_t stride, const q15_t *bias,
                                      uint16_t bias_shift, uint16_t out_shift, q15_t *Im_out,
                                      uint16_t dim_im_out, q15_t *bufferA, q7_t *bufferB);

arm_status arm_convolve_HWC_q15_fast(const q15_t *Im_in, uint16_t dim_im_in, uint16_t ch_im_in,
                                     const q15_t *wt, uint16_t ch_im_out, uint16_t dim_kernel,
                                     uint16_t padding, uint16_t stride, const q15_t *bias,
                                     uint16_t bias_shift, uint16_t out_shift, q15_t *Im_out,
                                     uint16_t dim_im_out, q15_t *bufferA, q7_t *bufferB);

arm_status arm_convolve_HWC_q15_fast_nonsquare(const q15_t *Im_in, uint16_t dim_im_in_x,
                                               uint16_t dim_im_in_y, uint16_t ch_im_in,
                                               const q15_t *wt, uint16_t ch_im_out,
                                               uint16_t dim_kernel_x, uint16_t dim_kernel_y,
                                               uint16_t padding_x, uint16_t padding_y,
                                               uint16_t stride_x, uint16_t stride_y,
                                               const q15_t *bias, uint16_t bias_shift,
                                               uint16_t out_shift, q15_t *Im_out,
                                               uint16_t dim_im_out_x, uint16_t dim_im_out_y,
                                               q15_t *bufferA, q7_t *bufferB);

arm_status arm_fully_connected_q15(const q15_t *pV, const q15_t *pM, uint16_t dim_vec,
                                   uint16_t num_of_rows, uint16_t bias_shift, uint16_t out_shift,
                                   const q15_t *bias, q15_t *pOut, q15_t *vec_buffer);

arm_status arm_fully_connected_q15_opt(const q15_t *pV, const q15_t *pM, uint16_t dim_vec,
                                       uint16_t num_of_rows, uint16_t bias_shift, uint16_t out_shift,
                                       const q15_t *bias, q15_t *pOut, q15_t *vec_buffer);

arm_status arm_fully_connected_mat_q7_vec_q15(const q15_t *pV, const q7_t *pM, uint16_t dim_vec,
                                              uint16_t num_of_rows, uint16_t bias_shift, uint16_t out_shift,
                                              const q7_t *bias, q15_t *pOut, q15_t *vec_buffer);

arm_status arm_fully_connected_mat_q7_vec_q15_opt(const q15_t *pV, const q7_t *pM, uint16_t dim_vec,
                                                  uint16_t num_of_rows, uint16_t bias_shift, uint16_t out_shift,
                                                  const q7_t *bias, q15_t *pOut, q15_t *vec_buffer);

void arm_relu_q15(q15_t *data, uint16_t size);

typedef enum {
    ARM_SIGMOID = 0,
    ARM_TANH = 1,
    ...
} arm_nn_activation_type;

void arm_nn_activations_direct_q15(q15_t *data, uint16_t size, uint16_t int_width, arm_nn_activation_type type);

void arm_softmax_q15(const q15_t *vec_in, const uint16_t dim_vec, q15_t *p_out);

/* ---- qverify's own kernels (qv_nnfunctions.h) ---- */

arm_status qv_convolve_HWC_q15_basic_nonsquare(const q15_t *Im_in, uint16_t dim_im_in_x,
                                               uint16_t dim_im_in_y, uint16_t ch_im_in,
                                               const q15_t *wt, uint16_t ch_im_out,
                                               uint16_t dim_kernel_x, uint16_t dim_kernel_y,
                                               uint16_t padding_x, uint16_t padding_y,
                                               uint16_t stride_x, uint16_t stride_y,
                                               const q15_t *bias, uint16_t bias_shift,
                                               uint16_t out_shift, q15_t *Im_out,
                                               uint16_t dim_im_out_x, uint16_t dim_im_out_y,
                                               q15_t *bufferA, q7_t *bufferB);

arm_status qv_maxpool_q15_HWC_nonsquare(const q15_t *Im_in, uint16_t dim_im_in_x,
                                        uint16_t dim_im_in_y, uint16_t ch_im_in,
                                        uint16_t dim_kernel_x, uint16_t dim_kernel_y,
                                        uint16_t stride_x, uint16_t stride_y,
                                        uint16_t dim_im_out_x, uint16_t dim_im_out_y,
                                        q15_t *Im_out);

arm_status qv_avepool_q15_HWC_nonsquare(const q15_t *Im_in, uint16_t dim_im_in_x,
                                        uint16_t dim_im_in_y, uint16_t ch_im_in,
                                        uint16_t dim_kernel_x, uint16_t dim_kernel_y,
                                        uint16_t stride_x, uint16_t stride_y,
                                        uint16_t dim_im_out_x, uint16_t dim_im_out_y,
                                        q15_t *Im_out);

arm_status qv_global_avepool_q15_HWC(const q15_t *Im_in, uint16_t dim_im_in_x,
                                     uint16_t dim_im_in_y, uint16_t ch_im_in, q15_t *Im_out);

void qv_relu6_q15(q15_t *data, uint32_t size, q15_t clamp_max);
