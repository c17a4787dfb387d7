#!/usr/bin/env python3
"""Retrain the shipped demo model (src/qverify/demo/model.keras + metrics.json).

Deterministic and CPU-only: the data come from ``qverify.demo.make_dataset``
(bit-reproducible), and TensorFlow runs with a fixed seed and op determinism.
Trains on the "train" split, monitors the "calib" split each epoch (reported
only -- no early stopping or model selection), and reports the float accuracy
on the held-out "test" split, which is never used during training.

    python scripts/train_demo.py                 # rebuild the shipped model
    python scripts/train_demo.py --out /tmp/x    # write somewhere else

Defaults take roughly 10 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")  # CPU only, always

ROOT = Path(__file__).resolve().parents[1]
try:
    import qverify.demo as demo  # noqa: E402
except ImportError:  # running from a source checkout without installing
    sys.path.insert(0, str(ROOT / "src"))
    import qverify.demo as demo  # noqa: E402

SEED = 20240611
N_TRAIN = 16384
N_CALIB = 512
N_TEST = 2000
EPOCHS = 30
BATCH = 64
LR = 1e-3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--out",
        type=Path,
        default=demo.MODEL_PATH.parent,
        help="directory for model.keras and metrics.json (default: the package)",
    )
    ap.add_argument("--n-train", type=int, default=N_TRAIN)
    ap.add_argument("--n-test", type=int, default=N_TEST)
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--batch", type=int, default=BATCH)
    ap.add_argument("--lr", type=float, default=LR)
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)

    import keras
    import numpy as np
    import tensorflow as tf

    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()

    t_start = time.perf_counter()
    t = time.perf_counter()
    x_tr, y_tr = demo.make_dataset(args.n_train, "train")
    x_ca, y_ca = demo.make_dataset(N_CALIB, "calib")
    x_te, y_te = demo.make_dataset(args.n_test, "test")
    shape = (-1, demo.FRAME_LEN, 1, 1)
    x_tr, x_ca, x_te = (a.reshape(shape) for a in (x_tr, x_ca, x_te))
    y_tr, y_ca, y_te = (a.astype(np.float32) for a in (y_tr, y_ca, y_te))
    t_data = time.perf_counter() - t
    print(f"data: train {len(x_tr)}, calib {len(x_ca)}, test {len(x_te)} ({t_data:.1f} s)", flush=True)

    model = demo.Net()
    steps = args.epochs * int(np.ceil(len(x_tr) / args.batch))
    schedule = keras.optimizers.schedules.CosineDecay(args.lr, decay_steps=steps, alpha=0.02)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    t = time.perf_counter()
    hist = model.fit(
        x_tr,
        y_tr,
        batch_size=args.batch,
        epochs=args.epochs,
        shuffle=True,
        validation_data=(x_ca, y_ca),
        verbose=2,
    )
    t_fit = time.perf_counter() - t

    def accuracy(x, y):
        p = model.predict(x, batch_size=256, verbose=0).reshape(-1)
        return float(np.mean((p >= 0.5) == (y >= 0.5))), p

    train_acc, _ = accuracy(x_tr[:N_TEST], y_tr[:N_TEST])
    test_acc, p_te = accuracy(x_te, y_te)
    pred = p_te >= 0.5
    truth = y_te >= 0.5
    # How many held-out frames sit near the decision boundary (where a
    # quantised engine is most likely to flip the decision).
    margin = np.abs(p_te - 0.5)
    wall = time.perf_counter() - t_start

    args.out.mkdir(parents=True, exist_ok=True)
    model_path = args.out / "model.keras"
    model.save(model_path)
    metrics = {
        "task": "bearing fault detection (synthetic accelerometer frames), 1 = faulty",
        "float_test_accuracy": round(test_acc, 6),
        "test_split": "test",
        "test_size": int(len(x_te)),
        "test_confusion": {
            "true_healthy": int(np.sum(~pred & ~truth)),
            "false_faulty": int(np.sum(pred & ~truth)),
            "false_healthy": int(np.sum(~pred & truth)),
            "true_faulty": int(np.sum(pred & truth)),
        },
        "test_near_boundary_|p-0.5|<0.05": int(np.sum(margin < 0.05)),
        "train_split": "train",
        "train_size": int(len(x_tr)),
        "train_accuracy_first_2000": round(train_acc, 6),
        "calib_split_for_monitoring": "calib",
        "calib_size": N_CALIB,
        "final_calib_accuracy": round(float(hist.history["val_accuracy"][-1]), 6),
        "final_train_loss": round(float(hist.history["loss"][-1]), 6),
        "epochs": args.epochs,
        "batch_size": args.batch,
        "optimizer": f"Adam, cosine decay from {args.lr:g} to {args.lr * 0.02:g}",
        "loss": "binary_crossentropy",
        "seed": args.seed,
        "split_seeds": demo.SPLIT_SEEDS,
        "op_determinism": True,
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "date_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data_time_s": round(t_data, 1),
        "fit_time_s": round(t_fit, 1),
        "training_wall_time_s": round(wall, 1),
    }
    with open(args.out / "metrics.json", "w", encoding="utf-8") as fh:
        json.dump(metrics, fh, indent=2)
        fh.write("\n")

    print(f"float held-out accuracy on {len(x_te)} 'test' frames: {test_acc:.4f}")
    print(f"wall time {wall:.0f} s (fit {t_fit:.0f} s); wrote {model_path} and metrics.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
