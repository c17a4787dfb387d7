"""Wall time of `qverify eval` on the demo against one batched float32 Keras predict, in one run (issue 14).

    python bench/bench_eval.py [--samples 14544] [--memory-samples 3636] [--rounds 1] [--eval-args '...']
                               [--json bench.json] [--profile eval.prof]

Fresh interpreters, one after the other, on the same demo test samples:
(p) the demo model's batched `model.predict(x, batch_size=256)` (float32, oneDNN off as qverify runs
    it: qverify.tensorflow_defaults), timed alone: data generation, TensorFlow import, model load and
    one warm-up batch are outside the timing;
(e) `python -m qverify eval --samples N --json ...`: every engine (float, shift, native fast build), every
    op's statistics, the whole command timed from the outside (interpreter start, TensorFlow import,
    quantization and reports included).
Each (e) runs between two (p), p e p e p ... (--rounds evals): the machine's speed drifts, so an eval is
set against the mean of the predicts around it, and with several rounds the median round is reported.
Prints the ratio (e)/(p), each stage's share of (e) from the JSON's stage_seconds (float, shift, native,
statistics, data; native and statistics run in eval's worker thread, overlapping the others; other = the
wall time outside evaluate()'s loop: start-up, TensorFlow import, quantization, reports), the peak RSS of
(e), and the peak RSS of a second eval over --memory-samples samples (memory must not grow with the
sample count). --profile runs (e) under cProfile and writes the profile.

The target (issue 14): (e) <= 2x (p), peak RSS < 4 GB. Not a test: figures depend on the machine and
on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

from machine import cpu_model

TARGET_RATIO = 2.0
TARGET_RSS_GB = 4.0
STAGES = ("float", "shift", "native", "statistics", "data")
DEMO_TEST_SAMPLES = 14544  # the notebook's data-set size


def child(argv: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Run a fresh interpreter; (wall seconds, its peak RSS in GB, stdout). Exits on a status other than 0/1."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        proc = subprocess.Popen([sys.executable, *argv], stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (ru_maxrss in KiB on Linux)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode not in (0, 1) or (proc.returncode == 1 and "Traceback" in err.read()):
            err.seek(0)
            sys.exit(f"{' '.join(argv)} exited {proc.returncode}:\n{err.read()[-2000:]}")
        return wall, usage.ru_maxrss / 2**20, out.read()


def predict_only(samples: int) -> None:
    """(p), run in its own interpreter: prints {"seconds": ...} as JSON."""
    import qverify

    qverify.tensorflow_defaults()
    from qverify import demo

    x, _ = demo.make_dataset(samples, "test")
    x = x.reshape(samples, demo.FRAME_LEN, 1, 1)
    model = demo.load_model()
    model.predict(x[:256], batch_size=256, verbose=0)  # traces the predict function once
    t = time.perf_counter()
    model.predict(x, batch_size=256, verbose=0)
    print(json.dumps({"seconds": time.perf_counter() - t}))


def _predict(n: int, env: dict) -> tuple[float, float]:
    """(p) in a fresh interpreter: (seconds, peak RSS in GB)."""
    _, rss, out = child([os.path.abspath(__file__), "--predict-only", str(n)], env)
    return json.loads(out.strip().splitlines()[-1])["seconds"], rss


def _eval(n: int, env: dict, extra: list[str], profile: str | None) -> tuple[float, float, dict]:
    """(e) in a fresh interpreter: (wall seconds, peak RSS in GB, its JSON result)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "eval.json")
        prof = ["-m", "cProfile", "-o", os.path.abspath(profile)] if profile else []
        wall, rss, _ = child([*prof, "-m", "qverify", "eval", "--samples", str(n), "--json", path, *extra], env)
        with open(path) as f:
            return wall, rss, json.load(f)


def _stages(result: dict, wall: float) -> dict[str, float]:
    stages = {s: float(result.get("stage_seconds", {}).get(s, result["seconds"].get(s, 0.0))) for s in STAGES}
    # native and statistics run in eval's worker thread, beside data, float and shift (evaluate.py): their
    # seconds overlap the main thread's, so "other" is the wall time outside the loop (start-up,
    # TensorFlow import, quantization, reports) and the loop's wall is shown beside the stages
    stages["other"] = wall - float(result.get("wall_seconds", 0.0))
    return stages


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=DEMO_TEST_SAMPLES, help="demo test samples (default 14544)")
    ap.add_argument(
        "--memory-samples",
        type=int,
        default=None,
        help="samples of the second, memory-only eval (default samples/4; 0 skips it)",
    )
    ap.add_argument("--rounds", type=int, default=1, help="evals, each between two predicts (default 1)")
    ap.add_argument("--eval-args", default="", help="extra arguments for qverify eval (e.g. '--threads 1')")
    ap.add_argument("--json", help="also write the figures as JSON")
    ap.add_argument("--profile", help="run the (first) eval under cProfile and write its profile here")
    ap.add_argument("--predict-only", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.predict_only:
        predict_only(args.predict_only)
        return 0
    n = args.samples
    small = n // 4 if args.memory_samples is None else args.memory_samples
    env = {k: v for k, v in os.environ.items() if k not in ("TF_ENABLE_ONEDNN_OPTS", "QVERIFY_CMSIS_ROOT")}
    extra = args.eval_args.split()

    small_rss = _eval(small, env, extra, None)[1] if small else None
    # The machine's speed drifts (this 2-core VM gave predict 11-21 s within one hour), so each eval runs
    # between two predicts and is set against their mean: p e p e p ...
    predicts, evals = [_predict(n, env)], []
    for r in range(args.rounds):
        evals.append(_eval(n, env, extra, args.profile if r == 0 else None))
        predicts.append(_predict(n, env))
    rounds = [
        (e[0] / ((predicts[i][0] + predicts[i + 1][0]) / 2), e[0], predicts[i][0], predicts[i + 1][0])
        for i, e in enumerate(evals)
    ]
    best = sorted(range(len(rounds)), key=lambda i: rounds[i][0])[len(rounds) // 2]  # the median round
    ratio, eval_s, p_before, p_after = rounds[best]
    predict_s = (p_before + p_after) / 2
    _, eval_rss, result = evals[best]
    predict_rss = max(p[1] for p in predicts)
    stages = _stages(result, eval_s)
    loop = float(result.get("wall_seconds", 0.0))
    overlap = sum(stages[s] for s in STAGES) - loop
    exact = result.get("bit_exact_samples")

    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}; "
        "TensorFlow oneDNN off (qverify default)"
    )
    print(
        f"demo test split, {n} samples; eval {' '.join(extra)}: engines {', '.join(result['engines'])}, "
        f"{exact} of {result['samples']} samples bit-exact shift vs native"
    )
    for i, (r, e, pb, pa) in enumerate(rounds):
        print(f"round {i + 1}: predict {pb:.2f} s, eval {e:.2f} s, predict {pa:.2f} s: ratio {r:.2f}")
    print(f"(p) keras predict, batch 256          {predict_s:8.2f} s   (mean of the two around the eval)")
    print(
        f"(e) qverify eval --samples {n:<9} {eval_s:8.2f} s   ratio (e)/(p) {ratio:.2f}  "
        f"(target <= {TARGET_RATIO:g}: {'MET' if ratio <= TARGET_RATIO else 'NOT MET'})"
        + (f"; the median of {len(rounds)} rounds" if len(rounds) > 1 else "")
    )
    print(
        f"    evaluate() loop {loop:.2f} s wall; main thread (data, float, shift) and worker thread (native, "
        f"statistics) overlap by {max(0.0, overlap):.2f} s"
    )
    print(f"    {'stage':<12} {'seconds':>8} {'share':>7}")
    for s, sec in stages.items():
        print(f"    {s:<12} {sec:>8.2f} {100 * sec / eval_s:>6.1f}%")
    print(
        f"peak RSS: eval {n} samples {eval_rss:.2f} GB (target < {TARGET_RSS_GB:g} GB: "
        f"{'MET' if eval_rss < TARGET_RSS_GB else 'NOT MET'})"
        + (f"; eval {small} samples {small_rss:.2f} GB" if small_rss is not None else "")
        + f"; predict {predict_rss:.2f} GB"
    )
    if args.profile:
        print(f"profile of (e): {args.profile}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "machine": cpu_model(),
                    "cores": os.cpu_count(),
                    "samples": n,
                    "eval_args": extra,
                    "rounds": [
                        {"ratio": r, "eval_s": e, "predict_before_s": pb, "predict_after_s": pa}
                        for r, e, pb, pa in rounds
                    ],
                    "predict_s": predict_s,
                    "eval_s": eval_s,
                    "ratio": ratio,
                    "stages_s": stages,
                    "loop_s": loop,
                    "eval_peak_rss_gb": eval_rss,
                    "small_samples": small,
                    "small_peak_rss_gb": small_rss,
                    "bit_exact_samples": exact,
                },
                f,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
