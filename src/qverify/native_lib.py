"""Load qverify's compiled native kernels (cffi API-mode modules built by build.py).

    >>> from qverify import native_lib
    >>> nl = native_lib.load("dsp", "truncate")
    >>> nl.info
    'kernels=bundled; path=dsp; rounding=truncate'

``load(kernels, rounding)`` imports the prebuilt ``qverify._native_<kernels>_<rounding>``
(compiled when the package is installed).  ``load(..., cmsis_root=...)`` compiles the
``arm_*`` kernels from a firmware's CMSIS tree (with qverify's ``qv_*`` kernels
and runner) into a cache directory and imports that: its plain path or, with
``kernels="dsp"``, its ARM_MATH_DSP path on qverify's definitions of the
intrinsics ("fast" is qverify's own conv, never a tree's; see qverify.build,
which holds the C sources and the cffi build).  The cache is keyed by
build_key(): the compiler and its version, every flag and macro, and the
content of every source and header.  A build is published only once it
compiled and imported; a failure is reported in one line (the compiler's
first error), with the full output in the cache folder's build.log.

cffi releases the GIL during calls, so several threads may call ``qv_run`` at
once, each with its own scratch and output arrays.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
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
_loaded: dict[tuple, NativeLib] = {}


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
    missing_functions: tuple[str, ...] = ()  # arm_* functions the tree lacks (their ops fail)

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
        # the cffi module declares only the functions it was built with (build._cdef)
        missing_functions=tuple(fn for fn in build.ARM_FUNCTIONS if not hasattr(lib, fn)),
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
    if first.startswith(prefix) and first[len(prefix) :] != "bundled":
        root = first[len(prefix) :]
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


# what distutils reads from the environment to compile and link an extension
_ENV_FLAGS = ("CC", "CPP", "CFLAGS", "CPPFLAGS", "LDSHARED", "LDFLAGS")


@functools.lru_cache(maxsize=8)
def _compiler_identity(cc: str) -> str:
    exe = shlex.split(cc)[0] if cc.strip() else "cc"
    path = shutil.which(exe) or exe
    try:
        r = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
        version = (r.stdout or r.stderr).strip()
    except (OSError, subprocess.SubprocessError) as exc:
        version = f"does not run: {exc}"
    return f"{path}\n{version}"


def compiler_identity() -> str:
    """The host C compiler cffi uses ($CC, else the one Python was built with): its path and --version output."""
    if sys.platform == "win32" and not os.environ.get("CC"):
        return "msvc"
    return _compiler_identity(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")


def build_key(kernels: str, rounding: str, cmsis_root: str) -> str:
    """Cache key of a module built against a CMSIS tree: the compiler and its version, every flag and macro
    (build.build_spec's and the environment's), and the content of every source and header (the
    QV_SOURCE_DIGEST macro).  Raises build.CmsisTreeError for an unusable tree."""
    root = Path(cmsis_root).expanduser().resolve()
    spec = build.build_spec(kernels, rounding, root)
    parts = [str(root), kernels, rounding, sysconfig.get_config_var("EXT_SUFFIX") or ".so", compiler_identity()]
    parts += [f"{v}={os.environ.get(v, '')}" for v in _ENV_FLAGS]
    parts += [f"{v}={sysconfig.get_config_var(v)}" for v in ("CC", "CFLAGS", "CCSHARED", "LDSHARED")]
    parts += [
        repr(spec["macros"]),
        repr(spec["extra_compile_args"]),
        repr(spec["include_dirs"]),
        repr([str(p) for p in spec["sources"]]),
        repr(sorted(spec["staged"].items())),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


# Run in a child process so that the compiler's output can be captured (and reported by its first
# error line), and so that a module is published only once it imports (undefined symbols show only then).
_BUILD_SCRIPT = r"""
import importlib.util, json, sys
args = json.loads(sys.argv[1])
spec = importlib.util.spec_from_file_location("_qverify_build", args["build_py"])
build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build)
ffi = build.make_builder(args["kernels"], args["rounding"], args["root"], args["module"],
                         work_dir=args["tmp"] + "/wrappers")
so = ffi.compile(tmpdir=args["tmp"] + "/out", verbose=True)
spec = importlib.util.spec_from_file_location(args["module"], so)
try:
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
except ImportError as exc:
    print("qverify-import-error: " + str(exc).replace("\n", " "), file=sys.stderr)
    sys.exit(3)
print("qverify-built: " + so)
"""
_ERROR_LINE = re.compile(r"^.*\berror( [A-Z]+\d+)?:.*$", re.MULTILINE)


def first_error_line(output: str) -> str:
    """The compiler's first error line (else the output's last line)."""
    m = _ERROR_LINE.search(output)
    if m:
        return m.group(0).strip()
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _build_module(kernels: str, rounding: str, root: Path, module_name: str, folder: Path, target: Path) -> None:
    """Compile one module into `target`, or raise NativeBuildError (nothing is left at `target` then)."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "build.log"
    tmp = Path(tempfile.mkdtemp(prefix="build-", dir=folder))
    try:
        args = {
            "build_py": build.__file__,
            "kernels": kernels,
            "rounding": rounding,
            "root": str(root),
            "module": module_name,
            "tmp": str(tmp),
        }
        r = subprocess.run(
            [sys.executable, "-c", _BUILD_SCRIPT, json.dumps(args)], cwd=tmp, capture_output=True, text=True
        )
        output = f"{r.stdout}\n{r.stderr}"
        built = re.search(r"^qverify-built: (.*)$", r.stdout, re.MULTILINE)
        if r.returncode != 0 or built is None:
            log.write_text(output)
            imp = re.search(r"^qverify-import-error: (.*)$", r.stderr, re.MULTILINE)
            what = f"does not import: {imp.group(1)}" if imp else f"failed: {first_error_line(output)}"
            raise _fail(f"building the CMSIS-NN kernels of {root} ({kernels}, {rounding}) {what} (full output: {log})")
        os.replace(built.group(1).strip(), target)  # atomic: concurrent builders race harmlessly
        log.unlink(missing_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _load_external(kernels: str, rounding: str, cmsis_root: str) -> NativeLib:
    root = Path(cmsis_root).expanduser().resolve()
    try:
        key = build_key(kernels, rounding, str(root))
    except build.CmsisTreeError as exc:
        raise _fail(str(exc), exc) from exc
    module_name = f"_qverify_native_{kernels}_{rounding}_{key}"
    folder = cache_dir() / key
    target = folder / (module_name + (sysconfig.get_config_var("EXT_SUFFIX") or ".so"))
    if target.exists():
        try:
            return _wrap(_import_file(module_name, target), kernels, rounding, str(root))
        except ImportError:  # a broken cached module (truncated, or built by an older qverify): build it again
            target.unlink(missing_ok=True)
    _build_module(kernels, rounding, root, module_name, folder, target)
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
    cmsis_root: build the arm_* kernels from this CMSIS tree (cached; "plain" or "dsp"), else
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


__all__ = ["KERNELS", "ROUNDINGS", "NativeLib", "available", "build_key", "cache_dir", "compiler_identity", "load"]
