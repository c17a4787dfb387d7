"""The output folder is one set (issue 17 item 7): a writer killed after any rename leaves the old set or the new
one as far as every reader and the C compiler can tell, or a mix that each of them refuses."""

from __future__ import annotations

import copy
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import qverify
from qverify.cli import main
from qverify.outcome import GateOutcome
from qverify.plan import QuantPlan
from tools import require_compiler

SET = ("plan.json", "plan.npz", "weights.h", "sample_input_output.h", "network.c")
C_FILES = ("weights.h", "sample_input_output.h", "network.c")
USER = {"keep.txt": b"the user's notes\n", "main.c": b"int main(void) { return 0; }\n", "lib/x.h": b"#define X 1\n"}
PKG = Path(qverify.__file__).parent

# run in a fresh interpreter: the writer, killed (os._exit) right after its k-th rename (k = 0: never)
WRITER = """
import os, pickle, sys
src, out, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
renames, real = [0], os.replace
def replace(a, b):
    real(a, b)
    renames[0] += 1
    if renames[0] == kill_at:
        os._exit(9)
os.replace = replace
from qverify.gate import write_outputs
from qverify.workflow import write_plan_and_headers
with open(src, "rb") as f:
    kind, outcome = pickle.load(f)
if kind == "gate":
    write_outputs(outcome, out)
else:
    write_plan_and_headers(outcome.plan, outcome.sample_input, out, outcome.sample_outputs)
print(renames[0])
"""


def outcome(seed: int) -> GateOutcome:
    """A passing gate outcome of a small conv/pool/dense plan; seeds give the same shapes, other weights."""
    from test_plancheck import small_plan

    plan = copy.deepcopy(small_plan())
    rng = np.random.default_rng(seed)
    for op in plan.ops:
        if op.weighted:
            op.weights = rng.integers(-4096, 4096, op.weights.shape).astype(np.int16)
    x0 = rng.integers(-2000, 2000, (1, *plan.input_shape)).astype(np.int16)
    outputs = {op.name: rng.integers(-3000, 3000, op.out_shape).astype(np.int16) for op in plan.ops if op.weighted}
    return GateOutcome([], plan, False, "key", "-", 1, [], {}, [], x0, outputs)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("sets")
    (root / "writer.py").write_text(WRITER)
    for seed in (1, 2):
        for kind in ("gate", "quantize"):
            with open(root / f"{kind}{seed}.pkl", "wb") as f:
                pickle.dump((kind, outcome(seed)), f)
    return root


def write(work: Path, kind: str, seed: int, out: Path, kill_at: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PKG.parent), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, str(work / "writer.py"), str(work / f"{kind}{seed}.pkl"), str(out), str(kill_at)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {n: (folder / n).read_bytes() for n in SET if (folder / n).is_file()}


def stated(folder: Path) -> dict[str, str | None]:
    """The plan each C file names, read with a regex of this test's own."""
    out = {}
    for name in C_FILES:
        if (folder / name).is_file():
            m = re.search(r'#define QVERIFY_(?:NETWORK_)?PLAN_HASH "([0-9a-f]+)"', (folder / name).read_text())
            out[name] = m.group(1) if m else None
    return out


def compiles(cc: str, folder: Path, tmp: Path) -> tuple[bool, str]:
    """weights.h with sample_input_output.h (both orders) and network.c, as a firmware build compiles them."""
    (tmp / "a.c").write_text('#include "weights.h"\n#include "sample_input_output.h"\nint a;\n')
    (tmp / "b.c").write_text('#include "sample_input_output.h"\n#include "weights.h"\nint b;\n')
    flags = [
        "-std=c99",
        "-fsyntax-only",
        "-DARM_NN_TRUNCATE",
        f"-I{folder}",
        f"-I{PKG / 'csrc'}",
        f"-I{PKG / 'firmware'}",
    ]
    errors = []
    units = [tmp / "a.c", tmp / "b.c"] + ([folder / "network.c"] if (folder / "network.c").is_file() else [])
    for unit in units:
        r = subprocess.run([cc, *flags, str(unit)], capture_output=True, text=True)
        if r.returncode:
            errors.append(r.stderr)
    return not errors, "\n".join(errors)


def readers(folder: Path, capsys) -> tuple[str | None, list[str]]:
    """(the plan hash every reader agrees the folder holds, None when refused; the refusal lines)."""
    try:
        loaded = QuantPlan.load(folder).hash
    except qverify.errors.PlanError as exc:
        loaded, load_error = None, str(exc)
    else:
        load_error = ""
    status = main(["diff-header", str(folder / "weights.h"), "--plan", str(folder)])
    captured = capsys.readouterr()
    if loaded is None:
        assert status == 2, captured.out
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
        return None, [load_error, lines[0]]
    assert status == 0, captured.out + captured.err  # the set's own weights.h equals its plan
    return loaded, []


@pytest.mark.parametrize("old_kind, new_kind", [("gate", "gate"), ("quantize", "gate"), ("gate", "quantize")])
def test_a_writer_killed_after_any_rename_leaves_one_set_or_a_refused_mix(work, tmp_path, capsys, old_kind, new_kind):
    """Old set (plan 1) in a folder holding files of the user's; the new set (plan 2) written by a subprocess
    killed right after its k-th rename, for every k. The folder is then byte for byte the old set or the new
    one, and every reader (QuantPlan.load, diff-header, the C compiler) says which; or it is a mix that
    QuantPlan.load and diff-header refuse (exit 2, one line naming the files and their plans) and that does
    not compile wherever its C files are of two plans. The user's files are never touched."""
    cc = require_compiler("gcc")
    base = tmp_path / "base" / "nn"
    for name, blob in USER.items():
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_bytes(blob)
    assert write(work, old_kind, 1, base).returncode == 0
    old = snapshot(base)
    full = tmp_path / "full" / "nn"
    shutil.copytree(base, full)
    r = write(work, new_kind, 2, full)
    assert r.returncode == 0, r.stderr
    new, renames = snapshot(full), int(r.stdout)
    old_hash, new_hash = (QuantPlan.load(d).hash for d in (base, full))
    assert old != new and old_hash != new_hash and renames >= len(new)
    mixes = 0
    for k in range(renames + 1):
        folder = tmp_path / f"k{k}" / "nn"  # k = 0: not killed, the old set rewritten as the new
        shutil.copytree(base, folder)
        r = write(work, new_kind, 2, folder, kill_at=k)
        assert r.returncode == (0 if k == 0 else 9), (k, r.stderr)
        assert {n: (folder / n).read_bytes() for n in USER} == USER, k
        assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")], k
        held = snapshot(folder)
        agreed, refusals = readers(folder, capsys)
        ok_c, c_errors = compiles(cc, folder, tmp_path)
        c_plans = set(stated(folder).values())
        if held == old or held == new:
            assert agreed == (old_hash if held == old else new_hash), k
            assert ok_c, (k, c_errors)
        else:
            mixes += 1
            assert agreed is None, f"k={k}: a mixed set was read as plan {agreed}: {sorted(held)}"
            line = refusals[1]
            assert "does not hold one set" in line and ("weights.h" in line or "plan.json" in line), line
            assert ok_c == (len(c_plans) == 1), (k, c_plans, c_errors)
            if not ok_c:
                assert "qverify:" in c_errors and "of another plan" in c_errors, c_errors
    assert mixes > 0  # the kill points do reach states between the two sets
    assert snapshot(folder) == new and json.loads((folder / "qverify-manifest.json").read_text())["plan"] == new_hash


def test_a_stale_file_of_the_old_set_is_removed_and_a_users_edit_is_kept(work, tmp_path):
    """A gate's network.c is removed by a later `quantize` into the folder (it is no longer part of the set and
    still what qverify wrote); a network.c someone edited is kept, and the folder is then refused until it goes."""
    out = tmp_path / "nn"
    assert write(work, "gate", 1, out).returncode == 0
    assert write(work, "quantize", 2, out).returncode == 0
    assert not (out / "network.c").exists()
    assert write(work, "gate", 1, out).returncode == 0
    (out / "network.c").write_text((out / "network.c").read_text() + "/* edited */\n")
    assert write(work, "quantize", 2, out).returncode == 0
    assert (out / "network.c").read_text().endswith("/* edited */\n")
    with pytest.raises(qverify.errors.PlanError, match=r"network.c of plan .*plan.json|plan.json.*network.c of plan"):
        QuantPlan.load(out)
    (out / "network.c").unlink()
    QuantPlan.load(out)


def test_a_header_of_another_plan_copied_in_is_refused_by_every_reader(work, tmp_path, capsys):
    """Without any crash: a sample_input_output.h of another run copied into the folder."""
    a, b = tmp_path / "a", tmp_path / "b"
    for seed, d in ((1, a), (2, b)):
        assert write(work, "gate", seed, d).returncode == 0
    shutil.copy(b / "sample_input_output.h", a / "sample_input_output.h")
    agreed, refusals = readers(a, capsys)
    assert agreed is None and "sample_input_output.h of plan" in refusals[1]
    assert main(["diff-header", str(a / "weights.h")]) == 2
    assert "does not hold one set" in capsys.readouterr().err
    ok, errors = compiles(require_compiler("gcc"), a, tmp_path)
    assert not ok and "sample_input_output.h in the same build is of another plan" in errors
