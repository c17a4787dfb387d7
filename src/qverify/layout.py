"""CMSIS-NN memory layouts (HWC activations, [c_out][k_h][k_w][c_in] kernels).

The notebook's `moveaxis(w, 2, 0).flatten('F')` gives [c_out][k_w][k_h][c_in]:
right only when k_w == 1. `notebook_conv_order` keeps it for tests that pin
that bug.
"""

from __future__ import annotations

import numpy as np


def conv_to_cmsis(w: np.ndarray) -> np.ndarray:
    """Keras conv kernel (k_h, k_w, c_in, c_out) → flat [c_out][k_h][k_w][c_in]."""
    return np.ascontiguousarray(np.transpose(w, (3, 0, 1, 2))).ravel()


def conv_from_cmsis(flat: np.ndarray, k_h: int, k_w: int, c_in: int, c_out: int) -> np.ndarray:
    """Inverse of conv_to_cmsis: flat CMSIS order → (k_h, k_w, c_in, c_out)."""
    return np.transpose(np.asarray(flat).reshape(c_out, k_h, k_w, c_in), (1, 2, 3, 0))


def conv_index(c_out: int, k_h: int, k_w: int, c_in: int, shape: tuple[int, int, int, int]) -> int:
    """Flat CMSIS index of kernel element (c_out, k_h, k_w, c_in) for a (K_h, K_w, C_in, C_out) kernel."""
    kh, kw, ci, _ = shape
    return ((c_out * kh + k_h) * kw + k_w) * ci + c_in


def dense_to_cmsis(w: np.ndarray) -> np.ndarray:
    """Keras dense kernel (in, out) → flat [out][in]."""
    return np.ascontiguousarray(np.asarray(w).T).ravel()


def dense_from_cmsis(flat: np.ndarray, n_in: int, n_out: int) -> np.ndarray:
    """Inverse of dense_to_cmsis."""
    return np.asarray(flat).reshape(n_out, n_in).T


def notebook_conv_order(w: np.ndarray) -> np.ndarray:
    """The notebook's conv weight order, [c_out][k_w][k_h][c_in] (wrong when k_w > 1)."""
    return np.moveaxis(w, 2, 0).flatten("F")


def hwc_flat(x: np.ndarray) -> np.ndarray:
    """(N, H, W, C) activations → (N, H·W·C) in CMSIS HWC order (same as Keras Flatten)."""
    return np.asarray(x).reshape(len(x), -1)
