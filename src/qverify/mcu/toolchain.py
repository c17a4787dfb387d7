"""Finding the cross toolchain and the emulator, and the Cortex-M cores qverify can target.

Programs are looked up on PATH.  A missing one raises ToolchainError naming
the program, the Debian package that provides it and the one command that
installs everything ``qverify target`` needs (INSTALL_COMMAND).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from qverify.choices import CodePath, Cpu
from qverify.mcu.errors import ToolchainError

PACKAGES = ("gcc-arm-none-eabi", "libnewlib-arm-none-eabi", "qemu-system-arm")
INSTALL_COMMAND = "apt-get install -y " + " ".join(PACKAGES)

# program -> Debian package
PROGRAMS = {
    "gcc": ("arm-none-eabi-gcc", "gcc-arm-none-eabi"),
    "size": ("arm-none-eabi-size", "binutils-arm-none-eabi (comes with gcc-arm-none-eabi)"),
    "objdump": ("arm-none-eabi-objdump", "binutils-arm-none-eabi (comes with gcc-arm-none-eabi)"),
    "nm": ("arm-none-eabi-nm", "binutils-arm-none-eabi (comes with gcc-arm-none-eabi)"),
    "addr2line": ("arm-none-eabi-addr2line", "binutils-arm-none-eabi (comes with gcc-arm-none-eabi)"),
    "qemu": ("qemu-system-arm", "qemu-system-arm"),
}


@dataclass(frozen=True)
class Core:
    """A core qverify can build for and the QEMU board that emulates it."""

    name: Cpu  # -mcpu / -cpu value
    machine: str  # QEMU -machine
    board: str  # human name of the board
    dsp: bool  # has the DSP extension: ARM_MATH_DSP, SIMD instructions
    arch: str  # architecture, for messages

    @property
    def path(self) -> CodePath:
        """The code path of the kernels a firmware for this core runs."""
        return CodePath.DSP if self.dsp else CodePath.PLAIN


# keyed by str: a Cpu is a str, and callers look cores up by the names the config and the CLI hold
CPUS: dict[str, Core] = {
    core.name: core
    for core in (
        Core(Cpu.CORTEX_M3, "mps2-an385", "MPS2 AN385", False, "Armv7-M"),
        Core(Cpu.CORTEX_M4, "mps2-an386", "MPS2 AN386", True, "Armv7E-M"),
        Core(Cpu.CORTEX_M7, "mps2-an500", "MPS2 AN500", True, "Armv7E-M"),
    )
}


def cpu(name: str) -> Core:
    from qverify.errors import QVerifyError

    try:
        return CPUS[name]
    except KeyError:
        raise QVerifyError(f"unknown cpu '{name}'; expected one of {', '.join(CPUS)}") from None


def _missing(program: str, package: str, why: str) -> ToolchainError:
    return ToolchainError(
        f"{program} not found on PATH ({why}); it is in the Debian package {package}. "
        f"Install the target toolchain with: {INSTALL_COMMAND}",
        program,
    )


@dataclass(frozen=True)
class Toolchain:
    gcc: str
    size: str
    objdump: str
    nm: str
    addr2line: str | None
    qemu: str | None
    gcc_version: str

    def require_qemu(self) -> str:
        if self.qemu is None:
            name, package = PROGRAMS["qemu"]
            raise _missing(name, package, "it runs the image")
        return self.qemu


def _find(key: str) -> str | None:
    """The program on PATH, or None."""
    return shutil.which(PROGRAMS[key][0])


def _which(key: str, why: str) -> str:
    """The program on PATH; raises ToolchainError (saying why it is needed) when it is missing."""
    path = _find(key)
    if path is None:
        name, package = PROGRAMS[key]
        raise _missing(name, package, why)
    return path


@lru_cache(maxsize=8)
def _probe(gcc: str) -> tuple[str, bool]:
    """(version line, newlib present) of an arm-none-eabi-gcc."""
    try:
        version = subprocess.run([gcc, "--version"], capture_output=True, text=True, timeout=30).stdout.splitlines()[0]
        spec = subprocess.run(
            [gcc, "-print-file-name=nano.specs"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError, IndexError) as exc:
        raise ToolchainError(
            f"{gcc} does not run ({exc}); reinstall with: {INSTALL_COMMAND}", "arm-none-eabi-gcc"
        ) from exc
    return version, Path(spec).is_absolute() and Path(spec).is_file()


def find_toolchain(need_qemu: bool = True) -> Toolchain:
    """The programs on PATH; raises ToolchainError for the first one missing."""
    gcc = _which("gcc", "it cross-compiles the kernels")
    size = _which("size", "it measures the image")
    objdump = _which("objdump", "it disassembles the kernels")
    nm = _which("nm", "it measures the image's arrays")
    addr2line = _find("addr2line")
    qemu = _which("qemu", "it runs the image") if need_qemu else _find("qemu")
    version, newlib = _probe(gcc)
    if not newlib:
        raise ToolchainError(
            f"{gcc} has no newlib (nano.specs not found; the image links memcpy/memset from it); it is in the "
            f"Debian package libnewlib-arm-none-eabi. Install the target toolchain with: {INSTALL_COMMAND}",
            "libnewlib-arm-none-eabi",
        )
    return Toolchain(gcc, size, objdump, nm, addr2line, qemu, version)


def missing_reason() -> str | None:
    """None when everything is installed, else the message find_toolchain would raise."""
    try:
        find_toolchain()
    except ToolchainError as exc:
        return str(exc)
    return None
