/*
 * qverify network runner (see qv_runner.h).  Plain C99: no malloc, no
 * threads, no stdio.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "arm_nnfunctions.h"
#include "qv_nnfunctions.h"
#include "qv_runner.h"
#if defined(QV_HOST_SIMD)
#include "qv_host_conv.h"
#endif

/*
 * A build from a trimmed CMSIS tree (qverify.build) defines QV_HAVE_<FUNCTION> for each arm_ function it
 * compiled; an op whose function is missing fails with QV_STATUS_NO_FUNCTION.  Any other build has all.
 */
#if !defined(QV_HAVE_ARM_CONVOLVE_HWC_Q15_BASIC) && !defined(QV_HAVE_ARM_CONVOLVE_HWC_Q15_FAST) && \
    !defined(QV_HAVE_ARM_CONVOLVE_HWC_Q15_FAST_NONSQUARE) && !defined(QV_HAVE_ARM_FULLY_CONNECTED_Q15) && \
    !defined(QV_HAVE_ARM_RELU_Q15) && !defined(QV_HAVE_ARM_NN_ACTIVATIONS_DIRECT_Q15) && \
    !defined(QV_HAVE_ARM_SOFTMAX_Q15) && !defined(QV_HAVE_ARM_FULLY_CONNECTED_Q15_OPT) && \
    !defined(QV_HAVE_ARM_FULLY_CONNECTED_MAT_Q7_VEC_Q15) && !defined(QV_HAVE_ARM_FULLY_CONNECTED_MAT_Q7_VEC_Q15_OPT)
#define QV_HAVE_ARM_CONVOLVE_HWC_Q15_BASIC
#define QV_HAVE_ARM_CONVOLVE_HWC_Q15_FAST
#define QV_HAVE_ARM_CONVOLVE_HWC_Q15_FAST_NONSQUARE
#define QV_HAVE_ARM_FULLY_CONNECTED_Q15
#define QV_HAVE_ARM_RELU_Q15
#define QV_HAVE_ARM_NN_ACTIVATIONS_DIRECT_Q15
#define QV_HAVE_ARM_SOFTMAX_Q15
#define QV_HAVE_ARM_FULLY_CONNECTED_Q15_OPT
#define QV_HAVE_ARM_FULLY_CONNECTED_MAT_Q7_VEC_Q15
#define QV_HAVE_ARM_FULLY_CONNECTED_MAT_Q7_VEC_Q15_OPT
#endif

#ifndef QV_KERNELS_SOURCE
#define QV_KERNELS_SOURCE "bundled"
#endif
#ifndef QV_SOURCE_DIGEST
#define QV_SOURCE_DIGEST "unknown"
#endif

#if defined(ARM_MATH_DSP)
#define QV_PATH_NAME "dsp"
#elif defined(QV_HOST_SIMD)
#define QV_PATH_NAME "fast"
#else
#define QV_PATH_NAME "plain"
#endif
#if defined(ARM_NN_TRUNCATE)
#define QV_ROUNDING_NAME "truncate"
#else
#define QV_ROUNDING_NAME "round"
#endif

/* arm_relu_q15 takes a uint16_t size: larger activations go in chunks. */
#define QV_RELU_CHUNK 32768u

static uint64_t qv_elems(uint16_t h, uint16_t w, uint16_t c)
{
    return (uint64_t)h * (uint64_t)w * (uint64_t)c;
}

/* Output size of a (padded) window along one axis, 0 if the window does not fit. */
static uint32_t qv_window_out(uint16_t in, uint16_t pad, uint16_t k, uint16_t stride)
{
    const uint32_t padded = (uint32_t)in + 2u * (uint32_t)pad;
    if ((k == 0u) || (stride == 0u) || (k > padded))
    {
        return 0u;
    }
    return (padded - k) / stride + 1u;
}

/* Whether a conv axis has `out` outputs: the symmetric window, or TensorFlow's 'same' split, whose one more pad
 * after the input (bottom, right) the kernels reproduce because they take the output size and zero-fill every
 * window position outside the image (qverify.opkinds.padded_out). */
static int qv_conv_out_ok(uint16_t in, uint16_t pad, uint16_t k, uint16_t stride, uint16_t out)
{
    const uint32_t sym = qv_window_out(in, pad, k, stride);
    if ((sym == 0u) || (out == 0u))
    {
        return 0;
    }
    return (out == sym) ||
           ((uint64_t)(out - 1u) * stride + k == (uint64_t)in + 2u * (uint64_t)pad + 1u); /* pad + 1 after */
}

/* Whether op->kernel is a convolution that can take this op's shape (square ones need a square call). */
static int qv_conv_kernel_fits(const qv_op_t *op)
{
    const int swap = (op->flags & QV_CALL_LENGTH_ON_X) != 0u;
    if (swap && ((op->in_w != 1u) || (op->k_w != 1u) || (op->pad_w != 0u) || (op->out_w != 1u)))
    {
        return 0; /* only a 1-D conv has the same bytes with its axes exchanged */
    }
    switch (op->kernel)
    {
    case QV_KERNEL_CONV_BASIC:
    case QV_KERNEL_CONV_FAST:
        return (op->in_h == op->in_w) && (op->k_h == op->k_w) && (op->stride_h == op->stride_w) &&
               (op->pad_h == op->pad_w) && (op->out_h == op->out_w);
    case QV_KERNEL_CONV_FAST_NONSQUARE:
    case QV_KERNEL_CONV_BASIC_NONSQUARE:
        return 1;
    default:
        return 0;
    }
}

/* Validate one op (prev = previous op or NULL) and say which kernel runs it. */
static int32_t qv_check_op(const qv_op_t *op, const qv_op_t *prev, int32_t *kernel)
{
    const uint64_t in_n = qv_elems(op->in_h, op->in_w, op->in_c);
    const uint64_t out_n = qv_elems(op->out_h, op->out_w, op->out_c);

    *kernel = QV_KERNEL_NONE;
    if ((in_n == 0u) || (out_n == 0u))
    {
        return ARM_MATH_ARGUMENT_ERROR;
    }
    if ((prev != NULL) && (in_n != qv_elems(prev->out_h, prev->out_w, prev->out_c)))
    {
        return ARM_MATH_LENGTH_ERROR;
    }

    switch (op->kind)
    {
    case QV_OP_CONV:
        if ((op->weights == NULL) || (op->bias == NULL) || (op->bias_lshift > 31u) || (op->out_rshift > 31u))
        {
            return ARM_MATH_ARGUMENT_ERROR;
        }
        if (!qv_conv_out_ok(op->in_h, op->pad_h, op->k_h, op->stride_h, op->out_h) ||
            !qv_conv_out_ok(op->in_w, op->pad_w, op->k_w, op->stride_w, op->out_w))
        {
            return ARM_MATH_ARGUMENT_ERROR;
        }
        if (!qv_conv_kernel_fits(op))
        {
            return ARM_MATH_ARGUMENT_ERROR;
        }
        *kernel = op->kernel;
#if defined(QV_HOST_SIMD)
        if (qv_host_simd_level() != QV_SIMD_NONE)
        {
            *kernel = QV_KERNEL_HOST_CONV; /* host-only: the same integers as every conv kernel */
        }
#endif
        return ARM_MATH_SUCCESS;

    case QV_OP_DENSE:
    {
        /* the q15 functions read weights/bias, the q7 ones weights_q7/bias_q7 */
        const int q7 = (op->kernel == QV_KERNEL_FC_MAT_Q7_VEC_Q15) || (op->kernel == QV_KERNEL_FC_MAT_Q7_VEC_Q15_OPT);
        const int q15 = (op->kernel == QV_KERNEL_FULLY_CONNECTED) || (op->kernel == QV_KERNEL_FULLY_CONNECTED_OPT);
        const int weights = q7 ? ((op->weights_q7 != NULL) && (op->bias_q7 != NULL))
                               : ((op->weights != NULL) && (op->bias != NULL));
        if (!(q7 || q15) || !weights || (op->bias_lshift > 31u) || (op->out_rshift > 31u) || (in_n > 0xFFFFu) ||
            (out_n > 0xFFFFu))
        {
            return ARM_MATH_ARGUMENT_ERROR;
        }
        *kernel = op->kernel;
        return ARM_MATH_SUCCESS;
    }

    case QV_OP_RELU:
    case QV_OP_FLATTEN:
        if ((in_n != out_n) || (op->kernel != ((op->kind == QV_OP_RELU) ? QV_KERNEL_RELU : QV_KERNEL_COPY)))
        {
            return ARM_MATH_ARGUMENT_ERROR;
        }
        *kernel = op->kernel;
        return ARM_MATH_SUCCESS;

    case QV_OP_RELU6:
        if ((in_n != out_n) || (op->kernel != QV_KERNEL_RELU6) || (op->clamp_max < 0))
        {
            return ARM_MATH_ARGUMENT_ERROR;
        }
        *kernel = op->kernel;
        return ARM_MATH_SUCCESS;

    case QV_OP_SIGMOID:
    case QV_OP_TANH: /* int_width (clamp_max) within the table's range: docs/design.md rule 10 */
        if ((in_n != out_n) || (op->kernel != QV_KERNEL_ACTIVATIONS_DIRECT) || (op->clamp_max < 0) ||
            (op->clamp_max > 3))
        {
            return ARM_MATH_ARGUMENT_ERROR;
        }
        *kernel = op->kernel;
        return ARM_MATH_SUCCESS;

    case QV_OP_SOFTMAX: /* per pixel over the channels, at most 32767 of them: rule 11 */
        if ((op->out_h != op->in_h) || (op->out_w != op->in_w) || (op->out_c != op->in_c) ||
            (op->in_c > 32767u) || (op->kernel != QV_KERNEL_SOFTMAX))
        {
            return ARM_MATH_ARGUMENT_ERROR;
        }
        *kernel = op->kernel;
        return ARM_MATH_SUCCESS;

    case QV_OP_MAXPOOL:
    case QV_OP_AVGPOOL:
        if ((op->out_c != op->in_c) || (qv_window_out(op->in_h, 0u, op->k_h, op->stride_h) != op->out_h) ||
            (qv_window_out(op->in_w, 0u, op->k_w, op->stride_w) != op->out_w) ||
            (op->kernel != ((op->kind == QV_OP_MAXPOOL) ? QV_KERNEL_MAXPOOL : QV_KERNEL_AVEPOOL)))
        {
            return ARM_MATH_ARGUMENT_ERROR;
        }
        *kernel = op->kernel;
        return ARM_MATH_SUCCESS;

    case QV_OP_GAP:
        if ((op->out_c != op->in_c) || (op->out_h != 1u) || (op->out_w != 1u) ||
            (op->kernel != QV_KERNEL_GLOBAL_AVEPOOL))
        {
            return ARM_MATH_ARGUMENT_ERROR;
        }
        *kernel = op->kernel;
        return ARM_MATH_SUCCESS;

    default:
        return ARM_MATH_ARGUMENT_ERROR;
    }
}

/* Words per activation buffer and for the kernel buffer (each even); 0 on overflow. */
static int qv_scratch_layout(const qv_op_t *ops, int32_t n_ops, uint64_t *act_words, uint64_t *buf_words)
{
    uint64_t act = 0u;
    uint64_t buf = 0u;
    int32_t i;
    for (i = 0; i < n_ops; i++)
    {
        const qv_op_t *op = &ops[i];
        const uint64_t in_n = qv_elems(op->in_h, op->in_w, op->in_c);
        const uint64_t out_n = qv_elems(op->out_h, op->out_w, op->out_c);
        uint64_t need = 0u;
        act = (in_n > act) ? in_n : act;
        act = (out_n > act) ? out_n : act;
        if (op->kind == QV_OP_CONV)
        {
            need = 2u * (uint64_t)op->in_c * (uint64_t)op->k_h * (uint64_t)op->k_w;
#if defined(QV_HOST_SIMD)
            {
                const uint64_t host = qv_host_conv_scratch_words(op); /* the host conv's packed weights */
                need = (host > need) ? host : need;
            }
#endif
        }
        else if (op->kind == QV_OP_DENSE)
        {
            need = in_n;
        }
        buf = (need > buf) ? need : buf;
    }
    act = (act + 1u) & ~(uint64_t)1u; /* keep every region 4-byte aligned */
    buf = (buf + 1u) & ~(uint64_t)1u;
    if ((2u * act + buf + 4u * QV_GUARD_WORDS) > 0xFFFFFFFFu)
    {
        return 0;
    }
    *act_words = act;
    *buf_words = buf;
    return 1;
}

uint32_t qv_scratch_words(const qv_op_t *ops, int32_t n_ops)
{
    uint64_t act;
    uint64_t buf;
    if ((ops == NULL) || (n_ops <= 0) || !qv_scratch_layout(ops, n_ops, &act, &buf))
    {
        return 0u;
    }
    return (uint32_t)(2u * act + buf + 4u * QV_GUARD_WORDS);
}

/* The scratch's regions: [guard] act0 [guard] act1 [guard] kernel buffer [guard]. */
typedef struct
{
    int16_t *region[3];   /* QV_BUF_ACT0, QV_BUF_ACT1, QV_BUF_KERNEL */
    uint64_t words[3];
    int16_t *lead;        /* the guard before region 0 */
} qv_scratch_t;

static void qv_guard_fill(int16_t *guard)
{
    uint32_t k;
    for (k = 0u; k < QV_GUARD_WORDS; k++)
    {
        guard[k] = QV_GUARD_VALUE;
    }
}

/* Bytes written into a guard: for one after a buffer, up to its last changed word; for one in front, from
 * its first changed word to its end (a write before the buffer reaches backwards). */
static uint32_t qv_guard_damage(const int16_t *guard, int in_front)
{
    uint32_t k;
    if (in_front)
    {
        for (k = 0u; k < QV_GUARD_WORDS; k++)
        {
            if (guard[k] != QV_GUARD_VALUE)
            {
                return (QV_GUARD_WORDS - k) * (uint32_t)sizeof(int16_t);
            }
        }
        return 0u;
    }
    for (k = QV_GUARD_WORDS; k > 0u; k--)
    {
        if (guard[k - 1u] != QV_GUARD_VALUE)
        {
            return k * (uint32_t)sizeof(int16_t);
        }
    }
    return 0u;
}

static void qv_scratch_setup(qv_scratch_t *sc, int16_t *scratch, uint64_t act, uint64_t buf)
{
    int16_t *p = scratch;
    int32_t r;
    sc->lead = p;
    qv_guard_fill(p);
    p += QV_GUARD_WORDS;
    sc->words[0] = act;
    sc->words[1] = act;
    sc->words[2] = buf;
    for (r = 0; r < 3; r++)
    {
        sc->region[r] = p;
        p += sc->words[r];
        qv_guard_fill(p);
        p += QV_GUARD_WORDS;
    }
}

/* Check every guard after an op; on damage fill info and return QV_STATUS_OVERRUN. */
static int32_t qv_guards_check(const qv_scratch_t *sc, const int16_t *out_guard, qv_run_info_t *info)
{
    int32_t buffer = -1;
    uint32_t bytes = qv_guard_damage(sc->lead, 1);
    int32_t r;
    if (bytes != 0u)
    {
        buffer = QV_BUF_ACT0; /* written before the scratch's first buffer */
    }
    for (r = 0; (r < 3) && (buffer < 0); r++)
    {
        bytes = qv_guard_damage(sc->region[r] + sc->words[r], 0);
        buffer = (bytes != 0u) ? r : -1;
    }
    if ((buffer < 0) && (out_guard != NULL))
    {
        bytes = qv_guard_damage(out_guard, 0);
        buffer = (bytes != 0u) ? QV_BUF_OUTPUT : -1;
    }
    if (buffer < 0)
    {
        return ARM_MATH_SUCCESS;
    }
    if (info != NULL)
    {
        info->buffer = buffer;
        info->bytes = bytes;
    }
    return QV_STATUS_OVERRUN;
}

/* A conv call with the arguments Arm's functions take: x = width, y = height (exchanged for a 1-D op the
 * plan runs with its length on x). */
typedef struct
{
    uint16_t in_x, in_y, k_x, k_y, pad_x, pad_y, stride_x, stride_y, out_x, out_y;
} qv_conv_args_t;

static qv_conv_args_t qv_conv_args(const qv_op_t *op)
{
    qv_conv_args_t a;
    if ((op->flags & QV_CALL_LENGTH_ON_X) != 0u)
    {
        a.in_x = op->in_h, a.in_y = op->in_w, a.k_x = op->k_h, a.k_y = op->k_w, a.pad_x = op->pad_h;
        a.pad_y = op->pad_w, a.stride_x = op->stride_h, a.stride_y = op->stride_w, a.out_x = op->out_h;
        a.out_y = op->out_w;
    }
    else
    {
        a.in_x = op->in_w, a.in_y = op->in_h, a.k_x = op->k_w, a.k_y = op->k_h, a.pad_x = op->pad_w;
        a.pad_y = op->pad_h, a.stride_x = op->stride_w, a.stride_y = op->stride_h, a.out_x = op->out_w;
        a.out_y = op->out_h;
    }
    return a;
}

/* Run one op on one sample: src -> dst, with the kernel qv_check_op named. */
static int32_t qv_exec_op(const qv_op_t *op, int32_t kernel, const int16_t *src, int16_t *dst, int16_t *buf)
{
    const size_t in_n = (size_t)qv_elems(op->in_h, op->in_w, op->in_c);
    const qv_conv_args_t a = qv_conv_args(op);
    (void)a; /* unused when a trimmed tree has no convolution */
    switch (kernel)
    {
#if defined(QV_HAVE_ARM_CONVOLVE_HWC_Q15_FAST_NONSQUARE)
    case QV_KERNEL_CONV_FAST_NONSQUARE:
        return (int32_t)arm_convolve_HWC_q15_fast_nonsquare(
            src, a.in_x, a.in_y, op->in_c, op->weights, op->out_c, a.k_x, a.k_y, a.pad_x, a.pad_y, a.stride_x,
            a.stride_y, op->bias, op->bias_lshift, op->out_rshift, dst, a.out_x, a.out_y, buf, NULL);
#else
    case QV_KERNEL_CONV_FAST_NONSQUARE: /* not compiled: a trimmed CMSIS tree */
        return QV_STATUS_NO_FUNCTION;
#endif
#if defined(QV_HAVE_ARM_CONVOLVE_HWC_Q15_FAST)
    case QV_KERNEL_CONV_FAST:
        return (int32_t)arm_convolve_HWC_q15_fast(src, a.in_x, op->in_c, op->weights, op->out_c, a.k_x, a.pad_x,
                                                  a.stride_x, op->bias, op->bias_lshift, op->out_rshift, dst,
                                                  a.out_x, buf, NULL);
#else
    case QV_KERNEL_CONV_FAST: /* not compiled: a trimmed CMSIS tree */
        return QV_STATUS_NO_FUNCTION;
#endif
#if defined(QV_HAVE_ARM_CONVOLVE_HWC_Q15_BASIC)
    case QV_KERNEL_CONV_BASIC:
        return (int32_t)arm_convolve_HWC_q15_basic(src, a.in_x, op->in_c, op->weights, op->out_c, a.k_x, a.pad_x,
                                                   a.stride_x, op->bias, op->bias_lshift, op->out_rshift, dst,
                                                   a.out_x, buf, NULL);
#else
    case QV_KERNEL_CONV_BASIC: /* not compiled: a trimmed CMSIS tree */
        return QV_STATUS_NO_FUNCTION;
#endif
    case QV_KERNEL_CONV_BASIC_NONSQUARE:
        return (int32_t)qv_convolve_HWC_q15_basic_nonsquare(
            src, a.in_x, a.in_y, op->in_c, op->weights, op->out_c, a.k_x, a.k_y, a.pad_x, a.pad_y, a.stride_x,
            a.stride_y, op->bias, op->bias_lshift, op->out_rshift, dst, a.out_x, a.out_y, buf, NULL);
#if defined(QV_HOST_SIMD)
    case QV_KERNEL_HOST_CONV:
        return qv_host_conv_q15(op, src, dst, buf);
#endif
#if defined(QV_HAVE_ARM_FULLY_CONNECTED_Q15)
    case QV_KERNEL_FULLY_CONNECTED:
        return (int32_t)arm_fully_connected_q15(src, op->weights, (uint16_t)in_n,
                                                (uint16_t)qv_elems(op->out_h, op->out_w, op->out_c),
                                                op->bias_lshift, op->out_rshift, op->bias, dst, buf);
#else
    case QV_KERNEL_FULLY_CONNECTED: /* not compiled: a trimmed CMSIS tree */
        return QV_STATUS_NO_FUNCTION;
#endif
#if defined(QV_HAVE_ARM_FULLY_CONNECTED_Q15_OPT)
    case QV_KERNEL_FULLY_CONNECTED_OPT:
        return (int32_t)arm_fully_connected_q15_opt(src, op->weights, (uint16_t)in_n,
                                                    (uint16_t)qv_elems(op->out_h, op->out_w, op->out_c),
                                                    op->bias_lshift, op->out_rshift, op->bias, dst, buf);
#else
    case QV_KERNEL_FULLY_CONNECTED_OPT:
        return QV_STATUS_NO_FUNCTION;
#endif
#if defined(QV_HAVE_ARM_FULLY_CONNECTED_MAT_Q7_VEC_Q15)
    case QV_KERNEL_FC_MAT_Q7_VEC_Q15:
        return (int32_t)arm_fully_connected_mat_q7_vec_q15(src, op->weights_q7, (uint16_t)in_n,
                                                           (uint16_t)qv_elems(op->out_h, op->out_w, op->out_c),
                                                           op->bias_lshift, op->out_rshift, op->bias_q7, dst, buf);
#else
    case QV_KERNEL_FC_MAT_Q7_VEC_Q15:
        return QV_STATUS_NO_FUNCTION;
#endif
#if defined(QV_HAVE_ARM_FULLY_CONNECTED_MAT_Q7_VEC_Q15_OPT)
    case QV_KERNEL_FC_MAT_Q7_VEC_Q15_OPT:
        return (int32_t)arm_fully_connected_mat_q7_vec_q15_opt(src, op->weights_q7, (uint16_t)in_n,
                                                               (uint16_t)qv_elems(op->out_h, op->out_w, op->out_c),
                                                               op->bias_lshift, op->out_rshift, op->bias_q7, dst,
                                                               buf);
#else
    case QV_KERNEL_FC_MAT_Q7_VEC_Q15_OPT:
        return QV_STATUS_NO_FUNCTION;
#endif
#if defined(QV_HAVE_ARM_RELU_Q15)
    case QV_KERNEL_RELU:
    {
        size_t done = 0u;
        if (dst != src) /* the runner runs a ReLU in place when it can */
        {
            memcpy(dst, src, in_n * sizeof(int16_t));
        }
        while (done < in_n)
        {
            const size_t n = ((in_n - done) < QV_RELU_CHUNK) ? (in_n - done) : QV_RELU_CHUNK;
            arm_relu_q15(dst + done, (uint16_t)n);
            done += n;
        }
        return ARM_MATH_SUCCESS;
    }
#else
    case QV_KERNEL_RELU: /* not compiled: a trimmed CMSIS tree */
        return QV_STATUS_NO_FUNCTION;
#endif
    case QV_KERNEL_RELU6:
        if (dst != src) /* in place when it can, as a ReLU */
        {
            memcpy(dst, src, in_n * sizeof(int16_t));
        }
        qv_relu6_q15(dst, (uint32_t)in_n, op->clamp_max);
        return ARM_MATH_SUCCESS;
#if defined(QV_HAVE_ARM_NN_ACTIVATIONS_DIRECT_Q15)
    case QV_KERNEL_ACTIVATIONS_DIRECT:
    {
        const arm_nn_activation_type type = (op->kind == QV_OP_SIGMOID) ? ARM_SIGMOID : ARM_TANH;
        size_t done = 0u;
        if (dst != src) /* in place when it can, as a ReLU */
        {
            memcpy(dst, src, in_n * sizeof(int16_t));
        }
        while (done < in_n) /* its size is a uint16_t */
        {
            const size_t n = ((in_n - done) < QV_RELU_CHUNK) ? (in_n - done) : QV_RELU_CHUNK;
            arm_nn_activations_direct_q15(dst + done, (uint16_t)n, (uint16_t)op->clamp_max, type);
            done += n;
        }
        return ARM_MATH_SUCCESS;
    }
#else
    case QV_KERNEL_ACTIVATIONS_DIRECT: /* not compiled: a trimmed CMSIS tree */
        return QV_STATUS_NO_FUNCTION;
#endif
#if defined(QV_HAVE_ARM_SOFTMAX_Q15)
    case QV_KERNEL_SOFTMAX:
    {
        size_t p;
        const size_t pixels = (size_t)op->in_h * (size_t)op->in_w;
        for (p = 0u; p < pixels; p++) /* never in place: src and dst are different buffers */
        {
            arm_softmax_q15(src + p * op->in_c, op->in_c, dst + p * op->in_c);
        }
        return ARM_MATH_SUCCESS;
    }
#else
    case QV_KERNEL_SOFTMAX: /* not compiled: a trimmed CMSIS tree */
        return QV_STATUS_NO_FUNCTION;
#endif
    case QV_KERNEL_MAXPOOL:
        return (int32_t)qv_maxpool_q15_HWC_nonsquare(src, op->in_w, op->in_h, op->in_c, op->k_w, op->k_h,
                                                     op->stride_w, op->stride_h, op->out_w, op->out_h, dst);
    case QV_KERNEL_AVEPOOL:
        return (int32_t)qv_avepool_q15_HWC_nonsquare(src, op->in_w, op->in_h, op->in_c, op->k_w, op->k_h,
                                                     op->stride_w, op->stride_h, op->out_w, op->out_h, dst);
    case QV_KERNEL_GLOBAL_AVEPOOL:
        return (int32_t)qv_global_avepool_q15_HWC(src, op->in_w, op->in_h, op->in_c, dst);
    case QV_KERNEL_COPY:
        if (dst != src)
        {
            memcpy(dst, src, in_n * sizeof(int16_t));
        }
        return ARM_MATH_SUCCESS;
    default:
        return ARM_MATH_ARGUMENT_ERROR;
    }
}

static void qv_fail_at(qv_run_info_t *info, int32_t op)
{
    if (info != NULL)
    {
        info->failed_op = op;
    }
}

int32_t qv_run(const qv_op_t *ops,
               int32_t n_ops,
               const int16_t *input,
               int32_t n_samples,
               int16_t *const *outputs,
               int32_t guard_outputs,
               int16_t *scratch,
               int32_t *kernel_used,
               qv_run_info_t *info)
{
    uint64_t act_words;
    uint64_t buf_words;
    size_t in0_n;
    qv_scratch_t sc;
    int32_t i;
    int32_t s;

    if (info != NULL)
    {
        info->failed_op = -1;
        info->buffer = -1;
        info->bytes = 0u;
        info->result = NULL;
    }
    if ((ops == NULL) || (n_ops <= 0) || (n_samples < 0))
    {
        return ARM_MATH_ARGUMENT_ERROR;
    }

    /* validate every op (and report the kernels) before touching any data */
    for (i = 0; i < n_ops; i++)
    {
        int32_t kernel;
        const int32_t status = qv_check_op(&ops[i], (i > 0) ? &ops[i - 1] : NULL, &kernel);
        if (kernel_used != NULL)
        {
            kernel_used[i] = kernel;
        }
        if (status != ARM_MATH_SUCCESS)
        {
            qv_fail_at(info, i);
            return status;
        }
    }
    if (n_samples == 0)
    {
        return ARM_MATH_SUCCESS;
    }
    if ((input == NULL) || (scratch == NULL) || !qv_scratch_layout(ops, n_ops, &act_words, &buf_words))
    {
        return ARM_MATH_ARGUMENT_ERROR;
    }
    qv_scratch_setup(&sc, scratch, act_words, buf_words);
    if ((outputs != NULL) && (guard_outputs != 0))
    {
        for (i = 0; i < n_ops; i++)
        {
            if (outputs[i] != NULL)
            {
                qv_guard_fill(outputs[i] + (size_t)n_samples * (size_t)qv_elems(ops[i].out_h, ops[i].out_w, ops[i].out_c));
            }
        }
    }

    in0_n = (size_t)qv_elems(ops[0].in_h, ops[0].in_w, ops[0].in_c);
    for (s = 0; s < n_samples; s++)
    {
        const int16_t *src = input + (size_t)s * in0_n;
        int32_t cur = -1; /* which act[] buffer holds src; -1: src is the input or a caller's output array */
        for (i = 0; i < n_ops; i++)
        {
            const qv_op_t *op = &ops[i];
            const size_t out_n = (size_t)qv_elems(op->out_h, op->out_w, op->out_c);
            const int16_t *out_guard = NULL;
            int16_t *dst;
            int32_t next;
            int32_t kernel;
            int32_t status;
            (void)qv_check_op(op, NULL, &kernel); /* already validated: only names the kernel */
            if ((outputs != NULL) && (outputs[i] != NULL))
            {
                /* a kept output is written in place, no copy; the next op reads it from there */
                dst = outputs[i] + (size_t)s * out_n;
                next = -1;
                out_guard = (guard_outputs != 0) ? outputs[i] + (size_t)n_samples * out_n : NULL;
            }
            else if ((cur >= 0) && ((kernel == QV_KERNEL_RELU) || (kernel == QV_KERNEL_RELU6) ||
                                     (kernel == QV_KERNEL_ACTIVATIONS_DIRECT) ||
                                     (kernel == QV_KERNEL_COPY)))
            {
                dst = sc.region[cur]; /* element-wise: in place */
                next = cur;
            }
            else
            {
                next = (cur == 0) ? 1 : 0;
                dst = sc.region[next];
            }
            status = qv_exec_op(op, kernel, src, dst, sc.region[QV_BUF_KERNEL]);
            if (status == ARM_MATH_SUCCESS)
            {
                status = qv_guards_check(&sc, out_guard, info);
            }
            if (status != ARM_MATH_SUCCESS)
            {
                qv_fail_at(info, i);
                return status;
            }
            src = dst;
            cur = next;
        }
        if (info != NULL)
        {
            info->result = src;
        }
    }
    return ARM_MATH_SUCCESS;
}

const char *qv_buffer_name(int32_t buffer)
{
    switch (buffer)
    {
    case QV_BUF_ACT0:
        return "activation buffer 0";
    case QV_BUF_ACT1:
        return "activation buffer 1";
    case QV_BUF_KERNEL:
        return "the kernel buffer (bufferA / vec_buffer)";
    case QV_BUF_OUTPUT:
        return "the op's output";
    default:
        return "unknown";
    }
}

const char *qv_kernel_name(int32_t kernel_id)
{
    switch (kernel_id)
    {
    case QV_KERNEL_NONE:
        return "none";
    case QV_KERNEL_CONV_BASIC:
        return "arm_convolve_HWC_q15_basic";
    case QV_KERNEL_CONV_FAST:
        return "arm_convolve_HWC_q15_fast";
    case QV_KERNEL_CONV_FAST_NONSQUARE:
        return "arm_convolve_HWC_q15_fast_nonsquare";
    case QV_KERNEL_CONV_BASIC_NONSQUARE:
        return "qv_convolve_HWC_q15_basic_nonsquare";
    case QV_KERNEL_FULLY_CONNECTED:
        return "arm_fully_connected_q15";
    case QV_KERNEL_FULLY_CONNECTED_OPT:
        return "arm_fully_connected_q15_opt";
    case QV_KERNEL_FC_MAT_Q7_VEC_Q15:
        return "arm_fully_connected_mat_q7_vec_q15";
    case QV_KERNEL_FC_MAT_Q7_VEC_Q15_OPT:
        return "arm_fully_connected_mat_q7_vec_q15_opt";
    case QV_KERNEL_RELU:
        return "arm_relu_q15";
    case QV_KERNEL_MAXPOOL:
        return "qv_maxpool_q15_HWC_nonsquare";
    case QV_KERNEL_AVEPOOL:
        return "qv_avepool_q15_HWC_nonsquare";
    case QV_KERNEL_GLOBAL_AVEPOOL:
        return "qv_global_avepool_q15_HWC";
    case QV_KERNEL_COPY:
        return "copy";
    case QV_KERNEL_HOST_CONV:
        return "qv_host_conv_q15";
    case QV_KERNEL_RELU6:
        return "qv_relu6_q15";
    case QV_KERNEL_ACTIVATIONS_DIRECT:
        return "arm_nn_activations_direct_q15";
    case QV_KERNEL_SOFTMAX:
        return "arm_softmax_q15";
    default:
        return "unknown";
    }
}

const char *qv_build_info(void)
{
    return "kernels=" QV_KERNELS_SOURCE "; path=" QV_PATH_NAME "; rounding=" QV_ROUNDING_NAME;
}

const char *qv_source_digest(void)
{
    return QV_SOURCE_DIGEST;
}
