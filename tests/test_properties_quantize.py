"""Property 1 (quantize, docs/design.md rule 2) and the format rule (rule 1) it is used with.

Each property is a plain `check_*` function taking the implementation under test; the
@given test runs it on qverify's implementation, and a `*_catches_*` test shows with
`hypothesis.find` that the same check rejects a deliberately broken one (the notebook's).
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import Phase, example, find, given, settings
from hypothesis import strategies as st

from qverify.qformat import dequantize, frac_bits, quantize
from strategies import QMAX, QMIN, examples

FIND = settings(max_examples=500, database=None, deadline=None)


def fails(check, *args) -> bool:
    """True when `check(*args)` rejects the implementation (an assertion or a crash)."""
    try:
        check(*args)
    except Exception:  # noqa: BLE001 - a crash of the implementation under test is a rejection too
        return True
    return False


# ---------------------------------------------------------------- strategies


@st.composite
def quantize_cases(draw, max_size: int = 40):
    """(x, frac): frac in [-10, 30] and values around the representable range of that format:
    exact multiples of the LSB, half-LSB ties, the limits and just past them, powers of two,
    zero and arbitrary floats up to twice the range; float64 or float32 arrays."""
    frac = draw(st.integers(-10, 30))
    lsb = 2.0**-frac
    top = (QMAX + 1) * lsb
    limits = [QMAX * lsb, QMIN * lsb, (QMAX + 0.5) * lsb, (QMIN - 0.5) * lsb, (QMAX + 1) * lsb, (QMIN - 1) * lsb]
    element = st.one_of(
        st.integers(QMIN - 3, QMAX + 3).map(lambda k: k * lsb),
        st.integers(QMIN - 3, QMAX + 3).map(lambda k: (k + 0.5) * lsb),
        st.sampled_from(limits),
        st.sampled_from(limits).map(lambda v: float(np.nextafter(v, np.inf))),
        st.sampled_from(limits).map(lambda v: float(np.nextafter(v, -np.inf))),
        st.tuples(st.integers(-frac - 4, 17 - frac), st.sampled_from([-1.0, 1.0])).map(lambda t: t[1] * 2.0 ** t[0]),
        st.just(0.0),
        st.floats(-2 * top, 2 * top, allow_nan=False, allow_infinity=False, allow_subnormal=False),
    )
    values = draw(st.lists(element, min_size=1, max_size=max_size))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    x = np.asarray(values, np.float64).astype(dtype)
    if dtype is np.float32 and not np.isfinite(x).all():  # a float64 beyond float32's range
        x = np.asarray(values, np.float64)
    return x, frac


# ---------------------------------------------------------------- property 1: quantize


def check_quantize(quantize_fn, x: np.ndarray, frac: int) -> None:
    """Rule 2 for `quantize_fn(x, frac) -> (int16 values, saturation count)`.

    Inside [QMIN, QMAX]·2^-frac the error is at most half an LSB and nothing saturates;
    a value saturates exactly when round-half-even(x·2^frac) falls outside [QMIN, QMAX],
    it is then QMAX or QMIN by sign, and every saturation is counted; quantizing the
    dequantized result changes nothing.
    """
    q, sat = quantize_fn(x, frac)
    q = np.asarray(q)
    assert q.dtype == np.int16 and q.shape == x.shape, (q.dtype, q.shape)
    scaled = np.asarray(x, np.float64) * 2.0**frac  # exact: a power-of-two scale, no subnormals drawn
    nearest = np.array([round(v) for v in scaled.ravel()], dtype=object).reshape(scaled.shape)  # half-even
    qi = q.astype(np.int64)
    inside = (scaled >= QMIN) & (scaled <= QMAX)
    assert (np.abs(qi - scaled)[inside] <= 0.5).all(), "error above half an LSB inside the range"
    saturates = np.array([(n > QMAX) or (n < QMIN) for n in nearest.ravel()], bool).reshape(scaled.shape)
    assert not (saturates & inside).any(), "a representable value saturated"
    assert int(sat) == int(saturates.sum()), f"{sat} saturations counted, {int(saturates.sum())} happened"
    assert (qi[saturates] == np.where(scaled[saturates] > 0, QMAX, QMIN)).all(), "saturated to the wrong limit"
    expected = np.array([min(max(n, QMIN), QMAX) for n in nearest.ravel()], np.int64).reshape(scaled.shape)
    assert np.array_equal(qi, expected), "not clip(round_half_even(x * 2^frac))"
    again, sat_again = quantize_fn(dequantize(q, frac), frac)
    assert np.array_equal(np.asarray(again), q) and sat_again == 0, "quantize(dequantize(q)) != q"


def notebook_quantize(x, frac):
    """The notebook's quantize_array: np.round(x * 2^frac), no clip (1.0 in Q0.15 -> 32768 -> -32768)."""
    return np.round(np.asarray(x, np.float64) * 2**frac).astype(np.int16), 0


def uncounted_quantize(x, frac):
    """Clips, but reports no saturation."""
    return quantize(x, frac)[0], 0


# Pin: the notebook stored 1.0 in Q0.15 as 32768, which wraps to -32768 on the device.
ONE_IN_Q015 = (np.array([1.0, -1.0, 0.5]), 15)
# Pin: an all-zero tensor (the notebook took log2(0) for its format).
ALL_ZERO = (np.zeros(7), 15)


@settings(max_examples=examples(3.0))
@given(case=quantize_cases())
@example(case=ONE_IN_Q015)
@example(case=ALL_ZERO)
@example(case=(np.array([(QMAX + 0.5) / 2**15, (QMIN - 0.5) / 2**15, 0.5 / 2**15, -0.5 / 2**15]), 15))
@example(case=(np.array([2.0**16, -(2.0**16), 2.0**-40]), 0))
def test_quantize_rounds_saturates_counts_and_is_idempotent(case):
    """Property 1: half-LSB error inside the range, saturation exactly outside it and counted, idempotent."""
    check_quantize(quantize, *case)


def test_quantize_check_catches_the_notebooks_quantize():
    """The quantize property rejects the notebook's unclipped quantize (and one that hides its saturations)."""
    assert fails(check_quantize, notebook_quantize, *ONE_IN_Q015)
    x, frac = find(
        quantize_cases(), lambda c: fails(check_quantize, notebook_quantize, *c), settings=FIND, random=random.Random(1)
    )
    assert (np.abs(x * 2.0**frac) >= QMAX + 0.5).any()  # found (and shrunk to) a value past the top
    assert fails(check_quantize, uncounted_quantize, *ONE_IN_Q015)
    find(
        quantize_cases(),
        lambda c: fails(check_quantize, uncounted_quantize, *c),
        settings=FIND,
        random=random.Random(2),
    )


# ---------------------------------------------------------------- rule 1: formats


def exact_ceil_log2(r: float) -> int:
    """ceil(log2 r) for r > 0, exactly (frexp, no floating-point log)."""
    m, e = math.frexp(r)
    return e - 1 if m == 0.5 else e


def check_format_rule(frac_fn, lo: float, hi: float) -> None:
    """Rule 1 (notebook): frac = 15 - max(0, ceil(log2 r)), r = max(|lo|, |hi|), r == 0 -> 15."""
    r = max(abs(lo), abs(hi))
    want = 15 if r == 0 else 15 - max(0, exact_ceil_log2(r))
    got = frac_fn(lo, hi)
    assert got == want, f"frac {got} for range ({lo}, {hi}); rule 1 gives {want}"


def notebook_frac(lo, hi):
    """The notebook's min_max_quantize: log2 of the range, int() of its ceiling (log2(0) -> int(-inf))."""
    int_bits = int(np.ceil(np.log2(max(abs(lo), abs(hi)))))
    return 15 - max(int_bits, 0)


# Ranges as calibration produces them: float32 values (ranges are measured on float32 tensors).
f32 = st.floats(-1e6, 1e6, allow_nan=False, width=32, allow_subnormal=False)
pow2_edges = st.integers(-20, 20).flatmap(
    lambda k: st.sampled_from(
        [
            2.0**k,
            -(2.0**k),
            float(np.nextafter(np.float32(2.0**k), np.float32(np.inf))),
            float(np.nextafter(np.float32(2.0**k), np.float32(0))),
        ]
    )
)
range_values = st.one_of(f32, pow2_edges, st.just(0.0))


@settings(max_examples=examples(2.0))
@given(a=range_values, b=range_values)
@example(a=0.0, b=0.0)  # pin: all-zero tensor, where the notebook took log2(0)
@example(a=-1.0, b=1.0)  # exactly 2^0: Q0.15, 1.0 saturates (counted, property 1)
@example(a=0.0, b=16.0)
def test_format_rule(a, b):
    """Rule 1: the notebook format for float32 ranges, exact at powers of two; the tight rule never saturates."""
    lo, hi = min(a, b), max(a, b)
    check_format_rule(frac_bits, lo, hi)
    tight = frac_bits(lo, hi, rule="tight")
    assert quantize(np.array([lo, hi]), tight)[1] == 0, "the tight rule saturated an end of its own range"


def test_format_check_catches_the_notebooks_log2_of_zero():
    """The notebook's format computation crashes on an all-zero tensor; the rule-1 check rejects it."""
    with pytest.raises(OverflowError), np.errstate(divide="ignore"):
        check_format_rule(notebook_frac, 0.0, 0.0)
    with np.errstate(divide="ignore"):
        lo, hi = find(
            st.tuples(range_values, range_values),
            lambda t: fails(check_format_rule, notebook_frac, *t),
            settings=settings(FIND, phases=[Phase.generate, Phase.shrink]),
            random=random.Random(3),
        )
    assert max(abs(lo), abs(hi)) == 0  # the only float32 range the notebook gets wrong: all zero


def test_format_rule_float64_just_above_a_power_of_two():
    """docs/design.md rule 1 taken literally for a float64 range of nextafter(16.0, inf)."""
    check_format_rule(frac_bits, 0.0, float(np.nextafter(16.0, np.inf)))


def test_tight_rule_is_the_largest_frac():
    """frac + 1 would saturate an end of the range (the docstring's 'largest frac')."""
    lo, hi = float(np.float32(-1.00001)), 0.0
    tight = frac_bits(lo, hi, rule="tight")
    assert quantize(np.array([lo, hi]), tight + 1)[1] > 0, f"frac {tight + 1} holds ({lo}, {hi}) too"
