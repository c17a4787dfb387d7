"""`qverify diff-header`: the weights.h a firmware flashes against the model's plan, op by op."""

from __future__ import annotations

from qverify.choices import FormatRule, Rounding, values
from qverify.commands import checks
from qverify.commands.common import EXIT_MISMATCH, EXIT_OK, function_args, model_args, positive, stem_decl
from qverify.errors import ArgumentError


def run(args) -> int:
    checks.input_file("header", args.header, "a weights.h written by qverify, the notebook or by hand")
    checks.input_file("--sample", args.sample, "a sample_input_output.h beside the weights.h")
    checks.plan_dir(args.plan)
    if args.plan and (args.model or args.weights or args.data):
        raise ArgumentError(f"--plan {args.plan} with --model/--weights/--data: give the plan or the model, not both")
    checks.model(args.model, args.weights)
    checks.data("--data", args.data)
    json_path = checks.output_file("--json", args.json)
    import json

    from qverify.cheader import read_header
    from qverify.fs import atomic_write
    from qverify.header import read_weights
    from qverify.header_diff import diff_weights, format_diff
    from qverify.plan import QuantPlan

    header = read_header(args.header)
    header.check()  # a malformed macro fails now, not after the model has been quantized
    sample = read_header(args.sample) if args.sample else None
    if sample is not None and sample.has("INPUT_DATA"):
        sample.array("INPUT_DATA")
    if args.plan:
        from qverify import kernels

        plan = QuantPlan.load(args.plan)
        kernels.assign(plan, dict(args.functions))  # the header's order and width are its functions'
    else:
        from qverify.workflow import quantize  # TensorFlow from here on

        plan = quantize(
            args.model,
            args.weights,
            args.data,
            args.calib_samples,
            rounding=args.rounding,
            rule=args.rule,
            fit_accumulator=args.fit_accumulator,
            functions=dict(args.functions),
        ).plan
    weights = read_weights(header, plan, dict(args.map))
    diffs = {"weights": diff_weights(weights, plan)}
    if sample is not None:
        from qverify.engines.shift import ShiftEngine
        from qverify.header import read_sample
        from qverify.header_diff import diff_sample

        read = read_sample(sample, plan, {layer.op: layer.stem for layer in weights.layers})
        other = "round" if plan.rounding == "truncate" else "truncate"
        diffs["sample"] = diff_sample(read, plan, ShiftEngine(plan), ShiftEngine(plan, rounding=other))
    print("\n\n".join(format_diff(d) for d in diffs.values()))
    if json_path:
        report = diffs["weights"].to_dict() | ({"sample": diffs["sample"].to_dict()} if sample is not None else {})
        atomic_write(json_path, json.dumps(report, indent=1).encode())
    return EXIT_OK if all(d.identical for d in diffs.values()) else EXIT_MISMATCH


def add_parser(sub) -> None:
    p = sub.add_parser(
        "diff-header",
        help="diff the weights.h your firmware flashes against the model's plan",
        description="Exit status: 0 identical, 1 different, 2 bad input (a malformed header included).",
    )
    p.add_argument("header", help="the weights.h to check (qverify's, the notebook's or hand-written)")
    p.add_argument(
        "--plan", help="plan directory written by quantize (default: quantize --model/--data afresh, or the demo)"
    )
    model_args(p)
    p.add_argument("--calib-samples", type=positive, help="as quantize: the first N samples of the data")
    p.add_argument("--rounding", choices=values(Rounding), default=Rounding.TRUNCATE.value, help="as quantize")
    p.add_argument("--rule", choices=values(FormatRule), default=FormatRule.NOTEBOOK.value, help="as quantize")
    p.add_argument("--no-fit-accumulator", dest="fit_accumulator", action="store_false", help="as quantize")
    function_args(p)  # an _opt function's header is interleaved, a q7 one's holds q7 values
    p.add_argument(
        "--map",
        type=stem_decl,
        action="append",
        default=[],
        metavar="OP=STEM",
        help="the header's macro stem of an op whose name differs (repeatable), e.g. conv2d=CONV1; "
        "when no stem is named like the plan's ops, they are matched in order",
    )
    p.add_argument(
        "--sample",
        help="also check this sample_input_output.h: each conv/dense output against the plan's "
        "shift model fed the header's own input to that op (loads TensorFlow)",
    )
    p.add_argument("--json", help="also write the diff as JSON to this file")
    p.set_defaults(func=run)
