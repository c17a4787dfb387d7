"""Speed of eval's per-op statistics: the numpy code they were against the C pass they are, in one run.

    python bench/bench_stats.py [--repeat 5] [--demo] [--json bench.json]

One op's chunk as eval sees it: 128 samples x 4088 x 16 values (the demo's first conv), float32 outputs
and int16 integers. Timed, best of --repeat after a warm-up, for each error spread:
    summarize    tests/stats_reference.py (numpy, what qverify.metrics ran before) against
                 qverify.metrics.summarize (csrc/qv_stats.c) on its AVX2 loops and on its portable loops;
    float_range  the same pair;
    pair         PairStats' per-sample equality of two equal chunks: numpy's ref == got per sample
                 against one memcmp per sample.
Spreads: "demo" (errors of -2..1 LSB in the demo's first op's proportions: few bins per block, counted by
cumulative counts), "wide" (errors N(0, 4) LSB: a block spans more bins than the counting path takes, one
increment per value), "exact" (q = round(f): one bin). --demo adds the demo's own outputs of every op
(float engine and shift model on 128 test samples; needs TensorFlow). Every C result is checked against
the reference's (histogram, counts, extremes) before it is timed.
Prints ns per value and the ratios numpy / C. Not a test: figures depend on the machine and on what else
runs on it.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
from machine import cpu_model, timed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import stats_reference as ref  # noqa: E402
from qverify import metrics, stats_lib  # noqa: E402

SHAPE = (128, 4088, 16)
QMIN, QMAX = -32768, 32767
DEMO_ERRORS = {-2: 0.0005, -1: 0.4774, 0: 0.5210, 1: 0.0011}  # the demo's conv1 against its float model


def synthetic(spread: str, frac: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """(f, q, frac) of SHAPE: q uniform over a few thousand LSB, f = (q + e)·2^-frac for an error e of -the
    histogram's error (d = f·2^frac - q = e), in LSB."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(SHAPE))
    q = rng.integers(-4000, 4000, n)
    if spread == "demo":
        bins = np.array(list(DEMO_ERRORS))
        e = -rng.choice(bins, n, p=np.array(list(DEMO_ERRORS.values())) / sum(DEMO_ERRORS.values()))
        e = e + rng.uniform(-0.5, 0.5, n)
    elif spread == "wide":
        e = rng.normal(0, 4, n)
    else:
        e = rng.uniform(-0.5, 0.5, n)
    f = ((q + e) * 2.0**-frac).astype(np.float32)
    return f.reshape(SHAPE), q.astype(np.int16).reshape(SHAPE), frac


def demo_chunks(samples: int = 128) -> list[tuple[str, np.ndarray, np.ndarray, int]]:
    """(op, float outputs, shift-model outputs, frac) of every demo op on `samples` test samples."""
    import qverify

    qverify.tensorflow_defaults()
    from qverify.engines import quantize_input
    from qverify.engines.float import FloatEngine
    from qverify.engines.shift import ShiftEngine
    from qverify.workflow import load_inputs, quantize

    q = quantize()
    plan = q.plan
    x = load_inputs(plan, "demo:test", samples)
    xi, _ = quantize_input(plan, x)
    floats = FloatEngine(plan, q.graph).run_float(x)
    shift = ShiftEngine(plan).run(xi)
    return [(op.name, np.array(floats[op.name]), np.array(shift.outputs[op.name]), op.out_frac) for op in plan.ops]


def check(f, q, frac) -> None:
    got, want = metrics.summarize(f, q, frac, QMIN, QMAX), ref.summarize(f, q, frac, QMIN, QMAX)
    assert got.err_hist.tolist() == want.err_hist.tolist(), "histograms differ"
    same = ("count", "q_min", "q_max", "float_saturating", "f_min", "f_max", "max_abs_err")
    assert all(getattr(got, k) == getattr(want, k) for k in same), "summaries differ"
    assert metrics.float_range(f, frac, QMIN, QMAX) == ref.float_range(f, frac, QMIN, QMAX)


def measure(f, q, frac, repeat: int) -> dict:
    """Seconds of each way over one chunk (f, q)."""
    check(f, q, frac)
    out = {"values": int(f.size)}
    out["summarize_numpy"] = timed(lambda: ref.summarize(f, q, frac, QMIN, QMAX), repeat)
    for simd in (True, False):
        on = stats_lib.simd(simd)
        out[f"summarize_c_{'avx2' if on else 'portable'}"] = timed(
            lambda: metrics.summarize(f, q, frac, QMIN, QMAX), repeat
        )
        out[f"float_range_c_{'avx2' if on else 'portable'}"] = timed(
            lambda: metrics.float_range(f, frac, QMIN, QMAX), repeat
        )
    stats_lib.simd(True)
    out["float_range_numpy"] = timed(lambda: ref.float_range(f, frac, QMIN, QMAX), repeat)
    got = q.copy()
    out["pair_numpy"] = timed(lambda: ref.equal_samples(q, got), repeat)
    out["pair_c"] = timed(lambda: stats_lib.equal_samples(q, got), repeat)
    return out


def report(name: str, m: dict) -> None:
    n = m["values"]
    print(f"\n{name}: {n:,} values")
    for what in ("summarize", "float_range"):
        base = m[f"{what}_numpy"]
        print(f"  {what:11s} numpy        {base * 1e3:8.2f} ms  {base * 1e9 / n:6.3f} ns/value")
        for build in ("avx2", "portable"):
            key = f"{what}_c_{build}"
            if key in m:
                t = m[key]
                print(f"  {what:11s} C {build:10s} {t * 1e3:8.2f} ms  {t * 1e9 / n:6.3f} ns/value  {base / t:5.1f}x")
    base, t = m["pair_numpy"], m["pair_c"]
    print(f"  {'pair':11s} numpy        {base * 1e3:8.2f} ms  {base * 1e9 / n:6.3f} ns/value")
    print(f"  {'pair':11s} C memcmp     {t * 1e3:8.2f} ms  {t * 1e9 / n:6.3f} ns/value  {base / t:5.1f}x")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per measurement, best kept (default 5)")
    ap.add_argument("--demo", action="store_true", help="also the demo's own outputs of every op (TensorFlow)")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    avx2 = stats_lib.simd(True)
    print(f"machine: {cpu_model()}, {platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}")
    print(f"C loops: {'AVX2 and portable' if avx2 else 'portable only (no AVX2 build or CPU)'}")
    results = {}
    for spread in ("demo", "wide", "exact"):
        f, q, frac = synthetic(spread)
        results[spread] = measure(f, q, frac, args.repeat)
        report(f"synthetic, {spread} errors", results[spread])
    if args.demo:
        total = {"numpy": 0.0, "c": 0.0, "values": 0}
        for name, f, q, frac in demo_chunks():
            m = measure(f, q, frac, args.repeat)
            results[f"demo:{name}"] = m
            total["numpy"] += m["summarize_numpy"]
            total["c"] += m["summarize_c_avx2" if avx2 else "summarize_c_portable"]
            total["values"] += m["values"]
        print(
            f"\ndemo, every op on 128 samples ({total['values']:,} values): summarize numpy "
            f"{total['numpy'] * 1e3:.1f} ms, C {total['c'] * 1e3:.1f} ms, {total['numpy'] / total['c']:.1f}x"
        )
    if args.json:
        meta = {"cpu": cpu_model(), "machine": platform.machine(), "python": platform.python_version()}
        Path(args.json).write_text(json.dumps({"machine": meta, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
