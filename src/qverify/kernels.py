"""The contracts of the C functions the runner calls, and which one each op uses.

The functions themselves, and the kinds they compute, are records in qverify.opkinds.

Every op of a plan names the function the firmware calls for it (``OpPlan.function``).
``choose`` picks it the way a firmware engineer would: the fastest of Arm's legacy q15
functions whose contract the op meets, then Arm's legal fallbacks, and one of qverify's
``qv_`` kernels only where Arm has no legal function.  ``violations`` checks an op
against its function's contract before anything runs; ``call`` gives the exact
arguments the runner passes (the same for the host build and the target).

A contract is what Arm's code needs, not only what its header documents.  The
``ARM_MATH_DSP`` paths (Cortex-M4/M7) of CMSIS_5 5.4.0-5.9.0 assume more than the
documentation says, and break silently where the plain path (M0/M3) is right:

* ``arm_convolve_HWC_q15_fast(_nonsquare)`` compute output pixels two at a time along
  x and reset their im2col pointer only after a pair, so they need an even output width;
* their ``uint16_t`` inner loop count is (ch_in * k_x * k_y) / 2 (basic: / 4), so a
  larger window truncates the sum;
* the DSP paths of the convolutions count pixels and window positions in ``int16_t``;
* CMSIS-NN 5.4.0 and 5.5.0 write NN_ROUND(s) as 1 << (s - 1): undefined for s = 0.
* CMSIS-NN 5.9.0 writes NN_ROUND(s) as (0x1 << s) >> 1: for s = 31 a signed overflow, which
  GCC and Clang make -2^30 (5.4.0-5.8.0 add +2^30), so a rounding build needs out_shift <= 30.

* the plain path (Cortex-M0/M3) of 5.4.0-5.7.0 keeps the input row and column in ``signed char``.

Each condition belongs to the code path whose code needs it; a plan names the paths its firmware
runs (``QuantPlan.paths``: both by default, so a plan that passes runs the same on an M3, an M4
and an M7), and the commands check the paths they verify.

A 1-D convolution has the same activation bytes and weight order whichever spatial
axis holds its length (the other is 1), so the runner may pass the length as x or y;
``choose`` takes x when that meets a contract the other way does not (the fast
convolutions need the pairs along x).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from qverify.activations import INT_WIDTH_MAX, SOFTMAX_DIM_MAX
from qverify.choices import CMSIS_RELEASES, CodePath, Kernels, Rounding
from qverify.errors import PlanError
from qverify.layout import deinterleave, interleave
from qverify.opkinds import FUNCTION_KINDS, FUNCTIONS, KINDS, Function, Kind, elems
from qverify.plancheck import MAX_SHIFT

UINT16_MAX = 0xFFFF
INT16_MAX = 0x7FFF
INT8_MIN, INT8_MAX = -128, 127
# runner flag (csrc/qv_runner.h): pass the plan's H as x (and W as y) to the function
CALL_LENGTH_ON_X = 1
# QV_GUARD_WORDS (csrc/qv_runner.h): the runner's guard words in front of its first scratch region and after
# each of its three (footprint and network.c size the scratch with them; test_footprint holds them to the C)
GUARD_WORDS = 16
# what the kernels and the runner return (arm_status, and the runner's own QV_STATUS_*)
STATUS_NAMES = {
    0: "ARM_MATH_SUCCESS",
    -1: "ARM_MATH_ARGUMENT_ERROR",
    -2: "ARM_MATH_LENGTH_ERROR",
    -3: "ARM_MATH_SIZE_MISMATCH",
    -100: "QV_STATUS_OVERRUN",
    -101: "QV_STATUS_NO_FUNCTION: not in this build",
}


# the order choose() tries them in: fastest first
PREFERENCE: dict[str, tuple[Function, ...]] = {name: kind.functions for name, kind in KINDS.items()}


@dataclass(frozen=True)
class Call:
    """The arguments the runner passes for one op, named as Arm names them (x = width, y = height)."""

    function: Function
    length_on_x: bool
    in_x: int
    in_y: int
    ch_in: int
    out_x: int
    out_y: int
    ch_out: int
    k_x: int
    k_y: int
    pad_x: int
    pad_y: int
    stride_x: int
    stride_y: int
    bias_shift: int
    out_shift: int

    @property
    def flags(self) -> int:
        return CALL_LENGTH_ON_X if self.length_on_x else 0


@dataclass(frozen=True)
class Violation:
    """An op whose call breaks its function's contract."""

    op: str
    function: str
    condition: str  # what the function needs, with this op's value
    effect: str  # what Arm's code does then

    def __str__(self) -> str:
        return f"{self.op}: {self.function} needs {self.condition}; {self.effect}"


def is_1d(op) -> bool:
    """A conv over a 1-D signal (plan layout H = L, W = 1): its length may be passed on either axis."""
    return (
        op.kind == Kind.CONV and op.in_shape[1] == 1 and op.kernel[1] == 1 and op.pad[1] == 0 and op.out_shape[1] == 1
    )


def call(op, function: Function | str | None = None, length_on_x: bool | None = None) -> Call:
    """The call the runner makes for op with function (default: the plan's).

    length_on_x: pass a 1-D conv's length as x (default: whenever the op is 1-D).
    Raises PlanError when a dimension does not fit the functions' ``uint16_t`` arguments.
    """
    fn = FUNCTIONS[function] if isinstance(function, str) else function or FUNCTIONS[op.function]
    (in_h, in_w, ch_in), (out_h, out_w, ch_out) = op.in_shape, op.out_shape
    (k_h, k_w), (s_h, s_w), (p_h, p_w) = op.kernel, op.stride, op.pad
    dims = (in_h, in_w, ch_in, out_h, out_w, ch_out, k_h, k_w, s_h, s_w, p_h, p_w)
    if any(not 0 <= d <= UINT16_MAX for d in dims):
        raise PlanError(
            f"op '{op.name}': a dimension in {dims} does not fit the kernels' uint16_t arguments (0 to {UINT16_MAX})"
        )
    on_x = is_1d(op) if length_on_x is None else (length_on_x and is_1d(op))
    if on_x:  # the plan's H becomes x: same bytes, same weight order (one of k_h, k_w is 1)
        geo = dict(
            in_x=in_h,
            in_y=in_w,
            out_x=out_h,
            out_y=out_w,
            k_x=k_h,
            k_y=k_w,
            pad_x=p_h,
            pad_y=p_w,
            stride_x=s_h,
            stride_y=s_w,
        )
    else:
        geo = dict(
            in_x=in_w,
            in_y=in_h,
            out_x=out_w,
            out_y=out_h,
            k_x=k_w,
            k_y=k_h,
            pad_x=p_w,
            pad_y=p_h,
            stride_x=s_w,
            stride_y=s_h,
        )
    return Call(
        fn, on_x, ch_in=ch_in, ch_out=ch_out, bias_shift=op.bias_lshift or 0, out_shift=op.out_rshift or 0, **geo
    )


PATHS = tuple(CodePath)  # ARM_MATH_DSP builds (Cortex-M4/M7) and plain-C builds (Cortex-M0/M3)
BOTH = PATHS
# The CMSIS_5 releases qverify's contracts cover. A plan names the oldest one its firmware may build
# (QuantPlan.cmsis, default the oldest here): a condition of Arm's code up to release X holds for it
# when the plan's release is X or older.
OLDEST = CMSIS_RELEASES[0]
# (condition, effect, the code paths whose code needs it, the last release whose code needs it or None: all)
Condition = tuple[str, str, tuple[str, ...], str | None]


def release(version: str) -> tuple[int, ...]:
    """'5.8.0' -> (5, 8, 0), for ordering releases."""
    return tuple(int(part) for part in version.split("."))


def _conv_violations(c: Call) -> list[Condition]:
    """(condition, effect, the code paths it holds for) a conv call breaks."""
    fn = c.function
    out: list[Condition] = []
    if fn.square and not (
        c.in_x == c.in_y and c.k_x == c.k_y and c.pad_x == c.pad_y and c.stride_x == c.stride_y and c.out_x == c.out_y
    ):
        out.append(
            (
                f"a square image, kernel, padding and stride (this op: input {c.in_x}x{c.in_y}, kernel "
                f"{c.k_x}x{c.k_y}, padding {c.pad_x}/{c.pad_y}, stride {c.stride_x}/{c.stride_y})",
                "it takes one size for both axes and would compute another convolution",
                BOTH,
                None,
            )
        )
    if fn.fast and (c.ch_in % 2 or c.ch_out % 2):
        out.append(
            (
                f"even input and output channels (this op: {c.ch_in} in, {c.ch_out} out)",
                "Arm's code returns ARM_MATH_SIZE_MISMATCH and writes no output",
                BOTH,
                None,
            )
        )
    if fn.fast and c.out_x % 2:
        # Arm's DSP path computes a pair when x is odd and resets its im2col pointer only then
        if c.out_x == 1:
            effect = "Arm's Cortex-M4/M7 build computes no output" + (
                " and overruns bufferA (its im2col pointer is never reset)" if c.out_y > 1 else ""
            )
        elif c.out_y == 1:
            effect = "Arm's Cortex-M4/M7 build never writes the last output pixel"
        else:
            effect = (
                "Arm's Cortex-M4/M7 build pairs pixels across rows: outputs shift by one pixel from the "
                "second row on, the last is never written, and bufferA overruns by one column"
            )
        out.append((f"an even output width (this op: {c.out_x})", effect, (CodePath.DSP,), None))
    window = c.ch_in * c.k_x * c.k_y
    if fn.loop_shift and window >> fn.loop_shift > UINT16_MAX:
        out.append(
            (
                f"ch_in * k_x * k_y below {1 << (16 + fn.loop_shift)} (this op: {window})",
                f"its uint16_t loop count (ch_in * k_x * k_y) >> {fn.loop_shift} truncates on Cortex-M4/M7, "
                "summing only part of each window",
                (CodePath.DSP,),
                None,
            )
        )
    if fn.arm_conv:
        # the last input position a window reaches, and the first (negative in the padding), per axis
        reach_x = (c.out_x - 1) * c.stride_x - c.pad_x + c.k_x
        reach_y = (c.out_y - 1) * c.stride_y - c.pad_y + c.k_y
        if max(c.out_x, c.out_y, reach_x, reach_y) > INT16_MAX:
            out.append(
                (
                    f"output sizes and window reach up to {INT16_MAX} (this op: output {c.out_x}x{c.out_y}, "
                    f"reach {reach_x}x{reach_y})",
                    "its Cortex-M4/M7 build counts pixels in int16_t, which wraps",
                    (CodePath.DSP,),
                    None,
                )
            )
        # CMSIS_5 5.4.0-5.7.0's plain path holds the input row and column in `signed char`
        if max(reach_x, reach_y) - 1 > INT8_MAX or max(c.pad_x, c.pad_y) > -INT8_MIN:
            out.append(
                (
                    f"window positions within {INT8_MIN}..{INT8_MAX} on each axis (this op: up to "
                    f"{max(reach_x, reach_y) - 1})",
                    "the Cortex-M0/M3 build of CMSIS_5 5.4.0 to 5.7.0 keeps the input row and column in "
                    "signed char, which wraps: it reads the wrong pixels",
                    (CodePath.PLAIN,),
                    "5.7.0",
                )
            )
    return out


def _activation_violations(op) -> list[Condition]:
    """arm_nn_activations_direct_q15's int_width (15 - the input's frac bits) within its table's range."""
    width = 15 - op.in_frac
    fmt = f"input Q{width}.{op.in_frac}"
    if width < 0:
        return [
            (
                f"int_width 0 to {INT_WIDTH_MAX}, an input format of frac 12 to 15 (this op: {fmt}, int_width {width})",
                f"int_width is a uint16_t: {width} becomes {width & 0xFFFF} and its shift 11 - "
                "int_width is negative, undefined in C",
                BOTH,
                None,
            )
        ]
    if width > INT_WIDTH_MAX:
        effect = (
            "its table index v >> (11 - int_width) needs more than the table's 8 bits: Arm's code wraps it "
            "to uint8_t and reads f at x wrapped into [-8, 8) for |x| >= 8 (a sigmoid of 9 gives "
            "sigmoid(-7))"
            if width <= 11
            else "its shift 11 - int_width is negative, undefined in C"
        )
        return [
            (
                f"int_width at most {INT_WIDTH_MAX}, an input format of frac 12 to 15 (this op: {fmt}, int_width "
                f"{width})",
                effect,
                BOTH,
                None,
            )
        ]
    # 5.4.0-5.7.0 clamp the table index with __USAT(v >> shift, 8) instead of taking its low 8 bits
    return [
        (
            "a CMSIS_5 release of 5.8.0 or later (declare it: quantize --cmsis-version 5.8.0, gate "
            'cmsis_version = "5.8.0"; or keep the activation in float: --final-activation float)',
            "in 5.4.0 to 5.7.0 it saturates its table index at 0 and 255, so every negative input (and, at int_width "
            "3, the top bin) reads the wrong table entries: the outputs differ from 5.8.0 on, and from the "
            "definition",
            BOTH,
            "5.7.0",
        )
    ]


def violations(op, rounding: str, paths: tuple[str, ...] = PATHS, cmsis: str = OLDEST) -> list[Violation]:
    """Every condition of the op's function that the op breaks on the given code paths of the CMSIS_5 releases from
    `cmsis` on (empty: the call is safe on every core those paths build for, in each of those releases)."""
    fn = FUNCTIONS[op.function]
    c = call(op, fn)
    kinds = FUNCTION_KINDS[fn.name]
    kind = op.kind if op.kind in kinds else kinds[0]
    found = _conv_violations(c) if kind == Kind.CONV else []
    if kind in (Kind.SIGMOID, Kind.TANH):
        found += _activation_violations(op)
    if kind == Kind.SOFTMAX and op.in_shape[2] > SOFTMAX_DIM_MAX:
        found.append(
            (
                f"dim_vec (the channels) up to {SOFTMAX_DIM_MAX} (this op: {op.in_shape[2]})",
                "its q31 sum of up to 2^16 per value overflows past that and its loop counter is 16 bits: "
                "the outputs are wrong",
                BOTH,
                None,
            )
        )
    if kind == Kind.DENSE:
        n_in, n_out = op.in_shape[0] * op.in_shape[1] * op.in_shape[2], op.out_shape[2]
        if max(n_in, n_out) > UINT16_MAX:
            found.append(
                (
                    f"dim_vec and num_of_rows up to {UINT16_MAX} (this op: {n_in} in, {n_out} out)",
                    "its uint16_t arguments truncate",
                    BOTH,
                    None,
                )
            )
    if fn.shifts and rounding == Rounding.ROUND and c.out_shift == 0:
        found.append(
            (
                "out_shift of at least 1 in a rounding build (this op: 0)",
                "CMSIS-NN 5.4.0 and 5.5.0 compute NN_ROUND(0) as 1 << -1, undefined in C (0 on the core, 2^31 on x86)",
                BOTH,
                "5.5.0",
            )
        )
    if fn.shifts and fn.arm and rounding == Rounding.ROUND and c.out_shift == MAX_SHIFT:
        # a condition of the newest release: it holds for every plan, whose firmware may build 5.9.0
        found.append(
            (
                f"out_shift of at most {MAX_SHIFT - 1} in a rounding build (this op: {MAX_SHIFT})",
                "CMSIS-NN 5.9.0 computes NN_ROUND(31) as (0x1 << 31) >> 1, a signed overflow that the compilers "
                "make -2^30: it subtracts 2^30 where 5.4.0-5.8.0 and the shift model add it",
                BOTH,
                None,
            )
        )
    return [
        Violation(op.name, fn.name, cond, effect)
        for cond, effect, where, until in found
        if set(where) & set(paths) and (until is None or release(until) >= release(cmsis))
    ]


def check_function(op, name: str) -> Function:
    """The function called name, if it can compute op at all (else PlanError naming the ones that can)."""
    fn = FUNCTIONS.get(name)
    allowed = [f.name for f in PREFERENCE.get(op.kind, ())]
    if fn is None or op.kind not in FUNCTION_KINDS[fn.name]:
        what = (
            "is not a function qverify runs"
            if fn is None
            else f"computes {'/'.join(FUNCTION_KINDS[fn.name])} ops, not {op.kind}"
        )
        raise PlanError(f"kernel for op '{op.name}': {name} {what}; expected one of {', '.join(allowed)}")
    bits = getattr(op, "weight_bits", 16)
    if fn.weight_bits != bits:
        same = [f.name for f in PREFERENCE[op.kind] if f.weight_bits == bits]
        raise PlanError(
            f"kernel for op '{op.name}': {name} takes {fn.weight_bits}-bit weights, the op's are {bits}-bit; "
            f"quantize with --weight-bits {op.name}={fn.weight_bits} (config [tool.qverify.weight_bits]), or "
            f"declare one of {', '.join(same)}"
        )
    return fn


def choose(op, rounding: str, paths: tuple[str, ...] = PATHS, cmsis: str = OLDEST) -> str:
    """The function a firmware engineer would call for op: the fastest whose contract the op meets.

    Arm's functions come first; qverify's qv_ kernel only where Arm has no legal one. Only functions of the
    op's weight width are candidates, and none that reads its weights in an interleaved order (Arm's _opt
    fully-connected functions): that order changes the header's layout, so it is the firmware's to declare.
    Where none is legal (e.g. a shape no convolution allows) the last one is returned and
    violations() names what is broken.
    """
    bits = getattr(op, "weight_bits", 16)
    candidates = [f for f in PREFERENCE[op.kind] if f.weight_bits == bits and not f.order]
    for fn in candidates:
        trial = _with_function(op, fn.name)
        if not violations(trial, rounding, paths, cmsis):
            return fn.name
    return candidates[-1].name


def _with_function(op, name: str):
    trial = copy.copy(op)
    trial.function = name
    return trial


def assign(plan, declared: dict[str, str] | None = None) -> None:
    """Set every op's function: declared ones ({op name: function}) as given, the others kept or chosen.

    Raises PlanError for an unknown op or a function that cannot compute the op.
    """
    declared = dict(declared or {})
    names = {op.name for op in plan.ops}
    unknown = sorted(set(declared) - names)
    if unknown:
        raise PlanError(
            f"kernel declared for op(s) {', '.join(unknown)} not in the plan; ops are: "
            f"{', '.join(op.name for op in plan.ops)}"
        )
    for op in plan.ops:
        if op.name in declared:
            op.function = check_function(op, declared[op.name]).name
        elif op.function is None:
            op.function = choose(op, plan.rounding, plan.paths, plan.cmsis)
        else:
            check_function(op, op.function)


def stored(op) -> tuple[np.ndarray, np.ndarray]:
    """A weighted op's weights and bias as the firmware holds them for its function: in the order the function
    reads (an _opt function's interleave) and at its width (int8 for q7_t, else int16). weights.h, the native
    engine and the target image all take the arrays from here; the plan keeps [out][in]."""
    fn = FUNCTIONS[op.function]
    dtype = np.int8 if fn.weight_bits == 8 else np.int16
    weights = np.asarray(op.weights)
    if fn.order:
        weights = interleave(weights, elems(op.in_shape), op.out_shape[2], fn.order)
    return np.ascontiguousarray(weights, dtype=dtype), np.ascontiguousarray(op.bias, dtype=dtype)


def from_stored(op, weights: np.ndarray) -> np.ndarray:
    """The inverse of stored() for the weights: the function's order back to the plan's [out][in]."""
    fn = FUNCTIONS[op.function]
    if not fn.order:
        return np.asarray(weights)
    return deinterleave(weights, elems(op.in_shape), op.out_shape[2], fn.order)


def notes(plan) -> list[str]:
    """Why each conv that calls one of qverify's own kernels does not call one of Arm's."""
    return [
        f"{op.name}: {op.function}, qverify's kernel (ship cmsis/Source/{op.function}.c): no Arm q15 "
        f"convolution takes this shape on the {' and '.join(plan.paths)} path: "
        f"{reason_no_arm(op, plan.rounding, plan.paths, plan.cmsis)}"
        for op in plan.ops
        if op.kind == Kind.CONV and not FUNCTIONS[op.function].arm
    ]


def reason_no_arm(op, rounding: str, paths: tuple[str, ...] = PATHS, cmsis: str = OLDEST) -> str:
    """Why each of Arm's convolutions is ruled out for op (for the report)."""
    parts = []
    for fn in PREFERENCE[Kind.CONV]:
        if fn.arm:
            v = violations(_with_function(op, fn.name), rounding, paths, cmsis)
            if v:
                parts.append(f"{fn.name} needs {v[0].condition}")
    return "; ".join(parts)


def check_plan(plan, rounding: str | None = None, paths: tuple[str, ...] | None = None) -> list[Violation]:
    """Every contract violation of the plan's calls, for the firmware's rounding build and code paths (default
    the plan's)."""
    return [
        v for op in plan.ops for v in violations(op, rounding or plan.rounding, tuple(paths or plan.paths), plan.cmsis)
    ]


def paths_of(kernels) -> tuple[str, ...]:
    """The device code paths host kernel builds stand for ('fast' computes what the plain path does)."""
    names = [kernels] if isinstance(kernels, str) else list(kernels)
    return tuple(p for p in PATHS if p in {CodePath.PLAIN if k == Kernels.FAST else k for k in names})
