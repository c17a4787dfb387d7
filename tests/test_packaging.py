"""qverify as a package: the set-up line CI runs, the platforms it installs on, and a wheel that works
installed into a fresh virtual environment outside the source tree."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from fake_cmsis import fake_cmsis_tree
from tools import DEBIAN_PACKAGES, require

ROOT = Path(__file__).resolve().parents[1]
# the environment markers of each platform firmware teams work on (PEP 508 names)
PLATFORMS = {
    "linux-x86_64": {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64"},
    "linux-aarch64": {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "aarch64"},
    "macos-arm64": {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64"},
    "windows-amd64": {"sys_platform": "win32", "platform_system": "Windows", "platform_machine": "AMD64"},
}
# the TensorFlow distribution that has a wheel there (pip download --only-binary=:all: --platform ...:
# tensorflow-cpu has none for manylinux aarch64 or macOS arm64)
TENSORFLOW = {
    "linux-x86_64": "tensorflow-cpu",
    "linux-aarch64": "tensorflow",
    "macos-arm64": "tensorflow",
    "windows-amd64": "tensorflow-cpu",
}


def _apt_packages(text: str) -> list[str]:
    text = re.sub(r"\\\n\s*", " ", text)  # a command continued over lines
    (line,) = [ln for ln in text.splitlines() if re.match(r"\s*(sudo )?apt-get install .*--no-install-recommends", ln)]
    return [w for w in line.split("--no-install-recommends", 1)[1].split() if not w.startswith("-")]


def test_ci_installs_exactly_the_readme_packages():
    """.ci/run's apt-get line names the README's (and CONTRIBUTING's) packages, and between them every package a
    test needs."""
    ci = _apt_packages((ROOT / ".ci" / "run").read_text())
    readme = _apt_packages((ROOT / "README.md").read_text())
    assert ci == readme
    assert _apt_packages((ROOT / "CONTRIBUTING.md").read_text()) == ci
    needed = {pkg for pkgs in DEBIAN_PACKAGES.values() for pkg in pkgs.split()}
    assert needed <= set(ci), needed - set(ci)


def test_every_program_a_test_requires_has_its_debian_packages():
    """Each program named in a require(...) / require_compiler(...) call of the tests maps to Debian packages (so a
    skip names them and the apt-get line above installs them)."""
    sources = "".join(p.read_text() for p in (ROOT / "tests").glob("*.py"))
    calls = re.findall(r"require(?:_compiler)?\(([^)]*)\)", sources)
    programs = {m for call in calls for m in re.findall(r'"([a-z][\w.+-]*)"', call) if not m.startswith("-")}
    assert {"gcc", "make", "clang", "chromium"} <= programs
    assert programs <= set(DEBIAN_PACKAGES), programs - set(DEBIAN_PACKAGES)


def _requirements(lines: list[str]) -> list[Requirement]:
    return [Requirement(line) for line in lines]


def _resolved(reqs: list[Requirement], platform: str) -> set[str]:
    env = {
        "python_version": "3.11",
        "python_full_version": "3.11.7",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "os_name": "nt" if platform.startswith("win") else "posix",
        "extra": "",
        **PLATFORMS[platform],
    }
    return {r.name for r in reqs if r.marker is None or r.marker.evaluate(env)}


@pytest.mark.parametrize("platform", list(PLATFORMS))
def test_dependencies_resolve_to_one_tensorflow_with_wheels(platform):
    """On each platform exactly one TensorFlow distribution is required, the one with wheels there."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = _resolved(_requirements(deps), platform)
    assert names & {"tensorflow", "tensorflow-cpu"} == {TENSORFLOW[platform]}
    assert {"numpy", "keras", "cffi", "matplotlib", "tqdm"} <= names


def _copy_source(dest: Path) -> Path:
    """The project as an sdist would hold it: no git data, no build products."""
    ignore = shutil.ignore_patterns(
        ".git",
        "build",
        "dist",
        "*.egg-info",
        "*.so",
        "*.pyd",
        "__pycache__",
        ".hypothesis",
        ".pytest_cache",
        "_native_*.c",
        "qverify_out",
        ".qverify_cache",
    )
    shutil.copytree(ROOT, dest, ignore=ignore)
    return dest


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    """`pip wheel .` of a clean copy of the project, installed with its dependencies into a new venv."""
    require("gcc")
    base = tmp_path_factory.mktemp("wheel")
    src = _copy_source(base / "src")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(base / "dist"), str(src)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (base / "dist").glob("qverify-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True, timeout=1800
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    work = base / "work"  # outside the source tree: nothing can be found through a checkout
    work.mkdir()
    return wheel, python, work


def _run(python: Path, cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [str(python), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "QVERIFY_CACHE_DIR": str(cwd / "cache"), **(env or {})},
    )


def test_wheel_carries_the_c_sources_and_the_seven_modules(wheel_venv):
    """The wheel holds the cffi build module, every C source a run-time build needs, the demo, the six
    compiled variants and the statistics module; its metadata carries the platform markers."""
    wheel, _, _ = wheel_venv
    names = set(zipfile.ZipFile(wheel).namelist())
    want = {
        "qverify/build.py",
        "qverify/csrc/qv_runner.c",
        "qverify/csrc/qverify_cdef.h",
        "qverify/csrc/qv_stats.c",
        "qverify/csrc/qv_stats.h",
        "qverify/csrc/qv_stats_cdef.h",
        "qverify/cmsis/Include/arm_nnfunctions.h",
        "qverify/cmsis/Source/arm_convolve_HWC_q15_fast_nonsquare.c",
        "qverify/firmware/mps2.ld",
        "qverify/firmware/qv_target_main.c",
        "qverify/demo/model.keras",
    }
    assert want <= names, want - names
    modules = {n.split("/")[1].split(".")[0] for n in names if re.match(r"qverify/_native_\w+\.(abi3\.)?(so|pyd)$", n)}
    assert modules == {f"_native_{k}_{r}" for k in ("dsp", "plain", "fast") for r in ("truncate", "round")}
    assert [n for n in names if re.match(r"qverify/_stats\.([\w.-]+\.)?(so|pyd)$", n)], "no qverify._stats"
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    reqs = _requirements([ln.split(":", 1)[1].strip() for ln in meta.splitlines() if ln.startswith("Requires-Dist:")])
    for platform in PLATFORMS:
        assert _resolved(reqs, platform) & {"tensorflow", "tensorflow-cpu"} == {TENSORFLOW[platform]}


def test_installed_wheel_runs_every_command(wheel_venv, tmp_path):
    """From the installed wheel, outside the source tree: quantize, compare, eval with each host build, a
    CMSIS tree (--cmsis-root, built at run time from the package's C sources) and the gate."""
    _, python, work = wheel_venv
    r = _run(python, work, "-m", "qverify.build", "--sources")
    assert r.returncode == 0 and str(ROOT) not in r.stdout and "site-packages" in r.stdout, r.stdout + r.stderr
    r = _run(python, work, "-m", "qverify", "quantize", "--out", "plan")
    assert r.returncode == 0 and (work / "plan" / "weights.h").is_file(), r.stderr[-3000:]
    r = _run(python, work, "-m", "qverify", "compare", "--plan", "plan", "--samples", "2")
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]
    for kernels in ("dsp", "plain", "fast"):
        r = _run(python, work, "-m", "qverify", "eval", "--plan", "plan", "--samples", "8", "--kernels", kernels)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    tree = fake_cmsis_tree(tmp_path)  # its altered arm_relu_q15 must show: the tree was really built
    r = _run(
        python,
        work,
        "-m",
        "qverify",
        "compare",
        "--plan",
        "plan",
        "--samples",
        "1",
        "--kernels",
        "plain",
        "--cmsis-root",
        str(tree),
    )
    assert r.returncode == 1 and "first divergent op: relu_conv1" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]
    (work / "qverify.toml").write_text('[tool.qverify]\nsamples = 4\nout = "nn"\n')
    r = _run(python, work, "-m", "qverify", "gate")
    assert r.returncode == 0 and (work / "nn" / "network.c").is_file(), r.stdout[-3000:] + r.stderr[-3000:]


def test_installed_wheel_runs_the_target(wheel_venv):
    """The emulated Cortex-M build works from the installed wheel too (firmware/ is package data)."""
    from qverify.mcu import missing_reason
    from tools import absent

    reason = missing_reason()
    if reason is not None:
        absent(f"the target toolchain is missing: {reason}")
    _, python, work = wheel_venv
    r = _run(python, work, "-m", "qverify", "target", "--samples", "0:1")
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]
