"""`qverify gate`: the firmware repo's checks ([tool.qverify]) without pytest, for CI.

Exit status 0 when every check passes, 1 when any fails, 2 for a bad
configuration or input. Headers are regenerated only when everything
passes, so a firmware build that includes them never picks up an
unverified header; after a failure the output folder is left untouched.
"""

from __future__ import annotations

import sys
from pathlib import Path

from qverify.commands import checks
from qverify.commands.common import EXIT_MISMATCH, EXIT_OK
from qverify.errors import QVerifyError

FIRST_DETAIL_LINES = 14


def locate_config(path: str | None, start: Path | None = None) -> Path:
    """--config FILE, else the nearest qverify.toml / pyproject.toml with [tool.qverify] from start upwards.

    Raises:
        ConfigError: none found (the message says where it looked) or the file given does not exist.
    """
    from qverify.config import ConfigError, find_config

    if path is not None:
        checks.input_file(
            "--config", path, "a qverify.toml, or a pyproject.toml with a [tool.qverify] table", ConfigError
        )
        return Path(path)
    start = (start or Path.cwd()).resolve()
    found = find_config(start)
    if found is None:
        raise ConfigError(
            f"no configuration found: looked for qverify.toml, or pyproject.toml with a "
            f"[tool.qverify] table, in {start} and its parents (an empty [tool.qverify] table "
            "gates the demo); or pass --config FILE"
        )
    return found


def format_outcome(outcome, verbose: bool = False) -> str:
    """Failures first (message and first mismatches), then one row per op, the model checks, the verdict."""
    from qverify.outcome import check_id

    lines = [
        f"plan {outcome.plan_hash[:16]}  {outcome.data_name}, {outcome.samples} sample(s)  "
        f"rounding {outcome.rounding}" + ("  (from the cache)" if outcome.cached else "")
    ]
    lines += [f"  {label}: {info}" for label, info in outcome.engine_info.items() if label.startswith("bit_exact")]
    lines += [f"  {line}" for line in outcome.summary]
    failures = outcome.failures
    if failures:
        lines += ["", f"FAILED ({len(failures)}):"]
        for c in failures:
            lines.append(f"  {check_id(c)}: {c.message}")
            detail = [] if c.name.startswith(("header[", "sample_header[")) else c.details.splitlines()
            cut = detail[:FIRST_DETAIL_LINES] + (["..."] if len(detail) > FIRST_DETAIL_LINES else [])
            lines += [f"      {d}" for d in cut]

    groups: dict[str, list] = {}
    for text in outcome.header_diffs if any(c.name.startswith(("header[", "sample_header[")) for c in failures) else []:
        lines += ["", *text.splitlines()]  # header mode: diff-header's whole text
    for c in outcome.checks:
        groups.setdefault(c.classname.removeprefix("qverify."), []).append(c)
    model = groups.pop("model", [])
    kinds = {op.name: op.kind for op in outcome.plan.ops}
    lines += ["", f"{'op':<20} {'kind':<8} {'checks':>6}  result"]
    for group, op_checks in groups.items():
        bad = [c.name for c in op_checks if not c.passed]
        lines.append(
            f"{group:<20} {kinds.get(group, ''):<8} {len(op_checks):>6}  "
            + ("ok" if not bad else "FAIL " + ", ".join(bad))
        )
        if verbose:
            lines += [f"{'':<20}   {'ok  ' if c.passed else 'FAIL'} {c.name}: {c.message}" for c in op_checks]
    if model:
        lines.append("")
        lines += [f"model::{c.name:<24} {'ok  ' if c.passed else 'FAIL'} {c.message}" for c in model]
    n = len(outcome.checks)
    lines.append("")
    if outcome.ok:
        lines.append(f"PASS: {n} checks passed ({len(outcome.plan.ops)} ops, {outcome.samples} samples)")
    else:
        lines.append(f"FAIL: {len(failures)} of {n} checks failed")
    return "\n".join(lines)


def run(args) -> int:
    junit = checks.output_file("--junit", args.junit)
    from qverify.config import load_config  # the standard library only: checks every key and path

    cfg = load_config(locate_config(args.config))
    # only now qverify.gate (numpy); TensorFlow loads only when something is computed
    from qverify.fs import atomic_write
    from qverify.gate import run_gate, write_outputs

    print(f"qverify gate: {cfg.source}")
    outcome = run_gate(cfg, use_cache=not args.no_cache, progress=lambda line: print(line, file=sys.stderr, flush=True))
    blobs = {}
    if junit is not None:
        from qverify.reports.junit import eval_junit

        blobs[junit] = eval_junit(outcome)
    text = format_outcome(outcome, args.verbose)
    for p, blob in blobs.items():
        atomic_write(p, blob)
    print(text)
    written = [str(p) for p in blobs]
    if cfg.header:
        print(
            f"header mode: {cfg.header} "
            + ("verified against the model's plan; " if outcome.ok else "")
            + "never rewritten"
            + (
                ""
                if outcome.ok
                else ": fix it or regenerate it (`qverify quantize`, or drop 'header' so the gate writes 'out')"
            )
        )
    elif outcome.ok:
        try:
            written += [str(p) for p in write_outputs(outcome, cfg.out)]
        except OSError as exc:
            raise QVerifyError(f"cannot write the verified plan and headers into {cfg.out}: {exc}") from exc
    else:
        print(f"{cfg.out} left untouched: headers are regenerated only when every check passes")
    if written:
        print("wrote " + ", ".join(written))
    return EXIT_OK if outcome.ok else EXIT_MISMATCH


def add_parser(sub) -> None:
    p = sub.add_parser(
        "gate",
        help="run the checks configured in [tool.qverify] (or qverify.toml); write headers only if all pass",
        description="The firmware repo's gate without pytest: quantize, evaluate and compare as [tool.qverify] "
        "says (cached in .qverify_cache beside the configuration), print the checks, write JUnit XML, "
        "and regenerate plan and headers in `out` only when every check passes. "
        "Exit 0: all pass; 1: a check failed; 2: bad configuration or input.",
    )
    p.add_argument(
        "--config",
        help="qverify.toml or pyproject.toml (default: the nearest one with [tool.qverify] "
        "from the current directory upwards)",
    )
    p.add_argument("--junit", help="write JUnit XML: one test case per op and check")
    p.add_argument(
        "--no-cache", action="store_true", help="compute everything afresh; neither read nor write the cache"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="list every check with its measurement")
    p.set_defaults(func=run)
