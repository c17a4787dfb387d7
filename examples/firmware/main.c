/*
 * Example firmware main: runs the self-test of the network that `python -m qverify gate` verified
 * (nn/network.c compiled with QVERIFY_SELFTEST): INPUT_DATA of nn/sample_input_output.h through
 * every op of the plan with the CMSIS-NN q15 kernels and qverify's op runner (csrc/qv_runner.c),
 * each conv/dense op compared with the expected output in the same header.  Prints the op table,
 * then PASS, or FAIL naming the first divergent op and element; returns 0 or 1.
 *
 * Nothing here names a layer: the op table, the op names and the self-test come from the generated
 * nn/network.c (declared in qverify's firmware/qv_network.h), so this file builds against any
 * plan's nn/ folder.  nn/ is written by the gate only when every check passed:
 *   weights.h               weights, biases and shifts; refuses to compile in a build whose
 *                           ARM_NN_TRUNCATE does not match the rounding it was verified for
 *   sample_input_output.h   INPUT_DATA and each conv/dense op's expected output
 *   network.c               the qv_op_t table built from weights.h's macros (qverify.mcu.codegen,
 *                           the same file the emulated Cortex-M build compiles), its buffers and
 *                           qv_selftest()
 *
 * The host build (make run) and the Cortex-M build under QEMU (make qemu, board_mps2.c) compile this
 * same file.  A deployment calls qv_selftest() at boot or from a hardware-in-the-loop test the same way.
 */
#include <stdint.h>
#include <stdio.h>

#include "qv_network.h"

int main(void)
{
    qv_selftest_result_t r;
    int32_t i;

    printf("%s\n", qv_net_info);
    for (i = 0; i < qv_net_n_ops; i++)
    {
        const qv_op_t *op = &qv_net_ops[i];
        printf("  op %2ld  %-16s %-36s out %ux%ux%u\n", (long)i, qv_net_op_names[i], qv_kernel_name(op->kernel),
               (unsigned)op->out_h, (unsigned)op->out_w, (unsigned)op->out_c);
    }

    (void)qv_selftest(&r);
    if (r.status == QV_SELFTEST_PASS)
    {
        const qv_op_t *last = &qv_net_ops[qv_net_n_ops - 1];
        const uint32_t n = (uint32_t)last->out_h * last->out_w * last->out_c;
        uint32_t j;
        /* after a pass, qv_net_io holds the network's output for INPUT_DATA */
        printf("output:");
        for (j = 0u; j < n && j < 8u; j++)
        {
            printf(" %d", qv_net_io[j]);
        }
        printf("%s\n", n > 8u ? " ..." : "");
        printf("PASS: %ld ops ran, the %ld with an expected output bit-exact with sample_input_output.h\n",
               (long)qv_net_n_ops, (long)r.n_checked);
        return 0;
    }
    if (r.status == QV_SELFTEST_MISMATCH)
    {
        printf("FAIL: op %ld (%s): %lu of %lu values differ from sample_input_output.h; first at element %lu: "
               "expected %d, got %d\n",
               (long)r.op, r.op_name, (unsigned long)r.n_differ, (unsigned long)r.n_elements,
               (unsigned long)r.element, r.expected, r.got);
        return 1;
    }
    printf("FAIL: %s", qv_selftest_status_name(r.status));
    if (r.op >= 0)
    {
        printf(" at op %ld (%s)", (long)r.op, r.op_name);
    }
    if (r.arm_status != 0)
    {
        printf(", arm_status %ld", (long)r.arm_status);
    }
    printf("\n");
    return 1;
}
