"""`qverify eval`: float, shift and native engines over a whole data set; the report a firmware team reads.

Exit status 0 when every check passes (shift and native bit-exact on every
sample and op; SQNR / accuracy / overflow only when a threshold is given),
1 when a check fails, 2 for bad input. Output files are written only after
everything is computed, each atomically, so bad input leaves none behind.
"""

from __future__ import annotations

import os

from qverify.choices import Kernels, values
from qverify.commands import checks
from qverify.commands.common import (
    EXIT_MISMATCH,
    EXIT_OK,
    contract_failed,
    count_or_range,
    function_args,
    header_args,
    non_negative,
    number,
    percent_points,
    plan_and_header,
    positive,
    read_headers,
    sample_header_failed,
)
from qverify.errors import DataError


def _inputs(args, headers):
    """Plan, graph and data set, all checked before any engine runs; the data before the model loads.

    With --plan the plan is the one quantize wrote (a note says when the evaluated samples include the
    ones it was calibrated on). Otherwise the model (--model, else the demo) is quantized afresh:
    on --calib-data, else, for a user model, on samples of --data apart from the evaluated ones
    (workflow.split_samples; --calib-overlap allows an overlap), else the demo's calibration split."""
    from qverify import dataset
    from qverify.plan import QuantPlan
    from qverify.workflow import graph_for, quantize, split_samples

    e_start, e_count = args.samples or (None, None)
    demo_data = args.data is not None and args.data.startswith("demo:")
    graph = None
    if args.plan:
        for flag in ("calib_data", "calib_samples"):
            if getattr(args, flag) is not None:
                raise DataError(
                    f"--{flag.replace('_', '-')} with --plan {args.plan}: the plan is already "
                    "calibrated (quantize it with --calib-samples, or drop --plan to calibrate here)"
                )
        plan = QuantPlan.load(args.plan)
        demo_model = plan.source.get("model") == "demo"
        source = plan.source.get("data") or ""
        if args.labels and (demo_data or (not args.data and demo_model)):
            raise DataError("--labels goes with --data X.npy: the demo's labels come with its data")
        if not (args.data or demo_model or (source and not source.startswith("demo:"))):
            raise DataError("this plan's model is not the demo: pass --data X.npy (and --labels y.npy for accuracy)")
        first = e_start or 0
        if demo_data:
            data = dataset.demo_dataset(e_count, args.data.split(":", 1)[1], first)
        elif args.data:
            data = dataset.load_dataset(plan, args.data, args.labels, e_count, first)
        elif demo_model:
            data = dataset.demo_dataset(e_count, first=first)
        else:
            print(
                f"note: no --data given: evaluating on the plan's calibration data {source}; "
                "pass --data (and --labels) for held-out data"
            )
            data = dataset.load_dataset(plan, source, args.labels, e_count, first)
        _note_calibration_overlap(plan, data)
    else:
        user = args.model is not None and args.model != "demo"
        if args.labels and (demo_data or not args.data):
            raise DataError("--labels goes with --data X.npy: the demo's labels come with its data")
        if user and not args.data and not args.weights:
            raise DataError(
                f"--model {args.model} is not the demo: pass --data X.npy (evaluated, and calibrating "
                "on other samples unless --calib-data is given)"
            )
        calib_data = args.calib_data or (None if user else "demo:calib")
        c_start, c_count = args.calib_samples or (None, None)
        split = split_samples(
            args.data,
            calib_data,
            (c_start, c_count),
            (e_start, e_count),
            args.calib_overlap,
            names=("--calib-samples", "--samples", "--calib-overlap"),
        )
        print(f"note: {split.note}")
        q = quantize(
            args.model if user else None,
            args.weights,
            split.calib_data,
            split.calib_samples,
            rounding=(headers[0].string("QVERIFY_ROUNDING") if headers[0] else None) or "truncate",
            calib_start=split.calib[0],
        )
        plan, graph = q.plan, q.graph
        first, count = split.eval[0], split.eval_samples
        if args.data is None:
            data = dataset.demo_dataset(count, first=first)
        elif demo_data:
            data = dataset.demo_dataset(count, args.data.split(":", 1)[1], first)
        else:
            data = dataset.load_dataset(plan, args.data, args.labels, count, first)
    if args.plan:
        graph = graph_for(plan) if "float" in args.engines else None  # model fingerprint must match the plan
    return plan, graph, data


def _note_calibration_overlap(plan, data) -> None:
    """A plan evaluated on the very samples it was calibrated on: said (its data digest names the file)."""
    from pathlib import Path

    from qverify.workflow import file_digest

    src = plan.source
    if data.name.startswith("demo:") or not src.get("calib_samples"):
        return
    same = Path(src.get("data") or "").resolve() == Path(data.name).resolve()
    if not same and str(src.get("data_digest", "")).startswith("sha256:"):
        same = file_digest(data.name) == src["data_digest"]
    lo = int(src.get("calib_first", 0))
    hi = lo + int(src["calib_samples"])
    if same and data.first < hi and data.first + len(data) > lo:
        print(
            f"note: this plan was calibrated on samples {lo}:{hi} of {data.name} (its recorded data digest); "
            f"evaluated samples {data.first}:{data.first + len(data)} include them, so accuracy and SQNR partly "
            "measure the calibration set (--samples START:STOP for others)"
        )


def run(args) -> int:
    checks.plan_dir(args.plan)
    checks.header_flags(args)
    checks.data("--data", args.data)
    checks.data("--calib-data", args.calib_data)
    checks.input_file("--labels", args.labels, "a .npy of class indices (N,) or one-hot (N, K)", DataError)
    checks.cmsis_root(args.cmsis_root)
    checks.tree_kernels(args.kernels, args.cmsis_root)
    outputs = {flag: checks.output_file(flag, getattr(args, flag[2:])) for flag in ("--json", "--junit", "--npz")}
    checks.output_dir("--html", args.html)
    # only now the imports: numpy, and TensorFlow once a model is loaded
    from qverify import evaluate as ev
    from qverify import kernels
    from qverify.checks import add_checks
    from qverify.fs import atomic_write
    from qverify.reports.text import format_eval

    args.engines = checks.choices("--engines", args.engines, ev.ENGINE_NAMES)
    if args.html:
        from qverify.reports.html import check_destination

        check_destination(args.html)  # an existing directory must be an old report
    headers = read_headers(args)
    plan, graph, data = _inputs(args, headers)
    plan, header_run = plan_and_header(args, args.functions, base=plan, headers=headers)
    if contract_failed(plan, paths=kernels.paths_of(args.kernels or ev.fastest_kernels(args.cmsis_root))):
        return EXIT_MISMATCH
    engines = ev.make_engines(plan, graph, args.engines, args.kernels, args.threads, args.cmsis_root)
    result = ev.evaluate(
        plan,
        graph,
        data,
        args.engines,
        chunk=args.chunk,
        dump_samples=args.dump_samples,
        kernels=args.kernels,
        built=engines,
    )
    add_checks(result, args.min_sqnr, args.max_accuracy_drop, args.fail_on_overflow)

    # everything is computed: render all outputs in memory, then write each atomically
    files = {}
    if outputs["--json"]:
        from qverify.reports.json import eval_json

        files[outputs["--json"]] = eval_json(result)
    if outputs["--junit"]:
        from qverify.reports.junit import eval_junit

        files[outputs["--junit"]] = eval_junit(result)
    if outputs["--npz"]:
        files[outputs["--npz"]] = _npz_bytes(result, plan)
    text = format_eval(result)
    for path, blob in files.items():
        atomic_write(path, blob)
    if args.html:
        from qverify.reports.html import write_html

        write_html(result, args.html)
    print(text)
    sample_bad = sample_header_failed(header_run, headers[1])
    written = [
        f"{p} (per-op outputs of the first {min(args.dump_samples, result.samples)} samples)"
        if p == outputs["--npz"]
        else str(p)
        for p in files
    ]
    written += [f"{args.html}/index.html"] if args.html else []
    if written:
        print("wrote " + ", ".join(written))
    return EXIT_OK if result.ok and not sample_bad else EXIT_MISMATCH


def _npz_bytes(result, plan) -> bytes:
    import io

    import numpy as np

    arrays = dict(result.dump)
    arrays["op_names"] = np.array([op.name for op in plan.ops])
    arrays["out_frac"] = np.array([op.out_frac for op in plan.ops])
    arrays["input_frac"] = np.array(plan.input_frac)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def add_parser(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="run float, shift and native over a whole data set: accuracy, bit-exactness, per-op SQNR",
        description="Evaluate a plan over a data set in chunks (demo: its 2,000 held-out frames). "
        "Gate: shift and native bit-exact on every sample and op.",
    )
    p.add_argument("--plan", help="plan directory written by quantize (default: the demo's plan)")
    p.add_argument(
        "--data",
        help="input .npy (N, ...) float, or demo:<split> (default: the demo's test split; "
        "for a user plan its calibration data)",
    )
    p.add_argument("--labels", help="labels .npy: (N,) class indices or one-hot (N, K); for a binary model 0/1")
    p.add_argument(
        "--samples",
        type=count_or_range,
        metavar="N|START:STOP",
        help="evaluate N samples (the first N; when --data also calibrates, the N after the calibration "
        "samples) or the range START:STOP (default: all the rest; the demo's 2000)",
    )
    header_args(p)
    p.add_argument(
        "--calib-data",
        help="calibration .npy when the plan is made here (default: --data, on samples "
        "apart from the evaluated ones; the demo: its calibration split)",
    )
    p.add_argument(
        "--calib-samples",
        type=count_or_range,
        metavar="N|START:STOP",
        help="calibrate on the first N samples or START:STOP (default: all of --calib-data; from one "
        "--data file the first half, at most 1000)",
    )
    p.add_argument(
        "--calib-overlap",
        action="store_true",
        help="allow evaluated samples that also calibrated (one --data file); --samples N then counts from sample 0",
    )
    p.add_argument("--engines", default="float,shift,native", help="any of float,shift,native (default all three)")
    p.add_argument(
        "--kernels",
        choices=values(Kernels),
        help="native kernel path (default: fast, the plain kernels with conv on the host's SIMD units; "
        "plain and dsp run the two paths firmware runs)",
    )
    p.add_argument("--threads", type=positive, help="native worker threads (default: one per core)")
    p.add_argument(
        "--cmsis-root",
        default=os.environ.get("QVERIFY_CMSIS_ROOT"),
        help="build arm_* kernels from this CMSIS tree (default $QVERIFY_CMSIS_ROOT, else bundled)",
    )
    p.add_argument("--chunk", type=positive, default=128, help="samples per chunk (memory scales with it; default 128)")
    p.add_argument("--json", help="write the full result as JSON")
    p.add_argument("--junit", help="write JUnit XML: one test case per op and check")
    p.add_argument("--html", help="write an HTML report with plots into this directory")
    p.add_argument("--npz", help="write the first --dump-samples samples' per-op outputs of every engine (.npz)")
    p.add_argument("--dump-samples", type=non_negative, default=16, help="samples kept for --npz (default 16)")
    p.add_argument("--min-sqnr", type=number, help="fail an op whose SQNR vs float is below this (dB)")
    p.add_argument(
        "--max-accuracy-drop", type=percent_points, help="fail when accuracy drops more than this many points"
    )
    p.add_argument("--fail-on-overflow", action="store_true", help="fail any op with an int32 accumulator overflow")
    function_args(p)
    p.set_defaults(func=run)
