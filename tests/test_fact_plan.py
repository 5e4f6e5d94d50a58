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
