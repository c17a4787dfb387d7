"""examples/firmware builds against any plan's nn/: a small non-demo model gated, then main.c built with gcc for
the host and with arm-none-eabi-gcc for a Cortex-M4 run under qemu-system-arm (make qemu); the self-test it runs
names the op and element of a value edited in sample_input_output.h, and a build of the other rounding stops at
weights.h's #error."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qverify import build
from qverify.cli import main
from tools import require, require_compiler

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "firmware"
MODEL_OPS = ["feat", "feat_relu", "pool", "mix", "flat", "hidden", "hidden_relu", "score"]
DEMO_NAMES = re.compile(r"\b(CONV[1-8]|FC[1-3]|conv[1-8]|fc[1-3])\b")


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """The example copied, configured for a small Conv1D/Dense model of its own, and gated (nn/ written)."""
    import keras

    L = keras.layers
    root = tmp_path_factory.mktemp("example") / "firmware"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("nn", ".qverify_cache", "firmware", "*.elf"))
    keras.utils.set_random_seed(3)
    keras.Sequential(
        [
            keras.Input((48, 2)),
            L.Conv1D(4, 5, activation="relu", name="feat"),
            L.MaxPooling1D(2, name="pool"),
            L.Conv1D(6, 3, padding="same", name="mix"),
            L.Flatten(name="flat"),
            L.Dense(5, activation="relu", name="hidden"),
            L.Dense(1, activation="sigmoid", name="score"),
        ]
    ).save(root / "model.keras")
    np.save(root / "x.npy", (0.3 * np.random.default_rng(0).standard_normal((40, 48, 2))).astype(np.float32))
    (root / "pyproject.toml").write_text(
        '[tool.qverify]\nmodel = "model.keras"\ndata = "x.npy"\n'
        'rounding = "truncate"\nkernels = ["plain"]\nsamples = 8\nout = "nn"\n'
    )
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    try:
        assert main(["gate"]) == 0
    finally:
        mp.undo()
    return root


def make(repo: Path, *args: str, nn: Path | None = None) -> subprocess.CompletedProcess:
    cmd = ["make", "-s", *args, f"PYTHON={sys.executable}", f"QVERIFY_C={build.ROOT}"]
    if nn is not None:
        cmd.append(f"NN={nn}")
    return subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=600)


def edit_expected(nn: Path, dest: Path, stem: str, index: int) -> int:
    """A copy of nn/ whose sample_input_output.h has element `index` of STEM's expected output raised by one."""
    shutil.copytree(nn, dest)
    path = dest / "sample_input_output.h"
    text = path.read_text()
    start = text.index("\n", text.index(f"#define {stem} {{"))
    value = list(re.finditer(r"-?\d+", text[start:]))[index]
    old = int(value.group())
    path.write_text(text[: start + value.start()] + str(old + 1) + text[start + value.end() :])
    return old


def test_main_c_names_no_layer():
    """main.c builds against any plan: nothing in it names one of the demo's layers."""
    assert not DEMO_NAMES.findall((EXAMPLE / "main.c").read_text())
    assert "qv_selftest" in (EXAMPLE / "main.c").read_text()


def test_host_build_runs_the_selftest(repo, tmp_path):
    """make run (gcc): the op table of this model printed by name, every conv/dense op bit-exact, exit 0; an edited
    expected value fails naming that op and element; a build without ARM_NN_TRUNCATE stops at weights.h's #error."""
    require("make")
    require_compiler("gcc")
    ran = make(repo, "run", "CC=gcc")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert all(f" {name} " in ran.stdout for name in MODEL_OPS)
    assert "PASS: 8 ops ran, the 4 with an expected output bit-exact with sample_input_output.h" in ran.stdout

    old = edit_expected(repo / "nn", tmp_path / "nn", "MIX", 7)
    subprocess.run(["make", "-s", "clean"], cwd=repo, check=True)
    ran = make(repo, "run", "CC=gcc", nn=tmp_path / "nn")
    assert ran.returncode != 0
    assert (
        f"FAIL: op 3 (mix): 1 of 132 values differ from sample_input_output.h; first at element 7: "
        f"expected {old + 1}, got {old}"
    ) in ran.stdout

    subprocess.run(["make", "-s", "clean"], cwd=repo, check=True)
    made = make(repo, "firmware", "CC=gcc", "ROUNDING_FLAGS=")
    assert made.returncode != 0
    assert "#error" in made.stderr and "verified for rounding = truncate" in made.stderr
    subprocess.run(["make", "-s", "clean"], cwd=repo, check=True)


def test_cortex_m4_build_runs_under_qemu(repo, tmp_path):
    """make qemu: main.c, nn/ and the kernels cross-compiled for a Cortex-M4 (DSP path) with qverify's startup and
    linker script, run on QEMU's MPS2 AN386: the same PASS, exit 0; the edited header fails there too (exit 1)."""
    require("make", "qemu-system-arm")
    require_compiler("arm-none-eabi-gcc", "--specs=nosys.specs")
    ran = make(repo, "qemu", "CPU=cortex-m4")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "PASS: 8 ops ran, the 4 with an expected output bit-exact with sample_input_output.h" in ran.stdout
    assert all(f" {name} " in ran.stdout for name in MODEL_OPS)
    assert "arm_convolve_HWC_q15_fast_nonsquare" in ran.stdout

    old = edit_expected(repo / "nn", tmp_path / "nn", "HIDDEN", 2)
    subprocess.run(["make", "-s", "clean"], cwd=repo, check=True)
    ran = make(repo, "qemu", "CPU=cortex-m4", nn=tmp_path / "nn")
    assert ran.returncode != 0  # QEMU exits with main's 1
    assert (
        f"FAIL: op 5 (hidden): 1 of 5 values differ from sample_input_output.h; first at element 2: "
        f"expected {old + 1}, got {old}"
    ) in ran.stdout
    subprocess.run(["make", "-s", "clean"], cwd=repo, check=True)
