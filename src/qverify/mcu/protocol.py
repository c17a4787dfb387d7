"""The file protocol between the host and the target image (mirrors firmware/qv_target.h)."""

from __future__ import annotations

import struct
from dataclasses import asdict, dataclass, field

import numpy as np

INPUT_FILE = "qv_in.bin"
OUTPUT_FILE = "qv_out.bin"
IN_MAGIC = 0x4E495651
PROTOCOL_VERSION = 1
MODE_PROPAGATED, MODE_ISOLATED = 0, 1

REC_HELLO = 0x4F4C4548
REC_KERNELS = 0x4E52454B
REC_CALIB = 0x494C4143
REC_BEGIN = 0x4E474542
REC_OUTPUT = 0x5054554F
REC_ERROR = 0x52525245
REC_FAULT = 0x544C4146
REC_DONE = 0x454E4F44
REC_SELFTEST = 0x464C4553

ERR_INPUT_OPEN, ERR_INPUT_HEADER, ERR_INPUT_SHORT, ERR_VALIDATE, ERR_KERNEL, ERR_SCRATCH, ERR_OVERRUN = range(1, 8)
ERROR_TEXT = {
    ERR_INPUT_OPEN: "the firmware cannot open its input file through semihosting",
    ERR_INPUT_HEADER: "the firmware refused the input file header",
    ERR_INPUT_SHORT: "the input file ended before the firmware had read all inputs",
    ERR_VALIDATE: "qv_run refused the ops table",
    ERR_KERNEL: "a kernel returned an error status",
    ERR_SCRATCH: "the generated scratch is smaller than qv_scratch_words() asks for",
    ERR_OVERRUN: "a kernel wrote past a buffer",
}
# QV_BUF_* of csrc/qv_runner.h
BUFFERS = {
    0: "activation buffer 0",
    1: "activation buffer 1",
    2: "the kernel buffer (bufferA / vec_buffer)",
    3: "the op's output",
}

EXIT_OK, EXIT_ERROR, EXIT_FAULT, EXIT_NO_OUTPUT = 0, 2, 3, 4
FAULT_WORDS = ("CFSR", "HFSR", "MMFAR", "BFAR", "lr", "psp", "msp", "flags")
EXCEPTIONS = {
    2: "NMI",
    3: "HardFault",
    4: "MemManage fault",
    5: "BusFault",
    6: "UsageFault",
    11: "SVCall",
    12: "DebugMonitor",
    14: "PendSV",
    15: "SysTick",
}

_HEAD = struct.Struct("<6I")

# QV_SELFTEST_* of firmware/qv_network.h
SELFTEST_PASS, SELFTEST_MISMATCH, SELFTEST_OTHER_PLAN, SELFTEST_INVALID, SELFTEST_KERNEL, SELFTEST_BUFFERS = range(6)
SELFTEST_TEXT = {
    SELFTEST_OTHER_PLAN: "weights.h and sample_input_output.h come from different plans",
    SELFTEST_INVALID: "qv_run refused the op table",
    SELFTEST_KERNEL: "a kernel returned an error",
    SELFTEST_BUFFERS: "network.c's buffers are too small for an op",
}


@dataclass
class SelfTest:
    """network.c's qv_selftest() as the firmware ran it (QV_REC_SELFTEST)."""

    status: int
    op: int  # index of the divergent or failing op, -1 if none
    element: int  # first differing element (flat HWC) of that op's output
    expected: int
    got: int
    n_differ: int
    n_elements: int
    arm_status: int
    n_checked: int  # ops compared with sample_input_output.h
    n_expected: int  # ops with an expected output in the build

    @property
    def ok(self) -> bool:
        return self.status == SELFTEST_PASS

    @classmethod
    def from_record(cls, rec: Record) -> SelfTest:
        words = struct.unpack_from("<7i", rec.payload.ljust(28, b"\0"))
        return cls(rec.a, rec.op, rec.b, *words)

    def describe(self, op_names: list[str]) -> str:
        """One line: the verdict, and where it failed by op name, index and element."""
        name = op_names[self.op] if 0 <= self.op < len(op_names) else "?"
        if self.ok:
            return f"PASS: {self.n_checked} op(s) bit-exact with sample_input_output.h ({len(op_names)} ops ran)"
        if self.status == SELFTEST_MISMATCH:
            return (
                f"FAIL: op '{name}' (index {self.op}): {self.n_differ} of {self.n_elements} values differ from "
                f"sample_input_output.h; first at element {self.element}: expected {self.expected}, "
                f"got {self.got}"
            )
        where = f" at op '{name}' (index {self.op})" if self.op >= 0 else ""
        status = f", arm_status {self.arm_status}" if self.arm_status else ""
        return f"FAIL: {SELFTEST_TEXT.get(self.status, f'status {self.status}')}{where}{status}"

    def to_dict(self, op_names: list[str]) -> dict:
        d = asdict(self)
        d.update(
            ok=self.ok,
            op_name=op_names[self.op] if 0 <= self.op < len(op_names) else None,
            message=self.describe(op_names),
        )
        return d


def input_bytes(first: int, last: int, mode: int, blocks: list[np.ndarray], n_samples: int) -> bytes:
    """The input file: header, then the int16 blocks in the order the mode reads them."""
    head = struct.pack("<6I", IN_MAGIC, PROTOCOL_VERSION, n_samples, first, last, mode)
    return head + b"".join(np.ascontiguousarray(b, dtype="<i2").tobytes() for b in blocks)


@dataclass
class Record:
    tag: int
    op: int
    sample: int
    a: int
    b: int
    payload: bytes


@dataclass
class Stream:
    """Everything the firmware wrote, decoded."""

    records: list[Record] = field(default_factory=list)
    truncated: bool = False  # the file ends inside a record (killed while writing)

    def of(self, tag: int) -> list[Record]:
        return [r for r in self.records if r.tag == tag]

    def first(self, tag: int) -> Record | None:
        return next((r for r in self.records if r.tag == tag), None)

    @property
    def running(self) -> tuple[int, int] | None:
        """(op, sample) of the last op that began and did not write its output."""
        last_begin = None
        for r in self.records:
            if r.tag == REC_BEGIN:
                last_begin = (r.op, r.sample)
            elif r.tag == REC_OUTPUT and last_begin == (r.op, r.sample):
                last_begin = None
        return last_begin

    @property
    def last_done(self) -> tuple[int, int] | None:
        outs = self.of(REC_OUTPUT)
        return (outs[-1].op, outs[-1].sample) if outs else None


def _signed(v: int) -> int:
    return v - (1 << 32) if v >= 1 << 31 else v


def parse(data: bytes) -> Stream:
    s = Stream()
    pos = 0
    while pos + _HEAD.size <= len(data):
        tag, op, sample, a, b, n = _HEAD.unpack_from(data, pos)
        end = pos + _HEAD.size + n
        if end > len(data):
            s.truncated = True
            break
        s.records.append(Record(tag, _signed(op), _signed(sample), a, b, data[pos + _HEAD.size : end]))
        pos = end + (-n % 4)
    if pos < len(data):
        s.truncated = True
    return s


def signed32(v: int) -> int:
    return _signed(v)
