"""Money is exact or refused, alike on every path: slarules/money.py's bounds, held.

Per case (durable_rules), columnar (Polars) and, in tests/test_spark.py, Spark: at and
around each bound the same verdicts, the same refusals and the same statement, and
the sums are the ones plain integers give (tests/money_bounds.py works them out).
"""
from __future__ import annotations

import decimal
import json
import subprocess
import sys
from decimal import Decimal

import money_bounds as mb
import pytest
from conftest import ROOT, case, complaint
from hypothesis import HealthCheck, example, given, settings, strategies as st
from strategies import cases

from slarules import Engine, PackError, money
from slarules.batch.runner import adjudicate_rows
from slarules.settlement.statement import Statement
from slarules.case import contract
from slarules.errors import CaseError

NOW = "2026-05-20T00:00:00+00:00"
PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(engine, lines: list[bytes], backend: str, lang: str = "en"):
    rows = list(enumerate(lines, start=1))
    return adjudicate_rows(engine, rows, source="cases.jsonl", raw=True, as_of=None, now=NOW, lang=lang,
                           backend=backend)


@PROPERTY
@given(st.lists(mb.charged_and_quoted(), min_size=1, max_size=12))
@example([(mb.EDGES[0], 0)] * 12)            # 12 verdicts at the verdict bound: a station's sums pass 2^63 fen
def test_money_at_its_bounds_is_exact_or_refused_alike_per_case_and_columnar(bounds_engine, pairs):
    lines = [mb.case_line(f"M{n}", c, q) for n, (c, q) in enumerate(pairs)]
    bulk, reference = run(bounds_engine, lines, "polars"), run(bounds_engine, lines, "durable")
    assert bulk.verdicts == reference.verdicts
    assert bulk.errors == reference.errors
    assert bulk.statement.to_dict() == reference.statement.to_dict()
    mb.check(dict(bulk.verdicts), dict(bulk.errors), bulk.statement, pairs)
    # the columnar pass judged every row that has a verdict (a refused row goes per case, which words it)
    assert sorted(bulk.columns["__row"].to_list()) == [n for n, _ in reference.verdicts]


def test_a_chunk_of_refunds_past_2_63_fen_is_exact_on_the_cli(tmp_path, bounds_engine):
    """Issue 21's first reproduction (100,000 TB-5 refunds in one chunk wrapped in Int64), with a dozen
    rows that pass the same limit: stations.csv and the report give the exact totals on both backends."""
    pairs = [(mb.EDGES[0], 0)] * 12
    cases_file = tmp_path / "cases.jsonl"
    cases_file.write_bytes(b"".join(mb.case_line(f"M{n}", c, q) + b"\n" for n, (c, q) in enumerate(pairs)))
    (tmp_path / "packs").mkdir()
    (tmp_path / "packs" / "bounds.yaml").write_text(mb.pack_text(), encoding="utf-8")
    fines, refunds = mb.expected_statement(pairs)[mb.SENDING]
    assert fines > 2**63 and refunds > 2**63
    for backend in ("polars", "durable"):
        out = tmp_path / backend
        done = subprocess.run([sys.executable, "-m", "slarules", "batch", str(cases_file), "-o", str(out / "v.jsonl"),
                               "--statement", str(out / "st"), "--packs", str(tmp_path / "packs"), "--backend", backend,
                               "--chunk-size", "100", "--no-progress"], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        rows = (out / "st" / "stations.csv").read_text().splitlines()
        assert f"{mb.SENDING},{mb.yuan(fines)},{mb.yuan(refunds)}," in "\n".join(rows)
        report = (out / "st" / "report.html").read_text()
        assert f"refunds {Decimal(mb.yuan(refunds + mb.expected_statement(pairs)[mb.DELIVERING][1])):,.2f} CNY" in report
    assert (tmp_path / "polars" / "v.jsonl").read_bytes() == (tmp_path / "durable" / "v.jsonl").read_bytes()
    for name in ("stations.csv", "report.html"):
        assert (tmp_path / "polars" / "st" / name).read_bytes() == (tmp_path / "durable" / "st" / name).read_bytes()


def fines_pack(tmp_path, rules: int, amount: str):
    """Issue 21's second reproduction: a pack of `rules` fines of `amount` each, for every case."""
    body = "".join(f"""  - id: many.fine{i}
    clause: TB-5
    scope: [{{fact: collection, exists: true}}]
    then: {{kind: fine, party: sending_station, fine_cny: {{param: fine}}}}
    message: {{zh: "罚 {{fine_cny}} 元", en: "fined {{fine_cny}}"}}
""" for i in range(rules))
    path = tmp_path / f"many{rules}.yaml"
    path.write_text(f"pack: many\nversion: '1'\nparameters:\n  fine: {{type: money, value: '{amount}'}}\nrules:\n"
                    + body, encoding="utf-8")
    return Engine.load([path])


@pytest.mark.parametrize("rules, fines", [(100, None), (10, "9999999999999999.90"), (11, None)])
def test_many_fines_at_the_amount_bound_give_the_exact_sum_or_one_refusal_everywhere(tmp_path, rules, fines):
    engine = fines_pack(tmp_path, rules, "999999999999999.99")
    lines = [json.dumps(case(waybill=f"F{n}")).encode() for n in range(3)]
    bulk, reference = run(engine, lines, "polars"), run(engine, lines, "durable")
    assert (bulk.verdicts, bulk.errors) == (reference.verdicts, reference.errors)
    assert bulk.statement.to_dict() == reference.statement.to_dict()
    if fines is None:           # past money.VERDICT: a located refusal per row, on every path, never a number
        assert not bulk.verdicts and len(bulk.errors) == 3
        assert {json.loads(e)["field"] for _, e in bulk.errors} == {"fines_cny"}
        with pytest.raises(CaseError) as err:
            engine.adjudicate(case())
        assert err.value.field == "fines_cny" and "too large" in err.value.message
    else:
        assert [json.loads(v)["fines_cny"] for _, v in bulk.verdicts] == [{"S-01": fines}] * 3
        assert engine.adjudicate(case()).fines_cny == {"S-01": fines}
        assert bulk.statement.to_dict()["stations"]["S-01"]["fines"] == mb.yuan(3 * 10 * money.AMOUNT.most)


@pytest.mark.parametrize("value, ok", [("999999999999999.99", True), ("-999999999999999.99", True),
                                       ("1000000000000000", False), ("1000000000000000.00", False),
                                       ("-1000000000000000", False), ("1e16", False)])
def test_a_pack_amount_past_the_bound_is_a_located_pack_error(tmp_path, value, ok):
    path = tmp_path / "p.yaml"
    path.write_text(f"""pack: p
version: '1'
parameters:
  fine: {{type: money, value: '{value}'}}
rules:
  - id: p.big
    clause: TB-5
    when: [{{fact: overcharge_cny, gt: '{value}'}}]
    then: {{kind: fine, party: sending_station, fine_cny: {{param: fine}}}}
    message: {{zh: x, en: x}}
""", encoding="utf-8")
    if ok:
        Engine.load([path])
        return
    with pytest.raises(PackError) as err:
        Engine.load([path])
    issues = {(i.line, i.message) for i in err.value.issues} or {(err.value.line, err.value.message)}
    assert {line for line, _ in issues} == {4, 8}, issues        # the parameter and the literal, each at its line
    assert all("too large" in m and "15 digits" in m for _, m in issues)


def test_a_case_amount_past_its_bound_is_refused_with_its_field(engine):
    with pytest.raises(CaseError) as err:
        engine.adjudicate(case(collection={"charged_cny": "1000000000000.00"}))
    assert err.value.field == "collection.charged_cny"
    c = case(collection={"charged_cny": "999999999999.99", "quoted_cny": "0"},
             complaint=complaint(issues=["overcharge"]))
    assert engine.adjudicate(c).refunds_cny == "999999999999.99"


def test_statement_totals_are_exact_at_any_size():
    """A station's and a run's totals have no bound: past Decimal's default 28 digits, merged in any
    order, through the checkpoint's text and under a caller's narrow decimal context, they stay exact."""
    at_bound = money.from_fen(money.VERDICT.most)
    one = Statement()
    one.count_fine("S", at_bound)
    one.count_findings("S", "TB-5", 1, -at_bound)
    total = Statement()
    with decimal.localcontext(decimal.Context(prec=6)):
        for _ in range(40):                             # 2^40 verdicts at the bound: 34 digits
            total.merge(Statement.from_dict(total.to_dict()))
            total.merge(one)
    n = 2**40 - 1
    assert total.stations["S"]["fines"] == money.from_fen(n * money.VERDICT.most)
    assert total.to_dict()["stations"]["S"]["refunds"] == mb.yuan(-n * money.VERDICT.most)
    assert total.station_rows()[1][0][1] == mb.yuan(n * money.VERDICT.most)


def test_diff_totals_and_deltas_are_exact_at_any_size():
    """`diff`'s per-payer totals (read from verdict lines) and its deltas: exact past 28 digits, whatever
    decimal context the caller set."""
    from slarules.tools import diff
    big = mb.yuan(money.VERDICT.most)
    line = json.dumps({"compensation_cny": {"network": big}}).encode()
    totals = diff.MoneyMap("compensation_cny")
    with decimal.localcontext(decimal.Context(prec=6)):
        for _ in range(3):
            totals.add(line)
        shown = diff._amounts({"x": money.from_fen(10**30 + 1)}, {"x": totals.totals["network"]}, "x")
    assert totals.totals == {"network": money.from_fen(3 * money.VERDICT.most)}
    assert shown == {"base": mb.yuan(10**30 + 1), "head": mb.yuan(3 * money.VERDICT.most),
                     "delta": mb.yuan(3 * money.VERDICT.most - 10**30 - 1)}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_a_callers_decimal_context_changes_no_verdict(engine, c):
    """Money and sizes are computed in money.EXACT: a program that narrowed its decimal context
    (prec=4 rounds 63 × 63 × 63 and 15.50 − 12.00 alike) gets the same verdicts."""
    def judged():
        try:
            return engine.adjudicate(c).to_json()
        except CaseError as exc:
            return str(exc)
    expected = judged()
    with decimal.localcontext(decimal.Context(prec=4, traps=[])):
        assert judged() == expected


def test_the_bounds_are_the_contract_and_the_docs():
    assert contract.MONEY["max_digits"] == money.CASE_FIELD.whole_digits + money.PLACES
    docs = (ROOT / "docs" / "contract.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for bound in money.BOUNDS:
        shown = f"{bound.yuan:,}"
        assert shown in docs and shown in readme, shown
    assert str(money.__doc__).count("|") > 10 and all(f"{b.yuan:,}" in money.__doc__ for b in money.BOUNDS)


SHARE = """pack: share
version: '1'
derive:
  share:       # negative losses and insured values, a declared value of 0: rounding and refusal alike
    fn: insured_share
    args: {loss: {fact: collection.charged_cny}, insured: {fact: overcharge_cny},
           declared: {fact: parcel.declared_value_cny}}
  per_ring:    # `times` by a fact, past the bound of one amount for a large charge
    fn: times
    args: {amount: {fact: share}, factor: {fact: complaint.rings}}
rules:
  - id: share.refund
    clause: TB-5
    scope: [{fact: collection, exists: true}]
    then: {kind: refund, party: sending_station, refund_cny: {fact: share}}
    message: {zh: "退 {refund_cny}", en: "refunds {refund_cny}"}
  - id: share.ring
    clause: TB-5
    scope: [{fact: complaint, exists: true}]
    then: {kind: fine, party: delivering_station, fine_cny: {fact: per_ring}}
    facts: [per_ring]
    message: {zh: "罚 {fine_cny}", en: "fined {fine_cny}"}
"""
SMALL = st.integers(0, 300)


@pytest.fixture(scope="module")
def share_engine(tmp_path_factory):
    path = tmp_path_factory.mktemp("share") / "share.yaml"
    path.write_text(SHARE, encoding="utf-8")
    return Engine.load([path])


@PROPERTY
@given(st.lists(st.tuples(SMALL | st.sampled_from([money.CASE_FIELD.most]), SMALL, SMALL, st.integers(0, 1000)),
                min_size=1, max_size=10))
@example([(1, 3, 0, 1), (1, 0, 2, 1), (5, 4, 2, 1), (money.CASE_FIELD.most, 0, 1, 1000), (3, 0, 200, 7),
          (1, 2, 1, 0)])     # -0.01 × 0 rings: 0.00 on both paths, never -0.00
def test_insured_share_and_times_by_a_fact_agree_per_case_and_columnar(share_engine, rows):
    """money.share (halves away from zero, refused for a declared 0) and money.times are the
    columnar path's own: the same fen, the same refusals, and the columnar path takes the rest."""
    lines = []
    for n, (charged, quoted, declared, rings) in enumerate(rows):
        c = case(waybill=f"S{n}", collection={"charged_cny": mb.yuan(charged), "quoted_cny": mb.yuan(quoted)},
                 complaint=complaint(rings=rings))
        c["parcel"]["declared_value_cny"] = mb.yuan(declared)
        lines.append(json.dumps(c).encode())
    bulk, reference = run(share_engine, lines, "polars"), run(share_engine, lines, "durable")
    assert (bulk.verdicts, bulk.errors) == (reference.verdicts, reference.errors)
    assert bulk.statement.to_dict() == reference.statement.to_dict()
    assert sorted(bulk.columns["__row"].to_list()) == [n for n, _ in reference.verdicts]


@settings(max_examples=200, deadline=None)
@given(units=st.integers(-(10**20), 10**20), extra=st.integers(1, 9), prec=st.integers(1, 28))
def test_a_decimal_fact_is_encoded_exactly_or_refused_in_any_context(units, extra, prec):
    """Each decimal fact type's encoder (money.units_of) gives the exact integer of its unit, whatever
    decimal context the caller set, and refuses a value with more places than the unit: never rounds."""
    from slarules.packs import types
    with decimal.localcontext(decimal.Context(prec=prec)):
        for ftype in (types.MONEY, types.LENGTH, types.VOLUME, types.WEIGHT):
            d = Decimal(units).scaleb(-ftype.places, money.EXACT)
            assert ftype.encode(d) == units and ftype.decode(units) == d
            finer = money.EXACT.add(d, Decimal(1).scaleb(-ftype.places - extra))
            with pytest.raises(ValueError, match="more than"):
                ftype.encode(finer)
