"""Property 8: parsing the generated weights.h and sample_input_output.h gives back the plan's
arrays and shifts, the input and every conv/dense output, for random plans and layer names.

Plans are built directly from OpPlans (strategies.chain_plan: random q15 weights and shifts
on a random layer chain), so many examples are cheap; outputs come from the int64 reference.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import Phase, event, example, find, given, settings
from hypothesis import strategies as st

import reference as ref
from headers import parse_macros
from qverify.errors import PlanError
from qverify.export import macro_name, sample_header, weights_header
from qverify.layout import conv_from_cmsis, notebook_conv_order
from strategies import Layer, chain_plan, examples, fails, fill_q15, layer_chains, shifts

FIND = settings(max_examples=200, database=None, deadline=None, phases=[Phase.generate])


@dataclass(frozen=True)
class HeaderCase:
    """A layer chain with op names, (bias_lshift, out_rshift) per conv/dense, a seed and the rounding."""

    input_shape: tuple[int, int, int]
    layers: tuple[Layer, ...]
    names: tuple[str, ...]
    shifts: tuple[tuple[int, int], ...]
    seed: int = 0
    rounding: str = "truncate"

    def build(self):
        """(plan, one input sample (H, W, C), {op name: that sample's output (H, W, C)})."""
        plan = chain_plan(self.input_shape, self.layers, self.names, self.seed, list(self.shifts), self.rounding)
        x = fill_q15(np.random.default_rng(self.seed + 1), (1, *self.input_shape), "full")
        outputs = {name: out[0] for name, (out, _, _) in ref.run_plan(plan, x).items()}
        return plan, x[0], outputs


# Layer names as users write them: letters, digits (also first), '_', '-', '.'; the sampled ones
# collide with each other or with INPUT_DATA once upper-cased and sanitised.
names = st.one_of(
    st.text("abcxyzAB019_-.", min_size=1, max_size=6),
    st.sampled_from(["conv1", "CONV1", "conv-1", "conv_1", "fc.1", "1x", "input_data"]),
)


@st.composite
def header_cases(draw):
    one_d = draw(st.booleans())
    shape = (draw(st.integers(1, 10)), 1 if one_d else draw(st.integers(1, 8)), draw(st.integers(1, 4)))
    layers = draw(layer_chains(one_d, shape, min_layers=1, max_layers=5, max_units=5))
    if not any(layer.kind in ("conv", "dense") for layer in layers):  # end with a conv/dense op to export
        flat = any(layer.kind in ("gap", "flatten") for layer in layers)
        layers += (Layer("dense", 3) if flat else Layer("conv", 2, (1, 1), (1, 1)),)
    n_weighted = sum(layer.kind in ("conv", "dense") for layer in layers)
    drawn = draw(st.lists(names, min_size=len(layers), max_size=len(layers)))
    unique = tuple(name if name not in drawn[:i] else f"{name}~{i}" for i, name in enumerate(drawn))  # op names differ
    return HeaderCase(
        shape,
        layers,
        unique,
        tuple(draw(st.tuples(shifts, shifts)) for _ in range(n_weighted)),
        draw(st.integers(0, 2**32 - 1)),
        draw(st.sampled_from(["truncate", "round"])),
    )


def check_headers(weights_fn, sample_fn, case: HeaderCase) -> None:
    """weights.h holds each conv/dense op's CMSIS weights, bias and both shifts; sample_input_output.h the
    input and each conv/dense output (HWC) -- or, when two ops map to one C name, export refuses."""
    plan, x0, outputs = case.build()
    stems = [macro_name(op.name) for op in plan.ops if op.weighted]
    if len(set(stems)) < len(stems) or "INPUT_DATA" in stems:
        with pytest.raises(PlanError, match="C macro"):
            weights_fn(plan)
        with pytest.raises(PlanError, match="C macro"):
            sample_fn(plan, x0, outputs)
        return
    w_text, s_text = weights_fn(plan), sample_fn(plan, x0, outputs)
    w, s = parse_macros(w_text), parse_macros(s_text)
    expected_w, expected_s = {}, {"INPUT_DATA": x0.ravel().tolist()}
    for op in plan.ops:
        if op.weighted:
            stem = macro_name(op.name)
            expected_w.update(
                {
                    f"{stem}_WT": op.weights.tolist(),
                    f"{stem}_BIAS": op.bias.tolist(),
                    f"{stem}_BIAS_LSHIFT": op.bias_lshift,
                    f"{stem}_OUT_RSHIFT": op.out_rshift,
                }
            )
            expected_s[stem] = outputs[op.name].ravel().tolist()
    for got, want, header in ((w, expected_w, "weights.h"), (s, expected_s, "sample_input_output.h")):
        assert set(got) == set(want), f"{header}: macros {sorted(set(got) ^ set(want))} unexpected or missing"
        for name, value in want.items():
            assert got[name] == value, f"{header}: {name} does not parse back to the plan's values"
    for text in (w_text, s_text):
        assert plan.hash in text and f'QVERIFY_ROUNDING "{plan.rounding}"' in text


def notebook_dump(a: np.ndarray) -> np.ndarray:
    """The notebook's activation dump: temp.transpose(2, 0, 1).flatten('F') for an (H, W, C) tensor."""
    a = np.asarray(a)
    return a.transpose(2, 0, 1).flatten("F") if a.ndim == 3 else a.ravel()


def notebook_sample_header(plan, x0, outputs):
    return sample_header(plan, notebook_dump(x0), {k: notebook_dump(v) for k, v in outputs.items()})


def notebook_weights_header(plan):
    """weights.h with conv kernels in the notebook's moveaxis(w, 2, 0).flatten('F') order."""
    plan = copy.deepcopy(plan)
    for op in plan.ops:
        if op.kind == "conv":
            keras_w = conv_from_cmsis(op.weights, *op.kernel, op.in_shape[2], op.out_shape[2])
            op.weights = notebook_conv_order(keras_w).astype(np.int16)
    return weights_header(plan)


# A 3x2 conv on a 2-D input, then flatten and a dense layer named like the notebook's ("fc-1" -> FC_1).
PIN = HeaderCase(
    (6, 5, 2),
    (Layer("conv", 3, (3, 2), (1, 1)), Layer("relu"), Layer("flatten"), Layer("dense", 4)),
    ("conv1", "relu1", "flat", "fc-1"),
    ((3, 17), (0, 31)),
    seed=1,
)


@settings(max_examples=examples(2.0))
@given(case=header_cases())
@example(case=PIN)
@example(case=HeaderCase((1, 1, 4), (Layer("dense", 2),), ("input_data",), ((0, 0),)))  # collides with INPUT_DATA
@example(
    case=HeaderCase(
        (4, 4, 1), (Layer("flatten"), Layer("dense", 2), Layer("dense", 1)), ("f", "fc.1", "fc-1"), ((0, 0), (31, 31))
    )
)  # two ops, one C name
def test_headers_round_trip(case):
    """Property 8: weights.h and sample_input_output.h parse back to the plan's arrays, shifts and outputs."""
    stems = [macro_name(n) for n, layer in zip(case.names, case.layers, strict=True) if layer.kind in ("conv", "dense")]
    event(
        "two ops share a C name: refused"
        if len(set(stems)) < len(stems) or "INPUT_DATA" in stems
        else f"{len(stems)} conv/dense ops round-tripped"
    )
    check_headers(weights_header, sample_header, case)


def test_header_check_catches_notebook_orders():
    """Property 8 rejects headers written with the notebook's activation dump or its conv weight order."""
    assert not fails(check_headers, weights_header, sample_header, PIN)
    assert fails(check_headers, weights_header, notebook_sample_header, PIN)
    assert fails(check_headers, notebook_weights_header, sample_header, PIN)
    find(
        header_cases(),
        lambda c: fails(check_headers, weights_header, notebook_sample_header, c),
        settings=FIND,
        random=random.Random(12),
    )
    find(
        header_cases(),
        lambda c: fails(check_headers, notebook_weights_header, sample_header, c),
        settings=FIND,
        random=random.Random(13),
    )


def test_headers_never_define_a_macro_twice():
    """A firmware includes both headers: no macro may be defined twice across them."""
    case = HeaderCase((1, 1, 3), (Layer("dense", 2), Layer("dense", 2)), ("conv1", "conv1_wt"), ((0, 9), (0, 9)))
    plan, x0, outputs = case.build()
    with pytest.raises(PlanError, match="op 'conv1_wt' would define C macro CONV1_WT, which op 'conv1' already"):
        weights_header(plan)
