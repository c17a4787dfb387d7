"""The native kernels built with AddressSanitizer and UndefinedBehaviorSanitizer (`compare --sanitize`).

The same sources as the native engine (bundled kernels or a CMSIS tree, the runner, the plan's
network.c) are linked into a host program (csrc/qv_host_main.c) with -fsanitize=address,undefined
and run in a child process: a sanitized shared library cannot be loaded into a Python that was not
started with the sanitizer runtime, and a report must not take the session down with it. Every op
gets heap buffers of exactly the size it needs, so ASan sees a kernel read or write one element
past its input, output or scratch; the guard words inside the scratch stay on as well. A report
fails the op it names (KernelFault, a failed check), with the sanitizer's own first line.

Builds are cached under qverify's cache directory, keyed by the compiler, the flags and the content
of every file that goes in. Needs GCC or Clang with their sanitizer runtimes (Linux, macOS).
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path

import numpy as np

from qverify import build, native_lib
from qverify.engines.base import Engine, OpResult, RunResult
from qverify.errors import KernelFault, NativeBuildError
from qverify.export import weights_header
from qverify.plan import QuantPlan

SANITIZE_FLAGS = (
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=undefined",
    "-fno-omit-frame-pointer",
    "-g",
    "-O1",
    "-fwrapv",
    "-std=c99",
)
HOST_MAIN = build.CSRC / "qv_host_main.c"
FOLDER = "@build@"  # the build folder in the compiler arguments (the cache key must not depend on where)
_REPORT = re.compile(r"^(==\d+==ERROR: \w+Sanitizer: .*|.*runtime error: .*)$", re.MULTILINE)


class SanitizedEngine(Engine):
    """The native kernels under ASan + UBSan, in a child process.

    Args:
        plan: the plan.
        kernels: 'dsp' or 'plain' (the paths firmware compiles).
        rounding: the firmware build, default the plan's.
        cmsis_root: build the arm_* kernels from this CMSIS tree.
    """

    name = "native"

    def __init__(
        self, plan: QuantPlan, kernels: str = "dsp", rounding: str | None = None, cmsis_root: str | None = None
    ):
        super().__init__(plan)
        if kernels not in ("dsp", "plain"):
            raise NativeBuildError(
                f"--sanitize runs the kernels firmware compiles: --kernels dsp or plain, not {kernels}"
            )
        self.kernels, self.rounding, self.cmsis_root = kernels, rounding or plan.rounding, cmsis_root
        self.kernels_used = [op.function for op in plan.ops]  # what the program's network.c calls
        self.exe = self._build()

    def describe(self) -> str:
        return (
            f"native under ASan+UBSan (kernels={self.cmsis_root or 'bundled'}; path={self.kernels}; "
            f"rounding={self.rounding})"
        )

    # ---- build --------------------------------------------------------------
    def _sources(self) -> tuple[list[str], dict]:
        """(compiler arguments with FOLDER standing for the build folder, {file name: text} written there)."""
        from qverify.mcu.codegen import network_c

        spec = build.build_spec(self.kernels, self.rounding, self.cmsis_root)
        texts = {"weights.h": weights_header(self.plan), "network.c": network_c(self.plan), **spec["staged"]}
        args = [f"-I{FOLDER}", *(f"-I{d}" for d in spec["include_dirs"])]  # the folder first: staged shims win
        args += [f"-D{k}" if v is None else f"-D{k}={v}" for k, v in spec["macros"]]
        if self.rounding != self.plan.rounding:  # a deliberate cross-check: weights.h would refuse the build
            args.append("-DQVERIFY_NO_ROUNDING_CHECK")
        args += [str(p) for p in spec["sources"]] + [str(HOST_MAIN), f"{FOLDER}/network.c"]
        return args, texts

    def _build(self) -> Path:
        cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
        args, texts = self._sources()
        ours = [Path(a).read_text() for a in args if a.endswith(".c") and not a.startswith(FOLDER)]
        key = hashlib.sha256(
            "\n".join(
                [
                    native_lib.compiler_identity(),
                    *SANITIZE_FLAGS,
                    *args,
                    *ours,
                    *(f"{n}\0{t}" for n, t in sorted(texts.items())),
                ]
            ).encode()
        ).hexdigest()[:16]
        folder = native_lib.cache_dir().parent / "sanitized" / key
        exe = folder / "qv_host_main"
        if exe.exists():
            return exe
        folder.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=folder))
        try:
            for name, text in texts.items():
                (tmp / name).write_text(text)
            r = subprocess.run(
                [
                    *shlex.split(cc),
                    *SANITIZE_FLAGS,
                    *(a.replace(FOLDER, str(tmp)) for a in args),
                    "-o",
                    str(tmp / exe.name),
                ],
                capture_output=True,
                text=True,
            )
            if r.returncode != 0:
                raise NativeBuildError(
                    f"building the sanitized kernels failed: {native_lib.first_error_line(r.stdout + r.stderr)}"
                )
            os.replace(tmp / exe.name, exe)  # only a complete program is ever cached
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return exe

    # ---- run ----------------------------------------------------------------
    def _run(self, first: int, last: int, x: np.ndarray) -> list[np.ndarray]:
        with tempfile.TemporaryDirectory(prefix="qverify-asan-") as tmp:
            src, dst = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
            src.write_bytes(np.int32(len(x)).tobytes() + np.ascontiguousarray(x, np.int16).tobytes())
            env = {
                **os.environ,
                "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0",
                "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
            }
            r = subprocess.run(
                [str(self.exe), str(first), str(last), str(src), str(dst)], capture_output=True, text=True, env=env
            )
            if r.returncode != 0 or "qverify-done" not in r.stderr:
                self._fail(r.stderr)
            flat = np.fromfile(dst, np.int16)
        outs, at = [], 0
        for op in self.plan.ops[first : last + 1]:
            size = len(x) * int(np.prod(op.out_shape))
            outs.append(flat[at : at + size].reshape(len(x), *op.out_shape))
            at += size
        return outs

    def _fail(self, stderr: str) -> None:
        ran = re.findall(r"^qverify-op (\d+)$", stderr, re.MULTILINE)
        op = self.plan.ops[int(ran[-1])] if ran else None
        report = _REPORT.search(stderr)
        status = re.search(r"^qverify-status (-?\d+)", stderr, re.MULTILINE)
        if report:
            what = re.sub(r"^==\d+==ERROR: ", "", report.group(1)).strip()
        elif status:
            what = f"returned status {status.group(1)}"
        else:
            what = "the sanitized program failed: " + (stderr.strip().splitlines() or ["no output"])[-1]
        where = f"{op.name}: {op.function}" if op else "the sanitized run"
        raise KernelFault(f"{where}: {what} (ASan+UBSan build)", op.name if op else "")

    def run_op(self, index: int, x: np.ndarray) -> OpResult:
        op = self.plan.ops[index]
        return OpResult(self._run(index, index, self.check_input(x, op.in_shape, f"input of {op.name}"))[0])

    def run(self, x: np.ndarray) -> RunResult:
        outs = self._run(0, len(self.plan.ops) - 1, self.check_input(x))
        result = RunResult(self.name)
        for op, out in zip(self.plan.ops, outs, strict=True):
            result.add(op.name, OpResult(out))
        return result
