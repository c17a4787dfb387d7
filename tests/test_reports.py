"""Report writers: text, JSON, JUnit XML and the HTML directory, on a small binary model's eval result."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import xml.etree.ElementTree as ET

import keras
import numpy as np
import pytest

from qverify import checks, dataset
from qverify import evaluate as ev
from qverify.engines.native import NativeEngine
from qverify.errors import QVerifyError
from qverify.reports import html as html_report
from qverify.reports.json import eval_json
from qverify.reports.junit import eval_junit
from qverify.reports.text import format_eval, format_footprint
from qverify.workflow import quantize

L = keras.layers


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """(passing, failing) eval results of a small 1-D binary model on 96 samples with labels."""
    d = tmp_path_factory.mktemp("rep")
    keras.utils.set_random_seed(11)
    keras.Sequential(
        [
            keras.Input((48, 1)),
            L.Conv1D(4, 3, activation="relu", name="c1"),
            L.MaxPooling1D(2, name="p1"),
            L.Flatten(name="f"),
            L.Dense(1, activation="sigmoid", name="out"),
        ]
    ).save(d / "m.keras")
    rng = np.random.default_rng(4)
    np.save(d / "x.npy", (0.4 * rng.standard_normal((96, 48))).astype(np.float32))
    np.save(d / "y.npy", rng.integers(0, 2, 96).astype(np.int8))
    q = quantize(str(d / "m.keras"), data=str(d / "x.npy"))
    data = dataset.load_dataset(q.plan, d / "x.npy", d / "y.npy")
    good = checks.add_checks(ev.evaluate(q.plan, q.graph, data, chunk=40))
    built = ev.make_engines(q.plan, q.graph, list(ev.ENGINE_NAMES))
    built["native"] = NativeEngine(q.plan, kernels="plain", rounding="round")
    bad = checks.add_checks(ev.evaluate(q.plan, q.graph, data, chunk=40, built=built))
    return good, bad


def test_junit_one_case_per_op_and_check(results):
    """Every check is a <testcase>; per op: bit-exact, SQNR per engine, saturation (+ overflow for conv/dense)."""
    good, bad = results
    root = ET.fromstring(eval_junit(good))
    cases = root.findall(".//testcase")
    assert len(cases) == len(good.checks) and root.get("failures") == "0"
    by_op = {}
    for c in cases:
        by_op.setdefault(c.get("classname"), set()).add(c.get("name"))
    assert by_op["qverify.c1"] == {
        "bit_exact[shift-native]",
        "sqnr[shift]",
        "sqnr[native]",
        "saturation",
        "accumulator_overflow",
    }
    assert by_op["qverify.p1"] == {"bit_exact[shift-native]", "sqnr[shift]", "sqnr[native]", "saturation"}
    assert {"bit_exact_samples", "accuracy_drop[shift]", "accuracy_drop[native]", "decision_flips[native]"} <= by_op[
        "qverify.model"
    ]
    assert all(c.find("system-out").text for c in cases)

    root = ET.fromstring(eval_junit(bad))
    failures = root.findall(".//failure")
    assert int(root.get("failures")) == len(failures) == sum(not c.passed for c in bad.checks) > 0
    first = root.find(".//testcase[@classname='qverify.c1'][@name='bit_exact[shift-native]']/failure")
    assert "values differ" in first.get("message") and "(0, " in first.text  # first mismatch in sample 0


def test_json_is_valid_and_has_no_bare_infinity(results):
    """Strict JSON (no Infinity/NaN tokens): infinite SQNR is the string "inf"."""
    good, _ = results
    r = copy.deepcopy(good)
    r.ops[0].quant["shift"].sum_e2 = 0.0  # as if exact: SQNR = inf
    text = eval_json(r).decode()
    d = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert d["ops"][0]["vs_float"]["shift"]["sqnr_db"] == "inf"
    assert d["ok"] is True and d["samples"] == 96 and len(d["checks"]) == len(good.checks)
    assert d["decisions"]["native"]["accuracy"] == good.accuracy("native")


def test_text_report(results):
    """One row per op, the model table and a verdict naming the first failure."""
    good, bad = results
    text = format_eval(good)
    assert "PASS: shift and native bit-exact on all 96 samples" in text
    for op in ("c1", "c1_relu", "p1", "f", "out"):
        assert f"\n  {op} " in text
    assert "accuracy" in text and "flips vs float" in text
    verdict = next(line for line in format_eval(bad).splitlines() if line.startswith("FAIL: "))
    assert "qverify.c1 bit_exact[shift-native]" in verdict
    assert "runner peak RAM" in format_footprint(good.footprint)


def test_html_written_atomically_and_replaced(results, tmp_path, monkeypatch):
    """The report directory appears whole or not at all; an old report is replaced; other folders are refused."""
    good, bad = results
    dest = tmp_path / "report"
    html_report.write_html(good, dest)
    index = (dest / "index.html").read_text()
    assert "PASS" in index and "sqnr.png" in index and (dest / html_report.MARKER).is_file()
    html_report.write_html(bad, dest)  # replaces the old one
    assert "FAIL" in (dest / "index.html").read_text()
    assert (dest / "pair.png").stat().st_size > 1000

    def broken(*args):
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(html_report, "_plots", broken)
    with pytest.raises(RuntimeError):
        html_report.write_html(good, tmp_path / "new")
    with pytest.raises(RuntimeError):
        html_report.write_html(good, dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no temp dirs, no half report
    assert "FAIL" in (dest / "index.html").read_text()  # the previous report is untouched
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "a.txt").write_text("x")
    with pytest.raises(QVerifyError, match="not a qverify report"):
        html_report.check_destination(tmp_path / "other")


def test_scores_and_predictions_per_sample(results):
    """Binary model: float score is the sigmoid probability, integer decisions are logit > 0."""
    good, _ = results
    fs, ss = good.scores["float"], good.scores["shift"]
    assert fs.shape == ss.shape == (96,) and np.all((fs >= 0) & (fs <= 1))
    np.testing.assert_array_equal(good.predictions["float"], (fs > 0.5).astype(np.int32))
    np.testing.assert_array_equal(good.predictions["shift"], good.predictions["native"])
    assert math.isclose(good.accuracy("float"), np.mean(good.predictions["float"] == good.labels))


def _clipped(fig) -> list[str]:
    """What is wrong with a drawn figure's layout: an artist whose rendered extent is not inside the canvas (titles,
    axis labels, tick labels, texts, legends: 'what: text (x0, y0, x1, y1) px outside ...'), or two titles, labels
    or legends drawn over each other."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.legend import Legend
    from matplotlib.text import Text

    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # runs the layout engine, as savefig does
    renderer = canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    boxes = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        boxes.append(("axes", ax.get_title() or "(untitled)", ax.get_window_extent(renderer)))
        for axis in (ax.xaxis, ax.yaxis):  # only the ticks drawn: those inside the view limits
            for t in axis.get_ticklabels(which="both"):
                if t.get_visible() and t.get_text() and _in_view(axis, t):
                    boxes.append(("tick label", t.get_text(), t.get_window_extent(renderer)))
    ticks = {id(t) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis) for t in axis.get_ticklabels(which="both")}
    for t in fig.findobj(Text):
        if id(t) not in ticks and t.get_visible() and t.get_text() and all(a.get_visible() for a in _parents(t)):
            boxes.append(("text", t.get_text(), t.get_window_extent(renderer)))
    for lg in fig.findobj(Legend):
        boxes.append(("legend", ", ".join(t.get_text() for t in lg.get_texts()), lg.get_window_extent(renderer)))
    tol = 0.5  # px: antialiasing
    # titles, axis labels and legends (not tick labels, which a crowded axis may pack tight) do not overlap
    labels = [(what, text, b) for what, text, b in boxes if what != "tick label" and what != "axes"]
    overlaps = [
        f"{w1} {t1!r} overlaps {w2} {t2!r}"
        for i, (w1, t1, b1) in enumerate(labels)
        for w2, t2, b2 in labels[i + 1 :]
        if _inside_legend(w1, w2, t1, t2) is False
        and b1.x0 < b2.x1 - tol
        and b2.x0 < b1.x1 - tol
        and b1.y0 < b2.y1 - tol
        and b2.y0 < b1.y1 - tol
    ]
    return overlaps + [
        f"{what}: {text!r} ({b.x0:.0f}, {b.y0:.0f}, {b.x1:.0f}, {b.y1:.0f}) px outside 0..{width:.0f} x 0..{height:.0f}"
        for what, text, b in boxes
        if b.x0 < -tol or b.y0 < -tol or b.x1 > width + tol or b.y1 > height + tol
    ]


def _inside_legend(w1: str, w2: str, t1: str, t2: str) -> bool:
    """A legend's own texts lie inside it."""
    return ("legend" in (w1, w2)) and (t1 in t2 or t2 in t1)


def _in_view(axis, label) -> bool:
    lo, hi = sorted(axis.get_view_interval())
    x, y = label.get_position()
    v = x if axis.axis_name == "x" else y
    return lo - 1e-9 <= v <= hi + 1e-9


def _parents(artist):
    """The axes (if any) an artist belongs to: a text of a hidden subplot is not drawn."""
    return [artist.axes] if artist.axes is not None else []


def test_every_plot_lies_inside_its_canvas(results):
    """Issue 17 item 5: no title, axis label, tick label, text or legend of any plot the report makes is cut off
    (measured on the rendered figure, from each artist's own extent), for a passing and a failing result and one
    with many long op names."""
    good, bad = results
    crowded = copy.deepcopy(bad)  # many ops with long names: the tick labels and titles get no room to spare
    crowded.ops = [copy.deepcopy(o) for _ in range(5) for o in bad.ops]
    for i, o in enumerate(crowded.ops):
        o.name = f"block{i}_depthwise_separable_{o.name}"
    crowded.footprint = dataclasses.replace(
        bad.footprint,
        ops=tuple(dataclasses.replace(f, name=o.name) for o, f in zip(crowded.ops, 5 * bad.footprint.ops, strict=True)),
    )
    for r in (good, bad, crowded):
        figs = html_report.figures(r)
        assert {"sqnr", "errors", "ranges", "scores", "pair", "footprint"} <= set(figs)
        problems = {key: _clipped(fig) for key, fig in figs.items()}
        assert not any(problems.values()), {k: v for k, v in problems.items() if v}
