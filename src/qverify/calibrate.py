"""Calibration: per-op float ranges over a data set, and input data checks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qverify.errors import DataError
from qverify.floatops import chain_function
from qverify.graph import Graph


@dataclass
class Ranges:
    """Float min/max of the input and of every op's output over the calibration set."""

    input: tuple[float, float]
    ops: dict[str, tuple[float, float]]
    samples: int


def load_data(path: str | Path) -> np.ndarray:
    """Load a .npy array; a missing or unreadable file is a DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DataError(f"data file {path} is not a readable .npy array: {exc}") from exc


def prepare_input(x: np.ndarray, shapes, what: str = "data") -> np.ndarray:
    """Check data and reshape it to (N, H, W, C) float32.

    Args:
        x: (N, L), (N, L, 1), (N, L, 1, 1) for a 1-D model, or (N, *model input shape).
        shapes: a Graph or QuantPlan (anything with input_shape and model_input_shape).
        what: how to name the data in messages (e.g. the file name).

    Returns:
        float32 array (N, H, W, C).

    Raises:
        DataError: wrong rank/shape, non-float dtype, empty, or NaN/inf (names the first bad sample).
    """
    x = np.asarray(x)
    h, w, c = shapes.input_shape
    accepted = [tuple(shapes.model_input_shape), (h, w, c)]
    if w == 1 and c == 1:
        accepted += [(h,), (h, 1), (h, 1, 1)]
    if x.ndim < 2 or tuple(x.shape[1:]) not in accepted:
        shapes = " or ".join("(N, " + ", ".join(map(str, s)) + ")" for s in dict.fromkeys(accepted))
        raise DataError(f"{what} has shape {x.shape}; expected {shapes}")
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(f"{what} has dtype {x.dtype}; expected real (float) values, not already-quantized integers")
    if len(x) == 0:
        raise DataError(f"{what} is empty (0 samples)")
    finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if not finite.all():
        bad = int(np.argmin(finite))
        raise DataError(f"{what}: sample {bad} contains NaN or inf")
    return np.ascontiguousarray(x.reshape(len(x), h, w, c), dtype=np.float32)


def calibrate(graph: Graph, x: np.ndarray, batch: int = 256) -> Ranges:
    """Measure per-op float output ranges over x (already prepared), batched.

    Conv and dense ranges are taken before any ReLU: the graph splits fused
    ReLUs into their own op, so each op's range is what its kernel writes. The ops run as the
    float engine runs them (floatops.chain_function), each batch's extremes taken in the graph.
    """
    import tensorflow as tf

    ranges = chain_function(graph.ops, graph.input_shape, ranges=True)
    x = np.reshape(x, (len(x), *graph.input_shape))  # prepared data is already (N, H, W, C); (N, features) too
    lo = {op.name: np.inf for op in graph.ops}
    hi = {op.name: -np.inf for op in graph.ops}
    for start in range(0, len(x), batch):
        for op, pair in zip(graph.ops, ranges(tf.constant(x[start : start + batch])), strict=True):
            low, high = pair.numpy().tolist()
            lo[op.name], hi[op.name] = min(lo[op.name], low), max(hi[op.name], high)
    return Ranges((float(x.min()), float(x.max())), {k: (lo[k], hi[k]) for k in lo}, len(x))
