"""Speed of the engines on the demo, measured in one run on the same samples.

    python bench/bench_engines.py [--samples 512] [--onednn] [--json bench.json]

(a) the notebook's way: the Keras model called one sample at a time,
(b) the Keras model batched (model.predict), and qverify's float engine (every op's output kept),
(c) the TensorFlow shift model, batched (float64-exact),
(d) the native runner: C kernels, whole batch per call, one thread per core, GIL released;
    the fast build (eval's default: the plain kernels with conv ops on the host's SIMD units, at
    the CPU's widest level and capped to AVX2), the plain-C path and the DSP path; all ops kept
    or final op only; 1 thread.
Prints samples/s, GMAC/s and the ratios to (a) and (b), then checks what the speed rests on:
- the hot loops compiled to packed multiply-adds (objdump: pmaddwd / vpmaddwd / vpdpwssd), in the
  plain kernels (vectorised by the compiler) and in the host SIMD conv,
- the native call releases the GIL (a Python thread keeps counting while C runs),
- native and shift outputs are identical on these samples,
and whether the targets hold (native >= 50x (a) and >= 2x (b); shift >= 5x (a)).

qverify turns oneDNN off by default (TF_ENABLE_ONEDNN_OPTS=0: float results independent of the
CPU's instruction set); --onednn measures (a) and (b) with TensorFlow's oneDNN kernels instead.
Not a test: figures depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time

from machine import cpu_model, timed

TARGETS = (("native", "a", 50.0), ("native", "b", 2.0), ("shift", "a", 5.0))
PACKED_MAC = ("pmaddwd", "vpmaddwd", "vpdpwssd")
# kernel -> the functions its plain path runs (static helpers may or may not be inlined); the square
# arm_convolve_HWC_q15_basic/_fast delegate to the non-square kernels listed here.
HOT = {
    "arm_convolve_HWC_q15_fast_nonsquare": ("arm_convolve_HWC_q15_fast_nonsquare", "qv_cfn_two_columns"),
    "qv_convolve_HWC_q15_basic_nonsquare": ("qv_convolve_HWC_q15_basic_nonsquare",),
    "arm_fully_connected_q15": ("arm_fully_connected_q15",),
}
# the fast build's host SIMD conv, one function per instruction set (csrc/qv_host_conv.c)
HOT_FAST = {
    "qv_host_conv_q15 (avx512-vnni)": ("qv_block_avx512",),
    "qv_host_conv_q15 (avx2)": ("qv_block_avx2",),
}


def disassembly(path: str) -> dict[str, str]:
    """objdump -d of a shared object as {function: instructions}."""
    out = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", path], capture_output=True, text=True, check=True
    ).stdout
    functions, name = {}, None
    for line in out.splitlines():
        if line.endswith(">:"):
            name = line[line.index("<") + 1 : -2].split(".")[0]
            functions.setdefault(name, "")
        elif name:
            functions[name] += line + "\n"
    return functions


def vectorisation(module_name: str, hot: dict = HOT) -> dict[str, int | None]:
    """Packed multiply-add instructions in each hot kernel of a compiled module (None: cannot tell);
    with the plain kernels' `hot`, also arm_relu_q15's packed maxima."""
    import importlib

    if shutil.which("objdump") is None:
        return {k: None for k in hot}
    functions = disassembly(importlib.import_module(module_name).__file__)
    counts = {}
    for kernel, names in hot.items():
        body = "".join(functions.get(n, "") for n in names)
        counts[kernel] = sum(body.count(f"\t{m} ") + body.count(f" {m} ") for m in PACKED_MAC)
    if hot is HOT:
        relu = functions.get("arm_relu_q15", "")
        counts["arm_relu_q15 (pmaxsw)"] = relu.count("pmaxsw")
    return counts


def gil_check(run_native) -> tuple[float, float]:
    """(longest pause of a pure-Python thread while the native runner works, length of that work), in seconds.

    If the C call held the GIL, the Python thread would stall for the whole call; released, it only
    waits for the OS scheduler (milliseconds, even when the cores are busy)."""
    stamps, stop = [], threading.Event()

    def tick():
        while not stop.is_set():
            for _ in range(200):
                pass
            stamps.append(time.perf_counter())

    t = threading.Thread(target=tick)
    t.start()
    time.sleep(0.05)
    start = time.perf_counter()
    run_native()
    end = time.perf_counter()
    stop.set()
    t.join()
    inside = [s for s in stamps if start <= s <= end]
    points = [start, *inside, end]
    return max(b - a for a, b in zip(points, points[1:], strict=False)), end - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=512, help="the N demo test samples every engine runs (default 512)")
    ap.add_argument("--onednn", action="store_true", help="let TensorFlow use oneDNN for (a) and (b)")
    ap.add_argument("--json", help="also write the figures as JSON")
    args = ap.parse_args()
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if args.onednn else "0"
    import qverify

    qverify.tensorflow_defaults()  # before TensorFlow loads; TF's own default would be oneDNN on

    import numpy as np

    from qverify.calibrate import calibrate
    from qverify.engines import quantize_input
    from qverify.engines.float import FloatEngine
    from qverify.engines.native import NativeEngine
    from qverify.engines.shift import ShiftEngine
    from qverify.workflow import load_inputs, quantize

    q = quantize()
    plan, graph, model = q.plan, q.graph, q.graph.model
    x = load_inputs(plan, "demo:test", args.samples)
    xi, _ = quantize_input(plan, x)
    macs = sum(op.macs for op in plan.ops)
    n = len(x)

    def loop():
        for i in range(n):
            model(x[i : i + 1], training=False)

    # The native rows run first: TensorFlow's thread pools keep spinning for a while after its own
    # work and would steal the cores from the C threads measured right after them.
    native_rows = []
    engines = {}
    for kernels in ("fast", "plain", "dsp"):
        eng = engines[kernels] = NativeEngine(plan, kernels=kernels)
        key = "native" if kernels == "fast" else f"native_{kernels}"
        what = f"{kernels} ({eng.native.simd})" if kernels == "fast" else kernels
        native_rows.append(
            (
                key,
                f"(d) native, {what}, {eng.threads} threads, final op only",
                timed(lambda eng=eng: eng.run(xi, keep=False)),
            )
        )
        if kernels == "fast":
            native_rows.append(
                (
                    key + "_keep",
                    f"(d) native, {what}, {eng.threads} threads, all ops kept",
                    timed(lambda eng=eng: eng.run(xi)),
                )
            )
            if eng.native.simd == "avx512-vnni":
                eng.native.lib.qv_host_simd_limit(1)
                native_rows.append(
                    (
                        "native_avx2",
                        f"(d) native, fast capped to avx2, {eng.threads} threads, final op only",
                        timed(lambda eng=eng: eng.run(xi, keep=False)),
                    )
                )
                eng.native.lib.qv_host_simd_limit(2)
    one = NativeEngine(plan, kernels="fast", threads=1)
    native_rows.append(
        (
            "native_1t",
            f"(d) native, fast ({one.native.simd}), 1 thread, final op only",
            timed(lambda: one.run(xi, keep=False)),
        )
    )

    rows = [("a", "(a) keras, one sample per call (notebook)", timed(loop, 1))]
    rows.append(
        ("b", "(b) keras, batched (predict, batch 256)", timed(lambda: model.predict(x, batch_size=256, verbose=0)))
    )
    rows.append(("calib", "(b) calibration, batched (per-op min/max)", timed(lambda: calibrate(graph, x))))
    float_engine = FloatEngine(plan, graph)
    rows.append(("b2", "(b) float engine, batched, all ops kept", timed(lambda: float_engine.run_float(x))))
    shift = ShiftEngine(plan)
    rows.append(("shift", "(c) shift model, batched", timed(lambda: shift.run(xi), 1)))
    rows += native_rows

    rate = {key: n / sec for key, _, sec in rows}
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "0") not in ("0", "false", "False")
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores; python {platform.python_version()}, "
        f"TensorFlow oneDNN {'on' if onednn else 'off (qverify default)'}"
    )
    print(f"demo: {macs / 1e6:.2f} MMAC per sample, {n} samples (test split) for every row")
    width = max(len(name) for _, name, _ in rows)
    print(f"{'':<{width}} {'seconds':>8} {'samples/s':>10} {'GMAC/s':>7} {'x (a)':>7} {'x (b)':>6}")
    for key, name, sec in rows:
        r = rate[key]
        print(
            f"{name:<{width}} {sec:>8.3f} {r:>10.1f} {r * macs / 1e9:>7.2f} {r / rate['a']:>7.1f} {r / rate['b']:>6.2f}"
        )

    shift_out = shift.run(xi).outputs
    same = {
        k: all(np.array_equal(shift_out[name], out) for name, out in eng.run(xi).outputs.items())
        for k, eng in engines.items()
    }
    vec = vectorisation(engines["plain"].native.module_name)
    vec.update(vectorisation(engines["fast"].native.module_name, HOT_FAST))
    pause, busy = gil_check(lambda: one.run(xi, keep=False))
    print()
    for k, ok in same.items():
        print(f"native ({k}) identical to the shift model on every op of all {n} samples: {ok}")
    print("packed multiply-add instructions (" + "/".join(PACKED_MAC) + ") in the hot code:")
    for kernel, count in vec.items():
        verdict = "objdump missing" if count is None else ("vectorised" if count else "NOT vectorised")
        print(f"  {kernel:<42} {'-' if count is None else count:>4}  {verdict}")
    print(
        f"GIL released during a native call: a Python thread never paused longer than {1e3 * pause:.1f} ms "
        f"while one native call ran {1e3 * busy:.0f} ms ({'released' if pause < busy / 4 else 'HELD'})"
    )
    print()
    results = {}
    for engine, base, factor in TARGETS:
        got = rate[engine] / rate[base]
        results[f"{engine} >= {factor:g}x ({base})"] = (got, got >= factor)
        print(f"target {engine} >= {factor:g}x ({base}): {got:.1f}x  {'MET' if got >= factor else 'NOT MET'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "machine": cpu_model(),
                    "cores": os.cpu_count(),
                    "onednn": onednn,
                    "samples": n,
                    "mmac_per_sample": macs / 1e6,
                    "rows": [
                        {"key": k, "name": nm, "seconds": s, "samples_per_s": n / s, "gmac_per_s": n / s * macs / 1e9}
                        for k, nm, s in rows
                    ],
                    "identical": same,
                    "packed_mac": vec,
                    "gil_longest_python_pause_s": pause,
                    "native_call_s": busy,
                    "targets": {k: {"ratio": v[0], "met": v[1]} for k, v in results.items()},
                },
                f,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
