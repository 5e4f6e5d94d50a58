"""Every operator in the table (packs/operators.py), through every backend.

For each operator a small pack is written from the table entry alone (its name,
shape and operand), compiled, and run on values below, at and above its operand
and with the fact absent, by durable_rules, by Polars and by the three-valued
reference logic; each must agree with the table's own meaning (`Operator.holds`).
A new operator of an existing shape is covered here without touching this file.
"""
from __future__ import annotations

import pytest
import yaml

from slarules.packs.compiler import compile_packs
from slarules.packs.model import Compare, read_pack
from slarules.packs.operators import OPERATORS
from slarules.packs.vocabulary import ISSUE_VALUES
from slarules.runtime import evaluate
from slarules.runtime.durable_backend import DurableBackend
from slarules.runtime.polars_backend import PolarsBackend
from slarules.runtime.values import flag_key, key

INT, OTHER, BOOL, LIST = "complaint.rings", "complaint.delay_minutes", "outcome.lost", "complaint.issues"
ISSUE = ISSUE_VALUES[0]


def examples(op):
    """(condition as written, fact tested, right fact or None, expected(left, right) -> bool|None, probes)."""
    ints = [None, 1, 2, 3, 4]
    if op.shape == "compare" and op.operand == "value":
        yield ({"fact": INT, op.name: 3}, lambda l, r: op.holds(l, 3), [(v, None) for v in ints])
        yield ({"fact": INT, op.name: {"fact": OTHER}},
               lambda l, r: None if l is not None and r is None else op.holds(l, r),
               [(a, b) for a in ints for b in (None, 2, 3)])
    elif op.shape == "compare" and op.operand == "bool_or_text":
        for want in (True, False):
            yield ({"fact": BOOL, op.name: want}, lambda l, r, w=want: op.holds(l, w), [(None, None), (True, None),
                                                                                       (False, None)])
    elif op.shape == "in":
        yield ({"fact": INT, op.name: [1, 3]}, lambda l, r: op.holds(l, [1, 3]), [(v, None) for v in ints])
    elif op.shape == "contains":
        yield ({"fact": LIST, op.name: ISSUE}, lambda l, r: op.holds(l, ISSUE),
               [(None, None), ([], None), ([ISSUE], None), ([ISSUE_VALUES[1]], None)])
    elif op.shape == "exists":
        for want in (True, False):
            yield ({"fact": BOOL, op.name: want}, lambda l, r, w=want: op.holds(l, w),
                   [(None, None), (True, None), (False, None)])
    else:   # pragma: no cover - a new shape needs examples here and code in every backend
        raise AssertionError(f"no examples for the `{op.shape}` shape of `{op.name}`")


def program(tmp_path, condition):
    pack = {"pack": "ops", "version": "1", "rules": [
        {"id": "ops.when", "clause": "X-1", "when": [condition], "then": {"kind": "breach", "party": "none"},
         "message": {"zh": "x", "en": "x"}}]}
    path = tmp_path / "ops.yaml"
    path.write_text(yaml.safe_dump(pack, allow_unicode=True))
    loaded, issues = read_pack(path)
    assert loaded is not None, issues
    return compile_packs([loaded], None)


def document(condition, left, right) -> dict:
    fact = condition["fact"]
    doc: dict = {}
    if left is not None:
        if isinstance(left, list):
            doc[key(fact)] = True
            doc.update({flag_key(fact, v): v in left for v in ISSUE_VALUES})
        else:
            doc[key(fact)] = left
    if right is not None:
        doc[key(OTHER)] = right
    return doc


@pytest.mark.parametrize("name", list(OPERATORS))
def test_every_backend_gives_each_operator_its_table_meaning(tmp_path, name):
    op = OPERATORS[name]
    for condition, expected, probes in examples(op):
        prog = program(tmp_path, condition)
        rule = prog.rule("ops.when")
        durable, bulk = DurableBackend(prog), PolarsBackend(prog)
        docs = [document(condition, left, right) for left, right in probes]
        by_polars = bulk.run_many(docs)
        for (left, right), doc, polars_run in zip(probes, docs, by_polars):
            want = expected(left, right)
            where = f"{condition} on {left!r}/{right!r}"
            assert evaluate.value(rule.when, doc) is want, where
            assert evaluate.compile_tree(rule.when)(doc) is want, where
            assert ("ops.when" in durable.run(doc).fired) is (want is True), where
            assert ("ops.when" in polars_run.fired) is (want is True), where
            assert ("ops.when" in polars_run.undecided) is (want is None), where


def test_the_table_and_the_pack_model_name_the_same_operators():
    fields = {f.alias or n for n, f in Compare.model_fields.items()} - {"fact", "label"}
    assert fields == set(OPERATORS)
    for op in OPERATORS.values():
        assert Compare.model_fields[op.field].alias in (None, op.name)
        assert (op.compare is None) == (op.shape == "exists")
        if op.shape == "compare":
            assert op.durable is not None and op.polars and op.ascii and op.symbol, op.name


def test_an_absent_fact_is_unknown_except_for_is_and_exists():
    """README: `is` treats an absent fact as false; every other operator treats it as unknown."""
    assert {n: op.when_absent(3) for n, op in OPERATORS.items() if op.shape != "exists"} == {
        n: (False if n == "is" else None) for n, op in OPERATORS.items() if op.shape != "exists"}
    assert OPERATORS["exists"].when_absent(True) is False and OPERATORS["exists"].when_absent(False) is True
    assert [n for n, op in OPERATORS.items() if op.ordered] == ["lt", "le", "gt", "ge"]
