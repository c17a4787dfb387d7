"""The programs the tests need from the machine, in one place.

A test that needs a program calls ``require(...)``: without it the test is skipped with the
Debian package to install, except under CI (CI=true), where a missing program is a failure,
because .ci/run installs every one of them by name (a skip there would hide a broken set-up).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

# program -> the Debian packages that provide it (and what it needs to work: no Recommends relied on)
DEBIAN_PACKAGES = {
    "gcc": "gcc",
    "make": "make",
    "objdump": "binutils",
    "clang": "clang",
    "arm-linux-gnueabihf-gcc": "gcc-arm-linux-gnueabihf libc6-dev-armhf-cross",
    "qemu-arm": "qemu-user",
    "arm-none-eabi-gcc": "gcc-arm-none-eabi libnewlib-arm-none-eabi",
    "qemu-system-arm": "qemu-system-arm",
    "chromium": "chromium fonts-liberation",  # the HTML report in a headless browser; the font a Recommends of it
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def absent(reason: str) -> None:
    """Skip with the reason, or fail under CI."""
    if in_ci():
        pytest.fail(f"CI must run this test, but {reason}")
    pytest.skip(reason)


def require(*programs: str) -> list[str]:
    """The full paths of the programs; skips (fails under CI) naming the packages of any missing one."""
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        packages = " ".join(DEBIAN_PACKAGES.get(p, p) for p in missing)
        absent(f"{', '.join(missing)} not found on PATH (Debian: apt-get install {packages})")
    return [shutil.which(p) for p in programs]


def require_compiler(cc: str, *flags: str) -> str:
    """A C compiler that builds a program using the C library's headers (a cross compiler without its
    libc package is found on PATH yet cannot compile the kernels)."""
    (path,) = require(cc)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.c"
        src.write_text('#include <stdint.h>\n#include <string.h>\nint main(void) { return (int)strlen(""); }\n')
        r = subprocess.run([path, *flags, str(src), "-o", str(Path(tmp) / "probe")], capture_output=True, text=True)
    if r.returncode != 0:
        first = (r.stderr.strip().splitlines() or ["(no output)"])[0]
        absent(f"{cc} cannot build a C program ({first}); Debian: apt-get install {DEBIAN_PACKAGES.get(cc, cc)}")
    return path
