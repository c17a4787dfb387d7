"""The native kernel paths the tests hold to the numeric contract.

"dsp" and "plain" are the two paths of the cmsis/ kernels; "fast" is the plain build with conv ops
on the host's SIMD units (csrc/qv_host_conv.c), tested at every SIMD level this CPU has:
"fast@avx512-vnni" and "fast@avx2" on the CI machine. A CPU with neither runs "fast" as the plain
kernels, and then only "fast" is listed.
"""

from __future__ import annotations

from contextlib import contextmanager

from qverify import native_lib
from qverify.engines.native import NativeEngine

LEVELS = {name: level for level, name in native_lib.SIMD_LEVELS.items() if level}  # avx2: 1, avx512-vnni: 2


def _fast_libs():
    return [native_lib.load("fast", rounding).lib for rounding in native_lib.ROUNDINGS]


def simd_levels() -> list[str]:
    """The host SIMD levels of this CPU that the fast build can use, widest first."""
    top = int(_fast_libs()[0].qv_host_simd_level())
    return [name for name, level in sorted(LEVELS.items(), key=lambda kv: -kv[1]) if level <= top]


@contextmanager
def simd_limit(level: str | None):
    """Run the fast build at `level` (None: the widest the CPU has) inside the block."""
    libs = _fast_libs()
    for lib in libs:
        lib.qv_host_simd_limit(LEVELS[level] if level else max(LEVELS.values()))
    try:
        yield
    finally:
        for lib in libs:
            lib.qv_host_simd_limit(max(LEVELS.values()))


NATIVE_PATHS = ("dsp", "plain", *([f"fast@{level}" for level in simd_levels()] or ["fast"]))


class FastAt(NativeEngine):
    """The fast build pinned to one SIMD level while it runs."""

    def __init__(self, plan, level: str, **kwargs):
        super().__init__(plan, kernels="fast", **kwargs)
        self.level = level

    def _call(self, *args):
        with simd_limit(self.level):
            return super()._call(*args)


def native_engine(plan, path: str, **kwargs) -> NativeEngine:
    """A single-threaded native engine for one of NATIVE_PATHS."""
    kernels, _, level = path.partition("@")
    kwargs.setdefault("threads", 1)
    if level:
        return FastAt(plan, level, **kwargs)
    return NativeEngine(plan, kernels=kernels, **kwargs)
