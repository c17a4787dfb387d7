"""The native engine: the q15 C kernels (cmsis/) and the network runner (csrc/), called through cffi.

Shapes and dtypes are checked here, in Python, before any pointer crosses
into C. cffi releases the GIL during each call, so sub-batches run on
several threads at once, each with its own scratch memory.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from qverify import kernels, native_lib, plancheck
from qverify.engines.base import Engine, OpResult, RunResult
from qverify.errors import KernelFault, QVerifyError
from qverify.opkinds import KINDS
from qverify.plan import QuantPlan


class NativeEngine(Engine):
    """Runs a plan with the C kernels.

    Args:
        plan: the plan.
        kernels: 'dsp' (the ARM_MATH_DSP SIMD path, portable intrinsics on the host), 'plain', or
            'fast' (plain, with conv ops on the host's SIMD units: the fast path for data sets).
        rounding: the firmware build to emulate, 'truncate' or 'round'; default the plan's.
        cmsis_root: build the arm_* kernels from this CMSIS tree instead of the bundled ones.
        threads: worker threads (default: one per core).
    """

    name = "native"

    def __init__(
        self,
        plan: QuantPlan,
        kernels: str = "dsp",
        rounding: str | None = None,
        cmsis_root: str | None = None,
        threads: int | None = None,
    ):
        super().__init__(plan)
        self.rounding = rounding or plan.rounding
        self.kernels = kernels
        self.native = native_lib.load(kernels, self.rounding, cmsis_root)
        self.threads = threads or os.cpu_count() or 1
        plancheck.validate(plan)  # again: the C side trusts every count, and a plan's ops can be edited
        ffi = self.native.ffi
        self._keep: list[np.ndarray] = []  # numpy arrays the C structs point into
        self._ops = ffi.new("qv_op_t[]", len(plan.ops))
        for i, op in enumerate(plan.ops):
            self._fill(self._ops[i], op)
        self.scratch_words = int(self.native.lib.qv_scratch_words(self._ops, len(plan.ops)))
        self.kernels_used: list[str] = []

    def describe(self) -> str:
        if self.kernels == "fast":
            return f"native ({self.native.info}; conv: host SIMD {self.native.simd})"
        return f"native ({self.native.info})"

    def _fill(self, c, op) -> None:
        call = kernels.call(op)  # checks the uint16_t range of every dimension
        c.kind = getattr(self.native.lib, KINDS[op.kind].c_op)
        c.kernel = getattr(self.native.lib, call.function.enum)
        c.flags = call.flags
        c.in_h, c.in_w, c.in_c = op.in_shape
        c.out_h, c.out_w, c.out_c = op.out_shape
        c.k_h, c.k_w = op.kernel
        c.stride_h, c.stride_w = op.stride
        c.pad_h, c.pad_w = op.pad
        c.clamp_max = KINDS[op.kind].clamp_max(op)
        if op.weighted:
            weights, bias = kernels.stored(op)  # the function's order and width, as weights.h holds them
            c.bias_lshift, c.out_rshift = op.bias_lshift, op.out_rshift
            self._keep += [weights, bias]
            ctype = "const int8_t *" if weights.dtype == np.int8 else "const int16_t *"
            w_ptr = self.native.ffi.cast(ctype, weights.ctypes.data)
            b_ptr = self.native.ffi.cast(ctype, bias.ctypes.data)
            if weights.dtype == np.int8:
                c.weights_q7, c.bias_q7 = w_ptr, b_ptr
            else:
                c.weights, c.bias = w_ptr, b_ptr

    def _call(self, first: int, count: int, x: np.ndarray, outputs: list[np.ndarray | None]) -> None:
        """Run ops[first:first+count] over x, splitting the batch across threads."""
        ffi, lib = self.native.ffi, self.native.lib
        ops = self._ops + first
        n = len(x)
        chunks = [(s, min(s + max(1, -(-n // self.threads)), n)) for s in range(0, n, max(1, -(-n // self.threads)))]
        kernel_used = ffi.new("int32_t[]", count)

        def work(bounds):
            lo, hi = bounds
            scratch = np.empty(self.scratch_words, np.int16)
            ptrs = ffi.new("int16_t *[]", count)
            for j, out in enumerate(outputs):
                if out is not None:
                    ptrs[j] = ffi.cast("int16_t *", out[lo:hi].ctypes.data)
            info = ffi.new("qv_run_info_t *")
            # the guard words after the outputs belong to the call that writes the last samples
            status = lib.qv_run(
                ops,
                count,
                ffi.cast("const int16_t *", x[lo:hi].ctypes.data),
                hi - lo,
                ptrs,
                int(hi == n),
                ffi.cast("int16_t *", scratch.ctypes.data),
                kernel_used,
                info,
            )
            if status != 0:
                self._fault(status, info, first)

        if len(chunks) == 1:
            work(chunks[0])
        else:
            with ThreadPoolExecutor(len(chunks)) as pool:
                list(pool.map(work, chunks))
        self.kernels_used[first : first + count] = [
            ffi.string(lib.qv_kernel_name(kernel_used[j])).decode() for j in range(count)
        ]

    def _fault(self, status: int, info, first: int) -> None:
        ffi, lib = self.native.ffi, self.native.lib
        if info.failed_op < 0:
            raise QVerifyError(f"the native runner refused the plan (status {status})")
        op = self.plan.ops[first + info.failed_op]
        if status == lib.QV_STATUS_OVERRUN:
            buffer = ffi.string(lib.qv_buffer_name(info.buffer)).decode()
            raise KernelFault(
                f"{op.name}: {op.function} wrote at least {info.bytes} bytes past {buffer} "
                f"(guard words after it changed; {self.native.info})",
                op.name,
            )
        if status == lib.QV_STATUS_NO_FUNCTION:
            raise KernelFault(
                f"{op.name}: {op.function} is not in this build (the CMSIS tree lacks its source)", op.name
            )
        name = kernels.STATUS_NAMES.get(status, status)
        raise KernelFault(f"{op.name}: {op.function} returned {name} (refused the call; {self.native.info})", op.name)

    def _outputs(self, n: int, shape) -> np.ndarray:
        """An output array with the runner's guard words after it (a view of the first n samples)."""
        size = int(np.prod(shape))
        flat = np.empty(n * size + self.native.lib.QV_GUARD_WORDS, np.int16)
        return flat[: n * size].reshape(n, *shape)

    def run(self, x: np.ndarray, keep: bool = True) -> RunResult:
        """Whole network in one C call per thread; keep=False returns only the last op's output."""
        x = self.check_input(x)
        self.kernels_used = [""] * len(self.plan.ops)
        last = len(self.plan.ops) - 1
        outputs = [
            self._outputs(len(x), op.out_shape) if keep or i == last else None for i, op in enumerate(self.plan.ops)
        ]
        self._call(0, len(self.plan.ops), x, outputs)
        result = RunResult(self.name)
        for op, out in zip(self.plan.ops, outputs, strict=True):
            if out is not None:
                result.add(op.name, OpResult(out))
        return result

    def run_op(self, index: int, x: np.ndarray) -> OpResult:
        op = self.plan.ops[index]
        x = self.check_input(x, op.in_shape, f"input of {op.name}")
        if len(self.kernels_used) != len(self.plan.ops):
            self.kernels_used = [""] * len(self.plan.ops)
        out = self._outputs(len(x), op.out_shape)
        self._call(index, 1, x, [out])
        return OpResult(out)
