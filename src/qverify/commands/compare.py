"""`qverify compare`: two engines, same inputs, every op compared bit for bit."""

from __future__ import annotations

import os

from qverify.choices import Kernels, Rounding, values
from qverify.commands import checks
from qverify.commands.common import (
    EXIT_MISMATCH,
    EXIT_OK,
    contract_failed,
    function_args,
    header_args,
    load_samples,
    plan_and_header,
    positive,
    read_headers,
    sample_args,
    sample_header_failed,
)
from qverify.errors import ArgumentError


def run(args) -> int:
    if args.sanitize and args.kernels == "fast":
        raise ArgumentError("--sanitize runs the kernels firmware compiles: use --kernels dsp or --kernels plain")
    checks.plan_dir(args.plan)
    checks.header_flags(args)
    checks.data("--data", args.data)
    checks.cmsis_root(args.cmsis_root)
    json_path = checks.output_file("--json", args.json)
    headers = read_headers(args)
    # only now the imports: numpy, and TensorFlow once the demo's plan is quantized afresh
    import json

    from qverify import kernels
    from qverify.compare import format_detail, format_table, run_compare
    from qverify.engines import ENGINES, make_engine
    from qverify.fs import atomic_write

    names = checks.choices("--engines", args.engines, ENGINES, count=2)
    if "native" in names:
        checks.tree_kernels(args.kernels, args.cmsis_root)
    plan, header_run = plan_and_header(args, args.functions, headers=headers)
    if args.layer:
        plan.op(args.layer)  # unknown name: clear error before any work
    if contract_failed(plan, args.rounding, kernels.paths_of(args.kernels)):
        return EXIT_MISMATCH
    options = {
        "shift": {},
        "native": {"kernels": args.kernels, "rounding": args.rounding, "cmsis_root": args.cmsis_root},
    }
    if args.sanitize:
        from qverify.engines.sanitized import SanitizedEngine

        engines = [
            make_engine(n, plan, **options.get(n, {})) if n != "native" else SanitizedEngine(plan, **options["native"])
            for n in names
        ]
    else:
        engines = [make_engine(n, plan, **options.get(n, {})) for n in names]
    x = load_samples(plan, args.data, args.samples)
    result = run_compare(plan, engines[0], engines[1], x, args.samples, args.mode)
    print(format_table(result))
    if args.layer:
        print()
        print(format_detail(next(op for op in result.ops if op.name == args.layer), args.max_lines))
    sample_bad = sample_header_failed(header_run, headers[1])
    if json_path:
        report = result.to_dict()
        if header_run is not None:
            report["header"] = {
                "path": header_run.weights.path,
                "plan_hash": plan.hash,
                "model_plan_hash": header_run.base.hash,
                "diff": header_run.diff.to_dict(),
            }
        atomic_write(json_path, json.dumps(report, indent=1).encode())
    return EXIT_OK if result.ok and not sample_bad else EXIT_MISMATCH


def detail_args(p) -> None:
    """--layer and --max-lines (compare and target)."""
    p.add_argument(
        "--layer",
        help="detail of this op: the pattern its mismatches make, where they are (per sample, "
        "row, column, channel), the first ones and the LSB-difference histogram",
    )
    p.add_argument(
        "--max-lines",
        type=positive,
        default=40,
        metavar="N",
        help="lines the --layer detail may take (default 40, a screen; at least 12)",
    )


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="run two engines on the same inputs and compare every op bit for bit")
    p.add_argument("--plan", help="plan directory written by quantize (default: the demo's plan)")
    p.add_argument(
        "--data", help="input .npy (default: the data the plan was calibrated on); with --model it also calibrates"
    )
    header_args(p)
    detail_args(p)
    sample_args(p, 64)
    p.add_argument("--engines", default="shift,native", help="reference,tested (default shift,native)")
    p.add_argument(
        "--kernels",
        choices=values(Kernels),
        default=Kernels.DSP.value,
        help="native kernel path (default dsp; fast: plain with conv on the host's SIMD units)",
    )
    p.add_argument(
        "--rounding", choices=values(Rounding), help="how the native kernels are built (default: the plan's rounding)"
    )
    p.add_argument(
        "--cmsis-root",
        default=os.environ.get("QVERIFY_CMSIS_ROOT"),
        help="build arm_* kernels from this CMSIS tree (default $QVERIFY_CMSIS_ROOT, else bundled)",
    )
    function_args(p)
    p.add_argument(
        "--sanitize",
        action="store_true",
        help="run the native kernels built with AddressSanitizer + UndefinedBehaviorSanitizer (exact-size "
        "buffers per op, in a child process): any read or write past a buffer fails that op",
    )
    p.add_argument("--json", help="also write the comparison as JSON to this file")
    p.set_defaults(func=run)
