"""The pytest plugin, run through pytest's own pytester on temporary firmware projects."""

from __future__ import annotations

import re

# pytester's in-process runs drop every module they imported when they end; TensorFlow cannot be imported
# twice in one process, so it (and qverify's engines) are imported here, before the first run
import keras  # noqa: F401
import pytest
import tensorflow  # noqa: F401

import qverify.engines.float  # noqa: F401
import qverify.engines.native  # noqa: F401
import qverify.engines.shift  # noqa: F401
import qverify.gate  # noqa: F401
import qverify.mcu.codegen  # noqa: F401
import qverify.workflow  # noqa: F401
from test_gate import make_user_project, plant_relu_mismatch

pytest_plugins = ["pytester"]

USAGE_ERROR = pytest.ExitCode.USAGE_ERROR
DEMO_IDS = (
    "qverify::conv3::bit_exact[shift-native]",
    "qverify::conv3::bit_exact[shift-native:plain]",
    "qverify::fc1::sqnr[shift]",
    "qverify::model::accuracy_drop[shift]",
    "qverify::model::bit_exact_samples",
)


def outcomes(rec) -> dict[str, str]:
    """node id → passed / failed / skipped, for every test that ran."""
    passed, skipped, failed = rec.listoutcomes()
    return {
        **{r.nodeid: "passed" for r in passed},
        **{r.nodeid: "skipped" for r in skipped},
        **{r.nodeid: "failed" for r in failed},
    }


def test_demo_all_checks_pass_then_come_from_the_cache(pytester):
    """Empty [tool.qverify] (the demo, 8 samples) and --qverify: one passing item per op and check with ids
    like qverify::conv3::bit_exact[shift-native]; a second session reads the cache."""
    pytester.makepyprojecttoml("[tool.qverify]\nsamples = 8\n")
    rec = pytester.inline_run("--qverify")
    got = outcomes(rec)
    assert rec.ret == 0 and got and set(got.values()) == {"passed"}
    assert set(DEMO_IDS) <= set(got)
    # contract, 2 bit_exact, 2 sqnr, saturation, overflow
    assert len([i for i in got if i.startswith("qverify::conv1::")]) == 7
    assert "qverify::conv5::contract[arm_convolve_HWC_q15_fast_nonsquare]" in got

    result = pytester.runpytest("--qverify", "-k", "conv3 and bit_exact and not relu", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*qverify::conv3::bit_exact[[]shift-native[]] PASSED*",
            "*qverify: plan *, * checks on 8 sample(s) of demo:test (from the cache)*",
        ]
    )


def test_planted_mismatch_fails_exactly_that_op(pytester, monkeypatch, tmp_path):
    """`pytest = true` turns the plugin on; a firmware CMSIS tree whose arm_relu_q15 is wrong fails act1's
    bit-exact item (with its first mismatches, no traceback) and the model-level sample count, nothing else;
    the project's own tests still run."""
    monkeypatch.setenv("QVERIFY_CACHE_DIR", str(tmp_path / "native-cache"))
    make_user_project(pytester.path, plant_relu_mismatch(pytester.path) + "pytest = true\n")
    pytester.makepyfile(test_firmware="def test_own():\n    assert True\n")
    rec = pytester.inline_run()
    got = outcomes(rec)
    failed = sorted(i for i, o in got.items() if o == "failed")
    # the tree builds on both of its paths (dsp and plain), and its relu is wrong on both
    assert failed == [
        "qverify::act1::bit_exact[shift-native:plain]",
        "qverify::act1::bit_exact[shift-native]",
        "qverify::model::bit_exact_samples",
    ]
    assert got["test_firmware.py::test_own"] == "passed"
    assert {i for i in got if i.startswith("qverify::") and "bit_exact[" in i} == {
        f"qverify::{op}::bit_exact[shift-native{path}]"
        for op in ("conv1", "act1", "flat", "fc1", "fc2")
        for path in ("", ":plain")
    }
    assert all(o == "passed" for i, o in got.items() if i not in failed)

    report = next(r for r in rec.getreports("pytest_runtest_logreport") if r.nodeid == failed[0] and r.when == "call")
    text = report.longreprtext
    assert re.match(r"\d+ of 960 values differ \(max 7 LSB\) \(arm_relu_q15\)\n", text), text
    assert "first mismatches (sample, h, w, c, shift, native):" in text and ", 0, 7)" in text
    assert "Traceback" not in text and "raise " not in text and "QVerifyCheckFailed" not in text
    assert rec.ret == pytest.ExitCode.TESTS_FAILED


def test_bad_configuration_is_one_clear_error(pytester):
    """An unknown key (or a wrong type): no tests run, exit status 4, one error line naming the key and the file."""
    pytester.makepyprojecttoml("[tool.qverify]\nsamplez = 8\n")
    pytester.makepyfile(test_firmware="def test_own():\n    assert True\n")
    result = pytester.runpytest("--qverify")
    assert result.ret == USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    path = pytester.path / "pyproject.toml"
    assert errors == [
        f"ERROR: qverify: {path} [tool.qverify]: unknown key 'samplez' (known keys: bits, "
        "calib_data, calib_overlap, calib_samples, cmsis_root, cmsis_version, data, engines, "
        "fail_on_overflow, final_activation, fit_accumulator, functions, header, header_map, kernels, "
        "labels, max_accuracy_drop, "
        "min_sqnr_db, model, names_from, out, pytest, require_bit_exact, rounding, rule, sample_header, samples, "
        "target_cpu, weight_bits, weights)"
    ]
    assert "passed" not in result.stdout.str()

    pytester.makepyprojecttoml("[tool.qverify]\npytest = true\nsamples = 8.5\n")
    result = pytester.runpytest()  # pytest = true: on without --qverify, and the error is shown
    assert result.ret == USAGE_ERROR
    assert [line for line in result.stderr.lines if line.strip()] == [
        f"ERROR: qverify: {path} [tool.qverify]: 'samples' must be an integer, got float 8.5"
    ]


def test_bad_input_is_one_clear_error(pytester):
    """Data that does not fit the model fails collection with one error line, not a traceback."""
    import numpy as np

    make_user_project(pytester.path)
    np.save(pytester.path / "x.npy", np.zeros((4, 17, 2), np.float32))
    result = pytester.runpytest("--qverify")
    assert result.ret == USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("ERROR: qverify: ") and "x.npy" in errors[0]


def test_plugin_is_off_unless_asked(pytester):
    """Without --qverify and without pytest = true no qverify item is collected (and nothing is computed)."""
    pytester.makepyfile(test_firmware="def test_own():\n    assert True\n")
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1)
    assert "qverify::" not in result.stdout.str() and "qverify: " not in result.stdout.str()

    pytester.makepyprojecttoml("[tool.qverify]\nsamples = 8\n")
    rec = pytester.inline_run()
    assert list(outcomes(rec)) == ["test_firmware.py::test_own"]
    assert not (pytester.path / ".qverify_cache").exists()

    result = pytester.runpytest("--qverify", "-p", "no:qverify")  # the option goes with the plugin
    assert result.ret == USAGE_ERROR
