"""[tool.qverify] / qverify.toml: defaults, paths, and errors that name the key and the file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from qverify.config import Config, ConfigError, find_config, load_config


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def pyproject(tmp_path: Path, body: str) -> Path:
    return write(tmp_path / "pyproject.toml", "[project]\nname = 'fw'\n\n[tool.qverify]\n" + body)


def test_empty_table_is_the_demo(tmp_path):
    """An empty [tool.qverify] gives the demo with the documented defaults; out is beside the file."""
    cfg = load_config(pyproject(tmp_path, ""))
    assert cfg.model is None and cfg.data is None and cfg.is_demo
    assert (cfg.kernels, cfg.engines, cfg.compared) == (["dsp", "plain"], ["native"], ["native"])
    assert (cfg.samples, cfg.rounding, cfg.require_bit_exact, cfg.pytest) == (64, "truncate", True, False)
    assert cfg.max_accuracy_drop is None and cfg.min_sqnr_db is None
    assert cfg.out == str(tmp_path / "qverify_out")
    assert cfg.root == str(tmp_path) and cfg.source == f"{tmp_path / 'pyproject.toml'} [tool.qverify]"


def test_values_and_paths_relative_to_the_file(tmp_path):
    """Every key is read; paths resolve against the configuration's folder, not the working directory."""
    for name in ("model.keras", "x.npy", "y.npy", "w.h5"):
        write(tmp_path / "fw" / "data" / name, "")
    (tmp_path / "fw" / "CMSIS_5").mkdir()
    cfg = load_config(
        write(
            tmp_path / "fw" / "qverify.toml",
            """
model = "data/model.keras"
weights = "data/w.h5"
data = "data/x.npy"
labels = "data/y.npy"
calib_samples = 500
rounding = "round"
rule = "tight"
fit_accumulator = true
cmsis_root = "CMSIS_5"
engines = ["shift", "native", "target"]
target_cpu = "cortex-m7"
samples = 8
require_bit_exact = false
max_accuracy_drop = 1
min_sqnr_db = 30
fail_on_overflow = true
out = "../build/nn"
pytest = true
""",
        )
    )
    d = tmp_path / "fw" / "data"
    assert (cfg.model, cfg.weights, cfg.data, cfg.labels) == tuple(
        str(d / n) for n in ("model.keras", "w.h5", "x.npy", "y.npy")
    )
    assert cfg.cmsis_root == str(tmp_path / "fw" / "CMSIS_5")
    assert cfg.kernels == ["dsp", "plain"]  # a CMSIS tree builds both of its paths on the host
    assert cfg.compared == ["native", "target"] and cfg.target_cpu == "cortex-m7"
    assert cfg.max_accuracy_drop == 1.0 and isinstance(cfg.max_accuracy_drop, float) and cfg.min_sqnr_db == 30.0
    assert cfg.out == str(tmp_path / "build" / "nn") and cfg.source == str(tmp_path / "fw" / "qverify.toml")
    assert (cfg.calib_samples, cfg.rounding, cfg.rule, cfg.fit_accumulator, cfg.samples) == (
        500,
        "round",
        "tight",
        True,
        8,
    )
    assert cfg.pytest and not cfg.require_bit_exact and cfg.fail_on_overflow


def test_sample_range(tmp_path):
    """samples = "START:STOP" selects that range; an integer N the first N."""
    cfg = load_config(pyproject(tmp_path, 'samples = "100:164"\n'))
    assert (cfg.sample_start, cfg.samples) == (100, 64)
    assert cfg.effective()["sample_start"] == 100  # part of the cache key
    cfg = load_config(pyproject(tmp_path, "samples = 8\n"))
    assert (cfg.sample_start, cfg.samples) == (None, 8)


def test_factory_models(tmp_path):
    """'file.py:Net' resolves the file; 'module:Net' stays a module name (imported from the folder);
    'demo' is the demo."""
    write(tmp_path / "net.py", "")
    write(tmp_path / "x.npy", "")
    cfg = load_config(pyproject(tmp_path, 'model = "net.py:Net"\ndata = "x.npy"\n'))
    assert cfg.model == f"{tmp_path / 'net.py'}:Net"
    assert load_config(pyproject(tmp_path, 'model = "net:Net"\ndata = "x.npy"\n')).model == "net:Net"
    assert load_config(pyproject(tmp_path, 'model = "demo"\n')).model is None


@pytest.mark.parametrize(
    "body, message",
    [
        (
            "samplez = 8\n",
            r"unknown key 'samplez' \(known keys: bits, calib_data, calib_overlap, calib_samples, "
            r"cmsis_root, cmsis_version, data, ",
        ),
        ('samples = "8"\n', r"'samples' must be a positive integer or a range \"START:STOP\" .*, got '8'"),
        ('samples = "9:3"\n', r"'samples' must be a positive integer or a range .*, got '9:3'"),
        ('samples = "a:b"\n', r"'samples' must be a positive integer or a range .*, got 'a:b'"),
        ("samples = true\n", r"'samples' must be an integer, got bool True"),
        ("require_bit_exact = 1\n", r"'require_bit_exact' must be true or false, got int 1"),
        ('max_accuracy_drop = "1%"\n', r"'max_accuracy_drop' must be a number, got str '1%'"),
        ("max_accuracy_drop = 150\n", r"'max_accuracy_drop' is in percentage points \(0 to 100\), got 150"),
        ("samples = 0\n", r"'samples' must be positive, got 0"),
        ('kernels = "dsp"\n', r"'kernels' must be a list, got str 'dsp'"),
        (
            'kernels = ["neon"]\n',
            r"'kernels' must be a non-empty list of distinct names from dsp, plain, fast, got \['neon'\]",
        ),
        ("engines = []\n", r"'engines' must be a non-empty list"),
        ('engines = ["shift"]\n', r"'engines' must name 'native' and/or 'target'"),
        ('rounding = "nearest"\n', r"'rounding' must be one of truncate, round, got 'nearest'"),
        ("bits = 8\n", r"'bits' must be one of 16 \(the C kernels are q15\), got 8"),
        ('target_cpu = "cortex-m0"\n', r"'target_cpu' must be one of cortex-m3, cortex-m4, cortex-m7"),
        ('data = "missing.npy"\n', r"'data' file .*missing.npy does not exist"),
        ('model = "missing.keras"\n', r"'model' file .*missing.keras does not exist"),
        ('model = "net:Net"\n', r"'model' is not the demo, so 'data' .* is needed"),
        ('cmsis_root = "nowhere"\n', r"'cmsis_root' .*nowhere is not a directory"),
    ],
)
def test_errors_name_the_key_and_the_file(tmp_path, body, message):
    """Each bad key is one ConfigError that starts with the file and table and names the key."""
    path = pyproject(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert text.startswith(f"{path} [tool.qverify]: ")
    assert re.search(message, text), text
    assert "\n" not in text


def test_keys_that_go_together(tmp_path):
    """labels without data, weights without model, the DSP path of a CMSIS tree: each refused by name."""
    write(tmp_path / "y.npy", "")
    write(tmp_path / "w.h5", "")
    (tmp_path / "CMSIS_5").mkdir()
    with pytest.raises(ConfigError, match="'labels' goes with 'data'"):
        load_config(pyproject(tmp_path, 'labels = "y.npy"\n'))
    with pytest.raises(ConfigError, match="'weights' needs 'model'"):
        load_config(pyproject(tmp_path, 'weights = "w.h5"\n'))
    with pytest.raises(
        ConfigError,
        match=r"'kernels' = \['dsp', 'fast'\] with 'cmsis_root'.*qverify's own host "
        r"convolution.*kernels = \[\"dsp\", \"plain\"\]",
    ):
        load_config(pyproject(tmp_path, 'cmsis_root = "CMSIS_5"\nkernels = ["dsp", "fast"]\n'))


def test_file_level_errors(tmp_path):
    """Invalid TOML, a pyproject.toml without the table, a missing file: the message names the file."""
    bad = write(tmp_path / "a" / "qverify.toml", "samples = \n")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(bad))}: cannot read TOML"):
        load_config(bad)
    plain = write(tmp_path / "b" / "pyproject.toml", "[project]\nname = 'x'\n")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(plain))}: has no \[tool.qverify\] table"):
        load_config(plain)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nothing.toml")
    nested = write(tmp_path / "c" / "qverify.toml", "[tool.qverify]\nsamples = 3\n")
    assert load_config(nested).samples == 3 and load_config(nested).source.endswith("qverify.toml [tool.qverify]")


def test_find_config_walks_up_and_prefers_qverify_toml(tmp_path):
    """The nearest folder wins; qverify.toml before pyproject.toml; a pyproject.toml without the table is skipped."""
    write(tmp_path / "pyproject.toml", "[tool.qverify]\n")
    write(tmp_path / "sub" / "pyproject.toml", "[project]\nname = 'x'\n")
    deep = tmp_path / "sub" / "src" / "deep"
    deep.mkdir(parents=True)
    assert find_config(deep) == tmp_path / "pyproject.toml"
    write(tmp_path / "sub" / "qverify.toml", "")
    assert find_config(deep) == tmp_path / "sub" / "qverify.toml"
    assert load_config(find_config(deep)) == Config(
        source=str(tmp_path / "sub" / "qverify.toml"),
        root=str(tmp_path / "sub"),
        out=str(tmp_path / "sub" / "qverify_out"),
    )
    lonely = tmp_path / "elsewhere"
    lonely.mkdir()
    assert find_config(lonely) in (None, tmp_path / "pyproject.toml")


def test_reading_a_configuration_imports_no_tensorflow(tmp_path):
    """Finding and loading the configuration (done in every pytest run with the plugin) stays light."""
    pyproject(tmp_path, "samples = 4\n")
    code = (
        "import sys; from qverify.config import find_config, load_config; "
        f"load_config(find_config({str(tmp_path)!r})); import qverify.pytest_plugin; "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_calibration_and_header_keys(tmp_path):
    """calib_data, calib_samples as a range, calib_overlap; header, sample_header, header_map: paths relative
    to the file, and the combinations that do not go together refused."""
    for name in ("x.npy", "c.npy", "w.h", "s.h"):
        write(tmp_path / name, "")
    cfg = load_config(
        pyproject(
            tmp_path,
            'data = "x.npy"\ncalib_data = "c.npy"\ncalib_samples = "10:30"\n'
            'calib_overlap = true\nheader = "w.h"\nsample_header = "s.h"\n'
            '[tool.qverify.header_map]\nconv2d = "CONV1"\n',
        )
    )
    assert (cfg.calib_data, cfg.calib_start, cfg.calib_samples, cfg.calib_overlap) == (
        str(tmp_path / "c.npy"),
        10,
        20,
        True,
    )
    assert (cfg.header, cfg.sample_header, cfg.header_map) == (
        str(tmp_path / "w.h"),
        str(tmp_path / "s.h"),
        {"conv2d": "CONV1"},
    )
    assert load_config(pyproject(tmp_path, "calib_samples = 500\n")).calib_start == 0
    for body, message in [
        ('calib_data = "nope.npy"\n', r"'calib_data' file .*nope.npy does not exist"),
        ('calib_samples = "5:5"\n', r"'calib_samples' must be a positive integer or a range"),
        ('header = "nope.h"\n', r"'header' file .*nope.h does not exist"),
        ('sample_header = "s.h"\n', r"'sample_header' goes with 'header'"),
        ('header = "w.h"\nout = "nn"\n', r"'out' with 'header': header mode verifies"),
        ('header = "w.h"\n[tool.qverify.header_map]\nconv2d = "1X"\n', r"\[header_map\] maps"),
        ('cmsis_version = "5.3.0"\n', r"'cmsis_version' must be one of 5.4.0, .*, 5.9.0"),
        ('final_activation = "gpu"\n', r"'final_activation' must be one of float, device"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(pyproject(tmp_path, body))


def test_weight_bits_key(tmp_path):
    """[tool.qverify.weight_bits] maps dense ops to 8 or 16; anything else is one line."""
    cfg = load_config(pyproject(tmp_path, "[tool.qverify.weight_bits]\nfc1 = 8\nfc2 = 16\n"))
    assert cfg.weight_bits == {"fc1": 8, "fc2": 16}
    for body in (
        "[tool.qverify.weight_bits]\nfc1 = 4\n",
        "[tool.qverify.weight_bits]\nfc1 = 8.0\n",
        "weight_bits = 8\n",
    ):
        with pytest.raises(ConfigError, match=r"weight_bits"):
            load_config(pyproject(tmp_path, body))


def test_names_from_key(tmp_path):
    """names_from: a weights.h relative to the file whose STEM_WT macros the gate names the ops by, in order (as
    quantize --names-from); not with header_map or header; a header without layers is one line."""
    from qverify.cheader import HeaderError
    from qverify.gate import _names_in_order

    write(tmp_path / "nb.h", "#define CONV1_WT {1}\n#define CONV1_BIAS {0}\n#define FC1_WT {1}\n#define FC1_BIAS {0}\n")
    write(tmp_path / "empty.h", "#define X 1\n")
    cfg = load_config(pyproject(tmp_path, 'names_from = "nb.h"\n'))
    assert cfg.names_from == str(tmp_path / "nb.h")
    where, stems = _names_in_order(cfg)
    assert stems == ["CONV1", "FC1"] and "names_from" in where
    assert _names_in_order(load_config(pyproject(tmp_path, ""))) is None
    with pytest.raises(HeaderError, match=r"names_from .*empty.h defines no STEM_WT macro"):
        _names_in_order(load_config(pyproject(tmp_path, 'names_from = "empty.h"\n')))
    for body, message in [
        ('names_from = "nope.h"\n', r"'names_from' file .*nope.h does not exist"),
        ('names_from = "nb.h"\n[tool.qverify.header_map]\nconv1 = "C1"\n', r"'names_from' with 'header_map'"),
        ('names_from = "nb.h"\nheader = "nb.h"\n', r"'names_from' with 'header'"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(pyproject(tmp_path, body))
