"""The C headers a firmware flashes, read against a plan: weights.h and sample_input_output.h.

As qverify writes them (export.py), as the original notebook wrote them (one line per macro) or by hand
in the same style; cheader.py reads the macros. A header's layers map to the plan's conv/dense ops by the
plan's macro stems (QuantPlan.stem: the names it records, else export.macro_name of the op name), by an
explicit {op name: STEM}, or, when none of the header's stems is one of the plan's, by the order of the
ops. Each array is read in the order and width the op's function reads (kernels.stored) and returned in
the plan's [out][in] order. header_diff.py compares them with the plan; header_plan.py makes a plan of them.

numpy and the plan only: nothing here imports TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qverify import kernels
from qverify.cheader import Header, HeaderError, read_header
from qverify.errors import ArgumentError
from qverify.plan import MAX_SHIFT, OpPlan, QuantPlan

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
