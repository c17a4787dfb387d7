/*
 * Example firmware main: runs the network that `python -m qverify gate` verified on the sample
 * input of nn/sample_input_output.h, with the CMSIS-NN q15 kernels and qverify's op runner
 * (csrc/qv_runner.c), and checks every conv/dense layer against the expected output in the same
 * header.  Prints PASS or FAIL and exits 0 or 1.
 *
 * nn/ is written by the gate only when every check passed:
 *   weights.h               weights, biases and shifts (CONV1_WT, CONV1_BIAS, CONV1_BIAS_LSHIFT, ...)
 *   sample_input_output.h   INPUT_DATA and each layer's expected output (CONV1 ... FC3)
 *   network.c               the qv_op_t table built from weights.h's macros (qverify.mcu.codegen,
 *                           the same file the emulated Cortex-M build compiles), a scratch buffer
 *                           and two activation buffers
 *
 * Each op runs on its own (two ping-pong activation buffers, as on the device) so that every
 * layer's output can be compared; a deployment runs the same table op by op, or in one
 * qv_run call with qv_scratch_words(qv_net_ops, qv_net_n_ops) words of scratch.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "qv_runner.h"

#include "weights.h"
static const char weights_plan[] = QVERIFY_PLAN_HASH;
#undef QVERIFY_PLAN_HASH /* sample_input_output.h defines it again: both must name the same plan */
#undef QVERIFY_ROUNDING
#include "sample_input_output.h"

/* nn/network.c */
extern const qv_op_t qv_net_ops[];
extern const int32_t qv_net_n_ops;
extern int16_t qv_net_scratch[];
extern const uint32_t qv_net_scratch_words;
extern int16_t qv_net_io[];
extern const uint32_t qv_net_act_words;

/* How this firmware builds CMSIS-NN: must be the rounding the headers were verified for. */
#ifdef ARM_NN_TRUNCATE
#define BUILD_ROUNDING "truncate"
#else
#define BUILD_ROUNDING "round"
#endif

#define COUNT(a) ((uint32_t)(sizeof(a) / sizeof((a)[0])))

static const int16_t input[] = INPUT_DATA;

/* Expected outputs of the conv/dense layers, in network order: the k-th entry belongs to the
 * k-th conv/dense op of the table (ReLU, pooling and flatten ops sit between them). */
static const int16_t conv1[] = CONV1;
static const int16_t conv2[] = CONV2;
static const int16_t conv3[] = CONV3;
static const int16_t conv4[] = CONV4;
static const int16_t conv5[] = CONV5;
static const int16_t conv6[] = CONV6;
static const int16_t conv7[] = CONV7;
static const int16_t conv8[] = CONV8;
static const int16_t fc1[] = FC1;
static const int16_t fc2[] = FC2;
static const int16_t fc3[] = FC3;

static const struct
{
    const char *name;
    const int16_t *expected;
    uint32_t size;
} layers[] = {
    {"conv1", conv1, COUNT(conv1)}, {"conv2", conv2, COUNT(conv2)}, {"conv3", conv3, COUNT(conv3)},
    {"conv4", conv4, COUNT(conv4)}, {"conv5", conv5, COUNT(conv5)}, {"conv6", conv6, COUNT(conv6)},
    {"conv7", conv7, COUNT(conv7)}, {"conv8", conv8, COUNT(conv8)}, {"fc1", fc1, COUNT(fc1)},
    {"fc2", fc2, COUNT(fc2)},       {"fc3", fc3, COUNT(fc3)},
};

static uint32_t elems(uint16_t h, uint16_t w, uint16_t c)
{
    return (uint32_t)h * (uint32_t)w * (uint32_t)c;
}

static int fail(const char *what)
{
    printf("FAIL: %s\n", what);
    return 1;
}

int main(void)
{
    const int16_t *src = input;
    int16_t *const io[2] = {qv_net_io, qv_net_io + qv_net_act_words};
    uint32_t layer = 0u;
    uint32_t bad_layers = 0u;
    qv_run_info_t info;
    int32_t status;
    int32_t i;

    printf("plan %s, kernels built with %s rounding\n", QVERIFY_PLAN_HASH, BUILD_ROUNDING);
    if (strcmp(weights_plan, QVERIFY_PLAN_HASH) != 0)
    {
        return fail("weights.h and sample_input_output.h come from different plans: run `python -m qverify gate`");
    }
    if (strcmp(QVERIFY_ROUNDING, BUILD_ROUNDING) != 0)
    {
        printf("headers verified for %s rounding, kernels built with %s rounding (ARM_NN_TRUNCATE %s)\n",
               QVERIFY_ROUNDING, BUILD_ROUNDING, strcmp(BUILD_ROUNDING, "truncate") == 0 ? "defined" : "undefined");
        return fail("rounding mismatch: set `rounding` in [tool.qverify] to how this firmware builds CMSIS-NN");
    }
    if (COUNT(input) != elems(qv_net_ops[0].in_h, qv_net_ops[0].in_w, qv_net_ops[0].in_c))
    {
        return fail("INPUT_DATA does not have the size of the network's input");
    }
    /* every op and the chain between them, checked once before anything runs (n_samples = 0) */
    status = qv_run(qv_net_ops, qv_net_n_ops, NULL, 0, NULL, 0, NULL, NULL, &info);
    if (status != 0)
    {
        printf("qv_run refused op %ld: arm_status %ld\n", (long)info.failed_op, (long)status);
        return fail("the ops table is invalid");
    }

    for (i = 0; i < qv_net_n_ops; i++)
    {
        const qv_op_t *op = &qv_net_ops[i];
        int16_t *dst = io[i & 1];
        int16_t *const outputs[1] = {dst};
        int32_t kernel = 0;
        const uint32_t n = elems(op->out_h, op->out_w, op->out_c);

        if (qv_scratch_words(op, 1) > qv_net_scratch_words || n > qv_net_act_words)
        {
            return fail("network.c's buffers are too small for an op");
        }
        status = qv_run(op, 1, src, 1, outputs, 0, qv_net_scratch, &kernel, &info);
        if (status == QV_STATUS_OVERRUN)
        {
            printf("op %ld (%s): wrote %lu bytes past %s\n", (long)i, qv_kernel_name(kernel), (unsigned long)info.bytes,
                   qv_buffer_name(info.buffer));
        }
        if (status != 0)
        {
            printf("op %ld (%s): arm_status %ld\n", (long)i, qv_kernel_name(kernel), (long)status);
            return fail("a kernel returned an error");
        }
        if (op->kind == QV_OP_CONV || op->kind == QV_OP_DENSE)
        {
            uint32_t j;
            uint32_t diff = 0u;
            uint32_t first = 0u;
            if (layer >= COUNT(layers) || layers[layer].size != n)
            {
                return fail("the expected outputs do not match the network's conv/dense layers");
            }
            for (j = 0u; j < n; j++)
            {
                if (dst[j] != layers[layer].expected[j])
                {
                    if (diff == 0u)
                    {
                        first = j;
                    }
                    diff++;
                }
            }
            if (diff == 0u)
            {
                printf("  %-6s %-36s %6lu values bit-exact\n", layers[layer].name, qv_kernel_name(kernel),
                       (unsigned long)n);
            }
            else
            {
                printf("  %-6s %-36s %6lu of %lu values differ; first at %lu: expected %d, got %d\n",
                       layers[layer].name, qv_kernel_name(kernel), (unsigned long)diff, (unsigned long)n,
                       (unsigned long)first, layers[layer].expected[first], dst[first]);
                bad_layers++;
            }
            layer++;
        }
        src = dst;
    }
    if (layer != COUNT(layers))
    {
        return fail("the network has fewer conv/dense layers than sample_input_output.h");
    }
    printf("output: %d (the integer logit; > 0 means faulty)\n", src[0]);
    if (bad_layers != 0u)
    {
        printf("FAIL: %lu of %lu layers differ from sample_input_output.h\n", (unsigned long)bad_layers,
               (unsigned long)layer);
        return 1;
    }
    printf("PASS: %lu layers bit-exact with sample_input_output.h\n", (unsigned long)layer);
    return 0;
}
