"""The target engine: the same C kernels and runner, cross-compiled for a Cortex-M and run under QEMU.

    engine = TargetEngine(plan, cpu="cortex-m4")     # builds (or reuses) the image
    result = engine.run(x_int)                      # every op's output, computed by the emulated core
    engine.instructions                             # op name -> emulator instructions per sample

The image is built by qverify.mcu.image (cached by content), run by
qverify.mcu.qemu; a hang, a fault or an error status in the firmware
raises TargetRunError naming the op that was running.  Isolated mode runs
in one emulator launch too: every op is fed the reference's input for it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from qverify.choices import Rounding, values
from qverify.engines.base import Engine, OpResult, RunResult
from qverify.errors import QVerifyError
from qverify.mcu import protocol as P
from qverify.mcu import qemu
from qverify.mcu.image import Footprint, ImageBuilder, disassemble, measure
from qverify.mcu.toolchain import cpu as lookup_cpu
from qverify.mcu.toolchain import find_toolchain
from qverify.plan import QuantPlan

# QEMU ran the demo at 200-500 million guest instructions per second on a
# shared 2-core machine; the default timeout assumes 25 million (a wide
# margin on a slow CI host) on top of a fixed start-up allowance.
TIMEOUT_BASE_S = 20.0
TIMEOUT_INSNS_PER_S = 25e6


def estimate_instructions(plan: QuantPlan, first: int = 0, last: int | None = None) -> float:
    """A generous upper estimate of the instructions one sample needs on the core (for the timeout)."""
    last = len(plan.ops) - 1 if last is None else last
    total = 0.0
    for op in plan.ops[first : last + 1]:
        h, w, c = op.in_shape
        total += 12.0 * op.macs + 20.0 * (h * w * c + op.size) + 10.0 * op.size * op.kernel[0] * op.kernel[1]
    return total


class TargetEngine(Engine):
    """Runs a plan on an emulated Cortex-M.

    Args:
        plan: the plan.
        cpu: 'cortex-m4' (default; DSP path), 'cortex-m7' (DSP path) or 'cortex-m3' (plain path).
        rounding: the firmware build, 'truncate' or 'round'; default the plan's.
        cmsis_root: compile the arm_* kernels from this CMSIS tree (its DSP paths on M4/M7).
        timeout: seconds one emulator run may take (default: from the plan's size and the sample count).
        cflags: compiler optimisation flags (default -O2 -fwrapv).
        patch: test hook, called with the folder of the generated weights.h / network.c before they
            are compiled (e.g. to alter one weight in the target build only).
        inject: test hooks {'hang'|'crash'|'stack': op name} compiled into the harness.
        selftest: text of a sample_input_output.h: the image runs network.c's qv_selftest() on it at boot
            and every run's result carries it (last_run.selftest).
    """

    name = "target"

    def __init__(
        self,
        plan: QuantPlan,
        cpu: str = "cortex-m4",
        rounding: str | None = None,
        cmsis_root: str | None = None,
        timeout: float | None = None,
        cflags: tuple[str, ...] | list[str] | None = None,
        patch: Callable[[Path], None] | None = None,
        inject: dict | None = None,
        selftest: str | None = None,
    ):
        super().__init__(plan)
        self.rounding = rounding or plan.rounding
        if self.rounding not in values(Rounding):
            raise QVerifyError(f"rounding '{self.rounding}' is not one of {', '.join(values(Rounding))}")
        self.cpu = lookup_cpu(cpu)
        self.toolchain = find_toolchain()
        self.timeout = timeout
        self.builder = ImageBuilder(
            self.toolchain, self.cpu, self.rounding, cmsis_root, tuple(cflags) if cflags is not None else None
        )
        hooks = {k: plan.index(v) if isinstance(v, str) else int(v) for k, v in (inject or {}).items()}
        self.image = self.builder.image(plan, patch, hooks, selftest)
        self.kernels_used: list[str] = []
        self.instructions: dict[str, float] = {}
        self.last_run: qemu.RunOutput | None = None

    def describe(self) -> str:
        return f"target ({self.image.describe()})"

    def footprint(self) -> Footprint:
        """Section sizes of the image (arm-none-eabi-size) and its code by origin."""
        return measure(self.toolchain, self.image)

    def disassembly(self, source_stem: str) -> str:
        """objdump -d of one object of the kernel library, e.g. 'arm_convolve_HWC_q15_fast_nonsquare'."""
        obj = self.image.lib_dir / f"{source_stem}.o"
        if not obj.exists():
            raise QVerifyError(f"no object {obj.name} in {self.image.lib_dir}")
        return disassemble(self.toolchain, obj)

    def _timeout(self, first: int, last: int, n_samples: int) -> float:
        if self.timeout is not None:
            return float(self.timeout)
        insns = n_samples * estimate_instructions(self.plan, first, last)
        return TIMEOUT_BASE_S + math.ceil(insns / TIMEOUT_INSNS_PER_S)

    def _launch(self, first: int, last: int, mode: int, blocks: list[np.ndarray], n_samples: int) -> qemu.RunOutput:
        out = qemu.run(
            self.toolchain,
            self.image,
            [o.name for o in self.plan.ops],
            first,
            last,
            mode,
            blocks,
            n_samples,
            self._timeout(first, last, n_samples),
        )
        self.last_run = out
        if len(out.kernels) == len(self.plan.ops):
            self.kernels_used = list(out.kernels)
        for i, counts in out.instructions.items():
            self.instructions[self.plan.ops[i].name] = float(np.mean(counts))
        return out

    def _shape(self, index: int, flat: list[np.ndarray]) -> np.ndarray:
        op = self.plan.ops[index]
        return np.stack(flat).reshape(len(flat), *op.out_shape)

    def run(self, x: np.ndarray) -> RunResult:
        """Propagated mode: the whole network per sample, in one emulator run."""
        x = self.check_input(x)
        self.instructions = {}
        last = len(self.plan.ops) - 1
        out = self._launch(0, last, P.MODE_PROPAGATED, [x], len(x))
        result = RunResult(self.name)
        for i, op in enumerate(self.plan.ops):
            result.add(op.name, OpResult(self._shape(i, out.outputs[i])))
        return result

    def run_isolated(self, x: np.ndarray, reference: RunResult) -> RunResult:
        """Isolated mode in one emulator run: op i is fed the reference's output of op i-1."""
        x = self.check_input(x)
        self.instructions = {}
        blocks = []
        for i, op in enumerate(self.plan.ops):
            if i == 0:
                blocks.append(x)
            else:
                prev = self.plan.ops[i - 1]
                blocks.append(self.check_input(reference.outputs[prev.name], op.in_shape, f"input of {op.name}"))
        out = self._launch(0, len(self.plan.ops) - 1, P.MODE_ISOLATED, blocks, len(x))
        result = RunResult(self.name)
        for i, op in enumerate(self.plan.ops):
            result.add(op.name, OpResult(self._shape(i, out.outputs[i])))
        return result

    def run_op(self, index: int, x: np.ndarray) -> OpResult:
        """One op on its input batch (one emulator run)."""
        op = self.plan.ops[index]
        x = self.check_input(x, op.in_shape, f"input of {op.name}")
        out = self._launch(index, index, P.MODE_ISOLATED, [x], len(x))
        return OpResult(self._shape(index, out.outputs[index]))
