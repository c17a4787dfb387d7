"""Gate configuration: `[tool.qverify]` in a firmware repo's pyproject.toml, or a qverify.toml.

    cfg = load_config(find_config(Path.cwd()))     # ConfigError names the key and the file

Paths are relative to the file that holds them. An empty table means the
demo (the shipped model and its synthetic data), so the gate can be tried in
a minute. Unknown keys, wrong types and impossible combinations are errors
that name the key and the file. Reading a configuration never imports
TensorFlow.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from qverify.choices import (
    BITS,
    CMSIS_RELEASES,
    COMPARED_ENGINES,
    CodePath,
    Cpu,
    Engine,
    FinalActivation,
    FormatRule,
    Kernels,
    Rounding,
    values,
)
from qverify.errors import QVerifyError
from qverify.macros import clash

# the gate's `engines`: the shift model (always the reference) and the engines compared with it
GATE_ENGINES = (Engine.SHIFT, *COMPARED_ENGINES)
CONFIG_FILES = ("qverify.toml", "pyproject.toml")


class ConfigError(QVerifyError):
    """The configuration file or one of its keys is wrong."""


@dataclass
class Config:
    """What the gate checks and how.

    Attributes:
        model: a saved model (.keras/.h5), `module:Factory` or `file.py:Factory` (imported from the
            configuration's folder); None or "demo": the shipped demo.
        weights: weights file loaded into the model (the notebook's tf.h5).
        data: float input .npy (N, ...): evaluated, and calibrates the plan unless calib_data is given
            (None: the demo's).
        labels: .npy of class indices (N,) or one-hot (N, K) for `data`: enables the accuracy check.
        calib_data: float input .npy that calibrates the plan (None: `data`, on samples apart from the
            evaluated ones).
        calib_samples: how many samples calibrate: `calib_samples = N` the first N, "START:STOP" that
            range (None: all of calib_data; with one `data` file the first half, at most 1000; the demo: 1000).
        calib_start: index of the first calibration sample (START of a range; 0 for a count).
        calib_overlap: allow evaluated samples that calibrated the plan (one `data` file); a count in
            `samples` then starts at sample 0 again. Without it such an overlap is refused.
        bits, rounding, rule, fit_accumulator: quantization settings (see `qverify quantize`);
            rounding must be how the firmware builds CMSIS-NN (truncate = ARM_NN_TRUNCATE defined).
        kernels: native kernel paths checked, any of 'dsp', 'plain', 'fast' (the first also runs the
            data-set evaluation). Default 'dsp' and 'plain', the paths firmware runs ('fast' is the
            host SIMD conv); with a cmsis_root only 'plain' can be built on the host.
        cmsis_root: build the arm_* kernels from this CMSIS tree (None: qverify's bundled cmsis/).
        functions: `[tool.qverify.functions]`, op name → the C function the firmware calls for it
            (e.g. conv2 = "arm_convolve_HWC_q15_basic"); the gate verifies exactly that call, its
            contract included. Ops not listed get the fastest legal function.
        weight_bits: `[tool.qverify.weight_bits]`, dense op name → 8 or 16, the width of its weights and bias
            (`qverify quantize --weight-bits`; 8 needs arm_fully_connected_mat_q7_vec_q15 or its _opt). Ops not
            listed take their declared function's width, else 16.
        engines: engines compared op by op with the shift model: 'native' and/or 'target'
            ('shift' may be listed; it is always the reference).
        target_cpu: core the target engine emulates ('cortex-m3', 'cortex-m4', 'cortex-m7').
        samples: how many samples are evaluated and compared: `samples = N` takes N (the first N of a
            data file of their own, else the N right after the calibration samples), `samples =
            "START:STOP"` that range (demo: its test split).
        sample_start: index of the first sample (START of a range; None for a count).
        require_bit_exact: every op bit-exact between the shift model and each engine. False: the
            bit-exact checks are still computed and reported but pass ("not required").
        max_accuracy_drop: largest allowed drop of quantized accuracy below float, in percentage
            points (1.0 = one point, e.g. 91.0% → 90.0%); None: reported, never fails. Needs labels
            (the demo has them).
        min_sqnr_db: smallest allowed SQNR of every op against the float model, dB (None: reported only).
        fail_on_overflow: fail an op whose int32 accumulator wraps on some sample.
        out: where `qverify gate` writes plan.json/.npz, weights.h, sample_input_output.h and
            network.c when every check passes.
        header: header mode: the committed weights.h, verified against the model's plan and never
            written (a difference fails the gate with diff-header's text); nothing is written to `out`.
        sample_header: the committed sample_input_output.h, checked against what the plan computes from
            its INPUT_DATA (header mode only).
        header_map: `[tool.qverify.header_map]`, op name → the header's macro stem where they differ
            (e.g. conv2d = "CONV1"): in regenerate mode the names of the macros written to `out` (recorded
            in the plan, as `quantize --map` does); in header mode the committed header's names too (without
            it, layers match by name, or in order when no name matches).
        names_from: regenerate mode: a weights.h (the notebook's) whose STEM_WT macros name the conv/dense
            ops in order, as `qverify quantize --names-from`; not with header_map.
        final_activation: 'float' or 'device': a final sigmoid/softmax as the plan's last op (default as
            `qverify quantize --final-activation`: device where Arm's function is right in every release
            from cmsis_version on).
        cmsis_version: the oldest CMSIS_5 release the firmware may build (default 5.4.0): kernel
            conditions of older releases only are dropped (see `qverify quantize --cmsis-version`).
        pytest: collect the checks in every pytest run (otherwise only with `pytest --qverify`).
        source: the file (and table) the configuration came from, for messages.
        root: the directory holding that file.
    """

    model: str | None = None
    weights: str | None = None
    data: str | None = None
    labels: str | None = None
    calib_data: str | None = None
    calib_samples: int | None = None
    calib_start: int = 0
    calib_overlap: bool = False
    bits: int = 16
    rounding: str = "truncate"
    rule: str = "notebook"
    fit_accumulator: bool = True
    kernels: list[str] = field(default_factory=lambda: list(values(CodePath)))  # the paths firmware runs
    cmsis_root: str | None = None
    functions: dict[str, str] = field(default_factory=dict)
    weight_bits: dict[str, int] = field(default_factory=dict)
    engines: list[str] = field(default_factory=lambda: ["native"])
    target_cpu: str = "cortex-m4"
    samples: int = 64
    sample_start: int | None = None
    require_bit_exact: bool = True
    max_accuracy_drop: float | None = None
    min_sqnr_db: float | None = None
    fail_on_overflow: bool = False
    out: str = "qverify_out"
    pytest: bool = False
    header: str | None = None
    sample_header: str | None = None
    header_map: dict[str, str] = field(default_factory=dict)
    names_from: str | None = None
    final_activation: str | None = None  # None: workflow.device_activation decides
    cmsis_version: str = CMSIS_RELEASES[0]
    source: str = ""
    root: str = "."

    @property
    def compared(self) -> list[str]:
        """The engines compared with the shift model, in a fixed order ('native', 'target')."""
        return [e for e in COMPARED_ENGINES if e in self.engines]

    @property
    def is_demo(self) -> bool:
        return self.model is None

    def effective(self) -> dict:
        """Every setting that changes what the gate computes (not where it writes or when it runs)."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("out", "pytest", "source", "root")
        }


_KNOWN = tuple(f.name for f in fields(Config) if f.name not in ("source", "root", "sample_start", "calib_start"))
_PATH_KEYS = (
    "model",
    "weights",
    "data",
    "labels",
    "calib_data",
    "cmsis_root",
    "out",
    "header",
    "sample_header",
    "names_from",
)
_MUST_EXIST = ("weights", "data", "labels", "calib_data", "header", "sample_header", "names_from")
_CHOICES = {
    "rounding": values(Rounding),
    "rule": values(FormatRule),
    "bits": BITS,
    "target_cpu": values(Cpu),
    "final_activation": values(FinalActivation),
    "cmsis_version": CMSIS_RELEASES,
}
_LIST_CHOICES = {"kernels": values(Kernels), "engines": values(GATE_ENGINES)}
_TYPES = {
    "model": str,
    "weights": str,
    "data": str,
    "labels": str,
    "calib_samples": int,
    "bits": int,
    "calib_data": str,
    "calib_overlap": bool,
    "header": str,
    "sample_header": str,
    "header_map": dict,
    "names_from": str,
    "rounding": str,
    "rule": str,
    "fit_accumulator": bool,
    "kernels": list,
    "cmsis_root": str,
    "functions": dict,
    "weight_bits": dict,
    "engines": list,
    "target_cpu": str,
    "samples": int,
    "require_bit_exact": bool,
    "max_accuracy_drop": float,
    "min_sqnr_db": float,
    "fail_on_overflow": bool,
    "out": str,
    "pytest": bool,
    "final_activation": str,
    "cmsis_version": str,
}
_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a table",
}


def find_config(start: str | Path) -> Path | None:
    """The nearest qverify.toml, or pyproject.toml with a [tool.qverify] table, from start upwards.

    Raises:
        ConfigError: a pyproject.toml on the way is not valid TOML.
    """
    start = Path(start).resolve()
    for d in (start, *start.parents):
        if (d / "qverify.toml").is_file():
            return d / "qverify.toml"
        py = d / "pyproject.toml"
        if py.is_file() and "qverify" in _read(py).get("tool", {}):
            return py
    return None


def _table(path: Path) -> tuple[dict, str]:
    """(the qverify table of a configuration file, unvalidated; how messages name it)."""
    raw = _read(path)
    if path.name == "pyproject.toml" or "tool" in raw:
        table = raw.get("tool", {}).get("qverify")
        if table is None:
            raise ConfigError(f"{path}: has no [tool.qverify] table")
        where = f"{path} [tool.qverify]"
    else:
        table, where = raw, str(path)  # a qverify.toml may hold the keys at top level
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: 'qverify' must be a table")
    return table, where


def raw_table(path: str | Path) -> dict:
    """The qverify table of a configuration file, unvalidated.

    Raises:
        ConfigError: unreadable file or no [tool.qverify] table in a pyproject.toml.
    """
    return _table(Path(path))[0]


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read TOML: {exc}") from exc


def load_config(path: str | Path) -> Config:
    """Read and validate a configuration file: a pyproject.toml's [tool.qverify], or a qverify.toml
    (keys at top level or under [tool.qverify]).

    Raises:
        ConfigError: unreadable file, unknown key, wrong type or value; the message names key and file.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise ConfigError(f"configuration file {path} does not exist")
    table, where = _table(path)
    return parse_table(table, path.parent, where)


def _sample_range(text: str, where: str, key: str = "samples") -> tuple[int, int]:
    """'START:STOP' → (START, STOP - START)."""
    start, sep, stop = text.partition(":")
    try:
        lo, hi = int(start), int(stop)
    except ValueError:
        lo = hi = -1
    if not sep or lo < 0 or hi <= lo:
        raise ConfigError(
            f"{where}: '{key}' must be a positive integer or a range \"START:STOP\" with "
            f"0 <= START < STOP, got {text!r}"
        )
    return lo, hi - lo


def _type_ok(value, expected: type) -> bool:
    if isinstance(value, bool):
        return expected is bool
    if expected is float:
        return isinstance(value, (int, float))
    return isinstance(value, expected)


def parse_table(table: dict, base: Path, where: str) -> Config:
    """Validate a [tool.qverify] table; relative paths are resolved against base.

    Raises:
        ConfigError: "<where>: unknown key 'x' (known keys: …)", "<where>: 'samples' must be an
            integer, got str '8'", a missing file, or keys that do not go together.
    """
    base = Path(base).resolve()
    values: dict = {}
    for key, value in table.items():
        if key not in _KNOWN:
            raise ConfigError(f"{where}: unknown key '{key}' (known keys: {', '.join(sorted(_KNOWN))})")
        if key == "samples" and isinstance(value, str):
            values["sample_start"], value = _sample_range(value, where)
        if key == "calib_samples" and isinstance(value, str):
            values["calib_start"], value = _sample_range(value, where, key)
        expected = _TYPES[key]
        if not _type_ok(value, expected):
            raise ConfigError(f"{where}: '{key}' must be {_TYPE_NAMES[expected]}, got {type(value).__name__} {value!r}")
        if expected is float:
            value = float(value)
        if key in _CHOICES and value not in _CHOICES[key]:
            choices = ", ".join(map(str, _CHOICES[key]))
            hint = " (the C kernels are q15)" if key == "bits" else ""
            raise ConfigError(f"{where}: '{key}' must be one of {choices}{hint}, got {value!r}")
        if key in _LIST_CHOICES:
            allowed = _LIST_CHOICES[key]
            bad = [v for v in value if v not in allowed]
            if bad or not value or len(set(value)) != len(value):
                raise ConfigError(
                    f"{where}: '{key}' must be a non-empty list of distinct names from "
                    f"{', '.join(allowed)}, got {value!r}"
                )
        if key == "header_map" and not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise ConfigError(
                f"{where}: [header_map] maps op names to the header's macro stems as strings, "
                f'e.g. conv2d = "CONV1" (for CONV1_WT, CONV1_BIAS ...); got {value!r}'
            )
        if key == "header_map" and (problem := clash(value)):
            raise ConfigError(f"{where}: [header_map] maps op names to C macro stems: {problem}")
        if key == "functions" and not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise ConfigError(
                f"{where}: [functions] maps op names to C function names as strings, "
                f'e.g. conv2 = "arm_convolve_HWC_q15_basic"; got {value!r}'
            )
        if key == "weight_bits" and not all(
            isinstance(k, str) and type(v) is int and v in (8, 16) for k, v in value.items()
        ):
            raise ConfigError(
                f"{where}: [weight_bits] maps dense op names to 8 or 16 (the bits of their weights and bias), "
                f"e.g. fc1 = 8; got {value!r}"
            )
        if key in ("samples", "calib_samples") and value <= 0:
            raise ConfigError(f"{where}: '{key}' must be positive, got {value}")
        if key == "max_accuracy_drop" and not 0.0 <= value <= 100.0:
            raise ConfigError(f"{where}: 'max_accuracy_drop' is in percentage points (0 to 100), got {value:g}")
        if key in _PATH_KEYS and not value.strip():
            raise ConfigError(f"{where}: '{key}' is an empty string")
        values[key] = value

    values.setdefault("out", Config.out)  # the default is relative to the file too
    _resolve_paths(values, base, where)
    _check_together(values, table, where)
    return Config(**values, source=where, root=str(base))


def _resolve_paths(values: dict, base: Path, where: str) -> None:
    model = values.get("model")
    if model is not None:
        if model == "demo":
            values["model"] = None
        else:
            module, sep, attr = model.rpartition(":")
            if sep and module.endswith(".py"):
                path = (base / module).resolve()
                if not path.is_file():
                    raise ConfigError(f"{where}: 'model' factory file {path} does not exist")
                values["model"] = f"{path}:{attr}"
            elif not sep or (base / model).exists():
                path = (base / model).resolve()
                if not path.exists():
                    raise ConfigError(
                        f"{where}: 'model' file {path} does not exist "
                        "(expected a .keras/.h5 file, module:Factory or file.py:Factory)"
                    )
                if path.suffix not in (".keras", ".h5", ".hdf5"):  # else only keras, seconds later, says so
                    raise ConfigError(
                        f"{where}: 'model' file {path} is not a saved Keras model "
                        "(expected a .keras/.h5 file, module:Factory or file.py:Factory)"
                    )
                values["model"] = str(path)
            # else module:Factory, imported with the configuration's folder on sys.path
    for key in _PATH_KEYS[1:]:  # the model is resolved above
        if key not in values:
            continue
        path = (base / values[key]).resolve()
        if key in _MUST_EXIST and not path.is_file():
            raise ConfigError(f"{where}: '{key}' file {path} does not exist")
        if key == "cmsis_root" and not path.is_dir():
            raise ConfigError(f"{where}: 'cmsis_root' {path} is not a directory")
        if key == "out" and path.exists() and not path.is_dir():  # found now, not when the gate passes
            raise ConfigError(
                f"{where}: 'out' {path} is an existing file; expected a directory for the plan and headers"
            )
        values[key] = str(path)


def _check_together(values: dict, table: dict, where: str) -> None:
    model, data = values.get("model"), values.get("data")
    if model is not None and data is None and values.get("weights") is None:
        raise ConfigError(
            f"{where}: 'model' is not the demo, so 'data' (a .npy of its inputs) is needed to calibrate and evaluate it"
        )
    if values.get("labels") is not None and data is None:
        raise ConfigError(f"{where}: 'labels' goes with 'data' (a .npy file); the demo's labels come with its data")
    if values.get("sample_header") is not None and values.get("header") is None:
        raise ConfigError(f"{where}: 'sample_header' goes with 'header' (header mode: the committed weights.h)")
    if values.get("header") is not None and "out" in table:
        raise ConfigError(
            f"{where}: 'out' with 'header': header mode verifies the committed {table['header']} "
            "and writes nothing; drop 'out' (or 'header' to regenerate the headers into 'out')"
        )
    if values.get("names_from") is not None and (values.get("header_map") or values.get("header") is not None):
        other = "header_map" if values.get("header_map") else "header"
        raise ConfigError(
            f"{where}: 'names_from' with '{other}': names_from names the macros written to 'out' in op order; "
            + (
                "name them one way, not both"
                if other == "header_map"
                else "header mode reads the committed header's own names (drop names_from)"
            )
        )
    if values.get("weights") is not None and "model" not in table:
        raise ConfigError(f"{where}: 'weights' needs 'model' (the architecture the weights are loaded into)")
    if values.get("cmsis_root") is not None and "fast" in values.get("kernels", []):
        raise ConfigError(
            f"{where}: 'kernels' = {values['kernels']!r} with 'cmsis_root': 'fast' runs "
            'qverify\'s own host convolution, not the tree\'s kernels; use kernels = ["dsp", "plain"]'
        )
    engines = values.get("engines")
    if engines is not None and not any(e in COMPARED_ENGINES for e in engines):
        raise ConfigError(
            f"{where}: 'engines' must name 'native' and/or 'target' (compared with the shift model), got {engines!r}"
        )
