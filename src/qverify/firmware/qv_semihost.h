/*
 * The few Arm semihosting calls the qverify target image needs (BKPT 0xAB,
 * operation in r0, parameter block in r1).  QEMU serves them on the host
 * with `-semihosting-config enable=on,target=native`: files are opened
 * relative to QEMU's working directory.
 */
#ifndef QV_SEMIHOST_H
#define QV_SEMIHOST_H

#include <stdint.h>

#define QV_SYS_OPEN 0x01
#define QV_SYS_CLOSE 0x02
#define QV_SYS_WRITE 0x05
#define QV_SYS_READ 0x06
#define QV_SYS_EXIT 0x18
#define QV_SYS_EXIT_EXTENDED 0x20

#define QV_SH_MODE_RB 1 /* fopen mode "rb" */
#define QV_SH_MODE_WB 5 /* fopen mode "wb" */

#define QV_ADP_STOPPED_APPLICATION_EXIT 0x20026

static inline int32_t qv_semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return (int32_t)r0;
}

/* Handle (>= 0) or -1. */
int32_t qv_sh_open(const char *name, uint32_t len, uint32_t mode);
/* 0 when all len bytes were transferred. */
int32_t qv_sh_write(int32_t fh, const void *buf, uint32_t len);
int32_t qv_sh_read(int32_t fh, void *buf, uint32_t len);
void qv_sh_close(int32_t fh);
/* Ends the emulation: QEMU exits with `code`. */
void qv_sh_exit(uint32_t code) __attribute__((noreturn));

#endif /* QV_SEMIHOST_H */
