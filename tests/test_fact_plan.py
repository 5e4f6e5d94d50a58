"""The FactPlan's generated code gives what its table-driven loops give (values, roots, doc, order)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from slarules import Engine
from slarules.case.fast import case_of
from slarules.engine import parse_instant
from slarules.runtime.values import WARM_UP, FactPlan

ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2026-05-20T00:00:00+08:00"


def _cases(n: int) -> list[dict]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from generate import write
    import os
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "c.jsonl")
        write(path, n, 11, bad_rate=0.0)
        return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_compiled_plan_equals_the_loops():
    engine = Engine.default()
    loops, compiled = FactPlan(engine.program), FactPlan(engine.program)
    loops._cases = WARM_UP        # never tiers up: the table-driven loops throughout
    compiled.compile()
    checked = 0
    for raw in _cases(3000):
        try:
            case = case_of(raw, limits=engine.limits)
        except Exception:
            continue
        at = parse_instant(AS_OF, case)
        fa, fb = loops.facts(case, at), compiled.facts(case, at)
        assert list(fa.values.items()) == list(fb.values.items())
        assert list(fa.roots.items()) == list(fb.roots.items())
        assert list(fa.doc.items()) == list(fb.doc.items())
        checked += 1
    assert checked > 2500
    assert loops._compiled is None and compiled._compiled.__name__ == "facts"


def test_compiled_plan_refuses_a_case_without_a_dated_packs_instant_as_the_loops_do():
    """A dated pack chooses its version by an instant (the collection's): the generated code checks
    it where the loops do, after the derivations, with the same located error."""
    from conftest import DATED
    from slarules import CaseError
    import pytest

    engine = Engine.load([ROOT / "rules", DATED])
    loops, compiled = FactPlan(engine.program), FactPlan(engine.program)
    loops._cases = WARM_UP
    compiled.compile()
    raw = _cases(1)[0]
    raw["scans"] = []
    case = case_of(raw, limits=engine.limits)
    at = parse_instant(AS_OF, case)
    errors = []
    for plan in (loops, compiled):
        with pytest.raises(CaseError) as caught:
            plan.facts(case, at)
        errors.append(caught.value.to_dict() if hasattr(caught.value, "to_dict") else str(caught.value))
    assert errors[0] == errors[1] and "no scans" in str(errors[0])
