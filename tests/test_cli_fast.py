"""Fast feedback (issue 15): a bad argument, path or configuration is reported before TensorFlow loads.

Each bad run goes through a fresh `python -X importtime -m qverify ...`, so the test sees every module
the command imported: exit 2, one line on stderr naming the bad path, and no tensorflow, keras or
matplotlib among the imports. (How fast that is is measured by bench/bench_cli.py, not asserted here.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from qverify.commands import checks
from qverify.errors import ArgumentError, DataError, ModelError
from qverify.mcu import missing_reason

HEAVY = ("tensorflow", "keras", "matplotlib")


def run_cli(args: list[str], cwd: Path) -> tuple[int, list[str], set[str]]:
    """(exit status, stderr lines that are not import timings, top-level names of every module imported)."""
    env = {k: v for k, v in os.environ.items() if k != "QVERIFY_CMSIS_ROOT"}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "qverify", *args],
        cwd=cwd,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = proc.stderr.splitlines()
    imported = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in lines if line.startswith("import time:")}
    return proc.returncode, [line for line in lines if not line.startswith("import time:")], imported


@pytest.fixture
def tree(tmp_path):
    """A working directory with a file, a directory and a valid-looking .npy in it."""
    (tmp_path / "afile.txt").write_text("not a directory")
    (tmp_path / "adir").mkdir()
    (tmp_path / "x.npy").write_bytes(b"only its existence is checked here")
    write_model_files(tmp_path)
    return tmp_path


def write_model_files(folder: Path) -> None:
    """Files that are not what their names say, built without Keras: an empty and a text model.keras, a Keras 3
    weights file (top-level groups layers/, vars/) as w.h5 and w.weights.h5, Keras 2 weights (layer_names)."""
    import h5py

    (folder / "empty.keras").write_bytes(b"")
    (folder / "text.keras").write_text("not a model\n")
    for name in ("w.h5", "w.weights.h5"):
        with h5py.File(folder / name, "w") as f:
            f.create_group("layers").create_group("dense")
            f.create_group("vars")
    with h5py.File(folder / "k2.weights.h5", "w") as f:
        f.attrs["layer_names"] = ["dense"]


# (argv, the text the one line must name); paths relative to the tree fixture
CASES = [
    (["quantize", "--model", "missing.keras", "--data", "x.npy"], "missing.keras"),
    (["quantize", "--model", "no_such_module_q15:Net", "--data", "x.npy"], "no_such_module_q15"),
    (["quantize", "--model", "nets/missing.py:Net", "--data", "x.npy"], "nets/missing.py"),
    (["quantize", "--weights", "missing.h5"], "missing.h5"),
    (["quantize", "--model", "empty.keras", "--data", "x.npy"], "empty.keras is an empty file (0 bytes)"),
    (["quantize", "--model", "text.keras", "--data", "x.npy"], "it is a text file starting 'not a model'"),
    (["quantize", "--model", "w.weights.h5", "--data", "x.npy"], "is a weights file (Keras 3 weights"),
    (["quantize", "--model", "net.py:Net", "--weights", "w.h5"], "rename it to w.weights.h5"),
    (["quantize", "--model", "net.py:Net", "--weights", "k2.weights.h5"], "holds Keras 2 legacy HDF5 weights"),
    (["diff-header", "afile.txt", "--model", "empty.keras"], "empty.keras is an empty file"),
    (["quantize", "--data", "x.npy", "--out", "afile.txt"], "afile.txt"),
    (["compare", "--data", "missing.npy"], "missing.npy"),
    (["compare", "--json", "adir"], "adir"),
    (["demo", "--out", "no/such/dir"], "no/such"),
    (["target", "--plan", "noplan"], "noplan"),
    (["target", "--json", "nodir/t.json"], "nodir"),
    (["eval", "--data", "missing.npy"], "missing.npy"),
    (["eval", "--labels", "missing.npy"], "missing.npy"),
    (["eval", "--html", "afile.txt"], "afile.txt"),
    (["eval", "--cmsis-root", "missing_tree"], "missing_tree"),
    (["report", "--json", "nodir/fp.json"], "nodir"),
    (["gate", "--config", "missing.toml"], "missing.toml"),
    (["gate", "--config", "adir/qverify.toml"], "missing.npy"),  # a configured path, written below
    (["eval", "--samples", "0"], "--samples"),  # argparse's own errors are one line too
]


@pytest.mark.parametrize("argv, named", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_argument_fails_before_tensorflow(tree, argv, named):
    if argv[0] == "target" and missing_reason():
        pytest.skip("target reports a missing toolchain first")  # and test_target checks that
    (tree / "adir" / "qverify.toml").write_text('data = "missing.npy"\n')
    (tree / "net.py").write_text("raise SystemExit('imported')\n")  # found, never run
    before = sorted(p.relative_to(tree) for p in tree.rglob("*"))
    status, err, imported = run_cli(argv, tree)
    assert status == 2, err
    assert len(err) == 1 and err[0].startswith(f"qverify {argv[0]}: error: ") and named in err[0], err
    heavy = sorted(imported & set(HEAVY))
    assert not heavy, f"imported {heavy} before reporting: {err[0]}"
    assert sorted(p.relative_to(tree) for p in tree.rglob("*")) == before  # nothing written


def test_eval_reads_the_data_before_loading_the_model(tmp_path):
    """With a plan of a user model, data of the wrong shape fails before keras loads that model."""
    import keras
    import numpy as np

    from qverify.workflow import quantize

    keras.utils.set_random_seed(0)
    keras.Sequential(
        [keras.Input((16, 1)), keras.layers.Conv1D(2, 3), keras.layers.Flatten(), keras.layers.Dense(1)]
    ).save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", np.zeros((4, 16), np.float32))
    quantize(str(tmp_path / "m.keras"), data=str(tmp_path / "x.npy")).plan.save(tmp_path / "plan")
    np.save(tmp_path / "wide.npy", np.zeros((4, 17), np.float32))
    status, err, imported = run_cli(["eval", "--plan", "plan", "--data", "wide.npy"], tmp_path)
    assert status == 2 and len(err) == 1 and "wide.npy has shape (4, 17)" in err[0], err
    assert not sorted(imported & set(HEAVY))


def test_checks_accept_what_the_loaders_accept(tmp_path, monkeypatch):
    """The early checks refuse nothing a command would have run: every --model form, demo data, outputs."""
    monkeypatch.chdir(tmp_path)
    import zipfile

    with zipfile.ZipFile(tmp_path / "m.keras", "w") as z:  # what model.save("m.keras") writes, in outline
        z.writestr("config.json", "{}")
    (tmp_path / "net.py").write_text("def Net(): pass\n")
    (tmp_path / "notes.txt").write_text("")
    (tmp_path / "adir").mkdir()
    for spec in ("m.keras", "net.py:Net", "net:Net", "qverify.demo:Net", "os.path:join"):
        checks.model(spec)  # a module in the current directory, an installed package's submodule
    checks.data("--data", "demo:test")
    checks.output_dir("--out", "adir")
    checks.output_dir("--out", "new")
    checks.output_file("--json", "adir/r.json")
    assert checks.choices("--engines", "shift, native", ("shift", "native", "target"), count=2) == ["shift", "native"]
    with pytest.raises(DataError, match="unknown demo split 'nope'"):
        checks.data("--data", "demo:nope")
    with pytest.raises(ModelError, match=r"net.py is a Python file; name its factory: --model net.py:<Factory>"):
        checks.model("net.py")
    with pytest.raises(ModelError, match=r"not a saved Keras model \(suffix '.txt'"):
        checks.model("notes.txt")
    with pytest.raises(ArgumentError, match="expected 2 different names"):
        checks.choices("--engines", "shift,shift", ("shift", "native"), count=2)


def test_demo_splits_match_the_demo():
    from qverify import demo

    assert checks.DEMO_SPLITS == tuple(demo.SPLIT_SEEDS)


def test_config_refuses_an_out_file_and_a_model_that_is_not_keras(tmp_path):
    """Found when the configuration is read, not after the model loads or when the gate writes `out`."""
    from qverify.config import ConfigError, parse_table

    (tmp_path / "nn").write_text("a file")
    (tmp_path / "net.txt").write_text("")
    with pytest.raises(ConfigError, match=r"q.toml: 'out' .*nn is an existing file; expected a directory"):
        parse_table({"out": "nn"}, tmp_path, "q.toml")
    with pytest.raises(ConfigError, match=r"q.toml: 'model' file .*net.txt is not a saved Keras model"):
        parse_table({"model": "net.txt"}, tmp_path, "q.toml")
