"""`qverify target`: the kernels cross-compiled for a Cortex-M, run under QEMU, compared op by op
with the shift model and the host native kernels; footprint and instruction estimates of the real build.

This module parses the arguments and prints; building, running and collecting is qverify.mcu.run."""

from __future__ import annotations

import os
import sys

from qverify.choices import CodePath, Cpu, Rounding, values
from qverify.commands import checks
from qverify.commands.common import (
    EXIT_MISMATCH,
    EXIT_OK,
    contract_failed,
    function_args,
    header_args,
    load_samples,
    plan_and_header,
    positive_number,
    read_headers,
    sample_args,
    sample_header_failed,
)


def run(args) -> int:
    from qverify.mcu.toolchain import cpu as lookup_cpu  # the standard library only
    from qverify.mcu.toolchain import find_toolchain

    core = lookup_cpu(args.cpu)
    find_toolchain()  # a missing program is what a first run most likely meets: said first
    checks.plan_dir(args.plan)
    checks.header_flags(args)
    checks.data("--data", args.data)
    checks.cmsis_root(args.cmsis_root)
    checks.tree_kernels(args.kernels, args.cmsis_root)
    json_path = checks.output_file("--json", args.json)
    headers = read_headers(args)
    # only now the imports: numpy, and TensorFlow once the demo's plan is quantized afresh
    import json

    from qverify.compare import format_detail, format_table
    from qverify.fs import atomic_write
    from qverify.mcu import report
    from qverify.mcu.errors import TargetRunError
    from qverify.mcu.run import TargetRun, selftest_header

    plan, header_run = plan_and_header(args, args.functions, headers=headers)
    if args.layer:
        plan.op(args.layer)
    rounding = args.rounding or plan.rounding
    if contract_failed(plan, rounding, ("dsp",) if core.dsp else ("plain",)):  # the core's own path
        return EXIT_MISMATCH
    cflags = tuple(args.cflags.split()) if args.cflags else None
    x = load_samples(plan, args.data, args.samples)
    samples = list(args.samples)
    # the image runs network.c's self-test on the plan folder's sample_input_output.h (else one written now)
    selftest = selftest_header(plan, args.plan, x, samples[0])
    session = TargetRun.start(plan, core, rounding, args.kernels, args.cmsis_root, args.timeout, cflags, selftest)
    target = session.target

    try:
        comparisons = session.compare(x, samples, args.mode)
    except TargetRunError as exc:
        # the firmware hung, crashed or refused: a failed check (exit 1), not bad usage
        row = (
            f" (batch row {exc.sample} is data-set sample {samples[exc.sample]})"
            if exc.sample is not None and 0 <= exc.sample < len(samples)
            else ""
        )
        print(f"FAIL: {exc}{row}")
        print(f"qverify target: {exc}{row}", file=sys.stderr)
        return EXIT_MISMATCH

    for i, c in enumerate(comparisons):
        if i:
            print()
        print(f"== target vs {c.reference.split(' ', 1)[0]} ==")
        print(format_table(c))
        if args.layer:
            print()
            print(format_detail(next(op for op in c.ops if op.name == args.layer), args.max_lines))
    ok = all(c.ok for c in comparisons)
    if sample_header_failed(header_run, headers[1]):
        ok = False
    print()
    verdicts = []
    for c in comparisons:
        first = c.first_divergent  # None exactly when c.ok: no op has a mismatch
        verdict = "bit-exact" if first is None else f"DIFFERS at {first.name}"
        verdicts.append(f"{c.reference.split(' ', 1)[0]}: {verdict}")
    selftest_verdict = ""
    if session.selftest is not None:  # a failing self-test fails the run (exit 1), naming the op
        print(session.selftest_line())
        ok = ok and session.selftest.ok
        selftest_verdict = "; self-test: pass" if session.selftest.ok else "; self-test: FAILS"
    print(f"{'PASS' if ok else 'FAIL'}: target {core.name} vs {'; vs '.join(verdicts)}{selftest_verdict}")

    fp, scratch = session.measurements()
    print()
    print("\n".join(report.footprint_lines(plan, fp, scratch, target.image.describe())))
    print()
    print("\n".join(report.op_lines(plan, fp, target.instructions, target.kernels_used, core.name)))
    if target.last_run is not None:
        print(
            f"\nemulator run: {target.last_run.wall_seconds:.2f} s wall for {len(samples)} sample(s); "
            f"image {'reused from cache' if target.image.cached else f'built in {target.image.build_seconds:.1f} s'} "
            f"({target.image.elf})"
        )

    if json_path:
        atomic_write(json_path, json.dumps(session.to_dict(comparisons, fp, scratch), indent=1).encode())
    return EXIT_OK if ok else EXIT_MISMATCH


def add_parser(sub) -> None:
    p = sub.add_parser(
        "target",
        help="cross-compile the kernels for a Cortex-M, run them under QEMU and compare "
        "every op with the shift model and the host kernels",
    )
    p.add_argument("--plan", help="plan directory written by quantize (default: the demo's plan)")
    p.add_argument(
        "--data", help="input .npy (default: the data the plan was calibrated on); with --model it also calibrates"
    )
    header_args(p)
    p.add_argument(
        "--cpu",
        choices=values(Cpu),
        default=Cpu.CORTEX_M4.value,
        help="core and QEMU board: cortex-m4 (MPS2 AN386, DSP path; default), cortex-m7 (AN500, DSP), "
        "cortex-m3 (AN385, plain path)",
    )
    from qverify.commands.compare import detail_args

    detail_args(p)  # --layer, --max-lines
    sample_args(p, 8)
    p.add_argument(
        "--rounding",
        choices=values(Rounding),
        help="how the firmware (and the host kernels) are built (default: the plan's rounding)",
    )
    function_args(p)
    p.add_argument(
        "--kernels",
        choices=values(CodePath),
        help="host native kernels to compare with (default: the target core's path)",
    )
    p.add_argument(
        "--cmsis-root",
        default=os.environ.get("QVERIFY_CMSIS_ROOT"),
        help="build arm_* kernels from this CMSIS tree (default $QVERIFY_CMSIS_ROOT, else bundled)",
    )
    p.add_argument(
        "--timeout",
        type=positive_number,
        help="seconds the emulator may run before it is killed (default: from the plan's size)",
    )
    p.add_argument("--cflags", help="cross-compiler optimisation flags (default '-O2 -fwrapv')")
    p.add_argument("--json", help="also write comparisons, footprint and instruction counts as JSON to this file")
    p.set_defaults(func=run)
