/*
 * What a generated network.c (qverify.mcu.codegen; the gate's `out` folder, the target build) defines:
 * the plan's op table for qv_run (csrc/qv_runner.h), the buffers to run it op by op, and the self-test.
 *
 * The self-test is compiled when network.c is compiled with QVERIFY_SELFTEST defined; it then includes
 * sample_input_output.h (and this header: put qverify's firmware/ folder on the include path).  It runs
 * INPUT_DATA through the network on the device, op by op, and compares each conv/dense op's output
 * with the expected output of sample_input_output.h: the check the host makes, at boot or in a
 * hardware-in-the-loop test.  Flash: INPUT_DATA and every conv/dense op's expected output (the sizes are
 * in sample_input_output.h's opening comment); with QVERIFY_SELFTEST_LAST_ONLY also defined, only the
 * last conv/dense op's, so a divergence is named at that op rather than where it began.  RAM: the
 * runner's scratch (qv_net_scratch) and one activation buffer (the first half of qv_net_io).
 */
#ifndef QV_NETWORK_H
#define QV_NETWORK_H

#include <stdint.h>

#include "qv_runner.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const qv_op_t qv_net_ops[];       /* the plan's ops, in order */
extern const int32_t qv_net_n_ops;
extern const char *const qv_net_op_names[]; /* the plan's op names, e.g. "conv1" */
extern const char qv_net_info[];         /* "plan=<hash>; weights_rounding=<truncate|round>" */
extern int16_t qv_net_scratch[];         /* qv_scratch_words() of the largest op, for one op per qv_run call */
extern const uint32_t qv_net_scratch_words;
extern int16_t qv_net_io[];              /* two activation buffers of qv_net_act_words each */
extern const uint32_t qv_net_act_words;

/* qv_selftest() results (qv_selftest_result_t.status) */
#define QV_SELFTEST_PASS 0        /* every compared op bit-exact with sample_input_output.h */
#define QV_SELFTEST_MISMATCH 1    /* op, element, expected and got name the first divergence */
#define QV_SELFTEST_OTHER_PLAN 2  /* weights.h and sample_input_output.h name different plans */
#define QV_SELFTEST_INVALID 3     /* qv_run refused the op table: op, arm_status */
#define QV_SELFTEST_KERNEL 4      /* op's kernel returned arm_status (QV_STATUS_OVERRUN: wrote past a buffer) */
#define QV_SELFTEST_BUFFERS 5     /* op needs more scratch or activation words than network.c holds */

typedef struct
{
    int32_t status;      /* QV_SELFTEST_* */
    int32_t op;          /* index in qv_net_ops of the divergent or failing op; -1 if none */
    const char *op_name; /* qv_net_op_names[op], or "" */
    uint32_t element;    /* MISMATCH: the first differing element of op's output (flat HWC index) */
    int16_t expected;    /* MISMATCH: sample_input_output.h's value there */
    int16_t got;         /* MISMATCH: what this device computed */
    uint32_t n_differ;   /* MISMATCH: how many of op's n_elements differ */
    uint32_t n_elements; /* op's output size */
    int32_t arm_status;  /* INVALID / KERNEL: the status */
    int32_t n_checked;   /* ops compared (bit-exact ones, plus the divergent one) */
    int32_t n_expected;  /* ops with an expected output in this build (every conv/dense op, or the last) */
} qv_selftest_result_t;

/* Runs the self-test; returns result->status (result may be NULL). */
int32_t qv_selftest(qv_selftest_result_t *result);

/* "pass", "mismatch", ... for a QV_SELFTEST_* status. */
const char *qv_selftest_status_name(int32_t status);

#ifdef __cplusplus
}
#endif

#endif /* QV_NETWORK_H */
