"""Q-formats and saturating quantization (docs/design.md rules 1-2), including the notebook's bugs."""

import numpy as np
import pytest

from qverify.qformat import dequantize, frac_bits, qm_n, quantize


def test_one_point_zero_in_q0_15_saturates_instead_of_wrapping():
    """1.0 at Q0.15 is 32768 in the notebook (−32768 on the device); it must saturate to 32767 and be counted."""
    assert frac_bits(-0.5, 1.0) == 15
    q, sats = quantize(np.array([1.0, -1.0, 0.5]), 15)
    assert q.tolist() == [32767, -32768, 16384]
    assert sats == 1


@pytest.mark.parametrize(
    "lo,hi,frac",
    [(-0.9, 0.2, 15), (0, 1.5, 14), (-3.9, 1, 13), (0, 0, 15), (-0.01, 0.01, 15), (0, 2.0, 14), (-200.0, 3.0, 7)],
)
def test_notebook_rule_known_answers(lo, hi, frac):
    """int_bits = max(0, ceil(log2 r)), frac = 15 - int_bits, r = 0 gives 15."""
    assert frac_bits(lo, hi) == frac


def test_tight_rule_keeps_precision_and_never_saturates():
    """The tight rule may use frac > 15 for small tensors and never saturates the range ends."""
    assert frac_bits(-0.01, 0.01, rule="tight") == 21
    for hi in (1.0, 0.5, 2.0, 0.7, 1e-3):
        f = frac_bits(-hi, hi, rule="tight")
        assert quantize(np.array([-hi, hi]), f)[1] == 0
        assert quantize(np.array([-hi, hi]), f + 1)[1] > 0


def test_round_half_to_even_and_idempotent():
    """Ties go to even; quantizing a dequantized tensor changes nothing."""
    q, _ = quantize(np.array([0.5, 1.5, 2.5, -0.5, -1.5]) * 2.0**-15, 15)
    assert q.tolist() == [0, 2, 2, 0, -2]
    rng = np.random.default_rng(0)
    q = rng.integers(-32768, 32768, 1000).astype(np.int16)
    for frac in (-3, 0, 7, 15, 20):
        again, sats = quantize(dequantize(q, frac), frac)
        assert sats == 0 and np.array_equal(again, q)


def test_all_zero_tensor():
    """An all-zero tensor gets Q0.15 and quantizes to zeros without saturation."""
    z = np.zeros(10)
    assert frac_bits(z.min(), z.max()) == 15
    q, sats = quantize(z, 15)
    assert not q.any() and sats == 0


def test_qm_n_label():
    """Labels follow the notebook: Q<int bits>.<frac bits>."""
    assert qm_n(15) == "Q0.15" and qm_n(14) == "Q1.14" and qm_n(7) == "Q8.7"
