"""`qverify gate` and qverify.gate: the example firmware repo end to end, the cache, and headers that are
written only when every check passes."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from fake_cmsis import fake_cmsis_tree  # arm_relu_q15 altered: negatives -> 7
from qverify.cli import main
from qverify.config import load_config
from qverify.gate import run_gate
from qverify.gate_cache import cache_key
from qverify.outcome import check_id
from tools import absent, require

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "firmware"
# the set and its manifest (outputs.write_set)
HEADERS = ("plan.json", "plan.npz", "weights.h", "sample_input_output.h", "network.c", "qverify-manifest.json")


# ---------------------------------------------------------------- a small user project


def make_user_project(root: Path, config: str = "", name: str = "pyproject.toml") -> Path:
    """A firmware repo with its own model (Conv1D → ReLU → Flatten → Dense(3) → Dense(1), saved as
    model.keras; ops conv1, act1, flat, fc1, fc2), 40 random input frames and a configuration."""
    import keras

    root.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((32, 1)),
            keras.layers.Conv1D(4, 3, name="conv1"),
            keras.layers.ReLU(name="act1"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(3, name="fc1"),
            keras.layers.Dense(1, name="fc2"),
        ]
    )
    model.save(root / "model.keras")
    rng = np.random.default_rng(0)
    np.save(root / "x.npy", (0.3 * rng.standard_normal((40, 32, 1))).astype(np.float32))
    table = "[tool.qverify]\n" if name == "pyproject.toml" else ""
    (root / name).write_text(table + 'model = "model.keras"\ndata = "x.npy"\nsamples = 8\n' + config)
    return root / name


def plant_relu_mismatch(root: Path) -> str:
    """A firmware CMSIS tree (ours, with arm_relu_q15 writing 7 for negatives); the config line that uses it."""
    fake_cmsis_tree(root / "third_party")
    return 'cmsis_root = "third_party/CMSIS_5"\n'


@pytest.fixture
def native_cache(tmp_path, monkeypatch):
    """Kernels built from a CMSIS tree go to a per-test cache."""
    monkeypatch.setenv("QVERIFY_CACHE_DIR", str(tmp_path / "native-cache"))


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


# ---------------------------------------------------------------- the example firmware repo


@pytest.fixture(scope="module")
def firmware(tmp_path_factory):
    """examples/firmware copied to a temporary folder and gated once: (folder, exit status, stdout)."""
    repo = tmp_path_factory.mktemp("fw") / "firmware"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("nn", ".qverify_cache", "firmware", "report.xml"))
    mp = pytest.MonkeyPatch()
    mp.chdir(repo)
    try:
        import io
        from contextlib import redirect_stdout

        buf = io.StringIO()
        with redirect_stdout(buf):
            status = main(["gate", "--junit", "report.xml"])
    finally:
        mp.undo()
    return repo, status, buf.getvalue()


def test_example_gate_passes_and_writes_nn(firmware):
    """`qverify gate` in the example repo: exit 0, PASS, JUnit with every check, and nn/ written."""
    repo, status, out = firmware
    assert status == 0, out
    assert "PASS:" in out and "FAIL" not in out
    assert sorted(p.name for p in (repo / "nn").iterdir()) == sorted(HEADERS)
    suite = ET.parse(repo / "report.xml").getroot()
    cases = suite.findall(".//testcase")
    assert suite.get("failures") == "0" and len(cases) == int(suite.get("tests")) > 100
    names = {(c.get("classname"), c.get("name")) for c in cases}
    assert {
        ("qverify.conv3", "bit_exact[shift-native]"),
        ("qverify.conv3", "bit_exact[shift-native:plain]"),
        ("qverify.fc1", "sqnr[shift]"),
        ("qverify.model", "accuracy_drop[shift]"),
        ("qverify.model", "bit_exact_samples"),
    } <= names


def test_example_firmware_builds_and_runs(firmware, tmp_path):
    """The example's main.c, built with gcc against the generated nn/ and our cmsis/ + csrc/, prints PASS."""
    require("gcc", "make")
    repo, status, _ = firmware
    assert status == 0
    build = tmp_path / "fw"
    shutil.copytree(repo, build, ignore=shutil.ignore_patterns(".qverify_cache"))
    made = subprocess.run(
        ["make", "-s", "firmware", f"PYTHON={sys.executable}", "CC=gcc"], cwd=build, capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    ran = subprocess.run([str(build / "firmware")], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stdout
    assert "the 11 with an expected output bit-exact with sample_input_output.h" in ran.stdout  # the self-test
    assert "conv1" in ran.stdout and "fc3" in ran.stdout

    # built for the other rounding, weights.h refuses to compile (#error naming the plan's rounding)
    subprocess.run(["make", "-s", "clean"], cwd=build, check=True)
    made = subprocess.run(
        ["make", "-s", "firmware", f"PYTHON={sys.executable}", "CC=gcc", "ROUNDING_FLAGS="],
        cwd=build,
        capture_output=True,
        text=True,
    )
    assert made.returncode != 0 and "verified for rounding = truncate" in made.stderr


def test_second_gate_run_is_a_cache_hit(firmware, monkeypatch, capsys):
    """Nothing changed: the checks come from .qverify_cache, no engine runs, nn/ is rewritten identically."""
    repo, status, _ = firmware
    assert status == 0
    before = {p.name: p.read_bytes() for p in (repo / "nn").iterdir()}

    def no_engines(*args, **kwargs):
        raise AssertionError("an engine was built on a cache hit")

    import qverify.evaluate
    import qverify.workflow

    monkeypatch.setattr(qverify.evaluate, "make_engines", no_engines)
    monkeypatch.setattr(qverify.evaluate, "evaluate", no_engines)
    monkeypatch.setattr(qverify.workflow, "quantize", no_engines)
    outcome = run_gate(load_config(repo / "pyproject.toml"))
    assert outcome.cached and outcome.ok
    monkeypatch.chdir(repo)
    assert main(["gate"]) == 0
    assert "(from the cache)" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in (repo / "nn").iterdir()} == before


def test_cache_hit_imports_no_tensorflow(firmware):
    """A cache hit only reads files: in a fresh interpreter, run_gate returns without importing TensorFlow."""
    repo, status, _ = firmware
    assert status == 0
    code = (
        "import sys; from qverify.config import load_config; from qverify.gate import run_gate; "
        f"o = run_gate(load_config({str(repo / 'pyproject.toml')!r})); "
        "print(o.cached, o.ok, len(o.checks), 'tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    cached, ok, n, tf, keras = out.stdout.split()
    assert (cached, ok, tf, keras) == ("True", "True", "False", "False") and int(n) > 100


# ---------------------------------------------------------------- a user model, a planted mismatch


def test_failed_gate_leaves_headers_untouched(tmp_path, native_cache, capsys, monkeypatch):
    """A passing gate writes out/; after the firmware's CMSIS tree breaks arm_relu_q15, the gate exits 1,
    names act1 first with its mismatches, writes JUnit with exactly the failing checks, and out/ stays
    byte-identical."""
    config = make_user_project(tmp_path / "repo", 'out = "nn"\n')
    monkeypatch.chdir(tmp_path / "repo")
    assert main(["gate"]) == 0
    nn = tmp_path / "repo" / "nn"
    before = snapshot(nn)
    assert sorted(before) == sorted(HEADERS)

    config.write_text(config.read_text() + plant_relu_mismatch(tmp_path / "repo"))
    capsys.readouterr()
    assert main(["gate", "--junit", "report.xml"]) == 1
    out = capsys.readouterr().out
    failed = out[out.index("FAILED (3):") :]  # the tree is checked on both of its paths, dsp and plain
    assert failed.splitlines()[1].startswith("  act1::bit_exact[shift-native]: ")
    assert any(line.startswith("  act1::bit_exact[shift-native:plain]: ") for line in failed.splitlines())
    assert "first mismatches (sample, h, w, c, shift, native):" in failed and ", 0, 7)" in failed
    assert "model::bit_exact_samples" in failed
    assert "FAIL: 3 of" in out and "left untouched" in out
    assert snapshot(nn) == before

    suite = ET.parse(tmp_path / "repo" / "report.xml").getroot()
    failing = {(c.get("classname"), c.get("name")) for c in suite.iter("testcase") if c.find("failure") is not None}
    assert failing == {
        ("qverify.act1", "bit_exact[shift-native]"),
        ("qverify.act1", "bit_exact[shift-native:plain]"),
        ("qverify.model", "bit_exact_samples"),
    }


def test_require_bit_exact_false_reports_but_passes(tmp_path, native_cache):
    """require_bit_exact = false: the planted mismatch is still measured and shown, and the checks pass."""
    repo = tmp_path / "repo"
    repo.mkdir()
    config = make_user_project(repo, plant_relu_mismatch(repo) + "require_bit_exact = false\n", "qverify.toml")
    outcome = run_gate(load_config(config), use_cache=False)
    assert outcome.ok and not outcome.cached
    by_id = {check_id(c): c for c in outcome.checks}
    act = by_id["act1::bit_exact[shift-native]"]
    assert act.passed and "values differ" in act.message and "not required" in act.message and act.details
    assert "not required" in by_id["model::bit_exact_samples"].message
    assert by_id["conv1::bit_exact[shift-native]"].message.endswith("each op fed the shift model's input")
    assert not (repo / ".qverify_cache").exists()  # use_cache=False stores nothing


def test_cache_key_follows_inputs_not_outputs(tmp_path):
    """The key changes with a setting that changes the checks or with the data's content, not with out/pytest."""
    config = make_user_project(tmp_path / "repo")
    text = config.read_text()
    key = cache_key(load_config(config))
    assert cache_key(load_config(config)) == key
    config.write_text(text + 'out = "elsewhere"\npytest = true\n')
    assert cache_key(load_config(config)) == key
    config.write_text(text + "min_sqnr_db = 20\n")
    assert cache_key(load_config(config)) != key
    config.write_text(text)
    x = np.load(tmp_path / "repo" / "x.npy")
    x[0, 0, 0] += 0.25
    np.save(tmp_path / "repo" / "x.npy", x)
    assert cache_key(load_config(config)) != key


def test_target_engine_checks_every_op(tmp_path):
    """engines = ["native", "target"]: per-op bit_exact[shift-target] checks from the emulated Cortex-M."""
    from qverify.mcu import missing_reason

    reason = missing_reason()
    if reason is not None:
        absent(f"the target toolchain is missing: {reason}")
    config = make_user_project(
        tmp_path / "repo", 'engines = ["native", "target"]\nkernels = ["plain"]\ntarget_cpu = "cortex-m3"\n'
    )
    outcome = run_gate(load_config(config), use_cache=False)
    assert outcome.ok, [check_id(c) for c in outcome.failures]
    target = [check_id(c) for c in outcome.checks if c.name == "bit_exact[shift-target]"]
    assert target == [f"{op}::bit_exact[shift-target]" for op in ("conv1", "act1", "flat", "fc1", "fc2")]
    assert "cortex-m3" in outcome.engine_info["bit_exact[shift-target]"]


def test_gate_usage_errors_exit_2(tmp_path, monkeypatch, capsys):
    """No configuration (the message says where it looked), a bad key, a bad --junit path: exit 2, one line."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    assert main(["gate"]) == 2
    err = capsys.readouterr().err
    assert (
        f"no configuration found: looked for qverify.toml, or pyproject.toml with a [tool.qverify] table, in {empty}"
    ) in err
    (empty / "qverify.toml").write_text("samples = 8.5\n")
    assert main(["gate"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"qverify gate: error: {empty / 'qverify.toml'}: 'samples' must be an integer, got float 8.5"
    )
    (empty / "qverify.toml").write_text("samples = 8\n")
    assert main(["gate", "--junit", str(tmp_path / "missing" / "r.xml")]) == 2
    assert "directory" in capsys.readouterr().err
    assert not (empty / ".qverify_cache").exists()


# ---------------------------------------------------------------- header mode (issue 16 item 4)


def test_header_mode_verifies_the_committed_header_and_never_writes(tmp_path, capsys, monkeypatch):
    """header = "nn/weights.h": a header the model's plan wrote passes and stays byte-identical (nothing is
    written); one weight edited by hand fails with diff-header's text, naming the op, and is not rewritten."""
    repo = tmp_path / "repo"
    config = make_user_project(repo, 'out = "nn"\n')
    monkeypatch.chdir(repo)
    assert main(["gate", "--no-cache"]) == 0
    text = config.read_text().replace('out = "nn"\n', "")
    config.write_text(text + 'header = "nn/weights.h"\nsample_header = "nn/sample_input_output.h"\n')
    before = snapshot(repo / "nn")
    capsys.readouterr()
    assert main(["gate"]) == 0
    out = capsys.readouterr().out
    assert "model::header[weights.h]        ok" in out and "never rewritten" in out
    assert "sample_header[sample_input_output.h] ok" in out
    assert snapshot(repo / "nn") == before

    weights = (repo / "nn" / "weights.h").read_text()
    first = re.search(r"#define FC1_WT \{ \\\n +(-?\d+)", weights)
    edited = weights[: first.start(1)] + str(int(first.group(1)) + 100) + weights[first.end(1) :]
    (repo / "fw").mkdir()
    (repo / "fw" / "weights.h").write_text(edited)
    config.write_text(text + 'header = "fw/weights.h"\n')
    committed = snapshot(repo / "fw")
    assert main(["gate"]) == 1  # the model's checks come from the cache; the header is read afresh
    out = capsys.readouterr().out
    assert "fc1::header[FC1]: weights.h FC1_* differ from the plan: weights (1/360: 1 value(s) edited" in out, out
    w0 = int(first.group(1))
    assert f"fc1              FC1            weights            1/360  [0] {w0 + 100} / {w0}" in out  # diff-header
    assert "DIFFERENT: 1 of 3 conv/dense ops differ" in out and "never rewritten" in out
    assert snapshot(repo / "fw") == committed and snapshot(repo / "nn") == before


# ---------------------------------------------------------------- calibration apart from evaluation (item 6)


def _spy_evaluate(monkeypatch) -> list:
    import qverify.evaluate

    seen, real = [], qverify.evaluate.evaluate

    def spy(plan, graph, data, *args, **kwargs):
        seen.append((data.name, data.first, data.first + len(data)))
        return real(plan, graph, data, *args, **kwargs)

    monkeypatch.setattr(qverify.evaluate, "evaluate", spy)
    return seen


def test_gate_evaluates_samples_apart_from_calibration(tmp_path, monkeypatch):
    """One data file (40 frames), samples = 8: the first 20 calibrate, 20:28 are evaluated and compared, and the
    output says so; an explicit overlapping range is refused unless calib_overlap = true."""
    from qverify.errors import DataError

    config = make_user_project(tmp_path / "repo")
    seen = _spy_evaluate(monkeypatch)
    outcome = run_gate(load_config(config), use_cache=False)
    assert outcome.ok and outcome.plan.source["calib_samples"] == 20 and "calib_first" not in outcome.plan.source
    assert [s[1:] for s in seen] == [(20, 28)]
    assert outcome.summary[0].startswith("calibrated on samples 0:20, evaluated on 20:28 of ")

    text = config.read_text()
    config.write_text(text.replace("samples = 8", 'samples = "0:8"\ncalib_samples = 16'))
    with pytest.raises(
        DataError,
        match=r"'samples': evaluated samples 0:8 overlap the calibration samples 0:16 .*"
        r"calib_overlap = true",
    ):
        run_gate(load_config(config), use_cache=False)
    config.write_text(text.replace("samples = 8", 'samples = 4\ncalib_samples = "10:30"'))
    outcome = run_gate(load_config(config), use_cache=False)
    assert seen[-1][1:] == (30, 34) and outcome.plan.source["calib_first"] == 10
    config.write_text(text.replace("samples = 8", "samples = 8\ncalib_overlap = true"))
    outcome = run_gate(load_config(config), use_cache=False)
    assert seen[-1][1:] == (0, 8) and "OVERLAPPING" in outcome.summary[0]


def test_gate_calibrates_on_calib_data(tmp_path, monkeypatch):
    """calib_data = "c.npy": the plan is calibrated on it (its recorded data and digest), data from sample 0 is
    evaluated."""
    from qverify.workflow import file_digest

    config = make_user_project(tmp_path / "repo", 'calib_data = "c.npy"\n')
    np.save(
        tmp_path / "repo" / "c.npy", (0.5 * np.random.default_rng(3).standard_normal((12, 32, 1))).astype(np.float32)
    )
    seen = _spy_evaluate(monkeypatch)
    outcome = run_gate(load_config(config), use_cache=False)
    src = outcome.plan.source
    assert src["data"] == str(tmp_path / "repo" / "c.npy") and src["calib_samples"] == 12
    assert src["data_digest"] == file_digest(tmp_path / "repo" / "c.npy")
    assert seen == [(str(tmp_path / "repo" / "x.npy"), 0, 8)]
    assert outcome.summary[0].startswith(f"calibrated on samples 0:N of {tmp_path / 'repo' / 'c.npy'}")
