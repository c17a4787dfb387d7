"""`python -m qverify <command>`.

Each command lives in qverify/commands/<name>.py. Every QVerifyError and every
usage error becomes one line on stderr and exit status 2; a run that finds a
mismatch exits 1; success exits 0.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from qverify import __version__, tensorflow_defaults
from qverify.commands.common import EXIT_MISMATCH, EXIT_USAGE
from qverify.errors import KernelFault, QVerifyError

COMMANDS = ("quantize", "compare", "demo", "target", "eval", "report", "gate", "diff-header")


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other error (argparse would print the usage block first).

    The subcommand parsers inherit this class, so their prog ("qverify eval") starts the line."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="qverify", description="Verify CMSIS-NN q15 networks bit for bit.")
    parser.add_argument("--version", action="version", version=f"qverify {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"qverify.commands.{name.replace('-', '_')}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    tensorflow_defaults()
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KernelFault as exc:  # a kernel misbehaved: a failed check, like a mismatch
        print(f"FAIL: {exc}")
        return EXIT_MISMATCH
    except QVerifyError as exc:
        print(f"qverify {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
