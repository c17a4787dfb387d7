"""Running a target image under qemu-system-arm and turning what it wrote into results.

QEMU runs the image on the core's MPS2 board with semihosting (files in a
fresh working folder) and ``-icount shift=ICOUNT_SHIFT``: virtual time
advances 2^shift ns per instruction, so the board's timer measures
instructions (an emulator figure, not silicon cycles).  A run that does not
end within its timeout is killed; a run that ends without its DONE record
is reported with the op that was running, from the firmware's progress
records.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qverify import kernels
from qverify.mcu import protocol as P
from qverify.mcu.errors import TargetRunError
from qverify.mcu.image import Image
from qverify.mcu.toolchain import Toolchain

ICOUNT_SHIFT = 6


@dataclass
class RunOutput:
    """What one emulator run produced."""

    outputs: dict[int, list[np.ndarray]]  # op index -> per-sample flat int16 outputs, in order
    ticks: dict[int, list[int]]  # op index -> timer ticks per sample
    instructions: dict[int, list[float]]  # op index -> instructions per sample (calibrated)
    kernels: list[str]
    scratch_words: int  # qv_scratch_words() of the whole plan, on the target
    info: str
    calibration: tuple[int, int, int]  # (ticks, instructions, overhead ticks)
    wall_seconds: float
    command: list[str] = field(default_factory=list)
    selftest: P.SelfTest | None = None  # network.c's qv_selftest() at boot (images with a sample header)


def qemu_command(toolchain: Toolchain, image: Image) -> list[str]:
    return [
        toolchain.require_qemu(),
        "-machine",
        image.cpu.machine,
        "-cpu",
        image.cpu.name,
        "-nodefaults",
        "-nic",
        "none",
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        "none",
        "-semihosting-config",
        "enable=on,target=native",
        "-icount",
        f"shift={ICOUNT_SHIFT},align=off,sleep=off",
        "-kernel",
        str(image.elf),
    ]


def _kill(proc: subprocess.Popen) -> None:
    """End the QEMU we started (its own process group) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def run(
    toolchain: Toolchain,
    image: Image,
    op_names: list[str],
    first: int,
    last: int,
    mode: int,
    blocks: list[np.ndarray],
    n_samples: int,
    timeout: float,
    addr2line: bool = True,
) -> RunOutput:
    """Run ops first..last of the image on the input blocks (see protocol.input_bytes).

    Raises TargetRunError naming the op that was running when the firmware hung (timeout),
    faulted, or reported an error.
    """
    cmd = qemu_command(toolchain, image)
    work = Path(tempfile.mkdtemp(prefix="qverify-target-"))
    try:
        (work / P.INPUT_FILE).write_bytes(P.input_bytes(first, last, mode, blocks, n_samples))
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            cwd=work,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        timed_out = False
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill(proc)
            out, err = proc.communicate()
        wall = time.perf_counter() - t0
        data = (work / P.OUTPUT_FILE).read_bytes() if (work / P.OUTPUT_FILE).exists() else b""
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stream = P.parse(data)
    ctx = _Context(toolchain, image, op_names, first, last, n_samples, timeout, cmd, addr2line)
    if timed_out:
        raise ctx.hang(stream)
    qemu_msg = (err or b"").decode(errors="replace").strip()
    fault = stream.first(P.REC_FAULT)
    if fault is not None:
        raise ctx.fault(stream, fault)
    error = stream.first(P.REC_ERROR)
    if error is not None:
        raise ctx.error(error)
    if stream.first(P.REC_DONE) is None or proc.returncode != 0:
        raise ctx.exit(stream, proc.returncode, qemu_msg)
    return ctx.collect(stream, wall)


class _Context:
    def __init__(self, toolchain, image, op_names, first, last, n_samples, timeout, cmd, addr2line):
        self.toolchain, self.image, self.op_names = toolchain, image, op_names
        self.first, self.last, self.n_samples, self.timeout, self.cmd = first, last, n_samples, timeout, cmd
        self.use_addr2line = addr2line

    def name(self, index: int | None) -> str:
        if index is None or not 0 <= index < len(self.op_names):
            return "?"
        return self.op_names[index]

    def _where(self, op: int, sample: int) -> str:
        on = f" on sample {sample} of the batch" if sample is not None and sample >= 0 else ""
        return f"op '{self.name(op)}' (index {op}){on}"

    def _error(self, message: str, kind: str, op: int | None, sample: int | None) -> TargetRunError:
        valid = op is not None and 0 <= op < len(self.op_names)
        return TargetRunError(message, kind, self.name(op) if valid else None, op if valid else None, sample)

    def hang(self, stream: P.Stream) -> TargetRunError:
        running = stream.running
        base = (
            f"the target firmware ({self.image.cpu.name} on QEMU {self.image.cpu.machine}) "
            f"did not finish within {self.timeout:g} s"
        )
        if running is not None:
            op, sample = running
            return self._error(
                f"{base}: {self._where(op, sample)} was running (hang or crash into lockup); QEMU was killed",
                "timeout",
                op,
                sample,
            )
        if not stream.records:
            return self._error(
                f"{base} and wrote nothing: the image did not start (vector table, startup) "
                "or semihosting is unavailable; QEMU was killed",
                "timeout",
                None,
                None,
            )
        return self._error(
            f"{base}; no op was running (it stopped between ops, last finished: {self._last(stream)}); QEMU was killed",
            "timeout",
            None,
            None,
        )

    def _last(self, stream: P.Stream) -> str:
        done = stream.last_done
        return "none" if done is None else self._where(*done)

    def _symbol(self, pc: int) -> str:
        if not self.use_addr2line or self.toolchain.addr2line is None or pc in (0xFFFFFFFF,):
            return ""
        try:
            r = subprocess.run(
                [self.toolchain.addr2line, "-f", "-s", "-e", str(self.image.elf), hex(pc)],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        lines = r.stdout.split()
        if len(lines) >= 2 and lines[0] != "??":
            return f" in {lines[0]} ({lines[1]})"
        return ""

    def fault(self, stream: P.Stream, rec: P.Record) -> TargetRunError:
        import struct

        words = dict(zip(P.FAULT_WORDS, struct.unpack(f"<{len(rec.payload) // 4}I", rec.payload), strict=False))
        exc = P.EXCEPTIONS.get(rec.a, f"exception {rec.a}")
        pc = rec.b
        detail = [f"CFSR=0x{words.get('CFSR', 0):08x}", f"HFSR=0x{words.get('HFSR', 0):08x}"]
        cfsr = words.get("CFSR", 0)
        if cfsr & 0x8000:
            detail.append(f"BFAR=0x{words.get('BFAR', 0):08x}")
        if cfsr & 0x80:
            detail.append(f"MMFAR=0x{words.get('MMFAR', 0):08x}")
        flags = words.get("flags", 0)
        overflow = bool(flags & 2) or bool(cfsr & 0x1010)  # PSP below the stack, or stacking error
        where = (
            self._where(rec.op, rec.sample)
            if rec.op >= 0
            else f"before the first op (last finished: {self._last(stream)})"
        )
        at = f" at pc 0x{pc:08x}{self._symbol(pc)}" if pc != 0xFFFFFFFF else " (no readable exception frame)"
        what = "a stack overflow" if overflow else exc
        return self._error(
            f"the target firmware crashed with {what}{' (' + exc + ')' if overflow else ''} in {where}"
            f"{at}; {', '.join(detail)}",
            "fault",
            rec.op if rec.op >= 0 else None,
            rec.sample if rec.sample >= 0 else None,
        )

    def error(self, rec: P.Record) -> TargetRunError:
        text = P.ERROR_TEXT.get(rec.a, f"error {rec.a}")
        if rec.a in (P.ERR_VALIDATE, P.ERR_KERNEL):
            status = P.signed32(rec.b)
            text += f": arm_status {status} ({kernels.STATUS_NAMES.get(status, 'unknown')})"
        elif rec.a == P.ERR_SCRATCH:
            text += f" ({rec.b} words)"
        elif rec.a == P.ERR_OVERRUN:
            text += f": at least {rec.b & 0xFFFFFF} bytes past {P.BUFFERS.get(rec.b >> 24, 'a buffer')}"
        where = f" for {self._where(rec.op, rec.sample)}" if rec.op >= 0 else ""
        return self._error(
            f"the target firmware stopped{where}: {text}",
            "error",
            rec.op if rec.op >= 0 else None,
            rec.sample if rec.sample >= 0 else None,
        )

    def exit(self, stream: P.Stream, code: int, qemu_msg: str) -> TargetRunError:
        running = stream.running
        where = f" while {self._where(*running)} was running" if running else f" (last finished: {self._last(stream)})"
        msg = f"; QEMU said: {qemu_msg}" if qemu_msg else ""
        op, sample = running if running else (None, None)
        return self._error(
            f"the target firmware ended without finishing (QEMU exit status {code}){where}{msg}; "
            f"command: {' '.join(self.cmd)}",
            "exit",
            op,
            sample,
        )

    def collect(self, stream: P.Stream, wall: float) -> RunOutput:
        hello = stream.first(P.REC_HELLO)
        kernels_rec = stream.first(P.REC_KERNELS)
        calib = stream.first(P.REC_CALIB)
        selftest = stream.first(P.REC_SELFTEST)
        kernels = kernels_rec.payload.decode(errors="replace").split("\0")[:-1] if kernels_rec else []
        cal_ticks, cal_insns = (calib.a, calib.b) if calib else (0, 0)
        overhead = int.from_bytes(calib.payload[:4], "little") if calib and len(calib.payload) >= 4 else 0
        per_tick = cal_insns / cal_ticks if cal_ticks else 0.0
        outputs: dict[int, list[np.ndarray]] = {}
        ticks: dict[int, list[int]] = {}
        insns: dict[int, list[float]] = {}
        for r in stream.of(P.REC_OUTPUT):
            outputs.setdefault(r.op, []).append(np.frombuffer(r.payload, dtype="<i2").astype(np.int16))
            ticks.setdefault(r.op, []).append(r.b)
            insns.setdefault(r.op, []).append(float(max(0, round((r.b - overhead) * per_tick))))
        for i in range(self.first, self.last + 1):
            if len(outputs.get(i, [])) != self.n_samples:
                raise self._error(
                    f"the target firmware wrote {len(outputs.get(i, []))} outputs for op "
                    f"'{self.name(i)}', expected {self.n_samples}",
                    "exit",
                    i,
                    None,
                )
        return RunOutput(
            outputs,
            ticks,
            insns,
            kernels,
            kernels_rec.a if kernels_rec else 0,
            hello.payload.decode(errors="replace") if hello else "",
            (cal_ticks, cal_insns, overhead),
            wall,
            self.cmd,
            P.SelfTest.from_record(selftest) if selftest is not None else None,
        )
