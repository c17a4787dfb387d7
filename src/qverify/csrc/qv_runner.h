/*
 * qverify network runner: executes a quantized plan op by op with the
 * CMSIS-NN q15 kernels (bundled or a firmware tree's own) and the qv_
 * kernels.  Plain C99, no malloc, no threads, no stdio: it is also built for
 * bare-metal Cortex-M.  Thread-safe as long as each concurrent call gets its
 * own scratch and output memory.
 */
#ifndef QV_RUNNER_H
#define QV_RUNNER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum
{
    QV_OP_CONV = 0,
    QV_OP_DENSE = 1,
    QV_OP_RELU = 2,
    QV_OP_MAXPOOL = 3,
    QV_OP_AVGPOOL = 4,
    QV_OP_GAP = 5,
    QV_OP_FLATTEN = 6,
    QV_OP_RELU6 = 7,  /* min(max(x, 0), clamp_max) */
    QV_OP_SIGMOID = 8, /* arm_nn_activations_direct_q15(ARM_SIGMOID), int_width in clamp_max */
    QV_OP_TANH = 9,    /* arm_nn_activations_direct_q15(ARM_TANH), int_width in clamp_max */
    QV_OP_SOFTMAX = 10 /* arm_softmax_q15 over the channels of each pixel */
};

/* The function an op calls (qv_op_t.kernel, chosen by the plan: qverify/kernels.py), also reported in
 * kernel_used[] (names: qv_kernel_name()). */
enum
{
    QV_KERNEL_NONE = 0,
    QV_KERNEL_CONV_BASIC = 1,           /* arm_convolve_HWC_q15_basic */
    QV_KERNEL_CONV_FAST = 2,            /* arm_convolve_HWC_q15_fast */
    QV_KERNEL_CONV_FAST_NONSQUARE = 3,  /* arm_convolve_HWC_q15_fast_nonsquare */
    QV_KERNEL_CONV_BASIC_NONSQUARE = 4, /* qv_convolve_HWC_q15_basic_nonsquare */
    QV_KERNEL_FULLY_CONNECTED = 5,      /* arm_fully_connected_q15 */
    QV_KERNEL_RELU = 6,                 /* arm_relu_q15 */
    QV_KERNEL_MAXPOOL = 7,              /* qv_maxpool_q15_HWC_nonsquare */
    QV_KERNEL_AVEPOOL = 8,              /* qv_avepool_q15_HWC_nonsquare */
    QV_KERNEL_GLOBAL_AVEPOOL = 9,       /* qv_global_avepool_q15_HWC */
    QV_KERNEL_COPY = 10,                /* flatten: plain copy (HWC is already flat) */
    QV_KERNEL_HOST_CONV = 11,           /* qv_host_conv_q15: host SIMD conv (the "fast" build only) */
    QV_KERNEL_RELU6 = 12,               /* qv_relu6_q15 */
    QV_KERNEL_ACTIVATIONS_DIRECT = 13,  /* arm_nn_activations_direct_q15 */
    QV_KERNEL_SOFTMAX = 14,             /* arm_softmax_q15 */
    QV_KERNEL_FULLY_CONNECTED_OPT = 15, /* arm_fully_connected_q15_opt (weights in its interleaved order) */
    QV_KERNEL_FC_MAT_Q7_VEC_Q15 = 16,   /* arm_fully_connected_mat_q7_vec_q15 (q7 weights and bias) */
    QV_KERNEL_FC_MAT_Q7_VEC_Q15_OPT = 17 /* arm_fully_connected_mat_q7_vec_q15_opt (q7, interleaved) */
};

/* qv_op_t.flags */
#define QV_CALL_LENGTH_ON_X 1u /* a 1-D conv (W = 1): pass H as x and W as y (same bytes, same weights) */

/* Guard words around every scratch region and after every kept output (see qv_run). */
#define QV_GUARD_WORDS 16u
#define QV_GUARD_VALUE ((int16_t)0x5AC3)

/* Buffers qv_run_info_t.buffer names (qv_buffer_name()). */
enum
{
    QV_BUF_ACT0 = 0,   /* activation buffer 0 of the scratch */
    QV_BUF_ACT1 = 1,   /* activation buffer 1 of the scratch */
    QV_BUF_KERNEL = 2, /* the kernel's buffer: conv bufferA, dense vec_buffer */
    QV_BUF_OUTPUT = 3  /* the op's kept output array */
};

/* Statuses of the runner itself (beside the kernels' arm_status values). */
#define QV_STATUS_OVERRUN (-100)     /* a kernel wrote past a buffer: see qv_run_info_t */
#define QV_STATUS_NO_FUNCTION (-101) /* the op's function is not in this build (a trimmed CMSIS tree) */

/* One op of the plan.  h = y = height, w = x = width. */
typedef struct
{
    int32_t kind;                 /* QV_OP_* */
    int32_t kernel;               /* QV_KERNEL_*: the function the firmware calls for this op */
    uint16_t flags;               /* QV_CALL_* */
    uint16_t in_h, in_w, in_c;    /* HWC input dims (dense: in_h = in_w = 1, in_c = features) */
    uint16_t out_h, out_w, out_c; /* HWC output dims (dense: 1, 1, units) */
    uint16_t k_h, k_w;            /* conv kernel or pool window */
    uint16_t stride_h, stride_w;
    uint16_t pad_h, pad_w;        /* conv zero padding before (top, left); after it is pad or pad + 1, as the
                                     output size implies (TensorFlow's 'same'): the kernels zero-fill any window
                                     position outside the image */
    uint16_t bias_lshift, out_rshift;
    const int16_t *weights;       /* conv [c_out][k_h][k_w][c_in]; dense [out][in], or the interleaved order of
                                     arm_fully_connected_q15_opt: the bytes the function reads, as weights.h holds
                                     them */
    const int16_t *bias;
    int16_t clamp_max;            /* QV_OP_RELU6: the upper bound, 6.0 in the op's format rounded down;
                                     QV_OP_SIGMOID, QV_OP_TANH: int_width, the input's integer bits (0..3) */
    const int8_t *weights_q7;     /* a dense op of arm_fully_connected_mat_q7_vec_q15(_opt): its q7 weights, in the
                                     order the function reads ([out][in], or the _opt interleave); weights and
                                     bias are then unused (NULL) */
    const int8_t *bias_q7;        /* ... and its q7 bias */
} qv_op_t;

/* What qv_run reports beside its status. */
typedef struct
{
    int32_t failed_op;     /* index of the failing op; -1 when the call succeeds or fails before any op */
    int32_t buffer;        /* QV_STATUS_OVERRUN: the QV_BUF_* written past; else -1 */
    uint32_t bytes;        /* QV_STATUS_OVERRUN: bytes written past it (at least; the guard's extent) */
    const int16_t *result; /* the last op's output of the last sample (in the scratch when not kept) */
} qv_run_info_t;

/*
 * Number of int16 words of scratch one qv_run call needs (independent of
 * n_samples): two ping-pong activation buffers of the largest activation
 * (input included) plus the largest kernel buffer (conv bufferA =
 * 2 * in_c * k_h * k_w, dense vec_buffer = in features), each region
 * rounded up to an even count and followed by QV_GUARD_WORDS guard words, and
 * QV_GUARD_WORDS more in front.  Returns 0 if the size does not fit in 32
 * bits or n_ops <= 0.
 */
uint32_t qv_scratch_words(const qv_op_t *ops, int32_t n_ops);

/*
 * Run n_samples samples through the ops.  input: n_samples x (in_h*in_w*in_c
 * of op 0), contiguous.  For each op i with outputs[i] != NULL, that op's
 * output for every sample is written to outputs[i] (n_samples x out size,
 * sample-major).  scratch: qv_scratch_words(ops, n_ops) int16 words.
 * kernel_used (may be NULL): n_ops entries, the QV_KERNEL_* id each op ran
 * (the op's own, or the host conv in the fast build).
 * info (may be NULL): the failing op, an overrun, the result's location.
 *
 * Guard words: the scratch's regions are surrounded by QV_GUARD_WORDS words
 * of QV_GUARD_VALUE, and when guard_outputs is nonzero so is the end of each
 * kept output (outputs[i] then holds n_samples * out size + QV_GUARD_WORDS
 * words, the last QV_GUARD_WORDS this call's own).  After every op the
 * runner checks them: a kernel that wrote past a buffer fails the call with
 * QV_STATUS_OVERRUN, naming the op, the buffer and how far it wrote.
 *
 * Returns ARM_MATH_SUCCESS (0) or an arm_status:
 *   ARM_MATH_ARGUMENT_ERROR (-1): invalid op geometry (zero dims, kernel or
 *     stride, output dims that do not match the input, shifts > 31, missing
 *     weights), unknown kind, a kernel that cannot compute the op's kind or
 *     shape (a square function for a non-square op), or a NULL pointer;
 *   ARM_MATH_LENGTH_ERROR (-2): an op's input size differs from the previous
 *     op's output size;
 *   QV_STATUS_NO_FUNCTION: the op's function was not compiled into this build;
 *   QV_STATUS_OVERRUN: a kernel wrote past a buffer;
 *   any status returned by a kernel (e.g. ARM_MATH_SIZE_MISMATCH).
 * All ops are validated before the first sample runs.
 */
int32_t qv_run(const qv_op_t *ops,
               int32_t n_ops,
               const int16_t *input,
               int32_t n_samples,
               int16_t *const *outputs,
               int32_t guard_outputs,
               int16_t *scratch,
               int32_t *kernel_used,
               qv_run_info_t *info);

/* Name of the kernel function behind a QV_KERNEL_* id ("unknown" otherwise). */
const char *qv_kernel_name(int32_t kernel_id);

/* Name of a QV_BUF_* buffer ("unknown" otherwise). */
const char *qv_buffer_name(int32_t buffer);

/* "kernels=<bundled|CMSIS root>; path=<dsp|plain>; rounding=<truncate|round>" */
const char *qv_build_info(void);

/* Digest of the sources this library was built from (set by build.py). */
const char *qv_source_digest(void);

#ifdef __cplusplus
}
#endif

#endif /* QV_RUNNER_H */
