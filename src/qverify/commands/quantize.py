"""`qverify quantize`: model + data → plan, weights.h, sample_input_output.h, printed tables."""

from __future__ import annotations

from pathlib import Path

from qverify.choices import BITS, CMSIS_RELEASES, CodePath, FinalActivation, FormatRule, Rounding, values
from qverify.commands import checks
from qverify.commands.common import (
    EXIT_MISMATCH,
    EXIT_OK,
    contract_failed,
    function_args,
    model_args,
    paths_arg,
    positive,
    weight_bits_decl,
)
from qverify.errors import ArgumentError


def run(args) -> int:
    checks.model(args.model, args.weights)
    checks.data("--data", args.data)
    checks.output_dir("--out", args.out)
    if args.map and args.names_from:
        raise ArgumentError(f"--map with --names-from {args.names_from}: name the macros one way, not both")
    mapping = checks.macro_map("--map", args.map)
    in_order = checks.header_stems("--names-from", args.names_from)
    # only now the imports that lead to TensorFlow
    from qverify.engines.base import quantize_input
    from qverify.tables import plan_tables
    from qverify.workflow import quantize, write_plan_and_headers

    q = quantize(
        args.model,
        args.weights,
        args.data,
        args.calib_samples,
        args.bits,
        args.rounding,
        args.rule,
        args.fit_accumulator,
        functions=dict(args.functions),
        paths=args.paths,
        final_activation=args.final_activation,
        macro_names=mapping,
        names_in_order=None if in_order is None else (f"--names-from {args.names_from}", in_order),
        cmsis=args.cmsis_version,
        weight_bits=dict(args.weight_bits),
    )
    plan = q.plan
    print(plan_tables(plan))
    if plan.macro_names:
        print(macro_names_line(plan, f"from {args.names_from}, in op order" if in_order else "from --map"))
    if contract_failed(plan):  # headers for calls Arm's code cannot compute are not written
        return EXIT_MISMATCH
    x_int, input_sats = quantize_input(plan, q.x)
    out = Path(args.out)
    write_plan_and_headers(plan, x_int, out)
    if input_sats:
        print(
            f"  input: {input_sats} calibration value(s) saturated at "
            f"Q{plan.bits - 1 - plan.input_frac}.{plan.input_frac}"
        )
    print(
        f"\nwrote {out}/plan.json, plan.npz, weights.h, sample_input_output.h "
        f"({plan.source['calib_samples']} calibration samples)"
    )
    return EXIT_OK


def macro_names_line(plan, how: str) -> str:
    """'macro names (from --map): conv2d → CONV1, conv2d_1 → CONV2, dense → DENSE': every conv/dense op's stem."""
    names = ", ".join(f"{op.name} → {plan.stem(op.name)}" for op in plan.ops if op.weighted)
    return f"macro names ({how}): {names}"


def add_parser(sub) -> None:
    p = sub.add_parser("quantize", help="quantize a model to a plan and write the C headers")
    model_args(p)
    p.add_argument("--bits", type=int, choices=BITS, default=BITS[0], help="storage width (16: q15)")
    p.add_argument(
        "--calib-samples", type=positive, help="use the first N samples of the data (default: all; demo: 1000)"
    )
    p.add_argument(
        "--rounding",
        choices=values(Rounding),
        default=Rounding.TRUNCATE.value,
        help="how the firmware's CMSIS-NN is built: truncate = ARM_NN_TRUNCATE defined; round = CMSIS default",
    )
    p.add_argument(
        "--rule",
        choices=values(FormatRule),
        default=FormatRule.NOTEBOOK.value,
        help="Q-format rule (docs/design.md rule 1)",
    )
    p.add_argument(
        "--no-fit-accumulator",
        dest="fit_accumulator",
        action="store_false",
        help="keep the notebook's formats even where the calibrated output wraps the int32 accumulator "
        "(default: lower f_w there, recorded as an adjustment)",
    )
    function_args(p)
    p.add_argument(
        "--weight-bits",
        type=weight_bits_decl,
        action="append",
        default=[],
        metavar="OP=BITS",
        help="quantize dense OP's weights and bias to 8 bits (q7_t, arm_fully_connected_mat_q7_vec_q15 or its _opt "
        "with --function; half the flash) or 16 (repeatable; default 16, or the declared function's width)",
    )
    p.add_argument(
        "--paths",
        type=paths_arg,
        default=values(CodePath),
        help="the code paths your firmware runs: dsp (ARM_MATH_DSP, Cortex-M4/M7), plain (M0/M3) or "
        "dsp,plain (default): every op's function must meet its contract on each",
    )
    p.add_argument(
        "--final-activation",
        choices=values(FinalActivation),
        default=None,
        help="a final sigmoid/softmax: device = the plan's last op (arm_nn_activations_direct_q15, "
        "arm_softmax_q15), verified bit for bit; float = applied after the plan (default: device "
        "where the firmware's function computes it right in every release it may build: softmax "
        "always, sigmoid from --cmsis-version 5.8.0 on)",
    )
    p.add_argument(
        "--cmsis-version",
        choices=CMSIS_RELEASES,
        default=CMSIS_RELEASES[0],
        help="the oldest CMSIS_5 release your firmware may build (default %(default)s): the kernel "
        "contracts drop conditions of older releases only (e.g. 5.4.0-5.7.0's signed char "
        "positions, their saturated sigmoid/tanh table index)",
    )
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="OP=STEM[,OP=STEM...]",
        help="name op OP's macros STEM_WT, STEM_BIAS, STEM_BIAS_LSHIFT, STEM_OUT_RSHIFT and STEM (e.g. "
        "conv2d=CONV1,dense_2=FC3), so the headers build into firmware written against those names; "
        "recorded in the plan (the other ops keep their names upper-cased)",
    )
    p.add_argument(
        "--names-from",
        metavar="WEIGHTS_H",
        help="take the macro names from an existing header: its STEM_WT stems in file order name the "
        "conv/dense ops in plan order (the counts must agree)",
    )
    p.add_argument("--out", default="qverify_out", help="output directory (default: qverify_out)")
    p.set_defaults(func=run)
