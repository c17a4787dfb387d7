"""Eval checks as JUnit XML: one <testcase> per op and check, plus the model-level ones.

Read by CI systems (GitLab, Jenkins, GitHub test reporters): classname
"qverify.<op>" (or "qverify.model"), name the check, e.g.
"bit_exact[shift-native]", "sqnr[shift]", "saturation",
"accumulator_overflow", "accuracy_drop[native]". A failed check carries its
message and first mismatches in <failure>; every case carries its
measurement in <system-out>.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Protocol

from qverify.outcome import Check


class CheckedRun(Protocol):
    """What a JUnit report is written from: an eval result or a gate outcome."""

    @property
    def checks(self) -> list[Check]: ...
    @property
    def data_name(self) -> str: ...
    @property
    def wall_seconds(self) -> float: ...
    @property
    def plan_hash(self) -> str: ...
    @property
    def rounding(self) -> str: ...
    @property
    def samples(self) -> int: ...
    @property
    def engines(self) -> list[str]: ...
    @property
    def engine_info(self) -> dict[str, str]: ...


def eval_junit(result: CheckedRun) -> bytes:
    checks = result.checks
    failures = sum(1 for c in checks if not c.passed)
    suites = ET.Element("testsuites", name="qverify", tests=str(len(checks)), failures=str(failures), errors="0")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"qverify eval {result.data_name}",
        tests=str(len(checks)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{result.wall_seconds:.3f}",
    )
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("plan_hash", result.plan_hash),
        ("rounding", result.rounding),
        ("data", result.data_name),
        ("samples", result.samples),
        ("engines", ",".join(result.engines)),
        *((f"engine.{e}", info) for e, info in result.engine_info.items()),
    ):
        ET.SubElement(props, "property", name=key, value=str(value))
    for c in checks:
        case = ET.SubElement(suite, "testcase", classname=c.classname, name=c.name, time="0")
        if not c.passed:
            failure = ET.SubElement(case, "failure", message=c.message, type="qverify.check")
            failure.text = c.details or c.message
        out = ET.SubElement(case, "system-out")
        out.text = c.message + (("\n" + c.details) if c.details and c.passed else "")
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n"
