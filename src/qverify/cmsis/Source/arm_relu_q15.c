/*
 * qverify bundled CMSIS-NN replacement: arm_relu_q15 (in place, negatives -> 0).
 *
 * Written for qverify from the legacy API contract; the code is not Arm's.
 * DSP path: two values per word; the two sign bits are rotated down to
 * bits 0 and 16, __QSUB16(0, signs) turns each into an all-ones halfword
 * mask for the negative lanes, and the word is cleared under that mask.
 * An odd size leaves one value, done in C.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

void arm_relu_q15(q15_t *data, uint16_t size)
{
#if defined(ARM_MATH_DSP)
    q15_t *p = data;
    uint32_t pairs = (uint32_t)size >> 1;
    while (pairs > 0u)
    {
        const uint32_t in = qv_read_q15x2(p);
        const uint32_t signs = __ROR(in & 0x80008000u, 15); /* 1 in each negative lane */
        const uint32_t mask = __QSUB16(0u, signs);          /* 0xFFFF in each negative lane */
        qv_write_q15x2_ia(&p, in & ~mask);
        pairs--;
    }
    if ((size & 1u) != 0u)
    {
        if (*p < 0)
        {
            *p = 0;
        }
    }
#else
    /*
     * Every element is stored unconditionally (zero first, then the value
     * itself when positive): with no store that happens only on one branch,
     * compilers if-convert the loop and vectorise it (pmaxsw on x86); the
     * branchy form mispredicts on about every other activation.
     */
    uint32_t i;
    for (i = 0; i < size; i++)
    {
        const q15_t v = data[i];
        data[i] = 0;
        if (v > 0)
        {
            data[i] = v;
        }
    }
#endif
}
