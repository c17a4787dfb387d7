"""Building the arm_* kernels from a firmware's CMSIS tree on the host (qverify.build, qverify.native_lib).

The fake trees of tests/fake_cmsis.py stand in for Arm's (none is in the repository); the last test
checks real CMSIS_5 trees when QVERIFY_CMSIS_TREES names a folder of <version>/CMSIS trees:

    QVERIFY_CMSIS_TREES=/path/to/trees pytest tests/test_cmsis_tree.py
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from fake_cmsis import fake_cmsis_tree
from qverify import build, native_lib
from qverify.errors import NativeBuildError
from qverify.kernels import release

SENTINEL = 0x5A5B
CALLS = 80  # random calls of each kind per build in the real-tree check


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("QVERIFY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(native_lib, "_loaded", {})  # every test builds (or finds) its own modules


def p(nl, a):
    return nl.ffi.from_buffer("int16_t[]", a)


def relu(nl, values) -> list[int]:
    data = np.array(values, np.int16)
    nl.lib.arm_relu_q15(p(nl, data), data.size)
    return data.tolist()


def fast_nonsquare(nl, x, w, b, bs, os_, pad, stride):
    """arm_convolve_HWC_q15_fast_nonsquare of x (H, W, C) and w (CO, KH, KW, C): (status, output)."""
    (h, wd, c), (co, kh, kw, _) = x.shape, w.shape
    oh, ow = (h + 2 * pad[0] - kh) // stride[0] + 1, (wd + 2 * pad[1] - kw) // stride[1] + 1
    out = np.full((oh, ow, co), SENTINEL, np.int16)
    buf = np.zeros(2 * c * kh * kw, np.int16)
    st = nl.lib.arm_convolve_HWC_q15_fast_nonsquare(
        p(nl, x),
        wd,
        h,
        c,
        p(nl, w),
        co,
        kw,
        kh,
        pad[1],
        pad[0],
        stride[1],
        stride[0],
        p(nl, b),
        bs,
        os_,
        p(nl, out),
        ow,
        oh,
        p(nl, buf),
        nl.ffi.NULL,
    )
    return st, out


# ---------------------------------------------------------------- trimmed trees


@pytest.mark.parametrize("kernels", ["plain", "dsp"])
def test_trimmed_tree_builds_and_runs(tmp_path, kernels):
    """A tree without arm_convolve_HWC_q15_fast.c builds; the module lacks that function and says so."""
    root = fake_cmsis_tree(tmp_path, omit="arm_convolve_HWC_q15_fast")
    tree = build.find_cmsis_nn(root)
    assert tree["missing"] == ("arm_convolve_HWC_q15_fast",)
    assert "arm_convolve_HWC_q15_fast" not in tree["sources"]
    assert set(tree["sources"]) == set(build.ARM_FUNCTIONS) - {"arm_convolve_HWC_q15_fast"}
    spec = build.build_spec(kernels, "round", root)
    assert ("QV_HAVE_ARM_CONVOLVE_HWC_Q15_FAST", None) not in spec["macros"]
    assert ("QV_HAVE_ARM_RELU_Q15", None) in spec["macros"]

    nl = native_lib.load(kernels, "round", cmsis_root=str(root))
    assert nl.info == f"kernels={root.resolve()}; path={kernels}; rounding=round"
    assert nl.missing_functions == ("arm_convolve_HWC_q15_fast",)
    assert not hasattr(nl.lib, "arm_convolve_HWC_q15_fast")
    assert relu(nl, [-5, 3, -1]) == [7, 3, 7]  # the tree's (altered) relu
    rng = np.random.default_rng(5)
    x = rng.integers(-300, 300, (3, 4, 2)).astype(np.int16)
    w = rng.integers(-300, 300, (2, 1, 3, 2)).astype(np.int16)
    b = np.array([5, -9], np.int16)
    ours = native_lib.load(kernels, "round")
    assert ours.missing_functions == ()
    got, want = fast_nonsquare(nl, x, w, b, 2, 6, (0, 1), (1, 1)), fast_nonsquare(ours, x, w, b, 2, 6, (0, 1), (1, 1))
    assert got[0] == want[0] == 0
    np.testing.assert_array_equal(got[1], want[1])


def test_every_bundled_build_has_all_of_arms_functions():
    """Every arm_* function an op kind may call (ten: three convolutions, four fully connected (q15, q15_opt,
    mat_q7_vec_q15 and its _opt), ReLU, the activations and softmax) is in every bundled build."""
    spec = build.build_spec("dsp", "truncate")
    assert [m for m, _ in spec["macros"] if m.startswith("QV_HAVE_")] == build.have_macros(build.ARM_FUNCTIONS)
    assert len(build.have_macros(build.ARM_FUNCTIONS)) == 10 == len(build.ARM_FUNCTIONS)


def test_tree_without_any_function_is_refused(tmp_path):
    root = fake_cmsis_tree(tmp_path, omit=build.ARM_FUNCTIONS)
    (root / "CMSIS" / "NN" / "Source").mkdir()
    with pytest.raises(build.CmsisTreeError, match="holds none of the legacy q15 CMSIS-NN functions"):
        build.find_cmsis_nn(root)
    with pytest.raises(NativeBuildError, match="holds none of"):
        native_lib.load("plain", "round", cmsis_root=str(root))


@pytest.mark.skipif(
    "QV_HAVE_ARM_RELU_Q15" not in build.RUNNER_SOURCE.read_text(),
    reason="the runner has no QV_HAVE_<FUNCTION> guards yet: a missing function it calls leaves an undefined symbol",
)
def test_tree_without_functions_the_runner_calls_builds(tmp_path):
    root = fake_cmsis_tree(tmp_path, omit=["arm_relu_q15", "arm_fully_connected_q15"])
    nl = native_lib.load("plain", "truncate", cmsis_root=str(root))
    assert nl.missing_functions == ("arm_fully_connected_q15", "arm_relu_q15")
    assert not hasattr(nl.lib, "arm_relu_q15")


def test_setup_builds_dsp_from_the_tree_and_fast_from_the_bundled_kernels(tmp_path, monkeypatch):
    """QVERIFY_CMSIS_ROOT at install time: the dsp (and plain) modules come from the tree, fast from ours.
    (Not compiled here: a module named qverify._native_* would stand in for the installed one.)"""
    root = fake_cmsis_tree(tmp_path)
    monkeypatch.setenv("QVERIFY_CMSIS_ROOT", str(root))
    monkeypatch.chdir(tmp_path)
    with pytest.warns(UserWarning, match="--kernels fast runs qverify's own host convolution"):
        build._setup_builder("fast", "round")
    build._setup_builder("dsp", "round")
    work = tmp_path / "build" / "qverify_native"
    tree_relu = next(root.resolve().rglob("arm_relu_q15.c")).as_posix()
    assert tree_relu in (work / "qverify__native_dsp_round" / "src" / "arm_relu_q15.c").read_text()
    assert (work / "qverify__native_dsp_round" / "include" / "cmsis_compiler.h").is_file()  # the host shim
    fast_relu = (work / "qverify__native_fast_round" / "src" / "arm_relu_q15.c").read_text()
    assert build.CMSIS_SOURCE.joinpath("arm_relu_q15.c").as_posix() in fast_relu


def test_target_lib_of_a_trimmed_tree(tmp_path, monkeypatch):
    """The cross-compiled kernel library holds the tree's functions only, announced by QV_HAVE_<NAME>; its
    cache key follows the flags and every header (subfolders too)."""
    from qverify.mcu import missing_reason
    from qverify.mcu.image import ImageBuilder
    from qverify.mcu.toolchain import cpu, find_toolchain

    if missing_reason():
        pytest.skip(missing_reason())
    monkeypatch.setenv("QVERIFY_CACHE_DIR", str(tmp_path / "cache"))
    root = fake_cmsis_tree(tmp_path, omit="arm_convolve_HWC_q15_fast")
    builder = ImageBuilder(find_toolchain(need_qemu=False), cpu("cortex-m4"), "truncate", str(root))
    assert builder.missing_functions == ("arm_convolve_HWC_q15_fast",)
    defines = builder.defines()
    assert "-DQV_HAVE_ARM_RELU_Q15" in defines and "-DQV_HAVE_ARM_CONVOLVE_HWC_Q15_FAST" not in defines
    lib, cached = builder.lib()
    objects = {o.name for o in lib.glob("*.o")}
    assert "arm_convolve_HWC_q15_fast_nonsquare.o" in objects and "arm_convolve_HWC_q15_fast.o" not in objects
    assert not cached and builder.lib() == (lib, True)

    key = builder.lib_key()
    assert ImageBuilder(builder.toolchain, builder.cpu, "truncate", str(root), cflags=("-O1",)).lib_key() != key
    sub = root / "CMSIS" / "NN" / "Include" / "extra"
    sub.mkdir()
    (sub / "vendor.h").write_text("/* v1 */\n")
    assert builder.lib_key() != key


# ---------------------------------------------------------------- the tree's DSP path on the host

# Arm-style source whose ARM_MATH_DSP branch differs observably (negatives -> 7 there, 5 on the plain path),
# and uses the intrinsics a real tree's DSP path takes from the core's compiler header.
DSP_RELU = """#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"
#if defined(ARM_MATH_DSP)
#include "cmsis_compiler.h"
#endif
void arm_relu_q15(q15_t *data, uint16_t size)
{
    uint16_t i;
    for (i = 0; i < size; i++)
    {
#if defined(ARM_MATH_DSP)
        if (data[i] < 0)
            data[i] = (q15_t)__SSAT((q31_t)__SMLAD(0x00010001, 0x00030004, 0), 16); /* 1*4 + 1*3 */
#else
        if (data[i] < 0)
            data[i] = 5;
#endif
    }
}
"""


def test_dsp_build_of_a_tree_runs_its_dsp_path(tmp_path):
    root = fake_cmsis_tree(tmp_path, sources={"arm_relu_q15": DSP_RELU})
    dsp = native_lib.load("dsp", "truncate", cmsis_root=str(root))
    plain = native_lib.load("plain", "truncate", cmsis_root=str(root))
    assert dsp.info == f"kernels={root.resolve()}; path=dsp; rounding=truncate"
    assert relu(dsp, [-5, 3, -32768]) == [7, 3, 7]
    assert relu(plain, [-5, 3, -32768]) == [5, 3, 5]


def test_fast_is_refused_for_a_tree_naming_the_flags(tmp_path):
    root = fake_cmsis_tree(tmp_path)
    with pytest.raises(
        NativeBuildError,
        match=r"--kernels fast .*own host convolution.*--kernels plain or "
        r"--kernels dsp .*kernels = \[",
    ):
        native_lib.load("fast", "round", cmsis_root=str(root))
    message = ""
    try:
        build.check_tree_kernels("fast", root)
    except build.CmsisTreeError as exc:
        message = str(exc)
    assert "kernels='" not in message
    for kernels in ("plain", "dsp"):
        build.check_tree_kernels(kernels, root)


# ---------------------------------------------------------------- builds that can be trusted


def _fake_compiler(folder: Path, name: str) -> str:
    """A C compiler of another path (a wrapper of the real one); fails while folder/broken exists."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    script = folder / name
    script.write_text(
        f'#!/bin/sh\nif [ -e "{folder}/broken" ]; then echo "cc1: error: the compiler is broken" >&2; '
        f'exit 1; fi\nexec {cc} "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


@pytest.mark.skipif(sys.platform == "win32", reason="the other compiler is a /bin/sh script")
def test_cache_key_covers_compiler_flags_macros_and_headers(tmp_path, monkeypatch):
    root = fake_cmsis_tree(tmp_path)
    key = native_lib.build_key("plain", "round", str(root))
    assert native_lib.build_key("plain", "round", str(root)) == key
    assert native_lib.build_key("dsp", "round", str(root)) != key
    assert native_lib.build_key("plain", "truncate", str(root)) != key

    monkeypatch.setenv("CFLAGS", "-O1")  # a flag from the environment
    assert native_lib.build_key("plain", "round", str(root)) != key
    monkeypatch.delenv("CFLAGS")
    monkeypatch.setenv("CPPFLAGS", "-DARM_NN_TRUNCATE")  # a macro from the environment
    assert native_lib.build_key("plain", "round", str(root)) != key
    monkeypatch.delenv("CPPFLAGS")
    monkeypatch.setattr(build, "COMPILE_ARGS", [*build.COMPILE_ARGS, "-fno-inline"])  # a flag of ours
    assert native_lib.build_key("plain", "round", str(root)) != key
    monkeypatch.undo()
    monkeypatch.setenv("QVERIFY_CACHE_DIR", str(tmp_path / "cache"))
    assert native_lib.build_key("plain", "round", str(root)) == key

    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("CC", _fake_compiler(tmp_path / "bin", "cc"))  # another compiler
    assert native_lib.build_key("plain", "round", str(root)) != key
    monkeypatch.delenv("CC")

    sub = root / "CMSIS" / "DSP" / "Include" / "dsp"  # a header in a subfolder of an include folder
    sub.mkdir()
    (sub / "basic_math_functions.h").write_text("/* v1 */\n")
    key1 = native_lib.build_key("plain", "round", str(root))
    assert key1 != key
    (sub / "basic_math_functions.h").write_text("/* v2 */\n")
    assert native_lib.build_key("plain", "round", str(root)) not in (key, key1)
    assert sub / "basic_math_functions.h" in build.source_files(root)


def _cached_modules() -> list[Path]:
    return [f for f in native_lib.cache_dir().rglob("*") if f.suffix in (".so", ".pyd")]


def test_failed_build_is_not_cached_and_builds_once_fixed(tmp_path):
    broken = build.CMSIS_SOURCE.joinpath("arm_relu_q15.c").read_text().replace("{", "{ this is not C;", 1)
    root = fake_cmsis_tree(tmp_path, sources={"arm_relu_q15": broken})
    with pytest.raises(NativeBuildError) as info:
        native_lib.load("plain", "round", cmsis_root=str(root))
    message = str(info.value)
    assert "\n" not in message
    assert "arm_relu_q15.c:" in message and "error:" in message, message
    assert "build.log" in message
    assert _cached_modules() == []

    source = next(root.rglob("arm_relu_q15.c"))
    source.write_text(build.CMSIS_SOURCE.joinpath("arm_relu_q15.c").read_text())
    nl = native_lib.load("plain", "round", cmsis_root=str(root))
    assert relu(nl, [-2, 2]) == [0, 2]
    assert len(_cached_modules()) == 1


@pytest.mark.skipif(sys.platform == "win32", reason="the broken compiler is a /bin/sh script")
def test_failure_of_the_environment_is_not_cached(tmp_path, monkeypatch):
    """The same build (same key) fails while the compiler is broken and succeeds once it is repaired."""
    root = fake_cmsis_tree(tmp_path)
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("CC", _fake_compiler(tmp_path / "bin", "cc"))
    (tmp_path / "bin" / "broken").write_text("")
    key = native_lib.build_key("plain", "truncate", str(root))
    with pytest.raises(NativeBuildError, match="failed: cc1: error: the compiler is broken"):
        native_lib.load("plain", "truncate", cmsis_root=str(root))
    assert _cached_modules() == []
    (tmp_path / "bin" / "broken").unlink()
    assert native_lib.build_key("plain", "truncate", str(root)) == key
    assert relu(native_lib.load("plain", "truncate", cmsis_root=str(root)), [-1]) == [7]


def test_cached_module_that_does_not_import_is_rebuilt(tmp_path):
    root = fake_cmsis_tree(tmp_path)
    native_lib.load("plain", "round", cmsis_root=str(root))
    (module,) = _cached_modules()
    module.unlink()  # a new file: the loaded one stays mapped as it was
    module.write_bytes(b"not a shared object")
    # another process: this one would reuse the module it has loaded from that path
    script = (
        "import numpy as np; from qverify import native_lib; "
        f"nl = native_lib.load('plain', 'round', cmsis_root={str(root)!r}); "
        "d = np.array([-3], np.int16); nl.lib.arm_relu_q15(nl.ffi.from_buffer('int16_t[]', d), 1); "
        "print(int(d[0]))"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["7"]
    assert module.read_bytes() != b"not a shared object"


# ---------------------------------------------------------------- Arm's real trees (opt-in)

TREES_ENV = "QVERIFY_CMSIS_TREES"


def _real_trees() -> list:
    folder = os.environ.get(TREES_ENV)
    reason = (
        f"set {TREES_ENV} to a folder of <version>/CMSIS trees (Arm's CMSIS_5 releases) to check them"
        if not folder
        else f"{TREES_ENV}={folder} holds no <version>/CMSIS/NN folder"
    )
    found = sorted(d.name for d in Path(folder).iterdir() if (d / "CMSIS" / "NN").is_dir()) if folder else []
    if not found:
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="no-trees")]
    return [pytest.param(Path(folder) / v / "CMSIS", id=v) for v in found]


def interleave(m, order: str):
    """Weights m [rows][dim] in the order of Arm's _opt functions (their documentation), flat: rows in groups
    of four r0..r3, per column pair k "q15x4": r0[2k] r0[2k+1] r1[2k] r1[2k+1] r2[2k] r2[2k+1] r3[2k] r3[2k+1],
    "q7x4": r0[2k] r1[2k] r0[2k+1] r1[2k+1] r2[2k] r3[2k] r2[2k+1] r3[2k+1]; for an odd dim then the last
    column r0..r3; the rows % 4 rows left over row-major."""
    rows, dim = m.shape
    full = rows - rows % 4
    groups = m[:full].reshape(-1, 4, dim)
    pairs = groups[:, :, : dim - dim % 2].reshape(len(groups), 4, dim // 2, 2)  # (group, row, k, column)
    if order == "q15x4":
        body = pairs.transpose(0, 2, 1, 3)  # (group, k, row, column)
    else:  # (group, k, row pair, column, row in the pair)
        body = pairs.reshape(len(groups), 2, 2, dim // 2, 2).transpose(0, 3, 1, 4, 2)
    body = body.reshape(len(groups), 4 * (dim - dim % 2))
    last = groups[:, :, dim - dim % 2 :].reshape(len(groups), 4 * (dim % 2))  # the odd last column, r0..r3
    return np.concatenate([np.concatenate([body, last], axis=1).reshape(-1), m[full:].reshape(-1)])


def test_interleave_is_arms_documented_order():
    """interleave gives the examples of Arm's documentation (rows a1..a6 of 3 columns; 4 rows of 7)."""
    a = np.array([[10 * i + j for j in range(1, 4)] for i in range(1, 7)], np.int16)
    assert interleave(a, "q15x4").tolist() == [11, 12, 21, 22, 31, 32, 41, 42, 13, 23, 33, 43, 51, 52, 53, 61, 62, 63]
    a = np.array([[10 * i + j for j in range(1, 8)] for i in range(1, 5)], np.int8)
    assert interleave(a, "q7x4").tolist() == [
        *(11, 21, 12, 22, 31, 41, 32, 42),
        *(13, 23, 14, 24, 33, 43, 34, 44),
        *(15, 25, 16, 26, 35, 45, 36, 46),
        *(17, 27, 37, 47),
    ]


def _round_of_zero_is_undefined(tree_root: Path) -> bool:
    """5.4 and 5.5 define NN_ROUND(out_shift) as 0x1 << (out_shift - 1): at out_shift 0 a shift by -1,
    undefined in C, which a Cortex-M computes as 0 (LSL by 255) and x86 as INT_MIN (shift counts mod 32)."""
    text = (tree_root / "NN" / "Include" / "arm_nnsupportfunctions.h").read_text(errors="replace")
    return re.search(r"NN_ROUND\(out_shift\)\s*\(\s*0x1\s*<<\s*\(\s*out_shift\s*-\s*1\s*\)", text) is not None


def _round_of_31_overflows(tree_root: Path) -> bool:
    """5.9.0 defines NN_ROUND(out_shift) as ((0x1 << out_shift) >> 1): at out_shift 31 a signed overflow, which
    the compilers make INT_MIN >> 1 = -2^30 (5.4.0-5.5.0 write 0x1 << 30, 5.6.0-5.8.0 shift 0x1u: +2^30)."""
    text = (tree_root / "NN" / "Include" / "arm_nnsupportfunctions.h").read_text(errors="replace")
    signed = r"NN_ROUND\(out_shift\)\s*\(\s*\(\s*0x1\s*<<\s*\(?\s*out_shift\s*\)?\s*\)\s*>>\s*1\s*\)"  # 0x1, not 0x1u
    return re.search(signed, text) is not None


def _compare_kernels(tree, ours, rounding: str, rng, shifts, saturated_index: bool = False) -> dict:
    """Random calls of the arm_* functions through both modules; asserts identical statuses and outputs
    (sentinels included); the activation function on every input unless the tree's saturates its index (then
    _activation_index_saturates has checked what differs).  Returns {function: calls}."""
    lib, ref = tree.lib, ours.lib
    calls = dict.fromkeys(build.ARM_FUNCTIONS, 0)

    def same(fn, args_for, out_shape, buf_len):
        outs, statuses = [], []
        for nl in (tree, ours):
            out = np.full(out_shape, SENTINEL, np.int16)
            buf = np.full(max(buf_len, 1), SENTINEL, np.int16)
            st = getattr(nl.lib, fn)(*args_for(nl, out, buf))
            outs.append(out)
            statuses.append(int(st))
        assert statuses[0] == statuses[1], (fn, statuses)
        np.testing.assert_array_equal(outs[0], outs[1], err_msg=f"{fn} ({rounding})")
        calls[fn] += 1

    def q15(shape, small=False):
        lim = 200 if small else 32768
        return rng.integers(-lim, lim, size=shape).astype(np.int16)

    def q7(shape, small=False):
        lim = 8 if small else 128
        return rng.integers(-lim, lim, size=shape).astype(np.int8)

    for _ in range(CALLS):
        small = bool(rng.integers(0, 2))
        bs, os_ = int(rng.choice([0, 1, 4, 8, 15])), int(rng.choice(shifts))
        # square kernels: basic takes any channel count, fast even ones and an even output width (as below)
        for fn, step in (("arm_convolve_HWC_q15_basic", 1), ("arm_convolve_HWC_q15_fast", 2)):
            c, co = step * int(rng.integers(1, 7 // step)), step * int(rng.integers(1, 7 // step))
            n, k = int(rng.integers(1, 9)), int(rng.integers(1, 4))
            pad, stride = int(rng.integers(0, 3)), int(rng.integers(1, 3))
            k = min(k, n + 2 * pad)
            on = (n + 2 * pad - k) // stride + 1
            if step == 2 and on % 2:
                continue
            x, w, b = q15((n, n, c), small), q15((co, k, k, c), small), q15((co,), small)

            def square(
                nl, out, buf, x=x, w=w, b=b, n=n, c=c, co=co, k=k, pad=pad, stride=stride, on=on, bs=bs, os_=os_
            ):
                return (
                    p(nl, x),
                    n,
                    c,
                    p(nl, w),
                    co,
                    k,
                    pad,
                    stride,
                    p(nl, b),
                    bs,
                    os_,
                    p(nl, out),
                    on,
                    p(nl, buf),
                    nl.ffi.NULL,
                )

            same(fn, square, (on, on, co), 2 * c * k * k)

        # non-square fast: even channels, even output width (Arm's DSP path computes pixel pairs along x)
        c, co = 2 * int(rng.integers(1, 4)), 2 * int(rng.integers(1, 4))
        h, wd = int(rng.integers(1, 8)), int(rng.integers(1, 9))
        kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        ph, pw = int(rng.integers(0, 2)), int(rng.integers(0, 2))
        sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        kh, kw = min(kh, h + 2 * ph), min(kw, wd + 2 * pw)
        oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
        if ow % 2 == 0:
            x, w, b = q15((h, wd, c), small), q15((co, kh, kw, c), small), q15((co,), small)

            def nonsquare(
                nl,
                out,
                buf,
                x=x,
                w=w,
                b=b,
                h=h,
                wd=wd,
                c=c,
                co=co,
                kh=kh,
                kw=kw,
                ph=ph,
                pw=pw,
                sh=sh,
                sw=sw,
                oh=oh,
                ow=ow,
                bs=bs,
                os_=os_,
            ):
                return (
                    p(nl, x),
                    wd,
                    h,
                    c,
                    p(nl, w),
                    co,
                    kw,
                    kh,
                    pw,
                    ph,
                    sw,
                    sh,
                    p(nl, b),
                    bs,
                    os_,
                    p(nl, out),
                    ow,
                    oh,
                    p(nl, buf),
                    nl.ffi.NULL,
                )

            same("arm_convolve_HWC_q15_fast_nonsquare", nonsquare, (oh, ow, co), 2 * c * kh * kw)

        dim, rows = int(rng.integers(1, 40)), int(rng.integers(1, 12))
        v, m, b = q15((dim,), small), q15((rows, dim), small), q15((rows,), small)

        def dense(nl, out, buf, v=v, m=m, b=b, dim=dim, rows=rows, bs=bs, os_=os_):
            return p(nl, v), p(nl, m), dim, rows, bs, os_, p(nl, b), p(nl, out), p(nl, buf)

        same("arm_fully_connected_q15", dense, (rows,), dim)
        # the same sizes through the other three: q15 weights in Arm's q15x4 order, q7 weights and bias
        # ([rows][dim], and in the q7x4 order); rows 4 or more take their groups of four
        dim, rows = int(rng.integers(1, 40)), int(rng.integers(1, 14))
        v, m, b = q15((dim,), small), q15((rows, dim), small), q15((rows,), small)
        m8, b8 = q7((rows, dim), small), q7((rows,), small)
        for fn, weights, bias in (
            ("arm_fully_connected_q15_opt", interleave(m, "q15x4"), b),
            ("arm_fully_connected_mat_q7_vec_q15", m8.reshape(-1).copy(), b8),
            ("arm_fully_connected_mat_q7_vec_q15_opt", interleave(m8, "q7x4"), b8),
        ):

            def dense_other(nl, out, buf, v=v, w=weights, b=bias, dim=dim, rows=rows, bs=bs, os_=os_):
                kind = "int16_t[]" if w.dtype == np.int16 else "int8_t[]"
                ffi = nl.ffi
                wp, bp = ffi.from_buffer(kind, w), ffi.from_buffer(kind, b)
                return p(nl, v), wp, dim, rows, bs, os_, bp, p(nl, out), p(nl, buf)

            same(fn, dense_other, (rows + 2,), dim)

        data = q15((int(rng.integers(1, 50)),))
        outs = []
        for nl in (tree, ours):
            d = data.copy()
            nl.lib.arm_relu_q15(p(nl, d), d.size)
            outs.append(d)
        np.testing.assert_array_equal(outs[0], outs[1], err_msg="arm_relu_q15")
        calls["arm_relu_q15"] += 1

        dim = int(rng.integers(1, 40))
        v = q15((dim,), small)
        outs = []
        for nl in (tree, ours):
            out = np.full(dim, SENTINEL, np.int16)
            nl.lib.arm_softmax_q15(p(nl, v), dim, p(nl, out))
            outs.append(out)
        np.testing.assert_array_equal(outs[0], outs[1], err_msg="arm_softmax_q15")
        calls["arm_softmax_q15"] += 1
    # the int32 accumulator wrapping in every fully-connected function: -32768 inputs, full-scale weights (2^30
    # per q15 product, 2^22 per q7 one: 777 columns pass 2^31), groups of four rows, leftovers, odd last column
    rows = 7
    for fn, dim, lo in (
        ("arm_fully_connected_q15", 9, -32768),
        ("arm_fully_connected_q15_opt", 9, -32768),
        ("arm_fully_connected_mat_q7_vec_q15", 777, -128),
        ("arm_fully_connected_mat_q7_vec_q15_opt", 777, -128),
    ):
        dtype = np.int16 if lo == -32768 else np.int8
        v, m, b = np.full(dim, -32768, np.int16), np.full((rows, dim), lo, dtype), np.arange(rows, dtype=dtype)
        m[1, 0] = m[4, dim - 1] = m[6, 2] = 3
        assert ((m.astype(np.int64) @ v.astype(np.int64)) >= 2**31).all()
        stored = interleave(m, "q7x4" if fn.endswith("q7_vec_q15_opt") else "q15x4") if fn.endswith("_opt") else m
        stored = stored.reshape(-1).copy()

        def wrapping(nl, out, buf, v=v, w=stored, b=b, dim=dim, bs=bs):
            kind = "int16_t[]" if w.dtype == np.int16 else "int8_t[]"
            wp, bp = nl.ffi.from_buffer(kind, w), nl.ffi.from_buffer(kind, b)
            return p(nl, v), wp, dim, rows, bs, 8, bp, p(nl, out), p(nl, buf)

        same(fn, wrapping, (rows + 2,), dim)
    if not saturated_index:  # 5.8.0 on: every q15 input, every legal int_width, both functions
        every = np.arange(-32768, 32768, dtype=np.int16)
        for kind in (0, 1):  # ARM_SIGMOID, ARM_TANH
            for width in range(4):
                outs = []
                for nl in (tree, ours):
                    d = every.copy()
                    for half in (d[:32768], d[32768:]):  # its size is a uint16_t
                        nl.lib.arm_nn_activations_direct_q15(p(nl, half), half.size, width, kind)
                    outs.append(d)
                np.testing.assert_array_equal(outs[0], outs[1], err_msg=f"activation {kind} int_width {width}")
                calls["arm_nn_activations_direct_q15"] += 1
    assert lib is not ref
    return calls


def _activation_index_saturates(tree, ours) -> bool:
    """Whether the tree's arm_nn_activations_direct_q15 is 5.4.0-5.7.0's, which saturates its table index at 0
    (kernels.py's condition): every negative input then differs from ours, every positive one below the top bin
    is equal. Asserts it is exactly one of the two behaviours."""
    x = np.arange(-32768, 32768, dtype=np.int16)
    outs = []
    for nl in (tree, ours):
        d = x.copy()
        for half in (d[:32768], d[32768:]):  # its size is a uint16_t
            nl.lib.arm_nn_activations_direct_q15(nl.ffi.from_buffer("int16_t[]", half), half.size, 0, 0)
        outs.append(d)
    differ = outs[0] != outs[1]
    if not differ.any():
        return False
    assert differ[x < 0].all() and not differ[(x >= 0) & (x < 127 << 11)].any(), "neither 5.8's nor 5.4-5.7's"
    return True


@pytest.mark.parametrize("tree_root", _real_trees())
def test_real_cmsis_tree_matches_the_bundled_kernels(tree_root):
    """Arm's tree, plain and DSP paths, both roundings, bit for bit against the bundled kernels."""
    for kernels in ("plain", "dsp"):
        for rounding in ("truncate", "round"):
            tree = native_lib.load(kernels, rounding, cmsis_root=str(tree_root))
            assert tree.info == f"kernels={tree_root.resolve()}; path={kernels}; rounding={rounding}"
            assert tree.missing_functions == ()
            shifts = [0, 1, 8, 12, 16, 20, 31]
            if rounding == "round" and _round_of_zero_is_undefined(tree_root):
                shifts.remove(0)
            if rounding == "round" and _round_of_31_overflows(tree_root):
                shifts.remove(31)  # kernels.py's condition; what the tree computes there is pinned below
            ours = native_lib.load(kernels, rounding)
            saturated = _activation_index_saturates(tree, ours)
            version = tree_root.parent.name
            if re.fullmatch(r"\d+\.\d+\.\d+", version):  # the contract's claim: 5.4.0-5.7.0 saturate it
                assert saturated == (release(version) < release("5.8.0")), version
            calls = _compare_kernels(tree, ours, rounding, np.random.default_rng(11), shifts, saturated)
            if rounding == "round":  # NN_ROUND(31) of an all-zero dense row: +2^30 >> 31 = 0, or -2^30 >> 31 = -1
                overflows = _round_of_31_overflows(tree_root)
                if re.fullmatch(r"\d+\.\d+\.\d+", version):  # the contract's claim: from 5.9.0 on
                    assert overflows == (release(version) >= release("5.9.0")), version
                zeros = np.zeros(2, np.int16)
                for nl, want in ((tree, -1 if overflows else 0), (ours, 0)):
                    out = np.full(1, SENTINEL, np.int16)
                    nl.lib.arm_fully_connected_q15(
                        p(nl, zeros), p(nl, zeros), 2, 1, 0, 31, p(nl, zeros[:1]), p(nl, out), p(nl, zeros)
                    )
                    assert int(out[0]) == want, (version, nl.info, int(out[0]))
            assert all(v for fn, v in calls.items() if not (saturated and fn == "arm_nn_activations_direct_q15")), calls
    # and the dsp build runs Arm's ARM_MATH_DSP path: with an odd output width it computes pixel pairs
    # across rows and never writes the last pixel (CMSIS_API.md), where its plain path is right
    x, w, b = np.arange(12, dtype=np.int16).reshape(2, 3, 2), np.ones((2, 1, 1, 2), np.int16), np.zeros(2, np.int16)
    plain = fast_nonsquare(native_lib.load("plain", "truncate", str(tree_root)), x, w, b, 0, 0, (0, 0), (1, 1))
    dsp = fast_nonsquare(native_lib.load("dsp", "truncate", str(tree_root)), x, w, b, 0, 0, (0, 0), (1, 1))
    assert plain[1][-1, -1].tolist() == [21, 21]
    assert dsp[1][-1, -1].tolist() == [SENTINEL, SENTINEL]
