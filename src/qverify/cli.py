"""`python -m qverify <command>`: quantize, demo, compare.

Every QVerifyError becomes one line on stderr and exit status 2; a run that
finds a mismatch exits 1; success exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from qverify import __version__  # noqa: E402
from qverify.errors import QVerifyError  # noqa: E402

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE = 0, 1, 2


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be a positive integer")
    return value


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="saved model (.keras/.h5) or module:Factory / file.py:Factory (default: the demo)")
    p.add_argument("--weights", help="weights file loaded into the model (the notebook's tf.h5)")
    p.add_argument("--data", help="calibration data .npy, (N, L), (N, L, 1), (N, L, 1, 1) or the model's input shape (default: the demo's)")


def cmd_quantize(args) -> int:
    from qverify.engines.base import quantize_input
    from qverify.engines.shift import ShiftEngine
    from qverify.export import sample_header, weights_header
    from qverify.plan import atomic_write
    from qverify.tables import plan_tables
    from qverify.workflow import quantize

    q = quantize(args.model, args.weights, args.data, args.calib_samples, args.bits, args.rounding, args.rule)
    plan = q.plan
    x_int, input_sats = quantize_input(plan, q.x)
    sample = ShiftEngine(plan).run(x_int[:1])
    # Everything is computed before the first byte is written: a failure leaves no partial output.
    texts = {"weights.h": weights_header(plan),
             "sample_input_output.h": sample_header(plan, x_int[0], {k: v[0] for k, v in sample.outputs.items()})}
    out = Path(args.out)
    plan.save(out)
    for name, text in texts.items():
        atomic_write(out / name, text.encode())
    print(plan_tables(plan))
    if input_sats:
        print(f"  input: {input_sats} calibration value(s) saturated at Q{plan.bits - 1 - plan.input_frac}.{plan.input_frac}")
    print(f"\nwrote {out}/plan.json, plan.npz, weights.h, sample_input_output.h "
          f"({plan.source['calib_samples']} calibration samples)")
    return EXIT_OK


def cmd_demo(args) -> int:
    from qverify import demo

    out = Path(args.out)
    demo.write_demo(out, args.samples, args.split)
    print(f"wrote {out}/model.keras, input.npy, target.npy ({args.samples} samples, split '{args.split}')")
    print(demo.DESCRIPTION)
    return EXIT_OK


def _sample_range(text: str) -> list[int]:
    try:
        if ":" in text:
            lo, hi = (int(v) for v in text.split(":", 1))
        else:
            lo = int(text)
            hi = lo + 1
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a sample index or a range like 0:64") from None
    if lo < 0 or hi <= lo:
        raise argparse.ArgumentTypeError(f"sample range {text} is empty or negative; expected START:STOP with 0 <= START < STOP")
    return list(range(lo, hi))


def load_plan(plan_dir: str | None):
    """The plan in plan_dir, or the demo's plan made afresh."""
    from qverify.plan import QuantPlan
    from qverify.workflow import quantize

    return QuantPlan.load(plan_dir) if plan_dir else quantize().plan


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


def cmd_compare(args) -> int:
    import json

    from qverify.compare import format_detail, format_table, run_compare
    from qverify.engines import make_engine
    from qverify.plan import atomic_write

    plan = load_plan(args.plan)
    if args.layer:
        plan.op(args.layer)  # unknown name: clear error before any work
    names = [e.strip() for e in args.engines.split(",")]
    if len(names) != 2 or names[0] == names[1]:
        raise QVerifyError(f"--engines takes two different engines like shift,native; got '{args.engines}'")
    options = {"shift": {}, "native": {"kernels": args.kernels, "rounding": args.rounding, "cmsis_root": args.cmsis_root}}
    engines = [make_engine(n, plan, **options.get(n, {})) for n in names]
    x = load_samples(plan, args.data, args.samples)
    result = run_compare(plan, engines[0], engines[1], x, args.samples, args.mode)
    print(format_table(result))
    if args.layer:
        print()
        print(format_detail(next(op for op in result.ops if op.name == args.layer)))
    if args.json:
        atomic_write(Path(args.json), json.dumps(result.to_dict(), indent=1).encode())
    return EXIT_OK if result.ok else EXIT_MISMATCH


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qverify", description="Verify CMSIS-NN q15 networks bit for bit.")
    parser.add_argument("--version", action="version", version=f"qverify {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("quantize", help="quantize a model to a plan and write the C headers")
    _model_args(p)
    p.add_argument("--bits", type=int, default=16, help="storage width (16: q15)")
    p.add_argument("--calib-samples", type=_positive, help="use the first N samples of the data (default: all; demo: 1000)")
    p.add_argument("--rounding", choices=("truncate", "round"), default="truncate",
                   help="how the firmware's CMSIS-NN is built: truncate = ARM_NN_TRUNCATE defined; round = CMSIS default")
    p.add_argument("--rule", choices=("notebook", "tight"), default="notebook", help="Q-format rule (DESIGN.md rule 1)")
    p.add_argument("--out", default="qverify_out", help="output directory (default: qverify_out)")
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser("demo", help="write the demo model and data as plain files")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--samples", type=_positive, default=1000, help="number of samples (default 1000)")
    p.add_argument("--split", choices=("train", "calib", "test"), default="test", help="which synthetic split")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("compare", help="run two engines on the same inputs and compare every op bit for bit")
    p.add_argument("--plan", help="plan directory written by quantize (default: the demo's plan)")
    p.add_argument("--data", help="input .npy (default: the data the plan was calibrated on)")
    p.add_argument("--layer", help="show first mismatches and the LSB-difference histogram of this op")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--sample", dest="samples", type=_sample_range, help="one sample index")
    group.add_argument("--samples", dest="samples", type=_sample_range, help="a range START:STOP (default 0:64)")
    p.add_argument("--mode", choices=("propagated", "isolated"), default="propagated",
                   help="isolated feeds every op the reference's input, naming the first divergent op")
    p.add_argument("--engines", default="shift,native", help="reference,tested (default shift,native)")
    p.add_argument("--kernels", choices=("dsp", "plain"), default="dsp", help="native kernel path (default dsp)")
    p.add_argument("--rounding", choices=("truncate", "round"),
                   help="how the native kernels are built (default: the plan's rounding)")
    p.add_argument("--cmsis-root", default=os.environ.get("QVERIFY_CMSIS_ROOT"),
                   help="build arm_* kernels from this CMSIS tree (default $QVERIFY_CMSIS_ROOT, else bundled)")
    p.add_argument("--json", help="also write the comparison as JSON to this file")
    p.set_defaults(func=cmd_compare, samples=list(range(64)))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except QVerifyError as exc:
        print(f"qverify {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
