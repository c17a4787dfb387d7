"""Path and argument checks each command's run() makes first, before anything heavy is imported.

A mistyped path must fail in a fraction of a second, not after TensorFlow has loaded (seconds)
or a model has been calibrated (minutes). So this module imports only the standard library,
qverify.errors, qverify.macros and qverify.modelfile (h5py only for an HDF5 model or weights file; numpy for
a header --names-from reads), and checks only
what needs neither TensorFlow nor the model: paths exist and are of the right kind, a model or
weights file is what it claims to be (empty, zip or HDF5 by its first bytes; model or which weights
layout by its HDF5 top level), a module:Factory's module can be found (without importing it), flags
that cannot go together. Content (shapes, NaN, a plan's hash) is checked later, where it is read.

Every function takes None as "not given" and does nothing then. Messages name the flag, the
value as given, where a relative value points, and what was expected.
"""

from __future__ import annotations

import os
from pathlib import Path

from qverify import modelfile
from qverify.errors import ArgumentError, DataError, ModelError, PlanError

DEMO_SPLITS = ("train", "calib", "test")  # demo.SPLIT_SEEDS; importing qverify.demo costs numpy
DATA = "a .npy array of float inputs, or demo:<split>"


def _resolved(path: str | Path) -> str:
    """'x.npy (/cwd/x.npy)': the path as given and, when relative, what it resolves to."""
    p = Path(path)
    return str(path) if p.is_absolute() else f"{path} ({p.resolve()})"


def _named(flag: str, path: str) -> str:
    return f"{flag} {_resolved(path)}"


def input_file(flag: str, path: str | None, expected: str, error: type = ArgumentError) -> None:
    """An input the command reads: an existing, readable file."""
    if path is None:
        return
    p = Path(path)
    if p.is_file() and os.access(p, os.R_OK):
        return
    problem = "is a directory" if p.is_dir() else "is not readable" if p.is_file() else "does not exist"
    raise error(f"{_named(flag, path)} {problem}; expected {expected}")


def data(flag: str, path: str | None) -> None:
    """--data / --labels style input: a .npy file, or demo:<split> (the demo's synthetic frames)."""
    if path is not None and path.startswith("demo:"):
        split = path.split(":", 1)[1]
        if split not in DEMO_SPLITS:
            raise DataError(f"{flag} {path}: unknown demo split '{split}'; expected demo:{'|'.join(DEMO_SPLITS)}")
        return
    input_file(flag, path, DATA, DataError)


def model(spec: str | None, weights: str | None = None) -> None:
    """--model and --weights as modelfile.load_model reads them: an existing path is a saved model (its
    first bytes and, for HDF5, its layout say whether it is one); otherwise `a:B` names factory B in
    module a or in file a.py. The module is only looked up, never imported (importing runs the user's
    code, which usually imports TensorFlow)."""
    if weights is not None and (problem := modelfile.weights_problem("--weights", weights)):
        raise ModelError(problem)
    if spec is None:
        return
    if ":" in spec and not Path(spec).exists():
        problem = modelfile.factory_problem("--model", spec)
    else:
        problem = modelfile.model_problem("--model", spec)
    if problem:
        raise ModelError(problem)


def plan_dir(path: str | None) -> None:
    """--plan: a directory holding plan.json and plan.npz (their content is checked when loaded)."""
    if path is None:
        return
    for name in ("plan.json", "plan.npz"):
        if not (Path(path) / name).is_file():
            raise PlanError(
                f"--plan {path}: plan file {Path(path) / name} does not exist; expected a directory "
                f"written by `python -m qverify quantize --out {path}`"
            )


def cmsis_root(path: str | None) -> None:
    """--cmsis-root (default $QVERIFY_CMSIS_ROOT): an existing directory."""
    if path is not None and not Path(path).is_dir():
        raise ArgumentError(
            f"{_named('--cmsis-root', path)} is not a directory (also read from $QVERIFY_CMSIS_ROOT); "
            "expected a CMSIS_5 or CMSIS-NN tree"
        )


def tree_kernels(kernels: str | None, path: str | None) -> None:
    """A CMSIS tree builds its plain and its DSP path on the host, never qverify's own host conv (native_lib
    refuses it too, but only once the plan and model are loaded)."""
    if path is not None and kernels == "fast":
        raise ArgumentError(
            f"--kernels fast with --cmsis-root {path}: fast runs qverify's own host convolution, "
            "not the tree's kernels; expected --kernels dsp or --kernels plain"
        )


def _parent(flag: str, path: str) -> None:
    parent = Path(path).parent
    if not parent.is_dir():
        raise ArgumentError(
            f"{flag} {path}: directory {_resolved(parent)} does not exist; expected a path in an existing directory"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ArgumentError(f"{flag} {path}: directory {parent} is not writable")


def output_file(flag: str, path: str | None) -> Path | None:
    """An output file (--json, --junit, --npz): its directory exists and it is not a directory itself."""
    if path is None:
        return None
    if Path(path).is_dir():
        raise ArgumentError(f"{_named(flag, path)} is a directory; expected a file name")
    _parent(flag, path)
    return Path(path)


def output_dir(flag: str, path: str | None) -> Path | None:
    """An output directory (--out, --html): created if missing, so only its parent must exist."""
    if path is None:
        return None
    if Path(path).exists() and not Path(path).is_dir():
        raise ArgumentError(f"{_named(flag, path)} is an existing file; expected a directory (created if missing)")
    _parent(flag, path)
    return Path(path)


def choices(flag: str, value: str, allowed: tuple[str, ...], count: int | None = None) -> list[str]:
    """A comma-separated list of distinct names from `allowed` (exactly `count` of them if given)."""
    names = [v.strip() for v in value.split(",") if v.strip()]
    bad = [n for n in names if n not in allowed]
    if bad or not names or len(set(names)) != len(names) or (count is not None and len(names) != count):
        many = f"{count} different" if count else "distinct"
        raise ArgumentError(f"{flag} {value}: expected {many} names from {', '.join(allowed)}, comma-separated")
    return names


def header_flags(args) -> None:
    """--header / --sample-header / --map and the model flags that go with them."""
    header, sample = getattr(args, "header", None), getattr(args, "sample_header", None)
    input_file("--header", header, "a weights.h written by qverify, the notebook or by hand")
    input_file("--sample-header", sample, "a sample_input_output.h beside the weights.h")
    if sample is not None and header is None:
        raise ArgumentError(
            f"--sample-header {sample} needs --header (the weights.h whose integers it is checked against)"
        )
    if getattr(args, "map", None) and header is None:
        raise ArgumentError("--map names the macros of a header: it needs --header WEIGHTS_H")
    spec, weights = getattr(args, "model", None), getattr(args, "weights", None)
    if getattr(args, "plan", None) and (spec or weights):
        raise ArgumentError(f"--plan {args.plan} with --model/--weights: give the plan or the model, not both")
    if weights is not None and spec is None:
        raise ArgumentError(f"--weights {weights} needs --model (the architecture the weights are loaded into)")
    model(spec, weights)


def macro_map(flag: str, values: list[str] | None) -> dict[str, str]:
    """--map OP=STEM[,OP=STEM...] (repeatable) as {op name: STEM}: C identifiers, one op each, one stem each,
    none of qverify's own macros (qverify.macros). Whether the ops exist is known once the model is loaded."""
    from qverify.macros import clash

    names: dict[str, str] = {}
    for value in values or []:
        for item in (v.strip() for v in value.split(",")):
            op, sep, stem = item.partition("=")
            op, stem = op.strip(), stem.strip()
            if not sep or not op or not stem:
                raise ArgumentError(
                    f"{flag} {value}: '{item}' is not OP=STEM; expected e.g. {flag} conv2d=CONV1 "
                    "(for CONV1_WT, CONV1_BIAS ...), comma-separated or repeated"
                )
            if op in names:
                raise ArgumentError(f"{flag} {value}: op '{op}' is named twice ({names[op]}, {stem})")
            names[op] = stem
    problem = clash(names)
    if problem:
        raise ArgumentError(f"{flag}: {problem}")
    return names


def header_stems(flag: str, path: str | None) -> list[str] | None:
    """--names-from WEIGHTS_H: its layers' macro stems (the STEM of each STEM_WT) in file order, checked to be
    C identifiers of their own that clash with no macro of qverify's."""
    if path is None:
        return None
    input_file(flag, path, "a weights.h whose STEM_WT macros name the conv/dense ops in order")
    from qverify.header import layer_stems  # numpy only, no TensorFlow

    return layer_stems(path, _named(flag, path))
