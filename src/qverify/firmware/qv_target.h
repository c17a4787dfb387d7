/*
 * qverify target image: the protocol between the bare-metal harness
 * (qv_target_main.c) and the host (src/qverify/mcu/protocol.py, which
 * mirrors every number below).
 *
 * Input file QV_INPUT_FILE (little-endian):
 *   uint32 magic 'QVIN', version, n_samples, first_op, last_op, mode
 *   then int16 data:
 *     mode PROPAGATED: for each sample the input of first_op; ops
 *       first_op..last_op run in a chain, each fed the previous output;
 *     mode ISOLATED: for each op first_op..last_op, for each sample, that
 *       op's input; every op is fed its own input from the file.
 *
 * Output file QV_OUTPUT_FILE: a stream of records, each
 *   uint32 tag, op, sample, a, b, payload_bytes; payload; padding to 4.
 * Every record is written with its own semihosting call, so after a hang or
 * a crash the file holds everything up to the op that was running.
 */
#ifndef QV_TARGET_H
#define QV_TARGET_H

#define QV_INPUT_FILE "qv_in.bin"
#define QV_OUTPUT_FILE "qv_out.bin"

#define QV_IN_MAGIC 0x4E495651u /* "QVIN" */
#define QV_PROTOCOL_VERSION 1u
#define QV_MODE_PROPAGATED 0u
#define QV_MODE_ISOLATED 1u

/* record tags ("HELO" ... as little-endian ASCII) */
#define QV_REC_HELLO 0x4F4C4548u  /* a = n_ops, b = protocol version; payload: info text */
#define QV_REC_KERNELS 0x4E52454Bu /* a = qv_scratch_words(all ops); payload: n_ops NUL-terminated kernel names */
#define QV_REC_CALIB 0x494C4143u  /* a = timer ticks for b instructions; payload: uint32 overhead ticks */
#define QV_REC_BEGIN 0x4E474542u  /* op is about to run on sample */
#define QV_REC_OUTPUT 0x5054554Fu /* a = arm_status, b = timer ticks; payload: the op's int16 output */
#define QV_REC_ERROR 0x52525245u  /* a = error code (QV_ERR_*), b = detail (e.g. arm_status) */
#define QV_REC_FAULT 0x544C4146u  /* a = exception number, b = stacked pc; payload: uint32 regs */
#define QV_REC_DONE 0x454E4F44u   /* all requested ops ran */
/* network.c's qv_selftest() at boot (images built with a sample_input_output.h): op = the divergent or
 * failing op (-1), a = QV_SELFTEST_* status, b = first differing element; payload: int32 expected, got,
 * n_differ, n_elements, arm_status, n_checked, n_expected */
#define QV_REC_SELFTEST 0x464C4553u /* "SELF" */

/* QV_REC_ERROR codes */
#define QV_ERR_INPUT_OPEN 1     /* the input file cannot be opened */
#define QV_ERR_INPUT_HEADER 2   /* bad magic/version/op range; b = which field */
#define QV_ERR_INPUT_SHORT 3    /* the input file ended early */
#define QV_ERR_VALIDATE 4       /* qv_run refused the ops table: b = arm_status, op = failed op */
#define QV_ERR_KERNEL 5         /* a kernel returned b = arm_status */
#define QV_ERR_SCRATCH 6        /* qv_scratch_words exceeds the generated scratch: b = words needed */
#define QV_ERR_OVERRUN 7        /* a kernel wrote past a buffer: b = QV_BUF_* << 24 | bytes past it */

/* exit codes of the image (QEMU exits with them) */
#define QV_EXIT_OK 0
#define QV_EXIT_ERROR 2
#define QV_EXIT_FAULT 3
#define QV_EXIT_NO_OUTPUT 4

/* payload of QV_REC_FAULT: uint32 words in this order */
#define QV_FAULT_WORDS 8 /* CFSR, HFSR, MMFAR, BFAR, stacked lr, psp, msp, fault flags */

#endif /* QV_TARGET_H */
