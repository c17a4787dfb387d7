"""The shipped demo: a small 1-D CNN that flags bearing faults in accelerometer frames.

Everything here is deterministic: the frames are synthesised bit for bit the
same on every machine (signals.py), the network is network.py, and the trained
model and its metrics ship beside this file.

Public API::

    Net()                      -> untrained keras.Model (the demo architecture)
    make_dataset(n, split)     -> (x float32 (n, 4096) in [-1, 1), y int8 (n,))
    load_model()               -> the shipped, trained model (compile=False)
    MODEL_PATH, DESCRIPTION, metrics(), write_demo(out_dir, n, split)

Feed the model ``x.reshape(n, 4096, 1, 1)``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from qverify.demo.network import Net
from qverify.demo.signals import FRAME_LEN, SAMPLE_RATE_HZ, SPLIT_SEEDS, make_dataset

__all__ = [
    "DESCRIPTION",
    "FRAME_LEN",
    "METRICS_PATH",
    "MODEL_PATH",
    "SAMPLE_RATE_HZ",
    "SPLIT_SEEDS",
    "Net",
    "load_model",
    "make_dataset",
    "metrics",
    "write_demo",
]

_HERE = Path(__file__).resolve().parent
MODEL_PATH: Path = _HERE / "model.keras"
METRICS_PATH: Path = _HERE / "metrics.json"

DESCRIPTION = (
    "The demo model is a small 1-D CNN that flags rolling-element bearing faults "
    "in single-axis accelerometer frames (4096 samples at 25.6 kHz, i.e. 0.16 s). "
    "The data are synthetic and deterministic, not measured: a healthy frame is a "
    "few shaft-rate harmonics (random speed 10-50 Hz, random amplitudes and phases), "
    "sometimes a gear-mesh tone, plus broadband Gaussian noise; a faulty frame adds "
    "a train of impacts at an outer-race (3-5x shaft) or inner-race (5-7.5x shaft, "
    "amplitude-modulated by shaft rotation) defect frequency with a little timing "
    "jitter, each impact ringing a damped structural resonance (random 2-8 kHz). "
    "Fault severity is drawn log-uniformly, so some faults sit well below the noise "
    "floor and the classes overlap on purpose: the float model gets about nine in "
    "ten held-out frames right, leaving borderline cases where a quantised engine "
    "can flip the decision. Each frame is scaled to a random RMS level, rounded to "
    "the 16-bit grid and clipped to [-1, 1 - 2**-15], so it is exactly representable "
    "in q15. Label 1 means faulty, 0 healthy; labels alternate (sample i has label "
    "i % 2)."
)

# ----------------------------------------------------------------------------
# The shipped model and its metrics
# ----------------------------------------------------------------------------


def load_model():
    """Load the shipped, trained demo model (``compile=False``)."""
    import keras

    if not MODEL_PATH.is_file():
        raise FileNotFoundError(f"demo model not found at {MODEL_PATH}; run scripts/train_demo.py to build it")
    return keras.models.load_model(MODEL_PATH, compile=False)


def metrics() -> dict:
    """Return the training / held-out metrics recorded when the model was trained."""
    with open(METRICS_PATH, encoding="utf-8") as fh:
        return json.load(fh)


def write_demo(out_dir, n: int = 1000, split: str = "test") -> dict[str, Path]:
    """Write ``model.keras``, ``input.npy`` (n, 4096) float32 and ``target.npy`` (n,) to ``out_dir``.

    Returns the paths written, keyed ``"model"``, ``"input"``, ``"target"``.
    """
    x, y = make_dataset(n, split)  # validate arguments before touching disk
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "model": out / "model.keras",
        "input": out / "input.npy",
        "target": out / "target.npy",
    }
    shutil.copyfile(MODEL_PATH, paths["model"])
    np.save(paths["input"], x)
    np.save(paths["target"], y)
    return paths
