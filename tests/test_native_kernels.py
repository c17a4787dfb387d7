"""The compiled native modules (all six variants) against a numpy int64 reference.

Every kernel is called directly through cffi and qv_run runs a small network;
the reference below implements docs/design.md's numeric contract
independently: exact int64 sums, wrap to int32, floor shift, saturation.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from fake_cmsis import fake_cmsis_tree
from qverify import build, kernels, native_lib
from qverify.errors import NativeBuildError

QMIN, QMAX = -32768, 32767
SENTINEL = 0x5A5B
VARIANTS = [(k, r) for k in native_lib.KERNELS for r in native_lib.ROUNDINGS]


# ---------------------------------------------------------------- reference


def ref_round(out_shift: int, rounding: str) -> int:
    return 0 if rounding == "truncate" or out_shift == 0 else 1 << (out_shift - 1)


def wrap32(a):
    a = np.asarray(a, dtype=np.int64)
    return ((a + 2**31) % 2**32) - 2**31


def finish(acc, out_shift: int):
    return np.clip(wrap32(acc) >> out_shift, QMIN, QMAX).astype(np.int16)


def ref_conv(x, w, b, bias_shift, out_shift, pad, stride, rounding):
    """x (H, W, C), w (CO, KH, KW, C), pad/stride (h, w) -> (OH, OW, CO)."""
    (ph, pw), (sh, sw) = pad, stride
    co, kh, kw, _ = w.shape
    xp = np.pad(x.astype(np.int64), ((ph, ph), (pw, pw), (0, 0)))
    oh = (xp.shape[0] - kh) // sh + 1
    ow = (xp.shape[1] - kw) // sw + 1
    acc = np.broadcast_to(b.astype(np.int64) * 2**bias_shift + ref_round(out_shift, rounding), (oh, ow, co)).copy()
    w64 = w.astype(np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :]
            acc += np.einsum("hwc,oc->hwo", patch, w64[:, i, j, :])
    return finish(acc, out_shift)


def ref_dense(v, m, b, bias_shift, out_shift, rounding):
    acc = m.astype(np.int64) @ v.astype(np.int64) + b.astype(np.int64) * 2**bias_shift
    return finish(acc + ref_round(out_shift, rounding), out_shift)


def ref_pool(x, k, stride, mode):
    (kh, kw), (sh, sw) = k, stride
    h, w, c = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = np.empty((oh, ow, c), np.int64)
    for i in range(oh):
        for j in range(ow):
            win = x[i * sh : i * sh + kh, j * sw : j * sw + kw, :].astype(np.int64).reshape(-1, c)
            if mode == "max":
                out[i, j] = win.max(axis=0)
            else:  # C division: truncation toward zero
                s = win.sum(axis=0)
                out[i, j] = np.sign(s) * (np.abs(s) // (kh * kw))
    return out.astype(np.int16)


def ref_gap(x):
    s = x.astype(np.int64).reshape(-1, x.shape[-1]).sum(axis=0)
    n = x.shape[0] * x.shape[1]
    return (np.sign(s) * (np.abs(s) // n)).astype(np.int16)


# ---------------------------------------------------------------- helpers


@pytest.fixture(params=VARIANTS, ids=[f"{k}_{r}" for k, r in VARIANTS])
def nl(request):
    return native_lib.load(*request.param)


def conv_kernel(nl, name: str) -> str:
    """The kernel qv_run reports for a conv op: the host SIMD conv in the fast build (when the CPU has
    AVX2 or AVX-512 VNNI), else the cmsis/ kernel `name`."""
    return "qv_host_conv_q15" if nl.kernels == "fast" and nl.simd != "none" else name


def p(nl, a):
    """cffi pointer to a contiguous int16 array."""
    assert a.dtype == np.int16 and a.flags.c_contiguous
    return nl.ffi.from_buffer("int16_t[]", a)


def rand_q15(rng, shape, mode=None):
    mode = mode if mode is not None else rng.choice(["full", "full", "small", "extreme"])
    if mode == "full":
        return rng.integers(QMIN, QMAX + 1, size=shape, dtype=np.int64).astype(np.int16)
    if mode == "small":
        return rng.integers(-64, 65, size=shape).astype(np.int16)
    return rng.choice(np.array([QMIN, QMAX, 0], np.int16), size=shape)


def conv_call(nl, kernel, x, w, b, bs, os_, pad, stride, sentinel_out=False):
    """Call one conv kernel; returns (status, output (OH, OW, CO), bufferA)."""
    h, wd, c = x.shape
    co, kh, kw, _ = w.shape
    oh = (h + 2 * pad[0] - kh) // stride[0] + 1
    ow = (wd + 2 * pad[1] - kw) // stride[1] + 1
    out = np.full((oh, ow, co), SENTINEL, np.int16)
    buf = np.full(2 * c * kh * kw, SENTINEL, np.int16)
    x, w, b = (np.ascontiguousarray(a) for a in (x, w, b))
    lib, null = nl.lib, nl.ffi.NULL
    if kernel in ("qv_convolve_HWC_q15_basic_nonsquare", "arm_convolve_HWC_q15_fast_nonsquare"):  # x = width
        args = (p(nl, x), wd, h, c, p(nl, w), co, kw, kh, pad[1], pad[0], stride[1], stride[0], p(nl, b), bs, os_)
        st = getattr(lib, kernel)(*args, p(nl, out), ow, oh, p(nl, buf), null)
    else:  # square kernels
        assert h == wd and kh == kw and pad[0] == pad[1] and stride[0] == stride[1]
        fn = getattr(lib, kernel)
        st = fn(
            p(nl, x), h, c, p(nl, w), co, kh, pad[0], stride[0], p(nl, b), bs, os_, p(nl, out), oh, p(nl, buf), null
        )
    return st, out, buf


def random_conv(rng, square=False):
    c = int(rng.choice([1, 2, 3, 4, 5, 6, 8]))
    co = int(rng.choice([1, 2, 3, 4, 6]))
    h = int(rng.integers(1, 9))
    wd = h if square else int(rng.integers(1, 9))
    ph = int(rng.integers(0, 3))
    pw = ph if square else int(rng.integers(0, 3))
    kh = int(rng.integers(1, min(h + 2 * ph, 4) + 1))
    kw = kh if square else int(rng.integers(1, min(wd + 2 * pw, 4) + 1))
    if square:
        kh = kw = min(kh, wd + 2 * pw)
    sh = int(rng.integers(1, 4))
    sw = sh if square else int(rng.integers(1, 4))
    mode = rng.choice(["full", "full", "small", "extreme"])
    x = rand_q15(rng, (h, wd, c), mode)
    w = rand_q15(rng, (co, kh, kw, c), mode)
    b = rand_q15(rng, (co,))
    bs = int(rng.choice([0, 0, 1, 4, 8, 15, 31]))
    os_ = int(rng.choice([0, 1, 8, 12, 16, 20, 31]))
    return x, w, b, bs, os_, (ph, pw), (sh, sw)


# ---------------------------------------------------------------- tests


def test_build_info_matches_variant(nl):
    """qv_build_info() names the bundled kernels, the code path and the rounding of the loaded variant."""
    assert nl.info == f"kernels=bundled; path={nl.kernels}; rounding={nl.rounding}"
    assert nl.kernel_name(nl.lib.QV_KERNEL_CONV_FAST_NONSQUARE) == "arm_convolve_HWC_q15_fast_nonsquare"


def test_conv_kernels_match_reference(nl):
    """Every conv kernel equals the int64 reference on random shapes, paddings, strides and shifts; on the
    DSP path the fast convs refuse an odd output width (ARM_MATH_SIZE_MISMATCH), as Arm's pairs pixels along x."""
    rng = np.random.default_rng(1234)
    checked, refused = set(), set()
    for case in range(120):
        x, w, b, bs, os_, pad, stride = random_conv(rng, square=case % 3 == 0)
        expect = ref_conv(x, w, b, bs, os_, pad, stride, nl.rounding)
        square = x.shape[0] == x.shape[1] and w.shape[1] == w.shape[2] and pad[0] == pad[1] and stride[0] == stride[1]
        even = x.shape[2] % 2 == 0 and w.shape[0] % 2 == 0
        out_x = (x.shape[1] + 2 * pad[1] - w.shape[2]) // stride[1] + 1
        fast = ["arm_convolve_HWC_q15_fast_nonsquare"] + (["arm_convolve_HWC_q15_fast"] if square else [])
        fast_ok = even and (nl.kernels != "dsp" or out_x % 2 == 0)
        kernels = ["qv_convolve_HWC_q15_basic_nonsquare"]
        kernels += fast if fast_ok else []
        kernels += ["arm_convolve_HWC_q15_basic"] if square else []
        for kernel in kernels:
            st, out, _ = conv_call(nl, kernel, x, w, b, bs, os_, pad, stride)
            assert st == nl.lib.ARM_MATH_SUCCESS, (kernel, case)
            np.testing.assert_array_equal(out, expect, err_msg=f"{kernel} case {case}")
            checked.add(kernel)
        for kernel in fast if even and not fast_ok else []:
            st, out, _ = conv_call(nl, kernel, x, w, b, bs, os_, pad, stride)
            assert st == nl.lib.ARM_MATH_SIZE_MISMATCH, (kernel, case)
            refused.add(kernel)
    assert len(checked) == 4
    assert bool(refused) == (nl.kernels == "dsp"), refused


def test_fast_kernels_reject_odd_channels_untouched(nl):
    """The fast kernels return ARM_MATH_SIZE_MISMATCH for odd ch_in or ch_out and write nothing."""
    rng = np.random.default_rng(7)
    for c, co in [(3, 2), (2, 3), (1, 1), (5, 4)]:
        x = rand_q15(rng, (4, 4, c))
        w = rand_q15(rng, (co, 3, 3, c))
        b = rand_q15(rng, (co,))
        for kernel in ("arm_convolve_HWC_q15_fast", "arm_convolve_HWC_q15_fast_nonsquare"):
            st, out, buf = conv_call(nl, kernel, x, w, b, 0, 8, (1, 1), (1, 1))
            assert st == nl.lib.ARM_MATH_SIZE_MISMATCH, kernel
            assert (out == SENTINEL).all() and (buf == SENTINEL).all(), kernel


def test_accumulator_wraps_like_smlad(nl):
    """A sum of products beyond int32 wraps modulo 2^32 instead of saturating."""
    x = np.full((4, 4, 4), QMIN, np.int16)  # each 3x3 window: 36 products of 2^30 = 9 * 2^32; 2x2 outputs
    w = np.full((2, 3, 3, 4), QMIN, np.int16)
    w[1, 0, 0, 0] = -1  # channel 1: 35 * 2^30 + 32768, wraps to -2^30 + 32768
    b = np.array([5, 0], np.int16)
    exact = (x[:3, :3].astype(np.int64)[None] * w.astype(np.int64)).reshape(2, -1).sum(axis=1)
    assert (exact > 2**31).all()
    expect = ref_conv(x, w, b, 0, 0, (0, 0), (1, 1), nl.rounding).reshape(-1)
    assert expect[0] == 5 and expect[1] == QMIN  # wrapped: exact would saturate to QMAX
    for kernel in (
        "qv_convolve_HWC_q15_basic_nonsquare",
        "arm_convolve_HWC_q15_fast_nonsquare",
        "arm_convolve_HWC_q15_basic",
        "arm_convolve_HWC_q15_fast",
    ):
        st, out, _ = conv_call(nl, kernel, x, w, b, 0, 0, (0, 0), (1, 1))
        assert st == 0
        np.testing.assert_array_equal(out.reshape(-1), expect, err_msg=kernel)
    m = w.reshape(2, -1).copy()
    v = x[:3, :3].reshape(-1).copy()
    out = np.full(2, SENTINEL, np.int16)
    assert nl.lib.arm_fully_connected_q15(p(nl, v), p(nl, m), v.size, 2, 0, 0, p(nl, b), p(nl, out), nl.ffi.NULL) == 0
    np.testing.assert_array_equal(out, expect[:2])


def test_rounding_constant_and_out_shift_zero(nl):
    """NN_ROUND is added only in round builds (2^(s-1), +2^30 for s = 31) and out_shift 0 adds nothing."""
    lib, null = nl.lib, nl.ffi.NULL
    one = np.array([1], np.int16)
    zero = np.array([0], np.int16)
    out = np.zeros(1, np.int16)
    # acc = 1, out_shift 1: 1 >> 1 = 0 truncated, (1 + 1) >> 1 = 1 rounded
    assert lib.arm_fully_connected_q15(p(nl, one), p(nl, one), 1, 1, 0, 1, p(nl, zero), p(nl, out), null) == 0
    assert out[0] == (1 if nl.rounding == "round" else 0)
    # out_shift 31, NN_ROUND(31) = +2^30: acc = -2^30 (bias -1 << 30) -> 0 rounded, -1 truncated
    minus_one = np.array([-1], np.int16)
    assert lib.arm_fully_connected_q15(p(nl, zero), p(nl, zero), 1, 1, 30, 31, p(nl, minus_one), p(nl, out), null) == 0
    assert out[0] == (0 if nl.rounding == "round" else -1)
    # acc = +2^30: adding the rounding constant wraps to -2^31 -> -1 rounded, 0 truncated
    assert lib.arm_fully_connected_q15(p(nl, zero), p(nl, zero), 1, 1, 30, 31, p(nl, one), p(nl, out), null) == 0
    assert out[0] == (-1 if nl.rounding == "round" else 0)
    # out_shift 0: the plain sum, saturated
    v = np.array([3, -4, 5], np.int16)
    m = np.array([[7, 7, 7], [QMAX, QMAX, QMAX]], np.int16)
    b = np.array([-2, 0], np.int16)
    out2 = np.zeros(2, np.int16)
    assert lib.arm_fully_connected_q15(p(nl, v), p(nl, m), 3, 2, 0, 0, p(nl, b), p(nl, out2), null) == 0
    np.testing.assert_array_equal(out2, [7 * 4 - 2, QMAX])


def test_fully_connected_matches_reference(nl):
    """arm_fully_connected_q15 equals the reference for random (odd and even) sizes and shifts."""
    rng = np.random.default_rng(99)
    for case in range(150):
        dim, rows = int(rng.integers(1, 70)), int(rng.integers(1, 18))
        v, m, b = rand_q15(rng, (dim,)), rand_q15(rng, (rows, dim)), rand_q15(rng, (rows,))
        bs, os_ = int(rng.choice([0, 0, 3, 12, 31])), int(rng.choice([0, 1, 9, 15, 31]))
        out = np.full(rows, SENTINEL, np.int16)
        st = nl.lib.arm_fully_connected_q15(p(nl, v), p(nl, m), dim, rows, bs, os_, p(nl, b), p(nl, out), nl.ffi.NULL)
        assert st == 0
        np.testing.assert_array_equal(out, ref_dense(v, m, b, bs, os_, nl.rounding), err_msg=f"case {case}")


# ---------------------------------------------------------------- the other fully-connected functions

# q15 weights and bias: arm_fully_connected_q15_opt; q7 ones: the two mat_q7_vec_q15 functions
FC_FUNCTIONS = {
    "arm_fully_connected_q15": (16, ""),
    "arm_fully_connected_q15_opt": (16, "q15x4"),
    "arm_fully_connected_mat_q7_vec_q15": (8, ""),
    "arm_fully_connected_mat_q7_vec_q15_opt": (8, "q7x4"),
}


def fc_interleave(m, order: str):
    """The weights m [rows][dim] in the order a function reads them (Arm's documented orders), flat.

    "q15x4": rows in groups of four r0..r3, per column pair k: r0[2k] r0[2k+1] r1[2k] r1[2k+1] ... r3[2k+1];
    "q7x4": per column pair k: r0[2k] r1[2k] r0[2k+1] r1[2k+1] r2[2k] r3[2k] r2[2k+1] r3[2k+1]; both: then for
    an odd dim the last column r0..r3; the rows % 4 rows left over row-major."""
    rows, dim = m.shape
    if not order:
        return m.reshape(-1).copy()
    pair = {"q15x4": [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1)]}
    pair["q7x4"] = [(0, 0), (1, 0), (0, 1), (1, 1), (2, 0), (3, 0), (2, 1), (3, 1)]
    out = []
    full = rows - rows % 4
    for g in range(0, full, 4):
        for k in range(dim // 2):
            out += [m[g + r, 2 * k + c] for r, c in pair[order]]
        if dim % 2:
            out += [m[g + r, dim - 1] for r in range(4)]
    for r in range(full, rows):
        out += list(m[r])
    return np.array(out, m.dtype)


def test_fc_interleave_is_arms_documented_order():
    """fc_interleave gives the examples of Arm's documentation: six rows of three columns (q15x4), four of
    seven (q7x4); both are permutations of the weights."""
    a = np.array([[10 * i + j for j in range(1, 4)] for i in range(1, 7)], np.int16)  # a[i-1][j-1] = aij
    want = [11, 12, 21, 22, 31, 32, 41, 42, 13, 23, 33, 43, 51, 52, 53, 61, 62, 63]
    assert fc_interleave(a, "q15x4").tolist() == want
    a = np.array([[10 * i + j for j in range(1, 8)] for i in range(1, 5)], np.int8)
    want = [11, 21, 12, 22, 31, 41, 32, 42, 13, 23, 14, 24, 33, 43, 34, 44, 15, 25, 16, 26, 35, 45, 36, 46]
    assert fc_interleave(a, "q7x4").tolist() == want + [17, 27, 37, 47]
    rng = np.random.default_rng(0)
    for rows, dim in [(1, 1), (4, 1), (5, 2), (13, 9), (8, 40)]:
        m = rng.integers(-128, 128, (rows, dim)).astype(np.int8)
        for order in ("q15x4", "q7x4"):
            assert sorted(fc_interleave(m, order).tolist()) == sorted(m.reshape(-1).tolist())


def rand_q7(rng, shape, mode=None):
    mode = mode if mode is not None else rng.choice(["full", "full", "small", "extreme"])
    if mode == "full":
        return rng.integers(-128, 128, size=shape).astype(np.int8)
    if mode == "small":
        return rng.integers(-8, 9, size=shape).astype(np.int8)
    return rng.choice(np.array([-128, 127, 0], np.int8), size=shape)


def fc_call(nl, fn, v, m, b, bs, os_, stored=None, extra=3):
    """Call fully-connected function fn with weights m [rows][dim] (stored: in the order given instead of its
    own); returns (status, the rows outputs); asserts the `extra` words after them untouched."""
    bits, order = FC_FUNCTIONS[fn]
    rows, dim = m.shape
    stored = fc_interleave(m, order) if stored is None else stored
    kind = "int16_t[]" if bits == 16 else "int8_t[]"
    assert stored.dtype == b.dtype == (np.int16 if bits == 16 else np.int8)
    out = np.full(rows + extra, SENTINEL, np.int16)
    buf = np.full(max(dim, 1), SENTINEL, np.int16)
    ffi = nl.ffi
    st = getattr(nl.lib, fn)(
        p(nl, v), ffi.from_buffer(kind, stored), dim, rows, bs, os_, ffi.from_buffer(kind, b), p(nl, out), p(nl, buf)
    )
    assert (out[rows:] == SENTINEL).all(), (fn, "wrote past num_of_rows")
    assert (buf == SENTINEL).all(), (fn, "wrote vec_buffer")
    return st, out[:rows]


def test_fully_connected_functions_match_reference(nl):
    """The four fully-connected functions (q15, q15_opt, mat_q7_vec_q15 and its _opt) equal the int64
    reference: every num_of_rows 1..13 (every rows % 4) with dim_vec 1, 2 and random odd and even sizes up to
    40, random shifts, full-scale data (-32768 and -128 included); nothing written past num_of_rows."""
    rng = np.random.default_rng(2024)
    sizes = [(rows, dim) for rows in range(1, 14) for dim in (1, 2, 3, 4)]
    sizes += [(int(rng.integers(1, 14)), int(rng.integers(1, 41))) for _ in range(120)]
    sizes += [(rows, dim) for rows in (4, 5, 8, 13) for dim in (39, 40)]
    for case, (rows, dim) in enumerate(sizes):
        mode = rng.choice(["full", "full", "small", "extreme"])
        v = rand_q15(rng, (dim,), mode)
        v[rng.integers(0, dim)] = QMIN
        bs, os_ = int(rng.choice([0, 0, 1, 7, 12, 31])), int(rng.choice([0, 1, 9, 15, 16, 22, 31]))
        for fn, (bits, _) in FC_FUNCTIONS.items():
            if bits == 16:
                m, b = rand_q15(rng, (rows, dim), mode), rand_q15(rng, (rows,))
                m[rng.integers(0, rows), rng.integers(0, dim)] = QMIN
            else:
                m, b = rand_q7(rng, (rows, dim), mode), rand_q7(rng, (rows,))
                m[rng.integers(0, rows), rng.integers(0, dim)] = -128
            st, out = fc_call(nl, fn, v, m, b, bs, os_)
            assert st == nl.lib.ARM_MATH_SUCCESS, (fn, case)
            want = ref_dense(v, m, b, bs, os_, nl.rounding)
            np.testing.assert_array_equal(out, want, err_msg=f"{fn} case {case}: rows {rows} dim {dim} {bs} {os_}")


def test_fully_connected_functions_wrap_like_smlad(nl):
    """A sum of products beyond int32 wraps modulo 2^32 in every function (groups of four rows, a leftover row
    and an odd last column included), where the exact sum would saturate."""
    for fn, (bits, _) in FC_FUNCTIONS.items():
        lo = QMIN if bits == 16 else -128
        dtype = np.int16 if bits == 16 else np.int8
        dim = 9 if bits == 16 else 777  # 9 * 2^30 and 777 * 2^22: beyond 2^31
        rows = 6
        v = np.full(dim, QMIN, np.int16)
        m = np.full((rows, dim), lo, dtype)
        m[1, 0] = m[4, dim - 1] = m[5, 3] = -1  # these rows: the sum minus a product plus a small one
        m[2, dim - 1] = 5
        b = np.arange(rows, dtype=dtype)
        exact = m.astype(np.int64) @ v.astype(np.int64)
        assert (exact >= 2**31).all(), fn
        want = ref_dense(v, m, b, 0, 0, nl.rounding)
        assert (want != QMAX).any(), fn  # the exact sums would all saturate to QMAX
        st, out = fc_call(nl, fn, v, m, b, 0, 0)
        assert st == 0
        np.testing.assert_array_equal(out, want, err_msg=fn)


def test_opt_functions_read_their_interleaved_order(nl):
    """Given the plain [out][in] order, an _opt function computes something else (4+ rows, dim_vec 3 or more:
    with two columns q15x4 is the plain order): the order matters, and the test above would catch a function
    that ignored it."""
    rng = np.random.default_rng(8)
    for fn in ("arm_fully_connected_q15_opt", "arm_fully_connected_mat_q7_vec_q15_opt"):
        bits, _ = FC_FUNCTIONS[fn]
        for rows, dim in [(4, 3), (5, 4), (8, 7), (13, 40)]:
            v = rand_q15(rng, (dim,), "small")
            m = rand_q15(rng, (rows, dim), "small") if bits == 16 else rand_q7(rng, (rows, dim), "small")
            b = np.zeros(rows, m.dtype)
            want = ref_dense(v, m, b, 0, 0, nl.rounding)
            st, out = fc_call(nl, fn, v, m, b, 0, 0)
            assert st == 0
            np.testing.assert_array_equal(out, want)
            st, plain = fc_call(nl, fn, v, m, b, 0, 0, stored=m.reshape(-1).copy())
            assert st == 0 and (plain != want).any(), (fn, rows, dim)
            # the rows % 4 left over come row-major in both orders
            np.testing.assert_array_equal(plain[rows - rows % 4 :], want[rows - rows % 4 :])


def test_fully_connected_functions_refuse_shifts_above_31(nl):
    """A shift above 31 gives ARM_MATH_ARGUMENT_ERROR and writes nothing, as for arm_fully_connected_q15."""
    for fn, (bits, _) in FC_FUNCTIONS.items():
        dtype = np.int16 if bits == 16 else np.int8
        v, m, b = np.ones(5, np.int16), np.ones((6, 5), dtype), np.ones(6, dtype)
        for bs, os_ in ((32, 0), (0, 32)):
            st, out = fc_call(nl, fn, v, m, b, bs, os_)
            assert st == nl.lib.ARM_MATH_ARGUMENT_ERROR and (out == SENTINEL).all(), (fn, bs, os_)


def test_relu_in_place(nl):
    """arm_relu_q15 zeroes negatives in place for odd and even sizes, QMIN included."""
    rng = np.random.default_rng(5)
    for n in [1, 2, 3, 7, 64, 101]:
        data = rand_q15(rng, (n,), "full")
        data[0] = QMIN
        expect = np.maximum(data, 0)
        nl.lib.arm_relu_q15(p(nl, data), n)
        np.testing.assert_array_equal(data, expect)


def test_pools_match_reference(nl):
    """Max and average pooling (truncation toward zero) equal the reference on random windows and strides."""
    rng = np.random.default_rng(11)
    for case in range(80):
        h, w = int(rng.integers(1, 11)), int(rng.integers(1, 11))
        c = int(rng.choice([1, 2, 3, 5, 8, 70]))
        kh, kw = int(rng.integers(1, min(h, 4) + 1)), int(rng.integers(1, min(w, 4) + 1))
        sh, sw = (kh, kw) if case % 2 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        x = rand_q15(rng, (h, w, c))
        oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
        for mode, fn in (("max", nl.lib.qv_maxpool_q15_HWC_nonsquare), ("avg", nl.lib.qv_avepool_q15_HWC_nonsquare)):
            out = np.full((oh, ow, c), SENTINEL, np.int16)
            assert fn(p(nl, x), w, h, c, kw, kh, sw, sh, ow, oh, p(nl, out)) == 0
            np.testing.assert_array_equal(out, ref_pool(x, (kh, kw), (sh, sw), mode), err_msg=f"{mode} case {case}")
    # truncation toward zero, not floor: mean of [-3, 0] is -1
    x = np.array([-3, 0], np.int16).reshape(1, 2, 1)
    out = np.zeros(1, np.int16)
    assert nl.lib.qv_avepool_q15_HWC_nonsquare(p(nl, x), 2, 1, 1, 2, 1, 2, 1, 1, 1, p(nl, out)) == 0
    assert out[0] == -1
    assert nl.lib.qv_global_avepool_q15_HWC(p(nl, x), 2, 1, 1, p(nl, out)) == 0
    assert out[0] == -1


def test_global_avepool_matches_reference(nl):
    """qv_global_avepool_q15_HWC equals the reference, including sums beyond int32."""
    rng = np.random.default_rng(3)
    for h, w, c in [(1, 1, 1), (4, 5, 3), (7, 2, 70), (9, 9, 130)]:
        x = rand_q15(rng, (h, w, c))
        out = np.full(c, SENTINEL, np.int16)
        assert nl.lib.qv_global_avepool_q15_HWC(p(nl, x), w, h, c, p(nl, out)) == 0
        np.testing.assert_array_equal(out, ref_gap(x))
    x = np.full((300, 300, 1), QMAX, np.int16)  # sum 2.9e9 > 2^31
    out = np.zeros(1, np.int16)
    assert nl.lib.qv_global_avepool_q15_HWC(p(nl, x), 300, 300, 1, p(nl, out)) == 0
    assert out[0] == QMAX


def test_argument_errors(nl):
    """Zero strides, oversized windows and shifts above 31 give ARM_MATH_ARGUMENT_ERROR and write nothing."""
    lib, null = nl.lib, nl.ffi.NULL
    x = np.ones((4, 4, 2), np.int16)
    w = np.ones((2, 2, 2, 2), np.int16)
    b = np.zeros(2, np.int16)
    out = np.full(64, SENTINEL, np.int16)
    buf = np.zeros(64, np.int16)
    err = lib.ARM_MATH_ARGUMENT_ERROR
    assert (
        lib.qv_convolve_HWC_q15_basic_nonsquare(
            p(nl, x), 4, 4, 2, p(nl, w), 2, 2, 2, 0, 0, 0, 1, p(nl, b), 0, 0, p(nl, out), 3, 3, p(nl, buf), null
        )
        == err
    )
    assert (
        lib.qv_convolve_HWC_q15_basic_nonsquare(
            p(nl, x), 4, 4, 2, p(nl, w), 2, 7, 2, 1, 0, 1, 1, p(nl, b), 0, 0, p(nl, out), 1, 3, p(nl, buf), null
        )
        == err
    )
    assert (
        lib.arm_convolve_HWC_q15_fast_nonsquare(
            p(nl, x), 4, 4, 2, p(nl, w), 2, 2, 2, 0, 0, 1, 1, p(nl, b), 0, 32, p(nl, out), 3, 3, p(nl, buf), null
        )
        == err
    )
    assert lib.qv_maxpool_q15_HWC_nonsquare(p(nl, x), 4, 4, 2, 5, 2, 1, 1, 1, 3, p(nl, out)) == err
    assert lib.qv_avepool_q15_HWC_nonsquare(p(nl, x), 4, 4, 2, 2, 2, 2, 0, 2, 2, p(nl, out)) == err
    assert lib.qv_maxpool_q15_HWC_nonsquare(p(nl, x), 4, 4, 2, 2, 2, 2, 2, 3, 2, p(nl, out)) == err  # too many outputs
    assert lib.qv_global_avepool_q15_HWC(p(nl, x), 0, 4, 2, p(nl, out)) == err
    assert (out == SENTINEL).all()


# ---------------------------------------------------------------- runner


class Net:
    """A list of qv_op_t built from Python, with the arrays kept alive."""

    def __init__(self, nl, in_shape):
        self.nl, self.specs, self.keep = nl, [], []
        self.shape = tuple(in_shape)

    def add(self, kind, out_shape, **kw):
        self.specs.append((kind, self.shape, tuple(out_shape), kw))
        self.shape = tuple(out_shape)
        return self

    def conv(self, rng, co, k, pad=(0, 0), stride=(1, 1), bs=2, os_=12):
        h, w, c = self.shape
        oh = (h + 2 * pad[0] - k[0]) // stride[0] + 1
        ow = (w + 2 * pad[1] - k[1]) // stride[1] + 1
        return self.add(
            "CONV",
            (oh, ow, co),
            w=rand_q15(rng, (co, *k, c), "full"),
            b=rand_q15(rng, (co,), "full"),
            k=k,
            pad=pad,
            stride=stride,
            bs=bs,
            os=os_,
        )

    def pool(self, kind, k, stride):
        h, w, c = self.shape
        return self.add(kind, ((h - k[0]) // stride[0] + 1, (w - k[1]) // stride[1] + 1, c), k=k, stride=stride)

    def dense(self, rng, units, bs=1, os_=13):
        n = int(np.prod(self.shape))
        return self.add(
            "DENSE",
            (1, 1, units),
            w=rand_q15(rng, (units, n), "full"),
            b=rand_q15(rng, (units,), "full"),
            bs=bs,
            os=os_,
        )

    def plan_op(self, i):
        """Spec i as the plan would hold it, its function chosen as qverify.kernels chooses."""
        kind, ishape, oshape, kw = self.specs[i]
        op = SimpleNamespace(
            name=f"op{i}",
            kind=kind.lower(),
            in_shape=ishape,
            out_shape=oshape,
            kernel=kw.get("k", (1, 1)),
            stride=kw.get("stride", (1, 1)),
            pad=kw.get("pad", (0, 0)),
            bias_lshift=kw.get("bs"),
            out_rshift=kw.get("os"),
            function=None,
        )
        op.function = kw.get("function") or kernels.choose(op, self.nl.rounding)
        return op

    def ops(self):
        ffi, lib = self.nl.ffi, self.nl.lib
        ops = ffi.new("qv_op_t[]", len(self.specs))
        for i, (op, (kind, ishape, oshape, kw)) in enumerate(zip(ops, self.specs, strict=True)):
            call = kernels.call(self.plan_op(i))
            op.kind = getattr(lib, f"QV_OP_{kind}")
            op.kernel, op.flags = getattr(lib, call.function.enum), call.flags
            op.in_h, op.in_w, op.in_c = ishape
            op.out_h, op.out_w, op.out_c = oshape
            if "k" in kw:
                op.k_h, op.k_w = kw["k"]
                op.stride_h, op.stride_w = kw["stride"]
            if "pad" in kw:
                op.pad_h, op.pad_w = kw["pad"]
            if "w" in kw:
                wts, bias = np.ascontiguousarray(kw["w"]), np.ascontiguousarray(kw["b"])
                self.keep += [wts, bias]
                op.weights, op.bias = p(self.nl, wts), p(self.nl, bias)
                op.bias_lshift, op.out_rshift = kw["bs"], kw["os"]
        return ops

    def reference(self, x):
        outs = []
        for kind, _, oshape, kw in self.specs:
            if kind == "CONV":
                x = ref_conv(x, kw["w"], kw["b"], kw["bs"], kw["os"], kw["pad"], kw["stride"], self.nl.rounding)
            elif kind == "DENSE":
                x = ref_dense(x.reshape(-1), kw["w"], kw["b"], kw["bs"], kw["os"], self.nl.rounding)
            elif kind == "RELU":
                x = np.maximum(x, 0)
            elif kind in ("MAXPOOL", "AVGPOOL"):
                x = ref_pool(x, kw["k"], kw["stride"], "max" if kind == "MAXPOOL" else "avg")
            elif kind == "GAP":
                x = ref_gap(x)
            x = x.reshape(oshape)
            outs.append(x)
        return outs


def run_net(nl, net, x_batch):
    """qv_run over a batch; returns (status, failed_op, per-op outputs, kernel names)."""
    ffi, lib = nl.ffi, nl.lib
    ops = net.ops()
    n = len(net.specs)
    outs = [np.full((len(x_batch), *spec[2]), SENTINEL, np.int16) for spec in net.specs]
    out_ptrs = ffi.new("int16_t *[]", [p(nl, o) for o in outs])
    scratch = np.zeros(lib.qv_scratch_words(ops, n), np.int16)
    used = ffi.new("int32_t[]", n)
    info = ffi.new("qv_run_info_t *")
    x_batch = np.ascontiguousarray(x_batch, np.int16)
    st = lib.qv_run(ops, n, p(nl, x_batch), len(x_batch), out_ptrs, 0, p(nl, scratch), used, info)
    return st, info.failed_op, outs, [nl.kernel_name(used[i]) for i in range(n)]


def test_qv_run_small_network(nl):
    """qv_run on conv -> relu -> maxpool -> conv -> flatten -> dense matches the reference op by op."""
    rng = np.random.default_rng(2024)
    net = Net(nl, (12, 10, 3)).conv(rng, 4, (3, 3), pad=(1, 1)).add("RELU", (12, 10, 4)).pool("MAXPOOL", (2, 2), (2, 2))
    net.conv(rng, 5, (3, 2), stride=(2, 1), os_=14)
    net.add("FLATTEN", (1, 1, int(np.prod(net.shape)))).dense(rng, 3)
    x = rand_q15(rng, (5, 12, 10, 3), "full")
    st, failed, outs, kernels = run_net(nl, net, x)
    assert (st, failed) == (0, -1)
    conv = conv_kernel(nl, "qv_convolve_HWC_q15_basic_nonsquare")
    assert kernels == [conv, "arm_relu_q15", "qv_maxpool_q15_HWC_nonsquare", conv, "copy", "arm_fully_connected_q15"]
    for s in range(len(x)):
        for i, expect in enumerate(net.reference(x[s])):
            np.testing.assert_array_equal(outs[i][s], expect, err_msg=f"sample {s} op {i} ({kernels[i]})")


def test_qv_run_kernel_selection(nl):
    """qv_run runs the function the plan chose: the fast convs for even channels and an even output width
    (a 1-D conv's length passed as x), Arm's basic for odd square shapes, the qv_ kernel where Arm has none."""
    rng = np.random.default_rng(8)
    cases = [
        ((6, 6, 2), 4, (3, 3), "arm_convolve_HWC_q15_fast"),
        ((6, 4, 2), 2, (3, 1), "arm_convolve_HWC_q15_fast_nonsquare"),
        ((6, 5, 2), 2, (3, 1), "qv_convolve_HWC_q15_basic_nonsquare"),  # odd output width
        ((8, 1, 2), 2, (3, 1), "arm_convolve_HWC_q15_fast_nonsquare"),  # 1-D: 8 outputs along x
        ((7, 1, 2), 2, (3, 1), "qv_convolve_HWC_q15_basic_nonsquare"),  # 1-D: 7 outputs
        ((6, 6, 3), 4, (3, 3), "arm_convolve_HWC_q15_basic"),
        ((6, 6, 2), 3, (3, 3), "arm_convolve_HWC_q15_basic"),
        ((6, 5, 3), 4, (3, 3), "qv_convolve_HWC_q15_basic_nonsquare"),
        ((6, 6, 1), 1, (3, 1), "qv_convolve_HWC_q15_basic_nonsquare"),
    ]
    for shape, co, k, kernel in cases:
        net = Net(nl, shape).conv(rng, co, k, pad=(1, 0) if k[1] == 1 else (1, 1))
        assert net.plan_op(0).function == kernel, shape
        net.add("GAP", (1, 1, co))
        x = rand_q15(rng, (2, *shape), "full")
        st, _, outs, kernels = run_net(nl, net, x)
        kernel = conv_kernel(nl, kernel)
        assert st == 0 and kernels == [kernel, "qv_global_avepool_q15_HWC"], (shape, kernels)
        for s in range(2):
            for i, expect in enumerate(net.reference(x[s])):
                np.testing.assert_array_equal(outs[i][s], expect, err_msg=f"{kernel} op {i}")


def test_qv_run_threads_match_single_call(nl):
    """Sub-batches run in threads with separate scratch give the same outputs as one call (GIL released).

    Each worker's result is taken with future.result(), so an exception in a worker fails the test with
    that exception; every worker must succeed, run the same kernels, and give exactly its slice of the
    single call's outputs, which itself equals the reference."""
    rng = np.random.default_rng(77)
    net = Net(nl, (16, 16, 4)).conv(rng, 8, (3, 3), pad=(1, 1)).add("RELU", (16, 16, 8))
    net.pool("AVGPOOL", (2, 2), (2, 2)).add("GAP", (1, 1, 8)).dense(rng, 4)
    x = rand_q15(rng, (24, 16, 16, 4), "full")
    st, failed, whole, used = run_net(nl, net, x)
    assert (st, failed) == (0, -1) and len(whole) == len(used) == 5
    for s in range(len(x)):
        for i, expect in enumerate(net.reference(x[s])):
            np.testing.assert_array_equal(whole[i][s], expect, err_msg=f"single call: sample {s} op {i}")
    start = threading.Barrier(4)

    def work(i):
        start.wait(timeout=60)  # the four workers start their qv_run calls together
        return run_net(nl, net, x[i * 6 : (i + 1) * 6])

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(work, i) for i in range(4)]
        parts = [f.result(timeout=120) for f in futures]  # re-raises a worker's exception
    assert len(parts) == 4
    for i, (st_i, failed_i, outs, used_i) in enumerate(parts):
        assert (st_i, failed_i) == (0, -1), f"thread {i}: status {st_i}, failed op {failed_i}"
        assert used_i == used and len(outs) == len(whole), f"thread {i}"
        for op, out in enumerate(outs):
            np.testing.assert_array_equal(out, whole[op][i * 6 : (i + 1) * 6], err_msg=f"thread {i} op {op}")


def test_qv_run_reports_failing_op(nl):
    """An op whose input does not match the previous output fails with its index and nothing runs."""
    rng = np.random.default_rng(1)
    net = Net(nl, (4, 4, 2)).conv(rng, 2, (3, 3)).add("RELU", (2, 2, 2))
    net.specs.append(("RELU", (2, 2, 3), (2, 2, 3), {}))  # wrong input size
    st, failed, outs, _ = run_net(nl, net, rand_q15(rng, (1, 4, 4, 2)))
    assert (st, failed) == (nl.lib.ARM_MATH_LENGTH_ERROR, 2)
    assert all((o == SENTINEL).all() for o in outs)


# ---------------------------------------------------------------- native_lib


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.partition(":")[2].split())


@pytest.mark.skipif(not _cpu_flags(), reason="needs /proc/cpuinfo (Linux) to know the CPU's features")
def test_fast_build_uses_the_widest_simd_the_cpu_has():
    """The fast build's run-time detection agrees with the kernel's view of the CPU (so a data-set run
    never falls back to the plain kernels unnoticed), and the level can be capped and restored."""
    flags = _cpu_flags()
    want = (
        "avx512-vnni"
        if {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"} <= flags
        else "avx2"
        if "avx2" in flags
        else "none"
    )
    for rounding in native_lib.ROUNDINGS:
        nl = native_lib.load("fast", rounding)
        assert nl.simd == want
        try:
            assert nl.lib.qv_host_simd_limit(1) == (1 if want != "none" else 0)
            assert nl.simd == ("avx2" if want != "none" else "none")
        finally:
            nl.lib.qv_host_simd_limit(2)
        assert nl.simd == want


def test_load_rejects_unknown_variant():
    """native_lib.load names the valid choices when kernels or rounding is wrong."""
    with pytest.raises(NativeBuildError, match="dsp, plain"):
        native_lib.load("simd")
    with pytest.raises(NativeBuildError, match="truncate, round"):
        native_lib.load("plain", "nearest")


def test_cmsis_root_builds_arm_kernels_from_the_tree(tmp_path, monkeypatch):
    """load(cmsis_root=...) compiles the tree's arm_* sources (cached) and reports the root; errors are clear."""
    monkeypatch.setenv("QVERIFY_CACHE_DIR", str(tmp_path / "cache"))
    root = fake_cmsis_tree(tmp_path / "good")
    ext = native_lib.load("plain", "round", cmsis_root=str(root))
    assert ext.info == f"kernels={root.resolve()}; path=plain; rounding=round"
    data = np.array([-5, 3, -1], np.int16)
    ext.lib.arm_relu_q15(p(ext, data), 3)
    np.testing.assert_array_equal(data, [7, 3, 7])  # the tree's (altered) relu, not the bundled one
    rng = np.random.default_rng(0)
    x, w, b, bs, os_, pad, stride = random_conv(rng)
    st, out, _ = conv_call(ext, "qv_convolve_HWC_q15_basic_nonsquare", x, w, b, bs, os_, pad, stride)
    assert st == 0
    np.testing.assert_array_equal(out, ref_conv(x, w, b, bs, os_, pad, stride, "round"))
    assert list((tmp_path / "cache" / "native").iterdir())  # cached build

    dsp = native_lib.load("dsp", "round", cmsis_root=str(root))  # the tree's ARM_MATH_DSP path
    assert dsp.info == f"kernels={root.resolve()}; path=dsp; rounding=round"
    with pytest.raises(NativeBuildError, match="--kernels fast runs qverify's own host convolution.*--kernels plain"):
        native_lib.load("fast", "round", cmsis_root=str(root))
    missing = fake_cmsis_tree(tmp_path / "missing", omit="arm_convolve_HWC_q15_fast")
    assert build.find_cmsis_nn(missing)["missing"] == ("arm_convolve_HWC_q15_fast",)  # a trimmed tree is fine
    (tmp_path / "empty").mkdir()
    with pytest.raises(NativeBuildError, match="no CMSIS-NN sources"):
        native_lib.load("plain", "truncate", cmsis_root=str(tmp_path / "empty"))
