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
from pathlib import Path

import numpy as np

from qverify.compare import Comparison, compare_results
from qverify.engines.native import NativeEngine
from qverify.engines.shift import ShiftEngine
from qverify.engines.target import TargetEngine
from qverify.mcu import report
from qverify.mcu.image import Footprint
from qverify.mcu.protocol import SelfTest
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

    selftest_origin: str = ""

    @classmethod
    def start(
        cls,
        plan: QuantPlan,
        core: Core,
        rounding: str,
        kernels: str | None = None,
        cmsis_root: str | None = None,
        timeout: float | None = None,
        cflags: tuple[str, ...] | None = None,
        selftest: tuple[str, str] | None = None,
    ) -> TargetRun:
        """Build (or reuse) the image and make the reference engines.

        selftest: (text of a sample_input_output.h, where it came from), e.g. from selftest_header(): the
            image then runs network.c's qv_selftest() on it at boot, and .selftest holds the result.

        Raises:
            TargetError subclasses: the toolchain is missing or the image does not build.
        """
        kernels = kernels or ("dsp" if core.dsp else "plain")  # the host build of the core's own path
        target = TargetEngine(
            plan,
            cpu=core.name,
            rounding=rounding,
            cmsis_root=cmsis_root,
            timeout=timeout,
            cflags=cflags,
            selftest=selftest[0] if selftest else None,
        )
        references = [ShiftEngine(plan), NativeEngine(plan, kernels=kernels, rounding=rounding, cmsis_root=cmsis_root)]
        return cls(plan, core, target, references, selftest[1] if selftest else "")

    @property
    def selftest(self) -> SelfTest | None:
        """network.c's qv_selftest() as the emulated core ran it in the last run (None: not built in, or no run)."""
        return self.target.last_run.selftest if self.target.last_run is not None else None

    def selftest_line(self) -> str | None:
        """'self-test on the device (...): PASS: ...' or FAIL naming the op and element; None without one."""
        st = self.selftest
        if st is None:
            return None
        return (
            f"self-test on the device (network.c qv_selftest() on {self.selftest_origin}): "
            f"{st.describe([op.name for op in self.plan.ops])}"
        )

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
            comparisons.append(
                Comparison(
                    plan.hash,
                    ref_engine.describe(),
                    target.describe(),
                    mode,
                    samples,
                    compare_results(plan, ref, tested, samples, target.kernels_used),
                )
            )
        return comparisons

    def measurements(self) -> tuple[Footprint, int]:
        """The image's footprint and the runner's scratch words on the core (0 before a run)."""
        fp = self.target.footprint()
        scratch = self.target.last_run.scratch_words if self.target.last_run else 0
        return fp, scratch

    def to_dict(self, comparisons: list[Comparison], fp: Footprint, scratch: int) -> dict:
        """The JSON document: verdict, core and build, comparisons, footprint, per-op instruction counts."""
        core, target = self.core, self.target
        st = self.selftest
        return {
            "ok": all(c.ok for c in comparisons) and (st is None or st.ok),
            "cpu": core.name,
            "machine": core.machine,
            "selftest": None
            if st is None
            else {**st.to_dict([op.name for op in self.plan.ops]), "header": self.selftest_origin},
            "build": target.image.describe(),
            "comparisons": [c.to_dict() for c in comparisons],
            "footprint": report.footprint_dict(self.plan, fp, scratch),
            "instructions": {"label": report.INSN_LABEL, "per_op_mean": target.instructions},
        }


def selftest_header(plan: QuantPlan, plan_dir: str | Path | None, x: np.ndarray, sample: int) -> tuple[str, str]:
    """The sample_input_output.h the image's self-test runs: the plan folder's own when it is of this plan (the
    header a firmware flashes), else one written now from the first sample under test (the shift model's
    outputs, as quantize writes it). Returns (text, where it came from)."""
    from qverify.export import sample_header

    if plan_dir is not None:
        path = Path(plan_dir) / "sample_input_output.h"
        if path.is_file():
            text = path.read_text(errors="replace")
            if f'#define QVERIFY_PLAN_HASH "{plan.hash}"' in text:
                return text, str(path)
    x0 = np.asarray(x)[:1]
    outputs = {k: v[0] for k, v in ShiftEngine(plan).run(x0).outputs.items()}
    return sample_header(plan, x0[0], outputs), f"data-set sample {sample} (shift model)"
