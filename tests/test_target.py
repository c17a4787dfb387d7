"""The kernels cross-compiled for a Cortex-M and run under QEMU compute what the host and the shift model compute.

Needs arm-none-eabi-gcc, newlib and qemu-system-arm (`apt-get install -y
gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm`). Without them
these tests are skipped with the reason, except under CI (CI=true), where a
missing toolchain is a failure: CI installs it (.ci/run).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from fake_cmsis import fake_cmsis_tree
from qverify.cli import main
from qverify.compare import compare_results
from qverify.engines.base import RunResult
from qverify.mcu import missing_reason
from qverify.mcu.errors import TargetRunError, ToolchainError
from tools import absent

SAMPLES = list(range(8))


@pytest.fixture(scope="module")
def toolchain():
    """Skip (or, in CI, fail) when a program of the target toolchain is missing; the reason names it."""
    reason = missing_reason()
    if reason is not None:
        absent(f"the target toolchain is missing: {reason}")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A fresh build cache for this module (so CI really cross-compiles)."""
    d = tmp_path_factory.mktemp("target-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QVERIFY_CACHE_DIR", str(d))
        yield d


@pytest.fixture(scope="module")
def demo(toolchain, cache, tmp_path_factory):
    """The demo plan (built once), saved for the CLI, and its first 8 quantized samples."""
    from qverify.commands.common import load_samples
    from qverify.workflow import quantize

    plan = quantize().plan
    d = tmp_path_factory.mktemp("demo-plan")
    plan.save(d)
    return plan, d, load_samples(plan, None, SAMPLES)


def _plan(demo, rounding):
    plan = copy.deepcopy(demo[0])
    plan.rounding = rounding
    return plan


@pytest.fixture(scope="module")
def targets(demo):
    """TargetEngine per (cpu, rounding), built on first use."""
    from qverify.engines.target import TargetEngine

    built = {}

    def get(cpu, rounding):
        if (cpu, rounding) not in built:
            built[cpu, rounding] = TargetEngine(_plan(demo, rounding), cpu=cpu)
        return built[cpu, rounding]

    return get


@pytest.fixture(scope="module")
def references(demo):
    """(shift result, native result) per (rounding, native kernels), computed on first use."""
    from qverify.engines import make_engine

    done = {}

    def get(rounding, kernels):
        key = (rounding, kernels)
        if key not in done:
            plan = _plan(demo, rounding)
            shift = done.get(("shift", rounding)) or make_engine("shift", plan).run(demo[2])
            done["shift", rounding] = shift
            done[key] = (shift, make_engine("native", plan, kernels=kernels).run(demo[2]))
        return done[key]

    return get


def _diffs(plan, ref, got):
    return [(c.name, c.mismatches) for c in compare_results(plan, ref, got, SAMPLES) if c.mismatches]


@pytest.mark.parametrize(
    "cpu,rounding",
    [
        ("cortex-m4", "truncate"),
        ("cortex-m4", "round"),
        ("cortex-m3", "truncate"),
        ("cortex-m3", "round"),
        ("cortex-m7", "truncate"),
    ],
)
def test_target_bit_exact_with_host_and_shift_on_demo(demo, targets, references, cpu, rounding):
    """Every op of the demo, 8 samples: the emulated core equals the shift model and the host kernels
    of the same path (DSP on M4/M7, plain on M3) in both rounding builds."""
    engine = targets(cpu, rounding)
    plan = engine.plan
    assert engine.image.path == ("plain" if cpu == "cortex-m3" else "dsp")
    got = engine.run(demo[2])
    shift, native = references(rounding, engine.image.path)
    assert _diffs(plan, shift, got) == []
    assert _diffs(plan, native, got) == []
    assert len(engine.kernels_used) == len(plan.ops)
    assert f"rounding={rounding}" in engine.describe()
    # an instruction estimate for every op, from the emulator
    assert set(engine.instructions) == {op.name for op in plan.ops}
    assert all(n > 0 for n in engine.instructions.values())


def test_dsp_path_uses_simd_instructions(targets):
    """The M4 build of the kernels really contains SMLAD (qv_intrinsics.h did not fall back to C); M3's does not,
    and the DSP path needs fewer instructions per MAC for the widest conv."""
    m4, m3 = targets("cortex-m4", "truncate"), targets("cortex-m3", "truncate")
    for stem in ("arm_convolve_HWC_q15_fast_nonsquare", "arm_fully_connected_q15"):
        assert re.search(r"\ssmlad\s", m4.disassembly(stem)), stem
        assert not re.search(r"\ssmlad\s", m3.disassembly(stem)), stem
    if not m4.instructions or not m3.instructions:
        x = np.zeros((1, *m4.plan.input_shape), np.int16)
        m4.run(x)
        m3.run(x)
    assert m4.instructions["conv2"] < m3.instructions["conv2"]
    # -icount shift=6: 64 ns of virtual time per instruction, the 25 MHz timer ticks 1.6 times per instruction
    ticks, insns, _ = m4.last_run.calibration
    assert abs(ticks / insns - 1.6) < 0.001


def test_isolated_mode_and_run_op(demo, targets, references):
    """Isolated mode runs in one emulator launch and matches the host op by op; run_op runs one op."""
    engine = targets("cortex-m4", "truncate")
    shift, native = references("truncate", "dsp")
    got = engine.run_isolated(demo[2], native)
    assert _diffs(engine.plan, native, got) == []
    i = engine.plan.index("conv3")
    x = native.outputs[engine.plan.ops[i - 1].name]
    np.testing.assert_array_equal(engine.run_op(i, x).out, native.outputs["conv3"])


def _flip_first_weight(stem: str):
    def patch(folder: Path) -> None:
        path = folder / "weights.h"
        text = path.read_text()
        m = re.search(rf"#define {stem}_WT \{{ \\\n    (-?\d+)", text)
        assert m, f"{stem}_WT not found in weights.h"
        new = int(m.group(1)) ^ 1
        path.write_text(text[: m.start(1)] + str(new) + text[m.end(1) :])

    return patch


def test_fault_in_target_header_only_is_named(demo, targets, references):
    """One weight altered in the target build's weights.h (host untouched): the comparison fails at that op."""
    from qverify.engines.target import TargetEngine

    plan = _plan(demo, "truncate")
    engine = TargetEngine(plan, cpu="cortex-m4", patch=_flip_first_weight("CONV3"))
    assert engine.image.directory != targets("cortex-m4", "truncate").image.directory  # its own image
    shift, native = references("truncate", "dsp")
    diffs = _diffs(plan, shift, engine.run(demo[2]))
    assert diffs and diffs[0][0] == "conv3"
    iso = engine.run_isolated(demo[2], native)
    assert [name for name, _ in _diffs(plan, native, iso)] == ["conv3"]


def test_hang_times_out_naming_the_running_op(demo):
    """A firmware that never returns is killed at the timeout; the message names the op that was running."""
    from qverify.engines.target import TargetEngine

    engine = TargetEngine(_plan(demo, "truncate"), cpu="cortex-m4", inject={"hang": "conv3"}, timeout=2)
    t0 = time.perf_counter()
    expected = r"did not finish within 2 s: op 'conv3' \(index 5\) on sample 0 of the batch was running"
    with pytest.raises(TargetRunError, match=expected) as e:
        engine.run(demo[2][:2])
    assert time.perf_counter() - t0 < 15
    assert (e.value.kind, e.value.op, e.value.sample) == ("timeout", "conv3", 0)


@pytest.mark.parametrize(
    "kind,text",
    [
        ("crash", r"crashed with HardFault in op 'conv5' .*BFAR=0x3f000000"),
        ("stack", r"crashed with a stack overflow \(MemManage fault\) in op 'conv5'"),
    ],
)
def test_crash_is_reported_with_the_op(demo, kind, text):
    """A bus fault or a stack overflow ends the run at once (no timeout) with the op named."""
    from qverify.engines.target import TargetEngine

    engine = TargetEngine(_plan(demo, "truncate"), cpu="cortex-m3", inject={kind: "conv5"}, timeout=60)
    t0 = time.perf_counter()
    with pytest.raises(TargetRunError, match=text) as e:
        engine.run(demo[2][:1])
    assert time.perf_counter() - t0 < 30
    assert (e.value.kind, e.value.op) == ("fault", "conv5")


def test_bad_plan_in_target_build_is_named(demo):
    """A geometry the runner refuses (here: conv4's output height edited in network.c) stops the firmware
    before anything runs, naming the op and the arm_status."""
    from qverify.engines.target import TargetEngine

    def patch(folder: Path) -> None:
        path = folder / "network.c"
        text = path.read_text()
        text, n = re.subn(
            r"\{QV_OP_CONV, (\w+), (\d)u, 253, 1, 32, 251,", r"{QV_OP_CONV, \1, \2u, 253, 1, 32, 250,", text
        )
        assert n == 1
        path.write_text(text)

    engine = TargetEngine(_plan(demo, "truncate"), cpu="cortex-m4", patch=patch)
    with pytest.raises(TargetRunError, match=r"op 'conv4' \(index 7\).*qv_run refused the ops table: arm_status -1"):
        engine.run(demo[2][:1])


def test_footprint_of_the_real_build_beside_the_estimate(demo, targets):
    """arm-none-eabi-size / -nm figures: every layer's weight and bias array has the bytes `qverify report`
    estimates, the weights section their sum, the runner's scratch the estimate's words; a disagreement is named."""
    import dataclasses

    from qverify.footprint import footprint
    from qverify.mcu.report import disagreements, footprint_lines, real_op_bytes

    engine = targets("cortex-m4", "truncate")
    if engine.last_run is None:
        engine.run(demo[2][:1])
    scratch = engine.last_run.scratch_words
    fp = engine.footprint()
    est = footprint(engine.plan)
    assert scratch == est.runner_scratch_words
    assert real_op_bytes(engine.plan, fp)["conv2"] == (2 * 16 * 9 * 16, 2 * 16)
    assert 0 <= fp.weights - est.flash_bytes < 4
    assert disagreements(engine.plan, fp, scratch) == []
    assert fp.code_by_group.get("kernels", 0) > 1000 and fp.code_by_group.get("runner", 0) > 500
    assert fp.flash > fp.weights + fp.code
    assert fp.ram >= 2 * 2 * 4088 * 16  # the runner's two activation buffers of 4088x16 int16
    assert any("agree" in line for line in footprint_lines(engine.plan, fp, scratch, "m4"))

    bad = dataclasses.replace(fp, symbols={**fp.symbols, "qv_w5": fp.symbols["qv_w5"] + 2})
    found = disagreements(engine.plan, bad, scratch + 2)
    assert [d.split(":")[0] for d in found] == ["conv3", "runner scratch"]
    assert any("DISAGREES" in line for line in footprint_lines(engine.plan, bad, scratch + 2, "m4"))


def test_cli_target_pass_json_and_tables(demo, capsys, tmp_path):
    """`qverify target` on a saved plan: two bit-exact tables, footprint, instruction table, exit 0, JSON."""
    out_json = tmp_path / "t.json"
    code = main(["target", "--plan", str(demo[1]), "--samples", "0:2", "--cpu", "cortex-m4", "--json", str(out_json)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "== target vs shift ==" in out and "== target vs native ==" in out
    assert "PASS: target cortex-m4 vs shift: bit-exact; vs native: bit-exact; self-test: pass" in out
    assert "self-test on the device (network.c qv_selftest() on data-set sample 0 (shift model)): PASS: 11 op(s)" in out
    assert "footprint of the real build (arm-none-eabi-size -A" in out
    assert "real build and estimate agree" in out
    assert "emulator instructions (QEMU -icount), not silicon cycles" in out
    doc = json.loads(out_json.read_text())
    assert doc["ok"] and doc["footprint"]["weights"] >= doc["footprint"]["estimate"]["flash_bytes"]
    assert doc["footprint"]["disagreements"] == []
    assert doc["selftest"]["ok"] and doc["selftest"]["n_checked"] == 11
    assert set(doc["instructions"]["per_op_mean"]) == {op.name for op in demo[0].ops}


def test_cli_target_selftest_names_an_edited_expected_value(demo, capsys, tmp_path):
    """The plan folder's sample_input_output.h with one expected value of conv3 edited: the image's boot self-test
    (network.c's qv_selftest() on the emulated core) names that op and element, and `qverify target` exits 1
    although every comparison is bit-exact."""
    from qverify.engines.shift import ShiftEngine
    from qverify.export import sample_header

    plan, saved, x = demo
    folder = tmp_path / "plan"
    shutil.copytree(saved, folder)
    outputs = {k: v[0] for k, v in ShiftEngine(plan).run(x[:1]).outputs.items()}
    text = sample_header(plan, x[0], outputs)
    start = text.index("\n", text.index("#define CONV3 {"))
    value = list(re.finditer(r"-?\d+", text[start:]))[17]
    good = int(value.group())
    (folder / "sample_input_output.h").write_text(
        text[: start + value.start()] + str(good + 1) + text[start + value.end() :]
    )
    code = main(["target", "--plan", str(folder), "--sample", "0"])
    out = capsys.readouterr().out
    assert code == 1, out
    size = int(np.prod(plan.op("conv3").out_shape))
    assert (
        f"self-test on the device (network.c qv_selftest() on {folder / 'sample_input_output.h'}): "
        f"FAIL: op 'conv3' (index 5): 1 of {size} values differ from sample_input_output.h; first at element 17: "
        f"expected {good + 1}, got {good}"
    ) in out
    assert "FAIL: target cortex-m4 vs shift: bit-exact; vs native: bit-exact; self-test: FAILS" in out


def test_cli_target_rounding_mismatch_exits_1(demo, capsys):
    """A round build checked against a truncate plan: target vs shift differs (exit 1), target vs native agrees."""
    code = main(["target", "--plan", str(demo[1]), "--sample", "0", "--rounding", "round", "--layer", "conv2"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert re.search(r"FAIL: target cortex-m4 vs shift: DIFFERS at conv1; vs native: bit-exact", out)
    assert "conv2:" in out and "LSB difference histogram" in out


def test_cli_target_hang_exits_1_naming_op(demo, capsys, monkeypatch):
    """Through the command, a firmware failure is a FAIL (exit 1) with the op named, never a stuck job."""
    from qverify.mcu import run as target_run  # where the command's run makes its TargetEngine

    real = target_run.TargetEngine

    def hanging(plan, **kw):
        return real(plan, inject={"hang": "relu_conv2"}, **kw)

    monkeypatch.setattr(target_run, "TargetEngine", hanging)
    code = main(["target", "--plan", str(demo[1]), "--sample", "3", "--timeout", "2"])
    captured = capsys.readouterr()
    assert code == 1
    assert "FAIL: the target firmware" in captured.out and "op 'relu_conv2' (index 3)" in captured.out
    assert "(batch row 0 is data-set sample 3)" in captured.out


TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-objdump", "arm-none-eabi-nm", "qemu-system-arm")


@pytest.mark.parametrize("missing", ["qemu-system-arm", "arm-none-eabi-gcc"])
def test_missing_toolchain_names_program_and_install_command(tmp_path, monkeypatch, capsys, missing):
    """Without one program, `qverify target` exits 2 naming it and the apt-get command (runs everywhere)."""
    from qverify.mcu.toolchain import find_toolchain

    others_present = all(shutil.which(p) for p in TOOLS if p != missing)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for prog in TOOLS:
        if prog != missing and shutil.which(prog):
            (bindir / prog).symlink_to(shutil.which(prog))
    monkeypatch.setenv("PATH", str(bindir))
    code = main(["target", "--plan", str(tmp_path / "no-plan"), "--sample", "0"])
    err = capsys.readouterr().err
    assert code == 2
    assert "not found on PATH" in err
    assert "apt-get install -y gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm" in err
    if others_present:  # exactly the removed program is named
        assert f"{missing} not found on PATH" in err
        assert missing in missing_reason()
    with pytest.raises(ToolchainError):
        find_toolchain()


def test_cmsis_root_kernels_are_the_ones_cross_compiled(demo, references, tmp_path):
    """QVERIFY_CMSIS_ROOT / cmsis_root: the tree's arm_* sources go into the target image (its altered relu
    shows against the shift model, and agrees with the host build of the same tree); the cache is reused."""
    from qverify.engines import make_engine
    from qverify.engines.target import TargetEngine

    tree = fake_cmsis_tree(tmp_path)
    plan = _plan(demo, "truncate")
    engine = TargetEngine(plan, cpu="cortex-m4", cmsis_root=str(tree))
    assert f"kernels={tree.resolve()}" in engine.describe()
    x = demo[2][:2]
    got = engine.run(x)
    shift, _ = references("truncate", "dsp")
    shift2 = RunResult("shift", {k: v[:2] for k, v in shift.outputs.items()})
    first = next(c for c in compare_results(plan, shift2, got, [0, 1]) if c.mismatches)
    assert first.name == "relu_conv1"
    native = make_engine("native", plan, kernels="plain", cmsis_root=str(tree)).run(x)
    assert [c.name for c in compare_results(plan, native, got, [0, 1]) if c.mismatches] == []
    again = TargetEngine(plan, cpu="cortex-m4", cmsis_root=str(tree))
    assert again.image.cached and again.image.elf == engine.image.elf
