"""Data sets eval and the gate run over: a .npy file (memory-mapped) or the demo's frames, with labels.

    ds = load_dataset(plan, "x.npy", "y.npy")        # or demo_dataset(2000)
    ds.x[start:stop], ds.labels, ds.name, ds.first

Everything is checked against the plan before any engine runs: the input
shape and dtype from the first sample, the labels (class indices or
one-hot) entirely; each chunk's NaN / inf when it is prepared.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qverify.calibrate import prepare_input
from qverify.errors import DataError
from qverify.plan import QuantPlan

DEMO_SPLIT = "test"
DEMO_SAMPLES = 2000  # the demo's held-out set (qverify.demo.metrics())


@dataclass
class DataSet:
    """Samples to evaluate: x is (N, ...) raw float data (an array, a read-only memmap of a .npy file, or the
    demo's DemoFrames, an array-like that slices to arrays), labels (N,) class indices or None, name says
    where they came from, first is the index of x[0] in that source (reports give sample indices in the
    source's numbering)."""

    x: np.ndarray | DemoFrames
    labels: np.ndarray | None
    name: str
    first: int = 0

    def __len__(self) -> int:
        return len(self.x)


def n_classes(plan: QuantPlan) -> int:
    """Output units of the last op (1 = a binary decision)."""
    h, w, c = plan.ops[-1].out_shape
    return h * w * c


def check_labels(labels: np.ndarray, n: int, classes: int, what: str = "labels") -> np.ndarray:
    """Class indices (n,) int64 from labels given as (n,) integers or a one-hot (n, K) array.

    Float labels are accepted when every value is a whole number (0.0/1.0 as saved by many tools).

    Raises:
        DataError: wrong length, rank, kind, values outside 0..K-1, or a one-hot row that is not one-hot.
    """
    y = np.asarray(labels)
    k = max(classes, 2)
    if y.dtype == object or not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
        raise DataError(f"{what} have dtype {y.dtype}; expected integer class indices (N,) or one-hot (N, {k})")
    if y.ndim == 0 or y.ndim > 2:
        raise DataError(f"{what} have shape {y.shape}; expected class indices (N,) or one-hot (N, {k})")
    if len(y) != n:
        raise DataError(f"{what} have {len(y)} entries but the data has {n} samples")
    if y.ndim == 2:
        if y.shape[1] != k:
            raise DataError(f"{what} are one-hot with {y.shape[1]} columns; the model has {k} classes")
        if not (np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()):
            bad = int(np.argmax(~(np.isin(y, (0, 1)).all(axis=1) & (y.sum(axis=1) == 1))))
            raise DataError(f"{what}: row {bad} of the (N, {k}) array is not one-hot")
        return np.argmax(y, axis=1).astype(np.int64)
    if np.issubdtype(y.dtype, np.floating):
        whole = np.isfinite(y) & (y == np.round(y))
        if not whole.all():
            bad = int(np.argmin(whole))
            raise DataError(f"{what}: entry {bad} is {y[bad]!r}, not a class index (labels must be whole numbers)")
    y = y.astype(np.int64)
    outside = (y < 0) | (y >= k)
    if outside.any():
        i = int(np.argmax(outside))
        raise DataError(f"{what}: entry {i} is {y[i]}, outside the model's classes 0..{k - 1}")
    return y


def _load_npy(path: str | Path, what: str) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} file {path} does not exist")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # numpy raises several types for a bad file
        raise DataError(f"{what} file {path} is not a readable .npy array: {exc}") from exc
    if not isinstance(arr, np.ndarray):
        raise DataError(f"{what} file {path} holds several arrays (.npz); expected one .npy array")
    return arr


def load_dataset(
    plan: QuantPlan, data: str | Path, labels: str | Path | None = None, samples: int | None = None, first: int = 0
) -> DataSet:
    """A .npy data file (memory-mapped, read chunk by chunk) and optional labels, checked against the plan.

    Args:
        plan: the plan (input shape; number of classes for the labels).
        data: (N, L), (N, L, 1), (N, L, 1, 1) for a 1-D model, or (N, *model input shape), float.
        labels: .npy of (N,) class indices or one-hot (N, K); must have exactly N entries.
        samples: evaluate only `samples` samples, starting at sample `first`.
        first: index of the first sample evaluated.

    Raises:
        DataError: missing/unreadable files, wrong shape or dtype, labels that do not fit.
    """
    if samples is not None and samples <= 0:
        raise DataError(f"sample count {samples} must be positive")
    x = _load_npy(data, "data")
    if x.ndim < 2 or len(x) == 0:
        raise DataError(f"data {data} has shape {x.shape}; expected (N, ...) with N > 0 samples")
    # shape and dtype before any work, reading only the first sample (the rest is checked chunk by chunk)
    head = np.asarray(x[:1])
    try:
        prepare_input(head, plan, str(data))
    except DataError as exc:
        raise DataError(str(exc).replace(f"shape {head.shape}", f"shape {x.shape}", 1)) from None
    y = None
    if labels is not None:
        y = check_labels(np.asarray(_load_npy(labels, "labels")), len(x), n_classes(plan), f"labels {labels}")
    stop = len(x) if samples is None else first + samples
    if first < 0 or stop > len(x):
        raise DataError(f"samples {first}:{stop} requested but {data} has {len(x)} samples")
    x = x[first:stop]
    y = None if y is None else y[first:stop]
    return DataSet(x, y, str(data), first)


def demo_dataset(samples: int | None = None, split: str = DEMO_SPLIT, first: int = 0) -> DataSet:
    """The demo's synthetic frames and labels (default: its 2,000 held-out test frames), from sample `first`.

    The frames are not made here: x is a DemoFrames, which makes (or reads from the cache) the blocks a
    slice needs when it is sliced, so eval's memory does not grow with the sample count."""
    from qverify import demo

    n = DEMO_SAMPLES if samples is None else samples
    if n <= 0:
        raise DataError(f"sample count {n} must be positive")
    if split not in demo.SPLIT_SEEDS:
        raise DataError(f"unknown demo split '{split}'; expected one of {', '.join(demo.SPLIT_SEEDS)}")
    return DataSet(DemoFrames(split, first, n), demo_labels(first, first + n), f"demo:{split}", first)


def demo_labels(start: int, stop: int) -> np.ndarray:
    """The demo's labels of samples start..stop-1: sample i has label i % 2 (qverify.demo.DESCRIPTION)."""
    return np.arange(start, stop, dtype=np.int64) % 2


DEMO_BLOCK = 1024  # demo frames made (and cached) per block; a multiple of the generator's own 32-row steps
_GEN_ROWS = 32


class DemoFrames:
    """Rows first .. first+n-1 of a demo split, float32 (n, 4096), as an array-like made block by block.

    Slicing (step 1) or np.asarray gives a numpy array. Each block of DEMO_BLOCK frames is made once per
    process (the last one is kept) and kept on disk under the user cache dir, keyed by the generator's
    source (demo_key); a cache file that cannot be read or written is ignored (the frames are made again:
    the cache saves time, it never changes a frame)."""

    dtype = np.dtype(np.float32)
    ndim = 2

    def __init__(self, split: str, first: int, n: int):
        from qverify import demo

        self.split, self.first, self.n = split, first, n
        self.shape = (n, demo.FRAME_LEN)

    def __len__(self) -> int:
        return self.n

    def __array__(self, dtype=None, copy=None):
        x = self[0 : self.n]
        return x if dtype is None else x.astype(dtype)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            i = int(key) + (self.n if key < 0 else 0)
            if not 0 <= i < self.n:
                raise IndexError(f"sample {key} of {self.n}")
            return self[i : i + 1][0]
        if not isinstance(key, slice):
            raise TypeError("demo frames take an integer or a slice")
        start, stop, step = key.indices(self.n)
        if step != 1:
            return np.asarray(self)[key]
        a, b = self.first + start, self.first + max(start, stop)
        parts = [
            demo_block(self.split, k)[
                max(a, k * DEMO_BLOCK) - k * DEMO_BLOCK : min(b, (k + 1) * DEMO_BLOCK) - k * DEMO_BLOCK
            ]
            for k in range(a // DEMO_BLOCK, -(-b // DEMO_BLOCK))
        ]
        if not parts:
            return np.empty((0, self.shape[1]), np.float32)
        return parts[0].copy() if len(parts) == 1 else np.concatenate(parts)


def demo_key() -> str:
    """The demo frames' content key: a digest of the source that synthesises them (qverify.demo.signals)."""
    import hashlib
    import inspect

    from qverify.demo import signals

    return hashlib.sha256(inspect.getsource(signals).encode()).hexdigest()[:16]


def demo_cache_dir() -> Path:
    """Where made demo frames are kept: $QVERIFY_CACHE_DIR/demo, else ~/.cache/qverify/demo."""
    from qverify.native_lib import cache_dir

    return cache_dir().parent / "demo"


_LAST_BLOCK: dict[str, tuple[tuple, np.ndarray]] = {}  # per split: (key, frames) of the last block used


def demo_block(split: str, block: int) -> np.ndarray:
    """Frames block*DEMO_BLOCK .. (block+1)*DEMO_BLOCK-1 of a demo split (read-only float32 array)."""
    key = (demo_key(), block)
    last = _LAST_BLOCK.get(split)
    if last is not None and last[0] == key:
        return last[1]
    path = demo_cache_dir() / f"{split}-{key[0]}-{DEMO_BLOCK}-{block}.npy"
    x = _read_block(path)
    if x is None:
        x = _make_block(split, block)
        _write_block(path, x)
    x.flags.writeable = False
    _LAST_BLOCK[split] = (key, x)
    return x


def _make_block(split: str, block: int) -> np.ndarray:
    """The block's frames, made exactly as qverify.demo.make_dataset makes them (the same 32-row steps)."""
    from qverify.demo import signals

    start = block * DEMO_BLOCK
    synth, uniforms = getattr(signals, "_synth", None), getattr(signals, "_uniforms", None)
    if synth is None or uniforms is None:  # the generator changed shape: the public way (slower)
        return signals.make_dataset(start + DEMO_BLOCK, split)[0][start:]
    seed = signals.SPLIT_SEEDS[split]
    y = (np.arange(start, start + DEMO_BLOCK) % 2).astype(np.int8)
    x = np.empty((DEMO_BLOCK, signals.FRAME_LEN), np.float32)
    for a in range(0, DEMO_BLOCK, _GEN_ROWS):
        x[a : a + _GEN_ROWS] = synth(uniforms(seed, start + a, start + a + _GEN_ROWS), y[a : a + _GEN_ROWS])
    return x


def _read_block(path: Path) -> np.ndarray | None:
    from qverify import demo

    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    return x if x.shape == (DEMO_BLOCK, demo.FRAME_LEN) and x.dtype == np.float32 else None


def _write_block(path: Path, x: np.ndarray) -> None:
    import io

    from qverify.fs import atomic_write

    buf = io.BytesIO()
    np.save(buf, x, allow_pickle=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, buf.getvalue())
    except OSError:  # a read-only or full cache: the frames are still right, only not kept
        pass


def prepare_chunk(raw: np.ndarray, plan: QuantPlan, name: str, start: int) -> np.ndarray:
    flat = np.asarray(raw).reshape(len(raw), -1)
    if np.issubdtype(flat.dtype, np.floating):
        finite = np.isfinite(flat).all(axis=1)
        if not finite.all():
            raise DataError(f"{name}: sample {start + int(np.argmin(finite))} contains NaN or inf")
    return prepare_input(np.asarray(raw), plan, name)
