"""Verify the header you flash (issue 16): read weights.h as qverify, the notebook or a person wrote it,
diff it against the plan and name the cause; and a plan hash, so headers, that do not depend on paths.

The notebook's export is re-implemented here from its text (the seed notebook, cells 20-22), sharing
no code with qverify: its rounding without clipping, its int16 cast, its moveaxis/flatten('F') order and
its shifts from ranges it estimated in float32.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qverify.calibrate import Ranges
from qverify.cheader import Header, HeaderError
from qverify.cli import main
from qverify.export import weights_header
from qverify.graph import Graph, Op
from qverify.header import read_weights
from qverify.header_diff import diff_weights, format_diff
from qverify.layout import conv_to_cmsis, dense_to_cmsis
from qverify.plan import QuantPlan, make_plan
from qverify.qformat import quantize
from strategies import Layer, chain_plan, examples, fill_q15, layer_chains, shifts

rng = np.random.default_rng(16)
W1 = rng.uniform(-0.9, 0.9, (3, 2, 2, 3))  # Keras (k_h, k_w, c_in, c_out): a 3x2 kernel
B1 = rng.uniform(-0.4, 0.4, 3)
W2 = rng.uniform(-0.9, 0.9, (48, 4))
W2[5, 2] = 1.0  # Q0.15 cannot hold 1.0: qverify saturates it to 32767, the notebook stores 32768 as int16
B2 = rng.uniform(-0.4, 0.4, 4)
# conv1's output peaks at 2.0000001: two integer bits; in float32 (what the notebook's ranges are) it is 2.0, one
RANGES = {"conv1": (-1.3, 2.0000001), "relu1": (0.0, 2.0000001), "flat": (0.0, 2.0000001), "fc1": (-3.0, 5.0)}


def graph() -> Graph:
    ops = [
        Op("conv1", "conv", (6, 5, 2), (4, 4, 3), (3, 2), weights=W1, bias=B1),
        Op("relu1", "relu", (4, 4, 3), (4, 4, 3)),
        Op("flat", "flatten", (4, 4, 3), (1, 1, 48)),
        Op("fc1", "dense", (1, 1, 48), (1, 1, 4), weights=W2, bias=B2),
    ]
    return Graph((6, 5, 2), (6, 5, 2), ops, None)


@pytest.fixture(scope="module")
def plan() -> QuantPlan:
    return make_plan(graph(), Ranges((-1.0, 0.99), RANGES, 100))


# ---- the notebook's export, re-implemented from its text -----------------------------------------


def nb_frac(lo, hi, bit_depth=16):
    """min_max_quantize / quantize_array: int_bits = ceil(log2(max |x|)), at least 0."""
    int_bits = int(np.ceil(np.log2(max(abs(lo), abs(hi)))))
    return bit_depth - 1 - max(int_bits, 0)


def notebook_weights_h(layers, act_ranges) -> str:
    """layers: [(NAME, Keras kernel, bias)]; act_ranges: [(lo, hi)] of the input and each layer's output."""
    act_frac = [nb_frac(np.float32(lo), np.float32(hi)) for lo, hi in act_ranges]  # ranges kept in float32
    text = ""
    for i, (name, w, b) in enumerate(layers):
        fw, fb = nb_frac(w.min(), w.max()), nb_frac(b.min(), b.max())
        q_w = np.round(w * 2**fw).astype(np.int64).astype(np.int16)  # no clip: 32768 wraps, as on the device
        q_b = np.round(b * 2**fb).astype(np.int64).astype(np.int16)
        flat = np.moveaxis(q_w, 2, 0).flatten("F") if w.ndim == 4 else np.moveaxis(q_w, 1, 0).flatten()
        text += f"#define {name}_WT {{{str(flat.tolist())[1:-1]}}}\n"
        text += f"#define {name}_BIAS {{{str(q_b.tolist())[1:-1]}}}\n"
        text += f"#define {name}_BIAS_LSHIFT {fw + act_frac[i] - fb}\n"
        text += f"#define {name}_OUT_RSHIFT {fw + act_frac[i] - act_frac[i + 1]}\n\n"
    return text


def diff_text(plan, text, tmp_path, name="weights.h", mapping=None):
    path = tmp_path / name
    path.write_text(text)
    return diff_weights(read_weights(path, plan, mapping), plan)


def parts(diff) -> dict[tuple[str, str], object]:
    return {(op.op, p.part): p for op in diff.ops for p in op.parts}


def test_notebook_header_known_answers(plan, tmp_path):
    """The notebook's header of a 3x2 conv and a dense layer with a weight of 1.0: transposed kernel, wrapped
    1.0, and shifts one off from the float32 range of conv1 -- each part named with its cause."""
    text = notebook_weights_h([("CONV1", W1, B1), ("FC1", W2, B2)], [(-1.0, 0.99), RANGES["conv1"], RANGES["fc1"]])
    assert "#define CONV1_WT {" in text and "\\" not in text  # one line per macro, as the notebook writes
    diff = diff_text(plan, text, tmp_path)
    found = parts(diff)
    assert set(found) == {
        ("conv1", "weights"),
        ("conv1", "out_rshift"),
        ("fc1", "weights"),
        ("fc1", "bias_lshift"),
        ("fc1", "out_rshift"),
    }
    assert found["conv1", "weights"].cause.startswith(
        "layout transposed: the notebook's moveaxis(w, 2, 0).flatten('F')"
    )
    assert found["fc1", "weights"].cause.startswith("saturated value wrapped: 1 value(s)")
    assert found["fc1", "weights"].first == [(2 * 48 + 5, -32768, 32767)]  # [out][in]: out 2, in 5
    assert found["conv1", "out_rshift"].first == [(0, 16, 17)]
    assert (
        "the header's f_out = f_w + f_in - out_rshift is 14 (Q1.14), the plan's 13 (Q2.13)"
        in found["conv1", "out_rshift"].cause
    )
    for part in ("bias_lshift", "out_rshift"):  # fc1's shifts follow from conv1's format, not from fc1
        assert found["fc1", part].first[0][1] == found["fc1", part].first[0][2] + 1
        assert "is consistent; the shift follows from the header's f_in 14 (plan 13" in found["fc1", part].cause
    assert diff.ops[0].formats == {"f_out": (14, 13)} and diff.ops[1].formats == {"f_in": (14, 13)}
    table = format_diff(diff)
    assert "DIFFERENT: 2 of 2 conv/dense ops differ" in table and "layers matched by name" in table


def set_array(text: str, name: str, values) -> str:
    body = ", ".join(str(int(v)) for v in values)
    new, n = re.subn(rf"#define {name} \{{[^}}]*\}}", f"#define {name} {{{body}}}", text)
    assert n == 1
    return new


def edit_shift(text):
    return text.replace("#define FC1_OUT_RSHIFT 16\n", "#define FC1_OUT_RSHIFT 15\n")


def edit_weight(text, plan):
    w = plan.op("conv1").weights.copy()
    w[7] += 1
    return set_array(text, "CONV1_WT", w)


def other_model(text, plan):
    other = quantize(np.random.default_rng(99).uniform(-0.9, 0.9, W1.shape), 15)[0]
    return set_array(text, "CONV1_WT", conv_to_cmsis(other))


def other_qformat(text, plan):
    return set_array(text, "FC1_WT", dense_to_cmsis(quantize(W2, 14)[0]))  # Q1.14 where the plan has Q0.15


EDITS = {
    "one shift": (
        lambda t, p: edit_shift(t),
        ("fc1", "out_rshift"),
        "off by -1: the header's f_out = f_w + f_in - out_rshift is 13 (Q2.13), the plan's 12 (Q3.12); "
        "the header's own comment says f_out 12: the shift was edited",
    ),
    "one weight": (edit_weight, ("conv1", "weights"), "1 value(s) edited: the other 35 equal the plan's"),
    "another model": (other_model, ("conv1", "weights"), "from another model: no layout, wrap, Q-format or other op"),
    "another Q-format": (
        other_qformat,
        ("fc1", "weights"),
        "another Q-format: header = plan x 2^-1 (up to 1 LSB): the weights quantized with -1 frac bits",
    ),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_hand_edited_header_names_the_cause(plan, tmp_path, edit):
    """qverify's own header edited by hand in one place: exactly that part differs, with the right cause."""
    change, where, cause = EDITS[edit]
    diff = diff_text(plan, change(weights_header(plan), plan), tmp_path)
    found = parts(diff)
    assert list(found) == [where] and found[where].cause.startswith(cause), found
    if edit == "another Q-format":  # the plan's shifts on Q1.14 weights: every format after them one lower
        assert diff.ops[1].formats == {"f_w": (14, 15), "f_b": (14, 15), "f_out": (11, 12)}
    if edit == "one weight":
        assert found[where].first == [(7, int(plan.op("conv1").weights[7]) + 1, int(plan.op("conv1").weights[7]))]


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def break_header(text: str, how: str) -> tuple[str, str]:
    """(broken text, the error's expected 'weights.h:LINE: MACRO: ...' prefix as a regex)."""
    if how == "missing macro":
        text = re.sub(r"#define FC1_BIAS \{[^}]*\}\n", "", text)
        return text, rf"weights.h:{line_of(text, '#define FC1_WT')}: FC1_BIAS is not defined: layer FC1"
    if how == "wrong length":
        text = re.sub(r"(#define CONV1_WT \{ \\\n    )-?\d+, ", r"\1", text)
        return text, (
            rf"weights.h:{line_of(text, '#define CONV1_WT')}: CONV1_WT: has 35 values; the plan's conv1, "
            r"conv 3x2 kernel, 2 -> 3 channels: \[c_out\]\[k_h\]\[k_w\]\[c_in\], needs 36"
        )
    if how == "out of range":
        text = re.sub(r"(#define FC1_BIAS \{ \\\n    -?\d+), -?\d+", r"\1, 40000", text)
        return text, (
            rf"weights.h:{line_of(text, '40000')}: FC1_BIAS: element 1 is 40000, outside q15 "
            r"\[-32768, 32767\]; a \(q15_t\) cast would make it -25536"
        )
    if how == "syntax error":
        second = text.index("\n", text.index("#define CONV1_WT")) + 1  # the macro's second line
        text = text[:second] + text[second:].replace(", ", " ", 1)
        return text, (
            rf"weights.h:{line_of(text, '#define CONV1_WT') + 1}: "
            r"CONV1_WT: expected ',' or '}' after element 0"
        )
    if how == "missing backslash":
        second = text.index("\n", text.index("#define CONV1_WT")) + 1
        end = text.index("\n", second)
        text = text[: end - 2] + text[end:]  # the line loses its ' \'
        return text, rf"weights.h:{line_of(text, '#define CONV1_WT') + 1}: CONV1_WT: array not closed with '}}'"
    raise ValueError(how)


MALFORMED = ["missing macro", "wrong length", "out of range", "syntax error", "missing backslash"]


@pytest.mark.parametrize("how", MALFORMED)
def test_malformed_header_is_one_clear_error(plan, tmp_path, how, capsys):
    """Each defect is one HeaderError naming file, line and macro; the CLI says it in one line and exits 2."""
    text, expected = break_header(weights_header(plan), how)
    (tmp_path / "weights.h").write_text(text)
    plan.save(tmp_path / "plan")
    with pytest.raises(HeaderError, match=rf"^{re.escape(str(tmp_path))}/{expected}") as exc:
        read_weights(tmp_path / "weights.h", plan)
    assert "\n" not in str(exc.value)
    capsys.readouterr()
    assert main(["diff-header", str(tmp_path / "weights.h"), "--plan", str(tmp_path / "plan")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0] == f"qverify diff-header: error: {exc.value}"


HAND = """/* written by hand, // not a comment end
   across lines */
#ifndef NN_WEIGHTS_H
#define NN_WEIGHTS_H
#include "arm_math.h"
#define SCALE(x) ((x) * 2)     // a function-like macro: not data
#define GAIN 0.5f              /* a float: never asked for, never read */
#define CONV1_WT {%s}
#define CONV1_BIAS { (q15_t)%d, (int16_t) ( %d ), \\
                      0x%X }   // hex
#define CONV1_BIAS_LSHIFT (%du)
#define CONV1_OUT_RSHIFT %s
#define FC1_WT { %s, }  /* a trailing comma is C */
#define FC1_BIAS {%s}
#define FC1_BIAS_LSHIFT %d
#define FC1_OUT_RSHIFT %d
#endif
"""


def hand_header(plan) -> str:
    conv, fc = plan.op("conv1"), plan.op("fc1")
    w = [f"{v}" if i % 3 else f"(q15_t){v}" for i, v in enumerate(conv.weights.tolist())]
    conv_wt = ", \\\n  ".join(", ".join(w[i : i + 5]) for i in range(0, len(w), 5))
    b = conv.bias.tolist()
    assert b[2] >= 0
    rshift = oct(conv.out_rshift).replace("0o", "0")  # octal, as C reads a leading 0
    return HAND % (
        conv_wt,
        b[0],
        b[1],
        b[2],
        conv.bias_lshift,
        rshift,
        ",".join(map(str, fc.weights.tolist())),
        ", ".join(f"-0x{-v:x}" if v < 0 else f"+{v}" for v in fc.bias.tolist()),
        fc.bias_lshift,
        fc.out_rshift,
    )


def test_hand_written_header_forms_read_back(plan, tmp_path):
    """Continuations, casts, parentheses, comments of both kinds, hex, octal, suffixes, signs, a trailing comma:
    the values are the plan's."""
    diff = diff_text(plan, hand_header(plan), tmp_path)
    assert diff.identical, format_diff(diff)
    header = Header("#define A {0x7FFF, -0x8000, 010, 0b11, 5L, (short)-(3)}\n#define B 0\n", "x.h")
    assert header.array("A").tolist() == [32767, -32768, 8, 3, 5, -3] and header.scalar("B") == 0
    for body, message in [
        ("{1, 2.5}", "unexpected '2.5}'"),
        ("{(q7_t)3}", "cast to 'q7_t' is not read"),
        ("{09}", "'09' is not a valid octal literal"),
        ("{1} 2", "unexpected '2' after"),
        ("{}", "expected an integer, found '}'"),
        ("{1,,2}", "expected an integer, found ','"),
    ]:
        with pytest.raises(HeaderError, match=rf"^x.h:2: A: {re.escape(message)}"):
            Header(f"\n#define A {body}\n", "x.h").array("A")
    with pytest.raises(HeaderError, match=r"^x.h:3: A: defined again, differently \(first at line 1\)"):
        Header("#define A 1\n#define B 2\n#define A 2\n", "x.h").scalar("A")
    with pytest.raises(HeaderError, match=r"^x.h:2: unterminated /\* comment"):
        Header("#define A 1\n/* no end\n", "x.h")


def rename(text: str, names: dict[str, str]) -> str:
    for old, new in names.items():
        text = re.sub(rf"\b{old}_", f"{new}_", text)
    return text


def test_layers_matched_by_order_or_by_map(plan, tmp_path, capsys):
    """A header whose layer names are all different is matched in op order (and says so); --map names one."""
    plan.save(tmp_path / "plan")
    text = rename(weights_header(plan), {"CONV1": "LAYER_A", "FC1": "LAYER_B"})
    diff = diff_text(plan, text, tmp_path)
    assert diff.identical and diff.matched == "order" and [op.stem for op in diff.ops] == ["LAYER_A", "LAYER_B"]
    assert main(["diff-header", str(tmp_path / "weights.h"), "--plan", str(tmp_path / "plan")]) == 0
    out = capsys.readouterr().out
    assert "no layer named like the plan's: layers matched by the order of the conv/dense ops" in out
    partly = rename(weights_header(plan), {"CONV1": "C1"})
    with pytest.raises(
        HeaderError,
        match=r"CONV1_WT is not defined \(for the plan's conv1\); the header's unmapped "
        r"layers: C1 \(--map conv1=STEM\)",
    ):
        diff_text(plan, partly, tmp_path)
    assert diff_text(plan, partly, tmp_path, mapping={"conv1": "C1"}).identical
    swapped = rename(weights_header(plan), {"CONV1": "TMP", "FC1": "CONV1", "TMP": "FC1"})
    with pytest.raises(HeaderError, match=r"CONV1_WT: has 192 values; the plan's conv1"):
        diff_text(plan, swapped, tmp_path)


# ---- the names of the macros qverify writes (item 1) ----------------------------------------------

rng_nb = np.random.default_rng(161)
# the notebook's Net() in small: unnamed layers, so Keras names them conv2d, conv2d_1, ..., dense_2
NB_LAYERS = [
    ("conv2d", "CONV1", rng_nb.uniform(-0.9, 0.9, (3, 1, 1, 2)), rng_nb.uniform(-0.3, 0.3, 2)),
    ("conv2d_1", "CONV2", rng_nb.uniform(-0.9, 0.9, (3, 1, 2, 2)), rng_nb.uniform(-0.3, 0.3, 2)),
    ("dense", "FC1", rng_nb.uniform(-0.9, 0.9, (6, 4)), rng_nb.uniform(-0.3, 0.3, 4)),
    ("dense_1", "FC2", rng_nb.uniform(-0.9, 0.9, (4, 3)), rng_nb.uniform(-0.3, 0.3, 3)),
    ("dense_2", "FC3", rng_nb.uniform(-0.9, 0.9, (3, 1)), rng_nb.uniform(-0.3, 0.3, 1)),
]


def unnamed_net() -> tuple[Graph, Ranges]:
    (c1, _, w1, b1), (c2, _, w2, b2), (d1, _, w3, b3), (d2, _, w4, b4), (d3, _, w5, b5) = NB_LAYERS
    ops = [
        Op(c1, "conv", (10, 1, 1), (8, 1, 2), (3, 1), weights=w1, bias=b1),
        Op(c2, "conv", (8, 1, 2), (6, 1, 2), (3, 1), weights=w2, bias=b2),
        Op("max_pooling2d", "maxpool", (6, 1, 2), (3, 1, 2), (2, 1), stride=(2, 1)),
        Op("flatten", "flatten", (3, 1, 2), (1, 1, 6)),
        Op(d1, "dense", (1, 1, 6), (1, 1, 4), weights=w3, bias=b3),
        Op(d2, "dense", (1, 1, 4), (1, 1, 3), weights=w4, bias=b4),
        Op(d3, "dense", (1, 1, 3), (1, 1, 1), weights=w5, bias=b5),
    ]
    ranges = {op.name: (-2.0, 2.0) for op in ops}
    return Graph((10, 1, 1), (10, 1, 1), ops, None), Ranges((-1.0, 0.99), ranges, 10)


def notebook_headers() -> tuple[str, str]:
    """The notebook's weights.h and sample_input_output.h of the named Net (CONV1 ... FC3), as its cells write."""
    weights = notebook_weights_h([(stem, w, b) for _, stem, w, b in NB_LAYERS], [(-1.0, 0.99)] + [(-2.0, 2.0)] * 5)
    sample = "#define INPUT_DATA {1, 2, 3}\n" + "".join(f"#define {stem} {{0}}\n" for _, stem, _, _ in NB_LAYERS)
    return weights, sample


def c_macros(text: str) -> set[str]:
    """The macros a header defines that the firmware may use (not qverify's own QVERIFY_* checks)."""
    return {name for name in Header(text).defines if not name.startswith("QVERIFY_")}


def test_notebook_names_name_the_macros_qverify_writes(tmp_path):
    """A plan of the unnamed Net named from the notebook's header (in op order) writes exactly the notebook's
    macros, and firmware written against CONV1_WT ... FC3_BIAS builds with them unchanged."""
    from qverify.engines.shift import ShiftEngine
    from qverify.export import sample_header
    from qverify.mcu.codegen import network_c
    from qverify.workflow import named_ops
    from tools import require_compiler

    graph_, ranges = unnamed_net()
    nb_weights, nb_sample = notebook_headers()
    plain = make_plan(graph_, ranges)
    assert "CONV2D_1_WT" in weights_header(plain)  # what `quantize --model nb:Net` wrote before
    names = named_ops(graph_, names_in_order=("nb.h", Header(nb_weights).stems()))
    assert names == {op: stem for op, stem, _, _ in NB_LAYERS}
    plan = make_plan(graph_, ranges, macro_names=names)
    assert plan.macro_names == names and plan.hash != plain.hash  # the names change the headers: in the hash
    x = fill_q15(np.random.default_rng(1), (1, *plan.input_shape), "full")
    outputs = {k: v[0] for k, v in ShiftEngine(plan).run(x).outputs.items()}
    ours_w, ours_s = weights_header(plan), sample_header(plan, x[0], outputs)
    assert c_macros(ours_w) == c_macros(nb_weights) and c_macros(ours_s) == c_macros(nb_sample)
    assert "CONV1_WT" in network_c(plan) and "CONV2D" not in network_c(plan)
    # the plan records them: saved, loaded and read back by name, the same hash
    plan.save(tmp_path / "nn")
    loaded = QuantPlan.load(tmp_path / "nn")
    assert loaded.macro_names == names and loaded.hash == plan.hash
    read = read_weights(Header(ours_w, "weights.h"), loaded)
    assert read.matched == "name" and [layer.stem for layer in read.layers] == [s for _, s, _, _ in NB_LAYERS]
    assert diff_weights(read, loaded).identical and read.plan_hash == plan.hash
    # firmware written against the notebook's header
    (tmp_path / "weights.h").write_text(ours_w)
    (tmp_path / "sample_input_output.h").write_text(ours_s)
    arrays = "".join(
        f"static const short w{i}[] = {stem}_WT, b{i}[] = {stem}_BIAS, e{i}[] = {stem};\n"
        for i, (_, stem, _, _) in enumerate(NB_LAYERS)
    )
    uses = " + ".join(
        f"w{i}[0] + b{i}[0] + {stem}_BIAS_LSHIFT + {stem}_OUT_RSHIFT + e{i}[0]"
        for i, (_, stem, _, _) in enumerate(NB_LAYERS)
    )
    (tmp_path / "fw.c").write_text(
        '#include "weights.h"\n#include "sample_input_output.h"\n'
        f"{arrays}static const short in[] = INPUT_DATA;\n"
        f"int main(void) {{ return in[0] + {uses}; }}\n"
    )
    cc = require_compiler("gcc")
    built = subprocess.run(
        [
            cc,
            "-std=c99",
            "-Wall",
            "-Werror",
            "-DARM_NN_TRUNCATE",
            "-fsyntax-only",
            f"-I{tmp_path}",
            str(tmp_path / "fw.c"),
        ],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr


@pytest.mark.parametrize(
    "names, message",
    [
        ({"conv2d": "1X"}, "'1X' is not a C identifier"),
        ({"conv2d": "FC", "dense": "FC"}, "ops 'conv2d' and 'dense' both named FC"),
        ({"conv2d": "INPUT_DATA"}, "would define C macro INPUT_DATA, which qverify already defines"),
        ({"dense": "CONV2D_1_BIAS"}, "op 'dense' would define C macro CONV2D_1_BIAS, which op 'conv2d_1' already"),
        ({"flatten": "F"}, "the plan has no conv/dense op 'flatten'"),
    ],
)
def test_bad_macro_names_are_refused(names, message, tmp_path):
    """A stem that is not a C identifier, two ops of one stem, a stem clashing with qverify's macros or another
    op's; also in a plan.json edited to hold one (its hash recomputed)."""
    from qverify.errors import PlanError

    graph_, ranges = unnamed_net()
    with pytest.raises(PlanError, match=re.escape(message)):
        make_plan(graph_, ranges, macro_names=names)
    plan = make_plan(graph_, ranges, macro_names={"conv2d": "CONV1"})
    plan.save(tmp_path)
    meta = json.loads((tmp_path / "plan.json").read_text())
    meta["macro_names"] = names
    (tmp_path / "plan.json").write_text(json.dumps(meta))
    (tmp_path / "qverify-manifest.json").unlink()
    with pytest.raises(PlanError, match=re.escape(message)):
        QuantPlan.load(tmp_path)


def test_quantize_names_the_macros_from_a_map_or_a_header(keras_project, tmp_path, capsys):
    """quantize --map and --names-from: the names said in the output, recorded in plan.json, used by weights.h,
    sample_input_output.h and diff-header; a header of another layer count refused before calibrating."""
    root = keras_project
    base = ["quantize", "--model", str(root / "m.keras"), "--data", str(root / "x.npy")]
    assert main([*base, "--map", "conv1=CONV1X,fc2=OUT", "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "macro names (from --map): conv1 → CONV1X, fc1 → FC1, fc2 → OUT" in out
    assert json.loads((tmp_path / "a" / "plan.json").read_text())["macro_names"] == {"conv1": "CONV1X", "fc2": "OUT"}
    w, s = ((tmp_path / "a" / n).read_text() for n in ("weights.h", "sample_input_output.h"))
    assert {"CONV1X_WT", "FC1_WT", "OUT_OUT_RSHIFT"} <= c_macros(w) and "CONV1_WT" not in w
    assert {"CONV1X", "FC1", "OUT"} <= c_macros(s)
    assert main(["diff-header", str(tmp_path / "a" / "weights.h"), "--plan", str(tmp_path / "a")]) == 0
    assert "layers matched by name" in capsys.readouterr().out
    (tmp_path / "fw.h").write_text("#define L1_WT {0}\n#define L2_WT {0}\n#define L3_WT {0}\n")
    assert main([*base, "--names-from", str(tmp_path / "fw.h"), "--out", str(tmp_path / "b")]) == 0
    assert (
        f"macro names (from {tmp_path / 'fw.h'}, in op order): conv1 → L1, fc1 → L2, fc2 → L3"
        in capsys.readouterr().out
    )
    assert {"L1_WT", "L2_BIAS", "L3_OUT_RSHIFT"} <= c_macros((tmp_path / "b" / "weights.h").read_text())
    (tmp_path / "two.h").write_text("#define L1_WT {0}\n#define L2_WT {0}\n")
    assert main([*base, "--names-from", str(tmp_path / "two.h"), "--out", str(tmp_path / "c")]) == 2
    assert (
        "the header has 2 layer(s) (L1, L2) but the model has 3 conv/dense op(s) (conv1, fc1, fc2)"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "c").exists()


# ---- write -> read, for any plan ----------------------------------------------------------------


@st.composite
def small_plans(draw):
    """Random layer chains (1-4 ops, a conv or dense op at least), random shifts, weights of any fill."""
    one_d = draw(st.booleans())
    shape = (draw(st.integers(1, 8)), 1 if one_d else draw(st.integers(1, 6)), draw(st.integers(1, 3)))
    layers = draw(layer_chains(one_d, shape, min_layers=1, max_layers=4, max_units=4))
    if not any(layer.kind in ("conv", "dense") for layer in layers):
        flat = any(layer.kind in ("gap", "flatten") for layer in layers)
        layers += (Layer("dense", 3) if flat else Layer("conv", 2, (1, 1), (1, 1)),)
    n = sum(layer.kind in ("conv", "dense") for layer in layers)
    seed = draw(st.integers(0, 2**32 - 1))
    plan = chain_plan(
        shape,
        layers,
        [f"l{i}_{layer.kind}" for i, layer in enumerate(layers)],
        seed,
        [draw(st.tuples(shifts, shifts)) for _ in range(n)],
    )
    values = np.random.default_rng(seed)
    for op in plan.ops:
        if op.weighted:
            op.weights = fill_q15(values, op.weights.shape, draw(st.sampled_from(["full", "extreme", "qmin", "qmax"])))
    return plan


def check_round_trip(plan, tmp_path) -> None:
    """weights.h of the plan reads back to exactly its arrays and shifts, and diffs as identical."""
    (tmp_path / "weights.h").write_text(weights_header(plan))
    header = read_weights(tmp_path / "weights.h", plan)
    weighted = [op for op in plan.ops if op.weighted]
    assert [layer.op for layer in header.layers] == [op.name for op in weighted] and header.matched == "name"
    for op, layer in zip(weighted, header.layers, strict=True):
        assert layer.weights.dtype == np.int16 and layer.weights.tolist() == op.weights.tolist()
        assert layer.bias.tolist() == op.bias.tolist()
        assert (layer.bias_lshift, layer.out_rshift) == (op.bias_lshift, op.out_rshift)
    assert diff_weights(header, plan).identical and header.plan_hash == plan.hash


@settings(max_examples=examples(0.5))
@given(plan=small_plans())
def test_any_plans_weights_h_survives_write_and_read(plan, tmp_path_factory):
    """Property: qverify's weights.h of any plan reads back unchanged (every value, every shift)."""
    check_round_trip(plan, tmp_path_factory.mktemp("rt"))


# ---- the command ---------------------------------------------------------------------------------


def test_diff_header_exit_codes_and_json(plan, tmp_path, capsys):
    """0 identical, 1 different (with --json), 2 bad input; a bad header is reported before TensorFlow loads."""
    plan.save(tmp_path / "plan")
    (tmp_path / "good.h").write_text(weights_header(plan))
    (tmp_path / "edited.h").write_text(edit_shift(weights_header(plan)))
    (tmp_path / "bad.h").write_text(break_header(weights_header(plan), "syntax error")[0])
    argv = ["diff-header", "--plan", str(tmp_path / "plan")]
    assert main([*argv, str(tmp_path / "good.h")]) == 0
    assert "IDENTICAL" in capsys.readouterr().out
    assert main([*argv, str(tmp_path / "edited.h"), "--json", str(tmp_path / "d.json")]) == 1
    out = capsys.readouterr().out
    assert "fc1" in out and "out_rshift" in out and "header 15, plan 16" in out and "DIFFERENT: 1 of 2" in out
    report = json.loads((tmp_path / "d.json").read_text())
    assert report["identical"] is False and report["ops"][1]["parts"][0]["part"] == "out_rshift"
    assert main([*argv, str(tmp_path / "bad.h")]) == 2
    assert main([*argv, str(tmp_path / "missing.h")]) == 2
    assert main([*argv, str(tmp_path / "good.h"), "--model", "m.keras"]) == 2
    assert main([*argv, str(tmp_path / "good.h"), "--map", "conv9=X"]) == 2
    assert "no conv/dense op 'conv9'" in capsys.readouterr().err
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "qverify", *argv, str(tmp_path / "bad.h")],
        capture_output=True,
        text=True,
        check=False,
    )
    err = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
    assert proc.returncode == 2 and len(err) == 1 and "CONV1_WT" in err[0]
    assert not re.search(r"\| +(tensorflow|keras)\b", proc.stderr)


# ---- sample_input_output.h -------------------------------------------------------------------------


def notebook_dump(a: np.ndarray) -> np.ndarray:
    """The notebook's dump of an (H, W, C) tensor: temp.transpose(2, 0, 1).flatten('F')."""
    return np.asarray(a).transpose(2, 0, 1).flatten("F")


def sample_h(plan, x0, outputs, dump=lambda a: np.asarray(a).ravel()) -> str:
    """sample_input_output.h in the notebook's style: INPUT_DATA and one macro per conv/dense op."""
    text = f"#define INPUT_DATA {{{str(dump(x0).tolist())[1:-1]}}}\n"
    for op in plan.ops:
        if op.weighted:
            text += f"#define {op.name.upper()} {{{str(dump(outputs[op.name]).tolist())[1:-1]}}}\n"
    return text


@pytest.fixture(scope="module")
def sample(plan):
    """(x0 (H, W, C), {op: output (H, W, C)} of the shift model, and of a rounding build, engines)."""
    from qverify.engines.shift import ShiftEngine

    x = fill_q15(np.random.default_rng(5), (1, *plan.input_shape), "full")
    engines = ShiftEngine(plan), ShiftEngine(plan, rounding="round")
    runs = [{k: v[0] for k, v in e.run(x).outputs.items()} for e in engines]
    return x[0], runs[0], runs[1], engines


def test_sample_header_outputs_against_the_plan(plan, sample, tmp_path):
    """qverify's sample_input_output.h is identical; the notebook's dump order (input and conv1 output, W > 1)
    and a header from the other rounding build are each named."""
    from qverify.export import sample_header
    from qverify.header import read_sample
    from qverify.header_diff import diff_sample

    x0, outputs, rounded, engines = sample
    stems = {"conv1": "CONV1", "fc1": "FC1"}

    def diff(text):
        (tmp_path / "s.h").write_text(text)
        return diff_sample(read_sample(tmp_path / "s.h", plan, stems), plan, *engines)

    assert diff(sample_header(plan, x0, outputs)).identical
    found = parts(diff(sample_h(plan, x0, outputs, notebook_dump)))
    assert list(found) == [("conv1", "input"), ("conv1", "output")]
    assert found["conv1", "input"].cause.startswith("INPUT_DATA in the notebook's transpose(2, 0, 1).flatten('F')")
    assert found["conv1", "output"].cause.startswith("layout: the notebook's transpose(2, 0, 1).flatten('F') dump")
    assert any((rounded[k] != outputs[k]).any() for k in rounded)
    found = parts(diff(sample_h(plan, x0, rounded)))
    assert found and all(p.cause.startswith("the output of a 'round' build") for p in found.values())
    both = parts(diff(sample_h(plan, x0, rounded, notebook_dump)))  # the notebook's dump of a rounding build
    assert both["conv1", "output"].cause.startswith("layout: the notebook's") and both[
        "conv1", "output"
    ].cause.endswith("the output of a 'round' build (this plan is 'truncate')")
    unclipped = sample_h(plan, x0, outputs).replace("#define FC1 {", "#define FC1 {40000, ", 1)
    unclipped = re.sub(r"(#define FC1 \{40000, )-?\d+, ", r"\1", unclipped)
    with pytest.raises(HeaderError, match=r"s.h:3: FC1: element 0 is 40000, outside q15"):
        diff(unclipped)
    with pytest.raises(HeaderError, match=r"s.h:1: INPUT_DATA: has 59 values; the plan's input \(6, 5, 2\)"):
        diff(re.sub(r"\{-?\d+, ", "{", sample_h(plan, x0, outputs), count=1))


def test_diff_header_with_sample(plan, sample, tmp_path, capsys):
    """--sample: both headers checked, exit 0 when both match, 1 when the sample does not."""
    from qverify.export import sample_header

    x0, outputs, rounded, _ = sample
    plan.save(tmp_path / "plan")
    (tmp_path / "weights.h").write_text(weights_header(plan))
    (tmp_path / "good.h").write_text(sample_header(plan, x0, outputs))
    (tmp_path / "round.h").write_text(sample_header(plan, x0, rounded))
    argv = ["diff-header", str(tmp_path / "weights.h"), "--plan", str(tmp_path / "plan"), "--sample"]
    assert main([*argv, str(tmp_path / "good.h"), "--json", str(tmp_path / "d.json")]) == 0
    assert json.loads((tmp_path / "d.json").read_text())["sample"]["identical"] is True
    capsys.readouterr()
    assert main([*argv, str(tmp_path / "round.h")]) == 1
    assert "the output of a 'round' build" in capsys.readouterr().out


# ---- the plan hash: content, not paths ------------------------------------------------------------


def test_headers_are_byte_identical_from_two_checkouts(tmp_path):
    """One model and data copied into two directories: same plan hash, byte-identical weights.h and
    sample_input_output.h; plan.json still records where each came from."""
    import keras

    keras.utils.set_random_seed(3)
    first = tmp_path / "checkout_a" / "fw"
    first.mkdir(parents=True)
    keras.Sequential(
        [
            keras.Input((12, 1)),
            keras.layers.Conv1D(2, 3, name="conv1"),
            keras.layers.Flatten(),
            keras.layers.Dense(2, name="fc1"),
        ]
    ).save(first / "m.keras")
    np.save(first / "x.npy", np.random.default_rng(0).uniform(-1, 1, (8, 12)).astype(np.float32))
    second = tmp_path / "elsewhere" / "deeper" / "fw"
    shutil.copytree(first, second)
    for d in (first, second):
        assert (
            main(["quantize", "--model", str(d / "m.keras"), "--data", str(d / "x.npy"), "--out", str(d / "nn")]) == 0
        )
    for name in ("weights.h", "sample_input_output.h"):
        assert (first / "nn" / name).read_bytes() == (second / "nn" / name).read_bytes(), name
    a, b = (QuantPlan.load(d / "nn") for d in (first, second))
    assert a.hash == b.hash and a.source["data"] != b.source["data"]
    assert a.source["data_digest"] == b.source["data_digest"] and a.source["data_digest"].startswith("sha256:")
    assert main(["diff-header", str(first / "nn" / "weights.h"), "--plan", str(second / "nn")]) == 0


def test_plans_saved_before_the_content_hash_still_load(plan, tmp_path):
    """A plan.json from before (paths hashed, no 'unhashed' list) loads, and is still refused when edited."""
    plan = copy.deepcopy(plan)
    plan.source.update(model="/old/checkout/m.keras", data="/old/checkout/x.npy")
    plan.save(tmp_path)
    (tmp_path / "qverify-manifest.json").unlink()  # an older qverify wrote no manifest, no hash in plan.npz
    np.savez(tmp_path / "plan.npz", **plan._arrays())
    meta = json.loads((tmp_path / "plan.json").read_text())
    meta["source"].update(model="/old/checkout/m.keras", data="/old/checkout/x.npy")  # absolute, as it wrote them
    del meta["unhashed"]
    meta["hash"] = plan._hash(source_paths=True)
    assert meta["hash"] != plan.hash
    (tmp_path / "plan.json").write_text(json.dumps(meta))
    assert QuantPlan.load(tmp_path).hash == plan.hash  # loaded, and hashed by content from now on
    meta["source"]["data"] = "/somewhere/else.npy"
    (tmp_path / "plan.json").write_text(json.dumps(meta))
    with pytest.raises(Exception, match="does not match its hash"):
        QuantPlan.load(tmp_path)


# ---- the header as the plan: compare, eval and target run it (item 3) ------------------------------


def test_qverify_header_round_trips_to_the_same_plan_hash(plan):
    """header → plan → the original plan's hash; the notebook's header makes a valid plan of its own integers."""
    from qverify.header_plan import plan_from_header

    run = plan_from_header(Header(weights_header(plan), "weights.h"), plan)
    assert run.plan.hash == plan.hash and run.diff.identical
    assert "matches the plan read from it" in "\n".join(run.lines())
    text = notebook_weights_h([("CONV1", W1, B1), ("FC1", W2, B2)], [(-1.0, 0.99), RANGES["conv1"], RANGES["fc1"]])
    nb = plan_from_header(Header(text, "nb.h"), plan)
    assert nb.plan.hash != plan.hash and not nb.diff.identical
    header = read_weights(Header(text, "nb.h"), plan)
    for op, layer in zip([o for o in nb.plan.ops if o.weighted], header.layers, strict=True):
        assert op.weights.tolist() == layer.weights.tolist() and op.out_rshift == layer.out_rshift
    # the float32 range gave conv1 one more frac bit: the header's formats follow from its shifts
    assert (nb.plan.op("conv1").out_frac, nb.plan.op("fc1").in_frac) == (14, 14)
    assert nb.plan.op("relu1").out_frac == 14


def test_hand_edited_weight_becomes_the_plan(plan):
    """One weight changed: the plan holds it (and only it differs), with an adjustment naming the edit."""
    from qverify.header_plan import plan_from_header

    run = plan_from_header(Header(edit_weight(weights_header(plan), plan), "w.h"), plan)
    got, want = run.plan.op("conv1").weights, plan.op("conv1").weights
    assert np.flatnonzero(got != want).tolist() == [7] and int(got[7]) == int(want[7]) + 1
    assert run.plan.op("fc1").weights.tolist() == plan.op("fc1").weights.tolist()
    assert run.plan.hash != plan.hash and "1 value(s) edited" in run.plan.op("conv1").adjustments[-1]
    assert "differs from the model's own plan" in "\n".join(run.lines())


@pytest.fixture(scope="module")
def keras_project(tmp_path_factory):
    """A small Keras model (Conv1D 3x1 → Dense → Dense), 24 frames, and its headers written by quantize."""
    import keras

    root = tmp_path_factory.mktemp("hdr")
    keras.utils.set_random_seed(7)
    keras.Sequential(
        [
            keras.Input((16, 1)),
            keras.layers.Conv1D(4, 3, name="conv1"),
            keras.layers.Flatten(),
            keras.layers.Dense(6, name="fc1"),
            keras.layers.Dense(1, name="fc2"),
        ]
    ).save(root / "m.keras")
    np.save(root / "x.npy", np.random.default_rng(1).uniform(-1, 1, (24, 16)).astype(np.float32))
    assert (
        main(["quantize", "--model", str(root / "m.keras"), "--data", str(root / "x.npy"), "--out", str(root / "nn")])
        == 0
    )
    text = (root / "nn" / "weights.h").read_text()
    fc1 = QuantPlan.load(root / "nn").op("fc1").weights.copy()
    fc1[0] = -fc1[0] if fc1[0] else 9999
    (root / "edited.h").write_text(set_array(text, "FC1_WT", fc1))
    return root


def test_compare_runs_the_header_and_checks_its_sample(keras_project, capsys):
    """compare --header: the header's integers run (its plan hash in the table); the model's own header is
    identical; an edited weight is shown against the model's plan, still bit-exact between the engines;
    the original sample header against the edited weights is a FAIL naming fc1 (exit 1)."""
    root = keras_project
    argv = ["compare", "--model", str(root / "m.keras"), "--data", str(root / "x.npy"), "--samples", "4"]
    capsys.readouterr()
    assert (
        main(
            [
                *argv,
                "--header",
                str(root / "nn" / "weights.h"),
                "--sample-header",
                str(root / "nn" / "sample_input_output.h"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    planned = QuantPlan.load(root / "nn")
    assert f"plan {planned.hash[:16]}" in out and "the header equals the model's own plan" in out
    assert "PASS: all 4 ops bit-exact" in out and "IDENTICAL: every output" in out

    assert main([*argv, "--header", str(root / "edited.h"), "--json", str(root / "c.json")]) == 0
    out = capsys.readouterr().out
    assert "differs from the model's own plan" in out and "fc1              FC1            weights" in out
    report = json.loads((root / "c.json").read_text())
    assert report["header"]["model_plan_hash"] == planned.hash != report["header"]["plan_hash"]
    assert report["plan_hash"] == report["header"]["plan_hash"]

    assert (
        main([*argv, "--header", str(root / "edited.h"), "--sample-header", str(root / "nn" / "sample_input_output.h")])
        == 1
    )
    out = capsys.readouterr().out
    assert "FAIL: " in out and "fc1 (FC1) is not what the header computes" in out


def test_eval_reports_the_headers_accuracy_and_sqnr(keras_project, capsys):
    """eval --header: SQNR against float of the header's integers: equal for the model's own header, lower at
    fc1 (and after it) for the edited one."""
    root = keras_project
    sqnr = {}
    for name in ("nn/weights.h", "edited.h"):
        assert (
            main(
                [
                    "eval",
                    "--model",
                    str(root / "m.keras"),
                    "--data",
                    str(root / "x.npy"),
                    "--calib-overlap",
                    "--calib-samples",
                    "24",
                    "--header",
                    str(root / name),
                    "--json",
                    str(root / "e.json"),
                ]
            )
            == 0
        )
        report = json.loads((root / "e.json").read_text())
        sqnr[name] = {op["name"]: op["vs_float"]["shift"]["sqnr_db"] for op in report["ops"]}
    assert report["plan_hash"] != QuantPlan.load(root / "nn").hash  # the edited header's own plan
    assert sqnr["nn/weights.h"]["conv1"] == sqnr["edited.h"]["conv1"]
    assert sqnr["edited.h"]["fc1"] < sqnr["nn/weights.h"]["fc1"] - 3
    out = capsys.readouterr().out
    assert "OVERLAPPING: --calib-overlap allows it" in out


def test_target_runs_the_header(keras_project, capsys):
    """target --header: the emulated core runs the edited header's integers, bit-exact with the shift model."""
    from qverify.mcu import missing_reason
    from tools import absent

    reason = missing_reason()
    if reason is not None:
        absent(f"the target toolchain is missing: {reason}")
    root = keras_project
    capsys.readouterr()
    status = main(
        [
            "target",
            "--model",
            str(root / "m.keras"),
            "--data",
            str(root / "x.npy"),
            "--samples",
            "2",
            "--header",
            str(root / "edited.h"),
            "--cpu",
            "cortex-m3",
        ]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    hashed = re.search(r"the header's QVERIFY_PLAN_HASH \w+ does not match the plan read from it \((\w+)\)", out)
    assert hashed and f"plan {hashed.group(1)}" in out and "PASS: target cortex-m3" in out
