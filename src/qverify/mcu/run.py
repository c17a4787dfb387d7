"""One verification run on the emulated core: build the image, run it, compare it op by op, collect its figures.

    run = TargetRun.start(plan, cpu("cortex-m4"), rounding="truncate")   # builds (or reuses) the image
    comparisons = run.compare(x, samples, "isolated")   # vs the shift model, then vs the host kernels
    fp, scratch = run.measurements()                    # section sizes, the runner's scratch on the core
    run.to_dict(comparisons, fp, scratch)               # what `qverify target --json` writes

The command `qverify target` (commands/target.py) parses the arguments and prints; everything it
builds, runs and collects is here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qverify.compare import Comparison, compare_results
from qverify.engines.native import NativeEngine
from qverify.engines.shift import ShiftEngine
from qverify.engines.target import TargetEngine
from qverify.mcu import report
from qverify.mcu.image import Footprint
from qverify.mcu.toolchain import Core
from qverify.plan import QuantPlan


@dataclass
class TargetRun:
    """The target engine for one core and the references it is checked against: the shift model and the
    host build of the same code path (the core's own unless `kernels` says otherwise)."""

    plan: QuantPlan
    core: Core
    target: TargetEngine
    references: list

    @classmethod
    def start(cls, plan: QuantPlan, core: Core, rounding: str, kernels: str | None = None,
              cmsis_root: str | None = None, timeout: float | None = None,
              cflags: tuple[str, ...] | None = None) -> TargetRun:
        """Build (or reuse) the image and make the reference engines.

        Raises:
            TargetError subclasses: the toolchain is missing or the image does not build.
        """
        kernels = kernels or ("dsp" if core.dsp else "plain")  # the host build of the core's own path
        target = TargetEngine(plan, cpu=core.name, rounding=rounding, cmsis_root=cmsis_root, timeout=timeout,
                              cflags=cflags)
        references = [ShiftEngine(plan), NativeEngine(plan, kernels=kernels, rounding=rounding, cmsis_root=cmsis_root)]
        return cls(plan, core, target, references)

    def compare(self, x: np.ndarray, samples: list[int], mode: str) -> list[Comparison]:
        """The target against each reference on the quantized inputs x (data-set sample numbers `samples`):
        'propagated' runs the image end to end once; 'isolated' feeds each op the reference's input for it.

        Raises:
            TargetRunError: the firmware hung, crashed or refused (its .sample is the batch row, if known).
        """
        plan, target = self.plan, self.target
        comparisons = []
        got = target.run(x) if mode == "propagated" else None
        for ref_engine in self.references:
            ref = ref_engine.run(x)
            tested = got if got is not None else target.run_isolated(x, ref)
            comparisons.append(Comparison(plan.hash, ref_engine.describe(), target.describe(), mode, samples,
                                          compare_results(plan, ref, tested, samples, target.kernels_used)))
        return comparisons

    def measurements(self) -> tuple[Footprint, int]:
        """The image's footprint and the runner's scratch words on the core (0 before a run)."""
        fp = self.target.footprint()
        scratch = self.target.last_run.scratch_words if self.target.last_run else 0
        return fp, scratch

    def to_dict(self, comparisons: list[Comparison], fp: Footprint, scratch: int) -> dict:
        """The JSON document: verdict, core and build, comparisons, footprint, per-op instruction counts."""
        core, target = self.core, self.target
        return {"ok": all(c.ok for c in comparisons), "cpu": core.name, "machine": core.machine,
                "build": target.image.describe(), "comparisons": [c.to_dict() for c in comparisons],
                "footprint": report.footprint_dict(self.plan, fp, scratch),
                "instructions": {"label": report.INSN_LABEL, "per_op_mean": target.instructions}}
