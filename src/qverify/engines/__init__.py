"""Engines: every one answers the same call and returns per-op integer outputs in HWC.

    engine = make_engine("shift", plan)
    result = engine.run(x_int)           # propagated: each op fed the engine's own previous output
    result.outputs["conv3"]              # (N, H, W, C) int16

make_engine is the one place an engine is built; the engines are named by qverify.choices.Engine.
"""

from qverify.choices import COMPARED_ENGINES, values
from qverify.choices import Engine as Name
from qverify.engines.base import Engine, OpResult, RunResult, quantize_input

__all__ = ["Engine", "OpResult", "RunResult", "quantize_input", "make_engine", "ENGINES"]

# the engines of an integer plan: the shift model and those compared with it
ENGINES = values((Name.SHIFT, *COMPARED_ENGINES))


def make_engine(name: str, plan, graph=None, **options) -> Engine:
    """Build the engine called `name` for a plan (options go to its constructor).

    The float engine also needs the graph the plan was made from.
    """
    from qverify.errors import QVerifyError

    if name == Name.FLOAT:
        if graph is None:
            raise QVerifyError("the float engine needs the model (graph) the plan was made from")
        from qverify.engines.float import FloatEngine

        return FloatEngine(plan, graph, **options)
    if name == Name.SHIFT:
        from qverify.engines.shift import ShiftEngine

        return ShiftEngine(plan, **options)
    if name == Name.NATIVE:
        from qverify.engines.native import NativeEngine

        return NativeEngine(plan, **options)
    if name == Name.TARGET:
        from qverify.engines.target import TargetEngine

        return TargetEngine(plan, **options)
    raise QVerifyError(f"unknown engine '{name}'; expected one of {', '.join(e.value for e in Name)}")
