"""`qverify eval`: dataset-scale verification on the demo and on small models, bad input, streaming memory."""

from __future__ import annotations

import copy
import json
import platform
import shutil
import tracemalloc
import xml.etree.ElementTree as ET
from pathlib import Path

import keras
import numpy as np
import pytest

from qverify import checks, dataset, native_lib
from qverify import evaluate as ev
from qverify.cli import main
from qverify.engines.native import NativeEngine
from qverify.errors import DataError
from qverify.plan import QuantPlan
from qverify.workflow import graph_for, quantize
from tools import require

L = keras.layers


def small_model(seed: int = 3, length: int = 64, classes: int = 3):
    """A 1-D CNN with every op kind eval meets: conv (fused relu), pool, conv with 'same' padding, GAP, dense."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((length, 1)),
            L.Conv1D(4, 5, activation="relu", name="c1"),
            L.MaxPooling1D(2, name="p1"),
            L.Conv1D(6, 3, padding="same", name="c2"),
            L.ReLU(name="r2"),
            L.GlobalAveragePooling1D(name="gap"),
            L.Dense(classes, activation="softmax" if classes > 1 else "sigmoid", name="out"),
        ]
    )


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The small model saved, quantized from 256 samples, its plan on disk, data and labels files."""
    d = tmp_path_factory.mktemp("small")
    small_model().save(d / "model.keras")
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal((300, 64, 1))).astype(np.float32)
    y = rng.integers(0, 3, 300)
    np.save(d / "x.npy", x)
    np.save(d / "y.npy", y)
    q = quantize(str(d / "model.keras"), data=str(d / "x.npy"), calib_samples=256)
    q.plan.save(d / "plan")
    return d


@pytest.fixture(scope="module")
def demo_plan(tmp_path_factory):
    """The demo's default plan, on disk."""
    d = tmp_path_factory.mktemp("demo") / "plan"
    quantize().plan.save(d)
    return d


def leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def test_eval_demo_writes_every_report(demo_plan, tmp_path, capsys):
    """On 64 demo samples: exit 0, shift = native on every sample, accuracies, and all four outputs written."""
    out = tmp_path / "out"
    out.mkdir()
    status = main(
        [
            "eval",
            "--plan",
            str(demo_plan),
            "--samples",
            "64",
            "--json",
            str(out / "r.json"),
            "--junit",
            str(out / "r.xml"),
            "--html",
            str(out / "html"),
            "--npz",
            str(out / "r.npz"),
            "--dump-samples",
            "4",
        ]
    )
    text = capsys.readouterr().out
    assert status == 0, text
    assert "PASS: shift and native bit-exact on all 64 samples" in text
    assert "fast kernels (auto-selected" in text
    r = json.loads((out / "r.json").read_text())
    assert r["bit_exact"] is True and r["bit_exact_samples"] == 64 and r["samples"] == 64
    assert r["data"] == "demo:test"
    for e in ("float", "shift", "native"):
        assert 0.0 <= r["decisions"][e]["accuracy"] <= 1.0
    assert r["decisions"]["shift"]["flips_vs_float"] == r["decisions"]["native"]["flips_vs_float"]
    conv1 = r["ops"][0]
    assert conv1["name"] == "conv1" and conv1["shift_vs_native"]["mismatches"] == 0
    assert conv1["vs_float"]["shift"]["sqnr_db"] > 40  # first layer: only rounding error
    assert r["footprint"]["totals"]["macs"] == 11_745_152

    suite = ET.parse(out / "r.xml").getroot()
    cases = suite.findall(".//testcase")
    names = {(c.get("classname"), c.get("name")) for c in cases}
    assert ("qverify.conv3", "bit_exact[shift-native]") in names
    assert ("qverify.conv3", "sqnr[shift]") in names and ("qverify.conv3", "saturation") in names
    assert ("qverify.model", "accuracy_drop[native]") in names
    assert not suite.findall(".//failure")

    with np.load(out / "r.npz") as z:
        assert z["shift/conv1"].shape == (4, 4088, 1, 16) and z["shift/conv1"].dtype == np.int16
        assert z["float/fc3"].dtype == np.float32
        np.testing.assert_array_equal(z["shift/fc3"], z["native/fc3"])
        np.testing.assert_array_equal(z["sample_index"], np.arange(4))
        assert list(z["op_names"])[-1] == "fc3"
    html = (out / "html" / "index.html").read_text()
    for png in ("sqnr.png", "errors.png", "ranges.png", "scores.png", "footprint.png"):
        assert png in html and (out / "html" / png).stat().st_size > 1000
    assert leftovers(out) == ["html", "r.json", "r.npz", "r.xml"]  # no temporary files


def test_eval_small_model_softmax_with_labels(small, capsys):
    """A user plan with one-hot labels: argmax decisions, accuracy per engine, engines agree."""
    y = np.load(small / "y.npy")
    np.save(small / "onehot.npy", np.eye(3, dtype=np.float32)[y])
    status = main(
        [
            "eval",
            "--plan",
            str(small / "plan"),
            "--data",
            str(small / "x.npy"),
            "--labels",
            str(small / "onehot.npy"),
            "--chunk",
            "64",
        ]
    )
    text = capsys.readouterr().out
    assert status == 0, text
    assert "bit-exact samples (shift = native on every op): 300 of 300" in text
    plan = QuantPlan.load(small / "plan")
    result = ev.evaluate(plan, graph_for(plan), dataset.load_dataset(plan, small / "x.npy", small / "y.npy"), chunk=64)
    assert result.samples == 300 and result.bit_exact
    assert result.decisions["float"].correct == int(np.count_nonzero(result.predictions["float"] == y))
    # the float engine's decisions are the Keras model's own
    model = keras.models.load_model(small / "model.keras")
    keras_cls = np.argmax(model.predict(np.load(small / "x.npy"), verbose=0), axis=1)
    assert np.mean(keras_cls == result.predictions["float"]) > 0.99


def test_engine_subsets_and_streaming_match_one_chunk(small):
    """Statistics do not depend on the chunk size; any engine subset runs."""
    plan = QuantPlan.load(small / "plan")
    graph = graph_for(plan)
    data = dataset.load_dataset(plan, small / "x.npy", small / "y.npy", samples=100)
    whole = ev.evaluate(plan, graph, data, chunk=100)
    parts = ev.evaluate(plan, graph, data, chunk=7)
    for a, b in zip(whole.ops, parts.ops, strict=True):
        sa, sb = a.quant["shift"], b.quant["shift"]
        assert sa.count == sb.count and sa.q_min == sb.q_min and sa.q_max == sb.q_max
        assert sa.sqnr_db == pytest.approx(sb.sqnr_db, rel=1e-6)
        np.testing.assert_array_equal(sa.err_hist, sb.err_hist)
        assert a.pair.total == b.pair.total and b.pair.mismatches == 0
    np.testing.assert_array_equal(whole.predictions["native"], parts.predictions["native"])
    only = ev.evaluate(plan, None, data, engines=["shift", "native"], chunk=50)
    assert only.bit_exact and not only.ops[0].quant and "float" not in only.decisions
    fn = ev.evaluate(plan, graph, data, engines=["float", "native"], chunk=50)
    assert fn.bit_exact_samples is None and set(fn.ops[0].quant) == {"native"}


def test_native_mismatch_fails_with_first_mismatches(small, tmp_path):
    """A native build that rounds where the plan truncates: exit status 1, failing JUnit cases name the op."""
    plan = QuantPlan.load(small / "plan")
    graph = graph_for(plan)
    data = dataset.load_dataset(plan, small / "x.npy", samples=40)
    built = ev.make_engines(plan, graph, list(ev.ENGINE_NAMES))
    built["native"] = NativeEngine(plan, kernels="plain", rounding="round")
    result = checks.add_checks(ev.evaluate(plan, graph, data, built=built))
    assert not result.ok and result.bit_exact is False and result.first_inexact_samples[0] == 0
    failed = [(c.classname, c.name) for c in result.checks if not c.passed]
    assert ("qverify.c1", "bit_exact[shift-native]") in failed and ("qverify.model", "bit_exact_samples") in failed
    c1 = result.ops[0].pair
    assert c1.max_diff == 1 and c1.first and set(c1.histogram) <= {1}
    from qverify.reports.junit import eval_junit

    root = ET.fromstring(eval_junit(result))
    fail = root.find(".//testcase[@classname='qverify.c1'][@name='bit_exact[shift-native]']/failure")
    assert fail is not None and "first mismatches" in fail.text


def test_a_nan_float_output_names_the_op_and_its_samples(small):
    """A float model that computes a NaN (finite input, overflowing arithmetic) has no error statistics: one
    DataError naming the op and the chunk's samples, not a silent NaN SQNR."""
    plan = QuantPlan.load(small / "plan")
    graph = graph_for(plan)
    data = dataset.load_dataset(plan, small / "x.npy", samples=40)
    built = ev.make_engines(plan, graph, list(ev.ENGINE_NAMES))
    real = built["float"].run_float
    second = plan.ops[1].name

    def nan_in_the_second_chunk(x):
        outs = real(x)
        if len(x) == 15:  # chunks of 25: the second has 15 samples (25..39)
            outs[second] = outs[second].copy()
            outs[second].flat[3] = np.nan
        return outs

    built["float"].run_float = nan_in_the_second_chunk
    with pytest.raises(DataError, match=rf"op '{second}', samples 25\.\.39: .*NaN"):
        ev.evaluate(plan, graph, data, chunk=25, built=built)


def test_thresholds_gate(small):
    """--min-sqnr and --max-accuracy-drop turn measurements into failures only when given."""
    plan = QuantPlan.load(small / "plan")
    graph = graph_for(plan)
    data = dataset.load_dataset(plan, small / "x.npy", small / "y.npy", samples=64)
    r = ev.evaluate(plan, graph, data)
    assert checks.add_checks(copy.copy(r)).ok
    strict = checks.add_checks(copy.copy(r), min_sqnr=500.0)
    assert not strict.ok and all(c.name.startswith("sqnr") for c in strict.checks if not c.passed)
    assert checks.add_checks(copy.copy(r), max_accuracy_drop=100.0).ok


@pytest.mark.parametrize(
    "case",
    [
        "labels_length",
        "labels_kind",
        "labels_fraction",
        "labels_range",
        "data_shape",
        "data_int",
        "other_model",
        "html_not_report",
        "missing_data",
    ],
)
def test_bad_input_one_line_exit_2_no_files(small, tmp_path, capsys, case):
    """Bad labels, data or plan: one line on stderr, exit status 2, and no report file or temp file left."""
    out = tmp_path / "out"
    out.mkdir()
    plan_dir, x, y = str(small / "plan"), str(small / "x.npy"), str(small / "y.npy")
    bad = tmp_path / "bad.npy"
    args = ["--data", x, "--labels", y]
    expect = None
    if case == "labels_length":
        np.save(bad, np.load(y)[:-1])
        args, expect = ["--data", x, "--labels", str(bad)], "labels .* have 299 entries but the data has 300"
    elif case == "labels_kind":
        np.save(bad, np.array(["a"] * 300))
        args, expect = ["--data", x, "--labels", str(bad)], "expected integer class indices"
    elif case == "labels_fraction":
        np.save(bad, np.full(300, 0.5))
        args, expect = ["--data", x, "--labels", str(bad)], "not a class index"
    elif case == "labels_range":
        np.save(bad, np.full(300, 3))
        args, expect = ["--data", x, "--labels", str(bad)], "outside the model's classes 0..2"
    elif case == "data_shape":
        np.save(bad, np.zeros((10, 63), np.float32))
        args, expect = ["--data", str(bad)], r"shape \(10, 63\); expected"
    elif case == "data_int":
        np.save(bad, np.zeros((10, 64), np.int16))
        args, expect = ["--data", str(bad)], "dtype int16"
    elif case == "other_model":
        model_dir = tmp_path / "m"
        shutil.copytree(small, model_dir, ignore=shutil.ignore_patterns("*.npy"))
        plan = QuantPlan.load(model_dir / "plan")
        plan.source["model"] = str(model_dir / "model.keras")
        plan.save(model_dir / "plan")
        small_model(seed=99).save(model_dir / "model.keras")  # same architecture, other weights
        plan_dir, expect = str(model_dir / "plan"), "not the model this plan was made from"
    elif case == "html_not_report":
        (tmp_path / "mine").mkdir()
        (tmp_path / "mine" / "notes.txt").write_text("keep me")
        args, expect = args + ["--html", str(tmp_path / "mine")], "is not a qverify report directory"
    elif case == "missing_data":
        args, expect = ["--data", str(tmp_path / "nope.npy")], "does not exist"
    outputs = ["--json", str(out / "r.json"), "--junit", str(out / "r.xml"), "--npz", str(out / "r.npz")]
    if case != "html_not_report":
        outputs += ["--html", str(out / "html")]
    status = main(["eval", "--plan", plan_dir, *args, *outputs])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1 and err[0].startswith("qverify eval: error: ")
    import re

    assert re.search(expect, err[0]), err[0]
    assert leftovers(out) == []
    if case == "html_not_report":
        assert leftovers(tmp_path / "mine") == ["notes.txt"]


def test_nan_in_a_late_chunk_names_the_sample_and_writes_nothing(small, tmp_path, capsys):
    """Data checked chunk by chunk: a NaN in sample 250 fails the run before any file is written."""
    x = np.load(small / "x.npy")
    x[250, 7, 0] = np.nan
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out"
    out.mkdir()
    status = main(
        [
            "eval",
            "--plan",
            str(small / "plan"),
            "--data",
            str(tmp_path / "x.npy"),
            "--chunk",
            "64",
            "--json",
            str(out / "r.json"),
            "--html",
            str(out / "html"),
        ]
    )
    assert status == 2
    assert "sample 250 contains NaN" in capsys.readouterr().err
    assert leftovers(out) == []


def test_check_labels_forms():
    """(N,) ints, bools, whole floats and one-hot rows are accepted; a broken one-hot row is named."""
    np.testing.assert_array_equal(dataset.check_labels(np.array([0, 1, 1]), 3, 1), [0, 1, 1])
    np.testing.assert_array_equal(dataset.check_labels(np.array([True, False]), 2, 1), [1, 0])
    np.testing.assert_array_equal(dataset.check_labels(np.array([2.0, 0.0]), 2, 3), [2, 0])
    np.testing.assert_array_equal(dataset.check_labels(np.eye(3)[[2, 0]], 2, 3), [2, 0])
    with pytest.raises(DataError, match="row 1 of the"):
        dataset.check_labels(np.array([[0, 1, 0], [1, 1, 0]]), 2, 3)
    with pytest.raises(DataError, match="one-hot with 2 columns; the model has 3"):
        dataset.check_labels(np.eye(2), 2, 3)


def test_decisions_follow_design_rule_9():
    """One unit: integer logit > 0, float sigmoid > 0.5; more units: argmax."""
    np.testing.assert_array_equal(ev.decide_int(np.array([[0], [1], [-1]])), [0, 1, 0])
    np.testing.assert_array_equal(ev.decide_float(np.array([[0.0], [1e-3], [-2.0]], np.float32), "sigmoid"), [0, 1, 0])
    np.testing.assert_array_equal(ev.decide_int(np.array([[1, 5, 2], [7, 0, 0]])), [1, 0])


def test_a_sigmoid_of_the_plan_decides_at_one_half():
    """A plan whose last op is the device's sigmoid outputs probabilities (Q0.15): both the float model and the
    integer engines decide at 0.5 (16384), not at 0, where every probability would be class 1."""
    from types import SimpleNamespace

    def plan(kind, out_frac=15):
        return SimpleNamespace(ops=[SimpleNamespace(kind=kind, out_frac=out_frac)])

    assert ev.decision_cut(plan("sigmoid")) == (0.5, 16384)
    assert ev.decision_cut(plan("dense", 9)) == (0.0, 0) and ev.decision_cut(plan("tanh")) == (0.0, 0)
    cut, cut_q = ev.decision_cut(plan("sigmoid"))
    np.testing.assert_array_equal(ev.decide_int(np.array([[16384], [16385], [100]]), cut_q), [0, 1, 0])
    np.testing.assert_array_equal(ev.decide_float(np.array([[0.5], [0.5001], [0.1]], np.float32), None, cut), [0, 1, 0])


def test_streaming_memory_does_not_grow_with_samples(tmp_path):
    """Python-side peak memory (tracemalloc sees every numpy buffer) is bounded by the chunk, not the data set.

    8x the samples must not need more than a small margin of extra peak memory, and the peak stays far below
    what holding every op's outputs of every engine for the data set would take."""
    keras.utils.set_random_seed(5)
    model = keras.Sequential(
        [
            keras.Input((512, 1)),
            L.Conv1D(8, 5, activation="relu", name="c1"),
            L.Conv1D(8, 3, name="c2"),
            L.GlobalAveragePooling1D(name="gap"),
            L.Dense(1, activation="sigmoid", name="out"),
        ]
    )
    model.save(tmp_path / "m.keras")
    rng = np.random.default_rng(1)
    x = (0.3 * rng.standard_normal((4096, 512, 1))).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    q = quantize(str(tmp_path / "m.keras"), data=str(tmp_path / "x.npy"), calib_samples=256)
    plan, graph = q.plan, q.graph
    per_sample = sum(op.size for op in plan.ops) * (4 + 2 + 2)  # float32 + shift int16 + native int16

    def peak(n: int) -> int:
        data = dataset.load_dataset(plan, tmp_path / "x.npy", samples=n)  # memory-mapped
        built = ev.make_engines(plan, graph, list(ev.ENGINE_NAMES))
        tracemalloc.start()
        try:
            ev.evaluate(plan, graph, data, chunk=128, built=built)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small_peak, large_peak = peak(512), peak(4096)
    assert large_peak < 1.3 * small_peak + 2**20, (small_peak, large_peak)
    assert large_peak < 0.1 * 4096 * per_sample, (large_peak, 4096 * per_sample)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="checks x86 packed multiply-add instructions")
def test_kernels_are_vectorised(monkeypatch):
    """The plain-C kernels compile to packed multiply-adds (pmaddwd), not scalar code, and the fast
    build's host conv (eval's default) holds vpdpwssd (AVX-512 VNNI) and vpmaddwd (AVX2) loops."""
    require("objdump")
    import importlib
    import importlib.util
    import re

    native_lib.load("plain", "truncate")  # refuses a stale build
    path = Path(__file__).resolve().parents[1] / "bench" / "bench_engines.py"
    monkeypatch.syspath_prepend(str(path.parent))  # as when it runs as a script: its folder's modules import
    spec = importlib.util.spec_from_file_location("bench_engines", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # the benchmark's own check, so test and bench cannot drift apart
    counts = bench.vectorisation("qverify._native_plain_truncate")
    assert set(counts) == {*bench.HOT, "arm_relu_q15 (pmaxsw)"}
    assert all(counts.values()), counts
    fast_lib = native_lib.load("fast", "truncate")
    fast = bench.vectorisation("qverify._native_fast_truncate", bench.HOT_FAST)
    assert set(fast) == set(bench.HOT_FAST) and all(fast.values()), fast
    # run-time dispatch is only safe if nothing but the AVX-512 function uses AVX-512 registers and
    # nothing outside the two SIMD functions uses AVX at all (the module must run on any x86-64)
    functions = bench.disassembly(importlib.import_module(fast_lib.module_name).__file__)
    avx512 = re.compile(r"%zmm|%k[1-7]|%[xy]mm(1[6-9]|2[0-9]|3[01])\b")
    assert not avx512.search(functions["qv_block_avx2"])
    assert not [
        name
        for name, body in functions.items()
        if name not in ("qv_block_avx512", "qv_block_avx2") and re.search(r"%ymm|%zmm", body)
    ]


def test_sample_ranges_keep_source_indices(small, tmp_path):
    """A data set that starts at sample k holds rows k.. and reports indices (dump, decision flips) in the
    source's numbering.

    The small model's float decision is class 0 on every sample. To make flips, the plan's integer last
    dense gets its weight rows for classes 0 and 1 swapped (its biases are all 0; the float model, read from
    the Keras file, is untouched), so the integer engines say class 1 where their logit for class 0 was the
    largest. The even rows 50, 52, ..., 68 are scaled by 1e-7, below the input's quantization step: they
    quantize to zeros, all integer logits are 0 (the biases are Keras's zero init) and argmax says class 0,
    no flip. So the flips are exactly the odd source indices 51..69 (local 1..19, in all three chunks of 8)."""
    plan = QuantPlan.load(small / "plan")
    x, y = np.load(small / "x.npy"), np.load(small / "y.npy")
    x[50:70:2] *= 1e-7
    np.save(tmp_path / "x.npy", x)
    last = plan.ops[-1]
    assert last.kind == "dense" and not last.bias.any()
    rows = last.weights.reshape(3, -1)  # [out][in], a view: the plan's own array
    rows[[0, 1]] = rows[[1, 0]]
    data = dataset.load_dataset(plan, tmp_path / "x.npy", small / "y.npy", samples=20, first=50)
    assert data.first == 50 and np.array_equal(data.x, x[50:70]) and np.array_equal(data.labels, y[50:70])
    result = ev.evaluate(plan, graph_for(plan), data, chunk=8, dump_samples=5)
    assert result.dump["sample_index"].tolist() == [50, 51, 52, 53, 54]
    assert result.predictions["float"].tolist() == [0] * 20
    assert result.decisions["float"].flips == 0 and result.decisions["float"].first_flips == []
    for e in ("shift", "native"):
        assert result.predictions[e].tolist() == [0, 1] * 10, e
        d = result.decisions[e]
        assert d.flips == 10, e
        expect = [
            {
                "sample": 50 + i,
                "float_class": 0,
                "class": 1,
                "float_score": float(result.scores["float"][i]),
                "score": float(result.scores[e][i]),
            }
            for i in range(1, 20, 2)
        ]
        assert d.first_flips == expect, (e, [f["sample"] for f in d.first_flips])
    with pytest.raises(DataError, match="samples 290:310 requested but .* has 300 samples"):
        dataset.load_dataset(plan, small / "x.npy", samples=20, first=290)
    demo = dataset.demo_dataset(3, first=4)
    assert demo.first == 4 and len(demo) == 3
