"""Each trap of DURABLE_RULES.md, held by the backend that drives durable_rules' C engine directly.

The backend (slarules/durable_backend.py) runs no Python action inside durable_rules
and no Host; these tests pin what it must keep doing instead.
"""
from __future__ import annotations

import copy
import json
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slarules import Engine, load_case
from slarules.runtime import evaluate
from slarules.runtime import durable_backend as db
from slarules.runtime import durable_ruleset as dr
from slarules.packs.program import DURABLE_MAX_PROPERTIES
from slarules.errors import EngineError, PackError
from slarules.verdict.layout import _indented

from conftest import BASE, EXAMPLES, complaint

AS_OF = "2026-05-20T00:00:00+08:00"


def examples(engine):
    return [engine.facts(load_case(str(p))) for p in sorted(EXAMPLES.glob("*.yaml"))]


def stored_facts(backend) -> list:
    return json.loads(db._c.get_facts(backend._handle, db._SID))


def test_facts_not_events_every_finding_survives(engine):
    """post() would hand a case to one rule; asserted facts fire every rule that matches."""
    facts = engine.facts(load_case(str(EXAMPLES / "rg4-level2.yaml")))
    run = engine.backend.run(facts.doc)
    assert {"cs.level-2", "cs.level-2.contact"} <= set(run.fired)


def test_an_or_that_holds_twice_fires_once(engine):
    """OV-1 is an `any` of thresholds; a parcel over all of them gives one firing, all branches."""
    case = copy.deepcopy(BASE)
    case["parcel"] = {"length_cm": 400, "width_cm": 300, "height_cm": 300, "weight_kg": "900"}
    facts = engine.facts(case, as_of=AS_OF)
    run = engine.backend.run(facts.doc)
    assert run.fired.count("oversize.three-oversize") == 1
    finding, = [f for f in engine.adjudicate(case, as_of=AS_OF).findings if f.rule == "oversize.three-oversize"]
    assert len(finding.facts["branches"]) >= 2


def test_an_absent_operand_never_matches(engine):
    """durable_rules matched a comparison with an absent field; every operand is guarded with `$ex`."""
    case = copy.deepcopy(BASE)
    del case["scans"]
    run = engine.backend.run(engine.facts(case, as_of=AS_OF).doc)
    assert "taobao.delivery-window.late" not in run.fired


def test_one_slot_sid_and_nothing_left_behind(engine):
    """No sid per case (1,024 limit, 32-bit hash collisions), no delete_state: one slot, facts retracted."""
    backend = db.DurableBackend(engine.program)
    for facts in examples(engine) * 3:
        backend.run(facts.doc)
        assert stored_facts(backend) == []
    assert json.loads(db._c.get_state(backend._handle, db._SID))["sid"] == db._SID


def test_a_failing_action_is_an_engine_error_and_the_next_case_is_clean(engine, monkeypatch):
    """An exception in an action was stored silently in durable's state; here it is raised, once."""
    backend = db.DurableBackend(engine.program)
    facts = examples(engine)
    expected = [sorted(backend.run(f.doc).fired) for f in facts]
    first = backend._handle

    def broken(*_):
        raise ZeroDivisionError("closer")
    monkeypatch.setattr(backend, "_close", broken)
    with pytest.raises(EngineError, match="ZeroDivisionError"):
        backend.run(facts[0].doc)
    monkeypatch.undo()
    assert backend._handle != first            # a fresh ruleset, nothing stale in it
    assert [sorted(backend.run(f.doc).fired) for f in facts] == expected


@pytest.mark.parametrize("call, code", [("assert_fact", 1), ("assert_fact", 2), ("retract_fact", 1)])
def test_not_handled_or_observed_is_an_engine_error(engine, monkeypatch, call, code):
    """MessageNotHandled (1) and MessageObserved (2) come back as result codes: never ignored."""
    backend = db.DurableBackend(engine.program)
    doc = examples(engine)[0].doc
    c = db._c
    real = getattr(c, call)

    class Fake:
        def __getattr__(self, name):
            if name == call:
                return lambda handle, text: (code, real(handle, text)[1])
            return getattr(c, name)
    monkeypatch.setattr(db, "_c", Fake())
    with pytest.raises(EngineError, match=f"answered {code}"):
        backend.run(doc)
    monkeypatch.undo()
    assert backend.run(doc).fired == engine.backend.run(doc).fired


def test_strata_chain_inside_durable_rules(engine):
    """A closer asserts the next stratum's fact while its action is open: level rules fire on it."""
    facts = engine.facts(load_case(str(EXAMPLES / "rg5-level3.yaml")))
    run = engine.backend.run(facts.doc)
    assert run.strata_closed == engine.program.strata and len(run.asserted) == engine.program.strata
    assert run.level == 3 and "cs.level-3.close" in run.fired or "cs.level-3.contact" in run.fired
    assert run.asserted[-1][engine.backend._short[db.key("complaint_level")]] == 3


def test_facts_stay_small_and_rulesets_past_the_limits_are_refused(engine, monkeypatch):
    """At most 255 properties per fact (only tested fields are sent); a Program past durable_rules' limits
    (tests/test_durable_capacity.py) is refused when built too, not only when compiled."""
    backend = engine.backend
    assert all(len(f) + dr.FACT_OVERHEAD < DURABLE_MAX_PROPERTIES for f in backend._fields)
    assert len(backend._fields[-1]) < len(backend._fields[0])     # the last stratum tests few fields
    monkeypatch.setattr(dr, "DURABLE_MAX_RULES", 10)
    with pytest.raises(PackError, match="durable_rules holds at most 10") as err:
        db.DurableBackend(engine.program)
    assert err.value.file and err.value.field == "rules"       # located: check and the CLI say where


def test_no_background_threads_and_the_definition_is_reusable(engine):
    """The Host started dispatch threads and mutated the definition; no Host is used at all."""
    before = threading.active_count()
    a, b = db.DurableBackend(engine.program), db.DurableBackend(engine.program)
    assert threading.active_count() == before
    assert a._definition_text == b._definition_text
    for facts in examples(engine):
        assert a.run(facts.doc).fired == b.run(facts.doc).fired


def test_durable_decides_scope_as_three_valued_logic_would(engine):
    """The verdict takes deadlines' and missing facts' scope from durable_rules, not from Python: the
    scope of each deadline rule, and of each other rule while a field could leave it undecided."""
    cases = [copy.deepcopy(BASE)] + [load_case(str(p)) for p in sorted(EXAMPLES.glob("*.yaml"))]
    nocase = copy.deepcopy(BASE)
    nocase["complaint"] = complaint(issues=["lost"])
    for case in cases + [nocase]:
        facts = engine.facts(case, as_of=AS_OF)
        run = engine.backend.run(facts.doc)
        doc = engine.builder.final_doc(facts, run)
        always = {r.id for r in engine.program.rules if db.expression(r.scope) is None}
        # a deadline rule whose scope holds; another only while a field that could leave it unknown is absent
        assert run.in_scope == {r.id for r in engine.program.rules if evaluate.value(r.scope, doc) is True and (
            r.deadline is not None or r.id in always or not doc.keys() >= set(evaluate.unknowable_keys(r.when)))}


def test_undecided_rules_are_found_without_evaluating_decided_ones(engine):
    """`missing` evaluates three-valued logic only for unfired, in-scope rules lacking a field."""
    facts = engine.facts(load_case(str(EXAMPLES / "tb1-missing-arrival.yaml")))
    run = engine.backend.run(facts.doc)
    doc = engine.builder.final_doc(facts, run)
    slow = sorted({root for r in engine.program.rules if r.id not in run.fired
                   and evaluate.value(r.when, doc) is None and evaluate.value(r.scope, doc) is True
                   for p in evaluate.unknown_facts(r.when, doc) for root in facts.missing_roots(p)})
    assert engine.builder.missing(facts, doc, set(run.fired), run) == slow and slow


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4), max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_verdict_json_renderer_is_json_dumps_byte_for_byte(value):
    assert _indented(value, "\n") == json.dumps(value, ensure_ascii=False, indent=2)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_the_compact_verdict_json_is_json_dumps_byte_for_byte(value):
    from slarules.verdict.layout import compact
    assert compact(_indented(value, "\n")) == json.dumps(value, ensure_ascii=False)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(), json_values, max_size=4), st.lists(json_values, max_size=4), st.integers(0, 4),
       st.lists(json_values, max_size=2))
def test_the_compact_verdict_json_cuts_out_a_packs_list_at_depth_one_alike(members, packs, at, deeper):
    """compact() remembers a top-level "packs" list's text (layout.py): the same bytes as json.dumps, with
    the list anywhere among the members, empty or not, "packs" keys deeper down, and the list seen twice."""
    from slarules.verdict.layout import compact
    items = [(k, v) for k, v in members.items() if k != "packs"]
    items.insert(min(at, len(items)), ("packs", packs))
    value = dict(items)
    if deeper:
        value["inner"] = {"packs": deeper, "after": [{"packs": deeper}]}
    for _ in range(2):
        assert compact(_indented(value, "\n")) == json.dumps(value, ensure_ascii=False)


def test_verdict_json_falls_back_for_what_it_does_not_render(engine):
    v = engine.adjudicate(copy.deepcopy(BASE), as_of=AS_OF)
    v.fines_cny = {"x": float("inf")}
    assert v.to_json() == json.dumps(v.to_dict(), ensure_ascii=False, indent=2)
    assert v.to_json(indent=None) == json.dumps(v.to_dict(), ensure_ascii=False)


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def test_a_backend_frees_its_ruleset_when_collected(engine):
    """A server builds a backend per pack revision: each ruleset (and its sid's state) is freed with
    its backend, and one that never ran a case is freed without touching its uninitialised state."""
    import gc

    from slarules import Engine
    data = engine.to_bytes()
    Engine.from_bytes(data).backend     # never ran a case: delete_state must not be called on it
    gc.collect()

    def one() -> None:
        Engine.from_bytes(data).adjudicate({"waybill": "W"}, as_of="2026-01-01T00:00:00+08:00")
    for _ in range(3):
        one()
    gc.collect()
    before = _rss_mib()
    for _ in range(20):
        one()
    gc.collect()
    assert _rss_mib() - before < 10, "rulesets left behind (about 1.6 MB each)"


def test_the_short_field_names_are_distinct_to_durable_rules(engine):
    """durable_rules knows a property by its 32-bit FNV-1a hash: the short names never share one,
    nor with `sid` and `id`; and every field a rule tests has one (a bijection)."""
    short = engine.backend._short
    hashes = [dr._fnv1a(n) for n in [*short.values(), "sid", "id"]]
    assert len(set(hashes)) == len(hashes)
    assert dr._fnv1a("a") == 0xE40C292C and dr._fnv1a("foobar") == 0xBF9CF968     # FNV-1a 32 test vectors
    tested = set().union(*map(set, engine.backend._fields)) | {"kind", "stratum"}
    assert tested <= short.keys() and len(set(short.values())) == len(short)


def test_a_comparison_with_an_absent_operand_never_fires(tmp_path):
    """A constant comparison has no `$ex` test before it (durable_rules reaches it only through its field,
    durable_ruleset.leaf_expression); a comparison with another field keeps one on that field. Each shape,
    left or right side absent: nothing fires; each present: what the three-valued evaluator says."""
    weight, closed = "parcel.weight_kg", "complaint.closed_at"
    whens = {f"t.{op}": {"fact": weight, op: 8.5} for op in ("eq", "ne", "lt", "le", "gt", "ge")}
    whens |= {"t.in": {"fact": weight, "in": [1, 8.5]}, "t.contains": {"fact": "complaint.issues", "contains": "delay"},
              "t.left": {"fact": closed, "le": {"fact": "as_of"}}, "t.right": {"fact": "as_of", "ge": {"fact": closed}}}
    rules = [{"id": rid, "clause": "TB-1", "when": [when], "then": {"kind": "warning"},
              "message": {"zh": "测", "en": "t"}} for rid, when in whens.items()]
    path = tmp_path / "absent.yaml"
    path.write_text(json.dumps({"pack": "absent", "version": "1", "rules": rules}, ensure_ascii=False), encoding="utf-8")
    engine = Engine.load([path])
    present = copy.deepcopy(BASE)
    present["complaint"] = {"kind": "complaint", "channel": "phone", "received_at": "2026-05-03T08:00:00+08:00",
                            "closed_at": "2026-05-04T10:00:00+08:00", "issues": ["delay"]}
    absent = copy.deepcopy(BASE)
    del absent["parcel"]["weight_kg"]
    for case, expect_none in ((absent, True), (present, False)):
        facts = engine.facts(case)
        fired = engine.backend.run(facts.doc).fired
        for rule in engine.program.rules:
            value = evaluate.value(rule.condition, facts.doc)
            assert (value is None) == expect_none, (rule.id, value)
            assert (rule.id in fired) == (value is True), rule.id
        assert expect_none or {"t.eq", "t.le", "t.ge", "t.in", "t.contains", "t.left", "t.right"} <= set(fired)
