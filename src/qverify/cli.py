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

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except QVerifyError as exc:
        print(f"qverify {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
