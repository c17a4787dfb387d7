"""An HTML report with plots (matplotlib, no GUI backend): a directory with index.html and PNG files.

    write_html(result, "report/")

Plots: per-op SQNR against float, the error of each op in LSB (histograms),
each op's activation range against its format's limits, float against
quantized scores per sample, shift-vs-native LSB differences (when any), and
per-op MACs and memory. The directory is built next to the destination under
a temporary name and renamed into place, so a reader never sees half a
report; an existing directory is replaced only if it is a qverify report.
"""

from __future__ import annotations

import html
import math
import os
import shutil
import tempfile
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qverify.errors import QVerifyError
from qverify.evaluate import EvalResult
from qverify.metrics import ERR_BINS, PairStats
from qverify.reports.json import eval_json
from qverify.reports.text import acc_headroom_text, format_eval, input_saturation_line, legend

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MARKER = "qverify-report.json"  # present in every directory this module writes
DPI = 110
OK_COLOR, BAD_COLOR, NATIVE_COLOR = "#2b6cb0", "#c53030", "#dd6b20"


def check_destination(directory: str | Path) -> None:
    """Refuse a destination that exists and is not a qverify report (called before any work).

    Raises:
        QVerifyError: the path is a file, a directory this module did not write, or its parent is missing.
    """
    d = Path(directory)
    if not d.parent.resolve().is_dir():
        raise QVerifyError(f"--html {directory}: parent directory {d.parent} does not exist")
    if d.exists() and (not d.is_dir() or (any(d.iterdir()) and not (d / MARKER).is_file())):
        raise QVerifyError(
            f"--html {directory} exists and is not a qverify report directory; "
            "give a new or empty directory (an old report is replaced)"
        )


def write_html(result: EvalResult, directory: str | Path) -> Path:
    """Write the report into `directory` (created, or an old report replaced atomically)."""
    dest = Path(directory)
    check_destination(dest)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent.resolve()))
    try:
        images = _plots(result, tmp)
        (tmp / "index.html").write_text(_page(result, images), encoding="utf-8")
        (tmp / MARKER).write_bytes(eval_json(result))
        os.chmod(tmp, 0o755)  # mkdtemp makes it private
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old.", dir=dest.parent.resolve()))
            os.replace(dest, old / "report")
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


# ---------------------------------------------------------------- plots


def _figure(w: float, h: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=DPI, layout="constrained")


def figures(r: EvalResult) -> dict[str, Figure]:
    """Every plot the report of `r` shows, by key (saved as `<key>.png`), laid out and ready to save."""
    figs = {}
    if r.ops and r.ops[0].quant:
        figs["sqnr"] = _plot_sqnr(r)
        figs["errors"] = _plot_errors(r)
        figs["ranges"] = _plot_ranges(r)
    if "float" in r.engines and any(e in r.engines for e in ("shift", "native")):
        figs["scores"] = _plot_scores(r)
    if r.ops and r.ops[0].pair is not None:
        figs["pair"] = _plot_pair(r)
    figs["footprint"] = _plot_footprint(r)
    return figs


def _plots(r: EvalResult, d: Path) -> dict[str, str]:
    """Save every figure as a PNG in d; the file name of each, by key."""
    images = {}
    for key, fig in figures(r).items():
        images[key] = f"{key}.png"
        fig.savefig(d / images[key])
    return images


def _cell_title(text: str, inches: float) -> str:
    """A subplot title broken into lines that fit its column of the grid (8 pt: about 14 characters per inch), so
    neighbouring titles do not run into each other (wrap=True only knows the figure's edges)."""
    return "\n".join(textwrap.wrap(text, max(12, int(14 * inches))))


def _plot_sqnr(r: EvalResult) -> Figure:
    names = [o.name for o in r.ops]
    engines = list(r.ops[0].quant)
    fig = _figure(max(7.0, 0.32 * len(names) + 2), 4.2)
    ax = fig.add_subplot()
    finite = [s.sqnr_db for o in r.ops for s in o.quant.values() if math.isfinite(s.sqnr_db)]
    top = (max(finite) if finite else 60.0) + 10
    width = 0.8 / len(engines)
    x = np.arange(len(names))
    for i, e in enumerate(engines):
        vals = [o.quant[e].sqnr_db for o in r.ops]
        shown = [top if math.isinf(v) and v > 0 else (0 if math.isinf(v) else v) for v in vals]
        ax.bar(
            x + (i - (len(engines) - 1) / 2) * width,
            shown,
            width,
            label=f"{e} vs float",
            color=OK_COLOR if e == "shift" else NATIVE_COLOR,
        )
        for xi, v in zip(x, vals, strict=True):
            if math.isinf(v) and v > 0:
                ax.text(xi + (i - (len(engines) - 1) / 2) * width, top, "∞", ha="center", va="bottom")
    ax.set_xticks(x, names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("SQNR vs float (dB)")
    ax.set_title(f"Per-op SQNR against the float model ({r.samples} samples, errors propagated)", wrap=True)
    ax.grid(axis="y", alpha=0.3)
    fig.legend(loc="outside upper center", ncols=len(engines), fontsize=8)  # above the axes: clear of every bar
    return fig


def _plot_errors(r: EvalResult) -> Figure:
    ref = "shift" if "shift" in r.ops[0].quant else next(iter(r.ops[0].quant))
    shown = [o for o in r.ops if o.kind in ("conv", "dense", "gap", "avgpool")] or r.ops
    cols = 4
    rows = math.ceil(len(shown) / cols)
    fig = _figure(3.1 * cols, 2.3 * rows + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False)
    bins = np.arange(-ERR_BINS - 1, ERR_BINS + 2)
    for ax, o in zip(axes.flat, shown, strict=False):
        s = o.quant[ref]
        counts = s.err_hist
        colors = [BAD_COLOR if abs(b) > ERR_BINS else OK_COLOR for b in bins]
        ax.bar(bins, np.maximum(counts, 0), width=1.0, color=colors)
        ax.set_yscale("log")
        ax.set_title(_cell_title(f"{o.name} ({o.format}) RMSE {s.rmse_lsb:.2g} LSB", 3.1), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlim(-ERR_BINS - 2, ERR_BINS + 2)
    for ax in list(axes.flat)[len(shown) :]:
        ax.set_visible(False)
    fig.suptitle(
        f"{ref} − float per value, in LSB of each op's format (red: beyond ±{ERR_BINS})", fontsize=10, wrap=True
    )
    return fig


def _plot_ranges(r: EvalResult) -> Figure:
    ref = "shift" if "shift" in r.ops[0].quant else next(iter(r.ops[0].quant))
    names = [o.name for o in r.ops]
    x = np.arange(len(names))
    fig = _figure(max(7.0, 0.32 * len(names) + 2), 4.4)
    ax = fig.add_subplot()
    for xi, o in enumerate(r.ops):
        s = o.quant[ref]
        lo, hi = s.f_min / s.limit, s.f_max / s.limit
        bad = hi > 1 or lo < -1
        ax.bar(xi, hi - lo, bottom=lo, width=0.6, color=BAD_COLOR if bad else OK_COLOR, alpha=0.85)
        clo, chi = o.calib_range[0] / s.limit, o.calib_range[1] / s.limit
        ax.plot([xi - 0.35, xi + 0.35], [clo, clo], color="black", lw=1)
        ax.plot([xi - 0.35, xi + 0.35], [chi, chi], color="black", lw=1)
        ax.text(
            xi,
            max(hi, chi) + 0.04,
            f"{s.headroom_bits:+.1f}" if math.isfinite(s.headroom_bits) else "",
            ha="center",
            va="bottom",
            fontsize=6,
            rotation=90,
        )
    ax.axhline(1, color=BAD_COLOR, ls="--", lw=1)
    ax.axhline(-1, color=BAD_COLOR, ls="--", lw=1)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xticks(x, names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("float value / format limit")
    ax.set_ylim(min(-1.15, ax.get_ylim()[0]), max(1.35, ax.get_ylim()[1]))
    ax.set_title(
        "Activation range (bars: evaluated data; ticks: calibration) against each format's limit "
        "(dashed); numbers: out headroom in bits",
        fontsize=9,
        wrap=True,
    )
    ax.grid(axis="y", alpha=0.3)
    return fig


def _plot_scores(r: EvalResult) -> Figure:
    fig = _figure(6.0, 5.4)
    ax = fig.add_subplot()
    fs = r.scores["float"]
    n = len(fs)
    idx = np.arange(n) if n <= 20000 else np.random.default_rng(0).choice(n, 20000, replace=False)
    for e, marker, color in (("shift", "o", OK_COLOR), ("native", "x", NATIVE_COLOR)):
        if e not in r.scores or e not in r.engines:
            continue
        qs = r.scores[e]
        if e == "native" and "shift" in r.engines and np.array_equal(qs, r.scores["shift"]):
            continue  # identical to shift: drawn once
        flipped = _flipped(r, e)
        same = e == "shift" and "native" in r.scores and np.array_equal(qs, r.scores["native"])
        ax.scatter(fs[idx], qs[idx], s=6, marker=marker, color=color, alpha=0.5, label="shift = native" if same else e)
        if flipped.any():
            ax.scatter(
                fs[flipped],
                qs[flipped],
                s=30,
                facecolors="none",
                edgecolors=BAD_COLOR,
                label=f"{e}: decision flipped ({int(flipped.sum())})",
            )
    lo = float(min(np.min(fs), *(np.min(r.scores[e]) for e in r.engines if e != "float")))
    hi = float(max(np.max(fs), *(np.max(r.scores[e]) for e in r.engines if e != "float")))
    ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
    if r.classes == 1:
        t = 0.5 if r.final_activation == "sigmoid" else 0.0
        ax.axvline(t, color="grey", ls=":", lw=0.8)
        ax.axhline(t, color="grey", ls=":", lw=0.8)
    what = "probability" if r.final_activation in ("sigmoid", "softmax") else "logit"
    ax.set_xlabel(f"float model {what}")
    ax.set_ylabel(f"quantized {what}")
    ax.set_title("Float against quantized score, per sample", wrap=True)
    ax.legend(fontsize=8, loc="upper left")
    return fig


def _flipped(r: EvalResult, e: str) -> np.ndarray:
    """Samples whose class under engine e differs from the float model's."""
    return r.predictions[e] != r.predictions["float"]


def _plot_pair(r: EvalResult) -> Figure:
    bad: list[tuple[str, PairStats]] = []  # (op name, its pair statistics) of the ops that differ
    for o in r.ops:
        assert o.pair is not None  # every op has one when the first has (evaluate: shift and native both ran)
        if o.pair.mismatches:
            bad.append((o.name, o.pair))
    if not bad:
        fig = _figure(6.0, 1.6)
        fig.text(
            0.5,
            0.5,
            f"shift and native: no LSB differences on any op ({r.samples} samples)",
            ha="center",
            va="center",
            fontsize=11,
            color=OK_COLOR,
            wrap=True,
        )
        return fig
    cols = min(3, len(bad))
    rows = math.ceil(len(bad) / cols)
    fig = _figure(3.6 * cols, 2.6 * rows + 0.5)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, (name, pair) in zip(axes.flat, bad, strict=False):
        ks = sorted(pair.histogram)
        ax.bar([str(k) for k in ks], [pair.histogram[k] for k in ks], color=BAD_COLOR)
        ax.set_title(_cell_title(f"{name}: {pair.mismatches} of {pair.total} differ", 3.6), fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(bad) :]:
        ax.set_visible(False)
    fig.suptitle("native − shift in LSB (values that differ only)", fontsize=10, wrap=True)
    return fig


def _plot_footprint(r: EvalResult) -> Figure:
    fp = r.footprint
    names = [o.name for o in fp.ops]
    x = np.arange(len(names))
    fig = _figure(max(7.0, 0.32 * len(names) + 2), 5.0)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    ax1.bar(x, [o.macs for o in fp.ops], color=OK_COLOR)
    ax1.set_ylabel("MACs")
    ax1.set_title(
        f"{fp.total_macs:,} MACs, flash {fp.flash_bytes:,} B, runner peak RAM {fp.runner_ram_bytes:,} B",
        fontsize=9,
        wrap=True,
    )
    ax2.bar(x - 0.2, [o.flash_bytes for o in fp.ops], 0.4, label="weights + bias (flash)", color=NATIVE_COLOR)
    ax2.bar(x + 0.2, [o.output_bytes for o in fp.ops], 0.4, label="output activation (RAM)", color=OK_COLOR)
    ax2.set_ylabel("bytes")
    ax2.legend(fontsize=8)
    ax2.set_xticks(x, names, rotation=60, ha="right", fontsize=8)
    return fig


# ---------------------------------------------------------------- page


def _fmt(v, spec="{:.2f}") -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return spec.format(v)


def _page(r: EvalResult, images: dict[str, str]) -> str:
    e = html.escape
    failed = [c for c in r.checks if not c.passed]
    verdict = "PASS" if not failed else "FAIL"
    color = OK_COLOR if not failed else BAD_COLOR
    parts = [
        f"""<!doctype html><html><head><meta charset="utf-8"><title>qverify eval {e(r.data_name)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#1a202c}}
table{{border-collapse:collapse;font-size:13px;margin:1em 0}}td,th{{border:1px solid #cbd5e0;padding:3px 8px;text-align:right}}
th{{background:#edf2f7}}td.l,th.l{{text-align:left}}.fail{{color:{BAD_COLOR};font-weight:bold}}.pass{{color:{OK_COLOR}}}
img{{max-width:100%;border:1px solid #e2e8f0;margin:0.5em 0}}pre{{background:#f7fafc;padding:1em;overflow:auto;font-size:12px}}</style>
</head><body><h1>qverify eval: <span style="color:{color}">{verdict}</span></h1>
<p>plan <code>{e(r.plan_hash[:16])}</code>, rounding {e(r.rounding)}, data {e(r.data_name)}, {r.samples} samples.
{e(f"{r.bit_exact_samples} of {r.samples} samples bit-exact between shift and native.") if r.bit_exact_samples is not None else ""}</p>
<ul>{"".join(f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in r.engine_info.items())}</ul>
<h2>Model</h2><table><tr><th class=l>engine</th><th>accuracy</th><th>decision flips vs float</th><th>samples/s</th></tr>"""  # noqa: E501 (the page's text)
    ]
    for name in r.engines:
        acc = r.accuracy(name)
        flips = "–" if name == "float" or "float" not in r.decisions else str(r.decisions[name].flips)
        rate = r.samples / r.seconds[name] if r.seconds.get(name) else None
        parts.append(
            f"<tr><td class=l>{e(name)}</td><td>{_fmt(None if acc is None else 100 * acc, '{:.2f}%')}</td>"
            f"<td>{flips}</td><td>{_fmt(rate, '{:,.0f}')}</td></tr>"
        )
    parts.append("</table>")
    if r.input_saturations:
        parts.append(f"<p class=fail>{e(input_saturation_line(r).strip())}</p>")
    for key, title in (
        ("sqnr", "SQNR per op"),
        ("errors", "Error against float, in LSB"),
        ("ranges", "Activation ranges against format limits"),
        ("scores", "Scores"),
        ("pair", "Shift against native"),
        ("footprint", "Footprint"),
    ):
        if key in images:
            parts.append(f'<h2>{title}</h2><img src="{images[key]}" alt="{e(title)}">')
    # per-op table
    ref: str | None
    if r.ops and "shift" in r.ops[0].quant:
        ref = "shift"
    else:
        ref = next(iter(r.ops[0].quant)) if r.ops and r.ops[0].quant else None
    parts.append(
        "<h2>Per op</h2><table><tr><th class=l>op</th><th class=l>kind</th><th>format</th>"
        "<th>SQNR dB</th><th>RMSE LSB</th><th>cosine</th><th>float range</th><th>int range</th>"
        "<th>out headroom bits</th><th>acc headroom bits</th><th>exact %</th><th>max |d|</th>"
        "<th>saturations</th><th>overflows</th></tr>"
    )
    for o in r.ops:
        s = o.quant.get(ref) if ref else None
        p = o.pair
        cells = [o.name, o.kind, o.format]
        if s is not None:
            cells += [
                _fmt(s.sqnr_db, "{:.1f}"),
                _fmt(s.rmse_lsb, "{:.3g}"),
                _fmt(s.cosine, "{:.6f}"),
                f"[{s.f_min:.4g}, {s.f_max:.4g}]",
                f"[{s.q_min}, {s.q_max}]",
                _fmt(s.headroom_bits, "{:+.2f}"),
            ]
        else:
            cells += ["–"] * 6
        cells.append(acc_headroom_text(o.acc_headroom))
        cells += [
            _fmt(p.exact_pct) if p else "–",
            str(p.max_diff) if p else "–",
            _fmt(s.saturations if s else None, "{}"),
            _fmt(s.overflows if s else None, "{}"),
        ]
        bad = (p is not None and p.mismatches) or (s is not None and (s.overflows or 0) > 0)
        parts.append(
            f"<tr{' class=fail' if bad else ''}>"
            + "".join(f"<td class=l>{e(c)}</td>" if i < 2 else f"<td>{e(c)}</td>" for i, c in enumerate(cells))
            + "</tr>"
        )
    columns = legend(ref or "shift", ref is not None, ranges=True)
    parts.append("</table><ul>" + "".join(f"<li>{e(line)}</li>" for line in columns) + "</ul>")
    parts.append(
        "<h2>Checks</h2><table><tr><th class=l>classname</th><th class=l>check</th>"
        "<th class=l>result</th><th class=l>message</th></tr>"
    )
    for c in r.checks:
        cls = "pass" if c.passed else "fail"
        parts.append(
            f"<tr><td class=l>{e(c.classname)}</td><td class=l>{e(c.name)}</td>"
            f"<td class='l {cls}'>{'pass' if c.passed else 'FAIL'}</td><td class=l>{e(c.message)}</td></tr>"
        )
    parts.append(f"</table><h2>Text report</h2><pre>{e(format_eval(r))}</pre></body></html>\n")
    return "".join(parts)
