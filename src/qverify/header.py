"""Read the C headers a firmware flashes and diff them against a plan, op by op.

weights.h and sample_input_output.h as qverify writes them (export.py), as the original notebook wrote
them (one line per macro) or by hand in the same style: object-like `#define NAME {v, v, ...}` and
`#define NAME n`, backslash continuations, C and C++ comments, casts such as (q15_t), decimal, hex,
octal and binary literals with U/L suffixes, negative values. It is not a preprocessor: #if branches
are not evaluated (a macro defined twice differently is refused) and a macro computed from other
macros is not read. Every problem is one HeaderError naming the file, the line and the macro.

A header's layers map to the plan's conv/dense ops by the plan's macro stems (QuantPlan.stem: the names it
records, else export.macro_name of the op name), by an explicit
{op name: STEM}, or, when none of the header's stems is one of the plan's, by the order of the ops.
diff_weights compares weights.h with the plan; diff_sample compares sample_input_output.h with what an
engine it is given computes from the header's own values.

numpy and the plan only: nothing here imports TensorFlow.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from qverify import kernels
from qverify.errors import ArgumentError, QVerifyError
from qverify.layout import ORDERS, conv_from_cmsis, dense_from_cmsis, interleave, notebook_conv_order
from qverify.opkinds import FUNCTIONS, elems
from qverify.plan import MAX_SHIFT, OpPlan, QuantPlan
from qverify.qformat import qm_n

QMIN, QMAX = -32768, 32767
FIRST = 5  # differing elements listed per part
# Casts that keep every q15 value as written; a cast to an 8-bit or unsigned type would change what the
# firmware holds, so it is refused rather than read as written.
CASTS = frozenset({"q15_t", "int16_t", "short", "signed", "int", "int32_t", "q31_t", "long", "const"})
PARTS = ("weights", "bias", "bias_lshift", "out_rshift")

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


# ---- the header's layers, mapped to the plan's ops -----------------------


@dataclass
class Layer:
    """One conv/dense op's macros as the header holds them."""

    op: str
    stem: str
    line: int
    weights: np.ndarray
    bias: np.ndarray
    bias_lshift: int
    out_rshift: int
    stated: dict[str, int] = field(default_factory=dict)  # formats the header's own comment states


@dataclass
class WeightsHeader:
    """A weights.h read against a plan. matched: 'name', 'map' (explicit, the rest by name) or 'order'."""

    path: str
    matched: str
    layers: list[Layer]
    unmapped: list[str]  # the header's layers no op of the plan maps to
    plan_hash: str | None
    rounding: str | None


def _geometry(op: OpPlan) -> str:
    if op.kind == "conv":
        return (
            f"conv {op.kernel[0]}x{op.kernel[1]} kernel, {op.in_shape[2]} -> {op.out_shape[2]} channels: "
            f"[c_out][k_h][k_w][c_in]"
        )
    return f"dense {op.in_shape[2]} -> {op.out_shape[2]}: [out][in]"


def map_stems(header: Header, plan: QuantPlan, mapping: dict[str, str] | None = None) -> tuple[dict[str, str], str]:
    """{op name: STEM} for the plan's conv/dense ops, and how they were matched ('name', 'map', 'order').

    Raises:
        ArgumentError: the mapping names an op the plan has no conv/dense op of.
        HeaderError: matched by order, but the header has another number of layers than the plan.
    """
    weighted = [op.name for op in plan.ops if op.weighted]
    mapping = dict(mapping or {})
    for name in mapping:
        if name not in weighted:
            raise ArgumentError(
                f"--map {name}={mapping[name]}: the plan has no conv/dense op '{name}'; "
                f"its conv/dense ops are: {', '.join(weighted)}"
            )
    stems = {name: mapping.get(name, plan.stem(name)) for name in weighted}  # the plan's names where not mapped
    found = header.stems()
    if not mapping and found and not set(stems.values()) & set(found):
        # none of the plan's names: a team that renamed its layers, the layers in the same order
        if len(found) != len(weighted):
            raise HeaderError(
                f"{header.path}: none of its layers ({', '.join(found)}) is named like the plan's "
                f"({', '.join(stems.values())}), and it has {len(found)} where the plan has "
                f"{len(weighted)} conv/dense ops: map them with --map OP=STEM"
            )
        return dict(zip(weighted, found, strict=True)), "order"
    return stems, "map" if mapping else "name"


def layer_stems(path: str | Path, where: str) -> list[str]:
    """The STEM of each STEM_WT macro of a weights.h in file order (`--names-from`, the gate's names_from),
    checked to be C identifiers of their own that clash with no macro of qverify's.

    Raises:
        HeaderError: no STEM_WT macro, or stems that clash; `where` opens the line.
    """
    from qverify.macros import clash

    stems = read_header(path).stems()
    if not stems:
        raise HeaderError(
            f"{where} defines no STEM_WT macro; expected a weights.h whose STEM_WT macros name the conv/dense ops "
            "in order"
        )
    problem = clash({stem: stem for stem in stems}, "layer")
    if problem:
        raise HeaderError(f"{where}: {problem}")
    return stems


def read_weights(path: str | Path | Header, plan: QuantPlan, mapping: dict[str, str] | None = None) -> WeightsHeader:
    """Read a weights.h (a path, or a Header already read) against the plan's op geometry.

    Raises:
        HeaderError: a macro missing, malformed, of the wrong length, out of int16 range or a shift
            outside [0, 31], naming the macro, the file and the line.
    """
    header = path if isinstance(path, Header) else read_header(path)
    stems, matched = map_stems(header, plan, mapping)
    layers = []
    for op in plan.ops:
        if not op.weighted:
            continue
        assert op.weights is not None and op.bias is not None  # a weighted op has both: the plan validates them
        stem, for_op = stems[op.name], f"for the plan's {op.name}"
        if not header.has(f"{stem}_WT"):
            others = [s for s in header.stems() if s not in stems.values()]
            hint = f"; the header's unmapped layers: {', '.join(others)} (--map {op.name}=STEM)" if others else ""
            raise HeaderError(f"{header.path}: {stem}_WT is not defined ({for_op}){hint}")
        line = header.define(f"{stem}_WT").line
        bits = op.weight_bits  # q7_t arrays for the q7 dense functions (their function's width: kernels)
        who = f"the plan's {op.name}" + (f" ({op.function}: q7_t)" if bits == 8 else "")
        for suffix in ("_BIAS", "_BIAS_LSHIFT", "_OUT_RSHIFT"):
            if not header.has(stem + suffix):  # the line of the layer's weights says where it is missing
                raise HeaderError(
                    f"{header.path}:{line}: {stem}{suffix} is not defined: layer {stem} ({for_op}) "
                    f"has {stem}_WT here but no {stem}{suffix}"
                )
        layers.append(
            Layer(
                op.name,
                stem,
                line,
                # in the plan's [out][in] order, whatever order the op's function reads (kernels.stored)
                kernels.from_stored(
                    op, header.array(f"{stem}_WT", op.weights.size, f"{who}, {_geometry(op)}, needs", bits)
                ),
                header.array(f"{stem}_BIAS", op.bias.size, f"{who} needs", bits),
                header.scalar(f"{stem}_BIAS_LSHIFT", 0, MAX_SHIFT, for_op),
                header.scalar(f"{stem}_OUT_RSHIFT", 0, MAX_SHIFT, for_op),
                header.stated(f"{stem}_WT"),
            )
        )
    unmapped = [s for s in header.stems() if s not in stems.values()]
    return WeightsHeader(
        header.path, matched, layers, unmapped, header.string("QVERIFY_PLAN_HASH"), header.string("QVERIFY_ROUNDING")
    )


# ---- the diff ----------------------------------------------------------------


@dataclass
class PartDiff:
    """One part of an op that differs: `differ` of `size` elements, the first (index, header, plan), the cause.
    scale: n when the header holds the plan's values × 2^n (another Q-format)."""

    part: str
    differ: int
    size: int
    first: list[tuple[int, int, int]]
    cause: str
    scale: int | None = None


@dataclass
class OpDiff:
    op: str
    stem: str
    parts: list[PartDiff]
    # frac bits where the header's (stated or from its shifts) differ: (header, plan)
    formats: dict[str, tuple[int, int]]


@dataclass
class HeaderDiff:
    path: str
    plan_hash: str
    matched: str
    ops: list[OpDiff]
    unmapped: list[str]
    notes: list[str]

    @property
    def identical(self) -> bool:
        return not self.unmapped and not any(op.parts for op in self.ops)

    def to_dict(self) -> dict:
        return {**asdict(self), "identical": self.identical}


def _layouts(op: OpPlan) -> list[tuple[str, np.ndarray]]:
    """(cause, perm) per wrong layout someone writes: header[i] holds plan[perm[i]]. op: a conv/dense op."""
    assert op.weights is not None  # a weighted op has weights: the plan validates them
    idx = np.arange(op.weights.size)
    found = []
    if op.kind == "conv":
        keras = conv_from_cmsis(idx, *op.kernel, op.in_shape[2], op.out_shape[2])
        found += [
            (
                "layout transposed: the notebook's moveaxis(w, 2, 0).flatten('F') order [c_out][k_w][k_h][c_in]; "
                "CMSIS reads [c_out][k_h][k_w][c_in]",
                notebook_conv_order(keras),
            ),
            ("layout: Keras's (k_h, k_w, c_in, c_out) order; CMSIS reads [c_out][k_h][k_w][c_in]", keras.ravel()),
        ]
    else:
        found.append(
            (
                "layout transposed: [in][out] (Keras's order); CMSIS reads [out][in]",
                dense_from_cmsis(idx, op.in_shape[2], op.out_shape[2]).ravel(),
            )
        )
        assert op.function is not None  # every op of a plan names its function (kernels.assign)
        n_in, n_out, fn = elems(op.in_shape), op.out_shape[2], FUNCTIONS[op.function]
        for order in (o for o in ORDERS if o):
            stored = interleave(idx, n_in, n_out, order)  # the header as read holds the plan at these places
            if fn.order == order:
                found.append(
                    (
                        f"layout: [out][in], but {fn.name} reads its weights interleaved (rows in groups of 4, "
                        "qverify.layout.interleave)",
                        np.argsort(stored),
                    )
                )
            elif not fn.order:
                found.append((f"layout: an _opt function's interleave ({order}); {fn.name} reads [out][in]", stored))
    return [(cause, perm) for cause, perm in found if (perm != idx).any()]


def _scale(h: np.ndarray, p: np.ndarray) -> int | None:
    """n with h = p·2^n up to ±1 LSB of the coarser format (the finer one may saturate), else None."""
    mh, mp = int(np.abs(h).max()), int(np.abs(p).max())
    if not mh or not mp:
        return None
    n0 = int(round(np.log2(mh / mp)))
    for n in (n0, n0 - 1, n0 + 1):
        if n == 0 or abs(n) > 15:
            continue
        fine, coarse, k = (h, p, n) if n > 0 else (p, h, -n)
        if np.abs(coarse).max() < 8:  # ±1 LSB of a near-zero array would match almost anything
            continue
        near = np.abs(np.floor(fine / 2.0**k + 0.5) - coarse) <= 1
        clipped = (np.abs(fine) >= QMAX) & (np.sign(fine) == np.sign(coarse)) & (np.abs(coarse) * 2**k >= 2**15 - 2**k)
        if (near | clipped).all():
            return n
    return None


def _relation(part: str, g: np.ndarray, p: np.ndarray) -> tuple[str, int | None] | None:
    """Why g (in the plan's layout) differs from p, when a wrap or a Q-format explains it ("" when equal)."""
    bad = g != p
    if not bad.any():
        return "", None
    if (p[bad] == QMAX).all() and (g[bad] == QMIN).all():
        return (
            f"saturated value wrapped: {int(bad.sum())} value(s) the plan saturates at 32767 are -32768 "
            "in the header (the notebook's unclipped 1.0 = 32768 stored as int16)"
        ), None
    n = _scale(g, p)
    if n is not None:
        return f"another Q-format: header = plan x 2^{n} (up to 1 LSB): the {part} quantized with {n:+d} frac bits", n
    return None


def _array_diff(
    part: str, h: np.ndarray, p: np.ndarray, layouts, others: list[tuple[str, np.ndarray]]
) -> PartDiff | None:
    h, p = h.astype(np.int64), p.astype(np.int64)
    bad = np.flatnonzero(h != p)
    if not bad.size:
        return None
    first = [(int(i), int(h[i]), int(p[i])) for i in bad[:FIRST]]
    for how, perm in [("", None), *layouts]:
        g = h
        if perm is not None:
            g = np.empty_like(h)
            g[perm] = h
        found = _relation(part, g, p)
        if found is not None:
            return PartDiff(part, bad.size, h.size, first, "; ".join(s for s in (how, found[0]) if s), found[1])
    for name, values in others:
        if values.size == h.size and (values == h).all():
            return PartDiff(part, bad.size, h.size, first, f"holds op {name}'s {part}: layers swapped or mis-mapped")
    same = h.size - bad.size
    if 2 * same >= h.size:
        cause = f"{bad.size} value(s) edited: the other {same} equal the plan's"
    else:
        cause = f"from another model: no layout, wrap, Q-format or other op relates the {part} to the plan's"
    return PartDiff(part, bad.size, h.size, first, cause)


def _shift_diff(
    part: str, h: int, p: int, fmt: str, got: int, want: int, via: list[str], stated: int | None
) -> PartDiff:
    """A shift that differs. fmt: the format it sets (f_b or f_out); got: that format as the header's shift
    gives it; want: the format the header's own values need (the plan's, or the bias's other Q-format)."""
    cause = f"off by {h - p:+d}: "
    if got == want:
        cause += f"{fmt} {got} ({qm_n(got)}) is consistent; the shift follows from the header's " + ", ".join(via)
    else:
        cause += f"the header's {fmt} = f_w + f_in - {part} is {got} ({qm_n(got)}), the plan's {want} ({qm_n(want)})"
    if stated is not None and stated != got:
        cause += f"; the header's own comment says {fmt} {stated}: the shift was edited"
    return PartDiff(part, 1, 1, [(0, h, p)], cause)


def diff_weights(header: WeightsHeader, plan: QuantPlan) -> HeaderDiff:
    """Every conv/dense op's weights, bias and shifts in the header against the plan's.

    Frac bits on both sides follow from the values, op after op: f_b = f_w + f_in - bias_lshift,
    f_out = f_w + f_in - out_rshift, f_in the previous op's f_out (the input's for the first; pooling,
    ReLU and flatten keep the format), and the header's f_w is the plan's unless its weights are another
    Q-format. What the header's comment states (qverify's do) is only checked against them: a shift that
    disagrees with its own comment was edited.
    """
    layers = {layer.op: layer for layer in header.layers}
    weighted = [op for op in plan.ops if op.weighted]
    # a weighted op always has weights, bias, w_frac, bias_lshift and out_rshift: the plan validates them
    all_weights: list[tuple[str, np.ndarray]] = []
    all_bias: list[tuple[str, np.ndarray]] = []
    for o in weighted:
        assert o.weights is not None and o.bias is not None
        all_weights.append((o.name, o.weights))
        all_bias.append((o.name, o.bias))
    ops, h_in, p_in = [], plan.input_frac, plan.input_frac
    for op in weighted:
        assert op.weights is not None and op.bias is not None and op.w_frac is not None
        assert op.bias_lshift is not None and op.out_rshift is not None
        layer, st = layers[op.name], layers[op.name].stated
        w = _array_diff("weights", layer.weights, op.weights, _layouts(op), all_weights)
        b = _array_diff("bias", layer.bias, op.bias, [], all_bias)
        p_b, p_out = op.w_frac + p_in - op.bias_lshift, op.w_frac + p_in - op.out_rshift
        h_w = op.w_frac + ((w.scale or 0) if w else 0)
        h_b, h_out = h_w + h_in - layer.bias_lshift, h_w + h_in - layer.out_rshift
        via = [f"f_in {h_in} (plan {p_in}: an earlier op's output format)"] if h_in != p_in else []
        via += [f"f_w {h_w} (plan {op.w_frac}: the weights' format)"] if h_w != op.w_frac else []
        parts = [x for x in (w, b) if x]
        if layer.bias_lshift != op.bias_lshift:
            want_b = p_b + ((b.scale or 0) if b else 0)  # a bias of another Q-format needs its own shift
            parts.append(
                _shift_diff(
                    "bias_lshift",
                    layer.bias_lshift,
                    op.bias_lshift,
                    "f_b",
                    h_b,
                    want_b,
                    via + ([f"bias format f_b {want_b} (plan {p_b})"] if want_b != p_b else []),
                    st.get("f_b"),
                )
            )
        if layer.out_rshift != op.out_rshift:
            parts.append(
                _shift_diff("out_rshift", layer.out_rshift, op.out_rshift, "f_out", h_out, p_out, via, st.get("f_out"))
            )
        formats = {
            k: (hv, pv)
            for k, hv, pv in (("f_in", h_in, p_in), ("f_w", h_w, op.w_frac), ("f_b", h_b, p_b), ("f_out", h_out, p_out))
            if hv != pv
        }
        ops.append(OpDiff(op.name, layer.stem, parts, formats))
        h_in, p_in = h_out, p_out
    notes = []
    if header.plan_hash and header.plan_hash != plan.hash:
        notes.append(f"the header says it was written for plan {header.plan_hash[:16]}; this plan is {plan.hash[:16]}")
    if header.rounding and header.rounding != plan.rounding:
        notes.append(f"the header was verified for a '{header.rounding}' build; this plan is '{plan.rounding}'")
    return HeaderDiff(header.path, plan.hash, header.matched, ops, header.unmapped, notes)


# ---- the header as the plan ------------------------------------------------------


@dataclass
class HeaderPlan:
    """A plan whose integers and shifts are a weights.h's, with the model's own plan they came against.

    plan: the model's geometry, kinds, functions and input format with the header's weights, biases and
        shifts, frac bits following from them; validated like any plan (QuantPlan's constructor).
    base: the model's own plan; diff: the header against it (diff_weights); weights: the header as read.
    """

    plan: QuantPlan
    base: QuantPlan
    diff: HeaderDiff
    weights: WeightsHeader

    @property
    def stems(self) -> dict[str, str]:
        return {layer.op: layer.stem for layer in self.weights.layers}

    def lines(self) -> list[str]:
        """What a command prints first: where the plan comes from, how the layers matched, whether the
        header is the model's plan."""
        h = self.weights
        out = [
            f"plan from {h.path}: its integers and shifts on the model's geometry "
            f"({MATCHED[h.matched]}: " + ", ".join(f"{layer.op}={layer.stem}" for layer in h.layers) + ")"
        ]
        if h.plan_hash:
            same = "matches" if h.plan_hash == self.plan.hash else "does not match"
            out.append(
                f"the header's QVERIFY_PLAN_HASH {h.plan_hash[:16]} {same} the plan read from it "
                f"({self.plan.hash[:16]})"
            )
        if self.diff.identical:
            out.append(f"the header equals the model's own plan {self.base.hash[:16]}")
        else:
            bad = [op for op in self.diff.ops if op.parts]
            out.append(
                f"the header differs from the model's own plan {self.base.hash[:16]} in {len(bad)} of "
                f"{len(self.diff.ops)} conv/dense ops (running the header's integers):"
            )
            out += ["  " + line for line in format_diff(self.diff).splitlines()[2:] if line.strip()]
        return out


def plan_from_header(path: str | Path | Header, base: QuantPlan, mapping: dict[str, str] | None = None) -> HeaderPlan:
    """The plan a firmware flashing this weights.h runs: `base` (the model's own plan) gives the geometry,
    kinds, functions, input format and ranges; the header gives every conv/dense op's weights, bias,
    bias_lshift and out_rshift, layers mapped as diff-header maps them (read_weights).

    Frac bits follow from the header as diff_weights infers them: f_in the input's (the first layer's
    stated f_in when the header states one) and then each op's output format, f_w the stated one, else the
    plan's unless the weights are another Q-format, f_b = f_w + f_in - bias_lshift, f_out = f_w + f_in -
    out_rshift. The rounding is the header's QVERIFY_ROUNDING when it states one. An op whose values
    differ from the base plan gets an adjustment saying so (its calibration notes no longer describe it).
    A header qverify wrote from `base` gives a plan with base's hash.

    Raises:
        HeaderError: a macro missing, malformed, of the wrong length or out of range.
        PlanError: the plan the header makes is inconsistent (QuantPlan validates it).
    """
    import copy

    weights = read_weights(path, base, mapping)
    diff = diff_weights(weights, base)
    layers = {layer.op: layer for layer in weights.layers}
    diffs = {d.op: d for d in diff.ops}
    first = weights.layers[0].stated if weights.layers else {}
    f_in = input_frac = first.get("f_in", base.input_frac)
    ops = []
    for op in base.ops:
        new = copy.copy(op)
        new.adjustments, new.warnings = list(op.adjustments), list(op.warnings)
        new.in_frac = f_in
        if op.weighted:
            layer, d = layers[op.name], diffs[op.name]
            # a weighted op always has weights, bias and w_frac: the plan validates them
            assert op.weights is not None and op.bias is not None and op.w_frac is not None
            f_w = layer.stated.get("f_w", d.formats.get("f_w", (op.w_frac,))[0])
            new.weights = layer.weights.astype(op.weights.dtype)
            new.bias = layer.bias.astype(op.bias.dtype)
            new.bias_lshift, new.out_rshift = layer.bias_lshift, layer.out_rshift
            new.w_frac, new.b_frac = f_w, f_w + f_in - layer.bias_lshift
            new.out_frac = f_w + f_in - layer.out_rshift
            if d.parts or new.in_frac != op.in_frac or new.w_frac != op.w_frac:
                top = (1 << (op.weight_bits - 1)) - 1  # the largest q15_t or q7_t
                new.weight_saturations = int((np.abs(new.weights.astype(np.int32)) >= top).sum())
                new.bias_saturations = int((np.abs(new.bias.astype(np.int32)) >= top).sum())
                new.adjustments.append(
                    f"from {weights.path} ({layer.stem}_*): "
                    + ("; ".join(f"{p.part} {p.cause}" for p in d.parts) or "other frac bits")
                )
        else:
            new.out_frac = f_in
        ops.append(new)
        f_in = new.out_frac
    plan = QuantPlan(
        base.bits,
        weights.rounding or base.rounding,
        base.rule,
        base.input_shape,
        base.model_input_shape,
        input_frac,
        base.input_range,
        ops,
        base.final_activation,
        dict(base.source),
        base.version,
        base.paths,
        dict(base.macro_names),
    )
    return HeaderPlan(plan, base, diff, weights)


# ---- sample_input_output.h -------------------------------------------------------


@dataclass
class SampleHeader:
    """A sample_input_output.h read against a plan: INPUT_DATA and each conv/dense op's output, flat."""

    path: str
    input: np.ndarray
    outputs: dict[str, np.ndarray]
    stems: dict[str, str]
    plan_hash: str | None


def read_sample(path: str | Path | Header, plan: QuantPlan, stems: dict[str, str]) -> SampleHeader:
    """Read a sample_input_output.h; stems: {op name: STEM} as weights.h maps them (read_weights).

    Raises:
        HeaderError: INPUT_DATA or an op's output missing, malformed, of the wrong length or out of range.
    """
    header = path if isinstance(path, Header) else read_header(path)
    x = header.array(
        "INPUT_DATA", int(np.prod(plan.input_shape)), f"the plan's input {plan.input_shape} (H, W, C) needs"
    )
    outputs = {
        op.name: header.array(stems[op.name], op.size, f"the plan's {op.name} output {op.out_shape} (H, W, C) needs")
        for op in plan.ops
        if op.weighted
    }
    return SampleHeader(header.path, x, outputs, dict(stems), header.string("QVERIFY_PLAN_HASH"))


def _dump_order(shape) -> np.ndarray:
    """perm with header[i] = hwc[perm[i]] for the notebook's dump a.transpose(2, 0, 1).flatten('F')."""
    return np.arange(int(np.prod(shape))).reshape(shape).transpose(2, 0, 1).flatten("F")


def diff_sample(sample: SampleHeader, plan: QuantPlan, reference, other=None) -> HeaderDiff:
    """Each conv/dense output in the sample header against what `reference` (an Engine, normally the shift
    model) computes from the header's own values: op k is fed the header's previous conv/dense output
    through the plan's ReLU and pooling, so a difference is op k's own, not one carried from an earlier op.

    other: the same engine built for the other rounding, to name a header from the other build.
    """
    h = sample.input.reshape(1, *plan.input_shape)
    order = _dump_order(plan.input_shape)
    inputs: list[tuple[str | None, np.ndarray]] = [(None, h)]
    if (order != np.arange(order.size)).any():  # the notebook dumps INPUT_DATA in its own order too
        x = np.empty_like(sample.input)
        x[order] = sample.input
        inputs.append(
            ("INPUT_DATA in the notebook's transpose(2, 0, 1).flatten('F') order; HWC is [h][w][c]", x.reshape(h.shape))
        )
    engines = [(None, reference)] + (
        [(f"the output of a '{other.rounding}' build (this plan is '{plan.rounding}')", other)]
        if other is not None
        else []
    )
    ops = []
    for i, op in enumerate(plan.ops):
        if not op.weighted:
            inputs = [(how, reference.run_op(i, x).out) for how, x in inputs]
            continue
        got = sample.outputs[op.name].astype(np.int64)
        perm = _dump_order(op.out_shape)
        undone = np.empty_like(got)
        undone[perm] = got
        layouts = [(None, got)] + (
            [("layout: the notebook's transpose(2, 0, 1).flatten('F') dump; HWC is [h][w][c]", undone)]
            if (perm != np.arange(perm.size)).any()
            else []
        )
        want = reference.run_op(i, inputs[0][1]).out[0].ravel().astype(np.int64)
        parts, fed = [], got
        if (got != want).any():
            bad = np.flatnonzero(got != want)
            first = [(int(k), int(got[k]), int(want[k])) for k in bad[:FIRST]]
            match = next(
                (
                    (hows, values)
                    for how_in, x in inputs
                    for how_e, engine in engines
                    for how_l, values in layouts
                    for hows in [[how_in, how_l, how_e]]
                    if (engine.run_op(i, x).out[0].ravel() == values).all()
                ),
                None,
            )
            if match is not None:
                hows, fed = match
                if hows[0]:
                    parts.append(
                        PartDiff(
                            "input", int((inputs[1][1].ravel() != sample.input).sum()), sample.input.size, [], hows[0]
                        )
                    )
                parts.append(PartDiff("output", bad.size, got.size, first, "; ".join(h for h in hows[1:] if h)))
            else:
                d = int(np.abs(got - want).max())
                cause = (
                    f"{bad.size} value(s) off by one LSB"
                    if d <= 1
                    else f"not what the plan computes from the header's input to this op (max |d| {d}): "
                    "the sample was made with other weights or shifts"
                )
                parts.append(PartDiff("output", bad.size, got.size, first, cause))
        ops.append(OpDiff(op.name, sample.stems[op.name], parts, {}))
        inputs = [(None, np.asarray(fed, np.int16).reshape(1, *op.out_shape))]  # the next op gets the header's values
    notes = []
    if sample.plan_hash and sample.plan_hash != plan.hash:
        notes.append(f"the header says it was written for plan {sample.plan_hash[:16]}; this plan is {plan.hash[:16]}")
    return HeaderDiff(sample.path, plan.hash, "sample", ops, [], notes)


MATCHED = {
    "name": "layers matched by name",
    "map": "layers matched by --map, the others by name",
    "order": "no layer named like the plan's: layers matched by the order of the conv/dense ops",
    "sample": "each conv/dense output against the plan run on the header's own input to that op",
}


def format_diff(d: HeaderDiff) -> str:
    """A short table: per op the parts that differ, their first elements and the likely cause; then the verdict."""
    lines = [
        f"{d.path} against plan {d.plan_hash[:16]} ({MATCHED[d.matched]})",
        "",
        f"{'op':<16} {'macro':<14} {'part':<12} {'differ':>11}  first (index: header / plan)",
    ]
    for op in d.ops:
        if not op.parts:
            lines.append(f"{op.op:<16} {op.stem:<14} {'':<12} {'identical':>11}")
        for k, part in enumerate(op.parts):
            more = " ..." if len(part.first) == FIRST < part.differ else ""
            first = (
                f"header {part.first[0][1]}, plan {part.first[0][2]}"
                if part.part in PARTS[2:]
                else ", ".join(f"[{i}] {h} / {p}" for i, h, p in part.first) + more
            )
            count = "1" if part.part in PARTS[2:] else f"{part.differ}/{part.size}"
            lines.append(
                f"{op.op if k == 0 else '':<16} {op.stem if k == 0 else '':<14} {part.part:<12} {count:>11}  {first}"
            )
            lines.append(f"{'':<16} {'':<14} {'':<12} {'':>11}  cause: {part.cause}")
        if op.parts and op.formats:
            lines.append(
                f"{'':<16} {'':<14} frac bits (header / plan): "
                + ", ".join(f"{k} {h} / {p}" for k, (h, p) in op.formats.items())
            )
    for stem in d.unmapped:
        lines.append(f"{'(none)':<16} {stem:<14} the header's layer {stem} maps to no op of the plan")
    lines += [""] + [f"note: {n}" for n in d.notes]
    n_bad = sum(1 for op in d.ops if op.parts)
    if d.identical:
        what = "output" if d.matched == "sample" else "weight, bias and shift"
        lines.append(f"IDENTICAL: every {what} of the {len(d.ops)} conv/dense ops equals the plan's")
    else:
        extra = f", {len(d.unmapped)} header layer(s) unmapped" if d.unmapped else ""
        lines.append(f"DIFFERENT: {n_bad} of {len(d.ops)} conv/dense ops differ{extra}")
    return "\n".join(lines)
