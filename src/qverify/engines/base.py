"""The one interface all engines share, and the input check every engine runs first."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from qverify.errors import DataError
from qverify.plan import QuantPlan
from qverify.qformat import quantize


@dataclass
class OpResult:
    """One op's output for a batch; counts are None where an engine cannot observe them.

    acc_peak: of a conv or dense op, the largest max(acc, -1 - acc) over its exact int32 sums acc before
    wrapping (bias, rounding and sum of products; metrics.acc_headroom_bits), where the engine sees them (shift)."""

    out: np.ndarray
    saturations: int | None = None
    overflows: int | None = None
    acc_peak: int | None = None


@dataclass
class RunResult:
    """Every op's output (N, H, W, C) int16 keyed by op name, with per-op counts."""

    engine: str
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    saturations: dict[str, int | None] = field(default_factory=dict)
    overflows: dict[str, int | None] = field(default_factory=dict)
    acc_peaks: dict[str, int | None] = field(default_factory=dict)

    def add(self, name: str, result: OpResult) -> None:
        self.outputs[name] = result.out
        self.saturations[name] = result.saturations
        self.overflows[name] = result.overflows
        self.acc_peaks[name] = result.acc_peak


def host_array(tensor) -> np.ndarray:
    """A CPU TensorFlow tensor's values as a read-only numpy array over the tensor's own buffer (kept alive by
    the array). `Tensor.numpy()` copies: for an engine that hands every op's output of a batch on, the copies
    cost as much as the network itself (measured on the demo, 256 samples: the float chain with every output
    1.33 s this way, 2.28 s with .numpy()). Falls back to the copy where TensorFlow has no such view."""
    view = getattr(tensor, "_numpy", None)
    array = view() if view is not None else tensor.numpy()
    if isinstance(array, np.ndarray):
        array.flags.writeable = False  # the tensor's memory: no one writes into it
    return array


def quantize_input(plan: QuantPlan, x: np.ndarray) -> tuple[np.ndarray, int]:
    """Quantize prepared float input (N, H, W, C) at the plan's input format; returns (int16, saturations)."""
    return quantize(x, plan.input_frac, plan.bits)


class Engine(ABC):
    """An engine computes the plan's integers.

    Subclasses implement run_op; run (propagated) and run_isolated are shared,
    and an engine with a faster whole-network path overrides run.
    """

    name = "engine"

    def __init__(self, plan: QuantPlan):
        self.plan = plan

    def describe(self) -> str:
        """One line saying what computed the results (shown in every report)."""
        return self.name

    def check_input(self, x: np.ndarray, shape=None, what: str = "input") -> np.ndarray:
        """Validate an int16 batch (N, H, W, C) before it reaches any kernel."""
        shape = tuple(shape or self.plan.input_shape)
        x = np.asarray(x)
        if x.dtype != np.int16:
            raise DataError(f"{self.name} engine: {what} has dtype {x.dtype}; expected int16 (quantized)")
        if x.ndim != 4 or tuple(x.shape[1:]) != shape:
            raise DataError(
                f"{self.name} engine: {what} has shape {x.shape}; expected (N, {', '.join(map(str, shape))})"
            )
        if len(x) == 0:
            raise DataError(f"{self.name} engine: {what} is empty (0 samples)")
        return np.ascontiguousarray(x)

    @abstractmethod
    def run_op(self, index: int, x: np.ndarray) -> OpResult:
        """Run op `index` of the plan on its input batch x (N, H, W, C) int16."""

    def run(self, x: np.ndarray) -> RunResult:
        """Propagated mode: each op is fed this engine's own previous output."""
        h = self.check_input(x)
        result = RunResult(self.name)
        for i, op in enumerate(self.plan.ops):
            r = self.run_op(i, h)
            result.add(op.name, r)
            h = r.out
        return result

    def run_isolated(self, x: np.ndarray, reference: RunResult) -> RunResult:
        """Isolated mode: op i is fed the reference's output of op i-1 (x for the first op)."""
        h = self.check_input(x)
        result = RunResult(self.name)
        for i, op in enumerate(self.plan.ops):
            if i > 0:
                prev = self.plan.ops[i - 1]
                h = self.check_input(reference.outputs[prev.name], op.in_shape, f"input of {op.name}")
            result.add(op.name, self.run_op(i, h))
        return result
