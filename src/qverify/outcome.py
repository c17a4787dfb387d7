"""What the gate decides: Check (one pass/fail item, one JUnit test case, one pytest item) and GateOutcome
(every check, with the plan and what computed them).

evaluate.EvalResult holds the checks of a data set; gate.run_gate makes a GateOutcome of them, and the
cache (gate_cache.py), the reports and the pytest plugin read it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qverify.plan import QuantPlan


@dataclass
class Check:
    """One pass/fail item of the gate (one JUnit test case)."""

    classname: str
    name: str
    passed: bool
    message: str
    details: str = ""


@dataclass
class GateOutcome:
    """What the gate found. Attribute names follow evaluate.EvalResult where reports read them
    (reports.junit.eval_junit(outcome) works on either).

    Attributes:
        checks: every check, per op in plan order, then the model-level ones.
        plan: the plan the checks are about.
        cached: True when read from the cache (nothing was computed).
        key: the cache key.
        data_name, samples: what was evaluated.
        engines: the engines that ran ('float', 'shift', 'native', 'target').
        engine_info: engine or check label → what computed it.
        summary: a few lines for people (accuracy, decision flips, kernels).
        sample_input: sample 0 of the calibration data, quantized (1, H, W, C) int16.
        sample_outputs: the shift model's output of each conv/dense op for it (H, W, C).
        wall_seconds: time the checks took to compute (on a hit: when they were computed).
        header_diffs: header mode: format_diff's text of the committed weights.h (and
            sample_input_output.h) against the plan; computed on every run, never cached.
    """

    checks: list[Check]
    plan: QuantPlan
    cached: bool
    key: str
    data_name: str
    samples: int
    engines: list[str]
    engine_info: dict[str, str]
    summary: list[str]
    sample_input: np.ndarray = field(repr=False)
    sample_outputs: dict[str, np.ndarray] = field(repr=False)
    wall_seconds: float = 0.0
    header_diffs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    @property
    def plan_hash(self) -> str:
        return self.plan.hash

    @property
    def rounding(self) -> str:
        return self.plan.rounding


def check_id(check: Check) -> str:
    """'conv3::bit_exact[shift-native]', 'model::accuracy_drop[shift]': the pytest item name."""
    group = check.classname.removeprefix("qverify.")
    return f"{group}::{check.name}"
