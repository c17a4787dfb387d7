"""The float engine: the Keras model's own ops in float32, the reference the quantized engines approximate.

It answers the common Engine call (integer in, per-op integers out, each op's
output quantized at the plan's format, saturating and counting) so it can be
compared like any other engine, and `run_float` gives the float outputs
themselves, which is what SQNR, RMSE and cosine similarity are measured
against. The float arithmetic is qverify.floatops, the same TensorFlow ops
calibration measured its ranges with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from qverify.engines.base import Engine, OpResult, RunResult, host_array
from qverify.errors import PlanError
from qverify.floatops import chain_function, run_op
from qverify.graph import Graph
from qverify.plan import QuantPlan
from qverify.qformat import dequantize, quantize


class FloatEngine(Engine):
    """The float model of a plan.

    Args:
        plan: the plan (formats for quantizing the outputs).
        graph: the graph the plan was made from (workflow.graph_for(plan) reloads and checks it).
        batch: samples per TensorFlow call.

    Raises:
        PlanError: the graph's ops are not the plan's (names, kinds or shapes differ).
    """

    name = "float"

    def __init__(self, plan: QuantPlan, graph: Graph, batch: int = 256):
        super().__init__(plan)
        if len(graph.ops) != len(plan.ops):
            raise PlanError(
                f"the model has {len(graph.ops)} ops and the plan {len(plan.ops)}: not the model of this plan"
            )
        for g, p in zip(graph.ops, plan.ops, strict=True):
            model_op = (g.name, g.kind, tuple(g.in_shape), tuple(g.out_shape))
            if model_op != (p.name, p.kind, tuple(p.in_shape), tuple(p.out_shape)):
                raise PlanError(
                    f"model op '{g.name}' ({g.kind}, {g.in_shape} -> {g.out_shape}) does not match plan op "
                    f"'{p.name}' ({p.kind}, {p.in_shape} -> {p.out_shape}): not the model of this plan"
                )
        self.graph = graph
        self.batch = batch
        # the whole network as one TensorFlow graph function, traced on first use
        self._chain: Callable[[Any], list[Any]] | None = None

    def describe(self) -> str:
        return "float (the model's ops in float32, TensorFlow)"

    def run_float(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Float per-op outputs (N, H, W, C) float32 for prepared float input x (N, H, W, C).

        Each batch runs the model's ops (qverify.floatops, the same TensorFlow ops and order as
        calibration and Keras) as one graph function, as Keras's batched predict does: one call per
        batch instead of one eager dispatch and one copy per op; the outputs are the same numbers."""
        import tensorflow as tf

        if self._chain is None:
            self._chain = chain_function(self.graph.ops, self.plan.input_shape)
        x = np.asarray(x, dtype=np.float32)
        outs: dict[str, list[np.ndarray]] = {op.name: [] for op in self.plan.ops}
        for start in range(0, len(x), self.batch):
            for op, y in zip(self.plan.ops, self._chain(tf.constant(x[start : start + self.batch])), strict=True):
                outs[op.name].append(host_array(y))
        return {name: (parts[0] if len(parts) == 1 else np.concatenate(parts)) for name, parts in outs.items()}

    def _quantized(self, name: str, y: np.ndarray) -> OpResult:
        op = self.plan.op(name)
        q, saturated = quantize(y, op.out_frac, self.plan.bits)
        return OpResult(q, saturated, None)

    def run(self, x: np.ndarray) -> RunResult:
        """Dequantize x at the input format, run the float ops, quantize every output at its op's format."""
        h = self.check_input(x)
        floats = self.run_float(dequantize(h, self.plan.input_frac).astype(np.float32))
        result = RunResult(self.name)
        for op in self.plan.ops:
            result.add(op.name, self._quantized(op.name, floats[op.name]))
        return result

    def run_op(self, index: int, x: np.ndarray) -> OpResult:
        op = self.plan.ops[index]
        h = dequantize(x, op.in_frac).astype(np.float32)
        return self._quantized(op.name, np.asarray(run_op(self.graph.ops[index], h)))
