"""Wall time of the CLI's quick answers: `--help` and runs with a bad argument (issue 15, fast feedback).

    python bench/bench_cli.py [--runs 5]

Each command line runs --runs times, each in a fresh interpreter (`python -m qverify ...`) in an empty
temporary directory, so every path it names is missing; the table shows the median and the range of
the wall times, the exit status, the error line, and whether TensorFlow was imported (one more run
under `python -X importtime`). Not a test: figures depend on the machine and what else runs on it;
tests/test_cli_fast.py checks the import order, which is what keeps these short.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

CASES = (
    ["--help"],
    ["quantize", "--model", "nonexist.keras", "--data", "x.npy"],
    ["eval", "--data", "nope.npy"],
    ["compare", "--json", "nodir/cmp.json"],
    ["gate", "--config", "nope.toml"],
)


def run(argv: list[str], cwd: str, *flags: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "QVERIFY_CMSIS_ROOT"}  # a set tree adds its own check
    return subprocess.run(
        [sys.executable, *flags, "-m", "qverify", *argv],
        cwd=cwd,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="runs per command line (default 5; the median is shown)")
    args = ap.parse_args()
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"median of {args.runs} runs each\n"
    )
    print(f"| {'command':<55} | median s | min-max s   | exit | TF imported | stderr")
    print(f"|{'-' * 57}|---------:|-------------|-----:|-------------|-------")
    with tempfile.TemporaryDirectory() as cwd:
        for argv in CASES:
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                proc = run(argv, cwd)
                times.append(time.perf_counter() - t0)
            traced = run(argv, cwd, "-X", "importtime")
            tf = any(
                line.rsplit("|", 1)[-1].strip() == "tensorflow"
                for line in traced.stderr.splitlines()
                if line.startswith("import time:")
            )
            err = proc.stderr.strip().splitlines()
            line = err[-1][:70] if err else ""
            print(
                f"| {'qverify ' + ' '.join(argv):<55} | {statistics.median(times):8.2f} | "
                f"{f'{min(times):.2f}-{max(times):.2f}':<11} | {proc.returncode:4d} | "
                f"{'yes' if tf else 'no':<11} | {line}"
            )


if __name__ == "__main__":
    main()
