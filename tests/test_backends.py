"""The bulk (Polars) backend against the reference (durable_rules), verdict for verdict.

Hypothesis draws chunks of cases around the thresholds that matter (strategies.py)
and breaks some of them; both backends, and the single-case API, must give
byte-identical verdicts and identical rejections (type, message, field).
"""
from __future__ import annotations

import copy
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slarules import Engine
from slarules.errors import SlaRulesError
from slarules.runtime.polars_backend import PolarsBackend

from conftest import BASE, complaint
from strategies import cases, dated_cases

AS_OF = "2026-05-20T00:00:00+08:00"
DIFF = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.data_too_large])

# ways a row can break the contract, each at a different depth of the model
BREAKS = [
    lambda c: c.update(waybill=""),
    lambda c: c.update(product="express"),
    lambda c: c.update(colour="red"),
    lambda c: c.setdefault("parcel", {}).update(length_cm=-3),
    lambda c: c.setdefault("parcel", {}).update(weight_kg="heavy"),
    lambda c: c["scans"].append({"type": "arrival", "station": "D-1", "at": "yesterday"}),
    lambda c: c.update(timezone="Mars/Olympus"),
    lambda c: c.setdefault("collection", {}).update(charged_cny="12.345"),
    lambda c: c.update(scans="none"),
    lambda c: c.update(complaint={"issues": ["bad_weather"]}),
]


@st.composite
def rows(draw):
    """A valid case, or (one time in four) the same case broken in one of BREAKS' ways."""
    case = draw(cases())
    if draw(st.integers(0, 3)) == 0:
        draw(st.sampled_from(BREAKS))(case)
    return case


def outcome(result) -> str:
    _, got = result
    if isinstance(got, SlaRulesError):
        return json.dumps([type(got).__name__, got.message, got.field])
    return got.to_json(indent=None)


def single(engine: Engine, case: dict) -> str:
    try:
        return engine.adjudicate(copy.deepcopy(case), as_of=AS_OF).to_json(indent=None)
    except SlaRulesError as exc:
        return json.dumps([type(exc).__name__, exc.message, exc.field])


@DIFF
@given(st.lists(rows(), min_size=1, max_size=12))
def test_backends_agree_on_generated_chunks(engine, chunk):
    agree(engine, chunk)


def agree(engine: Engine, chunk: list[dict]) -> None:
    """The bulk backend, the reference backend and the single-case API give the same verdicts."""
    bulk = [outcome(r) for r in engine.adjudicate_many(copy.deepcopy(chunk), as_of=AS_OF, backend="polars")]
    reference = [outcome(r) for r in engine.adjudicate_many(copy.deepcopy(chunk), as_of=AS_OF, backend="durable")]
    assert bulk == reference
    assert bulk == [single(engine, c) for c in chunk]


@DIFF
@given(st.lists(rows(), min_size=1, max_size=12))
def test_backends_agree_with_a_layer_over_the_packs(layered_engine, chunk):
    """A layer changes parameters and adds a rule before compiling: still one Program for every backend."""
    agree(layered_engine, chunk)


@DIFF
@given(st.lists(cases(), min_size=2, max_size=10), st.randoms(use_true_random=False))
def test_a_verdict_does_not_depend_on_its_neighbours(engine, chunk, rnd):
    """Vectorised evaluation must not leak between rows: shuffling the chunk permutes the verdicts."""
    order = list(range(len(chunk)))
    rnd.shuffle(order)
    first = [outcome(r) for r in engine.adjudicate_many(copy.deepcopy(chunk), as_of=AS_OF)]
    shuffled = [outcome(r) for r in engine.adjudicate_many([copy.deepcopy(chunk[i]) for i in order], as_of=AS_OF)]
    assert shuffled == [first[i] for i in order]


def test_chaining_across_strata_in_bulk(engine):
    """Level rules read classifications; CS deadlines read the level: all three strata in one chunk."""
    late = copy.deepcopy(BASE)
    late["complaint"] = complaint(issues=["lost"], first_contact_at="2026-05-03T08:30:00+08:00")
    major = copy.deepcopy(BASE)
    major["complaint"] = complaint(major=True, issues=["insult"], first_contact_at="2026-05-03T08:06:00+08:00")
    plain = copy.deepcopy(BASE)
    results = engine.adjudicate_many([late, major, plain], as_of=AS_OF)
    levels = [v.complaint_level for _, v in results]
    assert levels == [engine.adjudicate(c, as_of=AS_OF).complaint_level for c in (late, major, plain)]
    assert levels[1] == 3 and levels[2] is None
    runs = engine.bulk.run_many([f.doc for f, _ in results])
    assert [sorted(r.fired) for r in runs] == [sorted(engine.backend.run(f.doc).fired) for f, _ in results]


def test_an_absent_fact_never_fires_a_comparison(engine):
    """Polars nulls must behave as durable's guarded operands: unknown, not false, not true."""
    case = copy.deepcopy(BASE)
    del case["scans"]
    (facts, verdict), = engine.adjudicate_many([case], as_of=AS_OF)
    assert "signed_at" not in facts.doc
    assert verdict.findings == engine.adjudicate(case, as_of=AS_OF).findings
    assert "reference_arrival" in " ".join(verdict.missing) or verdict.missing


def test_empty_chunk_and_backend_reuse(engine):
    backend = PolarsBackend(engine.program)
    assert backend.run_many([]) == []
    doc = engine.facts(copy.deepcopy(BASE), as_of=AS_OF).doc
    assert backend.run(doc).fired == backend.run_many([doc, doc])[1].fired


def test_unknown_backend_is_a_clear_error(engine):
    try:
        engine.adjudicate_many([BASE], backend="spark-ish")
    except SlaRulesError as exc:
        assert exc.field == "backend" and "polars" in exc.hint
    else:
        raise AssertionError("expected an error")


# ---- every operator, on random trees: Polars three-valued result == evaluate.value ---------

from slarules.runtime import evaluate
from slarules.packs.compiler import Leaf, Node  # noqa: E402
from slarules.runtime.values import flag_key  # noqa: E402
from slarules.runtime.polars_backend import expr  # noqa: E402

import polars as pl  # noqa: E402

SCHEMA = {"a": pl.Int64, "b": pl.Int64, "t": pl.String, "f": pl.Boolean, "l": pl.Boolean,
          flag_key("l", "delay"): pl.Boolean}
small = st.integers(-2, 2)
leaves = st.one_of(
    st.builds(lambda op, v: Leaf(op, "a", v), st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge"]), small),
    st.builds(lambda op: Leaf(op, "a", right="b"), st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge"])),
    st.builds(lambda v: Leaf("is", "f", v), st.booleans()),
    st.builds(lambda v: Leaf("exists", "a", v), st.booleans()),
    st.builds(lambda v: Leaf("eq", "t", v), st.sampled_from(["x", "y"])),
    st.just(Leaf("contains", "l", "delay")),
)
trees = st.recursive(leaves, lambda kids: st.builds(lambda op, cs: Node(op, tuple(cs)), st.sampled_from(["all", "any"]),
                                                     st.lists(kids, max_size=3)), max_leaves=8)


@st.composite
def docs(draw):
    doc = {}
    for k, s in (("a", small), ("b", small), ("t", st.sampled_from(["x", "y"])), ("f", st.booleans())):
        if draw(st.booleans()):
            doc[k] = draw(s)
    if draw(st.booleans()):
        doc["l"] = True
        doc[flag_key("l", "delay")] = draw(st.booleans())
    return doc


@settings(max_examples=150, deadline=None)
@given(trees, st.lists(docs(), min_size=1, max_size=8))
def test_polars_expressions_are_three_valued_like_the_reference(tree, rows):
    frame = pl.DataFrame({k: [d.get(k) for d in rows] for k in SCHEMA}, schema=SCHEMA)
    got = frame.select(expr(tree, SCHEMA).alias("x"))["x"].to_list()
    assert got == [evaluate.value(tree, d) for d in rows]
    compiled = evaluate.compile_tree(tree)
    assert [compiled(d) for d in rows] == got


@DIFF
@given(st.lists(dated_cases(), min_size=1, max_size=12))
def test_backends_choose_the_same_pack_version_per_row(dated_engine, chunk):
    """Version selection at the boundaries (strategies.dated_cases): per row as per case, errors included."""
    bulk = [outcome(r) for r in dated_engine.adjudicate_many(copy.deepcopy(chunk), as_of=AS_OF, backend="polars")]
    reference = [outcome(r) for r in dated_engine.adjudicate_many(copy.deepcopy(chunk), as_of=AS_OF,
                                                                   backend="durable")]
    assert bulk == reference
    assert bulk == [single(dated_engine, c) for c in chunk]
