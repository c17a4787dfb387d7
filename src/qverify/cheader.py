"""Read the object-like macros of a C header, as the firmware's compiler would see their values.

`#define NAME {v, v, ...}` and `#define NAME n`, backslash continuations, C and C++ comments, casts such
as (q15_t), decimal, hex, octal and binary literals with U/L suffixes, negative values. It is not a
preprocessor: #if branches are not evaluated (a macro defined twice differently is refused) and a macro
computed from other macros is not read. A value is parsed when it is asked for; every problem is one
HeaderError naming the file, the line and the macro. What the macros mean for a plan: header.py.

numpy only: nothing here imports TensorFlow.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qverify.errors import QVerifyError
from qverify.plan import MAX_SHIFT

QMIN, QMAX = -32768, 32767
# Casts that keep every q15 value as written; a cast to an 8-bit or unsigned type would change what the
# firmware holds, so it is refused rather than read as written.
CASTS = frozenset({"q15_t", "int16_t", "short", "signed", "int", "int32_t", "q31_t", "long", "const"})

_COMMENT = re.compile(r'//[^\n]*|/\*.*?(?:\*/|\Z)|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)
_DEFINE = re.compile(r"[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)(\(?)")
_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:0[xX][0-9A-Fa-f]+|0[bB][01]+|\d+)[uUlL]*)(?![\w.])|(?P<id>[A-Za-z_]\w*)"
    r'|(?P<str>"(?:\\.|[^"\\])*")|(?P<op>[{}(),+-]))'
)
_PLAIN = re.compile(r"\s*\{\s*((?:-?(?:0|[1-9]\d*)\s*,\s*)*-?(?:0|[1-9]\d*))\s*,?\s*\}\s*")  # the common case, fast
_STATED = re.compile(r"f_in (-?\d+), f_w (-?\d+), f_b (-?\d+), f_out (-?\d+)")  # qverify's comment above STEM_WT


class HeaderError(QVerifyError):
    """A header cannot be read, or a macro is missing, malformed, of the wrong length or out of range."""


@dataclass(frozen=True)
class Define:
    name: str
    line: int
    body: str
    offset: int  # of the body in the scanned text: the line of each token


class Header:
    """The object-like macros of one header. A value is parsed and checked when it is asked for, so a
    header may hold other C (function-like macros, float constants) that qverify does not read."""

    def __init__(self, text: str, path: str | Path = "<header>"):
        self.path = str(path)
        self._starts: list[int] = []  # offset of each physical line in the spliced text
        self.comments: list[tuple[int, int, str]] = []  # (first line, last line, text)
        code = _COMMENT.sub(self._blank, self._splice(text))
        self.defines: dict[str, list[Define]] = {}
        pos = 0
        for line in code.split("\n"):
            m = _DEFINE.match(line)
            if m and not m.group(2):  # NAME( is a function-like macro: code, not data
                d = Define(m.group(1), self.line_at(pos + m.start(1)), line[m.end() :], pos + m.end())
                self.defines.setdefault(d.name, []).append(d)
            pos += len(line) + 1

    def _splice(self, text: str) -> str:
        # C joins a line ending in a backslash to the next before it sees comments (GCC allows trailing blanks)
        out, length = [], 0
        for line in text.replace("\r\n", "\n").split("\n"):
            self._starts.append(length)
            body = line.rstrip(" \t")
            piece = body[:-1] if body.endswith("\\") else line + "\n"
            out.append(piece)
            length += len(piece)
        return "".join(out)

    def _blank(self, m: re.Match) -> str:
        text = m.group()
        if text[0] in "\"'":
            return text
        first = self.line_at(m.start())
        if text.startswith("/*") and (len(text) < 4 or not text.endswith("*/")):
            raise HeaderError(f"{self.path}:{first}: unterminated /* comment")
        self.comments.append((first, self.line_at(m.end() - 1), text))
        return " " * len(text)  # a comment is a space, also across lines; offsets (so line numbers) are kept

    def line_at(self, offset: int) -> int:
        return bisect.bisect_right(self._starts, offset)

    # ---- values ----------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self.defines

    def define(self, name: str, needed_for: str = "") -> Define:
        found = self.defines.get(name)
        if not found:
            raise HeaderError(f"{self.path}: {name} is not defined{needed_for}")
        bodies = [" ".join(d.body.split()) for d in found]
        for d, body in zip(found[1:], bodies[1:], strict=True):
            if body != bodies[0]:
                raise self._error(d, f"defined again, differently (first at line {found[0].line})")
        return found[0]

    def array(self, name: str, length: int | None = None, needs: str = "", bits: int = 16) -> np.ndarray:
        """int16 values of `#define NAME {…}`, each within a signed `bits`-bit integer (16: q15_t, 8: q7_t);
        `length` checked against `needs` (what the plan says)."""
        d = self.define(name, f" ({needs} {length} values)" if length is not None else "")
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        plain = _PLAIN.fullmatch(d.body)
        if plain:
            parsed = np.array(plain.group(1).replace(" ", "").replace("\t", "").split(","), np.int64)
            bad = np.flatnonzero((parsed < lo) | (parsed > hi))
            if not bad.size:
                return self._length(d, parsed.astype(np.int16), length, needs)
        toks = self._tokens(d)
        if not toks or toks[0][1] != "{":
            raise self._error(d, "expected an array {v, v, ...}" + (f", found '{toks[0][1]}'" if toks else ""))
        values: list[int] = []
        offsets: list[int] = []
        i = 1
        while True:
            if i >= len(toks):
                raise self._error(d, "array not closed with '}' (a missing '\\' at the end of a line?)", toks[-1][2])
            offsets.append(toks[i][2])
            v, i = self._value(d, toks, i)
            values.append(v)
            if i < len(toks) and toks[i][1] == ",":
                i += 1
                if i < len(toks) and toks[i][1] == "}":
                    i += 1
                    break
            elif i < len(toks) and toks[i][1] == "}":
                i += 1
                break
            elif i < len(toks):
                raise self._error(
                    d, f"expected ',' or '}}' after element {len(values) - 1}, found '{toks[i][1]}'", toks[i][2]
                )
        if i < len(toks):
            raise self._error(d, f"unexpected '{toks[i][1]}' after the closing '}}'", toks[i][2])
        for k, (v, off) in enumerate(zip(values, offsets, strict=True)):
            if not lo <= v <= hi:
                size = 1 << bits
                wrap = (
                    f"; a (q{bits - 1}_t) cast would make it {(v - lo) % size + lo} on the device"
                    if v < size and v >= -size
                    else ""
                )
                raise self._error(d, f"element {k} is {v}, outside q{bits - 1} [{lo}, {hi}]{wrap}", off)
        return self._length(d, np.array(values, np.int16), length, needs)

    def _length(self, d: Define, values: np.ndarray, length: int | None, needs: str) -> np.ndarray:
        if length is not None and values.size != length:
            raise self._error(d, f"has {values.size} values; {needs or 'expected'} {length}")
        return values

    def scalar(self, name: str, lo: int = QMIN, hi: int = QMAX, needs: str = "") -> int:
        """The integer of `#define NAME n`, checked to lie in [lo, hi]."""
        d = self.define(name, f" ({needs})" if needs else "")
        toks = self._tokens(d)
        if not toks:
            raise self._error(d, "has no value; expected an integer")
        v, i = self._value(d, toks, 0)
        if i < len(toks):
            raise self._error(d, f"unexpected '{toks[i][1]}' after the value", toks[i][2])
        if not lo <= v <= hi:
            raise self._error(d, f"is {v}, outside [{lo}, {hi}]")
        return v

    def string(self, name: str) -> str | None:
        """The text of `#define NAME "text"`, None when not defined as one string."""
        if name not in self.defines:
            return None
        toks = self._tokens(self.define(name))
        return toks[0][1][1:-1] if len(toks) == 1 and toks[0][0] == "str" else None

    def stems(self, suffix: str = "_WT") -> list[str]:
        """Stems of the macros named STEM + suffix, in the order the header defines them."""
        names = [n for n in self.defines if n.endswith(suffix) and len(n) > len(suffix)]
        return [n[: -len(suffix)] for n in sorted(names, key=lambda n: self.defines[n][0].line)]

    def stated(self, name: str) -> dict[str, int]:
        """f_in, f_w, f_b, f_out from a comment right above NAME (qverify writes them there), else {}."""
        line = self.define(name).line
        for _first, last, text in self.comments:
            if line - 1 <= last <= line:
                m = _STATED.search(text)
                if m:
                    return dict(zip(("f_in", "f_w", "f_b", "f_out"), map(int, m.groups()), strict=True))
        return {}

    def check(self) -> None:
        """Parse every layer's macros (STEM_WT and the STEM_BIAS, shifts beside it): syntax errors before any plan."""
        for stem in self.stems():
            self.array(f"{stem}_WT")
            if self.has(f"{stem}_BIAS"):
                self.array(f"{stem}_BIAS")
            for shift in ("_BIAS_LSHIFT", "_OUT_RSHIFT"):
                if self.has(stem + shift):
                    self.scalar(stem + shift, 0, MAX_SHIFT)

    # ---- parsing ---------------------------------------------------------
    def _error(self, d: Define, message: str, offset: int | None = None) -> HeaderError:
        line = d.line if offset is None else self.line_at(offset)
        return HeaderError(f"{self.path}:{line}: {d.name}: {message}")

    def _tokens(self, d: Define) -> list[tuple[str, str, int]]:
        toks: list[tuple[str, str, int]] = []
        pos = 0
        while True:
            m = _TOKEN.match(d.body, pos)
            if not m:
                rest = d.body[pos:].strip()
                if not rest:
                    return toks
                at = d.offset + pos + len(d.body[pos:]) - len(d.body[pos:].lstrip())
                raise self._error(d, f"unexpected '{rest.split()[0][:24]}'", at)
            kind = m.lastgroup
            assert kind is not None  # every alternative of _TOKEN is a named group, so a match sets one
            toks.append((kind, m.group(kind), d.offset + m.start(kind)))
            pos = m.end()

    def _value(self, d: Define, toks: list, i: int) -> tuple[int, int]:
        """One integer from toks[i:]: [+|-|(cast)|(…)]… literal; returns (value, next index)."""
        if i >= len(toks):
            raise self._error(d, "expected an integer, found the end of the macro", toks[-1][2] if toks else None)
        kind, text, off = toks[i]
        if kind == "op" and text in "+-":
            v, j = self._value(d, toks, i + 1)
            return (-v if text == "-" else v), j
        if text == "(":
            if i + 1 < len(toks) and toks[i + 1][0] == "id":
                j = i + 1
                while j < len(toks) and toks[j][0] == "id":
                    if toks[j][1] not in CASTS:
                        raise self._error(
                            d,
                            f"cast to '{toks[j][1]}' is not read (it could change a q15 value); "
                            f"expected one of {', '.join(sorted(CASTS))}",
                            toks[j][2],
                        )
                    j += 1
                if j >= len(toks) or toks[j][1] != ")":
                    raise self._error(d, "cast not closed with ')'", off)
                return self._value(d, toks, j + 1)
            v, j = self._value(d, toks, i + 1)
            if j >= len(toks) or toks[j][1] != ")":
                raise self._error(d, "'(' not closed with ')'", off)
            return v, j + 1
        if kind == "num":
            return self._int(d, text, off), i + 1
        raise self._error(d, f"expected an integer, found '{text}'", off)

    def _int(self, d: Define, text: str, off: int) -> int:
        digits = text.rstrip("uUlL")
        if digits[:2] in ("0x", "0X"):
            return int(digits, 16)
        if digits[:2] in ("0b", "0B"):
            return int(digits[2:], 2)
        if len(digits) > 1 and digits[0] == "0":
            if not digits.isdigit() or set(digits) & set("89"):
                raise self._error(d, f"'{text}' is not a valid octal literal (C reads a leading 0 as octal)", off)
            return int(digits, 8)  # as the C compiler does: 010 is 8
        return int(digits)


def read_header(path: str | Path) -> Header:
    """Read and scan one header file.

    Raises:
        HeaderError: the file cannot be read, or it holds an unterminated comment.
        PlanError: it is a file of a set qverify wrote, and its folder holds files of two plans (outputs.check_set).
    """
    from qverify.outputs import check_member

    check_member(path)
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise HeaderError(f"{path}: cannot read it: {exc.strerror or exc}") from exc
    return Header(text, path)
