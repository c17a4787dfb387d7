"""The cffi (API mode) build of qverify's native kernels, and where their C sources are.

This module is the one place that knows the C sources: the kernels
(``cmsis/``), the runner and host glue (``csrc/``) and the target firmware
(``firmware/``), all shipped inside the package.  ``qverify.native_lib``,
the gate and the target builder use it through its public names
(``make_builder``, ``find_cmsis_nn``, ``source_digest``, ``CMSIS_INCLUDE``,
``CSRC``, ``FIRMWARE``, ...).  It imports nothing of qverify, so setup.py
can hand it to cffi by path at build time, when the package is not yet
importable.

Six extension modules are built from the same C sources:

    qverify._native_dsp_truncate    -DARM_MATH_DSP -DARM_NN_TRUNCATE
    qverify._native_dsp_round       -DARM_MATH_DSP
    qverify._native_plain_truncate  -DARM_NN_TRUNCATE
    qverify._native_plain_round
    qverify._native_fast_truncate   -DQV_HOST_SIMD -DARM_NN_TRUNCATE
    qverify._native_fast_round      -DQV_HOST_SIMD

"dsp" compiles the kernels' ARM_MATH_DSP (SIMD) paths with the portable
intrinsics of cmsis/Include/qv_intrinsics.h; "plain" their plain-C paths.
"fast" is "plain" with the runner sending conv ops to the host SIMD
convolution of csrc/qv_host_conv.c (AVX-512 VNNI or AVX2, chosen at run
time; the plain kernels where the CPU has neither, or is not x86): the fast
path for whole data sets, never built for a device.
"truncate" defines ARM_NN_TRUNCATE (NN_ROUND = 0), "round" adds
NN_ROUND(out_shift) = 2^(out_shift-1) to the accumulator.

setup.py hands the module-level builders ``dsp_truncate`` ... ``fast_round``
to cffi (``cffi_modules=["src/qverify/build.py:dsp_truncate", ...]``), so
``pip install .`` (or ``-e .``, or ``pip wheel .``) compiles all six.
``make_builder()`` is the general entry point, also used by
``qverify.native_lib`` to build against a firmware's CMSIS tree into a cache
directory.

``QVERIFY_CMSIS_ROOT=/path/to/CMSIS`` (or ``make_builder(cmsis_root=...)``)
builds the five ``arm_*`` functions from that tree's CMSIS-NN sources instead
of cmsis/Source; the ``qv_*`` kernels and the runner always come from this
project.  A CMSIS tree is compiled in its host mode (``__GNUC_PYTHON__``,
``ARM_MATH_DSP`` undefined), so only the plain variants can be built from
it: ``make_builder("dsp" or "fast", cmsis_root=...)`` raises ``CmsisTreeError``,
and the setup builders build the dsp and fast variants from the bundled kernels (with
a warning; ``qv_build_info()`` then says ``kernels=bundled``).

``python -m qverify.build`` (or ``python src/qverify/build.py``) rebuilds the
six modules into the package folder without pip; ``python -m qverify.build
--sources`` prints the folder holding cmsis/, csrc/ and firmware/ (for a
firmware Makefile).
"""

from __future__ import annotations

import hashlib
import os
import sys
import warnings
from pathlib import Path

import cffi

# the package folder: the C sources are package data beside this file
ROOT = Path(__file__).resolve().parent
CMSIS_DIR = ROOT / "cmsis"
CMSIS_INCLUDE = CMSIS_DIR / "Include"
CMSIS_SOURCE = CMSIS_DIR / "Source"
CSRC = ROOT / "csrc"
FIRMWARE = ROOT / "firmware"
CDEF_FILE = CSRC / "qverify_cdef.h"

ARM_FUNCTIONS = (
    "arm_convolve_HWC_q15_basic",
    "arm_convolve_HWC_q15_fast",
    "arm_convolve_HWC_q15_fast_nonsquare",
    "arm_fully_connected_q15",
    "arm_relu_q15",
)
QV_FUNCTIONS = (
    "qv_convolve_HWC_q15_basic_nonsquare",
    "qv_maxpool_q15_HWC_nonsquare",
    "qv_avepool_q15_HWC_nonsquare",
    "qv_global_avepool_q15_HWC",
)
# headers of ours that the qv_ kernels / runner need when Arm's headers are used
QV_HEADERS = ("qv_intrinsics.h", "qv_nnfunctions.h", "qv_support.h")
RUNNER_SOURCE = CSRC / "qv_runner.c"
HOST_SOURCES = (CSRC / "qv_host_conv.c",)

KERNELS = ("dsp", "plain", "fast")
ROUNDINGS = ("truncate", "round")
VARIANTS = {f"{k}_{r}": (k, r) for k in KERNELS for r in ROUNDINGS}
# -fwrapv: int32 sums wrap modulo 2^32, as SMLAD does on the core.  MSVC has no such flag; its
# optimiser does not exploit signed overflow, and its C11 mode accepts the C99 sources.
COMPILE_ARGS = ["-O3", "-fwrapv", "-std=c99"]
MSVC_COMPILE_ARGS = ["/O2", "/std:c11"]


def compile_args() -> list[str]:
    """Compiler flags for the host build (GCC and Clang everywhere, MSVC on Windows)."""
    return list(MSVC_COMPILE_ARGS if sys.platform == "win32" and not os.environ.get("CC") else COMPILE_ARGS)


class CmsisTreeError(ValueError):
    """A CMSIS tree given as QVERIFY_CMSIS_ROOT / cmsis_root cannot be used."""


def variant_name(kernels: str, rounding: str) -> str:
    """'dsp_truncate', 'plain_round', ..."""
    return f"{kernels}_{rounding}"


def default_module_name(kernels: str, rounding: str) -> str:
    return f"qverify._native_{variant_name(kernels, rounding)}"


def c_string(text: str) -> str:
    """A C string literal for a -D macro value."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def find_cmsis_nn(cmsis_root: str | os.PathLike) -> dict:
    """Locate the legacy q15 CMSIS-NN sources and include dirs under a CMSIS tree.

    Accepts a root pointing at CMSIS_5, CMSIS_5/CMSIS or CMSIS/NN (any folder
    with an ``NN/Source`` below it, or an NN folder itself).  Returns
    ``{"root", "nn_dir", "sources": {function: Path}, "include_dirs": [Path]}``.
    Raises CmsisTreeError naming the root and any missing function.
    """
    root = Path(cmsis_root).expanduser().resolve()
    if not root.is_dir():
        raise CmsisTreeError(f"CMSIS root {root} is not a directory")

    def is_nn(d: Path) -> bool:
        return (d / "Source").is_dir() and (d / "Include").is_dir()

    nn_dir = None
    for cand in (root, root / "NN", root / "CMSIS" / "NN"):
        if cand.is_dir() and is_nn(cand) and (cand.name == "NN" or (cand / "Include" / "arm_nnfunctions.h").is_file()):
            nn_dir = cand
            break
    if nn_dir is None:
        found = sorted(
            (p.parent.parent for p in root.rglob("arm_nnfunctions.h") if p.parent.name == "Include"),
            key=lambda p: (len(p.parts), str(p)),
        )
        found = [d for d in found if is_nn(d)]
        if found:
            nn_dir = found[0]
    if nn_dir is None:
        raise CmsisTreeError(
            f"no CMSIS-NN sources under CMSIS root {root}: expected NN/Source and NN/Include "
            "(give the CMSIS_5, CMSIS_5/CMSIS or CMSIS/NN folder)"
        )

    sources: dict[str, Path] = {}
    missing = []
    for fn in ARM_FUNCTIONS:
        hits = sorted(nn_dir.joinpath("Source").rglob(f"{fn}.c"), key=lambda p: (len(p.parts), str(p)))
        if hits:
            sources[fn] = hits[0]
        else:
            missing.append(fn)
    if missing:
        raise CmsisTreeError(
            f"CMSIS root {root} lacks the legacy q15 CMSIS-NN function(s) {', '.join(missing)} "
            f"(searched {nn_dir / 'Source'}/**/<function>.c; they exist in CMSIS_5 5.3-5.9)"
        )

    cmsis_dir = nn_dir.parent
    include_dirs = [nn_dir / "Include"]
    for sub in ("DSP/Include", "DSP/PrivateInclude", "Core/Include"):
        d = cmsis_dir / sub
        if d.is_dir():
            include_dirs.append(d)
    return {"root": root, "nn_dir": nn_dir, "sources": sources, "include_dirs": include_dirs}


def _bundled_arm_sources() -> dict:
    return {fn: CMSIS_SOURCE / f"{fn}.c" for fn in ARM_FUNCTIONS}


def _our_sources() -> list[Path]:
    """Every file of this project that goes into a native module."""
    files = [Path(__file__).resolve(), CDEF_FILE, RUNNER_SOURCE, CSRC / "qv_runner.h", *HOST_SOURCES]
    files += [src.with_suffix(".h") for src in HOST_SOURCES]
    files += sorted(CMSIS_INCLUDE.glob("*.h"))
    files += [CMSIS_SOURCE / f"{fn}.c" for fn in ARM_FUNCTIONS + QV_FUNCTIONS]
    return sorted(set(files))


def source_files(cmsis_root: str | os.PathLike | None = None) -> list[Path]:
    """All files a module for this root depends on (ours + the tree's)."""
    files = list(_our_sources())
    if cmsis_root is not None:
        tree = find_cmsis_nn(cmsis_root)
        files.extend(tree["sources"].values())
        for d in tree["include_dirs"]:
            files.extend(sorted(d.glob("*.h")))
    return files


def source_digest(cmsis_root: str | os.PathLike | None = None) -> str:
    """Content hash of the sources a module is built from (16 hex digits)."""
    h = hashlib.sha256()
    h.update(f"root={Path(cmsis_root).expanduser().resolve() if cmsis_root else 'bundled'}\n".encode())
    for f in source_files(cmsis_root):
        try:
            rel = f.relative_to(ROOT).as_posix()
        except ValueError:
            rel = f.as_posix()
        h.update(rel.encode() + b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def check_tree_kernels(kernels: str, cmsis_root: str | os.PathLike) -> None:
    """Raise CmsisTreeError unless `kernels` can be built from a CMSIS tree on the host (only "plain")."""
    if kernels == "dsp":
        raise CmsisTreeError(
            f"kernels='dsp' cannot be built from the CMSIS tree {cmsis_root} on the host: its headers take the "
            "SIMD intrinsics from the Cortex-M core headers and the host mode (__GNUC_PYTHON__) needs "
            "ARM_MATH_DSP undefined. Use kernels='plain' for an external tree (the DSP path runs on the core)."
        )
    if kernels == "fast":
        raise CmsisTreeError(
            f"kernels='fast' runs qverify's own host convolution, not the kernels of the CMSIS tree {cmsis_root}; "
            "use kernels='plain' for an external tree."
        )


def make_builder(
    kernels: str,
    rounding: str,
    cmsis_root: str | None = None,
    module_name: str | None = None,
    *,
    work_dir: str | os.PathLike,
) -> cffi.FFI:
    """An FFI with set_source() done for one variant.

    kernels: "dsp" (the ARM_MATH_DSP paths, portable intrinsics on the host), "plain", or "fast"
        (plain, conv on the host's SIMD units).
    rounding: "truncate" (-DARM_NN_TRUNCATE) or "round".
    cmsis_root: build the arm_* functions from this CMSIS tree (plain only).
    module_name: default ``qverify._native_<dsp|plain|fast>_<rounding>``.
    work_dir: where the per-variant wrapper sources go (kept until the module is compiled).
    """
    if kernels not in KERNELS:
        raise ValueError(f"kernels must be one of {KERNELS}, not {kernels!r}")
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, not {rounding!r}")
    dsp = kernels == "dsp"
    if module_name is None:
        module_name = default_module_name(kernels, rounding)
    work = (Path(work_dir) / module_name.replace(".", "_")).resolve()

    macros: list[tuple[str, str | None]] = []
    if dsp:
        macros.append(("ARM_MATH_DSP", None))
    if kernels == "fast":
        macros.append(("QV_HOST_SIMD", None))
    if rounding == "truncate":
        macros.append(("ARM_NN_TRUNCATE", None))

    if cmsis_root:
        check_tree_kernels(kernels, cmsis_root)
        tree = find_cmsis_nn(cmsis_root)
        arm_sources = tree["sources"]
        # only our qv_ headers, so that Arm's arm_*.h are the ones used everywhere
        staging = work / "include"
        for name in QV_HEADERS:
            _write_if_changed(staging / name, (CMSIS_INCLUDE / name).read_text())
        include_dirs = [str(d) for d in tree["include_dirs"]] + [str(staging), str(CSRC)]
        macros += [("__GNUC_PYTHON__", None), ("__RESTRICT", "__restrict")]
        kernels_source = str(tree["root"])
    else:
        arm_sources = _bundled_arm_sources()
        include_dirs = [str(CMSIS_INCLUDE), str(CSRC)]
        kernels_source = "bundled"
    macros.append(("QV_KERNELS_SOURCE", c_string(kernels_source)))
    macros.append(("QV_SOURCE_DIGEST", c_string(source_digest(cmsis_root))))

    # One wrapper per source file in a per-variant folder: the six variants
    # compile the same files with different macros, and this keeps their
    # object files apart in setuptools' shared build_temp.
    real_sources = [arm_sources[fn] for fn in ARM_FUNCTIONS]
    real_sources += [CMSIS_SOURCE / f"{fn}.c" for fn in QV_FUNCTIONS]
    real_sources += [RUNNER_SOURCE, *HOST_SOURCES]
    wrappers = []
    for src in real_sources:
        wrapper = work / "src" / src.name
        _write_if_changed(wrapper, f'/* generated by build.py */\n#include "{src.as_posix()}"\n')
        wrappers.append(str(wrapper))

    ffi = cffi.FFI()
    ffi.cdef(CDEF_FILE.read_text())
    ffi.set_source(
        module_name,
        '#include "arm_nnfunctions.h"\n#include "qv_nnfunctions.h"\n#include "qv_runner.h"\n#include "qv_host_conv.h"\n',
        sources=wrappers,
        include_dirs=include_dirs,
        define_macros=macros,
        extra_compile_args=compile_args(),
        depends=[str(p) for p in source_files(cmsis_root)],
    )
    return ffi


def _setup_builder(kernels: str, rounding: str) -> cffi.FFI:
    """Builder used by setup.py; honours QVERIFY_CMSIS_ROOT (for the plain variants)."""
    root = os.environ.get("QVERIFY_CMSIS_ROOT") or None
    if root and kernels != "plain":
        warnings.warn(
            f"QVERIFY_CMSIS_ROOT={root}: the {kernels} variants cannot be built from a CMSIS tree on the "
            f"host; qverify._native_{variant_name(kernels, rounding)} uses the bundled kernels "
            "(qv_build_info() says kernels=bundled)",
            stacklevel=2,
        )
        root = None
    # setup.py runs in the project folder; setuptools' build/ is where its temporary files go too
    return make_builder(kernels, rounding, root, work_dir=Path.cwd() / "build" / "qverify_native")


def dsp_truncate() -> cffi.FFI:
    return _setup_builder("dsp", "truncate")


def dsp_round() -> cffi.FFI:
    return _setup_builder("dsp", "round")


def plain_truncate() -> cffi.FFI:
    return _setup_builder("plain", "truncate")


def plain_round() -> cffi.FFI:
    return _setup_builder("plain", "round")


def fast_truncate() -> cffi.FFI:
    return _setup_builder("fast", "truncate")


def fast_round() -> cffi.FFI:
    return _setup_builder("fast", "round")


def build_inplace(verbose: bool = False) -> list[Path]:
    """Compile the six modules into the package folder (what `pip install -e .` does)."""
    import shutil
    import tempfile

    built = []
    for name, (kernels, rounding) in VARIANTS.items():
        with tempfile.TemporaryDirectory(prefix="qverify-build-") as tmp:
            ffi = make_builder(kernels, rounding, work_dir=Path(tmp) / "wrappers")
            so = Path(ffi.compile(tmpdir=str(Path(tmp) / "out"), verbose=verbose))
            for old in ROOT.glob(f"_native_{name}.*"):
                if old.suffix in (".so", ".pyd"):
                    old.unlink()  # e.g. an .abi3.so left by pip would shadow or be shadowed
            target = ROOT / so.name
            shutil.copy2(so, target)
            built.append(target)
    return built


if __name__ == "__main__":
    if "--sources" in sys.argv[1:]:  # for a firmware Makefile: where cmsis/ and csrc/ are
        print(ROOT)
    else:
        for path in build_inplace(verbose="-v" in sys.argv[1:]):
            print(path)
