"""`qverify report`: a plan's footprint (per-op MACs, flash, activation sizes; the runner's peak RAM)."""

from __future__ import annotations

from qverify.commands import checks
from qverify.commands.common import EXIT_MISMATCH, EXIT_OK, contract_failed, function_args, load_plan


def run(args) -> int:
    checks.plan_dir(args.plan)
    json_path = checks.output_file("--json", args.json)
    from qverify.footprint import footprint
    from qverify.fs import atomic_write
    from qverify.reports.text import format_footprint

    plan = load_plan(args.plan, args.functions)
    fp = footprint(plan)
    if json_path:
        from qverify.reports.json import footprint_json

        atomic_write(json_path, footprint_json(fp, plan.hash))
    print(f"plan {plan.hash[:16]}  q{plan.bits - 1}, rounding: {plan.rounding}")
    print(format_footprint(fp, functions=[op.function for op in plan.ops]))
    return EXIT_MISMATCH if contract_failed(plan) else EXIT_OK


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="per-op MACs, flash and RAM of a plan, and the runner's peak RAM")
    p.add_argument("--plan", help="plan directory written by quantize (default: the demo's plan)")
    function_args(p)
    p.add_argument("--json", help="also write the footprint as JSON to this file")
    p.set_defaults(func=run)
