"""A plan is validated wherever it comes from: a plan.json edited into inconsistency (its hash recomputed, as
a script or a later version might write it) is one clear line and exit 2 before any engine runs."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from qverify.cli import main
from qverify.errors import PlanError
from qverify.plan import QuantPlan
from strategies import op_plan, plan_of, random_q15


def small_plan():
    rng = np.random.default_rng(0)
    conv = op_plan(
        "conv",
        (8, 6, 2),
        cout=4,
        kernel=(3, 3),
        pad=(1, 1),
        out_rshift=12,
        bias_lshift=1,
        weights=random_q15(rng, (3, 3, 2, 4), 4096),
        bias=random_q15(rng, (4,), 4096),
        name="c1",
    )
    relu = op_plan("relu", conv.out_shape, name="r1")
    pool = op_plan("maxpool", relu.out_shape, kernel=(2, 2), stride=(2, 2), name="p1")
    flat = op_plan("flatten", pool.out_shape, name="flat")
    dense = op_plan(
        "dense",
        flat.out_shape,
        cout=3,
        out_rshift=11,
        weights=random_q15(rng, (flat.out_shape[2], 3), 4096),
        bias=random_q15(rng, (3,), 4096),
        name="fc",
    )
    return plan_of([conv, relu, pool, flat, dense])


def _set(field, value, op="c1"):
    def mutate(plan):
        setattr(plan.op(op), field, value)

    return mutate


def _plan_field(field, value):
    def mutate(plan):
        setattr(plan, field, value)

    return mutate


MUTATIONS = {
    "conv kernel 19 x 3": (_set("kernel", (19, 3)), "op 'c1' (conv): kernel (19, 3) is larger than the padded input"),
    "conv out channels 5": (
        _set("out_shape", (8, 6, 5)),
        "op 'c1' (conv): weights hold 72 values; the geometry needs 90",
    ),
    "input with 3 channels": (
        _set("in_shape", (8, 6, 3)),
        "plan: input_shape (8, 6, 2); the first op 'c1' takes (8, 6, 3)",
    ),
    "stride 0": (_set("stride", (0, 1)), "op 'c1' (conv): stride (0, 1); expected two integers >= 1"),
    "pool kernel 0": (_set("kernel", (0, 2), "p1"), "op 'p1' (maxpool): kernel (0, 2); expected two integers >= 1"),
    "conv relabelled dense": (_set("kind", "dense"), "op 'c1' (dense): out_shape (8, 6, 4)"),
    "negative bias shift": (_set("bias_lshift", -2), "op 'c1' (conv): bias_lshift -2; expected an integer in [0, 31]"),
    "out shift 32": (_set("out_rshift", 32, "fc"), "op 'fc' (dense): out_rshift 32; expected an integer in [0, 31]"),
    "unknown kind": (_set("kind", "hardswish", "r1"), "op 'r1' (hardswish): unknown kind"),
    "bits 8": (_plan_field("bits", 8), "plan: bits 8; qverify verifies q15 (16-bit) kernels only"),
    "chain broken": (_set("in_shape", (1, 1, 47), "fc"), "op 'fc' (dense): in_shape (1, 1, 47) holds 47 values"),
    "bias count": (
        lambda plan: setattr(plan.op("fc"), "bias", plan.op("fc").bias[:2]),
        "op 'fc' (dense): bias hold 2 values; the geometry needs 3",
    ),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_an_inconsistent_plan_is_one_line_and_exit_2(name, tmp_path, capsys):
    """Each mutation (hash recomputed) gives exit 2 and one line naming the op and the field; nothing ran."""
    mutate, message = MUTATIONS[name]
    plan = small_plan()
    broken = copy.deepcopy(plan)
    mutate(broken)
    broken.save(tmp_path)  # save() does not validate: a consistent hash over inconsistent content
    for command in (["compare", "--plan", str(tmp_path), "--samples", "1"], ["report", "--plan", str(tmp_path)]):
        assert main(command) == 2
        out, err = capsys.readouterr()
        assert err.count("\n") == 1 and message in err and "Traceback" not in err, err
        assert "bit-exact" not in out
    with pytest.raises(PlanError):
        QuantPlan.load(tmp_path)


def test_a_consistent_plan_loads_and_the_check_catches_a_broken_validator(tmp_path, monkeypatch):
    """The unmutated plan round-trips; with the validator switched off, the mutations reach the engines (so the
    test above really depends on it)."""
    plan = small_plan()
    plan.save(tmp_path / "ok")
    assert QuantPlan.load(tmp_path / "ok").hash == plan.hash
    import qverify.plancheck

    monkeypatch.setattr(qverify.plancheck, "validate", lambda plan: None)
    broken = copy.deepcopy(plan)
    MUTATIONS["stride 0"][0](broken)
    broken.save(tmp_path / "bad")
    assert QuantPlan.load(tmp_path / "bad").op("c1").stride == (0, 1)  # no longer refused


# Every field of a plan and of each op, set to values no plan may hold (the type wrong, the range wrong, the
# length wrong), one at a time, the hash recomputed: each must be one line and exit 2 before any engine runs.
BAD_VALUES = {
    "str": [5, None, ""],
    "int": ["x", None, 1.5, True, -(10**9), 10**9],
    "pair": [(1,), (1, 2, 3), "ab", None, (-1, 1)],
    "shape": [(1, 1), (0, 1, 1), ("a", 1, 1), None],
    "range": [(1.0,), ("a", "b"), (float("nan"), 1.0), (2.0, 1.0), None],
}
OP_FIELDS = {
    "name": "str",
    "kind": "str",
    "in_shape": "shape",
    "out_shape": "shape",
    "kernel": "pair",
    "stride": "pair",
    "pad": "pair",
    "in_frac": "int",
    "out_frac": "int",
    "range": "range",
    "w_frac": "int",
    "b_frac": "int",
    "bias_lshift": "int",
    "out_rshift": "int",
    "function": "str",
}
PLAN_FIELDS = {
    "bits": "int",
    "rounding": "str",
    "rule": "str",
    "input_shape": "shape",
    "input_frac": "int",
    "input_range": "range",
    "cmsis": "str",
}
FIELD_CASES = [
    pytest.param("op", op, f, v, id=f"{op}.{f}={v!r}")
    for op in ("c1", "fc")
    for f, kind in OP_FIELDS.items()
    for v in BAD_VALUES[kind]
]
FIELD_CASES += [
    pytest.param("plan", None, f, v, id=f"plan.{f}={v!r}") for f, kind in PLAN_FIELDS.items() for v in BAD_VALUES[kind]
]


def _compare(plan, tmp_path) -> list[str]:
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(1).uniform(-1, 1, (2, *plan.input_shape)).astype(np.float32))
    return ["compare", "--plan", str(tmp_path / "plan"), "--data", str(data), "--samples", "1"]


def test_the_unmutated_plan_compares(tmp_path, capsys):
    """The control of the field mutations below: the plan and data as they are pass."""
    plan = small_plan()
    plan.save(tmp_path / "plan")
    assert main(_compare(plan, tmp_path)) == 0, capsys.readouterr()


@pytest.mark.parametrize("where, op, field, value", FIELD_CASES)
def test_every_field_mutated_is_one_line_and_exit_2(where, op, field, value, tmp_path, capsys):
    plan = small_plan()
    broken = copy.deepcopy(plan)
    setattr(broken.op(op) if where == "op" else broken, field, value)
    try:
        broken.save(tmp_path / "plan")  # save() does not validate: a consistent hash over inconsistent content
    except (TypeError, ValueError):
        pytest.skip("not representable in plan.json")
    assert main(_compare(plan, tmp_path)) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "Traceback" not in err and err.startswith("qverify compare: error: "), err
    assert "data" not in err.split(": error: ")[1][:12], err  # the plan is refused, not the data
