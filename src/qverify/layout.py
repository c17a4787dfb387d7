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


# the weight orders a dense op's function may read (opkinds.Function.order): "" is [out][in]
ORDERS = ("", "q15x4", "q7x4")
# each order's sequence within a group of 4 rows, per column pair (row, column-of-the-pair): q15x4 keeps a row's
# pair together (one word per row for __SMLAD); q7x4 puts rows 0 and 1 in one word, rows 2 and 3 in the next,
# so __SXTB16 of a word and of it rotated by 8 give each row's pair
_PAIR_ORDER = {
    "q15x4": ((0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1)),
    "q7x4": ((0, 0), (1, 0), (0, 1), (1, 1), (2, 0), (3, 0), (2, 1), (3, 1)),
}


def _interleave_index(n_in: int, n_out: int, order: str) -> np.ndarray:
    """For each position of the stored weights, its index in the flat [out][in] matrix."""
    if order not in ORDERS:
        raise ValueError(f"weight order '{order}': expected one of {', '.join(repr(o) for o in ORDERS)}")
    flat = np.arange(n_in * n_out).reshape(n_out, n_in)
    if not order:
        return flat.ravel()
    groups, pairs = n_out // 4, n_in // 2
    parts = []
    if groups:
        blocks = flat[: 4 * groups].reshape(groups, 4, n_in)  # (group, row in group, column)
        pair_cols = blocks[:, :, : 2 * pairs].reshape(groups, 4, pairs, 2)  # (group, row, pair, column of pair)
        rows, cols = zip(*_PAIR_ORDER[order], strict=True)
        body = pair_cols[:, list(rows), :, list(cols)]  # (sequence position, group, pair)
        body = np.transpose(body, (1, 2, 0)).reshape(groups, -1)  # per group: pair by pair, 8 values each
        tail = blocks[:, :, 2 * pairs :].transpose(0, 2, 1).reshape(groups, -1)  # an odd last column: rows 0..3
        parts.append(np.concatenate([body, tail], axis=1).ravel())
    parts.append(flat[4 * groups :].ravel())  # the rows after the last group of 4, in their own order
    return np.concatenate(parts)


def interleave(flat: np.ndarray, n_in: int, n_out: int, order: str) -> np.ndarray:
    """Dense weights, flat [out][in], in the order a function reads them (opkinds.Function.order; "" as they
    are). Arm's _opt functions take rows in groups of 4: q15x4 (arm_fully_connected_q15_opt) stores each row's
    column pair together, r0[2k] r0[2k+1] r1[2k] r1[2k+1] ... r3[2k+1]; q7x4 (arm_fully_connected_mat_q7_vec_q15
    _opt) r0[2k] r1[2k] r0[2k+1] r1[2k+1] r2[2k] r3[2k] r2[2k+1] r3[2k+1]; an odd last column follows as r0..r3,
    and the rows past the last group of 4 keep their [out][in] order."""
    return np.asarray(flat).ravel()[_interleave_index(n_in, n_out, order)]


def deinterleave(stored: np.ndarray, n_in: int, n_out: int, order: str) -> np.ndarray:
    """The inverse of interleave: stored weights back to flat [out][in]."""
    stored = np.asarray(stored).ravel()
    out = np.empty_like(stored)
    out[_interleave_index(n_in, n_out, order)] = stored
    return out
