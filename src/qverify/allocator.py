"""glibc's malloc told to keep large freed blocks for reuse (qverify.tensorflow_defaults calls this).

TensorFlow on the CPU takes each tensor from malloc. glibc serves a block of 32 MiB or more (a float32
batch of 256 demo frames with 16 channels is 67 MB) with a fresh mmap and returns it with munmap when
the tensor is freed, so every batch page-faults and zero-fills all of its large tensors again. Measured
on the demo (2 cores, 256 samples, best of 6): the float engine's chain 370 ms, the shift model 490 ms;
with large blocks kept, 194 and 363 ms (bench/bench_eval.py shows the whole eval). A batched Keras predict
keeps only its last output, so it gains little (5.35 against 5.19 s over 4,096 samples).

M_MMAP_THRESHOLD and M_TRIM_THRESHOLD of 1 GiB: blocks below it come from the heap and stay there once
freed (up to 1 GiB of free heap is kept, not returned to the system; the next batch reuses it), so the
resident memory is the working set's peak and stays flat. Only glibc on Linux: other C libraries
(macOS, Windows, musl) keep their own defaults. A process whose environment already sets glibc's malloc
(MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, GLIBC_TUNABLES) is left as it is.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

KEEP_BELOW = 1 << 30  # bytes: blocks smaller than this are not mmap'd, and free heap up to this is kept
M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
_USER_SET = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def keep_large_blocks() -> bool:
    """Set glibc's two thresholds to KEEP_BELOW; True when they were set (False: not glibc, or left to the user)."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    if any(name in os.environ for name in _USER_SET):
        return False
    libc = ctypes.CDLL(None)
    mallopt = libc.mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; a glibc that refuses a value keeps its default, which is only slower
    return bool(mallopt(M_MMAP_THRESHOLD, KEEP_BELOW)) & bool(mallopt(M_TRIM_THRESHOLD, KEEP_BELOW))
