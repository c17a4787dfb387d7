"""The bad-input battery (issue 17 item 8): every bad input the suite knows, through the command line.

Each case runs `python -m qverify ...` in a fresh working folder and must give exit status 2, exactly one
line on stderr ("qverify <command>: error: ..."), no traceback, and leave the folder byte for byte as it was
(its listing and every file's contents), including an output folder with a file in it. Most cases fail
before TensorFlow loads and take a fraction of a second; the few that need a model run `main` in this
process (TensorFlow loaded once) and share one quantized plan.

The cases are the ones issue 17 lists plus every exit-2 check elsewhere in the suite: test_cli_fast.CASES
(imported, not copied), test_compare, test_contracts, test_eval, test_footprint, test_gate, test_header and
test_plancheck.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from test_cli_fast import CASES as FAST_CASES
from test_cli_fast import write_model_files


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    named: str = ""  # text the one line must contain
    plan: bool = False  # needs the quantized plan (work/plan, work/m.keras, work/other.keras)
    in_process: bool = False  # needs TensorFlow: run cli.main here, where it is loaded once
    writable_only: bool = False  # an unwritable folder: meaningless as root


def case(id: str, *argv: str, **kw) -> Case:
    return Case(id, tuple(argv), **kw)


CASES = [
    # output paths: an existing file for a directory, a directory for a file, a missing parent, no write access
    case(
        "quantize --out names an existing file",
        "quantize",
        "--data",
        "x.npy",
        "--out",
        "afile.txt",
        named="is an existing file",
    ),
    case("demo --out names an existing file", "demo", "--out", "afile.txt", named="afile.txt"),
    case("compare --json names a directory", "compare", "--json", "adir", named="is a directory"),
    case("report --json names a directory", "report", "--json", "adir", named="is a directory"),
    case("target --json names a directory", "target", "--json", "adir"),  # or: the toolchain is missing
    case("eval --json names a directory", "eval", "--json", "adir", named="is a directory"),
    case("eval --junit names a directory", "eval", "--junit", "adir", named="is a directory"),
    case("eval --npz names a directory", "eval", "--npz", "adir", named="is a directory"),
    case("diff-header --json names a directory", "diff-header", "afile.txt", "--json", "adir", named="is a directory"),
    case("quantize --out parent missing", "quantize", "--data", "x.npy", "--out", "nodir/nn", named="nodir"),
    case("compare --json parent missing", "compare", "--json", "nodir/c.json", named="nodir"),
    case("eval --html parent missing", "eval", "--html", "nodir/html", named="nodir"),
    case("report --json parent missing", "report", "--plan", "plan", "--json", "no/fp.json", named="no", plan=True),
    case("gate --junit parent missing", "gate", "--config", "good.toml", "--junit", "missing/r.xml", named="directory"),
    case(
        "compare --json in an unwritable folder",
        "compare",
        "--json",
        "ro/c.json",
        named="not writable",
        writable_only=True,
    ),
    case(
        "quantize --out in an unwritable folder",
        "quantize",
        "--data",
        "x.npy",
        "--out",
        "ro/nn",
        named="not writable",
        writable_only=True,
    ),
    case("eval --html in an unwritable folder", "eval", "--html", "ro/html", named="not writable", writable_only=True),
    case(
        "eval --html names a folder that is not a report",
        "eval",
        "--plan",
        "plan",
        "--data",
        "x.npy",
        "--html",
        "out",
        named="is not a qverify report directory",
        plan=True,
    ),
    # model files that are not what they are named
    case("empty model file", "quantize", "--model", "empty.keras", "--data", "x.npy", named="is an empty file"),
    case("text model file", "quantize", "--model", "text.keras", "--data", "x.npy", named="it is a text file"),
    case(
        "Keras 3 weights given as --model",
        "quantize",
        "--model",
        "w.weights.h5",
        "--data",
        "x.npy",
        named="is a weights file (Keras 3 weights",
    ),
    case(
        "Keras 2 weights given as --model",
        "quantize",
        "--model",
        "k2.weights.h5",
        "--data",
        "x.npy",
        named="is a weights file (Keras 2 legacy HDF5 weights",
    ),
    case(
        "renamed Keras 3 weights",
        "quantize",
        "--model",
        "net.py:Net",
        "--weights",
        "w.h5",
        "--data",
        "x.npy",
        named="rename it to w.weights.h5",
    ),
    case(
        "Keras 2 weights named .weights.h5",
        "quantize",
        "--model",
        "net.py:Net",
        "--weights",
        "k2.weights.h5",
        named="holds Keras 2 legacy HDF5 weights",
    ),
    case("empty weights file", "quantize", "--model", "net.py:Net", "--weights", "empty.keras", named="empty file"),
    case(
        "module:Factory not found",
        "quantize",
        "--model",
        "mymodel_q15:Net",
        "--data",
        "x.npy",
        named="in the working directory",
    ),
    case("factory file is a directory", "quantize", "--model", "dir.py:Net", named="dir.py"),
    case("a Python file without its factory", "quantize", "--model", "net.py", named="name its factory"),
    case(
        "a whole model given as --weights",
        "quantize",
        "--weights",
        "m.keras",
        "--out",
        "out",
        named="did you mean --model",
        plan=True,
        in_process=True,
    ),
    case("diff-header --model empty file", "diff-header", "afile.txt", "--model", "empty.keras", named="empty file"),
    # options
    case(
        "bad --function: unknown function",
        "compare",
        "--plan",
        "plan",
        "--function",
        "conv1d=nope",
        named="nope is not a function qverify runs",
        plan=True,
    ),
    case(
        "bad --function: op not in the plan",
        "report",
        "--plan",
        "plan",
        "--function",
        "nope=arm_fully_connected_q15",
        named="not in the plan",
        plan=True,
    ),
    case("bad --function: not OP=FUNCTION", "compare", "--function", "conv1d", named="is not OP=FUNCTION"),
    case(
        "a q7 function on a 16-bit plan",
        "compare",
        "--plan",
        "plan",
        "--function",
        "dense=arm_fully_connected_mat_q7_vec_q15",
        named="--weight-bits dense=8",
        plan=True,
    ),
    case("bad --weight-bits: 9", "quantize", "--weight-bits", "dense=9", named="is not OP=8 or OP=16"),
    case(
        "--weight-bits 8 for a conv",
        "quantize",
        "--model",
        "m.keras",
        "--data",
        "x.npy",
        "--weight-bits",
        "conv1d=8",
        "--out",
        "out",
        named="no CMSIS-NN q15 function computes a conv op with 8-bit weights",
        plan=True,
        in_process=True,
    ),
    case(
        "--weight-bits for an op the model lacks",
        "quantize",
        "--model",
        "m.keras",
        "--data",
        "x.npy",
        "--weight-bits",
        "fc9=8",
        "--out",
        "out",
        named="no conv/dense op 'fc9'",
        plan=True,
        in_process=True,
    ),
    case("bad --samples range: empty", "compare", "--samples", "5:3", named="is empty or negative"),
    case("bad --samples: 0", "compare", "--samples", "0", named="expected N > 0"),
    case("bad --samples: not a number", "target", "--samples", "a:b", named="is not a sample index"),
    case(
        "bad --samples range: past the data",
        "compare",
        "--plan",
        "plan",
        "--samples",
        "0:99",
        named="the data has 8 samples",
        plan=True,
        in_process=True,
    ),
    case("bad --engines", "compare", "--engines", "shift,shift", named="expected 2 different names"),
    case(
        "compare --layer not in the plan",
        "compare",
        "--plan",
        "plan",
        "--layer",
        "nope",
        named="no op named 'nope'",
        plan=True,
    ),
    case("eval --labels with demo data", "eval", "--data", "demo:test", "--labels", "x.npy", named="--labels"),
    case("compare --sanitize with fast kernels", "compare", "--sanitize", "--kernels", "fast", named="--sanitize"),
    # data
    case("missing --data file", "quantize", "--data", "missing.npy", named="missing.npy"),
    case(
        "data of the wrong shape",
        "eval",
        "--plan",
        "plan",
        "--data",
        "wide.npy",
        "--json",
        "out/r.json",
        named="wide.npy has shape (4, 17)",
        plan=True,
    ),
    case(
        "data with NaN in a late chunk",
        "eval",
        "--plan",
        "plan",
        "--data",
        "nan.npy",
        "--chunk",
        "4",
        "--json",
        "out/r.json",
        "--html",
        "out/html",
        named="sample 6 contains NaN",
        plan=True,
        in_process=True,
    ),
    case(
        "plan of another model",
        "eval",
        "--plan",
        "otherplan",
        "--data",
        "x.npy",
        named="not the model this plan was made from",
        plan=True,
        in_process=True,
    ),
    # plans
    case(
        "plan.json edited, hash recomputed: report",
        "report",
        "--plan",
        "badplan",
        named="op 'c1' (conv): stride (0, 1)",
    ),
    case(
        "plan.json edited, hash recomputed: compare",
        "compare",
        "--plan",
        "badplan",
        "--samples",
        "1",
        named="op 'c1' (conv): stride (0, 1)",
    ),
    case(
        "plan.json edited, hash recomputed: eval",
        "eval",
        "--plan",
        "badplan",
        "--data",
        "x.npy",
        named="op 'c1' (conv): stride (0, 1)",
    ),
    case(
        "plan.json edited, hash recomputed: diff-header",
        "diff-header",
        "afile.txt",
        "--plan",
        "badplan",
        named="stride (0, 1)",
    ),
    case("--plan without a plan", "target", "--plan", "noplan"),  # or: the toolchain is missing
    # gate configurations
    case("gate: no configuration", "gate", named="no configuration found"),
    case("gate: a key of the wrong type", "gate", "--config", "bad.toml", named="'samples' must be an integer"),
    # headers
    case("diff-header: malformed header", "diff-header", "bad.h", "--plan", "plan", named="bad.h", plan=True),
    case("diff-header: missing header", "diff-header", "missing.h", "--plan", "plan", named="missing.h", plan=True),
    case(
        "diff-header: --map names no op",
        "diff-header",
        "plan/weights.h",
        "--plan",
        "plan",
        "--map",
        "conv9=X",
        named="no conv/dense op 'conv9'",
        plan=True,
    ),
    # running a header (issue 16 item 3)
    case("compare --header missing", "compare", "--header", "missing.h", named="--header missing.h"),
    case(
        "eval --header malformed",
        "eval",
        "--plan",
        "plan",
        "--data",
        "x.npy",
        "--header",
        "bad.h",
        named="bad.h:1: CONV1D_WT",
        plan=True,
    ),
    case("compare --sample-header without --header", "compare", "--sample-header", "afile.txt", named="needs --header"),
    case("eval --map without --header", "eval", "--map", "conv1d=CONV1", named="needs --header"),
    case("compare --plan with --model", "compare", "--plan", "plan", "--model", "m.keras", named="not both", plan=True),
    case("target --weights without --model", "target", "--weights", "m.keras"),  # or: the toolchain is missing
    case(
        "compare --header of another geometry",
        "compare",
        "--plan",
        "plan",
        "--header",
        "short.h",
        named="CONV1D_WT: has 2 values",
        plan=True,
    ),
    # calibration apart from evaluation (issue 16 item 6)
    case(
        "eval --calib-data with --plan",
        "eval",
        "--plan",
        "plan",
        "--data",
        "x.npy",
        "--calib-data",
        "x.npy",
        named="the plan is already calibrated",
        plan=True,
    ),
    case(
        "eval: evaluated samples overlap the calibration",
        "eval",
        "--model",
        "m.keras",
        "--data",
        "x.npy",
        "--samples",
        "0:4",
        named="--samples: evaluated samples 0:4 overlap the calibration samples 0:4",
        plan=True,
        in_process=True,
    ),
    case(
        "eval --calib-samples past the data",
        "eval",
        "--model",
        "m.keras",
        "--data",
        "x.npy",
        "--calib-samples",
        "20",
        named="calibration samples 0:20 requested but x.npy has 8",
        plan=True,
        in_process=True,
    ),
    case(
        "gate: samples overlap the calibration",
        "gate",
        "--config",
        "overlap.toml",
        named="overlap the calibration samples 0:4",
        plan=True,
    ),
    case("gate: sample_header without header", "gate", "--config", "nohdr.toml", named="goes with 'header'"),
    # the names of the macros qverify writes (issue 16 item 1)
    case("quantize --map not OP=STEM", "quantize", "--data", "x.npy", "--map", "conv1d", named="is not OP=STEM"),
    case(
        "quantize --map stem not a C identifier",
        "quantize",
        "--data",
        "x.npy",
        "--map",
        "conv1d=1X",
        named="'1X' is not a C identifier",
    ),
    case(
        "quantize --map stem a C keyword",
        "quantize",
        "--data",
        "x.npy",
        "--map",
        "conv1d=int",
        named="'int' is a C keyword",
    ),
    case(
        "quantize --map two ops one stem",
        "quantize",
        "--data",
        "x.npy",
        "--map",
        "conv1d=L,dense=L",
        named="ops 'conv1d' and 'dense' both named L",
    ),
    case(
        "quantize --map one op twice",
        "quantize",
        "--data",
        "x.npy",
        "--map",
        "conv1d=A",
        "--map",
        "conv1d=B",
        named="op 'conv1d' is named twice",
    ),
    case(
        "quantize --map stem clashing with qverify's macros",
        "quantize",
        "--data",
        "x.npy",
        "--map",
        "conv1d=INPUT_DATA",
        named="would define C macro INPUT_DATA, which qverify already defines",
    ),
    case(
        "quantize --map stems clashing with each other",
        "quantize",
        "--data",
        "x.npy",
        "--map",
        "conv1d=A,dense=A_BIAS",
        named="would define C macro A_BIAS, which op 'conv1d' already defines",
    ),
    case(
        "quantize --map with --names-from",
        "quantize",
        "--data",
        "x.npy",
        "--map",
        "conv1d=A",
        "--names-from",
        "short.h",
        named="name the macros one way, not both",
    ),
    case(
        "quantize --names-from missing",
        "quantize",
        "--data",
        "x.npy",
        "--names-from",
        "missing.h",
        named="--names-from missing.h",
    ),
    case(
        "quantize --names-from a header without layers",
        "quantize",
        "--data",
        "x.npy",
        "--names-from",
        "afile.txt",
        named="defines no STEM_WT macro",
    ),
    case(
        "quantize --names-from a header of another layer count",
        "quantize",
        "--model",
        "m.keras",
        "--data",
        "x.npy",
        "--names-from",
        "short.h",
        named="the header has 1 layer(s) (CONV1D) but the model has 2",
        plan=True,
        in_process=True,
    ),
    case(
        "quantize --map names no op",
        "quantize",
        "--model",
        "m.keras",
        "--data",
        "x.npy",
        "--map",
        "nope=X",
        named="the model has no conv/dense op 'nope'",
        plan=True,
        in_process=True,
    ),
    case(
        "gate: header_map stem not a C identifier",
        "gate",
        "--config",
        "hmap.toml",
        named="[header_map] maps op names to C macro stems: op 'conv1d': '1X' is not a C identifier",
    ),
]
CASES += [case(f"test_cli_fast: {' '.join(argv)}", *argv, named=named) for argv, named in FAST_CASES]
assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    """One quantized plan of a small Conv1D model (8 calibration samples), its model, and a plan that names
    another model of the same architecture (the hash covers the model's fingerprint, not its path)."""
    import json

    import keras

    from qverify.engines.base import quantize_input
    from qverify.workflow import quantize, write_plan_and_headers

    root = tmp_path_factory.mktemp("quantized")

    def small(seed):
        keras.utils.set_random_seed(seed)
        return keras.Sequential(
            [
                keras.Input((16, 1)),
                keras.layers.Conv1D(2, 3, name="conv1d"),
                keras.layers.Flatten(name="flatten"),
                keras.layers.Dense(1, name="dense"),
            ]
        )

    small(0).save(root / "m.keras")
    small(99).save(root / "other.keras")
    np.save(root / "x.npy", np.random.default_rng(0).uniform(-1, 1, (8, 16)).astype(np.float32))
    q = quantize(str(root / "m.keras"), data=str(root / "x.npy"))
    write_plan_and_headers(q.plan, quantize_input(q.plan, q.x)[0], root / "plan")
    shutil.copytree(root / "plan", root / "otherplan")
    meta = json.loads((root / "otherplan" / "plan.json").read_text())
    meta["source"]["model"] = str(root / "other.keras")
    (root / "otherplan" / "plan.json").write_text(json.dumps(meta, indent=1))
    return root


@pytest.fixture
def work(tmp_path, request):
    """The working folder every case runs in: inputs of every kind, an output folder holding a file."""
    from test_plancheck import MUTATIONS, small_plan

    (tmp_path / "afile.txt").write_text("not a directory")
    (tmp_path / "adir").mkdir()
    (tmp_path / "dir.py").mkdir()
    (tmp_path / "adir" / "qverify.toml").write_text('data = "missing.npy"\n')
    (tmp_path / "good.toml").write_text("samples = 8\n")
    (tmp_path / "bad.toml").write_text("samples = 8.5\n")
    (tmp_path / "net.py").write_text("raise SystemExit('imported')\n")  # found, never run
    (tmp_path / "bad.h").write_text("#define CONV1D_WT {1, 2,\n")
    (tmp_path / "short.h").write_text(
        "#define CONV1D_WT {1, 2}\n#define CONV1D_BIAS {0, 0}\n"
        "#define CONV1D_BIAS_LSHIFT 0\n#define CONV1D_OUT_RSHIFT 1\n"
    )
    (tmp_path / "overlap.toml").write_text('model = "m.keras"\ndata = "x.npy"\nsamples = "0:4"\n')
    (tmp_path / "nohdr.toml").write_text('sample_header = "afile.txt"\n')
    (tmp_path / "hmap.toml").write_text('header_map = { conv1d = "1X" }\n')
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("keep me")
    (tmp_path / "ro").mkdir()
    write_model_files(tmp_path)
    x = np.random.default_rng(0).uniform(-1, 1, (8, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "wide.npy", np.zeros((4, 17), np.float32))
    x[6, 3] = np.nan
    np.save(tmp_path / "nan.npy", x)
    broken = small_plan()
    MUTATIONS["stride 0"][0](broken)
    broken.save(tmp_path / "badplan")  # save() does not validate: a consistent hash over inconsistent content
    if request.getfixturevalue("battery_case").plan:
        src = request.getfixturevalue("quantized")
        for name in ("plan", "otherplan"):
            shutil.copytree(src / name, tmp_path / name)
        shutil.copy(src / "m.keras", tmp_path / "m.keras")
    (tmp_path / "ro").chmod(stat.S_IRUSR | stat.S_IXUSR)
    yield tmp_path
    (tmp_path / "ro").chmod(stat.S_IRWXU)


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under the folder with its contents (None for a directory)."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


def run_subprocess(argv: tuple[str, ...], cwd: Path) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "QVERIFY_CMSIS_ROOT"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "qverify", *argv],
        cwd=cwd,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.returncode, proc.stdout, proc.stderr


def run_in_process(argv: tuple[str, ...], cwd: Path, monkeypatch, capfd) -> tuple[int, str, str]:
    from qverify.cli import main

    monkeypatch.chdir(cwd)
    monkeypatch.delenv("QVERIFY_CMSIS_ROOT", raising=False)
    capfd.readouterr()
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse
        status = exc.code
    out, err = capfd.readouterr()
    return status, out, err


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def battery_case(request):
    return request.param


def test_bad_input_is_one_line_exit_2_and_writes_nothing(battery_case, work, monkeypatch, capfd):
    c = battery_case
    if c.writable_only and os.geteuid() == 0:
        pytest.skip("root writes into a read-only folder")
    before = snapshot(work)
    if c.in_process:
        status, out, err = run_in_process(c.argv, work, monkeypatch, capfd)
    else:
        status, out, err = run_subprocess(c.argv, work)
    lines = err.splitlines()
    assert status == 2, (status, out[-2000:], err[-2000:])
    assert len(lines) == 1, err[-3000:]
    assert lines[0].startswith(f"qverify {c.argv[0]}: error: ") and c.named in lines[0], lines[0]
    assert "Traceback" not in out + err
    assert snapshot(work) == before, "the working folder changed"
