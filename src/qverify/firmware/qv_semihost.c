/* Semihosting calls of the qverify target image (see qv_semihost.h). */
#include "qv_semihost.h"

int32_t qv_sh_open(const char *name, uint32_t len, uint32_t mode)
{
    const uint32_t block[3] = {(uint32_t)name, mode, len};
    return qv_semihost(QV_SYS_OPEN, block);
}

int32_t qv_sh_write(int32_t fh, const void *buf, uint32_t len)
{
    const uint32_t block[3] = {(uint32_t)fh, (uint32_t)buf, len};
    return qv_semihost(QV_SYS_WRITE, block); /* bytes NOT written */
}

int32_t qv_sh_read(int32_t fh, void *buf, uint32_t len)
{
    const uint32_t block[3] = {(uint32_t)fh, (uint32_t)buf, len};
    return qv_semihost(QV_SYS_READ, block); /* bytes NOT read */
}

void qv_sh_close(int32_t fh)
{
    const uint32_t block[1] = {(uint32_t)fh};
    (void)qv_semihost(QV_SYS_CLOSE, block);
}

void qv_sh_exit(uint32_t code)
{
    const uint32_t block[2] = {QV_ADP_STOPPED_APPLICATION_EXIT, code};
    for (;;)
    {
        (void)qv_semihost(QV_SYS_EXIT_EXTENDED, block);
        /* a host without SYS_EXIT_EXTENDED: plain exit (status 0 or 1) */
        (void)qv_semihost(QV_SYS_EXIT, (const void *)(code == 0u ? QV_ADP_STOPPED_APPLICATION_EXIT : 0x20023u));
    }
}
