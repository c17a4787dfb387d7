"""Read generated C headers back (shared by test_export.py and test_properties_headers.py)."""

from __future__ import annotations

import re


def parse_macros(text: str) -> dict[str, list[int] | int | str]:
    """Read back '#define NAME {…}' arrays and '#define NAME n' scalars from a generated header."""
    text = text.replace("\\\n", " ")
    macros = {}
    for name, body in re.findall(r"#define (\w+) \{([^}]*)\}", text):
        macros[name] = [int(v) for v in body.replace(" ", "").split(",") if v]
    for name, value in re.findall(r"#define (\w+) (-?\d+)\n", text):
        macros[name] = int(value)
    return macros
