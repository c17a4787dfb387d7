"""The steps the CLI and the pytest plugin share: model + data → graph → ranges → plan."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qverify.calibrate import calibrate, load_data, prepare_input
from qverify.choices import CMSIS_RELEASES, FinalActivation
from qverify.errors import ArgumentError, DataError, PlanError
from qverify.graph import Graph, build_graph
from qverify.kernels import release
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


def load_inputs(
    shapes, data: str | None, samples: int | None = None, demo_split: str = "calib", first: int = 0
) -> np.ndarray:
    """Prepared float data (N, H, W, C) for a Graph or plan (`shapes`): from a .npy file, or the demo's
    synthetic set when data is None or 'demo:<split>'. `samples` keeps N of them from sample `first`
    (None: to the end; the demo: 1000)."""
    if samples is not None and samples <= 0:
        raise DataError(f"sample count {samples} must be positive")
    if data is None or data.startswith("demo:"):
        from qverify.dataset import demo_dataset

        split = demo_split if data is None else data.split(":", 1)[1]
        # the frames of demo.make_dataset, from the blocks made once and kept in the cache (dataset.DemoFrames)
        x = demo_dataset(samples or DEMO_CALIB_SAMPLES, split, first).x[:]
        return prepare_input(x, shapes, f"demo data ({split})")
    x = load_data(data)
    if first or samples is not None:
        stop = len(x) if samples is None else first + samples
        if stop > len(x):
            raise DataError(f"samples {first}:{stop} requested but {data} has {len(x)} samples")
        x = x[first:stop]
    return prepare_input(x, shapes, str(data))


@dataclass(frozen=True)
class Split:
    """Where a plan is calibrated and what is evaluated: (start, stop) ranges, a stop of None meaning
    the end of the file. calib_data None is the demo's calibration split; eval_data None the demo's test split."""

    calib_data: str | None
    calib: tuple[int, int | None]
    eval_data: str | None
    eval: tuple[int, int | None]
    note: str

    @property
    def calib_samples(self) -> int | None:
        start, stop = self.calib
        return None if stop is None else stop - start

    @property
    def eval_samples(self) -> int | None:
        start, stop = self.eval
        return None if stop is None else stop - start


def split_samples(
    data: str | None,
    calib_data: str | None,
    calib: tuple[int | None, int | None],
    evaluated: tuple[int | None, int | None],
    overlap: bool = False,
    default_eval: int | None = None,
    names: tuple[str, str, str] = ("calib_samples", "samples", "calib_overlap"),
) -> Split:
    """Calibration and evaluation samples, disjoint by default when one data file does both.

    calib and evaluated: (start, count) as given, None where not given: calib (None, N) is the first N,
    (a, n) the range a:a+n; evaluated (None, n) is n samples right after the calibration range when one
    file does both (from 0 in a file of its own), (a, n) the range a:a+n. default_eval: the count when
    none is given (None: to the end). With one file and no calibration count, the first half, at most
    DEMO_CALIB_SAMPLES, calibrates. An evaluated range given explicitly that overlaps the calibration
    range is refused unless `overlap` (then counts start at 0 again, as before calibration and
    evaluation were kept apart). names: how messages name the settings (config keys or CLI flags).

    Why an explicit overlap is refused rather than obeyed: a range written for the old behaviour
    (`samples = "0:64"` when the first samples calibrated too) would silently keep measuring the
    calibration set, the very bug this split fixes; only calib_overlap says the user wants that.

    Raises:
        DataError: a range past the end of its file, or an overlap the user did not allow.
    """
    c_name, e_name, o_name = names
    c_start, c_count = calib
    e_start, e_count = evaluated
    e_count = default_eval if e_count is None else e_count
    demo = calib_data is None or calib_data.startswith("demo:")
    same = (
        data is not None
        and not data.startswith("demo:")
        and (calib_data is None or (not demo and Path(calib_data).resolve() == Path(data).resolve()))
    )
    if not same:  # the demo's splits, or two files: nothing to keep apart
        c0, e0 = c_start or 0, e_start or 0
        c_stop = c0 + (c_count or DEMO_CALIB_SAMPLES) if demo else None if c_count is None else c0 + c_count
        e = (e0, None if e_count is None else e0 + e_count)
        note = (
            f"calibrated on samples {c0}:{c_stop or 'N'} of {calib_data or DEMO_DATA}, evaluated on samples "
            f"{e0}:{e[1] or 'N'} of {data or 'demo:test'}"
        )
        return Split(calib_data, (c0, c_stop), data, e, note)
    assert data is not None
    n = len(load_data_header(data))
    if c_count is None:
        if c_start is None and n < 2:
            raise DataError(
                f"{data} has {n} sample: it cannot both calibrate and be evaluated apart; give "
                f"separate calibration data, or {o_name} to evaluate on the calibration samples"
            )
        c = (c_start or 0, None) if c_start is not None else (0, min(DEMO_CALIB_SAMPLES, n // 2))
    else:
        c = (c_start or 0, (c_start or 0) + c_count)
    c_stop = n if c[1] is None else c[1]
    if c_stop > n:
        raise DataError(f"{c_name}: calibration samples {c[0]}:{c_stop} requested but {data} has {n} samples")
    if e_start is None:
        if overlap:
            e_first = 0
        elif c_stop < n:
            e_first = c_stop
        elif c[0] > 0:
            e_first = 0
            e_count = min(e_count, c[0]) if e_count is not None else c[0]
        else:
            raise DataError(
                f"{c_name}: the calibration takes every sample of {data} (0:{n}), none is left to "
                f"evaluate; calibrate on fewer, give separate calibration data, or set {o_name}"
            )
    else:
        e_first = e_start
    e_stop = n if e_count is None else e_first + e_count
    if e_stop > n:
        raise DataError(
            f"{e_name}: samples {e_first}:{e_stop} requested but {data} has {n} samples (calibration: {c[0]}:{c_stop})"
        )
    apart = e_stop <= c[0] or e_first >= c_stop
    if not apart and not overlap:
        raise DataError(
            f"{e_name}: evaluated samples {e_first}:{e_stop} overlap the calibration samples "
            f"{c[0]}:{c_stop} of {data}: accuracy and SQNR would measure the calibration set; "
            f"choose disjoint ranges, give separate calibration data, or set {o_name} to allow it"
        )
    how = "disjoint" if apart else f"OVERLAPPING: {o_name} allows it; accuracy and SQNR include the calibration set"
    note = f"calibrated on samples {c[0]}:{c_stop}, evaluated on {e_first}:{e_stop} of {data} (N = {n}; {how})"
    return Split(data, (c[0], c_stop), data, (e_first, e_stop), note)


def load_data_header(path: str | Path) -> np.ndarray:
    """A .npy file memory-mapped: its length without reading it."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"data file {p} does not exist")
    try:
        return np.load(p, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise DataError(f"data file {p} is not a readable .npy array: {exc}") from exc


def quantize(
    model: str | None = None,
    weights: str | None = None,
    data: str | None = None,
    calib_samples: int | None = None,
    bits: int = 16,
    rounding: str = "truncate",
    rule: str = "notebook",
    fit_accumulator: bool = True,
    functions: dict[str, str] | None = None,
    paths: tuple[str, ...] | None = None,
    calib_start: int = 0,
    final_activation: str | None = "float",
    macro_names: dict[str, str] | None = None,
    names_in_order: tuple[str, list[str]] | None = None,
    cmsis: str = CMSIS_RELEASES[0],
    weight_bits: dict[str, int] | None = None,
) -> Quantized:
    """Load, calibrate and plan. With no model and no data, the shipped demo.

    calib_samples, calib_start: calibrate on samples calib_start:calib_start + calib_samples of the data
    (None: to the end); a start other than 0 is recorded in the plan's source as calib_first.

    functions: {op name: C function} the firmware calls for those ops (default: the fastest legal).
    paths: the code paths the firmware runs, 'dsp' and/or 'plain' (default both).
    final_activation: a final sigmoid/softmax in 'float' after the plan, or on the 'device' as its last op
        (graph.build_graph); None: device where the firmware's function is right in every release from
        `cmsis` on (softmax always, sigmoid from 5.8.0), else float.
    macro_names: {conv/dense op name: C macro stem} the headers name those ops by (QuantPlan.macro_names).
    names_in_order: (where, stems): one stem per conv/dense op, in op order (`--names-from`'s header stems);
        a count that differs is refused before calibration.
    cmsis: the oldest CMSIS_5 release the firmware may build (QuantPlan.cmsis).
    weight_bits: {dense op name: 8 or 16} (qverify.plan.op_weight_bits; default: the declared function's width,
        else 16).

    Unlike make_plan, fit_accumulator defaults to True here: a plan whose own calibration
    data wraps the int32 accumulator is not one to flash (pass False for the notebook's formats).

    Raises:
        QVerifyError subclasses for a bad model, data or plan.
    """
    if model is not None and data is None and weights is None and not str(model).startswith("demo"):
        raise DataError("a user model needs calibration data: pass --data X.npy")
    net = load_model(model, weights)
    if final_activation is None:
        final_activation = device_activation(build_graph(net).final_activation, cmsis)
    graph = build_graph(net, final_activation)
    names = named_ops(graph, macro_names, names_in_order)  # refused now, not after calibrating
    x = load_inputs(graph, data, calib_samples, first=calib_start)
    ranges = calibrate(graph, x)
    source: dict[str, str | int | None] = {
        "model": "demo" if model is None else _absolute(model),
        "weights": None if weights is None else str(Path(weights).resolve()),
        "data": DEMO_DATA if data is None else (data if data.startswith("demo:") else str(Path(data).resolve())),
        # the demo's data is generated, so its name is its content
        "data_digest": DEMO_DATA if data is None else (data if data.startswith("demo:") else file_digest(data)),
    }
    if calib_start:
        source["calib_first"] = calib_start  # only then: plans calibrated from sample 0 keep their hash
    plan = make_plan(
        graph,
        ranges,
        bits=bits,
        rounding=rounding,
        rule=rule,
        source=source,
        fit_accumulator=fit_accumulator,
        declared=functions,
        **({"paths": tuple(paths)} if paths else {}),
        macro_names=names,
        cmsis=cmsis,
        weight_bits=weight_bits,
    )
    return Quantized(plan, graph, x)


def device_activation(final: str | None, cmsis: str) -> str:
    """Where a final activation runs by default: on the device where Arm's function computes it as the shift
    model does in every release from `cmsis` on (arm_softmax_q15 always; arm_nn_activations_direct_q15 from
    5.8.0: 5.4.0-5.7.0 saturate its table index), else in float."""
    if final == "softmax" or (final == "sigmoid" and release(cmsis) >= release("5.8.0")):
        return FinalActivation.DEVICE.value
    return FinalActivation.FLOAT.value


def named_ops(
    graph: Graph, macro_names: dict[str, str] | None = None, names_in_order: tuple[str, list[str]] | None = None
) -> dict[str, str]:
    """{op name: macro stem} for the graph's conv/dense ops from a mapping, or from stems in op order.

    Raises:
        ArgumentError: a mapped op the model has no conv/dense op of, or a count of stems that differs.
        PlanError: stems that are not C identifiers of their own (qverify.plan.check_macro_names).
    """
    from qverify.opkinds import KINDS
    from qverify.plan import check_macro_names

    weighted = [op.name for op in graph.ops if KINDS[op.kind].weighted]
    if names_in_order is not None:
        where, stems = names_in_order
        if len(stems) != len(weighted):
            raise ArgumentError(
                f"{where}: the header has {len(stems)} layer(s) ({', '.join(stems) or 'no *_WT macro'}) but the "
                f"model has {len(weighted)} conv/dense op(s) ({', '.join(weighted)}): names are matched in order, "
                "so the counts must agree; name them with --map OP=STEM instead"
            )
        names = dict(zip(weighted, stems, strict=True))
    else:
        names = dict(macro_names or {})
        unknown = [n for n in names if n not in weighted]
        if unknown:
            raise ArgumentError(
                f"macro name {unknown[0]}={names[unknown[0]]}: the model has no conv/dense op "
                f"'{unknown[0]}'; its conv/dense ops are: {', '.join(weighted) or '(none)'}"
            )
    check_macro_names(graph.ops, names)
    return names


def file_digest(path: str | Path) -> str:
    """'sha256:<hex>' of a file's bytes (what `sha256sum` prints)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return f"sha256:{h.hexdigest()}"


def _absolute(model: str) -> str:
    """A model path resolved, and the file of a file.py:Factory; a module:Factory as given (found on sys.path)."""
    path = Path(model)
    if path.exists():
        return str(path.resolve())
    file, sep, attr = model.rpartition(":")
    if sep and file.endswith(".py") and Path(file).is_file():
        return f"{Path(file).resolve()}:{attr}"
    return model


def graph_for(plan: QuantPlan) -> Graph:
    """Reload the model a plan was made from and check it is the same model."""
    src = plan.source
    model = None if src.get("model") == "demo" else src.get("model")
    # a plan with a float final activation was made in 'float' mode; any other as its ops say ('device')
    graph = build_graph(load_model(model, src.get("weights")), "float" if plan.final_activation else "device")
    if model_fingerprint(graph) != src.get("model_fingerprint"):
        raise PlanError(
            f"the model at {src.get('model')} is not the model this plan was made from "
            "(fingerprint differs); re-run quantize"
        )
    return graph


def write_plan_and_headers(
    plan: QuantPlan,
    x_int: np.ndarray,
    out_dir: str | Path,
    outputs: dict[str, np.ndarray] | None = None,
    extra: dict[str, bytes] | None = None,
) -> list[Path]:
    """Write plan.json, plan.npz, weights.h and sample_input_output.h (sample 0 of x_int) into out_dir, as one set.

    Every byte is computed before the first is written; the files and qverify-manifest.json are written as
    qverify.outputs.write_set does, so that a failure or a kill at any point leaves the previous set or the
    new one (or a mix every reader and the C compiler refuse), never a partial file. Other files in out_dir
    are left alone.

    Args:
        plan: the plan.
        x_int: quantized input (N, H, W, C) int16; sample 0 goes into sample_input_output.h.
        out_dir: the output directory (created if needed).
        outputs: sample 0's per-op outputs of the shift model when already computed (op name →
            (H, W, C) or (1, H, W, C)); otherwise the shift model runs on sample 0.
        extra: more files of the set (the gate's network.c), name → bytes.

    Returns:
        The paths written, the manifest last.
    """
    from qverify.export import sample_header, weights_header
    from qverify.outputs import write_set

    x0 = np.asarray(x_int)[:1]
    if outputs is None:
        from qverify.engines.shift import ShiftEngine

        outputs = {k: v[0] for k, v in ShiftEngine(plan).run(x0).outputs.items()}
    files = {
        **plan.files(out_dir),
        "weights.h": weights_header(plan).encode(),
        "sample_input_output.h": sample_header(plan, x0[0], outputs).encode(),
        **(extra or {}),
    }
    return write_set(out_dir, files, plan.hash)
