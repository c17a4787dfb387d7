/*
 * qverify target image: vector table, reset and fault handling for QEMU's
 * MPS2 boards (Cortex-M3/M4/M7, see mps2.ld).
 *
 * Reset copies .data, zeroes .bss, makes the lowest 256 bytes of the thread
 * stack inaccessible with the MPU (a stack guard), switches thread mode to
 * the process stack (PSP, bottom of RAM) and calls main(), then qv_main_returned()
 * with its result (weak: spins; a board file may end the emulation); exceptions run on
 * the main stack (MSP), a separate region, so a fault caused by a
 * thread-stack overflow can still be reported.  Every fault and unexpected exception
 * goes to qv_fault_report() in qv_target_main.c, which writes a FAULT
 * record naming the running op and ends the emulation.
 */
#include <stdint.h>

extern uint32_t __qv_data_start, __qv_data_end, __qv_data_load;
extern uint32_t __qv_bss_start, __qv_bss_end;
extern uint32_t __qv_handler_stack_top;
extern uint32_t __qv_thread_stack_limit;

/* PMSAv7 MPU (Cortex-M3/M4/M7) */
#define QV_MPU_TYPE (*(volatile uint32_t *)0xE000ED90u)
#define QV_MPU_CTRL (*(volatile uint32_t *)0xE000ED94u)
#define QV_MPU_RNR (*(volatile uint32_t *)0xE000ED98u)
#define QV_MPU_RBAR (*(volatile uint32_t *)0xE000ED9Cu)
#define QV_MPU_RASR (*(volatile uint32_t *)0xE000EDA0u)
#define QV_SCB_SHCSR (*(volatile uint32_t *)0xE000ED24u)

/* The lowest 256 bytes of the thread stack become inaccessible (see mps2.ld). */
static void qv_stack_guard(void)
{
    if (((QV_MPU_TYPE >> 8) & 0xFFu) == 0u)
    {
        return; /* no MPU */
    }
    QV_MPU_RNR = 0u;
    QV_MPU_RBAR = (uint32_t)&__qv_thread_stack_limit; /* 256-byte aligned */
    /* XN, AP = 000 (no access), SIZE = 7 (2^8 bytes), enable */
    QV_MPU_RASR = (1u << 28) | (0u << 24) | (7u << 1) | 1u;
    /* enable, default memory map for privileged code; HardFault runs without the MPU */
    QV_MPU_CTRL = (1u << 2) | 1u;
    /* MemManage faults get their own exception (reported like every fault) */
    QV_SCB_SHCSR |= (1u << 16);
    __asm__ volatile("dsb\n\tisb" ::: "memory");
}

int main(void);
void qv_main_returned(int32_t code);
void qv_fault_report(uint32_t psp, uint32_t msp, uint32_t exc_return, uint32_t ipsr) __attribute__((noreturn));
void qv_reset_handler(void) __attribute__((noreturn));
void qv_fault_entry(void) __attribute__((naked, noreturn));
static void qv_start_main(void) __attribute__((naked, noreturn));

void qv_reset_handler(void)
{
    const uint32_t *src = &__qv_data_load;
    uint32_t *dst = &__qv_data_start;
    while (dst < &__qv_data_end)
    {
        *dst++ = *src++;
    }
    for (dst = &__qv_bss_start; dst < &__qv_bss_end; dst++)
    {
        *dst = 0u;
    }
    qv_stack_guard();
    qv_start_main();
}

/* Thread mode on the process stack (handlers keep the main stack), then main(). */
static void qv_start_main(void)
{
    __asm__ volatile("ldr r0, =__qv_thread_stack_top\n\t"
                     "msr psp, r0\n\t"
                     "mrs r0, control\n\t"
                     "orr r0, r0, #2\n\t"
                     "msr control, r0\n\t"
                     "isb\n\t"
                     "bl main\n\t"
                     "bl qv_main_returned\n\t"
                     "1: b 1b\n\t");
}

/* main's return value: a firmware that returns from main (the example firmware) ends the emulation here
 * (its board file defines this); the target harness never returns. */
void qv_main_returned(int32_t code) __attribute__((weak));
void qv_main_returned(int32_t code)
{
    (void)code;
    for (;;)
    {
    }
}

/* Passes both stack pointers, EXC_RETURN and the exception number on. */
void qv_fault_entry(void)
{
    __asm__ volatile("mrs r0, psp\n\t"
                     "mrs r1, msp\n\t"
                     "mov r2, lr\n\t"
                     "mrs r3, ipsr\n\t"
                     "b qv_fault_report\n\t");
}

typedef void (*qv_vector_t)(void);

/* 16 system exceptions + 32 external interrupts (all unexpected here). */
__attribute__((section(".qv_vectors"), used)) const qv_vector_t qv_vectors[48] = {
    (qv_vector_t)&__qv_handler_stack_top, /* initial MSP */
    qv_reset_handler,
    qv_fault_entry, /* NMI */
    qv_fault_entry, /* HardFault */
    qv_fault_entry, /* MemManage */
    qv_fault_entry, /* BusFault */
    qv_fault_entry, /* UsageFault */
    0, 0, 0, 0,
    qv_fault_entry, /* SVCall */
    qv_fault_entry, /* DebugMonitor */
    0,
    qv_fault_entry, /* PendSV */
    qv_fault_entry, /* SysTick */
    qv_fault_entry, qv_fault_entry, qv_fault_entry, qv_fault_entry, qv_fault_entry, qv_fault_entry,
    qv_fault_entry, qv_fault_entry, qv_fault_entry, qv_fault_entry, qv_fault_entry, qv_fault_entry,
    qv_fault_entry, qv_fault_entry, qv_fault_entry, qv_fault_entry, qv_fault_entry, qv_fault_entry,
    qv_fault_entry, qv_fault_entry, qv_fault_entry, qv_fault_entry, qv_fault_entry, qv_fault_entry,
    qv_fault_entry, qv_fault_entry, qv_fault_entry, qv_fault_entry, qv_fault_entry, qv_fault_entry,
    qv_fault_entry, qv_fault_entry,
};
