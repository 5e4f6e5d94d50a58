"""The FactPlan's generated code gives what its table-driven loops give (values, roots, doc, order)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from slarules import Engine
from slarules.errors import SlaRulesError
from slarules.case.fast import case_of
from slarules.engine import parse_instant
from slarules.runtime.values import WARM_UP, FactPlan, fact_plan, key

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


def test_each_projection_holds_the_doc_keys_it_names_under_its_own_names():
    """FactPlan.project: the generated code writes each named doc key into its projection as it writes
    the doc, so a projection is the doc's present keys it names, renamed; absent keys stay absent."""
    engine = Engine.default()
    plan = FactPlan(engine.program)
    keys = sorted(plan.doc_keys)
    projections = ({k: f"p{i}" for i, k in enumerate(keys[::2])}, {k: f"q{i}" for i, k in enumerate(keys[::3])}, {})
    plan.project(projections)
    plan.compile()
    for raw in _cases(2000):
        try:
            case = case_of(raw, limits=engine.limits)
        except SlaRulesError:            # the generator's few bad cases
            continue
        facts = plan.facts(case, parse_instant(AS_OF, case))
        asked, dicts = facts.projected
        assert asked is plan.projections and len(dicts) == 3
        for names, made in zip(projections, dicts):
            # values and their types (True is not 1 in a fact's JSON)
            expected = {name: facts.doc[k] for k, name in names.items() if k in facts.doc}
            assert [(k, type(v), v) for k, v in sorted(made.items())] == \
                [(k, type(v), v) for k, v in sorted(expected.items())]


def test_durable_rules_gets_the_same_facts_made_by_the_plan_or_from_the_doc():
    """The durable backend's strata facts come from the plan's projections once it is compiled, else from
    the doc: the same facts, the same run, and the case's own projections are left as they were."""
    engine = Engine.default()
    backend = engine.backend
    plan = engine.program._fact_plan
    assert plan.projections and all(isinstance(p, dict) for p in plan.projections)
    plan.compile()
    ran = 0
    for raw in _cases(1500):
        try:
            facts = engine.facts(raw, AS_OF)
        except SlaRulesError:            # the generator's few bad cases
            continue
        assert facts.projected is not None and facts.projected[0] is backend._projections
        kept = [dict(p) for p in facts.projected[1]]
        a, b = backend.run(facts.doc), backend.run_facts(facts)
        assert [p == k and list(p) == list(k) for p, k in zip(facts.projected[1], kept)] == [True] * len(kept)
        assert (a.fired, a.classifications, a.level, a.in_scope) == (b.fired, b.classifications, b.level, b.in_scope)
        strip = lambda fact: {k: v for k, v in fact.items() if k != "id"}  # ids count per run
        assert [strip(f) for f in a.asserted] == [strip(f) for f in b.asserted]
        ran += 1
    assert ran > 1000
    # Engine.run hands the durable backend the facts whole, and it runs the strata's facts the plan made
    calls = []
    original = type(backend).run
    try:
        type(backend).run = lambda self, doc, projected=None: calls.append(projected) or original(self, doc, projected)
        facts, _ = engine.run(_cases(1)[0], AS_OF)
    finally:
        type(backend).run = original
    assert len(calls) == 1 and calls[0] is facts.projected[1]


def test_facts_made_before_durable_rules_asked_for_its_projections_are_run_from_their_doc():
    """Facts made by code generated before the durable backend asked the plan for its projections carry
    none of its own: the backend takes its facts from the doc (the same run as facts made after)."""
    from slarules.runtime.durable_backend import DurableBackend
    engine = Engine.default()
    program = engine.program
    shared = fact_plan(program)
    try:
        plan = program._fact_plan = FactPlan(program)          # a fresh plan, compiled with no projections
        plan.compile()
        raw = _cases(1)[0]
        early = engine.facts(raw, AS_OF)
        assert early.projected == ((), ())
        backend = DurableBackend(program)                     # asks the plan for its projections: recompiled
        late = engine.facts(raw, AS_OF)
        assert late.projected[0] is backend._projections
    finally:
        program._fact_plan = shared                           # the engine's own plan, for the tests after
    a, b = backend.run_facts(early), backend.run_facts(late)
    assert (a.fired, a.in_scope, a.classifications, a.level) == (b.fired, b.in_scope, b.classifications, b.level)


def test_projections_asked_for_while_the_plan_compiles_are_not_lost():
    """project() from another thread while compile() writes the code (a backend built as the WARM_UP-th
    case compiles) waits for it, then has the code written again for its projections: never code made
    half for the old projections and half for the new, nor the new ones dropped."""
    import threading

    engine = Engine.default()
    plan = FactPlan(engine.program)
    wanted = ({k: f"p{i}" for i, k in enumerate(sorted(plan.doc_keys))},)
    asked: list = []
    writing = plan._encode_lines

    def encode_lines(*args):
        out = writing(*args)                      # the lines for the projections read before
        other = threading.Thread(target=lambda: asked.append(plan.project(wanted)))
        other.start()
        other.join(0.05)                          # it waits on the compile
        assert other.is_alive() and not asked
        plan.__dict__.pop("_encode_lines")
        encode_lines.other = other                # type: ignore[attr-defined]
        return out
    plan._encode_lines = encode_lines             # type: ignore[method-assign]
    plan.compile()
    encode_lines.other.join(5)                    # type: ignore[attr-defined]
    assert asked == [wanted] and asked[0] is plan.projections
    case = case_of(_cases(1)[0], limits=engine.limits)
    made, dicts = plan.facts(case, parse_instant(AS_OF, case)).projected
    assert made is wanted and len(dicts) == 1 and dicts[0]



def test_threads_asking_for_a_programs_plan_at_once_get_the_one_plan(monkeypatch):
    """fact_plan makes one FactPlan per Program even when threads ask at once (a threaded server's first
    cases), so the projections the durable backend asked for are those every case's facts get: with two
    plans, the backend's could be left on one no case used any more."""
    import threading
    import time

    from slarules.engine import default_pack_dirs
    program = Engine.load(default_pack_dirs()).program
    program.__dict__.pop("_fact_plan", None)
    making = FactPlan.__init__

    def slow_init(self, *args):
        time.sleep(0.02)                           # every thread asks while the first plan is being made
        making(self, *args)
    monkeypatch.setattr(FactPlan, "__init__", slow_init)
    start = threading.Barrier(8)
    plans: list = []

    def ask() -> None:
        start.wait()
        plans.append(fact_plan(program))
    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(plans) == 8 and all(p is plans[0] for p in plans) and program._fact_plan is plans[0]
