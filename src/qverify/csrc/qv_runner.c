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

static int qv_is_even(uint16_t v)
{
    return (v & 1u) == 0u;
}

/* Validate one op (prev = previous op or NULL) and choose its kernel. */
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
        if ((qv_window_out(op->in_h, op->pad_h, op->k_h, op->stride_h) != op->out_h) ||
            (qv_window_out(op->in_w, op->pad_w, op->k_w, op->stride_w) != op->out_w))
        {
            return ARM_MATH_ARGUMENT_ERROR;
        }
#if defined(QV_HOST_SIMD)
        if (qv_host_simd_level() != QV_SIMD_NONE)
        {
            *kernel = QV_KERNEL_HOST_CONV;
            return ARM_MATH_SUCCESS;
        }
#endif
        if (qv_is_even(op->in_c) && qv_is_even(op->out_c))
        {
            *kernel = QV_KERNEL_CONV_FAST_NONSQUARE;
        }
        else if ((op->in_h == op->in_w) && (op->k_h == op->k_w) && (op->stride_h == op->stride_w) &&
                 (op->pad_h == op->pad_w))
        {
            *kernel = QV_KERNEL_CONV_BASIC;
        }
        else
        {
            *kernel = QV_KERNEL_CONV_BASIC_NONSQUARE;
        }
        return ARM_MATH_SUCCESS;

    case QV_OP_DENSE:
        if ((op->weights == NULL) || (op->bias == NULL) || (op->bias_lshift > 31u) || (op->out_rshift > 31u) ||
            (in_n > 0xFFFFu) || (out_n > 0xFFFFu))
        {
            return ARM_MATH_ARGUMENT_ERROR;
        }
        *kernel = QV_KERNEL_FULLY_CONNECTED;
        return ARM_MATH_SUCCESS;

    case QV_OP_RELU:
    case QV_OP_FLATTEN:
        if (in_n != out_n)
        {
            return ARM_MATH_ARGUMENT_ERROR;
        }
        *kernel = (op->kind == QV_OP_RELU) ? QV_KERNEL_RELU : QV_KERNEL_COPY;
        return ARM_MATH_SUCCESS;

    case QV_OP_MAXPOOL:
    case QV_OP_AVGPOOL:
        if ((op->out_c != op->in_c) || (qv_window_out(op->in_h, 0u, op->k_h, op->stride_h) != op->out_h) ||
            (qv_window_out(op->in_w, 0u, op->k_w, op->stride_w) != op->out_w))
        {
            return ARM_MATH_ARGUMENT_ERROR;
        }
        *kernel = (op->kind == QV_OP_MAXPOOL) ? QV_KERNEL_MAXPOOL : QV_KERNEL_AVEPOOL;
        return ARM_MATH_SUCCESS;

    case QV_OP_GAP:
        if ((op->out_c != op->in_c) || (op->out_h != 1u) || (op->out_w != 1u))
        {
            return ARM_MATH_ARGUMENT_ERROR;
        }
        *kernel = QV_KERNEL_GLOBAL_AVEPOOL;
        return ARM_MATH_SUCCESS;

    default:
        return ARM_MATH_ARGUMENT_ERROR;
    }
}

/* Words per activation buffer and for the kernel buffer; 0 on overflow. */
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
    if ((2u * act + buf) > 0xFFFFFFFFu)
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
    return (uint32_t)(2u * act + buf);
}

/* Run one op on one sample: src -> dst, with the kernel chosen by qv_check_op. */
static int32_t qv_exec_op(const qv_op_t *op, int32_t kernel, const int16_t *src, int16_t *dst, int16_t *buf)
{
    const size_t in_n = (size_t)qv_elems(op->in_h, op->in_w, op->in_c);
    switch (kernel)
    {
    case QV_KERNEL_CONV_FAST_NONSQUARE:
        return (int32_t)arm_convolve_HWC_q15_fast_nonsquare(
            src, op->in_w, op->in_h, op->in_c, op->weights, op->out_c, op->k_w, op->k_h, op->pad_w, op->pad_h,
            op->stride_w, op->stride_h, op->bias, op->bias_lshift, op->out_rshift, dst, op->out_w, op->out_h, buf,
            NULL);
    case QV_KERNEL_CONV_BASIC:
        return (int32_t)arm_convolve_HWC_q15_basic(src, op->in_w, op->in_c, op->weights, op->out_c, op->k_w,
                                                   op->pad_w, op->stride_w, op->bias, op->bias_lshift,
                                                   op->out_rshift, dst, op->out_w, buf, NULL);
    case QV_KERNEL_CONV_BASIC_NONSQUARE:
        return (int32_t)qv_convolve_HWC_q15_basic_nonsquare(
            src, op->in_w, op->in_h, op->in_c, op->weights, op->out_c, op->k_w, op->k_h, op->pad_w, op->pad_h,
            op->stride_w, op->stride_h, op->bias, op->bias_lshift, op->out_rshift, dst, op->out_w, op->out_h, buf,
            NULL);
#if defined(QV_HOST_SIMD)
    case QV_KERNEL_HOST_CONV:
        return qv_host_conv_q15(op, src, dst, buf);
#endif
    case QV_KERNEL_FULLY_CONNECTED:
        return (int32_t)arm_fully_connected_q15(src, op->weights, (uint16_t)in_n,
                                                (uint16_t)qv_elems(op->out_h, op->out_w, op->out_c),
                                                op->bias_lshift, op->out_rshift, op->bias, dst, buf);
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

int32_t qv_run(const qv_op_t *ops,
               int32_t n_ops,
               const int16_t *input,
               int32_t n_samples,
               int16_t *const *outputs,
               int16_t *scratch,
               int32_t *kernel_used,
               int32_t *failed_op)
{
    uint64_t act_words;
    uint64_t buf_words;
    size_t in0_n;
    int32_t i;
    int32_t s;

    if (failed_op != NULL)
    {
        *failed_op = -1;
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
            if (failed_op != NULL)
            {
                *failed_op = i;
            }
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

    in0_n = (size_t)qv_elems(ops[0].in_h, ops[0].in_w, ops[0].in_c);
    for (s = 0; s < n_samples; s++)
    {
        int16_t *const act[2] = {scratch, scratch + act_words};
        int16_t *const buf = scratch + 2u * act_words;
        const int16_t *src = input + (size_t)s * in0_n;
        int32_t cur = -1; /* which act[] buffer holds src; -1: src is the input or a caller's output array */
        for (i = 0; i < n_ops; i++)
        {
            const qv_op_t *op = &ops[i];
            const size_t out_n = (size_t)qv_elems(op->out_h, op->out_w, op->out_c);
            int16_t *dst;
            int32_t next;
            int32_t kernel;
            int32_t status;
            (void)qv_check_op(op, NULL, &kernel); /* already validated: only picks the kernel */
            if ((outputs != NULL) && (outputs[i] != NULL))
            {
                /* a kept output is written in place, no copy; the next op reads it from there */
                dst = outputs[i] + (size_t)s * out_n;
                next = -1;
            }
            else if ((cur >= 0) && ((kernel == QV_KERNEL_RELU) || (kernel == QV_KERNEL_COPY)))
            {
                dst = act[cur]; /* element-wise: in place */
                next = cur;
            }
            else
            {
                next = (cur == 0) ? 1 : 0;
                dst = act[next];
            }
            status = qv_exec_op(op, kernel, src, dst, buf);
            if (status != ARM_MATH_SUCCESS)
            {
                if (failed_op != NULL)
                {
                    *failed_op = i;
                }
                return status;
            }
            src = dst;
            cur = next;
        }
    }
    return ARM_MATH_SUCCESS;
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
