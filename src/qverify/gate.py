"""The gate: one configuration → every check (per op and model-level), computed once and cached on disk.

    cfg = load_config(find_config(Path.cwd()))
    outcome = run_gate(cfg)                 # GateOutcome: .checks, .plan, .cached, .ok
    if outcome.ok:
        write_outputs(outcome, cfg.out)     # plan + weights.h + sample_input_output.h + network.c

The pytest plugin and `qverify gate` both call run_gate, so they run the
same checks. Steps on a cache miss: quantize as the configuration says;
evaluate float, shift and native over the first `samples` samples
(evaluate.evaluate + checks.add_checks: SQNR, saturation, overflow, accuracy and
the model-level propagated bit-exactness); then compare every engine under
test with the shift model op by op in ISOLATED mode — each op of the engine
is fed the shift model's input for that op — so one wrong kernel fails only
its own op's check, not every op after it. Those isolated checks replace
evaluate's propagated per-op `bit_exact[shift-native]`. (All ops bit-exact
in isolation implies bit-exact end to end, by induction over the ops.)

The outcome is cached on disk (gate_cache.py): a hit only reads files, no
TensorFlow, no engine.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from qverify import gate_cache
from qverify.checks import mismatch_lines
from qverify.config import Config
from qverify.outcome import Check, GateOutcome
from qverify.plan import QuantPlan

COMPARE_CHUNK = 64  # samples per isolated comparison (memory ∝ chunk × every op's output)
MODEL = "qverify.model"
_NOT_REQUIRED = " (not required: require_bit_exact = false)"


# ---------------------------------------------------------------- running


def run_gate(cfg: Config, use_cache: bool = True, progress: Callable[[str], None] | None = None) -> GateOutcome:
    """Every check the configuration asks for, from the cache when nothing changed.

    Args:
        cfg: the configuration (config.load_config).
        use_cache: read and write <config dir>/.qverify_cache; False computes afresh and stores nothing.
        progress: called with a line per step (and shows evaluate's progress bar on a terminal).

    Returns:
        The GateOutcome.

    Raises:
        QVerifyError subclasses for a bad model, data, CMSIS tree or toolchain.
    """
    say = progress or (lambda _msg: None)
    split = calibration_split(cfg)  # a refused overlap or a range past the data: before anything runs
    if cfg.header:
        _read_headers(cfg)  # a malformed committed header too
    key = gate_cache.cache_key(cfg)
    outcome = gate_cache.load(cfg, key) if use_cache else None
    if outcome is not None:
        say(f"qverify: checks of plan {outcome.plan_hash[:16]} from the cache ({gate_cache.cache_root(cfg)})")
    else:
        outcome = _compute(cfg, key, split, say, progress is not None)
        if use_cache:
            gate_cache.store(cfg, outcome)
    if cfg.header:  # the committed files are read afresh every run: their content is not in the cache key
        _header_checks(cfg, outcome)
    return outcome


def calibration_split(cfg: Config):
    """workflow.Split of the configuration: calibration apart from the evaluated samples by default.

    Raises:
        DataError: an overlap calib_overlap does not allow, or a range past the end of the data.
    """
    from qverify.workflow import split_samples

    return split_samples(
        cfg.data,
        cfg.calib_data,
        (cfg.calib_start or None, cfg.calib_samples),
        (cfg.sample_start, cfg.samples),
        cfg.calib_overlap,
        names=(f"{cfg.source}: 'calib_samples'", f"{cfg.source}: 'samples'", "calib_overlap = true"),
    )


def _read_headers(cfg: Config):
    from qverify.cheader import read_header

    assert cfg.header is not None  # header mode: called only when the config sets a header
    weights = read_header(cfg.header)
    weights.check()
    sample = read_header(cfg.sample_header) if cfg.sample_header else None
    if sample is not None:
        sample.array("INPUT_DATA")
    return weights, sample


def _header_checks(cfg: Config, outcome: GateOutcome) -> None:
    """Header mode: the committed weights.h (and sample_input_output.h) against the model's plan, as
    diff-header compares them: one header[STEM] check per conv/dense op, and model-level checks holding the
    whole diff. The header is only read."""
    from qverify.header import read_sample, read_weights
    from qverify.header_diff import diff_sample, diff_weights, format_diff

    assert cfg.header is not None  # header mode: called only when the config sets a header
    plan = outcome.plan
    weights_h, sample_h = _read_headers(cfg)
    read = read_weights(weights_h, plan, cfg.header_map)
    diff = diff_weights(read, plan)
    name = Path(cfg.header).name
    by_op = {d.op: d for d in diff.ops}
    for op in plan.ops:
        d = by_op.get(op.name)
        if d is None:
            continue
        what = ", ".join(f"{p.part} ({p.differ}/{p.size}: {p.cause})" for p in d.parts)
        msg = (
            f"{name} {d.stem}_* differ from the plan: {what}"
            if d.parts
            else f"{name} {d.stem}_* equal the plan's weights, bias and shifts"
        )
        check = Check(f"qverify.{op.name}", f"header[{d.stem}]", not d.parts, msg)
        at = max((i for i, c in enumerate(outcome.checks) if c.classname == f"qverify.{op.name}"), default=None)
        outcome.checks.insert(len(outcome.checks) if at is None else at + 1, check)
    texts = [format_diff(diff)]
    bad = sum(1 for d in diff.ops if d.parts)
    msg = (
        f"{cfg.header} matches the model's plan {plan.hash[:16]} (verified, not rewritten)"
        + "".join(f"; note: {n}" for n in diff.notes)
        if diff.identical
        else f"{cfg.header} no longer matches the model's plan {plan.hash[:16]}: {bad} of {len(diff.ops)} conv/dense "
        f"op(s) differ" + (f", {len(diff.unmapped)} header layer(s) unmapped" if diff.unmapped else "")
    )
    outcome.checks.append(Check(MODEL, f"header[{name}]", diff.identical, msg, texts[0]))
    if sample_h is not None:
        sample = read_sample(sample_h, plan, {layer.op: layer.stem for layer in read.layers})
        same = sample.input.tolist() == np.asarray(outcome.sample_input).ravel().tolist() and all(
            v.tolist() == np.asarray(outcome.sample_outputs[k]).ravel().tolist() for k, v in sample.outputs.items()
        )
        assert cfg.sample_header is not None  # sample_h was read from it
        sname = Path(cfg.sample_header).name
        if same:  # sample 0 of the calibration data as the gate computed it: no engine needed
            msg = f"{cfg.sample_header}: INPUT_DATA and every conv/dense output equal the plan's (sample 0)"
            outcome.checks.append(Check(MODEL, f"sample_header[{sname}]", True, msg))
        else:
            from qverify.engines.shift import ShiftEngine

            other = "round" if plan.rounding == "truncate" else "truncate"
            sdiff = diff_sample(sample, plan, ShiftEngine(plan), ShiftEngine(plan, rounding=other))
            text = format_diff(sdiff)
            texts.append(text)
            first = next((d for d in sdiff.ops if d.parts), None)
            msg = (
                f"{cfg.sample_header}: every conv/dense output is what the plan computes from the header's input"
                if first is None
                else f"{cfg.sample_header}: {first.op} ({first.stem}) is not what the plan computes from the header's "
                f"input to it"
                + (f" (and {n - 1} more op(s))" if (n := sum(1 for d in sdiff.ops if d.parts)) > 1 else "")
            )
            outcome.checks.append(Check(MODEL, f"sample_header[{sname}]", first is None, msg, text))
    outcome.header_diffs = texts


def _compute(cfg: Config, key: str, split, say: Callable[[str], None], bar: bool) -> GateOutcome:
    from qverify import evaluate as ev
    from qverify.checks import add_checks
    from qverify.dataset import demo_dataset, load_dataset
    from qverify.engines import make_engine, quantize_input
    from qverify.engines.shift import ShiftEngine
    from qverify.workflow import quantize

    t0 = time.perf_counter()
    say("qverify: quantizing " + ("the demo model" if cfg.model is None else cfg.model))  # cfg.is_demo, narrowing model
    # module:Factory models live beside the configuration; on sys.path only while the model loads
    added = cfg.root not in sys.path
    if added:
        sys.path.insert(0, cfg.root)
    try:
        q = quantize(
            cfg.model,
            cfg.weights,
            split.calib_data,
            split.calib_samples,
            cfg.bits,
            cfg.rounding,
            cfg.rule,
            cfg.fit_accumulator,
            functions=cfg.functions,
            weight_bits=cfg.weight_bits,
            paths=_device_paths(cfg),
            calib_start=split.calib[0],
            macro_names=cfg.header_map,
            names_in_order=_names_in_order(cfg),
            final_activation=cfg.final_activation,
            cmsis=cfg.cmsis_version,
        )
    finally:
        if added and cfg.root in sys.path:
            sys.path.remove(cfg.root)
    plan, graph = q.plan, q.graph
    x0, _ = quantize_input(plan, q.x[:1])
    shift0 = ShiftEngine(plan).run(x0)
    sample_outputs = {op.name: shift0.outputs[op.name][0] for op in plan.ops if op.weighted}
    del q
    contracts = _contract_checks(plan)
    if not all(c.passed for c in contracts):  # no kernel runs a call Arm's code would not compute
        return GateOutcome(
            contracts, plan, False, key, "-", 0, [], {}, [], x0, sample_outputs, time.perf_counter() - t0
        )

    first, count = split.eval[0], split.eval_samples
    data = load_dataset(plan, cfg.data, cfg.labels, count, first) if cfg.data else demo_dataset(count, first=first)
    say(f"qverify: {split.note}")
    eval_engines = ["float", "shift"] + (["native"] if "native" in cfg.engines else [])
    built = ev.make_engines(plan, graph, eval_engines, cfg.kernels[0], None, cfg.cmsis_root)
    say(f"qverify: evaluating {len(data)} sample(s) of {data.name}: {', '.join(eval_engines)}")
    result = ev.evaluate(
        plan,
        graph,
        data,
        eval_engines,
        kernels=cfg.kernels[0],
        dump_samples=0,
        progress=None if bar else False,
        built=built,
    )
    add_checks(result, cfg.min_sqnr_db, cfg.max_accuracy_drop, cfg.fail_on_overflow)

    tested = {}
    if "native" in cfg.engines:
        for i, kernels in enumerate(cfg.kernels):
            label = "shift-native" if i == 0 else f"shift-native:{kernels}"
            tested[label] = (
                built["native"] if i == 0 else make_engine("native", plan, kernels=kernels, cmsis_root=cfg.cmsis_root)
            )
    if "target" in cfg.engines:
        say(f"qverify: building the {cfg.target_cpu} image")
        tested["shift-target"] = make_engine("target", plan, cpu=cfg.target_cpu, cmsis_root=cfg.cmsis_root)
    say(f"qverify: comparing op by op (isolated): {', '.join(tested)}")
    stats, kernels_used, errors = _isolated(plan, data, tested, built["shift"])

    isolated = _isolated_checks(plan, stats, kernels_used, errors, cfg.require_bit_exact)
    for c in contracts:
        isolated[c.classname.removeprefix("qverify.")].insert(0, c)
    checks = _merge_checks(plan, result.checks, isolated, cfg.require_bit_exact)
    info = {e: result.engine_info[e] for e in eval_engines}
    info.update({f"bit_exact[{label}]": engine.describe() for label, engine in tested.items()})
    summary = [split.note] + _summary(result) + _names_summary(plan)
    engines = eval_engines + (["target"] if "shift-target" in tested else [])
    return GateOutcome(
        checks,
        plan,
        False,
        key,
        data.name,
        len(data),
        engines,
        info,
        summary,
        x0,
        sample_outputs,
        time.perf_counter() - t0,
    )


def _names_in_order(cfg: Config) -> tuple[str, list[str]] | None:
    """names_from's stems in op order (quantize --names-from), or None."""
    if cfg.names_from is None:
        return None
    from qverify.header import layer_stems

    where = f"{cfg.source}: names_from {cfg.names_from}"
    return where, layer_stems(cfg.names_from, where)


def _device_paths(cfg: Config) -> tuple[str, ...]:
    """The code paths the gate verifies: the host kernel paths, and the emulated core's."""
    from qverify import kernels
    from qverify.mcu.toolchain import CPUS

    names = list(cfg.kernels) if "native" in cfg.engines else []
    if "target" in cfg.engines:
        names.append(CPUS[cfg.target_cpu].path)
    return kernels.paths_of(names) or kernels.PATHS


def _contract_checks(plan: QuantPlan) -> list[Check]:
    """One contract[<function>] check per op: the call meets what Arm's code needs on the plan's paths."""
    from qverify import kernels

    out = []
    for op in plan.ops:
        broken = kernels.violations(op, plan.rounding, plan.paths, plan.cmsis)
        msg = (
            "; ".join(str(v) for v in broken)
            if broken
            else f"{op.function} meets its contract on the {' and '.join(plan.paths)} path"
        )
        out.append(Check(f"qverify.{op.name}", f"contract[{op.function}]", not broken, msg))
    return out


def _isolated(plan: QuantPlan, data, tested: dict, shift) -> tuple[dict, dict, dict]:
    """Per check label and op: PairStats of the engine fed the shift model's input for each op.

    Returns (stats, kernels used per label, label → the TargetRunError that stopped an emulated run).
    """
    from qverify.calibrate import prepare_input
    from qverify.engines import quantize_input
    from qverify.errors import KernelFault
    from qverify.mcu.errors import TargetRunError
    from qverify.metrics import PairStats

    stats = {label: {op.name: PairStats() for op in plan.ops} for label in tested}
    kernels_used = {label: [""] * len(plan.ops) for label in tested}
    errors: dict = {}
    for start in range(0, len(data), COMPARE_CHUNK):
        stop = min(len(data), start + COMPARE_CHUNK)
        xi, _ = quantize_input(plan, prepare_input(np.asarray(data.x[start:stop]), plan, data.name))
        ref = shift.run(xi)
        for label, engine in tested.items():
            if label in errors:
                continue
            try:
                got = engine.run_isolated(xi, ref)
            except (TargetRunError, KernelFault) as exc:  # a hang, fault or overrun fails that op's check
                errors[label] = exc
                continue
            for op in plan.ops:
                stats[label][op.name].update(ref.outputs[op.name], got.outputs[op.name], data.first + start)
            used = getattr(engine, "kernels_used", None) or []
            if len(used) == len(plan.ops):
                kernels_used[label] = list(used)
            del got
        del ref
    return stats, kernels_used, errors


def _isolated_checks(
    plan: QuantPlan, stats: dict, kernels_used: dict, errors: dict, required: bool = True
) -> dict[str, list[Check]]:
    """op name → its bit_exact[<label>] checks (isolated mode). Not required: differences are reported
    and pass; a failed emulator run fails regardless."""
    out: dict[str, list[Check]] = {op.name: [] for op in plan.ops}
    for label, per_op in stats.items():
        tested = label.split("-", 1)[1].split(":")[0]
        error = errors.get(label)
        for i, op in enumerate(plan.ops):
            p = per_op[op.name]
            kernel = kernels_used[label][i]
            via = f" ({kernel})" if kernel else ""
            name = f"bit_exact[{label}]"
            if error is not None:
                culprit = getattr(error, "op", None)
                if culprit in (None, op.name):
                    msg = (
                        f"the {tested} run failed in this op: {error}"
                        if culprit
                        else f"the {tested} run failed: {error}"
                    )
                else:
                    msg = f"not compared: the {tested} run stopped in op {culprit}"
                out[op.name].append(Check(f"qverify.{op.name}", name, False, msg))
                continue
            ok = p.mismatches == 0
            if ok:
                msg = f"{p.total} values bit-exact{via}, each op fed the shift model's input"
                details = ""
            else:
                msg = f"{p.mismatches} of {p.total} values differ (max {p.max_diff} LSB){via}"
                lines = mismatch_lines(p.first, tested)
                hist = sorted(p.histogram.items(), key=lambda kv: (-kv[1], kv[0]))[:8]
                lines.append(
                    f"difference {tested} - shift in LSB (count): " + ", ".join(f"{d:+d} ({n})" for d, n in hist)
                )
                lines.append(
                    f"op {op.name} ({op.kind}) was fed the shift model's input, so the difference starts in this op"
                )
                details = "\n".join(lines)
                if not required:
                    ok, msg = True, msg + _NOT_REQUIRED
            out[op.name].append(Check(f"qverify.{op.name}", name, ok, msg, details))
    return out


def _merge_checks(
    plan: QuantPlan, evaluated: list[Check], isolated: dict[str, list[Check]], require_bit_exact: bool
) -> list[Check]:
    """Per op: the isolated bit-exact checks first, then evaluate's (minus its propagated per-op
    bit_exact); then the model-level checks."""
    by_group: dict[str, list[Check]] = {}
    for c in evaluated:
        if c.classname != MODEL and c.name == "bit_exact[shift-native]":
            continue  # propagated: replaced by the isolated check of the same name
        by_group.setdefault(c.classname, []).append(c)
    checks = []
    for op in plan.ops:
        checks += isolated.get(op.name, []) + by_group.pop(f"qverify.{op.name}", [])
    for rest in by_group.values():
        checks += rest
    first = next((c for c in checks if c.name == "bit_exact[shift-native]" and "values differ" in c.message), None)
    for c in checks:
        if c.classname == MODEL and c.name == "bit_exact_samples" and not c.passed and first is not None:
            first_op = first.classname.removeprefix("qverify.")
            c.details = (
                c.details + "\n" if c.details else ""
            ) + f"first op that differs on its own: {first_op} (see {first_op}::bit_exact[shift-native])"
    if not require_bit_exact:
        for c in checks:
            if c.classname == MODEL and c.name == "bit_exact_samples" and not c.passed:
                c.passed = True
                c.message += _NOT_REQUIRED
    return checks


def _names_summary(plan: QuantPlan) -> list[str]:
    """'macro names (header_map): conv2d → CONV1, ...' when the plan names ops' macros otherwise than after them."""
    if not plan.macro_names:
        return []
    return [
        "macro names (header_map): " + ", ".join(f"{op.name} → {plan.stem(op.name)}" for op in plan.ops if op.weighted)
    ]


def _summary(result) -> list[str]:
    lines = []
    fa = result.accuracy("float")
    for e in result.engines:
        acc = result.accuracy(e)
        d = result.decisions.get(e)
        parts = []
        if acc is not None:
            parts.append(f"accuracy {100 * acc:.2f}%")
        if e != "float" and fa is not None and acc is not None:
            parts.append(f"drop {100 * (fa - acc):.2f} points vs float")
        if e != "float" and d is not None and "float" in result.decisions:
            parts.append(f"{d.flips} decision(s) differ from float")
        if parts:
            lines.append(f"{e}: " + ", ".join(parts))
    return lines


# ---------------------------------------------------------------- outputs


def _extra_texts(outcome: GateOutcome) -> dict[str, bytes]:
    """network.c for the plan (the qv_op_t table built from weights.h's macros, as the target build uses)."""
    from qverify.mcu.codegen import network_c

    return {"network.c": network_c(outcome.plan).encode()}


def write_outputs(outcome: GateOutcome, out_dir: str | Path) -> list[Path]:
    """Write plan.json, plan.npz, weights.h, sample_input_output.h and network.c into out_dir, as one set.

    Everything is rendered before the first file is written; the set is written as qverify.outputs.write_set
    does (a manifest before and after, each file replaced atomically), so a kill at any point leaves the
    previous set or this one, or a mix every reader refuses.

    Raises:
        QVerifyError: the outcome has a failed check (unverified headers are never written).
    """
    from qverify.errors import QVerifyError
    from qverify.workflow import write_plan_and_headers

    if not outcome.ok:
        raise QVerifyError(f"{len(outcome.failures)} check(s) failed: not writing unverified headers")
    return write_plan_and_headers(
        outcome.plan, outcome.sample_input, Path(out_dir), outcome.sample_outputs, extra=_extra_texts(outcome)
    )
