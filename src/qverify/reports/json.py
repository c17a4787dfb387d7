"""Eval results and footprints as JSON (infinite SQNR / headroom are written as the strings "inf")."""

from __future__ import annotations

import json
import math

from qverify.evaluate import EvalResult
from qverify.footprint import Footprint


def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def eval_json(result: EvalResult) -> bytes:
    """The whole EvalResult (without the per-sample arrays and the dump) as indented JSON."""
    return json.dumps(_clean(result.to_dict()), indent=1).encode()


def footprint_json(fp: Footprint, plan_hash: str | None = None) -> bytes:
    d = fp.to_dict()
    if plan_hash:
        d = {"plan_hash": plan_hash, **d}
    return json.dumps(_clean(d), indent=1).encode()
