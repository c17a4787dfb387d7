"""`qverify eval`: float, shift and native engines over a whole data set; the report a firmware team reads.

Exit status 0 when every check passes (shift and native bit-exact on every
sample and op; SQNR / accuracy / overflow only when a threshold is given),
1 when a check fails, 2 for bad input. Output files are written only after
everything is computed, each atomically, so bad input leaves none behind.
"""

from __future__ import annotations

import os
from pathlib import Path

from qverify.commands.common import EXIT_MISMATCH, EXIT_OK, positive
from qverify.errors import DataError, QVerifyError


def _out_path(path: str | None, flag: str) -> Path | None:
    if path is None:
        return None
    p = Path(path)
    if not p.parent.resolve().is_dir():
        raise QVerifyError(f"{flag} {path}: directory {p.parent} does not exist")
    if p.is_dir():
        raise QVerifyError(f"{flag} {path} is a directory; give a file name")
    return p


def _inputs(args):
    """Plan, graph and data set, all checked before any engine runs."""
    from qverify import evaluate as ev
    from qverify.plan import QuantPlan
    from qverify.workflow import graph_for, quantize

    if args.plan:
        plan = QuantPlan.load(args.plan)
        graph = graph_for(plan) if "float" in args.engines else None  # model fingerprint must match the plan
    else:
        q = quantize()
        plan, graph = q.plan, q.graph
    demo_data = args.data is not None and args.data.startswith("demo:")
    source = plan.source.get("data") or ""
    if args.labels and (demo_data or (not args.data and plan.source.get("model") == "demo")):
        raise DataError("--labels goes with --data X.npy: the demo's labels come with its data")
    if demo_data:
        data = ev.demo_dataset(args.samples, args.data.split(":", 1)[1])
    elif args.data:
        data = ev.load_dataset(plan, args.data, args.labels, args.samples)
    elif plan.source.get("model") == "demo":
        data = ev.demo_dataset(args.samples)
    elif source and not source.startswith("demo:"):
        print(f"note: no --data given: evaluating on the plan's calibration data {source}; "
              "pass --data (and --labels) for held-out data")
        data = ev.load_dataset(plan, source, args.labels, args.samples)
    else:
        raise DataError("this plan's model is not the demo: pass --data X.npy (and --labels y.npy for accuracy)")
    return plan, graph, data


def run(args) -> int:
    from qverify import evaluate as ev
    from qverify.plan import atomic_write
    from qverify.reports.text import format_eval

    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    ev.check_engines(args.engines)
    if args.dump_samples < 0:
        raise QVerifyError(f"--dump-samples {args.dump_samples} must be 0 or more")
    outputs = {flag: _out_path(getattr(args, key), flag)
               for flag, key in (("--json", "json"), ("--junit", "junit"), ("--npz", "npz"))}
    if args.html:
        from qverify.reports.html import check_destination

        check_destination(args.html)
    plan, graph, data = _inputs(args)
    engines = ev.make_engines(plan, graph, args.engines, args.kernels, args.threads, args.cmsis_root)
    result = ev.evaluate(plan, graph, data, args.engines, chunk=args.chunk, dump_samples=args.dump_samples,
                         kernels=args.kernels, built=engines)
    ev.add_checks(result, args.min_sqnr, args.max_accuracy_drop, args.fail_on_overflow)

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
    written = [f"{p} (per-op outputs of the first {min(args.dump_samples, result.samples)} samples)"
               if p == outputs["--npz"] else str(p) for p in files]
    written += [f"{args.html}/index.html"] if args.html else []
    if written:
        print("wrote " + ", ".join(written))
    return EXIT_OK if result.ok else EXIT_MISMATCH


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
        "eval", help="run float, shift and native over a whole data set: accuracy, bit-exactness, per-op SQNR",
        description="Evaluate a plan over a data set in chunks (demo: its 2,000 held-out frames). "
                    "Gate: shift and native bit-exact on every sample and op.")
    p.add_argument("--plan", help="plan directory written by quantize (default: the demo's plan)")
    p.add_argument("--data", help="input .npy (N, ...) float, or demo:<split> (default: the demo's test split; "
                                  "for a user plan its calibration data)")
    p.add_argument("--labels", help="labels .npy: (N,) class indices or one-hot (N, K); for a binary model 0/1")
    p.add_argument("--samples", type=positive, help="use the first N samples (demo default 2000)")
    p.add_argument("--engines", default="float,shift,native", help="any of float,shift,native (default all three)")
    p.add_argument("--kernels", choices=("fast", "plain", "dsp"),
                   help="native kernel path (default: fast, the plain kernels with conv on the host's SIMD units; "
                        "plain and dsp run the two paths firmware runs)")
    p.add_argument("--threads", type=positive, help="native worker threads (default: one per core)")
    p.add_argument("--cmsis-root", default=os.environ.get("QVERIFY_CMSIS_ROOT"),
                   help="build arm_* kernels from this CMSIS tree (default $QVERIFY_CMSIS_ROOT, else bundled)")
    p.add_argument("--chunk", type=positive, default=128, help="samples per chunk (memory scales with it; default 128)")
    p.add_argument("--json", help="write the full result as JSON")
    p.add_argument("--junit", help="write JUnit XML: one test case per op and check")
    p.add_argument("--html", help="write an HTML report with plots into this directory")
    p.add_argument("--npz", help="write the first --dump-samples samples' per-op outputs of every engine (.npz)")
    p.add_argument("--dump-samples", type=int, default=16, help="samples kept for --npz (default 16)")
    p.add_argument("--min-sqnr", type=float, help="fail an op whose SQNR vs float is below this (dB)")
    p.add_argument("--max-accuracy-drop", type=float, help="fail when accuracy drops more than this many points")
    p.add_argument("--fail-on-overflow", action="store_true", help="fail any op with an int32 accumulator overflow")
    p.set_defaults(func=run)
