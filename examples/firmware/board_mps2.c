/*
 * Board support for running main.c on an emulated Cortex-M (make qemu): QEMU's MPS2 boards with
 * qverify's startup code and linker script (firmware/startup.c, firmware/mps2.ld) and semihosting
 * (firmware/qv_semihost.c).  printf goes to QEMU's console through semihosting, main's return value
 * becomes QEMU's exit status, a fault prints its registers and exits 3.  A real board replaces this
 * file with its own startup, console and exit.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "qv_semihost.h"

#define MODE_W 4 /* semihosting open mode "w": with the name ":tt", the console */

static int32_t console = -1;

int _write(int fd, const char *buf, int len);
int _write(int fd, const char *buf, int len)
{
    static const char tt[] = ":tt";
    (void)fd;
    if (console < 0)
    {
        console = qv_sh_open(tt, sizeof(tt) - 1u, MODE_W);
    }
    if ((console < 0) || (len <= 0))
    {
        return len;
    }
    return len - qv_sh_write(console, buf, (uint32_t)len);
}

/* newlib's malloc (printf's buffers) takes its memory from here */
void *_sbrk(ptrdiff_t incr);
void *_sbrk(ptrdiff_t incr)
{
    static uint8_t heap[16384] __attribute__((aligned(8)));
    static size_t used = 0u;
    void *p;
    if ((incr < 0) || ((size_t)incr > sizeof(heap) - used))
    {
        return (void *)-1;
    }
    p = &heap[used];
    used += (size_t)incr;
    return p;
}

void qv_main_returned(int32_t code);
void qv_main_returned(int32_t code)
{
    fflush(stdout);
    qv_sh_exit((uint32_t)code);
}

#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)

void qv_fault_report(uint32_t psp, uint32_t msp, uint32_t exc_return, uint32_t ipsr);
void qv_fault_report(uint32_t psp, uint32_t msp, uint32_t exc_return, uint32_t ipsr)
{
    printf("FAIL: exception %lu (CFSR 0x%08lx, psp 0x%08lx, msp 0x%08lx, EXC_RETURN 0x%08lx)\n",
           (unsigned long)(ipsr & 0x1FFu), (unsigned long)SCB_CFSR, (unsigned long)psp, (unsigned long)msp,
           (unsigned long)exc_return);
    fflush(stdout);
    qv_sh_exit(3u);
}
