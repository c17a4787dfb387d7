"""The quantization plan: the single source of truth every exporter and engine reads.

Per op: formats (frac bits), integer weights and biases in CMSIS layout,
bias_lshift / out_rshift, the adjustments docs/design.md rule 3 made, and what
saturated while quantizing. Saved as plan.json + plan.npz with a content hash.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from qverify import __version__, kernels, plancheck
from qverify.calibrate import Ranges
from qverify.choices import BITS, Rounding, values
from qverify.errors import PlanError
from qverify.graph import Graph, Op
from qverify.layout import conv_to_cmsis, dense_to_cmsis
from qverify.macros import clash, macro_name
from qverify.opkinds import FUNCTIONS, KINDS, WEIGHT_WIDTHS, Kind
from qverify.qformat import frac_bits, quantize

MAX_SHIFT = plancheck.MAX_SHIFT
WEIGHT_BITS = 16  # an op's weight and bias width unless the plan says otherwise (OpPlan.weight_bits)
# Where the model, weights and data were read from: left out of the hash (the model's fingerprint and the
# data's digest stand for them), so that the same content gives the same QVERIFY_PLAN_HASH, and byte-identical
# headers, in every checkout. plan.json stores them relative to its own folder, with '/' (so its bytes are the
# same in every checkout too), and QuantPlan.load resolves them against the folder it reads (eval --plan
# reloads the model and data from there).
UNHASHED_SOURCE = ("model", "weights", "data")


@dataclass
class OpPlan:
    """One op of the plan. Shapes are (H, W, C); shifts and weights only for conv/dense."""

    name: str
    kind: str
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]
    in_frac: int
    out_frac: int
    range: tuple[float, float]
    w_frac: int | None = None
    b_frac: int | None = None
    bias_lshift: int | None = None
    out_rshift: int | None = None
    weight_saturations: int = 0
    bias_saturations: int = 0
    adjustments: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    weights: np.ndarray | None = field(default=None, repr=False)
    bias: np.ndarray | None = field(default=None, repr=False)
    # the C function the firmware calls for this op (qverify.kernels: chosen, or declared by the team)
    function: str | None = None
    # bits of its stored weights and bias: 16 (q15_t), or 8 (q7_t) for a dense op computed by
    # arm_fully_connected_mat_q7_vec_q15(_opt); the arrays hold the integers as int16 either way
    weight_bits: int = 16

    @property
    def weighted(self) -> bool:
        kind = KINDS.get(self.kind)  # None only in a plan that fails validation
        return kind is not None and kind.weighted

    @property
    def macs(self) -> int:
        return KINDS[self.kind].macs(self)

    @property
    def size(self) -> int:
        h, w, c = self.out_shape
        return h * w * c


@dataclass
class QuantPlan:
    """A whole network's fixed-point plan.

    Attributes:
        bits: storage width (16 → q15).
        rounding: 'truncate' (firmware built with ARM_NN_TRUNCATE; the notebook's floor)
            or 'round' (CMSIS-NN's default build, NN_ROUND added before the shift).
        rule: the format rule ('notebook' or 'tight').
        input_shape: (H, W, C) of the network input.
        model_input_shape: the Keras model's input shape.
        input_frac: frac bits of the input.
        input_range: calibrated float range of the input.
        ops: the ops in order.
        final_activation: 'sigmoid', 'softmax' or None (applied in float).
        source: how the model and data were given: model, weights, data (paths, not hashed), data_digest,
            calib_samples, model_fingerprint.
        version: qverify version that wrote the plan.
        macro_names: {conv/dense op name: C macro stem} where the headers name an op otherwise than its name
            upper-cased (qverify.macros; `quantize --map` / `--names-from`, the gate's header_map). Part of the
            hash, since the headers change with it; empty (and not written) when every op keeps its own name.
    """

    bits: int
    rounding: str
    rule: str
    input_shape: tuple[int, int, int]
    model_input_shape: tuple[int, ...]
    input_frac: int
    input_range: tuple[float, float]
    ops: list[OpPlan]
    final_activation: str | None
    source: dict = field(default_factory=dict)
    version: str = __version__
    # the code paths the firmware runs: 'dsp' (ARM_MATH_DSP, Cortex-M4/M7) and/or 'plain' (Cortex-M0/M3);
    # each op's function must meet its contract on every one of them (qverify.kernels)
    paths: tuple[str, ...] = kernels.PATHS
    macro_names: dict[str, str] = field(default_factory=dict)
    # the oldest CMSIS_5 release the firmware may build: conditions of Arm's code only in older releases are
    # dropped (qverify.kernels; default the oldest release the contracts cover)
    cmsis: str = kernels.OLDEST

    def op(self, name: str) -> OpPlan:
        for op in self.ops:
            if op.name == name:
                return op
        raise PlanError(f"no op named '{name}' in the plan; ops are: {', '.join(o.name for o in self.ops)}")

    def index(self, name: str) -> int:
        return self.ops.index(self.op(name))

    def stem(self, name: str) -> str:
        """The C macro stem of conv/dense op `name` in the headers (STEM_WT, ...): recorded, or its name upper-cased."""
        return self.macro_names.get(name) or macro_name(name)

    @property
    def qmin(self) -> int:
        return -(1 << (self.bits - 1))

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1

    @property
    def adjustments(self) -> list[str]:
        return [f"{op.name}: {a}" for op in self.ops for a in op.adjustments]

    @property
    def warnings(self) -> list[str]:
        return [f"{op.name}: {w}" for op in self.ops for w in op.warnings]

    def __post_init__(self):
        plancheck.validate(self)  # consistent geometry, counts and shifts, wherever the plan comes from
        kernels.assign(self)  # every op names the function the firmware calls (the chosen one if not given)
        self.macro_names = dict(self.macro_names or {})
        if self.macro_names:
            check_macro_names(self.ops, self.macro_names)

    # ---- serialisation -------------------------------------------------
    def _meta(self, functions: bool = True) -> dict:
        meta = {k: v for k, v in asdict(self).items() if k != "ops"}
        if tuple(meta["paths"]) == kernels.PATHS:
            del meta["paths"]  # the default, as plans written before it existed hold it
        if meta["cmsis"] == kernels.OLDEST:
            del meta["cmsis"]  # the default, as plans written before it existed hold it
        if not meta["macro_names"]:
            del meta["macro_names"]  # every op named after itself: the hash of plans written before names
        drop = ("weights", "bias") if functions else ("weights", "bias", "function")
        meta["ops"] = [{k: v for k, v in asdict(op).items() if k not in drop} for op in self.ops]
        for op in meta["ops"]:
            if op["weight_bits"] == WEIGHT_BITS:
                del op["weight_bits"]  # the default, as plans written before it existed hold it
        return meta

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {}
        for op in self.ops:
            if op.weighted and op.weights is not None and op.bias is not None:
                arrays[f"{op.name}.weights"] = op.weights
                arrays[f"{op.name}.bias"] = op.bias
        return arrays

    @property
    def hash(self) -> str:
        """sha256 over the plan's content (formats, shifts, shapes, functions, integer arrays, the model's
        fingerprint and the data's digest), not over who wrote it when or where the files were."""
        return self._hash()

    def _hash(self, functions: bool = True, source_paths: bool = False) -> str:
        meta = self._meta(functions)
        meta.pop("version")
        if not source_paths:
            meta["source"] = {k: v for k, v in meta["source"].items() if k not in UNHASHED_SOURCE}
        h = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
        for name, arr in sorted(self._arrays().items()):
            h.update(f"{name}:{arr.dtype.str}:{arr.shape}".encode())
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()

    def files(self, directory: str | Path | None = None) -> dict[str, bytes]:
        """The bytes of plan.json and plan.npz; each states the plan's hash (plan.npz as its QVERIFY_PLAN_HASH).

        directory: the folder they are written to; the source paths are stored relative to it (POSIX
        separators), so that the bytes depend on content and where the sources are beside the output, not on
        where the checkout is. None: as they are (absolute)."""
        from qverify.outputs import NPZ_KEY

        meta = self._meta()
        if directory is not None:
            meta["source"] = relative_source(meta["source"], directory)
        meta["hash"] = self.hash
        meta["unhashed"] = [f"source.{k}" for k in UNHASHED_SOURCE]  # what a reader must not expect the hash to cover
        buf = io.BytesIO()
        np.savez(buf, allow_pickle=False, **self._arrays(), **{NPZ_KEY: np.array(self.hash)})
        return {"plan.json": json.dumps(meta, indent=1).encode(), "plan.npz": buf.getvalue()}

    def save(self, directory: str | Path) -> None:
        """Write plan.json and plan.npz into directory as one set (qverify.outputs.write_set: a reader never
        sees the two files of different plans; headers of another plan that qverify wrote there are removed)."""
        from qverify.outputs import write_set

        write_set(directory, self.files(directory), self.hash)

    @classmethod
    def load(cls, directory: str | Path) -> QuantPlan:
        """Read a plan written by save(); checks its hash, and that the folder holds one set (qverify.outputs).

        Raises:
            PlanError: missing files, unreadable content, a hash that does not match, or files of two plans
                in the folder (an interrupted write).
        """
        from qverify.outputs import check_set

        directory = Path(directory)
        check_set(directory)  # plan.json, plan.npz and the headers beside them are one set, or a PlanError
        jpath, npath = directory / "plan.json", directory / "plan.npz"
        for p in (jpath, npath):
            if not p.is_file():
                raise PlanError(
                    f"plan file {p} does not exist (run `python -m qverify quantize --out {directory}` first)"
                )
        try:
            meta = json.loads(jpath.read_text())
            with np.load(npath, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            ops = []
            # a plan written before ops named their function was hashed without them; they are chosen now
            legacy = any("function" not in o for o in meta["ops"])
            # and one written before "unhashed" was hashed over the paths in its source too
            legacy_source = meta.pop("unhashed", None) is None
            for o in meta.pop("ops"):
                for key in ("in_shape", "out_shape", "kernel", "stride", "pad", "range"):
                    o[key] = tuple(o[key])
                op = OpPlan(**o)
                if op.weighted:
                    op.weights = arrays[f"{op.name}.weights"]
                    op.bias = arrays[f"{op.name}.bias"]
                ops.append(op)
            stored = meta.pop("hash")
            meta["paths"] = tuple(meta.get("paths", kernels.PATHS))
            for key in ("input_shape", "model_input_shape", "input_range"):
                meta[key] = tuple(meta[key])
            plan = cls(ops=ops, **meta)
        except (KeyError, TypeError, ValueError) as exc:
            raise PlanError(f"plan in {directory} is malformed: {exc}") from exc
        content = plan._hash(functions=not legacy, source_paths=legacy_source)
        if content != stored:
            raise PlanError(
                f"plan in {directory} does not match its hash (edited or corrupted): "
                f"stored {stored[:12]}, content {content[:12]}"
            )
        plan.source = absolute_source(plan.source, directory)  # unhashed: read where the plan is read
        return plan


def _source_paths(source: dict, convert) -> dict:
    """source with each path of its model, weights and data (not demo, not a module:Factory) converted."""
    out = dict(source)
    for key in UNHASHED_SOURCE:
        value = out.get(key)
        if not isinstance(value, str) or not value or value == "demo" or value.startswith("demo:"):
            continue
        file, sep, attr = value.rpartition(":")
        if key == "model" and sep and file.endswith(".py"):  # file.py:Factory
            out[key] = f"{convert(file)}:{attr}"
        elif key != "model" or not sep or "/" in value or "\\" in value:
            out[key] = convert(value)  # a path; a bare module:Factory (nb:Net) is found on sys.path, as given
    return out


def relative_source(source: dict, directory: str | Path) -> dict:
    """The source's absolute paths relative to directory, with '/' (left absolute where there is no relative
    path, another drive on Windows)."""
    import os

    base = os.path.realpath(directory)

    def convert(value: str) -> str:
        if not os.path.isabs(value):
            return value
        try:
            return Path(os.path.relpath(os.path.realpath(value), base)).as_posix()
        except ValueError:
            return value

    return _source_paths(source, convert)


def absolute_source(source: dict, directory: str | Path) -> dict:
    """The inverse of relative_source: relative paths resolved against directory (absolute ones kept)."""
    base = Path(directory).resolve()
    return _source_paths(source, lambda v: v if Path(v).is_absolute() else str((base / v).resolve()))


def check_macro_names(ops: list, names: dict[str, str]) -> None:
    """A plan's macro_names name conv/dense ops of it, each a C identifier of its own, clashing with no macro.

    Raises:
        PlanError: naming the op, the stem and what is wrong.
    """
    weighted = [op.name for op in ops if KINDS.get(op.kind) is not None and KINDS[op.kind].weighted]
    for name, stem in names.items():
        if name not in weighted:
            raise PlanError(
                f"macro name {name}={stem}: the plan has no conv/dense op '{name}'; its conv/dense ops "
                f"are: {', '.join(weighted) or '(none)'}"
            )
    problem = clash({name: names.get(name) or macro_name(name) for name in weighted})
    if problem:
        raise PlanError(f"macro names: {problem}; choose another name")


def model_fingerprint(graph: Graph) -> str:
    """sha256 of the float weights and op geometry: identifies the model a plan came from."""
    h = hashlib.sha256()
    for op in graph.ops:
        h.update(f"{op.name}:{op.kind}:{op.in_shape}:{op.out_shape}:{op.kernel}:{op.stride}:{op.pad}".encode())
        for arr in (op.weights, op.bias):
            if arr is not None:
                h.update(np.ascontiguousarray(arr, dtype=np.float32).tobytes())
    return h.hexdigest()


def make_plan(
    graph: Graph,
    ranges: Ranges,
    bits: int = 16,
    rounding: str = "truncate",
    rule: str = "notebook",
    source: dict | None = None,
    fit_accumulator: bool = False,
    declared: dict[str, str] | None = None,
    paths: tuple[str, ...] = kernels.PATHS,
    macro_names: dict[str, str] | None = None,
    cmsis: str = kernels.OLDEST,
    weight_bits: dict[str, int] | None = None,
) -> QuantPlan:
    """Quantize a graph to a plan.

    Args:
        graph: the ops.
        ranges: calibrated float ranges.
        bits: storage width; 16 for q15 (the only width the kernels implement).
        rounding: 'truncate' or 'round', how the firmware's kernels are built.
        rule: format rule, see qformat.frac_bits.
        source: provenance recorded in the plan.
        fit_accumulator: lower a conv/dense op's weight format until its calibrated output,
            held at f_w + f_in in the int32 accumulator, fits (recorded as an adjustment).
            Off by default to keep the notebook's formats; an op expected to wrap is
            always listed in the plan's warnings.
        declared: {op name: C function} the firmware calls for those ops; the others get the
            fastest legal one (qverify.kernels.choose).
        paths: the code paths the firmware runs ('dsp' for Cortex-M4/M7, 'plain' for M0/M3): every
            function must meet its contract on each.
        cmsis: the oldest CMSIS_5 release the firmware may build (conditions of older releases dropped).
        macro_names: {conv/dense op name: C macro stem} for the headers (QuantPlan.macro_names); the others
            are named after the op. A stem equal to that default is not recorded.
        weight_bits: {dense op name: 8 or 16}, the width its weights and bias are quantized to; the others
            take the width of their declared function (8 for arm_fully_connected_mat_q7_vec_q15(_opt)), else 16.

    Returns:
        The plan.

    Raises:
        PlanError: a shift outside [0, 31], a bad setting or a declared function that cannot
            compute its op.
    """
    if rounding not in values(Rounding):
        raise PlanError(f"rounding '{rounding}' is not one of {', '.join(values(Rounding))}")
    if bits not in BITS:
        raise PlanError(f"bits {bits} is not supported; the CMSIS-NN kernels qverify verifies are q15 (16 bits)")
    input_frac = frac_bits(*ranges.input, bits=bits, rule=rule)
    widths = op_weight_bits(graph.ops, weight_bits, declared)
    f_in = input_frac
    ops = []
    for i, op in enumerate(graph.ops):
        lo, hi = ranges.ops[op.name]
        if KINDS[op.kind].weighted:
            planned = _plan_weighted(
                op,
                f_in,
                (lo, hi),
                bits,
                rule,
                rounding,
                fit_accumulator,
                _feeds_activation(graph.ops, i),
                widths.get(op.name, WEIGHT_BITS),
            )
        else:
            planned = _plan_plain(op, f_in, (lo, hi))
        ops.append(planned)
        f_in = planned.out_frac
    src = dict(source or {})
    src["model_fingerprint"] = model_fingerprint(graph)
    src["calib_samples"] = ranges.samples
    bad = [p for p in paths if p not in kernels.PATHS]
    if bad or not paths:
        raise PlanError(f"paths {list(paths)}: expected one or both of {', '.join(kernels.PATHS)}")
    plan = QuantPlan(
        bits,
        rounding,
        rule,
        graph.input_shape,
        graph.model_input_shape,
        input_frac,
        _pair(ranges.input),
        ops,
        graph.final_activation,
        src,
        paths=tuple(paths),
        macro_names={k: v for k, v in (macro_names or {}).items() if v != macro_name(k)},
        cmsis=cmsis,
    )
    kernels.assign(plan, declared)
    return plan


def op_weight_bits(ops, weight_bits: dict[str, int] | None, declared: dict[str, str] | None) -> dict[str, int]:
    """{op name: weight bits} for the weighted ops: as given, else the declared function's width, else 16.

    Raises:
        PlanError: an op that is not a weighted op of the graph, a width other than 8 or 16, a width no function
            of the op's kind takes (q7 weights: dense only), or one that contradicts the declared function.
    """
    weight_bits, declared = dict(weight_bits or {}), dict(declared or {})
    weighted = {op.name: op for op in ops if KINDS[op.kind].weighted}
    for name, width in weight_bits.items():
        if name not in weighted:
            raise PlanError(
                f"weight bits {name}={width}: the model has no conv/dense op '{name}'; its conv/dense ops are: "
                f"{', '.join(weighted) or '(none)'}"
            )
        if width not in WEIGHT_WIDTHS:
            raise PlanError(f"weight bits {name}={width}: expected one of {', '.join(map(str, WEIGHT_WIDTHS))}")
    out = {}
    for name, op in weighted.items():
        function = FUNCTIONS.get(declared.get(name, ""))
        width = weight_bits.get(name, function.weight_bits if function is not None else WEIGHT_BITS)
        takes = [f.name for f in KINDS[op.kind].functions if f.weight_bits == width]
        if not takes:
            raise PlanError(
                f"weight bits {name}={width}: no CMSIS-NN q15 function computes a {op.kind} op with {width}-bit "
                "weights (q7 weights with q15 activations: the dense functions arm_fully_connected_mat_q7_vec_q15 "
                "and _opt only)"
            )
        if function is not None and function.weight_bits != width:
            raise PlanError(
                f"op '{name}': {function.name} takes {function.weight_bits}-bit weights, but weight bits "
                f"{name}={width} is asked for; expected one of {', '.join(takes)} for {width}-bit weights"
            )
        out[name] = width
    return out


def _geometry(op: Op) -> dict:
    return dict(
        name=op.name,
        kind=op.kind,
        in_shape=op.in_shape,
        out_shape=op.out_shape,
        kernel=op.kernel,
        stride=op.stride,
        pad=op.pad,
    )


def _plan_plain(op: Op, f_in: int, rng) -> OpPlan:
    # ReLU, pooling and flatten keep their input's format (docs/design.md rules 1 and 5-8); the legacy
    # activations output their function's fixed format, Q0.15 (rules 10 and 11).
    fixed = KINDS[op.kind].out_frac
    adjustments = []
    if op.kind == Kind.SOFTMAX:
        adjustments.append(
            f"arm_softmax_q15 is base 2 on the integer inputs: at input frac {f_in} it computes "
            f"softmax(z * 2^{f_in} * ln 2) in Q0.15, the argmax of softmax(z) but not its scores (rule 11)"
        )
    return OpPlan(
        **_geometry(op),
        in_frac=f_in,
        out_frac=f_in if fixed is None else fixed,
        range=_pair(rng),
        adjustments=adjustments,
    )


# the input formats arm_nn_activations_direct_q15 takes: int_width 0..3 (docs/design.md rule 10)
ACTIVATION_IN_FRAC = (12, 15)
_KEEPS_FORMAT = (Kind.RELU, Kind.RELU6, Kind.MAXPOOL, Kind.AVGPOOL, Kind.GAP, Kind.FLATTEN)


def _feeds_activation(ops: list[Op], i: int) -> Op | None:
    """The sigmoid/tanh op that takes op i's output format (through ops that keep it), if any."""
    for op in ops[i + 1 :]:
        if op.kind in (Kind.SIGMOID, Kind.TANH):
            return op
        if op.kind not in _KEEPS_FORMAT:
            return None
    return None


def _pair(rng) -> tuple[float, float]:
    lo, hi = rng
    return float(lo), float(hi)


def _plan_weighted(
    op: Op,
    f_in: int,
    rng,
    bits: int,
    rule: str,
    rounding: str,
    fit_accumulator: bool,
    activation: Op | None = None,
    weight_bits: int = WEIGHT_BITS,
) -> OpPlan:
    weights, bias = op.weights, op.bias
    assert weights is not None and bias is not None  # the graph gives every weighted op both
    w_frac = frac_bits(weights.min(), weights.max(), weight_bits, rule)
    b_frac = frac_bits(bias.min(), bias.max(), weight_bits, rule)
    out_frac = frac_bits(*_pair(rng), bits=bits, rule=rule)
    adjustments, warnings = list(op.notes), []  # what the graph changed (a folded BatchNormalization, ...)
    if activation is not None and not ACTIVATION_IN_FRAC[0] <= out_frac <= ACTIVATION_IN_FRAC[1]:
        # docs/design.md rule 10: arm_nn_activations_direct_q15 takes an input of int_width 0..3
        fitted = min(max(out_frac, ACTIVATION_IN_FRAC[0]), ACTIVATION_IN_FRAC[1])
        limit = "3.4e-4 of 0 or 1" if activation.kind == Kind.SIGMOID else "2.3e-7 of -1 or 1"
        adjustments.append(
            f"output format f_out = {fitted} instead of {out_frac} for {activation.kind} op '{activation.name}': "
            f"arm_nn_activations_direct_q15 takes int_width 0 to 3 (frac {ACTIVATION_IN_FRAC[0]} to "
            f"{ACTIVATION_IN_FRAC[1]})"
            + (f"; values beyond +-8 saturate, where {activation.kind} is within {limit}" if fitted > out_frac else "")
        )
        out_frac = fitted
    # The accumulator holds the output at f_w + f_in frac bits before the shift.
    peak = max(abs(rng[0]), abs(rng[1]))
    if peak * 2.0 ** (w_frac + f_in) >= 2.0**31:
        if fit_accumulator:
            fitted = w_frac
            while peak * 2.0 ** (fitted + f_in) >= 2.0**31:
                fitted -= 1
            adjustments.append(
                f"calibrated output {peak:.4g} at f_w {w_frac} + f_in {f_in} would leave the int32 accumulator; "
                f"weights quantized at f_w = {fitted} instead"
            )
            w_frac = fitted
        else:
            warnings.append(
                f"calibrated output {peak:.4g} needs {peak * 2.0 ** (w_frac + f_in):.3g} in the int32 accumulator "
                f"(f_w {w_frac} + f_in {f_in}): expect accumulator wrap-around on the device "
                "(fit_accumulator, the default of `qverify quantize`, lowers f_w to fit)"
            )
    bias_lshift = w_frac + f_in - b_frac
    if bias_lshift < 0:
        adjustments.append(
            f"bias_lshift would be {bias_lshift} (f_w {w_frac} + f_in {f_in} - f_b {b_frac}); "
            f"bias re-quantized at f_b = {w_frac + f_in} instead of {b_frac}, bias_lshift 0"
        )
        b_frac, bias_lshift = w_frac + f_in, 0
    out_rshift = w_frac + f_in - out_frac
    if out_rshift < 0:
        adjustments.append(
            f"out_rshift would be {out_rshift} (f_w {w_frac} + f_in {f_in} - f_out {out_frac}); "
            f"output format set to f_out = {w_frac + f_in} instead of {out_frac}, out_rshift 0"
        )
        out_frac, out_rshift = w_frac + f_in, 0
    if rounding == Rounding.ROUND and out_rshift == 0:
        # CMSIS-NN 5.4.0 and 5.5.0 write NN_ROUND(s) as 1 << (s - 1): undefined for s = 0 (qverify.kernels)
        adjustments.append(
            f"out_rshift would be 0 in a rounding build, where CMSIS-NN 5.4/5.5's NN_ROUND(0) is undefined; "
            f"output format set to f_out = {out_frac - 1} instead of {out_frac}, out_rshift 1"
        )
        out_frac, out_rshift = out_frac - 1, 1
    for label, shift in (("bias_lshift", bias_lshift), ("out_rshift", out_rshift)):
        if shift > MAX_SHIFT:
            raise PlanError(
                f"op '{op.name}': {label} {shift} is outside [0, {MAX_SHIFT}] (f_w {w_frac}, f_in {f_in}, "
                f"f_b {b_frac}, f_out {out_frac}); shifts past 31 are undefined in C and differ between host and core"
            )
    if rounding == Rounding.ROUND and out_rshift == MAX_SHIFT:
        # CMSIS-NN 5.9.0 writes NN_ROUND(s) as ((0x1 << s) >> 1): for s = 31 that is INT_MIN >> 1 = -2^30, not +2^30
        # (a contract condition of Arm's functions too, kernels.py, for plans made elsewhere)
        raise PlanError(
            f"op '{op.name}': out_rshift 31 with rounding: CMSIS-NN 5.9.0's NN_ROUND(31) overflows int "
            "and adds -2^30 instead of 2^30; use --rounding truncate or narrower formats"
        )
    q_w, w_sat = quantize(weights, w_frac, weight_bits)  # int16 arrays for 8 bits too (values -128..127)
    q_b, b_sat = quantize(bias, b_frac, weight_bits)
    flat = conv_to_cmsis(q_w) if op.kind == Kind.CONV else dense_to_cmsis(q_w)
    return OpPlan(
        **_geometry(op),
        in_frac=f_in,
        out_frac=out_frac,
        range=_pair(rng),
        w_frac=w_frac,
        b_frac=b_frac,
        bias_lshift=bias_lshift,
        out_rshift=out_rshift,
        weight_saturations=w_sat,
        bias_saturations=b_sat,
        adjustments=adjustments,
        warnings=warnings,
        weights=flat,
        bias=q_b,
        weight_bits=weight_bits,
    )
