"""The C statistics (csrc/qv_stats.c through qverify.stats_lib) against the numpy reference they replaced.

tests/stats_reference.py holds the numpy summarize / float_range / per-sample equality that qverify.metrics
used before. Counts, histogram, extremes and ranges must equal it exactly; the three sums (float32 dot
products there) are held to exact float64 sums instead (math.fsum), to 1e-12 of the sum of |terms|. Each
chunk runs twice, on the AVX2 build of the C loops and on the portable one, which must agree bit for bit.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import stats_reference as ref
from qverify import build, metrics, stats_lib
from qverify.build import CSRC
from qverify.errors import DataError, NativeBuildError
from qverify.metrics import ERR_BINS, PairStats, QuantStats
from strategies import examples
from tools import require

ROOT = Path(__file__).resolve().parents[1]
BLOCK = 2048  # QV_STATS_BLOCK of qv_stats.c: sizes around it and its multiples cross blocks
KINDS = ("small", "halves", "wide", "beyond", "saturating", "special", "mixed")


@dataclass(frozen=True)
class Chunk:
    """n values of one op at frac, in a `bits`-wide format; q uniform over the format (or near 0), the error
    drawn by `kind` (see make), the arrays from a numpy seed."""

    n: int
    frac: int
    bits: int
    kind: str
    seed: int

    @property
    def limits(self) -> tuple[int, int]:
        return -(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1

    def make(self) -> tuple[np.ndarray, np.ndarray]:
        """(f float32, q int16 or int8): f = (q + e)·2^-frac for an error e in LSB of the kind, or values set
        outright (saturation thresholds, infinities, subnormals, huge)."""
        rng = np.random.default_rng(self.seed)
        qmin, qmax = self.limits
        kind = self.kind if self.kind != "mixed" else None
        q = rng.integers(qmin, qmax + 1, self.n)
        if rng.random() < 0.3:
            q = np.clip(rng.integers(-5, 6, self.n), qmin, qmax)
        scale = 2.0**-self.frac
        kinds = [kind] * self.n if kind else rng.choice(KINDS[:-1], self.n // 300 + 1).repeat(300)[: self.n]
        e = np.empty(self.n)
        f = np.empty(self.n)
        for k in set(kinds):
            at = np.asarray(kinds) == k
            m = int(at.sum())
            if k == "small":
                e[at] = rng.normal(0, 0.7, m)
            elif k == "halves":  # exactly k + 0.5 LSB: rint's ties
                e[at] = rng.integers(-40, 40, m) + 0.5
            elif k == "wide":
                e[at] = rng.uniform(-60, 60, m)
            elif k == "beyond":
                e[at] = rng.choice([-1, 1], m) * 10.0 ** rng.uniform(1, 30, m)
            else:
                e[at] = 0.0
            f[at] = (q[at] + e[at]) * scale
            if k == "saturating":  # the thresholds in real units and their float32 neighbours
                hi, lo = np.float32((qmax + 0.5) * scale), np.float32((qmin - 0.5) * scale)
                edges = [hi, np.nextafter(hi, np.float32(-np.inf)), np.nextafter(hi, np.float32(np.inf))]
                edges += [lo, np.nextafter(lo, np.float32(np.inf)), np.nextafter(lo, np.float32(-np.inf))]
                f[at] = rng.choice(np.array(edges, np.float64), m)
            elif k == "special":
                f32 = np.finfo(np.float32)
                specials = [np.inf, -np.inf, 0.0, -0.0, f32.smallest_subnormal, -f32.tiny, f32.max, -f32.max]
                f[at] = np.where(rng.random(m) < 0.5, rng.choice(specials, m), f[at])
        return f.astype(np.float32), q.astype(np.int8 if self.bits == 8 else np.int16)


@st.composite
def chunks(draw) -> Chunk:
    sizes = st.sampled_from([0, 1, 2, 3, 11, 12, 13, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 7])
    n = draw(sizes | st.integers(0, 3 * BLOCK))
    return Chunk(
        n,
        draw(st.integers(0, 15)),
        draw(st.sampled_from([16, 8])),
        draw(st.sampled_from(KINDS)),
        draw(st.integers(0, 2**32 - 1)),
    )


def both_builds(fn, *args):
    """fn(*args) on the AVX2 loops (where the CPU has them) and on the portable ones: the two must agree."""
    try:
        stats_lib.simd(False)
        plain = fn(*args)
        stats_lib.simd(True)
        fast = fn(*args)
    finally:
        stats_lib.simd(True)
    return plain, fast


def same_float(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def assert_sums(raw: stats_lib.Raw, f: np.ndarray, q: np.ndarray, frac: int) -> None:
    """The raw sums against exact float64 sums of the exact products (plain float64 sums where f or d hold
    infinities: inf or nan as IEEE has them)."""
    with np.errstate(invalid="ignore", over="ignore"):
        f64 = f.astype(np.float64)
        d64 = (f * np.float32(2.0**frac) - q).astype(np.float32).astype(np.float64)
        want = (np.sum(f64 * f64), np.sum(d64 * d64), np.sum(d64 * f64))
    if not (np.isfinite(f64).all() and np.isfinite(d64).all()):
        for got, w in zip((raw.sum_f2, raw.sum_dd, raw.sum_df), want, strict=True):
            assert same_float(got, float(w)) or (math.isfinite(w) and math.isclose(got, w, rel_tol=1e-12))
        return
    ff, dd, df, adf = ref.exact_sums(f, q, frac)
    assert abs(raw.sum_f2 - ff) <= 1e-12 * ff
    assert abs(raw.sum_dd - dd) <= 1e-12 * dd
    assert abs(raw.sum_df - df) <= 1e-12 * adf


def check_chunk(chunk: Chunk) -> None:
    """metrics.summarize (the C) equals the numpy reference: exactly, but for the sums (assert_sums)."""
    f, q = chunk.make()
    qmin, qmax = chunk.limits
    plain, fast = both_builds(stats_lib.summary, f, q, chunk.frac, qmin, qmax)
    assert json.dumps(vars(plain) | {"hist": plain.hist.tolist()}) == json.dumps(
        vars(fast) | {"hist": fast.hist.tolist()}
    ), "the AVX2 and portable loops differ"
    got = metrics.summarize(f, q, chunk.frac, qmin, qmax)
    assert got.count == chunk.n
    if chunk.n == 0:
        assert (got.f_min, got.f_max, got.float_saturating, got.err_hist.sum()) == (math.inf, -math.inf, 0, 0)
        return
    with np.errstate(invalid="ignore", over="ignore"):
        want = ref.summarize(f, q, chunk.frac, qmin, qmax)
    assert got.err_hist.tolist() == want.err_hist.tolist()
    assert (got.q_min, got.q_max, got.float_saturating) == (want.q_min, want.q_max, want.float_saturating)
    assert (got.f_min, got.f_max, got.max_abs_err) == (want.f_min, want.f_max, want.max_abs_err)
    assert_sums(fast, f, q, chunk.frac)
    s = 2.0**-chunk.frac
    assert same_float(got.sum_e2, s * s * fast.sum_dd) and same_float(got.sum_qf, fast.sum_f2 - s * fast.sum_df)
    lo, hi, sat = metrics.float_range(f, chunk.frac, qmin, qmax)
    assert (lo, hi, sat) == ref.float_range(f, chunk.frac, qmin, qmax) == (want.f_min, want.f_max, sat)


@settings(max_examples=examples(0.6))
@given(chunks())
@example(Chunk(BLOCK * 3 + 5, 12, 16, "mixed", 1))
@example(Chunk(5000, 15, 16, "halves", 2))
@example(Chunk(4097, 0, 8, "saturating", 3))
@example(Chunk(300, 7, 16, "special", 4))
def test_summary_equals_the_numpy_reference(chunk):
    check_chunk(chunk)


def test_the_c_has_the_python_bins():
    ffi, lib = stats_lib._module()
    assert (lib.QV_ERR_BINS, lib.QV_HIST_BINS) == (ERR_BINS, 2 * ERR_BINS + 3)
    assert len(ffi.new("qv_summary_t *").hist) == 2 * ERR_BINS + 3


@pytest.mark.parametrize("bits", [16, 8])
@pytest.mark.parametrize("frac", range(16))
def test_saturation_thresholds_are_exact(frac, bits):
    """qmax + 0.5 LSB saturates (half to even rounds it to qmax + 1), qmin - 0.5 does not; one float32 step
    past either does, one step inside does not."""
    qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    hi, lo = np.float32((qmax + 0.5) * 2.0**-frac), np.float32((qmin - 0.5) * 2.0**-frac)
    assert float(hi) == (qmax + 0.5) * 2.0**-frac and float(lo) == (qmin - 0.5) * 2.0**-frac  # exact
    down, up = np.float32(-np.inf), np.float32(np.inf)
    f = np.array([hi, np.nextafter(hi, down), np.nextafter(hi, up), lo, np.nextafter(lo, up), np.nextafter(lo, down)])
    q = np.array([qmax, qmax, qmax, qmin, qmin, qmin], np.int8 if bits == 8 else np.int16)
    saturating = [True, False, True, False, False, True]
    got = metrics.summarize(f, q, frac, qmin, qmax)
    assert got.float_saturating == sum(saturating) == ref.summarize(f, q, frac, qmin, qmax).float_saturating
    for value, sat in zip(f, saturating, strict=True):
        assert metrics.float_range(np.array([value]), frac, qmin, qmax)[2] == int(sat)


def test_ties_round_half_to_even():
    """d = k + 0.5 LSB lands in the bin of -rint(d), rint rounding half to even (0.5 -> 0, 1.5 -> 2, -2.5 -> -2),
    up to the outer bins; beyond them everything piles into the two outer bins."""
    frac = 10
    d = np.arange(-40, 40) + 0.5
    q = np.zeros(len(d), np.int16)
    f = (d * 2.0**-frac).astype(np.float32)
    got = metrics.summarize(f, q, frac, -32768, 32767)
    want = np.zeros(2 * ERR_BINS + 3, np.int64)
    for v in d:
        np.add.at(want, ERR_BINS + 1 - int(np.clip(np.rint(v), -ERR_BINS - 1, ERR_BINS + 1)), 1)
    assert got.err_hist.tolist() == want.tolist() == ref.summarize(f, q, frac, -32768, 32767).err_hist.tolist()
    stats = QuantStats(frac, -32768, 32767)
    stats.add(got)
    h = stats.hist_dict()
    assert (h["0"], h["-2"], h["2"]) == (2, 2, 2)  # d = ±0.5 -> 0; d = 1.5, 2.5 -> error -2; -1.5, -2.5 -> 2


def test_values_beyond_the_outer_bins():
    frac = 15
    d = np.array([32.5, 32.50001, 33.0, 33.5, 1e6, 1e30, -32.5, -32.50001, -33.0, -33.5, -1e6, -1e30])
    q = np.zeros(len(d), np.int16)
    f = (d * 2.0**-frac).astype(np.float32)
    got = metrics.summarize(f, q, frac, -32768, 32767)
    with np.errstate(over="ignore"):  # numpy's float32 dot products overflow
        assert got.err_hist.tolist() == ref.summarize(f, q, frac, -32768, 32767).err_hist.tolist()
    assert (got.err_hist[0], got.err_hist[-1], got.err_hist[1], got.err_hist[-2]) == (5, 5, 1, 1)


def test_infinities_follow_ieee_and_nan_is_refused():
    f = np.array([np.inf, -np.inf, 0.25], np.float32)
    q = np.array([0, 1, 2], np.int16)
    got, want = metrics.summarize(f, q, 12, -32768, 32767), ref.summarize(f, q, 12, -32768, 32767)
    assert got.err_hist.tolist() == want.err_hist.tolist()
    assert (got.f_min, got.f_max, got.max_abs_err, got.float_saturating) == (-math.inf, math.inf, math.inf, 2)
    assert got.sum_f2 == math.inf and math.isnan(got.sum_qf) and math.isnan(want.sum_qf)
    for nan in (np.float32("nan"), -np.float32("nan")):
        f = np.array([1.0, nan, 2.0, 40000.0], np.float32)
        with pytest.raises(DataError, match="NaN"):
            metrics.summarize(f, np.zeros(4, np.int16), 0, -32768, 32767)
        lo, hi, sat = metrics.float_range(f, 0, -32768, 32767)
        assert math.isnan(lo) and math.isnan(hi) and sat == 1
        assert np.isnan(ref.float_range(f, 0, -32768, 32767)[:2]).all()


def test_an_empty_chunk_adds_nothing():
    stats = QuantStats(8, -32768, 32767)
    stats.update(np.array([0.5, -0.25], np.float32), np.array([128, -64], np.int16))
    before = stats.to_dict()
    empty = metrics.summarize(np.zeros(0, np.float32), np.zeros(0, np.int16), 8, -32768, 32767)
    assert (empty.count, empty.f_min, empty.f_max, empty.max_abs_err) == (0, math.inf, -math.inf, 0.0)
    stats.add(empty)
    assert stats.to_dict() == before
    assert metrics.float_range(np.zeros((0, 3), np.float32), 8, -32768, 32767) == (math.inf, -math.inf, 0)


def test_blocks_of_every_kind_in_one_large_chunk():
    """Many blocks, each with errors of a different spread (the C counts narrow and wide blocks differently),
    a size that is no multiple of anything, the same as the reference; and the sums do not depend on where
    the values sit in memory (a fixed order)."""
    n = 40 * BLOCK + 333
    rng = np.random.default_rng(7)
    q = rng.integers(-32768, 32768, n)
    spread = np.repeat(rng.choice([0.0, 0.4, 1.5, 3.0, 20.0], 41), BLOCK)[:n]
    f = ((q + rng.normal(0, 1, n) * spread) * 2.0**-14).astype(np.float32)
    q = q.astype(np.int16)
    got, want = metrics.summarize(f, q, 14, -32768, 32767), ref.summarize(f, q, 14, -32768, 32767)
    assert got.err_hist.tolist() == want.err_hist.tolist()
    assert (got.f_min, got.f_max, got.max_abs_err, got.q_min, got.q_max) == (
        want.f_min,
        want.f_max,
        want.max_abs_err,
        want.q_min,
        want.q_max,
    )
    assert_sums(stats_lib.summary(f, q, 14, -32768, 32767), f, q, 14)
    buf_f, buf_q = np.empty(n + 1, np.float32), np.empty(n + 3, np.int16)
    buf_f[1:], buf_q[3:] = f, q  # misaligned copies
    assert (
        stats_lib.summary(buf_f[1:], buf_q[3:], 14, -32768, 32767).sum_df
        == stats_lib.summary(f, q, 14, -32768, 32767).sum_df
    )


def test_inputs_are_converted_or_refused():
    f = np.linspace(-1, 1, 24).reshape(2, 3, 4)  # float64, not flat: converted to float32
    q = np.round(f.astype(np.float32) * 2**10).astype(np.int16)
    got = metrics.summarize(f, q[:, ::-1][:, ::-1], 10, -32768, 32767)  # a non-contiguous view
    assert got.err_hist.tolist() == ref.summarize(f, q, 10, -32768, 32767).err_hist.tolist()
    with pytest.raises(TypeError, match="int16"):
        metrics.summarize(f, q.astype(np.int32), 10, -32768, 32767)
    with pytest.raises(ValueError, match="size"):
        metrics.summarize(f, q[:1], 10, -32768, 32767)


@settings(max_examples=examples(0.3))
@given(
    st.integers(1, 6),
    st.tuples(st.integers(1, 5), st.integers(1, 4), st.integers(1, 3)),
    st.sampled_from(["int16", "int8", "mixed"]),
    st.integers(0, 2**32 - 1),
)
def test_equal_samples_and_pair_stats_equal_numpy(n, hwc, dtype, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-100, 100, (n, *hwc))
    b = a.copy()
    for i in range(n):
        if rng.random() < 0.5:
            b[(i, *(rng.integers(0, s) for s in hwc))] += int(rng.integers(1, 3)) * int(rng.choice([-1, 1]))
    a = a.astype(np.int8 if dtype == "int8" else np.int16)
    b = b.astype(np.int32 if dtype == "mixed" else a.dtype)
    want = ref.equal_samples(a, b)
    assert both_builds(stats_lib.equal_samples, a, b)[1].tolist() == want.tolist()
    stats = PairStats()
    assert stats.update(a, b, 10).tolist() == want.tolist()
    assert stats.total == a.size and stats.mismatches == int((a != b).sum())
    assert [m.sample for m in stats.first] == [10 + int(i) for i in np.argwhere(a != b)[:, 0][:10]]


def test_equal_samples_of_no_samples():
    """(The numpy version could not reshape an empty chunk.)"""
    assert stats_lib.equal_samples(np.zeros((0, 2, 2, 1), np.int16), np.zeros((0, 2, 2, 1), np.int16)).shape == (0,)
    stats = PairStats()
    assert stats.update(np.zeros((0, 2, 2, 1), np.int16), np.zeros((0, 2, 2, 1), np.int16), 0).size == 0
    assert (stats.total, stats.mismatches) == (0, 0)


def test_equal_samples_refuses_what_it_cannot_compare():
    with pytest.raises(ValueError, match="shape"):
        stats_lib.equal_samples(np.zeros((2, 3), np.int16), np.zeros((3, 2), np.int16))
    with pytest.raises(TypeError, match="integer"):
        stats_lib.equal_samples(np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32))


def test_a_stale_module_is_refused(monkeypatch):
    monkeypatch.setattr(build, "stats_digest", lambda: "0000000000000000")
    monkeypatch.setattr(stats_lib, "_loaded", [])
    with pytest.raises(NativeBuildError, match="stale"):
        stats_lib.summary(np.zeros(1, np.float32), np.zeros(1, np.int16), 0, -32768, 32767)


_COMPILE = r"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("_qverify_build", sys.argv[1])
build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build)
print(build.make_stats_builder(sys.argv[2], work_dir=sys.argv[3]).compile(tmpdir=sys.argv[3]))
"""


@pytest.mark.parametrize(
    "cc, cflags",
    [("gcc", "-DQV_STATS_PLAIN"), ("clang", "")],
    ids=["portable C (what MSVC builds)", "clang"],
)
def test_other_builds_give_the_same_results(cc, cflags, tmp_path):
    """The C built without GCC's vector types and the AVX2 loops (the portable code alone), and built by
    Clang, give bit-identical results on chunks of every kind."""
    (path,) = require(cc)
    name = f"_qv_stats_{cc}"
    env = {**os.environ, "CC": path, "CFLAGS": cflags}
    r = subprocess.run(
        [sys.executable, "-c", _COMPILE, build.__file__, name, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    spec = importlib.util.spec_from_file_location(name, r.stdout.strip().splitlines()[-1])
    assert spec is not None and spec.loader is not None
    other = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(other)
    for i, kind in enumerate(KINDS):
        chunk = Chunk(3 * BLOCK + 17, 3 + i, 16, kind, 100 + i)
        f, q = chunk.make()
        out = other.ffi.new("qv_summary_t *")
        other.lib.qv_summarize(
            other.ffi.from_buffer("float[]", f),
            other.ffi.from_buffer("int16_t[]", q),
            f.size,
            chunk.frac,
            -32768,
            32767,
            out,
        )
        raw = stats_lib.summary(f, q, chunk.frac, -32768, 32767)
        theirs = [out.count, out.saturating, out.sum_f2, out.sum_dd, out.sum_df, out.d_abs_max, out.f_min, out.f_max]
        ours = [raw.count, raw.saturating, raw.sum_f2, raw.sum_dd, raw.sum_df, raw.d_abs_max, raw.f_min, raw.f_max]
        assert [float(v) for v in theirs] == [float(v) for v in ours] or all(
            same_float(float(x), float(y)) for x, y in zip(theirs, ours, strict=True)
        ), kind
        assert list(out.hist) == raw.hist.tolist(), kind


@pytest.mark.parametrize("flags", [[], ["-DQV_STATS_PLAIN"]], ids=["as built", "portable C alone"])
def test_the_c_under_the_sanitizers(flags, tmp_path):
    """tests/c/test_stats.c drives the C (every size up to three blocks, unaligned, NaNs, infinities, any bit
    pattern) under AddressSanitizer and UBSan, built with the module's flags and warning-free in strict C99:
    the AVX2 + FMA and the portable loops agree and every value lands in one bin."""
    (gcc,) = require("gcc")
    exe = tmp_path / "test_stats"
    cmd = [gcc, *build.stats_compile_args(), "-pedantic", "-Wall", "-Wextra", "-Werror", "-g", *flags]
    cmd += ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-I", str(CSRC)]
    cmd += [str(ROOT / "tests" / "c" / "test_stats.c"), str(CSRC / "qv_stats.c"), "-lm", "-o", str(exe)]
    built = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.startswith("ok "), r.stdout[-3000:] + r.stderr[-3000:]
