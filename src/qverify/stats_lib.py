"""The compiled statistics behind qverify.metrics: qverify._stats (csrc/qv_stats.c, built by qverify.build).

    summary(f, q, frac, qmin, qmax)   one C pass over a chunk: Raw (counts, sums, extremes, histogram)
    float_range(f, frac, qmin, qmax)  (f_min, f_max, would-saturate count) of float values
    equal_samples(a, b)               per sample (first axis): all values equal (memcmp)
    simd(allow)                       allow or forbid the AVX2 + FMA build of the C loops (tests run both)

Arrays are made contiguous (and f float32, q int16) here, so the C sees flat buffers; the calls release
the GIL. The module is checked once, at first use, against the C sources now (build.stats_digest): a
module built from other sources is refused as stale, as the kernels are (qverify.native_lib).
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from qverify import build
from qverify.errors import NativeBuildError

_lock = threading.Lock()
_loaded: list[tuple[Any, Any]] = []


def _module() -> tuple[Any, Any]:
    """(ffi, lib) of qverify._stats, imported and checked once."""
    with _lock:
        if not _loaded:
            try:
                module = importlib.import_module(build.STATS_MODULE)
            except ImportError as exc:
                raise NativeBuildError(
                    f"the compiled statistics module {build.STATS_MODULE} is missing or cannot be imported ({exc}); "
                    "reinstall qverify (`pip install .`, or `pip install -e .` in a checkout; needs a C compiler)"
                ) from exc
            ffi, lib = module.ffi, module.lib
            built, current = ffi.string(lib.qv_stats_digest()).decode(), build.stats_digest()
            if built != current:
                raise NativeBuildError(
                    f"the compiled statistics module {build.STATS_MODULE} is stale: it was built from other C "
                    f"sources than those in {build.CSRC} now (digest {built}, sources {current}); rebuild it: "
                    "`pip install -e .` in the checkout (or `python -m qverify.build`)"
                )
            lib.qv_stats_simd(1)  # decided here, before any worker thread calls in
            _loaded.append((ffi, lib))
        return _loaded[0]


def simd(allow: bool) -> bool:
    """Let the C loops use their AVX2 + FMA build where the CPU has both (the default), or not; returns whether they
    do. The results are the same either way."""
    _, lib = _module()
    return bool(lib.qv_stats_simd(1 if allow else 0))


@dataclass(frozen=True)
class Raw:
    """What qv_summarize returns for one chunk (see csrc/qv_stats.h): d = f·2^frac - q in float32."""

    count: int
    saturating: int
    sum_f2: float
    sum_dd: float
    sum_df: float
    d_abs_max: float  # NaN when some f is NaN
    f_min: float
    f_max: float
    q_min: int  # 0 when count is 0
    q_max: int
    hist: np.ndarray  # int64, QV_HIST_BINS: the error -d in LSB, rounded, -QV_ERR_BINS-1 .. QV_ERR_BINS+1


def _floats(f) -> np.ndarray:
    return np.ascontiguousarray(f, dtype=np.float32).reshape(-1)


def _ints(q) -> np.ndarray:
    q = np.asarray(q)
    if q.dtype == np.int8:  # the same values, and the same float32 d (an int8 or int16 fits float32 exactly)
        q = q.astype(np.int16)
    elif q.dtype != np.int16:
        raise TypeError(f"integer outputs must be int16 (or int8), not {q.dtype}")
    return np.ascontiguousarray(q).reshape(-1)


def summary(f, q, frac: int, qmin: int, qmax: int) -> Raw:
    """One pass of qv_summarize over float outputs f and integer outputs q (the same number of values)."""
    ffi, lib = _module()
    f, q = _floats(f), _ints(q)
    if f.size != q.size:
        raise ValueError(f"float and integer outputs differ in size: {f.size} and {q.size} values")
    out = ffi.new("qv_summary_t *")
    lib.qv_summarize(ffi.from_buffer("float[]", f), ffi.from_buffer("int16_t[]", q), f.size, frac, qmin, qmax, out)
    hist = np.frombuffer(ffi.buffer(out.hist), dtype=np.int64).copy()
    return Raw(
        int(out.count),
        int(out.saturating),
        float(out.sum_f2),
        float(out.sum_dd),
        float(out.sum_df),
        float(out.d_abs_max),
        float(out.f_min),
        float(out.f_max),
        int(out.q_min),
        int(out.q_max),
        hist,
    )


def float_range(f, frac: int, qmin: int, qmax: int) -> tuple[float, float, int]:
    """(f_min, f_max, values that saturate at frac) by qv_float_range: (inf, -inf, 0) for no values; a NaN
    among f shows as a NaN f_min or f_max (which one depends on its sign bit)."""
    ffi, lib = _module()
    f = _floats(f)
    out = ffi.new("qv_range_t *")
    lib.qv_float_range(ffi.from_buffer("float[]", f), f.size, frac, qmin, qmax, out)
    return float(out.f_min), float(out.f_max), int(out.saturating)


def equal_samples(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per sample (index of the first axis): whether all of its values are equal in a and b (integer arrays
    of one shape; of different integer dtypes they are compared in a common one)."""
    ffi, lib = _module()
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"outputs differ in shape: {a.shape} and {b.shape}")
    if a.ndim == 0:
        raise ValueError("outputs need a first axis of samples")
    dtype = np.result_type(a, b)
    if not np.issubdtype(dtype, np.integer):
        raise TypeError(f"integer outputs are compared byte for byte, not {dtype}")
    a, b = np.ascontiguousarray(a, dtype=dtype), np.ascontiguousarray(b, dtype=dtype)
    out = np.empty(len(a), np.uint8)
    per_sample = a.size // len(a) * dtype.itemsize if len(a) else 0
    lib.qv_equal_samples(ffi.from_buffer(a), ffi.from_buffer(b), len(a), per_sample, ffi.from_buffer("uint8_t[]", out))
    return out.view(bool)
