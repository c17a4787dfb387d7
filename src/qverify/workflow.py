"""The steps the CLI and the pytest plugin share: model + data → graph → ranges → plan."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qverify.calibrate import calibrate, load_data, prepare_input
from qverify.errors import DataError, PlanError
from qverify.graph import Graph, build_graph
from qverify.modelfile import load_model
from qverify.plan import QuantPlan, make_plan, model_fingerprint

DEMO_CALIB_SAMPLES = 1000
DEMO_DATA = "demo:calib"


@dataclass
class Quantized:
    """A plan together with the graph and prepared float data it was made from."""

    plan: QuantPlan
    graph: Graph
    x: np.ndarray


def load_inputs(shapes, data: str | None, samples: int | None = None, demo_split: str = "calib") -> np.ndarray:
    """Prepared float data (N, H, W, C) for a Graph or plan (`shapes`): from a .npy file, or the demo's
    synthetic set when data is None or 'demo:<split>'. `samples` keeps the first N."""
    if samples is not None and samples <= 0:
        raise DataError(f"sample count {samples} must be positive")
    if data is None or data.startswith("demo:"):
        from qverify import demo

        split = demo_split if data is None else data.split(":", 1)[1]
        x, _ = demo.make_dataset(samples or DEMO_CALIB_SAMPLES, split)
        return prepare_input(x, shapes, f"demo data ({split})")
    x = load_data(data)
    if samples is not None:
        x = x[:samples]
    return prepare_input(x, shapes, str(data))


def quantize(model: str | None = None, weights: str | None = None, data: str | None = None,
             calib_samples: int | None = None, bits: int = 16, rounding: str = "truncate",
             rule: str = "notebook", fit_accumulator: bool = True,
             functions: dict[str, str] | None = None, paths: tuple[str, ...] | None = None) -> Quantized:
    """Load, calibrate and plan. With no model and no data, the shipped demo.

    functions: {op name: C function} the firmware calls for those ops (default: the fastest legal).
    paths: the code paths the firmware runs, 'dsp' and/or 'plain' (default both).

    Unlike make_plan, fit_accumulator defaults to True here: a plan whose own calibration
    data wraps the int32 accumulator is not one to flash (pass False for the notebook's formats).

    Raises:
        QVerifyError subclasses for a bad model, data or plan.
    """
    if model is not None and data is None and weights is None and not str(model).startswith("demo"):
        raise DataError("a user model needs calibration data: pass --data X.npy")
    graph = build_graph(load_model(model, weights))
    x = load_inputs(graph, data, calib_samples)
    ranges = calibrate(graph, x)
    source = {
        "model": "demo" if model is None else _absolute(model),
        "weights": None if weights is None else str(Path(weights).resolve()),
        "data": DEMO_DATA if data is None else (data if data.startswith("demo:") else str(Path(data).resolve())),
        # the demo's data is generated, so its name is its content
        "data_digest": DEMO_DATA if data is None else (data if data.startswith("demo:") else file_digest(data)),
    }
    plan = make_plan(graph, ranges, bits=bits, rounding=rounding, rule=rule, source=source,
                     fit_accumulator=fit_accumulator, declared=functions, **({"paths": tuple(paths)} if paths else {}))
    return Quantized(plan, graph, x)


def file_digest(path: str | Path) -> str:
    """'sha256:<hex>' of a file's bytes (what `sha256sum` prints)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return f"sha256:{h.hexdigest()}"


def _absolute(model: str) -> str:
    path = Path(model)
    return str(path.resolve()) if path.exists() else model


def graph_for(plan: QuantPlan) -> Graph:
    """Reload the model a plan was made from and check it is the same model."""
    src = plan.source
    model = None if src.get("model") == "demo" else src.get("model")
    graph = build_graph(load_model(model, src.get("weights")))
    if model_fingerprint(graph) != src.get("model_fingerprint"):
        raise PlanError(f"the model at {src.get('model')} is not the model this plan was made from "
                        "(fingerprint differs); re-run quantize")
    return graph


def write_plan_and_headers(plan: QuantPlan, x_int: np.ndarray, out_dir: str | Path,
                           outputs: dict[str, np.ndarray] | None = None) -> list[Path]:
    """Write plan.json, plan.npz, weights.h and sample_input_output.h (sample 0 of x_int) into out_dir.

    Every text is computed before the first byte is written and each file is replaced atomically,
    so a failure leaves the previous files in place, never a partial one.

    Args:
        plan: the plan.
        x_int: quantized input (N, H, W, C) int16; sample 0 goes into sample_input_output.h.
        out_dir: the output directory (created if needed).
        outputs: sample 0's per-op outputs of the shift model when already computed (op name →
            (H, W, C) or (1, H, W, C)); otherwise the shift model runs on sample 0.

    Returns:
        The paths written.
    """
    from qverify.export import sample_header, weights_header
    from qverify.fs import atomic_write

    x0 = np.asarray(x_int)[:1]
    if outputs is None:
        from qverify.engines.shift import ShiftEngine

        outputs = {k: v[0] for k, v in ShiftEngine(plan).run(x0).outputs.items()}
    texts = {"weights.h": weights_header(plan), "sample_input_output.h": sample_header(plan, x0[0], outputs)}
    out = Path(out_dir)
    plan.save(out)
    for name, text in texts.items():
        atomic_write(out / name, text.encode())
    return [out / "plan.json", out / "plan.npz", *(out / name for name in texts)]
