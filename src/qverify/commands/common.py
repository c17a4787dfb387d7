"""Argument types and loaders shared by the commands."""

from __future__ import annotations

import argparse
import math

from qverify.choices import CodePath, Mode, values

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE = 0, 1, 2


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be a positive integer")
    return value


def non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return value


def number(text: str) -> float:
    """A finite float: argparse's float takes 'nan' and 'inf', which no threshold means."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number")
    return value


def positive_number(text: str) -> float:
    value = number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a number above 0")
    return value


def percent_points(text: str) -> float:
    """An accuracy drop in percentage points, 0 to 100 (as the gate's max_accuracy_drop)."""
    value = number(text)
    if not 0.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError(f"{text} is not in percentage points (0 to 100)")
    return value


def samples_arg(text: str) -> list[int]:
    """--samples: N (the first N, as eval, demo and the gate's `samples` read it) or START:STOP."""
    if ":" in text:
        return sample_range(text)
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a sample count N or a range like 0:64") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"{n} samples: expected N > 0 (the first N) or START:STOP")
    return list(range(n))


def sample_range(text: str) -> list[int]:
    """--sample: one index; also parses START:STOP."""
    try:
        if ":" in text:
            lo, hi = (int(v) for v in text.split(":", 1))
        else:
            lo = int(text)
            hi = lo + 1
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a sample index or a range like 0:64") from None
    if lo < 0 or hi <= lo:
        raise argparse.ArgumentTypeError(
            f"sample range {text} is empty or negative; expected START:STOP with 0 <= START < STOP"
        )
    return list(range(lo, hi))


def sample_args(p: argparse.ArgumentParser, default: int) -> None:
    """--sample / --samples (default: the first `default` samples) and --mode, as compare and target take them."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--sample", dest="samples", type=sample_range, help="one sample index")
    group.add_argument(
        "--samples",
        dest="samples",
        type=samples_arg,
        help=f"the first N samples, or a range START:STOP (default 0:{default})",
    )
    p.add_argument(
        "--mode",
        choices=values(Mode),
        default=Mode.PROPAGATED.value,
        help="isolated feeds every op the reference's input, naming the first divergent op",
    )
    p.set_defaults(samples=list(range(default)))


def model_args(p: argparse.ArgumentParser) -> None:
    """--model, --weights, --data."""
    p.add_argument("--model", help="saved model (.keras/.h5) or module:Factory / file.py:Factory (default: the demo)")
    p.add_argument("--weights", help="weights file loaded into the model (the notebook's tf.h5)")
    p.add_argument(
        "--data",
        help="calibration data .npy, (N, L), (N, L, 1), (N, L, 1, 1) or the model's input shape (default: the demo's)",
    )


def function_decl(text: str) -> tuple[str, str]:
    """--function OP=FUNCTION: the C function the firmware calls for one op."""
    op, sep, fn = text.partition("=")
    if not sep or not op.strip() or not fn.strip():
        raise argparse.ArgumentTypeError(f"'{text}' is not OP=FUNCTION, e.g. conv2=arm_convolve_HWC_q15_basic")
    return op.strip(), fn.strip()


def weight_bits_decl(text: str) -> tuple[str, int]:
    """--weight-bits OP=BITS: the width of one dense op's weights and bias."""
    op, sep, bits = text.partition("=")
    if not sep or not op.strip() or bits.strip() not in ("8", "16"):
        raise argparse.ArgumentTypeError(f"'{text}' is not OP=8 or OP=16, e.g. fc1=8")
    return op.strip(), int(bits)


def function_args(p: argparse.ArgumentParser) -> None:
    """--function OP=FUNCTION (repeatable), as [tool.qverify.functions] in the gate's configuration.

    (Not "kernels": that key already names the host kernel paths, and TOML cannot hold both a
    `kernels` list and a `kernels` table.)"""
    p.add_argument(
        "--function",
        dest="functions",
        type=function_decl,
        action="append",
        default=[],
        metavar="OP=FUNCTION",
        help="the function your firmware calls for OP (repeatable), e.g. conv2=arm_convolve_HWC_q15_basic; "
        "qverify verifies exactly that call, contract included (default: the fastest legal one)",
    )


def load_plan(plan_dir: str | None, declared: list[tuple[str, str]] | dict | None = None):
    """The plan in plan_dir, or the demo's plan made afresh, with the declared functions set."""
    from qverify import kernels
    from qverify.plan import QuantPlan
    from qverify.workflow import quantize

    plan = QuantPlan.load(plan_dir) if plan_dir else quantize().plan
    kernels.assign(plan, dict(declared or {}))
    return plan


def contract_failed(plan, rounding: str | None = None, paths: tuple[str, ...] | None = None) -> bool:
    """Check every op's call against its function's contract on the code paths being verified (default the
    plan's), before anything runs; print each broken one."""
    from qverify import kernels

    paths = tuple(paths or plan.paths)
    found = kernels.check_plan(plan, rounding, paths)
    for v in found:
        print(f"contract: {v}")
    if found:
        print(
            f"FAIL: {len(found)} kernel contract violation(s) on the {' and '.join(paths)} path; nothing was "
            "run (Arm's code would not compute what the shift model does)"
        )
    return bool(found)


def paths_arg(text: str) -> tuple[str, ...]:
    """--paths dsp,plain: the code paths the firmware runs."""
    names = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    if not names or any(n not in values(CodePath) for n in names):
        raise argparse.ArgumentTypeError(f"'{text}': expected dsp, plain or dsp,plain")
    return names


def load_samples(plan, data: str | None, samples: list[int]):
    """Quantized input rows `samples` of the data (default: the data the plan was calibrated on)."""
    from qverify.engines.base import quantize_input
    from qverify.errors import DataError
    from qverify.workflow import load_inputs

    data = data or plan.source.get("data")
    x = load_inputs(plan, data, samples[-1] + 1 if (data or "").startswith("demo:") else None)
    if samples[-1] >= len(x):
        raise DataError(f"sample {samples[-1]} requested but the data has {len(x)} samples")
    return quantize_input(plan, x[samples])[0]


def count_or_range(text: str) -> tuple[int | None, int]:
    """N (start where the command says: the first N, or right after the calibration samples) or START:STOP,
    as (start or None, count)."""
    if ":" in text:
        r = sample_range(text)
        return r[0], len(r)
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a sample count N or a range like 0:64") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"{n} samples: expected N > 0 or START:STOP")
    return None, n


def stem_decl(text: str) -> tuple[str, str]:
    """--map OP=STEM: the header's macro stem of one conv/dense op."""
    op, sep, stem = text.partition("=")
    if not sep or not op.strip() or not stem.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"'{text}' is not OP=STEM, e.g. conv2d=CONV1 (for CONV1_WT, CONV1_BIAS ...)")
    return op.strip(), stem.strip()


def header_args(p: argparse.ArgumentParser, model: bool = True) -> None:
    """--header, --sample-header, --map (and --model, --weights): run a weights.h as the plan."""

    if model:
        p.add_argument(
            "--model",
            help="saved model (.keras/.h5) or module:Factory / file.py:Factory, quantized "
            "afresh on --data (default: the demo); with --header, its geometry",
        )
        p.add_argument("--weights", help="weights file loaded into the model (the notebook's tf.h5)")
    p.add_argument(
        "--header",
        metavar="WEIGHTS_H",
        help="run this weights.h: its integers and shifts become the plan, on the geometry, formats and "
        "functions of the model's plan (--plan, or --model quantized afresh, or the demo)",
    )
    p.add_argument(
        "--sample-header",
        metavar="SAMPLE_H",
        help="with --header: check this sample_input_output.h (INPUT_DATA and each conv/dense output) "
        "against what the header computes; a difference fails, naming the op",
    )
    p.add_argument(
        "--map",
        type=stem_decl,
        action="append",
        default=[],
        metavar="OP=STEM",
        help="with --header: the header's macro stem of an op whose name differs (repeatable), e.g. "
        "conv2d=CONV1; when no stem is named like the plan's ops, they are matched in order",
    )


def read_headers(args):
    """The --header and --sample-header files scanned (a malformed macro fails here, before any model loads)."""
    from qverify.cheader import read_header

    weights = sample = None
    if getattr(args, "header", None):
        weights = read_header(args.header)
        weights.check()
    if getattr(args, "sample_header", None):
        sample = read_header(args.sample_header)
        sample.array("INPUT_DATA")
    return weights, sample


def plan_and_header(args, declared, base=None, headers=None):
    """(the plan to run, the HeaderPlan or None): --header's integers on the model's plan (`base`, else --plan,
    else --model quantized afresh on --data, else the demo's), with the declared functions set; the lines
    saying where the plan came from are printed."""
    from qverify import kernels
    from qverify.header_plan import plan_from_header

    weights, _ = headers if headers is not None else read_headers(args)
    if base is None:
        from qverify.plan import QuantPlan

        rounding = (weights.string("QVERIFY_ROUNDING") if weights is not None else None) or "truncate"
        if args.plan:
            base = QuantPlan.load(args.plan)
        else:
            from qverify.workflow import quantize

            base = quantize(  # a declared q7 function quantizes its op to 8 bits, as the header holds it
                getattr(args, "model", None),
                getattr(args, "weights", None),
                args.data,
                rounding=rounding,
                functions=dict(declared or {}),
            ).plan
    kernels.assign(base, dict(declared or {}))
    if weights is None:
        return base, None
    run = plan_from_header(weights, base, dict(args.map))
    kernels.assign(run.plan, dict(declared or {}))
    print("\n".join(run.lines()))
    print()
    return run.plan, run


def sample_header_failed(run, sample) -> bool:
    """--sample-header against the header's own plan (diff-header's check): print the table; True when an op's
    expected output is not what the header computes (a FAIL line names the first)."""
    from qverify.engines.shift import ShiftEngine
    from qverify.header import read_sample
    from qverify.header_diff import diff_sample, format_diff

    if run is None or sample is None:
        return False
    plan = run.plan
    other = "round" if plan.rounding == "truncate" else "truncate"
    diff = diff_sample(read_sample(sample, plan, run.stems), plan, ShiftEngine(plan), ShiftEngine(plan, rounding=other))
    print()
    print(format_diff(diff))
    bad = [d for d in diff.ops if d.parts]
    if bad:
        causes = "; ".join(p.cause for p in bad[0].parts)
        print(
            f"FAIL: {sample.path}: {bad[0].op} ({bad[0].stem}) is not what the header computes from its input to "
            f"that op ({causes})" + (f"; {len(bad) - 1} more op(s) differ" if len(bad) > 1 else "")
        )
    return bool(bad)
