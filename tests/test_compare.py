"""The gate gates: injected faults in the native copy make compare fail, naming the right op."""

import copy
import json

import keras
import numpy as np
import pytest

from qverify.calibrate import calibrate, prepare_input
from qverify.cli import main
from qverify.compare import run_compare
from qverify.engines import make_engine, quantize_input
from qverify.graph import build_graph
from qverify.layout import conv_from_cmsis, notebook_conv_order
from qverify.plan import make_plan

L = keras.layers


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A 2-D model with a 3x2 kernel (where layouts matter), its plan on disk, data and quantized input."""
    keras.utils.set_random_seed(8)
    model = keras.Sequential(
        [
            keras.Input((16, 12, 2)),
            L.Conv2D(4, (3, 2), activation="relu", name="conv_a"),
            L.Conv2D(6, (3, 3), padding="same", name="conv_b"),
            L.ReLU(name="relu_b"),
            L.MaxPooling2D((2, 2), name="pool"),
            L.Flatten(name="flat"),
            L.Dense(8, activation="relu", name="fc"),
            L.Dense(1, activation="sigmoid", name="out"),
        ]
    )
    g = build_graph(model)
    xf = np.random.default_rng(0).uniform(-1, 1, (24, 16, 12, 2)).astype(np.float32)
    plan = make_plan(g, calibrate(g, prepare_input(xf, g)))
    d = tmp_path_factory.mktemp("small")
    np.save(d / "x.npy", xf)
    plan.source["data"] = str(d / "x.npy")
    plan.save(d / "plan")
    x, _ = quantize_input(plan, prepare_input(xf, g))
    return plan, d, x


def compare_with(plan, native_plan, x, mode="propagated", **native):
    return run_compare(
        plan, make_engine("shift", plan), make_engine("native", native_plan, **native), x, list(range(len(x))), mode
    )


@pytest.mark.parametrize("kernels", ["dsp", "plain"])
@pytest.mark.parametrize("rounding", ["truncate", "round"])
def test_engines_agree_when_builds_match(small, kernels, rounding):
    """Shift and native agree on every op in every variant whose rounding matches the plan."""
    plan, _, x = small
    plan = copy.deepcopy(plan)
    plan.rounding = rounding
    for mode in ("propagated", "isolated"):
        c = compare_with(plan, plan, x, mode, kernels=kernels)
        assert c.ok, [(o.name, o.mismatches) for o in c.ops]


def test_flipped_weight_lsb_is_named(small):
    """One weight's LSB flipped in the native copy fails exactly that op first."""
    plan, _, x = small
    bad = copy.deepcopy(plan)
    bad.op("conv_b").weights[5] ^= 1
    for mode in ("propagated", "isolated"):
        c = compare_with(plan, bad, x, mode)
        assert not c.ok and c.first_divergent.name == "conv_b"
    iso = compare_with(plan, bad, x, "isolated")
    assert [o.name for o in iso.ops if o.mismatches] == ["conv_b"]  # isolated: nothing downstream differs


def test_wrong_out_shift_is_named(small):
    """A wrong out_shift in the firmware's copy fails that op."""
    plan, _, x = small
    bad = copy.deepcopy(plan)
    bad.op("fc").out_rshift += 1
    c = compare_with(plan, bad, x, "isolated")
    assert c.first_divergent.name == "fc" and c.first_divergent.max_diff > 1


def test_transposed_kernel_is_named(small):
    """The notebook's [c_out][k_w][k_h][c_in] order for a 3x2 kernel fails the conv that has it."""
    plan, _, x = small
    bad = copy.deepcopy(plan)
    op = bad.op("conv_a")
    keras_w = conv_from_cmsis(op.weights, *op.kernel, op.in_shape[2], op.out_shape[2])
    op.weights = notebook_conv_order(keras_w).astype(np.int16)
    c = compare_with(plan, bad, x)
    assert c.first_divergent.name == "conv_a"


def test_rounding_mismatch_is_named(small):
    """A firmware built with NN_ROUND against a truncate plan: the first conv differs by exactly 1 LSB."""
    plan, _, x = small
    c = compare_with(plan, plan, x, "isolated", rounding="round")
    first = c.first_divergent
    assert first.name == "conv_a" and first.max_diff == 1 and set(first.histogram) == {1}


def test_cli_compare_exit_codes_and_json(small, tmp_path, capsys):
    """compare exits 0 when exact, 1 naming the first op on a rounding mismatch, 2 on a bad layer name."""
    plan, d, _ = small
    assert main(["compare", "--plan", str(d / "plan"), "--samples", "0:8", "--layer", "conv_b"]) == 0
    out = capsys.readouterr().out
    assert "PASS: all" in out and "conv_b: 0 of" in out
    js = tmp_path / "c.json"
    code = main(
        [
            "compare",
            "--plan",
            str(d / "plan"),
            "--sample",
            "3",
            "--rounding",
            "round",
            "--layer",
            "conv_a",
            "--json",
            str(js),
        ]
    )
    out = capsys.readouterr().out
    assert code == 1 and "first divergent op: conv_a" in out and "first mismatches (sample, h, w, c" in out
    data = json.loads(js.read_text())
    assert data["first_divergent"] == "conv_a" and data["samples"] == [3] and not data["ok"]
    # --samples N is the first N (as in eval and the gate), START:STOP a range, --sample one index
    assert main(["compare", "--plan", str(d / "plan"), "--samples", "5", "--json", str(js)]) == 0
    assert json.loads(js.read_text())["samples"] == [0, 1, 2, 3, 4]
    assert main(["compare", "--plan", str(d / "plan"), "--samples", "2:4", "--json", str(js)]) == 0
    assert json.loads(js.read_text())["samples"] == [2, 3]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--plan", str(d / "plan"), "--samples", "0"])
    assert exit_info.value.code == 2
    assert "0 samples: expected N > 0 (the first N) or START:STOP" in capsys.readouterr().err
    assert main(["compare", "--plan", str(d / "plan"), "--layer", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no op named 'nope'" in err


def test_native_rejects_bad_shapes(small):
    """A wrong shape or dtype is refused in Python before it reaches C."""
    from qverify.errors import DataError

    plan, _, x = small
    engine = make_engine("native", plan)
    with pytest.raises(DataError, match=r"shape \(2, 16, 11, 2\); expected \(N, 16, 12, 2\)"):
        engine.run(x[:2, :, :11])
    with pytest.raises(DataError, match="dtype float32"):
        engine.run(x[:2].astype(np.float32))


def test_layer_detail_is_bounded_when_a_whole_layer_is_off():
    """Thousands of distinct LSB differences (a layer wholly wrong) fold into power-of-two ranges: the --layer
    detail stays within a screen and its counts still add up; a few differences are listed one by one."""
    from qverify.compare import _histogram_rows

    rng = np.random.default_rng(0)
    diffs = rng.integers(-20000, 20000, 13644)
    histogram: dict[int, int] = {}
    for d in diffs.tolist():
        histogram[d] = histogram.get(d, 0) + 1
    rows = _histogram_rows(histogram)
    assert len(histogram) > 5000 and len(rows) <= 33
    assert sum(n for _, n in rows) == len(diffs)
    assert ("+8192..+16383", int(((diffs >= 8192) & (diffs <= 16383)).sum())) in rows
    assert _histogram_rows({1: 5, -2: 3}) == [("-2", 3), ("+1", 5)]


def _detail(expected, got, **kw):
    """compare_op on constructed (N, H, W, C) outputs of data-set samples 10.., and its --layer detail lines."""
    from qverify.compare import compare_op, format_detail

    op = compare_op("conv3", "conv", expected, got, list(range(10, 10 + len(expected))))
    lines = format_detail(op, **kw).splitlines()
    return op, lines


@pytest.fixture(scope="module")
def out():
    return np.random.default_rng(1).integers(-3000, 3000, (4, 16, 12, 8)).astype(np.int16)


def test_layer_detail_names_one_wrong_channel(out):
    """Channel 3 off by one LSB everywhere: the pattern names that channel, the channel strip marks it alone, the
    counts per channel add up, and the detail fits a screen with the first mismatches' coordinates."""
    got = out.copy()
    got[..., 3] += 1
    op, lines = _detail(out, got)
    assert op.layout.channels == [0, 0, 0, 768, 0, 0, 0, 0] and sum(op.layout.rows) == op.mismatches == 768
    assert "  pattern: only channel 3 of 8 differs (768 of its 768 values)" in lines
    assert any(ln.split() == ["chan", "c", "0..7", "|...#....|", "1", "of", "8", "differ"] for ln in lines)
    assert any(ln.split()[:3] == ["sample", "10..13", "|1111|"] for ln in lines)  # data-set sample numbers
    assert f"    (10, 0, 0, 3, {out[0, 0, 0, 3]}, {got[0, 0, 0, 3]})" in lines
    assert len(lines) <= 40 and "                 +1:      768 " + "#" * 40 in lines


def test_layer_detail_names_every_other_pixel(out):
    """Every odd column (SIMD pairs: the second of each pair wrong) and a checkerboard are named as such."""
    got = out.copy()
    got[:, :, 1::2, :] += 2
    _, lines = _detail(out, got)
    assert "  pattern: every other column (w odd) differs; the others are exact" in lines
    assert any(ln.split()[:4] == ["col", "w", "0..11", "|.#.#.#.#.#.#|"] for ln in lines)
    got = out.copy()
    hh, ww = np.indices((16, 12))
    got[:, (hh + ww) % 2 == 0, :] -= 1
    _, lines = _detail(out, got)
    assert "  pattern: every other pixel (a checkerboard: h + w even) differs; the others are exact" in lines
    assert not any("only" in ln for ln in lines if ln.startswith("  pattern"))


def test_layer_detail_names_a_shifted_output(out):
    """The output one row down (a padding offset): named with the index arithmetic, though every value differs."""
    _, lines = _detail(out, np.roll(out, 1, axis=1))
    assert any(
        ln.startswith("  pattern: output shifted by +1 row: got[h, w, c] = expected[h-1, w, c] for 100% of")
        for ln in lines
    )
    _, lines = _detail(out, np.roll(out, -1, axis=3))
    assert any("output shifted by -1 channel: got[h, w, c] = expected[h, w, c+1]" in ln for ln in lines)


def test_layer_detail_of_a_whole_layer_off_stays_on_a_screen(out):
    """Every value wrong by thousands of LSB: the whole op is named, the histogram is folded into ranges whose counts
    add up, all within 40 lines; --max-lines 100 shows more (more first mismatches, finer ranges), never more."""
    from qverify.compare import DETAIL_LINES

    got = np.random.default_rng(2).integers(-32768, 32767, out.shape).astype(np.int16)
    op, lines = _detail(out, got)
    assert len(lines) <= DETAIL_LINES == 40 and op.mismatches == out.size
    assert any(ln.startswith("  pattern: the whole op is off: 100% of its values differ") for ln in lines)
    hist = [ln for ln in lines[lines.index(next(ln for ln in lines if "histogram" in ln)) + 1 :]]
    assert sum(int(ln.split(":")[1].split()[0]) for ln in hist) == op.mismatches
    first = [ln for ln in lines if ln.startswith("    (1")]
    assert 3 <= len(first) <= 10 and all(len(ln) <= 120 for ln in lines)
    _, long = _detail(out, got, max_lines=100)
    assert 40 < len(long) <= 100
    assert len([ln for ln in long if ln.startswith("    (1")]) > len(first)
    _, huge = _detail(out, got, max_lines=2000)
    assert len([ln for ln in huge if ln.startswith("    (1")]) > 100  # beyond the ten JSON keeps


def test_layer_detail_of_one_value_and_of_none(out):
    got = out.copy()
    got[2, 5, 7, 1] += 5
    op, lines = _detail(out, got)
    assert lines[1] == "  pattern: a single value differs (sample 12, h 5, w 7, c 1)"
    assert op.first[0].sample == 12 and len(lines) < 15
    _, lines = _detail(out, out.copy())
    assert lines == ["conv3: 0 of 6144 values differ (100.00% exact)"]


def test_cli_layer_detail_budget(small, capsys):
    """compare --layer prints the pattern and stays within 40 lines; --max-lines N raises the budget; 0 is refused."""
    _, d, _ = small
    args = ["compare", "--plan", str(d / "plan"), "--samples", "0:8", "--rounding", "round", "--layer", "conv_a"]

    def detail(*extra):
        assert main(args + list(extra)) == 1
        out = capsys.readouterr().out.splitlines()
        return out[next(i for i, ln in enumerate(out) if ln.startswith("conv_a: ")) :]

    short, long = detail(), detail("--max-lines", "80")
    assert any(ln.startswith("  pattern: ") for ln in short) and any("chan c" in ln for ln in short)
    assert len(short) <= 40 < len(long) <= 80
    with pytest.raises(SystemExit) as exit_info:
        main(args + ["--max-lines", "0"])
    assert exit_info.value.code == 2 and "--max-lines" in capsys.readouterr().err


def test_layer_options_of_compare_and_target():
    """Both commands take --layer and --max-lines (one definition); the default budget is a screen."""
    from qverify.cli import build_parser

    parser = build_parser()
    for command in ("compare", "target"):
        assert parser.parse_args([command, "--layer", "conv3"]).max_lines == 40
        assert parser.parse_args([command, "--layer", "conv3", "--max-lines", "120"]).max_lines == 120
