"""What the bench scripts share (they import this from their own folder): the machine a benchmark ran on, for
its report, and the best-of-n timer."""

from __future__ import annotations

import platform
import subprocess
import time


def cpu_model() -> str:
    """The CPU's model name (lscpu), else what platform knows."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or platform.machine()


def timed(fn, repeat: int = 3) -> float:
    """Best wall time of `repeat` runs after one warm-up."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best
