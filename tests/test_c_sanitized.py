"""The C kernels and runner under AddressSanitizer + UBSan, in all six build variants.

tests/c/test_kernels.c drives every kernel and qv_run against its own int64
reference; here it is compiled with the sanitizers (and -fwrapv, as the
native modules are) for DSP/plain/fast x truncate/round and run.  The "fast"
variants (-DQV_HOST_SIMD) also test the host SIMD convolution
(csrc/qv_host_conv.c) directly at every SIMD level the CPU has (AVX-512 VNNI
and AVX2), and run the runner through it at both levels.
"""

from __future__ import annotations

import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from qverify.build import CMSIS_DIR, CSRC
from tools import require, require_compiler

ROOT = Path(__file__).resolve().parents[1]
CASES = "2000"  # random cases per kernel group (a few seconds per variant)
VARIANTS = {
    "dsp_truncate": ["-DARM_MATH_DSP", "-DARM_NN_TRUNCATE"],
    "dsp_round": ["-DARM_MATH_DSP"],
    "plain_truncate": ["-DARM_NN_TRUNCATE"],
    "plain_round": [],
    "fast_truncate": ["-DQV_HOST_SIMD", "-DARM_NN_TRUNCATE"],
    "fast_round": ["-DQV_HOST_SIMD"],
}
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fwrapv", "-g", "-O1"]


def _sources() -> list[str]:
    # qv_host_conv.c compiles to a stub on non-x86 hosts (and is unused without -DQV_HOST_SIMD)
    files = [ROOT / "tests" / "c" / "test_kernels.c", CSRC / "qv_runner.c", CSRC / "qv_host_conv.c"]
    files += sorted((CMSIS_DIR / "Source").glob("*.c"))
    return [str(f) for f in files]


def _compile(cc: str, variant: str, out_dir: Path, flags=SANITIZE) -> tuple[Path, subprocess.CompletedProcess]:
    exe = out_dir / f"test_kernels_{variant}"
    cmd = [
        cc,
        "-std=c99",
        "-Wall",
        "-Wextra",
        *flags,
        *VARIANTS[variant],
        "-I",
        str(CMSIS_DIR / "Include"),
        "-I",
        str(CSRC),
        "-I",
        str(ROOT / "tests" / "c"),
        *_sources(),
        "-o",
        str(exe),
    ]
    return exe, subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def binaries(tmp_path_factory) -> dict:
    (gcc,) = require("gcc")
    out_dir = tmp_path_factory.mktemp("sanitized")
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {v: pool.submit(_compile, gcc, v, out_dir) for v in VARIANTS}
        return {v: f.result() for v, f in futures.items()}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_kernels_pass_under_sanitizers(binaries, variant):
    """test_kernels.c compiles warning-free and passes with ASan+UBSan for this variant."""
    exe, build = binaries[variant]
    assert build.returncode == 0, f"compilation failed:\n{build.stderr}"
    assert "warning" not in build.stderr, build.stderr
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:abort_on_error=0", UBSAN_OPTIONS="print_stacktrace=1")
    run = subprocess.run([str(exe), CASES], capture_output=True, text=True, timeout=300, env=env)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]
    summary = re.search(r"^test_kernels: (\d+) passed, (\d+) failed$", run.stdout, re.M)
    assert summary, output[-5000:]
    assert int(summary.group(2)) == 0 and int(summary.group(1)) > 10000, summary.group(0)
    expected_info = f"path={variant.split('_')[0]}; rounding={variant.split('_')[1]}"
    assert expected_info in run.stdout.splitlines()[0]
    assert "runtime error" not in output and "ERROR: AddressSanitizer" not in output


@pytest.mark.parametrize("variant", ["dsp_truncate", "dsp_round", "fast_truncate"])
def test_kernels_pass_with_real_dsp_instructions(tmp_path, variant):
    """On an ARMv7 core with the DSP extension the intrinsics map to real SMLAD/SSAT/QSUB16 and still pass;
    the fast build, on a CPU that is not x86, falls back to the kernels (as it must on an aarch64 or
    Apple-silicon host) and passes too."""
    ARM_GCC = require_compiler("arm-linux-gnueabihf-gcc", "-static")
    (QEMU_ARM,) = require("qemu-arm")
    exe = tmp_path / f"test_kernels_arm_{variant}"
    cmd = [
        ARM_GCC,
        "-std=c99",
        "-O2",
        "-fwrapv",
        "-Wall",
        "-mcpu=cortex-a7",
        "-mthumb",
        "-static",
        *VARIANTS[variant],
        "-I",
        str(CMSIS_DIR / "Include"),
        "-I",
        str(CSRC),
        *_sources(),
        "-o",
        str(exe),
    ]
    build = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0 and "warning" not in build.stderr, build.stderr
    asm = subprocess.run(
        [
            ARM_GCC,
            "-std=c99",
            "-O2",
            "-mcpu=cortex-a7",
            "-mthumb",
            "-DARM_MATH_DSP",
            "-I",
            str(CMSIS_DIR / "Include"),
            "-S",
            "-o",
            "-",
            str(CMSIS_DIR / "Source" / "arm_convolve_HWC_q15_fast_nonsquare.c"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert re.search(r"\bsmlad\b", asm) and re.search(r"\bssat\b", asm), "ACLE intrinsics not used"
    run = subprocess.run([QEMU_ARM, str(exe), "500"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, (run.stdout + run.stderr)[-5000:]
    assert re.search(r"^test_kernels: \d+ passed, 0 failed$", run.stdout, re.M), run.stdout[-2000:]
    if variant.startswith("fast"):
        assert "qv_host_conv_q15 levels none" in run.stdout, run.stdout[-2000:]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_kernels_build_and_pass_with_clang(tmp_path, variant):
    """The C sources build warning-free with Clang as well as GCC (macOS and many CI images use it), and
    the kernels compute the same: test_kernels.c passes."""
    clang = require_compiler("clang")
    exe, build = _compile(clang, variant, tmp_path, flags=["-O2", "-fwrapv"])
    assert build.returncode == 0, f"compilation failed:\n{build.stderr}"
    assert "warning" not in build.stderr, build.stderr
    run = subprocess.run([str(exe), "500"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, (run.stdout + run.stderr)[-5000:]
    assert re.search(r"^test_kernels: \d+ passed, 0 failed$", run.stdout, re.M), run.stdout[-2000:]
