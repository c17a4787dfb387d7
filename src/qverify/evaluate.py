"""Dataset-scale verification: float, shift and native engines over a whole data set, streamed in chunks.

    ds = dataset.load_dataset(plan, "x.npy", "y.npy")   # or dataset.demo_dataset(2000)
    result = evaluate(plan, graph, ds)                    # graph = workflow.graph_for(plan)
    checks.add_checks(result)                             # the gate's checks (qverify.checks)
    result.ok, result.bit_exact_samples, result.ops[3].quant["shift"].sqnr_db

Per chunk of samples every engine runs, the per-op statistics are updated
(metrics.QuantStats against the float model, metrics.PairStats shift vs
native) and the outputs are dropped, so memory depends on the chunk size,
not on the number of samples. Only the first `dump_samples` samples' outputs
are kept, for the .npz dump.

Decisions (docs/design.md rule 9): one output unit is a binary decision, the
integer engines' class is `logit > 0` and the float model's `sigmoid > 0.5`
(`logit > 0` without a final sigmoid); more units decide by argmax.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qverify.choices import EVAL_ENGINES, Engine, Kernels, values
from qverify.dataset import DataSet, n_classes, prepare_chunk
from qverify.engines.base import quantize_input
from qverify.errors import DataError, QVerifyError
from qverify.footprint import Footprint, footprint
from qverify.metrics import PairStats, QuantStats, _finite, acc_headroom_bits
from qverify.opkinds import Kind
from qverify.outcome import Check
from qverify.plan import QuantPlan
from qverify.qformat import qm_n

ENGINE_NAMES = values(EVAL_ENGINES)
QUANTIZED = (Engine.SHIFT.value, Engine.NATIVE.value)
DEFAULT_CHUNK = 128
DEFAULT_DUMP = 16
# The fast build (the plain kernels, conv ops on the host's SIMD units: csrc/qv_host_conv.c) is the
# fast path for data sets; bench/ measures it. A firmware's CMSIS tree runs its plain kernels instead.
FASTEST_HOST_KERNELS = Kernels.FAST.value
FIRST_FLIPS = 20


def fastest_kernels(cmsis_root: str | None) -> str:
    """The native kernel path eval uses when none is chosen."""
    return Kernels.PLAIN.value if cmsis_root else FASTEST_HOST_KERNELS


# ---------------------------------------------------------------- results


@dataclass
class OpEval:
    """One op: its format, calibrated range, each quantized engine against float, shift against native."""

    name: str
    kind: str
    out_frac: int
    bits: int
    calib_range: tuple[float, float]
    quant: dict[str, QuantStats] = field(default_factory=dict)
    pair: PairStats | None = None
    acc_frac: int | None = None  # conv, dense: frac bits of the int32 accumulator, f_w + f_in
    acc_peak: int | None = None  # the shift model's largest max(acc, -1 - acc) over the data (None: not run)

    @property
    def format(self) -> str:
        return qm_n(self.out_frac, self.bits)

    @property
    def calib_acc_headroom_bits(self) -> float | None:
        """Accumulator headroom estimated from the calibrated range: acc_headroom_bits(peak * 2^(f_w + f_in)),
        peak the largest calibrated |output| (None for an op without an accumulator)."""
        if self.acc_frac is None:
            return None
        return acc_headroom_bits(max(abs(self.calib_range[0]), abs(self.calib_range[1])) * 2.0**self.acc_frac)

    @property
    def acc_headroom(self) -> tuple[float, bool] | None:
        """(bits left in the int32 accumulator, measured): metrics.acc_headroom_bits of the exact sums the shift
        model formed on the data (measured True), else the calibrated estimate (False); None without one."""
        if self.acc_peak is not None:
            return acc_headroom_bits(self.acc_peak), True
        est = self.calib_acc_headroom_bits
        return None if est is None else (est, False)

    def to_dict(self) -> dict:
        acc = self.acc_headroom
        return {
            "name": self.name,
            "kind": self.kind,
            "out_frac": self.out_frac,
            "format": self.format,
            "calibrated_range": list(self.calib_range),
            "acc_frac": self.acc_frac,
            "acc_peak": self.acc_peak,
            "acc_headroom_bits": None if acc is None else acc[0],
            "acc_headroom_measured": None if acc is None else acc[1],
            "calibrated_acc_headroom_bits": self.calib_acc_headroom_bits,
            "vs_float": {e: s.to_dict() for e, s in self.quant.items()},
            "shift_vs_native": None if self.pair is None else self.pair.to_dict(),
        }


@dataclass
class Decisions:
    """One engine's decisions over the data set."""

    engine: str
    correct: int | None = None
    flips: int = 0
    first_flips: list[dict] = field(default_factory=list)

    def to_dict(self, samples: int) -> dict:
        return {
            "correct": self.correct,
            "accuracy": None if self.correct is None else self.correct / samples,
            "flips_vs_float": self.flips,
            "first_flips": self.first_flips,
        }


@dataclass
class EvalResult:
    """Everything eval measured. Per-sample arrays are small (one score per sample and engine)."""

    plan_hash: str
    rounding: str
    engines: list[str]
    engine_info: dict[str, str]
    data_name: str
    samples: int
    classes: int
    final_activation: str | None
    ops: list[OpEval]
    decisions: dict[str, Decisions]
    bit_exact_samples: int | None
    first_inexact_samples: list[int]
    input_saturations: int
    seconds: dict[str, float]
    wall_seconds: float
    footprint: Footprint
    stage_seconds: dict[str, float] = field(default_factory=dict)
    scores: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    predictions: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    labels: np.ndarray | None = field(repr=False, default=None)
    dump: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    thresholds: dict = field(default_factory=dict)
    input_format: str = ""  # the plan's input format, Qm.n
    input_limits: tuple[float, float] = (0.0, 0.0)  # the real values it holds, QMIN and QMAX at input_frac
    input_float_range: tuple[float, float] = (math.inf, -math.inf)  # the data's float range, before quantizing
    input_values: int = 0  # input values quantized

    @property
    def ok(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def bit_exact(self) -> bool | None:
        """True when shift and native agree on every value of every sample (None if not both ran)."""
        return None if self.bit_exact_samples is None else self.bit_exact_samples == self.samples

    def accuracy(self, engine: str) -> float | None:
        d = self.decisions.get(engine)
        return None if d is None or d.correct is None else d.correct / self.samples

    def to_dict(self) -> dict:
        return {
            "plan_hash": self.plan_hash,
            "rounding": self.rounding,
            "engines": self.engines,
            "engine_info": self.engine_info,
            "data": self.data_name,
            "samples": self.samples,
            "classes": self.classes,
            "final_activation": self.final_activation,
            "ok": self.ok,
            "bit_exact": self.bit_exact,
            "bit_exact_samples": self.bit_exact_samples,
            "first_inexact_samples": self.first_inexact_samples,
            "input_saturations": self.input_saturations,
            "input": {
                "format": self.input_format,
                "limits": list(self.input_limits),
                "float_range": [_finite(v) for v in self.input_float_range],
                "values": self.input_values,
                "saturated": self.input_saturations,
            },
            "decisions": {e: d.to_dict(self.samples) for e, d in self.decisions.items()},
            "ops": [op.to_dict() for op in self.ops],
            "checks": [vars(c) for c in self.checks],
            "thresholds": self.thresholds,
            "seconds": self.seconds,
            "wall_seconds": self.wall_seconds,
            "stage_seconds": self.stage_seconds,
            "samples_per_second": {e: (self.samples / s if s else None) for e, s in self.seconds.items()},
            "footprint": self.footprint.to_dict(),
        }


# ---------------------------------------------------------------- decisions


def _sigmoid(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _scores(z: np.ndarray, final: str | None, cls: np.ndarray | None) -> np.ndarray:
    """One score per sample: the binary probability (or logit), or the probability (or logit) of class cls."""
    if z.shape[1] == 1:
        return _sigmoid(z[:, 0]) if final == "sigmoid" else z[:, 0]
    p = _softmax(z) if final == "softmax" else z
    return p[np.arange(len(z)), cls]


def decide_float(z: np.ndarray, final: str | None, cut: float = 0.0) -> np.ndarray:
    """Float model's classes from its final-op outputs z (N, K); one unit: above `cut` (0.5 where the last op is a
    sigmoid of the plan, whose outputs are probabilities), or sigmoid(z) > 0.5 with a float final sigmoid."""
    if z.shape[1] == 1:
        return ((_sigmoid(z[:, 0]) > 0.5) if final == "sigmoid" else (z[:, 0] > cut)).astype(np.int64)
    return np.argmax(z, axis=1)


def decide_int(q: np.ndarray, cut: int = 0) -> np.ndarray:
    """Integer engine's classes from its final-op outputs q (N, K): `q > cut` for one unit (rule 9; `cut` is 0.5 in
    the last op's format for a sigmoid of the plan), else argmax."""
    if q.shape[1] == 1:
        return (q[:, 0] > cut).astype(np.int64)
    return np.argmax(q, axis=1)


def decision_cut(plan: QuantPlan) -> tuple[float, int]:
    """The one-unit decision threshold of the last op's values, in float and in its format: 0.5 for a sigmoid of
    the plan (its outputs are probabilities), else 0 (a logit; a tanh's sign)."""
    last = plan.ops[-1]
    if last.kind == Kind.SIGMOID:
        return 0.5, 1 << (last.out_frac - 1)
    return 0.0, 0


# ---------------------------------------------------------------- evaluation


def _progress(total: int, enabled: bool | None):
    from tqdm.auto import tqdm

    # disable=None: shown only on a terminal; delay: only for runs longer than a couple of seconds
    return tqdm(
        total=total,
        unit="sample",
        desc="qverify eval",
        disable=None if enabled is None else not enabled,
        delay=2.0,
        leave=False,
        file=sys.stderr,
        dynamic_ncols=True,
    )


def check_engines(engines: list[str]) -> None:
    """Raise QVerifyError unless engines are distinct names from ENGINE_NAMES (at least one)."""
    unknown = [e for e in engines if e not in ENGINE_NAMES]
    if unknown or not engines or len(set(engines)) != len(engines):
        raise QVerifyError(f"engines must be distinct names from {', '.join(ENGINE_NAMES)}; got '{','.join(engines)}'")


def make_engines(
    plan: QuantPlan,
    graph,
    engines: list[str],
    kernels: str | None = None,
    threads: int | None = None,
    cmsis_root: str | None = None,
) -> dict:
    """The named engines for a data set (engines.make_engine builds each); native uses the fastest kernel
    path unless `kernels` says otherwise."""
    from qverify.engines import make_engine

    check_engines(engines)
    # keyed by str: an Engine is a str, and engines are named by plain strings here
    options: dict[str, dict[str, Any]] = {
        Engine.NATIVE: dict(kernels=kernels or fastest_kernels(cmsis_root), threads=threads, cmsis_root=cmsis_root)
    }
    return {e: make_engine(e, plan, graph, **options.get(e, {})) for e in engines}


def evaluate(
    plan: QuantPlan,
    graph,
    data: DataSet,
    engines: list[str] | tuple[str, ...] = ENGINE_NAMES,
    chunk: int = DEFAULT_CHUNK,
    dump_samples: int = DEFAULT_DUMP,
    kernels: str | None = None,
    threads: int | None = None,
    cmsis_root: str | None = None,
    progress: bool | None = None,
    built: dict | None = None,
) -> EvalResult:
    """Run the engines over the data set in chunks and accumulate every statistic.

    Args:
        plan: the plan.
        graph: the graph of the plan's model (workflow.graph_for(plan)); needed for the float engine.
        data: the samples (and labels).
        engines: any of 'float', 'shift', 'native'.
        chunk: samples per chunk (memory is proportional to it).
        dump_samples: how many leading samples' per-op outputs to keep in result.dump.
        kernels: native kernel path ('fast', 'plain' or 'dsp'); default the fastest on the host (fast;
            plain with a cmsis_root).
        threads: native worker threads (default one per core).
        cmsis_root: build the native arm_* kernels from this CMSIS tree.
        progress: True/False forces the progress bar on/off; None shows it on a terminal.
        built: engines already made by make_engines (else made here).

    Returns:
        The EvalResult (checks not yet attached; see checks.add_checks).

    Raises:
        QVerifyError subclasses for bad data or engines.
    """
    engines = list(engines)
    built = built or make_engines(plan, graph, engines, kernels, threads, cmsis_root)
    n = len(data)
    if chunk <= 0:
        raise QVerifyError(f"chunk size {chunk} must be positive")
    quantized = [e for e in QUANTIZED if e in engines]
    have_float = "float" in engines
    pair = "shift" in engines and "native" in engines
    ops = [
        OpEval(
            op.name,
            op.kind,
            op.out_frac,
            plan.bits,
            (op.range[0], op.range[1]),
            acc_frac=None if not op.weighted or op.w_frac is None else op.w_frac + op.in_frac,
        )
        for op in plan.ops
    ]
    in_lo, in_hi = plan.qmin * 2.0**-plan.input_frac, plan.qmax * 2.0**-plan.input_frac
    if have_float:
        for o in ops:
            o.quant = {e: QuantStats(o.out_frac, plan.qmin, plan.qmax) for e in quantized}
    if pair:
        for o in ops:
            o.pair = PairStats()
    decisions = {e: Decisions(e, 0 if data.labels is not None else None) for e in engines}
    final = plan.final_activation
    cut, cut_q = decision_cut(plan)
    classes = n_classes(plan)
    scores = {e: np.empty(n, np.float32) for e in engines}
    predictions = {e: np.empty(n, np.int32) for e in engines}
    seconds = {e: 0.0 for e in engines}
    stages = {"data": 0.0, "statistics": 0.0}
    first_inexact: list[int] = []
    dump: dict[str, np.ndarray] = {}
    t_start = time.perf_counter()

    # The TensorFlow engines (float, shift) run in this thread; the native engine, the statistics and the
    # decisions of a chunk run in one worker thread while this thread computes the next chunk (both
    # release the GIL in their C code). At most one finished chunk waits, so memory stays one chunk deep.
    in_worker = [e for e in quantized if e == Engine.NATIVE.value]
    # what the worker counts: samples shift and native agree on (when both run), input saturations
    counters = {"exact": 0, "input_sats": 0, "input_values": 0}
    seen = [math.inf, -math.inf]  # the input's float range

    def finish(start: int, stop: int, at: int, xf, xi, floats, runs, received) -> None:
        for e in in_worker:
            t = time.perf_counter()
            runs[e] = built[e].run(xi)
            seconds[e] += time.perf_counter() - t
        t = time.perf_counter()
        same_op = {}
        if pair:
            same = np.ones(stop - start, bool)
            for o in ops:
                assert o.pair is not None  # every op has one when pair (set above)
                eq = o.pair.update(runs["shift"].outputs[o.name], runs["native"].outputs[o.name], at)
                same &= eq
                same_op[o.name] = bool(eq.all())
            counters["exact"] += int(same.sum())
            if len(first_inexact) < FIRST_FLIPS:
                first_inexact.extend(at + int(i) for i in np.flatnonzero(~same)[: FIRST_FLIPS - len(first_inexact)])
        if "shift" in runs:
            for o in ops:
                peak = runs["shift"].acc_peaks.get(o.name)
                if peak is not None:
                    o.acc_peak = peak if o.acc_peak is None else max(o.acc_peak, peak)
        if have_float:
            for o in ops:
                summary = None
                got = None if received is None else received[o.name]
                for e in quantized:
                    r = runs[e]
                    if e == "native" and summary is not None and same_op.get(o.name):
                        o.quant[e].add(summary)  # identical integers: identical statistics
                    else:
                        counts = (r.saturations.get(o.name), r.overflows.get(o.name))
                        try:
                            summary = o.quant[e].update(floats[o.name], r.outputs[o.name], *counts, got)
                        except DataError as exc:  # where: the op and the chunk's samples
                            raise DataError(f"op '{o.name}', samples {at}..{at + stop - start - 1}: {exc}") from None

        last = plan.ops[-1].name
        y = None if data.labels is None else data.labels[start:stop]
        float_cls = None
        if have_float:
            z = floats[last].reshape(stop - start, -1)
            float_cls = decide_float(z, final, cut)
            scores["float"][start:stop] = _scores(z, final, float_cls)
            predictions["float"][start:stop] = float_cls
            _tally(decisions["float"], float_cls, float_cls, y, start, None, None, data.first)
        for e in quantized:
            q = runs[e].outputs[last].reshape(stop - start, -1)
            cls = decide_int(q, cut_q)
            deq = q.astype(np.float64) * 2.0 ** -plan.ops[-1].out_frac
            scores[e][start:stop] = _scores(deq, final, float_cls if have_float else cls)
            predictions[e][start:stop] = cls
            _tally(decisions[e], cls, float_cls, y, start, scores.get("float"), scores[e], data.first)
        stages["statistics"] += time.perf_counter() - t
        if start < dump_samples:
            _dump(dump, plan, start, min(stop, dump_samples), xf, xi, floats, runs, y, data.first)

    from concurrent.futures import ThreadPoolExecutor

    with _progress(n, progress) as bar, ThreadPoolExecutor(1, thread_name_prefix="qverify-eval") as worker:
        waiting, waiting_size = None, 0
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            at = data.first + start  # index of this chunk's first sample in the source data
            t = time.perf_counter()
            xf = prepare_chunk(data.x[start:stop], plan, data.name, at)
            xi, sats = quantize_input(plan, xf)
            counters["input_sats"] += sats
            counters["input_values"] += int(np.size(xf))
            if np.size(xf):
                seen[0], seen[1] = min(seen[0], float(np.min(xf))), max(seen[1], float(np.max(xf)))
            stages["data"] += time.perf_counter() - t
            floats, runs, received = None, {}, None
            if have_float:
                t = time.perf_counter()
                floats = built["float"].run_float(xf)
                if sats:
                    # what the ops received: the input clipped to its format, as the integer engines get it;
                    # headroom is measured on this, the input's saturation is reported as such
                    received = built["float"].run_float(np.clip(xf, in_lo, in_hi))
                seconds["float"] += time.perf_counter() - t
            for e in quantized:
                if e not in in_worker:
                    t = time.perf_counter()
                    runs[e] = built[e].run(xi)
                    seconds[e] += time.perf_counter() - t
            if waiting is not None:
                waiting.result()  # the previous chunk (raises what it raised)
                bar.update(waiting_size)
            waiting = worker.submit(finish, start, stop, at, xf, xi, floats, runs, received)
            waiting_size = stop - start
            del floats, runs, xf, xi, received
        if waiting is not None:
            waiting.result()
            bar.update(waiting_size)
    exact_samples = counters["exact"] if pair else None
    input_sats = counters["input_sats"]

    if data.labels is not None:
        dump["labels"] = data.labels[:dump_samples]
    info = {e: built[e].describe() for e in engines}
    if "native" in built:
        nat = built["native"]
        picked = "chosen" if kernels else "auto-selected as the fastest on this host"
        info["native"] += f"; {nat.kernels} kernels ({picked})"
    return EvalResult(
        plan.hash,
        plan.rounding,
        engines,
        info,
        data.name,
        n,
        classes,
        final,
        ops,
        decisions,
        exact_samples,
        first_inexact,
        input_sats,
        seconds,
        time.perf_counter() - t_start,
        footprint(plan),
        {**seconds, **stages},
        scores,
        predictions,
        data.labels,
        dump,
        input_format=qm_n(plan.input_frac, plan.bits),
        input_limits=(in_lo, in_hi),
        input_float_range=(seen[0], seen[1]),
        input_values=counters["input_values"],
    )


def _tally(d: Decisions, cls, float_cls, y, start: int, float_scores, scores, first: int = 0) -> None:
    if y is not None:
        assert d.correct is not None  # counted from 0 when the data has labels (evaluate)
        d.correct += int(np.count_nonzero(cls == y))
    if float_cls is None or d.engine == "float":
        return
    flipped = np.flatnonzero(cls != float_cls)
    d.flips += len(flipped)
    for i in flipped[: max(0, FIRST_FLIPS - len(d.first_flips))]:
        s = start + int(i)
        d.first_flips.append(
            {
                "sample": first + s,
                "float_class": int(float_cls[i]),
                "class": int(cls[i]),
                "float_score": float(float_scores[s]),
                "score": float(scores[s]),
            }
        )


def _dump(dump: dict, plan: QuantPlan, start: int, stop: int, xf, xi, floats, runs, y, first: int = 0) -> None:
    k = stop - start

    def put(key, arr):
        arr = np.asarray(arr[:k])
        dump[key] = arr if key not in dump else np.concatenate([dump[key], arr])

    put("sample_index", np.arange(first + start, first + stop))
    put("input/float", xf)
    put("input/int", xi)
    for op in plan.ops:
        if floats is not None:
            put(f"float/{op.name}", floats[op.name])
        for e, r in runs.items():
            put(f"{e}/{op.name}", r.outputs[op.name])
