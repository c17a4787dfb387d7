"""The emulated microcontroller: the kernels cross-compiled for a Cortex-M with arm-none-eabi-gcc, run under QEMU.

    toolchain.py  finding arm-none-eabi-gcc / -size / -objdump and qemu-system-arm; the cores (CPUS)
    codegen.py    plan -> weights.h (qverify.export) + network.c (the qv_op_t table)
    image.py      cached cross-compilation and linking (firmware/), arm-none-eabi-size figures
    qemu.py       running an image with semihosting and -icount; hang / fault / error reports
    protocol.py   the file protocol shared with firmware/qv_target.h
    report.py     footprint and per-op instruction tables
    run.py        one `qverify target` run: build, run, compare with the host engines, collect the figures

The engine is qverify.engines.target.TargetEngine; the command `qverify target`.
"""

from qverify.mcu.errors import TargetBuildError, TargetError, TargetRunError, ToolchainError
from qverify.mcu.toolchain import CPUS, INSTALL_COMMAND, PACKAGES, find_toolchain, missing_reason

__all__ = [
    "CPUS",
    "INSTALL_COMMAND",
    "PACKAGES",
    "TargetBuildError",
    "TargetError",
    "TargetRunError",
    "ToolchainError",
    "find_toolchain",
    "missing_reason",
]
