"""`qverify quantize`: model + data → plan, weights.h, sample_input_output.h, printed tables."""

from __future__ import annotations

from pathlib import Path

from qverify.choices import BITS, CodePath, FormatRule, Rounding, values
from qverify.commands import checks
from qverify.commands.common import (
    EXIT_MISMATCH,
    EXIT_OK,
    contract_failed,
    function_args,
    model_args,
    paths_arg,
    positive,
)


def run(args) -> int:
    checks.model(args.model, args.weights)
    checks.data("--data", args.data)
    checks.output_dir("--out", args.out)
    # only now the imports that lead to TensorFlow
    from qverify.engines.base import quantize_input
    from qverify.tables import plan_tables
    from qverify.workflow import quantize, write_plan_and_headers

    q = quantize(args.model, args.weights, args.data, args.calib_samples, args.bits, args.rounding, args.rule,
                 args.fit_accumulator, functions=dict(args.functions), paths=args.paths)
    plan = q.plan
    print(plan_tables(plan))
    if contract_failed(plan):  # headers for calls Arm's code cannot compute are not written
        return EXIT_MISMATCH
    x_int, input_sats = quantize_input(plan, q.x)
    out = Path(args.out)
    write_plan_and_headers(plan, x_int, out)
    if input_sats:
        print(f"  input: {input_sats} calibration value(s) saturated at "
              f"Q{plan.bits - 1 - plan.input_frac}.{plan.input_frac}")
    print(f"\nwrote {out}/plan.json, plan.npz, weights.h, sample_input_output.h "
          f"({plan.source['calib_samples']} calibration samples)")
    return EXIT_OK


def add_parser(sub) -> None:
    p = sub.add_parser("quantize", help="quantize a model to a plan and write the C headers")
    model_args(p)
    p.add_argument("--bits", type=int, choices=BITS, default=BITS[0], help="storage width (16: q15)")
    p.add_argument("--calib-samples", type=positive,
                   help="use the first N samples of the data (default: all; demo: 1000)")
    p.add_argument("--rounding", choices=values(Rounding), default=Rounding.TRUNCATE.value,
                   help="how the firmware's CMSIS-NN is built: truncate = ARM_NN_TRUNCATE defined; "
                        "round = CMSIS default")
    p.add_argument("--rule", choices=values(FormatRule), default=FormatRule.NOTEBOOK.value,
                   help="Q-format rule (docs/design.md rule 1)")
    p.add_argument("--no-fit-accumulator", dest="fit_accumulator", action="store_false",
                   help="keep the notebook's formats even where the calibrated output wraps the int32 accumulator "
                        "(default: lower f_w there, recorded as an adjustment)")
    function_args(p)
    p.add_argument("--paths", type=paths_arg, default=values(CodePath),
                   help="the code paths your firmware runs: dsp (ARM_MATH_DSP, Cortex-M4/M7), plain (M0/M3) or "
                        "dsp,plain (default): every op's function must meet its contract on each")
    p.add_argument("--out", default="qverify_out", help="output directory (default: qverify_out)")
    p.set_defaults(func=run)
