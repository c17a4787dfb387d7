"""Engines: every one answers the same call and returns per-op integer outputs in HWC.

    engine = make_engine("shift", plan)
    result = engine.run(x_int)           # propagated: each op fed the engine's own previous output
    result.outputs["conv3"]              # (N, H, W, C) int16
"""

from qverify.engines.base import Engine, OpResult, RunResult, quantize_input

__all__ = ["Engine", "OpResult", "RunResult", "quantize_input", "make_engine", "ENGINES"]

ENGINES = ("shift", "native", "target")


def make_engine(name: str, plan, **options) -> Engine:
    """Build the engine called `name` for a plan (options go to its constructor)."""
    if name == "shift":
        from qverify.engines.shift import ShiftEngine

        return ShiftEngine(plan, **options)
    if name == "native":
        from qverify.engines.native import NativeEngine

        return NativeEngine(plan, **options)
    if name == "target":
        from qverify.engines.target import TargetEngine

        return TargetEngine(plan, **options)
    from qverify.errors import QVerifyError

    raise QVerifyError(f"unknown engine '{name}'; expected one of {', '.join(ENGINES)}")
