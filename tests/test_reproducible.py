"""Reproducible outputs (issue 16 item 5): the plan hash and every file of the output set depend on content
(the model's weights and architecture, the data, the options, qverify's version), never on where the checkout
is, the working directory, or whether paths were given relative or absolute.

One project (a model, its data, a gate configuration) is copied to two directories of different depth;
`quantize` and `qverify gate` run in each, one from inside the project with relative arguments, the other
from an unrelated working directory with absolute ones. Every file of each output set, the manifest
included, must be the same bytes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from qverify.cli import main
from qverify.plan import QuantPlan

SET = ("plan.json", "plan.npz", "weights.h", "sample_input_output.h", "qverify-manifest.json")


@pytest.fixture(scope="module")
def checkouts(tmp_path_factory):
    """(first, second, elsewhere): the same project at two paths, and a working directory outside both."""
    import keras

    root = tmp_path_factory.mktemp("repro")
    first = root / "checkout_a" / "fw"
    first.mkdir(parents=True)
    keras.utils.set_random_seed(5)
    keras.Sequential(
        [
            keras.Input((16, 1)),
            keras.layers.Conv1D(3, 3, name="conv1"),
            keras.layers.ReLU(name="act1"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(2, name="fc1"),
        ]
    ).save(first / "m.keras")
    np.save(first / "x.npy", (0.4 * np.random.default_rng(2).standard_normal((24, 16, 1))).astype(np.float32))
    (first / "pyproject.toml").write_text(
        '[tool.qverify]\nmodel = "m.keras"\ndata = "x.npy"\nsamples = 8\n'
        'out = "gate_nn"\n[tool.qverify.header_map]\nconv1 = "CONV1X"\n'
    )
    second = root / "elsewhere" / "much" / "deeper" / "fw"
    shutil.copytree(first, second)
    elsewhere = root / "cwd"
    elsewhere.mkdir()
    return first, second, elsewhere


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def assert_same_set(a: Path, b: Path, names: tuple[str, ...]) -> None:
    got_a, got_b = files_of(a), files_of(b)
    assert sorted(got_a) == sorted(got_b) == sorted(names)
    for name in names:
        assert got_a[name] == got_b[name], f"{name} differs between {a} and {b}"


def test_quantize_writes_the_same_bytes_from_two_checkouts(checkouts, monkeypatch, capsys):
    """quantize run inside one checkout (relative paths) and from outside the other (absolute paths): the same
    files, byte for byte; plan.json's source paths are relative to its folder and load as the right files."""
    first, second, elsewhere = checkouts
    monkeypatch.chdir(first)
    assert main(["quantize", "--model", "m.keras", "--data", "./x.npy", "--out", "nn", "--map", "fc1=OUT"]) == 0
    monkeypatch.chdir(elsewhere)
    assert (
        main(
            [
                "quantize",
                "--model",
                str(second / "m.keras"),
                "--data",
                str(second / "x.npy"),
                "--out",
                str(second / "nn"),
                "--map",
                "fc1=OUT",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert_same_set(first / "nn", second / "nn", SET)
    source = json.loads((first / "nn" / "plan.json").read_text())["source"]
    assert (source["model"], source["data"], source["weights"]) == ("../m.keras", "../x.npy", None)
    for checkout in (first, second):  # read from anywhere, the paths are those of its own checkout
        plan = QuantPlan.load(checkout / "nn")
        assert plan.source["model"] == str((checkout / "m.keras").resolve())
        assert plan.source["data"] == str((checkout / "x.npy").resolve())
    assert main(["eval", "--plan", str(second / "nn"), "--samples", "0:4"]) == 0  # the model and data it names
    assert "evaluating on the plan's calibration data" in capsys.readouterr().out


def test_the_gate_writes_the_same_bytes_from_two_checkouts(checkouts, monkeypatch, capsys):
    """The gate run in one checkout and, by --config, from outside the other: the same set, network.c and
    manifest included, with the header_map's names."""
    first, second, elsewhere = checkouts
    monkeypatch.chdir(first)
    assert main(["gate"]) == 0
    monkeypatch.chdir(elsewhere)
    assert main(["gate", "--config", str(second / "pyproject.toml")]) == 0
    out = capsys.readouterr().out
    assert "macro names (header_map): conv1 → CONV1X, fc1 → FC1" in out
    assert_same_set(first / "gate_nn", second / "gate_nn", (*SET, "network.c"))
    assert "CONV1X_WT" in (first / "gate_nn" / "network.c").read_text()
