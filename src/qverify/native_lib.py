"""Load qverify's compiled native kernels (cffi API-mode modules built by build.py).

    >>> from qverify import native_lib
    >>> nl = native_lib.load("dsp", "truncate")
    >>> nl.info
    'kernels=bundled; path=dsp; rounding=truncate'

``load(kernels, rounding)`` imports the prebuilt ``qverify._native_<kernels>_<rounding>``
(compiled when the package is installed).  ``load(..., cmsis_root=...)`` compiles the
``arm_*`` kernels from a firmware's CMSIS tree (with qverify's ``qv_*`` kernels
and runner) into a cache directory and imports that; only ``kernels="plain"``
is possible for an external tree on the host (see qverify.build, which holds the C
sources and the cffi build).

cffi releases the GIL during calls, so several threads may call ``qv_run`` at
once, each with its own scratch and output arrays.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import shutil
import sysconfig
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qverify import build
from qverify.errors import NativeBuildError

KERNELS = build.KERNELS
ROUNDINGS = build.ROUNDINGS

_lock = threading.RLock()
_loaded: dict[tuple, "NativeLib"] = {}


def _fail(message: str, cause: BaseException | None = None) -> Exception:
    err = NativeBuildError(message)
    if cause is not None:
        err.__cause__ = cause
    return err


SIMD_LEVELS = {0: "none", 1: "avx2", 2: "avx512-vnni"}


@dataclass(frozen=True)
class NativeLib:
    """One loaded variant: ``ffi`` / ``lib`` are the cffi objects, ``info`` is qv_build_info()."""

    ffi: Any
    lib: Any
    info: str
    kernels: str
    rounding: str
    cmsis_root: str | None
    module_name: str
    source_digest: str

    def kernel_name(self, kernel_id: int) -> str:
        """Name of the C function behind a QV_KERNEL_* id (as reported in kernel_used)."""
        return self.ffi.string(self.lib.qv_kernel_name(int(kernel_id))).decode()

    @property
    def simd(self) -> str:
        """The instruction set qv_host_conv_q15 uses on this CPU: 'avx512-vnni', 'avx2' or 'none'."""
        return SIMD_LEVELS[int(self.lib.qv_host_simd_level())]


def _validate(kernels: str, rounding: str) -> None:
    if kernels not in KERNELS:
        raise _fail(
            f"native kernels must be one of {', '.join(KERNELS)} (the ARM_MATH_DSP SIMD path, the "
            f"plain-C path, or plain with conv on the host's SIMD units), not {kernels!r}"
        )
    if rounding not in ROUNDINGS:
        raise _fail(
            f"native rounding must be one of {', '.join(ROUNDINGS)} (a firmware built with or without "
            f"ARM_NN_TRUNCATE), not {rounding!r}"
        )


def _wrap(module, kernels: str, rounding: str, cmsis_root: str | None) -> NativeLib:
    ffi, lib = module.ffi, module.lib
    return NativeLib(
        ffi=ffi,
        lib=lib,
        info=ffi.string(lib.qv_build_info()).decode(),
        kernels=kernels,
        rounding=rounding,
        cmsis_root=cmsis_root,
        module_name=module.__name__,
        source_digest=ffi.string(lib.qv_source_digest()).decode(),
    )


def _load_prebuilt(kernels: str, rounding: str) -> NativeLib:
    name = f"qverify._native_{kernels}_{rounding}"
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise _fail(
            f"the compiled native module {name} is missing or cannot be imported ({exc}); "
            "reinstall qverify (`pip install .`, or `pip install -e .` in a checkout; needs a C compiler)",
            exc,
        ) from exc
    nl = _wrap(module, kernels, rounding, None)
    # refuse a module compiled from other sources than the package's C sources now (an editable
    # checkout whose C was edited after `pip install -e .`)
    root = None
    prefix = "kernels="
    first = nl.info.split(";")[0].strip()
    if first.startswith(prefix) and first[len(prefix):] != "bundled":
        root = first[len(prefix):]
    try:
        current = build.source_digest(root)
    except Exception:  # the tree it was built from is gone: cannot tell
        current = nl.source_digest
    if current != nl.source_digest:
        raise _fail(
            f"the compiled native module {name} is stale: it was built from other C sources "
            f"than those in {build.ROOT} now (digest {nl.source_digest}, sources {current}); "
            "rebuild it: `pip install -e .` in the checkout"
        )
    return nl


def cache_dir() -> Path:
    """Where modules built against a CMSIS tree are kept (QVERIFY_CACHE_DIR overrides)."""
    env = os.environ.get("QVERIFY_CACHE_DIR")
    if env:
        return Path(env).expanduser() / "native"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "qverify" / "native"


def _import_file(module_name: str, path: Path):
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load_external(kernels: str, rounding: str, cmsis_root: str) -> NativeLib:
    root = Path(cmsis_root).expanduser().resolve()
    try:
        digest = build.source_digest(root)
        build.check_tree_kernels(kernels, root)
    except build.CmsisTreeError as exc:
        raise _fail(str(exc), exc) from exc
    ext_suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    key = hashlib.sha256(f"{root}\n{digest}\n{kernels}_{rounding}\n{ext_suffix}".encode()).hexdigest()[:16]
    module_name = f"_qverify_native_{kernels}_{rounding}_{key}"
    folder = cache_dir() / key
    target = folder / (module_name + ext_suffix)

    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="build-", dir=folder))
        try:
            try:
                ffi = build.make_builder("plain", rounding, str(root), module_name, work_dir=tmp / "wrappers")
                built = Path(ffi.compile(tmpdir=str(tmp / "out"), verbose=False))
            except build.CmsisTreeError as exc:
                raise _fail(str(exc), exc) from exc
            except Exception as exc:  # compiler / linker errors (details on stderr)
                raise _fail(
                    f"compiling the CMSIS-NN kernels of {root} ({kernels}, {rounding}) failed: {exc}. "
                    "The compiler output above names the file and line.",
                    exc,
                ) from exc
            os.replace(built, target)  # atomic: concurrent builders race harmlessly
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    try:
        module = _import_file(module_name, target)
    except ImportError as exc:
        raise _fail(f"cannot import the module built for {root} at {target}: {exc}", exc) from exc
    return _wrap(module, kernels, rounding, str(root))


def load(kernels: str = "dsp", rounding: str = "truncate", cmsis_root: str | None = None) -> NativeLib:
    """The native kernels of one variant: ``.ffi``, ``.lib``, ``.info``.

    kernels: "dsp" (ARM_MATH_DSP SIMD paths, portable intrinsics), "plain", or "fast" (plain, with
    conv ops on the host's SIMD units: csrc/qv_host_conv.c).
    rounding: "truncate" (ARM_NN_TRUNCATE) or "round" (NN_ROUND added).
    cmsis_root: build the arm_* kernels from this CMSIS tree (cached), else
    use the bundled ones compiled at install time.
    Raises qverify.errors.NativeBuildError when the module cannot be had.
    """
    _validate(kernels, rounding)
    key = (kernels, rounding, str(Path(cmsis_root).expanduser().resolve()) if cmsis_root else None)
    with _lock:
        if key not in _loaded:
            if cmsis_root:
                _loaded[key] = _load_external(kernels, rounding, str(cmsis_root))
            else:
                _loaded[key] = _load_prebuilt(kernels, rounding)
        return _loaded[key]


def available() -> dict[str, str]:
    """Which prebuilt variants import: {"dsp_truncate": info or error message, ...}."""
    out = {}
    for k in KERNELS:
        for r in ROUNDINGS:
            try:
                out[f"{k}_{r}"] = load(k, r).info
            except Exception as exc:  # report, don't raise
                out[f"{k}_{r}"] = f"unavailable: {exc}"
    return out


__all__ = ["KERNELS", "ROUNDINGS", "NativeLib", "available", "cache_dir", "load"]
