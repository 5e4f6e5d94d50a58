"""The FactPlan's generated code gives what its table-driven loops give (values, roots, doc, order)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from slarules import Engine
from slarules.case.fast import case_of
from slarules.engine import parse_instant
from slarules.runtime.values import WARM_UP, FactPlan, key

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


def test_compiled_plan_and_loops_agree_on_a_case_without_a_dated_packs_instant(dated_engine):
    """A dated pack chooses its version by an instant (the collection's); without it the case is not
    covered by that pack (a not_covered rule reads the absent instant), so both plans just give the facts."""
    engine = dated_engine
    loops, compiled = FactPlan(engine.program), FactPlan(engine.program)
    loops._cases = WARM_UP
    compiled.compile()
    raw = _cases(1)[0]
    raw["scans"] = []
    case = case_of(raw, limits=engine.limits)
    at = parse_instant(AS_OF, case)
    docs = [plan.facts(case, at).doc for plan in (loops, compiled)]
    assert docs[0] == docs[1] and key("collected_at") not in docs[0]


def test_every_function_takes_its_arguments_in_the_order_it_names_them():
    """The generated facts call each function by position (`compute(zone, *args)`), in `args` order."""
    import inspect

    from slarules.packs.vocabulary import FUNCTIONS
    for f in FUNCTIONS.values():
        params = list(inspect.signature(f.compute).parameters.values())
        assert [p.name for p in params[1:]] == list(f.args), f.name
        assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params), f.name
